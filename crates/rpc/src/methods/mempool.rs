//! The `mempool.*` methods: what waits, and the fee rate to pay.

use serde_json::{Value, json};

use crate::params::Params;
use crate::{Context, RpcError};

pub(super) async fn info(context: &Context, _: &Params) -> Result<Value, RpcError> {
    let info = context.chain.mempool_info().await.map_err(RpcError::internal)?;
    Ok(json!({ "size": info.size, "bytes": info.bytes }))
}

pub(super) async fn estimate_fee(context: &Context, params: &Params) -> Result<Value, RpcError> {
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
