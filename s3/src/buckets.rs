//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
//! GetBucketLocation.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::convert::{bucket_name, refuse_if_some, timestamp};
use crate::errors::{IntoS3 as _, invalid_argument, not_implemented};
use crate::list::{decode_token, encode_token};
use crate::service::CairnS3;

/// The region whose buckets have an empty `LocationConstraint`.
const DEFAULT_REGION: &str = "us-east-1";

/// The region a `LocationConstraint` names: AWS still takes the legacy
/// `US` and `EU` (s3cmd's `bucket_location` default is `US`).
fn legacy_region(loc: &str) -> &str {
    match loc {
        "US" => "us-east-1",
        "EU" => "eu-west-1",
        _ => loc,
    }
}

impl CairnS3 {
    pub(crate) async fn do_list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let input = &req.input;
        if let Some(r) = input.bucket_region.as_deref()
            && r != self.region
        {
            // Every bucket lives in this server's region.
            return Ok(S3Response::new(ListBucketsOutput {
                buckets: Some(Vec::new()),
                owner: Some(Self::owner()),
                prefix: input.prefix.clone(),
                continuation_token: None,
            }));
        }
        let max = match input.max_buckets {
            None => usize::MAX,
            Some(n @ 1..=10_000) => usize::try_from(n).unwrap_or(usize::MAX),
            Some(n) => {
                return Err(invalid_argument(format!(
                    "max-buckets {n} is not between 1 and 10000"
                )));
            }
        };
        let after = input
            .continuation_token
            .as_deref()
            .map(decode_token)
            .transpose()?;
        let prefix = input.prefix.clone().unwrap_or_default();

        let mut all = self.layer.list_buckets().await.s3()?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        // only what the caller may list or locate (crate::authz)
        let Some(authorized) = req.extensions.get::<crate::authz::Authorized>() else {
            return Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "Access Denied.",
            ));
        };
        let mut visible = Vec::with_capacity(all.len());
        for b in all {
            if authorized.may_see_bucket(b.name.as_str()).await {
                visible.push(b);
            }
        }
        let all = visible;
        let mut buckets: Vec<Bucket> = all
            .into_iter()
            .filter(|b| b.name.starts_with(&prefix))
            .filter(|b| after.as_deref().is_none_or(|a| b.name.as_str() > a))
            .map(|b| Bucket {
                bucket_region: Some(self.region.clone()),
                creation_date: Some(timestamp(b.created)),
                name: Some(b.name),
            })
            .collect();
        let mut continuation_token = None;
        if buckets.len() > max {
            buckets.truncate(max);
            continuation_token = buckets
                .last()
                .and_then(|b| b.name.as_deref())
                .map(encode_token);
        }
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(Self::owner()),
            prefix: input.prefix.clone(),
            continuation_token,
        }))
    }

    pub(crate) async fn do_create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        if let Some(acl) = &input.acl
            && acl.as_str() != BucketCannedACL::PRIVATE
        {
            return Err(not_implemented("bucket ACLs other than private"));
        }
        refuse_if_some(input.grant_full_control.as_ref(), "bucket ACL grants")?;
        refuse_if_some(input.grant_read.as_ref(), "bucket ACL grants")?;
        refuse_if_some(input.grant_read_acp.as_ref(), "bucket ACL grants")?;
        refuse_if_some(input.grant_write.as_ref(), "bucket ACL grants")?;
        refuse_if_some(input.grant_write_acp.as_ref(), "bucket ACL grants")?;
        if let Some(loc) = input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
        {
            let loc = loc.as_str();
            let ok = legacy_region(loc) == self.region
                || (loc.is_empty() && self.region == DEFAULT_REGION);
            if !ok {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidLocationConstraint,
                    format!(
                        "location constraint {loc:?} is not this server's region {:?}",
                        self.region
                    ),
                ));
            }
        }
        let opts = cairn_api::MakeBucketOptions {
            object_lock: input.object_lock_enabled_for_bucket == Some(true),
        };
        self.layer.make_bucket_with(&bucket, opts).await.s3()?;
        tracing::info!(bucket = %bucket, "bucket created");
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{bucket}")),
        }))
    }

    pub(crate) async fn do_head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        self.layer.head_bucket(&bucket).await.s3()?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(self.region.clone()),
            access_point_alias: Some(false),
            ..Default::default()
        }))
    }

    pub(crate) async fn do_delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        self.layer.delete_bucket(&bucket).await.s3()?;
        tracing::info!(bucket = %bucket, "bucket deleted");
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    pub(crate) async fn do_get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        self.layer.head_bucket(&bucket).await.s3()?;
        let location_constraint = (self.region != DEFAULT_REGION)
            .then(|| BucketLocationConstraint::from(self.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint,
        }))
    }
}
