//! File sharing: serves the blob store to peers, announces what it holds in the DHT (by
//! content id and by keyword), answers and forwards flooded keyword queries, and runs
//! multi-source downloads that survive restarts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use peerchain_blobs::manifest::Manifest;
use peerchain_blobs::scheduler::Scheduler;
use peerchain_blobs::{
    Bitmap, ContentId, Entry, GROUP_BYTES, Kind, ReadError, Store, WriteOutcome, group_count, keywords, piece_count,
    piece_groups,
};
use peerchain_net::files::{MAX_HITS, MAX_PROVIDERS_PER_HIT};
use peerchain_net::{DhtKey, FileRequest, FileResponse, Hit, Peer, Provider, TokenBucket};
use peerchain_primitives::Decode;
use peerchain_rpc::RpcError;
use peerchain_rpc::files::{BoxFuture, Download, DownloadState, FileEntry, FileService, FoundFile, SearchVia};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// How far a flooded query travels: the asker's neighbours get it with one hop less.
const SEARCH_HOPS: u8 = peerchain_net::files::MAX_HOPS;
/// Neighbours a query is forwarded to.
const SEARCH_FANOUT: usize = 8;
/// Query ids remembered, to answer each once.
const SEEN_QUERIES: usize = 4_096;
/// How long a range request may take.
const RANGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an info request may take.
const INFO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a download looks for providers before giving up.
const FIND_DEADLINE: Duration = Duration::from_secs(90);
/// How often a running download looks for more sources.
const REFRESH_SOURCES: Duration = Duration::from_secs(5);
/// How long a peer that served bad data is banned.
const BAD_DATA_BAN: Duration = Duration::from_secs(3600);
/// Connected peers asked whether they hold a content id.
const ASK_CONNECTED: usize = 32;
/// Searches a peer may send per second (each may fan out to the whole network), and in a burst.
const SEARCHES_PER_SECOND: f64 = 2.0;
const SEARCH_BURST: f64 = 10.0;
/// Peers' searches answered per second, all peers together, and in a burst: each reads the
/// whole blob index, and new peer ids cost an attacker nothing.
const ALL_SEARCHES_PER_SECOND: f64 = 20.0;
const ALL_SEARCHES_BURST: f64 = 40.0;
/// Peers' searches forwarded per second, all peers together, and in a burst. Security: a
/// forwarded search costs up to [`SEARCH_FANOUT`] requests at each further hop, so this caps
/// what any number of peer ids can make the network do through this node.
const FORWARDS_PER_SECOND: f64 = 2.0;
const FORWARD_BURST: f64 = 8.0;

/// File-sharing settings.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_upload_bytes_per_sec: u64,
    pub(crate) max_download_bytes_per_sec: u64,
    pub(crate) max_concurrent_uploads: usize,
}

/// The DHT key announcing a content id.
fn content_key(id: ContentId) -> DhtKey {
    DhtKey::new(&id.0)
}

/// The DHT key announcing a keyword: a hash, so that every word maps to a spread-out key.
fn keyword_key(word: &str) -> DhtKey {
    DhtKey::new(&peerchain_blobs::content_id(format!("peerchain keyword {word}").as_bytes()).0)
}

/// A bandwidth cap: `acquire(n)` waits until `n` bytes fit under the rate.
struct RateLimit(Mutex<TokenBucket>);

impl RateLimit {
    fn new(bytes_per_sec: u64) -> Option<RateLimit> {
        (bytes_per_sec > 0)
            .then(|| RateLimit(Mutex::new(TokenBucket::full(bytes_per_sec as f64, bytes_per_sec as f64))))
    }

