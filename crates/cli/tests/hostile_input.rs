//! Bad input of every kind gets a clear error and changes nothing.

mod support;

use serde_json::{Value, json};
use support::{BIN, Rpc, TestNode, basic_auth};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_command_lines_are_refused_with_usage_errors() {
    let output = std::process::Command::new(BIN).args(["--network", "moonnet", "chain", "info"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("unknown network `moonnet`"), "{}", stderr(&output));

    let output = std::process::Command::new(BIN).args(["chain", "block"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));

    let dir = tempfile::tempdir().unwrap();
    let output =
        std::process::Command::new(BIN).arg("--data-dir").arg(dir.path()).args(["chain", "info"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no running node found"), "{}", stderr(&output));
}

#[test]
fn hostile_rpc_requests_get_errors_and_the_node_keeps_serving() {
    let mut node = TestNode::start("regtest", &[]);
    node.json(&["chain", "generate", "3"]);
    let rpc = Rpc::new(&node);
    let info = json!({"jsonrpc": "2.0", "id": 1, "method": "chain.info"}).to_string().into_bytes();

    // No credentials, wrong credentials.
    assert_eq!(rpc.raw(info.clone(), None).0, 401);
    let wrong = basic_auth("__cookie__:guess");
    assert_eq!(rpc.raw(info.clone(), Some(&wrong)).0, 401);

    // Not JSON; not a request; unknown method; bad parameters.
    let (status, text) = rpc.raw(b"{ this is not json".to_vec(), Some(&rpc.auth));
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error"]["code"], -32700);
    let (_, text) = rpc.raw(b"[1, 2]".to_vec(), Some(&rpc.auth));
    let batch: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(batch[0]["error"]["code"], -32600);
    assert_eq!(rpc.call("chain.nonsense", json!({}))["error"]["code"], -32601);
    assert_eq!(rpc.call("chain.block", json!({"block": true}))["error"]["code"], -32602);
    assert_eq!(rpc.call("chain.block", json!({"bogus": 1}))["error"]["code"], -32602);
    assert_eq!(rpc.call("chain.generate", json!({"blocks": 0}))["error"]["code"], -32602);
    assert_eq!(rpc.call("chain.block", json!({"block": 999}))["error"]["code"], -5);

    // Garbage blocks and transactions are rejected with a reason and change nothing.
    let before = node.json(&["chain", "info"]);
    let garbage = rpc.call("chain.submitblock", json!({"hex": "00ff00ff"}));
    assert_eq!(garbage["error"]["code"], -26);
    assert!(garbage["error"]["message"].as_str().unwrap().contains("does not decode"));
    let garbage = rpc.call("chain.sendrawtransaction", json!({"hex": "zz"}));
    assert_eq!(garbage["error"]["code"], -32602);
    let output = node.cli(&["chain", "send", "0100000000"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("does not decode"), "{}", stderr(&output));

    // Wallet calls (`generate` made the wallet): bad parameters of every kind.
    assert_eq!(rpc.call("wallet.create", json!({"mnemonic": "abandon abandon"}))["error"]["code"], -32602);
    assert_eq!(rpc.call("wallet.create", json!({}))["error"]["code"], -8);
    let address = rpc.call("wallet.address", json!({}))["result"]["address"].as_str().unwrap().to_owned();
    for (params, code) in [
        (json!({"address": address, "amount": "12.5"}), -32602),
        (json!({"address": address, "amount": -1}), -32602),
        (json!({"address": address, "amount": 1.5}), -32602),
        (json!({"address": address, "amount": u64::MAX}), -32602),
        (json!({"address": address, "amount": 100_000, "fee_rate": 0}), -32602),
        (json!({"address": "rpc1notanaddress", "amount": 100_000}), -5),
        (json!({"address": address, "amount": 100_000}), -6),
        (json!({"address": address}), -32602),
    ] {
        assert_eq!(rpc.call("wallet.send", params.clone())["error"]["code"], code, "{params}");
    }
    assert_eq!(rpc.call("wallet.history", json!({"limit": "all"}))["error"]["code"], -32602);
    assert_eq!(rpc.call("wallet.address", json!({"new": "yes"}))["error"]["code"], -32602);

    // File methods: relative or missing paths, bad ids, wrong types, unknown downloads.
    let id = "ab".repeat(32);
    for (method, params, code) in [
        ("file.add", json!({"path": "relative.txt"}), -32602),
        ("file.add", json!({"path": "/no/such/file"}), -32602),
        ("file.add", json!({"path": "/", "keywords": "x"}), -32602),
        ("file.get", json!({"id": "zz", "path": "/tmp/x"}), -32602),
        ("file.get", json!({"id": id, "path": "out"}), -32602),
        ("file.get", json!({"id": id, "path": "/no/such/dir/out"}), -32602),
        ("file.status", json!({"id": id}), -5),
        ("file.status", json!({"id": id, "wait_ms": 10_001}), -32602),
        ("file.status", json!({"id": id, "wait_ms": "soon"}), -32602),
        ("file.search", json!({"words": [1, 2]}), -32602),
        ("file.search", json!({"words": ["a"]}), -32602),
        ("file.search", json!({"words": ["movie"], "via": "carrier pigeon"}), -32602),
        ("file.remove", json!({"id": id}), -5),
    ] {
        assert_eq!(rpc.call(method, params.clone())["error"]["code"], code, "{method} {params}");
    }

    // An oversized body is refused before it is read whole.
    let huge = vec![b' '; 20 << 20];
    let (status, _) = rpc.raw(huge, Some(&rpc.auth));
    assert!(status == 413 || status == 0, "status {status}");

    assert_eq!(node.json(&["chain", "info"]), before, "nothing changed and the node still answers");
    assert!(node.json(&["wallet", "history"]).as_array().unwrap().iter().all(|e| e["category"] == "mined"));
    node.stop();
}

#[test]
fn a_data_dir_of_another_network_is_refused() {
    let mut node = TestNode::start("regtest", &[]);
    node.stop();
    let output = std::process::Command::new(BIN)
        .args(["--network", "devnet", "--data-dir"])
        .arg(node.path())
        .args(["node", "--rpc-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("use the matching --network"), "{}", stderr(&output));
}

/// Review L4: the RPC server authenticates before it reads a body, answers only to its own
/// names (DNS rebinding), and throttles failed logins; the cookie still works throughout.
#[test]
fn the_rpc_server_checks_logins_before_bodies_and_answers_only_to_its_own_names() {
    use std::io::{Read, Write};
    let node = TestNode::start("regtest", &[]);
    let rpc = Rpc::new(&node);
    let address = node.rpc_url().trim_start_matches("http://").trim_end_matches('/').to_owned();

    // 64 connections announce 16 MiB bodies and send none: each is refused at once.
    let mut sockets = Vec::new();
    for _ in 0..64 {
        let mut socket = std::net::TcpStream::connect(&address).unwrap();
        socket.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            16 << 20
        );
        socket.write_all(head.as_bytes()).unwrap();
        sockets.push(socket);
    }
    for mut socket in sockets {
        let mut answer = [0u8; 12];
        socket.read_exact(&mut answer).expect("an answer without the body being sent");
        assert_eq!(&answer, b"HTTP/1.1 401", "{}", String::from_utf8_lossy(&answer));
    }

    // Another host name, with the right login: refused.
    let info = json!({"jsonrpc": "2.0", "id": 1, "method": "chain.info"}).to_string();
    let response = support::http_agent()
        .post(&rpc.url)
        .header("Host", "rebound.example")
        .header("Authorization", &rpc.auth)
        .send(info.as_bytes())
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);

    // Guessing: after a few failures a second, more are answered 429; the cookie still works.
    let wrong = basic_auth("__cookie__:guess");
    let statuses: Vec<u16> = (0..30).map(|_| rpc.raw(info.clone().into_bytes(), Some(&wrong)).0).collect();
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    assert!(statuses.contains(&429), "failed logins are throttled: {statuses:?}");
    assert_eq!(rpc.call("chain.info", json!({}))["result"]["height"], 0);
}

/// Review I1: the data directory (wallet, node key, cookie, chain) is never shared, nor a
/// folder holding it, and downloads never land in it, but for its `downloads` folder.
#[test]
fn the_data_directory_is_never_shared_nor_written_by_a_download() {
    let node = TestNode::start("regtest", &[]);
    let rpc = Rpc::new(&node);
    let data_dir = node.path().canonicalize().unwrap();
    let id = "ab".repeat(32);
    for (method, params) in [
        ("file.add", json!({"path": data_dir})),
        ("file.add", json!({"path": data_dir.join("wallet.json")})),
        ("file.add", json!({"path": data_dir.parent().unwrap()})),
        ("file.get", json!({"id": id, "path": data_dir.join("chain.redb")})),
        ("file.get", json!({"id": id, "path": data_dir.join("node.key")})),
    ] {
        let answer = rpc.call(method, params.clone());
        assert_eq!(answer["error"]["code"], -32602, "{method} {params}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains("data directory"), "{answer}");
    }
    std::fs::create_dir(data_dir.join("downloads")).unwrap();
    let answer = rpc.call("file.get", json!({"id": id, "path": data_dir.join("downloads/film.mkv")}));
    assert!(answer["result"]["state"].is_string(), "its downloads folder is allowed: {answer}");
    let output = node.cli(&["file", "add", data_dir.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("data directory"), "{}", stderr(&output));
}

/// `chain reconsider`: clear answers for a hash nobody knows and for one that is not a hash.
#[test]
fn reconsidering_an_unknown_block_is_a_clear_error() {
    let node = TestNode::start("regtest", &[]);
    node.json(&["chain", "generate", "1"]);
    let output = node.cli(&["chain", "reconsider", &"ab".repeat(32)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not found"), "{}", stderr(&output));
    let output = node.cli(&["chain", "reconsider", "tip"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not a 64-hex-digit block hash"), "{}", stderr(&output));
    // A known, valid block: nothing to clear, the tip stays.
    let tip = node.json(&["chain", "info"])["best_hash"].as_str().unwrap().to_owned();
    let answer = node.json(&["chain", "reconsider", &tip]);
    assert_eq!(answer["best_hash"], tip.as_str());
}
