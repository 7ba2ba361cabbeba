//! One replication task carried out against one target: a new version
//! copied (its body streamed from the store to the target's PUT), a delete
//! marker made, or a version's tags, retention or legal hold set again (on
//! the same version id when the target has it, else on the key's current
//! version). A Cairn target keeps the
//! source's version id and mod time (`x-cairn-source-*` headers, honoured
//! there for callers allowed `s3:Replicate*`) and marks the copy REPLICA.

use std::sync::Arc;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode,
    ObjectLockRetention, ObjectLockRetentionMode, StorageClass, Tag, Tagging,
};
use cairn_api::notify::{EventName, OutboxRecord};
use cairn_api::replication::{SOURCE_MTIME_HEADER, SOURCE_VERSION_HEADER};
use cairn_api::{BucketName, GetOptions, ObjectError, ObjectInfo, ObjectKey, ObjectLayer};
use futures::TryStreamExt as _;

use crate::target::Target;

/// Why a task failed (retried).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CopyError {
    #[error("reading the source: {0}")]
    Source(ObjectError),
    #[error("the target: {0}")]
    Target(String),
}

/// An SDK error as one line (the service's code and message when it
/// answered).
pub(crate) fn sdk_error<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e {
        SdkError::ServiceError(s) => match s.err().code() {
            Some(code) => format!("{code}: {}", s.err().message().unwrap_or_default()),
            // no S3 error document: what came back
            None => format!("{:.300?}", s.raw()),
        },
        other => {
            let mut text = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                text.push_str(": ");
                text.push_str(&s.to_string());
                src = s.source();
            }
            text
        }
    }
}

fn target_err<E, R>(e: SdkError<E, R>) -> CopyError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    CopyError::Target(sdk_error(&e))
}

/// What a task needs besides its record.
pub(crate) struct Task<'a> {
    pub(crate) layer: &'a Arc<dyn ObjectLayer>,
    pub(crate) target: &'a Target,
    pub(crate) record: &'a OutboxRecord,
    /// The storage class the rule asks for at the destination.
    pub(crate) storage_class: Option<String>,
}

fn names(r: &OutboxRecord) -> Result<(BucketName, ObjectKey), CopyError> {
    Ok((
        BucketName::new(r.bucket.clone()).map_err(CopyError::Source)?,
        ObjectKey::new(r.key.clone()).map_err(CopyError::Source)?,
    ))
}

/// Whether the source no longer has what the task is about (nothing to
/// copy: done).
fn gone(e: &ObjectError) -> bool {
    matches!(
        e,
        ObjectError::NoSuchKey { .. }
            | ObjectError::NoSuchVersion { .. }
            | ObjectError::NoSuchBucket { .. }
    )
}

/// What makes the target keep the source's version id and mod time (a
/// Cairn target; others ignore the headers): set on a copy's PUT and on a
/// delete marker's DELETE. No headers for the null version.
fn replica_headers(
    version: String,
    mtime: String,
) -> impl Fn(&mut aws_sdk_s3::config::http::HttpRequest) + Send + Sync + 'static {
    move |req| {
        if !version.is_empty() {
            let headers = req.headers_mut();
            headers.insert(SOURCE_VERSION_HEADER, version.clone());
            headers.insert(SOURCE_MTIME_HEADER, mtime.clone());
        }
    }
}

fn mtime_of(info: &ObjectInfo) -> String {
    info.last_modified.unix_timestamp_nanos().to_string()
}

