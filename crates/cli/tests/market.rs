//! Trading end to end with real nodes: a token swapped for coins by an offer, takes that
//! change the maker's terms refused by every node, two takers racing, offers vanishing when
//! their coins are spent or they expire, a late joiner receiving the book, and a flood of
//! bogus offers.

mod support;

use std::time::Duration;

use peerchain_primitives::{
    Amount, AssetId, Decode, Encode, Network, OutPoint, SigHashMode, Transaction, TxId, TxIn, TxOut, TxSignature,
    Witness,
};
use serde_json::Value;
use support::{TestNode, wait_for};

const COIN: u64 = 100_000_000;

fn address(node: &TestNode) -> String {
    node.json(&["wallet", "address"])["address"].as_str().unwrap().to_owned()
}

fn token_balance(node: &TestNode, asset: &str) -> u64 {
    node.json(&["token", "balance"])[asset].as_u64().unwrap_or(0)
}

fn book(node: &TestNode) -> Vec<Value> {
    node.json(&["market", "book"]).as_array().unwrap().clone()
}

fn has_offer(node: &TestNode, id: &str) -> bool {
    book(node).iter().any(|o| o["offer_id"] == id)
}

fn tip(node: &TestNode) -> Value {
    node.json(&["chain", "info"])["best_hash"].clone()
}

/// Mines `n` blocks on `miner` and waits until every node in `all` has them.
fn mine(miner: &TestNode, n: u32, all: &[&TestNode]) {
    miner.json(&["chain", "generate", &n.to_string()]);
    let best = tip(miner);
    for node in all {
        wait_for("the nodes to share the tip", Duration::from_secs(60), || (tip(node) == best).then_some(()));
    }
}

/// Waits until `txid` is in `node`'s mempool.
fn wait_in_mempool(node: &TestNode, txid: &str) {
    wait_for("a transaction to reach the mempool", Duration::from_secs(30), || {
        let tx = node.cli(&["chain", "tx", txid, "--json"]);
        tx.status.success().then_some(())
    });
}

/// A maker with a token and coins, and takers with coins, all connected to the maker. Returns
/// the nodes (maker first), the token's asset id and the takers' mnemonics.
fn market(takers: usize) -> (Vec<TestNode>, String, Vec<String>) {
    let maker = TestNode::start("regtest", &[]);
    maker.json(&["wallet", "create"]);
    let mut nodes = vec![maker];
    let mut words = Vec::new();
    for _ in 0..takers {
        let taker = TestNode::start("regtest", &["--bootstrap", &nodes[0].p2p_addr()]);
        words.push(taker.json(&["wallet", "create"])["mnemonic"].as_str().unwrap().to_owned());
        nodes.push(taker);
    }
    let all: Vec<&TestNode> = nodes.iter().collect();
    mine(&nodes[0], 13, &all);
    for taker in &nodes[1..] {
        nodes[0].json(&["wallet", "send", &address(taker), "20"]);
    }
    let issued = nodes[0].json(&["token", "issue", "gold", "1000000", "--decimals", "2"]);
    let asset = issued["asset"].as_str().unwrap().to_owned();
    mine(&nodes[0], 1, &all);
    (nodes, asset, words)
}

/// The maker offers `give` base units of the token for `want` coins; returns the offer id
/// once every node in `all` lists it.
fn offer(maker: &TestNode, asset: &str, give: u64, want: &str, all: &[&TestNode], extra: &[&str]) -> String {
    let give_text = give.to_string();
    let mut args = vec!["market", "offer", "--give", give_text.as_str(), asset, "--want", want, "coin"];
    args.extend_from_slice(extra);
    let made = maker.json(&args);
    let id = made["offer_id"].as_str().unwrap().to_owned();
    if made["funding_txid"].is_string() {
        // Its coin of the right size confirms; then the offer is published.
        mine(maker, 1, all);
    }
    for node in all {
        wait_for("every book to list the offer", Duration::from_secs(30), || has_offer(node, &id).then_some(()));
    }
    id
}

