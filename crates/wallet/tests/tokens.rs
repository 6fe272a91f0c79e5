//! The wallet with tokens: issue, send, burn and mint, an offer signed by one wallet and
//! taken by another, reservations, balances and history per asset. Every transaction the
//! wallets build is checked by the consensus rules before it is mined.

use std::collections::HashMap;

use peerchain_consensus::{Params, UtxoView, ViewError, connect_block};
use peerchain_primitives::{Address, Amount, AssetId, Coin, FeeRate, OutPoint, TokenMetadata, Transaction, TxOut};
use peerchain_wallet::{ChainSource, Plan, SignedPair, Wallet};

mod support;

use support::*;

struct Utxos(HashMap<OutPoint, Coin>);

impl UtxoView for Utxos {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, ViewError> {
        Ok(self.0.get(outpoint).cloned())
    }
}

/// The UTXO set after the chain's blocks, burns left out as consensus leaves them.
fn utxos(chain: &FakeChain) -> Utxos {
    let mut set = HashMap::new();
    for (height, block) in chain.blocks.borrow().iter().enumerate() {
        for (position, tx) in block.transactions.iter().enumerate() {
            if position > 0 {
                for input in &tx.inputs {
                    set.remove(&input.prev_out);
                }
            }
            let txid = tx.txid();
            for (index, output) in tx.outputs.iter().enumerate() {
                if !output.lock.is_burn() {
                    let coin = Coin { output: output.clone(), height: height as u32, is_coinbase: position == 0 };
                    set.insert(OutPoint::new(txid, index as u32), coin);
                }
            }
        }
    }
    Utxos(set)
}

/// Checks `tx` against the rules at the next height, then mines it and syncs `wallets`.
fn confirm(chain: &FakeChain, tx: Transaction, wallets: &mut [&mut Wallet]) {
    let params = Params::for_network(NET);
    let height = chain.tip_height() + 1;
    let mut block = chain.blocks.borrow()[0].clone();
    block.transactions = vec![coinbase(height, peerchain_primitives::KeyHash::ZERO, 0), tx.clone()];
    block.header.merkle_root = block.compute_merkle_root();
    connect_block(&block, height, &utxos(chain), &params).unwrap_or_else(|e| panic!("{e}: {tx:?}"));
    chain.mine_to(peerchain_primitives::KeyHash::ZERO, vec![tx]);
    for wallet in wallets {
        sync(wallet, chain);
    }
}

fn confirmed(wallet: &Wallet, chain: &FakeChain, asset: AssetId) -> u64 {
    wallet.balances(chain.tip_height(), MATURITY).get(&asset).map_or(0, |b| b.confirmed.units())
}

const RATE: FeeRate = FeeRate::per_byte(1);

#[test]
fn tokens_are_issued_sent_burnt_minted_and_swapped_by_offer() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, _) = new_wallet(a_dir.path());
    let (mut bob, _) = new_wallet(b_dir.path());
    let chain = FakeChain::new();
    let alice_address = alice.address(false, None).unwrap();
    let bob_address = bob.address(false, None).unwrap();
    for _ in 0..3 {
        chain.mine_to(alice_address.key_hash, vec![]);
        chain.mine_to(bob_address.key_hash, vec![]);
    }
    for _ in 0..MATURITY {
        chain.mine_to(peerchain_primitives::KeyHash::ZERO, vec![]);
    }
    sync(&mut alice, &chain);
    sync(&mut bob, &chain);
    let tip = |chain: &FakeChain| chain.tip_height();

    // Issue, with a mint right.
    let gold = TokenMetadata::new("gold", 2, None).unwrap();
    let (token, issue) =
        alice.issue_token(&gold, Amount::from_units(1_000_000), true, RATE, None, tip(&chain), MATURITY).unwrap();
    let asset = AssetId::Token(token);
    confirm(&chain, issue.tx, &mut [&mut alice, &mut bob]);
    assert_eq!(confirmed(&alice, &chain, asset), 1_000_000);
    assert_eq!(confirmed(&alice, &chain, AssetId::MintRight(token)), 1);
    assert_eq!(confirmed(&alice, &chain, AssetId::Coin), coins(150) - issue.fee.units());

    // Send, burn, mint.
    let send =
        alice.send_asset(&bob_address, asset, Amount::from_units(250_000), RATE, None, tip(&chain), MATURITY).unwrap();
    confirm(&chain, send.tx, &mut [&mut alice, &mut bob]);
    assert_eq!((confirmed(&alice, &chain, asset), confirmed(&bob, &chain, asset)), (750_000, 250_000));
    let burn = alice.burn(asset, Amount::from_units(50_000), RATE, None, tip(&chain), MATURITY).unwrap();
    confirm(&chain, burn.tx, &mut [&mut alice]);
    assert_eq!(confirmed(&alice, &chain, asset), 700_000);
    let mint = alice.mint(token, Amount::from_units(10_000), RATE, None, tip(&chain), MATURITY).unwrap();
    confirm(&chain, mint.tx, &mut [&mut alice]);
    assert_eq!(confirmed(&alice, &chain, asset), 710_000);
    assert_eq!(confirmed(&alice, &chain, AssetId::MintRight(token)), 1, "the right comes back in change");
    let too_much =
        alice.send_asset(&bob_address, asset, Amount::from_units(710_001), RATE, None, tip(&chain), MATURITY);
    assert!(matches!(too_much, Err(peerchain_wallet::Error::InsufficientAsset { .. })), "{too_much:?}");

    // Bob offers exactly 100,000 gold for 2 coins: first a coin of that size, then the offer.
    let own = Address::new(NET, bob.fresh_key_hash(None).unwrap());
    let split = bob.send_asset(&own, asset, Amount::from_units(100_000), RATE, None, tip(&chain), MATURITY).unwrap();
    let anchor = OutPoint::new(split.tx.txid(), 0);
    confirm(&chain, split.tx, &mut [&mut alice, &mut bob]);
    let want = TxOut::coins_to(Amount::from_coins(2), bob.fresh_key_hash(None).unwrap());
    let expiry = tip(&chain) + 10;
    let (input, spent) = bob.sign_offer(&anchor, &want, expiry, None).unwrap();
    bob.reserve(&[anchor], expiry).unwrap();
    assert!(
        bob.spendable(tip(&chain), MATURITY).iter().all(|c| c.outpoint != anchor),
        "a reserved anchor is not spent"
    );

    // Alice takes it: one transaction, both legs.
    let plan = Plan { signed: vec![SignedPair { input, spent, output: want }], ..Plan::paying(vec![], RATE) };
    let take = alice.build(plan, None, tip(&chain), MATURITY).unwrap();
    let bob_coins = confirmed(&bob, &chain, AssetId::Coin);
    confirm(&chain, take.tx, &mut [&mut alice, &mut bob]);
    assert_eq!(confirmed(&alice, &chain, asset), 810_000);
    assert_eq!(confirmed(&bob, &chain, asset), 150_000);
    assert_eq!(confirmed(&bob, &chain, AssetId::Coin), bob_coins + coins(2));

    // History shows token movements.
    let history = alice.history(tip(&chain), MATURITY);
    let received: u64 =
        history.iter().flat_map(|e| &e.tokens).filter(|(a, ..)| *a == asset).map(|(_, r, _)| r.units()).sum();
    let sent: u64 =
        history.iter().flat_map(|e| &e.tokens).filter(|(a, ..)| *a == asset).map(|(_, _, s)| s.units()).sum();
    assert_eq!(received as i64 - sent as i64, 810_000);
}
