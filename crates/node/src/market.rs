//! The market: the order book every node keeps, filled from gossip and from peers' books when
//! they connect, checked against the UTXO set before anything is listed or relayed, and
//! cleaned at every block (`market/follow.rs` reads the chain into the index of tokens and
//! trades, and drops offers whose coins were spent). `market/service.rs` is what the
//! `market.*` RPC methods call: it makes, takes and cancels offers with the wallet.
//!
//! One actor owns the book (`Market::run`); everyone else holds a [`MarketHandle`].

mod contract_service;
mod contracts;
mod follow;
mod service;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peerchain_consensus::Params;
use peerchain_market::{Added, Book, Index, Listed, Offer, OfferError, OfferId, Policy, TokenInfo, Trade};
use peerchain_net::{MarketEvent, MarketRequest, MarketResponse, Peer, Topic, Verdict};
use peerchain_primitives::{AssetId, Encode, Transaction, TxId, TxOut};
use peerchain_rpc::BookSummary;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::peers::Offence;
pub(crate) use contract_service::escrow_transaction;
pub(crate) use service::{Service, estimated_fee_rate, with_wallet};

/// How often peers not yet asked for their book are looked for (a missed handshake note).
const ASK_AGAIN: Duration = Duration::from_secs(20);
/// Most pages of one peer's book read: a book bounded at 64 MiB is 64 pages of 1 MiB.
const MAX_PAGES: usize = 128;
/// Peers remembered as asked for their book.
const MAX_ASKED: usize = 4_096;
/// Offers whose coin this node does not see yet, held for the next blocks: a peer a block
/// ahead relays an offer on a coin confirmed in a block not here yet. At most this many...
const MAX_PENDING: usize = 4_096;
/// ...and this many of one peer's.
const MAX_PENDING_PER_PEER: usize = 64;
/// Blocks an offer waits for its coin before its sender answers for it.
const PENDING_BLOCKS: u32 = 3;
/// How often held escrow payouts are published again, for parties that were offline.
const REPUBLISH: Duration = Duration::from_secs(30);

/// What the RPC service asks of the market actor.
enum Command {
    Book(Option<(AssetId, AssetId)>, usize, bool, oneshot::Sender<Vec<(Listed, bool)>>),
    Offers(Vec<OfferId>, oneshot::Sender<Vec<Option<Listed>>>),
    Summary(oneshot::Sender<BookSummary>),
    ListMine(Vec<(Offer, TxOut)>, oneshot::Sender<Result<(), String>>),
    /// A contract message made here: handled as if gossiped, then published.
    Contract(Vec<u8>, oneshot::Sender<()>),
}

/// A cloneable handle on the market actor.
#[derive(Clone)]
pub(crate) struct MarketHandle {
    commands: mpsc::Sender<Command>,
    index: Arc<Mutex<Index>>,
}

impl MarketHandle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).await.ok()?;
        answer.await.ok()
    }

    /// The book, of one pair (both sides) or all, swap offers or loan offers; each offer with
    /// whether it is this node's.
    pub(crate) async fn book(
        &self,
        pair: Option<(AssetId, AssetId)>,
        limit: usize,
        loans: bool,
    ) -> Vec<(Listed, bool)> {
        self.ask(|reply| Command::Book(pair, limit, loans, reply)).await.unwrap_or_default()
    }

    /// How much the book holds.
    pub(crate) async fn summary(&self) -> BookSummary {
        self.ask(Command::Summary).await.unwrap_or_default()
    }

    /// Offers by id, as the book holds them.
    pub(crate) async fn offers(&self, ids: Vec<OfferId>) -> Vec<Option<Listed>> {
        self.ask(|reply| Command::Offers(ids, reply)).await.unwrap_or_default()
    }

    /// Keeps the node's own offers, and lists and publishes those whose coins are confirmed
    /// (the others once they are).
    pub(crate) async fn list_mine(&self, offers: Vec<(Offer, TxOut)>) -> Result<(), String> {
        self.ask(|reply| Command::ListMine(offers, reply)).await.unwrap_or(Err("the market has stopped".into()))
    }

    /// The node's own offers that have not ended, with what each gives.
    pub(crate) async fn mine(&self) -> Vec<(Offer, TxOut)> {
        let index = self.index.clone();
        tokio::task::spawn_blocking(move || lock(&index).mine().unwrap_or_default()).await.unwrap_or_default()
    }

    /// Every token issued on the chain.
    pub(crate) async fn tokens(&self) -> Vec<TokenInfo> {
        let index = self.index.clone();
        tokio::task::spawn_blocking(move || lock(&index).tokens()).await.unwrap_or_default()
    }

    /// Handles a contract message made by this node (completing a payout if this wallet is
    /// the other party) and publishes it.
    pub(crate) async fn publish_contract(&self, message: Vec<u8>) {
        self.ask(|reply| Command::Contract(message, reply)).await;
    }

    /// The index, for contract look-ups.
    pub(crate) fn index(&self) -> Arc<Mutex<Index>> {
        self.index.clone()
    }

    /// The latest trades, newest first.
    pub(crate) async fn trades(&self, pair: Option<(AssetId, AssetId)>, limit: usize) -> Result<Vec<Trade>, String> {
        let index = self.index.clone();
        tokio::task::spawn_blocking(move || lock(&index).trades(pair, limit).map_err(|e| e.to_string()))
            .await
            .map_err(|e| e.to_string())?
    }
}

