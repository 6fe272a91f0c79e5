//! The `file.*` methods. The node implements [`FileService`] (it drives the network and the
//! blob store); this module reads parameters and shapes the JSON.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use peerchain_primitives::ContentId;
use serde_json::{Value, json};

use crate::methods::Params;
use crate::{Context, RpcError};

/// The longest a `file.status` call may wait for its download to end (`wait_ms`).
pub const MAX_STATUS_WAIT_MS: u64 = 10_000;

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
    fn add(&self, path: PathBuf, keywords: Vec<String>) -> BoxFuture<'_, Result<FileEntry, RpcError>>;
    /// Starts (or joins) the download of `id` to `output`.
    fn get(&self, id: ContentId, output: PathBuf) -> BoxFuture<'_, Result<Download, RpcError>>;
    /// A download's progress, as soon as it ends or after `wait`, whichever comes first.
    fn status(&self, id: ContentId, wait: Duration) -> BoxFuture<'_, Result<Download, RpcError>>;
    /// Files matching every word.
    fn search(&self, words: Vec<String>, via: SearchVia) -> BoxFuture<'_, Result<Vec<FoundFile>, RpcError>>;
    /// The store's blobs.
    fn list(&self) -> BoxFuture<'_, Result<Vec<FileEntry>, RpcError>>;
    /// Stops serving and deletes a blob; whether it was there.
    fn remove(&self, id: ContentId) -> BoxFuture<'_, Result<bool, RpcError>>;
}

fn content_id(params: &Params) -> Result<ContentId, RpcError> {
    let text = params.required_str("id")?;
    text.parse().map_err(|_| RpcError::invalid_params(format!("`{text}` is not a content id (64 hex digits)")))
}

fn absolute_path(params: &Params, name: &str) -> Result<PathBuf, RpcError> {
    let path = PathBuf::from(params.required_str(name)?);
    if !path.is_absolute() {
        return Err(RpcError::invalid_params(format!("`{name}` must be an absolute path on the node's machine")));
    }
    Ok(path)
}

/// The folder of the data directory downloads may go to.
pub const DOWNLOADS_DIR: &str = "downloads";

/// `path` with symbolic links and `..` resolved as far as it exists (the rest appended).
fn resolved(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.into_iter().rev().fold(real, |path, part| path.join(part));
        }
        match (existing.file_name().map(ToOwned::to_owned), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Security: the data directory holds the wallet, the node's key, the RPC cookie and the
/// chain store. Sharing it (or a folder holding it) would publish them, searchable by their
/// names; downloading into it could overwrite them. Both are refused, but for its
/// `downloads` folder as a download's destination.
fn check_outside_data_dir(context: &Context, path: &Path, name: &str, sharing: bool) -> Result<(), RpcError> {
    let data_dir = resolved(&context.data_dir);
    let path = resolved(path);
    let inside = path.starts_with(&data_dir) && (sharing || !path.starts_with(data_dir.join(DOWNLOADS_DIR)));
    if inside || (sharing && data_dir.starts_with(&path)) {
        return Err(RpcError::invalid_params(format!(
            "`{name}` {} the node's data directory {} (its wallet, key and cookie); choose another path",
            if inside { "is inside" } else { "holds" },
            data_dir.display()
        )));
    }
    Ok(())
}

fn strings(params: &Params, name: &str) -> Result<Vec<String>, RpcError> {
    match params.get(name) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| RpcError::invalid_params(format!("`{name}` must be strings")))
            })
            .collect(),
        Some(_) => Err(RpcError::invalid_params(format!("`{name}` must be an array of strings"))),
    }
}

fn entry_json(entry: &FileEntry) -> Value {
    json!({
        "id": entry.id.to_string(),
        "name": entry.name,
        "size": entry.size,
        "directory": entry.directory,
        "verified_bytes": entry.verified_bytes,
        "complete": entry.verified_bytes == entry.size,
        "keywords": entry.keywords,
    })
}

fn download_json(download: &Download) -> Value {
    json!({
        "id": download.id.to_string(),
        "name": download.name,
        "size": download.size,
        "verified_bytes": download.verified_bytes,
        "sources": download.sources,
        "peers": download.peers,
        "state": match download.state {
            DownloadState::Finding => "finding",
            DownloadState::Downloading => "downloading",
            DownloadState::Done => "done",
            DownloadState::Failed => "failed",
        },
        "path": download.path.to_string_lossy(),
        "error": download.error,
        "rate": download.rate,
    })
}

pub(crate) async fn call(context: &Context, method: &str, params: &Params) -> Result<Value, RpcError> {
    let files = &context.files;
    match method {
        "file.add" => {
            let path = absolute_path(params, "path")?;
            check_outside_data_dir(context, &path, "path", true)?;
            let entry = files.add(path, strings(params, "keywords")?).await?;
            Ok(entry_json(&entry))
        }
        "file.get" => {
            let id = content_id(params)?;
            let path = absolute_path(params, "path")?;
            check_outside_data_dir(context, &path, "path", false)?;
            let download = files.get(id, path).await?;
            Ok(download_json(&download))
        }
        "file.status" => {
            let id = content_id(params)?;
            let wait = params.optional_u64("wait_ms")?.unwrap_or(0);
            if wait > MAX_STATUS_WAIT_MS {
                return Err(RpcError::invalid_params(format!("`wait_ms` must be at most {MAX_STATUS_WAIT_MS}")));
            }
            Ok(download_json(&files.status(id, Duration::from_millis(wait)).await?))
        }
        "file.search" => {
            let words = strings(params, "words")?;
            let via = match params.optional_str("via")? {
                None | Some("both") => SearchVia::Both,
                Some("dht") => SearchVia::Dht,
                Some("flood") => SearchVia::Flood,
                Some(other) => {
                    return Err(RpcError::invalid_params(format!("`via` must be both, dht or flood, not `{other}`")));
                }
            };
            let found = files.search(words, via).await?;
            Ok(Value::Array(
                found
                    .iter()
                    .map(|f| {
                        json!({
                            "id": f.id.to_string(),
                            "name": f.name,
                            "size": f.size,
                            "directory": f.directory,
                            "providers": f.providers,
                        })
                    })
                    .collect(),
            ))
        }
        "file.list" => Ok(Value::Array(files.list().await?.iter().map(entry_json).collect())),
        "file.remove" => {
            let id = content_id(params)?;
            if !files.remove(id).await? {
                return Err(RpcError::new(RpcError::NOT_FOUND, format!("no content {id} on this node")));
            }
            Ok(json!({ "removed": id.to_string() }))
        }
        _ => unreachable!("every file method has an arm"),
    }
}
