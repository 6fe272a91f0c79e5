//! The file protocol: what a peer holds of a content id, verified ranges of it, and the
//! flooded keyword query (Gnutella style: forwarded with a hop limit, each node answering
//! once per query id, hits routed back along the path the query came).

use bytes::Bytes;
use libp2p::{Multiaddr, PeerId};
use peerchain_primitives::encode::{Reader, Sink, put_bytes, put_varint};
use peerchain_primitives::{ContentId, Decode, DecodeError, Encode, PublicKey};

use super::codec::{Message, ReadBuffer};

/// Most chunk groups in one range request.
pub const MAX_RANGE_GROUPS: u32 = 256;
/// The largest range answer: 256 groups of 16 KiB plus their hash pairs.
pub const MAX_RANGE_BYTES: usize = 4_300_000;
/// Most words in a query.
pub const MAX_QUERY_WORDS: usize = 8;
/// Most hops a flooded query travels.
pub const MAX_HOPS: u8 = 4;
/// Most hits in one answer.
pub const MAX_HITS: usize = 100;
/// Most providers listed per hit.
pub const MAX_PROVIDERS_PER_HIT: usize = 8;
/// Most addresses per provider.
pub const MAX_ADDRESSES: usize = 8;
/// Bytes in the piece bitmap of a 1 TiB blob (1 MiB pieces).
const MAX_BITMAP_BYTES: usize = 1 << 17;
/// The largest payment a buyer sends: a payout of one escrow to two outputs.
pub const MAX_PAYOUT_BYTES: usize = 2048;

/// A request of the file protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRequest {
    /// What do you hold of this content?
    Info(ContentId),
    /// Chunk groups `start..start + count`, encoded with their proofs.
    Range {
        /// The content.
        id: ContentId,
        /// The first chunk group.
        start: u64,
        /// How many groups.
        count: u32,
    },
    /// Files matching every word, from you and from peers up to `hops` further away.
    Search {
        /// The query's id: a node answers each id once.
        query_id: u64,
        /// Normalised keywords.
        words: Vec<String>,
        /// How many more times the query may be forwarded.
        hops: u8,
    },
    /// A payment for content on sale: a payout of the buyer's payment channel (an escrow of
    /// buyer and seller), signed by the buyer, paying the seller for what arrived so far.
    Pay {
        /// The content.
        id: ContentId,
        /// The encoded payout transaction.
        payout: Vec<u8>,
    },
}

/// What a seller asks for content: the price of all of it, paid as it arrives into the
/// seller's key of the payment channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    /// Base units of the coin for the whole content.
    pub units: u64,
    /// The seller's key in the payment channel.
    pub seller: PublicKey,
}

/// A peer that holds a file, and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Its id.
    pub peer: PeerId,
    /// Its addresses.
    pub addresses: Vec<Multiaddr>,
}

/// A file found by a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The content.
    pub id: ContentId,
    /// Its name.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// Whether it is a directory manifest.
    pub directory: bool,
    /// Who holds it.
    pub providers: Vec<Provider>,
}

/// An answer of the file protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileResponse {
    /// What the peer holds of a content id.
    Info {
        /// The content's size.
        size: u64,
        /// Its name at the peer.
        name: String,
        /// Whether it is a directory manifest.
        directory: bool,
        /// The pieces held (bit per 1 MiB piece), `None` when the peer holds all of it.
        pieces: Option<Vec<u8>>,
        /// The price, if the peer sells it rather than sharing it.
        price: Option<Price>,
    },
    /// The encoded range (shared: it is read and written without copies).
    Range(Bytes),
    /// Search hits.
    Hits(Vec<Hit>),
    /// The peer refuses, saying why (unknown content, range out of bounds, busy).
    Refused(String),
    /// A payment was taken: what the channel has paid in all, in base units.
    Paid(u64),
}

impl Message for FileRequest {
    const MAX_BYTES: usize = 4096;
}

impl Message for FileResponse {
    const MAX_BYTES: usize = MAX_RANGE_BYTES + 64;
    // A 1 MiB piece with its hash pairs and framing.
    const TYPICAL_BYTES: usize = (1 << 20) + (16 << 10);

