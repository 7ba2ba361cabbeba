//! The one way a name becomes a file system path.
//!
//! A [`SafePath`] starts at a root that comes from configuration (a drive
//! folder, a NAS share, the spool) and grows only by [`Segment`]s: single
//! file names that are not empty, not `.` or `..`, hold no `/` or NUL and
//! fit in 255 bytes. So a `SafePath` can neither be absolute (beyond its
//! root) nor climb out of it, whatever string a request, a peer or a
//! damaged file on a drive hands in: the unsafe join cannot be written.
//!
//! The crates that touch files (cairn-core, cairn-vfs, cairn-gateway,
//! cairn-nfs) forbid `Path::join` and `PathBuf::push` through their
//! `clippy.toml` (`disallowed-methods`); this module is where the joins
//! happen.

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use crate::names::{BucketName, ObjectKey};

/// Longest file name a drive file system takes, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// A name that cannot be one file name below a folder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a valid file name: {reason}")]
pub struct PathError {
    pub name: String,
    pub reason: &'static str,
}

impl From<PathError> for std::io::Error {
    fn from(e: PathError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}

/// Why `s` is not one file name, if it is not.
// a const fn cannot use get(): every index is below b.len(), checked first
#[allow(clippy::indexing_slicing)]
const fn name_problem(s: &str) -> Option<&'static str> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Some("empty");
    }
    if b.len() > MAX_NAME_LEN {
        return Some("longer than 255 bytes");
    }
    if (b.len() == 1 && b[0] == b'.') || (b.len() == 2 && b[0] == b'.' && b[1] == b'.') {
        return Some("'.' and '..' name no new file");
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' {
            return Some("holds '/'");
        }
        if b[i] == 0 {
            return Some("holds NUL");
        }
        i += 1;
    }
    None
}

/// One validated file name (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment<'a>(&'a str);

impl<'a> Segment<'a> {
    pub fn new(name: &'a str) -> Result<Self, PathError> {
        match name_problem(name) {
            None => Ok(Self(name)),
            Some(reason) => Err(PathError {
                name: name.to_owned(),
                reason,
            }),
        }
    }

    /// A name fixed in the source; use it through [`seg!`](crate::seg),
    /// which checks it when compiling.
    pub const fn fixed(name: &'static str) -> Segment<'static> {
        if name_problem(name).is_some() {
            panic!("not a file name");
        }
        Segment(name)
    }

    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl<'a> From<&'a BucketName> for Segment<'a> {
    /// Bucket names are one file name by their rules (3-63 of `a-z0-9.-`,
    /// no `..`).
    fn from(b: &'a BucketName) -> Self {
        Segment(b.as_str())
    }
}

/// A [`Segment`] of a string literal, checked at compile time:
/// `seg!("cairn.meta")`.
#[macro_export]
macro_rules! seg {
    ($name:expr) => {{
        const S: $crate::path::Segment<'static> = $crate::path::Segment::fixed($name);
        S
    }};
}

/// A validated relative folder path: zero or more segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RelPath(Vec<String>);

impl RelPath {
    /// Splits `rel` at `/` (one trailing `/` allowed) and checks every
    /// segment; `""` is the empty path.
    pub fn parse(rel: &str) -> Result<Self, PathError> {
        let body = rel.strip_suffix('/').unwrap_or(rel);
        if body.is_empty() {
            return if rel.is_empty() {
                Ok(Self::default())
            } else {
                Err(PathError {
                    name: rel.to_owned(),
                    reason: "empty",
                })
            };
        }
        let mut segs = Vec::new();
        for s in body.split('/') {
            segs.push(Segment::new(s)?.as_str().to_owned());
        }
        Ok(Self(segs))
    }

    pub fn segments(&self) -> impl Iterator<Item = Segment<'_>> {
        self.0.iter().map(|s| Segment(s))
    }
}

/// A path below a configured root, grown only by validated names.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SafePath(PathBuf);

