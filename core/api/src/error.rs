//! The one error type every `ObjectLayer` returns. Each front maps it once.

use crate::checksum::ChecksumAlgorithm;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumOp {
    Read,
    Write,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ObjectError {
    #[error("invalid bucket name {name:?}: {reason}")]
    InvalidBucketName { name: String, reason: &'static str },
    #[error("invalid object key {key:?}: {reason}")]
    InvalidObjectName { key: String, reason: &'static str },
    #[error("object key is {len} bytes; the limit is 1024")]
    KeyTooLong { len: usize },
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket { bucket: String },
    #[error("bucket {bucket} already exists")]
    BucketAlreadyExists { bucket: String },
    /// The name is held elsewhere in a shared namespace (federation: by
    /// another site): S3's 409 BucketAlreadyExists.
    #[error("bucket name {bucket} is taken by site {site}")]
    BucketNameTaken { bucket: String, site: String },
    #[error("bucket {bucket} is not empty")]
    BucketNotEmpty { bucket: String },
    #[error("object {bucket}/{key} does not exist")]
    NoSuchKey { bucket: String, key: String },
    /// The key cannot exist next to another one on this backend (a NAS
    /// share cannot hold a file `a` and a file `a/b`).
    #[error("object {bucket}/{key} cannot be stored: {reason}")]
    KeyConflict {
        bucket: String,
        key: String,
        reason: &'static str,
    },
    #[error("multipart upload {upload_id} does not exist")]
    NoSuchUpload { upload_id: String },
    #[error("range is not satisfiable for an object of {size} bytes")]
    InvalidRange { size: u64 },
    #[error("precondition failed")]
    PreconditionFailed,
    /// A part read (`partNumber`) past the object's parts: 416.
    #[error("the object has {parts} parts; part {part_number} was asked for")]
    InvalidPartNumber { part_number: u32, parts: u32 },
    /// Another conditional write of the key is under way (S3's 409
    /// `ConditionalRequestConflict`: re-read and retry).
    #[error("another conditional write of {bucket}/{key} is in progress")]
    ConditionalRequestConflict { bucket: String, key: String },
    #[error("not modified")]
    NotModified { etag: String },
    #[error("Content-MD5 {given} is not a base64 MD5 digest")]
    InvalidDigest { given: String },
    #[error("Content-MD5 does not match the body: expected {expected}, computed {computed}")]
    BadDigest { expected: String, computed: String },
    #[error(
        "x-amz-checksum-{algorithm} does not match the body: expected {expected}, computed {computed}"
    )]
    ChecksumMismatch {
        algorithm: ChecksumAlgorithm,
        expected: String,
        computed: String,
    },
    #[error("body was {got} bytes, Content-Length said {expected}")]
    IncompleteBody { expected: u64, got: u64 },
    #[error("object of {size} bytes exceeds the limit of {max}")]
    EntityTooLarge { size: u64, max: u64 },
    #[error("part {part_number} is {size} bytes; every part but the last must be at least 5 MiB")]
    EntityTooSmall { part_number: u32, size: u64 },
    #[error("part {part_number} was not uploaded or its ETag does not match")]
    InvalidPart { part_number: u32 },
    #[error("parts must be listed in ascending order of part number")]
    InvalidPartOrder,
    #[error("invalid storage class {class:?}")]
    InvalidStorageClass { class: String },
    #[error("invalid argument: {message}")]
    InvalidArgument { message: String },
    #[error("not enough drives for a {op:?}: {needed} needed, {got} available")]
    Unavailable {
        op: QuorumOp,
        needed: usize,
        got: usize,
    },
    /// A gateway's backing store (the NAS share, the remote cloud) is gone
    /// or failing: 503, naming the gateway, which has no drives to count.
    #[error("{backend} is unavailable: {reason}")]
    BackendUnavailable {
        backend: &'static str,
        reason: &'static str,
    },
    #[error("drives are full: {needed} drives with free space needed, {got} available")]
    StorageFull { needed: usize, got: usize },
    #[error("the request body could not be read: {message}")]
    BodyRead { message: String },
    #[error("not implemented: {what}")]
    NotImplemented { what: &'static str },
    #[error("the encryption algorithm {algorithm:?} is not supported")]
    InvalidEncryptionAlgorithm { algorithm: String },
    #[error("invalid SSE-C key: {reason}")]
    InvalidSseCustomerKey { reason: &'static str },
    #[error(
        "object {bucket}/{key} is encrypted with a customer key (SSE-C): the request must provide it"
    )]
    SseCustomerKeyMissing { bucket: String, key: String },
    #[error("the customer key does not match the key object {bucket}/{key} was encrypted with")]
    SseCustomerKeyMismatch { bucket: String, key: String },
    #[error(
        "object {bucket}/{key} is not encrypted with a customer key; the SSE-C headers do not apply"
    )]
    SseCustomerKeyNotExpected { bucket: String, key: String },
    #[error("requests with a customer key (SSE-C) must be made over TLS")]
    SseCustomerKeyInsecure,
    #[error("server-side encryption was asked for, but no KMS is configured")]
    KmsNotConfigured,
    /// The request may not reach this object: e.g. a gateway path that a
    /// symbolic link on the backend would lead out of its bucket.
    #[error("access to {bucket}/{key} is denied: {reason}")]
    AccessDenied {
        bucket: String,
        key: String,
        reason: &'static str,
    },
    #[error("KMS key {key_id:?} does not exist")]
    KmsKeyNotFound { key_id: String },
    #[error("KMS error: {message}")]
    Kms { message: String },
    #[error("object {bucket}/{key} failed to decrypt: {reason}")]
    DecryptFailed {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error("version {version_id} of {bucket}/{key} does not exist")]
    NoSuchVersion {
        bucket: String,
        key: String,
        version_id: String,
    },
    /// The version asked for (or the key's current version) is a delete
    /// marker.
    #[error("{bucket}/{key}: the version is a delete marker")]
    DeleteMarker {
        bucket: String,
        key: String,
        version_id: Option<String>,
        /// Asked for by version id (S3 answers 405, else 404).
        by_version: bool,
        /// When the marker was made (S3's 405 names it in Last-Modified).
        last_modified: Option<time::OffsetDateTime>,
    },
    #[error("{bucket}/{key} is locked: {reason}")]
    ObjectLocked {
        bucket: String,
        key: String,
        reason: &'static str,
    },
    #[error("bucket {bucket} is in WORM mode: existing objects cannot be changed or deleted")]
    Worm { bucket: String },
    #[error("invalid tag: {message}")]
    InvalidTag { message: String },
    #[error("malformed configuration: {message}")]
    MalformedXml { message: String },
    #[error("the bucket's state does not allow this: {message}")]
    InvalidBucketState { message: String },
    #[error("invalid request: {message}")]
    InvalidRequest { message: String },
    /// Stored data that parity cannot rebuild: fewer than K shards of a
    /// block are readable (500, counted and logged by the store).
    #[error(
        "object {bucket}/{key} cannot be read: part {part} block {block} is damaged beyond what parity can rebuild ({detail})"
    )]
    DataLost {
        bucket: String,
        key: String,
        part: u32,
        block: u64,
        detail: String,
    },
    #[error("internal error: {message}")]
    Internal { message: String },
}

impl ObjectError {
    pub fn no_such_key(bucket: &impl AsRef<str>, key: &impl AsRef<str>) -> Self {
        Self::NoSuchKey {
            bucket: bucket.as_ref().to_owned(),
            key: key.as_ref().to_owned(),
        }
    }

    pub fn no_such_bucket(bucket: &impl AsRef<str>) -> Self {
        Self::NoSuchBucket {
            bucket: bucket.as_ref().to_owned(),
        }
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::Internal {
            message: message.to_string(),
        }
    }
}

pub type ObjectResult<T> = Result<T, ObjectError>;
