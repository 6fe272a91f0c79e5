//! The wallet's own view of the chain: every transaction that pays or spends its keys, with
//! its status, kept in `wallet.redb`. Balances, spendable coins and history are read off it.
//!
//! It is derived data (a rescan rebuilds it from the chain) except for the wallet's own
//! payments that no block holds yet, which it keeps so that they can be broadcast again.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use peerchain_primitives::encode::{Reader, Sink, put_bytes};
use peerchain_primitives::{
    Amount, AssetId, Block, BlockHash, Decode, DecodeError, Encode, KeyHash, Lock, OutPoint, Transaction, TxId, TxOut,
};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::Error;

const TXS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("wallet_txs_v1");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("wallet_meta_v1");
/// Hashes of the last blocks scanned, by height: where to find the fork after a reorg.
const SCANNED: TableDefinition<u32, &[u8; 32]> = TableDefinition::new("wallet_scanned_v1");
/// Outputs set aside (offer anchors) until a height: coin selection leaves them alone.
const RESERVED: TableDefinition<&[u8; 36], u32> = TableDefinition::new("wallet_reserved_v1");
const SCAN_TIP: &str = "scan_tip";

/// How many scanned block hashes are kept: a reorg deeper than this means a full rescan.
const SCANNED_KEPT: u32 = 1_000;

/// Where a wallet transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// In a block of the main chain.
    Confirmed {
        /// The block's height.
        height: u32,
        /// The block.
        block: BlockHash,
        /// The block's time.
        time: u64,
    },
    /// Not in a block: in the mempool, or waiting to be broadcast again.
    Pending,
    /// Can never confirm: a main-chain transaction spends one of the same outputs.
    Conflicted {
        /// The transaction that won.
        by: TxId,
        /// The height of the block holding it.
        height: u32,
    },
}

/// A transaction the wallet tracks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletTx {
    /// The transaction.
    pub tx: Transaction,
    /// Where it stands.
    pub status: TxStatus,
    /// When the wallet first saw it (Unix seconds).
    pub first_seen: u64,
    /// Whether this wallet made it.
    pub from_me: bool,
}

impl Encode for WalletTx {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        match self.status {
            TxStatus::Confirmed { height, block, time } => {
                sink.put(&[0]);
                height.encode_to(sink);
                block.encode_to(sink);
                time.encode_to(sink);
            }
            TxStatus::Pending => sink.put(&[1]),
            TxStatus::Conflicted { by, height } => {
                sink.put(&[2]);
                by.encode_to(sink);
                height.encode_to(sink);
            }
        }
        self.first_seen.encode_to(sink);
        sink.put(&[u8::from(self.from_me)]);
        put_bytes(sink, &self.tx.to_bytes());
    }
}

impl Decode for WalletTx {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let status = match reader.u8("status")? {
            0 => TxStatus::Confirmed {
                height: reader.u32("height")?,
                block: BlockHash::decode(reader)?,
                time: reader.u64("time")?,
            },
            1 => TxStatus::Pending,
            2 => TxStatus::Conflicted { by: TxId::decode(reader)?, height: reader.u32("height")? },
            tag => return Err(DecodeError::UnknownTag { what: "wallet tx status", tag }),
        };
        let first_seen = reader.u64("first seen")?;
        let from_me = reader.u8("from me")? == 1;
        let tx = Transaction::from_bytes(reader.bytes("transaction", usize::MAX)?)?;
        Ok(WalletTx { tx, status, first_seen, from_me })
    }
}

/// How a write moves the scan tip.
#[derive(Clone, Copy)]
enum ScanMove {
    Stay,
    Advance(u32, BlockHash),
    /// Back to this block (none: before the first), forgetting the blocks above it.
    Rewind(Option<(u32, BlockHash)>),
}

/// The three parts of a balance, in base units of the coin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    /// In main-chain blocks and spendable.
    pub confirmed: Amount,
    /// In transactions no block holds yet.
    pub unconfirmed: Amount,
    /// Mining rewards that are not yet spendable.
    pub immature: Amount,
}

