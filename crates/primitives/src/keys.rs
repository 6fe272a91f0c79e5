//! Ed25519 keys and signatures as plain bytes on the wire, checked when used.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::encode::{Decode, DecodeError, Encode, Reader, Sink};
use crate::hash::{KeyHash, sha256d};

/// An ed25519 public key as it travels. It may not be a valid curve point: that is found out
/// when a signature is checked against it, which then fails.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The hash that a pay-to-key-hash lock and an address carry.
    pub fn key_hash(&self) -> KeyHash {
        KeyHash(sha256d(&self.0))
    }

    /// The curve point, refusing encodings that are not points and the small-order points
    /// for which anyone could forge a signature.
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        let key = VerifyingKey::from_bytes(&self.0).ok()?;
        (!key.is_weak()).then_some(key)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Encode for PublicKey {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        sink.put(&self.0);
    }
}

impl Decode for PublicKey {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self(reader.array("public key")?))
    }
}

/// An ed25519 signature as it travels.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// The dalek form, for verification.
    pub fn to_dalek(&self) -> ed25519_dalek::Signature {
        ed25519_dalek::Signature::from_bytes(&self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

impl Encode for Signature {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        sink.put(&self.0);
    }
}

impl Decode for Signature {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self(reader.array("signature")?))
    }
}

/// A secret signing key. It is never printed: `Debug` shows only the public key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        Self(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// The key with this 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    /// The 32-byte seed, for an encrypted keystore.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs a message (a signature hash).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public: {})", self.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_order_keys_are_refused() {
        // The identity point: every signature would verify against it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey(identity).verifying_key().is_none());
        assert!(SecretKey::generate().public_key().verifying_key().is_some());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = SecretKey::from_seed([7u8; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains(&hex::encode([7u8; 32])));
    }
}
