//! File sharing between real nodes on loopback: one and three seeders, a chain A→B→C, a
//! seeder that corrupts data, a download killed halfway and resumed, and keyword search four
//! hops away through the DHT and by flooding.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use peerchain_testing::pseudo_random;
use serde_json::Value;
use support::{Rpc, TestNode, wait_for};

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn add(node: &TestNode, path: &Path, keywords: &[&str]) -> Value {
    let mut args = vec!["file", "add", path.to_str().unwrap()];
    for word in keywords {
        args.extend(["--keyword", word]);
    }
    node.json(&args)
}

/// A node sharing `bytes` as `name`, and the content id.
fn seeder_of(dir: &Path, name: &str, bytes: &[u8]) -> (TestNode, String) {
    let node = TestNode::start("regtest", &[]);
    let id = add(&node, &write_file(dir, name, bytes), &[])["id"].as_str().unwrap().to_owned();
    (node, id)
}

fn get(node: &TestNode, id: &str, out: &Path) -> Value {
    node.json(&["file", "get", id, "-o", out.to_str().unwrap()])
}

/// TCP connections that `from`'s process has established to `to`'s listening port
/// (from /proc: the process's socket inodes, matched in the kernel's IPv4 table).
fn established(from: &TestNode, to: &TestNode) -> usize {
    let port: u16 = to.p2p_addr().split('/').nth(4).unwrap().parse().unwrap();
    let sockets: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{}/fd", from.pid()))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| {
            let remote_port = fields[2].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            fields[3] == "01" && remote_port == Some(port) && sockets.contains(fields[9])
        })
        .count()
}

fn regtest_after(first: &TestNode) -> TestNode {
    TestNode::start("regtest", &["--bootstrap", &first.p2p_addr()])
}

fn wait_connected(node: &TestNode, peers: usize) {
    wait_for("peers to connect", Duration::from_secs(30), || {
        (node.json(&["peers"]).as_array().unwrap().len() >= peers).then_some(())
    });
}

#[test]
fn one_seeder_serves_a_leecher_which_then_serves_the_next_in_a_chain() {
    let temp = tempfile::tempdir().unwrap();
    let bytes = pseudo_random(3 * 1024 * 1024 + 777, 1);
    let a = TestNode::start("regtest", &[]);
    let added = add(&a, &write_file(temp.path(), "report.pdf", &bytes), &[]);
    let id = added["id"].as_str().unwrap().to_owned();
    assert_eq!(added["size"], bytes.len() as u64);
    assert_eq!(id, hex::encode(blake3_of(&bytes)), "the id is the BLAKE3 root of the bytes");

    let b = regtest_after(&a);
    wait_connected(&b, 1);
    let out_b = temp.path().join("b-report.pdf");
    let got = get(&b, &id, &out_b);
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["size"], bytes.len() as u64);
    assert_eq!(got["sources"], 1);
    assert_eq!(got["path"], out_b.to_str().unwrap());
    assert_eq!(std::fs::read(&out_b).unwrap(), bytes);
    // The download opened a second connection to its only source, so that both cores
    // carry one source's data.
    assert_eq!(established(&b, &a), 2, "connections from B to A");

    // A leaves; C downloads from B, which serves what it fetched.
    let mut a = a;
    a.stop();
    let c = regtest_after(&b);
    wait_connected(&c, 1);
    let out_c = temp.path().join("c-report.pdf");
    let got = get(&c, &id, &out_c);
    assert_eq!(got["sources"], 1);
    assert_eq!(std::fs::read(&out_c).unwrap(), bytes);
    // Into an existing directory: the file keeps its name there.
    let folder = temp.path().join("inbox");
    std::fs::create_dir(&folder).unwrap();
    let got = get(&c, &id, &folder);
    assert_eq!(got["path"], folder.join("report.pdf").to_str().unwrap());
    assert_eq!(std::fs::read(folder.join("report.pdf")).unwrap(), bytes);
    let listed = c.json(&["file", "list"]);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["complete"], true);

    // Removing stops serving: the next downloader finds nobody on C's side... and the
    // store's files are gone.
    c.json(&["file", "remove", &id]);
    assert!(c.json(&["file", "list"]).as_array().unwrap().is_empty());
    let error = c.cli_error(&["file", "remove", &id], &[]);
    assert!(error.contains("no content"), "{error}");
}

