//! Special files and what a new entry takes from its directory.
//!
//! A FIFO, socket or character/block device is an empty object whose
//! `x-amz-meta-mode` carries its type bits, as s3fs-fuse's mknod stores
//! one (a device's number in `x-amz-meta-rdev`). The view never reads or
//! writes such a file's bytes: the kernel opens FIFOs, sockets and
//! devices itself; the object only names the file and keeps its
//! attributes (chmod, chown, utimens, rename and unlink work as on files).

use std::time::SystemTime;

use cairn_api::{ObjectMetadata, PutOptions, bytes_stream};

use crate::Vfs;
use crate::attr::{Attr, FileKind};
use crate::error::{VfsError, VfsResult};
use crate::names::{check_name, child_path, content_type, key};

/// The set-group-ID bit: on a directory, new entries get its group (and
/// new directories the bit itself), as on a local filesystem.
pub const S_ISGID: u32 = 0o2000;

/// Who asks for a new entry, with the mode it asks for (permission bits).
#[derive(Debug, Clone, Copy)]
pub struct NewOwner {
    pub uid: u32,
    pub gid: u32,
    pub perm: u32,
}

impl Vfs {
    /// The owner and permission bits of a new entry of kind `kind` in
    /// `parent`: in a set-group-ID directory the entry gets the
    /// directory's group, and a new directory keeps the bit (Linux's
    /// `inode_init_owner`); elsewhere the caller's group.
    pub(crate) async fn inherit(
        &self,
        parent: u64,
        kind: FileKind,
        who: NewOwner,
    ) -> VfsResult<NewOwner> {
        let p = self.getattr(parent).await?;
        let mut out = NewOwner {
            perm: who.perm & 0o7777,
            ..who
        };
        if p.kind == FileKind::Dir && p.perm & S_ISGID != 0 {
            out.gid = p.gid;
            if kind == FileKind::Dir {
                out.perm |= S_ISGID;
            }
        }
        Ok(out)
    }

    /// mknod: a FIFO, socket, or character or block device `name` in
    /// `parent` (`mode` holds the type bits and the permissions, `rdev`
    /// the device number). A regular file is `create`'s; other types are
    /// EINVAL.
    pub async fn mknod(
        &self,
        parent: u64,
        name: &str,
        mode: u32,
        rdev: u32,
        owner: NewOwner,
    ) -> VfsResult<Attr> {
        self.check_writable()?;
        check_name(name)?;
        let kind =
            FileKind::special(mode).ok_or(VfsError::Invalid("mknod makes special files only"))?;
        let owner = self.inherit(parent, kind, owner).await?;
        let mut a = Attr::new_entry(0, kind, 0, owner, SystemTime::now());
        if matches!(kind, FileKind::CharDev | FileKind::BlockDev) {
            a.rdev = rdev;
        }
        self.put_entry(parent, name, a, Vec::new()).await
    }

    /// Puts a new symlink or special file `name` in `parent` as one small
    /// object (`body`: a symlink's target, else empty) carrying `a`'s
    /// attributes; EEXIST when the name is taken.
    pub(crate) async fn put_entry(
        &self,
        parent: u64,
        name: &str,
        a: Attr,
        body: Vec<u8>,
    ) -> VfsResult<Attr> {
        let (b, path) = self.bucket_path(parent)?;
        self.ensure_absent(parent, name).await?;
        let cp = child_path(&path, name);
        let k = key(&cp)?;
        let a = Attr {
            ino: self.inodes.child(parent, name, a.kind),
            ..a
        };
        let mut metadata = ObjectMetadata::default();
        if a.kind.is_special() {
            // what s3fs's mknod stores: the Content-Type of the name
            metadata.headers.content_type = Some(content_type(name));
        }
        a.to_metadata(&mut metadata.user);
        let len = body.len() as u64;
        self.own_write(
            b.as_str(),
            &[k.as_str()],
            self.layer.put_object(
                &b,
                &k,
                bytes_stream(body),
                PutOptions {
                    metadata,
                    content_length: Some(len),
                    ..Default::default()
                },
            ),
        )
        .await?;
        self.known.add(b.as_str(), &path, name);
        self.cache.put(&a);
        self.touch_dir(parent);
        Ok(a)
    }
}
