//! Serving: hyper (HTTP/1.1 and HTTP/2 on one port), the server's own
//! endpoints (health, metrics: crate::endpoints), and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_api::ObjectLayer;
use cairn_api::admin::AdminLayer;
use cairn_iam::{Iam, IamConfig};
use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use s3s::auth::{S3Auth, SecretKey};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{Body, HttpError, S3Error, S3ErrorCode, S3Result};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::conn::{ActiveBody, ConnState, Conns};
use crate::endpoints::{Endpoint, MetricsRefusal, classify, metrics_allowed};
use crate::host::Domains;
use crate::limits::{Inflight, Limits};
use crate::metrics::{Counted, RequestMetrics};
use crate::service::CairnS3;
use crate::sse::ConnInfo;
use crate::timed::{BodyLimits, TimedBody};
use crate::unread::SharedBody;

/// How long shutdown waits for in-flight requests before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection closed for idling may take to go.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Accept errors (out of file descriptors) back off from this, doubling...
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// ...up to this.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

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
    /// The store's admin side: served at `/_cairn/admin/v1/` (root only)
    /// and in `/_cairn/metrics`. `None` for stores without one (the admin
    /// API then answers 501 `NoAdminApi`).
    pub admin: Option<Arc<dyn AdminLayer>>,
    /// A bearer token `/_cairn/metrics` requires (`Authorization: Bearer
    /// TOKEN`); `None`: the metrics are open to whoever reaches the port.
    pub metrics_token: Option<String>,
    /// Timeouts and caps that keep slow or flooding clients from taking
    /// the server down.
    pub limits: Limits,
    /// Users, keys, policies and sessions (`None`: the root user alone,
    /// nothing stored).
    pub iam: Option<Arc<Iam>>,
    /// The OpenID provider STS AssumeRoleWithWebIdentity trusts (`None`:
    /// that action is refused).
    pub oidc: Option<Arc<crate::oidc::OidcProvider>>,
    /// One JSON line per request (crate::audit); `None`: no audit log.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    /// A web front (the console) answering below its own `/_cairn/` path
    /// (crate::web); `None`: that path is no endpoint.
    pub web: Option<Arc<dyn crate::web::WebFront>>,
    /// Where requests for buckets held elsewhere go (federation,
    /// crate::forward); `None`: every bucket is served here.
    pub router: Option<Arc<dyn crate::forward::BucketRouter>>,
    /// The event notification targets configured on the server, as
    /// `ID:TYPE` (`arn:cairn:sqs::ID:TYPE`); bucket rules naming others
    /// are refused.
    pub notify_targets: Vec<String>,
    /// The replication service: its targets (checked by
    /// PutBucketReplication) and `/_cairn/admin/v1/replication/...`;
    /// `None`: replication rules are refused.
    pub replication: Option<Arc<dyn cairn_api::replication::ReplicationAdmin>>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .field("domains", &self.domains)
            .field("admin", &self.admin.is_some())
            .field("metrics_token", &self.metrics_token.is_some())
            .field("audit", &self.audit.as_ref().map(|a| a.target()))
            .field("limits", &self.limits)
            .field("iam", &self.iam.is_some())
            .field("oidc", &self.oidc.is_some())
            .field("web", &self.web.as_ref().map(|w| w.prefix()))
            .field("router", &self.router.is_some())
            .field("notify_targets", &self.notify_targets)
            .field("replication", &self.replication.is_some())
            .finish_non_exhaustive()
    }
}

/// Answers `GET /_cairn/health/ready`: true once the server may take
/// traffic.
pub type ReadyFn = Arc<dyn Fn() -> bool + Send + Sync>;

