//! User extended attributes, kept in the object's user metadata the way
//! s3fs-fuse keeps them (`x-amz-meta-xattr`: percent-encoded JSON object of
//! name -> base64 value), so either tool sees the other's. Only the `user.`
//! namespace is stored; directories (prefixes) have none.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::Vfs;
use crate::attr::FileKind;
use crate::error::{VfsError, VfsResult};

/// The user-metadata key.
pub const META_XATTR: &str = "xattr";
/// S3 allows 2 KiB of user metadata per object; the xattrs get at most this.
pub const MAX_ENCODED: usize = 2048;

/// `setxattr` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XattrMode {
    /// Create or replace.
    Any,
    /// XATTR_CREATE: fail with EEXIST if present.
    Create,
    /// XATTR_REPLACE: fail with ENODATA if absent.
    Replace,
}

pub(crate) fn decode(s: &str) -> BTreeMap<String, Vec<u8>> {
    let json = percent_decode_str(s).decode_utf8_lossy();
    let map: BTreeMap<String, String> = serde_json::from_str(&json).unwrap_or_default();
    map.into_iter()
        .filter_map(|(k, v)| B64.decode(v).ok().map(|v| (k, v)))
        .collect()
}

pub(crate) fn encode(map: &BTreeMap<String, Vec<u8>>) -> String {
    let m: BTreeMap<&str, String> = map
        .iter()
        .map(|(k, v)| (k.as_str(), B64.encode(v)))
        .collect();
    let json = serde_json::to_string(&m).unwrap_or_default();
    utf8_percent_encode(&json, NON_ALPHANUMERIC).to_string()
}

fn check_name(name: &str) -> VfsResult<()> {
    if name.len() > 255 {
        return Err(VfsError::NameTooLong);
    }
    if !name.starts_with("user.") || name.len() == "user.".len() {
        return Err(VfsError::NotSupported("only user.* extended attributes"));
    }
    Ok(())
}

impl Vfs {
    async fn file_xattrs(&self, ino: u64) -> VfsResult<BTreeMap<String, Vec<u8>>> {
        self.with_file_state(ino, async |st| {
            Ok(st
                .extra_user
                .get(META_XATTR)
                .map(|s| decode(s))
                .unwrap_or_default())
        })
        .await
    }

    async fn is_dir(&self, ino: u64) -> VfsResult<bool> {
        Ok(self.getattr(ino).await?.kind == FileKind::Dir)
    }

    /// The value of one attribute; ENODATA when it is not set.
    pub async fn getxattr(&self, ino: u64, name: &str) -> VfsResult<Vec<u8>> {
        if !name.starts_with("user.") || self.is_dir(ino).await? {
            return Err(VfsError::NoData);
        }
        self.file_xattrs(ino)
            .await?
            .remove(name)
            .ok_or(VfsError::NoData)
    }

    pub async fn listxattr(&self, ino: u64) -> VfsResult<Vec<String>> {
        if self.is_dir(ino).await? {
            return Ok(Vec::new());
        }
        Ok(self.file_xattrs(ino).await?.into_keys().collect())
    }

    pub async fn setxattr(
        &self,
        ino: u64,
        name: &str,
        value: &[u8],
        mode: XattrMode,
    ) -> VfsResult<()> {
        self.check_writable()?;
        check_name(name)?;
        self.check_unlocked(ino).await?;
        if self.is_dir(ino).await? {
            return Err(VfsError::NotSupported("extended attributes on directories"));
        }
        self.edit_xattrs(ino, |m| {
            match (mode, m.contains_key(name)) {
                (XattrMode::Create, true) => return Err(VfsError::Exists),
                (XattrMode::Replace, false) => return Err(VfsError::NoData),
                _ => {}
            }
            m.insert(name.to_owned(), value.to_vec());
            Ok(())
        })
        .await
    }

    pub async fn removexattr(&self, ino: u64, name: &str) -> VfsResult<()> {
        self.check_writable()?;
        if self.is_dir(ino).await? {
            return Err(VfsError::NoData);
        }
        self.check_unlocked(ino).await?;
        self.edit_xattrs(ino, |m| m.remove(name).map(drop).ok_or(VfsError::NoData))
            .await
    }

    async fn edit_xattrs(
        &self,
        ino: u64,
        edit: impl FnOnce(&mut BTreeMap<String, Vec<u8>>) -> VfsResult<()>,
    ) -> VfsResult<()> {
        self.with_file_state(ino, async |st| {
            let mut map = st
                .extra_user
                .get(META_XATTR)
                .map(|s| decode(s))
                .unwrap_or_default();
            edit(&mut map)?;
            let mut user = st.extra_user.clone();
            if map.is_empty() {
                user.remove(META_XATTR);
            } else {
                let enc = encode(&map);
                if enc.len() > MAX_ENCODED {
                    return Err(VfsError::XattrTooBig { max: MAX_ENCODED });
                }
                user.insert(META_XATTR.into(), enc);
            }
            let a = st.attr.clone();
            self.store_meta(ino, st, a, user).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3fs_format_round_trips() {
        let mut m = BTreeMap::new();
        m.insert("user.a".to_owned(), b"value".to_vec());
        m.insert("user.bin".to_owned(), vec![0, 255, 10]);
        let s = encode(&m);
        assert!(s.starts_with("%7B%22user%2Ea%22%3A%22"), "{s}");
        assert_eq!(decode(&s), m);
        // what s3fs writes for {"user.test":"dmFsdWU="}
        let from_s3fs = "%7B%22user.test%22%3A%22dmFsdWU%3D%22%7D";
        assert_eq!(decode(from_s3fs)["user.test"], b"value");
        assert!(decode("garbage").is_empty());
    }
}
