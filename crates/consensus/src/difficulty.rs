//! Difficulty: ASERT (absolutely scheduled exponentially rising targets), retargeting every
//! block so that a small network with few miners keeps a steady pace.
//!
//! The target of a block is the anchor's target scaled by 2^((actual − scheduled time) /
//! half-life), computed in fixed point exactly as Bitcoin Cash's aserti3-2d. The anchor is the
//! branch's block at height 1, so a devnet started today does not measure itself against a
//! genesis time from months ago.

use peerchain_primitives::{CompactTarget, Target};
use primitive_types::{U256, U512};

use crate::params::Params;

/// What the target of the next block depends on.
#[derive(Debug, Clone, Copy)]
pub struct RetargetInput {
    /// The parent's height.
    pub parent_height: u32,
    /// The parent's time.
    pub parent_time: u64,
    /// The time of the branch's block at height 1, once the branch has one.
    pub anchor_time: Option<u64>,
}

/// The target the block after `input`'s parent must meet.
pub fn next_target(params: &Params, input: RetargetInput) -> CompactTarget {
    let limit = params.pow_limit.expand().expect("every network's pow limit is a valid target");
    // Blocks 1 and 2 are mined at the limit: block 1 is the anchor, and block 2 is the first
    // whose parent has a known anchor time.
    let Some(anchor_time) = input.anchor_time else { return params.pow_limit };
    if !params.retarget || input.parent_height < 1 {
        return params.pow_limit;
    }
    let time_delta = input.parent_time as i128 - anchor_time as i128;
    let height_delta = i128::from(input.parent_height - 1);
    // How far ahead (negative) or behind (positive) of schedule the branch is, in units of
    // 1/65536 half-lives.
    let exponent =
        ((time_delta - params.target_spacing as i128 * height_delta) * 65536) / params.asert_half_life as i128;
    let shifts = exponent >> 16;
    let frac = (exponent & 0xffff) as u64;
    // 2^frac ≈ 1 + 0.695502049·x + 0.2262698·x² + 0.0782318·x³ in 16-bit fixed point.
    let factor = 65536u64
        + ((195_766_423_245_049u128 * u128::from(frac)
            + 971_821_376u128 * u128::from(frac).pow(2)
            + 5_127u128 * u128::from(frac).pow(3)
            + (1u128 << 47))
            >> 48) as u64;
    let mut next = U512::from(limit.0) * U512::from(factor);
    if shifts < 0 {
        let right = (-shifts) as u32;
        next = if right >= 512 { U512::zero() } else { next >> right };
    } else {
        let left = shifts as u32;
        // Anything shifted this far is past the limit anyway.
        if left >= 256 {
            return params.pow_limit;
        }
        next <<= left;
    }
    next >>= 16;
    if next.is_zero() {
        return Target(U256::one()).to_compact();
    }
    match U256::try_from(next) {
        Ok(value) if value <= limit.0 => Target(value).to_compact(),
        _ => params.pow_limit,
    }
}

#[cfg(test)]
mod tests {
    use peerchain_primitives::Network;

    use super::*;

    fn target_after(params: &Params, blocks: u32, seconds_per_block: u64) -> U256 {
        let anchor = 1_800_000_000;
        let input = RetargetInput {
            parent_height: blocks,
            parent_time: anchor + u64::from(blocks - 1) * seconds_per_block,
            anchor_time: Some(anchor),
        };
        next_target(params, input).expand().unwrap().0
    }

    #[test]
    fn on_schedule_the_target_stays_and_off_schedule_it_moves() {
        let params = Params::for_network(Network::Testnet);
        let limit = params.pow_limit.expand().unwrap().0;
        // Exactly on schedule: the anchor's target, give or take compact rounding.
        let steady = target_after(&params, 1000, params.target_spacing);
        assert!(steady <= limit && steady > limit - (limit >> 10));
        // Twice as fast: harder.
        assert!(target_after(&params, 1000, params.target_spacing / 2) < steady);
        // One half-life ahead of schedule halves the target.
        let blocks_per_half_life = (params.asert_half_life / params.target_spacing) as u32;
        let ahead = target_after(&params, 2 * blocks_per_half_life, params.target_spacing / 2);
        let ratio = limit / ahead;
        assert!(ratio == U256::from(2) || ratio == U256::from(1), "ratio {ratio}");
        // Slower than schedule never goes past the limit.
        assert_eq!(target_after(&params, 1000, params.target_spacing * 10), limit);
    }

    #[test]
    fn devnet_reaches_hard_targets_without_overflow() {
        let params = Params::for_network(Network::Devnet);
        // A million blocks in no time at all: very hard, yet a valid target.
        let hard = target_after(&params, 1_000_000, 0);
        assert!(hard >= U256::one());
        assert!(hard < params.pow_limit.expand().unwrap().0 >> 200);
    }

    #[test]
    fn regtest_never_retargets_and_early_blocks_use_the_limit() {
        let regtest = Params::for_network(Network::Regtest);
        assert_eq!(
            next_target(&regtest, RetargetInput { parent_height: 500, parent_time: 0, anchor_time: Some(0) }),
            regtest.pow_limit
        );
        let devnet = Params::for_network(Network::Devnet);
        assert_eq!(
            next_target(&devnet, RetargetInput { parent_height: 0, parent_time: 5, anchor_time: None }),
            devnet.pow_limit
        );
    }
}
