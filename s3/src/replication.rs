//! Bucket replication on the S3 front: Put/Get/DeleteBucketReplication in
//! AWS's format (V2 rules: ID, Priority, Filter with Prefix/Tag/And,
//! Status, Destination bucket ARN and storage class, delete marker and
//! existing object replication), checked by cairn-api's rules against the
//! bucket's versioning and the targets registered for it
//! (`S3Config::replication`), and stored with the bucket's configuration.
//!
//! The replica side: a PUT or DELETE carrying `x-cairn-source-version-id`
//! (and `x-cairn-source-mtime`) makes a version (or delete marker) with
//! that id and mod time, marked REPLICA. Only a caller allowed
//! `s3:ReplicateObject` (PUT) or `s3:ReplicateDelete` (DELETE) on the key
//! may send them (crate::authz; the root user may): an ordinary writer
//! can neither choose version ids nor make REPLICAs.

use cairn_api::replication::{
    ReplicaOf, ReplicationConfig, ReplicationRule, SOURCE_MTIME_HEADER, SOURCE_VERSION_HEADER,
};
use cairn_api::{BucketChange, ObjectError, ObjectResult, Tags, Versioning};
use http::HeaderMap;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::convert::bucket_name;
use crate::errors::{IntoS3 as _, s3_error};
use crate::service::CairnS3;

/// The IAM action a request carrying the replica headers needs besides
/// its own (`None`: it carries none). Operations other than PutObject
/// and DeleteObject that carry them need an action nobody has.
pub(crate) fn replicate_action(op: &str, headers: &HeaderMap) -> Option<&'static str> {
    headers.get(SOURCE_VERSION_HEADER)?;
    Some(match op {
        "PutObject" => "s3:ReplicateObject",
        "DeleteObject" => "s3:ReplicateDelete",
        _ => "",
    })
}

/// The replica a request asks for (its headers, checked).
pub(crate) fn replica_of(headers: &HeaderMap) -> S3Result<Option<ReplicaOf>> {
    let Some(id) = headers.get(SOURCE_VERSION_HEADER) else {
        return Ok(None);
    };
    fn text(v: &http::HeaderValue) -> S3Result<&str> {
        v.to_str()
            .map_err(|_| s3_error(invalid("replication headers must be ASCII")))
    }
    let mtime = match headers.get(SOURCE_MTIME_HEADER) {
        Some(v) => Some(text(v)?),
        None => None,
    };
    ReplicaOf::parse(text(id)?, mtime)
        .map(Some)
        .map_err(s3_error)
}

fn invalid(message: &str) -> ObjectError {
    ObjectError::InvalidArgument {
        message: message.into(),
    }
}

fn malformed(message: &str) -> ObjectError {
    ObjectError::MalformedXml {
        message: message.into(),
    }
}

fn enabled(status: &str) -> ObjectResult<bool> {
    match status {
        "Enabled" => Ok(true),
        "Disabled" => Ok(false),
        _ => Err(malformed("Status must be Enabled or Disabled")),
    }
}

fn tags_in(tags: impl IntoIterator<Item = Tag>) -> ObjectResult<Tags> {
    Tags::from_pairs(
        tags.into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default())),
        cairn_api::tags::MAX_OBJECT_TAGS,
    )
}

/// A rule's prefix and tags from its V2 filter (exactly one of Prefix,
/// Tag, And).
fn filter_in(f: ReplicationRuleFilter) -> ObjectResult<(String, Tags)> {
    match (f.prefix, f.tag, f.and) {
        (p, None, None) => Ok((p.unwrap_or_default(), Tags::default())),
        (None, Some(t), None) => Ok((String::new(), tags_in([t])?)),
        (None, None, Some(a)) => Ok((
            a.prefix.unwrap_or_default(),
            tags_in(a.tags.unwrap_or_default())?,
        )),
        _ => Err(malformed(
            "a Filter holds exactly one of Prefix, Tag and And",
        )),
    }
}

