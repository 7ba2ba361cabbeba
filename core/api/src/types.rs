//! Option and result types of the `ObjectLayer` operations.

use std::collections::BTreeMap;
use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;
use time::OffsetDateTime;

use crate::checksum::{Checksum, ChecksumRequest};
use crate::error::ObjectError;
use crate::names::{BucketName, ObjectKey};
use crate::sse::{CustomerKey, Encryption, SseRequest};

/// A body moving through the core: chunks of bytes, never the whole object.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Wraps any stream of byte chunks as a `ByteStream`.
pub fn byte_stream<S>(s: S) -> ByteStream
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    Box::pin(s)
}

/// A body held in memory (small objects, tests).
pub fn bytes_stream(data: impl Into<Bytes>) -> ByteStream {
    let data = data.into();
    Box::pin(futures::stream::iter(
        (!data.is_empty()).then_some(Ok(data)),
    ))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    pub name: String,
    pub created: OffsetDateTime,
}

/// Storage classes a client may ask for; they pick the parity count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum StorageClass {
    #[default]
    Standard,
    ReducedRedundancy,
}

impl StorageClass {
    pub fn parse(s: &str) -> Result<Self, ObjectError> {
        match s {
            "STANDARD" => Ok(Self::Standard),
            "REDUCED_REDUNDANCY" => Ok(Self::ReducedRedundancy),
            other => Err(ObjectError::InvalidStorageClass {
                class: other.to_owned(),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "STANDARD",
            Self::ReducedRedundancy => "REDUCED_REDUNDANCY",
        }
    }
}

/// The standard HTTP headers S3 stores with an object and returns on GET.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
}

/// Metadata a writer sets on an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMetadata {
    pub headers: ObjectHeaders,
    /// `x-amz-meta-*` without the prefix, lowercase names.
    pub user: BTreeMap<String, String>,
    pub storage_class: StorageClass,
}

#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub metadata: ObjectMetadata,
    /// Content-Length as declared; a body of another length is refused.
    pub content_length: Option<u64>,
    pub content_md5: Option<[u8; 16]>,
    pub checksum: Option<ChecksumRequest>,
    /// Encrypt the object (else the bucket's default encryption applies).
    pub sse: Option<SseRequest>,
    /// Tags (`x-amz-tagging`), retention and legal hold the new version
    /// gets (the bucket's default retention applies when none is given).
    pub tags: crate::tags::Tags,
    pub retention: Option<crate::lock::Retention>,
    pub legal_hold: bool,
    /// The new version's ACL (`None`: the default, private).
    pub acl: Option<crate::acl::Acl>,
    /// Write-back (the file fronts' close): the object is visible at once,
    /// but made durable by the layer's next group sync (within about a
    /// second, and before `ObjectLayer::sync` returns) rather than before
    /// this call returns. The S3 front never sets it: a PUT's answer means
    /// durable. Layers without write-back treat it as a plain write.
    pub write_back: bool,
    /// A conditional write (`If-Match` / `If-None-Match: *`), checked
    /// against the current object in the same step as the commit.
    pub precondition: Option<crate::conditional::WritePrecondition>,
    /// The event the write raises (`None`: `s3:ObjectCreated:Put`).
    pub event: Option<crate::notify::EventName>,
    /// The version is a replica of this source version: it keeps its id
    /// and mod time and is marked REPLICA (set by the S3 front only for a
    /// caller allowed `s3:ReplicateObject`).
    pub replica: Option<crate::replication::ReplicaOf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Hex MD5 (or multipart `md5-N`), without quotes.
    pub etag: String,
    pub last_modified: OffsetDateTime,
    pub headers: ObjectHeaders,
    pub user_metadata: BTreeMap<String, String>,
    pub storage_class: StorageClass,
    pub checksum: Option<Checksum>,
    pub version_id: Option<String>,
    /// Number of parts for a multipart object, `None` for a single PUT.
    pub parts_count: Option<u32>,
    /// Server-side encryption, `None` for a plain object.
    pub encryption: Option<Encryption>,
    /// Delete marker, lock and tags of this version.
    pub attrs: crate::versioning::VersionAttrs,
}

