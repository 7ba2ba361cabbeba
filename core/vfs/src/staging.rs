//! Write staging: a file opened for writing keeps what it changed in a
//! local spool file until flush/fsync/release commits it. The spool file
//! is sparse: it holds only the bytes written (the dirty ranges, kept in
//! a `Ranges` set); the other bytes below `base_valid` are the base
//! object's (read from the store), the rest zeros. A commit of a stored
//! file sends only the dirty ranges (`changes`, a patch stream); a new
//! file's spool file is its whole content. The dirty bytes of all files
//! together are bounded (`SpoolBudget`); a truncate-up costs nothing.
//!
//! Large writes are written behind: the caller returns once the bytes are
//! handed to a blocking-pool thread, so a front answers a 1 MiB write
//! while its copy into the page cache runs beside the next one. Every
//! other operation first waits for those writes (`settle`), and a failed
//! one fails every later operation (the staged bytes are incomplete).

use std::fs::File;
use std::io::{Seek as _, SeekFrom};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cairn_api::{ByteStream, PatchBase, PatchStream, byte_stream};
use parking_lot::{Condvar, Mutex};
use tokio::io::AsyncReadExt as _;

use crate::error::{VfsError, VfsResult};
use crate::ranges::Ranges;
use crate::sidecar::{self, StagedState};

/// How many bytes all staging files hold together, against a limit.
#[derive(Debug)]
pub struct SpoolBudget {
    used: AtomicU64,
    limit: u64,
}

impl SpoolBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicU64::new(0),
            limit,
        })
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn grow(&self, by: u64) -> VfsResult<()> {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_add(by);
            if next > self.limit {
                return Err(VfsError::NoSpace { limit: self.limit });
            }
            match self
                .used
                .compare_exchange(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
    }

    fn shrink(&self, by: u64) {
        self.used.fetch_sub(by, Ordering::AcqRel);
    }
}

/// How staging files' names begin in the spool directory.
pub const STAGE_PREFIX: &str = "stage-";

/// One staged file: a named temporary file in the spool directory (named
/// so it can be kept for recovery when a commit finally fails).
pub struct Staging {
    file: Option<tempfile::NamedTempFile>,
    len: u64,
    /// The bytes written (in the spool file), merged; the budget counts them.
    dirty: Ranges,
    /// Bytes below this that no dirty range covers are the base object's.
    base_valid: u64,
    /// The base object's size.
    base_size: u64,
    /// The sidecar written by `sync` (removed with the staging file), and
    /// what it holds (a sync that changes nothing does not rewrite it).
    sidecar: Option<(PathBuf, StagedState)>,
    budget: Arc<SpoolBudget>,
    /// Writes being written behind, and the first one that failed.
    behind: Arc<Behind>,
    /// The file for those writes (a second descriptor, made at the first).
    behind_file: Option<Arc<File>>,
    /// Start writeback of written bytes at once (they will be fsynced).
    writeback: bool,
}

#[derive(Default)]
struct Behind {
    state: Mutex<BehindState>,
    done: Condvar,
}

#[derive(Default)]
struct BehindState {
    bytes: u64,
    /// The errno of the first that failed (logged when it failed).
    error: Option<i32>,
}

const CHUNK: usize = 1 << 20;
/// Zero chunks of a patch stream are slices of this.
static ZEROS: [u8; CHUNK] = [0; CHUNK];
/// Streams of at most this many bytes are read into memory at once.
const SMALL_STREAM: u64 = 256 << 10;
/// Writes of at least this many bytes are written behind; smaller ones
/// (most files of a `cp -r`) are not worth a thread hop.
const BEHIND_MIN: usize = 128 << 10;
/// At most this many bytes are written behind at once (memory bound).
const BEHIND_MAX: u64 = 8 << 20;

impl Staging {
    /// `writeback`: the staged bytes will be made durable (`sync`), so
    /// start writing them to disk as they arrive.
    pub fn new(dir: &Path, budget: Arc<SpoolBudget>, writeback: bool) -> VfsResult<Self> {
        Self::over(dir, budget, writeback, 0, 0)
    }

