//! The peer-to-peer network: libp2p transports (TCP with TLS 1.3 or Noise, QUIC, relayed),
//! identify and ping, a Kademlia DHT, gossipsub for transactions, block announcements and
//! market offers, mDNS on the local network, rendezvous, relays and hole punching, the
//! request-response sync protocol, the market protocol (order book pages), and the file
//! protocol (ranges, flooded search) with provider records in the DHT.
//!
//! Exactly one task owns the `Swarm` (`task.rs`); everyone else holds a [`Handle`] and reads
//! the [`Events`] stream meant for it. This crate moves typed messages and enforces size,
//! rate and connection limits; it must never know what makes a block or transaction valid
//! (that is `consensus` and `chain`, reached only through `node`).
//!
//! How a message flows:
//! - out: `Handle` → `Command` (bounded queue) → `Task::command` → the behaviour;
//!   a request's reply waits in its protocol's `request_response::Requests` until the peer
//!   answers, the request fails, or the network stops;
//! - in: the behaviour → `Task::behaviour_event` → the consumer's event queue (`SyncEvent`,
//!   `FileEvent`, `MarketEvent`); gossip is routed by the topic table (`gossip.rs`), unknown topics dropped;
//!   a peer's request waits in `Requests` until the consumer answers through the `Handle`.
//!
//! Modules: `behaviour.rs` (the composed behaviour and swarm), `task.rs` (the actor),
//! `request_response.rs` (per-protocol plumbing), `gossip.rs` (topics, ids, scoring,
//! batching), `discovery.rs` (dialling: bootstrap, anchors, outbound choice, relays,
//! rendezvous), `outbound.rs` (address groups and anchors), `limits.rs`, `address.rs`,
//! `identity.rs`, `secure.rs` (the TLS upgrade), `protocol.rs` (wire messages and codec).

mod address;
mod behaviour;
mod discovery;
mod gossip;
mod identity;
mod limits;
mod outbound;
pub mod protocol;
mod request_response;
mod secure;
mod task;

use std::time::Duration;

use libp2p::{Multiaddr, PeerId, gossipsub};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use gossip::{TX_BATCH_WINDOW, Topic};
pub use identity::load_or_create_keypair;
pub use libp2p::gossipsub::MessageId;
pub use libp2p::identity::Keypair;
pub use libp2p::kad::RecordKey as DhtKey;
pub use libp2p::multiaddr::Protocol;
pub use libp2p::{Multiaddr as Address, PeerId as Peer};
pub use limits::TokenBucket;
pub use protocol::files;
pub use protocol::files::{FileRequest, FileResponse, Hit, Price, Provider};
pub use protocol::market::{MarketRequest, MarketResponse};
pub use protocol::{Announcement, Request, Response, Status};

/// Network settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The chain's name, part of every protocol and topic name: nodes of different networks
    /// cannot even negotiate a protocol with each other.
    pub network: String,
    /// Where to listen.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start.
    pub bootstrap: Vec<Multiaddr>,
    /// Whether to find peers on the local network with mDNS.
    pub mdns: bool,
    /// Most inbound connections.
    pub max_inbound: u32,
    /// Most outbound connections.
    pub max_outbound: u32,
    /// Outbound peers the node keeps: below this it dials peers the DHT knows.
    pub target_outbound: usize,
    /// How long an idle connection stays open.
    pub idle_timeout: Duration,
    /// Most inbound connections from one IP address.
    pub max_inbound_per_ip: u32,
    /// Whether loopback addresses count toward `max_inbound_per_ip` (not by default: a local
    /// network of nodes all comes from 127.0.0.1).
    pub limit_loopback: bool,
    /// Sync requests a peer may make per second, and in a burst; more are refused.
    pub sync_requests: (f64, f64),
    /// Where the ban list is kept across restarts (none: in memory only).
    pub ban_file: Option<std::path::PathBuf>,
    /// Relays (multiaddrs with `/p2p/<peer id>`) to be reachable through: for a node behind a
    /// NAT, which peers then reach through the relay and upgrade to a direct connection by
    /// hole punching.
    pub relays: Vec<Multiaddr>,
    /// Whether to serve as a relay for others (circuit relay v2, with libp2p's limits: a
    /// relayed connection lasts 2 minutes and carries 128 KiB, enough to meet and punch a
    /// hole, not for bulk data). A relay serves once it knows an address others reach it at:
    /// one AutoNAT confirms, or one of `external_addrs`.
    pub relay_server: bool,
    /// Addresses others reach this node at, when it knows them (a public IP and port
    /// forwarded to it); otherwise AutoNAT finds out.
    pub external_addrs: Vec<Multiaddr>,
    /// Whether to keep a rendezvous registry for others (libp2p rendezvous, bounded at
    /// 10,000 registrations and 32 per peer): peers with an external address register
    /// there, and any peer asks it for the others. Only peers that dialled this node use
    /// it, so in practice the reachable nodes are the super-peers.
    pub rendezvous_server: bool,
    /// How often the node registers again at its rendezvous points and asks them for peers.
    pub rendezvous_interval: Duration,
    /// Whether to offer TLS 1.3 (AES-GCM where the processor has AES instructions) before
    /// Noise on TCP and relayed connections; Noise is always accepted.
    pub tls: bool,
    /// Most inbound connections through relays (they come from no address of their own, so
    /// the per-IP cap cannot hold them).
    pub max_inbound_relayed: u32,
    /// Where the outbound peers are saved at shutdown and read at start, to be dialled first
    /// (none: not kept).
    pub anchors_file: Option<std::path::PathBuf>,
}

