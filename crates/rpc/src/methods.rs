//! Every RPC method: its name, how it reads its parameters, what it returns.

use peerchain_chain::{BlockOutcome, SubmitBlockError, SubmitTxError, solve};
use peerchain_primitives::{
    Address, AssetId, Block, BlockHash, Decode, Encode, KeyHash, Lock, Network, Transaction, TxId, Witness,
};
use peerchain_wallet::mining_address;
use serde_json::{Value, json};

use crate::{Context, RpcError};

/// Every method the server answers, with its parameters, in the order of the docs.
pub const METHODS: &[(&str, &[&str])] = &[
    ("chain.info", &[]),
    ("chain.block", &["block"]),
    ("chain.tx", &["txid"]),
    ("chain.verify", &[]),
    ("chain.submitblock", &["hex"]),
    ("chain.sendrawtransaction", &["hex"]),
    ("chain.generate", &["blocks", "address"]),
    ("chain.reconsiderblock", &["hash"]),
    ("mempool.info", &[]),
    ("mempool.estimatefee", &["blocks"]),
    ("node.id", &[]),
    ("node.peers", &[]),
    ("node.connect", &["address"]),
    ("node.stop", &[]),
    ("wallet.create", &["passphrase", "mnemonic"]),
    ("wallet.restore", &["mnemonic", "passphrase"]),
    ("wallet.address", &["new", "passphrase"]),
    ("wallet.balance", &[]),
    ("wallet.send", &["address", "amount", "fee_rate", "passphrase"]),
    ("wallet.history", &["limit"]),
    ("wallet.rescan", &["from_height"]),
    ("file.add", &["path", "keywords"]),
    ("file.get", &["id", "path"]),
    ("file.status", &["id", "wait_ms"]),
    ("file.search", &["words", "via"]),
    ("file.list", &[]),
    ("file.remove", &["id"]),
];

/// Parameters given by name (an object) or by position (an array), read by name.
pub(crate) struct Params {
    value: Value,
    names: &'static [&'static str],
}

impl Params {
    pub(crate) fn new(value: Value, names: &'static [&'static str]) -> Self {
        Self { value, names }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        let found = match &self.value {
            Value::Object(map) => map.get(name),
            Value::Array(items) => self.names.iter().position(|n| *n == name).and_then(|i| items.get(i)),
            _ => None,
        };
        found.filter(|v| !v.is_null())
    }

    pub(crate) fn required_str(&self, name: &str) -> Result<&str, RpcError> {
        match self.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(RpcError::invalid_params(format!("`{name}` must be a string"))),
            None => Err(RpcError::invalid_params(format!("missing parameter `{name}`"))),
        }
    }

    pub(crate) fn optional_str(&self, name: &str) -> Result<Option<&str>, RpcError> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.required_str(name).map(Some),
        }
    }

    pub(crate) fn optional_bool(&self, name: &str) -> Result<Option<bool>, RpcError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(RpcError::invalid_params(format!("`{name}` must be true or false"))),
        }
    }

    pub(crate) fn optional_u64(&self, name: &str) -> Result<Option<u64>, RpcError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(_) => Err(RpcError::invalid_params(format!("`{name}` must be a whole number"))),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), RpcError> {
        match &self.value {
            Value::Null => Ok(()),
            Value::Object(map) => match map.keys().find(|k| !self.names.contains(&k.as_str())) {
                Some(unknown) => Err(RpcError::invalid_params(format!("unknown parameter `{unknown}`"))),
                None => Ok(()),
            },
            Value::Array(items) if items.len() <= self.names.len() => Ok(()),
            Value::Array(items) => Err(RpcError::invalid_params(format!(
                "expected at most {} parameters, got {}",
                self.names.len(),
                items.len()
            ))),
            _ => Err(RpcError::invalid_params("params must be an object or an array")),
        }
    }
}