fn rule_in(r: ReplicationRule_) -> ObjectResult<ReplicationRule> {
    let v2 = r.filter.is_some();
    let (prefix, tags) = match r.filter {
        Some(f) => {
            if r.prefix.is_some() {
                return Err(malformed("a rule has a Filter or a Prefix, not both"));
            }
            filter_in(f)?
        }
        None => (r.prefix.unwrap_or_default(), Tags::default()),
    };
    let status = |s: Option<&str>| s.map(enabled).transpose().map(|e| e == Some(true));
    Ok(ReplicationRule {
        id: r
            .id
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        priority: r.priority.unwrap_or(0),
        enabled: enabled(r.status.as_str())?,
        prefix,
        tags,
        destination: r.destination.bucket,
        storage_class: r.destination.storage_class.map(|c| c.as_str().to_owned()),
        delete_markers: status(
            r.delete_marker_replication
                .as_ref()
                .and_then(|d| d.status.as_ref())
                .map(|s| s.as_str()),
        )?,
        existing_objects: status(
            r.existing_object_replication
                .as_ref()
                .map(|e| e.status.as_str()),
        )?,
        v2,
    })
}

/// s3s's rule type, named apart from cairn-api's.
type ReplicationRule_ = s3s::dto::ReplicationRule;

fn status_of(on: bool) -> &'static str {
    if on { "Enabled" } else { "Disabled" }
}

fn tag_out(k: &str, v: &str) -> Tag {
    Tag {
        key: Some(k.to_owned()),
        value: Some(v.to_owned()),
    }
}

fn rule_out(r: &ReplicationRule) -> ReplicationRule_ {
    let filter = r.v2.then(|| {
        let tags: Vec<Tag> = r.tags.0.iter().map(|(k, v)| tag_out(k, v)).collect();
        match (r.prefix.is_empty(), tags.len()) {
            (_, 0) => ReplicationRuleFilter {
                prefix: Some(r.prefix.clone()),
                ..Default::default()
            },
            (true, 1) => ReplicationRuleFilter {
                tag: tags.into_iter().next(),
                ..Default::default()
            },
            _ => ReplicationRuleFilter {
                and: Some(ReplicationRuleAndOperator {
                    prefix: (!r.prefix.is_empty()).then(|| r.prefix.clone()),
                    tags: Some(tags),
                }),
                ..Default::default()
            },
        }
    });
    ReplicationRule_ {
        delete_marker_replication: Some(DeleteMarkerReplication {
            status: Some(DeleteMarkerReplicationStatus::from(
                status_of(r.delete_markers).to_owned(),
            )),
        }),
        destination: Destination {
            bucket: r.destination.clone(),
            storage_class: r.storage_class.clone().map(StorageClass::from),
            ..Default::default()
        },
        existing_object_replication: Some(ExistingObjectReplication {
            status: ExistingObjectReplicationStatus::from(status_of(r.existing_objects).to_owned()),
        }),
        prefix: (!r.v2).then(|| r.prefix.clone()),
        filter,
        id: Some(r.id.clone()),
        priority: r.v2.then_some(r.priority),
        source_selection_criteria: None,
        status: ReplicationRuleStatus::from(status_of(r.enabled).to_owned()),
    }
}

