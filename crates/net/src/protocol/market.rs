//! The market protocol: a peer's order book, page by page, so that a node that joins late
//! holds the whole book within seconds. Offers themselves travel as opaque bytes: this crate
//! never decides what a valid offer is.

use peerchain_primitives::encode::{Reader, Sink, put_bytes, put_varint};
use peerchain_primitives::{Decode, DecodeError, Encode};

use super::codec::Message;

/// The largest encoded offer carried.
pub const MAX_OFFER_BYTES: usize = 512;
/// Most bytes of offers in one page.
pub const MAX_PAGE_BYTES: usize = 1 << 20;
/// Most offers in one page.
pub const MAX_PAGE_OFFERS: usize = MAX_PAGE_BYTES / 64;

/// A request of the market protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketRequest {
    /// The offers of your book after this offer id (from the start if none), in id order.
    BookPage {
        /// The last offer id of the previous page.
        after: Option<[u8; 32]>,
    },
}

/// An answer of the market protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketResponse {
    /// A page of encoded offers.
    Page {
        /// The offers.
        offers: Vec<Vec<u8>>,
        /// Whether more follow.
        more: bool,
    },
    /// Not served, and why.
    Refused(String),
}

impl Encode for MarketRequest {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        match self {
            MarketRequest::BookPage { after: None } => sink.put(&[0, 0]),
            MarketRequest::BookPage { after: Some(id) } => {
                sink.put(&[0, 1]);
                sink.put(id);
            }
        }
    }
}

impl Decode for MarketRequest {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("market request")? {
            0 => match reader.u8("page start")? {
                0 => Ok(MarketRequest::BookPage { after: None }),
                1 => Ok(MarketRequest::BookPage { after: Some(reader.array("offer id")?) }),
                tag => Err(DecodeError::UnknownTag { what: "page start", tag }),
            },
            tag => Err(DecodeError::UnknownTag { what: "market request", tag }),
        }
    }
}

impl Encode for MarketResponse {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        match self {
            MarketResponse::Page { offers, more } => {
                sink.put(&[0, u8::from(*more)]);
                put_varint(sink, offers.len() as u64);
                for offer in offers {
                    put_bytes(sink, offer);
                }
            }
            MarketResponse::Refused(reason) => {
                sink.put(&[1]);
                put_bytes(sink, reason.as_bytes());
            }
        }
    }
}

impl Decode for MarketResponse {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("market response")? {
            0 => {
                let more = match reader.u8("more")? {
                    0 => false,
                    1 => true,
                    tag => return Err(DecodeError::UnknownTag { what: "more", tag }),
                };
                let count = reader.length("offers", MAX_PAGE_OFFERS)?;
                let mut offers = Vec::with_capacity(count);
                for _ in 0..count {
                    offers.push(reader.bytes("offer", MAX_OFFER_BYTES)?.to_vec());
                }
                Ok(MarketResponse::Page { offers, more })
            }
            1 => {
                let reason = std::str::from_utf8(reader.bytes("refusal", 256)?)
                    .map_err(|_| DecodeError::Invalid { what: "refusal (not UTF-8)" })?;
                Ok(MarketResponse::Refused(reason.to_owned()))
            }
            tag => Err(DecodeError::UnknownTag { what: "market response", tag }),
        }
    }
}

impl Message for MarketRequest {
    const MAX_BYTES: usize = 64;
}

impl Message for MarketResponse {
    // The offers, their length prefixes and the framing.
    const MAX_BYTES: usize = MAX_PAGE_BYTES + MAX_PAGE_OFFERS * 2 + 16;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_oversized_offers_are_refused() {
        for request in [MarketRequest::BookPage { after: None }, MarketRequest::BookPage { after: Some([7; 32]) }] {
            assert_eq!(MarketRequest::from_bytes(&request.to_bytes()).unwrap(), request);
        }
        let page = MarketResponse::Page { offers: vec![vec![1; 200], vec![2; 10]], more: true };
        assert_eq!(MarketResponse::from_bytes(&page.to_bytes()).unwrap(), page);
        let refused = MarketResponse::Refused("busy".into());
        assert_eq!(MarketResponse::from_bytes(&refused.to_bytes()).unwrap(), refused);
        let big = MarketResponse::Page { offers: vec![vec![0; MAX_OFFER_BYTES + 1]], more: false };
        assert!(MarketResponse::from_bytes(&big.to_bytes()).is_err());
        assert!(MarketRequest::from_bytes(&[0, 2]).is_err());
    }
}
