//! Browser form uploads (POST object): the uploaded file's name, for the
//! `${filename}` a form's `key` field may hold (S3 replaces it with the
//! name; s3s 0.14 hands the operation the key as written and drops the
//! file name).
//!
//! The front reads the start of a `multipart/form-data` POST body until the
//! `file` part's header, takes its `filename`, puts it in the request's
//! extensions ([`UploadFileName`], which no client can set) and gives
//! s3s the body unchanged: the bytes read, then the rest. PutObject
//! (crate::objects) substitutes it into the key after s3s checked the
//! form's policy against the key as written (as boto3's
//! `generate_presigned_post` signs a `starts-with $key` condition for it).

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use cairn_api::ByteStream;
use futures::TryStreamExt as _;
use http::{HeaderMap, Method, header};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt as _;
use s3s::{S3Error, S3ErrorCode};

use crate::timed::BodyError;
use crate::unread::SharedBody;

/// How far into the body the `file` part's header is looked for. Forms
/// put their fields before the file; a form whose fields are larger than
/// this keeps `${filename}` as written.
pub(crate) const PEEK_LIMIT: usize = 1024 * 1024;

/// The file name of a POST object upload (request extension).
#[derive(Debug, Clone)]
pub(crate) struct UploadFileName(pub(crate) String);

/// The multipart boundary of a `POST` with a `multipart/form-data` body.
pub(crate) fn form_boundary(method: &Method, headers: &HeaderMap) -> Option<String> {
    if *method != Method::POST {
        return None;
    }
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let (mime, params) = ct.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// Reads `body` until the `file` part's header is in (at most
/// [`PEEK_LIMIT`] bytes, or the body's end); returns the bytes read and
/// the file name, if found.
pub(crate) async fn peek_file_name(
    body: &mut SharedBody,
    boundary: &str,
) -> Result<(Bytes, Option<String>), BodyError> {
    let mut buf = BytesMut::new();
    while buf.len() < PEEK_LIMIT {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Some(data) = frame?.data_ref() {
            buf.extend_from_slice(data);
        }
        if let Some(name) = file_name(&buf, boundary) {
            return Ok((buf.freeze(), Some(name)));
        }
    }
    let name = file_name(&buf, boundary);
    Ok((buf.freeze(), name))
}

/// The `filename` of the part named `file`, once its header is complete
/// in `buf`.
fn file_name(buf: &[u8], boundary: &str) -> Option<String> {
    let delim = format!("--{boundary}\r\n");
    let text = String::from_utf8_lossy(buf);
    let mut rest: &str = &text;
    while let Some(at) = rest.find(&delim) {
        let part = rest.get(at + delim.len()..)?;
        let head_end = part.find("\r\n\r\n")?;
        let head = part.get(..head_end)?;
        for line in head.split("\r\n") {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if !name.trim().eq_ignore_ascii_case("content-disposition") {
                continue;
            }
            let params: Vec<(&str, &str)> = value
                .split(';')
                .filter_map(|p| p.trim().split_once('='))
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
                .collect();
            let is_file = params
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("name") && *v == "file");
            if is_file {
                return params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("filename"))
                    .map(|(_, v)| (*v).to_owned());
            }
        }
        rest = part.get(head_end..)?;
    }
    None
}

/// The body s3s reads: the bytes the front read first, then the rest.
pub(crate) struct Prefixed {
    head: Option<Bytes>,
    rest: SharedBody,
}

impl Prefixed {
    pub(crate) fn new(head: Bytes, rest: SharedBody) -> Self {
        Self {
            head: (!head.is_empty()).then_some(head),
            rest,
        }
    }
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let head = self.head.as_ref().map_or(0, |h| h.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(head));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(head));
        }
        hint
    }
}

/// The request's headers with a form upload's `x-amz-checksum-*` fields
/// added (s3s puts form fields into the input only; the checksum check
/// reads headers). A request carrying such a header keeps its own.
pub(crate) fn with_form_checksums(
    mut headers: HeaderMap,
    input: &s3s::dto::PutObjectInput,
) -> HeaderMap {
    let fields = [
        ("x-amz-checksum-crc32", &input.checksum_crc32),
        ("x-amz-checksum-crc32c", &input.checksum_crc32c),
        ("x-amz-checksum-crc64nvme", &input.checksum_crc64nvme),
        ("x-amz-checksum-sha1", &input.checksum_sha1),
        ("x-amz-checksum-sha256", &input.checksum_sha256),
    ];
    if fields.iter().any(|(name, _)| headers.contains_key(*name)) {
        return headers;
    }
    for (name, value) in fields {
        if let Some(v) = value
            && let Ok(v) = http::HeaderValue::from_str(v)
        {
            headers.insert(name, v);
        }
    }
    headers
}

/// What stopped a form upload's file mid-stream for its size (s3s's
/// `PostFileStream` checks the policy's `content-length-range` as the file
/// streams, so nothing holds a whole form body).
#[derive(Debug, Clone, Default)]
pub(crate) struct SizeWatch(Arc<OnceLock<s3s::PostFileSizeError>>);

impl SizeWatch {
    /// `body`, noting a size refusal that passes through it.
    pub(crate) fn watch(&self, body: ByteStream) -> ByteStream {
        let seen = self.0.clone();
        Box::pin(body.inspect_err(move |e| {
            if let Some(r) = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<s3s::PostFileSizeError>())
            {
                let _ = seen.set(*r);
            }
        }))
    }

    /// The S3 error of a write that failed: EntityTooLarge/EntityTooSmall
    /// when the file was refused for its size, else the layer's.
    pub(crate) fn error(&self, e: cairn_api::ObjectError) -> S3Error {
        match self.0.get() {
            Some(s3s::PostFileSizeError::TooLarge) => S3Error::with_message(
                S3ErrorCode::EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed object size.",
            ),
            Some(s3s::PostFileSizeError::TooSmall) => S3Error::with_message(
                S3ErrorCode::EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size.",
            ),
            None => crate::errors::s3_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_and_file_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("multipart/form-data; boundary=XyZ"),
        );
        assert_eq!(form_boundary(&Method::POST, &h).as_deref(), Some("XyZ"));
        assert_eq!(form_boundary(&Method::PUT, &h), None);
        let form = "--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuploads/${filename}\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.txt\"\r\n\
                    Content-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n";
        assert_eq!(
            file_name(form.as_bytes(), "XyZ").as_deref(),
            Some("a b.txt")
        );
        // the header not complete yet
        let cut = form.find("Content-Type: text").expect("in form");
        assert_eq!(file_name(&form.as_bytes()[..cut], "XyZ"), None);
        let no_file =
            "--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--XyZ--\r\n";
        assert_eq!(file_name(no_file.as_bytes(), "XyZ"), None);
    }
}
