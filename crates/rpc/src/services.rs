//! What the RPC server asks of the node, as traits the node implements: file sharing, and
//! sending transactions to the network. Their errors are domain errors ([`ServiceError`],
//! the mempool's refusals); this crate alone turns them into JSON-RPC codes.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use peerchain_chain::SubmitTxError;
use peerchain_market::{Listed, LoanRecord, OfferId, TokenInfo, Trade};
use peerchain_primitives::{
    Amount, AssetId, ContentId, FeeRate, KeyHash, Lock, OutPoint, PublicKey, Transaction, TxId,
};

use crate::RpcError;

/// A boxed future, so that the service can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A blob in the node's store.
#[derive(Debug, Clone)]
pub struct FileEntry {
    /// Its content id.
    pub id: ContentId,
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it is a directory.
    pub directory: bool,
    /// Bytes verified and stored.
    pub verified_bytes: u64,
    /// What searches find it by.
    pub keywords: Vec<String>,
    /// Its price in base units, if this node sells it.
    pub price: Option<u64>,
}

/// Where a download stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadState {
    /// Looking for providers, or proving the size.
    Finding,
    /// Fetching pieces.
    Downloading,
    /// Complete and written to its path.
    Done,
    /// Given up; see the error.
    Failed,
}

/// A download's progress.
#[derive(Debug, Clone)]
pub struct Download {
    /// The content.
    pub id: ContentId,
    /// Its name (empty until a provider said).
    pub name: String,
    /// Its size (0 until proven).
    pub size: u64,
    /// Bytes verified so far.
    pub verified_bytes: u64,
    /// Peers that served at least one piece.
    pub sources: usize,
    /// Peers currently asked for pieces.
    pub peers: usize,
    /// The state.
    pub state: DownloadState,
    /// Where the result goes.
    pub path: PathBuf,
    /// Why it failed.
    pub error: Option<String>,
    /// Recent download rate in bytes per second.
    pub rate: u64,
    /// The price of content bought (base units), 0 for content shared for free.
    pub price: u64,
    /// What the download has paid so far.
    pub paid: u64,
}

/// A search hit, merged over the DHT and the flooded query.
#[derive(Debug, Clone)]
pub struct FoundFile {
    /// The content.
    pub id: ContentId,
    /// Its name.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// Whether it is a directory.
    pub directory: bool,
    /// How many peers hold it.
    pub providers: usize,
}

/// Which overlay a search asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchVia {
    /// Both, merged.
    Both,
    /// Keyword provider records in the DHT.
    Dht,
    /// A query flooded to neighbours with a hop limit.
    Flood,
}

