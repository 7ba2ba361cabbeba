//! Versioning: the bucket's state, what a version carries besides its
//! data (delete marker, lock, tags), deletes by version and the listing of
//! versions.

use serde::{Deserialize, Serialize};

use crate::lock::Retention;
use crate::tags::Tags;
use crate::types::ObjectInfo;

/// The version id S3 shows for the version an unversioned (or
/// suspended) bucket writes.
pub const NULL_VERSION: &str = "null";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Versioning {
    /// Never enabled: every write replaces the `null` version.
    #[default]
    Unversioned,
    Enabled,
    /// Was enabled: existing versions stay, new writes replace `null`.
    Suspended,
}

impl Versioning {
    /// New writes get a fresh version id (else they are the `null` one).
    pub fn keeps_versions(self) -> bool {
        self == Versioning::Enabled
    }

    /// Deleting a key without a version id leaves a delete marker.
    pub fn marks_deletes(self) -> bool {
        self != Versioning::Unversioned
    }
}

/// Per-version attributes besides data and metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionAttrs {
    /// This version is a delete marker (no data).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_marker: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    /// The version's ACL (`None`: the default, the owner has full control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<crate::acl::Acl>,
    /// `x-amz-replication-status` (`None`: no rule wanted it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<crate::replication::ReplicationStatus>,
}

/// The external form of a version id (`None` is the null version).
pub fn version_label(id: Option<&str>) -> &str {
    id.unwrap_or(NULL_VERSION)
}

/// Parses a `versionId` from a request: `"null"` is the null version.
pub fn parse_version_id(id: &str) -> Option<String> {
    (id != NULL_VERSION).then(|| id.to_owned())
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Delete this version (`Some(None)`: the null version) instead of
    /// the key's current view.
    pub version_id: Option<Option<String>>,
    /// `x-amz-bypass-governance-retention` from a caller allowed to use it.
    pub bypass_governance: bool,
    /// The marker is a replica of this source marker (replication only).
    pub replica: Option<crate::replication::ReplicaOf>,
    /// A lifecycle rule expires it: its event is s3:LifecycleExpiration:*
    /// rather than s3:ObjectRemoved:*.
    pub lifecycle: bool,
}

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// The version removed, or the delete marker made.
    pub version_id: Option<String>,
    /// A delete marker was made, or the version removed was one.
    pub delete_marker: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ListVersionsOptions {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    /// With `key_marker`: continue after this version of that key.
    pub version_id_marker: Option<String>,
    pub max_keys: usize,
}

/// One entry of a version listing (a version or a delete marker).
#[derive(Debug, Clone)]
pub struct VersionEntry {
    pub info: ObjectInfo,
    pub is_latest: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ListVersionsPage {
    pub versions: Vec<VersionEntry>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
}
