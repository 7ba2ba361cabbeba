//! Open files: per-inode state shared by every handle (staging, current
//! size, dirty flag), reads, writes and the commit to the store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use cairn_api::{ObjectError, ObjectHeaders, ObjectInfo, ObjectMetadata, PatchBase, PutOptions};

use crate::Vfs;
use crate::attr::{self, Attr, FileKind};
use crate::error::{VfsError, VfsResult};
use crate::names::{check_name, child_path, key};
use crate::ops::SetAttr;
use crate::reader::ObjectReader;
use crate::seq::SeqUpload;
use crate::staging::Staging;

/// How a file is opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenMode {
    pub write: bool,
    pub truncate: bool,
}

pub(crate) struct OpenFile {
    pub ino: u64,
    pub state: tokio::sync::Mutex<FileState>,
}

pub(crate) struct FileState {
    pub attr: Attr,
    pub staging: Option<Staging>,
    /// Staged bytes or attributes not yet in the store.
    pub dirty: bool,
    /// The object exists in the store (false for a new, uncommitted file).
    pub remote: bool,
    /// The version staged changes apply to (read at open, then each
    /// commit's) and its size.
    pub base: Option<PatchBase>,
    pub base_size: u64,
    /// Commits made through this state (handles' readers drop what they
    /// read before one).
    pub commits: u64,
    pub headers: ObjectHeaders,
    /// User metadata that is not ours (kept across rewrites).
    pub extra_user: BTreeMap<String, String>,
    pub handles: usize,
    pub unlinked: bool,
    /// Every write so far appended to a file that started empty: its
    /// bytes may stream into an upload (seq.rs).
    pub seq_ok: bool,
    /// The upload the appended bytes stream into.
    pub seq: Option<SeqUpload>,
    /// Attributes changed after the streaming upload started: the
    /// metadata is rewritten after it completes.
    pub seq_meta_stale: bool,
}

impl FileState {
    /// The new current version is the base of later changes.
    pub(crate) fn set_base(&mut self, info: &ObjectInfo) {
        self.base = Some(PatchBase {
            version_id: info.version_id.clone(),
            etag: info.etag.clone(),
        });
        self.base_size = info.size;
    }

    /// A commit of `len` bytes made `info`: nothing is dirty, and the next
    /// change stages afresh over the new version (the staging file goes).
    pub(crate) fn committed(&mut self, info: &ObjectInfo, len: u64) {
        self.dirty = false;
        self.remote = true;
        // later appends are changes over this version: the staging holds
        // only them, so they cannot stream as a whole file (a FLUSH in the
        // middle of a write, from a close in a forked child, lands here)
        self.seq_ok = false;
        self.seq = None;
        self.attr.size = len;
        self.set_base(info);
        self.staging = None;
        self.commits += 1;
    }
}

pub(crate) struct Handle {
    pub file: Arc<OpenFile>,
    pub writable: bool,
    pub reader: tokio::sync::Mutex<ObjectReader>,
}

fn our_meta(name: &str) -> bool {
    matches!(
        name,
        attr::META_MODE
            | attr::META_UID
            | attr::META_GID
            | attr::META_MTIME
            | attr::META_CTIME
            | attr::META_RDEV
    )
}

impl Vfs {
    /// Attributes of an open file (its staged size), if it is open.
    pub(crate) async fn open_attr(&self, ino: u64) -> Option<Attr> {
        let f = self.open.lock().get(&ino).cloned()?;
        let st = f.state.lock().await;
        Some(st.attr.clone())
    }

    /// Marks an open file unlinked; true if it was never committed (there
    /// is nothing to delete in the store).
    pub(crate) async fn mark_unlinked(&self, ino: u64) -> bool {
        let Some(f) = self.open.lock().get(&ino).cloned() else {
            return false;
        };
        let mut st = f.state.lock().await;
        st.unlinked = true;
        st.dirty = false;
        !st.remote
    }

    /// New files not yet committed under a directory (readdir shows them,
    /// rmdir refuses).
    pub(crate) fn pending_children(&self, dir: u64) -> Vec<(u64, String)> {
        let inos: Vec<u64> = self.open.lock().keys().copied().collect();
        inos.into_iter()
            .filter_map(|ino| {
                let (p, name) = self.inodes.parent_name(ino)?;
                (p == dir).then_some((ino, name))
            })
            .filter(|(ino, _)| {
                self.open
                    .lock()
                    .get(ino)
                    .and_then(|f| f.state.try_lock().ok().map(|s| !s.remote && !s.unlinked))
                    .unwrap_or(false)
            })
            .collect()
    }

