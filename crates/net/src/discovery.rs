//! Finding and keeping peers: the first dials (anchors, bootstrap peers, relays), dialling
//! bootstrap peers again, the outbound target (peers picked by [`crate::outbound::choose`]),
//! identify (which also tells peers of other networks apart), the rendezvous overlay, the
//! second connection a download opens, and the anchors saved at shutdown.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, identify, rendezvous};
use tracing::{debug, info, warn};

use crate::address::{is_relayed, peer_of, reachable_from_here, without_peer_id};
use crate::behaviour::identify_version;
use crate::task::Task;
use crate::{Direction, limits, outbound};

/// Most rendezvous points a node registers at and asks.
const MAX_RENDEZVOUS_POINTS: usize = 3;
/// Most peers remembered from rendezvous answers.
const MAX_RENDEZVOUS_FOUND: usize = 1_000;
/// How long a peer may stay connected without showing it speaks this network's protocols.
const IDENTIFY_DEADLINE: Duration = Duration::from_secs(10);
/// Longest wait at start for the listeners' addresses before the first dials.
const LISTEN_SETTLE: Duration = Duration::from_secs(1);

impl Task {
    /// Waits (briefly) until the node's listeners report their addresses, then dials the
    /// anchors, the bootstrap peers and relays. libp2p dials from the listening port once it
    /// knows it, so a NAT maps the node's outbound connections to the port it listens on: the
    /// one peers learn from identify and punch holes to.
    pub(crate) async fn first_dials(&mut self) {
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

    /// Every few seconds: bootstrap peers not connected are dialled again, outbound slots
    /// filled, relay reservations renewed, and peers that never identified let go.
    pub(crate) fn redial(&mut self) {
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

    /// Listens on the relay circuits waiting for it: each dials its relay (if not connected)
    /// and asks for a reservation.
    pub(crate) fn listen_through_relays(&mut self) {
        for circuit in std::mem::take(&mut self.circuits_to_listen) {
            match self.swarm.listen_on(circuit.clone()) {
                Ok(listener) => {
                    self.relay_listeners.insert(listener, circuit);
                }
                Err(e) => warn!(%circuit, error = %e, "cannot listen through the relay"),
            }
        }
    }

    /// Below the target of outbound peers, dials peers of the DHT's routing table that are
    /// neither connected nor banned, as many as are missing, chosen for the diversity of
    /// their networks (see [`outbound::choose`]).
    pub(crate) fn dial_toward_target(&mut self) {
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

    /// Opens a second direct connection to a peer a download asks for ranges. Each
    /// connection is decrypted and demultiplexed in its own task, one core at a time, and
    /// request-response spreads a peer's requests over its connections: with two, a download
    /// from one source uses both cores on each side.
    pub(crate) fn open_bulk_connection(&mut self, peer: PeerId) {
        let Some([(_, direction, address)]) = self.connections.get(&peer).map(Vec::as_slice) else { return };
        if is_relayed(address) || !self.bulk_dialled.insert(peer) {
            return;
        }
        let known = (*direction == Direction::Outbound).then(|| address.clone());
        let dial = DialOpts::peer_id(peer)
            .condition(PeerCondition::Always)
            .addresses(known.into_iter().collect())
            .extend_addresses_through_behaviour()
            .allocate_new_port()
            .build();
        if let Err(e) = self.swarm.dial(dial) {
            debug!(%peer, error = %e, "cannot open a second connection for a download");
        }
    }

    /// What a peer says of itself. Security: a peer of another network (or another program)
    /// speaks none of our protocols; it is let go at once and never enters the DHT.
    pub(crate) fn on_identify(&mut self, peer_id: PeerId, info: identify::Info) {
        self.unidentified.remove(&peer_id);
        if info.protocol_version != identify_version(&self.network) {
            info!(peer = %peer_id, version = %info.protocol_version, "peer of another network disconnected");
            self.swarm.behaviour_mut().kad.remove_peer(&peer_id);
            let _ = self.swarm.disconnect_peer_id(peer_id);
            return;
        }
        // Correctness: identify is not wired into Kademlia; its listen addresses are how the
        // DHT learns where an inbound peer can be reached, and the address we dialled where
        // an outbound one is.
        let seen_at = self.peers.get(&peer_id).map(|p| p.address.clone());
        let dialled_it = self.peers.get(&peer_id).is_some_and(|p| p.direction == Direction::Outbound);
        if dialled_it && let Some(dialled) = seen_at.clone() {
            self.swarm.behaviour_mut().kad.add_address(&peer_id, dialled);
        }
        for address in &info.listen_addrs {
            if seen_at.as_ref().is_none_or(|seen_at| reachable_from_here(address, seen_at)) {
                self.swarm.behaviour_mut().kad.add_address(&peer_id, address.clone());
            }
        }
        if let Some(peer) = self.peers.get_mut(&peer_id) {
            peer.agent = Some(info.agent_version);
        }
        // The market asks a peer of this network for its book once it is identified. A full
        // queue drops the note: the market also asks peers it has not asked yet from time
        // to time.
        let _ = self.events.market.try_send(crate::MarketEvent::PeerReady(peer_id));
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

    pub(crate) fn on_rendezvous(&mut self, event: rendezvous::client::Event) {
        match event {
            rendezvous::client::Event::Registered { rendezvous_node, ttl, .. } => {
                debug!(point = %rendezvous_node, ttl, "registered at a rendezvous point");
            }
            rendezvous::client::Event::Discovered { registrations, .. } => {
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
            _ => {}
        }
    }

    pub(crate) fn visit_rendezvous_points(&mut self) {
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
    pub(crate) fn save_anchors(&self) {
        let Some(path) = &self.anchors_file else { return };
        let anchors: Vec<Multiaddr> = self
            .peers
            .values()
            .filter(|p| p.direction == Direction::Outbound && !is_relayed(&p.address))
            .filter_map(|p| without_peer_id(&p.address).with_p2p(p.peer).ok())
            .collect();
        if let Err(e) = outbound::save_anchors(path, &anchors) {
            warn!(path = %path.display(), error = %e, "cannot save the anchors");
        }
    }
}
