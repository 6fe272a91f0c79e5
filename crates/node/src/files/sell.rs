//! Selling content: a price on a content id, ranges served one piece ahead of what the
//! buyer's channel has paid, payments checked and kept (`channels.redb`), and channels
//! closed with the wallet's signature once fully paid or idle (and after a restart).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peerchain_blobs::{ContentId, GROUP_BYTES, PIECE_GROUPS, group_count};
use peerchain_market::{Channels, PaymentRules, Sale, Selling, check_payment};
use peerchain_net::{FileResponse, Peer, Price};
use peerchain_primitives::{Decode, OutPoint, Transaction};
use peerchain_wallet::SharedWallet;
use tracing::{info, warn};

use super::{blocking, lock};

/// A piece's bytes (the last piece of a blob may be shorter).
const PIECE_BYTES: u64 = PIECE_GROUPS * GROUP_BYTES;
/// Bytes a buyer may receive beyond what it paid for: one piece (the first proves the size).
/// Served pieces are counted whole.
const CREDIT_BYTES: u64 = PIECE_BYTES;
/// A channel with no payment for this long is closed with the latest payment.
pub(super) const CLOSE_IDLE: Duration = Duration::from_secs(20);
/// Most buyers tracked at once (each one piece of credit); the oldest are forgotten first.
const MAX_BUYERS: usize = 4_096;

/// What one buyer received of one content, and the channel that pays for it.
struct Account {
    /// The pieces served (one served again costs nothing: the buyer learns nothing new).
    pieces: BTreeSet<u64>,
    channel: Option<OutPoint>,
    seen: Instant,
}

/// A channel being paid through.
struct Open {
    channel: Selling,
    last_paid: Instant,
}

/// The node's sales.
pub(super) struct Sales {
    pub(super) channels: Arc<Channels>,
    /// Content on sale, with its size.
    prices: std::sync::Mutex<HashMap<ContentId, (Sale, u64)>>,
    accounts: std::sync::Mutex<HashMap<(Peer, ContentId), Account>>,
    open: std::sync::Mutex<HashMap<OutPoint, Open>>,
}

impl Sales {
    pub(super) fn new(channels: Arc<Channels>) -> Sales {
        Sales { channels, prices: Default::default(), accounts: Default::default(), open: Default::default() }
    }

    /// Loads the prices (with the sizes of the content) and the open channels.
    pub(super) fn load(&self, store: &peerchain_blobs::Store) -> Result<(), String> {
        let mut prices = lock(&self.prices);
        for (id, sale) in self.channels.sales().map_err(|e| e.to_string())? {
            if let Ok(Some(entry)) = store.get(id) {
                prices.insert(id, (sale, entry.size));
            }
        }
        let now = Instant::now();
        let mut open = lock(&self.open);
        for channel in self.channels.selling().map_err(|e| e.to_string())? {
            open.insert(channel.escrow, Open { channel, last_paid: now });
        }
        Ok(())
    }

    pub(super) fn set(&self, id: ContentId, sale: Option<(Sale, u64)>) -> Result<(), String> {
        self.channels.set_sale(id, sale.map(|(s, _)| s)).map_err(|e| e.to_string())?;
        let mut prices = lock(&self.prices);
        match sale {
            Some(sale) => prices.insert(id, sale),
            None => prices.remove(&id),
        };
        Ok(())
    }

    pub(super) fn price(&self, id: &ContentId) -> Option<Price> {
        lock(&self.prices).get(id).map(|(sale, _)| Price { units: sale.price, seller: sale.seller })
    }

