//! `peerchain devnet`: real node processes that find each other, mine one chain, stop cleanly
//! on SIGTERM, and resume from the same directory.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{BIN, wait_for};

fn info(dir: &std::path::Path, node: usize) -> Option<Value> {
    let output = Command::new(BIN)
        .args(["--network", "devnet", "--data-dir"])
        .arg(dir.join(format!("node-{node}")))
        .args(["chain", "info", "--json"])
        .output()
        .ok()?;
    output.status.success().then(|| serde_json::from_slice(&output.stdout).ok()).flatten()
}

fn run_devnet(dir: &std::path::Path, base_port: u16) -> std::process::Child {
    Command::new(BIN)
        .args(["devnet", "--nodes", "3", "--base-port", &base_port.to_string(), "--dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Stops the devnet when dropped, so that a failing test leaves no process behind.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

fn stop(child: &mut std::process::Child) {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = wait_for("devnet to stop", Duration::from_secs(60), || child.try_wait().unwrap());
    assert!(status.success(), "devnet exited with {status}");
}

#[test]
fn devnet_nodes_mine_one_chain_stop_cleanly_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    // A port range of its own: below the kernel's ephemeral range (32768 and up), from which
    // other tests' port-0 listeners draw, and away from the devnet default (29400).
    let base_port = 20_000 + (std::process::id() % 400) as u16 * 10;
    let mut devnet = Running(run_devnet(dir.path(), base_port));
    let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stdout = devnet.0.stdout.take().unwrap();
    let reader = printed.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            reader.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !(1..=3).all(|n| {
        info(dir.path(), n).is_some_and(|i| i["height"].as_u64() >= Some(20) && i["peers"].as_u64() >= Some(2))
    }) {
        if std::time::Instant::now() > deadline {
            let logs: Vec<String> = (1..=3)
                .map(|n| {
                    let log =
                        std::fs::read_to_string(dir.path().join(format!("node-{n}/node.log"))).unwrap_or_default();
                    let tail: Vec<&str> = log
                        .lines()
                        .filter(|l| !l.contains("mined a block") && !l.contains("Not publishing"))
                        .rev()
                        .take(25)
                        .collect();
                    format!(
                        "node {n}: {:?}\n{}",
                        info(dir.path(), n),
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    )
                })
                .collect();
            panic!("nodes did not all mine and connect in time:\n{}", logs.join("\n\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Each node's dashboard link, with its login.
    for n in 1..=3 {
        let cookie = std::fs::read_to_string(dir.path().join(format!("node-{n}/.cookie"))).unwrap();
        let (user, password) = cookie.trim().split_once(':').unwrap();
        let text = printed.lock().unwrap().clone();
        assert!(
            text.lines().any(|l| l.contains(&format!("node {n} "))
                && l.contains("http://127.0.0.1:")
                && l.contains(user)
                && l.ends_with(password)),
            "{text}"
        );
    }
    // They converge on one tip (briefly apart while a block propagates).
    wait_for("one tip", Duration::from_secs(60), || {
        let tips: Vec<Value> = (1..=3).filter_map(|n| info(dir.path(), n)).map(|i| i["best_hash"].clone()).collect();
        (tips.len() == 3 && tips.iter().all(|t| *t == tips[0])).then_some(())
    });
    // The nodes pay each other: node 1's wallet pays node 2's once its rewards mature.
    wait_for("a confirmed payment between nodes", Duration::from_secs(90), || {
        let output = Command::new(BIN)
            .args(["--network", "devnet", "--data-dir"])
            .arg(dir.path().join("node-2"))
            .args(["wallet", "history", "--json"])
            .output()
            .ok()?;
        let history: Value = serde_json::from_slice(&output.stdout).ok()?;
        history
            .as_array()?
            .iter()
            .any(|e| e["category"] == "receive" && e["confirmations"].as_u64() > Some(0))
            .then_some(())
    });
    // Node 1 shares a file; the others find it by keyword and download it.
    let shared = std::fs::read(dir.path().join("shared/devnet-sample.bin")).unwrap();
    for n in 2..=3 {
        let copy = dir.path().join(format!("node-{n}/downloads/devnet-sample.bin"));
        wait_for("the shared file to be downloaded", Duration::from_secs(90), || {
            std::fs::read(&copy).ok().filter(|b| *b == shared).map(|_| ())
        });
    }
    // Node 1 issues a token and offers it; another node's take confirms on chain.
    wait_for("a confirmed swap", Duration::from_secs(120), || {
        let output = Command::new(BIN)
            .args(["--network", "devnet", "--data-dir"])
            .arg(dir.path().join("node-3"))
            .args(["market", "trades", "--json"])
            .output()
            .ok()?;
        let trades: Value = serde_json::from_slice(&output.stdout).ok()?;
        (!trades.as_array()?.is_empty()).then_some(())
    });
    // Node 2 pays node 3 through an escrow it releases (node 3's node completes it); node 1
    // lends its token to node 3.
    let listed = |n: usize, what: &str| -> Option<Vec<Value>> {
        let output = Command::new(BIN)
            .args(["--network", "devnet", "--data-dir"])
            .arg(dir.path().join(format!("node-{n}")))
            .args([what, "list", "--json"])
            .output()
            .ok()?;
        serde_json::from_slice::<Value>(&output.stdout).ok()?.as_array().cloned()
    };
    wait_for("a released escrow", Duration::from_secs(120), || {
        listed(3, "escrow")?.iter().any(|e| e["state"] == "released" && e["role"] == "seller").then_some(())
    });
    wait_for("a loan", Duration::from_secs(120), || {
        listed(3, "loan")?.iter().any(|l| l["role"] == "borrower").then_some(())
    });
    // Node 1 sells a file; the last node buys it, paying as the pieces arrive, and node 1's
    // node closes the channel: one coin split between them on chain.
    wait_for("a paid download", Duration::from_secs(120), || {
        let log = std::fs::read_to_string(dir.path().join("node-3/node.log")).ok()?;
        log.contains("paid download complete").then_some(())
    });
    wait_for("the channel closed by the seller's node", Duration::from_secs(60), || {
        let log = std::fs::read_to_string(dir.path().join("node-1/node.log")).ok()?;
        log.contains("payment channel closed").then_some(())
    });
    wait_for("devnet to report the paid file", Duration::from_secs(30), || {
        printed.lock().unwrap().contains("paid file: bought by the last node for 0.5 coins").then_some(())
    });
    let height_before = info(dir.path(), 1).unwrap()["height"].as_u64().unwrap();
    stop(&mut devnet.0);
    for n in 1..=3 {
        assert!(info(dir.path(), n).is_none(), "node {n} stopped");
        let log = std::fs::read_to_string(dir.path().join(format!("node-{n}/node.log"))).unwrap();
        assert!(log.contains("chain state saved"), "node {n} shut down cleanly");
    }

    // The same directory resumes the same network.
    let mut devnet = Running(run_devnet(dir.path(), base_port));
    wait_for("the network to come back", Duration::from_secs(60), || info(dir.path(), 1));
    let resumed = info(dir.path(), 1).unwrap()["height"].as_u64().unwrap();
    assert!(resumed >= height_before, "resumed at {resumed}, stopped at {height_before}");
    stop(&mut devnet.0);
}

#[test]
fn devnet_nodes_stop_even_when_the_devnet_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let base_port = 24_000 + (std::process::id() % 400) as u16 * 10;
    let mut devnet = Running(run_devnet(dir.path(), base_port));
    wait_for("the nodes to answer", Duration::from_secs(60), || {
        (1..=3).all(|n| info(dir.path(), n).is_some()).then_some(())
    });
    Command::new("kill").args(["-KILL", &devnet.0.id().to_string()]).status().unwrap();
    devnet.0.wait().unwrap();
    // RPC goes first when a node stops; its chain is saved last.
    for n in 1..=3 {
        wait_for(&format!("node {n} to stop by itself and save its chain"), Duration::from_secs(30), || {
            let log = std::fs::read_to_string(dir.path().join(format!("node-{n}/node.log"))).ok()?;
            (info(dir.path(), n).is_none() && log.contains("chain state saved")).then_some(())
        });
    }
}
