//! The NAS backend: a folder (local, NFS, SMB) served as S3 without moving
//! anything. Buckets are the top-level folders, objects the files below
//! them byte for byte, so programs using the share directly keep working:
//! they see S3 writes at once and their own changes are served at once
//! (there is no index; every request looks at the files).
//!
//! Gaps (declared in [`Capabilities`]): a key and keys below it cannot both
//! exist (`a` is a file or a folder), `dir/` objects hold no bytes, and
//! there is no server-side encryption.

mod errors;
mod guard;
mod list;
mod meta;
mod multipart;
mod paths;
mod top;
mod write;

use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use cairn_api::SafePath;
use cairn_api::checksum::multipart_etag;
use cairn_api::layer::{copy_condition_error, copy_via_stream};
use cairn_api::mpchecksum::{UploadChecksum, complete_checksum, part_request};
use cairn_api::multipart::{check_part_number, page_parts, page_uploads, validate_complete};
use cairn_api::{
    BucketInfo, BucketName, ByteStream, Capabilities, CompleteOptions, CompletePart, Conditions,
    CopyOptions, GetObject, GetOptions, ListOptions, ListPage, ListPartsPage, ListUploadsOptions,
    ListUploadsPage, MetadataDirective, ObjectError, ObjectInfo, ObjectKey, ObjectLayer,
    ObjectResult, PartInfo, PartOptions, PutOptions, SseRequest, UploadInfo, WritePrecondition,
};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use errors::{io_error, is_absent};
use meta::{EtagRecord, HeaderRecord, MetaStore, Target, XA_DIR, XA_ETAG, XA_META};
use multipart::{PartRecord, UploadRecord};
use paths::{Share, sync_dir};
use write::{TempFile, install, make_parents, receive};

/// The name NotImplemented messages and logs use.
const BACKEND: &str = "the NAS gateway";

const CAPS: Capabilities = Capabilities {
    backend: BACKEND,
    key_and_prefix_coexist: false,
    encryption: false,
    folder_objects_with_data: false,
    folder_objects: true,
    manages_buckets: true,
    reports_storage_class: true,
    md5_etags: true,
    // judged under this gateway's per-key commit lock (nas/guard.rs)
    conditional_puts: true,
    conditional_completes: true,
    // only the part count is kept
    part_reads: false,
};

#[derive(Debug, Clone, Default)]
pub struct NasOptions {
    /// Keep metadata in sidecar files even where xattrs work (tests of the
    /// fallback; shares whose xattrs other tools strip).
    pub force_sidecar: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0} is not a folder")]
    NotAFolder(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// An `ObjectLayer` over a NAS folder.
#[derive(Clone)]
pub struct NasLayer {
    inner: Arc<Inner>,
}

struct Inner {
    share: Share,
    meta: MetaStore,
    commits: guard::CommitLocks,
    in_flight: cairn_api::conditional::InFlight,
    /// Lately completed uploads, for retried completes.
    completed: cairn_api::multipart::CompletedUploads,
}

impl NasLayer {
    /// Opens the share: checks it is a folder, makes the hidden folder,
    /// empties its temp folder (left-overs of a crash) and finds out whether
    /// xattrs work there. Blocking.
    pub fn open(root: impl Into<PathBuf>, opts: NasOptions) -> Result<Self, OpenError> {
        let root: PathBuf = root.into();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| OpenError::Io { path, source }
        };
        let md = std::fs::metadata(&root).map_err(io(&root))?;
        if !md.is_dir() {
            return Err(OpenError::NotAFolder(root));
        }
        let share = Share {
            root: SafePath::root(root),
        };
        let tmp = share.tmp_dir();
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        for d in [tmp.clone(), share.uploads_dir()] {
            std::fs::create_dir_all(&d).map_err(io(&d))?;
        }
        let meta = if !opts.force_sidecar && meta::xattrs_work(&tmp) {
            MetaStore::Xattr
        } else {
            let dir = share.sidecar_dir();
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            MetaStore::Sidecar(dir)
        };
        tracing::info!(
            root = %share.root.display(),
            metadata = if meta.is_xattr() { "xattrs (user.cairn.*)" } else { "sidecar files" },
            "NAS gateway ready"
        );
        // Files at the top have no bucket: say so rather than hide them.
        match top::survey(&share.root) {
            Ok(s) if s.total() > 0 => tracing::warn!("{}", s.describe(&share.root)),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(root = %share.root.display(), error = %e, "cannot survey the share's top level")
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                share,
                meta,
                commits: Default::default(),
                in_flight: Default::default(),
                completed: Default::default(),
            }),
        })
    }

    /// Whether S3 metadata lives in xattrs (else in sidecar files).
    pub fn uses_xattrs(&self) -> bool {
        self.inner.meta.is_xattr()
    }

    pub fn root(&self) -> &Path {
        &self.inner.share.root
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> ObjectResult<T> + Send + 'static,
    ) -> ObjectResult<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let r = f(&inner);
            match r {
                // "Not found" or an odd failure may mean the share itself
                // went away (an unmounted NAS leaves an empty mount point):
                // then it is a 503, never a 404.
                Err(
                    ObjectError::NoSuchBucket { .. }
                    | ObjectError::NoSuchKey { .. }
                    | ObjectError::NoSuchUpload { .. }
                    | ObjectError::Internal { .. },
                ) if !inner.share.present() => {
                    tracing::error!(
                        root = %inner.share.root.display(),
                        "the share is gone (its .cairn.gateway folder is missing)"
                    );
                    Err(errors::share_unavailable())
                }
                r => r,
            }
        })
        .await
        .map_err(|e| ObjectError::internal(format!("blocking task: {e}")))?
    }
}

