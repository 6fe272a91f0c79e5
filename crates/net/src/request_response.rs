//! The plumbing every request-response protocol shares: requests this node made, waiting for
//! their peer's answer; requests peers made, waiting for the node's; the caps on the latter;
//! and the rule that every waiting requester is answered, also when a connection drops or
//! the network stops. One [`Requests`] per protocol (sync, files, and those to come).

use std::collections::HashMap;

use libp2p::PeerId;
use libp2p::request_response::{InboundRequestId, OutboundRequestId, ResponseChannel};
use tokio::sync::oneshot;

use crate::{InboundId, RequestError};

/// A response that can say no: what a node answers a request it will not serve.
pub(crate) trait Refusal {
    /// The refusal, with its reason.
    fn refusal(reason: &str) -> Self;
}

impl Refusal for crate::Response {
    fn refusal(reason: &str) -> Self {
        crate::Response::Refused(reason.to_owned())
    }
}

impl Refusal for crate::FileResponse {
    fn refusal(reason: &str) -> Self {
        crate::FileResponse::Refused(reason.to_owned())
    }
}

impl Refusal for crate::MarketResponse {
    fn refusal(reason: &str) -> Self {
        crate::MarketResponse::Refused(reason.to_owned())
    }
}

/// A peer's request in the node's hands.
pub(crate) struct Inbound<A> {
    pub(crate) peer: PeerId,
    pub(crate) request_id: InboundRequestId,
    pub(crate) channel: ResponseChannel<A>,
}

/// The requests of one protocol, both ways (`K` names this node's requests: libp2p's
/// request ids, or numbers in tests).
pub(crate) struct Requests<A, K = OutboundRequestId> {
    outbound: HashMap<K, (PeerId, oneshot::Sender<Result<A, RequestError>>)>,
    inbound: HashMap<InboundId, Inbound<A>>,
    in_hand: HashMap<PeerId, usize>,
    /// Security: most requests of one peer, and of all peers, in the node's hands at once;
    /// beyond, requests are refused at once instead of queued.
    max_per_peer: usize,
    max_total: usize,
}

impl<A: Refusal, K: std::hash::Hash + Eq> Requests<A, K> {
    pub(crate) fn new(max_per_peer: usize, max_total: usize) -> Self {
        Self { outbound: HashMap::new(), inbound: HashMap::new(), in_hand: HashMap::new(), max_per_peer, max_total }
    }

    /// This node asked `peer`; `reply` waits for the answer.
    pub(crate) fn asked(&mut self, id: K, peer: PeerId, reply: oneshot::Sender<Result<A, RequestError>>) {
        self.outbound.insert(id, (peer, reply));
    }

    /// The peer answered.
    pub(crate) fn answered(&mut self, id: K, response: A) {
        if let Some((_, reply)) = self.outbound.remove(&id) {
            let _ = reply.send(Ok(response));
        }
    }

    /// The request failed (a timeout, a dropped connection, a malformed answer).
    pub(crate) fn failed(&mut self, id: K, peer: PeerId, reason: impl std::fmt::Display) {
        if let Some((_, reply)) = self.outbound.remove(&id) {
            let _ = reply.send(Err(RequestError::Failed { peer, reason: reason.to_string() }));
        }
    }

    /// Takes a peer's request into the node's hands under `id`, or gives the channel back
    /// when the peer (or everyone) has too many there already.
    pub(crate) fn admit(&mut self, id: InboundId, inbound: Inbound<A>) -> Result<(), ResponseChannel<A>> {
        let in_hand = self.in_hand.get(&inbound.peer).copied().unwrap_or(0);
        if in_hand >= self.max_per_peer || self.inbound.len() >= self.max_total {
            return Err(inbound.channel);
        }
        *self.in_hand.entry(inbound.peer).or_default() += 1;
        self.inbound.insert(id, inbound);
        Ok(())
    }

    /// The request the node now answers (none if it is gone: answered, or its peer left).
    pub(crate) fn take(&mut self, id: InboundId) -> Option<Inbound<A>> {
        let inbound = self.inbound.remove(&id)?;
        if let Some(count) = self.in_hand.get_mut(&inbound.peer) {
            *count -= 1;
            if *count == 0 {
                self.in_hand.remove(&inbound.peer);
            }
        }
        Some(inbound)
    }

    /// Correctness: every requester waiting on a peer gets an answer when the network stops.
    pub(crate) fn close(&mut self) {
        for (_, (peer, reply)) in self.outbound.drain() {
            let _ = reply.send(Err(RequestError::Failed { peer, reason: "network shut down".into() }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_requester_is_answered_also_when_the_network_stops() {
        let mut requests = Requests::<crate::Response, u64>::new(2, 3);
        let peer = PeerId::random();
        let (reply, answer) = oneshot::channel();
        requests.asked(1, peer, reply);
        let (reply_2, answer_2) = oneshot::channel();
        requests.asked(2, peer, reply_2);
        requests.failed(1, peer, "connection closed");
        assert!(matches!(answer.blocking_recv(), Ok(Err(RequestError::Failed { .. }))));
        requests.close();
        assert!(matches!(answer_2.blocking_recv(), Ok(Err(RequestError::Failed { .. }))), "answered at shutdown");
    }
}
