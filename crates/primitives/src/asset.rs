//! Which asset an output holds: the coin, a token, or a token's right to mint more.

use sha2::{Digest, Sha256};

use crate::encode::{Decode, DecodeError, Encode, Reader, Sink};
use crate::hash::{TokenId, finish_sha256d};
use crate::transaction::OutPoint;

/// Which asset an output holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Default)]
pub enum AssetId {
    /// The chain's own coin, which pays fees and block rewards.
    #[default]
    Coin,
    /// A token issued on the chain.
    Token(TokenId),
    /// The right to create more of a token: a transaction spending some may pay out more of
    /// the token than it spends. Conserved like a token; issued beside it, or never.
    MintRight(TokenId),
}

impl std::fmt::Display for AssetId {
    /// `coin`, a token's id in hex, or `mint:` and the id for its mint right.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AssetId::Coin => f.write_str("coin"),
            AssetId::Token(id) => write!(f, "{id}"),
            AssetId::MintRight(id) => write!(f, "mint:{id}"),
        }
    }
}

/// Why text is not an asset id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an asset is `coin`, a token id (64 hexadecimal characters) or `mint:` and a token id")]
pub struct ParseAssetError;

impl std::str::FromStr for AssetId {
    type Err = ParseAssetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("coin") {
            return Ok(AssetId::Coin);
        }
        match text.strip_prefix("mint:") {
            Some(id) => id.parse().map(AssetId::MintRight),
            None => text.parse().map(AssetId::Token),
        }
        .map_err(|_| ParseAssetError)
    }
}

impl AssetId {
    /// The token this asset is or mints, if any.
    pub fn token(&self) -> Option<TokenId> {
        match self {
            AssetId::Coin => None,
            AssetId::Token(id) | AssetId::MintRight(id) => Some(*id),
        }
    }
}

impl TokenId {
    /// The id of the token that a transaction whose first input spends `first_input` may
    /// issue. Outpoints are spent once, so every issuance gets its own id.
    pub fn issued_by(first_input: &OutPoint) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"peerchain/token");
        first_input.encode_to(&mut hasher);
        TokenId(finish_sha256d(hasher))
    }
}

impl Encode for AssetId {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        match self {
            AssetId::Coin => sink.put(&[0]),
            AssetId::Token(id) => {
                sink.put(&[1]);
                id.encode_to(sink);
            }
            AssetId::MintRight(id) => {
                sink.put(&[2]);
                id.encode_to(sink);
            }
        }
    }
}

impl Decode for AssetId {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("asset id")? {
            0 => Ok(AssetId::Coin),
            1 => Ok(AssetId::Token(TokenId::decode(reader)?)),
            2 => Ok(AssetId::MintRight(TokenId::decode(reader)?)),
            tag => Err(DecodeError::UnknownTag { what: "asset id", tag }),
        }
    }
}
