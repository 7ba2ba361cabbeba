//! S3 metadata a plain file cannot hold, kept next to it: in extended
//! attributes (`user.cairn.*`) where the file system has them, else in a
//! sidecar file per key under the hidden folder.
//!
//! Two records, because they age differently:
//! - `user.cairn.meta`: the headers, user metadata and storage class the
//!   writer set. They stay true when another program edits the file.
//! - `user.cairn.etag`: ETag (plain MD5 or multipart), checksum and part
//!   count, stamped with the size and mtime of the bytes they describe and
//!   trusted only while the file still has that size and mtime; otherwise
//!   the MD5 is recomputed (and the checksum dropped).
//!
//! `user.cairn.dir` marks a folder that was created as a `dir/` object.

use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::Path;

use cairn_api::SafePath;

use cairn_api::{Checksum, ObjectHeaders, StorageClass};
use md5::Digest as _;
use sha2::Sha256;
use xattr::FileExt as _;

pub(crate) const XA_META: &str = "user.cairn.meta";
pub(crate) const XA_ETAG: &str = "user.cairn.etag";
pub(crate) const XA_DIR: &str = "user.cairn.dir";

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct HeaderRecord {
    #[serde(default)]
    pub headers: ObjectHeaders,
    #[serde(default)]
    pub user: BTreeMap<String, String>,
    #[serde(default)]
    pub storage_class: StorageClass,
}

impl HeaderRecord {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct EtagRecord {
    pub etag: String,
    pub size: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
    #[serde(default)]
    pub checksum: Option<Checksum>,
    #[serde(default)]
    pub parts: Option<u32>,
}

impl EtagRecord {
    pub fn new(etag: String, md: &Metadata) -> Self {
        Self {
            etag,
            size: md.len(),
            mtime_sec: md.mtime(),
            mtime_nsec: md.mtime_nsec(),
            checksum: None,
            parts: None,
        }
    }

    /// Still describes the bytes of a file with this metadata.
    pub fn matches(&self, md: &Metadata) -> bool {
        self.size == md.len() && self.mtime_sec == md.mtime() && self.mtime_nsec == md.mtime_nsec()
    }
}

/// Where the records live.
#[derive(Debug, Clone)]
pub(crate) enum MetaStore {
    Xattr,
    /// `<dir>/<bucket>/<sha256(key)>.json`: one JSON map of attribute name
    /// to value per key. Hashed names keep keys that clash as paths (`a`
    /// and `a/b`) apart, and the folder flat.
    Sidecar(SafePath),
}

/// The thing records are attached to: the open file (xattrs) or the key
/// (sidecar).
pub(crate) struct Target<'a> {
    pub file: &'a File,
    pub bucket: &'a str,
    pub key: &'a str,
}

impl MetaStore {
    pub fn is_xattr(&self) -> bool {
        matches!(self, MetaStore::Xattr)
    }

    fn sidecar_path(dir: &SafePath, bucket: &str, key: &str) -> io::Result<SafePath> {
        let h = Sha256::digest(key.as_bytes());
        Ok(dir
            .join_str(bucket)?
            .join_str(&format!("{}.json", hex::encode(h)))?)
    }

