//! The chain state: which blocks form the main chain, the UTXO set they produce, the mempool,
//! block templates and mining.
//!
//! One actor owns the state and is the store's only writer. It runs on its own OS thread,
//! because connecting a block is CPU work (signature batches) and disk work that must not
//! stall the async executor; everyone else holds a cloneable [`Handle`] and talks to it over a
//! bounded channel. Reads of stored blocks and transactions go straight to the store through
//! redb read transactions. This crate must never know about the network or RPC.

mod coins;
pub mod fees;
mod index;
mod mempool;
pub mod miner;
mod orphans;
mod state;
mod verify;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use peerchain_consensus::{BlockReject, Params};
use peerchain_primitives::{
    Block, BlockHash, BlockHeader, Coin, CompactBlock, KeyHash, OutPoint, Transaction, TxId, Work,
};
use peerchain_store::Store;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::error;

pub use fees::FeeEstimate;
pub use mempool::{
    EXPIRY_MARGIN, MAX_ANCESTOR_BYTES, MAX_ANCESTORS, MAX_DESCENDANTS, MAX_REPLACEMENT_EVICTIONS, Mempool,
    MempoolLimits, MempoolReject,
};
pub use miner::{MinerConfig, run_miner, search_nonce, solve};
/// Fee rates, as the mempool and the wallet both speak them.
pub use peerchain_primitives::FeeRate;
pub use state::BlockOutcome;
pub use verify::{MAX_PROBLEMS, VerifyReport, verify};

/// Failures of the chain machinery itself (not of a block or transaction).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] peerchain_store::Error),
    /// Stored state contradicts itself.
    #[error("chain state is inconsistent: {0}")]
    Inconsistent(String),
    /// The chain actor has stopped.
    #[error("the chain has shut down")]
    Stopped,
    /// A write to the store failed (a full disk, an I/O error): the chain takes no more blocks
    /// until the node is restarted.
    #[error("the chain stopped taking blocks after a storage failure: {0}")]
    Halted(String),
}

/// Why a block was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitBlockError {
    /// Its parent is unknown: headers must come first.
    #[error("block {hash} has unknown parent {parent}")]
    UnknownParent {
        /// The block.
        hash: BlockHash,
        /// Its parent.
        parent: BlockHash,
    },
    /// It was already found invalid.
    #[error("block {0} is known to be invalid")]
    KnownInvalid(BlockHash),
    /// No such block is known.
    #[error("block {0} is not known")]
    UnknownBlock(BlockHash),
    /// It breaks a rule.
    #[error(transparent)]
    Rejected(#[from] BlockReject),
    /// The chain failed while handling it.
    #[error(transparent)]
    Chain(#[from] Error),
    /// The chain actor has stopped.
    #[error("the chain has shut down")]
    Stopped,
}

impl From<peerchain_store::Error> for SubmitBlockError {
    fn from(e: peerchain_store::Error) -> Self {
        SubmitBlockError::Chain(e.into())
    }
}

/// Why a transaction was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitTxError {
    /// The mempool refused it.
    #[error(transparent)]
    Rejected(#[from] MempoolReject),
    /// The chain actor has stopped.
    #[error("the chain has shut down")]
    Stopped,
}

/// The current tip, published to watchers on every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TipInfo {
    /// Its hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// The main chain's total work.
    pub total_work: Work,
    /// Its time.
    pub time: u64,
}

/// Mempool figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolInfo {
    /// Transactions waiting.
    pub size: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Signatures verified as transactions entered, since start (the signature cache spares
    /// those verified before).
    pub signatures_verified: u64,
}

/// A transaction and where it is.
#[derive(Debug, Clone)]
pub struct TxLookup {
    /// The transaction.
    pub tx: Transaction,
    /// The block holding it, if confirmed.
    pub block_hash: Option<BlockHash>,
    /// That block's height.
    pub height: Option<u32>,
    /// Blocks on top of and including it (0 while in the mempool).
    pub confirmations: u32,
}

