//! Change events: a store tells every front which objects changed, so a
//! front that caches (the file fronts' attribute and page caches) can drop
//! what another front made stale, at once instead of after a TTL.

/// An object that was written, replaced, deleted or renamed (a rename is
/// two changes: the old key and the new one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub bucket: String,
    pub key: String,
}

/// How many changes a slow subscriber may fall behind before it misses
/// some (it then sees `Lagged` and should drop its caches).
pub const CHANGE_QUEUE: usize = 4096;

pub type ChangeReceiver = tokio::sync::broadcast::Receiver<Change>;
