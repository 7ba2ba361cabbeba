//! Open view handles per file id. NFSv3 has no open or close: the first
//! READ or WRITE of a file opens a cairn-vfs handle, and a background task
//! releases it once idle (which commits staged bytes to the object).
//!
//! Durability: a stable WRITE, and COMMIT after UNSTABLE ones (fs.rs
//! `write`), fsync the staging file, write its sidecar (base, length and
//! dirty ranges: the staging file is sparse) and record its path in the id
//! map's `pending` table, so a crash leaves the durable bytes findable
//! (recover.rs applies their ranges at the next start). A commit drops the
//! staging file; the next write stages in a new one, recorded anew. While a handle's bytes are
//! committed to the object, the id is `closing`: a COMMIT waits for that.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_vfs::{OpenMode, Vfs, VfsError, VfsResult};
use parking_lot::Mutex;

use crate::ids::IdMap;

/// How long a read-only handle is trusted between READs (like a client's
/// attribute cache, far shorter): sequential READs keep it, a pause opens
/// the file again.
const READ_REVALIDATE: Duration = Duration::from_millis(100);

struct Entry {
    fh: u64,
    writable: bool,
    last_used: Instant,
    /// Requests using `fh` now: the reaper leaves it alone.
    in_flight: usize,
    /// The staging file recorded as pending for this id.
    pending: Option<PathBuf>,
}

pub struct OpenFiles {
    vfs: Arc<Vfs>,
    ids: Arc<IdMap>,
    map: Mutex<HashMap<u64, Entry>>,
    /// Handles replaced while requests still used them: view handle ->
    /// requests left (see `adopt`).
    retired: Mutex<HashMap<u64, usize>>,
    /// Ids whose handle is being committed and released, each with a lock
    /// held until that ends. Locked after `map`, never before.
    closing: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    /// A file idle this long is committed (and its handle released).
    pub idle: Duration,
    /// Staged bytes (all files) above which idle-ish files commit early.
    pub high_water: u64,
}

/// A handle lent to one request; `done` gives it back.
pub struct Lease {
    pub fh: u64,
    id: u64,
}

impl OpenFiles {
    pub fn new(vfs: Arc<Vfs>, ids: Arc<IdMap>, idle: Duration, high_water: u64) -> Arc<Self> {
        Arc::new(Self {
            vfs,
            ids,
            map: Mutex::new(HashMap::new()),
            retired: Mutex::new(HashMap::new()),
            closing: Mutex::new(HashMap::new()),
            idle,
            high_water,
        })
    }

    /// A handle on `id` (view inode `ino`) for reading or writing; an open
    /// read-only handle is replaced by a writable one when needed.
    pub async fn lease(&self, id: u64, ino: u64, write: bool) -> VfsResult<Lease> {
        let old = {
            let mut m = self.map.lock();
            match m.get_mut(&id) {
                // a read-only handle idle for a while is opened again, which
                // revalidates against the store (a delete elsewhere shows as
                // STALE, a replaced object with its new bytes)
                Some(e)
                    if !e.writable
                        && e.in_flight == 0
                        && e.last_used.elapsed() >= READ_REVALIDATE =>
                {
                    m.remove(&id).map(|e| e.fh)
                }
                Some(e) if e.writable || !write => {
                    e.in_flight += 1;
                    e.last_used = Instant::now();
                    return Ok(Lease { fh: e.fh, id });
                }
                Some(e) if e.in_flight == 0 => m.remove(&id).map(|e| e.fh),
                // a read-only handle READs still use: `adopt` retires it
                Some(_) => None,
                None => None,
            }
        };
        if let Some(fh) = old {
            self.vfs.release(fh).await?;
        }
        let fh = self
            .vfs
            .open(
                ino,
                OpenMode {
                    write,
                    truncate: false,
                },
            )
            .await?;
        Ok(self.adopt(id, fh, write))
    }

    /// Takes over a handle opened elsewhere (CREATE, or `lease` wanting a
    /// writable one) as `id`'s, lent once. A read-only handle it replaces
    /// may still serve READs: it is retired, and released by the last
    /// `done` (releasing it now would fail those reads).
    pub fn adopt(&self, id: u64, fh: u64, writable: bool) -> Lease {
        let (lent, spare) = {
            let mut m = self.map.lock();
            match m.get_mut(&id) {
                // another request opened it meanwhile: keep theirs
                Some(e) if e.writable || !writable => {
                    e.in_flight += 1;
                    e.last_used = Instant::now();
                    (e.fh, Some(fh))
                }
                _ => {
                    let prev = m.insert(
                        id,
                        Entry {
                            fh,
                            writable,
                            last_used: Instant::now(),
                            in_flight: 1,
                            pending: None,
                        },
                    );
                    let spare = prev.and_then(|p| {
                        if let Some(e) = m.get_mut(&id) {
                            e.pending = p.pending;
                        }
                        if p.in_flight == 0 {
                            return Some(p.fh);
                        }
                        self.retired.lock().insert(p.fh, p.in_flight);
                        None
                    });
                    (fh, spare)
                }
            }
        };
        if let Some(extra) = spare {
            self.release_later(extra);
        }
        Lease { fh: lent, id }
    }

