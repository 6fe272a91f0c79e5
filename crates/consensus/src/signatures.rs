//! Signature checks, collected while a block's transactions are checked and then verified in
//! batches on every core.
//!
//! Correctness: ed25519-dalek's batch equation is cofactorless and its random coefficients
//! are derived from the batch's own contents, so whether a crafted signature with a
//! small-order component passes could depend on which signatures share its batch. The batch
//! boundaries are therefore part of consensus: signatures are grouped in block order into
//! fixed groups of [`BATCH_SIZE`], and every node, whatever its core count, verifies the same
//! groups. Transactions entering the mempool are held to the stricter `verify_strict`, which
//! implies passing in any group.
//!
//! The [`SigCache`] remembers signatures that passed `verify_strict` at mempool entry. A
//! consensus group whose every signature is in it passes whatever the batch (each term of the
//! batch equation is zero), so it is not verified again; a group with any other signature is
//! verified whole, exactly as without a cache. Validity never depends on the cache.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use peerchain_primitives::PublicKey;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// How many signatures form one consensus batch. 256 verifies about a fifth faster per
/// signature than 64 with dalek's multiscalar multiplication, and a full block still makes
/// hundreds of groups to spread over cores.
pub const BATCH_SIZE: usize = 256;

/// Where a signature sits: which transaction of the block, which input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigOrigin {
    /// The transaction's index in the block (or 0 for a lone transaction).
    pub tx_index: u32,
    /// The input's index in the transaction.
    pub input: u32,
}

/// Why a signature check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigFailure {
    /// The public key is not a curve point, or is one of small order.
    BadKey(SigOrigin),
    /// The signature does not verify.
    BadSignature(SigOrigin),
}

/// Somewhere signature checks are put while a transaction's spends are checked.
pub trait SigSink {
    /// Adds one check.
    fn push(&mut self, key: PublicKey, message: [u8; 32], signature: Signature, origin: SigOrigin);
}

impl SigSink for SigBatch {
    fn push(&mut self, key: PublicKey, message: [u8; 32], signature: Signature, origin: SigOrigin) {
        SigBatch::push(self, key, message, signature, origin);
    }
}

/// Signature checks waiting to be verified. Public keys are kept as bytes and decompressed
/// in the parallel verification step: decompression costs about as much as a third of a
/// verification, and on the validating thread it would not scale with cores.
#[derive(Debug, Default)]
pub struct SigBatch {
    keys: Vec<PublicKey>,
    messages: Vec<[u8; 32]>,
    signatures: Vec<Signature>,
    origins: Vec<SigOrigin>,
}