/// A configuration `serve` cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the access key and the secret key must not be empty")]
    EmptyCredential,
    #[error("the region must not be empty")]
    EmptyRegion,
    #[error(transparent)]
    Limits(#[from] crate::limits::LimitError),
    #[error("the IAM state cannot be read: {0}")]
    Iam(cairn_api::ObjectError),
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

/// Pending connections the kernel queues for `accept` (capped by
/// net.core.somaxconn): a burst of connections, or the server pausing
/// accept at its connection cap, must not drop legitimate clients' SYNs.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener for [`serve`] on `addr`, with a backlog for bursts.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves S3 (plus `GET /_cairn/health/live` -> 200,
/// `GET /_cairn/health/ready` -> 200 if `ready()` else 503, and
/// `GET /_cairn/metrics`: crate::endpoints) on the listener until `shutdown` resolves, then
/// stops accepting and drains in-flight connections (graceful): idle
/// keep-alive connections close at once, requests in progress run to their
/// end (for at most 30 s).
///
/// `cfg.limits` bounds what clients may hold: connections (idle ones close
/// after the header or idle timeout, or when the cap needs room), request
/// bodies being read (503 SlowDown beyond the cap), and how long and how
/// slowly a body may come (400 RequestTimeout, connection closed).
///
/// Fails at once (`InvalidInput`) on a configuration it cannot serve.
pub async fn serve(
    listener: impl Into<crate::tls::Listener>,
    layer: Arc<dyn ObjectLayer>,
    cfg: S3Config,
    ready: ReadyFn,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let crate::tls::Listener { tcp: listener, tls } = listener.into();
    // certificates reloaded while serving (crate::tls)
    let _watch = tls.as_ref().and_then(crate::tls::Tls::watch);
    cfg.limits.check().map_err(ConfigError::from)?;
    let domains = domains(&cfg)?;
    let iam = iam_of(&cfg).await?;
    let cors = crate::cors::CorsFront::new(layer.clone());
    let s3 = build_service(layer, &cfg, domains.clone(), iam)?;
    let limits = Arc::new(cfg.limits.clone());
    let svc = Front {
        s3,
        cors,
        ready,
        admin: cfg.admin.clone(),
        domains: domains.map(Arc::new),
        metrics_token: cfg.metrics_token.as_deref().map(Arc::from),
        metrics: Arc::new(RequestMetrics::default()),
        audit: cfg.audit.clone(),
        web: cfg.web.clone(),
        router: cfg.router.clone(),
        conn: None,
        region: cfg.region.as_str().into(),
        state: None,
        inflight: Inflight::new(limits.max_inflight_requests),
        body: BodyLimits {
            timeout: limits.body_timeout,
            min_rate: limits.body_min_rate,
        },
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that never finishes its request headers loses its
    // connection (HTTP/1 here; every version in `Conns::until_close`).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let conns = Conns::new(limits.max_connections);
    if let Ok(addr) = listener.local_addr() {
        let scheme = if tls.is_some() { "https" } else { "http" };
        info!(%addr, scheme, region = %cfg.region, limits = ?cfg.limits, "S3 front listening");
    }

    tokio::pin!(shutdown);
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            () = conns.room() => tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            },
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                if let Err(e) = stream.set_nodelay(true) {
                    debug!(%peer, error = %e, "set_nodelay failed");
                }
                let state = ConnState::new();
                let mut conn_svc = svc.clone();
                conn_svc.state = Some(state.clone());
                let slot = conns.slot();
                let conns = conns.clone();
                let limits = limits.clone();
                let (builder, tls) = (builder.clone(), tls.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    // TLS or plain (crate::tls), within the header timeout.
                    let io = tokio::select! {
                        io = crate::tls::open(tls.as_ref(), stream, peer) => io,
                        _ = conns.until_close(&state, &limits) => None,
                    };
                    let Some(io) = io else { return };
                    // Each connection's service knows its peer and whether
                    // it is TLS (SSE-C checks it, crate::sse) and what the
                    // connection is doing.
                    conn_svc.conn = Some(ConnInfo {
                        peer,
                        tls: io.is_tls(),
                    });
                    let conn = builder
                        .serve_connection(TokioIo::new(io), conn_svc)
                        .into_owned();
                    tokio::pin!(conn);
                    let stopping = tokio::select! {
                        res = conn.as_mut() => {
                            if let Err(e) = res {
                                debug!(%peer, error = %e, "connection ended with an error");
                            }
                            return;
                        }
                        stopping = conns.until_close(&state, &limits) => stopping,
                    };
                    // Idle (or the server stops): an idle connection goes
                    // at once, a request in progress at shutdown may end.
                    conn.as_mut().graceful_shutdown();
                    let grace = if stopping { DRAIN_TIMEOUT } else { CLOSE_GRACE };
                    if tokio::time::timeout(grace, conn).await.is_err() {
                        debug!(%peer, "closing a connection that did not end in time");
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors, a connection reset before
                // accept, ...: keep serving the others, make room, and
                // back off rather than spin on an error that stays.
                warn!(error = %e, open = conns.open(), retry_in = ?backoff, "accept failed");
                conns.shed();
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = &mut shutdown => break,
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
    drop(listener);
    info!(
        connections = conns.open(),
        "S3 front shutting down; draining connections"
    );
    conns.stop();
    if tokio::time::timeout(DRAIN_TIMEOUT, conns.drained())
        .await
        .is_err()
    {
        warn!(
            timeout = ?DRAIN_TIMEOUT,
            "connections still open after the drain timeout; abandoning them"
        );
    }
    if let Some(a) = &cfg.audit {
        a.flush().await;
    }
    info!("S3 front stopped");
    Ok(())
}

/// The virtual-host domains, checked (`None`: path-style only).
fn domains(cfg: &S3Config) -> Result<Option<Domains>, ConfigError> {
    if cfg.domains.is_empty() {
        return Ok(None);
    }
    Domains::new(&cfg.domains)
        .map(Some)
        .map_err(|source| ConfigError::Domains {
            domains: cfg.domains.clone(),
            source,
        })
}

fn build_service(
    layer: Arc<dyn ObjectLayer>,
    cfg: &S3Config,
    domains: Option<Domains>,
    iam: Arc<Iam>,
) -> Result<S3Service, ConfigError> {
    if cfg.access_key.is_empty() || cfg.secret_key.is_empty() {
        return Err(ConfigError::EmptyCredential);
    }
    if cfg.region.is_empty() {
        return Err(ConfigError::EmptyRegion);
    }
    let authz = crate::authz::Authorizer::new(iam.clone(), layer.clone());
    let listen = crate::listen::ListenRoute {
        layer: layer.clone(),
        iam: iam.clone(),
        authz: authz.clone(),
        domains: domains.clone(),
        region: cfg.region.clone(),
    };
    let mut b = S3ServiceBuilder::new(CairnS3::new(layer, cfg, iam.account()));
    b.set_auth(IamAuth(iam.clone()));
    b.set_access(crate::access::Recorder {
        iam: iam.clone(),
        authz,
    });
    b.set_validation(crate::endpoints::BucketNames);
    if let Some(d) = &domains {
        b.set_host(d.clone());
    }
    // Always routed: without an admin side it says so (NoAdminApi); the
    // IAM/STS query API beside it (crate::query).
    b.set_route(crate::query::Routes {
        admin: crate::admin::AdminRoute {
            admin: cfg.admin.clone(),
            router: cfg.router.clone(),
            replication: cfg.replication.clone(),
            root: cfg.access_key.clone(),
            domains: domains.clone(),
            iam: iam.clone(),
        },
        query: crate::query::QueryRoute {
            iam,
            domains,
            oidc: cfg.oidc.clone(),
        },
        listen,
    });
    Ok(b.build())
}

/// The IAM service of `cfg`, or one that knows the root user alone.
async fn iam_of(cfg: &S3Config) -> Result<Arc<Iam>, ConfigError> {
    if let Some(iam) = &cfg.iam {
        return Ok(iam.clone());
    }
    let iam = Iam::load(IamConfig {
        root_access_key: cfg.access_key.clone(),
        root_secret_key: cfg.secret_key.clone(),
        account: cairn_iam::DEFAULT_ACCOUNT.to_owned(),
        deployment_id: String::new(),
        store: Arc::new(cairn_api::MemConfig::new()),
    })
    .await
    .map_err(ConfigError::Iam)?;
    Ok(Arc::new(iam))
}

/// Secrets of the keys IAM knows (the root user's, IAM users' and
/// service accounts', temporary ones'). An unknown key is
/// `InvalidAccessKeyId`, as S3 clients expect.
struct IamAuth(Arc<Iam>);

#[async_trait::async_trait]
impl S3Auth for IamAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.0
            .secret(access_key, now)
            .map(SecretKey::from)
            .ok_or_else(|| {
                S3Error::with_message(
                    S3ErrorCode::InvalidAccessKeyId,
                    "The AWS access key Id you provided does not exist in our records.",
                )
            })
    }
}

/// The hyper service: the server's endpoints, then S3.
#[derive(Clone)]
struct Front {
    s3: S3Service,
    /// Preflights and the CORS headers of responses (crate::cors).
    cors: crate::cors::CorsFront,
    ready: ReadyFn,
    admin: Option<Arc<dyn AdminLayer>>,
    /// Virtual-host base domains: a request naming a bucket in its host is
    /// S3 (crate::endpoints), and where a request's bucket is found
    /// (crate::precheck).
    domains: Option<Arc<Domains>>,
    /// What `/_cairn/metrics` requires as a bearer token.
    metrics_token: Option<Arc<str>>,
    metrics: Arc<RequestMetrics>,
    audit: Option<Arc<crate::audit::AuditLog>>,
    /// The web front (crate::web), asked before every endpoint and S3.
    web: Option<Arc<dyn crate::web::WebFront>>,
    /// Buckets held elsewhere (crate::forward).
    router: crate::forward::Router,
    /// The connection this copy of the service serves.
    conn: Option<ConnInfo>,
    /// The region SigV4 scopes must name (crate::authcheck).
    region: Arc<str>,
    /// What that connection is doing (its idle clock).
    state: Option<Arc<ConnState>>,
    /// Slots for request bodies being read.
    inflight: Inflight,
    body: BodyLimits,
}

impl hyper::service::Service<Request<Incoming>> for Front {
    type Response = Response<Body>;
    type Error = HttpError;
    type Future = BoxFuture<'static, Result<Response<Body>, HttpError>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        // A bucket held elsewhere: forwarded, redirected or 503
        // (crate::forward); the request stays in progress meanwhile.
        if let Some(router) = &self.router
            && let Some((bucket, ask)) =
                crate::forward::routed_bucket(&req, self.domains.as_deref())
        {
            let (this, router) = (self.clone(), router.clone());
            let active = self.state.as_ref().map(|s| s.begin());
            return Box::pin(async move {
                let routed = match ask {
                    crate::forward::Ask::Route => router.route(&bucket, req).await,
                    crate::forward::Ask::Place => router.place(&bucket, req).await,
                    crate::forward::Ask::BadPlacement => crate::forward::Routed::Invalid(format!(
                        "{}: capacity or local",
                        crate::forward::PLACEMENT_HEADER
                    )),
                };
                match routed {
                    crate::forward::Routed::Here(req) => this.serve(req).await,
                    routed => Ok(track(crate::forward::answer(routed), active)),
                }
            });
        }
        self.serve(req)
    }
}

