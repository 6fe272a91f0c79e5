//! Payment channels for paid files: the buyer locks the price in an escrow of two keys
//! (buyer, seller; the buyer alone after a timeout), then pays as verified pieces arrive by
//! signing ever larger payouts of it. The seller keeps the latest and closes the channel
//! with its own signature. Neither side risks more than one piece: the seller serves one
//! piece ahead of what it was paid, the buyer pays only for pieces it verified.

use peerchain_primitives::{After, Encode, Lock, OutPoint, PublicKey, SigHashMode, Transaction, TxOut, Witness};

/// Why a channel payment is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// It spends something else than the one channel escrow.
    #[error("a payment spends the channel's escrow and nothing else")]
    WrongInputs,
    /// The escrow is not a channel to this seller: two keys, the buyer's first, the seller's
    /// second, refundable to the buyer only.
    #[error("the escrow is not a payment channel to this seller")]
    NotAChannel,
    /// The escrow holds a token, or less than the price.
    #[error("the escrow must hold at least the price in coins, it holds {held}")]
    TooLittle {
        /// Base units held.
        held: u64,
    },
    /// The buyer's signature is missing or does not verify.
    #[error("the payment is not signed by the buyer's key of the channel")]
    BadSignature,
    /// More than two outputs, or none paying the seller.
    #[error("a payment has an output to the seller and at most one back to the buyer")]
    BadOutputs,
    /// It pays the seller no more than an earlier payment.
    #[error("the payment pays {paid}, no more than the {before} paid already")]
    NotMore {
        /// What it pays.
        paid: u64,
        /// What the channel paid before.
        before: u64,
    },
    /// It leaves too little fee for the closing transaction to be relayed.
    #[error("the payment leaves a fee of {fee}, the closing transaction needs {needed}")]
    FeeTooLow {
        /// The fee left.
        fee: u64,
        /// The least fee.
        needed: u64,
    },
}

/// Bytes the seller's signature adds to a payment, for the fee check: its key index, the
/// signature hash mode and the signature.
const SELLER_SIGNATURE_BYTES: u64 = 1 + 1 + 64;

/// The buyer and seller keys of a channel escrow, if `lock` is one to `seller`: 2 of
/// (buyer, seller), the fallback being the buyer's key, refundable from a height.
pub fn channel_parties(lock: &Lock, seller: &PublicKey) -> Option<PublicKey> {
    match lock {
        Lock::Escrow { threshold: 2, keys, after: After::Height(_), fallback }
            if keys.len() == 2 && keys[1] == *seller && *fallback == keys[0].key_hash() =>
        {
            Some(keys[0])
        }
        _ => None,
    }
}

/// The network's rules a payment is checked under.
#[derive(Debug, Clone, Copy)]
pub struct PaymentRules {
    /// The least fee rate relayed: the closing transaction must pay it.
    pub min_fee_per_byte: u64,
    /// The network's signature domain.
    pub network_magic: u8,
}

/// Checks a buyer's payment `tx` of the channel `escrow` (holding `coin`) to `seller`,
/// against the `price` and what was paid `before`; what it pays the seller, in base units.
pub fn check_payment(
    tx: &Transaction,
    (escrow, coin): (OutPoint, &TxOut),
    seller: &PublicKey,
    price: u64,
    before: u64,
    rules: PaymentRules,
) -> Result<u64, PaymentError> {
    let PaymentRules { min_fee_per_byte, network_magic } = rules;
    if tx.inputs.len() != 1 || tx.inputs[0].prev_out != escrow {
        return Err(PaymentError::WrongInputs);
    }
    let buyer = channel_parties(&coin.lock, seller).ok_or(PaymentError::NotAChannel)?;
    if coin.asset != peerchain_primitives::AssetId::Coin || coin.amount.units() < price {
        return Err(PaymentError::TooLittle { held: coin.amount.units() });
    }
    let Witness::Multisig { signatures } = &tx.inputs[0].witness else {
        return Err(PaymentError::BadSignature);
    };
    let [(0, signature)] = signatures.as_slice() else {
        return Err(PaymentError::BadSignature);
    };
    let verified = signature.mode == SigHashMode::All
        && buyer.verifying_key().is_some_and(|key| {
            let message = tx.signature_hash(0, coin, signature.mode, network_magic);
            key.verify_strict(&message, &signature.signature.to_dalek()).is_ok()
        });
    if !verified {
        return Err(PaymentError::BadSignature);
    }
    let to_seller = Lock::Key(seller.key_hash());
    let back = Lock::Key(buyer.key_hash());
    let mut paid = None;
    for output in &tx.outputs {
        match &output.lock {
            lock if *lock == to_seller && paid.is_none() && output.asset == coin.asset => {
                paid = Some(output.amount.units())
            }
            lock if *lock == back && output.asset == coin.asset => {}
            _ => return Err(PaymentError::BadOutputs),
        }
    }
    let paid = paid.ok_or(PaymentError::BadOutputs)?;
    if tx.outputs.len() > 2 || paid > price {
        return Err(PaymentError::BadOutputs);
    }
    if paid <= before {
        return Err(PaymentError::NotMore { paid, before });
    }
    let out: u64 = tx.outputs.iter().map(|o| o.amount.units()).sum();
    let fee = coin.amount.units().saturating_sub(out);
    let needed = (tx.encoded_len() as u64 + SELLER_SIGNATURE_BYTES) * min_fee_per_byte;
    if out > coin.amount.units() || fee < needed {
        return Err(PaymentError::FeeTooLow { fee, needed });
    }
    Ok(paid)
}

