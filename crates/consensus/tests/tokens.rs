//! Launch rules for trading: tokens issued with their metadata and conserved exactly, burns
//! only by burn outputs (which never enter the UTXO set), mint rights, and signatures that
//! expire at a height.

use peerchain_consensus::TxReject;
use peerchain_primitives::{
    Amount, AssetId, Encode, Lock, OutPoint, SecretKey, SigHashMode, TokenId, TokenMetadata, Transaction, TxId, TxIn,
    TxOut, Witness,
};

mod support;

use support::{Fixture, HEIGHT};

fn unsigned() -> Witness {
    Witness::Multisig { signatures: vec![] }
}

fn to(key: &SecretKey, asset: AssetId, units: u64) -> TxOut {
    TxOut { asset, amount: Amount::from_units(units), lock: Lock::Key(key.public_key().key_hash()) }
}

fn metadata_output(token: TokenId, data: Vec<u8>) -> TxOut {
    TxOut { asset: AssetId::Token(token), amount: Amount::ZERO, lock: Lock::Burn { data } }
}

fn gold() -> Vec<u8> {
    TokenMetadata::new("gold", 2, None).unwrap().to_bytes()
}

/// Alice issues `supply` of the token named after the funding coin, with `extra` outputs.
fn issuance(fx: &Fixture, supply: u64, extra: Vec<TxOut>) -> (Transaction, TokenId) {
    let token = TokenId::issued_by(&fx.funding);
    let mut outputs = vec![TxOut::coins_to(Amount::from_coins(49), fx.alice.public_key().key_hash())];
    if supply > 0 {
        outputs.push(to(&fx.alice, AssetId::Token(token), supply));
    }
    outputs.extend(extra);
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: fx.funding, witness: unsigned() }],
        outputs,
        lock_time: 0,
    };
    fx.sign_key(&mut tx, 0, &fx.alice, SigHashMode::All);
    (tx, token)
}

#[test]
fn an_issuance_names_its_token_once_and_the_name_costs_no_utxo() {
    let fx = Fixture::new();
    let token = TokenId::issued_by(&fx.funding);
    let (tx, _) = issuance(&fx, 1_000, vec![metadata_output(token, gold())]);
    let effects = fx.connect(&fx.block(vec![tx.clone()], Amount::ZERO)).expect("issuance with its metadata");
    let txid = tx.txid();
    let created: Vec<u32> = effects.created.iter().filter(|(o, _)| o.txid == txid).map(|(o, _)| o.index).collect();
    assert_eq!(created.len(), 2, "the coin change and the supply, not the metadata burn: {created:?}");
    assert!(!created.contains(&2));

    let (none, _) = issuance(&fx, 1_000, vec![]);
    assert_eq!(fx.tx_reason(none), TxReject::BadTokenMetadata);
    let (twice, _) = issuance(&fx, 1_000, vec![metadata_output(token, gold()), metadata_output(token, gold())]);
    assert_eq!(fx.tx_reason(twice), TxReject::BadTokenMetadata);
    let (garbage, _) = issuance(&fx, 1_000, vec![metadata_output(token, vec![1, 0, 0, 0])]);
    assert_eq!(fx.tx_reason(garbage), TxReject::BadTokenMetadata);
    // Another token cannot come from nothing, with or without a name.
    let other = TokenId([5; 32]);
    let (forged, _) = issuance(&fx, 0, vec![to(&fx.alice, AssetId::Token(other), 5), metadata_output(other, gold())]);
    assert_eq!(fx.tx_reason(forged), TxReject::Overspend { asset: AssetId::Token(other) });
}

/// Alice holds 1,000 of a token (and Bob 5 coins) in the returned fixture.
fn holding() -> (Fixture, TokenId, OutPoint, OutPoint) {
    let mut fx = Fixture::new();
    let token = TokenId([6; 32]);
    let tokens = OutPoint::new(TxId([7; 32]), 0);
    fx.add_coin(tokens, to(&fx.alice, AssetId::Token(token), 1_000));
    let bob_coin = OutPoint::new(TxId([8; 32]), 3);
    fx.add_coin(bob_coin, TxOut::coins_to(Amount::from_coins(5), fx.bob.public_key().key_hash()));
    (fx, token, tokens, bob_coin)
}

