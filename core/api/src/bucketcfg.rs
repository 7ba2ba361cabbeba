//! A bucket's configuration beyond encryption: versioning, object lock,
//! WORM mode, tags and lifecycle, and the per-version changes that go with
//! them.

use serde::{Deserialize, Serialize};

use crate::acl::{Acl, ObjectOwnership, PublicAccessBlock};
use crate::cors::CorsConfig;
use crate::lifecycle::Lifecycle;
use crate::lock::{DefaultRetention, Retention};
use crate::tags::Tags;
use crate::versioning::Versioning;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketConfig {
    #[serde(default)]
    pub versioning: Versioning,
    /// Object lock was enabled (at creation, or later on a versioned
    /// bucket); it can never be switched off.
    #[serde(default)]
    pub object_lock: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_retention: Option<DefaultRetention>,
    /// Bucket-wide WORM: no existing object may change, whoever asks; it
    /// can never be switched off.
    #[serde(default)]
    pub worm: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// The bucket policy, as the client gave it (checked by the front
    /// before it is stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The bucket's ACL (`None`: the default, the owner has full control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_access_block: Option<PublicAccessBlock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<ObjectOwnership>,
    /// Browser cross-origin rules (checked by the front before stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsConfig>,
    /// Event notification rules (checked by the front before stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<crate::notify::NotificationConfig>,
    /// Replication rules (checked by the front before stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<crate::replication::ReplicationConfig>,
}

/// One change to a bucket's configuration.
#[derive(Debug, Clone)]
pub enum BucketChange {
    Versioning(Versioning),
    /// Enables object lock (if not yet) and sets the default retention.
    ObjectLock(Option<DefaultRetention>),
    Worm,
    Tags(Option<Tags>),
    Lifecycle(Option<Lifecycle>),
    Policy(Option<String>),
    Acl(Option<Acl>),
    PublicAccessBlock(Option<PublicAccessBlock>),
    Ownership(Option<ObjectOwnership>),
    Cors(Option<CorsConfig>),
    Notification(Option<crate::notify::NotificationConfig>),
    Replication(Option<crate::replication::ReplicationConfig>),
}

/// One change to an existing version's attributes.
#[derive(Debug, Clone)]
pub enum VersionChange {
    Retention {
        retention: Option<Retention>,
        bypass_governance: bool,
    },
    LegalHold(bool),
    Tags(Tags),
    /// The version's ACL (`None`: the default).
    Acl(Option<Acl>),
}

/// Options of `make_bucket_with`.
#[derive(Debug, Clone, Default)]
pub struct MakeBucketOptions {
    /// Creates the bucket with object lock (and so versioning) enabled.
    pub object_lock: bool,
}
