//! Transactions whose signatures expire: kept out of the mempool when they would expire
//! within the margin, and evicted with their descendants once a block passes their expiry.

use peerchain_chain::{EXPIRY_MARGIN, MempoolReject, SubmitTxError};
use peerchain_primitives::{Amount, Network, SecretKey, SigHashMode, TxOut, TxSignature, Witness};

mod support;

use support::{Node, coinbase_out, spend};

/// `spend`, signed to expire at `expiry`.
fn expiring(tx: &mut peerchain_primitives::Transaction, spent: &TxOut, key: &SecretKey, expiry: u32) {
    let mode = SigHashMode::AllUntil(expiry);
    let message = tx.signature_hash(0, spent, mode, Network::Regtest.magic());
    tx.inputs[0].witness =
        Witness::Key { public_key: key.public_key(), signature: TxSignature { mode, signature: key.sign(&message) } };
}

/// Mines a block holding only its coinbase.
async fn mine_empty(node: &Node, miner: &SecretKey) {
    let mut block = node.handle.block_template(miner.public_key().key_hash(), vec![]).await.unwrap();
    let height = node.handle.tip().height + 1;
    block.transactions.truncate(1);
    block.transactions[0].outputs[0].amount =
        peerchain_consensus::Params::for_network(Network::Regtest).subsidy(height);
    block.header.merkle_root = block.compute_merkle_root();
    node.handle.submit_block(peerchain_chain::solve(block, 1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_transactions_need_a_margin_and_leave_the_mempool_when_they_expire() {
    let alice = SecretKey::from_seed([1; 32]);
    let bob = SecretKey::from_seed([2; 32]);
    let node = Node::new();
    let blocks = node.mine(12, &alice).await;
    let next = node.handle.tip().height + 1;
    let fee = Amount::from_units(10_000);

    let (outpoint, value) = coinbase_out(&blocks[0]);
    let spent = TxOut::coins_to(value, alice.public_key().key_hash());
    let mut soon = spend(outpoint, value, &alice, &[(Amount::from_coins(1), &bob)], fee);
    expiring(&mut soon, &spent, &alice, next + EXPIRY_MARGIN - 2);
    match node.handle.submit_transaction(soon.clone()).await {
        Err(SubmitTxError::Rejected(MempoolReject::ExpiresTooSoon { expiry, next_height })) => {
            assert_eq!((expiry, next_height), (next + EXPIRY_MARGIN - 2, next));
        }
        other => panic!("{other:?}"),
    }
    // Valid for the margin: accepted, with a child spending its change.
    expiring(&mut soon, &spent, &alice, next + EXPIRY_MARGIN - 1);
    let parent = node.handle.submit_transaction(soon.clone()).await.expect("valid for the margin");
    let change = soon.outputs.len() as u32 - 1;
    let child = spend(
        peerchain_primitives::OutPoint::new(parent, change),
        soon.outputs[change as usize].amount,
        &alice,
        &[(Amount::from_coins(1), &bob)],
        fee,
    );
    node.handle.submit_transaction(child).await.expect("a child of an expiring parent");
    // A block that leaves them out (an empty one, mined by hand) passes the margin's first
    // block; the next block is the last they are valid at, so they stay.
    mine_empty(&node, &alice).await;
    assert_eq!(node.handle.mempool_info().await.unwrap().size, 2);
    mine_empty(&node, &alice).await;
    assert_eq!(node.handle.mempool_info().await.unwrap().size, 0, "expired, and its child with it");
    node.stop().await;
}
