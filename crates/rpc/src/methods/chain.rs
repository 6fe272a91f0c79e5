//! The `chain.*` methods: the chain's state, blocks and transactions, verification, submitting
//! blocks and transactions, mining on demand (regtest and devnet), clearing invalid marks.

use peerchain_chain::{BlockOutcome, SubmitBlockError, SubmitTxError, solve};
use peerchain_primitives::{
    Address, After, AssetId, Block, BlockHash, CompactTarget, Decode, Encode, KeyHash, Lock, Network, Transaction,
    TxId, Witness,
};
use peerchain_wallet::mining_address;
use serde_json::{Value, json};

use crate::params::Params;
use crate::{Context, RpcError};

pub(super) async fn info(context: &Context, _: &Params) -> Result<Value, RpcError> {
    let tip = context.chain.tip();
    let mempool = context.chain.mempool_info().await.map_err(RpcError::internal)?;
    let sync = context.chain.sync_state().await.map_err(RpcError::internal)?;
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
        // Set once a write to the chain store failed: the node is stopping.
        "error": context.chain.failure(),
        // The share of the known chain's blocks connected (1 once caught up).
        "progress": if sync.best_header_height > tip.height {
            f64::from(tip.height) / f64::from(sync.best_header_height)
        } else {
            1.0
        },
    }))
}

pub(super) async fn block(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let which = match params.get("block") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(RpcError::invalid_params("`block` must be a height or a block hash")),
        None => return Err(RpcError::invalid_params("missing parameter `block`")),
    };
    // 64 hex digits are a hash, even when they are all decimal digits.
    let height = if which.len() == 64 { None } else { which.parse::<u32>().ok() };
    let found = if let Some(height) = height {
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

/// The most blocks `chain.blocks` lists in one call.
const MAX_BLOCKS_LISTED: u64 = 500;

/// The latest main-chain blocks (or those at and below `before`), newest first: what the
/// explorer lists and the dashboard's block-interval and difficulty charts draw.
pub(super) async fn blocks(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let tip = context.chain.tip().height;
    let limit = params.optional_u64("limit")?.unwrap_or(20).clamp(1, MAX_BLOCKS_LISTED) as u32;
    let top = match params.optional_u64("before")? {
        Some(height) => u32::try_from(height).unwrap_or(u32::MAX).min(tip),
        None => tip,
    };
    let chain = context.chain.clone();
    let pow_limit = context.chain.params().pow_limit;
    let listed = tokio::task::spawn_blocking(move || -> Result<Vec<Value>, peerchain_chain::Error> {
        let bottom = top.saturating_sub(limit - 1);
        // One block below the last listed, for its interval.
        let mut below = match bottom.checked_sub(1) {
            Some(h) => chain.block_at(h)?.map(|b| b.header.time),
            None => None,
        };
        let mut listed = Vec::with_capacity(limit as usize);
        for height in bottom..=top {
            let Some(block) = chain.block_at(height)? else { break };
            let header = &block.header;
            listed.push(json!({
                "height": height,
                "hash": block.hash(),
                "time": header.time,
                "interval": below.map(|t| header.time as i64 - t as i64),
                "tx_count": block.transactions.len(),
                "size": block.encoded_len(),
                "bits": format!("{:08x}", header.bits.0),
                "difficulty": difficulty(header.bits, pow_limit),
            }));
            below = Some(header.time);
        }
        listed.reverse();
        Ok(listed)
    })
    .await
    .map_err(RpcError::internal)?
    .map_err(RpcError::internal)?;
    Ok(Value::Array(listed))
}

/// How many times harder than the network's easiest target `bits` is (1 at the limit).
fn difficulty(bits: CompactTarget, pow_limit: CompactTarget) -> f64 {
    let as_f64 = |work: peerchain_primitives::Work| {
        work.0.0.iter().rev().fold(0.0f64, |sum, limb| sum * 18_446_744_073_709_551_616.0 + *limb as f64)
    };
    match (bits.expand(), pow_limit.expand()) {
        (Some(target), Some(limit)) => as_f64(target.work()) / as_f64(limit.work()),
        _ => 0.0,
    }
}

/// The most transactions `chain.address` lists.
const MAX_ADDRESS_TXS: u64 = 1_000;

/// What the address index holds for an address: coins received, sent and held on the main
/// chain, and its latest transactions.
pub(super) async fn address(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let text = params.required_str("address")?;
    let address = Address::parse(text, context.network)
        .map_err(|e| RpcError::invalid_params(format!("`{text}` is not an address of this network: {e}")))?;
    let limit = params.optional_u64("limit")?.unwrap_or(25).min(MAX_ADDRESS_TXS) as usize;
    let index = context.addresses.clone();
    let (summary, indexed) = tokio::task::spawn_blocking(move || {
        Ok::<_, peerchain_store::Error>((index.summary(&address.key_hash, limit)?, index.scan_tip()?))
    })
    .await
    .map_err(RpcError::internal)?
    .map_err(RpcError::internal)?;
    let tip = context.chain.tip().height;
    Ok(json!({
        "address": address.to_string(),
        "balance": summary.balance(),
        "received": summary.received,
        "sent": summary.sent,
        "tx_count": summary.tx_count,
        // The index follows the chain a moment behind; below the tip it is still reading.
        "indexed_height": indexed.map(|(height, _)| height),
        "tip_height": tip,
        "txs": summary.latest.iter().map(|t| json!({
            "txid": t.txid,
            "height": t.height,
            "confirmations": tip.saturating_sub(t.height) + 1,
            "received": t.received,
            "sent": t.sent,
        })).collect::<Vec<_>>(),
    }))
}

pub(super) async fn reconsider_block(context: &Context, params: &Params) -> Result<Value, RpcError> {
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
        Lock::Burn { data } => json!({ "type": "burn", "data": hex::encode(data) }),
        Lock::Escrow { threshold, keys, after, fallback } => json!({
            "type": "escrow",
            "threshold": threshold,
            "keys": keys.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "after": after_json(*after),
            "fallback_address": address_of(fallback, network),
        }),
        Lock::Loan { borrower, lender, repay_asset, repay_amount, term } => json!({
            "type": "loan",
            "borrower_address": address_of(borrower, network),
            "lender_address": address_of(lender, network),
            "repay_asset": asset_json(repay_asset),
            "repay_amount": repay_amount.units(),
            "term": term,
        }),
    }
}

