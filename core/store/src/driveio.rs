//! What an erasure set does to a drive's files, behind one trait: the
//! drive's file system on this machine (`LocalIo`), or, for the cluster,
//! another node's drive reached through the storage RPC.
//!
//! Paths are the drive's paths as the set computes them: `Drive::root`
//! joined with names that went through `SafePath`. An implementation for
//! a drive elsewhere takes the part below the root and refuses any path
//! outside it. Every file operation of the store goes through here, so a
//! drive whose root names no folder of this machine works the same (the
//! test `drive_io` runs the conformance suite over such drives).
//!
//! All functions are blocking; callers run them on blocking threads.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use cairn_api::SafePath;

use crate::drivelock::{DriveLock, LockError};
use crate::walk::{WalkItem, Walker};

/// A file opened for reading, at the offset asked.
pub trait FileRead: Read + Seek + Send {}
impl<T: Read + Seek + Send> FileRead for T {}

/// A file being written from its start.
pub trait FileWrite: Write + Send {
    /// Makes what was written durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Bytes `[from, to)` were written and will be synced: a local file
    /// starts sending them to disk now (`cairn_api::fsio`), so the sync
    /// at the end finds little left. A hint; nothing by default.
    fn written(&mut self, _from: u64, _to: u64) {}
}

impl FileWrite for File {
    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }
    fn written(&mut self, from: u64, to: u64) {
        cairn_api::fsio::writeback_completed(self, from, to);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Other,
}

/// What the store reads of a file's status.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub kind: FileKind,
    pub len: u64,
    pub modified: Option<SystemTime>,
    /// The file system's device (drives on one device share a syncfs).
    pub dev: u64,
}

impl Stat {
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Dir
    }
    pub fn is_file(&self) -> bool {
        self.kind == FileKind::File
    }
}

#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: OsString,
    pub kind: FileKind,
}

impl DirEntry {
    /// The entry's path in `dir` (the folder it was read from); None for
    /// a name that is not one valid name (not UTF-8, or not one segment).
    pub fn path_in(&self, dir: &SafePath) -> Option<SafePath> {
        dir.join_str(self.name.to_str()?).ok()
    }
}

/// A drive's size and free space in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Space {
    pub total: u64,
    pub free: u64,
}

/// A listing walk of one bucket folder (see `walk.rs`).
#[derive(Debug, Clone, Default)]
pub struct WalkQuery {
    pub prefix: String,
    pub start_after: Option<String>,
    pub delimiter: Option<String>,
    /// Keys are returned without checking their folder holds a record
    /// (`Walker::candidates`).
    pub candidates: bool,
}

pub type Walk = Box<dyn Iterator<Item = WalkItem> + Send>;

/// Held while the drive belongs to this process; dropping it frees it.
pub type HeldLock = Box<dyn std::fmt::Debug + Send + Sync>;

