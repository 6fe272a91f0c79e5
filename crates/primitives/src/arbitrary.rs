//! Proptest strategies for every encoded type, for this crate's tests and for others'.

use proptest::collection::vec;
use proptest::prelude::*;

use crate::amount::Amount;
use crate::block::{Block, BlockHeader};
use crate::hash::{BlockHash, KeyHash, LockHash, MerkleRoot, TokenId, TxId};
use crate::keys::{PublicKey, Signature};
use crate::pow::CompactTarget;
use crate::transaction::{AssetId, Coin, Lock, OutPoint, SigHashMode, Transaction, TxIn, TxOut, TxSignature, Witness};

fn bytes32() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

fn signature() -> impl Strategy<Value = TxSignature> {
    let mode = prop_oneof![
        Just(SigHashMode::All),
        Just(SigHashMode::SingleInputOutput),
        any::<u32>().prop_map(SigHashMode::AllUntil),
        any::<u32>().prop_map(SigHashMode::SingleInputOutputUntil),
    ];
    (mode, vec(any::<u8>(), 64)).prop_map(|(mode, bytes)| {
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&bytes);
        TxSignature { mode, signature: Signature(sig) }
    })
}

/// Any asset id.
pub fn asset() -> impl Strategy<Value = AssetId> {
    prop_oneof![
        Just(AssetId::Coin),
        bytes32().prop_map(|b| AssetId::Token(TokenId(b))),
        bytes32().prop_map(|b| AssetId::MintRight(TokenId(b))),
    ]
}

/// Any lock.
pub fn lock() -> impl Strategy<Value = Lock> {
    prop_oneof![
        bytes32().prop_map(|b| Lock::Key(KeyHash(b))),
        (any::<u8>(), vec(bytes32().prop_map(PublicKey), 0..=16))
            .prop_map(|(threshold, keys)| Lock::Multisig { threshold, keys }),
        (bytes32(), bytes32(), bytes32(), any::<u32>()).prop_map(|(h, c, r, height)| Lock::HashTimeLock {
            hash: LockHash(h),
            claim: KeyHash(c),
            refund: KeyHash(r),
            refund_height: height
        }),
        vec(any::<u8>(), 0..=80).prop_map(|data| Lock::Burn { data }),
        (any::<u8>(), vec(bytes32().prop_map(PublicKey), 0..=16), any::<bool>(), any::<u32>(), bytes32()).prop_map(
            |(threshold, keys, age, n, fallback)| Lock::Escrow {
                threshold,
                keys,
                after: if age { crate::transaction::After::Age(n) } else { crate::transaction::After::Height(n) },
                fallback: KeyHash(fallback),
            }
        ),
        (bytes32(), bytes32(), asset(), any::<u64>(), any::<u32>()).prop_map(|(b, l, repay_asset, amount, term)| {
            Lock::Loan {
                borrower: KeyHash(b),
                lender: KeyHash(l),
                repay_asset,
                repay_amount: Amount::from_units(amount),
                term,
            }
        }),
    ]
}

/// Any output.
pub fn tx_out() -> impl Strategy<Value = TxOut> {
    (asset(), any::<u64>(), lock()).prop_map(|(asset, amount, lock)| TxOut {
        asset,
        amount: Amount::from_units(amount),
        lock,
    })
}

/// Any witness.
pub fn witness() -> impl Strategy<Value = Witness> {
    prop_oneof![
        (any::<u32>(), vec(any::<u8>(), 0..=100)).prop_map(|(height, extra)| Witness::Coinbase { height, extra }),
        (bytes32(), signature()).prop_map(|(k, signature)| Witness::Key { public_key: PublicKey(k), signature }),
        vec((any::<u8>(), signature()), 0..=16).prop_map(|signatures| Witness::Multisig { signatures }),
        (vec(any::<u8>(), 0..=64), bytes32(), signature()).prop_map(|(preimage, k, signature)| {
            Witness::HashLockClaim { preimage, public_key: PublicKey(k), signature }
        }),
        (bytes32(), signature())
            .prop_map(|(k, signature)| Witness::TimeLockRefund { public_key: PublicKey(k), signature }),
    ]
}

