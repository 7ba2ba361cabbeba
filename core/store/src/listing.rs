//! Listing: every online drive is walked in key order and the walks are
//! merged; a key is listed when a read quorum of drives holds it, so a
//! stale copy on one drive (missed delete) does not resurface.

use cairn_api::list::{ListCollector, Push};
use cairn_api::{BucketName, ListOptions, ListPage, ObjectError, ObjectResult};

use crate::drive::Drive;
use crate::set::ErasureSet;
use crate::walk::{WalkItem, Walker};

impl ErasureSet {
    pub(crate) async fn list_objects_impl(
        &self,
        bucket: &BucketName,
        opts: ListOptions,
    ) -> ObjectResult<ListPage> {
        self.check_bucket(bucket).await?;
        let drives = self.drives.clone();
        let (quorum, _) = self.default_quorums();
        let bucket = bucket.to_string();
        tokio::task::spawn_blocking(move || list_blocking(&drives, &bucket, opts, quorum))
            .await
            .map_err(ObjectError::internal)?
    }
}

fn list_blocking(
    drives: &[std::sync::Arc<Drive>],
    bucket: &str,
    opts: ListOptions,
    quorum: usize,
) -> ObjectResult<ListPage> {
    let delimiter = opts.delimiter.clone().filter(|d| !d.is_empty());
    let mut walkers: Vec<(usize, std::iter::Peekable<Walker>)> = drives
        .iter()
        .filter(|d| d.is_online())
        .map(|d| {
            (
                d.index,
                Walker::new(
                    d.bucket_dir(bucket),
                    &opts.prefix,
                    opts.start_after.as_deref(),
                    delimiter.as_deref(),
                )
                .peekable(),
            )
        })
        .collect();
    let mut collector = ListCollector::new(opts);
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
        if holders.len() < quorum {
            continue;
        }
        let push = match &min {
            WalkItem::Prefix(p) => {
                // Rolled up by the walker: feed it as a key inside the
                // prefix so the collector records the common prefix.
                collector.push(p, || None)
            }
            WalkItem::Object(key) => collector.push(key, || {
                holders.iter().find_map(|&i| {
                    let d = &drives[i];
                    let m = Drive::read_meta_at(&d.object_dir(bucket, key)).ok()?;
                    m.latest().map(|v| v.to_info(bucket, key))
                })
            }),
        };
        if push == Push::Full {
            break;
        }
    }
    Ok(collector.finish())
}