/// The file operations of a drive. Paths are below the drive's root.
pub trait DriveIo: Send + Sync + std::fmt::Debug {
    fn read(&self, p: &Path) -> io::Result<Vec<u8>>;
    /// Reads at most `len` bytes from the start.
    fn read_prefix(&self, p: &Path, len: u64) -> io::Result<Vec<u8>>;
    /// Reads an object record: whole, or its header only (the first 4 KiB,
    /// and more when the header says it is longer).
    fn read_record(&self, p: &Path, whole: bool) -> io::Result<Vec<u8>>;
    /// Writes `body` to a new file in `tmp_dir`, fdatasyncs it when
    /// `durable`, and renames it over `dest`.
    fn write_atomic(
        &self,
        tmp_dir: &Path,
        dest: &Path,
        body: &[u8],
        durable: bool,
    ) -> io::Result<()>;
    /// `write_atomic` of an object record that a commit under a cluster
    /// write lock of generation `fence` made (0: no such lock): refused
    /// when the record in place holds a higher fence, that is, when a
    /// newer holder of the lock committed (a writer paused past its
    /// lock's expiry must not overwrite that). The check and the write
    /// are one step on the drive's node.
    fn write_record(
        &self,
        tmp_dir: &Path,
        dest: &Path,
        body: &[u8],
        durable: bool,
        fence: u64,
    ) -> io::Result<()> {
        if fence == 0 {
            return self.write_atomic(tmp_dir, dest, body, durable);
        }
        let _g = fence_stripe(dest).lock();
        let stored = match self.read_record(dest, false) {
            Ok(b) => crate::meta::ObjectMeta::fence_of(&b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        if stored > fence {
            return Err(stale_fence(stored, fence));
        }
        self.write_atomic(tmp_dir, dest, body, durable)
    }
    /// Writes `body` at `at` of a file (created if missing) cut to `at`
    /// first; fdatasynced when `durable`.
    fn write_at(&self, p: &Path, at: u64, body: &[u8], durable: bool) -> io::Result<()>;
    /// Opens a file for reading at `offset`.
    fn open(&self, p: &Path, offset: u64) -> io::Result<Box<dyn FileRead>>;
    /// Creates (or truncates) a file for writing.
    fn create(&self, p: &Path) -> io::Result<Box<dyn FileWrite>>;
    /// Makes the drive's root folder if it is missing; returns the
    /// folders made, first made first (for a refused start to remove).
    fn make_root(&self, root: &Path) -> io::Result<Vec<std::path::PathBuf>>;
    fn create_dir(&self, p: &Path) -> io::Result<()>;
    fn create_dir_all(&self, p: &Path) -> io::Result<()>;
    fn remove_file(&self, p: &Path) -> io::Result<()>;
    fn remove_dir(&self, p: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, p: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn read_dir(&self, p: &Path) -> io::Result<Vec<DirEntry>>;
    /// Status of a file, symbolic links followed.
    fn stat(&self, p: &Path) -> io::Result<Stat>;
    /// Status of a name itself (a symbolic link is not followed).
    fn lstat(&self, p: &Path) -> io::Result<Stat>;
    /// fsyncs a folder: renames and new entries in it are durable.
    fn sync_dir(&self, p: &Path) -> io::Result<()>;
    /// syncfs of the file system holding `p`.
    fn sync_fs(&self, p: &Path) -> io::Result<()>;
    fn space(&self, p: &Path) -> io::Result<Space>;
    /// Takes the drive's exclusive lock (its system folder `sys_dir`).
    fn lock(&self, sys_dir: &SafePath) -> Result<HeldLock, LockError>;
    /// Whether the lock could be taken now, making nothing.
    fn probe_lock(&self, sys_dir: &SafePath) -> Result<(), LockError>;
    /// Walks a bucket folder in key order.
    fn walk(&self, bucket_dir: &SafePath, q: &WalkQuery) -> Walk;

    /// The node holding the drive: empty for this machine.
    fn node(&self) -> &str {
        ""
    }

    /// Whether `p` is a folder.
    fn is_dir(&self, p: &Path) -> bool {
        self.stat(p).is_ok_and(|s| s.is_dir())
    }
    /// Whether `p` is a regular file.
    fn is_file(&self, p: &Path) -> bool {
        self.stat(p).is_ok_and(|s| s.is_file())
    }
    /// Whether `p` names anything.
    fn exists(&self, p: &Path) -> bool {
        self.lstat(p).is_ok()
    }
    /// Removes a file or a folder with what it holds.
    fn remove_any(&self, p: &Path) -> io::Result<()> {
        match self.lstat(p) {
            Ok(s) if s.is_dir() => self.remove_dir_all(p),
            Ok(_) => self.remove_file(p),
            Err(e) => Err(e),
        }
    }
}

/// The error of a fenced write that a newer lock holder's commit refused.
pub fn stale_fence(stored: u64, fence: u64) -> io::Error {
    io::Error::other(format!(
        "a newer holder of the object's lock committed (generation {stored}, this write's {fence})"
    ))
}

/// Serializes the check and the write of fenced records in this process
/// (every drive of a node is written by its own process only).
fn fence_stripe(dest: &Path) -> &'static parking_lot::Mutex<()> {
    const STRIPES: usize = 64;
    static LOCKS: std::sync::LazyLock<Vec<parking_lot::Mutex<()>>> =
        std::sync::LazyLock::new(|| (0..STRIPES).map(|_| parking_lot::Mutex::new(())).collect());
    let i = crate::bitrot::hash64(dest.as_os_str().as_encoded_bytes()) as usize % STRIPES;
    // i < STRIPES, the length of LOCKS
    #[allow(clippy::indexing_slicing)]
    &LOCKS[i]
}

/// The drive's own file system, on this machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalIo;

impl LocalIo {
    pub fn shared() -> Arc<dyn DriveIo> {
        Arc::new(LocalIo)
    }
}

fn stat_of(m: &fs::Metadata) -> Stat {
    use std::os::unix::fs::MetadataExt as _;
    let ft = m.file_type();
    Stat {
        kind: if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        },
        len: m.len(),
        modified: m.modified().ok(),
        dev: m.dev(),
    }
}

/// Opens a file for reading without updating its access time (a listing
/// reads every key's meta: each atime update dirtied an inode), where the
/// process may (it owns the file, or has CAP_FOWNER); plainly otherwise.
fn open_noatime(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOATIME)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(nix::libc::EPERM) => File::open(path),
        r => r,
    }
}

