//! A peerchain node: opens the data directory, starts the chain actor, the JSON-RPC server
//! and the miner, and stops them in order.
//!
//! This crate decides how the parts are wired and configured; it must not implement rules,
//! storage layout or protocols itself.

pub mod config;
mod explorer;
mod files;
mod market;
mod peers;
mod relay;
mod sync;
mod wallet_sync;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use peerchain_chain::{FeeRate, MempoolLimits, MinerConfig};
use peerchain_consensus::Params;
use peerchain_primitives::{Address, Network};
use peerchain_store::Store;
use peerchain_wallet::{SharedWallet, Wallet};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::{Config, ConfigError, default_p2p_port, default_rpc_addr};

/// The file in the data directory holding the running node's RPC address.
pub const RPC_ADDR_FILE: &str = "rpc.addr";
/// The file in the data directory holding the RPC cookie.
pub const COOKIE_FILE: &str = ".cookie";
/// The chain store's file in the data directory.
pub const CHAIN_FILE: &str = "chain.redb";
/// The node's network identity key in the data directory.
pub const NODE_KEY_FILE: &str = "node.key";
/// Banned peers and addresses and when their bans end, in the data directory.
pub const BAN_FILE: &str = "bans.txt";
/// The outbound peers of the last run, dialled first at start, in the data directory.
pub const ANCHORS_FILE: &str = "anchors.txt";
/// The blob store's folder in the data directory.
pub const BLOBS_DIR: &str = "blobs";

/// Why the node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory is unusable.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The chain could not write its store (a full disk, an I/O error) and the node stopped.
    #[error(
        "the node stopped because the chain could not write to disk: {0}. Nothing committed was lost: free some space (or fix the disk) and start the node again; it resumes where it was"
    )]
    StorageFailed(String),
    /// The chain store could not be opened.
    #[error("chain store {path}: {source}")]
    Store {
        /// The store file.
        path: PathBuf,
        /// Why.
        source: peerchain_store::Error,
    },
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] peerchain_chain::Error),
    /// The wallet failed.
    #[error(transparent)]
    Wallet(#[from] peerchain_wallet::Error),
    /// The miner address is not an address of this network.
    #[error("--miner-address: {0}")]
    MinerAddress(#[from] peerchain_primitives::AddressError),
    /// The blob store could not be opened.
    #[error(transparent)]
    Blobs(#[from] peerchain_blobs::Error),
    /// The network could not start.
    #[error("network: {0}")]
    Network(String),
    /// The RPC address could not be bound.
    #[error("cannot listen for JSON-RPC on {addr}: {source} (is another node running? pick another with --rpc-addr)")]
    RpcBind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// What to run, after flags and the config file are merged.
#[derive(Debug, Clone)]
pub struct Options {
    /// The network.
    pub network: Network,
    /// The data directory (of this network).
    pub data_dir: PathBuf,
    /// The configuration.
    pub config: Config,
}

/// The platform's data folder for `network`, e.g. `~/.local/share/peerchain/devnet`.
pub fn default_data_dir(network: Network) -> PathBuf {
    directories::ProjectDirs::from("", "", "peerchain")
        .map(|dirs| dirs.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".peerchain"))
        .join(network.name())
}

fn create_private_dir(path: &Path) -> Result<(), Error> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|source| Error::DataDir { path: path.to_owned(), source })
}

fn parse_addrs(texts: &[String], what: &str) -> Result<Vec<peerchain_net::Address>, Error> {
    texts
        .iter()
        .map(|t| t.parse().map_err(|e| Error::Network(format!("{what} `{t}` is not a multiaddr: {e}"))))
        .collect()
}

