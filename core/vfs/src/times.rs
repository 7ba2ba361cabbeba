//! The times a namespace change gives, as a local filesystem gives them:
//! a directory's mtime and ctime when an entry is added to it or removed
//! from it (create, mknod, symlink, mkdir, unlink, rmdir, rename), and the
//! ctime of a renamed entry. They are kept where the other attributes are
//! (the directory's `dir/` marker, the file's object), so they survive a
//! remount and show the same over NFS and s3fs. A directory without a
//! marker (keys written over S3) and a bucket's top directory keep no
//! times of their own: theirs stay as they were.
//!
//! A directory's new times show at once but reach its marker in a batch:
//! the first change starts a wait of `DIR_TIMES_DELAY`, and one rewrite of
//! the marker then carries the last change's time (an untar of thousands
//! of files into one directory costs a few rewrites, not one per file:
//! rewriting the marker per change made such an untar ten times slower).
//! A task of the front writes them (`keep_dir_times`), and `sync` (fsync of
//! a directory, unmount) writes them all.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

use cairn_api::{ObjectError, ObjectMetadata};

use crate::Vfs;
use crate::attr::{Attr, DIR_CONTENT_TYPE, FileKind};
use crate::error::VfsResult;
use crate::inode::Loc;
use crate::names::{bucket, dir_key};

/// How long a directory's new times wait before its marker is rewritten.
const DIR_TIMES_DELAY: Duration = Duration::from_millis(500);

/// Directories whose entries changed and whose markers do not show it yet:
/// inode -> (when the first change waits since, the last change's time).
#[derive(Default)]
pub(crate) struct DirTimes {
    pending: Mutex<HashMap<u64, (Instant, SystemTime)>>,
}

impl Vfs {
    /// `dir`'s entries changed: its mtime and ctime are now, shown at once
    /// and written into its marker soon (see the module's notes).
    pub(crate) fn touch_dir(&self, dir: u64) {
        if self.cfg.read_only {
            return;
        }
        let now = SystemTime::now();
        self.dir_times
            .pending
            .lock()
            .entry(dir)
            .and_modify(|e| e.1 = now)
            .or_insert((Instant::now(), now));
        if let Some(mut a) = self.cache.get(dir) {
            a.mtime = now;
            a.ctime = now;
            self.cache.put(&a);
        }
    }

    /// A directory's attributes from the store, with times not yet
    /// written shown over them.
    pub(crate) fn with_pending_times(&self, mut a: Attr) -> Attr {
        if a.kind == FileKind::Dir
            && let Some((_, t)) = self.dir_times.pending.lock().get(&a.ino)
        {
            a.mtime = *t;
            a.ctime = *t;
        }
        a
    }

    /// Writes the directory times that waited `DIR_TIMES_DELAY` (all of
    /// them with `all`) into their markers. A failure is logged: the
    /// change itself was made.
    pub async fn flush_dir_times(&self, all: bool) {
        let due: Vec<(u64, SystemTime)> = self
            .dir_times
            .pending
            .lock()
            .iter()
            .filter(|(_, (since, _))| all || since.elapsed() >= DIR_TIMES_DELAY)
            .map(|(ino, (_, t))| (*ino, *t))
            .collect();
        for (dir, t) in due {
            if let Err(e) = self.stamp_dir(dir, Some(t)).await {
                tracing::debug!(error = %e, dir, "directory times not written");
            }
            self.dir_times_written(dir, Some(t));
        }
    }

    /// The time of `dir`'s last entry change that its marker does not
    /// show yet.
    pub(crate) fn pending_dir_time(&self, dir: u64) -> Option<SystemTime> {
        self.dir_times.pending.lock().get(&dir).map(|(_, t)| *t)
    }

    /// `dir`'s marker was rewritten with its times as they were at `seen`
    /// (`pending_dir_time` before the rewrite): they no longer wait,
    /// unless another change came since. Without this, a batch written
    /// after an explicit utimensat (tar sets a directory's times after
    /// its entries) would put the older change's time back.
    pub(crate) fn dir_times_written(&self, dir: u64, seen: Option<SystemTime>) {
        let mut p = self.dir_times.pending.lock();
        if seen.is_some() && p.get(&dir).map(|(_, last)| *last) == seen {
            p.remove(&dir);
        }
    }

    /// Starts the task that writes directory times (every 250 ms), on the
    /// current runtime; it ends with the view.
    pub fn keep_dir_times(self: &Arc<Self>) {
        let me: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(DIR_TIMES_DELAY / 2).await;
                let Some(v) = me.upgrade() else { return };
                v.flush_dir_times(false).await;
            }
        });
    }

    /// A renamed entry's ctime becomes now (its object's metadata, or a
    /// directory's marker).
    pub(crate) async fn touch_ctime(&self, ino: u64) {
        let r = match self.inodes.kind(ino) {
            Some(FileKind::Dir) => self.stamp_dir(ino, None).await,
            Some(_) => {
                self.with_file_state(ino, async |st| {
                    let mut a = st.attr.clone();
                    a.ctime = SystemTime::now();
                    let user = st.extra_user.clone();
                    self.store_meta(ino, st, a, user).await
                })
                .await
            }
            None => Ok(()),
        };
        if let Err(e) = r {
            tracing::debug!(error = %e, ino, "ctime not updated after rename");
        }
    }

    /// Writes a directory's times into its marker: mtime and ctime `both`
    /// when given, else its ctime now (a rename of the directory itself).
    async fn stamp_dir(&self, dir: u64, both: Option<SystemTime>) -> VfsResult<()> {
        let Loc::Path { bucket: b, path } = self.loc(dir)? else {
            return Ok(());
        };
        if path.is_empty() || self.cfg.read_only {
            return Ok(());
        }
        let mut a = self.getattr(dir).await?;
        if a.kind != FileKind::Dir {
            return Ok(());
        }
        match both {
            Some(t) => {
                a.mtime = t;
                a.ctime = t;
            }
            None => a.ctime = SystemTime::now(),
        }
        let b = bucket(&b)?;
        let k = dir_key(&path)?;
        let mut metadata = ObjectMetadata::default();
        metadata.headers.content_type = Some(DIR_CONTENT_TYPE.into());
        a.to_metadata(&mut metadata.user);
        match self.replace_metadata(&b, &k, metadata).await {
            Ok(_) => {
                self.cache.put(&a);
                Ok(())
            }
            // a directory that exists as a prefix only: no times of its own
            Err(ObjectError::NoSuchKey { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
