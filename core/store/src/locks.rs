//! Per-object locks: a fixed table of striped reader-writer locks keyed by
//! a hash of bucket/key. Commits of one object are serialized so shards of
//! two writers never mix; readers hold the lock only while picking a
//! version. Only rename holds two, taken in stripe order, so stripes cannot
//! deadlock.

use std::sync::Arc;

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

const STRIPES: usize = 4096;

pub struct LockTable {
    stripes: Vec<Arc<RwLock<()>>>,
    /// Conditional writes under way (a second one of a key is refused
    /// with `ConditionalRequestConflict`); their preconditions are checked
    /// under the object's write lock, with the commit.
    pub in_flight: cairn_api::conditional::InFlight,
}

impl Default for LockTable {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Arc::new(RwLock::new(()))).collect(),
            in_flight: Default::default(),
        }
    }
}

impl LockTable {
    fn index(bucket: &str, key: &str) -> usize {
        let h = crate::bitrot::hash64(format!("{bucket}/{key}").as_bytes());
        (h % STRIPES as u64) as usize
    }

    // index() is taken modulo the stripe count
    #[allow(clippy::indexing_slicing)]
    fn stripe(&self, bucket: &str, key: &str) -> Arc<RwLock<()>> {
        self.stripes[Self::index(bucket, key)].clone()
    }

    /// Write locks on two objects (rename), taken in stripe order so two
    /// renames in opposite directions cannot deadlock; one lock if both
    /// keys share a stripe.
    // both indices come from index(), modulo the stripe count
    #[allow(clippy::indexing_slicing)]
    pub async fn write_two(
        &self,
        bucket: &str,
        a: &str,
        b: &str,
    ) -> Vec<OwnedRwLockWriteGuard<()>> {
        let (ia, ib) = (Self::index(bucket, a), Self::index(bucket, b));
        let mut order = vec![ia.min(ib)];
        if ia != ib {
            order.push(ia.max(ib));
        }
        let mut guards = Vec::with_capacity(2);
        for i in order {
            guards.push(self.stripes[i].clone().write_owned().await);
        }
        guards
    }

    pub async fn read(&self, bucket: &str, key: &str) -> OwnedRwLockReadGuard<()> {
        self.stripe(bucket, key).read_owned().await
    }

    pub async fn write(&self, bucket: &str, key: &str) -> OwnedRwLockWriteGuard<()> {
        self.stripe(bucket, key).write_owned().await
    }
}
