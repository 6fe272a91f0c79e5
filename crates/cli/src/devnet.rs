//! `peerchain devnet`: a local network of real node processes on 127.0.0.1, all mining,
//! paying each other (every few seconds one node's wallet pays the next node's), sharing a
//! file (node 1 shares one, every other node finds it by keyword and downloads it), and
//! trading: node 1 issues a token and keeps a ladder of offers in the book, the others take
//! the cheapest in turn; and contracts: node 2 pays node 3 through escrows it releases, and
//! node 1 lends its token to the last node against coins, repaid or claimed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::client::Client;

/// What `devnet` was asked for.
pub(crate) struct Options {
    pub(crate) nodes: usize,
    pub(crate) dir: PathBuf,
    pub(crate) base_port: u16,
}

struct Member {
    index: usize,
    data_dir: PathBuf,
    p2p: String,
    rpc: String,
    child: Child,
}

fn data_dir_of(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("node-{index}"))
}

pub(crate) fn run(options: Options) -> anyhow::Result<ExitCode> {
    if options.nodes == 0 || options.nodes > 50 {
        bail!("--nodes must be from 1 to 50");
    }
    std::fs::create_dir_all(&options.dir).with_context(|| format!("creating {}", options.dir.display()))?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(run_async(options))
}

async fn run_async(options: Options) -> anyhow::Result<ExitCode> {
    // Correctness: signals are caught from the start, so a Ctrl-C while nodes come up still
    // stops every node that was started.
    let stop = CancellationToken::new();
    tokio::spawn(crate::stop_on_signal(stop.clone()));
    let exe = std::env::current_exe().context("finding the peerchain binary")?;
    let first_p2p = format!("/ip4/127.0.0.1/tcp/{}", options.base_port + 1);
    let mut members: Vec<Member> = Vec::with_capacity(options.nodes);
    for index in 1..=options.nodes {
        let data_dir = data_dir_of(&options.dir, index);
        std::fs::create_dir_all(&data_dir)?;
        let _ = std::fs::remove_file(data_dir.join(peerchain_node::RPC_ADDR_FILE));
        let p2p = format!("/ip4/127.0.0.1/tcp/{}", options.base_port + index as u16);
        let rpc = format!("127.0.0.1:{}", options.base_port + 100 + index as u16);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(data_dir.join("node.log"))?;
        let mut command = Command::new(&exe);
        command
            .args(["--network", "devnet", "--data-dir"])
            .arg(&data_dir)
            .args(["--rpc-addr", &rpc, "node", "--listen", &p2p, "--no-mdns", "--mine", "--mining-threads", "1"])
            // Correctness: the node stops when this process's end of its stdin closes, so no
            // node outlives the devnet, even one killed by SIGKILL.
            .arg("--stop-with-stdin")
            .stdin(std::process::Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        if index > 1 {
            // Every node dials the first and its predecessor: a connected network from the start.
            command.args(["--bootstrap", &first_p2p]);
            if index > 2 {
                command.args(["--bootstrap", &members[index - 2].p2p]);
            }
        }
        let child = command.spawn().with_context(|| format!("starting node {index}"))?;
        members.push(Member { index, data_dir, p2p, rpc, child });
    }

    let mut table = Vec::new();
    for member in &mut members {
        let client = tokio::select! {
            client = wait_for_rpc(member) => client?,
            _ = stop.cancelled() => break,
        };
        let id = tokio::task::block_in_place(|| client.call("node.id", json!({})))?;
        table.push((member.index, id["peer_id"].as_str().unwrap_or_default().to_owned()));
    }
    println!("peerchain devnet: {} nodes, logs in each data directory (node.log)", members.len());
    println!("{:<5} {:<54} {:<28} {:<17} data directory", "node", "peer id", "p2p address", "rpc address");
    for (member, (_, peer_id)) in members.iter().zip(&table) {
        println!(
            "{:<5} {:<54} {:<28} {:<17} {}",
            member.index,
            peer_id,
            member.p2p,
            member.rpc,
            member.data_dir.display()
        );
    }
    println!("dashboards and metrics (/metrics), each with its own login:");
    for member in &members {
        // The cookie is `user:secret`, rewritten at every start of the node.
        let cookie = std::fs::read_to_string(member.data_dir.join(".cookie")).unwrap_or_default();
        let (user, password) = cookie.trim().split_once(':').unwrap_or(("__cookie__", "?"));
        println!("  node {:<3} http://{}/   user {user}   password {password}", member.index, member.rpc);
    }
    println!(
        "query a node with: peerchain --data-dir {} chain info    (Ctrl-C stops them all)",
        members[0].data_dir.display()
    );

    let mut status = tokio::time::interval(Duration::from_secs(5));
    let mut payments = Payments::default();
    let mut sharing = Sharing::default();
    let mut paid_file = PaidFile::default();
    let mut trading = Trading::default();
    let mut contracts = Contracts::default();
    let exit = loop {
        tokio::select! {
            _ = stop.cancelled() => break ExitCode::SUCCESS,
            _ = status.tick() => {
                if let Some(dead) = members.iter_mut().find_map(|m| m.child.try_wait().ok().flatten().map(|s| (m.index, s))) {
                    eprintln!("node {} exited ({}); stopping the devnet (see its node.log)", dead.0, dead.1);
                    break ExitCode::FAILURE;
                }
                let line = tokio::task::block_in_place(|| {
                    payments.next(&members);
                    sharing.next(&options.dir, &members);
                    paid_file.next(&options.dir, &members);
                    trading.next(&members);
                    contracts.next(&members, trading.asset.as_deref());
                    format!(
                        "{}   {}   {}   {}   {}   {}",
                        status_line(&members),
                        payments.summary(&members),
                        sharing.summary(),
                        paid_file.summary(),
                        trading.summary(),
                        contracts.summary()
                    )
                });
                println!("{line}");
            }
        }
    };
    println!("stopping {} nodes", members.len());
    for member in &members {
        if let Some(pid) = member.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
    }
    for member in &mut members {
        match tokio::time::timeout(Duration::from_secs(30), member.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!("node {} did not stop in time; killing it", member.index);
                let _ = member.child.kill().await;
            }
        }
    }
    Ok(exit)
}

