//! `peerchain chain sync`: follows a node catching up with the best header it knows, with a
//! progress bar on a terminal (blocks per second, time left) and a line every few seconds
//! otherwise, until it has caught up: connected to peers, and at the best header they told of
//! for two seconds.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::client::Client;
use crate::print;

/// How often the node is asked.
const POLL: Duration = Duration::from_millis(500);
/// How often a line is printed when the output is no terminal.
const LINE_EVERY: Duration = Duration::from_secs(5);
/// How long the node must look caught up, with peers, before it counts as caught up: a peer
/// just connected may not have told its headers yet.
const SETTLE: Duration = Duration::from_secs(2);

fn height(info: &Value, field: &str) -> u64 {
    info[field].as_u64().unwrap_or_default()
}

/// Blocks a second between two observations, and the time left at that rate.
fn pace(from: (u64, Instant), to: u64, headers: u64) -> (f64, Option<Duration>) {
    let seconds = from.1.elapsed().as_secs_f64().max(0.001);
    let rate = to.saturating_sub(from.0) as f64 / seconds;
    let left = (rate > 0.0).then(|| Duration::from_secs_f64(headers.saturating_sub(to) as f64 / rate));
    (rate, left)
}

pub(crate) fn follow(client: &Client, timeout: Option<Duration>, json: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let terminal = !json && std::io::stderr().is_terminal();
    let bar = if terminal { ProgressBar::new(0) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} blocks, {per_sec}, eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut info = client.call("chain.info", json!({}))?;
    let first = (height(&info, "height"), started);
    let mut last_line = None::<Instant>;
    let mut caught_up_since = None::<Instant>;
    loop {
        let looks_done = info["syncing"] != true && info["peers"].as_u64() > Some(0);
        caught_up_since = if looks_done { caught_up_since.or(Some(Instant::now())) } else { None };
        if caught_up_since.is_some_and(|at| at.elapsed() >= SETTLE) {
            break;
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            bar.abandon();
            bail!(
                "not caught up after {} s: height {} of {} headers, {} peers",
                started.elapsed().as_secs(),
                height(&info, "height"),
                height(&info, "headers"),
                info["peers"]
            );
        }
        let (now, headers) = (height(&info, "height"), height(&info, "headers"));
        let waiting_for_peers = info["peers"].as_u64() == Some(0);
        if terminal {
            bar.set_length(headers);
            bar.set_position(now);
            bar.set_message(if waiting_for_peers {
                "waiting for peers".to_owned()
            } else {
                format!("syncing from {} peers", info["peers"])
            });
        } else if !json && last_line.is_none_or(|at| at.elapsed() >= LINE_EVERY) {
            if waiting_for_peers {
                eprintln!("waiting for peers: height {now}, no peer connected yet");
            } else {
                let (rate, left) = pace(first, now, headers);
                let left = left.map_or("unknown".to_owned(), |d| format!("{} s", d.as_secs()));
                eprintln!("syncing: height {now} of {headers} headers, {rate:.0} blocks/s, time left {left}");
            }
            last_line = Some(Instant::now());
        }
        std::thread::sleep(POLL);
        info = client.call("chain.info", json!({}))?;
    }
    bar.finish_and_clear();
    let (rate, _) = pace(first, height(&info, "height"), height(&info, "headers"));
    let result = json!({
        "height": info["height"],
        "headers": info["headers"],
        "peers": info["peers"],
        "seconds": started.elapsed().as_secs_f64(),
        "blocks_per_second": rate,
    });
    print(&result, json, |r| {
        format!(
            "caught up: height {} (the best header known), {} peers; {:.0} blocks/s while waiting",
            r["height"],
            r["peers"],
            r["blocks_per_second"].as_f64().unwrap_or(0.0)
        )
    });
    Ok(ExitCode::SUCCESS)
}
