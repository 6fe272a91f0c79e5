//! The hybrid overlay on real loopback connections: a node that cannot be dialled (it
//! listens nowhere) is reachable through a relay that every node serves by default, and peers
//! find each other through a rendezvous point.

use std::time::Duration;

use peerchain_net::{Config, Handle, Keypair, Request, Response, Status, SyncEvent};
use peerchain_primitives::{BlockHash, Work};
use peerchain_testing::free_loopback_address;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn start(
    listen: Vec<peerchain_net::Address>,
    relays: Vec<peerchain_net::Address>,
) -> (Handle, mpsc::Receiver<SyncEvent>, CancellationToken) {
    let mut config = Config::new("regtest", listen.clone());
    config.mdns = false;
    config.relays = relays;
    // On loopback nobody can confirm an address; a relay is told where it is reached.
    config.external_addrs = listen;
    spawn(config)
}

fn spawn(config: Config) -> (Handle, mpsc::Receiver<SyncEvent>, CancellationToken) {
    let cancel = CancellationToken::new();
    let (handle, events, _task) = peerchain_net::spawn(Keypair::generate_ed25519(), config, cancel.clone()).unwrap();
    (handle, events.sync, cancel)
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..400 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_listens_nowhere_is_reached_through_a_relay() {
    let relay_listen = free_loopback_address();
    let (relay, _relay_events, relay_cancel) = start(vec![relay_listen.clone()], vec![]);
    let relay_addr = relay_listen.with(peerchain_net::Protocol::P2p(relay.local_peer()));

    // Hidden listens on no address of its own, only through the relay.
    let (hidden, mut hidden_events, hidden_cancel) = start(vec![], vec![relay_addr.clone()]);
    let circuit = wait_for("a reservation at the relay", async || {
        hidden.local().await.and_then(|l| l.listen_addrs.into_iter().find(|a| a.to_string().contains("p2p-circuit")))
    })
    .await;
    assert!(circuit.to_string().starts_with(&relay_addr.to_string()), "{circuit}");

    // A third node dials it through the relay and talks to it.
    let (visitor, _visitor_events, visitor_cancel) = start(vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()], vec![]);
    // The listen address names the hidden node already (`<relay>/p2p-circuit/p2p/<hidden>`).
    let through_relay = circuit.clone();
    assert!(through_relay.to_string().ends_with(&format!("/p2p/{}", hidden.local_peer())), "{through_relay}");
    visitor.dial(through_relay).await;
    let hidden_peer = hidden.local_peer();
    let link = wait_for("the visitor to reach the hidden node", async || {
        visitor.peers().await.into_iter().find(|p| p.peer == hidden_peer)
    })
    .await;
    assert!(link.address.to_string().contains("p2p-circuit"), "first reached through the relay: {}", link.address);

    let responder = hidden.clone();
    let answering = tokio::spawn(async move {
        while let Some(event) = hidden_events.recv().await {
            if let SyncEvent::Request { request: Request::Status(status), id, .. } = event {
                responder.respond(id, Response::Status(status)).await;
                return true;
            }
        }
        false
    });
    let status =
        Status { genesis: BlockHash([3; 32]), best_height: 1, best_hash: BlockHash([3; 32]), total_work: Work::ZERO };
    let answer = visitor.request(hidden_peer, Request::Status(status)).await.unwrap();
    assert_eq!(answer, Response::Status(status));
    assert!(answering.await.unwrap());
    for cancel in [visitor_cancel, hidden_cancel, relay_cancel] {
        cancel.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_find_each_other_through_a_rendezvous_point() {
    let config = |listen: peerchain_net::Address, bootstrap: Vec<peerchain_net::Address>| {
        let mut config = Config::new("regtest", vec![listen]);
        config.mdns = false;
        config.bootstrap = bootstrap;
        config.rendezvous_interval = Duration::from_millis(500);
        config
    };
    // The rendezvous point: a node the others dial.
    let point_listen = free_loopback_address();
    let (point, _point_events, point_cancel) = spawn(config(point_listen.clone(), vec![]));
    let point_addr = point_listen.with(peerchain_net::Protocol::P2p(point.local_peer()));
    // A knows the address others reach it at, so it registers; B does not, so it only asks.
    let a_listen = free_loopback_address();
    let mut a_config = config(a_listen.clone(), vec![point_addr.clone()]);
    a_config.external_addrs = vec![a_listen.clone()];
    let (a, _a_events, a_cancel) = spawn(a_config);
    let (b, _b_events, b_cancel) = spawn(config(free_loopback_address(), vec![point_addr]));

    let a_peer = a.local_peer();
    let (_, addresses) = wait_for("B to learn of A from the rendezvous point", async || {
        b.rendezvous_peers().await.into_iter().find(|(peer, _)| *peer == a_peer)
    })
    .await;
    assert_eq!(addresses, vec![a_listen], "the address A registered");
    // A, asking the same point, hears of nobody: B has no address to register, and a node
    // never lists itself.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(a.rendezvous_peers().await, vec![]);
    for cancel in [a_cancel, b_cancel, point_cancel] {
        cancel.cancel();
    }
}
