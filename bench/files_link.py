#!/usr/bin/env python3
"""peerchain against raw TCP on a link of a given rate (issue 5: "within reach of the raw TCP
rate"). On loopback nothing limits the rate but the processor, so any downloader that
encrypts, verifies and writes what it gets runs far below a socket that only copies
(bench/files.py measures that). Here two network namespaces are joined by a veth pair whose
ends a token bucket (tc tbf) limits to the rate of a real link: raw TCP and a peerchain
download (one source, TLS) cross the same link one after the other, each after `settle`, and
the ratio says how much of the link peerchain uses. (No added delay: this VM's kernel has no
netem.)

Usage (root): python3 bench/files_link.py [--mib 512] [--rates-mbit 1000,2500,10000]
Prints one JSON document. Subcommands `sink` and `send` are the raw TCP ends, run inside the
namespaces.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from files import Node, cpu_seconds, fresh_dir, fresh_payload, settle, sha256, wait_until  # noqa: E402

SOURCE_NS, DOWNLOADER_NS = "pcbench-src", "pcbench-dl"
SOURCE_IP, DOWNLOADER_IP = "10.77.0.1", "10.77.0.2"
RAW_PORT = 5301


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def remove_link():
    for ns in (SOURCE_NS, DOWNLOADER_NS):
        subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_link(mbit):
    """Two namespaces and a veth pair between them, both ends limited to `mbit` Mbit/s."""
    remove_link()
    for ns in (SOURCE_NS, DOWNLOADER_NS):
        run("ip", "netns", "add", ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")
    run("ip", "link", "add", "pcb-src", "netns", SOURCE_NS, "type", "veth", "peer", "name", "pcb-dl", "netns",
        DOWNLOADER_NS)
    for ns, dev, ip in ((SOURCE_NS, "pcb-src", SOURCE_IP), (DOWNLOADER_NS, "pcb-dl", DOWNLOADER_IP)):
        run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
        run("ip", "-n", ns, "link", "set", dev, "up")
        # A bucket of 1 ms at the rate (at least a 64 KiB segment); 5 ms of queue.
        burst = max(mbit * 1000 // 8, 65536 + 1500)
        run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", f"{mbit}mbit",
            "burst", str(burst), "latency", "5ms")


def raw_tcp(mib):
    """One socket sending 1 MiB writes across the link; timed by the sender from connecting
    until the receiver has read everything and closed."""
    sink = subprocess.Popen(["ip", "netns", "exec", DOWNLOADER_NS, sys.executable, __file__, "sink"],
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "listening"
    settle()
    out = subprocess.run(["ip", "netns", "exec", SOURCE_NS, sys.executable, __file__, "send", str(mib)],
                         check=True, capture_output=True, text=True).stdout
    received = int(sink.stdout.readline())
    sink.wait()
    assert received == mib << 20, f"raw TCP delivered {received} bytes"
    seconds = float(out)
    return {"seconds": seconds, "mb_per_s": (mib << 20) / seconds / 1e6}


def sink_main():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((DOWNLOADER_IP, RAW_PORT))
    server.listen(1)
    print("listening", flush=True)
    conn, _ = server.accept()
    buf = bytearray(1 << 20)
    received = 0
    while (n := conn.recv_into(buf)) > 0:
        received += n
    conn.close()
    print(received, flush=True)


def send_main(mib):
    block = os.urandom(1 << 20)
    start = time.time()
    with socket.create_connection((DOWNLOADER_IP, RAW_PORT)) as client:
        for _ in range(mib):
            client.sendall(block)
        client.shutdown(socket.SHUT_WR)
        client.recv(1)  # the receiver's close: everything arrived
    print(time.time() - start)


def peerchain(root, path):
    fresh_dir(root)
    source = Node(root, "source", netns=SOURCE_NS, listen=f"/ip4/{SOURCE_IP}/tcp/0")
    content = source.cli("file", "add", path)["id"]
    downloader = Node(root, "downloader", [source.p2p()], netns=DOWNLOADER_NS, listen=f"/ip4/{DOWNLOADER_IP}/tcp/0")
    wait_until("peers", lambda: len(downloader.cli("peers")) >= 1)
    out = os.path.join(root, "downloaded.bin")
    settle()
    cpu_before = (cpu_seconds(downloader.proc.pid), cpu_seconds(source.proc.pid))
    start = time.time()
    downloader.cli("file", "get", content, "-o", out)
    seconds = time.time() - start
    result = {
        "seconds": seconds,
        "downloader_cpu_s": cpu_seconds(downloader.proc.pid) - cpu_before[0],
        "source_cpu_s": cpu_seconds(source.proc.pid) - cpu_before[1],
    }
    for node in (source, downloader):
        node.stop()
    result["verified"] = sha256(out) == sha256(path)
    os.remove(out)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--rates-mbit", default="1000,2500,10000")
    parser.add_argument("--dir", default="/tmp/peerchain-bench/link")
    args = parser.parse_args()
    path = fresh_payload(args.dir, args.mib)
    results = {"mib": args.mib, "links": []}
    try:
        for rate in map(int, args.rates_mbit.split(",")):
            make_link(rate)
            raw = raw_tcp(args.mib)
            ours = peerchain(os.path.join(args.dir, "nodes"), path)
            ours["mb_per_s"] = (args.mib << 20) / ours["seconds"] / 1e6
            results["links"].append({"mbit_per_s": rate, "raw_tcp": raw, "peerchain": ours,
                                     "peerchain_over_raw_tcp": ours["mb_per_s"] / raw["mb_per_s"]})
            print(f"{rate} Mbit/s: raw TCP {raw['mb_per_s']:.0f} MB/s, peerchain {ours['mb_per_s']:.0f} MB/s",
                  file=sys.stderr)
    finally:
        remove_link()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    if sys.argv[1:2] == ["sink"]:
        sink_main()
    elif sys.argv[1:2] == ["send"]:
        send_main(int(sys.argv[2]))
    else:
        main()
