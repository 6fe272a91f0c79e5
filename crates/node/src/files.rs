//! File sharing: serves the blob store to peers (`files/serve.rs`), announces what it holds in
//! the DHT (by content id and by keyword), answers and forwards flooded keyword queries
//! (`files/search.rs`), and runs multi-source downloads that survive restarts
//! (`files/download.rs`); `files/service.rs` is what the `file.*` RPC methods call.
//!
//! `Files` is shared (RPC calls, peers' requests and downloads all use it at once): its state
//! sits behind short-held locks, and every task it starts is tracked and awaited at shutdown.

mod download;
mod pay;
mod search;
mod sell;
mod serve;
mod service;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use peerchain_blobs::{Entry, Store};
use peerchain_net::{DhtKey, FileEvent, Peer, TokenBucket};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub(crate) use pay::Payments;
pub(crate) use service::Service;

/// File-sharing settings.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_upload_bytes_per_sec: u64,
    pub(crate) max_download_bytes_per_sec: u64,
    pub(crate) max_concurrent_uploads: usize,
}

/// The DHT key announcing a content id.
fn content_key(id: peerchain_blobs::ContentId) -> DhtKey {
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
        let wait = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take(bytes as f64);
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The node's file sharing.
pub(crate) struct Files {
    store: Arc<Store>,
    net: peerchain_net::Handle,
    /// The node's misbehaviour book: a peer that serves bad data answers for it there.
    book: crate::peers::Book,
    downloads: Mutex<HashMap<peerchain_blobs::ContentId, Arc<download::Progress>>>,
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
    /// The chain and wallet, for paying and being paid.
    payments: Payments,
    /// Bytes of content served and received since start, for metrics.
    uploaded: std::sync::atomic::AtomicU64,
    downloaded: std::sync::atomic::AtomicU64,
    /// Pieces peers served that failed verification, since start.
    bad_pieces: std::sync::atomic::AtomicU64,
    /// Content on sale, and the channels paying for it.
    sales: sell::Sales,
    cancel: CancellationToken,
    /// Every task file sharing starts (answers to peers, downloads), awaited at shutdown.
    tasks: TaskTracker,
}

/// Runs blob-store work (blocking I/O and hashing) off the async executor.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.expect("blob store work does not panic")
}

/// Locks a mutex whose holders never leave its value half changed.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Files {
    pub(crate) fn new(
        store: Arc<Store>,
        net: peerchain_net::Handle,
        book: crate::peers::Book,
        limits: Limits,
        payments: Payments,
        cancel: CancellationToken,
    ) -> Arc<Files> {
        Arc::new(Files {
            sales: sell::Sales::new(payments.channels.clone()),
            payments,
            uploaded: Default::default(),
            downloaded: Default::default(),
            bad_pieces: Default::default(),
            store,
            net,
            book,
            downloads: Mutex::new(HashMap::new()),
            seen_queries: Mutex::new((HashSet::new(), VecDeque::new())),
            search_allowance: Mutex::new(HashMap::new()),
            all_searches: Mutex::new(search::all_searches()),
            forwards: Mutex::new(search::forwards()),
            uploads: Semaphore::new(limits.max_concurrent_uploads.max(1)),
            upload_limit: RateLimit::new(limits.max_upload_bytes_per_sec),
            download_limit: RateLimit::new(limits.max_download_bytes_per_sec),
            cancel,
            tasks: TaskTracker::new(),
        })
    }

    /// The actor's loop: announces the store, resumes downloads, then answers peers' requests
    /// until cancelled; returns once every task it started has ended.
    pub(crate) async fn run(self: Arc<Self>, mut events: mpsc::Receiver<FileEvent>) {
        self.start().await;
        let mut close_idle = tokio::time::interval(sell::CLOSE_IDLE / 4);
        loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                _ = close_idle.tick() => self.close_idle_channels().await,
                event = events.recv() => match event {
                    Some(FileEvent::Request { peer, request, id }) => self.handle_request(peer, request, id),
                    None => break,
                },
            }
        }
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Announces every complete blob and resumes unfinished downloads.
    async fn start(self: &Arc<Self>) {
        let (store, files) = (self.store.clone(), self.clone());
        if let Err(e) = blocking(move || files.sales.load(&store)).await {
            warn!(error = %e, "cannot read the sales and payment channels");
        }
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
                    self.start_download(id, path, pay::Allowance::default());
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
}
