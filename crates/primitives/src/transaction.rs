//! Transactions in the UTXO model: inputs spend earlier outputs by proving they may, outputs
//! lock an amount of one asset to a condition.

use sha2::{Digest, Sha256};

use crate::amount::Amount;
pub use crate::asset::AssetId;
use crate::encode::{Decode, DecodeError, Encode, Reader, Sink, put_bytes, put_list, put_varint};
use crate::hash::{KeyHash, LockHash, TxId, WtxId, finish_sha256d, hash_encoded};
use crate::keys::{PublicKey, Signature};

/// Decoding caps. They only bound memory; consensus sets the real limits through block size.
pub mod limits {
    /// Most inputs or outputs a decoded transaction may list.
    pub const MAX_LIST: usize = 100_000;
    /// Most keys in a multisig lock.
    pub const MAX_MULTISIG_KEYS: usize = 16;
    /// Longest hash-lock preimage.
    pub const MAX_PREIMAGE: usize = 64;
    /// Longest free-form data in a coinbase witness.
    pub const MAX_COINBASE_EXTRA: usize = 100;
    /// Longest data a burn output carries (token metadata, receipts).
    pub const MAX_BURN_DATA: usize = 80;
}

/// A reference to one output of an earlier transaction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct OutPoint {
    /// The transaction that created the output.
    pub txid: TxId,
    /// The output's position in it.
    pub index: u32,
}

impl OutPoint {
    /// What a coinbase input points at: nothing.
    pub const NULL: OutPoint = OutPoint { txid: TxId::ZERO, index: u32::MAX };

    /// The outpoint of output `index` of `txid`.
    pub fn new(txid: TxId, index: u32) -> Self {
        Self { txid, index }
    }

    /// Whether this is the coinbase's null reference.
    pub fn is_null(&self) -> bool {
        *self == Self::NULL
    }

    /// A fixed 36-byte key, ordered by transaction then index.
    pub fn to_key(&self) -> [u8; 36] {
        let mut key = [0u8; 36];
        key[..32].copy_from_slice(&self.txid.0);
        key[32..].copy_from_slice(&self.index.to_be_bytes());
        key
    }
}

impl Encode for OutPoint {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        self.txid.encode_to(sink);
        self.index.encode_to(sink);
    }
}

impl Decode for OutPoint {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { txid: TxId::decode(reader)?, index: reader.u32("output index")? })
    }
}

/// The condition an output's spender must meet.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Lock {
    /// A signature by the key with this hash (pay to key hash).
    Key(KeyHash),
    /// Signatures by `threshold` of `keys`.
    Multisig {
        /// How many signatures are needed.
        threshold: u8,
        /// The keys that may sign, in order.
        keys: Vec<PublicKey>,
    },
    /// Either the preimage of `hash` and a signature by `claim`, or, from block height
    /// `refund_height` on, a signature by `refund`. Atomic swaps are built on this.
    HashTimeLock {
        /// SHA-256 of the secret that unlocks the claim path.
        hash: LockHash,
        /// Who may claim with the secret.
        claim: KeyHash,
        /// Who may take the output back after the timeout.
        refund: KeyHash,
        /// The first block height at which the refund path opens.
        refund_height: u32,
    },
    /// Never spendable: the output is destroyed, and never enters the UTXO set. Burns an
    /// asset explicitly (conservation counts it as paid out) and carries data, such as a
    /// token's metadata.
    Burn {
        /// At most [`limits::MAX_BURN_DATA`] bytes.
        data: Vec<u8>,
    },
    /// Escrow: signatures by `threshold` of `keys` at any time (spent with
    /// [`Witness::Multisig`]), or the `fallback` key alone once `after` has come (spent with
    /// [`Witness::TimeLockRefund`]). The timeout path is signed when it is used, so its fee
    /// is chosen then and no pre-signed refund can be lost.
    Escrow {
        /// How many signatures the shared path needs.
        threshold: u8,
        /// The keys that may sign it, in order.
        keys: Vec<PublicKey>,
        /// When the fallback path opens.
        after: After,
        /// Who may take the output alone after it.
        fallback: KeyHash,
    },
    /// A loan's collateral: the borrower takes it back, at any time, only in a transaction
    /// whose output at the same index pays `repay_amount` (or more) of `repay_asset` to the
    /// lender (spent with [`Witness::Key`]); the lender takes it `term` blocks after the
    /// output was confirmed (spent with [`Witness::TimeLockRefund`]).
    Loan {
        /// The borrower, who repays.
        borrower: KeyHash,
        /// The lender, who is repaid or claims.
        lender: KeyHash,
        /// What the repayment is in.
        repay_asset: AssetId,
        /// How much the lender must be paid.
        repay_amount: Amount,
        /// Blocks from the output's confirmation until the lender may claim.
        term: u32,
    },
}