    /// The staging of a stored file of `base_size` bytes shown `len` bytes
    /// long: nothing dirty, every byte below `min(len, base_size)` the
    /// base's. The spool file is sparse: nothing is copied.
    pub fn over(
        dir: &Path,
        budget: Arc<SpoolBudget>,
        writeback: bool,
        len: u64,
        base_size: u64,
    ) -> VfsResult<Self> {
        let file = tempfile::Builder::new()
            .prefix(STAGE_PREFIX)
            .tempfile_in(dir)?;
        if len > 0 {
            file.as_file().set_len(len)?;
        }
        Ok(Self {
            file: Some(file),
            len,
            dirty: Ranges::new(),
            base_valid: len.min(base_size),
            base_size,
            sidecar: None,
            budget,
            behind: Arc::default(),
            behind_file: None,
            writeback,
        })
    }

    /// Waits for the writes written behind; the first that failed fails
    /// this and every later call.
    fn settle(&self) -> VfsResult<()> {
        let mut st = self.behind.state.lock();
        while st.bytes > 0 {
            self.behind.done.wait(&mut st);
        }
        // the errno carries on (ENOSPC must stay ENOSPC to the client)
        match st.error {
            Some(errno) => Err(VfsError::StagingLost { errno }),
            None => Ok(()),
        }
    }

