#!/usr/bin/env bash
# Ledger benchmarks, side by side with litecoind in the same run (issue 2):
#   - block connection, end to end, in transactions per second, next to the raw ed25519
#     batch-verify rate measured in the same process;
#   - mempool acceptance;
#   - store size per 1,000 transactions and a node's resident memory on a 100,000-transaction chain;
#   - litecoind (Debian's, regtest) on the same workload.
# Usage: bench/ledger.sh [PER_BLOCK] [BLOCKS]   (defaults: 10000 10). Results: bench/out/ledger.json
set -euo pipefail
cd "$(dirname "$0")/.."
per_block="${1:-10000}"
blocks="${2:-10}"
work="${BENCH_DIR:-/tmp/peerchain-bench}"
mkdir -p bench/out "$work"

BENCH_NEEDS_LITECOIND=1 source bench/common.sh

echo "== peerchain: $blocks blocks of $per_block transfers" >&2
./target/release/ledger --per-block "$per_block" --blocks "$blocks" --dir "$work/peerchain" > "$work/peerchain.json"

echo "== peerchain node resident memory on that chain" >&2
node_dir=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['data_dir'])" "$work/peerchain.json")
rm -f "$node_dir/rpc.addr"
./target/release/peerchain --network regtest --data-dir "$node_dir" node --rpc-addr 127.0.0.1:0 2>"$work/node.log" &
node_pid=$!
for _ in $(seq 1 600); do [ -f "$node_dir/rpc.addr" ] && break; sleep 0.1; done
./target/release/peerchain --network regtest --data-dir "$node_dir" chain info --json > "$work/node-info.json"
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$node_pid/status")
kill -TERM "$node_pid"; wait "$node_pid" || true

echo "== litecoind: the same workload" >&2
python3 bench/litecoind.py --per-block "$per_block" --blocks "$(( blocks < 3 ? blocks : 3 ))" --dir "$work/litecoind" > "$work/litecoind.json"

python3 - "$work" "$rss_kib" <<'PY' | tee bench/out/ledger.json
import json, os, sys, platform
work, rss_kib = sys.argv[1], int(sys.argv[2])
ours = json.load(open(f"{work}/peerchain.json"))
ltc = json.load(open(f"{work}/litecoind.json"))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(json.dumps({
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release()},
    "peerchain": ours,
    "peerchain_node_rss_mib": round(rss_kib / 1024, 1),
    "litecoind": ltc,
    "ratios": {
        "connect_vs_litecoind": round(ours["connect"]["transactions_per_second"] / ltc["connect"]["transactions_per_second"], 2),
        "connect_vs_raw_batch_all_cores": round(ours["connect"]["share_of_raw_batch_all_cores"], 2),
        "mempool_in_process_vs_litecoind_rpc": round(ours["mempool_accept"]["transactions_per_second"] / ltc["mempool_accept"]["transactions_per_second"], 2),
    },
}, indent=2))
PY
