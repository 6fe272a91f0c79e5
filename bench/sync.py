#!/usr/bin/env python3
"""Initial sync on loopback (issue 3): a fresh node syncing a prepared chain from one and from
three peers, next to the ledger's own connect rate for the very same blocks, in one run.

`target/release/ledger` prepares a regtest chain (BLOCKS blocks of PER_BLOCK one-in-two-out
transfers) and measures how fast a store connects those blocks in process; its data
directory is copied to each serving node. The fresh node is timed from its start to holding
the serving nodes' tip. Prints one JSON document.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from files import Node, fresh_dir, wait_until, BIN_DIR  # noqa: E402


def prepare_chain(directory, per_block, blocks):
    """A regtest chain of `blocks` blocks of `per_block` transfers, made by `target/release/ledger`
    (which also measures how fast a store connects them in process); returns its report."""
    return json.loads(subprocess.run(
        [os.path.join(BIN_DIR, "ledger"), "--per-block", str(per_block), "--blocks", str(blocks), "--dir", directory],
        check=True, capture_output=True, text=True).stdout)


def time_sync(ledger, root, sources):
    """Seconds from a fresh node's start until it holds the tip of `sources` nodes serving the
    chain `ledger` prepared."""
    height = ledger["chain_height"]
    os.makedirs(root)
    seeds = []
    for i in range(sources):
        target = os.path.join(root, f"seed-{i}")
        shutil.copytree(ledger["data_dir"], target)
        for leftover in ("node.key", "rpc.addr", ".cookie"):
            if os.path.exists(os.path.join(target, leftover)):
                os.remove(os.path.join(target, leftover))
        seeds.append(Node(root, f"seed-{i}"))
    assert all(s.cli("chain", "info")["height"] == height for s in seeds)
    start = time.time()
    fresh = Node(root, "fresh", [s.p2p() for s in seeds])
    wait_until("the fresh node to sync", lambda: fresh.cli("chain", "info")["height"] >= height, timeout=3600)
    seconds = time.time() - start
    for node in seeds + [fresh]:
        node.stop()
    shutil.rmtree(root, ignore_errors=True)
    return seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-block", type=int, default=20)
    parser.add_argument("--blocks", type=int, default=10_000)
    parser.add_argument("--dir", default="/tmp/peerchain-bench/sync")
    args = parser.parse_args()
    fresh_dir(args.dir)
    print(f"== preparing {args.blocks} blocks of {args.per_block} transfers", file=sys.stderr)
    ledger = prepare_chain(os.path.join(args.dir, "ledger"), args.per_block, args.blocks)
    height = ledger["chain_height"]
    # Transfers only, as the ledger's connect rate counts them (coinbases are left out).
    transactions = args.per_block * args.blocks
    result = {
        "blocks": height,
        "transactions": transactions,
        "ledger_connect_tx_per_s": ledger["connect"]["transactions_per_second"],
        "ledger_connect_seconds": ledger["connect"]["seconds"],
    }
    for sources in (1, 3):
        print(f"== syncing from {sources} peer(s)", file=sys.stderr)
        seconds = time_sync(ledger, os.path.join(args.dir, f"net-{sources}"), sources)
        result[f"from_{sources}"] = {
            "seconds": seconds,
            "blocks_per_s": height / seconds,
            "tx_per_s": transactions / seconds,
            "share_of_ledger_connect": (transactions / seconds) / ledger["connect"]["transactions_per_second"],
        }
        print(json.dumps(result[f"from_{sources}"]), file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
