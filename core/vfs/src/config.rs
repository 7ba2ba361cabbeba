//! Settings of one view.

use std::path::PathBuf;
use std::time::Duration;

use cairn_api::{MAX_PART_NUMBER, MAX_PUT_SIZE};

use crate::attr::AttrDefaults;

#[derive(Debug, Clone)]
pub struct VfsConfig {
    /// Mount one bucket as the root instead of all buckets as top dirs.
    pub bucket: Option<String>,
    pub read_only: bool,
    /// Owner and modes of objects that carry no attributes.
    pub defaults: AttrDefaults,
    /// How long attributes are trusted without asking the store. Short:
    /// other fronts write the same objects.
    pub attr_ttl: Duration,
    /// Where staging files live.
    pub spool_dir: PathBuf,
    /// Bytes all staging files may hold together (ENOSPC beyond).
    pub spool_limit: u64,
    /// Files larger than this are committed as a multipart upload.
    pub multipart_threshold: u64,
    pub part_size: u64,
    /// A file written from empty by appends only streams into a multipart
    /// upload once it holds this many bytes (smaller files are one PUT at
    /// close).
    pub stream_threshold: u64,
    /// Keys asked for per listing page.
    pub list_page: usize,
    /// Commit files at close with write-back (`PutOptions::write_back`):
    /// visible over S3 at once, durable within about a second and before
    /// fsync/fsyncdir (`Vfs::sync`) return, as a local file system.
    /// Off by default (the NFS front answers WRITEs durable).
    pub write_back: bool,
    /// Staged bytes will be made durable in their staging file (the NFS
    /// front's COMMIT): start writing them to disk as they arrive. Off for
    /// the FUSE mount, whose staging files are read once at close and
    /// removed (most never need to reach the disk).
    pub staging_writeback: bool,
}

impl VfsConfig {
    /// The spool, as the root of the paths made in it.
    pub fn spool(&self) -> cairn_api::SafePath {
        cairn_api::SafePath::root(&self.spool_dir)
    }

    /// Where staged bytes that could not be committed are kept.
    pub fn lost_and_found(&self) -> cairn_api::SafePath {
        self.spool().join(cairn_api::seg!("lost+found"))
    }

    pub fn new(spool_dir: impl Into<PathBuf>) -> Self {
        Self {
            bucket: None,
            read_only: false,
            defaults: AttrDefaults::default(),
            attr_ttl: Duration::from_secs(1),
            spool_dir: spool_dir.into(),
            spool_limit: 64 << 30,
            multipart_threshold: 256 << 20,
            part_size: 64 << 20,
            stream_threshold: 8 << 20,
            list_page: 1000,
            write_back: false,
            staging_writeback: false,
        }
    }

    /// Largest file the view can commit.
    pub fn max_file_size(&self) -> u64 {
        if self.multipart_threshold >= MAX_PUT_SIZE {
            MAX_PUT_SIZE
        } else {
            self.part_size
                .min(MAX_PUT_SIZE)
                .saturating_mul(u64::from(MAX_PART_NUMBER))
        }
    }
}
