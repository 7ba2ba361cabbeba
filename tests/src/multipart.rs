//! The aws-sdk-s3 multipart steps the tests share: start an upload, send
//! parts, complete it.

use anyhow::{Context, Result};
use aws_sdk_s3::Client;
use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

/// CreateMultipartUpload of `b/k`: the upload id.
pub async fn start(c: &Client, b: &str, k: &str) -> Result<String> {
    c.create_multipart_upload()
        .bucket(b)
        .key(k)
        .send()
        .await
        .with_context(|| format!("CreateMultipartUpload {b}/{k}"))?
        .upload_id
        .context("CreateMultipartUpload answered no upload id")
}

/// UploadPart `n` of upload `id`: the part as Complete names it.
pub async fn upload_part(
    c: &Client,
    b: &str,
    k: &str,
    id: &str,
    n: i32,
    data: &[u8],
) -> Result<CompletedPart> {
    let r = c
        .upload_part()
        .bucket(b)
        .key(k)
        .upload_id(id)
        .part_number(n)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .with_context(|| format!("UploadPart {n} of {b}/{k}"))?;
    Ok(CompletedPart::builder()
        .part_number(n)
        .set_e_tag(r.e_tag)
        .build())
}

/// Starts an upload of `b/k` and sends `parts` as parts 1, 2, ...: the
/// upload id and the part list that completes it.
pub async fn upload(
    c: &Client,
    b: &str,
    k: &str,
    parts: &[&[u8]],
) -> Result<(String, CompletedMultipartUpload)> {
    let id = start(c, b, k).await?;
    let mut done = Vec::with_capacity(parts.len());
    for (n, data) in (1..).zip(parts) {
        done.push(upload_part(c, b, k, &id, n, data).await?);
    }
    Ok((id, completed(done)))
}

/// The CompleteMultipartUpload body naming these parts.
pub fn completed(parts: Vec<CompletedPart>) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build()
}

/// CompleteMultipartUpload of upload `id` with `parts`.
pub async fn complete(
    c: &Client,
    b: &str,
    k: &str,
    id: &str,
    parts: &CompletedMultipartUpload,
) -> Result<CompleteMultipartUploadOutput> {
    c.complete_multipart_upload()
        .bucket(b)
        .key(k)
        .upload_id(id)
        .multipart_upload(parts.clone())
        .send()
        .await
        .with_context(|| format!("CompleteMultipartUpload {b}/{k}"))
}

/// A whole multipart object `b/k` made of `parts`.
pub async fn put(
    c: &Client,
    b: &str,
    k: &str,
    parts: &[&[u8]],
) -> Result<CompleteMultipartUploadOutput> {
    let (id, done) = upload(c, b, k, parts).await?;
    complete(c, b, k, &id, &done).await
}
