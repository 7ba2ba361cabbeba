//! The bucket settings page's calls: versioning (api.rs), object lock's
//! default retention, default encryption, lifecycle expiration rules,
//! tags and the bucket policy, each the S3 API's own call as the
//! session's user. What the user may not read is said in its section,
//! not fatal; the server's answer validates what is written (a policy the
//! server refuses comes back as its `MalformedPolicy`).

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, DefaultRetention, ExpirationStatus, LifecycleExpiration,
    LifecycleRule, LifecycleRuleFilter, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockRetentionMode, ObjectLockRule, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
};
use http::Response;
use serde_json::{Value, json};

use crate::api::small_json;
use crate::error::ConsoleError;
use crate::reply::{self, Body};
use crate::session::Session;
use crate::upstream::Upstream;
use crate::{Ctx, names};

/// The codes S3 answers for "nothing set": shown as empty, not as errors.
const NOT_SET: &[&str] = &[
    "NoSuchLifecycleConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchTagSet",
    "NoSuchBucketPolicy",
    "ObjectLockConfigurationNotFoundError",
];
/// A tags or policy body at most (S3's policy limit is 20 KiB).
const MAX_BODY: usize = 32 * 1024;
/// Bucket tags at most (S3's limit).
const MAX_TAGS: usize = 50;
/// Lifecycle rules at most (S3's limit).
const MAX_RULES: usize = 1000;

fn bad_build(e: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::bad(e.to_string())
}

/// A section of the page: its value, `null` when not set, or the error.
fn section<T>(r: Result<T, ConsoleError>, f: impl FnOnce(T) -> Value) -> Value {
    match r {
        Ok(v) => f(v),
        Err(e) if NOT_SET.contains(&e.code()) => Value::Null,
        Err(e) => json!({ "error": e.to_string(), "code": e.code() }),
    }
}

fn mode_name(m: &ObjectLockRetentionMode) -> &str {
    m.as_str()
}

/// A retention mode parameter (`GOVERNANCE` or `COMPLIANCE`).
pub(crate) fn retention_mode(raw: &str) -> Result<ObjectLockRetentionMode, ConsoleError> {
    match raw {
        "GOVERNANCE" => Ok(ObjectLockRetentionMode::Governance),
        "COMPLIANCE" => Ok(ObjectLockRetentionMode::Compliance),
        _ => Err(ConsoleError::bad("mode must be GOVERNANCE or COMPLIANCE")),
    }
}

/// A positive count of days (at most 100 years).
fn days(cx: &Ctx) -> Result<i32, ConsoleError> {
    cx.req("days")?
        .parse::<i32>()
        .ok()
        .filter(|d| (1..=36_500).contains(d))
        .ok_or_else(|| ConsoleError::bad("days must be 1..=36500"))
}

/// `GET api/settings?bucket=B`: every section of the page.
pub async fn get(up: &Upstream, s: &Session, cx: &Ctx) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(cx)?;
    let c = up.s3(s, None);
    let b = b.as_str();
    let (versioning, lock, encryption, lifecycle, tags, policy) = tokio::join!(
        c.get_bucket_versioning().bucket(b).send(),
        c.get_object_lock_configuration().bucket(b).send(),
        c.get_bucket_encryption().bucket(b).send(),
        c.get_bucket_lifecycle_configuration().bucket(b).send(),
        c.get_bucket_tagging().bucket(b).send(),
        c.get_bucket_policy().bucket(b).send(),
    );
    let versioning = section(
        versioning.map_err(ConsoleError::sdk),
        |v| json!({ "status": v.status().map(|s| s.as_str()) }),
    );
    let lock = section(lock.map_err(ConsoleError::sdk), |l| {
        let cfg = l.object_lock_configuration();
        let retention = cfg
            .and_then(|c| c.rule())
            .and_then(|r| r.default_retention());
        json!({
            "enabled": cfg.and_then(|c| c.object_lock_enabled()).map(|e| e.as_str()) == Some("Enabled"),
            "mode": retention.and_then(|r| r.mode()).map(mode_name),
            "days": retention.and_then(|r| r.days()),
            "years": retention.and_then(|r| r.years()),
        })
    });
    let encryption = section(encryption.map_err(ConsoleError::sdk), |e| {
        let by_default = e
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default());
        json!({
            "algorithm": by_default.map(|d| d.sse_algorithm().as_str()),
            "key": by_default.and_then(|d| d.kms_master_key_id()),
        })
    });
    let lifecycle = section(lifecycle.map_err(ConsoleError::sdk), |l| {
        json!(l.rules().iter().map(rule_json).collect::<Vec<_>>())
    });
    let tags = section(tags.map_err(ConsoleError::sdk), |t| {
        json!(
            t.tag_set()
                .iter()
                .map(|t| json!({ "key": t.key(), "value": t.value() }))
                .collect::<Vec<_>>()
        )
    });
    let policy = section(policy.map_err(ConsoleError::sdk), |p| json!(p.policy()));
    Ok(reply::json(&json!({
        "bucket": b,
        "versioning": versioning,
        "lock": lock,
        "encryption": encryption,
        "lifecycle": lifecycle,
        "tags": tags,
        "policy": policy,
    })))
}

