//! The S3 listing rules (prefix, delimiter, marker, max-keys, common
//! prefixes), applied to keys fed in ascending byte order. Every layer
//! feeds its own key source through this one collector.

use crate::types::{ListOptions, ListPage, ObjectInfo};

/// What the key source should do after a push.
#[derive(Debug, PartialEq, Eq)]
pub enum Push {
    /// Keep feeding keys.
    More,
    /// Every key starting with this common prefix is rolled up: the source
    /// may skip past them.
    SkipPrefix(String),
    /// The page is full.
    Full,
}

pub struct ListCollector {
    opts: ListOptions,
    page: ListPage,
    count: usize,
    live_prefixes: bool,
}

impl ListCollector {
    pub fn new(opts: ListOptions) -> Self {
        Self {
            opts,
            page: ListPage::default(),
            count: 0,
            live_prefixes: false,
        }
    }

    /// A key rolled up into a common prefix counts only if it is listed
    /// itself (its `info` is `Some`): in a bucket with delete markers, a
    /// prefix whose keys are all deleted is not shown, as in S3.
    pub fn live_prefixes(mut self) -> Self {
        self.live_prefixes = true;
        self
    }

    /// Feeds one key; `info` is only called if the key is listed.
    pub fn push(&mut self, key: &str, info: impl FnOnce() -> Option<ObjectInfo>) -> Push {
        if !key.starts_with(&self.opts.prefix) {
            return Push::More;
        }
        if let Some(after) = &self.opts.start_after
            && key <= after.as_str()
        {
            return Push::More;
        }
        if let Some(d) = self.opts.delimiter.as_deref().filter(|d| !d.is_empty()) {
            let rest = &key[self.opts.prefix.len()..];
            if let Some(pos) = rest.find(d) {
                let cp = format!("{}{}", self.opts.prefix, &rest[..pos + d.len()]);
                let seen = self.page.common_prefixes.last() == Some(&cp)
                    || self
                        .opts
                        .start_after
                        .as_deref()
                        .is_some_and(|a| a.starts_with(&cp));
                if seen {
                    return Push::SkipPrefix(cp);
                }
                if self.live_prefixes && info().is_none() {
                    return Push::More;
                }
                if self.count >= self.opts.max_keys {
                    self.page.is_truncated = true;
                    return Push::Full;
                }
                self.count += 1;
                self.page.next_marker = Some(cp.clone());
                self.page.common_prefixes.push(cp.clone());
                return Push::SkipPrefix(cp);
            }
        }
        if self.count >= self.opts.max_keys {
            self.page.is_truncated = true;
            return Push::Full;
        }
        if let Some(info) = info() {
            self.count += 1;
            self.page.next_marker = Some(key.to_owned());
            self.page.objects.push(info);
        }
        Push::More
    }

    pub fn finish(mut self) -> ListPage {
        if !self.page.is_truncated {
            self.page.next_marker = None;
        }
        self.page
    }
}

/// The smallest string greater than every string starting with `prefix`
/// (for seeking past a rolled-up common prefix), or None if unbounded.
pub fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(c) = chars.pop() {
        let mut next = c as u32 + 1;
        while next <= char::MAX as u32 {
            if let Some(n) = char::from_u32(next) {
                chars.push(n);
                return Some(chars.into_iter().collect());
            }
            next += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(k: &str) -> Option<ObjectInfo> {
        Some(ObjectInfo {
            bucket: "b".into(),
            key: k.into(),
            size: 0,
            etag: String::new(),
            last_modified: time::OffsetDateTime::UNIX_EPOCH,
            headers: Default::default(),
            user_metadata: Default::default(),
            storage_class: Default::default(),
            checksum: None,
            version_id: None,
            parts_count: None,
            encryption: None,
            attrs: Default::default(),
        })
    }

    fn run(keys: &[&str], opts: ListOptions) -> ListPage {
        let mut c = ListCollector::new(opts);
        for k in keys {
            if c.push(k, || info(k)) == Push::Full {
                break;
            }
        }
        c.finish()
    }

    #[test]
    fn delimiter_and_pages() {
        let keys = ["a/1", "a/2", "b", "c/x/y", "d"];
        let p = run(
            &keys,
            ListOptions {
                delimiter: Some("/".into()),
                max_keys: 2,
                ..Default::default()
            },
        );
        assert_eq!(p.common_prefixes, vec!["a/"]);
        assert_eq!(p.objects.len(), 1);
        assert!(p.is_truncated);
        assert_eq!(p.next_marker.as_deref(), Some("b"));
        let p = run(
            &keys,
            ListOptions {
                delimiter: Some("/".into()),
                max_keys: 2,
                start_after: Some("b".into()),
                ..Default::default()
            },
        );
        assert_eq!(p.common_prefixes, vec!["c/"]);
        assert_eq!(p.objects[0].key, "d");
        assert!(!p.is_truncated);
        let p = run(
            &keys,
            ListOptions {
                delimiter: Some("/".into()),
                max_keys: 10,
                start_after: Some("a/".into()),
                ..Default::default()
            },
        );
        assert_eq!(p.objects[0].key, "b");
    }

    #[test]
    fn successor() {
        assert_eq!(prefix_successor("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_successor(""), None);
    }

    #[test]
    fn live_prefixes_need_a_listed_key() {
        // "a/1" and "c/1" are deleted (no info); "a/2" is live
        let deleted = ["a/1", "c/1"];
        let opts = ListOptions {
            delimiter: Some("/".into()),
            max_keys: 10,
            ..Default::default()
        };
        let mut c = ListCollector::new(opts).live_prefixes();
        for k in ["a/1", "a/2", "b", "c/1"] {
            c.push(k, || (!deleted.contains(&k)).then(|| info(k)).flatten());
        }
        let p = c.finish();
        assert_eq!(p.common_prefixes, vec!["a/"]);
        assert_eq!(p.objects.len(), 1);
    }
}
