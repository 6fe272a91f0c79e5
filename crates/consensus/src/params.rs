//! The parameters that make each network its own chain.

use peerchain_primitives::{
    Amount, Block, BlockHash, BlockHeader, CompactTarget, KeyHash, Network, OutPoint, Transaction, TxIn, TxOut, Witness,
};

/// Everything consensus needs to know about one network.
#[derive(Debug, Clone)]
pub struct Params {
    /// Which network.
    pub network: Network,
    /// The easiest target a block may have, and the genesis block's.
    pub pow_limit: CompactTarget,
    /// Whether difficulty follows the block rate; regtest keeps its minimum forever.
    pub retarget: bool,
    /// The block interval difficulty aims for, in seconds.
    pub target_spacing: u64,
    /// How long the block rate must run at twice (half) the target before the target halves
    /// (doubles), in seconds: ASERT's half-life.
    pub asert_half_life: u64,
    /// Blocks before a coinbase output may be spent.
    pub coinbase_maturity: u32,
    /// The reward of the first blocks.
    pub initial_subsidy: Amount,
    /// Blocks between halvings of the reward.
    pub halving_interval: u32,
    /// The largest encoded block, in bytes.
    pub max_block_size: usize,
    /// How far past the node's clock a block's time may be, in seconds.
    pub max_future_block_time: u64,
    /// The genesis block's time.
    pub genesis_time: u64,
    /// The least total work of a chain whose blocks a node downloads (Bitcoin Core's
    /// `nMinimumChainWork`): headers first show that a chain has at least this much work, so a
    /// node starting afresh spends nothing on the blocks of a cheap fake chain. Raised with
    /// each release once a network runs; zero before it launches (every network today).
    pub min_chain_work: peerchain_primitives::Work,
}

/// How many blocks the median-time-past looks back over.
pub const MEDIAN_TIME_SPAN: usize = 11;

impl Params {
    /// The parameters of `network`.
    pub fn for_network(network: Network) -> Params {
        match network {
            Network::Mainnet => Params {
                network,
                pow_limit: CompactTarget(0x1e00ffff),
                retarget: true,
                target_spacing: 60,
                asert_half_life: 24 * 3600,
                coinbase_maturity: 100,
                initial_subsidy: Amount::from_coins(5),
                halving_interval: 2_100_000,
                max_block_size: 4_000_000,
                max_future_block_time: 2 * 3600,
                genesis_time: 1_790_812_800, // 2026-10-01
                min_chain_work: peerchain_primitives::Work::ZERO,
            },
            Network::Testnet => Params {
                network,
                pow_limit: CompactTarget(0x1f00ffff),
                retarget: true,
                target_spacing: 30,
                asert_half_life: 3600,
                coinbase_maturity: 100,
                initial_subsidy: Amount::from_coins(5),
                halving_interval: 2_100_000,
                max_block_size: 4_000_000,
                max_future_block_time: 2 * 3600,
                genesis_time: 1_793_491_200, // 2026-11-01
                min_chain_work: peerchain_primitives::Work::ZERO,
            },
            Network::Devnet => Params {
                network,
                // About 65,000 hashes a block at the easiest: milliseconds on one core.
                pow_limit: CompactTarget(0x1f00ffff),
                retarget: true,
                target_spacing: 1,
                asert_half_life: 30,
                coinbase_maturity: 10,
                initial_subsidy: Amount::from_coins(50),
                halving_interval: 210_000,
                max_block_size: 4_000_000,
                max_future_block_time: 2 * 3600,
                genesis_time: 1_767_225_600, // 2026-01-01
                min_chain_work: peerchain_primitives::Work::ZERO,
            },
            Network::Regtest => Params {
                network,
                // Two hashes a block on average, and it never adjusts: tests make blocks at will.
                pow_limit: CompactTarget(0x207fffff),
                retarget: false,
                target_spacing: 1,
                asert_half_life: 30,
                coinbase_maturity: 10,
                initial_subsidy: Amount::from_coins(50),
                halving_interval: 100_000,
                max_block_size: 4_000_000,
                max_future_block_time: 2 * 3600,
                genesis_time: 1_767_225_600,
                min_chain_work: peerchain_primitives::Work::ZERO,
            },
        }
    }

    /// The block reward at `height`, before fees.
    pub fn subsidy(&self, height: u32) -> Amount {
        let halvings = height / self.halving_interval;
        if halvings >= 64 {
            return Amount::ZERO;
        }
        Amount::from_units(self.initial_subsidy.units() >> halvings)
    }

    /// The genesis block: fixed, never validated, the same on every node of the network.
    /// Its single output pays nobody (a key hash of zeros has no known key).
    pub fn genesis_block(&self) -> Block {
        let coinbase = Transaction {
            version: 1,
            inputs: vec![TxIn {
                prev_out: OutPoint::NULL,
                witness: Witness::Coinbase {
                    height: 0,
                    extra: format!("peerchain {} genesis", self.network).into_bytes(),
                },
            }],
            outputs: vec![TxOut::coins_to(Amount::ZERO, KeyHash::ZERO)],
            lock_time: 0,
        };
        let mut block = Block {
            header: BlockHeader {
                version: 1,
                prev_hash: BlockHash::ZERO,
                merkle_root: Default::default(),
                time: self.genesis_time,
                bits: self.pow_limit,
                nonce: 0,
            },
            transactions: vec![coinbase],
        };
        block.header.merkle_root = block.compute_merkle_root();
        block
    }

    /// The genesis block's hash: the network's identity at handshakes.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis_block().hash()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_network_has_its_own_genesis_and_bounded_supply() {
        let mut hashes = std::collections::HashSet::new();
        for network in Network::ALL {
            let params = Params::for_network(network);
            assert!(hashes.insert(params.genesis_hash()), "{network} genesis is not unique");
            assert!(params.pow_limit.expand().is_some());
            // The sum of all rewards stays within the money supply.
            let mut total: u64 = 0;
            for era in 0..64 {
                total += u64::from(params.halving_interval) * params.subsidy(era * params.halving_interval).units();
            }
            assert!(Amount::from_units(total).is_valid_money(), "{network}: {total}");
        }
    }

    /// Consensus: each network's genesis, pinned (its merkle root follows the leaf-tagged tree
    /// of the launch rules).
    #[test]
    fn genesis_hashes_are_pinned() {
        let pinned = [
            (Network::Mainnet, "497a4bc01349a214988f0e8322bca2509f33470cc3158e0ba811f8794764b0ae"),
            (Network::Testnet, "918b8e23facda54511b68e7bbe0767af79cce9f65c7e287b08eb4fa3a47a3778"),
            (Network::Devnet, "5f974e88fc94fdceef6d40f1244b1f12460926e7571e1b6b1dedb42983d9f0c7"),
            (Network::Regtest, "7c158665d75d7eee15ccc8f521fd8346d8b887d277fe17bd6516632c9e87b95d"),
        ];
        for (network, hash) in pinned {
            assert_eq!(Params::for_network(network).genesis_hash().to_string(), hash, "{network}");
        }
    }

    #[test]
    fn subsidy_halves() {
        let params = Params::for_network(Network::Devnet);
        assert_eq!(params.subsidy(0), Amount::from_coins(50));
        assert_eq!(params.subsidy(params.halving_interval), Amount::from_coins(25));
        assert_eq!(params.subsidy(params.halving_interval * 64), Amount::ZERO);
    }
}
