#!/usr/bin/env python3
"""The system calls of a peerchain file transfer: one source to one downloader on loopback,
both nodes under `strace -c -f`, then each one's table (calls per system call). Counts, not
times: strace slows every call down.
Usage: python3 bench/files_syscalls.py [--mib 256]   (needs strace; Debian: strace)
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from files import fresh_payload, source_and_downloader  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--dir", default="/tmp/peerchain-bench/syscalls")
    args = parser.parse_args()
    path = fresh_payload(args.dir, args.mib)
    source, downloader, content = source_and_downloader(args.dir, path)
    tables = {name: os.path.join(args.dir, f"{name}.strace") for name in ("source", "downloader")}
    tracers = [subprocess.Popen(["strace", "-c", "-f", "-o", tables[name], "-p", str(node.proc.pid)],
                                stderr=subprocess.DEVNULL)
               for name, node in (("source", source), ("downloader", downloader))]
    time.sleep(1)
    downloader.cli("file", "get", content, "-o", os.path.join(args.dir, "out.bin"))
    for tracer in tracers:
        tracer.send_signal(2)
        tracer.wait()
    for node in (source, downloader):
        node.stop()
    for name, table in tables.items():
        print(f"== {name} ({args.mib} MiB)")
        print(open(table).read())


if __name__ == "__main__":
    main()
