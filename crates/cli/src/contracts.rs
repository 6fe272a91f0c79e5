//! `peerchain escrow …` and `peerchain loan …`: contracts settled on chain between the
//! parties themselves. Amounts as in `market`: coins with up to 8 decimals, tokens in base
//! units.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::client::Client;
use crate::market::{PayArgs, asset, pay_params, side, units};
use crate::print;
use crate::wallet::{PassphraseArgs, call_with_passphrase};

#[derive(Subcommand)]
pub(crate) enum EscrowCommand {
    /// As the buyer: lock AMOUNT for the seller. Released by both, or by the arbiter with
    /// either; the buyer takes it back alone after the timeout.
    Open {
        /// The seller's key (`peerchain wallet key` on the seller's node).
        #[arg(long, value_name = "KEY")]
        seller_key: String,
        /// How much: coins, or base units of --asset.
        #[arg(long)]
        amount: String,
        /// A token id, or `coin`.
        #[arg(long, default_value = "coin")]
        asset: String,
        /// A third party who decides a dispute (its `wallet key`).
        #[arg(long, value_name = "KEY")]
        arbiter_key: Option<String>,
        /// Blocks from now until the buyer may take it back alone.
        #[arg(long, value_name = "BLOCKS")]
        timeout: u64,
        /// Only print the escrow's address, for any wallet to fund (this one pays nothing).
        #[arg(long)]
        address_only: bool,
        #[command(flatten)]
        pay: PayArgs,
    },
    /// The escrows this wallet is party to, as buyer, seller or arbiter.
    List,
    /// As the buyer: pay the escrow to the seller (its node completes the payout).
    Release {
        /// The escrow (TXID:INDEX).
        escrow_id: String,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// As the buyer, after the timeout: take the escrow back.
    Refund {
        /// The escrow.
        escrow_id: String,
        #[command(flatten)]
        pay: PayArgs,
    },
    /// As buyer or seller: ask the arbiter to rule.
    Dispute {
        /// The escrow.
        escrow_id: String,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// As the arbiter of a disputed escrow: pay it to one party (its node completes it).
    Resolve {
        /// The escrow.
        escrow_id: String,
        /// Who gets it.
        #[arg(long, value_enum)]
        to: PartyArg,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum PartyArg {
    Buyer,
    Seller,
}

#[derive(Subcommand)]
pub(crate) enum LoanCommand {
    /// As the lender: offer AMOUNT against collateral, repaid with REPAY within the term.
    /// Anyone may take it while this node is offline.
    Offer {
        /// How much to lend: coins, or base units of --asset.
        #[arg(long)]
        amount: String,
        /// What is lent: a token id, or `coin`.
        #[arg(long, default_value = "coin")]
        asset: String,
        /// How much the borrower repays, in the same asset.
        #[arg(long)]
        repay: String,
        /// Blocks from the loan's start until the collateral may be claimed.
        #[arg(long, value_name = "BLOCKS")]
        term: u64,
        /// The collateral: AMOUNT ASSET.
        #[arg(long, num_args = 2, value_names = ["AMOUNT", "ASSET"], required = true)]
        collateral: Vec<String>,
        /// Blocks until the offer expires.
        #[arg(long, value_name = "BLOCKS")]
        expires: Option<u64>,
        #[command(flatten)]
        pay: PayArgs,
    },
    /// Loan offers in the book.
    Book,
    /// This wallet's loan offers and loans, as lender or borrower.
    List,
    /// A key's record of loans on chain (borrowed, repaid, defaulted, lent): facts, not a
    /// score.
    Record {
        /// Its address.
        address: String,
    },
    /// As the borrower: take an offer (collateral locked, principal received, in one
    /// transaction).
    Take {
        /// The offer.
        offer_id: String,
        #[command(flatten)]
        pay: PayArgs,
    },
    /// As the borrower: repay and take the collateral back.
    Repay {
        /// The loan (TXID:INDEX).
        loan_id: String,
        #[command(flatten)]
        pay: PayArgs,
    },
    /// As the lender, once the term is over: take the collateral.
    Claim {
        /// The loan.
        loan_id: String,
        #[command(flatten)]
        pay: PayArgs,
    },
}

fn txid_line(result: &Value) -> String {
    format!("txid {}", result["txid"].as_str().unwrap_or_default())
}

pub(crate) fn escrow(client: &Client, command: EscrowCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        EscrowCommand::Open { seller_key, amount, asset: named, arbiter_key, timeout, address_only, pay } => {
            let asset_id = asset(&named)?;
            let mut params = json!({
                "seller_key": seller_key,
                "amount": units(&amount, asset_id)?,
                "asset": asset_id.to_string(),
                "timeout": timeout,
                "address_only": address_only,
            });
            if let Some(key) = arbiter_key {
                params["arbiter_key"] = json!(key);
            }
            let result = call_with_passphrase(client, "escrow.open", pay_params(params, &pay), &pay.passphrase)?;
            print(&result, json, |r| match r["address"].as_str() {
                Some(address) => format!("pay the escrow from any wallet at\n{address}"),
                None => format!("escrow {}\n{}", r["escrow_id"].as_str().unwrap_or_default(), txid_line(r)),
            });
        }
        EscrowCommand::List => {
            let result = client.call("escrow.list", json!({}))?;
            print(&result, json, |list| {
                let rows: Vec<String> = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        format!(
                            "{}  {:<8} {:<9} {:>28}  refundable at {}",
                            e["escrow_id"].as_str().unwrap_or_default(),
                            e["role"].as_str().unwrap_or_default(),
                            e["state"].as_str().unwrap_or_default(),
                            side(e),
                            e["refundable_at"],
                        )
                    })
                    .collect();
                if rows.is_empty() { "no escrows".to_owned() } else { rows.join("\n") }
            });
        }
        EscrowCommand::Release { escrow_id, passphrase } => {
            let result =
                call_with_passphrase(client, "escrow.release", json!({ "escrow_id": escrow_id }), &passphrase)?;
            print(&result, json, |r| format!("released: the seller's node completes the payout\n{}", txid_line(r)));
        }
        EscrowCommand::Refund { escrow_id, pay } => {
            let params = pay_params(json!({ "escrow_id": escrow_id }), &pay);
            let result = call_with_passphrase(client, "escrow.refund", params, &pay.passphrase)?;
            print(&result, json, |r| format!("refunded\n{}", txid_line(r)));
        }
        EscrowCommand::Dispute { escrow_id, passphrase } => {
            let result =
                call_with_passphrase(client, "escrow.dispute", json!({ "escrow_id": escrow_id }), &passphrase)?;
            print(&result, json, |_| "disputed: the arbiter's node is told".to_owned());
        }
        EscrowCommand::Resolve { escrow_id, to, passphrase } => {
            let to = match to {
                PartyArg::Buyer => "buyer",
                PartyArg::Seller => "seller",
            };
            let params = json!({ "escrow_id": escrow_id, "to": to });
            let result = call_with_passphrase(client, "escrow.resolve", params, &passphrase)?;
            print(&result, json, |r| format!("resolved for the {to}: its node completes the payout\n{}", txid_line(r)));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn loan(client: &Client, command: LoanCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        LoanCommand::Offer { amount, asset: named, repay, term, collateral, expires, pay } => {
            let lent = asset(&named)?;
            let collateral_asset = asset(&collateral[1])?;
            let mut params = json!({
                "amount": units(&amount, lent)?,
                "asset": lent.to_string(),
                "repay": units(&repay, lent)?,
                "term": term,
                "collateral_amount": units(&collateral[0], collateral_asset)?,
                "collateral_asset": collateral_asset.to_string(),
            });
            if let Some(expires) = expires {
                params["expires"] = json!(expires);
            }
            let result = call_with_passphrase(client, "loan.offer", pay_params(params, &pay), &pay.passphrase)?;
            print(&result, json, |r| {
                let mut text = format!(
                    "loan offer {}\nexpires at height {}",
                    r["offer_id"].as_str().unwrap_or_default(),
                    r["expires_at"]
                );
                if let Some(txid) = r["funding_txid"].as_str() {
                    text.push_str(&format!("\nfunding {txid} (the offer is published once it confirms)"));
                }
                text
            });
        }
        LoanCommand::Book => {
            let result = client.call("loan.book", json!({}))?;
            print(&result, json, |list| {
                let rows: Vec<String> = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|o| {
                        format!(
                            "{}  lends {:>24}  repay {:>24}  term {:>6}  collateral {:>24}{}",
                            o["offer_id"].as_str().unwrap_or_default(),
                            side(&o["give"]),
                            side(&o["repay"]),
                            o["term"],
                            side(&o["want"]),
                            if o["mine"] == true { "  (mine)" } else { "" },
                        )
                    })
                    .collect();
                if rows.is_empty() { "no loan offers".to_owned() } else { rows.join("\n") }
            });
        }
        LoanCommand::List => {
            let result = client.call("loan.list", json!({}))?;
            print(&result, json, |list| {
                let rows: Vec<String> = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| {
                        format!(
                            "{}  {:<8} {:<9} repay {:>24}  collateral {:>24}  due {}",
                            l["id"].as_str().unwrap_or_default(),
                            l["role"].as_str().unwrap_or_default(),
                            l["state"].as_str().unwrap_or_default(),
                            side(&l["repay"]),
                            side(&l["collateral"]),
                            l["due_at"],
                        )
                    })
                    .collect();
                if rows.is_empty() { "no loans".to_owned() } else { rows.join("\n") }
            });
        }
        LoanCommand::Record { address } => {
            let result = client.call("loan.record", json!({ "address": address }))?;
            print(&result, json, |r| {
                let record = &r["record"];
                format!(
                    "{address}\nborrowed {}, repaid {}, defaulted {}; lent {}",
                    record["borrowed"], record["repaid"], record["defaulted"], record["lent"]
                )
            });
        }
        LoanCommand::Take { offer_id, pay } => {
            let params = pay_params(json!({ "offer_id": offer_id }), &pay);
            let result = call_with_passphrase(client, "loan.take", params, &pay.passphrase)?;
            print(&result, json, |r| format!("loan {}\n{}", r["loan_id"].as_str().unwrap_or_default(), txid_line(r)));
        }
        LoanCommand::Repay { loan_id, pay } => {
            let params = pay_params(json!({ "loan_id": loan_id }), &pay);
            let result = call_with_passphrase(client, "loan.repay", params, &pay.passphrase)?;
            print(&result, json, |r| format!("repaid: the collateral comes back\n{}", txid_line(r)));
        }
        LoanCommand::Claim { loan_id, pay } => {
            let params = pay_params(json!({ "loan_id": loan_id }), &pay);
            let result = call_with_passphrase(client, "loan.claim", params, &pay.passphrase)?;
            print(&result, json, |r| format!("claimed the collateral\n{}", txid_line(r)));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use peerchain_primitives::AssetId;

    use super::*;

    #[test]
    fn an_escrow_of_a_token_is_in_base_units_and_of_coins_in_coins() {
        assert_eq!(units("1.5", AssetId::Coin).unwrap(), 150_000_000);
        assert!(units("1.5", "11".repeat(32).parse().unwrap()).is_err());
    }
}
