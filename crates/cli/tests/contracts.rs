//! Escrows and loans end to end with real nodes: a release completed by the seller's node
//! (also when it was offline at the time), a dispute the arbiter rules on, a refund after the
//! timeout and not before, one party's attempts at the other's steps refused, a loan repaid
//! while the lender is offline, and a default claimed after the term and not before.

mod support;

use std::time::Duration;

use peerchain_primitives::{
    Amount, Decode, Encode, KeyHash, Lock, Network, OutPoint, SecretKey, SigHashMode, Transaction, TxId, TxIn, TxOut,
    TxSignature, Witness,
};
use peerchain_wallet::KeyChain;
use serde_json::Value;
use support::{TestNode, wait_for};

const COIN: u64 = 100_000_000;

fn address(node: &TestNode) -> String {
    node.json(&["wallet", "address"])["address"].as_str().unwrap().to_owned()
}

fn key(node: &TestNode) -> String {
    node.json(&["wallet", "key"])["key"].as_str().unwrap().to_owned()
}

fn balance(node: &TestNode, asset: &str) -> u64 {
    node.json(&["token", "balance"])[asset].as_u64().unwrap_or(0)
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

fn wait_in_mempool(node: &TestNode, txid: &str, within: Duration) {
    wait_for("a transaction to reach the mempool", within, || {
        node.cli(&["chain", "tx", txid, "--json"]).status.success().then_some(())
    });
}

/// The entry for `id` in `node`'s `escrow list` or `loan list`.
fn entry(node: &TestNode, command: &str, field: &str, id: &str) -> Value {
    let list = node.json(&[command, "list"]);
    list.as_array().unwrap().iter().find(|e| e[field] == id).cloned().unwrap_or(Value::Null)
}

/// A miner with coins and `others` nodes with wallets connected to it, each paid 20 coins.
fn parties(others: usize) -> Vec<TestNode> {
    parties_with_words(others).0
}

/// `parties`, with every wallet's mnemonic (the miner's first).
fn parties_with_words(others: usize) -> (Vec<TestNode>, Vec<String>) {
    let miner = TestNode::start("regtest", &[]);
    let mut words = vec![miner.json(&["wallet", "create"])["mnemonic"].as_str().unwrap().to_owned()];
    let mut nodes = vec![miner];
    for _ in 0..others {
        let node = TestNode::start("regtest", &["--bootstrap", &nodes[0].p2p_addr()]);
        words.push(node.json(&["wallet", "create"])["mnemonic"].as_str().unwrap().to_owned());
        nodes.push(node);
    }
    let all: Vec<&TestNode> = nodes.iter().collect();
    mine(&nodes[0], 13, &all);
    for node in &nodes[1..] {
        nodes[0].json(&["wallet", "send", &address(node), "20"]);
    }
    mine(&nodes[0], 1, &all);
    (nodes, words)
}

/// The transaction `txid` as `node` stores it.
fn raw_tx(node: &TestNode, txid: &str) -> Transaction {
    let tx = node.json(&["chain", "tx", txid]);
    Transaction::from_bytes(&hex::decode(tx["hex"].as_str().unwrap()).unwrap()).unwrap()
}

/// The output at `id` (TXID:INDEX).
fn output_at(node: &TestNode, id: &str) -> (OutPoint, TxOut) {
    let (txid, index) = id.split_once(':').unwrap();
    let tx = raw_tx(node, txid);
    let index: u32 = index.parse().unwrap();
    (OutPoint::new(tx.txid(), index), tx.outputs[index as usize].clone())
}

/// The wallet key of `words` whose hash is `hash`.
fn wallet_key(words: &str, hash: KeyHash) -> SecretKey {
    for chain in [KeyChain::Receive, KeyChain::Change] {
        for index in 0..200 {
            let key = peerchain_wallet::key_from_mnemonic(words, Network::Regtest, chain, index).unwrap();
            if key.public_key().key_hash() == hash {
                return key;
            }
        }
    }
    panic!("no key of the wallet has this hash")
}

fn signature(tx: &Transaction, input: usize, spent: &TxOut, key: &SecretKey) -> TxSignature {
    let message = tx.signature_hash(input, spent, SigHashMode::All, Network::Regtest.magic());
    TxSignature { mode: SigHashMode::All, signature: key.sign(&message) }
}

/// Submits `tx` to every node; each must refuse it with an error containing `expected`.
fn refused_by_every_node(nodes: &[&TestNode], tx: &Transaction, expected: &str) {
    let hex = hex::encode(tx.to_bytes());
    for node in nodes {
        let error = node.cli_error(&["chain", "send", &hex], &[]);
        assert!(error.contains(expected), "expected `{expected}`: {error}");
    }
}

/// A confirmed coin of a key only the test holds: `payer` pays it `coins`.
fn outside_coin(payer: &TestNode, coins: &str, all: &[&TestNode]) -> (OutPoint, TxOut, SecretKey) {
    let key = SecretKey::from_seed([9; 32]);
    let address = peerchain_primitives::Address::new(Network::Regtest, key.public_key().key_hash()).to_string();
    let paid = payer.json(&["wallet", "send", &address, coins]);
    mine(payer, 1, all);
    let tx = raw_tx(payer, paid["txid"].as_str().unwrap());
    let index = tx.outputs.iter().position(|o| o.lock == Lock::Key(key.public_key().key_hash())).unwrap();
    (OutPoint::new(TxId(tx.txid().0), index as u32), tx.outputs[index].clone(), key)
}

#[test]
fn an_escrow_released_by_the_buyer_is_completed_by_the_sellers_node_even_after_it_was_offline() {
    let mut nodes = parties(1);
    let seller_key = key(&nodes[1]);
    let (buyer, seller) = (&nodes[0], &nodes[1]);
    let opened = buyer.json(&["escrow", "open", "--seller-key", &seller_key, "--amount", "5", "--timeout", "50"]);
    let id = opened["escrow_id"].as_str().unwrap().to_owned();
    mine(buyer, 1, &[buyer, seller]);
    let seen = entry(seller, "escrow", "escrow_id", &id);
    assert_eq!((seen["role"].as_str(), seen["state"].as_str()), (Some("seller"), Some("open")), "{seen}");
    assert_eq!(seen["amount"], 5 * COIN);
    assert_eq!(entry(buyer, "escrow", "escrow_id", &id)["role"], "buyer");

    // Neither party can take the other's step, and the buyer cannot take it back early.
    let refused = seller.cli_error(&["escrow", "release", &id], &[]);
    assert!(refused.contains("only the buyer"), "{refused}");
    let refused = seller.cli_error(&["escrow", "refund", &id], &[]);
    assert!(refused.contains("only the buyer"), "{refused}");
    let refused = buyer.cli_error(&["escrow", "refund", &id], &[]);
    assert!(refused.contains("can be taken back from block"), "{refused}");
    let refused = buyer.cli_error(&["escrow", "dispute", &id], &[]);
    assert!(refused.contains("no arbiter"), "{refused}");

    // The seller is offline when the buyer releases: its node completes the payout when it
    // comes back, from the payout the buyer's node publishes again.
    let before = balance(&nodes[1], "coin");
    nodes[1].stop();
    let released = nodes[0].json(&["escrow", "release", &id]);
    let payout = released["txid"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_secs(2));
    assert!(!nodes[0].cli(&["chain", "tx", &payout]).status.success(), "the buyer's half alone is not a transaction");
    let buyer_addr = nodes[0].p2p_addr();
    nodes[1].launch(&["--bootstrap", &buyer_addr]);
    let (buyer, seller) = (&nodes[0], &nodes[1]);
    wait_in_mempool(buyer, &payout, Duration::from_secs(120));
    mine(buyer, 1, &[buyer, seller]);
    let gained = balance(seller, "coin") - before;
    assert!(gained > 5 * COIN - COIN / 100 && gained <= 5 * COIN, "the seller got the escrow less a fee: {gained}");
    for node in [buyer, seller] {
        let ended = entry(node, "escrow", "escrow_id", &id);
        assert_eq!(ended["state"], "released", "{ended}");
        assert_eq!(ended["settled_by"], payout.as_str());
    }
}

#[test]
fn an_arbiter_rules_on_a_dispute_and_a_buyer_takes_an_escrow_back_after_its_timeout() {
    let nodes = parties(2);
    let (buyer, seller, arbiter) = (&nodes[0], &nodes[1], &nodes[2]);
    let all = [buyer, seller, arbiter];
    let args = ["escrow", "open", "--seller-key", &key(seller), "--amount", "4", "--timeout", "100"];
    let disputed = buyer.json(&[&args[..], &["--arbiter-key", &key(arbiter)]].concat());
    let disputed = disputed["escrow_id"].as_str().unwrap().to_owned();
    let timed = buyer.json(&["escrow", "open", "--seller-key", &key(seller), "--amount", "3", "--timeout", "3"]);
    let timed = timed["escrow_id"].as_str().unwrap().to_owned();
    mine(buyer, 1, &all);
    assert_eq!(entry(arbiter, "escrow", "escrow_id", &disputed)["role"], "arbiter");
    let opens = entry(buyer, "escrow", "escrow_id", &timed)["refundable_at"].as_u64().unwrap();
    assert_eq!(opens, buyer.height() + 2, "refundable 3 blocks after the block it was opened on");
    assert!(buyer.cli_error(&["escrow", "refund", &timed], &[]).contains("can be taken back from block"));

    let refused = arbiter.cli_error(&["escrow", "resolve", &disputed, "--to", "seller"], &[]);
    assert!(refused.contains("neither party has disputed"), "{refused}");
    let refused = buyer.cli_error(&["escrow", "resolve", &disputed, "--to", "buyer"], &[]);
    assert!(refused.contains("only the arbiter"), "{refused}");
    seller.json(&["escrow", "dispute", &disputed]);
    wait_for("the arbiter to hear of the dispute", Duration::from_secs(30), || {
        (entry(arbiter, "escrow", "escrow_id", &disputed)["state"] == "disputed").then_some(())
    });
    // The arbiter rules for the buyer: the buyer's node completes the payout.
    let before = balance(buyer, "coin");
    let ruled = arbiter.json(&["escrow", "resolve", &disputed, "--to", "buyer"]);
    let payout = ruled["txid"].as_str().unwrap().to_owned();
    wait_in_mempool(seller, &payout, Duration::from_secs(60));
    mine(seller, 1, &all);
    assert!(balance(buyer, "coin") > before + 4 * COIN - COIN / 100, "the buyer got the escrow back");
    for node in all {
        assert_eq!(entry(node, "escrow", "escrow_id", &disputed)["state"], "resolved");
    }

    // An escrow funded by another wallet, at the address the buyer gave: the buyer's node
    // sees it as its escrow, and can release it.
    let made = ["escrow", "open", "--seller-key", &key(seller), "--amount", "1", "--timeout", "50", "--address-only"];
    let address = buyer.json(&made)["address"].as_str().unwrap().to_owned();
    let funded = arbiter.json(&["wallet", "send", &address, "1.5"]);
    wait_in_mempool(buyer, funded["txid"].as_str().unwrap(), Duration::from_secs(30));
    mine(seller, 1, &all);
    let escrows = buyer.json(&["escrow", "list"]);
    let found = escrows.as_array().unwrap().iter().find(|e| e["address"] == address.as_str()).cloned().unwrap();
    assert_eq!((found["role"].as_str(), found["state"].as_str()), (Some("buyer"), Some("open")), "{found}");
    assert_eq!(found["amount"], 3 * COIN / 2);
    let released = buyer.json(&["escrow", "release", found["escrow_id"].as_str().unwrap()]);
    wait_in_mempool(seller, released["txid"].as_str().unwrap(), Duration::from_secs(60));

    // The other escrow, refused before its timeout above, is taken back after it.
    let height = buyer.height();
    if opens > height + 1 {
        mine(seller, (opens - height - 1) as u32, &all);
    }
    let refunded = buyer.json(&["escrow", "refund", &timed]);
    wait_in_mempool(seller, refunded["txid"].as_str().unwrap(), Duration::from_secs(30));
    mine(seller, 1, &all);
    assert_eq!(entry(seller, "escrow", "escrow_id", &timed)["state"], "refunded");
}

#[test]
fn a_loan_is_repaid_while_the_lender_is_offline_and_a_default_is_claimed_only_after_the_term() {
    let mut nodes = parties(1);
    let (lender, borrower) = (&nodes[0], &nodes[1]);
    let issued = lender.json(&["token", "issue", "usd", "100000"]);
    let usd = issued["asset"].as_str().unwrap().to_owned();
    mine(lender, 1, &[lender, borrower]);

    // The lender lends 1,000 usd for 1,100 within 20 blocks, against 3 coins.
    let offered = lender.json(&[
        "loan",
        "offer",
        "--amount",
        "1000",
        "--asset",
        &usd,
        "--repay",
        "1100",
        "--term",
        "20",
        "--collateral",
        "3",
        "coin",
    ]);
    let offer = offered["offer_id"].as_str().unwrap().to_owned();
    if offered["funding_txid"].is_string() {
        mine(lender, 1, &[lender, borrower]);
    }
    wait_for("the borrower to see the loan offer", Duration::from_secs(30), || {
        let book = borrower.json(&["loan", "book"]);
        book.as_array().unwrap().iter().any(|o| o["offer_id"] == offer.as_str()).then_some(())
    });
    assert!(
        !borrower.json(&["market", "book"]).as_array().unwrap().iter().any(|o| o["offer_id"] == offer.as_str()),
        "a loan offer is not a swap"
    );
    assert_eq!(entry(lender, "loan", "id", &offer)["state"], "offered");
    let coins = balance(borrower, "coin");
    let taken = borrower.json(&["loan", "take", &offer]);
    let loan = taken["loan_id"].as_str().unwrap().to_owned();
    wait_in_mempool(lender, taken["txid"].as_str().unwrap(), Duration::from_secs(30));
    mine(lender, 1, &[lender, borrower]);
    assert_eq!(balance(borrower, &usd), 1_000);
    assert!(balance(borrower, "coin") < coins - 3 * COIN, "the collateral is locked");
    for (node, role) in [(lender, "lender"), (borrower, "borrower")] {
        let seen = entry(node, "loan", "id", &loan);
        assert_eq!((seen["role"].as_str(), seen["state"].as_str()), (Some(role), Some("active")), "{seen}");
    }
    let refused = lender.cli_error(&["loan", "claim", &loan], &[]);
    assert!(refused.contains("can be claimed from block"), "{refused}");
    let refused = lender.cli_error(&["loan", "repay", &loan], &[]);
    assert!(refused.contains("only the borrower"), "{refused}");
    // 1,000 usd cannot repay 1,100.
    let refused = borrower.cli_error(&["loan", "repay", &loan], &[]);
    assert!(refused.to_lowercase().contains("insufficient") || refused.contains("not enough"), "{refused}");

    // With 100 more, the borrower repays while the lender is offline, and mines it itself.
    lender.json(&["token", "send", &address(borrower), "100", &usd]);
    mine(lender, 1, &[lender, borrower]);
    let lender_usd = balance(lender, &usd);
    nodes[0].stop();
    let borrower = &nodes[1];
    let repaid = borrower.json(&["loan", "repay", &loan]);
    borrower.json(&["chain", "generate", "1"]);
    assert_eq!(entry(borrower, "loan", "id", &loan)["state"], "repaid");
    assert_eq!(balance(borrower, &usd), 0);
    let borrower_tip = tip(borrower);
    let borrower_addr = nodes[1].p2p_addr();
    nodes[0].launch(&["--bootstrap", &borrower_addr]);
    let (lender, borrower) = (&nodes[0], &nodes[1]);
    wait_for("the lender to sync", Duration::from_secs(60), || (tip(lender) == borrower_tip).then_some(()));
    assert_eq!(balance(lender, &usd), lender_usd + 1_100, "repaid in full");
    let ended = entry(lender, "loan", "id", &loan);
    assert_eq!((ended["state"].as_str(), ended["settled_by"].as_str()), (Some("repaid"), repaid["txid"].as_str()));

    // A second loan defaults: claimed after the term, not before.
    let offered = lender.json(&[
        "loan",
        "offer",
        "--amount",
        "500",
        "--asset",
        &usd,
        "--repay",
        "600",
        "--term",
        "4",
        "--collateral",
        "2",
        "coin",
    ]);
    let offer = offered["offer_id"].as_str().unwrap().to_owned();
    if offered["funding_txid"].is_string() {
        mine(lender, 1, &[lender, borrower]);
    }
    wait_for("the borrower to see the second offer", Duration::from_secs(30), || {
        let book = borrower.json(&["loan", "book"]);
        book.as_array().unwrap().iter().any(|o| o["offer_id"] == offer.as_str()).then_some(())
    });
    let taken = borrower.json(&["loan", "take", &offer]);
    let loan = taken["loan_id"].as_str().unwrap().to_owned();
    wait_in_mempool(lender, taken["txid"].as_str().unwrap(), Duration::from_secs(30));
    mine(lender, 1, &[lender, borrower]);
    let due = entry(lender, "loan", "id", &loan)["due_at"].as_u64().unwrap();
    assert!(lender.cli_error(&["loan", "claim", &loan], &[]).contains("can be claimed from block"));
    mine(lender, (due - lender.height() - 1) as u32, &[lender, borrower]);
    assert_eq!(entry(borrower, "loan", "id", &loan)["state"], "defaulted");
    let claimed = lender.json(&["loan", "claim", &loan]);
    wait_in_mempool(borrower, claimed["txid"].as_str().unwrap(), Duration::from_secs(30));
    mine(borrower, 1, &[lender, borrower]);
    assert_eq!(entry(borrower, "loan", "id", &loan)["state"], "claimed");
    assert_eq!(entry(lender, "loan", "id", &loan)["state"], "claimed");
}

#[test]
fn nobody_takes_both_sides_every_node_refuses_a_lone_party_an_early_refund_and_a_short_repayment() {
    let (nodes, words) = parties_with_words(2);
    let (buyer, seller, arbiter) = (&nodes[0], &nodes[1], &nodes[2]);
    let all = [buyer, seller, arbiter];
    let args = ["escrow", "open", "--seller-key", &key(seller), "--amount", "4", "--timeout", "100"];
    let opened = buyer.json(&[&args[..], &["--arbiter-key", &key(arbiter)]].concat());
    let id = opened["escrow_id"].as_str().unwrap().to_owned();
    mine(buyer, 1, &all);
    let (escrow, held) = output_at(buyer, &id);
    let Lock::Escrow { keys, .. } = &held.lock else { panic!("not an escrow: {held:?}") };
    let buyer_key = wallet_key(&words[0], keys[0].key_hash());
    let arbiter_key = wallet_key(&words[2], keys[2].key_hash());

    // The buyer alone pays itself (a release signed by one party), or refunds before the
    // timeout; the arbiter alone pays itself.
    let payout = |to: KeyHash, witness: Witness| Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: escrow, witness }],
        outputs: vec![TxOut::coins_to(Amount::from_units(held.amount.units() - 10_000), to)],
        lock_time: 0,
    };
    let mut lone_buyer = payout(buyer_key.public_key().key_hash(), Witness::Multisig { signatures: vec![] });
    let signed = signature(&lone_buyer, 0, &held, &buyer_key);
    lone_buyer.inputs[0].witness = Witness::Multisig { signatures: vec![(0, signed)] };
    refused_by_every_node(&all, &lone_buyer, "does not match the lock");
    let mut early = payout(buyer_key.public_key().key_hash(), Witness::Multisig { signatures: vec![] });
    let signed = signature(&early, 0, &held, &buyer_key);
    early.inputs[0].witness = Witness::TimeLockRefund { public_key: buyer_key.public_key(), signature: signed };
    refused_by_every_node(&all, &early, "refunds before height");
    let mut lone_arbiter = payout(arbiter_key.public_key().key_hash(), Witness::Multisig { signatures: vec![] });
    let signed = signature(&lone_arbiter, 0, &held, &arbiter_key);
    lone_arbiter.inputs[0].witness = Witness::Multisig { signatures: vec![(2, signed)] };
    refused_by_every_node(&all, &lone_arbiter, "does not match the lock");
    assert_eq!(entry(seller, "escrow", "escrow_id", &id)["state"], "open", "the escrow stands");

    // A loan of 2 coins, repaid with 2.1, against 500 gold of the borrower's.
    let borrower = seller;
    let gold = borrower.json(&["token", "issue", "gold", "1000"])["asset"].as_str().unwrap().to_owned();
    mine(buyer, 1, &all);
    let args = ["loan", "offer", "--amount", "2", "--repay", "2.1", "--term", "50", "--collateral", "500", &gold];
    let offered = buyer.json(&args);
    if offered["funding_txid"].is_string() {
        mine(buyer, 1, &all);
    }
    let offer = offered["offer_id"].as_str().unwrap().to_owned();
    wait_for("the borrower to see the loan offer", Duration::from_secs(30), || {
        let book = borrower.json(&["loan", "book"]);
        book.as_array().unwrap().iter().any(|o| o["offer_id"] == offer.as_str()).then_some(())
    });
    let taken = borrower.json(&["loan", "take", &offer]);
    wait_in_mempool(buyer, taken["txid"].as_str().unwrap(), Duration::from_secs(30));
    mine(buyer, 1, &all);
    let (loan, collateral) = output_at(borrower, taken["loan_id"].as_str().unwrap());
    let Lock::Loan { borrower: borrower_hash, lender, repay_amount, .. } = collateral.lock else {
        panic!("not a loan: {collateral:?}")
    };
    let borrower_key = wallet_key(&words[1], borrower_hash);
    let (coin, coin_output, coin_key) = outside_coin(buyer, "5", &all);
    // The repayment pays the lender one base unit short; the collateral goes back.
    let short = repay_amount.units() - 1;
    let mut repay = Transaction {
        version: 1,
        inputs: vec![
            TxIn { prev_out: loan, witness: Witness::Multisig { signatures: vec![] } },
            TxIn { prev_out: coin, witness: Witness::Multisig { signatures: vec![] } },
        ],
        outputs: vec![
            TxOut::coins_to(Amount::from_units(short), lender),
            TxOut { lock: Lock::Key(borrower_hash), ..collateral.clone() },
            TxOut::coins_to(Amount::from_units(coin_output.amount.units() - short - 10_000), borrower_hash),
        ],
        lock_time: 0,
    };
    let (first, second) =
        (signature(&repay, 0, &collateral, &borrower_key), signature(&repay, 1, &coin_output, &coin_key));
    repay.inputs[0].witness = Witness::Key { public_key: borrower_key.public_key(), signature: first };
    repay.inputs[1].witness = Witness::Key { public_key: coin_key.public_key(), signature: second };
    refused_by_every_node(&all, &repay, "without repaying the lender");
    // And the lender cannot claim before the term.
    let lender_key = wallet_key(&words[0], lender);
    let mut claim = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: loan, witness: Witness::Multisig { signatures: vec![] } }],
        outputs: vec![TxOut { lock: Lock::Key(lender), ..collateral.clone() }],
        lock_time: 0,
    };
    let signed = signature(&claim, 0, &collateral, &lender_key);
    claim.inputs[0].witness = Witness::TimeLockRefund { public_key: lender_key.public_key(), signature: signed };
    refused_by_every_node(&all, &claim, "refunds before height");
    assert_eq!(entry(borrower, "loan", "id", taken["loan_id"].as_str().unwrap())["state"], "active");
}