pub(crate) async fn call(context: &Context, method: &str, params: Value) -> Result<Value, RpcError> {
    let Some((_, names)) = METHODS.iter().find(|(name, _)| *name == method) else {
        return Err(RpcError::new(RpcError::METHOD_NOT_FOUND, format!("unknown method `{method}`")));
    };
    let params = Params::new(params, names);
    params.validate()?;
    match method {
        "chain.info" => chain_info(context).await,
        "chain.block" => chain_block(context, &params),
        "chain.tx" => chain_tx(context, &params).await,
        "chain.verify" => chain_verify(context).await,
        "chain.submitblock" => submit_block(context, &params).await,
        "chain.sendrawtransaction" => send_raw_transaction(context, &params).await,
        "chain.generate" => generate(context, &params).await,
        "chain.reconsiderblock" => reconsider_block(context, &params).await,
        "mempool.info" => {
            let info = context.chain.mempool_info().await.map_err(RpcError::internal)?;
            Ok(json!({ "size": info.size, "bytes": info.bytes }))
        }
        "mempool.estimatefee" => {
            let blocks = match params.optional_u64("blocks")? {
                None => 2,
                Some(n @ 1..=1_000) => n as u32,
                Some(_) => return Err(RpcError::invalid_params("`blocks` must be from 1 to 1000")),
            };
            let estimate = context.chain.estimate_fee(blocks).await.map_err(RpcError::internal)?;
            Ok(json!({
                "fee_rate": estimate.units_per_byte,
                "mempool_fee_rate": estimate.mempool_units_per_byte,
                "blocks_fee_rate": estimate.blocks_units_per_byte,
                "blocks": blocks,
            }))
        }
        file if file.starts_with("file.") => crate::files::call(context, file, &params).await,
        wallet if wallet.starts_with("wallet.") => crate::wallet::call(context, wallet, &params).await,
        "node.id" => {
            let local = context.net.local().await.ok_or_else(|| RpcError::internal("the network has stopped"))?;
            Ok(json!({
                "peer_id": local.peer.to_string(),
                "listen_addrs": local.listen_addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "rpc_addr": context.rpc_addr.to_string(),
                "network": context.network.name(),
                "version": env!("CARGO_PKG_VERSION"),
            }))
        }
        "node.peers" => {
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
        "node.connect" => {
            let text = params.required_str("address")?;
            let address: peerchain_net::Address =
                text.parse().map_err(|e| RpcError::invalid_params(format!("`{text}` is not a multiaddr: {e}")))?;
            context.net.dial(address).await;
            Ok(json!({ "dialing": text }))
        }
        "node.stop" => {
            context.shutdown.cancel();
            Ok(json!("peerchain node stopping"))
        }
        _ => unreachable!("every name in METHODS has an arm"),
    }
}

async fn chain_info(context: &Context) -> Result<Value, RpcError> {
    let tip = context.chain.tip();
    let mempool = context.chain.mempool_info().await.map_err(RpcError::internal)?;
    let sync = context.chain.sync_state(Vec::new(), 0).await.map_err(RpcError::internal)?;
    Ok(json!({
        "network": context.network.name(),
        "height": tip.height,
        "best_hash": tip.hash,
        "total_work": tip.total_work.to_string(),
        "time": tip.time,
        "mempool_size": mempool.size,
        "mempool_bytes": mempool.bytes,
        "peers": context.net.peers().await.len(),
        "headers": sync.best_header_height,
        "syncing": sync.best_header_height > tip.height,
    }))
}

fn chain_block(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let which = match params.get("block") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(RpcError::invalid_params("`block` must be a height or a block hash")),
        None => return Err(RpcError::invalid_params("missing parameter `block`")),
    };
    let found = if let Ok(height) = which.parse::<u32>() {
        context.chain.block_at(height).map_err(RpcError::internal)?.map(|b| (b, height, true))
    } else {
        let hash: BlockHash = which.parse().map_err(|_| {
            RpcError::invalid_params(format!("`{which}` is neither a height nor a 64-hex-digit block hash"))
        })?;
        context.chain.block(&hash).map_err(RpcError::internal)?
    };
    let (block, height, in_main_chain) =
        found.ok_or_else(|| RpcError::new(RpcError::NOT_FOUND, format!("block {which} not found")))?;
    let tip = context.chain.tip().height;
    Ok(block_json(&block, height, in_main_chain, tip, context.network))
}

async fn reconsider_block(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let text = params.required_str("hash")?;
    let hash: BlockHash =
        text.parse().map_err(|_| RpcError::invalid_params(format!("`{text}` is not a 64-hex-digit block hash")))?;
    match context.chain.reconsider(hash).await {
        Ok(tip) => Ok(json!({ "hash": hash, "height": tip.height, "best_hash": tip.hash })),
        Err(SubmitBlockError::UnknownBlock(_)) => {
            Err(RpcError::new(RpcError::NOT_FOUND, format!("block {hash} not found")))
        }
        Err(e) => Err(RpcError::internal(e)),
    }
}

