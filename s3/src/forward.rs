//! Requests for buckets this server does not hold (federation): the front
//! asks a [`BucketRouter`] where a request's bucket lives before serving
//! it, and answers with whatever the router did (the owner's response,
//! a redirect, or 503). The router is given the request untouched: the
//! owner checks the client's own signature.

use std::sync::Arc;

use async_trait::async_trait;
use cairn_api::BucketName;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use s3s::Body;

use crate::host::Domains;

/// A request carrying this header was forwarded by another site: it is
/// served here whatever the router thinks, so two sites that disagree
/// about an owner never pass a request back and forth. A client setting
/// it only keeps its request on the site it asked.
pub const FORWARDED_HEADER: &str = "x-cairn-federation-forwarded";

/// A CreateBucket carrying this header with the value `capacity` is
/// placed on the live site with the most free space (`local`, or no
/// header: this site).
pub const PLACEMENT_HEADER: &str = "x-cairn-placement";

/// The body of an owner's answer, passed on as it comes (its errors cut
/// the client's response short).
pub type ForwardedBody = http_body_util::combinators::UnsyncBoxBody<
    bytes::Bytes,
    Box<dyn std::error::Error + Send + Sync>,
>;

/// What became of a request for a bucket.
pub enum Routed {
    /// The bucket is (or would be) this server's: serve the request.
    Here(Request<Incoming>),
    /// The owner's answer, to be sent to the client as it is.
    Answered(Response<ForwardedBody>),
    /// 307 to this URL (the same request at the owner).
    Redirect(http::Uri),
    /// The owner cannot be reached: 503 with this message.
    Unavailable(String),
    /// The request asks for what cannot be: 400 with this message.
    Invalid(String),
}

/// Where requests for buckets of other servers go.
#[async_trait]
pub trait BucketRouter: Send + Sync + 'static {
    /// Serves, forwards or refuses a request for `bucket`.
    async fn route(&self, bucket: &BucketName, req: Request<Incoming>) -> Routed;

    /// Serves here or forwards a CreateBucket of `bucket` asking
    /// `x-cairn-placement: capacity`.
    async fn place(&self, bucket: &BucketName, req: Request<Incoming>) -> Routed;

    /// The federation as this server sees it (`cairn admin federation
    /// status`).
    async fn status(&self) -> FederationStatus;
}

/// The answer of `GET /_cairn/admin/v1/federation/status`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FederationStatus {
    /// The site that answered.
    pub site: String,
    pub etcd: EtcdHealth,
    /// Live sites and every site named by a bucket record, by name.
    pub sites: Vec<SiteStatus>,
}

/// etcd as the answering site sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EtcdHealth {
    /// Whether the site follows etcd now (read and watched).
    pub followed: bool,
    pub endpoints: Vec<EtcdEndpoint>,
}

/// One etcd endpoint's answer to a status call.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EtcdEndpoint {
    pub endpoint: String,
    /// etcd's version, when it answered.
    pub version: Option<String>,
    /// Whether this member leads the etcd cluster.
    pub leader: bool,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// One site of the federation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SiteStatus {
    pub name: String,
    /// Registered (its lease kept) now.
    pub live: bool,
    /// Its public URL (live sites only).
    pub url: Option<String>,
    /// Buckets recorded as its own.
    pub buckets: usize,
    /// Free space as it last published it.
    pub free_bytes: Option<u64>,
}

/// What the router is asked about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    /// Whose bucket is it (`BucketRouter::route`).
    Route,
    /// A CreateBucket to place by free space (`BucketRouter::place`).
    Place,
    /// A CreateBucket with a placement header of no known value.
    BadPlacement,
}

/// The bucket a request names (virtual-host style through the front's
/// domains, else the first path segment), if it is a valid name and the
/// request was not forwarded already, and what to ask the router. A
/// CreateBucket is not routed: it claims the name here (a name held
/// elsewhere is BucketAlreadyExists), unless it asks to be placed by
/// capacity.
pub(crate) fn routed_bucket(
    req: &Request<Incoming>,
    domains: Option<&Domains>,
) -> Option<(BucketName, Ask)> {
    if req.headers().contains_key(FORWARDED_HEADER) {
        return None;
    }
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let path = req.uri().path().trim_start_matches('/');
    let (bucket, rest) = match (domains, host) {
        (Some(d), Some(host)) if let Some((_, Some(bucket))) = d.parse(host) => (bucket, path),
        _ => {
            let (first, rest) = path.split_once('/').unwrap_or((path, ""));
            (first.to_owned(), rest)
        }
    };
    let bucket = BucketName::new(bucket).ok()?;
    let create =
        req.method() == http::Method::PUT && rest.is_empty() && req.uri().query().is_none();
    if !create {
        return Some((bucket, Ask::Route));
    }
    let placement = req.headers().get(PLACEMENT_HEADER)?;
    match placement.as_bytes() {
        b"capacity" => Some((bucket, Ask::Place)),
        b"local" => None,
        _ => Some((bucket, Ask::BadPlacement)),
    }
}

/// The client's answer for what the router did (`Here` never reaches it).
pub(crate) fn answer(routed: Routed) -> Response<Body> {
    match routed {
        Routed::Answered(resp) => resp.map(Body::http_body_unsync),
        Routed::Redirect(location) => {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::TEMPORARY_REDIRECT;
            if let Ok(v) = http::HeaderValue::from_str(&location.to_string()) {
                resp.headers_mut().insert(http::header::LOCATION, v);
            }
            resp
        }
        Routed::Unavailable(message) => crate::server::s3_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            &xml_text(&message),
            false,
        ),
        Routed::Invalid(message) => crate::server::s3_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            &xml_text(&message),
            false,
        ),
        Routed::Here(_) => crate::server::s3_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "request routing failed",
            false,
        ),
    }
}

/// `text` with XML's special characters escaped.
fn xml_text(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// The router of a server, if it has one.
pub(crate) type Router = Option<Arc<dyn BucketRouter>>;
