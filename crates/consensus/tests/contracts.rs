//! Launch rules for contracts between two peers: escrow (m of n keys, or a fallback key
//! after a height or an age), loans (the collateral leaves only in the transaction that
//! repays, or to the lender after the term), a lender's offer that names no borrower, and
//! 32-byte hash-lock preimages.

use peerchain_consensus::TxReject;
use peerchain_primitives::{
    After, Amount, AssetId, Coin, Lock, LockHash, OutPoint, SecretKey, SigHashMode, TokenId, Transaction, TxId, TxIn,
    TxOut, TxSignature, Witness,
};
use sha2::{Digest, Sha256};

mod support;

use support::{Fixture, HEIGHT};

fn unsigned() -> Witness {
    Witness::Multisig { signatures: vec![] }
}

fn signature(fx: &Fixture, tx: &Transaction, index: usize, key: &SecretKey, mode: SigHashMode) -> TxSignature {
    let spent = fx.spent_output(&tx.inputs[index].prev_out);
    let message = tx.signature_hash(index, &spent, mode, fx.params.network.magic());
    TxSignature { mode, signature: key.sign(&message) }
}

/// A spend of `coin` (holding 5 coins) paying 4 coins to `to`.
fn spend_of(coin: OutPoint, to: &SecretKey) -> Transaction {
    Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: coin, witness: unsigned() }],
        outputs: vec![TxOut::coins_to(Amount::from_coins(4), to.public_key().key_hash())],
        lock_time: 0,
    }
}

#[test]
fn an_escrow_pays_out_with_enough_keys_or_to_its_fallback_after_the_timeout() {
    let mut fx = Fixture::new();
    let arbiter = SecretKey::from_seed([3; 32]);
    let (buyer, seller) = (fx.alice.clone(), fx.bob.clone());
    let keys = vec![buyer.public_key(), seller.public_key(), arbiter.public_key()];
    let escrow = OutPoint::new(TxId([5; 32]), 0);
    let lock =
        Lock::Escrow { threshold: 2, keys, after: After::Height(HEIGHT), fallback: buyer.public_key().key_hash() };
    fx.add_coin(escrow, TxOut { asset: AssetId::Coin, amount: Amount::from_coins(5), lock });

    // Released: buyer and seller sign; or resolved: the arbiter and the winner.
    for signers in [[(0u8, &buyer), (1, &seller)], [(1, &seller), (2, &arbiter)]] {
        let mut tx = spend_of(escrow, &seller);
        let sigs = signers.iter().map(|(i, k)| (*i, signature(&fx, &tx, 0, k, SigHashMode::All))).collect();
        tx.inputs[0].witness = Witness::Multisig { signatures: sigs };
        fx.connect(&fx.block(vec![tx], Amount::from_coins(1))).expect("two of three");
    }
    // One party alone, even the arbiter, cannot.
    let mut alone = spend_of(escrow, &arbiter);
    alone.inputs[0].witness =
        Witness::Multisig { signatures: vec![(2, signature(&fx, &alone, 0, &arbiter, SigHashMode::All))] };
    assert_eq!(fx.tx_reason(alone), TxReject::WitnessMismatch { input: 0 });

    // The fallback: the buyer alone, from the timeout on, never before.
    let refund = |fx: &Fixture, key: &SecretKey| {
        let mut tx = spend_of(escrow, key);
        tx.inputs[0].witness = Witness::TimeLockRefund {
            public_key: key.public_key(),
            signature: signature(fx, &tx, 0, key, SigHashMode::All),
        };
        tx
    };
    fx.connect(&fx.block(vec![refund(&fx, &buyer)], Amount::from_coins(1))).expect("refund at the timeout");
    assert_eq!(fx.tx_reason(refund(&fx, &seller)), TxReject::WitnessMismatch { input: 0 });
    let mut early = Fixture::new();
    let lock = Lock::Escrow {
        threshold: 2,
        keys: vec![buyer.public_key(), seller.public_key()],
        after: After::Age(10),
        fallback: buyer.public_key().key_hash(),
    };
    early.view.0.insert(
        escrow,
        Coin {
            output: TxOut { asset: AssetId::Coin, amount: Amount::from_coins(5), lock },
            height: HEIGHT - 9,
            is_coinbase: false,
        },
    );
    assert_eq!(
        early.tx_reason(refund(&early, &buyer)),
        TxReject::RefundTooEarly { input: 0, refund_height: HEIGHT + 1 }
    );

    // A threshold of zero or above the keys cannot even be created.
    let mut bad = fx.payment(Amount::from_coins(1), Amount::ZERO);
    bad.outputs[0].lock = Lock::Escrow {
        threshold: 3,
        keys: vec![buyer.public_key()],
        after: After::Height(1),
        fallback: Default::default(),
    };
    fx.sign_key(&mut bad, 0, &fx.alice, SigHashMode::All);
    assert_eq!(fx.tx_reason(bad), TxReject::BadMultisigLock);
}

