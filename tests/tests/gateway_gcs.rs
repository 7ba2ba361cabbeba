//! `cairn gateway gcs` end to end against fake-gcs-server (started here;
//! unsigned requests): the backend's conformance run, reads of what other
//! GCS programs wrote, writes through every path (single PUT, streamed
//! PUT, a multipart upload past one compose call, copies, metadata,
//! deletes, aborts) checked in the emulator itself, awscli sync + rclone
//! check, and a 503 naming the backend once GCS is gone.

use anyhow::{Result, ensure};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::MetadataDirective;
use cairn_tests::data::{md5_hex, random_bytes};
use cairn_tests::emulators::FakeGcs;
use cairn_tests::gateways::{
    RcloneCheck, get_is_unavailable, list_all, refused_naming, sync_round_trip, top_level,
};
use cairn_tests::{Server, StartOpts, expect_err, get_bytes, multipart};

/// `cairn gateway gcs` serving `bucket` of `gcs`.
async fn gcs_gateway(gcs: &FakeGcs, bucket: &str) -> Result<Server> {
    Server::start(StartOpts::gateway([
        "gcs".to_string(),
        "--bucket".into(),
        bucket.into(),
        "--endpoint".into(),
        gcs.endpoint(),
        "--anonymous".into(),
    ]))
    .await
}

/// What the gateway keeps of its own in a bucket (parts waiting for their
/// compose, compose intermediates): nothing once uploads are done.
async fn leftovers(gcs: &FakeGcs, bucket: &str) -> Result<Vec<String>> {
    Ok(gcs
        .names(bucket)
        .await?
        .into_iter()
        .filter(|n| n.starts_with(".cairn-gateway/") || n.starts_with("__opendal/"))
        .collect())
}

