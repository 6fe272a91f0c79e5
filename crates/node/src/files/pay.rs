//! Paying for content: when nobody shares a content id for free, the cheapest seller within
//! the download's allowance is paid through a channel (an escrow of buyer and seller that
//! the buyer pays into): one piece at a time, verified, then paid for, so the seller never
//! waits for more than one piece's worth and the buyer never pays for a piece it has not
//! verified. The channel is kept in `channels.redb`, so a restarted download pays on into
//! the same escrow.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use peerchain_blobs::{ContentId, GROUP_BYTES, piece_count, piece_groups};
use peerchain_market::{Buying, Channels};
use peerchain_net::{FileRequest, FileResponse, Peer, Price};
use peerchain_primitives::{Amount, AssetId, Encode, FeeRate, OutPoint, TxOut};
use peerchain_rpc::ServiceError;
use peerchain_wallet::{ChainSource, SharedWallet};
use tracing::{info, warn};

use super::download::{DownloadError, Fetch, Holding};
use super::serve::pieces_held;
use super::{Files, blocking};
use crate::peers::Offence;

/// Blocks after which the buyer may take a channel's escrow back alone (a week of blocks):
/// the seller closes long before.
const CHANNEL_BLOCKS: u32 = 1_008;
/// Bytes of fee a channel keeps back for its closing transaction, at the fee rate (beside
/// the least output the buyer's change may be).
const CLOSE_FEE_BYTES: usize = 1_000;
/// How long a payment may take to be answered.
const PAY_TIMEOUT: Duration = Duration::from_secs(20);
/// Failed range requests to a seller before the download gives up on it.
const SELLER_FAILURES: u32 = 3;

/// What paying needs of the node: its chain, wallet and the store of channels.
pub(crate) struct Payments {
    pub(crate) chain: peerchain_chain::Handle,
    pub(crate) wallet: SharedWallet,
    /// Held while the wallet chooses coins, shared with every RPC method that pays.
    pub(crate) wallet_sends: Arc<tokio::sync::Mutex<()>>,
    pub(crate) channels: Arc<Channels>,
    /// The least fee rate the node relays: a payment must leave that much for its close.
    pub(crate) min_fee_per_byte: u64,
    pub(crate) network_magic: u8,
}

/// A download's allowance: the most it pays, and the wallet's passphrase if it has one.
#[derive(Clone, Default)]
pub(crate) struct Allowance {
    pub(crate) up_to: Option<u64>,
    pub(crate) passphrase: Option<String>,
}

/// A channel being paid into.
struct Channel {
    escrow: OutPoint,
    coin: TxOut,
    paid: u64,
}

fn payment_error(what: &str, e: impl std::fmt::Display) -> DownloadError {
    DownloadError::Payment(format!("{what}: {e}"))
}

/// The seller to pay for `id`, if no holder shares it for free: the cheapest, if within
/// `allowance`; otherwise the download cannot go on, and the error names the price.
pub(super) fn choose_seller(
    id: ContentId,
    holders: &[(Peer, Holding)],
    allowance: Option<u64>,
) -> Result<Option<(Peer, Price)>, DownloadError> {
    if holders.iter().any(|(_, h)| h.price.is_none()) {
        return Ok(None);
    }
    let Some((peer, price)) =
        holders.iter().filter_map(|(p, h)| h.price.map(|price| (*p, price))).min_by_key(|(_, price)| price.units)
    else {
        return Ok(None);
    };
    match allowance {
        Some(up_to) if up_to >= price.units => Ok(Some((peer, price))),
        _ => {
            let price_text = format!("{} coins ({} base units)", Amount::from_units(price.units), price.units);
            Err(DownloadError::ForSale(match allowance {
                None => format!(
                    "{id} is on sale for {price_text} and nobody shares it for free; download it with --pay-up-to {}",
                    Amount::from_units(price.units)
                ),
                Some(up_to) => format!(
                    "{id} is on sale for {price_text}, more than --pay-up-to {} allows",
                    Amount::from_units(up_to)
                ),
            }))
        }
    }
}

