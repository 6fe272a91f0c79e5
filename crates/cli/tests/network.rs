//! Several real nodes on loopback: they find each other through bootstrap addresses, sync,
//! relay blocks and transactions, and refuse a node of another network.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{TestNode, wait_for};

/// Signs, with `node`'s wallet key, a payment of 10 coins out of the coinbase of block 1
/// (which `chain generate` paid to that wallet), and returns it in hex.
fn spend_first_coinbase(node: &TestNode) -> String {
    use peerchain_primitives::{
        Amount, Encode, Network, OutPoint, SecretKey, SigHashMode, Transaction, TxIn, TxOut, TxSignature, Witness,
    };
    let words = node.json(&["wallet", "mnemonic"])["mnemonic"].as_str().unwrap().to_owned();
    let key =
        peerchain_wallet::key_from_mnemonic(&words, Network::Regtest, peerchain_wallet::KeyChain::Receive, 0).unwrap();
    let coinbase = &node.json(&["chain", "block", "1"])["tx"][0];
    let txid = coinbase["txid"].as_str().unwrap().parse().unwrap();
    let value = Amount::from_units(coinbase["outputs"][0]["amount"].as_u64().unwrap());
    let spent = TxOut::coins_to(value, key.public_key().key_hash());
    let change = value.checked_sub(Amount::from_coins(10)).unwrap().checked_sub(Amount::from_units(10_000)).unwrap();
    let recipient = SecretKey::from_seed([9; 32]).public_key().key_hash();
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: OutPoint::new(txid, 0), witness: Witness::Multisig { signatures: vec![] } }],
        outputs: vec![
            TxOut::coins_to(Amount::from_coins(10), recipient),
            TxOut::coins_to(change, key.public_key().key_hash()),
        ],
        lock_time: 0,
    };
    let message = tx.signature_hash(0, &spent, SigHashMode::All, Network::Regtest.magic());
    tx.inputs[0].witness = Witness::Key {
        public_key: key.public_key(),
        signature: TxSignature { mode: SigHashMode::All, signature: key.sign(&message) },
    };
    hex::encode(tx.to_bytes())
}

fn best_hash(node: &TestNode) -> Value {
    node.json(&["chain", "info"])["best_hash"].clone()
}

