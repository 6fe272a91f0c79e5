//! The validity rules for headers, transactions and blocks.
//!
//! Rules are split by what they need: `check_*` functions need nothing but the value (and
//! parameters); [`check_header`] needs the parent's context; [`check_spends`] needs the coins
//! a transaction spends; [`connect_block`] needs a view of the UTXO set and returns what the
//! block changes in it, for the store to apply.

use std::collections::{HashMap, HashSet};

use peerchain_primitives::transaction::SighashCache;
use peerchain_primitives::{
    Amount, AssetId, Block, BlockHeader, Coin, Encode, Lock, OutPoint, Transaction, TxId, TxOut, TxSignature, Witness,
};
use peerchain_primitives::{BlockHash, KeyHash, PublicKey, TokenId, TokenMetadata, WtxId, merkle_root};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::params::Params;
use crate::reject::{BlockReject, TxReject, ValidationError, ViewError};
use crate::signatures::{PipelinedVerifier, SigCache, SigFailure, SigOrigin, SigSink};

/// The only block and transaction version so far.
pub const CURRENT_VERSION: u32 = 1;

/// Read access to unspent outputs.
pub trait UtxoView {
    /// The unspent output at `outpoint`, if there is one.
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, ViewError>;
}

impl<V: UtxoView + ?Sized> UtxoView for &V {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, ViewError> {
        (**self).coin(outpoint)
    }
}

/// Checks that need only the transaction itself.
pub fn check_transaction(tx: &Transaction, params: &Params) -> Result<(), TxReject> {
    if tx.inputs.is_empty() {
        return Err(TxReject::NoInputs);
    }
    if tx.outputs.is_empty() {
        return Err(TxReject::NoOutputs);
    }
    let size = tx.encoded_len();
    if size > params.max_block_size {
        return Err(TxReject::TooLarge { size, max: params.max_block_size });
    }
    // Coins are summed directly; only transactions that move tokens pay for a map.
    let mut coin_total = Amount::ZERO;
    let mut token_totals: HashMap<AssetId, Amount> = HashMap::new();
    for output in &tx.outputs {
        if !output.amount.is_valid_money() {
            return Err(TxReject::OutputOutOfRange);
        }
        let total = match output.asset {
            AssetId::Coin => &mut coin_total,
            asset => token_totals.entry(asset).or_default(),
        };
        *total = total.checked_add(output.amount).filter(|t| t.is_valid_money()).ok_or(TxReject::OutputOutOfRange)?;
        match &output.lock {
            Lock::Multisig { threshold, keys } | Lock::Escrow { threshold, keys, .. }
                if *threshold == 0 || usize::from(*threshold) > keys.len() =>
            {
                return Err(TxReject::BadMultisigLock);
            }
            Lock::Loan { repay_asset, repay_amount, .. }
                if matches!(repay_asset, AssetId::MintRight(_))
                    || *repay_amount == Amount::ZERO
                    || !repay_amount.is_valid_money() =>
            {
                return Err(TxReject::BadLoanLock);
            }
            _ => {}
        }
    }
    if tx.is_coinbase() {
        match &tx.inputs[0].witness {
            Witness::Coinbase { .. } => {}
            _ => return Err(TxReject::BadCoinbase),
        }
        if tx.outputs.iter().any(|o| o.asset != AssetId::Coin) {
            return Err(TxReject::CoinbaseToken);
        }
        return Ok(());
    }
    for input in &tx.inputs {
        if input.prev_out.is_null() || matches!(input.witness, Witness::Coinbase { .. }) {
            return Err(TxReject::BadCoinbase);
        }
    }
    // Most transactions have an input or two: compare pairwise rather than build a set.
    if tx.inputs.len() <= 8 {
        for (i, input) in tx.inputs.iter().enumerate() {
            if tx.inputs[..i].iter().any(|earlier| earlier.prev_out == input.prev_out) {
                return Err(TxReject::DuplicateInput(input.prev_out));
            }
        }
    } else {
        let mut seen = HashSet::with_capacity(tx.inputs.len());
        for input in &tx.inputs {
            if !seen.insert(input.prev_out) {
                return Err(TxReject::DuplicateInput(input.prev_out));
            }
        }
    }
    Ok(())
}

