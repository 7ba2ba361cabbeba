//! The deliverer: drains the store's outbox oldest first, sends each
//! record to each of its targets, and removes it once all have it. A
//! target that fails is retried with backoff (100 ms doubling to 30 s),
//! forever; while it waits, its later records wait too (each target sees
//! its records in order), other targets go on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn_api::notify::{Outbox, target_of};
use tokio::time::Instant;

use crate::target::Target;

/// Records asked of the outbox at a time.
const BATCH: usize = 256;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long the deliverer sleeps when nothing is pending and nobody wakes it.
const IDLE: Duration = Duration::from_secs(5);

/// Counts of the deliverer.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Messages a target accepted.
    pub sent: AtomicU64,
    /// Sends that failed (each retry counts).
    pub failed: AtomicU64,
    /// Messages for targets no longer configured, dropped.
    pub unroutable: AtomicU64,
}

/// A target's retry state.
struct Backoff {
    until: Instant,
    wait: Duration,
}

pub struct Deliverer {
    outbox: Arc<dyn Outbox>,
    targets: HashMap<String, Arc<dyn Target>>,
    region: String,
    stats: Arc<DeliveryStats>,
}

impl Deliverer {
    pub fn new(outbox: Arc<dyn Outbox>, targets: Vec<Arc<dyn Target>>, region: String) -> Self {
        Self {
            outbox,
            targets: targets
                .into_iter()
                .map(|t| (t.name().to_owned(), t))
                .collect(),
            region,
            stats: Default::default(),
        }
    }

    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.stats.clone()
    }

    /// Runs until the task is dropped.
    pub async fn run(self) {
        // per record, the destinations (by position) that have it
        let mut done: HashMap<String, HashSet<usize>> = HashMap::new();
        let mut backoff: HashMap<String, Backoff> = HashMap::new();
        loop {
            let batch = match self.outbox.pending(BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "the event outbox cannot be read");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                self.outbox.wait_new(IDLE).await;
                continue;
            }
            let ids: HashSet<&str> = batch.iter().map(|e| e.id.as_str()).collect();
            done.retain(|id, _| ids.contains(id.as_str()));
            let mut finished = 0;
            for entry in &batch {
                let have = done.entry(entry.id.clone()).or_default();
                for (i, d) in entry.record.targets.iter().enumerate() {
                    if have.contains(&i) {
                        continue;
                    }
                    let target = target_of(&d.arn, &self.region).and_then(|t| self.targets.get(&t));
                    let Some(target) = target else {
                        tracing::warn!(arn = %d.arn, bucket = %entry.record.bucket, key = %entry.record.key,
                            "event for a target this server does not have: dropped");
                        self.stats.unroutable.fetch_add(1, Ordering::Relaxed);
                        have.insert(i);
                        continue;
                    };
                    if backoff
                        .get(target.name())
                        .is_some_and(|b| b.until > Instant::now())
                    {
                        continue;
                    }
                    let message =
                        crate::record::message(&entry.record, &d.configuration_id, &self.region)
                            .to_string();
                    let subject = format!("{}/{}", entry.record.bucket, entry.record.key);
                    match target.send(&subject, &message).await {
                        Ok(()) => {
                            self.stats.sent.fetch_add(1, Ordering::Relaxed);
                            backoff.remove(target.name());
                            have.insert(i);
                        }
                        Err(e) => {
                            self.stats.failed.fetch_add(1, Ordering::Relaxed);
                            let wait = backoff
                                .get(target.name())
                                .map_or(BACKOFF_MIN, |b| (b.wait * 2).min(BACKOFF_MAX));
                            tracing::warn!(error = %e, retry_in = ?wait, "event delivery failed");
                            backoff.insert(
                                target.name().to_owned(),
                                Backoff {
                                    until: Instant::now() + wait,
                                    wait,
                                },
                            );
                        }
                    }
                }
                if have.len() >= entry.record.targets.len() {
                    match self.outbox.delivered(&entry.id).await {
                        Ok(()) => finished += 1,
                        Err(e) => tracing::error!(error = %e, record = %entry.id,
                            "a delivered event could not be removed from the outbox"),
                    }
                    done.remove(&entry.id);
                }
            }
            if finished == 0 {
                // everything left waits for a target's backoff
                let next = backoff.values().map(|b| b.until).min();
                let wait =
                    next.map_or(BACKOFF_MIN, |t| t.saturating_duration_since(Instant::now()));
                self.outbox
                    .wait_new(wait.max(Duration::from_millis(20)))
                    .await;
            }
        }
    }
}
