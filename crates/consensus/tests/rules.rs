//! Every rule, broken once: each invalid block or transaction is rejected with its reason.

use peerchain_consensus::{
    BlockReject, HeaderContext, Params, TxReject, ValidationError, check_header, coinbase_transaction, connect_block,
};
use peerchain_primitives::{
    Amount, AssetId, Block, BlockHeader, Decode, Encode, Lock, LockHash, Network, OutPoint, SecretKey, SigHashMode,
    TokenId, Transaction, TxIn, TxOut, TxSignature, Witness,
};
use sha2::{Digest, Sha256};

mod support;

use support::{Fixture, HEIGHT};

#[test]
fn a_valid_payment_connects_and_reports_its_effects() {
    let fx = Fixture::new();
    let fee = Amount::from_units(1_000);
    let tx = fx.payment(Amount::from_coins(10), fee);
    let txid = tx.txid();
    let reward = fx.params.subsidy(HEIGHT).checked_add(fee).unwrap();
    let block = fx.block(vec![tx], reward);
    let effects = fx.connect(&block).expect("valid block");
    assert_eq!(effects.fees, fee);
    assert_eq!(effects.spent.len(), 1);
    assert_eq!(effects.spent[0].0, fx.funding);
    assert_eq!(effects.created.len(), 3, "coinbase output plus two payment outputs");
    assert!(
        effects
            .created
            .iter()
            .any(|(op, c)| *op == OutPoint::new(txid, 0) && c.output.amount == Amount::from_coins(10))
    );
}

#[test]
fn coinbase_may_not_pay_more_than_subsidy_plus_fees() {
    let fx = Fixture::new();
    let fee = Amount::from_units(1_000);
    let too_much = fx.params.subsidy(HEIGHT).checked_add(fee).unwrap().checked_add(Amount::from_units(1)).unwrap();
    let block = fx.block(vec![fx.payment(Amount::from_coins(1), fee)], too_much);
    assert!(matches!(fx.connect(&block), Err(ValidationError::Reject(BlockReject::CoinbaseTooLarge { .. }))));
}

#[test]
fn coinbase_must_name_its_height_and_come_first_and_once() {
    let fx = Fixture::new();
    let mut block = fx.block(vec![], fx.params.subsidy(HEIGHT));
    block.transactions[0] = coinbase_transaction(HEIGHT + 1, Amount::ZERO, fx.bob.public_key().key_hash(), vec![]);
    block.header.merkle_root = block.compute_merkle_root();
    assert!(matches!(
        fx.connect(&block),
        Err(ValidationError::Reject(BlockReject::BadCoinbaseHeight { got: 101, expected: 100, .. }))
    ));

    let mut block = fx.block(vec![fx.payment(Amount::from_coins(1), Amount::ZERO)], Amount::ZERO);
    block.transactions.swap(0, 1);
    block.header.merkle_root = block.compute_merkle_root();
    assert!(matches!(fx.connect(&block), Err(ValidationError::Reject(BlockReject::BadCoinbasePosition { .. }))));

    let mut block = fx.block(vec![], Amount::ZERO);
    block.transactions.push(coinbase_transaction(HEIGHT, Amount::ZERO, fx.alice.public_key().key_hash(), vec![1]));
    block.header.merkle_root = block.compute_merkle_root();
    assert!(matches!(fx.connect(&block), Err(ValidationError::Reject(BlockReject::BadCoinbasePosition { .. }))));
}

#[test]
fn merkle_root_and_duplicates_and_size_are_checked() {
    let fx = Fixture::new();
    let mut block = fx.block(vec![fx.payment(Amount::from_coins(1), Amount::ZERO)], Amount::ZERO);
    block.header.merkle_root = Default::default();
    assert!(matches!(fx.connect(&block), Err(ValidationError::Reject(BlockReject::BadMerkleRoot { .. }))));

    let tx = fx.payment(Amount::from_coins(1), Amount::ZERO);
    let block = fx.block(vec![tx.clone(), tx], Amount::ZERO);
    assert!(matches!(fx.connect(&block), Err(ValidationError::Reject(BlockReject::DuplicateTransaction { .. }))));

    let mut params = fx.params.clone();
    params.max_block_size = 200;
    let block = fx.block(vec![fx.payment(Amount::from_coins(1), Amount::ZERO)], Amount::ZERO);
    assert!(matches!(
        connect_block(&block, HEIGHT, &fx.view, &params),
        Err(ValidationError::Reject(BlockReject::TooLarge { .. }))
    ));
}

