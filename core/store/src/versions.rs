//! Versioning, object lock and WORM in the erasure set: what a new
//! version gets (id, retention, tags), deletes that leave delete markers
//! or remove one version, and changes to a version's attributes.
//! Every path that replaces or removes a version checks the lock here.

use std::sync::atomic::{AtomicI64, Ordering};

use cairn_api::lock::check_retention_change;
use cairn_api::notify::EventName::{self, DeleteMarkerCreated};
use cairn_api::{
    BucketName, DeleteOptions, DeleteOutcome, ObjectError, ObjectInfo, ObjectKey, ObjectResult,
    Retention, Tags, VersionAttrs, VersionChange,
};
use time::OffsetDateTime;

use cairn_api::seg;

use crate::drive::{Drive, DriveError};
use crate::meta::{META_FILE, ObjectMeta, VersionMeta};
use crate::outbox::{Outcome, Raised};
use crate::set::{ErasureSet, Lookup, Want, count, erasure_info, now_nanos, write_quorum};

/// The time retention and lifecycle are judged by: the system clock plus
/// an offset that only the process's start flags set (tests use it to run
/// lifecycle passes days ahead; nothing over the network can move it).
#[derive(Debug, Default)]
pub struct Clock {
    offset_secs: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::seconds(self.offset_secs.load(Ordering::Relaxed))
    }
}

/// A fresh version id (opaque to clients, unique per version).
pub(crate) fn new_version_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// What a write asks its new version to carry.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewAttrs {
    pub(crate) tags: Tags,
    pub(crate) retention: Option<Retention>,
    pub(crate) legal_hold: bool,
    pub(crate) acl: Option<cairn_api::acl::Acl>,
    /// The version is a replica of this source version.
    pub(crate) replica: Option<cairn_api::replication::ReplicaOf>,
}

impl NewAttrs {
    pub(crate) fn from_put(opts: &cairn_api::PutOptions) -> Self {
        Self {
            tags: opts.tags.clone(),
            retention: opts.retention,
            legal_hold: opts.legal_hold,
            acl: opts.acl.clone(),
            replica: opts.replica.clone(),
        }
    }
}

/// A version to remove, and how.
struct Removal {
    /// The version (None: the null version).
    id: Option<String>,
    bypass: bool,
    /// What it raises (s3:ObjectRemoved:Delete, or the lifecycle's).
    event: EventName,
}

impl ErasureSet {
    /// Moves the clock retention and lifecycle see (start flag, tests).
    pub fn set_clock_offset(&self, secs: i64) {
        self.clock.offset_secs.store(secs, Ordering::Relaxed);
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Gives a new version its id and attributes, and refuses the write
    /// if it would replace what WORM or a lock protects. The caller holds
    /// the object's write lock and commits `template` next.
    pub(crate) async fn stamp_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        template: &mut VersionMeta,
        req: NewAttrs,
    ) -> ObjectResult<()> {
        let cfg = self.bucket_config(bucket).await?;
        let now = self.clock.now();
        if (req.retention.is_some() || req.legal_hold) && !cfg.object_lock {
            return Err(ObjectError::InvalidRequest {
                message: "the bucket has no object lock configuration".into(),
            });
        }
        if let Some(r) = &req.retention
            && !r.active(now)
        {
            return Err(ObjectError::InvalidArgument {
                message: "the retain-until date must be in the future".into(),
            });
        }
        if cfg.worm && self.current_exists(bucket, key).await? {
            return Err(ObjectError::Worm {
                bucket: bucket.to_string(),
            });
        }
        if let Some(r) = &req.replica {
            crate::replicate::check_replica_target(&cfg)?;
            template.version_id = Some(r.version_id.clone());
        } else if cfg.versioning.keeps_versions() {
            template.version_id = Some(new_version_id());
        } else {
            template.version_id = None;
            // the write replaces the null version: it must not be locked
            self.check_replaceable(bucket, key, &cfg, None, false, now)
                .await?;
        }
        let default = cfg
            .default_retention
            .filter(|_| cfg.object_lock)
            .map(|d| d.retention_from(now));
        let replication = crate::replicate::new_status(&cfg, key, &req.tags, req.replica.is_some());
        template.attrs = VersionAttrs {
            delete_marker: false,
            retention: req.retention.or(default),
            legal_hold: req.legal_hold,
            tags: req.tags,
            acl: req.acl,
            replication,
        };
        Ok(())
    }