/// Checks a non-coinbase transaction against the coins it spends (`spent[i]` is what input
/// `i` spends) at block height `spend_height`. Signature checks are added to `signatures`
/// rather than run, so that a block's can be batched; returns the fee.
pub fn check_spends(
    tx: &Transaction,
    tx_index: u32,
    spent: &[Coin],
    spend_height: u32,
    params: &Params,
    signatures: &mut impl SigSink,
) -> Result<Amount, TxReject> {
    debug_assert_eq!(spent.len(), tx.inputs.len());
    if tx.lock_time > spend_height {
        return Err(TxReject::NotFinal { lock_time: tx.lock_time });
    }
    let mut coins_in = Amount::ZERO;
    let mut tokens_in: HashMap<AssetId, Amount> = HashMap::new();
    for (input, coin) in tx.inputs.iter().zip(spent) {
        if coin.is_coinbase {
            let mature_at = coin.height.saturating_add(params.coinbase_maturity);
            if spend_height < mature_at {
                return Err(TxReject::ImmatureCoinbase { outpoint: input.prev_out, mature_at });
            }
        }
        let total = match coin.output.asset {
            AssetId::Coin => &mut coins_in,
            asset => tokens_in.entry(asset).or_default(),
        };
        *total =
            total.checked_add(coin.output.amount).filter(|t| t.is_valid_money()).ok_or(TxReject::OutputOutOfRange)?;
    }

    let mut coins_out = Amount::ZERO;
    let mut tokens_out: HashMap<AssetId, Amount> = HashMap::new();
    for output in &tx.outputs {
        let total = match output.asset {
            AssetId::Coin => &mut coins_out,
            asset => tokens_out.entry(asset).or_default(),
        };
        // check_transaction bounded each asset's sum already.
        *total = total.checked_add(output.amount).ok_or(TxReject::OutputOutOfRange)?;
    }
    let fee = coins_in.checked_sub(coins_out).ok_or(TxReject::Overspend { asset: AssetId::Coin })?;
    if !tokens_in.is_empty() || !tokens_out.is_empty() {
        check_token_conservation(tx, spent, &tokens_in, &tokens_out)?;
    }

    let mut sighashes = SighashCache::new(tx);
    for (index, (input, coin)) in tx.inputs.iter().zip(spent).enumerate() {
        let origin = SigOrigin { tx_index, input: index as u32 };
        let mut require = |public_key: &PublicKey, signature: &TxSignature| -> Result<(), TxReject> {
            // Security: a signature over one input and its paired output needs that output;
            // without it, it would commit to no output at all (a blank cheque).
            if !signature.mode.commits_to_all() && index >= tx.outputs.len() {
                return Err(TxReject::WitnessMismatch { input: index });
            }
            // Checked here, not by the verifier, so that a cached verification cannot
            // outlive the signature.
            if let Some(expiry) = signature.mode.expiry()
                && spend_height > expiry
            {
                return Err(TxReject::SignatureExpired { input: index, expiry });
            }
            let message = sighashes.signature_hash(index, &coin.output, signature.mode, params.network.magic());
            signatures.push(*public_key, message, signature.signature.to_dalek(), origin);
            Ok(())
        };
        let mismatch = TxReject::WitnessMismatch { input: index };
        let key_matches = |public_key: &PublicKey, hash: &KeyHash| public_key.key_hash() == *hash;
        match (&coin.output.lock, &input.witness) {
            (Lock::Key(hash), Witness::Key { public_key, signature }) => {
                if !key_matches(public_key, hash) {
                    return Err(mismatch);
                }
                require(public_key, signature)?;
            }
            (
                Lock::Multisig { threshold, keys } | Lock::Escrow { threshold, keys, .. },
                Witness::Multisig { signatures: sigs },
            ) => {
                if sigs.len() != usize::from(*threshold) {
                    return Err(mismatch);
                }
                let mut previous: Option<u8> = None;
                for (key_index, signature) in sigs {
                    // Strictly increasing indices: each key signs at most once.
                    if previous.is_some_and(|p| p >= *key_index) {
                        return Err(mismatch);
                    }
                    previous = Some(*key_index);
                    let public_key =
                        keys.get(usize::from(*key_index)).ok_or(TxReject::WitnessMismatch { input: index })?;
                    require(public_key, signature)?;
                }
            }
            (Lock::HashTimeLock { hash, claim, .. }, Witness::HashLockClaim { preimage, public_key, signature }) => {
                // Exactly 32 bytes, as other chains' hash locks demand: a secret revealed
                // here must unlock the other side of a cross-chain swap too.
                if preimage.len() != 32 || Sha256::digest(preimage).as_slice() != hash.0 {
                    return Err(TxReject::BadPreimage { input: index });
                }
                if !key_matches(public_key, claim) {
                    return Err(mismatch);
                }
                require(public_key, signature)?;
            }
            (Lock::HashTimeLock { refund, refund_height, .. }, Witness::TimeLockRefund { public_key, signature }) => {
                if spend_height < *refund_height {
                    return Err(TxReject::RefundTooEarly { input: index, refund_height: *refund_height });
                }
                if !key_matches(public_key, refund) {
                    return Err(mismatch);
                }
                require(public_key, signature)?;
            }
            (Lock::Escrow { after, fallback, .. }, Witness::TimeLockRefund { public_key, signature }) => {
                let opens = after.opens_at(coin.height);
                if spend_height < opens {
                    return Err(TxReject::RefundTooEarly { input: index, refund_height: opens });
                }
                if !key_matches(public_key, fallback) {
                    return Err(mismatch);
                }
                require(public_key, signature)?;
            }
            (
                Lock::Loan { borrower, lender, repay_asset, repay_amount, .. },
                Witness::Key { public_key, signature },
            ) => {
                if !key_matches(public_key, borrower) {
                    return Err(mismatch);
                }
                // Security: the collateral leaves only in the transaction that repays: the
                // output at this input's index pays the lender what it is owed.
                let repaid = tx.outputs.get(index).is_some_and(|o| {
                    o.asset == *repay_asset && o.amount >= *repay_amount && o.lock == Lock::Key(*lender)
                });
                if !repaid {
                    return Err(TxReject::LoanNotRepaid { input: index });
                }
                require(public_key, signature)?;
            }
            (Lock::Loan { lender, term, .. }, Witness::TimeLockRefund { public_key, signature }) => {
                let opens = coin.height.saturating_add(*term);
                if spend_height < opens {
                    return Err(TxReject::RefundTooEarly { input: index, refund_height: opens });
                }
                if !key_matches(public_key, lender) {
                    return Err(mismatch);
                }
                require(public_key, signature)?;
            }
            _ => return Err(mismatch),
        }
    }
    Ok(fee)
}

