//! One fuzz target per decoder of bytes a peer, a client or a disk can hand the node. Each
//! target decodes, and whatever decodes must encode back to the very same bytes (one encoding
//! per value, an invariant of ARCHITECTURE.md) and decode again to the same value; nothing
//! may panic. `fuzz_targets/` wraps each in libFuzzer (`fuzz/run.sh`); `tests/regressions.rs`
//! runs every saved input (seeds and what campaigns found) on stable in the normal test suite.

use std::sync::OnceLock;

use peerchain_blobs::{Bitmap, GROUP_BYTES, Store, group_count, manifest::Manifest};
use peerchain_net::protocol::{Message, decode_from_wire, decode_transaction_batch};
use peerchain_net::{Announcement, FileRequest, FileResponse, MarketRequest, MarketResponse, Request, Response};
use peerchain_primitives::{Block, BlockHeader, CompactBlock, ContentId, Decode, Encode, Transaction};

/// A target: it reads any bytes, and panics when they show a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus folder and libFuzzer binary.
pub const TARGETS: &[(&str, Target)] = &[
    ("transaction", transaction),
    ("block", block),
    ("header", header),
    ("compact_block", compact_block),
    ("sync_request", sync_request),
    ("sync_response", sync_response),
    ("announcement", announcement),
    ("transaction_batch", transaction_batch),
    ("file_request", file_request),
    ("file_response", file_response),
    ("manifest", manifest),
    ("bitmap", bitmap),
    ("verify_range", verify_range),
    ("rpc_request", rpc_request),
    ("offer", offer),
    ("market_request", market_request),
    ("market_response", market_response),
    ("contract_message", contract_message),
];

/// Decodes `data` as a `T`; if it decodes, checks it is the one encoding of its value.
fn round_trip<T: Decode + Encode + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(value) = T::from_bytes(data) {
        let encoded = value.to_bytes();
        assert_eq!(encoded, data, "{value:?} decoded from bytes it does not encode to");
        assert_eq!(T::from_bytes(&encoded).as_ref(), Ok(&value));
    }
}

/// As [`round_trip`], for a message of a request-response protocol read as the codec reads it.
fn wire_round_trip<M: Message + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let from_wire = decode_from_wire::<M>(data);
    let plain = M::from_bytes(data);
    if data.len() <= M::MAX_BYTES {
        assert_eq!(from_wire.is_ok(), plain.is_ok(), "the wire path and the plain decoder disagree");
    }
    if let Ok(value) = from_wire {
        let mut head = Vec::new();
        let tail = value.encode_head(&mut head);
        head.extend_from_slice(tail);
        assert_eq!(head, data, "{value:?} decoded from bytes it does not encode to");
        assert_eq!(plain.as_ref(), Ok(&value));
    }
}

/// A transaction.
pub fn transaction(data: &[u8]) {
    round_trip::<Transaction>(data);
}

/// A block, and the rules that need nothing but the block (which must never panic either).
pub fn block(data: &[u8]) {
    round_trip::<Block>(data);
    if let Ok(block) = Block::from_bytes(data) {
        let params = peerchain_consensus::Params::for_network(peerchain_primitives::Network::Regtest);
        let _ = peerchain_consensus::check_block(&block, &params);
    }
}

/// A block header.
pub fn header(data: &[u8]) {
    round_trip::<BlockHeader>(data);
}

/// A compact block, and matching it against a mempool of its own transactions.
pub fn compact_block(data: &[u8]) {
    round_trip::<CompactBlock>(data);
    if let Ok(compact) = CompactBlock::from_bytes(data) {
        let slots = compact.match_transactions(std::iter::empty());
        let _ = compact.assemble(slots);
    }
}

/// A sync request.
pub fn sync_request(data: &[u8]) {
    wire_round_trip::<Request>(data);
}

/// A sync response.
pub fn sync_response(data: &[u8]) {
    wire_round_trip::<Response>(data);
}

/// A block announcement from gossip.
pub fn announcement(data: &[u8]) {
    round_trip::<Announcement>(data);
}

/// A gossip message of transactions.
pub fn transaction_batch(data: &[u8]) {
    if let Ok(transactions) = decode_transaction_batch(data) {
        let mut encoded = Vec::new();
        peerchain_primitives::encode::put_list(&mut encoded, &transactions);
        assert_eq!(encoded, data);
    }
}

