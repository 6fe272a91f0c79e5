//! A hostile peer (an in-process libp2p node speaking our protocols) against real nodes: it
//! sends garbage, oversized and repeated requests, invalid headers and blocks, bodies that do
//! not match their headers, announcements a node cannot rebuild, and transactions valid only
//! a block later. Each scenario checks what the victim does: ban the hostile peer where it
//! misbehaved, not where it could have acted in good faith, and keep following honest nodes.
//! The review findings each scenario closes are named (see RELIABILITY.md, "Hostile peers").

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerchain_consensus::{Params, coinbase_transaction};
use peerchain_net::{Announcement, Config, Keypair, Request, Response, Status, SyncEvent, Topic};
use peerchain_primitives::{
    Address, Amount, Block, BlockHash, BlockHeader, CompactBlock, Decode, Encode, Network, OutPoint, SecretKey,
    SigHashMode, Transaction, TxIn, TxOut, TxSignature, Witness, Work,
};
use peerchain_testing::wait_for_async;
use serde_json::Value;
use support::{TestNode, wait_for};

fn peer_ids(node: &TestNode) -> Vec<String> {
    node.json(&["peers"]).as_array().unwrap().iter().map(|p| p["peer_id"].as_str().unwrap().to_owned()).collect()
}

/// The victim's record of `peer`: its entry in `peers`, if connected.
fn peer_entry(node: &TestNode, peer: &peerchain_net::Peer) -> Option<Value> {
    node.json(&["peers"]).as_array().unwrap().iter().find(|p| p["peer_id"] == peer.to_string()).cloned()
}