impl Task<'_> {
    /// Carries the task out; the bytes copied.
    pub(crate) async fn run(&self) -> Result<u64, CopyError> {
        match self.record.event {
            EventName::Put
            | EventName::Post
            | EventName::Copy
            | EventName::CompleteMultipartUpload => self.put_version().await,
            EventName::DeleteMarkerCreated => self.delete_marker().await.map(|()| 0),
            EventName::TaggingPut
            | EventName::TaggingDelete
            | EventName::RetentionPut
            | EventName::LegalHoldPut => self.version_attrs().await.map(|()| 0),
            EventName::Delete
            | EventName::AclPut
            | EventName::LifecycleDelete
            | EventName::LifecycleDeleteMarkerCreated => Ok(0),
        }
    }

    async fn put_version(&self) -> Result<u64, CopyError> {
        let (bucket, key) = names(self.record)?;
        let opts = GetOptions {
            version_id: Some(self.record.version_id.clone()),
            ..Default::default()
        };
        let got = match self.layer.get_object(&bucket, &key, opts).await {
            Ok(g) => g,
            Err(e) if gone(&e) => return Ok(0),
            Err(e) => return Err(CopyError::Source(e)),
        };
        let info = got.info;
        if info.attrs.delete_marker {
            return Ok(0);
        }
        let size = info.size;
        let body = crate::throttle::limited(got.body, self.target.pacer.clone())
            .map_ok(http_body::Frame::data);
        let body = ByteStream::from_body_1_x(http_body_util::StreamBody::new(
            sync_wrapper::SyncStream::new(body),
        ));
        let h = &info.headers;
        let class = self.storage_class.clone().or_else(|| {
            (info.storage_class != Default::default())
                .then(|| info.storage_class.as_str().to_owned())
        });
        let tagging = (!info.attrs.tags.is_empty()).then(|| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(info.attrs.tags.0.iter())
                .finish()
        });
        let retention = info.attrs.retention;
        let version = info.version_id.clone().unwrap_or_default();
        let mtime = mtime_of(&info);
        let mut put = self
            .target
            .client
            .put_object()
            .bucket(&self.target.dest)
            .key(key.as_str())
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .body(body)
            .set_content_type(h.content_type.clone())
            .set_content_encoding(h.content_encoding.clone())
            .set_content_disposition(h.content_disposition.clone())
            .set_content_language(h.content_language.clone())
            .set_cache_control(h.cache_control.clone())
            .set_storage_class(class.map(|c| StorageClass::from(c.as_str())))
            .set_tagging(tagging)
            .set_object_lock_mode(retention.map(|r| ObjectLockMode::from(r.mode.as_str())))
            .set_object_lock_retain_until_date(
                retention.map(|r| DateTime::from_secs(r.until.unix_timestamp())),
            );
        if info.attrs.legal_hold {
            put = put.object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On);
        }
        if retention.is_some() || info.attrs.legal_hold {
            // S3 wants a PUT with object lock headers to carry a checksum
            // (moto checks): CRC32, sent as a trailer as the body streams
            put = put.checksum_algorithm(ChecksumAlgorithm::Crc32);
        }
        for (k, v) in &info.user_metadata {
            put = put.metadata(k, v);
        }
        put.customize()
            .mutate_request(replica_headers(version, mtime))
            .send()
            .await
            .map_err(target_err)?;
        Ok(size)
    }

    async fn delete_marker(&self) -> Result<(), CopyError> {
        let version = self.record.version_id.clone().unwrap_or_default();
        let mtime = self.record.mod_time.to_string();
        self.target
            .client
            .delete_object()
            .bucket(&self.target.dest)
            .key(&self.record.key)
            .customize()
            .mutate_request(replica_headers(version, mtime))
            .send()
            .await
            .map_err(target_err)?;
        Ok(())
    }

    /// Sets the version's tags, retention or legal hold (the record's
    /// event says which) at the target as they are now at the source: on
    /// the same version id (a Cairn target), else on the key's current
    /// version (a target with its own version ids).
    async fn version_attrs(&self) -> Result<(), CopyError> {
        let (bucket, key) = names(self.record)?;
        let opts = GetOptions {
            version_id: Some(self.record.version_id.clone()),
            ..Default::default()
        };
        let info = match self.layer.head_object_with(&bucket, &key, &opts).await {
            Ok(i) => i,
            Err(e) if gone(&e) => return Ok(()),
            Err(e) => return Err(CopyError::Source(e)),
        };
        // a Cairn target has the version under the source's id; another
        // vendor made its own: the change goes to the key's current version
        let version = match info.version_id.clone() {
            Some(v) if self.target_has(key.as_str(), &v).await? => Some(v),
            _ => None,
        };
        let attrs = Attrs {
            client: &self.target.client,
            bucket: &self.target.dest,
            key: key.as_str(),
            info: &info,
            version,
        };
        match self.record.event {
            EventName::RetentionPut => attrs.retention().await,
            EventName::LegalHoldPut => attrs.legal_hold().await,
            _ => attrs.tags().await,
        }
    }

    /// Whether the target has `version` of `key` (under the source's id).
    async fn target_has(&self, key: &str, version: &str) -> Result<bool, CopyError> {
        match self
            .target
            .client
            .head_object()
            .bucket(&self.target.dest)
            .key(key)
            .version_id(version)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            // no such version, or a version id it does not take (S3: 400)
            Err(e)
                if e.raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 400 | 404)) =>
            {
                Ok(false)
            }
            Err(e) => Err(target_err(e)),
        }
    }
}

/// The attributes of one source version, set on `version` at the target
/// (`None`: its current version).
struct Attrs<'a> {
    client: &'a aws_sdk_s3::Client,
    bucket: &'a str,
    key: &'a str,
    info: &'a ObjectInfo,
    version: Option<String>,
}

impl Attrs<'_> {
    async fn tags(&self) -> Result<(), CopyError> {
        let tags: Vec<Tag> = self
            .info
            .attrs
            .tags
            .0
            .iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect();
        if tags.is_empty() {
            return self
                .client
                .delete_object_tagging()
                .bucket(self.bucket)
                .key(self.key)
                .set_version_id(self.version.clone())
                .send()
                .await
                .map(|_| ())
                .map_err(target_err);
        }
        let tagging = Tagging::builder()
            .set_tag_set(Some(tags))
            .build()
            .map_err(|e| CopyError::Target(e.to_string()))?;
        self.client
            .put_object_tagging()
            .bucket(self.bucket)
            .key(self.key)
            .set_version_id(self.version.clone())
            .tagging(tagging)
            .send()
            .await
            .map(|_| ())
            .map_err(target_err)
    }

    /// The retention as it is now (none: an empty one, which needs the
    /// governance bypass, as does shortening one).
    async fn retention(&self) -> Result<(), CopyError> {
        let r = self.info.attrs.retention;
        let retention = ObjectLockRetention::builder()
            .set_mode(r.map(|r| ObjectLockRetentionMode::from(r.mode.as_str())))
            .set_retain_until_date(r.map(|r| DateTime::from_secs(r.until.unix_timestamp())))
            .build();
        self.client
            .put_object_retention()
            .bucket(self.bucket)
            .key(self.key)
            .set_version_id(self.version.clone())
            .retention(retention)
            .bypass_governance_retention(true)
            .send()
            .await
            .map(|_| ())
            .map_err(target_err)
    }

    async fn legal_hold(&self) -> Result<(), CopyError> {
        let status = if self.info.attrs.legal_hold {
            ObjectLockLegalHoldStatus::On
        } else {
            ObjectLockLegalHoldStatus::Off
        };
        self.client
            .put_object_legal_hold()
            .bucket(self.bucket)
            .key(self.key)
            .set_version_id(self.version.clone())
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .send()
            .await
            .map(|_| ())
            .map_err(target_err)
    }
}
