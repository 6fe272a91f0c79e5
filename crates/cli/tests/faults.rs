//! Faults between real hosts: nodes in their own network namespaces with their own addresses
//! (built by `tests/faults/lab.sh`), split by a partition and healed, or run on clocks tens of
//! minutes wrong. Needs root, `ip`, `iptables` and `faketime` (`scripts/test` installs them);
//! when they are missing each test says so and passes, except under CI, where it fails.
//!
//! Each test prints a `FAULTS` line with its figures; RELIABILITY.md ("Faults") reports them.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{TestNode, wait_for};

/// Hosts made by `tests/faults/lab.sh`, removed with everything in them when dropped (also
/// when the test fails).
struct Lab {
    prefix: String,
    hosts: usize,
}

fn lab_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/faults/lab.sh")
}

impl Lab {
    fn up(name: &str, hosts: usize) -> Lab {
        let prefix = format!("{name}{}", std::process::id() % 10_000);
        let lab = Lab { prefix, hosts };
        lab.script(&["up", &lab.prefix.clone(), &hosts.to_string()]);
        lab
    }

    fn script(&self, args: &[&str]) {
        let output = Command::new(lab_script()).args(args).output().unwrap();
        assert!(output.status.success(), "lab.sh {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }

    fn partition(&self, left: &str, right: &str) {
        self.script(&["partition", &self.prefix, left, right]);
    }

    fn heal(&self) {
        self.script(&["heal", &self.prefix, &self.hosts.to_string()]);
    }

    /// The command prefix that runs a program on host `i` (from 1).
    fn on(&self, i: usize) -> Vec<String> {
        ["ip", "netns", "exec"].iter().map(|s| (*s).to_owned()).chain([format!("{}-h{i}", self.prefix)]).collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(lab_script()).args(["down", &self.prefix, &self.hosts.to_string()]).output();
    }
}

/// Why this machine cannot build the lab, if it cannot.
fn unavailable(programs: &[&str]) -> Option<String> {
    for program in programs {
        if Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            return Some(format!("`{program}` is not installed"));
        }
    }
    let probe = format!("pcfprobe{}", std::process::id());
    if !Command::new("ip").args(["netns", "add", &probe]).status().is_ok_and(|s| s.success()) {
        return Some("cannot create a network namespace (not root?)".into());
    }
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    None
}

fn skip(programs: &[&str]) -> bool {
    match unavailable(programs) {
        Some(why) => {
            assert!(std::env::var_os("CI").is_none(), "a fault test cannot run under CI: {why}");
            eprintln!("skipped: {why}");
            true
        }
        None => false,
    }
}

/// Prints the nodes' logs if the test fails while they are alive.
struct LogsOnFailure<'a>(&'a [TestNode]);

impl Drop for LogsOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, node) in self.0.iter().enumerate() {
                let log = node.log();
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                eprintln!("===== node {} =====\n{}", i + 1, tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            }
        }
    }
}

/// Starts a node on each host `1..=hosts`, listening on its own address; each knows the
/// ones started before it. `wrap` adds a program to run it under (faketime) on some hosts.
fn start_nodes(lab: &Lab, hosts: usize, wrap: impl Fn(usize) -> Vec<String>) -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = Vec::new();
    let mut known: Vec<String> = Vec::new();
    for i in 1..=hosts {
        let config = format!(
            "[network]\nbootstrap = [{}]\n",
            known.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ")
        );
        let wrapper: Vec<String> = lab.on(i).into_iter().chain(wrap(i)).collect();
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let listen = format!("/ip4/10.77.0.{i}/tcp/4001");
        let node = TestNode::start_wrapped(&wrapper, "regtest", &config, &["--listen", &listen]);
        node.json(&["wallet", "create"]);
        known.push(format!("{listen}/p2p/{}", node.json(&["id"])["peer_id"].as_str().unwrap()));
        nodes.push(node);
    }
    nodes
}

fn best(node: &TestNode) -> (u64, String) {
    let info = node.json(&["chain", "info"]);
    (info["height"].as_u64().unwrap(), info["best_hash"].as_str().unwrap().to_owned())
}

/// Waits until every node in `nodes` has the same tip; returns it.
fn converge(what: &str, nodes: &[&TestNode], timeout: Duration) -> (u64, String) {
    wait_for(what, timeout, || {
        let tips: Vec<_> = nodes.iter().map(|n| best(n)).collect();
        tips.iter().all(|t| *t == tips[0]).then(|| tips[0].clone())
    })
}

