//! Proof-of-work search and the mining loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use peerchain_primitives::{Block, BlockHeader, KeyHash};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::state::BlockOutcome;
use crate::{Handle, SubmitBlockError};

/// How many nonces a thread tries between looks at the stop flag.
const STOP_CHECK_INTERVAL: u64 = 4096;

/// Searches nonces for `header` on `threads` threads until one meets its target, `stop` is
/// set, or `max_attempts` hashes were tried. Returns the winning nonce.
pub fn search_nonce(header: &BlockHeader, threads: usize, stop: &AtomicBool, max_attempts: u64) -> Option<u64> {
    let target = header.bits.expand()?;
    let midstate = header.midstate();
    let found = AtomicU64::new(u64::MAX);
    let done = AtomicBool::new(false);
    let threads = threads.max(1) as u64;
    let per_thread = (max_attempts / threads).saturating_add(1);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (midstate, found, done) = (&midstate, &found, &done);
            scope.spawn(move || {
                let mut nonce = header.nonce.wrapping_add(thread);
                for attempt in 0..per_thread {
                    if attempt % STOP_CHECK_INTERVAL == 0
                        && (done.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed))
                    {
                        return;
                    }
                    if target.is_met_by(&header.hash_from_midstate(midstate, nonce)) {
                        found.store(nonce, Ordering::Relaxed);
                        done.store(true, Ordering::Relaxed);
                        return;
                    }
                    nonce = nonce.wrapping_add(threads);
                }
            });
        }
    });
    done.load(Ordering::Relaxed).then(|| found.load(Ordering::Relaxed))
}

/// Mines `template` to completion (for tests and on-demand block generation): blocks the
/// calling thread, so call it from a blocking context.
pub fn solve(mut template: Block, threads: usize) -> Block {
    let never = AtomicBool::new(false);
    loop {
        if let Some(nonce) = search_nonce(&template.header, threads, &never, 1 << 24) {
            template.header.nonce = nonce;
            return template;
        }
        // The whole range was tried (only at absurd difficulty): move the time on.
        template.header.nonce = 0;
        template.header.time += 1;
    }
}

/// Mining settings.
#[derive(Debug, Clone)]
pub struct MinerConfig {
    /// Who gets the rewards.
    pub reward_to: KeyHash,
    /// Hashing threads.
    pub threads: usize,
    /// How often a new template is made even when the tip does not change, so that new
    /// transactions and a fresh time get in.
    pub refresh: Duration,
}

/// Mines on the tip until `cancel`: a new template whenever the tip changes or every
/// `refresh`, and every found block submitted to the chain.
pub async fn run_miner(handle: Handle, config: MinerConfig, cancel: CancellationToken) {
    let mut tip_updates = handle.subscribe_tip();
    info!(threads = config.threads, "miner started");
    loop {
        let template = match handle.block_template(config.reward_to, b"peerchain".to_vec()).await {
            Ok(template) => template,
            Err(e) => {
                warn!(error = %e, "no block template; miner stops");
                return;
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut search = {
            let stop = stop.clone();
            let header = template.header;
            let threads = config.threads;
            tokio::task::spawn_blocking(move || search_nonce(&header, threads, &stop, u64::MAX))
        };
        tip_updates.borrow_and_update();
        let found = tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                stop.store(true, Ordering::Relaxed);
                let _ = (&mut search).await;
                info!("miner stopped");
                return;
            }
            _ = tip_updates.changed() => None,
            _ = tokio::time::sleep(config.refresh) => None,
            result = &mut search => result.ok().flatten(),
        };
        stop.store(true, Ordering::Relaxed);
        let Some(nonce) = found else { continue };
        let mut block = template;
        block.header.nonce = nonce;
        let hash = block.hash();
        let transactions = block.transactions.len();
        match handle.submit_mined_block(block).await {
            Ok(BlockOutcome::NewTip { height, .. }) => info!(%hash, height, transactions, "mined a block"),
            Ok(outcome) => info!(%hash, ?outcome, "mined a block that did not extend the tip"),
            Err(SubmitBlockError::Stopped) => return,
            // The store cannot be written: the node is stopping.
            Err(SubmitBlockError::Chain(crate::Error::Halted(_))) => return,
            Err(e) => warn!(%hash, error = %e, "mined block rejected"),
        }
    }
}

#[cfg(test)]
mod tests {
    use peerchain_consensus::Params;
    use peerchain_primitives::Network;

    use super::*;

    #[test]
    fn search_finds_a_valid_nonce_and_honours_stop() {
        let params = Params::for_network(Network::Devnet);
        let header = params.genesis_block().header;
        let stop = AtomicBool::new(false);
        let nonce = search_nonce(&header, 2, &stop, u64::MAX).expect("devnet difficulty is low");
        let mut solved = header;
        solved.nonce = nonce;
        assert!(header.bits.expand().unwrap().is_met_by(&solved.hash()));

        stop.store(true, Ordering::Relaxed);
        let mut hard = header;
        hard.bits = peerchain_primitives::CompactTarget(0x1800ffff);
        assert_eq!(search_nonce(&hard, 2, &stop, u64::MAX), None);
    }
}
