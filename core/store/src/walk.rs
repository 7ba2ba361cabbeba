//! Walks one drive's bucket folder in S3 key order.
//!
//! An object `k` is the folder `k/` holding `cairn.meta`; keys below it
//! live in the same folder. Within a folder, entry `n` stands for the
//! object `n` (sorting as "n") and the subtree of keys `n/...` (sorting as
//! "n/"), which puts "a/b.txt" before "a/b/c" as byte order requires.
//! A `dir/` marker object (`dir/cairn.dir/`) sorts first in its subtree.
//! With delimiter "/", a subtree below the prefix is reported as one
//! common prefix without being walked.
//!
//! A folder is read once (names and d_type only); whether a name holds an
//! object (`name/cairn.meta`) is asked only when the walk reaches it inside
//! the prefix and after `start_after`. A listing page of a 10,000-key
//! folder then costs one `getdents` pass plus a stat per key it returns,
//! not a stat of every key before the page.
//!
//! The walk starts in the folder the prefix fully names only when every
//! segment of it could be part of a key (`cairn_api::prefix_folder`): a
//! prefix such as `../other/` or `/etc/` matches no key and walks nothing.
//! Every folder it opens is a `SafePath` below the bucket folder.

use std::cmp::Ordering;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use cairn_api::{SafePath, prefix_folder};
use nix::fcntl::AtFlags;
use parking_lot::Mutex;

use crate::meta::{DATA_DIR_PREFIX, META_FILE};

const DIR_MARKER: &str = "cairn.dir";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkItem {
    Object(String),
    Prefix(String),
}

impl Ord for WalkItem {
    /// Key order first; the kind only breaks ties between drives.
    fn cmp(&self, other: &Self) -> Ordering {
        self.name().cmp(other.name()).then_with(|| {
            matches!(self, WalkItem::Prefix(_)).cmp(&matches!(other, WalkItem::Prefix(_)))
        })
    }
}

impl PartialOrd for WalkItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl WalkItem {
    pub fn name(&self) -> &str {
        match self {
            WalkItem::Object(s) | WalkItem::Prefix(s) => s,
        }
    }
}

enum Entry {
    /// The object named by the folder itself (`rel` + name), if the folder
    /// holds a `cairn.meta` (checked when reached).
    Object(String),
    /// The subtree `rel` + name + "/".
    Subtree(String),
    /// The `rel` directory marker object (key == rel, ending in '/'), if
    /// `cairn.dir/cairn.meta` is there (checked when reached).
    Marker,
}

/// A folder's entries, sorted by their key order: (sort name, entry).
type Entries = Arc<Vec<(String, Entry)>>;

struct Frame {
    rel: String,
    /// The folder of `rel` below the bucket folder.
    path: SafePath,
    /// The folder itself: names in it are stat'ed relative to it (no path
    /// walk from the root per key).
    dir: File,
    entries: Entries,
    pos: usize,
}

pub struct Walker {
    prefix: String,
    start_after: Option<String>,
    roll_up_slash: bool,
    /// Whether an object's folder is checked for its `cairn.meta` before
    /// the key is returned (`candidates` turns it off).
    check_objects: bool,
    stack: Vec<Frame>,
}

impl Walker {
    pub fn new(
        bucket_dir: SafePath,
        prefix: &str,
        start_after: Option<&str>,
        delimiter: Option<&str>,
    ) -> Self {
        let mut w = Self {
            prefix: prefix.to_owned(),
            start_after: start_after.map(str::to_owned),
            roll_up_slash: delimiter == Some("/"),
            check_objects: true,
            stack: Vec::new(),
        };
        // Start in the deepest folder the prefix fully names, if a key
        // can be below it.
        if let Some(folder) = prefix_folder(prefix) {
            let start_rel = match prefix.rfind('/') {
                Some(i) => prefix[..=i].to_owned(),
                None => String::new(),
            };
            if let Some(f) = w.frame(start_rel, bucket_dir.join_rel(&folder)) {
                w.stack.push(f);
            }
        }
        w
    }

