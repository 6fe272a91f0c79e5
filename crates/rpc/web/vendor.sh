#!/usr/bin/env bash
# The dashboard's scripts from npm, at the versions pinned in package.json and
# package-lock.json, copied into vendor/ where the node embeds them at build time (so that a
# build needs no network and the page loads nothing from elsewhere).
#   crates/rpc/web/vendor.sh          install and copy
#   crates/rpc/web/vendor.sh --check  install and fail if vendor/ differs (scripts/test runs it)
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --silent
files=(
  "node_modules/uplot/dist/uPlot.iife.min.js:vendor/uPlot.iife.min.js"
  "node_modules/uplot/dist/uPlot.min.css:vendor/uPlot.min.css"
  "node_modules/qrcode-generator/dist/qrcode.js:vendor/qrcode.js"
)
mkdir -p vendor
status=0
for pair in "${files[@]}"; do
  from=${pair%%:*} to=${pair##*:}
  if [[ ${1:-} == --check ]]; then
    cmp -s "$from" "$to" || { echo "$to differs from $from: run crates/rpc/web/vendor.sh" >&2; status=1; }
  else
    cp "$from" "$to"
  fi
done
exit $status
