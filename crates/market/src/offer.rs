//! An offer: a maker's coin signed over itself and the output the maker wants in return,
//! valid until a height. Anyone may complete it into a transaction (a take) while the maker
//! is offline; consensus holds the maker's output fixed.

use peerchain_consensus::{Params, SigBatch, SigOrigin};
use peerchain_primitives::encode::{Reader, Sink};
use peerchain_primitives::hash::hash_encoded;
use peerchain_primitives::{
    Amount, AssetId, Coin, Decode, DecodeError, Encode, KeyHash, Lock, OutPoint, PublicKey, SigHashMode, Transaction,
    TxIn, TxOut, Witness,
};

/// The format of an encoded offer.
const VERSION: u8 = 1;
/// The largest encoded offer: an input with a key witness and an output with a key lock fit
/// well within it; anything larger is not an offer.
pub const MAX_OFFER_BYTES: usize = 512;

/// An offer's id: the hash of its encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct OfferId(pub [u8; 32]);

impl std::fmt::Display for OfferId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for OfferId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OfferId({self})")
    }
}

impl std::str::FromStr for OfferId {
    type Err = OfferError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(text).map_err(|_| OfferError::BadId)?;
        Ok(OfferId(bytes.try_into().map_err(|_| OfferError::BadId)?))
    }
}

/// Why an offer is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// Not 64 hexadecimal characters.
    #[error("an offer id is 64 hexadecimal characters")]
    BadId,
    /// The bytes are not an offer.
    #[error("malformed offer: {0}")]
    Malformed(#[from] DecodeError),
    /// Larger than any offer.
    #[error("an offer of {0} bytes is over the limit")]
    TooLarge(usize),
    /// The witness is not one key's signature over its own input and paired output with an
    /// expiry.
    #[error("an offer must be signed by one key for its input and paired output, with an expiry")]
    BadSignatureMode,
    /// What the maker wants is not an amount of the coin or a token to a key (or locked as a
    /// loan's collateral with the borrower left open).
    #[error("an offer must want an amount of the coin or of a token, paid to a key or locked as a loan's collateral")]
    BadWant,
    /// The anchor is not in the UTXO set (spent, never confirmed, or unknown).
    #[error("the offer's coin {0:?} is not an unspent confirmed output")]
    AnchorMissing(OutPoint),
    /// The anchor is not locked to the signing key.
    #[error("the offer's coin is not the signer's")]
    NotTheMakers,
    /// A coinbase that cannot be spent yet.
    #[error("the offer's coin is an immature mining reward")]
    Immature,
    /// Giving what it wants.
    #[error("an offer must want another asset than it gives")]
    SameAsset,
    /// It gives too little of the coin to be worth a place in every book.
    #[error("an offer giving coins must give at least {0} units")]
    TooSmall(u64),
    /// Its expiry is past, too near to take it, or too far.
    #[error(
        "the offer expires at height {expiry}; offers must be takeable from height {earliest} and expire by {latest}"
    )]
    BadExpiry {
        /// The offer's expiry.
        expiry: u32,
        /// The least acceptable expiry.
        earliest: u32,
        /// The greatest.
        latest: u32,
    },
    /// The signature does not verify.
    #[error("the offer's signature does not verify")]
    BadSignature,
}

impl OfferError {
    /// Whether a peer relaying such an offer is at fault: it could have checked this from
    /// the bytes alone. An offer whose coin was spent or whose expiry passed a moment ago was
    /// fine for the peer that relayed it.
    pub fn is_misbehaviour(&self) -> bool {
        !matches!(
            self,
            OfferError::AnchorMissing(_) | OfferError::BadExpiry { .. } | OfferError::Immature | OfferError::BadId
        )
    }
}

/// The rules a node applies to offers before it lists and relays them. Not consensus: a
/// take is valid whatever these say.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Least coin an offer giving coins gives: the cost of a place in every book.
    pub min_coin_give: Amount,
    /// Furthest expiry, in blocks from the tip.
    pub max_life: u32,
    /// Blocks an offer must stay takeable: a take must be valid for this many blocks from
    /// the next to enter a mempool (the mempool's expiry margin).
    pub expiry_margin: u32,
    /// Most bytes of offers in the book.
    pub max_book_bytes: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            min_coin_give: Amount::from_units(100_000),
            max_life: 10_080,
            expiry_margin: 2,
            max_book_bytes: 64 << 20,
        }
    }
}

/// A maker's signed side of a swap.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Offer {
    /// The maker's coin (the anchor), signed over itself and `want`.
    pub input: TxIn,
    /// What the maker wants, at the input's index in the take.
    pub want: TxOut,
}

impl Encode for Offer {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        sink.put(&[VERSION]);
        self.input.encode_to(sink);
        self.want.encode_to(sink);
    }
}

impl Decode for Offer {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("offer version")? {
            VERSION => {}
            tag => return Err(DecodeError::UnknownTag { what: "offer version", tag }),
        }
        Ok(Offer { input: TxIn::decode(reader)?, want: TxOut::decode(reader)? })
    }
}

/// What an offer's form says, checked without the chain.
#[derive(Clone, Copy, Debug)]
pub struct Terms {
    /// The coin given.
    pub anchor: OutPoint,
    /// The signing key.
    pub maker: PublicKey,
    /// The last height a take may be mined at.
    pub expiry: u32,
}

impl Offer {
    /// Decodes an offer from a peer, with its size capped first.
    pub fn from_wire(bytes: &[u8]) -> Result<Offer, OfferError> {
        if bytes.len() > MAX_OFFER_BYTES {
            return Err(OfferError::TooLarge(bytes.len()));
        }
        Ok(Offer::from_bytes(bytes)?)
    }

