//! The wallet: keys from a BIP39 mnemonic (SLIP-0010 ed25519 derivation), a keystore
//! encrypted at rest, the wallet's transactions and balances, coin selection and signing.
//!
//! This crate must never know about the chain store, the network or RPC: the node feeds it
//! blocks through [`ChainSource`] and mempool transactions through [`Wallet::add_pending`],
//! and submits the payments it signs.

mod assets;
mod builder;
mod contracts;
mod derive;
mod keystore;
mod ledger;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use peerchain_primitives::{
    Address, Amount, AssetId, Block, BlockHash, FeeRate, KeyHash, Lock, Network, OutPoint, Transaction, TxId, TxOut,
};

pub use builder::{ContractPath, ContractSpend, DUST, MAX_INPUTS, Plan, SignedPair, add_signature};
pub use contracts::{CONTRACT_MODE, EscrowRole, escrow_lock, escrow_parties};
pub use derive::KeyChain;
pub use keystore::{Keystore, LOOKAHEAD, Origin};
pub use ledger::{Balance, Ledger, Spendable, TxStatus, View, WalletTx};

/// What can go wrong in the wallet. Every variant is a clear message for its user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a wallet file failed.
    #[error("wallet file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The ledger database failed.
    #[error("wallet database {path}: {detail}")]
    Store {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// A wallet file is not one this version understands.
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
    #[error("a wallet already exists at {0}; move it away first to make or restore another")]
    Exists(PathBuf),
    /// The mnemonic is not valid BIP39 English words with a good checksum.
    #[error("invalid mnemonic: {0}")]
    InvalidMnemonic(String),
    /// The wallet is encrypted and no passphrase was given, or a new wallet on a public
    /// network was given none.
    #[error(
        "a passphrase is needed: give it with PEERCHAIN_PASSPHRASE or --passphrase-file (wallets without one are for devnet and regtest only)"
    )]
    PassphraseRequired,
    /// The passphrase does not open the keystore.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// Encryption failed.
    #[error("keystore encryption: {0}")]
    Crypto(String),
    /// Every pre-derived address is used and deriving more needs the passphrase.
    #[error("the wallet's pre-derived addresses are used up; give the passphrase to derive more")]
    PoolExhausted,
    /// Not enough spendable coins.
    #[error("insufficient funds: {needed} coins needed with the fee, {available} available")]
    InsufficientFunds {
        /// Amount plus fee.
        needed: Amount,
        /// What the wallet can spend now.
        available: Amount,
    },
    /// Not enough of a token.
    #[error("insufficient {asset}: {needed} base units needed, {available} available")]
    InsufficientAsset {
        /// The asset.
        asset: AssetId,
        /// What the transaction needs.
        needed: Amount,
        /// What the wallet can spend now.
        available: Amount,
    },
    /// The wallet holds no such output, or it is not the wallet's alone to spend.
    #[error("the wallet cannot spend {0:?}")]
    NotSpendable(OutPoint),
    /// A token's name or decimals are not acceptable.
    #[error(transparent)]
    Metadata(#[from] peerchain_primitives::token::MetadataError),
    /// The amount is zero, or would overflow with the fee.
    #[error("the amount must be more than zero and at most 21,000,000 coins")]
    AmountTooLarge,
    /// The amount is below what is worth an output.
    #[error("the amount must be at least {DUST} coins")]
    AmountTooSmall,
    /// Too many small coins for one payment.
    #[error("the payment would need more than {inputs} inputs; send a smaller amount first to consolidate")]
    TooManyInputs {
        /// The limit.
        inputs: usize,
    },
    /// A coin's key is not in the keystore (the keystore and ledger disagree).
    #[error("no key for {0} in the keystore")]
    MissingKey(KeyHash),
    /// Reading the chain failed.
    #[error("reading the chain: {0}")]
    Chain(String),
}