/// When a timeout path opens.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum After {
    /// At this block height.
    Height(u32),
    /// This many blocks after the output was confirmed.
    Age(u32),
}

impl After {
    /// The first height at which the path opens, for an output confirmed at `coin_height`.
    pub fn opens_at(self, coin_height: u32) -> u32 {
        match self {
            After::Height(height) => height,
            After::Age(blocks) => coin_height.saturating_add(blocks),
        }
    }
}

impl Encode for After {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        match self {
            After::Height(height) => {
                sink.put(&[0]);
                height.encode_to(sink);
            }
            After::Age(blocks) => {
                sink.put(&[1]);
                blocks.encode_to(sink);
            }
        }
    }
}

impl Decode for After {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("after")? {
            0 => Ok(After::Height(reader.u32("after height")?)),
            1 => Ok(After::Age(reader.u32("after age")?)),
            tag => Err(DecodeError::UnknownTag { what: "after", tag }),
        }
    }
}

impl Lock {
    /// Whether outputs under this lock are destroyed rather than kept in the UTXO set.
    pub fn is_burn(&self) -> bool {
        matches!(self, Lock::Burn { .. })
    }
}

impl Encode for Lock {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        match self {
            Lock::Key(hash) => {
                sink.put(&[0]);
                hash.encode_to(sink);
            }
            Lock::Multisig { threshold, keys } => {
                sink.put(&[1, *threshold]);
                put_list(sink, keys);
            }
            Lock::HashTimeLock { hash, claim, refund, refund_height } => {
                sink.put(&[2]);
                hash.encode_to(sink);
                claim.encode_to(sink);
                refund.encode_to(sink);
                refund_height.encode_to(sink);
            }
            Lock::Burn { data } => {
                sink.put(&[3]);
                put_bytes(sink, data);
            }
            Lock::Escrow { threshold, keys, after, fallback } => {
                sink.put(&[4, *threshold]);
                put_list(sink, keys);
                after.encode_to(sink);
                fallback.encode_to(sink);
            }
            Lock::Loan { borrower, lender, repay_asset, repay_amount, term } => {
                sink.put(&[5]);
                borrower.encode_to(sink);
                lender.encode_to(sink);
                repay_asset.encode_to(sink);
                repay_amount.encode_to(sink);
                term.encode_to(sink);
            }
        }
    }
}

impl Decode for Lock {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("lock")? {
            0 => Ok(Lock::Key(KeyHash::decode(reader)?)),
            1 => {
                let threshold = reader.u8("multisig threshold")?;
                let keys = reader.list("multisig keys", limits::MAX_MULTISIG_KEYS)?;
                Ok(Lock::Multisig { threshold, keys })
            }
            2 => Ok(Lock::HashTimeLock {
                hash: LockHash::decode(reader)?,
                claim: KeyHash::decode(reader)?,
                refund: KeyHash::decode(reader)?,
                refund_height: reader.u32("refund height")?,
            }),
            3 => Ok(Lock::Burn { data: reader.bytes("burn data", limits::MAX_BURN_DATA)?.to_vec() }),
            4 => Ok(Lock::Escrow {
                threshold: reader.u8("escrow threshold")?,
                keys: reader.list("escrow keys", limits::MAX_MULTISIG_KEYS)?,
                after: After::decode(reader)?,
                fallback: KeyHash::decode(reader)?,
            }),
            5 => Ok(Lock::Loan {
                borrower: KeyHash::decode(reader)?,
                lender: KeyHash::decode(reader)?,
                repay_asset: AssetId::decode(reader)?,
                repay_amount: Amount::decode(reader)?,
                term: reader.u32("loan term")?,
            }),
            tag => Err(DecodeError::UnknownTag { what: "lock", tag }),
        }
    }
}

/// An amount of one asset under a lock.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct TxOut {
    /// Which asset.
    pub asset: AssetId,
    /// How much of it.
    pub amount: Amount,
    /// Who may spend it.
    pub lock: Lock,
}

impl TxOut {
    /// Coins paid to a key hash.
    pub fn coins_to(amount: Amount, key_hash: KeyHash) -> Self {
        Self { asset: AssetId::Coin, amount, lock: Lock::Key(key_hash) }
    }
}

impl Encode for TxOut {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        self.asset.encode_to(sink);
        self.amount.encode_to(sink);
        self.lock.encode_to(sink);
    }
}

