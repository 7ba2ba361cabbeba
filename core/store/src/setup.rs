//! Start-up checks of a drive list against the formats on the drives: the
//! deployment, the drive count, each drive's position and the parity are
//! the ones the first start recorded, or the start is refused with what
//! differs. Empty drives at known positions join (replacements). A
//! refused start leaves nothing it made behind (`Made`), and
//! `ErasureSet::check_drives` refuses before anything is made at all.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::drive::{DriveError, Format};
use crate::driveio::DriveIo;
use crate::erasure::default_parity;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("no drives given")]
    NoDrives,
    #[error("{count} drives given; an erasure set holds 1 to 256")]
    TooManyDrives { count: usize },
    #[error("parity {parity} is not possible with {drives} drives (0 to {max})")]
    BadParity {
        parity: usize,
        drives: usize,
        max: usize,
    },
    #[error("drive {path}: {source}")]
    Drive {
        path: String,
        #[source]
        source: DriveError,
    },
    #[error(
        "drive {path} is locked by another Cairn server ({holder}); a drive is served by one server at a time"
    )]
    DriveLocked { path: String, holder: String },
    #[error(
        "drive {path} is drive {found} of this deployment but was given in position {given}; keep the drive order"
    )]
    DriveOrder {
        path: String,
        found: usize,
        given: usize,
    },
    #[error("the drives belong to different deployments ({0}); refusing to start")]
    MixedDeployments(String),
    #[error(
        "this deployment has {expected} drives but {given} were given; not part of it: {added} (a set cannot grow: start with the drives it was formatted with)"
    )]
    AddedDrives {
        expected: usize,
        given: usize,
        added: String,
    },
    #[error(
        "this deployment has {expected} drives but {given} were given; missing: the drive in position {missing}, counting from 0 (give every drive, in order; an empty folder replaces a lost one)"
    )]
    MissingDrives {
        expected: usize,
        given: usize,
        missing: String,
    },
    #[error(
        "drive {path} belongs to another deployment ({deployment}); refusing to start (give this deployment's drive, or an empty folder to replace it)"
    )]
    ForeignDrive { path: String, deployment: String },
    #[error(
        "parity {given} was asked, but this deployment was formatted with parity {kept}; parity is kept from the first start (give {kept}, or none)"
    )]
    ParityChanged { given: usize, kept: usize },
    #[error(transparent)]
    Sizing(#[from] crate::sets::SizingError),
    #[error(
        "--set-drive-count {given} was asked, but this deployment was formatted with sets of {kept} drives; set sizes are kept from the first start"
    )]
    SetSizeChanged { given: usize, kept: usize },
    #[error(
        "the drives of deployment {deployment} disagree about its erasure sets (drive id {drive}); refusing to start"
    )]
    SetsDisagree { deployment: String, drive: String },
    #[error(
        "drive {path} (id {id}) belongs to this deployment but to none of its erasure sets; refusing to start"
    )]
    UnknownDrive { path: String, id: String },
    #[error("drives {other} and {path} both claim to be drive {id}; give each drive once")]
    DuplicateDrive {
        path: String,
        other: String,
        id: String,
    },
    #[error(
        "this deployment has {expected} drives but {given} were given; missing: {missing} (give every drive, in any order; an empty folder replaces a lost one)"
    )]
    SetDrivesMissing {
        expected: usize,
        given: usize,
        missing: String,
    },
}

/// What the drives say: the deployment (`None`: a new one) and its parity.
pub(crate) struct Checked {
    pub existing: Option<String>,
    pub parity: usize,
}

