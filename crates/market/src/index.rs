//! What the market reads from the chain, kept in `market.redb`: every token with its
//! metadata and supply, and every trade (a maker's offer completed on chain) with its price.
//! No price server: the tape is the chain's.
//!
//! It follows the main chain block by block, like the wallet: the hashes of the last blocks
//! read find the fork after a reorganisation, and everything read above it is undone.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use peerchain_primitives::encode::{Reader, Sink};
use peerchain_primitives::{
    Amount, AssetId, Block, BlockHash, Decode, DecodeError, Encode, KeyHash, Lock, OutPoint, TokenId, TokenMetadata,
    Transaction, TxId, TxOut, Witness,
};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::offer::{Offer, OfferId};

/// Small values: the last block read.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("market_meta_v1");
/// The hashes of the last blocks read, by height.
const SCANNED: TableDefinition<u32, &[u8; 32]> = TableDefinition::new("market_scanned_v1");
/// Tokens: height ‖ token id (so that a rewind drops a range) to the issue record.
const TOKENS: TableDefinition<&[u8; 36], &[u8]> = TableDefinition::new("market_tokens_v1");
/// Supply changes: height ‖ txid ‖ token id to created and burnt base units.
const SUPPLY: TableDefinition<&[u8; 68], (u64, u64)> = TableDefinition::new("market_supply_v1");
/// Trades: height ‖ txid ‖ input index to the trade.
const TRADES: TableDefinition<&[u8; 40], &[u8]> = TableDefinition::new("market_trades_v1");
/// Loans read from the chain: height ‖ txid ‖ index of the event to what happened (started,
/// repaid or claimed), the borrower and the lender.
const LOANS: TableDefinition<&[u8; 40], &[u8]> = TableDefinition::new("market_loans_v1");
/// Escrows a party disputed: their outpoint.
const DISPUTES: TableDefinition<&[u8; 36], ()> = TableDefinition::new("market_disputes_v1");
/// The node's own offers, by id: the offer and the output it gives.
const MINE: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("market_mine_v1");
const SCAN_TIP: &str = "scan_tip";
/// How many block hashes are kept: a deeper reorganisation means reading again from the start.
const SCANNED_KEPT: u32 = 1_000;

/// What can go wrong with the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The database failed.
    #[error("market index {path}: {detail}")]
    Store {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// A record does not decode.
    #[error("market index {path} is damaged: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What.
        detail: String,
    },
}

/// A token as the chain issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its id.
    pub id: TokenId,
    /// Its name and decimals.
    pub metadata: TokenMetadata,
    /// The issuing transaction.
    pub txid: TxId,
    /// The height it was issued at.
    pub height: u32,
    /// Base units in existence: issued and minted, less burnt.
    pub supply: Amount,
    /// Whether a mint right was issued with it.
    pub mintable: bool,
}

/// A maker's offer completed on chain: one input signed over itself and its paired output,
/// of another asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    /// The transaction.
    pub txid: TxId,
    /// Its block's height.
    pub height: u32,
    /// Its block's time.
    pub time: u64,
    /// The maker's input.
    pub input: u32,
    /// What the maker gave.
    pub give: (AssetId, Amount),
    /// What the maker was paid.
    pub got: (AssetId, Amount),
    /// Where the maker was paid.
    pub maker: KeyHash,
}

impl Trade {
    /// Base units paid per base unit given.
    pub fn price(&self) -> f64 {
        self.got.1.units() as f64 / self.give.1.units().max(1) as f64
    }
}

impl Encode for Trade {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        self.txid.encode_to(sink);
        self.height.encode_to(sink);
        self.time.encode_to(sink);
        self.input.encode_to(sink);
        self.give.0.encode_to(sink);
        self.give.1.encode_to(sink);
        self.got.0.encode_to(sink);
        self.got.1.encode_to(sink);
        self.maker.encode_to(sink);
    }
}

impl Decode for Trade {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Trade {
            txid: TxId::decode(reader)?,
            height: reader.u32("trade height")?,
            time: reader.u64("trade time")?,
            input: reader.u32("trade input")?,
            give: (AssetId::decode(reader)?, Amount::decode(reader)?),
            got: (AssetId::decode(reader)?, Amount::decode(reader)?),
            maker: KeyHash::decode(reader)?,
        })
    }
}

