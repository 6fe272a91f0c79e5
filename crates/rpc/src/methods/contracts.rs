//! The `escrow.*` and `loan.*` methods: contracts between two parties (and an arbiter),
//! settled on chain without a middleman holding anything.

use peerchain_market::LoanRecord;
use peerchain_primitives::{Address, Amount, AssetId, KeyHash, OutPoint, PublicKey};
use serde_json::{Value, json};

use super::market::{entry_json, fee_rate, offer_id};
use super::token::{asset_param, units_param};
use super::wallet::passphrase;
use crate::params::Params;
use crate::services::{EscrowEntry, EscrowRequest, LoanEntry, LoanOfferRequest, Party};
use crate::{Context, RpcError};

/// Offers expire this many blocks from the tip unless told otherwise.
const DEFAULT_EXPIRY: u64 = 1_000;
/// The longest timeout or term, in blocks: about a year of one-minute blocks.
const MAX_BLOCKS: u64 = 525_600;

fn key_param(params: &Params, name: &str) -> Result<PublicKey, RpcError> {
    let text = params.required_str(name)?;
    let bytes: [u8; 32] = hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| RpcError::invalid_params(format!("`{name}` must be a public key of 64 hex digits")))?;
    let key = PublicKey(bytes);
    if key.verifying_key().is_none() {
        return Err(RpcError::invalid_params(format!("`{name}` is not a valid public key")));
    }
    Ok(key)
}

fn blocks_param(params: &Params, name: &str, default: Option<u64>) -> Result<u32, RpcError> {
    let value = match (params.optional_u64(name)?, default) {
        (Some(value), _) | (None, Some(value)) => value,
        (None, None) => return Err(RpcError::invalid_params(format!("missing parameter `{name}`"))),
    };
    if value == 0 || value > MAX_BLOCKS {
        return Err(RpcError::invalid_params(format!("`{name}` must be 1 to {MAX_BLOCKS} blocks")));
    }
    Ok(value as u32)
}

fn optional_asset(params: &Params, name: &str) -> Result<AssetId, RpcError> {
    if params.get(name).is_some() { asset_param(params, name) } else { Ok(AssetId::Coin) }
}

fn contract_id(params: &Params, name: &str) -> Result<OutPoint, RpcError> {
    let text = params.required_str(name)?;
    parse_outpoint(text).ok_or_else(|| RpcError::invalid_params(format!("`{name}` must be TXID:INDEX, as listed")))
}

fn parse_outpoint(text: &str) -> Option<OutPoint> {
    let (txid, index) = text.split_once(':')?;
    Some(OutPoint::new(txid.parse().ok()?, index.parse().ok()?))
}

fn id_text(id: &OutPoint) -> String {
    format!("{}:{}", id.txid, id.index)
}

fn asset_amount(asset: AssetId, amount: Amount) -> Value {
    json!({ "asset": asset.to_string(), "amount": amount.units() })
}

fn escrow_json(entry: &EscrowEntry, context: &Context) -> Value {
    json!({
        "escrow_id": id_text(&entry.id),
        "role": entry.role,
        "state": entry.state,
        "asset": entry.asset.to_string(),
        "amount": entry.amount.units(),
        "buyer_key": entry.keys.first().map(ToString::to_string),
        "seller_key": entry.keys.get(1).map(ToString::to_string),
        "arbiter_key": entry.keys.get(2).map(ToString::to_string),
        "refundable_at": entry.refundable_at,
        "height": entry.height,
        "settled_by": entry.settled_by,
        "address": peerchain_primitives::lock_address(context.network, &entry.lock),
    })
}

fn record_json(record: &LoanRecord) -> Value {
    json!({
        "borrowed": record.borrowed,
        "repaid": record.repaid,
        "defaulted": record.defaulted,
        "lent": record.lent,
    })
}

fn address_of(hash: KeyHash, context: &Context) -> String {
    Address::new(context.network, hash).to_string()
}

fn loan_json(entry: &LoanEntry, context: &Context) -> Value {
    json!({
        "id": entry.id,
        "role": entry.role,
        "state": entry.state,
        "principal": entry.principal.map(|(asset, amount)| asset_amount(asset, amount)),
        "repay": asset_amount(entry.repay.0, entry.repay.1),
        "collateral": asset_amount(entry.collateral.0, entry.collateral.1),
        "term": entry.term,
        "due_at": entry.due_at,
        "settled_by": entry.settled_by,
        "counterparty": entry.counterparty.map(|(hash, record)| json!({
            "address": address_of(hash, context),
            "record": record_json(&record),
        })),
    })
}

pub(super) async fn escrow_open(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let request = EscrowRequest {
        seller: key_param(params, "seller_key")?,
        arbiter: if params.get("arbiter_key").is_some() { Some(key_param(params, "arbiter_key")?) } else { None },
        asset: optional_asset(params, "asset")?,
        amount: units_param(params, "amount")?,
        timeout: blocks_param(params, "timeout", None)?,
        fee_rate: fee_rate(params)?,
        passphrase: passphrase(params)?,
    };
    if Some(request.seller) == request.arbiter {
        return Err(RpcError::invalid_params("the arbiter must be someone other than the seller"));
    }
    if params.optional_bool("address_only")?.unwrap_or(false) {
        let lock = context.contracts.escrow_lock(request).await?;
        let refundable_at = match &lock {
            peerchain_primitives::Lock::Escrow { after, .. } => Some(after.opens_at(0)),
            _ => None,
        };
        let address = peerchain_primitives::lock_address(context.network, &lock);
        return Ok(json!({ "address": address, "refundable_at": refundable_at }));
    }
    let opened = context.contracts.escrow_open(request).await?;
    Ok(json!({ "escrow_id": id_text(&opened.id), "txid": opened.txid }))
}

