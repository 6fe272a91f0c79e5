//! What the `market.*` methods call: making offers (coins of the offers' sizes first, when
//! the wallet has none), taking them in one transaction, cancelling by spending the coin.

use std::sync::Arc;

use peerchain_chain::{MempoolReject, SubmitTxError};
use peerchain_market::{Listed, OfferId, TokenInfo, Trade};
use peerchain_primitives::{Amount, AssetId, FeeRate, Lock, OutPoint, Transaction, TxId, TxOut};
use peerchain_rpc::files::BoxFuture;
use peerchain_rpc::{BookEntry, BookSummary, ChainReader, MadeOffers, OfferRequest, ServiceError};
use peerchain_wallet::{ChainSource, Plan, SharedWallet, SignedPair, Wallet};

use super::MarketHandle;

/// Blocks a fee estimate aims at.
const CONFIRMATION_TARGET: u32 = 2;

/// The market's RPC service.
pub(crate) struct Service {
    pub(crate) market: MarketHandle,
    pub(crate) chain: peerchain_chain::Handle,
    pub(crate) net: peerchain_net::Handle,
    pub(crate) wallet: SharedWallet,
    /// Held while the wallet chooses coins, shared with every RPC method that pays.
    pub(crate) wallet_sends: Arc<tokio::sync::Mutex<()>>,
    /// The least an offer giving coins gives (the book's policy, told early).
    pub(crate) min_coin_give: Amount,
}

/// The node's fee estimate for a transaction the wallet pays (for confirmation within
/// [`CONFIRMATION_TARGET`] blocks).
pub(crate) async fn estimated_fee_rate(chain: &peerchain_chain::Handle) -> Result<FeeRate, peerchain_chain::Error> {
    Ok(FeeRate::per_byte(chain.estimate_fee(CONFIRMATION_TARGET).await?.units_per_byte))
}