#[test]
fn two_nodes_swap_a_token_for_coins_in_one_transaction() {
    let (nodes, asset, _) = market(1);
    let (maker, taker) = (&nodes[0], &nodes[1]);
    let all = [maker, taker];
    let listed = taker.json(&["token", "list"]);
    assert_eq!(listed[0]["asset"], asset.as_str());
    assert_eq!((listed[0]["name"].as_str(), listed[0]["supply"].as_u64()), (Some("gold"), Some(1_000_000)));

    let id = offer(maker, &asset, 1_000, "2", &all, &["--expires", "50"]);
    let entry = book(taker).into_iter().find(|o| o["offer_id"] == id.as_str()).unwrap();
    assert_eq!(entry["give"]["amount"], 1_000);
    assert_eq!(entry["want"]["amount"], 2 * COIN);
    let maker_coins = token_balance(maker, "coin");
    let taker_coins = token_balance(taker, "coin");

    let taken = taker.json(&["market", "take", &id]);
    let txid = taken["txid"].as_str().unwrap().to_owned();
    wait_in_mempool(maker, &txid);
    mine(maker, 1, &all);
    assert_eq!(token_balance(taker, &asset), 1_000);
    assert_eq!(token_balance(maker, &asset), 1_000_000 - 1_000);
    assert!(token_balance(maker, "coin") >= maker_coins + 2 * COIN, "paid 2 coins (and the block reward)");
    let fee = taker_coins - (token_balance(taker, "coin") + 2 * COIN);
    assert!(fee > 0 && fee < COIN / 100, "the taker paid 2 coins and a fee: {fee}");
    for node in all {
        assert!(!has_offer(node, &id), "a taken offer leaves every book");
        let trades = node.json(&["market", "trades"]);
        assert_eq!(trades[0]["txid"], txid.as_str());
        assert_eq!(trades[0]["give"]["amount"], 1_000);
        assert_eq!(trades[0]["got"]["amount"], 2 * COIN);
    }
    let history = taker.json(&["wallet", "history"]);
    let moved = history.as_array().unwrap().iter().find(|e| e["txid"] == txid.as_str()).unwrap();
    assert_eq!(moved["tokens"][0]["received"], 1_000);
}

/// Decodes the offer a book lists.
fn offer_of(node: &TestNode, id: &str) -> (peerchain_market::Offer, TxOut) {
    let entry = book(node).into_iter().find(|o| o["offer_id"] == id).unwrap();
    let offer =
        peerchain_market::Offer::from_bytes(&hex::decode(entry["offer_hex"].as_str().unwrap()).unwrap()).unwrap();
    let asset: AssetId = entry["give"]["asset"].as_str().unwrap().parse().unwrap();
    let give = TxOut {
        asset,
        amount: Amount::from_units(entry["give"]["amount"].as_u64().unwrap()),
        lock: peerchain_primitives::Lock::Key(Default::default()),
    };
    (offer, give)
}

/// A coin of the taker's first address: the maker's payment of 20 coins to it.
fn taker_coin(taker: &TestNode, key_hash: peerchain_primitives::KeyHash) -> (OutPoint, Amount) {
    let history = taker.json(&["wallet", "history"]);
    for entry in history.as_array().unwrap() {
        let txid = entry["txid"].as_str().unwrap();
        let tx = taker.json(&["chain", "tx", txid]);
        let raw = Transaction::from_bytes(&hex::decode(tx["hex"].as_str().unwrap()).unwrap()).unwrap();
        for (index, output) in raw.outputs.iter().enumerate() {
            if output.lock == peerchain_primitives::Lock::Key(key_hash) && output.asset == AssetId::Coin {
                return (OutPoint::new(TxId(raw.txid().0), index as u32), output.amount);
            }
        }
    }
    panic!("no coin of the taker's first key")
}

