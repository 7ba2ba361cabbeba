//! Directories whose names the view knows, so a lookup of a name that is
//! not there is answered without asking the store.
//!
//! Creating a file costs the kernel's lookup of the new name and the
//! view's own check in `create`; each is a HEAD plus a one-key listing
//! (eight drive reads on a 4-drive set) that finds nothing. For a
//! directory this view made (mkdir: it was empty when made) the view
//! keeps a *superset* of the names it holds: every name created through
//! the view is added, and so is every name in a store change event (any
//! front: S3, NFS, another mount). Names are never removed (a delete
//! leaves a name that now probes the store: correct, only slower), so
//! "not in the set" means "not in the store".
//!
//! The events are drained from the view's own receiver right before a
//! set is trusted: the store publishes a change before the write returns
//! to its client, so any write that finished before the lookup began is
//! in the set. A receiver that lagged, or a store without change events,
//! knows nothing (every lookup asks the store, as before).

use std::collections::{HashMap, HashSet};

use cairn_api::changes::{Change, ChangeReceiver};
use parking_lot::Mutex;
use tokio::sync::broadcast::error::TryRecvError;

/// Names held in all sets together; beyond it everything is forgotten
/// (lookups ask the store again), bounding memory.
const MAX_NAMES: usize = 1 << 20;

pub(crate) struct Known {
    inner: Mutex<Inner>,
}

struct Inner {
    /// None: the store publishes no changes (or stopped): nothing is known.
    rx: Option<ChangeReceiver>,
    /// (bucket, directory path; "" is the bucket's top) -> names it may hold.
    dirs: HashMap<(String, String), HashSet<String>>,
    names: usize,
}

impl Known {
    pub(crate) fn new(rx: Option<ChangeReceiver>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                rx,
                dirs: HashMap::new(),
                names: 0,
            }),
        }
    }

    /// Starts knowing `dir` as empty. Called *before* the store is asked
    /// whether `dir` exists (mkdir), so a change made after that check is
    /// drained into the set; `forget` it when the directory is not made.
    pub(crate) fn start_empty(&self, bucket: &str, dir: &str) {
        let mut g = self.inner.lock();
        if g.rx.is_none() {
            return;
        }
        g.drain();
        g.dirs
            .insert((bucket.to_owned(), dir.to_owned()), HashSet::new());
    }

    /// Stops knowing `dir` and every directory below it.
    pub(crate) fn forget(&self, bucket: &str, dir: &str) {
        let mut g = self.inner.lock();
        let below = format!("{dir}/");
        g.dirs.retain(|(b, d), _| {
            b != bucket || !(d == dir || dir.is_empty() || d.starts_with(&below))
        });
        g.names = g.dirs.values().map(HashSet::len).sum();
    }

    /// `name` may now be in `dir` (a file this view is creating).
    pub(crate) fn add(&self, bucket: &str, dir: &str, name: &str) {
        let mut g = self.inner.lock();
        g.insert(bucket, dir, name);
    }

    /// True when `name` is certainly not in `dir`.
    pub(crate) fn absent(&self, bucket: &str, dir: &str, name: &str) -> bool {
        let mut g = self.inner.lock();
        if g.rx.is_none() || g.dirs.is_empty() {
            // still drain, so the receiver does not lag for nothing
            g.drain();
            return false;
        }
        g.drain();
        g.dirs
            .get(&(bucket.to_owned(), dir.to_owned()))
            .is_some_and(|names| !names.contains(name))
    }
}

impl Inner {
    fn drain(&mut self) {
        while let Some(rx) = self.rx.as_mut() {
            match rx.try_recv() {
                Ok(c) => self.note(&c),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Lagged(n)) => {
                    tracing::debug!(
                        missed = n,
                        "change events lagged; known directories dropped"
                    );
                    self.clear();
                }
                Err(TryRecvError::Closed) => {
                    self.rx = None;
                    self.clear();
                }
            }
        }
    }

    fn clear(&mut self) {
        self.dirs.clear();
        self.names = 0;
    }

    /// Every directory on the changed key's path may hold the next name.
    fn note(&mut self, c: &Change) {
        if self.dirs.is_empty() {
            return;
        }
        let mut dir = String::new();
        for part in c.key.split('/').filter(|p| !p.is_empty()) {
            self.insert(&c.bucket, &dir, part);
            if !dir.is_empty() {
                dir.push('/');
            }
            dir.push_str(part);
        }
    }

    fn insert(&mut self, bucket: &str, dir: &str, name: &str) {
        let Some(names) = self.dirs.get_mut(&(bucket.to_owned(), dir.to_owned())) else {
            return;
        };
        if names.insert(name.to_owned()) {
            self.names += 1;
            if self.names > MAX_NAMES {
                tracing::debug!("too many known names; known directories dropped");
                self.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(bucket: &str, key: &str) -> Change {
        Change::object(bucket, key)
    }

    #[test]
    fn superset_follows_events() {
        let (tx, rx) = tokio::sync::broadcast::channel(8);
        let k = Known::new(Some(rx));
        assert!(!k.absent("b", "d", "x"), "unknown directory: ask the store");
        k.start_empty("b", "d");
        assert!(k.absent("b", "d", "x"));
        tx.send(change("b", "d/x")).unwrap();
        assert!(!k.absent("b", "d", "x"), "an event adds the name");
        tx.send(change("b", "d/sub/y")).unwrap();
        assert!(
            !k.absent("b", "d", "sub"),
            "and the directories on its path"
        );
        assert!(
            !k.absent("c", "d", "x"),
            "another bucket's directory is not known"
        );
        k.add("b", "d", "mine");
        assert!(!k.absent("b", "d", "mine"));
        k.forget("b", "d");
        assert!(!k.absent("b", "d", "z"));
    }

    #[test]
    fn lag_and_no_events_know_nothing() {
        let (tx, rx) = tokio::sync::broadcast::channel(2);
        let k = Known::new(Some(rx));
        k.start_empty("b", "d");
        for i in 0..5 {
            tx.send(change("b", &format!("e/{i}"))).unwrap();
        }
        assert!(!k.absent("b", "d", "x"), "lagged: dropped");
        let none = Known::new(None);
        none.start_empty("b", "d");
        assert!(!none.absent("b", "d", "x"));
    }
}
