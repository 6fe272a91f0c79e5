//! The chain actor end to end on regtest: mining, restarts, reorganisations, invalid blocks,
//! mempool policy and verification.

use peerchain_chain::{BlockOutcome, Config, MempoolLimits, MempoolReject, SubmitBlockError, SubmitTxError, solve};
use peerchain_consensus::{BlockReject, Params, TxReject};
use peerchain_primitives::{Amount, Block, Encode, Network, OutPoint, SecretKey, Transaction, TxIn, TxOut, Witness};
use peerchain_store::Store;

mod support;

use support::{Node, coinbase_out, spend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mined_blocks_survive_a_restart_and_verify() {
    let miner = SecretKey::from_seed([1; 32]);
    let node = Node::new();
    let blocks = node.mine(15, &miner).await;
    let tip = node.handle.tip();
    assert_eq!(tip.height, 15);
    assert_eq!(tip.hash, blocks.last().unwrap().hash());

    let (dir, path) = node.stop().await;
    let node = Node::start_at(path, Config::default());
    assert_eq!(node.handle.tip(), tip, "restart resumes at the same tip");
    let report = node.handle.verify().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.height, 15);
    assert_eq!(report.transactions, 15);
    assert_eq!(report.utxos, 15);
    node.stop().await;
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_goes_through_the_mempool_into_a_block() {
    let alice = SecretKey::from_seed([1; 32]);
    let bob = SecretKey::from_seed([2; 32]);
    let node = Node::new();
    let blocks = node.mine(11, &alice).await;
    let (outpoint, value) = coinbase_out(&blocks[0]);
    let fee = Amount::from_units(10_000);
    let tx = spend(outpoint, value, &alice, &[(Amount::from_coins(7), &bob)], fee);
    let txid = node.handle.submit_transaction(tx.clone()).await.unwrap();
    let pending = node.handle.transaction(&txid).await.unwrap().unwrap();
    assert_eq!((pending.confirmations, pending.block_hash), (0, None));

    let template = node.template(&alice).await;
    assert_eq!(template.transactions.len(), 2);
    let reward = template.transactions[0].outputs[0].amount;
    assert_eq!(
        reward,
        Params::for_network(Network::Regtest).subsidy(12).checked_add(fee).unwrap(),
        "fees go to the miner"
    );
    let block = solve(template, 1);
    node.handle.submit_block(block.clone()).await.unwrap();
    assert_eq!(node.handle.mempool_info().await.unwrap().size, 0, "confirmed transactions leave the mempool");
    let confirmed = node.handle.transaction(&txid).await.unwrap().unwrap();
    assert_eq!((confirmed.confirmations, confirmed.block_hash), (1, Some(block.hash())));

    // Spending the same coin again is refused with its reason.
    let again = spend(outpoint, value, &alice, &[(Amount::from_coins(1), &bob)], fee);
    let err = node.handle.submit_transaction(again).await.unwrap_err();
    assert!(matches!(err, SubmitTxError::Rejected(MempoolReject::MissingInputs(op)) if op == outpoint), "{err}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mempool_policy_replacement_fees_and_immaturity() {
    let alice = SecretKey::from_seed([1; 32]);
    let bob = SecretKey::from_seed([2; 32]);
    let node = Node::new();
    let blocks = node.mine(12, &alice).await;
    let (outpoint, value) = coinbase_out(&blocks[0]);

    // Below the minimum relay fee rate.
    let cheap = spend(outpoint, value, &alice, &[(Amount::from_coins(1), &bob)], Amount::from_units(10));
    let err = node.handle.submit_transaction(cheap).await.unwrap_err();
    assert!(matches!(err, SubmitTxError::Rejected(MempoolReject::FeeTooLow { .. })), "{err}");

    let first = spend(outpoint, value, &alice, &[(Amount::from_coins(1), &bob)], Amount::from_units(1_000));
    node.handle.submit_transaction(first.clone()).await.unwrap();
    let err = node.handle.submit_transaction(first.clone()).await.unwrap_err();
    assert!(matches!(err, SubmitTxError::Rejected(MempoolReject::AlreadyInMempool(_))), "{err}");

    // A conflicting spend that pays no more is refused; one that pays more replaces it.
    let same_fee = spend(outpoint, value, &alice, &[(Amount::from_coins(2), &bob)], Amount::from_units(1_000));
    let err = node.handle.submit_transaction(same_fee).await.unwrap_err();
    assert!(matches!(err, SubmitTxError::Rejected(MempoolReject::ReplacementTooCheap { .. })), "{err}");
    let better = spend(outpoint, value, &alice, &[(Amount::from_coins(2), &bob)], Amount::from_units(5_000));
    let better_id = node.handle.submit_transaction(better).await.unwrap();
    assert_eq!(node.handle.mempool_txids().await.unwrap(), vec![better_id]);

    // A child of the waiting transaction is accepted and mined after its parent.
    let change = OutPoint::new(better_id, 1);
    let change_value =
        value.checked_sub(Amount::from_coins(2)).unwrap().checked_sub(Amount::from_units(5_000)).unwrap();
    let child = spend(change, change_value, &alice, &[(Amount::from_coins(3), &bob)], Amount::from_units(50_000));
    node.handle.submit_transaction(child.clone()).await.unwrap();
    let template = node.template(&alice).await;
    let order: Vec<_> = template.transactions[1..].iter().map(Transaction::txid).collect();
    assert_eq!(order, vec![better_id, child.txid()], "parent before child even though the child pays more");

    // A coinbase that has not matured cannot be spent.
    let (young, young_value) = coinbase_out(blocks.last().unwrap());
    let err = node
        .handle
        .submit_transaction(spend(
            young,
            young_value,
            &alice,
            &[(Amount::from_coins(1), &bob)],
            Amount::from_units(1_000),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, SubmitTxError::Rejected(MempoolReject::Invalid(TxReject::ImmatureCoinbase { .. }))), "{err}");

    // A bad signature is refused with the input named.
    let mut forged = spend(
        OutPoint::new(blocks[1].transactions[0].txid(), 0),
        value,
        &alice,
        &[(Amount::from_coins(1), &bob)],
        Amount::from_units(1_000),
    );
    forged.outputs[0].amount = Amount::from_units(50_000_000);
    let err = node.handle.submit_transaction(forged).await.unwrap_err();
    assert!(
        matches!(err, SubmitTxError::Rejected(MempoolReject::Invalid(TxReject::BadSignature { input: 0 }))),
        "{err}"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mempool_evicts_the_lowest_fee_rate() {
    let alice = SecretKey::from_seed([1; 32]);
    let bob = SecretKey::from_seed([2; 32]);
    let limits = MempoolLimits { max_bytes: 600, ..MempoolLimits::default() };
    let node = Node::with_config(Config { mempool: limits, ..Config::default() });
    let blocks = node.mine(14, &alice).await;
    let mut ids = Vec::new();
    for (i, fee) in [1_000u64, 3_000, 2_000].into_iter().enumerate() {
        let (outpoint, value) = coinbase_out(&blocks[i]);
        let tx = spend(outpoint, value, &alice, &[(Amount::from_coins(1), &bob)], Amount::from_units(fee));
        ids.push(node.handle.submit_transaction(tx).await.unwrap());
    }
    let waiting = node.handle.mempool_txids().await.unwrap();
    assert!(!waiting.contains(&ids[0]), "the cheapest was evicted");
    assert!(waiting.contains(&ids[1]) && waiting.contains(&ids[2]));
    let (outpoint, value) = coinbase_out(&blocks[3]);
    let err = node
        .handle
        .submit_transaction(spend(outpoint, value, &alice, &[(Amount::from_coins(1), &bob)], Amount::from_units(500)))
        .await
        .unwrap_err();
    assert!(matches!(err, SubmitTxError::Rejected(MempoolReject::Full)), "{err}");
    node.stop().await;
}

/// Two nodes sharing 12 blocks; on the first, a payment from `alice` to `bob` mined in a
/// 1-block branch the second does not know.
struct Fork {
    node: Node,
    other: Node,
    payment: Transaction,
    short: Vec<Block>,
}

async fn fork_with_payment(alice: &SecretKey, bob: &SecretKey) -> Fork {
    let node = Node::new();
    let other = Node::new();
    let shared = node.mine(12, alice).await;
    for block in &shared {
        other.handle.submit_block(block.clone()).await.unwrap();
    }
    let (outpoint, value) = coinbase_out(&shared[0]);
    let payment = spend(outpoint, value, alice, &[(Amount::from_coins(5), bob)], Amount::from_units(2_000));
    node.handle.submit_transaction(payment.clone()).await.unwrap();
    let short = node.mine(1, alice).await;
    Fork { node, other, payment, short }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heaviest_branch_wins_and_abandoned_transactions_return() {
    let (alice, bob) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
    let Fork { node, other, payment, short } = fork_with_payment(&alice, &bob).await;
    assert_eq!(node.handle.transaction(&payment.txid()).await.unwrap().unwrap().confirmations, 1);

    // The other node mines a heavier 3-block branch without it.
    let long = other.mine(3, &bob).await;
    let mut outcomes = Vec::new();
    for block in &long {
        outcomes.push(node.handle.submit_block(block.clone()).await.unwrap());
    }
    assert_eq!(outcomes[0], BlockOutcome::SideBranch, "equal work does not reorganise");
    assert!(matches!(outcomes[1], BlockOutcome::NewTip { disconnected: 1, .. }), "{:?}", outcomes[1]);
    assert_eq!(node.handle.tip().hash, long[2].hash());
    let lookup = node.handle.transaction(&payment.txid()).await.unwrap().unwrap();
    assert_eq!(lookup.confirmations, 0, "the payment of the abandoned branch is back in the mempool");
    assert!(short[0].hash() != node.handle.tip().hash);
    let report = node.handle.verify().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);

    // Mining on the new tip confirms it again.
    node.mine(1, &alice).await;
    assert_eq!(node.handle.transaction(&payment.txid()).await.unwrap().unwrap().confirmations, 1);
    node.stop().await;
    other.stop().await;
}

/// The UTXO changes of recent blocks live in the coin cache until a write-back; the store on
/// disk (copied while the node runs, as a crash would leave it) holds them as blocks with
/// undo data, and a node started on it connects them again, here through a reorganisation
/// that abandoned the block the stored UTXO set is at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_image_replays_the_blocks_after_the_last_write_back() {
    let (alice, bob) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
    let Fork { node, other, payment, short } = fork_with_payment(&alice, &bob).await;
    // Verification writes the coin cache back: the stored UTXO set is now at `short`.
    assert!(node.handle.verify().await.unwrap().is_ok());

    // A heavier branch abandons `short`; the payment returns and is mined again on top.
    for block in other.mine(3, &bob).await {
        node.handle.submit_block(block).await.unwrap();
    }
    node.mine(2, &alice).await;
    let tip = node.handle.tip();
    let lookup = node.handle.transaction(&payment.txid()).await.unwrap().unwrap();
    assert_eq!(lookup.height, Some(16));

    let image = tempfile::tempdir().unwrap();
    let image_path = image.path().join("chain.redb");
    std::fs::copy(&node.path, &image_path).unwrap();
    let replayed = Node::start_at(image_path, Config::default());
    assert_eq!(replayed.handle.tip(), tip, "every block after the write-back is connected again");
    let again = replayed.handle.transaction(&payment.txid()).await.unwrap().unwrap();
    assert_eq!((again.block_hash, again.height), (lookup.block_hash, lookup.height));
    assert!(short[0].hash() != tip.hash);
    let report = replayed.handle.verify().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.height, 17);
    // And it goes on from there.
    replayed.mine(1, &alice).await;
    replayed.stop().await;
    node.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_block_and_its_descendants_are_never_accepted() {
    let alice = SecretKey::from_seed([1; 32]);
    let node = Node::new();
    let other = Node::new();
    let shared = node.mine(2, &alice).await;
    for block in &shared {
        other.handle.submit_block(block.clone()).await.unwrap();
    }
    // A block paying itself too much, properly mined: valid header, invalid content.
    let mut greedy = other.template(&alice).await;
    greedy.transactions[0].outputs[0].amount = Amount::from_coins(1_000);
    greedy.header.merkle_root = greedy.compute_merkle_root();
    let greedy = solve(greedy, 1);
    let err = node.handle.submit_block(greedy.clone()).await.unwrap_err();
    assert!(
        matches!(
            err,
            SubmitBlockError::KnownInvalid(_) | SubmitBlockError::Rejected(BlockReject::CoinbaseTooLarge { .. })
        ),
        "{err}"
    );
    assert_eq!(node.handle.tip().hash, shared[1].hash(), "the tip did not move");
    let err = node.handle.submit_block(greedy.clone()).await.unwrap_err();
    assert!(matches!(err, SubmitBlockError::KnownInvalid(h) if h == greedy.hash()), "never retried: {err}");

    // A block with a body that does not match its header is refused but does not taint the
    // header: the honest body is still accepted afterwards.
    let honest = solve(other.template(&alice).await, 1);
    let mut mutated = honest.clone();
    mutated.transactions[0].outputs[0].amount = Amount::from_coins(1);
    let err = node.handle.submit_block(mutated).await.unwrap_err();
    assert!(matches!(err, SubmitBlockError::Rejected(BlockReject::BadMerkleRoot { .. })), "{err}");
    assert!(matches!(node.handle.submit_block(honest).await.unwrap(), BlockOutcome::NewTip { height: 3, .. }));

    // Unknown parents are reported, not guessed at.
    let mut orphan = node.template(&alice).await;
    orphan.header.prev_hash = peerchain_primitives::BlockHash([7; 32]);
    let err = node.handle.submit_block(orphan).await.unwrap_err();
    assert!(matches!(err, SubmitBlockError::UnknownParent { .. }), "{err}");
    node.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_detects_a_tampered_utxo_set() {
    let alice = SecretKey::from_seed([1; 32]);
    let node = Node::new();
    node.mine(3, &alice).await;
    let (dir, path) = node.stop().await;
    {
        // Delete one unspent output behind the store's back.
        const UTXOS: redb::TableDefinition<&[u8; 36], &[u8]> = redb::TableDefinition::new("utxos_v1");
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(UTXOS).unwrap();
            let first = *redb::ReadableTable::first(&table).unwrap().unwrap().0.value();
            table.remove(&first).unwrap();
        }
        txn.commit().unwrap();
    }
    let node = Node::start_at(path, Config::default());
    let report = node.handle.verify().await.unwrap();
    assert!(!report.is_ok());
    assert!(
        report.problems.iter().any(|p| p.contains("UTXO set holds 2 outputs, the replay 3")),
        "{:?}",
        report.problems
    );
    node.stop().await;
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_arrives_before_its_parent_waits_as_an_orphan() {
    let alice = SecretKey::from_seed([1; 32]);
    let bob = SecretKey::from_seed([2; 32]);
    let node = Node::new();
    let blocks = node.mine(11, &alice).await;
    let (outpoint, value) = coinbase_out(&blocks[0]);
    let parent = spend(outpoint, value, &alice, &[(Amount::from_coins(5), &bob)], Amount::from_units(2_000));
    let child = spend(
        OutPoint::new(parent.txid(), 0),
        Amount::from_coins(5),
        &bob,
        &[(Amount::from_coins(1), &alice)],
        Amount::from_units(2_000),
    );

    let err = node.handle.submit_transaction(child.clone()).await.unwrap_err();
    assert!(matches!(err, SubmitTxError::Rejected(MempoolReject::MissingInputs(_))), "{err}");
    assert_eq!(node.handle.mempool_info().await.unwrap().size, 0);

    node.handle.submit_transaction(parent.clone()).await.unwrap();
    let mut waiting = node.handle.mempool_txids().await.unwrap();
    waiting.sort();
    let mut expected = vec![parent.txid(), child.txid()];
    expected.sort();
    assert_eq!(waiting, expected, "the orphan entered once its parent did");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fee_estimates_follow_the_mempool_and_recent_full_blocks() {
    use peerchain_primitives::Encode;
    // Blocks of 3,000 bytes, 2,000 of them for transactions: a dozen transfers fill one.
    let mut params = Params::for_network(Network::Regtest);
    params.max_block_size = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_with(dir.path().join("chain.redb"), Config::default(), params);
    let alice = SecretKey::from_seed([1; 32]);
    let bob = SecretKey::from_seed([2; 32]);
    let blocks = node.mine(30, &alice).await;
    let empty = node.handle.estimate_fee(1).await.unwrap();
    assert_eq!((empty.units_per_byte, empty.mempool_units_per_byte, empty.blocks_units_per_byte), (1, 0, 0));

    // Twenty transfers paying 1 to 20 units per byte.
    let mut offered = Vec::new();
    for (i, block) in blocks[..20].iter().enumerate() {
        let rate = i as u64 + 1;
        let (outpoint, value) = coinbase_out(block);
        let size = spend(outpoint, value, &alice, &[(Amount::from_coins(1), &bob)], Amount::ZERO).encoded_len() as u64;
        let tx = spend(outpoint, value, &alice, &[(Amount::from_coins(1), &bob)], Amount::from_units(rate * size));
        node.handle.submit_transaction(tx.clone()).await.unwrap();
        offered.push((rate, tx.encoded_len()));
    }
    // What a block would take, best rate first; the estimate beats the first one left out.
    offered.sort_by_key(|o| std::cmp::Reverse(o.0));
    let mut filled = 0;
    let first_left_out = offered.iter().find(|(_, size)| {
        filled += size;
        filled > 2_000
    });
    let expected = first_left_out.unwrap().0 + 1;
    let next_block = node.handle.estimate_fee(1).await.unwrap();
    assert_eq!((next_block.units_per_byte, next_block.mempool_units_per_byte), (expected, expected));
    // Within ten blocks, everything waiting fits: the relay minimum will do.
    assert_eq!(node.handle.estimate_fee(10).await.unwrap().mempool_units_per_byte, 0);

    // A full block at high rates raises the estimate even once the mempool is light again.
    let mined = node.mine(1, &alice).await;
    assert!(mined[0].encoded_len() > 1_800, "the block is full");
    let after = node.handle.estimate_fee(1).await.unwrap();
    assert!(after.blocks_units_per_byte >= expected, "{after:?}");
    assert_eq!(after.units_per_byte, after.blocks_units_per_byte.max(after.mempool_units_per_byte));
    node.stop().await;
}

#[tokio::test]
async fn a_mined_block_is_told_to_subscribers_only_when_proven_and_on_the_tip() {
    let node = Node::new();
    let key = SecretKey::from_seed([1; 32]);
    let mut mined = node.handle.subscribe_mined();

    let block = solve(node.template(&key).await, 1);
    let outcome = node.handle.submit_mined_block(block.clone()).await.unwrap();
    assert!(matches!(outcome, BlockOutcome::NewTip { height: 1, .. }), "{outcome:?}");
    let (hash, told) = mined.try_recv().expect("told of the block");
    assert_eq!((hash, told.as_ref()), (block.hash(), &block));

    // Not proven: a nonce that misses the target is neither told nor accepted.
    let mut unproven = node.template(&key).await;
    let target = unproven.header.bits.expand().unwrap();
    while target.is_met_by(&unproven.hash()) {
        unproven.header.nonce += 1;
    }
    assert!(node.handle.submit_mined_block(unproven).await.is_err());
    assert!(mined.try_recv().is_err(), "an unproven block was told");

    // Not on the tip: a block on the old tip (mined before the tip moved) connects as a side
    // branch at most, and is not told.
    let stale = solve(node.handle.block_template(key.public_key().key_hash(), b"stale".to_vec()).await.unwrap(), 1);
    node.mine(1, &key).await;
    node.handle.submit_mined_block(stale).await.unwrap();
    assert!(mined.try_recv().is_err(), "a block off the tip was told");
    assert_eq!(node.handle.tip().height, 2);
    node.stop().await;
}

/// `count` headers on `parent` (at `parent_height`), each with proof of work on regtest; `salt`
/// makes branches of the same parent differ.
fn branch_headers(
    params: &Params,
    parent: peerchain_primitives::BlockHash,
    parent_height: u32,
    count: u32,
    salt: u64,
) -> Vec<peerchain_primitives::BlockHeader> {
    let target = params.pow_limit.expand().unwrap();
    let mut headers = Vec::new();
    let mut prev = parent;
    for i in 1..=count {
        let mut header = peerchain_primitives::BlockHeader {
            version: 1,
            prev_hash: prev,
            merkle_root: peerchain_primitives::MerkleRoot(peerchain_primitives::hash::sha256d(&salt.to_le_bytes())),
            time: params.genesis_time + 60 * u64::from(parent_height + i),
            bits: params.pow_limit,
            nonce: salt << 32,
        };
        while !target.is_met_by(&header.hash()) {
            header.nonce += 1;
        }
        prev = header.hash();
        headers.push(header);
    }
    headers
}

/// A transaction with `outputs` zero-value outputs: junk whose only purpose is its size.
fn junk(outputs: usize) -> Transaction {
    Transaction {
        version: 1,
        inputs: vec![TxIn {
            prev_out: OutPoint::new(peerchain_primitives::TxId([9; 32]), 0),
            witness: Witness::Multisig { signatures: vec![] },
        }],
        outputs: vec![TxOut::coins_to(Amount::ZERO, SecretKey::from_seed([9; 32]).public_key().key_hash()); outputs],
        lock_time: 0,
    }
}

/// Review C1: a peer that serves an honest header with another body (no transactions, the
/// coinbase moved, padding past the size limit) must not get the honest block marked invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_match_its_header_never_condemns_the_honest_block() {
    let (alice, bob) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
    let node = Node::new();
    let other = Node::new();
    let shared = other.mine(12, &alice).await;
    for block in &shared {
        node.handle.submit_block(block.clone()).await.unwrap();
    }
    let (outpoint, value) = coinbase_out(&shared[0]);
    let payment = spend(outpoint, value, &alice, &[(Amount::from_coins(1), &bob)], Amount::from_units(2_000));
    other.handle.submit_transaction(payment).await.unwrap();
    let honest = solve(other.template(&alice).await, 1);
    assert_eq!(honest.transactions.len(), 2);

    let mut empty = honest.clone();
    empty.transactions.clear();
    let mut swapped = honest.clone();
    swapped.transactions.swap(0, 1);
    let mut padded = honest.clone();
    padded.transactions.push(junk(100_000));
    assert!(padded.encoded_len() > 4_000_000);
    for mutated in [empty, swapped, padded] {
        let err = node.handle.submit_block(mutated).await.unwrap_err();
        assert!(matches!(err, SubmitBlockError::Rejected(BlockReject::BadMerkleRoot { .. })), "{err}");
    }
    // Not after a restart either: nothing was marked.
    let (dir, path) = node.stop().await;
    let node = Node::start_at(path, Config::default());
    let outcome = node.handle.submit_block(honest.clone()).await.unwrap();
    assert!(matches!(outcome, BlockOutcome::NewTip { height: 13, .. }), "{outcome:?}");
    node.stop().await;
    other.stop().await;
    drop(dir);
}

/// Review M2: headers of a branch with less work than the tip cost no disk (not one durable
/// write each) and a bounded amount of memory; a branch that catches up is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_work_headers_are_kept_in_bounded_memory_and_never_stored() {
    let alice = SecretKey::from_seed([1; 32]);
    let params = Params::for_network(Network::Regtest);
    let config = Config { max_low_work_headers: 300, ..Config::default() };
    let node = Node::with_config(config.clone());
    node.mine(30, &alice).await;
    let genesis = params.genesis_hash();
    for branch in 0..40u64 {
        // Branches of 20 headers from genesis: 800 headers, none with the tip's work.
        let outcome = node.handle.submit_headers(branch_headers(&params, genesis, 0, 20, branch)).await.unwrap();
        assert_eq!(outcome.new, 20);
        let held = node.handle.sync_state().await.unwrap().low_work_headers;
        assert!(held <= 300, "{held} low-work headers held");
    }
    assert_eq!(node.handle.tip().height, 30);
    // A branch that gets more work than the tip is stored, with the headers it builds on.
    let heavy = branch_headers(&params, genesis, 0, 31, 1_000);
    let (first_part, rest) = heavy.split_at(20);
    node.handle.submit_headers(first_part.to_vec()).await.unwrap();
    let outcome = node.handle.submit_headers(rest.to_vec()).await.unwrap();
    assert_eq!(outcome.best_header, heavy.last().unwrap().hash());
    let (dir, path) = node.stop().await;
    let store = Store::open(&path, &params).unwrap();
    let stored = store.read().unwrap().all_entries().unwrap().len();
    assert_eq!(stored, 31 + 31, "the main chain and the heavy branch, nothing of the low-work ones");
    drop(dir);
}

/// `chain reconsider`: a block marked invalid (as an honest block could be before review C1
/// was fixed, here marked directly in the store) is cleared, and becomes the tip again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconsidering_a_block_clears_its_invalid_mark_and_its_chain_becomes_the_tip() {
    let alice = SecretKey::from_seed([1; 32]);
    let params = Params::for_network(Network::Regtest);
    let node = Node::new();
    let other = Node::new();
    let blocks = other.mine(3, &alice).await;
    node.handle.submit_block(blocks[0].clone()).await.unwrap();
    let (dir, path) = node.stop().await;
    {
        // Blocks 2 and 3 known, their bodies stored, and marked invalid.
        let store = Store::open(&path, &params).unwrap();
        let reader = store.read().unwrap();
        let mut parent = reader.entry(&blocks[0].hash()).unwrap().unwrap();
        drop(reader);
        store
            .write(true, |w| {
                for block in &blocks[1..] {
                    let work = block.header.bits.expand().unwrap().work();
                    let entry = peerchain_store::IndexEntry {
                        header: block.header,
                        height: parent.height + 1,
                        total_work: parent.total_work.saturating_add(work),
                        has_data: true,
                        invalid: true,
                    };
                    w.put_block(&block.hash(), &block.to_bytes())?;
                    w.put_entry(&block.hash(), &entry)?;
                    parent = entry;
                }
                Ok::<_, peerchain_store::Error>(())
            })
            .unwrap();
    }
    let node = Node::start_at(path, Config::default());
    assert_eq!(node.handle.tip().height, 1);
    let err = node.handle.submit_block(blocks[2].clone()).await.unwrap_err();
    assert!(matches!(err, SubmitBlockError::KnownInvalid(_)), "{err}");

    let tip = node.handle.reconsider(blocks[1].hash()).await.unwrap();
    assert_eq!((tip.height, tip.hash), (3, blocks[2].hash()), "cleared with its descendant");
    let unknown = node.handle.reconsider(peerchain_primitives::BlockHash([7; 32])).await.unwrap_err();
    assert!(matches!(unknown, SubmitBlockError::UnknownBlock(_)), "{unknown}");
    // A block that really is invalid is marked again when it is tried.
    let mut greedy = node.template(&alice).await;
    greedy.transactions[0].outputs[0].amount = Amount::from_coins(1_000);
    greedy.header.merkle_root = greedy.compute_merkle_root();
    let greedy = solve(greedy, 1);
    node.handle.submit_block(greedy.clone()).await.unwrap_err();
    let tip = node.handle.reconsider(greedy.hash()).await.unwrap();
    assert_eq!(tip.hash, blocks[2].hash());
    let err = node.handle.submit_block(greedy).await.unwrap_err();
    assert!(matches!(err, SubmitBlockError::KnownInvalid(_)), "{err}");
    node.stop().await;
    other.stop().await;
    drop(dir);
}

/// Review M5: each replacement pays the incremental relay fee for its own size above what it
/// evicts, so raising the fee one unit at a time is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacements_must_pay_for_their_relay() {
    let (alice, bob) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
    let node = Node::new();
    let blocks = node.mine(12, &alice).await;
    let (outpoint, value) = coinbase_out(&blocks[0]);
    let pay = |fee: u64| spend(outpoint, value, &alice, &[(Amount::from_coins(1), &bob)], Amount::from_units(fee));
    node.handle.submit_transaction(pay(10_000)).await.unwrap();
    let size = pay(10_000).encoded_len() as u64;
    for fee in [10_001, 10_000 + size - 1] {
        let err = node.handle.submit_transaction(pay(fee)).await.unwrap_err();
        assert!(matches!(err, SubmitTxError::Rejected(MempoolReject::ReplacementTooCheap { .. })), "{fee}: {err}");
    }
    let replacement = node.handle.submit_transaction(pay(10_000 + size)).await.unwrap();
    assert_eq!(node.handle.mempool_txids().await.unwrap(), vec![replacement]);
    node.stop().await;
}

/// A chain of unconfirmed spends: `length` transactions, each spending the last one's change,
/// each paying `fee(i)`.
fn spend_chain(
    outpoint: OutPoint,
    value: Amount,
    key: &SecretKey,
    length: usize,
    fee: impl Fn(usize) -> u64,
) -> Vec<Transaction> {
    let mut chain = Vec::new();
    let (mut outpoint, mut value) = (outpoint, value);
    for i in 0..length {
        let fee = Amount::from_units(fee(i));
        let tx = spend(outpoint, value, key, &[(Amount::from_units(1_000), key)], fee);
        value = value.checked_sub(Amount::from_units(1_000)).unwrap().checked_sub(fee).unwrap();
        outpoint = OutPoint::new(tx.txid(), 1);
        chain.push(tx);
    }
    chain
}

/// Review M6: a chain of unconfirmed transactions is capped (25, as Bitcoin Core), a
/// replacement evicts at most 100, and a block template takes each chain in one pass whatever
/// the fee rates of its links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfirmed_chains_are_bounded_and_templates_take_them_in_order() {
    let alice = SecretKey::from_seed([1; 32]);
    let node = Node::new();
    let blocks = node.mine(14, &alice).await;
    let (outpoint, value) = coinbase_out(&blocks[0]);
    // Each child pays more than its parent: the order that made selection quadratic.
    let chain = spend_chain(outpoint, value, &alice, 26, |i| 1_000 + 100 * i as u64);
    for tx in &chain[..25] {
        node.handle.submit_transaction(tx.clone()).await.unwrap();
    }
    let err = node.handle.submit_transaction(chain[25].clone()).await.unwrap_err();
    assert!(matches!(err, SubmitTxError::Rejected(MempoolReject::ChainTooLong { .. })), "{err}");
    let template = node.template(&alice).await;
    let order: Vec<_> = template.transactions[1..].iter().map(Transaction::txid).collect();
    assert_eq!(order, chain[..25].iter().map(Transaction::txid).collect::<Vec<_>>(), "parents first, all of them");

    // Four chains hanging from one transaction's outputs would let a replacement evict 101.
    let (outpoint, value) = coinbase_out(&blocks[1]);
    let fan = {
        let outputs: Vec<(Amount, &SecretKey)> = (0..5).map(|_| (Amount::from_coins(1), &alice)).collect();
        spend(outpoint, value, &alice, &outputs, Amount::from_units(2_000))
    };
    node.handle.submit_transaction(fan.clone()).await.unwrap();
    for branch in 0..5u32 {
        let branch_chain = spend_chain(OutPoint::new(fan.txid(), branch), Amount::from_coins(1), &alice, 24, |_| 1_000);
        for (i, tx) in branch_chain.into_iter().enumerate() {
            // The fan itself counts among the descendants of its own outputs' spends' ancestors.
            if let Err(err) = node.handle.submit_transaction(tx).await {
                assert!(matches!(err, SubmitTxError::Rejected(MempoolReject::ChainTooLong { .. })), "{err}");
                assert!(branch * 24 + i as u32 >= 24, "refused only once the fan has 24 descendants");
                break;
            }
        }
    }
    node.stop().await;
}

