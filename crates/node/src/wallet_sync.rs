//! Keeps the wallet in step with the node: scans new blocks (and undoes reorganised ones),
//! picks the wallet's transactions out of the mempool, and broadcasts again the wallet's own
//! payments that fell out of the mempool without confirming.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use peerchain_primitives::{Encode, TxId};
use peerchain_rpc::ChainReader;
use peerchain_wallet::SharedWallet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// How often the mempool is looked at when no block arrives.
const POLL: Duration = Duration::from_secs(1);
/// How often unconfirmed own payments missing from the mempool are submitted again.
const REBROADCAST: Duration = Duration::from_secs(30);
/// Blocks scanned while the wallet is locked; the lock is let go between batches so that RPC
/// calls are served during a long rescan.
const SCAN_BATCH: u32 = 500;

pub(crate) async fn run(
    wallet: SharedWallet,
    chain: peerchain_chain::Handle,
    net: peerchain_net::Handle,
    cancel: CancellationToken,
) {
    let mut tips = chain.subscribe_tip();
    let mut last_rebroadcast = Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = tips.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(POLL) => {}
        }
        scan_blocks(&wallet, &chain).await;
        let in_mempool = match pick_from_mempool(&wallet, &chain).await {
            Some(txids) => txids,
            None => continue,
        };
        if last_rebroadcast.elapsed() >= REBROADCAST {
            last_rebroadcast = Instant::now();
            rebroadcast(&wallet, &chain, &net, &in_mempool).await;
            forget_vanished(&wallet, &in_mempool);
        }
    }
}

async fn scan_blocks(wallet: &SharedWallet, chain: &peerchain_chain::Handle) {
    loop {
        let (shared, handle) = (wallet.clone(), chain.clone());
        let step = tokio::task::spawn_blocking(move || {
            let mut slot = shared.lock();
            let Some(wallet) = slot.as_mut() else { return Ok(None) };
            wallet.sync(&ChainReader(&handle), SCAN_BATCH).map(Some)
        })
        .await;
        match step {
            Ok(Ok(Some(progress))) => {
                if progress.rewound > 0 {
                    info!(blocks = progress.rewound, "wallet undid blocks of a reorganisation");
                }
                if !progress.more {
                    return;
                }
                debug!(height = ?progress.height, "wallet scanning");
            }
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                warn!(error = %e, "wallet scan failed; retrying on the next block");
                return;
            }
            Err(e) => {
                warn!(error = %e, "wallet scan task failed");
                return;
            }
        }
    }
}

/// Adds the mempool's transactions that touch the wallet; returns the ids of those it found.
async fn pick_from_mempool(wallet: &SharedWallet, chain: &peerchain_chain::Handle) -> Option<HashSet<TxId>> {
    let watch = wallet.lock().as_ref()?.watch_list();
    let found = chain.mempool_matching(Box::new(move |tx| watch.matches(tx))).await.ok()?;
    let txids = found.iter().map(|tx| tx.txid()).collect();
    let mut slot = wallet.lock();
    let wallet = slot.as_mut()?;
    for tx in found {
        if let Err(e) = wallet.add_pending(tx, false) {
            warn!(error = %e, "wallet could not record a mempool transaction");
        }
    }
    Some(txids)
}

/// How long a payment to the wallet may be missing from the mempool before it is forgotten:
/// it may be on its way (a parent not yet here, a peer relaying it late).
const VANISHED_GRACE: Duration = Duration::from_secs(600);

/// Forgets payments to the wallet that left the mempool without confirming (review L9).
fn forget_vanished(wallet: &SharedWallet, in_mempool: &HashSet<TxId>) {
    let mut slot = wallet.lock();
    let Some(wallet) = slot.as_mut() else { return };
    match wallet.forget_vanished_incoming(in_mempool, VANISHED_GRACE) {
        Ok(forgotten) if !forgotten.is_empty() => {
            info!(count = forgotten.len(), "payments to the wallet that left the mempool unconfirmed forgotten");
        }
        Ok(_) => {}
        Err(e) => warn!(error = %e, "wallet could not forget vanished payments"),
    }
}

async fn rebroadcast(
    wallet: &SharedWallet,
    chain: &peerchain_chain::Handle,
    net: &peerchain_net::Handle,
    in_mempool: &HashSet<TxId>,
) {
    let missing: Vec<_> = match wallet.lock().as_ref() {
        Some(wallet) => wallet
            .pending()
            .into_iter()
            .filter(|(tx, from_me)| *from_me && !in_mempool.contains(&tx.txid()))
            .map(|(tx, _)| tx)
            .collect(),
        None => return,
    };
    for tx in missing {
        let bytes = tx.to_bytes();
        match chain.submit_transaction(tx).await {
            Ok(txid) => {
                info!(%txid, "wallet payment broadcast again");
                net.publish(peerchain_net::Topic::Transactions, bytes).await;
            }
            Err(e) => debug!(error = %e, "wallet payment not accepted again"),
        }
    }
}
