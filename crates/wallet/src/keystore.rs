//! The keystore, `wallet.json`: the secrets (a BIP39 mnemonic and any imported keys),
//! encrypted with a key stretched from the passphrase by argon2id and sealed with
//! XChaCha20-Poly1305; and, in the clear, the public keys derived so far, so that the node can
//! watch the chain for payments without the passphrase (as Bitcoin Core's keypool does).
//!
//! This file is what a user backs up, besides the mnemonic itself.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use peerchain_primitives::{KeyHash, Network, PublicKey, SecretKey};
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::Error;
use crate::derive::{KeyChain, derive_key};

/// The file format this version writes. Version 1 (a plain list of keys, before mnemonics)
/// is read and migrated.
const FORMAT_VERSION: u32 = 2;

/// Keys derived ahead of the last one handed out, on each chain: a restored wallet finds
/// payments to addresses up to this far past the last one it knows to be used.
pub const LOOKAHEAD: u32 = 20;

/// Argon2id settings for new wallets: 64 MiB and three passes, about a third of a second.
const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_ITERATIONS: u32 = 3;

#[derive(serde::Serialize, serde::Deserialize)]
struct KeystoreFile {
    version: u32,
    network: Network,
    /// How `secrets` is encrypted; none for a wallet made without a passphrase.
    encryption: Option<Encryption>,
    /// Hex of the secrets' JSON: sealed under `encryption`, or plain without it.
    secrets: String,
    keys: Vec<KeyRecord>,
    next_receive: u32,
    next_change: u32,
    /// The chain height when the wallet was made: no payment to it can be older.
    birth_height: u32,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Encryption {
    kdf: String,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    salt: String,
    nonce: String,
}

/// Where a key comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "origin", rename_all = "lowercase")]
pub enum Origin {
    /// Derived from the mnemonic.
    Derived {
        /// The chain.
        chain: KeyChain,
        /// Its index on that chain.
        index: u32,
    },
    /// Imported (a version-1 wallet's keys): `index` into the imported secrets.
    Imported {
        /// Which imported secret.
        index: u32,
    },
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct KeyRecord {
    public_key: String,
    #[serde(flatten)]
    origin: Origin,
}

/// The secret part, only ever in memory after decryption (and wiped when dropped).
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Secrets {
    mnemonic: Option<String>,
    imported: Vec<String>,
}

impl Drop for Secrets {
    fn drop(&mut self) {
        self.mnemonic.zeroize();
        self.imported.zeroize();
    }
}

/// The decrypted secrets, able to produce any of the wallet's secret keys.
pub struct Unlocked {
    network: Network,
    seed: Option<Zeroizing<[u8; 64]>>,
    imported: Vec<SecretKey>,
}

impl Unlocked {
    fn from_secrets(secrets: &Secrets, network: Network) -> Result<Unlocked, String> {
        let seed = match &secrets.mnemonic {
            Some(words) => {
                let mnemonic = bip39::Mnemonic::parse(words).map_err(|e| format!("stored mnemonic: {e}"))?;
                Some(Zeroizing::new(mnemonic.to_seed("")))
            }
            None => None,
        };
        let mut imported = Vec::with_capacity(secrets.imported.len());
        for key in &secrets.imported {
            let mut bytes = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(key, &mut bytes[..]).map_err(|e| format!("imported key: {e}"))?;
            imported.push(SecretKey::from_seed(*bytes));
        }
        Ok(Unlocked { network, seed, imported })
    }

