//! What the RPC server asks of the node, as traits the node implements: file sharing, and
//! sending transactions to the network. Their errors are domain errors ([`ServiceError`],
//! the mempool's refusals); this crate alone turns them into JSON-RPC codes.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use peerchain_chain::SubmitTxError;
use peerchain_primitives::{ContentId, Transaction, TxId};

use crate::RpcError;

/// A boxed future, so that the service can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A blob in the node's store.
#[derive(Debug, Clone)]
pub struct FileEntry {
    /// Its content id.
    pub id: ContentId,
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it is a directory.
    pub directory: bool,
    /// Bytes verified and stored.
    pub verified_bytes: u64,
    /// What searches find it by.
    pub keywords: Vec<String>,
}

/// Where a download stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadState {
    /// Looking for providers, or proving the size.
    Finding,
    /// Fetching pieces.
    Downloading,
    /// Complete and written to its path.
    Done,
    /// Given up; see the error.
    Failed,
}

/// A download's progress.
#[derive(Debug, Clone)]
pub struct Download {
    /// The content.
    pub id: ContentId,
    /// Its name (empty until a provider said).
    pub name: String,
    /// Its size (0 until proven).
    pub size: u64,
    /// Bytes verified so far.
    pub verified_bytes: u64,
    /// Peers that served at least one piece.
    pub sources: usize,
    /// Peers currently asked for pieces.
    pub peers: usize,
    /// The state.
    pub state: DownloadState,
    /// Where the result goes.
    pub path: PathBuf,
    /// Why it failed.
    pub error: Option<String>,
    /// Recent download rate in bytes per second.
    pub rate: u64,
}

/// A search hit, merged over the DHT and the flooded query.
#[derive(Debug, Clone)]
pub struct FoundFile {
    /// The content.
    pub id: ContentId,
    /// Its name.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// Whether it is a directory.
    pub directory: bool,
    /// How many peers hold it.
    pub providers: usize,
}

/// Which overlay a search asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchVia {
    /// Both, merged.
    Both,
    /// Keyword provider records in the DHT.
    Dht,
    /// A query flooded to neighbours with a hop limit.
    Flood,
}

/// What the node does for the `file.*` methods.
pub trait FileService: Send + Sync {
    /// Adds a file or directory at `path` (on the node's machine), with extra keywords.
    fn add(&self, path: PathBuf, keywords: Vec<String>) -> BoxFuture<'_, Result<FileEntry, ServiceError>>;
    /// Starts (or joins) the download of `id` to `output`.
    fn get(&self, id: ContentId, output: PathBuf) -> BoxFuture<'_, Result<Download, ServiceError>>;
    /// A download's progress, as soon as it ends or after `wait`, whichever comes first.
    fn status(&self, id: ContentId, wait: Duration) -> BoxFuture<'_, Result<Download, ServiceError>>;
    /// Files matching every word.
    fn search(&self, words: Vec<String>, via: SearchVia) -> BoxFuture<'_, Result<Vec<FoundFile>, ServiceError>>;
    /// The store's blobs.
    fn list(&self) -> BoxFuture<'_, Result<Vec<FileEntry>, ServiceError>>;
    /// Stops serving and deletes a blob; whether it was there.
    fn remove(&self, id: ContentId) -> BoxFuture<'_, Result<bool, ServiceError>>;
}

/// How the node sends a transaction to the network: into its mempool (which validates it),
/// then to its peers. Written once, in the node, for every caller.
pub trait Relay: Send + Sync {
    /// Submits `tx` and, once the mempool accepted it, publishes it.
    fn submit(&self, tx: Transaction) -> BoxFuture<'_, Result<TxId, SubmitTxError>>;
}

/// What a service of the node (file sharing, and what comes next) reports when a call fails:
/// its kind decides the JSON-RPC error code, its message is shown as it is. Services know
/// nothing of JSON-RPC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The caller asked for something impossible (a path that is not a directory, no words).
    #[error("{0}")]
    InvalidInput(String),
    /// What the caller named does not exist here.
    #[error("{0}")]
    NotFound(String),
    /// The node failed.
    #[error("{0}")]
    Internal(String),
}

impl From<ServiceError> for RpcError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::InvalidInput(message) => RpcError::new(RpcError::INVALID_PARAMS, message),
            ServiceError::NotFound(message) => RpcError::new(RpcError::NOT_FOUND, message),
            ServiceError::Internal(message) => RpcError::new(RpcError::INTERNAL_ERROR, message),
        }
    }
}
