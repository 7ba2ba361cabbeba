//! Listing: every online drive is walked in key order and the walks are
//! merged; a key is listed when a read quorum of drives holds it, so a
//! stale copy on one drive (missed delete) does not resurface.

use cairn_api::list::{ListCollector, Push};
use cairn_api::{BucketName, ListOptions, ListPage, ObjectError, ObjectResult, Versioning};

use crate::drive::{Drive, DriveError};
use crate::set::ErasureSet;
use crate::walk::WalkItem;

impl ErasureSet {
    pub(crate) async fn list_objects_impl(
        &self,
        bucket: &BucketName,
        opts: ListOptions,
    ) -> ObjectResult<ListPage> {
        self.check_bucket(bucket).await?;
        // only a bucket that has had versioning can hold delete markers
        let markers = self.bucket_config(bucket).await?.versioning != Versioning::Unversioned;
        let drives = self.drives.clone();
        let (quorum, _) = self.default_quorums();
        let bucket = bucket.to_string();
        let how = Listed {
            info: true,
            markers,
        };
        tokio::task::spawn_blocking(move || list_blocking(&drives, &bucket, opts, quorum, how))
            .await
            .map_err(ObjectError::internal)?
    }

    /// Keys only (the infos carry just the key): for walks that read each
    /// object's metadata themselves anyway, such as healing.
    pub(crate) async fn list_keys(
        &self,
        bucket: &BucketName,
        opts: ListOptions,
    ) -> ObjectResult<ListPage> {
        self.check_bucket(bucket).await?;
        let drives = self.drives.clone();
        let (quorum, _) = self.default_quorums();
        let bucket = bucket.to_string();
        let how = Listed {
            info: false,
            markers: false,
        };
        tokio::task::spawn_blocking(move || list_blocking(&drives, &bucket, opts, quorum, how))
            .await
            .map_err(ObjectError::internal)?
    }
}

/// Where a merged walk starts and what it rolls up.
pub(crate) struct WalkFrom<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) start_after: Option<&'a str>,
    pub(crate) delimiter: Option<&'a str>,
}

/// Walks the online drives' folders of `bucket` merged in key order and
/// calls `each` with every item a read quorum of drives holds, and which
/// drives hold it; stops when `each` returns false.
pub(crate) fn merged_walk(
    drives: &[std::sync::Arc<Drive>],
    bucket: &str,
    from: WalkFrom<'_>,
    quorum: usize,
    each: impl FnMut(&WalkItem, &[usize]) -> bool,
) {
    merged_walk_with(drives, bucket, from, quorum, true, each)
}

/// `merged_walk`; `check_objects: false` passes object keys whose folder a
/// quorum of drives has, unchecked (`Walker::candidates`): `each` must
/// read their meta and skip those without a quorum.
fn merged_walk_with(
    drives: &[std::sync::Arc<Drive>],
    bucket: &str,
    from: WalkFrom<'_>,
    quorum: usize,
    check_objects: bool,
    mut each: impl FnMut(&WalkItem, &[usize]) -> bool,
) {
    let mut walkers: Vec<(usize, std::iter::Peekable<crate::driveio::Walk>)> = drives
        .iter()
        .filter(|d| d.is_online())
        .filter_map(|d| {
            let q = crate::driveio::WalkQuery {
                prefix: from.prefix.to_owned(),
                start_after: from.start_after.map(str::to_owned),
                delimiter: from.delimiter.map(str::to_owned),
                candidates: !check_objects,
            };
            Some((
                d.index,
                d.io().walk(&d.bucket_dir(bucket).ok()?, &q).peekable(),
            ))
        })
        .collect();
    while let Some(min) = walkers
        .iter_mut()
        .filter_map(|(_, w)| w.peek().cloned())
        .min()
    {
        let mut holders = Vec::new();
        for (idx, w) in walkers.iter_mut() {
            if w.peek() == Some(&min) {
                w.next();
                holders.push(*idx);
            }
        }
        if holders.len() >= quorum && !each(&min, &holders) {
            return;
        }
    }
}

