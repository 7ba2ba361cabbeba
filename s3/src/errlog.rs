//! One log line per refused or failed request, at the level its cause
//! deserves: a client's mistake (4xx) at debug, the server's own failure
//! (5xx) at error.
//!
//! `s3s` reports every error response itself, at ERROR and as a Rust debug
//! dump of the error (`failed to prepare`, `op returns error`, the `err` of
//! its instrumented `prepare`, `malformed xml body` with the body's bytes,
//! the response of a 5xx): a client asking for a missing key filled the
//! log with ERROR lines. [`is_s3s_error_report`] names those callsites for
//! the binary's log filter to drop, and the front logs each error response
//! once with [`response`]. The failures of the store behind are logged
//! where they happen too (crate::errors), with their cause.

use http::{Method, Response};
use s3s::Body;

/// Whether a log callsite is one of `s3s`'s ERROR-level reports of an
/// error response (see the module doc). `s3s` has no other ERROR callsite.
pub fn is_s3s_error_report(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    (target == "s3s" || target.starts_with("s3s::")) && *meta.level() == tracing::Level::ERROR
}

/// Logs an error response (status 400 and up) in one line: status, S3
/// error code and message (from the XML body when it is at hand), method
/// and redacted target.
pub(crate) fn response(method: &Method, uri: &http::Uri, resp: &Response<Body>) {
    let status = resp.status();
    if !status.is_client_error() && !status.is_server_error() {
        return;
    }
    let xml = resp.body().bytes();
    let text = xml.as_deref().map(String::from_utf8_lossy);
    let code = text
        .as_deref()
        .and_then(|t| xml_text(t, "Code"))
        .unwrap_or("");
    let reason = text
        .as_deref()
        .and_then(|t| xml_text(t, "Message"))
        .unwrap_or("");
    let uri = crate::redact::Uri(uri);
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), code, reason, %method, %uri, "request failed");
    } else {
        tracing::debug!(status = status.as_u16(), code, reason, %method, %uri, "request refused");
    }
}

/// The S3 error code of an error response whose body is at hand.
pub(crate) fn error_code(resp: &Response<Body>) -> Option<String> {
    let xml = resp.body().bytes()?;
    let text = String::from_utf8_lossy(&xml);
    xml_text(&text, "Code").map(str::to_owned)
}

/// The text of the first `<tag>...</tag>` (error bodies are flat).
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let rest = xml.get(start..)?;
    let end = rest.find(&format!("</{tag}>"))?;
    rest.get(..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_fields() {
        let x =
            "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>gone</Message></Error>";
        assert_eq!(xml_text(x, "Code"), Some("NoSuchKey"));
        assert_eq!(xml_text(x, "Message"), Some("gone"));
        assert_eq!(xml_text(x, "Resource"), None);
        assert_eq!(xml_text("<Code>open", "Code"), None);
    }
}