impl Front {
    /// Serves a request here: the server's endpoints, then S3.
    fn serve(
        &self,
        req: Request<Incoming>,
    ) -> BoxFuture<'static, Result<Response<Body>, HttpError>> {
        // In progress (not idle) until its response is sent.
        let active = self.state.as_ref().map(|s| s.begin());
        if let (Some(web), Some(conn)) = (&self.web, self.conn)
            && crate::web::owns(web, req.uri().path())
            && !Domains::request_names_bucket(self.domains.as_deref(), req.uri(), req.headers())
        {
            let answer = web.call(
                req,
                crate::web::WebConn {
                    peer: conn.peer,
                    tls: conn.tls,
                },
            );
            return Box::pin(async move { Ok(track(answer.await.map(Body::http_body), active)) });
        }
        let endpoint = classify(
            req.method(),
            req.uri(),
            req.headers(),
            self.domains.as_deref(),
        );
        match endpoint {
            Some(Endpoint::Live) => {
                let resp = probe(StatusCode::OK, "live\n");
                return Box::pin(async move { Ok(track(resp, active)) });
            }
            Some(Endpoint::Ready) => {
                let resp = if (self.ready)() {
                    probe(StatusCode::OK, "ready\n")
                } else {
                    probe(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                };
                return Box::pin(async move { Ok(track(resp, active)) });
            }
            Some(Endpoint::Cluster) => {
                let (admin, ready) = (self.admin.clone(), self.ready.clone());
                return Box::pin(async move {
                    Ok(track(
                        cluster_health(admin.as_deref(), &ready).await,
                        active,
                    ))
                });
            }
            Some(Endpoint::Metrics) => {
                let allowed = metrics_allowed(req.headers(), self.metrics_token.as_deref());
                let admin = self.admin.clone();
                let metrics = self.metrics.clone();
                let audit = self.audit.clone();
                return Box::pin(async move {
                    let resp = match allowed {
                        Ok(()) => metrics_page(&metrics, admin.as_deref(), audit.as_deref()).await,
                        Err(refused) => metrics_refused(refused),
                    };
                    Ok(track(resp, active))
                });
            }
            Some(Endpoint::Admin) | None => {}
        }
        // The request as it came, its secrets replaced (s3s's own dump of
        // it is filtered out of the log: crate::redact::leaks_secrets).
        debug!(
            method = %req.method(),
            uri = %crate::redact::Uri(req.uri()),
            headers = %crate::redact::Headers(req.headers()),
            "request"
        );
        let started = std::time::Instant::now();
        // The signature rules s3s does not enforce, for every signed
        // request (the admin API too), before s3s reads it.
        let now = time::OffsetDateTime::now_utc();
        let query_api = endpoint.is_none()
            && crate::query::is_query(
                req.method(),
                req.uri(),
                req.headers(),
                self.domains.as_deref(),
            );
        // CORS (crate::cors): a preflight is answered from the bucket's
        // rules, unsigned; a request from a page gets the rules' headers.
        let cors_req = (endpoint.is_none() && !query_api)
            .then(|| crate::cors::CorsRequest::of(&req, self.domains.as_deref()))
            .flatten();
        let preflight = cors_req.as_ref().is_some_and(|c| c.preflight);
        let mut refused = if preflight {
            None
        } else {
            crate::authcheck::check_for(&req, &self.region, now, query_api).err()
        };
        if let Some(r) = &refused {
            debug!(code = r.code().as_str(), uri = %crate::redact::Uri(req.uri()), "signature rules refused the request");
        }
        let method = req.method().clone();
        let metrics = self.metrics.clone();
        // Which S3 operation the request resolves to (noted by s3s's
        // access check, crate::metrics::NoteOperation).
        let operation = crate::metrics::OperationSlot::default();
        if endpoint == Some(Endpoint::Admin) {
            operation.set(crate::metrics::ADMIN_OPERATION);
        } else if preflight {
            operation.set(crate::cors::PREFLIGHT_OPERATION);
        }
        let expects_continue = req
            .headers()
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let (mut parts, incoming) = req.into_parts();
        let http1 = parts.version <= http::Version::HTTP_11;
        let timed = TimedBody::new(incoming, self.body);
        // The access log line, written when the response body is sent.
        let entry = crate::access::Entry::start(
            &mut parts,
            self.conn.map(|c| c.peer),
            timed.received(),
            self.audit.as_ref(),
        );
        // The protocol rules s3s does not enforce (crate::precheck), for S3
        // requests (the admin API's `_cairn` is no bucket name).
        if refused.is_none() && endpoint != Some(Endpoint::Admin) && !preflight {
            let (m, u) = (&parts.method, &parts.uri);
            match crate::precheck::check_head(m, u, &mut parts.headers, self.domains.as_deref()) {
                Ok(true) => debug!(uri = %crate::redact::Uri(u), "malformed Range header ignored"),
                Ok(false) => {}
                Err(r) => refused = Some(r),
            }
        }
        let delete_objects = crate::precheck::is_delete_objects(&parts.method, &parts.uri);
        let form = crate::postform::form_boundary(&parts.method, &parts.headers);
        let uri = parts.uri.clone();
        // A request with a body takes one of the in-flight slots while
        // it runs; none left: 503 SlowDown at once, body unread.
        let slot = if http_body::Body::is_end_stream(&timed) {
            None
        } else {
            match self.inflight.try_take() {
                Some(p) => Some(p),
                None => {
                    debug!(peer = ?self.conn.map(|c| c.peer), "in-flight request cap reached; SlowDown");
                    metrics.record(
                        &method,
                        None,
                        StatusCode::SERVICE_UNAVAILABLE,
                        started.elapsed(),
                    );
                    let resp = s3_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "SlowDown",
                        "Please reduce your request rate.",
                        http1,
                    );
                    return Box::pin(async move { Ok(track(entry.finish(resp), active)) });
                }
            }
        };
        if let Some(c) = self.conn {
            parts.extensions.insert(c);
        }
        parts.extensions.insert(operation.clone());
        let body = SharedBody::new(timed);
        let empty = body.is_end_stream();
        let mut req = Request::from_parts(
            parts,
            Body::http_body(Counted::new(body.clone(), metrics.received())),
        );
        let s3 = self.s3.clone();
        let cors = self.cors.clone();
        let peer = self.conn.map(|c| c.peer);
        Box::pin(async move {
            let _slot = slot;
            // DeleteObjects: its body read and checked first (crate::precheck).
            if refused.is_none() && delete_objects {
                match crate::precheck::delete_objects_body(req.headers(), body.clone()).await {
                    Ok(bytes) => *req.body_mut() = Body::from(bytes),
                    Err(r) => refused = Some(r),
                }
            }
            // A form upload: the file's name for `${filename}` (crate::postform).
            if refused.is_none()
                && let Some(boundary) = form
            {
                let mut rest = body.clone();
                if let Ok((head, name)) =
                    crate::postform::peek_file_name(&mut rest, &boundary).await
                {
                    if let Some(name) = name {
                        req.extensions_mut()
                            .insert(crate::postform::UploadFileName(name));
                    }
                    *req.body_mut() = Body::http_body(crate::postform::Prefixed::new(head, rest));
                }
            }
            let mut resp = match (refused, &cors_req) {
                (Some(r), _) => r.into_response(),
                (None, Some(c)) if c.preflight => cors.preflight(c).await,
                (None, _) => s3.call(req).await.inspect_err(|e| {
                    tracing::error!(%method, uri = %crate::redact::Uri(&uri), error = ?e, "S3 service failed");
                })?,
            };
            if let Some(c) = cors_req.as_ref().filter(|c| !c.preflight) {
                cors.decorate(c, &mut resp).await;
            }
            if body.timed_out() {
                // Whatever the operation made of its failed body (nothing
                // of it was stored), the client hears why, and the
                // connection, its body unread, closes.
                info!(?peer, %method, "request body stalled or too slow; closing the connection");
                resp = s3_error(
                    StatusCode::BAD_REQUEST,
                    "RequestTimeout",
                    "Your socket connection to the server was not read from or written to \
                     within the timeout period. Idle connections will be closed.",
                    http1,
                );
                metrics.record(&method, operation.get(), resp.status(), started.elapsed());
                return Ok(track(counted(entry.finish(resp), &metrics), active));
            }
            metrics.record(&method, operation.get(), resp.status(), started.elapsed());
            crate::errlog::response(&method, &uri, &resp);
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
            Ok(track(counted(entry.finish(resp), &metrics), active))
        })
    }
}