/// The chain as the wallet reads it: the main chain by height.
pub trait ChainSource {
    /// The main chain's height.
    fn tip_height(&self) -> u32;
    /// The main-chain block hash at `height`.
    fn main_hash(&self, height: u32) -> Result<Option<BlockHash>, String>;
    /// The main-chain block at `height`.
    fn block_at(&self, height: u32) -> Result<Option<Block>, String>;
    /// Blocks a coinbase output waits before it may be spent.
    fn coinbase_maturity(&self) -> u32;
}

/// How far a [`Wallet::sync`] call got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    /// The last block scanned.
    pub height: Option<u32>,
    /// Blocks disconnected from the wallet's view (a reorg).
    pub rewound: u32,
    /// Whether blocks remain to scan.
    pub more: bool,
}

/// One line of the history.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// The transaction.
    pub txid: TxId,
    /// What it paid the wallet.
    pub received: Amount,
    /// What it spent of the wallet's coins.
    pub sent: Amount,
    /// Its fee, when the wallet paid it.
    pub fee: Option<Amount>,
    /// A mining reward.
    pub coinbase: bool,
    /// Where it stands.
    pub status: TxStatus,
    /// Confirmations (0 unless confirmed).
    pub confirmations: u32,
    /// The block time, or when the wallet first saw it.
    pub time: u64,
    /// What it moved of other assets: per asset, received and sent.
    pub tokens: Vec<(AssetId, Amount, Amount)>,
}

/// The wallet's keys and transactions.
pub struct Wallet {
    keystore: Keystore,
    ledger: Ledger,
    /// Every key hash the keystore holds, for quick ownership tests.
    owned: HashSet<KeyHash>,
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A fresh 24-word mnemonic from the operating system's random source.
pub fn generate_mnemonic() -> String {
    let mut entropy = zeroize::Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut entropy[..]);
    bip39::Mnemonic::from_entropy(&entropy[..]).expect("32 bytes is a valid entropy length").to_string()
}

/// Checks and normalises a mnemonic (case, spacing).
pub fn parse_mnemonic(words: &str) -> Result<bip39::Mnemonic, Error> {
    let normalised = words.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ");
    bip39::Mnemonic::parse_in(bip39::Language::English, &normalised).map_err(|e| Error::InvalidMnemonic(e.to_string()))
}

impl Wallet {
    /// The keystore file in a data directory.
    pub fn keystore_path(data_dir: &Path) -> PathBuf {
        data_dir.join("wallet.json")
    }

    /// Creates a wallet in `data_dir` from `mnemonic`, encrypted under `passphrase` (none:
    /// unencrypted, for devnet and regtest only). `birth_height` is where scanning starts: the
    /// current height for new words, 0 for restored ones.
    pub fn create(
        data_dir: &Path,
        network: Network,
        mnemonic: &str,
        passphrase: Option<&str>,
        birth_height: u32,
    ) -> Result<Wallet, Error> {
        let mnemonic = parse_mnemonic(mnemonic)?;
        let keystore_path = Self::keystore_path(data_dir);
        if keystore_path.exists() {
            return Err(Error::Exists(keystore_path));
        }
        // A ledger left from an earlier wallet in this directory belongs to other keys.
        let ledger_path = Ledger::path_in(data_dir);
        if ledger_path.exists() {
            std::fs::remove_file(&ledger_path).map_err(|source| Error::Io { path: ledger_path.clone(), source })?;
        }
        let keystore = Keystore::create(&keystore_path, network, &mnemonic, passphrase, birth_height)?;
        Self::assemble(keystore, Ledger::open(&ledger_path)?)
    }

    /// Opens the wallet in `data_dir`.
    pub fn open(data_dir: &Path, network: Network) -> Result<Wallet, Error> {
        let keystore = Keystore::open(&Self::keystore_path(data_dir), network)?;
        Self::assemble(keystore, Ledger::open(&Ledger::path_in(data_dir))?)
    }

    fn assemble(keystore: Keystore, ledger: Ledger) -> Result<Wallet, Error> {
        let owned = keystore.keys().map(|(hash, _, _)| *hash).collect();
        Ok(Wallet { keystore, ledger, owned })
    }

