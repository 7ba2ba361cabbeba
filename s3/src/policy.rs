//! Bucket policies (Put/Get/DeleteBucketPolicy, GetBucketPolicyStatus),
//! public access blocks and ownership controls: checked here, kept in the
//! bucket's configuration. A policy is parsed by cairn-iam and stored as
//! the client gave it; nothing is stored when it is refused.

use cairn_api::BucketChange;
use cairn_api::acl::PublicAccessBlock;
use cairn_iam::{Policy, PolicyKind};
use http::StatusCode;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::convert::bucket_name;
use crate::errors::{IntoS3 as _, custom};
use crate::service::CairnS3;

fn malformed(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::MalformedPolicy, message.into())
}

fn not_found(code: S3ErrorCode, message: &'static str) -> S3Error {
    let mut e = S3Error::with_message(code, message);
    e.set_status_code(StatusCode::NOT_FOUND);
    e
}

/// Whether the bucket part of an ARN pattern (`*`/`?` wildcards) can
/// name `bucket`.
fn bucket_matches(pattern: &str, bucket: &str) -> bool {
    let (p, b) = (pattern.as_bytes(), bucket.as_bytes());
    // classic wildcard matching: positions of the last `*` and where it
    // resumed, so the scan is linear in practice and never recursive
    let (mut pi, mut bi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while bi < b.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, bi));
                pi += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == b.get(bi) => {
                pi += 1;
                bi += 1;
            }
            _ => match star {
                Some((sp, sb)) => {
                    pi = sp + 1;
                    bi = sb + 1;
                    star = Some((sp, sb + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// The first `Resource`/`NotResource` of a (parsed, so well-formed)
/// bucket policy that cannot name `bucket` or an object in it.
fn foreign_resource(text: &str, bucket: &str) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_str(text).ok()?;
    let statements = match doc.get("Statement")? {
        serde_json::Value::Array(list) => list.clone(),
        one => vec![one.clone()],
    };
    for st in &statements {
        for element in ["Resource", "NotResource"] {
            let list = match st.get(element) {
                Some(serde_json::Value::String(s)) => vec![s.clone()],
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            for r in list {
                let ok = r == "*"
                    || r.strip_prefix("arn:aws:s3:::").is_some_and(|rest| {
                        let b = rest.split_once('/').map_or(rest, |(b, _)| b);
                        bucket_matches(b, bucket)
                    });
                if !ok {
                    return Some(r);
                }
            }
        }
    }
    None
}

/// A stored policy, parsed (a policy that no longer parses is logged and
/// treated as none).
pub(crate) fn parsed_policy(bucket: &str, text: &str) -> Option<Policy> {
    match Policy::parse(text, PolicyKind::Bucket) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(%bucket, error = %e, "stored bucket policy does not parse; ignored");
            None
        }
    }
}

impl CairnS3 {
    pub(crate) async fn do_put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let text = input.policy;
        let policy =
            Policy::parse(&text, PolicyKind::Bucket).map_err(|e| malformed(e.to_string()))?;
        if let Some(r) = foreign_resource(&text, bucket.as_str()) {
            return Err(malformed(format!(
                "Policy has invalid resource: {r:?} is not in bucket {bucket}"
            )));
        }
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        if policy.is_public()
            && cfg
                .public_access_block
                .is_some_and(|b| b.block_public_policy)
        {
            return Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "Access Denied: the bucket's public access block refuses public policies",
            ));
        }
        self.layer
            .update_bucket_config(&bucket, BucketChange::Policy(Some(text)))
            .await
            .s3()?;
        tracing::info!(%bucket, "bucket policy set");
        Ok(S3Response::new(PutBucketPolicyOutput::default()))
    }

    pub(crate) async fn do_get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let policy = cfg.policy.ok_or_else(no_policy)?;
        Ok(S3Response::new(GetBucketPolicyOutput {
            policy: Some(policy),
        }))
    }

    pub(crate) async fn do_delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        self.layer
            .update_bucket_config(&bucket, BucketChange::Policy(None))
            .await
            .s3()?;
        tracing::info!(%bucket, "bucket policy deleted");
        Ok(S3Response::new(DeleteBucketPolicyOutput::default()))
    }

    pub(crate) async fn do_get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let text = cfg.policy.ok_or_else(no_policy)?;
        let public = parsed_policy(bucket.as_str(), &text).is_some_and(|p| p.is_public());
        Ok(S3Response::new(GetBucketPolicyStatusOutput {
            policy_status: Some(PolicyStatus {
                is_public: Some(public),
            }),
        }))
    }

    pub(crate) async fn do_put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let c = input.public_access_block_configuration;
        let block = PublicAccessBlock {
            block_public_acls: c.block_public_acls.unwrap_or(false),
            ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
            block_public_policy: c.block_public_policy.unwrap_or(false),
            restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
        };
        self.layer
            .update_bucket_config(&bucket, BucketChange::PublicAccessBlock(Some(block)))
            .await
            .s3()?;
        Ok(S3Response::new(PutPublicAccessBlockOutput::default()))
    }

    pub(crate) async fn do_get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let b = cfg.public_access_block.ok_or_else(|| {
            not_found(
                custom("NoSuchPublicAccessBlockConfiguration"),
                "The public access block configuration was not found",
            )
        })?;
        Ok(S3Response::new(GetPublicAccessBlockOutput {
            public_access_block_configuration: Some(PublicAccessBlockConfiguration {
                block_public_acls: Some(b.block_public_acls),
                block_public_policy: Some(b.block_public_policy),
                ignore_public_acls: Some(b.ignore_public_acls),
                restrict_public_buckets: Some(b.restrict_public_buckets),
            }),
        }))
    }

    pub(crate) async fn do_delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        self.layer
            .update_bucket_config(&bucket, BucketChange::PublicAccessBlock(None))
            .await
            .s3()?;
        Ok(S3Response::new(DeletePublicAccessBlockOutput::default()))
    }

    pub(crate) async fn do_put_bucket_ownership_controls(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let [rule] = input.ownership_controls.rules.as_slice() else {
            return Err(S3Error::with_message(
                S3ErrorCode::MalformedXML,
                "OwnershipControls must have exactly one Rule",
            ));
        };
        let ownership = ownership(rule.object_ownership.as_str())?;
        self.layer
            .update_bucket_config(&bucket, BucketChange::Ownership(Some(ownership)))
            .await
            .s3()?;
        Ok(S3Response::new(PutBucketOwnershipControlsOutput::default()))
    }

    pub(crate) async fn do_get_bucket_ownership_controls(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let o = cfg.ownership.ok_or_else(|| {
            not_found(
                S3ErrorCode::OwnershipControlsNotFoundError,
                "The bucket ownership controls were not found",
            )
        })?;
        Ok(S3Response::new(GetBucketOwnershipControlsOutput {
            ownership_controls: Some(OwnershipControls {
                rules: vec![OwnershipControlsRule {
                    object_ownership: ObjectOwnership::from(o.as_str().to_owned()),
                }],
            }),
        }))
    }

    pub(crate) async fn do_delete_bucket_ownership_controls(
        &self,
        req: S3Request<DeleteBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        self.layer
            .update_bucket_config(&bucket, BucketChange::Ownership(None))
            .await
            .s3()?;
        Ok(S3Response::new(
            DeleteBucketOwnershipControlsOutput::default(),
        ))
    }
}

