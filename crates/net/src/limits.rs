//! Limits on what peers can make this node do: token buckets for request rates, a cap on
//! inbound connections from one IP address, and the ban list that outlives restarts.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::{ConnectionClosed, ListenFailure};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    dummy,
};
use libp2p::{Multiaddr, PeerId};
use tracing::warn;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket that starts full.
    pub fn full(rate: f64, burst: f64) -> TokenBucket {
        TokenBucket { rate, burst, tokens: burst, last: Instant::now() }
    }

    fn refill(&mut self) {
        self.tokens = (self.tokens + self.last.elapsed().as_secs_f64() * self.rate).min(self.burst);
        self.last = Instant::now();
    }

    /// How long since the bucket was last used.
    pub fn idle(&self) -> Duration {
        self.last.elapsed()
    }

    /// Takes `amount` if that many tokens are there.
    pub fn try_take(&mut self, amount: f64) -> bool {
        self.refill();
        let enough = self.tokens >= amount;
        if enough {
            self.tokens -= amount;
        }
        enough
    }

    /// Takes `amount`, going into debt if needed; returns how long to wait to pay it off.
    pub fn take(&mut self, amount: f64) -> Option<Duration> {
        self.refill();
        self.tokens -= amount;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.rate))
    }
}

/// The IP address a connection comes from, if the address has one.
pub(crate) fn ip_of(address: &Multiaddr) -> Option<IpAddr> {
    address.iter().find_map(|protocol| match protocol {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Whether a connection or address goes through a relay (`/p2p-circuit`).
pub(crate) fn is_relayed(address: &Multiaddr) -> bool {
    address.iter().any(|protocol| matches!(protocol, Protocol::P2pCircuit))
}

/// Caps the inbound connections from one IP address, so that one machine cannot take every
/// inbound slot, nor every handshake slot with connections it never finishes: a connection
/// counts from the start of its handshake until it closes or fails. Loopback is exempt unless
/// `limit_loopback` (a local network of nodes, as `devnet` runs, all comes from 127.0.0.1).
#[derive(Debug)]
pub(crate) struct IpLimit {
    max_per_ip: u32,
    limit_loopback: bool,
    per_ip: HashMap<IpAddr, u32>,
    /// The connections counted in `per_ip`, and their address.
    counted: HashMap<ConnectionId, IpAddr>,
}

impl IpLimit {
    pub(crate) fn new(max_per_ip: u32, limit_loopback: bool) -> Self {
        Self { max_per_ip, limit_loopback, per_ip: HashMap::new(), counted: HashMap::new() }
    }

    fn limited_ip(&self, remote: &Multiaddr) -> Option<IpAddr> {
        // A relayed connection's address is the relay's: its peers are not one machine.
        if is_relayed(remote) {
            return None;
        }
        ip_of(remote).filter(|ip| self.limit_loopback || !ip.is_loopback())
    }

    /// Counts `connection` from `remote`, or refuses it if its address has no slot left.
    fn admit(&mut self, connection: ConnectionId, remote: &Multiaddr) -> Result<(), ConnectionDenied> {
        let Some(ip) = self.limited_ip(remote) else { return Ok(()) };
        if self.per_ip.get(&ip).is_some_and(|count| *count >= self.max_per_ip) || self.max_per_ip == 0 {
            return Err(ConnectionDenied::new(TooManyFromIp { ip, max: self.max_per_ip }));
        }
        *self.per_ip.entry(ip).or_default() += 1;
        self.counted.insert(connection, ip);
        Ok(())
    }

    /// Frees the slot of a connection that closed or failed (nothing if it was not counted).
    fn release(&mut self, connection: ConnectionId) {
        let Some(ip) = self.counted.remove(&connection) else { return };
        if let Some(count) = self.per_ip.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// Why an inbound connection was refused.
#[derive(Debug, thiserror::Error)]
#[error("{ip} already has {max} inbound connections")]
struct TooManyFromIp {
    ip: IpAddr,
    max: u32,
}

impl NetworkBehaviour for IpLimit {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection: ConnectionId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        // Refused before the handshake costs anything.
        self.admit(connection, remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        // Counted since its handshake began.
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        // A failed handshake, a refusal by another behaviour, or the end of a connection.
        match event {
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. })
            | FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => self.release(connection_id),
            _ => {}
        }
    }

    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, event: THandlerOutEvent<Self>) {
        libp2p::core::util::unreachable(event)
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// Banned peers and when their bans end, kept in a file (`bans.txt` in the data directory)
/// so that a restart does not forgive them.
#[derive(Debug, Default)]
pub(crate) struct BanList {
    bans: HashMap<PeerId, SystemTime>,
    path: Option<PathBuf>,
}

impl BanList {
    /// The unexpired bans saved at `path`; none if there is no file. An unreadable file is
    /// reported and replaced at the next change: bans protect, they are not worth a refusal
    /// to start.
    pub(crate) fn load(path: Option<&Path>) -> BanList {
        let mut list = BanList { bans: HashMap::new(), path: path.map(Path::to_path_buf) };
        let Some(path) = path else { return list };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return list,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "cannot read the ban list");
                return list;
            }
        };
        let now = SystemTime::now();
        for (number, line) in text.lines().enumerate() {
            let parsed = line.split_once(' ').and_then(|(peer, until)| {
                Some((peer.parse::<PeerId>().ok()?, UNIX_EPOCH + Duration::from_secs(until.trim().parse().ok()?)))
            });
            match parsed {
                Some((peer, until)) if until > now => {
                    list.bans.insert(peer, until);
                }
                Some(_) => {}
                None if line.trim().is_empty() => {}
                None => warn!(path = %path.display(), line = number + 1, "skipping a malformed ban entry"),
            }
        }
        list
    }

    /// Bans `peer` until `until`.
    pub(crate) fn insert(&mut self, peer: PeerId, until: SystemTime) {
        self.bans.insert(peer, until);
        self.save();
    }

    /// Removes and returns the bans that have ended.
    pub(crate) fn take_expired(&mut self) -> Vec<PeerId> {
        let now = SystemTime::now();
        let expired: Vec<PeerId> = self.bans.iter().filter(|(_, until)| **until <= now).map(|(p, _)| *p).collect();
        if !expired.is_empty() {
            for peer in &expired {
                self.bans.remove(peer);
            }
            self.save();
        }
        expired
    }

    pub(crate) fn contains(&self, peer: &PeerId) -> bool {
        self.bans.contains_key(peer)
    }

    pub(crate) fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.bans.keys()
    }

    /// Writes the list: one `<peer id> <end, seconds since the Unix epoch>` line per ban,
    /// through a temporary file so that a crash never leaves half a list.
    fn save(&self) {
        let Some(path) = &self.path else { return };
        let mut text = String::new();
        for (peer, until) in &self.bans {
            let seconds = until.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            text.push_str(&format!("{peer} {seconds}\n"));
        }
        let temporary = path.with_extension("tmp");
        let result = std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, path));
        if let Err(e) = result {
            warn!(path = %path.display(), error = %e, "cannot save the ban list");
        }
    }
}

