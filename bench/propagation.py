#!/usr/bin/env python3
"""Block propagation on loopback (issue 3): the time from a node mining a block of 5,000
transfers, which every node already holds in its mempool, until all nodes of a 10-node network
have it as their tip; with compact block announcements (the default) and with header-only
announcements (`[network] compact_blocks = false`: peers then download the whole block).

`target/release/rpc_prep` prepares a regtest chain holding the coins and pre-signed transfers.
Node 1 runs on that data directory; nodes 2..10 start empty, node i bootstrapped to nodes i-1
and i/2, and sync. The transfers are submitted to node 1 and relayed until every mempool holds
them all; node 1 then mines one block (`chain.generate`), and every node's tip is polled.
Rounds alternate between the two modes, each on a fresh network. Prints one JSON document.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from files import fresh_dir, wait_until  # noqa: E402
from relay import start_network  # noqa: E402


def write_config(directory, compact):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.toml"), "w") as f:
        f.write(f"[network]\ncompact_blocks = {'true' if compact else 'false'}\n")


def one_round(root, args, compact):
    nodes, rpcs, transactions = start_network(root, args.nodes, args.count,
                                              lambda directory: write_config(directory, compact))
    for tx in transactions:
        rpcs[0].call("chain.sendrawtransaction", {"hex": tx})
    wait_until("every mempool to hold every transaction",
               lambda: all(r.call("mempool.info", {})["size"] >= len(transactions) for r in rpcs), timeout=600)
    called = time.time()
    mined = rpcs[0].call("chain.generate", {"blocks": 1})
    start = time.time()
    tip = rpcs[0].call("chain.info", {})["best_hash"]
    arrivals = {}
    while len(arrivals) < len(rpcs) - 1:
        if time.time() - start > 120:
            raise SystemExit(f"the block did not reach every node: {len(arrivals)} of {len(rpcs) - 1}")
        for index, rpc in enumerate(rpcs[1:], start=2):
            if index not in arrivals and rpc.call("chain.info", {})["best_hash"] == tip:
                arrivals[index] = time.time() - start
        time.sleep(0.005)
    for node in nodes:
        node.stop()
    return {
        "compact": compact,
        "block_transactions": args.count + 1,
        "mined": mined,
        "generate_seconds": start - called,
        "all_nodes_seconds": max(arrivals.values()),
        "median_node_seconds": statistics.median(arrivals.values()),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default="/tmp/peerchain-bench/propagation")
    parser.add_argument("--keep", action="store_true", help="keep each round's nodes' directories (and logs)")
    args = parser.parse_args()
    fresh_dir(args.dir)
    rounds = []
    for round_ in range(args.rounds):
        for compact in (True, False):
            root = os.path.join(args.dir, f"round-{round_}-{'compact' if compact else 'header'}")
            rounds.append(one_round(root, args, compact))
            print(json.dumps(rounds[-1]), file=sys.stderr)
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)

    def median(compact, key):
        return statistics.median(r[key] for r in rounds if r["compact"] == compact)

    compact_all, header_all = median(True, "all_nodes_seconds"), median(False, "all_nodes_seconds")
    print(json.dumps({
        "nodes": args.nodes,
        "block_transactions": args.count + 1,
        "rounds": rounds,
        "median_all_nodes_seconds": {"compact": compact_all, "header_only": header_all},
        "median_node_seconds": {"compact": median(True, "median_node_seconds"),
                                "header_only": median(False, "median_node_seconds")},
        "header_only_over_compact": round(header_all / compact_all, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
