//! The outbox (issue 22): a record of each event to deliver, written on
//! the set's drives (`.cairn.sys/outbox/<time>-<uuid>.json`, to a write
//! quorum, fsynced with the commit's durability) before the commit it is
//! about becomes visible, and removed once every target has it. So an
//! answered write always has its record on the drives: a process killed
//! right after the answer delivers after its restart.
//!
//! Records of commits this process made are known committed; any other
//! (a previous run's, another node's, a commit that failed) is checked
//! against the key's versions before delivery (`confirm`), and dropped
//! when its commit never happened. Records name their targets (one per
//! matching rule), so a bucket without rules costs nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cairn_api::notify::{
    EventName, Outbox, OutboxEntry, OutboxLimit, OutboxRecord, OutboxStats, RecordKind, WhenFull,
};
use cairn_api::replication::ReplicationStatus;
use cairn_api::{BucketName, ObjectError, ObjectKey, ObjectResult, SafePath, seg};

use crate::drive::{Drive, DriveError};
use crate::meta::VersionMeta;
use crate::set::{ErasureSet, Want, now_nanos};

/// Records kept in memory for delivery; more wait on the drives.
const MEMORY_MAX: usize = 10_000;
/// A record another process wrote is checked once it is this old (its
/// commit may still be running before).
const GRACE: Duration = Duration::from_secs(60);
/// How often the drives are read for records this process does not know.
const SCAN_EVERY: Duration = Duration::from_secs(30);

/// A set's outbox state in this process.
#[derive(Debug)]
pub(crate) struct OutboxState {
    /// Committed records by name, oldest first.
    known: parking_lot::Mutex<BTreeMap<String, OutboxRecord>>,
    /// Records whose commit is running.
    inflight: parking_lot::Mutex<HashSet<String>>,
    /// Records this process wrote whose commit failed: checked at once.
    failed: parking_lot::Mutex<HashSet<String>>,
    /// Records may be on the drives that `known` lacks.
    scan_due: AtomicBool,
    last_scan: parking_lot::Mutex<Option<Instant>>,
    started: i128,
    backlog: AtomicU64,
    limit: parking_lot::Mutex<OutboxLimit>,
    dropped: AtomicU64,
    refused: AtomicU64,
    uncommitted: AtomicU64,
    wake: tokio::sync::Notify,
}

impl Default for OutboxState {
    fn default() -> Self {
        Self {
            known: Default::default(),
            inflight: Default::default(),
            failed: Default::default(),
            scan_due: AtomicBool::new(true),
            last_scan: Default::default(),
            started: now_nanos(),
            backlog: AtomicU64::new(0),
            limit: Default::default(),
            dropped: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            uncommitted: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
        }
    }
}

/// What an event is about, from the version it concerns.
#[derive(Debug, Clone)]
pub(crate) struct Raised {
    pub event: EventName,
    pub version_id: Option<String>,
    pub size: u64,
    pub etag: String,
    pub mod_time: i128,
    /// The version's tags and replication status (what replication
    /// rules match).
    pub tags: cairn_api::Tags,
    pub replication: Option<ReplicationStatus>,
}

impl Raised {
    pub(crate) fn of(event: EventName, v: &VersionMeta) -> Self {
        Self {
            event,
            version_id: v.version_id.clone(),
            size: v.size,
            etag: v.etag.clone(),
            mod_time: v.mod_time,
            tags: v.attrs.tags.clone(),
            replication: v.attrs.replication,
        }
    }

    /// The record of it for `targets`.
    pub(crate) fn record(
        &self,
        kind: RecordKind,
        bucket: &BucketName,
        key: &ObjectKey,
        targets: Vec<cairn_api::notify::Delivery>,
    ) -> OutboxRecord {
        OutboxRecord {
            kind,
            event: self.event,
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: self.version_id.clone(),
            size: self.size,
            etag: self.etag.clone(),
            mod_time: self.mod_time,
            targets,
        }
    }

