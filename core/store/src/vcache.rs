//! The latest version of recently read objects, as the quorum read found
//! it on every drive: a GET or HEAD of a key read before reads no drive.
//!
//! A 4 KiB GET read `cairn.meta` on every drive (one blocking-thread hop,
//! one open and read, one JSON parse per drive) to find what the last read
//! of the key had found. This cache keeps that answer (the chosen version
//! and each drive's parsed record, inline shard included) for keys whose
//! every drive held the same latest version, so a hit is exactly what a
//! read of the drives would have picked.
//!
//! Correct only while every change to a key's records goes through this
//! process: every commit, delete, rename and record rewrite of the set
//! calls [`VersionCache::invalidate`] (through `ErasureSet::changed`, under
//! the object's write lock), and so does a heal that wrote records. A read
//! that raced a change does not put what it read: each stripe of keys has
//! a generation that every invalidation bumps, and a put with an older
//! generation is dropped. Off for a set with any drive of another node
//! (another node's commits would not invalidate it) until peers' change
//! events call `invalidate` too.
//!
//! Drive faults stay visible: a hit is used only while every drive it
//! read from is online (not marked hung, `format.json` there); records
//! damaged or replaced on the disk behind the server's back are not seen
//! until the key changes (the bytes served are the ones verified when the
//! record was read). Bounded by [`BUDGET`] bytes, least recently used first.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::meta::VersionMeta;
use crate::set::Held;

/// Bytes of records kept per set (inline shards counted whole, each
/// record's header estimated at [`RECORD_COST`]).
pub const BUDGET: usize = 32 << 20;
/// What one drive's parsed record costs besides its inline bytes.
const RECORD_COST: usize = 1024;
/// Stripes of keys with their own generation.
const STRIPES: usize = 1024;

/// A read of the latest version of a key: the version chosen and each
/// drive's copy (indexed by drive).
pub(crate) type Found = (VersionMeta, Vec<Option<Held>>);

struct Entry {
    found: Found,
    cost: usize,
}

struct Inner {
    entries: lru::LruCache<String, Entry>,
    bytes: usize,
}

pub struct VersionCache {
    enabled: bool,
    inner: parking_lot::Mutex<Inner>,
    generations: Box<[AtomicU64]>,
}

impl std::fmt::Debug for VersionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.inner.lock();
        f.debug_struct("VersionCache")
            .field("enabled", &self.enabled)
            .field("keys", &g.entries.len())
            .field("bytes", &g.bytes)
            .finish()
    }
}

/// A stripe's generation when a read started; a put carries it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    stripe: usize,
    generation: u64,
}

fn name(bucket: &str, key: &str) -> String {
    // bucket names hold no '/': the pair is unambiguous
    let mut s = String::with_capacity(bucket.len() + 1 + key.len());
    s.push_str(bucket);
    s.push('/');
    s.push_str(key);
    s
}

