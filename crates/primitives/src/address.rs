//! Addresses: a key hash in bech32m with the network's prefix and a checksum.

use std::fmt;

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32m, Hrp};

use crate::encode::{Decode, Encode};
use crate::hash::KeyHash;
use crate::network::Network;
use crate::transaction::Lock;

/// Pay to the hash of one ed25519 key.
const VERSION_KEY_HASH: u8 = 0;
/// Pay to a contract lock (multisig, escrow, hash-time lock, loan), written out whole, so
/// that any wallet can fund a contract the parties agreed on.
const VERSION_LOCK: u8 = 1;

/// Where coins can be sent: a key hash on one network.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Address {
    /// The network whose prefix the address carries.
    pub network: Network,
    /// The hash of the public key that may spend.
    pub key_hash: KeyHash,
}

/// Why text is not an address of the expected network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The checksum does not match: a typo, most likely.
    #[error("invalid address `{0}`: bad checksum or characters (check for a typo)")]
    BadChecksum(String),
    /// The address is for another network.
    #[error("address `{text}` is for {found}, but this node runs {expected}")]
    WrongNetwork {
        /// The address.
        text: String,
        /// Its network.
        found: Network,
        /// The node's network.
        expected: Network,
    },
    /// The prefix is no network's.
    #[error("invalid address `{0}`: unknown prefix")]
    UnknownPrefix(String),
    /// The payload has the wrong version or length.
    #[error("invalid address `{0}`: unsupported version or length")]
    BadPayload(String),
}

impl Address {
    /// The address paying to `key_hash` on `network`.
    pub fn new(network: Network, key_hash: KeyHash) -> Self {
        Self { network, key_hash }
    }

    /// Parses an address and checks that it belongs to `expected`.
    pub fn parse(text: &str, expected: Network) -> Result<Self, AddressError> {
        let (network, payload) = decode(text, expected)?;
        match payload.split_first() {
            Some((&VERSION_KEY_HASH, hash)) if hash.len() == 32 => {
                let mut key_hash = [0u8; 32];
                key_hash.copy_from_slice(hash);
                Ok(Self { network, key_hash: KeyHash(key_hash) })
            }
            _ => Err(AddressError::BadPayload(text.to_owned())),
        }
    }
}

/// The network and payload of an address of `expected`.
fn decode(text: &str, expected: Network) -> Result<(Network, Vec<u8>), AddressError> {
    let checked = CheckedHrpstring::new::<Bech32m>(text).map_err(|_| AddressError::BadChecksum(text.to_owned()))?;
    let prefix = checked.hrp().to_lowercase();
    let network = Network::ALL
        .into_iter()
        .find(|n| n.address_prefix() == prefix)
        .ok_or_else(|| AddressError::UnknownPrefix(text.to_owned()))?;
    if network != expected {
        return Err(AddressError::WrongNetwork { text: text.to_owned(), found: network, expected });
    }
    Ok((network, checked.byte_iter().collect()))
}

/// The address of a contract lock, so that another wallet can fund it: its encoding in
/// bech32m with the network's prefix (longer than a key's address).
pub fn lock_address(network: Network, lock: &Lock) -> String {
    if let Lock::Key(key_hash) = lock {
        return Address::new(network, *key_hash).to_string();
    }
    let hrp = Hrp::parse_unchecked(network.address_prefix());
    let mut payload = vec![VERSION_LOCK];
    lock.encode_to(&mut payload);
    bech32::encode_lower::<Bech32m>(hrp, &payload).expect("a lock is far below bech32m's length limit")
}

/// What an address pays to: a key's address or a contract's, on `expected`. A burn is no
/// address.
pub fn parse_lock_address(text: &str, expected: Network) -> Result<Lock, AddressError> {
    let (_, payload) = decode(text, expected)?;
    if payload.first() != Some(&VERSION_LOCK) {
        return Address::parse(text, expected).map(|a| Lock::Key(a.key_hash));
    }
    match Lock::from_bytes(&payload[1..]) {
        Ok(Lock::Burn { .. } | Lock::Key(_)) | Err(_) => Err(AddressError::BadPayload(text.to_owned())),
        Ok(lock) => Ok(lock),
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse_unchecked(self.network.address_prefix());
        let mut payload = [0u8; 33];
        payload[0] = VERSION_KEY_HASH;
        payload[1..].copy_from_slice(&self.key_hash.0);
        bech32::encode_lower_to_fmt::<Bech32m, _>(f, hrp, &payload).map_err(|_| fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    #[test]
    fn round_trips_and_detects_typos_and_wrong_networks() {
        let key_hash = SecretKey::from_seed([3u8; 32]).public_key().key_hash();
        let address = Address::new(Network::Devnet, key_hash);
        let text = address.to_string();
        assert!(text.starts_with("dpc1"), "{text}");
        assert_eq!(Address::parse(&text, Network::Devnet), Ok(address));
        assert_eq!(Address::parse(&text.to_uppercase(), Network::Devnet), Ok(address));

        let mut typo = text.clone().into_bytes();
        let last = typo.len() - 1;
        typo[last] = if typo[last] == b'q' { b'p' } else { b'q' };
        let typo = String::from_utf8(typo).unwrap();
        assert!(matches!(Address::parse(&typo, Network::Devnet), Err(AddressError::BadChecksum(_))));

        assert!(matches!(
            Address::parse(&text, Network::Mainnet),
            Err(AddressError::WrongNetwork { found: Network::Devnet, expected: Network::Mainnet, .. })
        ));
        assert!(Address::parse("", Network::Devnet).is_err());
        assert!(Address::parse("dpc1", Network::Devnet).is_err());
    }

    #[test]
    fn a_contract_lock_has_an_address_any_wallet_can_pay() {
        let keys: Vec<_> = (1..=3u8).map(|i| SecretKey::from_seed([i; 32]).public_key()).collect();
        let lock = Lock::Escrow {
            threshold: 2,
            keys: keys.clone(),
            after: crate::After::Age(144),
            fallback: keys[0].key_hash(),
        };
        let text = lock_address(Network::Devnet, &lock);
        assert!(text.starts_with("dpc1"), "{text}");
        assert_eq!(parse_lock_address(&text, Network::Devnet), Ok(lock.clone()));
        assert!(matches!(parse_lock_address(&text, Network::Testnet), Err(AddressError::WrongNetwork { .. })));
        assert!(Address::parse(&text, Network::Devnet).is_err(), "not a key's address");
        // A key's address reads as its key lock.
        let key = Address::new(Network::Devnet, keys[1].key_hash());
        assert_eq!(parse_lock_address(&key.to_string(), Network::Devnet), Ok(Lock::Key(keys[1].key_hash())));
        // A burn has no address.
        let burn = Lock::Burn { data: vec![1, 2] };
        let mut payload = vec![VERSION_LOCK];
        burn.encode_to(&mut payload);
        let text = bech32::encode_lower::<Bech32m>(Hrp::parse_unchecked("dpc"), &payload).unwrap();
        assert!(matches!(parse_lock_address(&text, Network::Devnet), Err(AddressError::BadPayload(_))));
    }
}
