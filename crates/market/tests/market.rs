//! Offers checked against their coin, the book's rules and bounds, and the index of tokens
//! and trades following a chain that reorganises.

use peerchain_consensus::Params;
use peerchain_market::{Added, Book, Index, Listed, NotListed, Offer, OfferError, Policy, verify_signatures};
use peerchain_primitives::{
    Amount, AssetId, Block, BlockHeader, Coin, CompactTarget, Encode, Lock, MerkleRoot, Network, OutPoint, SecretKey,
    SigHashMode, TokenId, TokenMetadata, Transaction, TxId, TxIn, TxOut, TxSignature, Witness,
};

const NET: Network = Network::Regtest;
const TIP: u32 = 100;

fn gold() -> AssetId {
    AssetId::Token(TokenId([7; 32]))
}

/// `key` offers `give` (at `anchor`) for `want_units` of coin, until `expiry`.
fn offer(key: &SecretKey, anchor: OutPoint, give: &TxOut, want_units: u64, expiry: u32) -> Offer {
    let want = TxOut::coins_to(Amount::from_units(want_units), key.public_key().key_hash());
    let mode = SigHashMode::SingleInputOutputUntil(expiry);
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: anchor, witness: Witness::Multisig { signatures: vec![] } }],
        outputs: vec![want.clone()],
        lock_time: 0,
    };
    let message = tx.signature_hash(0, give, mode, NET.magic());
    tx.inputs[0].witness =
        Witness::Key { public_key: key.public_key(), signature: TxSignature { mode, signature: key.sign(&message) } };
    Offer { input: tx.inputs.remove(0), want }
}

fn gold_coin(key: &SecretKey, units: u64) -> Coin {
    Coin {
        output: TxOut {
            asset: gold(),
            amount: Amount::from_units(units),
            lock: Lock::Key(key.public_key().key_hash()),
        },
        height: 50,
        is_coinbase: false,
    }
}

fn anchor(n: u8) -> OutPoint {
    OutPoint::new(TxId([n; 32]), 0)
}

fn checked(offer: &Offer, coin: &Coin) -> Result<(), OfferError> {
    let params = Params::for_network(NET);
    let terms = offer.check(coin, TIP, &params, &Policy::default())?;
    if verify_signatures(&[(offer, &coin.output, &terms)], NET.magic()) == [true] {
        Ok(())
    } else {
        Err(OfferError::BadSignature)
    }
}

#[test]
fn an_offer_is_checked_against_its_coin_and_its_signature() {
    let maker = SecretKey::from_seed([1; 32]);
    let coin = gold_coin(&maker, 1_000);
    let good = offer(&maker, anchor(1), &coin.output, 5_000, TIP + 50);
    assert_eq!(checked(&good, &coin), Ok(()));
    assert_eq!(Offer::from_wire(&good.to_bytes()).unwrap(), good);

    // A changed price, another signer's coin, the same asset both ways, a bad expiry.
    let mut cheaper = good.clone();
    cheaper.want.amount = Amount::from_units(4_000);
    assert_eq!(checked(&cheaper, &coin), Err(OfferError::BadSignature));
    let other = SecretKey::from_seed([2; 32]);
    assert_eq!(checked(&good, &gold_coin(&other, 1_000)), Err(OfferError::NotTheMakers));
    let mut same = coin.clone();
    same.output.asset = AssetId::Coin;
    same.output.amount = Amount::from_units(10_000_000);
    let same_offer = offer(&maker, anchor(1), &same.output, 5_000, TIP + 50);
    assert_eq!(checked(&same_offer, &same), Err(OfferError::SameAsset));
    let soon = offer(&maker, anchor(1), &coin.output, 5_000, TIP + 1);
    assert!(matches!(checked(&soon, &coin), Err(OfferError::BadExpiry { .. })));
    let far = offer(&maker, anchor(1), &coin.output, 5_000, TIP + 20_000);
    assert!(matches!(checked(&far, &coin), Err(OfferError::BadExpiry { .. })));
    // An expiry at the edge is the relayer's bad luck, not its fault; a forged one is.
    assert!(!OfferError::BadExpiry { expiry: 1, earliest: 2, latest: 3 }.is_misbehaviour());
    assert!(OfferError::BadSignature.is_misbehaviour());

    // Wrong forms: no expiry, a want paid to a multisig, oversized bytes.
    let mut no_expiry = good.clone();
    if let Witness::Key { signature, .. } = &mut no_expiry.input.witness {
        signature.mode = SigHashMode::SingleInputOutput;
    }
    assert_eq!(no_expiry.terms().map(|_| ()), Err(OfferError::BadSignatureMode));
    let mut bad_want = good.clone();
    bad_want.want.lock = Lock::Multisig { threshold: 1, keys: vec![maker.public_key()] };
    assert_eq!(bad_want.terms().map(|_| ()), Err(OfferError::BadWant));
    assert!(matches!(Offer::from_wire(&vec![1; 600]), Err(OfferError::TooLarge(600))));
    assert!(matches!(Offer::from_wire(&[1, 2, 3]), Err(OfferError::Malformed(_))));
}

