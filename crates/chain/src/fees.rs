//! Fee rate estimation from the mempool and recent blocks.
//!
//! The question a payer asks is "what rate gets me into one of the next `target` blocks?".
//! The mempool answers it for the transactions waiting now: the rate of the last transaction
//! that fits in `target` blocks' worth of bytes, highest rates first. Recent blocks answer it
//! for the competition that just cleared: when they were nearly full, their average rate is
//! what it took. The estimate is the higher of the two, never below the relay minimum.

use peerchain_consensus::Params;
use peerchain_primitives::{Amount, Block, Encode};

use peerchain_primitives::FeeRate;

use crate::mempool::Mempool;

/// How many recent blocks are looked at.
pub const RECENT_BLOCKS: usize = 6;

/// Bytes of a block kept for its coinbase when transactions are chosen.
pub const COINBASE_RESERVE: usize = 1_000;

/// A block whose transactions fill this much of the room for them (in percent) counts as
/// competed for.
const FULL_PERCENT: usize = 80;

/// A fee rate estimate and what it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeEstimate {
    /// Base units per byte, rounded up.
    pub units_per_byte: u64,
    /// The mempool's part of the answer, in base units per byte.
    pub mempool_units_per_byte: u64,
    /// The recent blocks' part (0 when they were not full).
    pub blocks_units_per_byte: u64,
}

fn whole_units(rate: FeeRate) -> u64 {
    rate.units_per_byte().ceil() as u64
}

/// Estimates the rate for inclusion within `target` blocks (at least 1). `recent` are the
/// last main-chain blocks with their heights.
pub(crate) fn estimate(mempool: &Mempool, recent: &[(Block, u32)], params: &Params, target: u32) -> FeeEstimate {
    let block_room = params.max_block_size.saturating_sub(COINBASE_RESERVE);
    let room = block_room.saturating_mul(target.max(1) as usize);
    let mut filled = 0usize;
    let mut mempool_rate = None;
    for (rate, size) in mempool.rates_descending() {
        filled = filled.saturating_add(size);
        if filled > room {
            // This one does not fit: one unit per byte more than it does.
            mempool_rate = Some(whole_units(rate) + 1);
            break;
        }
    }
    let mempool_units = mempool_rate.unwrap_or(0);

    let mut full_block_rates: Vec<u64> = recent
        .iter()
        .filter_map(|(block, height)| {
            let coinbase = block.transactions.first()?;
            let tx_bytes = block.encoded_len().saturating_sub(coinbase.encoded_len());
            if tx_bytes * 100 < block_room * FULL_PERCENT {
                return None;
            }
            let paid = coinbase.outputs.iter().try_fold(Amount::ZERO, |t, o| t.checked_add(o.amount))?;
            let fees = paid.checked_sub(params.subsidy(*height))?;
            Some(whole_units(FeeRate::of(fees, tx_bytes)))
        })
        .collect();
    full_block_rates.sort_unstable();
    let blocks_units = full_block_rates.get(full_block_rates.len() / 2).copied().unwrap_or(0);

    FeeEstimate {
        units_per_byte: whole_units(mempool.min_rate()).max(mempool_units).max(blocks_units),
        mempool_units_per_byte: mempool_units,
        blocks_units_per_byte: blocks_units,
    }
}
