//! Coin selection and signing of a payment.

use peerchain_primitives::{
    Amount, AssetId, Encode, KeyHash, Lock, Network, OutPoint, PublicKey, SigHashMode, Signature, Transaction, TxIn,
    TxOut, TxSignature, Witness,
};

use crate::Error;
use crate::ledger::Spendable;

/// Change smaller than this is left to the miner: an output worth less than the fee of
/// spending it later is a loss to its owner and a burden on everyone's UTXO set.
pub const DUST: Amount = Amount::from_units(1_000);

/// The most inputs one payment gathers; beyond it the transaction grows past what relays well.
pub const MAX_INPUTS: usize = 2_000;

/// A payment chosen and laid out, not yet signed.
#[derive(Debug)]
pub(crate) struct Draft {
    pub(crate) tx: Transaction,
    /// The outputs the inputs spend, in input order, with the key that unlocks each.
    pub(crate) spent: Vec<(TxOut, KeyHash)>,
    pub(crate) fee: Amount,
}

/// Sizes of a key-spend transaction, from the encoding itself.
struct Sizes {
    base: usize,
    per_input: usize,
    per_output: usize,
}

impl Sizes {
    fn measure() -> Sizes {
        let input = TxIn {
            prev_out: OutPoint::NULL,
            witness: Witness::Key {
                public_key: PublicKey([0; 32]),
                signature: TxSignature { mode: SigHashMode::All, signature: Signature([0; 64]) },
            },
        };
        let output = TxOut::coins_to(Amount::ZERO, KeyHash::ZERO);
        let tx = |inputs: usize, outputs: usize| {
            Transaction {
                version: 1,
                inputs: vec![input.clone(); inputs],
                outputs: vec![output.clone(); outputs],
                lock_time: 0,
            }
            .encoded_len()
        };
        let one = tx(1, 1);
        let per_input = tx(2, 1) - one;
        let per_output = tx(1, 2) - one;
        Sizes { base: one - per_input - per_output, per_input, per_output }
    }

    /// The size with `inputs` and `outputs`, plus two bytes for count varints that grow.
    fn of(&self, inputs: usize, outputs: usize) -> usize {
        self.base + inputs * self.per_input + outputs * self.per_output + 2
    }
}

fn fee(rate: u64, size: usize) -> Amount {
    Amount::from_units(rate.saturating_mul(size as u64))
}

fn total(coins: &[Spendable]) -> Amount {
    coins.iter().fold(Amount::ZERO, |t, c| t.checked_add(c.output.amount).unwrap_or(Amount::MAX_MONEY))
}

/// Chooses coins to pay `amount` to `to` at `fee_rate` base units per byte, with change to
/// `change` if any is worth keeping. Confirmed coins are used before the wallet's own
/// unconfirmed change; one coin that pays without change is preferred; otherwise the largest
/// coins first, so that few inputs (and a small fee) do.
pub(crate) fn draft_payment(
    mut coins: Vec<Spendable>,
    to: KeyHash,
    amount: Amount,
    fee_rate: u64,
    change: KeyHash,
) -> Result<Draft, Error> {
    let sizes = Sizes::measure();
    let available = total(&coins);
    coins.sort_by(|a, b| b.confirmed.cmp(&a.confirmed).then(b.output.amount.cmp(&a.output.amount)));
    let need = |inputs: usize, outputs: usize| amount.checked_add(fee(fee_rate, sizes.of(inputs, outputs)));

    // One coin that covers the payment with less than a change output's worth left over.
    let changeless_slack = fee(fee_rate, sizes.per_output).checked_add(DUST).unwrap_or(Amount::MAX_MONEY);
    let single = coins.iter().enumerate().rev().find(|(_, c)| {
        need(1, 1).is_some_and(|need| {
            c.confirmed
                && c.output.amount >= need
                && c.output.amount.checked_sub(need).is_some_and(|excess| excess < changeless_slack)
        })
    });
    let chosen: Vec<Spendable> = match single {
        Some((index, _)) => vec![coins[index].clone()],
        None => {
            let mut chosen = Vec::new();
            let mut sum = Amount::ZERO;
            for coin in coins {
                if chosen.len() == MAX_INPUTS {
                    return Err(Error::TooManyInputs { inputs: MAX_INPUTS });
                }
                sum = sum.checked_add(coin.output.amount).unwrap_or(Amount::MAX_MONEY);
                chosen.push(coin);
                if need(chosen.len(), 1).is_some_and(|need| sum >= need) {
                    break;
                }
            }
            chosen
        }
    };
    let sum = total(&chosen);
    let without_change = need(chosen.len(), 1).ok_or(Error::AmountTooLarge)?;
    if sum < without_change {
        return Err(Error::InsufficientFunds { needed: without_change, available });
    }
    let with_change = need(chosen.len(), 2).ok_or(Error::AmountTooLarge)?;
    let mut outputs = vec![TxOut::coins_to(amount, to)];
    let change_amount = sum.checked_sub(with_change).filter(|c| *c >= DUST);
    if let Some(change_amount) = change_amount {
        outputs.push(TxOut::coins_to(change_amount, change));
    }
    let paid = amount.checked_add(change_amount.unwrap_or(Amount::ZERO)).ok_or(Error::AmountTooLarge)?;
    let fee = sum.checked_sub(paid).ok_or(Error::AmountTooLarge)?;
    let tx = Transaction {
        version: 1,
        inputs: chosen
            .iter()
            .map(|c| TxIn {
                prev_out: c.outpoint,
                witness: Witness::Key {
                    public_key: PublicKey([0; 32]),
                    signature: TxSignature { mode: SigHashMode::All, signature: Signature([0; 64]) },
                },
            })
            .collect(),
        outputs,
        lock_time: 0,
    };
    let spent = chosen.into_iter().map(|c| (c.output, c.key_hash)).collect();
    Ok(Draft { tx, spent, fee })
}