#[test]
fn tokens_are_conserved_exactly_and_burnt_only_by_a_burn_output() {
    let (fx, token, tokens, _) = holding();
    let spend = |outputs: Vec<TxOut>| {
        let mut tx = Transaction {
            version: 1,
            inputs: vec![
                TxIn { prev_out: fx.funding, witness: unsigned() },
                TxIn { prev_out: tokens, witness: unsigned() },
            ],
            outputs,
            lock_time: 0,
        };
        fx.sign_key(&mut tx, 0, &fx.alice, SigHashMode::All);
        fx.sign_key(&mut tx, 1, &fx.alice, SigHashMode::All);
        tx
    };
    let change = TxOut::coins_to(Amount::from_coins(49), fx.alice.public_key().key_hash());
    // Today's silent burn: 100 units simply vanish.
    let silent = spend(vec![change.clone(), to(&fx.bob, AssetId::Token(token), 900)]);
    assert_eq!(fx.tx_reason(silent), TxReject::TokenNotConserved { asset: AssetId::Token(token) });
    let more = spend(vec![change.clone(), to(&fx.bob, AssetId::Token(token), 1_001)]);
    assert_eq!(fx.tx_reason(more), TxReject::Overspend { asset: AssetId::Token(token) });

    let burn = TxOut {
        asset: AssetId::Token(token),
        amount: Amount::from_units(100),
        lock: Lock::Burn { data: b"receipt".to_vec() },
    };
    let explicit = spend(vec![change, to(&fx.bob, AssetId::Token(token), 900), burn]);
    let effects = fx.connect(&fx.block(vec![explicit.clone()], Amount::from_coins(1))).expect("an explicit burn");
    let burnt = OutPoint::new(explicit.txid(), 2);
    assert!(effects.created.iter().all(|(o, _)| *o != burnt), "a burn never enters the UTXO set");

    // Nothing can spend a burn, even in the block that made it.
    let mut thief = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: burnt, witness: unsigned() }],
        outputs: vec![to(&fx.bob, AssetId::Token(token), 100)],
        lock_time: 0,
    };
    thief.inputs[0].witness = Witness::TimeLockRefund {
        public_key: fx.bob.public_key(),
        signature: peerchain_primitives::TxSignature { mode: SigHashMode::All, signature: fx.bob.sign(&[0; 32]) },
    };
    let block = fx.block(vec![explicit, thief], Amount::from_coins(1));
    match fx.connect(&block) {
        Err(peerchain_consensus::ValidationError::Reject(peerchain_consensus::BlockReject::Transaction {
            reason: TxReject::MissingInput(outpoint),
            ..
        })) => assert_eq!(outpoint, burnt),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_mint_right_lets_its_holder_alone_mint_more_and_is_itself_conserved() {
    let mut fx = Fixture::new();
    let token = TokenId::issued_by(&fx.funding);
    let right = to(&fx.alice, AssetId::MintRight(token), 1);
    let (tx, _) = issuance(&fx, 1_000, vec![metadata_output(token, gold()), right.clone()]);
    fx.connect(&fx.block(vec![tx.clone()], Amount::ZERO)).expect("issuance with a mint right");
    let right_at = OutPoint::new(tx.txid(), 3);
    fx.add_coin(right_at, right.clone());
    let coins = OutPoint::new(TxId([8; 32]), 3);
    fx.add_coin(coins, TxOut::coins_to(Amount::from_coins(5), fx.alice.public_key().key_hash()));

    let mint = |outputs: Vec<TxOut>, mode: SigHashMode| {
        let mut tx = Transaction {
            version: 1,
            inputs: vec![
                TxIn { prev_out: coins, witness: unsigned() },
                TxIn { prev_out: right_at, witness: unsigned() },
            ],
            outputs,
            lock_time: 0,
        };
        fx.sign_key(&mut tx, 0, &fx.alice, SigHashMode::All);
        fx.sign_key(&mut tx, 1, &fx.alice, mode);
        tx
    };
    let change = TxOut::coins_to(Amount::from_coins(4), fx.alice.public_key().key_hash());
    let minted = mint(vec![change.clone(), right.clone(), to(&fx.bob, AssetId::Token(token), 500)], SigHashMode::All);
    fx.connect(&fx.block(vec![minted], Amount::from_coins(1))).expect("the holder mints 500");

    // A signature that does not commit to everything cannot mint (a taker would fill it).
    let offered = mint(
        vec![change.clone(), right.clone(), to(&fx.bob, AssetId::Token(token), 500)],
        SigHashMode::SingleInputOutput,
    );
    assert_eq!(fx.tx_reason(offered), TxReject::MintNotAuthorised { outpoint: right_at });
    // Dropping the right is a silent burn too.
    let dropped = mint(vec![change.clone(), to(&fx.bob, AssetId::Token(token), 500)], SigHashMode::All);
    assert_eq!(fx.tx_reason(dropped), TxReject::TokenNotConserved { asset: AssetId::MintRight(token) });
    // No right, no minting; and a coinbase cannot pay one.
    let mut fx2 = Fixture::new();
    fx2.add_coin(coins, TxOut::coins_to(Amount::from_coins(5), fx2.alice.public_key().key_hash()));
    let mut no_right = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: coins, witness: unsigned() }],
        outputs: vec![change, to(&fx2.bob, AssetId::Token(token), 500)],
        lock_time: 0,
    };
    fx2.sign_key(&mut no_right, 0, &fx2.alice, SigHashMode::All);
    assert_eq!(fx2.tx_reason(no_right), TxReject::Overspend { asset: AssetId::Token(token) });
    let mut block = fx.block(vec![], Amount::ZERO);
    block.transactions[0].outputs[0].asset = AssetId::MintRight(token);
    block.header.merkle_root = block.compute_merkle_root();
    assert!(fx.connect(&block).is_err());
}

