use peerchain_consensus::{Params, coinbase_transaction, connect_block};
use peerchain_primitives::{Amount, Block, BlockHeader, CompactTarget, Network, SecretKey};

use super::*;

fn block_on(parent: &BlockHeader, height: u32, key: &SecretKey) -> Block {
    let coinbase = coinbase_transaction(height, Amount::from_coins(50), key.public_key().key_hash(), vec![]);
    let mut block = Block {
        header: BlockHeader {
            version: 1,
            prev_hash: parent.hash(),
            merkle_root: Default::default(),
            time: parent.time + 1,
            bits: parent.bits,
            nonce: 0,
        },
        transactions: vec![coinbase],
    };
    block.header.merkle_root = block.compute_merkle_root();
    block
}

fn snapshot(store: &Store) -> Vec<(OutPoint, Coin)> {
    let mut coins = Vec::new();
    store
        .read()
        .unwrap()
        .for_each_utxo(|op, coin| {
            coins.push((op, coin));
            Ok(())
        })
        .unwrap();
    coins
}

#[test]
fn a_new_store_starts_at_genesis_and_refuses_another_network() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let params = Params::for_network(Network::Regtest);
    {
        let store = Store::open(&path, &params).unwrap();
        let reader = store.read().unwrap();
        assert_eq!(reader.coins_tip().unwrap(), params.genesis_hash());
        assert_eq!(reader.main_hash(0).unwrap(), Some(params.genesis_hash()));
        assert_eq!(reader.entry(&params.genesis_hash()).unwrap().unwrap().height, 0);
        assert_eq!(reader.utxo_count().unwrap(), 0);
    }
    // Reopening the same network works; another network is refused with both genesis hashes.
    Store::open(&path, &params).unwrap();
    let err = Store::open(&path, &Params::for_network(Network::Devnet)).unwrap_err();
    assert!(matches!(err, Error::WrongNetwork { .. }), "{err}");
}

#[test]
fn connect_records_indexes_and_undo_and_disconnect_returns_the_spent_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let params = Params::for_network(Network::Regtest);
    let store = Store::open(&dir.path().join("chain.redb"), &params).unwrap();
    let key = SecretKey::from_seed([4; 32]);
    let genesis = params.genesis_block();
    let block = block_on(&genesis.header, 1, &key);
    let before = snapshot(&store);

    let effects = store
        .write(true, |w| -> Result<_, Error> {
            let effects = connect_block(&block, 1, &*w, &params).expect("valid block");
            w.put_block(&block.hash(), &block.to_bytes())?;
            w.connect(&block.hash(), 1, &effects)?;
            Ok(effects)
        })
        .unwrap();
    let reader = store.read().unwrap();
    let coinbase_txid = block.transactions[0].txid();
    assert_eq!(reader.main_hash(1).unwrap(), Some(block.hash()));
    // The UTXO set and transaction index are the coin cache's to write back: untouched so far.
    assert_eq!(reader.tx_location(&coinbase_txid).unwrap(), None);
    assert_eq!(reader.coins_tip().unwrap(), genesis.hash());
    assert_eq!(snapshot(&store), before);
    drop(reader);

    let created: Vec<(OutPoint, Option<Coin>)> = effects.created.iter().map(|(o, c)| (*o, Some(c.clone()))).collect();
    let location = TxLocation { height: 1, position: 0 };
    store
        .write(true, |w| {
            w.write_back(
                created.iter().map(|(o, c)| (o, c.as_ref())),
                [(&coinbase_txid, Some(&location))],
                &block.hash(),
            )
        })
        .unwrap();
    let reader = store.read().unwrap();
    assert_eq!(reader.coins_tip().unwrap(), block.hash());
    assert_eq!(reader.tx_location(&coinbase_txid).unwrap(), Some(location));
    assert!(reader.coin(&OutPoint::new(coinbase_txid, 0)).unwrap().is_some());
    drop(reader);

    let spent = store.write(true, |w| w.disconnect(&block, 1)).unwrap();
    assert_eq!(spent, effects.spent);
    let removed: Vec<OutPoint> = effects.created.iter().map(|(o, _)| *o).collect();
    store
        .write(true, |w| w.write_back(removed.iter().map(|o| (o, None)), [(&coinbase_txid, None)], &genesis.hash()))
        .unwrap();
    let reader = store.read().unwrap();
    assert_eq!(reader.coins_tip().unwrap(), genesis.hash());
    assert_eq!(reader.tx_location(&coinbase_txid).unwrap(), None);
    assert_eq!(reader.main_hash(1).unwrap(), None);
    assert_eq!(snapshot(&store), before);
    drop(reader);
    // The undo data stays: a restart may have to disconnect the block again.
    assert_eq!(store.write(true, |w| w.disconnect(&block, 1)).unwrap(), effects.spent);
}

