#!/usr/bin/env bash
# File-transfer benchmarks, side by side with aria2 and qBittorrent (libtorrent) in the same
# run (issue 5): one source -> one downloader and three sources -> one downloader on
# loopback, next to the raw loopback TCP rate; then the time to first byte of a small file
# found by keyword in a 20-node network.
# Usage: bench/files.sh [MIB] (default 1024). Results: bench/out/files.json, bench/out/ciphers.json,
# bench/out/ttfb.json
set -euo pipefail
cd "$(dirname "$0")/.."
mib="${1:-1024}"
work="${BENCH_DIR:-/tmp/peerchain-bench}/files"
mkdir -p bench/out "$work"

missing=()
command -v aria2c >/dev/null || missing+=(aria2)
command -v qbittorrent-nox >/dev/null || missing+=(qbittorrent-nox)
command -v mktorrent >/dev/null || missing+=(mktorrent)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian packages)" >&2
  (apt-get update -q && apt-get install -y -q "${missing[@]}") >&2
fi
source bench/common.sh

python3 bench/files.py --mib "$mib" --dir "$work" | tee bench/out/files.json
# What encrypting the connection costs, in the same machine state (Noise's cipher and TLS's).
target/release/ciphers --mib "$mib" | tee bench/out/ciphers.json
python3 bench/ttfb.py --nodes 20 --dir "$work/ttfb" | tee bench/out/ttfb.json
