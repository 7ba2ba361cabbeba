//! [`IdentityLayer`]: an `ObjectLayer` as one IAM user sees it. The FUSE
//! mount and the NFS export act as an identity through it: every call is
//! authorized before it reaches the store, with the S3 action it stands
//! for ([`crate::s3ops`]), on the same resource ARNs and with the bucket's
//! policy, so the user gets from the mount and the export the answer S3
//! gives it (a refusal is `AccessDenied`: EACCES, NFS3ERR_ACCES).
//!
//! Every decision reads the IAM state of that moment: a changed policy,
//! a disabled or a deleted user counts from the next call. Every method
//! of the trait is decided here, the defaulted ones too (a test checks
//! that each method the trait has is overridden), so nothing reaches the
//! store undecided.

use std::sync::Arc;

use async_trait::async_trait;
use cairn_api::{
    BucketChange, BucketConfig, BucketEncryption, BucketInfo, BucketName, ByteStream, CompletePart,
    Conditions, CopyOptions, DeleteOptions, DeleteOutcome, DeleteResult, GetObject, GetOptions,
    ListOptions, ListPage, ListPartsPage, ListUploadsOptions, ListUploadsPage, ListVersionsOptions,
    ListVersionsPage, MakeBucketOptions, ObjectError, ObjectInfo, ObjectKey, ObjectLayer,
    ObjectResult, PartInfo, PartOptions, PutOptions, VersionChange,
};

use crate::action::Action;
use crate::bucketpolicy::{BucketPolicies, s3_arn};
use crate::context::Context;
use crate::entities::Status;
use crate::grants::Identity;
use crate::policy::Policy;
use crate::service::{Caller, Iam, Question};

/// Why the user itself is refused (it is disabled or was deleted).
const USER_GONE: &str = "the identity's user is disabled or does not exist";
/// The bucket's stored policy no longer parses: nothing is allowed on it.
const BAD_POLICY: &str = "the bucket's policy does not parse";

/// An `ObjectLayer` that acts as IAM user `user`.
pub struct IdentityLayer {
    inner: Arc<dyn ObjectLayer>,
    iam: Arc<Iam>,
    user: String,
    caller: Caller,
    policies: BucketPolicies,
}

impl std::fmt::Debug for IdentityLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityLayer")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// `plain`, or `version` when the call names a version (the null one too).
fn versioned<T>(
    version_id: &Option<T>,
    plain: &'static str,
    version: &'static str,
) -> &'static str {
    if version_id.is_some() { version } else { plain }
}

/// The condition keys of a listing.
fn list_context(prefix: &str, delimiter: Option<&str>, max_keys: usize) -> Context {
    let mut ctx = Context::new();
    ctx.set("s3:prefix", prefix);
    if let Some(d) = delimiter {
        ctx.set("s3:delimiter", d);
    }
    ctx.set("s3:max-keys", max_keys.to_string());
    ctx
}

/// One thing a call needs: `action` on the bucket (`key: None`) or on
/// one of its objects.
type Need<'a> = (&'static str, Option<&'a str>);

impl IdentityLayer {
    /// `inner` as IAM user `user` sees it. The user must exist now
    /// ([`crate::IamError`] `NoSuchEntity` otherwise); it may be disabled
    /// or deleted later, and is then refused everything.
    pub fn new(
        inner: Arc<dyn ObjectLayer>,
        iam: Arc<Iam>,
        user: &str,
    ) -> Result<IdentityLayer, crate::IamError> {
        iam.state().user(user)?;
        Ok(IdentityLayer {
            inner,
            iam,
            user: user.to_owned(),
            caller: Caller {
                access_key: String::new(),
                identity: Identity::User {
                    name: user.to_owned(),
                },
            },
            policies: BucketPolicies::new(),
        })
    }

