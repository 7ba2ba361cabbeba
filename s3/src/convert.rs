//! Conversions between the wire (s3s DTOs, headers) and cairn-api types:
//! names, bodies, metadata, times, ETags, checksums and conditions.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use cairn_api::checksum::TrailerFn;
use cairn_api::{
    BucketName, ByteStream, Checksum, ChecksumAlgorithm, ChecksumRequest, Conditions, ObjectError,
    ObjectHeaders, ObjectInfo, ObjectKey, ObjectMetadata, StorageClass,
};
use futures::{Stream, StreamExt as _, TryStreamExt as _};
use http::HeaderMap;
use s3s::dto::{self, ETag, ETagCondition, StreamingBlob, Timestamp, TimestampFormat};
use s3s::stream::RemainingLength;
use s3s::{S3Error, S3ErrorCode, S3Result, StdError, TrailingHeaders};
use time::OffsetDateTime;

use crate::errors::{IntoS3 as _, invalid_argument, not_implemented, s3_error};

/// AWS's limit on user metadata (names and values of `x-amz-meta-*`).
const MAX_USER_METADATA: usize = 2048;

pub(crate) fn bucket_name(name: &str) -> S3Result<BucketName> {
    BucketName::new(name).s3()
}

pub(crate) fn object_key(key: &str) -> S3Result<ObjectKey> {
    ObjectKey::new(key).s3()
}

// ---------------------------------------------------------------------------
// Bodies

/// A request body as the layer reads it: chunks as they arrive, never
/// buffered here.
/// The request body as a layer stream, already started: its first chunk
/// is awaited here, before the store does any I/O. hyper answers
/// `Expect: 100-continue` when a body is first read, and botocore (awscli,
/// boto3) waits only a second for that answer before sending the body
/// anyway; a `100 Continue` arriving after that is misread as the final
/// response (a response without its ETag: "upload failed: 'ETag'"), seen
/// on a loaded machine when the store was slow to start the upload.
pub(crate) async fn request_body(body: Option<StreamingBlob>) -> ByteStream {
    let mut s: ByteStream = match body {
        Some(blob) => Box::pin(blob.map_err(std::io::Error::other)),
        None => return Box::pin(futures::stream::empty()),
    };
    match s.next().await {
        None => Box::pin(futures::stream::empty()),
        Some(first) => Box::pin(futures::stream::iter([first]).chain(s)),
    }
}

/// A response body from a layer stream. `s3s` wants a `Sync` stream; the
/// mutex is never locked (`get_mut` on `&mut self`), it only makes the
/// `Send` stream `Sync`. The exact length lets hyper frame the response.
pub(crate) struct ResponseBody {
    inner: Mutex<ByteStream>,
    remaining: u64,
}

impl ResponseBody {
    pub(crate) fn blob(stream: ByteStream, len: u64) -> StreamingBlob {
        StreamingBlob::new(Self {
            inner: Mutex::new(stream),
            remaining: len,
        })
    }
}