fn listed(offer: Offer, coin: &Coin) -> Listed {
    let terms = offer.terms().unwrap();
    Listed::new(offer, coin.output.clone(), &terms, coin.height)
}

#[test]
fn the_book_keeps_one_offer_per_coin_drops_spent_and_expiring_ones_and_pages() {
    let maker = SecretKey::from_seed([1; 32]);
    let coin = gold_coin(&maker, 1_000);
    let mut book = Book::new(1 << 20);
    let first = offer(&maker, anchor(1), &coin.output, 5_000, TIP + 50);
    assert_eq!(book.add(listed(first.clone(), &coin)), Ok(Added::New));
    assert_eq!(book.add(listed(first.clone(), &coin)), Ok(Added::Known));
    // Asking more on the same coin is refused; asking less replaces.
    let dearer = offer(&maker, anchor(1), &coin.output, 6_000, TIP + 50);
    assert_eq!(book.add(listed(dearer, &coin)), Err(NotListed::AnchorTaken(first.id())));
    let cheaper = offer(&maker, anchor(1), &coin.output, 4_000, TIP + 50);
    assert_eq!(book.add(listed(cheaper.clone(), &coin)), Ok(Added::Replaced(first.id())));
    assert_eq!(book.len(), 1);

    for n in 2..12u8 {
        let o = offer(&maker, anchor(n), &coin.output, 1_000 * u64::from(n), TIP + u32::from(n));
        book.add(listed(o, &coin)).unwrap();
    }
    assert_eq!(book.len(), 11);
    let prices: Vec<u64> = book.side(gold(), AssetId::Coin).map(|l| l.offer.want.amount.units()).collect();
    let mut sorted = prices.clone();
    sorted.sort_unstable();
    assert_eq!(prices, sorted, "cheapest first");

    assert_eq!(book.remove_anchors(&[anchor(1), anchor(99)]), vec![cheaper.id()]);
    // Expiring within two blocks of tip 105: expiries 102..=106 go.
    let gone = book.expire(TIP + 5, 2);
    assert_eq!(gone.len(), 5);
    assert!(book.iter().all(|l| l.expiry >= TIP + 7));

    let (page, more) = book.page(None, 1);
    assert_eq!((page.len(), more), (1, true));
    let mut seen = vec![page[0].id];
    let mut after = page[0].id;
    loop {
        let (page, more) = book.page(Some(after), 300);
        seen.extend(page.iter().map(|l| l.id));
        after = page.last().unwrap().id;
        if !more {
            break;
        }
    }
    assert_eq!(seen.len(), book.len(), "pages cover the book once");
}

#[test]
fn a_full_book_keeps_the_offers_that_stake_most() {
    let maker = SecretKey::from_seed([1; 32]);
    let coin_of = |units: u64| Coin {
        output: TxOut::coins_to(Amount::from_units(units), maker.public_key().key_hash()),
        height: 50,
        is_coinbase: false,
    };
    let gold_want = |n: u8, units: u64| {
        let coin = coin_of(units);
        let mut o = offer(&maker, anchor(n), &coin.output, 10, TIP + 50);
        o.want.asset = gold();
        listed(o, &coin)
    };
    // Room for three (amounts encode in a fixed width, so every offer here has one size).
    let size = gold_want(9, 1).offer.encoded_len();
    let mut book = Book::new(size * 3);
    for (n, units) in [(1, 300_000), (2, 200_000), (3, 400_000)] {
        book.add(gold_want(n, units)).unwrap();
    }
    assert_eq!(book.add(gold_want(4, 100_000)), Err(NotListed::Full), "stakes less than all");
    book.add(gold_want(5, 500_000)).unwrap();
    let stakes: Vec<u64> = book.iter().map(|l| l.give.amount.units()).collect();
    assert!(!stakes.contains(&200_000) && stakes.len() == 3, "the least staked made room: {stakes:?}");
    assert!(book.bytes() <= size * 3);
}

fn block(prev: &Block, transactions: Vec<Transaction>) -> Block {
    let mut block = Block {
        header: BlockHeader {
            version: 1,
            prev_hash: prev.hash(),
            merkle_root: MerkleRoot::ZERO,
            time: prev.header.time + 1,
            bits: CompactTarget(0x207fffff),
            nonce: 0,
        },
        transactions,
    };
    block.header.merkle_root = block.compute_merkle_root();
    block
}