impl SigBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `n` checks.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            keys: Vec::with_capacity(n),
            messages: Vec::with_capacity(n),
            signatures: Vec::with_capacity(n),
            origins: Vec::with_capacity(n),
        }
    }

    /// Adds one check.
    pub fn push(&mut self, key: PublicKey, message: [u8; 32], signature: Signature, origin: SigOrigin) {
        self.keys.push(key);
        self.messages.push(message);
        self.signatures.push(signature);
        self.origins.push(origin);
    }

    /// How many checks are waiting.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies all, group by group on all cores. On failure returns the first failure (in
    /// block order) that can be singled out.
    pub fn verify_consensus(&self) -> Result<(), SigFailure> {
        let groups = self.len().div_ceil(BATCH_SIZE);
        let failed: Option<usize> = (0..groups).into_par_iter().filter(|&group| !self.verify_group(group)).min();
        match failed {
            None => Ok(()),
            Some(group) => Err(self.culprit(group)),
        }
    }

    /// Verifies each signature with `verify_strict`: the mempool's stricter policy.
    pub fn verify_strict(&self) -> Result<(), SigFailure> {
        for i in 0..self.len() {
            let key = self.keys[i].verifying_key().ok_or(SigFailure::BadKey(self.origins[i]))?;
            if key.verify_strict(&self.messages[i], &self.signatures[i]).is_err() {
                return Err(SigFailure::BadSignature(self.origins[i]));
            }
        }
        Ok(())
    }

    fn range(&self, group: usize) -> std::ops::Range<usize> {
        group * BATCH_SIZE..((group + 1) * BATCH_SIZE).min(self.len())
    }

    /// Verifies the whole list as one consensus group.
    fn verify_as_group(&self) -> Result<(), SigFailure> {
        if self.verify_range(0..self.len()) { Ok(()) } else { Err(self.culprit_in(0..self.len())) }
    }

    fn verify_group(&self, group: usize) -> bool {
        self.verify_range(self.range(group))
    }

    fn verify_range(&self, range: std::ops::Range<usize>) -> bool {
        let mut keys: Vec<VerifyingKey> = Vec::with_capacity(range.len());
        for key in &self.keys[range.clone()] {
            match key.verifying_key() {
                Some(key) => keys.push(key),
                None => return false,
            }
        }
        let messages: Vec<&[u8]> = self.messages[range.clone()].iter().map(|m| &m[..]).collect();
        ed25519_dalek::verify_batch(&messages, &self.signatures[range], &keys).is_ok()
    }

    fn culprit(&self, group: usize) -> SigFailure {
        self.culprit_in(self.range(group))
    }

    fn culprit_in(&self, range: std::ops::Range<usize>) -> SigFailure {
        let start = range.start;
        for i in range {
            let Some(key) = self.keys[i].verifying_key() else { return SigFailure::BadKey(self.origins[i]) };
            if key.verify(&self.messages[i], &self.signatures[i]).is_err() {
                return SigFailure::BadSignature(self.origins[i]);
            }
        }
        // Every signature passes alone but the group does not: only a crafted small-order
        // component can do that; the group's first signature takes the blame.
        SigFailure::BadSignature(self.origins[start])
    }
}

/// Signatures known to pass `verify_strict`, by the hash of key, message and signature;
/// bounded, the oldest forgotten first (Bitcoin Core keeps such a cache so that a block of
/// transactions its mempool checked connects without checking them again).
#[derive(Debug)]
pub struct SigCache {
    inner: Mutex<CacheInner>,
}

#[derive(Debug)]
struct CacheInner {
    known: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
    capacity: usize,
}

impl SigCache {
    /// A cache of at most `capacity` signatures (about 100 bytes each).
    pub fn new(capacity: usize) -> Self {
        Self { inner: Mutex::new(CacheInner { known: HashSet::new(), order: VecDeque::new(), capacity }) }
    }

    /// The cache's key of each signature of `batch`: the hash of key, message and signature.
    fn entries(batch: &SigBatch) -> Vec<[u8; 32]> {
        (0..batch.len())
            .map(|i| {
                let mut hasher = Sha256::new();
                hasher.update(batch.keys[i].0);
                hasher.update(batch.messages[i]);
                hasher.update(batch.signatures[i].to_bytes());
                hasher.finalize().into()
            })
            .collect()
    }

    /// Remembers every signature of `batch`, which must have passed
    /// [`SigBatch::verify_strict`].
    pub fn insert_strictly_verified(&self, batch: &SigBatch) {
        let entries = Self::entries(batch);
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for entry in entries {
            if inner.known.insert(entry) {
                inner.order.push_back(entry);
            }
            while inner.order.len() > inner.capacity {
                let Some(oldest) = inner.order.pop_front() else { break };
                inner.known.remove(&oldest);
            }
        }
    }

    /// Whether every signature of `batch` is remembered.
    pub fn holds_all(&self, batch: &SigBatch) -> bool {
        let entries = Self::entries(batch);
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        entries.iter().all(|entry| inner.known.contains(entry))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).order.len()
    }
}

/// What the verification tasks of one block have found so far.
#[derive(Default)]
struct Progress {
    pending: usize,
    /// The failing group with the lowest index, and its failure.
    first_failure: Option<(usize, SigFailure)>,
}

/// Verifies a block's signatures while they are still being collected: every full group of
/// [`BATCH_SIZE`] goes to the thread pool at once, so verification overlaps the lookups and
/// store writes that follow; [`PipelinedVerifier::finish`] waits for the last group. Groups
/// are the same consensus groups as [`SigBatch::verify_consensus`] makes.
pub struct PipelinedVerifier {
    current: SigBatch,
    next_group: usize,
    progress: std::sync::Arc<(std::sync::Mutex<Progress>, std::sync::Condvar)>,
    cache: Option<Arc<SigCache>>,
    /// Groups found whole in the cache, not verified again.
    cached_groups: usize,
}

