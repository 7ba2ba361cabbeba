//! The lifecycle pass: applies each bucket's rules to its versions and
//! uploads. Run by the scanner every cycle and on demand (admin API). It
//! judges ages by the set's clock, and removes versions through the same
//! delete path as clients, so a locked version is never removed (it is
//! counted as skipped) and a WORM bucket is left alone.

use std::collections::BTreeMap;

use cairn_api::admin::LifecycleSummary;
use cairn_api::lifecycle::days_passed;
use cairn_api::{
    BucketName, DeleteOptions, Lifecycle, ListUploadsOptions, ListVersionsOptions, ObjectError,
    ObjectInfo, ObjectKey, ObjectResult, Versioning,
};
use time::OffsetDateTime;

use crate::set::ErasureSet;

impl ErasureSet {
    /// One pass over every bucket with lifecycle rules.
    pub async fn run_lifecycle(&self) -> ObjectResult<LifecycleSummary> {
        let mut sum = LifecycleSummary::default();
        let now = self.clock.now();
        for b in self.list_buckets_impl().await? {
            let Ok(bucket) = BucketName::new(b.name) else {
                continue;
            };
            let cfg = self.bucket_config(&bucket).await?;
            let Some(rules) = cfg.lifecycle.filter(|_| !cfg.worm) else {
                continue;
            };
            sum.buckets += 1;
            self.lifecycle_versions(&bucket, &rules, cfg.versioning, now, &mut sum)
                .await?;
            self.lifecycle_uploads(&bucket, &rules, now, &mut sum)
                .await?;
        }
        if sum != LifecycleSummary::default() {
            tracing::info!(?sum, "lifecycle pass");
        }
        Ok(sum)
    }

    async fn lifecycle_versions(
        &self,
        bucket: &BucketName,
        rules: &Lifecycle,
        versioning: Versioning,
        now: OffsetDateTime,
        sum: &mut LifecycleSummary,
    ) -> ObjectResult<()> {
        // the listing is taken first, then acted on: deletes never shift
        // the pages being read
        let mut by_key: BTreeMap<String, Vec<ObjectInfo>> = BTreeMap::new();
        let (mut km, mut vm) = (None, None);
        loop {
            let page = self
                .list_object_versions_impl(
                    bucket,
                    ListVersionsOptions {
                        key_marker: km,
                        version_id_marker: vm,
                        max_keys: 1000,
                        ..Default::default()
                    },
                )
                .await?;
            for e in page.versions {
                by_key.entry(e.info.key.clone()).or_default().push(e.info);
            }
            if !page.is_truncated {
                break;
            }
            (km, vm) = (page.next_key_marker, page.next_version_id_marker);
        }
        for (key, versions) in by_key {
            let Ok(k) = ObjectKey::new(key) else { continue };
            self.lifecycle_key(bucket, &k, versions, rules, versioning, now, sum)
                .await?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn lifecycle_key(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        versions: Vec<ObjectInfo>,
        rules: &Lifecycle,
        versioning: Versioning,
        now: OffsetDateTime,
        sum: &mut LifecycleSummary,
    ) -> ObjectResult<()> {
        let Some(cur) = versions.first().cloned() else {
            return Ok(());
        };
        // the current version
        let expire_current = !cur.attrs.delete_marker
            && rules.rules.iter().any(|r| {
                r.selects(key.as_str(), &cur.attrs.tags)
                    && r.current_expired(cur.last_modified, now)
            });
        if expire_current {
            match self
                .delete_object_with_impl(bucket, key, expiry(None))
                .await
            {
                Ok(_) => sum.expired_current += 1,
                Err(ObjectError::ObjectLocked { .. }) => sum.skipped_locked += 1,
                Err(e) => return Err(e),
            }
            if versioning == Versioning::Unversioned {
                return Ok(());
            }
        }
        // noncurrent versions: each became noncurrent when the next newer
        // one was written; the newest `newer_noncurrent` are kept anyway
        let mut removed = vec![false; versions.len()];
        for r in &rules.rules {
            if r.noncurrent_days.is_none() && r.newer_noncurrent.is_none() {
                continue;
            }
            let keep = r.newer_noncurrent.unwrap_or(0) as usize;
            let days = r.noncurrent_days.unwrap_or(0);
            for (i, (newer, v)) in versions.iter().zip(versions.iter().skip(1)).enumerate() {
                let i = i + 1;
                // noncurrent since the next newer version was written
                let old_enough = days_passed(newer.last_modified, days, now);
                if removed.get(i).copied().unwrap_or(true)
                    || i - 1 < keep
                    || !old_enough
                    || !r.selects(key.as_str(), &v.attrs.tags)
                {
                    continue;
                }
                let opts = expiry(Some(v.version_id.clone()));
                match self.delete_object_with_impl(bucket, key, opts).await {
                    Ok(_) => {
                        if let Some(r) = removed.get_mut(i) {
                            *r = true;
                        }
                        if v.attrs.delete_marker {
                            sum.removed_delete_markers += 1;
                        } else {
                            sum.removed_noncurrent += 1;
                        }
                    }
                    Err(ObjectError::ObjectLocked { .. }) => sum.skipped_locked += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        // a delete marker with nothing behind it
        let left = removed.iter().filter(|r| !**r).count();
        if left == 1
            && cur.attrs.delete_marker
            && !expire_current
            && rules
                .rules
                .iter()
                .any(|r| r.expired_delete_marker && r.selects(key.as_str(), &Default::default()))
        {
            let opts = expiry(Some(cur.version_id.clone()));
            self.delete_object_with_impl(bucket, key, opts).await?;
            sum.removed_delete_markers += 1;
        }
        Ok(())
    }

    async fn lifecycle_uploads(
        &self,
        bucket: &BucketName,
        rules: &Lifecycle,
        now: OffsetDateTime,
        sum: &mut LifecycleSummary,
    ) -> ObjectResult<()> {
        if rules.rules.iter().all(|r| r.abort_multipart_days.is_none()) {
            return Ok(());
        }
        let page = self
            .list_uploads_impl(
                bucket,
                ListUploadsOptions {
                    max_uploads: 10_000,
                    ..Default::default()
                },
            )
            .await?;
        for u in page.uploads {
            let due = rules.rules.iter().any(|r| {
                r.selects(&u.key, &Default::default())
                    && r.abort_multipart_days
                        .is_some_and(|d| days_passed(u.initiated, d, now))
            });
            if !due {
                continue;
            }
            let Ok(k) = ObjectKey::new(u.key.clone()) else {
                continue;
            };
            match self.abort_impl(bucket, &k, &u.upload_id).await {
                Ok(()) => sum.aborted_uploads += 1,
                Err(ObjectError::NoSuchUpload { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A lifecycle expiry of the key's current view (None) or of one version.
fn expiry(version_id: Option<Option<String>>) -> DeleteOptions {
    DeleteOptions {
        version_id,
        lifecycle: true,
        ..Default::default()
    }
}
