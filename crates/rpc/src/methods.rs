//! Every RPC method: one table of name, parameters and handler, in the order of the docs; the
//! handlers live in one module per namespace.

mod chain;
mod contracts;
mod file;
mod market;
mod mempool;
mod node;
mod token;
mod wallet;

use serde_json::Value;

pub(crate) use chain::decode_hex;
pub use file::MAX_STATUS_WAIT_MS;
pub(crate) use file::entry_json;
pub use wallet::ChainReader;
pub(crate) use wallet::amount_param;

use crate::params::Params;
use crate::services::BoxFuture;
use crate::{Context, RpcError};

/// A method: its name, its parameters in positional order, and its handler.
pub struct Method {
    /// The name, `namespace.verb`.
    pub name: &'static str,
    /// The parameters, in the order positional calls give them.
    pub params: &'static [&'static str],
    call: for<'a> fn(&'a Context, Params) -> BoxFuture<'a, Result<Value, RpcError>>,
}

/// A table entry for `$handler`, an `async fn(&Context, &Params) -> Result<Value, RpcError>`.
macro_rules! method {
    ($name:literal, [$($param:literal),*], $handler:path) => {
        Method {
            name: $name,
            params: &[$($param),*],
            call: |context, params| Box::pin(async move { $handler(context, &params).await }),
        }
    };
}

/// Every method the server answers, in the order of the docs.
pub const METHODS: &[Method] = &[
    method!("chain.info", [], chain::info),
    method!("chain.block", ["block"], chain::block),
    method!("chain.tx", ["txid"], chain::tx),
    method!("chain.blocks", ["limit", "before"], chain::blocks),
    method!("chain.address", ["address", "limit"], chain::address),
    method!("chain.verify", [], chain::verify),
    method!("chain.submitblock", ["hex"], chain::submit_block),
    method!("chain.sendrawtransaction", ["hex"], chain::send_raw_transaction),
    method!("chain.generate", ["blocks", "address"], chain::generate),
    method!("chain.reconsiderblock", ["hash"], chain::reconsider_block),
    method!("mempool.info", [], mempool::info),
    method!("mempool.estimatefee", ["blocks"], mempool::estimate_fee),
    method!("node.id", [], node::id),
    method!("node.peers", [], node::peers),
    method!("node.connect", ["address"], node::connect),
    method!("node.stop", [], node::stop),
    method!("wallet.create", ["passphrase", "mnemonic"], wallet::create),
    method!("wallet.restore", ["mnemonic", "passphrase"], wallet::restore),
    method!("wallet.address", ["new", "passphrase"], wallet::address),
    method!("wallet.balance", [], wallet::balance),
    method!("wallet.send", ["address", "amount", "fee_rate", "passphrase"], wallet::send),
    method!("wallet.history", ["limit"], wallet::history),
    method!("wallet.rescan", ["from_height"], wallet::rescan),
    method!("wallet.key", ["passphrase"], token::key),
    method!("token.issue", ["name", "supply", "decimals", "mintable", "fee_rate", "passphrase"], token::issue),
    method!("token.list", [], token::list),
    method!("token.balance", [], token::balance),
    method!("token.send", ["address", "amount", "asset", "fee_rate", "passphrase"], token::send),
    method!("token.burn", ["amount", "asset", "fee_rate", "passphrase"], token::burn),
    method!("token.mint", ["asset", "amount", "fee_rate", "passphrase"], token::mint),
    method!(
        "market.offer",
        [
            "give_amount",
            "give_asset",
            "want_amount",
            "want_asset",
            "expires",
            "ladder",
            "step_percent",
            "fee_rate",
            "passphrase"
        ],
        market::offer
    ),
    method!("market.info", [], market::info),
    method!("market.book", ["give", "want", "limit"], market::book),
    method!("market.take", ["offer_ids", "fee_rate", "passphrase"], market::take),
    method!("market.cancel", ["offer_id", "passphrase"], market::cancel),
    method!("market.trades", ["give", "want", "limit"], market::trades),
    method!(
        "escrow.open",
        ["seller_key", "amount", "asset", "arbiter_key", "timeout", "address_only", "fee_rate", "passphrase"],
        contracts::escrow_open
    ),
    method!("escrow.list", [], contracts::escrow_list),
    method!("escrow.release", ["escrow_id", "passphrase"], contracts::escrow_release),
    method!("escrow.refund", ["escrow_id", "fee_rate", "passphrase"], contracts::escrow_refund),
    method!("escrow.dispute", ["escrow_id", "passphrase"], contracts::escrow_dispute),
    method!("escrow.resolve", ["escrow_id", "to", "passphrase"], contracts::escrow_resolve),
    method!(
        "loan.offer",
        [
            "amount",
            "asset",
            "repay",
            "term",
            "collateral_amount",
            "collateral_asset",
            "expires",
            "fee_rate",
            "passphrase"
        ],
        contracts::loan_offer
    ),
    method!("loan.book", [], contracts::loan_book),
    method!("loan.list", [], contracts::loan_list),
    method!("loan.record", ["address"], contracts::loan_record),
    method!("loan.take", ["offer_id", "fee_rate", "passphrase"], contracts::loan_take),
    method!("loan.repay", ["loan_id", "fee_rate", "passphrase"], contracts::loan_repay),
    method!("loan.claim", ["loan_id", "fee_rate", "passphrase"], contracts::loan_claim),
    method!("file.add", ["path", "keywords"], file::add),
    method!("file.get", ["id", "path", "pay_up_to", "passphrase"], file::get),
    method!("file.sell", ["id", "price", "passphrase"], file::sell),
    method!("file.status", ["id", "wait_ms"], file::status),
    method!("file.search", ["words", "via"], file::search),
    method!("file.list", [], file::list),
    method!("file.remove", ["id"], file::remove),
];

/// The method named `name`.
pub(crate) fn find(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|method| method.name == name)
}

/// Calls `method` with `params`: the parameters are checked against the method's names first.
pub(crate) async fn call(context: &Context, method: &str, params: Value) -> Result<Value, RpcError> {
    let Some(method) = find(method) else {
        return Err(RpcError::new(RpcError::METHOD_NOT_FOUND, format!("unknown method `{method}`")));
    };
    let params = Params::new(params, method.params);
    params.validate()?;
    (method.call)(context, params).await
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
        let served: Vec<&str> = METHODS.iter().map(|method| method.name).collect();
        assert_eq!(documented, served);
    }
}
