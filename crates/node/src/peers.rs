//! The one book of peers' misbehaviour, for every part of the node that talks to peers (chain
//! sync, file sharing, and what comes next): what each offence costs, points that outlive
//! connections and fade with time, per peer and per address, and the ban at 100.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use peerchain_net::Peer;
use tracing::{debug, warn};

/// Misbehaviour points at which a peer is banned.
const BAN_SCORE: u32 = 100;
/// How long a ban lasts.
const BAN_DURATION: Duration = Duration::from_secs(3600);

/// What a peer did wrong, and what it costs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Offence {
    /// An invalid header, or a chain through a block known to be invalid: consensus says so.
    Invalid,
    /// A block body that does not match its header (an honest node stores and serves only
    /// bodies that do).
    Mutated,
    /// A second, different compact announcement of a block already being rebuilt: an honest
    /// node announces a block one way.
    RepeatedAnnouncement,
    /// Bytes that do not decode, or the wrong kind of answer.
    Malformed,
    /// Data nobody asked for.
    Unrequested,
    /// Another chain's genesis.
    WrongNetwork,
    /// A transaction that breaks a rule.
    InvalidTransaction,
    /// No answer in time.
    Timeout,
    /// Headers that do not connect to anything known (can happen in a race; not often).
    Disconnected,
    /// File data that fails verification against its content id (or a false size claim).
    BadData,
    /// An offer its sender could have seen was invalid (a bad signature, a want of nothing).
    InvalidOffer,
    /// An offer whose coin is gone or whose expiry passed: honest in a race, a flood if many.
    StaleOffer,
}

impl Offence {
    pub(crate) fn points(self) -> u32 {
        match self {
            Offence::Invalid | Offence::Mutated | Offence::Unrequested | Offence::WrongNetwork | Offence::BadData => {
                100
            }
            Offence::Malformed => 50,
            Offence::InvalidTransaction | Offence::Disconnected | Offence::RepeatedAnnouncement => 20,
            Offence::InvalidOffer => 25,
            Offence::StaleOffer => 5,
            // Slowness is not misbehaviour: a loaded machine or a slow link times out too. The
            // work goes to another peer; the peer is not held to account.
            Offence::Timeout => 0,
        }
    }
}

/// Misbehaviour points a peer is forgiven per hour: an honest peer that now and then trips a
/// rule in a race (headers that do not connect yet) never reaches a ban, a hostile one does.
const FORGIVEN_PER_HOUR: f64 = 50.0;

/// Misbehaviour points per peer (or per address). They outlive the connection (a peer cannot
/// wipe its record by reconnecting) and fade at [`FORGIVEN_PER_HOUR`].
#[derive(Debug)]
struct Scores<K> {
    points: HashMap<K, (f64, Instant)>,
}

impl<K> Default for Scores<K> {
    fn default() -> Self {
        Self { points: HashMap::new() }
    }
}

impl<K: std::hash::Hash + Eq + Copy> Scores<K> {
    fn decayed((points, since): (f64, Instant), now: Instant) -> f64 {
        (points - now.saturating_duration_since(since).as_secs_f64() * FORGIVEN_PER_HOUR / 3600.0).max(0.0)
    }

    /// Adds `points` to `key`'s score as of `now`; returns the new score.
    fn add(&mut self, key: K, points: u32, now: Instant) -> u32 {
        if self.points.len() >= REMEMBERED && !self.points.contains_key(&key) {
            // Bounded: the forgiven records go first, then the lowest.
            self.points.retain(|_, record| Self::decayed(*record, now) > 0.0);
            if self.points.len() >= REMEMBERED
                && let Some(lowest) = self
                    .points
                    .iter()
                    .min_by(|a, b| Self::decayed(*a.1, now).total_cmp(&Self::decayed(*b.1, now)))
                    .map(|(k, _)| *k)
            {
                self.points.remove(&lowest);
            }
        }
        let current = self.points.get(&key).map_or(0.0, |record| Self::decayed(*record, now));
        let score = current + f64::from(points);
        self.points.insert(key, (score, now));
        score.ceil() as u32
    }

