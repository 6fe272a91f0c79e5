//! The server's handling of a request's untrusted bytes, up to the point where a method would
//! act: JSON, batches, the method table and every parameter reader. The fuzz target
//! `rpc_request` (`fuzz/`) runs it on arbitrary bodies; it must never panic.

use peerchain_primitives::{Address, Block, BlockHash, ContentId, Network, Transaction};
use serde_json::Value;

use crate::methods::{METHODS, decode_hex};
use crate::params::Params;

/// Reads `body` as the server does and runs every parameter reader on each request in it.
pub fn check_request(body: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return };
    let requests = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    for request in requests {
        let Value::Object(mut object) = request else { continue };
        let Some(Value::String(method)) = object.remove("method") else { continue };
        let Some(entry) = METHODS.iter().find(|entry| entry.name == method) else { continue };
        let names = entry.params;
        let params = Params::new(object.remove("params").unwrap_or(Value::Null), names);
        if params.validate().is_err() {
            continue;
        }
        for name in names.iter() {
            let _ = params.optional_u64(name);
            let _ = params.optional_bool(name);
            let _ = crate::methods::amount_param(&params, name);
            if let Ok(Some(text)) = params.optional_str(name) {
                let _ = text.parse::<BlockHash>();
                let _ = text.parse::<ContentId>();
                let _ = Address::parse(text, Network::Regtest);
                let _ = decode_hex::<Transaction>(text, name);
                let _ = decode_hex::<Block>(text, name);
            }
        }
    }
}
