//! Write staging: a file opened for writing keeps its new contents in a
//! local spool file (random writes, truncate and append are plain file
//! operations there) until flush/fsync/release commits it as one object.
//! The bytes staged by all files together are bounded.
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
use cairn_api::{ByteStream, byte_stream};
use futures::StreamExt as _;
use parking_lot::{Condvar, Mutex};
use tokio::io::AsyncReadExt as _;

use crate::error::{VfsError, VfsResult};

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
        let file = tempfile::Builder::new()
            .prefix(STAGE_PREFIX)
            .tempfile_in(dir)?;
        Ok(Self {
            file: Some(file),
            len: 0,
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

    fn resize_budget(&mut self, new_len: u64) -> VfsResult<()> {
        if new_len > self.len {
            self.budget.grow(new_len - self.len)?;
        } else {
            self.budget.shrink(self.len - new_len);
        }
        Ok(())
    }

    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> VfsResult<()> {
        self.settle()?;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(VfsError::Invalid("offset overflows"))?;
        if end > self.len {
            self.resize_budget(end)?;
        }
        if let Err(e) = self.f()?.write_all_at(data, offset) {
            if end > self.len {
                self.budget.shrink(end - self.len);
            }
            return Err(e.into());
        }
        if self.writeback {
            cairn_api::fsio::writeback_completed(self.f()?, offset, end);
        }
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
        if end > self.len {
            self.resize_budget(end)?;
        }
        let file = match &self.behind_file {
            Some(f) => f.clone(),
            None => {
                let f = Arc::new(self.f()?.try_clone()?);
                self.behind_file = Some(f.clone());
                f
            }
        };
        self.behind.state.lock().bytes += len;
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

    pub fn set_len(&mut self, len: u64) -> VfsResult<()> {
        self.settle()?;
        self.resize_budget(len)?;
        if let Err(e) = self.f()?.set_len(len) {
            // undo the budget change
            if len > self.len {
                self.budget.shrink(len - self.len);
            } else {
                let _ = self.budget.grow(self.len - len);
            }
            return Err(e.into());
        }
        self.len = len;
        Ok(())
    }

    /// Appends a stream (the object's current bytes) to the staging file.
    pub async fn fill_from(&mut self, mut body: ByteStream) -> VfsResult<()> {
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            let off = self.len;
            self.write_at(off, &chunk)?;
        }
        Ok(())
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

    pub fn sync(&self) -> VfsResult<()> {
        self.settle()?;
        self.f()?.sync_data()?;
        Ok(())
    }

    /// Keeps the staged bytes at `dest` (a commit failed for good: the
    /// data must not be lost with the handle).
    pub fn persist(mut self, dest: &Path) -> VfsResult<PathBuf> {
        // what was written is kept, even after a failed write
        let _ = self.settle();
        let file = self.file.take().ok_or(VfsError::BadHandle)?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        file.persist(dest).map_err(|e| VfsError::Io(e.error))?;
        Ok(dest.to_path_buf())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        self.budget.shrink(self.len);
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
        assert_eq!(budget.used(), 15);
        assert_eq!(s.read_at(8, 100).unwrap(), b"\0\0hello");
        assert!(matches!(
            s.write_at(99, b"xx"),
            Err(VfsError::NoSpace { .. })
        ));
        s.set_len(12).unwrap();
        assert_eq!(budget.used(), 12);
        let body = cairn_api::collect_stream(s.stream(10, 2).unwrap())
            .await
            .unwrap();
        assert_eq!(body, b"he");
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
        s.sync().unwrap();
        // a truncate waits for writes still in flight (they must not
        // extend the file again afterwards)
        put(&mut s, &mut model, 30 << 20, chunk(7, 1 << 20));
        s.set_len(1 << 20).unwrap();
        model.truncate(1 << 20);
        assert_eq!(s.read_at(0, 64 << 20).unwrap(), model);
        assert_eq!(std::fs::metadata(s.path().unwrap()).unwrap().len(), 1 << 20);
    }
}