async fn wait_for_rpc(member: &mut Member) -> anyhow::Result<Client> {
    for _ in 0..600 {
        if let Some(status) = member.child.try_wait()? {
            bail!(
                "node {} exited at start ({status}); see {}",
                member.index,
                member.data_dir.join("node.log").display()
            );
        }
        if member.data_dir.join(peerchain_node::RPC_ADDR_FILE).exists()
            && let Ok(client) = Client::for_data_dir(&member.data_dir, None)
            && tokio::task::block_in_place(|| client.call("chain.info", json!({}))).is_ok()
        {
            return Ok(client);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("node {} did not answer RPC within a minute", member.index)
}

fn status_line(members: &[Member]) -> String {
    let parts: Vec<String> = members
        .iter()
        .map(|m| match Client::for_data_dir(&m.data_dir, None).and_then(|c| c.call("chain.info", json!({}))) {
            Ok(info) => format!("{}:h{}/p{}", m.index, info["height"], info["peers"]),
            Err(_) => format!("{}:?", m.index),
        })
        .collect();
    let tips: std::collections::HashSet<Value> = members
        .iter()
        .filter_map(|m| Client::for_data_dir(&m.data_dir, None).ok()?.call("chain.info", json!({})).ok())
        .map(|info| info["best_hash"].clone())
        .collect();
    format!("heights/peers {}   {}", parts.join(" "), if tips.len() == 1 { "all on one tip" } else { "converging" })
}

/// The payments the devnet makes between its nodes' wallets, round robin.
#[derive(Default)]
struct Payments {
    round: usize,
    /// Sent and not yet seen confirmed: (txid, paying node index).
    pending: Vec<(String, usize)>,
    sent: usize,
}

impl Payments {
    /// Node `round % n` pays the next node a small amount, once its rewards have matured
    /// (until then the wallet answers "insufficient funds" and the turn passes).
    fn next(&mut self, members: &[Member]) {
        if members.len() < 2 {
            return;
        }
        let from = &members[self.round % members.len()];
        let to = &members[(self.round + 1) % members.len()];
        self.round += 1;
        let Ok(address) = call(to, "wallet.address", json!({})) else { return };
        // 1.00xyz coins, so that each payment is told apart in histories.
        let amount = 100_000_000 + (self.round as u64 % 1_000) * 1_000;
        if let Ok(sent) = call(from, "wallet.send", json!({ "address": address["address"], "amount": amount }))
            && let Some(txid) = sent["txid"].as_str()
        {
            self.pending.push((txid.to_owned(), from.index));
            self.sent += 1;
        }
    }

    fn summary(&mut self, members: &[Member]) -> String {
        self.pending.retain(|(txid, from)| {
            let confirmed = members
                .iter()
                .find(|m| m.index == *from)
                .and_then(|m| Client::for_data_dir(&m.data_dir, None).ok())
                .and_then(|c| c.call("chain.tx", json!({ "txid": txid })).ok())
                .is_some_and(|tx| tx["confirmations"].as_u64() > Some(0));
            !confirmed
        });
        format!("payments {} sent, {} confirmed", self.sent, self.sent - self.pending.len())
    }
}

/// The file the devnet shares: node 1 adds it, the others search for it and download it.
#[derive(Default)]
struct Sharing {
    /// The shared file's content id, once added.
    id: Option<String>,
    /// Nodes (by index) whose download is started, and whether it is done.
    downloads: Vec<(usize, bool)>,
}

/// The keyword the devnet's file is found by.
const SHARED_KEYWORD: &str = "devnet";
/// The size of the devnet's file.
const SHARED_BYTES: usize = 8 << 20;

impl Sharing {
    fn next(&mut self, dir: &Path, members: &[Member]) {
        let Some(id) = self.id.clone() else {
            // The same directory resumes with the same file: its bytes depend only on the name.
            let path = dir.join("shared").join("devnet-sample.bin");
            if !write_sample(&path, SHARED_BYTES, 0x9e37_79b9_7f4a_7c15) {
                return;
            }
            if let Ok(added) = call(&members[0], "file.add", json!({ "path": path, "keywords": [SHARED_KEYWORD] })) {
                self.id = added["id"].as_str().map(str::to_owned);
            }
            return;
        };
        for member in &members[1..] {
            match self.downloads.iter_mut().find(|(index, _)| *index == member.index) {
                Some((_, done)) if !*done => {
                    *done = call(member, "file.status", json!({ "id": id })).is_ok_and(|s| s["state"] == "done");
                }
                Some(_) => {}
                None => {
                    // Found by keyword, as a user would, then fetched by id.
                    let found = call(member, "file.search", json!({ "words": [SHARED_KEYWORD] })).is_ok_and(|hits| {
                        hits.as_array().is_some_and(|h| h.iter().any(|hit| hit["id"] == id.as_str()))
                    });
                    let output = member.data_dir.join("downloads").join("devnet-sample.bin");
                    if found
                        && std::fs::create_dir_all(output.parent().expect("a parent")).is_ok()
                        && call(member, "file.get", json!({ "id": id, "path": output })).is_ok()
                    {
                        self.downloads.push((member.index, false));
                    }
                }
            }
        }
    }

    fn summary(&self) -> String {
        match &self.id {
            None => "file: not shared yet".into(),
            Some(_) => {
                let done = self.downloads.iter().filter(|(_, done)| *done).count();
                format!("file: shared by node 1, downloaded by {done}")
            }
        }
    }
}

/// Writes `len` pseudo-random bytes of `seed` to `path` unless it exists; whether it does now.
fn write_sample(path: &Path, len: usize, seed: u64) -> bool {
    if path.exists() {
        return true;
    }
    let mut bytes = vec![0u8; len];
    let mut state = seed;
    for chunk in bytes.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    std::fs::create_dir_all(path.parent().expect("a parent")).and_then(|()| std::fs::write(path, bytes)).is_ok()
}

/// A paid file: node 1 sells a file, the last node buys it, paying as pieces arrive.
#[derive(Default)]
struct PaidFile {
    /// The file's content id, once on sale.
    id: Option<String>,
    /// Whether the buyer's download was started.
    started: bool,
    /// What it paid, once done.
    paid: Option<u64>,
}

/// The paid file's size and price (half a coin).
const PAID_BYTES: usize = 3 << 20;
const PAID_PRICE: u64 = 50_000_000;

impl PaidFile {
    fn next(&mut self, dir: &Path, members: &[Member]) {
        let Some(id) = self.id.clone() else {
            let path = dir.join("shared").join("devnet-premium.bin");
            if write_sample(&path, PAID_BYTES, 0x2545_f491_4f6c_dd1d)
                && let Ok(added) = call(&members[0], "file.add", json!({ "path": path }))
                && let Some(id) = added["id"].as_str()
                && call(&members[0], "file.sell", json!({ "id": id, "price": PAID_PRICE })).is_ok()
            {
                self.id = Some(id.to_owned());
            }
            return;
        };
        let buyer = members.last().expect("a devnet has nodes");
        if self.paid.is_some() || members.len() < 2 {
            return;
        }
        if !self.started {
            // Once the buyer has a coin to spend (mining rewards mature after 10 blocks).
            let rich = call(buyer, "wallet.balance", json!({}))
                .is_ok_and(|b| b["confirmed"].as_u64().is_some_and(|c| c > 2 * PAID_PRICE));
            let output = buyer.data_dir.join("downloads").join("devnet-premium.bin");
            self.started = rich
                && std::fs::create_dir_all(output.parent().expect("a parent")).is_ok()
                && call(buyer, "file.get", json!({ "id": id, "path": output, "pay_up_to": 2 * PAID_PRICE })).is_ok();
            return;
        }
        match call(buyer, "file.status", json!({ "id": id })) {
            Ok(status) if status["state"] == "done" => self.paid = status["paid"].as_u64(),
            // Tried again at the next turn.
            Ok(status) if status["state"] == "failed" => self.started = false,
            _ => {}
        }
    }

    fn summary(&self) -> String {
        match (&self.id, self.paid) {
            (None, _) => "paid file: not on sale yet".into(),
            (Some(_), None) => "paid file: on sale by node 1".into(),
            (Some(_), Some(paid)) => format!("paid file: bought by the last node for {} coins", paid as f64 / 1e8),
        }
    }
}

/// The token the devnet trades.
const TOKEN_NAME: &str = "devgold";

/// The market the devnet keeps going: node 1 issues a token and offers it in ladders for
/// coins; the other nodes take the cheapest offer in turn.
#[derive(Default)]
struct Trading {
    /// The token, once issued.
    asset: Option<String>,
    round: usize,
    takes: usize,
}

impl Trading {
    fn next(&mut self, members: &[Member]) {
        let maker = &members[0];
        let Some(asset) = self.asset.clone() else {
            // Issued once the first rewards mature (until then: insufficient funds).
            let existing = call(maker, "token.list", json!({})).ok().and_then(|list| {
                list.as_array()?
                    .iter()
                    .find(|t| t["name"] == TOKEN_NAME)
                    .and_then(|t| t["asset"].as_str().map(str::to_owned))
            });
            self.asset = existing.or_else(|| {
                let issued =
                    call(maker, "token.issue", json!({ "name": TOKEN_NAME, "supply": 1_000_000_000u64 })).ok()?;
                issued["asset"].as_str().map(str::to_owned)
            });
            return;
        };
        self.round += 1;
        let book = call(maker, "market.book", json!({ "give": asset, "want": "coin" })).ok();
        let mine =
            book.as_ref().and_then(Value::as_array).map_or(0, |b| b.iter().filter(|o| o["mine"] == true).count());
        // A fresh ladder when the book runs low: three offers of 1,000 at rising prices.
        if mine < 2 && self.round.is_multiple_of(3) {
            let _ = call(
                maker,
                "market.offer",
                json!({
                    "give_amount": 3_000, "give_asset": asset, "want_amount": 150_000_000u64, "want_asset": "coin",
                    "expires": 300, "ladder": 3, "step_percent": 5.0,
                }),
            );
        }
        // Another node takes the cheapest offer it sees.
        if members.len() > 1 && self.round.is_multiple_of(2) {
            let taker = &members[1 + self.round / 2 % (members.len() - 1)];
            let cheapest = call(taker, "market.book", json!({ "give": asset, "want": "coin", "limit": 1 }))
                .ok()
                .and_then(|b| b.as_array()?.first()?.get("offer_id").cloned());
            if let Some(id) = cheapest
                && call(taker, "market.take", json!({ "offer_ids": [id] })).is_ok()
            {
                self.takes += 1;
            }
        }
    }

    fn summary(&self) -> String {
        match &self.asset {
            None => "market: no token yet".into(),
            Some(_) => format!("market: {TOKEN_NAME} issued, {} takes", self.takes),
        }
    }
}

fn call(member: &Member, method: &str, params: Value) -> anyhow::Result<Value> {
    Client::for_data_dir(&member.data_dir, None).and_then(|c| c.call(method, params))
}

/// Contracts the devnet keeps running: node 2 buys from node 3 through an escrow it releases
/// once confirmed (node 3's node completes the payout); node 1 offers a loan of its token
/// against coins, the last node takes it and repays it (with tokens it bought) or defaults.
#[derive(Default)]
struct Contracts {
    released: usize,
    loans: usize,
    ended: usize,
}

impl Contracts {
    fn next(&mut self, members: &[Member], token: Option<&str>) {
        if members.len() >= 3 {
            self.escrow(&members[1], &members[2]);
        }
        if let (Some(token), true) = (token, members.len() >= 2) {
            self.loan(&members[0], &members[members.len() - 1], token);
        }
    }

    fn escrow(&mut self, buyer: &Member, seller: &Member) {
        let Ok(list) = call(buyer, "escrow.list", json!({})) else { return };
        let escrows = list.as_array().cloned().unwrap_or_default();
        self.released = escrows.iter().filter(|e| e["state"] == "released").count();
        match escrows.iter().find(|e| e["state"] == "open" && e["role"] == "buyer") {
            // Confirmed: the buyer releases it; the seller's node completes the payout.
            Some(open) if open["height"].is_u64() => {
                let _ = call(buyer, "escrow.release", json!({ "escrow_id": open["escrow_id"] }));
            }
            Some(_) => {}
            None => {
                let Some(key) =
                    call(seller, "wallet.key", json!({})).ok().and_then(|k| k["key"].as_str().map(str::to_owned))
                else {
                    return;
                };
                let _ =
                    call(buyer, "escrow.open", json!({ "seller_key": key, "amount": 100_000_000u64, "timeout": 60 }));
            }
        }
    }

    fn loan(&mut self, lender: &Member, borrower: &Member, token: &str) {
        let Ok(list) = call(lender, "loan.list", json!({})) else { return };
        let loans = list.as_array().cloned().unwrap_or_default();
        self.loans = loans.iter().filter(|l| l["state"] != "offered").count();
        self.ended = loans.iter().filter(|l| l["state"] == "repaid" || l["state"] == "claimed").count();
        for defaulted in loans.iter().filter(|l| l["state"] == "defaulted") {
            let _ = call(lender, "loan.claim", json!({ "loan_id": defaulted["id"] }));
        }
        let running = loans.iter().any(|l| l["state"] == "offered" || l["state"] == "active");
        if !running {
            let _ = call(
                lender,
                "loan.offer",
                json!({
                    "amount": 1_000, "asset": token, "repay": 1_050, "term": 40,
                    "collateral_amount": 50_000_000u64, "collateral_asset": "coin", "expires": 200,
                }),
            );
        }
        // The borrower takes an offer it sees, and repays a loan when it holds enough.
        if let Ok(book) = call(borrower, "loan.book", json!({}))
            && let Some(offer) = book.as_array().and_then(|b| b.iter().find(|o| o["mine"] != true))
        {
            let _ = call(borrower, "loan.take", json!({ "offer_id": offer["offer_id"] }));
        }
        if let Ok(mine) = call(borrower, "loan.list", json!({})) {
            for active in mine.as_array().into_iter().flatten().filter(|l| l["state"] == "active") {
                let _ = call(borrower, "loan.repay", json!({ "loan_id": active["id"] }));
            }
        }
    }

    fn summary(&self) -> String {
        format!("contracts: {} escrows released, {} loans ({} ended)", self.released, self.loans, self.ended)
    }
}
