//! The cost of encrypting a peer connection: the AEADs that seal and open every record of a
//! transfer, each on one core. Noise (libp2p-noise, through snow) uses ring's
//! ChaCha20-Poly1305 on messages of up to 64 KiB; peerchain's TLS 1.3 (net/src/secure.rs)
//! uses aws-lc-rs through rustls on records of 16 KiB, AES-128-GCM first where the
//! processor has AES instructions. Prints one JSON document: MB/s sealing, and sealing then
//! opening each record (a transfer's work on both ends).
//! `bench/files.sh` runs it beside the transfers, so both come from the same machine state.

use std::hint::black_box;
use std::time::Instant;

use clap::Parser;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// MiB sealed and opened per cipher and record size.
    #[arg(long, default_value_t = 1024)]
    mib: usize,
}

/// The nonce of record `n` (any unique nonce costs the same).
fn nonce(n: usize) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&(n as u64).to_le_bytes());
    nonce
}

/// MB/s of sealing `total` bytes in records of `record` bytes, and of sealing and opening
/// each record in turn (one transfer's work: the source seals, the downloader opens).
fn rate(total: usize, record: usize, mut seal_open: impl FnMut(usize, &mut Vec<u8>, bool)) -> (f64, f64) {
    let records = total / record;
    // Room for the tag, so that opening never reallocates.
    let mut buffer = Vec::with_capacity(record + 16);
    buffer.resize(record, 1);
    let mut time = |open: bool| {
        let start = Instant::now();
        for n in 0..records {
            seal_open(n, &mut buffer, open);
        }
        (records * record) as f64 / start.elapsed().as_secs_f64() / 1e6
    };
    let seal = time(false);
    (seal, time(true))
}

/// MB/s sealing, and sealing then opening, with an AEAD of ring or aws-lc-rs (their `aead`
/// modules have the same interface).
macro_rules! aead_rate {
    ($($module:ident)::+, $algorithm:expr, $total:expr, $record:expr) => {{
        use $($module)::+::{Aad, LessSafeKey, Nonce, UnboundKey};
        let algorithm = $algorithm;
        let key = LessSafeKey::new(UnboundKey::new(algorithm, &vec![7; algorithm.key_len()]).expect("key length"));
        rate($total, $record, |n, buffer, open| {
            let tag = key.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(n)), Aad::empty(), buffer);
            if open {
                buffer.extend_from_slice(tag.expect("seals").as_ref());
                let nonce = Nonce::assume_unique_for_key(nonce(n));
                let len = key.open_in_place(nonce, Aad::empty(), buffer).expect("opens").len();
                buffer.truncate(len);
            }
            black_box(&buffer);
        })
    }};
}

fn main() {
    let args = Args::parse();
    let total = args.mib << 20;
    let mut results = serde_json::Map::new();
    for (record, size_name) in [(16 * 1024, "16KiB"), (64 * 1024 - 17, "64KiB")] {
        let rows = [
            ("ring_chacha20_poly1305", aead_rate!(ring::aead, &ring::aead::CHACHA20_POLY1305, total, record)),
            (
                "aws_lc_chacha20_poly1305",
                aead_rate!(aws_lc_rs::aead, &aws_lc_rs::aead::CHACHA20_POLY1305, total, record),
            ),
            ("aws_lc_aes_128_gcm", aead_rate!(aws_lc_rs::aead, &aws_lc_rs::aead::AES_128_GCM, total, record)),
            ("aws_lc_aes_256_gcm", aead_rate!(aws_lc_rs::aead, &aws_lc_rs::aead::AES_256_GCM, total, record)),
        ];
        for (name, (seal, seal_then_open)) in rows {
            results.insert(
                format!("{name}_{size_name}"),
                json!({ "seal_mb_per_s": seal.round(), "seal_then_open_mb_per_s": seal_then_open.round() }),
            );
        }
    }
    println!("{}", serde_json::to_string_pretty(&results).expect("serializable"));
}
