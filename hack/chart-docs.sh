#!/usr/bin/env bash
# Writes charts/hakeeper/README.md from hack/chart-docs/README.md.gotmpl
# and the `# --` comments of values.yaml (helm-docs' format; test/chart's
# TestReadmeValuesTable fails on a value the table lacks). The template stays outside the chart, so the package
# holds only the README. HELM_DOCS is the helm-docs binary (make
# chart-docs builds it); hack/verify-generated.sh runs this too.
set -o errexit -o nounset -o pipefail
[[ "${TRACE:-0}" == 1 ]] && set -o xtrace
root=$(cd "$(dirname "$0")/.." && pwd)
helm_docs=${HELM_DOCS:?set HELM_DOCS to helm-docs (make chart-docs builds it)}
# helm-docs finds comments only relative to the chart it runs in.
cd "$root/charts/hakeeper"
"$helm_docs" --chart-search-root . --template-files ../../hack/chart-docs/README.md.gotmpl \
  --sort-values-order file --skip-version-footer --log-level warning