#[test]
fn double_spends_within_a_block_are_rejected() {
    let fx = Fixture::new();
    let first = fx.payment(Amount::from_coins(1), Amount::ZERO);
    let second = fx.payment(Amount::from_coins(2), Amount::ZERO);
    let block = fx.block(vec![first, second], Amount::ZERO);
    let reason = match fx.connect(&block) {
        Err(ValidationError::Reject(BlockReject::Transaction { reason, .. })) => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(reason, TxReject::MissingInput(fx.funding));
}

#[test]
fn outputs_created_earlier_in_the_block_can_be_spent() {
    let fx = Fixture::new();
    let parent = fx.payment(Amount::from_coins(10), Amount::ZERO);
    let parent_out = OutPoint::new(parent.txid(), 0);
    let mut child = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: parent_out, witness: Witness::Multisig { signatures: vec![] } }],
        outputs: vec![TxOut::coins_to(Amount::from_coins(10), fx.alice.public_key().key_hash())],
        lock_time: 0,
    };
    let spent = parent.outputs[0].clone();
    let message = child.signature_hash(0, &spent, SigHashMode::All, fx.params.network.magic());
    child.inputs[0].witness = Witness::Key {
        public_key: fx.bob.public_key(),
        signature: TxSignature { mode: SigHashMode::All, signature: fx.bob.sign(&message) },
    };
    let block = fx.block(vec![parent, child.clone()], Amount::ZERO);
    let effects = fx.connect(&block).expect("child spends parent in the same block");
    assert!(!effects.created.iter().any(|(op, _)| *op == parent_out), "spent in block, never created in the set");
    // In the wrong order the child's input does not exist yet.
    let block = fx.block(vec![child, fx.payment(Amount::from_coins(10), Amount::ZERO)], Amount::ZERO);
    assert!(matches!(
        fx.connect(&block),
        Err(ValidationError::Reject(BlockReject::Transaction { reason: TxReject::MissingInput(_), .. }))
    ));
}

#[test]
fn immature_coinbase_outputs_cannot_be_spent() {
    let mut fx = Fixture::new();
    fx.view.0.get_mut(&fx.funding).unwrap().height = HEIGHT - 1;
    let reason = fx.tx_reason(fx.payment(Amount::from_coins(1), Amount::ZERO));
    assert!(
        matches!(reason, TxReject::ImmatureCoinbase { mature_at, .. } if mature_at == HEIGHT - 1 + fx.params.coinbase_maturity)
    );
}

#[test]
fn spending_more_than_the_inputs_is_rejected() {
    let fx = Fixture::new();
    let mut tx = fx.payment(Amount::from_coins(10), Amount::ZERO);
    tx.outputs[0].amount = Amount::from_coins(11);
    fx.sign_key(&mut tx, 0, &fx.alice, SigHashMode::All);
    assert_eq!(fx.tx_reason(tx), TxReject::Overspend { asset: AssetId::Coin });
}

#[test]
fn signatures_must_verify_and_keys_must_match() {
    let fx = Fixture::new();
    // Bob signs Alice's coin: his key does not hash to her lock.
    let mut tx = fx.payment(Amount::from_coins(1), Amount::ZERO);
    fx.sign_key(&mut tx, 0, &fx.bob, SigHashMode::All);
    assert_eq!(fx.tx_reason(tx), TxReject::WitnessMismatch { input: 0 });

    // A valid signature, then the transaction is changed: the signature no longer verifies.
    let mut tx = fx.payment(Amount::from_coins(1), Amount::ZERO);
    tx.outputs[0].amount = Amount::from_units(1);
    assert_eq!(fx.tx_reason(tx), TxReject::BadSignature { input: 0 });

    // A signature for another network is worthless here.
    let mut tx = fx.payment(Amount::from_coins(1), Amount::ZERO);
    let spent = fx.spent_output(&fx.funding);
    let message = tx.signature_hash(0, &spent, SigHashMode::All, Network::Mainnet.magic());
    tx.inputs[0].witness = Witness::Key {
        public_key: fx.alice.public_key(),
        signature: TxSignature { mode: SigHashMode::All, signature: fx.alice.sign(&message) },
    };
    assert_eq!(fx.tx_reason(tx), TxReject::BadSignature { input: 0 });
}