/// What the node does for the `file.*` methods.
pub trait FileService: Send + Sync {
    /// Adds a file or directory at `path` (on the node's machine), with extra keywords.
    fn add(&self, path: PathBuf, keywords: Vec<String>) -> BoxFuture<'_, Result<FileEntry, ServiceError>>;
    /// Starts (or joins) the download of `id` to `output`, paying up to `pay_up_to` base
    /// units if nobody shares it for free (`passphrase` signs the payments).
    fn get(
        &self,
        id: ContentId,
        output: PathBuf,
        pay_up_to: Option<u64>,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<Download, ServiceError>>;
    /// Sells a blob of the store for `price` base units (paid into the wallet), or shares it
    /// for free again with `None`.
    fn sell(
        &self,
        id: ContentId,
        price: Option<u64>,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<FileEntry, ServiceError>>;
    /// A download's progress, as soon as it ends or after `wait`, whichever comes first.
    fn status(&self, id: ContentId, wait: Duration) -> BoxFuture<'_, Result<Download, ServiceError>>;
    /// Files matching every word.
    fn search(&self, words: Vec<String>, via: SearchVia) -> BoxFuture<'_, Result<Vec<FoundFile>, ServiceError>>;
    /// The store's blobs.
    fn list(&self) -> BoxFuture<'_, Result<Vec<FileEntry>, ServiceError>>;
    /// Stops serving and deletes a blob; whether it was there.
    fn remove(&self, id: ContentId) -> BoxFuture<'_, Result<bool, ServiceError>>;
    /// Bytes served and received since the node started, and the downloads running.
    fn totals(&self) -> FileTotals;
}

/// File sharing's counters, for metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileTotals {
    /// Bytes of content served to peers.
    pub uploaded_bytes: u64,
    /// Bytes of content received from peers (verified or not).
    pub downloaded_bytes: u64,
    /// Downloads finding holders or fetching.
    pub active_downloads: usize,
    /// Pieces peers served that failed verification (each source is dropped and penalised).
    pub bad_pieces: u64,
}

impl ServiceError {
    /// The service error for a wallet error, keeping its kind.
    pub fn from_wallet(e: peerchain_wallet::Error) -> ServiceError {
        use peerchain_wallet::Error as W;
        let message = e.to_string();
        match e {
            W::InsufficientFunds { .. } | W::InsufficientAsset { .. } => ServiceError::InsufficientFunds(message),
            W::PassphraseRequired | W::PoolExhausted | W::WrongPassphrase => ServiceError::Locked(message),
            W::Missing(_) => ServiceError::NoWallet(message),
            W::AmountTooLarge
            | W::AmountTooSmall
            | W::TooManyInputs { .. }
            | W::NotSpendable(_)
            | W::Metadata(_)
            | W::InvalidMnemonic(_) => ServiceError::InvalidInput(message),
            _ => ServiceError::Internal(message),
        }
    }
}

/// How the node sends a transaction to the network: into its mempool (which validates it),
/// then to its peers. Written once, in the node, for every caller.
pub trait Relay: Send + Sync {
    /// Submits `tx` and, once the mempool accepted it, publishes it.
    fn submit(&self, tx: Transaction) -> BoxFuture<'_, Result<TxId, SubmitTxError>>;
}

/// An offer of the book as the market shows it.
#[derive(Debug, Clone)]
pub struct BookEntry {
    /// The offer, checked.
    pub listed: Listed,
    /// Whether this node's wallet made it.
    pub mine: bool,
    /// A waiting transaction that spends its coin (a take or a cancel), if any.
    pub taken_by: Option<TxId>,
}

/// Offers to make: `give` for `want`, split into `ladder` offers whose prices rise by
/// `step_percent` each (one offer when `ladder` is 1).
#[derive(Debug, Clone)]
pub struct OfferRequest {
    /// What to give, in total.
    pub give: (AssetId, Amount),
    /// What to ask for it, in total at the first price.
    pub want: (AssetId, Amount),
    /// Blocks from the tip until the offers expire.
    pub expires: u32,
    /// How many offers.
    pub ladder: u32,
    /// How much dearer each offer of the ladder is than the one before, in percent.
    pub step_percent: f64,
    /// The fee rate of the transaction that makes coins of the offers' sizes, if needed.
    pub fee_rate: Option<FeeRate>,
    /// The wallet's passphrase, if it has one.
    pub passphrase: Option<String>,
}

/// Offers made.
#[derive(Debug, Clone)]
pub struct MadeOffers {
    /// Their ids, cheapest first.
    pub ids: Vec<OfferId>,
    /// The transaction that made coins of the offers' sizes, if one was needed: the offers
    /// are published once it confirms.
    pub funding: Option<TxId>,
    /// The last height at which they can be taken.
    pub expires_at: u32,
}

/// How much the book holds.
#[derive(Debug, Clone, Default)]
pub struct BookSummary {
    /// Swap offers.
    pub offers: usize,
    /// Loan offers.
    pub loan_offers: usize,
    /// This node's own offers among them.
    pub mine: usize,
    /// The bytes of offers it holds.
    pub bytes: usize,
    /// Its limit: past it, the offers staking least go first.
    pub max_bytes: usize,
    /// Offers per pair (give, want).
    pub pairs: Vec<((AssetId, AssetId), usize)>,
}

/// What the node does for the `market.*` and `token.list` methods.
pub trait MarketService: Send + Sync {
    /// How much the book holds.
    fn summary(&self) -> BoxFuture<'_, Result<BookSummary, ServiceError>>;
    /// Every token issued on the chain.
    fn tokens(&self) -> BoxFuture<'_, Result<Vec<TokenInfo>, ServiceError>>;
    /// The book, of one pair (either side) or all, cheapest first per side, at most `limit`.
    fn book(
        &self,
        pair: Option<(AssetId, AssetId)>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<BookEntry>, ServiceError>>;
    /// The latest trades on chain, newest first.
    fn trades(&self, pair: Option<(AssetId, AssetId)>, limit: usize)
    -> BoxFuture<'_, Result<Vec<Trade>, ServiceError>>;
    /// Makes offers.
    fn offer(&self, request: OfferRequest) -> BoxFuture<'_, Result<MadeOffers, ServiceError>>;
    /// Takes offers, all in one transaction.
    fn take(
        &self,
        ids: Vec<OfferId>,
        fee_rate: Option<FeeRate>,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<TxId, ServiceError>>;
    /// Cancels an own offer by spending its coin back to the wallet.
    fn cancel(&self, id: OfferId, passphrase: Option<String>) -> BoxFuture<'_, Result<TxId, ServiceError>>;
}

/// An escrow to open, as its buyer.
#[derive(Debug, Clone)]
pub struct EscrowRequest {
    /// The seller's key (`wallet.key` on the seller's node).
    pub seller: PublicKey,
    /// The arbiter's key, if a third party may decide a dispute.
    pub arbiter: Option<PublicKey>,
    /// What is held.
    pub asset: AssetId,
    /// How much.
    pub amount: Amount,
    /// Blocks from the tip until the buyer may take it back alone.
    pub timeout: u32,
    /// The fee rate, or the node's estimate.
    pub fee_rate: Option<FeeRate>,
    /// The wallet's passphrase, if it has one.
    pub passphrase: Option<String>,
}

/// A contract output made: where it is, and the transaction that made it.
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    /// The contract's output.
    pub id: OutPoint,
    /// The transaction.
    pub txid: TxId,
}

/// Which party an arbiter rules for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The escrow goes back to the buyer.
    Buyer,
    /// The escrow goes to the seller.
    Seller,
}

/// An escrow the wallet is party to.
#[derive(Debug, Clone)]
pub struct EscrowEntry {
    /// Its output.
    pub id: OutPoint,
    /// `buyer`, `seller` or `arbiter`.
    pub role: &'static str,
    /// `open`, `disputed`, `released`, `refunded` or `resolved`.
    pub state: &'static str,
    /// What it holds.
    pub asset: AssetId,
    /// How much.
    pub amount: Amount,
    /// The buyer, seller and arbiter (if any) keys.
    pub keys: Vec<PublicKey>,
    /// The height from which the buyer may take it back alone.
    pub refundable_at: u32,
    /// Where the transaction that opened it stands: its height, if confirmed.
    pub height: Option<u32>,
    /// The transaction that paid it out, if any.
    pub settled_by: Option<TxId>,
    /// Its lock, whose address any wallet can pay.
    pub lock: Lock,
}

/// A loan to offer, as its lender.
#[derive(Debug, Clone)]
pub struct LoanOfferRequest {
    /// What is lent, and how much.
    pub principal: (AssetId, Amount),
    /// How much of the same asset the borrower repays.
    pub repay: Amount,
    /// Blocks from the loan's start until the lender may claim the collateral.
    pub term: u32,
    /// The collateral the borrower locks.
    pub collateral: (AssetId, Amount),
    /// Blocks from the tip until the offer expires.
    pub expires: u32,
    /// The fee rate of a transaction making a coin of the principal's size, if needed.
    pub fee_rate: Option<FeeRate>,
    /// The wallet's passphrase, if it has one.
    pub passphrase: Option<String>,
}

/// A loan offer or a loan the wallet is party to.
#[derive(Debug, Clone)]
pub struct LoanEntry {
    /// The offer's id (an offer) or the collateral's output (a loan).
    pub id: String,
    /// `lender` or `borrower`.
    pub role: &'static str,
    /// `offered`, `active`, `defaulted` (the term is over; the lender may claim), `repaid` or
    /// `claimed`.
    pub state: &'static str,
    /// What is lent (known for offers).
    pub principal: Option<(AssetId, Amount)>,
    /// What the borrower repays.
    pub repay: (AssetId, Amount),
    /// The collateral.
    pub collateral: (AssetId, Amount),
    /// The term in blocks.
    pub term: u32,
    /// The height from which the lender may claim (loans that have started).
    pub due_at: Option<u32>,
    /// The transaction that ended it, if any.
    pub settled_by: Option<TxId>,
    /// The other party's key and its record of loans on chain (loans that have started).
    pub counterparty: Option<(KeyHash, LoanRecord)>,
}

/// What the node does for the `escrow.*` and `loan.*` methods.
pub trait ContractService: Send + Sync {
    /// Opens an escrow as the buyer.
    fn escrow_open(&self, request: EscrowRequest) -> BoxFuture<'_, Result<Opened, ServiceError>>;
    /// The lock of an escrow as `escrow_open` would make it (the buyer's key a fresh one of
    /// the wallet), without paying it: for another wallet to fund at its address.
    fn escrow_lock(&self, request: EscrowRequest) -> BoxFuture<'_, Result<Lock, ServiceError>>;
    /// The escrows the wallet is party to, newest first.
    fn escrows(&self) -> BoxFuture<'_, Result<Vec<EscrowEntry>, ServiceError>>;
    /// The buyer releases an escrow to the seller: signs its half of the payout and
    /// publishes it for the seller's node to complete. Gives the payout's id.
    fn escrow_release(&self, id: OutPoint, passphrase: Option<String>) -> BoxFuture<'_, Result<TxId, ServiceError>>;
    /// The buyer takes an escrow back alone, from its timeout on.
    fn escrow_refund(
        &self,
        id: OutPoint,
        fee_rate: Option<FeeRate>,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<TxId, ServiceError>>;
    /// A buyer or seller disputes an escrow, for its arbiter to rule.
    fn escrow_dispute(&self, id: OutPoint, passphrase: Option<String>) -> BoxFuture<'_, Result<(), ServiceError>>;
    /// The arbiter rules for a party: signs its half of a payout to it, for the party's node
    /// to complete. Gives the payout's id.
    fn escrow_resolve(
        &self,
        id: OutPoint,
        to: Party,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<TxId, ServiceError>>;
    /// Offers a loan as the lender; gives the offer's id, the funding transaction if one was
    /// needed, and the offer's expiry.
    fn loan_offer(&self, request: LoanOfferRequest) -> BoxFuture<'_, Result<MadeOffers, ServiceError>>;
    /// Loan offers in the book, each with its lender's record of loans on chain.
    fn loan_book(&self) -> BoxFuture<'_, Result<Vec<(BookEntry, LoanRecord)>, ServiceError>>;
    /// A key's record of loans on chain: facts, not a score.
    fn loan_record(&self, key: KeyHash) -> BoxFuture<'_, Result<LoanRecord, ServiceError>>;
    /// The wallet's loan offers and loans.
    fn loans(&self) -> BoxFuture<'_, Result<Vec<LoanEntry>, ServiceError>>;
    /// Takes a loan offer as the borrower: the collateral is locked and the principal paid
    /// in one transaction.
    fn loan_take(
        &self,
        offer: OfferId,
        fee_rate: Option<FeeRate>,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<Opened, ServiceError>>;
    /// Repays a loan as the borrower, taking the collateral back.
    fn loan_repay(
        &self,
        id: OutPoint,
        fee_rate: Option<FeeRate>,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<TxId, ServiceError>>;
    /// Claims a loan's collateral as the lender, once the term is over.
    fn loan_claim(
        &self,
        id: OutPoint,
        fee_rate: Option<FeeRate>,
        passphrase: Option<String>,
    ) -> BoxFuture<'_, Result<TxId, ServiceError>>;
}

/// What a service of the node (file sharing, and what comes next) reports when a call fails:
/// its kind decides the JSON-RPC error code, its message is shown as it is. Services know
/// nothing of JSON-RPC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The caller asked for something impossible (a path that is not a directory, no words).
    #[error("{0}")]
    InvalidInput(String),
    /// What the caller named does not exist here.
    #[error("{0}")]
    NotFound(String),
    /// The wallet cannot pay for it.
    #[error("{0}")]
    InsufficientFunds(String),
    /// The wallet needs its passphrase, or was given a wrong one.
    #[error("{0}")]
    Locked(String),
    /// There is no wallet.
    #[error("{0}")]
    NoWallet(String),
    /// The mempool refused the transaction.
    #[error("{0}")]
    Rejected(String),
    /// The node failed.
    #[error("{0}")]
    Internal(String),
}

impl From<ServiceError> for RpcError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::InvalidInput(message) => RpcError::new(RpcError::INVALID_PARAMS, message),
            ServiceError::NotFound(message) => RpcError::new(RpcError::NOT_FOUND, message),
            ServiceError::InsufficientFunds(message) => RpcError::new(RpcError::INSUFFICIENT_FUNDS, message),
            ServiceError::Locked(message) => RpcError::new(RpcError::UNLOCK_NEEDED, message),
            ServiceError::NoWallet(message) => RpcError::new(RpcError::NO_WALLET, message),
            ServiceError::Rejected(message) => RpcError::new(RpcError::REJECTED, message),
            ServiceError::Internal(message) => RpcError::new(RpcError::INTERNAL_ERROR, message),
        }
    }
}
