//! A relay that delays TCP traffic, for fault tests on hosts in network namespaces (this
//! kernel has no netem). Run inside a host's namespace behind an iptables rule that redirects
//! the host's outgoing connections to it (see `tests/faults/lab.sh delay`): it reads each
//! connection's original destination, connects there itself (its socket marked so that the
//! rule lets it through), and forwards both directions, each chunk held back by the one-way
//! delay, so a connection opened by this host sees twice that as its round trip. Throughput is
//! not limited by it: chunks in flight are queued (up to 16 MiB a direction), not waited for one by one.
//!
//!   delay-relay <listen port> <one-way delay in ms> <socket mark>

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = || std::io::Error::other("usage: delay-relay <listen port> <one-way delay in ms> <socket mark>");
    let port: u16 = args.get(1).and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let delay = Duration::from_millis(args.get(2).and_then(|a| a.parse().ok()).ok_or_else(usage)?);
    let mark: u32 = args.get(3).and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(("0.0.0.0", port)).await?;
        loop {
            let (inbound, _) = listener.accept().await?;
            tokio::spawn(async move {
                if let Err(e) = relay(inbound, delay, mark).await {
                    eprintln!("delay-relay: {e}");
                }
            });
        }
    })
}

async fn relay(inbound: TcpStream, delay: Duration, mark: u32) -> std::io::Result<()> {
    let destination = socket2::SockRef::from(&inbound)
        .original_dst_v4()?
        .as_socket()
        .ok_or_else(|| std::io::Error::other("no original destination"))?;
    let outbound = connect_marked(destination, mark).await?;
    inbound.set_nodelay(true)?;
    outbound.set_nodelay(true)?;
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let there = tokio::spawn(delayed(in_read, out_write, delay));
    let back = tokio::spawn(delayed(out_read, in_write, delay));
    let _ = tokio::join!(there, back);
    Ok(())
}

async fn connect_marked(to: SocketAddr, mark: u32) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_mark(mark)?;
    socket.set_nonblocking(true)?;
    let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
    socket.connect(to).await
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
async fn delayed(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, delay: Duration) {
    // Bounded: a receiver that stops reading holds the sender back, as TCP would.
    let (queue, mut queued) = mpsc::channel::<(Instant, Vec<u8>)>(256);
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = queued.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if queue.send((Instant::now() + delay, buffer[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(queue);
    let _ = writer.await;
}
