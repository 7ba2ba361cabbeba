//! Previews on an object's details page: the first 64 KiB of a text
//! object as JSON (shown with `textContent`), and which image types the
//! page may show in an `<img>` (served by transfer.rs's download with
//! `inline=image`, from the console's own origin, as CSP's `img-src
//! 'self'` allows).

use http::Response;
use serde_json::json;
use tokio::io::AsyncReadExt as _;

use crate::error::ConsoleError;
use crate::reply::{self, Body};
use crate::session::Session;
use crate::upstream::Upstream;
use crate::{Ctx, names};

/// The most bytes of a text preview.
pub const TEXT_PREVIEW: u64 = 64 * 1024;

/// The raster image types shown inline, as the answer's `Content-Type`.
const IMAGES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The type an image preview is served as, if `content_type` is one.
pub fn image_type(content_type: Option<&str>) -> Option<&'static str> {
    let ct = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    IMAGES.iter().copied().find(|t| *t == ct)
}

/// `GET api/preview?bucket=B&key=K[&version=V]`: `{"text", "truncated",
/// "binary"}` from the object's first [`TEXT_PREVIEW`] bytes (a ranged
/// GET: the rest is never read).
pub async fn text(up: &Upstream, s: &Session, cx: &Ctx) -> Result<Response<Body>, ConsoleError> {
    let (b, k, version) = names::object(cx)?;
    let out = up
        .s3(s, None)
        .get_object()
        .bucket(b.as_str())
        .key(k.as_str())
        .set_version_id(version)
        .range(format!("bytes=0-{}", TEXT_PREVIEW - 1))
        .send()
        .await;
    let out = match out.map_err(ConsoleError::sdk) {
        Ok(o) => o,
        // an empty object has no byte 0
        Err(e) if e.code() == "InvalidRange" => {
            return Ok(reply::json(
                &json!({ "text": "", "truncated": false, "binary": false }),
            ));
        }
        Err(e) => return Err(e),
    };
    let total = out
        .content_range()
        .and_then(|r| r.rsplit('/').next())
        .and_then(|n| n.parse::<u64>().ok());
    let mut bytes = Vec::new();
    out.body
        .into_async_read()
        .take(TEXT_PREVIEW)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| ConsoleError::Transport(e.to_string()))?;
    let binary = bytes.contains(&0);
    let truncated = total.is_some_and(|t| t > bytes.len() as u64);
    let text = if binary {
        String::new()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok(reply::json(
        &json!({ "text": text, "truncated": truncated, "binary": binary }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_raster_images_are_inline() {
        assert_eq!(image_type(Some("image/png")), Some("image/png"));
        assert_eq!(image_type(Some("IMAGE/JPEG; x=y")), Some("image/jpeg"));
        assert_eq!(image_type(Some("image/svg+xml")), None);
        assert_eq!(image_type(Some("text/html")), None);
        assert_eq!(image_type(None), None);
    }
}
