//! Listing a bucket folder in S3 key order without reading the whole tree:
//! a depth-first walk that reads one folder at a time, sorts it so that a
//! folder `d` sorts as `d/` (then every key below it falls exactly where
//! S3's byte order puts it), skips subtrees that lie before the marker,
//! outside the prefix or inside a rolled-up common prefix, and stops when
//! the page is full.

use std::path::Path;

use cairn_api::list::{ListCollector, Push};
use cairn_api::{ListOptions, ListPage, ObjectInfo, SafePath};

/// One entry of a folder, as the walk needs it.
struct Entry {
    /// The name with `/` appended for folders: the sort key.
    sort: String,
    name: String,
    is_dir: bool,
}

enum Flow {
    Go,
    Stop,
}

pub(crate) struct Walk<'a, F: FnMut(&Path, &str, bool) -> Option<ObjectInfo>> {
    pub opts: &'a ListOptions,
    /// Builds the info of a listed key (`is_dir` for `dir/` keys), or
    /// `None` when it turns out not to be an object.
    pub info: F,
    /// Whether a folder is a `dir/` object itself (marked, or empty).
    pub is_dir_object: &'a dyn Fn(&Path) -> bool,
}

impl<F: FnMut(&Path, &str, bool) -> Option<ObjectInfo>> Walk<'_, F> {
    pub fn run(mut self, bucket_dir: &SafePath) -> std::io::Result<ListPage> {
        let mut c = ListCollector::new(self.opts.clone());
        let mut skip: Option<String> = None;
        self.visit(bucket_dir, "", &mut c, &mut skip)?;
        Ok(c.finish())
    }

    fn read_sorted(dir: &Path) -> std::io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for ent in std::fs::read_dir(dir)? {
            let ent = ent?;
            let Ok(name) = ent.file_name().into_string() else {
                tracing::warn!(dir = %dir.display(), "a file name that is not UTF-8 cannot be a key: skipped");
                continue;
            };
            let ft = ent.file_type()?;
            let is_dir = if ft.is_symlink() {
                // Symlinks to files are served; to folders they are not
                // followed (no loops, no escaping the share).
                match std::fs::metadata(ent.path()) {
                    Ok(m) if m.is_file() => false,
                    _ => continue,
                }
            } else if ft.is_dir() {
                true
            } else if ft.is_file() {
                false
            } else {
                continue; // sockets, fifos, devices are not objects
            };
            let sort = if is_dir {
                format!("{name}/")
            } else {
                name.clone()
            };
            out.push(Entry { sort, name, is_dir });
        }
        out.sort_unstable_by(|a, b| a.sort.cmp(&b.sort));
        Ok(out)
    }

    fn visit(
        &mut self,
        dir: &SafePath,
        base: &str,
        c: &mut ListCollector,
        skip: &mut Option<String>,
    ) -> std::io::Result<Flow> {
        let prefix = self.opts.prefix.as_str();
        let after = self.opts.start_after.as_deref();
        let entries = match Self::read_sorted(dir) {
            Ok(e) => e,
            // A folder removed by another program while we walk.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Flow::Go),
            Err(e) => return Err(e),
        };
        for e in entries {
            let key = format!("{base}{}", e.sort);
            // Past the prefix: nothing later can match.
            if !key.starts_with(prefix) && !prefix.starts_with(key.as_str()) {
                if key.as_str() > prefix {
                    return Ok(Flow::Stop);
                }
                continue;
            }
            if let Some(s) = skip.as_deref()
                && key.starts_with(s)
            {
                continue;
            }
            if e.is_dir {
                // Every key below starts with `key`: skip the subtree when
                // all of it is at or before the marker.
                if let Some(a) = after
                    && a >= key.as_str()
                    && !a.starts_with(key.as_str())
                {
                    continue;
                }
                let path = dir.join_str(&e.name)?;
                if key.starts_with(prefix) && (self.is_dir_object)(&path) {
                    match self.push(c, skip, &path, &key, true) {
                        Flow::Stop => return Ok(Flow::Stop),
                        Flow::Go => {}
                    }
                    if skip.as_deref().is_some_and(|s| key.starts_with(s)) {
                        continue;
                    }
                }
                if let Flow::Stop = self.visit(&path, &key, c, skip)? {
                    return Ok(Flow::Stop);
                }
            } else {
                if !key.starts_with(prefix) {
                    continue;
                }
                let path = dir.join_str(&e.name)?;
                if let Flow::Stop = self.push(c, skip, &path, &key, false) {
                    return Ok(Flow::Stop);
                }
            }
        }
        Ok(Flow::Go)
    }

    fn push(
        &mut self,
        c: &mut ListCollector,
        skip: &mut Option<String>,
        path: &Path,
        key: &str,
        is_dir: bool,
    ) -> Flow {
        let info = &mut self.info;
        match c.push(key, || info(path, key, is_dir)) {
            Push::More => Flow::Go,
            Push::SkipPrefix(cp) => {
                *skip = Some(cp);
                Flow::Go
            }
            Push::Full => Flow::Stop,
        }
    }
}
