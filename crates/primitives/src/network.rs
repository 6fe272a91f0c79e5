//! Which chain a value belongs to.

use std::fmt;
use std::str::FromStr;

/// One of the chains a node can run. Each has its own genesis, address prefix, ports and data
/// folder; consensus parameters live in the consensus crate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The public chain.
    Mainnet,
    /// The public test chain.
    Testnet,
    /// A local chain with fast blocks and tiny difficulty: the default.
    Devnet,
    /// A chain for tests: minimum difficulty that never adjusts, blocks made on request.
    Regtest,
}

impl Network {
    /// Every network.
    pub const ALL: [Network; 4] = [Network::Mainnet, Network::Testnet, Network::Devnet, Network::Regtest];

    /// Its name on the command line and in data folders.
    pub fn name(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Devnet => "devnet",
            Network::Regtest => "regtest",
        }
    }

    /// The human-readable prefix of its addresses.
    pub fn address_prefix(self) -> &'static str {
        match self {
            Network::Mainnet => "pc",
            Network::Testnet => "tpc",
            Network::Devnet => "dpc",
            Network::Regtest => "rpc",
        }
    }

    /// A one-byte id, mixed into signature hashes so that a signature for one network is
    /// worthless on another.
    pub fn magic(self) -> u8 {
        match self {
            Network::Mainnet => 0xa1,
            Network::Testnet => 0xa2,
            Network::Devnet => 0xa3,
            Network::Regtest => 0xa4,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name is not a network's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network `{0}` (expected mainnet, testnet, devnet or regtest)")]
pub struct UnknownNetwork(pub String);

impl FromStr for Network {
    type Err = UnknownNetwork;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Network::ALL.into_iter().find(|n| n.name() == s).ok_or_else(|| UnknownNetwork(s.to_owned()))
    }
}
