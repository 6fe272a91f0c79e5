//! The order book: every valid offer this node knows, by id, by anchor and by asset pair,
//! bounded in bytes. It holds only offers checked against the UTXO set, and drops each the
//! moment its anchor is spent or its expiry comes near: no ghost offers.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use peerchain_primitives::{Amount, AssetId, Encode, OutPoint, TxId, TxOut};

use crate::offer::{Offer, OfferId, Terms};

/// An offer in the book.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its id.
    pub id: OfferId,
    /// The signed offer.
    pub offer: Offer,
    /// What it gives: the anchor's output.
    pub give: TxOut,
    /// The last height a take may be mined at.
    pub expiry: u32,
    /// The height the anchor was confirmed at: older anchors cost their makers more waiting.
    pub anchor_height: u32,
    /// A waiting transaction that spends the anchor (a take, or the maker's cancel).
    pub spent_by: Option<TxId>,
    size: usize,
}

impl Listed {
    /// A checked offer, ready for the book.
    pub fn new(offer: Offer, give: TxOut, terms: &Terms, anchor_height: u32) -> Listed {
        Listed {
            id: offer.id(),
            size: offer.encoded_len(),
            expiry: terms.expiry,
            offer,
            give,
            anchor_height,
            spent_by: None,
        }
    }

    /// The pair it trades: what it gives, what it wants.
    pub fn pair(&self) -> (AssetId, AssetId) {
        (self.give.asset, self.offer.want.asset)
    }

    /// Whether it is a lender's offer (principal given, collateral wanted under a loan lock).
    pub fn is_loan(&self) -> bool {
        self.offer.loan_terms().is_some()
    }

    /// Base units wanted per base unit given.
    pub fn price(&self) -> f64 {
        self.offer.price(&self.give)
    }

    /// What it stakes, in coins: what keeps it in a full book. An offer of tokens stakes
    /// none (a token's worth is not known here) and is kept by its anchor's age alone.
    fn stake(&self) -> Amount {
        if self.give.asset == AssetId::Coin { self.give.amount } else { Amount::ZERO }
    }

    fn priority(&self) -> Priority {
        (self.stake(), Reverse(self.anchor_height), self.id)
    }

    /// A sort key for the price, wanted over given in fixed point: cheaper first.
    fn price_key(&self) -> u128 {
        (u128::from(self.offer.want.amount.units()) << 64) / u128::from(self.give.amount.units().max(1))
    }
}

/// Lowest first: the first to go when the book is full.
type Priority = (Amount, Reverse<u32>, OfferId);

/// What adding an offer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Listed.
    New,
    /// Listed in place of an offer on the same anchor that asked more.
    Replaced(OfferId),
    /// Already listed.
    Known,
}

/// Why an offer was not listed. None of these is the sender's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotListed {
    /// Another offer on the same coin is listed and asks no more.
    #[error("another offer on the same coin is listed ({0}) and this one asks no less")]
    AnchorTaken(OfferId),
    /// The book is full of offers staking more.
    #[error("the order book is full of offers staking more")]
    Full,
}

/// The book.
#[derive(Debug)]
pub struct Book {
    offers: BTreeMap<OfferId, Listed>,
    by_anchor: HashMap<OutPoint, OfferId>,
    by_pair: BTreeMap<(AssetId, AssetId), BTreeSet<(u128, OfferId)>>,
    by_priority: BTreeSet<Priority>,
    bytes: usize,
    max_bytes: usize,
}

impl Book {
    /// An empty book of at most `max_bytes` of offers.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            offers: BTreeMap::new(),
            by_anchor: HashMap::new(),
            by_pair: BTreeMap::new(),
            by_priority: BTreeSet::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// How many offers.
    pub fn len(&self) -> usize {
        self.offers.len()
    }