/// Checks the formats read from the drives given (`formats[i]` of the
/// drive given in position `i`, named `names[i]`) and the parity asked.
pub(crate) fn check(
    names: &[String],
    formats: &[Option<Format>],
    parity: Option<usize>,
) -> Result<Checked, SetupError> {
    let n = formats.len();
    let Some(id) = majority_deployment(formats)? else {
        // First start: every drive is new.
        let parity = parity.unwrap_or_else(|| default_parity(n));
        check_parity(parity, n)?;
        return Ok(Checked {
            existing: None,
            parity,
        });
    };
    let ours: Vec<(usize, &Format)> = formats
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.as_ref().filter(|f| f.deployment_id == id).map(|f| (i, f)))
        .collect();
    let expected = most_common(ours.iter().map(|(_, f)| f.drive_count)).unwrap_or(n);
    let name = |i: usize| names.get(i).cloned().unwrap_or_default();
    if n > expected {
        let added: Vec<String> = (0..n)
            .filter(|i| !ours.iter().any(|(j, f)| j == i && f.drive_index < expected))
            .map(name)
            .collect();
        return Err(SetupError::AddedDrives {
            expected,
            given: n,
            added: added.join(", "),
        });
    }
    if n < expected {
        let missing: Vec<String> = (0..expected)
            .filter(|pos| !ours.iter().any(|(_, f)| f.drive_index == *pos))
            .map(|pos| pos.to_string())
            .collect();
        return Err(SetupError::MissingDrives {
            expected,
            given: n,
            missing: missing.join(", "),
        });
    }
    for (i, f) in formats.iter().enumerate() {
        match f {
            Some(f) if f.deployment_id != id => {
                return Err(SetupError::ForeignDrive {
                    path: name(i),
                    deployment: f.deployment_id.clone(),
                });
            }
            Some(f) if f.drive_index != i => {
                return Err(SetupError::DriveOrder {
                    path: name(i),
                    found: f.drive_index,
                    given: i,
                });
            }
            _ => {}
        }
    }
    let kept = most_common(ours.iter().map(|(_, f)| f.parity)).unwrap_or_else(|| default_parity(n));
    if let Some(given) = parity
        && given != kept
    {
        return Err(SetupError::ParityChanged { given, kept });
    }
    check_parity(kept, n)?;
    Ok(Checked {
        existing: Some(id),
        parity: kept,
    })
}

/// The deployment most formatted drives belong to (`None`: no drive is
/// formatted); a tie is refused.
pub(crate) fn majority_deployment(
    formats: &[Option<Format>],
) -> Result<Option<String>, SetupError> {
    let mut ids: Vec<(&str, usize)> = Vec::new();
    for f in formats.iter().flatten() {
        match ids.iter_mut().find(|(id, _)| *id == f.deployment_id) {
            Some(e) => e.1 += 1,
            None => ids.push((&f.deployment_id, 1)),
        }
    }
    ids.sort_by_key(|e| std::cmp::Reverse(e.1));
    if let [first, second, ..] = ids.as_slice()
        && first.1 == second.1
    {
        let all: Vec<&str> = ids.iter().map(|(i, _)| *i).collect();
        return Err(SetupError::MixedDeployments(all.join(", ")));
    }
    Ok(ids.first().map(|(id, _)| (*id).to_owned()))
}

fn check_parity(parity: usize, drives: usize) -> Result<(), SetupError> {
    if parity > drives / 2 {
        return Err(SetupError::BadParity {
            parity,
            drives,
            max: drives / 2,
        });
    }
    Ok(())
}

/// The value most items have (the first such on a tie).
fn most_common(items: impl Iterator<Item = usize>) -> Option<usize> {
    let mut counts: Vec<(usize, usize)> = Vec::new();
    for v in items {
        match counts.iter_mut().find(|(x, _)| *x == v) {
            Some(e) => e.1 += 1,
            None => counts.push((v, 1)),
        }
    }
    counts
        .iter()
        .fold(None, |best: Option<(usize, usize)>, &(v, c)| match best {
            Some((_, bc)) if bc >= c => best,
            _ => Some((v, c)),
        })
        .map(|(v, _)| v)
}

/// What a start made on the drives (folders, lock files), in the order
/// made, so that a refused start removes exactly that again.
#[derive(Default)]
pub(crate) struct Made(Vec<(Arc<dyn DriveIo>, PathBuf, bool)>);

impl Made {
    /// Makes a drive's root folder, noting each folder that did not exist.
    pub fn make_root(&mut self, io: &Arc<dyn DriveIo>, root: &Path) -> std::io::Result<()> {
        let made = io.make_root(root)?;
        self.0
            .extend(made.into_iter().map(|d| (io.clone(), d, true)));
        Ok(())
    }

    /// Notes `path` as made if it exists now but did not before.
    pub fn note(&mut self, io: &Arc<dyn DriveIo>, path: &Path, existed: bool, is_dir: bool) {
        if !existed && io.exists(path) {
            self.0.push((io.clone(), path.to_path_buf(), is_dir));
        }
    }

    /// Removes what was made, newest first. A folder is removed only while
    /// empty: whatever else was put in it stays, and so does it.
    pub fn undo(self) {
        for (io, path, is_dir) in self.0.into_iter().rev() {
            let r = if is_dir {
                io.remove_dir(&path)
            } else {
                io.remove_file(&path)
            };
            match r {
                Ok(()) => {
                    tracing::debug!(path = %path.display(), "refused start: removed what it made")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "refused start: could not remove what it made")
                }
            }
        }
    }
}
