//! cairn-vfs: the POSIX view over any `ObjectLayer`, shared by the FUSE
//! and NFS fronts. Buckets are top directories (or one bucket is the
//! root), `/` in keys makes directories (plus `dir/` marker objects),
//! attributes live in s3fs-compatible user metadata, and writes stage in a
//! sparse local spool file (only the dirty ranges) until flush/fsync/release
//! commits them: a new file as one object, a stored one as a patch of the
//! version it was opened at (only the changed ranges are sent).
//! No front-specific type (fuser, nfs3_server, libc structs) appears here;
//! errors carry an errno (`VfsError::errno`). SEMANTICS.md says what holds.
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

pub mod attr;
mod cache;
pub mod changes;
mod commit;
mod config;
mod data;
mod dir;
pub mod error;
mod file;
pub mod inode;
mod known;
mod names;
mod ops;
pub mod ranges;
mod reader;
mod rename;
mod seq;
pub mod sidecar;
mod special;
mod staged;
pub mod staging;
mod times;
pub mod xattr;

#[cfg(test)]
mod tests;

pub use attr::{Attr, AttrDefaults, FileKind, dev_parts, make_dev};
pub use changes::Invalidate;
pub use config::VfsConfig;
pub use data::ReadData;
pub use dir::DirEntry;
pub use error::{VfsError, VfsResult};
pub use file::OpenMode;
pub use inode::ROOT_INO;
pub use ops::{SetAttr, StatFs};
pub use sidecar::StagedState;
pub use special::{NewOwner, S_ISGID};
pub use staged::StagedTarget;
pub use staging::STAGE_PREFIX;
pub use xattr::XattrMode;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use cairn_api::ObjectLayer;
use parking_lot::Mutex;

use crate::cache::AttrCache;
use crate::file::{Handle, OpenFile};
use crate::inode::InodeTable;
use crate::staging::SpoolBudget;

/// The view. One per mount; every method is safe to call concurrently.
pub struct Vfs {
    layer: Arc<dyn ObjectLayer>,
    cfg: VfsConfig,
    inodes: InodeTable,
    cache: AttrCache,
    /// Per-inode open state (staging, current size), shared by handles.
    open: Mutex<HashMap<u64, Arc<OpenFile>>>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    dirs: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<dir::DirStream>>>>,
    next_fh: AtomicU64,
    budget: Arc<SpoolBudget>,
    started: SystemTime,
    /// Directories whose names are known (negative lookups without the store).
    known: known::Known,
    /// Changes this view made itself, not yet seen as events (changes.rs).
    own: changes::OwnChanges,
    /// Read-ahead streams of open files (reader.rs).
    streams: Arc<reader::ReadStreams>,
    /// Directory times not yet in their markers (times.rs).
    dir_times: times::DirTimes,
}

impl Vfs {
    /// Makes the view; creates the spool directory if needed.
    pub fn new(layer: Arc<dyn ObjectLayer>, cfg: VfsConfig) -> VfsResult<Self> {
        std::fs::create_dir_all(&cfg.spool_dir)?;
        let known = known::Known::new(layer.subscribe_changes());
        let streams = reader::ReadStreams::new(layer.subscribe_changes(), reader::MAX_STREAMS);
        Ok(Self {
            layer,
            inodes: InodeTable::new(cfg.bucket.clone()),
            cache: AttrCache::new(cfg.attr_ttl),
            open: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            budget: SpoolBudget::new(cfg.spool_limit),
            started: SystemTime::now(),
            known,
            own: changes::OwnChanges::default(),
            streams,
            dir_times: Default::default(),
            cfg,
        })
    }

    pub fn config(&self) -> &VfsConfig {
        &self.cfg
    }

    /// Bytes currently held in staging files.
    pub fn staged_bytes(&self) -> u64 {
        self.budget.used()
    }

    fn new_fh(&self) -> u64 {
        self.next_fh
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// Reads a small body (symlink target) with a size cap.
pub(crate) async fn collect_small(mut s: cairn_api::ByteStream, max: usize) -> VfsResult<Vec<u8>> {
    use futures::StreamExt as _;
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
        if out.len() > max {
            return Err(VfsError::TooLarge {
                size: out.len() as u64,
                max: max as u64,
            });
        }
    }
    Ok(out)
}
