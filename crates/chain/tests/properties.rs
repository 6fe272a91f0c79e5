//! Properties of the chain over random histories, on the real actor and store (regtest):
//! the coin supply follows the subsidy schedule, a reorganisation and its reverse leave the
//! UTXO set as a direct path to the same tip does, and the mempool never holds two
//! transactions that spend the same output.

use std::collections::HashSet;
use std::sync::Arc;

use peerchain_chain::{BlockOutcome, Config, Handle, solve};
use peerchain_consensus::Params;
use peerchain_primitives::{
    Amount, Block, Network, OutPoint, SecretKey, SigHashMode, Transaction, TxIn, TxOut, TxSignature, Witness,
};
use peerchain_store::Store;
use proptest::prelude::*;

struct Node {
    handle: Handle,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let params = Params::for_network(Network::Regtest);
        let store = Arc::new(Store::open(&dir.path().join("chain.redb"), &params).unwrap());
        let (handle, thread) = peerchain_chain::spawn(store, params, Config::default()).unwrap();
        Node { handle, thread: Some(thread), _dir: dir }
    }

    async fn stop(mut self) {
        self.handle.shutdown().await.unwrap();
        self.thread.take().unwrap().join().unwrap();
    }

    /// Mines one block on the tip paying `key`, with `extra` making blocks of equal content
    /// differ between branches.
    async fn mine(&self, key: &SecretKey, extra: u8) -> Block {
        let template = self.handle.block_template(key.public_key().key_hash(), vec![extra]).await.unwrap();
        let block = solve(template, 1);
        let outcome = self.handle.submit_block(block.clone()).await.unwrap();
        assert!(matches!(outcome, BlockOutcome::NewTip { .. }), "{outcome:?}");
        block
    }

    async fn submit_all(&self, blocks: &[Block]) {
        for block in blocks {
            self.handle.submit_block(block.clone()).await.unwrap();
        }
    }

    /// The verified UTXO set's digest and coin supply at the tip.
    async fn utxo_set(&self) -> ([u8; 32], Amount) {
        let report = self.handle.verify().await.unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        (report.utxo_digest, report.coin_supply)
    }
}

