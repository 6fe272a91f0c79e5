//! Laying out and signing a transaction: what it must contain (a [`Plan`]), the wallet's
//! coins chosen per asset to cover it, change per asset, and the fee at the asked rate.
//!
//! One builder serves every product (payments, token issues and burns, swaps, contracts), so
//! that both sides of a deal lay a transaction out the same way.

use std::collections::BTreeMap;

use peerchain_primitives::encode::varint_len;
use peerchain_primitives::{
    Amount, AssetId, Encode, FeeRate, KeyHash, Lock, Network, OutPoint, PublicKey, SecretKey, SigHashMode, Signature,
    Transaction, TxIn, TxOut, TxSignature, Witness,
};

use crate::Error;
use crate::ledger::Spendable;

/// Change smaller than this is left to the miner: an output worth less than the fee of
/// spending it later is a loss to its owner and a burden on everyone's UTXO set.
pub const DUST: Amount = Amount::from_units(1_000);

/// The most inputs one transaction gathers; beyond it the transaction grows past what relays
/// well.
pub const MAX_INPUTS: usize = 2_000;

/// An input someone else signed, with the output its signature pairs it with (the same
/// index): a maker's side of an offer. It is placed as signed.
#[derive(Debug, Clone)]
pub struct SignedPair {
    /// The signed input.
    pub input: TxIn,
    /// The output it spends.
    pub spent: TxOut,
    /// The output its signature demands, at the input's index.
    pub output: TxOut,
}

/// What a transaction must contain beyond the coins the wallet chooses.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Pairs signed by others, first in the transaction, each at its own index.
    pub signed: Vec<SignedPair>,
    /// The wallet's outputs that must be spent (the coin that names an issued token, a mint
    /// right, an offer's anchor), right after the signed pairs.
    pub must_spend: Vec<Spendable>,
    /// Outputs to create.
    pub outputs: Vec<TxOut>,
    /// Assets the transaction creates from nothing (an issue, a mint).
    pub created: Vec<(AssetId, Amount)>,
    /// The fee rate.
    pub fee_rate: FeeRate,
    /// How the wallet signs its inputs: [`SigHashMode::All`], or until a height.
    pub mode: SigHashMode,
    /// Outputs under contract locks the wallet spends (escrows, loans), right after the
    /// signed pairs; a repayment's output is placed at its input's index.
    pub contracts: Vec<ContractSpend>,
    /// Take the fee out of this output (an index into `outputs`, of the coin) rather than
    /// from more of the wallet's coins: an escrow paid out whole, less its fee.
    pub subtract_fee_from: Option<usize>,
}

impl Plan {
    /// A plan that pays `outputs` at `fee_rate`.
    pub fn paying(outputs: Vec<TxOut>, fee_rate: FeeRate) -> Self {
        Self {
            signed: vec![],
            must_spend: vec![],
            outputs,
            created: vec![],
            fee_rate,
            mode: SigHashMode::All,
            contracts: vec![],
            subtract_fee_from: None,
        }
    }
}

/// How the wallet spends an output under a contract lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractPath {
    /// The shared path of a multisig or escrow lock, as its key `index` (of `threshold`
    /// needed): the others add their signatures to the same transaction.
    Shared {
        /// The wallet's key's position in the lock.
        index: u8,
        /// Signatures the path needs.
        threshold: u8,
    },
    /// A timeout path alone: an escrow's fallback, a loan's claim, a hash-time lock's refund.
    Timeout,
    /// A loan's repayment: `pay` goes at this input's index.
    Repay {
        /// The lender's due.
        pay: TxOut,
    },
}

/// An output under a contract lock the wallet spends, and how.
#[derive(Debug, Clone)]
pub struct ContractSpend {
    /// Where it is.
    pub outpoint: OutPoint,
    /// What it is.
    pub output: TxOut,
    /// The wallet's key that signs.
    pub key: KeyHash,
    /// Which path.
    pub path: ContractPath,
}