/// What a listing returns per key.
#[derive(Clone, Copy)]
struct Listed {
    /// Each key's info as a quorum agrees on it (else the key alone).
    info: bool,
    /// The bucket may hold delete markers: a common prefix is shown only
    /// if a key below it is live.
    markers: bool,
}

fn list_blocking(
    drives: &[std::sync::Arc<Drive>],
    bucket: &str,
    opts: ListOptions,
    quorum: usize,
    how: Listed,
) -> ObjectResult<ListPage> {
    let delimiter = opts.delimiter.clone().filter(|d| !d.is_empty());
    let (prefix, start_after) = (opts.prefix.clone(), opts.start_after.clone());
    let from = WalkFrom {
        prefix: &prefix,
        start_after: start_after.as_deref(),
        delimiter: delimiter.as_deref(),
    };
    // With metadata, each key's meta is read from its holders until a read
    // quorum agrees (`quorum_info`), which a folder without `cairn.meta`
    // never reaches: the walk need not stat `cairn.meta` on every drive
    // first. Not when another delimiter could roll an unchecked key up
    // into a common prefix without reading it.
    let check = !how.info || delimiter.as_deref().is_some_and(|d| d != "/");
    let mut collector = ListCollector::new(opts);
    if how.markers {
        collector = collector.live_prefixes();
    }
    merged_walk_with(drives, bucket, from, quorum, check, |item, holders| {
        let push = match item {
            WalkItem::Prefix(p) => {
                // Rolled up by the walker: fed as a key inside the prefix
                // so the collector records the common prefix.
                collector.push(p, || {
                    (!how.markers || has_live_key(drives, bucket, p, quorum))
                        .then(|| key_only(bucket, p))
                })
            }
            WalkItem::Object(key) => collector.push(key, || {
                if how.info {
                    quorum_info(drives, holders, bucket, key, quorum)
                } else {
                    Some(key_only(bucket, key))
                }
            }),
        };
        push != Push::Full
    });
    Ok(collector.finish())
}

/// Does a key below `prefix` have a live latest version (not a delete
/// marker)? Walks until the first one.
fn has_live_key(
    drives: &[std::sync::Arc<Drive>],
    bucket: &str,
    prefix: &str,
    quorum: usize,
) -> bool {
    let mut live = false;
    let from = WalkFrom {
        prefix,
        start_after: None,
        delimiter: None,
    };
    merged_walk(drives, bucket, from, quorum, |item, holders| {
        if let WalkItem::Object(key) = item {
            live = quorum_info(drives, holders, bucket, key, quorum).is_some();
        }
        !live
    });
    live
}

/// The latest version of a listed key as a read quorum of its holders
/// agrees on it: a drive that missed an overwrite must not show its stale
/// size or ETag. Stops reading as soon as one version has the quorum.
fn quorum_info(
    drives: &[std::sync::Arc<Drive>],
    holders: &[usize],
    bucket: &str,
    key: &str,
    quorum: usize,
) -> Option<cairn_api::ObjectInfo> {
    let mut seen: Vec<(crate::meta::VersionMeta, usize)> = Vec::new();
    for d in holders.iter().filter_map(|&i| drives.get(i)) {
        let Ok(m) = d
            .object_dir(bucket, key)
            .map_err(DriveError::from)
            .and_then(|dir| d.read_meta_at(&dir))
        else {
            continue;
        };
        let Some(v) = m.versions.into_iter().next() else {
            continue;
        };
        match seen.iter_mut().find(|(s, _)| s.identity() == v.identity()) {
            Some((_, c)) => *c += 1,
            None => seen.push((v, 1)),
        }
        if let Some((v, _)) = seen.iter().find(|(_, c)| *c >= quorum) {
            // a key whose current version is a delete marker is not listed
            return (!v.attrs.delete_marker).then(|| v.to_info(bucket, key));
        }
    }
    // No version has a quorum (drives mid-commit or lost): not listed.
    None
}

fn key_only(bucket: &str, key: &str) -> cairn_api::ObjectInfo {
    cairn_api::ObjectInfo {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
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
    }
}
