//! The one mapping from store errors (and the view's own failures) to errno.

use cairn_api::{ObjectError, QuorumOp};

#[derive(Debug, thiserror::Error)]
pub enum VfsError {
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error("no such file or directory")]
    NotFound,
    #[error("file exists")]
    Exists,
    #[error("directory not empty")]
    NotEmpty,
    #[error("is a directory")]
    IsDir,
    #[error("not a directory")]
    NotDir,
    #[error("file name too long")]
    NameTooLong,
    #[error("read-only file system")]
    ReadOnly,
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    #[error("operation not permitted: {0}")]
    NotPermitted(&'static str),
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    #[error("stale or unknown file handle")]
    BadHandle,
    #[error("staging space exhausted ({limit} bytes)")]
    NoSpace { limit: u64 },
    #[error("file of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: u64, max: u64 },
    #[error("no such extended attribute")]
    NoData,
    #[error("extended attributes exceed {max} bytes (the object's metadata limit)")]
    XattrTooBig { max: usize },
    #[error("staging I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A write behind to the file's staging file failed: its staged
    /// changes are incomplete and can never be committed.
    #[error("a write to the staging file failed (errno {errno}); the staged changes are lost")]
    StagingLost { errno: i32 },
}

pub type VfsResult<T> = Result<T, VfsError>;

impl VfsError {
    /// The errno a POSIX caller sees. Quorum loss is EIO (a device error
    /// the caller may retry), not ENOSPC: the space is there, the drives
    /// are not; ENOSPC is kept for a full staging area.
    pub fn errno(&self) -> i32 {
        match self {
            VfsError::Object(e) => object_errno(e),
            VfsError::NotFound => libc::ENOENT,
            VfsError::Exists => libc::EEXIST,
            VfsError::NotEmpty => libc::ENOTEMPTY,
            VfsError::IsDir => libc::EISDIR,
            VfsError::NotDir => libc::ENOTDIR,
            VfsError::NameTooLong => libc::ENAMETOOLONG,
            VfsError::ReadOnly => libc::EROFS,
            VfsError::Invalid(_) => libc::EINVAL,
            VfsError::NotPermitted(_) => libc::EPERM,
            VfsError::NotSupported(_) => libc::ENOTSUP,
            VfsError::BadHandle => libc::EBADF,
            VfsError::NoSpace { .. } => libc::ENOSPC,
            VfsError::TooLarge { .. } => libc::EFBIG,
            VfsError::NoData => libc::ENODATA,
            VfsError::XattrTooBig { .. } => libc::E2BIG,
            VfsError::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
            VfsError::StagingLost { errno } => *errno,
        }
    }
}

fn object_errno(e: &ObjectError) -> i32 {
    match e {
        ObjectError::NoSuchKey { .. } | ObjectError::NoSuchBucket { .. } => libc::ENOENT,
        ObjectError::BucketAlreadyExists { .. } | ObjectError::BucketNameTaken { .. } => {
            libc::EEXIST
        }
        ObjectError::BucketNotEmpty { .. } => libc::ENOTEMPTY,
        ObjectError::KeyTooLong { .. } => libc::ENAMETOOLONG,
        ObjectError::InvalidObjectName { .. }
        | ObjectError::InvalidBucketName { .. }
        | ObjectError::InvalidRange { .. }
        | ObjectError::InvalidArgument { .. }
        | ObjectError::InvalidStorageClass { .. } => libc::EINVAL,
        ObjectError::EntityTooLarge { .. } => libc::EFBIG,
        ObjectError::NotImplemented { .. } => libc::ENOTSUP,
        ObjectError::PreconditionFailed | ObjectError::NotModified { .. } => libc::ESTALE,
        ObjectError::Unavailable {
            op: QuorumOp::Read | QuorumOp::Write,
            ..
        }
        | ObjectError::BackendUnavailable { .. } => libc::EIO,
        // the drives are full: the one ENOSPC from the store
        ObjectError::StorageFull { .. } => libc::ENOSPC,
        // a locked version (retention, legal hold): nobody may change it
        ObjectError::ObjectLocked { .. } => libc::EPERM,
        // a WORM bucket: what exists there is read-only for good
        ObjectError::Worm { .. } => libc::EROFS,
        // an SSE-C object: a mount has no customer key to present; a path
        // the backend may not be reached by
        ObjectError::SseCustomerKeyMissing { .. }
        | ObjectError::SseCustomerKeyMismatch { .. }
        | ObjectError::AccessDenied { .. } => libc::EACCES,
        // Body and digest failures, multipart bookkeeping, internal
        // errors, and any variant added later: an I/O error to POSIX.
        _ => libc::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping() {
        let nk = VfsError::from(ObjectError::no_such_key(&"b", &"k"));
        assert_eq!(nk.errno(), libc::ENOENT);
        let q = VfsError::from(ObjectError::Unavailable {
            op: QuorumOp::Write,
            needed: 3,
            got: 1,
        });
        assert_eq!(q.errno(), libc::EIO);
        assert_eq!(
            VfsError::from(ObjectError::KeyTooLong { len: 2000 }).errno(),
            libc::ENAMETOOLONG
        );
        assert_eq!(VfsError::NotEmpty.errno(), libc::ENOTEMPTY);
        assert_eq!(VfsError::ReadOnly.errno(), libc::EROFS);
        assert_eq!(VfsError::NoSpace { limit: 1 }.errno(), libc::ENOSPC);
    }
}