/// The response with its body bytes counted as sent.
fn counted(resp: Response<Body>, metrics: &RequestMetrics) -> Response<Body> {
    let sent = metrics.sent();
    resp.map(|inner| Body::http_body(Counted::new(inner, sent)))
}

/// The metrics page: the front's, then the store's (no store: the
/// front's alone).
async fn metrics_page(
    metrics: &RequestMetrics,
    admin: Option<&dyn AdminLayer>,
    audit: Option<&crate::audit::AuditLog>,
) -> Response<Body> {
    let mut store = match admin {
        Some(a) => a.metrics().await,
        None => Vec::new(),
    };
    if let Some(a) = audit {
        store.push(cairn_api::admin::Metric::single(
            "cairn_audit_dropped_lines_total",
            "Audit log lines lost (the writer behind, the file failing)",
            cairn_api::admin::MetricKind::Counter,
            a.dropped(),
        ));
    }
    let mut resp = Response::new(Body::from(metrics.render(store)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    resp
}

/// 401 (no bearer token; says which scheme) or 403 (the wrong one).
fn metrics_refused(refused: MetricsRefusal) -> Response<Body> {
    let (status, text) = match refused {
        MetricsRefusal::Missing => (
            StatusCode::UNAUTHORIZED,
            "the metrics need Authorization: Bearer <token>\n",
        ),
        MetricsRefusal::Wrong => (StatusCode::FORBIDDEN, "wrong metrics token\n"),
    };
    debug!(status = %status, "metrics scrape refused");
    let mut resp = probe(status, text);
    if refused == MetricsRefusal::Missing {
        resp.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer realm=\"cairn metrics\""),
        );
    }
    resp
}

