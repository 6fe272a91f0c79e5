#!/usr/bin/env bash
# File-transfer benchmarks, side by side with aria2 and qBittorrent (libtorrent) in the same
# run (issue 5): one source -> one downloader and three sources -> one downloader on
# loopback, next to the raw loopback TCP rate; one source against raw TCP on links limited
# to 1, 2.5 and 10 Gbit/s (network namespaces, root); then the time to first byte of a small
# file found by keyword in a 20-node network.
# Usage: bench/files.sh [MIB] (default 1024). Results: bench/out/files.json, bench/out/ciphers.json,
# bench/out/files_link.json, bench/out/ttfb.json
set -euo pipefail
cd "$(dirname "$0")/.."
mib="${1:-1024}"
work="${BENCH_DIR:-/tmp/peerchain-bench}/files"
mkdir -p bench/out "$work"

missing=()
command -v aria2c >/dev/null || missing+=(aria2)
command -v qbittorrent-nox >/dev/null || missing+=(qbittorrent-nox)
command -v mktorrent >/dev/null || missing+=(mktorrent)
command -v tc >/dev/null || missing+=(iproute2)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian packages)" >&2
  (apt-get update -q && apt-get install -y -q "${missing[@]}") >&2
fi
source bench/common.sh

python3 bench/files.py --mib "$mib" --dir "$work" | tee bench/out/files.json
# What encrypting the connection costs, in the same machine state (Noise's cipher and TLS's).
target/release/ciphers --mib "$mib" | tee bench/out/ciphers.json
# On a link slower than the processor, the rate against raw TCP on the same link.
if ip netns list >/dev/null 2>&1 && command -v tc >/dev/null; then
  python3 bench/files_link.py --mib "$(( mib / 2 ))" | tee bench/out/files_link.json
else
  echo "== skipping bench/files_link.py: needs root, ip netns and tc" >&2
fi
python3 bench/ttfb.py --nodes 20 --dir "$work/ttfb" | tee bench/out/ttfb.json
