# Sourced by the bench scripts: installs the reference system a script names if missing
# (`BENCH_NEEDS_LITECOIND=1` for the ledger, RPC and network comparisons) and builds release
# binaries. Expects to run from the repository root.

if [ "${BENCH_NEEDS_LITECOIND:-0}" = 1 ] && ! command -v litecoind >/dev/null; then
  echo "== installing litecoind (Debian package)" >&2
  (apt-get update -q && apt-get install -y -q litecoind) >&2
fi

echo "== building (release)" >&2
cargo build --release -q -p peerchain -p peerchain-bench