fn blake3_of(bytes: &[u8]) -> [u8; 32] {
    peerchain_blobs::content_id(bytes).0
}

#[test]
fn three_seeders_all_serve_pieces_to_one_leecher() {
    let temp = tempfile::tempdir().unwrap();
    let bytes = pseudo_random(24 * 1024 * 1024, 2);
    let path = write_file(temp.path(), "dataset.bin", &bytes);
    let seeders: Vec<TestNode> = (0..3).map(|_| TestNode::start("regtest", &[])).collect();
    let ids: Vec<Value> = seeders.iter().map(|s| add(s, &path, &[])["id"].clone()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]));
    let mut args = Vec::new();
    for seeder in &seeders {
        args.push("--bootstrap".to_owned());
        args.push(seeder.p2p_addr());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let leecher = TestNode::start("regtest", &args);
    wait_connected(&leecher, 3);
    let out = temp.path().join("copy.bin");
    let got = get(&leecher, ids[0].as_str().unwrap(), &out);
    assert_eq!(got["sources"], 3, "every seeder served pieces: {got}");
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
}

#[test]
fn a_status_call_that_waits_returns_when_the_download_ends() {
    let temp = tempfile::tempdir().unwrap();
    let bytes = pseudo_random(2 * 1024 * 1024, 9);
    let (a, id) = seeder_of(temp.path(), "notes.bin", &bytes);
    let b = regtest_after(&a);
    wait_connected(&b, 1);
    let rpc = Rpc::new(&b);
    let out = temp.path().join("notes-copy.bin");
    let started = rpc.call("file.get", serde_json::json!({"id": id, "path": out}));
    assert_ne!(started["result"]["state"], "done", "file.get answers before the download ends");
    let asked = std::time::Instant::now();
    let status = rpc.call("file.status", serde_json::json!({"id": id, "wait_ms": 10_000}));
    assert_eq!(status["result"]["state"], "done", "{status}");
    assert!(asked.elapsed() < Duration::from_secs(10), "it answered when the download ended, not after the wait");
    assert_eq!(std::fs::read(&out).unwrap(), bytes);

    // Without a path, into the node's downloads folder.
    let default = rpc.call("file.get", serde_json::json!({"id": id}));
    let status = rpc.call("file.status", serde_json::json!({"id": id, "wait_ms": 10_000}));
    assert_eq!(status["result"]["state"], "done", "{default} {status}");
    let path = b.path().join("downloads").join(&id);
    assert_eq!(status["result"]["path"], path.to_str().unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    // Content nobody has: the call waits as long as asked, then tells the progress so far.
    let unknown = "cd".repeat(32);
    rpc.call("file.get", serde_json::json!({"id": unknown, "path": temp.path().join("never")}));
    let asked = std::time::Instant::now();
    let status = rpc.call("file.status", serde_json::json!({"id": unknown, "wait_ms": 300}));
    assert_eq!(status["result"]["state"], "finding", "{status}");
    assert!(asked.elapsed() >= Duration::from_millis(300));
}

#[test]
fn getting_content_nobody_has_says_what_it_waits_for_and_gives_up_after_the_timeout() {
    let temp = tempfile::tempdir().unwrap();
    let node = TestNode::start("regtest", &[]);
    let unknown = "ab".repeat(32);
    let out = temp.path().join("never");
    // Output that is no terminal: lines on stderr, then a clear failure after --timeout.
    let asked = std::time::Instant::now();
    let output = node.cli(&["file", "get", &unknown, "-o", out.to_str().unwrap(), "--timeout", "3"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&format!("{unknown}: looking for peers that hold it, 0 found so far")), "{stderr}");
    assert!(stderr.contains(&format!("no peer holding {unknown} was found within 3 s")), "{stderr}");
    assert!(asked.elapsed() < Duration::from_secs(20), "gave up after the timeout");
    let gone = node.cli(&["file", "status", &unknown]);
    assert!(!gone.status.success(), "the node stopped looking too");

    // --background: queued in the node at once, followed by `file status`.
    let queued = node.json(&["file", "get", &unknown, "-o", out.to_str().unwrap(), "--background"]);
    assert_eq!(queued["state"], "finding", "{queued}");
    let status = node.json(&["file", "status", &unknown]);
    assert_eq!((status["state"].as_str(), status["peers"].as_u64()), (Some("finding"), Some(0)), "{status}");
    let text = String::from_utf8_lossy(&node.cli(&["file", "status", &unknown]).stdout).to_string();
    assert!(text.contains("looking for peers that hold it"), "{text}");
}

#[test]
fn a_directory_travels_whole_and_bad_requests_get_clear_errors() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("photos");
    std::fs::create_dir_all(dir.join("2026")).unwrap();
    write_file(&dir, "cover.jpg", &pseudo_random(100_000, 3));
    write_file(&dir.join("2026"), "beach.jpg", &pseudo_random(2_000_000, 4));
    let a = TestNode::start("regtest", &[]);
    let added = add(&a, &dir, &["holiday"]);
    let b = regtest_after(&a);
    wait_connected(&b, 1);
    let out = temp.path().join("copy");
    get(&b, added["id"].as_str().unwrap(), &out);
    assert_eq!(std::fs::read(out.join("cover.jpg")).unwrap(), std::fs::read(dir.join("cover.jpg")).unwrap());
    assert_eq!(std::fs::read(out.join("2026/beach.jpg")).unwrap(), std::fs::read(dir.join("2026/beach.jpg")).unwrap());

    let error = b.cli_error(&["file", "get", "not-an-id"], &[]);
    assert!(error.contains("content id"), "{error}");
    let error = a.cli_error(&["file", "add", temp.path().join("missing").to_str().unwrap()], &[]);
    assert!(error.contains("cannot read"), "{error}");
    let error = a.cli_error(&["file", "search", "x"], &[]);
    assert!(error.contains("search word"), "{error}");
}