fn new_address(node: &TestNode) -> String {
    node.json(&["wallet", "address", "--new"])["address"].as_str().unwrap().to_owned()
}

/// Whether the node knows the transaction, confirmed or in its mempool.
fn knows(node: &TestNode, txid: &str) -> bool {
    node.cli(&["chain", "tx", txid]).status.success()
}

fn confirmations(node: &TestNode, txid: &str) -> u64 {
    node.json(&["chain", "tx", txid])["confirmations"].as_u64().unwrap()
}

fn confirmed_balance(node: &TestNode) -> u64 {
    wait_for("the wallet to scan the tip", Duration::from_secs(30), || {
        let balance = node.json(&["wallet", "balance"]);
        (balance["scanning"] == false).then(|| balance["confirmed"].as_u64().unwrap())
    })
}

/// libfaketime's preload library, where Debian's `faketime` package puts it.
fn libfaketime() -> String {
    let output = Command::new("sh")
        .args(["-c", "dpkg -L libfaketime 2>/dev/null | grep '/libfaketime.so.1$' | head -1"])
        .output()
        .unwrap();
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if path.is_empty() { "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1".into() } else { path }
}

const COIN: u64 = 100_000_000;

#[test]
fn a_partition_of_five_hosts_heals_into_one_chain_and_loses_no_payment() {
    if skip(&["ip", "iptables"]) {
        return;
    }
    let lab = Lab::up("pcp", 5);
    let mut nodes = start_nodes(&lab, 5, |_| Vec::new());
    let _logs = LogsOnFailure(&nodes);
    let all: Vec<&TestNode> = nodes.iter().collect();
    for node in &nodes {
        wait_for("each host to reach two others", Duration::from_secs(60), || {
            (node.json(&["peers"]).as_array()?.len() >= 2).then_some(())
        });
    }

    // Coins on both sides of the coming split: host 1 mines for host 2, host 4 for itself.
    let to_two = new_address(&nodes[1]);
    nodes[0].json(&["chain", "generate", "12", "--address", &to_two]);
    converge("all to take host 1's blocks", &all, Duration::from_secs(60));
    nodes[3].json(&["chain", "generate", "12"]);
    let (before, _) = converge("all to take host 4's blocks", &all, Duration::from_secs(60));
    assert_eq!(before, 24);

    // Hosts 1-3 and 4-5 lose each other; each side pays and mines.
    lab.partition("1 2 3", "4 5");
    let to_three = new_address(&nodes[2]);
    let tx_left = nodes[1].json(&["wallet", "send", &to_three, "1"])["txid"].as_str().unwrap().to_owned();
    nodes[1].json(&["chain", "generate", "2"]);
    let to_five = new_address(&nodes[4]);
    let tx_right = nodes[3].json(&["wallet", "send", &to_five, "2"])["txid"].as_str().unwrap().to_owned();
    nodes[3].json(&["chain", "generate", "4"]);
    let (left, _) = converge("the left side to agree", &all[..3], Duration::from_secs(60));
    let (right, right_tip) = converge("the right side to agree", &all[3..], Duration::from_secs(60));
    assert_eq!((left, right), (26, 28));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(best(&nodes[0]).0, 26, "the partition let blocks through");

    // Healed, all converge on the heavier side's chain.
    lab.heal();
    let healed = Instant::now();
    let tip = converge("all hosts to converge after the heal", &all, Duration::from_secs(120));
    let converged = healed.elapsed();
    assert_eq!(tip, (28, right_tip));

    // The winning side's payment stands; the losing side's is back in mempools (it
    // conflicts with nothing) and is mined again by a host that was on the other side.
    assert!(all.iter().all(|n| confirmations(n, &tx_right) >= 1));
    let relayed = Instant::now();
    wait_for("the losing side's payment to reach host 5's mempool", Duration::from_secs(90), || {
        knows(&nodes[4], &tx_left).then_some(())
    });
    let back_in = relayed.elapsed();
    // (Its reward goes elsewhere, so that host 5's wallet holds only what it was paid.)
    let elsewhere = new_address(&nodes[0]);
    nodes[4].json(&["chain", "generate", "1", "--address", &elsewhere]);
    converge("all to take the block that mines it again", &all, Duration::from_secs(60));
    for node in &all {
        assert!(confirmations(node, &tx_left) >= 1 && confirmations(node, &tx_right) >= 1);
        let verify = node.json(&["chain", "verify"]);
        assert_eq!(verify["ok"], true, "{verify}");
    }

    // Every wallet agrees with the chain: host 3 holds exactly the coin host 2 sent it, host 5
    // the two host 4 sent; the explorer's index of each address says the same.
    assert_eq!(confirmed_balance(&nodes[2]), COIN);
    assert_eq!(confirmed_balance(&nodes[4]), 2 * COIN);
    for (address, coins) in [(&to_three, COIN), (&to_five, 2 * COIN)] {
        let view = wait_for("the address index", Duration::from_secs(30), || {
            let view = nodes[0].json(&["chain", "address", address]);
            (view["indexed_height"] == view["tip_height"]).then_some(view)
        });
        assert_eq!(view["balance"].as_u64(), Some(coins), "{view}");
    }
    let peak = nodes.iter().map(TestNode::peak_memory_mib).max().unwrap_or(0);
    eprintln!(
        "FAULTS partition: 5 hosts, 3/2 split, converged {:.1} s after the heal, losing side's payment relayed again in {:.1} s, 0 payments lost, peak memory {peak} MiB",
        converged.as_secs_f64(),
        back_in.as_secs_f64()
    );
    drop(_logs);
    for node in &mut nodes {
        node.stop();
    }
}

