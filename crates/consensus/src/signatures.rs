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

use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use rayon::prelude::*;

/// How many signatures form one consensus batch.
pub const BATCH_SIZE: usize = 64;

/// Where a signature sits: which transaction of the block, which input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigOrigin {
    /// The transaction's index in the block (or 0 for a lone transaction).
    pub tx_index: u32,
    /// The input's index in the transaction.
    pub input: u32,
}

/// Signature checks waiting to be verified.
#[derive(Debug, Default)]
pub struct SigBatch {
    keys: Vec<VerifyingKey>,
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
    pub fn push(&mut self, key: VerifyingKey, message: [u8; 32], signature: Signature, origin: SigOrigin) {
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

    /// Verifies all, group by group on all cores. On failure returns the origin of the first
    /// failing signature (in block order) that can be singled out.
    pub fn verify_consensus(&self) -> Result<(), SigOrigin> {
        let groups = self.len().div_ceil(BATCH_SIZE);
        let failed: Option<usize> = (0..groups).into_par_iter().filter(|&group| !self.verify_group(group)).min();
        match failed {
            None => Ok(()),
            Some(group) => Err(self.culprit(group)),
        }
    }

    /// Verifies each signature with `verify_strict`: the mempool's stricter policy.
    pub fn verify_strict(&self) -> Result<(), SigOrigin> {
        for i in 0..self.len() {
            if self.keys[i].verify_strict(&self.messages[i], &self.signatures[i]).is_err() {
                return Err(self.origins[i]);
            }
        }
        Ok(())
    }

    fn range(&self, group: usize) -> std::ops::Range<usize> {
        group * BATCH_SIZE..((group + 1) * BATCH_SIZE).min(self.len())
    }

    fn verify_group(&self, group: usize) -> bool {
        let range = self.range(group);
        let messages: Vec<&[u8]> = self.messages[range.clone()].iter().map(|m| &m[..]).collect();
        ed25519_dalek::verify_batch(&messages, &self.signatures[range.clone()], &self.keys[range]).is_ok()
    }

    fn culprit(&self, group: usize) -> SigOrigin {
        let range = self.range(group);
        let start = range.start;
        range
            .into_iter()
            .find(|&i| self.keys[i].verify(&self.messages[i], &self.signatures[i]).is_err())
            .map_or(self.origins[start], |i| self.origins[i])
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
            batch.push(key.verifying_key(), message, signature, SigOrigin { tx_index: i as u32, input: 0 });
        }
        batch
    }

    #[test]
    fn valid_batches_pass_and_a_bad_signature_is_found() {
        assert_eq!(batch_of(0, None).verify_consensus(), Ok(()));
        assert_eq!(batch_of(200, None).verify_consensus(), Ok(()));
        assert_eq!(batch_of(200, None).verify_strict(), Ok(()));
        for bad in [0, 63, 64, 199] {
            let batch = batch_of(200, Some(bad));
            assert_eq!(batch.verify_consensus(), Err(SigOrigin { tx_index: bad as u32, input: 0 }));
            assert_eq!(batch.verify_strict(), Err(SigOrigin { tx_index: bad as u32, input: 0 }));
        }
    }
}