    /// Releases a handle no request uses any more, off the caller's path.
    fn release_later(&self, fh: u64) {
        let vfs = self.vfs.clone();
        tokio::spawn(async move {
            if let Err(e) = vfs.release(fh).await {
                tracing::warn!(error = %e, "releasing a spare NFS handle");
            }
        });
    }

    pub fn done(&self, lease: Lease) {
        let mut m = self.map.lock();
        if let Some(e) = m.get_mut(&lease.id)
            && e.fh == lease.fh
        {
            e.in_flight = e.in_flight.saturating_sub(1);
            e.last_used = Instant::now();
            return;
        }
        drop(m);
        // a retired handle: the last request using it releases it
        let last = {
            let mut r = self.retired.lock();
            match r.get_mut(&lease.fh) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    r.remove(&lease.fh);
                    true
                }
                None => false,
            }
        };
        if last {
            self.release_later(lease.fh);
        }
    }

    /// Makes what was written through `lease` durable before the reply.
    pub async fn make_durable(&self, lease: &Lease) -> VfsResult<()> {
        let Some(path) = self.vfs.sync_staging(lease.fh).await? else {
            return Ok(());
        };
        let known = self
            .map
            .lock()
            .get(&lease.id)
            .and_then(|e| e.pending.clone());
        if known.as_ref() != Some(&path) {
            // the new staging file's name must survive a crash too
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            self.ids
                .set_pending(lease.id, &path)
                .map_err(|e| VfsError::Io(std::io::Error::other(e)))?;
            if let Some(e) = self.map.lock().get_mut(&lease.id) {
                e.pending = Some(path);
            }
        }
        Ok(())
    }

    /// Whether `id` has an open handle (its staged state is the truth).
    pub fn is_open(&self, id: u64) -> bool {
        self.map.lock().contains_key(&id)
    }

    /// Whether `id` has an open handle; when its handle is being committed,
    /// waits for that first (the commit is what makes its bytes durable).
    pub async fn is_open_or_wait(&self, id: u64) -> bool {
        loop {
            let busy = {
                let m = self.map.lock();
                if m.contains_key(&id) {
                    return true;
                }
                match self.closing.lock().get(&id) {
                    Some(l) => l.clone(),
                    None => return false,
                }
            };
            drop(busy.lock().await);
        }
    }

    /// Marks `id` closing (the caller holds `map`'s lock and has just taken
    /// the entry out); the guard ends it.
    fn start_closing(&self, id: u64) -> Closing<'_> {
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        let guard = lock.clone().try_lock_owned().ok();
        self.closing.lock().insert(id, lock.clone());
        Closing {
            open: self,
            id,
            lock,
            _guard: guard,
        }
    }

    /// Commits and releases `id`'s handle now (REMOVE, a new CREATE).
    pub async fn close(&self, id: u64) -> VfsResult<()> {
        let (e, _closing) = {
            let mut m = self.map.lock();
            let Some(e) = m.remove(&id) else {
                return Ok(());
            };
            (e, self.start_closing(id))
        };
        self.finish(id, e).await
    }

    async fn finish(&self, id: u64, e: Entry) -> VfsResult<()> {
        let res = self.vfs.release(e.fh).await;
        // a failed commit keeps its bytes in the spool's lost+found
        // (cairn-vfs), so the record goes either way
        if e.pending.is_some()
            && let Err(err) = self.ids.clear_pending(id)
        {
            tracing::warn!(id, error = %err, "clearing a pending NFS write record");
        }
        if let Err(err) = &res {
            tracing::error!(id, error = %err, "committing NFS writes failed");
        }
        res
    }

    /// Commits every file idle for `idle`, and when staging holds more than
    /// `high_water` bytes, every file not in use.
    pub async fn reap(&self) {
        let now = Instant::now();
        let pressure = self.vfs.staged_bytes() > self.high_water;
        let due: Vec<(u64, Entry, Closing<'_>)> = {
            let mut m = self.map.lock();
            let ids: Vec<u64> = m
                .iter()
                .filter(|(_, e)| {
                    e.in_flight == 0 && (pressure || now.duration_since(e.last_used) >= self.idle)
                })
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| m.remove(&id).map(|e| (id, e, self.start_closing(id))))
                .collect()
        };
        for (id, e, _closing) in due {
            // commit first, keeping the handle: a commit that fails (the
            // store lost its quorum) leaves the bytes staged and recorded,
            // and the file is tried again after another idle period
            if let Err(err) = self.vfs.flush(e.fh).await {
                if matches!(err, VfsError::StagingLost { .. }) {
                    // no retry can commit bytes that never reached the
                    // staging file (their WRITEs or the COMMIT were refused):
                    // release drops them and the object stays as it was
                    let _ = self.finish(id, e).await;
                    continue;
                }
                tracing::warn!(id, error = %err, "committing NFS writes failed; will retry");
                let spare = {
                    let mut m = self.map.lock();
                    match m.get_mut(&id) {
                        // opened again meanwhile: the view shares one staged
                        // state per inode, so the new handle holds the same
                        // bytes; it takes the record, the old handle goes
                        Some(now) => {
                            now.pending = now.pending.take().or(e.pending);
                            Some(e.fh)
                        }
                        None => {
                            m.insert(
                                id,
                                Entry {
                                    last_used: Instant::now(),
                                    ..e
                                },
                            );
                            None
                        }
                    }
                };
                if let Some(fh) = spare {
                    let _ = self.vfs.release(fh).await;
                }
                continue;
            }
            let _ = self.finish(id, e).await;
        }
    }

    /// Commits everything (clean shutdown).
    pub async fn close_all(&self) {
        let all: Vec<(u64, Entry)> = self.map.lock().drain().collect();
        for (id, e) in all {
            let _ = self.finish(id, e).await;
        }
        // directory times still waiting for their markers
        self.vfs.flush_dir_times(true).await;
    }

    /// Runs the reaper every quarter of the idle time.
    pub fn start_reaper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        let tick = (self.idle / 4).max(Duration::from_millis(50));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                let Some(me) = me.upgrade() else { return };
                me.reap().await;
            }
        })
    }
}

