//! Targets and work: the 256-bit numbers of proof of work.

use std::fmt;

use primitive_types::U256;

use crate::hash::BlockHash;

/// A target in Bitcoin's compact form (`nBits`): a one-byte exponent and a 23-bit mantissa.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CompactTarget(pub u32);

impl CompactTarget {
    /// The full target, or `None` if the compact form is negative, zero or overflows.
    pub fn expand(self) -> Option<Target> {
        let exponent = self.0 >> 24;
        let mantissa = self.0 & 0x007f_ffff;
        if self.0 & 0x0080_0000 != 0 || mantissa == 0 {
            return None;
        }
        let value = if exponent <= 3 {
            U256::from(mantissa >> (8 * (3 - exponent)))
        } else {
            let shift = 8 * (exponent - 3);
            // Correctness: a mantissa shifted past 256 bits would silently lose its top.
            if shift + (32 - mantissa.leading_zeros()) > 256 {
                return None;
            }
            U256::from(mantissa) << shift
        };
        (!value.is_zero()).then_some(Target(value))
    }
}

/// A full 256-bit target: a block hash, read as a big-endian number, must not exceed it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Target(pub U256);

impl Target {
    /// Whether `hash` meets this target.
    pub fn is_met_by(&self, hash: &BlockHash) -> bool {
        U256::from_big_endian(&hash.0) <= self.0
    }

    /// The compact form, rounding the mantissa down (so the compact target is never easier).
    pub fn to_compact(&self) -> CompactTarget {
        let bits = 256 - self.0.leading_zeros();
        let mut exponent = bits.div_ceil(8);
        let mut mantissa = if exponent <= 3 {
            self.0.low_u32() << (8 * (3 - exponent))
        } else {
            (self.0 >> (8 * (exponent - 3))).low_u32()
        };
        // The sign bit must stay clear: move one byte into the exponent instead.
        if mantissa & 0x0080_0000 != 0 {
            mantissa >>= 8;
            exponent += 1;
        }
        CompactTarget((exponent << 24) | mantissa)
    }

    /// The expected number of hashes to meet it: 2²⁵⁶ / (target + 1).
    pub fn work(&self) -> Work {
        if self.0 == U256::MAX {
            return Work(U256::one());
        }
        // 2^256 / (t + 1) == (~t / (t + 1)) + 1, computed without a 257-bit number.
        Work((!self.0) / (self.0 + U256::one()) + U256::one())
    }
}

/// Cumulative expected hashes: the measure by which the heaviest chain wins.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Work(pub U256);

impl Work {
    /// No work.
    pub const ZERO: Work = Work(U256::zero());

    /// `self + other`, saturating (2²⁵⁶ hashes will not be done).
    pub fn saturating_add(self, other: Work) -> Work {
        Work(self.0.saturating_add(other.0))
    }

    /// Big-endian bytes, for storage.
    pub fn to_be_bytes(self) -> [u8; 32] {
        self.0.to_big_endian()
    }

    /// From big-endian bytes.
    pub fn from_be_bytes(bytes: [u8; 32]) -> Self {
        Work(U256::from_big_endian(&bytes))
    }
}

impl fmt::Display for Work {
    /// As a hex number with no leading zeros, like Bitcoin Core's `chainwork`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Work(0x{:x})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitcoin_genesis_bits_expand_and_compress() {
        let target = CompactTarget(0x1d00ffff).expand().unwrap();
        assert_eq!(target.0, U256::from(0xffffu64) << 208);
        assert_eq!(target.to_compact(), CompactTarget(0x1d00ffff));
        // Bitcoin's genesis block has work 0x100010001.
        assert_eq!(target.work().0, U256::from(0x1_0001_0001u64));
    }

    #[test]
    fn invalid_compact_forms_are_refused() {
        assert_eq!(CompactTarget(0x0480_0000 | 1).expand(), None, "negative");
        assert_eq!(CompactTarget(0x2000_0000).expand(), None, "zero mantissa");
        assert_eq!(CompactTarget(0x2300_0001).expand(), None, "overflow");
        assert!(CompactTarget(0x207f_ffff).expand().is_some());
    }

    #[test]
    fn compact_round_trip_never_makes_the_target_easier() {
        for shift in 0..250 {
            let target = Target((U256::from(0x1234_5678u64) << shift) | U256::from(shift));
            let back = target.to_compact().expand().unwrap();
            assert!(back <= target, "shift {shift}");
            assert_eq!(back.to_compact(), target.to_compact());
        }
    }

    #[test]
    fn easier_targets_need_less_work() {
        let hard = CompactTarget(0x1d00ffff).expand().unwrap();
        let easy = CompactTarget(0x207fffff).expand().unwrap();
        assert!(easy.work() < hard.work());
        assert_eq!(Target(U256::MAX).work(), Work(U256::one()));
    }
}
