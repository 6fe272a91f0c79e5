//! Live updates for the dashboard, pushed as server-sent events on `GET /events`: a sample of
//! the node every few seconds (height, mempool, peers, transfer rates, the book) kept for the
//! last hour so that a page opened late draws its charts at once, and a `block` event the
//! moment the tip changes.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, broadcast};
use tokio_util::sync::CancellationToken;

use crate::Context;

/// How often the node is sampled.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// Samples kept: an hour.
const SAMPLES_KEPT: usize = 1_800;
/// Event streams open at once; each holds a connection for as long as its page is open.
pub(crate) const MAX_STREAMS: usize = 16;

/// One look at the node.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Sample {
    /// Seconds since the Unix epoch.
    time: u64,
    height: u32,
    best_hash: String,
    mempool_size: usize,
    mempool_bytes: usize,
    peers: usize,
    uploaded_bytes: u64,
    downloaded_bytes: u64,
    /// Bytes a second since the previous sample.
    upload_rate: f64,
    download_rate: f64,
    active_downloads: usize,
    offers: usize,
    loan_offers: usize,
}

/// What streams read: the samples kept, and what is pushed as it happens.
pub(crate) struct Live {
    samples: Mutex<VecDeque<Sample>>,
    events: broadcast::Sender<(&'static str, Value)>,
    pub(crate) streams: Arc<tokio::sync::Semaphore>,
}

impl Live {
    pub(crate) fn new() -> Live {
        Live {
            samples: Mutex::new(VecDeque::with_capacity(SAMPLES_KEPT)),
            events: broadcast::channel(64).0,
            streams: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
        }
    }

    fn history(&self) -> Vec<Sample> {
        self.samples.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }

    fn keep(&self, sample: Sample) {
        let value = serde_json::to_value(&sample).unwrap_or(Value::Null);
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.len() == SAMPLES_KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
        drop(samples);
        // No page open: nobody to tell.
        let _ = self.events.send(("sample", value));
    }
}

/// Samples the node and pushes blocks as they come, until cancelled.
pub(crate) struct Sampler {
    pub(crate) context: Arc<Context>,
    pub(crate) live: Arc<Live>,
}

impl Sampler {
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let mut tips = self.context.chain.subscribe_tip();
        let mut ticks = tokio::time::interval(SAMPLE_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<(Instant, u64, u64)> = None;
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                changed = tips.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let tip = *tips.borrow_and_update();
                    let _ = self.live.events.send(("block", json!({ "height": tip.height, "hash": tip.hash })));
                }
                _ = ticks.tick() => {
                    if let Some(sample) = self.sample(&mut last).await {
                        self.live.keep(sample);
                    }
                }
            }
        }
    }

    async fn sample(&self, last: &mut Option<(Instant, u64, u64)>) -> Option<Sample> {
        let context = &self.context;
        let tip = context.chain.tip();
        let mempool = context.chain.mempool_info().await.ok()?;
        let peers = context.net.peers().await.len();
        let files = context.files.totals();
        let book = context.market.summary().await.ok();
        let now = Instant::now();
        let rate = |before: u64, after: u64, since: Instant| {
            after.saturating_sub(before) as f64 / now.duration_since(since).as_secs_f64().max(0.001)
        };
        let (upload_rate, download_rate) = match *last {
            Some((since, up, down)) => {
                (rate(up, files.uploaded_bytes, since), rate(down, files.downloaded_bytes, since))
            }
            None => (0.0, 0.0),
        };
        *last = Some((now, files.uploaded_bytes, files.downloaded_bytes));
        Some(Sample {
            time: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            height: tip.height,
            best_hash: tip.hash.to_string(),
            mempool_size: mempool.size,
            mempool_bytes: mempool.bytes,
            peers,
            uploaded_bytes: files.uploaded_bytes,
            downloaded_bytes: files.downloaded_bytes,
            upload_rate,
            download_rate,
            active_downloads: files.active_downloads,
            offers: book.as_ref().map_or(0, |b| b.offers),
            loan_offers: book.as_ref().map_or(0, |b| b.loan_offers),
        })
    }
}

/// The stream of one page: the samples kept (`history`), then each event as it comes. A
/// page too slow to read them loses the oldest and is told to reload what it shows
/// (`lagged`).
pub(crate) fn stream(
    live: &Live,
    permit: OwnedSemaphorePermit,
    cancel: CancellationToken,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    let history = serde_json::to_string(&live.history()).unwrap_or_else(|_| "[]".into());
    let first = Event::default().event("history").data(history);
    let receiver = live.events.subscribe();
    // The stream ends when the node stops: the server's graceful shutdown waits for it.
    let state = (Some(first), receiver, (permit, cancel));
    let events = futures_util::stream::unfold(state, |(first, mut receiver, held)| async move {
        if let Some(first) = first {
            return Some((Ok(first), (None, receiver, held)));
        }
        let received = tokio::select! {
            biased;
            _ = held.1.cancelled() => return None,
            received = receiver.recv() => received,
        };
        let event = match received {
            Ok((name, value)) => Event::default().event(name).data(value.to_string()),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Event::default().event("lagged").data(missed.to_string())
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), (None, receiver, held)))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
