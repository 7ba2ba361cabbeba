//! The access log: one INFO event per S3 request on the target
//! [`TARGET`] (`cairn::access`), so `CAIRN_LOG` can keep or drop it
//! (`CAIRN_LOG=info,cairn::access=off`), and with `--log-format json` it
//! is one JSON object per request.
//!
//! The event is written when the response body has been sent (or dropped:
//! the client went away), so a streamed GET's `bytes_out` and
//! `duration_ms` are what was really sent and how long it took;
//! `complete=false` says the body was not sent to its end, and status 0
//! that no response was sent at all (the client went away first). `bytes_in` is
//! the request body as received (an aws-chunked body counts its chunk
//! framing). `bucket`, `key`, `op` and `access_key` are what the S3
//! router resolved, and the access key is the one whose signature was
//! verified; a request refused before that (a bad signature, an unknown
//! route) carries the access key it claims, `claimed_key`, and only the
//! redacted `uri`. No secret is ever written: the URI is printed through
//! [`crate::redact::Uri`] and only the access key id is taken from the
//! credentials.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use cairn_iam::{Caller, CallerError};
use http::{HeaderValue, Method, Response, StatusCode};
use http_body::{Frame, SizeHint};
use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::PostObjectInput;
use s3s::{Body, S3Request, S3Result, s3_error};

use crate::sse::ConnInfo;

/// The tracing target of the access log.
pub const TARGET: &str = "cairn::access";

/// The response header that carries the request id (AWS's name).
const REQUEST_ID: &str = "x-amz-request-id";

/// The response header that carries the host id (AWS's "extended request
/// id"), the `<HostId>` of error bodies.
const HOST_ID: &str = "x-amz-id-2";

/// What the S3 router resolved about a request: filled in by [`Recorder`]
/// through the request's extensions, read by the front when it logs.
#[derive(Clone, Default)]
pub(crate) struct Resolved(Arc<Mutex<Option<Route>>>);

struct Route {
    op: String,
    bucket: Option<String>,
    key: Option<String>,
    access_key: Option<String>,
}

impl Resolved {
    /// Notes a request the S3 router did not resolve (the IAM query
    /// API): its action and the verified access key.
    pub(crate) fn note(&self, op: &str, access_key: Option<&str>) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(Route {
                op: op.to_owned(),
                bucket: None,
                key: None,
                access_key: access_key.map(str::to_owned),
            });
        }
    }

    fn take(&self) -> Option<Route> {
        match self.0.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        }
    }
}

/// s3s's access check: the operation, bucket, key and access key go to
/// the request's [`Resolved`] (the access log) and its operation to the
/// metrics; then the caller is found (a temporary key's token checked)
/// and the request authorized (crate::authz).
pub(crate) struct Recorder {
    pub(crate) iam: Arc<cairn_iam::Iam>,
    pub(crate) authz: Arc<crate::authz::Authorizer>,
}

impl Recorder {
    async fn route_check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let route = Route {
            op: cx.s3_op().name().to_owned(),
            bucket: cx.s3_path().get_bucket_name().map(str::to_owned),
            key: cx.s3_path().get_object_key().map(str::to_owned),
            access_key: cx.credentials().map(|c| c.access_key.clone()),
        };
        // the per-operation request counts (crate::metrics) read it too
        if let Some(slot) = cx.extensions_mut().get::<crate::metrics::OperationSlot>() {
            slot.set(&route.op);
        }
        if let Some(slot) = cx.extensions_mut().get::<Resolved>()
            && let Ok(mut g) = slot.0.lock()
        {
            *g = Some(route);
        }
        let caller = match cx.credentials().map(|c| c.access_key.clone()) {
            None => None,
            Some(access_key) => Some(caller_of(&self.iam, cx.headers(), cx.uri(), &access_key)?),
        };
        let notes = crate::audit::notes(cx.extensions_mut()).cloned();
        if let Some(n) = &notes {
            n.caller(&self.iam, caller.as_ref());
        }
        let op = cx.s3_op().name().to_owned();
        if let Some(c) = caller
            .as_ref()
            .filter(|c| c.identity == cairn_iam::Identity::Root)
        {
            if let Some(n) = &notes {
                note_root(n, cx, &op);
            }
            self.authz.admit_root(c.clone(), cx.extensions_mut());
            return Ok(());
        }
        // A form upload (POST object) names its key in the form, which s3s
        // reads after this check: decided in `post_object` below, with it.
        if op == "PostObject" {
            cx.extensions_mut().insert(PendingPost(caller));
            return Ok(());
        }
        let headers = cx.headers().clone();
        let uri = cx.uri().clone();
        let bucket = cx.s3_path().get_bucket_name().map(str::to_owned);
        let key = cx.s3_path().get_object_key().map(str::to_owned);
        let conn = cx.extensions_mut().get::<ConnInfo>().copied();
        let ask = crate::authz::Ask {
            op: &op,
            bucket: bucket.as_deref(),
            key: key.as_deref(),
            headers: &headers,
            uri: &uri,
            conn: conn.as_ref(),
        };
        self.authz.check(&ask, caller, cx.extensions_mut()).await
    }
}