impl SafePath {
    /// A root from configuration (never from a request).
    pub fn root(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    /// This path and one more name.
    #[allow(clippy::disallowed_methods)] // the one join
    pub fn join(&self, name: Segment<'_>) -> SafePath {
        Self(self.0.join(name.0))
    }

    /// This path and the name `name`, when it is one (for names read back
    /// from a drive, or made with `format!`).
    pub fn join_str(&self, name: &str) -> Result<SafePath, PathError> {
        Ok(self.join(Segment::new(name)?))
    }

    /// This path and every segment of `rel`.
    pub fn join_rel(&self, rel: &RelPath) -> SafePath {
        rel.segments().fold(self.clone(), |p, s| p.join(s))
    }

    /// The folder or file of `key` below this path: one name per
    /// `/`-separated segment (a `dir/` key's trailing `/` adds none).
    /// Keys are validated (`ObjectKey`), so every segment is a name.
    pub fn join_key(&self, key: &ObjectKey) -> SafePath {
        let body = key.as_str().strip_suffix('/').unwrap_or(key.as_str());
        body.split('/')
            .fold(self.clone(), |p, s| p.join(Segment(s)))
    }

    /// `join_key` for a key held as a plain string (a walk's result, a
    /// heal queue entry): every segment is checked here.
    pub fn join_key_str(&self, key: &str) -> Result<SafePath, PathError> {
        let body = key.strip_suffix('/').unwrap_or(key);
        body.split('/')
            .try_fold(self.clone(), |p, s| Ok(p.join(Segment::new(s)?)))
    }

    /// `name` below this path when it is one name starting with `prefix`
    /// (the names a drive's own files must have, read back from a drive).
    pub fn join_named(&self, prefix: &'static str, name: &str) -> Result<SafePath, PathError> {
        if !name.starts_with(prefix) {
            return Err(PathError {
                name: name.to_owned(),
                reason: "not a name of this kind",
            });
        }
        self.join_str(name)
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }

    pub fn into_path_buf(self) -> PathBuf {
        self.0
    }
}

impl Deref for SafePath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for SafePath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl fmt::Debug for SafePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Component;

    use proptest::prelude::*;

    use super::*;

    /// Every component after the root is a plain name.
    fn below(root: &Path, p: &Path) -> bool {
        p.strip_prefix(root)
            .is_ok_and(|rest| rest.components().all(|c| matches!(c, Component::Normal(_))))
    }

    #[test]
    fn names() {
        for ok in ["a", "...", ".x", "cairn.meta", "a b", "ü"] {
            assert!(Segment::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "/", "/etc", "a\0", &"x".repeat(256)] {
            assert!(Segment::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(seg!("tmp").as_str(), "tmp");
    }

    #[test]
    fn rel_paths() {
        assert_eq!(RelPath::parse("").unwrap(), RelPath::default());
        assert_eq!(RelPath::parse("a/b/").unwrap().segments().count(), 2);
        for bad in ["/", "//", "/a", "a//b", "../x/", "a/./", "a/../../", "a\0/"] {
            assert!(RelPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        /// Whatever strings come in, a path made from them stays below
        /// its root or is refused.
        #[test]
        fn never_leaves_the_root(parts in prop::collection::vec(".{0,12}", 0..6),
                                 rel in "[a-z./\\x00]{0,20}") {
            let root = SafePath::root("/srv/drive/bucket");
            let mut p = root.clone();
            for s in &parts {
                if let Ok(next) = p.join_str(s) {
                    p = next;
                }
            }
            prop_assert!(below(&root, &p), "{p:?}");
            if let Ok(r) = RelPath::parse(&rel) {
                let q = root.join_rel(&r);
                prop_assert!(below(&root, &q), "{q:?}");
            }
            if let Ok(k) = ObjectKey::new(parts.join("/")) {
                let q = root.join_key(&k);
                prop_assert!(below(&root, &q), "{q:?}");
            }
        }
    }
}
