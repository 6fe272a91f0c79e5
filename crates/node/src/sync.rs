//! Routes network events to the chain: the status handshake, headers-first sync, parallel
//! block download, and gossip of transactions and block announcements (validated before they
//! are relayed). New blocks are announced compactly (BIP 152's idea): header, coinbase and
//! short ids; a peer rebuilds the block from its mempool, asks the announcer only for the
//! transactions it lacks, and relays the announcement once it holds the whole block.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::peers::Offence;
use peerchain_chain::{BlockOutcome, HeadersOutcome, MempoolReject, SubmitBlockError, SubmitTxError};
use peerchain_net::protocol::{MAX_BLOCK_TRANSACTIONS_REQUEST, MAX_BLOCKS_PER_REQUEST, MAX_HEADERS};
use peerchain_net::{Announcement, InboundId, MessageId, Peer, Request, Response, Status, SyncEvent, Topic, Verdict};
use peerchain_primitives::{Block, BlockHash, CompactBlock, Decode, Encode, Transaction};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Block requests in flight per peer.
const WINDOW_PER_PEER: usize = 4;
/// How long a block request may take before it is given to another peer. The network's own
/// request timeout is longer; a stuck request must not hold a peer's window that long.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a peer that answered without a block is not asked for it again.
const LACKING_RETRY: Duration = Duration::from_secs(5);

/// How often peers are asked for new headers, whatever gossip says.
const HEADER_POLL: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct PeerState {
    status: Option<Status>,
    in_flight: usize,
    syncing_headers: bool,
}

/// What a spawned request reports back to the loop.
enum Done {
    Status(Peer, Result<Status, String>),
    Headers(Peer, Result<usize, (Offence, String)>),
    /// A block request ended: the blocks asked for, and those the peer did not have.
    Blocks(Peer, Vec<BlockHash>, Result<Vec<BlockHash>, (Offence, String)>),
}

/// The missing transactions of a compact block arrived (or did not): the gossip message to
/// give a verdict on, who sent it, and the block if it could be completed.
struct Rebuilt {
    id: MessageId,
    source: Peer,
    hash: BlockHash,
    block: Result<Block, String>,
    /// How many of its transactions came from the announcer rather than the mempool.
    fetched: usize,
}

/// How many recently rebuilt or mined blocks are kept to answer peers' requests for their
/// transactions while they are still being connected.
const HELD_BLOCKS: usize = 8;

/// How long the announcer of a compact block has to send the transactions it lacks.
const COMPACT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct ChainSync {
    chain: peerchain_chain::Handle,
    net: peerchain_net::Handle,
    genesis: BlockHash,
    peers: HashMap<Peer, PeerState>,
    /// The node's misbehaviour book.
    book: crate::peers::Book,
    requested: HashMap<BlockHash, (Peer, Instant)>,
    /// Who announced a block we do not have yet: the first peer to ask for it.
    announced_by: HashMap<BlockHash, Peer>,
    /// Peers that answered a block request without the block, and when: a header can travel
    /// ahead of its body (gossip relays headers once they check out), so a peer may not have
    /// a block yet.
    lacking: HashMap<BlockHash, Vec<(Peer, Instant)>>,
    /// Tips already announced, so that a tip we return to is not announced twice.
    announced: std::collections::VecDeque<BlockHash>,
    done_sender: mpsc::Sender<Done>,
    done: mpsc::Receiver<Done>,
    /// Whether new tips are announced as compact blocks (else as headers).
    compact: bool,
    /// Blocks rebuilt from compact announcements or mined here, by hash, newest last: they
    /// answer peers' requests for their transactions also before they are connected.
    held: VecDeque<(BlockHash, Arc<Block>)>,
    rebuilt_sender: mpsc::Sender<Rebuilt>,
    rebuilt_results: mpsc::Receiver<Rebuilt>,
    /// Blocks a compact announcement was rebuilt for (or is being): each is rebuilt once.
    rebuilds: VecDeque<BlockHash>,
    /// Every task the loop starts: status and header requests, block downloads, compact
    /// blocks' missing transactions, answers to block requests (see [`ChainSync::serve_blocks`]).
    /// Stopped and awaited when the loop ends.
    tasks: tokio::task::JoinSet<()>,
    serving_slots: Arc<tokio::sync::Semaphore>,
}

