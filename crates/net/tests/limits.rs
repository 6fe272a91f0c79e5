//! Limits that protect a node from its peers, on real loopback connections: inbound
//! connections per IP address (handshakes in progress included), sync requests per peer,
//! and bans that survive a restart.

use std::time::Duration;

use libp2p::multiaddr::Protocol;
use peerchain_net::{Config, Handle, Keypair, Request, Response, Status, SyncEvent as Event};
use peerchain_primitives::{BlockHash, Work};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Node {
    handle: Handle,
    events: mpsc::Receiver<Event>,
    _files: mpsc::Receiver<peerchain_net::FileEvent>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Node {
    fn start(keypair: Keypair, configure: impl FnOnce(&mut Config)) -> Node {
        let cancel = CancellationToken::new();
        let mut config = Config::new("regtest", vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
        config.mdns = false;
        configure(&mut config);
        let (handle, events, task) = peerchain_net::spawn(keypair, config, cancel.clone()).unwrap();
        Node { handle, events: events.sync, _files: events.files, cancel, task }
    }

    fn plain() -> Node {
        Self::start(Keypair::generate_ed25519(), |_| {})
    }

    async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }

    async fn listen_addr(&self) -> peerchain_net::Address {
        peerchain_testing::listen_addr(&self.handle).await
    }

    /// Waits up to `within` for `peer` to connect; whether it did.
    async fn connected_to(&mut self, peer: peerchain_net::Peer, within: Duration) -> bool {
        tokio::time::timeout(within, async {
            loop {
                match self.events.recv().await {
                    Some(Event::PeerConnected(info)) if info.peer == peer => return,
                    Some(_) => {}
                    None => std::future::pending().await,
                }
            }
        })
        .await
        .is_ok()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ip_address_gets_at_most_its_share_of_inbound_connections() {
    let mut server = Node::start(Keypair::generate_ed25519(), |c| {
        c.max_inbound_per_ip = 2;
        c.limit_loopback = true;
    });
    let address = server.listen_addr().await;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut client = Node::plain();
        client.handle.dial(address.clone()).await;
        assert!(client.connected_to(server.handle.local_peer(), Duration::from_secs(20)).await);
        // Counted by the server too: a dialler finishes its handshake first, so without this
        // the third could arrive while the second is still being established at the server,
        // pass the check before the handshake and be refused only after it, having seen
        // itself connected for a moment.
        assert!(server.connected_to(client.handle.local_peer(), Duration::from_secs(20)).await);
        clients.push(client);
    }
    let mut third = Node::plain();
    third.handle.dial(address.clone()).await;
    assert!(
        !third.connected_to(server.handle.local_peer(), Duration::from_secs(3)).await,
        "a third connection from 127.0.0.1 is refused"
    );
    assert_eq!(server.handle.peers().await.len(), 2);

    // A slot freed is a slot for the next one.
    clients.pop().unwrap().stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    third.handle.dial(address).await;
    assert!(third.connected_to(server.handle.local_peer(), Duration::from_secs(20)).await);
    assert!(server.connected_to(third.handle.local_peer(), Duration::from_secs(20)).await);
    for node in clients.into_iter().chain([third, server]) {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_never_finished_hold_their_addresss_slots_until_they_close() {
    let server = Node::start(Keypair::generate_ed25519(), |c| {
        c.max_inbound_per_ip = 2;
        c.limit_loopback = true;
    });
    let address = server.listen_addr().await;
    let port = address.iter().find_map(|p| if let Protocol::Tcp(port) = p { Some(port) } else { None }).unwrap();
    // Two sockets that open a connection and then say nothing.
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut client = Node::plain();
    client.handle.dial(address.clone()).await;
    assert!(
        !client.connected_to(server.handle.local_peer(), Duration::from_secs(3)).await,
        "the address's two slots are taken by handshakes in progress"
    );
    drop(silent);
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.handle.dial(address).await;
    assert!(client.connected_to(server.handle.local_peer(), Duration::from_secs(20)).await, "closed, they free them");
    client.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_requests_beyond_a_peers_rate_are_refused() {
    let mut server = Node::start(Keypair::generate_ed25519(), |c| c.sync_requests = (0.5, 3.0));
    let mut client = Node::plain();
    client.handle.dial(server.listen_addr().await).await;
    assert!(client.connected_to(server.handle.local_peer(), Duration::from_secs(20)).await);
    // The server's owner answers every request that reaches it.
    let server_handle = server.handle.clone();
    let mut server_events = std::mem::replace(&mut server.events, mpsc::channel(1).1);
    let answering = tokio::spawn(async move {
        let mut answered = 0;
        while let Some(event) = server_events.recv().await {
            if let Event::Request { request: Request::Status(status), id, .. } = event {
                server_handle.respond(id, Response::Status(status)).await;
                answered += 1;
            }
        }
        answered
    });
    let status =
        Status { genesis: BlockHash([1; 32]), best_height: 0, best_hash: BlockHash([1; 32]), total_work: Work::ZERO };
    let mut outcomes = Vec::new();
    for _ in 0..8 {
        outcomes.push(client.handle.request(server.handle.local_peer(), Request::Status(status)).await.unwrap());
    }
    let answered = outcomes.iter().filter(|r| matches!(r, Response::Status(_))).count();
    let refused =
        outcomes.iter().filter(|r| matches!(r, Response::Refused(reason) if reason == "rate limited")).count();
    assert_eq!((answered, refused), (3, 5), "the burst of 3 passes, the rest is refused: {outcomes:?}");
    client.stop().await;
    server.stop().await;
    assert_eq!(answering.await.unwrap(), 3, "refused requests never reach the node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ban_file = dir.path().join("bans.txt");
    let server_key = Keypair::generate_ed25519();
    let configure = |c: &mut Config| c.ban_file = Some(ban_file.clone());

    let server = Node::start(server_key.clone(), configure);
    let mut hostile = Node::plain();
    hostile.handle.dial(server.listen_addr().await).await;
    assert!(hostile.connected_to(server.handle.local_peer(), Duration::from_secs(20)).await);
    server.handle.ban(hostile.handle.local_peer(), Duration::from_secs(3600)).await;
    for _ in 0..100 {
        if server.handle.peers().await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.handle.peers().await.is_empty(), "the ban closes the connection");
    server.stop().await;

    // Restarted with the same identity and ban file: the banned peer stays out, others get in.
    let mut server = Node::start(server_key, configure);
    let address = server.listen_addr().await;
    hostile.handle.dial(address.clone()).await;
    let honest = Node::plain();
    honest.handle.dial(address).await;
    assert!(server.connected_to(honest.handle.local_peer(), Duration::from_secs(20)).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let peers: Vec<_> = server.handle.peers().await.into_iter().map(|p| p.peer).collect();
    assert_eq!(peers, vec![honest.handle.local_peer()]);
    for node in [hostile, honest, server] {
        node.stop().await;
    }
}

/// A node dials each bootstrap peer once: a second connection would take a second of the
/// peer's inbound slots (at most 64 by default), and a hub would fill up with half as many
/// peers as it has slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrapping_takes_one_inbound_slot_per_peer() {
    let mut hub = Node::start(Keypair::generate_ed25519(), |c| c.max_inbound = 2);
    let address = hub.listen_addr().await.with(peerchain_net::Protocol::P2p(hub.handle.local_peer()));
    let mut clients = Vec::new();
    for _ in 0..2 {
        let client = Node::start(Keypair::generate_ed25519(), |c| c.bootstrap = vec![address.clone()]);
        assert!(hub.connected_to(client.handle.local_peer(), Duration::from_secs(20)).await);
        clients.push(client);
    }
    // Past the first re-dial of bootstrap peers that are not connected.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(hub.handle.peers().await.len(), 2, "both fit in two slots");
    for node in clients.into_iter().chain([hub]) {
        node.stop().await;
    }
}

/// Publishes `count` distinct messages on the blocks topic (not batched), which reach the
/// other node as that many gossip events; `round` makes each flood's messages new.
async fn flood_gossip(node: &Node, round: u8, count: u32) {
    for n in 0..count {
        let message = [b"junk".as_slice(), &[round], &n.to_le_bytes()].concat();
        node.handle.publish(peerchain_net::Topic::Blocks, message).await;
    }
}

/// Reads `node`'s events until `wanted` matches one, within `within`; how many came before.
async fn event_after(node: &mut Node, within: Duration, wanted: impl Fn(&Event) -> bool) -> Option<usize> {
    let mut before = 0;
    tokio::time::timeout(within, async {
        while let Some(event) = node.events.recv().await {
            if wanted(&event) {
                return Some(before);
            }
            before += 1;
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// Review L6: while the node's event queue is full (it is busy), a peer that connects and
/// one that disconnects are still told, once there is room; gossip is what gets dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_connections_and_disconnections_are_never_lost_when_the_node_is_busy() {
    let mut server = Node::plain();
    let address = server.listen_addr().await;
    let flooder = Node::plain();
    flooder.handle.dial(address.clone()).await;
    assert!(
        event_after(&mut server, Duration::from_secs(20), |e| matches!(e, Event::PeerConnected(_))).await.is_some()
    );
    // Gossip needs both sides subscribed; then the flood fills the server's queue (1,024).
    tokio::time::sleep(Duration::from_secs(2)).await;
    flood_gossip(&flooder, 0, 1_500).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(server.events.len(), server.events.max_capacity(), "the queue is full");

    let late = Node::plain();
    late.handle.dial(address.clone()).await;
    for _ in 0..100 {
        if server.handle.peers().await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.handle.peers().await.len(), 2, "connected while the queue is full");
    let late_peer = late.handle.local_peer();
    let before = event_after(
        &mut server,
        Duration::from_secs(20),
        |e| matches!(e, Event::PeerConnected(info) if info.peer == late_peer),
    )
    .await
    .expect("the connection is told once the node reads its events");
    assert!(before >= 1_000, "it came after the gossip that filled the queue ({before} events)");

    // And a disconnection while the queue is full again.
    flood_gossip(&flooder, 1, 1_500).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    late.stop().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = event_after(
        &mut server,
        Duration::from_secs(20),
        |e| matches!(e, Event::PeerDisconnected(p) if *p == late_peer),
    )
    .await
    .expect("the disconnection is told too");
    assert!(before >= 1_000, "{before} events before it");
    flooder.stop().await;
    server.stop().await;
}