/// Token rules: every token and mint right is conserved exactly (burns are explicit
/// outputs), except that a transaction may issue the token its first input names, and a
/// transaction spending a token's mint right may pay out more of the token than it spends.
fn check_token_conservation(
    tx: &Transaction,
    spent: &[Coin],
    tokens_in: &HashMap<AssetId, Amount>,
    tokens_out: &HashMap<AssetId, Amount>,
) -> Result<(), TxReject> {
    let issued = TokenId::issued_by(&tx.inputs[0].prev_out);
    let issuing =
        tokens_out.contains_key(&AssetId::Token(issued)) || tokens_out.contains_key(&AssetId::MintRight(issued));
    if issuing {
        // Security: issuing is the first input's owner's decision, so every signature on
        // that input must commit to the whole transaction. A signature that commits to one
        // input and output only (an offer) would let whoever completes the transaction mint
        // the token named after the signer's coin.
        if tx.inputs[0].witness.signatures().any(|s| !s.mode.commits_to_all()) {
            return Err(TxReject::IssuanceNotAuthorised);
        }
        // The name is part of the issuance, once: exactly one burn of zero of the new token
        // whose data is its metadata.
        let mut metadata = tx
            .outputs
            .iter()
            .filter(|o| o.asset == AssetId::Token(issued) && o.lock.is_burn() && o.amount == Amount::ZERO);
        match (metadata.next(), metadata.next()) {
            (Some(TxOut { lock: Lock::Burn { data }, .. }), None) if TokenMetadata::from_burn_data(data).is_ok() => {}
            _ => return Err(TxReject::BadTokenMetadata),
        }
    }
    let zero = Amount::ZERO;
    for asset in tokens_in.keys().chain(tokens_out.keys()) {
        let inflow = tokens_in.get(asset).unwrap_or(&zero);
        let outflow = tokens_out.get(asset).unwrap_or(&zero);
        let balanced = match asset {
            AssetId::Token(id) | AssetId::MintRight(id) if issuing && *id == issued => continue,
            AssetId::Token(id) if tokens_in.contains_key(&AssetId::MintRight(*id)) => {
                // Minting, like issuing, is the right holder's decision alone.
                let holders = tx.inputs.iter().zip(spent).filter(|(_, c)| c.output.asset == AssetId::MintRight(*id));
                for (input, _) in holders {
                    if input.witness.signatures().any(|s| !s.mode.commits_to_all()) {
                        return Err(TxReject::MintNotAuthorised { outpoint: input.prev_out });
                    }
                }
                outflow >= inflow
            }
            _ => outflow == inflow,
        };
        if !balanced {
            return Err(if outflow > inflow {
                TxReject::Overspend { asset: *asset }
            } else {
                TxReject::TokenNotConserved { asset: *asset }
            });
        }
    }
    Ok(())
}