    fn forget(&mut self, key: &K) {
        self.points.remove(key);
    }
}

/// How many peers' and addresses' records are kept.
const REMEMBERED: usize = 4_096;

/// The book: scores by peer and by address, and the address each connected peer came from.
#[derive(Debug, Default)]
struct Records {
    peers: Scores<Peer>,
    addresses: Scores<IpAddr>,
    ips: HashMap<Peer, IpAddr>,
}

/// The shared misbehaviour book (cheap to clone). Penalties lead to bans through `net`.
#[derive(Debug, Clone)]
pub(crate) struct Book {
    records: Arc<Mutex<Records>>,
    net: peerchain_net::Handle,
}

impl Book {
    pub(crate) fn new(net: peerchain_net::Handle) -> Book {
        Book { records: Arc::new(Mutex::new(Records::default())), net }
    }

    /// Notes the address a peer's limits and bans hold against (see
    /// [`peerchain_net::PeerInfo::ip`]), or forgets it when the peer leaves.
    pub(crate) fn set_address(&self, peer: Peer, ip: Option<IpAddr>) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        match ip {
            Some(ip) => {
                if records.ips.len() >= REMEMBERED {
                    records.ips.clear();
                }
                records.ips.insert(peer, ip);
            }
            None => {
                records.ips.remove(&peer);
            }
        }
    }

    /// Adds an offence to a peer's score and its address's; at [`BAN_SCORE`] the peer (and
    /// its address) is banned. Returns whether it was.
    pub(crate) async fn penalise(&self, peer: Peer, offence: Offence, reason: &str) -> bool {
        if offence.points() == 0 {
            debug!(%peer, ?offence, %reason, "peer was slow");
            return false;
        }
        let now = Instant::now();
        let (score, address_score, banned) = {
            let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
            let score = records.peers.add(peer, offence.points(), now);
            let ip = records.ips.get(&peer).copied();
            let address_score = ip.map_or(0, |ip| records.addresses.add(ip, offence.points(), now));
            let banned = score >= BAN_SCORE || address_score >= BAN_SCORE;
            if banned {
                // The ban is the sentence (of the address too, which net bans with the
                // peer); the record starts clean when it ends.
                records.peers.forget(&peer);
                if let Some(ip) = ip {
                    records.addresses.forget(&ip);
                }
            }
            (score, address_score, banned)
        };
        warn!(%peer, ?offence, score, address_score, %reason, "peer misbehaved");
        self.net.set_score(peer, score).await;
        if banned {
            self.net.ban(peer, BAN_DURATION).await;
        }
        banned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_outlive_connections_and_fade_with_time() {
        let mut scores = Scores::<Peer>::default();
        let peer = Peer::random();
        let start = Instant::now();
        assert_eq!(scores.add(peer, 50, start), 50);
        // Half an hour later, 25 points are forgiven; the next 50 make 75, not 100.
        assert_eq!(scores.add(peer, 50, start + Duration::from_secs(1800)), 75);
        // Two offences at once still add up.
        assert_eq!(scores.add(peer, 30, start + Duration::from_secs(1800)), 105);
        // Long after, everything is forgiven.
        assert_eq!(scores.add(peer, 20, start + Duration::from_secs(3 * 3600)), 20);
    }

    #[test]
    fn the_score_book_stays_bounded() {
        let mut scores = Scores::<Peer>::default();
        let now = Instant::now();
        for _ in 0..REMEMBERED + 10 {
            scores.add(Peer::random(), 10, now);
        }
        assert!(scores.points.len() <= REMEMBERED);
        let bad = Peer::random();
        scores.add(bad, 90, now);
        assert_eq!(scores.add(bad, 10, now), 100, "a new record is kept over the lowest");
    }
}
