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
use libp2p::swarm::behaviour::{ConnectionClosed, ListenFailure};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    dummy,
};
use libp2p::{Multiaddr, PeerId};
use tracing::warn;

use crate::address::{ip_of, is_relayed};

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

/// Caps the inbound connections from one IP address, so that one machine cannot take every
/// inbound slot, nor every handshake slot with connections it never finishes: a connection
/// counts from the start of its handshake until it closes or fails. Loopback is exempt unless
/// `limit_loopback` (a local network of nodes, as `devnet` runs, all comes from 127.0.0.1).
///
/// It also refuses inbound connections from banned addresses, and caps inbound relayed
/// connections, which come from nobody's address: every node is a relay by default, so one
/// machine could otherwise take every inbound slot through relays.
#[derive(Debug)]
pub(crate) struct IpLimit {
    max_per_ip: u32,
    limit_loopback: bool,
    per_ip: HashMap<IpAddr, u32>,
    /// The connections counted in `per_ip`, and their address.
    counted: HashMap<ConnectionId, IpAddr>,
    max_relayed: u32,
    /// Inbound relayed connections, from their handshake on.
    relayed: std::collections::HashSet<ConnectionId>,
    /// Addresses whose connections are refused (their peers were banned).
    banned: std::collections::HashSet<IpAddr>,
}

impl IpLimit {
    pub(crate) fn new(max_per_ip: u32, limit_loopback: bool, max_relayed: u32) -> Self {
        Self {
            max_per_ip,
            limit_loopback,
            per_ip: HashMap::new(),
            counted: HashMap::new(),
            max_relayed,
            relayed: Default::default(),
            banned: Default::default(),
        }
    }

    /// The address a connection counts against, if any: not a relayed one (the address is
    /// the relay's, its peers are not one machine), and not loopback unless `limit_loopback`.
    pub(crate) fn limited_ip(&self, remote: &Multiaddr) -> Option<IpAddr> {
        if is_relayed(remote) {
            return None;
        }
        ip_of(remote).filter(|ip| self.limit_loopback || !ip.is_loopback())
    }

    /// Refuses connections from `ip` until [`IpLimit::unban`].
    pub(crate) fn ban(&mut self, ip: IpAddr) {
        self.banned.insert(ip);
    }

    pub(crate) fn unban(&mut self, ip: &IpAddr) {
        self.banned.remove(ip);
    }

    pub(crate) fn is_banned(&self, address: &Multiaddr) -> bool {
        self.limited_ip(address).is_some_and(|ip| self.banned.contains(&ip))
    }

    /// Counts `connection` from `remote` (to `local`), or refuses it if its address is banned
    /// or has no slot left, or if it is relayed and the relayed slots are taken.
    fn admit(
        &mut self,
        connection: ConnectionId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        if is_relayed(local) || is_relayed(remote) {
            if self.relayed.len() >= self.max_relayed as usize {
                return Err(ConnectionDenied::new(Refused::TooManyRelayed { max: self.max_relayed }));
            }
            self.relayed.insert(connection);
            return Ok(());
        }
        let Some(ip) = self.limited_ip(remote) else { return Ok(()) };
        if self.banned.contains(&ip) {
            return Err(ConnectionDenied::new(Refused::Banned { ip }));
        }
        if self.per_ip.get(&ip).is_some_and(|count| *count >= self.max_per_ip) || self.max_per_ip == 0 {
            return Err(ConnectionDenied::new(Refused::TooManyFromIp { ip, max: self.max_per_ip }));
        }
        *self.per_ip.entry(ip).or_default() += 1;
        self.counted.insert(connection, ip);
        Ok(())
    }

