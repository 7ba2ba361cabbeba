//! Directory streams: entries come a listing page at a time (prefix +
//! delimiter `/`), so a directory of millions of keys is never held in
//! memory. Offsets are entry indexes: `.` is 0, `..` is 1.

use std::collections::HashSet;
use std::sync::Arc;

use cairn_api::{ListOptions, ListPage, ObjectError, ObjectResult};

use crate::Vfs;
use crate::attr::{self, Attr, FileKind};
use crate::error::{VfsError, VfsResult};
use crate::inode::{Loc, ROOT_INO};
use crate::names::bucket;

#[derive(Debug, Clone)]
pub struct DirEntry {
    pub ino: u64,
    pub name: String,
    pub kind: FileKind,
    /// The offset to resume after this entry.
    pub next_offset: u64,
    /// Known attributes (files listed with their metadata); directories
    /// found as prefixes have none.
    pub attr: Option<Attr>,
}

pub(crate) struct DirStream {
    ino: u64,
    loc: Loc,
    page: Vec<DirEntry>,
    page_start: u64,
    next_marker: Option<String>,
    started: bool,
    done: bool,
    /// Uncommitted new files not yet seen in the listing.
    pending: Vec<(u64, String)>,
    /// File names of the previous page: `a` and the prefix `a/` may land
    /// on two pages (keys like `a-b` sort between them), and one name
    /// must be listed once.
    prev_files: HashSet<String>,
    /// The next listing page, asked of the store as soon as this one came
    /// (its marker, the task), so the store lists it while the client
    /// reads the entries it has.
    prefetch: Option<(
        Option<String>,
        tokio::task::JoinHandle<ObjectResult<ListPage>>,
    )>,
}

impl Drop for DirStream {
    fn drop(&mut self) {
        if let Some((_, h)) = self.prefetch.take() {
            h.abort();
        }
    }
}

impl Vfs {
    pub async fn opendir(&self, ino: u64) -> VfsResult<u64> {
        let a = self.getattr(ino).await?;
        if a.kind != FileKind::Dir {
            return Err(VfsError::NotDir);
        }
        let loc = self.loc(ino)?;
        let fh = self.new_fh();
        let ds = DirStream {
            ino,
            loc,
            page: Vec::new(),
            page_start: 0,
            next_marker: None,
            started: false,
            done: false,
            pending: self.pending_children(ino),
            prev_files: HashSet::new(),
            prefetch: None,
        };
        self.dirs
            .lock()
            .insert(fh, Arc::new(tokio::sync::Mutex::new(ds)));
        Ok(fh)
    }

    pub fn releasedir(&self, fh: u64) {
        self.dirs.lock().remove(&fh);
    }

    /// Entries from `offset` on: the rest of the current page (the caller
    /// takes what fits and asks again); empty at the end.
    /// The attributes to hand out with a listed entry (readdirplus): an
    /// open file's own (its staged size), else those the listing carried;
    /// `None` for entries listed without attributes (prefix directories,
    /// `.` and `..`).
    pub async fn entry_attr(&self, e: &DirEntry) -> Option<Attr> {
        if e.kind != FileKind::Dir
            && let Some(a) = self.open_attr(e.ino).await
        {
            return Some(a);
        }
        e.attr.clone()
    }

    pub async fn readdir(&self, fh: u64, offset: u64) -> VfsResult<Vec<DirEntry>> {
        self.readdir_at_most(fh, offset, usize::MAX).await
    }

    /// `readdir`, at most `max` entries: a front whose reply holds a few
    /// dozen entries (a FUSE readdirplus buffer) does not copy the rest of
    /// a 1,000-entry page on every call.
    pub async fn readdir_at_most(
        &self,
        fh: u64,
        offset: u64,
        max: usize,
    ) -> VfsResult<Vec<DirEntry>> {
        let ds = self
            .dirs
            .lock()
            .get(&fh)
            .cloned()
            .ok_or(VfsError::BadHandle)?;
        let mut ds = ds.lock().await;
        loop {
            if offset < ds.page_start || !ds.started {
                // (re)start from the top: seekdir backwards, or first call
                ds.page_start = 0;
                ds.page.clear();
                ds.prev_files.clear();
                ds.next_marker = None;
                ds.done = false;
                ds.started = true;
                if let Some((_, h)) = ds.prefetch.take() {
                    h.abort();
                }
                ds.pending = self.pending_children(ds.ino);
                let parent = self
                    .inodes
                    .parent_name(ds.ino)
                    .map(|(p, _)| p)
                    .unwrap_or(ROOT_INO);
                let me = ds.ino;
                ds.page.push(DirEntry {
                    ino: me,
                    name: ".".into(),
                    kind: FileKind::Dir,
                    next_offset: 1,
                    attr: None,
                });
                ds.page.push(DirEntry {
                    ino: parent,
                    name: "..".into(),
                    kind: FileKind::Dir,
                    next_offset: 2,
                    attr: None,
                });
                // The first reply carries entries, not just `.` and `..`:
                // with readdirplus on demand the kernel asks with attributes
                // only at offset 0 (and after lookups), so a reply of the
                // dots alone made `ls -l` fetch its first 1,000 entries
                // without attributes and look each one up.
                if !ds.done {
                    let mut first = self.fetch_page(&mut ds).await?;
                    for (i, e) in first.iter_mut().enumerate() {
                        e.next_offset = 2 + i as u64 + 1;
                    }
                    ds.page.append(&mut first);
                }
            }
            let end = ds.page_start + ds.page.len() as u64;
            if offset < end {
                let from = (offset - ds.page_start) as usize;
                let to = from.saturating_add(max).min(ds.page.len());
                return Ok(ds.page.get(from..to).unwrap_or_default().to_vec());
            }
            if ds.done {
                return Ok(Vec::new());
            }
            let mut next = self.fetch_page(&mut ds).await?;
            for (i, e) in next.iter_mut().enumerate() {
                e.next_offset = end + i as u64 + 1;
            }
            ds.page_start = end;
            ds.page = next;
        }
    }

