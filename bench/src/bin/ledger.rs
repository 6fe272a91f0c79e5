//! Ledger benchmark: prepares a regtest chain whose blocks each hold N one-in-two-out
//! transfers, then measures, in one run:
//! - the raw ed25519 verify rate of those very signatures (single, batch on one core, batch on
//!   all cores);
//! - mempool acceptance of the transfers, in process;
//! - end-to-end block connection on a fresh store (decode, validate, verify, UTXO update,
//!   commit);
//! - store size per 1,000 transactions.
//!
//! Prints one JSON document. `bench/ledger.sh` runs it next to litecoind.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use ed25519_dalek::{Signature, VerifyingKey};
use peerchain_bench::{fund, mine, open, transfers};
use peerchain_chain::BlockOutcome;
use peerchain_consensus::{BATCH_SIZE, Params};
use peerchain_primitives::{Block, Decode, Encode, Network, OutPoint, SecretKey, SigHashMode, Witness};
use peerchain_store::Store;
use rayon::prelude::*;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Transfers per block.
    #[arg(long, default_value_t = 10_000)]
    per_block: usize,
    /// Blocks of transfers.
    #[arg(long, default_value_t = 10)]
    blocks: usize,
    /// Where to keep the prepared chain (a regtest data directory a node can open).
    #[arg(long)]
    dir: PathBuf,
}

/// Concurrent submitters of mempool transactions.
const SUBMITTERS: usize = 8;
/// How many times the connection of the chain is measured, each on a fresh store.
const CONNECT_RUNS: usize = 3;

