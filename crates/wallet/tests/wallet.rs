//! The wallet against an in-memory chain: scanning, balances, payments, conflicts, reorgs,
//! restore, encryption and migration. (Real nodes exercise it end to end in the CLI tests.)

use peerchain_primitives::{Address, Amount, FeeRate, KeyHash, Network, OutPoint, Transaction, TxIn, TxOut, Witness};
use peerchain_wallet::{ChainSource, Error, TxStatus, Wallet, generate_mnemonic};

mod support;

use support::*;

#[test]
fn mining_rewards_mature_and_a_payment_moves_coins_between_wallets() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut alice, _) = new_wallet(a_dir.path());
    let (mut bob, _) = new_wallet(b_dir.path());
    let chain = FakeChain::new();
    let alice_address = alice.address(false, None).unwrap();
    let bob_address = bob.address(false, None).unwrap();
    for _ in 0..12 {
        chain.mine_to(alice_address.key_hash, vec![]);
    }
    sync(&mut alice, &chain);
    // Heights 1..=12 at tip 12: the two oldest rewards have more than 10 confirmations.
    assert_eq!(balance(&alice, &chain), (coins(100), 0, coins(500)));

    let payment =
        alice.create_payment(&bob_address, Amount::from_coins(30), FeeRate::per_byte(2), None, 12, MATURITY).unwrap();
    let tx = payment.tx.clone();
    assert!(alice.add_pending(tx.clone(), true).unwrap());
    bob.add_pending(tx.clone(), false).unwrap();
    // One mature reward pays: the other stays confirmed, the change is unconfirmed.
    assert_eq!(payment.tx.inputs.len(), 1);
    let change = coins(50) - coins(30) - payment.fee.units();
    assert_eq!(balance(&alice, &chain), (coins(50), change, coins(500)));
    sync(&mut bob, &chain);
    assert_eq!(balance(&bob, &chain), (0, coins(30), 0));

    let fee_collector = KeyHash([9; 32]);
    chain.mine_to(fee_collector, vec![tx.clone()]);
    sync(&mut alice, &chain);
    sync(&mut bob, &chain);
    assert_eq!(balance(&bob, &chain), (coins(30), 0, 0));
    // At height 13 the rewards of heights 1 to 3 are mature; one of them was spent.
    assert_eq!(balance(&alice, &chain), (coins(100) + change, 0, coins(450)));

    let history = bob.history(chain.tip_height(), MATURITY);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].received.units(), coins(30));
    assert_eq!(history[0].confirmations, 1);
    let sent = alice.history(chain.tip_height(), MATURITY).into_iter().find(|e| e.txid == tx.txid()).unwrap();
    assert_eq!(sent.sent.units(), coins(50));
    assert_eq!(sent.received.units(), change);
    assert_eq!(sent.fee, Some(payment.fee));
}

#[test]
fn a_double_spend_that_confirms_marks_the_other_conflicted_and_a_reorg_undoes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wallet, _) = new_wallet(dir.path());
    let chain = FakeChain::new();
    let mine = wallet.address(false, None).unwrap();
    for _ in 0..11 {
        chain.mine_to(mine.key_hash, vec![]);
    }
    sync(&mut wallet, &chain);
    assert_eq!(balance(&wallet, &chain).0, coins(50));
    let to = Address::new(NET, KeyHash([5; 32]));
    let first =
        wallet.create_payment(&to, Amount::from_coins(10), FeeRate::per_byte(1), None, 11, MATURITY).unwrap().tx;
    wallet.add_pending(first.clone(), true).unwrap();
    // The same coin spent again elsewhere (another copy of the wallet, say), and that one is mined.
    let mut rival = first.clone();
    rival.outputs[0].amount = Amount::from_coins(11);
    rival.outputs[1].amount = Amount::from_units(rival.outputs[1].amount.units() - coins(1));
    let fork_point = chain.tip_height();
    chain.mine_to(KeyHash([9; 32]), vec![rival.clone()]);
    sync(&mut wallet, &chain);
    let status =
        |w: &Wallet, txid| w.history(chain.tip_height(), MATURITY).into_iter().find(|e| e.txid == txid).unwrap().status;
    assert!(matches!(status(&wallet, first.txid()), TxStatus::Conflicted { by, .. } if by == rival.txid()));
    assert!(matches!(status(&wallet, rival.txid()), TxStatus::Confirmed { .. }));

    // The block is reorganised away: the rival is pending again, the first no longer conflicted.
    chain.truncate(fork_point);
    chain.mine_to(KeyHash([8; 32]), vec![]);
    chain.mine_to(KeyHash([8; 32]), vec![]);
    let progress = wallet.sync(&chain, 100).unwrap();
    assert_eq!(progress.rewound, 1);
    assert_eq!(status(&wallet, first.txid()), TxStatus::Pending);
    assert_eq!(status(&wallet, rival.txid()), TxStatus::Pending);
}

