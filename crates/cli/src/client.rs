//! The JSON-RPC client the CLI's commands are thin wrappers of.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use serde_json::{Value, json};

/// An error the node answered with: its JSON-RPC code and message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct RpcFailure {
    pub(crate) code: i64,
    pub(crate) message: String,
}

/// A connection to a running node.
pub(crate) struct Client {
    url: String,
    /// The cookie's `user:password`.
    login: String,
    authorization: String,
    agent: ureq::Agent,
}

impl Client {
    /// Finds the node of `data_dir`: its RPC address (from `rpc_addr`, or the file the node
    /// writes) and its cookie.
    pub(crate) fn for_data_dir(data_dir: &Path, rpc_addr: Option<SocketAddr>) -> anyhow::Result<Client> {
        let addr = match rpc_addr {
            Some(addr) => addr.to_string(),
            None => {
                let file = data_dir.join(peerchain_node::RPC_ADDR_FILE);
                std::fs::read_to_string(&file).map(|s| s.trim().to_owned()).map_err(|_| {
                    anyhow!(
                        "no running node found for {} (start one with `peerchain node`, or pass --rpc-addr)",
                        data_dir.display()
                    )
                })?
            }
        };
        let cookie_file = data_dir.join(peerchain_node::COOKIE_FILE);
        let cookie = std::fs::read_to_string(&cookie_file).with_context(|| {
            format!("cannot read the RPC cookie {} (is the node running with this --data-dir?)", cookie_file.display())
        })?;
        let login = cookie.trim().to_owned();
        let authorization = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(&login));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(3600)))
            .build()
            .new_agent();
        Ok(Client { url: format!("http://{addr}/"), login, authorization, agent })
    }

    /// The user and password of the cookie (what a browser asks for at the dashboard).
    pub(crate) fn login(&self) -> anyhow::Result<(&str, &str)> {
        self.login.split_once(':').context("the RPC cookie file is damaged")
    }

    /// Calls `method` with named `params`; a JSON-RPC error becomes an error with its message.
    pub(crate) fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let request = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let mut response = self
            .agent
            .post(&self.url)
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/json")
            .send(request.to_string())
            .map_err(|e| anyhow!("cannot reach the node at {}: {e}", self.url))?;
        let status = response.status();
        if status == 401 {
            bail!("the node refused the RPC credentials (stale .cookie? restart the client after the node restarted)");
        }
        let body = response.body_mut().read_to_string().context("reading the node's answer")?;
        let answer: Value = serde_json::from_str(&body)
            .with_context(|| format!("the node answered HTTP {status} with non-JSON: {body}"))?;
        if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("unknown error");
            let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
            return Err(RpcFailure { code, message: message.to_owned() }.into());
        }
        answer.get("result").cloned().ok_or_else(|| anyhow!("the node's answer has no result"))
    }
}