fn refuse_sse(sse: Option<&SseRequest>) -> ObjectResult<()> {
    match sse {
        None => Ok(()),
        Some(_) => Err(ObjectError::NotImplemented {
            what: "server-side encryption on the NAS gateway",
        }),
    }
}

fn refuse_version_attrs(opts: &PutOptions) -> ObjectResult<()> {
    match opts.version_attrs_asked() {
        None => Ok(()),
        Some("object lock") => Err(ObjectError::NotImplemented {
            what: "object lock on the NAS gateway",
        }),
        Some(_) => Err(ObjectError::NotImplemented {
            what: "object tags on the NAS gateway",
        }),
    }
}

fn mtime(md: &Metadata) -> OffsetDateTime {
    md.modified()
        .map(OffsetDateTime::from)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn conflict(b: &BucketName, k: &ObjectKey, reason: &'static str) -> ObjectError {
    ObjectError::KeyConflict {
        bucket: b.to_string(),
        key: k.to_string(),
        reason,
    }
}

/// An object opened for reading: the file (or folder, for `dir/` keys)
/// and its metadata, taken from the open descriptor so both describe the
/// same bytes even if another program replaces the file meanwhile.
struct Opened {
    file: File,
    md: Metadata,
}

impl Inner {
    /// The path of key `k`: refused (AccessDenied) when a symbolic link
    /// on the share would lead it out of its bucket, to another bucket or
    /// out of the share.
    fn object_path(&self, b: &BucketName, k: &ObjectKey) -> ObjectResult<SafePath> {
        let path = self.share.object(b, k);
        match paths::stays_inside(&self.share.bucket(b), &path) {
            Ok(true) => Ok(path),
            Ok(false) => {
                tracing::info!(bucket = %b, key = %k, "refused: a symbolic link on the share leads out of the bucket");
                Err(ObjectError::AccessDenied {
                    bucket: b.to_string(),
                    key: k.to_string(),
                    reason: "a symbolic link on the share leads out of the bucket",
                })
            }
            Err(e) if is_absent(&e) => Err(ObjectError::no_such_bucket(b)),
            Err(e) => Err(io_error(e, "resolving an object's path")),
        }
    }

    fn bucket_dir(&self, b: &BucketName) -> ObjectResult<SafePath> {
        let dir = self.share.bucket(b);
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(dir),
            Ok(_) => Err(ObjectError::no_such_bucket(b)),
            Err(e) if is_absent(&e) => Err(ObjectError::no_such_bucket(b)),
            Err(e) => Err(io_error(e, "reading a bucket folder")),
        }
    }

    /// A folder is a `dir/` object when it was made as one (marked) or is
    /// empty (made by another program: shown so it can be seen and removed).
    fn is_dir_object(&self, bucket: &str, key: &str, dir: &Path, file: &File) -> bool {
        let t = Target { file, bucket, key };
        if matches!(self.meta.get(&t, XA_DIR), Ok(Some(_))) {
            return true;
        }
        std::fs::read_dir(dir).is_ok_and(|mut r| r.next().is_none())
    }

    fn open_object(&self, b: &BucketName, k: &ObjectKey) -> ObjectResult<Opened> {
        self.bucket_dir(b)?;
        let path = self.object_path(b, k)?;
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if is_absent(&e) => return Err(ObjectError::no_such_key(b, k)),
            Err(e) => return Err(io_error(e, "opening an object")),
        };
        let md = file
            .metadata()
            .map_err(|e| io_error(e, "reading an object's metadata"))?;
        let ok = if k.is_dir_marker() {
            md.is_dir() && self.is_dir_object(b.as_str(), k.as_str(), &path, &file)
        } else {
            md.is_file()
        };
        if !ok {
            return Err(ObjectError::no_such_key(b, k));
        }
        Ok(Opened { file, md })
    }

    fn info(&self, bucket: &str, key: &str, o: &Opened) -> io::Result<ObjectInfo> {
        let t = Target {
            file: &o.file,
            bucket,
            key,
        };
        let h = self.meta.headers(&t);
        let e = self.meta.etag(&t, &o.md)?;
        Ok(ObjectInfo {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size: if o.md.is_dir() { 0 } else { o.md.len() },
            etag: e.etag,
            last_modified: mtime(&o.md),
            headers: h.headers,
            user_metadata: h.user,
            storage_class: h.storage_class,
            checksum: e.checksum,
            version_id: None,
            parts_count: e.parts,
            encryption: None,
            attrs: Default::default(),
        })
    }

    fn stat(&self, b: &BucketName, k: &ObjectKey) -> ObjectResult<(Opened, ObjectInfo)> {
        let o = self.open_object(b, k)?;
        let info = self
            .info(b.as_str(), k.as_str(), &o)
            .map_err(|e| io_error(e, "reading an object"))?;
        Ok((o, info))
    }

    /// Removes folders left empty above `path`, up to the bucket, stopping
    /// at one that is a `dir/` object: S3 has no folders, so a prefix
    /// disappears with its last key.
    fn prune(&self, bucket_dir: &Path, bucket: &str, path: &Path) {
        let mut cur = path.parent();
        while let Some(dir) = cur {
            if dir == bucket_dir || !dir.starts_with(bucket_dir) {
                break;
            }
            let marked = File::open(dir).is_ok_and(|f| {
                let key = dir
                    .strip_prefix(bucket_dir)
                    .map(|p| format!("{}/", p.to_string_lossy()))
                    .unwrap_or_default();
                let t = Target {
                    file: &f,
                    bucket,
                    key: &key,
                };
                matches!(self.meta.get(&t, XA_DIR), Ok(Some(_)))
            });
            if marked || std::fs::remove_dir(dir).is_err() {
                break;
            }
            cur = dir.parent();
        }
    }

    /// Writes the records of a new file (before it is renamed into place).
    fn stamp(
        &self,
        bucket: &str,
        key: &str,
        file: &File,
        h: &HeaderRecord,
        e: &EtagRecord,
    ) -> ObjectResult<()> {
        let t = Target { file, bucket, key };
        let hv = if h.is_empty() {
            None
        } else {
            Some(serde_json::to_vec(h).map_err(ObjectError::internal)?)
        };
        let ev = serde_json::to_vec(e).map_err(ObjectError::internal)?;
        self.meta
            .set(&t, &[(XA_META, hv), (XA_ETAG, Some(ev))])
            .map_err(|e| io_error(e, "writing object metadata"))
    }

    /// Puts a finished temp file in place as `k`.
    fn commit_file(
        &self,
        b: &BucketName,
        k: &ObjectKey,
        tmp: TempFile,
        h: HeaderRecord,
        mut e: EtagRecord,
        precondition: Option<&WritePrecondition>,
    ) -> ObjectResult<ObjectInfo> {
        let bucket_dir = self.bucket_dir(b)?;
        let _g = self.commits.lock(b.as_str(), k.as_str());
        self.check_precondition(b, k, precondition)?;
        let md = tmp
            .file
            .metadata()
            .map_err(|e| io_error(e, "reading a temp file"))?;
        let stamped = EtagRecord::new(std::mem::take(&mut e.etag), &md);
        let e = EtagRecord {
            checksum: e.checksum,
            parts: e.parts,
            ..stamped
        };
        self.stamp(b.as_str(), k.as_str(), &tmp.file, &h, &e)?;
        let dst = self.object_path(b, k)?;
        let placed = make_parents(&bucket_dir, &dst).and_then(|()| install(tmp, &dst));
        if let Err((err, why)) = placed {
            if !self.meta.is_xattr() {
                let _ = self.meta.forget(b.as_str(), k.as_str());
            }
            return Err(if why.is_empty() {
                io_error(err, "placing an object")
            } else {
                conflict(b, k, why)
            });
        }
        Ok(ObjectInfo {
            bucket: b.to_string(),
            key: k.to_string(),
            size: md.len(),
            etag: e.etag,
            last_modified: mtime(&md),
            headers: h.headers,
            user_metadata: h.user,
            storage_class: h.storage_class,
            checksum: e.checksum,
            version_id: None,
            parts_count: e.parts,
            encryption: None,
            attrs: Default::default(),
        })
    }

    /// Judges a conditional write against the key's current object; the
    /// caller holds the key's commit lock and places the object next.
    fn check_precondition(
        &self,
        b: &BucketName,
        k: &ObjectKey,
        precondition: Option<&WritePrecondition>,
    ) -> ObjectResult<()> {
        let Some(p) = precondition else {
            return Ok(());
        };
        let current = match self.stat(b, k) {
            Ok((_, info)) => Some(info.etag),
            Err(ObjectError::NoSuchKey { .. }) => None,
            Err(e) => return Err(e),
        };
        p.check(current.as_deref(), b, k)
    }

    /// Makes (or re-marks) the folder of a `dir/` key.
    fn commit_dir(
        &self,
        b: &BucketName,
        k: &ObjectKey,
        h: HeaderRecord,
    ) -> ObjectResult<ObjectInfo> {
        let bucket_dir = self.bucket_dir(b)?;
        let dir = self.object_path(b, k)?;
        make_parents(&bucket_dir, &dir).map_err(|(err, why)| {
            if why.is_empty() {
                io_error(err, "making a folder")
            } else {
                conflict(b, k, why)
            }
        })?;
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !std::fs::metadata(&dir).is_ok_and(|m| m.is_dir()) {
                    return Err(conflict(
                        b,
                        k,
                        "a file of the same name exists on the share (a key and keys below it cannot both exist)",
                    ));
                }
            }
            Err(e) if errors::is_path_clash(&e) => {
                return Err(conflict(b, k, write::PARENT_IS_FILE));
            }
            Err(e) => return Err(io_error(e, "making a folder")),
        }
        let file = File::open(&dir).map_err(|e| io_error(e, "opening a folder"))?;
        let t = Target {
            file: &file,
            bucket: b.as_str(),
            key: k.as_str(),
        };
        let hv = if h.is_empty() {
            None
        } else {
            Some(serde_json::to_vec(&h).map_err(ObjectError::internal)?)
        };
        self.meta
            .set(&t, &[(XA_DIR, Some(b"1".to_vec())), (XA_META, hv)])
            .map_err(|e| io_error(e, "marking a folder"))?;
        if let Some(parent) = dir.parent() {
            let _ = sync_dir(parent);
        }
        let o = self.open_object(b, k)?;
        self.info(b.as_str(), k.as_str(), &o)
            .map_err(|e| io_error(e, "reading a folder"))
    }

    fn delete(&self, b: &BucketName, k: &ObjectKey) -> ObjectResult<()> {
        let bucket_dir = self.bucket_dir(b)?;
        let path = self.object_path(b, k)?;
        if k.is_dir_marker() {
            let Ok(file) = File::open(&path) else {
                return Ok(());
            };
            if !file.metadata().is_ok_and(|m| m.is_dir()) {
                return Ok(());
            }
            let t = Target {
                file: &file,
                bucket: b.as_str(),
                key: k.as_str(),
            };
            let _ = self.meta.set(&t, &[(XA_DIR, None), (XA_META, None)]);
            // Gone as an object; the folder stays while keys are below it.
            if std::fs::remove_dir(&path).is_ok() {
                self.prune(&bucket_dir, b.as_str(), &path);
            }
            return Ok(());
        }
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => return Ok(()), // not an object: nothing to delete
            Ok(_) => {}
            Err(e) if is_absent(&e) => return Ok(()),
            Err(e) => return Err(io_error(e, "deleting an object")),
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if is_absent(&e) => return Ok(()),
            Err(e) => return Err(io_error(e, "deleting an object")),
        }
        let _ = self.meta.forget(b.as_str(), k.as_str());
        self.prune(&bucket_dir, b.as_str(), &path);
        Ok(())
    }

    fn upload_dir(
        &self,
        b: &BucketName,
        k: &ObjectKey,
        id: &str,
    ) -> ObjectResult<(SafePath, UploadRecord)> {
        self.bucket_dir(b)?;
        let none = || ObjectError::NoSuchUpload {
            upload_id: id.to_owned(),
        };
        let dir = self.share.upload(id).ok_or_else(none)?;
        let rec: UploadRecord = match multipart::read_json(&multipart::record_path(&dir)) {
            Ok(r) => r,
            Err(e) if is_absent(&e) => return Err(none()),
            Err(e) => return Err(io_error(e, "reading an upload")),
        };
        if rec.bucket != b.as_str() || rec.key != k.as_str() {
            return Err(none());
        }
        Ok((dir, rec))
    }
}