/// The trades a confirmed transaction holds: inputs whose every signature commits to the
/// input and its paired output only, paired with an output of another asset than they spend.
/// `spent` gives the output each input spends.
pub fn trades_in(tx: &Transaction, height: u32, time: u64, spent: &impl Fn(&OutPoint) -> Option<TxOut>) -> Vec<Trade> {
    let mut trades = Vec::new();
    if tx.is_coinbase() {
        return trades;
    }
    let txid = tx.txid();
    for (index, input) in tx.inputs.iter().enumerate() {
        let Witness::Key { signature, .. } = &input.witness else { continue };
        if signature.mode.commits_to_all() {
            continue;
        }
        let (Some(paid), Some(given)) = (tx.outputs.get(index), spent(&input.prev_out)) else { continue };
        let Lock::Key(maker) = paid.lock else { continue };
        if paid.asset == given.asset {
            continue;
        }
        trades.push(Trade {
            txid,
            height,
            time,
            input: index as u32,
            give: (given.asset, given.amount),
            got: (paid.asset, paid.amount),
            maker,
        });
    }
    trades
}

/// Supply changes of one transaction: per token, base units created (issued or minted) and
/// burnt.
fn supply_changes(tx: &Transaction, spent: &impl Fn(&OutPoint) -> Option<TxOut>) -> BTreeMap<TokenId, (u64, u64)> {
    let mut inflow: BTreeMap<TokenId, u64> = BTreeMap::new();
    if !tx.is_coinbase() {
        for input in &tx.inputs {
            if let Some(TxOut { asset: AssetId::Token(id), amount, .. }) = spent(&input.prev_out) {
                *inflow.entry(id).or_default() += amount.units();
            }
        }
    }
    let mut outflow: BTreeMap<TokenId, (u64, u64)> = BTreeMap::new();
    for output in &tx.outputs {
        if let AssetId::Token(id) = output.asset {
            let entry = outflow.entry(id).or_default();
            entry.0 += output.amount.units();
            if output.lock.is_burn() {
                entry.1 += output.amount.units();
            }
        }
    }
    let mut changes = BTreeMap::new();
    for (id, (out, burnt)) in outflow {
        let created = out.saturating_sub(inflow.get(&id).copied().unwrap_or(0));
        if created > 0 || burnt > 0 {
            changes.insert(id, (created, burnt));
        }
    }
    changes
}

/// The issue a transaction makes, if any: the token its first input names, with the
/// metadata consensus required.
fn issue_in(tx: &Transaction) -> Option<(TokenId, TokenMetadata, bool)> {
    if tx.is_coinbase() {
        return None;
    }
    let id = TokenId::issued_by(&tx.inputs[0].prev_out);
    let metadata = tx.outputs.iter().find_map(|o| match &o.lock {
        Lock::Burn { data } if o.asset == AssetId::Token(id) && o.amount == Amount::ZERO => {
            TokenMetadata::from_burn_data(data).ok()
        }
        _ => None,
    })?;
    let mintable = tx.outputs.iter().any(|o| o.asset == AssetId::MintRight(id));
    Some((id, metadata, mintable))
}

fn txid_of(tx: &Transaction) -> TxId {
    tx.txid()
}

/// What became of a loan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoanOutcome {
    /// The collateral was locked: the loan began.
    Started,
    /// The borrower repaid and took the collateral back.
    Repaid,
    /// The lender claimed the collateral after the term: the borrower defaulted.
    Claimed,
}

/// A loan event read from the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoanEvent {
    /// What happened.
    pub outcome: LoanOutcome,
    /// The borrower.
    pub borrower: KeyHash,
    /// The lender.
    pub lender: KeyHash,
}

impl Encode for LoanEvent {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        sink.put(&[match self.outcome {
            LoanOutcome::Started => 0,
            LoanOutcome::Repaid => 1,
            LoanOutcome::Claimed => 2,
        }]);
        self.borrower.encode_to(sink);
        self.lender.encode_to(sink);
    }
}

impl Decode for LoanEvent {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let outcome = match reader.u8("loan outcome")? {
            0 => LoanOutcome::Started,
            1 => LoanOutcome::Repaid,
            2 => LoanOutcome::Claimed,
            tag => return Err(DecodeError::UnknownTag { what: "loan outcome", tag }),
        };
        Ok(LoanEvent { outcome, borrower: KeyHash::decode(reader)?, lender: KeyHash::decode(reader)? })
    }
}

