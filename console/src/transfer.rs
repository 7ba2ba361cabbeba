//! Object bodies through the console, streamed both ways: an upload's
//! body goes on to the server's PUT or UploadPart as the browser sends it
//! (never held whole: the page cuts big files into parts), a download's
//! body comes from the server's GET as it is read.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::TryStreamExt as _;
use http::Response;
use http::header::{self, HeaderValue};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};

use crate::error::ConsoleError;
use crate::reply::{self, Body};
use crate::session::Session;
use crate::upstream::Upstream;
use crate::{Ctx, names};

/// One PUT or part at most (S3's part limit).
const MAX_BODY: u64 = 5 * 1024 * 1024 * 1024;
/// A complete's JSON (10,000 parts with their ETags) at most.
const MAX_COMPLETE_BODY: usize = 1024 * 1024;

/// The request's declared length, required (S3 needs it to stream).
fn content_length(cx: &Ctx) -> Result<i64, ConsoleError> {
    let n: u64 = cx
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ConsoleError::bad("the body needs a Content-Length"))?;
    if n > MAX_BODY {
        return Err(ConsoleError::bad("a body of at most 5 GiB (use parts)"));
    }
    i64::try_from(n).map_err(|_| ConsoleError::bad("body too long"))
}

fn content_type(cx: &Ctx) -> Option<String> {
    cx.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 256)
        .map(str::to_owned)
}

/// `PUT api/upload?bucket=B&key=K`: the body as one object.
pub async fn upload(up: &Upstream, s: &Session, cx: Ctx) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(&cx)?;
    let k = names::key(&cx)?;
    let len = content_length(&cx)?;
    let ctype = content_type(&cx);
    let out = up
        .s3(s, None)
        .put_object()
        .bucket(b.as_str())
        .key(k.as_str())
        .content_length(len)
        .set_content_type(ctype)
        .body(ByteStream::from_body_1_x(cx.body))
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({
        "key": k.as_str(),
        "etag": out.e_tag(),
        "version_id": out.version_id(),
    })))
}

/// `POST api/multipart/create?bucket=B&key=K` -> `{"upload_id"}`
pub async fn create_multipart(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(cx)?;
    let k = names::key(cx)?;
    let out = up
        .s3(s, None)
        .create_multipart_upload()
        .bucket(b.as_str())
        .key(k.as_str())
        .set_content_type(
            cx.param("type")
                .filter(|t| t.len() <= 256)
                .map(str::to_owned),
        )
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({ "upload_id": out.upload_id() })))
}

fn upload_id(cx: &Ctx) -> Result<String, ConsoleError> {
    let id = cx.req("upload")?;
    if id.is_empty() || id.len() > 1024 {
        return Err(ConsoleError::bad("invalid upload id"));
    }
    Ok(id.to_owned())
}

/// `PUT api/multipart/part?bucket=B&key=K&upload=U&part=N` -> `{"etag"}`
pub async fn upload_part(
    up: &Upstream,
    s: &Session,
    cx: Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(&cx)?;
    let k = names::key(&cx)?;
    let id = upload_id(&cx)?;
    let part: i32 = cx
        .req("part")?
        .parse()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| ConsoleError::bad("part must be 1..=10000"))?;
    let len = content_length(&cx)?;
    let out = up
        .s3(s, None)
        .upload_part()
        .bucket(b.as_str())
        .key(k.as_str())
        .upload_id(id)
        .part_number(part)
        .content_length(len)
        .body(ByteStream::from_body_1_x(cx.body))
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({ "part": part, "etag": out.e_tag() })))
}

/// `POST api/multipart/complete?bucket=B&key=K&upload=U` with
/// `{"parts": [{"part": N, "etag": E}, ...]}`
pub async fn complete(up: &Upstream, s: &Session, cx: Ctx) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(&cx)?;
    let k = names::key(&cx)?;
    let id = upload_id(&cx)?;
    let v = crate::api::small_json(cx.body, MAX_COMPLETE_BODY).await?;
    let parts = v
        .get("parts")
        .and_then(Value::as_array)
        .ok_or_else(|| ConsoleError::bad("parts needed"))?
        .iter()
        .map(|p| {
            let n = p
                .get("part")
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| ConsoleError::bad("a part needs its number"))?;
            let etag = p
                .get("etag")
                .and_then(Value::as_str)
                .ok_or_else(|| ConsoleError::bad("a part needs its etag"))?;
            Ok(CompletedPart::builder().part_number(n).e_tag(etag).build())
        })
        .collect::<Result<Vec<_>, ConsoleError>>()?;
    let out = up
        .s3(s, None)
        .complete_multipart_upload()
        .bucket(b.as_str())
        .key(k.as_str())
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({
        "key": k.as_str(),
        "etag": out.e_tag(),
        "version_id": out.version_id(),
    })))
}

/// `POST api/multipart/abort?bucket=B&key=K&upload=U`
pub async fn abort(up: &Upstream, s: &Session, cx: &Ctx) -> Result<Response<Body>, ConsoleError> {
    let b = names::bucket(cx)?;
    let k = names::key(cx)?;
    let id = upload_id(cx)?;
    up.s3(s, None)
        .abort_multipart_upload()
        .bucket(b.as_str())
        .key(k.as_str())
        .upload_id(id)
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    Ok(reply::json(&json!({ "aborted": true })))
}

/// `GET api/download?bucket=B&key=K[&version=V]`: the object as an
/// attachment, streamed.
pub async fn download(
    up: &Upstream,
    s: &Session,
    cx: &Ctx,
) -> Result<Response<Body>, ConsoleError> {
    let (b, k, version) = names::object(cx)?;
    let out = up
        .s3(s, None)
        .get_object()
        .bucket(b.as_str())
        .key(k.as_str())
        .set_version_id(version)
        .send()
        .await
        .map_err(ConsoleError::sdk)?;
    let len = out.content_length();
    // `inline=image`: for the details page's <img>, only raster types a
    // browser shows as a picture (never SVG, HTML or anything scriptable)
    let image = match cx.param("inline") {
        None => None,
        Some("image") => Some(
            crate::preview::image_type(out.content_type())
                .ok_or_else(|| ConsoleError::bad("not an image the console previews"))?,
        ),
        Some(_) => return Err(ConsoleError::bad("inline must be image")),
    };
    let reader = out.body.into_async_read();
    let stream = tokio_util::io::ReaderStream::new(reader).map_ok(http_body::Frame::data);
    let body: Body = http_body_util::StreamBody::new(stream).boxed();
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(image.unwrap_or("application/octet-stream")),
    );
    if let Some(n) = len
        && let Ok(v) = HeaderValue::from_str(&n.to_string())
    {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if image.is_some() {
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("inline"),
        );
    } else if let Ok(v) = HeaderValue::from_str(&attachment(k.as_str())) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// `Content-Disposition` naming the key's last segment (RFC 6266: an
/// ASCII fallback and the UTF-8 name percent-encoded).
fn attachment(key: &str) -> String {
    let name = key
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("download");
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn attachment_names_are_safe() {
        assert_eq!(
            super::attachment("a/b/report \"x\".pdf"),
            "attachment; filename=\"report__x_.pdf\"; filename*=UTF-8''report%20%22x%22%2Epdf"
        );
    }
}