    /// The most bytes of offers it holds.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.offers.is_empty()
    }

    /// Bytes of offers held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// An offer by id.
    pub fn get(&self, id: &OfferId) -> Option<&Listed> {
        self.offers.get(id)
    }

    /// Whether an offer on `anchor` is listed.
    pub fn offer_on(&self, anchor: &OutPoint) -> Option<&Listed> {
        self.by_anchor.get(anchor).and_then(|id| self.offers.get(id))
    }

    /// Lists a checked offer. One offer per coin: a second on the same coin replaces the
    /// first only if it asks strictly less of the same asset (a maker lowering the price);
    /// otherwise raising it needs the coin spent, or the first to expire. When full, the
    /// offers staking least (then the youngest anchors) make room, or this one is refused.
    pub fn add(&mut self, listed: Listed) -> Result<Added, NotListed> {
        if self.offers.contains_key(&listed.id) {
            return Ok(Added::Known);
        }
        let mut replaced = None;
        if let Some(current) = self.offer_on(&listed.offer.anchor()) {
            let better = current.offer.want.asset == listed.offer.want.asset
                && current.offer.want.lock == listed.offer.want.lock
                && listed.offer.want.amount < current.offer.want.amount;
            if !better {
                return Err(NotListed::AnchorTaken(current.id));
            }
            replaced = Some(current.id);
        }
        if let Some(id) = replaced {
            self.remove(&id);
        }
        while self.bytes + listed.size > self.max_bytes {
            let lowest = *self.by_priority.first().ok_or(NotListed::Full)?;
            if lowest >= listed.priority() {
                return Err(NotListed::Full);
            }
            self.remove(&lowest.2);
        }
        self.bytes += listed.size;
        self.by_anchor.insert(listed.offer.anchor(), listed.id);
        self.by_pair.entry(listed.pair()).or_default().insert((listed.price_key(), listed.id));
        self.by_priority.insert(listed.priority());
        self.offers.insert(listed.id, listed);
        Ok(replaced.map_or(Added::New, Added::Replaced))
    }

    /// Removes an offer; it, if it was listed.
    pub fn remove(&mut self, id: &OfferId) -> Option<Listed> {
        let listed = self.offers.remove(id)?;
        self.bytes -= listed.size;
        self.by_anchor.remove(&listed.offer.anchor());
        let pair = listed.pair();
        if let Some(prices) = self.by_pair.get_mut(&pair) {
            prices.remove(&(listed.price_key(), listed.id));
            if prices.is_empty() {
                self.by_pair.remove(&pair);
            }
        }
        self.by_priority.remove(&listed.priority());
        Some(listed)
    }

    /// Removes the offers on `anchors` (spent in a block); returns their ids.
    pub fn remove_anchors<'a>(&mut self, anchors: impl IntoIterator<Item = &'a OutPoint>) -> Vec<OfferId> {
        let ids: Vec<OfferId> = anchors.into_iter().filter_map(|a| self.by_anchor.get(a).copied()).collect();
        for id in &ids {
            self.remove(id);
        }
        ids
    }

    /// Removes the offers that can no longer be taken through a mempool with the chain at
    /// `tip_height`: those expiring within `margin` blocks of it. Returns their ids.
    pub fn expire(&mut self, tip_height: u32, margin: u32) -> Vec<OfferId> {
        let earliest = tip_height.saturating_add(margin);
        let ids: Vec<OfferId> = self.offers.values().filter(|l| l.expiry < earliest).map(|l| l.id).collect();
        for id in &ids {
            self.remove(id);
        }
        ids
    }

    /// Marks the offer on `anchor` as being taken (or cancelled) by the waiting `txid`, or
    /// no longer (`None`).
    pub fn mark_spent(&mut self, anchor: &OutPoint, txid: Option<TxId>) {
        if let Some(id) = self.by_anchor.get(anchor)
            && let Some(listed) = self.offers.get_mut(id)
        {
            listed.spent_by = txid;
        }
    }

    /// Every offer, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Listed> {
        self.offers.values()
    }

    /// The pairs with offers, and how many each.
    pub fn pairs(&self) -> impl Iterator<Item = ((AssetId, AssetId), usize)> + '_ {
        self.by_pair.iter().map(|(pair, prices)| (*pair, prices.len()))
    }

    /// The offers that give `give` for `want`, cheapest first.
    pub fn side(&self, give: AssetId, want: AssetId) -> impl Iterator<Item = &Listed> {
        self.by_pair.get(&(give, want)).into_iter().flatten().filter_map(|(_, id)| self.offers.get(id))
    }

    /// Offers after `after` in id order, at most `max_bytes` of them (one at least): a page
    /// of the book for a peer. Whether more follow.
    pub fn page(&self, after: Option<OfferId>, max_bytes: usize) -> (Vec<&Listed>, bool) {
        let mut page = Vec::new();
        let mut bytes = 0;
        let start = match after {
            Some(id) => std::ops::Bound::Excluded(id),
            None => std::ops::Bound::Unbounded,
        };
        for listed in self.offers.range((start, std::ops::Bound::Unbounded)).map(|(_, l)| l) {
            if !page.is_empty() && bytes + listed.size > max_bytes {
                return (page, true);
            }
            bytes += listed.size;
            page.push(listed);
        }
        (page, false)
    }
}