/// A loan of 10 coins against 1,000 tokens, to be repaid with 11 coins within 20 blocks.
fn loan_lock(borrower: &SecretKey, lender: &SecretKey) -> Lock {
    Lock::Loan {
        borrower: borrower.public_key().key_hash(),
        lender: lender.public_key().key_hash(),
        repay_asset: AssetId::Coin,
        repay_amount: Amount::from_coins(11),
        term: 20,
    }
}

#[test]
fn a_loans_collateral_leaves_only_in_the_repayment_or_to_the_lender_after_the_term() {
    let mut fx = Fixture::new();
    let (borrower, lender) = (fx.alice.clone(), fx.bob.clone());
    let gold = AssetId::Token(TokenId([4; 32]));
    let collateral = OutPoint::new(TxId([6; 32]), 0);
    let output = TxOut { asset: gold, amount: Amount::from_units(1_000), lock: loan_lock(&borrower, &lender) };
    fx.view.0.insert(collateral, Coin { output, height: HEIGHT - 20, is_coinbase: false });
    let coins = OutPoint::new(TxId([7; 32]), 0);
    fx.add_coin(coins, TxOut::coins_to(Amount::from_coins(12), borrower.public_key().key_hash()));

    let repay = |fx: &Fixture, paid: u64, to: &SecretKey, signer: &SecretKey| {
        let mut tx = Transaction {
            version: 1,
            inputs: vec![
                TxIn { prev_out: collateral, witness: unsigned() },
                TxIn { prev_out: coins, witness: unsigned() },
            ],
            outputs: vec![
                TxOut::coins_to(Amount::from_units(paid), to.public_key().key_hash()),
                TxOut {
                    asset: gold,
                    amount: Amount::from_units(1_000),
                    lock: Lock::Key(borrower.public_key().key_hash()),
                },
            ],
            lock_time: 0,
        };
        tx.inputs[0].witness = Witness::Key {
            public_key: signer.public_key(),
            signature: signature(fx, &tx, 0, signer, SigHashMode::All),
        };
        tx.inputs[1].witness = Witness::Key {
            public_key: borrower.public_key(),
            signature: signature(fx, &tx, 1, &borrower, SigHashMode::All),
        };
        tx
    };
    let owed = Amount::from_coins(11).units();
    fx.connect(&fx.block(vec![repay(&fx, owed, &lender, &borrower)], Amount::from_coins(1)))
        .expect("repaid, collateral back");
    assert_eq!(fx.tx_reason(repay(&fx, owed - 1, &lender, &borrower)), TxReject::LoanNotRepaid { input: 0 });
    assert_eq!(fx.tx_reason(repay(&fx, owed, &borrower, &borrower)), TxReject::LoanNotRepaid { input: 0 });
    assert_eq!(fx.tx_reason(repay(&fx, owed, &lender, &lender)), TxReject::WitnessMismatch { input: 0 });

    // The lender claims from the term on (the collateral was confirmed at HEIGHT - 20).
    let claim = |fx: &Fixture| {
        let mut tx = Transaction {
            version: 1,
            inputs: vec![TxIn { prev_out: collateral, witness: unsigned() }],
            outputs: vec![TxOut {
                asset: gold,
                amount: Amount::from_units(1_000),
                lock: Lock::Key(lender.public_key().key_hash()),
            }],
            lock_time: 0,
        };
        tx.inputs[0].witness = Witness::TimeLockRefund {
            public_key: lender.public_key(),
            signature: signature(fx, &tx, 0, &lender, SigHashMode::All),
        };
        tx
    };
    fx.connect(&fx.block(vec![claim(&fx)], Amount::ZERO)).expect("claimed at the term");
    fx.view.0.get_mut(&collateral).unwrap().height = HEIGHT - 19;
    assert_eq!(fx.tx_reason(claim(&fx)), TxReject::RefundTooEarly { input: 0, refund_height: HEIGHT + 1 });
}

