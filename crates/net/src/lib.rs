//! The peer-to-peer network: libp2p transports (TCP and QUIC, Noise, Yamux), identify and
//! ping, a Kademlia DHT, gossipsub for transactions and block announcements, mDNS on the local
//! network, the request-response sync protocol, and the file protocol (ranges, flooded
//! search) with provider records in the DHT.
//!
//! Exactly one task owns the `Swarm`; everyone else holds a [`Handle`] and receives
//! [`Event`]s. This crate moves typed messages and enforces size and connection limits; it
//! must never know what makes a block or transaction valid (that is `consensus` and `chain`,
//! reached only through `node`).

pub mod files;
mod limits;
mod outbound;
pub mod protocol;
mod secure;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::DialError;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, allow_block_list, autonat, connection_limits, dcutr, gossipsub, identify,
    identity, kad, mdns, noise, ping, relay, rendezvous, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use files::{FileRequest, FileResponse, Hit, Provider};
pub use libp2p::gossipsub::MessageId;
pub use libp2p::identity::Keypair;
pub use libp2p::kad::RecordKey as DhtKey;
pub use libp2p::multiaddr::Protocol;
pub use libp2p::{Multiaddr as Address, PeerId as Peer};
pub use limits::TokenBucket;
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

/// Which gossip topic a message came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Transactions.
    Transactions,
    /// Block announcements (headers).
    Blocks,
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

/// What the network tells the node.
#[derive(Debug)]
pub enum Event {
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
    /// A peer asks for a file, a range or a search; answer with [`Handle::respond_file`].
    FileRequest {
        /// Who asks.
        peer: PeerId,
        /// What.
        request: FileRequest,
        /// Where the answer goes.
        id: InboundId,
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

enum Command {
    Dial(Multiaddr),
    Publish(Topic, Vec<u8>),
    Report(gossipsub::MessageId, PeerId, Verdict),
    Request(PeerId, Request, oneshot::Sender<Result<Response, RequestError>>),
    Respond(InboundId, Response),
    FileRequest(PeerId, FileRequest, oneshot::Sender<Result<FileResponse, RequestError>>),
    FileRespond(InboundId, FileResponse),
    DialPeer(PeerId, Vec<Multiaddr>),
    Provide(DhtKey),
    StopProviding(DhtKey),
    FindProviders(DhtKey, oneshot::Sender<Vec<PeerId>>),
    Ban(PeerId, Duration),
    SetScore(PeerId, u32),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Local(oneshot::Sender<LocalInfo>),
    RendezvousPeers(oneshot::Sender<Vec<(PeerId, Vec<Multiaddr>)>>),
}

/// A cloneable handle on the network task.
#[derive(Clone, Debug)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    local_peer: PeerId,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("net::Command")
    }
}

impl Handle {
    /// This node's peer id.
    pub fn local_peer(&self) -> PeerId {
        self.local_peer
    }

    /// Dials an address (with or without a trailing `/p2p/<peer id>`).
    pub async fn dial(&self, address: Multiaddr) {
        let _ = self.commands.send(Command::Dial(address)).await;
    }

    /// Publishes on a gossip topic. On [`Topic::Transactions`], `data` is one encoded
    /// transaction: those published within [`TX_BATCH_WINDOW`] go out together as one message
    /// (read with [`protocol::decode_transaction_batch`]).
    pub async fn publish(&self, topic: Topic, data: Vec<u8>) {
        let _ = self.commands.send(Command::Publish(topic, data)).await;
    }

    /// Gives the verdict on a gossip message: only accepted messages travel on.
    pub async fn report(&self, id: gossipsub::MessageId, source: PeerId, verdict: Verdict) {
        let _ = self.commands.send(Command::Report(id, source, verdict)).await;
    }