impl Decode for TxOut {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { asset: AssetId::decode(reader)?, amount: Amount::decode(reader)?, lock: Lock::decode(reader)? })
    }
}

/// What part of the transaction a signature commits to, and until when it is valid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SigHashMode {
    /// Every input and every output: the transaction cannot change at all.
    All,
    /// Only the signer's own input and the output at the same index, so that a counterparty
    /// can add its own inputs and outputs to a partially signed transaction.
    SingleInputOutput,
    /// [`SigHashMode::All`], valid only in blocks up to this height.
    AllUntil(u32),
    /// [`SigHashMode::SingleInputOutput`], valid only in blocks up to this height: an offer
    /// that expires on chain, for free.
    SingleInputOutputUntil(u32),
}

impl SigHashMode {
    fn tag(self) -> u8 {
        match self {
            SigHashMode::All => 0,
            SigHashMode::SingleInputOutput => 1,
            SigHashMode::AllUntil(_) => 2,
            SigHashMode::SingleInputOutputUntil(_) => 3,
        }
    }

    /// The last block height the signature is valid at, if it expires.
    pub fn expiry(self) -> Option<u32> {
        match self {
            SigHashMode::AllUntil(height) | SigHashMode::SingleInputOutputUntil(height) => Some(height),
            SigHashMode::All | SigHashMode::SingleInputOutput => None,
        }
    }

    /// Whether the signature commits to every input and output (else to its own input and
    /// the output paired with it).
    pub fn commits_to_all(self) -> bool {
        matches!(self, SigHashMode::All | SigHashMode::AllUntil(_))
    }
}

/// A signature and the part of the transaction it covers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TxSignature {
    /// What it commits to.
    pub mode: SigHashMode,
    /// The ed25519 signature over the signature hash.
    pub signature: Signature,
}

impl Encode for TxSignature {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        sink.put(&[self.mode.tag()]);
        if let Some(height) = self.mode.expiry() {
            height.encode_to(sink);
        }
        self.signature.encode_to(sink);
    }
}

impl Decode for TxSignature {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mode = match reader.u8("signature hash mode")? {
            0 => SigHashMode::All,
            1 => SigHashMode::SingleInputOutput,
            2 => SigHashMode::AllUntil(reader.u32("signature expiry")?),
            3 => SigHashMode::SingleInputOutputUntil(reader.u32("signature expiry")?),
            tag => return Err(DecodeError::UnknownTag { what: "signature hash mode", tag }),
        };
        Ok(Self { mode, signature: Signature::decode(reader)? })
    }
}

/// The proof that an input may spend the output it points at.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Witness {
    /// The input of a coinbase: the block height (which makes every coinbase's id unique)
    /// and a few free bytes.
    Coinbase {
        /// The height of the block the coinbase is in.
        height: u32,
        /// Free bytes for the miner.
        extra: Vec<u8>,
    },
    /// Spends a [`Lock::Key`].
    Key {
        /// The key whose hash the lock names.
        public_key: PublicKey,
        /// Its signature.
        signature: TxSignature,
    },
    /// Spends a [`Lock::Multisig`]: exactly `threshold` signatures by distinct keys, listed by
    /// increasing key index.
    Multisig {
        /// Pairs of key index and signature.
        signatures: Vec<(u8, TxSignature)>,
    },
    /// Spends a [`Lock::HashTimeLock`] by its claim path.
    HashLockClaim {
        /// The secret whose SHA-256 the lock names.
        preimage: Vec<u8>,
        /// The claim key.
        public_key: PublicKey,
        /// Its signature.
        signature: TxSignature,
    },
    /// Spends a [`Lock::HashTimeLock`] by its refund path, once the refund height is reached.
    TimeLockRefund {
        /// The refund key.
        public_key: PublicKey,
        /// Its signature.
        signature: TxSignature,
    },
}

impl Witness {
    /// The signatures it carries.
    pub fn signatures(&self) -> impl Iterator<Item = &TxSignature> {
        let (single, many): (Option<&TxSignature>, &[(u8, TxSignature)]) = match self {
            Witness::Coinbase { .. } => (None, &[]),
            Witness::Key { signature, .. }
            | Witness::HashLockClaim { signature, .. }
            | Witness::TimeLockRefund { signature, .. } => (Some(signature), &[]),
            Witness::Multisig { signatures } => (None, signatures),
        };
        single.into_iter().chain(many.iter().map(|(_, signature)| signature))
    }
}

