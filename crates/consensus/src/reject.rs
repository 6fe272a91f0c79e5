//! Why a header, block or transaction is invalid: values, never panics.

use peerchain_primitives::{AssetId, BlockHash, CompactTarget, OutPoint, TxId};

/// Why a transaction breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxReject {
    /// It spends nothing.
    #[error("transaction has no inputs")]
    NoInputs,
    /// It creates nothing.
    #[error("transaction has no outputs")]
    NoOutputs,
    /// It is larger than a block may be.
    #[error("transaction is {size} bytes, over the limit of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An output or the sum of outputs is negative or more than all money.
    #[error("output value out of range")]
    OutputOutOfRange,
    /// It spends one output twice.
    #[error("input {0:?} is spent twice in the transaction")]
    DuplicateInput(OutPoint),
    /// A coinbase input or witness where there should be none, or a malformed coinbase.
    #[error("misplaced or malformed coinbase input")]
    BadCoinbase,
    /// A coinbase output holds something other than coins.
    #[error("coinbase outputs must be coins")]
    CoinbaseToken,
    /// A multisig or escrow output with a threshold of zero, above its key count, or too many
    /// keys.
    #[error("malformed multisig lock")]
    BadMultisigLock,
    /// A loan output that asks to be repaid in nothing, or in a mint right.
    #[error("malformed loan lock")]
    BadLoanLock,
    /// It spends a loan's collateral by the borrower's path without repaying the lender at
    /// the same index.
    #[error("input {input} takes a loan's collateral back without repaying the lender in output {input}")]
    LoanNotRepaid {
        /// Which input.
        input: usize,
    },
    /// The output it spends does not exist or is already spent.
    #[error("input {0:?} is missing or already spent")]
    MissingInput(OutPoint),
    /// It spends a coinbase output that has not matured yet.
    #[error("input {outpoint:?} spends a coinbase output that matures at height {mature_at}")]
    ImmatureCoinbase {
        /// The coinbase output.
        outpoint: OutPoint,
        /// The first height at which it may be spent.
        mature_at: u32,
    },
    /// Its lock time is in the future.
    #[error("transaction is locked until height {lock_time}")]
    NotFinal {
        /// The lock time.
        lock_time: u32,
    },
    /// It creates more of an asset than it spends.
    #[error("outputs exceed inputs for {asset:?}")]
    Overspend {
        /// The asset.
        asset: AssetId,
    },
    /// A witness of the wrong kind for the lock it spends, or with a key the lock does not name.
    #[error("input {input} does not match the lock it spends")]
    WitnessMismatch {
        /// Which input.
        input: usize,
    },
    /// A hash-lock preimage that is not 32 bytes or does not hash to the lock's hash.
    #[error("input {input} gives a wrong preimage (it must be the 32 bytes hashed)")]
    BadPreimage {
        /// Which input.
        input: usize,
    },
    /// A refund before the refund height.
    #[error("input {input} refunds before height {refund_height}")]
    RefundTooEarly {
        /// Which input.
        input: usize,
        /// When the refund opens.
        refund_height: u32,
    },
    /// It issues the token its first input names, but a signature on that input does not
    /// commit to the whole transaction.
    #[error("token issuance needs every signature on the first input to commit to the whole transaction")]
    IssuanceNotAuthorised,
    /// It pays out less of a token than it spends: tokens are burnt only by burn outputs.
    #[error("inputs exceed outputs for {asset:?}; burn a token with an explicit burn output")]
    TokenNotConserved {
        /// The asset.
        asset: AssetId,
    },
    /// It issues a token without exactly one valid metadata output (a burn of zero of the new
    /// token carrying its name and decimals).
    #[error("token issuance needs exactly one valid metadata output")]
    BadTokenMetadata,
    /// It spends a mint right to mint, but a signature on it does not commit to the whole
    /// transaction.
    #[error(
        "input {outpoint:?} holds a mint right, and minting needs its signatures to commit to the whole transaction"
    )]
    MintNotAuthorised {
        /// The mint right spent.
        outpoint: OutPoint,
    },
    /// A signature past its expiry height.
    #[error("input {input} has a signature that expired at height {expiry}")]
    SignatureExpired {
        /// Which input.
        input: usize,
        /// The last height it was valid at.
        expiry: u32,
    },
    /// A public key that is not a usable curve point.
    #[error("input {input} has an invalid public key")]
    BadPublicKey {
        /// Which input.
        input: usize,
    },
    /// A signature that does not verify.
    #[error("input {input} has an invalid signature")]
    BadSignature {
        /// Which input.
        input: usize,
    },
}