/// A payment of `value` locked to `key`, spent into `outputs` equal parts paying `fee`.
fn spend(outpoint: OutPoint, value: Amount, key: &SecretKey, outputs: usize, fee: u64) -> Transaction {
    let rest = value.units().saturating_sub(fee);
    let each = rest / outputs as u64;
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: outpoint, witness: Witness::Multisig { signatures: vec![] } }],
        outputs: (0..outputs).map(|_| TxOut::coins_to(Amount::from_units(each), key.public_key().key_hash())).collect(),
        lock_time: 0,
    };
    let spent = TxOut::coins_to(value, key.public_key().key_hash());
    let message = tx.signature_hash(0, &spent, SigHashMode::All, Network::Regtest.magic());
    tx.inputs[0].witness = Witness::Key {
        public_key: key.public_key(),
        signature: TxSignature { mode: SigHashMode::All, signature: key.sign(&message) },
    };
    tx
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Step {
    /// Mine a block from the template.
    Mine,
    /// Mine a block whose coinbase claims this much more than allowed (refused).
    Greedy(u64),
    /// Spend the `n`th known coin into `outputs` outputs paying `fee`.
    Pay { coin: usize, outputs: usize, fee: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Mine),
        1 => (1u64..1_000_000).prop_map(Step::Greedy),
        4 => (0usize..64, 1usize..4, 1_000u64..50_000).prop_map(|(coin, outputs, fee)| Step::Pay { coin, outputs, fee }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// The coins in the UTXO set are exactly the subsidies of the blocks so far: fees move
    /// coins, a greedy coinbase is refused, nothing is created or lost.
    #[test]
    fn the_coin_supply_follows_the_subsidy_schedule(steps in proptest::collection::vec(step(), 1..40)) {
        runtime().block_on(async {
            let key = SecretKey::from_seed([1; 32]);
            let params = Params::for_network(Network::Regtest);
            let node = Node::new();
            let mut coins: Vec<(OutPoint, Amount)> = Vec::new();
            // Mature coins to spend.
            for _ in 0..12 {
                let block = node.mine(&key, 0).await;
                let coinbase = &block.transactions[0];
                coins.push((OutPoint::new(coinbase.txid(), 0), coinbase.outputs[0].amount));
            }
            coins.truncate(2);
            for step in steps {
                match step {
                    Step::Mine => {
                        let block = node.mine(&key, 0).await;
                        for tx in &block.transactions[1..] {
                            for (index, output) in tx.outputs.iter().enumerate() {
                                coins.push((OutPoint::new(tx.txid(), index as u32), output.amount));
                            }
                        }
                    }
                    Step::Greedy(extra) => {
                        let mut block =
                            node.handle.block_template(key.public_key().key_hash(), vec![9]).await.unwrap();
                        let claimed = block.transactions[0].outputs[0].amount.units() + extra;
                        block.transactions[0].outputs[0].amount = Amount::from_units(claimed);
                        block.header.merkle_root = block.compute_merkle_root();
                        assert!(node.handle.submit_block(solve(block, 1)).await.is_err());
                    }
                    Step::Pay { coin, outputs, fee } => {
                        if coins.is_empty() {
                            continue;
                        }
                        let (outpoint, value) = coins.remove(coin % coins.len());
                        // Refused or not (a conflict, too cheap a fee), the supply must hold.
                        let _ = node.handle.submit_transaction(spend(outpoint, value, &key, outputs, fee)).await;
                    }
                }
                let (_, supply) = node.utxo_set().await;
                let height = node.handle.tip().height;
                let schedule: u64 = (1..=height).map(|h| params.subsidy(h).units()).sum();
                assert_eq!(supply.units(), schedule, "at height {height}");
            }
            node.stop().await;
        });
    }

    /// A node that reorganises from branch A to a heavier branch B, then back to A grown
    /// heavier again, holds the UTXO set of a node that only ever saw A: every reorganisation
    /// and its reverse restore the same set.
    #[test]
    fn a_reorganisation_and_its_reverse_restore_the_same_utxo_set(
        shared in 14usize..18, a in 1usize..4, b_extra in 1usize..3, payments in 0usize..4,
    ) {
        runtime().block_on(async {
            let key = SecretKey::from_seed([1; 32]);
            let (x, y, maker) = (Node::new(), Node::new(), Node::new());
            let mut history = Vec::new();
            for _ in 0..shared {
                history.push(maker.mine(&key, 0).await);
            }
            x.submit_all(&history).await;
            y.submit_all(&history).await;
            // Branch A, with payments in it, on the maker; branch B on y, one block heavier.
            for block in &history[..payments] {
                let coinbase = &block.transactions[0];
                let tx = spend(OutPoint::new(coinbase.txid(), 0), coinbase.outputs[0].amount, &key, 2, 5_000);
                maker.handle.submit_transaction(tx).await.unwrap();
            }
            let mut branch_a = Vec::new();
            for _ in 0..a {
                branch_a.push(maker.mine(&key, 1).await);
            }
            let mut branch_b = Vec::new();
            for _ in 0..a + b_extra {
                branch_b.push(y.mine(&key, 2).await);
            }
            x.submit_all(&branch_a).await;
            let before = x.utxo_set().await;
            x.submit_all(&branch_b).await;
            assert_eq!(x.handle.tip().hash, branch_b.last().unwrap().hash(), "reorganised to B");
            assert_eq!(x.utxo_set().await, y.utxo_set().await, "as if it had only seen B");
            // A grows heavier than B: back to A.
            let mut grown = Vec::new();
            for _ in 0..b_extra + 1 {
                grown.push(maker.mine(&key, 1).await);
            }
            x.submit_all(&grown).await;
            assert_eq!(x.handle.tip().hash, maker.handle.tip().hash, "reorganised back to A");
            assert_eq!(x.utxo_set().await, maker.utxo_set().await, "as if it had only seen A");
            assert_ne!(before, x.utxo_set().await, "A grew in between");
            for node in [x, y, maker] {
                node.stop().await;
            }
        });
    }

    /// Whatever spends arrive, in whatever order (replacements, double spends, chains), the
    /// mempool never holds two transactions spending one output.
    #[test]
    fn the_mempool_never_holds_two_spends_of_one_output(
        spends in proptest::collection::vec((0usize..6, 1usize..3, 1_000u64..100_000), 1..40),
    ) {
        runtime().block_on(async {
            let key = SecretKey::from_seed([1; 32]);
            let node = Node::new();
            let mut coins = Vec::new();
            for _ in 0..16 {
                let block = node.mine(&key, 0).await;
                let coinbase = &block.transactions[0];
                coins.push((OutPoint::new(coinbase.txid(), 0), coinbase.outputs[0].amount));
            }
            coins.truncate(6);
            let mut known = coins.clone();
            for (coin, outputs, fee) in spends {
                let (outpoint, value) = known[coin % known.len()];
                let tx = spend(outpoint, value, &key, outputs, fee);
                if node.handle.submit_transaction(tx.clone()).await.is_ok() {
                    // Its outputs can be spent (or double spent) next.
                    for (index, output) in tx.outputs.iter().enumerate() {
                        known.push((OutPoint::new(tx.txid(), index as u32), output.amount));
                    }
                }
                let waiting = node.handle.mempool_matching(Box::new(|_| true)).await.unwrap();
                let mut spent = HashSet::new();
                for tx in &waiting {
                    for input in &tx.inputs {
                        assert!(spent.insert(input.prev_out), "two waiting transactions spend {:?}", input.prev_out);
                    }
                }
            }
            node.stop().await;
        });
    }
}