impl Encode for Witness {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        match self {
            Witness::Coinbase { height, extra } => {
                sink.put(&[0]);
                height.encode_to(sink);
                put_bytes(sink, extra);
            }
            Witness::Key { public_key, signature } => {
                sink.put(&[1]);
                public_key.encode_to(sink);
                signature.encode_to(sink);
            }
            Witness::Multisig { signatures } => {
                sink.put(&[2]);
                put_varint(sink, signatures.len() as u64);
                for (index, signature) in signatures {
                    sink.put(&[*index]);
                    signature.encode_to(sink);
                }
            }
            Witness::HashLockClaim { preimage, public_key, signature } => {
                sink.put(&[3]);
                put_bytes(sink, preimage);
                public_key.encode_to(sink);
                signature.encode_to(sink);
            }
            Witness::TimeLockRefund { public_key, signature } => {
                sink.put(&[4]);
                public_key.encode_to(sink);
                signature.encode_to(sink);
            }
        }
    }
}

impl Decode for Witness {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("witness")? {
            0 => Ok(Witness::Coinbase {
                height: reader.u32("coinbase height")?,
                extra: reader.bytes("coinbase extra", limits::MAX_COINBASE_EXTRA)?.to_vec(),
            }),
            1 => Ok(Witness::Key { public_key: PublicKey::decode(reader)?, signature: TxSignature::decode(reader)? }),
            2 => {
                let count = reader.length("multisig signatures", limits::MAX_MULTISIG_KEYS)?;
                let mut signatures = Vec::with_capacity(count);
                for _ in 0..count {
                    signatures.push((reader.u8("multisig key index")?, TxSignature::decode(reader)?));
                }
                Ok(Witness::Multisig { signatures })
            }
            3 => Ok(Witness::HashLockClaim {
                preimage: reader.bytes("preimage", limits::MAX_PREIMAGE)?.to_vec(),
                public_key: PublicKey::decode(reader)?,
                signature: TxSignature::decode(reader)?,
            }),
            4 => Ok(Witness::TimeLockRefund {
                public_key: PublicKey::decode(reader)?,
                signature: TxSignature::decode(reader)?,
            }),
            tag => Err(DecodeError::UnknownTag { what: "witness", tag }),
        }
    }
}

/// A transaction input: the output it spends and the proof that it may.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct TxIn {
    /// The output being spent.
    pub prev_out: OutPoint,
    /// The proof.
    pub witness: Witness,
}

impl Encode for TxIn {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        self.prev_out.encode_to(sink);
        self.witness.encode_to(sink);
    }
}

impl Decode for TxIn {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { prev_out: OutPoint::decode(reader)?, witness: Witness::decode(reader)? })
    }
}

/// A transfer: spends outputs, creates outputs.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Transaction {
    /// Format version; 1 so far.
    pub version: u32,
    /// What it spends.
    pub inputs: Vec<TxIn>,
    /// What it creates.
    pub outputs: Vec<TxOut>,
    /// The lowest block height it may be included at (0: any).
    pub lock_time: u32,
}

impl Transaction {
    /// Whether it is a coinbase: one input pointing at nothing.
    pub fn is_coinbase(&self) -> bool {
        self.inputs.len() == 1 && self.inputs[0].prev_out.is_null()
    }

    /// The last block height it may be mined at: the earliest expiry of its signatures.
    pub fn expiry(&self) -> Option<u32> {
        self.inputs.iter().flat_map(|input| input.witness.signatures()).filter_map(|s| s.mode.expiry()).min()
    }

    /// The id, over everything but the signature witnesses.
    pub fn txid(&self) -> TxId {
        TxId(hash_encoded(&WithoutWitness(self)))
    }

    /// The hash of the full encoding, witnesses included.
    pub fn wtxid(&self) -> WtxId {
        WtxId(hash_encoded(self))
    }

    /// The hash that an input's signature signs. `spent` is the output the input spends, so
    /// that a signer commits to the amount and asset it spends; `network_magic` keeps a
    /// signature from being replayed on another network.
    pub fn signature_hash(&self, input_index: usize, spent: &TxOut, mode: SigHashMode, network_magic: u8) -> [u8; 32] {
        SighashCache::new(self).signature_hash(input_index, spent, mode, network_magic)
    }
}

/// The hashes that every `All`-mode signature of one transaction shares, computed once so
/// that signing or checking n inputs costs O(n), not O(n²).
#[derive(Debug)]
pub struct SighashCache<'a> {
    tx: &'a Transaction,
    prevouts: Option<[u8; 32]>,
    outputs: Option<[u8; 32]>,
}

impl<'a> SighashCache<'a> {
    /// A cache over `tx`.
    pub fn new(tx: &'a Transaction) -> Self {
        Self { tx, prevouts: None, outputs: None }
    }

