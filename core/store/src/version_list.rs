//! ListObjectVersions: the drives are walked in key order as for
//! ListObjects, and each key's versions are those a read quorum of its
//! holders agrees on (a version one drive kept after a delete it missed
//! does not resurface), newest first.

use std::sync::Arc;

use cairn_api::versioning::version_label;
use cairn_api::{
    BucketName, ListVersionsOptions, ListVersionsPage, ObjectError, ObjectResult, VersionEntry,
};

use crate::drive::Drive;
use crate::listing::{WalkFrom, merged_walk};
use crate::meta::VersionMeta;
use crate::set::ErasureSet;
use crate::walk::WalkItem;

impl ErasureSet {
    pub(crate) async fn list_object_versions_impl(
        &self,
        bucket: &BucketName,
        opts: ListVersionsOptions,
    ) -> ObjectResult<ListVersionsPage> {
        self.check_bucket(bucket).await?;
        let drives = self.drives.clone();
        let (quorum, _) = self.default_quorums();
        let bucket = bucket.to_string();
        tokio::task::spawn_blocking(move || list_versions_blocking(&drives, &bucket, &opts, quorum))
            .await
            .map_err(ObjectError::internal)?
    }
}

/// Fills a page, counting versions, markers and common prefixes
/// against max-keys.
struct Page<'a> {
    opts: &'a ListVersionsOptions,
    page: ListVersionsPage,
    count: usize,
}

impl Page<'_> {
    /// `false` once the page is full (and marked truncated).
    fn room(&mut self) -> bool {
        if self.count >= self.opts.max_keys {
            self.page.is_truncated = true;
            return false;
        }
        self.count += 1;
        true
    }

    fn versions(&mut self, bucket: &str, key: &str, versions: &[VersionMeta], first: bool) -> bool {
        for (i, v) in versions.iter().enumerate() {
            if !self.room() {
                return false;
            }
            self.page.next_key_marker = Some(key.to_owned());
            self.page.next_version_id_marker =
                Some(version_label(v.version_id.as_deref()).to_owned());
            self.page.versions.push(VersionEntry {
                info: v.to_info(bucket, key),
                is_latest: first && i == 0,
            });
        }
        true
    }

    fn prefix(&mut self, cp: String) -> bool {
        if self.page.common_prefixes.last() == Some(&cp) {
            return true;
        }
        if !self.room() {
            return false;
        }
        self.page.next_key_marker = Some(cp.clone());
        self.page.next_version_id_marker = None;
        self.page.common_prefixes.push(cp);
        true
    }
}

fn list_versions_blocking(
    drives: &[Arc<Drive>],
    bucket: &str,
    opts: &ListVersionsOptions,
    quorum: usize,
) -> ObjectResult<ListVersionsPage> {
    let delimiter = opts.delimiter.clone().filter(|d| !d.is_empty());
    let online: Vec<usize> = drives
        .iter()
        .filter(|d| d.is_online())
        .map(|d| d.index)
        .collect();
    let mut page = Page {
        opts,
        page: ListVersionsPage::default(),
        count: 0,
    };
    // resuming inside a key: the versions after the marker first
    if let (Some(key), Some(vm)) = (&opts.key_marker, &opts.version_id_marker)
        && key.starts_with(&opts.prefix)
    {
        let versions = quorum_versions(drives, &online, bucket, key, quorum);
        if let Some(p) = versions
            .iter()
            .position(|v| version_label(v.version_id.as_deref()) == vm)
            && !page.versions(
                bucket,
                key,
                versions.get(p + 1..).unwrap_or_default(),
                false,
            )
        {
            return Ok(finish(page));
        }
    }
    let from = WalkFrom {
        prefix: &opts.prefix,
        start_after: opts.key_marker.as_deref(),
        delimiter: delimiter.as_deref(),
    };
    merged_walk(drives, bucket, from, quorum, |item, holders| match item {
        // a marker at or inside a common prefix: that prefix was listed
        WalkItem::Prefix(p)
            if opts
                .key_marker
                .as_deref()
                .is_some_and(|m| m.starts_with(p.as_str())) =>
        {
            true
        }
        WalkItem::Prefix(p) => page.prefix(p.clone()),
        WalkItem::Object(key) => {
            if !key.starts_with(&opts.prefix) {
                return true;
            }
            let rolled = delimiter.as_deref().and_then(|d| {
                let rest = &key[opts.prefix.len()..];
                rest.find(d)
                    .map(|pos| format!("{}{}", opts.prefix, &rest[..pos + d.len()]))
            });
            match rolled {
                Some(cp)
                    if opts
                        .key_marker
                        .as_deref()
                        .is_some_and(|m| m.starts_with(&cp)) =>
                {
                    true
                }
                Some(cp) => page.prefix(cp),
                None => {
                    let versions = quorum_versions(drives, holders, bucket, key, quorum);
                    page.versions(bucket, key, &versions, true)
                }
            }
        }
    });
    Ok(finish(page))
}

fn finish(page: Page<'_>) -> ListVersionsPage {
    let mut p = page.page;
    if !p.is_truncated {
        p.next_key_marker = None;
        p.next_version_id_marker = None;
    }
    p
}

/// The versions of a key that a read quorum of `holders` agrees on,
/// newest first.
fn quorum_versions(
    drives: &[Arc<Drive>],
    holders: &[usize],
    bucket: &str,
    key: &str,
    quorum: usize,
) -> Vec<VersionMeta> {
    let mut seen: Vec<(VersionMeta, usize)> = Vec::new();
    for d in holders.iter().filter_map(|&i| drives.get(i)) {
        let Ok(dir) = d.object_dir(bucket, key) else {
            continue;
        };
        let Ok(m) = d
            .read_meta_at(&dir)
            .and_then(|m| crate::history::with_history(d.io(), &dir, m, false))
        else {
            continue;
        };
        for v in m.versions {
            match seen.iter_mut().find(|(s, _)| s.identity() == v.identity()) {
                Some((_, c)) => *c += 1,
                None => seen.push((v, 1)),
            }
        }
    }
    let mut out: Vec<VersionMeta> = seen
        .into_iter()
        .filter(|(_, c)| *c >= quorum)
        .map(|(v, _)| v)
        .collect();
    out.sort_by_key(|v| std::cmp::Reverse(v.mod_time));
    out
}