/// A transaction laid out, not yet signed.
#[derive(Debug)]
pub(crate) struct Draft {
    pub(crate) tx: Transaction,
    /// For the wallet's inputs (those after the signed pairs): the output spent, its key and,
    /// for a contract, the path.
    pub(crate) spent: Vec<(TxOut, KeyHash, Option<ContractPath>)>,
    /// How many inputs others signed (they come first).
    pub(crate) presigned: usize,
    /// Which outputs are change (their lock is set once a change key is chosen).
    pub(crate) change: Vec<usize>,
    pub(crate) fee: Amount,
    pub(crate) mode: SigHashMode,
}

fn placeholder_witness(mode: SigHashMode) -> Witness {
    Witness::Key { public_key: PublicKey([0; 32]), signature: TxSignature { mode, signature: Signature([0; 64]) } }
}

/// A witness of the size the path's final witness will have.
fn contract_placeholder(path: &ContractPath, mode: SigHashMode) -> Witness {
    let signature = TxSignature { mode, signature: Signature([0; 64]) };
    match path {
        ContractPath::Shared { threshold, .. } => {
            Witness::Multisig { signatures: (0..*threshold).map(|i| (i, signature)).collect() }
        }
        ContractPath::Timeout => Witness::TimeLockRefund { public_key: PublicKey([0; 32]), signature },
        ContractPath::Repay { .. } => placeholder_witness(mode),
    }
}

fn add(total: &mut BTreeMap<AssetId, Amount>, asset: AssetId, amount: Amount) -> Result<(), Error> {
    let sum = total.entry(asset).or_default();
    *sum = sum.checked_add(amount).filter(|s| s.is_valid_money()).ok_or(Error::AmountTooLarge)?;
    Ok(())
}

/// The size of a transaction from its parts, exactly as it encodes.
struct Size {
    fixed: usize,
    per_wallet_input: usize,
}

impl Size {
    fn of(&self, wallet_inputs: usize, other_inputs: usize, outputs: &[TxOut]) -> usize {
        let inputs = wallet_inputs + other_inputs;
        self.fixed
            + varint_len(inputs as u64)
            + wallet_inputs * self.per_wallet_input
            + varint_len(outputs.len() as u64)
            + outputs.iter().map(Encode::encoded_len).sum::<usize>()
    }
}