#[test]
fn a_download_killed_halfway_resumes_after_a_restart_from_its_verified_pieces() {
    let temp = tempfile::tempdir().unwrap();
    let bytes = pseudo_random(32 * 1024 * 1024, 5);
    let (seeder, id) = seeder_of(temp.path(), "movie.mkv", &bytes);
    // A bandwidth cap makes the download take a few seconds, so it can be killed halfway.
    let config = "[files]\nmax_download_kib_per_sec = 4096\n";
    let bootstrap = seeder.p2p_addr();
    let mut leecher = TestNode::start_with_config("regtest", config, &["--bootstrap", &bootstrap]);
    wait_connected(&leecher, 1);
    let out = temp.path().join("downloaded.mkv");
    // The user's `file get` is running when the node dies.
    let following = std::process::Command::new(support::BIN)
        .args(["--network", "regtest", "--data-dir"])
        .arg(leecher.path())
        .args(["file", "get", &id, "-o"])
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let size = bytes.len() as u64;
    wait_for("part of the download", Duration::from_secs(60), || {
        let status = leecher.json(&["file", "list"]);
        let verified = status[0]["verified_bytes"].as_u64()?;
        (verified >= size / 4).then_some(verified)
    });
    // Verified pieces are made durable every second: let at least one such moment pass.
    std::thread::sleep(Duration::from_millis(1500));
    let before_kill = leecher.json(&["file", "list"])[0]["verified_bytes"].as_u64().unwrap();
    assert!(before_kill < size, "still downloading when killed");
    leecher.kill9();
    let failed = following.wait_with_output().unwrap();
    assert!(!failed.status.success(), "the follower reports the node's loss");
    assert!(!out.exists(), "nothing is written to the target before it is complete");
    leecher.launch(&["--bootstrap", &bootstrap]);
    let resumed = leecher.json(&["file", "list"]);
    let kept = resumed[0]["verified_bytes"].as_u64().unwrap();
    assert!(kept > 0, "verified pieces survived the kill ({kept} of {before_kill} bytes)");
    // The node resumes on its own; `file get` follows it to the end.
    let got = get(&leecher, &id, &out);
    assert_eq!(got["size"], size);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    assert!(leecher.log().contains("resuming download"), "{}", leecher.log());
}