impl PutOptions {
    /// What this write asks beyond data and metadata (tags, object lock),
    /// for layers without versions to refuse by name.
    pub fn version_attrs_asked(&self) -> Option<&'static str> {
        if self.retention.is_some() || self.legal_hold {
            Some("object lock")
        } else if !self.tags.is_empty() {
            Some("object tags")
        } else if self.acl.is_some() {
            Some("object ACLs")
        } else {
            None
        }
    }
}

impl ObjectInfo {
    pub fn metadata(&self) -> ObjectMetadata {
        ObjectMetadata {
            headers: self.headers.clone(),
            user: self.user_metadata.clone(),
            storage_class: self.storage_class,
        }
    }
}

/// How much a store holds and has free, in bytes of object data (after
/// erasure coding overhead): what `statfs`/`df` show on the file fronts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub total_bytes: u64,
    pub free_bytes: u64,
}

/// A byte range as given in an HTTP `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-` or `bytes=first-last` (inclusive).
    FromTo { first: u64, last: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix { len: u64 },
}

impl ByteRange {
    /// Resolves against an object size to `(offset, length)`.
    pub fn resolve(self, size: u64) -> Result<(u64, u64), ObjectError> {
        match self {
            ByteRange::FromTo { first, last } => {
                if first >= size {
                    return Err(ObjectError::InvalidRange { size });
                }
                let last = last.map_or(size - 1, |l| l.min(size - 1));
                if last < first {
                    return Err(ObjectError::InvalidRange { size });
                }
                Ok((first, last - first + 1))
            }
            ByteRange::Suffix { len } => {
                if len == 0 {
                    return Err(ObjectError::InvalidRange { size });
                }
                let len = len.min(size);
                Ok((size - len, len))
            }
        }
    }
}

/// Conditional request headers, evaluated against the current object in
/// the same step as the read or copy they guard.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<OffsetDateTime>,
    pub if_unmodified_since: Option<OffsetDateTime>,
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(|s| s.trim())
        .any(|c| c == "*" || c.trim_start_matches("W/").trim_matches('"') == etag)
}

impl Conditions {
    /// RFC 7232 order; `NotModified` is only for reads (the caller decides).
    pub fn check(&self, info: &ObjectInfo) -> Result<(), ObjectError> {
        let lm = info
            .last_modified
            .replace_nanosecond(0)
            .unwrap_or(info.last_modified);
        if let Some(m) = &self.if_match {
            if !etag_matches(m, &info.etag) {
                return Err(ObjectError::PreconditionFailed);
            }
        } else if let Some(t) = self.if_unmodified_since
            && lm > t
        {
            return Err(ObjectError::PreconditionFailed);
        }
        if let Some(m) = &self.if_none_match {
            if etag_matches(m, &info.etag) {
                return Err(ObjectError::NotModified {
                    etag: info.etag.clone(),
                });
            }
        } else if let Some(t) = self.if_modified_since
            && lm <= t
        {
            return Err(ObjectError::NotModified {
                etag: info.etag.clone(),
            });
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.if_match.is_none()
            && self.if_none_match.is_none()
            && self.if_modified_since.is_none()
            && self.if_unmodified_since.is_none()
    }
}

#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// A version other than the current one (`Some(None)`: the null
    /// version).
    pub version_id: Option<Option<String>>,
    pub range: Option<ByteRange>,
    pub conditions: Conditions,
    /// The SSE-C key of an object encrypted with one.
    pub sse_customer: Option<CustomerKey>,
    /// Only the version's attributes are wanted (tags, retention, legal
    /// hold): S3 serves them without the SSE-C key.
    pub attributes_only: bool,
}