    fn f(&self) -> VfsResult<&File> {
        self.file
            .as_ref()
            .map(|f| f.as_file())
            .ok_or(VfsError::BadHandle)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ranges written since the base.
    pub fn dirty(&self) -> &Ranges {
        &self.dirty
    }

    /// Bytes below this that no dirty range covers are the base's.
    pub fn base_valid(&self) -> u64 {
        self.base_valid
    }

    pub fn base_size(&self) -> u64 {
        self.base_size
    }

    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> VfsResult<()> {
        self.settle()?;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(VfsError::Invalid("offset overflows"))?;
        let add = self.dirty.uncovered(offset, end);
        self.budget.grow(add)?;
        if let Err(e) = self.f()?.write_all_at(data, offset) {
            self.budget.shrink(add);
            return Err(e.into());
        }
        if self.writeback {
            cairn_api::fsio::writeback_completed(self.f()?, offset, end);
        }
        self.dirty.insert(offset, end);
        self.len = self.len.max(end);
        Ok(())
    }

    /// `write_at` of an owned buffer: a large one is written behind (the
    /// call returns before the bytes are in the file; later calls wait).
    pub fn write_bytes_at(&mut self, offset: u64, data: Bytes) -> VfsResult<()> {
        if data.len() < BEHIND_MIN || tokio::runtime::Handle::try_current().is_err() {
            return self.write_at(offset, &data);
        }
        let len = data.len() as u64;
        let end = offset
            .checked_add(len)
            .ok_or(VfsError::Invalid("offset overflows"))?;
        {
            let mut st = self.behind.state.lock();
            while st.bytes > 0 && st.bytes + len > BEHIND_MAX && st.error.is_none() {
                self.behind.done.wait(&mut st);
            }
            // an earlier failure fails this write too
            if st.error.is_some() {
                drop(st);
                return self.settle();
            }
        }
        let add = self.dirty.uncovered(offset, end);
        self.budget.grow(add)?;
        let file = match &self.behind_file {
            Some(f) => f.clone(),
            None => {
                let f = Arc::new(self.f()?.try_clone()?);
                self.behind_file = Some(f.clone());
                f
            }
        };
        self.behind.state.lock().bytes += len;
        // dirty from now: a write behind that fails fails every later call
        self.dirty.insert(offset, end);
        self.len = self.len.max(end);
        let behind = self.behind.clone();
        let writeback = self.writeback;
        tokio::task::spawn_blocking(move || {
            let r = file.write_all_at(&data, offset);
            if r.is_ok() && writeback {
                cairn_api::fsio::writeback_completed(&file, offset, end);
            }
            let mut st = behind.state.lock();
            st.bytes -= len;
            if let Err(e) = r {
                tracing::warn!(error = %e, offset, len, "a write behind to a staging file failed");
                st.error
                    .get_or_insert(e.raw_os_error().unwrap_or(libc::EIO));
            }
            behind.done.notify_all();
        });
        Ok(())
    }

    pub fn read_at(&self, offset: u64, size: usize) -> VfsResult<Vec<u8>> {
        self.settle()?;
        if offset >= self.len {
            return Ok(Vec::new());
        }
        let n = (self.len - offset).min(size as u64) as usize;
        let mut buf = vec![0u8; n];
        self.f()?.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// Truncates or extends. Down: dirty bytes past `len` go, and so do
    /// the base's (`base_valid`); up: a hole (zeros), nothing staged.
    pub fn set_len(&mut self, len: u64) -> VfsResult<()> {
        self.settle()?;
        self.f()?.set_len(len)?;
        if len < self.len {
            let gone = self.dirty.truncate(len);
            self.budget.shrink(gone);
            self.base_valid = self.base_valid.min(len);
        }
        self.len = len;
        Ok(())
    }

    /// The patch of this staging against its base: the dirty ranges read
    /// from the spool file (chunks of at most 1 MiB, read on the blocking
    /// pool), plus zeros for the bytes of `[base_valid, min(len,
    /// zero_until))` that no range covers (a truncate-down then up cleared
    /// them; the patch zero-fills only past the base's end). Ascending.
    pub fn changes(&self, zero_until: u64) -> VfsResult<PatchStream> {
        self.settle()?;
        let file = Arc::new(self.f()?.try_clone()?);
        // (start, end, from the spool)
        let mut plan: Vec<(u64, u64, bool)> =
            Vec::with_capacity(self.dirty.count().saturating_mul(2) + 1);
        let (zs, ze) = (self.base_valid, self.len.min(zero_until));
        let mut zeros = Vec::new();
        if zs < ze {
            let mut pos = zs;
            for (s, e) in self.dirty.overlapping(zs, ze) {
                if s > pos {
                    zeros.push((pos, s, false));
                }
                pos = e;
            }
            if pos < ze {
                zeros.push((pos, ze, false));
            }
        }
        let mut z = zeros.into_iter().peekable();
        for (s, e) in self.dirty.iter() {
            while let Some(zr) = z.next_if(|zr| zr.0 < s) {
                plan.push(zr);
            }
            plan.push((s, e, true));
        }
        plan.extend(z);
        struct St {
            plan: std::vec::IntoIter<(u64, u64, bool)>,
            cur: Option<(u64, u64, bool)>,
            file: Arc<File>,
        }
        let st = St {
            plan: plan.into_iter(),
            cur: None,
            file,
        };
        Ok(Box::pin(futures::stream::unfold(st, |mut st| async move {
            let (pos, end, spool) = match st.cur.take() {
                Some(c) => c,
                None => st.plan.next()?,
            };
            let n = (end - pos).min(CHUNK as u64);
            if pos + n < end {
                st.cur = Some((pos + n, end, spool));
            }
            let item = if spool {
                let f = st.file.clone();
                match tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; n as usize];
                    f.read_exact_at(&mut buf, pos).map(|()| buf)
                })
                .await
                {
                    Ok(Ok(buf)) => Ok((pos, Bytes::from(buf))),
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(std::io::Error::other(e)),
                }
            } else {
                let z = ZEROS.get(..n as usize).unwrap_or_default();
                Ok((pos, Bytes::from_static(z)))
            };
            if item.is_err() {
                // nothing after an error
                st.cur = None;
                st.plan = Vec::new().into_iter();
            }
            Some((item, st))
        })))
    }

    /// A stream of `len` bytes from `offset`, read through a second file
    /// description so positional writes elsewhere are unaffected.
    pub fn stream(&self, offset: u64, len: u64) -> VfsResult<ByteStream> {
        self.settle()?;
        if len <= SMALL_STREAM {
            // Small files (most of a `cp -r` or `tar -x`): one pread of the
            // bytes just written (page cache), instead of a second open and
            // a read on the blocking pool per chunk.
            let bytes = self.read_at(offset, len as usize)?;
            return Ok(cairn_api::bytes_stream(bytes));
        }
        let path = self
            .file
            .as_ref()
            .map(|f| f.path().to_path_buf())
            .ok_or(VfsError::BadHandle)?;
        let mut f = File::open(&path)?;
        f.seek(SeekFrom::Start(offset))?;
        let reader = tokio::fs::File::from_std(f).take(len);
        Ok(byte_stream(tokio_util::io::ReaderStream::with_capacity(
            reader, CHUNK,
        )))
    }

    /// Where the staged bytes are (the NFS front records it so a crash
    /// leaves them findable).
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path())
    }

    /// What a sidecar records of this staging over `base`.
    pub fn state(&self, base: Option<&PatchBase>) -> StagedState {
        StagedState {
            base: base.map(|b| sidecar::StagedBase {
                etag: b.etag.clone(),
                version_id: b.version_id.clone(),
            }),
            base_size: self.base_size,
            base_valid: self.base_valid,
            len: self.len,
            dirty: self.dirty.to_list(),
        }
    }

    /// Makes the staged state durable: the spool file's bytes, then its
    /// sidecar (base, lengths, dirty ranges: what the holes mean).
    pub fn sync(&mut self, base: Option<&PatchBase>) -> VfsResult<()> {
        self.settle()?;
        self.f()?.sync_data()?;
        let state = self.state(base);
        if self.sidecar.as_ref().is_some_and(|(_, s)| *s == state) {
            return Ok(());
        }
        let path = self.path().ok_or(VfsError::BadHandle)?.to_path_buf();
        let side = sidecar::path_of(&path).ok_or(VfsError::BadHandle)?;
        sidecar::write(&side, &state)?;
        self.sidecar = Some((side, state));
        Ok(())
    }

    /// Keeps the staged bytes at `dest` and their sidecar beside it (a
    /// commit failed for good: the data must not be lost with the handle).
    pub fn persist(mut self, dest: &Path, base: Option<&PatchBase>) -> VfsResult<PathBuf> {
        // what was written is kept, even after a failed write
        let _ = self.settle();
        let state = self.state(base);
        let file = self.file.take().ok_or(VfsError::BadHandle)?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        file.persist(dest).map_err(|e| VfsError::Io(e.error))?;
        if let Some(side) = sidecar::path_of(dest) {
            sidecar::write(&side, &state)?;
        }
        Ok(dest.to_path_buf())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        self.budget.shrink(self.dirty.total());
        // the spool file first: a sidecar without its file means nothing,
        // a file without its sidecar would read as whole (recover.rs)
        drop(self.file.take());
        if let Some((side, _)) = self.sidecar.take()
            && let Err(e) = std::fs::remove_file(&side)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, path = %side.display(), "removing a staging sidecar");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn budget_and_io() {
        let dir = tempfile::tempdir().unwrap();
        let budget = SpoolBudget::new(100);
        let mut s = Staging::new(dir.path(), budget.clone(), false).unwrap();
        s.write_at(10, b"hello").unwrap();
        assert_eq!(s.len(), 15);
        // the budget counts written bytes, not the length
        assert_eq!(budget.used(), 5);
        assert_eq!(s.read_at(8, 100).unwrap(), b"\0\0hello");
        assert!(matches!(
            s.write_at(200, &[1u8; 96]),
            Err(VfsError::NoSpace { .. })
        ));
        // rewriting dirty bytes costs nothing more
        s.write_at(11, b"ELL").unwrap();
        assert_eq!(budget.used(), 5);
        s.set_len(16 << 30).unwrap();
        assert_eq!(budget.used(), 5);
        s.set_len(12).unwrap();
        assert_eq!(budget.used(), 2);
        let body = cairn_api::collect_stream(s.stream(10, 2).unwrap())
            .await
            .unwrap();
        assert_eq!(body, b"hE");
        drop(s);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_behind_are_seen_by_every_later_call() {
        let dir = tempfile::tempdir().unwrap();
        let budget = SpoolBudget::new(1 << 30);
        let mut s = Staging::new(dir.path(), budget.clone(), true).unwrap();
        let mut model = vec![0u8; 0];
        // appends of 1 MiB (written behind), an overwrite in the middle
        // while they are in flight, a small write (synchronous) after them
        let chunk = |seed: u8, n: usize| -> Vec<u8> {
            (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
        };
        let put = |s: &mut Staging, model: &mut Vec<u8>, off: usize, data: Vec<u8>| {
            if model.len() < off + data.len() {
                model.resize(off + data.len(), 0);
            }
            model[off..off + data.len()].copy_from_slice(&data);
            s.write_bytes_at(off as u64, Bytes::from(data)).unwrap();
        };
        for i in 0..24 {
            put(&mut s, &mut model, i << 20, chunk(i as u8, 1 << 20));
        }
        put(&mut s, &mut model, (5 << 20) + 77, chunk(200, 300 << 10));
        put(&mut s, &mut model, 3, chunk(201, 10));
        assert_eq!(s.len(), 24 << 20);
        assert_eq!(budget.used(), 24 << 20);
        assert_eq!(s.read_at(0, model.len()).unwrap(), model);
        let body = cairn_api::collect_stream(s.stream(0, s.len()).unwrap())
            .await
            .unwrap();
        assert_eq!(body, model);
        s.sync(None).unwrap();
        // a truncate waits for writes still in flight (they must not
        // extend the file again afterwards)
        put(&mut s, &mut model, 30 << 20, chunk(7, 1 << 20));
        s.set_len(1 << 20).unwrap();
        model.truncate(1 << 20);
        assert_eq!(s.read_at(0, 64 << 20).unwrap(), model);
        assert_eq!(std::fs::metadata(s.path().unwrap()).unwrap().len(), 1 << 20);
    }
}