/// What the header of the block after a parent must satisfy.
#[derive(Debug, Clone, Copy)]
pub struct HeaderContext {
    /// The target difficulty adjustment requires.
    pub expected_bits: peerchain_primitives::CompactTarget,
    /// The median time of the last eleven blocks up to the parent.
    pub median_time_past: u64,
    /// The node's clock, seconds since the epoch.
    pub now: u64,
}

/// Checks a header: version, proof of work, target and time.
pub fn check_header(header: &BlockHeader, context: &HeaderContext, params: &Params) -> Result<(), BlockReject> {
    let hash = header.hash();
    if header.version != CURRENT_VERSION {
        return Err(BlockReject::BadVersion { hash, version: header.version });
    }
    if header.bits != context.expected_bits {
        return Err(BlockReject::BadDifficulty { hash, got: header.bits, expected: context.expected_bits });
    }
    let target = header.bits.expand().ok_or(BlockReject::BadProofOfWork { hash })?;
    if !target.is_met_by(&hash) {
        return Err(BlockReject::BadProofOfWork { hash });
    }
    if header.time <= context.median_time_past {
        return Err(BlockReject::TimeTooOld { hash, time: header.time, median_time_past: context.median_time_past });
    }
    if header.time > context.now.saturating_add(params.max_future_block_time) {
        return Err(BlockReject::TimeTooNew { hash, time: header.time, now: context.now });
    }
    Ok(())
}