#[cfg(test)]
mod tests {
    use libp2p::swarm::ListenError;

    use super::*;

    #[test]
    fn token_buckets_allow_bursts_then_the_rate() {
        let mut searches = TokenBucket::full(1.0, 2.0);
        assert!(searches.try_take(1.0) && searches.try_take(1.0));
        assert!(!searches.try_take(1.0), "the burst is spent");
        let mut bandwidth = TokenBucket::full(1000.0, 1000.0);
        assert_eq!(bandwidth.take(500.0), None);
        let wait = bandwidth.take(1500.0).expect("in debt");
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
    }

    #[test]
    fn a_connection_holds_its_addresss_slot_from_its_handshake_until_it_fails() {
        let mut limit = IpLimit::new(2, false);
        let local: Multiaddr = "/ip4/192.0.2.1/tcp/9000".parse().unwrap();
        let remote: Multiaddr = "/ip4/203.0.113.7/tcp/4001".parse().unwrap();
        let other: Multiaddr = "/ip4/203.0.113.8/tcp/4001".parse().unwrap();
        let loopback: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let id = ConnectionId::new_unchecked;
        for n in 1..=2 {
            assert!(limit.handle_pending_inbound_connection(id(n), &local, &remote).is_ok());
        }
        assert!(
            limit.handle_pending_inbound_connection(id(3), &local, &remote).is_err(),
            "two handshakes that never finish hold both slots"
        );
        assert!(limit.handle_pending_inbound_connection(id(4), &local, &other).is_ok(), "another address has its own");
        assert!(limit.handle_pending_inbound_connection(id(5), &local, &loopback).is_ok());
        assert!(limit.handle_pending_inbound_connection(id(6), &local, &loopback).is_ok());
        assert!(limit.handle_pending_inbound_connection(id(7), &local, &loopback).is_ok(), "loopback is exempt");

        // A refused connection frees nothing; a failed handshake frees its slot.
        let fail = |limit: &mut IpLimit, n| {
            let error = ListenError::Aborted;
            let failure = ListenFailure {
                local_addr: &local,
                send_back_addr: &remote,
                error: &error,
                connection_id: id(n),
                peer_id: None,
            };
            limit.on_swarm_event(FromSwarm::ListenFailure(failure));
        };
        fail(&mut limit, 3);
        assert!(limit.handle_pending_inbound_connection(id(8), &local, &remote).is_err());
        fail(&mut limit, 1);
        assert!(limit.handle_pending_inbound_connection(id(9), &local, &remote).is_ok());
    }

    #[test]
    fn the_ban_list_survives_a_reload_and_drops_what_expired_or_is_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bans.txt");
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut list = BanList::load(Some(&path));
        list.insert(a, SystemTime::now() + Duration::from_secs(3600));
        list.insert(b, SystemTime::now() - Duration::from_secs(1));
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("not a ban\n");
        std::fs::write(&path, text).unwrap();
        let reloaded = BanList::load(Some(&path));
        assert!(reloaded.contains(&a));
        assert!(!reloaded.contains(&b), "an expired ban is not restored");
        assert_eq!(reloaded.peers().count(), 1);
        assert_eq!(list.take_expired(), vec![b]);
    }
}