/// Review M7: after a reorganisation, the mempool's transactions come back without their
/// signatures being verified again (the signature cache holds them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorganisation_does_not_verify_the_mempool_again() {
    let (alice, bob) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
    let node = Node::new();
    let other = Node::new();
    let blocks = node.mine(40, &alice).await;
    for block in &blocks {
        other.handle.submit_block(block.clone()).await.unwrap();
    }
    for block in &blocks[..25] {
        let (outpoint, value) = coinbase_out(block);
        let tx = spend(outpoint, value, &alice, &[(Amount::from_coins(1), &bob)], Amount::from_units(2_000));
        node.handle.submit_transaction(tx).await.unwrap();
    }
    let before = node.handle.mempool_info().await.unwrap();
    assert_eq!((before.size, before.signatures_verified), (25, 25));
    // The node mines them; the other node's heavier branch then abandons that block, and
    // its 25 transactions return to the mempool.
    let mined = node.mine(1, &alice).await;
    assert_eq!(mined[0].transactions.len(), 26);
    for block in other.mine(2, &bob).await {
        node.handle.submit_block(block).await.unwrap();
    }
    let after = node.handle.mempool_info().await.unwrap();
    assert_eq!(after.size, 25, "every transaction is back");
    assert_eq!(after.signatures_verified, 25, "none was verified again");
    node.stop().await;
    other.stop().await;
}

