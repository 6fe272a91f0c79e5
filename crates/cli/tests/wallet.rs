//! The wallet end to end, with real nodes: payments between two wallets on two nodes,
//! restore from the recovery words, a double spend from two copies of one wallet, and the
//! errors a user meets.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{TestNode, wait_for};

const COIN: u64 = 100_000_000;

fn balance(node: &TestNode) -> (u64, u64, u64) {
    let b = node.json(&["wallet", "balance"]);
    (b["confirmed"].as_u64().unwrap(), b["unconfirmed"].as_u64().unwrap(), b["immature"].as_u64().unwrap())
}

fn address(node: &TestNode) -> String {
    node.json(&["wallet", "address"])["address"].as_str().unwrap().to_owned()
}

fn history(node: &TestNode) -> Vec<Value> {
    node.json(&["wallet", "history"]).as_array().unwrap().clone()
}

fn entry(node: &TestNode, txid: &str) -> Value {
    history(node).into_iter().find(|e| e["txid"] == txid).unwrap_or_else(|| panic!("{txid} not in the history"))
}

fn tip(node: &TestNode) -> Value {
    node.json(&["chain", "info"])["best_hash"].clone()
}

#[test]
fn a_miner_pays_another_wallet_on_another_node() {
    let alice = TestNode::start("regtest", &[]);
    let bob = TestNode::start("regtest", &["--bootstrap", &alice.p2p_addr()]);
    let created = alice.json(&["wallet", "create"]);
    assert_eq!(created["mnemonic"].as_str().unwrap().split_whitespace().count(), 24);
    assert_eq!(created["encrypted"], false);
    bob.json(&["wallet", "create"]);
    let bob_address = address(&bob);

    // Eleven blocks: the first reward has eleven confirmations and is spendable.
    alice.json(&["chain", "generate", "11"]);
    assert_eq!(balance(&alice), (50 * COIN, 0, 500 * COIN));

    let sent = alice.json(&["wallet", "send", &bob_address, "12.5"]);
    let txid = sent["txid"].as_str().unwrap().to_owned();
    let fee = sent["fee"].as_u64().unwrap();
    assert!(fee > 0);
    // The receiver sees it unconfirmed as soon as it reaches its mempool.
    wait_for("bob to see the payment unconfirmed", Duration::from_secs(30), || {
        (balance(&bob) == (0, 1_250_000_000, 0)).then_some(())
    });
    assert_eq!(entry(&bob, &txid)["status"], "pending");
    assert_eq!(entry(&bob, &txid)["confirmations"], 0);

    alice.json(&["chain", "generate", "1"]);
    let tip_hash = tip(&alice);
    wait_for("bob to sync the block", Duration::from_secs(30), || (tip(&bob) == tip_hash).then_some(()));
    assert_eq!(balance(&bob), (1_250_000_000, 0, 0));
    let received = entry(&bob, &txid);
    assert_eq!((received["category"].as_str(), received["amount"].as_i64()), (Some("receive"), Some(1_250_000_000)));
    assert_eq!(received["confirmations"], 1);

    // The sender's history: the payment out, with its fee; the fee went to the miner (alice
    // again), whose reward at height 12 is the subsidy plus the fee.
    let paid = entry(&alice, &txid);
    assert_eq!(paid["category"], "send");
    assert_eq!(paid["fee"].as_u64(), Some(fee));
    assert_eq!(paid["amount"].as_i64(), Some(-(1_250_000_000 + fee as i64)));
    let block = alice.json(&["chain", "block", "12"]);
    let coinbase_txid = block["tx"][0]["txid"].as_str().unwrap();
    assert_eq!(block["tx"][0]["outputs"][0]["amount"].as_u64(), Some(50 * COIN + fee));
    let reward = entry(&alice, coinbase_txid);
    assert_eq!((reward["category"].as_str(), reward["received"].as_u64()), (Some("mined"), Some(50 * COIN + fee)));
    // 12 blocks: rewards of heights 1 and 2 are mature, one of them spent.
    let change = 50 * COIN - 1_250_000_000 - fee;
    assert_eq!(balance(&alice), (50 * COIN + change, 0, 500 * COIN + fee));

    // Restore alice's words on a fresh node: after the rescan, the same balance and history.
    let words = alice.json(&["wallet", "mnemonic"])["mnemonic"].as_str().unwrap().to_owned();
    assert_eq!(words, created["mnemonic"].as_str().unwrap());
    let carol = TestNode::start("regtest", &["--bootstrap", &alice.p2p_addr()]);
    wait_for("carol to sync", Duration::from_secs(30), || (tip(&carol) == tip_hash).then_some(()));
    let words_file = carol.path().join("words.txt");
    std::fs::write(&words_file, format!("  {}\n", words.to_uppercase())).unwrap();
    carol.json(&["wallet", "restore", "--mnemonic-file", words_file.to_str().unwrap()]);
    wait_for("carol's rescan", Duration::from_secs(30), || (balance(&carol) == balance(&alice)).then_some(()));
    assert_eq!(history(&carol).len(), history(&alice).len());
    assert_eq!(address(&carol), address(&alice));
}

