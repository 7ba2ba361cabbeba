//! Walking everything: heal of a bucket/prefix (admin), the background
//! scanner, the drive monitor that takes an empty replacement drive into the
//! set, and cleanup of stale tmp files and abandoned uploads.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use cairn_api::admin::{HealEvent, HealRequest, HealSummary};
use cairn_api::{BucketName, ListOptions, ObjectKey, seg};
use futures::StreamExt as _;
use tokio::sync::mpsc;

use crate::set::ErasureSet;

/// Objects healed at once by an admin heal (the drive monitor too).
const HEAL_PARALLEL: usize = 16;

/// How the background scanner behaves.
#[derive(Debug, Clone)]
pub struct ScannerConfig {
    /// Pause after each object: bounds the scanner's share of the drives.
    pub pause_per_object: Duration,
    /// Pause between full cycles.
    pub cycle_interval: Duration,
    /// Every Nth cycle re-hashes every shard (0: never).
    pub deep_every: u64,
    /// Tmp files and multipart uploads older than this are removed.
    pub stale_after: Duration,
    /// Most shard bytes per second a deep scan reads (0: no limit): the
    /// scanner's share of the drives stays small next to client traffic.
    pub deep_bytes_per_sec: u64,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        Self {
            pause_per_object: Duration::from_millis(2),
            cycle_interval: Duration::from_secs(300),
            deep_every: 12,
            stale_after: Duration::from_secs(24 * 3600),
            deep_bytes_per_sec: 64 * 1024 * 1024,
        }
    }
}

impl ErasureSet {
    /// Heals every object a request names, reporting progress on `events`.
    pub async fn heal_all(
        &self,
        req: &HealRequest,
        pause: Duration,
        events: Option<&mpsc::Sender<HealEvent>>,
    ) -> HealSummary {
        self.heal_walk(req, pause, events, !pause.is_zero()).await
    }

    /// `heal_all`'s walk. `scanner`: the background scanner's pace (one
    /// object at a time, paused by the scanner switch, progress counted),
    /// whatever its pause, so `--scanner-pause-ms 0` still obeys
    /// `cairn admin scanner off`; else a few objects at a time.
    async fn heal_walk(
        &self,
        req: &HealRequest,
        pause: Duration,
        events: Option<&mpsc::Sender<HealEvent>>,
        scanner: bool,
    ) -> HealSummary {
        let started = Instant::now();
        let mut sum = HealSummary::default();
        self.monitor_drives().await;
        let buckets: Vec<String> = match &req.bucket {
            Some(b) => vec![b.clone()],
            None => match self.list_buckets_impl().await {
                Ok(bs) => bs.into_iter().map(|b| b.name).collect(),
                Err(e) => {
                    send(
                        events,
                        HealEvent::Error {
                            message: e.to_string(),
                        },
                    )
                    .await;
                    Vec::new()
                }
            },
        };
        let mut last_report = Instant::now();
        for b in buckets {
            let Ok(bucket) = BucketName::new(b.clone()) else {
                continue;
            };
            self.heal_bucket_dirs(&bucket).await;
            let mut after: Option<String> = None;
            loop {
                let page = match self
                    .list_keys(
                        &bucket,
                        ListOptions {
                            prefix: req.prefix.clone(),
                            start_after: after.clone(),
                            max_keys: 1000,
                            ..Default::default()
                        },
                    )
                    .await
                {
                    Ok(p) => p,
                    Err(e) => {
                        sum.failed += 1;
                        send(
                            events,
                            HealEvent::Error {
                                message: format!("{b}: {e}"),
                            },
                        )
                        .await;
                        break;
                    }
                };
                // A few objects at a time: one object's heal waits on drive
                // latency, several keep the drives busy. The scanner (with a
                // pause) goes one by one, to stay out of the clients' way.
                let keys: Vec<ObjectKey> = page
                    .objects
                    .iter()
                    .filter_map(|o| ObjectKey::new(o.key.clone()).ok())
                    .collect();
                let parallel = if scanner { 1 } else { HEAL_PARALLEL };
                let bucket_ref = &bucket;
                let mut results = futures::stream::iter(keys.into_iter().map(|key| async move {
                    // A paused scanner waits here, between objects.
                    while scanner && !self.scanner_enabled.load(Relaxed) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    let r = self.heal_object(bucket_ref, &key, req.deep).await;
                    if scanner {
                        // Paced: the pause, or longer if a deep check read
                        // more than the byte budget allows.
                        let rate = self.scan_rate.load(std::sync::atomic::Ordering::Relaxed);
                        let read = r.as_ref().map_or(0, |o| o.bytes_read);
                        let budget = if rate > 0 {
                            Duration::from_secs_f64(read as f64 / rate as f64)
                        } else {
                            Duration::ZERO
                        };
                        tokio::time::sleep(pause.max(budget)).await;
                    }
                    (key, r)
                }))
                .buffer_unordered(parallel);
                while let Some((key, res)) = results.next().await {
                    sum.objects_scanned += 1;
                    if scanner {
                        // Scanner progress, visible while a cycle runs.
                        self.stats.scanner_objects.fetch_add(1, Relaxed);
                    }
                    match res {
                        Ok(out) => {
                            if out.healed_drives > 0 {
                                sum.objects_healed += 1;
                            }
                            sum.drives_rewritten += out.healed_drives as u64;
                            sum.bad_blocks += out.bad_blocks as u64;
                        }
                        Err(e) => {
                            sum.failed += 1;
                            send(
                                events,
                                HealEvent::Error {
                                    message: format!("{b}/{key}: {e}"),
                                },
                            )
                            .await;
                        }
                    }
                    if last_report.elapsed() > Duration::from_millis(200) {
                        last_report = Instant::now();
                        sum.elapsed_ms = started.elapsed().as_millis() as u64;
                        send(
                            events,
                            HealEvent::Progress {
                                summary: sum.clone(),
                                total: None,
                                current: format!("{b}/{key}"),
                            },
                        )
                        .await;
                    }
                }
                if !page.is_truncated {
                    break;
                }
                after = page.next_marker;
            }
        }
        // Healed copies are written without per-object fsyncs; make the
        // whole run durable at once.
        if sum.drives_rewritten > 0 {
            self.on_drives(|d| {
                if let Err(e) = d.sync_fs() {
                    tracing::warn!(drive = %d.root.display(), error = %e, "syncfs after healing");
                }
            })
            .await;
        }
        sum.elapsed_ms = started.elapsed().as_millis() as u64;
        sum
    }

