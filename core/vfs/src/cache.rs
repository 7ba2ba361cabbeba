//! Attributes cache with a short TTL. Every local change updates or drops
//! its entry; changes made through other fronts drop it through the
//! store's change events (`changes.rs`), or after the TTL when the store
//! publishes none.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::attr::Attr;

pub struct AttrCache {
    ttl: Duration,
    map: Mutex<HashMap<u64, (Attr, Instant)>>,
}

/// Entries beyond this are swept of expired ones on insert.
const SWEEP_AT: usize = 100_000;

impl AttrCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, ino: u64) -> Option<Attr> {
        let g = self.map.lock();
        g.get(&ino)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(a, _)| a.clone())
    }

    pub fn put(&self, attr: &Attr) {
        let mut g = self.map.lock();
        if g.len() >= SWEEP_AT {
            let ttl = self.ttl;
            g.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        g.insert(attr.ino, (attr.clone(), Instant::now()));
    }

    pub fn remove(&self, ino: u64) {
        self.map.lock().remove(&ino);
    }

    pub fn clear(&self) {
        self.map.lock().clear();
    }
}