    /// The IAM user this layer acts as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The bucket's policy, parsed (once per text). A bucket that does
    /// not exist or a backend without bucket configuration has none.
    async fn bucket_policy(&self, bucket: &BucketName) -> ObjectResult<Option<Arc<Policy>>> {
        let text = match self.inner.get_bucket_config(bucket).await {
            Ok(c) => c.policy,
            Err(ObjectError::NoSuchBucket { .. } | ObjectError::NotImplemented { .. }) => None,
            Err(e) => return Err(e),
        };
        match self.policies.parsed(bucket.as_str(), text) {
            Ok(p) => Ok(p),
            Err(e) => {
                tracing::error!(%bucket, error = %e, "stored bucket policy does not parse; the bucket is refused");
                Err(ObjectError::AccessDenied {
                    bucket: bucket.to_string(),
                    key: String::new(),
                    reason: BAD_POLICY,
                })
            }
        }
    }

    /// Whether the user is there and active now.
    fn user_active(&self) -> bool {
        self.iam
            .state()
            .user(&self.user)
            .is_ok_and(|u| u.status == Status::Active)
    }

    /// Whether `action` on `resource` is allowed (an action Cairn does not
    /// know is not).
    fn allowed(
        &self,
        action: &str,
        resource: &str,
        ctx: &Context,
        policy: Option<&Policy>,
    ) -> bool {
        let Some(action) = Action::from_name(action) else {
            return false;
        };
        self.iam.authorize(&Question {
            caller: Some(&self.caller),
            action,
            resource,
            context: ctx,
            bucket_policy: policy,
        })
    }

    /// Refuses unless every need on `bucket` is allowed.
    async fn require(
        &self,
        bucket: &BucketName,
        needs: &[Need<'_>],
        ctx: &Context,
    ) -> ObjectResult<()> {
        let denied = |key: Option<&str>, reason| ObjectError::AccessDenied {
            bucket: bucket.to_string(),
            key: key.unwrap_or_default().to_owned(),
            reason,
        };
        if !self.user_active() {
            return Err(denied(None, USER_GONE));
        }
        let policy = self.bucket_policy(bucket).await?;
        for (action, key) in needs {
            if !self.allowed(
                action,
                &s3_arn(bucket.as_str(), *key),
                ctx,
                policy.as_deref(),
            ) {
                tracing::debug!(user = %self.user, %bucket, key = key.unwrap_or_default(), action, "refused");
                return Err(denied(*key, action));
            }
        }
        Ok(())
    }

    /// Refuses unless `action` on object `key` is allowed.
    async fn require_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        action: &'static str,
    ) -> ObjectResult<()> {
        self.require(bucket, &[(action, Some(key.as_str()))], &Context::new())
            .await
    }

    /// Refuses unless `action` on the bucket is allowed.
    async fn require_bucket(&self, bucket: &BucketName, action: &'static str) -> ObjectResult<()> {
        self.require(bucket, &[(action, None)], &Context::new())
            .await
    }

    /// Whether the user may see `bucket` in a bucket listing: it may list
    /// it (`s3:ListBucket`, without condition keys) or ask where it is
    /// (`s3:GetBucketLocation`).
    async fn sees_bucket(&self, bucket: &BucketName) -> ObjectResult<bool> {
        let policy = self.bucket_policy(bucket).await?;
        let resource = s3_arn(bucket.as_str(), None);
        let ctx = Context::new();
        Ok(["s3:ListBucket", "s3:GetBucketLocation"]
            .iter()
            .any(|a| self.allowed(a, &resource, &ctx, policy.as_deref())))
    }
}

#[async_trait]
impl ObjectLayer for IdentityLayer {
    // ---- not data, not decided: what the store can do, its changes
    // (for cache invalidation), durability of writes already decided,
    // and its capacity ----

    fn capabilities(&self) -> cairn_api::Capabilities {
        self.inner.capabilities()
    }

    fn subscribe_changes(&self) -> Option<cairn_api::changes::ChangeReceiver> {
        self.inner.subscribe_changes()
    }

    async fn sync(&self) -> ObjectResult<()> {
        self.inner.sync().await
    }

    async fn capacity(&self) -> ObjectResult<Option<cairn_api::Capacity>> {
        self.inner.capacity().await
    }

    // ---- buckets ----