/// Signs every input of `draft` with the key `key_for` gives for its key hash.
pub(crate) fn sign(
    draft: Draft,
    network: Network,
    key_for: impl Fn(&KeyHash) -> Option<peerchain_primitives::SecretKey>,
) -> Result<Transaction, Error> {
    let Draft { mut tx, spent, .. } = draft;
    let mut witnesses = Vec::with_capacity(spent.len());
    {
        let mut sighashes = peerchain_primitives::transaction::SighashCache::new(&tx);
        for (index, (output, key_hash)) in spent.iter().enumerate() {
            debug_assert!(output.asset == AssetId::Coin && output.lock == Lock::Key(*key_hash));
            let key = key_for(key_hash).ok_or(Error::MissingKey(*key_hash))?;
            let message = sighashes.signature_hash(index, output, SigHashMode::All, network.magic());
            witnesses.push(Witness::Key {
                public_key: key.public_key(),
                signature: TxSignature { mode: SigHashMode::All, signature: key.sign(&message) },
            });
        }
    }
    for (input, witness) in tx.inputs.iter_mut().zip(witnesses) {
        input.witness = witness;
    }
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerchain_primitives::TxId;

    fn coin(n: u8, units: u64, confirmed: bool) -> Spendable {
        Spendable {
            outpoint: OutPoint::new(TxId([n; 32]), 0),
            output: TxOut::coins_to(Amount::from_units(units), KeyHash([1; 32])),
            key_hash: KeyHash([1; 32]),
            confirmed,
        }
    }

    const TO: KeyHash = KeyHash([2; 32]);
    const CHANGE: KeyHash = KeyHash([3; 32]);

    #[test]
    fn a_single_coin_that_fits_pays_without_change() {
        let sizes = Sizes::measure();
        let exact = 50_000 + sizes.of(1, 1) as u64;
        let coins = vec![coin(1, 1_000_000, true), coin(2, exact, true), coin(3, 10_000, true)];
        let draft = draft_payment(coins, TO, Amount::from_units(50_000), 1, CHANGE).unwrap();
        assert_eq!(draft.tx.inputs.len(), 1);
        assert_eq!(draft.tx.inputs[0].prev_out.txid, TxId([2; 32]));
        assert_eq!(draft.tx.outputs.len(), 1);
        assert_eq!(draft.fee.units(), sizes.of(1, 1) as u64);
    }

    #[test]
    fn largest_first_with_change_and_the_fee_covers_the_real_size() {
        let coins = vec![coin(1, 30_000, true), coin(2, 40_000, true), coin(3, 50_000, false)];
        let draft = draft_payment(coins, TO, Amount::from_units(60_000), 2, CHANGE).unwrap();
        // Confirmed coins first: 40k and 30k, not the unconfirmed 50k.
        let used: Vec<_> = draft.tx.inputs.iter().map(|i| i.prev_out.txid).collect();
        assert_eq!(used, vec![TxId([2; 32]), TxId([1; 32])]);
        assert_eq!(draft.tx.outputs[1].lock, Lock::Key(CHANGE));
        let size = draft.tx.encoded_len() as u64;
        assert!(draft.fee.units() >= 2 * size && draft.fee.units() <= 2 * size + 4, "{draft:?}");
        let out: u64 = draft.tx.outputs.iter().map(|o| o.amount.units()).sum();
        assert_eq!(out + draft.fee.units(), 70_000);
    }

    #[test]
    fn insufficient_funds_says_how_much_there_is() {
        let coins = vec![coin(1, 30_000, true), coin(2, 40_000, true)];
        match draft_payment(coins, TO, Amount::from_units(70_000), 1, CHANGE) {
            Err(Error::InsufficientFunds { needed, available }) => {
                assert_eq!(available.units(), 70_000);
                assert!(needed.units() > 70_000);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dust_change_goes_to_the_fee() {
        let sizes = Sizes::measure();
        let units = 50_000 + sizes.of(2, 2) as u64 + 500;
        let coins = vec![coin(1, units / 2, true), coin(2, units - units / 2, true)];
        let draft = draft_payment(coins, TO, Amount::from_units(50_000), 1, CHANGE).unwrap();
        assert_eq!(draft.tx.outputs.len(), 1);
        assert_eq!(draft.fee.units(), units - 50_000);
    }
}