/// The caller of a form upload whose decision waits for the form's key
/// (request extension, set by `check`).
#[derive(Clone)]
struct PendingPost(Option<Caller>);

#[async_trait::async_trait]
impl S3Access for Recorder {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        self.route_check(cx).await
    }

    /// A form upload, decided as a PutObject of the form's key (with
    /// `${filename}` replaced, as it is stored).
    async fn post_object(&self, req: &mut S3Request<PostObjectInput>) -> S3Result<()> {
        let Some(PendingPost(caller)) = req.extensions.remove::<PendingPost>() else {
            // the root user: admitted in `check`
            return Ok(());
        };
        let key = match req.extensions.get::<crate::postform::UploadFileName>() {
            Some(name) => req.input.key.replace("${filename}", &name.0),
            None => req.input.key.clone(),
        };
        let conn = req.extensions.get::<ConnInfo>().copied();
        let ask = crate::authz::Ask {
            op: "PostObject",
            bucket: Some(&req.input.bucket),
            key: Some(&key),
            headers: &req.headers,
            uri: &req.uri,
            conn: conn.as_ref(),
        };
        self.authz.check(&ask, caller, &mut req.extensions).await
    }
}

/// Who signed with `access_key` (its signature verified by s3s), with a
/// temporary key's session token checked.
pub(crate) fn caller_of(
    iam: &cairn_iam::Iam,
    headers: &http::HeaderMap,
    uri: &http::Uri,
    access_key: &str,
) -> S3Result<Caller> {
    let token = session_token(headers, uri);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    iam.caller(access_key, token.as_deref(), now)
        .map_err(|e| match e {
            CallerError::Expired => {
                s3_error!(ExpiredToken, "The provided token has expired.")
            }
            CallerError::InvalidToken(e) => {
                tracing::debug!(%access_key, error = %e, "session token refused");
                s3_error!(
                    InvalidToken,
                    "The provided token is malformed or otherwise invalid."
                )
            }
            CallerError::UnknownKey => s3_error!(
                InvalidAccessKeyId,
                "The AWS access key Id you provided does not exist in our records."
            ),
        })
}

/// Notes the action the root user's request stands for (no policy
/// applies to the root user: allowed).
fn note_root(notes: &crate::audit::Notes, cx: &S3AccessContext<'_>, op: &str) {
    let versioned = cx
        .uri()
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "versionId"));
    let path = cx.s3_path();
    match cairn_iam::s3ops::s3_action(op, versioned) {
        Some((action, scope)) => {
            let resource =
                crate::audit::s3_resource(scope, path.get_bucket_name(), path.get_object_key());
            notes.decided(
                Some(action.name()),
                Some(&resource),
                crate::audit::Decision::Allow,
            );
        }
        None => notes.decided(None, None, crate::audit::Decision::Allow),
    }
}

/// A request's session token: the `x-amz-security-token` header or a
/// presigned URL's `X-Amz-Security-Token`.
pub(crate) fn session_token(headers: &http::HeaderMap, uri: &http::Uri) -> Option<String> {
    headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            form_urlencoded::parse(uri.query()?.as_bytes())
                .find(|(k, _)| k == "X-Amz-Security-Token")
                .map(|(_, v)| v.into_owned())
        })
}