/// Chain settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Mempool limits.
    pub mempool: MempoolLimits,
    /// How much memory the coin cache may take before it is written back to the store.
    pub coin_cache_bytes: usize,
    /// Most headers of branches with less work than the tip held in memory (they are not
    /// stored until their branch has as much work as the tip).
    pub max_low_work_headers: usize,
}

/// The default of [`Config::max_low_work_headers`]: about 12 MB.
pub const DEFAULT_LOW_WORK_HEADERS: usize = 50_000;

/// The coin cache's default size: a few minutes of full blocks, or a whole initial sync of a
/// small network, stay in memory.
pub const DEFAULT_COIN_CACHE_BYTES: usize = 256 << 20;

impl Default for Config {
    fn default() -> Self {
        Self {
            mempool: MempoolLimits::default(),
            coin_cache_bytes: DEFAULT_COIN_CACHE_BYTES,
            max_low_work_headers: DEFAULT_LOW_WORK_HEADERS,
        }
    }
}

/// A test a mempool transaction passes or not, run on the chain thread.
pub type TxFilter = Box<dyn Fn(&Transaction) -> bool + Send>;

enum Command {
    SubmitBlock(Arc<Block>, oneshot::Sender<Result<BlockOutcome, SubmitBlockError>>),
    SubmitTx(Transaction, oneshot::Sender<Result<TxId, MempoolReject>>),
    Template(KeyHash, Vec<u8>, oneshot::Sender<Block>),
    MempoolInfo(oneshot::Sender<MempoolInfo>),
    MempoolTx(TxId, oneshot::Sender<Option<Transaction>>),
    MempoolTxids(oneshot::Sender<Vec<TxId>>),
    SubmitHeaders(Vec<BlockHeader>, oneshot::Sender<Result<HeadersOutcome, SubmitBlockError>>),
    SyncState(oneshot::Sender<SyncState>),
    Locator(oneshot::Sender<Vec<BlockHash>>),
    HeadersAfter(Vec<BlockHash>, usize, oneshot::Sender<Vec<BlockHeader>>),
    MissingBlocks(usize, oneshot::Sender<Vec<BlockHash>>),
    EstimateFee(u32, oneshot::Sender<Result<FeeEstimate, Error>>),
    MempoolMatching(TxFilter, oneshot::Sender<Vec<Transaction>>),
    /// Fills a compact block's transactions from the mempool.
    MatchCompact(Arc<CompactBlock>, oneshot::Sender<Vec<Option<Transaction>>>),
    /// Where a main-chain transaction is.
    TxLocation(TxId, oneshot::Sender<Result<Option<peerchain_store::TxLocation>, Error>>),
    /// Writes the coin cache back and opens a snapshot of the store at the tip.
    Snapshot(oneshot::Sender<Result<peerchain_store::Reader, Error>>),
    /// Unspent outputs at the tip, and the waiting transactions spending them.
    Coins(Vec<OutPoint>, oneshot::Sender<Result<CoinsAt, Error>>),
    /// Clears invalid marks (see [`Handle::reconsider`]).
    Reconsider(BlockHash, oneshot::Sender<Result<TipInfo, SubmitBlockError>>),
    Shutdown(oneshot::Sender<Result<(), Error>>),
}

/// Outputs as the chain's tip sees them: for each asked, the unspent confirmed output (none if
/// spent or unknown) and the waiting transaction that spends it, if any.
#[derive(Debug, Clone, Default)]
pub struct CoinsAt {
    /// The tip's height.
    pub height: u32,
    /// The tip.
    pub tip: BlockHash,
    /// Per outpoint asked, in order.
    pub coins: Vec<Option<Coin>>,
    /// Per outpoint asked, in order.
    pub spenders: Vec<Option<TxId>>,
}

