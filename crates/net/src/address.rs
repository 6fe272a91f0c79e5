//! What an address says: its IP, whether it goes through a relay, which peer it names, and
//! whether an address a peer reports can reach it from here.

use std::net::IpAddr;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

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

/// An address without its `/p2p/<peer id>` parts, to compare dialled addresses.
pub(crate) fn without_peer_id(address: &Multiaddr) -> Multiaddr {
    address.iter().filter(|p| !matches!(p, Protocol::P2p(_))).collect()
}

/// The peer an address names (its last `/p2p/<peer id>`).
pub(crate) fn peer_of(address: &Multiaddr) -> Option<PeerId> {
    address.iter().fold(None, |last, p| match p {
        Protocol::P2p(peer) => Some(peer),
        _ => last,
    })
}

/// Whether a listen address a peer reports can reach it from here, given the address its
/// connection comes from. A node listening on every interface reports its loopback address
/// too, which from another machine names that machine itself: it is kept only for a peer
/// that is itself on loopback. An unspecified address (0.0.0.0) reaches nobody.
pub(crate) fn reachable_from_here(listen: &Multiaddr, connection: &Multiaddr) -> bool {
    match (ip_of(listen), ip_of(connection)) {
        (Some(listen), _) if listen.is_unspecified() => false,
        (Some(listen), Some(connection)) if listen.is_loopback() => connection.is_loopback(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
