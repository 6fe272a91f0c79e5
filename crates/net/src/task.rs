//! The actor that owns the `Swarm`: it turns commands into behaviour calls and behaviour
//! events into the consumers' events. `run` is a biased select: cancellation first, then
//! events that must not be lost, then timers, then commands, then the swarm.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::request_response;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, autonat, dcutr, gossipsub, identify, kad, mdns, ping, relay, rendezvous};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::address::{is_relayed, without_peer_id};
use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::gossip::{RecentGossip, Topics, TxBatch, content_id};
use crate::request_response::{Inbound, Refusal, Requests};
use crate::{
    Command, Config, Direction, FileEvent, FileRequest, FileResponse, InboundId, LocalInfo, MarketEvent, MarketRequest,
    MarketResponse, PeerInfo, Request, Response, StartError, SyncEvent, TokenBucket, Topic, Verdict, limits, outbound,
    protocol,
};

/// Where the network's events go: one queue per consumer.
pub(crate) struct Senders {
    pub(crate) sync: mpsc::Sender<SyncEvent>,
    pub(crate) files: mpsc::Sender<FileEvent>,
    pub(crate) market: mpsc::Sender<MarketEvent>,
}

/// Most requests of all peers of one protocol in the node's hands at once.
const MAX_PENDING_INBOUND: usize = 256;
/// Most market requests of one peer in the node's hands at once.
const MAX_MARKET_REQUESTS_PER_PEER: usize = 2;
/// Book pages a peer may ask for per second, and in a burst: a whole book of 100,000
/// offers is about twenty pages.
const MARKET_RATE: (f64, f64) = (5.0, 40.0);
/// Most file requests of one peer in the node's hands at once.
const MAX_FILE_REQUESTS_PER_PEER: usize = 32;
/// Providers a DHT lookup collects before it answers.
const ENOUGH_PROVIDERS: usize = 20;
/// Most bytes of sync responses to one peer waiting to be read by it: a peer that asks and
/// never reads holds no more of this node's memory.
const MAX_UNSENT_PER_PEER: usize = 2 * protocol::MAX_RESPONSE_BYTES;
/// Most bytes of sync responses waiting to be read, all peers together.
const MAX_UNSENT_TOTAL: usize = 256 << 20;
/// How often bootstrap peers that are not connected are dialled again.
const REDIAL_INTERVAL: Duration = Duration::from_secs(5);

