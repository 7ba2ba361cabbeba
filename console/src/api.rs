//! The console's JSON calls (login, buckets, listings, details, versioning,
//! delete, folders, share links, admin), each one or a few calls of the
//! server's API as the session's user.

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use aws_smithy_types::date_time::{DateTime, Format};
use http::Response;
use http::header::{HeaderValue, SET_COOKIE};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};

use crate::error::ConsoleError;
use crate::reply::{self, Body};
use crate::session::{self, Session, Sessions};
use crate::upstream::{Temporary, Upstream};
use crate::{Ctx, PREFIX, names};

/// A login's JSON body at most.
const MAX_LOGIN_BODY: usize = 8 * 1024;
/// Keys per listing page at most (S3's own cap).
const MAX_PAGE: i32 = 1000;
/// A share link's longest life (SigV4's presigned limit).
const MAX_SHARE_SECS: i64 = 7 * 24 * 3600;

fn when(d: Option<&DateTime>) -> Value {
    d.and_then(|d| d.fmt(Format::DateTime).ok())
        .map_or(Value::Null, Value::String)
}

/// Reads a small JSON body.
pub(crate) async fn small_json(
    body: hyper::body::Incoming,
    max: usize,
) -> Result<Value, ConsoleError> {
    let bytes = http_body_util::Limited::new(body, max)
        .collect()
        .await
        .map_err(|_| ConsoleError::bad(format!("the body must be JSON of at most {max} bytes")))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| ConsoleError::bad(format!("bad JSON: {e}")))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `POST api/login {"access_key", "secret_key"}`: the keys sign one STS
/// AssumeRole; the session cookie holds its temporary credentials.
pub async fn login(
    sessions: &Sessions,
    up: &Upstream,
    cx: Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let tls = cx.tls;
    let v = small_json(cx.body, MAX_LOGIN_BODY).await?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (access_key, secret_key) = (field("access_key"), field("secret_key"));
    if access_key.is_empty() || secret_key.is_empty() {
        return Err(ConsoleError::bad(
            "an access key and a secret key are needed",
        ));
    }
    let t = up
        .assume_role(&access_key, &secret_key)
        .await
        .inspect_err(|e| {
            tracing::info!(%access_key, error = %e, "console login refused");
        })?;
    let (s, cookie) = start_session(sessions, t, tls)?;
    tracing::info!(%access_key, user = %s.user, "console login");
    let mut r = reply::json(&json!({ "user": s.user, "csrf": s.csrf, "expires": s.expires }));
    r.headers_mut().insert(SET_COOKIE, cookie);
    Ok(r)
}

/// A new live session holding `t`, and the `Set-Cookie` value that
/// gives it to the browser.
pub(crate) fn start_session(
    sessions: &Sessions,
    t: Temporary,
    tls: bool,
) -> Result<(Session, HeaderValue), ConsoleError> {
    let s = Session {
        id: sessions.random_hex(16)?,
        access_key: t.access_key,
        secret_key: t.secret_key,
        session_token: t.session_token,
        expires: t.expires,
        user: t.arn,
        csrf: sessions.random_hex(32)?,
    };
    let value = sessions.open_session(&s, now())?;
    let cookie = session::set_cookie(Some(&value), PREFIX, tls, s.expires - now());
    let cookie =
        HeaderValue::from_str(&cookie).map_err(|e| ConsoleError::Transport(e.to_string()))?;
    Ok((s, cookie))
}

/// The answer to a logout: the cookie cleared.
pub fn logged_out(tls: bool) -> Response<Body> {
    let mut r = reply::json(&json!({ "logged_out": true }));
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(None, PREFIX, tls, 0)) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}

/// `GET api/session`: who is logged in, the CSRF token, and which admin
/// pages this user may use (asked of the server: the menu shows only
/// what it allows).
pub async fn session_info(up: &Upstream, s: &Session) -> Result<Response<Body>, ConsoleError> {
    let (admin, iam) = crate::admin::probe(up, s).await?;
    Ok(reply::json(&json!({
        "user": s.user,
        "csrf": s.csrf,
        "expires": s.expires,
        "admin": admin,
        "iam": iam,
    })))
}