    /// Asks a peer and waits for its answer.
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Response, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Request(peer, request, reply)).await.map_err(|_| RequestError::Stopped)?;
        answer.await.map_err(|_| RequestError::Stopped)?
    }

    /// Answers an inbound request.
    pub async fn respond(&self, id: InboundId, response: Response) {
        let _ = self.commands.send(Command::Respond(id, response)).await;
    }

    /// Asks a peer of the file protocol and waits for its answer; dials the peer if needed.
    pub async fn request_file(&self, peer: PeerId, request: FileRequest) -> Result<FileResponse, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::FileRequest(peer, request, reply)).await.map_err(|_| RequestError::Stopped)?;
        answer.await.map_err(|_| RequestError::Stopped)?
    }

    /// Answers an inbound file request.
    pub async fn respond_file(&self, id: InboundId, response: FileResponse) {
        let _ = self.commands.send(Command::FileRespond(id, response)).await;
    }

    /// Dials a peer at the given addresses (learnt from a search hit), unless connected.
    pub async fn dial_peer(&self, peer: PeerId, addresses: Vec<Multiaddr>) {
        let _ = self.commands.send(Command::DialPeer(peer, addresses)).await;
    }

    /// Announces in the DHT that this node provides `key` (republished until stopped).
    pub async fn provide(&self, key: DhtKey) {
        let _ = self.commands.send(Command::Provide(key)).await;
    }

    /// Stops announcing `key`.
    pub async fn stop_providing(&self, key: DhtKey) {
        let _ = self.commands.send(Command::StopProviding(key)).await;
    }

    /// Finds providers of `key` in the DHT, and starts connecting to them (the addresses
    /// a DHT query learns live only as long as the query).
    pub async fn find_providers(&self, key: DhtKey) -> Vec<PeerId> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::FindProviders(key, reply)).await.is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Disconnects a peer and refuses its connections for `duration`.
    pub async fn ban(&self, peer: PeerId, duration: Duration) {
        let _ = self.commands.send(Command::Ban(peer, duration)).await;
    }

    /// Records a peer's misbehaviour points, for [`PeerInfo::score`].
    pub async fn set_score(&self, peer: PeerId, score: u32) {
        let _ = self.commands.send(Command::SetScore(peer, score)).await;
    }

    /// The connected peers.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Peers(reply)).await.is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// This node's id and listen addresses.
    pub async fn local(&self) -> Option<LocalInfo> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Local(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Peers learned from rendezvous points, with the addresses they registered.
    pub async fn rendezvous_peers(&self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::RendezvousPeers(reply)).await.is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    banned: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    ip_limit: limits::IpLimit,
    relay_client: relay::client::Behaviour,
    relay: Toggle<relay::Behaviour>,
    dcutr: dcutr::Behaviour,
    autonat: autonat::Behaviour,
    rendezvous: rendezvous::client::Behaviour,
    rendezvous_server: Toggle<rendezvous::server::Behaviour>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    gossipsub: gossipsub::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
    sync: request_response::Behaviour<protocol::Codec<Request, Response>>,
    files: request_response::Behaviour<protocol::Codec<FileRequest, FileResponse>>,
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

/// Capacity of the command and event queues.
const QUEUE: usize = 1024;
/// Most inbound connections still in their handshake.
const MAX_PENDING_INCOMING: u32 = 32;
/// Most inbound requests awaiting the node's answer.
const MAX_PENDING_INBOUND: usize = 256;
/// Most file requests of one peer awaiting the node's answer.
const MAX_FILE_REQUESTS_PER_PEER: usize = 32;
/// Providers a DHT lookup collects before it answers.
const ENOUGH_PROVIDERS: usize = 20;

/// The protocol version identify announces: a peer announcing another is of another network.
fn identify_version(network: &str) -> String {
    format!("/peerchain/{network}/1")
}

fn topic(network: &str, topic: Topic) -> gossipsub::IdentTopic {
    match topic {
        Topic::Transactions => gossipsub::IdentTopic::new(format!("/peerchain/{network}/tx/3")),
        Topic::Blocks => gossipsub::IdentTopic::new(format!("/peerchain/{network}/block/3")),
    }
}

/// Starts the network task. Returns its handle, the event stream and the task.
pub fn spawn(
    keypair: Keypair,
    config: Config,
    cancel: CancellationToken,
) -> Result<(Handle, mpsc::Receiver<Event>, tokio::task::JoinHandle<()>), StartError> {
    let build = |e: &dyn std::fmt::Display| StartError::Build(e.to_string());
    let network = config.network.clone();
    // One certificate for TCP and relayed connections alike.
    let tls = secure::Tls::new(&keypair, config.tls).map_err(|e| build(&e))?;
    let tls = |_: &Keypair| Ok::<_, secure::TlsError>(tls.clone());
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), (tls, noise::Config::new), yamux::Config::default)
        .map_err(|e| build(&e))?
        .with_quic()
        .with_relay_client((tls, noise::Config::new), yamux::Config::default)
        .map_err(|e| build(&e))?
        .with_behaviour(|key, relay_client| {
            let peer = key.public().to_peer_id();
            let limits = connection_limits::ConnectionLimits::default()
                .with_max_established_incoming(Some(config.max_inbound))
                .with_max_established_outgoing(Some(config.max_outbound))
                // Two direct connections (the second for file ranges) and, while a hole
                // punch goes direct, up to two relayed ones: two peers may dial each other
                // through a relay at once, and a direct connection refused here fails the punch.
                .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
                // Security: connections still in their handshake cost memory and CPU too.
                .with_max_pending_incoming(Some(MAX_PENDING_INCOMING));
            // Transactions carry their owners' signatures and blocks their proof of work, so
            // gossip messages are not signed by their publisher: every hop would otherwise
            // verify one more signature per message, and no rule of ours asks who published.
            // Scoring judges the peer that forwarded a message, which stays known.
            let gossip_config = gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::Anonymous)
                .validate_messages()
                // Security: the id is the content's hash, so the same message relayed by
                // many peers is seen once.
                .message_id_fn(|message| gossipsub::MessageId::from(content_id(&message.data)))
                .max_transmit_size(1 << 20)
                .heartbeat_interval(Duration::from_millis(500))
                .build()
                .map_err(|e| e.to_string())?;
            let mut gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)?;
            let (score_params, score_thresholds) = gossip_scoring(&network);
            gossipsub.with_peer_score(score_params, score_thresholds)?;
            for t in [Topic::Transactions, Topic::Blocks] {
                gossipsub.subscribe(&topic(&network, t)).map_err(|e| e.to_string())?;
            }
            let mut kad_config =
                kad::Config::new(StreamProtocol::try_from_owned(format!("/peerchain/{network}/kad/1"))?);
            kad_config.set_query_timeout(Duration::from_secs(30));
            // Provider records are republished every 12 hours and live 48 (the defaults); the
            // store must hold one record per shared file and keyword, far over the default
            // 1,024.
            let store_config =
                kad::store::MemoryStoreConfig { max_provided_keys: 100_000, max_records: 4_096, ..Default::default() };
            let mut kad =
                kad::Behaviour::with_config(peer, kad::store::MemoryStore::with_config(peer, store_config), kad_config);
            // Correctness: Kademlia stays a client until an external address is confirmed;
            // on loopback and local networks that never happens, so serve from the start.
            kad.set_mode(Some(kad::Mode::Server));
            let mdns =
                if config.mdns { Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer)?) } else { None };
            let sync_protocol = StreamProtocol::try_from_owned(format!("/peerchain/{network}/sync/1"))?;
            let sync = request_response::Behaviour::new(
                [(sync_protocol, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(60))
                    .with_max_concurrent_streams(64),
            );
            let files_protocol = StreamProtocol::try_from_owned(format!("/peerchain/{network}/files/1"))?;
            let files = request_response::Behaviour::new(
                [(files_protocol, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(30))
                    .with_max_concurrent_streams(256),
            );
            Ok(Behaviour {
                banned: allow_block_list::Behaviour::default(),
                limits: connection_limits::Behaviour::new(limits),
                ip_limit: limits::IpLimit::new(
                    config.max_inbound_per_ip,
                    config.limit_loopback,
                    config.max_inbound_relayed,
                ),
                relay_client,
                relay: Toggle::from(config.relay_server.then(|| relay::Behaviour::new(peer, relay::Config::default()))),
                dcutr: dcutr::Behaviour::new(peer),
                autonat: autonat::Behaviour::new(peer, autonat::Config::default()),
                rendezvous: rendezvous::client::Behaviour::new(key.clone()),
                rendezvous_server: Toggle::from(
                    config
                        .rendezvous_server
                        .then(|| rendezvous::server::Behaviour::new(rendezvous::server::Config::default())),
                ),
                identify: identify::Behaviour::new(
                    identify::Config::new(identify_version(&network), key.public())
                        .with_agent_version(format!("peerchain/{}", env!("CARGO_PKG_VERSION"))),
                ),
                ping: ping::Behaviour::default(),
                kad,
                gossipsub,
                mdns: Toggle::from(mdns),
                sync,
                files,
            })
        })
        .map_err(|e| build(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    for address in &config.listen {
        swarm
            .listen_on(address.clone())
            .map_err(|e| StartError::Listen { address: address.clone(), reason: e.to_string() })?;
    }
    for address in &config.external_addrs {
        swarm.add_external_address(address.clone());
    }
    // Reachable through each relay: listening on a circuit address dials the relay and
    // reserves a slot there; peers dial `<relay>/p2p-circuit/p2p/<us>`.
    // That happens once the node listens (see `Task::run`); a relay is named by its peer id.
    let mut circuits = Vec::new();
    for relay in &config.relays {
        let circuit = relay.clone().with(libp2p::multiaddr::Protocol::P2pCircuit);
        if !relay.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::P2p(_))) {
            return Err(StartError::Listen { address: circuit, reason: "a relay needs its /p2p/<peer id>".into() });
        }
        circuits.push(circuit);
    }
    let bans = limits::BanList::load(config.ban_file.as_deref());
    for banned in bans.all() {
        match banned {
            limits::Banned::Peer(peer) => {
                swarm.behaviour_mut().banned.block_peer(*peer);
            }
            limits::Banned::Ip(ip) => swarm.behaviour_mut().ip_limit.ban(*ip),
        }
    }
    // Anchors first: the outbound peers of the last run.
    let anchors = config.anchors_file.as_deref().map(outbound::load_anchors).unwrap_or_default();
    let mut first_dials = anchors;
    first_dials.extend(config.bootstrap.iter().cloned());
    let (commands, command_receiver) = mpsc::channel(QUEUE);
    let (events, event_receiver) = mpsc::channel(QUEUE);
    let local_peer = *swarm.local_peer_id();
    let rendezvous_namespace =
        rendezvous::Namespace::new(format!("peerchain/{network}")).map_err(|e| StartError::Build(e.to_string()))?;
    let task = Task {
        swarm,
        network,
        events,
        commands: command_receiver,
        pending_outbound: HashMap::new(),
        pending_inbound: HashMap::new(),
        pending_file_outbound: HashMap::new(),
        pending_file_inbound: HashMap::new(),
        file_requests_per_peer: HashMap::new(),
        provider_queries: HashMap::new(),
        next_inbound: 0,
        peers: HashMap::new(),
        connections: HashMap::new(),
        recent_gossip: RecentGossip::default(),
        tx_batch: TxBatch::default(),
        bans,
        sync_allowance: HashMap::new(),
        sync_requests: config.sync_requests,
        bootstrap: config.bootstrap.iter().map(without_peer_id).collect(),
        target_outbound: config.target_outbound,
        dialled: HashMap::new(),
        bulk_dialled: HashSet::new(),
        rendezvous_namespace,
        rendezvous_points: HashSet::new(),
        rendezvous_found: HashMap::new(),
        rendezvous_interval: config.rendezvous_interval,
        relay_listeners: HashMap::new(),
        circuits_to_listen: circuits,
        first_dials,
        listens: !config.listen.is_empty(),
        anchors_file: config.anchors_file.clone(),
        lifecycle: std::collections::VecDeque::new(),
        unsent_responses: limits::ResponseBudget::new(MAX_UNSENT_PER_PEER, MAX_UNSENT_TOTAL),
        unidentified: HashMap::new(),
    };
    let join = tokio::spawn(task.run(cancel));
    Ok((Handle { commands, local_peer }, event_receiver, join))
}

