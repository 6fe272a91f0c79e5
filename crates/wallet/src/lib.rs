//! The wallet: the node's own keys and addresses.
//!
//! This first version keeps one list of keys in `wallet.json` (readable only by its owner) so
//! that a miner has somewhere to be paid. Mnemonics, encryption at rest, balances and sending
//! come with the wallet issue; the file carries a version so it can be migrated. This crate
//! must never know about the chain store, the network or RPC.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use peerchain_primitives::{Address, Network, SecretKey};

/// The file format this version writes.
const FORMAT_VERSION: u32 = 1;

/// What can go wrong with the wallet file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the file failed.
    #[error("wallet file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The file is not a wallet this version understands.
    #[error("wallet file {path} is damaged or of an unknown format: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The wallet belongs to another network.
    #[error("wallet file {path} is for {found}, not {expected}")]
    WrongNetwork {
        /// The file.
        path: PathBuf,
        /// Its network.
        found: Network,
        /// The node's.
        expected: Network,
    },
    /// No wallet exists yet.
    #[error("no wallet at {0}; create one with `peerchain wallet create`")]
    Missing(PathBuf),
    /// A wallet exists already.
    #[error("a wallet already exists at {0}")]
    Exists(PathBuf),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct WalletFile {
    version: u32,
    network: Network,
    /// Hex seeds of the keys, oldest first.
    keys: Vec<String>,
}

/// The node's keys.
#[derive(Debug)]
pub struct Wallet {
    path: PathBuf,
    network: Network,
    keys: Vec<SecretKey>,
}

impl Wallet {
    /// The wallet file in a data directory.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("wallet.json")
    }

    /// Creates a new wallet with one fresh key; refuses to overwrite an existing one.
    pub fn create(path: &Path, network: Network) -> Result<Wallet, Error> {
        if path.exists() {
            return Err(Error::Exists(path.to_owned()));
        }
        let wallet = Wallet { path: path.to_owned(), network, keys: vec![SecretKey::generate()] };
        wallet.save()?;
        Ok(wallet)
    }

    /// Opens an existing wallet.
    pub fn open(path: &Path, network: Network) -> Result<Wallet, Error> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::Missing(path.to_owned())),
            Err(source) => return Err(Error::Io { path: path.to_owned(), source }),
        };
        let corrupt = |detail: String| Error::Corrupt { path: path.to_owned(), detail };
        let file: WalletFile = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        if file.version != FORMAT_VERSION {
            return Err(corrupt(format!("format version {}", file.version)));
        }
        if file.network != network {
            return Err(Error::WrongNetwork { path: path.to_owned(), found: file.network, expected: network });
        }
        let mut keys = Vec::with_capacity(file.keys.len());
        for seed in &file.keys {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(seed, &mut bytes).map_err(|e| corrupt(format!("bad key: {e}")))?;
            keys.push(SecretKey::from_seed(bytes));
        }
        if keys.is_empty() {
            return Err(corrupt("no keys".into()));
        }
        Ok(Wallet { path: path.to_owned(), network, keys })
    }

    /// Opens the wallet, creating it first if there is none.
    pub fn open_or_create(path: &Path, network: Network) -> Result<Wallet, Error> {
        match Self::open(path, network) {
            Err(Error::Missing(_)) => Self::create(path, network),
            other => other,
        }
    }

    /// The address that receives by default: the first key's.
    pub fn address(&self) -> Address {
        Address::new(self.network, self.keys[0].public_key().key_hash())
    }

    /// Writes the file atomically (a temporary file renamed over it), readable by its owner only.
    fn save(&self) -> Result<(), Error> {
        let io = |source| Error::Io { path: self.path.clone(), source };
        let file = WalletFile {
            version: FORMAT_VERSION,
            network: self.network,
            keys: self.keys.iter().map(|k| hex::encode(k.seed())).collect(),
        };
        let text = serde_json::to_string_pretty(&file).expect("the wallet file serialises");
        let temporary = self.path.with_extension("json.tmp");
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(&temporary).map_err(io)?;
        out.write_all(text.as_bytes()).map_err(io)?;
        out.sync_all().map_err(io)?;
        fs::rename(&temporary, &self.path).map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_open_and_refuse_the_wrong_network_or_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = Wallet::path_in(dir.path());
        assert!(matches!(Wallet::open(&path, Network::Devnet), Err(Error::Missing(_))));
        let created = Wallet::create(&path, Network::Devnet).unwrap();
        assert!(matches!(Wallet::create(&path, Network::Devnet), Err(Error::Exists(_))));
        let opened = Wallet::open(&path, Network::Devnet).unwrap();
        assert_eq!(opened.address(), created.address());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(matches!(Wallet::open(&path, Network::Mainnet), Err(Error::WrongNetwork { .. })));
        fs::write(&path, "{ not json").unwrap();
        assert!(matches!(Wallet::open(&path, Network::Devnet), Err(Error::Corrupt { .. })));
    }
}
