//! Bucket lifecycle configuration (the rules; the store applies them).

use cairn_api::{BucketChange, Lifecycle, LifecycleRule as Rule, Tags};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::convert::{bucket_name, timestamp};
use crate::errors::{IntoS3 as _, not_implemented};
use crate::service::CairnS3;
use crate::tagging::{tags_in, tags_out};

/// Longest rule ID AWS takes.
const MAX_RULE_ID: usize = 255;

/// The storage classes a transition may name in AWS's schema.
const TRANSITION_CLASSES: [&str; 6] = [
    "GLACIER",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
];

fn invalid_argument(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message.into())
}

fn days(v: Option<i32>, what: &str) -> S3Result<Option<u32>> {
    v.map(|d| {
        u32::try_from(d).map_err(|_| invalid_argument(format!("{what} must not be negative")))
    })
    .transpose()
}

/// A count of days that must be above 0 (AWS: InvalidArgument).
fn positive_days(v: Option<i32>, what: &str) -> S3Result<Option<u32>> {
    match v {
        Some(d) if d <= 0 => Err(invalid_argument(format!(
            "'{what}' for {} action must be a positive integer",
            match what {
                "DaysAfterInitiation" => "AbortIncompleteMultipartUpload",
                "NoncurrentDays" => "NoncurrentVersionExpiration",
                _ => "Expiration",
            }
        ))),
        v => days(v, what),
    }
}

/// What AWS checks of a rule before anything else: its status, its ID's
/// length, its transitions' storage classes, that it has an action.
fn check_rule(r: &LifecycleRule) -> S3Result<()> {
    let status = r.status.as_str();
    if status != ExpirationStatus::ENABLED && status != ExpirationStatus::DISABLED {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            format!("Status {status:?} is neither Enabled nor Disabled"),
        ));
    }
    if r.id.as_ref().is_some_and(|id| id.len() > MAX_RULE_ID) {
        return Err(invalid_argument(
            "ID length should not exceed allowed limit of 255",
        ));
    }
    let classes = r
        .transitions
        .iter()
        .flatten()
        .filter_map(|t| t.storage_class.as_ref().map(|c| c.as_str()))
        .chain(
            r.noncurrent_version_transitions
                .iter()
                .flatten()
                .filter_map(|t| t.storage_class.as_ref().map(|c| c.as_str())),
        );
    for class in classes {
        if !TRANSITION_CLASSES.contains(&class) {
            return Err(S3Error::with_message(
                S3ErrorCode::MalformedXML,
                format!("{class:?} is not a storage class a transition can name"),
            ));
        }
    }
    let has_action = r.expiration.is_some()
        || r.noncurrent_version_expiration.is_some()
        || r.abort_incomplete_multipart_upload.is_some()
        || r.transitions.as_ref().is_some_and(|t| !t.is_empty())
        || r.noncurrent_version_transitions
            .as_ref()
            .is_some_and(|t| !t.is_empty());
    if !has_action {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "At least one action needs to be specified in a rule",
        ));
    }
    if let Some(date) = r.expiration.as_ref().and_then(|e| e.date.clone()) {
        let t: time::OffsetDateTime = date.into();
        let midnight = t.unix_timestamp() % 86_400 == 0 && t.nanosecond() == 0;
        if !midnight {
            return Err(invalid_argument("'Date' must be at midnight GMT"));
        }
    }
    Ok(())
}

