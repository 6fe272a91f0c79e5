//! The explorer's address index, kept in `addresses.redb` beside the chain store: for each
//! address, the main-chain transactions that paid it or spent from it, with the coins moved.
//!
//! The chain itself never needs it (Bitcoin Core has none either); it is derived from the
//! chain by a follower off the block-connecting path, so that it costs block validation
//! nothing. Like the market index it remembers the hash of every block it read, finds the
//! fork after a reorganisation by them, and undoes the blocks above it; after a crash it
//! reads again the blocks whose commits were not yet durable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use peerchain_primitives::{AssetId, Block, BlockHash, KeyHash, Lock, OutPoint, TxId, TxOut};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::Error;

/// The hash of each block read, by height.
const SCANNED: TableDefinition<u32, &[u8; 32]> = TableDefinition::new("addresses_scanned_v1");
/// Each block's addresses, by height, so that undoing a block finds its rows.
const TOUCHED: TableDefinition<u32, &[u8]> = TableDefinition::new("addresses_touched_v1");
/// address ‖ height ‖ position in the block → txid ‖ coins received ‖ coins sent.
const HISTORY: TableDefinition<&[u8; 40], &[u8; 48]> = TableDefinition::new("addresses_history_v1");

/// One transaction of an address's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressTx {
    /// The transaction.
    pub txid: TxId,
    /// Its block's height.
    pub height: u32,
    /// Coin base units paid to the address.
    pub received: u64,
    /// Coin base units spent from the address.
    pub sent: u64,
}

/// What the index knows of an address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressSummary {
    /// Coin base units received, over its whole history.
    pub received: u64,
    /// Coin base units spent.
    pub sent: u64,
    /// Transactions that touched it.
    pub tx_count: u64,
    /// The latest transactions, newest first.
    pub latest: Vec<AddressTx>,
}

impl AddressSummary {
    /// Coins the address holds on the main chain.
    pub fn balance(&self) -> u64 {
        self.received.saturating_sub(self.sent)
    }
}

/// Blocks being read into the index in one commit (see [`AddressIndex::write_batch`]).
pub struct Batch<'a> {
    history: redb::Table<'a, &'static [u8; 40], &'static [u8; 48]>,
    touched: redb::Table<'a, u32, &'static [u8]>,
    scanned: redb::Table<'a, u32, &'static [u8; 32]>,
}

impl Batch<'_> {
    /// Reads the main-chain block at `height`, whose inputs spend what `spent` says.
    pub fn add(
        &mut self,
        block: &Block,
        height: u32,
        spent: &impl Fn(&OutPoint) -> Option<TxOut>,
    ) -> Result<(), Error> {
        let mut touched = Vec::new();
        for (position, tx) in block.transactions.iter().enumerate() {
            let txid = tx.txid();
            for (address, (received, sent)) in moves(tx, spent) {
                let mut value = [0u8; 48];
                value[..32].copy_from_slice(&txid.0);
                value[32..40].copy_from_slice(&received.to_be_bytes());
                value[40..].copy_from_slice(&sent.to_be_bytes());
                self.history.insert(&history_key(&address, height, position as u32), &value)?;
                touched.extend_from_slice(&address.0);
            }
        }
        self.touched.insert(height, &touched[..])?;
        self.scanned.insert(height, &block.hash().0)?;
        Ok(())
    }
}

/// The address index (see the module's documentation). Reads and the follower's writes may
/// come from different threads.
pub struct AddressIndex {
    path: PathBuf,
    db: Database,
}

impl std::fmt::Debug for AddressIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressIndex").field("path", &self.path).finish()
    }
}

fn history_key(address: &KeyHash, height: u32, position: u32) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(&address.0);
    key[32..36].copy_from_slice(&height.to_be_bytes());
    key[36..].copy_from_slice(&position.to_be_bytes());
    key
}

/// Coins each address received and sent in one transaction: outputs locked to a key are paid
/// to its address; inputs spending them are sent from it. Tokens touch an address with no
/// coins moved.
fn moves(
    tx: &peerchain_primitives::Transaction,
    spent: &impl Fn(&OutPoint) -> Option<TxOut>,
) -> BTreeMap<KeyHash, (u64, u64)> {
    let coins = |output: &TxOut| if output.asset == AssetId::Coin { output.amount.units() } else { 0 };
    let mut moved: BTreeMap<KeyHash, (u64, u64)> = BTreeMap::new();
    if !tx.is_coinbase() {
        for input in &tx.inputs {
            if let Some(output) = spent(&input.prev_out)
                && let Lock::Key(address) = output.lock
            {
                moved.entry(address).or_default().1 += coins(&output);
            }
        }
    }
    for output in &tx.outputs {
        if let Lock::Key(address) = output.lock {
            moved.entry(address).or_default().0 += coins(output);
        }
    }
    moved
}

