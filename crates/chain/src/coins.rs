//! The coin cache: the UTXO set's and the transaction index's changes of recent blocks, kept
//! in memory and written back to the store in batches (Bitcoin Core's coins cache, with its
//! FRESH idea).
//!
//! Most outputs are spent soon after they are created; one created and spent between two
//! write-backs never touches the disk. A write-back is one store transaction in key order,
//! so that each B-tree page of these random-keyed tables is rewritten once per write-back
//! rather than once per block.
//! Until it happens, the store's UTXO set is that of the *coins tip*, and a crash costs only
//! the replay of the blocks after it (their data and undo data are stored with them).

use std::collections::HashMap;
use std::hash::Hash;

use peerchain_consensus::{BlockEffects, UtxoView, ViewError};
use peerchain_primitives::{Block, Coin, OutPoint, TxId};
use peerchain_store::TxLocation;

/// What an overlay knows of a key whose value differs from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry<V> {
    /// The value, or `None` when it was removed.
    value: Option<V>,
    /// The store does not hold the key: when it is removed, the entry can simply go.
    fresh: bool,
}

/// Changes to one store table since the last write-back, with change sets that can be
/// abandoned.
#[derive(Debug)]
pub(crate) struct Overlay<K, V> {
    entries: HashMap<K, Entry<V>>,
    /// While a change set is open: each touched key's entry before its first change, to put
    /// back if the change set is abandoned.
    journal: Option<Vec<(K, Option<Entry<V>>)>>,
}

impl<K, V> Default for Overlay<K, V> {
    fn default() -> Self {
        Self { entries: HashMap::new(), journal: None }
    }
}

impl<K: Hash + Eq + Copy, V: Clone> Overlay<K, V> {
    /// The value of `key` as of the chain's tip: the overlay's if it changed it since the last
    /// write-back, else what `stored` reads from the store.
    pub(crate) fn get_or<E>(&self, key: &K, stored: impl FnOnce() -> Result<Option<V>, E>) -> Result<Option<V>, E> {
        match self.entries.get(key) {
            Some(entry) => Ok(entry.value.clone()),
            None => stored(),
        }
    }

    /// How many keys differ from the store.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// About how much memory the overlay holds (its slots; values with heap parts, such as
    /// locks with many keys, take more, which the limit's margin absorbs).
    fn bytes(&self) -> usize {
        self.entries.capacity() * (std::mem::size_of::<(K, Entry<V>)>() + 8)
    }

    fn remember(&mut self, key: &K) {
        if let Some(journal) = &mut self.journal {
            journal.push((*key, self.entries.get(key).cloned()));
        }
    }

    /// Sets a key that the chain state does not hold now.
    pub(crate) fn add(&mut self, key: K, value: V) {
        self.remember(&key);
        match self.entries.get_mut(&key) {
            // A removal not yet written back is undone: the store still holds the key (or
            // holds an older value under it), so the entry stays not fresh.
            Some(entry) => entry.value = Some(value),
            // Correctness: no entry means the store does not hold the key either. Output and
            // transaction ids are unique on a chain (coinbases commit to their height, other
            // transactions spend outputs that exist once), so a new one is never stored
            // already; a restored one was removed by an earlier write-back, or it would have
            // an entry.
            None => {
                self.entries.insert(key, Entry { value: Some(value), fresh: true });
            }
        }
    }

    /// Removes a key that the chain state holds now.
    pub(crate) fn remove(&mut self, key: &K) {
        self.remember(key);
        match self.entries.get_mut(key) {
            Some(Entry { fresh: true, .. }) => {
                self.entries.remove(key);
            }
            Some(entry) => entry.value = None,
            None => {
                self.entries.insert(*key, Entry { value: None, fresh: false });
            }
        }
    }

    fn begin(&mut self) {
        self.journal = Some(Vec::new());
    }

    fn commit(&mut self) {
        self.journal = None;
    }