/// An object being read: its info, the byte range served, and the bytes.
pub struct GetObject {
    pub info: ObjectInfo,
    /// `(offset, length)` when a range was asked for.
    pub range: Option<(u64, u64)>,
    pub body: ByteStream,
}

#[derive(Debug, Clone, Default)]
pub enum MetadataDirective {
    #[default]
    Copy,
    Replace(ObjectMetadata),
}

#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    pub metadata: MetadataDirective,
    pub source_conditions: Conditions,
    /// Storage class of the copy when the metadata is copied.
    pub storage_class: Option<StorageClass>,
    /// The source's SSE-C key, when it has one.
    pub source_sse_customer: Option<CustomerKey>,
    /// Encryption of the copy (as for a PUT: not inherited from the source).
    pub sse: Option<SseRequest>,
    /// Keep the source's encryption when `sse` is `None` (the file fronts'
    /// chmod/chown/utimens must not decrypt an object); S3 copies leave it
    /// false, as S3 does not inherit encryption.
    pub keep_encryption: bool,
    /// Copy this version of the source (`Some(None)`: the null version).
    pub source_version_id: Option<Option<String>>,
    /// Tags of the copy (`x-amz-tagging-directive: REPLACE`); `None` keeps
    /// the source's.
    pub tags: Option<crate::tags::Tags>,
    /// ACL of the copy: `Some(acl)` as the request gives it (S3: a copy
    /// never takes its source's ACL; `Some(None)` is the default);
    /// `None` keeps the source's (the file fronts' metadata rewrites).
    pub acl: Option<Option<crate::acl::Acl>>,
    /// The copy's checksum (`x-amz-checksum-algorithm`), computed over
    /// the copied bytes; `None` keeps the source's algorithm.
    pub checksum: Option<crate::checksum::ChecksumAlgorithm>,
    /// Commit only if this holds of the DESTINATION key's current object
    /// (CopyObject's `If-Match` / `If-None-Match: *`), judged with the
    /// commit as a conditional PUT's; every path a copy takes judges it
    /// or refuses the copy.
    pub precondition: Option<crate::conditional::WritePrecondition>,
}

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// List keys strictly after this one (v1 marker, v2 start-after or
    /// continuation token).
    pub start_after: Option<String>,
    pub max_keys: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectInfo>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix returned: where the next page starts.
    pub next_marker: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PartOptions {
    pub content_length: Option<u64>,
    pub content_md5: Option<[u8; 16]>,
    pub checksum: Option<ChecksumRequest>,
    /// The upload's SSE-C key, when it was created with one.
    pub sse_customer: Option<CustomerKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified: OffsetDateTime,
    pub checksum: Option<Checksum>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletePart {
    pub part_number: u32,
    pub etag: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub initiated: OffsetDateTime,
    pub storage_class: StorageClass,
}

#[derive(Debug, Clone, Default)]
pub struct ListPartsPage {
    pub parts: Vec<PartInfo>,
    pub is_truncated: bool,
    pub next_part_number_marker: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct ListUploadsOptions {
    pub prefix: String,
    pub key_marker: Option<String>,
    pub upload_id_marker: Option<String>,
    pub max_uploads: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ListUploadsPage {
    pub uploads: Vec<UploadInfo>,
    pub is_truncated: bool,
}

/// Smallest size of every part but the last, as S3 enforces on complete.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest single PUT / part.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
pub const MAX_PART_NUMBER: u32 = 10_000;

/// The outcome of deleting one key in a batch.
#[derive(Debug, Clone)]
pub struct DeleteResult {
    pub key: String,
    pub result: Result<crate::versioning::DeleteOutcome, ObjectError>,
}

pub fn validate_names(bucket: &str, key: &str) -> Result<(BucketName, ObjectKey), ObjectError> {
    Ok((BucketName::new(bucket)?, ObjectKey::new(key)?))
}
