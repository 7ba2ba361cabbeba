//! Multipart retries that must succeed: parts sent out of order and resent,
//! a CompleteMultipartUpload retried after it succeeded (the client timed
//! out), and one whose client was killed mid-request: the object is there
//! once, with the same answer to the retry.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use aws_sdk_s3::types::CompletedPart;
use cairn_tests::data::random_bytes;
use cairn_tests::{Server, bucket_name, expect_err, get_bytes, multipart, new_versioned_bucket};
use tokio::io::AsyncWriteExt as _;

const PART: usize = 5 << 20;

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

/// Sends CompleteMultipartUpload of `b/k` with `parts` and never reads
/// the answer: the connection, open (dropping it is a client gone before
/// the answer; the server may then stop the complete, or finish it).
async fn complete_unanswered(
    s: &Server,
    b: &str,
    k: &str,
    id: &str,
    parts: &[CompletedPart],
) -> Result<tokio::net::TcpStream> {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for p in parts {
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
            &format!("/{b}/{k}?uploadId={id}"),
            &[("content-type", "application/xml")],
            xml.len() as u64,
        )
        .await?;
    conn.write_all(xml.as_bytes()).await?;
    conn.flush().await?;
    Ok(conn)
}

/// [`complete_unanswered`], gone as soon as the request is out.
async fn complete_and_vanish(
    s: &Server,
    b: &str,
    k: &str,
    id: &str,
    parts: &[CompletedPart],
) -> Result<()> {
    drop(complete_unanswered(s, b, k, id, parts).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_complete_gets_the_same_answer() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_versioned_bucket(&c, "retry").await?;
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
    let b = new_versioned_bucket(&c, "killed").await?;
    let id = multipart::start(&c, &b, "k").await?;
    let mut all = Vec::new();
    let mut parts = Vec::new();
    for n in 1..=3 {
        let data = random_bytes(PART, 100 + n as u64);
        parts.push(multipart::upload_part(&c, &b, "k", &id, n, &data).await?);
        all.extend_from_slice(&data);
    }
    complete_and_vanish(&s, &b, "k", &id, &parts).await?;

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

/// Starts an upload of `b/k` and sends two parts: the upload id, the part
/// list and the object's bytes.
async fn two_parts(
    c: &aws_sdk_s3::Client,
    b: &str,
    k: &str,
    seed: u64,
) -> Result<(String, Vec<CompletedPart>, Vec<u8>)> {
    let id = multipart::start(c, b, k).await?;
    let (p1, p2) = (random_bytes(PART, seed), random_bytes(1000, seed + 1));
    let parts = vec![
        multipart::upload_part(c, b, k, &id, 1, &p1).await?,
        multipart::upload_part(c, b, k, &id, 2, &p2).await?,
    ];
    Ok((id, parts, [p1, p2].concat()))
}

/// A retry after a restart of the server (which forgets what it did in
/// memory) gets the same answer: ETag and version id; another part list or
/// another key is still NoSuchUpload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_restart_gets_the_same_answer() -> Result<()> {
    let mut s = Server::start_default().await?;
    let c = s.s3();
    let b = new_versioned_bucket(&c, "restart").await?;
    let (id, parts, all) = two_parts(&c, &b, "k", 31).await?;
    let done = multipart::completed(parts.clone());
    let first = multipart::complete(&c, &b, "k", &id, &done).await?;
    s.restart().await?;
    let c = s.s3();
    let again = multipart::complete(&c, &b, "k", &id, &done).await?;
    ensure!(
        first.e_tag == again.e_tag
            && first.version_id == again.version_id
            && first.e_tag.is_some()
            && first.version_id.is_some(),
        "retry after a restart answered {again:?}, first {first:?}"
    );
    ensure!(get_bytes(&c, &b, "k").await? == all, "object bytes");
    ensure!(versions(&c, &b).await?.len() == 1, "one version");
    for (what, key, list) in [
        ("another part list", "k", parts[..1].to_vec()),
        ("another key", "other", parts),
    ] {
        expect_err(
            what,
            c.complete_multipart_upload()
                .bucket(&b)
                .key(key)
                .upload_id(&id)
                .multipart_upload(multipart::completed(list))
                .send()
                .await,
            404,
            Some("NoSuchUpload"),
        )?;
    }
    Ok(())
}

/// Each drive's records of upload `id` (`upload.json`, `part.N.json`; not
/// the part files).
fn upload_records(s: &Server, b: &str, id: &str) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    for d in s.drives() {
        let dir = d.join(".cairn.sys/multipart").join(b).join(id);
        for e in std::fs::read_dir(&dir).with_context(|| format!("{}", dir.display()))? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "json") {
                let bytes = std::fs::read(&p)?;
                out.push((p, bytes));
            }
        }
    }
    ensure!(out.len() >= 3 * s.drives().len(), "records: {out:?}");
    Ok(out)
}

