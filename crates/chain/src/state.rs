//! The chain state machine, synchronous: the actor in `lib.rs` runs it on its own thread.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::collections::VecDeque;

use peerchain_consensus::{
    BlockReject, CURRENT_VERSION, Params, SigCache, ValidationError, check_block, check_header, coinbase_transaction,
    connect_checked_block,
};
use peerchain_primitives::{Amount, Block, BlockHash, BlockHeader, Encode, KeyHash, OutPoint, Transaction, TxId, Work};
use peerchain_store::{IndexEntry, Store, TxLocation};
use tracing::{debug, info, warn};

use crate::coins::{CachedView, CoinCache};
use crate::index::BlockIndex;
use crate::mempool::{Mempool, MempoolReject};
use crate::{Error, SubmitBlockError, TipInfo};

/// What became of a submitted block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockOutcome {
    /// It (or a chain through it) became the new tip.
    NewTip {
        /// The new tip.
        tip: BlockHash,
        /// The new height.
        height: u32,
        /// Blocks disconnected from the old main chain (0 unless a reorganisation).
        disconnected: usize,
    },
    /// Stored, valid so far, but on a branch with less work than the tip.
    SideBranch,
    /// Already known with its data.
    AlreadyKnown,
}

/// Why a reorganisation was abandoned.
enum ReorgFailure {
    /// A block on the new branch is invalid.
    Invalid(BlockHash, Box<BlockReject>),
    /// The store failed.
    Failed(Error),
}

impl From<Error> for ReorgFailure {
    fn from(e: Error) -> Self {
        ReorgFailure::Failed(e)
    }
}