    /// Frees the slot of a connection that closed or failed (nothing if it was not counted).
    fn release(&mut self, connection: ConnectionId) {
        self.relayed.remove(&connection);
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
enum Refused {
    #[error("{ip} already has {max} inbound connections")]
    TooManyFromIp { ip: IpAddr, max: u32 },
    #[error("{ip} is banned")]
    Banned { ip: IpAddr },
    #[error("already {max} inbound relayed connections")]
    TooManyRelayed { max: u32 },
}

impl NetworkBehaviour for IpLimit {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection: ConnectionId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        // Refused before the handshake costs anything.
        self.admit(connection, local, remote)
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

/// Bytes of answers handed to libp2p and not yet written to their peer, per peer and in all.
/// Security: a peer that asks and never reads would otherwise pin an answer per request in
/// memory until its request times out; beyond its share, its next answers are refusals.
#[derive(Debug)]
pub(crate) struct ResponseBudget<K> {
    per_peer: usize,
    total_max: usize,
    waiting: HashMap<K, (PeerId, usize)>,
    by_peer: HashMap<PeerId, usize>,
    total: usize,
}

impl<K: std::hash::Hash + Eq> ResponseBudget<K> {
    pub(crate) fn new(per_peer: usize, total_max: usize) -> Self {
        Self { per_peer, total_max, waiting: HashMap::new(), by_peer: HashMap::new(), total: 0 }
    }

    /// Whether an answer of `size` bytes to `peer` fits.
    pub(crate) fn admits(&self, peer: &PeerId, size: usize) -> bool {
        let waiting = self.by_peer.get(peer).copied().unwrap_or(0);
        waiting + size <= self.per_peer && self.total + size <= self.total_max
    }

    /// Counts an answer sent, until [`ResponseBudget::release`].
    pub(crate) fn record(&mut self, key: K, peer: PeerId, size: usize) {
        *self.by_peer.entry(peer).or_default() += size;
        self.total += size;
        self.waiting.insert(key, (peer, size));
    }

    /// The answer was written, or failed.
    pub(crate) fn release(&mut self, key: &K) {
        let Some((peer, size)) = self.waiting.remove(key) else { return };
        self.total -= size;
        if let Some(waiting) = self.by_peer.get_mut(&peer) {
            *waiting -= size;
            if *waiting == 0 {
                self.by_peer.remove(&peer);
            }
        }
    }

    /// The peer is gone: its answers with it.
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        let total = &mut self.total;
        self.waiting.retain(|_, (owner, size)| {
            let gone = owner == peer;
            if gone {
                *total -= *size;
            }
            !gone
        });
        self.by_peer.remove(peer);
    }
}

/// What a ban is held against: a peer id, or the address its connection came from (new peer
/// ids are free; addresses are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Banned {
    Peer(PeerId),
    Ip(IpAddr),
}

/// Banned peers and addresses and when their bans end, kept in a file (`bans.txt` in the data
/// directory) so that a restart does not forgive them.
///
/// Security: the file is a log. A ban appends one line, so a peer that gets itself banned
/// under ever new ids costs one short write each, not a rewrite of the whole list; the log is
/// compacted (rewritten with the live bans) once it holds twice as many lines as there are
/// live bans.
#[derive(Debug, Default)]
pub(crate) struct BanList {
    bans: HashMap<Banned, SystemTime>,
    path: Option<PathBuf>,
    /// Lines in the file now.
    lines: usize,
    /// Bytes written to the file since it was loaded.
    written: u64,
}

/// Lines the log may hold beyond twice the live bans before it is compacted.
const LOG_SLACK: usize = 64;

impl BanList {
    /// The unexpired bans saved at `path`; none if there is no file. An unreadable file is
    /// reported and replaced at the next change: bans protect, they are not worth a refusal
    /// to start. A later line for the same peer or address replaces an earlier one.
    pub(crate) fn load(path: Option<&Path>) -> BanList {
        let mut list = BanList { bans: HashMap::new(), path: path.map(Path::to_path_buf), lines: 0, written: 0 };
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
            list.lines += 1;
            match parse_ban(line) {
                Some((banned, until)) if until > now => {
                    list.bans.insert(banned, until);
                }
                Some((banned, _)) => {
                    list.bans.remove(&banned);
                }
                None if line.trim().is_empty() => {}
                None => warn!(path = %path.display(), line = number + 1, "skipping a malformed ban entry"),
            }
        }
        list
    }

