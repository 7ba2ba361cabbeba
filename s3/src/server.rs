//! Serving: hyper (HTTP/1.1 and HTTP/2 on one port), the health endpoints,
//! and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_api::ObjectLayer;
use cairn_api::admin::AdminLayer;
use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::auth::{S3Auth, SecretKey, SimpleAuth};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{Body, HttpError, S3Error, S3ErrorCode, S3Result};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::host::Domains;
use crate::metrics::RequestMetrics;
use crate::service::CairnS3;
use crate::sse::ConnInfo;
use crate::unread::SharedBody;

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for in-flight requests before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How the S3 front is set up.
#[derive(Clone)]
pub struct S3Config {
    /// The root credential (SigV4 access key id).
    pub access_key: String,
    /// The root credential's secret.
    pub secret_key: String,
    /// The region the server answers for, e.g. `us-east-1`.
    pub region: String,
    /// Base domains for virtual-host-style requests (`bucket.<domain>`),
    /// e.g. `["localhost"]`. Path-style requests always work.
    pub domains: Vec<String>,
    /// The store's admin side: served at `/cairn/admin/v1/` (root only) and
    /// in `/metrics`. `None` for stores without one.
    pub admin: Option<Arc<dyn AdminLayer>>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .field("domains", &self.domains)
            .field("admin", &self.admin.is_some())
            .finish_non_exhaustive()
    }
}

/// Answers `GET /health/ready`: true once the server may take traffic.
pub type ReadyFn = Arc<dyn Fn() -> bool + Send + Sync>;

/// A configuration `serve` cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the access key and the secret key must not be empty")]
    EmptyCredential,
    #[error("the region must not be empty")]
    EmptyRegion,
    #[error("invalid virtual-host domains {domains:?}: {source}")]
    Domains {
        domains: Vec<String>,
        source: s3s::host::DomainError,
    },
}

impl From<ConfigError> for std::io::Error {
    fn from(e: ConfigError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}

/// Serves S3 (plus `GET /health/live` -> 200 and `GET /health/ready` -> 200
/// if `ready()` else 503) on the listener until `shutdown` resolves, then
/// stops accepting and drains in-flight connections (graceful): idle
/// keep-alive connections close at once, requests in progress run to their
/// end (for at most 30 s).
///
/// Fails at once (`InvalidInput`) on a configuration it cannot serve.
pub async fn serve(
    listener: TcpListener,
    layer: Arc<dyn ObjectLayer>,
    cfg: S3Config,
    ready: ReadyFn,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let s3 = build_service(layer, &cfg)?;
    let svc = Front {
        s3,
        ready,
        admin: cfg.admin.clone(),
        metrics: Arc::new(RequestMetrics::default()),
        conn: None,
        region: cfg.region.as_str().into(),
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that never finishes its request headers loses its connection.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, region = %cfg.region, "S3 front listening");
    }

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        debug!(%peer, error = %e, "set_nodelay failed");
                    }
                    // Each connection's service knows its peer: SSE-C
                    // checks it (crate::sse).
                    let mut conn_svc = svc.clone();
                    conn_svc.conn = Some(ConnInfo { peer, tls: false });
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), conn_svc)
                        .into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors, a connection reset before
                    // accept, ...: keep serving the others.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    info!(
        connections = graceful.count(),
        "S3 front shutting down; draining connections"
    );
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            timeout = ?DRAIN_TIMEOUT,
            "connections still open after the drain timeout; abandoning them"
        );
    }
    info!("S3 front stopped");
    Ok(())
}

fn build_service(layer: Arc<dyn ObjectLayer>, cfg: &S3Config) -> Result<S3Service, ConfigError> {
    if cfg.access_key.is_empty() || cfg.secret_key.is_empty() {
        return Err(ConfigError::EmptyCredential);
    }
    if cfg.region.is_empty() {
        return Err(ConfigError::EmptyRegion);
    }
    let mut b = S3ServiceBuilder::new(CairnS3::new(layer, cfg));
    b.set_auth(RootAuth(SimpleAuth::from_single(
        cfg.access_key.clone(),
        cfg.secret_key.clone(),
    )));
    if !cfg.domains.is_empty() {
        let domains = Domains::new(&cfg.domains).map_err(|source| ConfigError::Domains {
            domains: cfg.domains.clone(),
            source,
        })?;
        b.set_host(domains);
    }
    if let Some(admin) = &cfg.admin {
        b.set_route(crate::admin::AdminRoute {
            admin: admin.clone(),
        });
    }
    Ok(b.build())
}

