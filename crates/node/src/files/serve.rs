//! Serving peers: what this node holds of a content id, ranges of it with their proofs
//! (uploads bounded in number and rate), and keyword searches (see `search.rs`).

use std::sync::Arc;

use peerchain_blobs::{Bitmap, Kind, ReadError, piece_count, piece_groups};
use peerchain_net::{FileRequest, FileResponse, Peer};
use tracing::warn;

use super::{Files, blocking};

impl Files {
    /// Answers a peer's file request (on its own task).
    pub(super) fn handle_request(self: &Arc<Self>, peer: Peer, request: FileRequest, id: peerchain_net::InboundId) {
        let files = self.clone();
        self.tasks.spawn(async move {
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
                        price: self.sales.price(&id),
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
                // Content on sale: served one piece ahead of what the buyer paid.
                if let Err(reason) = self.sales.allow_range(peer, id, start, count) {
                    return FileResponse::Refused(reason);
                }
                let store = self.store.clone();
                let end = start.saturating_add(u64::from(count));
                match blocking(move || store.read_range(id, start..end)).await {
                    Ok(bytes) => {
                        if let Some(limit) = &self.upload_limit {
                            limit.acquire(bytes.len() as u64).await;
                        }
                        self.uploaded.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                        FileResponse::Range(bytes.into())
                    }
                    Err(ReadError::Damaged(reason)) => {
                        warn!(%id, %reason, "not serving damaged content");
                        FileResponse::Refused("content damaged".into())
                    }
                    Err(e) => FileResponse::Refused(e.to_string()),
                }
            }
            FileRequest::Pay { id, payout } => {
                let rules = peerchain_market::PaymentRules {
                    min_fee_per_byte: self.payments.min_fee_per_byte,
                    network_magic: self.payments.network_magic,
                };
                let (answer, paid_in_full) = self.sales.pay(&self.payments.chain, peer, id, &payout, rules).await;
                if let Some(escrow) = paid_in_full {
                    self.sales.close(escrow, &self.payments.chain, &self.net, &self.payments.wallet).await;
                }
                answer
            }
            FileRequest::Search { query_id, words, hops } => {
                if !self.allow_search(peer) {
                    return FileResponse::Refused("too many searches".into());
                }
                FileResponse::Hits(self.answer_search(Some(peer), query_id, words, hops).await)
            }
        }
    }
}

/// The pieces whose every chunk group is verified.
pub(super) fn pieces_held(size: u64, groups: &Bitmap) -> Bitmap {
    let mut pieces = Bitmap::new(piece_count(size));
    for piece in 0..piece_count(size) {
        if groups.all(piece_groups(size, piece)) {
            pieces.set(piece);
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use peerchain_blobs::{GROUP_BYTES, PIECE_GROUPS, group_count};

    use super::*;

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
