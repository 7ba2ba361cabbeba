//! Following the store's change events: an object changed through another
//! front (or another mount) drops this view's cached attributes at once,
//! and the front is told what to drop from the kernel's caches (FUSE
//! notifications), so a stat or read right after an S3 PUT sees it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cairn_api::changes::Change;
use parking_lot::Mutex;
use tokio::sync::broadcast::error::RecvError;

use crate::Vfs;
use crate::attr::FileKind;
use crate::inode::ROOT_INO;

type Notify = Arc<dyn Fn(Invalidate) + Send + Sync>;

/// What a front should drop from its client's caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidate {
    /// Attributes and cached data of an inode.
    Inode(u64),
    /// A (possibly negative) directory entry.
    Entry { parent: u64, name: String },
}

/// Writes this view made itself whose change events are still to come.
/// The kernel already holds what such a write put there (its dentries,
/// attributes, pages), and the view's cache was updated by the write: the
/// event would only make the kernel drop and look up again, and make the
/// view re-read the object it just wrote. Counted per key, so a change by
/// another front to the same key still gets through.
#[derive(Default)]
pub(crate) struct OwnChanges {
    /// Set while the view follows events (no marks are kept otherwise).
    watching: AtomicBool,
    marks: Mutex<HashMap<(String, String), Vec<Instant>>>,
}

/// A mark older than this is not matched any more: the event comes within
/// microseconds of the write; an old mark is one whose event never came
/// (a store that published none for this write), and must not hide a later
/// change by another front.
const OWN_MARK_TTL: Duration = Duration::from_secs(2);

impl OwnChanges {
    /// Notes a write about to change `bucket/key`; `settle` the guard
    /// with the write's outcome.
    pub(crate) fn expect(&self, bucket: &str, key: &str) -> OwnWrite<'_> {
        self.expect_keys(bucket, &[key])
    }

    /// Notes a write about to change every key of `keys` (a rename
    /// changes its source and its target).
    pub(crate) fn expect_keys(&self, bucket: &str, keys: &[&str]) -> OwnWrite<'_> {
        let armed = self.watching.load(Ordering::Relaxed);
        let mut marked = Vec::new();
        if armed {
            let mut g = self.marks.lock();
            for key in keys {
                let k = (bucket.to_owned(), (*key).to_owned());
                g.entry(k.clone()).or_default().push(Instant::now());
                marked.push(k);
            }
        }
        OwnWrite {
            own: self,
            keys: marked,
        }
    }

    /// True (and the mark is used up) when the change is this view's own.
    fn take(&self, c: &Change) -> bool {
        let mut g = self.marks.lock();
        let k = (c.bucket.clone(), c.key.clone());
        let Some(v) = g.get_mut(&k) else {
            return false;
        };
        v.retain(|t| t.elapsed() < OWN_MARK_TTL);
        let mine = !v.is_empty();
        if mine {
            v.remove(0);
        }
        if v.is_empty() {
            g.remove(&k);
        }
        mine
    }

    fn remove_one(&self, key: &(String, String)) {
        let mut g = self.marks.lock();
        if let Some(v) = g.get_mut(key) {
            v.pop();
            if v.is_empty() {
                g.remove(key);
            }
        }
    }
}

/// A pending own write (see `OwnChanges`).
pub(crate) struct OwnWrite<'a> {
    own: &'a OwnChanges,
    keys: Vec<(String, String)>,
}

impl OwnWrite<'_> {
    /// The write returned: success means its event was published before
    /// it returned (the watcher will match the mark). A failed write may
    /// or may not have published one; its mark is dropped so the event,
    /// if any, invalidates as usual.
    pub(crate) fn settle<T, E>(mut self, r: &Result<T, E>) {
        if r.is_ok() {
            self.keys.clear();
        }
    }
}

impl Drop for OwnWrite<'_> {
    fn drop(&mut self) {
        for k in self.keys.drain(..) {
            self.own.remove_one(&k);
        }
    }
}

impl Vfs {
    /// Runs a store write this view makes itself, changing `keys` of
    /// bucket `b`: their change events are not sent back to the front
    /// (see `OwnChanges`).
    pub(crate) fn own_write<'a, T, E>(
        &'a self,
        b: &str,
        keys: &[&str],
        write: impl std::future::Future<Output = Result<T, E>> + 'a,
    ) -> impl std::future::Future<Output = Result<T, E>> + 'a {
        let own = self.own.expect_keys(b, keys);
        async move {
            let r = write.await;
            own.settle(&r);
            r
        }
    }

    /// Starts following change events; `notify` gets what the front's
    /// client should forget. Returns false when the store publishes none
    /// (attribute TTLs are all there is then).
    pub fn watch_changes(
        self: &Arc<Self>,
        notify: impl Fn(Invalidate) + Send + Sync + 'static,
    ) -> bool {
        let Some(mut rx) = self.layer.subscribe_changes() else {
            return false;
        };
        let notify: Notify = Arc::new(notify);
        self.own.watching.store(true, Ordering::Relaxed);
        let vfs = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let ev = rx.recv().await;
                let Some(v) = vfs.upgrade() else { return };
                match ev {
                    Ok(c) => v.on_change(&c, &notify),
                    // missed some: nothing cached can be trusted
                    Err(RecvError::Lagged(n)) => {
                        tracing::debug!(missed = n, "change events lagged; cache dropped");
                        v.cache.clear();
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        true
    }

    fn on_change(self: &Arc<Self>, c: &Change, notify: &Notify) {
        if !c.from_peer && self.own.take(c) {
            return;
        }
        let mut parent = match &self.cfg.bucket {
            Some(b) if *b == c.bucket => ROOT_INO,
            Some(_) => return,
            None => match self.inodes.find(ROOT_INO, &c.bucket) {
                Some(ino) => ino,
                None => return,
            },
        };
        let parts: Vec<&str> = c.key.split('/').filter(|p| !p.is_empty()).collect();
        for (i, name) in parts.iter().enumerate() {
            let found = self.inodes.find(parent, name);
            // The entry may be new or gone: drop a cached (negative) one.
            // Not a directory this view knows: a change under it (or to its
            // marker) leaves it in place, and dropping its entry would
            // unhash the kernel's dentry, so a process whose working
            // directory it is gets ENOENT from getcwd() (git, shells,
            // build tools). Its number stays; a directory removed by
            // another front goes when the kernel's entry TTL runs out.
            if found.is_none_or(|ino| self.inodes.kind(ino) != Some(FileKind::Dir)) {
                notify(Invalidate::Entry {
                    parent,
                    name: (*name).to_owned(),
                });
            }
            let Some(ino) = found else {
                return;
            };
            if i + 1 == parts.len() {
                self.cache.remove(ino);
                let open = self.open.lock().get(&ino).cloned();
                match open {
                    None => notify(Invalidate::Inode(ino)),
                    // An open file answers stat from its state: refresh a
                    // clean one first (a dirty one is this view's pending
                    // write and wins), then let the kernel ask again.
                    Some(f) => {
                        let (v, notify) = (self.clone(), notify.clone());
                        tokio::spawn(async move {
                            let mut st = f.state.lock().await;
                            if !st.dirty
                                && let Ok(a) = v.fresh_attr(ino).await
                            {
                                st.attr = a;
                            }
                            drop(st);
                            notify(Invalidate::Inode(ino));
                        });
                    }
                }
            }
            parent = ino;
        }
    }
}