/// Most requests for blocks read from the store at once.
const MAX_SERVING: usize = 4;

/// How many announcers and announced tips are remembered.
const REMEMBERED: usize = 4_096;

impl ChainSync {
    pub(crate) fn new(
        chain: peerchain_chain::Handle,
        net: peerchain_net::Handle,
        book: crate::peers::Book,
        compact: bool,
    ) -> Self {
        let genesis = chain.params().genesis_hash();
        let (done_sender, done) = mpsc::channel(256);
        let (rebuilt_sender, rebuilt_results) = mpsc::channel(64);
        Self {
            chain,
            net,
            genesis,
            peers: HashMap::new(),
            book,
            requested: HashMap::new(),
            announced_by: HashMap::new(),
            lacking: HashMap::new(),
            announced: std::collections::VecDeque::new(),
            done_sender,
            done,
            compact,
            held: VecDeque::new(),
            rebuilt_sender,
            rebuilt_results,
            rebuilds: VecDeque::new(),
            tasks: tokio::task::JoinSet::new(),
            serving_slots: Arc::new(tokio::sync::Semaphore::new(MAX_SERVING)),
        }
    }

    fn status(&self) -> Status {
        let tip = self.chain.tip();
        Status { genesis: self.genesis, best_height: tip.height, best_hash: tip.hash, total_work: tip.total_work }
    }