    /// Returns every folder that may hold an object as its key, unchecked
    /// (no stat of `cairn.meta`): for a caller that reads each key's meta
    /// anyway and skips those it cannot read (a listing with metadata).
    pub fn candidates(mut self) -> Self {
        self.check_objects = false;
        self
    }

    fn frame(&self, rel: String, path: SafePath) -> Option<Frame> {
        let dir = File::open(&path).ok()?;
        let entries = folder_entries(&path, &dir, !rel.is_empty())?;
        // Entries wholly before the prefix or start_after are skipped by a
        // binary search: a page deep into a big folder does not walk the
        // names before it.
        let skip = |bound: &str| {
            entries.partition_point(|(name, _)| {
                concat_cmp(&rel, name, bound) == Ordering::Less
                    && !concat_is_prefix(&rel, name, bound)
            })
        };
        let mut pos = skip(&self.prefix);
        if let Some(a) = &self.start_after {
            pos = pos.max(skip(a));
        }
        Some(Frame {
            rel,
            path,
            dir,
            entries,
            pos,
        })
    }
}

impl Iterator for Walker {
    type Item = WalkItem;

    fn next(&mut self) -> Option<WalkItem> {
        loop {
            let frame = self.stack.last_mut()?;
            let Some((_, entry)) = frame.entries.get(frame.pos) else {
                self.stack.pop();
                continue;
            };
            frame.pos += 1;
            let after_start = |key: &str| self.start_after.as_deref().is_none_or(|a| key > a);
            match entry {
                Entry::Marker => {
                    let rel = &frame.rel;
                    if rel.starts_with(&self.prefix)
                        && after_start(rel)
                        && (!self.check_objects
                            || holds_meta(&frame.dir, &format!("{DIR_MARKER}/{META_FILE}")))
                    {
                        return Some(WalkItem::Object(rel.clone()));
                    }
                }
                Entry::Object(name) => {
                    let key = format!("{}{name}", frame.rel);
                    if !key.starts_with(&self.prefix) {
                        if key.as_str() > self.prefix.as_str() {
                            // sorted: every later name is past the prefix too
                            self.stack.pop();
                        }
                        continue;
                    }
                    if after_start(&key)
                        && (!self.check_objects
                            || holds_meta(&frame.dir, &format!("{name}/{META_FILE}")))
                    {
                        return Some(WalkItem::Object(key));
                    }
                }
                Entry::Subtree(name) => {
                    let sub = format!("{}{name}/", frame.rel);
                    // Only subtrees that overlap the prefix.
                    if !(sub.starts_with(&self.prefix) || self.prefix.starts_with(&sub)) {
                        if sub.as_str() > self.prefix.as_str() {
                            self.stack.pop();
                        }
                        continue;
                    }
                    // Skip subtrees wholly before start_after.
                    if let Some(a) = &self.start_after
                        && sub.as_str() < a.as_str()
                        && !a.starts_with(&sub)
                    {
                        continue;
                    }
                    let Ok(path) = frame.path.join_str(name) else {
                        continue;
                    };
                    if self.roll_up_slash
                        && sub.len() > self.prefix.len()
                        && sub.starts_with(&self.prefix)
                    {
                        let below = match subfolders(&frame.dir, name) {
                            Some(0) => false,
                            _ => has_object(&path),
                        };
                        if below {
                            return Some(WalkItem::Prefix(sub));
                        }
                        continue;
                    }
                    if let Some(f) = self.frame(sub, path) {
                        self.stack.push(f);
                    }
                }
            }
        }
    }
}

/// `rel + name` compared with `bound`, without building the string.
fn concat_cmp(rel: &str, name: &str, bound: &str) -> Ordering {
    let (r, b) = (rel.as_bytes(), bound.as_bytes());
    let n = r.len().min(b.len());
    match r.get(..n).cmp(&b.get(..n)) {
        Ordering::Equal if r.len() > b.len() => Ordering::Greater,
        Ordering::Equal => name.as_bytes().cmp(b.get(r.len()..).unwrap_or_default()),
        o => o,
    }
}

