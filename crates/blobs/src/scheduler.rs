//! Which piece to ask which source for. Pure bookkeeping, no I/O: the node's download task
//! asks [`Scheduler::next`] whenever a source has a free request slot and reports back.
//!
//! - Pieces go in order (good for previews and time to first byte), each to one source.
//! - A source's window (requests in flight) grows with its measured rate, so the fastest
//!   sources carry most of the download.
//! - Endgame: once every missing piece is requested, an idle source duplicates the piece
//!   that has been in flight longest, so one slow source cannot hold up the end.
//! - A source that fails is given less work; one that serves bad data is removed.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::{Bitmap, GROUP_BYTES, PIECE_GROUPS, piece_count};

/// Fewest requests in flight per source.
const MIN_WINDOW: usize = 2;
/// Most requests in flight per source.
const MAX_WINDOW: usize = 16;
/// How much data a source should have in flight: its rate times this.
const PIPELINE_SECONDS: f64 = 0.25;
/// Most sources working on one piece in the endgame.
const MAX_DUPLICATES: usize = 2;

#[derive(Debug)]
struct Source {
    /// Pieces it holds; `None` for all of them.
    have: Option<Bitmap>,
    in_flight: usize,
    /// Bytes per second, smoothed.
    rate: f64,
    /// Pieces it delivered.
    delivered: u64,
    failures: u32,
}

/// The state of one download's pieces.
#[derive(Debug)]
pub struct Scheduler<P> {
    piece_bytes: f64,
    done: Bitmap,
    /// Pieces requested and not yet answered: who works on each, since when.
    in_flight: HashMap<u64, Vec<(P, Instant)>>,
    sources: HashMap<P, Source>,
    /// No piece before this is missing and unrequested.
    cursor: u64,
}

impl<P: Copy + Eq + Hash> Scheduler<P> {
    /// A download of `size` bytes, with the pieces in `done` already here.
    pub fn new(size: u64, done: Bitmap) -> Self {
        assert_eq!(done.len(), piece_count(size));
        Scheduler {
            piece_bytes: (PIECE_GROUPS * GROUP_BYTES) as f64,
            done,
            in_flight: HashMap::new(),
            sources: HashMap::new(),
            cursor: 0,
        }
    }

    /// Adds a source, or updates which pieces it holds (`None`: all).
    pub fn add_source(&mut self, peer: P, have: Option<Bitmap>) {
        let have = have.filter(|h| h.len() == self.done.len() && !h.is_full());
        match self.sources.get_mut(&peer) {
            Some(source) => source.have = have,
            None => {
                self.sources.insert(peer, Source { have, in_flight: 0, rate: 0.0, delivered: 0, failures: 0 });
            }
        }
    }

    /// Drops a source; its requests are forgotten (their pieces go to others).
    pub fn remove_source(&mut self, peer: P) {
        self.sources.remove(&peer);
        for workers in self.in_flight.values_mut() {
            workers.retain(|(p, _)| *p != peer);
        }
        self.in_flight.retain(|_, workers| !workers.is_empty());
        self.cursor = 0;
    }