/// Gossipsub peer scoring for our topics. Invalid messages weigh heavily and are remembered
/// for an hour; first deliveries and time in the mesh earn a little. Peers are not penalised
/// for delivering few messages: a quiet chain has few to deliver.
fn gossip_scoring(network: &str) -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let mut params = gossipsub::PeerScoreParams {
        // Security: many peers behind one address look like one attacker's sybils, except on
        // loopback, where local networks and tests run.
        ip_colocation_factor_whitelist: [
            std::net::IpAddr::from([127, 0, 0, 1]),
            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ]
        .into(),
        ..Default::default()
    };
    for t in [Topic::Transactions, Topic::Blocks] {
        let topic_params = gossipsub::TopicScoreParams {
            topic_weight: 1.0,
            time_in_mesh_weight: 0.01,
            time_in_mesh_quantum: Duration::from_secs(1),
            time_in_mesh_cap: 3600.0,
            first_message_deliveries_weight: 1.0,
            first_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(600)),
            first_message_deliveries_cap: 100.0,
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            invalid_message_deliveries_weight: -20.0,
            invalid_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(3600)),
            ..Default::default()
        };
        params.topics.insert(topic(network, t).hash(), topic_params);
    }
    (params, gossipsub::PeerScoreThresholds::default())
}

/// Whether a listen address a peer reports can reach it from here, given the address its
/// connection comes from. A node listening on every interface reports its loopback address
/// too, which from another machine names that machine itself: it is kept only for a peer
/// that is itself on loopback. An unspecified address (0.0.0.0) reaches nobody.
fn reachable_from_here(listen: &Multiaddr, connection: &Multiaddr) -> bool {
    match (limits::ip_of(listen), limits::ip_of(connection)) {
        (Some(listen), _) if listen.is_unspecified() => false,
        (Some(listen), Some(connection)) if listen.is_loopback() => connection.is_loopback(),
        _ => true,
    }
}

/// A gossip message's id: the SHA-256 of its content.
fn content_id(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

/// Ids of the gossip this node received or published lately, so that it does not publish
/// again what gossipsub would refuse as a duplicate (a block fetched after its announcement
/// was seen, say). Gossipsub remembers ids for a minute ([`GOSSIP_MEMORY`]); so does this, for
/// at most [`RECENT_GOSSIP`] ids.
#[derive(Default)]
struct RecentGossip {
    order: std::collections::VecDeque<(std::time::Instant, gossipsub::MessageId)>,
    ids: HashSet<gossipsub::MessageId>,
}

/// How long gossipsub remembers a message id (its default `duplicate_cache_time`).
const GOSSIP_MEMORY: Duration = Duration::from_secs(60);
/// Most ids remembered.
const RECENT_GOSSIP: usize = 16_384;

impl RecentGossip {
    /// Notes an id; false if it was noted within the last minute.
    fn insert(&mut self, id: gossipsub::MessageId) -> bool {
        let now = std::time::Instant::now();
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < GOSSIP_MEMORY && self.order.len() < RECENT_GOSSIP {
                break;
            }
            let (_, old) = self.order.pop_front().expect("not empty");
            self.ids.remove(&old);
        }
        if !self.ids.insert(id.clone()) {
            return false;
        }
        self.order.push_back((now, id));
        true
    }

    /// Drops an id (its publication failed). Rare, so a scan of the order is fine; leaving
    /// the entry there would let it expire the id early if it is noted again.
    fn forget(&mut self, id: &gossipsub::MessageId) {
        if self.ids.remove(id) {
            self.order.retain(|(_, noted)| noted != id);
        }
    }
}