fn rate(count: usize, seconds: f64) -> f64 {
    (count as f64 / seconds).round()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let key = SecretKey::from_seed([42; 32]);
    let me = key.public_key().key_hash();
    let prep_dir = args.dir.join("prep");
    let _ = std::fs::remove_dir_all(&args.dir);
    let (prep, prep_thread) = open(&prep_dir)?;
    let params = Params::for_network(Network::Regtest);

    let (setup_blocks, mut coins) = fund(&prep, me, &key, args.per_block).await?;

    // Rounds of transfers: accepted into the mempool (timed), then mined into one block each.
    let mut transfer_blocks = Vec::new();
    let mut mempool_seconds = 0.0;
    let mut all_signatures: Vec<(VerifyingKey, [u8; 32], Signature)> = Vec::new();
    for round in 0..args.blocks {
        let txs = transfers(&coins, round);
        if round == 0 {
            for (tx, (_, spent)) in txs.iter().zip(&coins) {
                let message = tx.signature_hash(0, spent, SigHashMode::All, Network::Regtest.magic());
                if let Witness::Key { public_key, signature } = &tx.inputs[0].witness {
                    let vk = public_key.verifying_key().context("key")?;
                    all_signatures.push((vk, message, signature.signature.to_dalek()));
                }
            }
        }
        // Submitted from several tasks at once, as transactions arrive from a network.
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in txs.chunks(txs.len().div_ceil(SUBMITTERS)) {
            let (handle, chunk) = (prep.clone(), chunk.to_vec());
            tasks.spawn(async move {
                for tx in chunk {
                    handle.submit_transaction(tx).await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done?.with_context(|| format!("round {round}"))?;
        }
        mempool_seconds += started.elapsed().as_secs_f64();
        let block = mine(&prep, me).await?;
        anyhow::ensure!(
            block.transactions.len() == args.per_block + 1,
            "block holds {} transactions",
            block.transactions.len()
        );
        coins = txs.iter().map(|tx| (OutPoint::new(tx.txid(), 0), tx.outputs[0].clone())).collect();
        transfer_blocks.push(block);
    }
    prep.shutdown().await?;
    drop(prep);
    let _ = prep_thread.join();

    // Raw signature verification of one block's signatures.
    let n = all_signatures.len();
    let keys: Vec<VerifyingKey> = all_signatures.iter().map(|s| s.0).collect();
    let messages: Vec<[u8; 32]> = all_signatures.iter().map(|s| s.1).collect();
    let signatures: Vec<Signature> = all_signatures.iter().map(|s| s.2).collect();
    let verify_group = |range: std::ops::Range<usize>| {
        let m: Vec<&[u8]> = messages[range.clone()].iter().map(|m| &m[..]).collect();
        ed25519_dalek::verify_batch(&m, &signatures[range.clone()], &keys[range]).is_ok()
    };
    let groups: Vec<std::ops::Range<usize>> = (0..n).step_by(BATCH_SIZE).map(|s| s..(s + BATCH_SIZE).min(n)).collect();
    // Each rate is measured over at least a second of repeated work: one block's signatures
    // take a tenth of that, too short on a shared machine.
    let repeat_rate = |mut work: Box<dyn FnMut() -> anyhow::Result<()> + '_>| -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut rounds = 0;
        while rounds == 0 || started.elapsed().as_secs_f64() < 1.0 {
            work()?;
            rounds += 1;
        }
        Ok(rate(n * rounds, started.elapsed().as_secs_f64()))
    };
    let single = repeat_rate(Box::new(|| {
        for i in 0..n {
            keys[i].verify_strict(&messages[i], &signatures[i]).context("single verify")?;
        }
        Ok(())
    }))?;
    let batch_one_core = repeat_rate(Box::new(|| {
        anyhow::ensure!(groups.iter().cloned().all(verify_group));
        Ok(())
    }))?;
    let batch_all_cores = repeat_rate(Box::new(|| {
        anyhow::ensure!(groups.par_iter().cloned().all(verify_group));
        Ok(())
    }))?;

    // End to end: a fresh store connects the setup blocks, then the transfer blocks (timed),
    // each given as bytes as a peer would send it. Repeated on fresh stores; the median counts.
    let encoded: Vec<Vec<u8>> = transfer_blocks.iter().map(Encode::to_bytes).collect();
    let transfers_connected = args.per_block * args.blocks;
    let mut connect_runs = Vec::with_capacity(CONNECT_RUNS);
    let mut write_back_runs = Vec::with_capacity(CONNECT_RUNS);
    let mut chain_height = 0;
    let fresh_dir = args.dir.join("node");
    for run in 0..CONNECT_RUNS {
        let _ = std::fs::remove_dir_all(&fresh_dir);
        let (fresh, fresh_thread) = open(&fresh_dir)?;
        for block in &setup_blocks {
            fresh.submit_block(block.clone()).await?;
        }
        let started = Instant::now();
        for bytes in &encoded {
            let block = Block::from_bytes(bytes)?;
            match fresh.submit_block(block).await? {
                BlockOutcome::NewTip { .. } => {}
                other => bail!("run {run}: block not connected: {other:?}"),
            }
        }
        connect_runs.push(started.elapsed().as_secs_f64());
        // The UTXO set and transaction index changes are still in the coin cache (as they
        // are in litecoind's): the write-back at shutdown is timed on its own.
        let started = Instant::now();
        fresh.shutdown().await?;
        write_back_runs.push(started.elapsed().as_secs_f64());
        chain_height = fresh.tip().height;
        drop(fresh);
        let _ = fresh_thread.join();
    }
    connect_runs.sort_by(f64::total_cmp);
    write_back_runs.sort_by(f64::total_cmp);
    let connect_seconds = connect_runs[connect_runs.len() / 2];
    let store_bytes = std::fs::metadata(fresh_dir.join("chain.redb"))?.len();
    // The file keeps pages freed by copy-on-write for reuse; compacted, it shows what the data
    // itself takes.
    Store::open(&fresh_dir.join("chain.redb"), &params)?.compact()?;
    let compacted_bytes = std::fs::metadata(fresh_dir.join("chain.redb"))?.len();
    let total_transactions = transfers_connected + setup_blocks.len() + transfer_blocks.len() + 1;

    let report = json!({
        "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) },
        "per_block": args.per_block,
        "blocks": args.blocks,
        "transactions_in_chain": total_transactions,
        "chain_height": chain_height,
        "block_bytes": encoded[0].len(),
        "raw_verify_per_second": { "single_strict": single, "batch_one_core": batch_one_core, "batch_all_cores": batch_all_cores },
        "connect": {
            "runs_seconds": connect_runs,
            "seconds": connect_seconds,
            "transactions_per_second": rate(transfers_connected, connect_seconds),
            "share_of_raw_batch_all_cores": rate(transfers_connected, connect_seconds) / batch_all_cores,
            "write_back_at_shutdown_seconds": write_back_runs[write_back_runs.len() / 2],
            "with_write_back_transactions_per_second":
                rate(transfers_connected, connect_seconds + write_back_runs[write_back_runs.len() / 2]),
        },
        "mempool_accept": { "transactions": transfers_connected, "seconds": mempool_seconds, "transactions_per_second": rate(transfers_connected, mempool_seconds) },
        "store": {
            "bytes": store_bytes,
            "bytes_per_1000_transactions": (store_bytes as f64 / total_transactions as f64 * 1000.0).round(),
            "compacted_bytes": compacted_bytes,
            "compacted_bytes_per_1000_transactions": (compacted_bytes as f64 / total_transactions as f64 * 1000.0).round(),
            "block_bytes_per_1000_transactions": (encoded.iter().map(Vec::len).sum::<usize>() as f64 / transfers_connected as f64 * 1000.0).round(),
        },
        "data_dir": fresh_dir,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
