//! The explorer's address index kept in step with the main chain, off the path that connects
//! blocks: after each new tip it reads the blocks it has not read, first undoing those a
//! reorganisation took off the main chain.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use peerchain_primitives::{Block, Coin, OutPoint, TxOut};
use peerchain_store::AddressIndex;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Blocks read per turn on a blocking thread.
const BLOCKS_PER_TURN: u32 = 500;
/// Blocks behind the best header past which the chain counts as catching up.
const CATCHING_UP: u32 = 6;
/// Reads are flushed to disk at most this often: the index is derived from the chain, so a
/// crash only makes it read again the blocks of the last seconds, and a syncing node does not
/// wait on the disk once per block.
const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// The output each input of `block` spends: from its undo data, or from the block itself for
/// outputs it created and spent.
pub(crate) fn spent_outputs(block: &Block, undo: Vec<(OutPoint, Coin)>) -> HashMap<OutPoint, TxOut> {
    let mut outputs: HashMap<OutPoint, TxOut> = undo.into_iter().map(|(o, c)| (o, c.output)).collect();
    for tx in &block.transactions {
        let txid = tx.txid();
        for (index, output) in tx.outputs.iter().enumerate() {
            outputs.insert(OutPoint::new(txid, index as u32), output.clone());
        }
    }
    outputs
}

/// Reads up to [`BLOCKS_PER_TURN`] blocks in one commit, made durable if `flush`;
/// returns how many it read and whether more remain.
fn read_chain(index: &AddressIndex, chain: &peerchain_chain::Handle, flush: bool) -> Result<(u32, bool), String> {
    let start = loop {
        let Some((height, hash)) = index.scan_tip().map_err(|e| e.to_string())? else { break 0 };
        if chain.main_hash(height).map_err(|e| e.to_string())? == Some(hash) {
            break height + 1;
        }
        // Undo one block at a time down to the fork: each step is one small commit.
        index.rewind_to(height.checked_sub(1)).map_err(|e| e.to_string())?;
    };
    let tip = chain.tip().height;
    let end = tip.min(start.saturating_add(BLOCKS_PER_TURN - 1));
    // One commit for the whole turn.
    let mut read = 0;
    index
        .write_batch(flush, |batch| -> Result<(), peerchain_chain::Error> {
            for height in start..=end {
                let Some(block) = chain.block_at(height)? else { return Ok(()) };
                let undo = chain.spent_by_block(&block.hash())?.unwrap_or_default();
                let spent = spent_outputs(&block, undo);
                batch.add(&block, height, &|outpoint| spent.get(outpoint).cloned())?;
                read += 1;
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    Ok((read, end < tip))
}

/// The index's keeper.
pub(crate) struct AddressIndexer {
    index: Arc<AddressIndex>,
    chain: peerchain_chain::Handle,
    flushed: Instant,
    /// Blocks were read since the last durable commit.
    dirty: bool,
}

impl AddressIndexer {
    pub(crate) fn new(index: Arc<AddressIndex>, chain: peerchain_chain::Handle) -> Self {
        AddressIndexer { index, chain, flushed: Instant::now(), dirty: false }
    }

    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        let mut tips = self.chain.subscribe_tip();
        loop {
            self.catch_up(&cancel).await;
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                changed = tips.changed() => if changed.is_err() { break },
                // A turn that failed (a busy disk) is tried again without waiting for a block.
                _ = tokio::time::sleep(FLUSH_EVERY) => {}
            }
        }
        let index = self.index.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || index.flush()).await.unwrap_or(Ok(())) {
            warn!(error = %e, "cannot save the address index");
        }
    }

    async fn catch_up(&mut self, cancel: &CancellationToken) {
        // Performance: while the chain catches up with the headers it knows, the index waits
        // and then reads the new blocks in a few large turns: following the sync block by
        // block made it a fifth to two fifths slower (BENCHMARKS.md).
        if let Ok(sync) = self.chain.sync_state().await
            && sync.best_header_height > self.chain.tip().height.saturating_add(CATCHING_UP)
        {
            return;
        }
        while !cancel.is_cancelled() {
            let flush = self.flushed.elapsed() >= FLUSH_EVERY;
            let (index, chain) = (self.index.clone(), self.chain.clone());
            let started = Instant::now();
            let turn = tokio::task::spawn_blocking(move || read_chain(&index, &chain, flush)).await;
            // Performance: a long catch-up (a node that starts with blocks it never indexed)
            // takes at most half the time: the rest is left to serving peers and syncing.
            if let Ok(Ok((_, true))) = &turn {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(started.elapsed()) => {}
                }
            }
            match turn {
                Ok(Ok((read, more))) => {
                    if read > 0 {
                        self.dirty = !flush;
                        if flush {
                            self.flushed = Instant::now();
                        }
                    } else if self.dirty && flush {
                        // Nothing new, but the last reads are not on disk yet.
                        let index = self.index.clone();
                        if let Ok(Ok(())) = tokio::task::spawn_blocking(move || index.flush()).await {
                            self.dirty = false;
                            self.flushed = Instant::now();
                        }
                    }
                    if !more {
                        return;
                    }
                    debug!("address index catching up");
                }
                Ok(Err(e)) => {
                    warn!(error = %e, "address index cannot read the chain; trying again shortly");
                    return;
                }
                Err(e) => {
                    warn!(error = %e, "address index task failed");
                    return;
                }
            }
        }
    }
}
