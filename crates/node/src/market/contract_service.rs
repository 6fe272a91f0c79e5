//! What the `escrow.*` and `loan.*` methods call. An escrow's payouts are signed here by one
//! party and handed to the market actor, which publishes them for the other party's node to
//! complete (`market/contracts.rs`); a loan offer is an offer in the book whose wanted output
//! is the collateral under a loan lock.

use std::collections::HashMap;

use peerchain_market::{ContractMessage, Listed, LoanRecord, OfferId, dispute_message};
use peerchain_primitives::{Encode, FeeRate, KeyHash, Lock, OutPoint, Transaction, TxId, Witness};
use peerchain_rpc::files::BoxFuture;
use peerchain_rpc::{
    BookEntry, ChainReader, EscrowEntry, EscrowRequest, LoanEntry, LoanOfferRequest, MadeOffers, Opened, Party,
    ServiceError,
};
use peerchain_wallet::{ChainSource, Contract, EscrowRole, SharedWallet, Wallet, escrow_parties};

use super::lock;
use super::service::{Service, internal};

/// Most loan offers one call lists.
const MAX_LIST: usize = 10_000;

/// The wallet's contract at `id`, unspent, with the height that confirmed it.
fn open_contract(wallet: &Wallet, id: OutPoint, what: &str) -> Result<(Contract, Option<u32>), ServiceError> {
    let contract =
        wallet.contracts().into_iter().find(|c| c.outpoint == id).ok_or_else(|| {
            ServiceError::NotFound(format!("{what} {} is not one this wallet is party to", text(&id)))
        })?;
    if let Some((tx, _, _)) = &contract.spent_by {
        return Err(ServiceError::NotFound(format!("{what} {} is settled already, by {}", text(&id), tx.txid())));
    }
    let height = confirmed_height(&contract);
    Ok((contract, height))
}

fn confirmed_height(contract: &Contract) -> Option<u32> {
    match contract.created {
        peerchain_wallet::TxStatus::Confirmed { height, .. } => Some(height),
        _ => None,
    }
}

fn text(id: &OutPoint) -> String {
    format!("{}:{}", id.txid, id.index)
}

/// Where an escrow ended, from the witness that spent it and where the payout went.
fn escrow_state(contract: &Contract, disputed: bool) -> &'static str {
    let Some((tx, witness, _)) = &contract.spent_by else {
        return if disputed { "disputed" } else { "open" };
    };
    let Some((keys, _, _)) = escrow_parties(&contract.output.lock) else { return "open" };
    match witness {
        Witness::Multisig { signatures } if signatures.iter().any(|(index, _)| *index == 2) => "resolved",
        Witness::Multisig { .. } => {
            let seller = keys[1].key_hash();
            if tx.outputs.iter().any(|o| o.lock == Lock::Key(seller)) { "released" } else { "refunded" }
        }
        _ => "refunded",
    }
}

/// The transaction opening an escrow as its buyer (output 0), at `fee_rate`, timed from the
/// tip; not yet submitted.
pub(crate) async fn escrow_transaction(
    wallet: &SharedWallet,
    chain: &peerchain_chain::Handle,
    request: EscrowRequest,
    fee_rate: FeeRate,
) -> Result<Transaction, ServiceError> {
    let EscrowRequest { seller, arbiter, asset, amount, timeout, passphrase, .. } = request;
    let refundable_at = chain.tip().height.saturating_add(timeout);
    let payment = super::with_wallet(wallet, chain, move |wallet, chain| {
        wallet
            .open_escrow(
                seller,
                arbiter,
                asset,
                amount,
                refundable_at,
                fee_rate,
                passphrase.as_deref(),
                chain.tip_height(),
                chain.coinbase_maturity(),
            )
            .map_err(ServiceError::from_wallet)
    })
    .await?;
    Ok(payment.tx)
}

impl Service {
    async fn open_escrow(&self, request: EscrowRequest) -> Result<Opened, ServiceError> {
        let fee_rate = self.fee_rate(request.fee_rate).await?;
        let _turn = self.wallet_sends.lock().await;
        let tx = escrow_transaction(&self.wallet, &self.chain, request, fee_rate).await?;
        let txid = self.submit(tx).await?;
        Ok(Opened { id: OutPoint::new(txid, 0), txid })
    }

