//! `peerchain wallet ...`: thin calls of the `wallet.*` RPC methods, plus getting the
//! passphrase and the mnemonic from the user without ever prompting when stdin is not a
//! terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use peerchain_primitives::{Amount, Network};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::client::{Client, RpcFailure};
use crate::{coins, print};

/// The environment variable a passphrase may come from.
const PASSPHRASE_ENV: &str = "PEERCHAIN_PASSPHRASE";
/// The node's code for "this needs the passphrase".
const UNLOCK_NEEDED: i64 = -13;

#[derive(Subcommand)]
pub(crate) enum WalletCommand {
    /// Create a wallet: shows its 24 recovery words once; write them down.
    Create(PassphraseArgs),
    /// Restore a wallet from its recovery words, and rescan the chain for its coins.
    Restore {
        /// Read the words from this file (default: prompt on the terminal).
        #[arg(long, value_name = "FILE")]
        mnemonic_file: Option<PathBuf>,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// The receiving address (a fresh one with --new).
    Address {
        /// Hand out a new address.
        #[arg(long)]
        new: bool,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Confirmed, unconfirmed and immature coins.
    Balance,
    /// Pay ADDR the AMOUNT in coins (up to 8 decimals).
    Send {
        /// Who to pay.
        address: String,
        /// How many coins, e.g. 12.5.
        amount: String,
        /// Fee rate in base units per byte (default: estimated from recent blocks and the mempool).
        #[arg(long, value_name = "UNITS_PER_BYTE")]
        fee_rate: Option<u64>,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Transactions in and out, newest first.
    History {
        /// Show at most this many.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
    /// Scan the chain again for the wallet's transactions.
    Rescan {
        /// Start here (default: the wallet's creation height; 0 after a restore).
        #[arg(long, value_name = "HEIGHT")]
        from_height: Option<u64>,
    },
    /// Show the recovery words (read from the wallet file here, never sent over RPC).
    Mnemonic(PassphraseArgs),
    /// A public key of the wallet, to name it in escrows and loans.
    Key(PassphraseArgs),
}

#[derive(Args)]
pub(crate) struct PassphraseArgs {
    /// Read the wallet passphrase from this file (else PEERCHAIN_PASSPHRASE, else a prompt on a terminal).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

impl PassphraseArgs {
    /// The passphrase from the environment or the file, if either gives one.
    pub(crate) fn given(&self) -> anyhow::Result<Option<Zeroizing<String>>> {
        if let Some(path) = &self.passphrase_file {
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the passphrase file {}", path.display()))?,
            );
            return Ok(Some(Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_owned())));
        }
        Ok(std::env::var(PASSPHRASE_ENV).ok().map(Zeroizing::new))
    }

    /// The passphrase, prompting on a terminal if none is given; none without a terminal.
    fn get_or_prompt(&self, prompt: &str) -> anyhow::Result<Option<Zeroizing<String>>> {
        if let Some(given) = self.given()? {
            return Ok(Some(given));
        }
        if !std::io::stdin().is_terminal() {
            return Ok(None);
        }
        Ok(Some(Zeroizing::new(rpassword::prompt_password(prompt).context("reading the passphrase")?)))
    }

    /// A passphrase for a new wallet: asked twice on a terminal; empty means none.
    fn new_passphrase(&self, network: Network) -> anyhow::Result<Option<Zeroizing<String>>> {
        if let Some(given) = self.given()? {
            return Ok(Some(given).filter(|p| !p.is_empty()));
        }
        if !std::io::stdin().is_terminal() {
            return Ok(None);
        }
        let optional = matches!(network, Network::Devnet | Network::Regtest);
        let prompt = if optional { "New wallet passphrase (empty for none): " } else { "New wallet passphrase: " };
        let first = Zeroizing::new(rpassword::prompt_password(prompt).context("reading the passphrase")?);
        if first.is_empty() {
            return Ok(None);
        }
        let again = Zeroizing::new(rpassword::prompt_password("Repeat it: ").context("reading the passphrase")?);
        if *first != *again {
            bail!("the passphrases differ; nothing was created");
        }
        Ok(Some(first))
    }
}

/// Calls `method`; if the node says the passphrase is needed and none was given, asks for it
/// (on a terminal) and calls again.
pub(crate) fn call_with_passphrase(
    client: &Client,
    method: &str,
    mut params: Value,
    passphrase: &PassphraseArgs,
) -> anyhow::Result<Value> {
    if let Some(given) = passphrase.given()? {
        params["passphrase"] = json!(given.as_str());
        return client.call(method, params);
    }
    match client.call(method, params.clone()) {
        Err(e) if e.downcast_ref::<RpcFailure>().is_some_and(|f| f.code == UNLOCK_NEEDED) => {
            match passphrase.get_or_prompt("Wallet passphrase: ")? {
                Some(p) => {
                    params["passphrase"] = json!(p.as_str());
                    client.call(method, params)
                }
                None => Err(e),
            }
        }
        other => other,
    }
}

fn read_mnemonic(file: Option<&Path>) -> anyhow::Result<Zeroizing<String>> {
    let words = match file {
        Some(path) => Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the mnemonic file {}", path.display()))?,
        ),
        None if std::io::stdin().is_terminal() => {
            Zeroizing::new(rpassword::prompt_password("Recovery words: ").context("reading the recovery words")?)
        }
        None => bail!("give the recovery words with --mnemonic-file (stdin is not a terminal)"),
    };
    let normalised = Zeroizing::new(words.split_whitespace().collect::<Vec<_>>().join(" "));
    peerchain_wallet::parse_mnemonic(&normalised)?;
    Ok(normalised)
}

/// `wallet create`: the words are made here and shown once; the node never shows them.
fn create(client: &Client, passphrase: &PassphraseArgs, network: Network, json: bool) -> anyhow::Result<()> {
    let words = Zeroizing::new(peerchain_wallet::generate_mnemonic());
    let secret = passphrase.new_passphrase(network)?;
    let mut params = json!({ "mnemonic": words.as_str() });
    if let Some(p) = &secret {
        params["passphrase"] = json!(p.as_str());
    }
    let result = client.call("wallet.create", params)?;
    let mut shown = result.clone();
    shown["mnemonic"] = json!(words.as_str());
    print(&shown, json, |r| {
        format!(
            "wallet created ({})\naddress  {}\n\nRecovery words — write them down and keep them secret; they restore the wallet:\n\n  {}\n",
            if r["encrypted"] == true { "encrypted" } else { "NOT encrypted: no passphrase" },
            r["address"].as_str().unwrap_or_default(),
            words.as_str(),
        )
    });
    Ok(())
}

pub(crate) fn run(
    command: WalletCommand,
    data_dir: &Path,
    network: Network,
    client: impl FnOnce() -> anyhow::Result<Client>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match command {
        WalletCommand::Mnemonic(passphrase) => {
            // Read locally: the words never cross the RPC connection.
            let path = peerchain_wallet::Wallet::keystore_path(data_dir);
            let keystore = peerchain_wallet::Keystore::open_read_only(&path, network)?;
            let given = if keystore.is_encrypted() { passphrase.get_or_prompt("Wallet passphrase: ")? } else { None };
            let words = keystore
                .mnemonic(given.as_deref().map(String::as_str))?
                .context("this wallet has no recovery words (it was migrated from single keys)")?;
            print(&json!({ "mnemonic": words.as_str() }), json, |_| words.to_string());
        }
        WalletCommand::Create(passphrase) => create(&client()?, &passphrase, network, json)?,
        WalletCommand::Restore { mnemonic_file, passphrase } => {
            let client = client()?;
            let words = read_mnemonic(mnemonic_file.as_deref())?;
            let mut params = json!({ "mnemonic": words.as_str() });
            if let Some(p) = passphrase.new_passphrase(network)? {
                params["passphrase"] = json!(p.as_str());
            }
            let result = client.call("wallet.restore", params)?;
            print(&result, json, |r| {
                format!(
                    "wallet restored; scanning the chain for its coins\naddress  {}",
                    r["address"].as_str().unwrap_or_default()
                )
            });
        }
        WalletCommand::Address { new, passphrase } => {
            let result = call_with_passphrase(&client()?, "wallet.address", json!({ "new": new }), &passphrase)?;
            print(&result, json, |r| r["address"].as_str().unwrap_or_default().to_owned());
        }
        WalletCommand::Balance => {
            let result = client()?.call("wallet.balance", json!({}))?;
            print(&result, json, |b| {
                let mut text = format!(
                    "confirmed    {}\nunconfirmed  {}\nimmature     {}",
                    coins(&b["confirmed"]),
                    coins(&b["unconfirmed"]),
                    coins(&b["immature"]),
                );
                if b["scanning"] == true {
                    text.push_str(&format!("\n(scanning the chain: at height {})", b["scanned_height"]));
                }
                text
            });
        }
        WalletCommand::Send { address, amount, fee_rate, passphrase } => {
            let amount: Amount = amount.parse().with_context(|| format!("amount `{amount}`"))?;
            let params = json!({ "address": address, "amount": amount.units(), "fee_rate": fee_rate });
            let result = call_with_passphrase(&client()?, "wallet.send", params, &passphrase)?;
            print(&result, json, |r| {
                format!(
                    "sent {amount} coins to {address}\ntxid {}\nfee  {} coins ({} units/byte)",
                    r["txid"].as_str().unwrap_or_default(),
                    coins(&r["fee"]),
                    r["fee_rate"],
                )
            });
        }
        WalletCommand::History { limit } => {
            let result = client()?.call("wallet.history", json!({ "limit": limit }))?;
            print(&result, json, |list| {
                let rows: Vec<String> = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        let amount = e["amount"].as_i64().unwrap_or(0);
                        let sign = if amount < 0 { "-" } else { "+" };
                        let state = match e["status"].as_str() {
                            Some("confirmed") => format!("{} conf", e["confirmations"]),
                            Some("conflicted") => "CONFLICTED".to_owned(),
                            _ => "unconfirmed".to_owned(),
                        };
                        format!(
                            "{}  {:7}  {sign}{:>16}  {:>12}",
                            e["txid"].as_str().unwrap_or_default(),
                            e["category"].as_str().unwrap_or_default(),
                            Amount::from_units(amount.unsigned_abs()).to_string(),
                            state,
                        )
                    })
                    .collect();
                if rows.is_empty() { "no transactions".to_owned() } else { rows.join("\n") }
            });
        }
        WalletCommand::Key(passphrase) => {
            let result = call_with_passphrase(&client()?, "wallet.key", json!({}), &passphrase)?;
            print(&result, json, |r| r["key"].as_str().unwrap_or_default().to_owned());
        }
        WalletCommand::Rescan { from_height } => {
            let result = client()?.call("wallet.rescan", json!({ "from_height": from_height }))?;
            print(&result, json, |r| format!("rescanning from height {}", r["rescanning_from"]));
        }
    }
    Ok(ExitCode::SUCCESS)
}
