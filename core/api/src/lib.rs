//! cairn-api: the boundary between Cairn's fronts (S3, FUSE, NFS) and its
//! stores (erasure sets, gateway backends). Nothing protocol-specific
//! crosses it.

pub mod admin;
pub mod caps;
pub mod changes;
pub mod checksum;
pub mod error;
pub mod layer;
pub mod list;
pub mod multipart;
pub mod names;
pub mod sse;
pub mod types;

#[cfg(feature = "test-util")]
pub mod conformance;
#[cfg(feature = "test-util")]
pub mod mem;

pub use caps::Capabilities;
pub use checksum::{Checksum, ChecksumAlgorithm, ChecksumRequest};
pub use error::{ObjectError, ObjectResult, QuorumOp};
pub use layer::{ObjectLayer, collect_stream};
pub use names::{BucketName, ObjectKey};
pub use sse::{BucketEncryption, CustomerKey, Encryption, SseRequest};
pub use types::*;