pub(crate) struct Task {
    pub(crate) swarm: Swarm<Behaviour>,
    /// libp2p's own metrics (connections, protocols, gossip, the DHT), served at `/metrics`.
    metrics: libp2p::metrics::Metrics,
    /// Bans since start, served at `/metrics` with libp2p's.
    bans_made: prometheus_client::metrics::counter::Counter,
    pub(crate) network: String,
    topics: Topics,
    commands: mpsc::Receiver<Command>,
    pub(crate) events: Senders,
    /// The sync protocol's requests, both ways.
    sync: Requests<Response>,
    /// The file protocol's requests, both ways.
    files: Requests<FileResponse>,
    /// The market protocol's requests, both ways.
    market: Requests<MarketResponse>,
    /// Each connected peer's allowance of book pages.
    market_allowance: HashMap<PeerId, TokenBucket>,
    /// Sync responses handed to libp2p and not yet written to their peer.
    unsent_responses: limits::ResponseBudget<request_response::InboundRequestId>,
    /// Each connected peer's allowance of sync requests.
    sync_allowance: HashMap<PeerId, TokenBucket>,
    sync_rate: (f64, f64),
    next_inbound: u64,
    /// DHT provider lookups: who was found so far, and who waits for the answer.
    provider_queries: HashMap<kad::QueryId, (HashSet<PeerId>, oneshot::Sender<Vec<PeerId>>)>,
    pub(crate) peers: HashMap<PeerId, PeerInfo>,
    /// Every open connection of each peer: the one a peer is shown by is direct when one is
    /// (a hole-punched connection takes over from the relayed one it started from).
    pub(crate) connections: HashMap<PeerId, Vec<(ConnectionId, Direction, Multiaddr)>>,
    recent_gossip: RecentGossip,
    tx_batch: TxBatch,
    /// Banned peers and addresses and when their bans end.
    pub(crate) bans: limits::BanList,
    /// Peer connections and disconnections not yet handed to the sync loop. Correctness:
    /// they are never dropped when its queue is full (it would keep a gone peer, or never
    /// sync from a new one); a connection and its disconnection both still waiting cancel
    /// out, so this holds at most one event per peer.
    lifecycle: VecDeque<SyncEvent>,
    /// Peers connected but not yet known to speak this network's protocols, and since when.
    pub(crate) unidentified: HashMap<PeerId, Instant>,
    /// Bootstrap addresses (without `/p2p/`), kept connected.
    pub(crate) bootstrap: Vec<Multiaddr>,
    /// Outbound peers to keep.
    pub(crate) target_outbound: usize,
    /// Addresses we dialled that are connected, and to whom.
    pub(crate) dialled: HashMap<Multiaddr, PeerId>,
    /// Peers a second connection was opened to for a download (again once one closes).
    pub(crate) bulk_dialled: HashSet<PeerId>,
    /// Where this node registers in the rendezvous overlay.
    pub(crate) rendezvous_namespace: rendezvous::Namespace,
    /// Connected peers that we dialled and that keep a rendezvous registry.
    pub(crate) rendezvous_points: HashSet<PeerId>,
    /// Peers the rendezvous points told of, with their registered addresses.
    pub(crate) rendezvous_found: HashMap<PeerId, Vec<Multiaddr>>,
    rendezvous_interval: Duration,
    /// Relay circuits listened on (each a reservation at a relay), by listener.
    pub(crate) relay_listeners: HashMap<ListenerId, Multiaddr>,
    /// Circuits whose listener closed, listened on again at the next redial: a reservation
    /// ends when its relay cannot be reached, drops the connection or refuses.
    pub(crate) circuits_to_listen: Vec<Multiaddr>,
    /// Anchors and bootstrap peers to dial when the node starts, with their peer ids when known.
    pub(crate) first_dials: Vec<Multiaddr>,
    /// Whether the node listens on addresses of its own.
    pub(crate) listens: bool,
    pub(crate) anchors_file: Option<std::path::PathBuf>,
}

