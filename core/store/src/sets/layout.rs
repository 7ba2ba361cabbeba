//! How the drives given at start-up form erasure sets: read every
//! drive's `format.json`, find each formatted drive's place in the
//! deployment's sets by its drive id (so the order drives are given in
//! does not matter), give empty drives the places nobody holds
//! (replacements), and refuse, naming the drive, what does not belong.
//! A first start groups the drives into sets of equal size.

use std::path::PathBuf;

use crate::drive::{DriveError, FORMAT_NAME, Format};
use crate::setup::{SetupError, majority_deployment};

use super::placement::{SIPMOD, set_size};

/// Where one erasure set sits in its deployment: its index and every
/// set's drive ids. Empty `sets`: a deployment formatted before sets
/// (one set, drives known by position).
#[derive(Debug, Clone, Default)]
pub struct SetLayout {
    pub set_index: usize,
    pub sets: Vec<Vec<String>>,
}

impl SetLayout {
    /// The format of the drive in position `index` of this set: the id
    /// its place has in the layout (a new one in a layout without sets).
    pub(crate) fn format(
        &self,
        deployment: &str,
        drive_count: usize,
        index: usize,
        parity: usize,
    ) -> Format {
        let drive_id = self
            .sets
            .get(self.set_index)
            .and_then(|s| s.get(index))
            .cloned()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        Format {
            format: FORMAT_NAME.into(),
            deployment_id: deployment.into(),
            drive_count,
            drive_index: index,
            drive_id,
            parity,
            set_index: self.set_index,
            sets: self.sets.clone(),
            distribution: if self.sets.is_empty() {
                String::new()
            } else {
                SIPMOD.into()
            },
        }
    }
}

/// How a deployment's drives are to be opened.
pub(crate) struct Plan {
    /// The deployment's id (a new one on a first start).
    pub deployment: String,
    /// Every set's drive ids (empty: a deployment from before sets).
    pub sets: Vec<Vec<String>>,
    /// The paths of each set in drive order.
    pub paths: Vec<Vec<PathBuf>>,
}

impl Plan {
    pub fn layout(&self, set_index: usize) -> SetLayout {
        SetLayout {
            set_index,
            sets: self.sets.clone(),
        }
    }
}

/// Reads the drives' formats (nothing is made or written) and plans the
/// sets; `set_drive_count` sizes the sets of a new deployment.
pub(crate) fn plan(
    paths: &[PathBuf],
    set_drive_count: Option<usize>,
    io: &crate::driveio::IoFor,
) -> Result<Plan, SetupError> {
    if paths.is_empty() {
        return Err(SetupError::NoDrives);
    }
    let name = |i: usize| drive_name(paths, i);
    let mut formats = Vec::with_capacity(paths.len());
    for (i, p) in paths.iter().enumerate() {
        let f = match io.drive(i, p.clone()).read_format() {
            Err(DriveError::Io(e)) if e.kind() == std::io::ErrorKind::NotADirectory => None,
            r => r.map_err(|source| SetupError::Drive {
                path: name(i),
                source,
            })?,
        };
        formats.push(f);
    }
    let Some(deployment) = majority_deployment(&formats)? else {
        // first start: every drive is new
        let size = set_size(paths.len(), set_drive_count)?;
        let ids: Vec<String> = paths
            .iter()
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        return Ok(Plan {
            deployment: uuid::Uuid::new_v4().to_string(),
            sets: ids.chunks(size).map(<[String]>::to_vec).collect(),
            paths: paths.chunks(size).map(<[PathBuf]>::to_vec).collect(),
        });
    };
    let ours = || {
        formats
            .iter()
            .flatten()
            .filter(|f| f.deployment_id == deployment)
    };
    let Some(reference) = ours().find(|f| !f.sets.is_empty()) else {
        // formatted before sets: one set, checked by position when opened
        if let Some(asked) = set_drive_count
            && asked != paths.len()
        {
            return Err(SetupError::SetSizeChanged {
                given: asked,
                kept: paths.len(),
            });
        }
        return Ok(Plan {
            deployment,
            sets: Vec::new(),
            paths: vec![paths.to_vec()],
        });
    };
    let sets = reference.sets.clone();
    if let Some(f) = ours().find(|f| !f.sets.is_empty() && f.sets != sets) {
        return Err(SetupError::SetsDisagree {
            deployment,
            drive: f.drive_id.clone(),
        });
    }
    let kept = sets.first().map_or(0, Vec::len);
    if let Some(given) = set_drive_count
        && given != kept
    {
        return Err(SetupError::SetSizeChanged { given, kept });
    }
    place(paths, &formats, &deployment, sets)
}

/// How drive `i` of the list given is named in errors.
fn drive_name(paths: &[PathBuf], i: usize) -> String {
    paths
        .get(i)
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Puts every given drive in its place: formatted drives by id, empty
/// ones in the places left, in the order given.
fn place(
    paths: &[PathBuf],
    formats: &[Option<Format>],
    deployment: &str,
    sets: Vec<Vec<String>>,
) -> Result<Plan, SetupError> {
    let name = |i: usize| drive_name(paths, i);
    let mut slots: Vec<Vec<Option<usize>>> = sets.iter().map(|s| vec![None; s.len()]).collect();
    let mut empty = Vec::new();
    for (i, f) in formats.iter().enumerate() {
        let Some(f) = f else {
            empty.push(i);
            continue;
        };
        if f.deployment_id != deployment {
            return Err(SetupError::ForeignDrive {
                path: name(i),
                deployment: f.deployment_id.clone(),
            });
        }
        let found = sets
            .iter()
            .enumerate()
            .find_map(|(s, ids)| ids.iter().position(|id| *id == f.drive_id).map(|d| (s, d)));
        let Some((s, d)) = found else {
            return Err(SetupError::UnknownDrive {
                path: name(i),
                id: f.drive_id.clone(),
            });
        };
        let Some(slot) = slots.get_mut(s).and_then(|v| v.get_mut(d)) else {
            continue;
        };
        if let Some(other) = *slot {
            return Err(SetupError::DuplicateDrive {
                path: name(i),
                other: name(other),
                id: f.drive_id.clone(),
            });
        }
        *slot = Some(i);
    }
    let mut empty = empty.into_iter();
    let mut missing = Vec::new();
    for (s, set) in slots.iter_mut().enumerate() {
        for (d, slot) in set.iter_mut().enumerate() {
            if slot.is_none() {
                match empty.next() {
                    Some(i) => *slot = Some(i),
                    None => missing.push(format!(
                        "set {s} drive {d} (id {})",
                        sets.get(s)
                            .and_then(|v| v.get(d))
                            .map_or("?", String::as_str)
                    )),
                }
            }
        }
    }
    let expected: usize = sets.iter().map(Vec::len).sum();
    let added: Vec<String> = empty.map(name).collect();
    if !added.is_empty() {
        return Err(SetupError::AddedDrives {
            expected,
            given: paths.len(),
            added: added.join(", "),
        });
    }
    if !missing.is_empty() {
        return Err(SetupError::SetDrivesMissing {
            expected,
            given: paths.len(),
            missing: missing.join(", "),
        });
    }
    let set_paths = slots
        .iter()
        .map(|set| {
            set.iter()
                .flatten()
                .filter_map(|&i| paths.get(i).cloned())
                .collect()
        })
        .collect();
    Ok(Plan {
        deployment: deployment.to_owned(),
        sets,
        paths: set_paths,
    })
}
