//! Following etcd: the namespace's bucket records and live sites are read
//! once, then kept by one watch of the federation's prefix from the
//! revision after that read (so nothing between the two is missed; an
//! event seen twice only puts the same value again). A change of a
//! shared configuration record bumps the config counter (config.rs).
//! The watch failing (etcd gone, or the revision compacted) marks etcd
//! unhealthy; the copy serves meanwhile, and everything is read again
//! once etcd answers, the configuration included.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::EtcdError;
use crate::namespace::{Namespace, live_site};
use crate::records::{BucketRecord, SiteRecord, parse};

/// Pause between attempts while etcd is gone.
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl Namespace {
    /// Reads and then watches etcd until the process ends.
    pub(crate) async fn follow(&self) {
        loop {
            let e = match self.refresh().await {
                Ok(revision) => {
                    if !self.healthy.swap(true, Ordering::SeqCst) {
                        tracing::info!(revision, "etcd reachable: namespace read, watching it");
                    }
                    self.config_changed.send_modify(|n| *n = n.wrapping_add(1));
                    self.watch_from(revision.saturating_add(1)).await
                }
                Err(e) => e,
            };
            if self.healthy.swap(false, Ordering::SeqCst) {
                tracing::error!(error = %e, "etcd unreachable: serving from the last copy of the namespace");
            }
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }

    /// Reads the bucket records and the live sites again; the revision
    /// of the first read.
    pub async fn refresh(&self) -> Result<i64, EtcdError> {
        let (buckets, revision) = self.etcd.list_at(&self.keys.buckets()).await?;
        let sites = self.etcd.list(&self.keys.sites()).await?;
        let buckets = buckets
            .into_iter()
            .filter_map(|(k, v)| Some((self.keys.bucket_of(&k)?, bucket_record(&k, &v)?)))
            .collect();
        let sites = sites
            .into_iter()
            .filter_map(|(k, v)| {
                let name = self.keys.site_of(&k)?;
                Some((name, live_site(&parse::<SiteRecord>(&k, &v).ok()?)?))
            })
            .collect();
        *self.buckets.write() = buckets;
        *self.sites.write() = sites;
        Ok(revision)
    }

    /// Applies the prefix's changes from `revision` on, until the watch
    /// ends; why it ended.
    async fn watch_from(&self, revision: i64) -> EtcdError {
        let prefix = format!("{}/", self.keys.prefix.as_str());
        let mut stream = match self.etcd.watch(&prefix, revision).await {
            Ok(s) => s,
            Err(e) => return e,
        };
        loop {
            let resp = match stream.message().await {
                Ok(Some(r)) => r,
                Ok(None) => return EtcdError::WatchEnded("the stream closed".into()),
                Err(e) => return e.into(),
            };
            if resp.canceled() {
                return EtcdError::WatchEnded(format!(
                    "canceled ({}; compacted at {})",
                    resp.cancel_reason(),
                    resp.compact_revision()
                ));
            }
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                // a delete event's key-value carries version 0 (etcd
                // sets only the key and revision); telling them apart
                // this way never panics on an event type etcd might add
                let value = (kv.version() != 0).then(|| kv.value());
                self.apply(kv.key(), value);
            }
        }
    }

    /// One key's new value (`None`: deleted).
    fn apply(&self, key: &[u8], value: Option<&[u8]>) {
        if let Some(bucket) = self.keys.bucket_of(key) {
            match value.and_then(|v| bucket_record(key, v)) {
                Some(r) => {
                    self.buckets.write().insert(bucket, r);
                }
                None => {
                    self.buckets.write().remove(&bucket);
                }
            }
        } else if let Some(site) = self.keys.site_of(key) {
            let live = value.and_then(|v| live_site(&parse::<SiteRecord>(key, v).ok()?));
            match live {
                Some(l) => {
                    self.sites.write().insert(site, l);
                }
                None => {
                    tracing::info!(%site, "site left the live list");
                    self.sites.write().remove(&site);
                }
            }
        } else if key.starts_with(self.keys.config().as_bytes()) {
            self.config_changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

fn bucket_record(key: &[u8], value: &[u8]) -> Option<BucketRecord> {
    match parse::<BucketRecord>(key, value) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(error = %e, "bucket record ignored");
            None
        }
    }
}
