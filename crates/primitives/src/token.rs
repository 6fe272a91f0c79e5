//! What a token is called: the metadata its issuance commits to, carried in a burn output of
//! zero of the new token, so that it costs no UTXO and cannot be changed afterwards.

use crate::encode::{Decode, DecodeError, Encode, Reader, Sink, put_bytes};
use crate::hash::ContentId;

/// Longest token name, in bytes.
pub const MAX_NAME: usize = 32;
/// Most decimal places a token may show (amounts are integers of base units either way).
pub const MAX_DECIMALS: u8 = 18;

/// The format of the metadata; bumped only at a rule change.
const VERSION: u8 = 1;

/// A token's name, how it shows amounts, and optionally a document that describes it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct TokenMetadata {
    /// 1 to [`MAX_NAME`] bytes of UTF-8 without control characters.
    pub name: String,
    /// How many of the base units' digits are decimals when shown.
    pub decimals: u8,
    /// A file shared on the network (a prospectus, terms) that the issuer commits to.
    pub content: Option<ContentId>,
}

/// Why metadata is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The name is empty, too long, or has control characters.
    #[error("a token name must be 1 to {MAX_NAME} bytes of printable text")]
    BadName,
    /// Too many decimals.
    #[error("a token shows at most {MAX_DECIMALS} decimals")]
    TooManyDecimals,
    /// The bytes are not metadata.
    #[error("token metadata does not decode: {0}")]
    Decode(#[from] DecodeError),
}

impl TokenMetadata {
    /// Checked metadata.
    pub fn new(name: &str, decimals: u8, content: Option<ContentId>) -> Result<Self, MetadataError> {
        let metadata = Self { name: name.to_owned(), decimals, content };
        metadata.check()?;
        Ok(metadata)
    }

    fn check(&self) -> Result<(), MetadataError> {
        if self.name.is_empty() || self.name.len() > MAX_NAME || self.name.chars().any(char::is_control) {
            return Err(MetadataError::BadName);
        }
        if self.decimals > MAX_DECIMALS {
            return Err(MetadataError::TooManyDecimals);
        }
        Ok(())
    }

    /// Parses and checks the data of an issuance's burn output.
    pub fn from_burn_data(data: &[u8]) -> Result<Self, MetadataError> {
        let metadata = Self::from_bytes(data)?;
        metadata.check()?;
        Ok(metadata)
    }
}

impl Encode for TokenMetadata {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        sink.put(&[VERSION]);
        put_bytes(sink, self.name.as_bytes());
        sink.put(&[self.decimals]);
        match &self.content {
            None => sink.put(&[0]),
            Some(id) => {
                sink.put(&[1]);
                id.encode_to(sink);
            }
        }
    }
}

impl Decode for TokenMetadata {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("token metadata version")? {
            VERSION => {}
            tag => return Err(DecodeError::UnknownTag { what: "token metadata version", tag }),
        }
        let name = std::str::from_utf8(reader.bytes("token name", MAX_NAME)?)
            .map_err(|_| DecodeError::Invalid { what: "token name (not UTF-8)" })?
            .to_owned();
        let decimals = reader.u8("token decimals")?;
        let content = match reader.u8("token content")? {
            0 => None,
            1 => Some(ContentId::decode(reader)?),
            tag => return Err(DecodeError::UnknownTag { what: "token content", tag }),
        };
        Ok(Self { name, decimals, content })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::limits::MAX_BURN_DATA;

    #[test]
    fn the_largest_metadata_fits_a_burn_output_and_round_trips() {
        let metadata = TokenMetadata::new(&"x".repeat(MAX_NAME), MAX_DECIMALS, Some(ContentId([7; 32]))).unwrap();
        let bytes = metadata.to_bytes();
        assert!(bytes.len() <= MAX_BURN_DATA, "{}", bytes.len());
        assert_eq!(TokenMetadata::from_burn_data(&bytes).unwrap(), metadata);
    }

    #[test]
    fn bad_names_decimals_and_bytes_are_refused() {
        assert_eq!(TokenMetadata::new("", 0, None), Err(MetadataError::BadName));
        assert_eq!(TokenMetadata::new("a\nb", 0, None), Err(MetadataError::BadName));
        assert_eq!(TokenMetadata::new("gold", 19, None), Err(MetadataError::TooManyDecimals));
        let mut bytes = TokenMetadata::new("gold", 2, None).unwrap().to_bytes();
        bytes.push(0);
        assert!(matches!(TokenMetadata::from_burn_data(&bytes), Err(MetadataError::Decode(_))));
        assert!(TokenMetadata::from_burn_data(&[2, 1, b'a', 0, 0]).is_err());
    }
}
