#!/usr/bin/env bash
# Installs the Debian packages the tests and the lab run for real: haproxy
# and keepalived (configs are checked by the daemons themselves), etcd for
# the local control plane, iproute2 and util-linux for network and mount
# namespaces, wrk for load in the lab; for the lab's images and nodes
# (hack/images.sh, internal/testing/lab): podman and debootstrap to build images with
# no registry, containerd, runc, the CNI plugins and iptables to run them;
# nftables, whose nft the VRRP filter's tests read tables with.
# Only what is missing is installed.
set -o errexit -o nounset -o pipefail
[[ "${TRACE:-0}" == 1 ]] && set -o xtrace

declare -A need=([haproxy]=haproxy [keepalived]=keepalived [etcd]=etcd-server [ip]=iproute2 [unshare]=util-linux [wrk]=wrk
  [podman]=podman [debootstrap]=debootstrap [ctr]=containerd [runc]=runc [iptables]=iptables [nft]=nftables)
# Packages that install no command on PATH, by a file they install.
declare -A need_file=([/usr/lib/cni/bridge]=containernetworking-plugins)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [[ -x "/usr/sbin/$cmd" ]] || missing+=("${need[$cmd]}")
done
for file in "${!need_file[@]}"; do
  [[ -e "$file" ]] || missing+=("${need_file[$file]}")
done
[[ ${#missing[@]} == 0 ]] && exit 0
if [[ $(id -u) != 0 ]]; then
  echo "Missing packages: ${missing[*]}; run as root or install them with apt-get." >&2
  exit 1
fi
echo "Installing ${missing[*]} from Debian"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
