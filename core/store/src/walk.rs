//! Walks one drive's bucket folder in S3 key order.
//!
//! An object `k` is the folder `k/` holding `cairn.meta`; keys below it
//! live in the same folder. Within a folder, entry `n` stands for the
//! object `n` (sorting as "n") and the subtree of keys `n/...` (sorting as
//! "n/"), which puts "a/b.txt" before "a/b/c" as byte order requires.
//! A `dir/` marker object (`dir/cairn.dir/`) sorts first in its subtree.
//! With delimiter "/", a subtree below the prefix is reported as one
//! common prefix without being walked.

use std::fs;
use std::path::{Path, PathBuf};

use crate::meta::{DATA_DIR_PREFIX, META_FILE};

const DIR_MARKER: &str = "cairn.dir";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkItem {
    Object(String),
    Prefix(String),
}

impl Ord for WalkItem {
    /// Key order first; the kind only breaks ties between drives.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(other.name()).then_with(|| {
            matches!(self, WalkItem::Prefix(_)).cmp(&matches!(other, WalkItem::Prefix(_)))
        })
    }
}

impl PartialOrd for WalkItem {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
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
    /// The object named by the folder itself (`rel` + name).
    Object(String),
    /// The subtree `rel` + name + "/".
    Subtree(String),
    /// The `rel` directory marker object (key == rel, ending in '/').
    Marker,
}

struct Frame {
    rel: String,
    entries: Vec<(String, Entry)>,
    pos: usize,
}

pub struct Walker {
    bucket_dir: PathBuf,
    prefix: String,
    start_after: Option<String>,
    roll_up_slash: bool,
    stack: Vec<Frame>,
}

impl Walker {
    pub fn new(
        bucket_dir: PathBuf,
        prefix: &str,
        start_after: Option<&str>,
        delimiter: Option<&str>,
    ) -> Self {
        // Start in the deepest folder the prefix fully names.
        let start_rel = match prefix.rfind('/') {
            Some(i) => prefix[..=i].to_owned(),
            None => String::new(),
        };
        let mut w = Self {
            bucket_dir,
            prefix: prefix.to_owned(),
            start_after: start_after.map(str::to_owned),
            roll_up_slash: delimiter == Some("/"),
            stack: Vec::new(),
        };
        if let Some(f) = w.frame(start_rel) {
            w.stack.push(f);
        }
        w
    }

    fn frame(&self, rel: String) -> Option<Frame> {
        let dir = self.bucket_dir.join(&rel);
        let rd = fs::read_dir(&dir).ok()?;
        let mut entries = Vec::new();
        for e in rd.flatten() {
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
                if !rel.is_empty() && e.path().join(META_FILE).is_file() {
                    entries.push((String::new(), Entry::Marker));
                }
                continue;
            }
            if e.path().join(META_FILE).is_file() {
                entries.push((name.clone(), Entry::Object(name.clone())));
            }
            entries.push((format!("{name}/"), Entry::Subtree(name)));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Some(Frame {
            rel,
            entries,
            pos: 0,
        })
    }

    fn after_start(&self, key: &str) -> bool {
        self.start_after.as_deref().is_none_or(|a| key > a)
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
            let rel = frame.rel.clone();
            match entry {
                Entry::Marker => {
                    if rel.starts_with(&self.prefix) && self.after_start(&rel) {
                        return Some(WalkItem::Object(rel));
                    }
                }
                Entry::Object(name) => {
                    let key = format!("{rel}{name}");
                    if key.starts_with(&self.prefix) && self.after_start(&key) {
                        return Some(WalkItem::Object(key));
                    }
                }
                Entry::Subtree(name) => {
                    let sub = format!("{rel}{name}/");
                    // Only subtrees that overlap the prefix.
                    if !(sub.starts_with(&self.prefix) || self.prefix.starts_with(&sub)) {
                        continue;
                    }
                    // Skip subtrees wholly before start_after.
                    if let Some(a) = &self.start_after
                        && sub.as_str() < a.as_str()
                        && !a.starts_with(&sub)
                    {
                        continue;
                    }
                    if self.roll_up_slash
                        && sub.len() > self.prefix.len()
                        && sub.starts_with(&self.prefix)
                    {
                        if has_object(&self.bucket_dir.join(&sub)) {
                            return Some(WalkItem::Prefix(sub));
                        }
                        continue;
                    }
                    if let Some(f) = self.frame(sub) {
                        self.stack.push(f);
                    }
                }
            }
        }
    }
}

/// True if any object lives at or below `dir` (a folder of keys).
fn has_object(dir: &Path) -> bool {
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
        let p = e.path();
        if p.join(META_FILE).is_file() || has_object(&p) {
            return true;
        }
    }
    false
}

#[cfg(test)]
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
        let all: Vec<_> = Walker::new(t.path().into(), "", None, None)
            .map(|i| i.name().to_owned())
            .collect();
        let mut sorted: Vec<_> = keys.iter().map(|s| s.to_string()).collect();
        sorted.sort();
        assert_eq!(all, sorted);
        let top: Vec<_> = Walker::new(t.path().into(), "", None, Some("/")).collect();
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
        let sub: Vec<_> = Walker::new(t.path().into(), "a/b", Some("a/b"), None)
            .map(|i| i.name().to_owned())
            .collect();
        assert_eq!(sub, ["a/b.txt", "a/b/c"]);
        let d: Vec<_> = Walker::new(t.path().into(), "d/", None, Some("/"))
            .map(|i| i.name().to_owned())
            .collect();
        assert_eq!(d, ["d/", "d/x"]);
    }
}