/// The network and the parts of the node that talk to peers (chain sync, file sharing), each
/// running in a task of `tasks` until `cancel`.
fn start_network(
    network: Network,
    data_dir: &Path,
    config: &Config,
    (chain, wallet, wallet_sends): (peerchain_chain::Handle, SharedWallet, Arc<tokio::sync::Mutex<()>>),
    blobs: Arc<peerchain_blobs::Store>,
    tasks: &mut JoinSet<()>,
    cancel: CancellationToken,
) -> Result<(peerchain_net::Handle, Arc<files::Files>, market::MarketHandle), Error> {
    let key_path = data_dir.join(NODE_KEY_FILE);
    let keypair =
        peerchain_net::load_or_create_keypair(&key_path).map_err(|source| Error::DataDir { path: key_path, source })?;
    let port = default_p2p_port(network);
    let listen = if config.network.listen.is_empty() {
        vec![format!("/ip4/0.0.0.0/tcp/{port}"), format!("/ip4/0.0.0.0/udp/{port}/quic-v1")]
    } else {
        config.network.listen.clone()
    };
    let mut net_config = peerchain_net::Config::new(network.name(), parse_addrs(&listen, "--listen")?);
    net_config.bootstrap = parse_addrs(&config.network.bootstrap, "--bootstrap")?;
    net_config.mdns = !config.network.no_mdns;
    net_config.max_inbound = config.network.max_inbound.unwrap_or(net_config.max_inbound);
    net_config.max_inbound_per_ip = config.network.max_inbound_per_ip.unwrap_or(net_config.max_inbound_per_ip);
    net_config.ban_file = Some(data_dir.join(BAN_FILE));
    net_config.anchors_file = Some(data_dir.join(ANCHORS_FILE));
    net_config.relays = parse_addrs(&config.network.relays, "relays")?;
    net_config.relay_server = config.network.relay_server;
    net_config.tls = config.network.tls;
    net_config.rendezvous_server = config.network.rendezvous_server;
    net_config.external_addrs = parse_addrs(&config.network.external_addrs, "external_addrs")?;
    let (net, events, net_task) =
        peerchain_net::spawn(keypair, net_config, cancel.clone()).map_err(|e| Error::Network(e.to_string()))?;
    info!(peer_id = %net.local_peer(), "network started");
    tasks.spawn(async move {
        if let Err(e) = net_task.await {
            warn!(error = %e, "network task failed");
        }
    });
    let book = peers::Book::new(net.clone());
    let limits = files::Limits {
        max_upload_bytes_per_sec: config.files.max_upload_kib_per_sec * 1024,
        max_download_bytes_per_sec: config.files.max_download_kib_per_sec * 1024,
        max_concurrent_uploads: config.files.max_concurrent_uploads,
    };
    let channels_path = peerchain_market::Channels::path_in(data_dir);
    let channels = peerchain_market::Channels::open(&channels_path)
        .map_err(|e| Error::Network(format!("payment channels: {e}")))?;
    let payments = files::Payments {
        chain: chain.clone(),
        wallet: wallet.clone(),
        wallet_sends,
        channels: Arc::new(channels),
        min_fee_per_byte: config.chain.min_relay_fee_rate,
        network_magic: network.magic(),
    };
    let files = files::Files::new(blobs, net.clone(), book.clone(), limits, payments, cancel.clone());
    tasks.spawn(files.clone().run(events.files));
    let (market, market_handle) = market::Market::new(data_dir, chain.clone(), net.clone(), book.clone(), wallet)
        .map_err(|e| Error::Network(format!("market index: {e}")))?;
    tasks.spawn(market.run(events.market, cancel.clone()));
    let sync = sync::ChainSync::new(chain, net.clone(), book, config.network.compact_blocks);
    tasks.spawn(sync.run(events.sync, cancel));
    Ok((net, files, market_handle))
}

