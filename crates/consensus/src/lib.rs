//! The rules of peerchain: proof of work, difficulty, network parameters, and every check a
//! header, transaction or block must pass.
//!
//! Everything here is a pure function of its inputs and a [`UtxoView`]; this crate must never
//! know about storage, the network, async runtimes or the clock (callers pass `now`). A rule
//! broken is a [`BlockReject`] or [`TxReject`] value, never a panic.

pub mod difficulty;
pub mod params;
pub mod reject;
pub mod signatures;
pub mod validation;

pub use difficulty::{RetargetInput, next_target};
pub use params::{MEDIAN_TIME_SPAN, Params};
pub use reject::{BlockReject, TxReject, ValidationError, ViewError};
pub use signatures::{BATCH_SIZE, PipelinedVerifier, SigBatch, SigCache, SigFailure, SigOrigin, SigSink};
pub use validation::{
    BlockEffects, CURRENT_VERSION, HeaderContext, PendingBlock, UtxoView, check_block, check_header, check_spends,
    check_transaction, coinbase_transaction, connect_block, connect_checked_block, median_time, sig_failure_reason,
};
