#!/usr/bin/env bash
# JSON-RPC throughput of sendrawtransaction (issue 4): COUNT pre-signed one-in-two-out
# transfers, each its own coin and key, submitted one request at a time over one keep-alive
# connection by the same Python client, to a peerchain node and to litecoind (Debian's,
# regtest, wallet only used to prepare), in the same run. Preparation is not timed.
# Usage: bench/rpc.sh [COUNT]   (default 10000). Results: bench/out/rpc.json
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-10000}"
work="${BENCH_DIR:-/tmp/peerchain-bench}/rpc"
mkdir -p bench/out "$work"

BENCH_NEEDS_LITECOIND=1 source bench/common.sh

peerchain_round() {
  ./target/release/rpc_prep --count "$count" --dir "$work/peerchain"
  ./target/release/peerchain --network regtest --data-dir "$work/peerchain" node --rpc-addr 127.0.0.1:0 \
    --listen /ip4/127.0.0.1/tcp/0 --no-mdns 2>"$work/node.log" &
  local pid=$!
  for _ in $(seq 1 600); do [ -f "$work/peerchain/rpc.addr" ] && break; sleep 0.1; done
  local addr cookie
  addr="$(cat "$work/peerchain/rpc.addr")"; cookie="$(cat "$work/peerchain/.cookie")"
  python3 bench/rpc_client.py "$addr" "$cookie" chain.sendrawtransaction "$work/peerchain/transactions.hex" \
    > "$work/peerchain-$1.json"
  # The ceiling the client and HTTP leave to any method: the cheapest call, as many times.
  python3 bench/rpc_client.py "$addr" "$cookie" mempool.info --no-params "$count" > "$work/cheapest-$1.json"
  kill -TERM "$pid"; wait "$pid" || true
}

echo "== peerchain: $count sendrawtransaction calls" >&2
peerchain_round 1
echo "== litecoind: the same" >&2
python3 bench/litecoind.py --rpc-send "$count" --dir "$work/litecoind" > "$work/litecoind.json"
echo "== peerchain again (the machine is shared: the two runs bracket litecoind's)" >&2
peerchain_round 2

python3 - "$work" <<'PY' | tee bench/out/rpc.json
import json, os, sys, platform
work = sys.argv[1]
ours = [json.load(open(f"{work}/peerchain-{i}.json")) for i in (1, 2)]
cheapest = [json.load(open(f"{work}/cheapest-{i}.json")) for i in (1, 2)]
ltc = json.load(open(f"{work}/litecoind.json"))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
best = max(r["calls_per_second"] for r in ours)
print(json.dumps({
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release()},
    "peerchain_runs": ours,
    "peerchain_cheapest_call_mempool_info": cheapest,
    "litecoind": ltc,
    "ratio_vs_litecoind": {
        "best_run": round(best / ltc["calls_per_second"], 2),
        "each_run": [round(r["calls_per_second"] / ltc["calls_per_second"], 2) for r in ours],
    },
}, indent=2))
PY