#[test]
fn single_input_output_signatures_let_a_counterparty_add_to_the_transaction() {
    let mut fx = Fixture::new();
    let bob_coin = OutPoint::new(peerchain_primitives::TxId([8; 32]), 3);
    fx.add_coin(bob_coin, TxOut::coins_to(Amount::from_coins(5), fx.bob.public_key().key_hash()));
    // Alice offers her 50 coins for 5 coins paid to her: she signs only her input and output 0.
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: fx.funding, witness: Witness::Multisig { signatures: vec![] } }],
        outputs: vec![TxOut::coins_to(Amount::from_coins(5), fx.alice.public_key().key_hash())],
        lock_time: 0,
    };
    fx.sign_key(&mut tx, 0, &fx.alice, SigHashMode::SingleInputOutput);
    // Bob adds his input and takes the 50 coins, then signs everything.
    tx.inputs.push(TxIn { prev_out: bob_coin, witness: Witness::Multisig { signatures: vec![] } });
    tx.outputs.push(TxOut::coins_to(Amount::from_coins(50), fx.bob.public_key().key_hash()));
    fx.sign_key(&mut tx, 1, &fx.bob, SigHashMode::All);
    let block = fx.block(vec![tx.clone()], Amount::ZERO);
    fx.connect(&block).expect("Alice's single signature survives Bob's additions");

    // But changing what Alice was promised breaks her signature.
    tx.outputs[0].amount = Amount::from_coins(4);
    fx.sign_key(&mut tx, 1, &fx.bob, SigHashMode::All);
    assert_eq!(fx.tx_reason(tx), TxReject::BadSignature { input: 0 });
}

fn multisig_fixture() -> (Fixture, OutPoint, Vec<SecretKey>) {
    let mut fx = Fixture::new();
    let keys: Vec<SecretKey> = (10..13).map(|s| SecretKey::from_seed([s; 32])).collect();
    let outpoint = OutPoint::new(peerchain_primitives::TxId([7; 32]), 0);
    let lock = Lock::Multisig { threshold: 2, keys: keys.iter().map(SecretKey::public_key).collect() };
    fx.add_coin(outpoint, TxOut { asset: AssetId::Coin, amount: Amount::from_coins(3), lock });
    (fx, outpoint, keys)
}

fn multisig_spend(fx: &Fixture, outpoint: OutPoint, signers: &[(u8, &SecretKey)]) -> Transaction {
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: outpoint, witness: Witness::Multisig { signatures: vec![] } }],
        outputs: vec![TxOut::coins_to(Amount::from_coins(3), fx.bob.public_key().key_hash())],
        lock_time: 0,
    };
    let spent = fx.spent_output(&outpoint);
    let message = tx.signature_hash(0, &spent, SigHashMode::All, fx.params.network.magic());
    let signatures = signers
        .iter()
        .map(|(index, key)| (*index, TxSignature { mode: SigHashMode::All, signature: key.sign(&message) }))
        .collect();
    tx.inputs[0].witness = Witness::Multisig { signatures };
    tx
}

#[test]
fn multisig_needs_exactly_threshold_distinct_signers_in_order() {
    let (fx, outpoint, keys) = multisig_fixture();
    let good = multisig_spend(&fx, outpoint, &[(0, &keys[0]), (2, &keys[2])]);
    fx.connect(&fx.block(vec![good], Amount::ZERO)).expect("2 of 3");

    let too_few = multisig_spend(&fx, outpoint, &[(1, &keys[1])]);
    assert_eq!(fx.tx_reason(too_few), TxReject::WitnessMismatch { input: 0 });
    let same_key_twice = multisig_spend(&fx, outpoint, &[(1, &keys[1]), (1, &keys[1])]);
    assert_eq!(fx.tx_reason(same_key_twice), TxReject::WitnessMismatch { input: 0 });
    let wrong_signer = multisig_spend(&fx, outpoint, &[(0, &keys[0]), (1, &keys[2])]);
    assert_eq!(fx.tx_reason(wrong_signer), TxReject::BadSignature { input: 0 });
    let out_of_range = multisig_spend(&fx, outpoint, &[(0, &keys[0]), (3, &keys[2])]);
    assert_eq!(fx.tx_reason(out_of_range), TxReject::WitnessMismatch { input: 0 });
}

#[test]
fn malformed_multisig_locks_cannot_be_created() {
    let fx = Fixture::new();
    let mut tx = fx.payment(Amount::from_coins(1), Amount::ZERO);
    tx.outputs[0].lock = Lock::Multisig { threshold: 3, keys: vec![fx.alice.public_key(), fx.bob.public_key()] };
    fx.sign_key(&mut tx, 0, &fx.alice, SigHashMode::All);
    assert_eq!(fx.tx_reason(tx), TxReject::BadMultisigLock);
}

