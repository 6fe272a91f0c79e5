//! Transactions that arrived before their parents, held briefly and bounded, as Bitcoin Core's
//! orphan pool does.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use peerchain_primitives::{Encode, Transaction, TxId};

/// Most orphans held.
const MAX_ORPHANS: usize = 100;
/// Largest orphan held, in bytes: a peer cannot fill the pool with big transactions.
const MAX_ORPHAN_BYTES: usize = 100_000;
/// How long an orphan waits for its parent.
const ORPHAN_LIFETIME: Duration = Duration::from_secs(20 * 60);

#[derive(Debug, Default)]
pub(crate) struct OrphanPool {
    /// Orphan by id: the transaction, the parent it waits for, when it arrived.
    orphans: HashMap<TxId, (Transaction, TxId, Instant)>,
    /// Arrival order, oldest first, for eviction.
    order: VecDeque<TxId>,
}

impl OrphanPool {
    /// Holds `tx` until `parent` arrives; the oldest orphan makes room when the pool is full.
    pub(crate) fn insert(&mut self, tx: Transaction, parent: TxId) {
        if tx.encoded_len() > MAX_ORPHAN_BYTES {
            return;
        }
        let txid = tx.txid();
        if self.orphans.contains_key(&txid) {
            return;
        }
        while self.orphans.len() >= MAX_ORPHANS {
            let Some(oldest) = self.order.pop_front() else { break };
            self.orphans.remove(&oldest);
        }
        self.orphans.insert(txid, (tx, parent, Instant::now()));
        self.order.push_back(txid);
    }

    /// Removes and returns the orphans waiting for `parent`.
    pub(crate) fn take_children(&mut self, parent: &TxId) -> Vec<Transaction> {
        let children: Vec<TxId> = self.orphans.iter().filter(|(_, (_, p, _))| p == parent).map(|(id, _)| *id).collect();
        self.order.retain(|id| !children.contains(id));
        children.into_iter().filter_map(|id| self.orphans.remove(&id).map(|(tx, _, _)| tx)).collect()
    }

    /// Drops orphans that waited too long.
    pub(crate) fn expire(&mut self) {
        let now = Instant::now();
        self.orphans.retain(|_, (_, _, arrived)| now.duration_since(*arrived) < ORPHAN_LIFETIME);
        let orphans = &self.orphans;
        self.order.retain(|id| orphans.contains_key(id));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.orphans.len()
    }
}

#[cfg(test)]
mod tests {
    use peerchain_primitives::{Amount, KeyHash, OutPoint, TxIn, TxOut, Witness};

    use super::*;

    fn tx(n: u32) -> Transaction {
        Transaction {
            version: 1,
            inputs: vec![TxIn {
                prev_out: OutPoint::new(TxId([1; 32]), n),
                witness: Witness::Multisig { signatures: vec![] },
            }],
            outputs: vec![TxOut::coins_to(Amount::from_units(1), KeyHash::ZERO)],
            lock_time: 0,
        }
    }

    #[test]
    fn the_pool_is_bounded_and_hands_children_to_their_parent() {
        let mut pool = OrphanPool::default();
        for n in 0..(MAX_ORPHANS as u32 + 10) {
            pool.insert(tx(n), TxId([n as u8; 32]));
        }
        assert_eq!(pool.len(), MAX_ORPHANS, "the oldest make room");
        let children = pool.take_children(&TxId([(MAX_ORPHANS + 5) as u8; 32]));
        assert!(!children.is_empty());
        assert!(pool.take_children(&TxId([(MAX_ORPHANS + 5) as u8; 32])).is_empty(), "taken once");
    }
}
