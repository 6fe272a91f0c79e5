//! The `token.*` methods: issue, list, balance, send, burn and mint tokens, and `wallet.key`.
//! Amounts of a token are in its base units.

use peerchain_primitives::{Address, Amount, AssetId, FeeRate, TokenId, TokenMetadata};
use peerchain_wallet::ChainSource;
use serde_json::{Map, Value, json};

use super::wallet::wallet_error;
use super::wallet::{fee_rate_param, parse_destination, passphrase, with_wallet};
use crate::params::Params;
use crate::{Context, RpcError};

/// An asset named by a parameter: `coin`, a token id, or `mint:` and a token id.
pub(crate) fn asset_param(params: &Params, name: &str) -> Result<AssetId, RpcError> {
    let text = params.required_str(name)?;
    text.parse().map_err(|e| RpcError::invalid_params(format!("`{name}`: {e}")))
}

/// A whole amount of base units, more than zero.
pub(crate) fn units_param(params: &Params, name: &str) -> Result<Amount, RpcError> {
    let amount = super::amount_param(params, name)?;
    if amount == Amount::ZERO {
        return Err(RpcError::invalid_params(format!("`{name}` must be more than zero")));
    }
    Ok(amount)
}

pub(super) async fn issue(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let name = params.required_str("name")?.to_owned();
    let supply = super::amount_param(params, "supply")?;
    let decimals = params.optional_u64("decimals")?.unwrap_or(0);
    let decimals = u8::try_from(decimals).map_err(|_| RpcError::invalid_params("`decimals` is at most 18"))?;
    let mintable = params.optional_bool("mintable")?.unwrap_or(false);
    let metadata = TokenMetadata::new(&name, decimals, None).map_err(|e| RpcError::invalid_params(e.to_string()))?;
    let fee_rate = fee_rate_param(context, params).await?;
    let passphrase = passphrase(params)?;
    let _turn = context.wallet_sends.lock().await;
    let (token, payment) = with_wallet(context, move |wallet, chain| {
        wallet
            .issue_token(
                &metadata,
                supply,
                mintable,
                FeeRate::per_byte(fee_rate),
                passphrase.as_deref(),
                chain.tip_height(),
                chain.coinbase_maturity(),
            )
            .map_err(wallet_error)
    })
    .await?;
    let txid = submit(context, payment).await?;
    Ok(json!({ "asset": AssetId::Token(token).to_string(), "txid": txid }))
}

/// Sends a wallet transaction to the network and records it in the wallet.
async fn submit(context: &Context, payment: peerchain_wallet::Payment) -> Result<peerchain_primitives::TxId, RpcError> {
    let txid = context.relay.submit(payment.tx.clone()).await.map_err(super::chain::submit_tx_error)?;
    let tx = payment.tx;
    with_wallet(context, move |wallet, _| wallet.add_pending(tx, true).map_err(wallet_error)).await?;
    Ok(txid)
}

pub(super) async fn list(context: &Context, _: &Params) -> Result<Value, RpcError> {
    let tokens = context.market.tokens().await?;
    Ok(Value::Array(
        tokens
            .iter()
            .map(|t| {
                json!({
                    "asset": AssetId::Token(t.id).to_string(),
                    "name": t.metadata.name,
                    "decimals": t.metadata.decimals,
                    "supply": t.supply.units(),
                    "mintable": t.mintable,
                    "txid": t.txid,
                    "height": t.height,
                })
            })
            .collect(),
    ))
}

pub(super) async fn balance(context: &Context, _: &Params) -> Result<Value, RpcError> {
    with_wallet(context, |wallet, chain| {
        let balances = wallet.balances(chain.tip_height(), chain.coinbase_maturity());
        let mut object = Map::new();
        for (asset, balance) in balances {
            object.insert(asset.to_string(), json!(balance.confirmed.units()));
        }
        Ok(Value::Object(object))
    })
    .await
}

pub(super) async fn send(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let to = parse_destination(params.required_str("address")?, context)?;
    let amount = units_param(params, "amount")?;
    let asset = asset_param(params, "asset")?;
    let fee_rate = fee_rate_param(context, params).await?;
    let passphrase = passphrase(params)?;
    let _turn = context.wallet_sends.lock().await;
    let payment = with_wallet(context, move |wallet, chain| {
        wallet
            .pay_lock(
                to,
                asset,
                amount,
                FeeRate::per_byte(fee_rate),
                passphrase.as_deref(),
                chain.tip_height(),
                chain.coinbase_maturity(),
            )
            .map_err(wallet_error)
    })
    .await?;
    let fee = payment.fee.units();
    let txid = submit(context, payment).await?;
    Ok(json!({ "txid": txid, "fee": fee }))
}

pub(super) async fn burn(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let amount = units_param(params, "amount")?;
    let asset = asset_param(params, "asset")?;
    let fee_rate = fee_rate_param(context, params).await?;
    let passphrase = passphrase(params)?;
    let _turn = context.wallet_sends.lock().await;
    let payment = with_wallet(context, move |wallet, chain| {
        wallet
            .burn(
                asset,
                amount,
                FeeRate::per_byte(fee_rate),
                passphrase.as_deref(),
                chain.tip_height(),
                chain.coinbase_maturity(),
            )
            .map_err(wallet_error)
    })
    .await?;
    let fee = payment.fee.units();
    let txid = submit(context, payment).await?;
    Ok(json!({ "txid": txid, "fee": fee }))
}

pub(super) async fn mint(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let token: TokenId = match asset_param(params, "asset")? {
        AssetId::Token(id) => id,
        _ => return Err(RpcError::invalid_params("`asset` must be a token id")),
    };
    let amount = units_param(params, "amount")?;
    let fee_rate = fee_rate_param(context, params).await?;
    let passphrase = passphrase(params)?;
    let _turn = context.wallet_sends.lock().await;
    let payment = with_wallet(context, move |wallet, chain| {
        wallet
            .mint(
                token,
                amount,
                FeeRate::per_byte(fee_rate),
                passphrase.as_deref(),
                chain.tip_height(),
                chain.coinbase_maturity(),
            )
            .map_err(wallet_error)
    })
    .await?;
    let txid = submit(context, payment).await?;
    Ok(json!({ "txid": txid }))
}

pub(super) async fn key(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let passphrase = passphrase(params)?;
    with_wallet(context, move |wallet, _| {
        let hash = wallet.address(false, passphrase.as_deref()).map_err(wallet_error)?.key_hash;
        let (key, _) = wallet.keystore().find(&hash).ok_or_else(|| RpcError::internal("no key for the address"))?;
        Ok(json!({ "key": key.to_string(), "address": Address::new(wallet.network(), hash).to_string() }))
    })
    .await
}