fn htlc_fixture(refund_height: u32) -> (Fixture, OutPoint, Vec<u8>) {
    let mut fx = Fixture::new();
    // 32 bytes, as every hash-lock preimage must be.
    let secret = b"the swap secret, 32 bytes long!!".to_vec();
    assert_eq!(secret.len(), 32);
    let outpoint = OutPoint::new(peerchain_primitives::TxId([6; 32]), 1);
    let lock = Lock::HashTimeLock {
        hash: LockHash(Sha256::digest(&secret).into()),
        claim: fx.bob.public_key().key_hash(),
        refund: fx.alice.public_key().key_hash(),
        refund_height,
    };
    fx.add_coin(outpoint, TxOut { asset: AssetId::Coin, amount: Amount::from_coins(2), lock });
    (fx, outpoint, secret)
}

fn htlc_spend(fx: &Fixture, outpoint: OutPoint, key: &SecretKey, preimage: Option<Vec<u8>>) -> Transaction {
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: outpoint, witness: Witness::Multisig { signatures: vec![] } }],
        outputs: vec![TxOut::coins_to(Amount::from_coins(2), key.public_key().key_hash())],
        lock_time: 0,
    };
    let spent = fx.spent_output(&outpoint);
    let message = tx.signature_hash(0, &spent, SigHashMode::All, fx.params.network.magic());
    let signature = TxSignature { mode: SigHashMode::All, signature: key.sign(&message) };
    tx.inputs[0].witness = match preimage {
        Some(preimage) => Witness::HashLockClaim { preimage, public_key: key.public_key(), signature },
        None => Witness::TimeLockRefund { public_key: key.public_key(), signature },
    };
    tx
}

#[test]
fn hash_time_lock_claim_needs_the_preimage_and_the_claim_key() {
    let (fx, outpoint, secret) = htlc_fixture(HEIGHT + 10);
    fx.connect(&fx.block(vec![htlc_spend(&fx, outpoint, &fx.bob, Some(secret.clone()))], Amount::ZERO)).expect("claim");
    assert_eq!(
        fx.tx_reason(htlc_spend(&fx, outpoint, &fx.bob, Some(b"wrong".to_vec()))),
        TxReject::BadPreimage { input: 0 }
    );
    assert_eq!(
        fx.tx_reason(htlc_spend(&fx, outpoint, &fx.alice, Some(secret))),
        TxReject::WitnessMismatch { input: 0 }
    );
}

#[test]
fn hash_time_lock_refund_opens_at_its_height_for_the_refund_key() {
    let (fx, outpoint, _) = htlc_fixture(HEIGHT + 1);
    assert_eq!(
        fx.tx_reason(htlc_spend(&fx, outpoint, &fx.alice, None)),
        TxReject::RefundTooEarly { input: 0, refund_height: HEIGHT + 1 }
    );
    let (fx, outpoint, _) = htlc_fixture(HEIGHT);
    fx.connect(&fx.block(vec![htlc_spend(&fx, outpoint, &fx.alice, None)], Amount::ZERO)).expect("refund at height");
    assert_eq!(fx.tx_reason(htlc_spend(&fx, outpoint, &fx.bob, None)), TxReject::WitnessMismatch { input: 0 });
}

#[test]
fn lock_time_keeps_a_transaction_out_of_earlier_blocks() {
    let fx = Fixture::new();
    let mut tx = fx.payment(Amount::from_coins(1), Amount::ZERO);
    tx.lock_time = HEIGHT + 1;
    fx.sign_key(&mut tx, 0, &fx.alice, SigHashMode::All);
    assert_eq!(fx.tx_reason(tx.clone()), TxReject::NotFinal { lock_time: HEIGHT + 1 });
    tx.lock_time = HEIGHT;
    fx.sign_key(&mut tx, 0, &fx.alice, SigHashMode::All);
    fx.connect(&fx.block(vec![tx], Amount::ZERO)).expect("final at its lock height");
}