/// The loan events of a confirmed transaction, keyed by output index (started) or input
/// index (repaid, claimed) offset so that the two never collide.
fn loan_events(tx: &Transaction, spent: &impl Fn(&OutPoint) -> Option<TxOut>) -> Vec<(u32, LoanEvent)> {
    let mut events = Vec::new();
    for (index, output) in tx.outputs.iter().enumerate() {
        if let Lock::Loan { borrower, lender, .. } = output.lock {
            events.push((index as u32, LoanEvent { outcome: LoanOutcome::Started, borrower, lender }));
        }
    }
    if !tx.is_coinbase() {
        for (index, input) in tx.inputs.iter().enumerate() {
            let Some(TxOut { lock: Lock::Loan { borrower, lender, .. }, .. }) = spent(&input.prev_out) else {
                continue;
            };
            let outcome = match input.witness {
                Witness::TimeLockRefund { .. } => LoanOutcome::Claimed,
                _ => LoanOutcome::Repaid,
            };
            events.push((1 << 31 | index as u32, LoanEvent { outcome, borrower, lender }));
        }
    }
    events
}

/// A key's record as a borrower and as a lender, read from the chain: facts, not a score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoanRecord {
    /// Loans it borrowed.
    pub borrowed: u64,
    /// Of those, repaid.
    pub repaid: u64,
    /// Of those, defaulted (claimed by the lender).
    pub defaulted: u64,
    /// Loans it lent.
    pub lent: u64,
}

