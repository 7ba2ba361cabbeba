//! aws-sdk-s3 against the real server: every operation of the first issue.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, Delete,
    MetadataDirective, ObjectIdentifier,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cairn_tests::data::{KIB, MIB, md5_hex, random_bytes, same_bytes};
use cairn_tests::{
    Server, bucket_name, err_code, expect_err, get_bytes, multipart, new_bucket, raw,
};
use md5::{Digest, Md5};

async fn put_bytes(c: &Client, b: &str, k: &str, data: &[u8]) -> Result<String> {
    let o = c
        .put_object()
        .bucket(b)
        .key(k)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .with_context(|| format!("PUT {b}/{k} ({} bytes)", data.len()))?;
    Ok(o.e_tag().unwrap_or_default().to_string())
}

fn quoted_md5(b: &[u8]) -> String {
    format!("\"{}\"", md5_hex(b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_create_head_list_delete() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("bkt");
    expect_err(
        "HEAD of a bucket that does not exist",
        c.head_bucket().bucket(&b).send().await,
        404,
        None,
    )?;
    c.create_bucket().bucket(&b).send().await?;
    c.head_bucket().bucket(&b).send().await?;
    // Creating it again: us-east-1 S3 answers 200 to its owner
    c.create_bucket().bucket(&b).send().await?;
    let b2 = new_bucket(&c, "bkt2").await?;
    let names: Vec<String> = c
        .list_buckets()
        .send()
        .await?
        .buckets()
        .iter()
        .filter_map(|x| x.name().map(String::from))
        .collect();
    ensure!(
        names.contains(&b) && names.contains(&b2),
        "list_buckets = {names:?}, wanted {b} and {b2}"
    );
    let mut sorted = names.clone();
    sorted.sort();
    ensure!(
        sorted == names,
        "list_buckets not sorted by name: {names:?}"
    );
    let loc = c.get_bucket_location().bucket(&b).send().await?;
    let loc = loc
        .location_constraint()
        .map(|l| l.as_str().to_string())
        .unwrap_or_default();
    ensure!(
        loc.is_empty() || loc == "us-east-1",
        "location constraint = {loc:?}"
    );

    put_bytes(&c, &b, "x", b"hello").await?;
    expect_err(
        "DELETE of a non-empty bucket",
        c.delete_bucket().bucket(&b).send().await,
        409,
        Some("BucketNotEmpty"),
    )?;
    // still there with its object
    same_bytes(
        "object after refused bucket delete",
        &get_bytes(&c, &b, "x").await?,
        b"hello",
    )?;
    c.delete_object().bucket(&b).key("x").send().await?;
    c.delete_bucket().bucket(&b).send().await?;
    expect_err(
        "HEAD of a deleted bucket",
        c.head_bucket().bucket(&b).send().await,
        404,
        None,
    )?;
    expect_err(
        "GET from a bucket that does not exist",
        c.get_object().bucket(&b).key("x").send().await,
        404,
        Some("NoSuchBucket"),
    )?;
    expect_err(
        "DELETE of a bucket that does not exist",
        c.delete_bucket().bucket(&b).send().await,
        404,
        Some("NoSuchBucket"),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_put_get_head_delete() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "obj").await?;
    for (i, len) in [
        0usize,
        1,
        100,
        128 * KIB,
        128 * KIB + 1,
        MIB,
        3 * MIB + 17,
        11 * MIB,
    ]
    .into_iter()
    .enumerate()
    {
        let data = random_bytes(len, i as u64);
        let key = format!("dir/size-{len}");
        let etag = put_bytes(&c, &b, &key, &data).await?;
        ensure!(
            etag == quoted_md5(&data),
            "PUT {key}: ETag {etag}, want {}",
            quoted_md5(&data)
        );
        let h = c.head_object().bucket(&b).key(&key).send().await?;
        ensure!(
            h.content_length() == Some(len as i64),
            "HEAD {key}: content-length {:?}, want {len}",
            h.content_length()
        );
        ensure!(
            h.e_tag() == Some(etag.as_str()),
            "HEAD {key}: etag {:?}",
            h.e_tag()
        );
        ensure!(h.last_modified().is_some(), "HEAD {key}: no Last-Modified");
        let got = get_bytes(&c, &b, &key).await?;
        same_bytes(&format!("GET {key}"), &got, &data)?;
    }
    // overwrite replaces
    put_bytes(&c, &b, "dir/size-100", b"new").await?;
    same_bytes(
        "GET after overwrite",
        &get_bytes(&c, &b, "dir/size-100").await?,
        b"new",
    )?;
    // delete
    c.delete_object()
        .bucket(&b)
        .key("dir/size-100")
        .send()
        .await?;
    expect_err(
        "GET of a deleted key",
        c.get_object().bucket(&b).key("dir/size-100").send().await,
        404,
        Some("NoSuchKey"),
    )?;
    expect_err(
        "HEAD of a deleted key",
        c.head_object().bucket(&b).key("dir/size-100").send().await,
        404,
        None,
    )?;
    // deleting what does not exist succeeds (S3 semantics)
    c.delete_object()
        .bucket(&b)
        .key("never/was")
        .send()
        .await
        .context("DELETE of a missing key must succeed (204)")?;
    // keys that are prefixes of each other and "directories"
    put_bytes(&c, &b, "p", b"1").await?;
    put_bytes(&c, &b, "p/q", b"2").await?;
    put_bytes(&c, &b, "p/q/r", b"3").await?;
    same_bytes("p", &get_bytes(&c, &b, "p").await?, b"1")?;
    same_bytes("p/q", &get_bytes(&c, &b, "p/q").await?, b"2")?;
    same_bytes("p/q/r", &get_bytes(&c, &b, "p/q/r").await?, b"3")?;
    // unicode and special characters in keys
    for k in [
        "ünïcödé/文件.txt",
        "with space+plus&amp=eq?q#h",
        "trailing/",
    ] {
        put_bytes(&c, &b, k, k.as_bytes()).await?;
        same_bytes(k, &get_bytes(&c, &b, k).await?, k.as_bytes())?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_and_conditional_get() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "rng").await?;
    let n = 3 * MIB + 5;
    let data = random_bytes(n, 7);
    let etag = put_bytes(&c, &b, "obj", &data).await?;
    put_bytes(&c, &b, "small", b"0123456789").await?;

    for (range, from, to) in [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        ("bytes=1048570-2097160", 1_048_570, 2_097_160),
        (&format!("bytes={}-", n - 100), n - 100, n - 1),
        ("bytes=-5", n - 5, n - 1),
        (&format!("bytes=5-{}", n + 1000), 5, n - 1),
    ] {
        let o = c
            .get_object()
            .bucket(&b)
            .key("obj")
            .range(range)
            .send()
            .await
            .with_context(|| format!("GET Range {range}"))?;
        let cr = o.content_range().unwrap_or_default().to_string();
        ensure!(
            cr == format!("bytes {from}-{to}/{n}"),
            "Range {range}: Content-Range {cr:?}, want bytes {from}-{to}/{n}"
        );
        let got = o.body.collect().await?.into_bytes();
        same_bytes(&format!("Range {range}"), &got, &data[from..=to])?;
    }
    let o = c
        .get_object()
        .bucket(&b)
        .key("small")
        .range("bytes=3-5")
        .send()
        .await?;
    same_bytes(
        "inline range",
        &o.body.collect().await?.into_bytes(),
        b"345",
    )?;
    expect_err(
        "GET Range beyond the end",
        c.get_object()
            .bucket(&b)
            .key("obj")
            .range(format!("bytes={}-", n + 10))
            .send()
            .await,
        416,
        Some("InvalidRange"),
    )?;

    // conditional GET
    expect_err(
        "GET If-None-Match: <current etag>",
        c.get_object()
            .bucket(&b)
            .key("obj")
            .if_none_match(&etag)
            .send()
            .await,
        304,
        None,
    )?;
    expect_err(
        "GET If-Match: <other etag>",
        c.get_object()
            .bucket(&b)
            .key("obj")
            .if_match("\"0123456789abcdef0123456789abcdef\"")
            .send()
            .await,
        412,
        Some("PreconditionFailed"),
    )?;
    let future = DateTime::from_secs(4_102_444_800); // 2100-01-01
    let past = DateTime::from_secs(946_684_800); // 2000-01-01
    expect_err(
        "GET If-Modified-Since: 2100",
        c.get_object()
            .bucket(&b)
            .key("obj")
            .if_modified_since(future)
            .send()
            .await,
        304,
        None,
    )?;
    expect_err(
        "GET If-Unmodified-Since: 2000",
        c.get_object()
            .bucket(&b)
            .key("obj")
            .if_unmodified_since(past)
            .send()
            .await,
        412,
        Some("PreconditionFailed"),
    )?;
    expect_err(
        "HEAD If-None-Match: <current etag>",
        c.head_object()
            .bucket(&b)
            .key("obj")
            .if_none_match(&etag)
            .send()
            .await,
        304,
        None,
    )?;
    // the positive cases return the object
    let o = c
        .get_object()
        .bucket(&b)
        .key("obj")
        .if_match(&etag)
        .if_modified_since(past)
        .send()
        .await
        .context("GET If-Match: <current etag>, If-Modified-Since: 2000")?;
    same_bytes(
        "conditional GET",
        &o.body.collect().await?.into_bytes(),
        &data,
    )?;
    let o = c
        .get_object()
        .bucket(&b)
        .key("obj")
        .if_none_match("\"0123456789abcdef0123456789abcdef\"")
        .send()
        .await
        .context("GET If-None-Match: <other etag>")?;
    ensure!(o.content_length() == Some(n as i64));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_round_trip_and_copy() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "meta").await?;
    let b2 = new_bucket(&c, "meta2").await?;
    let data = random_bytes(300 * KIB, 3);
    c.put_object()
        .bucket(&b)
        .key("src.txt")
        .body(ByteStream::from(data.clone()))
        .content_type("text/x-cairn")
        .cache_control("max-age=60")
        .content_disposition("attachment; filename=\"a.txt\"")
        .content_encoding("identity")
        .content_language("en")
        .metadata("color", "blue")
        .metadata("Mixed-Case", "Value With Spaces")
        .send()
        .await?;
    let want_meta: HashMap<String, String> = [
        ("color".to_string(), "blue".to_string()),
        ("mixed-case".to_string(), "Value With Spaces".to_string()),
    ]
    .into();
    let h = c.head_object().bucket(&b).key("src.txt").send().await?;
    ensure!(
        h.content_type() == Some("text/x-cairn"),
        "content-type {:?}",
        h.content_type()
    );
    ensure!(
        h.cache_control() == Some("max-age=60"),
        "cache-control {:?}",
        h.cache_control()
    );
    ensure!(
        h.content_disposition() == Some("attachment; filename=\"a.txt\""),
        "content-disposition {:?}",
        h.content_disposition()
    );
    ensure!(
        h.content_encoding() == Some("identity"),
        "content-encoding {:?}",
        h.content_encoding()
    );
    ensure!(
        h.content_language() == Some("en"),
        "content-language {:?}",
        h.content_language()
    );
    let meta = h.metadata().cloned().unwrap_or_default();
    ensure!(
        meta == want_meta,
        "HEAD metadata {meta:?}, want {want_meta:?}"
    );
    let g = c.get_object().bucket(&b).key("src.txt").send().await?;
    ensure!(g.content_type() == Some("text/x-cairn"));
    ensure!(
        g.metadata().cloned().unwrap_or_default() == want_meta,
        "GET metadata {:?}",
        g.metadata()
    );

    // COPY (default directive): bytes and metadata copied, to another bucket
    let r = c
        .copy_object()
        .bucket(&b2)
        .key("copy.txt")
        .copy_source(format!("{b}/src.txt"))
        .send()
        .await?;
    let etag = r
        .copy_object_result()
        .and_then(|x| x.e_tag())
        .unwrap_or_default();
    ensure!(etag == quoted_md5(&data), "copy ETag {etag}");
    let h = c.head_object().bucket(&b2).key("copy.txt").send().await?;
    ensure!(
        h.content_type() == Some("text/x-cairn"),
        "COPY content-type {:?}",
        h.content_type()
    );
    ensure!(
        h.cache_control() == Some("max-age=60"),
        "COPY cache-control {:?}",
        h.cache_control()
    );
    ensure!(
        h.metadata().cloned().unwrap_or_default() == want_meta,
        "COPY metadata {:?}",
        h.metadata()
    );
    same_bytes("COPY bytes", &get_bytes(&c, &b2, "copy.txt").await?, &data)?;

    // REPLACE: new metadata only
    c.copy_object()
        .bucket(&b)
        .key("replaced.txt")
        .copy_source(format!("{b}/src.txt"))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/x-new")
        .metadata("shape", "round")
        .send()
        .await?;
    let h = c
        .head_object()
        .bucket(&b)
        .key("replaced.txt")
        .send()
        .await?;
    ensure!(
        h.content_type() == Some("application/x-new"),
        "REPLACE content-type {:?}",
        h.content_type()
    );
    let want: HashMap<String, String> = [("shape".to_string(), "round".to_string())].into();
    ensure!(
        h.metadata().cloned().unwrap_or_default() == want,
        "REPLACE metadata {:?}",
        h.metadata()
    );
    ensure!(
        h.cache_control().is_none(),
        "REPLACE kept cache-control {:?}",
        h.cache_control()
    );
    same_bytes(
        "REPLACE bytes",
        &get_bytes(&c, &b, "replaced.txt").await?,
        &data,
    )?;

    // copy onto itself with REPLACE (the usual way to change metadata)
    c.copy_object()
        .bucket(&b)
        .key("src.txt")
        .copy_source(format!("{b}/src.txt"))
        .metadata_directive(MetadataDirective::Replace)
        .metadata("color", "red")
        .send()
        .await?;
    let h = c.head_object().bucket(&b).key("src.txt").send().await?;
    let want: HashMap<String, String> = [("color".to_string(), "red".to_string())].into();
    ensure!(
        h.metadata().cloned().unwrap_or_default() == want,
        "self-copy metadata {:?}",
        h.metadata()
    );
    same_bytes(
        "self-copy bytes",
        &get_bytes(&c, &b, "src.txt").await?,
        &data,
    )?;

    // copy of a small (inline) object, key with special characters
    put_bytes(&c, &b, "tiny ü+.txt", b"tiny").await?;
    c.copy_object()
        .bucket(&b)
        .key("tiny-copy")
        .copy_source(format!("{b}/tiny%20%C3%BC%2B.txt"))
        .send()
        .await
        .context("copy with url-encoded source")?;
    same_bytes("tiny copy", &get_bytes(&c, &b, "tiny-copy").await?, b"tiny")?;
    expect_err(
        "copy from a missing key",
        c.copy_object()
            .bucket(&b)
            .key("nope-copy")
            .copy_source(format!("{b}/nope"))
            .send()
            .await,
        404,
        Some("NoSuchKey"),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_objects_many() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "del").await?;
    for k in ["a", "b/c", "d", "keep"] {
        put_bytes(&c, &b, k, k.as_bytes()).await?;
    }
    let objs = ["a", "b/c", "d", "missing"]
        .iter()
        .map(|k| ObjectIdentifier::builder().key(*k).build())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let r = c
        .delete_objects()
        .bucket(&b)
        .delete(Delete::builder().set_objects(Some(objs)).build()?)
        .send()
        .await?;
    let mut deleted: Vec<&str> = r.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    ensure!(
        deleted == ["a", "b/c", "d", "missing"],
        "DeleteObjects reported deleted {deleted:?} (errors {:?})",
        r.errors()
    );
    ensure!(
        r.errors().is_empty(),
        "DeleteObjects errors {:?}",
        r.errors()
    );
    let keys: Vec<String> = c
        .list_objects_v2()
        .bucket(&b)
        .send()
        .await?
        .contents()
        .iter()
        .filter_map(|o| o.key().map(String::from))
        .collect();
    ensure!(
        keys == ["keep"],
        "after DeleteObjects, bucket holds {keys:?}"
    );
    // quiet mode reports nothing on success
    put_bytes(&c, &b, "q", b"q").await?;
    let r = c
        .delete_objects()
        .bucket(&b)
        .delete(
            Delete::builder()
                .objects(ObjectIdentifier::builder().key("q").build()?)
                .quiet(true)
                .build()?,
        )
        .send()
        .await?;
    ensure!(
        r.deleted().is_empty(),
        "quiet DeleteObjects listed {:?}",
        r.deleted()
    );
    expect_err(
        "GET after quiet delete",
        c.get_object().bucket(&b).key("q").send().await,
        404,
        Some("NoSuchKey"),
    )?;
    Ok(())
}

/// 2500 keys chosen so byte order matters ('-' < '/' < '0', spaces, UTF-8).
fn listing_keys() -> Vec<String> {
    let mut v = Vec::new();
    for i in 0..1200 {
        v.push(format!("photos/2024/img{i:04}.jpg"));
    }
    for i in 0..800 {
        v.push(format!("photos/2025/img{i:04}.jpg"));
    }
    for i in 0..300 {
        v.push(format!("docs/d{i:03}.txt"));
    }
    for i in 0..150 {
        v.push(format!("logs-{i:03}"));
    }
    for i in 0..40 {
        v.push(format!("z/é{i:02}"));
    }
    for i in 0..10 {
        v.push(format!("a b {i}"));
    }
    v
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_v1_v2_paging_2500_keys() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "list").await?;
    let keys = listing_keys();
    ensure!(keys.len() == 2500);
    let mut set = tokio::task::JoinSet::new();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    for k in keys.clone() {
        let c = c.clone();
        let b = b.clone();
        let permit = sem.clone().acquire_owned().await?;
        set.spawn(async move {
            let r = c
                .put_object()
                .bucket(&b)
                .key(&k)
                .body(ByteStream::from(k.clone().into_bytes()))
                .send()
                .await
                .with_context(|| format!("PUT {k}"));
            drop(permit);
            r.map(|_| ())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let mut sorted = keys.clone();
    sorted.sort(); // byte order of UTF-8 == S3 order

    // v2, no delimiter, default page size 1000
    let mut got = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let r = c
            .list_objects_v2()
            .bucket(&b)
            .set_continuation_token(token.clone())
            .send()
            .await?;
        let page: Vec<String> = r
            .contents()
            .iter()
            .filter_map(|o| o.key().map(String::from))
            .collect();
        ensure!(
            r.key_count() == Some(page.len() as i32),
            "KeyCount {:?} but {} keys",
            r.key_count(),
            page.len()
        );
        pages.push(page.len());
        got.extend(page);
        if r.is_truncated() == Some(true) {
            token = r.next_continuation_token().map(String::from);
            ensure!(
                token.is_some(),
                "truncated page without NextContinuationToken"
            );
        } else {
            ensure!(
                r.next_continuation_token().is_none(),
                "last page has a token"
            );
            break;
        }
        ensure!(pages.len() < 10, "too many pages");
    }
    ensure!(pages == [1000, 1000, 500], "v2 page sizes {pages:?}");
    if got != sorted {
        let i = got.iter().zip(&sorted).position(|(a, b)| a != b);
        bail!(
            "v2 listing order/content wrong: {} keys, first difference at {i:?}: got {:?} want {:?}",
            got.len(),
            i.map(|i| &got[i]),
            i.map(|i| &sorted[i])
        );
    }
    // sizes and etags in the listing
    let r = c
        .list_objects_v2()
        .bucket(&b)
        .prefix("docs/d000")
        .send()
        .await?;
    let o = &r.contents()[0];
    ensure!(
        o.size() == Some("docs/d000.txt".len() as i64),
        "listed size {:?}",
        o.size()
    );
    ensure!(
        o.e_tag() == Some(quoted_md5(b"docs/d000.txt").as_str()),
        "listed etag {:?}",
        o.e_tag()
    );

    // v2 with delimiter at the top
    let r = c.list_objects_v2().bucket(&b).delimiter("/").send().await?;
    let prefixes: Vec<&str> = r
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    ensure!(
        prefixes == ["docs/", "photos/", "z/"],
        "top prefixes {prefixes:?}"
    );
    let top: Vec<&str> = r.contents().iter().filter_map(|o| o.key()).collect();
    let want_top: Vec<&String> = sorted.iter().filter(|k| !k.contains('/')).collect();
    ensure!(
        top.len() == 160 && top.iter().zip(&want_top).all(|(a, b)| a == b),
        "top keys {top:?}"
    );
    ensure!(
        r.key_count() == Some(163),
        "KeyCount with prefixes {:?}",
        r.key_count()
    );

    // prefix + delimiter
    let r = c
        .list_objects_v2()
        .bucket(&b)
        .prefix("photos/")
        .delimiter("/")
        .send()
        .await?;
    let prefixes: Vec<&str> = r
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    ensure!(
        prefixes == ["photos/2024/", "photos/2025/"],
        "photos/ prefixes {prefixes:?}"
    );
    ensure!(
        r.contents().is_empty(),
        "photos/ contents {:?}",
        r.contents()
    );

    // delimiter paging with max-keys 7: prefixes count against max-keys
    let mut entries = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let r = c
            .list_objects_v2()
            .bucket(&b)
            .delimiter("/")
            .max_keys(7)
            .set_continuation_token(token.clone())
            .send()
            .await?;
        let n = r.contents().len() + r.common_prefixes().len();
        ensure!(n <= 7, "page of {n} entries with max-keys 7");
        entries.extend(
            r.contents()
                .iter()
                .filter_map(|o| o.key().map(String::from)),
        );
        entries.extend(
            r.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(String::from)),
        );
        if r.is_truncated() != Some(true) {
            token = None;
            break;
        }
        token = r.next_continuation_token().map(String::from);
    }
    ensure!(token.is_none(), "delimiter paging did not end");
    entries.sort();
    let mut want: Vec<String> = want_top.iter().map(|s| s.to_string()).collect();
    want.extend(["docs/", "photos/", "z/"].map(String::from));
    want.sort();
    ensure!(
        entries == want,
        "delimiter paging gave {} entries, want {}",
        entries.len(),
        want.len()
    );

    // prefix paging, max-keys 500
    let mut n = 0;
    let mut token: Option<String> = None;
    let mut first_last = Vec::new();
    loop {
        let r = c
            .list_objects_v2()
            .bucket(&b)
            .prefix("photos/2024/")
            .max_keys(500)
            .set_continuation_token(token.clone())
            .send()
            .await?;
        n += r.contents().len();
        first_last.push(
            r.contents()
                .first()
                .and_then(|o| o.key())
                .unwrap_or_default()
                .to_string(),
        );
        if r.is_truncated() != Some(true) {
            break;
        }
        token = r.next_continuation_token().map(String::from);
    }
    ensure!(n == 1200, "prefix photos/2024/ listed {n} keys");
    ensure!(
        first_last
            == [
                "photos/2024/img0000.jpg",
                "photos/2024/img0500.jpg",
                "photos/2024/img1000.jpg"
            ],
        "page starts {first_last:?}"
    );

    // start-after
    let r = c
        .list_objects_v2()
        .bucket(&b)
        .start_after("photos/2024/img1199.jpg")
        .max_keys(2)
        .send()
        .await?;
    let k: Vec<&str> = r.contents().iter().filter_map(|o| o.key()).collect();
    ensure!(
        k == ["photos/2025/img0000.jpg", "photos/2025/img0001.jpg"],
        "start-after gave {k:?}"
    );

    // v1 with marker paging (no delimiter: marker = last key)
    let mut got = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let r = c
            .list_objects()
            .bucket(&b)
            .max_keys(700)
            .set_marker(marker.clone())
            .send()
            .await?;
        pages += 1;
        let page: Vec<String> = r
            .contents()
            .iter()
            .filter_map(|o| o.key().map(String::from))
            .collect();
        ensure!(page.len() <= 700);
        let last = page.last().cloned();
        got.extend(page);
        if r.is_truncated() != Some(true) {
            break;
        }
        marker = r.next_marker().map(String::from).or(last);
        ensure!(pages < 10);
    }
    ensure!(pages == 4, "v1 pages {pages}");
    ensure!(got == sorted, "v1 listing differs ({} keys)", got.len());

    // v1 with delimiter: NextMarker is given
    let r = c
        .list_objects()
        .bucket(&b)
        .delimiter("/")
        .max_keys(3)
        .send()
        .await?;
    ensure!(
        r.is_truncated() == Some(true),
        "v1 delimiter page not truncated"
    );
    ensure!(
        r.next_marker().is_some(),
        "v1 with delimiter and truncated: no NextMarker"
    );
    let r2 = c.list_objects().bucket(&b).prefix("z/").send().await?;
    ensure!(
        r2.contents().len() == 40,
        "v1 prefix z/: {}",
        r2.contents().len()
    );

    // encoding-type=url: the non-ASCII keys come back encoded
    let r = c
        .list_objects_v2()
        .bucket(&b)
        .prefix("z/")
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .max_keys(1)
        .send()
        .await?;
    let k = r
        .contents()
        .first()
        .and_then(|o| o.key())
        .unwrap_or_default();
    ensure!(
        k != "z/é00" && percent_decode(k) == "z/é00",
        "encoding-type=url gave key {k:?}"
    );
    // empty bucket listing
    let e = new_bucket(&c, "empty").await?;
    let r = c.list_objects_v2().bucket(&e).send().await?;
    ensure!(r.contents().is_empty() && r.key_count() == Some(0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_full_cycle() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "mpu").await?;
    let src = random_bytes(6 * MIB, 40);
    put_bytes(&c, &b, "copy-source", &src).await?;
    let p1 = random_bytes(5 * MIB, 41);
    let p3 = random_bytes(MIB + 123, 43);

    let up = c
        .create_multipart_upload()
        .bucket(&b)
        .key("big/object")
        .content_type("application/x-mpu")
        .metadata("origin", "multipart")
        .send()
        .await?;
    let id = up.upload_id().context("no UploadId")?.to_string();

    let r1 = c
        .upload_part()
        .bucket(&b)
        .key("big/object")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(p1.clone()))
        .send()
        .await?;
    let e1 = r1.e_tag().unwrap_or_default().to_string();
    ensure!(e1 == quoted_md5(&p1), "part 1 ETag {e1}");
    let r2 = c
        .upload_part_copy()
        .bucket(&b)
        .key("big/object")
        .upload_id(&id)
        .part_number(2)
        .copy_source(format!("{b}/copy-source"))
        .copy_source_range(format!("bytes=1000-{}", 1000 + 5 * MIB - 1))
        .send()
        .await?;
    let p2 = src[1000..1000 + 5 * MIB].to_vec();
    let e2 = r2
        .copy_part_result()
        .and_then(|x| x.e_tag())
        .unwrap_or_default()
        .to_string();
    ensure!(
        e2 == quoted_md5(&p2),
        "UploadPartCopy ETag {e2}, want {}",
        quoted_md5(&p2)
    );
    let r3 = c
        .upload_part()
        .bucket(&b)
        .key("big/object")
        .upload_id(&id)
        .part_number(3)
        .body(ByteStream::from(p3.clone()))
        .send()
        .await?;
    let e3 = r3.e_tag().unwrap_or_default().to_string();

    // list parts
    let lp = c
        .list_parts()
        .bucket(&b)
        .key("big/object")
        .upload_id(&id)
        .send()
        .await?;
    let parts: Vec<(i32, i64, String)> = lp
        .parts()
        .iter()
        .map(|p| {
            (
                p.part_number().unwrap_or(0),
                p.size().unwrap_or(-1),
                p.e_tag().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want = vec![
        (1, p1.len() as i64, e1.clone()),
        (2, p2.len() as i64, e2.clone()),
        (3, p3.len() as i64, e3.clone()),
    ];
    ensure!(parts == want, "ListParts {parts:?}, want {want:?}");
    let lp = c
        .list_parts()
        .bucket(&b)
        .key("big/object")
        .upload_id(&id)
        .max_parts(2)
        .send()
        .await?;
    ensure!(
        lp.parts().len() == 2 && lp.is_truncated() == Some(true),
        "ListParts max-parts 2: {} parts, truncated {:?}",
        lp.parts().len(),
        lp.is_truncated()
    );

    // a second upload to abort; list uploads shows both
    let id2 = multipart::start(&c, &b, "other").await?;
    multipart::upload_part(&c, &b, "other", &id2, 1, &[1u8; 1000]).await?;
    let lu = c.list_multipart_uploads().bucket(&b).send().await?;
    let mut ups: Vec<(String, String)> = lu
        .uploads()
        .iter()
        .map(|u| {
            (
                u.key().unwrap_or_default().to_string(),
                u.upload_id().unwrap_or_default().to_string(),
            )
        })
        .collect();
    ups.sort();
    let mut want = vec![
        ("big/object".to_string(), id.clone()),
        ("other".to_string(), id2.clone()),
    ];
    want.sort();
    ensure!(ups == want, "ListMultipartUploads {ups:?}, want {want:?}");
    // the in-progress upload is not an object
    expect_err(
        "GET of a key whose upload is in progress",
        c.get_object().bucket(&b).key("other").send().await,
        404,
        Some("NoSuchKey"),
    )?;
    c.abort_multipart_upload()
        .bucket(&b)
        .key("other")
        .upload_id(&id2)
        .send()
        .await?;
    expect_err(
        "ListParts of an aborted upload",
        c.list_parts()
            .bucket(&b)
            .key("other")
            .upload_id(&id2)
            .send()
            .await,
        404,
        Some("NoSuchUpload"),
    )?;

    // complete with a wrong ETag -> InvalidPart
    expect_err(
        "complete with a wrong part ETag",
        c.complete_multipart_upload()
            .bucket(&b)
            .key("big/object")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(
                        CompletedPart::builder()
                            .part_number(1)
                            .e_tag("\"00000000000000000000000000000000\"")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await,
        400,
        Some("InvalidPart"),
    )?;
    // complete
    let parts: Vec<CompletedPart> = [(1, &e1), (2, &e2), (3, &e3)]
        .iter()
        .map(|(n, e)| {
            CompletedPart::builder()
                .part_number(*n)
                .e_tag(e.as_str())
                .build()
        })
        .collect();
    let done = c
        .complete_multipart_upload()
        .bucket(&b)
        .key("big/object")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await?;
    let mut h = Md5::new();
    for p in [&p1, &p2, &p3] {
        h.update(Md5::digest(p));
    }
    let want_etag = format!("\"{}-3\"", hex::encode(h.finalize()));
    ensure!(
        done.e_tag() == Some(want_etag.as_str()),
        "multipart ETag {:?}, want {want_etag}",
        done.e_tag()
    );
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    whole.extend_from_slice(&p3);
    same_bytes(
        "completed multipart object",
        &get_bytes(&c, &b, "big/object").await?,
        &whole,
    )?;
    let hd = c.head_object().bucket(&b).key("big/object").send().await?;
    ensure!(hd.content_length() == Some(whole.len() as i64));
    ensure!(
        hd.e_tag() == Some(want_etag.as_str()),
        "HEAD etag {:?}",
        hd.e_tag()
    );
    ensure!(
        hd.content_type() == Some("application/x-mpu"),
        "content-type {:?}",
        hd.content_type()
    );
    ensure!(
        hd.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str)
            == Some("multipart"),
        "metadata {:?}",
        hd.metadata()
    );
    // range across a part boundary
    let o = c
        .get_object()
        .bucket(&b)
        .key("big/object")
        .range(format!("bytes={}-{}", 5 * MIB - 10, 5 * MIB + 9))
        .send()
        .await?;
    same_bytes(
        "range across parts",
        &o.body.collect().await?.into_bytes(),
        &whole[5 * MIB - 10..5 * MIB + 10],
    )?;
    let lu = c.list_multipart_uploads().bucket(&b).send().await?;
    ensure!(
        lu.uploads().is_empty(),
        "uploads left after complete/abort: {:?}",
        lu.uploads()
    );
    expect_err(
        "UploadPart to a completed upload",
        c.upload_part()
            .bucket(&b)
            .key("big/object")
            .upload_id(&id)
            .part_number(4)
            .body(ByteStream::from(vec![0u8; 10]))
            .send()
            .await,
        404,
        Some("NoSuchUpload"),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_small_middle_part_is_entity_too_small() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "small").await?;
    put_bytes(&c, &b, "k", b"old").await?;
    let datas: Vec<Vec<u8>> = [(1, 5 * MIB), (2, MIB), (3, MIB)]
        .into_iter()
        .map(|(n, len)| random_bytes(len, n))
        .collect();
    let parts: Vec<&[u8]> = datas.iter().map(Vec::as_slice).collect();
    let (id, done) = multipart::upload(&c, &b, "k", &parts).await?;
    expect_err(
        "complete with a 1 MiB part in the middle",
        c.complete_multipart_upload()
            .bucket(&b)
            .key("k")
            .upload_id(&id)
            .multipart_upload(done)
            .send()
            .await,
        400,
        Some("EntityTooSmall"),
    )?;
    same_bytes(
        "object after refused complete",
        &get_bytes(&c, &b, "k").await?,
        b"old",
    )?;
    Ok(())
}

fn crc32_b64(b: &[u8]) -> String {
    B64.encode(crc32fast::hash(b).to_be_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksums() -> Result<()> {
    use sha2::Sha256;
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "sum").await?;

    // streamed body from a file: the SDK sends aws-chunked with a trailing CRC32
    let data = random_bytes(3 * MIB + 11, 50);
    let path = s.dir().join("upload.bin");
    std::fs::write(&path, &data)?;
    let r = c
        .put_object()
        .bucket(&b)
        .key("streamed")
        .body(ByteStream::from_path(&path).await?)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .context("PUT with trailing CRC32")?;
    ensure!(
        r.e_tag() == Some(quoted_md5(&data).as_str()),
        "ETag {:?}",
        r.e_tag()
    );
    same_bytes("streamed PUT", &get_bytes(&c, &b, "streamed").await?, &data)?;
    let h = c
        .head_object()
        .bucket(&b)
        .key("streamed")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await?;
    ensure!(
        h.checksum_crc32() == Some(crc32_b64(&data).as_str()),
        "stored CRC32 {:?}, want {}",
        h.checksum_crc32(),
        crc32_b64(&data)
    );

    // every algorithm the SDK offers round trips
    for (i, alg) in [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32C,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Crc64Nvme,
    ]
    .into_iter()
    .enumerate()
    {
        let d = random_bytes(200 * KIB + i, 60 + i as u64);
        let key = format!("alg-{}", alg.as_str());
        let put = c
            .put_object()
            .bucket(&b)
            .key(&key)
            .body(ByteStream::from(d.clone()))
            .checksum_algorithm(alg.clone())
            .send()
            .await
            .with_context(|| format!("PUT with {}", alg.as_str()))?;
        let h = c
            .head_object()
            .bucket(&b)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await?;
        let (sent, stored) = match alg {
            ChecksumAlgorithm::Crc32 => (put.checksum_crc32(), h.checksum_crc32()),
            ChecksumAlgorithm::Crc32C => (put.checksum_crc32_c(), h.checksum_crc32_c()),
            ChecksumAlgorithm::Sha1 => (put.checksum_sha1(), h.checksum_sha1()),
            ChecksumAlgorithm::Sha256 => (put.checksum_sha256(), h.checksum_sha256()),
            _ => (put.checksum_crc64_nvme(), h.checksum_crc64_nvme()),
        };
        ensure!(
            stored.is_some() && sent == stored,
            "{}: PUT answered {sent:?}, HEAD (checksum mode) {stored:?}",
            alg.as_str()
        );
        if matches!(alg, ChecksumAlgorithm::Sha256) {
            let want = B64.encode(Sha256::digest(&d));
            ensure!(
                stored == Some(want.as_str()),
                "SHA256 {stored:?}, want {want}"
            );
        }
        same_bytes(&key, &get_bytes(&c, &b, &key).await?, &d)?;
    }

    // explicit wrong checksums / Content-MD5 are refused and change nothing
    put_bytes(&c, &b, "guarded", b"original").await?;
    expect_err(
        "PUT with a wrong x-amz-checksum-sha256",
        c.put_object()
            .bucket(&b)
            .key("guarded")
            .body(ByteStream::from_static(b"replacement"))
            .checksum_sha256(B64.encode(Sha256::digest(b"something else")))
            .send()
            .await,
        400,
        Some("BadDigest"),
    )?;
    expect_err(
        "PUT with a wrong x-amz-checksum-crc32",
        c.put_object()
            .bucket(&b)
            .key("guarded")
            .body(ByteStream::from_static(b"replacement"))
            .checksum_crc32(crc32_b64(b"something else"))
            .send()
            .await,
        400,
        Some("BadDigest"),
    )?;
    expect_err(
        "PUT with a wrong Content-MD5",
        c.put_object()
            .bucket(&b)
            .key("guarded")
            .body(ByteStream::from_static(b"replacement"))
            .content_md5(B64.encode(Md5::digest(b"something else")))
            .send()
            .await,
        400,
        Some("BadDigest"),
    )?;
    same_bytes(
        "after refused PUTs",
        &get_bytes(&c, &b, "guarded").await?,
        b"original",
    )?;
    // right Content-MD5 is accepted
    c.put_object()
        .bucket(&b)
        .key("guarded")
        .body(ByteStream::from_static(b"replacement"))
        .content_md5(B64.encode(Md5::digest(b"replacement")))
        .send()
        .await
        .context("PUT with the right Content-MD5")?;
    same_bytes(
        "after good PUT",
        &get_bytes(&c, &b, "guarded").await?,
        b"replacement",
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_get_and_put_over_plain_http() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "pre").await?;
    let data = random_bytes(2 * MIB + 1, 70);
    put_bytes(&c, &b, "dir/file name.bin", &data).await?;

    let cfg = PresigningConfig::expires_in(Duration::from_secs(600))?;
    let req = c
        .get_object()
        .bucket(&b)
        .key("dir/file name.bin")
        .presigned(cfg.clone())
        .await?;
    let headers: Vec<(&str, &str)> = req.headers().collect();
    let r = raw::send_url("GET", req.uri(), &headers, b"").await?;
    ensure!(
        r.status == 200,
        "presigned GET {}: {}",
        req.uri(),
        r.describe()
    );
    same_bytes("presigned GET", &r.body, &data)?;

    // tampered signature
    let uri = req.uri().to_string();
    let i = uri.find("X-Amz-Signature=").context("no X-Amz-Signature")? + 16;
    let flipped = if &uri[i..i + 1] == "0" { "1" } else { "0" };
    let bad = format!("{}{flipped}{}", &uri[..i], &uri[i + 1..]);
    let r = raw::send_url("GET", &bad, &headers, b"").await?;
    ensure!(
        r.status == 403 && r.code().as_deref() == Some("SignatureDoesNotMatch"),
        "presigned GET with a bad signature: {}",
        r.describe()
    );

    // presigned PUT
    let body = random_bytes(300 * KIB, 71);
    let req = c
        .put_object()
        .bucket(&b)
        .key("uploaded/by-url")
        .presigned(cfg.clone())
        .await?;
    let headers: Vec<(&str, &str)> = req.headers().collect();
    let r = raw::send_url("PUT", req.uri(), &headers, &body).await?;
    ensure!(r.status == 200, "presigned PUT: {}", r.describe());
    same_bytes(
        "object PUT by presigned URL",
        &get_bytes(&c, &b, "uploaded/by-url").await?,
        &body,
    )?;

    // expired URL
    let req = c
        .get_object()
        .bucket(&b)
        .key("dir/file name.bin")
        .presigned(
            PresigningConfig::builder()
                .start_time(std::time::SystemTime::now() - Duration::from_secs(3600))
                .expires_in(Duration::from_secs(60))
                .build()?,
        )
        .await?;
    let headers: Vec<(&str, &str)> = req.headers().collect();
    let r = raw::send_url("GET", req.uri(), &headers, b"").await?;
    ensure!(
        r.status == 403 && r.code().as_deref() == Some("AccessDenied"),
        "expired presigned GET: {}",
        r.describe()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_signature_does_not_match() -> Result<()> {
    let s = Server::start_default().await?;
    let good = s.s3();
    let b = new_bucket(&good, "auth").await?;
    put_bytes(&good, &b, "k", b"v").await?;
    let bad = Client::from_conf(s.s3_config_with(s.access_key(), "not-the-secret").build());
    expect_err(
        "ListBuckets with a wrong secret",
        bad.list_buckets().send().await,
        403,
        Some("SignatureDoesNotMatch"),
    )?;
    expect_err(
        "PUT with a wrong secret",
        bad.put_object()
            .bucket(&b)
            .key("k")
            .body(ByteStream::from_static(b"evil"))
            .send()
            .await,
        403,
        Some("SignatureDoesNotMatch"),
    )?;
    let unknown = Client::from_conf(s.s3_config_with("NOSUCHUSER", s.secret_key()).build());
    expect_err(
        "GET with an unknown access key",
        unknown.get_object().bucket(&b).key("k").send().await,
        403,
        Some("InvalidAccessKeyId"),
    )?;
    // anonymous request
    let r = raw::get(&s.addr(), &format!("/{b}/k")).await?;
    ensure!(
        r.status == 403 && r.code().as_deref() == Some("AccessDenied"),
        "anonymous GET: {}",
        r.describe()
    );
    same_bytes(
        "object after refused requests",
        &get_bytes(&good, &b, "k").await?,
        b"v",
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_host_style_requests() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "vhost").await?;
    put_bytes(&c, &b, "dir/k", b"path-style").await?;
    // the server's default domain is localhost: bucket.localhost:PORT
    let vh = s.raw().with_host(format!("{b}.localhost:{}", s.port()));
    let r = vh.send("GET", "/dir/k", &[], b"").await?;
    ensure!(r.status == 200, "virtual-host GET: {}", r.describe());
    same_bytes("virtual-host GET", &r.body, b"path-style")?;
    let r = vh.send("PUT", "/vh/new", &[], b"virtual").await?;
    ensure!(r.status == 200, "virtual-host PUT: {}", r.describe());
    same_bytes(
        "path-style GET of a virtual-host PUT",
        &get_bytes(&c, &b, "vh/new").await?,
        b"virtual",
    )?;
    let r = vh.send("GET", "/?list-type=2", &[], b"").await?;
    ensure!(r.status == 200, "virtual-host list: {}", r.describe());
    let keys = raw::xml_tags(&r.text(), "Key");
    ensure!(
        keys == ["dir/k", "vh/new"],
        "virtual-host list keys {keys:?}"
    );
    Ok(())
}

/// CreateBucket with a LocationConstraint.
async fn create_in(c: &Client, b: &str, loc: &str) -> Result<(), String> {
    let cfg = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(loc))
        .build();
    c.create_bucket()
        .bucket(b)
        .create_bucket_configuration(cfg)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| err_code(&e))
}

/// AWS's legacy LocationConstraint names are taken: `US` (s3cmd's default
/// `bucket_location`) for us-east-1 and `EU` for eu-west-1; another region
/// than the server's is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_location_constraints_us_and_eu() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("loc-us");
    create_in(&c, &b, "US")
        .await
        .map_err(|e| anyhow::anyhow!("LocationConstraint US on us-east-1: {e}"))?;
    c.head_bucket().bucket(&b).send().await?;
    let e = create_in(&c, &bucket_name("loc-eu"), "EU").await;
    ensure!(
        e.as_ref().err().map(String::as_str) == Some("InvalidLocationConstraint"),
        "LocationConstraint EU on us-east-1: {e:?}"
    );

    let eu = Server::start(cairn_tests::StartOpts {
        extra_args: vec!["--region".into(), "eu-west-1".into()],
        ..cairn_tests::StartOpts::default()
    })
    .await?;
    let c = Client::from_conf(
        eu.s3_config()
            .region(aws_sdk_s3::config::Region::new("eu-west-1"))
            .build(),
    );
    let b = bucket_name("loc-eu");
    create_in(&c, &b, "EU")
        .await
        .map_err(|e| anyhow::anyhow!("LocationConstraint EU on eu-west-1: {e}"))?;
    let loc = c.get_bucket_location().bucket(&b).send().await?;
    ensure!(
        loc.location_constraint().map(|l| l.as_str()) == Some("eu-west-1"),
        "GetBucketLocation: {loc:?}"
    );
    let e = create_in(&c, &bucket_name("loc-us"), "US").await;
    ensure!(
        e.as_ref().err().map(String::as_str) == Some("InvalidLocationConstraint"),
        "LocationConstraint US on eu-west-1: {e:?}"
    );
    Ok(())
}
