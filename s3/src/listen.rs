//! MinIO's ListenBucketNotification: `GET /BUCKET?events=E[&events=E2]
//! [&prefix=P][&suffix=S]` (path style, or `GET /?events=...` on a
//! virtual host) answers 200 and then streams, as they are committed, the
//! bucket's events that match: one `{"Records":[...]}` line each, in AWS's
//! event format, with a space every [`KEEPALIVE`] while nothing happens
//! (as MinIO does; minio-py and `mc watch` read it). It ends when the
//! client goes.
//!
//! The events come from the store's change events (cairn-api `changes`):
//! every committed write, copy, delete, delete marker and tag change
//! through any front, whatever the bucket's notification rules, and in a
//! cluster those of every node (the relay carries them). A listener that
//! falls more than the change queue behind misses events (logged); the
//! stream is live only, as MinIO's is: durable delivery is what
//! notification targets are for.
//!
//! Who may listen: the root user, or a caller whose policies allow
//! `s3:ListenBucketNotification` on the bucket (decided as every S3
//! request is, crate::authz).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_api::changes::ChangeReceiver;
use cairn_api::notify::{OutboxRecord, covers, listenable};
use cairn_api::{BucketName, ObjectLayer};
use cairn_iam::Iam;
use http::{HeaderMap, HeaderValue, Method, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result, StdError, s3_error};
use tokio::sync::broadcast::error::RecvError;

use crate::host::Domains;

/// How often a quiet stream sends a space (keeps proxies and clients from
/// timing it out).
pub(crate) const KEEPALIVE: Duration = Duration::from_millis(500);

/// The operation's name (access log, metrics, IAM's action table).
const OPERATION: &str = "ListenBucketNotification";

/// The listen route.
pub(crate) struct ListenRoute {
    pub(crate) layer: Arc<dyn ObjectLayer>,
    pub(crate) iam: Arc<Iam>,
    pub(crate) authz: Arc<crate::authz::Authorizer>,
    pub(crate) domains: Option<Domains>,
    pub(crate) region: String,
}

/// The bucket a listen request names: a GET whose query has `events`,
/// of a bucket and no key.
pub(crate) fn listen_bucket(
    m: &Method,
    uri: &Uri,
    h: &HeaderMap,
    domains: Option<&Domains>,
) -> Option<String> {
    if *m != Method::GET {
        return None;
    }
    let asks = uri
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "events"));
    if !asks {
        return None;
    }
    if Domains::request_names_bucket(domains, uri, h) {
        let host = h
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))?;
        let (_, bucket) = domains?.parse(host)?;
        return (uri.path() == "/").then_some(bucket).flatten();
    }
    let path = uri.path().strip_prefix('/')?;
    let bucket = path.strip_suffix('/').unwrap_or(path);
    (!bucket.is_empty() && !bucket.contains('/')).then(|| bucket.to_owned())
}

/// What a listener asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    events: Vec<String>,
    prefix: String,
    suffix: String,
}

impl Wanted {
    /// The query's `events`, `prefix` and `suffix` (others are ignored, as
    /// MinIO's `ping` is: the keepalive is always sent).
    fn parse(uri: &Uri) -> S3Result<Self> {
        let mut w = Wanted {
            events: Vec::new(),
            prefix: String::new(),
            suffix: String::new(),
        };
        for (k, v) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
            match k.as_ref() {
                "events" if !v.is_empty() => {
                    if !listenable(&v) {
                        return Err(s3_error!(
                            InvalidArgument,
                            "The event is not supported for notifications: {v}"
                        ));
                    }
                    w.events.push(v.into_owned());
                }
                "prefix" => w.prefix = v.into_owned(),
                "suffix" => w.suffix = v.into_owned(),
                _ => {}
            }
        }
        if w.events.is_empty() {
            return Err(s3_error!(
                InvalidArgument,
                "events=EVENT names what to listen to (s3:ObjectCreated:*, ...)"
            ));
        }
        for v in [&w.prefix, &w.suffix] {
            if v.len() > 1024 {
                return Err(s3_error!(
                    InvalidArgument,
                    "a prefix or suffix is at most 1024 bytes"
                ));
            }
        }
        Ok(w)
    }

    fn matches(&self, bucket: &str, r: &OutboxRecord) -> bool {
        r.bucket == bucket
            && r.key.starts_with(&self.prefix)
            && r.key.ends_with(&self.suffix)
            && self.events.iter().any(|p| covers(p, r.event.as_str()))
    }
}

