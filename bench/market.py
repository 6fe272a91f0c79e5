#!/usr/bin/env python3
"""Trading on loopback (issue 19), on regtest:

- offer validation rate: `target/release/offers` checks 100,000 offers in process (terms
  against their coins, then signatures on all cores) and lists them in a book;
- an offer reaching 10 nodes: node 1 of a 10-node network (node i bootstrapped to nodes i-1
  and i/2) offers a coin it already holds; the time until all ten books list it (median of
  five);
- take to confirmation: node 2 takes an offer; the time until the take is in node 1's
  mempool, and from node 1 mining a block until node 2's wallet sees the swap confirmed
  (regtest mines on demand: on a live network the block interval comes on top);
- a late joiner syncing a book of `--book` offers: node 1 (alone) makes them in ladders of
  100 (one funding transaction each), then a fresh node bootstrapped to it is timed until its
  book holds them all;
- transactions and bytes per trade, beside Bisq's four transactions per trade (maker's fee,
  taker's fee, deposit, payout: docs.bisq.network/trading-rules).

Prints one JSON document.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from files import Node, fresh_dir, wait_until, BIN_DIR  # noqa: E402
from relay import Rpc  # noqa: E402


def book_ids(rpc, limit=200_000):
    return {o["offer_id"] for o in rpc.call("market.book", {"limit": limit})}


def book_size(rpc):
    # market.book lists at most 10,000 offers; market.info counts them all.
    return rpc.call("market.info", {})["offers"]


def validation(count):
    out = subprocess.run([os.path.join(BIN_DIR, "offers"), "--count", str(count)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def funded_maker(root, name, bootstrap=()):
    """A node with a wallet, spendable coins, and a token of 10^12 base units."""
    node = Node(root, name, bootstrap)
    node.cli("wallet", "create")
    node.cli("chain", "generate", "111")
    asset = node.cli("token", "issue", "benchgold", "1000000000000")["asset"]
    node.cli("chain", "generate", "1")
    return node, asset


def network_part(root, nodes, rounds):
    maker, asset = funded_maker(root, "node-1")
    started = [maker]
    for i in range(2, nodes + 1):
        bootstrap = sorted({started[i - 2].p2p(), started[i // 2 - 1].p2p()})
        started.append(Node(root, f"node-{i}", bootstrap))
    height = maker.cli("chain", "info")["height"]
    for node in started:
        wait_until("every node to sync", lambda: node.cli("chain", "info")["height"] >= height, timeout=300)
    rpcs = [Rpc(node) for node in started]
    # Coins of the offers' sizes first, so that each offer publishes at once.
    own = maker.cli("wallet", "address")["address"]
    for r in range(rounds):
        rpcs[0].call("token.send", {"address": own, "amount": 1_000 + r, "asset": asset})
    maker.cli("chain", "generate", "1")
    height += 1
    for node in started:
        wait_until("every node to sync", lambda: node.cli("chain", "info")["height"] >= height, timeout=300)
    time.sleep(2)  # gossip meshes form
    reach = []
    offers = []
    for r in range(rounds):
        start = time.time()
        made = rpcs[0].call("market.offer", {"give_amount": 1_000 + r, "give_asset": asset,
                                             "want_amount": 10_000_000, "want_asset": "coin", "expires": 500})
        assert made["funding_txid"] is None, made
        offer = made["offer_id"]
        wait_until("every book to list the offer", lambda: all(offer in book_ids(rpc) for rpc in rpcs), timeout=60)
        reach.append(time.time() - start)
        offers.append(offer)

    # Take to confirmation: node 2 has coins from node 1.
    taker = started[1]
    taker.cli("wallet", "create")
    rpcs[0].call("wallet.send", {"address": taker.cli("wallet", "address")["address"], "amount": 10 * 100_000_000})
    maker.cli("chain", "generate", "1")
    wait_until("the taker's coins", lambda: taker.cli("wallet", "balance")["confirmed"] > 0, timeout=60)
    coins_before = taker.cli("token", "balance")["coin"]
    wanted = next(o for o in rpcs[1].call("market.book", {}) if o["offer_id"] == offers[0])["want"]["amount"]
    start = time.time()
    txid = rpcs[1].call("market.take", {"offer_ids": [offers[0]], "fee_rate": 1})["txid"]
    took = time.time() - start
    wait_until("the take in the miner's mempool", lambda: maker.try_cli("chain", "tx", txid), timeout=60)
    in_mempool = time.time() - start
    mined = time.time()
    maker.cli("chain", "generate", "1")
    wait_until("the taker to see the swap confirmed",
               lambda: (taker.try_cli("chain", "tx", txid) or {}).get("confirmations", 0) > 0, timeout=60)
    confirmed_seen = time.time() - mined
    take_tx = taker.cli("chain", "tx", txid)
    fee = coins_before - taker.cli("token", "balance")["coin"] - wanted
    for node in started:
        node.stop()
    return {
        "nodes": nodes,
        "reach_all_books_seconds": reach,
        "median_reach_all_books_seconds": statistics.median(reach),
        "take_rpc_seconds": took,
        "take_to_miner_mempool_seconds": in_mempool,
        "block_to_taker_confirmed_seconds": confirmed_seen,
        "take_tx_bytes": take_tx["size"],
        "take_fee_units": fee,
    }


def late_joiner_part(root, book):
    maker, asset = funded_maker(root, "maker")
    rpc = Rpc(maker)
    start = time.time()
    funding_bytes = []
    ladders = book // 100
    for n in range(ladders):
        made = rpc.call("market.offer", {"give_amount": 100 * 10, "give_asset": asset, "want_amount": 100 * 1_000,
                                         "want_asset": "coin", "ladder": 100, "expires": 5_000})
        if n < 3:
            funding_bytes.append(maker.cli("chain", "tx", made["funding_txid"])["size"])
        # The wallet funds the next ladder only from confirmed token coins.
        maker.cli("chain", "generate", "1")
    wait_until("the maker's book", lambda: book_size(rpc) >= ladders * 100, timeout=1800)
    made_seconds = time.time() - start
    start = time.time()
    joiner = Node(root, "joiner", [maker.p2p()])
    joiner_rpc = Rpc(joiner)
    wait_until("the late joiner's book", lambda: book_size(joiner_rpc) >= ladders * 100, timeout=1800)
    synced = time.time() - start
    joiner.stop()
    maker.stop()
    return {
        "book_offers": ladders * 100,
        "maker_seconds_to_make": made_seconds,
        "late_joiner_start_to_full_book_seconds": synced,
        "funding_tx_bytes_per_ladder_of_100": statistics.median(funding_bytes),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--book", type=int, default=100_000)
    parser.add_argument("--dir", default="/tmp/peerchain-bench/market")
    args = parser.parse_args()
    fresh_dir(args.dir)
    result = {"validation": validation(100_000)}
    print(json.dumps(result["validation"]), file=sys.stderr)
    result["network"] = network_part(os.path.join(args.dir, "net"), args.nodes, args.rounds)
    print(json.dumps(result["network"]), file=sys.stderr)
    result["late_joiner"] = late_joiner_part(os.path.join(args.dir, "late"), args.book)
    net = result["network"]
    ladder = result["late_joiner"]["funding_tx_bytes_per_ladder_of_100"]
    result["per_trade"] = {
        "peerchain_transactions": 1,
        "peerchain_bytes": net["take_tx_bytes"] + ladder / 100,
        "peerchain_fee_units_at_1_per_byte": net["take_fee_units"] + ladder / 100,
        "bisq_transactions": 4,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
