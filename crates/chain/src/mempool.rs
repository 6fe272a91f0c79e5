//! Transactions waiting for a block: valid against the UTXO set plus each other, ordered by
//! fee rate, bounded in bytes.

use std::collections::{BTreeSet, HashMap, HashSet};

use peerchain_consensus::{Params, SigBatch, SigCache, TxReject, UtxoView, ViewError, check_spends, check_transaction};
use peerchain_primitives::{Amount, Coin, Encode, FeeRate, OutPoint, Transaction, TxId, WtxId};

/// Why the mempool refused a transaction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MempoolReject {
    /// It breaks a consensus rule.
    #[error("invalid transaction: {0}")]
    Invalid(#[from] TxReject),
    /// A coinbase travels only inside its block.
    #[error("a coinbase cannot enter the mempool")]
    Coinbase,
    /// It is already waiting.
    #[error("transaction {0} is already in the mempool")]
    AlreadyInMempool(TxId),
    /// It is already in a block.
    #[error("transaction {0} is already confirmed")]
    AlreadyConfirmed(TxId),
    /// It spends outputs this node does not know (perhaps a parent not yet seen).
    #[error("transaction spends unknown or spent output {0:?}")]
    MissingInputs(OutPoint),
    /// It pays less than the minimum relay fee rate.
    #[error("fee rate {got:.3} units/byte is below the minimum of {min:.3}")]
    FeeTooLow {
        /// Its rate.
        got: f64,
        /// The minimum.
        min: f64,
    },
    /// It conflicts with waiting transactions and does not pay enough to replace them: a
    /// higher fee rate than each, and a total fee above all it evicts by at least the
    /// incremental relay fee for its own size (so that every replacement pays for its relay).
    #[error(
        "conflicts with {conflict} and does not pay enough to replace it: a higher fee rate, and at least the \
         incremental relay fee for its size above the fees of everything it evicts"
    )]
    ReplacementTooCheap {
        /// One transaction it would replace.
        conflict: TxId,
    },
    /// It would evict more transactions than one replacement may.
    #[error("replacing its conflicts would evict {count} transactions, over the limit of {max}")]
    ReplacementEvictsTooMany {
        /// How many it would evict.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// It would make a chain of unconfirmed transactions longer or larger than allowed.
    #[error("too long a chain of unconfirmed transactions: {reason}")]
    ChainTooLong {
        /// Which limit.
        reason: String,
    },
    /// Its signatures expire too soon to be sure of a block: it could confirm and then, in a
    /// reorganisation, become invalid with everything built on it.
    #[error(
        "its signatures expire at height {expiry}; the mempool takes only transactions valid for {EXPIRY_MARGIN} more blocks (from {next_height})"
    )]
    ExpiresTooSoon {
        /// The earliest expiry of its signatures.
        expiry: u32,
        /// The height of the next block.
        next_height: u32,
    },
    /// The mempool is full of transactions paying more.
    #[error("mempool full: the fee rate is too low to enter")]
    Full,
    /// The UTXO set could not be read.
    #[error(transparent)]
    View(#[from] ViewError),
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) tx: Transaction,
    /// Its witness id, which compact blocks' short ids are made from.
    pub(crate) wtxid: WtxId,
    pub(crate) fee: Amount,
    pub(crate) size: usize,
    pub(crate) rate: FeeRate,
    /// Arrival order, to keep ties stable.
    pub(crate) sequence: u64,
    /// The last height it may be mined at, if its signatures expire.
    pub(crate) expiry: Option<u32>,
}

impl MempoolReject {
    /// Every [`MempoolReject::kind`], in order, for counting refusals by kind.
    pub const KINDS: [&'static str; 11] = [
        "invalid",
        "coinbase",
        "already_in_mempool",
        "already_confirmed",
        "missing_inputs",
        "fee_too_low",
        "replacement_too_cheap",
        "replacement_evicts_too_many",
        "chain_too_long",
        "expires_too_soon",
        "full_or_store",
    ];

