//! What parties to a contract tell each other over gossip: a partly signed payout of an
//! escrow, for the other party to complete (a release, or an arbiter's ruling), and a
//! party's notice that it disputes an escrow.

use peerchain_primitives::encode::{Reader, Sink, put_bytes};
use peerchain_primitives::hash::hash_encoded;
use peerchain_primitives::{Decode, DecodeError, Encode, OutPoint, PublicKey, Signature, Transaction};

/// The largest contract message: a payout of a few inputs and outputs.
pub const MAX_CONTRACT_BYTES: usize = 16 << 10;

/// A contract message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractMessage {
    /// A transaction spending an escrow, signed by one party, for the other to complete.
    Payout(Transaction),
    /// A party disputes an escrow: the arbiter should rule.
    Dispute {
        /// The escrow.
        escrow: OutPoint,
        /// The party's key of the escrow.
        key: PublicKey,
        /// Its signature over [`dispute_message`].
        signature: Signature,
    },
}

/// What a dispute notice signs: the escrow, on this network.
pub fn dispute_message(escrow: &OutPoint, network_magic: u8) -> [u8; 32] {
    struct Notice<'a>(&'a OutPoint, u8);
    impl Encode for Notice<'_> {
        fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
            sink.put(b"peerchain/dispute");
            sink.put(&[self.1]);
            self.0.encode_to(sink);
        }
    }
    hash_encoded(&Notice(escrow, network_magic))
}

impl Encode for ContractMessage {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        match self {
            ContractMessage::Payout(tx) => {
                sink.put(&[0]);
                put_bytes(sink, &tx.to_bytes());
            }
            ContractMessage::Dispute { escrow, key, signature } => {
                sink.put(&[1]);
                escrow.encode_to(sink);
                key.encode_to(sink);
                signature.encode_to(sink);
            }
        }
    }
}

impl Decode for ContractMessage {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("contract message")? {
            0 => Ok(ContractMessage::Payout(Transaction::from_bytes(reader.bytes("payout", MAX_CONTRACT_BYTES)?)?)),
            1 => Ok(ContractMessage::Dispute {
                escrow: OutPoint::decode(reader)?,
                key: PublicKey::decode(reader)?,
                signature: Signature::decode(reader)?,
            }),
            tag => Err(DecodeError::UnknownTag { what: "contract message", tag }),
        }
    }
}

impl ContractMessage {
    /// Decodes a message from a peer, with its size capped first.
    pub fn from_wire(bytes: &[u8]) -> Result<ContractMessage, DecodeError> {
        if bytes.len() > MAX_CONTRACT_BYTES + 16 {
            return Err(DecodeError::Invalid { what: "contract message (too large)" });
        }
        ContractMessage::from_bytes(bytes)
    }
}