#[test]
fn restoring_from_the_mnemonic_finds_the_same_coins_and_state_survives_a_restart() {
    let chain = FakeChain::new();
    let (first_dir, restored_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut wallet, words) = new_wallet(first_dir.path());
    // Pay three different addresses of the wallet, the last past the first one handed out.
    for _ in 0..3 {
        let address = wallet.address(true, None).unwrap();
        chain.mine_to(address.key_hash, vec![]);
    }
    sync(&mut wallet, &chain);
    let before = balance(&wallet, &chain);
    assert_eq!(before, (0, 0, coins(150)));
    drop(wallet);
    let reopened = Wallet::open(first_dir.path(), NET).unwrap();
    assert_eq!(balance(&reopened, &chain), before);

    let mut restored = Wallet::create(restored_dir.path(), NET, &words.to_uppercase(), None, 0).unwrap();
    sync(&mut restored, &chain);
    assert_eq!(balance(&restored, &chain), before);
    // The restored wallet moved past the used addresses.
    let next = restored.address(true, None).unwrap();
    assert!(reopened.history(3, MATURITY).iter().all(|e| e.received.units() == coins(50)));
    drop(reopened);
    assert_eq!(next, Wallet::open(first_dir.path(), NET).unwrap().address(true, None).unwrap());
}

#[test]
fn an_encrypted_wallet_needs_its_passphrase_and_refuses_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let words = generate_mnemonic();
    let mut wallet = Wallet::create(dir.path(), Network::Testnet, &words, Some("correct horse"), 0).unwrap();
    let file = std::fs::read_to_string(Wallet::keystore_path(dir.path())).unwrap();
    for word in words.split_whitespace() {
        assert!(!file.contains(&format!(" {word} ")) && !file.contains(&words), "the mnemonic is stored in the clear");
    }
    assert!(matches!(wallet.keystore().unlock(Some("wrong")), Err(Error::WrongPassphrase)));
    assert!(matches!(wallet.keystore().unlock(None), Err(Error::PassphraseRequired)));
    assert_eq!(
        wallet.keystore().mnemonic(Some("correct horse")).unwrap().as_deref().map(String::as_str),
        Some(words.as_str())
    );
    // Receiving needs no passphrase: the addresses were derived ahead.
    wallet.address(true, None).unwrap();
    let to = Address::new(Network::Testnet, KeyHash([5; 32]));
    assert!(matches!(
        wallet.create_payment(&to, Amount::from_coins(1), FeeRate::per_byte(1), Some("wrong"), 0, MATURITY),
        Err(Error::WrongPassphrase)
    ));
    assert!(matches!(
        wallet.create_payment(&to, Amount::from_coins(1), FeeRate::per_byte(1), Some("correct horse"), 0, MATURITY),
        Err(Error::InsufficientFunds { available, .. }) if available == Amount::ZERO
    ));
    // Public networks refuse a wallet without a passphrase.
    let other = tempfile::tempdir().unwrap();
    assert!(matches!(Wallet::create(other.path(), Network::Mainnet, &words, None, 0), Err(Error::PassphraseRequired)));
}

#[test]
fn bad_mnemonics_wrong_networks_and_damaged_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let words = generate_mnemonic();
    let mut swapped: Vec<&str> = words.split_whitespace().collect();
    swapped.swap(0, 1);
    if swapped.join(" ") != words {
        assert!(matches!(Wallet::create(dir.path(), NET, &swapped.join(" "), None, 0), Err(Error::InvalidMnemonic(_))));
    }
    assert!(matches!(Wallet::create(dir.path(), NET, "not a mnemonic", None, 0), Err(Error::InvalidMnemonic(_))));
    assert!(matches!(Wallet::open(dir.path(), NET), Err(Error::Missing(_))));
    Wallet::create(dir.path(), NET, &words, None, 0).unwrap();
    assert!(matches!(Wallet::create(dir.path(), NET, &words, None, 0), Err(Error::Exists(_))));
    assert!(matches!(Wallet::open(dir.path(), Network::Devnet), Err(Error::WrongNetwork { .. })));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(Wallet::keystore_path(dir.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::write(Wallet::keystore_path(dir.path()), "{ not json").unwrap();
    assert!(matches!(Wallet::open(dir.path(), NET), Err(Error::Corrupt { .. })));
}

#[test]
fn a_version_one_wallet_is_migrated_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let seed = [7u8; 32];
    let expected = peerchain_primitives::SecretKey::from_seed(seed).public_key().key_hash();
    let v1 = serde_json::json!({ "version": 1, "network": "regtest", "keys": [hex::encode(seed)] });
    std::fs::write(Wallet::keystore_path(dir.path()), v1.to_string()).unwrap();
    let mut wallet = Wallet::open(dir.path(), NET).unwrap();
    assert_eq!(wallet.address(false, None).unwrap().key_hash, expected);
    let chain = FakeChain::new();
    for _ in 0..12 {
        chain.mine_to(expected, vec![]);
    }
    sync(&mut wallet, &chain);
    let to = Address::new(NET, KeyHash([5; 32]));
    let payment = wallet.create_payment(&to, Amount::from_coins(70), FeeRate::per_byte(1), None, 12, MATURITY).unwrap();
    assert_eq!(payment.tx.inputs.len(), 2);
}