/// The ETag of `key` as HEAD and as the listing show it: always the
/// same (its MD5 where GCS keeps one, else GCS's own ETag).
async fn etag_everywhere(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<String> {
    let h = c.head_object().bucket(bucket).key(key).send().await?;
    let listed = c
        .list_objects_v2()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await?;
    let l = listed
        .contents()
        .iter()
        .find(|o| o.key() == Some(key))
        .and_then(|o| o.e_tag());
    ensure!(
        h.e_tag().is_some() && h.e_tag() == l,
        "HEAD {h:?}, listed {l:?}"
    );
    Ok(h.e_tag().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_backend_passes_conformance_on_fake_gcs_server() -> Result<()> {
    let gcs = FakeGcs::start().await?;
    let names: Vec<String> = cairn_api::conformance::BUCKETS
        .iter()
        .map(|s| s.to_string())
        .collect();
    for n in &names {
        gcs.create_bucket(n).await?;
    }
    let l = cairn_gateway::cloud::gcs_layer(Some(&gcs.endpoint()), None, true, &names)?;
    // `run_all` but for `conditional_writes`: fake-gcs-server 1.54 ignores
    // ifGenerationMatch=0 on media and resumable uploads and on compose
    // (it honors it on multipart uploads only; checked by hand), so a
    // create-only PUT over an object overwrites it there. GCS refuses it
    // (412), which the gateway turns into PreconditionFailed.
    use cairn_api::conformance as c;
    c::buckets(&l).await;
    c::objects_round_trip(&l).await;
    c::ranges_and_conditions(&l).await;
    c::metadata_and_copy(&l).await;
    c::digests(&l).await;
    c::listing(&l).await;
    c::multipart(&l).await;
    c::rename(&l).await;
    c::patch(&l).await;
    c::retried_complete(&l).await;
    c::part_reads(&l).await;
    c::multipart_checksums(&l).await;
    for n in &names {
        ensure!(
            leftovers(&gcs, n).await?.is_empty(),
            "{n}: {:?}",
            leftovers(&gcs, n).await?
        );
    }
    Ok(())
}

/// Objects written by another GCS program (the emulator's JSON API) read
/// through the gateway: bytes, headers, ranges, listings, deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_gateway_reads_what_other_gcs_programs_wrote() -> Result<()> {
    let gcs = FakeGcs::start().await?;
    gcs.create_bucket("gbucket").await?;
    let big = random_bytes(3 * 1024 * 1024 + 17, 21);
    gcs.put_object("gbucket", "docs/a.txt", "text/plain", b"hello gcs")
        .await?;
    gcs.put_object("gbucket", "docs/b.txt", "text/plain", b"second")
        .await?;
    gcs.put_object("gbucket", "big.bin", "application/octet-stream", &big)
        .await?;
    gcs.put_object("gbucket", "z/deep/c.txt", "text/plain", b"deep")
        .await?;
    let gw = gcs_gateway(&gcs, "gbucket").await?;
    let c = gw.s3();
    ensure!(get_bytes(&c, "gbucket", "docs/a.txt").await? == b"hello gcs");
    let h = c
        .head_object()
        .bucket("gbucket")
        .key("docs/a.txt")
        .send()
        .await?;
    ensure!(h.content_length() == Some(9), "{h:?}");
    ensure!(h.content_type() == Some("text/plain"), "{h:?}");
    ensure!(get_bytes(&c, "gbucket", "big.bin").await? == big);
    let r = c
        .get_object()
        .bucket("gbucket")
        .key("big.bin")
        .range("bytes=1000-1999")
        .send()
        .await?;
    ensure!(r.body.collect().await?.into_bytes().as_ref() == &big[1000..2000]);
    // Listing: pages and delimiters as GCS holds them.
    let keys = list_all(&c, "gbucket", 2).await?;
    ensure!(
        keys == ["big.bin", "docs/a.txt", "docs/b.txt", "z/deep/c.txt"],
        "{keys:?}"
    );
    let (cps, top) = top_level(&c, "gbucket").await?;
    ensure!(cps == ["docs/", "z/"], "{cps:?}");
    ensure!(top == ["big.bin"], "{top:?}");
    // Deleted through the gateway: gone from GCS.
    c.delete_object()
        .bucket("gbucket")
        .key("docs/b.txt")
        .send()
        .await?;
    let r = gcs.get_object("gbucket", "docs/b.txt").await?;
    ensure!(r.status == 404, "{}", r.describe());
    // Deleted behind the gateway's back: NoSuchKey.
    gcs.delete_object("gbucket", "z/deep/c.txt").await?;
    expect_err(
        "GET of an object deleted in GCS",
        c.get_object()
            .bucket("gbucket")
            .key("z/deep/c.txt")
            .send()
            .await,
        404,
        Some("NoSuchKey"),
    )?;
    // Declared gaps name the backend.
    refused_naming(
        c.create_bucket().bucket("another").send().await,
        "GCS gateway",
    )?;
    // GCS goes away: 503, not a 404.
    drop(gcs);
    get_is_unavailable(&c, "gbucket", "docs/a.txt", "the GCS gateway").await?;
    Ok(())
}

/// Writes through the gateway, each checked in GCS itself, each ETag the
/// same on the write, HEAD and the listing: headers and metadata, a body
/// streamed in 8 MiB parts, a multipart upload of 34
/// parts (more than one compose call takes: a compose tree), its parts
/// listed on the way and removed after, an abort, copies (rewrite, and
/// with new metadata), conditional PUTs, deletes; then GCS goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_gateway_writes_land_in_gcs() -> Result<()> {
    let gcs = FakeGcs::start().await?;
    gcs.create_bucket("gwrites").await?;
    let gw = gcs_gateway(&gcs, "gwrites").await?;
    let c = gw.s3();

    // A PUT with headers and metadata: GCS holds them as its own fields.
    let put = c
        .put_object()
        .bucket("gwrites")
        .key("docs/a.txt")
        .content_type("text/plain")
        .cache_control("max-age=60")
        .content_disposition("attachment")
        .metadata("color", "blue")
        .body(ByteStream::from_static(b"hello gcs"))
        .send()
        .await?;
    // composed into place (OpenDAL's uploads take no Content-Disposition)
    let md5 = etag_everywhere(&c, "gwrites", "docs/a.txt").await?;
    ensure!(put.e_tag() == Some(md5.as_str()), "{put:?}");
    ensure!(gcs.get_object("gwrites", "docs/a.txt").await?.body == b"hello gcs");
    let o = gcs.object_json("gwrites", "docs/a.txt").await?;
    ensure!(o["contentType"] == "text/plain", "{o}");
    ensure!(o["cacheControl"] == "max-age=60", "{o}");
    ensure!(o["contentDisposition"] == "attachment", "{o}");
    ensure!(o["metadata"]["color"] == "blue", "{o}");
    let h = c
        .head_object()
        .bucket("gwrites")
        .key("docs/a.txt")
        .send()
        .await?;
    ensure!(h.e_tag() == Some(md5.as_str()), "{h:?}");
    ensure!(h.content_disposition() == Some("attachment"), "{h:?}");
    ensure!(h.cache_control() == Some("max-age=60"), "{h:?}");
    let meta = h.metadata().cloned().unwrap_or_default();
    ensure!(
        meta.len() == 1 && meta.get("color").map(String::as_str) == Some("blue"),
        "{meta:?}"
    );
    // A plain PUT is one upload: GCS's own MD5 is the ETag.
    c.put_object()
        .bucket("gwrites")
        .key("plain.txt")
        .body(ByteStream::from_static(b"plain"))
        .send()
        .await?;
    let o = gcs.object_json("gwrites", "plain.txt").await?;
    ensure!(o["md5Hash"].as_str().is_some_and(|m| !m.is_empty()), "{o}");
    let plain = format!("\"{}\"", md5_hex(b"plain"));
    ensure!(etag_everywhere(&c, "gwrites", "plain.txt").await? == plain);

    // A body longer than one PUT streams up in parts, composed: the PUT
    // answers the ETag HEAD and listings show.
    let long = random_bytes(20 * 1024 * 1024 + 3, 31);
    let put = c
        .put_object()
        .bucket("gwrites")
        .key("long.bin")
        .body(ByteStream::from(long.clone()))
        .send()
        .await?;
    let long_md5 = etag_everywhere(&c, "gwrites", "long.bin").await?;
    ensure!(put.e_tag() == Some(long_md5.as_str()), "{put:?}");
    let h = c
        .head_object()
        .bucket("gwrites")
        .key("long.bin")
        .send()
        .await?;
    ensure!(h.e_tag() == Some(long_md5.as_str()), "{h:?}");
    ensure!(gcs.get_object("gwrites", "long.bin").await?.body == long);

    // 34 parts: composed in a tree (32 sources per compose call).
    const PART: usize = 5 * 1024 * 1024;
    let parts: Vec<Vec<u8>> = (0..34u64)
        .map(|i| random_bytes(if i == 33 { 1234 } else { PART }, 100 + i))
        .collect();
    let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    let (id, done) = multipart::upload(&c, "gwrites", "mp/big.bin", &slices).await?;
    let listed = c
        .list_parts()
        .bucket("gwrites")
        .key("mp/big.bin")
        .upload_id(&id)
        .send()
        .await?;
    ensure!(
        listed.parts().len() == 34,
        "{} parts listed",
        listed.parts().len()
    );
    for (p, data) in listed.parts().iter().zip(&parts) {
        let want = format!("\"{}\"", md5_hex(data));
        ensure!(p.e_tag() == Some(want.as_str()), "{p:?}");
    }
    // The waiting parts are GCS objects, but no client lists them.
    ensure!(leftovers(&gcs, "gwrites").await?.len() == 34);
    let keys = list_all(&c, "gwrites", 1000).await?;
    ensure!(keys == ["docs/a.txt", "long.bin", "plain.txt"], "{keys:?}");
    let out = multipart::complete(&c, "gwrites", "mp/big.bin", &id, &done).await?;
    let want = etag_everywhere(&c, "gwrites", "mp/big.bin").await?;
    ensure!(out.e_tag() == Some(want.as_str()), "{out:?}");
    let h = c
        .head_object()
        .bucket("gwrites")
        .key("mp/big.bin")
        .send()
        .await?;
    ensure!(h.e_tag() == Some(want.as_str()), "{h:?}");
    let whole = parts.concat();
    ensure!(md5_hex(&get_bytes(&c, "gwrites", "mp/big.bin").await?) == md5_hex(&whole));
    let r = c
        .get_object()
        .bucket("gwrites")
        .key("mp/big.bin")
        .range(format!("bytes={}-{}", PART - 10, PART + 9))
        .send()
        .await?;
    ensure!(r.body.collect().await?.into_bytes().as_ref() == &whole[PART - 10..PART + 10]);
    ensure!(
        leftovers(&gcs, "gwrites").await?.is_empty(),
        "{:?}",
        leftovers(&gcs, "gwrites").await?
    );

    // An abort removes the parts sent so far.
    let (id, _) = multipart::upload(&c, "gwrites", "mp/gone.bin", &slices[..2]).await?;
    ensure!(leftovers(&gcs, "gwrites").await?.len() == 2);
    c.abort_multipart_upload()
        .bucket("gwrites")
        .key("mp/gone.bin")
        .upload_id(&id)
        .send()
        .await?;
    ensure!(
        leftovers(&gcs, "gwrites").await?.is_empty(),
        "{:?}",
        leftovers(&gcs, "gwrites").await?
    );
    expect_err(
        "ListParts of an aborted upload",
        c.list_parts()
            .bucket("gwrites")
            .key("mp/gone.bin")
            .upload_id(&id)
            .send()
            .await,
        404,
        Some("NoSuchUpload"),
    )?;
    let r = gcs.get_object("gwrites", "mp/gone.bin").await?;
    ensure!(r.status == 404, "{}", r.describe());

    // Copies: within GCS (rewrite) with the metadata and the ETag, or
    // with new metadata.
    c.copy_object()
        .bucket("gwrites")
        .key("copies/a.txt")
        .copy_source("gwrites/docs/a.txt")
        .send()
        .await?;
    let h = c
        .head_object()
        .bucket("gwrites")
        .key("copies/a.txt")
        .send()
        .await?;
    ensure!(
        h.e_tag() == Some(md5.as_str()) && h.content_type() == Some("text/plain"),
        "{h:?}"
    );
    ensure!(
        h.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str)
            == Some("blue")
    );
    c.copy_object()
        .bucket("gwrites")
        .key("copies/big.bin")
        .copy_source("gwrites/mp/big.bin")
        .send()
        .await?;
    let h = c
        .head_object()
        .bucket("gwrites")
        .key("copies/big.bin")
        .send()
        .await?;
    ensure!(h.e_tag() == Some(want.as_str()), "{h:?}");
    c.copy_object()
        .bucket("gwrites")
        .key("copies/red.txt")
        .copy_source("gwrites/docs/a.txt")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/markdown")
        .metadata("color", "red")
        .send()
        .await?;
    let o = gcs.object_json("gwrites", "copies/red.txt").await?;
    ensure!(
        o["contentType"] == "text/markdown" && o["metadata"]["color"] == "red",
        "{o}"
    );
    ensure!(get_bytes(&c, "gwrites", "copies/red.txt").await? == b"hello gcs");

    // If-None-Match: * goes to GCS as ifGenerationMatch=0 (a resumable
    // upload); fake-gcs-server ignores that condition there, so only the
    // write of a new key is checked here.
    c.put_object()
        .bucket("gwrites")
        .key("fresh.txt")
        .if_none_match("*")
        .body(ByteStream::from_static(b"new"))
        .send()
        .await?;
    ensure!(gcs.get_object("gwrites", "fresh.txt").await?.body == b"new");

    // What GCS (through OpenDAL) cannot hold is refused by name.
    refused_naming(
        c.put_object()
            .bucket("gwrites")
            .key("lang.txt")
            .content_language("de")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        "GCS gateway",
    )?;

    // Deletes reach GCS.
    c.delete_object()
        .bucket("gwrites")
        .key("docs/a.txt")
        .send()
        .await?;
    ensure!(gcs.get_object("gwrites", "docs/a.txt").await?.status == 404);
    ensure!(leftovers(&gcs, "gwrites").await?.is_empty());
    drop(gcs);
    get_is_unavailable(&c, "gwrites", "plain.txt", "the GCS gateway").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_gateway_awscli_sync_and_rclone_check() -> Result<()> {
    let gcs = FakeGcs::start().await?;
    gcs.create_bucket("gsync").await?;
    let gw = gcs_gateway(&gcs, "gsync").await?;
    // Composed objects (awscli sends files over 8 MiB in parts) list with
    // GCS's own ETag: rclone compares by downloading.
    sync_round_trip(&gw, "gsync", 17, RcloneCheck::Download)?;
    ensure!(leftovers(&gcs, "gsync").await?.is_empty());
    Ok(())
}
