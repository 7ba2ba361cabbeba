//! Following the store's change events: an object changed through another
//! front (or another mount) drops this view's cached attributes at once,
//! and the front is told what to drop from the kernel's caches (FUSE
//! notifications), so a stat or read right after an S3 PUT sees it.

use std::sync::Arc;

use cairn_api::changes::Change;
use tokio::sync::broadcast::error::RecvError;

use crate::Vfs;
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

impl Vfs {
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
            // the entry may be new or gone: drop a cached (negative) one
            notify(Invalidate::Entry {
                parent,
                name: (*name).to_owned(),
            });
            let Some(ino) = self.inodes.find(parent, name) else {
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
