//! Writes the seed corpora: real encodings of every kind of message each target reads, so
//! that fuzzing starts from valid inputs and mutates them (`fuzz/seeds/<target>/`). Run from
//! the repository: `cargo run -p peerchain-fuzz --example make-seeds`.

use std::path::Path;

use peerchain_blobs::Bitmap;
use peerchain_blobs::manifest::{Manifest, ManifestFile};
use peerchain_consensus::{Params, coinbase_transaction};
use peerchain_net::protocol::Message;
use peerchain_net::{
    Announcement, FileRequest, FileResponse, Hit, MarketRequest, MarketResponse, Provider, Request, Response, Status,
};
use peerchain_primitives::{
    Amount, AssetId, Block, BlockHash, CompactBlock, ContentId, Encode, Lock, LockHash, Network, OutPoint, SecretKey,
    SigHashMode, TokenId, Transaction, TxId, TxIn, TxOut, TxSignature, Witness, Work,
};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let folder = root.join(target);
        std::fs::create_dir_all(&folder).expect("writable");
        std::fs::write(folder.join(name), bytes).expect("writable");
    };
    let params = Params::for_network(Network::Regtest);
    let (alice, bob) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
    let signature = |key: &SecretKey, mode| TxSignature { mode, signature: key.sign(&[7; 32]) };

    let payment = {
        let mut tx = Transaction {
            version: 1,
            inputs: vec![TxIn {
                prev_out: OutPoint::new(TxId([9; 32]), 1),
                witness: Witness::Coinbase { height: 0, extra: vec![] },
            }],
            outputs: vec![
                TxOut::coins_to(Amount::from_coins(3), bob.public_key().key_hash()),
                TxOut::coins_to(Amount::from_units(12_345), alice.public_key().key_hash()),
            ],
            lock_time: 0,
        };
        let spent = TxOut::coins_to(Amount::from_coins(4), alice.public_key().key_hash());
        let message = tx.signature_hash(0, &spent, SigHashMode::All, Network::Regtest.magic());
        tx.inputs[0].witness = Witness::Key {
            public_key: alice.public_key(),
            signature: TxSignature { mode: SigHashMode::All, signature: alice.sign(&message) },
        };
        tx
    };
    let contract = Transaction {
        version: 1,
        inputs: vec![
            TxIn {
                prev_out: OutPoint::new(TxId([5; 32]), 0),
                witness: Witness::Multisig {
                    signatures: vec![
                        (0, signature(&alice, SigHashMode::All)),
                        (2, signature(&bob, SigHashMode::SingleInputOutput)),
                    ],
                },
            },
            TxIn {
                prev_out: OutPoint::new(TxId([6; 32]), 3),
                witness: Witness::HashLockClaim {
                    preimage: vec![4; 32],
                    public_key: bob.public_key(),
                    signature: signature(&bob, SigHashMode::All),
                },
            },
            TxIn {
                prev_out: OutPoint::new(TxId([7; 32]), 2),
                witness: Witness::TimeLockRefund {
                    public_key: alice.public_key(),
                    signature: signature(&alice, SigHashMode::All),
                },
            },
        ],
        outputs: vec![
            TxOut {
                asset: AssetId::Token(TokenId::issued_by(&OutPoint::new(TxId([5; 32]), 0))),
                amount: Amount::from_units(1_000_000),
                lock: Lock::Multisig { threshold: 2, keys: vec![alice.public_key(), bob.public_key()] },
            },
            TxOut {
                asset: AssetId::Coin,
                amount: Amount::from_coins(1),
                lock: Lock::HashTimeLock {
                    hash: LockHash([3; 32]),
                    claim: bob.public_key().key_hash(),
                    refund: alice.public_key().key_hash(),
                    refund_height: 500,
                },
            },
            TxOut {
                asset: AssetId::Coin,
                amount: Amount::from_coins(2),
                lock: Lock::Escrow {
                    threshold: 2,
                    keys: vec![alice.public_key(), bob.public_key()],
                    after: peerchain_primitives::After::Age(144),
                    fallback: alice.public_key().key_hash(),
                },
            },
            TxOut {
                asset: AssetId::Coin,
                amount: Amount::from_coins(3),
                lock: Lock::Loan {
                    borrower: bob.public_key().key_hash(),
                    lender: alice.public_key().key_hash(),
                    repay_asset: AssetId::Coin,
                    repay_amount: Amount::from_coins(1),
                    term: 100,
                },
            },
        ],
        lock_time: 77,
    };
    let coinbase = coinbase_transaction(1, Amount::from_coins(50), alice.public_key().key_hash(), b"seed".to_vec());
    let mut block = Block {
        header: params.genesis_block().header,
        transactions: vec![coinbase.clone(), payment.clone(), contract.clone()],
    };
    block.header.prev_hash = params.genesis_hash();
    block.header.merkle_root = block.compute_merkle_root();
    let genesis = params.genesis_block();
    let compact = CompactBlock::of(&block).expect("a coinbase");

    for (name, tx) in [("payment", &payment), ("contract", &contract), ("coinbase", &coinbase)] {
        write("transaction", name, &tx.to_bytes());
    }
    write("block", "three", &block.to_bytes());
    write("block", "genesis", &genesis.to_bytes());
    write("header", "genesis", &genesis.header.to_bytes());
    write("header", "next", &block.header.to_bytes());
    write("compact_block", "three", &compact.to_bytes());
    write("announcement", "header", &Announcement::Header(block.header).to_bytes());
    write("announcement", "compact", &Announcement::Compact(compact).to_bytes());
    let mut batch = Vec::new();
    peerchain_primitives::encode::put_list(&mut batch, &[payment.clone(), contract.clone()]);
    write("transaction_batch", "two", &batch);

    let status = Status {
        genesis: params.genesis_hash(),
        best_height: 12,
        best_hash: block.hash(),
        total_work: Work::from_be_bytes([1; 32]),
    };
    let requests = [
        ("status", Request::Status(status)),
        ("headers", Request::GetHeaders { locator: vec![block.hash(), params.genesis_hash()], max: 2000 }),
        ("blocks", Request::GetBlocks(vec![block.hash(), BlockHash([2; 32])])),
        ("transactions", Request::GetBlockTransactions { block: block.hash(), slots: vec![0, 1, 5] }),
    ];
    for (name, request) in requests {
        write("sync_request", name, &request.to_bytes());
    }
    let responses = [
        ("status", Response::Status(status)),
        ("headers", Response::Headers(vec![genesis.header, block.header])),
        ("blocks", Response::Blocks(vec![block.to_bytes(), genesis.to_bytes()])),
        ("refused", Response::Refused("busy".into())),
        ("transactions", Response::Transactions(vec![payment.clone(), contract.clone()])),
    ];
    for (name, response) in responses {
        write("sync_response", name, &response.to_bytes());
    }

    let id = ContentId([8; 32]);
    let file_requests = [
        ("info", FileRequest::Info(id)),
        ("range", FileRequest::Range { id, start: 3, count: 64 }),
        ("search", FileRequest::Search { query_id: 42, words: vec!["holiday".into(), "film".into()], hops: 3 }),
        ("pay", FileRequest::Pay { id, payout: vec![1; 250] }),
    ];
    for (name, request) in file_requests {
        write("file_request", name, &request.to_bytes());
    }
    let mut pieces = Bitmap::new(10);
    pieces.set(3);
    let provider = Provider {
        peer: "12D3KooWQLBBmRbeYPHJmtHbVSouqNhhckSQ1tP5mM4DFfhojATa".parse().expect("a peer id"),
        addresses: vec!["/ip4/192.0.2.7/tcp/9333".parse().expect("a multiaddr")],
    };
    let file_responses = [
        (
            "info",
            FileResponse::Info {
                size: 1 << 20,
                name: "film.mkv".into(),
                directory: false,
                pieces: Some(pieces.to_bytes()),
                price: None,
            },
        ),
        (
            "info_on_sale",
            FileResponse::Info {
                size: 1 << 20,
                name: "film.mkv".into(),
                directory: false,
                pieces: None,
                price: Some(peerchain_net::Price { units: 25_000, seller: peerchain_primitives::PublicKey([3; 32]) }),
            },
        ),
        ("paid", FileResponse::Paid(12_500)),
        ("range", FileResponse::Range(vec![5u8; 300].into())),
        (
            "hits",
            FileResponse::Hits(vec![Hit {
                id,
                name: "film.mkv".into(),
                size: 99,
                directory: false,
                providers: vec![provider],
            }]),
        ),
        ("refused", FileResponse::Refused("busy".into())),
    ];
    for (name, response) in file_responses {
        let mut head = Vec::new();
        let tail = response.encode_head(&mut head);
        head.extend_from_slice(tail);
        write("file_response", name, &head);
    }
    // Market: an offer of a token for coins, signed over its input and paired output with an
    // expiry, and the messages that carry books.
    let offer = peerchain_market::Offer {
        input: TxIn {
            prev_out: OutPoint::new(TxId([6; 32]), 2),
            witness: Witness::Key {
                public_key: alice.public_key(),
                signature: signature(&alice, SigHashMode::SingleInputOutputUntil(5_000)),
            },
        },
        want: TxOut::coins_to(Amount::from_coins(2), alice.public_key().key_hash()),
    };
    write("offer", "token_for_coins", &offer.to_bytes());
    let loan_offer = peerchain_market::Offer {
        want: TxOut {
            asset: AssetId::Coin,
            amount: Amount::from_coins(3),
            lock: Lock::Loan {
                borrower: Default::default(),
                lender: alice.public_key().key_hash(),
                repay_asset: AssetId::Token(TokenId::issued_by(&OutPoint::new(TxId([5; 32]), 0))),
                repay_amount: Amount::from_units(1_100),
                term: 144,
            },
        },
        ..offer.clone()
    };
    write("offer", "loan", &loan_offer.to_bytes());
    write("contract_message", "payout", &peerchain_market::ContractMessage::Payout(contract.clone()).to_bytes());
    write(
        "contract_message",
        "dispute",
        &peerchain_market::ContractMessage::Dispute {
            escrow: OutPoint::new(TxId([8; 32]), 0),
            key: bob.public_key(),
            signature: bob.sign(&[1; 32]),
        }
        .to_bytes(),
    );
    write("market_request", "first_page", &MarketRequest::BookPage { after: None }.to_bytes());
    write("market_request", "next_page", &MarketRequest::BookPage { after: Some([3; 32]) }.to_bytes());
    write(
        "market_response",
        "page",
        &MarketResponse::Page { offers: vec![offer.to_bytes(); 3], more: true }.to_bytes(),
    );
    write("market_response", "refused", &MarketResponse::Refused("rate limited".into()).to_bytes());

    let manifest = Manifest {
        files: vec![
            ManifestFile { path: "a/notes.txt".into(), id, size: 10 },
            ManifestFile { path: "b.bin".into(), id: ContentId([9; 32]), size: 1 << 30 },
        ],
    };
    write("manifest", "two", &manifest.to_bytes());
    write("bitmap", "ten", &[&10u16.to_le_bytes()[..], &pieces.to_bytes()].concat());

    // Ranges of the target's own blob, as its honest peer would answer them.
    peerchain_fuzz::verify_range(&[0, 1]);
    for (name, start, count) in [("first", 0u8, 1u8), ("middle", 3, 4), ("last", 10, 1), ("all", 0, 11)] {
        let answer = peerchain_fuzz::honest_encoding(u64::from(start), u64::from(start) + u64::from(count));
        write("verify_range", name, &[&[start, count][..], &answer].concat());
    }

    let bodies = [
        ("info", r#"{"jsonrpc":"2.0","id":1,"method":"chain.info"}"#.to_owned()),
        ("send", r#"{"jsonrpc":"2.0","id":2,"method":"wallet.send","params":{"address":"rpc1qzt0uqfxevvra4pv0x6hz9gp70yzhe8s4elvfch90sfjyw659mvy5llnwjr","amount":150000000,"fee_rate":2}}"#.to_owned()),
        ("batch", r#"[{"jsonrpc":"2.0","id":1,"method":"chain.block","params":[12]},{"jsonrpc":"2.0","method":"file.get","params":["abab","/tmp/x"]}]"#.to_owned()),
        ("raw", format!(r#"{{"jsonrpc":"2.0","id":3,"method":"chain.sendrawtransaction","params":{{"hex":"{}"}}}}"#, hex_of(&payment.to_bytes()))),
    ];
    for (name, body) in bodies {
        write("rpc_request", name, body.as_bytes());
    }
    println!("seeds written to {}", root.display());
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
