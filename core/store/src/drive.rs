//! One drive: a directory holding `.cairn.sys/format.json`, buckets as
//! folders, and objects as folders with `cairn.meta` and data dirs.
//! All functions here are blocking; callers run them on blocking threads.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_api::path::{PathError, SafePath, Segment};
use cairn_api::seg;
use serde::{Deserialize, Serialize};

use crate::driveio::{DriveIo, HeldLock, LocalIo};
use crate::history;
use crate::meta::{DATA_DIR_PREFIX, META_FILE, MetaError, ObjectMeta, VersionMeta};

pub const SYS_DIR: &str = ".cairn.sys";
const FORMAT_FILE: &str = "format.json";
const DIR_MARKER: &str = "cairn.dir";

#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// The drive is missing, replaced or unreadable.
    #[error("drive {0} is offline")]
    Offline(String),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("corrupt metadata: {0}")]
    Corrupt(#[from] MetaError),
}

impl From<PathError> for DriveError {
    fn from(e: PathError) -> Self {
        DriveError::Io(e.into())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Format {
    pub format: String,
    pub deployment_id: String,
    pub drive_count: usize,
    pub drive_index: usize,
    pub drive_id: String,
    /// Parity chosen when the set was created (STANDARD class).
    pub parity: usize,
    /// This drive's erasure set, counting from 0.
    #[serde(default)]
    pub set_index: usize,
    /// Every set of the deployment as its drives' ids, in drive order
    /// (`drive_index`). Empty in formats written before sets: then the
    /// deployment is one set, its drives known only by position.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sets: Vec<Vec<String>>,
    /// How keys are placed on sets (`SIPMOD`); empty with `sets`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub distribution: String,
}

pub const FORMAT_NAME: &str = "cairn/erasure/1";

#[derive(Debug)]
pub struct Drive {
    pub index: usize,
    pub root: SafePath,
    /// The drive's files: this machine's, or another node's (`driveio.rs`).
    io: Arc<dyn DriveIo>,
    /// Set when the drive stopped answering in time; cleared by the
    /// monitor once it answers again.
    hung: std::sync::atomic::AtomicBool,
    /// Operations running on this drive now (a stuck one keeps it > 0).
    inflight: std::sync::atomic::AtomicUsize,
    /// Folders this process made whose entry in their parent folder may
    /// not be durable yet (see `make_object_dir`).
    fresh: parking_lot::Mutex<std::collections::HashSet<PathBuf>>,
    /// Folders made by commits that skipped their fsyncs (heal, write-back):
    /// durable, and out of `fresh`, after the next `sync_fs`.
    deferred: parking_lot::Mutex<Vec<PathBuf>>,
    /// This process's exclusive lock on the drive (`drivelock.rs`), held
    /// while the drive is in the set.
    lock: parking_lot::Mutex<Option<HeldLock>>,
    /// Where freed data goes to be removed in the background (`trash.rs`).
    trash: crate::trash::Trash,
    /// When a shard write last failed for want of space (cleared by the
    /// next one that succeeds): a failed write frees its own files, so the
    /// free space read after it no longer shows why it failed.
    full_at: parking_lot::Mutex<Option<std::time::Instant>>,
    /// Parsed headers of big `cairn.meta` files (`metacache.rs`).
    meta_cache: crate::metacache::MetaCache,
}

/// How long a drive that refused a write for want of space counts as
/// full without another write telling otherwise.
const FULL_MEMORY: std::time::Duration = std::time::Duration::from_secs(60);

impl Drive {
    pub fn new(index: usize, root: PathBuf) -> Self {
        Self::with_io(index, root, LocalIo::shared())
    }

    /// A drive whose files are reached through `io`.
    pub fn with_io(index: usize, root: PathBuf, io: Arc<dyn DriveIo>) -> Self {
        let root = SafePath::root(root);
        let trash =
            crate::trash::Trash::new(root.join(seg!(SYS_DIR)).join(seg!("trash")), io.clone());
        Self {
            index,
            trash,
            root,
            io,
            hung: std::sync::atomic::AtomicBool::new(false),
            inflight: std::sync::atomic::AtomicUsize::new(0),
            fresh: parking_lot::Mutex::new(std::collections::HashSet::new()),
            deferred: parking_lot::Mutex::new(Vec::new()),
            lock: parking_lot::Mutex::new(None),
            full_at: parking_lot::Mutex::new(None),
            meta_cache: Default::default(),
        }
    }

    /// Takes (or takes again, for a drive replaced while serving) the
    /// exclusive lock on the drive; refused while another holds it.
    pub fn take_lock(&self) -> Result<(), crate::drivelock::LockError> {
        let lock = self.io.lock(&self.sys_dir())?;
        *self.lock.lock() = Some(lock);
        self.trash.purge_leftovers();
        Ok(())
    }

    /// Frees data of this drive (files or folders): gone from their
    /// places now, removed in the background (`trash.rs`), so a drive
    /// operation never waits on a big removal.
    pub fn discard(&self, paths: impl IntoIterator<Item = PathBuf>) {
        self.trash.discard(paths);
    }

    /// Drops this process's lock on the drive (a refused start).
    pub(crate) fn release_lock(&self) {
        *self.lock.lock() = None;
    }

    /// The drive's file operations.
    pub fn io(&self) -> &dyn DriveIo {
        &*self.io
    }

    /// The drive's file operations, shared.
    pub fn io_arc(&self) -> Arc<dyn DriveIo> {
        self.io.clone()
    }

    pub(crate) fn lock_file(&self) -> SafePath {
        self.sys_dir().join(seg!(crate::drivelock::LOCK_FILE))
    }

    pub fn sys_dir(&self) -> SafePath {
        self.root.join(seg!(SYS_DIR))
    }

    pub fn tmp_dir(&self) -> SafePath {
        self.sys_dir().join(seg!("tmp"))
    }

    /// Where every bucket's uploads live.
    pub fn uploads_root(&self) -> SafePath {
        self.sys_dir().join(seg!("multipart"))
    }

    pub fn multipart_dir(&self, bucket: &str) -> Result<SafePath, PathError> {
        self.uploads_root().join_str(bucket)
    }

    pub fn buckets_dir(&self) -> SafePath {
        self.sys_dir().join(seg!("buckets"))
    }

    /// `buckets/<bucket>.json`: a bucket's configuration.
    pub fn bucket_config_file(&self, bucket: &str) -> Result<SafePath, PathError> {
        self.buckets_dir()
            .join_str(&format!("{}.json", Segment::new(bucket)?.as_str()))
    }

    pub fn bucket_dir(&self, bucket: &str) -> Result<SafePath, PathError> {
        self.root.join_str(bucket)
    }

    /// The folder of an object. `dir/` markers live in `dir/cairn.dir` so
    /// they never collide with the objects below `dir/`.
    pub fn object_dir(&self, bucket: &str, key: &str) -> Result<SafePath, PathError> {
        let p = self.bucket_dir(bucket)?.join_key_str(key)?;
        Ok(if key.ends_with('/') {
            p.join(seg!(DIR_MARKER))
        } else {
            p
        })
    }

    fn format_file(&self) -> SafePath {
        self.sys_dir().join(seg!(FORMAT_FILE))
    }

    pub fn read_format(&self) -> Result<Option<Format>, DriveError> {
        match self.io.read(&self.format_file()) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| DriveError::Io(io::Error::new(io::ErrorKind::InvalidData, e))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn write_format(&self, f: &Format) -> Result<(), DriveError> {
        self.io.create_dir_all(&self.tmp_dir())?;
        self.io.create_dir_all(&self.buckets_dir())?;
        self.io.create_dir_all(&self.uploads_root())?;
        let body = serde_json::to_vec_pretty(f)
            .map_err(|e| DriveError::Io(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        self.write_atomic(&self.format_file(), &body)
    }

    /// A drive is online while its format file is there: a deleted or
    /// replaced folder must not look like "object not found".
    pub fn is_hung(&self) -> bool {
        self.hung.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs one operation, counted in `inflight`.
    pub fn track<T>(&self, f: impl FnOnce() -> T) -> T {
        use std::sync::atomic::Ordering::SeqCst;
        self.inflight.fetch_add(1, SeqCst);
        let out = f();
        self.inflight.fetch_sub(1, SeqCst);
        out
    }

    /// Operations still running on the drive (stuck ones included).
    pub fn inflight(&self) -> usize {
        self.inflight.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Records how a shard write on this drive ended (see `full_at`).
    pub fn note_write(&self, outcome: crate::writer::ShardWrite) {
        use crate::writer::ShardWrite;
        match outcome {
            ShardWrite::Full => *self.full_at.lock() = Some(std::time::Instant::now()),
            ShardWrite::Written => *self.full_at.lock() = None,
            ShardWrite::Failed => {}
        }
    }

    /// Whether a write failed for want of space in the last minute and
    /// none succeeded since.
    pub fn recently_full(&self) -> bool {
        self.full_at
            .lock()
            .is_some_and(|at| at.elapsed() < FULL_MEMORY)
    }

    pub fn set_hung(&self, hung: bool) {
        self.hung.store(hung, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_online(&self) -> bool {
        !self.is_hung() && self.io.is_file(&self.format_file())
    }

    pub fn check_online(&self) -> Result<(), DriveError> {
        if self.is_online() {
            Ok(())
        } else {
            Err(DriveError::Offline(self.root.display().to_string()))
        }
    }

    /// Removes leftovers of writes interrupted by a crash, then syncs the
    /// drive's file system: folders an earlier process made (and maybe
    /// never synced, if it died mid-commit) are durable from here on, which
    /// `make_object_dir` counts on for every folder not in `fresh`.
    pub fn clean_tmp(&self) -> io::Result<()> {
        let tmp = self.tmp_dir();
        for p in self
            .io
            .read_dir(&tmp)?
            .iter()
            .filter_map(|e| e.path_in(&tmp))
        {
            let _ = self.io.remove_any(&p);
        }
        self.io.sync_fs(&self.root)
    }

    /// syncfs of the drive's file system: every commit made so far without
    /// fsyncs (heal, write-back) is durable when this returns.
    pub fn sync_fs(&self) -> io::Result<()> {
        let made = self.take_deferred();
        let res = self.io.sync_fs(&self.root);
        self.after_sync_fs(made, res.is_ok());
        res
    }

    /// The folders of fsync-less commits so far, for a syncfs about to
    /// start (`after_sync_fs` with its outcome).
    pub(crate) fn take_deferred(&self) -> Vec<PathBuf> {
        std::mem::take(&mut *self.deferred.lock())
    }

    /// After a syncfs that started after `take_deferred`: the folders are
    /// durable (ok), or still pending for the next one.
    pub(crate) fn after_sync_fs(&self, made: Vec<PathBuf>, ok: bool) {
        if ok {
            self.synced(&made);
        } else {
            self.deferred.lock().extend(made);
        }
    }

    /// Creates an object's folder and the missing folders above it (up to
    /// the bucket folder). Returns the folders whose entries must be synced
    /// for the object folder to survive a crash: the parent of each folder
    /// made here, and of each folder above it that another commit made and
    /// has not synced yet (two keys in a new folder, committed at once:
    /// the second must not return before the folder's own entry is
    /// durable). Folders found on a drive at start are durable (the drive
    /// was synced in `clean_tmp`), so a new key in an existing folder
    /// syncs that one folder, not every folder up to the bucket.
    /// Also returns the folders made, for `synced` once those syncs are done.
    fn make_object_dir(
        &self,
        bucket_dir: &Path,
        obj_dir: &Path,
    ) -> io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
        let mut made = Vec::new();
        // deepest first: find the missing folders, then create top down
        let mut missing = Vec::new();
        let mut p = obj_dir;
        while p != bucket_dir && p.starts_with(bucket_dir) && !self.io.is_dir(p) {
            missing.push(p.to_path_buf());
            match p.parent() {
                Some(q) => p = q,
                None => break,
            }
        }
        for dir in missing.into_iter().rev() {
            // registered before it exists, so a concurrent commit that
            // sees the folder also sees that it is not durable yet
            self.fresh.lock().insert(dir.clone());
            match self.io.create_dir(&dir) {
                Ok(()) => made.push(dir),
                // made meanwhile by a concurrent commit (still in `fresh`
                // until that one synced it, if it has not)
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && self.io.is_dir(&dir) => {
                    self.fresh.lock().remove(&dir);
                }
                Err(e) => {
                    self.fresh.lock().remove(&dir);
                    return Err(e);
                }
            }
        }
        let fresh = self.fresh.lock();
        let mut sync = Vec::new();
        let mut p = obj_dir;
        while p != bucket_dir && p.starts_with(bucket_dir) {
            let Some(parent) = p.parent() else { break };
            if made.iter().any(|m| m == p) || fresh.contains(p) {
                sync.push(parent.to_path_buf());
            }
            p = parent;
        }
        drop(fresh);
        Ok((sync, made))
    }

    /// The folders `make_object_dir` made have durable entries now.
    fn synced(&self, made: &[PathBuf]) {
        if made.is_empty() {
            return;
        }
        let mut fresh = self.fresh.lock();
        for d in made {
            fresh.remove(d);
        }
    }

    /// Reads an object's `cairn.meta`. `Ok(None)`: no such object on this
    /// (online) drive.
    pub fn read_meta(
        &self,
        bucket: &str,
        key: &str,
        with_inline: bool,
    ) -> Result<Option<ObjectMeta>, DriveError> {
        let path = self.object_dir(bucket, key)?.join(seg!(META_FILE));
        let buf = match self.io.read_record(&path, with_inline) {
            Ok(b) => b,
            Err(e) if is_not_found(&e) => {
                self.check_online()?;
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Some(ObjectMeta::decode_cached(
            &buf,
            with_inline,
            &self.meta_cache,
            path.as_path(),
        )?))
    }

    /// Reads `cairn.meta` at a path below the bucket (listing).
    pub fn read_meta_at(&self, dir: &SafePath) -> Result<ObjectMeta, DriveError> {
        let buf = self.io.read_record(&dir.join(seg!(META_FILE)), false)?;
        Ok(ObjectMeta::decode(&buf, false)?)
    }

    /// A fresh scratch folder under `.cairn.sys/tmp` (fails on a drive
    /// that is gone: never recreate a missing drive).
    pub fn make_tmp(&self, name: &str) -> Result<SafePath, DriveError> {
        let p = self.tmp_dir().join_str(name)?;
        match self.io.create_dir(&p) {
            Ok(()) => Ok(p),
            Err(e) if is_not_found(&e) => Err(DriveError::Offline(self.root.display().to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a file in the drive's tmp folder, fsyncs it, and renames it
    /// over `dest`.
    pub fn write_atomic(&self, dest: &Path, body: &[u8]) -> Result<(), DriveError> {
        self.write_atomic_with(dest, body, true)
    }

    /// `write_atomic`, with the fsync optional (see `commit_version_with`).
    pub fn write_atomic_with(
        &self,
        dest: &Path,
        body: &[u8],
        durable: bool,
    ) -> Result<(), DriveError> {
        let tmp = self.tmp_dir();
        match self.io.write_atomic(&tmp, dest, body, durable) {
            Err(e) if is_not_found(&e) && !self.io.exists(&tmp) => {
                Err(DriveError::Offline(tmp.display().to_string()))
            }
            r => r.map_err(Into::into),
        }
    }

    /// `write_atomic_with` of an object record, fenced
    /// (`DriveIo::write_record`).
    fn write_record(
        &self,
        dest: &Path,
        body: &[u8],
        durable: bool,
        fence: u64,
    ) -> Result<(), DriveError> {
        let tmp = self.tmp_dir();
        match self.io.write_record(&tmp, dest, body, durable, fence) {
            Err(e) if is_not_found(&e) && !self.io.exists(&tmp) => {
                Err(DriveError::Offline(tmp.display().to_string()))
            }
            r => r.map_err(Into::into),
        }
    }

    /// Installs a new latest version of an object: the data dir (if any)
    /// is renamed in first, then `cairn.meta` is replaced atomically, so a
    /// crash leaves either the old or the new version whole. Returns the
    /// data dirs of versions it replaced, for the caller to remove.
    pub fn commit_version(
        &self,
        bucket: &str,
        key: &str,
        new: ObjectMeta,
        tmp_data: Option<&Path>,
    ) -> Result<Vec<PathBuf>, DriveError> {
        self.commit_version_with(bucket, key, new, tmp_data, true)
    }

    /// `commit_version`; `durable: false` skips the fsyncs (but one, see
    /// `write_meta`), for healing (a healed copy that a crash tears is
    /// caught by its checksums and healed again, and one syncfs per drive
    /// ends a heal run) and write-back commits (writeback.rs: a syncfs
    /// within a bound, and before `ObjectLayer::sync` returns).
    pub fn commit_version_with(
        &self,
        bucket: &str,
        key: &str,
        mut new: ObjectMeta,
        tmp_data: Option<&Path>,
        durable: bool,
    ) -> Result<Vec<PathBuf>, DriveError> {
        let bucket_dir = self.bucket_dir(bucket)?;
        if !self.io.is_dir(&bucket_dir) {
            self.check_online()?;
            return Err(DriveError::Io(io::Error::new(
                io::ErrorKind::NotFound,
                "bucket folder missing",
            )));
        }
        let obj_dir = self.object_dir(bucket, key)?;
        let (parents, made) = self.make_object_dir(&bucket_dir, &obj_dir)?;
        let old = if made.iter().any(|m| m == obj_dir.as_path()) {
            // a folder made just now holds no earlier versions
            ObjectMeta::default()
        } else {
            match self.read_meta(bucket, key, true) {
                Ok(m) => m.unwrap_or_default(),
                // A corrupt meta is replaced (its data is unreachable anyway).
                Err(DriveError::Corrupt(_)) => ObjectMeta::default(),
                Err(e) => return Err(e),
            }
        };
        // a fenced commit records its lock's generation (never the
        // record's: a stale writer must stay below a newer holder's, and
        // the drive refuses it then); an unfenced one keeps the record's
        if new.fence == 0 {
            new.fence = old.fence;
        }
        let new_version = new.versions.first().cloned();
        // the new version's data dir goes in before the meta that names it
        let move_data = || match (
            tmp_data,
            new_version.as_ref().and_then(|v| v.data_dir.as_ref()),
        ) {
            (Some(tmp), Some(d)) => self.io.rename(tmp, &data_dir_path(&obj_dir, d)?),
            _ => Ok(()),
        };
        if let Some(nv) = &new_version
            && old.history.is_some()
            && old.position(nv.version_id.as_deref()).is_none()
        {
            if nv.version_id.is_none() {
                move_data()?;
                // the null version this replaces may be in the history
                let all = history::with_history(self.io(), &obj_dir, old, true)?;
                let (mut merged, replaced) = merge_new(new, &all);
                // every version is in `merged` here
                let freed = crate::extents::garbage(&obj_dir, &replaced, &merged.versions);
                merged.history = all.history.clone();
                self.write_versions(bucket, key, merged, durable)?;
                self.synced(&made);
                return Ok(freed);
            }
            if old
                .versions
                .last()
                .is_some_and(|o| nv.mod_time <= o.mod_time)
            {
                // an older version (healed, or its retention changed)
                // belongs in the history; appended, it hides a stale copy
                move_data()?;
                let mut meta = old;
                meta.fence = new.fence;
                history::append(self.io(), &obj_dir, &mut meta, &new, durable)?;
                return self
                    .write_meta(&obj_dir, &meta, &parents, &made, durable, true)
                    .map(|()| Vec::new());
            }
        }
        let replaces = !old.versions.is_empty();
        let (mut merged, replaced) = merge_new(new, &old);
        merged.history = old.history;
        let freed = freed(self.io(), &obj_dir, &replaced, &merged);
        move_data()?;
        history::spill_if_needed(self.io(), &obj_dir, &mut merged, durable)?;
        self.write_meta(&obj_dir, &merged, &parents, &made, durable, replaces)?;
        Ok(freed)
    }

    /// Writes an object's `cairn.meta` (and, durable, syncs the folders
    /// that make the commit durable). Not durable, a meta that `replaces`
    /// one is still fdatasynced before its rename: a crash before the next
    /// syncfs leaves the old or the new version, never a torn meta in
    /// place of one that was durable.
    pub(crate) fn write_meta(
        &self,
        obj_dir: &SafePath,
        meta: &ObjectMeta,
        parents: &[PathBuf],
        made: &[PathBuf],
        durable: bool,
        replaces: bool,
    ) -> Result<(), DriveError> {
        let body = meta.encode()?;
        let path = obj_dir.join(seg!(META_FILE));
        if let Some((hash, len)) = ObjectMeta::encoded_header(&body) {
            // the next read of this record (the next commit's quorum
            // read) takes this parse; if the write below fails, the bytes
            // on disk differ and the entry is never hit
            self.meta_cache.put(path.as_path(), hash, len, meta);
        }
        if !durable {
            // `made` stays in `fresh` until the next syncfs (`sync_fs`):
            // a durable commit into these folders meanwhile syncs their
            // parents itself
            self.write_record(&path, &body, replaces, meta.fence)?;
            if !made.is_empty() {
                self.deferred.lock().extend_from_slice(made);
            }
            return Ok(());
        }
        self.write_record(&path, &body, true, meta.fence)?;
        // The renames are durable only once their folders are synced: the
        // object folder, and the parents of folders not yet durable. (A
        // second thread syncing the parents while the meta is written was
        // measured: more CPU per file and no faster on 2 cores.)
        self.io.sync_dir(obj_dir)?;
        for dir in parents {
            self.io.sync_dir(dir)?;
        }
        self.synced(made);
        Ok(())
    }

    /// Moves an object's latest version to another key on this drive: its
    /// data dir is renamed (no data copied), the new key's `cairn.meta` is
    /// committed, then the old key's meta is removed. Returns the data
    /// dirs of the version the new key replaced, for the caller to remove.
    /// `Ok(None)`: the source is not on this drive.
    pub fn rename_object(
        &self,
        bucket: &str,
        src: &str,
        dst: &str,
    ) -> Result<Option<Vec<PathBuf>>, DriveError> {
        let Some(meta) = self.read_meta(bucket, src, true)? else {
            return Ok(None);
        };
        let Some(v) = meta.versions.first().cloned() else {
            return Ok(None);
        };
        let inline = meta.inline_of(0).map(<[u8]>::to_vec).unwrap_or_default();
        let src_dir = self.object_dir(bucket, src)?;
        let dst_dir = self.object_dir(bucket, dst)?;
        // the folders stay in `fresh` until commit_version below syncs
        // their parents
        let (_, made) = self.make_object_dir(&self.bucket_dir(bucket)?, &dst_dir)?;
        // every data dir the version names (a patched version's parts
        // live in older versions' dirs too)
        let mut dirs: Vec<&str> = crate::extents::dirs_of(&v).collect();
        dirs.sort_unstable();
        dirs.dedup();
        for dd in dirs {
            match self
                .io
                .rename(&data_dir_path(&src_dir, dd)?, &data_dir_path(&dst_dir, dd)?)
            {
                // a drive that misses a dir lacks those shards (healed later)
                Err(e) if is_not_found(&e) && Some(dd) != v.data_dir.as_deref() => {}
                r => r?,
            }
        }
        let replaced =
            self.commit_version(bucket, dst, ObjectMeta::single(v.clone(), inline), None)?;
        self.synced(&made);
        self.delete_object(bucket, src)?;
        Ok(Some(replaced))
    }

    /// Removes an object's files and then every folder left empty up to
    /// the bucket. Objects below this key are untouched.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<bool, DriveError> {
        let obj_dir = self.object_dir(bucket, key)?;
        match self.io.remove_file(&obj_dir.join(seg!(META_FILE))) {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {
                self.check_online()?;
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
        history::remove_unnamed(self.io(), &obj_dir, None);
        if let Ok(rd) = self.io.read_dir(&obj_dir) {
            self.discard(
                rd.iter()
                    .filter(|e| e.name.to_string_lossy().starts_with(DATA_DIR_PREFIX))
                    .filter_map(|e| e.path_in(&obj_dir))
                    .map(SafePath::into_path_buf),
            );
        }
        self.prune_empty(bucket, &obj_dir);
        Ok(true)
    }

    /// Removes empty folders from `dir` upwards, stopping at the bucket.
    pub fn prune_empty(&self, bucket: &str, dir: &Path) {
        let Ok(stop) = self.bucket_dir(bucket) else {
            return;
        };
        let stop = stop.into_path_buf();
        let mut cur = dir.to_path_buf();
        while cur.starts_with(&stop) && cur != stop {
            if self.io.remove_dir(&cur).is_err() {
                break;
            }
            if !cur.pop() {
                break;
            }
        }
    }
}

/// The files and data dirs that removing `gone` from an object frees,
/// `meta` being what stays (its history read in when it has one: a
/// version there may share a gone one's parts). When the history cannot
/// be read, nothing is freed (the scanner's orphan sweep finds it later).
pub(crate) fn freed(
    io: &dyn DriveIo,
    obj_dir: &SafePath,
    gone: &[VersionMeta],
    meta: &ObjectMeta,
) -> Vec<PathBuf> {
    if gone
        .iter()
        .all(|g| g.data_dir.is_none() && g.parts.iter().all(|p| p.at.is_none()))
    {
        return Vec::new();
    }
    if meta.history.is_none() {
        return crate::extents::garbage(obj_dir, gone, &meta.versions);
    }
    match history::with_history(io, obj_dir, meta.clone(), false) {
        Ok(all) => crate::extents::garbage(obj_dir, gone, &all.versions),
        Err(e) => {
            tracing::warn!(dir = %obj_dir.display(), error = %e, "history unreadable: replaced data kept");
            Vec::new()
        }
    }
}

/// `new` (its versions first) with the versions of `old` it does not
/// replace, newest first; and the replaced ones.
fn merge_new(new: ObjectMeta, old: &ObjectMeta) -> (ObjectMeta, Vec<VersionMeta>) {
    let mut merged = new;
    let mut replaced = Vec::new();
    let ids: Vec<Option<String>> = merged
        .versions
        .iter()
        .map(|v| v.version_id.clone())
        .collect();
    for (i, v) in old.versions.iter().enumerate() {
        if ids.contains(&v.version_id) {
            replaced.push(v.clone());
        } else {
            merged.push(v.clone(), old.inline_of(i));
        }
    }
    // a healed older version goes back to its place in the history
    merged.sort_newest_first();
    (merged, replaced)
}

/// The data dir `name` (read from a `cairn.meta`) of an object folder:
/// refused unless it is one `cairn.data.*` name, whatever a damaged or
/// forged meta says.
pub fn data_dir_path(obj_dir: &SafePath, name: &str) -> Result<SafePath, PathError> {
    obj_dir.join_named(DATA_DIR_PREFIX, name)
}

/// `part.N` of a data dir.
pub fn part_path(data_dir: &SafePath, part: u32) -> Result<SafePath, PathError> {
    data_dir.join_str(&format!("part.{part}"))
}

pub fn is_not_found(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}
