//! The deliverer: each target has its own bounded queue and worker, so a
//! target that is down holds back only its own records. The dispatcher
//! pages through the store's outbox oldest first, hands each record to
//! the queue of every target it names (a full queue takes no more this
//! pass: its records wait on the drives, in order), and removes a record
//! once every target has it. A worker sends its queue in order and
//! retries a failed send with backoff (100 ms doubling to 30 s) forever.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use cairn_api::notify::{Outbox, OutboxEntry, target_of};
use tokio::sync::mpsc;

use crate::record::Message;
use crate::target::Target;

/// Records asked of the outbox at a time.
const BATCH: usize = 256;
/// Messages waiting in one target's queue (more wait on the drives).
const QUEUE: usize = 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long the dispatcher sleeps when nothing wakes it.
const IDLE: Duration = Duration::from_secs(5);

/// Counts of one target.
#[derive(Debug, Default)]
pub struct TargetStats {
    /// `ID:TYPE`.
    pub name: String,
    /// Messages the target accepted.
    pub sent: AtomicU64,
    /// Sends that failed (each retry counts).
    pub failed: AtomicU64,
    /// Messages in its queue now.
    pub queued: AtomicU64,
    /// Its last send failed.
    pub down: AtomicBool,
}

/// Counts of the deliverer.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Messages for targets no longer configured, dropped.
    pub unroutable: AtomicU64,
    /// One per target, in configuration order.
    pub targets: Vec<Arc<TargetStats>>,
}

/// One message for one target.
struct Job {
    id: String,
    index: usize,
    message: Message,
}

/// A target has message `index` of record `id`.
struct Done {
    id: String,
    index: usize,
}

/// A record handed to targets: which destinations have it queued, how
/// many have it.
struct Progress {
    queued: Vec<bool>,
    done: usize,
}

struct Worker {
    queue: mpsc::Sender<Job>,
    stats: Arc<TargetStats>,
}

pub struct Deliverer {
    outbox: Arc<dyn Outbox>,
    targets: Vec<Arc<dyn Target>>,
    region: String,
    stats: Arc<DeliveryStats>,
}

impl Deliverer {
    pub fn new(outbox: Arc<dyn Outbox>, targets: Vec<Arc<dyn Target>>, region: String) -> Self {
        let stats = DeliveryStats {
            unroutable: AtomicU64::new(0),
            targets: targets
                .iter()
                .map(|t| {
                    Arc::new(TargetStats {
                        name: t.name().to_owned(),
                        ..Default::default()
                    })
                })
                .collect(),
        };
        Self {
            outbox,
            targets,
            region,
            stats: Arc::new(stats),
        }
    }

    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.stats.clone()
    }

    /// Runs until the task is dropped (the workers stop with it).
    pub async fn run(self) {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let mut workers = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        for (t, stats) in self.targets.iter().zip(&self.stats.targets) {
            let (tx, rx) = mpsc::channel(QUEUE);
            let w = Work {
                target: t.clone(),
                outbox: self.outbox.clone(),
                done: done_tx.clone(),
                stats: stats.clone(),
            };
            tasks.spawn(w.run(rx));
            workers.insert(
                t.name().to_owned(),
                Worker {
                    queue: tx,
                    stats: stats.clone(),
                },
            );
        }
        drop(done_tx);
        Dispatcher {
            outbox: self.outbox,
            region: self.region,
            stats: self.stats,
            workers,
            progress: HashMap::new(),
            full: HashSet::new(),
        }
        .run(done_rx)
        .await;
    }
}

/// A target's worker.
struct Work {
    target: Arc<dyn Target>,
    outbox: Arc<dyn Outbox>,
    done: mpsc::UnboundedSender<Done>,
    stats: Arc<TargetStats>,
}

impl Work {
    /// Sends the queue in order, each message until it is accepted or its
    /// record left the outbox (dropped by a full outbox).
    async fn run(self, mut queue: mpsc::Receiver<Job>) {
        let stats = &self.stats;
        while let Some(job) = queue.recv().await {
            let mut wait = BACKOFF_MIN;
            while self.outbox.holds(&job.id) {
                match self.target.send(&job.message).await {
                    Ok(()) => {
                        stats.sent.fetch_add(1, Ordering::Relaxed);
                        stats.down.store(false, Ordering::Relaxed);
                        break;
                    }
                    Err(e) => {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        stats.down.store(true, Ordering::Relaxed);
                        tracing::warn!(error = %e, retry_in = ?wait, "event delivery failed");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(BACKOFF_MAX);
                    }
                }
            }
            stats.queued.fetch_sub(1, Ordering::Relaxed);
            let d = Done {
                id: job.id,
                index: job.index,
            };
            if self.done.send(d).is_err() {
                return;
            }
        }
    }
}

