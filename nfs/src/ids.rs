//! The persistent file id map: NFS file ids (and so file handles) name
//! entries as (parent id, name), like the view's inode tree, so a
//! directory rename rewrites one record and every descendant keeps its
//! handle. Held in memory, written through to a redb database whose
//! commits are durable when they return: an id is on disk before any
//! client sees it, so a handle survives a restart or a crash.
//!
//! The same database records the staging file of every file with
//! acknowledged but uncommitted WRITEs (`pending`), for recovery at start.

use std::collections::HashMap;
use std::path::Path;

use parking_lot::Mutex;
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};

/// The export root's id (0 is reserved by NFS servers).
pub const ROOT_ID: u64 = 1;

const NODES: TableDefinition<u64, (u64, &str)> = TableDefinition::new("nodes");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const PENDING: TableDefinition<u64, &str> = TableDefinition::new("pending");

#[derive(Debug, thiserror::Error)]
pub enum IdError {
    #[error("file id map: {0}")]
    Db(#[from] redb::Error),
}

fn dberr<E: Into<redb::Error>>(e: E) -> IdError {
    IdError::Db(e.into())
}

#[derive(Default)]
struct Inner {
    next: u64,
    nodes: HashMap<u64, (u64, String)>,
    children: HashMap<(u64, String), u64>,
}

pub struct IdMap {
    db: Database,
    /// Random per database: handles from another export's map are refused.
    verifier: u64,
    inner: Mutex<Inner>,
}

impl IdMap {
    /// Opens (or makes) the map at `path` and loads it.
    pub fn open(path: &Path) -> Result<Self, IdError> {
        let db = Database::create(path).map_err(dberr)?;
        let mut inner = Inner {
            next: ROOT_ID + 1,
            ..Default::default()
        };
        let verifier;
        {
            let tx = db.begin_write().map_err(dberr)?;
            {
                let mut meta = tx.open_table(META).map_err(dberr)?;
                let got = meta.get("verifier").map_err(dberr)?.map(|v| v.value());
                verifier = match got {
                    Some(v) => v,
                    None => {
                        let v = rand::random::<u64>() | 1;
                        meta.insert("verifier", v).map_err(dberr)?;
                        v
                    }
                };
                if let Some(n) = meta.get("next").map_err(dberr)? {
                    inner.next = n.value().max(ROOT_ID + 1);
                }
                tx.open_table(NODES).map_err(dberr)?;
                tx.open_table(PENDING).map_err(dberr)?;
            }
            tx.commit().map_err(dberr)?;
        }
        {
            let rx = db.begin_read().map_err(dberr)?;
            let nodes = rx.open_table(NODES).map_err(dberr)?;
            for row in nodes.iter().map_err(dberr)? {
                let (k, v) = row.map_err(dberr)?;
                let id = k.value();
                let (parent, name) = v.value();
                inner.children.insert((parent, name.to_owned()), id);
                inner.nodes.insert(id, (parent, name.to_owned()));
                inner.next = inner.next.max(id + 1);
            }
        }
        Ok(Self {
            db,
            verifier,
            inner: Mutex::new(inner),
        })
    }

    pub fn verifier(&self) -> u64 {
        self.verifier
    }

    pub fn find(&self, parent: u64, name: &str) -> Option<u64> {
        self.inner
            .lock()
            .children
            .get(&(parent, name.to_owned()))
            .copied()
    }

    /// The id of `name` under `parent`, made (and made durable) if new.
    pub fn child(&self, parent: u64, name: &str) -> Result<u64, IdError> {
        Ok(self
            .children(parent, &[name])?
            .first()
            .copied()
            .unwrap_or(0))
    }

    /// Ids of many names in one directory, the new ones in one commit
    /// (a listing page).
    pub fn children(&self, parent: u64, names: &[&str]) -> Result<Vec<u64>, IdError> {
        let mut g = self.inner.lock();
        let mut out = Vec::with_capacity(names.len());
        let mut new = Vec::new();
        let mut next = g.next;
        for name in names {
            match g.children.get(&(parent, (*name).to_owned())) {
                Some(&id) => out.push(id),
                None => {
                    out.push(next);
                    new.push((next, *name));
                    next += 1;
                }
            }
        }
        if new.is_empty() {
            return Ok(out);
        }
        // written under the lock: ids are handed out only once durable
        let tx = self.db.begin_write().map_err(dberr)?;
        {
            let mut nodes = tx.open_table(NODES).map_err(dberr)?;
            for (id, name) in &new {
                nodes.insert(*id, (parent, *name)).map_err(dberr)?;
            }
            let mut meta = tx.open_table(META).map_err(dberr)?;
            meta.insert("next", next).map_err(dberr)?;
        }
        tx.commit().map_err(dberr)?;
        for (id, name) in new {
            g.children.insert((parent, name.to_owned()), id);
            g.nodes.insert(id, (parent, name.to_owned()));
        }
        g.next = next;
        Ok(out)
    }