#[test]
fn an_expiring_signature_is_valid_up_to_its_height_and_its_expiry_is_signed() {
    let fx = Fixture::new();
    let pay = |mode: SigHashMode| {
        let mut tx = fx.payment(Amount::from_coins(1), Amount::ZERO);
        fx.sign_key(&mut tx, 0, &fx.alice, mode);
        tx
    };
    fx.connect(&fx.block(vec![pay(SigHashMode::AllUntil(HEIGHT))], Amount::ZERO)).expect("valid at its last height");
    assert_eq!(
        fx.tx_reason(pay(SigHashMode::AllUntil(HEIGHT - 1))),
        TxReject::SignatureExpired { input: 0, expiry: HEIGHT - 1 }
    );
    assert!(TxReject::SignatureExpired { input: 0, expiry: 1 }.depends_on_height());
    // Nobody can extend it: the expiry is part of what was signed.
    let mut extended = pay(SigHashMode::AllUntil(HEIGHT - 1));
    let Witness::Key { signature, .. } = &mut extended.inputs[0].witness else { unreachable!() };
    signature.mode = SigHashMode::AllUntil(HEIGHT + 10);
    assert_eq!(fx.tx_reason(extended), TxReject::BadSignature { input: 0 });
}

/// An offer: Alice signs her 1,000 tokens for 2 coins paid to her, until `expiry`; Bob
/// completes it with his coins.
fn take(fx: &Fixture, tokens: OutPoint, bob_coin: OutPoint, token: TokenId, expiry: u32, pay: u64) -> Transaction {
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: tokens, witness: unsigned() }],
        outputs: vec![TxOut::coins_to(Amount::from_coins(2), fx.alice.public_key().key_hash())],
        lock_time: 0,
    };
    fx.sign_key(&mut tx, 0, &fx.alice, SigHashMode::SingleInputOutputUntil(expiry));
    tx.outputs[0].amount = Amount::from_units(pay);
    tx.inputs.push(TxIn { prev_out: bob_coin, witness: unsigned() });
    tx.outputs.push(to(&fx.bob, AssetId::Token(token), 1_000));
    tx.outputs.push(TxOut::coins_to(Amount::from_units(5 * 100_000_000 - pay - 1_000), fx.bob.public_key().key_hash()));
    fx.sign_key(&mut tx, 1, &fx.bob, SigHashMode::All);
    tx
}

#[test]
fn an_offer_is_taken_in_one_transaction_until_it_expires_and_only_on_its_terms() {
    let (fx, token, tokens, bob_coin) = holding();
    let price = 2 * 100_000_000;
    let swap = take(&fx, tokens, bob_coin, token, HEIGHT, price);
    fx.connect(&fx.block(vec![swap], Amount::ZERO)).expect("both legs in one transaction");
    assert_eq!(
        fx.tx_reason(take(&fx, tokens, bob_coin, token, HEIGHT - 1, price)),
        TxReject::SignatureExpired { input: 0, expiry: HEIGHT - 1 }
    );
    assert_eq!(
        fx.tx_reason(take(&fx, tokens, bob_coin, token, HEIGHT, price - 1)),
        TxReject::BadSignature { input: 0 }
    );
}