fn lock(index: &Mutex<Index>) -> std::sync::MutexGuard<'_, Index> {
    index.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A page of a peer's book, read by a fetch task, for the actor to check.
struct Fetched {
    peer: Peer,
    offers: Vec<Vec<u8>>,
}

/// The market actor.
pub(crate) struct Market {
    chain: peerchain_chain::Handle,
    net: peerchain_net::Handle,
    peers: crate::peers::Book,
    params: Params,
    policy: Policy,
    book: Book,
    index: Arc<Mutex<Index>>,
    /// The node's own offers, listed or waiting for their coins to confirm.
    mine: HashMap<OfferId, (Offer, TxOut)>,
    /// Peers whose book was read.
    asked: HashSet<Peer>,
    /// Offers waiting for their coin to show up: the offer, who sent it, blocks waited, and
    /// whether the sender answers for it if the coin never comes (gossip: yes; a book page,
    /// which this node may simply be behind: no).
    pending: HashMap<OfferId, (Offer, Peer, u32, bool)>,
    /// Whether the chain is at the best header known: until it is, offers on coins of blocks
    /// not here yet are no one's fault, and books are read later.
    synced: bool,
    commands: mpsc::Receiver<Command>,
    fetched: (mpsc::Sender<Fetched>, mpsc::Receiver<Fetched>),
    /// Tasks reading peers' books.
    tasks: JoinSet<()>,
    /// The wallet, which completes escrow payouts to it.
    wallet: peerchain_wallet::SharedWallet,
    /// Escrow payouts seen, published again while their escrows are unspent.
    payouts: HashMap<TxId, (Transaction, Instant)>,
    /// When the index was last flushed to disk.
    flushed: Instant,
}

impl Market {
    /// The actor and its handle; the index is opened (and the own offers loaded) from
    /// `data_dir`.
    pub(crate) fn new(
        data_dir: &std::path::Path,
        chain: peerchain_chain::Handle,
        net: peerchain_net::Handle,
        peers: crate::peers::Book,
        wallet: peerchain_wallet::SharedWallet,
    ) -> Result<(Market, MarketHandle), peerchain_market::IndexError> {
        let index = Index::open(&Index::path_in(data_dir))?;
        let mine = index.mine()?.into_iter().map(|(offer, give)| (offer.id(), (offer, give))).collect();
        let params = chain.params().clone();
        let policy = Policy { expiry_margin: peerchain_chain::EXPIRY_MARGIN, ..Policy::default() };
        let index = Arc::new(Mutex::new(index));
        let (commands_sender, commands) = mpsc::channel(64);
        let market = Market {
            chain,
            net,
            peers,
            params,
            policy,
            book: Book::new(policy.max_book_bytes),
            index: index.clone(),
            mine,
            asked: HashSet::new(),
            pending: HashMap::new(),
            synced: false,
            flushed: Instant::now(),
            commands,
            fetched: mpsc::channel(4),
            tasks: JoinSet::new(),
            wallet,
            payouts: HashMap::new(),
        };
        Ok((market, MarketHandle { commands: commands_sender, index }))
    }

