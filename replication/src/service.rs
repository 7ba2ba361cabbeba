//! The replication service: targets, the dispatcher and the workers.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use cairn_api::notify::{EventName, Outbox, OutboxEntry, RecordKind};
use cairn_api::replication::{
    ReplicationAdmin, ReplicationReport, ReplicationStatus, ResyncReport, TargetInfo, TargetReport,
    TargetSpec,
};
use cairn_api::{
    BucketName, ConfigDir, ConfigStore, ObjectError, ObjectKey, ObjectLayer, ObjectResult,
};
use tokio::sync::mpsc;

use crate::copy::Task;
use crate::resync::Resync;
use crate::target::Target;

/// Records asked of the outbox at a time.
const BATCH: usize = 1024;
/// Copies to one target at a time: its lanes, each with its worker; the
/// versions of one key all go through one lane, in order.
const LANES: usize = 4;
/// Tasks queued per lane (more wait in the outbox).
const QUEUE: usize = 64;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long the dispatcher sleeps when nobody wakes it.
const IDLE: Duration = Duration::from_secs(2);

/// What the service works with.
pub struct ServiceConfig {
    /// The store: versions are read from it and their status set.
    pub layer: Arc<dyn ObjectLayer>,
    /// The store's outbox (its replication records).
    pub outbox: Arc<dyn Outbox>,
    /// Where targets are kept.
    pub store: Arc<dyn ConfigStore>,
}

/// One task for one target.
pub(crate) struct Job {
    entry: Arc<OutboxEntry>,
    arn: String,
    rule: String,
    origin: Origin,
}

/// Who is told when a task landed.
enum Origin {
    /// The dispatcher (the record leaves the outbox once every target has it).
    Outbox,
    /// A resync, by the task's number in it.
    Resync(Arc<Resync>, u64),
}

/// A task's end, reported by a worker.
struct Done {
    id: String,
    arn: String,
}

/// A target with its lanes' queues.
struct Running {
    target: Arc<Target>,
    lanes: Vec<mpsc::Sender<Job>>,
}

impl Running {
    /// The queue of the lane `key` goes through.
    fn lane(&self, key: &str) -> Option<&mpsc::Sender<Job>> {
        use std::hash::{BuildHasher as _, BuildHasherDefault};
        let h = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(key);
        self.lanes
            .get(usize::try_from(h % self.lanes.len().max(1) as u64).unwrap_or(0))
    }
}

pub struct ReplicationService {
    /// Itself, for the tasks it starts.
    me: Weak<Self>,
    pub(crate) layer: Arc<dyn ObjectLayer>,
    outbox: Arc<dyn Outbox>,
    store: Arc<dyn ConfigStore>,
    /// By (source bucket, destination ARN).
    targets: RwLock<HashMap<(String, String), Running>>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Done>>,
    wake: tokio::sync::Notify,
    /// The last resync of each (source bucket, destination ARN).
    resyncs: Mutex<HashMap<(String, String), Arc<Resync>>>,
}

fn key_of(bucket: &str, arn: &str) -> (String, String) {
    (bucket.to_owned(), arn.to_owned())
}

/// Whether a record is about a new version (its status is tracked).
fn creates(e: EventName) -> bool {
    matches!(
        e,
        EventName::Put | EventName::Post | EventName::Copy | EventName::CompleteMultipartUpload
    )
}