impl Fetch<'_> {
    /// Fetches every missing piece from `seller`, paying for each once verified.
    pub(super) async fn paid_transfer(&mut self, size: u64, seller: Peer, price: Price) -> Result<(), DownloadError> {
        let files = self.files.clone();
        let id = self.id;
        self.progress.price.store(price.units, Ordering::Relaxed);
        let mut channel = self.channel(seller, price).await?;
        self.progress.paid.store(channel.paid, Ordering::Relaxed);
        let mut failures = 0;
        loop {
            let store = files.store.clone();
            let have = blocking(move || store.have(id)).await?.ok_or(DownloadError::Removed)?;
            let verified = (have.count() * GROUP_BYTES).min(size);
            let due = (u128::from(price.units) * u128::from(verified)).div_ceil(u128::from(size)) as u64;
            if due > channel.paid {
                self.pay(seller, &mut channel, due, price.units).await?;
            }
            let pieces = pieces_held(size, &have);
            let Some(piece) = (0..piece_count(size)).find(|p| !pieces.get(*p)) else { break };
            if self.progress.cancel.is_cancelled() {
                return Err(DownloadError::Cancelled);
            }
            let groups = piece_groups(size, piece);
            let request = FileRequest::Range { id, start: groups.start, count: (groups.end - groups.start) as u32 };
            let answer = tokio::time::timeout(super::download::RANGE_TIMEOUT, files.net.request_file(seller, request));
            match answer.await {
                Ok(Ok(FileResponse::Range(encoded))) => {
                    files.downloaded.fetch_add(encoded.len() as u64, Ordering::Relaxed);
                    let store = files.store.clone();
                    let outcome = blocking(move || store.write_range(id, groups, &encoded)).await?;
                    if let Some(reason) = outcome.bad_data {
                        files.bad_pieces.fetch_add(1, Ordering::Relaxed);
                        let reason = format!("bad data in piece {piece} of {id}: {reason}");
                        files.book.penalise(seller, Offence::BadData, &reason).await;
                        return Err(DownloadError::Payment(format!("the seller served {reason}; not paid for")));
                    }
                    self.progress.bytes_this_run.fetch_add(outcome.verified_groups * GROUP_BYTES, Ordering::Relaxed);
                    self.progress.verified_groups.store(outcome.blob_verified_groups, Ordering::Relaxed);
                    self.progress.sources.store(1, Ordering::Relaxed);
                    failures = 0;
                }
                Ok(Ok(FileResponse::Refused(reason))) => {
                    return Err(DownloadError::Payment(format!("the seller refused: {reason}")));
                }
                _ => {
                    failures += 1;
                    if failures >= SELLER_FAILURES {
                        return Err(DownloadError::NoProviderForTheRest(id));
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        let channels = files.payments.channels.clone();
        let _ = blocking(move || channels.forget_buying(&id)).await;
        info!(%id, paid = channel.paid, "paid download complete");
        Ok(())
    }

    /// The channel paying `seller` for this content: the one kept from an earlier run if its
    /// escrow is still unspent, or a new one, opened and waited for until it confirms.
    async fn channel(&self, seller: Peer, price: Price) -> Result<Channel, DownloadError> {
        let payments = &self.files.payments;
        let (id, channels) = (self.id, payments.channels.clone());
        let kept = blocking(move || channels.buying(&id)).await.map_err(|e| payment_error("channel store", e))?;
        if let Some(kept) = kept.filter(|k| k.seller == seller.to_bytes() && k.price == price.units)
            && let Some(coin) = self.coin(kept.escrow).await?
        {
            return Ok(Channel { escrow: kept.escrow, coin, paid: kept.paid });
        }
        let fee_rate = self.fee_rate().await?;
        let amount = Amount::from_units(
            price.units + fee_rate.fee_for(CLOSE_FEE_BYTES).units() + peerchain_wallet::DUST.units(),
        );
        let request = peerchain_rpc::EscrowRequest {
            seller: price.seller,
            arbiter: None,
            asset: AssetId::Coin,
            amount,
            timeout: CHANNEL_BLOCKS,
            fee_rate: Some(fee_rate),
            passphrase: self.progress.allowance.passphrase.clone(),
        };
        let tx = {
            let _turn = payments.wallet_sends.lock().await;
            crate::market::escrow_transaction(&payments.wallet, &payments.chain, request, fee_rate)
                .await
                .map_err(|e| payment_error("cannot open a payment channel", e))?
        };
        let txid = crate::relay::submit_transaction(&payments.chain, &self.files.net, tx.clone())
            .await
            .map_err(|e| payment_error("the payment channel was not accepted", e))?;
        let wallet = payments.wallet.clone();
        let _ = blocking(move || wallet.lock().as_mut().map(|w| w.add_pending(tx, true))).await;
        let escrow = OutPoint::new(txid, 0);
        info!(id = %self.id, %txid, price = price.units, "payment channel opened; waiting for it to confirm");
        let record = Buying { content: id, escrow, seller: seller.to_bytes(), price: price.units, paid: 0 };
        let channels = payments.channels.clone();
        blocking(move || channels.save_buying(&record)).await.map_err(|e| payment_error("channel store", e))?;
        loop {
            if let Some(coin) = self.coin(escrow).await? {
                return Ok(Channel { escrow, coin, paid: 0 });
            }
            tokio::select! {
                biased;
                _ = self.progress.cancel.cancelled() => return Err(DownloadError::Cancelled),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// The confirmed, unspent output at `escrow`.
    async fn coin(&self, escrow: OutPoint) -> Result<Option<TxOut>, DownloadError> {
        let found = self.files.payments.chain.coins(vec![escrow]).await.map_err(|e| payment_error("chain", e))?;
        Ok(found.coins.into_iter().next().flatten().map(|c| c.output))
    }

    async fn fee_rate(&self) -> Result<FeeRate, DownloadError> {
        let payments = &self.files.payments;
        let estimate = crate::market::estimated_fee_rate(&payments.chain).await.map_err(|e| payment_error("fee", e))?;
        // At least the least rate this node relays: the seller checks the close against it.
        Ok(estimate.max(FeeRate::per_byte(payments.min_fee_per_byte)))
    }

    /// Signs a payment of `due` in all and has the seller take it.
    async fn pay(&self, seller: Peer, channel: &mut Channel, due: u64, price: u64) -> Result<(), DownloadError> {
        let payments = &self.files.payments;
        let fee_rate = self.fee_rate().await?;
        let (escrow, coin, passphrase) =
            (channel.escrow, channel.coin.clone(), self.progress.allowance.passphrase.clone());
        let tx = crate::market::with_wallet(&payments.wallet, &payments.chain, move |wallet, chain| {
            wallet
                .channel_payment(
                    escrow,
                    &coin,
                    Amount::from_units(due),
                    fee_rate,
                    passphrase.as_deref(),
                    chain.tip_height(),
                    chain.coinbase_maturity(),
                )
                .map_err(ServiceError::from_wallet)
        })
        .await
        .map_err(|e| payment_error("cannot sign a payment", e))?;
        let request = FileRequest::Pay { id: self.id, payout: tx.to_bytes() };
        match tokio::time::timeout(PAY_TIMEOUT, self.files.net.request_file(seller, request)).await {
            Ok(Ok(FileResponse::Paid(paid))) if paid == due => {}
            Ok(Ok(FileResponse::Refused(reason))) => {
                return Err(DownloadError::Payment(format!("the seller refused a payment: {reason}")));
            }
            other => {
                warn!(id = %self.id, answer = ?other.map(|a| a.map(|r| format!("{r:?}").chars().take(80).collect::<String>())), "payment not taken");
                return Err(DownloadError::Payment("the seller did not take a payment".into()));
            }
        }
        channel.paid = due;
        self.progress.paid.store(due, Ordering::Relaxed);
        let record = Buying { content: self.id, escrow, seller: seller.to_bytes(), price, paid: due };
        let channels = payments.channels.clone();
        blocking(move || channels.save_buying(&record)).await.map_err(|e| payment_error("channel store", e))
    }
}

impl Files {
    /// Closes the channels this node is paid through that saw no payment for a while.
    pub(super) async fn close_idle_channels(&self) {
        for escrow in self.sales.idle(super::sell::CLOSE_IDLE) {
            self.sales.close(escrow, &self.payments.chain, &self.net, &self.payments.wallet).await;
        }
    }
}