impl CairnS3 {
    pub(crate) async fn do_put_bucket_replication(
        &self,
        req: S3Request<PutBucketReplicationInput>,
    ) -> S3Result<S3Response<PutBucketReplicationOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let c = input.replication_configuration;
        let config = ReplicationConfig {
            role: c.role,
            rules: c
                .rules
                .into_iter()
                .map(rule_in)
                .collect::<ObjectResult<_>>()
                .map_err(s3_error)?,
        };
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let targets = self.replication.clone();
        config
            .validate(cfg.versioning == Versioning::Enabled, |arn| {
                targets
                    .as_ref()
                    .is_some_and(|t| t.has_target(bucket.as_str(), arn))
            })
            .map_err(s3_error)?;
        self.layer
            .update_bucket_config(&bucket, BucketChange::Replication(Some(config)))
            .await
            .s3()?;
        Ok(S3Response::new(PutBucketReplicationOutput::default()))
    }

    pub(crate) async fn do_get_bucket_replication(
        &self,
        req: S3Request<GetBucketReplicationInput>,
    ) -> S3Result<S3Response<GetBucketReplicationOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let Some(r) = cfg.replication else {
            let mut e = S3Error::with_message(
                S3ErrorCode::ReplicationConfigurationNotFoundError,
                "The replication configuration was not found",
            );
            e.set_status_code(http::StatusCode::NOT_FOUND);
            return Err(e);
        };
        Ok(S3Response::new(GetBucketReplicationOutput {
            replication_configuration: Some(ReplicationConfiguration {
                role: r.role.clone(),
                rules: r.rules.iter().map(rule_out).collect(),
            }),
        }))
    }

    pub(crate) async fn do_delete_bucket_replication(
        &self,
        req: S3Request<DeleteBucketReplicationInput>,
    ) -> S3Result<S3Response<DeleteBucketReplicationOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        self.layer
            .update_bucket_config(&bucket, BucketChange::Replication(None))
            .await
            .s3()?;
        Ok(S3Response::new(DeleteBucketReplicationOutput::default()))
    }
}

/// Most bytes of a target's JSON.
const MAX_TARGET_JSON: usize = 64 * 1024;

fn admin_bad(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message.into())
}

fn json_out(v: &impl serde::Serialize) -> S3Result<S3Response<s3s::Body>> {
    let body = serde_json::to_vec(v)
        .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))?;
    let mut resp = S3Response::new(s3s::Body::from(body));
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// The admin API's replication calls (root only, checked by the route):
///
/// - `GET    replication/targets?bucket=B` -> JSON `[TargetInfo]`
/// - `POST   replication/targets` with a JSON `TargetSpec` body (the secret
///   travels in the body, never in the URL) -> JSON `TargetInfo`
/// - `DELETE replication/targets?bucket=B&arn=A`
/// - `GET    replication/status?bucket=B` -> JSON `ReplicationReport`
/// - `POST   replication/resync?bucket=B&arn=A` -> JSON `ResyncReport` (a
///   resync of B to A started)
pub(crate) async fn admin_call(
    service: Option<&std::sync::Arc<dyn cairn_api::replication::ReplicationAdmin>>,
    req: S3Request<s3s::Body>,
    what: &str,
) -> S3Result<S3Response<s3s::Body>> {
    let Some(service) = service else {
        let mut e = S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "This server has no replication service.",
        );
        e.set_status_code(http::StatusCode::NOT_IMPLEMENTED);
        return Err(e);
    };
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(req.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
            .ok_or_else(|| admin_bad(format!("{what} needs {name}=...")))
    };
    let bucket = || param("bucket").and_then(|b| bucket_name(&b));
    match (&req.method, what) {
        (&http::Method::GET, "targets") => {
            json_out(&service.list_targets(bucket()?.as_str()).await.s3()?)
        }
        (&http::Method::POST, "targets") => {
            let mut req = req;
            let body = req
                .input
                .store_all_limited(MAX_TARGET_JSON)
                .await
                .map_err(|_| admin_bad("the target must be JSON of at most 64 KiB"))?;
            let spec: cairn_api::replication::TargetSpec = serde_json::from_slice(&body)
                .map_err(|e| admin_bad(format!("the body is not a replication target: {e}")))?;
            bucket_name(&spec.bucket)?;
            json_out(&service.add_target(spec).await.s3()?)
        }
        (&http::Method::DELETE, "targets") => {
            let b = bucket()?;
            service
                .remove_target(b.as_str(), &param("arn")?)
                .await
                .s3()?;
            json_out(&serde_json::json!({ "removed": true }))
        }
        (&http::Method::GET, "status") => json_out(&service.status(bucket()?.as_str()).await.s3()?),
        (&http::Method::POST, "resync") => {
            let b = bucket()?;
            json_out(&service.resync(b.as_str(), &param("arn")?).await.s3()?)
        }
        _ => {
            let mut e = S3Error::with_message(
                S3ErrorCode::NoSuchKey,
                format!("no admin call replication/{what}"),
            );
            e.set_status_code(http::StatusCode::NOT_FOUND);
            Err(e)
        }
    }
}