/// What became of a batch of headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadersOutcome {
    /// How many were new.
    pub new: usize,
    /// The best header after them.
    pub best_header: BlockHash,
    /// Its height.
    pub best_header_height: u32,
    /// The height of the last header of the batch.
    pub last_height: u32,
    /// The total work of the chain it ends.
    pub last_work: Work,
}

/// Where this node stands, for peers and for sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    /// The main chain's tip.
    pub tip: TipInfo,
    /// The best known header (ahead of the tip while syncing).
    pub best_header: BlockHash,
    /// Its height.
    pub best_header_height: u32,
    /// Headers of branches with less work than the tip, held in memory only.
    pub low_work_headers: usize,
}

/// What the chain did since the node started, for metrics: counters the chain thread bumps
/// and anyone reads without asking it.
#[derive(Debug, Default)]
pub struct Stats {
    /// Blocks connected to the main chain.
    pub blocks_connected: AtomicU64,
    /// Blocks taken off the main chain by reorganisations.
    pub blocks_disconnected: AtomicU64,
    /// Reorganisations (a tip change that disconnected blocks).
    pub reorganisations: AtomicU64,
    /// Blocks found invalid.
    pub invalid_blocks: AtomicU64,
    /// Microseconds spent connecting blocks (validation and the store's write).
    pub connect_micros: AtomicU64,
    /// Transactions the mempool accepted.
    pub mempool_accepted: AtomicU64,
    /// Transactions the mempool refused, by [`MempoolReject::kind`].
    pub mempool_refused: [AtomicU64; MempoolReject::KINDS.len()],
}

/// A cloneable handle on the chain actor.
#[derive(Clone)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    tip: watch::Receiver<TipInfo>,
    /// Blocks made here, told before they connect (see [`Handle::submit_mined_block`]).
    mined: broadcast::Sender<(BlockHash, Arc<Block>)>,
    store: Arc<Store>,
    params: Arc<Params>,
    stats: Arc<Stats>,
    /// Why the chain halted, once a write to the store failed.
    failure: watch::Receiver<Option<String>>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("chain::Handle").field("tip", &*self.tip.borrow()).finish()
    }
}

/// How many mined blocks a slow subscriber may fall behind by (it then misses the oldest).
const MINED_QUEUE: usize = 16;

/// How many commands may wait for the actor.
const COMMAND_QUEUE: usize = 1024;

/// Loads the chain from `store` and starts its actor on a thread of its own.
pub fn spawn(
    store: Arc<Store>,
    params: Params,
    config: Config,
) -> Result<(Handle, std::thread::JoinHandle<()>), Error> {
    let stats = Arc::new(Stats::default());
    let state = state::ChainState::open(store.clone(), params.clone(), config, stats.clone())?;
    let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
    let (tip_sender, tip) = watch::channel(state.tip_info());
    let (failure_sender, failure) = watch::channel(None);
    let actor = Actor { state, receiver, tip_sender, failure: failure_sender };
    let thread = std::thread::Builder::new()
        .name("chain".into())
        .spawn(move || actor.run())
        .map_err(|e| Error::Inconsistent(format!("cannot start the chain thread: {e}")))?;
    let (mined, _) = broadcast::channel(MINED_QUEUE);
    Ok((Handle { commands, tip, mined, store, params: Arc::new(params), stats, failure }, thread))
}

/// The chain actor: the state, its commands, and the watchers of its tip. It runs on a thread
/// of its own (connecting a block is CPU and disk work the async executor must not wait on)
/// until a `Shutdown` command or until every handle is gone.
struct Actor {
    state: state::ChainState,
    receiver: mpsc::Receiver<Command>,
    tip_sender: watch::Sender<TipInfo>,
    failure: watch::Sender<Option<String>>,
}

impl Actor {
    fn run(mut self) {
        while let Some(command) = self.receiver.blocking_recv() {
            if self.handle(command).is_break() {
                return;
            }
        }
        // Every handle is gone without an explicit shutdown: save anyway.
        if let Err(e) = self.state.shutdown() {
            error!(error = %e, "chain state not saved at exit");
        }
    }

