//! `chain verify`: re-checks the whole stored main chain and the UTXO set against a replay.

use std::collections::HashMap;

use peerchain_consensus::{
    HeaderContext, MEDIAN_TIME_SPAN, Params, RetargetInput, UtxoView, ViewError, check_header, connect_block,
    median_time, next_target,
};
use peerchain_primitives::{Amount, AssetId, BlockHash, Coin, Encode, OutPoint};
use peerchain_store::{Reader, TxLocation};
use sha2::Digest;

use crate::Error;

/// What `verify` found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// The height checked up to.
    pub height: u32,
    /// Blocks checked.
    pub blocks: u64,
    /// Transactions checked.
    pub transactions: u64,
    /// Unspent outputs compared.
    pub utxos: u64,
    /// The native coins the unspent outputs hold: never more than the subsidies so far.
    pub coin_supply: Amount,
    /// SHA-256 over every unspent output (outpoint and coin, in the store's order): equal
    /// digests mean equal UTXO sets, wherever and however they were reached.
    pub utxo_digest: [u8; 32],
    /// Every disagreement found (at most [`MAX_PROBLEMS`]); empty when all is well.
    pub problems: Vec<String>,
}

/// How many problems are listed before verification gives up.
pub const MAX_PROBLEMS: usize = 20;

impl VerifyReport {
    /// Whether everything checked out.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Default)]
struct Replay(HashMap<OutPoint, Coin>);

impl UtxoView for Replay {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, ViewError> {
        Ok(self.0.get(outpoint).cloned())
    }
}

/// Replays every main-chain block from genesis with full validation into a fresh UTXO set,
/// checks the indexes along the way, and compares the result with the stored UTXO set.
pub fn verify(reader: &Reader, params: &Params) -> Result<VerifyReport, Error> {
    let mut report = VerifyReport::default();
    let tip = reader.coins_tip()?;
    let tip_height =
        reader.entry(&tip)?.map(|e| e.height).ok_or(Error::Inconsistent("tip has no index entry".into()))?;
    report.height = tip_height;
    let mut replay = Replay::default();
    let mut recent_times: Vec<u64> = Vec::with_capacity(MEDIAN_TIME_SPAN);
    let mut previous: Option<(BlockHash, u64)> = None;
    let mut anchor_time = None;

    for height in 0..=tip_height {
        if report.problems.len() >= MAX_PROBLEMS {
            break;
        }
        let Some(hash) = reader.main_hash(height)? else {
            report.problems.push(format!("main chain has no block at height {height}"));
            break;
        };
        let Some(block) = reader.block(&hash)? else {
            report.problems.push(format!("block {hash} at height {height} has no stored data"));
            break;
        };
        if block.hash() != hash {
            report.problems.push(format!("stored block at height {height} hashes to {}, not {hash}", block.hash()));
            break;
        }
        match reader.entry(&hash)? {
            Some(entry) if entry.height == height && !entry.invalid => {}
            other => report.problems.push(format!("index entry of {hash} is wrong: {other:?}")),
        }
        report.blocks += 1;
        if height == 0 {
            if hash != params.genesis_hash() {
                report.problems.push(format!("block at height 0 is {hash}, not this network's genesis"));
                break;
            }
        } else {
            let (prev_hash, prev_time) = previous.expect("set after genesis");
            if block.header.prev_hash != prev_hash {
                report.problems.push(format!("block {hash} at height {height} does not link to {prev_hash}"));
                break;
            }
            let context = HeaderContext {
                expected_bits: next_target(
                    params,
                    RetargetInput { parent_height: height - 1, parent_time: prev_time, anchor_time },
                ),
                median_time_past: median_time(&recent_times),
                // Verification does not re-judge the clock: a block once accepted stays in time.
                now: u64::MAX - params.max_future_block_time,
            };
            if let Err(reject) = check_header(&block.header, &context, params) {
                report.problems.push(format!("height {height}: {reject}"));
                break;
            }
            match connect_block(&block, height, &replay, params) {
                Ok(effects) => {
                    for (outpoint, _) in &effects.spent {
                        replay.0.remove(outpoint);
                    }
                    replay.0.extend(effects.created);
                }
                Err(e) => {
                    report.problems.push(format!("height {height}: {e}"));
                    break;
                }
            }
            for (position, tx) in block.transactions.iter().enumerate() {
                let expected = TxLocation { height, position: position as u32 };
                let found = reader.tx_location(&tx.txid())?;
                if found != Some(expected) {
                    report
                        .problems
                        .push(format!("transaction {} is indexed at {found:?}, expected {expected:?}", tx.txid()));
                }
            }
            report.transactions += block.transactions.len() as u64;
        }
        if height == 1 {
            anchor_time = Some(block.header.time);
        }
        if recent_times.len() == MEDIAN_TIME_SPAN {
            recent_times.remove(0);
        }
        recent_times.push(block.header.time);
        previous = Some((hash, block.header.time));
    }

    if report.problems.is_empty() {
        compare_utxo_sets(reader, &replay, &mut report)?;
    }
    Ok(report)
}

/// Compares the stored UTXO set with the replay's, and the transaction index's size with the
/// chain's, adding what differs to `report` with the set's size, supply and digest.
fn compare_utxo_sets(reader: &Reader, replay: &Replay, report: &mut VerifyReport) -> Result<(), Error> {
    let mut stored = 0u64;
    let mut digest = sha2::Sha256::new();
    let mut supply = Amount::ZERO;
    reader.for_each_utxo(|outpoint, coin| {
        stored += 1;
        outpoint.encode_to(&mut digest);
        coin.encode_to(&mut digest);
        if coin.output.asset == AssetId::Coin {
            supply = supply.checked_add(coin.output.amount).unwrap_or(Amount::MAX_MONEY);
        }
        if report.problems.len() < MAX_PROBLEMS {
            match replay.0.get(&outpoint) {
                Some(replayed) if *replayed == coin => {}
                Some(_) => report.problems.push(format!("stored output {outpoint:?} differs from the replay")),
                None => report.problems.push(format!("stored output {outpoint:?} does not exist in the replay")),
            }
        }
        Ok(())
    })?;
    if stored != replay.0.len() as u64 {
        report.problems.push(format!("UTXO set holds {stored} outputs, the replay {}", replay.0.len()));
    }
    report.utxos = stored;
    report.coin_supply = supply;
    report.utxo_digest = digest.finalize().into();
    let indexed = reader.tx_index_count()?;
    if indexed != report.transactions {
        report.problems.push(format!("transaction index holds {indexed} entries, the chain {}", report.transactions));
    }
    Ok(())
}
