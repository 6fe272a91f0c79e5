//! The TLS 1.3 security upgrade of the libp2p TLS handshake (`/tls/1.0.0`), offered before
//! Noise on TCP.
//!
//! It speaks the same handshake as `libp2p-tls` (its certificates, made and checked by
//! `libp2p_tls::certificate`, carry the peer's identity key and a signature over the TLS
//! key), so it interoperates with any libp2p TLS peer. It differs in one setting:
//! `libp2p-tls` puts ChaCha20-Poly1305 first and keeps its rustls configuration private,
//! while this upgrade puts AES-GCM first on processors with AES instructions, as rustls and
//! Go do. There AES-128-GCM seals 16 KiB records four to five times as fast as
//! ChaCha20-Poly1305 (BENCHMARKS.md), and encryption was the largest cost of a file transfer.
//! The server honours the client's order, so a client without AES instructions, which lists
//! ChaCha20-Poly1305 first, gets it.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures::future::BoxFuture;
use futures::io::IoSlice;
use futures::{AsyncRead, AsyncWrite, FutureExt};
use futures_rustls::TlsStream;
use libp2p::PeerId;
use libp2p::core::UpgradeInfo;
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use libp2p::identity::Keypair;
use libp2p::tls::certificate;
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ResolvesServerCert;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme, SupportedCipherSuite};

/// The protocol id of the libp2p TLS handshake.
const PROTOCOL: &str = "/tls/1.0.0";
/// The ALPN token the libp2p TLS specification requires.
const ALPN: &[u8] = b"libp2p";

/// Why a TLS upgrade failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// The node's certificate could not be made from its key.
    #[error("cannot make the TLS certificate: {0}")]
    Certificate(#[from] certificate::GenError),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The handshake failed (refused certificate, protocol error, closed connection).
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
    /// The peer did not present exactly one certificate (the verifier refuses that first).
    #[error("the peer did not present exactly one certificate")]
    CertificateCount,
    /// The peer's certificate is not a libp2p certificate.
    #[error("the peer's certificate: {0}")]
    PeerCertificate(#[from] certificate::ParseError),
}

/// The TLS security upgrade: a server and a client configuration made from the node's key.
/// A disabled one offers no protocol, so multistream-select goes straight to the next one.
#[derive(Clone)]
pub(crate) struct Tls {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    enabled: bool,
}

impl Tls {
    /// Makes the node's certificate from its identity key (the constructor the swarm builder
    /// calls); `enabled: false` makes an upgrade that offers nothing.
    pub(crate) fn new(keypair: &Keypair, enabled: bool) -> Result<Tls, TlsError> {
        let (certificate, key) = certificate::generate(keypair)?;
        let provider = Arc::new(provider());
        let own = Arc::new(OwnCertificate(Arc::new(CertifiedKey::new(
            vec![certificate],
            provider.key_provider.load_private_key(key)?,
        ))));
        let verifier = Arc::new(PeerCertificate);
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier.clone())
            .with_cert_resolver(own.clone());
        server.alpn_protocols = vec![ALPN.to_vec()];
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(own);
        client.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Tls { server: Arc::new(server), client: Arc::new(client), enabled })
    }
}

/// rustls's aws-lc-rs provider with the cipher order of [`cipher_suites`].
fn provider() -> CryptoProvider {
    CryptoProvider { cipher_suites: cipher_suites(aes_in_hardware()), ..aws_lc_rs::default_provider() }
}

/// The TLS 1.3 suites, AES-GCM first when the processor has AES instructions.
fn cipher_suites(aes_in_hardware: bool) -> Vec<SupportedCipherSuite> {
    use aws_lc_rs::cipher_suite::{TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256};
    if aes_in_hardware {
        vec![TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256]
    } else {
        vec![TLS13_CHACHA20_POLY1305_SHA256, TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384]
    }
}

/// Whether AES-GCM runs on dedicated instructions here (AES and carry-less multiply).
fn aes_in_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes") && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

impl UpgradeInfo for Tls {
    type Info = &'static str;
    type InfoIter = std::option::IntoIter<&'static str>;

    fn protocol_info(&self) -> Self::InfoIter {
        self.enabled.then_some(PROTOCOL).into_iter()
    }
}

impl<C> InboundConnectionUpgrade<C> for Tls
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = (PeerId, SecureStream<C>);
    type Error = TlsError;
    type Future = BoxFuture<'static, Result<Self::Output, TlsError>>;

    fn upgrade_inbound(self, socket: C, _: &'static str) -> Self::Future {
        async move { authenticated(futures_rustls::TlsAcceptor::from(self.server).accept(socket).await) }.boxed()
    }
}