impl ReplicationService {
    /// The bucket's rules that send to `arn`, once `arn` is known to be
    /// one of the bucket's targets (InvalidArgument when it is not).
    async fn rules_to(
        &self,
        bucket: &str,
        arn: &str,
    ) -> ObjectResult<Vec<cairn_api::replication::ReplicationRule>> {
        if !self.has_target(bucket, arn) {
            return Err(ObjectError::InvalidArgument {
                message: format!("{arn} is not a replication target of {bucket}"),
            });
        }
        let b = BucketName::new(bucket.to_owned())?;
        let cfg = self.layer.get_bucket_config(&b).await?;
        Ok(cfg
            .replication
            .map(|r| {
                r.rules
                    .into_iter()
                    .filter(|x| x.destination == arn)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Loads the stored targets; `run` starts delivery.
    pub async fn load(cfg: ServiceConfig) -> ObjectResult<Arc<Self>> {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let s = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            layer: cfg.layer,
            outbox: cfg.outbox,
            store: cfg.store,
            targets: RwLock::new(HashMap::new()),
            done_tx,
            done_rx: tokio::sync::Mutex::new(done_rx),
            wake: tokio::sync::Notify::new(),
            resyncs: Mutex::new(HashMap::new()),
        });
        for (name, body) in s.store.config_list(ConfigDir::ReplicationTargets).await? {
            match serde_json::from_slice::<TargetSpec>(&body).map_err(|e| e.to_string()) {
                Ok(spec) => match Target::new(spec) {
                    Ok(t) => s.install(t),
                    Err(e) => {
                        tracing::error!(target_record = %name.replace('\n', " "), error = %e, "replication target left out")
                    }
                },
                Err(e) => {
                    tracing::error!(target_record = %name.replace('\n', " "), error = %e, "replication target record does not decode; left out")
                }
            }
        }
        for saved in crate::resync::load(s.store.as_ref()).await? {
            let k = key_of(&saved.bucket, &saved.arn);
            s.resyncs_mut().insert(k, Resync::new(saved));
        }
        Ok(s)
    }

    fn resyncs_mut(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<Resync>>> {
        self.resyncs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<(String, String), Running>> {
        self.targets.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts a target in service (replacing one for the same bucket and
    /// destination: the old worker finishes its queue and ends).
    fn install(&self, t: Target) {
        let target = Arc::new(t);
        tracing::info!(bucket = %target.spec.bucket, arn = %target.spec.arn, endpoint = %target.spec.endpoint, "replication target ready");
        let lanes = (0..LANES)
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(worker(
                    self.layer.clone(),
                    self.done_tx.clone(),
                    target.clone(),
                    rx,
                ));
                tx
            })
            .collect();
        let k = key_of(&target.spec.bucket, &target.spec.arn);
        self.targets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(k, Running { target, lanes });
        self.wake.notify_one();
    }

    /// Delivers the outbox's replication records until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        // resyncs a restart interrupted go on
        let interrupted: Vec<Arc<Resync>> = self
            .resyncs_mut()
            .values()
            .filter(|r| r.running())
            .cloned()
            .collect();
        for r in interrupted {
            let s = r.saved();
            tracing::info!(bucket = %s.bucket, arn = %s.arn, after = ?s.after, "resync resumed");
            tokio::spawn(crate::resync::run(self.clone(), r));
        }
        let mut done_rx = self.done_rx.lock().await;
        // per record: the destinations whose task is queued or running
        let mut queued: HashMap<String, HashSet<String>> = HashMap::new();
        // per record: the destinations that have it
        let mut landed: HashMap<String, HashSet<String>> = HashMap::new();
        loop {
            while let Ok(d) = done_rx.try_recv() {
                if let Some(q) = queued.get_mut(&d.id) {
                    q.remove(&d.arn);
                }
                landed.entry(d.id).or_default().insert(d.arn);
            }
            let batch = match self
                .outbox
                .pending_of(RecordKind::Replication, None, BATCH)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "the replication outbox cannot be read");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let ids: HashSet<&str> = batch.iter().map(|e| e.id.as_str()).collect();
            queued.retain(|id, q| ids.contains(id.as_str()) || !q.is_empty());
            landed.retain(|id, _| ids.contains(id.as_str()));
            for entry in batch {
                let entry = Arc::new(entry);
                let have = landed.entry(entry.id.clone()).or_default();
                let busy = queued.entry(entry.id.clone()).or_default();
                let mut all = true;
                for d in &entry.record.targets {
                    if have.contains(&d.arn) {
                        continue;
                    }
                    all = false;
                    if busy.contains(&d.arn) {
                        continue;
                    }
                    let queue = self
                        .read()
                        .get(&key_of(&entry.record.bucket, &d.arn))
                        .and_then(|r| r.lane(&entry.record.key).cloned());
                    let Some(queue) = queue else {
                        tracing::warn!(bucket = %entry.record.bucket, key = %entry.record.key, arn = %d.arn,
                            "replication task for a target this server does not have: dropped");
                        have.insert(d.arn.clone());
                        continue;
                    };
                    let job = Job {
                        entry: entry.clone(),
                        arn: d.arn.clone(),
                        rule: d.configuration_id.clone(),
                        origin: Origin::Outbox,
                    };
                    if queue.try_send(job).is_ok() {
                        busy.insert(d.arn.clone());
                    }
                }
                if all || entry.record.targets.iter().all(|d| have.contains(&d.arn)) {
                    self.finish(&entry).await;
                    landed.remove(&entry.id);
                    queued.remove(&entry.id);
                }
            }
            tokio::select! {
                d = done_rx.recv() => {
                    if let Some(d) = d {
                        if let Some(q) = queued.get_mut(&d.id) {
                            q.remove(&d.arn);
                        }
                        landed.entry(d.id).or_default().insert(d.arn);
                    }
                }
                () = self.outbox.wait_new(IDLE) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    /// Every destination has the record: the version is COMPLETED and the
    /// record leaves the outbox.
    async fn finish(&self, entry: &OutboxEntry) {
        let r = &entry.record;
        if creates(r.event)
            && let (Ok(b), Ok(k)) = (
                BucketName::new(r.bucket.clone()),
                ObjectKey::new(r.key.clone()),
            )
            && let Err(e) = self
                .layer
                .set_replication_status(&b, &k, r.version_id.clone(), ReplicationStatus::Completed)
                .await
        {
            // the record stays: the status is set when it is tried again
            tracing::warn!(bucket = %r.bucket, key = %r.key, error = %e, "replication status not recorded");
            return;
        }
        if let Err(e) = self.outbox.delivered(&entry.id).await {
            tracing::error!(error = %e, record = %entry.id, "a replicated record could not be removed from the outbox");
        }
    }

    /// Hands a resync's version to the target's lane for its key (waits
    /// while the lane is full).
    pub(crate) async fn send_resync(
        &self,
        run: &Arc<Resync>,
        seq: u64,
        entry: OutboxEntry,
        rule: String,
    ) -> Result<(), String> {
        let (bucket, arn) = {
            let d = &entry.record;
            (d.bucket.clone(), d.targets.first().map(|t| t.arn.clone()))
        };
        let arn = arn.unwrap_or_default();
        let queue = self
            .read()
            .get(&key_of(&bucket, &arn))
            .and_then(|r| r.lane(&entry.record.key).cloned());
        let gone = || format!("the target {arn} of {bucket} was removed");
        let queue = queue.ok_or_else(gone)?;
        let job = Job {
            entry: Arc::new(entry),
            arn: arn.clone(),
            rule,
            origin: Origin::Resync(run.clone(), seq),
        };
        queue.send(job).await.map_err(|_| gone())
    }

    pub(crate) async fn save_resync(&self, saved: &crate::resync::Saved) -> ObjectResult<()> {
        let body = serde_json::to_vec(saved).map_err(ObjectError::internal)?;
        self.store
            .config_put(
                ConfigDir::ReplicationResync,
                &crate::resync::record_name(&saved.bucket, &saved.arn),
                Some(body),
            )
            .await
    }

    /// Records waiting per destination of `bucket`: count and oldest
    /// mod time (ns).
    async fn backlog(&self, bucket: &str) -> ObjectResult<HashMap<String, (u64, i128)>> {
        let mut out: HashMap<String, (u64, i128)> = HashMap::new();
        for e in self
            .outbox
            .pending_of(RecordKind::Replication, None, usize::MAX)
            .await?
        {
            if e.record.bucket != bucket {
                continue;
            }
            for d in &e.record.targets {
                let slot = out.entry(d.arn.clone()).or_insert((0, i128::MAX));
                slot.0 += 1;
                slot.1 = slot.1.min(e.record.mod_time);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ReplicationAdmin for ReplicationService {
    async fn add_target(&self, spec: TargetSpec) -> ObjectResult<TargetInfo> {
        let t = Target::new(spec)?;
        t.probe().await?;
        let body = serde_json::to_vec(&t.spec).map_err(ObjectError::internal)?;
        self.store
            .config_put(
                ConfigDir::ReplicationTargets,
                &t.spec.record_name(),
                Some(body),
            )
            .await?;
        let info = t.spec.info();
        self.install(t);
        Ok(info)
    }

    async fn list_targets(&self, bucket: &str) -> ObjectResult<Vec<TargetInfo>> {
        let mut out: Vec<TargetInfo> = self
            .read()
            .values()
            .filter(|r| r.target.spec.bucket == bucket)
            .map(|r| r.target.spec.info())
            .collect();
        out.sort_by(|a, b| a.arn.cmp(&b.arn));
        Ok(out)
    }

    async fn remove_target(&self, bucket: &str, arn: &str) -> ObjectResult<()> {
        let used = !self.rules_to(bucket, arn).await?.is_empty();
        if used {
            return Err(ObjectError::InvalidRequest {
                message: format!(
                    "a replication rule of {bucket} names {arn}: change the rules first"
                ),
            });
        }
        self.store
            .config_put(
                ConfigDir::ReplicationTargets,
                &cairn_api::replication::record_name(bucket, arn),
                None,
            )
            .await?;
        self.targets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key_of(bucket, arn));
        let resync = self.resyncs_mut().remove(&key_of(bucket, arn));
        if let Some(r) = resync {
            r.cancel();
            self.store
                .config_put(
                    ConfigDir::ReplicationResync,
                    &crate::resync::record_name(bucket, arn),
                    None,
                )
                .await?;
        }
        Ok(())
    }

    fn has_target(&self, bucket: &str, arn: &str) -> bool {
        self.read().contains_key(&key_of(bucket, arn))
    }

    async fn status(&self, bucket: &str) -> ObjectResult<ReplicationReport> {
        let waiting = self.backlog(bucket).await?;
        let resyncs = self.resyncs_mut().clone();
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let mut targets: Vec<TargetReport> = self
            .read()
            .values()
            .filter(|r| r.target.spec.bucket == bucket)
            .map(|r| {
                let t = &r.target;
                let (backlog, oldest) = waiting.get(&t.spec.arn).copied().unwrap_or((0, now));
                TargetReport {
                    arn: t.spec.arn.clone(),
                    endpoint: t.spec.endpoint.clone(),
                    backlog,
                    lag_secs: u64::try_from((now - oldest.min(now)) / 1_000_000_000).unwrap_or(0),
                    replicated: t.stats.replicated.load(Ordering::Relaxed),
                    bytes: t.stats.bytes.load(Ordering::Relaxed),
                    failures: t.stats.failures.load(Ordering::Relaxed),
                    last_error: t
                        .stats
                        .last_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone(),
                    resync: resyncs
                        .get(&key_of(bucket, &t.spec.arn))
                        .map(|r| r.report()),
                }
            })
            .collect();
        targets.sort_by(|a, b| a.arn.cmp(&b.arn));
        Ok(ReplicationReport {
            bucket: bucket.to_owned(),
            targets,
        })
    }

    async fn resync(&self, bucket: &str, arn: &str) -> ObjectResult<ResyncReport> {
        let ruled = self.rules_to(bucket, arn).await?.iter().any(|x| x.enabled);
        if !ruled {
            return Err(ObjectError::InvalidRequest {
                message: format!("no enabled replication rule of {bucket} sends to {arn}"),
            });
        }
        let Some(me) = self.me.upgrade() else {
            return Err(ObjectError::internal("the replication service is stopping"));
        };
        let run = Resync::start(bucket, arn);
        self.save_resync(&run.saved()).await?;
        let old = self.resyncs_mut().insert(key_of(bucket, arn), run.clone());
        if let Some(old) = old {
            old.cancel();
        }
        tracing::info!(bucket, arn, id = %run.saved().id, "resync started");
        tokio::spawn(crate::resync::run(me, run.clone()));
        Ok(run.report())
    }
}

/// A target's worker: its tasks one at a time, in order, each retried
/// until it lands.
async fn worker(
    layer: Arc<dyn ObjectLayer>,
    done: mpsc::UnboundedSender<Done>,
    target: Arc<Target>,
    mut rx: mpsc::Receiver<Job>,
) {
    while let Some(job) = rx.recv().await {
        let r = &job.entry.record;
        let storage_class = storage_class(&layer, r, &job.rule).await;
        let mut wait = BACKOFF_MIN;
        let mut marked = false;
        loop {
            let task = Task {
                layer: &layer,
                target: &target,
                record: r,
                storage_class: storage_class.clone(),
            };
            match task.run().await {
                Ok(bytes) => {
                    target.stats.done(bytes);
                    tracing::debug!(bucket = %r.bucket, key = %r.key, arn = %job.arn, bytes, "replicated");
                    break;
                }
                Err(e) => {
                    target.stats.failed(&e.to_string());
                    tracing::warn!(bucket = %r.bucket, key = %r.key, arn = %job.arn, error = %e, retry_in = ?wait,
                            "replication failed");
                    if !marked && creates(r.event) {
                        marked = true;
                        if let (Ok(b), Ok(k)) = (
                            BucketName::new(r.bucket.clone()),
                            ObjectKey::new(r.key.clone()),
                        ) {
                            let _ = layer
                                .set_replication_status(
                                    &b,
                                    &k,
                                    r.version_id.clone(),
                                    ReplicationStatus::Failed,
                                )
                                .await;
                        }
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(BACKOFF_MAX);
                }
            }
        }
        match job.origin {
            Origin::Outbox => {
                let _ = done.send(Done {
                    id: job.entry.id.clone(),
                    arn: job.arn,
                });
            }
            Origin::Resync(run, seq) => run.landed(seq),
        }
    }
}

/// The storage class the record's rule asks for.
async fn storage_class(
    layer: &Arc<dyn ObjectLayer>,
    r: &cairn_api::notify::OutboxRecord,
    rule: &str,
) -> Option<String> {
    let b = BucketName::new(r.bucket.clone()).ok()?;
    let cfg = layer.get_bucket_config(&b).await.ok()?;
    cfg.replication?
        .rules
        .into_iter()
        .find(|x| x.id == rule)?
        .storage_class
}