#[async_trait]
impl ObjectLayer for NasLayer {
    fn capabilities(&self) -> Capabilities {
        CAPS
    }

    async fn make_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        let b = bucket.clone();
        self.blocking(move |s| {
            let dir = s.share.bucket(&b);
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    let _ = sync_dir(&s.share.root);
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    Err(ObjectError::BucketAlreadyExists {
                        bucket: b.to_string(),
                    })
                }
                Err(e) => Err(io_error(e, "making a bucket folder")),
            }
        })
        .await
    }

    async fn head_bucket(&self, bucket: &BucketName) -> ObjectResult<BucketInfo> {
        let b = bucket.clone();
        self.blocking(move |s| {
            let dir = s.bucket_dir(&b)?;
            let md = std::fs::metadata(&dir).map_err(|e| io_error(e, "reading a bucket folder"))?;
            Ok(BucketInfo {
                name: b.to_string(),
                created: md
                    .created()
                    .or_else(|_| md.modified())
                    .map(OffsetDateTime::from)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            })
        })
        .await
    }

    async fn list_buckets(&self) -> ObjectResult<Vec<BucketInfo>> {
        self.blocking(|s| {
            if !s.share.present() {
                // An empty mount point lists no buckets: say it is gone.
                return Err(ObjectError::NoSuchBucket {
                    bucket: String::new(),
                });
            }
            let mut out = Vec::new();
            let rd =
                std::fs::read_dir(&s.share.root).map_err(|e| io_error(e, "listing the share"))?;
            for ent in rd {
                let ent = ent.map_err(|e| io_error(e, "listing the share"))?;
                // Only folders whose names are valid bucket names: never
                // the hidden folder, lost+found or stray files (counted
                // at start, top.rs).
                if let top::Top::Bucket(name, md) = top::classify(&ent) {
                    out.push(BucketInfo {
                        name,
                        created: md
                            .created()
                            .or_else(|_| md.modified())
                            .map(OffsetDateTime::from)
                            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    });
                }
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }

    async fn delete_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        let b = bucket.clone();
        self.blocking(move |s| {
            let dir = s.bucket_dir(&b)?;
            match std::fs::remove_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                    return Err(ObjectError::BucketNotEmpty {
                        bucket: b.to_string(),
                    });
                }
                Err(e) => return Err(io_error(e, "removing a bucket folder")),
            }
            s.meta.forget_bucket(b.as_str());
            // The bucket's unfinished uploads go with it.
            if let Ok(rd) = std::fs::read_dir(s.share.uploads_dir()) {
                for ent in rd.flatten() {
                    let Some(dir) = ent.file_name().to_str().and_then(|id| s.share.upload(id))
                    else {
                        continue;
                    };
                    let rec: io::Result<UploadRecord> =
                        multipart::read_json(&multipart::record_path(&dir));
                    if rec.is_ok_and(|r| r.bucket == b.as_str()) {
                        let _ = std::fs::remove_dir_all(dir);
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: ByteStream,
        opts: PutOptions,
    ) -> ObjectResult<ObjectInfo> {
        refuse_sse(opts.sse.as_ref())?;
        refuse_version_attrs(&opts)?;
        let b = bucket.clone();
        self.blocking(move |s| s.bucket_dir(&b).map(drop)).await?;
        let _claim = self
            .inner
            .in_flight
            .claim(bucket, key, opts.precondition.as_ref())?;
        let tmp_path = self
            .inner
            .share
            .tmp_file()
            .map_err(ObjectError::internal)?
            .into_path_buf();
        let (tmp, digest) = receive(
            tmp_path,
            body,
            opts.content_length,
            opts.content_md5,
            opts.checksum,
        )
        .await?;
        let h = HeaderRecord {
            headers: opts.metadata.headers,
            user: opts.metadata.user,
            storage_class: opts.metadata.storage_class,
        };
        let (b, k) = (bucket.clone(), key.clone());
        if key.is_dir_marker() {
            if digest.len > 0 {
                return Err(ObjectError::NotImplemented {
                    what: "folder objects (keys ending in '/') with content on the NAS gateway",
                });
            }
            drop(tmp);
            let p = opts.precondition;
            return self
                .blocking(move |s| {
                    let _g = s.commits.lock(b.as_str(), k.as_str());
                    s.check_precondition(&b, &k, p.as_ref())?;
                    s.commit_dir(&b, &k, h)
                })
                .await;
        }
        let e = EtagRecord {
            etag: digest.etag(),
            size: digest.len,
            mtime_sec: 0,
            mtime_nsec: 0,
            checksum: digest.checksum,
            parts: None,
        };
        let p = opts.precondition;
        self.blocking(move |s| s.commit_file(&b, &k, tmp, h, e, p.as_ref()))
            .await
    }

    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: GetOptions,
    ) -> ObjectResult<GetObject> {
        if opts.sse_customer.is_some() {
            return Err(ObjectError::SseCustomerKeyNotExpected {
                bucket: bucket.to_string(),
                key: key.to_string(),
            });
        }
        let (b, k) = (bucket.clone(), key.clone());
        let (o, info) = self.blocking(move |s| s.stat(&b, &k)).await?;
        opts.conditions.check(&info)?;
        let range = opts.range.map(|r| r.resolve(info.size)).transpose()?;
        if o.md.is_dir() || info.size == 0 {
            return Ok(GetObject {
                info,
                range,
                body: cairn_api::bytes_stream(Vec::new()),
            });
        }
        let (off, len) = range.unwrap_or((0, info.size));
        let mut f = tokio::fs::File::from_std(o.file);
        if off > 0 {
            f.seek(io::SeekFrom::Start(off))
                .await
                .map_err(|e| io_error(e, "seeking in an object"))?;
        }
        let body = tokio_util::io::ReaderStream::with_capacity(f.take(len), 1 << 20);
        Ok(GetObject {
            info,
            range,
            body: Box::pin(body),
        })
    }

    async fn head_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        conditions: &Conditions,
    ) -> ObjectResult<ObjectInfo> {
        let (b, k) = (bucket.clone(), key.clone());
        let (_, info) = self.blocking(move |s| s.stat(&b, &k)).await?;
        conditions.check(&info)?;
        Ok(info)
    }

    async fn delete_object(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()> {
        let (b, k) = (bucket.clone(), key.clone());
        self.blocking(move |s| s.delete(&b, &k)).await
    }

    async fn copy_object(
        &self,
        src_bucket: &BucketName,
        src_key: &ObjectKey,
        dst_bucket: &BucketName,
        dst_key: &ObjectKey,
        opts: CopyOptions,
    ) -> ObjectResult<ObjectInfo> {
        refuse_sse(opts.sse.as_ref())?;
        if opts.tags.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(ObjectError::NotImplemented {
                what: "object tags on the NAS gateway",
            });
        }
        if matches!(opts.source_version_id, Some(Some(_))) {
            return Err(ObjectError::NotImplemented {
                what: "object versions on the NAS gateway",
            });
        }
        if src_bucket == dst_bucket && src_key == dst_key {
            // Onto itself: only the metadata changes; the bytes stay. A
            // destination condition is judged under the key's commit lock,
            // held to the metadata write, as a conditional PUT's.
            let _claim =
                self.inner
                    .in_flight
                    .claim(dst_bucket, dst_key, opts.precondition.as_ref())?;
            let (b, k) = (src_bucket.clone(), src_key.clone());
            return self
                .blocking(move |s| {
                    let _g = s.commits.lock(b.as_str(), k.as_str());
                    let (o, mut info) = s.stat(&b, &k)?;
                    opts.source_conditions
                        .check(&info)
                        .map_err(copy_condition_error)?;
                    if let Some(p) = &opts.precondition {
                        p.check(Some(&info.etag), &b, &k)?;
                    }
                    let mut m = match opts.metadata {
                        MetadataDirective::Copy => info.metadata(),
                        MetadataDirective::Replace(m) => m,
                    };
                    if let Some(c) = opts.storage_class {
                        m.storage_class = c;
                    }
                    let h = HeaderRecord {
                        headers: m.headers.clone(),
                        user: m.user.clone(),
                        storage_class: m.storage_class,
                    };
                    let t = Target {
                        file: &o.file,
                        bucket: b.as_str(),
                        key: k.as_str(),
                    };
                    let hv = if h.is_empty() {
                        None
                    } else {
                        Some(serde_json::to_vec(&h).map_err(ObjectError::internal)?)
                    };
                    s.meta
                        .set(&t, &[(XA_META, hv)])
                        .map_err(|e| io_error(e, "writing object metadata"))?;
                    info.headers = m.headers;
                    info.user_metadata = m.user;
                    info.storage_class = m.storage_class;
                    Ok(info)
                })
                .await;
        }
        copy_via_stream(self, src_bucket, src_key, dst_bucket, dst_key, opts).await
    }

    async fn list_objects(&self, bucket: &BucketName, opts: ListOptions) -> ObjectResult<ListPage> {
        let b = bucket.clone();
        self.blocking(move |s| {
            let dir = s.bucket_dir(&b)?;
            let bucket = b.as_str();
            let is_dir_object = |p: &Path| {
                File::open(p).is_ok_and(|f| {
                    let key = p
                        .strip_prefix(&dir)
                        .map(|r| format!("{}/", r.to_string_lossy()))
                        .unwrap_or_default();
                    s.is_dir_object(bucket, &key, p, &f)
                })
            };
            let walk = list::Walk {
                opts: &opts,
                info: |p: &Path, key: &str, is_dir: bool| {
                    let file = File::open(p).ok()?;
                    let md = file.metadata().ok()?;
                    if md.is_dir() != is_dir {
                        return None; // changed under us
                    }
                    let o = Opened { file, md };
                    match s.info(bucket, key, &o) {
                        Ok(i) => Some(i),
                        Err(e) => {
                            tracing::warn!(bucket, key, error = %e, "unreadable file left out of a listing");
                            None
                        }
                    }
                },
                is_dir_object: &is_dir_object,
            };
            walk.run(&dir)
                .map_err(|e| io_error(e, "listing a bucket folder"))
        })
        .await
    }

    async fn rename_object(
        &self,
        bucket: &BucketName,
        src: &ObjectKey,
        dst: &ObjectKey,
        replace: bool,
    ) -> ObjectResult<ObjectInfo> {
        if src.is_dir_marker() || dst.is_dir_marker() {
            // A folder object has no bytes: make the new one, drop the old.
            let (b, s_k) = (bucket.clone(), src.clone());
            let (_, info) = self.blocking(move |s| s.stat(&b, &s_k)).await?;
            if !replace {
                match self.head_object(bucket, dst, &Conditions::default()).await {
                    Ok(_) => return Err(ObjectError::PreconditionFailed),
                    Err(ObjectError::NoSuchKey { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            let out = copy_via_stream(
                self,
                bucket,
                src,
                bucket,
                dst,
                CopyOptions {
                    metadata: MetadataDirective::Replace(info.metadata()),
                    ..Default::default()
                },
            )
            .await?;
            self.delete_object(bucket, src).await?;
            return Ok(out);
        }
        let (b, s_k, d_k) = (bucket.clone(), src.clone(), dst.clone());
        self.blocking(move |s| {
            let bucket_dir = s.bucket_dir(&b)?;
            let (_, mut info) = s.stat(&b, &s_k)?;
            if !replace {
                match s.open_object(&b, &d_k) {
                    Ok(_) => return Err(ObjectError::PreconditionFailed),
                    Err(ObjectError::NoSuchKey { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            let from = s.object_path(&b, &s_k)?;
            let to = s.object_path(&b, &d_k)?;
            make_parents(&bucket_dir, &to).map_err(|(err, why)| {
                if why.is_empty() {
                    io_error(err, "renaming an object")
                } else {
                    conflict(&b, &d_k, why)
                }
            })?;
            if std::fs::symlink_metadata(&to).is_ok_and(|m| m.is_dir()) {
                return Err(conflict(&b, &d_k, write::KEY_IS_FOLDER));
            }
            s.meta
                .rename(b.as_str(), s_k.as_str(), d_k.as_str())
                .map_err(|e| io_error(e, "moving object metadata"))?;
            match std::fs::rename(&from, &to) {
                Ok(()) => {}
                Err(e) if is_absent(&e) => return Err(ObjectError::no_such_key(&b, &s_k)),
                Err(e) if errors::is_path_clash(&e) => {
                    return Err(conflict(&b, &d_k, write::KEY_IS_FOLDER));
                }
                Err(e) => return Err(io_error(e, "renaming an object")),
            }
            for d in [to.parent(), from.parent()].into_iter().flatten() {
                let _ = sync_dir(d);
            }
            s.prune(&bucket_dir, b.as_str(), &from);
            info.key = d_k.to_string();
            Ok(info)
        })
        .await
    }

    async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
    ) -> ObjectResult<String> {
        refuse_sse(opts.sse.as_ref())?;
        refuse_version_attrs(&opts)?;
        if key.is_dir_marker() {
            return Err(ObjectError::NotImplemented {
                what: "folder objects (keys ending in '/') with content on the NAS gateway",
            });
        }
        let (b, k) = (bucket.clone(), key.clone());
        self.blocking(move |s| {
            s.bucket_dir(&b)?;
            let id = uuid::Uuid::new_v4().to_string();
            let dir = s
                .share
                .upload(&id)
                .ok_or_else(|| ObjectError::internal("a new upload id is not a uuid"))?;
            std::fs::create_dir_all(&dir).map_err(|e| io_error(e, "making an upload"))?;
            let rec = UploadRecord {
                bucket: b.to_string(),
                key: k.to_string(),
                initiated: OffsetDateTime::now_utc().unix_timestamp_nanos(),
                meta: HeaderRecord {
                    headers: opts.metadata.headers,
                    user: opts.metadata.user,
                    storage_class: opts.metadata.storage_class,
                },
                checksum_full_object: opts.checksum.as_ref().is_some_and(|c| c.full_object),
                checksum: opts.checksum.map(|c| c.algorithm),
            };
            multipart::write_json(&multipart::record_path(&dir), &rec)
                .map_err(|e| io_error(e, "making an upload"))?;
            Ok(id)
        })
        .await
    }

    async fn upload_part(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number: u32,
        body: ByteStream,
        opts: PartOptions,
    ) -> ObjectResult<PartInfo> {
        check_part_number(part_number)?;
        let (b, k, id) = (bucket.clone(), key.clone(), upload_id.to_owned());
        let (dir, up) = self.blocking(move |s| s.upload_dir(&b, &k, &id)).await?;
        let checksum = part_request(up.checksum, opts.checksum)?;
        let file = format!("part.{part_number}.{}", uuid::Uuid::new_v4());
        let (tmp, digest) = receive(
            dir.join_str(&file)
                .map_err(ObjectError::internal)?
                .into_path_buf(),
            body,
            opts.content_length,
            opts.content_md5,
            checksum,
        )
        .await?;
        let rec = PartRecord {
            part_number,
            etag: digest.etag(),
            size: digest.len,
            last_modified: OffsetDateTime::now_utc().unix_timestamp_nanos(),
            checksum: digest.checksum,
            file,
        };
        let id = upload_id.to_owned();
        self.blocking(move |_| {
            let rp =
                multipart::part_record_path(&dir, part_number).map_err(ObjectError::internal)?;
            let old: Option<PartRecord> = multipart::read_json(&rp).ok();
            if !multipart::record_path(&dir).exists() {
                return Err(ObjectError::NoSuchUpload { upload_id: id });
            }
            multipart::write_json(&rp, &rec).map_err(|e| io_error(e, "recording a part"))?;
            tmp.keep();
            if let Some(old) = old.filter(|o| o.file != rec.file)
                && let Ok(old) = dir.join_str(&old.file)
            {
                let _ = std::fs::remove_file(old);
            }
            Ok(rec.info())
        })
        .await
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number_marker: Option<u32>,
        max_parts: usize,
    ) -> ObjectResult<ListPartsPage> {
        let (b, k, id) = (bucket.clone(), key.clone(), upload_id.to_owned());
        self.blocking(move |s| {
            let (dir, _) = s.upload_dir(&b, &k, &id)?;
            let parts = multipart::parts(&dir)
                .map_err(|e| io_error(e, "listing parts"))?
                .iter()
                .map(PartRecord::info)
                .collect();
            Ok(page_parts(parts, part_number_marker, max_parts))
        })
        .await
    }

    async fn complete_multipart_upload_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: Vec<CompletePart>,
        opts: CompleteOptions,
    ) -> ObjectResult<ObjectInfo> {
        let (b, k, id) = (bucket.clone(), key.clone(), upload_id.to_owned());
        let _claim = self
            .inner
            .in_flight
            .claim(bucket, key, opts.precondition.as_ref())?;
        let p = opts.precondition;
        let given = opts.checksums;
        self.blocking(move |s| {
            let (dir, rec) = match s.upload_dir(&b, &k, &id) {
                Ok(found) => found,
                // a retry of a complete that already happened
                Err(ObjectError::NoSuchUpload { .. })
                    if let Some(info) = s.completed.get(b.as_str(), k.as_str(), &id, &parts) =>
                {
                    return Ok(info);
                }
                Err(e) => return Err(e),
            };
            let records = multipart::parts(&dir).map_err(|e| io_error(e, "listing parts"))?;
            let files: BTreeMap<u32, String> = records
                .iter()
                .map(|p| (p.part_number, p.file.clone()))
                .collect();
            let uploaded: BTreeMap<u32, PartInfo> =
                records.iter().map(|p| (p.part_number, p.info())).collect();
            let chosen = validate_complete(&parts, &uploaded)?;
            let tmp_path = s.share.tmp_file().map_err(ObjectError::internal)?;
            let mut tmp = TempFile::create(tmp_path.into_path_buf())
                .map_err(|e| io_error(e, "creating a temp file"))?;
            for p in &chosen {
                let name = files
                    .get(&p.part_number)
                    .ok_or(ObjectError::InvalidPart {
                        part_number: p.part_number,
                    })?;
                let part_path = dir.join_str(name).map_err(ObjectError::internal)?;
                let mut part = File::open(part_path)
                    .map_err(|e| io_error(e, "reading a part"))?;
                // std uses copy_file_range here: the kernel moves the bytes.
                io::copy(&mut part, &mut tmp.file)
                    .map_err(|e| io_error(e, "joining parts"))?;
            }
            tmp.file
                .sync_all()
                .map_err(|e| io_error(e, "syncing a joined object"))?;
            let etags: Vec<&str> = chosen.iter().map(|p| p.etag.as_str()).collect();
            let checksum = complete_checksum(
                UploadChecksum::from_record(rec.checksum, rec.checksum_full_object),
                &chosen,
                &given,
            )?;
            let e = EtagRecord {
                etag: multipart_etag(&etags),
                size: 0,
                mtime_sec: 0,
                mtime_nsec: 0,
                checksum,
                parts: Some(chosen.len() as u32),
            };
            let info = s.commit_file(&b, &k, tmp, rec.meta, e, p.as_ref())?;
            s.completed.record(&id, &parts, &info);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(upload = %id, error = %e, "completed upload's staging folder not removed");
            }
            Ok(info)
        })
        .await
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> ObjectResult<()> {
        let (b, k, id) = (bucket.clone(), key.clone(), upload_id.to_owned());
        self.blocking(move |s| {
            let (dir, _) = s.upload_dir(&b, &k, &id)?;
            std::fs::remove_dir_all(&dir).map_err(|e| io_error(e, "removing an upload"))
        })
        .await
    }

    async fn list_multipart_uploads(
        &self,
        bucket: &BucketName,
        opts: ListUploadsOptions,
    ) -> ObjectResult<ListUploadsPage> {
        let b = bucket.clone();
        self.blocking(move |s| {
            s.bucket_dir(&b)?;
            let mut all = Vec::new();
            let rd = std::fs::read_dir(s.share.uploads_dir())
                .map_err(|e| io_error(e, "listing uploads"))?;
            for ent in rd.flatten() {
                let Some(id) = ent.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let Some(dir) = s.share.upload(&id) else {
                    continue;
                };
                let Ok(rec) = multipart::read_json::<UploadRecord>(&multipart::record_path(&dir))
                else {
                    continue;
                };
                if rec.bucket == b.as_str() {
                    all.push(UploadInfo {
                        bucket: rec.bucket.clone(),
                        key: rec.key.clone(),
                        upload_id: id,
                        initiated: rec.initiated(),
                        storage_class: rec.meta.storage_class,
                    });
                }
            }
            Ok(page_uploads(all, &opts))
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fixtures below a temp folder
mod tests;
