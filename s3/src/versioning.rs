//! Bucket versioning and ListObjectVersions.

use cairn_api::versioning::version_label;
use cairn_api::{BucketChange, ListVersionsOptions, Versioning};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::convert::{bucket_name, etag, timestamp};
use crate::errors::{IntoS3 as _, not_implemented};
use crate::list::{enc, page_size, url_encoding};
use crate::service::CairnS3;

impl CairnS3 {
    pub(crate) async fn do_get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let status = match cfg.versioning {
            Versioning::Unversioned => None,
            Versioning::Enabled => Some(BucketVersioningStatus::ENABLED),
            Versioning::Suspended => Some(BucketVersioningStatus::SUSPENDED),
        };
        Ok(S3Response::new(GetBucketVersioningOutput {
            status: status.map(|s| BucketVersioningStatus::from(s.to_owned())),
            mfa_delete: None,
        }))
    }

    pub(crate) async fn do_put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let c = input.versioning_configuration;
        if c.mfa_delete
            .as_ref()
            .is_some_and(|m| m.as_str() == MFADelete::ENABLED)
        {
            return Err(not_implemented("MFA delete"));
        }
        let v = match c.status.as_ref().map(|s| s.as_str()) {
            Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
            Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
            _ => {
                return Err(S3Error::with_message(
                    S3ErrorCode::MalformedXML,
                    "versioning Status must be Enabled or Suspended",
                ));
            }
        };
        self.layer
            .update_bucket_config(&bucket, BucketChange::Versioning(v))
            .await
            .s3()?;
        tracing::info!(bucket = %bucket, versioning = ?v, "bucket versioning changed");
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    pub(crate) async fn do_list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let url = url_encoding(input.encoding_type.as_ref())?;
        let max_keys = page_size(input.max_keys, "max-keys")?;
        if input.version_id_marker.is_some() && input.key_marker.is_none() {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "A version-id marker cannot be specified without a key marker.",
            ));
        }
        let opts = ListVersionsOptions {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: input.delimiter.clone(),
            key_marker: input.key_marker.clone(),
            version_id_marker: input.version_id_marker.clone(),
            max_keys,
        };
        let page = self.layer.list_object_versions(&bucket, opts).await.s3()?;
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        for e in page.versions {
            let i = e.info;
            let key = Some(enc(url, i.key.clone()));
            let version_id = Some(version_label(i.version_id.as_deref()).to_owned());
            let last_modified = Some(timestamp(i.last_modified));
            if i.attrs.delete_marker {
                markers.push(DeleteMarkerEntry {
                    is_latest: Some(e.is_latest),
                    key,
                    last_modified,
                    owner: Some(self.owner()),
                    version_id,
                });
            } else {
                versions.push(ObjectVersion {
                    e_tag: Some(etag(&i.etag)),
                    is_latest: Some(e.is_latest),
                    key,
                    last_modified,
                    owner: Some(self.owner()),
                    size: i64::try_from(i.size).ok(),
                    storage_class: Some(ObjectVersionStorageClass::from(
                        i.storage_class.as_str().to_owned(),
                    )),
                    version_id,
                    ..Default::default()
                });
            }
        }
        Ok(S3Response::new(ListObjectVersionsOutput {
            common_prefixes: Some(
                page.common_prefixes
                    .into_iter()
                    .map(|p| CommonPrefix {
                        prefix: Some(enc(url, p)),
                    })
                    .collect(),
            ),
            delete_markers: Some(markers),
            versions: Some(versions),
            delimiter: input.delimiter.map(|d| enc(url, d)),
            encoding_type: input.encoding_type,
            is_truncated: Some(page.is_truncated),
            key_marker: input.key_marker.map(|k| enc(url, k)),
            max_keys: input.max_keys.or(Some(1000)),
            name: Some(bucket.to_string()),
            next_key_marker: page.next_key_marker.map(|k| enc(url, k)),
            next_version_id_marker: page.next_version_id_marker,
            prefix: Some(enc(url, input.prefix.unwrap_or_default())),
            version_id_marker: input.version_id_marker,
            request_charged: None,
        }))
    }
}
