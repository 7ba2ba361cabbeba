//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
//! GetBucketLocation.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use cairn_api::BucketChange;

use crate::convert::{bucket_name, timestamp};
use crate::errors::{IntoS3 as _, invalid_argument};
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
                owner: Some(self.owner()),
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
        // the Owner is the caller (as AWS answers with the requester's
        // account): how a user learns the canonical id ACL grants name
        let owner = match &authorized.caller {
            Some(c) if c.identity != cairn_iam::Identity::Root => Owner {
                display_name: None,
                id: Some(cairn_iam::canonical_id(&c.identity, &self.account)),
            },
            _ => self.owner(),
        };
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
            owner: Some(owner),
            prefix: input.prefix.clone(),
            continuation_token,
        }))
    }

    pub(crate) async fn do_create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let input = &req.input;
        let bucket = bucket_name(&input.bucket)?;
        let acl = crate::acl_headers!(input, input.grant_write.clone()).acl(&self.owner_id)?;
        let ownership = input
            .object_ownership
            .as_ref()
            .map(|o| crate::policy::ownership(o.as_str()))
            .transpose()
            .map_err(|e| invalid_argument(e.message().unwrap_or_default().to_owned()))?;
        let mut changes = Vec::new();
        if let Some(o) = ownership {
            if o == cairn_api::acl::ObjectOwnership::BucketOwnerEnforced
                && acl.as_ref().is_some_and(|a| !a.is_private())
            {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidBucketAclWithObjectOwnership,
                    "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
                ));
            }
            changes.push(BucketChange::Ownership(Some(o)));
        }
        if let Some(a) = acl.and_then(cairn_api::acl::Acl::stored) {
            changes.push(BucketChange::Acl(Some(a)));
        }
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
        match self.layer.make_bucket_with(&bucket, opts).await {
            Ok(()) => {}
            Err(cairn_api::ObjectError::BucketAlreadyExists { .. }) => {
                return self.bucket_exists(&bucket, &req.extensions).await;
            }
            Err(e) => return Err(crate::errors::s3_error(e)),
        }
        for change in changes {
            if let Err(e) = self.layer.update_bucket_config(&bucket, change).await {
                // the bucket is not made without what was asked of it
                if let Err(d) = self.layer.delete_bucket(&bucket).await {
                    tracing::error!(bucket = %bucket, error = %d, "bucket made without its ACL could not be removed");
                }
                return Err(crate::errors::s3_error(e));
            }
        }
        tracing::info!(bucket = %bucket, "bucket created");
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{bucket}")),
        }))
    }

    /// CreateBucket of a name that is taken. Every bucket belongs to the
    /// deployment's one account: a caller who may use the bucket (list it
    /// or ask where it is) is its owner and hears, as in AWS, 200 in
    /// us-east-1 (the bucket unchanged: AWS's documented ACL reset is not
    /// done, it would change an ACL without s3:PutBucketAcl) and 409
    /// BucketAlreadyOwnedByYou in any other region; any other caller 409
    /// BucketAlreadyExists, as for another account's bucket.
    async fn bucket_exists(
        &self,
        bucket: &cairn_api::BucketName,
        extensions: &http::Extensions,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let owner = match extensions.get::<crate::authz::Authorized>() {
            Some(a) => a.may_see_bucket(bucket.as_str()).await,
            None => false,
        };
        if !owner {
            return Err(S3Error::with_message(
                S3ErrorCode::BucketAlreadyExists,
                "The requested bucket name is not available. The bucket namespace is shared by \
                 all users of the system. Please select a different name and try again.",
            ));
        }
        if self.region == DEFAULT_REGION {
            tracing::debug!(bucket = %bucket, "bucket created again by its owner (us-east-1: 200)");
            return Ok(S3Response::new(CreateBucketOutput {
                location: Some(format!("/{bucket}")),
            }));
        }
        Err(S3Error::with_message(
            S3ErrorCode::BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it.",
        ))
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
