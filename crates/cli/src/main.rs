//! `peerchain`: one binary that is both the node and its command-line client.
//!
//! `peerchain node` runs a node; every other command is a thin client of the running node's
//! JSON-RPC API, found through the data directory.

mod chain_sync;
mod client;
mod contracts;
mod devnet;
mod file;
mod market;
mod wallet;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use peerchain_node::{Config, Options};
use peerchain_primitives::{Amount, Network};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::client::Client;

#[derive(Parser)]
#[command(name = "peerchain", version, about = "A peer-to-peer ledger, wallet, file-sharing and trading node")]
struct Cli {
    /// The data directory of the network (default: the platform's data folder / NETWORK).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Which chain: devnet (local, fast blocks), testnet, mainnet, or regtest (for tests).
    #[arg(long, global = true, default_value = "devnet", value_name = "NETWORK")]
    network: Network,
    /// The node's JSON-RPC address: where `node` listens, or where client commands connect.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    rpc_addr: Option<SocketAddr>,
    /// Print exactly one JSON document on stdout (read commands).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node.
    Node(NodeArgs),
    /// Run a local network of mining nodes on this machine (the main job's default).
    Devnet {
        /// How many nodes.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Where node i keeps its data: DIR/node-i (the same DIR resumes the same network).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Node i listens on BASE+i for peers and BASE+100+i for RPC.
        #[arg(long, default_value_t = 29400, value_name = "BASE")]
        base_port: u16,
    },
    /// Query and check the chain.
    #[command(subcommand)]
    Chain(ChainCommand),
    /// The node's wallet.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// Share, find and download files.
    #[command(subcommand)]
    File(file::FileCommand),
    /// Issue, hold and send tokens.
    #[command(subcommand)]
    Token(market::TokenCommand),
    /// Trade without intermediaries: offers, the order book, takes and trades.
    #[command(subcommand)]
    Market(market::MarketCommand),
    /// Escrows: a buyer's payment held by buyer and seller (and an arbiter) together.
    #[command(subcommand)]
    Escrow(contracts::EscrowCommand),
    /// Loans against collateral, repaid or claimed on chain.
    #[command(subcommand)]
    Loan(contracts::LoanCommand),
    /// This node's peer id, listen addresses, RPC address and version.
    Id,
    /// The connected peers.
    Peers,
    /// Where the node's web dashboard is, and the user and password a browser asks for.
    Dashboard,
    /// Dial a peer now (a multiaddr, with or without /p2p/<peer id>).
    Connect {
        /// The peer's address.
        address: String,
    },
    /// Stop the running node.
    Stop,
}

#[derive(Args)]
struct NodeArgs {
    /// Listen for peers on this multiaddr (repeatable; default: all interfaces, TCP and QUIC).
    #[arg(long, value_name = "MULTIADDR")]
    listen: Vec<String>,
    /// Dial this peer at start (repeatable), with or without a trailing /p2p/<peer id>.
    #[arg(long, value_name = "MULTIADDR")]
    bootstrap: Vec<String>,
    /// Do not discover peers on the local network (mDNS).
    #[arg(long)]
    no_mdns: bool,
    /// Mine blocks.
    #[arg(long)]
    mine: bool,
    /// Pay mining rewards to this address (default: the node's wallet, created on first use).
    #[arg(long, value_name = "ADDR")]
    miner_address: Option<String>,
    /// Hashing threads for mining (default: all cores).
    #[arg(long, value_name = "N")]
    mining_threads: Option<usize>,
    /// Stop when standard input closes (used by `devnet`, so that its nodes never outlive it).
    #[arg(long, hide = true)]
    stop_with_stdin: bool,
}

