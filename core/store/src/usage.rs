//! Per-bucket usage: objects and bytes of the current versions (what a
//! listing shows), counted by the background scanner once per cycle. A
//! metrics scrape reads the last count; it never walks the store.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use cairn_api::{BucketName, ListOptions};

use crate::set::ErasureSet;

/// One bucket's usage at the end of the last count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketUsage {
    pub objects: u64,
    pub bytes: u64,
}

/// The last count of every bucket (`None` until the scanner has counted
/// once: no scanner, or its first cycle still runs).
#[derive(Default)]
pub struct UsageCache(parking_lot::Mutex<Option<BTreeMap<String, BucketUsage>>>);

impl UsageCache {
    pub fn get(&self) -> Option<BTreeMap<String, BucketUsage>> {
        self.0.lock().clone()
    }

    fn previous(&self, bucket: &str) -> Option<BucketUsage> {
        self.0.lock().as_ref().and_then(|m| m.get(bucket).copied())
    }

    fn publish(&self, usage: BTreeMap<String, BucketUsage>) {
        *self.0.lock() = Some(usage);
    }
}

/// Keys listed per page of the count.
const PAGE: usize = 1000;

impl ErasureSet {
    /// Counts every bucket's current objects and bytes from their
    /// metadata (a listing, no shard is read) and publishes the result.
    /// Paced like the scanner: `pause` after each page, waiting while the
    /// scanner is paused. A bucket whose listing fails keeps its last
    /// count.
    pub(crate) async fn count_usage(&self, pause: Duration) {
        let buckets = match self.list_buckets_impl().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "usage count: cannot list the buckets");
                return;
            }
        };
        let mut usage = BTreeMap::new();
        for b in buckets {
            let Ok(bucket) = BucketName::new(b.name.clone()) else {
                continue;
            };
            match self.count_bucket(&bucket, pause).await {
                Ok(u) => {
                    usage.insert(b.name, u);
                }
                Err(e) => {
                    tracing::warn!(bucket = %b.name, error = %e, "usage count: listing failed; keeping the last count");
                    if let Some(u) = self.stats.bucket_usage.previous(&b.name) {
                        usage.insert(b.name, u);
                    }
                }
            }
        }
        self.stats.bucket_usage.publish(usage);
    }

    async fn count_bucket(
        &self,
        bucket: &BucketName,
        pause: Duration,
    ) -> cairn_api::ObjectResult<BucketUsage> {
        let mut u = BucketUsage::default();
        let mut after: Option<String> = None;
        loop {
            while !self.scanner_enabled.load(Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let page = self
                .list_objects_impl(
                    bucket,
                    ListOptions {
                        start_after: after.clone(),
                        max_keys: PAGE,
                        ..Default::default()
                    },
                )
                .await?;
            u.objects += page.objects.len() as u64;
            u.bytes = page
                .objects
                .iter()
                .fold(u.bytes, |sum, o| sum.saturating_add(o.size));
            let (true, Some(next)) = (page.is_truncated, page.next_marker) else {
                return Ok(u);
            };
            after = Some(next);
            tokio::time::sleep(pause).await;
        }
    }
}