impl From<peerchain_store::Error> for ReorgFailure {
    fn from(e: peerchain_store::Error) -> Self {
        ReorgFailure::Failed(e.into())
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// How long non-durable commits may pile up while catching up before one is made durable.
const DURABLE_INTERVAL: Duration = Duration::from_secs(2);

/// How long UTXO changes may stay in the coin cache: a crash replays at most this much.
const WRITE_BACK_INTERVAL: Duration = Duration::from_secs(300);

pub(crate) struct ChainState {
    pub(crate) params: Params,
    pub(crate) store: Arc<Store>,
    pub(crate) index: BlockIndex,
    pub(crate) mempool: Mempool,
    last_durable: Instant,
    /// Recently submitted blocks with their txids, so that connecting them needs no second
    /// read, decode and context-free check.
    recent: VecDeque<(BlockHash, Arc<Block>, Arc<Vec<TxId>>)>,
    /// A read snapshot for mempool checks, reused until the store changes: opening one per
    /// transaction costs more than checking it.
    mempool_reader: Option<peerchain_store::Reader>,
    /// Transactions whose parents have not arrived yet.
    orphans: crate::orphans::OrphanPool,
    /// UTXO changes since the store's coins tip.
    coins: CoinCache,
    coin_cache_bytes: usize,
    last_write_back: Instant,
    /// Signatures the mempool verified, not verified again in a block.
    sig_cache: Arc<SigCache>,
    max_low_work_headers: usize,
    /// Counters for metrics.
    stats: Arc<crate::Stats>,
}

/// How many signatures the signature cache remembers (about 100 bytes each).
const SIG_CACHE_ENTRIES: usize = 200_000;

/// How many recently submitted blocks are kept decoded.
const RECENT_BLOCKS: usize = 16;

impl ChainState {
    pub(crate) fn open(
        store: Arc<Store>,
        params: Params,
        config: crate::Config,
        stats: Arc<crate::Stats>,
    ) -> Result<Self, Error> {
        let reader = store.read()?;
        let entries = reader.all_entries()?;
        let tip = reader.coins_tip()?;
        let saved_mempool = reader.saved_mempool()?;
        drop(reader);
        // The main chain is the coins tip's ancestry: the main-chain rows may be ahead of it
        // (blocks connected after the last write-back), or from a branch left since.
        let main = {
            let by_hash: std::collections::HashMap<BlockHash, &IndexEntry> =
                entries.iter().map(|(h, e)| (*h, e)).collect();
            let mut main = Vec::new();
            let mut cursor = tip;
            loop {
                let entry = by_hash
                    .get(&cursor)
                    .ok_or_else(|| Error::Inconsistent(format!("main chain block {cursor} has no index entry")))?;
                main.push(cursor);
                if entry.height == 0 {
                    break;
                }
                cursor = entry.header.prev_hash;
            }
            main.reverse();
            main
        };
        let index = BlockIndex::load(entries, main);
        let mut state = ChainState {
            params,
            store,
            index,
            mempool: Mempool::new(config.mempool),
            last_durable: Instant::now(),
            recent: VecDeque::new(),
            mempool_reader: None,
            orphans: crate::orphans::OrphanPool::default(),
            coins: CoinCache::default(),
            coin_cache_bytes: config.coin_cache_bytes,
            last_write_back: Instant::now(),
            sig_cache: Arc::new(SigCache::new(SIG_CACHE_ENTRIES)),
            max_low_work_headers: config.max_low_work_headers,
            stats,
        };
        info!(height = state.index.height(), tip = %state.index.tip(), headers = state.index.len(), "chain loaded");
        // Blocks stored but not connected when the node stopped, or connected after the last
        // write-back of the coin cache before a crash, are connected now.
        state.activate_best_chain()?;
        // Not durable on its own: a crash before the next durable commit truncates again.
        let height = state.index.height();
        state.store.write(false, |w| w.truncate_main_chain(height))?;
        let restored = saved_mempool.len();
        let mut accepted = 0;
        for tx in saved_mempool {
            if state.accept_transaction(tx).is_ok() {
                accepted += 1;
            }
        }
        if restored > 0 {
            info!(restored, accepted, "mempool reloaded");
        }
        Ok(state)
    }

    /// See [`crate::fees::estimate`]: the mempool now and the last few main-chain blocks.
    pub(crate) fn estimate_fee(&self, target: u32) -> Result<crate::FeeEstimate, Error> {
        let tip = self.index.tip_entry().height;
        let reader = self.store.read()?;
        let mut recent = Vec::with_capacity(crate::fees::RECENT_BLOCKS);
        for height in (1..=tip).rev().take(crate::fees::RECENT_BLOCKS) {
            if let Some(hash) = reader.main_hash(height)?
                && let Some(block) = reader.block(&hash)?
            {
                recent.push((block, height));
            }
        }
        Ok(crate::fees::estimate(&self.mempool, &recent, &self.params, target))
    }

    pub(crate) fn tip_info(&self) -> TipInfo {
        let entry = self.index.tip_entry();
        TipInfo { hash: self.index.tip(), height: entry.height, total_work: entry.total_work, time: entry.header.time }
    }

    /// Validates a header whose parent is known and adds it to the index, in memory: the
    /// caller saves what is worth saving (see [`ChainState::save_headers`]). Returns its entry.
    pub(crate) fn accept_header(&mut self, header: &BlockHeader) -> Result<IndexEntry, SubmitBlockError> {
        let hash = header.hash();
        if let Some(node) = self.index.get(&hash) {
            if node.entry.invalid {
                return Err(SubmitBlockError::KnownInvalid(hash));
            }
            return Ok(node.entry);
        }
        let Some(parent) = self.index.get(&header.prev_hash) else {
            return Err(SubmitBlockError::UnknownParent { hash, parent: header.prev_hash });
        };
        if parent.entry.invalid {
            return Err(SubmitBlockError::Rejected(BlockReject::InvalidAncestor { hash, ancestor: header.prev_hash }));
        }
        let context = self.index.child_context(&header.prev_hash, &self.params, now_seconds());
        check_header(header, &context, &self.params)?;
        Ok(self.index.insert_header(hash, *header))
    }

    /// Accepts headers in order; stops at the first that fails.
    ///
    /// Security: a header costs its proof of work, which on a branch forked long ago from a
    /// chain of low difficulty is little. So only headers whose branch has as much work as the
    /// tip are written to the store (one write for the batch, not durable: a header lost in a
    /// crash is fetched again); those of branches with less work stay in memory, at most
    /// [`crate::Config::max_low_work_headers`], until their branch catches up or is forgotten.
    pub(crate) fn submit_headers(
        &mut self,
        headers: &[BlockHeader],
    ) -> Result<crate::HeadersOutcome, SubmitBlockError> {
        let mut new = 0;
        let mut last = None;
        let mut failure = None;
        for header in headers {
            let known = self.index.get(&header.hash()).is_some();
            match self.accept_header(header) {
                Ok(entry) => last = Some(entry),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
            if !known {
                new += 1;
            }
        }
        self.save_headers(last.iter().map(|entry| entry.header.hash()))?;
        if let Some(e) = failure {
            return Err(e);
        }
        let best_header = self.index.best_header();
        let best_header_height = self.index.get(&best_header).map_or(0, |n| n.entry.height);
        let (last_height, last_work) = last.map_or((0, Work::default()), |e| (e.height, e.total_work));
        Ok(crate::HeadersOutcome { new, best_header, best_header_height, last_height, last_work })
    }

    /// Writes the headers of `hashes` (and their unsaved ancestors) whose branch has at least
    /// the tip's work; forgets the oldest low-work headers beyond the cap.
    fn save_headers(&mut self, hashes: impl IntoIterator<Item = BlockHash>) -> Result<(), Error> {
        let tip_work = self.index.tip_entry().total_work;
        let mut entries = Vec::new();
        for hash in hashes {
            if self.index.get(&hash).is_some_and(|n| n.entry.total_work >= tip_work) {
                entries.extend(self.index.mark_saved(hash));
            }
        }
        if !entries.is_empty() {
            self.store.write(false, |w| {
                for (hash, entry) in &entries {
                    w.put_entry(hash, entry)?;
                }
                Ok::<_, Error>(())
            })?;
        }
        let forgotten = self.index.forget_unsaved_beyond(self.max_low_work_headers);
        if forgotten > 0 {
            debug!(forgotten, held = self.index.unsaved_len(), "low-work headers forgotten");
        }
        Ok(())
    }

    /// Blocks to download: those on the way to the best header, once its chain has the
    /// network's minimum work (a cheap chain of headers gets none of its blocks fetched).
    pub(crate) fn missing_blocks(&mut self, max: usize) -> Vec<BlockHash> {
        let best = self.index.best_header();
        if self.index.get(&best).is_none_or(|n| n.entry.total_work < self.params.min_chain_work) {
            return Vec::new();
        }
        self.index.missing_blocks(max)
    }

    pub(crate) fn sync_state(&self) -> crate::SyncState {
        let best_header = self.index.best_header();
        crate::SyncState {
            tip: self.tip_info(),
            best_header,
            best_header_height: self.index.get(&best_header).map_or(0, |n| n.entry.height),
            low_work_headers: self.index.unsaved_len(),
        }
    }

    pub(crate) fn locator(&self) -> Vec<BlockHash> {
        self.index.locator(self.index.best_header())
    }

    pub(crate) fn headers_after(&self, locator: &[BlockHash], max: usize) -> Vec<BlockHeader> {
        if locator.is_empty() { Vec::new() } else { self.index.headers_after(locator, max) }
    }

    /// Accepts a full block: header checks, storage, and, if it makes a heavier chain,
    /// connection (with a reorganisation if needed).
    pub(crate) fn submit_block(&mut self, block: Arc<Block>) -> Result<BlockOutcome, SubmitBlockError> {
        let hash = block.hash();
        if let Some(node) = self.index.get(&hash) {
            if node.entry.invalid {
                return Err(SubmitBlockError::KnownInvalid(hash));
            }
            if node.entry.has_data {
                return Ok(BlockOutcome::AlreadyKnown);
            }
        }
        let mut entry = self.accept_header(&block.header)?;
        let txids = match check_block(&block, &self.params) {
            Ok(txids) => txids,
            // Security: a body that does not match its header is the sender's fault, not the
            // header's: reject it without marking the header invalid, or anyone could get a
            // valid block ignored forever by relaying it with altered transactions first.
            // check_block reports nothing else until the body is proven to be the header's.
            Err(reject) if reject.is_mutation() => {
                self.save_headers([hash])?;
                return Err(reject.into());
            }
            Err(reject) => {
                self.save_headers([hash])?;
                self.invalidate(hash)?;
                return Err(reject.into());
            }
        };
        entry.has_data = true;
        let bytes = block.to_bytes();
        // The block's unsaved ancestors (headers of a low-work branch) are saved with it.
        let mut entries = self.index.mark_saved(hash);
        entries.retain(|(saved, _)| *saved != hash);
        // Not durable on its own: connecting it commits durably right after, and a block on a
        // side branch lost in a crash is fetched again.
        self.store.write(false, |w| {
            for (hash, entry) in &entries {
                w.put_entry(hash, entry)?;
            }
            w.put_block(&hash, &bytes)?;
            w.put_entry(&hash, &entry)
        })?;
        self.index.set_entry(&hash, entry);
        if self.recent.len() == RECENT_BLOCKS {
            self.recent.pop_front();
        }
        self.recent.push_back((hash, block, Arc::new(txids)));
        self.index.mark_has_data(hash);
        let before = self.index.tip();
        let disconnected = self.activate_best_chain()?;
        self.write_back_if_due()?;
        if self.index.get(&hash).is_some_and(|n| n.entry.invalid) {
            return Err(SubmitBlockError::KnownInvalid(hash));
        }
        if self.index.tip() != before {
            let tip = self.index.tip();
            return Ok(BlockOutcome::NewTip { tip, height: self.index.height(), disconnected });
        }
        Ok(BlockOutcome::SideBranch)
    }

    /// Marks a block and its descendants invalid, in memory and on disk (those saved).
    fn invalidate(&mut self, hash: BlockHash) -> Result<(), Error> {
        self.stats.invalid_blocks.fetch_add(1, Ordering::Relaxed);
        let marked = self.index.mark_invalid(hash);
        self.write_entries(&marked)
    }

    /// Clears the invalid mark of a block, its ancestors and descendants, and moves to the
    /// best chain again, which may now run through it; answers with the new tip.
    pub(crate) fn reconsider(&mut self, hash: BlockHash) -> Result<crate::TipInfo, SubmitBlockError> {
        if self.index.get(&hash).is_none() {
            return Err(SubmitBlockError::UnknownBlock(hash));
        }
        let cleared = self.index.clear_invalid(hash);
        info!(%hash, cleared = cleared.len(), "invalid marks cleared");
        self.write_entries(&cleared)?;
        self.activate_best_chain()?;
        Ok(self.tip_info())
    }

    /// Writes the current entries of `hashes` (those saved), durably.
    fn write_entries(&mut self, hashes: &[BlockHash]) -> Result<(), Error> {
        let entries: Vec<(BlockHash, IndexEntry)> =
            hashes.iter().filter_map(|h| self.index.get(h).filter(|n| n.saved).map(|n| (*h, n.entry))).collect();
        self.store.write(true, |w| {
            for (hash, entry) in &entries {
                w.put_entry(hash, entry)?;
            }
            Ok::<_, Error>(())
        })?;
        Ok(())
    }

    /// Moves the tip to the best connectable candidate, one atomic reorganisation at a time;
    /// a candidate whose branch holds an invalid block has that block and its descendants
    /// marked invalid and the next best is tried. Returns how many blocks were disconnected.
    pub(crate) fn activate_best_chain(&mut self) -> Result<usize, Error> {
        let mut total_disconnected = 0;
        while let Some(target) = self.index.best_candidate() {
            let (disconnect, connect) = self.index.path_to(target);
            let params = self.params.clone();
            let blocks_to_connect = match self.load_checked(&connect)? {
                Ok(blocks) => blocks,
                Err((bad, reject)) => {
                    warn!(block = %bad, %reject, "invalid stored block");
                    self.invalidate(bad)?;
                    continue;
                }
            };
            let first_height = self.index.get(&connect[0]).expect("path nodes are known").entry.height;
            // Durable when the result is near the present: while catching up on old blocks,
            // commits are made durable at most every DURABLE_INTERVAL.
            let target_time = blocks_to_connect.last().map(|(b, _)| b.header.time).unwrap_or(0);
            let durable = target_time + 3600 > now_seconds() || self.last_durable.elapsed() >= DURABLE_INTERVAL;
            // Correctness: a rejected block fails the whole write, so the transaction aborts and
            // no part of the reorganisation is kept.
            // The UTXO set is about to change: the mempool's snapshot goes stale.
            self.mempool_reader = None;
            // Correctness: the coin cache changes with the store transaction, and is put back
            // if it aborts.
            let coins = &mut self.coins;
            let sig_cache = &self.sig_cache;
            coins.begin();
            let started = Instant::now();
            let result = self.store.write(durable, |w| -> Result<Vec<Transaction>, ReorgFailure> {
                let mut returned = Vec::new();
                for hash in &disconnect {
                    let height = self.index.get(hash).expect("main chain nodes are known").entry.height;
                    let block =
                        w.block(hash)?.ok_or_else(|| Error::Inconsistent(format!("main block {hash} has no data")))?;
                    let spent = w.disconnect(&block, height)?;
                    coins.disconnect(&block, spent);
                    returned.extend(block.transactions.iter().skip(1).cloned());
                }
                for (offset, (block, txids)) in blocks_to_connect.iter().enumerate() {
                    let height = first_height + offset as u32;
                    let hash = connect[offset];
                    let invalid = |e: ValidationError| match e {
                        ValidationError::Reject(reject) => ReorgFailure::Invalid(hash, Box::new(reject)),
                        ValidationError::View(e) => Error::Inconsistent(e.0).into(),
                    };
                    let view = CachedView { cache: coins, store: &*w };
                    let pending = connect_checked_block(block, txids.to_vec(), height, &view, &params, Some(sig_cache))
                        .map_err(invalid)?;
                    // Correctness: the effects are written while the signatures are still being
                    // verified; a failure returns an error, which aborts the whole write.
                    w.connect(&hash, height, &pending.effects)?;
                    coins.connect(&pending.effects, height);
                    pending.finish().map_err(invalid)?;
                }
                Ok(returned)
            });
            if result.is_ok() {
                self.coins.commit();
            } else {
                self.coins.rollback();
            }
            match result {
                Ok(returned) => {
                    if durable {
                        self.last_durable = Instant::now();
                    }
                    let stats = &self.stats;
                    stats.connect_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                    stats.blocks_connected.fetch_add(connect.len() as u64, Ordering::Relaxed);
                    if !disconnect.is_empty() {
                        stats.reorganisations.fetch_add(1, Ordering::Relaxed);
                        stats.blocks_disconnected.fetch_add(disconnect.len() as u64, Ordering::Relaxed);
                    }
                    self.after_reorganisation(&disconnect, &connect, &blocks_to_connect, returned);
                    total_disconnected += disconnect.len();
                }
                Err(ReorgFailure::Failed(e)) => return Err(e),
                Err(ReorgFailure::Invalid(bad, reject)) => {
                    warn!(block = %bad, %reject, "invalid block");
                    self.invalidate(bad)?;
                }
            }
        }
        Ok(total_disconnected)
    }

    /// The blocks of `hashes`, decoded and context-free checked: from the recent cache, or read
    /// from the store and checked now. A stored block that fails its checks is returned as
    /// the rejection.
    #[allow(clippy::type_complexity)]
    fn load_checked(
        &self,
        hashes: &[BlockHash],
    ) -> Result<Result<Vec<(Arc<Block>, Arc<Vec<TxId>>)>, (BlockHash, BlockReject)>, Error> {
        let mut blocks = Vec::with_capacity(hashes.len());
        let mut reader = None;
        for hash in hashes {
            if let Some((_, block, txids)) = self.recent.iter().find(|(h, _, _)| h == hash) {
                blocks.push((block.clone(), txids.clone()));
                continue;
            }
            let reader = match &mut reader {
                Some(reader) => reader,
                None => reader.insert(self.store.read()?),
            };
            let block = reader.block(hash)?.ok_or_else(|| Error::Inconsistent(format!("block {hash} has no data")))?;
            match check_block(&block, &self.params) {
                Ok(txids) => blocks.push((Arc::new(block), Arc::new(txids))),
                Err(reject) => return Ok(Err((*hash, reject))),
            }
        }
        Ok(Ok(blocks))
    }

    fn after_reorganisation(
        &mut self,
        disconnect: &[BlockHash],
        connect: &[BlockHash],
        blocks: &[(Arc<Block>, Arc<Vec<TxId>>)],
        returned: Vec<Transaction>,
    ) {
        let keep = self.index.main.len() - disconnect.len();
        self.index.main.truncate(keep);
        self.index.main.extend_from_slice(connect);
        // Orphans whose parents are now confirmed get another chance.
        let confirmed_now: Vec<TxId> = blocks.iter().flat_map(|(_, txids)| txids.iter().copied()).collect();
        self.orphans.expire();
        if disconnect.is_empty() {
            for (block, _) in blocks {
                self.mempool.remove_for_block(&block.transactions);
            }
            self.mempool.remove_expired(self.index.height() + 1);
        } else {
            // Correctness: after a reorganisation, transactions of the abandoned branch and
            // everything that waited are revalidated against the new chain, in an order that
            // puts parents first (abandoned blocks' transactions, then older waiting ones).
            let waiting = self.mempool.drain();
            let confirmed: std::collections::HashSet<TxId> =
                blocks.iter().flat_map(|(_, txids)| txids.iter().copied()).collect();
            let mut restored = 0;
            for tx in returned.into_iter().chain(waiting) {
                if confirmed.contains(&tx.txid()) {
                    continue;
                }
                if self.accept_transaction(tx).is_ok() {
                    restored += 1;
                }
            }
            info!(disconnected = disconnect.len(), connected = connect.len(), restored, "chain reorganised");
        }
        self.retry_orphans_of(&confirmed_now);
        let tip = self.index.tip_entry();
        debug!(height = tip.height, tip = %self.index.tip(), "new tip");
    }

    /// Validates a transaction against the tip and adds it to the mempool. One whose parent is
    /// unknown is kept in the orphan pool (and still reported as missing inputs); every
    /// orphan waiting for an accepted transaction is tried again.
    pub(crate) fn accept_transaction(&mut self, tx: Transaction) -> Result<TxId, MempoolReject> {
        let result = self.accept_one(tx.clone());
        match &result {
            Ok(_) => self.stats.mempool_accepted.fetch_add(1, Ordering::Relaxed),
            Err(reject) => self.stats.mempool_refused[reject.kind()].fetch_add(1, Ordering::Relaxed),
        };
        match &result {
            Ok(txid) => self.retry_orphans_of(&[*txid]),
            Err(MempoolReject::MissingInputs(missing)) => {
                let txid = tx.txid();
                // A transaction that is itself confirmed misses its inputs too: never an orphan.
                let confirmed = self.tx_location(&txid).ok().flatten().is_some();
                if !confirmed {
                    self.orphans.insert(tx, missing.txid);
                }
            }
            Err(_) => {}
        }
        result
    }

    /// Tries again the orphans waiting for any of `parents`, and theirs in turn.
    fn retry_orphans_of(&mut self, parents: &[TxId]) {
        let mut queue: Vec<TxId> = parents.to_vec();
        while let Some(parent) = queue.pop() {
            for orphan in self.orphans.take_children(&parent) {
                match self.accept_one(orphan.clone()) {
                    Ok(txid) => queue.push(txid),
                    Err(MempoolReject::MissingInputs(missing)) => self.orphans.insert(orphan, missing.txid),
                    Err(_) => {}
                }
            }
        }
    }

    fn accept_one(&mut self, tx: Transaction) -> Result<TxId, MempoolReject> {
        let reader = match &mut self.mempool_reader {
            Some(reader) => reader,
            slot @ None => slot.insert(
                self.store.read().map_err(|e| MempoolReject::View(peerchain_consensus::ViewError(e.to_string())))?,
            ),
        };
        let next_height = self.index.height() + 1;
        let txs = &self.coins.txs;
        let is_confirmed = |txid: &TxId| matches!(txs.get_or(txid, || reader.tx_location(txid)), Ok(Some(_)));
        let view = CachedView { cache: &self.coins, store: &*reader };
        self.mempool.accept(tx, &view, next_height, is_confirmed, &self.params, &self.sig_cache)
    }

    /// A block template on the tip paying the reward and fees to `key_hash`.
    pub(crate) fn template(&self, key_hash: KeyHash, extra: Vec<u8>) -> Block {
        let tip = self.index.tip();
        let height = self.index.height() + 1;
        let context = self.index.child_context(&tip, &self.params, now_seconds());
        let time = now_seconds().max(context.median_time_past + 1);
        // Room for the header, the transaction count and a generous coinbase.
        let room = self.params.max_block_size - crate::fees::COINBASE_RESERVE;
        let (transactions, fees) = self.mempool.select(room);
        let reward = self.params.subsidy(height).checked_add(fees).unwrap_or(Amount::MAX_MONEY);
        let mut all = Vec::with_capacity(transactions.len() + 1);
        all.push(coinbase_transaction(height, reward, key_hash, extra));
        all.extend(transactions);
        let mut block = Block {
            header: BlockHeader {
                version: CURRENT_VERSION,
                prev_hash: tip,
                merkle_root: Default::default(),
                time,
                bits: context.expected_bits,
                nonce: 0,
            },
            transactions: all,
        };
        block.header.merkle_root = block.compute_merkle_root();
        block
    }

    /// Writes the coin cache back when it is over its size or has waited long enough.
    fn write_back_if_due(&mut self) -> Result<(), Error> {
        if self.coins.bytes() > self.coin_cache_bytes || self.last_write_back.elapsed() >= WRITE_BACK_INTERVAL {
            self.write_back(true)?;
        }
        Ok(())
    }

    /// Writes the coin cache back to the store and empties it; `durable` unless a durable
    /// commit follows at once.
    fn write_back(&mut self, durable: bool) -> Result<(), Error> {
        let started = Instant::now();
        let outputs = self.coins.coins.len();
        let tip = self.index.tip();
        self.store.write(durable, |w| {
            w.write_back(self.coins.coins.changes(OutPoint::to_key), self.coins.txs.changes(|txid| txid.0), &tip)
        })?;
        self.coins.clear();
        self.mempool_reader = None;
        self.last_write_back = Instant::now();
        if durable {
            self.last_durable = self.last_write_back;
        }
        debug!(
            outputs,
            height = self.index.height(),
            took_ms = started.elapsed().as_millis() as u64,
            "coin cache written back"
        );
        Ok(())
    }

    /// Unspent outputs at the tip through the coin cache, and who in the mempool spends them.
    pub(crate) fn coins(&self, outpoints: &[OutPoint]) -> Result<crate::CoinsAt, Error> {
        let reader = self.store.read()?;
        let view = CachedView { cache: &self.coins, store: &reader };
        let coins = outpoints
            .iter()
            .map(|o| peerchain_consensus::UtxoView::coin(&view, o))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| peerchain_store::Error::Corrupt { what: "coin", detail: e.0 })?;
        let spenders = outpoints.iter().map(|o| self.mempool.spender(o)).collect();
        Ok(crate::CoinsAt { height: self.index.height(), tip: self.index.tip(), coins, spenders })
    }

    /// Where a main-chain transaction is: in the coin cache, or else in the store.
    pub(crate) fn tx_location(&self, txid: &TxId) -> Result<Option<TxLocation>, Error> {
        self.coins.txs.get_or(txid, || Ok(self.store.read()?.tx_location(txid)?))
    }

    /// Writes the coin cache back and opens a snapshot of the store at the tip.
    pub(crate) fn snapshot(&mut self) -> Result<peerchain_store::Reader, Error> {
        self.write_back(true)?;
        Ok(self.store.read()?)
    }

    /// Saves the mempool and makes everything durable, at shutdown.
    pub(crate) fn shutdown(&mut self) -> Result<(), Error> {
        // The mempool's durable save right after makes the write-back durable too.
        self.write_back(false)?;
        let transactions: Vec<Transaction> = self.mempool.transactions().cloned().collect();
        self.store.write(true, |w| w.save_mempool(&transactions))?;
        info!(saved_mempool = transactions.len(), height = self.index.height(), "chain state saved");
        Ok(())
    }
}