/// Chooses the wallet's coins (`coins`) to cover `plan`, adds change per asset to `change`,
/// and lays the transaction out. Confirmed coins go before the wallet's own unconfirmed
/// change; for the coin, one coin that pays without change is preferred, otherwise the
/// largest first, so that few inputs (and a small fee) do.
pub(crate) fn draft(plan: Plan, mut coins: Vec<Spendable>, change: KeyHash) -> Result<Draft, Error> {
    let Plan { signed, must_spend, outputs, created, fee_rate, mode, mut contracts, subtract_fee_from } = plan;
    // Repayments first among the contracts, so that their outputs follow the signed pairs'.
    contracts.sort_by_key(|c| !matches!(c.path, ContractPath::Repay { .. }));
    let repayments: Vec<TxOut> = contracts
        .iter()
        .filter_map(|c| match &c.path {
            ContractPath::Repay { pay } => Some(pay.clone()),
            _ => None,
        })
        .collect();
    let mut provided: BTreeMap<AssetId, Amount> = BTreeMap::new();
    let mut required: BTreeMap<AssetId, Amount> = BTreeMap::new();
    for pair in &signed {
        add(&mut provided, pair.spent.asset, pair.spent.amount)?;
        add(&mut required, pair.output.asset, pair.output.amount)?;
    }
    for (asset, amount) in must_spend
        .iter()
        .map(|c| (c.output.asset, c.output.amount))
        .chain(contracts.iter().map(|c| (c.output.asset, c.output.amount)))
        .chain(created.iter().copied())
    {
        add(&mut provided, asset, amount)?;
    }
    for output in repayments.iter().chain(&outputs) {
        add(&mut required, output.asset, output.amount)?;
    }
    let taken: std::collections::HashSet<OutPoint> = signed
        .iter()
        .map(|p| p.input.prev_out)
        .chain(must_spend.iter().map(|c| c.outpoint))
        .chain(contracts.iter().map(|c| c.outpoint))
        .collect();
    coins.retain(|c| !taken.contains(&c.outpoint));
    coins.sort_by(|a, b| b.confirmed.cmp(&a.confirmed).then(b.output.amount.cmp(&a.output.amount)));

    // What coin selection adds; `must_spend` is counted in `provided` already.
    let mut chosen: Vec<Spendable> = Vec::new();
    let mut tx_outputs: Vec<TxOut> = signed.iter().map(|p| p.output.clone()).collect();
    tx_outputs.extend(repayments);
    let fee_output = subtract_fee_from.map(|i| tx_outputs.len() + i);
    tx_outputs.extend(outputs);
    let mut change_outputs = Vec::new();

    // Tokens first: exact amounts, with change in the same token.
    for (asset, surplus) in cover_tokens(&provided, &required, &coins, &mut chosen)? {
        change_outputs.push(tx_outputs.len());
        tx_outputs.push(TxOut { asset, amount: surplus, lock: Lock::Key(change) });
    }
    coins.retain(|c| c.output.asset == AssetId::Coin && !chosen.iter().any(|k| k.outpoint == c.outpoint));

    // Then coins, with the fee for the transaction's exact size.
    let mut presigned: Vec<TxIn> = signed.into_iter().map(|p| p.input).collect();
    let presigned_count = presigned.len();
    // Contract inputs are laid out now, with witnesses of their final size.
    presigned
        .extend(contracts.iter().map(|c| TxIn { prev_out: c.outpoint, witness: contract_placeholder(&c.path, mode) }));
    let size = Size {
        // Version and lock time, and the inputs laid out already, as they will be.
        fixed: 8 + presigned.iter().map(Encode::encoded_len).sum::<usize>(),
        per_wallet_input: TxIn { prev_out: OutPoint::NULL, witness: placeholder_witness(mode) }.encoded_len(),
    };
    let must = must_spend.len();
    let coin_need = required.get(&AssetId::Coin).copied().unwrap_or_default();
    let coin_total = |chosen: &[Spendable]| {
        chosen
            .iter()
            .filter(|c| c.output.asset == AssetId::Coin)
            .fold(provided.get(&AssetId::Coin).copied().unwrap_or_default(), |t, c| t.saturating_add(c.output.amount))
    };
    let available = coins.iter().fold(coin_total(&chosen), |t, c| t.saturating_add(c.output.amount));
    let coin_change = TxOut { asset: AssetId::Coin, amount: Amount::ZERO, lock: Lock::Key(change) };
    let fee_without_change = |chosen: &[Spendable], outputs: &[TxOut]| {
        fee_rate.fee_for(size.of(must + chosen.len(), presigned.len(), outputs))
    };
    let need_with_fee =
        |chosen: &[Spendable], outputs: &[TxOut]| coin_need.checked_add(fee_without_change(chosen, outputs));

    if let Some(index) = fee_output {
        let fee = subtract_fee(
            &mut tx_outputs,
            index,
            coin_total(&chosen),
            coin_need,
            &mut change_outputs,
            |outputs| fee_without_change(&chosen, outputs),
            coin_change,
        )?;
        return Ok(lay_out(
            presigned,
            presigned_count,
            contracts,
            must_spend,
            chosen,
            tx_outputs,
            change_outputs,
            fee,
            mode,
        ));
    }
    // One coin that covers everything with less than a change output's worth left over.
    let slack = fee_rate.fee_for(coin_change.encoded_len()).saturating_add(DUST);
    if coin_total(&chosen) < need_with_fee(&chosen, &tx_outputs).unwrap_or(Amount::MAX_MONEY) {
        let single = coins.iter().rev().find(|c| {
            let mut with = chosen.clone();
            with.push((*c).clone());
            c.confirmed
                && need_with_fee(&with, &tx_outputs)
                    .is_some_and(|need| coin_total(&with).checked_sub(need).is_some_and(|excess| excess < slack))
        });
        if let Some(single) = single.cloned() {
            chosen.push(single);
        }
    }
    let mut remaining = coins.into_iter();
    let fee = loop {
        let need = need_with_fee(&chosen, &tx_outputs).ok_or(Error::AmountTooLarge)?;
        let have = coin_total(&chosen);
        if have >= need {
            let mut with_change = tx_outputs.clone();
            with_change.push(coin_change.clone());
            let fee = fee_without_change(&chosen, &with_change);
            match have.checked_sub(coin_need).and_then(|left| left.checked_sub(fee)).filter(|c| *c >= DUST) {
                Some(amount) => {
                    change_outputs.push(tx_outputs.len());
                    tx_outputs.push(TxOut { amount, ..coin_change });
                    break fee;
                }
                None => break have.checked_sub(coin_need).ok_or(Error::AmountTooLarge)?,
            }
        }
        if must + chosen.len() >= MAX_INPUTS {
            return Err(Error::TooManyInputs { inputs: MAX_INPUTS });
        }
        match remaining.next() {
            Some(coin) => chosen.push(coin),
            None => return Err(Error::InsufficientFunds { needed: need, available }),
        }
    };
    Ok(lay_out(presigned, presigned_count, contracts, must_spend, chosen, tx_outputs, change_outputs, fee, mode))
}

