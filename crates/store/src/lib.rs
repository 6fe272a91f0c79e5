//! The chain store: block index, blocks, undo data, UTXO set, main-chain and transaction
//! indexes, all in one redb database.
//!
//! This is the only crate that opens redb. It owns the storage layout (see [`tables`]) and
//! applies what consensus computed; it must never decide what is valid. Every change goes
//! through one [`Writer`] inside one write transaction, so a block connected or disconnected
//! (or a whole reorganisation) is applied entirely or not at all, whatever moment the process
//! dies at.
//!
//! The UTXO set and the transaction index are written back in batches: the chain keeps recent
//! changes in its coin cache and hands them to [`Writer::write_back`] together with the block
//! they bring the tables to, the *coins tip*. Blocks connected after it have their data,
//! undo data and main-chain rows stored; after a crash the chain connects them again from the
//! coins tip.

mod addresses;
mod tables;

pub use addresses::{AddressIndex, AddressSummary, AddressTx, Batch as AddressBatch};

use std::path::Path;

use peerchain_consensus::{BlockEffects, Params, UtxoView, ViewError};
use peerchain_primitives::encode::{Reader as ByteReader, put_varint};
use peerchain_primitives::{
    Block, BlockHash, BlockHeader, Coin, Decode, DecodeError, Encode, OutPoint, Transaction, TxId, Work,
};
use redb::{Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table};

use crate::tables::*;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// redb failed: I/O, a full disk, or a damaged file.
    #[error("database error: {0}")]
    Database(#[from] redb::Error),
    /// A stored value does not decode: the file is damaged.
    #[error("corrupt {what} in the chain store: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The store belongs to another network.
    #[error(
        "this data directory holds the chain with genesis {found}, not {expected}; use the matching --network or another --data-dir"
    )]
    WrongNetwork {
        /// This network's genesis.
        expected: BlockHash,
        /// The store's genesis.
        found: BlockHash,
    },
    /// The store was written by a newer or older layout.
    #[error("chain store format {found} is not supported (this version reads format {expected})")]
    UnsupportedFormat {
        /// The supported version.
        expected: u32,
        /// The store's version.
        found: u32,
    },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Database(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

fn corrupt(what: &'static str) -> impl FnOnce(DecodeError) -> Error {
    move |e| Error::Corrupt { what, detail: e.to_string() }
}

/// A known header and what is known about its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// The header.
    pub header: BlockHeader,
    /// Its height.
    pub height: u32,
    /// Work of the chain up to and including it.
    pub total_work: Work,
    /// Whether the full block is stored.
    pub has_data: bool,
    /// Whether it (or an ancestor) failed validation: never retried.
    pub invalid: bool,
}

impl IndexEntry {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.header.encode_to(&mut out);
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.total_work.to_be_bytes());
        out.push(u8::from(self.has_data) | (u8::from(self.invalid) << 1));
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = ByteReader::new(bytes);
        let header = BlockHeader::decode(&mut reader)?;
        let height = reader.u32("height")?;
        let total_work = Work::from_be_bytes(reader.array("total work")?);
        let flags = reader.u8("flags")?;
        reader.finish()?;
        if flags > 3 {
            return Err(DecodeError::UnknownTag { what: "index flags", tag: flags });
        }
        Ok(Self { header, height, total_work, has_data: flags & 1 != 0, invalid: flags & 2 != 0 })
    }
}

/// Where a transaction sits in the main chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// The block's height.
    pub height: u32,
    /// The transaction's position in the block.
    pub position: u32,
}

impl TxLocation {
    /// Its row in the transaction index: height ‖ position, both little-endian.
    fn to_row(self) -> [u8; 8] {
        let mut row = [0u8; 8];
        row[..4].copy_from_slice(&self.height.to_le_bytes());
        row[4..].copy_from_slice(&self.position.to_le_bytes());
        row
    }

    fn from_row(row: [u8; 8]) -> Self {
        let [h0, h1, h2, h3, p0, p1, p2, p3] = row;
        TxLocation { height: u32::from_le_bytes([h0, h1, h2, h3]), position: u32::from_le_bytes([p0, p1, p2, p3]) }
    }
}

