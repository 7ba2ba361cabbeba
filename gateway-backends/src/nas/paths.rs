//! Where buckets, objects and the gateway's own files live on the share.
//! Every path is a `SafePath` below the share: made of validated names
//! (bucket names, object keys, upload ids), it cannot leave the share.

use std::path::Path;

use cairn_api::path::{PathError, SafePath, Segment};
use cairn_api::{BucketName, ObjectKey, seg};

/// The gateway's hidden folder at the top of the share: temp files,
/// multipart staging, sidecar metadata. Its name is not a valid bucket
/// name (it starts with a dot), so it never lists as a bucket.
pub(crate) const HIDDEN: &str = ".cairn.gateway";

#[derive(Debug, Clone)]
pub(crate) struct Share {
    pub root: SafePath,
}

impl Share {
    pub fn hidden(&self) -> SafePath {
        self.root.join(seg!(HIDDEN))
    }

    /// The share is still there: its hidden folder (made at start) is.
    /// An unmounted NAS leaves an empty mount point without it.
    pub fn present(&self) -> bool {
        self.hidden().is_dir()
    }

    pub fn tmp_dir(&self) -> SafePath {
        self.hidden().join(seg!("tmp"))
    }

    pub fn uploads_dir(&self) -> SafePath {
        self.hidden().join(seg!("multipart"))
    }

    /// The folder of upload `id`, if it is an upload id (a uuid): anything
    /// else is not ours and must not become a path.
    pub fn upload(&self, id: &str) -> Option<SafePath> {
        uuid::Uuid::parse_str(id).ok()?;
        self.uploads_dir().join_str(id).ok()
    }

    pub fn sidecar_dir(&self) -> SafePath {
        self.hidden().join(seg!("meta"))
    }

    pub fn bucket(&self, b: &BucketName) -> SafePath {
        self.root.join(Segment::from(b))
    }

    /// The file of a key, or the folder of a `dir/` marker key: one name
    /// per validated key segment, so the path never leaves the bucket.
    pub fn object(&self, b: &BucketName, k: &ObjectKey) -> SafePath {
        self.bucket(b).join_key(k)
    }

    /// A fresh temp file name on the share's file system (so the final
    /// rename is atomic).
    pub fn tmp_file(&self) -> Result<SafePath, PathError> {
        self.tmp_dir().join_str(&uuid::Uuid::new_v4().to_string())
    }
}

/// Whether `path`, below bucket folder `bucket_dir`, stays inside that
/// folder once the symbolic links on the share are followed. The deepest
/// part of `path` that exists is resolved (a new object's folder, for a
/// write). A link that stays in the bucket is served; one that leads out
/// (to another bucket, or out of the share) is not.
pub(crate) fn stays_inside(bucket_dir: &Path, path: &Path) -> std::io::Result<bool> {
    let root = std::fs::canonicalize(bucket_dir)?;
    let mut probe = path;
    loop {
        match std::fs::canonicalize(probe) {
            Ok(real) => return Ok(real.starts_with(&root)),
            // not there, or a file where a folder would be: look higher
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                match probe.parent() {
                    Some(up) if up.starts_with(bucket_dir) => probe = up,
                    // nothing of it exists below the bucket folder
                    _ => return Ok(true),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Fsyncs a folder so a rename or create in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
