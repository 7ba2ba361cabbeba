//! `cairn admin replicate resync BUCKET TARGET`: every version and delete
//! marker of the bucket that a rule sends to the target is sent again
//! (after the target lost them, say). The same walk serves existing
//! objects: nothing here looks at a version's replication status.
//!
//! A walk pages through the bucket's version listing (bounded: one page
//! and one key's versions at a time), first counting what it will send
//! (the total the progress is measured against), then handing each
//! version to the target's worker lanes like an outbox task, oldest
//! version of a key first (a target with its own version ids ends with
//! the same latest version). Its state is a record in the config store
//! (`ConfigDir::ReplicationResync`), saved every few seconds: the last
//! key whose versions have all landed, and the counts up to it. After a
//! restart the walk goes on after that key (versions past it that had
//! landed are sent again: at least once).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_api::notify::{Delivery, EventName, OutboxEntry, OutboxRecord, RecordKind};
use cairn_api::replication::{ResyncPhase, ResyncReport};
use cairn_api::{
    BucketName, ConfigDir, ListVersionsOptions, ObjectError, ObjectLayer, ObjectResult,
    VersionEntry,
};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::service::ReplicationService;

/// Versions asked of the listing at a time.
const PAGE: usize = 1000;
/// Versions of one key held before they are sent (past it, a key's
/// versions go newest first).
const KEY_VERSIONS: usize = 10_000;
/// How often a walk's state is saved.
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// A resync as saved (and read back after a restart).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Saved {
    pub(crate) bucket: String,
    pub(crate) arn: String,
    pub(crate) id: String,
    pub(crate) phase: ResyncPhase,
    pub(crate) started: i64,
    pub(crate) total_objects: u64,
    pub(crate) total_bytes: u64,
    /// Counts of what landed up to `after`.
    pub(crate) done_objects: u64,
    pub(crate) done_bytes: u64,
    /// Every version of keys up to this one landed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

pub(crate) fn record_name(bucket: &str, arn: &str) -> String {
    cairn_api::replication::record_name(bucket, arn)
}

/// One version handed to a worker, until it lands.
struct Slot {
    seq: u64,
    key: String,
    /// The last of its key's versions.
    last_of_key: bool,
    size: u64,
    landed: bool,
}

struct State {
    saved: Saved,
    /// Landed so far (past `saved.after` too).
    live_objects: u64,
    live_bytes: u64,
    /// When this process took the walk up, and the bytes landed then.
    resumed: Instant,
    resumed_bytes: u64,
    resumed_objects: u64,
    next_seq: u64,
    /// Handed out, in order; the landed front is folded into `saved`.
    slots: VecDeque<Slot>,
}

/// A resync run of one (bucket, target).
pub(crate) struct Resync {
    state: Mutex<State>,
    stop: AtomicBool,
    landed: tokio::sync::Notify,
}

