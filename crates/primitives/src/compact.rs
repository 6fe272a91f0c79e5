//! Compact blocks (the idea of Bitcoin's BIP 152): a block announced as its header, its
//! coinbase and a 6-byte short id per other transaction. A peer that already holds the
//! transactions in its mempool rebuilds the block without downloading it, and asks only for
//! the ones it lacks.
//!
//! Short ids are keyed by the block's header, so a collision has to be found anew for every
//! block, after its proof of work. A rebuilt block is checked against the header's merkle
//! root; a collision that slips through only costs a full download.

use sha2::{Digest, Sha256};

use crate::encode::{Reader, Sink, put_list};
use crate::{Block, BlockHeader, Decode, DecodeError, Encode, Transaction, WtxId};

/// Most transactions a compact block can stand for (a 4 MB block of the smallest transfers).
pub const MAX_COMPACT_TRANSACTIONS: usize = 100_000;

/// The first 6 bytes of SHA-256(key ‖ wtxid): enough to tell a mempool's transactions apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShortId(pub [u8; 6]);

/// The key of a block's short ids: the SHA-256 of its header's encoding.
pub fn short_id_key(header: &BlockHeader) -> [u8; 32] {
    Sha256::digest(header.to_bytes()).into()
}

/// The short id of the transaction with `wtxid` in the block whose key is `key`.
pub fn short_id(key: &[u8; 32], wtxid: &WtxId) -> ShortId {
    let mut hasher = Sha256::new();
    hasher.update(key);
    hasher.update(wtxid.0);
    let digest = hasher.finalize();
    let mut id = [0u8; 6];
    id.copy_from_slice(&digest[..6]);
    ShortId(id)
}

/// A block as announced: header, coinbase, and the short ids of the other transactions in
/// block order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactBlock {
    /// The block's header.
    pub header: BlockHeader,
    /// The coinbase, which no mempool holds.
    pub coinbase: Transaction,
    /// Short ids of the transactions after the coinbase.
    pub short_ids: Vec<ShortId>,
}

impl CompactBlock {
    /// The compact form of `block` (which must have a coinbase).
    pub fn of(block: &Block) -> Option<CompactBlock> {
        let (coinbase, rest) = block.transactions.split_first()?;
        let key = short_id_key(&block.header);
        Some(CompactBlock {
            header: block.header,
            coinbase: coinbase.clone(),
            short_ids: rest.iter().map(|tx| short_id(&key, &tx.wtxid())).collect(),
        })
    }

    /// Fills the transactions after the coinbase from `known` (a mempool's transactions with
    /// their witness ids):
    /// slot *i* holds the transaction of short id *i*, or `None` when none or more than one
    /// known transaction has it.
    pub fn match_transactions<'a>(
        &self,
        known: impl Iterator<Item = (WtxId, &'a Transaction)>,
    ) -> Vec<Option<Transaction>> {
        let key = short_id_key(&self.header);
        let mut wanted: std::collections::HashMap<ShortId, (usize, Option<&'a Transaction>, bool)> =
            std::collections::HashMap::with_capacity(self.short_ids.len());
        for (slot, id) in self.short_ids.iter().enumerate() {
            // The same short id twice in one block cannot be told apart: both stay empty.
            wanted.entry(*id).and_modify(|(_, _, ambiguous)| *ambiguous = true).or_insert((slot, None, false));
        }
        for (wtxid, tx) in known {
            if let Some((_, found, ambiguous)) = wanted.get_mut(&short_id(&key, &wtxid)) {
                if found.is_some() {
                    *ambiguous = true;
                }
                *found = Some(tx);
            }
        }
        let mut slots = vec![None; self.short_ids.len()];
        for (slot, found, ambiguous) in wanted.into_values() {
            if let (Some(tx), false) = (found, ambiguous) {
                slots[slot] = Some(tx.clone());
            }
        }
        slots
    }

    /// The block, once every slot is filled; `None` if one is not.
    pub fn assemble(&self, slots: Vec<Option<Transaction>>) -> Option<Block> {
        if slots.len() != self.short_ids.len() {
            return None;
        }
        let mut transactions = Vec::with_capacity(slots.len() + 1);
        transactions.push(self.coinbase.clone());
        for slot in slots {
            transactions.push(slot?);
        }
        Some(Block { header: self.header, transactions })
    }
}

impl Encode for ShortId {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        sink.put(&self.0);
    }
}

