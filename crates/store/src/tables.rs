//! Every redb table, in one place. A name carries its format version: a change to what a
//! table holds gets a new name and a migration, never a silent reinterpretation.

use redb::TableDefinition;

/// Small values: format version, genesis hash, tip.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta_v1");
/// Every known header with its height, cumulative work and status, keyed by block hash.
pub(crate) const BLOCK_INDEX: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("block_index_v1");
/// Full blocks in their canonical encoding, keyed by block hash.
pub(crate) const BLOCKS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blocks_v1");
/// For each connected block, the outputs it spent, to restore them on disconnect.
pub(crate) const UNDO: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("undo_v1");
/// The unspent outputs: outpoint (txid ‖ big-endian index) to coin.
pub(crate) const UTXOS: TableDefinition<&[u8; 36], &[u8]> = TableDefinition::new("utxos_v1");
/// The main chain: height to block hash.
pub(crate) const MAIN_CHAIN: TableDefinition<u32, &[u8; 32]> = TableDefinition::new("main_chain_v1");
/// Where each main-chain transaction is: txid to height ‖ position (both little-endian u32).
pub(crate) const TX_INDEX: TableDefinition<&[u8; 32], [u8; 8]> = TableDefinition::new("tx_index_v1");
/// Mempool transactions saved at shutdown, to be revalidated at start.
pub(crate) const MEMPOOL: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("mempool_v1");

/// The layout version in META; bump with every table change above.
pub(crate) const FORMAT_VERSION: u32 = 1;

pub(crate) const KEY_FORMAT: &str = "format_version";
pub(crate) const KEY_GENESIS: &str = "genesis";
pub(crate) const KEY_TIP: &str = "tip";
