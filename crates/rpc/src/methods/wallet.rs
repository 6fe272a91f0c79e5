//! The `wallet.*` methods, and the adapter through which the wallet reads the chain.

use peerchain_primitives::{Amount, Block, BlockHash, Encode};
use peerchain_wallet::{ChainSource, Error as WalletError, TxStatus, Wallet, generate_mnemonic};
use serde_json::{Value, json};

use crate::params::Params;
use crate::{Context, RpcError};

/// The chain as the wallet reads it: the store, through the chain handle.
pub struct ChainReader<'a>(pub &'a peerchain_chain::Handle);

impl ChainSource for ChainReader<'_> {
    fn tip_height(&self) -> u32 {
        self.0.tip().height
    }
    fn main_hash(&self, height: u32) -> Result<Option<BlockHash>, String> {
        self.0.main_hash(height).map_err(|e| e.to_string())
    }
    fn block_at(&self, height: u32) -> Result<Option<Block>, String> {
        self.0.block_at(height).map_err(|e| e.to_string())
    }
    fn coinbase_maturity(&self) -> u32 {
        self.0.params().coinbase_maturity
    }
}

/// Bitcoin Core's codes for wallet errors, so that existing tools read them right.
const INSUFFICIENT_FUNDS: i64 = RpcError::INSUFFICIENT_FUNDS;
const INVALID_ADDRESS: i64 = -5;
const UNLOCK_NEEDED: i64 = RpcError::UNLOCK_NEEDED;
const WRONG_PASSPHRASE: i64 = -14;
const NO_WALLET: i64 = RpcError::NO_WALLET;

pub(crate) fn wallet_error(e: WalletError) -> RpcError {
    let code = match &e {
        WalletError::Missing(_) => NO_WALLET,
        WalletError::Exists(_) => RpcError::NOT_ALLOWED,
        WalletError::InsufficientFunds { .. } | WalletError::InsufficientAsset { .. } => INSUFFICIENT_FUNDS,
        WalletError::PassphraseRequired | WalletError::PoolExhausted => UNLOCK_NEEDED,
        WalletError::WrongPassphrase => WRONG_PASSPHRASE,
        WalletError::InvalidMnemonic(_)
        | WalletError::AmountTooLarge
        | WalletError::AmountTooSmall
        | WalletError::TooManyInputs { .. }
        | WalletError::NotSpendable(_)
        | WalletError::Metadata(_) => RpcError::INVALID_PARAMS,
        _ => RpcError::INTERNAL_ERROR,
    };
    RpcError::new(code, e.to_string())
}

/// Runs `work` on the wallet, off the async executor (key stretching and scans take time),
/// after bringing it up to date with the chain.
pub(super) async fn with_wallet<T: Send + 'static>(
    context: &Context,
    work: impl FnOnce(&mut Wallet, &ChainReader<'_>) -> Result<T, RpcError> + Send + 'static,
) -> Result<T, RpcError> {
    let shared = context.wallet.clone();
    let chain = context.chain.clone();
    let data_dir = context.data_dir.clone();
    let network = context.network;
    tokio::task::spawn_blocking(move || {
        let mut slot = shared.lock();
        let Some(wallet) = slot.as_mut() else {
            // Say why there is none: missing, or a file that would not open.
            return Err(wallet_error(
                Wallet::open(&data_dir, network)
                    .err()
                    .unwrap_or(WalletError::Missing(Wallet::keystore_path(&data_dir))),
            ));
        };
        let reader = ChainReader(&chain);
        // A rescan in progress is left to the background task; small gaps are closed here
        // so that a balance read right after a block includes it.
        let _ = wallet.sync(&reader, 1_000).map_err(wallet_error)?;
        work(wallet, &reader)
    })
    .await
    .map_err(RpcError::internal)?
}

/// A key's address or a contract's (escrow, multisig, hash-time lock, loan).
pub(super) fn parse_destination(text: &str, context: &Context) -> Result<peerchain_primitives::Lock, RpcError> {
    peerchain_primitives::parse_lock_address(text, context.network)
        .map_err(|e| RpcError::new(INVALID_ADDRESS, format!("`{text}`: {e}")))
}

pub(crate) fn amount_param(params: &Params, name: &str) -> Result<Amount, RpcError> {
    match params.get(name) {
        Some(Value::Number(n)) => n.as_u64().map(Amount::from_units).filter(|a| a.is_valid_money()).ok_or_else(|| {
            RpcError::invalid_params(format!("`{name}` must be whole base units up to 21,000,000 coins"))
        }),
        Some(_) => Err(RpcError::invalid_params(format!("`{name}` must be an integer number of base units"))),
        None => Err(RpcError::invalid_params(format!("missing parameter `{name}`"))),
    }
}

pub(super) fn passphrase(params: &Params) -> Result<Option<String>, RpcError> {
    Ok(params.optional_str("passphrase")?.map(str::to_owned))
}

pub(super) async fn create(context: &Context, params: &Params) -> Result<Value, RpcError> {
    create_or_restore(context, false, params).await
}

pub(super) async fn restore(context: &Context, params: &Params) -> Result<Value, RpcError> {
    create_or_restore(context, true, params).await
}

pub(super) async fn address(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let new = params.optional_bool("new")?.unwrap_or(false);
    let passphrase = passphrase(params)?;
    with_wallet(context, move |wallet, _| {
        let address = wallet.address(new, passphrase.as_deref()).map_err(wallet_error)?;
        Ok(json!({ "address": address.to_string() }))
    })
    .await
}

