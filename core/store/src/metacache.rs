//! Decoded `cairn.meta` headers of big records, kept per drive by content.
//!
//! A record grows with its version's part list: a 16 GiB file rewritten at
//! random names 4,096 parts in a 650 KB header, which takes 1.5 ms to
//! parse. A patch commit parses it eight times (the quorum read, then each
//! drive's merge) though it changed nothing in between. This cache keeps
//! the last parse of each big header, keyed by the file's path and
//! checked by the header's length and its HighwayHash (which every read
//! computes anyway to catch bitrot): a hit is the same bytes, so it needs
//! no invalidation, and a file changed by anything (another writer, heal,
//! a torn write) simply misses. A drive's own commits put what they wrote,
//! so the next read of a record this process wrote is a hit.
//!
//! Bounded: only headers of at least [`MIN_HEADER`] bytes are kept (a
//! small one parses in microseconds), and at most [`BUDGET`] header bytes
//! per drive, the least recently used going first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::meta::ObjectMeta;

/// Headers smaller than this are parsed every time.
pub const MIN_HEADER: usize = 32 << 10;
/// Header bytes kept per drive (a parsed record takes about twice its
/// header in memory).
pub const BUDGET: usize = 8 << 20;

struct Entry {
    /// HighwayHash-64 and length of the header the record was parsed from.
    hash: u64,
    len: usize,
    meta: Arc<ObjectMeta>,
    /// Tick of the last use (least recently used goes first).
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<PathBuf, Entry>,
    bytes: usize,
    tick: u64,
}

#[derive(Default)]
pub struct MetaCache {
    inner: parking_lot::Mutex<Inner>,
}

impl std::fmt::Debug for MetaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.inner.lock();
        f.debug_struct("MetaCache")
            .field("records", &g.entries.len())
            .field("bytes", &g.bytes)
            .finish()
    }
}

impl MetaCache {
    /// The record parsed from the header of `len` bytes hashing to `hash`
    /// at `path`, without its inline bytes, if it is kept.
    pub fn get(&self, path: &Path, hash: u64, len: usize) -> Option<ObjectMeta> {
        if len < MIN_HEADER {
            return None;
        }
        let meta = {
            let mut g = self.inner.lock();
            g.tick += 1;
            let tick = g.tick;
            let e = g.entries.get_mut(path)?;
            if e.hash != hash || e.len != len {
                return None;
            }
            e.used = tick;
            Arc::clone(&e.meta)
        };
        // cloned outside the lock
        Some(ObjectMeta::clone(&meta))
    }

    /// Keeps `meta` (its header only) as the parse of the header of `len`
    /// bytes hashing to `hash` at `path`.
    pub fn put(&self, path: &Path, hash: u64, len: usize, meta: &ObjectMeta) {
        if !(MIN_HEADER..=BUDGET).contains(&len) {
            return;
        }
        let header = Arc::new(ObjectMeta {
            versions: meta.versions.clone(),
            history: meta.history.clone(),
            inline: Vec::new(),
            fence: meta.fence,
        });
        let mut g = self.inner.lock();
        g.tick += 1;
        let used = g.tick;
        let entry = Entry {
            hash,
            len,
            meta: header,
            used,
        };
        if let Some(old) = g.entries.insert(path.to_path_buf(), entry) {
            g.bytes -= old.len;
        }
        g.bytes += len;
        while g.bytes > BUDGET {
            let Some(oldest) = (g.entries.iter())
                .min_by_key(|(_, e)| e.used)
                .map(|(p, _)| p.clone())
            else {
                break;
            };
            if let Some(e) = g.entries.remove(&oldest) {
                g.bytes -= e.len;
            }
        }
    }

    /// Header bytes kept now.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(n: u64) -> ObjectMeta {
        ObjectMeta {
            history: Some(crate::meta::HistoryRef {
                file: format!("cairn.hist.{n}"),
                len: n,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_hit_needs_the_same_path_hash_and_length() {
        let c = MetaCache::default();
        let p = Path::new("/d/b/k");
        c.put(p, 7, MIN_HEADER, &meta(1));
        assert_eq!(c.get(p, 7, MIN_HEADER), Some(meta(1)));
        assert_eq!(c.get(p, 8, MIN_HEADER), None, "other bytes");
        assert_eq!(c.get(p, 7, MIN_HEADER + 1), None, "other length");
        assert_eq!(c.get(Path::new("/d/b/j"), 7, MIN_HEADER), None);
        c.put(p, 9, MIN_HEADER, &meta(2));
        assert_eq!(c.get(p, 7, MIN_HEADER), None, "replaced");
        assert_eq!(c.get(p, 9, MIN_HEADER), Some(meta(2)));
        assert_eq!(c.bytes(), MIN_HEADER);
    }

    #[test]
    fn small_headers_are_not_kept_and_the_budget_holds() {
        let c = MetaCache::default();
        c.put(Path::new("/s"), 1, MIN_HEADER - 1, &meta(1));
        assert_eq!(c.bytes(), 0);
        let len = BUDGET / 4;
        for i in 0..4u64 {
            c.put(Path::new(&format!("/k{i}")), i, len, &meta(i));
        }
        // /k0 used last: /k1 is the least recently used
        assert!(c.get(Path::new("/k0"), 0, len).is_some());
        c.put(Path::new("/k4"), 4, len, &meta(4));
        assert_eq!(c.bytes(), BUDGET);
        assert!(c.get(Path::new("/k1"), 1, len).is_none(), "evicted");
        for i in [0u64, 2, 3, 4] {
            assert!(c.get(Path::new(&format!("/k{i}")), i, len).is_some(), "{i}");
        }
        c.put(Path::new("/huge"), 5, BUDGET + 1, &meta(5));
        assert_eq!(c.bytes(), BUDGET, "a header over the budget is not kept");
    }
}
