//! Namespace operations: lookup, getattr, setattr, mkdir, unlink, rmdir,
//! symlink, readlink, statfs.

use std::time::SystemTime;

use cairn_api::{
    BucketName, Conditions, CopyOptions, ListOptions, MetadataDirective, ObjectError, ObjectInfo,
    ObjectKey, ObjectMetadata, ObjectResult, PutOptions, bytes_stream,
};

use crate::attr::{self, Attr, DIR_CONTENT_TYPE, FileKind};
use crate::error::{VfsError, VfsResult};
use crate::inode::{Loc, ROOT_INO};
use crate::names::{bucket, check_name, child_path, dir_key, key};
use crate::special::NewOwner;
use crate::{Vfs, collect_small};

/// What `setattr` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SetAttr {
    pub perm: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub mtime: Option<SystemTime>,
    /// The access time was set: it is not kept (`noatime`), but setting
    /// it changes the ctime, as on a local filesystem.
    pub atime_set: bool,
}

impl SetAttr {
    fn has_meta(&self) -> bool {
        self.perm.is_some()
            || self.uid.is_some()
            || self.gid.is_some()
            || self.mtime.is_some()
            || self.atime_set
    }

    pub(crate) fn apply(&self, a: &mut Attr) {
        if let Some(p) = self.perm {
            a.perm = p & 0o7777;
        }
        if let Some(u) = self.uid {
            a.uid = u;
        }
        if let Some(g) = self.gid {
            a.gid = g;
        }
        if let Some(t) = self.mtime {
            a.mtime = t;
        }
        a.ctime = SystemTime::now();
    }
}

#[derive(Debug, Clone, Copy)]
pub struct StatFs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
}

impl Vfs {
    pub(crate) fn loc(&self, ino: u64) -> VfsResult<Loc> {
        self.inodes.loc(ino).ok_or(VfsError::NotFound)
    }

    /// Bucket and path of an inode inside a bucket (its top dir is `""`).
    pub(crate) fn bucket_path(&self, ino: u64) -> VfsResult<(BucketName, String)> {
        match self.loc(ino)? {
            Loc::Root => Err(VfsError::NotPermitted("the mount root holds only buckets")),
            Loc::Path { bucket: b, path } => Ok((bucket(&b)?, path)),
        }
    }

    /// The store's object lock and WORM rules for a file about to be
    /// written, truncated, renamed, deleted or changed in its attributes.
    pub(crate) async fn check_unlocked(&self, ino: u64) -> VfsResult<()> {
        let Ok((b, path)) = self.bucket_path(ino) else {
            return Ok(());
        };
        if path.is_empty() {
            return Ok(());
        }
        self.layer.check_mutable(&b, &key(&path)?).await?;
        Ok(())
    }

    pub(crate) fn check_writable(&self) -> VfsResult<()> {
        if self.cfg.read_only {
            Err(VfsError::ReadOnly)
        } else {
            Ok(())
        }
    }

    fn root_attr(&self) -> Attr {
        attr::implicit_dir(ROOT_INO, &self.cfg.defaults, self.started)
    }

    async fn bucket_attr(&self, ino: u64, b: &BucketName) -> VfsResult<Attr> {
        let info = self.layer.head_bucket(b).await?;
        Ok(attr::implicit_dir(
            ino,
            &self.cfg.defaults,
            attr::to_system_time(info.created),
        ))
    }

    /// What a path is, asking the store: a directory (marker or prefix)
    /// wins over an object of the same name, as in mountpoint-s3.
    pub(crate) async fn probe(&self, b: &BucketName, path: &str, ino: u64) -> VfsResult<Attr> {
        let a = self.probe_store(b, path, ino).await?;
        Ok(self.with_pending_times(a))
    }

