//! The one mapping from `ObjectError` to an S3 error code and HTTP status.

use cairn_api::{ObjectError, ObjectResult};
use http::{HeaderMap, HeaderValue, StatusCode};
use s3s::{S3Error, S3ErrorCode, S3Result};

/// An error code S3 clients know but `s3s` has no variant for.
pub(crate) fn custom(code: &'static str) -> S3ErrorCode {
    S3ErrorCode::from_bytes(code.as_bytes()).unwrap_or(S3ErrorCode::InvalidRequest)
}

/// Maps an `ObjectError` to what an S3 client sees. Every operation goes
/// through here: codes and statuses are decided in this one place.
pub(crate) fn s3_error(e: ObjectError) -> S3Error {
    use ObjectError as E;
    use S3ErrorCode as C;

    let message = e.to_string();
    let mut status = None;
    let mut headers = None;
    let code = match &e {
        E::InvalidBucketName { .. } => C::InvalidBucketName,
        E::InvalidObjectName { .. } => {
            status = Some(StatusCode::BAD_REQUEST);
            custom("InvalidObjectName")
        }
        E::KeyTooLong { .. } => C::KeyTooLongError,
        E::NoSuchBucket { .. } => C::NoSuchBucket,
        E::BucketAlreadyExists { .. } => C::BucketAlreadyOwnedByYou,
        E::BucketNameTaken { .. } => C::BucketAlreadyExists,
        E::BucketNotEmpty { .. } => C::BucketNotEmpty,
        E::NoSuchKey { .. } => C::NoSuchKey,
        E::NoSuchUpload { .. } => C::NoSuchUpload,
        // MinIO's gateway answered this case with a 409 too.
        E::KeyConflict { .. } => {
            status = Some(StatusCode::CONFLICT);
            custom("KeyConflict")
        }
        E::InvalidRange { size } => {
            headers = header("content-range", &format!("bytes */{size}"));
            C::InvalidRange
        }
        E::PreconditionFailed => C::PreconditionFailed,
        E::InvalidPartNumber { .. } => {
            status = Some(StatusCode::RANGE_NOT_SATISFIABLE);
            custom("InvalidPartNumber")
        }
        E::ConditionalRequestConflict { .. } => {
            status = Some(StatusCode::CONFLICT);
            custom("ConditionalRequestConflict")
        }
        E::NotModified { etag } => {
            headers = header("etag", &format!("\"{etag}\""));
            C::NotModified
        }
        E::InvalidDigest { .. } => C::InvalidDigest,
        E::BadDigest { .. } | E::ChecksumMismatch { .. } => C::BadDigest,
        E::IncompleteBody { .. } => C::IncompleteBody,
        E::EntityTooLarge { .. } => C::EntityTooLarge,
        E::EntityTooSmall { .. } => C::EntityTooSmall,
        E::InvalidPart { .. } => C::InvalidPart,
        E::InvalidPartOrder => C::InvalidPartOrder,
        E::InvalidStorageClass { .. } => C::InvalidStorageClass,
        E::InvalidArgument { .. } => C::InvalidArgument,
        E::Unavailable { .. } | E::BackendUnavailable { .. } => C::ServiceUnavailable,
        E::StorageFull { .. } => {
            // S3 has no code for it; MinIO answers 507 as well.
            status = Some(StatusCode::INSUFFICIENT_STORAGE);
            custom("StorageFull")
        }
        E::BodyRead { message } => {
            let (code, st) = body_read_code(message);
            status = st;
            code
        }
        E::NotImplemented { .. } | E::KmsNotConfigured => C::NotImplemented,
        E::InvalidEncryptionAlgorithm { .. } => C::InvalidEncryptionAlgorithmError,
        E::InvalidSseCustomerKey { .. }
        | E::SseCustomerKeyMissing { .. }
        | E::SseCustomerKeyNotExpected { .. }
        | E::SseCustomerKeyInsecure => C::InvalidRequest,
        // S3 answers a wrong SSE-C key with 403.
        E::SseCustomerKeyMismatch { .. } | E::AccessDenied { .. } => C::AccessDenied,
        E::KmsKeyNotFound { .. } => {
            status = Some(StatusCode::BAD_REQUEST);
            custom("KMS.NotFoundException")
        }
        E::Kms { message } => {
            tracing::error!(error = %message, "KMS error");
            status = Some(StatusCode::INTERNAL_SERVER_ERROR);
            custom("KMS.InternalException")
        }
        E::DecryptFailed { .. } => {
            tracing::error!(error = %message, "decryption failed");
            C::InternalError
        }
        // logged at ERROR and counted by the store where it was found
        E::DataLost { .. } => C::InternalError,
        E::NoSuchVersion { .. } => C::NoSuchVersion,
        E::DeleteMarker {
            version_id,
            by_version,
            last_modified,
            ..
        } => {
            let mut h = HeaderMap::new();
            h.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
            // AWS names the marker's time on the 405
            if *by_version
                && let Some(v) = last_modified
                    .map(crate::convert::timestamp)
                    .as_ref()
                    .and_then(crate::convert::http_date)
                    .and_then(|d| HeaderValue::from_str(&d).ok())
            {
                h.insert(http::header::LAST_MODIFIED, v);
            }
            if let Ok(v) =
                HeaderValue::from_str(cairn_api::versioning::version_label(version_id.as_deref()))
            {
                h.insert("x-amz-version-id", v);
            }
            headers = Some(h);
            if *by_version {
                C::MethodNotAllowed
            } else {
                C::NoSuchKey
            }
        }
        E::ObjectLocked { .. } | E::Worm { .. } => C::AccessDenied,
        E::InvalidTag { .. } => C::InvalidTag,
        E::MalformedXml { .. } => C::MalformedXML,
        E::InvalidRequest { .. } => C::InvalidRequest,
        E::InvalidBucketState { .. } => C::InvalidBucketState,
        E::Internal { message } => {
            tracing::error!(error = %message, "internal error");
            return S3Error::with_message(
                C::InternalError,
                "We encountered an internal error. Please try again.",
            );
        }
    };
    let mut err = S3Error::with_message(code, message);
    if let Some(status) = status {
        err.set_status_code(status);
    }
    if let Some(h) = headers {
        err.set_headers(h);
    }
    err
}

