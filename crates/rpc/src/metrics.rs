//! `GET /metrics`: the node in the Prometheus text format, behind the RPC login. Values the
//! node already keeps (heights, mempool, peers, the book, file transfers) are read when
//! scraped, then libp2p's own metrics (connections, protocols, gossip, the DHT) follow; RPC calls are counted and timed as they are served, by method (only the methods
//! the server knows, so a client cannot grow the label set).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::Context;

/// An RPC call's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    method: String,
    outcome: &'static str,
}

fn call_seconds() -> Histogram {
    // 100 µs to about 3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// What the server counts as it serves.
pub(crate) struct RpcMetrics {
    calls: Family<Call, Counter>,
    seconds: Family<Call, Histogram, fn() -> Histogram>,
}

impl RpcMetrics {
    pub(crate) fn new() -> RpcMetrics {
        RpcMetrics { calls: Family::default(), seconds: Family::new_with_constructor(call_seconds) }
    }

    /// Counts a call of `method` (a name the server does not know counts as `unknown`).
    pub(crate) fn record(&self, method: &str, ok: bool, took: Duration) {
        let known = crate::methods::METHODS.iter().any(|m| m.name == method);
        let call = Call {
            method: if known { method.to_owned() } else { "unknown".to_owned() },
            outcome: if ok { "ok" } else { "error" },
        };
        self.calls.get_or_create(&call).inc();
        self.seconds.get_or_create(&call).observe(took.as_secs_f64());
    }
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let gauge: Gauge = Gauge::default();
    gauge.set(value);
    registry.register(name, help, gauge);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let counter: Counter = Counter::default();
    counter.inc_by(value);
    registry.register(name, help, counter);
}

/// A refusal's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Refusal {
    reason: &'static str,
}

fn chain_counters(registry: &mut Registry, stats: &peerchain_chain::Stats) {
    let read = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    counter(registry, "chain_blocks_connected", "Blocks connected to the main chain", read(&stats.blocks_connected));
    counter(
        registry,
        "chain_blocks_disconnected",
        "Blocks taken off the main chain by reorganisations",
        read(&stats.blocks_disconnected),
    );
    counter(registry, "chain_reorganisations", "Tip changes that disconnected blocks", read(&stats.reorganisations));
    counter(registry, "chain_invalid_blocks", "Blocks found invalid", read(&stats.invalid_blocks));
    let seconds: Counter<f64> = Counter::default();
    seconds.inc_by(read(&stats.connect_micros) as f64 / 1e6);
    registry.register("chain_connect_seconds", "Time spent connecting blocks (validation and commit)", seconds);
    counter(registry, "mempool_accepted", "Transactions the mempool accepted", read(&stats.mempool_accepted));
    let refused: Family<Refusal, Counter> = Family::default();
    for (kind, reason) in peerchain_chain::MempoolReject::KINDS.iter().enumerate() {
        refused.get_or_create(&Refusal { reason }).inc_by(read(&stats.mempool_refused[kind]));
    }
    registry.register("mempool_refused", "Transactions the mempool refused, by reason", refused);
}

/// The whole scrape, in the Prometheus text format.
pub(crate) async fn render(context: &Context, rpc: &RpcMetrics) -> String {
    let mut registry = Registry::with_prefix("peerchain");
    chain_counters(&mut registry, context.chain.stats());
    let tip = context.chain.tip();
    gauge(&mut registry, "chain_height", "Height of the main chain's tip", i64::from(tip.height));
    if let Ok(sync) = context.chain.sync_state().await {
        gauge(&mut registry, "chain_headers", "Height of the best known header", i64::from(sync.best_header_height));
        gauge(
            &mut registry,
            "chain_low_work_headers",
            "Headers of branches with less work than the tip, held in memory",
            sync.low_work_headers as i64,
        );
    }
    if let Ok(mempool) = context.chain.mempool_info().await {
        gauge(&mut registry, "mempool_transactions", "Transactions in the mempool", mempool.size as i64);
        gauge(&mut registry, "mempool_bytes", "Bytes of transactions in the mempool", mempool.bytes as i64);
    }
    let peers = context.net.peers().await;
    let inbound = peers.iter().filter(|p| p.direction == peerchain_net::Direction::Inbound).count();
    gauge(&mut registry, "peers_inbound", "Connected peers that dialled this node", inbound as i64);
    gauge(&mut registry, "peers_outbound", "Connected peers this node dialled", (peers.len() - inbound) as i64);
    let scored = peers.iter().filter(|p| p.score > 0).count();
    gauge(&mut registry, "peers_misbehaving", "Connected peers with misbehaviour points", scored as i64);
    if let Ok(book) = context.market.summary().await {
        gauge(&mut registry, "market_offers", "Swap offers in the order book", book.offers as i64);
        gauge(&mut registry, "market_loan_offers", "Loan offers in the order book", book.loan_offers as i64);
        gauge(&mut registry, "market_book_bytes", "Bytes of offers the book holds", book.bytes as i64);
    }
    let files = context.files.totals();
    counter(&mut registry, "files_uploaded_bytes", "Bytes of content served to peers", files.uploaded_bytes);
    counter(&mut registry, "files_downloaded_bytes", "Bytes of content received from peers", files.downloaded_bytes);
    counter(&mut registry, "files_bad_pieces", "Pieces peers served that failed verification", files.bad_pieces);
    gauge(
        &mut registry,
        "files_downloads_active",
        "Downloads finding holders or fetching",
        files.active_downloads as i64,
    );
    registry.register("rpc_calls", "JSON-RPC calls served, by method and outcome", rpc.calls.clone());
    registry.register("rpc_call_seconds", "Time to serve a JSON-RPC call", rpc.seconds.clone());
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    // libp2p's own metrics follow (prefixed `libp2p_`); one `# EOF` ends the whole.
    if let Some(ours) = text.strip_suffix("# EOF\n") {
        text.truncate(ours.len());
    }
    text.push_str(&context.net.encode_metrics());
    text
}
