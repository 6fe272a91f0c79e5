#!/usr/bin/env python3
"""File transfer on loopback, side by side in one run (issue 5):

  - raw loopback TCP (one socket, 1 MiB writes): the ceiling; and the same with the receiver
    writing what it gets into a file, the ceiling of any downloader on this disk;
  - the leanest encrypted, verified download (target/release/tls_pipe): one bare TLS
    connection, BLAKE3 over every 16 KiB, into a file: the ceiling of that per-byte work;
  - peerchain: seeders with the file added, a fresh downloader running `file get`;
  - aria2 and qBittorrent (libtorrent): seeders with the file, a fresh downloader, peers found
    through a minimal HTTP tracker on loopback (no DHT, no local discovery).

Each transfer is timed from the downloader's start to a complete, verified file on disk, for
one source and for three, after every dirty page of the set-up and of earlier transfers is
written back (`settle`). CPU seconds and peak resident memory (VmHWM) of the downloader and
of the sources are read from /proc. Prints one JSON document.
"""

import argparse
import hashlib
import http.server
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

# BENCH_BIN_DIR runs another build's binaries (say, an older commit's: peerchain, ledger,
# rpc_prep) through the same scripts; PEERCHAIN_BIN another node binary alone.
BIN_DIR = os.path.abspath(os.environ.get("BENCH_BIN_DIR", "target/release"))
PEERCHAIN = os.path.abspath(os.environ.get("PEERCHAIN_BIN", os.path.join(BIN_DIR, "peerchain")))
TLS_PIPE = os.path.abspath("target/release/tls_pipe")
# Where peerchain nodes listen: TCP by default; `--transport quic` for the comparison.
LISTEN = {"tcp": "/ip4/127.0.0.1/tcp/0", "quic": "/ip4/127.0.0.1/udp/0/quic-v1"}
transport = "tcp"
# qBittorrent's peer protocol: TCP by default; `--qbittorrent-protocol both` is its default
# (TCP and uTP), which crawls on loopback.
qbittorrent_protocol = "TCP"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    except OSError:
        return 0.0


def peak_rss_mib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settle():
    """Writes back every dirty page before a timed transfer: each system then starts with no
    writeback of an earlier one's 1-2 GiB under way (the systems run one after another, and
    none of the BitTorrent clients syncs its file), whatever its place in the order."""
    os.sync()


