//! Which peers this node dials to fill its outbound slots, and the anchors it dials first at
//! start.
//!
//! Security: outbound connections are the ones an attacker cannot simply make to us, so they
//! are what keeps a node from being surrounded (eclipsed). Kademlia lists peers by the XOR
//! distance of their ids to ours, and ids are free to grind, so taking the nearest would hand
//! our slots to whoever ground ids near ours. Instead, as Bitcoin Core's address manager does,
//! peers are picked at random with at most one per address group (an IPv4 /16, an IPv6 /32)
//! until every group is used, and groups we already have an outbound peer in come last.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;

use libp2p::{Multiaddr, PeerId};
use rand::seq::SliceRandom;

/// The network an address belongs to, as far as one operator is likely to control it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum AddressGroup {
    /// The first two bytes of an IPv4 address.
    V4([u8; 2]),
    /// The first four bytes of an IPv6 address.
    V6([u8; 4]),
    /// Loopback: this machine.
    Local,
    /// An address without an IP (a DNS name, a relay circuit): grouped by its text.
    Other(String),
}

impl AddressGroup {
    /// The group of `address`.
    pub(crate) fn of(address: &Multiaddr) -> AddressGroup {
        if crate::address::is_relayed(address) {
            // A relayed peer is reached through its relay: the relay is what one controls.
            let relay: Multiaddr =
                address.iter().take_while(|p| !matches!(p, libp2p::multiaddr::Protocol::P2pCircuit)).collect();
            return AddressGroup::Other(relay.to_string());
        }
        match crate::address::ip_of(address) {
            Some(ip) if ip.is_loopback() => AddressGroup::Local,
            Some(IpAddr::V4(ip)) => {
                let [a, b, ..] = ip.octets();
                AddressGroup::V4([a, b])
            }
            Some(IpAddr::V6(ip)) => {
                let [a, b, c, d, ..] = ip.octets();
                AddressGroup::V6([a, b, c, d])
            }
            None => AddressGroup::Other(address.to_string()),
        }
    }
}

/// A peer that could be dialled, and where.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) peer: PeerId,
    pub(crate) address: Option<Multiaddr>,
}

/// Picks up to `wanted` of `candidates` to dial: in random order, first at most one from each
/// address group not in `used_groups`, then one more from each group, and so on. Candidates
/// without an address come last.
pub(crate) fn choose(
    mut candidates: Vec<Candidate>,
    used_groups: &HashSet<AddressGroup>,
    wanted: usize,
    rng: &mut impl rand::Rng,
) -> Vec<Candidate> {
    candidates.shuffle(rng);
    // Each candidate's round: how many candidates of its group (counting outbound peers
    // already there) come before it. Round 0 goes first, so groups fill evenly.
    let mut seen: std::collections::HashMap<AddressGroup, usize> =
        used_groups.iter().map(|group| (group.clone(), 1)).collect();
    let mut ranked: Vec<(usize, Candidate)> = candidates
        .into_iter()
        .map(|candidate| {
            let round = match &candidate.address {
                Some(address) => {
                    let count = seen.entry(AddressGroup::of(address)).or_default();
                    *count += 1;
                    *count - 1
                }
                None => usize::MAX,
            };
            (round, candidate)
        })
        .collect();
    // Stable: the shuffled order decides within a round.
    ranked.sort_by_key(|(round, _)| *round);
    ranked.into_iter().take(wanted).map(|(_, candidate)| candidate).collect()
}

/// Most anchors kept.
pub(crate) const MAX_ANCHORS: usize = 8;

/// Reads the anchors saved at `path`: outbound peers of the last run, with the address they
/// were reached at, dialled first at start (Bitcoin Core's `anchors.dat`), so that a restart
/// does not hand every outbound slot to whoever answers first. A missing or damaged file
/// gives none.
pub(crate) fn load_anchors(path: &Path) -> Vec<Multiaddr> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.lines()
        .filter_map(|line| line.trim().parse::<Multiaddr>().ok())
        .filter(|address| address.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::P2p(_))))
        .take(MAX_ANCHORS)
        .collect()
}