#[test]
fn a_double_spend_from_two_copies_of_one_wallet_confirms_once_and_the_other_is_conflicted() {
    let miner = TestNode::start("regtest", &[]);
    let words = miner.json(&["wallet", "create"])["mnemonic"].as_str().unwrap().to_owned();
    miner.json(&["chain", "generate", "12"]);
    assert_eq!(balance(&miner).0, 100 * COIN);

    // A second node with the same wallet, synced, then restarted on a new port that nobody
    // knows: it is on its own.
    let mut twin = TestNode::start("regtest", &["--bootstrap", &miner.p2p_addr()]);
    let words_file = twin.path().join("words.txt");
    std::fs::write(&words_file, &words).unwrap();
    twin.json(&["wallet", "restore", "--mnemonic-file", words_file.to_str().unwrap()]);
    wait_for("the twin to sync and rescan", Duration::from_secs(30), || {
        (balance(&twin) == balance(&miner)).then_some(())
    });
    twin.stop();
    twin.forget_anchors();
    twin.launch(&[]);
    assert_eq!(twin.json(&["peers"]).as_array().unwrap().len(), 0);

    // Each pays more than half of the two coins: both payments must spend both coins.
    let payee = TestNode::start("regtest", &[]);
    payee.json(&["wallet", "create"]);
    let to = address(&payee);
    let first = miner.json(&["wallet", "send", &to, "60"])["txid"].as_str().unwrap().to_owned();
    let second = twin.json(&["wallet", "send", &to, "70"])["txid"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    miner.json(&["chain", "generate", "1"]);

    // The twin joins: it takes the miner's chain, and its own payment can never confirm.
    twin.json(&["connect", &miner.p2p_addr()]);
    let tip_hash = tip(&miner);
    wait_for("the twin to sync", Duration::from_secs(30), || (tip(&twin) == tip_hash).then_some(()));
    wait_for("the twin's wallet to see the conflict", Duration::from_secs(30), || {
        (entry(&twin, &second)["status"] == "conflicted").then_some(())
    });
    let lost = entry(&twin, &second);
    assert_eq!(lost["conflicted_by"].as_str(), Some(first.as_str()));
    assert_eq!(entry(&twin, &first)["status"], "confirmed");
    assert_eq!(miner.json(&["chain", "tx", &first])["confirmations"], 1);
    for node in [&miner, &twin] {
        assert!(!node.cli(&["chain", "tx", &second]).status.success(), "the losing payment is nowhere");
    }
    // Both copies agree on the balance again.
    assert_eq!(balance(&twin), balance(&miner));
}

#[test]
fn wallet_errors_are_clear_and_change_nothing() {
    let node = TestNode::start("regtest", &[]);
    assert!(node.cli_error(&["wallet", "balance"], &[]).contains("no wallet"));
    let secret = [("PEERCHAIN_PASSPHRASE", "correct horse battery")];
    let created: Value =
        serde_json::from_slice(&node.cli_with_env(&["wallet", "create", "--json"], &secret).stdout).unwrap();
    assert_eq!(created["encrypted"], true);
    // The words are nowhere in the node's files or log.
    let words = created["mnemonic"].as_str().unwrap();
    for file in ["wallet.json", "node.log"] {
        let text = std::fs::read_to_string(node.path().join(file)).unwrap();
        assert!(!text.contains(words), "{file} holds the mnemonic");
    }
    assert!(node.cli_error(&["wallet", "create"], &secret).contains("already exists"));
    node.json(&["chain", "generate", "11"]);
    let to = address(&node);
    let before = balance(&node);

    let error = node.cli_error(&["wallet", "send", &to, "1"], &[]);
    assert!(error.contains("passphrase"), "{error}");
    let error = node.cli_error(&["wallet", "send", &to, "1"], &[("PEERCHAIN_PASSPHRASE", "wrong")]);
    assert!(error.contains("wrong passphrase"), "{error}");
    let error = node.cli_error(&["wallet", "send", &to, "1000"], &secret);
    assert!(error.contains("insufficient funds") && error.contains("50 available"), "{error}");
    let error = node.cli_error(&["wallet", "send", &to, "1.123456789"], &secret);
    assert!(error.contains("decimals") || error.contains("precise"), "{error}");
    let mut bad_checksum = to.clone();
    let last = bad_checksum.pop().unwrap();
    bad_checksum.push(if last == 'q' { 'p' } else { 'q' });
    let error = node.cli_error(&["wallet", "send", &bad_checksum, "1"], &secret);
    assert!(error.contains("checksum"), "{error}");
    let mainnet = peerchain_primitives::Address::new(
        peerchain_primitives::Network::Mainnet,
        peerchain_primitives::KeyHash([7; 32]),
    );
    let error = node.cli_error(&["wallet", "send", &mainnet.to_string(), "1"], &secret);
    assert!(error.contains("mainnet") || error.contains("network"), "{error}");
    assert_eq!(balance(&node), before, "failed sends change nothing");
    assert!(history(&node).iter().all(|e| e["category"] == "mined"));

    // With the passphrase from a file, it pays.
    let file = node.path().join("passphrase.txt");
    std::fs::write(&file, "correct horse battery\n").unwrap();
    let sent = node.json(&["wallet", "send", &to, "1", "--passphrase-file", file.to_str().unwrap()]);
    assert!(sent["txid"].is_string());
    let words_shown = node.json_with_env(&["wallet", "mnemonic"], &secret)["mnemonic"].as_str().unwrap().to_owned();
    assert_eq!(words_shown, words);
}