    fn from_buffer(buffer: ReadBuffer) -> Result<Self, DecodeError> {
        if buffer.first() != Some(&RANGE_TAG) {
            return Self::from_bytes(&buffer);
        }
        let mut reader = Reader::new(&buffer[1..]);
        let len = reader.bytes("range", MAX_RANGE_BYTES)?.len();
        reader.finish()?;
        let start = buffer.len() - len;
        Ok(FileResponse::Range(Bytes::from_owner(buffer).slice(start..)))
    }

    fn encode_head(&self, head: &mut Vec<u8>) -> &[u8] {
        match self {
            FileResponse::Range(bytes) => {
                head.push(RANGE_TAG);
                put_varint(head, bytes.len() as u64);
                bytes
            }
            other => {
                other.encode_to(head);
                &[]
            }
        }
    }
}

/// The tag of [`FileResponse::Range`] on the wire.
const RANGE_TAG: u8 = 1;

fn text(reader: &mut Reader<'_>, what: &'static str, max: usize) -> Result<String, DecodeError> {
    let bytes = reader.bytes(what, max)?;
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| DecodeError::Invalid { what })
}

impl Encode for FileRequest {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        match self {
            FileRequest::Info(id) => {
                sink.put(&[0]);
                id.encode_to(sink);
            }
            FileRequest::Range { id, start, count } => {
                sink.put(&[1]);
                id.encode_to(sink);
                start.encode_to(sink);
                count.encode_to(sink);
            }
            FileRequest::Search { query_id, words, hops } => {
                sink.put(&[2]);
                query_id.encode_to(sink);
                put_varint(sink, words.len() as u64);
                for word in words {
                    put_bytes(sink, word.as_bytes());
                }
                sink.put(&[*hops]);
            }
            FileRequest::Pay { id, payout } => {
                sink.put(&[3]);
                id.encode_to(sink);
                put_bytes(sink, payout);
            }
        }
    }
}

impl Decode for FileRequest {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("file request")? {
            0 => Ok(FileRequest::Info(ContentId::decode(reader)?)),
            1 => {
                let id = ContentId::decode(reader)?;
                let start = reader.u64("range start")?;
                let count = reader.u32("range length")?;
                if count == 0 || count > MAX_RANGE_GROUPS {
                    return Err(DecodeError::Invalid { what: "range length" });
                }
                Ok(FileRequest::Range { id, start, count })
            }
            2 => {
                let query_id = reader.u64("query id")?;
                let count = reader.length("query words", MAX_QUERY_WORDS)?;
                let words = (0..count).map(|_| text(reader, "query word", 64)).collect::<Result<_, _>>()?;
                let hops = reader.u8("hops")?;
                if hops > MAX_HOPS {
                    return Err(DecodeError::Invalid { what: "hops" });
                }
                Ok(FileRequest::Search { query_id, words, hops })
            }
            3 => {
                let id = ContentId::decode(reader)?;
                let payout = reader.bytes("payout", MAX_PAYOUT_BYTES)?.to_vec();
                Ok(FileRequest::Pay { id, payout })
            }
            tag => Err(DecodeError::UnknownTag { what: "file request", tag }),
        }
    }
}