    pub(crate) fn has_pending_children(&self, dir: u64) -> bool {
        !self.pending_children(dir).is_empty()
    }

    /// The shared state of `ino`, made from the store when not open.
    async fn open_file(&self, ino: u64, revalidate: bool) -> VfsResult<Arc<OpenFile>> {
        if let Some(f) = self.open.lock().get(&ino).cloned() {
            return Ok(f);
        }
        let (b, path) = self.bucket_path(ino)?;
        // close-to-open: a new open sees what other fronts wrote
        let a = if revalidate {
            self.fresh_attr(ino).await?
        } else {
            self.getattr(ino).await?
        };
        if a.kind == FileKind::Dir {
            return Err(VfsError::IsDir);
        }
        let info = self
            .layer
            .head_object(&b, &key(&path)?, &Default::default())
            .await
            .map_err(|e| match e {
                ObjectError::NoSuchKey { .. } => VfsError::NotFound,
                e => e.into(),
            })?;
        let f = Arc::new(OpenFile {
            ino,
            state: tokio::sync::Mutex::new(FileState {
                attr: a,
                staging: None,
                dirty: false,
                remote: true,
                base: Some(PatchBase {
                    version_id: info.version_id.clone(),
                    etag: info.etag.clone(),
                }),
                base_size: info.size,
                commits: 0,
                headers: info.headers.clone(),
                extra_user: info
                    .user_metadata
                    .iter()
                    .filter(|(k, _)| !our_meta(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                handles: 0,
                unlinked: false,
                seq_ok: false,
                seq: None,
                seq_meta_stale: false,
            }),
        });
        Ok(self.open.lock().entry(ino).or_insert(f).clone())
    }

    fn add_handle(&self, file: Arc<OpenFile>, writable: bool) -> u64 {
        let fh = self.new_fh();
        self.handles.lock().insert(
            fh,
            Arc::new(Handle {
                file,
                writable,
                reader: tokio::sync::Mutex::new(ObjectReader::default()),
            }),
        );
        fh
    }

    pub(crate) fn handle(&self, fh: u64) -> VfsResult<Arc<Handle>> {
        self.handles
            .lock()
            .get(&fh)
            .cloned()
            .ok_or(VfsError::BadHandle)
    }

    pub async fn open(&self, ino: u64, mode: OpenMode) -> VfsResult<u64> {
        if mode.write || mode.truncate {
            self.check_writable()?;
            self.check_unlocked(ino).await?;
        }
        let f = self.open_file(ino, true).await?;
        {
            let mut st = f.state.lock().await;
            st.handles += 1;
            if st.attr.kind != FileKind::File && mode.write {
                st.handles -= 1;
                return Err(VfsError::Invalid("only regular files are written"));
            }
            if mode.truncate
                && mode.write
                && let Err(e) = self.truncate_state(&mut st, 0).await
            {
                st.handles -= 1;
                return Err(e);
            }
        }
        Ok(self.add_handle(f, mode.write))
    }

    /// Creates `name` in `parent` and opens it for writing. The object
    /// appears in the store at the first flush; until then this mount
    /// shows the file (lookup, readdir) and other fronts do not.
    pub async fn create(
        &self,
        parent: u64,
        name: &str,
        perm: u32,
        uid: u32,
        gid: u32,
        exclusive: bool,
    ) -> VfsResult<(Attr, u64)> {
        self.check_writable()?;
        check_name(name)?;
        let (pb, path) = self.bucket_path(parent)?;
        match self.lookup(parent, name).await {
            Ok(_) if exclusive => return Err(VfsError::Exists),
            Ok(a) if a.kind == FileKind::Dir => return Err(VfsError::IsDir),
            Ok(a) => {
                let fh = self
                    .open(
                        a.ino,
                        OpenMode {
                            write: true,
                            truncate: true,
                        },
                    )
                    .await?;
                let a = self.getattr(a.ino).await?;
                return Ok((a, fh));
            }
            Err(VfsError::NotFound) => {}
            Err(e) => return Err(e),
        }
        // asked now, not at the first flush: a caller who may not write
        // the key (an identity's policy, object lock) is refused at create
        self.layer
            .check_mutable(&pb, &key(&child_path(&path, name))?)
            .await?;
        let who = crate::special::NewOwner { uid, gid, perm };
        let owner = self.inherit(parent, FileKind::File, who).await?;
        self.known.add(pb.as_str(), &path, name);
        let ino = self.inodes.child(parent, name, FileKind::File);
        let now = SystemTime::now();
        let a = Attr::new_entry(ino, FileKind::File, 0, owner, now);
        let staging = Staging::new(
            &self.cfg.spool_dir,
            self.budget.clone(),
            self.cfg.staging_writeback,
        )?;
        let f = Arc::new(OpenFile {
            ino,
            state: tokio::sync::Mutex::new(FileState {
                attr: a.clone(),
                staging: Some(staging),
                dirty: true,
                remote: false,
                base: None,
                base_size: 0,
                commits: 0,
                headers: ObjectHeaders {
                    content_type: Some(crate::names::content_type(name)),
                    ..Default::default()
                },
                extra_user: BTreeMap::new(),
                handles: 1,
                unlinked: false,
                seq_ok: true,
                seq: None,
                seq_meta_stale: false,
            }),
        });
        self.open.lock().insert(ino, f.clone());
        self.cache.put(&a);
        self.touch_dir(parent);
        Ok((a, self.add_handle(f, true)))
    }

    /// Makes sure the file has a staging: over its stored object (nothing
    /// copied: the spool file is sparse) or, for a new file, empty.
    pub(crate) fn ensure_staging(&self, st: &mut FileState) -> VfsResult<()> {
        if st.staging.is_some() {
            return Ok(());
        }
        let base_size = if st.remote { st.base_size } else { 0 };
        st.staging = Some(Staging::over(
            &self.cfg.spool_dir,
            self.budget.clone(),
            self.cfg.staging_writeback,
            st.attr.size,
            base_size,
        )?);
        Ok(())
    }

    pub(crate) async fn truncate_state(&self, st: &mut FileState, size: u64) -> VfsResult<()> {
        let max = self.cfg.max_file_size();
        if size > max {
            return Err(VfsError::TooLarge { size, max });
        }
        // a truncate ends streaming (dropping the upload cancels it); from
        // empty, appends may stream again
        st.seq = None;
        st.seq_ok = size == 0;
        self.ensure_staging(st)?;
        if let Some(s) = st.staging.as_mut() {
            s.set_len(size)?;
        }
        st.attr.size = size;
        let now = SystemTime::now();
        st.attr.mtime = now;
        st.attr.ctime = now;
        st.dirty = true;
        Ok(())
    }

    pub(crate) async fn setattr_file(&self, ino: u64, set: SetAttr) -> VfsResult<Attr> {
        let existing = self.open.lock().get(&ino).cloned();
        let transient = existing.is_none();
        let f = match existing {
            Some(f) => f,
            None => self.open_file(ino, false).await?,
        };
        let result = async {
            let mut st = f.state.lock().await;
            if let Some(size) = set.size {
                self.truncate_state(&mut st, size).await?;
            }
            if Self::set_has_meta(&set) {
                let mut a = st.attr.clone();
                set.apply(&mut a);
                let user = st.extra_user.clone();
                self.store_meta(ino, &mut st, a, user).await?;
            }
            if st.dirty && (transient || st.handles == 0) {
                self.commit_state(&mut st).await?;
            }
            self.cache.put(&st.attr);
            Ok(st.attr.clone())
        }
        .await;
        if transient {
            self.drop_if_unused(&f).await;
        }
        result
    }

    /// New attributes and foreign user metadata (xattrs live there) for a
    /// file: a dirty file carries them to its commit, a clean one has its
    /// object's metadata rewritten now.
    pub(crate) async fn store_meta(
        &self,
        ino: u64,
        st: &mut FileState,
        a: Attr,
        user: BTreeMap<String, String>,
    ) -> VfsResult<()> {
        if st.dirty {
            st.attr = a;
            st.extra_user = user;
            // the streaming upload carries the metadata it started with
            st.seq_meta_stale |= st.seq.is_some();
        } else {
            let meta = ObjectMetadata {
                headers: st.headers.clone(),
                user: user.clone(),
                storage_class: Default::default(),
            };
            let info = self.rewrite_metadata(ino, &a, &meta).await?;
            st.set_base(&info);
            st.attr = a;
            st.extra_user = user;
        }
        Ok(())
    }

    /// Runs `edit` on an open (or briefly opened) file's state.
    pub(crate) async fn with_file_state<T>(
        &self,
        ino: u64,
        edit: impl AsyncFnOnce(&mut FileState) -> VfsResult<T>,
    ) -> VfsResult<T> {
        let existing = self.open.lock().get(&ino).cloned();
        let transient = existing.is_none();
        let f = match existing {
            Some(f) => f,
            None => self.open_file(ino, false).await?,
        };
        let result = {
            let mut st = f.state.lock().await;
            edit(&mut st).await
        };
        if transient {
            self.drop_if_unused(&f).await;
        }
        result
    }

    async fn drop_if_unused(&self, f: &Arc<OpenFile>) {
        let st = f.state.lock().await;
        if st.handles == 0 && !st.dirty {
            let mut open = self.open.lock();
            if open.get(&f.ino).is_some_and(|g| Arc::ptr_eq(g, f)) {
                open.remove(&f.ino);
            }
        }
    }

    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> VfsResult<crate::ReadData> {
        let h = self.handle(fh)?;
        let (size_now, ino, commits) = {
            let st = h.file.state.lock().await;
            if st.staging.is_some() {
                return self.read_staged(&h, &st, offset, size).await;
            }
            (st.attr.size, st.attr.ino, st.commits)
        };
        let (b, path) = self.bucket_path(ino)?;
        let k = key(&path)?;
        let mut r = h.reader.lock().await;
        r.at_commit(commits);
        r.read(
            &self.layer,
            &self.streams,
            &b,
            &k,
            offset,
            size as usize,
            size_now,
        )
        .await
    }

    pub async fn write(&self, fh: u64, offset: u64, data: &[u8]) -> VfsResult<u32> {
        self.write_bytes(fh, offset, bytes::Bytes::copy_from_slice(data))
            .await
    }

    /// `write` of an owned buffer: a streaming file hands it to its upload
    /// without another copy.
    pub async fn write_bytes(&self, fh: u64, offset: u64, data: bytes::Bytes) -> VfsResult<u32> {
        self.check_writable()?;
        let h = self.handle(fh)?;
        if !h.writable {
            return Err(VfsError::BadHandle);
        }
        let end = offset.saturating_add(data.len() as u64);
        let max = self.cfg.max_file_size();
        if end > max {
            return Err(VfsError::TooLarge { size: end, max });
        }
        let mut st = h.file.state.lock().await;
        let ino = st.attr.ino;
        self.ensure_staging(&mut st)?;
        let s = st.staging.as_mut().ok_or(VfsError::BadHandle)?;
        let appended = offset == s.len();
        s.write_bytes_at(offset, data.clone())?;
        let len = s.len();
        st.attr.size = len;
        let now = SystemTime::now();
        st.attr.mtime = now;
        st.attr.ctime = now;
        st.dirty = true;
        if st.seq_ok {
            if !appended {
                // the first non-sequential write: the staging file has every
                // byte, the upload is cancelled
                st.seq_ok = false;
                st.seq = None;
            } else if let Some(up) = st.seq.as_mut() {
                if !up.push(data.clone()).await {
                    tracing::debug!(ino, "streaming upload stopped; the file stays staged");
                    st.seq_ok = false;
                    st.seq = None;
                }
            } else if len >= self.cfg.stream_threshold {
                self.start_stream(&mut st)?;
            }
        }
        Ok(data.len() as u32)
    }

    /// Commits staged changes (close(2) calls this on every descriptor).
    pub async fn flush(&self, fh: u64) -> VfsResult<()> {
        let h = self.handle(fh)?;
        let mut st = h.file.state.lock().await;
        self.commit_state(&mut st).await
    }

    /// Makes a handle's staged bytes durable in their staging file, with
    /// the sidecar that says what its holes are (base, lengths, dirty
    /// ranges), without committing them (NFS: a WRITE reply means durable,
    /// the commit comes later); returns the staging file's path, None when
    /// nothing is staged.
    pub async fn sync_staging(&self, fh: u64) -> VfsResult<Option<std::path::PathBuf>> {
        let h = self.handle(fh)?;
        let mut st = h.file.state.lock().await;
        let base = st.base.clone();
        match st.staging.as_mut() {
            Some(s) => {
                s.sync(base.as_ref())?;
                Ok(s.path().map(|p| p.to_path_buf()))
            }
            None => Ok(None),
        }
    }

    /// Commits the handle's staged changes and makes them durable (and,
    /// with write-back, every commit before them).
    pub async fn fsync(&self, fh: u64) -> VfsResult<()> {
        self.flush(fh).await?;
        self.sync_commits().await
    }

    /// Makes the view's write-back commits durable (fsync, fsyncdir,
    /// unmount); nothing to do without write-back.
    /// Directory times waiting for their markers are written first.
    pub async fn sync(&self) -> VfsResult<()> {
        self.flush_dir_times(true).await;
        self.sync_commits().await
    }

    /// The write-back commits alone (a file's fsync).
    async fn sync_commits(&self) -> VfsResult<()> {
        if self.cfg.write_back {
            self.layer.sync().await?;
        }
        Ok(())
    }

    /// Ends a handle. A commit that still fails keeps the staged bytes in
    /// `<spool>/lost+found/` rather than losing them with the handle.
    pub async fn release(&self, fh: u64) -> VfsResult<()> {
        let h = self.handles.lock().remove(&fh).ok_or(VfsError::BadHandle)?;
        let f = h.file.clone();
        let mut st = f.state.lock().await;
        st.handles = st.handles.saturating_sub(1);
        let res = self.commit_state(&mut st).await;
        if let Err(e @ VfsError::StagingLost { .. }) = &res
            && st.handles == 0
        {
            // the staged bytes are incomplete and the writer was told (a
            // write, fsync or close failed): kept, they would only hold
            // the full spool full
            tracing::error!(ino = f.ino, error = %e, "staged changes dropped; the object is as it was");
            st.staging = None;
            st.seq = None;
            st.dirty = false;
        } else if let Err(e) = &res
            && st.handles == 0
            && let Some(s) = st.staging.take()
        {
            let name = format!(
                "ino{}-{}",
                f.ino,
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            );
            let dest = self.cfg.lost_and_found().join_str(&name);
            match dest
                .map_err(|e| VfsError::Io(e.into()))
                .and_then(|d| s.persist(&d, st.base.as_ref()))
            {
                Ok(p) => tracing::error!(ino = f.ino, error = %e, kept = %p.display(),
                    "commit failed at release; staged bytes kept"),
                Err(pe) => tracing::error!(ino = f.ino, error = %e, persist_error = %pe,
                    "commit failed at release and the staged bytes could not be kept"),
            }
            st.dirty = false;
        }
        if st.handles == 0 {
            // nothing staged is needed any more; later opens re-read the store
            if !st.dirty {
                st.staging = None;
            }
            let mut open = self.open.lock();
            if !st.dirty && open.get(&f.ino).is_some_and(|g| Arc::ptr_eq(g, &f)) {
                open.remove(&f.ino);
            }
        }
        res
    }

    /// Writes a dirty file to the store as one object (a multipart upload
    /// above the threshold), streamed from the staging file.
    pub(crate) async fn commit_state(&self, st: &mut FileState) -> VfsResult<()> {
        if !st.dirty {
            return Ok(());
        }
        if st.unlinked {
            st.dirty = false;
            st.seq = None;
            return Ok(());
        }
        let ino = st.attr.ino;
        if self.inodes.loc(ino).is_none() {
            // removed with its directory: nothing to commit to
            st.dirty = false;
            st.seq = None;
            return Ok(());
        }
        let (b, path) = self.bucket_path(ino)?;
        let k = key(&path)?;
        if let Some(up) = st.seq.take() {
            st.seq_ok = false;
            match up.finish().await {
                Ok(done) => return self.complete_stream(st, &b, &k, done).await,
                // the staging file has every byte: commit from it
                Err(e) => tracing::warn!(ino, error = %e,
                    "streaming upload failed; committing from the staging file"),
            }
        }
        self.ensure_staging(st)?;
        let s = st.staging.as_ref().ok_or(VfsError::BadHandle)?;
        let len = s.len();
        let mut metadata = ObjectMetadata {
            headers: st.headers.clone(),
            user: st.extra_user.clone(),
            storage_class: Default::default(),
        };
        st.attr.to_metadata(&mut metadata.user);
        let info = if st.remote && s.base_valid() > 0 {
            // a stored file: only what changed (commit.rs)
            self.commit_patch(st, &b, &k, metadata).await?
        } else {
            // a new file, or one truncated to 0: the spool file is all of it
            self.commit_whole(s, &b, &k, metadata).await?
        };
        st.committed(&info, len);
        self.cache.put(&st.attr);
        Ok(())
    }

    /// Starts streaming the appended bytes into an upload (seq.rs): the
    /// bytes staged so far, then each later append.
    fn start_stream(&self, st: &mut FileState) -> VfsResult<()> {
        let ino = st.attr.ino;
        let (b, path) = self.bucket_path(ino)?;
        let k = key(&path)?;
        let s = st.staging.as_ref().ok_or(VfsError::BadHandle)?;
        let prefix = s.stream(0, s.len())?;
        let mut metadata = ObjectMetadata {
            headers: st.headers.clone(),
            user: st.extra_user.clone(),
            storage_class: Default::default(),
        };
        st.attr.to_metadata(&mut metadata.user);
        // mtime/ctime: the completed object's Last-Modified (the time of
        // the commit), unless set explicitly meanwhile (rewritten then)
        metadata.user.remove(attr::META_MTIME);
        metadata.user.remove(attr::META_CTIME);
        tracing::debug!(ino, staged = s.len(), "streaming sequential writes");
        st.seq = Some(SeqUpload::start(
            self.layer.clone(),
            b,
            k,
            PutOptions {
                metadata,
                ..Default::default()
            },
            self.cfg.parts(),
            prefix,
        ));
        st.seq_meta_stale = false;
        Ok(())
    }

    /// Completes a streamed upload: the file's object is installed.
    async fn complete_stream(
        &self,
        st: &mut FileState,
        b: &cairn_api::BucketName,
        k: &cairn_api::ObjectKey,
        done: crate::seq::Streamed,
    ) -> VfsResult<()> {
        let len = st.staging.as_ref().map(|s| s.len()).unwrap_or(st.attr.size);
        let completed = self.own_write(
            b.as_str(),
            &[k.as_str()],
            self.layer
                .complete_multipart_upload(b, k, &done.upload_id, done.parts),
        );
        let info = match completed.await {
            Ok(info) => info,
            Err(e) => {
                if let Err(ae) = self
                    .layer
                    .abort_multipart_upload(b, k, &done.upload_id)
                    .await
                {
                    tracing::warn!(error = %ae, "aborting a streamed upload that did not complete");
                }
                // still dirty: the next flush commits from the staging file
                return Err(e.into());
            }
        };
        if info.size != len {
            // cannot happen while every byte went through both; be safe
            tracing::error!(
                ino = st.attr.ino,
                streamed = info.size,
                staged = len,
                "streamed size differs; committing from the staging file"
            );
            return Box::pin(self.commit_state(st)).await;
        }
        st.committed(&info, len);
        if st.seq_meta_stale {
            let meta = ObjectMetadata {
                headers: st.headers.clone(),
                user: st.extra_user.clone(),
                storage_class: Default::default(),
            };
            let a = st.attr.clone();
            let info = self.rewrite_metadata(st.attr.ino, &a, &meta).await?;
            st.set_base(&info);
            st.seq_meta_stale = false;
        } else {
            let t = attr::to_system_time(info.last_modified);
            st.attr.mtime = t;
            st.attr.ctime = t;
        }
        self.cache.put(&st.attr);
        Ok(())
    }

    /// The version an open file's later changes apply to is now `info`
    /// (its object moved to another key with the same bytes).
    pub(crate) async fn set_open_base(&self, ino: u64, info: &ObjectInfo) {
        let Some(f) = self.open.lock().get(&ino).cloned() else {
            return;
        };
        let mut st = f.state.lock().await;
        if st.remote {
            st.set_base(info);
        }
    }

    /// Commits an open file's staged changes before its key moves.
    pub(crate) async fn commit_ino(&self, ino: u64) -> VfsResult<()> {
        let Some(f) = self.open.lock().get(&ino).cloned() else {
            return Ok(());
        };
        let mut st = f.state.lock().await;
        self.commit_state(&mut st).await
    }
}