impl Config {
    /// Defaults for `network`, listening on `listen`.
    pub fn new(network: &str, listen: Vec<Multiaddr>) -> Self {
        Self {
            network: network.to_owned(),
            listen,
            bootstrap: Vec::new(),
            mdns: true,
            max_inbound: 64,
            max_outbound: 16,
            target_outbound: 8,
            // Correctness: request-response and ping do not keep a connection alive, and
            // libp2p closes idle ones after 10 s by default; peers of a chain stay connected.
            idle_timeout: Duration::from_secs(3600),
            max_inbound_per_ip: 8,
            limit_loopback: false,
            // A node syncing from this one asks for 8 blocks a request and keeps a window of
            // requests open: hundreds a second on a fast link. A flood of cheap requests is
            // what this stops.
            sync_requests: (200.0, 400.0),
            ban_file: None,
            relays: Vec::new(),
            relay_server: true,
            external_addrs: Vec::new(),
            rendezvous_server: true,
            rendezvous_interval: Duration::from_secs(60),
            tls: true,
            max_inbound_relayed: 8,
            anchors_file: None,
        }
    }
}

/// Whether a gossip message should travel on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: relay it.
    Accept,
    /// Invalid: drop it and penalise the sender.
    Reject,
    /// Not invalid, not worth relaying (a duplicate, an orphan).
    Ignore,
}

/// Which side opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The peer dialled us.
    Inbound,
    /// We dialled the peer.
    Outbound,
}

/// A connected peer.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Its id.
    pub peer: PeerId,
    /// The address of the connection.
    pub address: Multiaddr,
    /// Who dialled.
    pub direction: Direction,
    /// The software it says it runs.
    pub agent: Option<String>,
    /// The last ping round trip.
    pub latency: Option<Duration>,
    /// Its misbehaviour points, as the node reported them ([`Handle::set_score`]).
    pub score: u32,
    /// Its gossipsub peer score (positive for useful peers, negative for bad ones).
    pub gossip_score: Option<f64>,
    /// The IP address limits and bans hold against it, if any: none for a relayed peer, nor
    /// for one on loopback unless loopback is limited.
    pub ip: Option<std::net::IpAddr>,
}

/// The id of an inbound request awaiting its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InboundId(u64);

/// What the network tells the node's sync loop: peers coming and going, gossip on the
/// chain's topics, and peers' sync requests.
#[derive(Debug)]
pub enum SyncEvent {
    /// A peer connected (its first connection).
    PeerConnected(PeerInfo),
    /// A peer's last connection closed.
    PeerDisconnected(PeerId),
    /// A gossip message to validate; answer with [`Handle::report`].
    Gossip {
        /// The topic.
        topic: Topic,
        /// Its bytes.
        data: Vec<u8>,
        /// Who relayed it to us.
        source: PeerId,
        /// Its id, for the verdict.
        id: gossipsub::MessageId,
    },
    /// A peer asks something; answer with [`Handle::respond`].
    Request {
        /// Who asks.
        peer: PeerId,
        /// What.
        request: Request,
        /// Where the answer goes.
        id: InboundId,
    },
}

/// What the network tells file sharing: peers' requests.
#[derive(Debug)]
pub enum FileEvent {
    /// A peer asks for a file, a range or a search; answer with [`Handle::respond_file`].
    Request {
        /// Who asks.
        peer: PeerId,
        /// What.
        request: FileRequest,
        /// Where the answer goes.
        id: InboundId,
    },
}

