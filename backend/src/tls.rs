//! TLS for the API with rustls (aws-lc-rs provider): configuration from PEM files and a listener that
//! completes handshakes off the accept loop, so a slow or silent client cannot stall other connections.
//!
//! Clients may present a certificate (EST re-enrolment by a device's current certificate) but need not:
//! the server asks for one, checks the handshake signature with the provider's verify functions (the
//! client holds the key), and hands the chain to handlers as a [`ClientChain`] request extension. Which
//! certificates authenticate anything is decided by the handler against the store
//! ([`crate::ca::client_auth`]), since the issuing CAs are created at runtime.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::IncomingStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::WebPkiSupportedAlgorithms;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{
    DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

pub use crate::ca::client_auth::ClientChain;
use crate::error::{Result, ServiceError};

/// A handshake that has not finished by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Completed handshakes waiting for the server to pick them up.
const READY_QUEUE: usize = 128;

/// Reads a certificate chain (leaf first) and its private key from PEM files.
pub fn load_config(cert_path: &Path, key_path: &Path) -> Result<Arc<ServerConfig>> {
    let read = |path: &Path| {
        std::fs::read(path)
            .map(Zeroizing::new)
            .map_err(|err| ServiceError::Io(format!("reading {}: {err}", path.display())))
    };
    let cert_pem = read(cert_path)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|err| ServiceError::Io(format!("{}: {err}", cert_path.display())))?;
    if chain.is_empty() {
        return Err(ServiceError::Io(format!(
            "{}: no certificate",
            cert_path.display()
        )));
    }
    let key_pem = read(key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|err| ServiceError::Io(format!("{}: {err}", key_path.display())))?;
    let mut config = ServerConfig::builder()
        .with_client_cert_verifier(Arc::new(OptionalClientCertificate {
            algorithms: rustls::crypto::aws_lc_rs::default_provider()
                .signature_verification_algorithms,
        }))
        .with_single_cert(chain, key)
        .map_err(|err| ServiceError::Io(format!("TLS configuration: {err}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Asks for a client certificate without requiring one. The certificate itself is accepted here and
/// judged per request against the store; the handshake signature is verified, so a presented
/// certificate always comes with proof that the client holds its key.
#[derive(Debug)]
struct OptionalClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for OptionalClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: the issuing CAs change at runtime, and clients send their one certificate anyway.
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What the server knows of a TLS connection: the peer address and the client's certificate chain.
#[derive(Clone, Debug)]
pub struct TlsConnectInfo {
    pub addr: SocketAddr,
    pub client_chain: Option<ClientChain>,
}

impl Connected<IncomingStream<'_, TlsListener>> for TlsConnectInfo {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        let (_, connection) = stream.io().get_ref();
        let client_chain = connection
            .peer_certificates()
            .filter(|chain| !chain.is_empty())
            .map(|chain| ClientChain(Arc::new(chain.iter().map(|c| c.to_vec()).collect())));
        Self {
            addr: *stream.remote_addr(),
            client_chain,
        }
    }
}

/// Middleware of the TLS server: gives handlers the peer address as `ConnectInfo<SocketAddr>` (as on
/// plain HTTP) and the client's certificate chain, if it presented one, as a [`ClientChain`].
pub async fn connection_extensions(mut request: Request, next: Next) -> Response {
    let info = request
        .extensions()
        .get::<ConnectInfo<TlsConnectInfo>>()
        .map(|info| info.0.clone());
    if let Some(info) = info {
        request.extensions_mut().insert(ConnectInfo(info.addr));
        if let Some(chain) = info.client_chain {
            request.extensions_mut().insert(chain);
        }
    }
    next.run(request).await
}

/// An `axum` listener yielding established TLS connections.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    acceptor_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (sender, ready) = mpsc::channel(READY_QUEUE);
        let acceptor = TlsAcceptor::from(config);
        let acceptor_task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send((tls, peer)).await;
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(error = %err, %peer, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            ready,
            local_addr,
            acceptor_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor_task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The acceptor task only ends when this listener is dropped; wait for shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
