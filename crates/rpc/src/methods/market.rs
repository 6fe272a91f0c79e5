//! The `market.*` methods: make, list, take and cancel offers, and read the trades on chain.

use peerchain_market::OfferId;
use peerchain_primitives::{Address, AssetId, FeeRate};
use serde_json::{Value, json};

use super::token::{asset_param, units_param};
use super::wallet::passphrase;
use crate::params::Params;
use crate::services::{BookEntry, OfferRequest};
use crate::{Context, RpcError};

/// Most offers or trades one call lists.
const MAX_LIST: u64 = 10_000;
/// Offers expire this many blocks from the tip unless told otherwise.
const DEFAULT_EXPIRY: u64 = 1_000;

fn pair_param(params: &Params) -> Result<Option<(AssetId, AssetId)>, RpcError> {
    match (params.get("give").is_some(), params.get("want").is_some()) {
        (false, false) => Ok(None),
        (true, true) => Ok(Some((asset_param(params, "give")?, asset_param(params, "want")?))),
        _ => Err(RpcError::invalid_params("a pair needs both `give` and `want`")),
    }
}

fn limit_param(params: &Params) -> Result<usize, RpcError> {
    Ok(params.optional_u64("limit")?.unwrap_or(MAX_LIST).min(MAX_LIST) as usize)
}

pub(super) fn offer_id(text: &str) -> Result<OfferId, RpcError> {
    text.parse().map_err(|e| RpcError::invalid_params(format!("`{text}`: {e}")))
}

pub(super) fn fee_rate(params: &Params) -> Result<Option<FeeRate>, RpcError> {
    match params.optional_u64("fee_rate")? {
        Some(0) => Err(RpcError::invalid_params("`fee_rate` must be at least 1 base unit per byte")),
        rate => Ok(rate.map(FeeRate::per_byte)),
    }
}

fn side(asset: AssetId, units: u64) -> Value {
    json!({ "asset": asset.to_string(), "amount": units })
}

pub(super) fn entry_json(entry: &BookEntry, context: &Context) -> Value {
    let listed = &entry.listed;
    json!({
        "offer_id": listed.id.to_string(),
        "give": side(listed.give.asset, listed.give.amount.units()),
        "want": side(listed.offer.want.asset, listed.offer.want.amount.units()),
        "price": listed.price(),
        "expires_at": listed.expiry,
        "maker": listed.offer.maker_key_hash().map(|hash| Address::new(context.network, hash).to_string()),
        "anchor": format!("{}:{}", listed.offer.anchor().txid, listed.offer.anchor().index),
        "mine": entry.mine,
        "taken_by": entry.taken_by,
        "offer_hex": hex::encode(peerchain_primitives::Encode::to_bytes(&listed.offer)),
    })
}

pub(super) async fn offer(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let give = (asset_param(params, "give_asset")?, units_param(params, "give_amount")?);
    let want = (asset_param(params, "want_asset")?, units_param(params, "want_amount")?);
    if give.0 == want.0 {
        return Err(RpcError::invalid_params("an offer must want another asset than it gives"));
    }
    let expires = params.optional_u64("expires")?.unwrap_or(DEFAULT_EXPIRY);
    let expires = u32::try_from(expires)
        .ok()
        .filter(|e| *e > 0)
        .ok_or_else(|| RpcError::invalid_params("`expires` must be a number of blocks"))?;
    let ladder = params.optional_u64("ladder")?.unwrap_or(1);
    let ladder = u32::try_from(ladder)
        .ok()
        .filter(|n| (1..=100).contains(n))
        .ok_or_else(|| RpcError::invalid_params("`ladder` must be 1 to 100 offers"))?;
    let step_percent = match params.get("step_percent") {
        None => 0.0,
        Some(value) => value
            .as_f64()
            .filter(|p| (0.0..=1_000.0).contains(p))
            .ok_or_else(|| RpcError::invalid_params("`step_percent` must be a number from 0 to 1000"))?,
    };
    let request = OfferRequest {
        give,
        want,
        expires,
        ladder,
        step_percent,
        fee_rate: fee_rate(params)?,
        passphrase: passphrase(params)?,
    };
    let made = context.market.offer(request).await?;
    Ok(json!({
        "offer_id": made.ids.first().map(ToString::to_string),
        "offer_ids": made.ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "funding_txid": made.funding,
        "expires_at": made.expires_at,
    }))
}

pub(super) async fn info(context: &Context, _: &Params) -> Result<Value, RpcError> {
    let summary = context.market.summary().await?;
    let pairs: Vec<Value> = summary
        .pairs
        .iter()
        .map(|((give, want), offers)| json!({ "give": give.to_string(), "want": want.to_string(), "offers": offers }))
        .collect();
    Ok(json!({
        "offers": summary.offers,
        "loan_offers": summary.loan_offers,
        "mine": summary.mine,
        "bytes": summary.bytes,
        "max_bytes": summary.max_bytes,
        "pairs": pairs,
    }))
}

pub(super) async fn book(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let entries = context.market.book(pair_param(params)?, limit_param(params)?).await?;
    Ok(Value::Array(entries.iter().map(|e| entry_json(e, context)).collect()))
}

pub(super) async fn take(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let ids: Vec<OfferId> = match params.get("offer_ids") {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= 100 => items
            .iter()
            .map(|item| {
                item.as_str().ok_or_else(|| RpcError::invalid_params("`offer_ids` are strings")).and_then(offer_id)
            })
            .collect::<Result<_, _>>()?,
        Some(Value::String(one)) => vec![offer_id(one)?],
        _ => return Err(RpcError::invalid_params("`offer_ids` must list 1 to 100 offer ids")),
    };
    let txid = context.market.take(ids, fee_rate(params)?, passphrase(params)?).await?;
    Ok(json!({ "txid": txid }))
}

pub(super) async fn cancel(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let id = offer_id(params.required_str("offer_id")?)?;
    let txid = context.market.cancel(id, passphrase(params)?).await?;
    Ok(json!({ "txid": txid }))
}

pub(super) async fn trades(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let trades = context.market.trades(pair_param(params)?, limit_param(params)?).await?;
    Ok(Value::Array(
        trades
            .iter()
            .map(|t| {
                json!({
                    "txid": t.txid,
                    "height": t.height,
                    "time": t.time,
                    "give": side(t.give.0, t.give.1.units()),
                    "got": side(t.got.0, t.got.1.units()),
                    "price": t.price(),
                    "maker": Address::new(context.network, t.maker).to_string(),
                })
            })
            .collect(),
    ))
}