/// What the network tells the market: offers gossiped, peers' requests for the book, and
/// peers ready to be asked for theirs.
#[derive(Debug)]
pub enum MarketEvent {
    /// A peer of this network finished its handshake: one to ask for its book.
    PeerReady(PeerId),
    /// A contract message gossiped; answer with [`Handle::report`].
    Contract {
        /// Its bytes.
        data: Vec<u8>,
        /// Who relayed it to us.
        source: PeerId,
        /// Its id, for the verdict.
        id: gossipsub::MessageId,
    },
    /// An offer gossiped; answer with [`Handle::report`].
    Offer {
        /// Its bytes.
        data: Vec<u8>,
        /// Who relayed it to us.
        source: PeerId,
        /// Its id, for the verdict.
        id: gossipsub::MessageId,
    },
    /// A peer asks for a page of the book; answer with [`Handle::respond_market`].
    Request {
        /// Who asks.
        peer: PeerId,
        /// What.
        request: MarketRequest,
        /// Where the answer goes.
        id: InboundId,
    },
}

/// The network's event streams, one per consumer: each part of the node reads its own, and a
/// slow one holds up no other.
#[derive(Debug)]
pub struct Events {
    /// For the sync loop.
    pub sync: mpsc::Receiver<SyncEvent>,
    /// For file sharing.
    pub files: mpsc::Receiver<FileEvent>,
    /// For the market.
    pub market: mpsc::Receiver<MarketEvent>,
}

/// Why a request to a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// The peer did not answer in time, the connection dropped, or the answer was malformed.
    #[error("request to {peer} failed: {reason}")]
    Failed {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The network task has stopped.
    #[error("the network has shut down")]
    Stopped,
}

/// What the node knows about itself on the network.
#[derive(Debug, Clone)]
pub struct LocalInfo {
    /// Its peer id.
    pub peer: PeerId,
    /// Where it listens.
    pub listen_addrs: Vec<Multiaddr>,
}

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The transport or a behaviour could not be built.
    #[error("cannot build the network: {0}")]
    Build(String),
    /// A listen address could not be used.
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        /// The address.
        address: Multiaddr,
        /// Why.
        reason: String,
    },
}

enum Command {
    Dial(Multiaddr),
    Publish(Topic, Vec<u8>),
    Report(gossipsub::MessageId, PeerId, Verdict),
    Request(PeerId, Request, oneshot::Sender<Result<Response, RequestError>>),
    Respond(InboundId, Response),
    FileRequest(PeerId, FileRequest, oneshot::Sender<Result<FileResponse, RequestError>>),
    FileRespond(InboundId, FileResponse),
    MarketRequest(PeerId, MarketRequest, oneshot::Sender<Result<MarketResponse, RequestError>>),
    MarketRespond(InboundId, MarketResponse),
    Provide(DhtKey),
    StopProviding(DhtKey),
    FindProviders(DhtKey, oneshot::Sender<Vec<PeerId>>),
    Ban(PeerId, Duration),
    SetScore(PeerId, u32),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Local(oneshot::Sender<LocalInfo>),
    RendezvousPeers(oneshot::Sender<Vec<(PeerId, Vec<Multiaddr>)>>),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("net::Command")
    }
}

/// A cloneable handle on the network task.
#[derive(Clone, Debug)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    local_peer: PeerId,
    /// libp2p's metrics, recorded by the task.
    metrics: std::sync::Arc<std::sync::Mutex<prometheus_client::registry::Registry>>,
}

impl Handle {
    /// libp2p's metrics in the Prometheus text format (connections, protocols, gossip, the
    /// DHT), ending with `# EOF`.
    pub fn encode_metrics(&self) -> String {
        let mut text = String::new();
        let registry = self.metrics.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }

    /// Sends a command that waits for an answer; none if the network has stopped.
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Sends a command that needs no answer; a stopped network drops it (nothing is left to do).
    async fn tell(&self, command: Command) {
        let _ = self.commands.send(command).await;
    }

    /// This node's peer id.
    pub fn local_peer(&self) -> PeerId {
        self.local_peer
    }

    /// Dials an address (with or without a trailing `/p2p/<peer id>`).
    pub async fn dial(&self, address: Multiaddr) {
        self.tell(Command::Dial(address)).await;
    }

    /// Publishes on a gossip topic. On [`Topic::Transactions`], `data` is one encoded
    /// transaction: those published within [`TX_BATCH_WINDOW`] go out together as one message
    /// (read with [`protocol::decode_transaction_batch`]).
    pub async fn publish(&self, topic: Topic, data: Vec<u8>) {
        self.tell(Command::Publish(topic, data)).await;
    }

    /// Gives the verdict on a gossip message: only accepted messages travel on.
    pub async fn report(&self, id: gossipsub::MessageId, source: PeerId, verdict: Verdict) {
        self.tell(Command::Report(id, source, verdict)).await;
    }

