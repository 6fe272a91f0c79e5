//! Offer validation: how many offers a node checks per second (the coin's terms against the
//! UTXO set, then the signature, strictly, on all cores), and how fast the book takes them.
//! This is the work of a node receiving a book of `--count` offers from a peer, in process.
//! Prints one JSON document; `bench/market.py` reports it beside the network figures.

use std::time::Instant;

use clap::Parser;
use peerchain_consensus::Params;
use peerchain_market::{Book, Listed, Offer, Policy, verify_signatures};
use peerchain_primitives::{
    Amount, AssetId, Coin, Lock, Network, OutPoint, SecretKey, SigHashMode, TokenId, Transaction, TxId, TxIn, TxOut,
    TxSignature, Witness,
};
use rayon::prelude::*;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Offers to check.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
}

fn main() {
    let args = Args::parse();
    let params = Params::for_network(Network::Regtest);
    let policy = Policy::default();
    let tip = 1_000;
    // One maker key per 100 offers, each offer of its own coin of a token, for coins.
    let offers: Vec<(Offer, Coin)> = (0..args.count)
        .into_par_iter()
        .map(|n| {
            let key = SecretKey::from_seed([(n / 100 % 251) as u8 + 1; 32]);
            let coin = Coin {
                output: TxOut {
                    asset: AssetId::Token(TokenId([7; 32])),
                    amount: Amount::from_units(1_000 + n as u64),
                    lock: Lock::Key(key.public_key().key_hash()),
                },
                height: 10,
                is_coinbase: false,
            };
            let mut txid = [0u8; 32];
            txid[..8].copy_from_slice(&(n as u64).to_le_bytes());
            let anchor = OutPoint::new(TxId(txid), 0);
            let want = TxOut::coins_to(Amount::from_units(50_000), key.public_key().key_hash());
            let mode = SigHashMode::SingleInputOutputUntil(tip + 500);
            let unsigned = TxIn { prev_out: anchor, witness: Witness::Multisig { signatures: vec![] } };
            let tx = Transaction { version: 1, inputs: vec![unsigned], outputs: vec![want.clone()], lock_time: 0 };
            let message = tx.signature_hash(0, &coin.output, mode, params.network.magic());
            let witness = Witness::Key {
                public_key: key.public_key(),
                signature: TxSignature { mode, signature: key.sign(&message) },
            };
            (Offer { input: TxIn { prev_out: anchor, witness }, want }, coin)
        })
        .collect();

    // Checking: terms against the coin (one thread, as the market actor does), then the
    // signatures in parallel.
    let start = Instant::now();
    let terms: Vec<_> =
        offers.iter().map(|(offer, coin)| offer.check(coin, tip, &params, &policy).expect("a valid offer")).collect();
    let terms_seconds = start.elapsed().as_secs_f64();
    let to_verify: Vec<_> =
        offers.iter().zip(&terms).map(|((offer, coin), terms)| (offer, &coin.output, terms)).collect();
    let verified = verify_signatures(&to_verify, params.network.magic());
    let check_seconds = start.elapsed().as_secs_f64();
    assert!(verified.iter().all(|ok| *ok));

    let start = Instant::now();
    let mut book = Book::new(policy.max_book_bytes);
    for ((offer, coin), terms) in offers.into_iter().zip(&terms) {
        book.add(Listed::new(offer, coin.output, terms, coin.height)).expect("room in the book");
    }
    let book_seconds = start.elapsed().as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "offers": args.count,
            "cores": cores,
            "checked_per_second": (args.count as f64 / check_seconds).round(),
            "terms_only_per_second": (args.count as f64 / terms_seconds).round(),
            "book_inserts_per_second": (args.count as f64 / book_seconds).round(),
            "book_bytes": book.bytes(),
        }))
        .expect("JSON")
    );
}
