//! nfsstat3 from the view's errno: cairn-vfs's error.rs is the one mapping
//! of store errors, this only names each errno's NFS status.

use cairn_vfs::VfsError;
use nfs3_server::nfs3_types::nfs3::nfsstat3;

/// The status for an errno.
pub fn status_of_errno(errno: i32) -> nfsstat3 {
    match errno {
        libc::EPERM => nfsstat3::NFS3ERR_PERM,
        libc::ENOENT => nfsstat3::NFS3ERR_NOENT,
        libc::EACCES => nfsstat3::NFS3ERR_ACCES,
        libc::EEXIST => nfsstat3::NFS3ERR_EXIST,
        libc::EXDEV => nfsstat3::NFS3ERR_XDEV,
        libc::ENOTDIR => nfsstat3::NFS3ERR_NOTDIR,
        libc::EISDIR => nfsstat3::NFS3ERR_ISDIR,
        libc::EINVAL => nfsstat3::NFS3ERR_INVAL,
        libc::EFBIG => nfsstat3::NFS3ERR_FBIG,
        libc::ENOSPC => nfsstat3::NFS3ERR_NOSPC,
        libc::EROFS => nfsstat3::NFS3ERR_ROFS,
        libc::ENAMETOOLONG => nfsstat3::NFS3ERR_NAMETOOLONG,
        libc::ENOTEMPTY => nfsstat3::NFS3ERR_NOTEMPTY,
        libc::ESTALE => nfsstat3::NFS3ERR_STALE,
        libc::EBADF => nfsstat3::NFS3ERR_BADHANDLE,
        libc::ENOTSUP => nfsstat3::NFS3ERR_NOTSUPP,
        _ => nfsstat3::NFS3ERR_IO,
    }
}

/// The status for a view error; I/O errors are logged (a client sees
/// only the code).
pub fn status(e: &VfsError) -> nfsstat3 {
    // a locked object is an access refusal to NFS clients (EPERM would
    // read as "not the owner")
    let s = match e {
        VfsError::Object(cairn_api::ObjectError::ObjectLocked { .. }) => nfsstat3::NFS3ERR_ACCES,
        _ => status_of_errno(e.errno()),
    };
    if matches!(s, nfsstat3::NFS3ERR_IO) {
        tracing::warn!(error = %e, "NFS request failed");
    } else {
        tracing::debug!(error = %e, "NFS request refused");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_api::{ObjectError, QuorumOp};

    #[test]
    fn statuses() {
        let s = |e: VfsError| status(&e) as u32;
        assert_eq!(s(VfsError::NotFound), nfsstat3::NFS3ERR_NOENT as u32);
        assert_eq!(s(VfsError::ReadOnly), nfsstat3::NFS3ERR_ROFS as u32);
        assert_eq!(s(VfsError::NotEmpty), nfsstat3::NFS3ERR_NOTEMPTY as u32);
        assert_eq!(
            s(VfsError::NameTooLong),
            nfsstat3::NFS3ERR_NAMETOOLONG as u32
        );
        assert_eq!(
            s(VfsError::from(ObjectError::Unavailable {
                op: QuorumOp::Write,
                needed: 3,
                got: 1
            })),
            nfsstat3::NFS3ERR_IO as u32
        );
        assert_eq!(
            s(VfsError::from(ObjectError::no_such_key(&"b", &"k"))),
            nfsstat3::NFS3ERR_NOENT as u32
        );
    }
}
