//! A single node, as a real process: mining, restarting, and surviving kill -9.

mod support;

use std::time::Duration;

use support::{TestNode, wait_for};

#[test]
fn a_devnet_node_mines_and_restarts_without_losing_a_block() {
    let mut node = TestNode::start("devnet", &["--mine", "--mining-threads", "1"]);
    wait_for("20 blocks", Duration::from_secs(120), || (node.height() >= 20).then_some(()));
    node.stop();
    let log = node.log();
    assert!(log.contains("chain state saved"), "clean shutdown saves state:\n{log}");

    // What the store says after a clean stop is what the node reports after a restart.
    node.launch(&[]);
    let info = node.json(&["chain", "info"]);
    let height = info["height"].as_u64().unwrap();
    assert!(height >= 20);
    let block = node.json(&["chain", "block", &height.to_string()]);
    assert_eq!(block["hash"], info["best_hash"]);
    assert_eq!(block["confirmations"], 1);
    let coinbase = &block["tx"][0];
    let tx = node.json(&["chain", "tx", coinbase["txid"].as_str().unwrap()]);
    assert_eq!(tx["confirmations"], 1);
    assert_eq!(tx["block_hash"], info["best_hash"]);
    // The reward went to the node's own wallet.
    let address = node.json(&["wallet", "address"])["address"].as_str().unwrap().to_owned();
    assert_eq!(coinbase["outputs"][0]["lock"]["address"], address.as_str());

    let verify = node.cli(&["chain", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    node.stop();
}

#[test]
fn kill_9_during_mining_never_loses_a_reported_block_or_corrupts_the_store() {
    let mut node = TestNode::start("devnet", &["--mine", "--mining-threads", "1"]);
    let mut last_seen = 0;
    for round in 0..5u64 {
        // Let it mine past what it had, then kill it at an arbitrary moment.
        wait_for("mining progress", Duration::from_secs(120), || (node.height() > last_seen + 2).then_some(()));
        std::thread::sleep(Duration::from_millis(150 * (round + 1)));
        last_seen = node.height();
        node.kill9();

        node.launch(&[]);
        let after = node.height();
        assert!(
            after >= last_seen,
            "round {round}: height {after} after restart, but {last_seen} was reported before the kill"
        );
        let verify = node.cli(&["chain", "verify", "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
        assert!(verify.status.success() && report["ok"] == true, "round {round}: {report}");
        assert_eq!(report["height"].as_u64(), Some(after));
        node.stop();
        node.launch(&["--mine", "--mining-threads", "1"]);
    }
    node.stop();
}

#[test]
fn regtest_generate_makes_blocks_on_request() {
    let mut node = TestNode::start("regtest", &[]);
    let generated = node.json(&["chain", "generate", "25"]);
    assert_eq!(generated["hashes"].as_array().unwrap().len(), 25);
    let info = node.json(&["chain", "info"]);
    assert_eq!(info["height"], 25);
    assert_eq!(info["network"], "regtest");
    assert_eq!(info["best_hash"], generated["hashes"][24]);
    node.stop();
}
