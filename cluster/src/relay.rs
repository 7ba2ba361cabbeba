//! Change events between nodes: what this node's store changed (objects
//! written or removed, buckets made, removed or configured) is sent to
//! every other node in small batches, where the store drops what it
//! cached of them (bucket configuration) and the file fronts theirs, so a
//! mount or an export on any node sees a write made through any other
//! within a fraction of a second.
//!
//! Each peer has its own sender and a bounded queue: a node that is down
//! or slow delays nobody else, and batches it cannot take are dropped
//! (counted; it reads fresh after a restart, and its attribute caches
//! expire on their own).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn_api::changes::{Change, ChangeReceiver};
use cairn_api::notify::OutboxRecord;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::client::Node;

/// How long the relay gathers changes into one batch.
const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// The most changes in one batch.
const MAX_BATCH: usize = 1024;
/// Batches waiting for one peer before new ones are dropped.
const PEER_QUEUE: usize = 64;
/// How long a peer may take to take a batch.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// One change on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireChange {
    pub bucket: String,
    /// Empty for the bucket itself.
    pub key: String,
    /// The event it raised (for the peer's listeners).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<OutboxRecord>,
}

impl WireChange {
    /// The change as the receiving store takes it (from a peer).
    pub fn into_change(self) -> Change {
        Change {
            bucket: self.bucket,
            key: self.key,
            from_peer: true,
            event: self.event.map(Arc::new),
        }
    }
}

/// What the relay did (for metrics and tests).
#[derive(Debug, Default)]
pub struct RelayStats {
    pub sent: AtomicU64,
    /// Batches a peer did not take (down, slow, or its queue full).
    pub dropped: AtomicU64,
}

/// Starts relaying this node's changes from `rx` to `peers`, on the
/// current runtime, until the store's channel closes.
pub fn start(mut rx: ChangeReceiver, peers: Vec<Node>) -> Arc<RelayStats> {
    let stats = Arc::new(RelayStats::default());
    let queues: Vec<mpsc::Sender<Arc<Vec<WireChange>>>> = peers
        .into_iter()
        .map(|p| {
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            tokio::spawn(send_to(p, rx, stats.clone()));
            tx
        })
        .collect();
    let st = stats.clone();
    tokio::spawn(async move {
        loop {
            let Some(batch) = next_batch(&mut rx).await else {
                return;
            };
            let batch = Arc::new(batch);
            for q in &queues {
                if q.try_send(batch.clone()).is_err() {
                    st.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    stats
}

/// The next batch of this node's own changes, deduplicated; `None` once
/// the channel is closed.
async fn next_batch(rx: &mut ChangeReceiver) -> Option<Vec<WireChange>> {
    let mut batch: Vec<WireChange> = Vec::new();
    let push = |c: Change, batch: &mut Vec<WireChange>| {
        let w = WireChange {
            bucket: c.bucket,
            key: c.key,
            event: c.event.map(Arc::unwrap_or_clone),
        };
        if !c.from_peer && !batch.contains(&w) {
            batch.push(w);
        }
    };
    loop {
        // wait for a first change, then gather for the window
        match rx.recv().await {
            Ok(c) => push(c, &mut batch),
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "change relay fell behind: peers miss some changes"
                );
                continue;
            }
            Err(RecvError::Closed) => return None,
        }
        let until = tokio::time::Instant::now() + BATCH_WINDOW;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Ok(c)) => push(c, &mut batch),
                Ok(Err(RecvError::Lagged(_))) => continue,
                Ok(Err(RecvError::Closed)) | Err(_) => break,
            }
        }
        if !batch.is_empty() {
            return Some(batch);
        }
    }
}

async fn send_to(peer: Node, mut rx: mpsc::Receiver<Arc<Vec<WireChange>>>, stats: Arc<RelayStats>) {
    while let Some(batch) = rx.recv().await {
        match tokio::time::timeout(SEND_TIMEOUT, peer.changes(&batch)).await {
            Ok(Ok(())) => {
                stats.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Ok(Err(e)) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "a peer did not take changes");
            }
            Err(_) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("a peer did not take changes in time");
            }
        }
    }
}
