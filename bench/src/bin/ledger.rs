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
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use ed25519_dalek::{Signature, VerifyingKey};
use peerchain_chain::{BlockOutcome, Config, FeeRate, MempoolLimits, solve};
use peerchain_consensus::{BATCH_SIZE, Params};
use peerchain_primitives::{
    Amount, Block, Decode, Encode, KeyHash, Network, OutPoint, SecretKey, SigHashMode, Transaction, TxIn, TxOut,
    TxSignature, Witness,
};
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

const FEE: Amount = Amount::from_units(1_000);
/// Concurrent submitters of mempool transactions.
const SUBMITTERS: usize = 8;
/// How many times the connection of the chain is measured, each on a fresh store.
const CONNECT_RUNS: usize = 3;

fn sign_key_spend(tx: &mut Transaction, spent: &TxOut, key: &SecretKey) {
    let message = tx.signature_hash(0, spent, SigHashMode::All, Network::Regtest.magic());
    tx.inputs[0].witness = Witness::Key {
        public_key: key.public_key(),
        signature: TxSignature { mode: SigHashMode::All, signature: key.sign(&message) },
    };
}

/// The key that owns slot `slot` in round `round`: every coin has its own key, as on a real
/// chain, so no key is decompressed twice.
fn slot_key(round: usize, slot: usize) -> SecretKey {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&(round as u64).to_le_bytes());
    seed[8..16].copy_from_slice(&(slot as u64).to_le_bytes());
    SecretKey::from_seed(seed)
}

/// One transfer per coin: each spends its coin (owned by its round's slot key) into two
/// halves (less the fee) owned by the next round's slot key.
fn transfers(coins: &[(OutPoint, TxOut)], round: usize) -> Vec<Transaction> {
    coins
        .par_iter()
        .enumerate()
        .map(|(slot, (outpoint, output))| {
            let half = Amount::from_units((output.amount.units() - FEE.units()) / 2);
            let to = slot_key(round + 1, slot).public_key().key_hash();
            let mut tx = Transaction {
                version: 1,
                inputs: vec![TxIn { prev_out: *outpoint, witness: Witness::Multisig { signatures: vec![] } }],
                outputs: vec![TxOut::coins_to(half, to), TxOut::coins_to(half, to)],
                lock_time: 0,
            };
            sign_key_spend(&mut tx, output, &slot_key(round, slot));
            tx
        })
        .collect()
}

async fn mine(handle: &peerchain_chain::Handle, to: KeyHash) -> anyhow::Result<Block> {
    let template = handle.block_template(to, vec![]).await?;
    let block = tokio::task::spawn_blocking(move || solve(template, 1)).await?;
    match handle.submit_block(block.clone()).await? {
        BlockOutcome::NewTip { .. } => Ok(block),
        other => bail!("mined block not accepted: {other:?}"),
    }
}

fn open(dir: &std::path::Path) -> anyhow::Result<(peerchain_chain::Handle, std::thread::JoinHandle<()>)> {
    std::fs::create_dir_all(dir)?;
    let params = Params::for_network(Network::Regtest);
    let store = Store::open(&dir.join("chain.redb"), &params)?;
    let config = Config { mempool: MempoolLimits { max_bytes: 1 << 30, min_relay_rate: FeeRate::per_byte(1) } };
    Ok(peerchain_chain::spawn(Arc::new(store), params, config)?)
}

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

    // Setup: enough mature coinbases to fund one coin per transfer slot.
    let funding_blocks = args.per_block.div_ceil(2_000).max(1);
    let mut setup_blocks = Vec::new();
    for _ in 0..funding_blocks + params.coinbase_maturity as usize {
        setup_blocks.push(mine(&prep, me).await?);
    }
    // A fan-out spending the funding coinbases into `per_block` equal coins.
    let mut inputs = Vec::new();
    let mut total = Amount::ZERO;
    for block in &setup_blocks[..funding_blocks] {
        let coinbase = &block.transactions[0];
        inputs.push((OutPoint::new(coinbase.txid(), 0), coinbase.outputs[0].clone()));
        total = total.checked_add(coinbase.outputs[0].amount).context("sum")?;
    }
    let each = Amount::from_units((total.units() - 1_000_000) / args.per_block as u64);
    let mut fan_out = Transaction {
        version: 1,
        inputs: inputs
            .iter()
            .map(|(op, _)| TxIn { prev_out: *op, witness: Witness::Multisig { signatures: vec![] } })
            .collect(),
        outputs: (0..args.per_block)
            .map(|slot| TxOut::coins_to(each, slot_key(0, slot).public_key().key_hash()))
            .collect(),
        lock_time: 0,
    };
    let mut cache = peerchain_primitives::transaction::SighashCache::new(&fan_out);
    let witnesses: Vec<Witness> = inputs
        .iter()
        .enumerate()
        .map(|(i, (_, spent))| {
            let message = cache.signature_hash(i, spent, SigHashMode::All, Network::Regtest.magic());
            Witness::Key {
                public_key: key.public_key(),
                signature: TxSignature { mode: SigHashMode::All, signature: key.sign(&message) },
            }
        })
        .collect();
    for (input, witness) in fan_out.inputs.iter_mut().zip(witnesses) {
        input.witness = witness;
    }
    let fan_out_id = prep.submit_transaction(fan_out.clone()).await?;
    setup_blocks.push(mine(&prep, me).await?);
    let mut coins: Vec<(OutPoint, TxOut)> =
        fan_out.outputs.iter().enumerate().map(|(i, o)| (OutPoint::new(fan_out_id, i as u32), o.clone())).collect();

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
        fresh.shutdown().await?;
        chain_height = fresh.tip().height;
        drop(fresh);
        let _ = fresh_thread.join();
    }
    connect_runs.sort_by(f64::total_cmp);
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
