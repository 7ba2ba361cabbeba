//! How file-system errors become `ObjectError`s: one place, so every
//! operation answers a full disk, a vanished share or a path clash alike.

use std::io;

use cairn_api::ObjectError;

/// The share (or the disk behind it) is gone or failing: a 503-class
/// error, never a 404 or a partial object.
pub(crate) fn share_unavailable() -> ObjectError {
    ObjectError::BackendUnavailable {
        backend: super::BACKEND,
        reason: "its share is missing, unmounted or failing",
    }
}

/// Maps an I/O error that is not a plain "not found" for the caller to
/// interpret. `what` says what was being done, for the log.
pub(crate) fn io_error(e: io::Error, what: &str) -> ObjectError {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => ObjectError::StorageFull { needed: 1, got: 0 },
        // An unmounted or failing NFS/SMB share, a dead disk.
        Some(libc::EIO)
        | Some(libc::ENOTCONN)
        | Some(libc::ESTALE)
        | Some(libc::ENODEV)
        | Some(libc::EHOSTDOWN)
        | Some(libc::ETIMEDOUT) => {
            tracing::error!(error = %e, "{what}: the share is unavailable");
            share_unavailable()
        }
        _ => ObjectError::internal(format!("{what}: {e}")),
    }
}

/// True for errors meaning "a path component is not what the key needs":
/// a file where a folder should be, or the other way round.
pub(crate) fn is_path_clash(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOTDIR) | Some(libc::EISDIR) | Some(libc::EEXIST) | Some(libc::ENOTEMPTY)
    )
}

/// True when the path (or one of its parents) does not exist as needed.
pub(crate) fn is_absent(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}
