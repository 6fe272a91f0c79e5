//! A fixed-length bit set: which chunk groups of a partial blob are verified, or which pieces
//! a peer holds.

use std::ops::Range;

/// Bits `0..len`, all clear at first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitmap {
    words: Vec<u64>,
    len: u64,
    ones: u64,
}

/// Bytes that do not make a bitmap of the expected length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a bitmap of {expected} bits needs {} bytes, got {got}", expected.div_ceil(8))]
pub struct BitmapError {
    /// The bits expected.
    pub expected: u64,
    /// The bytes given.
    pub got: usize,
}

impl Bitmap {
    /// `len` clear bits.
    pub fn new(len: u64) -> Bitmap {
        Bitmap { words: vec![0; len.div_ceil(64) as usize], len, ones: 0 }
    }

    /// `len` set bits.
    pub fn full(len: u64) -> Bitmap {
        let mut bitmap = Bitmap::new(len);
        bitmap.set_range(0..len);
        bitmap
    }

    /// How many bits.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it has no bits at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many bits are set.
    pub fn count(&self) -> u64 {
        self.ones
    }

    /// Whether every bit is set.
    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    /// Whether bit `i` is set (bits past the end are clear).
    pub fn get(&self, i: u64) -> bool {
        i < self.len && self.words[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// Sets bit `i`; returns whether it was clear.
    pub fn set(&mut self, i: u64) -> bool {
        assert!(i < self.len, "bit {i} of {}", self.len);
        let word = &mut self.words[(i / 64) as usize];
        let was_clear = *word & (1 << (i % 64)) == 0;
        *word |= 1 << (i % 64);
        self.ones += u64::from(was_clear);
        was_clear
    }

    /// Sets every bit of `range`.
    pub fn set_range(&mut self, range: Range<u64>) {
        for i in range {
            self.set(i);
        }
    }

    /// Whether every bit of `range` is set.
    pub fn all(&self, range: Range<u64>) -> bool {
        range.clone().all(|i| self.get(i)) && range.end <= self.len
    }

    /// The bits as bytes, least significant bit first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes.truncate(self.len.div_ceil(8) as usize);
        bytes
    }

    /// Reads `len` bits written by [`Bitmap::to_bytes`]; bits past `len` must be clear, so
    /// that each bitmap has one encoding.
    pub fn from_bytes(len: u64, bytes: &[u8]) -> Result<Bitmap, BitmapError> {
        let error = BitmapError { expected: len, got: bytes.len() };
        if bytes.len() as u64 != len.div_ceil(8) {
            return Err(error);
        }
        let mut bitmap = Bitmap::new(len);
        for (i, byte) in bytes.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    let index = i as u64 * 8 + bit;
                    if index >= len {
                        return Err(error);
                    }
                    bitmap.set(index);
                }
            }
        }
        Ok(bitmap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bytes_round_trip(len in 0u64..300, set in proptest::collection::vec(0u64..300, 0..50)) {
            let mut bitmap = Bitmap::new(len);
            for i in set.into_iter().filter(|i| *i < len) {
                bitmap.set(i);
            }
            prop_assert_eq!(Bitmap::from_bytes(len, &bitmap.to_bytes()), Ok(bitmap));
        }
    }

    #[test]
    fn counts_and_ranges() {
        let mut bitmap = Bitmap::new(70);
        assert!(bitmap.set(69));
        assert!(!bitmap.set(69));
        bitmap.set_range(0..3);
        assert_eq!(bitmap.count(), 4);
        assert!(bitmap.all(0..3) && !bitmap.all(0..4) && !bitmap.all(69..71));
        assert!(Bitmap::full(70).is_full());
        // A set bit past the end, or the wrong length, is not a bitmap.
        assert!(Bitmap::from_bytes(3, &[0b1000]).is_err());
        assert!(Bitmap::from_bytes(9, &[0]).is_err());
    }
}