impl<C> OutboundConnectionUpgrade<C> for Tls
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = (PeerId, SecureStream<C>);
    type Error = TlsError;
    type Future = BoxFuture<'static, Result<Self::Output, TlsError>>;

    fn upgrade_outbound(self, socket: C, _: &'static str) -> Self::Future {
        async move {
            // The specification forbids a server name: an IP address sends none.
            let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED).into());
            authenticated(futures_rustls::TlsConnector::from(self.client).connect(name, socket).await)
        }
        .boxed()
    }
}

/// The finished handshake of either side with the peer id in the certificate the verifier
/// accepted.
fn authenticated<C>(
    handshake: std::io::Result<impl Into<TlsStream<C>>>,
) -> Result<(PeerId, SecureStream<C>), TlsError> {
    let stream: TlsStream<C> = handshake.map_err(TlsError::Handshake)?.into();
    let state = stream.get_ref().1;
    tracing::debug!(suite = ?state.negotiated_cipher_suite().map(|s| s.suite()), "TLS handshake done");
    let peer = match state.peer_certificates() {
        Some([only]) => certificate::parse(only)?.peer_id(),
        // The verifier refuses anything else, so the handshake cannot have finished.
        _ => return Err(TlsError::CertificateCount),
    };
    Ok((peer, SecureStream { tls: stream, held: [0; HELD_BYTES], held_len: 0 }))
}

/// Writes this short are held back (yamux writes each frame's 12-byte header on its own).
const HELD_BYTES: usize = 64;

/// A TLS stream that holds back short writes and sends them with the next write or flush.
///
/// futures-rustls encrypts and sends every write at once, so yamux's header and body
/// writes went out as two records in two system calls and two TCP segments, each waking the
/// receiver: half the sends and receives of a file transfer carried 34 bytes. Held, a header
/// goes in one vectored write with its body. Every layer above a libp2p security upgrade
/// flushes, as Noise, which buffers whole messages, requires.
pub(crate) struct SecureStream<C> {
    tls: TlsStream<C>,
    held: [u8; HELD_BYTES],
    held_len: usize,
}

impl<C: AsyncRead + AsyncWrite + Unpin> SecureStream<C> {
    /// Sends what is held (without flushing it).
    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.held_len > 0 {
            let sent = ready!(Pin::new(&mut self.tls).poll_write(cx, &self.held[..self.held_len]))?;
            self.drop_held(sent)?;
        }
        Poll::Ready(Ok(()))
    }

    fn drop_held(&mut self, sent: usize) -> io::Result<()> {
        if sent == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.held.copy_within(sent..self.held_len, 0);
        self.held_len -= sent;
        Ok(())
    }

    #[cfg(test)]
    fn tls(&self) -> &TlsStream<C> {
        &self.tls
    }
}

impl<C: AsyncRead + AsyncWrite + Unpin> AsyncRead for SecureStream<C> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tls).poll_read(cx, buf)
    }
}

impl<C: AsyncRead + AsyncWrite + Unpin> AsyncWrite for SecureStream<C> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held_len + buf.len() <= HELD_BYTES {
            this.held[this.held_len..this.held_len + buf.len()].copy_from_slice(buf);
            this.held_len += buf.len();
            return Poll::Ready(Ok(buf.len()));
        }
        // What is held goes first, in the same vectored write when the stream takes it.
        while this.held_len > 0 {
            let parts = [IoSlice::new(&this.held[..this.held_len]), IoSlice::new(buf)];
            let sent = ready!(Pin::new(&mut this.tls).poll_write_vectored(cx, &parts))?;
            if sent > this.held_len {
                let of_buf = sent - this.held_len;
                this.held_len = 0;
                return Poll::Ready(Ok(of_buf));
            }
            this.drop_held(sent)?;
        }
        Pin::new(&mut this.tls).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.tls).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.tls).poll_close(cx)
    }
}