/// Whether `node` is connected to `peer` (it may reach other nodes through the DHT).
async fn connected_to(node: &peerchain_net::Handle, peer: peerchain_net::Peer) -> bool {
    node.peers().await.iter().any(|p| p.peer == peer)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn params() -> Params {
    Params::for_network(Network::Regtest)
}

/// Grinds `header`'s nonce until it meets its target (two tries on average on regtest).
fn solve(mut header: BlockHeader) -> BlockHeader {
    let target = header.bits.expand().unwrap();
    while !target.is_met_by(&header.hash()) {
        header.nonce += 1;
    }
    header
}

/// A block on `parent` (at `height`) whose coinbase pays `reward` to nobody in particular.
fn block_on(parent: &BlockHeader, height: u32, reward: Amount) -> Block {
    let coinbase = coinbase_transaction(height, reward, SecretKey::from_seed([3; 32]).public_key().key_hash(), vec![7]);
    let mut block = Block {
        header: BlockHeader {
            version: 1,
            prev_hash: parent.hash(),
            merkle_root: Default::default(),
            time: parent.time + 1,
            bits: params().pow_limit,
            nonce: 0,
        },
        transactions: vec![coinbase],
    };
    block.header.merkle_root = block.compute_merkle_root();
    block.header = solve(block.header);
    block
}

/// What the hostile peer answers: its status, the headers it offers and the bodies it serves
/// (any bytes, true or not).
#[derive(Default)]
struct Script {
    status: Option<Status>,
    headers: Vec<BlockHeader>,
    bodies: HashMap<BlockHash, Vec<u8>>,
}

/// The hostile peer: an in-process node of the same network, answering as its script says.
struct Hostile {
    net: peerchain_net::Handle,
    script: Arc<Mutex<Script>>,
    cancel: tokio_util::sync::CancellationToken,
    answering: tokio::task::JoinHandle<()>,
}

impl Hostile {
    async fn start() -> Hostile {
        let cancel = tokio_util::sync::CancellationToken::new();
        let mut config = Config::new("regtest", vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
        config.mdns = false;
        let (net, mut events, _task) =
            peerchain_net::spawn(Keypair::generate_ed25519(), config, cancel.clone()).unwrap();
        let script = Arc::new(Mutex::new(Script::default()));
        let genesis = params().genesis_hash();
        let answering = {
            let (net, script) = (net.clone(), script.clone());
            tokio::spawn(async move {
                while let Some(event) = events.sync.recv().await {
                    let SyncEvent::Request { id, request, .. } = event else { continue };
                    let response = {
                        let script = script.lock().unwrap();
                        match request {
                            Request::Status(_) => Response::Status(script.status.unwrap_or(Status {
                                genesis,
                                best_height: 0,
                                best_hash: genesis,
                                total_work: Work::ZERO,
                            })),
                            Request::GetHeaders { .. } => Response::Headers(script.headers.clone()),
                            Request::GetBlocks(hashes) => Response::Blocks(
                                hashes.iter().filter_map(|hash| script.bodies.get(hash).cloned()).collect(),
                            ),
                            Request::GetBlockTransactions { .. } => Response::Refused("no".into()),
                        }
                    };
                    net.respond(id, response).await;
                }
            })
        };
        Hostile { net, script, cancel, answering }
    }

    /// Dials `node`; the node's peer id.
    async fn dial(&self, node: &TestNode) -> peerchain_net::Peer {
        let address: peerchain_net::Address = node.p2p_addr().parse().unwrap();
        let peer = address
            .iter()
            .find_map(|p| match p {
                peerchain_net::Protocol::P2p(peer) => Some(peer),
                _ => None,
            })
            .expect("p2p_addr names the peer");
        self.net.dial(address).await;
        peer
    }

    /// Dials `node` and waits until connected; the node's peer id.
    async fn connect(&self, node: &TestNode) -> peerchain_net::Peer {
        let peer = self.dial(node).await;
        for _ in 0..100 {
            if connected_to(&self.net, peer).await {
                return peer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the hostile peer could not connect to {}", node.p2p_addr());
    }

    /// Blocks of an honest peer, fetched over the sync protocol like any peer would.
    async fn fetch_blocks(&self, from: peerchain_net::Peer, hashes: Vec<BlockHash>) -> Vec<Block> {
        match self.net.request(from, Request::GetBlocks(hashes)).await.unwrap() {
            Response::Blocks(blocks) => blocks.iter().map(|bytes| Block::from_bytes(bytes).unwrap()).collect(),
            other => panic!("no blocks: {other:?}"),
        }
    }

    async fn status_of(&self, peer: peerchain_net::Peer) -> Status {
        let genesis = params().genesis_hash();
        let ours = Status { genesis, best_height: 0, best_hash: genesis, total_work: Work::ZERO };
        match self.net.request(peer, Request::Status(ours)).await.unwrap() {
            Response::Status(status) => status,
            other => panic!("no status: {other:?}"),
        }
    }

    fn stop(self) {
        self.answering.abort();
        self.cancel.cancel();
    }
}

fn block_hashes(node: &TestNode, heights: std::ops::RangeInclusive<u32>) -> Vec<BlockHash> {
    heights.map(|h| node.json(&["chain", "block", &h.to_string()])["hash"].as_str().unwrap().parse().unwrap()).collect()
}

fn tip(node: &TestNode) -> Value {
    node.json(&["chain", "info"])["best_hash"].clone()
}

#[test]
fn a_hostile_peer_is_banned_and_honest_sync_goes_on() {
    let victim = TestNode::start("regtest", &[]);
    let honest = TestNode::start("regtest", &["--bootstrap", &victim.p2p_addr()]);
    honest.json(&["chain", "generate", "5"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let victim_addr: peerchain_net::Address = victim.p2p_addr().parse().unwrap();
    let params = params();
    let hostile_id = runtime.block_on(async {
        let hostile = Hostile::start().await;
        let victim_peer = hostile.connect(&victim).await;
        tokio::time::sleep(Duration::from_millis(500)).await;

        // An oversized request: more block hashes than the protocol allows. Refused, no harm.
        let oversized = hostile.net.request(victim_peer, Request::GetBlocks(vec![BlockHash([1; 32]); 100])).await;
        assert!(oversized.is_err(), "{oversized:?}");
        // Review M4: one block asked for twice would be read and sent twice; refused.
        let genesis = params.genesis_hash();
        let repeated = hostile.net.request(victim_peer, Request::GetBlocks(vec![genesis, genesis])).await;
        assert!(repeated.is_err(), "a repeated hash is refused: {repeated:?}");

        // Garbage transactions, then (review I2) a proper announcement of a header on genesis
        // that fails its proof of work: it reaches the proof-of-work check, and the ban.
        for i in 0..3u8 {
            hostile.net.publish(Topic::Transactions, vec![0xff, i, 1, 2, 3]).await;
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
            hostile.net.publish(Topic::Blocks, Announcement::Header(header).to_bytes()).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            if !connected_to(&hostile.net, victim_peer).await {
                break;
            }
        }
        assert!(!connected_to(&hostile.net, victim_peer).await, "the victim dropped the hostile peer");
        // It cannot come back.
        hostile.net.dial(victim_addr.clone()).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        // The victim refuses it at once (the hostile side may see a connection for a moment
        // before the refusal reaches it).
        let hostile_id = hostile.net.local_peer().to_string();
        assert!(!peer_ids(&victim).contains(&hostile_id), "the ban refuses new connections");
        hostile.stop();
        hostile_id
    });
    assert!(!peer_ids(&victim).contains(&hostile_id));
    assert!(victim.log().contains("does not meet its target"), "banned for the proof of work: {}", victim.log());
    assert!(victim.log().contains("peer banned"), "{}", victim.log());

    // The victim keeps serving and syncing from the honest node.
    honest.json(&["chain", "generate", "5"]);
    let tip = tip(&honest);
    wait_for("the victim to follow the honest node", Duration::from_secs(60), || {
        (victim.json(&["chain", "info"])["best_hash"] == tip).then_some(())
    });
    assert_eq!(victim.json(&["chain", "info"])["height"], 10);
}

/// Review C1 on the network: a peer that serves another body for an honest header (here no
/// transactions at all) is banned, and the honest block is taken from the next peer.
#[test]
fn a_peer_serving_a_body_that_does_not_match_its_header_is_banned_and_the_block_is_taken_from_honest_peers() {
    let honest = TestNode::start("regtest", &[]);
    honest.json(&["chain", "generate", "3"]);
    let victim = TestNode::start("regtest", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let hostile = Hostile::start().await;
        let honest_peer = hostile.connect(&honest).await;
        let blocks = hostile.fetch_blocks(honest_peer, block_hashes(&honest, 1..=3)).await;
        let status = hostile.status_of(honest_peer).await;
        {
            let mut script = hostile.script.lock().unwrap();
            script.status = Some(status);
            script.headers = blocks.iter().map(|b| b.header).collect();
            for block in &blocks[..2] {
                script.bodies.insert(block.hash(), block.to_bytes());
            }
            // The honest header with an empty body: `header ‖ 0x00`.
            script.bodies.insert(blocks[2].hash(), [blocks[2].header.to_bytes(), vec![0]].concat());
        }
        // The victim may ban the hostile peer within milliseconds of connecting: dial, and
        // judge by the outcome, not by catching the connection while it lasts.
        let victim_peer = hostile.dial(&victim).await;
        wait_for_async("the victim to ban the hostile peer", Duration::from_secs(30), || async {
            victim.log().contains("peer banned").then_some(())
        })
        .await;
        for _ in 0..300 {
            if !connected_to(&hostile.net, victim_peer).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!connected_to(&hostile.net, victim_peer).await, "the victim dropped the hostile peer");
        hostile.stop();
    });
    assert!(victim.log().contains("peer banned"), "{}", victim.log());
    assert_eq!(victim.json(&["chain", "info"])["height"], 2, "the honest blocks before it were taken");
    // The honest block was not condemned: from an honest peer, the victim takes it.
    victim.json(&["connect", &honest.p2p_addr()]);
    let tip = tip(&honest);
    wait_for("the victim to take the honest block", Duration::from_secs(30), || {
        (victim.json(&["chain", "info"])["best_hash"] == tip).then_some(())
    });
}

/// Review M1: a peer that relays a block with a valid header and an invalid body (it may not
/// have validated it yet) is not punished for it, and a node never serves a block it found
/// invalid; a header on top of it is dropped, not held against its relayer.
#[test]
fn a_block_found_invalid_is_never_served_and_its_relayer_is_not_punished() {
    let honest = TestNode::start("regtest", &[]);
    honest.json(&["chain", "generate", "2"]);
    let victim = TestNode::start("regtest", &["--bootstrap", &honest.p2p_addr()]);
    let synced = tip(&honest);
    wait_for("the victim to sync", Duration::from_secs(30), || (tip(&victim) == synced).then_some(()));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let hostile = Hostile::start().await;
        let honest_peer = hostile.connect(&honest).await;
        let blocks = hostile.fetch_blocks(honest_peer, block_hashes(&honest, 1..=2)).await;
        // A proper header whose coinbase pays a thousand coins.
        let greedy = block_on(&blocks[1].header, 3, Amount::from_coins(1_000));
        let above = block_on(&greedy.header, 4, params().subsidy(4));
        let mut status = hostile.status_of(honest_peer).await;
        {
            let mut script = hostile.script.lock().unwrap();
            status.best_height = 3;
            status.best_hash = greedy.hash();
            status.total_work = Work::from_be_bytes([0xff; 32]);
            script.status = Some(status);
            script.headers = blocks.iter().map(|b| b.header).chain([greedy.header]).collect();
            script.bodies.insert(greedy.hash(), greedy.to_bytes());
        }
        let victim_peer = hostile.connect(&victim).await;
        hostile.net.publish(Topic::Blocks, Announcement::Header(greedy.header).to_bytes()).await;
        for _ in 0..300 {
            if victim.log().contains("downloaded block is invalid") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(victim.log().contains("downloaded block is invalid"), "{}", victim.log());
        // Asked for it, the victim leaves it out.
        match hostile.net.request(victim_peer, Request::GetBlocks(vec![greedy.hash()])).await.unwrap() {
            Response::Blocks(served) => assert!(served.is_empty(), "an invalid block was served"),
            other => panic!("{other:?}"),
        }
        // A header on top of it, relayed: dropped without a penalty.
        hostile.net.publish(Topic::Blocks, Announcement::Header(above.header).to_bytes()).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(connected_to(&hostile.net, victim_peer).await, "the relayer stays connected");
        let entry = peer_entry(&victim, &hostile.net.local_peer()).expect("still a peer");
        assert_eq!(entry["score"], 0, "no misbehaviour points: {entry}");
        hostile.stop();
    });
    assert_eq!(tip(&victim), tip(&honest));
}

/// Reviews M3 and L3: a transaction valid only at the next height (its lock time), and a
/// header a little ahead of the victim's clock, are what an honest peer a block ahead or with
/// a clock a little ahead sends: neither is misbehaviour.
#[test]
fn transactions_valid_a_block_later_and_headers_a_little_ahead_of_the_clock_are_not_misbehaviour() {
    let key = SecretKey::from_seed([5; 32]);
    let address = Address::new(Network::Regtest, key.public_key().key_hash()).to_string();
    let honest = TestNode::start("regtest", &[]);
    honest.json(&["chain", "generate", "15", "--address", &address]);
    let victim = TestNode::start("regtest", &["--bootstrap", &honest.p2p_addr()]);
    let synced = tip(&honest);
    wait_for("the victim to sync", Duration::from_secs(30), || (tip(&victim) == synced).then_some(()));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let hostile = Hostile::start().await;
        let honest_peer = hostile.connect(&honest).await;
        let blocks = hostile.fetch_blocks(honest_peer, block_hashes(&honest, 1..=5)).await;
        let tip_header = hostile.fetch_blocks(honest_peer, block_hashes(&honest, 15..=15)).await[0].header;
        let victim_peer = hostile.connect(&victim).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Five payments locked until height 17: the victim's next block is 16.
        for block in &blocks {
            let coinbase = &block.transactions[0];
            let spent = coinbase.outputs[0].clone();
            let mut tx = Transaction {
                version: 1,
                inputs: vec![TxIn {
                    prev_out: OutPoint::new(coinbase.txid(), 0),
                    witness: Witness::Multisig { signatures: vec![] },
                }],
                outputs: vec![TxOut::coins_to(
                    spent.amount.checked_sub(Amount::from_units(10_000)).unwrap(),
                    key.public_key().key_hash(),
                )],
                lock_time: 17,
            };
            let message = tx.signature_hash(0, &spent, SigHashMode::All, Network::Regtest.magic());
            tx.inputs[0].witness = Witness::Key {
                public_key: key.public_key(),
                signature: TxSignature { mode: SigHashMode::All, signature: key.sign(&message) },
            };
            // The network batches what is published within a few milliseconds.
            hostile.net.publish(Topic::Transactions, tx.to_bytes()).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Three headers on the victim's tip, each 2 hours and a minute ahead of its clock.
        for nonce in 0..3u64 {
            let header = solve(BlockHeader {
                version: 1,
                prev_hash: tip_header.hash(),
                merkle_root: Default::default(),
                time: now() + 2 * 3600 + 60,
                bits: params().pow_limit,
                nonce: nonce << 32,
            });
            hostile.net.publish(Topic::Blocks, Announcement::Header(header).to_bytes()).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(connected_to(&hostile.net, victim_peer).await, "not banned");
        let entry = peer_entry(&victim, &hostile.net.local_peer()).expect("still a peer");
        assert_eq!(entry["score"], 0, "no misbehaviour points: {entry}");
        hostile.stop();
    });
}

/// Review L2: rebuilding a compact block costs the victim a pass over its mempool, so a block
/// is rebuilt once; distinct announcements of the same block cost their sender, not the chain.
#[test]
fn repeated_compact_announcements_of_one_block_cost_their_sender() {
    let victim = TestNode::start("regtest", &[]);
    victim.json(&["chain", "generate", "2"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let hostile = Hostile::start().await;
        let victim_peer = hostile.connect(&victim).await;
        let tip_block = hostile.fetch_blocks(victim_peer, block_hashes(&victim, 2..=2)).await.remove(0);
        // A valid next block, which the hostile peer announces but never delivers.
        let next = block_on(&tip_block.header, 3, params().subsidy(3));
        let compact = CompactBlock::of(&next).unwrap();
        for junk in 0..8u8 {
            let mut variant = compact.clone();
            variant.short_ids.push(peerchain_primitives::ShortId([junk; 6]));
            hostile.net.publish(Topic::Blocks, Announcement::Compact(variant).to_bytes()).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            if !connected_to(&hostile.net, victim_peer).await {
                break;
            }
        }
        assert!(!connected_to(&hostile.net, victim_peer).await, "the sender was banned");
        hostile.stop();
    });
    assert!(victim.log().contains("RepeatedAnnouncement"), "{}", victim.log());
    assert_eq!(victim.json(&["chain", "info"])["height"], 2);
}