fn height_key<const N: usize>(height: u32, rest: &[&[u8]]) -> [u8; N] {
    let mut key = [0u8; N];
    key[..4].copy_from_slice(&height.to_be_bytes());
    let mut at = 4;
    for part in rest {
        key[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    key
}

/// The index, in memory (tokens and supplies) and on disk.
pub struct Index {
    path: PathBuf,
    db: redb::Database,
    tokens: HashMap<TokenId, TokenInfo>,
    scan_tip: Option<(u32, BlockHash)>,
}

impl Index {
    /// The index file in a data directory.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("market.redb")
    }

    /// Opens (or creates) the index and loads the tokens.
    pub fn open(path: &Path) -> Result<Index, IndexError> {
        let db = redb::Database::create(path).map_err(|e| store_error(path, e))?;
        let mut index = Index { path: path.to_owned(), db, tokens: HashMap::new(), scan_tip: None };
        index.load()?;
        Ok(index)
    }

    fn error(&self, e: impl std::fmt::Display) -> IndexError {
        store_error(&self.path, e)
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> IndexError {
        IndexError::Corrupt { path: self.path.clone(), detail: e.to_string() }
    }

    fn load(&mut self) -> Result<(), IndexError> {
        let write = self.db.begin_write().map_err(|e| self.error(e))?;
        write.open_table(META).map_err(|e| self.error(e))?;
        write.open_table(SCANNED).map_err(|e| self.error(e))?;
        write.open_table(TOKENS).map_err(|e| self.error(e))?;
        write.open_table(SUPPLY).map_err(|e| self.error(e))?;
        write.open_table(TRADES).map_err(|e| self.error(e))?;
        write.open_table(MINE).map_err(|e| self.error(e))?;
        write.open_table(LOANS).map_err(|e| self.error(e))?;
        write.open_table(DISPUTES).map_err(|e| self.error(e))?;
        write.commit().map_err(|e| self.error(e))?;
        let read = self.db.begin_read().map_err(|e| self.error(e))?;
        self.tokens.clear();
        let tokens = read.open_table(TOKENS).map_err(|e| self.error(e))?;
        for entry in tokens.iter().map_err(|e| self.error(e))? {
            let (key, value) = entry.map_err(|e| self.error(e))?;
            let key = key.value();
            let height = u32::from_be_bytes(key[..4].try_into().expect("36-byte key"));
            let id = TokenId(key[4..].try_into().expect("36-byte key"));
            let mut reader = Reader::new(value.value());
            let decoded = (|| {
                let txid = TxId::decode(&mut reader)?;
                let mintable = reader.u8("mintable")? == 1;
                let metadata = TokenMetadata::decode(&mut reader)?;
                reader.finish()?;
                Ok::<_, DecodeError>((txid, mintable, metadata))
            })();
            let (txid, mintable, metadata) = decoded.map_err(|e| self.corrupt(e))?;
            self.tokens.insert(id, TokenInfo { id, metadata, txid, height, supply: Amount::ZERO, mintable });
        }
        let supply = read.open_table(SUPPLY).map_err(|e| self.error(e))?;
        for entry in supply.iter().map_err(|e| self.error(e))? {
            let (key, value) = entry.map_err(|e| self.error(e))?;
            let id = TokenId(key.value()[36..].try_into().expect("68-byte key"));
            let (created, burnt) = value.value();
            if let Some(token) = self.tokens.get_mut(&id) {
                token.supply = Amount::from_units((token.supply.units() + created).saturating_sub(burnt));
            }
        }
        let meta = read.open_table(META).map_err(|e| self.error(e))?;
        self.scan_tip = match meta.get(SCAN_TIP).map_err(|e| self.error(e))? {
            None => None,
            Some(value) => {
                let mut reader = Reader::new(value.value());
                let height = reader.u32("height").map_err(|e| self.corrupt(e))?;
                Some((height, BlockHash::decode(&mut reader).map_err(|e| self.corrupt(e))?))
            }
        };
        Ok(())
    }

    /// The last block read.
    pub fn scan_tip(&self) -> Option<(u32, BlockHash)> {
        self.scan_tip
    }

    /// The hash recorded for a height read, if still kept.
    pub fn scanned_hash(&self, height: u32) -> Result<Option<BlockHash>, IndexError> {
        let read = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = read.open_table(SCANNED).map_err(|e| self.error(e))?;
        Ok(table.get(height).map_err(|e| self.error(e))?.map(|v| BlockHash(*v.value())))
    }

    /// Every token, oldest first.
    pub fn tokens(&self) -> Vec<TokenInfo> {
        let mut tokens: Vec<TokenInfo> = self.tokens.values().cloned().collect();
        tokens.sort_by_key(|t| (t.height, t.id));
        tokens
    }

    /// One token.
    pub fn token(&self, id: &TokenId) -> Option<&TokenInfo> {
        self.tokens.get(id)
    }

    /// The latest trades, newest first, at most `limit`, of `pair` (either way round) if
    /// given.
    pub fn trades(&self, pair: Option<(AssetId, AssetId)>, limit: usize) -> Result<Vec<Trade>, IndexError> {
        let read = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = read.open_table(TRADES).map_err(|e| self.error(e))?;
        let mut trades = Vec::new();
        for entry in table.iter().map_err(|e| self.error(e))?.rev() {
            let (_, value) = entry.map_err(|e| self.error(e))?;
            let trade = Trade::from_bytes(value.value()).map_err(|e| self.corrupt(e))?;
            let matches = pair
                .is_none_or(|(a, b)| (trade.give.0, trade.got.0) == (a, b) || (trade.give.0, trade.got.0) == (b, a));
            if matches {
                trades.push(trade);
                if trades.len() >= limit {
                    break;
                }
            }
        }
        Ok(trades)
    }

    /// Reads the main-chain block at `height`; `spent` gives the output each of its inputs
    /// spends (from the block's undo data, or from the block itself).
    ///
    /// `durable: false` skips the flush to disk (the commit stays atomic): a crash may lose
    /// the block, which is read again from the chain. A catch-up flushes once per batch, not
    /// once per block.
    pub fn connect_block(
        &mut self,
        block: &Block,
        height: u32,
        spent: &impl Fn(&OutPoint) -> Option<TxOut>,
        durable: bool,
    ) -> Result<(), IndexError> {
        let hash = block.hash();
        let mut write = self.db.begin_write().map_err(|e| self.error(e))?;
        if !durable {
            write.set_durability(redb::Durability::None).map_err(|e| self.error(e))?;
        }
        let mut new_tokens = Vec::new();
        let mut supply_moves = Vec::new();
        {
            let mut tokens = write.open_table(TOKENS).map_err(|e| self.error(e))?;
            let mut supply = write.open_table(SUPPLY).map_err(|e| self.error(e))?;
            let mut trades = write.open_table(TRADES).map_err(|e| self.error(e))?;
            let mut loans = write.open_table(LOANS).map_err(|e| self.error(e))?;
            for tx in &block.transactions {
                for (index, event) in loan_events(tx, spent) {
                    let key = height_key::<40>(height, &[&txid_of(tx).0, &index.to_be_bytes()]);
                    loans.insert(&key, &event.to_bytes()[..]).map_err(|e| self.error(e))?;
                }
                let txid = tx.txid();
                if let Some((id, metadata, mintable)) = issue_in(tx) {
                    let mut value = txid.to_bytes();
                    value.push(u8::from(mintable));
                    metadata.encode_to(&mut value);
                    tokens.insert(&height_key::<36>(height, &[&id.0]), &value[..]).map_err(|e| self.error(e))?;
                    new_tokens.push(TokenInfo { id, metadata, txid, height, supply: Amount::ZERO, mintable });
                }
                for (id, change) in supply_changes(tx, spent) {
                    supply.insert(&height_key::<68>(height, &[&txid.0, &id.0]), change).map_err(|e| self.error(e))?;
                    supply_moves.push((id, change));
                }
                for trade in trades_in(tx, height, block.header.time, spent) {
                    let key = height_key::<40>(height, &[&txid.0, &trade.input.to_be_bytes()]);
                    trades.insert(&key, &trade.to_bytes()[..]).map_err(|e| self.error(e))?;
                }
            }
            Self::advance(&write, height, hash).map_err(|e| self.error(e))?;
        }
        write.commit().map_err(|e| self.error(e))?;
        for token in new_tokens {
            self.tokens.insert(token.id, token);
        }
        for (id, (created, burnt)) in supply_moves {
            if let Some(token) = self.tokens.get_mut(&id) {
                token.supply = Amount::from_units((token.supply.units() + created).saturating_sub(burnt));
            }
        }
        self.scan_tip = Some((height, hash));
        Ok(())
    }

    /// Makes every commit so far durable (the last blocks may have been read without).
    pub fn flush(&self) -> Result<(), IndexError> {
        let write = self.db.begin_write().map_err(|e| self.error(e))?;
        write.commit().map_err(|e| self.error(e))
    }

    fn advance(write: &redb::WriteTransaction, height: u32, hash: BlockHash) -> Result<(), redb::Error> {
        let mut scanned = write.open_table(SCANNED)?;
        scanned.insert(height, &hash.0)?;
        if let Some(old) = height.checked_sub(SCANNED_KEPT) {
            scanned.retain_in(..old, |_, _| false)?;
        }
        let mut meta = write.open_table(META)?;
        let mut tip = height.to_bytes();
        tip.extend_from_slice(&hash.0);
        meta.insert(SCAN_TIP, &tip[..])?;
        Ok(())
    }

    /// Undoes every block above `height` (none: everything), after a reorganisation.
    pub fn rewind_to(&mut self, height: Option<u32>) -> Result<(), IndexError> {
        let from = height.map_or(0, |h| h + 1);
        let tip = match height {
            Some(h) => self.scanned_hash(h)?.map(|hash| (h, hash)),
            None => None,
        };
        let write = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let low = |n: usize| {
                let mut key = vec![0u8; n];
                key[..4].copy_from_slice(&from.to_be_bytes());
                key
            };
            let mut tokens = write.open_table(TOKENS).map_err(|e| self.error(e))?;
            let start: [u8; 36] = low(36).try_into().expect("36 bytes");
            tokens.retain_in::<&[u8; 36], _>(&start.., |_, _| false).map_err(|e| self.error(e))?;
            let mut supply = write.open_table(SUPPLY).map_err(|e| self.error(e))?;
            let start: [u8; 68] = low(68).try_into().expect("68 bytes");
            supply.retain_in::<&[u8; 68], _>(&start.., |_, _| false).map_err(|e| self.error(e))?;
            let mut trades = write.open_table(TRADES).map_err(|e| self.error(e))?;
            let start: [u8; 40] = low(40).try_into().expect("40 bytes");
            trades.retain_in::<&[u8; 40], _>(&start.., |_, _| false).map_err(|e| self.error(e))?;
            let mut loans = write.open_table(LOANS).map_err(|e| self.error(e))?;
            loans.retain_in::<&[u8; 40], _>(&start.., |_, _| false).map_err(|e| self.error(e))?;
            let mut scanned = write.open_table(SCANNED).map_err(|e| self.error(e))?;
            scanned.retain_in(from.., |_, _| false).map_err(|e| self.error(e))?;
            let mut meta = write.open_table(META).map_err(|e| self.error(e))?;
            match tip {
                None => {
                    meta.remove(SCAN_TIP).map_err(|e| self.error(e))?;
                }
                Some((h, hash)) => {
                    let mut bytes = h.to_bytes();
                    bytes.extend_from_slice(&hash.0);
                    meta.insert(SCAN_TIP, &bytes[..]).map_err(|e| self.error(e))?;
                }
            }
        }
        write.commit().map_err(|e| self.error(e))?;
        self.load()
    }
}

impl Index {
    /// Notes that a party disputed an escrow.
    pub fn note_dispute(&self, escrow: &OutPoint) -> Result<(), IndexError> {
        let write = self.db.begin_write().map_err(|e| self.error(e))?;
        write
            .open_table(DISPUTES)
            .map_err(|e| self.error(e))?
            .insert(&escrow.to_key(), ())
            .map_err(|e| self.error(e))?;
        write.commit().map_err(|e| self.error(e))
    }

    /// Whether a party disputed the escrow.
    pub fn is_disputed(&self, escrow: &OutPoint) -> Result<bool, IndexError> {
        let read = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = read.open_table(DISPUTES).map_err(|e| self.error(e))?;
        Ok(table.get(&escrow.to_key()).map_err(|e| self.error(e))?.is_some())
    }

    /// The loan record of `key` read from the chain.
    pub fn loan_record(&self, key: &KeyHash) -> Result<LoanRecord, IndexError> {
        let read = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = read.open_table(LOANS).map_err(|e| self.error(e))?;
        let mut record = LoanRecord::default();
        for entry in table.iter().map_err(|e| self.error(e))? {
            let (_, value) = entry.map_err(|e| self.error(e))?;
            let event = LoanEvent::from_bytes(value.value()).map_err(|e| self.corrupt(e))?;
            if event.borrower == *key {
                match event.outcome {
                    LoanOutcome::Started => record.borrowed += 1,
                    LoanOutcome::Repaid => record.repaid += 1,
                    LoanOutcome::Claimed => record.defaulted += 1,
                }
            }
            if event.lender == *key && event.outcome == LoanOutcome::Started {
                record.lent += 1;
            }
        }
        Ok(record)
    }

    /// Keeps one of the node's own offers, to publish again after a restart.
    pub fn save_mine(&self, offer: &Offer, give: &TxOut) -> Result<(), IndexError> {
        let mut value = offer.to_bytes();
        give.encode_to(&mut value);
        let write = self.db.begin_write().map_err(|e| self.error(e))?;
        write
            .open_table(MINE)
            .map_err(|e| self.error(e))?
            .insert(&offer.id().0, &value[..])
            .map_err(|e| self.error(e))?;
        write.commit().map_err(|e| self.error(e))
    }

    /// Forgets own offers (taken, cancelled or expired).
    pub fn forget_mine(&self, ids: &[OfferId]) -> Result<(), IndexError> {
        if ids.is_empty() {
            return Ok(());
        }
        let write = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut table = write.open_table(MINE).map_err(|e| self.error(e))?;
            for id in ids {
                table.remove(&id.0).map_err(|e| self.error(e))?;
            }
        }
        write.commit().map_err(|e| self.error(e))
    }

    /// The node's own offers, with what each gives.
    pub fn mine(&self) -> Result<Vec<(Offer, TxOut)>, IndexError> {
        let read = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = read.open_table(MINE).map_err(|e| self.error(e))?;
        let mut offers = Vec::new();
        for entry in table.iter().map_err(|e| self.error(e))? {
            let (_, value) = entry.map_err(|e| self.error(e))?;
            let mut reader = Reader::new(value.value());
            let decoded = (|| {
                let offer = Offer::decode(&mut reader)?;
                let give = TxOut::decode(&mut reader)?;
                reader.finish()?;
                Ok::<_, DecodeError>((offer, give))
            })();
            offers.push(decoded.map_err(|e| self.corrupt(e))?);
        }
        Ok(offers)
    }
}

fn store_error(path: &Path, e: impl std::fmt::Display) -> IndexError {
    IndexError::Store { path: path.to_owned(), detail: e.to_string() }
}
