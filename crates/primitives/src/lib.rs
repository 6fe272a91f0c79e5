//! The values peerchain is made of: hashes, amounts, keys, addresses, transactions and blocks,
//! and the one canonical binary encoding they travel and are stored in.
//!
//! This crate owns what things *are*. It must never know about rules (what makes a block
//! valid lives in `consensus`), storage, async runtimes or the network.

pub mod address;
pub mod amount;
mod asset;
pub mod block;
pub mod compact;
pub mod encode;
pub mod fee_rate;
pub mod hash;
pub mod keys;
pub mod network;
pub mod pow;
pub mod token;
pub mod transaction;

#[cfg(any(test, feature = "arbitrary"))]
pub mod arbitrary;

pub use address::{Address, AddressError, lock_address, parse_lock_address};
pub use amount::{Amount, ParseAmountError, UNITS_PER_COIN};
pub use block::{Block, BlockHeader, merkle_root};
pub use compact::{CompactBlock, ShortId};
pub use encode::{Decode, DecodeError, Encode};
pub use fee_rate::FeeRate;
pub use hash::{BlockHash, ContentId, KeyHash, LockHash, MerkleRoot, TokenId, TxId, WtxId};
pub use keys::{PublicKey, SecretKey, Signature};
pub use network::Network;
pub use pow::{CompactTarget, Target, Work};
pub use token::TokenMetadata;
pub use transaction::{
    After, AssetId, Coin, Lock, OutPoint, SigHashMode, Transaction, TxIn, TxOut, TxSignature, Witness,
};