/// `GET api/buckets`
pub async fn list_buckets(up: &Upstream, s: &Session) -> Result<Response<Body>, ConsoleError> {
    let out = up
        .s3(s, None)
        .list_buckets()
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    let buckets: Vec<Value> = out
        .buckets()
        .iter()
        .map(|b| json!({ "name": b.name(), "created": when(b.creation_date()) }))
        .collect();
    Ok(reply::json(&json!({ "buckets": buckets })))
}

/// `POST api/buckets?bucket=B`
pub async fn create_bucket(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(cx)?;
    up.s3(s, None)
        .create_bucket()
        .bucket(b.as_str())
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({ "created": b.as_str() })))
}

/// `GET api/versioning?bucket=B`
pub async fn get_versioning(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(cx)?;
    let out = up
        .s3(s, None)
        .get_bucket_versioning()
        .bucket(b.as_str())
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    let status = out.status().map(|v| v.as_str().to_owned());
    Ok(reply::json(&json!({
        "enabled": status.as_deref() == Some("Enabled"),
        "status": status,
    })))
}

/// `PUT api/versioning?bucket=B&enabled=true|false`
pub async fn put_versioning(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(cx)?;
    let status = match cx.req("enabled")? {
        "true" => BucketVersioningStatus::Enabled,
        "false" => BucketVersioningStatus::Suspended,
        _ => return Err(ConsoleError::bad("enabled must be true or false")),
    };
    up.s3(s, None)
        .put_bucket_versioning()
        .bucket(b.as_str())
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(status.clone())
                .build(),
        )
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({ "status": status.as_str() })))
}

/// `GET api/objects?bucket=B&prefix=P&token=T&max=N`: one page of the
/// folder `P` (delimiter `/`), continued by `next`.
pub async fn list_objects(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(cx)?;
    let prefix = names::prefix(cx)?;
    let max = match cx.param("max") {
        Some(m) => m
            .parse::<i32>()
            .ok()
            .filter(|m| (1..=MAX_PAGE).contains(m))
            .ok_or_else(|| ConsoleError::bad(format!("max must be 1..={MAX_PAGE}")))?,
        None => MAX_PAGE,
    };
    let token = cx.param("token").filter(|t| !t.is_empty());
    if token.is_some_and(|t| t.len() > 4096) {
        return Err(ConsoleError::bad("continuation token too long"));
    }
    let out = up
        .s3(s, None)
        .list_objects_v2()
        .bucket(b.as_str())
        .prefix(&prefix)
        .delimiter("/")
        .max_keys(max)
        .set_continuation_token(token.map(str::to_owned))
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    let folders: Vec<Value> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .map(|p| json!(p))
        .collect();
    let objects: Vec<Value> = out
        .contents()
        .iter()
        .map(|o| {
            json!({
                "key": o.key(),
                "size": o.size(),
                "modified": when(o.last_modified()),
                "etag": o.e_tag(),
            })
        })
        .collect();
    Ok(reply::json(&json!({
        "bucket": b.as_str(),
        "prefix": prefix,
        "folders": folders,
        "objects": objects,
        "next": out.next_continuation_token(),
    })))
}

/// `GET api/details?bucket=B&key=K`: metadata, tags and versions.
pub async fn details(up: &Upstream, s: &Session, cx: &Ctx) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(cx)?;
    let k = names::key(cx)?;
    let c = up.s3(s, None);
    let head = c
        .head_object()
        .bucket(b.as_str())
        .key(k.as_str())
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    let meta: serde_json::Map<String, Value> = head
        .metadata()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
        .unwrap_or_default();
    // tags and versions the user may not be allowed to read: said, not fatal
    let tags = match c
        .get_object_tagging()
        .bucket(b.as_str())
        .key(k.as_str())
        .send()
        .await
    {
        Ok(t) => json!(
            t.tag_set()
                .iter()
                .map(|t| json!({ "key": t.key(), "value": t.value() }))
                .collect::<Vec<_>>()
        ),
        Err(e) => json!({ "error": ConsoleError::sdk(e).to_string() }),
    };
    let versions = versions_of(&c, b.as_str(), k.as_str()).await;
    let (retention, legal_hold) =
        crate::retention::state(&c, b.as_str(), k.as_str(), head.version_id()).await;
    Ok(reply::json(&json!({
        "bucket": b.as_str(),
        "key": k.as_str(),
        "size": head.content_length(),
        "content_type": head.content_type(),
        "etag": head.e_tag(),
        "modified": when(head.last_modified()),
        "version_id": head.version_id(),
        "sse": head.server_side_encryption().map(|e| e.as_str()),
        "sse_key": head.ssekms_key_id(),
        "retention": retention,
        "legal_hold": legal_hold,
        "image": crate::preview::image_type(head.content_type()).is_some(),
        "metadata": meta,
        "tags": tags,
        "versions": versions,
    })))
}

