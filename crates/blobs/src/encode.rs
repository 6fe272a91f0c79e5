//! Encoding a range for a peer straight into the answer: the pre-order bao encoding of whole
//! chunk groups, with each group read from the data file into its place in the buffer.
//! bao-tree's encoder reads every group into a buffer of its own and copies it out, which a
//! profile of a source showed as about a twentieth of its CPU. The counterpart of
//! `verify.rs`, and checked against bao-tree's encoder byte for byte.

use std::io;

use bao_tree::ChunkRangesRef;
use bao_tree::io::sync::{Outboard, ReadAt, truncate_ranges};
use bao_tree::iter::{BaoChunk, ResponseIterRef};

/// Appends to `encoded` the encoding of `ranges` (whole chunk groups, as requests name them)
/// of the blob whose data is `data` and whose hash pairs are in `outboard`. Nothing is
/// checked against the root: callers serving data they cannot vouch for run `verify_range`
/// on the result.
pub(crate) fn encode_range(
    data: &impl ReadAt,
    outboard: &impl Outboard,
    ranges: &ChunkRangesRef,
    encoded: &mut Vec<u8>,
) -> io::Result<()> {
    let tree = outboard.tree();
    for chunk in ResponseIterRef::new(tree, truncate_ranges(ranges, tree.size())) {
        match chunk {
            BaoChunk::Parent { node, .. } => {
                let (left, right) = outboard
                    .load(node)?
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no hash pair for {node:?}")))?;
                encoded.extend_from_slice(left.as_bytes());
                encoded.extend_from_slice(right.as_bytes());
            }
            BaoChunk::Leaf { start_chunk, size, .. } => {
                let at = encoded.len();
                encoded.resize(at + size, 0);
                data.read_exact_at(start_chunk.to_bytes(), &mut encoded[at..])?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::chunk_ranges;
    use crate::verify::verify_range;
    use crate::{BLOCK_SIZE as BLOCK, group_count};
    use bao_tree::io::outboard::PreOrderMemOutboard;
    use bao_tree::io::sync::encode_ranges_validated;

    #[test]
    fn matches_bao_tree_byte_for_byte_and_verifies() {
        let data: Vec<u8> = (0..600_000u32).map(|i| (i * 13 + i / 777) as u8).collect();
        for size in [0, 1, 1024, 16 * 1024, 16 * 1024 + 1, 100_000, 300_000, 600_000] {
            let data = &data[..size];
            let outboard = PreOrderMemOutboard::create(data, BLOCK);
            // Every range of groups a request may name (inside the blob), a few per size.
            let total = group_count(size as u64);
            let mut cases =
                vec![(0, 1), (0, total), (total - 1, total), (total / 2, total), (total / 3, total / 2 + 1)];
            cases.retain(|(start, end)| start < end);
            for groups in cases.into_iter().map(|(start, end)| start..end) {
                let ranges = chunk_ranges(size as u64, groups.clone());
                let mut theirs = Vec::new();
                encode_ranges_validated(data, &outboard, &ranges, &mut theirs).unwrap();
                let mut ours = Vec::new();
                encode_range(&data, &outboard, &ranges, &mut ours).unwrap();
                assert_eq!(ours, theirs, "size {size}, groups {groups:?}");
                assert_eq!(verify_range(outboard.root, outboard.tree, &ranges, &ours).fault, None);
            }
        }
    }

    #[test]
    fn a_short_data_file_is_an_error() {
        let data = vec![7u8; 100_000];
        let outboard = PreOrderMemOutboard::create(&data, BLOCK);
        let whole = chunk_ranges(100_000, 0..7);
        assert!(encode_range(&&data[..50_000], &outboard, &whole, &mut Vec::new()).is_err());
    }
}
