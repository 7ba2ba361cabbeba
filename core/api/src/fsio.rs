//! Local-file helpers shared by the parts that spool bytes on local disk
//! (the NAS gateway's temp files, the file fronts' staging files).

use std::fs::File;

/// Written bytes are sent to disk in windows of this size. Without it a
/// body sat dirty in the page cache until the final fsync, which then
/// wrote all of it while the client waited (a 64 MiB NAS PUT: 70-100 ms;
/// the COMMIT at the end of a 1 GiB NFS copy: 0.5 s); started early, the
/// disk works while more bytes arrive and the fsync finds little left.
pub const WRITEBACK_EVERY: u64 = 4 << 20;

/// After a write of `[offset, end)`: starts writeback of the
/// `WRITEBACK_EVERY`-aligned windows that write completed (none when it
/// crossed no window boundary). For files that will be fsynced.
pub fn writeback_completed(file: &File, offset: u64, end: u64) {
    let from = offset / WRITEBACK_EVERY * WRITEBACK_EVERY;
    let to = end / WRITEBACK_EVERY * WRITEBACK_EVERY;
    if to > from {
        start_writeback(file, from, to - from);
    }
}

/// Starts (does not wait for) writeback of `len` bytes at `offset`:
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`. Bytes that will be fsynced
/// later are best sent to disk while more arrive: the disk works in the
/// meantime and the fsync finds little left. A hint only: the fsync still
/// decides durability and reports any error, so a failure here is ignored
/// (e.g. a file system that does not support it).
#[allow(unsafe_code)]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd as _;
    let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range only reads its integer arguments; the
    // descriptor is borrowed from an open `File` for the whole call.
    let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE) };
}