    /// The keystore.
    pub fn keystore(&self) -> &Keystore {
        &self.keystore
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.keystore.network()
    }

    fn refresh_owned(&mut self) {
        self.owned = self.keystore.keys().map(|(hash, _, _)| *hash).collect();
    }

    fn view(&self, tip_height: u32, coinbase_maturity: u32) -> View<'_> {
        View { owned: &self.owned, tip_height, coinbase_maturity }
    }

    /// The current receiving address; a new one with `new` (which may need the passphrase
    /// once the pre-derived ones are used up).
    pub fn address(&mut self, new: bool, passphrase: Option<&str>) -> Result<Address, Error> {
        let unlocked = match passphrase {
            Some(p) if self.keystore.is_encrypted() => Some(self.keystore.unlock(Some(p))?),
            _ => None,
        };
        let hash = if new {
            self.keystore.next_key(KeyChain::Receive, unlocked.as_ref())?
        } else {
            self.keystore.current_receive(unlocked.as_ref())?
        };
        self.refresh_owned();
        Ok(Address::new(self.network(), hash))
    }

    /// Scans main-chain blocks the wallet has not seen, at most `max_blocks` of them, first
    /// undoing any it saw that a reorg took off the main chain.
    pub fn sync(&mut self, chain: &impl ChainSource, max_blocks: u32) -> Result<SyncProgress, Error> {
        let mut rewound = 0;
        // Find the last scanned block still on the main chain.
        let start = loop {
            let Some((height, hash)) = self.ledger.scan_tip() else { break self.keystore.birth_height() };
            if chain.main_hash(height).map_err(Error::Chain)? == Some(hash) {
                break height + 1;
            }
            let below = height.checked_sub(1);
            let known = match below {
                Some(h) => self.ledger.scanned_hash(h)?.map(|_| h),
                None => None,
            };
            self.ledger.rewind_to(known)?;
            rewound += 1;
            if known.is_none() {
                break self.keystore.birth_height();
            }
        };
        let tip = chain.tip_height();
        let end = tip.min(start.saturating_add(max_blocks.max(1)) - 1);
        let maturity = chain.coinbase_maturity();
        for height in start..=end {
            let Some(block) = chain.block_at(height).map_err(Error::Chain)? else { break };
            let used = {
                let view = View { owned: &self.owned, tip_height: tip, coinbase_maturity: maturity };
                self.ledger.connect_block(&block, height, &view)?
            };
            let mut moved = false;
            for hash in &used {
                moved |= self.keystore.mark_used(hash);
            }
            if moved {
                self.keystore.top_up_unencrypted()?;
                self.keystore.save()?;
                self.refresh_owned();
            }
        }
        Ok(SyncProgress {
            height: self.ledger.scan_tip().map(|(h, _)| h),
            rewound,
            more: self.ledger.scan_tip().is_none_or(|(h, _)| h < tip),
        })
    }

    /// The last block scanned, if any.
    pub fn scanned_height(&self) -> Option<u32> {
        self.ledger.scan_tip().map(|(height, _)| height)
    }

    /// Forgets what the scan found and starts again from `from` (the wallet's birth if
    /// none): after a restore, or to find payments to keys derived since.
    pub fn rescan(&mut self, from: Option<u32>) -> Result<(), Error> {
        if let Some(height) = from {
            self.keystore.lower_birth_height(height)?;
        }
        let keep = from.or(Some(self.keystore.birth_height())).and_then(|h| h.checked_sub(1));
        let keep = match keep {
            Some(h) if self.ledger.scanned_hash(h)?.is_some() => Some(h),
            _ => None,
        };
        self.ledger.rewind_to(keep)
    }

    /// What a mempool filter needs: the wallet's key hashes and its unspent outpoints.
    pub fn watch_list(&self) -> WatchList {
        let outpoints = self
            .ledger
            .transactions()
            .flat_map(|w| {
                let txid = w.tx.txid();
                let view = self.view(0, 0);
                w.tx.outputs
                    .iter()
                    .enumerate()
                    .filter(move |(_, o)| view.owner(o).is_some() || view.involves(o))
                    .map(move |(i, _)| OutPoint::new(txid, i as u32))
            })
            .collect();
        WatchList { key_hashes: self.owned.clone(), outpoints }
    }

    /// Adds a transaction no block holds yet: from the mempool, or made by this wallet.
    /// Returns whether it was new to the wallet.
    pub fn add_pending(&mut self, tx: Transaction, from_me: bool) -> Result<bool, Error> {
        self.ledger.add_pending(tx, from_me, now())
    }

    /// Forgets payments to the wallet that neither a block nor the mempool (`in_mempool`)
    /// holds any more and that were first seen over `grace` ago (see
    /// [`ledger::Ledger::forget_vanished_incoming`]); returns their ids.
    pub fn forget_vanished_incoming(
        &mut self,
        in_mempool: &std::collections::HashSet<TxId>,
        grace: std::time::Duration,
    ) -> Result<Vec<TxId>, Error> {
        self.ledger.forget_vanished_incoming(in_mempool, now().saturating_sub(grace.as_secs()))
    }

    /// The wallet's transactions that no block holds (to check against the mempool and
    /// broadcast again).
    pub fn pending(&self) -> Vec<(Transaction, bool)> {
        let pending: Vec<(Transaction, bool)> = self
            .ledger
            .transactions()
            .filter(|w| w.status == TxStatus::Pending)
            .map(|w| (w.tx.clone(), w.from_me))
            .collect();
        parents_first(pending)
    }

    /// The balance with the chain at `tip_height`.
    pub fn balance(&self, tip_height: u32, coinbase_maturity: u32) -> Balance {
        self.ledger.balance(&self.view(tip_height, coinbase_maturity))
    }

    /// The history, newest first.
    pub fn history(&self, tip_height: u32, coinbase_maturity: u32) -> Vec<HistoryEntry> {
        let view = self.view(tip_height, coinbase_maturity);
        let mut entries: Vec<HistoryEntry> = self
            .ledger
            .transactions()
            .map(|wtx| {
                let (received, sent, fee) = self.ledger.amounts(wtx, &view);
                HistoryEntry {
                    txid: wtx.tx.txid(),
                    received,
                    sent,
                    fee: fee.filter(|_| sent > Amount::ZERO),
                    coinbase: wtx.tx.is_coinbase(),
                    status: wtx.status,
                    confirmations: view.confirmations(&wtx.status),
                    time: match wtx.status {
                        TxStatus::Confirmed { time, .. } => time,
                        _ => wtx.first_seen,
                    },
                    tokens: self
                        .ledger
                        .token_moves(wtx, &view)
                        .into_iter()
                        .map(|(asset, (received, sent))| (asset, received, sent))
                        .collect(),
                }
            })
            .collect();
        // Newest first: unconfirmed ones, then by height, then by time.
        let height = |e: &HistoryEntry| match e.status {
            TxStatus::Confirmed { height, .. } => Some(height),
            _ => None,
        };
        entries.sort_by_key(|e| (std::cmp::Reverse((height(e).is_none(), height(e), e.time)), e.txid));
        entries
    }

    /// The balance of every asset the wallet holds, the coin always among them.
    pub fn balances(&self, tip_height: u32, coinbase_maturity: u32) -> std::collections::BTreeMap<AssetId, Balance> {
        self.ledger.balances(&self.view(tip_height, coinbase_maturity))
    }

    /// What the wallet may spend now, of every asset.
    pub fn spendable(&self, tip_height: u32, coinbase_maturity: u32) -> Vec<Spendable> {
        self.ledger.spendable(&self.view(tip_height, coinbase_maturity))
    }

    /// One of the wallet's spendable outputs, set aside or not.
    pub fn own_output(&self, outpoint: &OutPoint, tip_height: u32, coinbase_maturity: u32) -> Option<Spendable> {
        self.ledger
            .spendable_with(&self.view(tip_height, coinbase_maturity), true)
            .into_iter()
            .find(|c| c.outpoint == *outpoint)
    }

    /// Every output under a contract lock that names one of the wallet's keys (multisig,
    /// escrow, hash-time lock, loan), spent or not: where it stands and what spent it.
    pub fn contracts(&self) -> Vec<Contract> {
        let view = self.view(0, 0);
        let mut found = Vec::new();
        for wtx in self.ledger.transactions().filter(|w| !matches!(w.status, TxStatus::Conflicted { .. })) {
            let txid = wtx.tx.txid();
            for (index, output) in wtx.tx.outputs.iter().enumerate() {
                let outpoint = OutPoint::new(txid, index as u32);
                if view.involves(output) {
                    let spent_by = self.ledger.spender(&outpoint).map(|spender| {
                        let input = spender.tx.inputs.iter().find(|i| i.prev_out == outpoint).expect("it spends it");
                        (spender.tx.clone(), input.witness.clone(), spender.status)
                    });
                    found.push(Contract { outpoint, output: output.clone(), created: wtx.status, spent_by });
                }
            }
        }
        found
    }

    /// The public key of one of the wallet's key hashes.
    pub fn public_key(&self, hash: &KeyHash) -> Option<peerchain_primitives::PublicKey> {
        self.keystore.find(hash).map(|(key, _)| key)
    }

    /// Adds the wallet's signature (over all inputs and outputs) to input `input` of `tx`,
    /// which spends `spent` under a multisig or escrow lock naming one of the wallet's keys;
    /// returns whether the wallet had such a key.
    pub fn cosign(
        &mut self,
        tx: &mut Transaction,
        input: usize,
        spent: &TxOut,
        passphrase: Option<&str>,
    ) -> Result<bool, Error> {
        let keys = match &spent.lock {
            Lock::Multisig { keys, .. } | Lock::Escrow { keys, .. } => keys,
            _ => return Ok(false),
        };
        let Some((index, hash)) =
            keys.iter().enumerate().map(|(i, k)| (i as u8, k.key_hash())).find(|(_, h)| self.owned.contains(h))
        else {
            return Ok(false);
        };
        let unlocked = self.keystore.unlock(passphrase)?;
        let key =
            self.keystore.find(&hash).and_then(|(_, origin)| unlocked.key(origin)).ok_or(Error::MissingKey(hash))?;
        let mode = peerchain_primitives::SigHashMode::All;
        let message = tx.signature_hash(input, spent, mode, self.network().magic());
        let signature = peerchain_primitives::TxSignature { mode, signature: key.sign(&message) };
        add_signature(tx, input, index, signature);
        Ok(true)
    }

    /// A tracked transaction's output, whoever it pays.
    pub fn output(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        self.ledger.output(outpoint)
    }

    /// Sets outputs aside until block `until`, so that coin selection leaves them alone.
    pub fn reserve(&mut self, outpoints: &[OutPoint], until: u32) -> Result<(), Error> {
        self.ledger.reserve(outpoints, until)
    }

    /// Ends the reservations of `outpoints` and every one that lapsed by `tip_height`.
    pub fn release(&mut self, outpoints: &[OutPoint], tip_height: u32) -> Result<(), Error> {
        self.ledger.release(outpoints, tip_height)
    }

    /// Chooses coins, makes change to a fresh change address and signs a payment of
    /// `amount` to `to` at `fee_rate`. The wallet records the payment only when
    /// [`Wallet::add_pending`] is called with it after the node accepted it.
    pub fn create_payment(
        &mut self,
        to: &Address,
        amount: Amount,
        fee_rate: FeeRate,
        passphrase: Option<&str>,
        tip_height: u32,
        coinbase_maturity: u32,
    ) -> Result<Payment, Error> {
        self.send_asset(to, AssetId::Coin, amount, fee_rate, passphrase, tip_height, coinbase_maturity)
    }

    /// Lays out, funds and signs `plan`: coins chosen per asset, change to one fresh change
    /// address. Nothing is recorded until [`Wallet::add_pending`].
    pub fn build(
        &mut self,
        plan: Plan,
        passphrase: Option<&str>,
        tip_height: u32,
        coinbase_maturity: u32,
    ) -> Result<Payment, Error> {
        let unlocked = self.keystore.unlock(passphrase)?;
        let coins = self.spendable(tip_height, coinbase_maturity);
        for coin in &plan.must_spend {
            if !coins.iter().any(|c| c.outpoint == coin.outpoint)
                && !self.ledger.is_reserved(&coin.outpoint, tip_height)
            {
                return Err(Error::NotSpendable(coin.outpoint));
            }
        }
        // Draft with a placeholder change key first, so that a failed payment uses no address.
        let mut draft = builder::draft(plan, coins, KeyHash::ZERO)?;
        if !draft.change.is_empty() {
            let change = self.keystore.next_key(KeyChain::Change, Some(&unlocked))?;
            self.refresh_owned();
            for index in &draft.change {
                draft.tx.outputs[*index].lock = Lock::Key(change);
            }
        }
        let fee = draft.fee;
        let keystore = &self.keystore;
        let tx = builder::sign(draft, self.network(), |hash| {
            keystore.find(hash).and_then(|(_, origin)| unlocked.key(origin))
        })?;
        Ok(Payment { tx, fee })
    }
}