impl Decode for ShortId {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ShortId(reader.array("short id")?))
    }
}

impl Encode for CompactBlock {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        self.header.encode_to(sink);
        self.coinbase.encode_to(sink);
        put_list(sink, &self.short_ids);
    }
}

impl Decode for CompactBlock {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CompactBlock {
            header: BlockHeader::decode(reader)?,
            coinbase: Transaction::decode(reader)?,
            short_ids: reader.list("short ids", MAX_COMPACT_TRANSACTIONS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Amount, KeyHash, OutPoint, TxId, TxIn, TxOut, Witness};

    fn tx(n: u8) -> Transaction {
        Transaction {
            version: 1,
            inputs: vec![TxIn {
                prev_out: OutPoint::new(TxId([n; 32]), 0),
                witness: Witness::Multisig { signatures: vec![] },
            }],
            outputs: vec![TxOut::coins_to(Amount::from_units(u64::from(n) + 1), KeyHash([n; 32]))],
            lock_time: 0,
        }
    }

    fn block(n: u8) -> Block {
        let coinbase = Transaction {
            version: 1,
            inputs: vec![TxIn { prev_out: OutPoint::NULL, witness: Witness::Coinbase { height: 7, extra: vec![] } }],
            outputs: vec![TxOut::coins_to(Amount::from_units(50), KeyHash([9; 32]))],
            lock_time: 0,
        };
        let mut transactions = vec![coinbase];
        transactions.extend((1..=n).map(tx));
        let mut block = Block {
            header: BlockHeader {
                version: 1,
                prev_hash: Default::default(),
                merkle_root: Default::default(),
                time: 1,
                bits: crate::CompactTarget(0x207f_ffff),
                nonce: 3,
            },
            transactions,
        };
        block.header.merkle_root = block.compute_merkle_root();
        block
    }

    #[test]
    fn a_block_is_rebuilt_from_a_mempool_that_holds_its_transactions() {
        let block = block(20);
        let compact = CompactBlock::of(&block).unwrap();
        let bytes = compact.to_bytes();
        assert!(bytes.len() < block.to_bytes().len() / 4, "{} bytes", bytes.len());
        let decoded = CompactBlock::from_bytes(&bytes).unwrap();
        assert_eq!(decoded, compact);
        // The mempool holds them in another order, plus others.
        let mut mempool: Vec<Transaction> = (1..=30).rev().map(tx).collect();
        mempool.push(tx(200));
        let slots = decoded.match_transactions(mempool.iter().map(|tx| (tx.wtxid(), tx)));
        assert_eq!(decoded.assemble(slots), Some(block.clone()));
    }

    #[test]
    fn missing_transactions_leave_empty_slots() {
        let block = block(10);
        let compact = CompactBlock::of(&block).unwrap();
        let mempool: Vec<Transaction> = [1, 2, 4, 5, 6, 7, 8, 9].into_iter().map(tx).collect();
        let slots = compact.match_transactions(mempool.iter().map(|tx| (tx.wtxid(), tx)));
        let missing: Vec<usize> = slots.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| i).collect();
        // Slot i holds transaction i + 1 (the coinbase is apart).
        assert_eq!(missing, vec![2, 9]);
        assert_eq!(compact.assemble(slots), None);
    }

    #[test]
    fn a_short_id_shared_by_two_known_transactions_is_left_for_download() {
        let block = block(3);
        let mut compact = CompactBlock::of(&block).unwrap();
        // A forged collision: slot 0's id repeated for slot 1.
        compact.short_ids[1] = compact.short_ids[0];
        let mempool: Vec<Transaction> = (1..=3).map(tx).collect();
        let slots = compact.match_transactions(mempool.iter().map(|tx| (tx.wtxid(), tx)));
        assert!(slots[0].is_none() && slots[1].is_none(), "a repeated id is never trusted");
        assert!(slots[2].is_some());
    }

    #[test]
    fn undecodable_bytes_are_refused() {
        let bytes = CompactBlock::of(&block(2)).unwrap().to_bytes();
        for cut in 0..bytes.len() {
            assert!(CompactBlock::from_bytes(&bytes[..cut]).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(CompactBlock::from_bytes(&long).is_err());
    }
}