    /// The same, raised as `event(self.event)` names it.
    pub(crate) fn by(mut self, event: impl Fn(EventName) -> EventName) -> Self {
        self.event = event(self.event);
        self
    }

    /// A removal with no version record left to name (now).
    pub(crate) fn removal(version_id: Option<String>) -> Self {
        Self {
            event: EventName::Delete,
            version_id,
            size: 0,
            etag: String::new(),
            mod_time: now_nanos(),
            tags: Default::default(),
            replication: None,
        }
    }
}

/// A record written before its commit; settled after it.
#[derive(Debug)]
#[must_use = "a noted record is settled after its commit"]
pub(crate) struct Noted {
    /// The event record and the replication task (either, both or none).
    records: Vec<(String, OutboxRecord)>,
    /// What listeners hear once it committed (an event record without
    /// targets; None when nobody subscribes to the store's changes).
    heard: Option<OutboxRecord>,
}

/// How the operation a record is about ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Committed,
    /// Nothing changed: the record goes.
    NotDone,
    /// Missed its quorum: some drives may hold it; the record is checked.
    Unknown,
}

impl Outcome {
    pub(crate) fn of<T>(r: &ObjectResult<T>) -> Self {
        match r {
            Ok(_) => Outcome::Committed,
            Err(ObjectError::Unavailable { .. } | ObjectError::StorageFull { .. }) => {
                Outcome::Unknown
            }
            Err(_) => Outcome::NotDone,
        }
    }
}

fn outbox_dir(d: &Drive) -> SafePath {
    d.sys_dir().join(seg!("outbox"))
}

/// The time a record's name starts with (ns), if it is a record's name.
fn name_time(name: &str) -> Option<i128> {
    let stem = name.strip_suffix(".json")?;
    let (t, id) = stem.split_once('-')?;
    uuid::Uuid::parse_str(id).ok()?;
    t.parse().ok()
}

fn io_err(e: impl std::fmt::Display) -> DriveError {
    DriveError::Io(std::io::Error::other(e.to_string()))
}

impl ErasureSet {
    /// Writes the records of `raised` the bucket's rules want (None: no
    /// rule matches and nobody listens): an event record for its notification rules, a
    /// replication task for its replication rules; call before the
    /// commit becomes visible. A full outbox refuses the write or drops
    /// its oldest record.
    pub(crate) async fn outbox_note(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        raised: Raised,
        durable: bool,
    ) -> ObjectResult<Option<Noted>> {
        // listeners (of this node or, through the relay, of others) hear
        // every committed event, whatever the bucket's rules
        let heard = (self.changes.receiver_count() > 0)
            .then(|| raised.record(RecordKind::Event, bucket, key, Vec::new()));
        let cfg = self.bucket_config(bucket).await?;
        let events = (cfg.notification.as_ref())
            .map(|n| n.deliveries(raised.event, key.as_str()))
            .unwrap_or_default();
        let copies = (cfg.replication.as_ref())
            .map(|r| r.deliveries(raised.event, key.as_str(), &raised.tags, raised.replication))
            .unwrap_or_default();
        let mut records = Vec::new();
        for (kind, targets) in [
            (RecordKind::Event, events),
            (RecordKind::Replication, copies),
        ] {
            if targets.is_empty() {
                continue;
            }
            self.outbox_make_room().await?;
            let record = raised.record(kind, bucket, key, targets);
            let name = format!("{:024}-{}.json", now_nanos(), uuid::Uuid::new_v4());
            records.push((name, record));
        }
        if records.is_empty() {
            return Ok(heard.map(|h| Noted {
                records,
                heard: Some(h),
            }));
        }
        let mut files = Vec::new();
        for (name, record) in &records {
            let body = serde_json::to_vec(record).map_err(ObjectError::internal)?;
            self.outbox.inflight.lock().insert(name.clone());
            files.push((name.clone(), body));
        }
        let res = self
            .on_drives(move |d| -> Result<(), DriveError> {
                d.check_online()?;
                let dir = outbox_dir(d);
                if !d.io().is_dir(&dir) {
                    d.io().create_dir_all(&dir)?;
                }
                for (n, body) in &files {
                    d.write_atomic_with(&dir.join_str(n)?, body, durable)?;
                }
                if durable {
                    d.io().sync_dir(&dir)?;
                }
                Ok(())
            })
            .await;
        let ok = res.iter().filter(|r| r.is_ok()).count();
        let (_, wq) = self.default_quorums();
        if ok < wq {
            for (name, _) in records {
                self.outbox.inflight.lock().remove(&name);
                self.outbox_remove(name).await;
            }
            return Err(self.write_quorum_error(wq, ok));
        }
        self.outbox
            .backlog
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        Ok(Some(Noted { records, heard }))
    }