/// An id being committed and released; dropping it ends that.
struct Closing<'a> {
    open: &'a OpenFiles,
    id: u64,
    lock: Arc<tokio::sync::Mutex<()>>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        let mut c = self.open.closing.lock();
        // a later close of the same id (reopened meanwhile) keeps its own
        if c.get(&self.id).is_some_and(|l| Arc::ptr_eq(l, &self.lock)) {
            c.remove(&self.id);
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fixtures below a temp folder
mod tests {
    use super::*;
    use cairn_api::mem::MemLayer;
    use cairn_api::{BucketName, ObjectKey, ObjectLayer as _, PutOptions, bytes_stream};
    use cairn_vfs::{ROOT_INO, VfsConfig};

    /// A write lease taken while a READ holds the read-only handle must not
    /// release that handle under the READ; the READ's `done` does.
    #[tokio::test]
    async fn a_writer_does_not_release_a_handle_a_read_uses() {
        let layer = Arc::new(MemLayer::new());
        let b = BucketName::new("bkt").unwrap();
        layer.make_bucket(&b).await.unwrap();
        layer
            .put_object(
                &b,
                &ObjectKey::new("f").unwrap(),
                bytes_stream(vec![7u8; 4096]),
                PutOptions::default(),
            )
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let vfs = Arc::new(Vfs::new(layer, VfsConfig::new(dir.path().join("spool"))).unwrap());
        let ids = Arc::new(IdMap::open(&dir.path().join("ids.redb")).unwrap());
        let bkt = vfs.lookup(ROOT_INO, "bkt").await.unwrap().ino;
        let ino = vfs.lookup(bkt, "f").await.unwrap().ino;
        let open = OpenFiles::new(vfs.clone(), ids, Duration::from_secs(1), u64::MAX);

        let read = open.lease(9, ino, false).await.unwrap();
        let write = open.lease(9, ino, true).await.unwrap();
        assert_ne!(
            read.fh, write.fh,
            "a writable handle replaces the read-only one"
        );
        // let any release the swap spawned run
        tokio::time::sleep(Duration::from_millis(50)).await;
        let got = vfs
            .read(read.fh, 0, 10)
            .await
            .expect("the READ's handle is still open");
        assert_eq!(got.to_vec(), vec![7u8; 10]);

        let old = read.fh;
        open.done(read);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            vfs.read(old, 0, 10).await.is_err(),
            "the last request on a retired handle releases it"
        );
        assert!(open.retired.lock().is_empty());
        open.done(write);
        assert_eq!(open.map.lock().get(&9).map(|e| e.in_flight), Some(0));
    }
}