impl Stream for ResponseBody {
    type Item = Result<Bytes, StdError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let inner = match this.inner.get_mut() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        match inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.remaining = this.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::warn!(error = %e, "response body failed mid-stream");
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl s3s::stream::ByteStream for ResponseBody {
    fn remaining_length(&self) -> RemainingLength {
        usize::try_from(self.remaining)
            .map_or_else(|_| RemainingLength::unknown(), RemainingLength::new_exact)
    }
}

// ---------------------------------------------------------------------------
// Times and ETags

pub(crate) fn timestamp(t: OffsetDateTime) -> Timestamp {
    Timestamp::from(t)
}

pub(crate) fn http_date(t: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

pub(crate) fn etag(value: &str) -> ETag {
    ETag::Strong(value.to_owned())
}

fn condition_string(c: &ETagCondition) -> String {
    match c {
        ETagCondition::Any => "*".to_owned(),
        ETagCondition::ETag(e) => e.value().to_owned(),
    }
}

pub(crate) fn conditions(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> Conditions {
    Conditions {
        if_match: if_match.map(condition_string),
        if_none_match: if_none_match.map(condition_string),
        if_modified_since: if_modified_since.map(|t| t.clone().into()),
        if_unmodified_since: if_unmodified_since.map(|t| t.clone().into()),
    }
}

/// The precondition of a conditional PutObject / CompleteMultipartUpload:
/// `If-None-Match: *` or `If-Match: <etag>` (or `*`). As S3: another
/// `If-None-Match` value, or both headers, is 501 NotImplemented.
pub(crate) fn write_precondition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<Option<cairn_api::WritePrecondition>> {
    use cairn_api::WritePrecondition as P;
    match (if_match, if_none_match) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(not_implemented(
            "conditional writes with both If-Match and If-None-Match",
        )),
        (None, Some(ETagCondition::Any)) => Ok(Some(P::Absent)),
        (None, Some(ETagCondition::ETag(_))) => Err(not_implemented(
            "conditional writes with If-None-Match other than '*'",
        )),
        (Some(c), None) => Ok(Some(P::Matches(condition_string(c)))),
    }
}

/// CopyObject's destination conditions (`If-Match`, `If-None-Match: *`,
/// which AWS added to CopyObject as to PutObject): s3s's CopyObjectInput
/// has no fields for them, so they are read from the request's headers,
/// with the rules of a conditional PUT.
pub(crate) fn copy_destination_precondition(
    headers: &http::HeaderMap,
) -> S3Result<Option<cairn_api::WritePrecondition>> {
    let parse = |name: http::header::HeaderName| {
        headers
            .get(&name)
            .map(|v| {
                ETagCondition::parse_http_header(v.as_bytes())
                    .map_err(|_| crate::errors::invalid_argument(format!("{name} is not an ETag")))
            })
            .transpose()
    };
    let if_match = parse(http::header::IF_MATCH)?;
    let if_none_match = parse(http::header::IF_NONE_MATCH)?;
    write_precondition(if_match.as_ref(), if_none_match.as_ref())
}

// ---------------------------------------------------------------------------
// Metadata

/// The metadata-bearing headers of PutObject, CopyObject (REPLACE) and
/// CreateMultipartUpload.
pub(crate) struct MetadataInput {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<Timestamp>,
    pub user: Option<dto::Metadata>,
    pub storage_class: Option<dto::StorageClass>,
}

impl MetadataInput {
    pub(crate) fn into_metadata(self) -> S3Result<ObjectMetadata> {
        let user: BTreeMap<String, String> = self
            .user
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let size: usize = user.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_USER_METADATA {
            return Err(S3Error::with_message(
                S3ErrorCode::MetadataTooLarge,
                format!("user metadata is {size} bytes; the limit is {MAX_USER_METADATA} bytes"),
            ));
        }
        Ok(ObjectMetadata {
            headers: ObjectHeaders {
                content_type: self.content_type.filter(|s| !s.is_empty()),
                content_encoding: self.content_encoding.as_deref().and_then(strip_aws_chunked),
                content_disposition: self.content_disposition,
                content_language: self.content_language,
                cache_control: self.cache_control,
                expires: self.expires.as_ref().and_then(http_date),
            },
            user,
            storage_class: storage_class(self.storage_class.as_ref())?,
        })
    }
}

pub(crate) fn storage_class(c: Option<&dto::StorageClass>) -> S3Result<StorageClass> {
    c.map_or(Ok(StorageClass::Standard), |c| {
        StorageClass::parse(c.as_str()).s3()
    })
}

/// `aws-chunked` is how the body travelled, not how the object is encoded.
fn strip_aws_chunked(v: &str) -> Option<String> {
    let kept: Vec<&str> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// The standard headers, user metadata and storage class of a stored object,
/// as GetObject and HeadObject return them.
pub(crate) struct ObjectHeadersOut {
    pub content_type: String,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<Timestamp>,
    /// An `Expires` that is not an HTTP date, sent verbatim.
    pub raw_expires: Option<String>,
    pub metadata: Option<dto::Metadata>,
    pub storage_class: Option<dto::StorageClass>,
}

impl ObjectHeadersOut {
    pub(crate) fn new(info: &ObjectInfo) -> Self {
        let h = &info.headers;
        let expires = h
            .expires
            .as_deref()
            .map(|e| Timestamp::parse(TimestampFormat::HttpDate, e).map_err(|_| e.to_owned()));
        Self {
            content_type: h
                .content_type
                .clone()
                .unwrap_or_else(|| "binary/octet-stream".to_owned()),
            content_encoding: h.content_encoding.clone(),
            content_disposition: h.content_disposition.clone(),
            content_language: h.content_language.clone(),
            cache_control: h.cache_control.clone(),
            expires: expires.clone().and_then(Result::ok),
            raw_expires: expires.and_then(Result::err),
            metadata: (!info.user_metadata.is_empty()).then(|| {
                info.user_metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
            storage_class: output_storage_class(info.storage_class),
        }
    }

    /// Headers the DTO cannot carry.
    pub(crate) fn extra_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = self
            .raw_expires
            .as_deref()
            .and_then(|e| http::HeaderValue::from_str(e).ok())
        {
            h.insert(http::header::EXPIRES, v);
        }
        h
    }
}

/// `x-amz-storage-class` is only sent for classes other than STANDARD.
pub(crate) fn output_storage_class(c: StorageClass) -> Option<dto::StorageClass> {
    (c != StorageClass::Standard).then(|| dto::StorageClass::from(c.as_str().to_owned()))
}

// ---------------------------------------------------------------------------
// Checksums

pub(crate) fn checksum_algorithm(a: &dto::ChecksumAlgorithm) -> S3Result<ChecksumAlgorithm> {
    ChecksumAlgorithm::from_str(a.as_str()).s3()
}

pub(crate) fn dto_checksum_algorithm(a: ChecksumAlgorithm) -> dto::ChecksumAlgorithm {
    dto::ChecksumAlgorithm::from(a.header_name().to_ascii_uppercase())
}

/// The `x-amz-checksum-*` values of a response, one field per algorithm.
#[derive(Default)]
pub(crate) struct ChecksumOut {
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub crc64nvme: Option<String>,
    pub checksum_type: Option<dto::ChecksumType>,
}

impl ChecksumOut {
    pub(crate) fn new(c: Option<&Checksum>) -> Self {
        let mut out = Self::default();
        let Some(c) = c else { return out };
        let slot = match c.algorithm {
            ChecksumAlgorithm::Crc32 => &mut out.crc32,
            ChecksumAlgorithm::Crc32c => &mut out.crc32c,
            ChecksumAlgorithm::Sha1 => &mut out.sha1,
            ChecksumAlgorithm::Sha256 => &mut out.sha256,
            ChecksumAlgorithm::Crc64Nvme => &mut out.crc64nvme,
        };
        *slot = Some(c.value.clone());
        out.checksum_type = Some(checksum_type(c));
        out
    }
}

pub(crate) fn checksum_type(c: &Checksum) -> dto::ChecksumType {
    if c.value.contains('-') {
        dto::ChecksumType::from_static(dto::ChecksumType::COMPOSITE)
    } else {
        dto::ChecksumType::from_static(dto::ChecksumType::FULL_OBJECT)
    }
}

const CHECKSUM_PREFIX: &str = "x-amz-checksum-";

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> S3Result<Option<&'a str>> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| invalid_argument(format!("header {name} is not valid ASCII")))
        })
        .transpose()
}

/// What the client asked us to check on an upload body: a checksum value in
/// an `x-amz-checksum-*` header, one promised in the aws-chunked trailer
/// (`x-amz-trailer`), or just an algorithm (`x-amz-sdk-checksum-algorithm`).
/// `s3s` verifies signatures and `x-amz-content-sha256` only; the checksum
/// itself is computed once, by the layer, while it stores the body.
pub(crate) fn checksum_request(
    headers: &HeaderMap,
    declared: Option<&dto::ChecksumAlgorithm>,
    trailing: Option<&TrailingHeaders>,
) -> S3Result<Option<ChecksumRequest>> {
    let declared = declared.map(checksum_algorithm).transpose()?;
    let mut given = Vec::new();
    for alg in ChecksumAlgorithm::ALL {
        let name = format!("{CHECKSUM_PREFIX}{}", alg.header_name());
        if let Some(v) = header_str(headers, &name)? {
            given.push((alg, v.trim().to_owned()));
        }
    }
    if given.len() > 1 {
        return Err(invalid_argument(
            "Expecting a single x-amz-checksum- header. Multiple checksum types are not allowed.",
        ));
    }
    let agree = |alg: ChecksumAlgorithm| -> S3Result<()> {
        match declared {
            Some(d) if d != alg => Err(invalid_argument(format!(
                "x-amz-sdk-checksum-algorithm {d} does not match the checksum sent ({alg})"
            ))),
            _ => Ok(()),
        }
    };
    if let Some((alg, value)) = given.pop() {
        agree(alg)?;
        return Ok(Some(ChecksumRequest {
            algorithm: alg,
            expected: Some(value),
            trailer: None,
            full_object: false,
        }));
    }
    let trailer_alg = header_str(headers, "x-amz-trailer")?
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| t.starts_with(CHECKSUM_PREFIX))
        .map(|t| ChecksumAlgorithm::from_str(&t[CHECKSUM_PREFIX.len()..]).s3())
        .transpose()?;
    if let Some(alg) = trailer_alg {
        agree(alg)?;
        return Ok(Some(ChecksumRequest {
            algorithm: alg,
            expected: None,
            trailer: Some(trailer_fn(trailing.cloned(), alg)),
            full_object: false,
        }));
    }
    Ok(declared.map(|algorithm| ChecksumRequest {
        algorithm,
        expected: None,
        trailer: None,
        full_object: false,
    }))
}

