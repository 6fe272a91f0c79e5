//! A hostile peer (an in-process libp2p node speaking our protocols) against a real node: it
//! sends garbage, an oversized request and an invalid block header, gets banned and cannot come
//! back, while an honest peer keeps the node in sync.

mod support;

use std::time::Duration;

use peerchain_consensus::Params;
use peerchain_net::{Config, Event, Keypair, Request, Response, Status, Topic};
use peerchain_primitives::{BlockHash, Encode, Network, Work};
use support::{TestNode, wait_for};

fn peer_ids(node: &TestNode) -> Vec<String> {
    node.json(&["peers"]).as_array().unwrap().iter().map(|p| p["peer_id"].as_str().unwrap().to_owned()).collect()
}

/// Whether `node` is connected to `peer` (it may reach other nodes through the DHT).
async fn connected_to(node: &peerchain_net::Handle, peer: peerchain_net::Peer) -> bool {
    node.peers().await.iter().any(|p| p.peer == peer)
}

#[test]
fn a_hostile_peer_is_banned_and_honest_sync_goes_on() {
    let victim = TestNode::start("regtest", &[]);
    let honest = TestNode::start("regtest", &["--bootstrap", &victim.p2p_addr()]);
    honest.json(&["chain", "generate", "5"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let victim_addr: peerchain_net::Address = victim.p2p_addr().parse().unwrap();
    let params = Params::for_network(Network::Regtest);
    let hostile_id = runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let mut config = Config::new("regtest", vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
        config.mdns = false;
        let (hostile, mut events, _task) =
            peerchain_net::spawn(Keypair::generate_ed25519(), config, cancel.clone()).unwrap();
        hostile.dial(victim_addr.clone()).await;
        // Answer the victim's handshake like an honest node of the same chain would.
        let genesis = params.genesis_hash();
        let status = Status { genesis, best_height: 0, best_hash: genesis, total_work: Work::ZERO };
        let answering = {
            let hostile = hostile.clone();
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    if let Event::Request { id, .. } = event {
                        hostile.respond(id, Response::Status(status)).await;
                    }
                }
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let victim_peer = hostile.peers().await.first().map(|p| p.peer).expect("connected to the victim");

        // An oversized request: more block hashes than the protocol allows. Refused, no harm.
        let oversized = hostile.request(victim_peer, Request::GetBlocks(vec![BlockHash([1; 32]); 100])).await;
        assert!(oversized.is_err(), "{oversized:?}");

        // Garbage transactions, then a header on genesis that fails its proof of work.
        for i in 0..3u8 {
            hostile.publish(Topic::Transactions, vec![0xff, i, 1, 2, 3]).await;
        }
        let target = params.pow_limit.expand().unwrap();
        let mut header = params.genesis_block().header;
        header.prev_hash = genesis;
        header.time = params.genesis_time + 60;
        while target.is_met_by(&header.hash()) {
            header.nonce += 1;
        }
        for attempt in 0..20u64 {
            header.time += attempt; // a new message id each time
            hostile.publish(Topic::Blocks, header.to_bytes()).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            if !connected_to(&hostile, victim_peer).await {
                break;
            }
        }
        assert!(!connected_to(&hostile, victim_peer).await, "the victim dropped the hostile peer");
        // It cannot come back.
        hostile.dial(victim_addr.clone()).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        // The victim refuses it at once (the hostile side may see a connection for a moment
        // before the refusal reaches it).
        let hostile_id = hostile.local_peer().to_string();
        assert!(!peer_ids(&victim).contains(&hostile_id), "the ban refuses new connections");
        answering.abort();
        let id = hostile.local_peer().to_string();
        cancel.cancel();
        id
    });
    assert!(!peer_ids(&victim).contains(&hostile_id));
    assert!(victim.log().contains("peer banned"), "{}", victim.log());

    // The victim keeps serving and syncing from the honest node.
    honest.json(&["chain", "generate", "5"]);
    let tip = honest.json(&["chain", "info"])["best_hash"].clone();
    wait_for("the victim to follow the honest node", Duration::from_secs(60), || {
        (victim.json(&["chain", "info"])["best_hash"] == tip).then_some(())
    });
    assert_eq!(victim.json(&["chain", "info"])["height"], 10);
}
