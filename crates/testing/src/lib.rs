//! What the tests share: an in-process network node ([`LocalNode`]) on loopback, waiting for a
//! condition with a deadline instead of sleeping, signing a key spend, and reproducible
//! pseudo-random bytes. Only tests depend on this crate.

use std::future::Future;
use std::time::{Duration, Instant};

use peerchain_net::{Address, Config, Events, FileEvent, Handle, Keypair, Peer, SyncEvent};
use peerchain_primitives::{Network, SecretKey, SigHashMode, Transaction, TxOut, TxSignature, Witness};
use tokio_util::sync::CancellationToken;

/// A network task in this process, listening on a free loopback port, without mDNS.
pub struct LocalNode {
    /// Its handle.
    pub handle: Handle,
    /// Its event streams.
    pub events: Events,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl LocalNode {
    /// A node of `network`, with `configure` applied to its settings.
    pub fn start(network: &str, configure: impl FnOnce(&mut Config)) -> LocalNode {
        Self::with_key(Keypair::generate_ed25519(), network, configure)
    }

    /// A node of regtest with default settings.
    pub fn regtest() -> LocalNode {
        Self::start("regtest", |_| {})
    }

    /// A node with the identity `keypair`.
    pub fn with_key(keypair: Keypair, network: &str, configure: impl FnOnce(&mut Config)) -> LocalNode {
        let cancel = CancellationToken::new();
        let mut config = Config::new(network, vec![loopback()]);
        config.mdns = false;
        configure(&mut config);
        let (handle, events, task) = peerchain_net::spawn(keypair, config, cancel.clone()).expect("the network starts");
        LocalNode { handle, events, cancel, task }
    }

    /// Its peer id.
    pub fn peer(&self) -> Peer {
        self.handle.local_peer()
    }

    /// Its first listen address (waits for the listener).
    pub async fn listen_addr(&self) -> Address {
        listen_addr(&self.handle).await
    }

    /// Its first listen address with `/p2p/<peer id>`.
    pub async fn p2p_addr(&self) -> Address {
        self.listen_addr().await.with(peerchain_net::Protocol::P2p(self.peer()))
    }

    /// The next sync event that `wanted` accepts, within 20 seconds.
    pub async fn next_sync_event(&mut self, wanted: impl FnMut(&SyncEvent) -> bool) -> SyncEvent {
        next_event(&mut self.events.sync, wanted).await
    }

    /// The next file event, within 20 seconds.
    pub async fn next_file_event(&mut self) -> FileEvent {
        next_event(&mut self.events.files, |_| true).await
    }

    /// Dials `other` and waits until both sides see the connection.
    pub async fn connect_to(&mut self, other: &mut LocalNode) {
        self.handle.dial(other.listen_addr().await).await;
        let (mine, theirs) = (self.peer(), other.peer());
        other.next_sync_event(|e| matches!(e, SyncEvent::PeerConnected(p) if p.peer == mine)).await;
        self.next_sync_event(|e| matches!(e, SyncEvent::PeerConnected(p) if p.peer == theirs)).await;
    }

    /// Stops it and waits for its task.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }

    /// Cancels it without waiting (for tests that end in a synchronous context).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

/// A loopback listen address on a free port.
pub fn loopback() -> Address {
    "/ip4/127.0.0.1/tcp/0".parse().expect("a multiaddr")
}

/// A loopback address whose port was free a moment ago (for a node told its address ahead).
pub fn free_loopback_address() -> Address {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("bound").port();
    format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("a multiaddr")
}

/// A node's first listen address (waits up to 2 s for the listener).
pub async fn listen_addr(handle: &Handle) -> Address {
    for _ in 0..100 {
        if let Some(address) = handle.local().await.and_then(|l| l.listen_addrs.into_iter().next()) {
            return address;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no listen address");
}

/// The first peer `handle` is connected to (waits up to 5 s).
pub async fn first_peer(handle: &Handle) -> Peer {
    wait_for_async("a connection", Duration::from_secs(5), || async { handle.peers().await.first().map(|p| p.peer) })
        .await
}

/// The next event of `events` that `wanted` accepts, within 20 seconds.
pub async fn next_event<E>(events: &mut tokio::sync::mpsc::Receiver<E>, mut wanted: impl FnMut(&E) -> bool) -> E {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = events.recv().await.expect("network running");
            if wanted(&event) {
                return event;
            }
        }
    })
    .await
    .expect("event in time")
}

/// Waits until `condition` gives a value, polling every 50 ms, or panics naming `what` after
/// `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_for`] with an async condition.
pub async fn wait_for_async<T, F: Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs input `index` of `tx`, which spends `spent` locked to `key`'s hash, with `mode`.
pub fn sign_key_spend(
    tx: &mut Transaction,
    index: usize,
    spent: &TxOut,
    key: &SecretKey,
    mode: SigHashMode,
    network: Network,
) {
    let message = tx.signature_hash(index, spent, mode, network.magic());
    tx.inputs[index].witness =
        Witness::Key { public_key: key.public_key(), signature: TxSignature { mode, signature: key.sign(&message) } };
}

/// `len` reproducible pseudo-random bytes for `seed` (a 64-bit LCG, eight bytes a step).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}