    /// See [`Transaction::signature_hash`]. Panics never: an input index past the end signs
    /// an empty reference, which no spent output can match.
    pub fn signature_hash(
        &mut self,
        input_index: usize,
        spent: &TxOut,
        mode: SigHashMode,
        network_magic: u8,
    ) -> [u8; 32] {
        let tx = self.tx;
        let mut hasher = Sha256::new();
        hasher.update(b"peerchain/sighash");
        hasher.update([network_magic, mode.tag()]);
        // The expiry is signed, so that nobody can extend an offer; it is checked against the
        // spend height by consensus, never by the signature verifier (a cached verification
        // must not outlive it).
        if let Some(height) = mode.expiry() {
            height.encode_to(&mut hasher);
        }
        tx.version.encode_to(&mut hasher);
        if mode.commits_to_all() {
            let prevouts = *self.prevouts.get_or_insert_with(|| {
                let mut inner = Sha256::new();
                for input in &tx.inputs {
                    input.prev_out.encode_to(&mut inner);
                }
                finish_sha256d(inner)
            });
            let outputs = *self.outputs.get_or_insert_with(|| {
                let mut inner = Sha256::new();
                for output in &tx.outputs {
                    output.encode_to(&mut inner);
                }
                finish_sha256d(inner)
            });
            hasher.update(prevouts);
            hasher.update(outputs);
            (input_index as u32).encode_to(&mut hasher);
        } else {
            match tx.outputs.get(input_index) {
                Some(output) => {
                    hasher.update([1]);
                    // A lender's offer commits to every term of the loan but who borrows:
                    // the borrower names itself when it takes the offer.
                    match &output.lock {
                        Lock::Loan { borrower: _, lender, repay_asset, repay_amount, term } => TxOut {
                            asset: output.asset,
                            amount: output.amount,
                            lock: Lock::Loan {
                                borrower: KeyHash::ZERO,
                                lender: *lender,
                                repay_asset: *repay_asset,
                                repay_amount: *repay_amount,
                                term: *term,
                            },
                        }
                        .encode_to(&mut hasher),
                        _ => output.encode_to(&mut hasher),
                    }
                }
                // Consensus refuses such a signature (it would commit to no output); the
                // hash exists only so that computing it never panics.
                None => hasher.update([0]),
            }
        }
        match tx.inputs.get(input_index) {
            Some(input) => input.prev_out.encode_to(&mut hasher),
            None => OutPoint::NULL.encode_to(&mut hasher),
        }
        spent.encode_to(&mut hasher);
        tx.lock_time.encode_to(&mut hasher);
        finish_sha256d(hasher)
    }
}

/// Encodes a transaction without its witnesses, for its id.
struct WithoutWitness<'a>(&'a Transaction);

impl Encode for WithoutWitness<'_> {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        let tx = self.0;
        tx.version.encode_to(sink);
        put_varint(sink, tx.inputs.len() as u64);
        for input in &tx.inputs {
            input.prev_out.encode_to(sink);
            // Correctness: a coinbase witness holds the block height and no signature, so it
            // is part of the id; otherwise every coinbase paying the same output would share
            // one txid (Bitcoin's BIP30 problem).
            if let Witness::Coinbase { .. } = input.witness {
                input.witness.encode_to(sink);
            }
        }
        put_list(sink, &tx.outputs);
        tx.lock_time.encode_to(sink);
    }
}

impl Encode for Transaction {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        self.version.encode_to(sink);
        put_list(sink, &self.inputs);
        put_list(sink, &self.outputs);
        self.lock_time.encode_to(sink);
    }
}

impl Decode for Transaction {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: reader.u32("transaction version")?,
            inputs: reader.list("inputs", limits::MAX_LIST)?,
            outputs: reader.list("outputs", limits::MAX_LIST)?,
            lock_time: reader.u32("lock time")?,
        })
    }
}

/// An unspent output as the UTXO set keeps it: the output and where it was created.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Coin {
    /// The output.
    pub output: TxOut,
    /// The height of the block that created it.
    pub height: u32,
    /// Whether a coinbase created it (it then matures before it can be spent).
    pub is_coinbase: bool,
}

impl Encode for Coin {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        self.output.encode_to(sink);
        self.height.encode_to(sink);
        sink.put(&[u8::from(self.is_coinbase)]);
    }
}

impl Decode for Coin {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let output = TxOut::decode(reader)?;
        let height = reader.u32("coin height")?;
        let is_coinbase = match reader.u8("coinbase flag")? {
            0 => false,
            1 => true,
            tag => return Err(DecodeError::UnknownTag { what: "coinbase flag", tag }),
        };
        Ok(Self { output, height, is_coinbase })
    }
}
