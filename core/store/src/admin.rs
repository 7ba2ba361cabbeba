//! `AdminLayer` for the erasure set: drive info, heal, metrics.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cairn_api::ObjectResult;
use cairn_api::admin::{
    AdminLayer, DriveInfo, HealEvent, HealRequest, HealStream, Metric, MetricKind, MetricSample,
    ServerInfo,
};

use crate::set::ErasureSet;
use crate::stats::Stats;

impl crate::drive::Drive {
    /// The drive's size and free bytes (None when they cannot be read).
    pub(crate) fn space(&self) -> (Option<u64>, Option<u64>) {
        match self.io().space(&self.root) {
            Ok(s) => (Some(s.total), Some(s.free)),
            Err(_) => (None, None),
        }
    }
}

impl crate::set::DriveAnswer for DriveInfo {
    fn offline() -> Self {
        DriveInfo {
            set: 0,
            index: usize::MAX,
            path: String::new(),
            state: "offline".into(),
            total_bytes: None,
            free_bytes: None,
        }
    }
}

#[async_trait]
impl AdminLayer for ErasureSet {
    async fn server_info(&self) -> ObjectResult<ServerInfo> {
        let dep = self.deployment_id.clone();
        let drives = self
            .on_drives(move |d| {
                let state = match d.read_format() {
                    Ok(Some(f)) if f.deployment_id != dep => "foreign",
                    Ok(Some(_)) => "online",
                    _ => "offline",
                };
                let (total, free) = if state == "online" {
                    d.space()
                } else {
                    (None, None)
                };
                DriveInfo {
                    set: 0,
                    index: d.index,
                    path: d.root.display().to_string(),
                    state: state.into(),
                    total_bytes: total,
                    free_bytes: free,
                }
            })
            .await;
        // Drives that did not answer come back as placeholders: name them.
        let drives = drives
            .into_iter()
            .zip(&self.drives)
            .map(|(mut i, d)| {
                i.set = self.layout.set_index;
                i.index = d.index;
                i.path = d.root.display().to_string();
                i
            })
            .collect();
        let s = &self.stats;
        Ok(ServerInfo {
            deployment_id: self.deployment_id.clone(),
            data_shards: self.drives.len() - self.parity,
            parity_shards: self.parity,
            drives,
            heal_queue: self.heal_queue.len() as u64,
            objects_healed: Stats::get(&s.objects_healed),
            bitrot_errors: Stats::get(&s.bitrot_errors),
            scanner_cycles: Stats::get(&s.scanner_cycles),
            unrecoverable_reads: Stats::get(&s.unrecoverable_reads),
            sandbox: None,
            nodes: Vec::new(),
        })
    }

