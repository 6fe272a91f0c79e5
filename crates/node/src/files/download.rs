//! Downloads: find who holds a content id, prove its size with the last piece, then let a
//! `blobs::Scheduler` hand pieces to every source while verified ranges are written; a
//! directory's manifest is fetched first, then every file it lists. A download survives
//! restarts (the store keeps what verified) and ends done or failed, never silently.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use peerchain_blobs::manifest::Manifest;
use peerchain_blobs::scheduler::Scheduler;
use peerchain_blobs::{
    Bitmap, ContentId, Entry, GROUP_BYTES, Kind, Store, WriteOutcome, group_count, piece_count, piece_groups,
};
use peerchain_net::{FileRequest, FileResponse, Peer, Price, RequestError};
use peerchain_primitives::Decode;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::pay::{self, Allowance};
use super::serve::pieces_held;
use super::{Files, blocking, content_key, lock};
use crate::peers::Offence;

/// How long a range request may take.
pub(super) const RANGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an info request may take.
const INFO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a download looks for providers before giving up.
const FIND_DEADLINE: Duration = Duration::from_secs(90);
/// How long a resumed download looks for holders before its transfer starts.
const RESUME_FIND: Duration = Duration::from_secs(10);
/// How often a running download looks for more sources.
const REFRESH_SOURCES: Duration = Duration::from_secs(5);
/// How often the DHT is asked for providers while none has proven the size yet.
const DHT_WHILE_FINDING: Duration = Duration::from_secs(15);
/// How often the DHT is asked for more providers while sources serve.
const DHT_WHILE_DOWNLOADING: Duration = Duration::from_secs(30);
/// Connected peers asked whether they hold a content id.
const ASK_CONNECTED: usize = 32;
/// Refusals of range requests after which a source is dropped (it may be busy, not lying).
const REFUSALS_BEFORE_DROP: u32 = 5;
/// Failed range requests (a dropped connection, a malformed answer) after which a source is
/// dropped.
const FAILURES_BEFORE_DROP: u32 = 3;

/// Where a download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Looking for peers that hold it.
    Finding,
    /// Fetching pieces.
    Downloading,
    /// Complete and written to its path.
    Done,
    /// Given up (the error says why).
    Failed,
}

