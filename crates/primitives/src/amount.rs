//! Amounts in base units with checked arithmetic, and their decimal form for people.

use std::fmt;
use std::str::FromStr;

use crate::encode::{Decode, DecodeError, Encode, Reader, Sink};

/// Base units in one coin.
pub const UNITS_PER_COIN: u64 = 100_000_000;

/// An amount of base units. Arithmetic is checked: overflow is a value, never a wrap.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Amount(u64);

impl Amount {
    /// Nothing.
    pub const ZERO: Self = Self(0);
    /// The most that can ever exist: no output, sum or fee may exceed it.
    pub const MAX_MONEY: Self = Self(21_000_000 * UNITS_PER_COIN);

    /// An amount of base units.
    pub const fn from_units(units: u64) -> Self {
        Self(units)
    }

    /// An amount of whole coins.
    pub const fn from_coins(coins: u64) -> Self {
        Self(coins * UNITS_PER_COIN)
    }

    /// The amount in base units.
    pub const fn units(self) -> u64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    /// `self + other`, at most the largest amount representable.
    pub fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }

    /// `self - other`, or `None` if negative.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Self)
    }

    /// Whether it is within `0..=MAX_MONEY`.
    pub fn is_valid_money(self) -> bool {
        self <= Self::MAX_MONEY
    }
}

impl fmt::Display for Amount {
    /// Coins with up to eight decimals and no trailing zeros: `12.5`, `0.00000001`, `3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / UNITS_PER_COIN;
        let frac = self.0 % UNITS_PER_COIN;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:08}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({} units)", self.0)
    }
}

/// Why text is not an amount of coins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseAmountError {
    /// Not digits with at most one decimal point.
    #[error("`{0}` is not a number of coins (expected digits like 12.5)")]
    NotANumber(String),
    /// More than eight decimals.
    #[error("`{0}` has more than 8 decimals; the smallest amount is 0.00000001")]
    TooPrecise(String),
    /// Larger than all the money that can exist.
    #[error("`{0}` is more than the 21,000,000 coins that can ever exist")]
    TooLarge(String),
}

impl FromStr for Amount {
    type Err = ParseAmountError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ParseAmountError::NotANumber(text.to_owned());
        let (whole, frac) = match text.split_once('.') {
            Some((whole, frac)) => (whole, frac),
            None => (text, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
            return Err(bad());
        }
        if text.ends_with('.') {
            return Err(bad());
        }
        if frac.len() > 8 {
            return Err(ParseAmountError::TooPrecise(text.to_owned()));
        }
        let too_large = || ParseAmountError::TooLarge(text.to_owned());
        let whole_units = if whole.is_empty() {
            0
        } else {
            whole.parse::<u64>().map_err(|_| too_large())?.checked_mul(UNITS_PER_COIN).ok_or_else(too_large)?
        };
        let frac_units = if frac.is_empty() { 0 } else { format!("{frac:0<8}").parse::<u64>().map_err(|_| bad())? };
        let amount = Amount(whole_units.checked_add(frac_units).ok_or_else(too_large)?);
        if !amount.is_valid_money() {
            return Err(too_large());
        }
        Ok(amount)
    }
}

impl Encode for Amount {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        self.0.encode_to(sink);
    }
}

impl Decode for Amount {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self(reader.u64("amount")?))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_and_displays_coins() {
        let cases = [("12.5", 1_250_000_000), ("0.00000001", 1), ("3", 300_000_000), (".5", 50_000_000), ("0", 0)];
        for (text, units) in cases {
            assert_eq!(text.parse::<Amount>(), Ok(Amount::from_units(units)), "{text}");
        }
        assert_eq!(Amount::from_units(1_250_000_000).to_string(), "12.5");
        assert_eq!(Amount::from_units(1).to_string(), "0.00000001");
        assert_eq!(Amount::from_coins(3).to_string(), "3");
    }

    #[test]
    fn rejects_bad_amounts_with_reasons() {
        assert!(matches!("1.123456789".parse::<Amount>(), Err(ParseAmountError::TooPrecise(_))));
        assert!(matches!("21000001".parse::<Amount>(), Err(ParseAmountError::TooLarge(_))));
        assert!(matches!("99999999999999999999".parse::<Amount>(), Err(ParseAmountError::TooLarge(_))));
        for text in ["", ".", "1.", "-1", "1e5", "1,5", " 1", "abc"] {
            assert!(matches!(text.parse::<Amount>(), Err(ParseAmountError::NotANumber(_))), "{text:?}");
        }
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Amount::from_units(u64::MAX).checked_add(Amount::from_units(1)), None);
        assert_eq!(Amount::ZERO.checked_sub(Amount::from_units(1)), None);
    }

    proptest! {
        #[test]
        fn display_round_trips(units in 0..=Amount::MAX_MONEY.units()) {
            let amount = Amount::from_units(units);
            prop_assert_eq!(amount.to_string().parse::<Amount>(), Ok(amount));
        }
    }
}