#[test]
fn structural_transaction_rules() {
    let fx = Fixture::new();
    let mut no_outputs = fx.payment(Amount::from_coins(1), Amount::ZERO);
    no_outputs.outputs.clear();
    assert_eq!(fx.tx_reason(no_outputs), TxReject::NoOutputs);

    let mut no_inputs = fx.payment(Amount::from_coins(1), Amount::ZERO);
    no_inputs.inputs.clear();
    assert_eq!(fx.tx_reason(no_inputs), TxReject::NoInputs);

    let mut twice = fx.payment(Amount::from_coins(1), Amount::ZERO);
    twice.inputs.push(twice.inputs[0].clone());
    assert_eq!(fx.tx_reason(twice), TxReject::DuplicateInput(fx.funding));

    let mut too_much = fx.payment(Amount::from_coins(1), Amount::ZERO);
    too_much.outputs[0].amount = Amount::from_units(Amount::MAX_MONEY.units() + 1);
    assert_eq!(fx.tx_reason(too_much), TxReject::OutputOutOfRange);

    let mut sum_overflow = fx.payment(Amount::from_coins(1), Amount::ZERO);
    sum_overflow.outputs[0].amount = Amount::MAX_MONEY;
    sum_overflow.outputs[1].amount = Amount::MAX_MONEY;
    assert_eq!(fx.tx_reason(sum_overflow), TxReject::OutputOutOfRange);

    let mut fake_coinbase_input = fx.payment(Amount::from_coins(1), Amount::ZERO);
    fake_coinbase_input
        .inputs
        .push(TxIn { prev_out: OutPoint::NULL, witness: Witness::Coinbase { height: 1, extra: vec![] } });
    assert_eq!(fx.tx_reason(fake_coinbase_input), TxReject::BadCoinbase);
}

#[test]
fn headers_must_meet_target_difficulty_and_time_rules() {
    let params = Params::for_network(Network::Devnet);
    let mut header = params.genesis_block().header;
    header.prev_hash = params.genesis_hash();
    header.time = params.genesis_time + 10;
    let context =
        HeaderContext { expected_bits: params.pow_limit, median_time_past: params.genesis_time, now: header.time };
    let target = params.pow_limit.expand().unwrap();
    let mine = |mut h: BlockHeader| {
        while !target.is_met_by(&h.hash()) {
            h.nonce += 1;
        }
        h
    };
    let good = mine(header);
    assert_eq!(check_header(&good, &context, &params), Ok(()));

    let mut unmined = good;
    while target.is_met_by(&unmined.hash()) {
        unmined.nonce += 1;
    }
    assert!(matches!(check_header(&unmined, &context, &params), Err(BlockReject::BadProofOfWork { .. })));

    let mut easier = good;
    easier.bits = peerchain_primitives::CompactTarget(0x207fffff);
    assert!(matches!(check_header(&mine(easier), &context, &params), Err(BlockReject::BadDifficulty { .. })));

    let mut old = good;
    old.time = params.genesis_time;
    assert!(matches!(check_header(&mine(old), &context, &params), Err(BlockReject::TimeTooOld { .. })));

    let mut future = good;
    future.time = context.now + params.max_future_block_time + 1;
    assert!(matches!(check_header(&mine(future), &context, &params), Err(BlockReject::TimeTooNew { .. })));

    let mut version = good;
    version.version = 2;
    assert!(matches!(check_header(&mine(version), &context, &params), Err(BlockReject::BadVersion { .. })));
}

/// Review H1: with leaves hashed like inner nodes, a decodable 65-byte transaction F whose
/// encoding is `0x01 ‖ wtxid(A) ‖ wtxid(B)` gave the list `[c, t, F]` the root of
/// `[c, t, A, B]`, so a peer could turn an honest block into one that fails a rule. Leaves are
/// now in a domain of their own: the mutated body is only a body that does not match.
#[test]
fn a_65_byte_transaction_cannot_stand_in_for_two_leaves() {
    let fx = Fixture::new();
    // The four bytes the decoder pins (one input; a coinbase witness with 13 extra bytes; no
    // outputs), found in honest transactions by grinding, are simply set here.
    let mut left = [0x11u8; 32];
    left[3] = 0x01;
    let mut right = [0x22u8; 32];
    right[8] = 0x00;
    right[13] = 13;
    right[27] = 0x00;
    let forged = Transaction::from_bytes(&[&[1u8][..], &left, &right].concat()).expect("decodes");
    assert_eq!(forged.to_bytes().len(), 65);

    let honest = fx.block(vec![fx.payment(Amount::from_coins(1), Amount::ZERO)], Amount::ZERO);
    let leaves = |block: &Block| block.transactions.iter().map(Transaction::wtxid).collect::<Vec<_>>();
    let mut honest_leaves = leaves(&honest);
    honest_leaves.extend([peerchain_primitives::WtxId(left), peerchain_primitives::WtxId(right)]);
    let mut mutated = honest.clone();
    mutated.transactions.push(forged);
    assert_ne!(
        peerchain_primitives::merkle_root(&honest_leaves),
        peerchain_primitives::merkle_root(&leaves(&mutated)),
        "a transaction's leaf never equals an inner node"
    );
    mutated.header.merkle_root = peerchain_primitives::merkle_root(&honest_leaves);
    assert!(
        matches!(fx.connect(&mutated), Err(ValidationError::Reject(BlockReject::BadMerkleRoot { .. }))),
        "the mutated body is reported as not matching, never as breaking a rule"
    );
}