/// The versions of exactly `key` (first 1000), newest first, or the error.
async fn versions_of(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Value {
    let out = match c
        .list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .max_keys(MAX_PAGE)
        .send()
        .await
    {
        Ok(o) => o,
        Err(e) => return json!({ "error": ConsoleError::sdk(e).to_string() }),
    };
    let mut v: Vec<Value> = out
        .versions()
        .iter()
        .filter(|v| v.key() == Some(key))
        .map(|v| {
            json!({
                "version_id": v.version_id(),
                "latest": v.is_latest(),
                "size": v.size(),
                "modified": when(v.last_modified()),
                "delete_marker": false,
            })
        })
        .collect();
    v.extend(
        out.delete_markers()
            .iter()
            .filter(|m| m.key() == Some(key))
            .map(|m| {
                json!({
                    "version_id": m.version_id(),
                    "latest": m.is_latest(),
                    "size": 0,
                    "modified": when(m.last_modified()),
                    "delete_marker": true,
                })
            }),
    );
    v.sort_by(|a, b| b["modified"].as_str().cmp(&a["modified"].as_str()));
    Value::Array(v)
}

/// `POST api/delete?bucket=B&key=K[&version=V]`
pub async fn delete_object(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let (b, k, version) = names::object(cx)?;
    let out = up
        .s3(s, None)
        .delete_object()
        .bucket(b.as_str())
        .key(k.as_str())
        .set_version_id(version)
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({
        "deleted": k.as_str(),
        "version_id": out.version_id(),
        "delete_marker": out.delete_marker(),
    })))
}

/// `POST api/folder?bucket=B&key=K/`: the empty `K/` marker object.
pub async fn create_folder(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(cx)?;
    let k = names::key(cx)?;
    if !k.is_dir_marker() {
        return Err(ConsoleError::bad("a folder's key ends with /"));
    }
    up.s3(s, None)
        .put_object()
        .bucket(b.as_str())
        .key(k.as_str())
        .content_length(0)
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({ "created": k.as_str() })))
}

/// `POST api/share?bucket=B&key=K&expires=SECS[&version=V]`: a presigned
/// GET, signed here with the session's credentials for the host the
/// browser used. It stops working at its expiry or when the session's
/// credentials do, whichever comes first (the answer says when).
pub async fn share(up: &Upstream, s: &Session, cx: &Ctx) -> Result<Response<Body>, ConsoleError> {
    let (b, k, version) = names::object(cx)?;
    let secs: i64 = cx
        .req("expires")?
        .parse()
        .ok()
        .filter(|s| (1..=MAX_SHARE_SECS).contains(s))
        .ok_or_else(|| {
            ConsoleError::bad(format!("expires must be 1..={MAX_SHARE_SECS} seconds"))
        })?;
    let host = cx.authority()?;
    let scheme = if cx.tls { "https" } else { "http" };
    // the S3 port on the host the browser named (the console may have an
    // address of its own)
    let endpoint = match cx.s3_port {
        Some(port) if host.host().contains(':') => format!(
            "{scheme}://[{}]:{port}",
            host.host().trim_matches(|c| c == '[' || c == ']')
        ),
        Some(port) => format!("{scheme}://{}:{port}", host.host()),
        None => format!("{scheme}://{host}"),
    };
    let now = now();
    let until = (now + secs).min(s.expires);
    let life = u64::try_from(until - now).unwrap_or(0).max(1);
    let cfg =
        aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(life))
            .map_err(|e| ConsoleError::bad(e.to_string()))?;
    let req = up
        .s3(s, Some(&endpoint))
        .get_object()
        .bucket(b.as_str())
        .key(k.as_str())
        .set_version_id(version)
        .presigned(cfg)
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({
        "url": req.uri(),
        "expires": until,
        "limited_by_session": until < now + secs,
    })))
}