    /// Makes sure every online drive has the bucket's folder.
    async fn heal_bucket_dirs(&self, bucket: &BucketName) {
        let b = bucket.to_string();
        self.on_drives(move |d| {
            if let Ok(dir) = d.bucket_dir(&b)
                && d.is_online()
                && !d.io().is_dir(&dir)
            {
                let _ = d.io().create_dir_all(&dir);
            }
        })
        .await;
    }

    /// Takes an empty folder put in place of a lost drive into the set
    /// (formats it with its position); never touches a foreign drive.
    pub async fn monitor_drives(&self) -> usize {
        self.probe_monitor().await.replaced
    }

    /// One round of the drive monitor: which drives answer, and which
    /// replacement drives of this node it formatted.
    async fn probe_monitor(&self) -> Monitored {
        let _one = self.monitor.lock().await;
        let n = self.drives.len();
        let deployment = self.deployment_id.clone();
        let parity = self.parity;
        let layout = self.layout.clone();
        let res = self
            .probe_drives(move |d| {
                // Answering at all (within the timeout) clears "hung".
                if d.is_online() {
                    return Probe::Online;
                }
                // a replacement drive is taken by its own node's monitor
                if !d.io().node().is_empty() || !d.io().is_dir(&d.root) {
                    return Probe::Offline;
                }
                match d.read_format() {
                    Ok(None) => {}
                    _ => return Probe::Offline,
                }
                let empty = d.io().read_dir(&d.root).is_ok_and(|r| r.is_empty());
                if !empty {
                    tracing::warn!(drive = %d.root.display(), "drive has no format but is not empty; not taking it");
                    return Probe::Offline;
                }
                // the lock went with the old folder: take it on the new one
                if let Err(e) = d.take_lock() {
                    tracing::warn!(drive = %d.root.display(), error = %e, "cannot lock replacement drive; not taking it");
                    return Probe::Offline;
                }
                let f = layout.format(&deployment, n, d.index, parity);
                match d.write_format(&f) {
                    Ok(()) => {
                        tracing::info!(drive = %d.root.display(), index = d.index, "replacement drive formatted; healing will fill it");
                        Probe::Replaced
                    }
                    Err(e) => {
                        tracing::warn!(drive = %d.root.display(), error = %e, "cannot format replacement drive");
                        Probe::Offline
                    }
                }
            })
            .await;
        let bit = |i: usize| 1u64.checked_shl(i as u32).unwrap_or(0);
        Monitored {
            replaced: res.iter().filter(|p| matches!(p, Probe::Replaced)).count(),
            online: res
                .iter()
                .enumerate()
                .filter(|(_, p)| matches!(p, Probe::Online))
                .fold(0, |m, (i, _)| m | bit(i)),
            all: (0..res.len()).fold(0, |m, i| m | bit(i)),
        }
    }