impl Default for PipelinedVerifier {
    fn default() -> Self {
        Self {
            current: SigBatch::with_capacity(BATCH_SIZE),
            next_group: 0,
            progress: Default::default(),
            cache: None,
            cached_groups: 0,
        }
    }
}

impl std::fmt::Debug for PipelinedVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelinedVerifier")
            .field("groups", &self.next_group)
            .field("cached_groups", &self.cached_groups)
            .finish()
    }
}

impl SigSink for PipelinedVerifier {
    fn push(&mut self, key: PublicKey, message: [u8; 32], signature: Signature, origin: SigOrigin) {
        self.current.push(key, message, signature, origin);
        if self.current.len() == BATCH_SIZE {
            self.dispatch();
        }
    }
}

impl PipelinedVerifier {
    /// A verifier with nothing queued.
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier that skips groups whose every signature `cache` holds (none with no cache).
    pub fn with_cache(cache: Option<Arc<SigCache>>) -> Self {
        Self { cache, ..Self::default() }
    }

    /// How many groups were found whole in the cache so far.
    #[cfg(test)]
    fn cached_groups(&self) -> usize {
        self.cached_groups
    }

    fn dispatch(&mut self) {
        let group = std::mem::replace(&mut self.current, SigBatch::with_capacity(BATCH_SIZE));
        let index = self.next_group;
        self.next_group += 1;
        // Correctness: strictly valid signatures pass in any batch, so a group made only of
        // them passes; any other group is verified whole, as without a cache.
        if self.cache.as_ref().is_some_and(|cache| cache.holds_all(&group)) {
            self.cached_groups += 1;
            return;
        }
        let progress = self.progress.clone();
        progress.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pending += 1;
        rayon::spawn(move || {
            let result = group.verify_as_group();
            let (lock, done) = &*progress;
            let mut state = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            state.pending -= 1;
            if let Err(failure) = result
                && state.first_failure.is_none_or(|(first, _)| index < first)
            {
                state.first_failure = Some((index, failure));
            }
            done.notify_all();
        });
    }

