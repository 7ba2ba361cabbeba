//! Administration of a store: drive states, healing, metrics. A separate
//! trait from `ObjectLayer`: fronts serve it to the root user only, and
//! stores without drives (gateways) need not offer it.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::error::ObjectResult;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveInfo {
    pub index: usize,
    pub path: String,
    /// "online", "offline" or "foreign" (another deployment's drive).
    pub state: String,
    pub total_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub deployment_id: String,
    pub data_shards: usize,
    pub parity_shards: usize,
    pub drives: Vec<DriveInfo>,
    /// Objects waiting in the heal queue.
    pub heal_queue: u64,
    pub objects_healed: u64,
    pub bitrot_errors: u64,
    pub scanner_cycles: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealRequest {
    /// Only this bucket (all buckets when `None`).
    pub bucket: Option<String>,
    /// Only keys with this prefix (needs `bucket`).
    #[serde(default)]
    pub prefix: String,
    /// Re-read every shard and check its hash.
    #[serde(default)]
    pub deep: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealSummary {
    pub objects_scanned: u64,
    pub objects_healed: u64,
    pub drives_rewritten: u64,
    pub bad_blocks: u64,
    pub failed: u64,
    pub elapsed_ms: u64,
}

/// What a running heal reports: progress now and then, a summary last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum HealEvent {
    Progress {
        summary: HealSummary,
        /// Objects to visit in all, when known.
        total: Option<u64>,
        current: String,
    },
    Error {
        message: String,
    },
    Done {
        summary: HealSummary,
    },
}

pub type HealStream = Pin<Box<dyn Stream<Item = HealEvent> + Send>>;

#[async_trait]
pub trait AdminLayer: Send + Sync + 'static {
    async fn server_info(&self) -> ObjectResult<ServerInfo>;
    /// Heals what the request names; the stream ends with `Done`.
    fn heal(self: Arc<Self>, req: HealRequest) -> HealStream;
    /// The store's metrics in Prometheus text exposition format.
    fn metrics_text(&self) -> String;
    /// Pauses (false) or resumes (true) background scanning; returns
    /// whether the store has a scanner at all.
    fn set_scanner(&self, _enabled: bool) -> bool {
        false
    }
}