/// The chain store.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the store at `path` for the network of `params`. A new store starts
    /// with the genesis block as its tip; an existing one must hold that network's chain.
    pub fn open(path: &Path, params: &Params) -> Result<Store, Error> {
        let db = Database::builder().set_cache_size(256 << 20).create(path)?;
        let store = Store { db };
        let genesis = params.genesis_block();
        let genesis_hash = genesis.hash();
        let txn = store.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let existing = meta.get(KEY_GENESIS)?.map(|v| v.value().to_vec());
            match existing {
                Some(found) => {
                    let found = BlockHash::from_bytes(&found).map_err(corrupt("genesis hash"))?;
                    if found != genesis_hash {
                        return Err(Error::WrongNetwork { expected: genesis_hash, found });
                    }
                    let version = meta.get(KEY_FORMAT)?.map(|v| v.value().to_vec()).unwrap_or_default();
                    let version = u32::from_bytes(&version).map_err(corrupt("format version"))?;
                    if version != FORMAT_VERSION {
                        return Err(Error::UnsupportedFormat { expected: FORMAT_VERSION, found: version });
                    }
                }
                None => {
                    meta.insert(KEY_FORMAT, &FORMAT_VERSION.to_le_bytes()[..])?;
                    meta.insert(KEY_GENESIS, &genesis_hash.0[..])?;
                    meta.insert(KEY_TIP, &genesis_hash.0[..])?;
                    let entry = IndexEntry {
                        header: genesis.header,
                        height: 0,
                        total_work: genesis.header.bits.expand().map(|t| t.work()).unwrap_or_default(),
                        has_data: true,
                        invalid: false,
                    };
                    txn.open_table(BLOCK_INDEX)?.insert(&genesis_hash.0, &entry.encode()[..])?;
                    txn.open_table(BLOCKS)?.insert(&genesis_hash.0, &genesis.to_bytes()[..])?;
                    txn.open_table(MAIN_CHAIN)?.insert(0, &genesis_hash.0)?;
                    // The genesis coinbase pays nobody and, as in Bitcoin, is not spendable:
                    // it never enters the UTXO set.
                }
            }
            // Create every table so that readers never meet a missing one.
            txn.open_table(BLOCK_INDEX)?;
            txn.open_table(BLOCKS)?;
            txn.open_table(UNDO)?;
            txn.open_table(UTXOS)?;
            txn.open_table(MAIN_CHAIN)?;
            txn.open_table(TX_INDEX)?;
            txn.open_table(MEMPOOL)?;
        }
        txn.commit()?;
        Ok(store)
    }

    /// Rewrites the file without its free pages; returns whether anything was reclaimed.
    /// Needs exclusive access (no open readers or writers).
    pub fn compact(&mut self) -> Result<bool, Error> {
        self.db.compact().map_err(|e| Error::Database(e.into()))
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<Reader, Error> {
        let txn = self.db.begin_read()?;
        Ok(Reader {
            meta: txn.open_table(META)?,
            index: txn.open_table(BLOCK_INDEX)?,
            blocks: txn.open_table(BLOCKS)?,
            utxos: txn.open_table(UTXOS)?,
            main_chain: txn.open_table(MAIN_CHAIN)?,
            tx_index: txn.open_table(TX_INDEX)?,
            mempool: txn.open_table(MEMPOOL)?,
            undo: txn.open_table(UNDO)?,
        })
    }

    /// Runs `apply` in one write transaction and commits it if `apply` succeeds; if it fails,
    /// nothing it did is kept. A `durable` commit is on disk when this returns; a non-durable
    /// one is atomic too but may be lost (as a whole) in a crash until the next durable commit.
    pub fn write<R, E: From<Error>>(
        &self,
        durable: bool,
        apply: impl FnOnce(&mut Writer<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut txn = self.db.begin_write().map_err(Error::from)?;
        txn.set_durability(if durable { Durability::Immediate } else { Durability::None })
            .map_err(|e| Error::Database(e.into()))?;
        let result = {
            let mut writer = Writer {
                meta: txn.open_table(META).map_err(Error::from)?,
                index: txn.open_table(BLOCK_INDEX).map_err(Error::from)?,
                blocks: txn.open_table(BLOCKS).map_err(Error::from)?,
                undo: txn.open_table(UNDO).map_err(Error::from)?,
                utxos: txn.open_table(UTXOS).map_err(Error::from)?,
                main_chain: txn.open_table(MAIN_CHAIN).map_err(Error::from)?,
                tx_index: txn.open_table(TX_INDEX).map_err(Error::from)?,
                mempool: txn.open_table(MEMPOOL).map_err(Error::from)?,
            };
            apply(&mut writer)
        };
        match result {
            Ok(value) => {
                txn.commit().map_err(Error::from)?;
                Ok(value)
            }
            Err(e) => {
                txn.abort().map_err(Error::from)?;
                Err(e)
            }
        }
    }
}

fn get_tip(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<BlockHash, Error> {
    let bytes = meta.get(KEY_TIP)?.ok_or(Error::Corrupt { what: "tip", detail: "missing".into() })?;
    BlockHash::from_bytes(bytes.value()).map_err(corrupt("tip"))
}

fn get_entry(
    index: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    hash: &BlockHash,
) -> Result<Option<IndexEntry>, Error> {
    match index.get(&hash.0)? {
        Some(bytes) => Ok(Some(IndexEntry::decode(bytes.value()).map_err(corrupt("block index entry"))?)),
        None => Ok(None),
    }
}

fn get_block(
    blocks: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    hash: &BlockHash,
) -> Result<Option<Block>, Error> {
    match blocks.get(&hash.0)? {
        Some(bytes) => Ok(Some(Block::from_bytes(bytes.value()).map_err(corrupt("block"))?)),
        None => Ok(None),
    }
}

fn get_coin(
    utxos: &impl ReadableTable<&'static [u8; 36], &'static [u8]>,
    outpoint: &OutPoint,
) -> Result<Option<Coin>, Error> {
    match utxos.get(&outpoint.to_key())? {
        Some(bytes) => Ok(Some(Coin::from_bytes(bytes.value()).map_err(corrupt("coin"))?)),
        None => Ok(None),
    }
}

fn get_main_hash(
    main_chain: &impl ReadableTable<u32, &'static [u8; 32]>,
    height: u32,
) -> Result<Option<BlockHash>, Error> {
    Ok(main_chain.get(height)?.map(|v| BlockHash(*v.value())))
}

fn get_tx_location(
    tx_index: &impl ReadableTable<&'static [u8; 32], [u8; 8]>,
    txid: &TxId,
) -> Result<Option<TxLocation>, Error> {
    Ok(tx_index.get(&txid.0)?.map(|v| TxLocation::from_row(v.value())))
}

/// A read-only snapshot of the store.
pub struct Reader {
    meta: ReadOnlyTable<&'static str, &'static [u8]>,
    index: ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    blocks: ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    utxos: ReadOnlyTable<&'static [u8; 36], &'static [u8]>,
    main_chain: ReadOnlyTable<u32, &'static [u8; 32]>,
    tx_index: ReadOnlyTable<&'static [u8; 32], [u8; 8]>,
    mempool: ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    undo: ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
}

impl Reader {
    /// The outputs a connected block spent that existed before it (its undo data), in
    /// spending order; none if the block was never connected.
    pub fn spent_by_block(&self, hash: &BlockHash) -> Result<Option<Vec<(OutPoint, Coin)>>, Error> {
        let Some(undo) = self.undo.get(&hash.0)? else { return Ok(None) };
        decode_undo(undo.value()).map(Some)
    }

    /// The block the stored UTXO set and transaction index reflect. The chain's tip may be
    /// ahead of it, by the blocks whose changes are still in the chain's coin cache.
    pub fn coins_tip(&self) -> Result<BlockHash, Error> {
        get_tip(&self.meta)
    }

    /// The index entry of a known header.
    pub fn entry(&self, hash: &BlockHash) -> Result<Option<IndexEntry>, Error> {
        get_entry(&self.index, hash)
    }

    /// Every index entry, in no particular order.
    pub fn all_entries(&self) -> Result<Vec<(BlockHash, IndexEntry)>, Error> {
        let mut out = Vec::with_capacity(self.index.len()? as usize);
        for item in self.index.iter()? {
            let (key, value) = item?;
            let entry = IndexEntry::decode(value.value()).map_err(corrupt("block index entry"))?;
            out.push((BlockHash(*key.value()), entry));
        }
        Ok(out)
    }

    /// A stored block.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, Error> {
        get_block(&self.blocks, hash)
    }

    /// A stored block's encoding, as it would be sent to a peer.
    pub fn block_bytes(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.blocks.get(&hash.0)?.map(|v| v.value().to_vec()))
    }

    /// An unspent output.
    pub fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, Error> {
        get_coin(&self.utxos, outpoint)
    }

    /// The main chain's block at `height`.
    pub fn main_hash(&self, height: u32) -> Result<Option<BlockHash>, Error> {
        get_main_hash(&self.main_chain, height)
    }

    /// Where a main-chain transaction is.
    pub fn tx_location(&self, txid: &TxId) -> Result<Option<TxLocation>, Error> {
        get_tx_location(&self.tx_index, txid)
    }

    /// How many unspent outputs there are.
    pub fn utxo_count(&self) -> Result<u64, Error> {
        Ok(self.utxos.len()?)
    }

    /// How many transactions the index holds.
    pub fn tx_index_count(&self) -> Result<u64, Error> {
        Ok(self.tx_index.len()?)
    }

    /// Calls `visit` with every unspent output, in outpoint order.
    pub fn for_each_utxo(&self, mut visit: impl FnMut(OutPoint, Coin) -> Result<(), Error>) -> Result<(), Error> {
        for item in self.utxos.iter()? {
            let (key, value) = item?;
            let key = key.value();
            let txid = TxId(key[..32].try_into().expect("36-byte key"));
            let index = u32::from_be_bytes(key[32..].try_into().expect("36-byte key"));
            let coin = Coin::from_bytes(value.value()).map_err(corrupt("coin"))?;
            visit(OutPoint::new(txid, index), coin)?;
        }
        Ok(())
    }

    /// Mempool transactions saved at the last shutdown; undecodable ones are skipped, since
    /// the mempool is only a cache.
    pub fn saved_mempool(&self) -> Result<Vec<Transaction>, Error> {
        let mut out = Vec::new();
        for item in self.mempool.iter()? {
            let (_, value) = item?;
            if let Ok(tx) = Transaction::from_bytes(value.value()) {
                out.push(tx);
            }
        }
        Ok(out)
    }
}