    /// Queues for healing the missed writes whose drives all answer
    /// again (everything, when more were missed than remembered).
    async fn heal_missed(&self, m: &Monitored) {
        let ready = self.missed.ready(m.online, m.all);
        if !ready.objects.is_empty() {
            tracing::info!(
                objects = ready.objects.len(),
                "drives that missed writes answer again: healing them"
            );
        }
        for (b, k) in &ready.objects {
            self.queue_heal(b, k);
        }
        if ready.everything {
            let sum = self
                .heal_all(&HealRequest::default(), Duration::ZERO, None)
                .await;
            tracing::info!(healed = sum.objects_healed, "healed after a long outage");
        }
    }

    /// Removes tmp entries and multipart uploads older than `age`.
    pub async fn clean_stale(&self, age: Duration) {
        self.on_drives(move |d| {
            let io = d.io();
            let old = |p: &std::path::Path| {
                io.stat(p)
                    .ok()
                    .and_then(|m| m.modified)
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|a| a > age)
            };
            let tmp = d.tmp_dir();
            if let Ok(rd) = io.read_dir(&tmp) {
                for p in rd.iter().filter_map(|e| e.path_in(&tmp)) {
                    if old(&p) {
                        let _ = io.remove_any(&p);
                    }
                }
            }
            let root = d.uploads_root();
            if let Ok(buckets) = io.read_dir(&root) {
                for b in buckets {
                    let Ok(bdir) = root.join_str(&b.name.to_string_lossy()) else {
                        continue;
                    };
                    for u in io.read_dir(&bdir).into_iter().flatten() {
                        let Ok(udir) = bdir.join_str(&u.name.to_string_lossy()) else {
                            continue;
                        };
                        if old(&udir.join(seg!("upload.json"))) {
                            tracing::info!(upload = %udir.display(), "removing abandoned multipart upload");
                            let _ = io.remove_dir_all(&udir);
                        }
                    }
                }
            }
        })
        .await;
    }

    /// Starts the background scanner, on a thread of its own
    /// (`background`).
    pub fn start_scanner(self: &Arc<Self>, cfg: ScannerConfig) {
        self.scan_rate
            .store(cfg.deep_bytes_per_sec, std::sync::atomic::Ordering::Relaxed);
        let set = Arc::downgrade(self);
        crate::background::spawn("scanner", move || async move {
            let mut cycle: u64 = 0;
            loop {
                {
                    let Some(set) = set.upgrade() else { return };
                    cycle += 1;
                    let deep = cfg.deep_every > 0 && cycle.is_multiple_of(cfg.deep_every);
                    let sum = set
                        .heal_walk(
                            &HealRequest {
                                bucket: None,
                                prefix: String::new(),
                                deep,
                            },
                            cfg.pause_per_object,
                            None,
                            true,
                        )
                        .await;
                    set.count_usage(cfg.pause_per_object).await;
                    set.clean_stale(cfg.stale_after).await;
                    if let Err(e) = set.run_lifecycle().await {
                        tracing::warn!(error = %e, "lifecycle pass failed");
                    }
                    set.stats.scanner_cycles.fetch_add(1, Relaxed);
                    tracing::info!(
                        cycle,
                        deep,
                        scanned = sum.objects_scanned,
                        healed = sum.objects_healed,
                        failed = sum.failed,
                        "scanner cycle done"
                    );
                }
                tokio::time::sleep(cfg.cycle_interval).await;
            }
        });
    }

    /// Starts the drive monitor: every 5 s it looks at drives that are
    /// offline (or marked unresponsive), takes in an empty replacement
    /// drive and heals everything onto it. Runs with or without the
    /// scanner, on a thread of its own (`background`): its probes never
    /// wait behind client requests for a blocking thread.
    pub fn start_monitor(self: &Arc<Self>) {
        let set = Arc::downgrade(self);
        crate::background::spawn("monitor", move || async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let Some(set) = set.upgrade() else { return };
                let m = set.probe_monitor().await;
                if m.replaced > 0 {
                    let sum = set
                        .heal_all(&HealRequest::default(), Duration::ZERO, None)
                        .await;
                    tracing::info!(healed = sum.objects_healed, "replacement drive filled");
                }
                set.heal_missed(&m).await;
            }
        });
    }
}

/// What one drive answered the monitor.
enum Probe {
    Online,
    /// A replacement drive of this node, formatted now.
    Replaced,
    Offline,
}

impl crate::set::DriveAnswer for Probe {
    fn offline() -> Self {
        Probe::Offline
    }
}

/// One round of the drive monitor.
struct Monitored {
    replaced: usize,
    /// Bit i: drive i answers.
    online: u64,
    /// Bit i for each drive of the set.
    all: u64,
}

async fn send(events: Option<&mpsc::Sender<HealEvent>>, ev: HealEvent) {
    if let Some(tx) = events {
        let _ = tx.send(ev).await;
    }
}
