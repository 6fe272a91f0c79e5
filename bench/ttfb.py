#!/usr/bin/env python3
"""Time to first byte of a small file found by keyword in a local network of N nodes (issue 5).

N peerchain nodes on loopback, node i bootstrapped to nodes i-1 and i/2 (a connected graph a
few hops across). Three nodes far from node 1 each share a 100 KB file under a keyword of its
own; node 1 then searches for each keyword (by DHT only, by flooding only, and both merged, as
`file search` does by default) and downloads the hit. A file this small arrives in one
piece, so the first byte comes with the last: time to first byte is the search plus the
download. Prints one JSON document with the median over the three files.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from files import Node, fresh_dir  # noqa: E402


def timed(action):
    start = time.time()
    value = action()
    return time.time() - start, value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--dir", default="/tmp/peerchain-bench/files/ttfb")
    args = parser.parse_args()
    fresh_dir(args.dir)
    nodes = []
    for i in range(1, args.nodes + 1):
        bootstrap = sorted({nodes[i - 2].p2p(), nodes[i // 2 - 1].p2p()}) if i > 1 else []
        nodes.append(Node(args.dir, f"node-{i}", bootstrap))
    print(f"== {args.nodes} nodes up", file=sys.stderr)
    sharers = nodes[-3:]
    shared = []
    for n, node in enumerate(sharers):
        path = os.path.join(args.dir, f"clip-{n}.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(100_000))
        keyword = f"ttfbword{n}"
        shared.append((node.cli("file", "add", path, "--keyword", keyword)["id"], keyword))
    time.sleep(5)  # provider records reach the DHT
    asker = nodes[0]
    rows = []
    for n, (content, keyword) in enumerate(shared):
        row = {}
        for via in ("dht", "flood", "both"):
            seconds, hits = timed(lambda: asker.cli("file", "search", keyword, "--via", via))
            assert any(h["id"] == content for h in hits), f"{via} search missed {keyword}: {hits}"
            row[f"search_{via}_s"] = seconds
        out = os.path.join(args.dir, f"got-{n}.bin")
        row["get_s"], _ = timed(lambda: asker.cli("file", "get", content, "-o", out))
        row["ttfb_s"] = row["search_both_s"] + row["get_s"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    for node in nodes:
        node.stop()
    result = {"nodes": args.nodes, "files": len(rows)}
    for key in rows[0]:
        result[f"median_{key}"] = statistics.median(r[key] for r in rows)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
