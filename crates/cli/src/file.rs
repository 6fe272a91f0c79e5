//! `peerchain file ...`: thin calls of the `file.*` RPC methods. `file get` starts the
//! download in the node (which keeps it going, and resumes it after a restart) and follows
//! it with a progress bar.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use peerchain_primitives::Amount;
use serde_json::{Value, json};

use crate::client::Client;
use crate::print;
use crate::wallet::{PassphraseArgs, call_with_passphrase};

#[derive(Subcommand)]
pub(crate) enum FileCommand {
    /// Share a file or a directory: prints its content id.
    Add {
        /// The file or directory.
        path: PathBuf,
        /// An extra word it can be found by (repeatable).
        #[arg(long = "keyword", value_name = "WORD")]
        keywords: Vec<String>,
    },
    /// Download content by id from the peers that have it, then serve it too.
    Get {
        /// The content id.
        id: String,
        /// Where to write it (default: its name in the current directory).
        #[arg(short = 'o', long = "output", value_name = "PATH")]
        output: Option<PathBuf>,
        /// Give up if no peer holding it is found within this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 90)]
        timeout: u64,
        /// Leave the download queued in the node and return at once (`file status` follows it).
        #[arg(long)]
        background: bool,
        /// If nobody shares it for free, pay a seller up to this many coins, piece by piece
        /// as verified pieces arrive (through a payment channel; the closing fee is extra).
        #[arg(long, value_name = "COINS")]
        pay_up_to: Option<String>,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Sell content of this node for a price in coins, paid into the wallet as buyers'
    /// verified pieces arrive; `--price 0` shares it for free again.
    Sell {
        /// The content id.
        id: String,
        /// The price of the whole, in coins.
        #[arg(long, value_name = "COINS")]
        price: String,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// A download's progress: state, bytes verified, peers, paid.
    Status {
        /// The content id.
        id: String,
    },
    /// Find files by keyword, in the DHT and by asking neighbours.
    Search {
        /// Words that must all match.
        #[arg(required = true)]
        words: Vec<String>,
        /// Ask only one overlay: `dht` (keyword provider records) or `flood` (neighbours,
        /// up to 4 hops); both by default.
        #[arg(long, value_parser = ["both", "dht", "flood"], default_value = "both")]
        via: String,
    },
    /// The files this node holds (shared, or partly downloaded).
    List,
    /// Stop sharing content and delete it from this node.
    Remove {
        /// The content id.
        id: String,
    },
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

fn size_text(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

pub(crate) fn run(client: &Client, command: FileCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        FileCommand::Add { path, keywords } => {
            let path = absolute(&path)?;
            let entry = client.call("file.add", json!({ "path": path, "keywords": keywords }))?;
            print(&entry, json, |e| {
                format!(
                    "{}  {}  {}",
                    e["id"].as_str().unwrap_or_default(),
                    size_text(e["size"].as_u64().unwrap_or_default()),
                    e["name"].as_str().unwrap_or_default()
                )
            });
        }
        FileCommand::Status { id } => {
            let status = client.call("file.status", json!({ "id": id }))?;
            print(&status, json, status_line);
        }
        FileCommand::Get { id, output, timeout, background, pay_up_to, passphrase } => {
            let mut pay = json!({});
            if let Some(up_to) = pay_up_to {
                let up_to: Amount = up_to.parse().with_context(|| format!("--pay-up-to `{up_to}`"))?;
                pay["pay_up_to"] = json!(up_to.units());
                if let Some(given) = passphrase.given()? {
                    pay["passphrase"] = json!(given.as_str());
                }
            }
            let wait = Wait { timeout: Duration::from_secs(timeout), background };
            return get(client, &id, output, pay, wait, json);
        }
        FileCommand::Sell { id, price, passphrase } => {
            let price: Amount = price.parse().with_context(|| format!("--price `{price}`"))?;
            let params = json!({ "id": id, "price": price.units() });
            let entry = call_with_passphrase(client, "file.sell", params, &passphrase)?;
            print(&entry, json, |e| match e["price"].as_u64() {
                Some(units) => format!(
                    "{} on sale for {} coins\nbuyers pay as verified pieces arrive; this node closes each channel",
                    e["id"].as_str().unwrap_or_default(),
                    Amount::from_units(units)
                ),
                None => format!("{} shared for free", e["id"].as_str().unwrap_or_default()),
            });
        }
        FileCommand::Search { words, via } => {
            let hits = client.call("file.search", json!({ "words": words, "via": via }))?;
            print(&hits, json, |list| {
                let rows: Vec<String> = list
                    .as_array()
                    .map(|hits| {
                        hits.iter()
                            .map(|h| {
                                format!(
                                    "{}  {:>10}  {:>2} providers  {}",
                                    h["id"].as_str().unwrap_or_default(),
                                    size_text(h["size"].as_u64().unwrap_or_default()),
                                    h["providers"],
                                    h["name"].as_str().unwrap_or_default()
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if rows.is_empty() { "nothing found".into() } else { rows.join("\n") }
            });
        }
        FileCommand::List => {
            let entries = client.call("file.list", json!({}))?;
            print(&entries, json, |list| {
                let rows: Vec<String> = list
                    .as_array()
                    .map(|entries| {
                        entries
                            .iter()
                            .map(|e| {
                                let size = e["size"].as_u64().unwrap_or_default();
                                let verified = e["verified_bytes"].as_u64().unwrap_or_default();
                                let state = if let Some(price) = e["price"].as_u64() {
                                    format!("on sale {}", Amount::from_units(price))
                                } else if e["complete"] == true {
                                    "shared".to_owned()
                                } else {
                                    format!("{:.0}%", verified as f64 * 100.0 / size.max(1) as f64)
                                };
                                format!(
                                    "{}  {:>10}  {:>6}  {}",
                                    e["id"].as_str().unwrap_or_default(),
                                    size_text(size),
                                    state,
                                    e["name"].as_str().unwrap_or_default()
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if rows.is_empty() { "no files".into() } else { rows.join("\n") }
            });
        }
        FileCommand::Remove { id } => {
            let result = client.call("file.remove", json!({ "id": id }))?;
            print(&result, json, |r| format!("removed {}", r["removed"].as_str().unwrap_or_default()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How often the progress bar moves.
const PROGRESS_EVERY_MS: u64 = 200;

/// How `file get` waits: how long for a peer that holds the content, or not at all.
struct Wait {
    timeout: Duration,
    background: bool,
}

/// One line of a download's progress, for `file status` and for output that is no terminal.
fn status_line(status: &Value) -> String {
    let state = status["state"].as_str().unwrap_or_default();
    let id = status["id"].as_str().unwrap_or_default();
    let peers = status["peers"].as_u64().unwrap_or_default();
    let mut line = match state {
        "finding" => format!("{id}: looking for peers that hold it, {peers} found so far"),
        "failed" => format!("{id}: failed: {}", status["error"].as_str().unwrap_or("unknown error")),
        _ => format!(
            "{id}: {state} {}, {} of {} from {} peers, {}/s",
            status["name"].as_str().unwrap_or_default(),
            size_text(status["verified_bytes"].as_u64().unwrap_or_default()),
            size_text(status["size"].as_u64().unwrap_or_default()),
            status["sources"],
            size_text(status["rate"].as_u64().unwrap_or_default())
        ),
    };
    if let Some(price) = status["price"].as_u64().filter(|p| *p > 0) {
        let paid = Amount::from_units(status["paid"].as_u64().unwrap_or_default());
        line.push_str(&format!(", paid {paid} of {} coins", Amount::from_units(price)));
    }
    line
}

fn get(
    client: &Client,
    id: &str,
    output: Option<PathBuf>,
    pay: Value,
    wait: Wait,
    json: bool,
) -> anyhow::Result<ExitCode> {
    // Without -o the name is known only once a provider answers: the node then writes into
    // the current directory under that name.
    // Into an existing directory, as `cp` does.
    let output = match output {
        Some(path) if path.is_dir() => absolute(&path.join(id))?,
        Some(path) => absolute(&path)?,
        None => absolute(Path::new(id))?,
    };
    let named_later = !output.exists() && output.file_name().is_some_and(|n| n == id);
    let mut params = json!({ "id": id, "path": output });
    for (name, value) in pay.as_object().into_iter().flatten() {
        params[name] = value.clone();
    }
    let mut status = client.call("file.get", params)?;
    if wait.background {
        print(&status, json, |s| {
            format!(
                "{}\nqueued in the node, to {}; follow it with `peerchain file status {id}`",
                status_line(s),
                output.display()
            )
        });
        return Ok(ExitCode::SUCCESS);
    }
    // A bar on a terminal; otherwise a line on stderr whenever something changes, so that a
    // script's log says what it waits for.
    let terminal = !json && std::io::stderr().is_terminal();
    let bar = if terminal { ProgressBar::new_spinner() } else { ProgressBar::hidden() };
    let started = Instant::now();
    let mut said = String::new();
    let mut said_at = Instant::now();
    loop {
        let state = status["state"].as_str().unwrap_or_default().to_owned();
        match state.as_str() {
            "done" => break,
            "failed" => {
                bar.abandon();
                bail!("download of {id} failed: {}", status["error"].as_str().unwrap_or("unknown error"));
            }
            "finding" if started.elapsed() >= wait.timeout => {
                bar.abandon();
                // Nothing was fetched yet: the node stops looking too (and answers that it holds
                // nothing of it, which is no error here).
                let _ = client.call("file.remove", json!({ "id": id }));
                bail!(
                    "no peer holding {id} was found within {} s; check the id, or connect to a peer that has it",
                    wait.timeout.as_secs()
                );
            }
            _ => {}
        }
        let line = status_line(&status);
        if terminal {
            let size = status["size"].as_u64().unwrap_or_default();
            if size > 0 && bar.length().is_none() {
                bar.set_length(size);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
            }
            bar.set_position(status["verified_bytes"].as_u64().unwrap_or_default());
            bar.set_message(if size == 0 { line } else { state.clone() });
            bar.tick();
        } else if !json
            && (line.split(',').next() != said.split(',').next() || said_at.elapsed() >= Duration::from_secs(5))
        {
            eprintln!("{line}");
            said = line;
            said_at = Instant::now();
        }
        // The node answers as soon as the download ends, or after this long with its
        // progress for the bar.
        status = client.call("file.status", json!({ "id": id, "wait_ms": PROGRESS_EVERY_MS }))?;
    }
    bar.finish_and_clear();
    let mut path = PathBuf::from(status["path"].as_str().unwrap_or_default());
    let name = status["name"].as_str().unwrap_or_default();
    if named_later && !name.is_empty() && safe_name(name) {
        let named = path.with_file_name(name);
        if !named.exists() {
            std::fs::rename(&path, &named).with_context(|| format!("cannot name the download {}", named.display()))?;
            path = named;
        }
    }
    let result = json!({
        "id": status["id"],
        "path": path.to_string_lossy(),
        "size": status["size"],
        "sources": status["sources"],
        "price": status["price"],
        "paid": status["paid"],
    });
    print(&result, json, |r| {
        let paid = match r["paid"].as_u64() {
            Some(paid) if paid > 0 => format!(", paid {} coins", Amount::from_units(paid)),
            _ => String::new(),
        };
        format!(
            "{}  {}  from {} peers{paid}",
            r["path"].as_str().unwrap_or_default(),
            size_text(r["size"].as_u64().unwrap_or_default()),
            r["sources"]
        )
    });
    Ok(ExitCode::SUCCESS)
}

/// Whether a name from a peer is a plain file name (no path, no hidden tricks).
fn safe_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}