    /// The sources, for the caller to ask.
    pub fn sources(&self) -> impl Iterator<Item = P> + '_ {
        self.sources.keys().copied()
    }

    /// How many sources there are.
    pub fn source_count(&self) -> usize {
        self.sources.len()
    }

    /// Whether every piece is here.
    pub fn is_complete(&self) -> bool {
        self.done.is_full()
    }

    fn window(source: &Source) -> usize {
        let wanted = (source.rate * PIPELINE_SECONDS / (PIECE_GROUPS * GROUP_BYTES) as f64).ceil() as usize;
        let window = wanted.clamp(MIN_WINDOW, MAX_WINDOW);
        // A source that keeps failing gets one request at a time until it delivers again.
        if source.failures >= 3 { 1 } else { window }
    }

    /// The next piece `peer` should be asked for, if it has a free slot and holds something
    /// useful; the request counts as in flight from now.
    pub fn next(&mut self, peer: P) -> Option<u64> {
        let source = self.sources.get(&peer)?;
        if source.in_flight >= Self::window(source) {
            return None;
        }
        let holds = |piece: u64| source.have.as_ref().is_none_or(|h| h.get(piece));
        let pieces = self.done.len();
        while self.cursor < pieces && (self.done.get(self.cursor) || self.in_flight.contains_key(&self.cursor)) {
            self.cursor += 1;
        }
        let fresh = (self.cursor..pieces).find(|p| !self.done.get(*p) && !self.in_flight.contains_key(p) && holds(*p));
        let piece = fresh.or_else(|| {
            // Endgame: the piece in flight longest that this source holds and is not on.
            self.in_flight
                .iter()
                .filter(|(piece, workers)| {
                    holds(**piece) && workers.len() < MAX_DUPLICATES && workers.iter().all(|(p, _)| *p != peer)
                })
                .min_by_key(|(piece, workers)| (workers.iter().map(|(_, t)| *t).min(), **piece))
                .map(|(piece, _)| *piece)
        })?;
        self.in_flight.entry(piece).or_default().push((peer, Instant::now()));
        self.sources.get_mut(&peer).expect("checked above").in_flight += 1;
        Some(piece)
    }

    fn finish_request(&mut self, peer: P, piece: u64) -> Option<Instant> {
        let workers = self.in_flight.get_mut(&piece)?;
        let position = workers.iter().position(|(p, _)| *p == peer)?;
        let (_, since) = workers.remove(position);
        if workers.is_empty() {
            self.in_flight.remove(&piece);
        }
        if let Some(source) = self.sources.get_mut(&peer) {
            source.in_flight -= 1;
        }
        Some(since)
    }

    /// `peer` delivered `piece`, verified. Returns whether it was new.
    pub fn delivered(&mut self, peer: P, piece: u64) -> bool {
        if let Some(since) = self.finish_request(peer, piece)
            && let Some(source) = self.sources.get_mut(&peer)
        {
            let seconds = since.elapsed().max(Duration::from_millis(1)).as_secs_f64();
            let rate = self.piece_bytes / seconds * source.in_flight.max(1) as f64;
            source.rate = if source.delivered == 0 { rate } else { 0.7 * source.rate + 0.3 * rate };
            source.delivered += 1;
            source.failures = 0;
        }
        let new = !self.done.get(piece);
        if new {
            self.done.set(piece);
        }
        // Correctness: the other worker of an endgame duplicate stays counted until its own
        // answer arrives, so a source's window never frees a slot it still uses.
        new
    }

    /// `peer` failed to deliver `piece` (timeout, refusal, lost connection): someone else
    /// gets it.
    pub fn failed(&mut self, peer: P, piece: u64) {
        self.finish_request(peer, piece);
        if let Some(source) = self.sources.get_mut(&peer) {
            source.failures += 1;
        }
        self.cursor = self.cursor.min(piece);
    }

    /// How many failures in a row a source has.
    pub fn failures(&self, peer: P) -> u32 {
        self.sources.get(&peer).map_or(0, |s| s.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: u64 = PIECE_GROUPS * GROUP_BYTES;

    #[test]
    fn every_piece_is_handed_out_once_then_duplicated_in_the_endgame() {
        let mut scheduler = Scheduler::new(4 * PIECE, Bitmap::new(4));
        scheduler.add_source('a', None);
        scheduler.add_source('b', None);
        let a: Vec<u64> = std::iter::from_fn(|| scheduler.next('a')).collect();
        let b: Vec<u64> = std::iter::from_fn(|| scheduler.next('b')).collect();
        assert_eq!(a, [0, 1]);
        assert_eq!(b, [2, 3]);
        assert!(scheduler.delivered('a', 0));
        // Every piece is requested: 'a' now duplicates the oldest piece it is not on.
        assert_eq!(scheduler.next('a'), Some(2));
        assert!(scheduler.delivered('a', 2));
        assert!(!scheduler.delivered('b', 2), "the duplicate answer adds nothing");
        for piece in [1, 3] {
            let peer = if piece == 1 { 'a' } else { 'b' };
            scheduler.delivered(peer, piece);
        }
        assert!(scheduler.is_complete());
    }

    #[test]
    fn partial_holders_get_only_what_they_hold_and_failed_pieces_go_elsewhere() {
        let mut scheduler = Scheduler::new(3 * PIECE, Bitmap::new(3));
        let mut have = Bitmap::new(3);
        have.set(1);
        scheduler.add_source('p', Some(have));
        assert_eq!(scheduler.next('p'), Some(1));
        assert_eq!(scheduler.next('p'), None, "it holds nothing else");
        scheduler.failed('p', 1);
        scheduler.add_source('s', None);
        assert_eq!(scheduler.next('s'), Some(0));
        assert_eq!(scheduler.next('s'), Some(1), "the failed piece is handed out again");
        scheduler.remove_source('s');
        assert_eq!(scheduler.next('p'), Some(1), "a removed source's pieces are free again");
    }

    #[test]
    fn pieces_already_here_are_never_asked_for() {
        let mut done = Bitmap::new(3);
        done.set(0);
        done.set(2);
        let mut scheduler = Scheduler::new(3 * PIECE, done);
        scheduler.add_source(1u8, None);
        assert_eq!(scheduler.next(1), Some(1));
        assert_eq!(scheduler.next(1), None);
    }
}
