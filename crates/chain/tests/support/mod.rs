//! A chain actor on regtest in a temporary directory, and hand-signed spends, for the chain
//! tests.
#![allow(dead_code)]

use std::sync::Arc;

use peerchain_chain::{BlockOutcome, Config, Handle, solve};
use peerchain_consensus::Params;
use peerchain_primitives::{
    Amount, Block, Network, OutPoint, SecretKey, SigHashMode, Transaction, TxIn, TxOut, TxSignature, Witness,
};
use peerchain_store::Store;

pub(crate) struct Node {
    pub(crate) handle: Handle,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
    pub(crate) path: std::path::PathBuf,
}

impl Node {
    pub(crate) fn start_at(path: std::path::PathBuf, config: Config) -> Node {
        Self::start_with(path, config, Params::for_network(Network::Regtest))
    }

    pub(crate) fn start_with(path: std::path::PathBuf, config: Config, params: Params) -> Node {
        let store = Arc::new(Store::open(&path, &params).unwrap());
        let (handle, thread) = peerchain_chain::spawn(store, params, config).unwrap();
        Node { handle, thread: Some(thread), _dir: None, path }
    }

    pub(crate) fn new() -> Node {
        Self::with_config(Config::default())
    }

    pub(crate) fn with_config(config: Config) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut node = Self::start_at(dir.path().join("chain.redb"), config);
        node._dir = Some(dir);
        node
    }

    pub(crate) async fn stop(mut self) -> (Option<tempfile::TempDir>, std::path::PathBuf) {
        self.handle.shutdown().await.unwrap();
        self.thread.take().unwrap().join().unwrap();
        (self._dir.take(), self.path.clone())
    }

    pub(crate) async fn template(&self, key: &SecretKey) -> Block {
        self.handle.block_template(key.public_key().key_hash(), vec![]).await.unwrap()
    }

    /// Mines `n` blocks on the tip paying `key`.
    pub(crate) async fn mine(&self, n: usize, key: &SecretKey) -> Vec<Block> {
        let mut blocks = Vec::new();
        for _ in 0..n {
            let block = solve(self.template(key).await, 1);
            let outcome = self.handle.submit_block(block.clone()).await.unwrap();
            assert!(matches!(outcome, BlockOutcome::NewTip { .. }), "{outcome:?}");
            blocks.push(block);
        }
        blocks
    }
}

/// Spends `outpoint` (holding `value`, locked to `key`) into `outputs` paying `fee`.
pub(crate) fn spend(
    outpoint: OutPoint,
    value: Amount,
    key: &SecretKey,
    to: &[(Amount, &SecretKey)],
    fee: Amount,
) -> Transaction {
    let mut outputs: Vec<TxOut> = to.iter().map(|(a, k)| TxOut::coins_to(*a, k.public_key().key_hash())).collect();
    let sent = to.iter().fold(Amount::ZERO, |s, (a, _)| s.checked_add(*a).unwrap());
    let change = value.checked_sub(sent).unwrap().checked_sub(fee).unwrap();
    if change > Amount::ZERO {
        outputs.push(TxOut::coins_to(change, key.public_key().key_hash()));
    }
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: outpoint, witness: Witness::Multisig { signatures: vec![] } }],
        outputs,
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

pub(crate) fn coinbase_out(block: &Block) -> (OutPoint, Amount) {
    let tx = &block.transactions[0];
    (OutPoint::new(tx.txid(), 0), tx.outputs[0].amount)
}
