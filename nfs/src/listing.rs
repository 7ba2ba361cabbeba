//! READDIR / READDIRPLUS. A cookie is the file id of the last entry a
//! client received. Per directory id a cursor holds the view's paged
//! directory stream and the offset after each id it handed out; an unknown
//! cookie re-lists from the top to find it (NFS3ERR_BAD_COOKIE if it is
//! not in that directory). nfs3_server pulls entries from `DirIter` until
//! the reply's byte budget is spent, for READDIRPLUS and plain READDIR
//! alike (both resume at the cookie).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nfs3_server::nfs3_types::nfs3::nfsstat3;
use nfs3_server::vfs::{DirEntryPlus, NextResult, ReadDirPlusIterator};

use crate::error::status;
use crate::fs::{CairnNfs, fattr};
use crate::handle::Fh;
use crate::ids::ROOT_ID;

type R<T> = Result<T, nfsstat3>;

/// View entries asked for at a time (a reply ends at the view's page end
/// anyway, see `batch`).
const BATCH: usize = 256;

/// Listings idle this long lose their cursor (clients never say when a
/// listing ends).
const CURSOR_IDLE: Duration = Duration::from_secs(30);

/// Where a directory listing stands: the view's directory stream and, for
/// each id it handed out, the offset after it.
pub(crate) struct DirCursor {
    fh: u64,
    after: HashMap<u64, u64>,
    used: Instant,
}

pub(crate) type Cursors = parking_lot::Mutex<HashMap<u64, Arc<tokio::sync::Mutex<DirCursor>>>>;

/// The entries after one cookie, fetched from the view a batch at a time
/// as nfs3_server asks for more.
pub(crate) struct DirIter<'a> {
    fs: &'a CairnNfs,
    dirid: u64,
    after: u64,
    buf: VecDeque<DirEntryPlus<Fh>>,
    end: bool,
}

impl ReadDirPlusIterator<Fh> for DirIter<'_> {
    async fn next(&mut self) -> NextResult<DirEntryPlus<Fh>> {
        loop {
            if let Some(e) = self.buf.pop_front() {
                self.after = e.cookie;
                return NextResult::Ok(e);
            }
            if self.end {
                return NextResult::Eof;
            }
            if let Err(s) = self.fill().await {
                return NextResult::Err(s);
            }
        }
    }
}

impl DirIter<'_> {
    async fn fill(&mut self) -> R<()> {
        let (entries, end) = self.fs.batch(self.dirid, self.after, BATCH).await?;
        self.buf.extend(entries);
        self.end = end;
        Ok(())
    }
}

impl CairnNfs {
    /// The listing of `dirid` after `cookie`; the first batch is read at
    /// once so a bad directory or cookie is the call's error.
    pub(crate) async fn list(&self, dirid: u64, cookie: u64) -> R<DirIter<'_>> {
        let mut it = DirIter {
            fs: self,
            dirid,
            after: cookie,
            buf: VecDeque::new(),
            end: false,
        };
        it.fill().await?;
        Ok(it)
    }

    /// Up to `max` entries after `start_after`, and whether the directory
    /// ends there.
    async fn batch(
        &self,
        dirid: u64,
        start_after: u64,
        max: usize,
    ) -> R<(Vec<DirEntryPlus<Fh>>, bool)> {
        self.reap_dirs(CURSOR_IDLE);
        let ino = self.ino(dirid).await?;
        let cursor = {
            let existing = self.dirs.lock().get(&dirid).cloned();
            match existing {
                Some(c) => c,
                None => {
                    let fh = self.vfs.opendir(ino).await.map_err(|e| status(&e))?;
                    let c = Arc::new(tokio::sync::Mutex::new(DirCursor {
                        fh,
                        after: HashMap::new(),
                        used: Instant::now(),
                    }));
                    self.dirs.lock().entry(dirid).or_insert(c).clone()
                }
            }
        };
        let mut c = cursor.lock().await;
        c.used = Instant::now();
        let mut offset = if start_after == 0 {
            0
        } else {
            match c.after.get(&start_after) {
                Some(&o) => o,
                // a cookie this cursor did not hand out (or forgot):
                // re-list from the top and skip to it
                None => self.seek_cookie(&mut c, dirid, start_after).await?,
            }
        };
        let mut out = Vec::new();
        let mut end = false;
        let max = max.max(1);
        'pages: while out.len() < max {
            let page = self
                .vfs
                .readdir(c.fh, offset)
                .await
                .map_err(|e| status(&e))?;
            if page.is_empty() {
                end = true;
                break;
            }
            let keep = |e: &cairn_vfs::DirEntry| {
                e.name != "."
                    && e.name != ".."
                    && (dirid != ROOT_ID || self.bucket_allowed(&e.name))
            };
            let names: Vec<&str> = page
                .iter()
                .filter(|e| keep(e))
                .map(|e| e.name.as_str())
                .collect();
            let ids = self.ids.children(dirid, &names).map_err(Self::id_err)?;
            let mut ids = ids.into_iter();
            for e in &page {
                if out.len() >= max {
                    break 'pages;
                }
                offset = e.next_offset;
                if !keep(e) {
                    continue;
                }
                let Some(id) = ids.next() else { break };
                self.remember(id, e.ino);
                let a = match self.vfs.entry_attr(e).await {
                    Some(a) => a,
                    None => match self.vfs.getattr(e.ino).await {
                        Ok(a) => a,
                        // gone since the listing: not shown
                        Err(_) => continue,
                    },
                };
                c.after.insert(id, e.next_offset);
                out.push(DirEntryPlus {
                    fileid: id,
                    name: e.name.as_bytes().to_vec().into(),
                    cookie: id,
                    name_attributes: Some(fattr(id, &a)),
                    name_handle: Some(Fh::new(id)),
                });
            }
            // A batch ends at the view's page end: the next cookie must
            // stay in the page the view holds (an offset before it
            // re-lists the directory from the top).
            if !out.is_empty() {
                break;
            }
        }
        Ok((out, end))
    }

    /// The offset after `cookie`, found by listing from the top.
    async fn seek_cookie(&self, c: &mut DirCursor, dirid: u64, cookie: u64) -> R<u64> {
        let want = self.ids.parent_name(cookie);
        let Some((_, name)) = want.filter(|(p, _)| *p == dirid) else {
            return Err(nfsstat3::NFS3ERR_BAD_COOKIE);
        };
        let mut offset = 0;
        loop {
            let page = self
                .vfs
                .readdir(c.fh, offset)
                .await
                .map_err(|e| status(&e))?;
            let Some(last) = page.last() else {
                return Err(nfsstat3::NFS3ERR_BAD_COOKIE);
            };
            if let Some(e) = page.iter().find(|e| e.name == name) {
                c.after.insert(cookie, e.next_offset);
                return Ok(e.next_offset);
            }
            offset = last.next_offset;
        }
    }

    /// Drops directory cursors idle for a while.
    fn reap_dirs(&self, idle: Duration) {
        let now = Instant::now();
        let mut gone = Vec::new();
        self.dirs.lock().retain(|_, c| match c.try_lock() {
            Ok(g) if now.duration_since(g.used) >= idle => {
                gone.push(g.fh);
                false
            }
            _ => true,
        });
        for fh in gone {
            self.vfs.releasedir(fh);
        }
    }
}