fn check_amount(asset: AssetId, amount: Amount) -> Result<(), Error> {
    if amount == Amount::ZERO || !amount.is_valid_money() {
        return Err(Error::AmountTooLarge);
    }
    // Dust is a coin notion: a token's base unit may be worth anything.
    if asset == AssetId::Coin && amount < DUST {
        return Err(Error::AmountTooSmall);
    }
    Ok(())
}

/// An output under a contract lock naming one of the wallet's keys.
#[derive(Debug, Clone)]
pub struct Contract {
    /// Where it is.
    pub outpoint: OutPoint,
    /// What it is.
    pub output: TxOut,
    /// Where the transaction that made it stands.
    pub created: TxStatus,
    /// The tracked transaction that spends it, the witness it spends it with, and where
    /// that transaction stands.
    pub spent_by: Option<(Transaction, peerchain_primitives::Witness, TxStatus)>,
}

/// A signed payment.
#[derive(Debug, Clone)]
pub struct Payment {
    /// The transaction.
    pub tx: Transaction,
    /// Its fee.
    pub fee: Amount,
}

/// The wallet's key hashes and outputs, to pick its transactions out of the mempool.
#[derive(Debug, Clone, Default)]
pub struct WatchList {
    key_hashes: HashSet<KeyHash>,
    outpoints: HashSet<OutPoint>,
}