/// Waits (at most 10 s) until `b/k` exists: the complete sent has committed.
async fn committed(c: &aws_sdk_s3::Client, b: &str, k: &str) -> Result<Option<String>> {
    for _ in 0..500 {
        if let Ok(h) = c.head_object().bucket(b).key(k).send().await {
            return Ok(h.e_tag);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("{b}/{k} never committed")
}

/// The server is killed between the commit of a complete and its answer
/// (the client gone too): the drives hold the new version and still the
/// upload's records, whose part files the commit moved (each drive's records,
/// saved before, are put back after the kill: the state a crash before the
/// upload's folder is removed leaves, whenever the kill lands). After the
/// restart the retry gets 200 with the version's ETag and version id, once,
/// and the upload is gone. In an unversioned bucket where the object was
/// overwritten before the retry, the retry is NoSuchUpload and the newer
/// object stays whole: the upload's parts are not committed a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_commit_and_answer_then_retried_after_a_restart() -> Result<()> {
    let mut s = Server::start_default().await?;
    let c = s.s3();
    let v = new_versioned_bucket(&c, "crashv").await?;
    let u = bucket_name("crashu");
    c.create_bucket().bucket(&u).send().await?;
    let mut records = Vec::new();
    let mut crashed = Vec::new();
    // the connections stay open until the kill: a client gone before the
    // commit may stop it, and this test is about a commit whose answer
    // the crash lost
    let mut unanswered = Vec::new();
    for (b, seed) in [(&v, 41), (&u, 51)] {
        let (id, parts, all) = two_parts(&c, b, "k", seed).await?;
        records.extend(upload_records(&s, b, &id)?);
        unanswered.push(complete_unanswered(&s, b, "k", &id, &parts).await?);
        let etag = committed(&c, b, "k").await?;
        crashed.push((b.clone(), id, parts, all, etag));
    }
    s.kill()?;
    drop(unanswered);
    for (p, bytes) in &records {
        std::fs::create_dir_all(p.parent().context("record folder")?)?;
        std::fs::write(p, bytes)?;
    }
    s.restart().await?;
    let c = s.s3();
    ensure!(
        uploads_left(&c, &v).await? == 1,
        "the crash left the upload"
    );

    let [(b, id, parts, all, etag), (ub, uid, uparts, _, _)] = &crashed[..] else {
        bail!("two crashed completes");
    };
    let before = versions(&c, b).await?;
    let retry = multipart::complete(&c, b, "k", id, &multipart::completed(parts.clone())).await?;
    ensure!(
        retry.e_tag == *etag && retry.version_id.as_ref() == before.first() && before.len() == 1,
        "retry answered {retry:?}; the committed ETag {etag:?}, versions {before:?}"
    );
    ensure!(versions(&c, b).await? == before, "nothing doubled");
    ensure!(get_bytes(&c, b, "k").await? == *all, "object bytes");
    ensure!(
        uploads_left(&c, b).await? == 0,
        "the retry removed the upload"
    );

    c.put_object()
        .bucket(ub)
        .key("k")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"newer"))
        .send()
        .await?;
    expect_err(
        "a retry after the object was overwritten",
        c.complete_multipart_upload()
            .bucket(ub)
            .key("k")
            .upload_id(uid)
            .multipart_upload(multipart::completed(uparts.clone()))
            .send()
            .await,
        404,
        Some("NoSuchUpload"),
    )?;
    ensure!(
        get_bytes(&c, ub, "k").await? == b"newer",
        "the newer object"
    );
    Ok(())
}