    /// The account of `peer` for `id`, made if new: bound to the channel it paid through
    /// before (this node restarted since), the oldest account forgotten if there are many.
    fn account<'a>(
        &self,
        accounts: &'a mut HashMap<(Peer, ContentId), Account>,
        peer: Peer,
        id: ContentId,
    ) -> &'a mut Account {
        if !accounts.contains_key(&(peer, id)) && accounts.len() >= MAX_BUYERS {
            let oldest = accounts.iter().min_by_key(|(_, a)| a.seen).map(|(k, _)| *k);
            oldest.map(|k| accounts.remove(&k));
        }
        let account = accounts.entry((peer, id)).or_insert_with(|| {
            let buyer = peer.to_bytes();
            let open = lock(&self.open);
            let channel = open.values().find(|o| o.channel.content == id && o.channel.buyer == buyer);
            Account { pieces: BTreeSet::new(), channel: channel.map(|o| o.channel.escrow), seen: Instant::now() }
        });
        account.seen = Instant::now();
        account
    }

    /// Whether `peer` may receive the groups `start..start + count` of `id`: always for
    /// content not on sale; for content on sale, while the pieces it was served stay within
    /// one piece of what its channel paid. Counts the pieces as served when it may.
    pub(super) fn allow_range(&self, peer: Peer, id: ContentId, start: u64, count: u32) -> Result<(), String> {
        let Some((sale, size)) = lock(&self.prices).get(&id).copied() else { return Ok(()) };
        let end = start.saturating_add(u64::from(count)).min(group_count(size));
        let pieces = start / PIECE_GROUPS..end.div_ceil(PIECE_GROUPS);
        let mut accounts = lock(&self.accounts);
        let account = self.account(&mut accounts, peer, id);
        let piece_bytes = |p: &u64| ((p + 1) * PIECE_BYTES).min(size) - p * PIECE_BYTES;
        let new: Vec<u64> = pieces.filter(|p| !account.pieces.contains(p)).collect();
        let bytes: u64 = new.iter().map(piece_bytes).sum();
        let served: u64 = account.pieces.iter().map(piece_bytes).sum();
        let paid = account.channel.and_then(|c| lock(&self.open).get(&c).map(|o| o.channel.paid)).unwrap_or(0);
        let paid_bytes = (u128::from(paid) * u128::from(size) / u128::from(sale.price)) as u64;
        if served + bytes > paid_bytes + CREDIT_BYTES {
            return Err(format!(
                "payment required: {id} is on sale for {} base units; paid {paid}, {served} of {size} bytes served",
                sale.price
            ));
        }
        account.pieces.extend(new);
        Ok(())
    }

    /// A buyer's payment: checked against the channel's escrow on chain and the latest
    /// payment, then kept; the answer says what the channel has paid in all. Fully paid,
    /// the channel is returned for closing.
    pub(super) async fn pay(
        &self,
        chain: &peerchain_chain::Handle,
        peer: Peer,
        id: ContentId,
        payment: &[u8],
        rules: PaymentRules,
    ) -> (FileResponse, Option<OutPoint>) {
        let refuse = |reason: String| (FileResponse::Refused(reason), None);
        let Some((sale, _)) = lock(&self.prices).get(&id).copied() else {
            return refuse(format!("{id} is not on sale"));
        };
        let Ok(tx) = Transaction::from_bytes(payment) else { return refuse("malformed payment".into()) };
        let Some(escrow) = tx.inputs.first().map(|i| i.prev_out) else {
            return refuse("a payment spends an escrow".into());
        };
        let bound = lock(&self.accounts).get(&(peer, id)).and_then(|a| a.channel);
        if bound.is_some_and(|c| c != escrow) {
            return refuse("this download is paid through another channel".into());
        }
        let before = match lock(&self.open).get(&escrow) {
            Some(open) if open.channel.content != id || open.channel.buyer != peer.to_bytes() => {
                return refuse("the channel pays for another download".into());
            }
            Some(open) => open.channel.paid,
            None => 0,
        };
        let coin = match chain.coins(vec![escrow]).await {
            Ok(found) => found.coins.into_iter().next().flatten(),
            Err(e) => return refuse(format!("cannot read the chain: {e}")),
        };
        let Some(coin) = coin else {
            return refuse("the channel's escrow is not confirmed, or already spent".into());
        };
        let paid = match check_payment(&tx, (escrow, &coin.output), &sale.seller, sale.price, before, rules) {
            Ok(paid) => paid,
            Err(e) => return refuse(e.to_string()),
        };
        let channel = Selling { escrow, content: id, buyer: peer.to_bytes(), paid, payment: tx };
        let (channels, saved) = (self.channels.clone(), channel.clone());
        if let Err(e) = blocking(move || channels.save_selling(&saved)).await {
            return refuse(format!("cannot keep the payment: {e}"));
        }
        lock(&self.open).insert(escrow, Open { channel, last_paid: Instant::now() });
        self.account(&mut lock(&self.accounts), peer, id).channel = Some(escrow);
        (FileResponse::Paid(paid), (paid == sale.price).then_some(escrow))
    }

    /// Channels with no payment for `idle`.
    pub(super) fn idle(&self, idle: Duration) -> Vec<OutPoint> {
        lock(&self.open).iter().filter(|(_, o)| o.last_paid.elapsed() >= idle).map(|(e, _)| *e).collect()
    }

    /// Closes a channel: the latest payment, with the wallet's signature added, submitted.
    /// A channel whose escrow is spent already (the buyer took it back after the timeout)
    /// is forgotten.
    pub(super) async fn close(
        &self,
        escrow: OutPoint,
        chain: &peerchain_chain::Handle,
        net: &peerchain_net::Handle,
        wallet: &SharedWallet,
    ) {
        let Some(channel) = lock(&self.open).get(&escrow).map(|o| o.channel.clone()) else { return };
        let coin = match chain.coins(vec![escrow]).await {
            Ok(found) => found.coins.into_iter().next().flatten(),
            Err(_) => return,
        };
        let closed = match coin {
            None => {
                info!(escrow = %escrow.txid, "channel escrow already spent; forgetting it");
                true
            }
            Some(coin) => {
                let signer = wallet.clone();
                let mut tx = channel.payment.clone();
                let signed = blocking(move || {
                    let mut slot = signer.lock();
                    let wallet = slot.as_mut().ok_or("no wallet".to_string())?;
                    wallet.cosign(&mut tx, 0, &coin.output, None).map_err(|e| e.to_string())?;
                    Ok::<_, String>(tx)
                })
                .await;
                match signed {
                    Ok(tx) => match crate::relay::submit_transaction(chain, net, tx.clone()).await {
                        Ok(txid) => {
                            info!(%txid, paid = channel.paid, content = %channel.content, "payment channel closed");
                            let wallet = wallet.clone();
                            let _ = blocking(move || wallet.lock().as_mut().map(|w| w.add_pending(tx, true))).await;
                            true
                        }
                        Err(e) => {
                            warn!(escrow = %escrow.txid, error = %e, "cannot close a payment channel");
                            false
                        }
                    },
                    Err(e) => {
                        warn!(escrow = %escrow.txid, error = %e, "cannot sign a payment channel's close");
                        false
                    }
                }
            }
        };
        if closed {
            lock(&self.open).remove(&escrow);
            let channels = self.channels.clone();
            if let Err(e) = blocking(move || channels.forget_selling(&escrow)).await {
                warn!(error = %e, "cannot forget a closed channel");
            }
        } else if let Some(open) = lock(&self.open).get_mut(&escrow) {
            // Tried again after another idle spell.
            open.last_paid = Instant::now();
        }
    }
}