#[test]
fn hosts_with_clocks_forty_minutes_off_neither_split_the_network_nor_get_banned() {
    if skip(&["ip", "iptables", "faketime"]) {
        return;
    }
    let lab = Lab::up("pcc", 3);
    // Host 2 runs 40 minutes ahead, host 3 40 minutes behind (libfaketime, preloaded by `env`
    // so that the node is the process signalled; the monotonic clock stays true, as it does on
    // a machine whose wall clock is merely set wrong).
    let library = libfaketime();
    let skew = |i: usize| -> Vec<String> {
        let offset = match i {
            2 => "+40m",
            3 => "-40m",
            _ => return Vec::new(),
        };
        let preload = format!("LD_PRELOAD={library}");
        let offset = format!("FAKETIME={offset}");
        ["env", &preload, &offset, "FAKETIME_DONT_FAKE_MONOTONIC=1"].iter().map(|s| (*s).to_owned()).collect()
    };
    let mut nodes = start_nodes(&lab, 3, skew);
    let _logs = LogsOnFailure(&nodes);
    let all: Vec<&TestNode> = nodes.iter().collect();
    for node in &nodes {
        wait_for("each host to reach the others", Duration::from_secs(60), || {
            (node.json(&["peers"]).as_array()?.len() >= 2).then_some(())
        });
    }
    // Each mines in turn; every block reaches the others, whose clocks disagree with its time.
    let mut height = 0;
    let mut times = Vec::new();
    for round in 0..3 {
        for (i, node) in nodes.iter().enumerate() {
            node.json(&["chain", "generate", "2"]);
            height += 2;
            times.push(node.json(&["chain", "block", &height.to_string()])["time"].as_i64().unwrap());
            let (agreed, _) = converge(
                &format!("round {round}: host {}'s blocks to reach all", i + 1),
                &all,
                Duration::from_secs(60),
            );
            assert_eq!(agreed, height);
        }
    }
    // The clocks really differ: host 2 stamps its blocks about 40 minutes ahead of host 1's.
    assert!(times[1] - times[0] > 30 * 60, "block times {times:?}");
    // A payment from the slow host's wallet reaches the fast host's miner.
    let to = new_address(&nodes[0]);
    let txid = nodes[2].json(&["wallet", "send", &to, "1"])["txid"].as_str().unwrap().to_owned();
    wait_for("the payment to reach host 2", Duration::from_secs(60), || knows(&nodes[1], &txid).then_some(()));
    nodes[1].json(&["chain", "generate", "1"]);
    converge("the payment's block to reach all", &all, Duration::from_secs(60));
    for (i, node) in nodes.iter().enumerate() {
        assert!(confirmations(node, &txid) >= 1);
        assert!(node.json(&["peers"]).as_array().unwrap().len() >= 2, "host {} lost peers", i + 1);
        let log = node.log();
        assert!(!log.contains("peer banned") && !log.contains("misbehav"), "host {}:\n{log}", i + 1);
    }
    eprintln!(
        "FAULTS clocks: 3 hosts at +0, +40 and -40 minutes, {height} blocks mined by all three, 0 bans, 0 splits"
    );
    drop(_logs);
    for node in &mut nodes {
        node.stop();
    }
}