    /// Correctness: the new tip is published before the submitter is answered, so that
    /// whoever submitted a block sees it as the tip.
    fn publish_tip(&self) {
        self.tip_sender.send_if_modified(|tip| {
            let now = self.state.tip_info();
            std::mem::replace(tip, now) != now
        });
    }

    /// Correctness: after a write to the store failed (redb takes no more writes once one
    /// failed) the chain halts rather than go on with a state it cannot save: it takes no more
    /// blocks, never marks one invalid for the disk's fault, and tells the node, which stops
    /// cleanly, as Bitcoin Core does on a full disk. What was committed before stays.
    fn halt_on_storage_failure<T>(&self, outcome: &Result<T, SubmitBlockError>) {
        if let Err(SubmitBlockError::Chain(Error::Store(e))) = outcome
            && self.failure.borrow().is_none()
        {
            let reason = e.to_string();
            error!(error = %reason, "cannot write the chain store; the chain takes no more blocks and the node stops");
            self.failure.send_replace(Some(reason));
        }
    }

    /// The refusal of a block while halted.
    fn halted(&self) -> Option<SubmitBlockError> {
        self.failure.borrow().clone().map(|reason| SubmitBlockError::Chain(Error::Halted(reason)))
    }

    fn handle(&mut self, command: Command) -> std::ops::ControlFlow<()> {
        match command {
            Command::SubmitBlock(block, reply) => {
                if let Some(refusal) = self.halted() {
                    let _ = reply.send(Err(refusal));
                    return std::ops::ControlFlow::Continue(());
                }
                let outcome = self.state.submit_block(block);
                self.halt_on_storage_failure(&outcome);
                self.publish_tip();
                let _ = reply.send(outcome);
            }
            Command::Reconsider(hash, reply) => {
                if let Some(refusal) = self.halted() {
                    let _ = reply.send(Err(refusal));
                    return std::ops::ControlFlow::Continue(());
                }
                let outcome = self.state.reconsider(hash);
                self.halt_on_storage_failure(&outcome);
                self.publish_tip();
                let _ = reply.send(outcome);
            }
            Command::Shutdown(reply) => {
                let _ = reply.send(self.state.shutdown());
                return std::ops::ControlFlow::Break(());
            }
            other => self.answer(other),
        }
        std::ops::ControlFlow::Continue(())
    }

    /// Commands that only read or change the mempool.
    fn answer(&mut self, command: Command) {
        let state = &mut self.state;
        match command {
            Command::SubmitTx(tx, reply) => {
                let _ = reply.send(state.accept_transaction(tx));
            }
            Command::Template(key_hash, extra, reply) => {
                let _ = reply.send(state.template(key_hash, extra));
            }
            Command::MempoolInfo(reply) => {
                let _ = reply.send(MempoolInfo {
                    size: state.mempool.len(),
                    bytes: state.mempool.bytes(),
                    signatures_verified: state.mempool.signatures_verified(),
                });
            }
            Command::MempoolTx(txid, reply) => {
                let _ = reply.send(state.mempool.get(&txid).cloned());
            }
            Command::MempoolTxids(reply) => {
                let _ = reply.send(state.mempool.transactions().map(Transaction::txid).collect());
            }
            Command::SubmitHeaders(headers, reply) => {
                let _ = reply.send(state.submit_headers(&headers));
            }
            Command::SyncState(reply) => {
                let _ = reply.send(state.sync_state());
            }
            Command::Locator(reply) => {
                let _ = reply.send(state.locator());
            }
            Command::HeadersAfter(locator, max, reply) => {
                let _ = reply.send(state.headers_after(&locator, max));
            }
            Command::MissingBlocks(max, reply) => {
                let _ = reply.send(state.missing_blocks(max));
            }
            Command::EstimateFee(target, reply) => {
                let _ = reply.send(state.estimate_fee(target));
            }
            Command::MempoolMatching(filter, reply) => {
                let _ = reply.send(state.mempool.transactions().filter(|tx| filter(tx)).cloned().collect());
            }
            Command::MatchCompact(compact, reply) => {
                let _ = reply.send(compact.match_transactions(state.mempool.with_wtxids()));
            }
            Command::TxLocation(txid, reply) => {
                let _ = reply.send(state.tx_location(&txid));
            }
            Command::Coins(outpoints, reply) => {
                let _ = reply.send(state.coins(&outpoints));
            }
            Command::Snapshot(reply) => {
                let _ = reply.send(state.snapshot());
            }
            Command::SubmitBlock(..) | Command::Reconsider(..) | Command::Shutdown(..) => {
                unreachable!("handled by Actor::handle")
            }
        }
    }
}