impl UtxoView for Reader {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, ViewError> {
        Reader::coin(self, outpoint).map_err(|e| ViewError(e.to_string()))
    }
}

/// The changes of one write transaction. Reads see the transaction's own writes.
pub struct Writer<'txn> {
    meta: Table<'txn, &'static str, &'static [u8]>,
    index: Table<'txn, &'static [u8; 32], &'static [u8]>,
    blocks: Table<'txn, &'static [u8; 32], &'static [u8]>,
    undo: Table<'txn, &'static [u8; 32], &'static [u8]>,
    utxos: Table<'txn, &'static [u8; 36], &'static [u8]>,
    main_chain: Table<'txn, u32, &'static [u8; 32]>,
    tx_index: Table<'txn, &'static [u8; 32], [u8; 8]>,
    mempool: Table<'txn, &'static [u8; 32], &'static [u8]>,
}

fn decode_undo(undo: &[u8]) -> Result<Vec<(OutPoint, Coin)>, Error> {
    let mut reader = ByteReader::new(undo);
    let count = reader.varint("undo count").map_err(corrupt("undo data"))?;
    let mut spent = Vec::with_capacity(count.min(1 << 20) as usize);
    for _ in 0..count {
        let outpoint = OutPoint::decode(&mut reader).map_err(corrupt("undo data"))?;
        let coin = Coin::decode(&mut reader).map_err(corrupt("undo data"))?;
        spent.push((outpoint, coin));
    }
    reader.finish().map_err(corrupt("undo data"))?;
    Ok(spent)
}