/// Keeps the request counted as in progress on its connection until its
/// response body is sent.
fn track(resp: Response<Body>, active: Option<crate::conn::Active>) -> Response<Body> {
    match active {
        Some(active) => resp.map(|inner| Body::http_body(ActiveBody::new(inner, active))),
        None => resp,
    }
}

/// An S3 error answered by the front itself; `close` (HTTP/1 only) ends
/// the connection after it, its request body unread.
pub(crate) fn s3_error(
    status: StatusCode,
    code: &str,
    message: &str,
    close: bool,
) -> Response<Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut resp = Response::new(Body::from(xml));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    if close {
        resp.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// A short plain-text answer of the server's own (probes, refusals),
/// never cached.
/// `/_cairn/health/cluster`: 200 with each set's drives against its
/// write quorum when every set has it, else 503 (a store without drives
/// answers as its readiness).
async fn cluster_health(admin: Option<&dyn AdminLayer>, ready: &ReadyFn) -> Response<Body> {
    let Some(admin) = admin else {
        return match ready() {
            true => probe(StatusCode::OK, "ready\n"),
            false => probe(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        };
    };
    let sets = match admin.server_info().await {
        Ok(info) => info.set_quorums(),
        Err(e) => {
            tracing::warn!(error = %e, "cluster health: no server info");
            Vec::new()
        }
    };
    let ok = !sets.is_empty() && sets.iter().all(|s| s.online >= s.needed);
    let body = serde_json::json!({ "writeQuorum": ok, "sets": sets });
    let status = match ok {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    probe_with(status, Bytes::from(body.to_string()), "application/json")
}

fn probe(status: StatusCode, text: &'static str) -> Response<Body> {
    probe_with(status, Bytes::from_static(text.as_bytes()), "text/plain")
}

fn probe_with(status: StatusCode, body: Bytes, content_type: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    resp
}
