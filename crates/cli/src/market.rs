//! `peerchain token …` and `peerchain market …`: tokens, offers, takes and trades. An amount
//! of the coin is in coins (up to 8 decimals); an amount of a token is in its base units.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use peerchain_primitives::{Amount, AssetId};
use serde_json::{Value, json};

use crate::client::Client;
use crate::print;
use crate::wallet::{PassphraseArgs, call_with_passphrase};

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Issue a new token: SUPPLY base units to this wallet.
    Issue {
        /// Its name (1 to 32 bytes).
        name: String,
        /// How many base units to issue.
        supply: u64,
        /// How many of the base units' digits are decimals when shown.
        #[arg(long, default_value_t = 0)]
        decimals: u8,
        /// Also issue the right to mint more (kept by this wallet).
        #[arg(long)]
        mintable: bool,
        #[command(flatten)]
        pay: PayArgs,
    },
    /// Every token issued on the chain, with its supply.
    List,
    /// The wallet's confirmed balance of every asset.
    Balance,
    /// Pay ADDR the AMOUNT of ASSET.
    Send {
        /// Who to pay.
        address: String,
        /// How much: base units of a token, or coins.
        amount: String,
        /// A token id, or `coin`.
        asset: String,
        #[command(flatten)]
        pay: PayArgs,
    },
    /// Destroy AMOUNT base units of a token (an explicit burn, on chain for all to see).
    Burn {
        /// How many base units.
        amount: u64,
        /// The token id.
        asset: String,
        #[command(flatten)]
        pay: PayArgs,
    },
    /// Mint AMOUNT more base units of a token whose mint right this wallet holds.
    Mint {
        /// The token id.
        asset: String,
        /// How many base units.
        amount: u64,
        #[command(flatten)]
        pay: PayArgs,
    },
}

#[derive(Args)]
pub(crate) struct PayArgs {
    /// Fee rate in base units per byte (default: estimated).
    #[arg(long, value_name = "UNITS_PER_BYTE")]
    fee_rate: Option<u64>,
    #[command(flatten)]
    pub(crate) passphrase: PassphraseArgs,
}

