//! The sidecar of a staging file made durable (the NFS front's stable
//! WRITEs and COMMITs): what its holes mean. A sparse staging file holds
//! only the dirty ranges; recovery after a crash needs the base they
//! apply to, the length and the ranges themselves to commit it as a
//! patch rather than as the whole object. Written beside the staging file
//! (`<name>.state`, so the spool's `stage-` cleanup takes it too) with a
//! temporary file, fsync and rename.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{VfsError, VfsResult};
use crate::ranges::Ranges;

/// The sidecar's name: the staging file's plus this.
pub const SIDECAR_SUFFIX: &str = ".state";

/// A sidecar larger than this is not read (merged ranges of any real
/// file are far smaller).
const MAX_SIDECAR: u64 = 256 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedBase {
    pub etag: String,
    pub version_id: Option<String>,
}

/// A staging's state, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedState {
    /// The version the ranges apply to (None: a new file).
    pub base: Option<StagedBase>,
    pub base_size: u64,
    /// Bytes below this that no range covers are the base's; past it, zeros.
    pub base_valid: u64,
    /// The file's length.
    pub len: u64,
    /// The dirty ranges `[start, end)`, ascending, merged: their bytes are
    /// at the same offsets in the staging file.
    pub dirty: Vec<(u64, u64)>,
}

impl StagedState {
    /// The dirty ranges, if the record is consistent.
    pub fn ranges(&self) -> Option<Ranges> {
        if self.base_valid > self.len || self.dirty.last().is_some_and(|r| r.1 > self.len) {
            return None;
        }
        Ranges::from_list(&self.dirty)
    }
}

/// Where the sidecar of the staging file `staging` is.
pub fn path_of(staging: &Path) -> Option<PathBuf> {
    let name = staging.file_name()?.to_str()?;
    Some(staging.with_file_name(format!("{name}{SIDECAR_SUFFIX}")))
}

/// Writes `state` at `path` durably (temporary file, fsync, rename, fsync
/// of the directory).
pub fn write(path: &Path, state: &StagedState) -> VfsResult<()> {
    let body = serde_json::to_vec(state).map_err(|e| VfsError::Io(std::io::Error::other(e)))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or(VfsError::Invalid("a sidecar path without a name"))?;
    let tmp = path.with_file_name(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&body)?;
    f.sync_data()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Reads a sidecar; `Invalid` when it does not parse or is inconsistent.
pub fn read(path: &Path) -> VfsResult<StagedState> {
    use std::io::Read as _;
    let f = std::fs::File::open(path)?;
    let mut body = Vec::new();
    f.take(MAX_SIDECAR + 1).read_to_end(&mut body)?;
    if body.len() as u64 > MAX_SIDECAR {
        return Err(VfsError::Invalid("a staging sidecar is too large"));
    }
    let state: StagedState = serde_json::from_slice(&body)
        .map_err(|_| VfsError::Invalid("a staging sidecar does not parse"))?;
    if state.ranges().is_none() {
        return Err(VfsError::Invalid(
            "a staging sidecar's ranges are inconsistent",
        ));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let staging = cairn_api::SafePath::root(dir.path())
            .join_str("stage-abc")
            .unwrap();
        let p = path_of(&staging).unwrap();
        assert!(p.ends_with("stage-abc.state"));
        let st = StagedState {
            base: Some(StagedBase {
                etag: "e".into(),
                version_id: None,
            }),
            base_size: 100,
            base_valid: 50,
            len: 120,
            dirty: vec![(0, 4), (60, 120)],
        };
        write(&p, &st).unwrap();
        assert_eq!(read(&p).unwrap(), st);
        std::fs::write(&p, b"{not json").unwrap();
        assert!(matches!(read(&p), Err(VfsError::Invalid(_))));
        let bad = StagedState {
            dirty: vec![(0, 4), (2, 8)],
            ..st.clone()
        };
        write(&p, &bad).unwrap();
        assert!(matches!(read(&p), Err(VfsError::Invalid(_))));
        let past = StagedState {
            dirty: vec![(110, 130)],
            ..st
        };
        write(&p, &past).unwrap();
        assert!(matches!(read(&p), Err(VfsError::Invalid(_))));
    }
}