struct Dispatcher {
    outbox: Arc<dyn Outbox>,
    region: String,
    stats: Arc<DeliveryStats>,
    workers: HashMap<String, Worker>,
    /// Records some target has queued or has, by id.
    progress: HashMap<String, Progress>,
    /// Targets whose queue was full in the last pass.
    full: HashSet<String>,
}

impl Dispatcher {
    async fn run(mut self, mut done: mpsc::UnboundedReceiver<Done>) {
        let mut pass = true;
        loop {
            // registered before the pass: a record that comes during it wakes the wait
            let outbox = self.outbox.clone();
            let mut wake: Pin<Box<_>> = Box::pin(async move { outbox.wait_new(IDLE).await });
            let woke =
                std::future::poll_fn(|cx| Poll::Ready(wake.as_mut().poll(cx).is_ready())).await;
            if pass {
                self.pass().await;
            }
            if woke {
                pass = true;
                continue;
            }
            tokio::select! {
                d = done.recv() => {
                    let Some(d) = d else { return };
                    let mut room = self.finished(d).await;
                    while let Ok(d) = done.try_recv() {
                        room |= self.finished(d).await;
                    }
                    // a queue that was full has room: its records can go
                    pass = room;
                }
                () = &mut wake => pass = true,
            }
        }
    }

    /// Notes a message a target has; true when that target's queue was
    /// full.
    async fn finished(&mut self, d: Done) -> bool {
        let room = self.workers.iter().any(|(name, w)| {
            self.full.contains(name) && w.stats.queued.load(Ordering::Relaxed) < QUEUE as u64
        });
        let Some(p) = self.progress.get_mut(&d.id) else {
            return room;
        };
        if p.queued.get(d.index).copied().unwrap_or(false) {
            p.done += 1;
        }
        if p.done >= p.queued.len() {
            self.progress.remove(&d.id);
            self.delivered(&d.id).await;
        }
        room
    }

    async fn delivered(&self, id: &str) {
        if let Err(e) = self.outbox.delivered(id).await {
            tracing::error!(error = %e, record = %id,
                "a delivered event could not be removed from the outbox");
        }
    }

    /// Hands every pending record to its targets' queues, oldest first.
    async fn pass(&mut self) {
        self.full.clear();
        let mut seen = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let batch = match self.outbox.pending(after.as_deref(), BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "the event outbox cannot be read");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    return;
                }
            };
            for entry in &batch {
                seen.insert(entry.id.clone());
                if self.dispatch(entry) {
                    self.progress.remove(&entry.id);
                    self.delivered(&entry.id).await;
                }
            }
            after = batch.last().map(|e| e.id.clone());
            let all_full = !self.workers.is_empty() && self.full.len() == self.workers.len();
            if batch.len() < BATCH || all_full {
                break;
            }
        }
        // forget records gone from the outbox (dropped) with nothing queued
        self.progress
            .retain(|id, p| seen.contains(id) || p.queued.iter().any(|q| *q));
    }

    /// Queues `entry` for the targets not yet having it; true when every
    /// target has it.
    fn dispatch(&mut self, entry: &OutboxEntry) -> bool {
        let r = &entry.record;
        let p = self
            .progress
            .entry(entry.id.clone())
            .or_insert_with(|| Progress {
                queued: vec![false; r.targets.len()],
                done: 0,
            });
        for (i, d) in r.targets.iter().enumerate() {
            if p.queued.get(i).copied().unwrap_or(true) {
                continue;
            }
            let name = target_of(&d.arn, &self.region);
            let Some((name, w)) = name.and_then(|n| self.workers.get_key_value(&n)) else {
                tracing::warn!(arn = %d.arn, bucket = %r.bucket, key = %r.key,
                    "event for a target this server does not have: dropped");
                self.stats.unroutable.fetch_add(1, Ordering::Relaxed);
                p.done += 1;
                if let Some(q) = p.queued.get_mut(i) {
                    *q = true;
                }
                continue;
            };
            if self.full.contains(name) {
                continue;
            }
            let job = Job {
                id: entry.id.clone(),
                index: i,
                message: Message::of(r, &d.configuration_id, &self.region),
            };
            w.stats.queued.fetch_add(1, Ordering::Relaxed);
            match w.queue.try_send(job) {
                Ok(()) => {
                    if let Some(q) = p.queued.get_mut(i) {
                        *q = true;
                    }
                }
                Err(_) => {
                    w.stats.queued.fetch_sub(1, Ordering::Relaxed);
                    self.full.insert(name.clone());
                }
            }
        }
        p.done >= p.queued.len()
    }
}
