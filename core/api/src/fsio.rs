//! Local-file helpers shared by the parts that spool bytes on local disk
//! (the NAS gateway's temp files, the file fronts' staging files).

use std::fs::File;

/// Starts (does not wait for) writeback of `len` bytes at `offset`:
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`. Bytes that will be fsynced
/// later are best sent to disk while more arrive: the disk works in the
/// meantime and the fsync finds little left. A hint only: the fsync still
/// decides durability and reports any error, so a failure here is ignored
/// (e.g. a file system that does not support it).
#[allow(unsafe_code)]
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd as _;
    let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range only reads its integer arguments; the
    // descriptor is borrowed from an open `File` for the whole call.
    let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE) };
}