/// Presents the node's certificate to every peer. (rustls's `with_single_cert` would parse
/// it with webpki to match the key, and webpki refuses the libp2p extension, which is
/// critical.)
#[derive(Debug)]
struct OwnCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for OwnCertificate {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl ResolvesClientCert for OwnCertificate {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Accepts exactly one self-signed libp2p certificate (no chain, no authority): it binds the
/// TLS key to the peer's identity key, which is all the specification asks. The swarm then
/// checks that the peer is the one dialled.
#[derive(Debug)]
struct PeerCertificate;

impl PeerCertificate {
    fn check(end_entity: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> Result<(), rustls::Error> {
        if !intermediates.is_empty() {
            return Err(rustls::Error::General("a libp2p peer presents exactly one certificate".into()));
        }
        certificate::parse(end_entity).map(drop).map_err(refused)
    }

    fn check_signature(
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signed: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        certificate::parse(certificate)
            .map_err(refused)?
            .verify_signature(signed.scheme, message, signed.signature())
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature))?;
        Ok(HandshakeSignatureValid::assertion())
    }
}

/// The handshake signatures `libp2p_tls::certificate` verifies (libp2p keys make P-256 ones).
const SCHEMES: [SignatureScheme; 9] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ED25519,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
];

fn refused(e: certificate::ParseError) -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(Arc::new(e))))
}

/// The handshake-signature methods, the same in both verifier traits: TLS 1.2 is never
/// offered, and a TLS 1.3 signature is checked against the peer's certificate.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _certificate: &CertificateDer<'_>,
            _signed: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            certificate: &CertificateDer<'_>,
            signed: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Self::check_signature(message, certificate, signed)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            SCHEMES.to_vec()
        }
    };
}

impl ServerCertVerifier for PeerCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Self::check(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    handshake_signatures!();
}

