# hakeeper: an operator for highly available HAProxy + Keepalived load balancers.

SHELL := /usr/bin/env bash -o errexit -o nounset -o pipefail
BIN := $(CURDIR)/bin
GO ?= go

# Tools built from source are cached by version outside the clone, so a fresh
# clone (CI's) does not rebuild them.
HAKEEPER_CACHE ?= $(HOME)/.cache/hakeeper
export HAKEEPER_CACHE

CONTROLLER_TOOLS_VERSION ?= v0.23.0
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
HELM_VERSION ?= v3.22.0
HELM := $(BIN)/helm-$(HELM_VERSION)
export HELM
HELM4_VERSION ?= v4.3.1
HELM4 := $(BIN)/helm-$(HELM4_VERSION)
export HELM4
HELM_DOCS_VERSION ?= v1.14.2
HELM_DOCS := $(BIN)/helm-docs-$(HELM_DOCS_VERSION)
PROMTOOL_VERSION ?= v0.316.0
PROMTOOL := $(BIN)/promtool-$(PROMTOOL_VERSION)
export PROMTOOL

# KUBEBUILDER_ASSETS points envtest at the control plane hack/control-plane.sh builds.
export KUBEBUILDER_ASSETS ?= $(BIN)/k8s

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRD and RBAC manifests, and the chart's copies of them.
	$(CONTROLLER_GEN) rbac:roleName=hakeeper-manager crd paths=./... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	hack/chart-sync.sh

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: build
# VERSION is what `hakeeper version`, the first log lines and
# hakeeper_build_info say; the Dockerfile takes it as a build argument.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
VERSION_LDFLAG = -X github.com/hakeeper/hakeeper/internal/version.Version=$(VERSION)

build: ## Build bin/hakeeper and bin/hakeeper-supervise the way the Dockerfile does.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(VERSION_LDFLAG)" -o $(BIN)/hakeeper .
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)/hakeeper-supervise ./cmd/hakeeper-supervise

.PHONY: images
images: deps ## Build the manager, dataplane and pause images offline with podman (cached by content); write bin/images.env.
	hack/images.sh

.PHONY: demo
demo: deps control-plane images ## The whole job on this machine: control plane, manager, two-node lab, a LoadBalancer serving through its VIP, one failover. UNATTENDED=1 finishes by itself.
	$(GO) run ./hack/demo $(if $(UNATTENDED),-unattended)

.PHONY: run
run: ## Run the operator against the current kubeconfig (metrics off, probes on :8081).
	$(GO) run . manager --metrics-bind-address=0 --health-probe-bind-address=:8081 $(ARGS)

.PHONY: render-sample
render-sample: ## Render the website sample for two nodes, as `hakeeper render` previews it.
	$(GO) run . render -f config/samples/website.yaml --class config/samples/classes.yaml \
		--node edge-a=198.18.0.11 --node edge-b=198.18.0.12 \
		--servers web=198.18.0.21:8080,198.18.0.22:8080

##@ Deployment

# The cluster is the current kubeconfig's, reached with the kubectl on PATH
# (KUBECTL=... for another); nothing here builds Kubernetes. IMG and
# DATAPLANE_IMG are the images to install (push them first, e.g. built with
# the Dockerfile's manager and dataplane targets).
KUBECTL ?= kubectl
IMG ?= ghcr.io/hakeeper/manager:latest
DATAPLANE_IMG ?= ghcr.io/hakeeper/dataplane:latest
ignore-not-found ?= false
INSTALLER = KUBECTL='$(KUBECTL)' IMG='$(IMG)' DATAPLANE_IMG='$(DATAPLANE_IMG)' hack/installer.sh

.PHONY: install
install: ## Install the CRDs into the current cluster.
	$(KUBECTL) apply --server-side -k config/crd