    pub(crate) async fn run(mut self, mut events: mpsc::Receiver<SyncEvent>, cancel: CancellationToken) {
        let mut tips = self.chain.subscribe_tip();
        let mut mined = self.chain.subscribe_mined();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        // Correctness: gossip can be lost (a full queue, a mesh that is still forming, a
        // connection that was replaced), so every few seconds each peer is also asked for what
        // follows our best header; when nothing does, the answer is empty and cheap.
        let mut poll = tokio::time::interval(HEADER_POLL);
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                // A block mined here goes out while it connects, not after.
                Ok((hash, block)) = mined.recv() => {
                    if self.remember_announced(hash) {
                        self.hold(hash, block.clone());
                        self.net.publish(Topic::Blocks, self.announcement(&block).to_bytes()).await;
                    }
                }
                Some(rebuilt) = self.rebuilt_results.recv() => self.rebuilt_block(rebuilt).await,
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                Some(done) = self.done.recv() => {
                    // Bodies are fetched as soon as headers or blocks arrive, not at the next tick.
                    let fetch_now = matches!(done, Done::Headers(..) | Done::Blocks(..));
                    self.finished(done).await;
                    if fetch_now {
                        self.fetch().await;
                    }
                }
                event = events.recv() => match event {
                    Some(event) => self.event(event).await,
                    None => break,
                },
                Ok(()) = tips.changed() => {
                    let tip = *tips.borrow_and_update();
                    if self.remember_announced(tip.hash) {
                        self.announce(tip.hash).await;
                    }
                }
                _ = tick.tick() => self.fetch().await,
                _ = poll.tick() => {
                    let peers: Vec<Peer> = self.peers.keys().copied().collect();
                    for peer in peers {
                        self.sync_headers(peer);
                    }
                }
            }
        }
        self.tasks.shutdown().await;
    }

    /// Keeps a block to answer requests for its transactions, dropping the oldest held.
    fn hold(&mut self, hash: BlockHash, block: Arc<Block>) {
        if self.held.len() == HELD_BLOCKS {
            self.held.pop_front();
        }
        self.held.push_back((hash, block));
    }

    /// Notes that `hash` was announced; false if it already was.
    fn remember_announced(&mut self, hash: BlockHash) -> bool {
        if self.announced.contains(&hash) {
            return false;
        }
        if self.announced.len() == REMEMBERED {
            self.announced.pop_front();
        }
        self.announced.push_back(hash);
        true
    }

    /// Announces a new tip, compactly or by its header, unless it is old (a node catching up
    /// stays quiet). A node that got the block otherwise than by a compact announcement
    /// announces it too; identical announcements pass gossip's content-hash ids once.
    async fn announce(&self, hash: BlockHash) {
        let Ok(Some((block, _, _))) = self.chain.block(&hash) else { return };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if block.header.time + 3600 > now {
            self.net.publish(Topic::Blocks, self.announcement(&block).to_bytes()).await;
        }
    }

    /// A block's announcement: compact, or its header alone.
    fn announcement(&self, block: &Block) -> Announcement {
        match CompactBlock::of(block) {
            Some(compact) if self.compact => Announcement::Compact(compact),
            _ => Announcement::Header(block.header),
        }
    }

    async fn event(&mut self, event: SyncEvent) {
        match event {
            SyncEvent::PeerConnected(info) => {
                self.book.set_address(info.peer, info.ip);
                self.peers.insert(info.peer, PeerState::default());
                let (net, status, done) = (self.net.clone(), self.status(), self.done_sender.clone());
                self.tasks.spawn(async move {
                    let result = match net.request(info.peer, Request::Status(status)).await {
                        Ok(Response::Status(theirs)) => Ok(theirs),
                        Ok(other) => Err(format!("answered status with {other:?}")),
                        Err(e) => Err(e.to_string()),
                    };
                    let _ = done.send(Done::Status(info.peer, result)).await;
                });
            }
            SyncEvent::PeerDisconnected(peer) => {
                self.book.set_address(peer, None);
                self.peers.remove(&peer);
                self.requested.retain(|_, (p, _)| *p != peer);
            }
            SyncEvent::Request {
                request: request @ (Request::GetBlocks(_) | Request::GetBlockTransactions { .. }),
                id,
                ..
            } => {
                self.serve_blocks(request, id).await;
            }
            SyncEvent::Request { request, id, .. } => {
                let response = self.answer(request).await;
                self.net.respond(id, response).await;
            }
            SyncEvent::Gossip { topic: Topic::Transactions, data, source, id } => {
                self.on_transactions(&data, source, id).await
            }
            SyncEvent::Gossip { topic: Topic::Blocks, data, source, id } => {
                self.on_announcement(&data, source, id).await
            }
            // Offers go to the market's stream; none comes here.
            SyncEvent::Gossip { topic: Topic::Offers | Topic::Contracts, source, id, .. } => {
                self.net.report(id, source, peerchain_net::Verdict::Ignore).await
            }
        }
    }

    /// A batch of transactions from gossip. It travels on when one of its transactions is
    /// new here and none is invalid; one that brings nothing new stops (its transactions are
    /// spreading in another batch).
    async fn on_transactions(&mut self, data: &[u8], source: Peer, id: MessageId) {
        let verdict = match peerchain_net::protocol::decode_transaction_batch(data) {
            Err(_) => Verdict::Reject,
            Ok(transactions) => {
                let mut verdict = Verdict::Ignore;
                for tx in transactions {
                    match self.chain.submit_transaction(tx).await {
                        Ok(_) => verdict = Verdict::Accept,
                        // Security: valid a block later, and a peer a block ahead of us relays
                        // it in good faith: not misbehaviour.
                        Err(SubmitTxError::Rejected(MempoolReject::Invalid(reason))) if reason.depends_on_height() => {}
                        Err(SubmitTxError::Rejected(MempoolReject::Invalid(_) | MempoolReject::Coinbase)) => {
                            verdict = Verdict::Reject;
                            break;
                        }
                        Err(_) => {}
                    }
                }
                verdict
            }
        };
        self.net.report(id, source, verdict).await;
        if verdict == Verdict::Reject {
            self.penalise(source, Offence::InvalidTransaction, "invalid transaction gossip").await;
        }
    }

    /// A block announcement from gossip: its header goes to the chain; a compact one is
    /// rebuilt from the mempool when the block would be our next tip.
    async fn on_announcement(&mut self, data: &[u8], source: Peer, id: MessageId) {
        let (header, compact) = match Announcement::from_bytes(data) {
            Ok(Announcement::Header(header)) => (header, None),
            Ok(Announcement::Compact(compact)) => (compact.header, Some(compact)),
            Err(_) => {
                self.net.report(id, source, Verdict::Reject).await;
                self.penalise(source, Offence::Malformed, "undecodable block announcement").await;
                return;
            }
        };
        let hash = header.hash();
        let verdict = match self.chain.submit_headers(vec![header]).await {
            Ok(outcome) => {
                if self.announced_by.len() >= REMEMBERED {
                    self.announced_by.clear();
                }
                // Correctness: the announcer has the block now; its status from the handshake
                // may be older.
                self.announced_by.insert(hash, source);
                match compact {
                    Some(compact) if !self.has_block(&hash) => {
                        match self.rebuild_allowed(hash, &outcome) {
                            // The verdict waits for the whole block.
                            Ok(()) => return self.rebuild(compact, id, source).await,
                            Err(offence) => {
                                self.net.report(id, source, Verdict::Ignore).await;
                                if let Some(offence) = offence {
                                    let reason = "compact announcement of a block being rebuilt";
                                    self.penalise(source, offence, reason).await;
                                }
                                return self.fetch().await;
                            }
                        }
                    }
                    _ if outcome.new > 0 => Verdict::Accept,
                    _ => Verdict::Ignore,
                }
            }
            Err(SubmitBlockError::UnknownParent { .. }) => {
                self.sync_headers(source);
                Verdict::Ignore
            }
            // Security: a header a little ahead of our clock is valid on a machine whose clock
            // is right; one whose ancestor (or itself) turned out invalid was relayed, headers
            // first, before anyone could know. Neither is the relayer's fault: dropped, not
            // held against it.
            Err(SubmitBlockError::Rejected(reject)) if reject.depends_on_clock() || reject.is_inherited() => {
                debug!(%hash, %reject, "announcement not relayed");
                Verdict::Ignore
            }
            Err(SubmitBlockError::KnownInvalid(_)) => Verdict::Ignore,
            Err(SubmitBlockError::Rejected(reject)) => {
                self.net.report(id, source, Verdict::Reject).await;
                self.penalise(source, Offence::Invalid, &format!("invalid block announcement: {reject}")).await;
                return;
            }
            Err(_) => Verdict::Ignore,
        };
        self.net.report(id, source, verdict).await;
        self.fetch().await;
    }

    /// Whether a compact announcement of `hash` (whose header `outcome` describes) is worth
    /// rebuilding from the mempool, which costs the chain thread a pass over it. Security:
    /// only once per block, and only for a block that would be our next tip: other blocks come
    /// by download. `Err(Some(offence))` when the announcer should pay for asking.
    fn rebuild_allowed(&mut self, hash: BlockHash, outcome: &HeadersOutcome) -> Result<(), Option<Offence>> {
        if self.rebuilds.contains(&hash) {
            return Err(Some(Offence::RepeatedAnnouncement));
        }
        let tip = self.chain.tip();
        if outcome.last_work <= tip.total_work || outcome.last_height > tip.height.saturating_add(2) {
            return Err(None);
        }
        if self.rebuilds.len() == REMEMBERED {
            self.rebuilds.pop_front();
        }
        self.rebuilds.push_back(hash);
        Ok(())
    }

    fn has_block(&self, hash: &BlockHash) -> bool {
        self.held_block(hash).is_some() || self.chain.has_block(hash)
    }

    /// A block held here (see [`ChainSync::hold`]).
    fn held_block(&self, hash: &BlockHash) -> Option<&Arc<Block>> {
        self.held.iter().find(|(held, _)| held == hash).map(|(_, block)| block)
    }

    /// Rebuilds a compactly announced block from the mempool; the transactions it lacks are
    /// asked of the announcer by a task that reports back with a [`Rebuilt`].
    async fn rebuild(&mut self, compact: CompactBlock, id: MessageId, source: Peer) {
        let hash = compact.header.hash();
        let compact = Arc::new(compact);
        let Ok(slots) = self.chain.match_compact(compact.clone()).await else { return };
        let missing: Vec<u32> = slots.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| i as u32).collect();
        debug!(%hash, transactions = slots.len(), missing = missing.len(), "compact block");
        if missing.is_empty() {
            let block = compact.assemble(slots).ok_or_else(|| "incomplete".to_owned());
            self.rebuilt_block(Rebuilt { id, source, hash, block, fetched: 0 }).await;
            return;
        }
        if missing.len() > MAX_BLOCK_TRANSACTIONS_REQUEST {
            let block = Err(format!("{} transactions missing", missing.len()));
            self.rebuilt_block(Rebuilt { id, source, hash, block, fetched: 0 }).await;
            return;
        }
        let (net, done) = (self.net.clone(), self.rebuilt_sender.clone());
        self.tasks.spawn(async move {
            let request = Request::GetBlockTransactions { block: hash, slots: missing.clone() };
            let block = match tokio::time::timeout(COMPACT_TIMEOUT, net.request(source, request)).await {
                Ok(Ok(Response::Transactions(found))) if found.len() == missing.len() => {
                    let mut slots = slots;
                    for (slot, tx) in missing.iter().zip(found) {
                        slots[*slot as usize] = Some(tx);
                    }
                    compact.assemble(slots).ok_or_else(|| "incomplete".to_owned())
                }
                Ok(Ok(other)) => Err(format!("answered block transactions with {other:?}")),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no transactions within {COMPACT_TIMEOUT:?}")),
            };
            let _ = done.send(Rebuilt { id, source, hash, block, fetched: missing.len() }).await;
        });
    }

    /// A compact block is whole (or cannot be made so): relay the announcement and connect
    /// the block, or fall back to downloading it.
    async fn rebuilt_block(&mut self, Rebuilt { id, source, hash, block, fetched }: Rebuilt) {
        // A short-id collision or a peer's wrong transactions show as a merkle mismatch: the
        // block is then downloaded whole, nobody is blamed.
        let block = block.and_then(|block| {
            if block.compute_merkle_root() == block.header.merkle_root {
                Ok(block)
            } else {
                Err("rebuilt transactions do not match the merkle root".to_owned())
            }
        });
        match block {
            Ok(block) => {
                info!(%hash, transactions = block.transactions.len(), fetched, "block rebuilt from its compact announcement");
                self.net.report(id, source, Verdict::Accept).await;
                // Accepted, the announcement travels on through gossip: announcing the block
                // again once it is connected would only repeat it.
                self.remember_announced(hash);
                let block = Arc::new(block);
                self.hold(hash, block.clone());
                let chain = self.chain.clone();
                self.tasks.spawn(async move {
                    match chain.submit_block(block).await {
                        Ok(BlockOutcome::NewTip { height, .. }) => debug!(%hash, height, "block connected"),
                        Ok(_) => {}
                        Err(e) => warn!(%hash, error = %e, "rebuilt block not taken"),
                    }
                });
            }
            Err(reason) => {
                debug!(%hash, %reason, "compact block not rebuilt; downloading it");
                self.net.report(id, source, Verdict::Ignore).await;
                self.fetch().await;
            }
        }
    }

    /// Answers the cheap requests: status and headers (the chain thread reads its index).
    async fn answer(&self, request: Request) -> Response {
        match request {
            Request::Status(_) => Response::Status(self.status()),
            Request::GetHeaders { locator, max } => {
                let max = (max as usize).min(MAX_HEADERS);
                match self.chain.headers_after(locator, max).await {
                    Ok(headers) => Response::Headers(headers),
                    Err(_) => Response::Refused("shutting down".into()),
                }
            }
            Request::GetBlocks(_) | Request::GetBlockTransactions { .. } => {
                Response::Refused("blocks are served by serve_blocks".into())
            }
        }
    }

    /// Answers a request for blocks or block transactions off this loop: reading and
    /// decoding megabytes from the store must not hold up sync and gossip. Security: at most
    /// [`MAX_SERVING`] such reads run at once; more are refused as busy.
    async fn serve_blocks(&mut self, request: Request, id: InboundId) {
        let Ok(permit) = self.serving_slots.clone().try_acquire_owned() else {
            self.net.respond(id, Response::Refused("busy".into())).await;
            return;
        };
        // A block held here (mined, announced and still connecting) is served too: a peer that
        // had its header only asks for it at once.
        let wanted: Vec<BlockHash> = match &request {
            Request::GetBlocks(hashes) => hashes.clone(),
            Request::GetBlockTransactions { block, .. } => vec![*block],
            _ => Vec::new(),
        };
        let held: Vec<Arc<Block>> = wanted.iter().filter_map(|h| self.held_block(h).cloned()).collect();
        let (chain, net) = (self.chain.clone(), self.net.clone());
        self.tasks.spawn(async move {
            let response = tokio::task::spawn_blocking(move || serve_from_store(&chain, request, &held))
                .await
                .unwrap_or_else(|_| Response::Refused("failed".into()));
            net.respond(id, response).await;
            drop(permit);
        });
    }

    /// Adds an offence to a peer's record in the node's book; a banned peer is dropped here.
    async fn penalise(&mut self, peer: Peer, offence: Offence, reason: &str) {
        if self.book.penalise(peer, offence, reason).await {
            self.peers.remove(&peer);
            self.requested.retain(|_, (p, _)| *p != peer);
        }
    }

    async fn finished(&mut self, done: Done) {
        match done {
            Done::Status(peer, Ok(status)) => {
                if status.genesis != self.genesis {
                    self.penalise(peer, Offence::WrongNetwork, "another genesis").await;
                    return;
                }
                info!(%peer, height = status.best_height, "peer status");
                let ahead = status.total_work > self.chain.tip().total_work;
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.status = Some(status);
                }
                if ahead {
                    self.sync_headers(peer);
                }
            }
            Done::Status(peer, Err(reason)) => debug!(%peer, %reason, "no status"),
            Done::Headers(peer, result) => {
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.syncing_headers = false;
                }
                match result {
                    Ok(count) if count >= MAX_HEADERS => self.sync_headers(peer),
                    Ok(_) => {}
                    Err((offence, reason)) => self.penalise(peer, offence, &format!("header sync: {reason}")).await,
                }
            }
            Done::Blocks(peer, hashes, result) => {
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.in_flight = state.in_flight.saturating_sub(1);
                }
                for hash in &hashes {
                    self.requested.remove(hash);
                    self.announced_by.remove(hash);
                }
                match result {
                    Ok(lacked) => {
                        if self.lacking.len() >= REMEMBERED {
                            self.lacking.clear();
                        }
                        for hash in lacked {
                            self.lacking.entry(hash).or_default().push((peer, Instant::now()));
                        }
                    }
                    Err((offence, reason)) => self.penalise(peer, offence, &format!("block download: {reason}")).await,
                }
            }
        }
    }

    /// Asks `peer` for the headers after our best one.
    fn sync_headers(&mut self, peer: Peer) {
        let Some(state) = self.peers.get_mut(&peer) else { return };
        if state.syncing_headers {
            return;
        }
        state.syncing_headers = true;
        let (chain, net, done) = (self.chain.clone(), self.net.clone(), self.done_sender.clone());
        self.tasks.spawn(async move {
            let result = async {
                let locator = chain.locator().await.map_err(|e| (Offence::Timeout, e.to_string()))?;
                match net.request(peer, Request::GetHeaders { locator, max: MAX_HEADERS as u32 }).await {
                    Ok(Response::Headers(headers)) => {
                        let count = headers.len();
                        if count > MAX_HEADERS {
                            return Err((Offence::Malformed, "too many headers".to_owned()));
                        }
                        if count > 0 {
                            let outcome = chain.submit_headers(headers).await.map_err(|e| match e {
                                // A clock a little behind theirs: the headers are fine, and
                                // are asked for again at the next poll.
                                SubmitBlockError::Rejected(ref reject) if reject.depends_on_clock() => {
                                    (Offence::Timeout, e.to_string())
                                }
                                // Their main chain holds a block that breaks a rule (an honest
                                // node's main chain holds only blocks it validated).
                                SubmitBlockError::Rejected(_) | SubmitBlockError::KnownInvalid(_) => {
                                    (Offence::Invalid, e.to_string())
                                }
                                SubmitBlockError::UnknownParent { .. } => (Offence::Disconnected, e.to_string()),
                                other => (Offence::Timeout, other.to_string()),
                            })?;
                            info!(%peer, count, best_header_height = outcome.best_header_height, "headers");
                        }
                        Ok(count)
                    }
                    Ok(Response::Refused(reason)) => Ok(usize::from(reason.is_empty())),
                    Ok(other) => Err((Offence::Malformed, format!("answered headers with {other:?}"))),
                    Err(e) => Err((Offence::Timeout, e.to_string())),
                }
            }
            .await;
            let _ = done.send(Done::Headers(peer, result)).await;
        });
    }

    /// Spreads the download of missing blocks over peers, a few batches each.
    async fn fetch(&mut self) {
        let now = Instant::now();
        self.requested.retain(|_, (_, at)| now.duration_since(*at) < BLOCK_TIMEOUT);
        let Ok(missing) = self.chain.missing_blocks(256).await else { return };
        let wanted: Vec<BlockHash> = missing.into_iter().filter(|h| !self.requested.contains_key(h)).collect();
        let our_work = self.chain.tip().total_work;
        let mut candidates: Vec<Peer> = self
            .peers
            .iter()
            .filter(|(_, s)| s.status.is_some_and(|st| st.total_work > our_work) && s.in_flight < WINDOW_PER_PEER)
            .map(|(p, _)| *p)
            .collect();
        if candidates.is_empty() {
            // A peer that announced a block may have it even if its status is stale.
            candidates = self.peers.iter().filter(|(_, s)| s.in_flight < WINDOW_PER_PEER).map(|(p, _)| *p).collect();
        }
        if !wanted.is_empty() {
            debug!(wanted = wanted.len(), candidates = candidates.len(), requested = self.requested.len(), "fetch");
        }
        if candidates.is_empty() || wanted.is_empty() {
            return;
        }
        // Each block goes to the peer that announced it if it can take more, else round-robin;
        // blocks for the same peer are batched. Correctness: a peer that just answered without
        // a block is not asked for it again for a while, else two peers that both lack it would
        // be asked in a tight loop while the peers that have it are never tried.
        self.lacking.retain(|_, peers| {
            peers.retain(|(_, at)| now.duration_since(*at) < LACKING_RETRY);
            !peers.is_empty()
        });
        candidates.sort();
        let mut batches: HashMap<Peer, Vec<BlockHash>> = HashMap::new();
        for (index, hash) in wanted.into_iter().enumerate() {
            let lacks = |peer: &Peer| self.lacking.get(&hash).is_some_and(|l| l.iter().any(|(p, _)| p == peer));
            let announcer = self
                .announced_by
                .get(&hash)
                .copied()
                .filter(|p| self.peers.get(p).is_some_and(|s| s.in_flight < WINDOW_PER_PEER) && !lacks(p));
            let start = index / MAX_BLOCKS_PER_REQUEST;
            let rotated = (0..candidates.len()).map(|i| candidates[(start + i) % candidates.len()]).find(|p| !lacks(p));
            // Nobody left to ask right now: the next tick tries again.
            let Some(peer) = announcer.or(rotated) else { continue };
            batches.entry(peer).or_default().push(hash);
        }
        for (peer, hashes) in batches {
            for batch in hashes.chunks(MAX_BLOCKS_PER_REQUEST) {
                let Some(state) = self.peers.get_mut(&peer) else { break };
                if state.in_flight >= WINDOW_PER_PEER {
                    break;
                }
                state.in_flight += 1;
                let hashes = batch.to_vec();
                for hash in &hashes {
                    self.requested.insert(*hash, (peer, now));
                }
                let (chain, net, done) = (self.chain.clone(), self.net.clone(), self.done_sender.clone());
                self.tasks.spawn(async move {
                    let result = download(&chain, &net, peer, &hashes).await;
                    let _ = done.send(Done::Blocks(peer, hashes, result)).await;
                });
            }
        }
    }
}

