//! File names to object keys.

use cairn_api::{BucketName, ObjectError, ObjectKey, names::MAX_SEGMENT_LEN};

use crate::error::{VfsError, VfsResult};

/// A name one directory entry may have.
pub fn check_name(name: &str) -> VfsResult<()> {
    if name.len() > MAX_SEGMENT_LEN {
        return Err(VfsError::NameTooLong);
    }
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(VfsError::Invalid("not a valid file name"));
    }
    Ok(())
}

pub fn child_path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// The key of a path; a name the store refuses is EINVAL (or
/// ENAMETOOLONG for length).
pub fn key(path: &str) -> VfsResult<ObjectKey> {
    ObjectKey::new(path).map_err(|e| match e {
        ObjectError::KeyTooLong { .. } => VfsError::NameTooLong,
        ObjectError::InvalidObjectName { .. } => VfsError::Invalid("the store reserves this name"),
        e => e.into(),
    })
}

pub fn dir_key(path: &str) -> VfsResult<ObjectKey> {
    key(&format!("{path}/"))
}

pub fn bucket(name: &str) -> VfsResult<BucketName> {
    BucketName::new(name).map_err(|_| VfsError::NotFound)
}

/// The Content-Type a file made through the mount is stored with, guessed
/// from its name's extension as s3fs does (`index.html` is text/html);
/// application/octet-stream when the name says nothing.
pub fn content_type(name: &str) -> String {
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn content_type_from_the_extension() {
        for (name, want) in [
            ("a.html", "text/html"),
            ("b.JSON", "application/json"),
            ("c.png", "image/png"),
            ("archive.tar.gz", "application/gzip"),
            ("d", "application/octet-stream"),
            (".bashrc", "application/octet-stream"),
            ("x.unknown-ext", "application/octet-stream"),
        ] {
            assert_eq!(content_type(name), want, "{name}");
        }
    }
}