impl AddressIndex {
    /// Where it lives in a data directory.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("addresses.redb")
    }

    /// Opens (or creates) the index at `path`.
    pub fn open(path: &Path) -> Result<AddressIndex, Error> {
        let db = Database::create(path)?;
        let write = db.begin_write()?;
        write.open_table(SCANNED)?;
        write.open_table(TOUCHED)?;
        write.open_table(HISTORY)?;
        write.commit()?;
        Ok(AddressIndex { path: path.to_owned(), db })
    }

    /// The last block read: its height and hash.
    pub fn scan_tip(&self) -> Result<Option<(u32, BlockHash)>, Error> {
        let read = self.db.begin_read()?;
        let scanned = read.open_table(SCANNED)?;
        Ok(scanned.last()?.map(|(height, hash)| (height.value(), BlockHash(*hash.value()))))
    }

    /// The hash of the block read at `height`.
    pub fn scanned_hash(&self, height: u32) -> Result<Option<BlockHash>, Error> {
        let read = self.db.begin_read()?;
        let scanned = read.open_table(SCANNED)?;
        Ok(scanned.get(height)?.map(|hash| BlockHash(*hash.value())))
    }

    /// Reads the main-chain block at `height`, whose inputs spend what `spent` says. Without
    /// `durable` the commit is atomic but not flushed: a crash may lose it, and the block is
    /// read again.
    pub fn connect_block(
        &self,
        block: &Block,
        height: u32,
        spent: &impl Fn(&OutPoint) -> Option<TxOut>,
        durable: bool,
    ) -> Result<(), Error> {
        self.write_batch(durable, |batch| batch.add(block, height, spent))
    }

    /// Reads several blocks in one commit (what `add` is given, in height order): a commit per
    /// block made a syncing node's disk the bottleneck.
    pub fn write_batch<E: From<Error>>(
        &self,
        durable: bool,
        fill: impl FnOnce(&mut Batch<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut write = self.db.begin_write().map_err(Error::from)?;
        if !durable {
            write.set_durability(Durability::None).map_err(Error::from)?;
        }
        {
            let mut batch = Batch {
                history: write.open_table(HISTORY).map_err(Error::from)?,
                touched: write.open_table(TOUCHED).map_err(Error::from)?,
                scanned: write.open_table(SCANNED).map_err(Error::from)?,
            };
            fill(&mut batch)?;
        }
        write.commit().map_err(Error::from)?;
        Ok(())
    }

    /// Undoes every block above `height` (none: everything), after a reorganisation.
    pub fn rewind_to(&self, height: Option<u32>) -> Result<(), Error> {
        let from = height.map_or(0, |h| h + 1);
        let write = self.db.begin_write()?;
        {
            let mut touched = write.open_table(TOUCHED)?;
            let mut history = write.open_table(HISTORY)?;
            let undone: Vec<(u32, Vec<u8>)> = touched
                .range(from..)?
                .map(|entry| entry.map(|(h, addresses)| (h.value(), addresses.value().to_vec())))
                .collect::<Result<_, _>>()?;
            for (h, addresses) in undone {
                for address in addresses.chunks_exact(32) {
                    let address = KeyHash(address.try_into().expect("32 bytes"));
                    let (low, high) = (history_key(&address, h, 0), history_key(&address, h, u32::MAX));
                    history.retain_in::<&[u8; 40], _>(&low..=&high, |_, _| false)?;
                }
            }
            touched.retain_in(from.., |_, _| false)?;
            write.open_table(SCANNED)?.retain_in(from.., |_, _| false)?;
        }
        write.commit()?;
        Ok(())
    }

    /// What the index holds for `address`: totals over its whole history, and its latest
    /// `limit` transactions.
    pub fn summary(&self, address: &KeyHash, limit: usize) -> Result<AddressSummary, Error> {
        let read = self.db.begin_read()?;
        let history = read.open_table(HISTORY)?;
        let (low, high) = (history_key(address, 0, 0), history_key(address, u32::MAX, u32::MAX));
        let mut summary = AddressSummary::default();
        // Newest first: the totals need every row, the list only the first `limit`.
        for entry in history.range::<&[u8; 40]>(&low..=&high)?.rev() {
            let (key, value) = entry?;
            let (key, value) = (key.value(), value.value());
            let received = u64::from_be_bytes(value[32..40].try_into().expect("8 bytes"));
            let sent = u64::from_be_bytes(value[40..].try_into().expect("8 bytes"));
            summary.received = summary.received.saturating_add(received);
            summary.sent = summary.sent.saturating_add(sent);
            summary.tx_count += 1;
            if summary.latest.len() < limit {
                summary.latest.push(AddressTx {
                    txid: TxId(value[..32].try_into().expect("32 bytes")),
                    height: u32::from_be_bytes(key[32..36].try_into().expect("4 bytes")),
                    received,
                    sent,
                });
            }
        }
        Ok(summary)
    }

    /// Makes every commit so far durable (the last blocks may have been read without).
    pub fn flush(&self) -> Result<(), Error> {
        self.db.begin_write()?.commit()?;
        Ok(())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerchain_primitives::{Amount, BlockHeader, CompactTarget, Transaction, TxIn, Witness};

    fn pay(to: KeyHash, units: u64) -> TxOut {
        TxOut { asset: AssetId::Coin, amount: Amount::from_units(units), lock: Lock::Key(to) }
    }

    fn coinbase(height: u32, outputs: Vec<TxOut>) -> Transaction {
        let mut tx = peerchain_consensus::coinbase_transaction(height, Amount::ZERO, KeyHash([0; 32]), vec![]);
        tx.outputs = outputs;
        tx
    }

    fn block(prev: BlockHash, height: u32, transactions: Vec<Transaction>) -> Block {
        let header = BlockHeader {
            version: 1,
            prev_hash: prev,
            merkle_root: Default::default(),
            time: u64::from(height),
            bits: CompactTarget(0x207fffff),
            nonce: 0,
        };
        Block { header, transactions }
    }

    #[test]
    fn history_and_balance_follow_the_main_chain_through_a_reorganisation() {
        let dir = tempfile::tempdir().unwrap();
        let index = AddressIndex::open(&AddressIndex::path_in(dir.path())).unwrap();
        let (alice, bob) = (KeyHash([1; 32]), KeyHash([2; 32]));
        let reward = coinbase(0, vec![pay(alice, 5_000)]);
        let mined = OutPoint::new(reward.txid(), 0);
        let b0 = block(BlockHash([0; 32]), 0, vec![reward]);
        let no_spends = |_: &OutPoint| None;
        index.connect_block(&b0, 0, &no_spends, true).unwrap();
        let payment = Transaction {
            version: 1,
            inputs: vec![TxIn { prev_out: mined, witness: Witness::Multisig { signatures: vec![] } }],
            outputs: vec![pay(bob, 3_000), pay(alice, 1_900)],
            lock_time: 0,
        };
        let b1 = block(b0.hash(), 1, vec![coinbase(1, vec![pay(bob, 50)]), payment.clone()]);
        let spends = |o: &OutPoint| (*o == mined).then(|| pay(alice, 5_000));
        index.connect_block(&b1, 1, &spends, false).unwrap();

        let a = index.summary(&alice, 10).unwrap();
        assert_eq!((a.received, a.sent, a.balance(), a.tx_count), (6_900, 5_000, 1_900, 2));
        assert_eq!(a.latest[0].txid, payment.txid(), "newest first");
        assert_eq!((a.latest[0].received, a.latest[0].sent, a.latest[0].height), (1_900, 5_000, 1));
        let b = index.summary(&bob, 1).unwrap();
        assert_eq!((b.balance(), b.tx_count, b.latest.len()), (3_050, 2, 1), "totals over all, list up to the limit");
        assert_eq!(index.scan_tip().unwrap(), Some((1, b1.hash())));

        // Block 1 leaves the main chain: its rows go, block 0's stay.
        index.rewind_to(Some(0)).unwrap();
        assert_eq!(index.summary(&alice, 10).unwrap().balance(), 5_000);
        assert_eq!(index.summary(&bob, 10).unwrap(), AddressSummary::default());
        assert_eq!(index.scan_tip().unwrap(), Some((0, b0.hash())));
        assert_eq!(index.scanned_hash(1).unwrap(), None);

        // Reopened, it holds what was committed.
        drop(index);
        let index = AddressIndex::open(&AddressIndex::path_in(dir.path())).unwrap();
        assert_eq!(index.summary(&alice, 10).unwrap().tx_count, 1);
        index.rewind_to(None).unwrap();
        assert_eq!(index.scan_tip().unwrap(), None);
        assert_eq!(index.summary(&alice, 10).unwrap().tx_count, 0);
    }
}
