//! ListObjects (v1) and ListObjectsV2: paging, continuation tokens and
//! `encoding-type=url`. The listing rules themselves live in the layer.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cairn_api::{ListOptions, ListPage, ObjectInfo};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::convert::{bucket_name, checksum_type, dto_checksum_algorithm, etag, timestamp};
use crate::errors::{IntoS3 as _, invalid_argument};
use crate::service::CairnS3;

/// Default and largest page of ListObjects, ListParts, ListMultipartUploads.
pub(crate) const MAX_PAGE: usize = 1000;

/// `max-keys` & co: absent means 1000, larger values are capped at 1000.
pub(crate) fn page_size(v: Option<i32>, name: &str) -> S3Result<usize> {
    match v {
        None => Ok(MAX_PAGE),
        Some(n) if n < 0 => Err(invalid_argument(format!("{name} {n} is negative"))),
        Some(n) => Ok(usize::try_from(n).map_or(MAX_PAGE, |n| n.min(MAX_PAGE))),
    }
}

/// `encoding-type`: only `url` exists.
pub(crate) fn url_encoding(e: Option<&EncodingType>) -> S3Result<bool> {
    match e.map(EncodingType::as_str) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case(EncodingType::URL) => Ok(true),
        Some(v) => Err(invalid_argument(format!(
            "encoding-type {v:?} is invalid; the only valid value is url"
        ))),
    }
}

/// Percent-encodes a key the way S3 does for `encoding-type=url`: every
/// byte but unreserved characters and `/`.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Encodes `s` when the client asked for `encoding-type=url`.
pub(crate) fn enc(url: bool, s: String) -> String {
    if url { url_encode(&s) } else { s }
}

/// Continuation tokens are opaque: the base64 of where the next page starts.
pub(crate) fn encode_token(marker: &str) -> String {
    URL_SAFE_NO_PAD.encode(marker)
}

pub(crate) fn decode_token(token: &str) -> S3Result<String> {
    URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .or_else(|_| STANDARD.decode(token))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| invalid_argument("The continuation token provided is incorrect"))
}

fn list_object(info: ObjectInfo, url: bool, owner: Option<Owner>) -> Object {
    Object {
        checksum_algorithm: info
            .checksum
            .as_ref()
            .map(|c| vec![dto_checksum_algorithm(c.algorithm)]),
        checksum_type: info.checksum.as_ref().map(checksum_type),
        e_tag: Some(etag(&info.etag)),
        last_modified: Some(timestamp(info.last_modified)),
        owner,
        restore_status: None,
        size: i64::try_from(info.size).ok(),
        storage_class: Some(ObjectStorageClass::from(
            info.storage_class.as_str().to_owned(),
        )),
        key: Some(enc(url, info.key)),
    }
}

fn common_prefixes(page: &mut ListPage, url: bool) -> Vec<CommonPrefix> {
    std::mem::take(&mut page.common_prefixes)
        .into_iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc(url, p)),
        })
        .collect()
}

impl CairnS3 {
    /// One page from the layer; `max_keys == 0` asks for nothing and gets
    /// an empty, complete page (the bucket must still exist).
    async fn list_page(
        &self,
        bucket: &cairn_api::BucketName,
        opts: ListOptions,
    ) -> S3Result<ListPage> {
        if opts.max_keys == 0 {
            self.layer.head_bucket(bucket).await.s3()?;
            return Ok(ListPage::default());
        }
        let page = self.layer.list_objects(bucket, opts).await.s3()?;
        if page.is_truncated && page.next_marker.is_none() {
            tracing::error!(bucket = %bucket, "layer returned a truncated page without a marker");
            return Err(S3Error::with_message(
                S3ErrorCode::InternalError,
                "We encountered an internal error. Please try again.",
            ));
        }
        Ok(page)
    }

    pub(crate) async fn do_list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let url = url_encoding(input.encoding_type.as_ref())?;
        let max_keys = page_size(input.max_keys, "max-keys")?;
        let delimiter = input.delimiter.filter(|d| !d.is_empty());
        let opts = ListOptions {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: delimiter.clone(),
            start_after: input.marker.clone().filter(|m| !m.is_empty()),
            max_keys,
        };
        let mut page = self.list_page(&bucket, opts).await?;
        let prefixes = common_prefixes(&mut page, url);
        // NextMarker is only sent with a delimiter; without one the client
        // continues from the last key.
        let next_marker = page
            .next_marker
            .take()
            .filter(|_| page.is_truncated && delimiter.is_some());
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(bucket.to_string()),
            prefix: Some(enc(url, input.prefix.unwrap_or_default())),
            marker: Some(enc(url, input.marker.unwrap_or_default())),
            max_keys: i32::try_from(max_keys).ok(),
            is_truncated: Some(page.is_truncated),
            contents: Some(
                page.objects
                    .into_iter()
                    .map(|o| list_object(o, url, Some(self.owner())))
                    .collect(),
            ),
            common_prefixes: Some(prefixes),
            delimiter: delimiter.map(|d| enc(url, d)),
            next_marker: next_marker.map(|m| enc(url, m)),
            encoding_type: input.encoding_type,
            request_charged: None,
        }))
    }

    pub(crate) async fn do_list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let url = url_encoding(input.encoding_type.as_ref())?;
        let max_keys = page_size(input.max_keys, "max-keys")?;
        let fetch_owner = input.fetch_owner.unwrap_or(false);
        let delimiter = input.delimiter.filter(|d| !d.is_empty());
        let from_token = input
            .continuation_token
            .as_deref()
            .map(decode_token)
            .transpose()?;
        // The continuation token wins over start-after.
        let start_after =
            from_token.or_else(|| input.start_after.clone().filter(|s| !s.is_empty()));
        let opts = ListOptions {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: delimiter.clone(),
            start_after,
            max_keys,
        };
        let mut page = self.list_page(&bucket, opts).await?;
        let prefixes = common_prefixes(&mut page, url);
        let next_continuation_token = page
            .next_marker
            .take()
            .filter(|_| page.is_truncated)
            .map(|m| encode_token(&m));
        let contents: Vec<Object> = page
            .objects
            .into_iter()
            .map(|o| list_object(o, url, fetch_owner.then(|| self.owner())))
            .collect();
        let key_count = i32::try_from(contents.len() + prefixes.len()).ok();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(bucket.to_string()),
            prefix: Some(enc(url, input.prefix.unwrap_or_default())),
            max_keys: i32::try_from(max_keys).ok(),
            key_count,
            continuation_token: input.continuation_token,
            is_truncated: Some(page.is_truncated),
            next_continuation_token,
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            delimiter: delimiter.map(|d| enc(url, d)),
            encoding_type: input.encoding_type,
            start_after: input.start_after.map(|s| enc(url, s)),
            request_charged: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_s3() {
        assert_eq!(url_encode("a b/c+d%é"), "a%20b/c%2Bd%25%C3%A9");
        assert_eq!(url_encode("plain-key_1.txt~"), "plain-key_1.txt~");
    }

    #[test]
    fn tokens_round_trip() {
        for m in ["", "a/b", "ü ?&=+/"] {
            assert_eq!(decode_token(&encode_token(m)).ok().as_deref(), Some(m));
        }
        assert!(decode_token("!!!").is_err());
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(None, "max-keys").ok(), Some(1000));
        assert_eq!(page_size(Some(5000), "max-keys").ok(), Some(1000));
        assert_eq!(page_size(Some(0), "max-keys").ok(), Some(0));
        assert!(page_size(Some(-1), "max-keys").is_err());
    }
}