/// Runs `work` on the wallet, synced with the chain first, on a blocking thread.
pub(crate) async fn with_wallet<T: Send + 'static>(
    shared: &SharedWallet,
    chain: &peerchain_chain::Handle,
    work: impl FnOnce(&mut Wallet, &ChainReader<'_>) -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    let (shared, chain) = (shared.clone(), chain.clone());
    tokio::task::spawn_blocking(move || {
        let mut slot = shared.lock();
        let wallet = slot
            .as_mut()
            .ok_or_else(|| ServiceError::NoWallet("no wallet; create one with `peerchain wallet create`".into()))?;
        let reader = ChainReader(&chain);
        wallet.sync(&reader, 1_000).map_err(ServiceError::from_wallet)?;
        work(wallet, &reader)
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?
}

impl Service {
    /// Runs `work` on the wallet on a blocking thread.
    pub(super) async fn with_wallet<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Wallet, &ChainReader<'_>) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        with_wallet(&self.wallet, &self.chain, work).await
    }

    pub(super) async fn fee_rate(&self, asked: Option<FeeRate>) -> Result<FeeRate, ServiceError> {
        match asked {
            Some(rate) => Ok(rate),
            None => estimated_fee_rate(&self.chain).await.map_err(internal),
        }
    }

    /// Submits a wallet transaction to the network and records it in the wallet.
    pub(super) async fn submit(&self, tx: Transaction) -> Result<TxId, ServiceError> {
        let txid = crate::relay::submit_transaction(&self.chain, &self.net, tx.clone()).await.map_err(|e| match e {
            SubmitTxError::Rejected(MempoolReject::ReplacementTooCheap { conflict }) => ServiceError::Rejected(
                format!("an offer's coin is already spent by transaction {conflict} (taken by another, or cancelled)"),
            ),
            SubmitTxError::Rejected(reason) => ServiceError::Rejected(reason.to_string()),
            other => ServiceError::Internal(other.to_string()),
        })?;
        self.with_wallet(move |wallet, _| wallet.add_pending(tx, true).map_err(ServiceError::from_wallet)).await?;
        Ok(txid)
    }

    /// Coins of exactly `sizes` of `asset` for offers: found in the wallet, or made by one
    /// transaction (submitted here, given second), which pays the missing sizes first, in
    /// order. The caller holds the wallet's turn.
    pub(super) async fn fund_offers(
        &self,
        asset: AssetId,
        sizes: Vec<Amount>,
        fee_rate: FeeRate,
        passphrase: Option<String>,
    ) -> Result<(Vec<OutPoint>, Option<TxId>), ServiceError> {
        let secret = passphrase;
        let (mut anchors, funding) = self
            .with_wallet(move |wallet, chain| {
                let (tip, maturity) = (chain.tip_height(), chain.coinbase_maturity());
                let mut free: Vec<_> = wallet
                    .spendable(tip, maturity)
                    .into_iter()
                    .filter(|c| c.confirmed && c.output.asset == asset)
                    .collect();
                let mut anchors: Vec<Option<OutPoint>> = Vec::new();
                for size in &sizes {
                    let found = free.iter().position(|c| c.output.amount == *size).map(|i| free.swap_remove(i));
                    anchors.push(found.map(|c| c.outpoint));
                }
                let missing: Vec<Amount> =
                    sizes.iter().zip(&anchors).filter(|(_, a)| a.is_none()).map(|(s, _)| *s).collect();
                if missing.is_empty() {
                    return Ok((anchors, None));
                }
                let to = wallet.fresh_key_hash(secret.as_deref()).map_err(ServiceError::from_wallet)?;
                let outputs =
                    missing.iter().map(|amount| TxOut { asset, amount: *amount, lock: Lock::Key(to) }).collect();
                let payment = wallet
                    .build(Plan::paying(outputs, fee_rate), secret.as_deref(), tip, maturity)
                    .map_err(ServiceError::from_wallet)?;
                Ok((anchors, Some(payment.tx)))
            })
            .await?;
        let funding_txid = match funding {
            Some(tx) => {
                let txid = self.submit(tx).await?;
                for (next, anchor) in anchors.iter_mut().filter(|a| a.is_none()).enumerate() {
                    *anchor = Some(OutPoint::new(txid, next as u32));
                }
                Some(txid)
            }
            None => None,
        };
        Ok((anchors.into_iter().flatten().collect(), funding_txid))
    }

    async fn make_offers(&self, request: OfferRequest) -> Result<MadeOffers, ServiceError> {
        let OfferRequest { give, want, expires, ladder, step_percent, fee_rate, passphrase } = request;
        let rungs = ladder_rungs(give.1, want.1, ladder, step_percent)?;
        if give.0 == AssetId::Coin && rungs.iter().any(|(g, _)| *g < self.min_coin_give) {
            return Err(ServiceError::InvalidInput(format!(
                "each offer giving coins must give at least {} coins",
                self.min_coin_give
            )));
        }
        let fee_rate = self.fee_rate(fee_rate).await?;
        let _turn = self.wallet_sends.lock().await;
        let expiry = self.chain.tip().height.saturating_add(expires);

        let sizes: Vec<Amount> = rungs.iter().map(|(g, _)| *g).collect();
        let (anchors, funding_txid) = self.fund_offers(give.0, sizes, fee_rate, passphrase.clone()).await?;
        let wants: Vec<Amount> = rungs.iter().map(|(_, w)| *w).collect();
        let want_asset = want.0;
        let reserved = anchors.clone();
        let offers = self
            .with_wallet(move |wallet, _| {
                let paid_to = wallet.fresh_key_hash(passphrase.as_deref()).map_err(ServiceError::from_wallet)?;
                let mut offers = Vec::new();
                for (anchor, want) in anchors.iter().zip(wants) {
                    let want = TxOut { asset: want_asset, amount: want, lock: Lock::Key(paid_to) };
                    let (input, give) = wallet
                        .sign_offer(anchor, &want, expiry, passphrase.as_deref())
                        .map_err(ServiceError::from_wallet)?;
                    offers.push((peerchain_market::Offer { input, want }, give));
                }
                // A payment must not spend an offer's coin (it would cancel the offer).
                wallet.reserve(&reserved, expiry).map_err(ServiceError::from_wallet)?;
                Ok(offers)
            })
            .await?;
        let ids = offers.iter().map(|(offer, _)| offer.id()).collect();
        self.market.list_mine(offers).await.map_err(ServiceError::Internal)?;
        Ok(MadeOffers { ids, funding: funding_txid, expires_at: expiry })
    }

    async fn take_offers(
        &self,
        ids: Vec<OfferId>,
        fee_rate: Option<FeeRate>,
        passphrase: Option<String>,
    ) -> Result<TxId, ServiceError> {
        let listed: Vec<Listed> = self
            .market
            .offers(ids.clone())
            .await
            .into_iter()
            .zip(&ids)
            .map(|(listed, id)| {
                listed.ok_or_else(|| {
                    ServiceError::NotFound(format!("offer {id} is not in the book (taken, cancelled or expired)"))
                })
            })
            .collect::<Result<_, _>>()?;
        let anchors: Vec<OutPoint> = listed.iter().map(|l| l.offer.anchor()).collect();
        let coins = self.chain.coins(anchors).await.map_err(internal)?;
        if let Some((id, txid)) = ids.iter().zip(&coins.spenders).find_map(|(id, s)| s.map(|t| (id, t))) {
            return Err(ServiceError::Rejected(format!("offer {id} is already being taken by transaction {txid}")));
        }
        let fee_rate = self.fee_rate(fee_rate).await?;
        let signed = listed
            .into_iter()
            .map(|l| SignedPair { input: l.offer.input, spent: l.give, output: l.offer.want })
            .collect();
        let _turn = self.wallet_sends.lock().await;
        let payment = self
            .with_wallet(move |wallet, chain| {
                let plan = Plan { signed, ..Plan::paying(vec![], fee_rate) };
                wallet
                    .build(plan, passphrase.as_deref(), chain.tip_height(), chain.coinbase_maturity())
                    .map_err(ServiceError::from_wallet)
            })
            .await?;
        self.submit(payment.tx).await
    }

    async fn cancel_offer(&self, id: OfferId, passphrase: Option<String>) -> Result<TxId, ServiceError> {
        let anchor = self
            .market
            .mine()
            .await
            .into_iter()
            .find(|(offer, _)| offer.id() == id)
            .map(|(offer, _)| offer.anchor())
            .ok_or_else(|| ServiceError::NotFound(format!("offer {id} is not one of this wallet's live offers")))?;
        let fee_rate = self.fee_rate(None).await?;
        let _turn = self.wallet_sends.lock().await;
        let payment = self
            .with_wallet(move |wallet, chain| {
                let (tip, maturity) = (chain.tip_height(), chain.coinbase_maturity());
                let coin = wallet.own_output(&anchor, tip, maturity).ok_or_else(|| {
                    ServiceError::NotFound(format!("the coin of offer {id} is spent already (taken or cancelled)"))
                })?;
                let plan = Plan { must_spend: vec![coin], ..Plan::paying(vec![], fee_rate) };
                wallet.build(plan, passphrase.as_deref(), tip, maturity).map_err(ServiceError::from_wallet)
            })
            .await?;
        let txid = self.submit(payment.tx).await?;
        let tip = self.chain.tip().height;
        self.with_wallet(move |wallet, _| wallet.release(&[anchor], tip).map_err(ServiceError::from_wallet)).await?;
        Ok(txid)
    }
}

pub(super) fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// Splits `give` for `want` into `ladder` offers of equal size (the last takes the rest),
/// each asking `step_percent` more per unit than the one before.
fn ladder_rungs(
    give: Amount,
    want: Amount,
    ladder: u32,
    step_percent: f64,
) -> Result<Vec<(Amount, Amount)>, ServiceError> {
    let n = u64::from(ladder.max(1));
    let each = give.units() / n;
    if each == 0 {
        return Err(ServiceError::InvalidInput(format!("cannot split {} base units into {n} offers", give.units())));
    }
    let mut rungs = Vec::new();
    for i in 0..n {
        let size = if i + 1 == n { give.units() - each * (n - 1) } else { each };
        let base = u128::from(want.units()) * u128::from(size) / u128::from(give.units());
        let factor = (1.0 + step_percent / 100.0).powi(i as i32);
        let asked = ((base as f64) * factor).round() as u64;
        if asked == 0 {
            return Err(ServiceError::InvalidInput("each offer must ask for at least one base unit".into()));
        }
        rungs.push((Amount::from_units(size), Amount::from_units(asked)));
    }
    if rungs.iter().any(|(_, w)| !w.is_valid_money()) {
        return Err(ServiceError::InvalidInput("an offer asks more than can exist".into()));
    }
    Ok(rungs)
}

impl peerchain_rpc::MarketService for Service {
    fn summary(&self) -> BoxFuture<'_, Result<BookSummary, ServiceError>> {
        Box::pin(async move { Ok(self.market.summary().await) })
    }

    fn tokens(&self) -> BoxFuture<'_, Result<Vec<TokenInfo>, ServiceError>> {
        Box::pin(async move { Ok(self.market.tokens().await) })
    }

    fn book(
        &self,
        pair: Option<(AssetId, AssetId)>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<BookEntry>, ServiceError>> {
        Box::pin(async move {
            let listed = self.market.book(pair, limit, false).await;
            let coins =
                self.chain.coins(listed.iter().map(|(l, _)| l.offer.anchor()).collect()).await.map_err(internal)?;
            Ok(listed
                .into_iter()
                .zip(coins.spenders)
                .map(|((listed, mine), taken_by)| BookEntry { listed, mine, taken_by })
                .collect())
        })
    }

    fn trades(
        &self,
        pair: Option<(AssetId, AssetId)>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Trade>, ServiceError>> {
        Box::pin(async move { self.market.trades(pair, limit).await.map_err(ServiceError::Internal) })
    }

    fn offer(&self, request: OfferRequest) -> BoxFuture<'_, Result<MadeOffers, ServiceError>> {
        Box::pin(self.make_offers(request))
    }

    fn take(
        &self,
        ids: Vec<OfferId>,
        fee_rate: Option<FeeRate>,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<TxId, ServiceError>> {
        Box::pin(self.take_offers(ids, fee_rate, passphrase))
    }

    fn cancel(&self, id: OfferId, passphrase: Option<String>) -> BoxFuture<'_, Result<TxId, ServiceError>> {
        Box::pin(self.cancel_offer(id, passphrase))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ladder_splits_the_amount_and_raises_the_price_step_by_step() {
        let rungs = ladder_rungs(Amount::from_units(1_000), Amount::from_units(500), 3, 10.0).unwrap();
        let gives: Vec<u64> = rungs.iter().map(|(g, _)| g.units()).collect();
        assert_eq!(gives, vec![333, 333, 334]);
        let prices: Vec<f64> = rungs.iter().map(|(g, w)| w.units() as f64 / g.units() as f64).collect();
        assert!(prices[1] > prices[0] * 1.09 && prices[2] > prices[1] * 1.09, "{prices:?}");
        assert!(ladder_rungs(Amount::from_units(2), Amount::from_units(2), 3, 0.0).is_err());
    }
}