/// Saves the anchors (addresses ending in `/p2p/<peer id>`), through a temporary file.
pub(crate) fn save_anchors(path: &Path, anchors: &[Multiaddr]) -> std::io::Result<()> {
    let text: String = anchors.iter().take(MAX_ANCHORS).map(|address| format!("{address}\n")).collect();
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use libp2p::identity::Keypair;
    use rand::SeedableRng;

    use super::*;

    /// A peer id whose Kademlia key shares `bits` leading bits with `target`'s, as an attacker
    /// grinds them.
    fn ground_near(target: &PeerId, bits: u32) -> PeerId {
        let target = libp2p::kad::KBucketKey::from(*target);
        loop {
            let peer = Keypair::generate_ed25519().public().to_peer_id();
            let distance = target.distance(&libp2p::kad::KBucketKey::from(peer));
            if distance.ilog2().is_none_or(|log| log < 256 - bits) {
                return peer;
            }
        }
    }

    #[test]
    fn peers_with_ids_ground_near_ours_do_not_get_every_outbound_slot() {
        let local = PeerId::random();
        let mut candidates = Vec::new();
        // 20 honest peers, each in a network of its own, none near us by chance (one in 256
        // random ids shares our first 8 bits).
        let key = libp2p::kad::KBucketKey::from(local);
        for n in 0..20u8 {
            let address: Multiaddr = format!("/ip4/10.{n}.0.1/tcp/9333").parse().unwrap();
            let peer = std::iter::repeat_with(PeerId::random)
                .find(|p| key.distance(&libp2p::kad::KBucketKey::from(*p)).ilog2().is_some_and(|log| log >= 248))
                .expect("random ids are far from ours");
            candidates.push(Candidate { peer, address: Some(address) });
        }
        // 8 peers of one attacker, ids ground 8 bits near ours, all in one /16.
        let mut ground = HashSet::new();
        for n in 0..8u8 {
            let peer = ground_near(&local, 8);
            ground.insert(peer);
            let address: Multiaddr = format!("/ip4/192.0.{n}.1/tcp/9333").parse().unwrap();
            candidates.push(Candidate { peer, address: Some(address) });
        }
        // Nearest first, as the DHT's buckets list them, the attacker would take all 8 slots.
        let mut by_distance = candidates.clone();
        by_distance.sort_by_key(|c| key.distance(&libp2p::kad::KBucketKey::from(c.peer)));
        assert!(by_distance.iter().take(8).all(|c| ground.contains(&c.peer)), "the attack works on nearest-first");

        for seed in 0..100 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let chosen = choose(candidates.clone(), &HashSet::new(), 8, &mut rng);
            assert_eq!(chosen.len(), 8);
            let attacker = chosen.iter().filter(|c| ground.contains(&c.peer)).count();
            assert!(attacker <= 1, "seed {seed}: the attacker's one address group got {attacker} of 8 slots");
        }
    }

    #[test]
    fn groups_already_used_come_last_and_a_lone_group_still_fills_the_slots() {
        let a = |s: &str| Some(s.parse::<Multiaddr>().unwrap());
        let candidates = vec![
            Candidate { peer: PeerId::random(), address: a("/ip4/10.1.0.1/tcp/1") },
            Candidate { peer: PeerId::random(), address: a("/ip4/10.2.0.1/tcp/1") },
        ];
        let used: HashSet<AddressGroup> = [AddressGroup::V4([10, 1])].into();
        let chosen = choose(candidates, &used, 1, &mut rand::rngs::StdRng::seed_from_u64(1));
        assert_eq!(chosen[0].address, a("/ip4/10.2.0.1/tcp/1"));

        // A local network on one machine: one group, every slot still filled.
        let local: Vec<Candidate> = (0..5)
            .map(|port| Candidate { peer: PeerId::random(), address: a(&format!("/ip4/127.0.0.1/tcp/{port}")) })
            .collect();
        assert_eq!(choose(local, &HashSet::new(), 4, &mut rand::rngs::StdRng::seed_from_u64(2)).len(), 4);
    }

    #[test]
    fn anchors_round_trip_and_a_damaged_file_gives_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anchors.txt");
        assert!(load_anchors(&path).is_empty());
        let anchor: Multiaddr =
            "/ip4/10.0.0.1/tcp/9333/p2p/12D3KooWQLBBmRbeYPHJmtHbVSouqNhhckSQ1tP5mM4DFfhojATa".parse().unwrap();
        save_anchors(&path, std::slice::from_ref(&anchor)).unwrap();
        assert_eq!(load_anchors(&path), vec![anchor]);
        std::fs::write(&path, "garbage\n/ip4/10.0.0.1/tcp/1\n").unwrap();
        assert!(load_anchors(&path).is_empty(), "lines that are not addresses of a peer are skipped");
    }
}
