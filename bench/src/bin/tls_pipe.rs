//! The leanest encrypted, verified download this machine can do: one file over one TLS 1.3
//! connection (AES-128-GCM, rustls with aws-lc-rs, as peerchain's connections) on loopback,
//! every 16 KiB hashed with BLAKE3 and written to a file, with no protocol, multiplexer or
//! swarm in between. `bench/files.py` runs it next to raw TCP and peerchain: it is the
//! ceiling of the per-byte work a download that encrypts and verifies must do.
//!
//! Sender thread: reads the file in 1 MiB blocks and writes them into the TLS stream.
//! Receiver: one thread decrypts into 1 MiB buffers, another hashes and writes them (as
//! peerchain hashes and writes off its network tasks). Prints `{"seconds", "mb_per_s"}`,
//! timed from the connection's start until the last byte is written.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use anyhow::{Context, ensure};
use clap::Parser;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned};

/// The size of the blocks read, decrypted and written.
const BLOCK: usize = 1 << 20;
/// The verification granularity of peerchain's blobs (a BLAKE3 chunk group).
const GROUP: usize = 16 << 10;

#[derive(Parser)]
struct Args {
    /// The file to send.
    #[arg(long)]
    payload: PathBuf,
    /// Where the receiver writes it.
    #[arg(long)]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let size = std::fs::metadata(&args.payload).with_context(|| format!("{}", args.payload.display()))?.len();
    let (server_config, client_config) = configs()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let payload = args.payload.clone();
    let started = Instant::now();
    let sender = std::thread::spawn(move || -> anyhow::Result<()> {
        let socket = TcpStream::connect(address)?;
        socket.set_nodelay(true)?;
        let name = ServerName::try_from("localhost")?.to_owned();
        let mut tls = StreamOwned::new(ClientConnection::new(client_config, name)?, socket);
        let mut file = File::open(&payload)?;
        let mut block = vec![0; BLOCK];
        loop {
            let n = file.read(&mut block)?;
            if n == 0 {
                break;
            }
            tls.write_all(&block[..n])?;
        }
        tls.conn.send_close_notify();
        tls.flush()?;
        // Closed only after the receiver is done: closing with unread bytes would reset it.
        tls.sock.shutdown(std::net::Shutdown::Write)?;
        let _ = tls.sock.read(&mut block);
        Ok(())
    });
    let (socket, _) = listener.accept()?;
    let mut tls = StreamOwned::new(ServerConnection::new(server_config)?, socket);
    // Filled blocks go to the writer; emptied ones come back, so nothing is allocated per block.
    let (filled_tx, filled_rx) = sync_channel::<(Vec<u8>, usize)>(4);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(4);
    for _ in 0..4 {
        empty_tx.send(vec![0; BLOCK])?;
    }
    let out = args.out.clone();
    let writer = std::thread::spawn(move || -> anyhow::Result<u64> {
        let mut file = File::create(&out)?;
        let mut written = 0;
        let mut digest = [0u8; 32];
        for (block, len) in filled_rx {
            for group in block[..len].chunks(GROUP) {
                // Kept, so that the hashing is not optimised away.
                let hash = blake3::hash(group);
                digest.iter_mut().zip(hash.as_bytes()).for_each(|(d, h)| *d ^= h);
            }
            file.write_all(&block[..len])?;
            written += len as u64;
            if empty_tx.send(block).is_err() {
                break;
            }
        }
        std::hint::black_box(digest);
        Ok(written)
    });
    for mut block in &empty_rx {
        let mut len = 0;
        while len < BLOCK {
            match tls.read(&mut block[len..])? {
                0 => break,
                n => len += n,
            }
        }
        if len == 0 {
            break;
        }
        filled_tx.send((block, len))?;
    }
    drop(filled_tx);
    let written = writer.join().expect("the writer does not panic")?;
    let seconds = started.elapsed().as_secs_f64();
    drop(tls);
    sender.join().expect("the sender does not panic")?;
    ensure!(written == size, "received {written} bytes of {size}");
    println!("{}", serde_json::json!({ "seconds": seconds, "mb_per_s": size as f64 / seconds / 1e6 }));
    Ok(())
}

/// A server with a certificate from a throwaway authority, and a client that trusts it; TLS
/// 1.3 with AES-128-GCM only.
fn configs() -> anyhow::Result<(Arc<ServerConfig>, Arc<ClientConfig>)> {
    let authority_key = rcgen::KeyPair::generate()?;
    let mut authority = rcgen::CertificateParams::new(Vec::<String>::new())?;
    authority.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let authority = authority.self_signed(&authority_key)?;
    let key = rcgen::KeyPair::generate()?;
    let certificate =
        rcgen::CertificateParams::new(vec!["localhost".into()])?.signed_by(&key, &authority, &authority_key)?;
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites = vec![rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256];
    let provider = Arc::new(provider);
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    // No session tickets: the client reads nothing after the handshake.
    server.send_tls13_tickets = 0;
    let mut roots = RootCertStore::empty();
    roots.add(authority.der().clone())?;
    let client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((Arc::new(server), Arc::new(client)))
}