pub(super) async fn balance(context: &Context, _: &Params) -> Result<Value, RpcError> {
    with_wallet(context, |wallet, chain| {
        let tip = chain.tip_height();
        let balance = wallet.balance(tip, chain.coinbase_maturity());
        let scanned = wallet.scanned_height();
        Ok(json!({
            "confirmed": balance.confirmed.units(),
            "unconfirmed": balance.unconfirmed.units(),
            "immature": balance.immature.units(),
            "scanned_height": scanned,
            "scanning": scanned.is_none_or(|h| h < tip),
        }))
    })
    .await
}

pub(super) async fn history(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let limit = params.optional_u64("limit")?.unwrap_or(u64::MAX) as usize;
    with_wallet(context, move |wallet, chain| {
        let entries = wallet.history(chain.tip_height(), chain.coinbase_maturity());
        Ok(Value::Array(entries.iter().take(limit).map(history_json).collect()))
    })
    .await
}

pub(super) async fn rescan(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let from = params.optional_u64("from_height")?.map(|h| h.min(u32::MAX as u64) as u32);
    with_wallet(context, move |wallet, _| {
        wallet.rescan(from).map_err(wallet_error)?;
        let next = wallet.scanned_height().map_or(wallet.keystore().birth_height(), |h| h + 1);
        Ok(json!({ "rescanning_from": next }))
    })
    .await
}

fn history_json(e: &peerchain_wallet::HistoryEntry) -> Value {
    let (status, conflicted_by, height) = match e.status {
        TxStatus::Confirmed { height, .. } => ("confirmed", None, Some(height)),
        TxStatus::Pending => ("pending", None, None),
        TxStatus::Conflicted { by, .. } => ("conflicted", Some(by), None),
    };
    let category = if e.coinbase {
        "mined"
    } else if e.sent > Amount::ZERO {
        "send"
    } else {
        "receive"
    };
    json!({
        "txid": e.txid,
        "category": category,
        "amount": e.received.units() as i128 - e.sent.units() as i128,
        "received": e.received.units(),
        "sent": e.sent.units(),
        "fee": e.fee.map(Amount::units),
        "status": status,
        "conflicted_by": conflicted_by,
        "confirmations": e.confirmations,
        "height": height,
        "time": e.time,
        "tokens": e.tokens.iter().map(|(asset, received, sent)| json!({
            "asset": asset.to_string(),
            "received": received.units(),
            "sent": sent.units(),
        })).collect::<Vec<_>>(),
    })
}

async fn create_or_restore(context: &Context, restore: bool, params: &Params) -> Result<Value, RpcError> {
    let passphrase = passphrase(params)?;
    let mnemonic = match params.optional_str("mnemonic")? {
        Some(words) => zeroize::Zeroizing::new(words.to_owned()),
        None if restore => return Err(RpcError::invalid_params("missing parameter `mnemonic`")),
        None => zeroize::Zeroizing::new(generate_mnemonic()),
    };
    peerchain_wallet::parse_mnemonic(&mnemonic).map_err(wallet_error)?;
    // New words cannot have been paid before now; restored ones are scanned from genesis.
    let birth = if restore { 0 } else { context.chain.tip().height };
    let shared = context.wallet.clone();
    let data_dir = context.data_dir.clone();
    let network = context.network;
    tokio::task::spawn_blocking(move || {
        let mut slot = shared.lock();
        if slot.is_some() {
            return Err(wallet_error(WalletError::Exists(Wallet::keystore_path(&data_dir))));
        }
        let mut wallet =
            Wallet::create(&data_dir, network, &mnemonic, passphrase.as_deref(), birth).map_err(wallet_error)?;
        let address = wallet.address(false, None).map_err(wallet_error)?;
        let encrypted = wallet.keystore().is_encrypted();
        *slot = Some(wallet);
        Ok(json!({ "address": address.to_string(), "encrypted": encrypted, "scan_from": birth }))
    })
    .await
    .map_err(RpcError::internal)?
}

/// Blocks a payment should confirm within when no fee rate is given.
const DEFAULT_CONFIRMATION_TARGET: u32 = 2;

/// The `fee_rate` parameter in base units per byte, or the estimate for a confirmation within
/// a couple of blocks.
pub(super) async fn fee_rate_param(context: &Context, params: &Params) -> Result<u64, RpcError> {
    Ok(match params.optional_u64("fee_rate")? {
        Some(0) => return Err(RpcError::invalid_params("`fee_rate` must be at least 1 base unit per byte")),
        Some(rate) => rate,
        None => {
            context.chain.estimate_fee(DEFAULT_CONFIRMATION_TARGET).await.map_err(RpcError::internal)?.units_per_byte
        }
    })
}

pub(super) async fn send(context: &Context, params: &Params) -> Result<Value, RpcError> {
    let to = parse_destination(params.required_str("address")?, context)?;
    let amount = amount_param(params, "amount")?;
    let fee_rate = fee_rate_param(context, params).await?;
    let passphrase = passphrase(params)?;
    // One payment at a time, so that two never pick the same coins.
    let _turn = context.wallet_sends.lock().await;
    let payment = with_wallet(context, move |wallet, chain| {
        wallet
            .pay_lock(
                to,
                peerchain_primitives::AssetId::Coin,
                amount,
                peerchain_primitives::FeeRate::per_byte(fee_rate),
                passphrase.as_deref(),
                chain.tip_height(),
                chain.coinbase_maturity(),
            )
            .map_err(wallet_error)
    })
    .await?;
    let size = payment.tx.encoded_len();
    let txid = context.relay.submit(payment.tx.clone()).await.map_err(super::chain::submit_tx_error)?;
    let tx = payment.tx;
    with_wallet(context, move |wallet, _| wallet.add_pending(tx, true).map_err(wallet_error)).await?;
    Ok(json!({ "txid": txid, "fee": payment.fee.units(), "fee_rate": fee_rate, "size": size }))
}