/// Takes the fee for the layout out of output `index` (a coin output); the coin surplus (what
/// is provided beyond what is paid) goes to change, or to the fee when under dust.
fn subtract_fee(
    outputs: &mut Vec<TxOut>,
    index: usize,
    have: Amount,
    need: Amount,
    change_outputs: &mut Vec<usize>,
    fee_of: impl Fn(&[TxOut]) -> Amount,
    coin_change: TxOut,
) -> Result<Amount, Error> {
    let surplus = have.checked_sub(need).ok_or(Error::InsufficientFunds { needed: need, available: have })?;
    let mut with_change = outputs.clone();
    with_change.push(coin_change.clone());
    let (fee, change) = if surplus >= DUST { (fee_of(&with_change), Some(surplus)) } else { (fee_of(outputs), None) };
    let output = outputs.get_mut(index).filter(|o| o.asset == AssetId::Coin).ok_or(Error::AmountTooLarge)?;
    output.amount = output.amount.checked_sub(fee).filter(|a| *a >= DUST).ok_or(Error::AmountTooSmall)?;
    if let Some(amount) = change {
        change_outputs.push(outputs.len());
        outputs.push(TxOut { amount, ..coin_change });
        Ok(fee)
    } else {
        Ok(fee.saturating_add(surplus))
    }
}

/// The transaction laid out: inputs others signed, contract inputs, then the wallet's coins.
#[allow(clippy::too_many_arguments)]
fn lay_out(
    mut inputs: Vec<TxIn>,
    presigned: usize,
    contracts: Vec<ContractSpend>,
    must_spend: Vec<Spendable>,
    chosen: Vec<Spendable>,
    outputs: Vec<TxOut>,
    change: Vec<usize>,
    fee: Amount,
    mode: SigHashMode,
) -> Draft {
    let chosen: Vec<Spendable> = must_spend.into_iter().chain(chosen).collect();
    inputs.extend(chosen.iter().map(|c| TxIn { prev_out: c.outpoint, witness: placeholder_witness(mode) }));
    let tx = Transaction { version: 1, inputs, outputs, lock_time: 0 };
    let spent = contracts
        .into_iter()
        .map(|c| (c.output, c.key, Some(c.path)))
        .chain(chosen.into_iter().map(|c| (c.output, c.key_hash, None)))
        .collect();
    Draft { tx, spent, presigned, change, fee, mode }
}