    /// The refusal's kind, an index into [`MempoolReject::KINDS`].
    pub fn kind(&self) -> usize {
        match self {
            MempoolReject::Invalid(_) => 0,
            MempoolReject::Coinbase => 1,
            MempoolReject::AlreadyInMempool(_) => 2,
            MempoolReject::AlreadyConfirmed(_) => 3,
            MempoolReject::MissingInputs(_) => 4,
            MempoolReject::FeeTooLow { .. } => 5,
            MempoolReject::ReplacementTooCheap { .. } => 6,
            MempoolReject::ReplacementEvictsTooMany { .. } => 7,
            MempoolReject::ChainTooLong { .. } => 8,
            MempoolReject::ExpiresTooSoon { .. } => 9,
            MempoolReject::Full | MempoolReject::View(_) => 10,
        }
    }
}

/// The mempool.
#[derive(Debug)]
pub struct Mempool {
    entries: HashMap<TxId, Entry>,
    /// Which waiting transaction spends each outpoint.
    spent_by: HashMap<OutPoint, TxId>,
    by_rate: BTreeSet<(FeeRate, u64, TxId)>,
    bytes: usize,
    max_bytes: usize,
    min_rate: FeeRate,
    incremental_rate: FeeRate,
    sequence: u64,
    /// Signatures verified on entry so far (those the signature cache held are not).
    signatures_verified: u64,
}

/// Mempool limits.
#[derive(Debug, Clone, Copy)]
pub struct MempoolLimits {
    /// The most bytes of transactions held.
    pub max_bytes: usize,
    /// The lowest fee rate accepted.
    pub min_relay_rate: FeeRate,
    /// What a replacement must pay per byte of its own size above the fees it evicts
    /// (Bitcoin's incremental relay fee, BIP 125 rule 4).
    pub incremental_relay_rate: FeeRate,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        Self {
            max_bytes: 300 << 20,
            min_relay_rate: FeeRate::per_byte(1),
            incremental_relay_rate: FeeRate::per_byte(1),
        }
    }
}

/// Most transactions one replacement may evict, its conflicts' descendants included
/// (BIP 125 rule 5): a replacement costs every node its evictions.
pub const MAX_REPLACEMENT_EVICTIONS: usize = 100;
/// Most unconfirmed transactions in a transaction's ancestry, itself included (Bitcoin
/// Core's limit): a chain stays cheap to select, evict and replace.
pub const MAX_ANCESTORS: usize = 25;
/// Most bytes of a transaction and its unconfirmed ancestors.
pub const MAX_ANCESTOR_BYTES: usize = 101_000;
/// Most unconfirmed descendants of a transaction, itself included.
pub const MAX_DESCENDANTS: usize = 25;
/// How many blocks, from the next, a transaction's signatures must stay valid for it to
/// enter (Zcash keeps "expiring soon" transactions out the same way): one that confirms just
/// before expiring would be invalid after a small reorganisation, and its children with it.
pub const EXPIRY_MARGIN: u32 = 2;

/// The chain UTXO set seen with the mempool's outputs added and its spends removed.
struct MempoolView<'a, V> {
    chain: &'a V,
    mempool: &'a Mempool,
}

impl<V: UtxoView> UtxoView for MempoolView<'_, V> {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, ViewError> {
        if let Some(parent) = self.mempool.entries.get(&outpoint.txid) {
            return Ok(parent.tx.outputs.get(outpoint.index as usize).map(|output| Coin {
                output: output.clone(),
                // Correctness: an unconfirmed parent's output counts as created in the next
                // block, which is where a child could be mined at the earliest.
                height: u32::MAX,
                is_coinbase: false,
            }));
        }
        self.chain.coin(outpoint)
    }
}

impl Mempool {
    /// An empty mempool.
    pub fn new(limits: MempoolLimits) -> Self {
        Self {
            entries: HashMap::new(),
            spent_by: HashMap::new(),
            by_rate: BTreeSet::new(),
            bytes: 0,
            max_bytes: limits.max_bytes,
            min_rate: limits.min_relay_rate,
            incremental_rate: limits.incremental_relay_rate,
            sequence: 0,
            signatures_verified: 0,
        }
    }

    /// How many transactions wait.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none do.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Their total size in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// A waiting transaction.
    pub fn get(&self, txid: &TxId) -> Option<&Transaction> {
        self.entries.get(txid).map(|e| &e.tx)
    }

    /// Whether a transaction waits.
    pub fn contains(&self, txid: &TxId) -> bool {
        self.entries.contains_key(txid)
    }

