//! The request-response protocol peers sync with: status, headers after a locator, blocks
//! by hash, the transactions of a compact block a peer could not rebuild; and the block
//! announcements of the gossip topic. Messages use the canonical encoding; every read is
//! capped before it is decoded.

use peerchain_primitives::compact::MAX_COMPACT_TRANSACTIONS;
use peerchain_primitives::encode::{Reader, Sink, put_list, put_varint};
use peerchain_primitives::{BlockHash, BlockHeader, CompactBlock, Decode, DecodeError, Encode, Transaction, Work};

use super::codec::Message;

/// Most headers in one response.
pub const MAX_HEADERS: usize = 2_000;
/// Most blocks asked for in one request.
pub const MAX_BLOCKS_PER_REQUEST: usize = 8;
/// Most locator hashes in a request.
pub const MAX_LOCATOR: usize = 64;
/// Most transactions of a compact block asked for in one request: beyond, the whole block is
/// cheaper to fetch.
pub const MAX_BLOCK_TRANSACTIONS_REQUEST: usize = 8_000;
/// The largest request on the wire.
pub const MAX_REQUEST_BYTES: usize = 64 << 10;
/// The largest response on the wire: a full batch of maximal blocks.
pub const MAX_RESPONSE_BYTES: usize = MAX_BLOCKS_PER_REQUEST * 4_100_000;

/// Most transactions in one gossip message.
pub const MAX_GOSSIP_TRANSACTIONS: usize = 1_000;

/// The transactions of a gossip message on the transactions topic: a count-prefixed list in
/// canonical encoding (a node publishes what it accepted within a few milliseconds as one
/// message). An empty list is malformed.
pub fn decode_transaction_batch(data: &[u8]) -> Result<Vec<Transaction>, DecodeError> {
    let mut reader = Reader::new(data);
    let transactions: Vec<Transaction> = reader.list("transactions", MAX_GOSSIP_TRANSACTIONS)?;
    reader.finish()?;
    if transactions.is_empty() {
        return Err(DecodeError::Invalid { what: "transaction batch (empty)" });
    }
    Ok(transactions)
}

/// What a node tells a peer about itself when they meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Its genesis: nodes of another chain part at once.
    pub genesis: BlockHash,
    /// Its tip's height.
    pub best_height: u32,
    /// Its tip.
    pub best_hash: BlockHash,
    /// Its main chain's total work.
    pub total_work: Work,
}

/// A request to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Here is my status; what is yours?
    Status(Status),
    /// Main-chain headers after the first locator hash you know, at most `max`.
    GetHeaders {
        /// Hashes from the asker's best header back to genesis, ever sparser.
        locator: Vec<BlockHash>,
        /// How many headers at most.
        max: u32,
    },
    /// These blocks, in this order.
    GetBlocks(Vec<BlockHash>),
    /// Transactions of a block by their positions after the coinbase (slot `i` is the
    /// block's transaction `i + 1`), for a compact block the asker could not rebuild.
    GetBlockTransactions {
        /// The block.
        block: BlockHash,
        /// Slots, in increasing order.
        slots: Vec<u32>,
    },
}

/// A response from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The peer's status.
    Status(Status),
    /// Headers, in chain order.
    Headers(Vec<BlockHeader>),
    /// Encoded blocks, in the order asked; a block the peer lacks is left out.
    Blocks(Vec<Vec<u8>>),
    /// The peer refuses, saying why.
    Refused(String),
    /// The transactions asked for, in the order asked.
    Transactions(Vec<Transaction>),
}

impl Response {
    /// Roughly how many bytes the response takes on the wire beyond a few: its blocks or
    /// transactions (0 for the small answers).
    pub fn bulk_len(&self) -> usize {
        match self {
            Response::Blocks(blocks) => blocks.iter().map(Vec::len).sum(),
            Response::Transactions(transactions) => transactions.iter().map(Encode::encoded_len).sum(),
            Response::Headers(headers) => headers.len() * peerchain_primitives::block::HEADER_LEN,
            Response::Status(_) | Response::Refused(_) => 0,
        }
    }
}