fn block_json(block: &Block, height: u32, in_main_chain: bool, tip: u32, network: Network) -> Value {
    let header = &block.header;
    json!({
        "hash": block.hash(),
        "height": height,
        "in_main_chain": in_main_chain,
        "confirmations": if in_main_chain { tip.saturating_sub(height) + 1 } else { 0 },
        "version": header.version,
        "prev_hash": header.prev_hash,
        "merkle_root": header.merkle_root.to_string(),
        "time": header.time,
        "bits": format!("{:08x}", header.bits.0),
        "nonce": header.nonce,
        "size": block.encoded_len(),
        "tx_count": block.transactions.len(),
        "tx": block.transactions.iter().map(|tx| tx_json(tx, network)).collect::<Vec<_>>(),
    })
}

fn address_of(hash: &KeyHash, network: Network) -> String {
    Address::new(network, *hash).to_string()
}

fn lock_json(lock: &Lock, network: Network) -> Value {
    match lock {
        Lock::Key(hash) => json!({ "type": "key", "address": address_of(hash, network) }),
        Lock::Multisig { threshold, keys } => json!({
            "type": "multisig",
            "threshold": threshold,
            "keys": keys.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
        Lock::HashTimeLock { hash, claim, refund, refund_height } => json!({
            "type": "hash_time_lock",
            "hash": hash.to_string(),
            "claim_address": address_of(claim, network),
            "refund_address": address_of(refund, network),
            "refund_height": refund_height,
        }),
    }
}

fn asset_json(asset: &AssetId) -> String {
    match asset {
        AssetId::Coin => "coin".into(),
        AssetId::Token(id) => id.to_string(),
    }
}

fn tx_json(tx: &Transaction, network: Network) -> Value {
    json!({
        "txid": tx.txid(),
        "wtxid": tx.wtxid().to_string(),
        "size": tx.encoded_len(),
        "version": tx.version,
        "lock_time": tx.lock_time,
        "coinbase": tx.is_coinbase(),
        "inputs": tx.inputs.iter().map(|input| match &input.witness {
            Witness::Coinbase { height, .. } => json!({ "coinbase_height": height }),
            _ => json!({ "txid": input.prev_out.txid, "index": input.prev_out.index }),
        }).collect::<Vec<_>>(),
        "outputs": tx.outputs.iter().map(|o| json!({
            "asset": asset_json(&o.asset),
            "amount": o.amount.units(),
            "lock": lock_json(&o.lock, network),
        })).collect::<Vec<_>>(),
    })
}

async fn chain_tx(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let text = params.required_str("txid")?;
    let txid: TxId =
        text.parse().map_err(|_| RpcError::invalid_params(format!("`{text}` is not a 64-hex-digit transaction id")))?;
    let lookup = context.chain.transaction(&txid).await.map_err(RpcError::internal)?.ok_or_else(|| {
        RpcError::new(RpcError::NOT_FOUND, format!("transaction {txid} not found in the chain or the mempool"))
    })?;
    let mut value = tx_json(&lookup.tx, context.network);
    let object = value.as_object_mut().expect("tx_json makes an object");
    object.insert("confirmations".into(), json!(lookup.confirmations));
    object.insert("block_hash".into(), json!(lookup.block_hash));
    object.insert("block_height".into(), json!(lookup.height));
    object.insert("hex".into(), json!(hex::encode(lookup.tx.to_bytes())));
    Ok(value)
}

async fn chain_verify(context: &Context) -> Result<Value, RpcError> {
    let report = context.chain.verify().await.map_err(RpcError::internal)?;
    Ok(json!({
        "ok": report.is_ok(),
        "height": report.height,
        "blocks": report.blocks,
        "transactions": report.transactions,
        "utxos": report.utxos,
        "coin_supply": report.coin_supply.units(),
        "utxo_digest": hex::encode(report.utxo_digest),
        "problems": report.problems,
    }))
}

pub(crate) fn decode_hex<T: Decode>(text: &str, what: &str) -> Result<T, RpcError> {
    let bytes = hex::decode(text).map_err(|e| RpcError::invalid_params(format!("{what} is not hex: {e}")))?;
    T::from_bytes(&bytes).map_err(|e| RpcError::new(RpcError::REJECTED, format!("{what} does not decode: {e}")))
}

async fn submit_block(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let block: Block = decode_hex(params.required_str("hex")?, "block")?;
    let hash = block.hash();
    let outcome = context.chain.submit_block(block).await.map_err(submit_block_error)?;
    Ok(outcome_json(hash, &outcome))
}

fn outcome_json(hash: BlockHash, outcome: &BlockOutcome) -> Value {
    match outcome {
        BlockOutcome::NewTip { height, disconnected, .. } => {
            json!({ "hash": hash, "status": "new_tip", "height": height, "disconnected": disconnected })
        }
        BlockOutcome::SideBranch => json!({ "hash": hash, "status": "side_branch" }),
        BlockOutcome::AlreadyKnown => json!({ "hash": hash, "status": "already_known" }),
    }
}

fn submit_block_error(e: SubmitBlockError) -> RpcError {
    match e {
        SubmitBlockError::Chain(e) => RpcError::internal(e),
        SubmitBlockError::Stopped => RpcError::internal("the node is shutting down"),
        rejected => RpcError::new(RpcError::REJECTED, format!("block rejected: {rejected}")),
    }
}

async fn send_raw_transaction(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let tx: Transaction = decode_hex(params.required_str("hex")?, "transaction")?;
    let bytes = tx.to_bytes();
    match context.chain.submit_transaction(tx).await {
        Ok(txid) => {
            context.net.publish(peerchain_net::Topic::Transactions, bytes).await;
            Ok(json!({ "txid": txid }))
        }
        Err(SubmitTxError::Rejected(reason)) => {
            Err(RpcError::new(RpcError::REJECTED, format!("transaction rejected: {reason}")))
        }
        Err(SubmitTxError::Stopped) => Err(RpcError::internal("the node is shutting down")),
    }
}

/// The most blocks one `chain.generate` call makes.
const MAX_GENERATE: u64 = 10_000;

async fn generate(context: &Context, params: &Params) -> Result<Value, RpcError> {
    if !matches!(context.network, Network::Regtest | Network::Devnet) {
        return Err(RpcError::new(RpcError::NOT_ALLOWED, "chain.generate is only for regtest and devnet"));
    }
    let count = match params.get("blocks") {
        Some(Value::Number(n)) => n.as_u64().filter(|n| (1..=MAX_GENERATE).contains(n)),
        None => Some(1),
        Some(_) => None,
    }
    .ok_or_else(|| RpcError::invalid_params(format!("`blocks` must be a whole number from 1 to {MAX_GENERATE}")))?;
    let reward_to = match params.optional_str("address")? {
        Some(text) => {
            Address::parse(text, context.network).map_err(|e| RpcError::invalid_params(e.to_string()))?.key_hash
        }
        None => {
            let shared = context.wallet.clone();
            let data_dir = context.data_dir.clone();
            let (network, height) = (context.network, context.chain.tip().height);
            tokio::task::spawn_blocking(move || mining_address(&shared, &data_dir, network, height))
                .await
                .map_err(RpcError::internal)?
                .map_err(crate::wallet::wallet_error)?
                .key_hash
        }
    };
    let mut hashes = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let template =
            context.chain.block_template(reward_to, b"generate".to_vec()).await.map_err(RpcError::internal)?;
        let block = tokio::task::spawn_blocking(move || solve(template, 1)).await.map_err(RpcError::internal)?;
        let hash = block.hash();
        context.chain.submit_mined_block(block).await.map_err(submit_block_error)?;
        hashes.push(hash);
    }
    Ok(json!({ "hashes": hashes }))
}

#[cfg(test)]
mod tests {
    use super::METHODS;

    /// docs/rpc.md documents exactly the methods the server answers.
    #[test]
    fn the_method_table_in_the_docs_matches_the_server() {
        let doc = include_str!("../../../docs/rpc.md");
        let documented: Vec<&str> =
            doc.lines().filter_map(|line| line.strip_prefix("| `")).filter_map(|rest| rest.split('`').next()).collect();
        let served: Vec<&str> = METHODS.iter().map(|(name, _)| *name).collect();
        assert_eq!(documented, served);
    }
}
