//! A main chain held in memory, and wallet helpers, for the wallet tests.
#![allow(dead_code)]

use std::cell::RefCell;

use peerchain_primitives::{
    Amount, Block, BlockHash, BlockHeader, CompactTarget, KeyHash, MerkleRoot, Network, OutPoint, Transaction, TxIn,
    TxOut, Witness,
};
use peerchain_wallet::{ChainSource, Wallet, generate_mnemonic};

pub(crate) const MATURITY: u32 = 10;
pub(crate) const NET: Network = Network::Regtest;

/// A main chain held in memory; tests append and replace blocks at will.
#[derive(Default)]
pub(crate) struct FakeChain {
    pub(crate) blocks: RefCell<Vec<Block>>,
}

impl FakeChain {
    pub(crate) fn new() -> Self {
        let chain = FakeChain::default();
        chain.push(vec![coinbase(0, KeyHash::ZERO, 0)]);
        chain
    }

    pub(crate) fn push(&self, transactions: Vec<Transaction>) -> BlockHash {
        let mut blocks = self.blocks.borrow_mut();
        let prev_hash = blocks.last().map_or(BlockHash::ZERO, |b| b.hash());
        let time = 1_000 + blocks.len() as u64;
        let mut block = Block {
            header: BlockHeader {
                version: 1,
                prev_hash,
                merkle_root: MerkleRoot::ZERO,
                time,
                bits: CompactTarget(0x207fffff),
                nonce: 0,
            },
            transactions,
        };
        block.header.merkle_root = block.compute_merkle_root();
        let hash = block.hash();
        blocks.push(block);
        hash
    }

    pub(crate) fn mine_to(&self, to: KeyHash, transactions: Vec<Transaction>) -> BlockHash {
        let height = self.blocks.borrow().len() as u32;
        let mut all = vec![coinbase(height, to, 50)];
        all.extend(transactions);
        self.push(all)
    }

    pub(crate) fn truncate(&self, height: u32) {
        self.blocks.borrow_mut().truncate(height as usize + 1);
    }
}

impl ChainSource for FakeChain {
    fn tip_height(&self) -> u32 {
        self.blocks.borrow().len() as u32 - 1
    }
    fn main_hash(&self, height: u32) -> Result<Option<BlockHash>, String> {
        Ok(self.blocks.borrow().get(height as usize).map(|b| b.hash()))
    }
    fn block_at(&self, height: u32) -> Result<Option<Block>, String> {
        Ok(self.blocks.borrow().get(height as usize).cloned())
    }
    fn coinbase_maturity(&self) -> u32 {
        MATURITY
    }
}

pub(crate) fn coinbase(height: u32, to: KeyHash, coins: u64) -> Transaction {
    Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: OutPoint::NULL, witness: Witness::Coinbase { height, extra: vec![] } }],
        outputs: vec![TxOut::coins_to(Amount::from_coins(coins), to)],
        lock_time: 0,
    }
}

pub(crate) fn sync(wallet: &mut Wallet, chain: &FakeChain) {
    while wallet.sync(chain, 7).unwrap().more {}
}

pub(crate) fn balance(wallet: &Wallet, chain: &FakeChain) -> (u64, u64, u64) {
    let b = wallet.balance(chain.tip_height(), MATURITY);
    (b.confirmed.units(), b.unconfirmed.units(), b.immature.units())
}

pub(crate) fn coins(n: u64) -> u64 {
    Amount::from_coins(n).units()
}

pub(crate) fn new_wallet(dir: &std::path::Path) -> (Wallet, String) {
    let words = generate_mnemonic();
    (Wallet::create(dir, NET, &words, None, 0).unwrap(), words)
}
