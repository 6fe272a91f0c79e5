//! Paid files with real nodes: a buyer pays through a channel as verified pieces arrive and
//! the seller's node closes it; a download without enough allowance fails naming the price;
//! a seller stopped halfway is paid for what arrived (its node closes the channel after a
//! restart); a buyer that does not pay gets one piece and no more.

mod support;

use std::time::Duration;

use peerchain_testing::pseudo_random;
use serde_json::{Value, json};
use support::{Rpc, TestNode, wait_for};

const COIN: u64 = 100_000_000;
/// Six and a bit pieces of 1 MiB.
const SIZE: usize = 6 * (1 << 20) + 1_000;
/// A seller sending 1 MiB a second: a piece a second, so payments can be watched.
const SLOW_SELLER: &str = "[files]\nmax_upload_kib_per_sec = 1024\n";

fn address(node: &TestNode) -> String {
    node.json(&["wallet", "address"])["address"].as_str().unwrap().to_owned()
}

fn coins(node: &TestNode) -> u64 {
    node.json(&["token", "balance"])["coin"].as_u64().unwrap_or(0)
}

fn tip(node: &TestNode) -> Value {
    node.json(&["chain", "info"])["best_hash"].clone()
}

fn mempool_size(node: &TestNode) -> u64 {
    Rpc::new(node).call("mempool.info", json!({}))["result"]["size"].as_u64().unwrap()
}

fn mine(miner: &TestNode, n: u32, all: &[&TestNode]) {
    miner.json(&["chain", "generate", &n.to_string()]);
    let best = tip(miner);
    for node in all {
        wait_for("the nodes to share the tip", Duration::from_secs(60), || (tip(node) == best).then_some(()));
    }
}

/// A miner, a seller (slow when `slow`) sharing a file on sale for one coin, and a buyer
/// with 20 coins; the content id and the file's bytes.
fn market(dir: &std::path::Path, slow: bool) -> (TestNode, TestNode, TestNode, String, Vec<u8>) {
    let miner = TestNode::start("regtest", &[]);
    miner.json(&["wallet", "create"]);
    let seller = TestNode::start_with_config(
        "regtest",
        if slow { SLOW_SELLER } else { "" },
        &["--bootstrap", &miner.p2p_addr()],
    );
    seller.json(&["wallet", "create"]);
    let buyer = TestNode::start("regtest", &["--bootstrap", &miner.p2p_addr(), "--bootstrap", &seller.p2p_addr()]);
    buyer.json(&["wallet", "create"]);
    let all = [&miner, &seller, &buyer];
    mine(&miner, 13, &all);
    miner.json(&["wallet", "send", &address(&buyer), "20"]);
    mine(&miner, 1, &all);
    let bytes = pseudo_random(SIZE, 7);
    let path = dir.join("film.mkv");
    std::fs::write(&path, &bytes).unwrap();
    let id = seller.json(&["file", "add", path.to_str().unwrap()])["id"].as_str().unwrap().to_owned();
    let sold = seller.json(&["file", "sell", &id, "--price", "1"]);
    assert_eq!(sold["price"], COIN);
    (miner, seller, buyer, id, bytes)
}

/// Starts the paid download and mines the channel's escrow in; the status calls seen until
/// `until` says stop.
fn buy(
    miner: &TestNode,
    buyer: &TestNode,
    id: &str,
    out: &std::path::Path,
    until: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let rpc = Rpc::new(buyer);
    let started = rpc.call("file.get", json!({ "id": id, "path": out, "pay_up_to": 2 * COIN }));
    assert!(started["error"].is_null(), "{started}");
    wait_for("the channel's escrow in the miner's mempool", Duration::from_secs(30), || {
        (mempool_size(miner) > 0).then_some(())
    });
    miner.json(&["chain", "generate", "1"]);
    let mut seen = Vec::new();
    wait_for("the download", Duration::from_secs(120), || {
        let status = rpc.call("file.status", json!({ "id": id, "wait_ms": 200 }))["result"].clone();
        seen.push(status.clone());
        assert_ne!(status["state"], "failed", "{status}");
        until(&status).then_some(())
    });
    seen
}

#[test]
fn a_buyer_pays_as_verified_pieces_arrive_and_the_sellers_node_closes_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let (miner, seller, buyer, id, bytes) = market(dir.path(), true);
    let out = dir.path().join("bought.mkv");

    // Without an allowance, or with too small a one, the download fails at once, naming the price.
    let error = buyer.cli_error(&["file", "get", &id, "-o", out.to_str().unwrap()], &[]);
    assert!(error.contains("on sale for 1 coins") && error.contains("--pay-up-to 1"), "{error}");
    let error = buyer.cli_error(&["file", "get", &id, "-o", out.to_str().unwrap(), "--pay-up-to", "0.5"], &[]);
    assert!(error.contains("more than --pay-up-to 0.5"), "{error}");
    assert_eq!(coins(&buyer), 20 * COIN, "nothing paid, nothing locked");

    let seen = buy(&miner, &buyer, &id, &out, |s| s["state"] == "done");
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let done = seen.last().unwrap();
    assert_eq!((done["price"].as_u64(), done["paid"].as_u64()), (Some(COIN), Some(COIN)), "{done}");
    // Paid as the pieces arrived: never ahead of the verified bytes, and in several steps.
    let mut steps = std::collections::BTreeSet::new();
    for status in &seen {
        let (paid, verified) = (status["paid"].as_u64().unwrap(), status["verified_bytes"].as_u64().unwrap());
        assert!(
            u128::from(paid) * SIZE as u128 <= u128::from(COIN) * u128::from(verified) + u128::from(COIN),
            "{status}"
        );
        steps.insert(paid);
    }
    assert!(steps.iter().filter(|p| **p > 0 && **p < COIN).count() >= 3, "paid in steps: {steps:?}");

    // Paid in full, the seller's node closes the channel: one coin to the seller, the rest
    // of the escrow back to the buyer.
    wait_for("the channel's close in the miner's mempool", Duration::from_secs(30), || {
        (mempool_size(&miner) > 0).then_some(())
    });
    mine(&miner, 1, &[&miner, &seller, &buyer]);
    wait_for("the seller's wallet to see the payment", Duration::from_secs(30), || {
        (coins(&seller) == COIN).then_some(())
    });
    let left = coins(&buyer);
    assert!(left < 19 * COIN && left > 19 * COIN - COIN / 1_000, "the buyer paid one coin and fees: {left}");
    assert!(seller.log().contains("payment channel closed"));
}

