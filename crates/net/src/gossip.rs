//! Gossip: the topic table, message ids, peer scoring, and the batching of transactions.
//!
//! Correctness: a message is routed by the table, never by elimination: a topic this node
//! does not know (a newer node's) is dropped, not read as another topic's message.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::gossipsub::{self, IdentTopic, MessageId, TopicHash};

/// Which gossip topic a message came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Transactions (batches of them).
    Transactions,
    /// Block announcements (headers or compact blocks).
    Blocks,
    /// Market offers, one a message.
    Offers,
    /// Contract messages: escrow payouts for a party to complete, dispute notices.
    Contracts,
}

impl Topic {
    /// Every topic a node subscribes to.
    pub const ALL: [Topic; 4] = [Topic::Transactions, Topic::Blocks, Topic::Offers, Topic::Contracts];

    /// The topic's name on `network`: each network has its own, so nodes of different
    /// networks never share a mesh.
    fn name(self, network: &str) -> String {
        match self {
            Topic::Transactions => format!("/peerchain/{network}/tx/3"),
            Topic::Blocks => format!("/peerchain/{network}/block/3"),
            Topic::Offers => format!("/peerchain/{network}/offer/1"),
            Topic::Contracts => format!("/peerchain/{network}/contract/1"),
        }
    }
}

/// The topics of one network, both ways.
#[derive(Debug, Clone)]
pub(crate) struct Topics {
    topics: HashMap<Topic, IdentTopic>,
    by_hash: HashMap<TopicHash, Topic>,
}

impl Topics {
    pub(crate) fn of(network: &str) -> Topics {
        let topics: HashMap<Topic, IdentTopic> =
            Topic::ALL.iter().map(|t| (*t, IdentTopic::new(t.name(network)))).collect();
        let by_hash = topics.iter().map(|(t, ident)| (ident.hash(), *t)).collect();
        Topics { topics, by_hash }
    }

    pub(crate) fn ident(&self, topic: Topic) -> &IdentTopic {
        &self.topics[&topic]
    }

    /// The topic of a message, if it is one of ours.
    pub(crate) fn topic_of(&self, hash: &TopicHash) -> Option<Topic> {
        self.by_hash.get(hash).copied()
    }

    /// Gossipsub peer scoring for our topics. Invalid messages weigh heavily and are
    /// remembered for an hour; first deliveries and time in the mesh earn a little. Peers are
    /// not penalised for delivering few messages: a quiet chain has few to deliver.
    pub(crate) fn scoring(&self) -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
        let mut params = gossipsub::PeerScoreParams {
            // Security: many peers behind one address look like one attacker's sybils, except
            // on loopback, where local networks and tests run.
            ip_colocation_factor_whitelist: [
                std::net::IpAddr::from([127, 0, 0, 1]),
                std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ]
            .into(),
            ..Default::default()
        };
        for ident in self.topics.values() {
            let topic_params = gossipsub::TopicScoreParams {
                topic_weight: 1.0,
                time_in_mesh_weight: 0.01,
                time_in_mesh_quantum: Duration::from_secs(1),
                time_in_mesh_cap: 3600.0,
                first_message_deliveries_weight: 1.0,
                first_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(600)),
                first_message_deliveries_cap: 100.0,
                mesh_message_deliveries_weight: 0.0,
                mesh_failure_penalty_weight: 0.0,
                invalid_message_deliveries_weight: -20.0,
                invalid_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(3600)),
                ..Default::default()
            };
            params.topics.insert(ident.hash(), topic_params);
        }
        (params, gossipsub::PeerScoreThresholds::default())
    }
}