pub(super) async fn escrow_list(context: &Context, _: &Params) -> Result<Value, RpcError> {
    let escrows = context.contracts.escrows().await?;
    Ok(Value::Array(escrows.iter().map(|e| escrow_json(e, context)).collect()))
}

pub(super) async fn escrow_release(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let id = contract_id(params, "escrow_id")?;
    let txid = context.contracts.escrow_release(id, passphrase(params)?).await?;
    Ok(json!({ "txid": txid }))
}

pub(super) async fn escrow_refund(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let id = contract_id(params, "escrow_id")?;
    let txid = context.contracts.escrow_refund(id, fee_rate(params)?, passphrase(params)?).await?;
    Ok(json!({ "txid": txid }))
}

pub(super) async fn escrow_dispute(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let id = contract_id(params, "escrow_id")?;
    context.contracts.escrow_dispute(id, passphrase(params)?).await?;
    Ok(json!({ "escrow_id": id_text(&id), "state": "disputed" }))
}

pub(super) async fn escrow_resolve(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let id = contract_id(params, "escrow_id")?;
    let to = match params.required_str("to")? {
        "buyer" => Party::Buyer,
        "seller" => Party::Seller,
        other => return Err(RpcError::invalid_params(format!("`to` must be `buyer` or `seller`, not `{other}`"))),
    };
    let txid = context.contracts.escrow_resolve(id, to, passphrase(params)?).await?;
    Ok(json!({ "txid": txid }))
}

pub(super) async fn loan_offer(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let request = LoanOfferRequest {
        principal: (optional_asset(params, "asset")?, units_param(params, "amount")?),
        repay: units_param(params, "repay")?,
        term: blocks_param(params, "term", None)?,
        collateral: (asset_param(params, "collateral_asset")?, units_param(params, "collateral_amount")?),
        expires: blocks_param(params, "expires", Some(DEFAULT_EXPIRY))?,
        fee_rate: fee_rate(params)?,
        passphrase: passphrase(params)?,
    };
    if request.repay < request.principal.1 {
        return Err(RpcError::invalid_params("`repay` must be at least the amount lent"));
    }
    let made = context.contracts.loan_offer(request).await?;
    Ok(json!({
        "offer_id": made.ids.first().map(ToString::to_string),
        "funding_txid": made.funding,
        "expires_at": made.expires_at,
    }))
}

pub(super) async fn loan_book(context: &Context, _: &Params) -> Result<Value, RpcError> {
    let entries = context.contracts.loan_book().await?;
    Ok(Value::Array(
        entries
            .iter()
            .map(|(entry, record)| {
                let mut value = entry_json(entry, context);
                if let Some((asset, amount, term)) = entry.listed.offer.loan_terms() {
                    value["repay"] = asset_amount(asset, amount);
                    value["term"] = json!(term);
                }
                value["lender_record"] = record_json(record);
                value
            })
            .collect(),
    ))
}

pub(super) async fn loan_list(context: &Context, _: &Params) -> Result<Value, RpcError> {
    let loans = context.contracts.loans().await?;
    Ok(Value::Array(loans.iter().map(|l| loan_json(l, context)).collect()))
}

pub(super) async fn loan_record(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let text = params.required_str("address")?;
    let address = Address::parse(text, context.network)
        .map_err(|e| RpcError::invalid_params(format!("`{text}` is not an address of this network: {e}")))?;
    let record = context.contracts.loan_record(address.key_hash).await?;
    Ok(json!({ "address": text, "record": record_json(&record) }))
}

pub(super) async fn loan_take(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let offer = offer_id(params.required_str("offer_id")?)?;
    let opened = context.contracts.loan_take(offer, fee_rate(params)?, passphrase(params)?).await?;
    Ok(json!({ "loan_id": id_text(&opened.id), "txid": opened.txid }))
}

pub(super) async fn loan_repay(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let id = contract_id(params, "loan_id")?;
    let txid = context.contracts.loan_repay(id, fee_rate(params)?, passphrase(params)?).await?;
    Ok(json!({ "txid": txid }))
}

pub(super) async fn loan_claim(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let id = contract_id(params, "loan_id")?;
    let txid = context.contracts.loan_claim(id, fee_rate(params)?, passphrase(params)?).await?;
    Ok(json!({ "txid": txid }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_ids_are_txid_colon_index() {
        let txid = "11".repeat(32);
        assert_eq!(parse_outpoint(&format!("{txid}:3")).map(|o| o.index), Some(3));
        assert!(parse_outpoint(&txid).is_none());
        assert!(parse_outpoint(&format!("{txid}:x")).is_none());
        assert!(parse_outpoint("zz:1").is_none());
    }
}
