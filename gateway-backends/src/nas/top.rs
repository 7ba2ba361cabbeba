//! The share's top level: which entries are buckets (folders, or links to
//! folders, with valid bucket names) and which are not served. Files at
//! the top have no bucket to be in: they are invisible over S3, so the
//! gateway counts them at start and says so.

use std::fs::{DirEntry, Metadata};
use std::io;
use std::path::Path;

use cairn_api::BucketName;

/// The gateway's own folder, never a bucket and not worth a mention.
const HIDDEN: &str = ".cairn.gateway";
/// A file system's own folder at a mount point: not a bucket name, expected.
const LOST_FOUND: &str = "lost+found";
/// How many skipped names the start log shows.
const EXAMPLES: usize = 5;

/// What one top-level entry is to the gateway.
pub(super) enum Top {
    /// A bucket: its name and the folder's metadata.
    Bucket(String, Metadata),
    /// Not served (and worth counting).
    Skipped(Skip),
    /// The gateway's own folder, lost+found.
    Ignored,
}

/// Why a top-level entry is not a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Skip {
    File,
    /// A symbolic link to a file, or to nothing.
    Symlink,
    /// A folder whose name is not a valid bucket name.
    BadName,
    /// Sockets, FIFOs, devices.
    Other,
}

pub(super) fn classify(ent: &DirEntry) -> Top {
    let name = ent.file_name();
    if name == HIDDEN || name == LOST_FOUND {
        return Top::Ignored;
    }
    // Followed: a link to a folder serves as that bucket.
    if let Ok(md) = std::fs::metadata(ent.path())
        && md.is_dir()
    {
        return match name.to_str() {
            Some(n) if BucketName::new(n).is_ok() => Top::Bucket(n.to_owned(), md),
            _ => Top::Skipped(Skip::BadName),
        };
    }
    Top::Skipped(match ent.file_type() {
        Ok(t) if t.is_symlink() => Skip::Symlink,
        Ok(t) if t.is_file() => Skip::File,
        _ => Skip::Other,
    })
}

/// The top-level entries a share holds that are not buckets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Skipped {
    pub(super) files: usize,
    pub(super) symlinks: usize,
    /// Folders whose names are not valid bucket names.
    pub(super) bad_names: usize,
    pub(super) other: usize,
    /// A few of their names, sorted.
    pub(super) examples: Vec<String>,
}

impl Skipped {
    pub(super) fn total(&self) -> usize {
        self.files + self.symlinks + self.bad_names + self.other
    }

    /// One line for the start log, e.g. "skipping 3 top-level entries in
    /// /srv/share (3 files): only folders with valid bucket names are
    /// buckets; e.g. a.txt, b.txt, c.txt".
    pub(super) fn describe(&self, root: &Path) -> String {
        let parts: Vec<String> = [
            (self.files, "file", "files"),
            (
                self.symlinks,
                "symlink to no folder",
                "symlinks to no folder",
            ),
            (
                self.bad_names,
                "folder whose name is not a bucket name",
                "folders whose names are not bucket names",
            ),
            (self.other, "special file", "special files"),
        ]
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
        .collect();
        format!(
            "skipping {} top-level entr{} in {} ({}): only folders with valid bucket names are \
             buckets, files at the top are not served; e.g. {}",
            self.total(),
            if self.total() == 1 { "y" } else { "ies" },
            root.display(),
            parts.join(", "),
            self.examples.join(", ")
        )
    }
}

/// Counts the share's top-level entries that are not buckets. Blocking.
pub(super) fn survey(root: &Path) -> io::Result<Skipped> {
    let mut s = Skipped::default();
    let mut names = Vec::new();
    for ent in std::fs::read_dir(root)? {
        let ent = ent?;
        let Top::Skipped(why) = classify(&ent) else {
            continue;
        };
        match why {
            Skip::File => s.files += 1,
            Skip::Symlink => s.symlinks += 1,
            Skip::BadName => s.bad_names += 1,
            Skip::Other => s.other += 1,
        }
        names.push(ent.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    names.truncate(EXAMPLES);
    s.examples = names;
    Ok(s)
}
