//! Two network tasks on loopback TCP: they connect, answer requests, relay gossip, and a
//! node of another network cannot talk to them.

use std::time::Duration;

use peerchain_net::{Request, Response, Status, SyncEvent, Topic, Verdict};
use peerchain_primitives::{BlockHash, Work};
use peerchain_testing::LocalNode;

fn start_with(network: &str, tls: bool) -> LocalNode {
    LocalNode::start(network, |config| config.tls = tls)
}

/// A node that offers TLS and one that offers only Noise meet on Noise, either way round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_and_without_tls_talk_to_each_other() {
    for dialler_tls in [true, false] {
        let mut listener = start_with("regtest", !dialler_tls);
        let dialler = start_with("regtest", dialler_tls);
        dialler.handle.dial(listener.listen_addr().await).await;
        let dialler_peer = dialler.peer();
        listener.next_sync_event(|e| matches!(e, SyncEvent::PeerConnected(p) if p.peer == dialler_peer)).await;
        let asking = tokio::spawn({
            let dialler = dialler.handle.clone();
            let peer = listener.peer();
            async move { dialler.request(peer, Request::GetHeaders { locator: Vec::new(), max: 1 }).await }
        });
        let SyncEvent::Request { id, .. } = listener.next_sync_event(|e| matches!(e, SyncEvent::Request { .. })).await
        else {
            unreachable!()
        };
        listener.handle.respond(id, Response::Refused("over noise".into())).await;
        assert_eq!(asking.await.unwrap().unwrap(), Response::Refused("over noise".into()));
        listener.stop().await;
        dialler.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_connect_answer_requests_and_relay_gossip() {
    let mut a = LocalNode::regtest();
    let mut b = LocalNode::regtest();
    b.connect_to(&mut a).await;
    assert_eq!(a.handle.peers().await.len(), 1);

    // A request from b is answered by a's owner.
    let status =
        Status { genesis: BlockHash([1; 32]), best_height: 3, best_hash: BlockHash([2; 32]), total_work: Work::ZERO };
    let asking = tokio::spawn({
        let b = b.handle.clone();
        let peer = a.peer();
        async move { b.request(peer, Request::Status(status)).await }
    });
    let SyncEvent::Request { request, id, .. } = a.next_sync_event(|e| matches!(e, SyncEvent::Request { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(request, Request::Status(status));
    a.handle.respond(id, Response::Refused("just testing".into())).await;
    assert_eq!(asking.await.unwrap().unwrap(), Response::Refused("just testing".into()));

    // Gossip published by a reaches b once the mesh has formed; transactions published
    // together travel as one batch (a count, then each as published).
    let mut received = None;
    for attempt in 0..40u8 {
        a.handle.publish(Topic::Transactions, vec![attempt; 100]).await;
        a.handle.publish(Topic::Transactions, vec![attempt; 50]).await;
        if let Ok(Some(SyncEvent::Gossip { topic, data, source, id })) =
            tokio::time::timeout(Duration::from_millis(500), async {
                loop {
                    match b.events.sync.recv().await {
                        Some(event @ SyncEvent::Gossip { .. }) => return Some(event),
                        Some(_) => continue,
                        None => return None,
                    }
                }
            })
            .await
        {
            b.handle.report(id, source, Verdict::Accept).await;
            received = Some((topic, data));
            break;
        }
    }
    let (topic, data) = received.expect("gossip arrives");
    assert_eq!(topic, Topic::Transactions);
    let attempt = data[1];
    let expected: Vec<u8> = [vec![2], vec![attempt; 100], vec![attempt; 50]].concat();
    assert_eq!(data, expected, "one message holds both");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_network_cannot_sync() {
    let mut a = LocalNode::regtest();
    let c = LocalNode::start("devnet", |_| {});
    c.handle.dial(a.listen_addr().await).await;
    a.next_sync_event(|e| matches!(e, SyncEvent::PeerConnected(_))).await;
    // The sync protocol carries the network's name: it cannot even be negotiated.
    let status =
        Status { genesis: BlockHash([1; 32]), best_height: 0, best_hash: BlockHash([1; 32]), total_work: Work::ZERO };
    let answer = c.handle.request(a.peer(), Request::Status(status)).await;
    assert!(answer.is_err(), "{answer:?}");
    a.stop().await;
    c.stop().await;
}