    /// After the commit of a noted record: delivered when it committed,
    /// removed when nothing changed, checked later when it is unknown.
    pub(crate) async fn outbox_settle(&self, noted: Option<Noted>, outcome: Outcome) {
        let Some(Noted { records, heard }) = noted else {
            return;
        };
        if let Some(event) = heard.filter(|_| outcome == Outcome::Committed) {
            let _ = self
                .changes
                .send(cairn_api::changes::Change::with_event(event));
        }
        let o = &self.outbox;
        let wake = outcome != Outcome::NotDone && !records.is_empty();
        for (name, record) in records {
            o.inflight.lock().remove(&name);
            match outcome {
                Outcome::Committed => {
                    let mut known = o.known.lock();
                    if known.len() < MEMORY_MAX {
                        known.insert(name, record);
                    } else {
                        o.scan_due.store(true, Ordering::Relaxed);
                    }
                }
                Outcome::NotDone => {
                    o.backlog.fetch_sub(1, Ordering::Relaxed);
                    self.outbox_remove(name).await;
                }
                Outcome::Unknown => {
                    o.failed.lock().insert(name);
                    o.scan_due.store(true, Ordering::Relaxed);
                }
            }
        }
        if wake {
            o.wake.notify_waiters();
        }
    }

    /// Notes `raised`, runs `op` (the commit), settles: the hook of every
    /// path that changes an object.
    pub(crate) async fn with_event<T>(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        raised: Raised,
        durable: bool,
        op: impl std::future::Future<Output = ObjectResult<T>>,
    ) -> ObjectResult<T> {
        let noted = self.outbox_note(bucket, key, raised, durable).await?;
        let res = op.await;
        self.outbox_settle(noted, Outcome::of(&res)).await;
        res
    }

