//! Replication in the erasure set (issue 22): the status a new version
//! starts with (PENDING when a rule of its bucket wants it, REPLICA when
//! it is a copy from another site), what a replica keeps of its source
//! (version id, mod time), and the status update the replication service
//! makes once a copy landed or failed. The task itself rides the outbox
//! (outbox.rs, `RecordKind::Replication`), written with the commit.

use cairn_api::replication::{ReplicaOf, ReplicationStatus};
use cairn_api::{BucketConfig, BucketName, ObjectError, ObjectKey, ObjectResult, PutOptions, Tags};

use crate::set::{ErasureSet, Want, now_nanos};

/// The replication status of a new version of `key` with `tags`.
pub(crate) fn new_status(
    cfg: &BucketConfig,
    key: &ObjectKey,
    tags: &Tags,
    replica: bool,
) -> Option<ReplicationStatus> {
    if replica {
        return Some(ReplicationStatus::Replica);
    }
    cfg.replication
        .as_ref()
        .filter(|r| r.wants(key.as_str(), tags))
        .map(|_| ReplicationStatus::Pending)
}

/// A replica needs a versioned bucket to keep its source's version id.
pub(crate) fn check_replica_target(cfg: &BucketConfig) -> ObjectResult<()> {
    if cfg.versioning.keeps_versions() {
        Ok(())
    } else {
        Err(ObjectError::InvalidRequest {
            message: "replication needs versioning enabled on the destination bucket".into(),
        })
    }
}

/// The mod time of a new version: its source's for a replica, else now.
pub(crate) fn mod_time(opts: &PutOptions) -> i128 {
    opts.replica
        .as_ref()
        .and_then(|r| r.mod_time)
        .unwrap_or_else(now_nanos)
}

/// The delete marker a delete makes: its id, and the source marker when
/// it is a replica.
#[derive(Debug, Clone)]
pub(crate) struct Marker<'a> {
    pub(crate) id: Option<String>,
    pub(crate) replica: Option<&'a ReplicaOf>,
}

impl ErasureSet {
    /// Records `status` on a version (its record rewritten under the
    /// object's write lock; mod time, data and attributes kept; no
    /// event). A REPLICA keeps its status; a version gone is no error.
    pub(crate) async fn set_replication_status_impl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: Option<String>,
        status: ReplicationStatus,
    ) -> ObjectResult<()> {
        let _g = self.locks.write(bucket.as_str(), key.as_str()).await?;
        let version = match self
            .read_version(bucket, key, false, Want::Id(version_id))
            .await
        {
            Ok((v, _)) => v,
            Err(ObjectError::NoSuchKey { .. } | ObjectError::NoSuchVersion { .. }) => {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let now = version.attrs.replication;
        if now == Some(status) || now == Some(ReplicationStatus::Replica) {
            return Ok(());
        }
        let mut template = version.clone();
        template.attrs.replication = Some(status);
        template.revision = version.revision + 1;
        self.rewrite_version(bucket, key, &version, &template).await
    }
}