    async fn make_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        self.require_bucket(bucket, "s3:CreateBucket").await?;
        self.inner.make_bucket(bucket).await
    }

    async fn make_bucket_with(
        &self,
        bucket: &BucketName,
        opts: MakeBucketOptions,
    ) -> ObjectResult<()> {
        let mut needs: Vec<Need<'_>> = vec![("s3:CreateBucket", None)];
        if opts.object_lock {
            needs.push(("s3:PutBucketObjectLockConfiguration", None));
            needs.push(("s3:PutBucketVersioning", None));
        }
        self.require(bucket, &needs, &Context::new()).await?;
        self.inner.make_bucket_with(bucket, opts).await
    }

    /// The file fronts' lookup of a bucket's directory: allowed for the
    /// buckets `list_buckets` shows (S3's HeadBucket is `s3:ListBucket`
    /// alone; a user allowed only a prefix of a bucket, by an
    /// `s3:prefix` condition, could otherwise never reach that prefix).
    async fn head_bucket(&self, bucket: &BucketName) -> ObjectResult<BucketInfo> {
        if !self.user_active() {
            return Err(ObjectError::AccessDenied {
                bucket: bucket.to_string(),
                key: String::new(),
                reason: USER_GONE,
            });
        }
        if !self.sees_bucket(bucket).await? {
            return Err(ObjectError::AccessDenied {
                bucket: bucket.to_string(),
                key: String::new(),
                reason: "s3:ListBucket",
            });
        }
        self.inner.head_bucket(bucket).await
    }

    /// The buckets the user may list or locate, as the S3 front's
    /// ListBuckets shows them (possibly none).
    async fn list_buckets(&self) -> ObjectResult<Vec<BucketInfo>> {
        if !self.user_active() {
            return Err(ObjectError::AccessDenied {
                bucket: String::new(),
                key: String::new(),
                reason: USER_GONE,
            });
        }
        let mut out = Vec::new();
        for b in self.inner.list_buckets().await? {
            let Ok(name) = BucketName::new(b.name.as_str()) else {
                continue;
            };
            // a bucket whose policy cannot be read or parsed is not shown
            if self.sees_bucket(&name).await.unwrap_or(false) {
                out.push(b);
            }
        }
        Ok(out)
    }

    async fn delete_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        self.require_bucket(bucket, "s3:DeleteBucket").await?;
        self.inner.delete_bucket(bucket).await
    }

    async fn get_bucket_encryption(
        &self,
        bucket: &BucketName,
    ) -> ObjectResult<Option<BucketEncryption>> {
        self.require_bucket(bucket, "s3:GetEncryptionConfiguration")
            .await?;
        self.inner.get_bucket_encryption(bucket).await
    }

    async fn put_bucket_encryption(
        &self,
        bucket: &BucketName,
        config: Option<BucketEncryption>,
    ) -> ObjectResult<()> {
        self.require_bucket(bucket, "s3:PutEncryptionConfiguration")
            .await?;
        self.inner.put_bucket_encryption(bucket, config).await
    }

    /// Needs `s3:GetBucketVersioning`; the parts the user may not read
    /// (policy, tags, lifecycle, default retention) are left out.
    async fn get_bucket_config(&self, bucket: &BucketName) -> ObjectResult<BucketConfig> {
        self.require_bucket(bucket, "s3:GetBucketVersioning")
            .await?;
        let mut c = self.inner.get_bucket_config(bucket).await?;
        let policy = self.bucket_policy(bucket).await?;
        let resource = s3_arn(bucket.as_str(), None);
        let ctx = Context::new();
        let may = |a: &str| self.allowed(a, &resource, &ctx, policy.as_deref());
        if !may("s3:GetBucketPolicy") {
            c.policy = None;
        }
        if !may("s3:GetBucketTagging") {
            c.tags = None;
        }
        if !may("s3:GetLifecycleConfiguration") {
            c.lifecycle = None;
        }
        if !may("s3:GetBucketObjectLockConfiguration") {
            c.default_retention = None;
        }
        Ok(c)
    }

    async fn update_bucket_config(
        &self,
        bucket: &BucketName,
        change: BucketChange,
    ) -> ObjectResult<()> {
        let action = match &change {
            BucketChange::Versioning(_) => "s3:PutBucketVersioning",
            BucketChange::ObjectLock(_) | BucketChange::Worm => {
                "s3:PutBucketObjectLockConfiguration"
            }
            BucketChange::Tags(_) => "s3:PutBucketTagging",
            BucketChange::Lifecycle(_) => "s3:PutLifecycleConfiguration",
            BucketChange::Policy(Some(_)) => "s3:PutBucketPolicy",
            BucketChange::Policy(None) => "s3:DeleteBucketPolicy",
            BucketChange::Acl(_) => "s3:PutBucketAcl",
            BucketChange::PublicAccessBlock(_) => "s3:PutBucketPublicAccessBlock",
            BucketChange::Ownership(_) => "s3:PutBucketOwnershipControls",
            BucketChange::Cors(_) => "s3:PutBucketCORS",
            BucketChange::Notification(_) => "s3:PutBucketNotification",
            BucketChange::Replication(_) => "s3:PutReplicationConfiguration",
        };
        self.require_bucket(bucket, action).await?;
        self.inner.update_bucket_config(bucket, change).await
    }

    // ---- objects ----

    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: ByteStream,
        opts: PutOptions,
    ) -> ObjectResult<ObjectInfo> {
        let mut needs: Vec<Need<'_>> = vec![("s3:PutObject", Some(key.as_str()))];
        if opts.retention.is_some() {
            needs.push(("s3:PutObjectRetention", Some(key.as_str())));
        }
        if opts.legal_hold {
            needs.push(("s3:PutObjectLegalHold", Some(key.as_str())));
        }
        self.require(bucket, &needs, &Context::new()).await?;
        self.inner.put_object(bucket, key, body, opts).await
    }

    /// A new version made from the current one: the caller writes it
    /// (`s3:PutObject`) and its unchanged bytes are the old version's
    /// (`s3:GetObject`).
    async fn patch_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        changes: cairn_api::PatchStream,
        opts: cairn_api::PatchOptions,
    ) -> ObjectResult<ObjectInfo> {
        let needs: [Need<'_>; 2] = [
            ("s3:PutObject", Some(key.as_str())),
            ("s3:GetObject", Some(key.as_str())),
        ];
        self.require(bucket, &needs, &Context::new()).await?;
        self.inner.patch_object(bucket, key, changes, opts).await
    }

    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: GetOptions,
    ) -> ObjectResult<GetObject> {
        let action = versioned(&opts.version_id, "s3:GetObject", "s3:GetObjectVersion");
        self.require_object(bucket, key, action).await?;
        self.inner.get_object(bucket, key, opts).await
    }

    async fn head_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        conditions: &Conditions,
    ) -> ObjectResult<ObjectInfo> {
        self.require_object(bucket, key, "s3:GetObject").await?;
        self.inner.head_object(bucket, key, conditions).await
    }

    async fn head_object_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
    ) -> ObjectResult<ObjectInfo> {
        let action = versioned(&opts.version_id, "s3:GetObject", "s3:GetObjectVersion");
        self.require_object(bucket, key, action).await?;
        self.inner.head_object_with(bucket, key, opts).await
    }

    async fn part_range(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
        part_number: u32,
    ) -> ObjectResult<(ObjectInfo, (u64, u64))> {
        let action = versioned(&opts.version_id, "s3:GetObject", "s3:GetObjectVersion");
        self.require_object(bucket, key, action).await?;
        self.inner.part_range(bucket, key, opts, part_number).await
    }

    async fn object_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
    ) -> ObjectResult<(ObjectInfo, Option<Vec<cairn_api::PartInfo>>)> {
        let action = versioned(
            &opts.version_id,
            "s3:GetObjectAttributes",
            "s3:GetObjectVersionAttributes",
        );
        self.require_object(bucket, key, action).await?;
        self.inner.object_parts(bucket, key, opts).await
    }

    async fn delete_object(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()> {
        self.require_object(bucket, key, "s3:DeleteObject").await?;
        self.inner.delete_object(bucket, key).await
    }

    /// The replication service's record of a copy: a user needs the
    /// right to replicate the object (as for the replica headers).
    async fn set_replication_status(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: Option<String>,
        status: cairn_api::replication::ReplicationStatus,
    ) -> ObjectResult<()> {
        self.require_object(bucket, key, "s3:ReplicateObject")
            .await?;
        self.inner
            .set_replication_status(bucket, key, version_id, status)
            .await
    }

    async fn delete_object_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: DeleteOptions,
    ) -> ObjectResult<DeleteOutcome> {
        let mut needs: Vec<Need<'_>> = vec![(
            versioned(
                &opts.version_id,
                "s3:DeleteObject",
                "s3:DeleteObjectVersion",
            ),
            Some(key.as_str()),
        )];
        if opts.bypass_governance {
            needs.push(("s3:BypassGovernanceRetention", Some(key.as_str())));
        }
        self.require(bucket, &needs, &Context::new()).await?;
        self.inner.delete_object_with(bucket, key, opts).await
    }

    /// Each key is decided on its own; the allowed ones go to the store
    /// together, and the answer keeps the order asked.
    async fn delete_objects(
        &self,
        bucket: &BucketName,
        items: Vec<(String, DeleteOptions)>,
    ) -> Vec<DeleteResult> {
        let mut answers: Vec<Option<DeleteResult>> = Vec::with_capacity(items.len());
        let mut allowed = Vec::new();
        for (key, opts) in items {
            let mut needs: Vec<Need<'_>> = vec![(
                versioned(
                    &opts.version_id,
                    "s3:DeleteObject",
                    "s3:DeleteObjectVersion",
                ),
                Some(key.as_str()),
            )];
            if opts.bypass_governance {
                needs.push(("s3:BypassGovernanceRetention", Some(key.as_str())));
            }
            match self.require(bucket, &needs, &Context::new()).await {
                Ok(()) => {
                    answers.push(None);
                    allowed.push((key, opts));
                }
                Err(e) => answers.push(Some(DeleteResult {
                    key,
                    result: Err(e),
                })),
            }
        }
        let mut done = self.inner.delete_objects(bucket, allowed).await.into_iter();
        answers
            .into_iter()
            .filter_map(|a| a.or_else(|| done.next()))
            .collect()
    }

    /// Asked by the file fronts before a change: needs the right to
    /// write or to delete the key.
    async fn check_mutable(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()> {
        let write = self.require_object(bucket, key, "s3:PutObject").await;
        if let Err(e) = write {
            self.require_object(bucket, key, "s3:DeleteObject")
                .await
                .map_err(|_| e)?;
        }
        self.inner.check_mutable(bucket, key).await
    }

    async fn update_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: Option<Option<String>>,
        change: VersionChange,
    ) -> ObjectResult<ObjectInfo> {
        let mut needs: Vec<Need<'_>> = Vec::new();
        match &change {
            VersionChange::Retention {
                bypass_governance, ..
            } => {
                needs.push(("s3:PutObjectRetention", Some(key.as_str())));
                if *bypass_governance {
                    needs.push(("s3:BypassGovernanceRetention", Some(key.as_str())));
                }
            }
            VersionChange::LegalHold(_) => {
                needs.push(("s3:PutObjectLegalHold", Some(key.as_str())));
            }
            VersionChange::Tags(_) => needs.push((
                versioned(
                    &version_id,
                    "s3:PutObjectTagging",
                    "s3:PutObjectVersionTagging",
                ),
                Some(key.as_str()),
            )),
            VersionChange::Acl(_) => needs.push((
                versioned(&version_id, "s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
                Some(key.as_str()),
            )),
        }
        self.require(bucket, &needs, &Context::new()).await?;
        self.inner
            .update_version(bucket, key, version_id, change)
            .await
    }

    async fn list_object_versions(
        &self,
        bucket: &BucketName,
        opts: ListVersionsOptions,
    ) -> ObjectResult<ListVersionsPage> {
        let ctx = list_context(&opts.prefix, opts.delimiter.as_deref(), opts.max_keys);
        self.require(bucket, &[("s3:ListBucketVersions", None)], &ctx)
            .await?;
        self.inner.list_object_versions(bucket, opts).await
    }

    /// Needs the write of the destination and the read of the source.
    async fn copy_object(
        &self,
        src_bucket: &BucketName,
        src_key: &ObjectKey,
        dst_bucket: &BucketName,
        dst_key: &ObjectKey,
        opts: CopyOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.require_object(dst_bucket, dst_key, "s3:PutObject")
            .await?;
        let read = versioned(
            &opts.source_version_id,
            "s3:GetObject",
            "s3:GetObjectVersion",
        );
        self.require_object(src_bucket, src_key, read).await?;
        self.inner
            .copy_object(src_bucket, src_key, dst_bucket, dst_key, opts)
            .await
    }

    async fn list_objects(&self, bucket: &BucketName, opts: ListOptions) -> ObjectResult<ListPage> {
        let ctx = list_context(&opts.prefix, opts.delimiter.as_deref(), opts.max_keys);
        self.require(bucket, &[("s3:ListBucket", None)], &ctx)
            .await?;
        self.inner.list_objects(bucket, opts).await
    }

    /// A move: the read and the delete of the source, the write of the
    /// destination (and its read when an existing one is not replaced,
    /// since the answer then tells whether it exists).
    async fn rename_object(
        &self,
        bucket: &BucketName,
        src: &ObjectKey,
        dst: &ObjectKey,
        replace: bool,
    ) -> ObjectResult<ObjectInfo> {
        let mut needs: Vec<Need<'_>> = vec![
            ("s3:GetObject", Some(src.as_str())),
            ("s3:DeleteObject", Some(src.as_str())),
            ("s3:PutObject", Some(dst.as_str())),
        ];
        if !replace {
            needs.push(("s3:GetObject", Some(dst.as_str())));
        }
        self.require(bucket, &needs, &Context::new()).await?;
        self.inner.rename_object(bucket, src, dst, replace).await
    }

    // ---- multipart ----

    async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
    ) -> ObjectResult<String> {
        self.require_object(bucket, key, "s3:PutObject").await?;
        self.inner.create_multipart_upload(bucket, key, opts).await
    }

    async fn upload_part(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number: u32,
        body: ByteStream,
        opts: PartOptions,
    ) -> ObjectResult<PartInfo> {
        self.require_object(bucket, key, "s3:PutObject").await?;
        self.inner
            .upload_part(bucket, key, upload_id, part_number, body, opts)
            .await
    }

    #[allow(clippy::too_many_arguments)] // the trait's signature
    async fn upload_part_copy(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number: u32,
        src_bucket: &BucketName,
        src_key: &ObjectKey,
        src: GetOptions,
        part: PartOptions,
    ) -> ObjectResult<PartInfo> {
        self.require_object(bucket, key, "s3:PutObject").await?;
        let read = versioned(&src.version_id, "s3:GetObject", "s3:GetObjectVersion");
        self.require_object(src_bucket, src_key, read).await?;
        self.inner
            .upload_part_copy(
                bucket,
                key,
                upload_id,
                part_number,
                src_bucket,
                src_key,
                src,
                part,
            )
            .await
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number_marker: Option<u32>,
        max_parts: usize,
    ) -> ObjectResult<ListPartsPage> {
        self.require_object(bucket, key, "s3:ListMultipartUploadParts")
            .await?;
        self.inner
            .list_parts(bucket, key, upload_id, part_number_marker, max_parts)
            .await
    }

    async fn complete_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: Vec<CompletePart>,
    ) -> ObjectResult<ObjectInfo> {
        self.require_object(bucket, key, "s3:PutObject").await?;
        self.inner
            .complete_multipart_upload(bucket, key, upload_id, parts)
            .await
    }

    async fn complete_multipart_upload_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: Vec<CompletePart>,
        opts: cairn_api::CompleteOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.require_object(bucket, key, "s3:PutObject").await?;
        self.inner
            .complete_multipart_upload_with(bucket, key, upload_id, parts, opts)
            .await
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> ObjectResult<()> {
        self.require_object(bucket, key, "s3:AbortMultipartUpload")
            .await?;
        self.inner
            .abort_multipart_upload(bucket, key, upload_id)
            .await
    }

    async fn list_multipart_uploads(
        &self,
        bucket: &BucketName,
        opts: ListUploadsOptions,
    ) -> ObjectResult<ListUploadsPage> {
        self.require_bucket(bucket, "s3:ListBucketMultipartUploads")
            .await?;
        self.inner.list_multipart_uploads(bucket, opts).await
    }
}

#[cfg(test)]
#[path = "layer_tests.rs"]
mod tests;
