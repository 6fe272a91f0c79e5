//! Contract messages in the market actor: escrow payouts signed by one party travel by
//! gossip until the other party's node completes them (only payouts to its own wallet: a
//! seller's node completes a release, the winner's node an arbiter's ruling; an arbiter's
//! node never signs on its own), and dispute notices reach the arbiter. Every node keeps the
//! payouts it saw (bounded) and publishes them again while their escrow is unspent, so a
//! party that comes online later still receives them.

use std::time::Instant;

use peerchain_market::{ContractMessage, dispute_message};
use peerchain_net::{Peer, Topic, Verdict};
use peerchain_primitives::{Coin, Encode, Lock, Transaction, TxId, Witness};
use tracing::{debug, info, warn};

use super::{Market, lock};
use crate::peers::Offence;

/// Most payouts held.
pub(super) const MAX_PAYOUTS: usize = 1_024;
/// Most inputs of a payout: an escrow, and coins for the fee of a token escrow.
const MAX_PAYOUT_INPUTS: usize = 16;

impl Market {
    /// A contract message from gossip (or from this node's RPC calls, with no source).
    pub(super) async fn on_contract(&mut self, data: &[u8], source: Option<Peer>) -> Verdict {
        let message = match ContractMessage::from_wire(data) {
            Ok(message) => message,
            Err(e) => {
                if let Some(peer) = source {
                    self.peers.penalise(peer, Offence::Malformed, &format!("contract message: {e}")).await;
                }
                return Verdict::Reject;
            }
        };
        let verdict = match message {
            ContractMessage::Payout(tx) => self.on_payout(tx).await,
            ContractMessage::Dispute { escrow, key, signature } => {
                let coins = self.chain.coins(vec![escrow]).await.map(|c| c.coins.into_iter().next().flatten());
                let party = match coins {
                    Ok(Some(Coin { output, .. })) => {
                        matches!(&output.lock, Lock::Escrow { keys, .. } if keys.contains(&key))
                    }
                    _ => false,
                };
                let message = dispute_message(&escrow, self.params.network.magic());
                let signed =
                    key.verifying_key().is_some_and(|k| k.verify_strict(&message, &signature.to_dalek()).is_ok());
                match (party, signed) {
                    (true, true) => {
                        let index = self.index.clone();
                        let noted = tokio::task::spawn_blocking(move || lock(&index).note_dispute(&escrow)).await;
                        if !matches!(noted, Ok(Ok(()))) {
                            warn!(?escrow, "cannot record a dispute");
                        }
                        info!(?escrow, "escrow disputed");
                        Verdict::Accept
                    }
                    (true, false) => Verdict::Reject,
                    (false, _) => Verdict::Ignore,
                }
            }
        };
        if verdict == Verdict::Reject
            && let Some(peer) = source
        {
            self.peers.penalise(peer, Offence::InvalidOffer, "contract message with a bad signature").await;
        }
        verdict
    }

    /// A payout: kept and relayed if every signature it carries on an escrow verifies;
    /// completed and submitted if it pays this node's wallet and lacks only its signature.
    async fn on_payout(&mut self, tx: Transaction) -> Verdict {
        let txid = tx.txid();
        if self.payouts.contains_key(&txid) {
            return Verdict::Ignore;
        }
        if tx.inputs.is_empty() || tx.inputs.len() > MAX_PAYOUT_INPUTS {
            return Verdict::Reject;
        }
        let Ok(coins) = self.chain.coins(tx.inputs.iter().map(|i| i.prev_out).collect()).await else {
            return Verdict::Ignore;
        };
        let mut escrows = Vec::new();
        for (index, coin) in coins.coins.iter().enumerate() {
            match coin {
                Some(coin @ Coin { output: peerchain_primitives::TxOut { lock: Lock::Escrow { .. }, .. }, .. }) => {
                    escrows.push((index, coin.clone()))
                }
                Some(_) => {}
                // Spent (or not yet here): nothing to complete.
                None => return Verdict::Ignore,
            }
        }
        if escrows.is_empty() {
            return Verdict::Ignore;
        }
        let magic = self.params.network.magic();
        for (index, coin) in &escrows {
            if !partial_signatures_verify(&tx, *index, &coin.output, magic) {
                return Verdict::Reject;
            }
        }
        if self.payouts.len() >= MAX_PAYOUTS
            && let Some(oldest) = self.payouts.iter().min_by_key(|(_, (_, at))| *at).map(|(id, _)| *id)
        {
            self.payouts.remove(&oldest);
        }
        self.payouts.insert(txid, (tx.clone(), Instant::now()));
        self.complete_payout(tx, escrows).await;
        Verdict::Accept
    }

