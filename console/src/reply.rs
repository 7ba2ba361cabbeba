//! The console's answers: JSON, assets, streamed bodies, and the security
//! headers every answer carries.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::BodyExt as _;

use crate::assets::Asset;
use crate::error::ConsoleError;

/// A console answer's body (the S3 front's `WebBody`).
pub type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// Scripts, styles, images and calls from the console's own origin only:
/// no inline script or style, no framing, no plugins, no `<base>`.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A body of `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn with(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// 200 with `v` as JSON.
pub fn json(v: &serde_json::Value) -> Response<Body> {
    with(
        StatusCode::OK,
        "application/json",
        full(serde_json::to_vec(v).unwrap_or_default()),
    )
}

/// The error's status with `{"code", "message"}`.
pub fn error(e: &ConsoleError) -> Response<Body> {
    let v = serde_json::json!({ "code": e.code(), "message": e.to_string() });
    with(
        e.status(),
        "application/json",
        full(serde_json::to_vec(&v).unwrap_or_default()),
    )
}

/// 303 to `to`.
pub fn redirect(to: &str) -> Response<Body> {
    let mut r = with(StatusCode::SEE_OTHER, "text/plain", full(""));
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// An embedded page, script or style sheet.
pub fn asset(a: &Asset) -> Response<Body> {
    with(StatusCode::OK, a.content_type, full(a.bytes))
}

/// The headers every console answer carries: CSP, no framing, no
/// sniffing, no referrer (URLs may name buckets and keys), no caching of
/// answers that hold a user's data.
pub fn secure_headers(h: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, "content-security-policy", CSP);
    set(h, "x-frame-options", "DENY");
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    set(h, "cache-control", "no-store");
}