    fn rollback(&mut self) {
        let Some(journal) = self.journal.take() else { return };
        for (key, before) in journal.into_iter().rev() {
            match before {
                Some(entry) => self.entries.insert(key, entry),
                None => self.entries.remove(&key),
            };
        }
    }

    /// The changes to write back, sorted by `order` (the store's key order): `None` removes
    /// the key. Fresh removed keys never reach here (they are forgotten when removed).
    pub(crate) fn changes<O: Ord>(&self, order: impl Fn(&K) -> O) -> Vec<(&K, Option<&V>)> {
        let mut changes: Vec<(&K, Option<&V>)> =
            self.entries.iter().map(|(key, entry)| (key, entry.value.as_ref())).collect();
        changes.sort_unstable_by_key(|(key, _)| order(key));
        changes
    }

    fn clear(&mut self) {
        self.entries = HashMap::new();
        self.journal = None;
    }
}

/// The UTXO set's and the transaction index's changes since the store's coins tip.
#[derive(Debug, Default)]
pub(crate) struct CoinCache {
    pub(crate) coins: Overlay<OutPoint, Coin>,
    pub(crate) txs: Overlay<TxId, TxLocation>,
}

impl CoinCache {
    /// About how much memory the cache holds.
    pub(crate) fn bytes(&self) -> usize {
        self.coins.bytes() + self.txs.bytes()
    }

    /// Applies what connecting a block at `height` changes.
    pub(crate) fn connect(&mut self, effects: &BlockEffects, height: u32) {
        self.coins.entries.reserve(effects.created.len());
        self.txs.entries.reserve(effects.txids.len());
        for (outpoint, _) in &effects.spent {
            self.coins.remove(outpoint);
        }
        for (outpoint, coin) in &effects.created {
            self.coins.add(*outpoint, coin.clone());
        }
        for (position, txid) in effects.txids.iter().enumerate() {
            self.txs.add(*txid, TxLocation { height, position: position as u32 });
        }
    }

    /// Undoes the tip block `block`, restoring the outputs it spent (its undo data).
    pub(crate) fn disconnect(&mut self, block: &Block, spent: Vec<(OutPoint, Coin)>) {
        for tx in &block.transactions {
            let txid = tx.txid();
            for index in 0..tx.outputs.len() {
                self.coins.remove(&OutPoint::new(txid, index as u32));
            }
            self.txs.remove(&txid);
        }
        for (outpoint, coin) in spent {
            self.coins.add(outpoint, coin);
        }
    }

    /// Opens a change set: changes from now on can be abandoned together.
    pub(crate) fn begin(&mut self) {
        self.coins.begin();
        self.txs.begin();
    }

    /// Keeps the changes of the open change set.
    pub(crate) fn commit(&mut self) {
        self.coins.commit();
        self.txs.commit();
    }

    /// Abandons the changes of the open change set.
    pub(crate) fn rollback(&mut self) {
        self.coins.rollback();
        self.txs.rollback();
    }

    /// Forgets everything, once it is written back.
    pub(crate) fn clear(&mut self) {
        self.coins.clear();
        self.txs.clear();
    }
}

/// The UTXO set as of the chain's tip: the cache over the store.
pub(crate) struct CachedView<'a, V> {
    pub(crate) cache: &'a CoinCache,
    pub(crate) store: V,
}