#[test]
fn a_take_that_changes_the_makers_terms_is_refused_by_every_node() {
    let (nodes, asset, words) = market(1);
    let (maker, taker) = (&nodes[0], &nodes[1]);
    let all = [maker, taker];
    let id = offer(maker, &asset, 1_000, "2", &all, &[]);
    let (offer, _) = offer_of(taker, &id);
    let key = peerchain_wallet::key_from_mnemonic(&words[0], Network::Regtest, peerchain_wallet::KeyChain::Receive, 0)
        .unwrap();
    let (coin, value) = taker_coin(taker, key.public_key().key_hash());
    let token: AssetId = asset.parse().unwrap();

    // The taker pays less than the maker asked, or pays it to itself instead.
    for tamper in [0, 1] {
        let mut want = offer.want.clone();
        if tamper == 0 {
            want.amount = Amount::from_units(want.amount.units() - 1);
        } else {
            want.lock = peerchain_primitives::Lock::Key(key.public_key().key_hash());
        }
        let paid = want.amount.units();
        let mut tx = Transaction {
            version: 1,
            inputs: vec![
                offer.input.clone(),
                TxIn { prev_out: coin, witness: Witness::Multisig { signatures: vec![] } },
            ],
            outputs: vec![
                want,
                TxOut {
                    asset: token,
                    amount: Amount::from_units(1_000),
                    lock: peerchain_primitives::Lock::Key(key.public_key().key_hash()),
                },
                TxOut::coins_to(Amount::from_units(value.units() - paid - 10_000), key.public_key().key_hash()),
            ],
            lock_time: 0,
        };
        let spent = TxOut::coins_to(value, key.public_key().key_hash());
        let message = tx.signature_hash(1, &spent, SigHashMode::All, Network::Regtest.magic());
        tx.inputs[1].witness = Witness::Key {
            public_key: key.public_key(),
            signature: TxSignature { mode: SigHashMode::All, signature: key.sign(&message) },
        };
        let hex = hex::encode(tx.to_bytes());
        for node in all {
            let error = node.cli_error(&["chain", "send", &hex], &[]);
            assert!(error.contains("invalid signature"), "{error}");
        }
    }
    assert!(has_offer(taker, &id), "the offer stands");
}