fn after_json(after: After) -> Value {
    match after {
        After::Height(height) => json!({ "height": height }),
        After::Age(blocks) => json!({ "age": blocks }),
    }
}

fn asset_json(asset: &AssetId) -> String {
    asset.to_string()
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

pub(super) async fn tx(context: &Context, params: &Params) -> Result<Value, RpcError> {
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

pub(super) async fn verify(context: &Context, _: &Params) -> Result<Value, RpcError> {
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

pub(super) async fn submit_block(context: &Context, params: &Params) -> Result<Value, RpcError> {
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

pub(super) async fn send_raw_transaction(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let tx: Transaction = decode_hex(params.required_str("hex")?, "transaction")?;
    let txid = context.relay.submit(tx).await.map_err(submit_tx_error)?;
    Ok(json!({ "txid": txid }))
}

/// The answer to a transaction the mempool refused.
pub(crate) fn submit_tx_error(e: SubmitTxError) -> RpcError {
    match e {
        SubmitTxError::Rejected(reason) => RpcError::new(RpcError::REJECTED, format!("transaction rejected: {reason}")),
        SubmitTxError::Stopped => RpcError::internal("the node is shutting down"),
    }
}

/// The most blocks one `chain.generate` call makes.
const MAX_GENERATE: u64 = 10_000;

pub(super) async fn generate(context: &Context, params: &Params) -> Result<Value, RpcError> {
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
                .map_err(super::wallet::wallet_error)?
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
