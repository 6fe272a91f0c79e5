//! `kill -9` at random moments of a node that is mining, one that is syncing, one that is
//! downloading a file and one whose wallet is sending: after every restart the store checks
//! out (`chain verify`), nothing reported is lost, the wallet agrees with a fresh scan of the
//! chain, and a partial download resumes to identical bytes.
//!
//! `FAULT_ROUNDS` sets the rounds of each (default 4 here; `tests/faults/long.sh` runs 50).
//! Each test prints a `FAULTS` line with its figures; RELIABILITY.md ("Faults") reports them.

mod support;

use std::time::{Duration, Instant};

use support::{TestNode, wait_for};

fn rounds() -> u64 {
    std::env::var("FAULT_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(4)
}

/// A small random source (xorshift), seeded from the clock and printed, so that a failing
/// run's moments can be read back.
struct Moments(u64);

impl Moments {
    fn new(what: &str) -> Moments {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
        eprintln!("{what}: seed {seed}");
        Moments(seed)
    }

    /// A duration between `low` and `high` milliseconds.
    fn between(&mut self, low: u64, high: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(low + self.0 % (high - low + 1))
    }
}

fn height(node: &TestNode) -> u64 {
    node.height()
}

fn verify(node: &TestNode, round: u64) {
    let output = node.cli(&["chain", "verify", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    assert!(output.status.success() && report["ok"] == true, "round {round}: chain verify: {report}");
}

#[test]
fn kill_9_of_a_mining_node_loses_no_reported_block() {
    let mut moments = Moments::new("mining");
    // (A mining node makes its wallet itself.)
    let mut node = TestNode::start("regtest", &["--mine", "--mining-threads", "1"]);
    let mut peak = 0;
    for round in 0..rounds() {
        wait_for("mining progress", Duration::from_secs(60), || (height(&node) > 0).then_some(()));
        std::thread::sleep(moments.between(50, 1500));
        let reported = height(&node);
        peak = peak.max(node.peak_memory_mib());
        node.kill9();
        node.launch(&["--mine", "--mining-threads", "1"]);
        let after = height(&node);
        assert!(after >= reported, "round {round}: height {after} after the restart, {reported} reported before");
        verify(&node, round);
    }
    eprintln!(
        "FAULTS kill -9 mining: {} rounds survived, 0 blocks lost, chain verify ok every round, peak memory {peak} MiB",
        rounds()
    );
    node.stop();
}

#[test]
fn kill_9_of_a_syncing_node_resumes_and_catches_up() {
    let mut moments = Moments::new("syncing");
    let source = TestNode::start("regtest", &[]);
    source.json(&["wallet", "create"]);
    let source_addr = source.p2p_addr();
    let mut node = TestNode::start("regtest", &["--bootstrap", &source_addr]);
    let mut peak = 0;
    let mut cut_midway = 0;
    for round in 0..rounds() {
        // While the node is down the source gets ahead; the node is killed at a random moment
        // of catching up. (400 blocks a round: mined in a burst, regtest blocks' times run ahead
        // of the clock, by about a second every six blocks, and 50 rounds of 1,000 would pass
        // the two hours a block may be ahead.)
        node.kill9();
        source.json(&["chain", "generate", "400"]);
        node.launch(&["--bootstrap", &source_addr]);
        std::thread::sleep(moments.between(0, 300));
        let reported = height(&node);
        if reported < height(&source) {
            cut_midway += 1;
        }
        peak = peak.max(node.peak_memory_mib());
        node.kill9();
        node.launch(&["--bootstrap", &source_addr]);
        let after = height(&node);
        assert!(after >= reported, "round {round}: height {after} after the restart, {reported} reported before");
        verify(&node, round);
    }
    let tip = source.json(&["chain", "info"])["best_hash"].clone();
    let started = Instant::now();
    wait_for("the node to catch up", Duration::from_secs(120), || {
        (node.json(&["chain", "info"])["best_hash"] == tip).then_some(())
    });
    eprintln!(
        "FAULTS kill -9 syncing: {} rounds survived ({cut_midway} cut mid-sync), caught up with {} blocks {:.1} s after the last restart, chain verify ok every round, peak memory {peak} MiB",
        rounds(),
        height(&source),
        started.elapsed().as_secs_f64()
    );
    node.stop();
}

#[test]
fn kill_9_of_a_downloading_node_resumes_to_identical_bytes() {
    let mut moments = Moments::new("downloading");
    let files = tempfile::tempdir().unwrap();
    let bytes = peerchain_testing::pseudo_random(24 << 20, 17);
    let original = files.path().join("archive.bin");
    std::fs::write(&original, &bytes).unwrap();
    let seeder = TestNode::start("regtest", &[]);
    let id = seeder.json(&["file", "add", original.to_str().unwrap()])["id"].as_str().unwrap().to_owned();
    let seeder_addr = seeder.p2p_addr();
    // Slow enough (8 MiB/s) for a kill to land mid-transfer.
    let config = "[files]\nmax_download_kib_per_sec = 8192\n";
    let mut node = TestNode::start_with_config("regtest", config, &["--bootstrap", &seeder_addr]);
    let copy = files.path().join("copy.bin");
    let copy_text = copy.to_str().unwrap().to_owned();
    let mut killed_partway = 0;
    let mut peak = 0;
    for round in 0..rounds() {
        node.json(&["file", "get", &id, "-o", &copy_text, "--background"]);
        std::thread::sleep(moments.between(100, 2500));
        peak = peak.max(node.peak_memory_mib());
        let status = node.json(&["file", "status", &id]);
        if status["state"] != "done" {
            killed_partway += 1;
        }
        node.kill9();
        node.launch(&["--bootstrap", &seeder_addr]);
        verify(&node, round);
        // A round that found it complete starts over, so that every round has a transfer to cut.
        let listed = node.json(&["file", "list"]);
        let complete = listed.as_array().unwrap().iter().any(|f| f["id"] == id.as_str() && f["complete"] == true);
        if complete && round + 1 < rounds() {
            node.json(&["file", "remove", &id]);
            let _ = std::fs::remove_file(&copy);
        }
    }
    let started = Instant::now();
    node.json(&["file", "get", &id, "-o", &copy_text]);
    assert!(std::fs::read(&copy).unwrap() == bytes, "the download differs from the original");
    eprintln!(
        "FAULTS kill -9 downloading: {} rounds survived ({killed_partway} cut mid-transfer), 24 MiB resumed to identical bytes ({:.1} s after the last restart), 0 bytes wrong, peak memory {peak} MiB",
        rounds(),
        started.elapsed().as_secs_f64()
    );
    node.stop();
}

#[test]
fn kill_9_of_a_sending_wallet_loses_no_payment_and_agrees_with_the_chain() {
    let mut moments = Moments::new("sending");
    let payee = TestNode::start("regtest", &[]);
    payee.json(&["wallet", "create"]);
    let to = payee.json(&["wallet", "address"])["address"].as_str().unwrap().to_owned();
    let payee_addr = payee.p2p_addr();
    let mut node = TestNode::start("regtest", &["--bootstrap", &payee_addr]);
    node.json(&["wallet", "create"]);
    node.json(&["chain", "generate", "40"]);
    wait_for("the payee to sync", Duration::from_secs(60), || (height(&payee) == 40).then_some(()));
    let mut reported: Vec<String> = Vec::new();
    let mut peak = 0;
    for round in 0..rounds() {
        let earlier = reported.len();
        // Payments go out one after another while the kill comes at a random moment.
        let deadline = Instant::now() + moments.between(100, 1500);
        while Instant::now() < deadline {
            let output = node.cli(&["--json", "wallet", "send", &to, "0.1"]);
            if output.status.success() {
                let sent: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
                reported.push(sent["txid"].as_str().unwrap().to_owned());
            }
        }
        peak = peak.max(node.peak_memory_mib());
        node.kill9();
        node.launch(&["--bootstrap", &payee_addr]);
        verify(&node, round);
        // Every payment reported sent is still there: in the chain, or back in the mempool
        // (the wallet submits its unconfirmed payments again at start). Those of earlier rounds
        // were confirmed at the end of their round.
        for txid in &reported[earlier..] {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !node.cli(&["chain", "tx", txid]).status.success() {
                if Instant::now() > deadline {
                    let history = node.json(&["wallet", "history"]);
                    let in_wallet = history.as_array().unwrap().iter().find(|t| t["txid"] == txid.as_str()).cloned();
                    let log: Vec<String> = node
                        .log()
                        .lines()
                        .filter(|l| l.contains("wallet") || l.contains(txid.as_str()))
                        .map(str::to_owned)
                        .collect();
                    panic!("round {round}: payment {txid} lost; in the wallet: {in_wallet:?}\n{}", log.join("\n"));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        node.json(&["chain", "generate", "1"]);
        for txid in &reported[earlier..] {
            assert!(node.json(&["chain", "tx", txid])["confirmations"].as_u64() >= Some(1), "round {round}: {txid}");
        }
    }
    // The wallet's balance is what a fresh scan of the chain says it is.
    let before = wait_for("the wallet to scan", Duration::from_secs(60), || {
        let balance = node.json(&["wallet", "balance"]);
        (balance["scanning"] == false).then_some(balance)
    });
    node.json(&["wallet", "rescan", "--from-height", "0"]);
    let after = wait_for("the rescan", Duration::from_secs(60), || {
        let balance = node.json(&["wallet", "balance"]);
        (balance["scanning"] == false).then_some(balance)
    });
    for field in ["confirmed", "unconfirmed", "immature"] {
        assert_eq!(before[field], after[field], "{field}: the wallet's state differs from the chain's");
    }
    // The payee got at least every payment reported (a payment whose answer the kill cut may
    // have gone too), all confirmed.
    let tip = node.json(&["chain", "info"])["best_hash"].clone();
    wait_for("the payee to take the last block", Duration::from_secs(60), || {
        (payee.json(&["chain", "info"])["best_hash"] == tip).then_some(())
    });
    let received = wait_for("the payee's wallet", Duration::from_secs(60), || {
        let balance = payee.json(&["wallet", "balance"]);
        (balance["scanning"] == false).then(|| balance["confirmed"].as_u64().unwrap())
    });
    let sent = reported.len() as u64 * 10_000_000;
    assert!(received >= sent, "the payee has {received}, {sent} was reported sent");
    assert!(received <= sent + rounds() * 10_000_000, "the payee has {received}, more than could have been sent");
    eprintln!(
        "FAULTS kill -9 sending: {} rounds survived, {} payments reported and 0 lost, wallet equal to a rescan of the chain, peak memory {peak} MiB",
        rounds(),
        reported.len()
    );
}
