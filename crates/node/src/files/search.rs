//! Keyword search: this node's own hits, the flooded query forwarded to neighbours (within
//! budgets shared by all peers), and the DHT's keyword providers asked in parallel.

use std::collections::HashSet;
use std::time::Duration;

use peerchain_blobs::Kind;
use peerchain_net::files::{MAX_HITS, MAX_PROVIDERS_PER_HIT};
use peerchain_net::{FileRequest, FileResponse, Hit, Peer, Provider, TokenBucket};
use peerchain_rpc::files::SearchVia;
use tracing::debug;

use super::{Files, blocking, keyword_key};

/// How far a flooded query travels: the asker's neighbours get it with one hop less.
const SEARCH_HOPS: u8 = peerchain_net::files::MAX_HOPS;
/// Neighbours a query is forwarded to.
const SEARCH_FANOUT: usize = 8;
/// Query ids remembered, to answer each once.
const SEEN_QUERIES: usize = 4_096;
/// Searches a peer may send per second (each may fan out to the whole network), and in a burst.
const SEARCHES_PER_SECOND: f64 = 2.0;
const SEARCH_BURST: f64 = 10.0;
/// Peers' searches answered per second, all peers together, and in a burst: each reads the
/// whole blob index, and new peer ids cost an attacker nothing.
const ALL_SEARCHES_PER_SECOND: f64 = 20.0;
const ALL_SEARCHES_BURST: f64 = 40.0;
/// Peers' searches forwarded per second, all peers together, and in a burst. Security: a
/// forwarded search costs up to [`SEARCH_FANOUT`] requests at each further hop, so this caps
/// what any number of peer ids can make the network do through this node.
const FORWARDS_PER_SECOND: f64 = 2.0;
const FORWARD_BURST: f64 = 8.0;

/// The budget of peers' searches answered, all peers together.
pub(super) fn all_searches() -> TokenBucket {
    TokenBucket::full(ALL_SEARCHES_PER_SECOND, ALL_SEARCHES_BURST)
}

/// The budget of peers' searches forwarded, all peers together.
pub(super) fn forwards() -> TokenBucket {
    TokenBucket::full(FORWARDS_PER_SECOND, FORWARD_BURST)
}

impl Files {
    /// Security: a search can fan out to the whole network, so each peer gets a small,
    /// refilling allowance of them.
    pub(super) fn allow_search(&self, peer: Peer) -> bool {
        let mut allowances = super::lock(&self.search_allowance);
        if allowances.len() > 10_000 {
            allowances.retain(|_, bucket| bucket.idle() < Duration::from_secs(60));
        }
        allowances.entry(peer).or_insert_with(|| TokenBucket::full(SEARCHES_PER_SECOND, SEARCH_BURST)).try_take(1.0)
            && super::lock(&self.all_searches).try_take(1.0)
    }

    /// Hits of this node and of peers up to `hops` further, once per query id.
    pub(super) async fn answer_search(
        &self,
        from: Option<Peer>,
        query_id: u64,
        words: Vec<String>,
        hops: u8,
    ) -> Vec<Hit> {
        {
            let mut seen = super::lock(&self.seen_queries);
            let (ids, order) = &mut *seen;
            if !ids.insert(query_id) {
                return Vec::new();
            }
            order.push_back(query_id);
            if order.len() > SEEN_QUERIES
                && let Some(old) = order.pop_front()
            {
                ids.remove(&old);
            }
        }
        let mut hits = self.local_hits(&words).await;
        // A peer's query travels on only within the forwarding budget; this node's own always.
        let forward = from.is_none() || super::lock(&self.forwards).try_take(1.0);
        if !forward {
            debug!(query_id, "search answered here only: the forwarding budget is spent");
        }
        if hops > 0 && forward {
            let peers: Vec<Peer> = self
                .net
                .peers()
                .await
                .into_iter()
                .map(|p| p.peer)
                .filter(|p| Some(*p) != from)
                .take(SEARCH_FANOUT)
                .collect();
            let timeout = hop_timeout(hops - 1);
            let asks = peers.into_iter().map(|peer| {
                let request = FileRequest::Search { query_id, words: words.clone(), hops: hops - 1 };
                let net = self.net.clone();
                async move { tokio::time::timeout(timeout, net.request_file(peer, request)).await }
            });
            for answer in futures::future::join_all(asks).await {
                if let Ok(Ok(FileResponse::Hits(found))) = answer {
                    merge_hits(&mut hits, found);
                }
            }
        }
        hits
    }

