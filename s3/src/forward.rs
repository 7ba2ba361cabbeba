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

/// What became of a request for a bucket.
pub enum Routed {
    /// The bucket is (or would be) this server's: serve the request.
    Here(Request<Incoming>),
    /// The owner's answer, to be sent to the client as it is.
    Answered(Response<Incoming>),
    /// 307 to this URL (the same request at the owner).
    Redirect(http::Uri),
    /// The owner cannot be reached: 503 with this message.
    Unavailable(String),
}

/// Where requests for buckets of other servers go.
#[async_trait]
pub trait BucketRouter: Send + Sync + 'static {
    /// Serves, forwards or refuses a request for `bucket`.
    async fn route(&self, bucket: &BucketName, req: Request<Incoming>) -> Routed;
}

/// The bucket a request names (virtual-host style through the front's
/// domains, else the first path segment), if it is a valid name and the
/// request was not forwarded already. A CreateBucket is never routed: it
/// claims the name here, and a name held elsewhere is BucketAlreadyExists.
pub(crate) fn routed_bucket(
    req: &Request<Incoming>,
    domains: Option<&Domains>,
) -> Option<BucketName> {
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
    let create =
        req.method() == http::Method::PUT && rest.is_empty() && req.uri().query().is_none();
    if create {
        return None;
    }
    BucketName::new(bucket).ok()
}

/// The client's answer for what the router did (`Here` never reaches it).
pub(crate) fn answer(routed: Routed) -> Response<Body> {
    match routed {
        Routed::Answered(resp) => resp.map(Body::http_body),
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
