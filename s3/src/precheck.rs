//! Protocol rules `s3s` 0.14 does not enforce, checked by the front
//! (`server.rs` `Front`) before `s3s` routes the request, as AWS answers
//! them:
//!
//! - An invalid bucket name (path-style first segment, or the bucket of a
//!   virtual host): 400 InvalidBucketName naming the rule it breaks (s3s
//!   refuses it with the message "Unknown").
//! - An empty `Content-MD5` header: 400 InvalidDigest (s3s takes an empty
//!   header for an absent one).
//! - `x-amz-sdk-checksum-algorithm` / `x-amz-checksum-algorithm` naming no
//!   algorithm S3 has: 400 InvalidRequest (s3s passes any string on).
//! - A `Range` header that is not one well-formed byte range: ignored (the
//!   whole object is served), as AWS does, where s3s answers 400. Only when
//!   the signature does not cover it: a signed header cannot be removed
//!   without breaking the signature, so a signed malformed `Range` is
//!   still refused (400 InvalidArgument).
//! - DeleteObjects: its body read here, at most [`MAX_DELETE_BODY`] bytes
//!   (400 MaxMessageLengthExceeded beyond; s3s answered 500), with a
//!   `Content-MD5` or an `x-amz-checksum-*` header required (400
//!   InvalidRequest) and verified (400 BadDigest; InvalidDigest for one
//!   that is not an MD5).

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Uri, header};
use http_body_util::BodyExt as _;
use s3s::S3ErrorCode;
use s3s::crypto::Checksum as _;

use crate::authcheck::Refusal;
use crate::host::Domains;
use crate::unread::SharedBody;

/// Largest DeleteObjects body: 1000 keys of up to 1024 bytes, each with
/// its XML escaping and a version id, fit with room to spare.
pub(crate) const MAX_DELETE_BODY: usize = 8 * 1024 * 1024;

/// The checksum algorithms S3 knows, as `x-amz-sdk-checksum-algorithm`
/// names them. The last five are AWS's newer ones, which Cairn does not
/// compute: they pass here and the operation refuses them (400
/// InvalidArgument "unknown checksum algorithm"), as before.
const ALGORITHMS: &[&str] = &[
    "CRC32",
    "CRC32C",
    "CRC64NVME",
    "SHA1",
    "SHA256",
    "SHA512",
    "MD5",
    "XXHASH64",
    "XXHASH3",
    "XXHASH128",
];

/// Checks the request head; `Ok(true)`: the `Range` header is malformed
/// and unsigned and was removed from `headers`.
pub(crate) fn check_head(
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    domains: Option<&Domains>,
) -> Result<bool, Refusal> {
    if let Some(bucket) = bucket_of(uri, headers, domains)
        && let Err(rule) = bucket_name_rule(&bucket)
    {
        return Err(Refusal::new(
            S3ErrorCode::InvalidBucketName,
            format!("The specified bucket is not valid: {rule} (bucket name {bucket:?})."),
        ));
    }
    if let Some(v) = headers.get("content-md5")
        && v.as_bytes().trim_ascii().is_empty()
    {
        return Err(Refusal::new(
            S3ErrorCode::InvalidDigest,
            "The Content-MD5 you specified is not valid.",
        ));
    }
    for name in ["x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"] {
        if let Some(v) = headers.get(name) {
            let v = v.to_str().unwrap_or("").trim();
            if !ALGORITHMS.iter().any(|a| a.eq_ignore_ascii_case(v)) {
                return Err(Refusal::new(
                    S3ErrorCode::InvalidRequest,
                    format!("Value for {name} header is invalid."),
                ));
            }
        }
    }
    if matches!(*method, Method::GET | Method::HEAD)
        && let Some(range) = headers.get(header::RANGE)
        && !well_formed_range(range.as_bytes())
        && !is_signed(uri, headers, "range")
    {
        headers.remove(header::RANGE);
        return Ok(true);
    }
    Ok(false)
}