    async fn local_hits(&self, words: &[String]) -> Vec<Hit> {
        let store = self.store.clone();
        let query = words.to_vec();
        let Ok(entries) = blocking(move || store.search(&query, MAX_HITS)).await else { return Vec::new() };
        if entries.is_empty() {
            return Vec::new();
        }
        let addresses = self.net.local().await.map(|l| l.listen_addrs).unwrap_or_default();
        let me = Provider {
            peer: self.net.local_peer(),
            addresses: addresses.into_iter().take(peerchain_net::files::MAX_ADDRESSES).collect(),
        };
        entries
            .into_iter()
            .map(|e| Hit {
                id: e.id,
                name: e.name,
                size: e.size,
                directory: e.kind == Kind::Directory,
                providers: vec![me.clone()],
            })
            .collect()
    }

    /// Searches the DHT (keyword providers, then what each of them holds) and floods the
    /// query to neighbours, at once; merges both with this node's own hits.
    pub(super) async fn search_network(&self, words: Vec<String>, via: SearchVia) -> Vec<Hit> {
        let query_id: u64 = rand::random();
        let flood = async {
            if via == SearchVia::Dht {
                return self.local_hits(&words).await;
            }
            self.answer_search(None, query_id, words.clone(), SEARCH_HOPS).await
        };
        let dht = async {
            if via == SearchVia::Flood {
                return Vec::new();
            }
            let lookups = words.iter().map(|w| self.net.find_providers(keyword_key(w)));
            let mut providers: HashSet<Peer> = HashSet::new();
            for found in futures::future::join_all(lookups).await {
                providers.extend(found);
            }
            let asks = providers.into_iter().map(|peer| {
                // hops 0: the provider answers for itself; its id is new to it, so it answers.
                let request = FileRequest::Search { query_id: rand::random(), words: words.clone(), hops: 0 };
                let net = self.net.clone();
                async move { tokio::time::timeout(Duration::from_secs(10), net.request_file(peer, request)).await }
            });
            let mut hits = Vec::new();
            for answer in futures::future::join_all(asks).await {
                if let Ok(Ok(FileResponse::Hits(found))) = answer {
                    merge_hits(&mut hits, found);
                }
            }
            hits
        };
        let (mut hits, dht_hits) = tokio::join!(flood, dht);
        merge_hits(&mut hits, dht_hits);
        hits
    }
}

/// How long a query forwarded with `hops` left may take: each hop waits for the next, so the
/// deadlines shrink along the path.
fn hop_timeout(hops: u8) -> Duration {
    Duration::from_millis(1_000 + 1_500 * u64::from(hops))
}

/// Adds `found` to `hits`: one hit per content id, its providers merged.
fn merge_hits(hits: &mut Vec<Hit>, found: Vec<Hit>) {
    for hit in found {
        match hits.iter().position(|h| h.id == hit.id) {
            Some(index) => {
                let known = &mut hits[index];
                for provider in hit.providers {
                    if known.providers.len() < MAX_PROVIDERS_PER_HIT
                        && known.providers.iter().all(|p| p.peer != provider.peer)
                    {
                        known.providers.push(provider);
                    }
                }
            }
            None if hits.len() < MAX_HITS => hits.push(hit),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use peerchain_primitives::ContentId;

    use super::*;

    #[test]
    fn hits_merge_by_id_and_providers_by_peer() {
        let peer = Peer::random();
        let hit = |peer: Peer| Hit {
            id: ContentId([1; 32]),
            name: "a".into(),
            size: 1,
            directory: false,
            providers: vec![Provider { peer, addresses: vec![] }],
        };
        let mut hits = vec![hit(peer)];
        merge_hits(&mut hits, vec![hit(peer), hit(Peer::random())]);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].providers.len(), 2);
        assert!(hop_timeout(2) > hop_timeout(1), "deadlines shrink along the path");
    }
}
