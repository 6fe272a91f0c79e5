//! 32-byte hashes and the newtypes that say what was hashed.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::encode::{Decode, DecodeError, Encode, Reader, Sink};

/// SHA-256 applied twice, as Bitcoin hashes headers and transactions.
pub fn sha256d(bytes: &[u8]) -> [u8; 32] {
    let first = Sha256::digest(bytes);
    Sha256::digest(first).into()
}

/// Finishes a running SHA-256 and hashes the result once more.
pub fn finish_sha256d(hasher: Sha256) -> [u8; 32] {
    let first = hasher.finalize();
    Sha256::digest(first).into()
}

/// Hashes the canonical encoding of `value` with double SHA-256, without allocating.
pub fn hash_encoded<T: Encode + ?Sized>(value: &T) -> [u8; 32] {
    let mut hasher = Sha256::new();
    value.encode_to(&mut hasher);
    finish_sha256d(hasher)
}

/// Why a hex string is not a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hexadecimal characters")]
pub struct ParseHashError;

macro_rules! hash_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// All zero bytes.
            pub const ZERO: Self = Self([0u8; 32]);

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = ParseHashError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out).map_err(|_| ParseHashError)?;
                Ok(Self(out))
            }
        }

        impl Encode for $name {
            fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
                sink.put(&self.0);
            }
        }

        impl Decode for $name {
            fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self(reader.array(stringify!($name))?))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hash_newtype!(
    /// The double SHA-256 of a block header; also its proof of work.
    BlockHash
);
hash_newtype!(
    /// The id of a transaction: the hash of its encoding without witnesses, so that it stays
    /// the same however its signatures are encoded.
    TxId
);
hash_newtype!(
    /// The hash of a transaction's full encoding, witnesses included; blocks commit to these.
    WtxId
);
hash_newtype!(
    /// The root of a block's merkle tree over its transactions' wtxids.
    MerkleRoot
);
hash_newtype!(
    /// The hash of a public key, as addresses carry it.
    KeyHash
);
hash_newtype!(
    /// A SHA-256 hash that a hash-and-time lock commits to.
    LockHash
);
hash_newtype!(
    /// The id of an issued token.
    TokenId
);
hash_newtype!(
    /// The id of shared content: the BLAKE3 root of its bytes (as bao-tree computes it with
    /// 16 KiB chunk groups, which gives the same root as plain BLAKE3).
    ContentId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256d_of_empty_input_matches_the_known_vector() {
        assert_eq!(hex::encode(sha256d(b"")), "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456");
    }

    #[test]
    fn hashes_parse_their_own_display() {
        let hash = BlockHash(sha256d(b"peerchain"));
        assert_eq!(hash.to_string().parse::<BlockHash>(), Ok(hash));
        assert!("zz".parse::<BlockHash>().is_err());
        assert!("00".repeat(31).parse::<BlockHash>().is_err());
    }
}