/// Any outpoint.
pub fn out_point() -> impl Strategy<Value = OutPoint> {
    (bytes32(), any::<u32>()).prop_map(|(txid, index)| OutPoint { txid: TxId(txid), index })
}

/// Any transaction (of modest size).
pub fn transaction() -> impl Strategy<Value = Transaction> {
    (
        any::<u32>(),
        vec((out_point(), witness()).prop_map(|(prev_out, witness)| TxIn { prev_out, witness }), 0..4),
        vec(tx_out(), 0..4),
        any::<u32>(),
    )
        .prop_map(|(version, inputs, outputs, lock_time)| Transaction { version, inputs, outputs, lock_time })
}

/// Any header.
pub fn header() -> impl Strategy<Value = BlockHeader> {
    (any::<u32>(), bytes32(), bytes32(), any::<u64>(), any::<u32>(), any::<u64>()).prop_map(
        |(version, prev, root, time, bits, nonce)| BlockHeader {
            version,
            prev_hash: BlockHash(prev),
            merkle_root: MerkleRoot(root),
            time,
            bits: CompactTarget(bits),
            nonce,
        },
    )
}

/// Any block (of modest size).
pub fn block() -> impl Strategy<Value = Block> {
    (header(), vec(transaction(), 0..4)).prop_map(|(header, transactions)| Block { header, transactions })
}

/// Any UTXO entry.
pub fn coin() -> impl Strategy<Value = Coin> {
    (tx_out(), any::<u32>(), any::<bool>()).prop_map(|(output, height, is_coinbase)| Coin {
        output,
        height,
        is_coinbase,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{Decode, Encode};

    fn round_trips<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: &T) -> Result<(), TestCaseError> {
        let bytes = value.to_bytes();
        prop_assert_eq!(bytes.len(), value.encoded_len());
        let back = T::from_bytes(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, value);
        // One more byte is trailing garbage, never silently ignored.
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(T::from_bytes(&longer).is_err());
        // Every strict prefix is incomplete.
        if !bytes.is_empty() {
            prop_assert!(T::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn transactions_round_trip(tx in transaction()) { round_trips(&tx)?; }

        #[test]
        fn blocks_round_trip(block in block()) { round_trips(&block)?; }

        #[test]
        fn coins_round_trip(coin in coin()) { round_trips(&coin)?; }

        #[test]
        fn txid_ignores_witnesses_but_wtxid_does_not(tx in transaction(), w in witness()) {
            let is_coinbase_witness = |w: &Witness| matches!(w, Witness::Coinbase { .. });
            prop_assume!(!tx.inputs.is_empty() && tx.inputs[0].witness != w);
            prop_assume!(!is_coinbase_witness(&tx.inputs[0].witness) && !is_coinbase_witness(&w));
            let mut changed = tx.clone();
            changed.inputs[0].witness = w;
            prop_assert_eq!(changed.txid(), tx.txid());
            prop_assert_ne!(changed.wtxid(), tx.wtxid());
        }

        #[test]
        fn coinbase_txids_differ_by_height(a in any::<u32>(), b in any::<u32>()) {
            prop_assume!(a != b);
            let coinbase = |height| Transaction {
                version: 1,
                inputs: vec![TxIn { prev_out: OutPoint::NULL, witness: Witness::Coinbase { height, extra: vec![] } }],
                outputs: vec![],
                lock_time: 0,
            };
            prop_assert_ne!(coinbase(a).txid(), coinbase(b).txid());
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_decoders(bytes in vec(any::<u8>(), 0..512)) {
            let _ = Transaction::from_bytes(&bytes);
            let _ = Block::from_bytes(&bytes);
            let _ = BlockHeader::from_bytes(&bytes);
            let _ = Coin::from_bytes(&bytes);
            // Whatever decodes must re-encode to the same bytes: the encoding is canonical.
            if let Ok(tx) = Transaction::from_bytes(&bytes) {
                prop_assert_eq!(tx.to_bytes(), bytes.clone());
            }
            if let Ok(block) = Block::from_bytes(&bytes) {
                prop_assert_eq!(block.to_bytes(), bytes);
            }
        }
    }
}