impl ClientCertVerifier for PeerCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Self::check(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    handshake_signatures!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{CipherSuite, CommonState};
    use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

    type Pipe = Compat<tokio::io::DuplexStream>;

    fn pipe() -> (Pipe, Pipe) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        (a.compat(), b.compat())
    }

    /// The suite both sides agreed on, and the peer ids each learnt.
    fn agreed<A: AsyncRead + AsyncWrite + Unpin, B: AsyncRead + AsyncWrite + Unpin>(
        client: &TlsStream<A>,
        server: &TlsStream<B>,
    ) -> CipherSuite {
        let suite = |state: &CommonState| state.negotiated_cipher_suite().expect("handshake done").suite();
        assert_eq!(suite(client.get_ref().1), suite(server.get_ref().1));
        suite(client.get_ref().1)
    }

    /// The suite a node on this processor should get when its order wins.
    fn preferred_here() -> CipherSuite {
        if aes_in_hardware() {
            CipherSuite::TLS13_AES_128_GCM_SHA256
        } else {
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
        }
    }

    #[tokio::test]
    async fn two_nodes_agree_on_aes_gcm_where_the_processor_has_it_and_learn_each_other() {
        let (dialer, listener) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (a, b) = pipe();
        let (outbound, inbound) = tokio::join!(
            Tls::new(&dialer, true).unwrap().upgrade_outbound(a, PROTOCOL),
            Tls::new(&listener, true).unwrap().upgrade_inbound(b, PROTOCOL),
        );
        let ((seen_by_dialer, client), (seen_by_listener, server)) = (outbound.unwrap(), inbound.unwrap());
        assert_eq!(seen_by_dialer, listener.public().to_peer_id());
        assert_eq!(seen_by_listener, dialer.public().to_peer_id());
        assert_eq!(agreed(client.tls(), server.tls()), preferred_here());
    }

    #[tokio::test]
    async fn interoperates_with_libp2p_tls_and_honours_the_clients_order() {
        let (ours, theirs) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        // libp2p-tls dials us: it lists ChaCha20-Poly1305 first and gets it.
        let (a, b) = pipe();
        let (outbound, inbound) = tokio::join!(
            libp2p::tls::Config::new(&theirs).unwrap().upgrade_outbound(a, PROTOCOL),
            Tls::new(&ours, true).unwrap().upgrade_inbound(b, PROTOCOL),
        );
        let ((seen_by_them, client), (seen_by_us, server)) = (outbound.unwrap(), inbound.unwrap());
        assert_eq!((seen_by_them, seen_by_us), (ours.public().to_peer_id(), theirs.public().to_peer_id()));
        assert_eq!(agreed(&client, server.tls()), CipherSuite::TLS13_CHACHA20_POLY1305_SHA256);
        // We dial libp2p-tls: our order wins.
        let (a, b) = pipe();
        let (outbound, inbound) = tokio::join!(
            Tls::new(&ours, true).unwrap().upgrade_outbound(a, PROTOCOL),
            libp2p::tls::Config::new(&theirs).unwrap().upgrade_inbound(b, PROTOCOL),
        );
        let ((seen_by_us, client), (seen_by_them, server)) = (outbound.unwrap(), inbound.unwrap());
        assert_eq!((seen_by_them, seen_by_us), (ours.public().to_peer_id(), theirs.public().to_peer_id()));
        assert_eq!(agreed(client.tls(), &server), preferred_here());
    }

    /// A socket that counts the writes made to it.
    struct CountingWrites {
        inner: Pipe,
        writes: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl AsyncRead for CountingWrites {
        fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for CountingWrites {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Pin::new(&mut self.inner).poll_write(cx, buf)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_close(cx)
        }
    }

    #[tokio::test]
    async fn a_short_write_travels_with_the_next_and_nothing_held_is_lost() {
        use futures::{AsyncReadExt, AsyncWriteExt};
        let (a, b) = pipe();
        let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = CountingWrites { inner: a, writes: writes.clone() };
        let (outbound, inbound) = tokio::join!(
            Tls::new(&Keypair::generate_ed25519(), true).unwrap().upgrade_outbound(counted, PROTOCOL),
            Tls::new(&Keypair::generate_ed25519(), true).unwrap().upgrade_inbound(b, PROTOCOL),
        );
        let ((_, mut client), (_, mut server)) = (outbound.unwrap(), inbound.unwrap());
        let reader = tokio::spawn(async move {
            let mut received = Vec::new();
            server.read_to_end(&mut received).await.map(|_| received)
        });

        // A frame as yamux writes it: a 12-byte header, then a body.
        let header = [7u8; 12];
        let body: Vec<u8> = (0..16_372u32).map(|i| i as u8).collect();
        let before = writes.load(std::sync::atomic::Ordering::Relaxed);
        client.write_all(&header).await.unwrap();
        assert_eq!(writes.load(std::sync::atomic::Ordering::Relaxed), before, "the header is held");
        client.write_all(&body).await.unwrap();
        client.flush().await.unwrap();
        assert_eq!(writes.load(std::sync::atomic::Ordering::Relaxed), before + 1, "header and body in one write");
        // Short writes with nothing after them go out on flush, and on close.
        client.write_all(b"flushed").await.unwrap();
        client.flush().await.unwrap();
        client.write_all(b" and closed").await.unwrap();
        client.close().await.unwrap();

        let received = reader.await.unwrap().unwrap();
        let expected = [&header[..], &body, b"flushed and closed"].concat();
        assert_eq!(received, expected);
    }

    #[test]
    fn only_one_libp2p_certificate_is_accepted() {
        let (own, _) = certificate::generate(&Keypair::generate_ed25519()).unwrap();
        let (other, _) = certificate::generate(&Keypair::generate_ed25519()).unwrap();
        let plain = rcgen::generate_simple_self_signed(vec!["peer.invalid".into()]).unwrap().cert.der().clone();
        assert!(PeerCertificate::check(&own, &[]).is_ok());
        assert!(PeerCertificate::check(&own, &[other]).is_err(), "a chain");
        assert!(PeerCertificate::check(&plain, &[]).is_err(), "no libp2p extension");
        assert!(PeerCertificate::check(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3]), &[]).is_err(), "garbage");
    }

    /// A TLS client that accepts any server and presents no certificate of its own.
    #[derive(Debug)]
    struct AnyServer;

    impl ServerCertVerifier for AnyServer {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            SCHEMES.to_vec()
        }
    }

    #[tokio::test]
    async fn a_client_without_a_certificate_is_refused() {
        let mut anonymous = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer))
            .with_no_client_auth();
        anonymous.alpn_protocols = vec![ALPN.to_vec()];
        let (a, b) = pipe();
        let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED).into());
        let (client, inbound) = tokio::join!(
            futures_rustls::TlsConnector::from(Arc::new(anonymous)).connect(name, a),
            Tls::new(&Keypair::generate_ed25519(), true).unwrap().upgrade_inbound(b, PROTOCOL),
        );
        assert!(matches!(inbound, Err(TlsError::Handshake(_))), "{:?}", inbound.map(|(peer, _)| peer));
        drop(client);
    }

    #[test]
    fn a_disabled_upgrade_offers_nothing() {
        let key = Keypair::generate_ed25519();
        assert_eq!(Tls::new(&key, true).unwrap().protocol_info().collect::<Vec<_>>(), [PROTOCOL]);
        assert_eq!(Tls::new(&key, false).unwrap().protocol_info().count(), 0);
    }
}