    async fn make_escrow_lock(&self, request: EscrowRequest) -> Result<Lock, ServiceError> {
        let refundable_at = self.chain.tip().height.saturating_add(request.timeout);
        self.with_wallet(move |wallet, _| {
            let buyer = wallet.fresh_public_key(request.passphrase.as_deref()).map_err(ServiceError::from_wallet)?;
            Ok(peerchain_wallet::escrow_lock(buyer, request.seller, request.arbiter, refundable_at))
        })
        .await
    }

    async fn list_escrows(&self) -> Result<Vec<EscrowEntry>, ServiceError> {
        let index = self.market.index();
        let mut entries = self
            .with_wallet(move |wallet, chain: &ChainReader<'_>| {
                let next_height = chain.tip_height() + 1;
                let mut entries = Vec::new();
                for contract in wallet.contracts() {
                    let (Some(role), Some((keys, _, after))) =
                        (wallet.escrow_role(&contract.output), escrow_parties(&contract.output.lock))
                    else {
                        continue;
                    };
                    let disputed = lock(&index).is_disputed(&contract.outpoint).unwrap_or(false);
                    let height = confirmed_height(&contract);
                    entries.push(EscrowEntry {
                        id: contract.outpoint,
                        role: role.name(),
                        state: escrow_state(&contract, disputed),
                        asset: contract.output.asset,
                        amount: contract.output.amount,
                        keys: keys.to_vec(),
                        refundable_at: after.opens_at(height.unwrap_or(next_height)),
                        height,
                        settled_by: contract.spent_by.as_ref().map(|(tx, _, _)| tx.txid()),
                        lock: contract.output.lock.clone(),
                    });
                }
                Ok(entries)
            })
            .await?;
        entries.sort_by_key(|e| std::cmp::Reverse(e.height.unwrap_or(u32::MAX)));
        Ok(entries)
    }

    /// Signs this wallet's half of a payout of escrow `id` to the key of party `to` (0 the
    /// buyer, 1 the seller), as `role`, and hands it to the market to publish.
    async fn sign_payout(
        &self,
        id: OutPoint,
        role: EscrowRole,
        to: usize,
        passphrase: Option<String>,
    ) -> Result<TxId, ServiceError> {
        let fee_rate = self.fee_rate(None).await?;
        let _turn = self.wallet_sends.lock().await;
        let index = self.market.index();
        let payout = self
            .with_wallet(move |wallet, chain| {
                let (contract, height) = open_contract(wallet, id, "escrow")?;
                let mine = wallet.escrow_role(&contract.output);
                if mine != Some(role) {
                    return Err(ServiceError::InvalidInput(match role {
                        EscrowRole::Buyer => format!("only the buyer releases escrow {}", text(&id)),
                        _ => format!("only the arbiter resolves escrow {}", text(&id)),
                    }));
                }
                if height.is_none() {
                    return Err(ServiceError::Rejected(format!(
                        "escrow {} is not confirmed yet; pay it out once it is",
                        text(&id)
                    )));
                }
                let (keys, _, _) = escrow_parties(&contract.output.lock).expect("an escrow role");
                if role == EscrowRole::Arbiter && !lock(&index).is_disputed(&id).unwrap_or(false) {
                    return Err(ServiceError::InvalidInput(format!("neither party has disputed escrow {}", text(&id))));
                }
                let to: KeyHash = keys[to].key_hash();
                wallet
                    .escrow_payout(
                        id,
                        &contract.output,
                        to,
                        fee_rate,
                        passphrase.as_deref(),
                        chain.tip_height(),
                        chain.coinbase_maturity(),
                    )
                    .map_err(ServiceError::from_wallet)
            })
            .await?;
        let txid = payout.txid();
        self.market.publish_contract(ContractMessage::Payout(payout).to_bytes()).await;
        Ok(txid)
    }

    async fn refund_escrow(
        &self,
        id: OutPoint,
        fee_rate: Option<peerchain_primitives::FeeRate>,
        passphrase: Option<String>,
    ) -> Result<TxId, ServiceError> {
        let fee_rate = self.fee_rate(fee_rate).await?;
        let _turn = self.wallet_sends.lock().await;
        let payment = self
            .with_wallet(move |wallet, chain| {
                let (contract, height) = open_contract(wallet, id, "escrow")?;
                let (_, _, after) = escrow_parties(&contract.output.lock)
                    .ok_or_else(|| ServiceError::InvalidInput(format!("{} is not an escrow", text(&id))))?;
                if wallet.escrow_role(&contract.output) != Some(EscrowRole::Buyer) {
                    return Err(ServiceError::InvalidInput(format!("only the buyer takes escrow {} back", text(&id))));
                }
                let next = chain.tip_height() + 1;
                let opens = after.opens_at(height.unwrap_or(next));
                if height.is_none() || next < opens {
                    return Err(ServiceError::Rejected(format!(
                        "escrow {} can be taken back from block {opens}; the next block is {next}",
                        text(&id)
                    )));
                }
                wallet
                    .escrow_refund(
                        id,
                        &contract.output,
                        fee_rate,
                        passphrase.as_deref(),
                        chain.tip_height(),
                        chain.coinbase_maturity(),
                    )
                    .map_err(ServiceError::from_wallet)
            })
            .await?;
        self.submit(payment.tx).await
    }

    async fn dispute_escrow(&self, id: OutPoint, passphrase: Option<String>) -> Result<(), ServiceError> {
        let magic = self.chain.params().network.magic();
        let message = self
            .with_wallet(move |wallet, _| {
                let (contract, _) = open_contract(wallet, id, "escrow")?;
                let role = wallet.escrow_role(&contract.output);
                let (keys, _, _) = escrow_parties(&contract.output.lock).expect("an escrow role");
                let party = match role {
                    Some(EscrowRole::Buyer) => 0,
                    Some(EscrowRole::Seller) => 1,
                    _ => return Err(ServiceError::InvalidInput("only the buyer or the seller disputes".into())),
                };
                if keys.len() < 3 {
                    return Err(ServiceError::InvalidInput(format!("escrow {} has no arbiter", text(&id))));
                }
                let key = keys[party];
                let signature = wallet
                    .sign_digest(&key.key_hash(), &dispute_message(&id, magic), passphrase.as_deref())
                    .map_err(ServiceError::from_wallet)?;
                Ok(ContractMessage::Dispute { escrow: id, key, signature })
            })
            .await?;
        self.market.publish_contract(message.to_bytes()).await;
        Ok(())
    }

    async fn offer_loan(&self, request: LoanOfferRequest) -> Result<MadeOffers, ServiceError> {
        let LoanOfferRequest { principal, repay, term, collateral, expires, fee_rate, passphrase } = request;
        if principal.0 == peerchain_primitives::AssetId::Coin && principal.1 < self.min_coin_give {
            return Err(ServiceError::InvalidInput(format!("a loan of coins lends at least {}", self.min_coin_give)));
        }
        let fee_rate = self.fee_rate(fee_rate).await?;
        let _turn = self.wallet_sends.lock().await;
        let expiry = self.chain.tip().height.saturating_add(expires);
        let (anchors, funding) = self.fund_offers(principal.0, vec![principal.1], fee_rate, passphrase.clone()).await?;
        let anchor = anchors[0];
        let offer = self
            .with_wallet(move |wallet, _| {
                let secret = passphrase.as_deref();
                let want = wallet
                    .loan_collateral(collateral.0, collateral.1, principal.0, repay, term, secret)
                    .map_err(ServiceError::from_wallet)?;
                let (input, give) =
                    wallet.sign_offer(&anchor, &want, expiry, secret).map_err(ServiceError::from_wallet)?;
                wallet.reserve(&[anchor], expiry).map_err(ServiceError::from_wallet)?;
                Ok((peerchain_market::Offer { input, want }, give))
            })
            .await?;
        let id = offer.0.id();
        self.market.list_mine(vec![offer]).await.map_err(ServiceError::Internal)?;
        Ok(MadeOffers { ids: vec![id], funding, expires_at: expiry })
    }

    async fn list_loans(&self) -> Result<Vec<LoanEntry>, ServiceError> {
        let offers = self.market.mine().await;
        let index = self.market.index();
        self.with_wallet(move |wallet, chain| {
            let tip = chain.tip_height();
            let mut entries = Vec::new();
            for (offer, give) in offers {
                let Some((repay_asset, repay, term)) = offer.loan_terms() else { continue };
                entries.push(LoanEntry {
                    id: offer.id().to_string(),
                    role: "lender",
                    state: "offered",
                    principal: Some((give.asset, give.amount)),
                    repay: (repay_asset, repay),
                    collateral: (offer.want.asset, offer.want.amount),
                    term,
                    due_at: None,
                    settled_by: None,
                    counterparty: None,
                });
            }
            for contract in wallet.contracts() {
                let Lock::Loan { lender, borrower, repay_asset, repay_amount, term } = contract.output.lock else {
                    continue;
                };
                let lending = wallet.public_key(&lender).is_some();
                let other = if lending { borrower } else { lender };
                let record = lock(&index).loan_record(&other).map_err(internal)?;
                let due_at = confirmed_height(&contract).map(|h| h.saturating_add(term));
                let state = match &contract.spent_by {
                    None if due_at.is_some_and(|due| tip + 1 >= due) => "defaulted",
                    None => "active",
                    Some((_, Witness::TimeLockRefund { .. }, _)) => "claimed",
                    Some(_) => "repaid",
                };
                entries.push(LoanEntry {
                    id: text(&contract.outpoint),
                    role: if lending { "lender" } else { "borrower" },
                    state,
                    principal: None,
                    repay: (repay_asset, repay_amount),
                    collateral: (contract.output.asset, contract.output.amount),
                    term,
                    due_at,
                    settled_by: contract.spent_by.as_ref().map(|(tx, _, _)| tx.txid()),
                    counterparty: Some((other, record)),
                });
            }
            Ok(entries)
        })
        .await
    }

    /// Each key's record, read once per key.
    async fn records(&self, keys: Vec<KeyHash>) -> Result<Vec<LoanRecord>, ServiceError> {
        let index = self.market.index();
        tokio::task::spawn_blocking(move || {
            let index = lock(&index);
            let mut known: HashMap<KeyHash, LoanRecord> = HashMap::new();
            keys.iter()
                .map(|key| match known.get(key) {
                    Some(record) => Ok(*record),
                    None => {
                        let record = index.loan_record(key).map_err(internal)?;
                        known.insert(*key, record);
                        Ok(record)
                    }
                })
                .collect()
        })
        .await
        .map_err(internal)?
    }

    async fn take_loan(
        &self,
        id: OfferId,
        fee_rate: Option<peerchain_primitives::FeeRate>,
        passphrase: Option<String>,
    ) -> Result<Opened, ServiceError> {
        let listed: Listed = self.market.offers(vec![id]).await.pop().flatten().ok_or_else(|| {
            ServiceError::NotFound(format!("offer {id} is not in the book (taken, cancelled or expired)"))
        })?;
        if !listed.is_loan() {
            return Err(ServiceError::InvalidInput(format!(
                "offer {id} is not a loan offer: take it with `market take`"
            )));
        }
        let coins = self.chain.coins(vec![listed.offer.anchor()]).await.map_err(internal)?;
        if let Some(txid) = coins.spenders[0] {
            return Err(ServiceError::Rejected(format!("offer {id} is already being taken by transaction {txid}")));
        }
        let fee_rate = self.fee_rate(fee_rate).await?;
        let _turn = self.wallet_sends.lock().await;
        let payment = self
            .with_wallet(move |wallet, chain| {
                wallet
                    .take_loan(
                        listed.offer.input,
                        listed.give,
                        listed.offer.want,
                        fee_rate,
                        passphrase.as_deref(),
                        chain.tip_height(),
                        chain.coinbase_maturity(),
                    )
                    .map_err(ServiceError::from_wallet)
            })
            .await?;
        let txid = self.submit(payment.tx).await?;
        Ok(Opened { id: OutPoint::new(txid, 0), txid })
    }

    async fn end_loan(
        &self,
        id: OutPoint,
        claim: bool,
        fee_rate: Option<peerchain_primitives::FeeRate>,
        passphrase: Option<String>,
    ) -> Result<TxId, ServiceError> {
        let fee_rate = self.fee_rate(fee_rate).await?;
        let _turn = self.wallet_sends.lock().await;
        let payment = self
            .with_wallet(move |wallet, chain| {
                let (contract, height) = open_contract(wallet, id, "loan")?;
                let Lock::Loan { lender, borrower, term, .. } = contract.output.lock else {
                    return Err(ServiceError::InvalidInput(format!("{} is not a loan", text(&id))));
                };
                let (tip, maturity) = (chain.tip_height(), chain.coinbase_maturity());
                let secret = passphrase.as_deref();
                if claim {
                    if wallet.public_key(&lender).is_none() {
                        return Err(ServiceError::InvalidInput(format!("only the lender claims loan {}", text(&id))));
                    }
                    let next = tip + 1;
                    let due = height.map(|h| h.saturating_add(term));
                    if due.is_none_or(|due| next < due) {
                        let due = due.map_or("its start plus the term".into(), |d| format!("block {d}"));
                        return Err(ServiceError::Rejected(format!(
                            "loan {} can be claimed from {due}; the next block is {next}",
                            text(&id)
                        )));
                    }
                    wallet.claim_loan(id, &contract.output, fee_rate, secret, tip, maturity)
                } else {
                    if wallet.public_key(&borrower).is_none() {
                        return Err(ServiceError::InvalidInput(format!("only the borrower repays loan {}", text(&id))));
                    }
                    wallet.repay_loan(id, &contract.output, fee_rate, secret, tip, maturity)
                }
                .map_err(ServiceError::from_wallet)
            })
            .await?;
        self.submit(payment.tx).await
    }
}

