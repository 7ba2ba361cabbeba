//! Validated bucket names and object keys.
//!
//! Validation lives here, at the boundary, so every front and every layer
//! refuses the same names with the same error.

use std::fmt;

use crate::error::ObjectError;
use crate::path::RelPath;

/// A bucket name that follows the S3 naming rules (3-63 chars, lowercase
/// letters, digits, `-` and `.`, starting and ending with a letter or digit,
/// not an IP address, no `..`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketName(String);

impl BucketName {
    pub fn new(name: impl Into<String>) -> Result<Self, ObjectError> {
        let name = name.into();
        if let Some(reason) = bucket_name_problem(&name) {
            return Err(ObjectError::InvalidBucketName { name, reason });
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn bucket_name_problem(name: &str) -> Option<&'static str> {
    let b = name.as_bytes();
    if b.len() < 3 || b.len() > 63 {
        return Some("bucket names must be 3 to 63 characters long");
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
    {
        return Some("bucket names may hold only lowercase letters, digits, '-' and '.'");
    }
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.first().copied().is_some_and(edge) || !b.last().copied().is_some_and(edge) {
        return Some("bucket names must start and end with a letter or digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Some("bucket names must not hold '..', '.-' or '-.'");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some("bucket names must not look like an IP address");
    }
    if name.starts_with("xn--") || name.ends_with("-s3alias") {
        return Some("bucket names must not use a reserved prefix or suffix");
    }
    None
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for BucketName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Longest key S3 accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Longest single `/`-separated key segment: one file name on a drive.
pub const MAX_SEGMENT_LEN: usize = 255;

/// Names a drive layout reserves inside an object's folder; a key segment
/// may not use them or it could collide with an object's own files.
pub const RESERVED_SEGMENTS: &[&str] = &["cairn.meta", "cairn.dir"];
/// Data dirs and history files in an object's folder.
pub const RESERVED_SEGMENT_PREFIXES: &[&str] = &["cairn.data.", "cairn.hist."];

/// An object key that is safe to map onto a drive folder: UTF-8, 1..=1024
/// bytes, no NUL, no `.`/`..` or empty segments (a trailing `/` is allowed:
/// it names a directory marker object).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn new(key: impl Into<String>) -> Result<Self, ObjectError> {
        let key = key.into();
        if key.len() > MAX_KEY_LEN {
            return Err(ObjectError::KeyTooLong { len: key.len() });
        }
        if let Some(reason) = key_problem(&key) {
            return Err(ObjectError::InvalidObjectName { key, reason });
        }
        Ok(Self(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `dir/` style keys (directory markers).
    pub fn is_dir_marker(&self) -> bool {
        self.0.ends_with('/')
    }
}

/// Why `seg` cannot be a `/`-separated segment of a key (before a
/// trailing `/`), if it cannot.
fn segment_problem(seg: &str) -> Option<&'static str> {
    if seg.is_empty() {
        return Some("object keys must not contain empty segments ('//' or a leading '/')");
    }
    if seg == "." || seg == ".." {
        return Some("object keys must not contain '.' or '..' segments");
    }
    if seg.len() > MAX_SEGMENT_LEN {
        return Some("each '/'-separated part of a key must be at most 255 bytes");
    }
    if seg.contains('\0') {
        return Some("object keys must not contain NUL");
    }
    if RESERVED_SEGMENTS.contains(&seg)
        || RESERVED_SEGMENT_PREFIXES.iter().any(|p| seg.starts_with(p))
    {
        return Some("object keys must not use names reserved by the drive format");
    }
    None
}

/// The folder a listing prefix fully names (its part up to the last `/`),
/// as a path a walk may start in: `None` when the prefix can match no key
/// (a segment no key can have: empty, `.`, `..`, a reserved name, NUL; or
/// longer than a key), which S3 answers with an empty listing.
pub fn prefix_folder(prefix: &str) -> Option<RelPath> {
    if prefix.len() > MAX_KEY_LEN || prefix.contains('\0') {
        return None;
    }
    let folder = match prefix.rfind('/') {
        Some(i) => &prefix[..i],
        None => return Some(RelPath::default()),
    };
    if folder.split('/').any(|s| segment_problem(s).is_some()) {
        return None;
    }
    RelPath::parse(folder).ok()
}

fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("object keys must not be empty");
    }
    if key.contains('\0') {
        return Some("object keys must not contain NUL");
    }
    let body = key.strip_suffix('/').unwrap_or(key);
    if body.is_empty() {
        return Some("object keys must not be just '/'");
    }
    body.split('/').find_map(segment_problem)
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ObjectKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket", "a.b.c", "0bucket9"] {
            assert!(BucketName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "Abc",
            "-abc",
            "abc-",
            "a..b",
            "a_b",
            "192.168.1.1",
            ".abc",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(
                    BucketName::new(bad),
                    Err(ObjectError::InvalidBucketName { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn prefixes_that_match_no_key() {
        for ok in [
            "",
            "a",
            "a/",
            "a/b",
            "..",
            ".",
            "...",
            "a/..",
            "a/.x/",
            "cairn.meta",
        ] {
            assert!(prefix_folder(ok).is_some(), "{ok:?}");
        }
        assert_eq!(
            prefix_folder("a/b/c").unwrap(),
            RelPath::parse("a/b").unwrap()
        );
        for bad in [
            "/",
            "//",
            "/etc/",
            "../",
            "../secret/",
            "a/../",
            "./",
            "a//b",
            "a/./b",
            "x/cairn.meta/",
            "x/cairn.data.1/p",
            "a\0",
            "\0/",
        ] {
            assert!(prefix_folder(bad).is_none(), "{bad:?}");
        }
        assert!(prefix_folder(&"a/".repeat(513)).is_none());
    }

    #[test]
    fn object_keys() {
        for ok in ["a", "a/b/c.txt", "dir/", "a b/ü", "...", "a/.x"] {
            assert!(ObjectKey::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a//b",
            "a/../b",
            "..",
            "./a",
            "a/.",
            "a\0b",
            "/",
            "x/cairn.meta",
        ] {
            assert!(
                matches!(
                    ObjectKey::new(bad),
                    Err(ObjectError::InvalidObjectName { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            ObjectKey::new("k".repeat(1025)),
            Err(ObjectError::KeyTooLong { .. })
        ));
    }
}
