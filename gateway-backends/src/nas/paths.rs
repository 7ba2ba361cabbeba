//! Where buckets, objects and the gateway's own files live on the share.

use std::path::{Path, PathBuf};

use cairn_api::{BucketName, ObjectKey};

/// The gateway's hidden folder at the top of the share: temp files,
/// multipart staging, sidecar metadata. Its name is not a valid bucket
/// name (it starts with a dot), so it never lists as a bucket.
pub(crate) const HIDDEN: &str = ".cairn.gateway";

#[derive(Debug, Clone)]
pub(crate) struct Share {
    pub root: PathBuf,
}

impl Share {
    pub fn hidden(&self) -> PathBuf {
        self.root.join(HIDDEN)
    }

    /// The share is still there: its hidden folder (made at start) is.
    /// An unmounted NAS leaves an empty mount point without it.
    pub fn present(&self) -> bool {
        self.hidden().is_dir()
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.hidden().join("tmp")
    }

    pub fn uploads_dir(&self) -> PathBuf {
        self.hidden().join("multipart")
    }

    pub fn sidecar_dir(&self) -> PathBuf {
        self.hidden().join("meta")
    }

    pub fn bucket(&self, b: &BucketName) -> PathBuf {
        self.root.join(b.as_str())
    }

    /// The file of a key, or the folder of a `dir/` marker key. Keys are
    /// validated at the boundary (no `..`, `.`, empty segments or NUL), so
    /// the path never leaves the bucket folder.
    pub fn object(&self, b: &BucketName, k: &ObjectKey) -> PathBuf {
        let key = k.as_str().strip_suffix('/').unwrap_or(k.as_str());
        let mut p = self.bucket(b);
        for seg in key.split('/') {
            p.push(seg);
        }
        p
    }

    /// A fresh temp file name on the share's file system (so the final
    /// rename is atomic).
    pub fn tmp_file(&self) -> PathBuf {
        self.tmp_dir().join(uuid::Uuid::new_v4().to_string())
    }
}

/// Fsyncs a folder so a rename or create in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