#[test]
fn a_lenders_offer_names_no_borrower_and_binds_every_other_term() {
    let mut fx = Fixture::new();
    let (borrower, lender) = (fx.alice.clone(), fx.bob.clone());
    let gold = AssetId::Token(TokenId([4; 32]));
    let principal = OutPoint::new(TxId([8; 32]), 0);
    fx.add_coin(principal, TxOut::coins_to(Amount::from_coins(10), lender.public_key().key_hash()));
    let collateral = OutPoint::new(TxId([9; 32]), 0);
    fx.add_coin(
        collateral,
        TxOut { asset: gold, amount: Amount::from_units(1_000), lock: Lock::Key(borrower.public_key().key_hash()) },
    );

    // The lender signs its principal over the collateral it wants locked, before any borrower.
    let anyone = SecretKey::from_seed([9; 32]);
    let mut offer = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: principal, witness: unsigned() }],
        outputs: vec![TxOut { asset: gold, amount: Amount::from_units(1_000), lock: loan_lock(&anyone, &lender) }],
        lock_time: 0,
    };
    let mode = SigHashMode::SingleInputOutputUntil(HEIGHT + 10);
    offer.inputs[0].witness =
        Witness::Key { public_key: lender.public_key(), signature: signature(&fx, &offer, 0, &lender, mode) };
    let take = |fx: &Fixture, lock: Lock| {
        let mut tx = offer.clone();
        tx.outputs[0].lock = lock;
        tx.inputs.push(TxIn { prev_out: collateral, witness: unsigned() });
        tx.outputs.push(TxOut::coins_to(Amount::from_units(999_990_000), borrower.public_key().key_hash()));
        tx.inputs[1].witness = Witness::Key {
            public_key: borrower.public_key(),
            signature: signature(fx, &tx, 1, &borrower, SigHashMode::All),
        };
        tx
    };
    // The borrower names itself: valid, atomically locking the collateral and paying it.
    fx.connect(&fx.block(vec![take(&fx, loan_lock(&borrower, &lender))], Amount::from_units(10_000))).expect("taken");
    // Any other term changed breaks the lender's signature.
    let mut cheaper = loan_lock(&borrower, &lender);
    if let Lock::Loan { repay_amount, .. } = &mut cheaper {
        *repay_amount = Amount::from_coins(10);
    }
    assert_eq!(fx.tx_reason(take(&fx, cheaper)), TxReject::BadSignature { input: 0 });
}

#[test]
fn hash_lock_preimages_are_exactly_32_bytes() {
    let mut fx = Fixture::new();
    let short = vec![7u8; 31];
    let lock = Lock::HashTimeLock {
        hash: LockHash(Sha256::digest(&short).into()),
        claim: fx.bob.public_key().key_hash(),
        refund: fx.alice.public_key().key_hash(),
        refund_height: HEIGHT + 100,
    };
    let htlc = OutPoint::new(TxId([3; 32]), 0);
    fx.add_coin(htlc, TxOut { asset: AssetId::Coin, amount: Amount::from_coins(5), lock });
    let mut tx = spend_of(htlc, &fx.bob);
    let sig = signature(&fx, &tx, 0, &fx.bob, SigHashMode::All);
    tx.inputs[0].witness = Witness::HashLockClaim { preimage: short, public_key: fx.bob.public_key(), signature: sig };
    assert_eq!(fx.tx_reason(tx), TxReject::BadPreimage { input: 0 });
}
