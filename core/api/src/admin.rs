//! Administration of a store: drive states, healing, metrics. A separate
//! trait from `ObjectLayer`: fronts serve it to the root user only, and
//! stores without drives (gateways) need not offer it.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::error::{ObjectError, ObjectResult};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveInfo {
    /// The drive's erasure set, counting from 0.
    #[serde(default)]
    pub set: usize,
    /// The drive's position among all drives, in set order.
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
    /// Reads that failed because a block could not be rebuilt from its
    /// shards (damage beyond parity).
    #[serde(default)]
    pub unrecoverable_reads: u64,
    /// The serving process's confinement (e.g. "landlock ABI v7,
    /// enforced"), filled in by the binary; the store knows nothing of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// The nodes of a cluster (none on a single node), filled in by the
    /// binary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeInfo>,
}

/// One node of a cluster as the asked node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its S3 address (`host:port`).
    pub address: String,
    /// "online" (it answered), or "offline".
    pub state: String,
    /// Its drives.
    pub drives: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<u64>,
}

/// One erasure set's drives against its write quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetQuorum {
    pub set: usize,
    pub online: usize,
    pub needed: usize,
}

impl ServerInfo {
    /// Each set's online drives against the write quorum of its
    /// STANDARD layout (data shards, one more when parity equals them).
    pub fn set_quorums(&self) -> Vec<SetQuorum> {
        let needed = self.data_shards + usize::from(self.data_shards == self.parity_shards);
        let sets = self.drives.iter().map(|d| d.set + 1).max().unwrap_or(0);
        (0..sets)
            .map(|set| SetQuorum {
                set,
                online: self
                    .drives
                    .iter()
                    .filter(|d| d.set == set && d.state == "online")
                    .count(),
                needed,
            })
            .collect()
    }
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

/// The KMS as the admin API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsInfo {
    /// "builtin" or "vault".
    pub backend: String,
    /// Where the keys live (a key file, a Vault address).
    pub location: String,
    pub default_key: String,
    /// `(name, latest version)` of every key the KMS lists.
    pub keys: Vec<(String, u32)>,
}

/// What a key rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateSummary {
    pub key: String,
    pub new_version: u32,
    /// Object (and upload) keys re-sealed under the new version.
    pub resealed: u64,
    /// Objects whose key could not be re-sealed (they still read).
    pub failed: u64,
}

pub type HealStream = Pin<Box<dyn Stream<Item = HealEvent> + Send>>;

/// What one lifecycle pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LifecycleSummary {
    pub buckets: u64,
    /// Current versions expired (a delete marker made, or the object
    /// removed in an unversioned bucket).
    pub expired_current: u64,
    pub removed_noncurrent: u64,
    pub removed_delete_markers: u64,
    pub aborted_uploads: u64,
    /// Versions a rule selected but a lock kept.
    pub skipped_locked: u64,
}

/// Whether a metric only grows (counter) or goes up and down (gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
}

/// One metric family of the store, e.g. `cairn_drive_free_bytes` with a
/// sample per drive. A counter's name ends in `_total`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    pub samples: Vec<MetricSample>,
}

/// One value of a [`Metric`] and the labels that tell it apart.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    pub labels: Vec<(&'static str, String)>,
    pub value: u64,
}

impl Metric {
    /// A family with a single unlabelled value.
    pub fn single(name: &'static str, help: &'static str, kind: MetricKind, value: u64) -> Self {
        Self {
            name,
            help,
            kind,
            samples: vec![MetricSample {
                labels: Vec::new(),
                value,
            }],
        }
    }
}

#[async_trait]
pub trait AdminLayer: Send + Sync + 'static {
    async fn server_info(&self) -> ObjectResult<ServerInfo>;
    /// Heals what the request names; the stream ends with `Done`.
    fn heal(self: Arc<Self>, req: HealRequest) -> HealStream;
    /// The store's metrics (drives, capacity, bucket usage, heal,
    /// scanner); the S3 front encodes them for Prometheus. Must not wait
    /// on a hung drive nor walk the store: it answers every scrape.
    async fn metrics(&self) -> Vec<Metric>;
    /// Pauses (false) or resumes (true) background scanning; returns
    /// whether the store has a scanner at all.
    fn set_scanner(&self, _enabled: bool) -> bool {
        false
    }
    async fn kms_status(&self) -> ObjectResult<KmsInfo> {
        Err(ObjectError::KmsNotConfigured)
    }
    async fn kms_create_key(&self, _name: &str) -> ObjectResult<()> {
        Err(ObjectError::KmsNotConfigured)
    }
    /// Rotates a master key (the default when `None`), then re-seals every
    /// object key sealed under it with the new version; data is not
    /// rewritten.
    async fn kms_rotate(&self, _name: Option<&str>) -> ObjectResult<RotateSummary> {
        Err(ObjectError::KmsNotConfigured)
    }
    /// Runs one lifecycle pass now.
    async fn lifecycle_run(&self) -> ObjectResult<LifecycleSummary> {
        Err(ObjectError::NotImplemented {
            what: "lifecycle rules on this backend",
        })
    }
    /// Puts a bucket in WORM mode, for good: no existing object in it can
    /// be changed or deleted by anyone from then on.
    async fn bucket_worm(&self, _bucket: &crate::BucketName) -> ObjectResult<()> {
        Err(ObjectError::NotImplemented {
            what: "WORM mode on this backend",
        })
    }
}