impl DriveIo for LocalIo {
    fn read(&self, p: &Path) -> io::Result<Vec<u8>> {
        fs::read(p)
    }

    fn read_prefix(&self, p: &Path, len: u64) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        File::open(p)?.take(len).read_to_end(&mut buf)?;
        Ok(buf)
    }

    fn read_record(&self, p: &Path, whole: bool) -> io::Result<Vec<u8>> {
        let mut f = open_noatime(p)?;
        if whole {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            return Ok(buf);
        }
        // Most headers fit in 4 KiB; read more only when they do not.
        let mut buf = vec![0u8; 4096];
        let mut n = 0;
        while let Some(rest) = buf.get_mut(n..) {
            let r = f.read(rest)?;
            n += r;
            if r == 0 || n == buf.len() {
                break;
            }
        }
        buf.truncate(n);
        if let Some(need) = crate::meta::ObjectMeta::header_len(&buf)
            && need > buf.len()
            && n == 4096
        {
            // the length is the file's word: read what is there (a damaged
            // length decodes as truncated) rather than allocate it up front
            (&mut f).take((need - n) as u64).read_to_end(&mut buf)?;
        }
        Ok(buf)
    }

    fn write_atomic(
        &self,
        tmp_dir: &Path,
        dest: &Path,
        body: &[u8],
        durable: bool,
    ) -> io::Result<()> {
        let t = SafePath::root(tmp_dir).join_str(&format!("{}.tmp", uuid::Uuid::new_v4()))?;
        let res = (|| -> io::Result<()> {
            let mut f = File::create(&t)?;
            f.write_all(body)?;
            if durable {
                f.sync_data()?;
            }
            fs::rename(&t, dest)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&t);
        }
        res
    }

    fn write_at(&self, p: &Path, at: u64, body: &[u8], durable: bool) -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(p)?;
        f.set_len(at)?;
        f.seek(SeekFrom::Start(at))?;
        f.write_all(body)?;
        if durable {
            f.sync_data()?;
        }
        Ok(())
    }

    fn open(&self, p: &Path, offset: u64) -> io::Result<Box<dyn FileRead>> {
        let mut f = File::open(p)?;
        if offset > 0 {
            f.seek(SeekFrom::Start(offset))?;
        }
        Ok(Box::new(f))
    }

    fn create(&self, p: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(Box::new(File::create(p)?))
    }

    fn make_root(&self, root: &Path) -> io::Result<Vec<std::path::PathBuf>> {
        let mut missing: Vec<std::path::PathBuf> = root
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && a.symlink_metadata().is_err())
            .map(Path::to_path_buf)
            .collect();
        fs::create_dir_all(root)?;
        missing.reverse();
        Ok(missing)
    }

    fn create_dir(&self, p: &Path) -> io::Result<()> {
        fs::create_dir(p)
    }

    fn create_dir_all(&self, p: &Path) -> io::Result<()> {
        fs::create_dir_all(p)
    }

    fn remove_file(&self, p: &Path) -> io::Result<()> {
        fs::remove_file(p)
    }

    fn remove_dir(&self, p: &Path) -> io::Result<()> {
        fs::remove_dir(p)
    }

    fn remove_dir_all(&self, p: &Path) -> io::Result<()> {
        fs::remove_dir_all(p)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn read_dir(&self, p: &Path) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for e in fs::read_dir(p)? {
            let e = e?;
            let kind = match e.file_type() {
                Ok(t) if t.is_dir() => FileKind::Dir,
                Ok(t) if t.is_file() => FileKind::File,
                _ => FileKind::Other,
            };
            out.push(DirEntry {
                name: e.file_name(),
                kind,
            });
        }
        Ok(out)
    }

    fn stat(&self, p: &Path) -> io::Result<Stat> {
        fs::metadata(p).map(|m| stat_of(&m))
    }

    fn lstat(&self, p: &Path) -> io::Result<Stat> {
        fs::symlink_metadata(p).map(|m| stat_of(&m))
    }

    fn sync_dir(&self, p: &Path) -> io::Result<()> {
        File::open(p)?.sync_all()
    }

    fn sync_fs(&self, p: &Path) -> io::Result<()> {
        let f = File::open(p)?;
        nix::unistd::syncfs(&f).map_err(io::Error::from)
    }

    fn space(&self, p: &Path) -> io::Result<Space> {
        let s = nix::sys::statvfs::statvfs(p).map_err(io::Error::from)?;
        let f = s.fragment_size();
        Ok(Space {
            total: s.blocks().saturating_mul(f),
            free: s.blocks_available().saturating_mul(f),
        })
    }

    fn lock(&self, sys_dir: &SafePath) -> Result<HeldLock, LockError> {
        Ok(Box::new(DriveLock::acquire(sys_dir)?))
    }

    fn probe_lock(&self, sys_dir: &SafePath) -> Result<(), LockError> {
        DriveLock::probe(sys_dir)
    }

    fn walk(&self, bucket_dir: &SafePath, q: &WalkQuery) -> Walk {
        let w = Walker::new(
            bucket_dir.clone(),
            &q.prefix,
            q.start_after.as_deref(),
            q.delimiter.as_deref(),
        );
        Box::new(if q.candidates { w.candidates() } else { w })
    }
}

/// A path on a given drive (a shard file to write, a folder to remove).
#[derive(Debug, Clone)]
pub struct DrivePath {
    pub io: Arc<dyn DriveIo>,
    pub path: std::path::PathBuf,
}

/// Gives each drive, by its path as configured, its file operations (a
/// cluster gives other nodes' drives the storage RPC's).
#[derive(Clone)]
pub struct IoFor(Arc<IoForFn>);

type IoForFn = dyn Fn(&Path) -> Arc<dyn DriveIo> + Send + Sync;

impl IoFor {
    pub fn new(f: impl Fn(&Path) -> Arc<dyn DriveIo> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Every drive on this machine.
    pub fn local() -> Self {
        Self::new(|_| LocalIo::shared())
    }

    /// Drive `index` of a set, at `root`.
    pub fn drive(&self, index: usize, root: std::path::PathBuf) -> crate::drive::Drive {
        let io = (self.0)(&root);
        crate::drive::Drive::with_io(index, root, io)
    }
}

impl Default for IoFor {
    fn default() -> Self {
        Self::local()
    }
}

impl std::fmt::Debug for IoFor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IoFor")
    }
}
