#!/usr/bin/env python3
"""Transaction relay on loopback (issue 3): the time until 300 transactions submitted to one
node are in the mempool of every node of a 10-node network.

`target/release/rpc_prep` prepares a regtest chain holding 300 coins and 300 pre-signed
transfers of them. Node 1 runs on that data directory; nodes 2..10 start empty, node i
bootstrapped to nodes i-1 and i/2, and sync the chain. The transfers (independent of each
other) are then submitted to node 1 over `--clients` JSON-RPC connections at once, as
wallets would, and every node's mempool is polled until all hold 300.
Prints one JSON document (median of three rounds, each on fresh coins).
"""

import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from files import Node, fresh_dir, wait_until, BIN_DIR  # noqa: E402


class Rpc:
    def __init__(self, node):
        address = open(os.path.join(node.dir, "rpc.addr")).read().strip()
        host, port = address.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port))
        cookie = open(os.path.join(node.dir, ".cookie")).read().strip()
        self.auth = "Basic " + base64.b64encode(cookie.encode()).decode()

    def call(self, method, params):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        self.conn.request("POST", "/", body, {"Authorization": self.auth, "Content-Type": "application/json"})
        reply = json.loads(self.conn.getresponse().read())
        if "error" in reply:
            raise SystemExit(f"{method}: {reply['error']}")
        return reply["result"]

    def batch(self, method, params_list):
        body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": method, "params": p}
                           for i, p in enumerate(params_list)])
        self.conn.request("POST", "/", body, {"Authorization": self.auth, "Content-Type": "application/json"})
        replies = json.loads(self.conn.getresponse().read())
        errors = [r["error"] for r in replies if "error" in r]
        if errors:
            raise SystemExit(f"{method}: {errors[0]}")
        return [r["result"] for r in replies]


def start_network(root, nodes, count, before_start=lambda directory: None):
    """`nodes` nodes on loopback: node 1 on a data directory `rpc_prep` made with `count` coins
    and as many pre-signed transfers, the others empty, node i bootstrapped to nodes i-1 and i/2,
    all synced and their gossip meshes formed. `before_start(directory)` runs before each node
    starts. Returns the nodes, an RPC client of each, and the transfers in hex."""
    first = os.path.join(root, "node-1")
    subprocess.run([os.path.join(BIN_DIR, "rpc_prep"), "--count", str(count), "--dir", first],
                   check=True, stdout=subprocess.DEVNULL)
    transactions = open(os.path.join(first, "transactions.hex")).read().split()
    before_start(first)
    started = [Node(root, "node-1")]
    height = started[0].cli("chain", "info")["height"]
    for i in range(2, nodes + 1):
        before_start(os.path.join(root, f"node-{i}"))
        bootstrap = sorted({started[i - 2].p2p(), started[i // 2 - 1].p2p()})
        started.append(Node(root, f"node-{i}", bootstrap))
    for node in started:
        wait_until("every node to sync", lambda: node.cli("chain", "info")["height"] >= height, timeout=300)
    time.sleep(2)  # gossip meshes form
    return started, [Rpc(node) for node in started], transactions


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", action="store_true",
                        help="each client sends its share in one JSON-RPC batch (as litecoind's benchmark does)")
    parser.add_argument("--dir", default="/tmp/peerchain-bench/relay")
    args = parser.parse_args()
    fresh_dir(args.dir)
    rounds = []
    for round_ in range(args.rounds):
        root = os.path.join(args.dir, f"round-{round_}")
        nodes, rpcs, transactions = start_network(root, args.nodes, args.count)
        clients = [Rpc(nodes[0]) for _ in range(args.clients)]

        def submit(index):
            mine = transactions[index::args.clients]
            if args.batch:
                clients[index].batch("chain.sendrawtransaction", [{"hex": tx} for tx in mine])
                return
            for tx in mine:
                clients[index].call("chain.sendrawtransaction", {"hex": tx})

        start = time.time()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(submit, range(args.clients)))
        submitted = time.time() - start
        wait_until("every mempool to hold every transaction",
                   lambda: all(r.call("mempool.info", {})["size"] >= len(transactions) for r in rpcs), timeout=300)
        seconds = time.time() - start
        rounds.append({"submit_seconds": submitted, "all_mempools_seconds": seconds})
        print(json.dumps(rounds[-1]), file=sys.stderr)
        for node in nodes:
            node.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({
        "nodes": args.nodes,
        "transactions": args.count,
        "clients": args.clients,
        "batch": args.batch,
        "rounds": rounds,
        "median_all_mempools_seconds": statistics.median(r["all_mempools_seconds"] for r in rounds),
        "median_submit_seconds": statistics.median(r["submit_seconds"] for r in rounds),
    }, indent=2))


if __name__ == "__main__":
    main()