/// How long a transaction published here waits for others to share its gossip message: each
/// message costs every hop a frame, a write and a wake-up per peer, whatever its size.
pub const TX_BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Most bytes of transactions in one gossip message (gossipsub's own cap is 1 MiB).
const TX_BATCH_BYTES: usize = 256 << 10;

/// Transactions waiting to be published together: a count-prefixed list in canonical
/// encoding, as [`protocol::decode_transaction_batch`] reads it.
#[derive(Default)]
struct TxBatch {
    body: Vec<u8>,
    count: usize,
    deadline: Option<tokio::time::Instant>,
}

impl TxBatch {
    /// Adds an encoded transaction; true when the batch is full and should go now.
    fn push(&mut self, transaction: Vec<u8>) -> bool {
        if self.count == 0 {
            self.deadline = Some(tokio::time::Instant::now() + TX_BATCH_WINDOW);
        }
        self.body.extend_from_slice(&transaction);
        self.count += 1;
        self.count >= protocol::MAX_GOSSIP_TRANSACTIONS || self.body.len() >= TX_BATCH_BYTES
    }

    /// The message of the waiting transactions, if any, leaving the batch empty.
    fn take(&mut self) -> Option<Vec<u8>> {
        if self.count == 0 {
            return None;
        }
        let mut message = Vec::with_capacity(self.body.len() + 10);
        peerchain_primitives::encode::put_varint(&mut message, self.count as u64);
        message.append(&mut self.body);
        self.count = 0;
        self.deadline = None;
        Some(message)
    }
}

struct Task {
    swarm: Swarm<Behaviour>,
    network: String,
    events: mpsc::Sender<Event>,
    commands: mpsc::Receiver<Command>,
    pending_outbound: HashMap<OutboundRequestId, (PeerId, oneshot::Sender<Result<Response, RequestError>>)>,
    pending_inbound: HashMap<InboundId, (PeerId, request_response::InboundRequestId, ResponseChannel<Response>)>,
    pending_file_outbound: HashMap<OutboundRequestId, (PeerId, oneshot::Sender<Result<FileResponse, RequestError>>)>,
    pending_file_inbound: HashMap<InboundId, (PeerId, ResponseChannel<FileResponse>)>,
    file_requests_per_peer: HashMap<PeerId, usize>,
    /// DHT provider lookups: who was found so far, and who waits for the answer.
    provider_queries: HashMap<kad::QueryId, (HashSet<PeerId>, oneshot::Sender<Vec<PeerId>>)>,
    next_inbound: u64,
    peers: HashMap<PeerId, PeerInfo>,
    /// Every open connection of each peer: the one a peer is shown by is direct when one is
    /// (a hole-punched connection takes over from the relayed one it started from).
    connections: HashMap<PeerId, Vec<(ConnectionId, Direction, Multiaddr)>>,
    recent_gossip: RecentGossip,
    tx_batch: TxBatch,
    /// Banned peers and when their ban ends.
    bans: limits::BanList,
    /// Each connected peer's allowance of sync requests.
    sync_allowance: HashMap<PeerId, TokenBucket>,
    sync_requests: (f64, f64),
    /// Bootstrap addresses (without `/p2p/`), kept connected.
    bootstrap: Vec<Multiaddr>,
    /// Outbound peers to keep.
    target_outbound: usize,
    /// Addresses we dialled that are connected, and to whom.
    dialled: HashMap<Multiaddr, PeerId>,
    /// Peers a second connection was opened to for a download (again once one closes).
    bulk_dialled: HashSet<PeerId>,
    /// Where this node registers in the rendezvous overlay.
    rendezvous_namespace: rendezvous::Namespace,
    /// Connected peers that we dialled and that keep a rendezvous registry.
    rendezvous_points: HashSet<PeerId>,
    /// Peers the rendezvous points told of, with their registered addresses.
    rendezvous_found: HashMap<PeerId, Vec<Multiaddr>>,
    rendezvous_interval: Duration,
    /// Relay circuits listened on (each a reservation at a relay), by listener.
    relay_listeners: HashMap<ListenerId, Multiaddr>,
    /// Circuits whose listener closed, listened on again at the next redial: a reservation
    /// ends when its relay cannot be reached, drops the connection or refuses.
    circuits_to_listen: Vec<Multiaddr>,
    /// Bootstrap peers to dial when the node starts, with their peer ids when known.
    first_dials: Vec<Multiaddr>,
    /// Whether the node listens on addresses of its own.
    listens: bool,
    anchors_file: Option<std::path::PathBuf>,
    /// Peer connections and disconnections not yet handed to the node. Correctness: they are
    /// never dropped when the event queue is full (the node would keep a gone peer, or never
    /// sync from a new one); a connection and its disconnection both still waiting cancel out,
    /// so this holds at most one event per peer.
    lifecycle: std::collections::VecDeque<Event>,
    /// Sync responses handed to libp2p and not yet written to their peer.
    unsent_responses: limits::ResponseBudget<request_response::InboundRequestId>,
    /// Peers connected but not yet known to speak this network's protocols, and since when.
    unidentified: HashMap<PeerId, std::time::Instant>,
}

/// Most bytes of sync responses to one peer waiting to be read by it: a peer that asks and
/// never reads holds no more of this node's memory.
const MAX_UNSENT_PER_PEER: usize = 2 * protocol::MAX_RESPONSE_BYTES;
/// Most bytes of sync responses waiting to be read, all peers together.
const MAX_UNSENT_TOTAL: usize = 256 << 20;
/// How long a peer may stay connected without showing it speaks this network's protocols.
const IDENTIFY_DEADLINE: Duration = Duration::from_secs(10);

/// Most rendezvous points a node registers at and asks.
const MAX_RENDEZVOUS_POINTS: usize = 3;
/// Most peers remembered from rendezvous answers.
const MAX_RENDEZVOUS_FOUND: usize = 1_000;

/// An address without its trailing `/p2p/<peer id>`, to compare dialled addresses.
fn without_peer_id(address: &Multiaddr) -> Multiaddr {
    address.iter().filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_))).collect()
}

/// The peer an address names (its last `/p2p/<peer id>`).
fn peer_of(address: &Multiaddr) -> Option<PeerId> {
    address.iter().fold(None, |last, p| match p {
        libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
        _ => last,
    })
}

/// Most connections to one peer (see the connection limits in `spawn`).
const MAX_CONNECTIONS_PER_PEER: u32 = 4;

/// How often bootstrap peers that are not connected are dialled again.
const REDIAL_INTERVAL: Duration = Duration::from_secs(5);

/// Longest wait at start for the listeners' addresses before the first dials.
const LISTEN_SETTLE: Duration = Duration::from_secs(1);