#[test]
fn a_failed_write_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let params = Params::for_network(Network::Regtest);
    let store = Store::open(&dir.path().join("chain.redb"), &params).unwrap();
    let block = block_on(&params.genesis_block().header, 1, &SecretKey::from_seed([5; 32]));
    let result: Result<(), Error> = store.write(true, |w| {
        w.put_block(&block.hash(), &block.to_bytes())?;
        Err(Error::Corrupt { what: "test", detail: "abort on purpose".into() })
    });
    assert!(result.is_err());
    assert_eq!(store.read().unwrap().block(&block.hash()).unwrap(), None);
}

#[test]
fn disconnecting_a_block_that_was_never_connected_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let params = Params::for_network(Network::Regtest);
    let store = Store::open(&dir.path().join("chain.redb"), &params).unwrap();
    let block = block_on(&params.genesis_block().header, 1, &SecretKey::from_seed([5; 32]));
    let err = store.write(true, |w| w.disconnect(&block, 1)).unwrap_err();
    assert!(matches!(err, Error::Corrupt { what: "undo data", .. }), "{err}");
}

#[test]
fn main_chain_rows_above_a_height_can_be_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let params = Params::for_network(Network::Regtest);
    let store = Store::open(&dir.path().join("chain.redb"), &params).unwrap();
    let key = SecretKey::from_seed([6; 32]);
    let one = block_on(&params.genesis_block().header, 1, &key);
    let two = block_on(&one.header, 2, &key);
    store
        .write(true, |w| -> Result<(), Error> {
            for (height, block) in [(1, &one), (2, &two)] {
                let effects = peerchain_consensus::BlockEffects {
                    txids: vec![block.transactions[0].txid()],
                    ..Default::default()
                };
                w.connect(&block.hash(), height, &effects)?;
            }
            w.truncate_main_chain(1)
        })
        .unwrap();
    let reader = store.read().unwrap();
    assert_eq!(reader.main_hash(1).unwrap(), Some(one.hash()));
    assert_eq!(reader.main_hash(2).unwrap(), None);
}

/// Pins the on-disk encoding of index entries: a change here is a format change, which
/// needs a new table name and a migration.
#[test]
fn index_entry_format_snapshot() {
    let entry = IndexEntry {
        header: BlockHeader {
            version: 1,
            prev_hash: BlockHash([0x11; 32]),
            merkle_root: peerchain_primitives::MerkleRoot([0x22; 32]),
            time: 0x0102_0304,
            bits: CompactTarget(0x207f_ffff),
            nonce: 7,
        },
        height: 9,
        total_work: Work::from_be_bytes([0x33; 32]),
        has_data: true,
        invalid: true,
    };
    let encoded = hex::encode(entry.encode());
    assert_eq!(
        encoded,
        concat!(
            "01000000",
            "1111111111111111111111111111111111111111111111111111111111111111",
            "2222222222222222222222222222222222222222222222222222222222222222",
            "0403020100000000",
            "ffff7f20",
            "0700000000000000",
            "09000000",
            "3333333333333333333333333333333333333333333333333333333333333333",
            "03"
        )
    );
    assert_eq!(IndexEntry::decode(&entry.encode()), Ok(entry));
    assert_eq!(FORMAT_VERSION, 1);
}
