//! One object's WORM state on its details page: retention (mode and
//! retain-until date) and legal hold, read and set through the S3 API as
//! the session's user (the server enforces who may shorten or lift what).

use aws_sdk_s3::types::{ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockRetention};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use http::Response;
use serde_json::{Value, json};

use crate::error::ConsoleError;
use crate::reply::{self, Body};
use crate::session::Session;
use crate::settings::retention_mode;
use crate::upstream::Upstream;
use crate::{Ctx, names};

/// Codes meaning "none set" (or no lock on the bucket): shown as empty.
const NONE: &[&str] = &[
    "NoSuchObjectLockConfiguration",
    "ObjectLockConfigurationNotFoundError",
    "InvalidRequest",
];

fn shown<T>(r: Result<T, ConsoleError>, f: impl FnOnce(T) -> Value) -> Value {
    match r {
        Ok(v) => f(v),
        Err(e) if NONE.contains(&e.code()) => Value::Null,
        Err(e) => json!({ "error": e.to_string(), "code": e.code() }),
    }
}

/// The retention and legal hold of `key` (its `version`, else the
/// latest), as the details page shows them.
pub async fn state(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> (Value, Value) {
    let version = version.map(str::to_owned);
    let (retention, hold) = tokio::join!(
        c.get_object_retention()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.clone())
            .send(),
        c.get_object_legal_hold()
            .bucket(bucket)
            .key(key)
            .set_version_id(version)
            .send(),
    );
    let retention = shown(retention.map_err(ConsoleError::sdk), |r| {
        let r = r.retention();
        json!({
            "mode": r.and_then(|r| r.mode()).map(|m| m.as_str()),
            "until": r
                .and_then(|r| r.retain_until_date())
                .and_then(|d| d.fmt(Format::DateTime).ok()),
        })
    });
    let hold = shown(hold.map_err(ConsoleError::sdk), |h| {
        json!(h.legal_hold().and_then(|h| h.status()).map(|s| s.as_str()) == Some("ON"))
    });
    (retention, hold)
}

/// `PUT api/retention?bucket=B&key=K[&version=V]&mode=M&until=T[&bypass=true]`:
/// `T` an RFC 3339 date; `bypass` asks to shorten a GOVERNANCE retention
/// (the server decides whether the user may).
pub async fn put_retention(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let (b, k, version) = names::object(cx)?;
    let mode = retention_mode(cx.req("mode")?)?;
    let until = DateTime::from_str(cx.req("until")?, Format::DateTime)
        .map_err(|_| ConsoleError::bad("until must be an RFC 3339 date"))?;
    let bypass = cx.param("bypass") == Some("true");
    up.s3(s, None)
        .put_object_retention()
        .bucket(b.as_str())
        .key(k.as_str())
        .set_version_id(version)
        .bypass_governance_retention(bypass)
        .retention(
            ObjectLockRetention::builder()
                .mode(mode.clone())
                .retain_until_date(until)
                .build(),
        )
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({ "mode": mode.as_str() })))
}

/// `PUT api/legal-hold?bucket=B&key=K[&version=V]&on=true|false`
pub async fn put_legal_hold(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let (b, k, version) = names::object(cx)?;
    let status = match cx.req("on")? {
        "true" => ObjectLockLegalHoldStatus::On,
        "false" => ObjectLockLegalHoldStatus::Off,
        _ => return Err(ConsoleError::bad("on must be true or false")),
    };
    up.s3(s, None)
        .put_object_legal_hold()
        .bucket(b.as_str())
        .key(k.as_str())
        .set_version_id(version)
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(status.clone())
                .build(),
        )
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({ "legal_hold": status.as_str() })))
}