/// Runs a node until `shutdown` is cancelled (by a signal or `node.stop`), then stops every
/// part in order and makes the chain durable.
pub async fn run(options: Options, shutdown: CancellationToken) -> Result<(), Error> {
    let Options { network, data_dir, config } = options;
    create_private_dir(&data_dir)?;
    let params = Params::for_network(network);
    let store_path = data_dir.join(CHAIN_FILE);
    let store =
        Store::open(&store_path, &params).map_err(|source| Error::Store { path: store_path.clone(), source })?;
    let chain_config = peerchain_chain::Config {
        mempool: MempoolLimits {
            max_bytes: config.chain.mempool_max_mib << 20,
            min_relay_rate: FeeRate::per_byte(config.chain.min_relay_fee_rate),
            // Bitcoin Core's default: the incremental relay fee equals the minimum relay fee.
            incremental_relay_rate: FeeRate::per_byte(config.chain.min_relay_fee_rate),
        },
        coin_cache_bytes: config.chain.coin_cache_mib << 20,
        max_low_work_headers: config.chain.max_low_work_headers,
    };
    let (chain, chain_thread) = peerchain_chain::spawn(Arc::new(store), params, chain_config)?;
    let tip = chain.tip();
    info!(%network, data_dir = %data_dir.display(), height = tip.height, tip = %tip.hash, "node starting");

    let rpc_addr = config.rpc.addr.unwrap_or_else(|| default_rpc_addr(network));
    let (listener, bound) =
        peerchain_rpc::bind(rpc_addr).await.map_err(|source| Error::RpcBind { addr: rpc_addr, source })?;
    let cookie_path = data_dir.join(COOKIE_FILE);
    let cookie = peerchain_rpc::write_cookie(&cookie_path)
        .map_err(|source| Error::DataDir { path: cookie_path.clone(), source })?;
    let addr_path = data_dir.join(RPC_ADDR_FILE);
    std::fs::write(&addr_path, bound.to_string())
        .map_err(|source| Error::DataDir { path: addr_path.clone(), source })?;

    let mut rpc_config = peerchain_rpc::Config::on(bound);
    if let (Some(user), Some(password)) = (config.rpc.user.clone(), config.rpc.password.clone()) {
        rpc_config.user = Some((user, password));
    }
    if let Some(n) = config.rpc.max_concurrent {
        rpc_config.max_concurrent = n.max(1);
    }
    if let Some(n) = config.rpc.max_body_bytes {
        rpc_config.max_body_bytes = n;
    }
    // Every task of the node, stopped by `cancel` and awaited before the chain is saved.
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let blobs = Arc::new(peerchain_blobs::Store::open(&data_dir.join(BLOBS_DIR))?);
    let wallet = match Wallet::open(&data_dir, network) {
        Ok(wallet) => SharedWallet::new(Some(wallet)),
        Err(peerchain_wallet::Error::Missing(_)) => SharedWallet::new(None),
        // The node runs without it; wallet calls report the same error.
        Err(e) => {
            warn!(error = %e, "wallet not loaded");
            SharedWallet::new(None)
        }
    };
    let wallet_sends = Arc::new(tokio::sync::Mutex::new(()));
    let (net, files, market) = start_network(
        network,
        &data_dir,
        &config,
        (chain.clone(), wallet.clone(), wallet_sends.clone()),
        blobs.clone(),
        &mut tasks,
        cancel.clone(),
    )?;
    tasks.spawn(wallet_sync::WalletSync::new(wallet.clone(), chain.clone(), net.clone()).run(cancel.clone()));
    let addresses_path = peerchain_store::AddressIndex::path_in(&data_dir);
    let addresses = Arc::new(
        peerchain_store::AddressIndex::open(&addresses_path)
            .map_err(|source| Error::Store { path: addresses_path.clone(), source })?,
    );
    tasks.spawn(explorer::AddressIndexer::new(addresses.clone(), chain.clone()).run(cancel.clone()));
    let market = Arc::new(market::Service {
        market,
        chain: chain.clone(),
        net: net.clone(),
        wallet: wallet.clone(),
        wallet_sends: wallet_sends.clone(),
        min_coin_give: peerchain_market::Policy::default().min_coin_give,
    });
    let context = Arc::new(peerchain_rpc::Context {
        net: net.clone(),
        chain: chain.clone(),
        network,
        data_dir: data_dir.clone(),
        shutdown: shutdown.clone(),
        rpc_addr: bound,
        wallet: wallet.clone(),
        wallet_sends,
        files: Arc::new(files::Service(files)),
        relay: Arc::new(relay::Relay::new(chain.clone(), net.clone())),
        market: market.clone(),
        contracts: market,
        addresses,
    });
    let rpc = peerchain_rpc::serve(listener, rpc_config, cookie, context, cancel.clone());
    tasks.spawn(async move {
        if let Err(e) = rpc.await {
            warn!(error = %e, "JSON-RPC server stopped with an error");
        }
    });

    if config.mining.enabled {
        let reward_to = match &config.mining.address {
            Some(text) => Address::parse(text, network)?,
            None => peerchain_wallet::mining_address(&wallet, &data_dir, network, chain.tip().height)?,
        };
        let threads =
            config.mining.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        info!(address = %reward_to, threads, "mining");
        let miner = MinerConfig { reward_to: reward_to.key_hash, threads, refresh: std::time::Duration::from_secs(5) };
        tasks.spawn(peerchain_chain::run_miner(chain.clone(), miner, cancel.clone()));
    }

    // Stop when asked, or when the chain can no longer write its store (a full disk): a clean
    // stop loses nothing, where running on would leave the chain, wallet and indexes apart.
    let halted = tokio::select! {
        _ = shutdown.cancelled() => None,
        reason = chain.halted() => Some(reason),
    };
    match &halted {
        None => info!("shutting down"),
        Some(reason) => tracing::error!(%reason, "the chain store cannot be written; stopping the node"),
    }
    cancel.cancel();
    // Correctness: every task has stopped (the miner submits no more, RPC takes no more
    // calls, downloads have saved their progress) before the chain is made durable.
    while let Some(ended) = tasks.join_next().await {
        if let Err(e) = ended {
            warn!(error = %e, "a task of the node failed");
        }
    }
    if let Err(e) = tokio::task::spawn_blocking(move || blobs.sync_all()).await.unwrap_or(Ok(())) {
        warn!(error = %e, "cannot save download progress");
    }
    let _ = std::fs::remove_file(&addr_path);
    let _ = std::fs::remove_file(&cookie_path);
    let saved = chain.shutdown().await;
    drop(chain);
    let _ = tokio::task::spawn_blocking(move || chain_thread.join()).await;
    if let Some(reason) = halted {
        if let Err(e) = saved {
            warn!(error = %e, "chain state not saved (what was committed before the failure stays)");
        }
        return Err(Error::StorageFailed(reason));
    }
    saved?;
    info!("stopped");
    Ok(())
}