#[cfg(test)]
mod tests {
    use peerchain_primitives::{Amount, AssetId, SecretKey, TxId, TxIn, TxSignature};

    use super::*;

    const MAGIC: u8 = 7;
    const PRICE: u64 = 100_000;
    const RULES: PaymentRules = PaymentRules { min_fee_per_byte: 1, network_magic: MAGIC };

    struct Channel {
        buyer: SecretKey,
        seller: SecretKey,
        escrow: OutPoint,
        coin: TxOut,
    }

    fn channel() -> Channel {
        let (buyer, seller) = (SecretKey::generate(), SecretKey::generate());
        let lock = Lock::Escrow {
            threshold: 2,
            keys: vec![buyer.public_key(), seller.public_key()],
            after: After::Height(500),
            fallback: buyer.public_key().key_hash(),
        };
        let coin = TxOut { asset: AssetId::Coin, amount: Amount::from_units(PRICE + 3_000), lock };
        Channel { buyer, seller, escrow: OutPoint::new(TxId([1; 32]), 0), coin }
    }

    /// A payment of `paid` to the seller, the rest less `fee` back, signed by `signer`.
    fn payment(channel: &Channel, paid: u64, fee: u64, signer: &SecretKey, index: u8) -> Transaction {
        let outputs = vec![
            TxOut {
                asset: AssetId::Coin,
                amount: Amount::from_units(paid),
                lock: Lock::Key(channel.seller.public_key().key_hash()),
            },
            TxOut {
                asset: AssetId::Coin,
                amount: Amount::from_units(channel.coin.amount.units() - paid - fee),
                lock: Lock::Key(channel.buyer.public_key().key_hash()),
            },
        ];
        let input = TxIn { prev_out: channel.escrow, witness: Witness::Multisig { signatures: vec![] } };
        let mut tx = Transaction { version: 1, inputs: vec![input], outputs, lock_time: 0 };
        sign(&mut tx, channel, signer, index);
        tx
    }

    fn sign(tx: &mut Transaction, channel: &Channel, signer: &SecretKey, index: u8) {
        let message = tx.signature_hash(0, &channel.coin, SigHashMode::All, MAGIC);
        let signature = TxSignature { mode: SigHashMode::All, signature: signer.sign(&message) };
        tx.inputs[0].witness = Witness::Multisig { signatures: vec![(index, signature)] };
    }

    fn check(channel: &Channel, tx: &Transaction, before: u64) -> Result<u64, PaymentError> {
        check_payment(tx, (channel.escrow, &channel.coin), &channel.seller.public_key(), PRICE, before, RULES)
    }

    #[test]
    fn a_signed_payment_of_more_than_before_is_taken() {
        let channel = channel();
        let tx = payment(&channel, 40_000, 500, &channel.buyer, 0);
        assert_eq!(check(&channel, &tx, 0), Ok(40_000));
        assert_eq!(check(&channel, &tx, 40_000), Err(PaymentError::NotMore { paid: 40_000, before: 40_000 }));
        assert_eq!(check(&channel, &payment(&channel, PRICE, 500, &channel.buyer, 0), 40_000), Ok(PRICE));
    }

    #[test]
    fn forged_short_or_foreign_payments_are_refused() {
        let channel = channel();
        // Signed by the seller's own key, or by a stranger: not the buyer's promise.
        assert_eq!(
            check(&channel, &payment(&channel, 40_000, 500, &channel.seller, 1), 0),
            Err(PaymentError::BadSignature)
        );
        assert_eq!(
            check(&channel, &payment(&channel, 40_000, 500, &SecretKey::generate(), 0), 0),
            Err(PaymentError::BadSignature)
        );
        // Changed after signing.
        let mut tx = payment(&channel, 40_000, 500, &channel.buyer, 0);
        tx.outputs[0].amount = Amount::from_units(50_000);
        tx.outputs[1].amount = Amount::from_units(channel.coin.amount.units() - 50_500);
        assert_eq!(check(&channel, &tx, 0), Err(PaymentError::BadSignature));
        // More than the price, too little fee, a third output.
        assert_eq!(
            check(&channel, &payment(&channel, PRICE + 1, 500, &channel.buyer, 0), 0),
            Err(PaymentError::BadOutputs)
        );
        assert!(matches!(
            check(&channel, &payment(&channel, 40_000, 10, &channel.buyer, 0), 0),
            Err(PaymentError::FeeTooLow { .. })
        ));
        let mut tx = payment(&channel, 40_000, 1_500, &channel.buyer, 0);
        tx.outputs.push(TxOut {
            asset: AssetId::Coin,
            amount: Amount::from_units(1_000),
            lock: Lock::Key(SecretKey::generate().public_key().key_hash()),
        });
        sign(&mut tx, &channel, &channel.buyer, 0);
        assert_eq!(check(&channel, &tx, 0), Err(PaymentError::BadOutputs));
        // Another escrow, or one whose seller is someone else.
        let mut tx = payment(&channel, 40_000, 500, &channel.buyer, 0);
        tx.inputs[0].prev_out = OutPoint::new(TxId([2; 32]), 0);
        assert_eq!(check(&channel, &tx, 0), Err(PaymentError::WrongInputs));
        let tx = payment(&channel, 40_000, 500, &channel.buyer, 0);
        let other = SecretKey::generate().public_key();
        assert_eq!(
            check_payment(&tx, (channel.escrow, &channel.coin), &other, PRICE, 0, RULES),
            Err(PaymentError::NotAChannel)
        );
    }
}