.PHONY: uninstall
uninstall: ## Delete the CRDs, and with them every LoadBalancer and class: run undeploy first. ignore-not-found=true to ignore what is gone.
	$(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -k config/crd

.PHONY: build-installer
build-installer: ## Write dist/install.yaml: CRDs, RBAC, manager and admission policies in one file, with IMG and DATAPLANE_IMG.
	mkdir -p dist
	$(INSTALLER) > dist/install.yaml.tmp
	mv dist/install.yaml.tmp dist/install.yaml

.PHONY: deploy
deploy: build-installer ## Deploy hakeeper (dist/install.yaml) to the current cluster.
	$(KUBECTL) apply --server-side -f dist/install.yaml

# Undeploy deletes the classes and the LoadBalancers first and waits for
# their finalizers, which the manager runs: their data planes (privileged
# DaemonSets holding the virtual IPs) would otherwise outlive it with nobody
# to remove them. The classes first: a class being deleted takes no new
# LoadBalancer, so the Services of type LoadBalancer do not write theirs
# again, and it goes once its last LoadBalancer has.
.PHONY: undeploy
undeploy: ## Delete every LoadBalancer and class (their data planes with them), then hakeeper, from the current cluster.
	if $(KUBECTL) get crd loadbalancers.hakeeper.io >/dev/null 2>&1; then \
		$(KUBECTL) delete loadbalancerclasses --all --wait=false && \
		$(KUBECTL) delete loadbalancers --all -A --wait --timeout=5m && \
		$(KUBECTL) delete loadbalancerclasses --all --wait --timeout=5m; fi
	$(INSTALLER) | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

##@ Test

.PHONY: test
test: deps control-plane images verify verify-kustomize $(HELM) $(HELM4) $(PROMTOOL) ## Run every test: generated files, renderer goldens through the real haproxy and keepalived, the API on a real kube-apiserver.
	HAKEEPER_REQUIRE_REAL_TOOLS=1 $(GO) test ./... -count=1 -timeout 40m

.PHONY: test-e2e
test-e2e: deps control-plane images $(HELM) ## Only the lab scenarios, verbose: prints each failover's outage and the load figures.
	HAKEEPER_REQUIRE_REAL_TOOLS=1 $(GO) test ./test/e2e -count=1 -v -timeout 40m

.PHONY: test-unit
test-unit: ## Only the tests that need neither root nor a control plane.
	$(GO) test $$($(GO) list ./... | grep -v -e /test/ -e /controllers) -count=1

.PHONY: deps
deps: ## Install the Debian packages the tests and the lab use (haproxy, keepalived, etcd, iproute2, podman, containerd, ...).
	hack/install-deps.sh

.PHONY: control-plane
control-plane: ## Build (once, cached) kube-apiserver and kubectl; link them into bin/k8s.
	hack/control-plane.sh

.PHONY: verify
verify: verify-gofmt vet verify-generated ## Fail on unformatted code, vet findings or stale generated files.

.PHONY: verify-gofmt
verify-gofmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: verify-kustomize
verify-kustomize: control-plane ## Fail when a kustomization under config/ does not build.
	@for d in config/default config/crd config/rbac config/manager config/samples; do \
		$(BIN)/k8s/kubectl kustomize $$d >/dev/null || { echo "kustomize build of $$d failed"; exit 1; }; done

.PHONY: verify-generated
verify-generated: $(CONTROLLER_GEN) $(HELM_DOCS) ## Fail when `make generate manifests` would change a file.
	CONTROLLER_GEN=$(CONTROLLER_GEN) HELM_DOCS=$(HELM_DOCS) hack/verify-generated.sh

##@ Benchmarks

.PHONY: bench-endpoints
bench-endpoints: deps control-plane images ## EndpointSlice change to every node's HAProxy on a three-node lab: p50, p90, worst. CHANGES=30.
	$(GO) run ./hack/bench/endpoints -changes $${CHANGES:-30}

.PHONY: bench-failover
bench-failover: deps control-plane images ## Client-side outage when the master fails: hakeeper and hand-written HAProxy + Keepalived pairs on a three-node lab. RUNS=5, TIMEOUT=20ms.
	$(GO) run ./hack/bench/failover -runs $${RUNS:-5} -timeout $${TIMEOUT:-20ms}

.PHONY: bench-idle
bench-idle: deps control-plane images ## What an idle LoadBalancer costs each node of a three-node lab (CPU in and around its pod, private memory, processes, keepalived's slope), extrapolated to 100. COUNTS=1,5,10, WINDOW=20s, GROUPS=239.255.18.0/24 (empty: all on 224.0.0.18).
	$(GO) run ./hack/bench/idle -counts $${COUNTS:-1,5,10} -window $${WINDOW:-20s} -groups "$${GROUPS-239.255.18.0/24}"

.PHONY: bench-adverts
bench-adverts: deps control-plane images ## hakeeper's link-down outage and false failovers under a 60 s overload of the master, per advert interval. ADVERTS=50,30,20, RUNS=5.
	$(GO) run ./hack/bench/failover -adverts $${ADVERTS:-50,30,20} -runs $${RUNS:-5} -overload $${OVERLOAD:-60s}

.PHONY: bench-scale
bench-scale: deps control-plane build ## 100, 250 and 1000 LoadBalancers x 50 endpoints on the local API server (50 a namespace and group of 3 nodes): time to converge and for an endpoint change, per LoadBalancer; manager memory. LBS=100,250,1000.
	$(GO) run ./hack/bench/scale -lbs $${LBS:-100,250,1000} -endpoints $${ENDPOINTS:-50} -hakeeper $(BIN)/hakeeper

##@ Tools

$(HELM): ## Helm, built from source once and cached by version (the chart's tests run it).
	mkdir -p $(BIN) $(HAKEEPER_CACHE)/helm-$(HELM_VERSION)
	[[ -x $(HAKEEPER_CACHE)/helm-$(HELM_VERSION)/helm ]] || \
		GOBIN=$(HAKEEPER_CACHE)/helm-$(HELM_VERSION) GOFLAGS=-mod=mod $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	ln -sf $(HAKEEPER_CACHE)/helm-$(HELM_VERSION)/helm $@

$(HELM4): ## Helm 4, the same way (the chart's tests run both).
	mkdir -p $(BIN) $(HAKEEPER_CACHE)/helm-$(HELM4_VERSION)
	[[ -x $(HAKEEPER_CACHE)/helm-$(HELM4_VERSION)/helm ]] || \
		GOBIN=$(HAKEEPER_CACHE)/helm-$(HELM4_VERSION) GOFLAGS=-mod=mod $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM4_VERSION)
	ln -sf $(HAKEEPER_CACHE)/helm-$(HELM4_VERSION)/helm $@

