//! Key derivation from a BIP39 seed as SLIP-0010 defines it for ed25519: HMAC-SHA512 chains
//! with hardened steps only (ed25519 has no public derivation).

use hmac::{Hmac, Mac};
use peerchain_primitives::{Network, SecretKey};
use sha2::Sha512;
use zeroize::Zeroize;

const HARDENED: u32 = 0x8000_0000;

/// The SLIP-44 coin type in the derivation path: test networks share 1, as is the custom.
fn coin_type(network: Network) -> u32 {
    match network {
        Network::Mainnet => 7063,
        Network::Testnet | Network::Devnet | Network::Regtest => 1,
    }
}

/// Which of the two key chains: addresses handed out to payers, or change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyChain {
    /// Addresses given to others.
    Receive,
    /// Change outputs of the wallet's own payments.
    Change,
}

impl KeyChain {
    fn index(self) -> u32 {
        match self {
            KeyChain::Receive => 0,
            KeyChain::Change => 1,
        }
    }
}

/// A SLIP-0010 node: a private key and its chain code.
struct Node {
    key: [u8; 32],
    chain_code: [u8; 32],
}

impl Drop for Node {
    fn drop(&mut self) {
        self.key.zeroize();
        self.chain_code.zeroize();
    }
}

impl Node {
    fn from_hmac(key: &[u8], parts: &[&[u8]]) -> Node {
        let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes keys of any length");
        for part in parts {
            mac.update(part);
        }
        let mut out: [u8; 64] = mac.finalize().into_bytes().into();
        let mut node = Node { key: [0; 32], chain_code: [0; 32] };
        node.key.copy_from_slice(&out[..32]);
        node.chain_code.copy_from_slice(&out[32..]);
        out.zeroize();
        node
    }

    fn master(seed: &[u8]) -> Node {
        Node::from_hmac(b"ed25519 seed", &[seed])
    }

    /// The hardened child `index` (the hardened bit is added here).
    fn child(&self, index: u32) -> Node {
        Node::from_hmac(&self.chain_code, &[&[0], &self.key, &(index | HARDENED).to_be_bytes()])
    }

    fn path(seed: &[u8], path: &[u32]) -> Node {
        path.iter().fold(Node::master(seed), |node, &index| node.child(index))
    }
}

/// The key at m/44'/coin'/0'/chain'/index' of a BIP39 seed.
pub(crate) fn derive_key(seed: &[u8], network: Network, chain: KeyChain, index: u32) -> SecretKey {
    let node = Node::path(seed, &[44, coin_type(network), 0, chain.index(), index]);
    SecretKey::from_seed(node.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(seed: &str, path: &[u32], chain_code: &str, key: &str) {
        let node = Node::path(&hex::decode(seed).unwrap(), path);
        assert_eq!(hex::encode(node.chain_code), chain_code, "chain code at {path:?}");
        assert_eq!(hex::encode(node.key), key, "key at {path:?}");
    }

    /// SLIP-0010's published test vector 1 for ed25519.
    #[test]
    fn slip10_test_vector_1() {
        let seed = "000102030405060708090a0b0c0d0e0f";
        check(
            seed,
            &[],
            "90046a93de5380a72b5e45010748567d5ea02bbf6522f979e05c0d8d8ca9fffb",
            "2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7",
        );
        check(
            seed,
            &[0],
            "8b59aa11380b624e81507a27fedda59fea6d0b779a778918a2fd3590e16e9c69",
            "68e0fe46dfb67e368c75379acec591dad19df3cde26e63b93a8e704f1dade7a3",
        );
        check(
            seed,
            &[0, 1],
            "a320425f77d1b5c2505a6b1b27382b37368ee640e3557c315416801243552f14",
            "b1d0bad404bf35da785a64ca1ac54b2617211d2777696fbffaf208f746ae84f2",
        );
        check(
            seed,
            &[0, 1, 2, 2],
            "8f6d87f93d750e0efccda017d662a1b31a266e4a6f5993b15f5c1f07f74dd5cc",
            "30d1dc7e5fc04c31219ab25a27ae00b50f6fd66622f6e9c913253d6511d1e662",
        );
    }

    #[test]
    fn chains_networks_and_indexes_give_different_keys() {
        let seed = [9u8; 64];
        let a = derive_key(&seed, Network::Devnet, KeyChain::Receive, 0).public_key();
        assert_ne!(a, derive_key(&seed, Network::Devnet, KeyChain::Receive, 1).public_key());
        assert_ne!(a, derive_key(&seed, Network::Devnet, KeyChain::Change, 0).public_key());
        assert_ne!(a, derive_key(&seed, Network::Mainnet, KeyChain::Receive, 0).public_key());
        assert_eq!(a, derive_key(&seed, Network::Devnet, KeyChain::Receive, 0).public_key());
    }
}