impl Resync {
    pub(crate) fn new(saved: Saved) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                live_objects: saved.done_objects,
                live_bytes: saved.done_bytes,
                resumed: Instant::now(),
                resumed_bytes: saved.done_bytes,
                resumed_objects: saved.done_objects,
                next_seq: 0,
                slots: VecDeque::new(),
                saved,
            }),
            stop: AtomicBool::new(false),
            landed: tokio::sync::Notify::new(),
        })
    }

    /// A new resync of `bucket` to `arn`.
    pub(crate) fn start(bucket: &str, arn: &str) -> Arc<Self> {
        let now = time::OffsetDateTime::now_utc();
        Self::new(Saved {
            bucket: bucket.to_owned(),
            arn: arn.to_owned(),
            id: format!("{:x}", now.unix_timestamp_nanos()),
            phase: ResyncPhase::Counting,
            started: now.unix_timestamp(),
            total_objects: 0,
            total_bytes: 0,
            done_objects: 0,
            done_bytes: 0,
            after: None,
            error: None,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn saved(&self) -> Saved {
        self.lock().saved.clone()
    }

    /// Whether the walk is still going.
    pub(crate) fn running(&self) -> bool {
        matches!(
            self.lock().saved.phase,
            ResyncPhase::Counting | ResyncPhase::Sending
        ) && !self.stopped()
    }

    /// Asks the walk to end (a new resync replaces it, or its target
    /// went).
    pub(crate) fn cancel(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.landed.notify_waiters();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Registers a version handed to a worker: its sequence number.
    fn handed(&self, key: &str, last_of_key: bool, size: u64) -> u64 {
        let mut st = self.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        st.slots.push_back(Slot {
            seq,
            key: key.to_owned(),
            last_of_key,
            size,
            landed: false,
        });
        seq
    }

    /// A version handed out landed (a worker calls this).
    pub(crate) fn landed(&self, seq: u64) {
        let mut st = self.lock();
        let Some(front) = st.slots.front().map(|s| s.seq) else {
            return;
        };
        let Some(i) = seq.checked_sub(front).and_then(|i| usize::try_from(i).ok()) else {
            return;
        };
        let Some(slot) = st.slots.get_mut(i) else {
            return;
        };
        if slot.landed {
            return;
        }
        slot.landed = true;
        let size = slot.size;
        st.live_objects += 1;
        st.live_bytes += size;
        while st.slots.front().is_some_and(|s| s.landed) {
            let Some(s) = st.slots.pop_front() else { break };
            st.saved.done_objects += 1;
            st.saved.done_bytes += s.size;
            if s.last_of_key {
                st.saved.after = Some(s.key);
            }
        }
        drop(st);
        self.landed.notify_waiters();
    }

    /// The progress as shown.
    pub(crate) fn report(&self) -> ResyncReport {
        let st = self.lock();
        let s = &st.saved;
        let secs = st.resumed.elapsed().as_secs_f64().max(0.001);
        let bytes_rate = (st.live_bytes.saturating_sub(st.resumed_bytes)) as f64 / secs;
        let objects_rate = (st.live_objects.saturating_sub(st.resumed_objects)) as f64 / secs;
        let eta_secs = match s.phase {
            ResyncPhase::Sending => {
                let left_bytes = s.total_bytes.saturating_sub(st.live_bytes);
                let left_objects = s.total_objects.saturating_sub(st.live_objects);
                if left_bytes > 0 && bytes_rate > 0.0 {
                    Some((left_bytes as f64 / bytes_rate).ceil() as u64)
                } else if left_objects > 0 && objects_rate > 0.0 {
                    Some((left_objects as f64 / objects_rate).ceil() as u64)
                } else if left_bytes == 0 && left_objects == 0 {
                    Some(0)
                } else {
                    None
                }
            }
            ResyncPhase::Done => Some(0),
            ResyncPhase::Counting | ResyncPhase::Stopped => None,
        };
        let live = matches!(s.phase, ResyncPhase::Sending | ResyncPhase::Done);
        ResyncReport {
            id: s.id.clone(),
            phase: s.phase,
            started: s.started,
            total_objects: s.total_objects,
            total_bytes: s.total_bytes,
            done_objects: if live {
                st.live_objects
            } else {
                s.done_objects
            },
            done_bytes: if live { st.live_bytes } else { s.done_bytes },
            rate: bytes_rate as u64,
            eta_secs,
            error: s.error.clone(),
        }
    }

    fn set_phase(&self, phase: ResyncPhase, error: Option<String>) {
        let mut st = self.lock();
        st.saved.phase = phase;
        st.saved.error = error;
        if phase == ResyncPhase::Sending {
            st.resumed = Instant::now();
            st.resumed_bytes = st.live_bytes;
            st.resumed_objects = st.live_objects;
        }
    }

    fn set_totals(&self, objects: u64, bytes: u64) {
        let mut st = self.lock();
        st.saved.total_objects = objects;
        st.saved.total_bytes = bytes;
    }

    fn in_flight(&self) -> usize {
        self.lock().slots.len()
    }
}

/// A version the walk sends, and the rule that sends it.
struct Item {
    record: OutboxRecord,
    rule: String,
}

/// The rule of `cfg` that sends `v` to `arn`, if one does (a delete
/// marker only with delete marker replication).
fn rule_for(cfg: &cairn_api::BucketConfig, arn: &str, v: &VersionEntry) -> Option<String> {
    let rules = cfg.replication.as_ref()?;
    let r = rules
        .rules_for(&v.info.key, &v.info.attrs.tags)
        .into_iter()
        .find(|r| r.destination == arn)?;
    (!v.info.attrs.delete_marker || r.delete_markers).then(|| r.id.clone())
}

fn item_of(bucket: &str, arn: &str, v: &VersionEntry, rule: String) -> Item {
    let i = &v.info;
    Item {
        record: OutboxRecord {
            kind: RecordKind::Replication,
            event: if i.attrs.delete_marker {
                EventName::DeleteMarkerCreated
            } else {
                EventName::Put
            },
            bucket: bucket.to_owned(),
            key: i.key.clone(),
            version_id: i.version_id.clone(),
            size: i.size,
            etag: i.etag.clone(),
            mod_time: i.last_modified.unix_timestamp_nanos(),
            targets: vec![Delivery {
                arn: arn.to_owned(),
                configuration_id: rule.clone(),
            }],
        },
        rule,
    }
}

/// Walks the bucket's versions a page at a time, handing each one a rule
/// sends to `arn` (and its key's end) to `each`.
async fn walk<F, Fut>(
    layer: &Arc<dyn ObjectLayer>,
    run: &Resync,
    after: Option<String>,
    mut each: F,
) -> Result<(), String>
where
    F: FnMut(Vec<Item>, bool) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let listing = |e: ObjectError| format!("listing the bucket: {e}");
    let (bucket_s, arn) = {
        let s = run.lock();
        (s.saved.bucket.clone(), s.saved.arn.clone())
    };
    let bucket = BucketName::new(bucket_s.clone()).map_err(listing)?;
    let mut key_marker = after;
    let mut version_marker: Option<String> = None;
    // one key's versions, newest first as listed
    let mut held: Vec<Item> = Vec::new();
    let mut held_key: Option<String> = None;
    loop {
        if run.stopped() {
            return Ok(());
        }
        let cfg = layer.get_bucket_config(&bucket).await.map_err(listing)?;
        let page = layer
            .list_object_versions(
                &bucket,
                ListVersionsOptions {
                    key_marker: key_marker.clone(),
                    version_id_marker: version_marker.clone(),
                    max_keys: PAGE,
                    ..Default::default()
                },
            )
            .await
            .map_err(listing)?;
        for v in &page.versions {
            if held_key.as_deref() != Some(v.info.key.as_str()) {
                if held_key.is_some() {
                    held.reverse();
                    each(std::mem::take(&mut held), true).await?;
                }
                held_key = Some(v.info.key.clone());
            }
            if let Some(rule) = rule_for(&cfg, &arn, v) {
                held.push(item_of(&bucket_s, &arn, v, rule));
            }
            if held.len() >= KEY_VERSIONS {
                each(std::mem::take(&mut held), false).await?;
            }
        }
        if !page.is_truncated {
            break;
        }
        if page.next_key_marker.is_none() && page.next_version_id_marker.is_none() {
            return Err("a truncated version listing without a marker".into());
        }
        key_marker = page.next_key_marker;
        version_marker = page.next_version_id_marker;
    }
    if held_key.is_some() {
        held.reverse();
        each(held, true).await?;
    }
    Ok(())
}

/// Runs (or resumes) a resync until it is done, stopped or cancelled.
pub(crate) async fn run(sink: Arc<ReplicationService>, run: Arc<Resync>) {
    let saver = {
        let (sink, run) = (sink.clone(), run.clone());
        tokio::spawn(async move {
            while run.running() {
                tokio::time::sleep(SAVE_EVERY).await;
                if let Err(e) = sink.save_resync(&run.saved()).await {
                    tracing::warn!(error = %e, "resync state not saved");
                }
            }
        })
    };
    let res = go(&sink, &run).await;
    saver.abort();
    if run.stopped() {
        // replaced or its target went: whoever cancelled it owns the record
        return;
    }
    let saved = run.saved();
    match res {
        Ok(()) => {
            run.set_phase(ResyncPhase::Done, None);
            tracing::info!(bucket = %saved.bucket, arn = %saved.arn, objects = saved.done_objects, "resync done");
        }
        Err(e) => {
            tracing::error!(bucket = %saved.bucket, arn = %saved.arn, error = %e, "resync stopped");
            run.set_phase(ResyncPhase::Stopped, Some(e));
        }
    }
    if let Err(e) = sink.save_resync(&run.saved()).await {
        tracing::warn!(error = %e, "resync state not saved");
    }
}

async fn go(sink: &Arc<ReplicationService>, run: &Arc<Resync>) -> Result<(), String> {
    let layer = sink.layer.clone();
    if run.saved().phase == ResyncPhase::Counting {
        let (mut objects, mut bytes) = (0u64, 0u64);
        walk(&layer, run, None, |items, _| {
            objects += items.len() as u64;
            bytes += items.iter().map(|i| i.record.size).sum::<u64>();
            std::future::ready(Ok(()))
        })
        .await?;
        run.set_totals(objects, bytes);
        run.set_phase(ResyncPhase::Sending, None);
        sink.save_resync(&run.saved())
            .await
            .map_err(|e| format!("saving the resync: {e}"))?;
    } else {
        run.set_phase(ResyncPhase::Sending, None);
    }
    let id = run.saved().id;
    let after = run.saved().after;
    walk(&layer, run, after, |items, key_ends| {
        let sink = sink.clone();
        let run = run.clone();
        let id = id.clone();
        async move {
            let n = items.len();
            for (i, item) in items.into_iter().enumerate() {
                if run.stopped() {
                    return Ok(());
                }
                let last = key_ends && i + 1 == n;
                let seq = run.handed(&item.record.key, last, item.record.size);
                let entry = OutboxEntry {
                    id: format!("resync-{id}-{seq}"),
                    record: item.record,
                };
                sink.send_resync(&run, seq, entry, item.rule).await?;
            }
            Ok(())
        }
    })
    .await?;
    // what was handed out lands
    while run.in_flight() > 0 && !run.stopped() {
        let wait = run.landed.notified();
        if run.in_flight() == 0 {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
    }
    Ok(())
}

/// Loads the saved resyncs of a store.
pub(crate) async fn load(store: &dyn cairn_api::ConfigStore) -> ObjectResult<Vec<Saved>> {
    let mut out = Vec::new();
    for (name, body) in store.config_list(ConfigDir::ReplicationResync).await? {
        match serde_json::from_slice::<Saved>(&body) {
            Ok(s) => out.push(s),
            Err(e) => {
                tracing::error!(record = %name.replace('\n', " "), error = %e, "resync record does not decode; left out")
            }
        }
    }
    Ok(out)
}