/// A tmpfs of `mib` MiB mounted on a fresh directory (read-only if asked), unmounted when
/// dropped.
struct SmallDisk {
    mount: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u64, read_only: bool) -> SmallDisk {
        let parent = tempfile::tempdir().unwrap();
        let mount = parent.path().join("disk");
        std::fs::create_dir(&mount).unwrap();
        let options = format!("size={mib}m{}", if read_only { ",ro" } else { "" });
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", &options, "tmpfs"]).arg(&mount).status().unwrap();
        assert!(status.success(), "mount a tmpfs");
        SmallDisk { mount, _parent: parent }
    }

    /// Fills it: a file grown until the disk refuses more.
    fn fill(&self) {
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=1M"])
            .arg(format!("of={}", self.mount.join("filler").display()))
            .output();
    }

    fn free(&self) {
        std::fs::remove_file(self.mount.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

fn can_mount() -> bool {
    let disk = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]).arg(disk.path()).output();
    let ok = mounted.is_ok_and(|o| o.status.success());
    if ok {
        let _ = Command::new("umount").arg(disk.path()).status();
    } else {
        assert!(std::env::var_os("CI").is_none(), "the full-disk tests need to mount a tmpfs (root) under CI");
        eprintln!("skipped: cannot mount a tmpfs (not root?)");
    }
    ok
}

