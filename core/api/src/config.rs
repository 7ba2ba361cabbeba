//! Small records the server keeps about itself (IAM users, keys,
//! policies...), stored by the store it serves so that they survive
//! restarts, heal and are the same on every node: `ConfigStore`.
//!
//! A record is named by a [`ConfigDir`] (a fixed set: no request string
//! chooses a directory) and a name, which the implementation encodes
//! before it becomes any path (a name is never a path). The newest write
//! of a name wins; a delete is a write too, so an older copy cannot bring
//! a deleted record back.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::ObjectResult;

/// The directories of configuration records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigDir {
    IamUsers,
    IamGroups,
    IamPolicies,
    IamRoles,
    IamKeys,
    /// Replication targets with their credentials (`cairn admin
    /// replicate add`); not one of `ALL` (the IAM directories).
    ReplicationTargets,
    /// Resyncs under way or ended (`cairn admin replicate resync`): where
    /// each walk is, so that it goes on after a restart.
    ReplicationResync,
}

impl ConfigDir {
    /// The IAM directories.
    pub const ALL: [ConfigDir; 5] = [
        ConfigDir::IamUsers,
        ConfigDir::IamGroups,
        ConfigDir::IamPolicies,
        ConfigDir::IamRoles,
        ConfigDir::IamKeys,
    ];

    /// The directory's path under the store's configuration root.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigDir::IamUsers => "iam/users",
            ConfigDir::IamGroups => "iam/groups",
            ConfigDir::IamPolicies => "iam/policies",
            ConfigDir::IamRoles => "iam/roles",
            ConfigDir::IamKeys => "iam/keys",
            ConfigDir::ReplicationTargets => "replication/targets",
            ConfigDir::ReplicationResync => "replication/resync",
        }
    }

    /// Whether records here hold secrets (sealed with the KMS when the
    /// store has one).
    pub fn is_secret(self) -> bool {
        matches!(self, ConfigDir::IamKeys | ConfigDir::ReplicationTargets)
    }
}

/// The file a record named `name` is kept in by the stores that keep
/// records as files: the hex of the name, so no name, whatever it holds
/// (`..`, `/`), becomes more than one path segment.
pub fn record_file_name(name: &str) -> String {
    format!("{}.json", hex::encode(name.as_bytes()))
}

/// The record name of a file [`record_file_name`] made (`None`: another
/// file).
pub fn record_name(file: &str) -> Option<String> {
    let h = file.strip_suffix(".json")?;
    String::from_utf8(hex::decode(h).ok()?).ok()
}

/// Where a server keeps its own records.
#[async_trait]
pub trait ConfigStore: Send + Sync + 'static {
    /// Every live record in `dir`: name and contents.
    async fn config_list(&self, dir: ConfigDir) -> ObjectResult<Vec<(String, Vec<u8>)>>;

    /// Writes record `name` of `dir` (`None`: deletes it).
    async fn config_put(
        &self,
        dir: ConfigDir,
        name: &str,
        body: Option<Vec<u8>>,
    ) -> ObjectResult<()>;

    /// For a store other servers change too (a federation's etcd): a
    /// counter bumped whenever its records may have changed, so a reader
    /// keeping a copy reads them again. `None` (the default): only this
    /// server changes them.
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// Seals records of secret directories (`ConfigDir::is_secret`) for a
/// store that keeps them outside this server (a federation's etcd), with
/// the server's KMS: the sealed bytes are bound to the directory and the
/// name, so a record moved to another name does not open.
#[async_trait]
pub trait ConfigSealer: Send + Sync + 'static {
    async fn seal(&self, dir: ConfigDir, name: &str, plain: &[u8]) -> ObjectResult<Vec<u8>>;
    async fn open(&self, dir: ConfigDir, name: &str, sealed: &[u8]) -> ObjectResult<Vec<u8>>;
}

/// What a sealed record is bound to (AEAD associated data, KMS context).
pub fn record_context(dir: ConfigDir, name: &str) -> Vec<u8> {
    format!("cairn-config\0{}\0{name}", dir.as_str()).into_bytes()
}

/// Records in memory: for tests and for servers that keep nothing.
#[derive(Debug, Default)]
pub struct MemConfig {
    records: Mutex<BTreeMap<(ConfigDir, String), Vec<u8>>>,
}

impl MemConfig {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ConfigStore for MemConfig {
    async fn config_list(&self, dir: ConfigDir) -> ObjectResult<Vec<(String, Vec<u8>)>> {
        let g = self.records.lock().unwrap_or_else(|p| p.into_inner());
        Ok(g.iter()
            .filter(|((d, _), _)| *d == dir)
            .map(|((_, n), b)| (n.clone(), b.clone()))
            .collect())
    }

    async fn config_put(
        &self,
        dir: ConfigDir,
        name: &str,
        body: Option<Vec<u8>>,
    ) -> ObjectResult<()> {
        let mut g = self.records.lock().unwrap_or_else(|p| p.into_inner());
        match body {
            Some(b) => g.insert((dir, name.to_owned()), b),
            None => g.remove(&(dir, name.to_owned())),
        };
        Ok(())
    }
}
