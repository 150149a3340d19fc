#!/usr/bin/env bash
# Installs the local cluster that envtest and the lab run on: Debian's etcd,
# and kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy and
# kubectl built from the k8s.io/kubernetes module (envtest's prebuilt
# binaries cannot be downloaded here). `--apiserver-only` builds only what
# envtest needs (kube-apiserver, kubectl).
#
# Binaries are cached by version under $HAKEEPER_CACHE (default
# ~/.cache/hakeeper) so a fresh clone does not rebuild them, and linked into
# bin/k8s/, the directory KUBEBUILDER_ASSETS points at.
set -o errexit -o nounset -o pipefail
[[ "${TRACE:-0}" == 1 ]] && set -o xtrace

root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/hack/tools/k8s"
# The server version follows k8s.io/api in go.mod: v0.X.Y is Kubernetes v1.X.Y.
api_version=$(cd "$root" && go list -m -f '{{.Version}}' k8s.io/api)
k8s_version="v1.${api_version#v0.}"
pinned=$(cd "$tools" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
if [[ "$pinned" != "$k8s_version" ]]; then
  echo "hack/tools/k8s pins k8s.io/kubernetes $pinned but go.mod's k8s.io/api is $api_version; update hack/tools/k8s/go.mod" >&2
  exit 1
fi

cache="${HAKEEPER_CACHE:-$HOME/.cache/hakeeper}/k8s-$k8s_version"
assets="$root/bin/k8s"

install_etcd() {
  command -v etcd >/dev/null 2>&1 && return
  [[ -x /usr/bin/etcd ]] && return
  echo "Installing etcd-server from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
}

build() {
  local name=$1
  [[ -x "$cache/$name" ]] && return
  echo "Building $name $k8s_version from source (a few minutes, cached in $cache)"
  mkdir -p "$cache"
  # gitVersion/gitMajor/gitMinor make clients and discovery see a real version.
  local minor=${k8s_version#v1.}; minor=${minor%%.*}
  local pkg=k8s.io/component-base/version
  (cd "$tools" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
    -o "$cache/$name.tmp" "k8s.io/kubernetes/cmd/$name")
  mv "$cache/$name.tmp" "$cache/$name"
}

binaries=(kube-apiserver kubectl)
[[ "${1:-}" == --apiserver-only ]] || binaries+=(kube-scheduler kube-controller-manager kubelet kube-proxy)

install_etcd
mkdir -p "$assets"
for name in "${binaries[@]}"; do
  build "$name"
  ln -sf "$cache/$name" "$assets/$name"
done
ln -sf "$(command -v etcd || echo /usr/bin/etcd)" "$assets/etcd"
echo "Control plane $k8s_version ready in $assets"
