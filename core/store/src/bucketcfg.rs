//! Bucket configuration kept in `buckets/<bucket>.json` on every drive:
//! written to all drives (write quorum), read from all and resolved by the
//! newest `updated`. Cached per bucket, since every PUT consults it
//! (default encryption, versioning, object lock, WORM).

use cairn_api::{
    BucketChange, BucketConfig, BucketEncryption, BucketName, ObjectError, ObjectResult, Versioning,
};

use crate::drive::DriveError;
use crate::objects::{BucketMeta, read_bucket_meta};
use crate::set::{ErasureSet, now_nanos};

impl ErasureSet {
    pub(crate) async fn bucket_meta(&self, bucket: &BucketName) -> ObjectResult<BucketMeta> {
        if let Some(c) = self.bucket_cfg.lock().get(bucket.as_str()) {
            return Ok(c.clone());
        }
        self.check_bucket(bucket).await?;
        let b = bucket.to_string();
        let newest = self
            .on_drives(move |d| read_bucket_meta(d, &b))
            .await
            .into_iter()
            .flatten()
            .max_by_key(|m| m.updated)
            .unwrap_or_default();
        self.bucket_cfg
            .lock()
            .insert(bucket.to_string(), newest.clone());
        Ok(newest)
    }

    pub(crate) async fn bucket_encryption(
        &self,
        bucket: &BucketName,
    ) -> ObjectResult<Option<BucketEncryption>> {
        Ok(self.bucket_meta(bucket).await?.encryption)
    }

    pub(crate) async fn bucket_config(&self, bucket: &BucketName) -> ObjectResult<BucketConfig> {
        Ok(self.bucket_meta(bucket).await?.config)
    }

    pub(crate) async fn set_bucket_encryption(
        &self,
        bucket: &BucketName,
        config: Option<BucketEncryption>,
    ) -> ObjectResult<()> {
        // A default no KMS can serve would fail every plain PUT after it:
        // refused as an SSE-S3/KMS request is (issue 16).
        if config.is_some() && self.sse_config().kms.is_none() {
            return Err(ObjectError::KmsNotConfigured);
        }
        self.update_bucket_meta(bucket, move |m| {
            m.encryption = config.clone();
            Ok(())
        })
        .await
    }

    /// Applies one configuration change, with S3's rules: object lock
    /// needs versioning and never goes away, versioning of a locked bucket
    /// cannot be suspended, WORM never goes away.
    pub(crate) async fn change_bucket_config(
        &self,
        bucket: &BucketName,
        change: BucketChange,
    ) -> ObjectResult<()> {
        if let BucketChange::Lifecycle(Some(l)) = &change {
            l.validate()?;
        }
        if let BucketChange::ObjectLock(Some(d)) = &change {
            d.validate()?;
        }
        self.update_bucket_meta(bucket, move |m| {
            let c = &mut m.config;
            match &change {
                BucketChange::Versioning(v) => {
                    if c.object_lock && *v != Versioning::Enabled {
                        return Err(ObjectError::InvalidBucketState {
                            message: "versioning cannot be suspended on a bucket with object lock"
                                .into(),
                        });
                    }
                    if *v == Versioning::Unversioned {
                        return Err(ObjectError::MalformedXml {
                            message: "versioning status must be Enabled or Suspended".into(),
                        });
                    }
                    c.versioning = *v;
                }
                BucketChange::ObjectLock(d) => {
                    if !c.object_lock && c.versioning != Versioning::Enabled {
                        return Err(ObjectError::InvalidBucketState {
                            message: "object lock can be enabled only on a bucket with versioning enabled"
                                .into(),
                        });
                    }
                    c.object_lock = true;
                    c.default_retention = *d;
                }
                BucketChange::Worm => c.worm = true,
                BucketChange::Tags(t) => c.tags = t.clone(),
                BucketChange::Lifecycle(l) => c.lifecycle = l.clone(),
                BucketChange::Policy(p) => c.policy = p.clone(),
                BucketChange::Acl(a) => c.acl = a.clone(),
                BucketChange::PublicAccessBlock(b) => c.public_access_block = *b,
                BucketChange::Ownership(o) => c.ownership = *o,
                BucketChange::Cors(r) => c.cors = r.clone(),
                BucketChange::Notification(n) => c.notification = n.clone(),
                BucketChange::Replication(r) => c.replication = r.clone(),
            }
            Ok(())
        })
        .await
    }

    /// Read-modify-write of the bucket's record on every drive, under the
    /// bucket's lock; needs a write quorum.
    async fn update_bucket_meta(
        &self,
        bucket: &BucketName,
        edit: impl Fn(&mut BucketMeta) -> ObjectResult<()> + Send + Sync + 'static,
    ) -> ObjectResult<()> {
        self.check_bucket(bucket).await?;
        let _g = self.locks.write(bucket.as_str(), "").await?;
        // judge the change against the quorum's view, not one drive's
        let mut current = self.bucket_meta(bucket).await?;
        edit(&mut current)?;
        let updated = now_nanos();
        current.updated = updated;
        let b = bucket.to_string();
        let next = current.clone();
        let res = self
            .on_drives(move |d| -> Result<(), DriveError> {
                d.check_online()?;
                let mut m = next.clone();
                if m.created == 0 {
                    m.created = read_bucket_meta(d, &b).map_or(updated, |o| o.created);
                }
                let body =
                    serde_json::to_vec(&m).map_err(|e| DriveError::Io(std::io::Error::other(e)))?;
                d.write_atomic(&d.bucket_config_file(&b)?, &body)?;
                Ok(())
            })
            .await;
        let ok = res.iter().filter(|r| r.is_ok()).count();
        self.bucket_changed(bucket.as_str());
        let (_, wq) = self.default_quorums();
        if ok < wq {
            return Err(self.write_quorum_error(wq, ok));
        }
        Ok(())
    }
}