fn rule_json(r: &LifecycleRule) -> Value {
    json!({
        "id": r.id(),
        "prefix": r.filter().and_then(|f| f.prefix()),
        "status": r.status().as_str(),
        "days": r.expiration().and_then(|e| e.days()),
    })
}

/// `PUT api/settings/lock?bucket=B&mode=GOVERNANCE|COMPLIANCE&days=N`, or
/// without `mode`: no default retention (the lock itself stays).
pub async fn put_lock(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(cx)?;
    let rule = match cx.param("mode").filter(|m| !m.is_empty()) {
        Some(m) => Some(
            ObjectLockRule::builder()
                .default_retention(
                    DefaultRetention::builder()
                        .mode(retention_mode(m)?)
                        .days(days(cx)?)
                        .build(),
                )
                .build(),
        ),
        None => None,
    };
    up.s3(s, None)
        .put_object_lock_configuration()
        .bucket(b.as_str())
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .set_rule(rule)
                .build(),
        )
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({ "bucket": b.as_str(), "lock": "set" })))
}

/// `PUT api/settings/encryption?bucket=B&algorithm=AES256|aws:kms|none[&key=K]`
pub async fn put_encryption(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(cx)?;
    let c = up.s3(s, None);
    let algorithm = match cx.req("algorithm")? {
        "none" => {
            c.delete_bucket_encryption()
                .bucket(b.as_str())
                .send()
                .await
                .map_err(ConsoleError::sdk)?;
            return Ok(reply::json(&json!({ "algorithm": null })));
        }
        "AES256" => ServerSideEncryption::Aes256,
        "aws:kms" => ServerSideEncryption::AwsKms,
        _ => {
            return Err(ConsoleError::bad(
                "algorithm must be AES256, aws:kms or none",
            ));
        }
    };
    let key = cx.param("key").filter(|k| !k.is_empty());
    if key.is_some_and(|k| k.len() > 2048) {
        return Err(ConsoleError::bad("the KMS key id is too long"));
    }
    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(algorithm.clone())
        .set_kms_master_key_id(key.map(str::to_owned))
        .build()
        .map_err(bad_build)?;
    let cfg = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(by_default)
                .build(),
        )
        .build()
        .map_err(bad_build)?;
    c.put_bucket_encryption()
        .bucket(b.as_str())
        .server_side_encryption_configuration(cfg)
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({ "algorithm": algorithm.as_str() })))
}