/// An `ObjectOwnership` value (`x-amz-object-ownership` or a rule).
pub(crate) fn ownership(s: &str) -> S3Result<cairn_api::acl::ObjectOwnership> {
    cairn_api::acl::ObjectOwnership::parse(s).ok_or_else(|| {
        S3Error::with_message(
            S3ErrorCode::MalformedXML,
            format!("ObjectOwnership {s:?} is not BucketOwnerEnforced, BucketOwnerPreferred or ObjectWriter"),
        )
    })
}

fn no_policy() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchBucketPolicy,
        "The bucket policy does not exist",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_patterns() {
        assert!(bucket_matches("b1", "b1"));
        assert!(bucket_matches("b*", "b1"));
        assert!(bucket_matches("*", "b1"));
        assert!(bucket_matches("?1", "b1"));
        assert!(!bucket_matches("b2", "b1"));
        assert!(!bucket_matches("b1x", "b1"));
        assert!(!bucket_matches("b", "b1"));
        assert!(bucket_matches("a*b*c", "axxbyyc"));
        assert!(!bucket_matches("a*b*c", "axxbyy"));
    }

    #[test]
    fn resources() {
        let doc = |r: &str| {
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":{r}}}]}}"#
            )
        };
        assert_eq!(foreign_resource(&doc(r#""arn:aws:s3:::b1/*""#), "b1"), None);
        assert_eq!(
            foreign_resource(&doc(r#"["arn:aws:s3:::b1","arn:aws:s3:::b1/x"]"#), "b1"),
            None
        );
        assert_eq!(
            foreign_resource(&doc(r#"["arn:aws:s3:::b1","arn:aws:s3:::b2/x"]"#), "b1").as_deref(),
            Some("arn:aws:s3:::b2/x")
        );
        assert!(foreign_resource(&doc(r#""arn:aws:iam::1:user/x""#), "b1").is_some());
        assert!(foreign_resource(&doc(r#""arn:aws:s3:::b10/*""#), "b1").is_some());
    }
}
