#!/usr/bin/env bash
# Fails when `make generate manifests` (which runs hack/chart-sync.sh) or
# hack/chart-docs.sh (the chart's README) would change a committed file.
# It regenerates in a copy of the tree, so it works on a dirty checkout
# too. CONTROLLER_GEN and HELM_DOCS name the tools (make verify-generated
# passes both).
set -o errexit -o nounset -o pipefail
[[ "${TRACE:-0}" == 1 ]] && set -o xtrace

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tar -C "$root" --exclude=./bin --exclude=./.git -cf - . | tar -C "$tmp" -xf -
make -s -C "$tmp" generate manifests CONTROLLER_GEN="${CONTROLLER_GEN:?}" >/dev/null
HELM_DOCS="${HELM_DOCS:?}" "$tmp/hack/chart-docs.sh"

status=0
for dir in api config charts; do
  [[ -d "$root/$dir" || -d "$tmp/$dir" ]] || continue
  if ! diff -ru "$root/$dir" "$tmp/$dir"; then status=1; fi
done
if [[ $status != 0 ]]; then
  echo "Generated files are stale: run 'make generate manifests chart-docs' and commit the result." >&2
fi
exit $status