    /// Its id.
    pub fn id(&self) -> OfferId {
        OfferId(hash_encoded(&Tagged(self)))
    }

    /// The coin it gives.
    pub fn anchor(&self) -> OutPoint {
        self.input.prev_out
    }

    /// Its terms, if its form is an offer's: one key's signature over its input and paired
    /// output that expires, and a want of coin or a token paid to a key.
    pub fn terms(&self) -> Result<Terms, OfferError> {
        let Witness::Key { public_key, signature } = &self.input.witness else {
            return Err(OfferError::BadSignatureMode);
        };
        let SigHashMode::SingleInputOutputUntil(expiry) = signature.mode else {
            return Err(OfferError::BadSignatureMode);
        };
        // A swap wants an amount paid to a key; a loan offer wants collateral locked under
        // a loan to the lender, the borrower left for the taker to name.
        let lock_ok = match &self.want.lock {
            Lock::Key(_) => true,
            Lock::Loan { borrower, repay_asset, repay_amount, .. } => {
                *borrower == KeyHash::ZERO
                    && matches!(repay_asset, AssetId::Coin | AssetId::Token(_))
                    && *repay_amount > Amount::ZERO
                    && repay_amount.is_valid_money()
            }
            _ => false,
        };
        let want_ok = matches!(self.want.asset, AssetId::Coin | AssetId::Token(_))
            && self.want.amount > Amount::ZERO
            && self.want.amount.is_valid_money()
            && lock_ok;
        if !want_ok {
            return Err(OfferError::BadWant);
        }
        Ok(Terms { anchor: self.input.prev_out, maker: *public_key, expiry })
    }

    /// Where the maker is paid, or the lender of a loan offer.
    pub fn maker_key_hash(&self) -> Option<KeyHash> {
        match self.want.lock {
            Lock::Key(hash) | Lock::Loan { lender: hash, .. } => Some(hash),
            _ => None,
        }
    }

    /// The loan's terms, if this is a lender's offer: what is repaid, how much, and the term.
    pub fn loan_terms(&self) -> Option<(AssetId, Amount, u32)> {
        match self.want.lock {
            Lock::Loan { repay_asset, repay_amount, term, .. } => Some((repay_asset, repay_amount, term)),
            _ => None,
        }
    }

    /// Checks the offer against `coin` (what the UTXO set holds at its anchor) with the chain
    /// at `tip_height`, except the signature, which [`verify_signatures`] checks in batches.
    pub fn check(&self, coin: &Coin, tip_height: u32, params: &Params, policy: &Policy) -> Result<Terms, OfferError> {
        let terms = self.terms()?;
        if coin.output.lock != Lock::Key(terms.maker.key_hash()) {
            return Err(OfferError::NotTheMakers);
        }
        if coin.is_coinbase && tip_height + 1 < coin.height.saturating_add(params.coinbase_maturity) {
            return Err(OfferError::Immature);
        }
        if !matches!(coin.output.asset, AssetId::Coin | AssetId::Token(_)) {
            return Err(OfferError::BadWant);
        }
        if coin.output.asset == self.want.asset {
            return Err(OfferError::SameAsset);
        }
        if coin.output.asset == AssetId::Coin && coin.output.amount < policy.min_coin_give {
            return Err(OfferError::TooSmall(policy.min_coin_give.units()));
        }
        let earliest = tip_height.saturating_add(policy.expiry_margin);
        let latest = tip_height.saturating_add(policy.max_life);
        if terms.expiry < earliest || terms.expiry > latest {
            return Err(OfferError::BadExpiry { expiry: terms.expiry, earliest, latest });
        }
        Ok(terms)
    }

    /// The message the maker signed: the same for every take, since the paired-output hash
    /// covers neither the input's index nor the rest of the transaction.
    pub fn signed_message(&self, give: &TxOut, terms: &Terms, network_magic: u8) -> [u8; 32] {
        let alone = Transaction {
            version: 1,
            inputs: vec![self.input.clone()],
            outputs: vec![self.want.clone()],
            lock_time: 0,
        };
        alone.signature_hash(0, give, SigHashMode::SingleInputOutputUntil(terms.expiry), network_magic)
    }

    /// The price: base units wanted per base unit given.
    pub fn price(&self, give: &TxOut) -> f64 {
        self.want.amount.units() as f64 / give.amount.units().max(1) as f64
    }
}

/// Verifies the signatures of checked offers on all cores; returns, in order, whether each
/// verifies. Strictly, as the mempool verifies a take: an offer whose signature only
/// consensus would accept could never be taken through a mempool.
pub fn verify_signatures(offers: &[(&Offer, &TxOut, &Terms)], network_magic: u8) -> Vec<bool> {
    use rayon::prelude::*;
    offers
        .par_iter()
        .with_min_len(64)
        .map(|(offer, give, terms)| {
            let Witness::Key { signature, .. } = &offer.input.witness else { return false };
            let mut one = SigBatch::with_capacity(1);
            let message = offer.signed_message(give, terms, network_magic);
            one.push(terms.maker, message, signature.signature.to_dalek(), SigOrigin { tx_index: 0, input: 0 });
            one.verify_strict().is_ok()
        })
        .collect()
}

/// The encoding hashed for an id, domain-separated from every other hash of the chain.
struct Tagged<'a>(&'a Offer);

impl Encode for Tagged<'_> {
    fn encode_to<S: Sink + ?Sized>(&self, sink: &mut S) {
        sink.put(b"peerchain/offer");
        self.0.encode_to(sink);
    }
}