    fn read_sidecar(path: &Path) -> io::Result<BTreeMap<String, String>> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e),
        }
    }

    fn write_sidecar(path: &Path, map: &BTreeMap<String, String>) -> io::Result<()> {
        if map.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!("tmp.{}", uuid::Uuid::new_v4()));
        std::fs::write(&tmp, serde_json::to_vec(map).map_err(io::Error::other)?)?;
        std::fs::rename(&tmp, path)
    }

    pub fn get(&self, t: &Target<'_>, name: &str) -> io::Result<Option<Vec<u8>>> {
        match self {
            MetaStore::Xattr => t.file.get_xattr(name),
            MetaStore::Sidecar(dir) => Ok(Self::read_sidecar(&Self::sidecar_path(
                dir, t.bucket, t.key,
            )?)?
            .remove(name)
            .map(String::into_bytes)),
        }
    }

    /// Sets (or with `None` removes) attributes.
    pub fn set(&self, t: &Target<'_>, attrs: &[(&str, Option<Vec<u8>>)]) -> io::Result<()> {
        match self {
            MetaStore::Xattr => {
                for (name, v) in attrs {
                    match v {
                        Some(v) => t.file.set_xattr(name, v)?,
                        None => match t.file.remove_xattr(name) {
                            Err(e) if e.raw_os_error() != Some(libc::ENODATA) => return Err(e),
                            _ => {}
                        },
                    }
                }
                Ok(())
            }
            MetaStore::Sidecar(dir) => {
                let path = Self::sidecar_path(dir, t.bucket, t.key)?;
                let mut map = Self::read_sidecar(&path)?;
                for (name, v) in attrs {
                    match v {
                        Some(v) => {
                            map.insert((*name).to_owned(), String::from_utf8_lossy(v).into_owned());
                        }
                        None => {
                            map.remove(*name);
                        }
                    }
                }
                Self::write_sidecar(&path, &map)
            }
        }
    }

    /// Drops every record of a key (sidecar only: xattrs go with the file).
    pub fn forget(&self, bucket: &str, key: &str) -> io::Result<()> {
        match self {
            MetaStore::Xattr => Ok(()),
            MetaStore::Sidecar(dir) => {
                Self::write_sidecar(&Self::sidecar_path(dir, bucket, key)?, &BTreeMap::new())
            }
        }
    }

    /// Moves a key's records to another key (sidecar only).
    pub fn rename(&self, bucket: &str, from: &str, to: &str) -> io::Result<()> {
        match self {
            MetaStore::Xattr => Ok(()),
            MetaStore::Sidecar(dir) => {
                let src = Self::sidecar_path(dir, bucket, from)?;
                let map = Self::read_sidecar(&src)?;
                Self::write_sidecar(&Self::sidecar_path(dir, bucket, to)?, &map)?;
                Self::write_sidecar(&src, &BTreeMap::new())
            }
        }
    }

    /// Drops a whole bucket's sidecar records.
    pub fn forget_bucket(&self, bucket: &str) {
        if let MetaStore::Sidecar(dir) = self
            && let Ok(dir) = dir.join_str(bucket)
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    pub fn headers(&self, t: &Target<'_>) -> HeaderRecord {
        match self.get(t, XA_META) {
            Ok(Some(v)) => serde_json::from_slice(&v).unwrap_or_else(|e| {
                tracing::warn!(bucket = t.bucket, key = t.key, error = %e, "unreadable user.cairn.meta ignored");
                HeaderRecord::default()
            }),
            Ok(None) => HeaderRecord::default(),
            Err(e) => {
                tracing::warn!(bucket = t.bucket, key = t.key, error = %e, "cannot read user.cairn.meta");
                HeaderRecord::default()
            }
        }
    }

    /// The ETag record if it still describes the file, else a fresh one
    /// with the MD5 recomputed from the file's bytes (and cached, when the
    /// share lets us write).
    pub fn etag(&self, t: &Target<'_>, md: &Metadata) -> io::Result<EtagRecord> {
        if let Ok(Some(v)) = self.get(t, XA_ETAG)
            && let Ok(rec) = serde_json::from_slice::<EtagRecord>(&v)
            && rec.matches(md)
        {
            return Ok(rec);
        }
        let etag = if md.is_dir() {
            hex::encode(md5::Md5::digest(b""))
        } else {
            md5_of(t.file, md.len())?
        };
        let rec = EtagRecord::new(etag, md);
        // Cache it only if the file did not change while we read it.
        if let Ok(now) = t.file.metadata()
            && rec.matches(&now)
            && let Ok(json) = serde_json::to_vec(&rec)
            && let Err(e) = self.set(t, &[(XA_ETAG, Some(json))])
        {
            tracing::debug!(bucket = t.bucket, key = t.key, error = %e, "ETag not cached");
        }
        Ok(rec)
    }
}

/// MD5 of a file's first `len` bytes, read with pread so the file position
/// is left alone.
pub(crate) fn md5_of(file: &File, len: u64) -> io::Result<String> {
    let mut h = md5::Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    while off < len {
        let want = ((len - off) as usize).min(buf.len());
        let Some(room) = buf.get_mut(..want) else {
            break;
        };
        let n = file.read_at(room, off)?;
        if n == 0 {
            break;
        }
        h.update(room.get(..n).unwrap_or_default());
        off += n as u64;
    }
    Ok(hex::encode(h.finalize()))
}

/// Whether extended attributes work under `dir` (probed with a real file).
pub(crate) fn xattrs_work(dir: &SafePath) -> bool {
    let Ok(probe) = dir.join_str(&format!("xattr-probe.{}", uuid::Uuid::new_v4())) else {
        return false;
    };
    let ok = File::create(&probe)
        .and_then(|f| {
            f.set_xattr("user.cairn.probe", b"1")?;
            f.get_xattr("user.cairn.probe")
        })
        .map(|v| v.as_deref() == Some(b"1".as_slice()));
    let _ = std::fs::remove_file(&probe);
    match ok {
        Ok(ok) => ok,
        Err(e) => {
            tracing::info!(error = %e, "extended attributes unavailable on the share");
            false
        }
    }
}