/// A gossip message's id: the SHA-256 of its content.
pub(crate) fn content_id(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

/// Ids of the gossip this node received or published lately, so that it does not publish
/// again what gossipsub would refuse as a duplicate (a block fetched after its announcement
/// was seen, say). Gossipsub remembers ids for a minute ([`GOSSIP_MEMORY`]); so does this, for
/// at most [`RECENT_GOSSIP`] ids.
#[derive(Default)]
pub(crate) struct RecentGossip {
    order: VecDeque<(Instant, MessageId)>,
    ids: HashSet<MessageId>,
}

/// How long gossipsub remembers a message id (its default `duplicate_cache_time`).
const GOSSIP_MEMORY: Duration = Duration::from_secs(60);
/// Most ids remembered.
const RECENT_GOSSIP: usize = 16_384;

impl RecentGossip {
    /// Notes an id; false if it was noted within the last minute.
    pub(crate) fn insert(&mut self, id: MessageId) -> bool {
        let now = Instant::now();
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < GOSSIP_MEMORY && self.order.len() < RECENT_GOSSIP {
                break;
            }
            let (_, old) = self.order.pop_front().expect("not empty");
            self.ids.remove(&old);
        }
        if !self.ids.insert(id.clone()) {
            return false;
        }
        self.order.push_back((now, id));
        true
    }

    /// Drops an id (its publication failed). Rare, so a scan of the order is fine; leaving
    /// the entry there would let it expire the id early if it is noted again.
    pub(crate) fn forget(&mut self, id: &MessageId) {
        if self.ids.remove(id) {
            self.order.retain(|(_, noted)| noted != id);
        }
    }
}

/// How long a transaction published here waits for others to share its gossip message: each
/// message costs every hop a frame, a write and a wake-up per peer, whatever its size.
pub const TX_BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Most bytes of transactions in one gossip message (gossipsub's own cap is 1 MiB).
const TX_BATCH_BYTES: usize = 256 << 10;

/// Transactions waiting to be published together: a count-prefixed list in canonical
/// encoding, as [`crate::protocol::decode_transaction_batch`] reads it.
#[derive(Default)]
pub(crate) struct TxBatch {
    body: Vec<u8>,
    count: usize,
    pub(crate) deadline: Option<tokio::time::Instant>,
}

impl TxBatch {
    /// Adds an encoded transaction; true when the batch is full and should go now.
    pub(crate) fn push(&mut self, transaction: Vec<u8>) -> bool {
        if self.count == 0 {
            self.deadline = Some(tokio::time::Instant::now() + TX_BATCH_WINDOW);
        }
        self.body.extend_from_slice(&transaction);
        self.count += 1;
        self.count >= crate::protocol::MAX_GOSSIP_TRANSACTIONS || self.body.len() >= TX_BATCH_BYTES
    }

    /// The message of the waiting transactions, if any, leaving the batch empty.
    pub(crate) fn take(&mut self) -> Option<Vec<u8>> {
        if self.count == 0 {
            return None;
        }
        let mut message = Vec::with_capacity(self.body.len() + 10);
        peerchain_primitives::encode::put_varint(&mut message, self.count as u64);
        message.append(&mut self.body);
        self.count = 0;
        self.deadline = None;
        Some(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_gossip_refuses_an_id_seen_lately_and_stays_bounded() {
        let mut recent = RecentGossip::default();
        let id = |n: u32| MessageId::from(n.to_be_bytes().to_vec());
        assert!(recent.insert(id(1)));
        assert!(!recent.insert(id(1)), "seen within the minute");
        recent.forget(&id(1));
        assert_eq!(recent.order.len(), 0, "forgotten whole");
        assert!(recent.insert(id(1)), "forgotten after a failed publish");
        for n in 2..=RECENT_GOSSIP as u32 + 10 {
            assert!(recent.insert(id(n)));
        }
        assert!(recent.ids.len() <= RECENT_GOSSIP && recent.order.len() == recent.ids.len());
        assert!(recent.insert(id(1)), "the oldest ids make room for new ones");
    }

    #[test]
    fn every_topic_is_found_by_its_hash_and_a_stranger_is_not() {
        let topics = Topics::of("regtest");
        for topic in Topic::ALL {
            assert_eq!(topics.topic_of(&topics.ident(topic).hash()), Some(topic));
        }
        let stranger = IdentTopic::new("/peerchain/regtest/offers/1");
        assert_eq!(topics.topic_of(&stranger.hash()), None, "an unknown topic is nobody's");
        assert_ne!(Topics::of("devnet").ident(Topic::Blocks).hash(), topics.ident(Topic::Blocks).hash());
    }
}