/// What a node says on the blocks gossip topic about a new tip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// Just the header: peers fetch the block by request.
    Header(BlockHeader),
    /// The compact block: peers rebuild it from their mempools.
    Compact(CompactBlock),
}

impl Encode for Announcement {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        match self {
            Announcement::Header(header) => {
                sink.put(&[0]);
                header.encode_to(sink);
            }
            Announcement::Compact(compact) => {
                sink.put(&[1]);
                compact.encode_to(sink);
            }
        }
    }
}

impl Decode for Announcement {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("announcement")? {
            0 => Ok(Announcement::Header(BlockHeader::decode(reader)?)),
            1 => Ok(Announcement::Compact(CompactBlock::decode(reader)?)),
            tag => Err(DecodeError::UnknownTag { what: "announcement", tag }),
        }
    }
}

impl Encode for Status {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        self.genesis.encode_to(sink);
        self.best_height.encode_to(sink);
        self.best_hash.encode_to(sink);
        sink.put(&self.total_work.to_be_bytes());
    }
}

impl Decode for Status {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Status {
            genesis: BlockHash::decode(reader)?,
            best_height: reader.u32("best height")?,
            best_hash: BlockHash::decode(reader)?,
            total_work: Work::from_be_bytes(reader.array("total work")?),
        })
    }
}

impl Encode for Request {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        match self {
            Request::Status(status) => {
                sink.put(&[0]);
                status.encode_to(sink);
            }
            Request::GetHeaders { locator, max } => {
                sink.put(&[1]);
                put_list(sink, locator);
                max.encode_to(sink);
            }
            Request::GetBlocks(hashes) => {
                sink.put(&[2]);
                put_list(sink, hashes);
            }
            Request::GetBlockTransactions { block, slots } => {
                sink.put(&[3]);
                block.encode_to(sink);
                put_list(sink, slots);
            }
        }
    }
}

impl Decode for Request {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("request")? {
            0 => Ok(Request::Status(Status::decode(reader)?)),
            1 => Ok(Request::GetHeaders {
                locator: reader.list("locator", MAX_LOCATOR)?,
                max: reader.u32("max headers")?,
            }),
            2 => {
                let hashes: Vec<BlockHash> = reader.list("block hashes", MAX_BLOCKS_PER_REQUEST)?;
                // Security: one block asked for twice would be read and sent twice.
                if hashes.iter().enumerate().any(|(i, hash)| hashes[..i].contains(hash)) {
                    return Err(DecodeError::Invalid { what: "block request (a hash repeated)" });
                }
                Ok(Request::GetBlocks(hashes))
            }
            3 => {
                let block = BlockHash::decode(reader)?;
                let slots: Vec<u32> = reader.list("slots", MAX_BLOCK_TRANSACTIONS_REQUEST)?;
                if slots.windows(2).any(|pair| pair[0] >= pair[1]) {
                    return Err(DecodeError::Invalid { what: "transaction slots (not strictly increasing)" });
                }
                Ok(Request::GetBlockTransactions { block, slots })
            }
            tag => Err(DecodeError::UnknownTag { what: "request", tag }),
        }
    }
}

impl Encode for Response {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        match self {
            Response::Status(status) => {
                sink.put(&[0]);
                status.encode_to(sink);
            }
            Response::Headers(headers) => {
                sink.put(&[1]);
                put_list(sink, headers);
            }
            Response::Blocks(blocks) => {
                sink.put(&[2]);
                put_varint(sink, blocks.len() as u64);
                for block in blocks {
                    peerchain_primitives::encode::put_bytes(sink, block);
                }
            }
            Response::Refused(reason) => {
                sink.put(&[3]);
                peerchain_primitives::encode::put_bytes(sink, reason.as_bytes());
            }
            Response::Transactions(transactions) => {
                sink.put(&[4]);
                put_list(sink, transactions);
            }
        }
    }
}