    async fn acquire(&self, bytes: u64) {
        let wait = self.0.lock().expect("never poisoned").take(bytes as f64);
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A download's shared progress, read by `file.status`.
struct Progress {
    id: ContentId,
    path: PathBuf,
    name: Mutex<String>,
    size: AtomicU64,
    verified_groups: AtomicU64,
    sources: AtomicUsize,
    peers: AtomicUsize,
    state: Mutex<(DownloadState, Option<String>)>,
    started: Instant,
    bytes_this_run: AtomicU64,
    cancel: CancellationToken,
    /// Told when the download ends (done or failed), for `file.status` calls that wait.
    ended: Notify,
}

impl Progress {
    fn snapshot(&self) -> Download {
        let size = self.size.load(Ordering::Relaxed);
        let (state, error) = self.state.lock().expect("never poisoned").clone();
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        Download {
            id: self.id,
            name: self.name.lock().expect("never poisoned").clone(),
            size,
            verified_bytes: (self.verified_groups.load(Ordering::Relaxed) * GROUP_BYTES).min(size),
            sources: self.sources.load(Ordering::Relaxed),
            peers: self.peers.load(Ordering::Relaxed),
            state,
            path: self.path.clone(),
            error,
            rate: (self.bytes_this_run.load(Ordering::Relaxed) as f64 / seconds) as u64,
        }
    }

    fn set_state(&self, state: DownloadState, error: Option<String>) {
        *self.state.lock().expect("never poisoned") = (state, error);
        if is_end(state) {
            self.ended.notify_waiters();
        }
    }

    /// Returns when the download has ended or `wait` has passed.
    async fn wait_for_end(&self, wait: Duration) {
        let ended = self.ended.notified();
        tokio::pin!(ended);
        // Registered before the check, so an end between the two is not missed.
        ended.as_mut().enable();
        if !is_end(self.state.lock().expect("never poisoned").0) {
            let _ = tokio::time::timeout(wait, ended).await;
        }
    }
}

/// Whether a download in `state` has ended (`file.status` calls that wait return then).
fn is_end(state: DownloadState) -> bool {
    matches!(state, DownloadState::Done | DownloadState::Failed)
}

/// What a peer said it holds.
struct Holding {
    size: u64,
    name: String,
    directory: bool,
    pieces: Option<Bitmap>,
}

/// The node's file sharing.
pub(crate) struct Files {
    store: Arc<Store>,
    net: peerchain_net::Handle,
    downloads: Mutex<HashMap<ContentId, Arc<Progress>>>,
    seen_queries: Mutex<(HashSet<u64>, VecDeque<u64>)>,
    /// Each peer's search allowance: tokens left and when they were counted.
    search_allowance: Mutex<HashMap<Peer, TokenBucket>>,
    /// Peers' searches answered, all peers together.
    all_searches: Mutex<TokenBucket>,
    /// Peers' searches forwarded, all peers together.
    forwards: Mutex<TokenBucket>,
    uploads: Semaphore,
    upload_limit: Option<RateLimit>,
    download_limit: Option<RateLimit>,
    cancel: CancellationToken,
}

fn internal(e: impl std::fmt::Display) -> RpcError {
    RpcError::internal(e)
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.expect("blob store work does not panic")
}

impl Files {
    pub(crate) fn new(
        store: Arc<Store>,
        net: peerchain_net::Handle,
        limits: Limits,
        cancel: CancellationToken,
    ) -> Arc<Files> {
        Arc::new(Files {
            store,
            net,
            downloads: Mutex::new(HashMap::new()),
            seen_queries: Mutex::new((HashSet::new(), VecDeque::new())),
            search_allowance: Mutex::new(HashMap::new()),
            all_searches: Mutex::new(TokenBucket::full(ALL_SEARCHES_PER_SECOND, ALL_SEARCHES_BURST)),
            forwards: Mutex::new(TokenBucket::full(FORWARDS_PER_SECOND, FORWARD_BURST)),
            uploads: Semaphore::new(limits.max_concurrent_uploads.max(1)),
            upload_limit: RateLimit::new(limits.max_upload_bytes_per_sec),
            download_limit: RateLimit::new(limits.max_download_bytes_per_sec),
            cancel,
        })
    }

    /// Announces every complete blob and resumes unfinished downloads.
    pub(crate) async fn start(self: &Arc<Self>) {
        let store = self.store.clone();
        let (entries, wanted) = blocking(move || (store.list(), store.wanted())).await;
        match entries {
            Ok(entries) => {
                for entry in entries.iter().filter(|e| e.is_complete()) {
                    self.announce(entry).await;
                }
            }
            Err(e) => warn!(error = %e, "cannot list the blob store"),
        }
        match wanted {
            Ok(wanted) => {
                for (id, path) in wanted {
                    info!(%id, path = %path.display(), "resuming download");
                    self.start_download(id, path);
                }
            }
            Err(e) => warn!(error = %e, "cannot read the unfinished downloads"),
        }
    }

    async fn announce(&self, entry: &Entry) {
        self.net.provide(content_key(entry.id)).await;
        for word in &entry.keywords {
            self.net.provide(keyword_key(word)).await;
        }
    }

    // ---- serving ----

    /// Answers a peer's file request (on its own task).
    pub(crate) fn handle_request(self: &Arc<Self>, peer: Peer, request: FileRequest, id: peerchain_net::InboundId) {
        let files = self.clone();
        tokio::spawn(async move {
            let response = files.answer(peer, request).await;
            files.net.respond_file(id, response).await;
        });
    }

    async fn answer(&self, peer: Peer, request: FileRequest) -> FileResponse {
        match request {
            FileRequest::Info(id) => {
                let store = self.store.clone();
                match blocking(move || store.get(id).and_then(|e| Ok((e, store.have(id)?)))).await {
                    Ok((Some(entry), Some(have))) => FileResponse::Info {
                        size: entry.size,
                        name: entry.name,
                        directory: entry.kind == Kind::Directory,
                        pieces: (!have.is_full()).then(|| pieces_held(entry.size, &have).to_bytes()),
                    },
                    Ok(_) => FileResponse::Refused("unknown content".into()),
                    Err(e) => FileResponse::Refused(format!("store error: {e}")),
                }
            }
            FileRequest::Range { id, start, count } => {
                // Security: a bounded number of uploads run at once; the rest are refused and
                // the downloader asks elsewhere or later.
                let Ok(_permit) = self.uploads.try_acquire() else {
                    return FileResponse::Refused("busy".into());
                };
                let store = self.store.clone();
                let end = start.saturating_add(u64::from(count));
                match blocking(move || store.read_range(id, start..end)).await {
                    Ok(bytes) => {
                        if let Some(limit) = &self.upload_limit {
                            limit.acquire(bytes.len() as u64).await;
                        }
                        FileResponse::Range(bytes.into())
                    }
                    Err(ReadError::Damaged(reason)) => {
                        warn!(%id, %reason, "not serving damaged content");
                        FileResponse::Refused("content damaged".into())
                    }
                    Err(e) => FileResponse::Refused(e.to_string()),
                }
            }
            FileRequest::Search { query_id, words, hops } => {
                if !self.allow_search(peer) {
                    return FileResponse::Refused("too many searches".into());
                }
                FileResponse::Hits(self.answer_search(Some(peer), query_id, words, hops).await)
            }
        }
    }

    /// Security: a search can fan out to the whole network, so each peer gets a small,
    /// refilling allowance of them.
    fn allow_search(&self, peer: Peer) -> bool {
        let mut allowances = self.search_allowance.lock().expect("never poisoned");
        if allowances.len() > 10_000 {
            allowances.retain(|_, bucket| bucket.idle() < Duration::from_secs(60));
        }
        allowances.entry(peer).or_insert_with(|| TokenBucket::full(SEARCHES_PER_SECOND, SEARCH_BURST)).try_take(1.0)
            && self.all_searches.lock().expect("never poisoned").try_take(1.0)
    }

    /// Hits of this node and of peers up to `hops` further, once per query id.
    async fn answer_search(&self, from: Option<Peer>, query_id: u64, words: Vec<String>, hops: u8) -> Vec<Hit> {
        {
            let mut seen = self.seen_queries.lock().expect("never poisoned");
            let (ids, order) = &mut *seen;
            if !ids.insert(query_id) {
                return Vec::new();
            }
            order.push_back(query_id);
            if order.len() > SEEN_QUERIES
                && let Some(old) = order.pop_front()
            {
                ids.remove(&old);
            }
        }
        let mut hits = self.local_hits(&words).await;
        // A peer's query travels on only within the forwarding budget; this node's own always.
        let forward = from.is_none() || self.forwards.lock().expect("never poisoned").try_take(1.0);
        if !forward {
            debug!(query_id, "search answered here only: the forwarding budget is spent");
        }
        if hops > 0 && forward {
            let peers: Vec<Peer> = self
                .net
                .peers()
                .await
                .into_iter()
                .map(|p| p.peer)
                .filter(|p| Some(*p) != from)
                .take(SEARCH_FANOUT)
                .collect();
            let timeout = hop_timeout(hops - 1);
            let asks = peers.into_iter().map(|peer| {
                let request = FileRequest::Search { query_id, words: words.clone(), hops: hops - 1 };
                let net = self.net.clone();
                async move { tokio::time::timeout(timeout, net.request_file(peer, request)).await }
            });
            for answer in futures::future::join_all(asks).await {
                if let Ok(Ok(FileResponse::Hits(found))) = answer {
                    merge_hits(&mut hits, found);
                }
            }
        }
        hits
    }

    async fn local_hits(&self, words: &[String]) -> Vec<Hit> {
        let store = self.store.clone();
        let query = words.to_vec();
        let Ok(entries) = blocking(move || store.search(&query, MAX_HITS)).await else { return Vec::new() };
        if entries.is_empty() {
            return Vec::new();
        }
        let addresses = self.net.local().await.map(|l| l.listen_addrs).unwrap_or_default();
        let me = Provider {
            peer: self.net.local_peer(),
            addresses: addresses.into_iter().take(peerchain_net::files::MAX_ADDRESSES).collect(),
        };
        entries
            .into_iter()
            .map(|e| Hit {
                id: e.id,
                name: e.name,
                size: e.size,
                directory: e.kind == Kind::Directory,
                providers: vec![me.clone()],
            })
            .collect()
    }

    /// Searches the DHT (keyword providers, then what each of them holds) and floods the
    /// query to neighbours, at once; merges both with this node's own hits.
    async fn search_network(&self, words: Vec<String>, via: SearchVia) -> Vec<Hit> {
        let query_id: u64 = rand::random();
        let flood = async {
            if via == SearchVia::Dht {
                return self.local_hits(&words).await;
            }
            self.answer_search(None, query_id, words.clone(), SEARCH_HOPS).await
        };
        let dht = async {
            if via == SearchVia::Flood {
                return Vec::new();
            }
            let lookups = words.iter().map(|w| self.net.find_providers(keyword_key(w)));
            let mut providers: HashSet<Peer> = HashSet::new();
            for found in futures::future::join_all(lookups).await {
                providers.extend(found);
            }
            let asks = providers.into_iter().map(|peer| {
                // hops 0: the provider answers for itself; its id is new to it, so it answers.
                let request = FileRequest::Search { query_id: rand::random(), words: words.clone(), hops: 0 };
                let net = self.net.clone();
                async move { tokio::time::timeout(Duration::from_secs(10), net.request_file(peer, request)).await }
            });
            let mut hits = Vec::new();
            for answer in futures::future::join_all(asks).await {
                if let Ok(Ok(FileResponse::Hits(found))) = answer {
                    merge_hits(&mut hits, found);
                }
            }
            hits
        };
        let (mut hits, dht_hits) = tokio::join!(flood, dht);
        merge_hits(&mut hits, dht_hits);
        hits
    }

    // ---- downloading ----

    fn start_download(self: &Arc<Self>, id: ContentId, path: PathBuf) -> Arc<Progress> {
        let mut downloads = self.downloads.lock().expect("never poisoned");
        if let Some(progress) = downloads.get(&id) {
            let (state, _) = *progress.state.lock().expect("never poisoned");
            if state != DownloadState::Failed && (state != DownloadState::Done || progress.path == path) {
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
            state: Mutex::new((DownloadState::Finding, None)),
            started: Instant::now(),
            bytes_this_run: AtomicU64::new(0),
            cancel: self.cancel.child_token(),
            ended: Notify::new(),
        });
        downloads.insert(id, progress.clone());
        let files = self.clone();
        let running = progress.clone();
        tokio::spawn(async move {
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
                    running.set_state(DownloadState::Done, None);
                }
                Err(e) if running.cancel.is_cancelled() => debug!(%id, error = %e, "download stopped"),
                Err(e) => {
                    warn!(%id, error = %e, "download failed");
                    let store = files.store.clone();
                    let _ = blocking(move || store.unwant(id)).await;
                    running.set_state(DownloadState::Failed, Some(e));
                }
            }
        });
        progress
    }