/// The answer to a request for blocks or block transactions, read from the store (or from
/// `held`, blocks this node holds while they connect). Blocks known to be invalid are never
/// served: left out as if lacked.
fn serve_from_store(chain: &peerchain_chain::Handle, request: Request, held: &[Arc<Block>]) -> Response {
    let held_block =
        |hash: &BlockHash| held.iter().find(|b| b.hash() == *hash).filter(|_| !chain.is_known_invalid(hash));
    match request {
        Request::GetBlocks(hashes) => Response::Blocks(
            hashes
                .iter()
                .filter_map(|h| {
                    chain.servable_block_bytes(h).ok().flatten().or_else(|| held_block(h).map(|b| b.to_bytes()))
                })
                .collect(),
        ),
        Request::GetBlockTransactions { block, slots } => {
            let found = held_block(&block).cloned().or_else(|| {
                if chain.is_known_invalid(&block) {
                    return None;
                }
                chain.block(&block).ok().flatten().map(|(b, _, _)| Arc::new(b))
            });
            let Some(found) = found else { return Response::Refused("unknown block".into()) };
            // Slot i is the transaction after the coinbase at i.
            let transactions: Option<Vec<Transaction>> =
                slots.iter().map(|slot| found.transactions.get(*slot as usize + 1).cloned()).collect();
            match transactions {
                Some(transactions) => Response::Transactions(transactions),
                None => Response::Refused("no such transaction in the block".into()),
            }
        }
        Request::Status(_) | Request::GetHeaders { .. } => Response::Refused("not a block request".into()),
    }
}

