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
    /// Size of the parts of a multipart commit past the first
    /// `SMALL_PARTS` (those are at most `SMALL_PART_SIZE`): see `part_len`.
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

/// How many parts of a multipart commit are small (`VfsConfig::part_len`).
pub const SMALL_PARTS: u32 = 1024;
/// The most a small part holds.
pub const SMALL_PART_SIZE: u64 = 8 << 20;

/// The part lengths of a multipart commit (`VfsConfig::part_len`).
#[derive(Debug, Clone, Copy)]
pub struct PartSizes {
    pub part_size: u64,
}

impl PartSizes {
    /// The length of part `number` (1-based).
    pub fn len(&self, number: u32) -> u64 {
        let size = self.part_size.min(MAX_PUT_SIZE);
        if number <= SMALL_PARTS {
            size.min(SMALL_PART_SIZE)
        } else {
            size
        }
    }
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
            (1..=MAX_PART_NUMBER).map(|n| self.part_len(n)).sum()
        }
    }

    /// The length of part `number` (1-based) of a multipart commit: the
    /// first `SMALL_PARTS` (8 GiB) are at most `SMALL_PART_SIZE`, the rest
    /// `part_size`. A later random write into a part rewrites the part
    /// once (the store then keeps it as 4 MiB extents): small parts keep
    /// that first touch cheap for files up to 8 GiB, large ones keep the
    /// largest file at ~570 GiB within S3's 10,000 parts.
    pub fn part_len(&self, number: u32) -> u64 {
        self.parts().len(number)
    }

    pub fn parts(&self) -> PartSizes {
        PartSizes {
            part_size: self.part_size,
        }
    }
}