/// Review C1, at the rule level: until the merkle root matches, no other failure of the
/// body is reported (it would condemn the header's block).
#[test]
fn a_body_is_checked_against_its_merkle_root_before_anything_else() {
    let fx = Fixture::new();
    let honest = fx.block(vec![fx.payment(Amount::from_coins(1), Amount::ZERO)], Amount::ZERO);
    let mut empty = honest.clone();
    empty.transactions.clear();
    let mut swapped = honest.clone();
    swapped.transactions.swap(0, 1);
    let mut padded = honest.clone();
    let mut junk = fx.payment(Amount::from_coins(1), Amount::ZERO);
    junk.outputs = vec![junk.outputs[0].clone(); 100_000];
    padded.transactions.push(junk);
    for mutated in [empty, swapped, padded] {
        assert!(
            matches!(peerchain_consensus::check_block(&mutated, &fx.params), Err(BlockReject::BadMerkleRoot { .. })),
            "{:?}",
            peerchain_consensus::check_block(&mutated, &fx.params)
        );
    }
}

/// Launch rule (review L1): a signature over one input and its paired output needs that
/// output. Without it, it once signed no output at all (a blank cheque anyone could fill).
#[test]
fn a_single_input_output_signature_without_its_output_is_refused() {
    let mut fx = Fixture::new();
    let bob_coin = OutPoint::new(peerchain_primitives::TxId([8; 32]), 3);
    fx.add_coin(bob_coin, TxOut::coins_to(Amount::from_coins(5), fx.bob.public_key().key_hash()));
    // Alice's input is second, and there is only one output.
    let mut tx = Transaction {
        version: 1,
        inputs: vec![
            TxIn { prev_out: bob_coin, witness: Witness::Multisig { signatures: vec![] } },
            TxIn { prev_out: fx.funding, witness: Witness::Multisig { signatures: vec![] } },
        ],
        outputs: vec![TxOut::coins_to(Amount::from_coins(55), fx.bob.public_key().key_hash())],
        lock_time: 0,
    };
    fx.sign_key(&mut tx, 1, &fx.alice, SigHashMode::SingleInputOutput);
    fx.sign_key(&mut tx, 0, &fx.bob, SigHashMode::All);
    assert_eq!(fx.tx_reason(tx), TxReject::WitnessMismatch { input: 1 });
}

/// Launch rule (review L1): whoever completes a transaction a maker signed for one input and
/// output cannot use the maker's coin to issue a token named after it.
#[test]
fn issuance_needs_every_signature_on_the_first_input_to_commit_to_everything() {
    let mut fx = Fixture::new();
    let bob_coin = OutPoint::new(peerchain_primitives::TxId([8; 32]), 3);
    fx.add_coin(bob_coin, TxOut::coins_to(Amount::from_coins(5), fx.bob.public_key().key_hash()));
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: fx.funding, witness: Witness::Multisig { signatures: vec![] } }],
        outputs: vec![TxOut::coins_to(Amount::from_coins(5), fx.alice.public_key().key_hash())],
        lock_time: 0,
    };
    fx.sign_key(&mut tx, 0, &fx.alice, SigHashMode::SingleInputOutput);
    tx.inputs.push(TxIn { prev_out: bob_coin, witness: Witness::Multisig { signatures: vec![] } });
    tx.outputs.push(TxOut::coins_to(Amount::from_coins(50), fx.bob.public_key().key_hash()));
    // Bob mints the token named after Alice's coin for himself.
    tx.outputs.push(TxOut {
        asset: AssetId::Token(TokenId::issued_by(&fx.funding)),
        amount: Amount::MAX_MONEY,
        lock: Lock::Key(fx.bob.public_key().key_hash()),
    });
    fx.sign_key(&mut tx, 1, &fx.bob, SigHashMode::All);
    assert_eq!(fx.tx_reason(tx), TxReject::IssuanceNotAuthorised);
}
