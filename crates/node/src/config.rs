//! The node's configuration: `config.toml` in the data directory, composed of one section per
//! part, every field optional; command-line flags override it.

use std::net::SocketAddr;
use std::path::Path;

use peerchain_primitives::Network;
use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Chain and mempool.
    pub chain: ChainConfig,
    /// JSON-RPC.
    pub rpc: RpcConfig,
    /// Mining.
    pub mining: MiningConfig,
    /// Peer-to-peer network.
    pub network: NetworkConfig,
    /// File sharing.
    pub files: FilesConfig,
}

/// The `[files]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// Upload bandwidth cap in KiB/s; 0 for none.
    pub max_upload_kib_per_sec: u64,
    /// Download bandwidth cap in KiB/s; 0 for none.
    pub max_download_kib_per_sec: u64,
    /// Ranges served at once; more requests are refused as busy.
    pub max_concurrent_uploads: usize,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self { max_upload_kib_per_sec: 0, max_download_kib_per_sec: 0, max_concurrent_uploads: 32 }
    }
}

/// The `[network]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Multiaddrs to listen on; all interfaces on the network's port (TCP and QUIC) if empty.
    pub listen: Vec<String>,
    /// Multiaddrs of peers to dial at start, with or without `/p2p/<peer id>`.
    pub bootstrap: Vec<String>,
    /// Turn off peer discovery on the local network (mDNS).
    pub no_mdns: bool,
    /// Most inbound connections (64 if unset).
    pub max_inbound: Option<u32>,
    /// Most inbound connections from one IP address, loopback aside (8 if unset).
    pub max_inbound_per_ip: Option<u32>,
    /// Announce new blocks compactly (header, coinbase, short transaction ids) rather than
    /// by header alone; peers understand both.
    pub compact_blocks: bool,
    /// Relays to be reachable through (multiaddrs with `/p2p/<peer id>`), for a node behind
    /// a NAT.
    pub relays: Vec<String>,
    /// Serve as a relay for others (on by default; it serves once it knows an address
    /// others reach it at).
    pub relay_server: bool,
    /// Keep a rendezvous registry for peers that dial this node (on by default; bounded).
    pub rendezvous_server: bool,
    /// Addresses others reach this node at (a public IP and a forwarded port), if known.
    pub external_addrs: Vec<String>,
    /// Offer TLS 1.3 before Noise (on by default): AES-GCM where the processor has AES
    /// instructions, four to five times cheaper than Noise's ChaCha20-Poly1305. Noise is
    /// always accepted, so both kinds of node talk to each other.
    pub tls: bool,
}

/// The `[chain]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// The most the mempool holds, in MiB.
    pub mempool_max_mib: usize,
    /// The lowest fee rate relayed and accepted, in base units per byte.
    pub min_relay_fee_rate: u64,
    /// How much memory recent UTXO changes may take before they are written to disk, in MiB.
    pub coin_cache_mib: usize,
    /// Most headers of branches with less work than the tip held in memory (never stored).
    pub max_low_work_headers: usize,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            mempool_max_mib: 300,
            min_relay_fee_rate: 1,
            coin_cache_mib: peerchain_chain::DEFAULT_COIN_CACHE_BYTES >> 20,
            max_low_work_headers: peerchain_chain::DEFAULT_LOW_WORK_HEADERS,
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            bootstrap: Vec::new(),
            no_mdns: false,
            max_inbound: None,
            max_inbound_per_ip: None,
            compact_blocks: true,
            relays: Vec::new(),
            relay_server: true,
            rendezvous_server: true,
            external_addrs: Vec::new(),
            tls: true,
        }
    }
}

/// The `[rpc]` section.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// Where JSON-RPC listens; the network's default port on 127.0.0.1 if unset.
    pub addr: Option<SocketAddr>,
    /// A user name accepted besides the cookie (needs `password`).
    pub user: Option<String>,
    /// The password of `user`.
    pub password: Option<String>,
    /// Requests handled at once.
    pub max_concurrent: Option<usize>,
    /// The largest request body, in bytes.
    pub max_body_bytes: Option<usize>,
}

/// The `[mining]` section.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MiningConfig {
    /// Whether to mine.
    pub enabled: bool,
    /// Who gets the rewards; the node's own wallet if unset.
    pub address: Option<String>,
    /// Hashing threads; all cores if unset.
    pub threads: Option<usize>,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("invalid config {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, with line and column.
        message: String,
    },
}

impl Config {
    /// Loads `config.toml` from `data_dir`, or the defaults if there is none.
    pub fn load(data_dir: &Path) -> Result<Config, ConfigError> {
        let path = data_dir.join("config.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read { path: path.display().to_string(), source }),
        }
    }

    /// Parses configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid { path: origin.to_owned(), message: e.to_string() })
    }
}

/// The default peer-to-peer port of each network; JSON-RPC listens on the next one.
pub fn default_p2p_port(network: Network) -> u16 {
    match network {
        Network::Mainnet => 9333,
        Network::Testnet => 19333,
        Network::Devnet => 29333,
        Network::Regtest => 39333,
    }
}

/// The default JSON-RPC address of each network.
pub fn default_rpc_addr(network: Network) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], default_p2p_port(network) + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_loads_and_sets_every_section() {
        let text = include_str!("../../../docs/config.example.toml");
        let config = Config::parse(text, "config.example.toml").unwrap();
        assert_ne!(config, Config::default(), "the example sets values");
        assert!(config.mining.enabled);
        assert_eq!(config.chain.mempool_max_mib, 100);
        assert_eq!(config.files.max_concurrent_uploads, 32);
    }

    #[test]
    fn unknown_fields_are_errors_with_a_location() {
        let err = Config::parse("[chain]\nmempool_max_mb = 5\n", "test.toml").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("mempool_max_mb") && message.contains("line 2"), "{message}");
    }
}