    /// Bans `banned` until `until`.
    pub(crate) fn insert(&mut self, banned: Banned, until: SystemTime) {
        self.bans.insert(banned, until);
        self.append(&[(banned, until)]);
    }

    /// Removes and returns the bans that have ended.
    pub(crate) fn take_expired(&mut self) -> Vec<Banned> {
        let now = SystemTime::now();
        let expired: Vec<Banned> = self.bans.iter().filter(|(_, until)| **until <= now).map(|(b, _)| *b).collect();
        for banned in &expired {
            self.bans.remove(banned);
        }
        if !expired.is_empty() && self.lines > 2 * self.bans.len() + LOG_SLACK {
            self.compact();
        }
        expired
    }

    pub(crate) fn contains(&self, banned: &Banned) -> bool {
        self.bans.contains_key(banned)
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Banned> {
        self.bans.keys()
    }

    /// How many lines the file holds, and how many bytes were written to it (for tests of
    /// its growth).
    #[cfg(test)]
    pub(crate) fn file_lines_and_bytes_written(&self) -> (usize, u64) {
        (self.lines, self.written)
    }

    /// Appends bans to the log, or compacts it when it has grown long.
    fn append(&mut self, bans: &[(Banned, SystemTime)]) {
        let Some(path) = &self.path else { return };
        if self.lines + bans.len() > 2 * self.bans.len() + LOG_SLACK {
            self.compact();
            return;
        }
        let text: String = bans.iter().map(|(banned, until)| format_ban(banned, *until)).collect();
        let result = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, text.as_bytes()));
        match result {
            Ok(()) => {
                self.lines += bans.len();
                self.written += text.len() as u64;
            }
            Err(e) => warn!(path = %path.display(), error = %e, "cannot save the ban list"),
        }
    }

    /// Rewrites the log with the live bans only, through a temporary file so that a crash
    /// never leaves half a list.
    fn compact(&mut self) {
        let Some(path) = &self.path else { return };
        let text: String = self.bans.iter().map(|(banned, until)| format_ban(banned, *until)).collect();
        let temporary = path.with_extension("tmp");
        let written = text.len() as u64;
        let result = std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, path));
        match result {
            Ok(()) => {
                self.lines = self.bans.len();
                self.written += written;
            }
            Err(e) => warn!(path = %path.display(), error = %e, "cannot save the ban list"),
        }
    }
}

/// One line of the ban log: `<peer id> <end>` or `ip <address> <end>`, the end in seconds
/// since the Unix epoch.
fn format_ban(banned: &Banned, until: SystemTime) -> String {
    let seconds = until.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    match banned {
        Banned::Peer(peer) => format!("{peer} {seconds}\n"),
        Banned::Ip(ip) => format!("ip {ip} {seconds}\n"),
    }
}

