#!/usr/bin/env python3
"""Where a peerchain file transfer spends its CPU: one source to one downloader on loopback
under `perf record` (both node processes), then the heaviest symbols of `perf report`.
With `--downloader-callers` (or `--source-callers`), only the downloader (or the source) is
recorded, with DWARF call graphs, and the heaviest symbols are listed with the call chains
that reach them (where a copy or a write comes from).
Usage: python3 bench/files_profile.py [--mib 1024] [--downloader-callers | --source-callers]
(needs `perf`; Debian: linux-perf)
"""

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from files import observed_transfer  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--dir", default="/tmp/peerchain-bench/profile")
    callers = parser.add_mutually_exclusive_group()
    callers.add_argument("--downloader-callers", action="store_true")
    callers.add_argument("--source-callers", action="store_true")
    args = parser.parse_args()
    data = os.path.join(args.dir, "perf.data")
    with_callers = args.downloader_callers or args.source_callers

    def recorder(source, downloader):
        if with_callers:
            profiled = downloader if args.downloader_callers else source
            record = ["-F", "499", "--call-graph", "dwarf,16384", "-p", str(profiled.proc.pid)]
        else:
            record = ["-F", "999", "-g", "-p", f"{downloader.proc.pid},{source.proc.pid}"]
        return [subprocess.Popen(["perf", "record", "-o", data] + record,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]

    seconds = observed_transfer(args.dir, args.mib, recorder)
    print(f"transfer: {seconds:.2f} s", file=sys.stderr)
    if with_callers:
        subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "--percent-limit", "2",
                        "-g", "caller,2,callee,function,percent"])
        return
    report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "symbol", "--stdio", "-g", "none"],
                            capture_output=True, text=True).stdout
    rows = [" ".join(line.split()[:3]) for line in report.splitlines() if "%" in line and not line.startswith("#")]
    print("\n".join(rows[:25]))


if __name__ == "__main__":
    main()
