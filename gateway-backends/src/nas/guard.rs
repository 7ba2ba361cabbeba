//! Serializes the commits of one key within this gateway process, so that a
//! conditional write's precondition (`If-Match`, `If-None-Match: *`) is
//! judged and its file placed in one step: no write of the key by this
//! gateway lands between the two. Programs writing the share directly are
//! not covered (the share has no lock they take).

use std::hash::{Hash as _, Hasher as _};
use std::sync::{Mutex, MutexGuard};

const STRIPES: usize = 64;

pub(crate) struct CommitLocks {
    stripes: Vec<Mutex<()>>,
}

impl Default for CommitLocks {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }
}

impl CommitLocks {
    /// The lock of `bucket/key`'s stripe; held on a blocking thread only.
    pub(crate) fn lock(&self, bucket: &str, key: &str) -> Option<MutexGuard<'_, ()>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (bucket, key).hash(&mut h);
        let i = (h.finish() % STRIPES as u64) as usize;
        self.stripes
            .get(i)
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
