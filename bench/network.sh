#!/usr/bin/env bash
# Network benchmarks (issue 3): initial sync of a 10,000-block chain with 200,000 transfers
# from one and from three peers next to the ledger's own connect rate for the same blocks
# (bench/sync.py), the relay of 300 transactions through a 10-node network (bench/relay.py),
# and the propagation of a 5,000-transfer block through 10 nodes with compact and with
# header-only announcements (bench/propagation.py), and the memory of an idle node with 50 peers
# (bench/peers.py); then initial sync (200,000 transfers, one peer) and two-node propagation of a
# 5,000-transfer block side by side with litecoind (bench/litecoind_network.py).
# Results: bench/out/sync.json, bench/out/relay.json, bench/out/propagation.json, bench/out/peers.json,
# bench/out/litecoind_network.json.
# Usage: bench/network.sh [BLOCKS] [PER_BLOCK]   (defaults: 10000 20)
set -euo pipefail
cd "$(dirname "$0")/.."
blocks="${1:-10000}"
per_block="${2:-20}"
work="${BENCH_DIR:-/tmp/peerchain-bench}"
mkdir -p bench/out "$work"
BENCH_NEEDS_LITECOIND=1 source bench/common.sh

python3 bench/sync.py --blocks "$blocks" --per-block "$per_block" --dir "$work/sync" | tee bench/out/sync.json
python3 bench/relay.py --dir "$work/relay" | tee bench/out/relay.json
python3 bench/propagation.py --dir "$work/propagation" | tee bench/out/propagation.json
python3 bench/peers.py --dir "$work/peers" | tee bench/out/peers.json
python3 bench/litecoind_network.py --transfers 200000 --dir "$work/litecoind-network" | tee bench/out/litecoind_network.json
