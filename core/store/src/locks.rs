//! Per-object locks: a fixed table of striped reader-writer locks keyed by
//! a hash of bucket/key. Commits of one object are serialized so shards of
//! two writers never mix; readers hold the lock only while picking a
//! version. No operation holds two locks, so stripes cannot deadlock.

use std::sync::Arc;

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

const STRIPES: usize = 4096;

pub struct LockTable {
    stripes: Vec<Arc<RwLock<()>>>,
}

impl Default for LockTable {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Arc::new(RwLock::new(()))).collect(),
        }
    }
}

impl LockTable {
    fn stripe(&self, bucket: &str, key: &str) -> Arc<RwLock<()>> {
        let h = crate::bitrot::hash64(format!("{bucket}/{key}").as_bytes());
        self.stripes[(h % STRIPES as u64) as usize].clone()
    }

    pub async fn read(&self, bucket: &str, key: &str) -> OwnedRwLockReadGuard<()> {
        self.stripe(bucket, key).read_owned().await
    }

    pub async fn write(&self, bucket: &str, key: &str) -> OwnedRwLockWriteGuard<()> {
        self.stripe(bucket, key).write_owned().await
    }
}