    async fn probe_store(&self, b: &BucketName, path: &str, ino: u64) -> VfsResult<Attr> {
        let k = match key(path) {
            Ok(k) => k,
            Err(VfsError::Invalid(_)) => return Err(VfsError::NotFound),
            Err(e) => return Err(e),
        };
        let prefix = format!("{path}/");
        let list = self.layer.list_objects(
            b,
            ListOptions {
                prefix: prefix.clone(),
                delimiter: Some("/".into()),
                start_after: None,
                max_keys: 1,
            },
        );
        let none = Conditions::default();
        let head = self.layer.head_object(b, &k, &none);
        let (list, head) = futures::join!(list, head);
        let page = list?;
        if let Some(o) = page.objects.first() {
            return Ok(if o.key == prefix {
                attr::from_object(ino, o, true, &self.cfg.defaults)
            } else {
                attr::implicit_dir(
                    ino,
                    &self.cfg.defaults,
                    attr::to_system_time(o.last_modified),
                )
            });
        }
        if !page.common_prefixes.is_empty() {
            return Ok(attr::implicit_dir(ino, &self.cfg.defaults, self.started));
        }
        match head {
            Ok(info) => Ok(attr::from_object(ino, &info, false, &self.cfg.defaults)),
            Err(ObjectError::NoSuchKey { .. }) => Err(VfsError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Looks `name` up in `parent`.
    pub async fn lookup(&self, parent: u64, name: &str) -> VfsResult<Attr> {
        check_name(name)?;
        let ploc = self.loc(parent)?;
        if let Some(ino) = self.inodes.find(parent, name) {
            if let Some(a) = self.open_attr(ino).await {
                return Ok(a);
            }
            if let Some(a) = self.cache.get(ino) {
                return Ok(a);
            }
        }
        let found = match ploc {
            Loc::Root => {
                let b = bucket(name)?;
                let ino = self.inodes.child(parent, name, FileKind::Dir);
                self.bucket_attr(ino, &b).await
            }
            Loc::Path { bucket: b, path } => {
                if self.known.absent(&b, &path, name) {
                    Err(VfsError::NotFound)
                } else {
                    let b = bucket(&b)?;
                    let cp = child_path(&path, name);
                    // a provisional number; the kind is fixed below
                    let ino = self
                        .inodes
                        .find(parent, name)
                        .unwrap_or_else(|| self.inodes.child(parent, name, FileKind::File));
                    self.probe(&b, &cp, ino).await
                }
            }
        };
        match found {
            Ok(a) => {
                let ino = self.inodes.child(parent, name, a.kind);
                debug_assert_eq!(ino, a.ino);
                self.cache.put(&a);
                Ok(a)
            }
            Err(e) => {
                if matches!(e, VfsError::NotFound)
                    && let Some(ino) = self.inodes.detach(parent, name)
                {
                    self.cache.remove(ino);
                }
                Err(e)
            }
        }
    }

    pub async fn getattr(&self, ino: u64) -> VfsResult<Attr> {
        if let Some(a) = self.open_attr(ino).await {
            return Ok(a);
        }
        if let Some(a) = self.cache.get(ino) {
            return Ok(a);
        }
        self.fresh_attr(ino).await
    }

    /// Attributes from the store, bypassing the cache.
    pub(crate) async fn fresh_attr(&self, ino: u64) -> VfsResult<Attr> {
        let a = match self.loc(ino)? {
            Loc::Root => self.root_attr(),
            Loc::Path { bucket: b, path } => {
                let b = bucket(&b)?;
                if path.is_empty() {
                    self.bucket_attr(ino, &b).await?
                } else {
                    self.probe(&b, &path, ino).await?
                }
            }
        };
        self.cache.put(&a);
        Ok(a)
    }

    pub async fn setattr(&self, ino: u64, set: SetAttr) -> VfsResult<Attr> {
        self.check_writable()?;
        // a directory's waiting times, before `cur` shows them
        let seen = self.pending_dir_time(ino);
        let cur = self.getattr(ino).await?;
        match cur.kind {
            FileKind::Dir => {
                if set.size.is_some() {
                    return Err(VfsError::IsDir);
                }
                let (b, path) = match self.loc(ino)? {
                    Loc::Path { bucket: b, path } if !path.is_empty() => (bucket(&b)?, path),
                    // The root and buckets have fixed attributes; times
                    // are accepted (tar, rsync set them) and dropped.
                    _ if set.perm.is_none() && set.uid.is_none() && set.gid.is_none() => {
                        return Ok(cur);
                    }
                    _ => return Err(VfsError::NotPermitted("buckets have fixed attributes")),
                };
                let mut a = cur;
                set.apply(&mut a);
                self.put_dir_marker(&b, &path, &a).await?;
                self.dir_times_written(ino, seen);
                self.cache.put(&a);
                Ok(a)
            }
            kind => {
                self.check_unlocked(ino).await?;
                if set.size.is_some() && kind != FileKind::File {
                    return Err(VfsError::Invalid("only regular files have a size to set"));
                }
                self.setattr_file(ino, set).await
            }
        }
    }

    /// chmod/chown/utimens on an object that is not staged: rewrite its
    /// metadata with a copy onto itself.
    pub(crate) async fn rewrite_metadata(
        &self,
        ino: u64,
        a: &Attr,
        meta: &ObjectMetadata,
    ) -> VfsResult<ObjectInfo> {
        let (b, path) = self.bucket_path(ino)?;
        let k = key(&path)?;
        let mut m = meta.clone();
        a.to_metadata(&mut m.user);
        let info = self.replace_metadata(&b, &k, m).await?;
        self.cache.put(a);
        Ok(info)
    }

    /// Gives object `k` the metadata `m` by a copy onto itself (its bytes
    /// and encryption stay), as this view's own write.
    pub(crate) async fn replace_metadata(
        &self,
        b: &BucketName,
        k: &ObjectKey,
        m: ObjectMetadata,
    ) -> ObjectResult<ObjectInfo> {
        let copy = CopyOptions {
            metadata: MetadataDirective::Replace(m),
            keep_encryption: true,
            ..Default::default()
        };
        self.own_write(
            b.as_str(),
            &[k.as_str()],
            self.layer.copy_object(b, k, b, k, copy),
        )
        .await
    }

    pub(crate) fn set_has_meta(set: &SetAttr) -> bool {
        set.has_meta()
    }

    async fn put_dir_marker(&self, b: &BucketName, path: &str, a: &Attr) -> VfsResult<()> {
        let mut metadata = ObjectMetadata::default();
        metadata.headers.content_type = Some(DIR_CONTENT_TYPE.into());
        a.to_metadata(&mut metadata.user);
        let k = dir_key(path)?;
        let own = self.own.expect(b.as_str(), k.as_str());
        let r = self
            .layer
            .put_object(
                b,
                &k,
                bytes_stream(Vec::new()),
                PutOptions {
                    metadata,
                    content_length: Some(0),
                    ..Default::default()
                },
            )
            .await;
        own.settle(&r);
        r?;
        Ok(())
    }

    /// Fails with EEXIST when `name` exists in `parent`.
    pub(crate) async fn ensure_absent(&self, parent: u64, name: &str) -> VfsResult<()> {
        match self.lookup(parent, name).await {
            Ok(_) => Err(VfsError::Exists),
            Err(VfsError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn mkdir(
        &self,
        parent: u64,
        name: &str,
        perm: u32,
        uid: u32,
        gid: u32,
    ) -> VfsResult<Attr> {
        self.check_writable()?;
        check_name(name)?;
        let now = SystemTime::now();
        let a = match self.loc(parent)? {
            Loc::Root => {
                let b = BucketName::new(name)
                    .map_err(|_| VfsError::Invalid("not a valid bucket name"))?;
                // a new bucket is empty (see known.rs for the order)
                self.known.start_empty(name, "");
                if let Err(e) = self.layer.make_bucket(&b).await {
                    self.known.forget(name, "");
                    return Err(e.into());
                }
                let ino = self.inodes.child(parent, name, FileKind::Dir);
                self.bucket_attr(ino, &b).await?
            }
            Loc::Path { bucket: b, path } => {
                let cp = child_path(&path, name);
                // A directory made here is empty: its names are known from
                // now on. Started before the existence check, so a change
                // by another front after the check is not missed.
                let who = NewOwner { uid, gid, perm };
                let owner = self.inherit(parent, FileKind::Dir, who).await?;
                self.known.add(&b, &path, name);
                self.known.start_empty(&b, &cp);
                let a = Attr::new_entry(0, FileKind::Dir, 0, owner, now);
                let made = self.mkdir_in(parent, name, &cp, a).await;
                if made.is_err() {
                    self.known.forget(&b, &cp);
                }
                let made = made?;
                self.touch_dir(parent);
                made
            }
        };
        self.cache.put(&a);
        Ok(a)
    }

    /// mkdir below a bucket: EEXIST if the name is taken, else the
    /// `dir/` marker object with the attributes.
    async fn mkdir_in(&self, parent: u64, name: &str, cp: &str, a: Attr) -> VfsResult<Attr> {
        let (b, _) = self.bucket_path(parent)?;
        self.ensure_absent(parent, name).await?;
        let a = Attr {
            ino: self.inodes.child(parent, name, FileKind::Dir),
            ..a
        };
        self.put_dir_marker(&b, cp, &a).await?;
        Ok(a)
    }

    pub async fn unlink(&self, parent: u64, name: &str) -> VfsResult<()> {
        self.check_writable()?;
        let a = self.lookup(parent, name).await?;
        if a.kind == FileKind::Dir {
            return Err(VfsError::IsDir);
        }
        self.check_unlocked(a.ino).await?;
        let (b, path) = self.bucket_path(a.ino)?;
        let pending = self.mark_unlinked(a.ino).await;
        if !pending {
            let k = key(&path)?;
            self.own_write(b.as_str(), &[k.as_str()], self.layer.delete_object(&b, &k))
                .await?;
        }
        self.inodes.detach(parent, name);
        self.cache.remove(a.ino);
        self.touch_dir(parent);
        Ok(())
    }

    /// Whether a directory holds anything besides its own marker.
    pub(crate) async fn dir_has_children(&self, b: &BucketName, path: &str) -> VfsResult<bool> {
        let prefix = format!("{path}/");
        let page = self
            .layer
            .list_objects(
                b,
                ListOptions {
                    prefix: prefix.clone(),
                    delimiter: None,
                    start_after: None,
                    max_keys: 2,
                },
            )
            .await?;
        Ok(page.objects.iter().any(|o| o.key != prefix) || !page.common_prefixes.is_empty())
    }

    pub async fn rmdir(&self, parent: u64, name: &str) -> VfsResult<()> {
        self.check_writable()?;
        let a = self.lookup(parent, name).await?;
        if a.kind != FileKind::Dir {
            return Err(VfsError::NotDir);
        }
        match self.loc(parent)? {
            Loc::Root => {
                self.layer.delete_bucket(&bucket(name)?).await?;
                self.known.forget(name, "");
            }
            Loc::Path { bucket: b, path } => {
                let b = bucket(&b)?;
                let cp = child_path(&path, name);
                if self.dir_has_children(&b, &cp).await? || self.has_pending_children(a.ino) {
                    return Err(VfsError::NotEmpty);
                }
                let k = dir_key(&cp)?;
                self.own_write(b.as_str(), &[k.as_str()], self.layer.delete_object(&b, &k))
                    .await?;
                self.known.forget(b.as_str(), &cp);
            }
        }
        self.inodes.detach(parent, name);
        self.cache.remove(a.ino);
        self.touch_dir(parent);
        Ok(())
    }

    pub async fn symlink(
        &self,
        parent: u64,
        name: &str,
        target: &str,
        uid: u32,
        gid: u32,
    ) -> VfsResult<Attr> {
        self.check_writable()?;
        check_name(name)?;
        let who = NewOwner {
            uid,
            gid,
            perm: 0o777,
        };
        let owner = self.inherit(parent, FileKind::Symlink, who).await?;
        let owner = NewOwner {
            perm: 0o777,
            ..owner
        };
        let size = target.len() as u64;
        let a = Attr::new_entry(0, FileKind::Symlink, size, owner, SystemTime::now());
        self.put_entry(parent, name, a, target.as_bytes().to_vec())
            .await
    }

    pub async fn readlink(&self, ino: u64) -> VfsResult<Vec<u8>> {
        let a = self.getattr(ino).await?;
        if a.kind != FileKind::Symlink {
            return Err(VfsError::Invalid("not a symlink"));
        }
        let (b, path) = self.bucket_path(ino)?;
        let got = self
            .layer
            .get_object(&b, &key(&path)?, Default::default())
            .await?;
        collect_small(got.body, 4096).await
    }

    /// The store's usable capacity in 4 KiB blocks; a large fixed size when
    /// the store does not know it (so tools that check free space proceed).
    pub async fn statfs(&self) -> StatFs {
        const BSIZE: u32 = 4096;
        let (blocks, free) = match self.layer.capacity().await {
            Ok(Some(c)) => (
                c.total_bytes / u64::from(BSIZE),
                c.free_bytes / u64::from(BSIZE),
            ),
            _ => {
                let b = (1u64 << 50) / u64::from(BSIZE);
                (b, b)
            }
        };
        StatFs {
            blocks,
            bfree: free,
            bavail: free,
            files: 1 << 32,
            ffree: 1 << 32,
            bsize: BSIZE,
            namelen: 255,
        }
    }

    pub fn attr_ttl(&self) -> std::time::Duration {
        self.cfg.attr_ttl
    }
}
