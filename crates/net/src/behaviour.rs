//! The composed libp2p behaviour and the swarm built around it: transports (TCP with TLS 1.3
//! or Noise, QUIC, relayed), connection limits, discovery (identify, Kademlia, mDNS,
//! rendezvous), NAT traversal (relay, AutoNAT, DCUtR), gossip and the request-response
//! protocols.

use std::time::Duration;

use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, Swarm, allow_block_list, autonat, connection_limits, dcutr, gossipsub, identify, identity, kad,
    mdns, noise, ping, relay, rendezvous, tcp, yamux,
};

use crate::gossip::{Topics, content_id};
use crate::protocol::files::{FileRequest, FileResponse};
use crate::protocol::market::{MarketRequest, MarketResponse};
use crate::protocol::{Codec, Request, Response};
use crate::{Config, StartError, limits, secure};

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) banned: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) ip_limit: limits::IpLimit,
    pub(crate) relay_client: relay::client::Behaviour,
    pub(crate) relay: Toggle<relay::Behaviour>,
    pub(crate) dcutr: dcutr::Behaviour,
    pub(crate) autonat: autonat::Behaviour,
    pub(crate) rendezvous: rendezvous::client::Behaviour,
    pub(crate) rendezvous_server: Toggle<rendezvous::server::Behaviour>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) sync: request_response::Behaviour<Codec<Request, Response>>,
    pub(crate) files: request_response::Behaviour<Codec<FileRequest, FileResponse>>,
    pub(crate) market: request_response::Behaviour<Codec<MarketRequest, MarketResponse>>,
}

/// Most connections to one peer: two direct connections (the second for file ranges) and,
/// while a hole punch goes direct, up to two relayed ones: two peers may dial each other
/// through a relay at once, and a direct connection refused here fails the punch.
const MAX_CONNECTIONS_PER_PEER: u32 = 4;
/// Most inbound connections still in their handshake.
const MAX_PENDING_INCOMING: u32 = 32;

/// The protocol version identify announces: a peer announcing another is of another network.
pub(crate) fn identify_version(network: &str) -> String {
    format!("/peerchain/{network}/1")
}

/// Builds the swarm for `config`, subscribed to every topic of `topics`.
pub(crate) fn build_swarm(
    keypair: identity::Keypair,
    config: &Config,
    topics: &Topics,
) -> Result<Swarm<Behaviour>, StartError> {
    let build = |e: &dyn std::fmt::Display| StartError::Build(e.to_string());
    let network = config.network.clone();
    // One certificate for TCP and relayed connections alike.
    let tls = secure::Tls::new(&keypair, config.tls).map_err(|e| build(&e))?;
    let tls = |_: &identity::Keypair| Ok::<_, secure::TlsError>(tls.clone());
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
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
                .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
                // Security: connections still in their handshake cost memory and CPU too.
                .with_max_pending_incoming(Some(MAX_PENDING_INCOMING));
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
            let sync = request_response::Behaviour::new(
                [(StreamProtocol::try_from_owned(format!("/peerchain/{network}/sync/1"))?, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(60))
                    .with_max_concurrent_streams(64),
            );
            let files = request_response::Behaviour::new(
                [(StreamProtocol::try_from_owned(format!("/peerchain/{network}/files/1"))?, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(30))
                    .with_max_concurrent_streams(256),
            );
            let market = request_response::Behaviour::new(
                [(StreamProtocol::try_from_owned(format!("/peerchain/{network}/market/1"))?, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(30))
                    .with_max_concurrent_streams(16),
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
                gossipsub: gossip_behaviour(topics)?,
                mdns: Toggle::from(mdns),
                sync,
                files,
                market,
            })
        })
        .map_err(|e| build(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    Ok(swarm)
}

/// Gossipsub, subscribed to `topics`. Transactions carry their owners' signatures and blocks
/// their proof of work, so gossip messages are not signed by their publisher: every hop
/// would otherwise verify one more signature per message, and no rule of ours asks who
/// published. Scoring judges the peer that forwarded a message, which stays known.
fn gossip_behaviour(topics: &Topics) -> Result<gossipsub::Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        // Security: the id is the content's hash, so the same message relayed by many peers
        // is seen once.
        .message_id_fn(|message| gossipsub::MessageId::from(content_id(&message.data)))
        .max_transmit_size(1 << 20)
        .heartbeat_interval(Duration::from_millis(500))
        .build()?;
    let mut gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)?;
    let (score_params, score_thresholds) = topics.scoring();
    gossipsub.with_peer_score(score_params, score_thresholds)?;
    for topic in crate::Topic::ALL {
        gossipsub.subscribe(topics.ident(topic))?;
    }
    Ok(gossipsub)
}