    /// Which waiting transaction spends `outpoint`.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<TxId> {
        self.spent_by.get(outpoint).copied()
    }

    /// The transactions waiting with their witness ids, in no particular order.
    pub fn with_wtxids(&self) -> impl Iterator<Item = (WtxId, &Transaction)> {
        self.entries.values().map(|entry| (entry.wtxid, &entry.tx))
    }

    /// The transactions waiting, in no particular order.
    pub fn transactions(&self) -> impl Iterator<Item = &Transaction> {
        self.entries.values().map(|e| &e.tx)
    }

    /// The lowest fee rate accepted.
    pub fn min_rate(&self) -> FeeRate {
        self.min_rate
    }

    /// How many signatures entering transactions needed verifying so far: those the
    /// signature cache already held (a transaction returning after a reorganisation) do not.
    pub fn signatures_verified(&self) -> u64 {
        self.signatures_verified
    }

    /// The fee rates of waiting transactions, highest first.
    pub fn rates_descending(&self) -> impl Iterator<Item = (FeeRate, usize)> + '_ {
        self.by_rate.iter().rev().map(|(rate, _, txid)| (*rate, self.entries[txid].size))
    }

    /// Validates `tx` against `chain` plus the mempool and adds it, replacing conflicting
    /// transactions if it pays more. `next_height` is the height of the next block.
    pub fn accept(
        &mut self,
        tx: Transaction,
        chain: &impl UtxoView,
        next_height: u32,
        is_confirmed: impl Fn(&TxId) -> bool,
        params: &Params,
        sig_cache: &SigCache,
    ) -> Result<TxId, MempoolReject> {
        let txid = tx.txid();
        if tx.is_coinbase() {
            return Err(MempoolReject::Coinbase);
        }
        if self.entries.contains_key(&txid) {
            return Err(MempoolReject::AlreadyInMempool(txid));
        }
        check_transaction(&tx, params)?;
        let expiry = tx.expiry();
        if let Some(expiry) = expiry
            && expiry < next_height.saturating_add(EXPIRY_MARGIN - 1)
        {
            return Err(MempoolReject::ExpiresTooSoon { expiry, next_height });
        }

        let mut conflicts: HashSet<TxId> = HashSet::new();
        for input in &tx.inputs {
            if let Some(spender) = self.spent_by.get(&input.prev_out) {
                conflicts.insert(*spender);
            }
        }
        // Conflicting transactions and everything spending them would be evicted.
        let evicted = self.with_descendants(conflicts.iter().copied());

        let view = MempoolView { chain, mempool: self };
        let mut coins = Vec::with_capacity(tx.inputs.len());
        for input in &tx.inputs {
            if evicted.contains(&input.prev_out.txid) {
                return Err(MempoolReject::MissingInputs(input.prev_out));
            }
            match view.coin(&input.prev_out)? {
                Some(coin) => coins.push(coin),
                None if is_confirmed(&txid) => return Err(MempoolReject::AlreadyConfirmed(txid)),
                None => return Err(MempoolReject::MissingInputs(input.prev_out)),
            }
        }
        // Coins of unconfirmed parents carry height u32::MAX: no maturity applies to them.
        let coins: Vec<Coin> = coins.into_iter().map(|c| Coin { height: c.height.min(next_height), ..c }).collect();
        let mut signatures = SigBatch::with_capacity(tx.inputs.len());
        let fee = check_spends(&tx, 0, &coins, next_height, params, &mut signatures)?;
        // Security: the cheap fee check comes first, so that a flood of transactions paying
        // too little costs no signature verification.
        let size = tx.encoded_len();
        let rate = FeeRate::of(fee, size);
        if rate < self.min_rate {
            return Err(MempoolReject::FeeTooLow { got: rate.units_per_byte(), min: self.min_rate.units_per_byte() });
        }
        if evicted.len() > MAX_REPLACEMENT_EVICTIONS {
            return Err(MempoolReject::ReplacementEvictsTooMany {
                count: evicted.len(),
                max: MAX_REPLACEMENT_EVICTIONS,
            });
        }
        if !evicted.is_empty() {
            let mut replaced_fees = Amount::ZERO;
            for id in &evicted {
                let entry = &self.entries[id];
                if conflicts.contains(id) && entry.rate >= rate {
                    return Err(MempoolReject::ReplacementTooCheap { conflict: *id });
                }
                replaced_fees = replaced_fees.checked_add(entry.fee).unwrap_or(Amount::MAX_MONEY);
            }
            // Security: each replacement pays for its own relay, so a chain of replacements
            // raising the fee by one unit each is not free to send through the network.
            let enough = replaced_fees.checked_add(self.incremental_rate.fee_for(size));
            if enough.is_none_or(|enough| fee < enough) {
                let conflict = *conflicts.iter().next().expect("evicted is non-empty only with conflicts");
                return Err(MempoolReject::ReplacementTooCheap { conflict });
            }
        }
        self.check_chain_limits(&tx, size, &evicted)?;
        // A transaction whose signatures the cache holds (one returning to the mempool after
        // a reorganisation, say) was verified strictly before: no need again.
        if !sig_cache.holds_all(&signatures) {
            signatures.verify_strict().map_err(|failure| peerchain_consensus::sig_failure_reason(failure).1)?;
            self.signatures_verified += signatures.len() as u64;
        }
        for id in evicted {
            self.remove_one(&id);
        }
        let wtxid = tx.wtxid();
        self.insert(txid, Entry { tx, wtxid, fee, size, rate, sequence: 0, expiry });
        self.trim();
        if !self.entries.contains_key(&txid) {
            return Err(MempoolReject::Full);
        }
        sig_cache.insert_strictly_verified(&signatures);
        Ok(txid)
    }

    /// Refuses a transaction whose unconfirmed ancestry (not counting what it evicts) would
    /// exceed [`MAX_ANCESTORS`] or [`MAX_ANCESTOR_BYTES`], or give an ancestor more than
    /// [`MAX_DESCENDANTS`]. Every set walked is bounded by these limits.
    fn check_chain_limits(&self, tx: &Transaction, size: usize, evicted: &HashSet<TxId>) -> Result<(), MempoolReject> {
        let mut ancestors: HashSet<TxId> = HashSet::new();
        let mut stack: Vec<TxId> = tx.inputs.iter().map(|i| i.prev_out.txid).collect();
        let mut bytes = size;
        while let Some(txid) = stack.pop() {
            if evicted.contains(&txid) || ancestors.contains(&txid) {
                continue;
            }
            let Some(entry) = self.entries.get(&txid) else { continue };
            ancestors.insert(txid);
            bytes += entry.size;
            if ancestors.len() + 1 > MAX_ANCESTORS {
                return Err(MempoolReject::ChainTooLong {
                    reason: format!("more than {} unconfirmed ancestors", MAX_ANCESTORS - 1),
                });
            }
            if bytes > MAX_ANCESTOR_BYTES {
                return Err(MempoolReject::ChainTooLong {
                    reason: format!("over {MAX_ANCESTOR_BYTES} bytes with its unconfirmed ancestors"),
                });
            }
            stack.extend(entry.tx.inputs.iter().map(|i| i.prev_out.txid));
        }
        for ancestor in &ancestors {
            let descendants = self.with_descendants([*ancestor]).difference(evicted).count();
            if descendants + 1 > MAX_DESCENDANTS {
                return Err(MempoolReject::ChainTooLong {
                    reason: format!("{ancestor} would have more than {} unconfirmed descendants", MAX_DESCENDANTS - 1),
                });
            }
        }
        Ok(())
    }

    fn insert(&mut self, txid: TxId, mut entry: Entry) {
        self.sequence += 1;
        entry.sequence = self.sequence;
        for input in &entry.tx.inputs {
            self.spent_by.insert(input.prev_out, txid);
        }
        self.by_rate.insert((entry.rate, entry.sequence, txid));
        self.bytes += entry.size;
        self.entries.insert(txid, entry);
    }

    fn remove_one(&mut self, txid: &TxId) -> Option<Entry> {
        let entry = self.entries.remove(txid)?;
        for input in &entry.tx.inputs {
            if self.spent_by.get(&input.prev_out) == Some(txid) {
                self.spent_by.remove(&input.prev_out);
            }
        }
        self.by_rate.remove(&(entry.rate, entry.sequence, *txid));
        self.bytes -= entry.size;
        Some(entry)
    }

    /// The given transactions and every waiting transaction that spends their outputs.
    fn with_descendants(&self, roots: impl IntoIterator<Item = TxId>) -> HashSet<TxId> {
        let mut found = HashSet::new();
        let mut stack: Vec<TxId> = roots.into_iter().collect();
        while let Some(txid) = stack.pop() {
            if !found.insert(txid) {
                continue;
            }
            if let Some(entry) = self.entries.get(&txid) {
                for index in 0..entry.tx.outputs.len() {
                    if let Some(child) = self.spent_by.get(&OutPoint::new(txid, index as u32)) {
                        stack.push(*child);
                    }
                }
            }
        }
        found
    }

    /// Evicts the lowest fee rates (with their descendants) until within the byte cap.
    fn trim(&mut self) {
        while self.bytes > self.max_bytes {
            let Some(&(_, _, lowest)) = self.by_rate.first() else { break };
            for txid in self.with_descendants([lowest]) {
                self.remove_one(&txid);
            }
        }
    }

    /// Removes what a newly connected block confirmed, and what conflicts with it.
    pub fn remove_for_block(&mut self, block_txs: &[Transaction]) {
        let mut doomed = Vec::new();
        for tx in block_txs {
            let txid = tx.txid();
            if self.entries.contains_key(&txid) {
                // Confirmed: it leaves, but its children stay (their parent is now on chain).
                self.remove_one(&txid);
                continue;
            }
            for input in &tx.inputs {
                if let Some(conflict) = self.spent_by.get(&input.prev_out) {
                    doomed.push(*conflict);
                }
            }
        }
        for txid in self.with_descendants(doomed) {
            self.remove_one(&txid);
        }
    }

    /// Removes transactions (and their descendants) that cannot be mined in the block at
    /// `next_height` because their signatures expired; returns how many left.
    pub fn remove_expired(&mut self, next_height: u32) -> usize {
        let expired: Vec<TxId> =
            self.entries.iter().filter(|(_, e)| e.expiry.is_some_and(|h| h < next_height)).map(|(id, _)| *id).collect();
        if expired.is_empty() {
            return 0;
        }
        let doomed = self.with_descendants(expired);
        for txid in &doomed {
            self.remove_one(txid);
        }
        doomed.len()
    }

    /// Takes every transaction out, for revalidation after a reorganisation.
    pub fn drain(&mut self) -> Vec<Transaction> {
        let mut entries: Vec<Entry> = self.entries.drain().map(|(_, e)| e).collect();
        entries.sort_by_key(|e| e.sequence);
        self.spent_by.clear();
        self.by_rate.clear();
        self.bytes = 0;
        entries.into_iter().map(|e| e.tx).collect()
    }

    /// Picks transactions for a block of at most `max_bytes`: highest fee rate first, each
    /// after the waiting parents it spends. Returns them in a valid order and their fees.
    ///
    /// A transaction becomes a candidate once its last waiting parent is chosen, so the work is
    /// linear in the mempool (up to the heap's logarithm), whatever the chains' fee rates.
    pub fn select(&self, max_bytes: usize) -> (Vec<Transaction>, Amount) {
        use std::collections::BinaryHeap;
        let mut chosen: Vec<Transaction> = Vec::new();
        let mut fees = Amount::ZERO;
        let mut bytes = 0usize;
        // How many distinct waiting parents each transaction still waits for.
        let mut waiting_for: HashMap<TxId, usize> = HashMap::new();
        let mut ready: BinaryHeap<(FeeRate, std::cmp::Reverse<u64>, TxId)> = BinaryHeap::new();
        for (txid, entry) in &self.entries {
            let parents: HashSet<TxId> = entry
                .tx
                .inputs
                .iter()
                .map(|i| i.prev_out.txid)
                .filter(|parent| self.entries.contains_key(parent))
                .collect();
            if parents.is_empty() {
                ready.push((entry.rate, std::cmp::Reverse(entry.sequence), *txid));
            } else {
                waiting_for.insert(*txid, parents.len());
            }
        }
        while let Some((_, _, txid)) = ready.pop() {
            let entry = &self.entries[&txid];
            // One that does not fit is left out, and its descendants with it.
            if bytes + entry.size > max_bytes {
                continue;
            }
            bytes += entry.size;
            fees = fees.checked_add(entry.fee).unwrap_or(fees);
            chosen.push(entry.tx.clone());
            let children: HashSet<TxId> = (0..entry.tx.outputs.len())
                .filter_map(|index| self.spent_by.get(&OutPoint::new(txid, index as u32)).copied())
                .collect();
            for child in children {
                if let Some(count) = waiting_for.get_mut(&child) {
                    *count -= 1;
                    if *count == 0 {
                        waiting_for.remove(&child);
                        let entry = &self.entries[&child];
                        ready.push((entry.rate, std::cmp::Reverse(entry.sequence), child));
                    }
                }
            }
        }
        (chosen, fees)
    }
}