    /// Asks a peer of the sync protocol and waits for its answer.
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Response, RequestError> {
        self.ask(|reply| Command::Request(peer, request, reply)).await.unwrap_or(Err(RequestError::Stopped))
    }

    /// Answers an inbound sync request.
    pub async fn respond(&self, id: InboundId, response: Response) {
        self.tell(Command::Respond(id, response)).await;
    }

    /// Asks a peer of the file protocol and waits for its answer.
    pub async fn request_file(&self, peer: PeerId, request: FileRequest) -> Result<FileResponse, RequestError> {
        self.ask(|reply| Command::FileRequest(peer, request, reply)).await.unwrap_or(Err(RequestError::Stopped))
    }

    /// Answers an inbound file request.
    pub async fn respond_file(&self, id: InboundId, response: FileResponse) {
        self.tell(Command::FileRespond(id, response)).await;
    }

    /// Asks a peer of the market protocol and waits for its answer.
    pub async fn request_market(&self, peer: PeerId, request: MarketRequest) -> Result<MarketResponse, RequestError> {
        self.ask(|reply| Command::MarketRequest(peer, request, reply)).await.unwrap_or(Err(RequestError::Stopped))
    }

    /// Answers an inbound market request.
    pub async fn respond_market(&self, id: InboundId, response: MarketResponse) {
        self.tell(Command::MarketRespond(id, response)).await;
    }

    /// Announces in the DHT that this node provides `key` (republished until stopped).
    pub async fn provide(&self, key: DhtKey) {
        self.tell(Command::Provide(key)).await;
    }

    /// Stops announcing `key`.
    pub async fn stop_providing(&self, key: DhtKey) {
        self.tell(Command::StopProviding(key)).await;
    }

    /// Finds providers of `key` in the DHT, and starts connecting to them (the addresses
    /// a DHT query learns live only as long as the query). None once the network stopped.
    pub async fn find_providers(&self, key: DhtKey) -> Vec<PeerId> {
        self.ask(|reply| Command::FindProviders(key, reply)).await.unwrap_or_default()
    }

    /// Disconnects a peer and refuses its connections, and its address's, for `duration`.
    pub async fn ban(&self, peer: PeerId, duration: Duration) {
        self.tell(Command::Ban(peer, duration)).await;
    }

    /// Records a peer's misbehaviour points, for [`PeerInfo::score`].
    pub async fn set_score(&self, peer: PeerId, score: u32) {
        self.tell(Command::SetScore(peer, score)).await;
    }

    /// The connected peers (none once the network stopped).
    pub async fn peers(&self) -> Vec<PeerInfo> {
        self.ask(Command::Peers).await.unwrap_or_default()
    }

    /// This node's id and listen addresses; none once the network stopped.
    pub async fn local(&self) -> Option<LocalInfo> {
        self.ask(Command::Local).await
    }

    /// Peers learned from rendezvous points, with the addresses they registered.
    pub async fn rendezvous_peers(&self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        self.ask(Command::RendezvousPeers).await.unwrap_or_default()
    }
}

/// Capacity of the command queue and of each event queue.
const QUEUE: usize = 1024;

/// Starts the network task. Returns its handle, the event streams and the task, which ends
/// once `cancel` is cancelled (after answering every waiting requester).
pub fn spawn(
    keypair: Keypair,
    config: Config,
    cancel: CancellationToken,
) -> Result<(Handle, Events, tokio::task::JoinHandle<()>), StartError> {
    let topics = gossip::Topics::of(&config.network);
    let swarm = behaviour::build_swarm(keypair, &config, &topics)?;
    let local_peer = *swarm.local_peer_id();
    let (commands, command_receiver) = mpsc::channel(QUEUE);
    let (sync_sender, sync) = mpsc::channel(QUEUE);
    let (files_sender, files) = mpsc::channel(QUEUE);
    let (market_sender, market) = mpsc::channel(QUEUE);
    let senders = task::Senders { sync: sync_sender, files: files_sender, market: market_sender };
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = libp2p::metrics::Metrics::new(&mut registry);
    let bans = prometheus_client::metrics::counter::Counter::default();
    registry.register("peerchain_peer_bans", "Peers banned since start (each with its address)", bans.clone());
    let task = task::Task::new(swarm, config, topics, command_receiver, senders, (metrics, bans))?;
    let join = tokio::spawn(task.run(cancel));
    let metrics = std::sync::Arc::new(std::sync::Mutex::new(registry));
    Ok((Handle { commands, local_peer, metrics }, Events { sync, files, market }, join))
}