impl State {
    /// Whether a download in this state has ended (`file.status` calls that wait return).
    pub(super) fn is_end(self) -> bool {
        matches!(self, State::Done | State::Failed)
    }
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum DownloadError {
    /// Stopped: removed, or the node is stopping.
    #[error("cancelled")]
    Cancelled,
    /// Nobody proved to hold it within the deadline.
    #[error("no peer provides {0}")]
    NoProvider(ContentId),
    /// The sources left before it was complete, and none came back in time.
    #[error("no peer provides the rest of {0}")]
    NoProviderForTheRest(ContentId),
    /// Removed from the store while downloading.
    #[error("the download was removed")]
    Removed,
    /// A directory's manifest does not decode.
    #[error("bad directory manifest: {0}")]
    BadManifest(peerchain_primitives::DecodeError),
    /// A file of a directory is not the size its manifest says.
    #[error("{path} has {got} bytes, the manifest says {expected}")]
    SizeMismatch {
        /// The file's path in the directory.
        path: String,
        /// What it has.
        got: u64,
        /// What the manifest says.
        expected: u64,
    },
    /// The blob store failed.
    #[error(transparent)]
    Store(#[from] peerchain_blobs::Error),
    /// Nobody shares it for free, and the cheapest seller asks more than the allowance.
    #[error("{0}")]
    ForSale(String),
    /// Paying for it failed: the channel could not be opened, a payment was refused.
    #[error("{0}")]
    Payment(String),
    /// The output could not be written.
    #[error("{path}: {source}")]
    Output {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A download's shared progress, read by `file.status`.
pub(super) struct Progress {
    pub(super) id: ContentId,
    pub(super) path: PathBuf,
    pub(super) name: Mutex<String>,
    pub(super) size: AtomicU64,
    pub(super) verified_groups: AtomicU64,
    pub(super) sources: AtomicUsize,
    pub(super) peers: AtomicUsize,
    pub(super) state: Mutex<(State, Option<String>)>,
    pub(super) started: Instant,
    pub(super) bytes_this_run: AtomicU64,
    pub(super) cancel: CancellationToken,
    /// What it may pay, if the content is on sale.
    pub(super) allowance: Allowance,
    /// The price of the seller paid, and what its channel has paid so far (base units).
    pub(super) price: AtomicU64,
    pub(super) paid: AtomicU64,
    /// Told when the download ends (done or failed), for `file.status` calls that wait.
    ended: Notify,
}

impl Progress {
    fn set_state(&self, state: State, error: Option<String>) {
        *lock(&self.state) = (state, error);
        if state.is_end() {
            self.ended.notify_waiters();
        }
    }

    /// Returns when the download has ended or `wait` has passed.
    pub(super) async fn wait_for_end(&self, wait: Duration) {
        let ended = self.ended.notified();
        tokio::pin!(ended);
        // Registered before the check, so an end between the two is not missed.
        ended.as_mut().enable();
        if !lock(&self.state).0.is_end() {
            let _ = tokio::time::timeout(wait, ended).await;
        }
    }

    fn learn(&self, entry: &Entry) {
        *lock(&self.name) = entry.name.clone();
        self.size.store(entry.size, Ordering::Relaxed);
    }
}

/// What a peer said it holds.
pub(super) struct Holding {
    size: u64,
    name: String,
    directory: bool,
    pieces: Option<Bitmap>,
    /// Its price, if it sells rather than shares it.
    pub(super) price: Option<Price>,
}

impl Files {
    /// Starts (or joins) the download of `id` to `path`; its progress.
    pub(super) fn start_download(
        self: &Arc<Self>,
        id: ContentId,
        path: PathBuf,
        allowance: Allowance,
    ) -> Arc<Progress> {
        let mut downloads = lock(&self.downloads);
        if let Some(progress) = downloads.get(&id) {
            let (state, _) = *lock(&progress.state);
            if state != State::Failed && (state != State::Done || progress.path == path) {
                return progress.clone();
            }
        }
        let progress = Arc::new(Progress {
            id,
            path: path.clone(),
            name: Mutex::new(String::new()),
            size: AtomicU64::new(0),
            verified_groups: AtomicU64::new(0),
            sources: AtomicUsize::new(0),
            peers: AtomicUsize::new(0),
            state: Mutex::new((State::Finding, None)),
            started: Instant::now(),
            bytes_this_run: AtomicU64::new(0),
            cancel: self.cancel.child_token(),
            allowance,
            price: AtomicU64::new(0),
            paid: AtomicU64::new(0),
            ended: Notify::new(),
        });
        downloads.insert(id, progress.clone());
        let (files, running) = (self.clone(), progress.clone());
        self.tasks.spawn(async move {
            let store = files.store.clone();
            let want_path = path.clone();
            if let Err(e) = blocking(move || store.want(id, &want_path)).await {
                warn!(%id, error = %e, "cannot record the download");
            }
            match files.download(&running).await {
                Ok(()) => {
                    let store = files.store.clone();
                    let _ = blocking(move || store.unwant(id)).await;
                    info!(%id, path = %path.display(), "download complete");
                    running.set_state(State::Done, None);
                }
                Err(e) if running.cancel.is_cancelled() => debug!(%id, error = %e, "download stopped"),
                Err(e) => {
                    warn!(%id, error = %e, "download failed");
                    let store = files.store.clone();
                    let _ = blocking(move || store.unwant(id)).await;
                    running.set_state(State::Failed, Some(e.to_string()));
                }
            }
        });
        progress
    }

    /// Fetches `progress.id` (and, for a directory, every file it lists) and writes the
    /// result to `progress.path`.
    async fn download(self: &Arc<Self>, progress: &Progress) -> Result<(), DownloadError> {
        let entry = Fetch::new(self, progress.id, progress).run().await?;
        let store = self.store.clone();
        let path = progress.path.clone();
        if entry.kind == Kind::Directory {
            let id = entry.id;
            let manifest_bytes = blocking(move || store.read_all(id)).await?;
            let manifest = Manifest::from_bytes(&manifest_bytes).map_err(DownloadError::BadManifest)?;
            for file in &manifest.files {
                let child = Fetch::new(self, file.id, progress).run().await?;
                if child.size != file.size {
                    return Err(DownloadError::SizeMismatch {
                        path: file.path.clone(),
                        got: child.size,
                        expected: file.size,
                    });
                }
                let store = self.store.clone();
                let to = path.join(&file.path);
                let child_id = child.id;
                blocking(move || store.export(child_id, &to)).await?;
            }
            std::fs::create_dir_all(&path).map_err(|source| DownloadError::Output { path, source })?;
        } else {
            let id = entry.id;
            blocking(move || store.export(id, &path)).await?;
        }
        Ok(())
    }

    /// Peers that say they hold `id`: connected peers, and DHT providers when `use_dht`.
    async fn find_holders(&self, id: ContentId, use_dht: bool, bad: &HashSet<Peer>) -> Vec<(Peer, Holding)> {
        let mut candidates: HashSet<Peer> =
            self.net.peers().await.into_iter().map(|p| p.peer).take(ASK_CONNECTED).collect();
        if use_dht {
            candidates.extend(self.net.find_providers(content_key(id)).await);
        }
        candidates.retain(|p| !bad.contains(p) && *p != self.net.local_peer());
        let asks =
            candidates.into_iter().map(|peer| {
                let net = self.net.clone();
                async move {
                    (peer, tokio::time::timeout(INFO_TIMEOUT, net.request_file(peer, FileRequest::Info(id))).await)
                }
            });
        let mut holders = Vec::new();
        for (peer, answer) in futures::future::join_all(asks).await {
            if let Ok(Ok(FileResponse::Info { size, name, directory, pieces, price })) = answer {
                let pieces = match pieces {
                    None => None,
                    Some(bytes) => match Bitmap::from_bytes(piece_count(size), &bytes) {
                        Ok(bits) => Some(bits),
                        Err(_) => continue,
                    },
                };
                holders.push((peer, Holding { size, name, directory, pieces, price }));
            }
        }
        holders
    }

    /// Asks holders of the last piece (complete ones, and partial ones: every download
    /// fetches the last piece first) for it until one proves its size claim; then the partial
    /// blob is started with that piece in it. `None` when nobody could.
    async fn prove_size(
        &self,
        id: ContentId,
        holders: &[&(Peer, Holding)],
        bad: &mut HashSet<Peer>,
    ) -> Result<Option<(Entry, Peer)>, DownloadError> {
        for (peer, holding) in holders.iter().copied() {
            if holding.size > peerchain_blobs::MAX_BLOB_SIZE {
                continue;
            }
            let last = piece_count(holding.size) - 1;
            if holding.pieces.as_ref().is_some_and(|held| !held.get(last)) {
                continue;
            }
            let groups = piece_groups(holding.size, last);
            let request = FileRequest::Range { id, start: groups.start, count: (groups.end - groups.start) as u32 };
            let Ok(Ok(FileResponse::Range(encoded))) =
                tokio::time::timeout(RANGE_TIMEOUT, self.net.request_file(*peer, request)).await
            else {
                continue;
            };
            if let Err(reason) = Store::check_range(id, holding.size, groups.clone(), &encoded) {
                warn!(%peer, %id, %reason, "peer lied about the content; banning it");
                self.bad_pieces.fetch_add(1, Ordering::Relaxed);
                bad.insert(*peer);
                self.book.penalise(*peer, Offence::BadData, &format!("false size claim for {id}: {reason}")).await;
                continue;
            }
            let store = self.store.clone();
            let (size, name) = (holding.size, holding.name.clone());
            let kind = if holding.directory { Kind::Directory } else { Kind::File };
            let entry = blocking(move || {
                store.begin(id, size, &name, kind)?;
                store.write_range(id, groups, &encoded)?;
                store.get(id)
            })
            .await?
            .ok_or(DownloadError::Removed)?;
            return Ok(Some((entry, *peer)));
        }
        Ok(None)
    }
}

/// A range asked of a source: the peer, the piece, and the answer (or the timeout).
type Asked = (Peer, u64, Result<Result<FileResponse, RequestError>, tokio::time::error::Elapsed>);
/// A range being verified and written: the peer, the piece, and the outcome.
type Written = (Peer, u64, Result<WriteOutcome, peerchain_blobs::Error>);

/// The fetch of one blob into the store from whoever holds it.
pub(super) struct Fetch<'a> {
    pub(super) files: &'a Arc<Files>,
    pub(super) id: ContentId,
    pub(super) progress: &'a Progress,
    /// Peers that served bad data: never asked again.
    bad: HashSet<Peer>,
    /// Peers that served verified data, for the report.
    served_by: HashSet<Peer>,
    /// When the DHT was last asked for providers.
    asked_dht: Option<Instant>,
}

impl<'a> Fetch<'a> {
    fn new(files: &'a Arc<Files>, id: ContentId, progress: &'a Progress) -> Self {
        Fetch { files, id, progress, bad: HashSet::new(), served_by: HashSet::new(), asked_dht: None }
    }

    /// Whether to ask the DHT now, at most every `every`.
    fn dht_due(&mut self, every: Duration) -> bool {
        let due = self.asked_dht.is_none_or(|at| at.elapsed() >= every);
        if due {
            self.asked_dht = Some(Instant::now());
        }
        due
    }

    async fn run(mut self) -> Result<Entry, DownloadError> {
        let id = self.id;
        let store = self.files.store.clone();
        let stored = blocking(move || store.get(id)).await?;
        if let Some(entry) = stored.as_ref().filter(|e| e.is_complete()) {
            self.progress.learn(entry);
            self.progress.verified_groups.store(group_count(entry.size), Ordering::Relaxed);
            return Ok(entry.clone());
        }
        // Holders found, and the size proven (the last chunk group does), unless a partial
        // copy from an earlier run already did.
        let (entry, holders) = match stored {
            Some(entry) => {
                let holders = self.find().await?;
                (entry, holders)
            }
            None => self.find_and_prove().await?,
        };
        self.progress.learn(&entry);
        let holders: Vec<_> = holders.into_iter().filter(|(_, h)| h.size == entry.size).collect();
        let seller = pay::choose_seller(id, &holders, self.allowance().await)?;
        // A partial holder is a source too: it says so in the DHT at once (its keywords
        // follow when it is complete).
        self.files.net.provide(content_key(id)).await;
        let store = self.files.store.clone();
        let have = blocking(move || store.have(id)).await?.ok_or(DownloadError::Removed)?;
        self.progress.verified_groups.store(have.count(), Ordering::Relaxed);
        self.progress.set_state(State::Downloading, None);
        if let Some((seller, price)) = seller {
            self.paid_transfer(entry.size, seller, price).await?;
        } else {
            let mut scheduler = Scheduler::new(entry.size, pieces_held(entry.size, &have));
            for (peer, holding) in holders {
                if holding.price.is_none() {
                    scheduler.add_source(peer, holding.pieces);
                }
            }
            self.transfer(entry.size, &mut scheduler).await?;
        }
        let store = self.files.store.clone();
        let entry = blocking(move || store.get(id)).await?.ok_or(DownloadError::Removed)?;
        self.progress.verified_groups.store(entry.verified_groups, Ordering::Relaxed);
        self.files.announce(&entry).await;
        Ok(entry)
    }

    /// Looks for holders until one proves the size, or the deadline passes.
    async fn find_and_prove(&mut self) -> Result<(Entry, Vec<(Peer, Holding)>), DownloadError> {
        let deadline = Instant::now() + FIND_DEADLINE;
        // No channel opens while finding: the allowance stays what it is.
        let allowance = self.allowance().await;
        loop {
            if self.progress.cancel.is_cancelled() {
                return Err(DownloadError::Cancelled);
            }
            let use_dht = self.dht_due(DHT_WHILE_FINDING);
            let holders = self.files.find_holders(self.id, use_dht, &self.bad).await;
            // While finding, `peers` says how many peers were found holding it.
            self.progress.peers.store(holders.len(), Ordering::Relaxed);
            // Only the seller that would be paid proves the size of content on sale (the
            // piece is on its credit); a download without allowance for it ends here.
            let seller = pay::choose_seller(self.id, &holders, allowance)?;
            let provers: Vec<&(Peer, Holding)> = holders
                .iter()
                .filter(|(p, h)| seller.is_none_or(|(s, _)| s == *p) && (seller.is_some() || h.price.is_none()))
                .collect();
            if let Some((entry, prover)) = self.files.prove_size(self.id, &provers, &mut self.bad).await? {
                self.served_by.insert(prover);
                self.progress.sources.store(self.served_by.len(), Ordering::Relaxed);
                return Ok((entry, holders));
            }
            if Instant::now() >= deadline {
                return Err(DownloadError::NoProvider(self.id));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Looks for holders of a partial blob (after a restart: peers are connecting) until
    /// some answer, for a short while; the transfer goes on looking.
    async fn find(&mut self) -> Result<Vec<(Peer, Holding)>, DownloadError> {
        let deadline = Instant::now() + RESUME_FIND;
        loop {
            let use_dht = self.dht_due(DHT_WHILE_FINDING);
            let holders = self.files.find_holders(self.id, use_dht, &self.bad).await;
            if !holders.is_empty() || Instant::now() >= deadline {
                return Ok(holders);
            }
            tokio::select! {
                biased;
                _ = self.progress.cancel.cancelled() => return Err(DownloadError::Cancelled),
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// What the download may pay: its allowance, or after a restart the price of the
    /// channel it was paying through.
    async fn allowance(&self) -> Option<u64> {
        let (id, channels) = (self.id, self.files.payments.channels.clone());
        let kept = blocking(move || channels.buying(&id)).await.ok().flatten().map(|b| b.price);
        self.progress.allowance.up_to.max(kept)
    }

    /// Fetches every missing piece from the sources, filling each one's window, verifying
    /// and writing several answers at once, and looking for new sources now and then.
    async fn transfer(&mut self, size: u64, scheduler: &mut Scheduler<Peer>) -> Result<(), DownloadError> {
        let mut in_flight: FuturesUnordered<BoxFuture<'static, Asked>> = FuturesUnordered::new();
        // Pieces being verified and written, several at once (the store allows it): in line,
        // the hashing and writing of one piece held up every other answer.
        let mut writing: FuturesUnordered<BoxFuture<'static, Written>> = FuturesUnordered::new();
        let mut refresh = tokio::time::interval(REFRESH_SOURCES);
        let mut idle_since = Instant::now();
        while !scheduler.is_complete() {
            self.fill_windows(size, scheduler, &mut in_flight);
            tokio::select! {
                biased;
                _ = self.progress.cancel.cancelled() => return Err(DownloadError::Cancelled),
                Some((peer, piece, written)) = writing.next() => {
                    if self.written(peer, piece, written?, scheduler).await {
                        break;
                    }
                }
                Some((peer, piece, answer)) = in_flight.next() => {
                    idle_since = Instant::now();
                    if let Some(write) = self.answered(size, peer, piece, answer, scheduler) {
                        writing.push(write);
                    }
                }
                _ = refresh.tick() => {
                    self.refresh_sources(size, scheduler).await;
                    if scheduler.source_count() == 0 && in_flight.is_empty() && idle_since.elapsed() > FIND_DEADLINE {
                        return Err(DownloadError::NoProviderForTheRest(self.id));
                    }
                }
            }
        }
        Ok(())
    }

    /// Asks every source for pieces until its window is full.
    fn fill_windows(
        &self,
        size: u64,
        scheduler: &mut Scheduler<Peer>,
        in_flight: &mut FuturesUnordered<BoxFuture<'static, Asked>>,
    ) {
        let sources: Vec<Peer> = scheduler.sources().collect();
        for peer in sources {
            while let Some(piece) = scheduler.next(peer) {
                let groups = piece_groups(size, piece);
                let request =
                    FileRequest::Range { id: self.id, start: groups.start, count: (groups.end - groups.start) as u32 };
                let bytes = (groups.end - groups.start) * GROUP_BYTES;
                let files = self.files.clone();
                in_flight.push(
                    async move {
                        if let Some(limit) = &files.download_limit {
                            limit.acquire(bytes).await;
                        }
                        let answer = tokio::time::timeout(RANGE_TIMEOUT, files.net.request_file(peer, request)).await;
                        (peer, piece, answer)
                    }
                    .boxed(),
                );
            }
        }
        self.progress.peers.store(scheduler.source_count(), Ordering::Relaxed);
    }

    /// A source answered: a range goes to be verified and written; a refusal or a failure
    /// counts against the source, which is dropped after a few.
    fn answered(
        &self,
        size: u64,
        peer: Peer,
        piece: u64,
        answer: Result<Result<FileResponse, RequestError>, tokio::time::error::Elapsed>,
        scheduler: &mut Scheduler<Peer>,
    ) -> Option<BoxFuture<'static, Written>> {
        match answer {
            Ok(Ok(FileResponse::Range(encoded))) => {
                self.files.downloaded.fetch_add(encoded.len() as u64, Ordering::Relaxed);
                let store = self.files.store.clone();
                let (id, groups) = (self.id, piece_groups(size, piece));
                let write = blocking(move || store.write_range(id, groups, &encoded));
                return Some(write.map(move |written| (peer, piece, written)).boxed());
            }
            Ok(Ok(other)) => {
                debug!(%peer, piece, answer = ?refusal_of(&other), "range refused");
                scheduler.failed(peer, piece);
                if scheduler.failures(peer) >= REFUSALS_BEFORE_DROP {
                    scheduler.remove_source(peer);
                }
            }
            Ok(Err(e)) => {
                debug!(%peer, piece, error = %e, "range request failed");
                scheduler.failed(peer, piece);
                if scheduler.failures(peer) >= FAILURES_BEFORE_DROP {
                    scheduler.remove_source(peer);
                }
            }
            Err(_) => {
                debug!(%peer, piece, "range request timed out");
                scheduler.failed(peer, piece);
            }
        }
        None
    }

    /// A range was verified and written (up to its first bad group); whether the blob is now
    /// complete. A source that served bad data is dropped and answers for it in the book.
    async fn written(
        &mut self,
        peer: Peer,
        piece: u64,
        outcome: WriteOutcome,
        scheduler: &mut Scheduler<Peer>,
    ) -> bool {
        if let Some(reason) = outcome.bad_data {
            warn!(%peer, id = %self.id, piece, %reason, "peer served bad data; banning it");
            self.files.bad_pieces.fetch_add(1, Ordering::Relaxed);
            scheduler.failed(peer, piece);
            scheduler.remove_source(peer);
            self.bad.insert(peer);
            let reason = format!("bad data in piece {piece} of {}: {reason}", self.id);
            self.files.book.penalise(peer, Offence::BadData, &reason).await;
        } else {
            self.progress.bytes_this_run.fetch_add(outcome.verified_groups * GROUP_BYTES, Ordering::Relaxed);
            scheduler.delivered(peer, piece);
            self.served_by.insert(peer);
        }
        self.progress.verified_groups.store(outcome.blob_verified_groups, Ordering::Relaxed);
        self.progress.sources.store(self.served_by.len(), Ordering::Relaxed);
        outcome.complete
    }

    /// New holders (partial ones finish pieces, new peers connect) become sources; the DHT is
    /// asked when no source is left, and otherwise now and then.
    async fn refresh_sources(&mut self, size: u64, scheduler: &mut Scheduler<Peer>) {
        let use_dht = if scheduler.source_count() == 0 {
            self.asked_dht = Some(Instant::now());
            true
        } else {
            self.dht_due(DHT_WHILE_DOWNLOADING)
        };
        for (peer, holding) in self.files.find_holders(self.id, use_dht, &self.bad).await {
            if holding.size == size && holding.price.is_none() {
                scheduler.add_source(peer, holding.pieces);
            }
        }
    }
}

/// A non-range answer to a range request, for the log.
fn refusal_of(response: &FileResponse) -> String {
    match response {
        FileResponse::Refused(reason) => format!("refused: {reason}"),
        _ => "unexpected answer".into(),
    }
}