/// Review M2, the other half: a chain's blocks are fetched only once its headers show the
/// network's minimum work, so a node starting afresh spends nothing on a cheap fake chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_block_is_fetched_before_the_headers_show_the_minimum_chain_work() {
    let alice = SecretKey::from_seed([1; 32]);
    let other = Node::new();
    let blocks = other.mine(30, &alice).await;
    let mut params = Params::for_network(Network::Regtest);
    // The work of 20 blocks at the easiest target.
    let per_block = params.pow_limit.expand().unwrap().work();
    params.min_chain_work = (0..20).fold(peerchain_primitives::Work::ZERO, |sum, _| sum.saturating_add(per_block));
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_with(dir.path().join("chain.redb"), Config::default(), params);
    let headers: Vec<_> = blocks.iter().map(|b| b.header).collect();
    node.handle.submit_headers(headers[..15].to_vec()).await.unwrap();
    assert!(node.handle.missing_blocks(100).await.unwrap().is_empty(), "15 blocks of work are not enough");
    node.handle.submit_headers(headers[15..].to_vec()).await.unwrap();
    let missing = node.handle.missing_blocks(100).await.unwrap();
    assert_eq!(missing.len(), 30, "with 30 blocks of work, all are fetched");
    assert_eq!(missing[0], blocks[0].hash());
    node.stop().await;
    other.stop().await;
}

