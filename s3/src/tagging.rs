//! Object and bucket tagging.

use cairn_api::tags::{MAX_BUCKET_TAGS, MAX_OBJECT_TAGS};
use cairn_api::versioning::version_label;
use cairn_api::{BucketChange, Tags, VersionChange};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::convert::{bucket_name, object_key, version_param};
use crate::errors::{IntoS3 as _, s3_error};
use crate::service::CairnS3;

/// A tag set as the client sent it, checked against S3's limits.
pub(crate) fn tags_in(set: TagSet, max: usize) -> S3Result<Tags> {
    let mut pairs = Vec::with_capacity(set.len());
    for t in set {
        let key = t
            .key
            .ok_or_else(|| S3Error::with_message(S3ErrorCode::MalformedXML, "a tag has no Key"))?;
        pairs.push((key, t.value.unwrap_or_default()));
    }
    Tags::from_pairs(pairs, max).map_err(s3_error)
}

pub(crate) fn tags_out(tags: &Tags) -> TagSet {
    tags.0
        .iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

impl CairnS3 {
    pub(crate) async fn do_get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let input = req.input;
        let info = self
            .version_info(
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
                false,
            )
            .await?;
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: tags_out(&info.attrs.tags),
            version_id: info.version_id,
        }))
    }

    pub(crate) async fn do_put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let input = req.input;
        let tags = tags_in(input.tagging.tag_set, MAX_OBJECT_TAGS)?;
        let version_id = self
            .set_object_tags(&input.bucket, &input.key, input.version_id.as_deref(), tags)
            .await?;
        Ok(S3Response::new(PutObjectTaggingOutput { version_id }))
    }

    pub(crate) async fn do_delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let input = req.input;
        let version_id = self
            .set_object_tags(
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
                Tags::default(),
            )
            .await?;
        Ok(S3Response::new(DeleteObjectTaggingOutput { version_id }))
    }

    /// Replaces a version's tags; returns the version id S3 reports.
    async fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tags: Tags,
    ) -> S3Result<Option<String>> {
        let bucket = bucket_name(bucket)?;
        let key = object_key(key)?;
        let info = self
            .layer
            .update_version(
                &bucket,
                &key,
                version_param(version_id)?,
                VersionChange::Tags(tags),
            )
            .await
            .s3()?;
        Ok(info
            .version_id
            .map(|v| version_label(Some(v.as_str())).to_owned()))
    }

    pub(crate) async fn do_get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let tags = cfg.tags.filter(|t| !t.is_empty()).ok_or_else(|| {
            S3Error::with_message(S3ErrorCode::NoSuchTagSet, "The TagSet does not exist")
        })?;
        Ok(S3Response::new(GetBucketTaggingOutput {
            tag_set: tags_out(&tags),
        }))
    }

    pub(crate) async fn do_put_bucket_tagging(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> S3Result<S3Response<PutBucketTaggingOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let tags = tags_in(input.tagging.tag_set, MAX_BUCKET_TAGS)?;
        self.layer
            .update_bucket_config(&bucket, BucketChange::Tags(Some(tags)))
            .await
            .s3()?;
        Ok(S3Response::new(PutBucketTaggingOutput::default()))
    }

    pub(crate) async fn do_delete_bucket_tagging(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        self.layer
            .update_bucket_config(&bucket, BucketChange::Tags(None))
            .await
            .s3()?;
        Ok(S3Response::new(DeleteBucketTaggingOutput::default()))
    }
}