#[test]
fn a_rescan_from_before_the_wallets_birth_finds_older_payments() {
    let chain = FakeChain::new();
    let words = generate_mnemonic();
    let early = peerchain_wallet::key_from_mnemonic(&words, NET, peerchain_wallet::KeyChain::Receive, 0).unwrap();
    // The words were paid at height 1, before this wallet was made at height 5.
    chain.mine_to(early.public_key().key_hash(), vec![]);
    for _ in 0..4 {
        chain.mine_to(KeyHash([9; 32]), vec![]);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut wallet = Wallet::create(dir.path(), NET, &words, None, 5).unwrap();
    sync(&mut wallet, &chain);
    assert_eq!(balance(&wallet, &chain), (0, 0, 0));
    wallet.rescan(Some(0)).unwrap();
    sync(&mut wallet, &chain);
    assert_eq!(balance(&wallet, &chain), (0, 0, coins(50)));
    // The birth moved down for good: a later plain rescan still finds it.
    drop(wallet);
    let mut wallet = Wallet::open(dir.path(), NET).unwrap();
    wallet.rescan(None).unwrap();
    sync(&mut wallet, &chain);
    assert_eq!(balance(&wallet, &chain), (0, 0, coins(50)));
    assert_eq!(wallet.scanned_height(), Some(5));
}

/// Review L9: a payment to the wallet that left the mempool without confirming (evicted, or
/// never relayed) stops counting as unconfirmed income; if it confirms later, the scan finds
/// it again. The wallet's own payments are kept, to be broadcast again.
#[test]
fn a_payment_to_the_wallet_that_left_the_mempool_is_forgotten_until_it_confirms() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wallet, _) = new_wallet(dir.path());
    let chain = FakeChain::new();
    let address = wallet.address(false, None).unwrap();
    sync(&mut wallet, &chain);
    let payment = Transaction {
        version: 1,
        inputs: vec![TxIn {
            prev_out: OutPoint::new(peerchain_primitives::TxId([4; 32]), 0),
            witness: Witness::Multisig { signatures: vec![] },
        }],
        outputs: vec![TxOut::coins_to(Amount::from_coins(7), address.key_hash)],
        lock_time: 0,
    };
    wallet.add_pending(payment.clone(), false).unwrap();
    assert_eq!(balance(&wallet, &chain), (0, coins(7), 0));

    let mempool: std::collections::HashSet<_> = [payment.txid()].into();
    let none = std::collections::HashSet::new();
    // Still in the mempool, or too recent to judge: kept.
    assert!(wallet.forget_vanished_incoming(&mempool, std::time::Duration::ZERO).unwrap().is_empty());
    assert!(wallet.forget_vanished_incoming(&none, std::time::Duration::from_secs(600)).unwrap().is_empty());
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let forgotten = wallet.forget_vanished_incoming(&none, std::time::Duration::ZERO).unwrap();
    assert_eq!(forgotten, vec![payment.txid()]);
    assert_eq!(balance(&wallet, &chain), (0, 0, 0), "no phantom unconfirmed income");
    drop(wallet);
    let mut wallet = Wallet::open(dir.path(), NET).unwrap();
    assert_eq!(balance(&wallet, &chain), (0, 0, 0), "forgotten on disk too");
    // It confirms after all: the scan finds it.
    chain.mine_to(KeyHash::ZERO, vec![payment.clone()]);
    sync(&mut wallet, &chain);
    assert_eq!(balance(&wallet, &chain), (coins(7), 0, 0));
}
