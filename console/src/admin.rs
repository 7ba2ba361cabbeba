//! The administration pages' calls: drives and sets (the admin API's
//! info), KMS keys (status, create, rotate), heal (started, its progress
//! streamed through), and the probe that tells the page which of them the
//! session may use. Each is the session's own signed call of the admin
//! API, which admits the root user (and root's unnarrowed sessions) only:
//! its 403 is passed on.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;

use crate::error::ConsoleError;
use crate::reply::{self, Body};
use crate::session::Session;
use crate::upstream::{Upstream, form, upstream_error};
use crate::{Ctx, names};

/// How long a heal started from the console may stream.
const HEAL_LIFE: Duration = Duration::from_secs(6 * 3600);

/// Whether the session may use the admin API (drives, KMS, heal) and
/// the IAM pages: asked of the server, never guessed.
pub async fn probe(up: &Upstream, s: &Session) -> Result<(bool, bool), ConsoleError> {
    let list = form(&[
        ("Action", "ListUsers"),
        ("Version", "2010-05-08"),
        ("MaxItems", "1"),
    ]);
    let (admin, iam) = tokio::join!(up.admin(s, Method::GET, "info"), up.iam(s, list));
    Ok((admin?.0.is_success(), iam?.0.is_success()))
}

/// An admin API answer as the console's: its JSON, or its refusal.
fn passed_on(status: StatusCode, body: &Bytes) -> Result<Response<Body>, ConsoleError> {
    if !status.is_success() {
        return Err(upstream_error(status, &String::from_utf8_lossy(body)));
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| ConsoleError::Transport(e.to_string()))?;
    Ok(reply::json(&v))
}

/// `GET api/admin/info`: drives, their sets and state.
pub async fn info(up: &Upstream, s: &Session) -> Result<Response<Body>, ConsoleError> {
    let (status, body) = up.admin(s, Method::GET, "info").await?;
    passed_on(status, &body)
}

/// `GET api/admin/kms`: the KMS, its keys and versions.
pub async fn kms_status(up: &Upstream, s: &Session) -> Result<Response<Body>, ConsoleError> {
    let (status, body) = up.admin(s, Method::GET, "kms/status").await?;
    passed_on(status, &body)
}

/// A KMS key name parameter: letters, digits, `-_.`, 1 to 128 of them.
fn key_name(cx: &Ctx) -> Result<Option<String>, ConsoleError> {
    match cx.param("name") {
        None | Some("") => Ok(None),
        Some(n)
            if n.len() <= 128
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            Ok(Some(n.to_owned()))
        }
        Some(_) => Err(ConsoleError::bad(
            "a key name is 1 to 128 letters, digits, '-', '_' or '.'",
        )),
    }
}

fn with_query(what: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        what.to_owned()
    } else {
        format!("{what}?{}", form(pairs))
    }
}

/// `POST api/admin/kms/keys?name=N`
pub async fn kms_create(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let name = key_name(cx)?.ok_or_else(|| ConsoleError::bad("a key needs a name"))?;
    let what = with_query("kms/keys", &[("name", &name)]);
    let (status, body) = up.admin(s, Method::POST, &what).await?;
    passed_on(status, &body)
}

/// `POST api/admin/kms/rotate[?name=N]` (the default key without a name)
pub async fn kms_rotate(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let name = key_name(cx)?;
    let pairs: Vec<(&str, &str)> = name.iter().map(|n| ("name", n.as_str())).collect();
    let (status, body) = up
        .admin(s, Method::POST, &with_query("kms/rotate", &pairs))
        .await?;
    passed_on(status, &body)
}

/// `POST api/admin/heal[?bucket=B[&prefix=P]][&deep=true]`: the admin
/// API's heal, its NDJSON progress lines streamed to the page as they
/// come (nothing kept here).
pub async fn heal(up: &Upstream, s: &Session, cx: &Ctx) -> Result<Response<Body>, ConsoleError> {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if cx.param("bucket").is_some_and(|b| !b.is_empty()) {
        pairs.push(("bucket", names::bucket(cx)?.as_str().to_owned()));
        let prefix = names::prefix(cx)?;
        if !prefix.is_empty() {
            pairs.push(("prefix", prefix));
        }
    }
    if cx.param("deep") == Some("true") {
        pairs.push(("deep", "true".into()));
    }
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = up
        .admin_stream(s, &with_query("heal", &borrowed), HEAL_LIFE)
        .await?;
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if !status.is_success() {
        let body = resp.bytes().await.unwrap_or_default();
        return Err(upstream_error(status, &String::from_utf8_lossy(&body)));
    }
    // the response while it lasts; after an error, nothing more
    let lines = futures::stream::unfold(Some(resp), |r| async move {
        let mut r = r?;
        match r.chunk().await {
            Ok(Some(b)) => Some((Ok(http_body::Frame::data(b)), Some(r))),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e)), None)),
        }
    });
    let body: Body = http_body_util::StreamBody::new(lines).boxed();
    let mut r = Response::new(body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(r)
}