$(CONTROLLER_GEN):
	mkdir -p $(BIN) $(HAKEEPER_CACHE)
	[[ -x $(HAKEEPER_CACHE)/$(notdir $@) ]] || { \
		GOBIN=$(HAKEEPER_CACHE)/tmp $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION) && \
		mv $(HAKEEPER_CACHE)/tmp/controller-gen $(HAKEEPER_CACHE)/$(notdir $@) && rmdir $(HAKEEPER_CACHE)/tmp; }
	ln -sf $(HAKEEPER_CACHE)/$(notdir $@) $@

$(HELM_DOCS): ## helm-docs, which writes the values table of charts/hakeeper/README.md (make chart-docs), cached by version.
	mkdir -p $(BIN) $(HAKEEPER_CACHE)/helm-docs-$(HELM_DOCS_VERSION)
	[[ -x $(HAKEEPER_CACHE)/helm-docs-$(HELM_DOCS_VERSION)/helm-docs ]] || \
		GOBIN=$(HAKEEPER_CACHE)/helm-docs-$(HELM_DOCS_VERSION) GOFLAGS=-mod=mod $(GO) install github.com/norwoodj/helm-docs/cmd/helm-docs@$(HELM_DOCS_VERSION)
	ln -sf $(HAKEEPER_CACHE)/helm-docs-$(HELM_DOCS_VERSION)/helm-docs $@

$(PROMTOOL): ## promtool, which test/chart runs on the chart's PrometheusRule (promtool test rules), cached by version.
	mkdir -p $(BIN) $(HAKEEPER_CACHE)/promtool-$(PROMTOOL_VERSION)
	[[ -x $(HAKEEPER_CACHE)/promtool-$(PROMTOOL_VERSION)/promtool ]] || \
		GOBIN=$(HAKEEPER_CACHE)/promtool-$(PROMTOOL_VERSION) GOFLAGS=-mod=mod $(GO) install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
	ln -sf $(HAKEEPER_CACHE)/promtool-$(PROMTOOL_VERSION)/promtool $@

.PHONY: chart-docs
chart-docs: $(HELM_DOCS) ## Write the values table of charts/hakeeper/README.md from values.yaml's comments.
	HELM_DOCS=$(HELM_DOCS) hack/chart-docs.sh
