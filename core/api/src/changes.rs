//! Change events: a store tells every front which objects changed, so a
//! front that caches (the file fronts' attribute and page caches) can drop
//! what another front made stale, at once instead of after a TTL. A
//! committed change that raised an event carries it, for listeners
//! (`GET /bucket?events=...`, MinIO's ListenBucketNotification).

use std::sync::Arc;

use crate::notify::OutboxRecord;

/// An object that was written, replaced, deleted or renamed (a rename is
/// two changes: the old key and the new one), or a bucket that was made,
/// removed or configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub bucket: String,
    /// Empty for the bucket itself.
    pub key: String,
    /// Heard from another node of the cluster: that node's store made it
    /// (a relay does not send it on, a front did not make it).
    pub from_peer: bool,
    /// The event the committed change raised (an event record without
    /// targets), for listeners; None for a bare change.
    pub event: Option<Arc<OutboxRecord>>,
}

impl Change {
    pub fn object(bucket: &str, key: &str) -> Self {
        Self {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            from_peer: false,
            event: None,
        }
    }

    /// The change `event` (an event record) is about, carrying it.
    pub fn with_event(event: OutboxRecord) -> Self {
        Self {
            bucket: event.bucket.clone(),
            key: event.key.clone(),
            from_peer: false,
            event: Some(Arc::new(event)),
        }
    }

    /// The bucket itself: made, removed, or its configuration changed.
    pub fn bucket(bucket: &str) -> Self {
        Self::object(bucket, "")
    }

    pub fn is_bucket(&self) -> bool {
        self.key.is_empty()
    }
}

/// How many changes a slow subscriber may fall behind before it misses
/// some (it then sees `Lagged` and should drop its caches).
pub const CHANGE_QUEUE: usize = 4096;

pub type ChangeReceiver = tokio::sync::broadcast::Receiver<Change>;