/// An output the wallet can spend.
#[derive(Clone, Debug)]
pub struct Spendable {
    /// Where it is.
    pub outpoint: OutPoint,
    /// What it is.
    pub output: TxOut,
    /// The key that unlocks it.
    pub key_hash: KeyHash,
    /// Whether a main-chain block holds it (else it is this wallet's own unconfirmed change).
    pub confirmed: bool,
}

/// What the chain looks like to the ledger: which keys are the wallet's, the tip height and
/// how many blocks a mining reward waits.
pub struct View<'a> {
    /// The wallet's key hashes.
    pub owned: &'a HashSet<KeyHash>,
    /// The main chain's height.
    pub tip_height: u32,
    /// Blocks before a coinbase output may be spent.
    pub coinbase_maturity: u32,
}

impl View<'_> {
    /// The wallet's key hash that `output` is locked to, whatever its asset.
    pub fn owner(&self, output: &TxOut) -> Option<KeyHash> {
        match &output.lock {
            Lock::Key(hash) if self.owned.contains(hash) => Some(*hash),
            _ => None,
        }
    }

    /// Whether `output` is under a contract lock that names one of the wallet's keys (a
    /// multisig or a hash-time lock): the wallet tracks it, though it is not the wallet's
    /// alone to spend.
    pub fn involves(&self, output: &TxOut) -> bool {
        match &output.lock {
            Lock::Key(_) | Lock::Burn { .. } => false,
            Lock::Multisig { keys, .. } => keys.iter().any(|k| self.owned.contains(&k.key_hash())),
            Lock::Escrow { keys, fallback, .. } => {
                self.owned.contains(fallback) || keys.iter().any(|k| self.owned.contains(&k.key_hash()))
            }
            Lock::HashTimeLock { claim, refund, .. } => self.owned.contains(claim) || self.owned.contains(refund),
            Lock::Loan { borrower, lender, .. } => self.owned.contains(borrower) || self.owned.contains(lender),
        }
    }

    /// How many confirmations a status has at this tip (0 unless confirmed).
    pub fn confirmations(&self, status: &TxStatus) -> u32 {
        match status {
            TxStatus::Confirmed { height, .. } => self.tip_height.saturating_sub(*height) + 1,
            _ => 0,
        }
    }
}

/// The tracked transactions, in memory and in `wallet.redb`.
pub struct Ledger {
    path: PathBuf,
    db: redb::Database,
    txs: HashMap<TxId, WalletTx>,
    /// Which tracked transactions spend each outpoint (more than one when they conflict).
    spenders: HashMap<OutPoint, Vec<TxId>>,
    scan_tip: Option<(u32, BlockHash)>,
    /// Outputs coin selection leaves alone, up to a height.
    reserved: HashMap<OutPoint, u32>,
}