#[derive(Subcommand)]
enum ChainCommand {
    /// Height, best block, work, mempool and peers.
    Info,
    /// Wait until the node has caught up with the best header it knows, showing its progress
    /// (blocks per second, time left).
    Sync {
        /// Give up after this many seconds (default: wait as long as it takes).
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
    },
    /// A block by height or hash.
    Block {
        /// A height or a block hash.
        block: String,
    },
    /// A transaction by id, confirmed or in the mempool.
    Tx {
        /// The transaction id.
        txid: String,
    },
    /// The latest blocks, newest first: height, hash, time, transactions, size, seconds since
    /// the block before.
    Blocks {
        /// How many (at most 500).
        #[arg(long, default_value_t = 20)]
        limit: u64,
        /// Start at this height instead of the tip.
        #[arg(long, value_name = "HEIGHT")]
        before: Option<u64>,
    },
    /// An address's balance and transactions on the main chain (from the explorer's index).
    Address {
        /// The address.
        address: String,
        /// How many of its latest transactions to list.
        #[arg(long, default_value_t = 25)]
        limit: u64,
    },
    /// Re-check every stored block and the UTXO set; exit 0 only if all of it checks out.
    Verify,
    /// Clear the invalid mark of a block (and its ancestors and descendants), as Bitcoin Core's
    /// reconsiderblock: the node tries the best chain again, which may now run through it.
    Reconsider {
        /// The block hash.
        hash: String,
    },
    /// Mine blocks now (regtest and devnet only).
    Generate {
        /// How many blocks.
        blocks: u64,
        /// Who gets the rewards (default: the node's wallet).
        #[arg(long, value_name = "ADDR")]
        address: Option<String>,
    },
    /// Submit a raw transaction (hex).
    Send {
        /// The transaction in hex.
        hex: String,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    let default_filter = if matches!(cli.command, Command::Node(_)) { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let data_dir = cli.data_dir.clone().unwrap_or_else(|| peerchain_node::default_data_dir(cli.network));
    match cli.command {
        Command::Node(args) => run_node(cli.network, data_dir, cli.rpc_addr, args),
        Command::Devnet { nodes, dir, base_port } => {
            let dir =
                dir.unwrap_or_else(|| peerchain_node::default_data_dir(Network::Devnet).with_file_name("devnet-local"));
            devnet::run(devnet::Options { nodes, dir, base_port })
        }
        Command::Chain(command) => {
            let client = Client::for_data_dir(&data_dir, cli.rpc_addr)?;
            chain_command(&client, command, cli.json)
        }
        Command::Wallet(command) => {
            let rpc_addr = cli.rpc_addr;
            wallet::run(command, &data_dir, cli.network, || Client::for_data_dir(&data_dir, rpc_addr), cli.json)
        }
        Command::File(command) => {
            let client = Client::for_data_dir(&data_dir, cli.rpc_addr)?;
            file::run(&client, command, cli.json)
        }
        Command::Token(command) => {
            let client = Client::for_data_dir(&data_dir, cli.rpc_addr)?;
            market::token(&client, command, cli.json)
        }
        Command::Market(command) => {
            let client = Client::for_data_dir(&data_dir, cli.rpc_addr)?;
            market::market(&client, command, cli.json)
        }
        Command::Escrow(command) => {
            let client = Client::for_data_dir(&data_dir, cli.rpc_addr)?;
            contracts::escrow(&client, command, cli.json)
        }
        Command::Loan(command) => {
            let client = Client::for_data_dir(&data_dir, cli.rpc_addr)?;
            contracts::loan(&client, command, cli.json)
        }
        Command::Id => {
            let client = Client::for_data_dir(&data_dir, cli.rpc_addr)?;
            let id = client.call("node.id", json!({}))?;
            print(&id, cli.json, |i| {
                let addrs: Vec<&str> =
                    i["listen_addrs"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                format!(
                    "peer id      {}\nnetwork      {}\nrpc          {}\nversion      {}\nlistening    {}",
                    i["peer_id"].as_str().unwrap_or_default(),
                    i["network"].as_str().unwrap_or_default(),
                    i["rpc_addr"].as_str().unwrap_or_default(),
                    i["version"].as_str().unwrap_or_default(),
                    addrs.join("\n             "),
                )
            });
            Ok(ExitCode::SUCCESS)
        }
        Command::Dashboard => {
            let client = Client::for_data_dir(&data_dir, cli.rpc_addr)?;
            let id = client.call("node.id", json!({}))?;
            let (user, password) = client.login()?;
            let login = json!({
                "url": format!("http://{}/", id["rpc_addr"].as_str().unwrap_or_default()),
                "user": user,
                "password": password,
            });
            print(&login, cli.json, |l| {
                format!(
                    "open       {}\nuser       {}\npassword   {}\n(or the [rpc] user and password of config.toml)",
                    l["url"].as_str().unwrap_or_default(),
                    l["user"].as_str().unwrap_or_default(),
                    l["password"].as_str().unwrap_or_default()
                )
            });
            Ok(ExitCode::SUCCESS)
        }
        Command::Peers => {
            let client = Client::for_data_dir(&data_dir, cli.rpc_addr)?;
            let peers = client.call("node.peers", json!({}))?;
            print(&peers, cli.json, |list| {
                let rows: Vec<String> = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        let latency = p["latency_ms"].as_f64().map_or("-".to_owned(), |l| format!("{l:.1} ms"));
                        let gossip = p["gossip_score"].as_f64().map_or("-".to_owned(), |g| format!("{g:.1}"));
                        format!(
                            "{}  {:8}  {}  {}  {}  score {} gossip {}",
                            p["peer_id"].as_str().unwrap_or_default(),
                            p["direction"].as_str().unwrap_or_default(),
                            p["address"].as_str().unwrap_or_default(),
                            latency,
                            p["agent"].as_str().unwrap_or("-"),
                            p["score"],
                            gossip,
                        )
                    })
                    .collect();
                if rows.is_empty() { "no peers".to_owned() } else { rows.join("\n") }
            });
            Ok(ExitCode::SUCCESS)
        }
        Command::Connect { address } => {
            let client = Client::for_data_dir(&data_dir, cli.rpc_addr)?;
            let result = client.call("node.connect", json!({ "address": address }))?;
            print(&result, cli.json, |r| format!("dialing {}", r["dialing"].as_str().unwrap_or_default()));
            Ok(ExitCode::SUCCESS)
        }
        Command::Stop => {
            let client = Client::for_data_dir(&data_dir, cli.rpc_addr)?;
            let result = client.call("node.stop", json!({}))?;
            print(&result, cli.json, |r| r.as_str().unwrap_or_default().to_owned());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_node(
    network: Network,
    data_dir: PathBuf,
    rpc_addr: Option<SocketAddr>,
    args: NodeArgs,
) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(&data_dir)?;
    if rpc_addr.is_some() {
        config.rpc.addr = rpc_addr;
    }
    if args.mine {
        config.mining.enabled = true;
    }
    if !args.listen.is_empty() {
        config.network.listen = args.listen;
    }
    config.network.bootstrap.extend(args.bootstrap);
    if args.no_mdns {
        config.network.no_mdns = true;
    }
    if args.miner_address.is_some() {
        config.mining.address = args.miner_address;
    }
    if args.mining_threads.is_some() {
        config.mining.threads = args.mining_threads;
    }
    let stop_with_stdin = args.stop_with_stdin;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        if stop_with_stdin {
            tokio::spawn(stop_when_stdin_closes(shutdown.clone()));
        }
        peerchain_node::run(Options { network, data_dir, config }, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Cancels `shutdown` when standard input reaches its end: the parent that holds the other end
/// has exited, however it died.
async fn stop_when_stdin_closes(shutdown: CancellationToken) {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut buffer = [0u8; 64];
    while let Ok(read) = stdin.read(&mut buffer).await {
        if read == 0 {
            break;
        }
    }
    shutdown.cancel();
}

pub(crate) async fn stop_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut terminate), Ok(mut interrupt)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            return;
        };
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    shutdown.cancel();
}

/// Prints a result; a closed stdout (`peerchain ... | head`) is not an error.
pub(crate) fn print(result: &Value, json: bool, human: impl FnOnce(&Value) -> String) {
    use std::io::Write;
    let text = if json { result.to_string() } else { human(result) };
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

pub(crate) fn coins(units: &Value) -> String {
    Amount::from_units(units.as_u64().unwrap_or(0)).to_string()
}

fn chain_command(client: &Client, command: ChainCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        ChainCommand::Sync { timeout } => {
            return chain_sync::follow(client, timeout.map(std::time::Duration::from_secs), json);
        }
        ChainCommand::Info => {
            let info = client.call("chain.info", json!({}))?;
            print(&info, json, |i| {
                format!(
                    "network      {}\nheight       {}{}\nbest hash    {}\ntotal work   0x{}\nmempool      {} transactions ({} bytes)\npeers        {}",
                    i["network"].as_str().unwrap_or_default(),
                    i["height"],
                    if i["syncing"] == true {
                        format!(
                            " (syncing: {:.1}% of {} headers; `peerchain chain sync` follows it)",
                            i["progress"].as_f64().unwrap_or(0.0) * 100.0,
                            i["headers"]
                        )
                    } else {
                        String::new()
                    },
                    i["best_hash"].as_str().unwrap_or_default(),
                    i["total_work"].as_str().unwrap_or_default(),
                    i["mempool_size"],
                    i["mempool_bytes"],
                    i["peers"],
                )
            });
        }
        ChainCommand::Block { block } => {
            let param = block.parse::<u64>().map(Value::from).unwrap_or_else(|_| Value::from(block));
            let result = client.call("chain.block", json!({ "block": param }))?;
            print(&result, json, |b| {
                let mut text = format!(
                    "block {}\nheight {}  confirmations {}  time {}  transactions {}  size {} bytes\nprevious {}",
                    b["hash"].as_str().unwrap_or_default(),
                    b["height"],
                    b["confirmations"],
                    b["time"],
                    b["tx_count"],
                    b["size"],
                    b["prev_hash"].as_str().unwrap_or_default(),
                );
                for tx in b["tx"].as_array().into_iter().flatten() {
                    text.push_str(&format!("\n  {}", tx["txid"].as_str().unwrap_or_default()));
                }
                text
            });
        }
        ChainCommand::Tx { txid } => {
            let result = client.call("chain.tx", json!({ "txid": txid }))?;
            print(&result, json, |t| {
                let place = match t["block_hash"].as_str() {
                    Some(hash) => format!("in block {hash} ({} confirmations)", t["confirmations"]),
                    None => "in the mempool (unconfirmed)".to_owned(),
                };
                let mut text = format!("transaction {}\n{place}", t["txid"].as_str().unwrap_or_default());
                for output in t["outputs"].as_array().into_iter().flatten() {
                    let to = output["lock"]["address"].as_str().or(output["lock"]["type"].as_str()).unwrap_or_default();
                    text.push_str(&format!(
                        "\n  {} {} → {to}",
                        coins(&output["amount"]),
                        output["asset"].as_str().unwrap_or_default()
                    ));
                }
                text
            });
        }
        ChainCommand::Blocks { limit, before } => {
            let mut params = json!({ "limit": limit });
            if let Some(before) = before {
                params["before"] = json!(before);
            }
            let result = client.call("chain.blocks", params)?;
            print(&result, json, |blocks| {
                let mut text = String::from(
                    "height  hash                                                              txs     size  interval",
                );
                for b in blocks.as_array().into_iter().flatten() {
                    let interval = b["interval"].as_i64().map(|s| format!("{s} s")).unwrap_or_default();
                    text.push_str(&format!(
                        "\n{:>6}  {}  {:>4}  {:>7}  {interval}",
                        b["height"],
                        b["hash"].as_str().unwrap_or_default(),
                        b["tx_count"],
                        b["size"]
                    ));
                }
                text
            });
        }
        ChainCommand::Address { address, limit } => {
            let result = client.call("chain.address", json!({ "address": address, "limit": limit }))?;
            print(&result, json, |a| {
                let mut text = format!(
                    "address {}\nbalance {}  received {}  sent {}  transactions {}",
                    a["address"].as_str().unwrap_or_default(),
                    coins(&a["balance"]),
                    coins(&a["received"]),
                    coins(&a["sent"]),
                    a["tx_count"],
                );
                if a["indexed_height"] != a["tip_height"] {
                    text.push_str(&format!(
                        "\n(the index is catching up: block {} of {})",
                        a["indexed_height"], a["tip_height"]
                    ));
                }
                for t in a["txs"].as_array().into_iter().flatten() {
                    text.push_str(&format!(
                        "\n  {}  height {}  +{}  -{}",
                        t["txid"].as_str().unwrap_or_default(),
                        t["height"],
                        coins(&t["received"]),
                        coins(&t["sent"])
                    ));
                }
                text
            });
        }
        ChainCommand::Verify => {
            let report = client.call("chain.verify", json!({}))?;
            let ok = report["ok"].as_bool() == Some(true);
            print(&report, json, |r| {
                let mut text = format!(
                    "{}: {} blocks, {} transactions, {} unspent outputs up to height {}",
                    if ok { "chain OK" } else { "chain FAILED verification" },
                    r["blocks"],
                    r["transactions"],
                    r["utxos"],
                    r["height"],
                );
                for problem in r["problems"].as_array().into_iter().flatten() {
                    text.push_str(&format!("\n  {}", problem.as_str().unwrap_or_default()));
                }
                text
            });
            return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        ChainCommand::Reconsider { hash } => {
            let result = client.call("chain.reconsiderblock", json!({ "hash": hash }))?;
            print(&result, json, |r| {
                format!(
                    "invalid marks cleared from {}; tip now {} at height {}",
                    r["hash"].as_str().unwrap_or_default(),
                    r["best_hash"].as_str().unwrap_or_default(),
                    r["height"],
                )
            });
        }
        ChainCommand::Generate { blocks, address } => {
            let result = client.call("chain.generate", json!({ "blocks": blocks, "address": address }))?;
            print(&result, json, |r| {
                r["hashes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join("\n")
            });
        }
        ChainCommand::Send { hex } => {
            let result = client.call("chain.sendrawtransaction", json!({ "hex": hex }))?;
            print(&result, json, |r| r["txid"].as_str().unwrap_or_default().to_owned());
        }
    }
    Ok(ExitCode::SUCCESS)
}