def fresh_dir(path):
    """An empty directory at `path`, whatever was there before."""
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def wait_until(what, check, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def make_file(path, mib):
    if os.path.exists(path) and os.path.getsize(path) == mib << 20:
        return
    with open(path, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(mib):
            # Distinct blocks, cheaply: the block index mixed into the first bytes.
            f.write(i.to_bytes(8, "little") + block[8:])


def fresh_payload(directory, mib):
    """A fresh `directory` holding the file to transfer (`mib` MiB), and its path."""
    fresh_dir(directory)
    path = os.path.join(directory, "payload.bin")
    make_file(path, mib)
    return path


def source_and_downloader(root, path):
    """A node that shares `path` and a fresh node connected to it, and the content id."""
    source = Node(root, "source")
    content = source.cli("file", "add", path)["id"]
    downloader = Node(root, "downloader", [source.p2p()])
    wait_until("peers", lambda: len(downloader.cli("peers")) >= 1)
    return source, downloader, content


def observed_transfer(root, mib, observers):
    """One source to one fresh downloader of a `mib` MiB payload, watched by the tools that
    `observers(source, downloader)` starts (Popen objects, stopped with SIGINT once the
    download is done). Returns the transfer's seconds."""
    path = fresh_payload(root, mib)
    source, downloader, content = source_and_downloader(root, path)
    watching = observers(source, downloader)
    time.sleep(1)
    start = time.time()
    downloader.cli("file", "get", content, "-o", os.path.join(root, "out.bin"))
    seconds = time.time() - start
    for tool in watching:
        tool.send_signal(2)
        tool.wait()
    for node in (source, downloader):
        node.stop()
    return seconds


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- raw TCP

def raw_tcp(mib, into=None):
    """One socket sending 1 MiB writes to another; with `into`, the receiver writes what it
    gets into that file (as every downloader must), and the time runs until it is closed."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    received = [0]

    def sink():
        conn, _ = server.accept()
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        out = open(into, "wb", buffering=0) if into else None
        while (n := conn.recv_into(buf)) > 0:
            received[0] += n
            if out:
                out.write(view[:n])
        if out:
            out.close()
        conn.close()

    thread = threading.Thread(target=sink)
    thread.start()
    block = os.urandom(1 << 20)
    settle()
    start = time.time()
    with socket.create_connection(("127.0.0.1", port)) as client:
        for _ in range(mib):
            client.sendall(block)
    thread.join()
    seconds = time.time() - start
    assert received[0] == mib << 20
    if into:
        os.remove(into)
    return {"seconds": seconds, "mb_per_s": (mib << 20) / seconds / 1e6}


def tls_pipe(path, into):
    """The leanest encrypted, verified download (bench/src/bin/tls_pipe.rs): one TLS 1.3
    connection with AES-128-GCM, BLAKE3 over every 16 KiB, written into a file; no protocol
    or multiplexer. The ceiling of the per-byte work any such download must do here."""
    runs = []
    # The best of three: a ceiling, and this VM's page-cache writes swing from one run to
    # the next by more than half.
    for _ in range(3):
        settle()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([TLS_PIPE, "--payload", path, "--out", into], check=True,
                             capture_output=True, text=True).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        os.remove(into)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        runs.append({"mb_per_s": json.loads(out)["mb_per_s"], "cpu_s": round(cpu, 2)})
    best = max(runs, key=lambda run: run["mb_per_s"])
    return {"mb_per_s": best["mb_per_s"], "cpu_s": best["cpu_s"], "runs": runs}


# ---------------------------------------------------------------- peerchain

class Node:
    """A peerchain node on regtest; with `netns`, it and every command to it run in that network
    namespace (bench/files_link.py)."""

    def __init__(self, root, name, bootstrap=(), netns=None, listen=None):
        self.dir = os.path.join(root, name)
        self.prefix = ["ip", "netns", "exec", netns] if netns else []
        os.makedirs(self.dir, exist_ok=True)
        args = self.prefix + [PEERCHAIN, "--network", "regtest", "--data-dir", self.dir, "node", "--rpc-addr",
                              "127.0.0.1:0", "--listen", listen or LISTEN[transport], "--no-mdns"]
        for b in bootstrap:
            args += ["--bootstrap", b]
        if os.path.exists(os.path.join(self.dir, "rpc.addr")):
            os.remove(os.path.join(self.dir, "rpc.addr"))
        # `ip netns exec` execs the command, so the pid is the node's.
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "node.log"), "a"))
        wait_until("the node's RPC", lambda: os.path.exists(os.path.join(self.dir, "rpc.addr")) and self.try_cli("chain", "info"))

    def run_cli(self, *args):
        return subprocess.run(self.prefix + [PEERCHAIN, "--network", "regtest", "--data-dir", self.dir, *args, "--json"],
                              capture_output=True, text=True)

    def try_cli(self, *args):
        out = self.run_cli(*args)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def cli(self, *args):
        out = self.run_cli(*args)
        if out.returncode != 0:
            raise SystemExit(f"peerchain {' '.join(args)}: {out.stderr}")
        return json.loads(out.stdout)

    def p2p(self):
        info = self.cli("id")
        return f"{info['listen_addrs'][0]}/p2p/{info['peer_id']}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def peerchain(root, path, sources):
    shutil.rmtree(root, ignore_errors=True)
    seeders = [Node(root, f"seed-{i}") for i in range(sources)]
    content = None
    for seeder in seeders:
        content = seeder.cli("file", "add", path)["id"]
    leecher = Node(root, "leecher", [s.p2p() for s in seeders])
    wait_until("peers", lambda: len(leecher.cli("peers")) >= sources)
    out = os.path.join(root, "downloaded.bin")
    settle()
    cpu_before = [cpu_seconds(s.proc.pid) for s in seeders]
    leech_cpu_before = cpu_seconds(leecher.proc.pid)
    start = time.time()
    got = leecher.cli("file", "get", content, "-o", out)
    seconds = time.time() - start
    result = {
        "seconds": seconds,
        "sources_used": got["sources"],
        "downloader_cpu_s": cpu_seconds(leecher.proc.pid) - leech_cpu_before,
        "sources_cpu_s": sum(cpu_seconds(s.proc.pid) - c for s, c in zip(seeders, cpu_before)),
        "downloader_peak_rss_mib": peak_rss_mib(leecher.proc.pid),
        "source_peak_rss_mib": max(peak_rss_mib(s.proc.pid) for s in seeders),
        "out": out,
    }
    for node in seeders + [leecher]:
        node.stop()
    return result


# ---------------------------------------------------------------- BitTorrent clients

class Tracker(http.server.BaseHTTPRequestHandler):
    """A minimal HTTP tracker: every peer that announced an info hash, in compact form."""
    swarms = {}

    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query, keep_blank_values=True,
                                      encoding="latin-1")
        info_hash = query["info_hash"][0]
        peer = (self.client_address[0], int(query["port"][0]))
        peers = Tracker.swarms.setdefault(info_hash, set())
        if query.get("event", [""])[0] == "stopped":
            peers.discard(peer)
        else:
            peers.add(peer)
        compact = b"".join(socket.inet_aton(ip) + p.to_bytes(2, "big") for ip, p in peers if (ip, p) != peer)
        body = b"d8:intervali5e12:min intervali1e5:peers" + str(len(compact)).encode() + b":" + compact + b"e"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_tracker():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tracker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/announce", server


def make_torrent(path, announce, torrent):
    if os.path.exists(torrent):
        os.remove(torrent)
    # 1 MiB pieces, as peerchain's.
    subprocess.run(["mktorrent", "-l", "20", "-a", announce, "-o", torrent, path], check=True,
                   stdout=subprocess.DEVNULL)


def aria2(root, path, sources, announce):
    # Each transfer starts with an empty swarm: peers of an earlier transfer are gone.
    Tracker.swarms.clear()
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    torrent = os.path.join(root, "file.torrent")
    make_torrent(path, announce, torrent)
    common = ["aria2c", "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
              "--file-allocation=none", "--summary-interval=0", "--console-log-level=warn", "--disk-cache=64M",
              "--bt-max-peers=0", "--max-overall-upload-limit=0"]
    seeders = []
    for i in range(sources):
        seed_dir = os.path.join(root, f"seed-{i}")
        os.makedirs(seed_dir)
        os.link(path, os.path.join(seed_dir, os.path.basename(path))) if same_fs(path, seed_dir) else shutil.copy(path, seed_dir)
        seeders.append(subprocess.Popen(common + ["--seed-ratio=0.0", "--bt-seed-unverified=true", f"--listen-port={free_port()}",
                                                  "-d", seed_dir, torrent], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(2)  # the seeders announce themselves
    out_dir = os.path.join(root, "leecher")
    settle()
    cpu_before = [cpu_seconds(s.pid) for s in seeders]
    start = time.time()
    leecher = subprocess.Popen(common + ["--seed-time=0", f"--listen-port={free_port()}", "-d", out_dir, torrent],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    cpu = 0.0
    while leecher.poll() is None:
        peak = max(peak, peak_rss_mib(leecher.pid))
        cpu = max(cpu, cpu_seconds(leecher.pid))
        time.sleep(0.05)
    seconds = time.time() - start
    result = {
        "seconds": seconds,
        "downloader_cpu_s": cpu,
        "sources_cpu_s": sum(cpu_seconds(s.pid) - c for s, c in zip(seeders, cpu_before)),
        "downloader_peak_rss_mib": peak,
        "source_peak_rss_mib": max(peak_rss_mib(s.pid) for s in seeders),
        "out": os.path.join(out_dir, os.path.basename(path)),
        "exit": leecher.returncode,
    }
    for s in seeders:
        s.terminate()
        s.wait()
    return result


def same_fs(a, b):
    return os.stat(a).st_dev == os.stat(b).st_dev


class Qbt:
    """One qbittorrent-nox instance with its own profile, driven through its Web API."""

    def __init__(self, root, name):
        self.profile = os.path.join(root, name)
        config_dir = os.path.join(self.profile, "qBittorrent", "config")
        os.makedirs(config_dir)
        self.web = free_port()
        with open(os.path.join(config_dir, "qBittorrent.conf"), "w") as f:
            f.write(f"""[BitTorrent]
Session\\BTProtocol={qbittorrent_protocol}
Session\\DHTEnabled=false
Session\\LSDEnabled=false
Session\\PeXEnabled=false
Session\\Port={free_port()}
Session\\Interface=lo
Session\\InterfaceName=lo
Session\\MaxConnections=-1
Session\\MaxUploads=-1
Session\\GlobalMaxRatio=-1
Session\\QueueingSystemEnabled=false
Session\\Preallocation=false
[LegalNotice]
Accepted=true
[Preferences]
WebUI\\Port={self.web}
WebUI\\LocalHostAuth=false
WebUI\\CSRFProtection=false
WebUI\\HostHeaderValidation=false
Connection\\ResolvePeerCountries=false
""")
        self.proc = subprocess.Popen(["qbittorrent-nox", f"--profile={self.profile}", f"--webui-port={self.web}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until("qBittorrent's Web API", self.alive, timeout=60)

    def alive(self):
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{self.web}/api/v2/app/version", timeout=1).status == 200
        except OSError:
            return False

    def add(self, torrent, save_path, skip_checking):
        boundary = "----peerchainbench"
        fields = {"savepath": save_path, "skip_checking": "true" if skip_checking else "false", "paused": "false"}
        body = b""
        for key, value in fields.items():
            body += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n{value}\r\n".encode()
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"torrents\"; filename=\"f.torrent\"\r\n"
                 "Content-Type: application/x-bittorrent\r\n\r\n").encode() + open(torrent, "rb").read() + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.web}/api/v2/torrents/add", data=body,
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        urllib.request.urlopen(request, timeout=10).read()

    def torrents(self):
        return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{self.web}/api/v2/torrents/info", timeout=5).read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def qbittorrent(root, path, sources, announce):
    # Each transfer starts with an empty swarm: peers of an earlier transfer are gone.
    Tracker.swarms.clear()
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    torrent = os.path.join(root, "file.torrent")
    make_torrent(path, announce, torrent)
    seeders = []
    for i in range(sources):
        seed = Qbt(root, f"seed-{i}")
        seed_dir = os.path.join(root, f"seed-{i}-data")
        os.makedirs(seed_dir)
        os.link(path, os.path.join(seed_dir, os.path.basename(path))) if same_fs(path, seed_dir) else shutil.copy(path, seed_dir)
        seed.add(torrent, seed_dir, skip_checking=True)
        seeders.append(seed)
    for seed in seeders:
        wait_until("a seeder to seed", lambda: any(t["progress"] == 1 for t in seed.torrents()), timeout=120)
    time.sleep(2)
    leecher = Qbt(root, "leecher")
    out_dir = os.path.join(root, "leecher-data")
    settle()
    cpu_before = [cpu_seconds(s.proc.pid) for s in seeders]
    leech_cpu_before = cpu_seconds(leecher.proc.pid)
    start = time.time()
    leecher.add(torrent, out_dir, skip_checking=False)
    peak = 0.0

    def complete():
        nonlocal peak
        peak = max(peak, peak_rss_mib(leecher.proc.pid))
        torrents = leecher.torrents()
        return torrents and torrents[0]["progress"] == 1 and torrents[0]["state"] in ("uploading", "stalledUP", "pausedUP", "queuedUP", "forcedUP")

    wait_until("qBittorrent to complete", complete, timeout=1800)
    seconds = time.time() - start
    result = {
        "seconds": seconds,
        "downloader_cpu_s": cpu_seconds(leecher.proc.pid) - leech_cpu_before,
        "sources_cpu_s": sum(cpu_seconds(s.proc.pid) - c for s, c in zip(seeders, cpu_before)),
        "downloader_peak_rss_mib": peak,
        "source_peak_rss_mib": max(peak_rss_mib(s.proc.pid) for s in seeders),
        "out": os.path.join(out_dir, os.path.basename(path)),
    }
    for node in seeders + [leecher]:
        node.stop()
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--dir", default="/tmp/peerchain-bench/files")
    parser.add_argument("--systems", default="peerchain,aria2,qbittorrent")
    parser.add_argument("--transport", choices=["tcp", "quic"], default="tcp")
    parser.add_argument("--qbittorrent-protocol", choices=["tcp", "both"], default="tcp")
    args = parser.parse_args()
    global transport, qbittorrent_protocol
    transport = args.transport
    qbittorrent_protocol = {"tcp": "TCP", "both": "Both"}[args.qbittorrent_protocol]
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, "payload.bin")
    make_file(path, args.mib)
    expected = sha256(path)
    announce, _server = start_tracker()
    results = {
        "mib": args.mib,
        "raw_tcp": raw_tcp(args.mib),
        "raw_tcp_to_file": raw_tcp(args.mib, into=os.path.join(args.dir, "raw.out")),
        "tls_verified_to_file": tls_pipe(path, os.path.join(args.dir, "tls.out")),
    }
    runners = {
        "peerchain": lambda root, n: peerchain(root, path, n),
        "aria2": lambda root, n: aria2(root, path, n, announce),
        "qbittorrent": lambda root, n: qbittorrent(root, path, n, announce),
    }
    for system in args.systems.split(","):
        for sources in (1, 3):
            print(f"== {system}: {sources} source(s) -> 1", file=sys.stderr)
            root = os.path.join(args.dir, f"{system}-{sources}")
            result = runners[system](root, sources)
            result["verified"] = sha256(result.pop("out")) == expected
            result["mb_per_s"] = (args.mib << 20) / result["seconds"] / 1e6
            results[f"{system}_{sources}"] = result
            shutil.rmtree(root, ignore_errors=True)
            print(json.dumps(result), file=sys.stderr)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
