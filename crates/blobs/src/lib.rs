//! Shared content: content ids (BLAKE3 roots), the blob store in the data directory with
//! verified ranges (bao-tree outboards, 16 KiB chunk groups), partial blobs that survive
//! restarts, keywords, and the piece scheduler for multi-source downloads.
//!
//! This crate owns the bytes and their proofs; it must not know about peers' transport,
//! the chain, or how the node finds providers (that is `net` and `node`). Its I/O is blocking:
//! callers run it on blocking threads.

pub mod bitmap;
mod encode;
pub mod keywords;
pub mod manifest;
pub mod scheduler;
mod store;
mod verify;

use std::ops::Range;

pub use bitmap::Bitmap;
pub use peerchain_primitives::ContentId;
pub use store::{AddError, Entry, Error, Kind, MAX_BLOB_SIZE, ReadError, Store, WriteOutcome};

/// Bytes in one chunk group: the unit of verification. One bad group costs this much.
pub const GROUP_BYTES: u64 = 16 * 1024;
/// Chunk groups in one piece: the unit a download asks a peer for (1 MiB).
pub const PIECE_GROUPS: u64 = 64;
/// The most chunk groups one range request may ask for (4 MiB).
pub const MAX_REQUEST_GROUPS: u64 = 4 * PIECE_GROUPS;

pub(crate) const BLOCK_SIZE: bao_tree::BlockSize = bao_tree::BlockSize::from_chunk_log(4);

/// Chunk groups in content of `size` bytes (empty content still has its one empty group).
pub fn group_count(size: u64) -> u64 {
    size.div_ceil(GROUP_BYTES).max(1)
}

/// Pieces in content of `size` bytes.
pub fn piece_count(size: u64) -> u64 {
    group_count(size).div_ceil(PIECE_GROUPS)
}

/// The chunk groups of piece `piece`.
pub fn piece_groups(size: u64, piece: u64) -> Range<u64> {
    let start = piece * PIECE_GROUPS;
    start..(start + PIECE_GROUPS).min(group_count(size))
}

/// The longest valid encoding of `groups` chunk groups: their bytes plus the hash pairs on
/// the way from the root (at most 64 levels) and inside the range.
pub fn max_encoded_len(groups: u64) -> usize {
    (groups * GROUP_BYTES + (groups + 64) * 64) as usize
}

/// The content id of bytes held in memory.
pub fn content_id(bytes: &[u8]) -> ContentId {
    ContentId(*blake3::hash(bytes).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_every_group_once() {
        for size in [0, 1, GROUP_BYTES, GROUP_BYTES + 1, PIECE_GROUPS * GROUP_BYTES, 5 * PIECE_GROUPS * GROUP_BYTES + 7]
        {
            let groups: u64 = (0..piece_count(size)).map(|p| piece_groups(size, p).count() as u64).sum();
            assert_eq!(groups, group_count(size), "size {size}");
        }
        assert_eq!(piece_count(0), 1);
        assert_eq!(piece_groups(GROUP_BYTES * 65, 1), 64..65);
    }
}