/// Chooses coins of every asset but the coin (largest first) until each covers what is
/// `required` beyond what is `provided`, adding them to `chosen`; returns the change due per
/// asset.
fn cover_tokens(
    provided: &BTreeMap<AssetId, Amount>,
    required: &BTreeMap<AssetId, Amount>,
    coins: &[Spendable],
    chosen: &mut Vec<Spendable>,
) -> Result<Vec<(AssetId, Amount)>, Error> {
    let assets: std::collections::BTreeSet<AssetId> =
        provided.keys().chain(required.keys()).copied().filter(|a| *a != AssetId::Coin).collect();
    let mut change = Vec::new();
    for asset in assets {
        let need = required.get(&asset).copied().unwrap_or_default();
        let mut have = provided.get(&asset).copied().unwrap_or_default();
        if have < need {
            let of_asset = || coins.iter().filter(|c| c.output.asset == asset);
            let available = of_asset().fold(have, |t, c| t.saturating_add(c.output.amount));
            for coin in of_asset() {
                if have >= need {
                    break;
                }
                have = have.saturating_add(coin.output.amount);
                chosen.push(coin.clone());
            }
            if have < need {
                return Err(Error::InsufficientAsset { asset, needed: need, available });
            }
        }
        if let Some(surplus) = have.checked_sub(need).filter(|s| *s > Amount::ZERO) {
            change.push((asset, surplus));
        }
    }
    Ok(change)
}

/// Signs the wallet's inputs of `draft` with the key `key_for` gives for each key hash.
pub(crate) fn sign(
    draft: Draft,
    network: Network,
    key_for: impl Fn(&KeyHash) -> Option<SecretKey>,
) -> Result<Transaction, Error> {
    let Draft { mut tx, spent, presigned, mode, .. } = draft;
    let mut witnesses = Vec::with_capacity(spent.len());
    {
        let mut sighashes = peerchain_primitives::transaction::SighashCache::new(&tx);
        for (offset, (output, key_hash, path)) in spent.iter().enumerate() {
            let key = key_for(key_hash).ok_or(Error::MissingKey(*key_hash))?;
            let message = sighashes.signature_hash(presigned + offset, output, mode, network.magic());
            let signature = TxSignature { mode, signature: key.sign(&message) };
            let public_key = key.public_key();
            witnesses.push(match path {
                None | Some(ContractPath::Repay { .. }) => Witness::Key { public_key, signature },
                Some(ContractPath::Timeout) => Witness::TimeLockRefund { public_key, signature },
                // The others' signatures are added to this one (see `add_signature`).
                Some(ContractPath::Shared { index, .. }) => Witness::Multisig { signatures: vec![(*index, signature)] },
            });
        }
    }
    for (input, witness) in tx.inputs[presigned..].iter_mut().zip(witnesses) {
        input.witness = witness;
    }
    Ok(tx)
}

/// Adds a signature by key `index` to input `input`'s multisig witness, keeping the
/// signatures in key order and each key once.
pub fn add_signature(tx: &mut Transaction, input: usize, index: u8, signature: TxSignature) {
    let Some(TxIn { witness, .. }) = tx.inputs.get_mut(input) else { return };
    let Witness::Multisig { signatures } = witness else {
        *witness = Witness::Multisig { signatures: vec![(index, signature)] };
        return;
    };
    if !signatures.iter().any(|(i, _)| *i == index) {
        signatures.push((index, signature));
        signatures.sort_by_key(|(i, _)| *i);
    }
}

