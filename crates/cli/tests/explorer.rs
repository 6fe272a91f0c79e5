//! The explorer's view of the chain: `chain blocks` and `chain address` (the RPC the
//! dashboard's explorer and charts read) follow the main chain, through a reorganisation
//! between two real nodes.

mod support;

use std::time::Duration;

use peerchain_testing::wait_for;
use support::TestNode;

fn address_view(node: &TestNode, address: &str) -> serde_json::Value {
    wait_for("the address index to reach the tip", Duration::from_secs(30), || {
        let view = node.json(&["chain", "address", address]);
        (view["indexed_height"] == view["tip_height"]).then_some(view)
    })
}

#[test]
fn blocks_and_addresses_follow_the_main_chain_through_a_reorganisation() {
    let mut a = TestNode::start("regtest", &[]);
    let mut b = TestNode::start("regtest", &[]);
    a.json(&["wallet", "create"]);
    b.json(&["wallet", "create"]);
    a.json(&["chain", "generate", "11"]);
    // b mines a longer chain of its own, apart (its rewards go to its first address).
    b.json(&["chain", "generate", "20"]);

    // A payment to an address of b's wallet, confirmed on a's chain.
    let to = b.json(&["wallet", "address", "--new"])["address"].as_str().unwrap().to_owned();
    let sent = a.json(&["wallet", "send", &to, "2.5"]);
    let txid = sent["txid"].as_str().unwrap().to_owned();
    a.json(&["chain", "generate", "1"]);
    let view = address_view(&a, &to);
    assert_eq!(view["balance"], 250_000_000u64);
    assert_eq!(view["received"], 250_000_000u64);
    assert_eq!(view["tx_count"], 1);
    assert_eq!(view["txs"][0]["txid"], txid);
    assert_eq!(view["txs"][0]["height"], 12);

    // The payer's mining address: 12 rewards received, one spent by the payment (its change
    // went to a fresh address of the wallet).
    let reward_block = a.json(&["chain", "block", "1"]);
    let miner = reward_block["tx"][0]["outputs"][0]["lock"]["address"].as_str().unwrap().to_owned();
    let miner_view = address_view(&a, &miner);
    assert!(miner_view["tx_count"].as_u64().unwrap() >= 12, "{miner_view}");
    assert_eq!(
        miner_view["balance"].as_u64().unwrap(),
        miner_view["received"].as_u64().unwrap() - miner_view["sent"].as_u64().unwrap()
    );

    // The latest blocks, newest first, each with the seconds since the one before.
    let blocks = a.json(&["chain", "blocks", "--limit", "5"]);
    let blocks = blocks.as_array().unwrap();
    let heights: Vec<u64> = blocks.iter().map(|b| b["height"].as_u64().unwrap()).collect();
    assert_eq!(heights, [12, 11, 10, 9, 8]);
    for pair in blocks.windows(2) {
        let interval = pair[0]["time"].as_i64().unwrap() - pair[1]["time"].as_i64().unwrap();
        assert_eq!(pair[0]["interval"], interval);
    }
    assert_eq!(blocks[0]["hash"], a.json(&["chain", "info"])["best_hash"]);
    assert!(blocks[0]["difficulty"].as_f64().unwrap() >= 1.0);
    let genesis = a.json(&["chain", "blocks", "--limit", "1", "--before", "0"]);
    assert_eq!(genesis[0]["interval"], serde_json::Value::Null);

    // Once connected to b, a reorganises onto b's longer chain: the payment
    // leaves the main chain (its coins were a's rewards, gone with a's blocks) and the address
    // shows nothing confirmed.
    a.json(&["connect", &b.p2p_addr()]);
    let b_tip = b.json(&["chain", "info"])["best_hash"].clone();
    wait_for("a to reorganise onto b's chain", Duration::from_secs(60), || {
        (a.json(&["chain", "info"])["best_hash"] == b_tip).then_some(())
    });
    let view = address_view(&a, &to);
    assert_eq!((view["balance"].as_u64(), view["tx_count"].as_u64()), (Some(0), Some(0)), "{view}");
    assert_eq!(address_view(&a, &miner)["tx_count"], 0, "a's rewards left the main chain");

    // The winning chain's rewards are indexed in their place.
    let b_reward = a.json(&["chain", "block", "1"]);
    let b_miner = b_reward["tx"][0]["outputs"][0]["lock"]["address"].as_str().unwrap().to_owned();
    let b_view = address_view(&a, &b_miner);
    assert_eq!(b_view["tx_count"], 20, "{b_view}");
    assert_eq!(b_view["balance"], b_reward["tx"][0]["outputs"][0]["amount"].as_u64().unwrap() * 20);

    // Bad input: a clear error, nothing else.
    let error = a.cli_error(&["chain", "address", "not-an-address"], &[]);
    assert!(error.contains("is not an address of this network"), "{error}");
    a.stop();
    b.stop();
}
