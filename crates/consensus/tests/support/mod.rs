//! The fixture the consensus rule tests share: a UTXO view in memory, two keys, a funded coin.
#![allow(dead_code)]

use std::collections::HashMap;

use peerchain_consensus::{
    BlockReject, Params, TxReject, UtxoView, ValidationError, ViewError, coinbase_transaction, connect_block,
};
use peerchain_primitives::{
    Amount, Block, BlockHeader, Coin, Network, OutPoint, SecretKey, SigHashMode, Transaction, TxIn, TxOut, TxSignature,
    Witness,
};
#[derive(Default)]
pub(crate) struct MemoryView(pub(crate) HashMap<OutPoint, Coin>);

impl UtxoView for MemoryView {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, ViewError> {
        Ok(self.0.get(outpoint).cloned())
    }
}

pub(crate) const HEIGHT: u32 = 100;

pub(crate) struct Fixture {
    pub(crate) params: Params,
    pub(crate) view: MemoryView,
    pub(crate) alice: SecretKey,
    pub(crate) bob: SecretKey,
    /// A mature coinbase output of 50 coins paying Alice.
    pub(crate) funding: OutPoint,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let params = Params::for_network(Network::Regtest);
        let alice = SecretKey::from_seed([1; 32]);
        let bob = SecretKey::from_seed([2; 32]);
        let funding = OutPoint::new(peerchain_primitives::TxId([9; 32]), 0);
        let mut view = MemoryView::default();
        view.0.insert(
            funding,
            Coin {
                output: TxOut::coins_to(Amount::from_coins(50), alice.public_key().key_hash()),
                height: 1,
                is_coinbase: true,
            },
        );
        Self { params, view, alice, bob, funding }
    }

    pub(crate) fn add_coin(&mut self, outpoint: OutPoint, output: TxOut) {
        self.view.0.insert(outpoint, Coin { output, height: 1, is_coinbase: false });
    }

    pub(crate) fn spent_output(&self, outpoint: &OutPoint) -> TxOut {
        self.view.0[outpoint].output.clone()
    }

    /// Signs input `index` of `tx` with `key` for a key-hash lock.
    pub(crate) fn sign_key(&self, tx: &mut Transaction, index: usize, key: &SecretKey, mode: SigHashMode) {
        let spent = self.spent_output(&tx.inputs[index].prev_out);
        let message = tx.signature_hash(index, &spent, mode, self.params.network.magic());
        tx.inputs[index].witness = Witness::Key {
            public_key: key.public_key(),
            signature: TxSignature { mode, signature: key.sign(&message) },
        };
    }

    /// Alice pays `amount` to Bob from the funding coin, with the rest back to her minus `fee`.
    pub(crate) fn payment(&self, amount: Amount, fee: Amount) -> Transaction {
        let change = Amount::from_coins(50).checked_sub(amount).unwrap().checked_sub(fee).unwrap();
        let mut tx = Transaction {
            version: 1,
            inputs: vec![TxIn { prev_out: self.funding, witness: Witness::Multisig { signatures: vec![] } }],
            outputs: vec![
                TxOut::coins_to(amount, self.bob.public_key().key_hash()),
                TxOut::coins_to(change, self.alice.public_key().key_hash()),
            ],
            lock_time: 0,
        };
        self.sign_key(&mut tx, 0, &self.alice, SigHashMode::All);
        tx
    }

    pub(crate) fn block(&self, txs: Vec<Transaction>, coinbase_value: Amount) -> Block {
        let mut transactions =
            vec![coinbase_transaction(HEIGHT, coinbase_value, self.bob.public_key().key_hash(), vec![])];
        transactions.extend(txs);
        let mut block = Block {
            header: BlockHeader {
                version: 1,
                prev_hash: Default::default(),
                merkle_root: Default::default(),
                time: 0,
                bits: self.params.pow_limit,
                nonce: 0,
            },
            transactions,
        };
        block.header.merkle_root = block.compute_merkle_root();
        block
    }

    pub(crate) fn connect(&self, block: &Block) -> Result<peerchain_consensus::BlockEffects, ValidationError> {
        connect_block(block, HEIGHT, &self.view, &self.params)
    }

    pub(crate) fn tx_reason(&self, tx: Transaction) -> TxReject {
        let block = self.block(vec![tx], self.params.subsidy(HEIGHT));
        match self.connect(&block) {
            Err(ValidationError::Reject(BlockReject::Transaction { reason, .. })) => reason,
            other => panic!("expected a transaction rejection, got {other:?}"),
        }
    }
}