    /// Names from the root down to `id`; None when the id (or one of its
    /// ancestors) is unknown: a stale handle.
    pub fn path(&self, id: u64) -> Option<Vec<String>> {
        let g = self.inner.lock();
        let mut names = Vec::new();
        let mut cur = id;
        while cur != ROOT_ID {
            let (parent, name) = g.nodes.get(&cur)?;
            names.push(name.clone());
            cur = *parent;
            if names.len() > 4096 {
                return None;
            }
        }
        names.reverse();
        Some(names)
    }

    pub fn parent_name(&self, id: u64) -> Option<(u64, String)> {
        self.inner.lock().nodes.get(&id).cloned()
    }

    /// Forgets `name` under `parent` (removed): its handle goes stale.
    pub fn remove(&self, parent: u64, name: &str) -> Result<(), IdError> {
        let mut g = self.inner.lock();
        let Some(id) = g.children.get(&(parent, name.to_owned())).copied() else {
            return Ok(());
        };
        let tx = self.db.begin_write().map_err(dberr)?;
        {
            let mut nodes = tx.open_table(NODES).map_err(dberr)?;
            nodes.remove(id).map_err(dberr)?;
        }
        tx.commit().map_err(dberr)?;
        g.children.remove(&(parent, name.to_owned()));
        g.nodes.remove(&id);
        Ok(())
    }

    /// Moves `id` to `name` under `new_parent`; an id already there is
    /// forgotten (it was replaced).
    pub fn rename(&self, id: u64, new_parent: u64, name: &str) -> Result<(), IdError> {
        let mut g = self.inner.lock();
        let replaced = g
            .children
            .get(&(new_parent, name.to_owned()))
            .copied()
            .filter(|r| *r != id);
        let tx = self.db.begin_write().map_err(dberr)?;
        {
            let mut nodes = tx.open_table(NODES).map_err(dberr)?;
            if let Some(r) = replaced {
                nodes.remove(r).map_err(dberr)?;
            }
            nodes.insert(id, (new_parent, name)).map_err(dberr)?;
        }
        tx.commit().map_err(dberr)?;
        if let Some(r) = replaced {
            g.nodes.remove(&r);
        }
        if let Some(old) = g.nodes.get(&id).cloned() {
            g.children.remove(&old);
        }
        g.children.insert((new_parent, name.to_owned()), id);
        g.nodes.insert(id, (new_parent, name.to_owned()));
        Ok(())
    }

    /// Records that `id` has acknowledged bytes in the staging file `path`.
    pub fn set_pending(&self, id: u64, path: &Path) -> Result<(), IdError> {
        let p = path.to_string_lossy();
        let tx = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = tx.open_table(PENDING).map_err(dberr)?;
            t.insert(id, p.as_ref()).map_err(dberr)?;
        }
        tx.commit().map_err(dberr)
    }

    pub fn clear_pending(&self, id: u64) -> Result<(), IdError> {
        let tx = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = tx.open_table(PENDING).map_err(dberr)?;
            t.remove(id).map_err(dberr)?;
        }
        tx.commit().map_err(dberr)
    }

    pub fn pending(&self) -> Result<Vec<(u64, String)>, IdError> {
        let rx = self.db.begin_read().map_err(dberr)?;
        let t = rx.open_table(PENDING).map_err(dberr)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(dberr)? {
            let (k, v) = row.map_err(dberr)?;
            out.push((k.value(), v.value().to_owned()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::disallowed_methods)] // fixtures below a temp folder
    use super::*;

    #[test]
    fn ids_survive_reopen_and_rename() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ids.redb");
        let (b, f, v) = {
            let m = IdMap::open(&p).unwrap();
            let b = m.child(ROOT_ID, "bkt").unwrap();
            let d = m.child(b, "d").unwrap();
            let f = m.child(d, "f").unwrap();
            assert_eq!(m.child(d, "f").unwrap(), f);
            let e = m.child(b, "e").unwrap();
            m.rename(d, e, "moved").unwrap();
            m.set_pending(f, Path::new("/x/stage-1")).unwrap();
            (b, f, m.verifier())
        };
        let m = IdMap::open(&p).unwrap();
        assert_eq!(m.verifier(), v);
        assert_eq!(m.path(f).unwrap(), vec!["bkt", "e", "moved", "f"]);
        assert_eq!(m.find(ROOT_ID, "bkt"), Some(b));
        assert_eq!(m.pending().unwrap(), vec![(f, "/x/stage-1".to_owned())]);
        let g = m.child(b, "new").unwrap();
        assert!(g > f, "ids are never reused");
        let d = m.find(m.find(b, "e").unwrap(), "moved").unwrap();
        m.remove(m.find(b, "e").unwrap(), "moved").unwrap();
        assert_eq!(m.path(d), None, "removed: stale");
        assert_eq!(m.path(f), None, "under a removed directory: stale");
    }
}
