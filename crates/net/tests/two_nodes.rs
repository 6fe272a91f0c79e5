//! Two network tasks on loopback TCP: they connect, answer requests, relay gossip, and a
//! node of another network cannot talk to them.

use std::time::Duration;

use peerchain_net::{Config, Event, Handle, Keypair, Request, Response, Status, Topic, Verdict};
use peerchain_primitives::{BlockHash, Work};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn start(network: &str) -> (Handle, mpsc::Receiver<Event>, CancellationToken) {
    start_with(network, true)
}

fn start_with(network: &str, tls: bool) -> (Handle, mpsc::Receiver<Event>, CancellationToken) {
    let cancel = CancellationToken::new();
    let mut config = Config::new(network, vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
    config.mdns = false;
    config.tls = tls;
    let (handle, events, _task) = peerchain_net::spawn(Keypair::generate_ed25519(), config, cancel.clone()).unwrap();
    (handle, events, cancel)
}

async fn listen_addr(handle: &Handle) -> peerchain_net::Address {
    for _ in 0..100 {
        if let Some(address) = handle.local().await.and_then(|l| l.listen_addrs.into_iter().next()) {
            return address;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no listen address");
}

async fn next_event(events: &mut mpsc::Receiver<Event>, mut wanted: impl FnMut(&Event) -> bool) -> Event {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = events.recv().await.expect("network running");
            if wanted(&event) {
                return event;
            }
        }
    })
    .await
    .expect("event in time")
}

/// A node that offers TLS and one that offers only Noise meet on Noise, either way round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_and_without_tls_talk_to_each_other() {
    for dialler_tls in [true, false] {
        let (listener, mut listener_events, listener_cancel) = start_with("regtest", !dialler_tls);
        let (dialler, _dialler_events, dialler_cancel) = start_with("regtest", dialler_tls);
        dialler.dial(listen_addr(&listener).await).await;
        next_event(&mut listener_events, |e| matches!(e, Event::PeerConnected(p) if p.peer == dialler.local_peer()))
            .await;
        let asking = tokio::spawn({
            let dialler = dialler.clone();
            let peer = listener.local_peer();
            async move { dialler.request(peer, Request::GetHeaders { locator: Vec::new(), max: 1 }).await }
        });
        let Event::Request { id, .. } = next_event(&mut listener_events, |e| matches!(e, Event::Request { .. })).await
        else {
            unreachable!()
        };
        listener.respond(id, Response::Refused("over noise".into())).await;
        assert_eq!(asking.await.unwrap().unwrap(), Response::Refused("over noise".into()));
        listener_cancel.cancel();
        dialler_cancel.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_connect_answer_requests_and_relay_gossip() {
    let (a, mut a_events, a_cancel) = start("regtest");
    let (b, mut b_events, b_cancel) = start("regtest");
    b.dial(listen_addr(&a).await).await;
    next_event(&mut a_events, |e| matches!(e, Event::PeerConnected(p) if p.peer == b.local_peer())).await;
    next_event(&mut b_events, |e| matches!(e, Event::PeerConnected(p) if p.peer == a.local_peer())).await;
    assert_eq!(a.peers().await.len(), 1);

    // A request from b is answered by a's owner.
    let status =
        Status { genesis: BlockHash([1; 32]), best_height: 3, best_hash: BlockHash([2; 32]), total_work: Work::ZERO };
    let asking = tokio::spawn({
        let b = b.clone();
        let peer = a.local_peer();
        async move { b.request(peer, Request::Status(status)).await }
    });
    let Event::Request { request, id, .. } = next_event(&mut a_events, |e| matches!(e, Event::Request { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(request, Request::Status(status));
    a.respond(id, Response::Refused("just testing".into())).await;
    assert_eq!(asking.await.unwrap().unwrap(), Response::Refused("just testing".into()));

    // Gossip published by a reaches b once the mesh has formed; transactions published
    // together travel as one batch (a count, then each as published).
    let mut received = None;
    for attempt in 0..40u8 {
        a.publish(Topic::Transactions, vec![attempt; 100]).await;
        a.publish(Topic::Transactions, vec![attempt; 50]).await;
        if let Ok(Some(Event::Gossip { topic, data, source, id })) =
            tokio::time::timeout(Duration::from_millis(500), async {
                loop {
                    match b_events.recv().await {
                        Some(event @ Event::Gossip { .. }) => return Some(event),
                        Some(_) => continue,
                        None => return None,
                    }
                }
            })
            .await
        {
            b.report(id, source, Verdict::Accept).await;
            received = Some((topic, data));
            break;
        }
    }
    let (topic, data) = received.expect("gossip arrives");
    assert_eq!(topic, Topic::Transactions);
    let attempt = data[1];
    let expected: Vec<u8> = [vec![2], vec![attempt; 100], vec![attempt; 50]].concat();
    assert_eq!(data, expected, "one message holds both");
    a_cancel.cancel();
    b_cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_network_cannot_sync() {
    let (a, mut a_events, a_cancel) = start("regtest");
    let (c, _c_events, c_cancel) = start("devnet");
    c.dial(listen_addr(&a).await).await;
    next_event(&mut a_events, |e| matches!(e, Event::PeerConnected(_))).await;
    // The sync protocol carries the network's name: it cannot even be negotiated.
    let status =
        Status { genesis: BlockHash([1; 32]), best_height: 0, best_hash: BlockHash([1; 32]), total_work: Work::ZERO };
    let answer = c.request(a.local_peer(), Request::Status(status)).await;
    assert!(answer.is_err(), "{answer:?}");
    a_cancel.cancel();
    c_cancel.cancel();
}
