//! Object lock helpers the versioning, FUSE and NFS tests share.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{ObjectLockRetention, ObjectLockRetentionMode};

/// A retention of `mode` until `secs` from now.
pub fn retention(mode: ObjectLockRetentionMode, secs: u64) -> ObjectLockRetention {
    let until = SystemTime::now() + Duration::from_secs(secs);
    ObjectLockRetention::builder()
        .mode(mode)
        .retain_until_date(DateTime::from(until))
        .build()
}

/// Puts a retention of `mode` for `secs` on a version (the current one
/// when `version` is `None`).
pub async fn retain(
    c: &Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
    mode: ObjectLockRetentionMode,
    secs: u64,
) -> Result<()> {
    c.put_object_retention()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .retention(retention(mode, secs))
        .send()
        .await
        .with_context(|| format!("PutObjectRetention {bucket}/{key} {version:?}"))?;
    Ok(())
}
