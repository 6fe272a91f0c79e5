//! Fee rates: base units per byte of a transaction's encoding, kept in thousandths so that
//! low rates keep their precision.

use crate::Amount;

/// Fee per byte, in thousandths of a base unit, so that low rates keep precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FeeRate(u64);

impl FeeRate {
    /// The rate of `fee` over `size` bytes.
    pub fn of(fee: Amount, size: usize) -> Self {
        FeeRate(fee.units().saturating_mul(1000) / size.max(1) as u64)
    }

    /// A rate in whole base units per byte.
    pub const fn per_byte(units: u64) -> Self {
        FeeRate(units.saturating_mul(1000))
    }

    /// The fee this rate asks of `size` bytes, rounded up.
    pub fn fee_for(self, size: usize) -> Amount {
        Amount::from_units((self.0.saturating_mul(size as u64)).div_ceil(1000))
    }

    /// Base units per byte, as a decimal.
    pub fn units_per_byte(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_asks_its_fee_rounded_up_and_reads_back() {
        let rate = FeeRate::per_byte(3);
        assert_eq!(rate.fee_for(250), Amount::from_units(750));
        assert_eq!(FeeRate::of(Amount::from_units(750), 250), rate);
        assert_eq!(FeeRate::of(Amount::from_units(1), 3).fee_for(3), Amount::from_units(1), "rounded up");
        assert_eq!(rate.units_per_byte(), 3.0);
    }
}
