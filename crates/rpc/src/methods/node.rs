//! The `node.*` methods: who this node is, its peers, dialling one, stopping.

use serde_json::{Value, json};

use crate::params::Params;
use crate::{Context, RpcError};

pub(super) async fn id(context: &Context, _: &Params) -> Result<Value, RpcError> {
    let local = context.net.local().await.ok_or_else(|| RpcError::internal("the network has stopped"))?;
    Ok(json!({
        "peer_id": local.peer.to_string(),
        "listen_addrs": local.listen_addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "rpc_addr": context.rpc_addr.to_string(),
        "network": context.network.name(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

pub(super) async fn peers(context: &Context, _: &Params) -> Result<Value, RpcError> {
    let peers = context.net.peers().await;
    Ok(Value::Array(
        peers
            .iter()
            .map(|p| {
                json!({
                    "peer_id": p.peer.to_string(),
                    "address": p.address.to_string(),
                    "direction": match p.direction {
                        peerchain_net::Direction::Inbound => "inbound",
                        peerchain_net::Direction::Outbound => "outbound",
                    },
                    "latency_ms": p.latency.map(|l| l.as_secs_f64() * 1000.0),
                    "agent": p.agent,
                    "score": p.score,
                    "gossip_score": p.gossip_score,
                })
            })
            .collect(),
    ))
}

pub(super) async fn connect(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let text = params.required_str("address")?;
    let address: peerchain_net::Address =
        text.parse().map_err(|e| RpcError::invalid_params(format!("`{text}` is not a multiaddr: {e}")))?;
    context.net.dial(address).await;
    Ok(json!({ "dialing": text }))
}

pub(super) async fn stop(context: &Context, _: &Params) -> Result<Value, RpcError> {
    context.shutdown.cancel();
    Ok(json!("peerchain node stopping"))
}