impl peerchain_rpc::ContractService for Service {
    fn escrow_open(&self, request: EscrowRequest) -> BoxFuture<'_, Result<Opened, ServiceError>> {
        Box::pin(self.open_escrow(request))
    }

    fn escrow_lock(&self, request: EscrowRequest) -> BoxFuture<'_, Result<Lock, ServiceError>> {
        Box::pin(self.make_escrow_lock(request))
    }

    fn escrows(&self) -> BoxFuture<'_, Result<Vec<EscrowEntry>, ServiceError>> {
        Box::pin(self.list_escrows())
    }

    fn escrow_release(&self, id: OutPoint, passphrase: Option<String>) -> BoxFuture<'_, Result<TxId, ServiceError>> {
        Box::pin(self.sign_payout(id, EscrowRole::Buyer, 1, passphrase))
    }

    fn escrow_refund(
        &self,
        id: OutPoint,
        fee_rate: Option<peerchain_primitives::FeeRate>,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<TxId, ServiceError>> {
        Box::pin(self.refund_escrow(id, fee_rate, passphrase))
    }

    fn escrow_dispute(&self, id: OutPoint, passphrase: Option<String>) -> BoxFuture<'_, Result<(), ServiceError>> {
        Box::pin(self.dispute_escrow(id, passphrase))
    }

    fn escrow_resolve(
        &self,
        id: OutPoint,
        to: Party,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<TxId, ServiceError>> {
        let party = match to {
            Party::Buyer => 0,
            Party::Seller => 1,
        };
        Box::pin(self.sign_payout(id, EscrowRole::Arbiter, party, passphrase))
    }

    fn loan_offer(&self, request: LoanOfferRequest) -> BoxFuture<'_, Result<MadeOffers, ServiceError>> {
        Box::pin(self.offer_loan(request))
    }

    fn loan_book(&self) -> BoxFuture<'_, Result<Vec<(BookEntry, LoanRecord)>, ServiceError>> {
        Box::pin(async move {
            let listed = self.market.book(None, MAX_LIST, true).await;
            let coins =
                self.chain.coins(listed.iter().map(|(l, _)| l.offer.anchor()).collect()).await.map_err(internal)?;
            let lenders = listed
                .iter()
                .map(|(l, _)| match l.offer.want.lock {
                    Lock::Loan { lender, .. } => lender,
                    _ => KeyHash::ZERO,
                })
                .collect();
            let records = self.records(lenders).await?;
            Ok(listed
                .into_iter()
                .zip(coins.spenders)
                .zip(records)
                .map(|(((listed, mine), taken_by), record)| (BookEntry { listed, mine, taken_by }, record))
                .collect())
        })
    }

    fn loan_record(&self, key: KeyHash) -> BoxFuture<'_, Result<LoanRecord, ServiceError>> {
        Box::pin(async move { Ok(self.records(vec![key]).await?.remove(0)) })
    }

    fn loans(&self) -> BoxFuture<'_, Result<Vec<LoanEntry>, ServiceError>> {
        Box::pin(self.list_loans())
    }

    fn loan_take(
        &self,
        offer: OfferId,
        fee_rate: Option<peerchain_primitives::FeeRate>,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<Opened, ServiceError>> {
        Box::pin(self.take_loan(offer, fee_rate, passphrase))
    }

    fn loan_repay(
        &self,
        id: OutPoint,
        fee_rate: Option<peerchain_primitives::FeeRate>,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<TxId, ServiceError>> {
        Box::pin(self.end_loan(id, false, fee_rate, passphrase))
    }

    fn loan_claim(
        &self,
        id: OutPoint,
        fee_rate: Option<peerchain_primitives::FeeRate>,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<TxId, ServiceError>> {
        Box::pin(self.end_loan(id, true, fee_rate, passphrase))
    }
}