    /// Adds the wallet's signature to a payout that pays the wallet the escrow whole (less
    /// a fee), and submits it once it carries enough. Only payouts of one escrow: with two,
    /// one output could be counted as paying both.
    async fn complete_payout(&mut self, tx: Transaction, escrows: Vec<(usize, Coin)>) {
        if escrows.len() != 1 {
            return;
        }
        let wallet = self.wallet.clone();
        let completed = tokio::task::spawn_blocking(move || {
            let mut slot = wallet.lock();
            let wallet = slot.as_mut()?;
            let mut tx = tx;
            let mut signed = false;
            for (index, coin) in &escrows {
                let paid = tx.outputs.iter().any(|o| {
                    o.asset == coin.output.asset
                        && o.amount.units() * 100 >= coin.output.amount.units() * 99
                        && matches!(o.lock, Lock::Key(hash) if wallet.public_key(&hash).is_some())
                });
                if paid && !already_signed(&tx, *index, wallet, &coin.output) {
                    signed |= wallet.cosign(&mut tx, *index, &coin.output, None).ok()?;
                }
            }
            signed.then_some(tx)
        })
        .await
        .ok()
        .flatten();
        let Some(tx) = completed else { return };
        let txid = tx.txid();
        match crate::relay::submit_transaction(&self.chain, &self.net, tx.clone()).await {
            Ok(_) => {
                info!(%txid, "escrow payout completed with this wallet's signature and submitted");
                let wallet = self.wallet.clone();
                let _ =
                    tokio::task::spawn_blocking(move || wallet.lock().as_mut().map(|w| w.add_pending(tx, true))).await;
            }
            Err(e) => debug!(%txid, error = %e, "escrow payout not accepted"),
        }
    }

    /// Publishes again the payouts whose escrows are still unspent; forgets the others.
    pub(super) async fn republish_payouts(&mut self) {
        let held: Vec<(TxId, Transaction)> = self.payouts.iter().map(|(id, (tx, _))| (*id, tx.clone())).collect();
        for (txid, tx) in held {
            let escrow = tx.inputs[0].prev_out;
            let unspent = self.chain.coins(vec![escrow]).await.is_ok_and(|c| c.coins[0].is_some());
            if unspent {
                self.net.publish(Topic::Contracts, ContractMessage::Payout(tx).to_bytes()).await;
            } else {
                self.payouts.remove(&txid);
            }
        }
    }
}

/// Whether every signature on input `index` (a multisig witness of an escrow) verifies
/// under the key it names, and there are no more than the lock's threshold.
fn partial_signatures_verify(tx: &Transaction, index: usize, spent: &peerchain_primitives::TxOut, magic: u8) -> bool {
    let (Lock::Escrow { threshold, keys, .. }, Witness::Multisig { signatures }) =
        (&spent.lock, &tx.inputs[index].witness)
    else {
        return false;
    };
    if signatures.is_empty() || signatures.len() > usize::from(*threshold) {
        return false;
    }
    signatures.iter().all(|(key_index, signature)| {
        let Some(key) = keys.get(usize::from(*key_index)).and_then(|k| k.verifying_key()) else { return false };
        let message = tx.signature_hash(index, spent, signature.mode, magic);
        key.verify_strict(&message, &signature.signature.to_dalek()).is_ok()
    })
}

/// Whether the wallet's key already signed input `index`.
fn already_signed(
    tx: &Transaction,
    index: usize,
    wallet: &peerchain_wallet::Wallet,
    spent: &peerchain_primitives::TxOut,
) -> bool {
    let (Lock::Escrow { keys, .. }, Witness::Multisig { signatures }) = (&spent.lock, &tx.inputs[index].witness) else {
        return false;
    };
    signatures
        .iter()
        .any(|(i, _)| keys.get(usize::from(*i)).is_some_and(|k| wallet.public_key(&k.key_hash()).is_some()))
}
