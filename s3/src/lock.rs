//! Object lock: the bucket's configuration (default retention), and the
//! retention and legal hold of single versions.

use cairn_api::{
    BucketChange, DefaultRetention as LayerDefault, Retention, RetentionMode, RetentionPeriod,
    VersionChange,
};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::convert::{bucket_name, legal_hold, object_key, timestamp, version_param};
use crate::errors::{IntoS3 as _, invalid_argument};
use crate::service::CairnS3;

fn mode_out(m: RetentionMode) -> ObjectLockRetentionMode {
    ObjectLockRetentionMode::from(m.as_str().to_owned())
}

/// A mode in an XML body: anything but GOVERNANCE or COMPLIANCE is not in
/// AWS's schema (MalformedXML).
fn mode_in(m: Option<&ObjectLockRetentionMode>) -> S3Result<RetentionMode> {
    let m = m.ok_or_else(|| malformed("the retention Mode is missing"))?;
    RetentionMode::parse(m.as_str()).map_err(|_| {
        malformed(format!(
            "{:?} is neither GOVERNANCE nor COMPLIANCE",
            m.as_str()
        ))
    })
}

fn malformed(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::MalformedXML, message.into())
}

/// Longest default retention AWS takes: 100 years (36,500 days).
const MAX_DEFAULT_YEARS: i32 = 100;
const MAX_DEFAULT_DAYS: i32 = 36_500;

/// A default retention's Days or Years: a positive number up to AWS's
/// limit, else 400 InvalidRetentionPeriod.
fn retention_period(n: i32, max: i32) -> S3Result<u32> {
    let bad = |m: &'static str| {
        let mut e = S3Error::with_message(crate::errors::custom("InvalidRetentionPeriod"), m);
        e.set_status_code(http::StatusCode::BAD_REQUEST);
        e
    };
    if n > max {
        return Err(bad("Default retention period is too large."));
    }
    u32::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad("Default retention period must be a positive integer value."))
}

impl CairnS3 {
    pub(crate) async fn do_get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        if !cfg.object_lock {
            return Err(S3Error::with_message(
                S3ErrorCode::ObjectLockConfigurationNotFoundError,
                "Object Lock configuration does not exist for this bucket",
            ));
        }
        let rule = cfg.default_retention.map(|d| {
            let (days, years) = match d.period {
                RetentionPeriod::Days(n) => (i32::try_from(n).ok(), None),
                RetentionPeriod::Years(n) => (None, i32::try_from(n).ok()),
            };
            ObjectLockRule {
                default_retention: Some(DefaultRetention {
                    days,
                    years,
                    mode: Some(mode_out(d.mode)),
                }),
            }
        });
        Ok(S3Response::new(GetObjectLockConfigurationOutput {
            object_lock_configuration: Some(ObjectLockConfiguration {
                object_lock_enabled: Some(ObjectLockEnabled::from(
                    ObjectLockEnabled::ENABLED.to_owned(),
                )),
                rule,
            }),
        }))
    }

    pub(crate) async fn do_put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let c = input.object_lock_configuration.unwrap_or_default();
        if c.object_lock_enabled.as_ref().map(|e| e.as_str()) != Some(ObjectLockEnabled::ENABLED) {
            return Err(S3Error::with_message(
                S3ErrorCode::MalformedXML,
                "ObjectLockEnabled must be Enabled",
            ));
        }
        let default = match c.rule.and_then(|r| r.default_retention) {
            None => None,
            Some(d) => {
                let mode = mode_in(d.mode.as_ref())?;
                let period = match (d.days, d.years) {
                    (Some(n), None) => {
                        RetentionPeriod::Days(retention_period(n, MAX_DEFAULT_DAYS)?)
                    }
                    (None, Some(n)) => {
                        RetentionPeriod::Years(retention_period(n, MAX_DEFAULT_YEARS)?)
                    }
                    _ => return Err(malformed("a default retention has either Days or Years")),
                };
                Some(LayerDefault { mode, period })
            }
        };
        self.layer
            .update_bucket_config(&bucket, BucketChange::ObjectLock(default))
            .await
            .s3()?;
        Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
    }

    pub(crate) async fn do_get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> S3Result<S3Response<GetObjectRetentionOutput>> {
        let input = req.input;
        let info = self
            .version_info(&input.bucket, &input.key, input.version_id.as_deref(), true)
            .await?;
        let r = info.attrs.retention.ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::NoSuchObjectLockConfiguration,
                "The specified object does not have a ObjectLock configuration",
            )
        })?;
        Ok(S3Response::new(GetObjectRetentionOutput {
            retention: Some(ObjectLockRetention {
                mode: Some(mode_out(r.mode)),
                retain_until_date: Some(timestamp(r.until)),
            }),
        }))
    }

    pub(crate) async fn do_put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> S3Result<S3Response<PutObjectRetentionOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let retention = match input.retention {
            // an empty retention removes it (governance bypass needed)
            None => None,
            Some(ObjectLockRetention {
                mode: None,
                retain_until_date: None,
            }) => None,
            Some(r) => Some(Retention {
                mode: mode_in(r.mode.as_ref())?,
                until: crate::convert::future_date(
                    r.retain_until_date
                        .ok_or_else(|| invalid_argument("RetainUntilDate is missing"))?,
                )?,
            }),
        };
        let change = VersionChange::Retention {
            retention,
            // one root account for now: it may bypass governance
            bypass_governance: input.bypass_governance_retention == Some(true),
        };
        self.layer
            .update_version(
                &bucket,
                &key,
                version_param(input.version_id.as_deref())?,
                change,
            )
            .await
            .s3()?;
        Ok(S3Response::new(PutObjectRetentionOutput::default()))
    }

    pub(crate) async fn do_get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
        let input = req.input;
        let info = self
            .version_info(&input.bucket, &input.key, input.version_id.as_deref(), true)
            .await?;
        let status = if info.attrs.legal_hold {
            ObjectLockLegalHoldStatus::ON
        } else {
            ObjectLockLegalHoldStatus::OFF
        };
        Ok(S3Response::new(GetObjectLegalHoldOutput {
            legal_hold: Some(ObjectLockLegalHold {
                status: Some(ObjectLockLegalHoldStatus::from(status.to_owned())),
            }),
        }))
    }

    pub(crate) async fn do_put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let status = input.legal_hold.and_then(|h| h.status);
        // a status outside the schema is MalformedXML (as a header, InvalidArgument)
        let on = legal_hold(Some(status.as_ref().map_or("", |s| s.as_str())))
            .map_err(|e| malformed(e.message().unwrap_or_default().to_owned()))?;
        self.layer
            .update_version(
                &bucket,
                &key,
                version_param(input.version_id.as_deref())?,
                VersionChange::LegalHold(on),
            )
            .await
            .s3()?;
        Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
    }

    /// The info of a version (the current one without an id); with
    /// `needs_lock`, refused on a bucket without object lock, as S3 does.
    pub(crate) async fn version_info(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        needs_lock: bool,
    ) -> S3Result<cairn_api::ObjectInfo> {
        let bucket = bucket_name(bucket)?;
        let key = object_key(key)?;
        if needs_lock
            && !self
                .layer
                .get_bucket_config(&bucket)
                .await
                .s3()?
                .object_lock
        {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "Bucket is missing Object Lock Configuration",
            ));
        }
        let opts = cairn_api::GetOptions {
            version_id: version_param(version_id)?,
            attributes_only: true,
            ..Default::default()
        };
        self.layer.head_object_with(&bucket, &key, &opts).await.s3()
    }
}
