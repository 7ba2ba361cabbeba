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
            spec,
            dest,
            client: aws_sdk_s3::Client::from_conf(conf),
            stats: Default::default(),
        })
    }

    /// Checks the destination answers and keeps versions.
    pub(crate) async fn probe(&self) -> ObjectResult<()> {
        let v = self
            .client
            .get_bucket_versioning()
            .bucket(&self.dest)
            .send()
            .await
            .map_err(|e| {
                invalid(format!(
                    "the destination bucket {} at {} does not answer: {}",
                    self.dest,
                    self.spec.endpoint,
                    crate::copy::sdk_error(&e)
                ))
            })?;
        if v.status().map(|s| s.as_str()) != Some("Enabled") {
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
