//! What the benchmark drivers share: a regtest chain funded with one coin per transfer slot,
//! each owned by a key of its own, and rounds of signed one-in-two-out transfers.

use std::sync::Arc;

use anyhow::{Context, bail};
use peerchain_chain::{BlockOutcome, Config, MempoolLimits, solve};
use peerchain_consensus::Params;
use peerchain_primitives::{
    Amount, Block, KeyHash, Network, OutPoint, SecretKey, SigHashMode, Transaction, TxIn, TxOut, TxSignature, Witness,
};
use peerchain_store::Store;
use rayon::prelude::*;

/// The fee of every transfer.
pub const FEE: Amount = Amount::from_units(1_000);

/// Signs the single input of `tx`, which spends `spent`, with `key`.
pub fn sign_key_spend(tx: &mut Transaction, spent: &TxOut, key: &SecretKey) {
    let message = tx.signature_hash(0, spent, SigHashMode::All, Network::Regtest.magic());
    tx.inputs[0].witness = Witness::Key {
        public_key: key.public_key(),
        signature: TxSignature { mode: SigHashMode::All, signature: key.sign(&message) },
    };
}

/// The key that owns slot `slot` in round `round`: every coin has its own key, as on a real
/// chain, so no key is decompressed twice.
pub fn slot_key(round: usize, slot: usize) -> SecretKey {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&(round as u64).to_le_bytes());
    seed[8..16].copy_from_slice(&(slot as u64).to_le_bytes());
    SecretKey::from_seed(seed)
}

/// The payment each transfer makes; the rest of the coin (less the fee) is its change.
pub const PAYMENT: Amount = Amount::from_units(10_000);

/// One transfer per coin: each spends its coin (owned by its round's slot key) into a
/// payment and its change (less the fee), both owned by the next round's slot key. The change
/// comes first and is what the next round spends, so a coin lasts as many rounds as a long
/// chain needs (halving it each round would run out after some 30).
pub fn transfers(coins: &[(OutPoint, TxOut)], round: usize) -> Vec<Transaction> {
    coins
        .par_iter()
        .enumerate()
        .map(|(slot, (outpoint, output))| {
            let change = Amount::from_units(output.amount.units() - FEE.units() - PAYMENT.units());
            let to = slot_key(round + 1, slot).public_key().key_hash();
            let mut tx = Transaction {
                version: 1,
                inputs: vec![TxIn { prev_out: *outpoint, witness: Witness::Multisig { signatures: vec![] } }],
                outputs: vec![TxOut::coins_to(change, to), TxOut::coins_to(PAYMENT, to)],
                lock_time: 0,
            };
            sign_key_spend(&mut tx, output, &slot_key(round, slot));
            tx
        })
        .collect()
}

/// Mines a block on the tip paying `to`, and checks it became the tip.
pub async fn mine(handle: &peerchain_chain::Handle, to: KeyHash) -> anyhow::Result<Block> {
    let template = handle.block_template(to, vec![]).await?;
    let block = tokio::task::spawn_blocking(move || solve(template, 1)).await?;
    match handle.submit_block(block.clone()).await? {
        BlockOutcome::NewTip { .. } => Ok(block),
        other => bail!("mined block not accepted: {other:?}"),
    }
}

/// Opens (creating) a regtest chain in `dir`, where a node would keep it.
pub fn open(dir: &std::path::Path) -> anyhow::Result<(peerchain_chain::Handle, std::thread::JoinHandle<()>)> {
    std::fs::create_dir_all(dir)?;
    let params = Params::for_network(Network::Regtest);
    let store = Store::open(&dir.join("chain.redb"), &params)?;
    let config =
        Config { mempool: MempoolLimits { max_bytes: 1 << 30, ..MempoolLimits::default() }, ..Config::default() };
    Ok(peerchain_chain::spawn(Arc::new(store), params, config)?)
}

/// Mines enough mature coinbases to `me` (owned by `key`) and fans them out into `slots`
/// equal coins, slot i owned by `slot_key(0, i)`. Returns every block mined and the coins.
pub async fn fund(
    prep: &peerchain_chain::Handle,
    me: KeyHash,
    key: &SecretKey,
    slots: usize,
) -> anyhow::Result<(Vec<Block>, Vec<(OutPoint, TxOut)>)> {
    let params = Params::for_network(Network::Regtest);
    // Setup: enough mature coinbases to fund one coin per transfer slot.
    let funding_blocks = slots.div_ceil(2_000).max(1);
    let mut setup_blocks = Vec::new();
    for _ in 0..funding_blocks + params.coinbase_maturity as usize {
        setup_blocks.push(mine(prep, me).await?);
    }
    // A fan-out spending the funding coinbases into `per_block` equal coins.
    let mut inputs = Vec::new();
    let mut total = Amount::ZERO;
    for block in &setup_blocks[..funding_blocks] {
        let coinbase = &block.transactions[0];
        inputs.push((OutPoint::new(coinbase.txid(), 0), coinbase.outputs[0].clone()));
        total = total.checked_add(coinbase.outputs[0].amount).context("sum")?;
    }
    let each = Amount::from_units((total.units() - 1_000_000) / slots as u64);
    let mut fan_out = Transaction {
        version: 1,
        inputs: inputs
            .iter()
            .map(|(op, _)| TxIn { prev_out: *op, witness: Witness::Multisig { signatures: vec![] } })
            .collect(),
        outputs: (0..slots).map(|slot| TxOut::coins_to(each, slot_key(0, slot).public_key().key_hash())).collect(),
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
    setup_blocks.push(mine(prep, me).await?);
    let coins: Vec<(OutPoint, TxOut)> =
        fan_out.outputs.iter().enumerate().map(|(i, o)| (OutPoint::new(fan_out_id, i as u32), o.clone())).collect();

    Ok((setup_blocks, coins))
}
