#!/usr/bin/env python3
"""Resident memory of an idle node with 50 connected peers (issue 3).

A regtest node starts alone (its memory is read once it answers RPC and has idled for
`--idle` seconds); then 50 nodes start, each bootstrapped to it; once it counts 50 peers, it
idles again and its memory is read again: VmRSS (resident) and VmHWM (peak) from /proc.
Prints one JSON document.
"""

import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from files import Node, fresh_dir, wait_until  # noqa: E402


def memory_kib(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", type=int, default=50)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--dir", default="/tmp/peerchain-bench/peers")
    args = parser.parse_args()
    fresh_dir(args.dir)
    hub = Node(args.dir, "hub")
    time.sleep(args.idle)
    alone = memory_kib(hub.proc.pid)
    address = hub.p2p()
    peers = []
    try:
        for i in range(args.peers):
            peers.append(Node(args.dir, f"peer-{i}", [address]))
        wait_until(f"{args.peers} peers at the hub",
                   lambda: len(hub.cli("peers")) >= args.peers, timeout=300)
        time.sleep(args.idle)
        connected = len(hub.cli("peers"))
        with_peers = memory_kib(hub.proc.pid)
    finally:
        for node in peers + [hub]:
            node.stop()
    shutil.rmtree(args.dir, ignore_errors=True)
    print(json.dumps({
        "idle_seconds": args.idle,
        "alone": {"rss_mib": round(alone["VmRSS"] / 1024, 1), "peak_mib": round(alone["VmHWM"] / 1024, 1)},
        "with_peers": {"peers": connected, "rss_mib": round(with_peers["VmRSS"] / 1024, 1),
                       "peak_mib": round(with_peers["VmHWM"] / 1024, 1)},
        "per_peer_kib": round((with_peers["VmRSS"] - alone["VmRSS"]) / max(connected, 1)),
    }, indent=2))


if __name__ == "__main__":
    main()