#[test]
fn two_takers_race_for_one_offer_and_exactly_one_swap_confirms() {
    let (nodes, asset, _) = market(2);
    let all: Vec<&TestNode> = nodes.iter().collect();
    let id = offer(&nodes[0], &asset, 1_000, "2", &all, &[]);
    let before: Vec<u64> = nodes[1..].iter().map(|n| token_balance(n, "coin")).collect();
    let outcomes: Vec<std::process::Output> = std::thread::scope(|scope| {
        let racers: Vec<_> =
            nodes[1..].iter().map(|n| scope.spawn(|| n.cli(&["market", "take", &id, "--json"]))).collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let accepted = outcomes.iter().filter(|o| o.status.success()).count();
    assert!(accepted >= 1, "{outcomes:?}");
    for refused in outcomes.iter().filter(|o| !o.status.success()) {
        let error = String::from_utf8_lossy(&refused.stderr);
        assert!(error.contains("taken") || error.contains("spent") || error.contains("not in the book"), "{error}");
    }
    // Both may have entered their own mempools; a block settles it.
    std::thread::sleep(Duration::from_secs(2));
    mine(&nodes[0], 1, &all);
    mine(&nodes[0], 1, &all);
    let trades = nodes[0].json(&["market", "trades"]);
    assert_eq!(trades.as_array().unwrap().len(), 1, "one swap: {trades}");
    let tokens: Vec<u64> = nodes[1..].iter().map(|n| token_balance(n, &asset)).collect();
    assert_eq!(tokens.iter().sum::<u64>(), 1_000, "{tokens:?}");
    let loser = tokens.iter().position(|t| *t == 0).unwrap();
    assert_eq!(token_balance(&nodes[1 + loser], "coin"), before[loser], "the loser lost nothing");
}

#[test]
fn offers_vanish_when_their_coins_are_spent_or_they_expire_and_a_late_joiner_gets_the_book() {
    let (nodes, asset, _) = market(1);
    let (maker, taker) = (&nodes[0], &nodes[1]);
    let all = [maker, taker];
    // A ladder of three offers at rising prices, in one funding transaction.
    let made_first = offer(maker, &asset, 3_000, "3", &all, &["--ladder", "3", "--step", "10"]);
    let ladder: Vec<Value> = book(taker).into_iter().filter(|o| o["give"]["asset"] == asset.as_str()).collect();
    assert_eq!(ladder.len(), 3);
    let mut prices: Vec<f64> = ladder.iter().map(|o| o["price"].as_f64().unwrap()).collect();
    prices.sort_by(f64::total_cmp);
    assert!(prices[2] > prices[0] * 1.2, "{prices:?}");

    // A late joiner, connected to the taker only, has the whole book within seconds.
    let late = TestNode::start("regtest", &["--bootstrap", &taker.p2p_addr()]);
    wait_for("the late joiner to hold the book", Duration::from_secs(30), || {
        let ids: Vec<Value> = book(&late).iter().map(|o| o["offer_id"].clone()).collect();
        (ids.len() == 3).then_some(())
    });
    let info = late.json(&["market", "info"]);
    assert_eq!(
        (info["offers"].as_u64(), info["mine"].as_u64(), info["loan_offers"].as_u64()),
        (Some(3), Some(0), Some(0))
    );
    assert_eq!(info["pairs"][0]["give"], asset.as_str(), "{info}");
    assert_eq!(info["pairs"][0]["offers"], 3, "{info}");
    assert!(info["bytes"].as_u64().unwrap() > 0 && info["bytes"].as_u64() < info["max_bytes"].as_u64(), "{info}");
    assert_eq!(maker.json(&["market", "info"])["mine"], 3);

    // Cancelled: the coin is spent, and the offer is gone from every book with that block.
    maker.json(&["market", "cancel", &made_first]);
    mine(maker, 1, &[maker, taker, &late]);
    for node in [maker, taker, &late] {
        wait_for("the cancelled offer to leave the book", Duration::from_secs(5), || {
            (!has_offer(node, &made_first)).then_some(())
        });
    }

    // An offer expiring in three blocks is gone after two, and cannot be taken.
    let short = offer(maker, &asset, 500, "1", &all, &["--expires", "3"]);
    mine(maker, 2, &all);
    assert!(!has_offer(taker, &short));
    let error = taker.cli_error(&["market", "take", &short], &[]);
    assert!(error.contains("not in the book"), "{error}");
}

#[test]
fn a_flood_of_bogus_offers_leaves_the_book_bounded_and_gets_the_sender_banned() {
    use peerchain_net::{Config, Keypair, Topic};
    let (nodes, asset, _) = market(0);
    let victim = &nodes[0];
    let id = offer(victim, &asset, 1_000, "2", &[victim], &[]);
    let (real, _) = offer_of(victim, &id);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let mut config = Config::new("regtest", vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
        config.mdns = false;
        let (net, _events, _task) = peerchain_net::spawn(Keypair::generate_ed25519(), config, cancel.clone()).unwrap();
        net.dial(victim.p2p_addr().parse().unwrap()).await;
        // Into the victim's mesh for the offers topic.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut bogus: Vec<Vec<u8>> = vec![vec![0xff; 40], vec![1; 600]];
        for n in 0..200u32 {
            // Unanchored: coins that never existed, with the real offer's signature.
            let mut fake = real.clone();
            fake.input.prev_out = OutPoint::new(TxId([n as u8; 32]), n);
            bogus.push(fake.to_bytes());
        }
        // A real coin with a forged price.
        let mut forged = real.clone();
        forged.want.amount = Amount::from_units(1);
        bogus.push(forged.to_bytes());
        for bytes in bogus {
            net.publish(Topic::Offers, bytes).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        wait_for("the victim to ban the flooding peer", Duration::from_secs(30), || {
            victim.log().contains("peer banned").then_some(())
        });
        cancel.cancel();
    });
    let listed = book(victim);
    assert_eq!(listed.len(), 1, "only the real offer: {listed:?}");
    assert_eq!(listed[0]["offer_id"], id.as_str());
    assert_eq!(victim.json(&["market", "info"])["offers"], 1, "the flood holds no room in the book");
    assert!(victim.log().contains("offer"), "the offences name offers");
    assert_eq!(victim.json(&["chain", "info"])["network"], "regtest", "the node runs on");
}