/// The maker's side of an offer: `coin` signed over itself and `want` (which the taker must
/// put at the same index), valid up to block `expiry`.
pub(crate) fn sign_offer(coin: &Spendable, want: &TxOut, expiry: u32, key: &SecretKey, network: Network) -> TxIn {
    let mode = SigHashMode::SingleInputOutputUntil(expiry);
    // The paired-output hash covers neither the index nor the other inputs and outputs, so a
    // one-input, one-output transaction gives the message every layout will check.
    let alone = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: coin.outpoint, witness: placeholder_witness(mode) }],
        outputs: vec![want.clone()],
        lock_time: 0,
    };
    let message = alone.signature_hash(0, &coin.output, mode, network.magic());
    TxIn {
        prev_out: coin.outpoint,
        witness: Witness::Key {
            public_key: key.public_key(),
            signature: TxSignature { mode, signature: key.sign(&message) },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerchain_primitives::{TokenId, TxId};

    fn coin(n: u8, units: u64, confirmed: bool) -> Spendable {
        asset_coin(n, AssetId::Coin, units, confirmed)
    }

    fn asset_coin(n: u8, asset: AssetId, units: u64, confirmed: bool) -> Spendable {
        Spendable {
            outpoint: OutPoint::new(TxId([n; 32]), 0),
            output: TxOut { asset, amount: Amount::from_units(units), lock: Lock::Key(KeyHash([1; 32])) },
            key_hash: KeyHash([1; 32]),
            confirmed,
        }
    }

    const TO: KeyHash = KeyHash([2; 32]);
    const CHANGE: KeyHash = KeyHash([3; 32]);

    fn pay(units: u64, rate: u64) -> Plan {
        Plan::paying(vec![TxOut::coins_to(Amount::from_units(units), TO)], FeeRate::per_byte(rate))
    }

    fn outputs_of(draft: &Draft, asset: AssetId) -> u64 {
        draft.tx.outputs.iter().filter(|o| o.asset == asset).map(|o| o.amount.units()).sum()
    }

    #[test]
    fn a_single_coin_that_fits_pays_without_change() {
        let one_in_one_out = Transaction {
            version: 1,
            inputs: vec![TxIn { prev_out: OutPoint::NULL, witness: placeholder_witness(SigHashMode::All) }],
            outputs: vec![TxOut::coins_to(Amount::from_units(50_000), TO)],
            lock_time: 0,
        }
        .encoded_len() as u64;
        let exact = 50_000 + one_in_one_out;
        let coins = vec![coin(1, 1_000_000, true), coin(2, exact, true), coin(3, 10_000, true)];
        let draft = draft(pay(50_000, 1), coins, CHANGE).unwrap();
        assert_eq!(draft.tx.inputs.len(), 1);
        assert_eq!(draft.tx.inputs[0].prev_out.txid, TxId([2; 32]));
        assert_eq!(draft.tx.outputs.len(), 1);
        assert_eq!(draft.fee.units(), one_in_one_out);
        assert_eq!(draft.fee.units(), draft.tx.encoded_len() as u64, "the fee covers the exact size");
    }

    #[test]
    fn largest_first_with_change_and_the_fee_covers_the_real_size() {
        let coins = vec![coin(1, 30_000, true), coin(2, 40_000, true), coin(3, 50_000, false)];
        let draft = draft(pay(60_000, 2), coins, CHANGE).unwrap();
        // Confirmed coins first: 40k and 30k, not the unconfirmed 50k.
        let used: Vec<_> = draft.tx.inputs.iter().map(|i| i.prev_out.txid).collect();
        assert_eq!(used, vec![TxId([2; 32]), TxId([1; 32])]);
        assert_eq!(draft.tx.outputs[1].lock, Lock::Key(CHANGE));
        assert_eq!(draft.change, vec![1]);
        assert_eq!(draft.fee.units(), 2 * draft.tx.encoded_len() as u64);
        assert_eq!(outputs_of(&draft, AssetId::Coin) + draft.fee.units(), 70_000);
    }

    #[test]
    fn insufficient_funds_says_how_much_there_is() {
        let coins = vec![coin(1, 30_000, true), coin(2, 40_000, true)];
        match draft(pay(70_000, 1), coins, CHANGE) {
            Err(Error::InsufficientFunds { needed, available }) => {
                assert_eq!(available.units(), 70_000);
                assert!(needed.units() > 70_000);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dust_change_goes_to_the_fee() {
        let probe = draft(pay(50_000, 1), vec![coin(1, 10_000_000, true), coin(2, 10_000_000, true)], CHANGE).unwrap();
        // Two inputs, one output, plus 500 units: less than dust would be left.
        let two_in_one_out = probe.fee.units() - TxOut::coins_to(Amount::ZERO, CHANGE).encoded_len() as u64
            + probe.tx.inputs[0].encoded_len() as u64;
        let units = 50_000 + two_in_one_out + 500;
        let coins = vec![coin(1, units / 2, true), coin(2, units - units / 2, true)];
        let draft = draft(pay(50_000, 1), coins, CHANGE).unwrap();
        assert_eq!(draft.tx.outputs.len(), 1);
        assert_eq!(draft.fee.units(), units - 50_000);
    }

    #[test]
    fn tokens_are_chosen_per_asset_with_change_in_the_same_token() {
        let gold = AssetId::Token(TokenId([9; 32]));
        let coins = vec![
            coin(1, 1_000_000, true),
            asset_coin(2, gold, 700, true),
            asset_coin(3, gold, 500, true),
            asset_coin(4, AssetId::Token(TokenId([8; 32])), 5_000, true),
        ];
        let plan = Plan::paying(
            vec![TxOut { asset: gold, amount: Amount::from_units(1_000), lock: Lock::Key(TO) }],
            FeeRate::per_byte(1),
        );
        let draft = draft(plan, coins.clone(), CHANGE).unwrap();
        assert_eq!(outputs_of(&draft, gold), 1_200, "1,000 paid and 200 back");
        assert_eq!(draft.tx.inputs.len(), 3, "both gold coins and one coin for the fee");
        assert!(draft.tx.outputs.iter().all(|o| o.asset != AssetId::Token(TokenId([8; 32]))));
        assert_eq!(draft.change.len(), 2);

        let too_much = Plan::paying(
            vec![TxOut { asset: gold, amount: Amount::from_units(1_201), lock: Lock::Key(TO) }],
            FeeRate::per_byte(1),
        );
        match super::draft(too_much, coins, CHANGE) {
            Err(Error::InsufficientAsset { asset, needed, available }) => {
                assert_eq!((asset, needed.units(), available.units()), (gold, 1_201, 1_200));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn signed_pairs_keep_their_index_and_their_surplus_comes_to_the_wallet() {
        // A maker gives 1,000 gold for 20,000 units of coin; the taker pays from its coins.
        let gold = AssetId::Token(TokenId([9; 32]));
        let maker = asset_coin(7, gold, 1_000, true);
        let pair = SignedPair {
            input: TxIn {
                prev_out: maker.outpoint,
                witness: placeholder_witness(SigHashMode::SingleInputOutputUntil(9)),
            },
            spent: maker.output.clone(),
            output: TxOut::coins_to(Amount::from_units(20_000), KeyHash([7; 32])),
        };
        let plan = Plan { signed: vec![pair.clone()], ..Plan::paying(vec![], FeeRate::per_byte(1)) };
        let draft = draft(plan, vec![coin(1, 100_000, true)], CHANGE).unwrap();
        assert_eq!(draft.tx.inputs[0], pair.input);
        assert_eq!(draft.tx.outputs[0], pair.output);
        assert_eq!(draft.presigned, 1);
        assert_eq!(outputs_of(&draft, gold), 1_000);
        assert!(draft.tx.outputs.iter().any(|o| o.asset == gold && o.lock == Lock::Key(CHANGE)));
        assert_eq!(outputs_of(&draft, AssetId::Coin) + draft.fee.units(), 100_000);
        assert_eq!(draft.fee.units(), draft.tx.encoded_len() as u64);
    }
}