/// `bound` starts with `rel + name`.
fn concat_is_prefix(rel: &str, name: &str, bound: &str) -> bool {
    bound
        .strip_prefix(rel)
        .is_some_and(|rest| rest.starts_with(name))
}

/// `rel_path` (relative to `dir`) is a regular file.
fn holds_meta(dir: &File, rel_path: &str) -> bool {
    nix::sys::stat::fstatat(dir, rel_path, AtFlags::empty())
        .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG)
}

/// How many subfolders `name` (in `dir`) has, from its link count; None
/// when the file system does not count them (btrfs reports 1).
fn subfolders(dir: &File, name: &str) -> Option<u64> {
    let st = nix::sys::stat::fstatat(dir, name, AtFlags::empty()).ok()?;
    #[allow(clippy::unnecessary_cast)] // nlink_t is not u64 everywhere
    let nlink = st.st_nlink as u64;
    nlink.checked_sub(2)
}

/// True if any object lives below `dir` (a folder of keys).
fn has_object(dir: &SafePath) -> bool {
    let Ok(rd) = fs::read_dir(dir) else {
        return false;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(DATA_DIR_PREFIX) || name == META_FILE {
            continue;
        }
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(p) = dir.join_str(&name) else {
            continue;
        };
        if p.join(cairn_api::seg!(META_FILE)).is_file() || has_object(&p) {
            return true;
        }
    }
    false
}

/// Reads a folder's entries (or takes them from the cache below).
/// `markers`: a `cairn.dir` marker counts (not at the bucket's top).
fn folder_entries(path: &Path, dir: &File, markers: bool) -> Option<Entries> {
    let read_at = SystemTime::now();
    let stamp = dir.metadata().ok().map(|m| Stamp::of(&m));
    if let Some(st) = &stamp
        && let Some(e) = cache().lock().get(path, st)
    {
        return Some(e);
    }
    let mut entries = Vec::new();
    for e in fs::read_dir(path).ok()?.flatten() {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if name == META_FILE || name.starts_with(DATA_DIR_PREFIX) {
            continue;
        }
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if name == DIR_MARKER {
            if markers {
                entries.push((String::new(), Entry::Marker));
            }
            continue;
        }
        entries.push((format!("{name}/"), Entry::Subtree(name.clone())));
        entries.push((name.clone(), Entry::Object(name)));
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let entries = Arc::new(entries);
    if let Some(st) = stamp
        && entries.len() >= CACHE_MIN_ENTRIES
        && st.settled_before(read_at)
    {
        cache().lock().put(path, st, entries.clone());
    }
    Some(entries)
}

/// Sorted entries of big folders, kept between listing pages: S3 clients
/// and the file fronts list 1,000 keys a page, and re-reading and sorting
/// a 10,000-entry folder for each page cost more than the page itself.
/// An entry is used only while the folder's inode, size, mtime and ctime
/// are what they were, and only cached when its mtime was over a second
/// (50 ms with nanosecond timestamps) old at the read: a later create or
/// delete in it then changes the mtime even with coarse file system clocks. Names only: whether a name holds
/// an object is still asked of the drive each time.
struct FrameCache {
    slots: Vec<(PathBuf, Stamp, Entries, u64)>,
    tick: u64,
}

const CACHE_MIN_ENTRIES: usize = 1024;
const CACHE_MAX_ENTRIES: usize = 1 << 20;
const SETTLE: Duration = Duration::from_secs(1);
/// `SETTLE` where the folder's timestamps carry nanoseconds (ext4, xfs,
/// btrfs: their clock ticks are a jiffy, at most 10 ms): a listing right
/// after a burst of creates (a `cp -r`, then `ls`) no longer re-reads the
/// folder for every page during the following second.
const SETTLE_FINE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// Last changed at least `SETTLE` before `t`.
    fn settled_before(&self, t: SystemTime) -> bool {
        let Ok(now) = t.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        let latest = self.mtime.max(self.ctime);
        let Ok(secs) = u64::try_from(latest.0) else {
            return false;
        };
        let changed = Duration::new(secs, u32::try_from(latest.1).unwrap_or(0));
        // a file system with whole-second (or coarser) timestamps shows
        // no nanoseconds; a fine one shows them but for 1 time in 10^9
        let fine = self.mtime.1 != 0 || self.ctime.1 != 0;
        changed + if fine { SETTLE_FINE } else { SETTLE } < now
    }
}