async fn download(
    chain: &peerchain_chain::Handle,
    net: &peerchain_net::Handle,
    peer: Peer,
    hashes: &[BlockHash],
) -> Result<Vec<BlockHash>, (Offence, String)> {
    let response = tokio::time::timeout(BLOCK_TIMEOUT, net.request(peer, Request::GetBlocks(hashes.to_vec())))
        .await
        .map_err(|_| (Offence::Timeout, format!("no blocks within {BLOCK_TIMEOUT:?}")))?
        .map_err(|e| (Offence::Timeout, e.to_string()))?;
    let blocks = match response {
        Response::Blocks(blocks) => blocks,
        // Busy or rate limited: as if it lacked them; another peer is asked.
        Response::Refused(reason) => {
            debug!(%peer, %reason, "block request refused");
            return Ok(hashes.to_vec());
        }
        other => return Err((Offence::Malformed, format!("answered blocks with {other:?}"))),
    };
    let mut delivered = Vec::with_capacity(blocks.len());
    for bytes in blocks {
        let block = Block::from_bytes(&bytes).map_err(|e| (Offence::Malformed, format!("undecodable block: {e}")))?;
        let hash = block.hash();
        // Security: only blocks that were asked for are taken.
        if !hashes.contains(&hash) {
            return Err((Offence::Unrequested, format!("sent unrequested block {hash}")));
        }
        delivered.push(hash);
        match chain.submit_block(block).await {
            Ok(BlockOutcome::NewTip { height, .. }) => debug!(%hash, height, "block connected"),
            Ok(_) => {}
            // Security: a body that does not match its header never comes from an honest
            // node; the header's block is not blamed (the chain did not mark it).
            Err(SubmitBlockError::Rejected(reject)) if reject.is_mutation() => {
                return Err((Offence::Mutated, reject.to_string()));
            }
            // The body is the header's and breaks a rule: the block is marked invalid and
            // never asked for again. The peer may have stored it without validating it yet
            // (a side branch, or a block still connecting), as it relays headers before
            // bodies: it is not held to account.
            Err(e @ (SubmitBlockError::Rejected(_) | SubmitBlockError::KnownInvalid(_))) => {
                info!(%peer, %hash, error = %e, "downloaded block is invalid");
            }
            Err(e) => debug!(%hash, error = %e, "block not taken"),
        }
    }
    Ok(hashes.iter().filter(|h| !delivered.contains(h)).copied().collect())
}