impl Task {
    /// The actor for `swarm`: listening, banned peers and addresses restored, anchors and
    /// bootstrap peers queued for dialling.
    pub(crate) fn new(
        mut swarm: Swarm<Behaviour>,
        config: Config,
        topics: Topics,
        commands: mpsc::Receiver<Command>,
        events: Senders,
        (metrics, bans_made): (libp2p::metrics::Metrics, prometheus_client::metrics::counter::Counter),
    ) -> Result<Task, StartError> {
        for address in &config.listen {
            swarm
                .listen_on(address.clone())
                .map_err(|e| StartError::Listen { address: address.clone(), reason: e.to_string() })?;
        }
        for address in &config.external_addrs {
            swarm.add_external_address(address.clone());
        }
        // Reachable through each relay: listening on a circuit address dials the relay and
        // reserves a slot there; peers dial `<relay>/p2p-circuit/p2p/<us>`. That happens once
        // the node listens (see `Task::run`); a relay is named by its peer id.
        let mut circuits = Vec::new();
        for relay in &config.relays {
            let circuit = relay.clone().with(libp2p::multiaddr::Protocol::P2pCircuit);
            if crate::address::peer_of(relay).is_none() {
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
        let mut first_dials = config.anchors_file.as_deref().map(outbound::load_anchors).unwrap_or_default();
        first_dials.extend(config.bootstrap.iter().cloned());
        let rendezvous_namespace = rendezvous::Namespace::new(format!("peerchain/{}", config.network))
            .map_err(|e| StartError::Build(e.to_string()))?;
        Ok(Task {
            swarm,
            metrics,
            bans_made,
            network: config.network.clone(),
            topics,
            commands,
            events,
            sync: Requests::new(MAX_PENDING_INBOUND, MAX_PENDING_INBOUND),
            files: Requests::new(MAX_FILE_REQUESTS_PER_PEER, MAX_PENDING_INBOUND),
            market: Requests::new(MAX_MARKET_REQUESTS_PER_PEER, MAX_PENDING_INBOUND),
            market_allowance: HashMap::new(),
            unsent_responses: limits::ResponseBudget::new(MAX_UNSENT_PER_PEER, MAX_UNSENT_TOTAL),
            sync_allowance: HashMap::new(),
            sync_rate: config.sync_requests,
            next_inbound: 0,
            provider_queries: HashMap::new(),
            peers: HashMap::new(),
            connections: HashMap::new(),
            recent_gossip: RecentGossip::default(),
            tx_batch: TxBatch::default(),
            bans,
            lifecycle: VecDeque::new(),
            unidentified: HashMap::new(),
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
            anchors_file: config.anchors_file,
        })
    }

    pub(crate) async fn run(mut self, cancel: CancellationToken) {
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
        let lifecycle_sender = self.events.sync.clone();
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
                _ = redial.tick() => self.redial(),
                _ = walk.tick() => {
                    if !self.peers.is_empty() {
                        let _ = self.swarm.behaviour_mut().kad.bootstrap();
                    }
                    self.lift_expired_bans();
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
        self.sync.close();
        self.files.close();
        self.market.close();
        info!("network stopped");
    }

    fn lift_expired_bans(&mut self) {
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

    fn command(&mut self, command: Command) {
        match command {
            Command::Dial(address) => self.dial(address),
            Command::Publish(Topic::Transactions, transaction) => {
                if self.tx_batch.push(transaction) {
                    self.publish_transactions();
                }
            }
            Command::Publish(topic, data) => self.publish_gossip(topic, data),
            Command::Report(id, source, verdict) => {
                let acceptance = match verdict {
                    Verdict::Accept => gossipsub::MessageAcceptance::Accept,
                    Verdict::Reject => gossipsub::MessageAcceptance::Reject,
                    Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                };
                self.swarm.behaviour_mut().gossipsub.report_message_validation_result(&id, &source, acceptance);
            }
            Command::Request(peer, request, reply) => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.sync.asked(id, peer, reply);
            }
            Command::Respond(id, response) => {
                if let Some(inbound) = self.sync.take(id) {
                    self.send_sync_response(inbound, response);
                }
            }
            Command::FileRequest(peer, request, reply) => {
                if matches!(request, FileRequest::Range { .. }) {
                    self.open_bulk_connection(peer);
                }
                let id = self.swarm.behaviour_mut().files.send_request(&peer, request);
                self.files.asked(id, peer, reply);
            }
            Command::FileRespond(id, response) => {
                if let Some(inbound) = self.files.take(id) {
                    let _ = self.swarm.behaviour_mut().files.send_response(inbound.channel, response);
                }
            }
            Command::MarketRequest(peer, request, reply) => {
                let id = self.swarm.behaviour_mut().market.send_request(&peer, request);
                self.market.asked(id, peer, reply);
            }
            Command::MarketRespond(id, response) => {
                if let Some(inbound) = self.market.take(id) {
                    let _ = self.swarm.behaviour_mut().market.send_response(inbound.channel, response);
                }
            }
            Command::Provide(key) => {
                if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key) {
                    warn!(error = %e, "cannot provide a key");
                }
            }
            Command::StopProviding(key) => self.swarm.behaviour_mut().kad.stop_providing(&key),
            Command::FindProviders(key, reply) => {
                let query = self.swarm.behaviour_mut().kad.get_providers(key);
                self.provider_queries.insert(query, (HashSet::new(), reply));
            }
            Command::Ban(peer, duration) => self.ban(peer, duration),
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

    /// Dials an address, unless it names a peer already connected or being dialled: a second
    /// relayed connection to it would start a second hole punch through the same ports, and
    /// the two spoil each other.
    fn dial(&mut self, address: Multiaddr) {
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

    /// Security: the block list refuses the peer's new connections, inbound and outbound,
    /// until the ban is lifted; blocking also closes the current ones. The address it came
    /// from is banned too (new peer ids cost nothing), with every peer connected from it.
    fn ban(&mut self, peer: PeerId, duration: Duration) {
        let until = std::time::SystemTime::now() + duration;
        self.swarm.behaviour_mut().banned.block_peer(peer);
        self.bans.insert(limits::Banned::Peer(peer), until);
        let address = self.peers.get(&peer).map(|info| info.address.clone());
        let ip = address.as_ref().and_then(|a| self.swarm.behaviour().ip_limit.limited_ip(a));
        if let Some(ip) = ip {
            self.swarm.behaviour_mut().ip_limit.ban(ip);
            self.bans.insert(limits::Banned::Ip(ip), until);
            let others: Vec<PeerId> = self
                .peers
                .values()
                .filter(|info| crate::address::ip_of(&info.address) == Some(ip))
                .map(|info| info.peer)
                .collect();
            for other in others {
                let _ = self.swarm.disconnect_peer_id(other);
            }
        }
        self.bans_made.inc();
        warn!(%peer, ?ip, ?duration, "peer banned");
    }

    pub(crate) fn swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        use libp2p::metrics::Recorder;
        self.metrics.record(&event);
        match event {
            SwarmEvent::NewListenAddr { address, .. } => info!(%address, "listening"),
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                self.connection_established(peer_id, connection_id, &endpoint, num_established.get());
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } if num_established > 0 => {
                if let Some(connections) = self.connections.get_mut(&peer_id) {
                    connections.retain(|(id, ..)| *id != connection_id);
                }
                // The next download may open a second connection again.
                self.bulk_dialled.remove(&peer_id);
                self.show_best_connection(peer_id);
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } => self.peer_gone(peer_id),
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

    fn connection_established(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        endpoint: &libp2p::core::ConnectedPoint,
        established: u32,
    ) {
        let (direction, address) = match endpoint {
            libp2p::core::ConnectedPoint::Dialer { address, .. } => (Direction::Outbound, address.clone()),
            // A relayed inbound connection comes from `/p2p/<peer>` alone: show it as the
            // circuit it came through.
            libp2p::core::ConnectedPoint::Listener { local_addr, .. } if is_relayed(local_addr) => {
                let relay: Multiaddr =
                    local_addr.iter().take_while(|p| !matches!(p, libp2p::multiaddr::Protocol::P2pCircuit)).collect();
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
            // The DHT learns the address once identify shows the peer is of this network (see
            // `on_identify`).
            self.dialled.insert(without_peer_id(&address), peer_id);
        }
        self.connections.entry(peer_id).or_default().push((connection_id, direction, address.clone()));
        if established > 1 {
            self.show_best_connection(peer_id);
            return;
        }
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
        // The first peer is the way into the DHT: look for more at once rather than at the
        // next random walk.
        if self.peers.is_empty() {
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
        self.peers.insert(peer_id, info.clone());
        self.unidentified.insert(peer_id, Instant::now());
        debug!(peer = %peer_id, ?direction, "peer connected");
        self.lifecycle.push_back(SyncEvent::PeerConnected(info));
    }

    /// A peer's last connection closed.
    fn peer_gone(&mut self, peer_id: PeerId) {
        self.peers.remove(&peer_id);
        self.connections.remove(&peer_id);
        self.rendezvous_points.remove(&peer_id);
        self.sync_allowance.remove(&peer_id);
        self.market_allowance.remove(&peer_id);
        self.dialled.retain(|_, peer| *peer != peer_id);
        self.bulk_dialled.remove(&peer_id);
        self.unidentified.remove(&peer_id);
        self.unsent_responses.forget(&peer_id);
        debug!(peer = %peer_id, "peer disconnected");
        // A connection the node has not heard of yet and its end cancel out.
        let waiting = self
            .lifecycle
            .iter()
            .position(|event| matches!(event, SyncEvent::PeerConnected(info) if info.peer == peer_id));
        match waiting {
            Some(index) => {
                self.lifecycle.remove(index);
            }
            None => self.lifecycle.push_back(SyncEvent::PeerDisconnected(peer_id)),
        }
    }

    fn publish_gossip(&mut self, topic: Topic, data: Vec<u8>) {
        let id = gossipsub::MessageId::from(content_id(&data));
        if !self.recent_gossip.insert(id.clone()) {
            debug!("not publishing gossip seen within the last minute");
            return;
        }
        let ident = self.topics.ident(topic).clone();
        if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(ident, data) {
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
        let best = connections.iter().find(|(_, _, address)| !is_relayed(address)).or(connections.first());
        if let Some((_, direction, address)) = best {
            if info.address != *address {
                debug!(%peer, %address, "peer now shown by another connection");
            }
            info.direction = *direction;
            info.address = address.clone();
        }
    }

    fn behaviour_event(&mut self, event: BehaviourEvent) {
        use libp2p::metrics::Recorder;
        match &event {
            BehaviourEvent::Identify(e) => self.metrics.record(e),
            BehaviourEvent::Ping(e) => self.metrics.record(e),
            BehaviourEvent::Gossipsub(e) => self.metrics.record(e),
            BehaviourEvent::Kad(e) => self.metrics.record(e),
            BehaviourEvent::Dcutr(e) => self.metrics.record(e),
            _ => {}
        }
        match event {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                self.on_identify(peer_id, info)
            }
            BehaviourEvent::Rendezvous(event) => self.on_rendezvous(event),
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
                self.on_gossip(propagation_source, message_id, message)
            }
            BehaviourEvent::Sync(event) => self.on_sync(event),
            BehaviourEvent::Files(event) => self.on_files(event),
            BehaviourEvent::Market(event) => self.on_market(event),
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed { id, result, step, .. }) => {
                self.on_providers(id, result, step)
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

    /// A gossip message, for the consumer of its topic. Security: a node that cannot keep up
    /// drops gossip rather than queue it without bound; the message is neither relayed nor
    /// held against the sender, and so is one on a topic this node does not know.
    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, message: gossipsub::Message) {
        self.recent_gossip.insert(id.clone());
        let delivered = match self.topics.topic_of(&message.topic) {
            Some(topic @ (Topic::Transactions | Topic::Blocks)) => self
                .events
                .sync
                .try_send(SyncEvent::Gossip { topic, data: message.data, source, id: id.clone() })
                .is_ok(),
            Some(Topic::Offers) => {
                self.events.market.try_send(MarketEvent::Offer { data: message.data, source, id: id.clone() }).is_ok()
            }
            Some(Topic::Contracts) => self
                .events
                .market
                .try_send(MarketEvent::Contract { data: message.data, source, id: id.clone() })
                .is_ok(),
            None => false,
        };
        if !delivered {
            self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                &id,
                &source,
                gossipsub::MessageAcceptance::Ignore,
            );
        }
    }

    fn next_inbound_id(&mut self) -> InboundId {
        self.next_inbound += 1;
        InboundId(self.next_inbound)
    }

    fn on_sync(&mut self, event: request_response::Event<Request, Response>) {
        match event {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, request_id },
                ..
            } => {
                let (rate, burst) = self.sync_rate;
                let allowed =
                    self.sync_allowance.entry(peer).or_insert_with(|| TokenBucket::full(rate, burst)).try_take(1.0);
                if !allowed {
                    debug!(%peer, "sync request over the peer's rate refused");
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, Response::refusal("rate limited"));
                    return;
                }
                let id = self.next_inbound_id();
                if let Err(channel) = self.sync.admit(id, Inbound { peer, request_id, channel }) {
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, Response::refusal("busy"));
                    return;
                }
                if self.events.sync.try_send(SyncEvent::Request { peer, request, id }).is_err()
                    && let Some(inbound) = self.sync.take(id)
                {
                    let _ = self.swarm.behaviour_mut().sync.send_response(inbound.channel, Response::refusal("busy"));
                }
            }
            request_response::Event::Message {
                message: request_response::Message::Response { request_id, response },
                ..
            } => self.sync.answered(request_id, response),
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                self.sync.failed(request_id, peer, error)
            }
            request_response::Event::ResponseSent { request_id, .. }
            | request_response::Event::InboundFailure { request_id, .. } => self.unsent_responses.release(&request_id),
        }
    }

    /// Sends a sync response unless the peer already has too much waiting unread (then a
    /// refusal goes instead), and counts it until libp2p reports it written or failed.
    fn send_sync_response(&mut self, inbound: Inbound<Response>, response: Response) {
        let Inbound { peer, request_id, channel } = inbound;
        let size = response.bulk_len();
        let response = if size > 0 && !self.unsent_responses.admits(&peer, size) {
            debug!(%peer, size, "sync response refused: the peer has not read the earlier ones");
            Response::refusal("busy: earlier answers unread")
        } else {
            response
        };
        let size = response.bulk_len();
        if self.swarm.behaviour_mut().sync.send_response(channel, response).is_ok() && size > 0 {
            self.unsent_responses.record(request_id, peer, size);
        }
    }

    fn on_files(&mut self, event: request_response::Event<FileRequest, FileResponse>) {
        match event {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, request_id },
                ..
            } => {
                // Security: each peer has a few requests in the node's hands at a time; more
                // are refused at once instead of queued.
                let id = self.next_inbound_id();
                if let Err(channel) = self.files.admit(id, Inbound { peer, request_id, channel }) {
                    let _ = self.swarm.behaviour_mut().files.send_response(channel, FileResponse::refusal("busy"));
                    return;
                }
                if self.events.files.try_send(FileEvent::Request { peer, request, id }).is_err()
                    && let Some(inbound) = self.files.take(id)
                {
                    let _ =
                        self.swarm.behaviour_mut().files.send_response(inbound.channel, FileResponse::refusal("busy"));
                }
            }
            request_response::Event::Message {
                message: request_response::Message::Response { request_id, response },
                ..
            } => self.files.answered(request_id, response),
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                self.files.failed(request_id, peer, error)
            }
            request_response::Event::ResponseSent { .. } | request_response::Event::InboundFailure { .. } => {}
        }
    }

    fn on_market(&mut self, event: request_response::Event<MarketRequest, MarketResponse>) {
        match event {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, request_id },
                ..
            } => {
                let (rate, burst) = MARKET_RATE;
                let allowed =
                    self.market_allowance.entry(peer).or_insert_with(|| TokenBucket::full(rate, burst)).try_take(1.0);
                if !allowed {
                    let reply = MarketResponse::refusal("rate limited");
                    let _ = self.swarm.behaviour_mut().market.send_response(channel, reply);
                    return;
                }
                let id = self.next_inbound_id();
                if let Err(channel) = self.market.admit(id, Inbound { peer, request_id, channel }) {
                    let _ = self.swarm.behaviour_mut().market.send_response(channel, MarketResponse::refusal("busy"));
                    return;
                }
                if self.events.market.try_send(MarketEvent::Request { peer, request, id }).is_err()
                    && let Some(inbound) = self.market.take(id)
                {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .market
                        .send_response(inbound.channel, MarketResponse::refusal("busy"));
                }
            }
            request_response::Event::Message {
                message: request_response::Message::Response { request_id, response },
                ..
            } => self.market.answered(request_id, response),
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                self.market.failed(request_id, peer, error)
            }
            request_response::Event::ResponseSent { .. } | request_response::Event::InboundFailure { .. } => {}
        }
    }

    fn on_providers(&mut self, id: kad::QueryId, result: kad::QueryResult, step: kad::ProgressStep) {
        let kad::QueryResult::GetProviders(result) = result else { return };
        let local = *self.swarm.local_peer_id();
        let Some((found, _)) = self.provider_queries.get_mut(&id) else { return };
        if let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = result {
            for provider in providers {
                if provider != local && found.insert(provider) && !self.peers.contains_key(&provider) {
                    // Correctness: the query knows the provider's addresses only while it runs;
                    // the dial picks them up now.
                    let _ = self.swarm.dial(DialOpts::peer_id(provider).build());
                }
            }
        }
        let found_enough = self.provider_queries.get(&id).is_some_and(|(found, _)| found.len() >= ENOUGH_PROVIDERS);
        if step.last || found_enough {
            if let Some((found, reply)) = self.provider_queries.remove(&id) {
                let _ = reply.send(found.into_iter().collect());
            }
            if let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                query.finish();
            }
        }
    }
}