impl Task {
    async fn run(mut self, cancel: CancellationToken) {
        self.first_dials().await;
        // A random walk of the DHT now and then keeps the routing table fresh and finds peers
        // beyond the ones dialled.
        let mut walk = tokio::time::interval(Duration::from_secs(60));
        // Correctness: a bootstrap peer that was not listening yet (peers started together),
        // or that restarted, is dialled again until it answers, as Bitcoin Core's addnode.
        // Correctness: not at once, while the first dials are still under way: a second
        // connection to each bootstrap peer would take two of its inbound slots.
        let mut redial = tokio::time::interval_at(tokio::time::Instant::now() + REDIAL_INTERVAL, REDIAL_INTERVAL);
        let mut rendezvous_tick = tokio::time::interval(self.rendezvous_interval);
        let lifecycle_sender = self.events.clone();
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                permit = lifecycle_sender.reserve(), if !self.lifecycle.is_empty() => {
                    if let (Ok(permit), Some(event)) = (permit, self.lifecycle.pop_front()) {
                        permit.send(event);
                    }
                }
                _ = rendezvous_tick.tick() => self.visit_rendezvous_points(),
                _ = tokio::time::sleep_until(self.tx_batch.deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if self.tx_batch.deadline.is_some() => self.publish_transactions(),
                _ = redial.tick() => {
                    let missing: Vec<Multiaddr> =
                        self.bootstrap.iter().filter(|a| !self.dialled.contains_key(*a)).cloned().collect();
                    for address in missing {
                        debug!(%address, "dialling bootstrap peer again");
                        let _ = self.swarm.dial(address);
                    }
                    self.dial_toward_target();
                    self.listen_through_relays();
                    self.disconnect_unidentified();
                }
                _ = walk.tick() => {
                    if !self.peers.is_empty() {
                        let _ = self.swarm.behaviour_mut().kad.bootstrap();
                    }
                    for banned in self.bans.take_expired() {
                        match banned {
                            limits::Banned::Peer(peer) => {
                                self.swarm.behaviour_mut().banned.unblock_peer(peer);
                            }
                            limits::Banned::Ip(ip) => self.swarm.behaviour_mut().ip_limit.unban(&ip),
                        }
                        info!(?banned, "ban lifted");
                    }
                }
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.swarm_event(event),
            }
        }
        self.save_anchors();
        // Correctness: every waiting requester gets an answer, also at shutdown.
        for (_, (peer, reply)) in self.pending_outbound.drain() {
            let _ = reply.send(Err(RequestError::Failed { peer, reason: "network shut down".into() }));
        }
        for (_, (peer, reply)) in self.pending_file_outbound.drain() {
            let _ = reply.send(Err(RequestError::Failed { peer, reason: "network shut down".into() }));
        }
        info!("network stopped");
    }

    fn command(&mut self, command: Command) {
        let behaviour = self.swarm.behaviour_mut();
        match command {
            Command::Dial(address) => {
                // A peer already connected or being dialled is not dialled again: a second
                // relayed connection to it would start a second hole punch through the same
                // ports, and the two spoil each other.
                let dial = match address.iter().last() {
                    Some(libp2p::multiaddr::Protocol::P2p(peer)) => {
                        DialOpts::peer_id(peer).addresses(vec![address.clone()]).build()
                    }
                    _ => DialOpts::from(address.clone()),
                };
                match self.swarm.dial(dial) {
                    Ok(()) => {}
                    Err(DialError::DialPeerConditionFalse(_)) => debug!(%address, "already connected or dialling"),
                    Err(e) => warn!(%address, error = %e, "dial failed"),
                }
            }
            Command::Publish(Topic::Transactions, transaction) => {
                if self.tx_batch.push(transaction) {
                    self.publish_transactions();
                }
            }
            Command::Publish(t, data) => self.publish_gossip(t, data),
            Command::Report(id, source, verdict) => {
                let acceptance = match verdict {
                    Verdict::Accept => gossipsub::MessageAcceptance::Accept,
                    Verdict::Reject => gossipsub::MessageAcceptance::Reject,
                    Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                };
                behaviour.gossipsub.report_message_validation_result(&id, &source, acceptance);
            }
            Command::Request(peer, request, reply) => {
                let id = behaviour.sync.send_request(&peer, request);
                self.pending_outbound.insert(id, (peer, reply));
            }
            Command::Respond(id, response) => {
                if let Some((peer, request_id, channel)) = self.pending_inbound.remove(&id) {
                    self.send_sync_response(peer, request_id, channel, response);
                }
            }
            Command::FileRequest(peer, request, reply) => {
                if matches!(request, FileRequest::Range { .. }) {
                    self.open_bulk_connection(peer);
                }
                let behaviour = self.swarm.behaviour_mut();
                let id = behaviour.files.send_request(&peer, request);
                self.pending_file_outbound.insert(id, (peer, reply));
            }
            Command::FileRespond(id, response) => {
                if let Some((peer, channel)) = self.pending_file_inbound.remove(&id) {
                    let _ = behaviour.files.send_response(channel, response);
                    self.file_request_done(peer);
                }
            }
            Command::DialPeer(peer, addresses) => {
                if !self.peers.contains_key(&peer) && peer != *self.swarm.local_peer_id() {
                    let _ = self.swarm.dial(DialOpts::peer_id(peer).addresses(addresses).build());
                }
            }
            Command::Provide(key) => {
                if let Err(e) = behaviour.kad.start_providing(key) {
                    warn!(error = %e, "cannot provide a key");
                }
            }
            Command::StopProviding(key) => behaviour.kad.stop_providing(&key),
            Command::FindProviders(key, reply) => {
                let query = behaviour.kad.get_providers(key);
                self.provider_queries.insert(query, (HashSet::new(), reply));
            }
            Command::Ban(peer, duration) => {
                // Security: the block list refuses the peer's new connections, inbound and
                // outbound, until the ban is lifted; blocking also closes the current ones.
                // The address it came from is banned too: new peer ids cost nothing.
                let until = std::time::SystemTime::now() + duration;
                behaviour.banned.block_peer(peer);
                self.bans.insert(limits::Banned::Peer(peer), until);
                let address = self.peers.get(&peer).map(|info| info.address.clone());
                let ip = address.as_ref().and_then(|a| self.swarm.behaviour().ip_limit.limited_ip(a));
                if let Some(ip) = ip {
                    self.swarm.behaviour_mut().ip_limit.ban(ip);
                    self.bans.insert(limits::Banned::Ip(ip), until);
                    // Its other peers at that address go too.
                    let others: Vec<PeerId> = self
                        .peers
                        .values()
                        .filter(|info| limits::ip_of(&info.address) == Some(ip))
                        .map(|info| info.peer)
                        .collect();
                    for other in others {
                        let _ = self.swarm.disconnect_peer_id(other);
                    }
                }
                warn!(%peer, ?ip, ?duration, "peer banned");
            }
            Command::SetScore(peer, score) => {
                if let Some(info) = self.peers.get_mut(&peer) {
                    info.score = score;
                }
            }
            Command::Peers(reply) => {
                let gossipsub = &self.swarm.behaviour().gossipsub;
                let peers = self
                    .peers
                    .values()
                    .map(|info| PeerInfo { gossip_score: gossipsub.peer_score(&info.peer), ..info.clone() })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::Local(reply) => {
                let _ = reply.send(LocalInfo {
                    peer: *self.swarm.local_peer_id(),
                    listen_addrs: self.swarm.listeners().cloned().collect(),
                });
            }
            Command::RendezvousPeers(reply) => {
                let _ = reply.send(self.rendezvous_found.iter().map(|(p, a)| (*p, a.clone())).collect());
            }
        }
    }

    /// Opens a second direct connection to a peer a download asks for ranges. Each
    /// connection is decrypted and demultiplexed in its own task, one core at a time, and
    /// request-response spreads a peer's requests over its connections: with two, a download
    /// from one source uses both cores on each side.
    fn open_bulk_connection(&mut self, peer: PeerId) {
        let Some([(_, direction, address)]) = self.connections.get(&peer).map(Vec::as_slice) else { return };
        if limits::is_relayed(address) || !self.bulk_dialled.insert(peer) {
            return;
        }
        let known = (*direction == Direction::Outbound).then(|| address.clone());
        let dial = DialOpts::peer_id(peer)
            .condition(libp2p::swarm::dial_opts::PeerCondition::Always)
            .addresses(known.into_iter().collect())
            .extend_addresses_through_behaviour()
            .allocate_new_port()
            .build();
        if let Err(e) = self.swarm.dial(dial) {
            debug!(%peer, error = %e, "cannot open a second connection for a download");
        }
    }

    fn swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => info!(%address, "listening"),
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                let (direction, address) = match &endpoint {
                    libp2p::core::ConnectedPoint::Dialer { address, .. } => (Direction::Outbound, address.clone()),
                    // A relayed inbound connection comes from `/p2p/<peer>` alone: show it as the
                    // circuit it came through.
                    libp2p::core::ConnectedPoint::Listener { local_addr, .. } if limits::is_relayed(local_addr) => {
                        let relay: Multiaddr = local_addr
                            .iter()
                            .take_while(|p| !matches!(p, libp2p::multiaddr::Protocol::P2pCircuit))
                            .collect();
                        (
                            Direction::Inbound,
                            relay.with(libp2p::multiaddr::Protocol::P2pCircuit).with_p2p(peer_id).unwrap_or_else(|a| a),
                        )
                    }
                    libp2p::core::ConnectedPoint::Listener { send_back_addr, .. } => {
                        (Direction::Inbound, send_back_addr.clone())
                    }
                };
                if direction == Direction::Outbound {
                    // The DHT learns the address once identify shows the peer is of this
                    // network (see `behaviour_event`).
                    self.dialled.insert(without_peer_id(&address), peer_id);
                }
                self.connections.entry(peer_id).or_default().push((connection_id, direction, address.clone()));
                if num_established.get() > 1 {
                    self.show_best_connection(peer_id);
                } else {
                    let ip = self.swarm.behaviour().ip_limit.limited_ip(&address);
                    let info = PeerInfo {
                        ip,
                        peer: peer_id,
                        address,
                        direction,
                        agent: None,
                        latency: None,
                        score: 0,
                        gossip_score: None,
                    };
                    // The first peer is the way into the DHT: look for more at once rather
                    // than at the next random walk.
                    if self.peers.is_empty() {
                        let _ = self.swarm.behaviour_mut().kad.bootstrap();
                    }
                    self.peers.insert(peer_id, info.clone());
                    self.unidentified.insert(peer_id, std::time::Instant::now());
                    debug!(peer = %peer_id, ?direction, "peer connected");
                    self.lifecycle.push_back(Event::PeerConnected(info));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } if num_established > 0 => {
                if let Some(connections) = self.connections.get_mut(&peer_id) {
                    connections.retain(|(id, ..)| *id != connection_id);
                }
                // The next download may open a second connection again.
                self.bulk_dialled.remove(&peer_id);
                self.show_best_connection(peer_id);
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } => {
                self.peers.remove(&peer_id);
                self.connections.remove(&peer_id);
                self.rendezvous_points.remove(&peer_id);
                self.file_requests_per_peer.remove(&peer_id);
                self.sync_allowance.remove(&peer_id);
                self.dialled.retain(|_, peer| *peer != peer_id);
                self.bulk_dialled.remove(&peer_id);
                self.unidentified.remove(&peer_id);
                self.unsent_responses.forget(&peer_id);
                debug!(peer = %peer_id, "peer disconnected");
                // A connection the node has not heard of yet and its end cancel out.
                let waiting = self
                    .lifecycle
                    .iter()
                    .position(|event| matches!(event, Event::PeerConnected(info) if info.peer == peer_id));
                match waiting {
                    Some(index) => {
                        self.lifecycle.remove(index);
                    }
                    None => self.lifecycle.push_back(Event::PeerDisconnected(peer_id)),
                }
            }
            SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                if let Some(circuit) = self.relay_listeners.remove(&listener_id) {
                    // Also when the relay was being dialled for another reason as we asked
                    // (libp2p then drops the reservation's own dial): try again shortly.
                    debug!(%circuit, ?reason, "no reservation at the relay; trying again");
                    self.circuits_to_listen.push(circuit);
                }
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                info!(%address, "external address confirmed");
                self.visit_rendezvous_points();
            }
            SwarmEvent::Behaviour(event) => self.behaviour_event(event),
            _ => {}
        }
    }

    fn publish_gossip(&mut self, t: Topic, data: Vec<u8>) {
        let id = gossipsub::MessageId::from(content_id(&data));
        if !self.recent_gossip.insert(id.clone()) {
            debug!("not publishing gossip seen within the last minute");
            return;
        }
        if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(topic(&self.network, t), data) {
            // Not sent (no peers yet, say): it may be published again.
            self.recent_gossip.forget(&id);
            debug!(error = %e, "gossip publish");
        }
    }

    /// Publishes the transactions waiting in the batch, if any.
    fn publish_transactions(&mut self) {
        if let Some(message) = self.tx_batch.take() {
            self.publish_gossip(Topic::Transactions, message);
        }
    }

    /// Shows a peer by its first direct connection, or its first connection if all are
    /// relayed.
    fn show_best_connection(&mut self, peer: PeerId) {
        let (Some(info), Some(connections)) = (self.peers.get_mut(&peer), self.connections.get(&peer)) else {
            return;
        };
        let best = connections.iter().find(|(_, _, address)| !limits::is_relayed(address)).or(connections.first());
        if let Some((_, direction, address)) = best {
            if info.address != *address {
                debug!(%peer, %address, "peer now shown by another connection");
            }
            info.direction = *direction;
            info.address = address.clone();
        }
    }

    /// Listens on the relay circuits waiting for it: each dials its relay (if not connected)
    /// and asks for a reservation.
    fn listen_through_relays(&mut self) {
        for circuit in std::mem::take(&mut self.circuits_to_listen) {
            match self.swarm.listen_on(circuit.clone()) {
                Ok(listener) => {
                    self.relay_listeners.insert(listener, circuit);
                }
                Err(e) => warn!(%circuit, error = %e, "cannot listen through the relay"),
            }
        }
    }

    /// Waits (briefly) until the node's listeners report their addresses, then dials the
    /// bootstrap peers and relays. libp2p dials from the listening port once it knows it, so
    /// a NAT maps the node's outbound connections to the port it listens on: the one peers
    /// learn from identify and punch holes to.
    async fn first_dials(&mut self) {
        let settle = tokio::time::sleep(LISTEN_SETTLE);
        tokio::pin!(settle);
        while self.listens && self.swarm.listeners().next().is_none() {
            tokio::select! {
                _ = &mut settle => break,
                event = self.swarm.select_next_some() => self.swarm_event(event),
            }
        }
        // A relay is dialled by its reservation (a second dial at the same time would make
        // libp2p drop the reservation's).
        let relays: HashSet<PeerId> = self.circuits_to_listen.iter().filter_map(peer_of).collect();
        for address in std::mem::take(&mut self.first_dials) {
            if peer_of(&address).is_some_and(|peer| relays.contains(&peer)) {
                continue;
            }
            if let Err(e) = self.swarm.dial(address.clone()) {
                warn!(%address, error = %e, "cannot dial bootstrap peer");
            }
        }
        self.listen_through_relays();
    }

    fn visit_rendezvous_points(&mut self) {
        let points: Vec<PeerId> = self.rendezvous_points.iter().copied().collect();
        for point in points {
            self.visit_rendezvous_point(point);
        }
    }

    /// Registers at a rendezvous point (when this node knows an address others reach it at)
    /// and asks it for the peers registered there.
    fn visit_rendezvous_point(&mut self, point: PeerId) {
        let namespace = self.rendezvous_namespace.clone();
        let client = &mut self.swarm.behaviour_mut().rendezvous;
        match client.register(namespace.clone(), point, None) {
            Ok(()) => {}
            Err(rendezvous::client::RegisterError::NoExternalAddresses) => {}
            Err(e) => debug!(%point, error = %e, "rendezvous registration"),
        }
        client.discover(Some(namespace), None, Some(MAX_RENDEZVOUS_FOUND as u64), point);
    }

    fn behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                // Security: a peer of another network (or another program) speaks none of our
                // protocols; it is let go at once and never enters the DHT.
                if info.protocol_version != identify_version(&self.network) {
                    info!(peer = %peer_id, version = %info.protocol_version, "peer of another network disconnected");
                    self.unidentified.remove(&peer_id);
                    self.swarm.behaviour_mut().kad.remove_peer(&peer_id);
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                self.unidentified.remove(&peer_id);
                // Correctness: identify is not wired into Kademlia; its listen addresses are
                // how the DHT learns where an inbound peer can be reached, and the address we
                // dialled where an outbound one is.
                let seen_at = self.peers.get(&peer_id).map(|p| p.address.clone());
                if let Some(dialled) =
                    self.peers.get(&peer_id).filter(|p| p.direction == Direction::Outbound).map(|p| p.address.clone())
                {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, dialled);
                }
                for address in &info.listen_addrs {
                    if seen_at.as_ref().is_none_or(|seen_at| reachable_from_here(address, seen_at)) {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, address.clone());
                    }
                }
                let dialled_it = self.peers.get(&peer_id).is_some_and(|p| p.direction == Direction::Outbound);
                if let Some(peer) = self.peers.get_mut(&peer_id) {
                    peer.agent = Some(info.agent_version);
                }
                // Hybrid overlay: a peer we could dial that keeps a rendezvous registry is a
                // super-peer to register at and ask for others.
                if dialled_it
                    && info.protocols.contains(&rendezvous::PROTOCOL_NAME)
                    && self.rendezvous_points.len() < MAX_RENDEZVOUS_POINTS
                    && self.rendezvous_points.insert(peer_id)
                {
                    debug!(point = %peer_id, "rendezvous point");
                    self.visit_rendezvous_point(peer_id);
                }
            }
            BehaviourEvent::Rendezvous(rendezvous::client::Event::Registered { rendezvous_node, ttl, .. }) => {
                debug!(point = %rendezvous_node, ttl, "registered at a rendezvous point");
            }
            BehaviourEvent::Rendezvous(rendezvous::client::Event::Discovered { registrations, .. }) => {
                let local = *self.swarm.local_peer_id();
                for registration in registrations {
                    let peer = registration.record.peer_id();
                    let addresses = registration.record.addresses().to_vec();
                    if peer == local || addresses.is_empty() {
                        continue;
                    }
                    for address in &addresses {
                        self.swarm.behaviour_mut().kad.add_address(&peer, address.clone());
                    }
                    if self.rendezvous_found.len() < MAX_RENDEZVOUS_FOUND || self.rendezvous_found.contains_key(&peer) {
                        self.rendezvous_found.insert(peer, addresses);
                    }
                }
                // The routing table now holds them: dial toward the outbound target.
                self.dial_toward_target();
            }
            BehaviourEvent::Ping(ping::Event { peer, result: Ok(rtt), .. }) => {
                if let Some(info) = self.peers.get_mut(&peer) {
                    info.latency = Some(rtt);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, address) in found {
                    if !self.peers.contains_key(&peer) && peer != *self.swarm.local_peer_id() {
                        let _ = self.swarm.dial(address);
                    }
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source, message_id, message }) => {
                self.recent_gossip.insert(message_id.clone());
                let kind = if message.topic == topic(&self.network, Topic::Transactions).hash() {
                    Topic::Transactions
                } else {
                    Topic::Blocks
                };
                let event = Event::Gossip {
                    topic: kind,
                    data: message.data,
                    source: propagation_source,
                    id: message_id.clone(),
                };
                // Security: a node that cannot keep up drops gossip rather than queue it
                // without bound; the message is neither relayed nor held against the sender.
                if self.events.try_send(event).is_err() {
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        gossipsub::MessageAcceptance::Ignore,
                    );
                }
            }
            BehaviourEvent::Sync(request_response::Event::Message { peer, message, .. }) => match message {
                request_response::Message::Request { request, channel, request_id } => {
                    let (rate, burst) = self.sync_requests;
                    let allowed =
                        self.sync_allowance.entry(peer).or_insert_with(|| TokenBucket::full(rate, burst)).try_take(1.0);
                    let refusal = if !allowed {
                        debug!(%peer, "sync request over the peer's rate refused");
                        Some("rate limited")
                    } else if self.pending_inbound.len() >= MAX_PENDING_INBOUND {
                        Some("busy")
                    } else {
                        self.next_inbound += 1;
                        let id = InboundId(self.next_inbound);
                        match self.events.try_send(Event::Request { peer, request, id }) {
                            Ok(()) => {
                                self.pending_inbound.insert(id, (peer, request_id, channel));
                                return;
                            }
                            Err(_) => Some("busy"),
                        }
                    };
                    if let Some(reason) = refusal {
                        let _ =
                            self.swarm.behaviour_mut().sync.send_response(channel, Response::Refused(reason.into()));
                    }
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some((_, reply)) = self.pending_outbound.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            BehaviourEvent::Sync(request_response::Event::OutboundFailure { peer, request_id, error, .. }) => {
                if let Some((_, reply)) = self.pending_outbound.remove(&request_id) {
                    let _ = reply.send(Err(RequestError::Failed { peer, reason: error.to_string() }));
                }
            }
            BehaviourEvent::Sync(
                request_response::Event::ResponseSent { request_id, .. }
                | request_response::Event::InboundFailure { request_id, .. },
            ) => self.response_gone(request_id),
            BehaviourEvent::Files(request_response::Event::Message { peer, message, .. }) => match message {
                request_response::Message::Request { request, channel, .. } => {
                    // Security: each peer has a few requests in the node's hands at a time;
                    // more are refused at once instead of queued.
                    let in_hand = self.file_requests_per_peer.entry(peer).or_default();
                    if *in_hand >= MAX_FILE_REQUESTS_PER_PEER || self.pending_file_inbound.len() >= MAX_PENDING_INBOUND
                    {
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .files
                            .send_response(channel, FileResponse::Refused("busy".into()));
                        return;
                    }
                    self.next_inbound += 1;
                    let id = InboundId(self.next_inbound);
                    match self.events.try_send(Event::FileRequest { peer, request, id }) {
                        Ok(()) => {
                            *in_hand += 1;
                            self.pending_file_inbound.insert(id, (peer, channel));
                        }
                        Err(_) => {
                            let _ = self
                                .swarm
                                .behaviour_mut()
                                .files
                                .send_response(channel, FileResponse::Refused("busy".into()));
                        }
                    }
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some((_, reply)) = self.pending_file_outbound.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            BehaviourEvent::Files(request_response::Event::OutboundFailure { peer, request_id, error, .. }) => {
                if let Some((_, reply)) = self.pending_file_outbound.remove(&request_id) {
                    let _ = reply.send(Err(RequestError::Failed { peer, reason: error.to_string() }));
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed { id, result, step, .. }) => {
                let kad::QueryResult::GetProviders(result) = result else { return };
                let local = *self.swarm.local_peer_id();
                let Some((found, _)) = self.provider_queries.get_mut(&id) else { return };
                if let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = result {
                    for provider in providers {
                        if provider != local && found.insert(provider) && !self.peers.contains_key(&provider) {
                            // Correctness: the query knows the provider's addresses only while
                            // it runs; the dial picks them up now.
                            let _ = self.swarm.dial(DialOpts::peer_id(provider).build());
                        }
                    }
                }
                let found_enough =
                    self.provider_queries.get(&id).is_some_and(|(found, _)| found.len() >= ENOUGH_PROVIDERS);
                if step.last || found_enough {
                    if let Some((found, reply)) = self.provider_queries.remove(&id) {
                        let _ = reply.send(found.into_iter().collect());
                    }
                    if let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                        query.finish();
                    }
                }
            }
            BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal: false,
                ..
            }) => info!(relay = %relay_peer_id, "reachable through a relay"),
            BehaviourEvent::Dcutr(dcutr::Event { remote_peer_id, result }) => match result {
                Ok(_) => info!(peer = %remote_peer_id, "direct connection made by hole punching"),
                Err(e) => debug!(peer = %remote_peer_id, error = %e, "hole punching failed; staying relayed"),
            },
            BehaviourEvent::Autonat(autonat::Event::StatusChanged { new, .. }) => {
                info!(status = ?new, "reachability");
            }
            _ => {}
        }
    }
}

