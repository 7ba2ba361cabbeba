//! The heal queue: objects a read found damaged (or a drive lacking) wait
//! here for the background healer; each object is queued once at a time.
//!
//! The missed writes (MinIO's MRF list): objects a commit could not write
//! on every drive (a drive offline, a node down or partitioned away), by
//! the drives they missed. The drive monitor queues each for healing as
//! soon as every drive it missed answers again, so a drive or node that
//! comes back is healed of what it missed without waiting for the
//! scanner's next cycle. The list lives in this process (bounded); past
//! its bound, or after a restart, the scanner's cycle finds the rest.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use cairn_api::{BucketName, ObjectKey};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::set::ErasureSet;

/// Queues (bucket, key) for healing; the third argument says why.
pub(crate) type HealHook = Arc<dyn Fn(&str, &str, &str) + Send + Sync>;

pub(crate) struct HealQueue {
    tx: mpsc::UnboundedSender<(String, String)>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<(String, String)>>>,
    queued: Mutex<HashSet<(String, String)>>,
    /// Objects taken off the queue whose heal has not finished: counted in
    /// [`HealQueue::len`] so an empty queue means the healer is idle.
    healing: AtomicUsize,
}

impl Default for HealQueue {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
            queued: Mutex::new(HashSet::new()),
            healing: AtomicUsize::new(0),
        }
    }
}

/// At most this many objects are remembered as missed writes.
const MISSED_MAX: usize = 100_000;

/// Objects a commit missed drives of: (bucket, key) -> bit i set for drive i.
#[derive(Default)]
pub(crate) struct MissedWrites {
    objects: Mutex<HashMap<(String, String), u64>>,
    /// More were missed than remembered: every drive back means a full heal.
    overflowed: AtomicBool,
}

/// What the drives answering again make ready to heal.
pub(crate) struct MissedReady {
    pub objects: Vec<(String, String)>,
    /// The list overflowed and every drive answers: heal everything.
    pub everything: bool,
}

impl MissedWrites {
    /// Remembers that a commit of `bucket/key` missed the drives of `mask`.
    pub(crate) fn note(&self, bucket: &str, key: &str, mask: u64) {
        if mask == 0 {
            return;
        }
        let mut objects = self.objects.lock();
        let item = (bucket.to_owned(), key.to_owned());
        if let Some(m) = objects.get_mut(&item) {
            *m |= mask;
        } else if objects.len() < MISSED_MAX {
            objects.insert(item, mask);
        } else {
            self.overflowed.store(true, Relaxed);
        }
    }

    /// Takes the objects whose missed drives are all in `online`; `all`
    /// has a bit for each of the set's drives.
    pub(crate) fn ready(&self, online: u64, all: u64) -> MissedReady {
        let mut objects = self.objects.lock();
        let mut out = Vec::new();
        objects.retain(|item, mask| {
            let back = *mask & !online == 0;
            if back {
                out.push(item.clone());
            }
            !back
        });
        MissedReady {
            objects: out,
            everything: online & all == all && self.overflowed.swap(false, Relaxed),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.objects.lock().len()
    }
}

impl HealQueue {
    pub(crate) fn push(&self, bucket: &str, key: &str) -> bool {
        let item = (bucket.to_owned(), key.to_owned());
        if !self.queued.lock().insert(item.clone()) {
            return false;
        }
        self.tx.send(item).is_ok()
    }

    /// Objects queued or being healed.
    pub(crate) fn len(&self) -> usize {
        self.queued.lock().len() + self.healing.load(Relaxed)
    }
}

impl ErasureSet {
    /// Queues an object for the background healer.
    pub(crate) fn queue_heal(&self, bucket: &str, key: &str) {
        if self.heal_queue.push(bucket, key) {
            self.stats
                .heal_queue_len
                .store(self.heal_queue.len() as u64, Relaxed);
            tracing::debug!(bucket, key, "queued for healing");
        }
    }

    /// A callback for read pipelines: counts the bad shard and queues the
    /// object, from any thread.
    pub(crate) fn heal_hook(&self) -> HealHook {
        let q = self.heal_queue.clone();
        let stats = self.stats.clone();
        Arc::new(move |bucket: &str, key: &str, why: &str| {
            stats.shard_read_errors.fetch_add(1, Relaxed);
            if why.starts_with("bitrot") {
                stats.bitrot_errors.fetch_add(1, Relaxed);
            }
            if q.push(bucket, key) {
                stats.heal_queue_len.store(q.len() as u64, Relaxed);
            }
        })
    }

    /// Starts the healer that drains the queue, on a thread of its own
    /// (`background`). Call once per process.
    pub fn start_healer(self: &Arc<Self>) {
        let Some(mut rx) = self.heal_queue.rx.lock().take() else {
            return;
        };
        let set = Arc::downgrade(self);
        crate::background::spawn("healer", move || async move {
            while let Some((b, k)) = rx.recv().await {
                let Some(set) = set.upgrade() else { return };
                let q = &set.heal_queue;
                // Counted as healing before it leaves the queued set, so the
                // length never reads 0 while work is pending. Removing it
                // first lets a read that finds new damage queue it again.
                q.healing.fetch_add(1, Relaxed);
                q.queued.lock().remove(&(b.clone(), k.clone()));
                if let (Ok(bucket), Ok(key)) =
                    (BucketName::new(b.clone()), ObjectKey::new(k.clone()))
                    && let Err(e) = set.heal_object(&bucket, &key, true).await
                {
                    set.stats.heal_failures.fetch_add(1, Relaxed);
                    tracing::warn!(bucket = %b, key = %k, error = %e, "heal failed");
                }
                q.healing.fetch_sub(1, Relaxed);
                set.stats.heal_queue_len.store(q.len() as u64, Relaxed);
            }
        });
    }
}
