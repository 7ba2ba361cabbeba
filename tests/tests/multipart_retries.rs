//! Multipart retries that must succeed: parts sent out of order and resent,
//! a CompleteMultipartUpload retried after it succeeded (the client timed
//! out), and one whose client was killed mid-request: the object is there
//! once, with the same answer to the retry.

use anyhow::{Result, ensure};
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use cairn_tests::data::random_bytes;
use cairn_tests::{Server, bucket_name, expect_err, get_bytes, multipart};
use tokio::io::AsyncWriteExt as _;

const PART: usize = 5 << 20;

async fn versioned_bucket(c: &aws_sdk_s3::Client, prefix: &str) -> Result<String> {
    let b = bucket_name(prefix);
    c.create_bucket().bucket(&b).send().await?;
    c.put_bucket_versioning()
        .bucket(&b)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await?;
    Ok(b)
}

async fn versions(c: &aws_sdk_s3::Client, b: &str) -> Result<Vec<String>> {
    Ok(c.list_object_versions()
        .bucket(b)
        .send()
        .await?
        .versions()
        .iter()
        .filter_map(|v| v.version_id.clone())
        .collect())
}

async fn uploads_left(c: &aws_sdk_s3::Client, b: &str) -> Result<usize> {
    Ok(c.list_multipart_uploads()
        .bucket(b)
        .send()
        .await?
        .uploads()
        .len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_complete_gets_the_same_answer() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = versioned_bucket(&c, "retry").await?;
    let id = multipart::start(&c, &b, "k").await?;
    // part 2 first, then part 1 twice: the second replaces the first
    let p2 = random_bytes(1000, 2);
    let two = multipart::upload_part(&c, &b, "k", &id, 2, &p2).await?;
    let stale = multipart::upload_part(&c, &b, "k", &id, 1, &random_bytes(PART, 1)).await?;
    let p1 = random_bytes(PART, 11);
    let one = multipart::upload_part(&c, &b, "k", &id, 1, &p1).await?;
    let done = multipart::completed;
    expect_err(
        "complete naming the replaced part",
        c.complete_multipart_upload()
            .bucket(&b)
            .key("k")
            .upload_id(&id)
            .multipart_upload(done(vec![stale, two.clone()]))
            .send()
            .await,
        400,
        Some("InvalidPart"),
    )?;
    let both = done(vec![one.clone(), two.clone()]);
    let first = multipart::complete(&c, &b, "k", &id, &both).await?;
    let again = multipart::complete(&c, &b, "k", &id, &both).await?;
    ensure!(
        first.e_tag == again.e_tag
            && first.version_id == again.version_id
            && first.location == again.location
            && first.e_tag.is_some()
            && first.version_id.is_some(),
        "retry answered {again:?}, first {first:?}"
    );
    let mut all = p1;
    all.extend_from_slice(&p2);
    ensure!(get_bytes(&c, &b, "k").await? == all, "object bytes");
    let v = versions(&c, &b).await?;
    ensure!(v.len() == 1, "versions after a retried complete: {v:?}");
    ensure!(uploads_left(&c, &b).await? == 0);
    // a different part list is not a retry
    expect_err(
        "complete of a finished upload with another list",
        c.complete_multipart_upload()
            .bucket(&b)
            .key("k")
            .upload_id(&id)
            .multipart_upload(done(vec![one]))
            .send()
            .await,
        404,
        Some("NoSuchUpload"),
    )?;
    Ok(())
}

/// The client sends CompleteMultipartUpload and is gone before the answer
/// (its connection dropped as soon as the request is out); its retry gets
/// 200 and the object exists once, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_killed_mid_complete_then_retries() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = versioned_bucket(&c, "killed").await?;
    let id = multipart::start(&c, &b, "k").await?;
    let mut all = Vec::new();
    let mut parts = Vec::new();
    for n in 1..=3 {
        let data = random_bytes(PART, 100 + n as u64);
        parts.push(multipart::upload_part(&c, &b, "k", &id, n, &data).await?);
        all.extend_from_slice(&data);
    }
    let mut xml = String::from("<CompleteMultipartUpload>");
    for p in &parts {
        xml.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
            p.part_number.unwrap_or_default(),
            p.e_tag.as_deref().unwrap_or_default()
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    let mut conn = s
        .raw()
        .open_upload(
            "POST",
            &format!("/{b}/k?uploadId={id}"),
            &[("content-type", "application/xml")],
            xml.len() as u64,
        )
        .await?;
    conn.write_all(xml.as_bytes()).await?;
    conn.flush().await?;
    drop(conn);

    let retry = multipart::complete(&c, &b, "k", &id, &multipart::completed(parts)).await?;
    ensure!(get_bytes(&c, &b, "k").await? == all, "object bytes");
    let v = versions(&c, &b).await?;
    ensure!(
        v.len() == 1 && retry.version_id.as_ref() == v.first(),
        "versions {v:?}, retry answered {:?}",
        retry.version_id
    );
    ensure!(uploads_left(&c, &b).await? == 0);
    Ok(())
}
