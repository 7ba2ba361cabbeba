//! Parts shared between versions. A version made by a patch
//! (`patch.rs`) names, for each of its parts, the file that holds it:
//! parts it did not change stay the files an older version wrote, so a
//! version's data may live in several data dirs of the object's folder.
//! A file is written once (its data dir's name is new) and never changed
//! but by heal, which writes the same bytes; it is removed when the last
//! version naming it goes ([`garbage`]): the versions in `cairn.meta`
//! (and its history) are the reference counts.

use std::collections::HashSet;
use std::path::PathBuf;

use cairn_api::{PathError, SafePath};

use crate::drive::{data_dir_path, part_path};
use crate::meta::VersionMeta;

/// A patch rewrites whole extents of this size (aligned to multiples of
/// it): a 4 KiB write costs one extent, a version of a 16 GiB file names
/// 4,096 parts (see ARCHITECTURE.md for the measured trade-off).
pub const EXTENT_SIZE: u64 = 4 << 20;

/// `<object folder>/<dir>/part.<number>`, refused unless `dir` is one
/// `cairn.data.*` name (whatever a damaged or forged meta says).
pub fn part_file_path(obj_dir: &SafePath, dir: &str, number: u32) -> Result<SafePath, PathError> {
    part_path(&data_dir_path(obj_dir, dir)?, number)
}

/// The data dirs a version names: its own and those of the parts it
/// shares.
pub fn dirs_of(v: &VersionMeta) -> impl Iterator<Item = &str> {
    v.data_dir.as_deref().into_iter().chain(
        v.parts
            .iter()
            .filter_map(|p| p.at.as_ref().map(|a| a.dir.as_str())),
    )
}

/// What removing the versions `gone` frees, given the versions that
/// stay: each data dir no staying version names (whole), and in the
/// dirs that stay, each part file of a gone version that no staying
/// version names.
pub fn garbage<'a>(
    obj_dir: &SafePath,
    gone: &[VersionMeta],
    staying: impl IntoIterator<Item = &'a VersionMeta>,
) -> Vec<PathBuf> {
    let mut dirs: HashSet<&str> = HashSet::new();
    let mut files: HashSet<(&str, u32)> = HashSet::new();
    for v in staying {
        dirs.extend(dirs_of(v));
        files.extend(
            v.parts
                .iter()
                .filter_map(|p| v.part_file(p).map(|f| (f.dir, f.number))),
        );
    }
    let mut out: Vec<PathBuf> = Vec::new();
    let mut whole: HashSet<&str> = HashSet::new();
    for g in gone {
        for d in dirs_of(g) {
            if !dirs.contains(d)
                && whole.insert(d)
                && let Ok(p) = data_dir_path(obj_dir, d)
            {
                out.push(p.into_path_buf());
            }
        }
        for p in &g.parts {
            let Some(f) = g.part_file(p) else { continue };
            if dirs.contains(f.dir)
                && !files.contains(&(f.dir, f.number))
                && let Ok(path) = part_file_path(obj_dir, f.dir, f.number)
            {
                out.push(path.into_path_buf());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