#[derive(Subcommand)]
pub(crate) enum MarketCommand {
    /// Offer AMOUNT of one asset for AMOUNT of another; anyone may take it while this node is
    /// offline. With --ladder, several offers of equal size at rising prices.
    Offer {
        /// What to give: AMOUNT ASSET.
        #[arg(long, num_args = 2, value_names = ["AMOUNT", "ASSET"], required = true)]
        give: Vec<String>,
        /// What to ask for it: AMOUNT ASSET.
        #[arg(long, num_args = 2, value_names = ["AMOUNT", "ASSET"], required = true)]
        want: Vec<String>,
        /// Blocks until the offer expires (on chain: no take is valid after).
        #[arg(long, value_name = "BLOCKS")]
        expires: Option<u64>,
        /// Split into this many offers.
        #[arg(long, default_value_t = 1, value_name = "N")]
        ladder: u32,
        /// Each offer of the ladder asks this many percent more than the one before.
        #[arg(long, default_value_t = 0.0, value_name = "PERCENT")]
        step: f64,
        #[command(flatten)]
        pay: PayArgs,
    },
    /// How much the order book holds: offers, bytes against its limit, offers per pair.
    Info,
    /// The order book: every offer this node holds, cheapest first per pair.
    Book {
        /// Only offers giving this asset (with --want: that pair, both sides).
        #[arg(long, value_name = "ASSET", requires = "want")]
        give: Option<String>,
        /// Only offers wanting this asset.
        #[arg(long, value_name = "ASSET", requires = "give")]
        want: Option<String>,
        /// Show at most this many.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
    /// Take offers, all in one transaction: both legs of each, or nothing.
    Take {
        /// The offers.
        #[arg(required = true)]
        offer_ids: Vec<String>,
        #[command(flatten)]
        pay: PayArgs,
    },
    /// Cancel an offer of this wallet now by spending its coin (or let it expire, for free).
    Cancel {
        /// The offer.
        offer_id: String,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Swaps confirmed on chain, newest first.
    Trades {
        /// Show at most this many.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
}

pub(crate) fn asset(text: &str) -> anyhow::Result<AssetId> {
    text.parse().with_context(|| format!("asset `{text}`"))
}

/// An amount of `asset` on the command line, in base units.
pub(crate) fn units(text: &str, asset: AssetId) -> anyhow::Result<u64> {
    if asset == AssetId::Coin {
        let coins: Amount = text.parse().with_context(|| format!("amount `{text}`"))?;
        return Ok(coins.units());
    }
    text.parse::<u64>().with_context(|| format!("amount `{text}`: a token's amount is a whole number of base units"))
}

/// An amount of `asset` for people.
fn shown(units: &Value, asset: &Value) -> String {
    match asset.as_str() {
        Some("coin") => format!("{} coin", Amount::from_units(units.as_u64().unwrap_or(0))),
        Some(id) => format!("{} {}…", units, &id[..id.len().min(12)]),
        None => units.to_string(),
    }
}

pub(crate) fn side(value: &Value) -> String {
    shown(&value["amount"], &value["asset"])
}

pub(crate) fn pay_params(mut params: Value, pay: &PayArgs) -> Value {
    if let Some(rate) = pay.fee_rate {
        params["fee_rate"] = json!(rate);
    }
    params
}

pub(crate) fn token(client: &Client, command: TokenCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Issue { name, supply, decimals, mintable, pay } => {
            let params = json!({ "name": name, "supply": supply, "decimals": decimals, "mintable": mintable });
            let result = call_with_passphrase(client, "token.issue", pay_params(params, &pay), &pay.passphrase)?;
            print(&result, json, |r| {
                format!(
                    "issued {supply} base units of {name}\nasset {}\ntxid  {}",
                    r["asset"].as_str().unwrap_or_default(),
                    r["txid"].as_str().unwrap_or_default()
                )
            });
        }
        TokenCommand::List => {
            let result = client.call("token.list", json!({}))?;
            print(&result, json, |list| {
                let rows: Vec<String> = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        format!(
                            "{}  {:<16}  supply {:>20}  decimals {}{}",
                            t["asset"].as_str().unwrap_or_default(),
                            t["name"].as_str().unwrap_or_default(),
                            t["supply"],
                            t["decimals"],
                            if t["mintable"] == true { "  mintable" } else { "" }
                        )
                    })
                    .collect();
                if rows.is_empty() { "no tokens".to_owned() } else { rows.join("\n") }
            });
        }
        TokenCommand::Balance => {
            let result = client.call("token.balance", json!({}))?;
            print(&result, json, |b| {
                let rows: Vec<String> = b
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(asset, units)| format!("{:>24}  {asset}", shown(units, &json!(asset))))
                    .collect();
                rows.join("\n")
            });
        }
        TokenCommand::Send { address, amount, asset: named, pay } => {
            let asset_id = asset(&named)?;
            let params =
                json!({ "address": address, "amount": units(&amount, asset_id)?, "asset": asset_id.to_string() });
            let result = call_with_passphrase(client, "token.send", pay_params(params, &pay), &pay.passphrase)?;
            print(&result, json, |r| {
                format!("sent {amount} {named} to {address}\ntxid {}", r["txid"].as_str().unwrap_or_default())
            });
        }
        TokenCommand::Burn { amount, asset: named, pay } => {
            let asset_id = asset(&named)?;
            if asset_id == AssetId::Coin {
                bail!("burn destroys a token; coins are not burnt this way");
            }
            let params = json!({ "amount": amount, "asset": asset_id.to_string() });
            let result = call_with_passphrase(client, "token.burn", pay_params(params, &pay), &pay.passphrase)?;
            print(&result, json, |r| {
                format!("burnt {amount} base units\ntxid {}", r["txid"].as_str().unwrap_or_default())
            });
        }
        TokenCommand::Mint { asset: named, amount, pay } => {
            let params = json!({ "asset": asset(&named)?.to_string(), "amount": amount });
            let result = call_with_passphrase(client, "token.mint", pay_params(params, &pay), &pay.passphrase)?;
            print(&result, json, |r| {
                format!("minted {amount} base units\ntxid {}", r["txid"].as_str().unwrap_or_default())
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn market(client: &Client, command: MarketCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        MarketCommand::Offer { give, want, expires, ladder, step, pay } => {
            let (give_asset, want_asset) = (asset(&give[1])?, asset(&want[1])?);
            let params = json!({
                "give_amount": units(&give[0], give_asset)?,
                "give_asset": give_asset.to_string(),
                "want_amount": units(&want[0], want_asset)?,
                "want_asset": want_asset.to_string(),
                "expires": expires,
                "ladder": ladder,
                "step_percent": step,
            });
            let result = call_with_passphrase(client, "market.offer", pay_params(params, &pay), &pay.passphrase)?;
            print(&result, json, |r| {
                let ids: Vec<&str> =
                    r["offer_ids"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                let mut text = format!("offer {}\nexpires at height {}", ids.join("\n      "), r["expires_at"]);
                if let Some(txid) = r["funding_txid"].as_str() {
                    text.push_str(&format!("\nfunding {txid} (the offers are published once it confirms)"));
                }
                text
            });
        }
        MarketCommand::Info => {
            let result = client.call("market.info", json!({}))?;
            print(&result, json, |r| {
                let mut text = format!(
                    "{} offers, {} loan offers ({} mine)\n{} of {} bytes",
                    r["offers"], r["loan_offers"], r["mine"], r["bytes"], r["max_bytes"]
                );
                for pair in r["pairs"].as_array().into_iter().flatten() {
                    text.push_str(&format!(
                        "\n  give {} for {}: {} offers",
                        pair["give"].as_str().unwrap_or_default(),
                        pair["want"].as_str().unwrap_or_default(),
                        pair["offers"]
                    ));
                }
                text
            });
        }
        MarketCommand::Book { give, want, limit } => {
            let mut params = json!({ "limit": limit });
            if let (Some(give), Some(want)) = (give, want) {
                params["give"] = json!(asset(&give)?.to_string());
                params["want"] = json!(asset(&want)?.to_string());
            }
            let result = client.call("market.book", params)?;
            print(&result, json, |list| {
                let rows: Vec<String> = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|o| {
                        format!(
                            "{}  give {:>28}  for {:>28}  price {:>14.6}  until {}{}{}",
                            o["offer_id"].as_str().unwrap_or_default(),
                            side(&o["give"]),
                            side(&o["want"]),
                            o["price"].as_f64().unwrap_or(0.0),
                            o["expires_at"],
                            if o["mine"] == true { "  (mine)" } else { "" },
                            if o["taken_by"].is_string() { "  (being taken)" } else { "" },
                        )
                    })
                    .collect();
                if rows.is_empty() { "no offers".to_owned() } else { rows.join("\n") }
            });
        }
        MarketCommand::Take { offer_ids, pay } => {
            let params = json!({ "offer_ids": offer_ids });
            let result = call_with_passphrase(client, "market.take", pay_params(params, &pay), &pay.passphrase)?;
            print(&result, json, |r| {
                format!("taken in one transaction\ntxid {}", r["txid"].as_str().unwrap_or_default())
            });
        }
        MarketCommand::Cancel { offer_id, passphrase } => {
            let result = call_with_passphrase(client, "market.cancel", json!({ "offer_id": offer_id }), &passphrase)?;
            print(&result, json, |r| {
                format!("cancelled: its coin goes back to the wallet\ntxid {}", r["txid"].as_str().unwrap_or_default())
            });
        }
        MarketCommand::Trades { limit } => {
            let result = client.call("market.trades", json!({ "limit": limit }))?;
            print(&result, json, |list| {
                let rows: Vec<String> = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        format!(
                            "{}  height {:>7}  {:>28} for {:>28}  price {:.6}",
                            t["txid"].as_str().unwrap_or_default(),
                            t["height"],
                            side(&t["give"]),
                            side(&t["got"]),
                            t["price"].as_f64().unwrap_or(0.0),
                        )
                    })
                    .collect();
                if rows.is_empty() { "no trades".to_owned() } else { rows.join("\n") }
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
