#!/usr/bin/env bash
# The long fault scenarios (issue 17): 50 kill -9 rounds of a mining, a syncing, a downloading
# and a sending node; two minutes of churn on 5 hosts; a 100 MiB file over links of 100 ms
# round trip and 5% loss, beside the same run on clean links; a partition, bad clocks and a
# full disk. Needs root (network namespaces, tmpfs), iproute2, iptables and faketime.
# Writes every test's figures (its FAULTS lines) to tests/faults/last-run.txt; RELIABILITY.md
# ("Faults") reports them.
#   tests/faults/long.sh            (FAULT_ROUNDS, CHURN_SECONDS, FAULT_FILE_MIB override)
set -euo pipefail
cd "$(dirname "$0")/../.."
export FAULT_ROUNDS="${FAULT_ROUNDS:-50}" CHURN_SECONDS="${CHURN_SECONDS:-120}" FAULT_FILE_MIB="${FAULT_FILE_MIB:-100}"
out=tests/faults/last-run.txt
cargo build -q -p peerchain -p peerchain-testing
started=$(date +%s)
log=$(mktemp)
# One test at a time: the figures are times, and the machine has two cores.
status=0
cargo nextest run -p peerchain --test faults --test crashes --no-capture --no-fail-fast --test-threads 1 2>&1 \
  | tee "$log" || status=$?
{
  echo "# tests/faults/long.sh at $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d), $(nproc) cores"
  echo "# FAULT_ROUNDS=$FAULT_ROUNDS CHURN_SECONDS=$CHURN_SECONDS FAULT_FILE_MIB=$FAULT_FILE_MIB, $(( $(date +%s) - started )) s"
  grep -a '^FAULTS' "$log" | sed 's/\x1b\[[0-9;]*m//g'
  grep -a -E '^ +FAIL ' "$log" | sed 's/\x1b\[[0-9;]*m//g; s/^ */FAILED /' | sort -u
} >"$out"
rm -f "$log"
cat "$out"
exit "$status"
