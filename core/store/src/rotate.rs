//! KMS administration on the set: status, new keys, and rotation. A
//! rotation asks the KMS for a new version of a master key, then walks
//! every object and re-wraps the sealed data key of those sealed under
//! that master key: one small record per object changes, no data.

use cairn_api::admin::{KmsInfo, RotateSummary};
use cairn_api::{BucketName, ListOptions, ObjectError, ObjectKey, ObjectResult};

use crate::set::ErasureSet;

impl ErasureSet {
    pub(crate) fn kms_or_err(&self) -> ObjectResult<std::sync::Arc<dyn crate::kms::Kms>> {
        self.sse_config().kms.ok_or(ObjectError::KmsNotConfigured)
    }

    pub(crate) async fn kms_info(&self) -> ObjectResult<KmsInfo> {
        let s = self.kms_or_err()?.status().await?;
        Ok(KmsInfo {
            backend: s.backend,
            location: s.location,
            default_key: s.default_key,
            keys: s
                .keys
                .into_iter()
                .map(|k| (k.name, k.latest_version))
                .collect(),
        })
    }

    pub(crate) async fn kms_new_key(&self, name: &str) -> ObjectResult<()> {
        Ok(self.kms_or_err()?.create_key(name).await?)
    }

    pub(crate) async fn rotate_kms_key(&self, name: Option<&str>) -> ObjectResult<RotateSummary> {
        let kms = self.kms_or_err()?;
        let key = name.unwrap_or(kms.default_key()).to_owned();
        let new_version = kms.rotate_key(&key).await?;
        tracing::info!(key, new_version, "KMS key rotated; re-wrapping object keys");
        let mut sum = RotateSummary {
            key: key.clone(),
            new_version,
            ..Default::default()
        };
        self.reseal_objects(&key, &mut sum).await?;
        Ok(sum)
    }

    /// Re-wraps every object key of this set sealed under `key` with its
    /// latest version (after a rotation), counting into `sum`.
    pub(crate) async fn reseal_objects(
        &self,
        key: &str,
        sum: &mut RotateSummary,
    ) -> ObjectResult<()> {
        let key = key.to_owned();
        for b in self.list_buckets_impl().await? {
            let Ok(bucket) = BucketName::new(b.name) else {
                continue;
            };
            let mut after = None;
            loop {
                let page = self
                    .list_keys(
                        &bucket,
                        ListOptions {
                            start_after: after.clone(),
                            max_keys: 1000,
                            ..Default::default()
                        },
                    )
                    .await?;
                for o in &page.objects {
                    let Ok(k) = ObjectKey::new(o.key.clone()) else {
                        continue;
                    };
                    match self.rewrap_object(&bucket, &k, &key).await {
                        Ok(true) => sum.resealed += 1,
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(bucket = %bucket, key = %k, error = %e, "re-wrap failed");
                            sum.failed += 1;
                        }
                    }
                }
                if !page.is_truncated {
                    break;
                }
                after = page.next_marker.clone();
            }
        }
        Ok(())
    }

    /// Re-wraps one object's data key if it is sealed under `kms_key`.
    async fn rewrap_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        kms_key: &str,
    ) -> ObjectResult<bool> {
        let _g = self.locks.write(bucket.as_str(), key.as_str()).await?;
        let (version, _) = self
            .read_version(bucket, key, false, crate::set::Want::Latest)
            .await?;
        let Some(sse) = &version.sse else {
            return Ok(false);
        };
        let Some(new_sse) = self.sse_config().rewrap(sse, kms_key).await? else {
            return Ok(false);
        };
        let mut template = version.clone();
        template.sse = Some(new_sse);
        self.rewrite_version(bucket, key, &version, &template)
            .await?;
        Ok(true)
    }
}