impl VersionCache {
    /// A cache that keeps nothing unless `enabled`.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            inner: parking_lot::Mutex::new(Inner {
                entries: lru::LruCache::unbounded(),
                bytes: 0,
            }),
            generations: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn stripe(bucket: &str, key: &str) -> usize {
        let h = crate::bitrot::hash64(key.as_bytes()) ^ crate::bitrot::hash64(bucket.as_bytes());
        (h % STRIPES as u64) as usize
    }

    /// The kept read of `bucket/key`, if any.
    pub(crate) fn get(&self, bucket: &str, key: &str) -> Option<Found> {
        if !self.enabled {
            return None;
        }
        let mut g = self.inner.lock();
        g.entries.get(&name(bucket, key)).map(|e| e.found.clone())
    }

    /// Taken before a read of the drives, for [`Self::put`].
    pub(crate) fn ticket(&self, bucket: &str, key: &str) -> Option<Ticket> {
        if !self.enabled {
            return None;
        }
        let stripe = Self::stripe(bucket, key);
        let generation = self.generations.get(stripe)?.load(Ordering::Acquire);
        Some(Ticket { stripe, generation })
    }

    /// Keeps a read of `bucket/key` unless the key's stripe changed since
    /// `ticket` was taken.
    pub(crate) fn put(&self, ticket: Ticket, bucket: &str, key: &str, found: Found) {
        let cost: usize = found
            .1
            .iter()
            .flatten()
            .map(|h| RECORD_COST + h.meta.inline.len())
            .sum();
        if !self.enabled || cost > BUDGET / 16 {
            return;
        }
        let mut g = self.inner.lock();
        // checked under the lock: an invalidation bumps before it removes
        let now = self.generations.get(ticket.stripe);
        if now.is_none_or(|n| n.load(Ordering::Acquire) != ticket.generation) {
            return;
        }
        if let Some(old) = g.entries.put(name(bucket, key), Entry { found, cost }) {
            g.bytes -= old.cost;
        }
        g.bytes += cost;
        while g.bytes > BUDGET {
            match g.entries.pop_lru() {
                Some((_, e)) => g.bytes -= e.cost,
                None => break,
            }
        }
    }

    /// Forgets `bucket/key` and drops any read of it in flight: the one
    /// entry point for whatever changes a key's records (this node's
    /// commits, a heal, and peers' change events once they exist).
    pub fn invalidate(&self, bucket: &str, key: &str) {
        if !self.enabled {
            return;
        }
        let stripe = Self::stripe(bucket, key);
        let mut g = self.inner.lock();
        if let Some(n) = self.generations.get(stripe) {
            n.fetch_add(1, Ordering::AcqRel);
        }
        if let Some(e) = g.entries.pop(&name(bucket, key)) {
            g.bytes -= e.cost;
        }
    }

    /// Forgets everything (a bucket removed).
    pub fn clear(&self) {
        let mut g = self.inner.lock();
        for n in self.generations.iter() {
            n.fetch_add(1, Ordering::AcqRel);
        }
        g.entries.clear();
        g.bytes = 0;
    }
}

/// Whether a read's copies may be kept: every drive held the chosen
/// version (a degraded read keeps going to the drives, and queues heals).
pub(crate) fn complete(held: &[Option<Held>]) -> bool {
    held.iter().all(Option::is_some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{ErasureInfo, ObjectMeta};
    use std::sync::Arc;

    fn found(etag: &str, drives: usize) -> Found {
        let layout = ErasureInfo {
            data: 2,
            parity: 2,
            block_size: 1 << 20,
            index: 0,
            distribution: vec![0, 1, 2, 3],
        };
        let mut v = VersionMeta::delete_marker(layout, None, 1);
        v.etag = etag.into();
        let meta = Arc::new(ObjectMeta::single(v.clone(), vec![7u8; 100]));
        let held = (0..drives)
            .map(|_| {
                Some(Held {
                    meta: meta.clone(),
                    at: 0,
                })
            })
            .collect();
        (v, held)
    }

    #[test]
    fn a_put_after_an_invalidation_is_dropped() {
        let c = VersionCache::new(true);
        let t = c.ticket("b", "k").unwrap();
        c.invalidate("b", "k");
        c.put(t, "b", "k", found("old", 4));
        assert!(c.get("b", "k").is_none(), "a read that raced a commit");
        let t = c.ticket("b", "k").unwrap();
        c.put(t, "b", "k", found("new", 4));
        assert_eq!(c.get("b", "k").unwrap().0.etag, "new");
        c.invalidate("b", "k");
        assert!(c.get("b", "k").is_none(), "invalidated");
    }

    #[test]
    fn off_keeps_nothing_and_the_budget_holds() {
        let off = VersionCache::new(false);
        assert!(off.ticket("b", "k").is_none());
        let c = VersionCache::new(true);
        let per = 4 * (RECORD_COST + 100);
        let n = BUDGET / per + 10;
        for i in 0..n {
            let k = format!("k{i}");
            let t = c.ticket("b", &k).unwrap();
            c.put(t, "b", &k, found("e", 4));
        }
        assert!(c.inner.lock().bytes <= BUDGET);
        assert!(c.get("b", "k0").is_none(), "least recently used went first");
        assert!(c.get("b", &format!("k{}", n - 1)).is_some());
        c.clear();
        assert!(c.get("b", &format!("k{}", n - 1)).is_none());
    }
}
