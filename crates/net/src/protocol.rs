//! What peers say to each other: the sync protocol's messages and the block announcements of
//! gossip (`sync.rs`), the file protocol's (`files.rs`), the market's (`market.rs`), and the codec both use (`codec.rs`).
//! Messages use the canonical encoding; every read is capped before it is decoded.

mod codec;
pub mod files;
pub mod market;
mod sync;

pub use codec::{Codec, Message, POOL_MAX_BYTES, ReadBuffer, decode_from_wire, pooled_bytes};
pub use sync::*;