/// A new request id: 16 uppercase hex digits, random, as AWS's look.
fn new_request_id() -> String {
    format!("{:016X}", uuid::Uuid::new_v4().as_u64_pair().0)
}

/// A new host id: 32 random bytes in base64, as AWS's `x-amz-id-2` look.
fn new_host_id() -> String {
    use base64::Engine as _;
    let mut b = [0u8; 32];
    let (x, y) = b.split_at_mut(16);
    x.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    y.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// An S3 error body (`<Error>...</Error>`) with `<RequestId>` and
/// `<HostId>` added before its end, as AWS's carry them (`None` for any
/// other body, or one that has them already).
fn with_ids(xml: &[u8], request_id: &str, host_id: &str) -> Option<Bytes> {
    let text = std::str::from_utf8(xml).ok()?;
    let end = text.trim_end().strip_suffix("</Error>")?;
    if !text.contains("<Error>") || text.contains("<RequestId>") {
        return None;
    }
    Some(Bytes::from(format!(
        "{end}<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>"
    )))
}

/// The id of a request, in its extensions for answers that carry it in
/// their body too (the IAM query API).
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

/// One request's access-log entry, from its arrival to its last byte.
pub(crate) struct Entry {
    method: Method,
    /// The request target with its secrets replaced.
    uri: String,
    claimed_key: Option<String>,
    request_id: String,
    host_id: String,
    remote: Option<SocketAddr>,
    started: Instant,
    received: Arc<AtomicU64>,
    resolved: Resolved,
    logged: bool,
    /// The audit log's side: when it came, what it says, its notes.
    audit: Option<Audited>,
    /// The S3 error code of an error response.
    error: Option<String>,
}

/// What an [`Entry`] keeps for its audit line.
struct Audited {
    log: Arc<crate::audit::AuditLog>,
    time: time::OffsetDateTime,
    user_agent: Option<String>,
    notes: crate::audit::Notes,
}

/// A request that ends without a response (the client went away while it
/// ran, or the connection failed) is logged with status 0.
impl Drop for Entry {
    fn drop(&mut self) {
        self.log(0, 0, false);
    }
}

impl Entry {
    /// Starts the entry of the request `req`; `received` counts its body
    /// bytes as they are read; its [`Resolved`] (and, with an audit log,
    /// its audit notes) go into the extensions.
    pub(crate) fn start(
        req: &mut http::request::Parts,
        remote: Option<SocketAddr>,
        received: Arc<AtomicU64>,
        audit: Option<&Arc<crate::audit::AuditLog>>,
    ) -> Self {
        let resolved = Resolved::default();
        req.extensions.insert(resolved.clone());
        let audit = audit.map(|log| {
            let notes = crate::audit::Notes::default();
            req.extensions.insert(notes.clone());
            Audited {
                log: log.clone(),
                time: time::OffsetDateTime::now_utc(),
                user_agent: req
                    .headers
                    .get(http::header::USER_AGENT)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                notes,
            }
        });
        let request_id = new_request_id();
        req.extensions.insert(RequestId(request_id.clone()));
        Self {
            method: req.method.clone(),
            uri: crate::redact::Uri(&req.uri).to_string(),
            claimed_key: crate::redact::access_key_id(&req.headers, &req.uri),
            request_id,
            host_id: new_host_id(),
            remote,
            started: Instant::now(),
            received,
            resolved,
            logged: false,
            audit,
            error: None,
        }
    }

    /// The response, carrying the request id, whose body logs the entry
    /// when it has been sent or dropped.
    pub(crate) fn finish(mut self, mut resp: Response<Body>) -> Response<Body> {
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            resp.headers_mut().insert(REQUEST_ID, v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.host_id) {
            resp.headers_mut().insert(HOST_ID, v);
        }
        let status = resp.status();
        // error bodies name the request as the headers do
        if (status.is_client_error() || status.is_server_error())
            && let Some(body) = resp
                .body()
                .bytes()
                .and_then(|b| with_ids(&b, &self.request_id, &self.host_id))
        {
            if resp.headers().contains_key(http::header::CONTENT_LENGTH) {
                resp.headers_mut()
                    .insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            }
            *resp.body_mut() = Body::from(body);
        }
        if self.audit.is_some() && (status.is_client_error() || status.is_server_error()) {
            self.error = crate::errlog::error_code(&resp);
        }
        resp.map(|inner| {
            Body::http_body(LoggedBody {
                inner,
                sent: 0,
                pending: Some((self, status)),
            })
        })
    }

    /// Writes the entry (once).
    fn log(&mut self, status: u16, bytes_out: u64, complete: bool) {
        if std::mem::replace(&mut self.logged, true) {
            return;
        }
        let route = self.resolved.take();
        let route = route.as_ref();
        let access_key = route.and_then(|r| r.access_key.as_deref());
        let took = self.started.elapsed();
        tracing::info!(
            target: TARGET,
            request_id = %self.request_id,
            remote = self.remote.map(tracing::field::display),
            method = %self.method,
            op = route.map(|r| r.op.as_str()),
            bucket = route.and_then(|r| r.bucket.as_deref()),
            key = route.and_then(|r| r.key.as_deref()),
            status,
            bytes_in = self.received.load(Ordering::Relaxed),
            bytes_out,
            duration_ms = took.as_micros() as f64 / 1000.0,
            access_key,
            claimed_key = if access_key.is_none() { self.claimed_key.as_deref() } else { None },
            complete,
            uri = %self.uri,
            "request"
        );
        if let Some(a) = &self.audit {
            let line = crate::audit::line(
                &crate::audit::Finished {
                    time: a.time,
                    request_id: &self.request_id,
                    source: self.remote,
                    method: self.method.as_str(),
                    operation: route.map(|r| r.op.as_str()),
                    claimed_key: self.claimed_key.as_deref(),
                    status,
                    error: self.error.as_deref(),
                    bytes_in: self.received.load(Ordering::Relaxed),
                    bytes_out,
                    duration: took,
                    user_agent: a.user_agent.as_deref(),
                },
                &a.notes,
            );
            a.log.write(line);
        }
    }
}

/// A response body that counts what it sends and writes the access log
/// entry at its end, or when it is dropped before (`complete=false`
/// unless nothing was left to send).
struct LoggedBody {
    inner: Body,
    sent: u64,
    pending: Option<(Entry, StatusCode)>,
}

impl LoggedBody {
    fn done(&mut self, complete: bool) {
        if let Some((mut entry, status)) = self.pending.take() {
            entry.log(status.as_u16(), self.sent, complete);
        }
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        // A HEAD answer's body is never sent: hyper drops it unread.
        let head = self
            .pending
            .as_ref()
            .is_some_and(|(e, _)| e.method == Method::HEAD);
        let complete = head || http_body::Body::is_end_stream(&self.inner);
        self.done(complete);
    }
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = s3s::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = http_body::Body::poll_frame(Pin::new(&mut self.inner), cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                self.sent += frame.data_ref().map_or(0, |d| d.len() as u64);
                if http_body::Body::is_end_stream(&self.inner) {
                    self.done(true);
                }
            }
            Poll::Ready(None) => self.done(true),
            Poll::Ready(Some(Err(_))) => self.done(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_get_the_ids() {
        let x = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code></Error>";
        let got = with_ids(x, "ABC", "h/+=").unwrap();
        assert_eq!(
            &got[..],
            &b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code><RequestId>ABC</RequestId><HostId>h/+=</HostId></Error>"[..]
        );
        // IAM's answers have their own, other bodies are left alone
        let iam =
            b"<ErrorResponse><Error><Code>X</Code></Error><RequestId>R</RequestId></ErrorResponse>";
        assert!(with_ids(iam, "A", "H").is_none());
        assert!(with_ids(b"<Error><RequestId>R</RequestId></Error>", "A", "H").is_none());
        assert!(with_ids(b"not xml", "A", "H").is_none());
        assert!(with_ids(&[0xff, 0xfe], "A", "H").is_none());
        assert_eq!(new_host_id().len(), 44);
    }
}