impl Ledger {
    /// The ledger file in a data directory.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("wallet.redb")
    }

    /// Opens (or creates) the ledger and loads it.
    pub fn open(path: &Path) -> Result<Ledger, Error> {
        let db = redb::Database::create(path).map_err(|e| store_error(path, e))?;
        let mut ledger = Ledger {
            path: path.to_owned(),
            db,
            txs: HashMap::new(),
            spenders: HashMap::new(),
            scan_tip: None,
            reserved: HashMap::new(),
        };
        ledger.load()?;
        Ok(ledger)
    }

    fn store_error(&self, e: impl std::fmt::Display) -> Error {
        store_error(&self.path, e)
    }

    fn load(&mut self) -> Result<(), Error> {
        let write = self.db.begin_write().map_err(|e| self.store_error(e))?;
        write.open_table(TXS).map_err(|e| self.store_error(e))?;
        write.open_table(META).map_err(|e| self.store_error(e))?;
        write.open_table(SCANNED).map_err(|e| self.store_error(e))?;
        write.open_table(RESERVED).map_err(|e| self.store_error(e))?;
        write.commit().map_err(|e| self.store_error(e))?;
        let read = self.db.begin_read().map_err(|e| self.store_error(e))?;
        let txs = read.open_table(TXS).map_err(|e| self.store_error(e))?;
        for entry in txs.iter().map_err(|e| self.store_error(e))? {
            let (_, value) = entry.map_err(|e| self.store_error(e))?;
            let wtx = WalletTx::from_bytes(value.value())
                .map_err(|e| Error::Corrupt { path: self.path.clone(), detail: e.to_string() })?;
            self.index(&wtx.tx);
            self.txs.insert(wtx.tx.txid(), wtx);
        }
        let reserved = read.open_table(RESERVED).map_err(|e| self.store_error(e))?;
        for entry in reserved.iter().map_err(|e| self.store_error(e))? {
            let (key, until) = entry.map_err(|e| self.store_error(e))?;
            let key = key.value();
            let txid = TxId(key[..32].try_into().expect("36-byte key"));
            let index = u32::from_be_bytes(key[32..].try_into().expect("36-byte key"));
            self.reserved.insert(OutPoint::new(txid, index), until.value());
        }
        let meta = read.open_table(META).map_err(|e| self.store_error(e))?;
        if let Some(value) = meta.get(SCAN_TIP).map_err(|e| self.store_error(e))? {
            let bytes = value.value();
            let mut reader = Reader::new(bytes);
            let height = reader.u32("scan height");
            let hash = BlockHash::decode(&mut reader);
            match (height, hash) {
                (Ok(height), Ok(hash)) => self.scan_tip = Some((height, hash)),
                _ => return Err(Error::Corrupt { path: self.path.clone(), detail: "scan tip".into() }),
            }
        }
        Ok(())
    }

    fn index(&mut self, tx: &Transaction) {
        if tx.is_coinbase() {
            return;
        }
        let txid = tx.txid();
        for input in &tx.inputs {
            let spenders = self.spenders.entry(input.prev_out).or_default();
            if !spenders.contains(&txid) {
                spenders.push(txid);
            }
        }
    }

    /// The last block scanned.
    pub fn scan_tip(&self) -> Option<(u32, BlockHash)> {
        self.scan_tip
    }

    /// The hash recorded for a scanned height, if still kept.
    pub fn scanned_hash(&self, height: u32) -> Result<Option<BlockHash>, Error> {
        let read = self.db.begin_read().map_err(|e| self.store_error(e))?;
        let table = read.open_table(SCANNED).map_err(|e| self.store_error(e))?;
        Ok(table.get(height).map_err(|e| self.store_error(e))?.map(|v| BlockHash(*v.value())))
    }

    /// Every tracked transaction.
    pub fn transactions(&self) -> impl Iterator<Item = &WalletTx> {
        self.txs.values()
    }

    /// Whether `tx` touches the wallet: pays one of its keys, locks an output under a
    /// contract naming one, or spends such an output.
    pub fn is_relevant(&self, tx: &Transaction, view: &View<'_>) -> bool {
        tx.outputs.iter().any(|o| view.owner(o).is_some() || view.involves(o))
            || tx
                .inputs
                .iter()
                .any(|input| self.output(&input.prev_out).is_some_and(|o| view.owner(o).is_some() || view.involves(o)))
    }

    /// A tracked transaction's output.
    pub fn output(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        self.txs.get(&outpoint.txid)?.tx.outputs.get(outpoint.index as usize)
    }

    fn owned_output(&self, outpoint: &OutPoint, view: &View<'_>) -> Option<&TxOut> {
        self.output(outpoint).filter(|output| view.owner(output).is_some())
    }

    /// Sets `outpoints` aside until block `until` (inclusive): coin selection leaves them
    /// alone, so that a payment does not cancel an offer they anchor.
    pub fn reserve(&mut self, outpoints: &[OutPoint], until: u32) -> Result<(), Error> {
        let write = self.db.begin_write().map_err(|e| self.store_error(e))?;
        {
            let mut table = write.open_table(RESERVED).map_err(|e| self.store_error(e))?;
            for outpoint in outpoints {
                table.insert(&outpoint.to_key(), until).map_err(|e| self.store_error(e))?;
            }
        }
        write.commit().map_err(|e| self.store_error(e))?;
        self.reserved.extend(outpoints.iter().map(|o| (*o, until)));
        Ok(())
    }

    /// Ends reservations: those of `outpoints`, and every one past its height at `tip_height`.
    pub fn release(&mut self, outpoints: &[OutPoint], tip_height: u32) -> Result<(), Error> {
        let ended: Vec<OutPoint> = self
            .reserved
            .iter()
            .filter(|(o, until)| **until < tip_height || outpoints.contains(o))
            .map(|(o, _)| *o)
            .collect();
        if ended.is_empty() {
            return Ok(());
        }
        let write = self.db.begin_write().map_err(|e| self.store_error(e))?;
        {
            let mut table = write.open_table(RESERVED).map_err(|e| self.store_error(e))?;
            for outpoint in &ended {
                table.remove(&outpoint.to_key()).map_err(|e| self.store_error(e))?;
            }
        }
        write.commit().map_err(|e| self.store_error(e))?;
        for outpoint in &ended {
            self.reserved.remove(outpoint);
        }
        Ok(())
    }

    /// Whether `outpoint` is set aside at `tip_height`.
    pub fn is_reserved(&self, outpoint: &OutPoint, tip_height: u32) -> bool {
        self.reserved.get(outpoint).is_some_and(|until| *until >= tip_height)
    }

    /// Records the transactions of the main-chain block at `height` that touch the wallet,
    /// and marks the tracked ones that it double-spends as conflicted. Returns the wallet's
    /// key hashes the block pays, so that the keystore can move past them.
    pub fn connect_block(&mut self, block: &Block, height: u32, view: &View<'_>) -> Result<Vec<KeyHash>, Error> {
        let hash = block.hash();
        let time = block.header.time;
        let mut changed: Vec<TxId> = Vec::new();
        let mut used = Vec::new();
        for tx in &block.transactions {
            let txid = tx.txid();
            if !tx.is_coinbase() {
                for input in &tx.inputs {
                    let losers: Vec<TxId> = self
                        .spenders
                        .get(&input.prev_out)
                        .map(|s| s.iter().filter(|t| **t != txid).copied().collect())
                        .unwrap_or_default();
                    for loser in losers {
                        self.mark_conflicted(loser, txid, height, &mut changed);
                    }
                }
            }
            used.extend(tx.outputs.iter().filter_map(|output| view.owner(output)));
            let known = self.txs.contains_key(&txid);
            if known || self.is_relevant(tx, view) {
                let status = TxStatus::Confirmed { height, block: hash, time };
                let entry = self.txs.entry(txid).or_insert_with(|| WalletTx {
                    tx: tx.clone(),
                    status,
                    first_seen: time,
                    from_me: false,
                });
                entry.status = status;
                if !known {
                    self.index(tx);
                }
                changed.push(txid);
            }
        }
        self.persist(&changed, ScanMove::Advance(height, hash))?;
        Ok(used)
    }

    /// Marks `loser` and every tracked transaction spending its outputs as conflicted.
    fn mark_conflicted(&mut self, loser: TxId, by: TxId, height: u32, changed: &mut Vec<TxId>) {
        let mut stack = vec![loser];
        while let Some(txid) = stack.pop() {
            let Some(wtx) = self.txs.get_mut(&txid) else { continue };
            if matches!(wtx.status, TxStatus::Confirmed { .. } | TxStatus::Conflicted { .. }) {
                continue;
            }
            wtx.status = TxStatus::Conflicted { by, height };
            changed.push(txid);
            for index in 0..wtx.tx.outputs.len() as u32 {
                if let Some(children) = self.spenders.get(&OutPoint::new(txid, index)) {
                    stack.extend(children.iter().copied());
                }
            }
        }
    }

    /// Undoes every block above `height` (a reorg, or a rescan from `None`): what they
    /// confirmed or conflicted is pending again.
    pub fn rewind_to(&mut self, height: Option<u32>) -> Result<(), Error> {
        let above = |h: u32| height.is_none_or(|keep| h > keep);
        let mut changed = Vec::new();
        for (txid, wtx) in &mut self.txs {
            let undo = match wtx.status {
                TxStatus::Confirmed { height, .. } | TxStatus::Conflicted { height, .. } => above(height),
                TxStatus::Pending => false,
            };
            if undo {
                wtx.status = TxStatus::Pending;
                changed.push(*txid);
            }
        }
        let tip = match height {
            Some(h) => self.scanned_hash(h)?.map(|hash| (h, hash)),
            None => None,
        };
        self.persist(&changed, ScanMove::Rewind(tip))
    }

    /// Adds a transaction that no block holds yet: one this wallet made, or one from the
    /// mempool that touches it. Returns whether it was new.
    pub fn add_pending(&mut self, tx: Transaction, from_me: bool, now: u64) -> Result<bool, Error> {
        let txid = tx.txid();
        if self.txs.contains_key(&txid) {
            return Ok(false);
        }
        self.index(&tx);
        self.txs.insert(txid, WalletTx { tx, status: TxStatus::Pending, first_seen: now, from_me });
        self.persist(&[txid], ScanMove::Stay)?;
        Ok(true)
    }

    /// Forgets payments to the wallet that no block holds and the mempool no longer has, seen
    /// first before `seen_before`: evicted or never relayed, they may never confirm, and kept
    /// they would count as unconfirmed income forever. If one does confirm, the block scan
    /// finds it again; if it returns to the mempool, it is picked up again. The wallet's own
    /// payments are kept: it broadcasts them again until they confirm or conflict.
    pub fn forget_vanished_incoming(
        &mut self,
        in_mempool: &std::collections::HashSet<TxId>,
        seen_before: u64,
    ) -> Result<Vec<TxId>, Error> {
        let vanished: Vec<TxId> = self
            .txs
            .iter()
            .filter(|(txid, w)| {
                w.status == TxStatus::Pending && !w.from_me && w.first_seen < seen_before && !in_mempool.contains(txid)
            })
            .map(|(txid, _)| *txid)
            .collect();
        if vanished.is_empty() {
            return Ok(vanished);
        }
        let write = self.db.begin_write().map_err(|e| self.store_error(e))?;
        {
            let mut txs = write.open_table(TXS).map_err(|e| self.store_error(e))?;
            for txid in &vanished {
                txs.remove(&txid.0).map_err(|e| self.store_error(e))?;
            }
        }
        write.commit().map_err(|e| self.store_error(e))?;
        for txid in &vanished {
            if let Some(wtx) = self.txs.remove(txid) {
                for input in &wtx.tx.inputs {
                    if let Some(spenders) = self.spenders.get_mut(&input.prev_out) {
                        spenders.retain(|t| t != txid);
                        if spenders.is_empty() {
                            self.spenders.remove(&input.prev_out);
                        }
                    }
                }
            }
        }
        Ok(vanished)
    }

    /// Writes the changed transactions and the scan tip's move in one transaction.
    fn persist(&mut self, changed: &[TxId], scan: ScanMove) -> Result<(), Error> {
        let write = self.db.begin_write().map_err(|e| self.store_error(e))?;
        {
            let mut txs = write.open_table(TXS).map_err(|e| self.store_error(e))?;
            for txid in changed {
                if let Some(wtx) = self.txs.get(txid) {
                    txs.insert(&txid.0, &wtx.to_bytes()[..]).map_err(|e| self.store_error(e))?;
                }
            }
            let mut meta = write.open_table(META).map_err(|e| self.store_error(e))?;
            let mut scanned = write.open_table(SCANNED).map_err(|e| self.store_error(e))?;
            let tip = match scan {
                ScanMove::Stay => None,
                ScanMove::Advance(height, hash) => {
                    scanned.insert(height, &hash.0).map_err(|e| self.store_error(e))?;
                    if let Some(old) = height.checked_sub(SCANNED_KEPT) {
                        scanned.retain_in(..old, |_, _| false).map_err(|e| self.store_error(e))?;
                    }
                    Some(Some((height, hash)))
                }
                ScanMove::Rewind(tip) => {
                    let from = tip.map_or(0, |(height, _)| height + 1);
                    scanned.retain_in(from.., |_, _| false).map_err(|e| self.store_error(e))?;
                    Some(tip)
                }
            };
            match tip {
                None => {}
                Some(None) => {
                    meta.remove(SCAN_TIP).map_err(|e| self.store_error(e))?;
                }
                Some(Some((height, hash))) => {
                    let mut bytes = height.to_bytes();
                    bytes.extend_from_slice(&hash.0);
                    meta.insert(SCAN_TIP, &bytes[..]).map_err(|e| self.store_error(e))?;
                }
            }
        }
        write.commit().map_err(|e| self.store_error(e))?;
        match scan {
            ScanMove::Stay => {}
            ScanMove::Advance(height, hash) => self.scan_tip = Some((height, hash)),
            ScanMove::Rewind(tip) => self.scan_tip = tip,
        }
        Ok(())
    }

    /// Whether a tracked transaction that is not conflicted spends `outpoint`.
    pub fn is_spent_by_tracked(&self, outpoint: &OutPoint) -> bool {
        self.is_spent(outpoint)
    }

    /// The tracked transaction (not conflicted) that spends `outpoint`, if any.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<&WalletTx> {
        self.spenders
            .get(outpoint)?
            .iter()
            .filter_map(|t| self.txs.get(t))
            .find(|w| !matches!(w.status, TxStatus::Conflicted { .. }))
    }

    fn is_spent(&self, outpoint: &OutPoint) -> bool {
        self.spenders.get(outpoint).is_some_and(|spenders| {
            spenders.iter().any(|t| self.txs.get(t).is_some_and(|w| !matches!(w.status, TxStatus::Conflicted { .. })))
        })
    }

    /// Every unspent output the wallet's keys alone unlock, of any asset, with the
    /// transaction holding it.
    fn unspent<'a>(&'a self, view: &'a View<'a>) -> impl Iterator<Item = (&'a WalletTx, OutPoint, &'a TxOut, KeyHash)> {
        self.txs.iter().filter(|(_, w)| !matches!(w.status, TxStatus::Conflicted { .. })).flat_map(
            move |(txid, wtx)| {
                wtx.tx.outputs.iter().enumerate().filter_map(move |(index, output)| {
                    let key_hash = view.owner(output)?;
                    let outpoint = OutPoint::new(*txid, index as u32);
                    (!self.is_spent(&outpoint)).then_some((wtx, outpoint, output, key_hash))
                })
            },
        )
    }

    fn is_mature(wtx: &WalletTx, view: &View<'_>) -> bool {
        !wtx.tx.is_coinbase() || view.confirmations(&wtx.status) > view.coinbase_maturity
    }

    /// The coin balance: confirmed, unconfirmed and immature.
    pub fn balance(&self, view: &View<'_>) -> Balance {
        self.balances(view).remove(&AssetId::Coin).unwrap_or_default()
    }

    /// The balance of every asset the wallet holds (the coin always).
    pub fn balances(&self, view: &View<'_>) -> std::collections::BTreeMap<AssetId, Balance> {
        let mut balances = std::collections::BTreeMap::from([(AssetId::Coin, Balance::default())]);
        for (wtx, _, output, _) in self.unspent(view) {
            let balance = balances.entry(output.asset).or_default();
            let part = match wtx.status {
                TxStatus::Pending => &mut balance.unconfirmed,
                _ if !Self::is_mature(wtx, view) => &mut balance.immature,
                _ => &mut balance.confirmed,
            };
            *part = part.checked_add(output.amount).unwrap_or(Amount::MAX_MONEY);
        }
        balances
    }

    /// What the wallet may spend, of every asset: mature confirmed outputs and its own
    /// unconfirmed change, except what is set aside.
    pub fn spendable(&self, view: &View<'_>) -> Vec<Spendable> {
        self.spendable_with(view, false)
    }

    /// [`Ledger::spendable`], with the outputs set aside too if `reserved`.
    pub fn spendable_with(&self, view: &View<'_>, reserved: bool) -> Vec<Spendable> {
        self.unspent(view)
            .filter(|(_, outpoint, ..)| reserved || !self.is_reserved(outpoint, view.tip_height))
            .filter(|(wtx, ..)| match wtx.status {
                TxStatus::Confirmed { .. } => Self::is_mature(wtx, view),
                TxStatus::Pending => wtx.from_me,
                TxStatus::Conflicted { .. } => false,
            })
            .map(|(wtx, outpoint, output, key_hash)| Spendable {
                outpoint,
                output: output.clone(),
                key_hash,
                confirmed: matches!(wtx.status, TxStatus::Confirmed { .. }),
            })
            .collect()
    }

    /// The coin amounts a tracked transaction moves for the wallet: what it pays the
    /// wallet's keys, what it spends of the wallet's outputs, and its fee if every input's
    /// value is known.
    pub fn amounts(&self, wtx: &WalletTx, view: &View<'_>) -> (Amount, Amount, Option<Amount>) {
        let sum = |items: &mut dyn Iterator<Item = Amount>| {
            items.fold(Amount::ZERO, |total, a| total.checked_add(a).unwrap_or(Amount::MAX_MONEY))
        };
        let is_coin = |o: &&TxOut| o.asset == AssetId::Coin;
        let received =
            sum(&mut wtx.tx.outputs.iter().filter(is_coin).filter(|o| view.owner(o).is_some()).map(|o| o.amount));
        if wtx.tx.is_coinbase() {
            return (received, Amount::ZERO, None);
        }
        let spent = sum(&mut wtx
            .tx
            .inputs
            .iter()
            .filter_map(|i| self.owned_output(&i.prev_out, view))
            .filter(is_coin)
            .map(|o| o.amount));
        let inputs: Option<Vec<Amount>> = wtx
            .tx
            .inputs
            .iter()
            .map(|i| {
                let output = self.txs.get(&i.prev_out.txid)?.tx.outputs.get(i.prev_out.index as usize)?;
                (output.asset == AssetId::Coin).then_some(output.amount)
            })
            .collect();
        let fee = inputs.and_then(|inputs| {
            let paid_out = sum(&mut wtx.tx.outputs.iter().filter(|o| o.asset == AssetId::Coin).map(|o| o.amount));
            sum(&mut inputs.into_iter()).checked_sub(paid_out)
        });
        (received, spent, fee)
    }
}

impl Ledger {
    /// What a tracked transaction moves for the wallet of every asset other than the coin:
    /// per asset, what it pays the wallet's keys and what it spends of the wallet's outputs
    /// (burns count as spent).
    pub fn token_moves(
        &self,
        wtx: &WalletTx,
        view: &View<'_>,
    ) -> std::collections::BTreeMap<AssetId, (Amount, Amount)> {
        let mut moves: std::collections::BTreeMap<AssetId, (Amount, Amount)> = std::collections::BTreeMap::new();
        for output in wtx.tx.outputs.iter().filter(|o| o.asset != AssetId::Coin && view.owner(o).is_some()) {
            let entry = moves.entry(output.asset).or_default();
            entry.0 = entry.0.saturating_add(output.amount);
        }
        if !wtx.tx.is_coinbase() {
            for input in &wtx.tx.inputs {
                if let Some(output) = self.owned_output(&input.prev_out, view).filter(|o| o.asset != AssetId::Coin) {
                    let entry = moves.entry(output.asset).or_default();
                    entry.1 = entry.1.saturating_add(output.amount);
                }
            }
        }
        moves
    }
}

fn store_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Store { path: path.to_owned(), detail: e.to_string() }
}