#[test]
fn a_full_disk_stops_the_node_cleanly_and_a_restart_after_freeing_space_loses_nothing() {
    if !can_mount() {
        return;
    }
    let disk = SmallDisk::mount(40, false);
    let data = disk.mount.join("data");
    let logs = tempfile::tempdir().unwrap();
    let mut node = TestNode::start_at(&data, &logs.path().join("node.log"), "regtest", &[]);
    node.json(&["wallet", "create"]);
    node.json(&["chain", "generate", "12"]);
    let to = new_address(&node);
    let payment = node.json(&["wallet", "send", &to, "3"])["txid"].as_str().unwrap().to_owned();
    // Rewards from here on go to another address, so that `to` holds only the payment.
    let miner = new_address(&node);
    node.json(&["chain", "generate", "1", "--address", &miner]);

    // The disk fills (another program, a download, the logs of something else); the node
    // mines on until a write to its chain store fails.
    disk.fill();
    let mut reported = best(&node);
    let mut failure = None;
    for _ in 0..500 {
        let output = node.cli(&["chain", "generate", "5", "--address", &miner]);
        if !output.status.success() {
            failure = Some(String::from_utf8_lossy(&output.stderr).into_owned());
            break;
        }
        reported = best(&node);
    }
    let failure = failure.expect("a full disk never failed a write");
    // It stops by itself, cleanly, saying why.
    let status = node.wait_exit(Duration::from_secs(60));
    assert!(!status.success(), "a node that cannot write must not exit as if all were well");
    let log = node.log();
    assert!(log.contains("cannot write the chain store"), "{failure}\n{log}");
    assert!(log.contains("free some space"), "the way out is said:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("invalid block"), "no block was blamed for the disk:\n{log}");
    for line in log.lines().filter(|l| l.contains("cannot write") || l.contains("stopped because")) {
        eprintln!("FAULTS full disk, the node said: {line}");
    }

    // Space freed, a restart resumes where it was: every block it reported is there, the
    // store checks out, the payment and the wallet stand, and it mines on.
    disk.free();
    node.launch(&[]);
    let (height, hash) = best(&node);
    assert!(height >= reported.0, "height {height} after restart, {} was reported", reported.0);
    if height == reported.0 {
        assert_eq!(hash, reported.1);
    }
    let verify = node.json(&["chain", "verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
    assert!(confirmations(&node, &payment) >= 1);
    let view = node.json(&["chain", "address", &to]);
    assert_eq!(view["balance"].as_u64(), Some(3 * COIN), "{view}");
    assert!(confirmed_balance(&node) > 0);
    node.json(&["chain", "generate", "1", "--address", &miner]);
    assert_eq!(best(&node).0, height + 1);
    eprintln!(
        "FAULTS full disk: stopped by itself after the failed write (exit {status}), restarted at height {height} ({} reported before), chain verify ok, 0 blocks or payments lost",
        reported.0
    );
    node.stop();
}

#[test]
fn a_read_only_or_uncreatable_data_directory_is_a_clear_error_at_start() {
    if !can_mount() {
        return;
    }
    let disk = SmallDisk::mount(1, true);
    for data in [disk.mount.clone(), disk.mount.join("missing").join("data")] {
        let output = Command::new(support::BIN)
            .args(["--network", "regtest", "--data-dir"])
            .arg(&data)
            .args(["node", "--rpc-addr", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(
            stderr.contains(&data.display().to_string()) || stderr.contains(&disk.mount.display().to_string()),
            "names the path: {stderr}"
        );
        assert!(stderr.to_lowercase().contains("read-only"), "says why: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// The delay relay of `crates/testing` (built with the workspace; built here if missing).
fn delay_relay() -> PathBuf {
    let path = PathBuf::from(support::BIN).with_file_name("delay-relay");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status =
            Command::new(cargo).args(["build", "-q", "-p", "peerchain-testing", "--bin", "delay-relay"]).status();
        assert!(status.is_ok_and(|s| s.success()), "cannot build the delay relay");
    }
    path
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What one run over the hosts' links measured.
struct LinkFigures {
    ping_ms: f64,
    block_s: f64,
    tx_s: f64,
    file_s: f64,
    file_mib: u64,
}

/// Five hosts whose links are clean, or slow and lossy (`delay_ms` each way on every
/// connection, `loss_percent` of packets dropped on arrival): how long a block and a
/// transaction take to reach every host, and a file to cross from host 1 to host 5 intact.
fn over_links(name: &str, delay_ms: u64, loss_percent: u64) -> LinkFigures {
    let lab = Lab::up(name, 5);
    if delay_ms > 0 {
        let relay = delay_relay();
        lab.script(&["delay", &lab.prefix, "5", &delay_ms.to_string(), relay.to_str().unwrap()]);
    }
    if loss_percent > 0 {
        lab.script(&["loss", &lab.prefix, "5", &loss_percent.to_string()]);
    }
    let mut nodes = start_nodes(&lab, 5, |_| Vec::new());
    let _logs = LogsOnFailure(&nodes);
    let all: Vec<&TestNode> = nodes.iter().collect();
    for node in &nodes {
        wait_for("each host to reach two others", Duration::from_secs(120), || {
            (node.json(&["peers"]).as_array()?.len() >= 2).then_some(())
        });
    }
    // The links are what they claim: libp2p's own ping measures the round trip.
    let ping_ms = wait_for("ping times", Duration::from_secs(60), || {
        let peers = nodes[0].json(&["peers"]);
        let times: Vec<f64> = peers.as_array()?.iter().filter_map(|p| p["latency_ms"].as_f64()).collect();
        (times.len() >= 2).then(|| times.iter().copied().fold(f64::MAX, f64::min))
    });
    assert!(ping_ms >= 1.8 * delay_ms as f64, "a round trip of {ping_ms} ms with {delay_ms} ms each way");
    nodes[0].json(&["chain", "generate", "11"]);
    converge("the first blocks to reach all", &all, Duration::from_secs(120));

    let started = Instant::now();
    nodes[0].json(&["chain", "generate", "1"]);
    converge("a block to reach all", &all, Duration::from_secs(120));
    let block_s = started.elapsed().as_secs_f64();

    let to = new_address(&nodes[4]);
    let txid = nodes[0].json(&["wallet", "send", &to, "1"])["txid"].as_str().unwrap().to_owned();
    let started = Instant::now();
    for node in &nodes {
        wait_for("a payment to reach every mempool", Duration::from_secs(120), || knows(node, &txid).then_some(()));
    }
    let tx_s = started.elapsed().as_secs_f64();

    let file_mib = env_u64("FAULT_FILE_MIB", 8);
    let files = tempfile::tempdir().unwrap();
    let bytes = peerchain_testing::pseudo_random((file_mib << 20) as usize, 5);
    let original = files.path().join("film.bin");
    std::fs::write(&original, &bytes).unwrap();
    let id = nodes[0].json(&["file", "add", original.to_str().unwrap()])["id"].as_str().unwrap().to_owned();
    let copy = files.path().join("copy.bin");
    let started = Instant::now();
    let got = nodes[4].cli(&["file", "get", &id, "-o", copy.to_str().unwrap(), "--timeout", "1800"]);
    assert!(got.status.success(), "the download failed: {}", String::from_utf8_lossy(&got.stderr));
    let file_s = started.elapsed().as_secs_f64();
    assert!(std::fs::read(&copy).unwrap() == bytes, "the file arrived different");
    drop(_logs);
    for node in &mut nodes {
        node.stop();
    }
    LinkFigures { ping_ms, block_s, tx_s, file_s, file_mib }
}

#[test]
fn blocks_payments_and_a_file_cross_slow_lossy_links_intact() {
    if skip(&["ip", "iptables"]) {
        return;
    }
    let clean = over_links("pcl", 0, 0);
    let slow = over_links("pcs", 50, 5);
    let rate = |f: &LinkFigures| f.file_mib as f64 / f.file_s;
    eprintln!(
        "FAULTS slow links: 5 hosts, 100 ms round trip and 5% loss vs clean: ping {:.0} ms vs {:.1} ms, block to all {:.2} s vs {:.2} s, payment to all mempools {:.2} s vs {:.2} s, {} MiB file {:.1} s ({:.2} MiB/s) vs {:.1} s ({:.1} MiB/s), 0 bytes wrong",
        slow.ping_ms,
        clean.ping_ms,
        slow.block_s,
        clean.block_s,
        slow.tx_s,
        clean.tx_s,
        slow.file_mib,
        slow.file_s,
        rate(&slow),
        clean.file_s,
        rate(&clean)
    );
}

#[test]
fn churn_of_killed_and_restarted_hosts_loses_nothing_and_all_catch_up() {
    if skip(&["ip", "iptables"]) {
        return;
    }
    let lab = Lab::up("pcn", 5);
    let mut nodes = start_nodes(&lab, 5, |_| Vec::new());
    let all_up = |nodes: &[TestNode]| {
        for node in nodes {
            wait_for("each host to reach another", Duration::from_secs(60), || {
                (!node.json(&["peers"]).as_array()?.is_empty()).then_some(())
            });
        }
    };
    all_up(&nodes);
    nodes[0].json(&["chain", "generate", "30"]);
    let addresses: Vec<String> = nodes[1..].iter().map(new_address).collect();
    // Host 1 mines and pays; any of hosts 2-5 is killed with SIGKILL and restarted, one every
    // 2-4 s, for CHURN_SECONDS.
    let seconds = env_u64("CHURN_SECONDS", 20);
    let mut seed = std::process::id() as u64 | 1;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut paid = [0u64; 4];
    let mut payments = Vec::new();
    let mut restarts = 0;
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        let victim = 1 + next(4) as usize;
        nodes[victim].kill9();
        let to = next(4) as usize;
        let sent = nodes[0].json(&["wallet", "send", &addresses[to], "0.5"]);
        payments.push(sent["txid"].as_str().unwrap().to_owned());
        paid[to] += COIN / 2;
        nodes[0].json(&["chain", "generate", "1", "--address", &new_address(&nodes[0])]);
        std::thread::sleep(Duration::from_millis(500 + next(1500)));
        let listen = format!("/ip4/10.77.0.{}/tcp/4001", victim + 1);
        nodes[victim].launch(&["--listen", &listen]);
        restarts += 1;
        std::thread::sleep(Duration::from_millis(1000 + next(1500)));
    }
    nodes[0].json(&["chain", "generate", "1"]);
    let _logs = LogsOnFailure(&nodes);
    let all: Vec<&TestNode> = nodes.iter().collect();
    let started = Instant::now();
    let tip = converge("every host to catch up after the churn", &all, Duration::from_secs(120));
    let caught_up = started.elapsed().as_secs_f64();
    let peak = nodes.iter().map(TestNode::peak_memory_mib).max().unwrap_or(0);
    for node in &all {
        assert_eq!(node.json(&["chain", "verify"])["ok"], true);
        for txid in &payments {
            assert!(confirmations(node, txid) >= 1, "payment {txid} not confirmed on every host");
        }
    }
    for (i, node) in nodes[1..].iter().enumerate() {
        assert_eq!(confirmed_balance(node), paid[i], "host {}'s wallet", i + 2);
    }
    eprintln!(
        "FAULTS churn: 5 hosts, {restarts} SIGKILL restarts in {seconds} s while host 1 mined and paid, {} payments and 0 lost, all hosts at height {} {caught_up:.1} s after the last restart, peak memory {peak} MiB",
        payments.len(),
        tip.0
    );
    drop(_logs);
    for node in &mut nodes {
        node.stop();
    }
}