/// The median of the given block times (the last eleven, or fewer near genesis).
pub fn median_time(times: &[u64]) -> u64 {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

/// Checks that need only the block: merkle root, size, coinbase placement, duplicate ids and
/// each transaction's own rules. Returns the transaction ids, which callers need next.
///
/// Security: the merkle root comes first. Until it matches, the body may be anything a peer
/// made up for an honest header (no transactions, the coinbase moved, padding past the size
/// limit), and only [`BlockReject::BadMerkleRoot`] may be reported: every other rejection
/// condemns the header's block for good (see [`BlockReject::is_mutation`]). Once it matches,
/// the leaves' domain separation means the body is the one the header commits to.
pub fn check_block(block: &Block, params: &Params) -> Result<Vec<TxId>, BlockReject> {
    let hash = block.hash();
    // Both ids of every transaction, on all cores: hashing the whole block twice is the
    // bulk of this function's work, and no signature verification overlaps it yet.
    let (txids, wtxids): (Vec<TxId>, Vec<WtxId>) =
        block.transactions.par_iter().with_min_len(256).map(|tx| (tx.txid(), tx.wtxid())).unzip();
    if merkle_root(&wtxids) != block.header.merkle_root {
        return Err(BlockReject::BadMerkleRoot { hash });
    }
    let size = block.encoded_len();
    if size > params.max_block_size {
        return Err(BlockReject::TooLarge { hash, size, max: params.max_block_size });
    }
    match block.transactions.split_first() {
        Some((first, rest)) if first.is_coinbase() && !rest.iter().any(Transaction::is_coinbase) => {}
        _ => return Err(BlockReject::BadCoinbasePosition { hash }),
    }
    let mut seen = HashSet::with_capacity(block.transactions.len());
    for (tx, txid) in block.transactions.iter().zip(&txids) {
        if !seen.insert(*txid) {
            return Err(BlockReject::DuplicateTransaction { hash, txid: *txid });
        }
        check_transaction(tx, params).map_err(|reason| BlockReject::Transaction { hash, txid: *txid, reason })?;
    }
    Ok(txids)
}

/// What connecting a block changes in the UTXO set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BlockEffects {
    /// The transaction ids, in block order.
    pub txids: Vec<TxId>,
    /// Outputs the block spends that existed before it, in spending order: the undo data.
    pub spent: Vec<(OutPoint, Coin)>,
    /// Outputs the block creates and does not itself spend.
    pub created: Vec<(OutPoint, Coin)>,
    /// The fees its transactions pay.
    pub fees: Amount,
}

/// Validates `block` at `height` on top of the UTXO set seen through `view`, which must be the
/// state at its parent: every context-free rule, every spend, the coinbase, and every
/// signature (in batches on all cores). Returns what the block changes; changes nothing.
pub fn connect_block(
    block: &Block,
    height: u32,
    view: &impl UtxoView,
    params: &Params,
) -> Result<BlockEffects, ValidationError> {
    let txids = check_block(block, params)?;
    connect_checked_block(block, txids, height, view, params, None)?.finish()
}

/// A block whose every rule but its signatures has been checked, with its signatures being
/// verified on the thread pool.
#[derive(Debug)]
#[must_use = "the block is valid only once `finish` says so"]
pub struct PendingBlock {
    /// What the block changes, if its signatures verify.
    pub effects: BlockEffects,
    hash: BlockHash,
    verifier: PipelinedVerifier,
}

impl PendingBlock {
    /// Waits for the signatures; the effects if they all verify.
    pub fn finish(self) -> Result<BlockEffects, ValidationError> {
        let PendingBlock { effects, hash, mut verifier } = self;
        verifier.finish().map_err(|failure| {
            let (origin, reason) = sig_failure_reason(failure);
            BlockReject::Transaction { hash, txid: effects.txids[origin.tx_index as usize], reason }
        })?;
        Ok(effects)
    }
}

