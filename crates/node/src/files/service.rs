//! The `file.*` RPC methods, served by the node's file sharing: what they call, and the views
//! of blobs and downloads they answer with.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use peerchain_blobs::{ContentId, Entry, GROUP_BYTES, Kind, keywords};
use peerchain_rpc::ServiceError;
use peerchain_rpc::files::{
    BoxFuture, Download, DownloadState, FileEntry, FileService, FileTotals, FoundFile, SearchVia,
};

use super::download::{Progress, State};
use super::pay::Allowance;
use super::{Files, blocking, content_key, keyword_key, lock};

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// A download's progress as `file.get` and `file.status` show it.
fn view(progress: &Progress) -> Download {
    let size = progress.size.load(Ordering::Relaxed);
    let (state, error) = lock(&progress.state).clone();
    let seconds = progress.started.elapsed().as_secs_f64().max(0.001);
    Download {
        id: progress.id,
        name: lock(&progress.name).clone(),
        size,
        verified_bytes: (progress.verified_groups.load(Ordering::Relaxed) * GROUP_BYTES).min(size),
        sources: progress.sources.load(Ordering::Relaxed),
        peers: progress.peers.load(Ordering::Relaxed),
        state: match state {
            State::Finding => DownloadState::Finding,
            State::Downloading => DownloadState::Downloading,
            State::Done => DownloadState::Done,
            State::Failed => DownloadState::Failed,
        },
        path: progress.path.clone(),
        error,
        rate: (progress.bytes_this_run.load(Ordering::Relaxed) as f64 / seconds) as u64,
        price: progress.price.load(Ordering::Relaxed),
        paid: progress.paid.load(Ordering::Relaxed),
    }
}

fn entry_view(entry: &Entry, price: Option<u64>) -> FileEntry {
    FileEntry {
        id: entry.id,
        name: entry.name.clone(),
        size: entry.size,
        directory: entry.kind == Kind::Directory,
        verified_bytes: (entry.verified_groups * GROUP_BYTES).min(entry.size),
        keywords: entry.keywords.clone(),
        price,
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
    fn add(&self, path: PathBuf, keywords: Vec<String>) -> BoxFuture<'_, Result<FileEntry, ServiceError>> {
        Box::pin(async move {
            let store = self.store.clone();
            let (entry, children) = blocking(move || store.add_tree(&path, &keywords))
                .await
                .map_err(|e| ServiceError::InvalidInput(e.to_string()))?;
            // Each file of a directory is findable and served on its own too.
            for added in children.iter().chain([&entry]) {
                self.announce(added).await;
            }
            Ok(entry_view(&entry, self.sales.price(&entry.id).map(|p| p.units)))
        })
    }

    fn get(
        &self,
        id: ContentId,
        output: PathBuf,
        pay_up_to: Option<u64>,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<Download, ServiceError>> {
        Box::pin(async move {
            if let Some(parent) = output.parent()
                && !parent.as_os_str().is_empty()
                && !parent.is_dir()
            {
                return Err(ServiceError::InvalidInput(format!("{} is not a directory", parent.display())));
            }
            Ok(view(&self.start_download(id, output, Allowance { up_to: pay_up_to, passphrase })))
        })
    }

    fn sell(
        &self,
        id: ContentId,
        price: Option<u64>,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<FileEntry, ServiceError>> {
        Box::pin(async move {
            let store = self.store.clone();
            let entry = blocking(move || store.get(id)).await.map_err(internal)?;
            let entry = entry.ok_or_else(|| ServiceError::NotFound(format!("{id} is not in the store")))?;
            if !entry.is_complete() {
                return Err(ServiceError::InvalidInput(format!("{id} is not complete; sell it once it is")));
            }
            let sale = match price {
                None => None,
                Some(price) => {
                    let seller =
                        crate::market::with_wallet(&self.payments.wallet, &self.payments.chain, move |w, _| {
                            let hash =
                                w.address(false, passphrase.as_deref()).map_err(ServiceError::from_wallet)?.key_hash;
                            w.public_key(&hash).ok_or_else(|| ServiceError::Internal("no key for the address".into()))
                        })
                        .await?;
                    Some((peerchain_market::Sale { price, seller }, entry.size))
                }
            };
            let files = self.0.clone();
            blocking(move || files.sales.set(id, sale)).await.map_err(internal)?;
            Ok(entry_view(&entry, price))
        })
    }

    fn status(&self, id: ContentId, wait: Duration) -> BoxFuture<'_, Result<Download, ServiceError>> {
        Box::pin(async move {
            let progress = lock(&self.downloads).get(&id).cloned();
            let progress = progress.ok_or_else(|| ServiceError::NotFound(format!("no download of {id}")))?;
            if !wait.is_zero() {
                progress.wait_for_end(wait).await;
            }
            Ok(view(&progress))
        })
    }

    fn search(&self, words: Vec<String>, via: SearchVia) -> BoxFuture<'_, Result<Vec<FoundFile>, ServiceError>> {
        Box::pin(async move {
            let words: Vec<String> =
                keywords::split(&words.join(" ")).into_iter().take(peerchain_net::files::MAX_QUERY_WORDS).collect();
            if words.is_empty() {
                return Err(ServiceError::InvalidInput("give at least one search word of two or more letters".into()));
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

    fn list(&self) -> BoxFuture<'_, Result<Vec<FileEntry>, ServiceError>> {
        Box::pin(async move {
            let store = self.store.clone();
            let entries = blocking(move || store.list()).await.map_err(internal)?;
            Ok(entries.iter().map(|e| entry_view(e, self.sales.price(&e.id).map(|p| p.units))).collect())
        })
    }

    fn totals(&self) -> FileTotals {
        let active = lock(&self.downloads).values().filter(|p| !lock(&p.state).0.is_end()).count();
        FileTotals {
            uploaded_bytes: self.uploaded.load(Ordering::Relaxed),
            downloaded_bytes: self.downloaded.load(Ordering::Relaxed),
            active_downloads: active,
            bad_pieces: self.bad_pieces.load(Ordering::Relaxed),
        }
    }

    fn remove(&self, id: ContentId) -> BoxFuture<'_, Result<bool, ServiceError>> {
        Box::pin(async move {
            if let Some(progress) = lock(&self.downloads).remove(&id) {
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