impl Encode for FileResponse {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        match self {
            FileResponse::Info { size, name, directory, pieces, price } => {
                sink.put(&[0]);
                size.encode_to(sink);
                put_bytes(sink, name.as_bytes());
                sink.put(&[u8::from(*directory)]);
                match pieces {
                    None => sink.put(&[0]),
                    Some(bits) => {
                        sink.put(&[1]);
                        put_bytes(sink, bits);
                    }
                }
                match price {
                    None => sink.put(&[0]),
                    Some(price) => {
                        sink.put(&[1]);
                        price.units.encode_to(sink);
                        price.seller.encode_to(sink);
                    }
                }
            }
            FileResponse::Range(bytes) => {
                sink.put(&[RANGE_TAG]);
                put_bytes(sink, bytes);
            }
            FileResponse::Hits(hits) => {
                sink.put(&[2]);
                put_varint(sink, hits.len() as u64);
                for hit in hits {
                    hit.id.encode_to(sink);
                    put_bytes(sink, hit.name.as_bytes());
                    hit.size.encode_to(sink);
                    sink.put(&[u8::from(hit.directory)]);
                    put_varint(sink, hit.providers.len() as u64);
                    for provider in &hit.providers {
                        put_bytes(sink, &provider.peer.to_bytes());
                        put_varint(sink, provider.addresses.len() as u64);
                        for address in &provider.addresses {
                            put_bytes(sink, &address.to_vec());
                        }
                    }
                }
            }
            FileResponse::Refused(reason) => {
                sink.put(&[3]);
                put_bytes(sink, reason.as_bytes());
            }
            FileResponse::Paid(units) => {
                sink.put(&[4]);
                units.encode_to(sink);
            }
        }
    }
}

fn flag(reader: &mut Reader<'_>, what: &'static str) -> Result<bool, DecodeError> {
    match reader.u8(what)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Invalid { what }),
    }
}

impl Decode for FileResponse {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("file response")? {
            0 => {
                let size = reader.u64("size")?;
                let name = text(reader, "name", 1024)?;
                let directory = flag(reader, "directory flag")?;
                let pieces = if flag(reader, "pieces flag")? {
                    Some(reader.bytes("pieces", MAX_BITMAP_BYTES)?.to_vec())
                } else {
                    None
                };
                let price = if flag(reader, "price flag")? {
                    let units = reader.u64("price")?;
                    if units == 0 {
                        return Err(DecodeError::Invalid { what: "price" });
                    }
                    Some(Price { units, seller: PublicKey::decode(reader)? })
                } else {
                    None
                };
                Ok(FileResponse::Info { size, name, directory, pieces, price })
            }
            RANGE_TAG => Ok(FileResponse::Range(Bytes::copy_from_slice(reader.bytes("range", MAX_RANGE_BYTES)?))),
            2 => {
                let count = reader.length("hits", MAX_HITS)?;
                let mut hits = Vec::with_capacity(count);
                for _ in 0..count {
                    let id = ContentId::decode(reader)?;
                    let name = text(reader, "name", 1024)?;
                    let size = reader.u64("size")?;
                    let directory = flag(reader, "directory flag")?;
                    let provider_count = reader.length("providers", MAX_PROVIDERS_PER_HIT)?;
                    let mut providers = Vec::with_capacity(provider_count);
                    for _ in 0..provider_count {
                        let peer = PeerId::from_bytes(reader.bytes("peer id", 64)?)
                            .map_err(|_| DecodeError::Invalid { what: "peer id" })?;
                        let address_count = reader.length("addresses", MAX_ADDRESSES)?;
                        let addresses = (0..address_count)
                            .map(|_| {
                                Multiaddr::try_from(reader.bytes("address", 256)?.to_vec())
                                    .map_err(|_| DecodeError::Invalid { what: "address" })
                            })
                            .collect::<Result<_, _>>()?;
                        providers.push(Provider { peer, addresses });
                    }
                    hits.push(Hit { id, name, size, directory, providers });
                }
                Ok(FileResponse::Hits(hits))
            }
            3 => Ok(FileResponse::Refused(text(reader, "refusal", 1000)?)),
            4 => Ok(FileResponse::Paid(reader.u64("paid")?)),
            tag => Err(DecodeError::UnknownTag { what: "file response", tag }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A peer's bytes never panic the decoders, and whatever decodes re-encodes to the
        /// same bytes (one encoding per message).
        #[test]
        fn arbitrary_bytes_never_panic_and_decoded_messages_are_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(request) = FileRequest::from_bytes(&bytes) {
                prop_assert_eq!(request.to_bytes(), bytes.clone());
            }
            if let Ok(response) = FileResponse::from_bytes(&bytes) {
                prop_assert_eq!(response.to_bytes(), bytes);
            }
        }
    }