/// An offer gossiped or served in a book page: it decodes only within its size cap, and
/// what decodes has terms or says why not.
pub fn offer(data: &[u8]) {
    if let Ok(offer) = peerchain_market::Offer::from_wire(data) {
        assert!(data.len() <= peerchain_market::MAX_OFFER_BYTES);
        assert_eq!(offer.to_bytes(), data, "{offer:?} decoded from bytes it does not encode to");
        let _ = offer.terms();
        let _ = offer.id();
    }
}

/// A contract message gossiped (an escrow payout, a dispute notice): decodes only within
/// its size cap, as the one encoding of its value.
pub fn contract_message(data: &[u8]) {
    if let Ok(message) = peerchain_market::ContractMessage::from_wire(data) {
        assert_eq!(message.to_bytes(), data, "{message:?} decoded from bytes it does not encode to");
    }
}

/// A market-protocol request.
pub fn market_request(data: &[u8]) {
    wire_round_trip::<MarketRequest>(data);
}

/// A market-protocol response (a page of the book).
pub fn market_response(data: &[u8]) {
    wire_round_trip::<MarketResponse>(data);
}

/// A file-protocol request.
pub fn file_request(data: &[u8]) {
    wire_round_trip::<FileRequest>(data);
}

/// A file-protocol response (ranges are read in place from the buffer they arrived in).
pub fn file_response(data: &[u8]) {
    wire_round_trip::<FileResponse>(data);
}

/// A directory manifest (a blob a peer served).
pub fn manifest(data: &[u8]) {
    round_trip::<Manifest>(data);
}

/// A peer's bitmap of the pieces it holds: the first two bytes give the bitmap's length.
pub fn bitmap(data: &[u8]) {
    let Some((len, bytes)) = data.split_first_chunk::<2>() else { return };
    let len = u64::from(u16::from_le_bytes(*len));
    if let Ok(bitmap) = Bitmap::from_bytes(len, bytes) {
        assert_eq!(bitmap.to_bytes(), bytes);
        assert_eq!(bitmap.len(), len);
    }
}

/// A blob of eleven chunk groups less a little, shared in a store of its own, and the honest
/// encoding of every range of it.
struct Honest {
    _dir: tempfile::TempDir,
    id: ContentId,
    size: u64,
    encodings: Vec<((u64, u64), Vec<u8>)>,
}

fn honest() -> &'static Honest {
    static HONEST: OnceLock<Honest> = OnceLock::new();
    HONEST.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let bytes: Vec<u8> = (0..11 * GROUP_BYTES - 100).map(|i| (i * 7 % 251) as u8).collect();
        let size = bytes.len() as u64;
        let path = dir.path().join("blob");
        std::fs::write(&path, &bytes).expect("writable");
        let store = Store::open(&dir.path().join("store")).expect("a store");
        let id = store.add_path(&path, &[]).expect("added").id;
        let groups = group_count(size);
        let mut encodings = Vec::new();
        for start in 0..groups {
            for end in start + 1..=groups {
                encodings.push(((start, end), store.read_range(id, start..end).expect("served")));
            }
        }
        Honest { _dir: dir, id, size, encodings }
    })
}

/// A peer's answer to a range request: the first two bytes pick the range, the rest is the
/// answer. It must never panic, and an answer that verifies must be the honest one: a range
/// has exactly one encoding that proves it.
pub fn verify_range(data: &[u8]) {
    let Some(([start, count], answer)) = data.split_first_chunk::<2>() else { return };
    let honest = honest();
    let groups = group_count(honest.size);
    let start = u64::from(*start) % (groups + 1);
    let end = (start + u64::from(*count)).min(groups + 2);
    let verified = Store::check_range(honest.id, honest.size, start..end, answer).is_ok();
    if verified && start < end && end <= groups {
        let (_, expected) = honest.encodings.iter().find(|(range, _)| *range == (start, end)).expect("every range");
        assert_eq!(answer, &expected[..], "a range verified that is not the honest encoding");
    }
}

/// A JSON-RPC body, up to the point where a method would act.
pub fn rpc_request(data: &[u8]) {
    peerchain_rpc::fuzzing::check_request(data);
}

/// The honest encoding of chunk groups `start..end` of [`verify_range`]'s blob (for seeds).
pub fn honest_encoding(start: u64, end: u64) -> Vec<u8> {
    honest().encodings.iter().find(|(range, _)| *range == (start, end)).map(|(_, e)| e.clone()).unwrap_or_default()
}
