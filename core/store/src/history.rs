//! Older versions of an object, kept out of `cairn.meta`.
//!
//! `cairn.meta` is rewritten by every write of its object, so a key with
//! thousands of versions would make each PUT rewrite (and re-hash, and
//! re-parse) all of them. Instead the meta keeps the newest versions: past
//! `SPILL_AT` versions or `SPILL_INLINE` bytes of inline shards, all but the
//! newest `KEEP` are appended as one chunk (an encoded `ObjectMeta`) to the
//! object's history file `cairn.hist.<id>`, which the meta names together
//! with its committed length. A PUT then costs the same at the ten
//! thousandth version as at the first.
//!
//! Invariants, per drive:
//! - every version in the history is older than every version in the meta,
//!   and the meta is never empty while it names a history;
//! - a version id in the meta hides the same id in the history, and a later
//!   chunk hides an earlier one: a record rewritten by heal or by a
//!   retention change is appended, never edited in place;
//! - an append is made durable before the meta that counts it, so a crash
//!   leaves either the old meta (the torn tail past `len` is cut by the next
//!   append) or the new one; a rewrite goes to a new file, which the meta
//!   then names, and the old file is removed after.

use std::collections::HashSet;
use std::path::Path;

use cairn_api::path::{PathError, SafePath};

use crate::drive::{Drive, DriveError, is_not_found};
use crate::driveio::DriveIo;
use crate::meta::{HistoryRef, MetaError, ObjectMeta};

/// History files in an object's folder start with this.
/// (Reserved in keys by `cairn_api::names`.)
pub const HISTORY_PREFIX: &str = "cairn.hist.";
/// The meta spills once it holds more versions than this...
const SPILL_AT: usize = 16;
/// ...or more inline bytes than this (with at least two versions).
const SPILL_INLINE: usize = 512 * 1024;
/// Versions the meta keeps after a spill.
const KEEP: usize = 4;

/// Does this meta hold more than it should keep?
pub(crate) fn needs_spill(meta: &ObjectMeta) -> bool {
    meta.versions.len() > SPILL_AT || (meta.versions.len() > 1 && meta.inline.len() > SPILL_INLINE)
}

/// The meta with its history read in: every version this drive holds,
/// newest first, each id once (the rules above decide which copy).
pub(crate) fn merge(mut meta: ObjectMeta, chunks: Vec<ObjectMeta>) -> ObjectMeta {
    let mut seen: HashSet<Option<String>> =
        meta.versions.iter().map(|v| v.version_id.clone()).collect();
    for chunk in chunks.into_iter().rev() {
        for (i, v) in chunk.versions.iter().enumerate() {
            if seen.insert(v.version_id.clone()) {
                meta.push(v.clone(), chunk.inline_of(i));
            }
        }
    }
    meta.sort_newest_first();
    meta
}

/// The history file `name` (read from a meta) in an object folder: one
/// `cairn.hist.*` name, whatever a damaged or forged meta says.
fn history_path(dir: &SafePath, name: &str) -> Result<SafePath, PathError> {
    dir.join_named(HISTORY_PREFIX, name)
}

/// Reads the committed chunks of a history file.
fn read_chunks(
    io: &dyn DriveIo,
    dir: &SafePath,
    h: &HistoryRef,
    with_inline: bool,
) -> Result<Vec<ObjectMeta>, DriveError> {
    let buf = io.read_prefix(&history_path(dir, &h.file)?, h.len)?;
    if (buf.len() as u64) < h.len {
        return Err(MetaError::Truncated.into());
    }
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let rest = buf.get(at..).ok_or(MetaError::Truncated)?;
        let (chunk, used) = ObjectMeta::decode_prefix(rest, with_inline)?;
        chunks.push(chunk);
        at += used;
    }
    Ok(chunks)
}

/// `meta` with the history it names read in.
pub(crate) fn with_history(
    io: &dyn DriveIo,
    dir: &SafePath,
    meta: ObjectMeta,
    with_inline: bool,
) -> Result<ObjectMeta, DriveError> {
    let Some(h) = meta.history.clone() else {
        return Ok(meta);
    };
    let chunks = read_chunks(io, dir, &h, with_inline)?;
    Ok(merge(meta, chunks))
}