    /// Waits for every group; the failure of the earliest failing group, if any.
    pub fn finish(&mut self) -> Result<(), SigFailure> {
        if !self.current.is_empty() {
            self.dispatch();
        }
        let (lock, done) = &*self.progress;
        let mut state = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while state.pending > 0 {
            state = done.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        match state.first_failure {
            Some((_, failure)) => Err(failure),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    fn batch_of(n: usize, corrupt: Option<usize>) -> SigBatch {
        let mut batch = SigBatch::new();
        for i in 0..n {
            let key = SigningKey::from_bytes(&[(i % 251) as u8 + 1; 32]);
            let message = [i as u8; 32];
            let mut signature = key.sign(&message);
            if corrupt == Some(i) {
                let mut bytes = signature.to_bytes();
                bytes[0] ^= 1;
                signature = Signature::from_bytes(&bytes);
            }
            batch.push(
                PublicKey(key.verifying_key().to_bytes()),
                message,
                signature,
                SigOrigin { tx_index: i as u32, input: 0 },
            );
        }
        batch
    }

    #[test]
    fn valid_batches_pass_and_a_bad_signature_is_found() {
        assert_eq!(batch_of(0, None).verify_consensus(), Ok(()));
        assert_eq!(batch_of(200, None).verify_consensus(), Ok(()));
        assert_eq!(batch_of(200, None).verify_strict(), Ok(()));
        for bad in [0, 255, 256, 599] {
            let batch = batch_of(600, Some(bad));
            let origin = SigOrigin { tx_index: bad as u32, input: 0 };
            assert_eq!(batch.verify_consensus(), Err(SigFailure::BadSignature(origin)));
            assert_eq!(batch.verify_strict(), Err(SigFailure::BadSignature(origin)));
        }
        // A key that is not a usable point fails as a key, in the parallel step too.
        let mut batch = batch_of(300, None);
        let mut identity = [0u8; 32];
        identity[0] = 1;
        batch.keys[270] = PublicKey(identity);
        let origin = SigOrigin { tx_index: 270, input: 0 };
        assert_eq!(batch.verify_consensus(), Err(SigFailure::BadKey(origin)));
        assert_eq!(batch.verify_strict(), Err(SigFailure::BadKey(origin)));
    }

    fn pipelined(batch: &SigBatch) -> Result<(), SigFailure> {
        let mut verifier = PipelinedVerifier::new();
        for i in 0..batch.len() {
            verifier.push(batch.keys[i], batch.messages[i], batch.signatures[i], batch.origins[i]);
        }
        verifier.finish()
    }

    fn pipelined_with(batch: &SigBatch, cache: &Arc<SigCache>) -> (Result<(), SigFailure>, usize) {
        let mut verifier = PipelinedVerifier::with_cache(Some(cache.clone()));
        for i in 0..batch.len() {
            verifier.push(batch.keys[i], batch.messages[i], batch.signatures[i], batch.origins[i]);
        }
        let result = verifier.finish();
        (result, verifier.cached_groups())
    }

    /// Some signatures of `batch` as a batch of their own.
    fn part(batch: &SigBatch, range: std::ops::Range<usize>) -> SigBatch {
        let mut out = SigBatch::new();
        for i in range {
            out.push(batch.keys[i], batch.messages[i], batch.signatures[i], batch.origins[i]);
        }
        out
    }

    #[test]
    fn cached_groups_are_skipped_and_a_bad_signature_is_still_found() {
        let batch = batch_of(600, None);
        let cache = Arc::new(SigCache::new(10_000));
        assert_eq!(pipelined_with(&batch, &cache), (Ok(()), 0));
        // The first two groups' signatures passed the mempool: only the third is verified.
        let mempool = part(&batch, 0..2 * BATCH_SIZE);
        assert_eq!(mempool.verify_strict(), Ok(()));
        cache.insert_strictly_verified(&mempool);
        assert_eq!(pipelined_with(&batch, &cache), (Ok(()), 2));
        // A bad signature in the uncached group is still caught...
        let bad = batch_of(600, Some(550));
        assert_eq!(
            pipelined_with(&bad, &cache).0,
            Err(SigFailure::BadSignature(SigOrigin { tx_index: 550, input: 0 }))
        );
        // ...and so is one in a group where all others are cached: that group is verified whole.
        let bad = batch_of(600, Some(100));
        assert_eq!(
            pipelined_with(&bad, &cache),
            (Err(SigFailure::BadSignature(SigOrigin { tx_index: 100, input: 0 })), 1)
        );
    }

    #[test]
    fn the_cache_forgets_its_oldest_beyond_capacity() {
        let batch = batch_of(300, None);
        let cache = Arc::new(SigCache::new(BATCH_SIZE));
        cache.insert_strictly_verified(&batch);
        assert_eq!(cache.len(), BATCH_SIZE);
        // The first group's oldest 44 are gone: it is verified again; the second (the last 44)
        // is still known.
        assert_eq!(pipelined_with(&batch, &cache), (Ok(()), 1));
        assert_eq!(pipelined_with(&part(&batch, 44..300), &cache), (Ok(()), 1));
    }

    #[test]
    fn the_pipelined_verifier_agrees_with_the_batch() {
        assert_eq!(pipelined(&batch_of(0, None)), Ok(()));
        assert_eq!(pipelined(&batch_of(700, None)), Ok(()));
        for bad in [[3, 650], [300, 301], [699, 10]] {
            let mut batch = batch_of(700, Some(bad[0]));
            let mut bytes = batch.signatures[bad[1]].to_bytes();
            bytes[5] ^= 4;
            batch.signatures[bad[1]] = Signature::from_bytes(&bytes);
            assert_eq!(pipelined(&batch), batch.verify_consensus(), "bad {bad:?}");
            let first = bad[0].min(bad[1]) as u32;
            assert_eq!(pipelined(&batch), Err(SigFailure::BadSignature(SigOrigin { tx_index: first, input: 0 })));
        }
    }
}
