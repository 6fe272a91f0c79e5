//! The market following the main chain: each new block read into the index (tokens,
//! supplies, trades), the offers whose coins it spent dropped from the book, expiring offers
//! dropped, and after a reorganisation every offer checked again. Nothing is listed that the
//! tip does not back.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use peerchain_market::{Index, OfferId};
use peerchain_primitives::OutPoint;
use tracing::{info, warn};

use super::{Market, lock};
use crate::explorer::spent_outputs;

/// Blocks read into the index per turn on a blocking thread: between turns the actor serves
/// peers and RPC calls, also while a long chain is read the first time.
const BLOCKS_PER_TURN: u32 = 200;
/// While the chain syncs, the index is flushed to disk at most this often (as the chain's
/// own commits are): a flush for each block, as the sync brings them one by one, made a
/// syncing node a tenth slower.
const FLUSH_WHILE_SYNCING: Duration = Duration::from_secs(2);

/// What one turn of reading the chain did.
#[derive(Default)]
struct Turn {
    /// Outputs the blocks read spent.
    spent: Vec<OutPoint>,
    /// Whether blocks were undone (a reorganisation).
    rewound: bool,
    /// Whether blocks remain to read.
    more: bool,
}

/// Reads up to [`BLOCKS_PER_TURN`] main-chain blocks into `index`, first undoing those a
/// reorganisation took off the main chain; the last one's commit is made durable if
/// `flush`.
fn read_chain(index: &mut Index, chain: &peerchain_chain::Handle, flush: bool) -> Result<Turn, String> {
    let mut turn = Turn::default();
    let start = loop {
        let Some((height, hash)) = index.scan_tip() else { break 0 };
        if chain.main_hash(height).map_err(|e| e.to_string())? == Some(hash) {
            break height + 1;
        }
        turn.rewound = true;
        let below = match height.checked_sub(1) {
            Some(h) => index.scanned_hash(h).map_err(|e| e.to_string())?.map(|_| h),
            None => None,
        };
        index.rewind_to(below).map_err(|e| e.to_string())?;
        if below.is_none() {
            break 0;
        }
    };
    let tip = chain.tip().height;
    let end = tip.min(start.saturating_add(BLOCKS_PER_TURN - 1));
    for height in start..=end {
        let Some(block) = chain.block_at(height).map_err(|e| e.to_string())? else { break };
        let undo = chain.spent_by_block(&block.hash()).map_err(|e| e.to_string())?.unwrap_or_default();
        let spent = spent_outputs(&block, undo);
        // At most one flush to disk per turn, not per block: a catch-up of thousands of
        // blocks would otherwise wait on the disk once for each. The index is derived from
        // the chain: after a crash it reads again the blocks of commits that were lost.
        let durable = flush && height == end;
        index
            .connect_block(&block, height, &|outpoint| spent.get(outpoint).cloned(), durable)
            .map_err(|e| e.to_string())?;
        turn.spent.extend(block.transactions.iter().skip(1).flat_map(|tx| tx.inputs.iter().map(|i| i.prev_out)));
    }
    turn.more = end < tip;
    Ok(turn)
}

impl Market {
    /// Catches up with the chain's tip (see the module's documentation).
    pub(super) async fn follow_chain(&mut self) {
        self.refresh_synced().await;
        let mut rewound = false;
        loop {
            let index = self.index.clone();
            let chain = self.chain.clone();
            let flush = self.synced || self.flushed.elapsed() >= FLUSH_WHILE_SYNCING;
            if flush {
                self.flushed = Instant::now();
            }
            let turn = tokio::task::spawn_blocking(move || read_chain(&mut lock(&index), &chain, flush)).await;
            let turn = match turn {
                Ok(Ok(turn)) => turn,
                Ok(Err(e)) => {
                    warn!(error = %e, "market index cannot read the chain; retrying at the next block");
                    break;
                }
                Err(e) => {
                    warn!(error = %e, "market index task failed");
                    break;
                }
            };
            rewound |= turn.rewound;
            self.book.remove_anchors(&turn.spent);
            let spent: HashSet<OutPoint> = turn.spent.into_iter().collect();
            let ended: Vec<OfferId> =
                self.mine.iter().filter(|(_, (offer, _))| spent.contains(&offer.anchor())).map(|(id, _)| *id).collect();
            self.forget_mine(ended).await;
            if !turn.more {
                break;
            }
        }
        let tip = self.chain.tip().height;
        self.book.expire(tip, self.policy.expiry_margin);
        if rewound {
            self.check_book_again().await;
        }
        self.check_pending().await;
        self.list_waiting_mine().await;
        if self.synced {
            // Caught up: the books of peers met while syncing can be read now.
            for peer in self.net.peers().await {
                self.ask_for_book(peer.peer);
            }
        }
    }

    /// After a reorganisation: an offer's coin may be gone with the blocks that made it.
    async fn check_book_again(&mut self) {
        let offers: Vec<_> = self.book.iter().map(|l| l.offer.clone()).collect();
        let before = self.book.len();
        for offer in &offers {
            self.book.remove(&offer.id());
        }
        for listed in self.check(offers).await.into_iter().flatten() {
            let _ = self.book.add(listed);
        }
        info!(before, after = self.book.len(), "order book checked again after a reorganisation");
    }
}