impl WatchList {
    /// Whether `tx` pays the wallet or spends one of its outputs.
    pub fn matches(&self, tx: &Transaction) -> bool {
        let view = View { owned: &self.key_hashes, tip_height: 0, coinbase_maturity: 0 };
        tx.outputs.iter().any(|o| view.owner(o).is_some() || view.involves(o))
            || tx.inputs.iter().any(|i| self.outpoints.contains(&i.prev_out))
    }
}

/// The node's wallet, shared between the task that keeps it in step with the chain and the
/// RPC methods; empty until one is created.
#[derive(Clone, Default)]
pub struct SharedWallet(Arc<Mutex<Option<Wallet>>>);

impl SharedWallet {
    /// A slot holding `wallet`.
    pub fn new(wallet: Option<Wallet>) -> Self {
        Self(Arc::new(Mutex::new(wallet)))
    }

    /// Locks the slot. A panic while it was held leaves the wallet as the last completed
    /// write left it (every write is atomic on disk), so the lock is taken anyway.
    pub fn lock(&self) -> MutexGuard<'_, Option<Wallet>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The address mining rewards go to by default: the wallet's current receiving address. On
/// devnet and regtest a wallet without a passphrase is made on first use (its words can be
/// shown with `peerchain wallet mnemonic`); elsewhere the user must create one first.
pub fn mining_address(
    shared: &SharedWallet,
    data_dir: &Path,
    network: Network,
    tip_height: u32,
) -> Result<Address, Error> {
    let mut slot = shared.lock();
    if slot.is_none() {
        let wallet = match Wallet::open(data_dir, network) {
            Err(Error::Missing(_)) if matches!(network, Network::Devnet | Network::Regtest) => {
                Wallet::create(data_dir, network, &generate_mnemonic(), None, tip_height)?
            }
            other => other?,
        };
        *slot = Some(wallet);
    }
    let wallet = slot.as_mut().expect("filled above");
    wallet.address(false, None)
}

/// The secret key at position `index` of `chain` for `mnemonic` on `network`: what a wallet
/// restored from these words signs with (for tools and tests that sign by hand).
pub fn key_from_mnemonic(
    mnemonic: &str,
    network: Network,
    chain: KeyChain,
    index: u32,
) -> Result<peerchain_primitives::SecretKey, Error> {
    let seed = zeroize::Zeroizing::new(parse_mnemonic(mnemonic)?.to_seed(""));
    Ok(derive::derive_key(&seed[..], network, chain, index))
}

/// `pending` ordered so that a transaction spending another's output comes after it.
/// Correctness: payments submitted again after a crash (the mempool does not survive one) go
/// in this order; a child before its parent is refused for a missing input and would wait for
/// the next rebroadcast.
fn parents_first(pending: Vec<(Transaction, bool)>) -> Vec<(Transaction, bool)> {
    let txids: Vec<TxId> = pending.iter().map(|(tx, _)| tx.txid()).collect();
    let position: std::collections::HashMap<TxId, usize> = txids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    // For each transaction, the pending transactions it spends from.
    let parents: Vec<Vec<usize>> = pending
        .iter()
        .map(|(tx, _)| tx.inputs.iter().filter_map(|input| position.get(&input.prev_out.txid).copied()).collect())
        .collect();
    let mut placed = vec![false; pending.len()];
    let mut order = Vec::with_capacity(pending.len());
    // Each pass places every transaction whose parents are placed; a cycle (impossible for
    // valid transactions) would leave the rest, placed last in their stored order.
    loop {
        let before = order.len();
        for i in 0..pending.len() {
            if !placed[i] && parents[i].iter().all(|&p| placed[p] || p == i) {
                placed[i] = true;
                order.push(i);
            }
        }
        if order.len() == before {
            break;
        }
    }
    order.extend((0..pending.len()).filter(|&i| !placed[i]));
    let mut slots: Vec<Option<(Transaction, bool)>> = pending.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

#[cfg(test)]
mod pending_order_tests {
    use super::*;
    use peerchain_primitives::{Amount, KeyHash, OutPoint, TxIn, TxOut, Witness};

    fn spending(parent: TxId, tag: u64) -> Transaction {
        Transaction {
            version: 1,
            inputs: vec![TxIn {
                prev_out: OutPoint::new(parent, 0),
                witness: Witness::Multisig { signatures: vec![] },
            }],
            outputs: vec![TxOut::coins_to(Amount::from_units(tag), KeyHash([1; 32]))],
            lock_time: 0,
        }
    }

    #[test]
    fn pending_payments_come_parents_first_whatever_their_stored_order() {
        let a = spending(TxId([9; 32]), 1);
        let b = spending(a.txid(), 2);
        let c = spending(b.txid(), 3);
        let other = spending(TxId([8; 32]), 4);
        let stored = vec![(c.clone(), true), (other.clone(), false), (b.clone(), true), (a.clone(), true)];
        let ids: Vec<TxId> = parents_first(stored).iter().map(|(tx, _)| tx.txid()).collect();
        let at = |tx: &Transaction| ids.iter().position(|id| *id == tx.txid()).unwrap();
        assert_eq!(ids.len(), 4);
        assert!(at(&a) < at(&b) && at(&b) < at(&c), "{ids:?}");
    }
}