/// Reads the trailing checksum once the layer has consumed the body. A
/// trailer declared in `x-amz-trailer` but not sent under that name (none
/// at all, or another checksum) gives a value no checksum can have, so the
/// upload is refused (400 BadDigest) rather than stored unchecked.
fn trailer_fn(trailing: Option<TrailingHeaders>, alg: ChecksumAlgorithm) -> TrailerFn {
    let name = format!("{CHECKSUM_PREFIX}{}", alg.header_name());
    Arc::new(move || {
        let sent = trailing.as_ref().and_then(|t| {
            t.read(|h| {
                h.get(name.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_owned())
            })
            .flatten()
        });
        Some(sent.unwrap_or_else(|| format!("(no {name} trailer was sent)")))
    })
}

pub(crate) fn content_md5(v: Option<&str>) -> S3Result<Option<[u8; 16]>> {
    v.map(|v| cairn_api::checksum::parse_content_md5(v).s3())
        .transpose()
}

pub(crate) fn content_length(v: Option<i64>) -> S3Result<Option<u64>> {
    v.map(|n| {
        u64::try_from(n).map_err(|_| invalid_argument(format!("Content-Length {n} is negative")))
    })
    .transpose()
}

/// A body larger than S3 allows is refused before it is read.
pub(crate) fn check_put_size(len: Option<u64>) -> S3Result<()> {
    match len {
        Some(size) if size > cairn_api::MAX_PUT_SIZE => {
            Err(crate::errors::s3_error(ObjectError::EntityTooLarge {
                size,
                max: cairn_api::MAX_PUT_SIZE,
            }))
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Request features Cairn refuses rather than ignores

/// Refuses, with NotImplemented, the write features every object-creating
/// request (PutObject, CopyObject, CreateMultipartUpload) may carry and
/// Cairn does not have yet (website redirects), and yields the tags,
/// retention and legal hold it asks the new version to carry and its ACL
/// headers (`crate::acl::AclHeaders`). A macro because the three s3s
/// inputs are different types with the same field names.
#[macro_export]
#[doc(hidden)]
macro_rules! write_request_attrs {
    ($input:expr) => {{
        let input = &$input;
        $crate::convert::refuse_if_some(
            input.website_redirect_location.as_ref(),
            "website redirects",
        )?;
        let (tags, retention, legal_hold) = $crate::convert::write_attrs(
            input.tagging.as_deref(),
            input.object_lock_mode.as_ref().map(|m| m.as_str()),
            input.object_lock_retain_until_date.clone(),
            input
                .object_lock_legal_hold_status
                .as_ref()
                .map(|s| s.as_str()),
        )?;
        (
            tags,
            retention,
            legal_hold,
            $crate::acl_headers!(input, None),
        )
    }};
}

/// Tags (`x-amz-tagging`), retention and legal hold of a write request.
pub(crate) fn write_attrs(
    tagging: Option<&str>,
    mode: Option<&str>,
    until: Option<Timestamp>,
    hold: Option<&str>,
) -> S3Result<(cairn_api::Tags, Option<cairn_api::Retention>, bool)> {
    let tags = cairn_api::Tags::from_query(tagging.unwrap_or_default()).map_err(s3_error)?;
    let retention = match (mode, until) {
        (None, None) => None,
        (Some(m), Some(u)) => Some(cairn_api::Retention {
            mode: cairn_api::RetentionMode::parse(m).map_err(s3_error)?,
            until: future_date(u)?,
        }),
        _ => {
            return Err(invalid_argument(
                "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date must be given together",
            ));
        }
    };
    Ok((tags, retention, legal_hold(hold)?))
}

/// A retain-until date, which AWS takes only in the future (400
/// InvalidArgument).
pub(crate) fn future_date(t: Timestamp) -> S3Result<time::OffsetDateTime> {
    let when: time::OffsetDateTime = t.into();
    if when <= time::OffsetDateTime::now_utc() {
        return Err(invalid_argument(
            "The retain until date must be in the future!",
        ));
    }
    Ok(when)
}

/// `ON`/`OFF` of a legal hold.
pub(crate) fn legal_hold(status: Option<&str>) -> S3Result<bool> {
    match status {
        None | Some("OFF") => Ok(false),
        Some("ON") => Ok(true),
        Some(other) => Err(invalid_argument(format!(
            "legal hold status {other:?} is neither ON nor OFF"
        ))),
    }
}

/// A `versionId` parameter: `None` for the current version, `Some(None)`
/// for the null version.
pub(crate) fn version_param(v: Option<&str>) -> S3Result<Option<Option<String>>> {
    match v {
        None => Ok(None),
        Some("") => Err(invalid_argument("the version id must not be empty")),
        Some(v) => Ok(Some(cairn_api::versioning::parse_version_id(v))),
    }
}

pub(crate) fn refuse_if_some<T>(v: Option<&T>, what: &'static str) -> S3Result<()> {
    if v.is_some() {
        return Err(not_implemented(what));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_chunked_is_not_stored() {
        assert_eq!(strip_aws_chunked("aws-chunked"), None);
        assert_eq!(
            strip_aws_chunked("aws-chunked, gzip").as_deref(),
            Some("gzip")
        );
        assert_eq!(strip_aws_chunked("gzip").as_deref(), Some("gzip"));
    }

    #[test]
    fn checksum_from_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-checksum-sha256",
            "abc=".parse().expect("header value"),
        );
        let r = checksum_request(&h, None, None)
            .expect("valid")
            .expect("a request");
        assert_eq!(r.algorithm, ChecksumAlgorithm::Sha256);
        assert_eq!(r.expected.as_deref(), Some("abc="));

        let crc = dto::ChecksumAlgorithm::from_static(dto::ChecksumAlgorithm::CRC32);
        assert!(checksum_request(&h, Some(&crc), None).is_err());

        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-trailer",
            "x-amz-checksum-crc32c".parse().expect("header value"),
        );
        let r = checksum_request(&h, None, None).ok().flatten();
        assert_eq!(r.map(|r| r.algorithm), Some(ChecksumAlgorithm::Crc32c));

        assert!(
            checksum_request(&HeaderMap::new(), None, None)
                .ok()
                .flatten()
                .is_none()
        );
    }
}
