//! A replication target: its spec (from `cairn admin replicate add`,
//! stored sealed in the config store), the S3 client that reaches it, its
//! bounded queue and its counts.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use cairn_api::replication::{TargetSpec, arn_bucket};
use cairn_api::{ObjectError, ObjectResult};

/// Counts of one target.
#[derive(Debug, Default)]
pub(crate) struct TargetStats {
    pub(crate) replicated: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl TargetStats {
    pub(crate) fn failed(&self, e: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_owned());
    }

    pub(crate) fn done(&self, bytes: u64) {
        self.replicated.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// A target in service.
pub(crate) struct Target {
    pub(crate) spec: TargetSpec,
    /// The destination bucket (from the ARN).
    pub(crate) dest: String,
    pub(crate) client: aws_sdk_s3::Client,
    pub(crate) stats: std::sync::Arc<TargetStats>,
    /// Its bandwidth limit, shared by its copies.
    pub(crate) pacer: Option<std::sync::Arc<crate::throttle::Pacer>>,
}

fn invalid(message: String) -> ObjectError {
    ObjectError::InvalidArgument { message }
}

/// A spec as given, checked and normalised: the ARN from a bucket name,
/// an http(s) endpoint, non-empty credentials and region.
pub(crate) fn checked(mut spec: TargetSpec) -> ObjectResult<TargetSpec> {
    if arn_bucket(&spec.arn).is_none() {
        if cairn_api::BucketName::new(spec.arn.clone()).is_ok() {
            spec.arn = format!("arn:aws:s3:::{}", spec.arn);
        } else {
            return Err(invalid(format!(
                "{:?}: a bucket ARN (arn:aws:s3:::BUCKET) or bucket name",
                spec.arn
            )));
        }
    }
    let url = http::Uri::try_from(spec.endpoint.as_str())
        .map_err(|_| invalid(format!("{:?}: not a URL", spec.endpoint)))?;
    if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
        return Err(invalid(format!(
            "{:?}: an http:// or https:// endpoint",
            spec.endpoint
        )));
    }
    if spec.access_key.is_empty() || spec.secret_key.is_empty() {
        return Err(invalid(
            "a target needs an access key and a secret key".into(),
        ));
    }
    if spec.region.is_empty() || spec.region.len() > 64 {
        return Err(invalid("a target needs a region".into()));
    }
    if spec.bandwidth == Some(0) {
        return Err(invalid("a bandwidth limit must be above 0".into()));
    }
    Ok(spec)
}

impl Target {
    pub(crate) fn new(spec: TargetSpec) -> ObjectResult<Self> {
        let spec = checked(spec)?;
        let dest = arn_bucket(&spec.arn).unwrap_or_default().to_owned();
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&spec.endpoint)
            .region(Region::new(spec.region.clone()))
            .credentials_provider(Credentials::new(
                &spec.access_key,
                &spec.secret_key,
                None,
                None,
                "cairn-replication",
            ))
            .force_path_style(true)
            // bodies stream from the store as they are read
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            )
            .build();
        Ok(Self {
            pacer: crate::throttle::Pacer::new(spec.bandwidth),
            spec,
            dest,
            client: aws_sdk_s3::Client::from_conf(conf),
            stats: Default::default(),
        })
    }

    /// Checks the destination answers and keeps versions.
    pub(crate) async fn probe(&self) -> ObjectResult<()> {
        let not_there = |why: String| {
            invalid(format!(
                "the destination bucket {} at {} does not answer: {why}",
                self.dest, self.spec.endpoint
            ))
        };
        let status = match self
            .client
            .get_bucket_versioning()
            .bucket(&self.dest)
            .send()
            .await
        {
            Ok(v) => v.status().map(|s| s.as_str().to_owned()),
            // a 200 whose document the SDK does not read: moto names its
            // root GetBucketVersioningResponse where AWS has
            // VersioningConfiguration; its Status is read from the answer
            Err(e) => match e
                .raw_response()
                .filter(|r| r.status().is_success())
                .and_then(|r| r.body().bytes())
            {
                Some(body) => versioning_status(body).map_err(not_there)?,
                None => return Err(not_there(crate::copy::sdk_error(&e))),
            },
        };
        if status.as_deref() != Some("Enabled") {
            return Err(ObjectError::InvalidRequest {
                message: format!(
                    "the destination bucket {} must have versioning enabled",
                    self.dest
                ),
            });
        }
        Ok(())
    }
}

/// A GetBucketVersioning document: its `Status`, whatever its root
/// element is named.
#[derive(Debug, serde::Deserialize)]
struct VersioningDoc {
    #[serde(rename = "Status")]
    status: Option<String>,
}

/// The `Status` of a GetBucketVersioning answer (`None`: never enabled).
fn versioning_status(body: &[u8]) -> Result<Option<String>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "a versioning answer that is not UTF-8")?;
    quick_xml::de::from_str::<VersioningDoc>(text)
        .map(|d| d.status)
        .map_err(|e| format!("a versioning answer that is not S3's document: {e}"))
}

#[cfg(test)]
mod tests {
    use super::versioning_status;

    #[test]
    fn versioning_documents() {
        let aws = br#"<?xml version="1.0" encoding="UTF-8"?>
<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>"#;
        let moto = br#"<?xml version="1.0" encoding="utf-8"?>
<GetBucketVersioningResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Suspended</Status></GetBucketVersioningResponse>"#;
        let never =
            br#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>"#;
        assert_eq!(versioning_status(aws).unwrap().as_deref(), Some("Enabled"));
        assert_eq!(
            versioning_status(moto).unwrap().as_deref(),
            Some("Suspended")
        );
        assert_eq!(versioning_status(never).unwrap(), None);
        assert!(versioning_status(b"<html>").is_err());
        assert!(versioning_status(&[0xff, 0xfe]).is_err());
    }
}