#[test]
fn keyword_search_finds_a_file_four_hops_away_by_dht_and_by_flooding() {
    let temp = tempfile::tempdir().unwrap();
    let mut line = vec![TestNode::start("regtest", &[])];
    for _ in 0..4 {
        let next = regtest_after(line.last().unwrap());
        line.push(next);
    }
    for node in &line[1..] {
        wait_connected(node, 1);
    }
    let far = &line[4];
    let bytes = pseudo_random(50_000, 6);
    let id = add(far, &write_file(temp.path(), "Sunset_Timelapse.mov", &bytes), &["nature"])["id"].clone();
    let near = &line[0];
    for via in ["flood", "dht"] {
        let hits = wait_for(&format!("a search by {via} to find the file"), Duration::from_secs(60), || {
            let hits = near.json(&["file", "search", "sunset", "NATURE", "--via", via]);
            (!hits.as_array().unwrap().is_empty()).then_some(hits)
        });
        assert_eq!(hits[0]["id"], id, "{via}: {hits}");
        assert_eq!(hits[0]["name"], "Sunset_Timelapse.mov");
        assert_eq!(hits[0]["size"], bytes.len() as u64);
        assert_eq!(hits[0]["providers"], 1);
    }
    assert!(near.json(&["file", "search", "sunrise", "--via", "flood"]).as_array().unwrap().is_empty());
    // And the hit downloads from four hops away.
    let out = temp.path().join("found.mov");
    let got = get(near, id.as_str().unwrap(), &out);
    assert_eq!(got["sources"], 1);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
}

