//! cairn-api: the boundary between Cairn's fronts (S3, FUSE, NFS) and its
//! stores (erasure sets, gateway backends). Nothing protocol-specific
//! crosses it.
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

pub mod acl;
pub mod admin;
pub mod bucketcfg;
pub mod caps;
pub mod changes;
pub mod checksum;
pub mod conditional;
pub mod config;
pub mod cors;
pub mod error;
pub mod event_message;
pub mod fast_md5;
pub mod fsio;
pub mod layer;
pub mod lifecycle;
pub mod list;
pub mod lock;
pub mod md5_lanes;
pub mod mpchecksum;
pub mod multipart;
pub mod names;
pub mod notify;
pub mod patch;
pub mod path;
pub mod replication;
pub mod sse;
pub mod tags;
pub mod types;
pub mod versioning;

#[cfg(feature = "test-util")]
// a test suite (feature test-util): its asserts index what it just wrote
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
pub mod conformance;
#[cfg(feature = "test-util")]
pub mod mem;

pub use bucketcfg::{BucketChange, BucketConfig, MakeBucketOptions, VersionChange};
pub use caps::Capabilities;
pub use checksum::{Checksum, ChecksumAlgorithm, ChecksumRequest};
pub use conditional::{CompleteOptions, WritePrecondition};
pub use config::{ConfigDir, ConfigSealer, ConfigStore, MemConfig};
pub use error::{ObjectError, ObjectResult, QuorumOp};
pub use layer::{ObjectLayer, collect_stream};
pub use lifecycle::{Lifecycle, LifecycleRule};
pub use lock::{DefaultRetention, Retention, RetentionMode, RetentionPeriod};
pub use names::{BucketName, ObjectKey, prefix_folder};
pub use patch::{PatchBase, PatchOptions, PatchStream, patch_stream};
pub use path::{PathError, RelPath, SafePath, Segment};
pub use sse::{BucketEncryption, CustomerKey, Encryption, SseRequest};
pub use tags::Tags;
pub use types::*;
pub use versioning::{
    DeleteOptions, DeleteOutcome, ListVersionsOptions, ListVersionsPage, VersionAttrs,
    VersionEntry, Versioning,
};