fn parse_ban(line: &str) -> Option<(Banned, SystemTime)> {
    let mut words = line.split_whitespace();
    let first = words.next()?;
    let banned =
        if first == "ip" { Banned::Ip(words.next()?.parse().ok()?) } else { Banned::Peer(first.parse().ok()?) };
    let until = UNIX_EPOCH + Duration::from_secs(words.next()?.parse().ok()?);
    words.next().is_none().then_some((banned, until))
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
        let mut limit = IpLimit::new(2, false, 8);
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
        let (a, b) = (Banned::Peer(PeerId::random()), Banned::Peer(PeerId::random()));
        let ip = Banned::Ip("203.0.113.9".parse().unwrap());
        let mut list = BanList::load(Some(&path));
        list.insert(a, SystemTime::now() + Duration::from_secs(3600));
        list.insert(b, SystemTime::now() - Duration::from_secs(1));
        list.insert(ip, SystemTime::now() + Duration::from_secs(3600));
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("not a ban\n");
        std::fs::write(&path, text).unwrap();
        let reloaded = BanList::load(Some(&path));
        assert!(reloaded.contains(&a));
        assert!(reloaded.contains(&ip), "address bans are kept too");
        assert!(!reloaded.contains(&b), "an expired ban is not restored");
        assert_eq!(reloaded.all().count(), 2);
        assert_eq!(list.take_expired(), vec![b]);
    }

    #[test]
    fn banning_many_peers_appends_instead_of_rewriting_and_the_log_stays_compact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bans.txt");
        let mut list = BanList::load(Some(&path));
        for n in 0..2_000u64 {
            // Half the bans have already ended by the time they are written.
            let until = if n % 2 == 0 { SystemTime::now() + Duration::from_secs(3600) } else { SystemTime::now() };
            list.insert(Banned::Peer(PeerId::random()), until);
            list.take_expired();
        }
        // Appends write a line (about 60 bytes) per ban, and compactions rewrite the live
        // bans only now and then; rewriting the whole list at every ban would write about
        // 2,000 * 1,000 / 2 lines (60 MB).
        let (lines, written) = list.file_lines_and_bytes_written();
        assert!(written < 2_000 * 60 * 6, "wrote {written} bytes for 2,000 bans");
        assert!(lines <= 2 * list.all().count() + LOG_SLACK + 1, "{lines} lines");
        let reloaded = BanList::load(Some(&path));
        assert_eq!(reloaded.all().count(), 1_000);
    }

    /// Review M4: a peer that never reads its answers gets refusals beyond its share, and the
    /// others are still answered.
    #[test]
    fn answers_a_peer_has_not_read_are_bounded_per_peer_and_in_all() {
        let mut budget = ResponseBudget::new(100, 250);
        let (slow, other, third) = (PeerId::random(), PeerId::random(), PeerId::random());
        assert!(budget.admits(&slow, 60));
        budget.record(1, slow, 60);
        assert!(!budget.admits(&slow, 60), "its share is taken");
        assert!(budget.admits(&other, 100));
        budget.record(2, other, 100);
        budget.record(3, third, 80);
        assert!(!budget.admits(&third, 20), "all peers together are bounded too");
        budget.release(&1);
        assert!(budget.admits(&slow, 60), "written, it frees its share");
        budget.forget(&other);
        assert_eq!(budget.total, 80);
        assert!(budget.admits(&other, 100));
    }

    #[test]
    fn banned_addresses_and_relayed_connections_beyond_the_cap_are_refused() {
        let mut limit = IpLimit::new(8, false, 2);
        let local: Multiaddr = "/ip4/192.0.2.1/tcp/9000".parse().unwrap();
        let remote: Multiaddr = "/ip4/203.0.113.7/tcp/4001".parse().unwrap();
        let circuit: Multiaddr =
            "/ip4/198.51.100.1/tcp/4001/p2p/12D3KooWQLBBmRbeYPHJmtHbVSouqNhhckSQ1tP5mM4DFfhojATa/p2p-circuit"
                .parse()
                .unwrap();
        let from: Multiaddr = "/p2p/12D3KooWQLBBmRbeYPHJmtHbVSouqNhhckSQ1tP5mM4DFfhojATa".parse().unwrap();
        let id = ConnectionId::new_unchecked;
        assert!(limit.handle_pending_inbound_connection(id(1), &local, &remote).is_ok());
        limit.ban("203.0.113.7".parse().unwrap());
        assert!(limit.handle_pending_inbound_connection(id(2), &local, &remote).is_err(), "banned address");
        assert!(limit.is_banned(&remote));
        limit.unban(&"203.0.113.7".parse().unwrap());
        assert!(limit.handle_pending_inbound_connection(id(3), &local, &remote).is_ok());
        assert!(limit.handle_pending_inbound_connection(id(4), &circuit, &from).is_ok());
        assert!(limit.handle_pending_inbound_connection(id(5), &circuit, &from).is_ok());
        assert!(limit.handle_pending_inbound_connection(id(6), &circuit, &from).is_err(), "relayed slots taken");
        limit.on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
            peer_id: PeerId::random(),
            connection_id: id(4),
            endpoint: &libp2p::core::ConnectedPoint::Listener {
                local_addr: circuit.clone(),
                send_back_addr: from.clone(),
            },
            cause: None,
            remaining_established: 0,
        }));
        assert!(limit.handle_pending_inbound_connection(id(7), &circuit, &from).is_ok(), "a slot freed");
    }
}