/// The bucket a request names: the virtual host's, else the first path
/// segment (percent-decoded, as s3s routes it).
pub(crate) fn bucket_of(
    uri: &Uri,
    headers: &HeaderMap,
    domains: Option<&Domains>,
) -> Option<String> {
    if let Some(d) = domains
        && let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok())
        && let Some((_, Some(bucket))) = d.parse(host)
    {
        return Some(bucket);
    }
    let path = uri.path().strip_prefix('/')?;
    let first = path.split('/').next().unwrap_or("");
    if first.is_empty() {
        return None;
    }
    Some(
        percent_encoding::percent_decode_str(first)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// The S3 bucket naming rule `name` breaks (s3s's `check_bucket_name`
/// rules, each named).
pub(crate) fn bucket_name_rule(name: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&name.len()) {
        return Err("bucket names must be between 3 and 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err(
            "bucket names can consist only of lowercase letters, numbers, periods (.) and hyphens (-)",
        );
    }
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !alnum(name.bytes().next()) || !alnum(name.bytes().last()) {
        return Err("bucket names must begin and end with a letter or number");
    }
    if name.contains("..") {
        return Err("bucket names must not contain two adjacent periods");
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err("bucket names must not be formatted as an IP address");
    }
    if name.starts_with("xn--") {
        return Err("bucket names must not start with the prefix xn--");
    }
    Ok(())
}

/// One byte range: `bytes=FIRST-LAST` (FIRST <= LAST), `bytes=FIRST-` or
/// `bytes=-SUFFIX`, digits only. A range past the end of the object is
/// well-formed (416 InvalidRange, from the operation).
fn well_formed_range(v: &[u8]) -> bool {
    let Some((first, last)) = std::str::from_utf8(v)
        .ok()
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|spec| spec.split_once('-'))
    else {
        return false;
    };
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first.is_empty(), last.is_empty()) {
        (true, true) => false,
        (true, false) => number(last).is_some(),
        (false, true) => number(first).is_some(),
        (false, false) => matches!((number(first), number(last)), (Some(f), Some(l)) if f <= l),
    }
}

/// Whether a SigV4 signature (header or presigned) or a SigV2 one covers
/// the header `name` (lowercase). SigV2 signs no `Range`; an unsigned
/// request signs nothing.
fn is_signed(uri: &Uri, headers: &HeaderMap, name: &str) -> bool {
    let from_auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|a| a.to_str().ok())
        .and_then(|a| a.split("SignedHeaders=").nth(1))
        .map(|s| s.split([',', ' ']).next().unwrap_or("").to_owned());
    let from_query = || {
        form_urlencoded::parse(uri.query()?.as_bytes())
            .find(|(k, _)| k == "X-Amz-SignedHeaders")
            .map(|(_, v)| v.into_owned())
    };
    from_auth
        .or_else(from_query)
        .is_some_and(|list| list.split(';').any(|h| h.eq_ignore_ascii_case(name)))
}

/// Whether the request is a DeleteObjects (`POST ?delete`).
pub(crate) fn is_delete_objects(method: &Method, uri: &Uri) -> bool {
    *method == Method::POST
        && uri.query().is_some_and(|q| {
            q.split('&')
                .any(|p| p.split('=').next().is_some_and(|k| k == "delete"))
        })
}