    /// Fetches `progress.id` (and, for a directory, every file it lists) and writes the
    /// result to `progress.path`.
    async fn download(self: &Arc<Self>, progress: &Progress) -> Result<(), String> {
        let entry = self.fetch(progress.id, progress).await?;
        let store = self.store.clone();
        let path = progress.path.clone();
        if entry.kind == Kind::Directory {
            let id = entry.id;
            let manifest_bytes = blocking(move || store.read_all(id)).await.map_err(|e| e.to_string())?;
            let manifest = Manifest::from_bytes(&manifest_bytes).map_err(|e| format!("bad directory manifest: {e}"))?;
            for file in &manifest.files {
                let child = self.fetch(file.id, progress).await?;
                if child.size != file.size {
                    return Err(format!("{} has {} bytes, the manifest says {}", file.path, child.size, file.size));
                }
                let store = self.store.clone();
                let to = path.join(&file.path);
                let child_id = child.id;
                blocking(move || store.export(child_id, &to)).await.map_err(|e| e.to_string())?;
            }
            std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        } else {
            let id = entry.id;
            blocking(move || store.export(id, &path)).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Gets one blob into the store from whoever holds it.
    async fn fetch(self: &Arc<Self>, id: ContentId, progress: &Progress) -> Result<Entry, String> {
        let store = self.store.clone();
        let stored = blocking(move || store.get(id)).await.map_err(|e| e.to_string())?;
        if let Some(entry) = stored.as_ref().filter(|e| e.is_complete()) {
            *progress.name.lock().expect("never poisoned") = entry.name.clone();
            progress.size.store(entry.size, Ordering::Relaxed);
            progress.verified_groups.store(group_count(entry.size), Ordering::Relaxed);
            return Ok(entry.clone());
        }
        let deadline = Instant::now() + FIND_DEADLINE;
        let mut tried_dht = Instant::now() - REFRESH_SOURCES * 4;
        let mut bad: HashSet<Peer> = HashSet::new();
        // Find holders and prove the size (the last chunk group does), unless a partial copy
        // from an earlier run already did.
        let mut holders = Vec::new();
        // Peers that served verified data, for the report.
        let mut served_by: HashSet<Peer> = HashSet::new();
        let entry = match stored {
            Some(entry) => entry,
            None => loop {
                if progress.cancel.is_cancelled() {
                    return Err("cancelled".into());
                }
                let use_dht = tried_dht.elapsed() >= REFRESH_SOURCES * 3;
                if use_dht {
                    tried_dht = Instant::now();
                }
                holders = self.find_holders(id, use_dht, &bad).await;
                if let Some((entry, prover)) = self.prove_size(id, &holders, &mut bad).await? {
                    served_by.insert(prover);
                    progress.sources.store(served_by.len(), Ordering::Relaxed);
                    break entry;
                }
                if Instant::now() >= deadline {
                    return Err(format!("no peer provides {id}"));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            },
        };
        *progress.name.lock().expect("never poisoned") = entry.name.clone();
        progress.size.store(entry.size, Ordering::Relaxed);
        // A partial holder is a source too: it says so in the DHT at once (its keywords
        // follow when it is complete).
        self.net.provide(content_key(id)).await;
        let store = self.store.clone();
        let have =
            blocking(move || store.have(id)).await.map_err(|e| e.to_string())?.ok_or("the download was removed")?;
        progress.verified_groups.store(have.count(), Ordering::Relaxed);
        progress.set_state(DownloadState::Downloading, None);
        let mut scheduler = Scheduler::new(entry.size, pieces_held(entry.size, &have));
        for (peer, holding) in holders {
            if holding.size == entry.size {
                scheduler.add_source(peer, holding.pieces);
            }
        }
        let mut in_flight = FuturesUnordered::new();
        // Pieces being verified and written, several at once (the store allows it): in
        // line, the hashing and writing of one piece held up every other answer.
        type Written = Result<WriteOutcome, peerchain_blobs::Error>;
        let mut writing: FuturesUnordered<BoxFuture<'_, (Peer, u64, Written)>> = FuturesUnordered::new();
        let mut refresh = tokio::time::interval(REFRESH_SOURCES);
        let mut idle_since = Instant::now();
        while !scheduler.is_complete() {
            // Fill every source's window.
            let sources: Vec<Peer> = scheduler.sources().collect();
            for peer in sources {
                while let Some(piece) = scheduler.next(peer) {
                    let groups = piece_groups(entry.size, piece);
                    let net = self.net.clone();
                    let request =
                        FileRequest::Range { id, start: groups.start, count: (groups.end - groups.start) as u32 };
                    let bytes = (groups.end - groups.start) * GROUP_BYTES;
                    let files = self.clone();
                    in_flight.push(async move {
                        if let Some(limit) = &files.download_limit {
                            limit.acquire(bytes).await;
                        }
                        let answer = tokio::time::timeout(RANGE_TIMEOUT, net.request_file(peer, request)).await;
                        (peer, piece, answer)
                    });
                }
            }
            progress.peers.store(scheduler.source_count(), Ordering::Relaxed);
            tokio::select! {
                biased;
                _ = progress.cancel.cancelled() => return Err("cancelled".into()),
                Some((peer, piece, written)) = writing.next() => {
                    let outcome = written.map_err(|e| e.to_string())?;
                    if let Some(reason) = outcome.bad_data {
                        warn!(%peer, %id, piece, %reason, "peer served bad data; banning it");
                        scheduler.failed(peer, piece);
                        scheduler.remove_source(peer);
                        bad.insert(peer);
                        self.net.ban(peer, BAD_DATA_BAN).await;
                    } else {
                        progress.bytes_this_run.fetch_add(outcome.verified_groups * GROUP_BYTES, Ordering::Relaxed);
                        scheduler.delivered(peer, piece);
                        served_by.insert(peer);
                    }
                    progress.verified_groups.store(outcome.blob_verified_groups, Ordering::Relaxed);
                    progress.sources.store(served_by.len(), Ordering::Relaxed);
                    if outcome.complete {
                        break;
                    }
                }
                Some((peer, piece, answer)) = in_flight.next() => {
                    idle_since = Instant::now();
                    match answer {
                        Ok(Ok(FileResponse::Range(encoded))) => {
                            let store = self.store.clone();
                            let groups = piece_groups(entry.size, piece);
                            let write = blocking(move || store.write_range(id, groups, &encoded));
                            writing.push(write.map(move |written| (peer, piece, written)).boxed());
                        }
                        Ok(Ok(other)) => {
                            debug!(%peer, piece, answer = ?short(&other), "range refused");
                            scheduler.failed(peer, piece);
                            if scheduler.failures(peer) >= 5 {
                                scheduler.remove_source(peer);
                            }
                        }
                        Ok(Err(e)) => {
                            debug!(%peer, piece, error = %e, "range request failed");
                            scheduler.failed(peer, piece);
                            if scheduler.failures(peer) >= 3 {
                                scheduler.remove_source(peer);
                            }
                        }
                        Err(_) => {
                            debug!(%peer, piece, "range request timed out");
                            scheduler.failed(peer, piece);
                        }
                    }
                }
                _ = refresh.tick() => {
                    // New holders (partial ones finish pieces, new peers connect), and give
                    // up only after a long time with nobody to ask.
                    let use_dht = scheduler.source_count() == 0 || tried_dht.elapsed() >= REFRESH_SOURCES * 6;
                    if use_dht {
                        tried_dht = Instant::now();
                    }
                    for (peer, holding) in self.find_holders(id, use_dht, &bad).await {
                        if holding.size == entry.size {
                            scheduler.add_source(peer, holding.pieces);
                        }
                    }
                    if scheduler.source_count() == 0 && in_flight.is_empty() && idle_since.elapsed() > FIND_DEADLINE {
                        return Err(format!("no peer provides the rest of {id}"));
                    }
                }
            }
        }
        let store = self.store.clone();
        let entry =
            blocking(move || store.get(id)).await.map_err(|e| e.to_string())?.ok_or("the download was removed")?;
        progress.verified_groups.store(entry.verified_groups, Ordering::Relaxed);
        self.announce(&entry).await;
        Ok(entry)
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
            if let Ok(Ok(FileResponse::Info { size, name, directory, pieces })) = answer {
                let pieces = match pieces {
                    None => None,
                    Some(bytes) => match Bitmap::from_bytes(piece_count(size), &bytes) {
                        Ok(bits) => Some(bits),
                        Err(_) => continue,
                    },
                };
                holders.push((peer, Holding { size, name, directory, pieces }));
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
        holders: &[(Peer, Holding)],
        bad: &mut HashSet<Peer>,
    ) -> Result<Option<(Entry, Peer)>, String> {
        for (peer, holding) in holders {
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
                bad.insert(*peer);
                self.net.ban(*peer, BAD_DATA_BAN).await;
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
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the download was removed")?;
            return Ok(Some((entry, *peer)));
        }
        Ok(None)
    }
}

/// How long a query forwarded with `hops` left may take: each hop waits for the next, so the
/// deadlines shrink along the path.
fn hop_timeout(hops: u8) -> Duration {
    Duration::from_millis(1_000 + 1_500 * u64::from(hops))
}

fn short(response: &FileResponse) -> String {
    match response {
        FileResponse::Refused(reason) => format!("refused: {reason}"),
        _ => "unexpected answer".into(),
    }
}

/// The pieces whose every chunk group is verified.
fn pieces_held(size: u64, groups: &Bitmap) -> Bitmap {
    let mut pieces = Bitmap::new(piece_count(size));
    for piece in 0..piece_count(size) {
        if groups.all(piece_groups(size, piece)) {
            pieces.set(piece);
        }
    }
    pieces
}

/// Adds `found` to `hits`: one hit per content id, its providers merged.
fn merge_hits(hits: &mut Vec<Hit>, found: Vec<Hit>) {
    for hit in found {
        match hits.iter().position(|h| h.id == hit.id) {
            Some(index) => {
                let known = &mut hits[index];
                for provider in hit.providers {
                    if known.providers.len() < MAX_PROVIDERS_PER_HIT
                        && known.providers.iter().all(|p| p.peer != provider.peer)
                    {
                        known.providers.push(provider);
                    }
                }
            }
            None if hits.len() < MAX_HITS => hits.push(hit),
            None => {}
        }
    }
}

fn entry_view(entry: &Entry) -> FileEntry {
    FileEntry {
        id: entry.id,
        name: entry.name.clone(),
        size: entry.size,
        directory: entry.kind == Kind::Directory,
        verified_bytes: (entry.verified_groups * GROUP_BYTES).min(entry.size),
        keywords: entry.keywords.clone(),
    }
}

/// The `file.*` RPC methods, served by the node's file sharing.
pub(crate) struct Service(pub(crate) Arc<Files>);

impl std::ops::Deref for Service {
    type Target = Arc<Files>;

    fn deref(&self) -> &Arc<Files> {
        &self.0
    }
}

impl FileService for Service {
    fn add(&self, path: PathBuf, keywords: Vec<String>) -> BoxFuture<'_, Result<FileEntry, RpcError>> {
        Box::pin(async move {
            let store = self.store.clone();
            let (entry, children) = blocking(move || store.add_tree(&path, &keywords))
                .await
                .map_err(|e| RpcError::new(RpcError::INVALID_PARAMS, e.to_string()))?;
            // Each file of a directory is findable and served on its own too.
            for added in children.iter().chain([&entry]) {
                self.announce(added).await;
            }
            Ok(entry_view(&entry))
        })
    }

    fn get(&self, id: ContentId, output: PathBuf) -> BoxFuture<'_, Result<Download, RpcError>> {
        Box::pin(async move {
            if let Some(parent) = output.parent()
                && !parent.as_os_str().is_empty()
                && !parent.is_dir()
            {
                return Err(RpcError::invalid_params(format!("{} is not a directory", parent.display())));
            }
            Ok(self.start_download(id, output).snapshot())
        })
    }

    fn status(&self, id: ContentId, wait: Duration) -> BoxFuture<'_, Result<Download, RpcError>> {
        Box::pin(async move {
            let progress = self.downloads.lock().expect("never poisoned").get(&id).cloned();
            let progress =
                progress.ok_or_else(|| RpcError::new(RpcError::NOT_FOUND, format!("no download of {id}")))?;
            if !wait.is_zero() {
                progress.wait_for_end(wait).await;
            }
            Ok(progress.snapshot())
        })
    }

    fn search(&self, words: Vec<String>, via: SearchVia) -> BoxFuture<'_, Result<Vec<FoundFile>, RpcError>> {
        Box::pin(async move {
            let words: Vec<String> =
                keywords::split(&words.join(" ")).into_iter().take(peerchain_net::files::MAX_QUERY_WORDS).collect();
            if words.is_empty() {
                return Err(RpcError::invalid_params("give at least one search word of two or more letters"));
            }
            let hits = self.search_network(words, via).await;
            Ok(hits
                .into_iter()
                .map(|h| FoundFile {
                    id: h.id,
                    name: h.name,
                    size: h.size,
                    directory: h.directory,
                    providers: h.providers.len(),
                })
                .collect())
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<FileEntry>, RpcError>> {
        Box::pin(async move {
            let store = self.store.clone();
            let entries = blocking(move || store.list()).await.map_err(internal)?;
            Ok(entries.iter().map(entry_view).collect())
        })
    }

    fn remove(&self, id: ContentId) -> BoxFuture<'_, Result<bool, RpcError>> {
        Box::pin(async move {
            if let Some(progress) = self.downloads.lock().expect("never poisoned").remove(&id) {
                progress.cancel.cancel();
            }
            let store = self.store.clone();
            let entry = {
                let store = store.clone();
                blocking(move || store.get(id)).await.map_err(internal)?
            };
            let removed = blocking(move || store.remove(id)).await.map_err(internal)?;
            if let Some(entry) = entry {
                self.net.stop_providing(content_key(id)).await;
                // Keyword records stay while another file still has the word.
                let store = self.store.clone();
                let remaining = blocking(move || store.list()).await.map_err(internal)?;
                for word in &entry.keywords {
                    if !remaining.iter().any(|e| e.keywords.contains(word)) {
                        self.net.stop_providing(keyword_key(word)).await;
                    }
                }
            }
            Ok(removed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerchain_blobs::PIECE_GROUPS;

    #[test]
    fn hits_merge_by_id_and_providers_by_peer() {
        let peer = Peer::random();
        let hit = |peer: Peer| Hit {
            id: ContentId([1; 32]),
            name: "a".into(),
            size: 1,
            directory: false,
            providers: vec![Provider { peer, addresses: vec![] }],
        };
        let mut hits = vec![hit(peer)];
        merge_hits(&mut hits, vec![hit(peer), hit(Peer::random())]);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].providers.len(), 2);
        assert!(hop_timeout(2) > hop_timeout(1), "deadlines shrink along the path");
    }

    #[test]
    fn a_piece_is_held_only_when_all_its_groups_are() {
        let size = 2 * PIECE_GROUPS * GROUP_BYTES;
        let mut groups = Bitmap::new(group_count(size));
        groups.set_range(0..PIECE_GROUPS);
        groups.set(PIECE_GROUPS);
        let pieces = pieces_held(size, &groups);
        assert!(pieces.get(0) && !pieces.get(1));
    }
}
