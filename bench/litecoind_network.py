#!/usr/bin/env python3
"""The network benchmarks side by side with litecoind (Debian's, regtest), same machine, same
run (issue 3):

  - Initial sync: a chain holding the same number of one-in-two-out transfers, synced by a
    fresh node from one peer on loopback, timed from the fresh node's start until it holds the
    peer's tip. litecoind: the chain is built with its wallet, the fresh node runs with
    `-connect` to the peer and checks every script (regtest has no assumevalid). peerchain:
    bench/sync.py's method (a chain made by `target/release/ledger`).
  - Block propagation between two nodes: a block of COUNT transfers that both mempools already
    hold, until the other node's tip is that block: from the moment the miner's generate call
    returns, and from the call itself (which includes the miner's own connect). Both relay compactly by default (litecoind: BIP 152; peerchain: its compact
    announcements). litecoind's second mempool gets the transfers by RPC, since litecoind
    trickles transactions to peers over minutes; peerchain's by relay (bench/propagation.py's
    method with two nodes).

Prints one JSON document.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import litecoind  # noqa: E402
import propagation  # noqa: E402
import sync  # noqa: E402
from files import fresh_dir, wait_until  # noqa: E402

A_PORTS = (19700, 19701)
B_PORTS = (19710, 19711)


def litecoind_pair(directory, wallet_b=False):
    """A litecoind with a wallet listening on loopback, and one connected to it only."""
    a = litecoind.Node(os.path.join(directory, "a"), *A_PORTS, wallet=True,
                       extra=["-listen=1", "-bind=127.0.0.1"])
    b = litecoind.Node(os.path.join(directory, "b"), *B_PORTS, wallet=wallet_b,
                       extra=[f"-connect=127.0.0.1:{A_PORTS[1]}"])
    return a, b


def litecoind_sync(directory, transfers, rounds):
    a = litecoind.Node(os.path.join(directory, "a"), *A_PORTS, wallet=True, extra=["-listen=1", "-bind=127.0.0.1"])
    _, transfer_blocks, _, _ = litecoind.build_chain(a, transfers // rounds, rounds)
    height = a.call("getblockcount")
    tip = a.call("getbestblockhash")
    in_blocks = sum(len(a.call("getblock", h, 1)["tx"]) - 1 for h in transfer_blocks)
    start = time.time()
    b = litecoind.Node(os.path.join(directory, "b"), *B_PORTS, wallet=False,
                       extra=[f"-connect=127.0.0.1:{A_PORTS[1]}"])
    wait_until("litecoind to sync", lambda: b.call("getbestblockhash") == tip, timeout=3600)
    seconds = time.time() - start
    for node in (a, b):
        node.stop()
    return {"blocks": height, "transfer_blocks": len(transfer_blocks), "transfers": in_blocks,
            "seconds": seconds, "tx_per_s": in_blocks / seconds}


def peerchain_sync(directory, transfers, per_block):
    ledger = sync.prepare_chain(os.path.join(directory, "ledger"), per_block, transfers // per_block)
    seconds = sync.time_sync(ledger, os.path.join(directory, "net"), 1)
    return {"blocks": ledger["chain_height"], "transfer_blocks": transfers // per_block,
            "transfers": transfers, "seconds": seconds, "tx_per_s": transfers / seconds}


def litecoind_propagation(directory, count, rounds):
    a, b = litecoind_pair(directory)
    a.call("createwallet", "w")
    mine_to, owners = litecoind.funded_owners(a, count * rounds)
    results = []
    for round_ in range(rounds):
        hexes = litecoind.signed_transfers(a, owners[round_ * count:(round_ + 1) * count])
        wait_until("B to hold A's chain", lambda: b.call("getbestblockhash") == a.call("getbestblockhash"))
        # Both mempools get the transfers directly: litecoind trickles transactions to peers
        # (a few per second each way), which would take minutes here and is not what this
        # measures.
        for node in (a, b):
            node.batch("sendrawtransaction", [[h] for h in hexes], chunk=500)
        wait_until("both mempools to hold the transfers",
                   lambda: all(n.call("getmempoolinfo")["size"] >= count for n in (a, b)))
        called = time.time()
        mined = a.call("generatetoaddress", 1, mine_to, wallet="w")[0]
        started = time.time()
        while b.call("getbestblockhash") != mined:
            if time.time() - started > 120:
                raise SystemExit("litecoind: the block did not reach B")
            time.sleep(0.005)
        arrived = time.time()
        results.append({"seconds": arrived - started, "from_generate_call_seconds": arrived - called,
                        "block_transactions": count + 1})
        print(json.dumps({"litecoind": results[-1]}), file=sys.stderr)
    for node in (a, b):
        node.stop()
    return results


def peerchain_propagation(directory, count, rounds):
    args = argparse.Namespace(nodes=2, count=count)
    results = []
    for round_ in range(rounds):
        result = propagation.one_round(os.path.join(directory, f"round-{round_}"), args, True)
        results.append({"seconds": result["all_nodes_seconds"],
                        "from_generate_call_seconds": result["generate_seconds"] + result["all_nodes_seconds"],
                        "block_transactions": result["block_transactions"]})
        print(json.dumps({"peerchain": results[-1]}), file=sys.stderr)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--transfers", type=int, default=20_000, help="transfers in the chain to sync")
    parser.add_argument("--per-block", type=int, default=2_000, help="peerchain's transfers per block")
    parser.add_argument("--litecoind-rounds", type=int, default=2,
                        help="litecoind builds its chain in this many rounds of wallet transfers")
    parser.add_argument("--count", type=int, default=5_000, help="transfers in the propagated block")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parts", default="sync,propagation")
    parser.add_argument("--dir", default="/tmp/peerchain-bench/litecoind-network")
    args = parser.parse_args()
    fresh_dir(args.dir)
    version = litecoind.subprocess.run(["litecoind", "-version"], capture_output=True,
                                       text=True).stdout.splitlines()[0]
    report = {"litecoind": version}
    if "sync" in args.parts:
        print(f"== initial sync of {args.transfers} transfers: litecoind", file=sys.stderr)
        ltc_sync = litecoind_sync(os.path.join(args.dir, "ltc-sync"), args.transfers, args.litecoind_rounds)
        print(json.dumps(ltc_sync), file=sys.stderr)
        print("== initial sync: peerchain", file=sys.stderr)
        our_sync = peerchain_sync(os.path.join(args.dir, "sync"), args.transfers, args.per_block)
        print(json.dumps(our_sync), file=sys.stderr)
        report["initial_sync_one_peer"] = {
            "litecoind": ltc_sync,
            "peerchain": our_sync,
            "peerchain_over_litecoind_tx_per_s": round(our_sync["tx_per_s"] / ltc_sync["tx_per_s"], 2),
        }
    if "propagation" in args.parts:
        print(f"== two-node propagation of a {args.count}-transfer block", file=sys.stderr)
        ltc_prop = litecoind_propagation(os.path.join(args.dir, "ltc-prop"), args.count, args.rounds)
        our_prop = peerchain_propagation(os.path.join(args.dir, "prop"), args.count, args.rounds)
        def median(results, key):
            return statistics.median(r[key] for r in results)

        report["two_node_propagation"] = {"litecoind": ltc_prop, "peerchain": our_prop}
        for key in ("seconds", "from_generate_call_seconds"):
            ltc, ours = median(ltc_prop, key), median(our_prop, key)
            report["two_node_propagation"][f"median_{key}"] = {
                "litecoind": ltc, "peerchain": ours, "litecoind_over_peerchain": round(ltc / ours, 3)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
