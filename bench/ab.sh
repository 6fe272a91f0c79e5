#!/usr/bin/env bash
# Two builds side by side (how BENCHMARKS.md compares commits): initial sync (bench/sync.py),
# relay through 10 nodes (bench/relay.py) and one node's sendrawtransaction rate, run
# interleaved A, B, A, B on the same machine. A and B are directories holding a release
# build's `peerchain`, `ledger` and `rpc_prep` (for one commit: `git worktree add /tmp/a
# <commit>`, build it with `cargo build --release -p peerchain -p peerchain-bench`, copy the
# three binaries). Results: bench/out/ab-<which>-<round>-{sync,relay,rpc}.json.
# Usage: bench/ab.sh DIR_A DIR_B [ROUNDS]   (default 2 rounds; AB_SYNC_BLOCKS, default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
a="$(realpath "$1")"; b="$(realpath "$2")"; rounds="${3:-2}"
work="${BENCH_DIR:-/tmp/peerchain-bench}/ab"
mkdir -p bench/out "$work"

rpc_rate() { # BIN_DIR NAME: 5,000 sendrawtransaction calls over one connection
  local dir="$work/rpc-$2"
  rm -rf "$dir"; mkdir -p "$dir"
  "$1/rpc_prep" --count 5000 --dir "$dir" >/dev/null
  "$1/peerchain" --network regtest --data-dir "$dir" node --rpc-addr 127.0.0.1:0 \
    --listen /ip4/127.0.0.1/tcp/0 --no-mdns 2>"$dir.log" &
  local pid=$!
  for _ in $(seq 1 600); do [ -f "$dir/rpc.addr" ] && break; sleep 0.1; done
  python3 bench/rpc_client.py "$(cat "$dir/rpc.addr")" "$(cat "$dir/.cookie")" chain.sendrawtransaction \
    "$dir/transactions.hex"
  kill -TERM "$pid"; wait "$pid" || true
}

for round in $(seq 1 "$rounds"); do
  for which in a b; do
    bin="$a"; [ "$which" = b ] && bin="$b"
    echo "== round $round, build $which ($bin)" >&2
    BENCH_BIN_DIR="$bin" python3 bench/sync.py --blocks "${AB_SYNC_BLOCKS:-10000}" --dir "$work/sync-$which" > "bench/out/ab-$which-$round-sync.json"
    BENCH_BIN_DIR="$bin" python3 bench/relay.py --dir "$work/relay-$which" > "bench/out/ab-$which-$round-relay.json"
    rpc_rate "$bin" "$which" > "bench/out/ab-$which-$round-rpc.json"
  done
done
echo "results in bench/out/ab-*.json" >&2
