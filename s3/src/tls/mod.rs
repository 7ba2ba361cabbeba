//! HTTPS on the S3 port (rustls, aws-lc-rs): certificates from a folder
//! laid out as MinIO's (certs.rs), chosen by SNI (resolve.rs), reloaded
//! while serving (watch.rs); each connection's first byte says whether it
//! is TLS (accept.rs). HTTP/2 is offered by ALPN (`h2`, `http/1.1`).
//! Requests over TLS carry `ConnInfo { tls: true }` (crate::sse), which
//! SSE-C and `aws:SecureTransport` read.

mod accept;
mod certs;
mod resolve;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

pub(crate) use accept::open;
pub use certs::CertError;

/// How the S3 port speaks TLS.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// `public.crt` + `private.key`, and a subdirectory per further
    /// certificate (MinIO's layout).
    pub certs_dir: PathBuf,
    /// Plain HTTP is served on the same port too (else it is answered
    /// 400 and closed).
    pub allow_plain_http: bool,
}

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("loading the certificates: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The certificates loaded, ready to serve (cheap to clone).
#[derive(Clone)]
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    allow_plain_http: bool,
    resolver: Arc<resolve::Resolver>,
    /// Taken by the first `serve` to watch the folder.
    loader: Arc<std::sync::Mutex<Option<watch::Loader>>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("allow_plain_http", &self.allow_plain_http)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads every certificate of `opts.certs_dir`: the default pair must
    /// be there, and every pair must load (a broken one fails the start;
    /// later, a broken change keeps the previous one).
    pub async fn load(opts: TlsOptions) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let p = provider.clone();
        let dir = opts.certs_dir.clone();
        let (loader, certs) =
            tokio::task::spawn_blocking(move || watch::Loader::initial(dir, p)).await??;
        let resolver = Arc::new(resolve::Resolver::new(certs));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            allow_plain_http: opts.allow_plain_http,
            resolver,
            loader: Arc::new(std::sync::Mutex::new(Some(loader))),
        })
    }

    /// Whether plain HTTP is served too.
    pub fn allows_plain_http(&self) -> bool {
        self.allow_plain_http
    }

    /// Starts reloading the certificates as their files change (once per
    /// `Tls`; None after).
    pub(crate) fn watch(&self) -> Option<watch::Watch> {
        let loader = self
            .loader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()?;
        Some(watch::start(loader, self.resolver.clone()))
    }
}

/// Where [`crate::serve`] accepts connections: a TCP listener, with the
/// TLS it speaks (None: plain HTTP). A `TcpListener` converts into a
/// plain one.
pub struct Listener {
    pub(crate) tcp: TcpListener,
    pub(crate) tls: Option<Tls>,
}

impl Listener {
    pub fn new(tcp: TcpListener, tls: Option<Tls>) -> Self {
        Self { tcp, tls }
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.tcp.local_addr()
    }
}

impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Self {
        Self { tcp, tls: None }
    }
}