#[test]
fn five_nodes_bootstrapped_in_a_line_agree_on_one_chain_and_relay_a_transaction_end_to_end() {
    // n0 <- n1 <- n2 <- n3 <- n4: each is given only its neighbour. The DHT then finds more
    // peers (Kademlia bootstraps by itself once it knows one), so the line gains shortcuts.
    let mut nodes = vec![TestNode::start("regtest", &[])];
    for i in 1..5 {
        let previous = nodes[i - 1].p2p_addr();
        nodes.push(TestNode::start("regtest", &["--bootstrap", &previous]));
    }
    for node in &nodes[1..4] {
        wait_for("inner nodes to have both neighbours", Duration::from_secs(30), || {
            (node.json(&["peers"]).as_array()?.len() >= 2).then_some(())
        });
    }
    let peers = nodes[2].json(&["peers"]);
    let directions: Vec<&str> = peers.as_array().unwrap().iter().filter_map(|p| p["direction"].as_str()).collect();
    assert!(directions.contains(&"inbound") && directions.contains(&"outbound"), "{peers}");

    // The first node mines; the blocks travel four hops.
    nodes[0].json(&["chain", "generate", "30"]);
    let tip = best_hash(&nodes[0]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while nodes[1..].iter().any(|node| best_hash(node) != tip) {
        if std::time::Instant::now() > deadline {
            let report: Vec<String> = nodes
                .iter()
                .map(|n| {
                    let log = n.log();
                    let tail: Vec<&str> = log.lines().rev().filter(|l| !l.contains("fetch wanted")).take(60).collect();
                    format!("{}\n{}", n.json(&["chain", "info"]), tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
                })
                .collect();
            panic!("the tip did not reach every node:\n{}", report.join("\n\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // A payment submitted at the far end reaches the miner's mempool and is mined there.
    let tx = spend_first_coinbase(&nodes[0]);
    let txid = nodes[4].json(&["chain", "send", &tx])["txid"].as_str().unwrap().to_owned();
    wait_for("the transaction to reach the miner", Duration::from_secs(30), || {
        nodes[0].cli(&["chain", "tx", &txid]).status.success().then_some(())
    });
    assert_eq!(nodes[0].json(&["chain", "tx", &txid])["confirmations"], 0);
    nodes[0].json(&["chain", "generate", "1"]);
    let tip = best_hash(&nodes[0]);
    wait_for("the far end to follow", Duration::from_secs(60), || (best_hash(&nodes[4]) == tip).then_some(()));
    assert_eq!(nodes[4].json(&["chain", "tx", &txid])["confirmations"], 1, "mined at one end, seen at the other");
    // The block came as a compact announcement, rebuilt from the mempool the payment had
    // reached, not downloaded.
    let tip = tip.as_str().unwrap().to_owned();
    assert!(
        nodes[4].log().lines().any(|l| l.contains("block rebuilt from its compact announcement") && l.contains(&tip)),
        "no compact rebuild of {tip} in the far node's log"
    );
    let verify = nodes[4].cli(&["chain", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    for node in &mut nodes {
        node.stop();
    }
}

/// A transaction the receiver never had (its relay fee floor is higher) is the only one of a
/// compact block it asks the announcer for; the rest comes from its mempool.
#[test]
fn a_compact_block_is_completed_with_the_transactions_the_receiver_lacked() {
    let mut miner = TestNode::start("regtest", &[]);
    let mut picky = TestNode::start_with_config(
        "regtest",
        "[chain]\nmin_relay_fee_rate = 1000\n",
        &["--bootstrap", &miner.p2p_addr()],
    );
    wait_for("the two to connect", Duration::from_secs(30), || {
        (picky.json(&["peers"]).as_array()?.len() == 1).then_some(())
    });
    miner.json(&["chain", "generate", "12"]);
    let tip = best_hash(&miner);
    wait_for("the picky node to sync", Duration::from_secs(60), || (best_hash(&picky) == tip).then_some(()));
    let tx = spend_first_coinbase(&miner);
    let txid = miner.json(&["chain", "send", &tx])["txid"].as_str().unwrap().to_owned();
    // It pays about 43 units a byte: the picky node's mempool refuses it.
    std::thread::sleep(Duration::from_secs(1));
    assert!(!picky.cli(&["chain", "tx", &txid]).status.success(), "the picky node does not hold the payment");

    miner.json(&["chain", "generate", "1"]);
    let tip = best_hash(&miner);
    wait_for("the picky node to follow", Duration::from_secs(30), || (best_hash(&picky) == tip).then_some(()));
    assert_eq!(picky.json(&["chain", "tx", &txid])["confirmations"], 1);
    let tip = tip.as_str().unwrap().to_owned();
    let log = picky.log();
    let line = log
        .lines()
        .find(|l| l.contains("block rebuilt from its compact announcement") && l.contains(&tip))
        .unwrap_or_else(|| panic!("no compact rebuild of {tip}:\n{log}"));
    assert!(line.contains("fetched") && line.trim_end().ends_with('1'), "one transaction fetched: {line}");
    miner.stop();
    picky.stop();
}

#[test]
fn a_late_joiner_syncs_the_whole_chain() {
    let mut a = TestNode::start("regtest", &[]);
    a.json(&["chain", "generate", "2500"]);
    let mut b = TestNode::start("regtest", &[]);
    let mut late = TestNode::start("regtest", &["--bootstrap", &a.p2p_addr(), "--bootstrap", &b.p2p_addr()]);
    let tip = best_hash(&a);
    // `chain sync` waits until it has caught up, saying so on stderr while it waits.
    let synced = late.json(&["chain", "sync", "--timeout", "180"]);
    assert_eq!(synced["height"], 2500, "{synced}");
    assert_eq!(best_hash(&late), tip);
    let info = late.json(&["chain", "info"]);
    assert_eq!((info["syncing"].as_bool(), info["progress"].as_f64()), (Some(false), Some(1.0)), "{info}");
    // A node with no peer is never caught up: it says what it waits for, then gives up.
    let alone = TestNode::start("regtest", &[]);
    let output = alone.cli(&["chain", "sync", "--timeout", "1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("waiting for peers"), "{stderr}");
    assert!(stderr.contains("not caught up after 1 s"), "{stderr}");
    a.stop();
    b.stop();
    late.stop();
}

#[test]
fn a_node_of_another_network_is_refused() {
    let mut regtest = TestNode::start("regtest", &[]);
    regtest.json(&["chain", "generate", "3"]);
    let mut devnet = TestNode::start("devnet", &["--bootstrap", &regtest.p2p_addr()]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(devnet.json(&["chain", "info"])["height"], 0, "nothing crosses between networks");
    assert_eq!(regtest.json(&["chain", "info"])["height"], 3);
    // Neither keeps the other as a peer: it speaks none of its protocols.
    for node in [&devnet, &regtest] {
        wait_for("the peer of another network to be let go", Duration::from_secs(15), || {
            node.json(&["peers"]).as_array()?.is_empty().then_some(())
        });
    }
    // Whichever identifies the other first lets it go; the other may only see it leave.
    let noticed = [&regtest, &devnet].iter().any(|n| n.log().contains("peer of another network disconnected"));
    assert!(noticed, "{}\n{}", regtest.log(), devnet.log());
    devnet.stop();
    regtest.stop();
}

#[test]
fn halves_mining_apart_converge_on_the_heaviest_chain_and_the_losers_transaction_is_mined() {
    // A shared history of 15 blocks.
    let mut a1 = TestNode::start("regtest", &[]);
    a1.json(&["chain", "generate", "15"]);
    let mut b1 = TestNode::start("regtest", &["--bootstrap", &a1.p2p_addr()]);
    let shared = best_hash(&a1);
    wait_for("b1 to sync the shared history", Duration::from_secs(60), || (best_hash(&b1) == shared).then_some(()));
    // The partition: b1 restarts with no way to reach a1 (not even a1 as an anchor, the
    // outbound peer it would dial first); each half gets a second node.
    b1.stop();
    b1.forget_anchors();
    b1.launch(&[]);
    let mut a2 = TestNode::start("regtest", &["--bootstrap", &a1.p2p_addr()]);
    let mut b2 = TestNode::start("regtest", &["--bootstrap", &b1.p2p_addr()]);
    // a2 judges the payment against its own chain: until it holds the shared history, the coin
    // spent below is not yet mature there.
    for node in [&a2, &b2] {
        wait_for("the second nodes to sync the shared history", Duration::from_secs(60), || {
            (best_hash(node) == shared).then_some(())
        });
    }

    // Half A confirms a payment in one block; half B mines three blocks without it.
    let tx = spend_first_coinbase(&a1);
    let txid = a2.json(&["chain", "send", &tx])["txid"].as_str().unwrap().to_owned();
    wait_for("the payment to reach a1", Duration::from_secs(30), || {
        a1.cli(&["chain", "tx", &txid]).status.success().then_some(())
    });
    a1.json(&["chain", "generate", "1"]);
    b1.json(&["chain", "generate", "3"]);
    let heavier = best_hash(&b1);
    wait_for("a2 to see a1's block", Duration::from_secs(30), || {
        (a2.json(&["chain", "tx", &txid])["confirmations"] == 1).then_some(())
    });
    wait_for("b2 to follow b1", Duration::from_secs(30), || (best_hash(&b2) == heavier).then_some(()));

    // The halves meet.
    a1.json(&["connect", &b1.p2p_addr()]);
    for node in [&a1, &a2, &b1, &b2] {
        wait_for("every node on the heaviest chain", Duration::from_secs(60), || {
            (best_hash(node) == heavier).then_some(())
        });
    }
    assert_eq!(a1.json(&["chain", "tx", &txid])["confirmations"], 0, "back in the mempool");
    a1.json(&["chain", "generate", "1"]);
    let tip = best_hash(&a1);
    for node in [&a2, &b1, &b2] {
        wait_for("the new tip everywhere", Duration::from_secs(60), || (best_hash(node) == tip).then_some(()));
        assert_eq!(node.json(&["chain", "tx", &txid])["confirmations"], 1, "the payment is mined on the winning chain");
    }
    for node in [&mut a1, &mut a2, &mut b1, &mut b2] {
        node.stop();
    }
}

#[test]
fn nodes_that_know_only_a_hub_find_each_other_through_the_dht() {
    let hub = TestNode::start("regtest", &[]);
    let spokes: Vec<TestNode> = (0..3).map(|_| TestNode::start("regtest", &["--bootstrap", &hub.p2p_addr()])).collect();
    // Each spoke dials the others it learns of, toward its outbound target.
    for spoke in &spokes {
        wait_for("a spoke to connect to every other node", Duration::from_secs(60), || {
            let peers = spoke.json(&["peers"]);
            (peers.as_array()?.len() >= 3).then_some(())
        });
    }
    let peers = spokes[0].json(&["peers"]);
    for peer in peers.as_array().unwrap() {
        assert_eq!(peer["score"], 0, "honest peers have no misbehaviour points: {peer}");
        assert!(peer["gossip_score"].is_number(), "gossipsub scores every peer: {peer}");
    }
}