/// The root credential. `s3s`'s `SimpleAuth` answers an unknown key with
/// `NotSignedUp`; S3 clients expect `InvalidAccessKeyId`.
struct RootAuth(SimpleAuth);

#[async_trait::async_trait]
impl S3Auth for RootAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        self.0.lookup(access_key).cloned().ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidAccessKeyId,
                "The AWS access key Id you provided does not exist in our records.",
            )
        })
    }
}

/// The hyper service: health endpoints, then S3.
#[derive(Clone)]
struct Front {
    s3: S3Service,
    ready: ReadyFn,
    admin: Option<Arc<dyn AdminLayer>>,
    metrics: Arc<RequestMetrics>,
    /// The connection this copy of the service serves.
    conn: Option<ConnInfo>,
    /// The region SigV4 scopes must name (crate::authcheck).
    region: Arc<str>,
}

impl hyper::service::Service<Request<Incoming>> for Front {
    type Response = Response<Body>;
    type Error = HttpError;
    type Future = BoxFuture<'static, Result<Response<Body>, HttpError>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if let Some(resp) = health(&req, &self.ready) {
            return Box::pin(async move { Ok(resp) });
        }
        if req.method() == Method::GET
            && req.uri().path() == "/metrics"
            && !req.headers().contains_key(http::header::AUTHORIZATION)
        {
            let mut text = self.metrics.render();
            if let Some(a) = &self.admin {
                text.push_str(&a.metrics_text());
            }
            let mut resp = Response::new(Body::from(text));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            return Box::pin(async move { Ok(resp) });
        }
        let started = std::time::Instant::now();
        // The signature rules s3s does not enforce, for every signed
        // request (the admin API too), before s3s reads it.
        let now = time::OffsetDateTime::now_utc();
        let refused = crate::authcheck::check(&req, &self.region, now).err();
        if let Some(r) = &refused {
            debug!(code = r.code().as_str(), uri = %req.uri(), "signature rules refused the request");
        }
        let method = req.method().clone();
        let metrics = self.metrics.clone();
        let expects_continue = req
            .headers()
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let (mut parts, incoming) = req.into_parts();
        if let Some(c) = self.conn {
            parts.extensions.insert(c);
        }
        let body = SharedBody::new(incoming);
        let empty = body.is_end_stream();
        let req = Request::from_parts(parts, Body::http_body(body.clone()));
        let s3 = self.s3.clone();
        Box::pin(async move {
            let mut resp = match refused {
                Some(r) => r.into_response(),
                None => s3.call(req).await?,
            };
            metrics.record(&method, resp.status(), started.elapsed());
            // An Expect request answered without a `100 Continue` (an empty
            // body, or one the operation never read): botocore (awscli,
            // boto3) keeps that answer's status line and uses it for the
            // next Expect request on the connection, whose real status
            // line it then reads as a header, losing every header (ETag).
            // Closing the connection makes botocore start a fresh one.
            if expects_continue && (empty || !body.was_polled()) {
                resp.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            // A client waiting for 100-continue never sent the body.
            if !resp.status().is_success() && !expects_continue && !body.is_end_stream() {
                body.discard_rest().await;
            }
            Ok(resp)
        })
    }
}

/// `GET|HEAD /health/live` and `/health/ready`, unauthenticated. A signed
/// request for the same path is S3 (bucket `health`), not a probe.
fn health<B>(req: &Request<B>, ready: &ReadyFn) -> Option<Response<Body>> {
    if !matches!(*req.method(), Method::GET | Method::HEAD)
        || req.headers().contains_key(http::header::AUTHORIZATION)
        || req.uri().query().is_some_and(|q| q.contains("X-Amz-"))
    {
        return None;
    }
    let (status, text) = match req.uri().path() {
        "/health/live" => (StatusCode::OK, "live\n"),
        "/health/ready" if ready() => (StatusCode::OK, "ready\n"),
        "/health/ready" => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        _ => return None,
    };
    let mut resp = Response::new(Body::from(Bytes::from_static(text.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    Some(resp)
}
