//! The one canonical binary encoding of every consensus value.
//!
//! Integers are fixed-width little-endian; lengths and counts are unsigned LEB128 varints in
//! their shortest form. Decoding is strict: a non-minimal varint, an unknown enum tag, a length
//! over its limit or bytes left over after the value are all errors, so that every value has
//! exactly one encoding and hashing the encoding identifies the value.

use thiserror::Error;

/// Why bytes could not be decoded into a value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    #[error("unexpected end of input while reading {what}")]
    UnexpectedEnd {
        /// What was being read.
        what: &'static str,
    },
    /// Bytes remained after the value was complete.
    #[error("{count} trailing bytes after the value")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// A varint was longer than the shortest form of its value, or overflowed 64 bits.
    #[error("non-canonical varint")]
    NonCanonicalVarint,
    /// A length or count was larger than its limit.
    #[error("{what} of {got} exceeds the limit of {max}")]
    TooLong {
        /// What was being read.
        what: &'static str,
        /// The length found.
        got: u64,
        /// The limit.
        max: u64,
    },
    /// An enum tag had no meaning.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// What was being read.
        what: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A value was well-formed bytes but not a valid value of its type.
    #[error("invalid {what}")]
    Invalid {
        /// What was being read.
        what: &'static str,
    },
}

/// Something encoded bytes can be written to: a buffer, or a hasher so that hashing a value
/// needs no intermediate allocation.
pub trait Sink {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for sha2::Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        sha2::Digest::update(self, bytes);
    }
}

/// Counts bytes instead of storing them.
#[derive(Debug, Default)]
pub struct LengthCounter(pub usize);

impl Sink for LengthCounter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// A value with a canonical encoding.
pub trait Encode {
    /// Writes the canonical encoding.
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S);

    /// The canonical encoding as a new buffer.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_to(&mut out);
        out
    }

    /// The length of the canonical encoding.
    fn encoded_len(&self) -> usize {
        let mut counter = LengthCounter::default();
        self.encode_to(&mut counter);
        counter.0
    }
}

/// A value that can be read back from its canonical encoding.
pub trait Decode: Sized {
    /// Reads one value from the front of `reader`.
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes a value that must fill `bytes` exactly.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let value = Self::decode(&mut reader)?;
        reader.finish()?;
        Ok(value)
    }
}

/// A cursor over untrusted bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.bytes.len() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    /// Takes the next `len` bytes.
    pub fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < len {
            return Err(DecodeError::UnexpectedEnd { what });
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a little-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Reads a shortest-form LEB128 varint.
    pub fn varint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for index in 0..10u32 {
            let byte = self.u8(what)?;
            let low = u64::from(byte & 0x7f);
            if index == 9 && low > 1 {
                return Err(DecodeError::NonCanonicalVarint);
            }
            value |= low << (7 * index);
            if byte & 0x80 == 0 {
                // Correctness: a final zero byte after the first would encode the same value
                // as a shorter form.
                if byte == 0 && index > 0 {
                    return Err(DecodeError::NonCanonicalVarint);
                }
                return Ok(value);
            }
        }
        Err(DecodeError::NonCanonicalVarint)
    }

    /// Reads a varint length and checks it against `max`.
    pub fn length(&mut self, what: &'static str, max: usize) -> Result<usize, DecodeError> {
        let got = self.varint(what)?;
        if got > max as u64 {
            return Err(DecodeError::TooLong { what, got, max: max as u64 });
        }
        // Security: every item takes at least one byte, so a count larger than the remaining
        // input is a lie; refusing it here keeps `Vec::with_capacity` honest.
        if got > self.remaining() as u64 {
            return Err(DecodeError::UnexpectedEnd { what });
        }
        Ok(got as usize)
    }

    /// Reads a length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.length(what, max)?;
        self.take(len, what)
    }

    /// Reads a count-prefixed list of at most `max` items.
    pub fn list<T: Decode>(&mut self, what: &'static str, max: usize) -> Result<Vec<T>, DecodeError> {
        let count = self.length(what, max)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(T::decode(self)?);
        }
        Ok(items)
    }
}

/// Writes a shortest-form LEB128 varint.
pub fn put_varint<S: Sink + ?Sized>(sink: &mut S, mut value: u64) {
    let mut buf = [0u8; 10];
    let mut len = 0;
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            buf[len] = low;
            len += 1;
            break;
        }
        buf[len] = low | 0x80;
        len += 1;
    }
    sink.put(&buf[..len]);
}

/// How many bytes [`put_varint`] writes for `value`.
pub fn varint_len(value: u64) -> usize {
    (64 - value.max(1).leading_zeros() as usize).div_ceil(7)
}

/// Writes a length-prefixed byte string.
pub fn put_bytes<S: Sink + ?Sized>(sink: &mut S, bytes: &[u8]) {
    put_varint(sink, bytes.len() as u64);
    sink.put(bytes);
}

/// Writes a count-prefixed list.
pub fn put_list<S: Sink + ?Sized, T: Encode>(sink: &mut S, items: &[T]) {
    put_varint(sink, items.len() as u64);
    for item in items {
        item.encode_to(sink);
    }
}

#[cfg(test)]
mod varint_tests {
    use super::*;

    #[test]
    fn varint_len_is_what_put_varint_writes() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut bytes = Vec::new();
            put_varint(&mut bytes, value);
            assert_eq!(varint_len(value), bytes.len(), "{value}");
        }
    }
}

impl Encode for u32 {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        sink.put(&self.to_le_bytes());
    }
}

impl Decode for u32 {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.u32("u32")
    }
}

impl Encode for u64 {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        sink.put(&self.to_le_bytes());
    }
}

impl Decode for u64 {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.u64("u64")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn varint_vectors() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0x00]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (u64::MAX, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        ];
        for (value, bytes) in cases {
            let mut out = Vec::new();
            put_varint(&mut out, *value);
            assert_eq!(&out[..], *bytes, "encoding {value}");
            assert_eq!(Reader::new(bytes).varint("v"), Ok(*value));
        }
    }

    #[test]
    fn non_minimal_varints_are_rejected() {
        for bytes in [
            &[0x80, 0x00][..],
            &[0x81, 0x80, 0x00],
            &[0xff; 11],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
        ] {
            assert!(Reader::new(bytes).varint("v").is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn lengths_beyond_the_input_are_refused_before_allocating() {
        let mut bytes = Vec::new();
        put_varint(&mut bytes, 1_000);
        let err = Reader::new(&bytes).list::<u64>("items", 10_000).unwrap_err();
        assert_eq!(err, DecodeError::UnexpectedEnd { what: "items" });
    }

    proptest! {
        #[test]
        fn varint_round_trips(value in any::<u64>()) {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut reader = Reader::new(&out);
            prop_assert_eq!(reader.varint("v").unwrap(), value);
            prop_assert!(reader.finish().is_ok());
        }
    }
}
