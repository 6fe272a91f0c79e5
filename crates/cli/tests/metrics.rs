//! `GET /metrics`: behind the RPC login, in the Prometheus text format, and scraped by a real
//! Prometheus (Debian's), whose query API then answers with the node's height.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::{Rpc, TestNode, basic_auth, http_agent, wait_for};

fn get(node: &TestNode, path: &str, auth: Option<&str>) -> (u16, String) {
    let url = format!("{}{}", node.rpc_url(), path.trim_start_matches('/'));
    let mut request = http_agent().get(&url);
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    match request.call() {
        Ok(mut response) => (response.status().as_u16(), response.body_mut().read_to_string().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// The value of the sample `name` (with its labels, if any, as written) in a scrape.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A signed transaction spending an output that never existed.
fn missing_inputs_tx() -> String {
    use peerchain_primitives::{
        Amount, AssetId, Encode, Lock, OutPoint, SecretKey, Transaction, TxId, TxIn, TxOut, Witness,
    };
    let key = SecretKey::from_seed([7; 32]);
    let input = TxIn { prev_out: OutPoint::new(TxId([9; 32]), 0), witness: Witness::Multisig { signatures: vec![] } };
    let output = TxOut {
        asset: AssetId::Coin,
        amount: Amount::from_units(50_000),
        lock: Lock::Key(key.public_key().key_hash()),
    };
    hex::encode(Transaction { version: 1, inputs: vec![input], outputs: vec![output], lock_time: 0 }.to_bytes())
}

#[test]
fn metrics_are_behind_the_login_and_count_what_the_node_does() {
    let node = TestNode::start("regtest", &[]);
    let (status, _) = get(&node, "/metrics", None);
    assert_eq!(status, 401, "no metrics without the login");
    node.json(&["wallet", "create"]);
    node.json(&["chain", "generate", "3"]);
    let rpc = Rpc::new(&node);
    rpc.call("no.such.method", json!({}));
    let auth = basic_auth(node.cookie().trim());
    let (status, text) = get(&node, "/metrics", Some(&auth));
    assert_eq!(status, 200, "{text}");
    assert_eq!(sample(&text, "peerchain_chain_height"), Some(3.0), "{text}");
    assert_eq!(sample(&text, "peerchain_chain_headers"), Some(3.0), "{text}");
    assert_eq!(sample(&text, "peerchain_mempool_transactions"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "peerchain_peers_inbound"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "peerchain_market_offers"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "peerchain_files_uploaded_bytes_total"), Some(0.0), "{text}");
    let generated = sample(&text, r#"peerchain_rpc_calls_total{method="chain.generate",outcome="ok"}"#);
    assert_eq!(generated, Some(1.0), "{text}");
    assert_eq!(sample(&text, r#"peerchain_rpc_calls_total{method="unknown",outcome="error"}"#), Some(1.0), "{text}");
    assert!(!text.contains("no.such.method"), "a caller cannot add labels");
    assert!(text.contains("peerchain_rpc_call_seconds_bucket"), "{text}");
    assert_eq!(sample(&text, "peerchain_chain_blocks_connected_total"), Some(3.0), "{text}");
    assert_eq!(sample(&text, "peerchain_chain_reorganisations_total"), Some(0.0), "{text}");
    assert!(sample(&text, "peerchain_chain_connect_seconds_total").is_some_and(|s| s > 0.0), "{text}");
    // A transaction refused for spending nothing that exists counts under its reason.
    let refused = rpc.call("chain.sendrawtransaction", json!({ "hex": missing_inputs_tx() }));
    assert!(refused["error"].is_object(), "{refused}");
    let (_, text) = get(&node, "/metrics", Some(&auth));
    let missing = sample(&text, r#"peerchain_mempool_refused_total{reason="missing_inputs"}"#);
    assert_eq!(missing, Some(1.0), "{text}");
    // libp2p's own metrics follow, and one `# EOF` ends the whole.
    assert!(text.contains("libp2p_swarm_"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    assert!(text.ends_with("# EOF\n"));
}

/// Stops Prometheus when the test ends, passed or not.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_scrapes_a_node_and_answers_with_its_height() {
    if Command::new("prometheus").arg("--version").output().is_err() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI installs Debian's prometheus (scripts/test)");
        eprintln!("skipped: needs Debian's prometheus");
        return;
    }
    let node = TestNode::start("regtest", &[]);
    node.json(&["wallet", "create"]);
    node.json(&["chain", "generate", "5"]);
    let dir = tempfile::tempdir().unwrap();
    let cookie = node.cookie();
    let (user, password) = cookie.trim().split_once(':').unwrap();
    let target = node.rpc_url().trim_start_matches("http://").trim_end_matches('/').to_owned();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: peerchain\n    metrics_path: /metrics\n    \
         basic_auth:\n      username: '{user}'\n      password: '{password}'\n    static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let query = format!("http://127.0.0.1:{port}/api/v1/query?query=peerchain_chain_height");
    let height = wait_for("Prometheus to scrape the node", Duration::from_secs(60), || {
        let mut response = http_agent().get(&query).call().ok()?;
        let answer: serde_json::Value = serde_json::from_str(&response.body_mut().read_to_string().ok()?).ok()?;
        answer["data"]["result"][0]["value"][1].as_str().map(str::to_owned)
    });
    assert_eq!(height, "5");
}