/// The bucket's lifecycle rules (none when not set).
async fn rules(c: &aws_sdk_s3::Client, bucket: &str) -> Result<Vec<LifecycleRule>, ConsoleError> {
    match c
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .map_err(ConsoleError::sdk)
    {
        Ok(out) => Ok(out.rules().to_vec()),
        Err(e) if e.code() == "NoSuchLifecycleConfiguration" => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Writes `rules` as the bucket's lifecycle (none: the configuration is
/// deleted).
async fn put_rules(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    rules: Vec<LifecycleRule>,
) -> Result<Response<Body>, ConsoleError> {
    let n = rules.len();
    if rules.is_empty() {
        c.delete_bucket_lifecycle()
            .bucket(bucket)
            .send()
            .await
            .map_err(ConsoleError::sdk)?;
    } else {
        let cfg = BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(bad_build)?;
        c.put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(cfg)
            .send()
            .await
            .map_err(ConsoleError::sdk)?;
    }
    Ok(reply::json(&json!({ "rules": n })))
}

/// `POST api/settings/lifecycle?bucket=B&id=ID&prefix=P&days=N`: adds an
/// expiration rule (objects under `P` expire `N` days after creation).
pub async fn add_rule(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(cx)?;
    let id = cx.req("id")?;
    if id.is_empty() || id.len() > 255 {
        return Err(ConsoleError::bad("a rule id is 1 to 255 characters"));
    }
    let prefix = names::prefix(cx)?;
    let c = up.s3(s, None);
    let mut all = rules(&c, b.as_str()).await?;
    if all.iter().any(|r| r.id() == Some(id)) {
        return Err(ConsoleError::bad(format!("a rule {id:?} exists already")));
    }
    if all.len() >= MAX_RULES {
        return Err(ConsoleError::bad(
            "a bucket has at most 1000 lifecycle rules",
        ));
    }
    all.push(
        LifecycleRule::builder()
            .id(id)
            .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
            .status(ExpirationStatus::Enabled)
            .expiration(LifecycleExpiration::builder().days(days(cx)?).build())
            .build()
            .map_err(bad_build)?,
    );
    put_rules(&c, b.as_str(), all).await
}

/// `POST api/settings/lifecycle/delete?bucket=B&id=ID`
pub async fn delete_rule(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(cx)?;
    let id = cx.req("id")?;
    let c = up.s3(s, None);
    let mut all = rules(&c, b.as_str()).await?;
    let before = all.len();
    all.retain(|r| r.id() != Some(id));
    if all.len() == before {
        return Err(ConsoleError::bad(format!("no rule {id:?}")));
    }
    put_rules(&c, b.as_str(), all).await
}

/// `PUT api/settings/tags?bucket=B` `{"tags": [{"key", "value"}...]}`
/// (none: the tags are deleted).
pub async fn put_tags(up: &Upstream, s: &Session, cx: Ctx) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(&cx)?;
    let v = small_json(cx.body, MAX_BODY).await?;
    let given = v
        .get("tags")
        .and_then(Value::as_array)
        .ok_or_else(|| ConsoleError::bad("tags must be a list"))?;
    if given.len() > MAX_TAGS {
        return Err(ConsoleError::bad("a bucket has at most 50 tags"));
    }
    let mut tags = Vec::with_capacity(given.len());
    for t in given {
        let field = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or_default();
        tags.push(
            Tag::builder()
                .key(field("key"))
                .value(field("value"))
                .build()
                .map_err(bad_build)?,
        );
    }
    let c = up.s3(s, None);
    if tags.is_empty() {
        c.delete_bucket_tagging()
            .bucket(b.as_str())
            .send()
            .await
            .map_err(ConsoleError::sdk)?;
    } else {
        c.put_bucket_tagging()
            .bucket(b.as_str())
            .tagging(
                Tagging::builder()
                    .set_tag_set(Some(tags))
                    .build()
                    .map_err(bad_build)?,
            )
            .send()
            .await
            .map_err(ConsoleError::sdk)?;
    }
    Ok(reply::json(&json!({ "tags": given.len() })))
}

/// `PUT api/settings/policy?bucket=B` `{"policy": "<JSON text>"}` (empty:
/// the policy is deleted). The server parses and judges it.
pub async fn put_policy(
    up: &Upstream,
    s: &Session,
    cx: Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(&cx)?;
    let v = small_json(cx.body, MAX_BODY).await?;
    let policy = v
        .get("policy")
        .and_then(Value::as_str)
        .ok_or_else(|| ConsoleError::bad("policy must be a string"))?;
    let c = up.s3(s, None);
    if policy.trim().is_empty() {
        c.delete_bucket_policy()
            .bucket(b.as_str())
            .send()
            .await
            .map_err(ConsoleError::sdk)?;
        return Ok(reply::json(&json!({ "policy": null })));
    }
    c.put_bucket_policy()
        .bucket(b.as_str())
        .policy(policy)
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({ "policy": "set" })))
}
