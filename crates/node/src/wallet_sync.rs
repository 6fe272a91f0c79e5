//! Keeps the wallet in step with the node: scans new blocks (and undoes reorganised ones),
//! picks the wallet's transactions out of the mempool, broadcasts again the wallet's own
//! payments that fell out of the mempool without confirming, and forgets payments to it that
//! left the mempool unconfirmed. The wallet's lock is only taken on blocking threads: a long
//! scan holding it never stalls the async executor.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use peerchain_primitives::{Transaction, TxId};
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
/// How long a payment to the wallet may be missing from the mempool before it is forgotten:
/// it may be on its way (a parent not yet here, a peer relaying it late).
const VANISHED_GRACE: Duration = Duration::from_secs(600);

/// The wallet's keeper.
pub(crate) struct WalletSync {
    wallet: SharedWallet,
    chain: peerchain_chain::Handle,
    net: peerchain_net::Handle,
    last_rebroadcast: Instant,
}

impl WalletSync {
    pub(crate) fn new(wallet: SharedWallet, chain: peerchain_chain::Handle, net: peerchain_net::Handle) -> Self {
        // Correctness: the mempool does not survive a crash; the wallet's own unconfirmed
        // payments go back into it at start (as Bitcoin Core resubmits on load), not 30 s on.
        let last_rebroadcast = Instant::now().checked_sub(REBROADCAST).unwrap_or_else(Instant::now);
        WalletSync { wallet, chain, net, last_rebroadcast }
    }

    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        let mut tips = self.chain.subscribe_tip();
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                changed = tips.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(POLL) => {}
            }
            self.scan_blocks().await;
            let Some(in_mempool) = self.pick_from_mempool().await else { continue };
            if self.last_rebroadcast.elapsed() >= REBROADCAST {
                self.last_rebroadcast = Instant::now();
                self.rebroadcast(&in_mempool).await;
                self.forget_vanished(in_mempool).await;
            }
        }
    }

    /// Runs `work` on the wallet (if there is one) on a blocking thread.
    async fn with_wallet<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut peerchain_wallet::Wallet) -> T + Send + 'static,
    ) -> Option<T> {
        let wallet = self.wallet.clone();
        tokio::task::spawn_blocking(move || wallet.lock().as_mut().map(work)).await.ok().flatten()
    }

    async fn scan_blocks(&self) {
        loop {
            let chain = self.chain.clone();
            match self.with_wallet(move |wallet| wallet.sync(&ChainReader(&chain), SCAN_BATCH)).await {
                Some(Ok(progress)) => {
                    if progress.rewound > 0 {
                        info!(blocks = progress.rewound, "wallet undid blocks of a reorganisation");
                    }
                    if !progress.more {
                        return;
                    }
                    debug!(height = ?progress.height, "wallet scanning");
                }
                Some(Err(e)) => {
                    warn!(error = %e, "wallet scan failed; retrying on the next block");
                    return;
                }
                None => return,
            }
        }
    }

    /// Adds the mempool's transactions that touch the wallet; returns the ids of those found.
    async fn pick_from_mempool(&self) -> Option<HashSet<TxId>> {
        let watch = self.with_wallet(|wallet| wallet.watch_list()).await?;
        let found = self.chain.mempool_matching(Box::new(move |tx| watch.matches(tx))).await.ok()?;
        let txids = found.iter().map(Transaction::txid).collect();
        self.with_wallet(move |wallet| {
            for tx in found {
                if let Err(e) = wallet.add_pending(tx, false) {
                    warn!(error = %e, "wallet could not record a mempool transaction");
                }
            }
        })
        .await?;
        Some(txids)
    }

    async fn rebroadcast(&self, in_mempool: &HashSet<TxId>) {
        let Some(pending) = self.with_wallet(|wallet| wallet.pending()).await else { return };
        let missing =
            pending.into_iter().filter(|(tx, from_me)| *from_me && !in_mempool.contains(&tx.txid())).map(|(tx, _)| tx);
        for tx in missing {
            match crate::relay::submit_transaction(&self.chain, &self.net, tx).await {
                Ok(txid) => info!(%txid, "wallet payment broadcast again"),
                Err(e) => debug!(error = %e, "wallet payment not accepted again"),
            }
        }
    }

    /// Forgets payments to the wallet that left the mempool without confirming (review L9).
    async fn forget_vanished(&self, in_mempool: HashSet<TxId>) {
        match self.with_wallet(move |wallet| wallet.forget_vanished_incoming(&in_mempool, VANISHED_GRACE)).await {
            Some(Ok(forgotten)) if !forgotten.is_empty() => {
                info!(count = forgotten.len(), "payments to the wallet that left the mempool unconfirmed forgotten");
            }
            Some(Err(e)) => warn!(error = %e, "wallet could not forget vanished payments"),
            _ => {}
        }
    }
}
