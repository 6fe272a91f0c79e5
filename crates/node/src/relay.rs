//! Sending a transaction to the network, the one way every part of the node does it: into
//! this node's mempool (which validates it), then to peers by gossip.

use peerchain_chain::SubmitTxError;
use peerchain_net::Topic;
use peerchain_primitives::{Encode, Transaction, TxId};
use peerchain_rpc::files::BoxFuture;

/// Submits `tx` to the mempool and, once accepted, publishes it to peers.
pub(crate) async fn submit_transaction(
    chain: &peerchain_chain::Handle,
    net: &peerchain_net::Handle,
    tx: Transaction,
) -> Result<TxId, SubmitTxError> {
    let bytes = tx.to_bytes();
    let txid = chain.submit_transaction(tx).await?;
    net.publish(Topic::Transactions, bytes).await;
    Ok(txid)
}

/// [`submit_transaction`] for RPC methods.
pub(crate) struct Relay {
    chain: peerchain_chain::Handle,
    net: peerchain_net::Handle,
}

impl Relay {
    pub(crate) fn new(chain: peerchain_chain::Handle, net: peerchain_net::Handle) -> Relay {
        Relay { chain, net }
    }
}

impl peerchain_rpc::Relay for Relay {
    fn submit(&self, tx: Transaction) -> BoxFuture<'_, Result<TxId, SubmitTxError>> {
        Box::pin(submit_transaction(&self.chain, &self.net, tx))
    }
}
