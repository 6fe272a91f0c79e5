//! Block headers and blocks.

use sha2::{Digest, Sha256};

use crate::encode::{Decode, DecodeError, Encode, Reader, Sink, put_list};
use crate::hash::{BlockHash, MerkleRoot, WtxId, finish_sha256d, hash_encoded};
use crate::pow::CompactTarget;
use crate::transaction::Transaction;

/// Most transactions a decoded block may list; the consensus size limit is lower.
pub const MAX_BLOCK_TRANSACTIONS: usize = 1_000_000;

/// The length of an encoded header.
pub const HEADER_LEN: usize = 88;

/// What proof of work hashes: the block's place in the chain, its content, time and target.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BlockHeader {
    /// Format version; 1 so far.
    pub version: u32,
    /// The hash of the block this one extends.
    pub prev_hash: BlockHash,
    /// The merkle root over the block's transactions.
    pub merkle_root: MerkleRoot,
    /// Seconds since the Unix epoch, as the miner saw it.
    pub time: u64,
    /// The target the hash must meet.
    pub bits: CompactTarget,
    /// What the miner varies.
    pub nonce: u64,
}

impl BlockHeader {
    /// The block's hash: double SHA-256 of the 88-byte header.
    pub fn hash(&self) -> BlockHash {
        BlockHash(hash_encoded(self))
    }

    /// The SHA-256 state after the first 64 bytes, which do not contain the nonce: the miner
    /// starts every attempt from it and hashes only the last 24 bytes.
    pub fn midstate(&self) -> Sha256 {
        let bytes = self.to_bytes();
        let mut hasher = Sha256::new();
        hasher.update(&bytes[..64]);
        hasher
    }

    /// The hash with `nonce`, continuing from [`Self::midstate`].
    pub fn hash_from_midstate(&self, midstate: &Sha256, nonce: u64) -> BlockHash {
        let mut tail = [0u8; HEADER_LEN - 64];
        tail[..4].copy_from_slice(&self.merkle_root.0[28..]);
        tail[4..12].copy_from_slice(&self.time.to_le_bytes());
        tail[12..16].copy_from_slice(&self.bits.0.to_le_bytes());
        tail[16..].copy_from_slice(&nonce.to_le_bytes());
        let mut hasher = midstate.clone();
        hasher.update(tail);
        BlockHash(finish_sha256d(hasher))
    }
}

impl Encode for BlockHeader {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        self.version.encode_to(sink);
        self.prev_hash.encode_to(sink);
        self.merkle_root.encode_to(sink);
        self.time.encode_to(sink);
        self.bits.0.encode_to(sink);
        self.nonce.encode_to(sink);
    }

    fn encoded_len(&self) -> usize {
        HEADER_LEN
    }
}

impl Decode for BlockHeader {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: reader.u32("block version")?,
            prev_hash: BlockHash::decode(reader)?,
            merkle_root: MerkleRoot::decode(reader)?,
            time: reader.u64("block time")?,
            bits: CompactTarget(reader.u32("block bits")?),
            nonce: reader.u64("nonce")?,
        })
    }
}

/// A header and the transactions it commits to; the first is the coinbase.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, coinbase first.
    pub transactions: Vec<Transaction>,
}

impl Block {
    /// The block's hash.
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// The merkle root its transactions have.
    pub fn compute_merkle_root(&self) -> MerkleRoot {
        let leaves: Vec<WtxId> = self.transactions.iter().map(Transaction::wtxid).collect();
        merkle_root(&leaves)
    }
}

impl Encode for Block {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        self.header.encode_to(sink);
        put_list(sink, &self.transactions);
    }
}

impl Decode for Block {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            header: BlockHeader::decode(reader)?,
            transactions: reader.list("transactions", MAX_BLOCK_TRANSACTIONS)?,
        })
    }
}

/// The merkle root over transaction hashes.
///
/// Security: leaves and inner nodes are hashed in separate domains (a leaf is
/// `sha256d(0x00 ‖ wtxid)`, an inner node `sha256d(0x01 ‖ left ‖ right)`, as in RFC 6962), and an
/// odd last node is carried up unchanged rather than paired with itself. So no list of
/// transactions shares a root with another list: a 65-byte transaction cannot stand in for a
/// pair of leaves (its leaf hash is in the leaf domain), and `[a, b, c]` cannot collide with
/// `[a, b, c, c]` as in Bitcoin's duplicated-last-leaf scheme (CVE-2012-2459).
pub fn merkle_root(leaves: &[WtxId]) -> MerkleRoot {
    if leaves.is_empty() {
        return MerkleRoot::ZERO;
    }
    let mut level: Vec<[u8; 32]> = leaves.iter().map(|leaf| tagged_hash(0, &[&leaf.0])).collect();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [left, right] => next.push(tagged_hash(1, &[left, right])),
                [odd] => next.push(*odd),
                _ => unreachable!("chunks(2) yields one or two items"),
            }
        }
        level = next;
    }
    MerkleRoot(level[0])
}

/// `sha256d(tag ‖ parts...)`.
fn tagged_hash(tag: u8, parts: &[&[u8; 32]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([tag]);
    for part in parts {
        hasher.update(part);
    }
    finish_sha256d(hasher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256d;

    #[test]
    fn merkle_root_has_no_duplicate_leaf_collision() {
        let leaf = |n: u8| WtxId(sha256d(&[n]));
        let three = merkle_root(&[leaf(1), leaf(2), leaf(3)]);
        let four = merkle_root(&[leaf(1), leaf(2), leaf(3), leaf(3)]);
        assert_ne!(three, four);
        assert_ne!(merkle_root(&[leaf(1)]).0, leaf(1).0, "a single leaf is hashed in the leaf domain");
        assert_ne!(merkle_root(&[leaf(1), leaf(2)]), merkle_root(&[leaf(2), leaf(1)]));
    }

    /// Consensus: the roots of fixed leaves, pinned so that a change to the tree shows here.
    #[test]
    fn merkle_roots_are_pinned() {
        let leaf = |n: u8| WtxId(sha256d(&[n]));
        let hex = |root: MerkleRoot| root.to_string();
        assert_eq!(hex(merkle_root(&[leaf(1)])), "03ce606473283a081eb5378220ee4af18fb668e314bcd168763ee93c9543a1d3");
        assert_eq!(
            hex(merkle_root(&[leaf(1), leaf(2), leaf(3)])),
            "46e969f4977fc10bf6a9e30f84c6b4f71e418c56955b69d311d9b5866b123062"
        );
        assert_eq!(
            hex(merkle_root(&[leaf(1), leaf(2), leaf(3), leaf(4), leaf(5)])),
            "f7a253af29c3e528db7b8c32b3976795d89cb85c42636bdae8567f5da4be68b0"
        );
    }

    #[test]
    fn midstate_hash_equals_full_hash() {
        let mut header = BlockHeader {
            version: 1,
            prev_hash: BlockHash(sha256d(b"prev")),
            merkle_root: MerkleRoot(sha256d(b"root")),
            time: 1_700_000_000,
            bits: CompactTarget(0x207fffff),
            nonce: 0,
        };
        assert_eq!(header.to_bytes().len(), HEADER_LEN);
        let midstate = header.midstate();
        for nonce in [0, 1, 99, u64::MAX] {
            header.nonce = nonce;
            assert_eq!(header.hash_from_midstate(&midstate, nonce), header.hash());
        }
    }
}