#[async_trait::async_trait]
impl S3Route for ListenRoute {
    fn is_match(&self, m: &Method, uri: &Uri, h: &HeaderMap, _e: &mut http::Extensions) -> bool {
        listen_bucket(m, uri, h, self.domains.as_ref()).is_some()
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        let bucket = listen_bucket(&req.method, &req.uri, &req.headers, self.domains.as_ref())
            .unwrap_or_default();
        let access_key = req.credentials.as_ref().map(|c| c.access_key.clone());
        if let Some(slot) = req.extensions.get::<crate::metrics::OperationSlot>() {
            slot.set(OPERATION);
        }
        if let Some(slot) = req.extensions.get::<crate::access::Resolved>() {
            slot.note(OPERATION, access_key.as_deref());
        }
        let caller = match &access_key {
            Some(k) => Some(crate::access::caller_of(
                &self.iam,
                &req.headers,
                &req.uri,
                k,
            )?),
            None => None,
        };
        if let Some(n) = crate::audit::notes(&req.extensions) {
            n.caller(&self.iam, caller.as_ref());
        }
        if let Some(c) = caller
            .as_ref()
            .filter(|c| c.identity == cairn_iam::Identity::Root)
        {
            self.authz.admit_root(c.clone(), &mut req.extensions);
            return Ok(());
        }
        let conn = req.extensions.get::<crate::sse::ConnInfo>().copied();
        let ask = crate::authz::Ask {
            op: OPERATION,
            bucket: Some(&bucket),
            key: None,
            headers: &req.headers,
            uri: &req.uri,
            conn: conn.as_ref(),
        };
        self.authz.check(&ask, caller, &mut req.extensions).await
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let bucket = listen_bucket(&req.method, &req.uri, &req.headers, self.domains.as_ref())
            .unwrap_or_default();
        let name = BucketName::new(bucket.clone())
            .map_err(|_| s3_error!(InvalidBucketName, "The specified bucket is not valid."))?;
        let wanted = Wanted::parse(&req.uri)?;
        // before the bucket is checked: nothing committed after the check
        // is missed
        let rx = self.layer.subscribe_changes().ok_or_else(|| {
            s3_error!(
                NotImplemented,
                "this server does not raise events it could stream"
            )
        })?;
        self.layer
            .get_bucket_config(&name)
            .await
            .map_err(crate::errors::s3_error)?;
        tracing::debug!(%bucket, events = ?wanted.events, "listener started");
        let stream = Listener {
            rx,
            bucket,
            wanted,
            region: self.region.clone(),
        }
        .into_stream();
        let mut resp = S3Response::new(crate::lines::Lines::body(stream));
        resp.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(resp)
    }
}

/// One listener's state.
struct Listener {
    rx: ChangeReceiver,
    bucket: String,
    wanted: Wanted,
    region: String,
}

impl Listener {
    /// The next chunk: an event line, or a keepalive space after
    /// [`KEEPALIVE`] of quiet; None when the store's channel closed.
    async fn next(&mut self) -> Option<Result<Bytes, StdError>> {
        let deadline = tokio::time::Instant::now() + KEEPALIVE;
        loop {
            let got = match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => return Some(Ok(Bytes::from_static(b" "))),
                Ok(got) => got,
            };
            match got {
                Ok(change) => {
                    let Some(event) = change.event else { continue };
                    if !self.wanted.matches(&self.bucket, &event) {
                        continue;
                    }
                    let message = cairn_api::event_message::message(&event, "", &self.region);
                    return Some(crate::lines::json_line(&message));
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(bucket = %self.bucket, missed = n,
                        "a listener fell behind the store's changes: events missed");
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    fn into_stream(self) -> impl futures::Stream<Item = Result<Bytes, StdError>> + Send {
        futures::stream::unfold(self, |mut l| async move {
            let chunk = l.next().await?;
            Some((chunk, l))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn which_requests_listen() {
        let h = HeaderMap::new();
        let get = &Method::GET;
        let bucket = |m, u: &str| listen_bucket(m, &uri(u), &h, None);
        assert_eq!(
            bucket(get, "/b?events=s3:ObjectCreated:*").as_deref(),
            Some("b")
        );
        assert_eq!(bucket(get, "/b/?events=x&prefix=p").as_deref(), Some("b"));
        // a key, no events, another method, no bucket: not a listen request
        assert_eq!(bucket(get, "/b/k?events=x"), None);
        assert_eq!(bucket(get, "/b?prefix=x"), None);
        assert_eq!(bucket(&Method::PUT, "/b?events=x"), None);
        assert_eq!(bucket(get, "/?events=x"), None);
        // virtual host: the bucket from the host, the path is /
        let domains = Domains::new(&["example.com".to_owned()]).unwrap();
        let mut vh = HeaderMap::new();
        vh.insert(
            http::header::HOST,
            HeaderValue::from_static("b.example.com"),
        );
        let u = uri("/?events=s3:ObjectRemoved:*");
        assert_eq!(
            listen_bucket(get, &u, &vh, Some(&domains)).as_deref(),
            Some("b")
        );
        assert_eq!(
            listen_bucket(get, &uri("/k?events=x"), &vh, Some(&domains)),
            None
        );
    }

    #[test]
    fn what_listeners_ask_for() {
        let w = Wanted::parse(&uri(
            "/b?events=s3:ObjectCreated:*&events=s3:ObjectAccessed:*&prefix=a/&suffix=.jpg&ping=10",
        ))
        .unwrap();
        assert_eq!(w.events, ["s3:ObjectCreated:*", "s3:ObjectAccessed:*"]);
        assert_eq!((w.prefix.as_str(), w.suffix.as_str()), ("a/", ".jpg"));
        for bad in ["/b?events=s3:Nope", "/b?events=", "/b?prefix=a"] {
            let e = Wanted::parse(&uri(bad)).unwrap_err();
            assert_eq!(e.code(), &s3s::S3ErrorCode::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn events_match_bucket_filters_and_types() {
        use cairn_api::notify::{EventName, RecordKind};
        let w = Wanted::parse(&uri("/b?events=s3:ObjectRemoved:*&prefix=a/&suffix=.x")).unwrap();
        let r = |bucket: &str, key: &str, event| OutboxRecord {
            kind: RecordKind::Event,
            event,
            bucket: bucket.into(),
            key: key.into(),
            version_id: None,
            size: 0,
            etag: String::new(),
            mod_time: 0,
            targets: vec![],
        };
        assert!(w.matches("b", &r("b", "a/1.x", EventName::Delete)));
        assert!(w.matches("b", &r("b", "a/1.x", EventName::DeleteMarkerCreated)));
        assert!(!w.matches("b", &r("b", "a/1.x", EventName::Put)));
        assert!(!w.matches("b", &r("c", "a/1.x", EventName::Delete)));
        assert!(!w.matches("b", &r("b", "z/1.x", EventName::Delete)));
        assert!(!w.matches("b", &r("b", "a/1.y", EventName::Delete)));
    }
}