/// A body that could not be read: `s3s` reports a failed chunk signature or
/// payload hash through the body stream, so its error text says which.
fn body_read_code(message: &str) -> (S3ErrorCode, Option<StatusCode>) {
    if message.contains("SignatureMismatch") {
        (S3ErrorCode::SignatureDoesNotMatch, None)
    } else if message.contains("Sha256Mismatch") {
        (
            custom("XAmzContentSHA256Mismatch"),
            Some(StatusCode::BAD_REQUEST),
        )
    } else {
        (S3ErrorCode::IncompleteBody, None)
    }
}

fn header(name: &'static str, value: &str) -> Option<HeaderMap> {
    let value = HeaderValue::from_str(value).ok()?;
    let mut h = HeaderMap::new();
    h.insert(name, value);
    Some(h)
}

/// `?`-friendly conversion of layer results.
pub(crate) trait IntoS3<T> {
    fn s3(self) -> S3Result<T>;
}

impl<T> IntoS3<T> for ObjectResult<T> {
    fn s3(self) -> S3Result<T> {
        self.map_err(s3_error)
    }
}

/// `InvalidArgument` with a message, for request fields the front checks.
pub(crate) fn invalid_argument(message: impl Into<String>) -> S3Error {
    s3_error(ObjectError::InvalidArgument {
        message: message.into(),
    })
}

