//! Per-object locks. On one node: a fixed table of striped reader-writer
//! locks keyed by a hash of bucket/key. Commits of one object are
//! serialized so shards of two writers never mix; readers hold the lock
//! only while picking a version. Only rename holds two, taken in stripe
//! order, so stripes cannot deadlock.
//!
//! In a cluster the set also takes the object's lock from its drives'
//! lockers ([`ClusterLocks`], served by the nodes that hold the drives),
//! after the node's own stripe: requests of one node queue on the node,
//! and one node's writer at a time asks the cluster. A write lock carries
//! a fence (generation) that commits record and drives check
//! (`DriveIo::write_record`): a writer paused past its lock's expiry
//! cannot commit over a version a newer holder wrote.

use std::sync::Arc;

use async_trait::async_trait;
use cairn_api::error::QuorumOp;
use cairn_api::{ObjectError, ObjectResult};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

const STRIPES: usize = 4096;

/// A shared (read) or exclusive (write) lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Read,
    Write,
}

/// Why a cluster lock was not granted.
#[derive(Debug, thiserror::Error)]
pub enum LockFailure {
    /// Fewer lockers answered than the quorum needs (nodes down or cut off).
    #[error("{got} of the {needed} lockers needed answered")]
    Unreachable { needed: usize, got: usize },
    /// Other holders kept the lock past the bounded retries.
    #[error("the lock stayed held by others ({needed} lockers needed, {got} granted)")]
    Busy { needed: usize, got: usize },
}

/// A lock held in the cluster; dropping it releases it.
pub trait ClusterLock: Send + Sync {
    /// The lock's generation: above every generation any earlier holder
    /// of the same object's write lock had (0 for read locks).
    fn fence(&self) -> u64;
}

/// One erasure set's lockers (one per drive of the set).
#[async_trait]
pub trait ClusterLocks: Send + Sync {
    /// Takes `resource`'s lock (a write lock from more than half the
    /// lockers, a read lock from enough that no write lock can be held
    /// meanwhile), retrying a bounded time while others hold it.
    async fn lock(
        &self,
        resource: &str,
        kind: LockKind,
    ) -> Result<Box<dyn ClusterLock>, LockFailure>;
}

/// Gives each erasure set (by its drives as configured) its lockers.
#[derive(Clone)]
pub struct LocksFor(Arc<LocksForFn>);

type LocksForFn = dyn Fn(&[std::path::PathBuf]) -> Arc<dyn ClusterLocks> + Send + Sync;

impl LocksFor {
    pub fn new(
        f: impl Fn(&[std::path::PathBuf]) -> Arc<dyn ClusterLocks> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(f))
    }

    pub fn for_set(&self, drives: &[std::path::PathBuf]) -> Arc<dyn ClusterLocks> {
        (self.0)(drives)
    }
}

impl std::fmt::Debug for LocksFor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocksFor")
    }
}

pub struct LockTable {
    stripes: Vec<Arc<RwLock<()>>>,
    /// Conditional writes under way (a second one of a key is refused
    /// with `ConditionalRequestConflict`); their preconditions are checked
    /// under the object's write lock, with the commit.
    pub in_flight: cairn_api::conditional::InFlight,
    /// The set's lockers in a cluster.
    pub(crate) cluster: Option<Arc<dyn ClusterLocks>>,
}

impl Default for LockTable {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Arc::new(RwLock::new(()))).collect(),
            in_flight: Default::default(),
            cluster: None,
        }
    }
}

/// An object's read lock.
pub struct ReadGuard {
    _local: OwnedRwLockReadGuard<()>,
    _cluster: Option<Box<dyn ClusterLock>>,
}

/// An object's write lock (or two objects', for a rename).
pub struct WriteGuard {
    _local: Vec<OwnedRwLockWriteGuard<()>>,
    cluster: Vec<Box<dyn ClusterLock>>,
}

impl WriteGuard {
    /// The generation a commit under this lock records (0 on one node:
    /// nothing to fence).
    pub fn fence(&self) -> u64 {
        self.cluster.iter().map(|c| c.fence()).max().unwrap_or(0)
    }
}

fn refused(kind: LockKind, f: LockFailure) -> ObjectError {
    let op = match kind {
        LockKind::Read => QuorumOp::Read,
        LockKind::Write => QuorumOp::Write,
    };
    tracing::info!(error = %f, ?kind, "cluster lock not granted");
    let (LockFailure::Unreachable { needed, got } | LockFailure::Busy { needed, got }) = f;
    ObjectError::Unavailable { op, needed, got }
}

/// The name an object's lock has among the lockers.
fn resource(bucket: &str, key: &str) -> String {
    format!("{bucket}/{key}")
}

impl LockTable {
    fn index(bucket: &str, key: &str) -> usize {
        let h = crate::bitrot::hash64(resource(bucket, key).as_bytes());
        (h % STRIPES as u64) as usize
    }

    // index() is taken modulo the stripe count
    #[allow(clippy::indexing_slicing)]
    fn stripe(&self, bucket: &str, key: &str) -> Arc<RwLock<()>> {
        self.stripes[Self::index(bucket, key)].clone()
    }

    async fn cluster_lock(
        &self,
        bucket: &str,
        key: &str,
        kind: LockKind,
    ) -> ObjectResult<Option<Box<dyn ClusterLock>>> {
        match &self.cluster {
            None => Ok(None),
            Some(c) => c
                .lock(&resource(bucket, key), kind)
                .await
                .map(Some)
                .map_err(|f| refused(kind, f)),
        }
    }

    /// Write locks on two objects (rename), taken in stripe order so two
    /// renames in opposite directions cannot deadlock; one lock if both
    /// keys share a stripe.
    // both indices come from index(), modulo the stripe count
    #[allow(clippy::indexing_slicing)]
    pub async fn write_two(&self, bucket: &str, a: &str, b: &str) -> ObjectResult<WriteGuard> {
        let (ia, ib) = (Self::index(bucket, a), Self::index(bucket, b));
        let mut order = vec![ia.min(ib)];
        if ia != ib {
            order.push(ia.max(ib));
        }
        let mut local = Vec::with_capacity(2);
        for i in order {
            local.push(self.stripes[i].clone().write_owned().await);
        }
        // in the cluster, in name order: two nodes renaming in opposite
        // directions ask for the two locks in the same order
        let mut keys = vec![a.min(b)];
        if a != b {
            keys.push(a.max(b));
        }
        let mut cluster = Vec::with_capacity(2);
        for k in keys {
            if let Some(c) = self.cluster_lock(bucket, k, LockKind::Write).await? {
                cluster.push(c);
            }
        }
        Ok(WriteGuard {
            _local: local,
            cluster,
        })
    }

    pub async fn read(&self, bucket: &str, key: &str) -> ObjectResult<ReadGuard> {
        let local = self.stripe(bucket, key).read_owned().await;
        Ok(ReadGuard {
            _local: local,
            _cluster: self.cluster_lock(bucket, key, LockKind::Read).await?,
        })
    }

    pub async fn write(&self, bucket: &str, key: &str) -> ObjectResult<WriteGuard> {
        let local = self.stripe(bucket, key).write_owned().await;
        Ok(WriteGuard {
            _local: vec![local],
            cluster: self
                .cluster_lock(bucket, key, LockKind::Write)
                .await?
                .into_iter()
                .collect(),
        })
    }
}