    /// Applies the limit before a new record: refuse, or drop the oldest.
    async fn outbox_make_room(&self) -> ObjectResult<()> {
        let o = &self.outbox;
        let limit = *o.limit.lock();
        if o.backlog.load(Ordering::Relaxed) < limit.max_records {
            return Ok(());
        }
        match limit.when_full {
            WhenFull::Refuse => {
                o.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    limit = limit.max_records,
                    "event outbox full: write refused"
                );
                Err(ObjectError::BackendUnavailable {
                    backend: "event outbox",
                    reason: "too many undelivered events",
                })
            }
            WhenFull::DropOldest => {
                let oldest = o.known.lock().pop_first();
                if let Some((name, r)) = oldest {
                    o.dropped.fetch_add(1, Ordering::Relaxed);
                    o.backlog.fetch_sub(1, Ordering::Relaxed);
                    tracing::warn!(bucket = %r.bucket, key = %r.key, event = r.event.as_str(),
                        "event outbox full: oldest event dropped");
                    self.outbox_remove(name).await;
                }
                Ok(())
            }
        }
    }

    /// Removes a record from every drive.
    async fn outbox_remove(&self, name: String) {
        self.on_drives(move |d| {
            if let Ok(p) = outbox_dir(d).join_str(&name) {
                let _ = d.io().remove_file(&p);
            }
        })
        .await;
    }

    pub fn set_outbox_limit(&self, limit: OutboxLimit) {
        *self.outbox.limit.lock() = limit;
    }

    /// Committed records of `kind` after `after`, oldest first (reading
    /// the drives when due).
    pub(crate) async fn outbox_pending(
        &self,
        kind: RecordKind,
        after: Option<&str>,
        max: usize,
    ) -> ObjectResult<Vec<OutboxEntry>> {
        let o = &self.outbox;
        let due = o.scan_due.load(Ordering::Relaxed)
            || o.last_scan.lock().is_none_or(|t| t.elapsed() > SCAN_EVERY);
        if due {
            self.outbox_scan().await?;
        }
        use std::ops::Bound;
        let from = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        Ok(o.known
            .lock()
            .range((from, Bound::Unbounded))
            .filter(|(_, r)| r.kind == kind)
            .take(max)
            .map(|(id, record)| OutboxEntry {
                id: id.clone(),
                record: record.clone(),
            })
            .collect())
    }

    pub(crate) async fn outbox_delivered(&self, name: &str) -> ObjectResult<()> {
        name_time(name).ok_or_else(|| ObjectError::InvalidArgument {
            message: format!("not an outbox record: {name:?}"),
        })?;
        if self.outbox.known.lock().remove(name).is_some() {
            self.outbox.backlog.fetch_sub(1, Ordering::Relaxed);
        }
        self.outbox_remove(name.to_owned()).await;
        Ok(())
    }

    pub(crate) async fn outbox_wait(&self, wait: Duration) {
        let _ = tokio::time::timeout(wait, self.outbox.wake.notified()).await;
    }

    pub(crate) fn outbox_counts(&self) -> OutboxStats {
        let o = &self.outbox;
        OutboxStats {
            pending: o.backlog.load(Ordering::Relaxed),
            dropped: o.dropped.load(Ordering::Relaxed),
            refused: o.refused.load(Ordering::Relaxed),
            uncommitted: o.uncommitted.load(Ordering::Relaxed),
        }
    }

    /// The outbox's counts as metrics (summed over sets by the sets' admin).
    pub(crate) fn outbox_metrics(&self) -> Vec<cairn_api::admin::Metric> {
        use cairn_api::admin::{Metric, MetricKind};
        let c = self.outbox_counts();
        vec![
            Metric::single(
                "cairn_events_pending",
                "Event records on the drives waiting for delivery.",
                MetricKind::Gauge,
                c.pending,
            ),
            Metric::single(
                "cairn_events_dropped_total",
                "Events dropped because the outbox was full (drop-oldest).",
                MetricKind::Counter,
                c.dropped,
            ),
            Metric::single(
                "cairn_events_refused_writes_total",
                "Writes refused because the event outbox was full (refuse).",
                MetricKind::Counter,
                c.refused,
            ),
            Metric::single(
                "cairn_events_uncommitted_total",
                "Event records dropped because their commit never happened.",
                MetricKind::Counter,
                c.uncommitted,
            ),
        ]
    }

    /// Reads the drives' records: those on a read quorum of drives that
    /// this process does not know are read, checked and added (or
    /// dropped when their commit never happened); leftovers of removed
    /// records on too few drives go when every drive answers.
    async fn outbox_scan(&self) -> ObjectResult<()> {
        let o = &self.outbox;
        o.scan_due.store(false, Ordering::Relaxed);
        *o.last_scan.lock() = Some(Instant::now());
        let listed = self
            .on_drives(|d| -> Option<Vec<String>> {
                let entries = match d.io().read_dir(&outbox_dir(d)) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(_) => return None,
                };
                Some(
                    entries
                        .into_iter()
                        .filter_map(|e| e.name.into_string().ok())
                        .filter(|n| name_time(n).is_some())
                        .collect(),
                )
            })
            .await;
        let answered = listed.iter().filter(|l| l.is_some()).count();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for n in listed.into_iter().flatten().flatten() {
            *seen.entry(n).or_default() += 1;
        }
        let (rq, _) = self.default_quorums();
        let all = answered == self.drives.len();
        let now = now_nanos();
        let failed = std::mem::take(&mut *o.failed.lock());
        let mut wanted = Vec::new();
        let mut leftovers = Vec::new();
        for (name, count) in &seen {
            if o.known.lock().contains_key(name) || o.inflight.lock().contains(name) {
                continue;
            }
            if *count < rq {
                if all {
                    leftovers.push(name.clone());
                }
                continue;
            }
            let t = name_time(name).unwrap_or(now);
            let settled = t < o.started
                || failed.contains(name)
                || now.saturating_sub(t) > GRACE.as_nanos() as i128;
            if settled && wanted.len() + o.known.lock().len() < MEMORY_MAX {
                wanted.push(name.clone());
            } else if settled {
                o.scan_due.store(true, Ordering::Relaxed);
            }
        }
        o.backlog.store(seen.len() as u64, Ordering::Relaxed);
        for name in leftovers {
            self.outbox_remove(name).await;
        }
        let records = self.outbox_read(wanted).await;
        // the last record of each key: a removed version's record is
        // committed when a later record of its key exists
        let mut last: HashMap<(&str, &str), &str> = HashMap::new();
        for (name, r) in &records {
            last.insert((r.bucket.as_str(), r.key.as_str()), name.as_str());
        }
        let mut add = Vec::new();
        let mut drop = Vec::new();
        for (name, r) in &records {
            let later = last
                .get(&(r.bucket.as_str(), r.key.as_str()))
                .is_some_and(|l| *l != name.as_str());
            match self.confirm(r, later).await {
                Some(true) => add.push((name.clone(), r.clone())),
                Some(false) => drop.push(name.clone()),
                // cannot tell now (quorum): next scan
                None => o.scan_due.store(true, Ordering::Relaxed),
            }
        }
        o.known.lock().extend(add);
        for name in drop {
            tracing::info!(record = %name, "outbox record of a commit that never happened dropped");
            o.uncommitted.fetch_add(1, Ordering::Relaxed);
            o.backlog.fetch_sub(1, Ordering::Relaxed);
            self.outbox_remove(name).await;
        }
        Ok(())
    }

    /// Reads records by name (from the first drive that has a good copy);
    /// unreadable ones are left for the next scan.
    async fn outbox_read(&self, names: Vec<String>) -> Vec<(String, OutboxRecord)> {
        if names.is_empty() {
            return Vec::new();
        }
        let drives = self.drives.clone();
        tokio::task::spawn_blocking(move || {
            names
                .into_iter()
                .filter_map(|name| {
                    let record = drives.iter().filter(|d| d.is_online()).find_map(|d| {
                        let p = outbox_dir(d).join_str(&name).ok()?;
                        let body = d.io().read(&p).ok()?;
                        serde_json::from_slice::<OutboxRecord>(&body)
                            .map_err(|e| tracing::warn!(drive = %d.root.display(), record = %name, error = %io_err(e), "unreadable outbox record"))
                            .ok()
                    })?;
                    Some((name, record))
                })
                .collect()
        })
        .await
        .unwrap_or_default()
    }

    /// Whether a record's commit happened, judged by the key's versions
    /// (None: cannot tell now). `later`: a later record of the key waits.
    async fn confirm(&self, r: &OutboxRecord, later: bool) -> Option<bool> {
        let (Ok(bucket), Ok(key)) = (
            BucketName::new(r.bucket.clone()),
            ObjectKey::new(r.key.clone()),
        ) else {
            return Some(false);
        };
        let found = self
            .read_version(&bucket, &key, false, Want::Id(r.version_id.clone()))
            .await;
        let removal = r.event.removes_version();
        match found {
            // a removal happened when the version is gone, or made again
            Ok((v, _)) if removal => Some(v.mod_time > r.mod_time),
            // a new version (or one whose tags or ACL changed) is there,
            // or was replaced by a later one
            Ok((v, _)) => Some(v.mod_time >= r.mod_time),
            Err(ObjectError::NoSuchKey { .. } | ObjectError::NoSuchVersion { .. }) => {
                Some(removal || later)
            }
            Err(_) => None,
        }
    }
}