/// [`connect_block`] for a block that already passed [`check_block`], which returned `txids`:
/// checks every rule but the signatures, whose verification runs on while the caller applies
/// the effects; the caller must not commit them before [`PendingBlock::finish`] succeeds.
/// Groups of signatures all held by `sig_cache` are not verified again.
pub fn connect_checked_block(
    block: &Block,
    txids: Vec<TxId>,
    height: u32,
    view: &impl UtxoView,
    params: &Params,
    sig_cache: Option<&std::sync::Arc<SigCache>>,
) -> Result<PendingBlock, ValidationError> {
    let hash = block.hash();
    let coinbase = &block.transactions[0];
    match &coinbase.inputs[0].witness {
        Witness::Coinbase { height: got, .. } if *got == height => {}
        Witness::Coinbase { height: got, .. } => {
            return Err(BlockReject::BadCoinbaseHeight { hash, got: *got, expected: height }.into());
        }
        _ => unreachable!("check_block verified the coinbase witness"),
    }

    let input_count: usize = block.transactions.iter().map(|tx| tx.inputs.len()).sum();
    let mut created: HashMap<OutPoint, Coin> = HashMap::with_capacity(input_count * 2);
    let mut spent_from_view: Vec<(OutPoint, Coin)> = Vec::with_capacity(input_count);
    let mut spent_in_block: HashSet<OutPoint> = HashSet::new();
    let mut signatures = PipelinedVerifier::with_cache(sig_cache.cloned());
    let mut fees = Amount::ZERO;
    let mut coins: Vec<Coin> = Vec::new();

    for (tx_index, (tx, txid)) in block.transactions.iter().zip(&txids).enumerate() {
        let reject = |reason: TxReject| BlockReject::Transaction { hash, txid: *txid, reason };
        if tx_index > 0 {
            coins.clear();
            for input in &tx.inputs {
                let outpoint = input.prev_out;
                // Correctness: an output created earlier in this block is spent from the
                // block's own outputs; one already spent in this block is gone.
                let coin = if let Some(coin) = created.remove(&outpoint) {
                    coin
                } else if spent_in_block.contains(&outpoint) {
                    return Err(reject(TxReject::MissingInput(outpoint)).into());
                } else {
                    let coin = view.coin(&outpoint)?.ok_or_else(|| reject(TxReject::MissingInput(outpoint)))?;
                    spent_in_block.insert(outpoint);
                    spent_from_view.push((outpoint, coin.clone()));
                    coin
                };
                coins.push(coin);
            }
            let fee = check_spends(tx, tx_index as u32, &coins, height, params, &mut signatures).map_err(reject)?;
            fees = fees
                .checked_add(fee)
                .filter(|f| f.is_valid_money())
                .ok_or_else(|| reject(TxReject::OutputOutOfRange))?;
        }
        let is_coinbase = tx_index == 0;
        for (index, output) in tx.outputs.iter().enumerate() {
            // A burn is destroyed: it never enters the UTXO set.
            if output.lock.is_burn() {
                continue;
            }
            let coin = Coin { output: output.clone(), height, is_coinbase };
            created.insert(OutPoint::new(*txid, index as u32), coin);
        }
    }

    let allowed = params.subsidy(height).checked_add(fees).unwrap_or(Amount::MAX_MONEY);
    let paid =
        coinbase.outputs.iter().try_fold(Amount::ZERO, |sum, o| sum.checked_add(o.amount)).unwrap_or(Amount::MAX_MONEY);
    if paid > allowed {
        return Err(BlockReject::CoinbaseTooLarge { hash, paid: paid.units(), allowed: allowed.units() }.into());
    }

    let effects = BlockEffects { txids, spent: spent_from_view, created: created.into_iter().collect(), fees };
    Ok(PendingBlock { effects, hash, verifier: signatures })
}

/// The rejection reason of a failed signature check, and where it was.
pub fn sig_failure_reason(failure: SigFailure) -> (SigOrigin, TxReject) {
    match failure {
        SigFailure::BadKey(origin) => (origin, TxReject::BadPublicKey { input: origin.input as usize }),
        SigFailure::BadSignature(origin) => (origin, TxReject::BadSignature { input: origin.input as usize }),
    }
}

/// Builds a coinbase paying `reward` to `key_hash` at `height`.
pub fn coinbase_transaction(height: u32, reward: Amount, key_hash: KeyHash, extra: Vec<u8>) -> Transaction {
    Transaction {
        version: CURRENT_VERSION,
        inputs: vec![peerchain_primitives::TxIn {
            prev_out: OutPoint::NULL,
            witness: Witness::Coinbase { height, extra },
        }],
        outputs: vec![TxOut::coins_to(reward, key_hash)],
        lock_time: 0,
    }
}
