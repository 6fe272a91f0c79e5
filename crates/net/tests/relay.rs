//! The hybrid overlay's relays on real loopback connections: a node that cannot be dialled
//! (it listens nowhere) is reachable through a relay that every node serves by default.

use std::time::Duration;

use peerchain_net::{Config, Event, Handle, Keypair, Request, Response, Status};
use peerchain_primitives::{BlockHash, Work};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn start(
    listen: Vec<peerchain_net::Address>,
    relays: Vec<peerchain_net::Address>,
) -> (Handle, mpsc::Receiver<Event>, CancellationToken) {
    let cancel = CancellationToken::new();
    let mut config = Config::new("regtest", listen.clone());
    config.mdns = false;
    config.relays = relays;
    // On loopback nobody can confirm an address; a relay is told where it is reached.
    config.external_addrs = listen;
    let (handle, events, _task) = peerchain_net::spawn(Keypair::generate_ed25519(), config, cancel.clone()).unwrap();
    (handle, events, cancel)
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
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let relay_listen: peerchain_net::Address = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
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
            if let Event::Request { request: Request::Status(status), id, .. } = event {
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