impl Task {
    /// Below the target of outbound peers, dials peers of the DHT's routing table that are
    /// neither connected nor banned, as many as are missing, chosen for the diversity of
    /// their networks (see [`outbound::choose`]).
    fn dial_toward_target(&mut self) {
        let outbound = self.peers.values().filter(|p| p.direction == Direction::Outbound);
        let used_groups: HashSet<outbound::AddressGroup> =
            outbound.clone().map(|p| outbound::AddressGroup::of(&p.address)).collect();
        let missing = self.target_outbound.saturating_sub(outbound.count());
        if missing == 0 {
            return;
        }
        let local = *self.swarm.local_peer_id();
        let mut candidates = Vec::new();
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            for entry in bucket.iter() {
                let peer = *entry.node.key.preimage();
                if peer == local || self.peers.contains_key(&peer) || self.bans.contains(&limits::Banned::Peer(peer)) {
                    continue;
                }
                candidates.push(outbound::Candidate { peer, address: Some(entry.node.value.first().clone()) });
            }
        }
        let ip_limit = &self.swarm.behaviour().ip_limit;
        candidates.retain(|c| c.address.as_ref().is_none_or(|a| !ip_limit.is_banned(a)));
        for candidate in outbound::choose(candidates, &used_groups, missing, &mut rand::thread_rng()) {
            debug!(peer = %candidate.peer, address = ?candidate.address, "dialling toward the outbound target");
            let _ = self.swarm.dial(DialOpts::peer_id(candidate.peer).build());
        }
    }

    /// Sends a sync response unless the peer already has too much waiting unread (then a
    /// refusal goes instead), and counts it until libp2p reports it written or failed.
    fn send_sync_response(
        &mut self,
        peer: PeerId,
        request_id: request_response::InboundRequestId,
        channel: ResponseChannel<Response>,
        response: Response,
    ) {
        let size = response.bulk_len();
        let response = if size > 0 && !self.unsent_responses.admits(&peer, size) {
            debug!(%peer, size, "sync response refused: the peer has not read the earlier ones");
            Response::Refused("busy: earlier answers unread".into())
        } else {
            response
        };
        let size = response.bulk_len();
        if self.swarm.behaviour_mut().sync.send_response(channel, response).is_ok() && size > 0 {
            self.unsent_responses.record(request_id, peer, size);
        }
    }

    /// A sync response was written or failed: its bytes are free.
    fn response_gone(&mut self, request_id: request_response::InboundRequestId) {
        self.unsent_responses.release(&request_id);
    }

    /// Disconnects peers that have not shown they speak this network's protocols in time.
    fn disconnect_unidentified(&mut self) {
        let late: Vec<PeerId> = self
            .unidentified
            .iter()
            .filter(|(_, since)| since.elapsed() >= IDENTIFY_DEADLINE)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in late {
            info!(%peer, "peer never identified itself; disconnected");
            self.unidentified.remove(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// Saves the outbound peers as the next start's anchors.
    fn save_anchors(&self) {
        let Some(path) = &self.anchors_file else { return };
        let anchors: Vec<Multiaddr> = self
            .peers
            .values()
            .filter(|p| p.direction == Direction::Outbound && !limits::is_relayed(&p.address))
            .filter_map(|p| without_peer_id(&p.address).with_p2p(p.peer).ok())
            .collect();
        if let Err(e) = outbound::save_anchors(path, &anchors) {
            warn!(path = %path.display(), error = %e, "cannot save the anchors");
        }
    }

    fn file_request_done(&mut self, peer: PeerId) {
        if let Some(in_hand) = self.file_requests_per_peer.get_mut(&peer) {
            *in_hand = in_hand.saturating_sub(1);
        }
    }
}

/// Reads or creates the node's identity key at `path` (32 secret bytes, owner-only), so that
/// its peer id stays the same across restarts.
pub fn load_or_create_keypair(path: &std::path::Path) -> std::io::Result<Keypair> {
    match std::fs::read(path) {
        Ok(mut bytes) => identity::Keypair::ed25519_from_bytes(&mut bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keypair = identity::Keypair::generate_ed25519();
            let secret = keypair.clone().try_into_ed25519().map_err(|e| std::io::Error::other(e.to_string()))?.secret();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            std::io::Write::write_all(&mut options.open(path)?, secret.as_ref())?;
            Ok(keypair)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_gossip_refuses_an_id_seen_lately_and_stays_bounded() {
        let mut recent = RecentGossip::default();
        let id = |n: u32| gossipsub::MessageId::from(n.to_be_bytes().to_vec());
        assert!(recent.insert(id(1)));
        assert!(!recent.insert(id(1)), "seen within the minute");
        recent.forget(&id(1));
        assert_eq!(recent.order.len(), 0, "forgotten whole");
        assert!(recent.insert(id(1)), "forgotten after a failed publish");
        for n in 2..=RECENT_GOSSIP as u32 + 10 {
            assert!(recent.insert(id(n)));
        }
        assert!(recent.ids.len() <= RECENT_GOSSIP && recent.order.len() == recent.ids.len());
        assert!(recent.insert(id(1)), "the oldest ids make room for new ones");
    }

    #[test]
    fn a_peers_loopback_address_is_kept_only_when_it_is_on_loopback_itself() {
        let a = |s: &str| s.parse::<Multiaddr>().unwrap();
        let over_lan = a("/ip4/192.168.1.20/tcp/50123");
        let over_loopback = a("/ip4/127.0.0.1/tcp/50123");
        assert!(reachable_from_here(&a("/ip4/192.168.1.20/tcp/9333"), &over_lan));
        assert!(!reachable_from_here(&a("/ip4/127.0.0.1/tcp/9333"), &over_lan), "names this machine");
        assert!(!reachable_from_here(&a("/ip6/::1/udp/9333/quic-v1"), &over_lan));
        assert!(reachable_from_here(&a("/ip4/127.0.0.1/tcp/9333"), &over_loopback), "a local network");
        assert!(reachable_from_here(&a("/ip4/192.168.1.20/tcp/9333"), &over_loopback));
        assert!(!reachable_from_here(&a("/ip4/0.0.0.0/tcp/9333"), &over_loopback), "unspecified");
        assert!(reachable_from_here(&a("/dns4/node.example/tcp/9333"), &over_lan), "names are kept");
        let relayed =
            a("/ip4/203.0.113.5/tcp/4001/p2p/12D3KooWQLBBmRbeYPHJmtHbVSouqNhhckSQ1tP5mM4DFfhojATa/p2p-circuit");
        assert!(!reachable_from_here(&a("/ip4/127.0.0.1/tcp/9333"), &relayed), "a relayed peer is elsewhere");
    }
}
