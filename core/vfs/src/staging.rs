//! Write staging: a file opened for writing keeps its new contents in a
//! local spool file (random writes, truncate and append are plain file
//! operations there) until flush/fsync/release commits it as one object.
//! The bytes staged by all files together are bounded.

use std::fs::File;
use std::io::{Seek as _, SeekFrom};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_api::{ByteStream, byte_stream};
use futures::StreamExt as _;
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
}

const CHUNK: usize = 1 << 20;
/// Streams of at most this many bytes are read into memory at once.
const SMALL_STREAM: u64 = 256 << 10;

impl Staging {
    pub fn new(dir: &Path, budget: Arc<SpoolBudget>) -> VfsResult<Self> {
        let file = tempfile::Builder::new()
            .prefix(STAGE_PREFIX)
            .tempfile_in(dir)?;
        Ok(Self {
            file: Some(file),
            len: 0,
            budget,
        })
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
        self.len = self.len.max(end);
        Ok(())
    }

    pub fn read_at(&self, offset: u64, size: usize) -> VfsResult<Vec<u8>> {
        if offset >= self.len {
            return Ok(Vec::new());
        }
        let n = (self.len - offset).min(size as u64) as usize;
        let mut buf = vec![0u8; n];
        self.f()?.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    pub fn set_len(&mut self, len: u64) -> VfsResult<()> {
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
        self.f()?.sync_data()?;
        Ok(())
    }

    /// Keeps the staged bytes at `dest` (a commit failed for good: the
    /// data must not be lost with the handle).
    pub fn persist(mut self, dest: &Path) -> VfsResult<PathBuf> {
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
        let mut s = Staging::new(dir.path(), budget.clone()).unwrap();
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
}
