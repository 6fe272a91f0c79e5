#!/usr/bin/env python3
"""The ledger benchmark's workload on litecoind (regtest), for a side-by-side comparison.

Builds blocks of N one-in-two-out transfers, each spending a coin of its own key (P2WPKH),
measures mempool acceptance (sendrawtransaction, in JSON-RPC batches), then starts a fresh
litecoind and times how fast it connects the transfer blocks (submitblock), with full script
verification (regtest has no assumevalid). Prints one JSON document.
"""
import argparse, base64, json, os, shutil, subprocess, sys, time, urllib.request


class Node:
    def __init__(self, datadir, rpcport, port, wallet, extra=()):
        self.datadir, self.rpcport = datadir, rpcport
        shutil.rmtree(datadir, ignore_errors=True)
        os.makedirs(datadir)
        args = ["litecoind", "-regtest", f"-datadir={datadir}", "-rpcuser=u", "-rpcpassword=p",
                f"-rpcport={rpcport}", f"-port={port}", "-listen=0", "-dnsseed=0", "-fallbackfee=0.0001",
                "-maxmempool=2000", "-rpcthreads=4", "-rpcworkqueue=1000", "-printtoconsole=0"]
        if not wallet:
            args.append("-disablewallet")
        if any(arg.startswith(("-listen", "-connect")) for arg in extra):
            args.remove("-listen=0")
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.auth = "Basic " + base64.b64encode(b"u:p").decode()
        deadline = time.time() + 60
        while True:
            try:
                self.call("getblockcount")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def post(self, payload, wallet=None):
        path = f"/wallet/{wallet}" if wallet else "/"
        req = urllib.request.Request(f"http://127.0.0.1:{self.rpcport}{path}", data=json.dumps(payload).encode(),
                                     headers={"Authorization": self.auth, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=3600) as r:
            return json.loads(r.read())

    def call(self, method, *params, wallet=None):
        answer = self.post({"jsonrpc": "1.0", "id": 0, "method": method, "params": list(params)}, wallet)
        if answer.get("error"):
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def batch(self, method, param_lists, wallet=None, chunk=2000):
        results = []
        for start in range(0, len(param_lists), chunk):
            payload = [{"jsonrpc": "1.0", "id": i, "method": method, "params": p}
                       for i, p in enumerate(param_lists[start:start + chunk])]
            answers = sorted(self.post(payload, wallet), key=lambda a: a["id"])
            for a in answers:
                if a.get("error"):
                    raise RuntimeError(f"{method}: {a['error']}")
                results.append(a["result"])
        return results

    def stop(self):
        try:
            self.call("stop")
        except Exception:
            pass
        self.proc.wait(timeout=120)


def funded_owners(a, n):
    """Mines funds and fans them out into one 0.04-LTC coin per owner key. Returns (miner
    address, owners), each owner a dict with its `address`, private `key` and `coin`.

    The owner keys are made in a wallet of their own, which is unloaded before the funding: a
    wallet tracking its own coins slows down with each of them (with 100,000, at 1393c90, each
    1,000-output payment took 15 s, then 40 s, and signing fell from 2,500 to 130 a second), and neither the
    funding nor the transfers are what is measured."""
    mine_to = a.call("getnewaddress", wallet="w")
    # Regtest halves the reward every 150 blocks: mature 50-LTC coinbases (100 blocks deep)
    # fund the fan-out, 40 LTC per 1,000 owners, with a margin.
    a.call("generatetoaddress", 100 + max(20, -(-n * 4 // 5_000) + 20), mine_to, wallet="w")
    a.call("createwallet", "owners")
    addresses = a.batch("getnewaddress", [["", "bech32"]] * n, wallet="owners")
    keys = a.batch("dumpprivkey", [[address] for address in addresses], wallet="owners")
    a.call("unloadwallet", "owners")
    coins = {}
    per_tx = 1000
    for start in range(0, n, per_tx):
        txid = a.call("sendmany", "", {address: 0.04 for address in addresses[start:start + per_tx]}, wallet="w")
        for out in a.call("getrawtransaction", txid, True)["vout"]:
            script = out["scriptPubKey"]
            address = script.get("address") or (script.get("addresses") or [None])[0]
            coins[address] = {"txid": txid, "vout": out["n"], "scriptPubKey": script["hex"], "amount": out["value"]}
    # Confirm all of it: a coin's transaction may have only 25 descendants in the mempool,
    # and a block holds about 30 of these fan-outs.
    while a.call("getmempoolinfo")["size"] > 0:
        a.call("generatetoaddress", 1, mine_to, wallet="w")
    owners = [{"address": address, "key": key, "coin": coins[address]} for address, key in zip(addresses, keys)]
    return mine_to, owners


def signed_transfers(a, owners):
    """One signed one-in-two-out transfer per owner's coin, as hex: half back to the owner's
    key (validation costs the same for a reused key; the wallet makes only about 300 keys a
    second), half to the next owner's. Each owner's coin becomes the first output, spendable
    once the transfer is mined. Signed with the keys given explicitly, so no wallet is
    involved."""
    halves = [round((float(o["coin"]["amount"]) - 0.0001) / 2, 8) for o in owners]
    raws = a.batch("createrawtransaction", [
        [[{"txid": o["coin"]["txid"], "vout": o["coin"]["vout"]}],
         [{o["address"]: half}, {owners[(i + 1) % len(owners)]["address"]: half}]]
        for i, (o, half) in enumerate(zip(owners, halves))])
    signed = a.batch("signrawtransactionwithkey", [
        [raw, [o["key"]], [{k: o["coin"][k] for k in ("txid", "vout", "scriptPubKey", "amount")}]]
        for raw, o in zip(raws, owners)])
    if not all(s["complete"] for s in signed):
        raise RuntimeError("signrawtransactionwithkey left a transfer unsigned")
    hexes = [s["hex"] for s in signed]
    decoded = a.batch("decoderawtransaction", [[h] for h in hexes])
    for o, half, transfer in zip(owners, halves, decoded):
        o["coin"] = {"txid": transfer["txid"], "vout": 0, "scriptPubKey": o["coin"]["scriptPubKey"], "amount": half}
    return hexes


def build_chain(a, n, rounds):
    """On a fresh wallet node: funds `n` owner keys, then `rounds` times submits one signed
    transfer per owner and mines until the mempool is empty. Returns the height where the
    transfers start, the transfer blocks' hashes, the seconds spent in sendrawtransaction and
    the number of transfers accepted."""
    a.call("createwallet", "w")
    mine_to, owners = funded_owners(a, n)
    setup_height = a.call("getblockcount")
    transfer_blocks, mempool_seconds, accepted = [], 0.0, 0
    for _ in range(rounds):
        hexes = signed_transfers(a, owners)
        started = time.time()
        txids = a.batch("sendrawtransaction", [[h] for h in hexes], chunk=500)
        mempool_seconds += time.time() - started
        accepted += len(txids)
        # Mine until the mempool is empty (a litecoin block holds about 7,000 such transfers).
        while a.call("getmempoolinfo")["size"] > 0:
            transfer_blocks += a.call("generatetoaddress", 1, mine_to, wallet="w")
    return setup_height, transfer_blocks, mempool_seconds, accepted


def rpc_send(args):
    """sendrawtransaction throughput: pre-signed transfers, one request each, one connection."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import rpc_client
    a = Node(os.path.join(args.dir, "rpc"), 19620, 19621, wallet=True)
    a.call("createwallet", "w")
    _, owners = funded_owners(a, args.rpc_send)
    hexes = signed_transfers(a, owners)
    result = rpc_client.submit(f"127.0.0.1:{a.rpcport}", "u:p", "sendrawtransaction", [[h] for h in hexes], "1.0")
    a.stop()
    result["litecoind"] = subprocess.run(["litecoind", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(json.dumps(result, indent=2))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-block", type=int, default=10000)
    parser.add_argument("--blocks", type=int, default=1)
    parser.add_argument("--dir", default="/tmp/peerchain-bench/litecoind")
    parser.add_argument("--rpc-send", type=int, default=0, help="only measure sendrawtransaction over RPC, with this many")
    args = parser.parse_args()
    if args.rpc_send:
        return rpc_send(args)
    n = args.per_block

    a = Node(os.path.join(args.dir, "a"), 19600, 19601, wallet=True)
    setup_height, transfer_blocks, mempool_seconds, accepted = build_chain(a, n, args.blocks)

    setup_hashes = [a.call("getblockhash", h) for h in range(1, setup_height + 1)]
    setup_hex = [a.call("getblock", h, 0) for h in setup_hashes]
    transfer_hex = [a.call("getblock", h, 0) for h in transfer_blocks]
    transfers_in_blocks = sum(len(a.call("getblock", h, 1)["tx"]) - 1 for h in transfer_blocks)
    a.stop()

    b = Node(os.path.join(args.dir, "b"), 19610, 19611, wallet=False)
    for h in setup_hex:
        b.call("submitblock", h)
    started = time.time()
    for h in transfer_hex:
        result = b.call("submitblock", h)
        if result is not None:
            raise RuntimeError(f"submitblock: {result}")
    connect_seconds = time.time() - started
    height = b.call("getblockcount")
    b.stop()
    version = subprocess.run(["litecoind", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(json.dumps({
        "litecoind": version,
        "per_block_requested": n,
        "transfer_blocks": len(transfer_blocks),
        "transfers": transfers_in_blocks,
        "chain_height": height,
        "connect": {"seconds": connect_seconds, "transactions_per_second": round(transfers_in_blocks / connect_seconds)},
        "mempool_accept": {"transactions": accepted, "seconds": mempool_seconds,
                           "transactions_per_second": round(accepted / mempool_seconds), "via": "JSON-RPC batches of 500"},
    }, indent=2))


if __name__ == "__main__":
    sys.exit(main())
