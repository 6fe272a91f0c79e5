//! Prepares the RPC benchmark: a regtest data directory whose chain holds COUNT coins, each
//! owned by its own key, and COUNT pre-signed transfers spending them, one hex per line in
//! DIR/transactions.hex. `bench/rpc.sh` then starts a node on DIR and submits them.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use peerchain_bench::{fund, open, transfers};
use peerchain_primitives::{Encode, SecretKey};

#[derive(Parser)]
struct Args {
    /// How many transfers.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// The data directory to prepare (emptied first).
    #[arg(long)]
    dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = std::fs::remove_dir_all(&args.dir);
    let key = SecretKey::from_seed([42; 32]);
    let (chain, thread) = open(&args.dir)?;
    let (_, coins) = fund(&chain, key.public_key().key_hash(), &key, args.count).await?;
    chain.shutdown().await?;
    drop(chain);
    let _ = thread.join();
    let mut out = std::io::BufWriter::new(std::fs::File::create(args.dir.join("transactions.hex"))?);
    for tx in transfers(&coins, 0) {
        writeln!(out, "{}", hex::encode(tx.to_bytes()))?;
    }
    out.flush()?;
    Ok(())
}
