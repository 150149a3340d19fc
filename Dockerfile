# Two images from one build:
#   docker build --target manager   -t hakeeper/manager .
#   docker build --target dataplane -t hakeeper/dataplane .
# The build command is the one `make build` runs; keep them identical.
#
# The base images are build arguments whose defaults are the public images,
# so this file builds unchanged wherever a registry is reachable. Where none
# is (the lab), hack/images.sh (`make images`) builds local stand-ins and
# passes them in: a Go toolchain image, a distroless-like static base and a
# debootstrapped bookworm that already holds haproxy, keepalived, iproute2.
ARG GO_IMAGE=golang:1.26-bookworm
ARG MANAGER_BASE=gcr.io/distroless/static-debian12:nonroot
ARG DATAPLANE_BASE=debian:bookworm-slim

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY controllers/ controllers/
COPY internal/ internal/
COPY cmd/ cmd/
COPY main.go ./
# What `hakeeper version` says (make build passes `git describe`).
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/hakeeper/hakeeper/internal/version.Version=${VERSION}" -o /out/hakeeper . \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/hakeeper-supervise ./cmd/hakeeper-supervise

# The operator: nothing but the binary, as a non-root user.
FROM ${MANAGER_BASE} AS manager
COPY --from=build /out/hakeeper /hakeeper
USER 65532:65532
ENTRYPOINT ["/hakeeper", "manager"]

# The data plane: HAProxy and Keepalived from Debian bookworm (the versions
# the tests check configs with: haproxy 2.6, keepalived 2.2.7), the agent,
# and hakeeper-supervise, the small binary HAProxy and keepalived run
# under. The DaemonSet picks the process per container through its command.
FROM ${DATAPLANE_BASE} AS dataplane
# Install the packages only when the base lacks them: debian:bookworm-slim
# does, while the lab's local base already has them and is built with no
# network, where apt-get update could only fail.
RUN dpkg-query -W haproxy keepalived iproute2 >/dev/null 2>&1 \
 || (apt-get update \
     && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy keepalived iproute2 \
     && rm -rf /var/lib/apt/lists/*)
COPY --from=build /out/hakeeper /usr/local/bin/hakeeper
COPY --from=build /out/hakeeper-supervise /usr/local/bin/hakeeper-supervise
ENTRYPOINT ["/usr/local/bin/hakeeper", "agent"]