    /// The secret key of `origin`.
    pub fn key(&self, origin: Origin) -> Option<SecretKey> {
        match origin {
            Origin::Derived { chain, index } => {
                self.seed.as_ref().map(|seed| derive_key(&seed[..], self.network, chain, index))
            }
            Origin::Imported { index } => self.imported.get(index as usize).cloned(),
        }
    }
}

/// The wallet's keys: public parts always, secret parts after [`Keystore::unlock`].
pub struct Keystore {
    path: PathBuf,
    network: Network,
    encryption: Option<Encryption>,
    secrets_hex: String,
    keys: Vec<(PublicKey, KeyHash, Origin)>,
    next: [u32; 2],
    birth_height: u32,
}

fn chain_slot(chain: KeyChain) -> usize {
    match chain {
        KeyChain::Receive => 0,
        KeyChain::Change => 1,
    }
}

fn associated_data(network: Network) -> Vec<u8> {
    format!("peerchain wallet v{FORMAT_VERSION} {network}").into_bytes()
}

fn stretch(passphrase: &str, encryption: &Encryption) -> Result<Zeroizing<[u8; 32]>, String> {
    let salt = hex::decode(&encryption.salt).map_err(|e| format!("salt: {e}"))?;
    let params = Params::new(encryption.memory_kib, encryption.iterations, encryption.parallelism, Some(32))
        .map_err(|e| format!("argon2 parameters: {e}"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), &salt, &mut key[..])
        .map_err(|e| format!("argon2: {e}"))?;
    Ok(key)
}

impl Keystore {
    /// A new keystore for `mnemonic`, encrypted under `passphrase` (none: stored plain, which
    /// only test networks allow), with the first keys of both chains derived.
    pub(crate) fn create(
        path: &Path,
        network: Network,
        mnemonic: &bip39::Mnemonic,
        passphrase: Option<&str>,
        birth_height: u32,
    ) -> Result<Keystore, Error> {
        if path.exists() {
            return Err(Error::Exists(path.to_owned()));
        }
        let passphrase = passphrase.filter(|p| !p.is_empty());
        if passphrase.is_none() && matches!(network, Network::Mainnet | Network::Testnet) {
            return Err(Error::PassphraseRequired);
        }
        let secrets = Secrets { mnemonic: Some(mnemonic.to_string()), imported: Vec::new() };
        let mut plain = Zeroizing::new(serde_json::to_vec(&secrets).expect("secrets serialise"));
        let (encryption, secrets_hex) = match passphrase {
            None => (None, hex::encode(&plain[..])),
            Some(passphrase) => {
                let mut salt = [0u8; 16];
                let mut nonce = [0u8; 24];
                rand::rngs::OsRng.fill_bytes(&mut salt);
                rand::rngs::OsRng.fill_bytes(&mut nonce);
                let encryption = Encryption {
                    kdf: "argon2id".into(),
                    memory_kib: ARGON2_MEMORY_KIB,
                    iterations: ARGON2_ITERATIONS,
                    parallelism: 1,
                    salt: hex::encode(salt),
                    nonce: hex::encode(nonce),
                };
                let key = stretch(passphrase, &encryption).map_err(|e| Error::Crypto(e.to_string()))?;
                let sealed = XChaCha20Poly1305::new((&*key).into())
                    .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain[..], aad: &associated_data(network) })
                    .map_err(|_| Error::Crypto("encryption failed".into()))?;
                (Some(encryption), hex::encode(sealed))
            }
        };
        plain.zeroize();
        let mut keystore = Keystore {
            path: path.to_owned(),
            network,
            encryption,
            secrets_hex,
            keys: Vec::new(),
            next: [0, 0],
            birth_height,
        };
        let unlocked = Unlocked::from_secrets(&secrets, network).map_err(Error::Crypto)?;
        keystore.top_up(&unlocked);
        keystore.save()?;
        Ok(keystore)
    }

    /// Opens `path`, migrating a version-1 file.
    pub(crate) fn open(path: &Path, network: Network) -> Result<Keystore, Error> {
        Self::open_inner(path, network, true)
    }

    /// Opens `path` to read it only (a version-1 file is migrated in memory, not on disk):
    /// for a client beside a running node.
    pub fn open_read_only(path: &Path, network: Network) -> Result<Keystore, Error> {
        Self::open_inner(path, network, false)
    }