fn rule_in(r: LifecycleRule) -> S3Result<Rule> {
    check_rule(&r)?;
    if r.transitions.as_ref().is_some_and(|t| !t.is_empty())
        || r.noncurrent_version_transitions
            .as_ref()
            .is_some_and(|t| !t.is_empty())
    {
        return Err(not_implemented("lifecycle transitions (one storage tier)"));
    }
    let (mut prefix, mut tags) = (r.prefix.unwrap_or_default(), Tags::default());
    if let Some(f) = r.filter {
        if f.object_size_greater_than.is_some() || f.object_size_less_than.is_some() {
            return Err(not_implemented("lifecycle filters by object size"));
        }
        if let Some(p) = f.prefix {
            prefix = p;
        }
        if let Some(t) = f.tag {
            tags = tags_in(vec![t], usize::MAX)?;
        }
        if let Some(and) = f.and {
            if and.object_size_greater_than.is_some() || and.object_size_less_than.is_some() {
                return Err(not_implemented("lifecycle filters by object size"));
            }
            prefix = and.prefix.unwrap_or(prefix);
            tags = tags_in(and.tags.unwrap_or_default(), usize::MAX)?;
        }
    }
    let exp = r.expiration.unwrap_or_default();
    let nc = r.noncurrent_version_expiration.unwrap_or_default();
    Ok(Rule {
        id: r.id.unwrap_or_default(),
        enabled: r.status.as_str() == ExpirationStatus::ENABLED,
        prefix,
        tags,
        expiration_days: positive_days(exp.days, "Days")?,
        expiration_date: exp.date.map(Into::into),
        expired_delete_marker: exp.expired_object_delete_marker.unwrap_or(false),
        noncurrent_days: positive_days(nc.noncurrent_days, "NoncurrentDays")?,
        newer_noncurrent: days(nc.newer_noncurrent_versions, "NewerNoncurrentVersions")?,
        abort_multipart_days: positive_days(
            r.abort_incomplete_multipart_upload
                .and_then(|a| a.days_after_initiation),
            "DaysAfterInitiation",
        )?,
    })
}

fn rule_out(r: &Rule) -> LifecycleRule {
    let to_i32 = |d: u32| i32::try_from(d).unwrap_or(i32::MAX);
    let filter = if r.tags.is_empty() {
        LifecycleRuleFilter {
            prefix: Some(r.prefix.clone()),
            ..Default::default()
        }
    } else {
        LifecycleRuleFilter {
            and: Some(LifecycleRuleAndOperator {
                prefix: Some(r.prefix.clone()),
                tags: Some(tags_out(&r.tags)),
                ..Default::default()
            }),
            ..Default::default()
        }
    };
    let has_exp =
        r.expiration_days.is_some() || r.expiration_date.is_some() || r.expired_delete_marker;
    let has_nc = r.noncurrent_days.is_some() || r.newer_noncurrent.is_some();
    LifecycleRule {
        id: Some(r.id.clone()).filter(|i| !i.is_empty()),
        status: ExpirationStatus::from(
            if r.enabled {
                ExpirationStatus::ENABLED
            } else {
                ExpirationStatus::DISABLED
            }
            .to_owned(),
        ),
        filter: Some(filter),
        expiration: has_exp.then(|| LifecycleExpiration {
            days: r.expiration_days.map(to_i32),
            date: r.expiration_date.map(timestamp),
            expired_object_delete_marker: r.expired_delete_marker.then_some(true),
        }),
        noncurrent_version_expiration: has_nc.then(|| NoncurrentVersionExpiration {
            noncurrent_days: r.noncurrent_days.map(to_i32),
            newer_noncurrent_versions: r.newer_noncurrent.map(to_i32),
        }),
        abort_incomplete_multipart_upload: r.abort_multipart_days.map(|d| {
            AbortIncompleteMultipartUpload {
                days_after_initiation: Some(to_i32(d)),
            }
        }),
        noncurrent_version_transitions: None,
        prefix: None,
        transitions: None,
    }
}

impl CairnS3 {
    pub(crate) async fn do_get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let l = cfg.lifecycle.ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::NoSuchLifecycleConfiguration,
                "The lifecycle configuration does not exist",
            )
        })?;
        Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
            rules: Some(l.rules.iter().map(rule_out).collect()),
            transition_default_minimum_object_size: None,
        }))
    }

    pub(crate) async fn do_put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let rules = input
            .lifecycle_configuration
            .map(|c| c.rules)
            .unwrap_or_default()
            .into_iter()
            .map(rule_in)
            .collect::<S3Result<Vec<_>>>()?;
        let mut ids: Vec<&str> = rules
            .iter()
            .map(|r| r.id.as_str())
            .filter(|id| !id.is_empty())
            .collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w.first() == w.last()) {
            return Err(invalid_argument(
                "Rule ID must be unique. Found same ID for more than one rule",
            ));
        }
        self.layer
            .update_bucket_config(&bucket, BucketChange::Lifecycle(Some(Lifecycle { rules })))
            .await
            .s3()?;
        Ok(S3Response::new(
            PutBucketLifecycleConfigurationOutput::default(),
        ))
    }

    pub(crate) async fn do_delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        self.layer
            .update_bucket_config(&bucket, BucketChange::Lifecycle(None))
            .await
            .s3()?;
        Ok(S3Response::new(DeleteBucketLifecycleOutput::default()))
    }
}
