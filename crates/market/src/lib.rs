//! Trading without intermediaries: offers a maker signs once and anyone completes into one
//! atomic transaction, the order book every node keeps of them, and the index of tokens and
//! trades read from the chain.
//!
//! This crate must never know about the network, the chain store or RPC: the node feeds it
//! offers from peers, coins from the UTXO set and main-chain blocks, and publishes what it
//! lists.

pub mod book;
pub mod channel;
pub mod channels;
pub mod contract;
pub mod index;
pub mod offer;

pub use book::{Added, Book, Listed, NotListed};
pub use channel::{PaymentError, PaymentRules, channel_parties, check_payment};
pub use channels::{Buying, Channels, Sale, Selling};
pub use contract::{ContractMessage, MAX_CONTRACT_BYTES, dispute_message};
pub use index::{Index, IndexError, LoanEvent, LoanOutcome, LoanRecord, TokenInfo, Trade, trades_in};
pub use offer::{MAX_OFFER_BYTES, Offer, OfferError, OfferId, Policy, Terms, verify_signatures};