    fn heal(self: Arc<Self>, req: HealRequest) -> HealStream {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let summary = self.heal_all(&req, Duration::ZERO, Some(&tx)).await;
            let _ = tx.send(HealEvent::Done { summary }).await;
        });
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|e| (e, rx))
        }))
    }

    async fn kms_status(&self) -> ObjectResult<cairn_api::admin::KmsInfo> {
        self.kms_info().await
    }

    async fn kms_create_key(&self, name: &str) -> ObjectResult<()> {
        self.kms_new_key(name).await
    }

    async fn lifecycle_run(&self) -> ObjectResult<cairn_api::admin::LifecycleSummary> {
        self.run_lifecycle().await
    }

    async fn bucket_worm(&self, bucket: &cairn_api::BucketName) -> ObjectResult<()> {
        self.change_bucket_config(bucket, cairn_api::BucketChange::Worm)
            .await
    }

    async fn kms_rotate(
        &self,
        name: Option<&str>,
    ) -> ObjectResult<cairn_api::admin::RotateSummary> {
        self.rotate_kms_key(name).await
    }

    fn set_scanner(&self, enabled: bool) -> bool {
        self.scanner_enabled
            .store(enabled, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(enabled, "scanner switched by the admin API");
        true
    }

    async fn metrics(&self) -> Vec<Metric> {
        let s = &self.stats;
        let online = self.online_drives();
        let mut out = Vec::new();
        let mut gauge = |name: &'static str, help: &'static str, kind: &str, v: u64| {
            let kind = if kind == "counter" {
                MetricKind::Counter
            } else {
                MetricKind::Gauge
            };
            out.push(Metric::single(name, help, kind, v));
        };
        gauge(
            "cairn_drives_online",
            "Drives whose format is in place.",
            "gauge",
            online as u64,
        );
        gauge(
            "cairn_drives_offline",
            "Drives missing, replaced or unreadable.",
            "gauge",
            (self.drives.len() - online) as u64,
        );
        gauge(
            "cairn_objects_healed_total",
            "Objects whose copies were rebuilt on one or more drives.",
            "counter",
            Stats::get(&s.objects_healed),
        );
        gauge(
            "cairn_heal_drives_rewritten_total",
            "Drive copies rewritten by healing.",
            "counter",
            Stats::get(&s.drives_rewritten),
        );
        gauge(
            "cairn_heal_failures_total",
            "Heals that could not complete.",
            "counter",
            Stats::get(&s.heal_failures),
        );
        gauge(
            "cairn_bitrot_errors_total",
            "Shard blocks whose hash did not match.",
            "counter",
            Stats::get(&s.bitrot_errors),
        );
        gauge(
            "cairn_shard_read_errors_total",
            "Shards a read could not use.",
            "counter",
            Stats::get(&s.shard_read_errors),
        );
        gauge(
            "cairn_unrecoverable_reads_total",
            "Reads failed on a block its shards could not rebuild (data lost).",
            "counter",
            Stats::get(&s.unrecoverable_reads),
        );
        gauge(
            "cairn_heal_queue_length",
            "Objects waiting for or being healed.",
            "gauge",
            self.heal_queue.len() as u64,
        );
        gauge(
            "cairn_heal_missed_writes",
            "Objects written while some of their drives were offline, healed when those answer.",
            "gauge",
            self.missed.len() as u64,
        );
        gauge(
            "cairn_scanner_objects_total",
            "Objects the background scanner visited.",
            "counter",
            Stats::get(&s.scanner_objects),
        );
        gauge(
            "cairn_scanner_cycles_total",
            "Completed scanner cycles.",
            "counter",
            Stats::get(&s.scanner_cycles),
        );
        gauge(
            "cairn_scanner_enabled",
            "1 while the scanner runs, 0 while paused.",
            "gauge",
            u64::from(
                self.scanner_enabled
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
        );
        out.extend(self.drive_metrics().await);
        out.extend(bucket_metrics(&s.bucket_usage));
        out.extend(self.outbox_metrics());
        out
    }
}

impl ErasureSet {
    /// Each drive's state and space (statvfs on blocking threads; a drive
    /// marked unresponsive is not asked and shows offline), asked at most
    /// once a second.
    async fn drive_metrics(&self) -> Vec<Metric> {
        const FRESH: Duration = Duration::from_secs(1);
        if let Some((at, m)) = self.stats.drive_space.lock().as_ref()
            && at.elapsed() < FRESH
        {
            return m.clone();
        }
        let m = self.ask_drive_metrics().await;
        *self.stats.drive_space.lock() = Some((std::time::Instant::now(), m.clone()));
        m
    }

    async fn ask_drive_metrics(&self) -> Vec<Metric> {
        let drives = match self.server_info().await {
            Ok(info) => info.drives,
            Err(_) => return Vec::new(),
        };
        let labels = |d: &DriveInfo| vec![("drive", d.index.to_string()), ("path", d.path.clone())];
        let family = |name, help, value: &dyn Fn(&DriveInfo) -> Option<u64>| Metric {
            name,
            help,
            kind: MetricKind::Gauge,
            samples: drives
                .iter()
                .filter_map(|d| {
                    Some(MetricSample {
                        labels: labels(d),
                        value: value(d)?,
                    })
                })
                .collect(),
        };
        vec![
            family(
                "cairn_drive_online",
                "1 if the drive holds this deployment's format and answers, else 0.",
                &|d| Some(u64::from(d.state == "online")),
            ),
            family(
                "cairn_drive_total_bytes",
                "Size of the drive's file system.",
                &|d| d.total_bytes,
            ),
            family(
                "cairn_drive_free_bytes",
                "Space left on the drive's file system for Cairn.",
                &|d| d.free_bytes,
            ),
            family(
                "cairn_drive_used_bytes",
                "Space in use on the drive's file system (total - free).",
                &|d| Some(d.total_bytes?.saturating_sub(d.free_bytes?)),
            ),
        ]
    }
}

/// Each bucket's objects and bytes as the scanner last counted them
/// (nothing before its first count).
fn bucket_metrics(cache: &crate::usage::UsageCache) -> Vec<Metric> {
    let Some(usage) = cache.get() else {
        return Vec::new();
    };
    let family = |name, help, value: fn(&crate::usage::BucketUsage) -> u64| Metric {
        name,
        help,
        kind: MetricKind::Gauge,
        samples: usage
            .iter()
            .map(|(b, u)| MetricSample {
                labels: vec![("bucket", b.clone())],
                value: value(u),
            })
            .collect(),
    };
    vec![
        family(
            "cairn_bucket_objects",
            "Current objects in the bucket, as the scanner last counted them.",
            |u| u.objects,
        ),
        family(
            "cairn_bucket_usage_bytes",
            "Bytes of the bucket's current objects, as the scanner last counted them.",
            |u| u.bytes,
        ),
    ]
}