#[test]
fn the_index_reads_tokens_supplies_and_trades_and_undoes_a_reorganisation() {
    let dir = tempfile::tempdir().unwrap();
    let path = Index::path_in(dir.path());
    let mut index = Index::open(&path).unwrap();
    let alice = SecretKey::from_seed([1; 32]);
    let funding = OutPoint::new(TxId([3; 32]), 0);
    let token = TokenId::issued_by(&funding);
    let metadata = TokenMetadata::new("gold", 2, None).unwrap();
    let to_alice = |asset, units| TxOut {
        asset,
        amount: Amount::from_units(units),
        lock: Lock::Key(alice.public_key().key_hash()),
    };
    let key_witness = Witness::Key {
        public_key: alice.public_key(),
        signature: TxSignature { mode: SigHashMode::All, signature: alice.sign(&[0; 32]) },
    };
    let issue = Transaction {
        version: 1,
        inputs: vec![TxIn { prev_out: funding, witness: key_witness.clone() }],
        outputs: vec![
            TxOut {
                asset: AssetId::Token(token),
                amount: Amount::ZERO,
                lock: Lock::Burn { data: metadata.to_bytes() },
            },
            to_alice(AssetId::Token(token), 1_000),
            to_alice(AssetId::MintRight(token), 1),
        ],
        lock_time: 0,
    };
    let genesis = block(
        &Block {
            header: BlockHeader {
                version: 1,
                prev_hash: Default::default(),
                merkle_root: MerkleRoot::ZERO,
                time: 0,
                bits: CompactTarget(0x207fffff),
                nonce: 0,
            },
            transactions: vec![],
        },
        vec![],
    );
    let one = block(&genesis, vec![issue.clone()]);
    let spent_of = |txs: Vec<Transaction>| {
        move |outpoint: &OutPoint| {
            txs.iter().find(|t| t.txid() == outpoint.txid).and_then(|t| t.outputs.get(outpoint.index as usize).cloned())
        }
    };
    index.connect_block(&one, 1, &spent_of(vec![]), false).unwrap();
    let info = index.token(&token).unwrap().clone();
    assert_eq!((info.metadata.name.as_str(), info.supply.units(), info.mintable), ("gold", 1_000, true));

    // A take of a maker's offer: the maker's 1,000 gold for 5,000 units of coin; and a burn.
    let mut offer_witness = key_witness.clone();
    if let Witness::Key { signature, .. } = &mut offer_witness {
        signature.mode = SigHashMode::SingleInputOutputUntil(50);
    }
    let take = Transaction {
        version: 1,
        inputs: vec![
            TxIn { prev_out: OutPoint::new(issue.txid(), 1), witness: offer_witness },
            TxIn { prev_out: OutPoint::new(TxId([4; 32]), 0), witness: key_witness.clone() },
        ],
        outputs: vec![
            to_alice(AssetId::Coin, 5_000),
            to_alice(AssetId::Token(token), 900),
            TxOut { asset: AssetId::Token(token), amount: Amount::from_units(100), lock: Lock::Burn { data: vec![] } },
        ],
        lock_time: 0,
    };
    let coins =
        Transaction { version: 1, inputs: vec![], outputs: vec![to_alice(AssetId::Coin, 10_000)], lock_time: 0 };
    let two = block(&one, vec![take.clone()]);
    let spent = move |outpoint: &OutPoint| {
        if outpoint.txid == TxId([4; 32]) {
            coins.outputs.first().cloned()
        } else {
            spent_of(vec![issue.clone()])(outpoint)
        }
    };
    index.connect_block(&two, 2, &spent, true).unwrap();
    let trades = index.trades(None, 10).unwrap();
    assert_eq!(trades.len(), 1);
    assert_eq!(
        (trades[0].give, trades[0].got),
        ((AssetId::Token(token), Amount::from_units(1_000)), (AssetId::Coin, Amount::from_units(5_000)))
    );
    assert_eq!(trades[0].price(), 5.0);
    assert_eq!(index.token(&token).unwrap().supply.units(), 900, "burnt 100");

    // Reopened, the same; rewound past block 2, the trade and the burn are gone.
    drop(index);
    let mut index = Index::open(&path).unwrap();
    assert_eq!(index.scan_tip(), Some((2, two.hash())));
    assert_eq!(index.token(&token).unwrap().supply.units(), 900);
    index.rewind_to(Some(1)).unwrap();
    assert!(index.trades(None, 10).unwrap().is_empty());
    assert_eq!(index.token(&token).unwrap().supply.units(), 1_000);
    assert_eq!(index.scan_tip(), Some((1, one.hash())));
    index.rewind_to(None).unwrap();
    assert!(index.tokens().is_empty() && index.scan_tip().is_none());
}