    #[test]
    fn file_messages_round_trip_and_bad_ones_are_refused() {
        let requests = [
            FileRequest::Info(ContentId([1; 32])),
            FileRequest::Range { id: ContentId([2; 32]), start: 64, count: 64 },
            FileRequest::Search { query_id: 9, words: vec!["holiday".into(), "2026".into()], hops: 3 },
            FileRequest::Pay { id: ContentId([4; 32]), payout: vec![5; 300] },
        ];
        for request in requests {
            assert_eq!(FileRequest::from_bytes(&request.to_bytes()), Ok(request));
        }
        let provider = Provider { peer: PeerId::random(), addresses: vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()] };
        let responses = [
            FileResponse::Info { size: 5, name: "a.txt".into(), directory: false, pieces: Some(vec![1]), price: None },
            FileResponse::Info {
                size: 5,
                name: "b.txt".into(),
                directory: false,
                pieces: None,
                price: Some(Price { units: 1_000, seller: PublicKey([9; 32]) }),
            },
            FileResponse::Paid(700),
            FileResponse::Range(Bytes::from(vec![7; 100])),
            FileResponse::Hits(vec![Hit {
                id: ContentId([3; 32]),
                name: "b".into(),
                size: 1,
                directory: true,
                providers: vec![provider],
            }]),
            FileResponse::Refused("unknown content".into()),
        ];
        for response in responses {
            assert_eq!(FileResponse::from_bytes(&response.to_bytes()), Ok(response));
        }
        let free = FileResponse::Info { size: 5, name: "c".into(), directory: false, pieces: None, price: None };
        let mut zero_price = free.to_bytes();
        *zero_price.last_mut().unwrap() = 1;
        zero_price.extend([0; 8 + 32]);
        assert!(FileResponse::from_bytes(&zero_price).is_err(), "a price of nothing is no price");
        let too_long = FileRequest::Range { id: ContentId([2; 32]), start: 0, count: MAX_RANGE_GROUPS + 1 };
        assert!(FileRequest::from_bytes(&too_long.to_bytes()).is_err());
        let too_far = FileRequest::Search { query_id: 1, words: vec!["x".into()], hops: MAX_HOPS + 1 };
        assert!(FileRequest::from_bytes(&too_far.to_bytes()).is_err());
        assert!(FileResponse::from_bytes(&[2, 1, 0]).is_err());
        assert!(FileResponse::from_bytes(&[3, 1, 0xff]).is_err(), "a refusal must be text");
    }

    fn read_stream(wire: &[u8]) -> std::io::Result<FileResponse> {
        futures::executor::block_on(super::super::codec::read_message(&mut futures::io::Cursor::new(wire)))
    }

    fn write_stream(response: &FileResponse) -> Vec<u8> {
        let mut wire = futures::io::Cursor::new(Vec::new());
        futures::executor::block_on(super::super::codec::write_message(&mut wire, response.clone())).unwrap();
        wire.into_inner()
    }

    #[test]
    fn ranges_cross_a_stream_through_pooled_buffers_exactly_as_encoded() {
        // Large ranges use pooled buffers: the second and third reuse the first's, whose
        // stale bytes must not leak into a shorter message.
        let responses = [
            FileResponse::Range(Bytes::from(vec![7; 300_000])),
            FileResponse::Range(Bytes::from(vec![9; 100_000])),
            FileResponse::Range(Bytes::from(vec![5; 1_100_000])),
            FileResponse::Range(Bytes::new()),
            FileResponse::Refused("busy".into()),
        ];
        for response in responses {
            let wire = write_stream(&response);
            assert_eq!(wire, response.to_bytes(), "head and tail are the canonical encoding");
            assert_eq!(read_stream(&wire).unwrap(), response);
        }
        // A range whose length prefix disagrees with what follows is refused.
        let mut wire = FileResponse::Range(Bytes::from(vec![1; 70_000])).to_bytes();
        wire.pop();
        assert_eq!(read_stream(&wire).unwrap_err().kind(), std::io::ErrorKind::InvalidData);
    }
}
