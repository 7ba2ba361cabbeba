//! The inode table: a stable number per path while the path exists.
//!
//! Inodes form a tree (parent + name), so renaming a directory moves one
//! entry and every descendant keeps its number. Numbers are never reused
//! within a process; the NFS front persists its own map on top.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::attr::FileKind;

pub const ROOT_INO: u64 = 1;

#[derive(Debug, Clone)]
struct Node {
    parent: u64,
    name: String,
    kind: FileKind,
}

#[derive(Default)]
struct Inner {
    next: u64,
    nodes: HashMap<u64, Node>,
    children: HashMap<(u64, String), u64>,
}

/// Where an inode lives: the mount root (all buckets), or a path inside a
/// bucket (`""` is the bucket's top directory, else `a/b` without slashes
/// at either end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loc {
    Root,
    Path { bucket: String, path: String },
}

pub struct InodeTable {
    inner: Mutex<Inner>,
    /// Set when one bucket is mounted: the root is that bucket's top dir.
    root_bucket: Option<String>,
}

impl InodeTable {
    pub fn new(root_bucket: Option<String>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                next: ROOT_INO + 1,
                ..Default::default()
            }),
            root_bucket,
        }
    }

    /// The number for `name` under `parent`, made if new; a known entry
    /// keeps its number and gets `kind` recorded.
    pub fn child(&self, parent: u64, name: &str, kind: FileKind) -> u64 {
        let mut g = self.inner.lock();
        if let Some(&ino) = g.children.get(&(parent, name.to_owned())) {
            if let Some(n) = g.nodes.get_mut(&ino) {
                n.kind = kind;
            }
            return ino;
        }
        let ino = g.next;
        g.next += 1;
        g.nodes.insert(
            ino,
            Node {
                parent,
                name: name.to_owned(),
                kind,
            },
        );
        g.children.insert((parent, name.to_owned()), ino);
        ino
    }

    /// The number of a known entry, without making one.
    pub fn find(&self, parent: u64, name: &str) -> Option<u64> {
        self.inner
            .lock()
            .children
            .get(&(parent, name.to_owned()))
            .copied()
    }

    pub fn kind(&self, ino: u64) -> Option<FileKind> {
        if ino == ROOT_INO {
            return Some(FileKind::Dir);
        }
        self.inner.lock().nodes.get(&ino).map(|n| n.kind)
    }

    /// Parent and name of an inode (None for the root or an unknown one).
    pub fn parent_name(&self, ino: u64) -> Option<(u64, String)> {
        self.inner
            .lock()
            .nodes
            .get(&ino)
            .map(|n| (n.parent, n.name.clone()))
    }

    /// Drops the entry `name` under `parent` (unlink, rmdir): the inode
    /// stays resolvable for open handles but no longer has a path.
    pub fn detach(&self, parent: u64, name: &str) -> Option<u64> {
        let mut g = self.inner.lock();
        let ino = g.children.remove(&(parent, name.to_owned()))?;
        if let Some(n) = g.nodes.get_mut(&ino) {
            n.parent = 0;
        }
        Some(ino)
    }

    /// Moves `ino` to `name` under `new_parent`; an entry already there is
    /// detached (it was replaced).
    pub fn rename(&self, ino: u64, new_parent: u64, name: &str) {
        let mut g = self.inner.lock();
        if let Some(old) = g.nodes.get(&ino).map(|n| (n.parent, n.name.clone())) {
            g.children.remove(&old);
        }
        if let Some(replaced) = g.children.insert((new_parent, name.to_owned()), ino)
            && replaced != ino
            && let Some(n) = g.nodes.get_mut(&replaced)
        {
            n.parent = 0;
        }
        if let Some(n) = g.nodes.get_mut(&ino) {
            n.parent = new_parent;
            n.name = name.to_owned();
        }
    }

    /// Resolves an inode to its current place; None when unknown or
    /// detached (unlinked, or under a removed directory).
    pub fn loc(&self, ino: u64) -> Option<Loc> {
        let g = self.inner.lock();
        let mut names = Vec::new();
        let mut cur = ino;
        while cur != ROOT_INO {
            let n = g.nodes.get(&cur)?;
            if n.parent == 0 {
                return None;
            }
            names.push(n.name.as_str());
            cur = n.parent;
        }
        names.reverse();
        let (bucket, rest) = match &self.root_bucket {
            Some(b) => (b.clone(), &names[..]),
            None => match names.split_first() {
                None => return Some(Loc::Root),
                Some((b, rest)) => ((*b).to_owned(), rest),
            },
        };
        Some(Loc::Path {
            bucket,
            path: rest.join("/"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_numbers_and_rename() {
        let t = InodeTable::new(None);
        let b = t.child(ROOT_INO, "bkt", FileKind::Dir);
        let d = t.child(b, "d", FileKind::Dir);
        let f = t.child(d, "f", FileKind::File);
        assert_eq!(t.child(d, "f", FileKind::File), f);
        assert_eq!(
            t.loc(f),
            Some(Loc::Path {
                bucket: "bkt".into(),
                path: "d/f".into()
            })
        );
        assert_eq!(t.loc(ROOT_INO), Some(Loc::Root));
        let e = t.child(b, "e", FileKind::Dir);
        t.rename(d, e, "moved");
        assert_eq!(
            t.loc(f),
            Some(Loc::Path {
                bucket: "bkt".into(),
                path: "e/moved/f".into()
            })
        );
        assert_eq!(t.find(b, "d"), None);
        t.detach(e, "moved");
        assert_eq!(t.loc(f), None);
    }

    #[test]
    fn one_bucket_root() {
        let t = InodeTable::new(Some("bkt".into()));
        assert_eq!(
            t.loc(ROOT_INO),
            Some(Loc::Path {
                bucket: "bkt".into(),
                path: String::new()
            })
        );
        let f = t.child(ROOT_INO, "f", FileKind::File);
        assert_eq!(
            t.loc(f),
            Some(Loc::Path {
                bucket: "bkt".into(),
                path: "f".into()
            })
        );
    }
}