fn cache() -> &'static Mutex<FrameCache> {
    static CACHE: OnceLock<Mutex<FrameCache>> = OnceLock::new();
    CACHE.get_or_init(|| {
        Mutex::new(FrameCache {
            slots: Vec::new(),
            tick: 0,
        })
    })
}

impl FrameCache {
    fn get(&mut self, path: &Path, stamp: &Stamp) -> Option<Entries> {
        self.tick += 1;
        let tick = self.tick;
        let i = self.slots.iter().position(|(p, _, _, _)| p == path)?;
        let slot = self.slots.get_mut(i)?;
        if slot.1 != *stamp {
            self.slots.swap_remove(i);
            return None;
        }
        slot.3 = tick;
        Some(slot.2.clone())
    }

    fn put(&mut self, path: &Path, stamp: Stamp, entries: Entries) {
        self.tick += 1;
        self.slots.retain(|(p, _, _, _)| p != path);
        self.slots
            .push((path.to_path_buf(), stamp, entries, self.tick));
        // least recently used out until the names fit
        while self.slots.iter().map(|s| s.2.len()).sum::<usize>() > CACHE_MAX_ENTRIES {
            let Some(old) = self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.3)
                .map(|(i, _)| i)
            else {
                break;
            };
            self.slots.swap_remove(old);
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fixtures below a temp folder
mod tests {
    use super::*;

    fn obj(root: &Path, key: &str) {
        let rel = match key.strip_suffix('/') {
            Some(b) => format!("{b}/{DIR_MARKER}"),
            None => key.to_owned(),
        };
        let d = root.join(rel);
        fs::create_dir_all(&d).expect("mkdir");
        fs::write(d.join(META_FILE), b"x").expect("write");
    }

    #[test]
    fn byte_order_and_rollup() {
        let t = tempfile::tempdir().expect("tmp");
        let keys = ["a", "a/b", "a/b.txt", "a/b/c", "a-", "d/", "d/x", "e/f/g"];
        for k in keys {
            obj(t.path(), k);
        }
        let all: Vec<_> = Walker::new(SafePath::root(t.path()), "", None, None)
            .map(|i| i.name().to_owned())
            .collect();
        let mut sorted: Vec<_> = keys.iter().map(|s| s.to_string()).collect();
        sorted.sort();
        assert_eq!(all, sorted);
        let top: Vec<_> = Walker::new(SafePath::root(t.path()), "", None, Some("/")).collect();
        assert_eq!(
            top,
            vec![
                WalkItem::Object("a".into()),
                WalkItem::Object("a-".into()),
                WalkItem::Prefix("a/".into()),
                WalkItem::Prefix("d/".into()),
                WalkItem::Prefix("e/".into()),
            ]
        );
        let sub: Vec<_> = Walker::new(SafePath::root(t.path()), "a/b", Some("a/b"), None)
            .map(|i| i.name().to_owned())
            .collect();
        assert_eq!(sub, ["a/b.txt", "a/b/c"]);
        let d: Vec<_> = Walker::new(SafePath::root(t.path()), "d/", None, Some("/"))
            .map(|i| i.name().to_owned())
            .collect();
        assert_eq!(d, ["d/", "d/x"]);
    }
}