/// Appends `chunk` to the history `meta` names (starting one if it names
/// none) and counts it in `meta`, which the caller then writes.
pub(crate) fn append(
    io: &dyn DriveIo,
    dir: &SafePath,
    meta: &mut ObjectMeta,
    chunk: &ObjectMeta,
    durable: bool,
) -> Result<(), DriveError> {
    let body = chunk.encode()?;
    let (h, fresh) = match meta.history.take() {
        Some(h) => (h, false),
        None => (new_ref(), true),
    };
    // cut a tail that a crash left past the committed length
    io.write_at(&history_path(dir, &h.file)?, h.len, &body, durable)?;
    if durable && fresh {
        io.sync_dir(dir)?;
    }
    meta.history = Some(HistoryRef {
        file: h.file,
        len: h.len + body.len() as u64,
    });
    Ok(())
}

/// Moves all but the newest `KEEP` versions of `meta` into its history
/// when it has grown past its bounds.
pub(crate) fn spill_if_needed(
    io: &dyn DriveIo,
    dir: &SafePath,
    meta: &mut ObjectMeta,
    durable: bool,
) -> Result<(), DriveError> {
    if !needs_spill(meta) {
        return Ok(());
    }
    let chunk = meta.split_off(KEEP);
    append(io, dir, meta, &chunk, durable)
}

fn new_ref() -> HistoryRef {
    HistoryRef {
        file: format!("{HISTORY_PREFIX}{}", uuid::Uuid::new_v4().simple()),
        len: 0,
    }
}

impl Drive {
    /// Every version of an object this drive holds (meta and history),
    /// newest first. `Ok(None)`: no such object on this drive.
    pub fn read_versions(
        &self,
        bucket: &str,
        key: &str,
        with_inline: bool,
    ) -> Result<Option<ObjectMeta>, DriveError> {
        let Some(meta) = self.read_meta(bucket, key, with_inline)? else {
            return Ok(None);
        };
        with_history(self.io(), &self.object_dir(bucket, key)?, meta, with_inline).map(Some)
    }

    /// The meta, with the history read in only when it must be: when
    /// version `id` is asked for and the meta does not hold it.
    pub fn read_meta_for(
        &self,
        bucket: &str,
        key: &str,
        with_inline: bool,
        id: Option<Option<&str>>,
    ) -> Result<Option<ObjectMeta>, DriveError> {
        let Some(meta) = self.read_meta(bucket, key, with_inline)? else {
            return Ok(None);
        };
        match id {
            Some(id) if meta.history.is_some() && meta.position(id).is_none() => {
                with_history(self.io(), &self.object_dir(bucket, key)?, meta, with_inline).map(Some)
            }
            _ => Ok(Some(meta)),
        }
    }

    /// Replaces every version of an object on this drive with `all`
    /// (newest first, not empty): the newest go to the meta, the rest to a
    /// new history file, which the meta names once it is durable.
    pub fn write_versions(
        &self,
        bucket: &str,
        key: &str,
        mut all: ObjectMeta,
        durable: bool,
    ) -> Result<(), DriveError> {
        let dir = self.object_dir(bucket, key)?;
        let old = all.history.take();
        if needs_spill(&all) {
            let chunk = all.split_off(KEEP);
            append(self.io(), &dir, &mut all, &chunk, durable)?;
        }
        // it replaces a meta: synced even when not durable
        self.write_meta(&dir, &all, &[], &[], durable, true)?;
        if let Some(old) = old
            && all.history.as_ref().is_none_or(|h| h.file != old.file)
            && let Ok(old) = history_path(&dir, &old.file)
        {
            remove_file(self.io(), &old);
        }
        Ok(())
    }
}

/// Removes the history files in `dir` that `keep` does not name (crash
/// leftovers of a rewrite, or all of them when the object is gone).
pub(crate) fn remove_unnamed(io: &dyn DriveIo, dir: &SafePath, keep: Option<&HistoryRef>) -> usize {
    let Ok(rd) = io.read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in rd {
        let name = e.name.to_string_lossy().into_owned();
        if !name.starts_with(HISTORY_PREFIX)
            || e.kind != crate::driveio::FileKind::File
            || keep.is_some_and(|h| h.file == name)
        {
            continue;
        }
        let Some(p) = e.path_in(dir) else {
            continue;
        };
        remove_file(io, &p);
        removed += 1;
    }
    removed
}

fn remove_file(io: &dyn DriveIo, p: &Path) {
    if let Err(e) = io.remove_file(p)
        && !is_not_found(&e)
    {
        tracing::warn!(file = %p.display(), error = %e, "could not remove an old history file");
    }
}
