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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from files import observed_transfer  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--dir", default="/tmp/peerchain-bench/syscalls")
    args = parser.parse_args()
    tables = {name: os.path.join(args.dir, f"{name}.strace") for name in ("source", "downloader")}

    def tracers(source, downloader):
        return [subprocess.Popen(["strace", "-c", "-f", "-o", tables[name], "-p", str(node.proc.pid)],
                                 stderr=subprocess.DEVNULL)
                for name, node in (("source", source), ("downloader", downloader))]

    observed_transfer(args.dir, args.mib, tracers)
    for name, table in tables.items():
        print(f"== {name} ({args.mib} MiB)")
        print(open(table).read())


if __name__ == "__main__":
    main()