/// The blocks missing on the way to the best header follow the main chain as it grows along
/// the headers, skip blocks already stored out of order, and keep to the limit asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_blocks_follow_the_main_chain_as_it_grows_along_the_headers() {
    let alice = SecretKey::from_seed([1; 32]);
    let other = Node::new();
    let blocks = other.mine(30, &alice).await;
    let node = Node::new();
    node.handle.submit_headers(blocks.iter().map(|b| b.header).collect()).await.unwrap();
    let hashes: Vec<_> = blocks.iter().map(|b| b.hash()).collect();
    assert_eq!(node.handle.missing_blocks(100).await.unwrap(), hashes);
    for block in &blocks[..10] {
        node.handle.submit_block(std::sync::Arc::new(block.clone())).await.unwrap();
    }
    assert_eq!(node.handle.missing_blocks(100).await.unwrap(), hashes[10..]);
    // Stored ahead of its parent: no longer missing, and not connected yet.
    node.handle.submit_block(std::sync::Arc::new(blocks[15].clone())).await.unwrap();
    let missing = node.handle.missing_blocks(100).await.unwrap();
    assert!(!missing.contains(&hashes[15]) && missing[0] == hashes[10] && missing.len() == 19, "{missing:?}");
    assert_eq!(node.handle.missing_blocks(3).await.unwrap(), hashes[10..13]);
    for block in &blocks[10..] {
        node.handle.submit_block(std::sync::Arc::new(block.clone())).await.unwrap();
    }
    assert!(node.handle.missing_blocks(100).await.unwrap().is_empty());
    node.stop().await;
    other.stop().await;
}