#[test]
fn restarts_lose_nothing_and_a_seller_stopped_halfway_is_paid_only_for_what_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let (miner, mut seller, mut buyer, id, _) = market(dir.path(), true);
    let out = dir.path().join("bought.mkv");
    buy(&miner, &buyer, &id, &out, |s| s["verified_bytes"].as_u64() >= Some(2 << 20));

    // The buyer restarts: the download resumes and pays on into the same channel.
    buyer.stop();
    buyer.launch(&["--bootstrap", &miner.p2p_addr(), "--bootstrap", &seller.p2p_addr()]);
    let rpc = Rpc::new(&buyer);
    wait_for("the resumed download to pass 4 MiB", Duration::from_secs(60), || {
        let status = rpc.call("file.status", json!({ "id": id, "wait_ms": 500 }))["result"].clone();
        assert_ne!(status["state"], "failed", "{status}");
        (status["verified_bytes"].as_u64() >= Some(4 << 20)).then_some(())
    });
    let escrows = buyer.json(&["escrow", "list"]);
    assert_eq!(escrows.as_array().unwrap().len(), 1, "one channel for the whole download: {escrows}");
    assert_eq!(mempool_size(&miner), 0, "no second channel opened");

    // The seller stops halfway: the download fails, having paid exactly for what it verified.
    seller.stop();
    let failed = {
        let mut last = Value::Null;
        wait_for("the download to give up on the stopped seller", Duration::from_secs(120), || {
            last = rpc.call("file.status", json!({ "id": id, "wait_ms": 1_000 }))["result"].clone();
            (last["state"] == "failed").then_some(())
        });
        last
    };
    let (paid, verified) = (failed["paid"].as_u64().unwrap(), failed["verified_bytes"].as_u64().unwrap());
    assert!(paid > 0 && paid < COIN && verified < SIZE as u64, "{failed}");
    let due = (u128::from(COIN) * u128::from(verified)).div_ceil(SIZE as u128) as u64;
    assert_eq!(paid, due, "paid exactly for the verified bytes: {failed}");

    // Back up, the seller's node closes the channel with the latest payment once it is idle.
    seller.launch(&["--bootstrap", &miner.p2p_addr()]);
    wait_for("the channel's close in the miner's mempool", Duration::from_secs(90), || {
        (mempool_size(&miner) > 0).then_some(())
    });
    mine(&miner, 1, &[&miner, &seller, &buyer]);
    wait_for("the seller's wallet to see the payment", Duration::from_secs(30), || {
        (coins(&seller) == paid).then_some(())
    });
    let left = coins(&buyer);
    assert!(left <= 20 * COIN - paid && left > 20 * COIN - paid - COIN / 1_000, "{left}");
    assert_eq!(buyer.json(&["escrow", "list"])[0]["state"], "released");
}

#[test]
fn a_buyer_that_does_not_pay_gets_one_piece_and_no_more() {
    use peerchain_net::{FileRequest, FileResponse};

    let dir = tempfile::tempdir().unwrap();
    let (_miner, seller, _buyer, id, _) = market(dir.path(), false);
    let content: peerchain_primitives::ContentId = id.parse().unwrap();
    let address: peerchain_net::Address = seller.p2p_addr().parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let node = peerchain_testing::LocalNode::regtest();
        let peer = node.handle.clone();
        peer.dial(address).await;
        let target = peerchain_testing::first_peer(&peer).await;
        let info = peer.request_file(target, FileRequest::Info(content)).await.unwrap();
        let FileResponse::Info { price: Some(price), .. } = info else { panic!("{info:?}") };
        assert_eq!(price.units, COIN);
        // One piece on credit (64 groups of 16 KiB), then nothing until paid.
        let piece = |n: u64| FileRequest::Range { id: content, start: n * 64, count: 64 };
        assert!(matches!(peer.request_file(target, piece(0)).await, Ok(FileResponse::Range(_))));
        for n in 1..3 {
            let refused = peer.request_file(target, piece(n)).await.unwrap();
            assert!(matches!(&refused, FileResponse::Refused(r) if r.contains("payment required")), "{refused:?}");
        }
        // A payment that is no transaction, or spends nothing on chain, pays nothing.
        for payout in [vec![1, 2, 3], vec![0; 200]] {
            let answer = peer.request_file(target, FileRequest::Pay { id: content, payout }).await.unwrap();
            assert!(matches!(answer, FileResponse::Refused(_)), "{answer:?}");
        }
        assert!(matches!(peer.request_file(target, piece(1)).await, Ok(FileResponse::Refused(_))));
        // A piece served before costs nothing more: the buyer learns nothing new.
        assert!(matches!(peer.request_file(target, piece(0)).await, Ok(FileResponse::Range(_))));
        node.stop().await;
    });
    assert_eq!(seller.json(&["file", "list"])[0]["price"], COIN, "the seller runs on");
}