    async fn fetch_page(&self, ds: &mut DirStream) -> VfsResult<Vec<DirEntry>> {
        let mut out = Vec::new();
        match ds.loc.clone() {
            Loc::Root => {
                for b in self.layer.list_buckets().await? {
                    let ino = self.inodes.child(ROOT_INO, &b.name, FileKind::Dir);
                    out.push(DirEntry {
                        ino,
                        name: b.name,
                        kind: FileKind::Dir,
                        next_offset: 0,
                        attr: None,
                    });
                }
                ds.done = true;
            }
            Loc::Path { bucket: b, path } => {
                let b = bucket(&b)?;
                let prefix = if path.is_empty() {
                    String::new()
                } else {
                    format!("{path}/")
                };
                let opts = |start_after: Option<String>| ListOptions {
                    prefix: prefix.clone(),
                    delimiter: Some("/".into()),
                    start_after,
                    max_keys: self.cfg.list_page,
                };
                let page = match ds.prefetch.take() {
                    Some((marker, h)) if marker == ds.next_marker => {
                        h.await.map_err(ObjectError::internal)??
                    }
                    other => {
                        if let Some((_, h)) = other {
                            h.abort();
                        }
                        self.layer
                            .list_objects(&b, opts(ds.next_marker.clone()))
                            .await?
                    }
                };
                let mut dirs: HashSet<&str> = HashSet::new();
                for cp in &page.common_prefixes {
                    let name = cp[prefix.len()..].trim_end_matches('/');
                    if name.is_empty() {
                        continue;
                    }
                    if ds.prev_files.contains(name) {
                        // listed as a file on the last page; lookup must
                        // probe again and find the directory
                        if let Some(ino) = self.inodes.find(ds.ino, name) {
                            self.cache.remove(ino);
                        }
                        continue;
                    }
                    dirs.insert(name);
                    let ino = self.inodes.child(ds.ino, name, FileKind::Dir);
                    out.push(DirEntry {
                        ino,
                        name: name.to_owned(),
                        kind: FileKind::Dir,
                        next_offset: 0,
                        attr: None,
                    });
                }
                for o in &page.objects {
                    let name = &o.key[prefix.len()..];
                    // the directory's own marker; a same-named directory wins
                    if name.is_empty() || dirs.contains(name) {
                        continue;
                    }
                    let ino = self.inodes.find(ds.ino, name).unwrap_or(0);
                    let mut a = attr::from_object(ino, o, false, &self.cfg.defaults);
                    a.ino = self.inodes.child(ds.ino, name, a.kind);
                    let open = self.open.lock().contains_key(&a.ino);
                    if !open {
                        self.cache.put(&a);
                    }
                    out.push(DirEntry {
                        ino: a.ino,
                        name: name.to_owned(),
                        kind: a.kind,
                        next_offset: 0,
                        attr: (!open).then_some(a),
                    });
                }
                ds.prev_files = out
                    .iter()
                    .filter(|e| e.kind != FileKind::Dir)
                    .map(|e| e.name.clone())
                    .collect();
                if !ds.pending.is_empty() {
                    let seen: HashSet<&str> = out.iter().map(|e| e.name.as_str()).collect();
                    ds.pending.retain(|(_, n)| !seen.contains(n.as_str()));
                }
                ds.next_marker = page.next_marker.clone();
                ds.done = !page.is_truncated || page.next_marker.is_none();
                if !ds.done {
                    let layer = self.layer.clone();
                    let (b, o) = (b.clone(), opts(ds.next_marker.clone()));
                    let h = tokio::spawn(async move { layer.list_objects(&b, o).await });
                    ds.prefetch = Some((ds.next_marker.clone(), h));
                }
                if ds.done {
                    for (ino, name) in std::mem::take(&mut ds.pending) {
                        out.push(DirEntry {
                            ino,
                            name,
                            kind: FileKind::File,
                            next_offset: 0,
                            attr: None,
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}