/// Reads a DeleteObjects body (see the module doc) and checks it against
/// its `Content-MD5` or `x-amz-checksum-*` header. An aws-chunked body
/// (whose checksum comes in its trailer, and whose bytes here still carry
/// the chunk framing) is only size-checked.
pub(crate) async fn delete_objects_body(
    headers: &HeaderMap,
    body: SharedBody,
) -> Result<Bytes, Refusal> {
    let too_big = || {
        Refusal::new(
            S3ErrorCode::MaxMessageLengthExceeded,
            format!(
                "Your request was too big: a DeleteObjects body may hold at most {MAX_DELETE_BODY} bytes."
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_DELETE_BODY as u64) {
        return Err(too_big());
    }
    let chunked = headers
        .get("x-amz-content-sha256")
        .is_some_and(|v| v.as_bytes().starts_with(b"STREAMING-"))
        || headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("aws-chunked"));
    let checksum = checksum_header(headers);
    let trailer = headers
        .get("x-amz-trailer")
        .is_some_and(|v| v.as_bytes().starts_with(b"x-amz-checksum-"));
    let md5 = headers.get("content-md5");
    if md5.is_none() && checksum.is_none() && !(chunked && trailer) {
        return Err(Refusal::new(
            S3ErrorCode::InvalidRequest,
            "Missing required header for this request: Content-MD5",
        ));
    }
    let mut body = body;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Refusal::new(
                S3ErrorCode::IncompleteBody,
                format!("The request body could not be read: {e}"),
            )
        })?;
        if let Some(data) = frame.data_ref() {
            if buf.len() + data.len() > MAX_DELETE_BODY {
                return Err(too_big());
            }
            buf.extend_from_slice(data);
        }
    }
    let bytes = buf.freeze();
    if chunked {
        return Ok(bytes);
    }
    if let Some(md5) = md5 {
        let given = base64_decode(md5.as_bytes())
            .and_then(|v| <[u8; 16]>::try_from(v).ok())
            .ok_or_else(|| {
                Refusal::new(
                    S3ErrorCode::InvalidDigest,
                    "The Content-MD5 you specified is not valid.",
                )
            })?;
        if s3s::crypto::Md5::checksum(&bytes) != given {
            return Err(Refusal::new(
                S3ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    if let Some((alg, given)) = checksum {
        let computed = compute(alg, &bytes);
        if computed.as_deref() != Some(given.trim()) {
            return Err(Refusal::new(
                S3ErrorCode::BadDigest,
                format!(
                    "The {} you specified did not match the calculated checksum.",
                    alg.to_ascii_uppercase()
                ),
            ));
        }
    }
    Ok(bytes)
}

/// The one `x-amz-checksum-<alg>` header given: `(alg, value)`.
fn checksum_header(headers: &HeaderMap) -> Option<(&'static str, String)> {
    ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"]
        .into_iter()
        .find_map(|alg| {
            let v = headers.get(format!("x-amz-checksum-{alg}").as_str())?;
            Some((alg, String::from_utf8_lossy(v.as_bytes()).into_owned()))
        })
}

/// The base64 checksum `alg` of `data`.
fn compute(alg: &str, data: &[u8]) -> Option<String> {
    let mut h = s3s::checksum::ChecksumHasher::default();
    match alg {
        "crc32" => h.crc32 = Some(s3s::crypto::Crc32::new()),
        "crc32c" => h.crc32c = Some(s3s::crypto::Crc32c::new()),
        "crc64nvme" => h.crc64nvme = Some(s3s::crypto::Crc64Nvme::new()),
        "sha1" => h.sha1 = Some(s3s::crypto::Sha1::new()),
        "sha256" => h.sha256 = Some(s3s::crypto::Sha256::new()),
        _ => return None,
    }
    h.update(data);
    let c = h.finalize();
    c.checksum_crc32
        .or(c.checksum_crc32c)
        .or(c.checksum_crc64nvme)
        .or(c.checksum_sha1)
        .or(c.checksum_sha256)
}

fn base64_decode(v: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(v.trim_ascii())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        for ok in ["bytes=0-0", "bytes=5-", "bytes=-3", "bytes=10-1000000"] {
            assert!(well_formed_range(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "bytes=abc",
            "bytes=5-2",
            "bytes=-",
            "bytes=1-2,4-5",
            "items=0-1",
            "bytes=0-1 ",
            "bytes=--1",
            "",
            "bytes=99999999999999999999-",
        ] {
            assert!(!well_formed_range(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn bucket_rules() {
        assert!(bucket_name_rule("abc").is_ok());
        assert!(bucket_name_rule("a.b-c.d").is_ok());
        for (name, word) in [
            ("ab", "between 3 and 63"),
            ("Bad_Bucket", "lowercase"),
            ("a..b", "adjacent periods"),
            ("-abc", "begin and end"),
            ("192.168.1.1", "IP address"),
            ("xn--abc", "xn--"),
        ] {
            let rule = bucket_name_rule(name).expect_err(name);
            assert!(rule.contains(word), "{name}: {rule}");
        }
    }

    #[test]
    fn signed_headers() {
        let mut h = HeaderMap::new();
        let uri: Uri = "/b/k".parse().expect("uri");
        assert!(!is_signed(&uri, &h, "range"));
        h.insert(
            header::AUTHORIZATION,
            http::HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host;range;x-amz-date, Signature=x",
            ),
        );
        assert!(is_signed(&uri, &h, "range"));
        let p: Uri = "/b/k?X-Amz-SignedHeaders=host&X-Amz-Signature=x"
            .parse()
            .expect("uri");
        assert!(!is_signed(&p, &HeaderMap::new(), "range"));
        assert!(is_delete_objects(
            &Method::POST,
            &"/b?delete".parse().expect("uri")
        ));
        assert!(is_delete_objects(
            &Method::POST,
            &"/b?delete=".parse().expect("uri")
        ));
        assert!(!is_delete_objects(
            &Method::POST,
            &"/b?deleted".parse().expect("uri")
        ));
    }
}