#[async_trait::async_trait]
impl Outbox for ErasureSet {
    async fn pending_of(
        &self,
        kind: RecordKind,
        after: Option<&str>,
        max: usize,
    ) -> ObjectResult<Vec<OutboxEntry>> {
        self.outbox_pending(kind, after, max).await
    }
    async fn delivered(&self, id: &str) -> ObjectResult<()> {
        self.outbox_delivered(id).await
    }
    async fn wait_new(&self, wait: Duration) {
        self.outbox_wait(wait).await
    }
    fn holds(&self, id: &str) -> bool {
        self.outbox.known.lock().contains_key(id)
    }
    fn outbox_stats(&self) -> OutboxStats {
        self.outbox_counts()
    }
}

/// The deployment's outbox: every set's, ids `<set>/<record>`.
#[async_trait::async_trait]
impl Outbox for crate::sets::ErasureSets {
    async fn pending_of(
        &self,
        kind: RecordKind,
        after: Option<&str>,
        max: usize,
    ) -> ObjectResult<Vec<OutboxEntry>> {
        // names order records across sets: page by the name alone
        let after = after.map(|a| a.split_once('/').map_or(a, |x| x.1));
        let mut all = Vec::new();
        for (i, s) in self.sets().iter().enumerate() {
            all.extend(
                s.outbox_pending(kind, after, max)
                    .await?
                    .into_iter()
                    .map(|mut e| {
                        e.id = format!("{i}/{}", e.id);
                        e
                    }),
            );
        }
        // oldest first across sets (a record's name starts with its time)
        all.sort_by(|a, b| {
            a.id.split_once('/')
                .map(|x| x.1)
                .cmp(&b.id.split_once('/').map(|x| x.1))
        });
        all.truncate(max);
        Ok(all)
    }
    async fn delivered(&self, id: &str) -> ObjectResult<()> {
        let set = id
            .split_once('/')
            .and_then(|(i, name)| Some((self.sets().get(i.parse::<usize>().ok()?)?, name)));
        match set {
            Some((s, name)) => s.outbox_delivered(name).await,
            None => Err(ObjectError::InvalidArgument {
                message: format!("not an outbox record: {id:?}"),
            }),
        }
    }
    fn holds(&self, id: &str) -> bool {
        id.split_once('/')
            .and_then(|(i, name)| Some((self.sets().get(i.parse::<usize>().ok()?)?, name)))
            .is_some_and(|(s, name)| s.holds(name))
    }
    async fn wait_new(&self, wait: Duration) {
        let waits = self.sets().iter().map(|s| Box::pin(s.outbox_wait(wait)));
        futures::future::select_all(waits).await;
    }
    fn outbox_stats(&self) -> OutboxStats {
        self.sets()
            .iter()
            .map(|s| s.outbox_counts())
            .fold(OutboxStats::default(), |a, b| OutboxStats {
                pending: a.pending + b.pending,
                dropped: a.dropped + b.dropped,
                refused: a.refused + b.refused,
                uncommitted: a.uncommitted + b.uncommitted,
            })
    }
}

impl crate::sets::ErasureSets {
    /// Bounds every set's outbox.
    pub fn set_outbox_limit(&self, limit: OutboxLimit) {
        for s in self.sets() {
            s.set_outbox_limit(limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names() {
        let n = format!("{:024}-{}.json", 42, uuid::Uuid::new_v4());
        assert_eq!(name_time(&n), Some(42));
        assert_eq!(name_time("42-x.json"), None);
        assert_eq!(name_time("../x"), None);
    }
}