    /// Judges a conditional write's precondition against the current
    /// version (a delete marker counts as no object). The caller holds
    /// the object's write lock and commits next.
    pub(crate) async fn check_precondition(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        precondition: Option<&cairn_api::WritePrecondition>,
    ) -> ObjectResult<()> {
        let Some(p) = precondition else {
            return Ok(());
        };
        let current = match self.read_version(bucket, key, false, Want::Latest).await {
            Ok((v, _)) if !v.attrs.delete_marker => Some(v.etag),
            Ok(_) | Err(ObjectError::NoSuchKey { .. }) => None,
            Err(e) => return Err(e),
        };
        p.check(current.as_deref(), bucket, key)
    }

    /// Does the key have a current version that is not a delete marker?
    pub(crate) async fn current_exists(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> ObjectResult<bool> {
        match self.read_version(bucket, key, false, Want::Latest).await {
            Ok((v, _)) => Ok(!v.attrs.delete_marker),
            Err(ObjectError::NoSuchKey { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Refuses when version `id` exists and its lock forbids removing it.
    /// Only a bucket with object lock can hold a locked version (retention
    /// and legal hold are refused elsewhere, and lock is never switched
    /// off), so other buckets skip the read: it is on every PUT's path.
    async fn check_replaceable(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        cfg: &cairn_api::BucketConfig,
        id: Option<String>,
        bypass: bool,
        now: OffsetDateTime,
    ) -> ObjectResult<()> {
        if !cfg.object_lock {
            return Ok(());
        }
        match self.read_version(bucket, key, false, Want::Id(id)).await {
            Ok((v, _)) => locked_error(bucket, key, v.attrs.check_delete(now, bypass)),
            Err(ObjectError::NoSuchVersion { .. } | ObjectError::NoSuchKey { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Refuses changing the key's current version through a file front:
    /// WORM, or a lock on that version (file fronts have no bypass).
    pub(crate) async fn check_current_mutable(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> ObjectResult<()> {
        let cfg = self.bucket_config(bucket).await?;
        if !cfg.worm && !cfg.object_lock {
            // nothing can be locked here: spare the read
            return Ok(());
        }
        if cfg.worm {
            return match self.current_exists(bucket, key).await? {
                true => Err(ObjectError::Worm {
                    bucket: bucket.to_string(),
                }),
                false => Ok(()),
            };
        }
        match self.read_version(bucket, key, false, Want::Latest).await {
            Ok((v, _)) => locked_error(bucket, key, v.attrs.check_delete(self.clock.now(), false)),
            Err(ObjectError::NoSuchKey { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn delete_object_with_impl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: DeleteOptions,
    ) -> ObjectResult<DeleteOutcome> {
        let cfg = self.bucket_config(bucket).await?;
        let g = self.locks.write(bucket.as_str(), key.as_str()).await?;
        let now = self.clock.now();
        // a lifecycle expiry raises s3:LifecycleExpiration:* instead
        let cause = |e: EventName| if opts.lifecycle { e.by_lifecycle() } else { e };
        if let Some(id) = opts.version_id {
            if cfg.worm {
                return Err(ObjectError::Worm {
                    bucket: bucket.to_string(),
                });
            }
            let removed = Removal {
                id,
                bypass: opts.bypass_governance,
                event: cause(EventName::Delete),
            };
            return self.delete_version(bucket, key, removed, now).await;
        }
        if cfg.worm && self.current_exists(bucket, key).await? {
            return Err(ObjectError::Worm {
                bucket: bucket.to_string(),
            });
        }
        if !cfg.versioning.marks_deletes() {
            let delete = self.delete_all_versions(bucket, key);
            match self
                .with_event(bucket, key, Raised::removal(None).by(cause), true, delete)
                .await
            {
                Ok(()) | Err(ObjectError::NoSuchKey { .. }) => {}
                Err(e) => return Err(e),
            }
            return Ok(DeleteOutcome::default());
        }
        // versioned: a delete marker becomes the current version (in a
        // suspended bucket it is the null version, replacing that one)
        let marker_id = match &opts.replica {
            Some(r) => {
                crate::replicate::check_replica_target(&cfg)?;
                Some(r.version_id.clone())
            }
            None => cfg.versioning.keeps_versions().then(new_version_id),
        };
        if marker_id.is_none() {
            self.check_replaceable(bucket, key, &cfg, None, opts.bypass_governance, now)
                .await?;
        }
        self.commit_marker(
            bucket,
            key,
            crate::replicate::Marker {
                id: marker_id.clone(),
                replica: opts.replica.as_ref(),
            },
            cause(DeleteMarkerCreated),
            g.fence(),
        )
        .await?;
        Ok(DeleteOutcome {
            version_id: marker_id,
            delete_marker: true,
        })
    }

    /// Commits a delete marker as the key's newest version.
    async fn commit_marker(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        what: crate::replicate::Marker<'_>,
        event: EventName,
        fence: u64,
    ) -> ObjectResult<()> {
        let online = self.online_drives();
        let (k, m) = self.write_layout(Default::default(), online);
        let distribution = self.distribution(bucket.as_str(), key.as_str());
        let when = what
            .replica
            .and_then(|r| r.mod_time)
            .unwrap_or_else(now_nanos);
        let mut marker =
            VersionMeta::delete_marker(erasure_info(k, m, distribution.clone()), what.id, when);
        if what.replica.is_some() {
            marker.attrs.replication = Some(cairn_api::replication::ReplicationStatus::Replica);
        }
        let jobs = distribution
            .iter()
            .map(|&shard| {
                let mut v = marker.clone();
                v.erasure.index = shard;
                Some((ObjectMeta::single(v, Vec::new()), None))
            })
            .collect();
        let commit = self.commit(bucket, key, jobs, write_quorum(k, m), fence);
        self.with_event(bucket, key, Raised::of(event, &marker), true, commit)
            .await
    }

    /// Removes the key with every version (unversioned buckets).
    async fn delete_all_versions(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()> {
        let (b, k) = (bucket.to_string(), key.to_string());
        let res = self
            .on_drives(move |d| match d.delete_object(&b, &k) {
                Ok(true) => Lookup::Found(()),
                Ok(false) => Lookup::Missing,
                Err(_) => Lookup::Failed,
            })
            .await;
        self.changed(bucket.as_str(), key.as_str());
        let (found, missing) = count(&res);
        let (_, wq) = self.default_quorums();
        if found + missing < wq {
            return Err(self.write_quorum_error(wq, found + missing));
        }
        if found == 0 {
            // nothing was there: no event (the caller's answer is the same)
            return Err(ObjectError::no_such_key(bucket, key));
        }
        Ok(())
    }

    /// Removes one version (data and record) from every drive.
    async fn delete_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        removed: Removal,
        now: OffsetDateTime,
    ) -> ObjectResult<DeleteOutcome> {
        let Removal { id, bypass, event } = removed;
        let version = match self
            .read_version(bucket, key, false, Want::Id(id.clone()))
            .await
        {
            Ok((v, _)) => v,
            // deleting a version that is not there succeeds, as in S3
            Err(ObjectError::NoSuchVersion { .. } | ObjectError::NoSuchKey { .. }) => {
                return Ok(DeleteOutcome {
                    version_id: Some(
                        cairn_api::versioning::version_label(id.as_deref()).to_owned(),
                    ),
                    delete_marker: false,
                });
            }
            Err(e) => return Err(e),
        };
        locked_error(bucket, key, version.attrs.check_delete(now, bypass))?;
        // AWS names the removal of a marker a Delete too
        let noted = self
            .outbox_note(bucket, key, Raised::removal(id.clone()).by(|_| event), true)
            .await?;
        let (b, k, vid) = (bucket.to_string(), key.to_string(), id.clone());
        let res = self
            .on_drives(move |d| match d.remove_version(&b, &k, vid.as_deref()) {
                Ok(true) => Lookup::Found(()),
                Ok(false) => Lookup::Missing,
                Err(e) => {
                    tracing::warn!(drive = %d.root.display(), bucket = %b, key = %k, error = %e, "version delete failed on drive");
                    Lookup::Failed
                }
            })
            .await;
        self.changed(bucket.as_str(), key.as_str());
        let (found, missing) = count(&res);
        let wq = write_quorum(version.erasure.data, version.erasure.parity);
        let outcome = match found {
            0 => Outcome::NotDone,
            _ if found + missing < wq => Outcome::Unknown,
            _ => Outcome::Committed,
        };
        self.outbox_settle(noted, outcome).await;
        if found + missing < wq {
            return Err(self.write_quorum_error(wq, found + missing));
        }
        Ok(DeleteOutcome {
            version_id: Some(cairn_api::versioning::version_label(id.as_deref()).to_owned()),
            delete_marker: version.attrs.delete_marker,
        })
    }

    pub(crate) async fn update_version_impl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: Option<Option<String>>,
        change: VersionChange,
    ) -> ObjectResult<ObjectInfo> {
        let cfg = self.bucket_config(bucket).await?;
        if cfg.worm {
            return Err(ObjectError::Worm {
                bucket: bucket.to_string(),
            });
        }
        let needs_lock = !matches!(change, VersionChange::Tags(_) | VersionChange::Acl(_));
        if needs_lock && !cfg.object_lock {
            return Err(ObjectError::InvalidRequest {
                message: "the bucket has no object lock configuration".into(),
            });
        }
        let _g = self.locks.write(bucket.as_str(), key.as_str()).await?;
        let by_version = version_id.is_some();
        let (version, _) = self
            .read_version(bucket, key, false, Want::from_request(version_id))
            .await?;
        if version.attrs.delete_marker {
            return Err(ObjectError::DeleteMarker {
                bucket: bucket.to_string(),
                key: key.to_string(),
                version_id: version.version_id.clone(),
                by_version,
                last_modified: Some(version.last_modified()),
            });
        }
        let now = self.clock.now();
        let mut template = version.clone();
        // every change raises its event (replication carries each to the
        // targets)
        let event = match &change {
            VersionChange::Tags(t) if t.is_empty() => EventName::TaggingDelete,
            VersionChange::Tags(_) => EventName::TaggingPut,
            VersionChange::Acl(_) => EventName::AclPut,
            VersionChange::Retention { .. } => EventName::RetentionPut,
            VersionChange::LegalHold(_) => EventName::LegalHoldPut,
        };
        match change {
            VersionChange::Retention {
                retention,
                bypass_governance,
            } => {
                if let Some(r) = &retention
                    && !r.active(now)
                {
                    return Err(ObjectError::InvalidArgument {
                        message: "the retain-until date must be in the future".into(),
                    });
                }
                locked_error(
                    bucket,
                    key,
                    check_retention_change(
                        version.attrs.retention.as_ref(),
                        retention.as_ref(),
                        bypass_governance,
                        now,
                    ),
                )?;
                template.attrs.retention = retention;
            }
            VersionChange::LegalHold(on) => template.attrs.legal_hold = on,
            VersionChange::Tags(t) => template.attrs.tags = t,
            VersionChange::Acl(a) => template.attrs.acl = a,
        }
        template.revision = version.revision + 1;
        let rewrite = self.rewrite_version(bucket, key, &version, &template);
        self.with_event(bucket, key, Raised::of(event, &template), true, rewrite)
            .await?;
        Ok(template.to_info(bucket.as_str(), key.as_str()))
    }
}

pub(crate) fn locked_error(
    bucket: &BucketName,
    key: &ObjectKey,
    check: Result<(), &'static str>,
) -> ObjectResult<()> {
    check.map_err(|reason| ObjectError::ObjectLocked {
        bucket: bucket.to_string(),
        key: key.to_string(),
        reason,
    })
}

impl Drive {
    /// Removes one version's record and data from this drive. `Ok(false)`:
    /// the drive does not hold it.
    pub fn remove_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<bool, DriveError> {
        let Some(mut meta) = self.read_meta(bucket, key, true)? else {
            return Ok(false);
        };
        let dir = self.object_dir(bucket, key)?;
        let freed = match meta.position(version_id) {
            // the common case: a recent version, and the meta keeps others
            Some(pos) if meta.versions.len() > 1 => {
                let gone = meta.remove(pos);
                self.write_atomic(&dir.join(seg!(META_FILE)), &meta.encode()?)?;
                self.io().sync_dir(&dir)?;
                crate::drive::freed(self.io(), &dir, &Vec::from_iter(gone), &meta)
            }
            _ => {
                let mut all = crate::history::with_history(self.io(), &dir, meta, true)?;
                let Some(pos) = all.position(version_id) else {
                    return Ok(false);
                };
                if all.versions.len() == 1 {
                    return self.delete_object(bucket, key);
                }
                let gone = all.remove(pos);
                // every version is in `all`
                let freed = crate::extents::garbage(&dir, &Vec::from_iter(gone), &all.versions);
                self.write_versions(bucket, key, all, true)?;
                freed
            }
        };
        // only what no remaining version shares
        self.discard(freed);
        Ok(true)
    }
}

impl ErasureSet {
    /// A rename in a bucket with versions: the current version is copied
    /// to `dst` as a new version and `src` gets a delete marker, so the
    /// history of both keys stays whole.
    pub(crate) async fn rename_versioned(
        &self,
        bucket: &BucketName,
        src: &ObjectKey,
        dst: &ObjectKey,
        replace: bool,
    ) -> ObjectResult<ObjectInfo> {
        if !replace && self.current_exists(bucket, dst).await? {
            return Err(ObjectError::PreconditionFailed);
        }
        let info = cairn_api::layer::copy_via_stream(
            self,
            bucket,
            src,
            bucket,
            dst,
            cairn_api::CopyOptions {
                keep_encryption: true,
                ..Default::default()
            },
        )
        .await?;
        self.delete_object_with_impl(bucket, src, DeleteOptions::default())
            .await?;
        Ok(info)
    }
}