    fn open_inner(path: &Path, network: Network, write_migration: bool) -> Result<Keystore, Error> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::Missing(path.to_owned())),
            Err(source) => return Err(Error::Io { path: path.to_owned(), source }),
        };
        let corrupt = |detail: String| Error::Corrupt { path: path.to_owned(), detail };
        let header: serde_json::Value = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        let version = header.get("version").and_then(|v| v.as_u64());
        let found: Network = header
            .get("network")
            .cloned()
            .and_then(|n| serde_json::from_value(n).ok())
            .ok_or_else(|| corrupt("no network".into()))?;
        if found != network {
            return Err(Error::WrongNetwork { path: path.to_owned(), found, expected: network });
        }
        if version == Some(1) {
            return Self::migrate_v1(path, network, &header, write_migration).map_err(corrupt);
        }
        if version != Some(FORMAT_VERSION as u64) {
            return Err(corrupt(format!("format version {version:?}")));
        }
        let file: KeystoreFile = serde_json::from_value(header).map_err(|e| corrupt(e.to_string()))?;
        let mut keys = Vec::with_capacity(file.keys.len());
        for record in &file.keys {
            let public_key = parse_public_key(&record.public_key).map_err(corrupt)?;
            keys.push((public_key, public_key.key_hash(), record.origin));
        }
        Ok(Keystore {
            path: path.to_owned(),
            network,
            encryption: file.encryption,
            secrets_hex: file.secrets,
            keys,
            next: [file.next_receive, file.next_change],
            birth_height: file.birth_height,
        })
    }

    /// A version-1 wallet held plain hex seeds: they become imported keys of an unencrypted
    /// keystore, the first one its receiving address.
    fn migrate_v1(path: &Path, network: Network, header: &serde_json::Value, write: bool) -> Result<Keystore, String> {
        let seeds: Vec<String> = header
            .get("keys")
            .cloned()
            .and_then(|k| serde_json::from_value(k).ok())
            .ok_or("version-1 wallet without keys")?;
        let secrets = Secrets { mnemonic: None, imported: seeds };
        let unlocked = Unlocked::from_secrets(&secrets, network)?;
        let keys = (0..unlocked.imported.len() as u32)
            .map(|index| {
                let public_key = unlocked.imported[index as usize].public_key();
                (public_key, public_key.key_hash(), Origin::Imported { index })
            })
            .collect::<Vec<_>>();
        if keys.is_empty() {
            return Err("no keys".into());
        }
        let keystore = Keystore {
            path: path.to_owned(),
            network,
            encryption: None,
            secrets_hex: hex::encode(serde_json::to_vec(&secrets).expect("secrets serialise")),
            keys,
            next: [0, 0],
            birth_height: 0,
        };
        if write {
            keystore.save().map_err(|e| e.to_string())?;
        }
        Ok(keystore)
    }

    /// Whether a passphrase guards the secrets.
    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The chain height the wallet was made at.
    pub fn birth_height(&self) -> u32 {
        self.birth_height
    }

    /// Moves the birth height down to `height` (a rescan from earlier than the wallet's
    /// creation was asked for: the words may have been used before).
    pub fn lower_birth_height(&mut self, height: u32) -> Result<(), Error> {
        if height < self.birth_height {
            self.birth_height = height;
            self.save()?;
        }
        Ok(())
    }

    /// Decrypts the secrets. A wallet without a passphrase ignores the one given.
    pub fn unlock(&self, passphrase: Option<&str>) -> Result<Unlocked, Error> {
        let secrets = self.decrypt(passphrase)?;
        Unlocked::from_secrets(&secrets, self.network).map_err(|e| self.corrupt(e))
    }

    /// The mnemonic, for a backup shown to its owner; none for a migrated version-1 wallet.
    pub fn mnemonic(&self, passphrase: Option<&str>) -> Result<Option<Zeroizing<String>>, Error> {
        Ok(self.decrypt(passphrase)?.mnemonic.clone().map(Zeroizing::new))
    }

    fn decrypt(&self, passphrase: Option<&str>) -> Result<Secrets, Error> {
        let sealed = hex::decode(&self.secrets_hex).map_err(|e| self.corrupt(format!("secrets: {e}")))?;
        let plain = match &self.encryption {
            None => Zeroizing::new(sealed),
            Some(encryption) => {
                let passphrase = passphrase.filter(|p| !p.is_empty()).ok_or(Error::PassphraseRequired)?;
                if encryption.kdf != "argon2id" {
                    return Err(self.corrupt(format!("unknown key derivation `{}`", encryption.kdf)));
                }
                let nonce = hex::decode(&encryption.nonce).ok().filter(|n| n.len() == 24);
                let nonce = nonce.ok_or_else(|| self.corrupt("bad nonce".into()))?;
                let key = stretch(passphrase, encryption).map_err(|e| self.corrupt(e))?;
                let cipher = XChaCha20Poly1305::new((&*key).into());
                let payload = Payload { msg: &sealed, aad: &associated_data(self.network) };
                Zeroizing::new(cipher.decrypt(XNonce::from_slice(&nonce), payload).map_err(|_| Error::WrongPassphrase)?)
            }
        };
        serde_json::from_slice(&plain).map_err(|e| self.corrupt(format!("secrets: {e}")))
    }

    fn corrupt(&self, detail: String) -> Error {
        Error::Corrupt { path: self.path.clone(), detail }
    }

    /// Every key hash the wallet owns, with where its key comes from.
    pub fn keys(&self) -> impl Iterator<Item = (&KeyHash, &PublicKey, Origin)> {
        self.keys.iter().map(|(public_key, hash, origin)| (hash, public_key, *origin))
    }

    /// The key of `hash`, if the wallet owns it.
    pub fn find(&self, hash: &KeyHash) -> Option<(PublicKey, Origin)> {
        self.keys.iter().find(|(_, h, _)| h == hash).map(|(p, _, o)| (*p, *o))
    }

    /// The address handed out last on the receive chain (the first one if none was yet).
    pub fn current_receive(&mut self, unlocked: Option<&Unlocked>) -> Result<KeyHash, Error> {
        if self.next[0] == 0 {
            return self.next_key(KeyChain::Receive, unlocked);
        }
        self.derived(KeyChain::Receive, self.next[0] - 1)
            .or_else(|| self.keys.first().map(|k| k.1))
            .ok_or(Error::PoolExhausted)
    }

    fn derived(&self, chain: KeyChain, index: u32) -> Option<KeyHash> {
        self.keys.iter().find(|(_, _, o)| *o == Origin::Derived { chain, index }).map(|k| k.1)
    }

    /// Hands out the next unused key of `chain`, deriving more ahead if the secrets are at
    /// hand (always, for a wallet without a passphrase).
    pub fn next_key(&mut self, chain: KeyChain, unlocked: Option<&Unlocked>) -> Result<KeyHash, Error> {
        let slot = chain_slot(chain);
        let index = self.next[slot];
        if let Some(unlocked) = unlocked {
            self.top_up(unlocked);
        } else if !self.is_encrypted() && self.pool_left(chain) <= LOOKAHEAD / 2 {
            let unlocked = self.unlock(None)?;
            self.top_up(&unlocked);
        }
        let hash = match self.derived(chain, index) {
            Some(hash) => hash,
            // A migrated wallet has no mnemonic: its first key serves.
            None if self.keys.iter().all(|k| matches!(k.2, Origin::Imported { .. })) => {
                return self.keys.first().map(|k| k.1).ok_or(Error::PoolExhausted);
            }
            None => return Err(Error::PoolExhausted),
        };
        self.next[slot] = index + 1;
        self.save()?;
        Ok(hash)
    }

    fn pool_left(&self, chain: KeyChain) -> u32 {
        self.derived_count(chain).saturating_sub(self.next[chain_slot(chain)])
    }

    fn derived_count(&self, chain: KeyChain) -> u32 {
        self.keys.iter().filter(|(_, _, o)| matches!(o, Origin::Derived { chain: c, .. } if *c == chain)).count() as u32
    }

    /// Records that a key was seen used on the chain: later indexes are handed out next.
    /// Returns whether anything changed (the caller then saves and may top up).
    pub fn mark_used(&mut self, hash: &KeyHash) -> bool {
        let Some((_, origin)) = self.find(hash) else { return false };
        if let Origin::Derived { chain, index } = origin {
            let slot = chain_slot(chain);
            if index >= self.next[slot] {
                self.next[slot] = index + 1;
                return true;
            }
        }
        false
    }

    /// Derives keys until each chain has [`LOOKAHEAD`] beyond the next one to hand out.
    /// Returns whether any were added.
    pub fn top_up(&mut self, unlocked: &Unlocked) -> bool {
        let Some(seed) = &unlocked.seed else { return false };
        let mut added = false;
        for chain in [KeyChain::Receive, KeyChain::Change] {
            for index in self.derived_count(chain)..self.next[chain_slot(chain)] + LOOKAHEAD {
                let public_key = derive_key(&seed[..], self.network, chain, index).public_key();
                self.keys.push((public_key, public_key.key_hash(), Origin::Derived { chain, index }));
                added = true;
            }
        }
        added
    }

    /// Tops up without a passphrase if the wallet has none; true if keys were added.
    pub fn top_up_unencrypted(&mut self) -> Result<bool, Error> {
        if self.is_encrypted() {
            return Ok(false);
        }
        let unlocked = self.unlock(None)?;
        Ok(self.top_up(&unlocked))
    }

    /// Writes the file atomically (a temporary file renamed over it), readable by its owner only.
    pub fn save(&self) -> Result<(), Error> {
        let io = |source| Error::Io { path: self.path.clone(), source };
        let file = KeystoreFile {
            version: FORMAT_VERSION,
            network: self.network,
            encryption: self.encryption.clone(),
            secrets: self.secrets_hex.clone(),
            keys: self
                .keys
                .iter()
                .map(|(public_key, _, origin)| KeyRecord { public_key: public_key.to_string(), origin: *origin })
                .collect(),
            next_receive: self.next[0],
            next_change: self.next[1],
            birth_height: self.birth_height,
        };
        let text = serde_json::to_string_pretty(&file).expect("the keystore serialises");
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

fn parse_public_key(text: &str) -> Result<PublicKey, String> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).map_err(|e| format!("public key `{text}`: {e}"))?;
    Ok(PublicKey(bytes))
}
