//! The `file.*` methods: sharing, downloading (with progress), searching, listing and removing
//! files, through the node's [`FileService`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use peerchain_primitives::ContentId;
use serde_json::{Value, json};

use crate::params::Params;
use crate::services::{Download, DownloadState, FileEntry, SearchVia};
use crate::{Context, RpcError};

/// The longest a `file.status` call may wait for its download to end (`wait_ms`).
pub const MAX_STATUS_WAIT_MS: u64 = 10_000;

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
pub(super) const DOWNLOADS_DIR: &str = "downloads";

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

pub(crate) fn entry_json(entry: &FileEntry) -> Value {
    json!({
        "id": entry.id.to_string(),
        "name": entry.name,
        "size": entry.size,
        "directory": entry.directory,
        "verified_bytes": entry.verified_bytes,
        "complete": entry.verified_bytes == entry.size,
        "keywords": entry.keywords,
        "price": entry.price,
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
        "price": download.price,
        "paid": download.paid,
    })
}

pub(super) async fn add(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let path = absolute_path(params, "path")?;
    check_outside_data_dir(context, &path, "path", true)?;
    let entry = context.files.add(path, strings(params, "keywords")?).await?;
    Ok(entry_json(&entry))
}

pub(super) async fn get(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let id = content_id(params)?;
    // Without a path, into the node's downloads folder, under the content id.
    let path = match params.get("path") {
        None | Some(Value::Null) => {
            let folder = context.data_dir.join(DOWNLOADS_DIR);
            std::fs::create_dir_all(&folder)
                .map_err(|e| RpcError::internal(format!("cannot make {}: {e}", folder.display())))?;
            folder.join(id.to_string())
        }
        Some(_) => absolute_path(params, "path")?,
    };
    check_outside_data_dir(context, &path, "path", false)?;
    let pay_up_to = match params.get("pay_up_to") {
        None | Some(Value::Null) => None,
        Some(_) => Some(super::amount_param(params, "pay_up_to")?.units()),
    };
    let passphrase = params.optional_str("passphrase")?.map(str::to_owned);
    let download = context.files.get(id, path, pay_up_to, passphrase).await?;
    Ok(download_json(&download))
}

pub(super) async fn sell(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let id = content_id(params)?;
    let price = super::amount_param(params, "price")?.units();
    let passphrase = params.optional_str("passphrase")?.map(str::to_owned);
    let entry = context.files.sell(id, (price > 0).then_some(price), passphrase).await?;
    Ok(entry_json(&entry))
}

pub(super) async fn status(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let id = content_id(params)?;
    let wait = params.optional_u64("wait_ms")?.unwrap_or(0);
    if wait > MAX_STATUS_WAIT_MS {
        return Err(RpcError::invalid_params(format!("`wait_ms` must be at most {MAX_STATUS_WAIT_MS}")));
    }
    Ok(download_json(&context.files.status(id, Duration::from_millis(wait)).await?))
}

pub(super) async fn search(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let words = strings(params, "words")?;
    let via = match params.optional_str("via")? {
        None | Some("both") => SearchVia::Both,
        Some("dht") => SearchVia::Dht,
        Some("flood") => SearchVia::Flood,
        Some(other) => {
            return Err(RpcError::invalid_params(format!("`via` must be both, dht or flood, not `{other}`")));
        }
    };
    let found = context.files.search(words, via).await?;
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

pub(super) async fn list(context: &Context, _: &Params) -> Result<Value, RpcError> {
    Ok(Value::Array(context.files.list().await?.iter().map(entry_json).collect()))
}

pub(super) async fn remove(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let id = content_id(params)?;
    if !context.files.remove(id).await? {
        return Err(RpcError::new(RpcError::NOT_FOUND, format!("no content {id} on this node")));
    }
    Ok(json!({ "removed": id.to_string() }))
}