impl Handle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, response) = oneshot::channel();
        self.commands.send(make(reply)).await.ok()?;
        response.await.ok()
    }

    /// Submits a block; see [`BlockOutcome`].
    pub async fn submit_block(&self, block: impl Into<Arc<Block>>) -> Result<BlockOutcome, SubmitBlockError> {
        let block = block.into();
        self.ask(|r| Command::SubmitBlock(block, r)).await.unwrap_or(Err(SubmitBlockError::Stopped))
    }

    /// Submits a block this node made on one of its own templates. Subscribers
    /// ([`Handle::subscribe_mined`]) hear of it first, when its proof of work checks out and
    /// it builds on the tip, so that it can be announced while it connects: the node's own
    /// template holds transactions it already validated. (Bitcoin Core sends compact blocks
    /// at the same point, before full validation.)
    pub async fn submit_mined_block(&self, block: Block) -> Result<BlockOutcome, SubmitBlockError> {
        let hash = block.hash();
        let proven = block.header.bits.expand().is_some_and(|target| target.is_met_by(&hash));
        let block = Arc::new(block);
        if proven && block.header.prev_hash == self.tip().hash && self.mined.receiver_count() > 0 {
            let _ = self.mined.send((hash, block.clone()));
        }
        self.submit_block(block).await
    }

    /// A receiver of the blocks made here, as [`Handle::submit_mined_block`] tells them.
    pub fn subscribe_mined(&self) -> broadcast::Receiver<(BlockHash, Arc<Block>)> {
        self.mined.subscribe()
    }

    /// Submits a transaction to the mempool.
    pub async fn submit_transaction(&self, tx: Transaction) -> Result<TxId, SubmitTxError> {
        match self.ask(|r| Command::SubmitTx(tx, r)).await {
            Some(result) => result.map_err(SubmitTxError::Rejected),
            None => Err(SubmitTxError::Stopped),
        }
    }

    /// A block template on the tip paying `reward_to`, with `extra` in the coinbase.
    pub async fn block_template(&self, reward_to: KeyHash, extra: Vec<u8>) -> Result<Block, Error> {
        self.ask(|r| Command::Template(reward_to, extra, r)).await.ok_or(Error::Stopped)
    }

    /// Mempool figures.
    pub async fn mempool_info(&self) -> Result<MempoolInfo, Error> {
        self.ask(Command::MempoolInfo).await.ok_or(Error::Stopped)
    }

    /// The ids of every waiting transaction.
    pub async fn mempool_txids(&self) -> Result<Vec<TxId>, Error> {
        self.ask(Command::MempoolTxids).await.ok_or(Error::Stopped)
    }

    /// What the chain did since the node started.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Why the chain halted, if a write to its store failed (see [`Error::Halted`]).
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// Waits until the chain halts after a storage failure; returns why. Never returns while
    /// the store works.
    pub async fn halted(&self) -> String {
        let mut failure = self.failure.clone();
        loop {
            if let Some(reason) = failure.borrow_and_update().clone() {
                return reason;
            }
            if failure.changed().await.is_err() {
                // The actor is gone without a failure: nothing more will come.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The current tip.
    pub fn tip(&self) -> TipInfo {
        *self.tip.borrow()
    }

    /// A receiver told of every tip change.
    pub fn subscribe_tip(&self) -> watch::Receiver<TipInfo> {
        self.tip.clone()
    }

    /// The network parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// A main-chain block by height.
    pub fn block_at(&self, height: u32) -> Result<Option<Block>, Error> {
        let reader = self.store.read()?;
        match reader.main_hash(height)? {
            Some(hash) => Ok(reader.block(&hash)?),
            None => Ok(None),
        }
    }

    /// The main-chain block hash at `height`.
    pub fn main_hash(&self, height: u32) -> Result<Option<BlockHash>, Error> {
        Ok(self.store.read()?.main_hash(height)?)
    }

    /// The fee rate for inclusion within `target` blocks; see [`fees`].
    pub async fn estimate_fee(&self, target: u32) -> Result<FeeEstimate, Error> {
        self.ask(|r| Command::EstimateFee(target, r)).await.ok_or(Error::Stopped)?
    }

    /// The mempool transactions that pass `filter` (a wallet's own, say).
    pub async fn mempool_matching(&self, filter: TxFilter) -> Result<Vec<Transaction>, Error> {
        self.ask(|r| Command::MempoolMatching(filter, r)).await.ok_or(Error::Stopped)
    }

    /// The unspent confirmed outputs at `outpoints`, through the coin cache, with the waiting
    /// transactions spending them.
    pub async fn coins(&self, outpoints: Vec<OutPoint>) -> Result<CoinsAt, Error> {
        self.ask(|r| Command::Coins(outpoints, r)).await.ok_or(Error::Stopped)?
    }

    /// The outputs a connected block spent that existed before it (its undo data); none if it
    /// was never connected.
    pub fn spent_by_block(&self, hash: &BlockHash) -> Result<Option<Vec<(OutPoint, Coin)>>, Error> {
        Ok(self.store.read()?.spent_by_block(hash)?)
    }

    /// A stored block by hash (main chain or not), with its height and whether it is on the
    /// main chain.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<(Block, u32, bool)>, Error> {
        let reader = self.store.read()?;
        let (Some(block), Some(entry)) = (reader.block(hash)?, reader.entry(hash)?) else { return Ok(None) };
        let on_main = reader.main_hash(entry.height)? == Some(*hash);
        Ok(Some((block, entry.height, on_main)))
    }

    /// A transaction in the main chain or the mempool.
    pub async fn transaction(&self, txid: &TxId) -> Result<Option<TxLookup>, Error> {
        // The location comes from the chain thread (recent ones are in its coin cache), the
        // block from the store, which holds every connected block's data and main-chain row.
        let location = self.ask(|r| Command::TxLocation(*txid, r)).await.ok_or(Error::Stopped)??;
        {
            let reader = self.store.read()?;
            if let Some(location) = location {
                let hash = reader.main_hash(location.height)?.ok_or_else(|| {
                    Error::Inconsistent(format!("indexed height {} is not on the main chain", location.height))
                })?;
                let block =
                    reader.block(&hash)?.ok_or_else(|| Error::Inconsistent(format!("block {hash} has no data")))?;
                let tx = block
                    .transactions
                    .get(location.position as usize)
                    .cloned()
                    .ok_or_else(|| Error::Inconsistent(format!("transaction {txid} is not in block {hash}")))?;
                let tip = self.tip.borrow().height;
                return Ok(Some(TxLookup {
                    tx,
                    block_hash: Some(hash),
                    height: Some(location.height),
                    confirmations: tip.saturating_sub(location.height) + 1,
                }));
            }
        }
        let pending = self.ask(|r| Command::MempoolTx(*txid, r)).await.ok_or(Error::Stopped)?;
        Ok(pending.map(|tx| TxLookup { tx, block_hash: None, height: None, confirmations: 0 }))
    }

    /// Re-checks the whole stored chain against a replay, off the async executor. The coin
    /// cache is written back first, so that the stored UTXO set is that of the tip.
    pub async fn verify(&self) -> Result<VerifyReport, Error> {
        let reader = self.ask(Command::Snapshot).await.ok_or(Error::Stopped)??;
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || verify::verify(&reader, &params))
            .await
            .map_err(|e| Error::Inconsistent(format!("verification task failed: {e}")))?
    }

    /// Accepts a batch of headers, each extending a known one (headers-first sync).
    pub async fn submit_headers(&self, headers: Vec<BlockHeader>) -> Result<HeadersOutcome, SubmitBlockError> {
        self.ask(|r| Command::SubmitHeaders(headers, r)).await.unwrap_or(Err(SubmitBlockError::Stopped))
    }

    /// Where this node stands: cheap, asked on every block and every status call.
    pub async fn sync_state(&self) -> Result<SyncState, Error> {
        self.ask(Command::SyncState).await.ok_or(Error::Stopped)
    }

    /// A locator from the best header, to ask peers for the headers that follow. It walks
    /// back from the best header to the main chain: asked once per batch of headers.
    pub async fn locator(&self) -> Result<Vec<BlockHash>, Error> {
        self.ask(Command::Locator).await.ok_or(Error::Stopped)
    }

    /// Up to `max` main-chain headers after the first hash of `locator` on the main chain.
    pub async fn headers_after(&self, locator: Vec<BlockHash>, max: usize) -> Result<Vec<BlockHeader>, Error> {
        self.ask(|r| Command::HeadersAfter(locator, max, r)).await.ok_or(Error::Stopped)
    }

    /// A compact block's transactions found in the mempool, slot by slot (see
    /// [`CompactBlock::match_transactions`]).
    pub async fn match_compact(&self, compact: Arc<CompactBlock>) -> Result<Vec<Option<Transaction>>, Error> {
        self.ask(|r| Command::MatchCompact(compact, r)).await.ok_or(Error::Stopped)
    }

    /// Blocks on the way to the best header whose data is missing, lowest first; none while
    /// the best header's chain has less work than the network's minimum (see
    /// [`Params::min_chain_work`]).
    pub async fn missing_blocks(&self, max: usize) -> Result<Vec<BlockHash>, Error> {
        self.ask(|r| Command::MissingBlocks(max, r)).await.ok_or(Error::Stopped)
    }

    /// Whether the block's data is stored (read from its index entry, not the block).
    pub fn has_block(&self, hash: &BlockHash) -> bool {
        self.store.read().and_then(|r| r.entry(hash)).is_ok_and(|entry| entry.is_some_and(|e| e.has_data))
    }

    /// A stored block's encoding, as peers are sent it; none for a block known to be invalid.
    /// Security: a node serves no block it found invalid, so that its peers never judge it by
    /// a block it would not build on itself.
    pub fn servable_block_bytes(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, Error> {
        let reader = self.store.read()?;
        if reader.entry(hash)?.is_none_or(|entry| entry.invalid) {
            return Ok(None);
        }
        Ok(reader.block_bytes(hash)?)
    }

    /// Whether a block is known to be invalid.
    pub fn is_known_invalid(&self, hash: &BlockHash) -> bool {
        self.store.read().and_then(|r| r.entry(hash)).is_ok_and(|entry| entry.is_some_and(|e| e.invalid))
    }

    /// Clears the invalid mark of a block, its descendants and its ancestors, as Bitcoin
    /// Core's `reconsiderblock`, and moves to the best chain, which may now run through it
    /// (a block that is still invalid is marked again). Answers with the tip after.
    pub async fn reconsider(&self, hash: BlockHash) -> Result<TipInfo, SubmitBlockError> {
        self.ask(|r| Command::Reconsider(hash, r)).await.unwrap_or(Err(SubmitBlockError::Stopped))
    }

    /// Saves the mempool, makes everything durable and stops the actor.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.ask(Command::Shutdown).await.unwrap_or(Ok(()))
    }
}