    pub(crate) async fn run(mut self, mut events: mpsc::Receiver<MarketEvent>, cancel: CancellationToken) {
        let mut tips = self.chain.subscribe_tip();
        let mut ask_again = tokio::time::interval(ASK_AGAIN);
        let mut republish = tokio::time::interval(REPUBLISH);
        self.follow_chain().await;
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                changed = tips.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.follow_chain().await;
                }
                Some(command) = self.commands.recv() => self.command(command).await,
                Some(fetched) = self.fetched.1.recv() => self.on_fetched(fetched).await,
                event = events.recv() => match event {
                    Some(event) => self.event(event).await,
                    None => break,
                },
                _ = ask_again.tick() => {
                    self.refresh_synced().await;
                    for peer in self.net.peers().await {
                        self.ask_for_book(peer.peer);
                    }
                }
                _ = republish.tick() => self.republish_payouts().await,
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
        self.tasks.shutdown().await;
        let index = self.index.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || lock(&index).flush()).await {
            warn!(error = %e, "cannot flush the market index");
        }
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Book(pair, limit, loans, reply) => {
                let kind = |l: &&Listed| l.is_loan() == loans;
                let listed: Vec<(Listed, bool)> = match pair {
                    Some((a, b)) => self
                        .book
                        .side(a, b)
                        .chain(self.book.side(b, a))
                        .filter(kind)
                        .take(limit)
                        .cloned()
                        .collect::<Vec<_>>(),
                    None => self.book.iter().filter(kind).take(limit).cloned().collect::<Vec<_>>(),
                }
                .into_iter()
                .map(|l| {
                    let mine = self.mine.contains_key(&l.id);
                    (l, mine)
                })
                .collect();
                let _ = reply.send(listed);
            }
            Command::Summary(reply) => {
                let loan_offers = self.book.iter().filter(|l| l.is_loan()).count();
                let _ = reply.send(BookSummary {
                    offers: self.book.len() - loan_offers,
                    loan_offers,
                    mine: self.mine.keys().filter(|id| self.book.get(id).is_some()).count(),
                    bytes: self.book.bytes(),
                    max_bytes: self.book.max_bytes(),
                    pairs: self.book.pairs().collect(),
                });
            }
            Command::Offers(ids, reply) => {
                let _ = reply.send(ids.iter().map(|id| self.book.get(id).cloned()).collect());
            }
            Command::ListMine(offers, reply) => {
                let index = self.index.clone();
                let saved = offers.clone();
                let stored = tokio::task::spawn_blocking(move || {
                    let index = lock(&index);
                    saved.iter().try_for_each(|(offer, give)| index.save_mine(offer, give))
                })
                .await;
                let result = match stored {
                    Ok(Ok(())) => {
                        for (offer, give) in offers {
                            self.mine.insert(offer.id(), (offer, give));
                        }
                        self.list_waiting_mine().await;
                        Ok(())
                    }
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let _ = reply.send(result);
            }
            Command::Contract(message, reply) => {
                if self.on_contract(&message, None).await != Verdict::Reject {
                    self.net.publish(Topic::Contracts, message).await;
                }
                let _ = reply.send(());
            }
        }
    }

    async fn event(&mut self, event: MarketEvent) {
        match event {
            MarketEvent::PeerReady(peer) => self.ask_for_book(peer),
            MarketEvent::Offer { data, source, id } => {
                let verdict = self.on_gossip(&data, source).await;
                self.net.report(id, source, verdict).await;
            }
            MarketEvent::Request { id, request: MarketRequest::BookPage { after }, .. } => {
                let (page, more) = self.book.page(after.map(OfferId), peerchain_net::protocol::market::MAX_PAGE_BYTES);
                let offers = page.iter().map(|l| l.offer.to_bytes()).collect();
                self.net.respond_market(id, MarketResponse::Page { offers, more }).await;
            }
            MarketEvent::Contract { data, source, id } => {
                let verdict = self.on_contract(&data, Some(source)).await;
                self.net.report(id, source, verdict).await;
            }
        }
    }

    /// A gossiped offer: listed and relayed if valid; its sender answers for a bad one.
    async fn on_gossip(&mut self, data: &[u8], source: Peer) -> Verdict {
        let offer = match Offer::from_wire(data) {
            Ok(offer) => offer,
            Err(e) => {
                self.peers.penalise(source, Offence::Malformed, &format!("offer: {e}")).await;
                return Verdict::Reject;
            }
        };
        if !self.synced || self.book.get(&offer.id()).is_some() || self.pending.contains_key(&offer.id()) {
            return Verdict::Ignore;
        }
        match self.check(vec![offer.clone()]).await.pop() {
            Some(Ok(listed)) => match self.book.add(listed) {
                Ok(Added::New | Added::Replaced(_)) => Verdict::Accept,
                Ok(Added::Known) | Err(_) => Verdict::Ignore,
            },
            // Perhaps confirmed in a block not here yet: checked again with the next ones,
            // and relayed then.
            Some(Err(OfferError::AnchorMissing(_))) if self.hold(offer.clone(), source, true) => Verdict::Ignore,
            Some(Err(e)) => {
                self.penalise(source, &e).await;
                if e.is_misbehaviour() { Verdict::Reject } else { Verdict::Ignore }
            }
            None => Verdict::Ignore,
        }
    }

    /// Holds an offer whose coin is not seen yet, within the bounds; false when full.
    fn hold(&mut self, offer: Offer, from: Peer, accountable: bool) -> bool {
        let from_peer = self.pending.values().filter(|(_, p, ..)| *p == from).count();
        if self.pending.len() >= MAX_PENDING || from_peer >= MAX_PENDING_PER_PEER {
            return false;
        }
        self.pending.insert(offer.id(), (offer, from, 0, accountable));
        true
    }

    /// Whether the chain has caught up with the best header it knows.
    async fn refresh_synced(&mut self) {
        if let Ok(state) = self.chain.sync_state().await {
            self.synced = state.best_header_height <= state.tip.height;
        }
    }

    /// After a block: the held offers whose coins confirmed are listed and relayed; those
    /// that waited long enough cost their senders.
    async fn check_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let held: Vec<(OfferId, (Offer, Peer, u32, bool))> = self.pending.drain().collect();
        let results = self.check(held.iter().map(|(_, (offer, ..))| offer.clone()).collect()).await;
        // One offence per sender and round: a few stale offers are a race, many a flood.
        let mut offences: HashMap<Peer, OfferError> = HashMap::new();
        for ((id, (offer, from, waited, accountable)), result) in held.into_iter().zip(results) {
            match result {
                Ok(listed) => {
                    if self.book.add(listed).is_ok() {
                        self.net.publish(Topic::Offers, offer.to_bytes()).await;
                    }
                }
                Err(OfferError::AnchorMissing(_)) if waited + 1 < PENDING_BLOCKS || !self.synced => {
                    self.pending.insert(id, (offer, from, waited + 1, accountable));
                }
                Err(e) if accountable || e.is_misbehaviour() => {
                    offences.entry(from).or_insert(e);
                }
                Err(_) => {}
            }
        }
        for (peer, e) in offences {
            self.penalise(peer, &e).await;
        }
    }

    async fn penalise(&self, peer: Peer, error: &OfferError) {
        let offence = if error.is_misbehaviour() { Offence::InvalidOffer } else { Offence::StaleOffer };
        self.peers.penalise(peer, offence, &format!("offer: {error}")).await;
    }

    /// Checks offers against the UTXO set at the tip and their signatures (on blocking
    /// threads, all cores); returns, in order, each listed or why not.
    async fn check(&self, offers: Vec<Offer>) -> Vec<Result<Listed, OfferError>> {
        let anchors = offers.iter().map(Offer::anchor).collect();
        let coins = match self.chain.coins(anchors).await {
            Ok(coins) => coins,
            Err(e) => {
                warn!(error = %e, "cannot read the UTXO set to check offers");
                return Vec::new();
            }
        };
        let (params, policy) = (self.params.clone(), self.policy);
        let checked = tokio::task::spawn_blocking(move || {
            let formed: Vec<Result<(peerchain_primitives::Coin, peerchain_market::Terms), OfferError>> = offers
                .iter()
                .zip(&coins.coins)
                .map(|(offer, coin)| {
                    let coin = coin.clone().ok_or(OfferError::AnchorMissing(offer.anchor()))?;
                    let terms = offer.check(&coin, coins.height, &params, &policy)?;
                    Ok((coin, terms))
                })
                .collect();
            let to_verify: Vec<(&Offer, &TxOut, &peerchain_market::Terms)> = offers
                .iter()
                .zip(&formed)
                .filter_map(|(offer, formed)| formed.as_ref().ok().map(|(coin, terms)| (offer, &coin.output, terms)))
                .collect();
            let mut verified = peerchain_market::verify_signatures(&to_verify, params.network.magic()).into_iter();
            offers
                .into_iter()
                .zip(formed)
                .map(|(offer, formed)| {
                    let (coin, terms) = formed?;
                    if !verified.next().unwrap_or(false) {
                        return Err(OfferError::BadSignature);
                    }
                    Ok(Listed::new(offer, coin.output, &terms, coin.height))
                })
                .collect()
        })
        .await;
        checked.unwrap_or_default()
    }

    /// Starts reading `peer`'s book, once per peer, once the chain has caught up.
    fn ask_for_book(&mut self, peer: Peer) {
        if !self.synced {
            return;
        }
        if self.asked.len() >= MAX_ASKED {
            self.asked.clear();
        }
        if !self.asked.insert(peer) {
            return;
        }
        let net = self.net.clone();
        let sender = self.fetched.0.clone();
        self.tasks.spawn(async move {
            let mut after = None;
            for _ in 0..MAX_PAGES {
                match net.request_market(peer, MarketRequest::BookPage { after }).await {
                    Ok(MarketResponse::Page { offers, more }) => {
                        after = offers.last().and_then(|bytes| Offer::from_wire(bytes).ok()).map(|o| o.id().0);
                        let last = !more || after.is_none();
                        if sender.send(Fetched { peer, offers }).await.is_err() || last {
                            return;
                        }
                    }
                    Ok(MarketResponse::Refused(reason)) => {
                        debug!(%peer, %reason, "peer refused its book");
                        return;
                    }
                    Err(e) => {
                        debug!(%peer, error = %e, "cannot read a peer's book");
                        return;
                    }
                }
            }
        });
    }

    /// A page of a peer's book: what checks out is listed. A peer's book holds what it
    /// checked; an offer that fails in a way it could have seen costs it, once a page. Stale
    /// offers (coins gone, or in blocks not here yet) cost nothing: when they are many, this
    /// node is behind, and the book is read again later.
    async fn on_fetched(&mut self, fetched: Fetched) {
        let Fetched { peer, offers } = fetched;
        let mut decoded = Vec::with_capacity(offers.len());
        let mut malformed = None;
        for bytes in &offers {
            match Offer::from_wire(bytes) {
                Ok(offer) if self.book.get(&offer.id()).is_none() => decoded.push(offer),
                Ok(_) => {}
                Err(e) => malformed = Some(e),
            }
        }
        if let Some(e) = malformed {
            self.peers.penalise(peer, Offence::Malformed, &format!("book page: {e}")).await;
        }
        let mut listed = 0;
        let mut stale = 0;
        let mut worst: Option<OfferError> = None;
        let count = decoded.len();
        let results = self.check(decoded.clone()).await;
        for (offer, result) in decoded.into_iter().zip(results) {
            match result {
                Ok(offer) => listed += usize::from(self.book.add(offer).is_ok()),
                Err(e) if e.is_misbehaviour() => worst = Some(e),
                Err(OfferError::AnchorMissing(_)) => {
                    stale += 1;
                    self.hold(offer, peer, false);
                }
                Err(_) => stale += 1,
            }
        }
        if let Some(e) = worst {
            self.penalise(peer, &e).await;
        }
        if stale * 2 > count {
            // Behind the peer: read its book again once the chain has moved.
            self.asked.remove(&peer);
        }
        if listed > 0 {
            info!(%peer, listed, book = self.book.len(), "offers from a peer's book");
        }
    }

    /// Lists (and publishes) the own offers not in the book whose coins are confirmed now;
    /// forgets those whose coins are gone or that expired.
    async fn list_waiting_mine(&mut self) {
        let waiting: Vec<(OfferId, Offer)> = self
            .mine
            .iter()
            .filter(|(id, _)| self.book.get(id).is_none())
            .map(|(id, (offer, _))| (*id, offer.clone()))
            .collect();
        if waiting.is_empty() {
            return;
        }
        let tip = self.chain.tip().height;
        let ids: Vec<OfferId> = waiting.iter().map(|(id, _)| *id).collect();
        let results = self.check(waiting.into_iter().map(|(_, offer)| offer).collect()).await;
        let mut gone = Vec::new();
        for (id, result) in ids.into_iter().zip(results) {
            match result {
                Ok(listed) => {
                    let bytes = listed.offer.to_bytes();
                    match self.book.add(listed) {
                        Ok(_) => {
                            info!(offer = %id, "own offer listed and published");
                            self.net.publish(Topic::Offers, bytes).await;
                        }
                        Err(e) => warn!(offer = %id, error = %e, "own offer not listed"),
                    }
                }
                // Waiting for its coin to confirm, until it expires.
                Err(OfferError::AnchorMissing(_)) if self.mine[&id].0.terms().is_ok_and(|t| t.expiry > tip) => {}
                Err(e) => {
                    debug!(offer = %id, error = %e, "own offer ended");
                    gone.push(id);
                }
            }
        }
        self.forget_mine(gone).await;
    }

    /// Forgets own offers that ended.
    async fn forget_mine(&mut self, ids: Vec<OfferId>) {
        let ids: Vec<OfferId> = ids.into_iter().filter(|id| self.mine.remove(id).is_some()).collect();
        if ids.is_empty() {
            return;
        }
        let index = self.index.clone();
        let forgotten = tokio::task::spawn_blocking(move || lock(&index).forget_mine(&ids)).await;
        if !matches!(forgotten, Ok(Ok(()))) {
            warn!("cannot forget ended own offers; they are checked again at the next start");
        }
    }
}