/// `NotImplemented` for a request feature Cairn does not offer (yet):
/// refused, never silently ignored.
pub(crate) fn not_implemented(what: &'static str) -> S3Error {
    s3_error(ObjectError::NotImplemented { what })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_api::{ChecksumAlgorithm, QuorumOp};

    fn status(e: ObjectError) -> (String, u16) {
        let e = s3_error(e);
        (
            e.code().as_str().to_owned(),
            e.status_code().map_or(0, |s| s.as_u16()),
        )
    }

    #[test]
    fn codes_and_statuses() {
        let cases: Vec<(ObjectError, &str, u16)> = vec![
            (
                ObjectError::NoSuchBucket { bucket: "b".into() },
                "NoSuchBucket",
                404,
            ),
            (ObjectError::no_such_key(&"b", &"k"), "NoSuchKey", 404),
            (
                ObjectError::BucketAlreadyExists { bucket: "b".into() },
                "BucketAlreadyOwnedByYou",
                409,
            ),
            (
                ObjectError::BucketNotEmpty { bucket: "b".into() },
                "BucketNotEmpty",
                409,
            ),
            (
                ObjectError::InvalidBucketName {
                    name: "B".into(),
                    reason: "r",
                },
                "InvalidBucketName",
                400,
            ),
            (
                ObjectError::InvalidObjectName {
                    key: "a//b".into(),
                    reason: "r",
                },
                "InvalidObjectName",
                400,
            ),
            (
                ObjectError::KeyTooLong { len: 2000 },
                "KeyTooLongError",
                400,
            ),
            (ObjectError::InvalidRange { size: 3 }, "InvalidRange", 416),
            (ObjectError::PreconditionFailed, "PreconditionFailed", 412),
            (
                ObjectError::ConditionalRequestConflict {
                    bucket: "b".into(),
                    key: "k".into(),
                },
                "ConditionalRequestConflict",
                409,
            ),
            (
                ObjectError::NotModified { etag: "e".into() },
                "NotModified",
                304,
            ),
            (
                ObjectError::InvalidDigest { given: "x".into() },
                "InvalidDigest",
                400,
            ),
            (
                ObjectError::BadDigest {
                    expected: "a".into(),
                    computed: "b".into(),
                },
                "BadDigest",
                400,
            ),
            (
                ObjectError::ChecksumMismatch {
                    algorithm: ChecksumAlgorithm::Sha256,
                    expected: "a".into(),
                    computed: "b".into(),
                },
                "BadDigest",
                400,
            ),
            (
                ObjectError::IncompleteBody {
                    expected: 3,
                    got: 2,
                },
                "IncompleteBody",
                400,
            ),
            (
                ObjectError::EntityTooLarge { size: 9, max: 1 },
                "EntityTooLarge",
                400,
            ),
            (
                ObjectError::EntityTooSmall {
                    part_number: 1,
                    size: 1,
                },
                "EntityTooSmall",
                400,
            ),
            (
                ObjectError::InvalidPart { part_number: 1 },
                "InvalidPart",
                400,
            ),
            (ObjectError::InvalidPartOrder, "InvalidPartOrder", 400),
            (
                ObjectError::NoSuchUpload {
                    upload_id: "u".into(),
                },
                "NoSuchUpload",
                404,
            ),
            (
                ObjectError::InvalidStorageClass {
                    class: "GLACIER".into(),
                },
                "InvalidStorageClass",
                400,
            ),
            (
                ObjectError::InvalidArgument {
                    message: "m".into(),
                },
                "InvalidArgument",
                400,
            ),
            (
                ObjectError::Unavailable {
                    op: QuorumOp::Write,
                    needed: 5,
                    got: 3,
                },
                "ServiceUnavailable",
                503,
            ),
            (
                ObjectError::BackendUnavailable {
                    backend: "the NAS gateway",
                    reason: "r",
                },
                "ServiceUnavailable",
                503,
            ),
            (
                ObjectError::BodyRead {
                    message: "connection reset".into(),
                },
                "IncompleteBody",
                400,
            ),
            (
                ObjectError::BodyRead {
                    message: "AwsChunkedStreamError: SignatureMismatch".into(),
                },
                "SignatureDoesNotMatch",
                403,
            ),
            (
                ObjectError::NotImplemented { what: "x" },
                "NotImplemented",
                501,
            ),
            (ObjectError::internal("boom"), "InternalError", 500),
        ];
        for (e, code, st) in cases {
            let dbg = format!("{e:?}");
            assert_eq!(status(e), (code.to_owned(), st), "{dbg}");
        }
    }

    #[test]
    fn messages_say_why() {
        let e = s3_error(ObjectError::Unavailable {
            op: QuorumOp::Read,
            needed: 5,
            got: 3,
        });
        let m = e.message().unwrap_or_default();
        assert!(m.contains('5') && m.contains('3'), "{m}");
        let e = s3_error(ObjectError::BackendUnavailable {
            backend: "the GCS gateway",
            reason: "the remote store failed or cannot be reached",
        });
        let m = e.message().unwrap_or_default();
        assert!(m.starts_with("the GCS gateway is unavailable"), "{m}");
        let e = s3_error(ObjectError::ChecksumMismatch {
            algorithm: ChecksumAlgorithm::Crc32c,
            expected: "a".into(),
            computed: "b".into(),
        });
        assert!(e.message().unwrap_or_default().contains("crc32c"));
        let e = s3_error(ObjectError::internal("secret detail"));
        assert!(!e.message().unwrap_or_default().contains("secret"));
    }
}
