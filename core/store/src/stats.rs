//! Counters the store keeps for `/metrics` and `cairn admin info`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::heal::HealOutcome;

#[derive(Default)]
pub struct Stats {
    pub objects_healed: AtomicU64,
    pub drives_rewritten: AtomicU64,
    pub heal_failures: AtomicU64,
    /// Shard blocks whose hash did not match (reads, heals, scans).
    pub bitrot_errors: AtomicU64,
    /// Shards a read could not use (missing, unreadable, bad hash).
    pub shard_read_errors: AtomicU64,
    /// Reads that failed on a block no K shards could rebuild (data lost).
    pub unrecoverable_reads: AtomicU64,
    pub scanner_objects: AtomicU64,
    pub scanner_cycles: AtomicU64,
    /// Per-bucket usage, counted by the scanner (crate::usage).
    pub bucket_usage: crate::usage::UsageCache,
    /// The drives' space as last asked, and when: scrapes within a
    /// second reuse it (an open metrics page must not let anyone keep
    /// the blocking pool busy with statvfs calls).
    pub drive_space:
        parking_lot::Mutex<Option<(std::time::Instant, Vec<cairn_api::admin::Metric>)>>,
    pub heal_queue_len: AtomicU64,
}

impl Stats {
    pub(crate) fn note_heal(&self, out: &HealOutcome) {
        if out.healed_drives > 0 {
            self.objects_healed.fetch_add(1, Relaxed);
            self.drives_rewritten
                .fetch_add(out.healed_drives as u64, Relaxed);
        }
        self.bitrot_errors.fetch_add(out.bad_blocks as u64, Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }
}