impl Writer<'_> {
    /// The index entry of a known header.
    pub fn entry(&self, hash: &BlockHash) -> Result<Option<IndexEntry>, Error> {
        get_entry(&self.index, hash)
    }

    /// A stored block.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, Error> {
        get_block(&self.blocks, hash)
    }

    /// An unspent output.
    pub fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, Error> {
        get_coin(&self.utxos, outpoint)
    }

    /// Records or updates a header's index entry.
    pub fn put_entry(&mut self, hash: &BlockHash, entry: &IndexEntry) -> Result<(), Error> {
        self.index.insert(&hash.0, &entry.encode()[..])?;
        Ok(())
    }

    /// Stores a block's data.
    pub fn put_block(&mut self, hash: &BlockHash, block_bytes: &[u8]) -> Result<(), Error> {
        self.blocks.insert(&hash.0, block_bytes)?;
        Ok(())
    }

    /// Records block `hash` at `height`, whose effects consensus computed, as connected: its
    /// undo data and its main-chain row. Its UTXO and transaction-index changes are the coin
    /// cache's, written back later with [`Writer::write_back`].
    pub fn connect(&mut self, hash: &BlockHash, height: u32, effects: &BlockEffects) -> Result<(), Error> {
        let mut undo = Vec::with_capacity(effects.spent.len() * 96);
        put_varint(&mut undo, effects.spent.len() as u64);
        for (outpoint, coin) in &effects.spent {
            outpoint.encode_to(&mut undo);
            coin.encode_to(&mut undo);
        }
        self.undo.insert(&hash.0, &undo[..])?;
        self.main_chain.insert(height, &hash.0)?;
        Ok(())
    }

    /// Records the tip block `block` at `height` as disconnected: removes its main-chain row
    /// and returns the outputs it spent (from its undo data), for the coin cache to restore. The
    /// undo data stays: until the coin cache is written back, the stored UTXO set may still
    /// be that of a descendant, which a restart must be able to disconnect again.
    pub fn disconnect(&mut self, block: &Block, height: u32) -> Result<Vec<(OutPoint, Coin)>, Error> {
        let hash = block.hash();
        let undo = self
            .undo
            .get(&hash.0)?
            .ok_or(Error::Corrupt { what: "undo data", detail: format!("missing for block {hash}") })?
            .value()
            .to_vec();
        let spent = decode_undo(&undo)?;
        // After a crash, blocks connected since the last write-back are disconnected again,
        // and the row may already be another branch's.
        if get_main_hash(&self.main_chain, height)? == Some(hash) {
            self.main_chain.remove(height)?;
        }
        Ok(spent)
    }

    /// Removes main-chain rows above `height`: left by blocks connected before a crash whose
    /// branch was not restored.
    pub fn truncate_main_chain(&mut self, height: u32) -> Result<(), Error> {
        loop {
            let last = self.main_chain.last()?.map(|(key, _)| key.value());
            match last {
                Some(top) if top > height => {
                    self.main_chain.remove(top)?;
                }
                _ => return Ok(()),
            }
        }
    }

    /// Writes back changes to the UTXO set and the transaction index (`None` removes a
    /// row) and records that they now reflect block `tip`. Changes in key order touch each
    /// B-tree page once.
    pub fn write_back<'a>(
        &mut self,
        coins: impl IntoIterator<Item = (&'a OutPoint, Option<&'a Coin>)>,
        txs: impl IntoIterator<Item = (&'a TxId, Option<&'a TxLocation>)>,
        tip: &BlockHash,
    ) -> Result<(), Error> {
        for (txid, location) in txs {
            match location {
                Some(location) => {
                    self.tx_index.insert(&txid.0, location.to_row())?;
                }
                None => {
                    self.tx_index.remove(&txid.0)?;
                }
            }
        }
        let mut buffer = Vec::with_capacity(128);
        for (outpoint, coin) in coins {
            match coin {
                Some(coin) => {
                    buffer.clear();
                    coin.encode_to(&mut buffer);
                    self.utxos.insert(&outpoint.to_key(), &buffer[..])?;
                }
                None => {
                    self.utxos.remove(&outpoint.to_key())?;
                }
            }
        }
        self.meta.insert(KEY_TIP, &tip.0[..])?;
        Ok(())
    }

    /// Replaces the saved mempool.
    pub fn save_mempool(&mut self, transactions: &[Transaction]) -> Result<(), Error> {
        self.mempool.retain(|_, _| false)?;
        for tx in transactions {
            self.mempool.insert(&tx.txid().0, &tx.to_bytes()[..])?;
        }
        Ok(())
    }
}

impl UtxoView for Writer<'_> {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, ViewError> {
        Writer::coin(self, outpoint).map_err(|e| ViewError(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