impl Decode for Response {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("response")? {
            0 => Ok(Response::Status(Status::decode(reader)?)),
            1 => Ok(Response::Headers(reader.list("headers", MAX_HEADERS)?)),
            2 => {
                let count = reader.length("blocks", MAX_BLOCKS_PER_REQUEST)?;
                let mut blocks = Vec::with_capacity(count);
                for _ in 0..count {
                    blocks.push(reader.bytes("block", 4_100_000)?.to_vec());
                }
                Ok(Response::Blocks(blocks))
            }
            3 => {
                // One encoding per value: a reason that is not UTF-8 is refused, not repaired.
                let bytes = reader.bytes("refusal", 1_000)?;
                let reason =
                    std::str::from_utf8(bytes).map_err(|_| DecodeError::Invalid { what: "refusal (not UTF-8)" })?;
                Ok(Response::Refused(reason.to_owned()))
            }
            4 => Ok(Response::Transactions(reader.list("transactions", MAX_COMPACT_TRANSACTIONS)?)),
            tag => Err(DecodeError::UnknownTag { what: "response", tag }),
        }
    }
}
impl Message for Request {
    const MAX_BYTES: usize = MAX_REQUEST_BYTES;
}

impl Message for Response {
    const MAX_BYTES: usize = MAX_RESPONSE_BYTES;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let status = Status {
            genesis: BlockHash([1; 32]),
            best_height: 7,
            best_hash: BlockHash([2; 32]),
            total_work: Work::from_be_bytes([3; 32]),
        };
        let requests = [
            Request::Status(status),
            Request::GetHeaders { locator: vec![BlockHash([4; 32]); 3], max: 2000 },
            Request::GetBlocks(vec![BlockHash([5; 32])]),
            Request::GetBlockTransactions { block: BlockHash([6; 32]), slots: vec![0, 4, 9] },
        ];
        for request in requests {
            assert_eq!(Request::from_bytes(&request.to_bytes()), Ok(request));
        }
        let responses =
            [Response::Status(status), Response::Blocks(vec![vec![1, 2, 3]]), Response::Refused("busy".into())];
        for response in responses {
            assert_eq!(Response::from_bytes(&response.to_bytes()), Ok(response));
        }
        assert!(Request::from_bytes(&[9]).is_err());
        let mut too_many = vec![2u8];
        put_varint(&mut too_many, (MAX_BLOCKS_PER_REQUEST + 1) as u64);
        too_many.extend(std::iter::repeat_n(0u8, 32 * (MAX_BLOCKS_PER_REQUEST + 1)));
        assert!(matches!(Request::from_bytes(&too_many), Err(DecodeError::TooLong { .. })));
        let mut too_many_slots = vec![3u8];
        too_many_slots.extend_from_slice(&[6; 32]);
        put_varint(&mut too_many_slots, (MAX_BLOCK_TRANSACTIONS_REQUEST + 1) as u64);
        assert!(matches!(Request::from_bytes(&too_many_slots), Err(DecodeError::TooLong { .. })));
        let header = BlockHeader {
            version: 1,
            prev_hash: BlockHash([7; 32]),
            merkle_root: Default::default(),
            time: 9,
            bits: peerchain_primitives::CompactTarget(0x207f_ffff),
            nonce: 1,
        };
        let announcement = Announcement::Header(header);
        assert_eq!(Announcement::from_bytes(&announcement.to_bytes()), Ok(announcement));
        assert!(Announcement::from_bytes(&header.to_bytes()).is_err(), "a bare header is not an announcement");
        assert!(Announcement::from_bytes(&[2]).is_err());
    }

    #[test]
    fn a_transaction_batch_is_a_list_of_transactions_and_never_empty() {
        let transactions: Vec<Transaction> =
            (0..3).map(|n| Transaction { version: 1, inputs: vec![], outputs: vec![], lock_time: n }).collect();
        let mut batch = Vec::new();
        put_list(&mut batch, &transactions);
        assert_eq!(decode_transaction_batch(&batch), Ok(transactions));
        assert!(decode_transaction_batch(&[0]).is_err(), "empty");
        assert!(decode_transaction_batch(&[batch.clone(), vec![0]].concat()).is_err(), "trailing bytes");
        assert!(decode_transaction_batch(&batch[..batch.len() - 1]).is_err(), "cut short");
        let mut too_many = Vec::new();
        put_varint(&mut too_many, MAX_GOSSIP_TRANSACTIONS as u64 + 1);
        assert!(matches!(decode_transaction_batch(&too_many), Err(DecodeError::TooLong { .. })));
    }
}