#[test]
fn a_seeder_that_corrupts_data_is_banned_and_the_download_completes_from_honest_peers() {
    use peerchain_net::{Config, FileEvent, FileRequest, FileResponse, Keypair};

    let temp = tempfile::tempdir().unwrap();
    let bytes = pseudo_random(16 * 1024 * 1024, 7);
    let path = write_file(temp.path(), "archive.tar", &bytes);
    let honest = TestNode::start("regtest", &[]);
    let id_text = add(&honest, &path, &[])["id"].as_str().unwrap().to_owned();
    let leecher = regtest_after(&honest);
    wait_connected(&leecher, 1);

    // The hostile peer holds the same file and answers like a seeder, but flips a byte in
    // every range it serves.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hostile_store = std::sync::Arc::new(peerchain_blobs::Store::open(&temp.path().join("hostile")).unwrap());
    let entry = hostile_store.add_path(&path, &[]).unwrap();
    let leecher_addr: peerchain_net::Address = leecher.p2p_addr().parse().unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let hostile_id = runtime.block_on(async {
        let mut config = Config::new("regtest", vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
        config.mdns = false;
        let (hostile, mut events, _task) =
            peerchain_net::spawn(Keypair::generate_ed25519(), config, cancel.clone()).unwrap();
        hostile.dial(leecher_addr).await;
        let serving = hostile.clone();
        tokio::spawn(async move {
            while let Some(event) = events.files.recv().await {
                let FileEvent::Request { request, id, .. } = event;
                {
                    let response = match request {
                        FileRequest::Info(_) => FileResponse::Info {
                            size: entry.size,
                            name: entry.name.clone(),
                            directory: false,
                            pieces: None,
                            price: None,
                        },
                        FileRequest::Range { id: content, start, count } => {
                            let mut encoded =
                                hostile_store.read_range(content, start..start + u64::from(count)).unwrap();
                            let middle = encoded.len() / 2;
                            encoded[middle] ^= 0x55;
                            FileResponse::Range(encoded.into())
                        }
                        FileRequest::Search { .. } => FileResponse::Hits(Vec::new()),
                        FileRequest::Pay { .. } => FileResponse::Refused("not on sale".into()),
                    };
                    serving.respond_file(id, response).await;
                }
            }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        hostile.local_peer().to_string()
    });
    wait_connected(&leecher, 2);

    let out = temp.path().join("copy.tar");
    let got = get(&leecher, &id_text, &out);
    assert_eq!(std::fs::read(&out).unwrap(), bytes, "the right bytes, from the honest seeder");
    assert_eq!(got["sources"], 1);
    let log = leecher.log();
    assert!(log.contains("banning it") && log.contains("peer banned"), "{log}");
    let peers = leecher.json(&["peers"]);
    assert!(peers.as_array().unwrap().iter().all(|p| p["peer_id"] != hostile_id.as_str()), "{peers}");
    // An operator sees it in the metrics: the bad pieces, and the ban.
    let metrics = support::http_agent()
        .get(&format!("{}metrics", leecher.rpc_url()))
        .header("Authorization", support::basic_auth(leecher.cookie().trim()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let value = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name}:\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("peerchain_files_bad_pieces_total") >= 1.0, "{metrics}");
    assert!(value("peerchain_peer_bans_total") >= 1.0, "{metrics}");
    cancel.cancel();
}

#[test]
fn a_peer_flooding_searches_is_refused_and_unknown_content_gets_a_clean_refusal() {
    use peerchain_net::{Config, FileRequest, FileResponse, Keypair};

    let node = TestNode::start("regtest", &[]);
    let address: peerchain_net::Address = node.p2p_addr().parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let mut config = Config::new("regtest", vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
        config.mdns = false;
        let (peer, _events, _task) = peerchain_net::spawn(Keypair::generate_ed25519(), config, cancel.clone()).unwrap();
        peer.dial(address).await;
        let target = peerchain_testing::first_peer(&peer).await;
        let mut refused = 0;
        for query_id in 0..30 {
            let request = FileRequest::Search { query_id, words: vec!["anything".into()], hops: 0 };
            match peer.request_file(target, request).await.unwrap() {
                FileResponse::Hits(hits) => assert!(hits.is_empty()),
                FileResponse::Refused(reason) => {
                    assert_eq!(reason, "too many searches");
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(refused >= 15, "a burst of 30 searches is mostly refused ({refused})");
        let unknown = peer.request_file(target, FileRequest::Info(peerchain_primitives::ContentId([9; 32]))).await;
        assert!(matches!(unknown, Ok(FileResponse::Refused(ref r)) if r == "unknown content"), "{unknown:?}");
        let range = FileRequest::Range { id: peerchain_primitives::ContentId([9; 32]), start: 0, count: 1 };
        assert!(matches!(peer.request_file(target, range).await, Ok(FileResponse::Refused(_))));
        cancel.cancel();
    });
    // The node is fine.
    node.json(&["chain", "info"]);
}

/// Review L7: many peer ids (sybils) each within their own search allowance cannot make a
/// node flood the network: what it forwards for its peers is capped for all of them together.
#[test]
fn searches_from_many_peer_ids_are_forwarded_within_one_budget() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use peerchain_net::{Config, FileEvent, FileRequest, FileResponse, Keypair};

    let node = TestNode::start("regtest", &[]);
    let address: peerchain_net::Address = node.p2p_addr().parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let forwarded = runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let received = Arc::new(AtomicUsize::new(0));
        let mut sybils = Vec::new();
        for _ in 0..12 {
            let mut config = Config::new("regtest", vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
            config.mdns = false;
            let (peer, mut events, _task) =
                peerchain_net::spawn(Keypair::generate_ed25519(), config, cancel.clone()).unwrap();
            let (answering, received) = (peer.clone(), received.clone());
            tokio::spawn(async move {
                while let Some(event) = events.files.recv().await {
                    if let FileEvent::Request { id, request: FileRequest::Search { .. }, .. } = event {
                        received.fetch_add(1, Ordering::SeqCst);
                        answering.respond_file(id, FileResponse::Hits(Vec::new())).await;
                    }
                }
            });
            peer.dial(address.clone()).await;
            sybils.push(peer);
        }
        let mut targets = Vec::new();
        for sybil in &sybils {
            targets.push(peerchain_testing::first_peer(sybil).await);
        }
        // Each sybil sends three searches of two hops: 36 in all, each within its allowance.
        let mut asks = tokio::task::JoinSet::new();
        for (n, (sybil, target)) in sybils.iter().cloned().zip(targets).enumerate() {
            asks.spawn(async move {
                for k in 0..3u64 {
                    let request =
                        FileRequest::Search { query_id: (n as u64) << 8 | k, words: vec!["film".into()], hops: 2 };
                    let answer = sybil.request_file(target, request).await.unwrap();
                    assert!(matches!(answer, FileResponse::Hits(_)), "{answer:?}");
                }
            });
        }
        while let Some(done) = asks.join_next().await {
            done.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        cancel.cancel();
        received.load(Ordering::SeqCst)
    });
    // Unbounded, each of the 36 would reach 8 more peers (288 requests); within the budget of
    // 8 at once and 2 a second, a few seconds allow about 14 forwards.
    assert!(forwarded <= 20 * 8, "{forwarded} forwarded requests");
    assert!(node.log().contains("forwarding budget is spent") || forwarded <= 8 * 8, "{}", node.log());
    node.json(&["chain", "info"]);
}

/// Starts `peerchain file get` against `node` in the background, as a user would.
fn spawn_get(node: &TestNode, id: &str, out: &Path) -> std::process::Child {
    std::process::Command::new(support::BIN)
        .args(["--network", "regtest", "--data-dir"])
        .arg(node.path())
        .args(["file", "get", id, "-o"])
        .arg(out)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn verified_bytes(node: &TestNode) -> u64 {
    node.json(&["file", "list"])[0]["verified_bytes"].as_u64().unwrap_or(0)
}

#[test]
fn a_partial_holder_serves_the_pieces_it_has() {
    let temp = tempfile::tempdir().unwrap();
    let bytes = pseudo_random(24 * 1024 * 1024, 8);
    let (mut seeder, id) = seeder_of(temp.path(), "big.iso", &bytes);
    let config = "[files]\nmax_download_kib_per_sec = 4096\n";
    let partial = TestNode::start_with_config("regtest", config, &["--bootstrap", &seeder.p2p_addr()]);
    wait_connected(&partial, 1);
    let mut first = spawn_get(&partial, &id, &temp.path().join("b.iso"));
    let held = wait_for("part of the file on the partial holder", Duration::from_secs(60), || {
        let verified = verified_bytes(&partial);
        (verified >= 6 << 20 && verified < bytes.len() as u64).then_some(verified)
    });
    // The only complete copy goes away; the partial holder is the only source left.
    seeder.stop();
    let late = regtest_after(&partial);
    wait_connected(&late, 1);
    let mut second = spawn_get(&late, &id, &temp.path().join("c.iso"));
    let got = wait_for("pieces from the partial holder", Duration::from_secs(60), || {
        let verified = verified_bytes(&late);
        (verified >= 4 << 20).then_some(verified)
    });
    assert!(got <= verified_bytes(&partial), "only pieces the holder had: {got} of {held}+");
    for child in [&mut first, &mut second] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