/// Why a header or block breaks a rule. Invalid blocks are remembered and never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockReject {
    /// The hash does not meet the target.
    #[error("block {hash} does not meet its target")]
    BadProofOfWork {
        /// The block.
        hash: BlockHash,
    },
    /// The target is not the one difficulty adjustment requires.
    #[error("block {hash} has target {got:?}, expected {expected:?}")]
    BadDifficulty {
        /// The block.
        hash: BlockHash,
        /// The block's target.
        got: CompactTarget,
        /// The required target.
        expected: CompactTarget,
    },
    /// The time is not after the median of the previous eleven blocks.
    #[error("block {hash} time {time} is not after the median time past {median_time_past}")]
    TimeTooOld {
        /// The block.
        hash: BlockHash,
        /// Its time.
        time: u64,
        /// The median time past.
        median_time_past: u64,
    },
    /// The time is too far in the future of this node's clock.
    #[error("block {hash} time {time} is too far ahead of the local clock ({now})")]
    TimeTooNew {
        /// The block.
        hash: BlockHash,
        /// Its time.
        time: u64,
        /// The node's clock.
        now: u64,
    },
    /// An unknown header version.
    #[error("block {hash} has unknown version {version}")]
    BadVersion {
        /// The block.
        hash: BlockHash,
        /// Its version.
        version: u32,
    },
    /// The merkle root does not match the transactions.
    #[error("block {hash} has a wrong merkle root")]
    BadMerkleRoot {
        /// The block.
        hash: BlockHash,
    },
    /// The block is larger than the limit.
    #[error("block {hash} is {size} bytes, over the limit of {max}")]
    TooLarge {
        /// The block.
        hash: BlockHash,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The first transaction is not a coinbase, or a later one is.
    #[error("block {hash} must have exactly one coinbase, first")]
    BadCoinbasePosition {
        /// The block.
        hash: BlockHash,
    },
    /// The coinbase does not commit to the block's height.
    #[error("block {hash} coinbase height is {got}, expected {expected}")]
    BadCoinbaseHeight {
        /// The block.
        hash: BlockHash,
        /// What the coinbase says.
        got: u32,
        /// The block's height.
        expected: u32,
    },
    /// The coinbase pays more than the subsidy plus fees.
    #[error("block {hash} coinbase pays {paid} units, more than the {allowed} allowed")]
    CoinbaseTooLarge {
        /// The block.
        hash: BlockHash,
        /// What it pays.
        paid: u64,
        /// Subsidy plus fees.
        allowed: u64,
    },
    /// Two transactions with the same id.
    #[error("block {hash} contains transaction {txid} twice")]
    DuplicateTransaction {
        /// The block.
        hash: BlockHash,
        /// The repeated id.
        txid: TxId,
    },
    /// A transaction in it is invalid.
    #[error("block {hash} has invalid transaction {txid}: {reason}")]
    Transaction {
        /// The block.
        hash: BlockHash,
        /// The transaction.
        txid: TxId,
        /// Why.
        reason: TxReject,
    },
    /// It descends from a block already known to be invalid.
    #[error("block {hash} descends from invalid block {ancestor}")]
    InvalidAncestor {
        /// The block.
        hash: BlockHash,
        /// The invalid ancestor.
        ancestor: BlockHash,
    },
}

impl TxReject {
    /// Whether the rejection depends on the height the transaction is judged at: valid a
    /// block later or earlier (not final yet, an immature coinbase, a refund too early, a
    /// signature just expired). A peer a block away relays such a transaction in good faith,
    /// so it is never misbehaviour.
    pub fn depends_on_height(&self) -> bool {
        matches!(
            self,
            TxReject::NotFinal { .. }
                | TxReject::ImmatureCoinbase { .. }
                | TxReject::RefundTooEarly { .. }
                | TxReject::SignatureExpired { .. }
        )
    }
}

impl BlockReject {
    /// Whether the body may not be the one its header commits to: the header's block is not
    /// to blame, only whoever sent the body.
    pub fn is_mutation(&self) -> bool {
        matches!(self, BlockReject::BadMerkleRoot { .. })
    }

    /// Whether the rejection depends on the local clock (a header a little ahead of it): the
    /// same header is valid a few minutes later or on a machine whose clock is right, so a
    /// peer that sends it is not misbehaving.
    pub fn depends_on_clock(&self) -> bool {
        matches!(self, BlockReject::TimeTooNew { .. })
    }

    /// Whether the block's header is fine and only its ancestry is condemned: a peer may
    /// have relayed such a header before anyone knew.
    pub fn is_inherited(&self) -> bool {
        matches!(self, BlockReject::InvalidAncestor { .. })
    }
}

/// A failure to read the UTXO set: not the block's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("UTXO set could not be read: {0}")]
pub struct ViewError(pub String);

/// Why validation did not accept: the block's fault, or the store's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The block breaks a rule.
    #[error(transparent)]
    Reject(#[from] BlockReject),
    /// The UTXO set could not be read; the block may be fine.
    #[error(transparent)]
    View(#[from] ViewError),
}