impl<V: UtxoView> UtxoView for CachedView<'_, V> {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, ViewError> {
        self.cache.coins.get_or(outpoint, || self.store.coin(outpoint))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use peerchain_primitives::{Amount, KeyHash, TxId, TxOut};
    use proptest::prelude::*;

    use super::*;

    fn outpoint(n: u8) -> OutPoint {
        OutPoint::new(TxId([n; 32]), u32::from(n))
    }

    fn coin(value: u64) -> Coin {
        Coin { output: TxOut::coins_to(Amount::from_units(value), KeyHash([7; 32])), height: 1, is_coinbase: false }
    }

    /// The store's set after writing back `cache` over `stored`.
    fn written_back(mut stored: BTreeMap<OutPoint, Coin>, cache: &Overlay<OutPoint, Coin>) -> BTreeMap<OutPoint, Coin> {
        for (outpoint, coin) in cache.changes(OutPoint::to_key) {
            match coin {
                Some(coin) => stored.insert(*outpoint, coin.clone()),
                None => stored.remove(outpoint),
            };
        }
        stored
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u8, u64),
        Remove(u8),
        Begin,
        Commit,
        Rollback,
        WriteBack,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..12, 1u64..1000).prop_map(|(n, v)| Op::Add(n, v)),
            4 => (0u8..12).prop_map(Op::Remove),
            1 => Just(Op::Begin),
            1 => Just(Op::Commit),
            1 => Just(Op::Rollback),
            1 => Just(Op::WriteBack),
        ]
    }

    proptest! {
        /// Whatever sequence of valid adds and removes, change sets and write-backs, the
        /// cache over the store shows exactly the set a plain map would hold, and a
        /// write-back leaves exactly that set in the store.
        #[test]
        fn the_cache_over_the_store_is_the_plain_set(ops in proptest::collection::vec(op(), 0..80)) {
            let mut stored: BTreeMap<OutPoint, Coin> = BTreeMap::new();
            let mut cache = CoinCache::default();
            let mut expected: BTreeMap<OutPoint, Coin> = BTreeMap::new();
            let mut at_begin: Option<BTreeMap<OutPoint, Coin>> = None;
            for op in ops {
                match op {
                    // Only valid changes: an output is added when absent and removed when present.
                    Op::Add(n, v) if !expected.contains_key(&outpoint(n)) => {
                        cache.coins.add(outpoint(n), coin(v));
                        expected.insert(outpoint(n), coin(v));
                    }
                    Op::Remove(n) if expected.contains_key(&outpoint(n)) => {
                        cache.coins.remove(&outpoint(n));
                        expected.remove(&outpoint(n));
                    }
                    Op::Add(..) | Op::Remove(_) => {}
                    Op::Begin if at_begin.is_none() => {
                        cache.begin();
                        at_begin = Some(expected.clone());
                    }
                    Op::Commit if at_begin.is_some() => {
                        cache.commit();
                        at_begin = None;
                    }
                    Op::Rollback if at_begin.is_some() => {
                        cache.rollback();
                        expected = at_begin.take().unwrap();
                    }
                    Op::WriteBack if at_begin.is_none() => {
                        stored = written_back(stored, &cache.coins);
                        cache.clear();
                    }
                    Op::Begin | Op::Commit | Op::Rollback | Op::WriteBack => {}
                }
                let view = CachedView { cache: &cache, store: MemoryStore(&stored) };
                for n in 0..12 {
                    prop_assert_eq!(view.coin(&outpoint(n)).unwrap(), expected.get(&outpoint(n)).cloned());
                }
            }
            if at_begin.is_none() {
                prop_assert_eq!(written_back(stored, &cache.coins), expected);
            }
        }
    }

    struct MemoryStore<'a>(&'a BTreeMap<OutPoint, Coin>);

    impl UtxoView for MemoryStore<'_> {
        fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, ViewError> {
            Ok(self.0.get(outpoint).cloned())
        }
    }

    #[test]
    fn an_output_created_and_spent_between_write_backs_never_reaches_the_store() {
        let mut cache = Overlay::<OutPoint, Coin>::default();
        cache.add(outpoint(1), coin(5));
        cache.remove(&outpoint(1));
        assert_eq!(cache.len(), 0);
        // One from the store, spent: a removal to write back.
        cache.remove(&outpoint(2));
        assert_eq!(cache.changes(OutPoint::to_key), vec![(&outpoint(2), None)]);
    }
}
