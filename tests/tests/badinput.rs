//! Bad input gets its specific S3 error code and changes nothing.
//!
//! Requests go raw (signed with aws-sigv4, no path normalisation) so that
//! `..`, empty segments and NUL reach the server exactly as written.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cairn_tests::data::{MIB, list_tree, random_bytes, same_bytes};
use cairn_tests::raw::{self, encode_path, encode_query, xml_tag};
use cairn_tests::{Server, bucket_name, expect_err, get_bytes};
use md5::{Digest, Md5};

async fn setup(s: &Server) -> Result<(Client, String)> {
    let c = s.s3();
    let b = bucket_name("bad");
    c.create_bucket().bucket(&b).send().await?;
    for (k, v) in [("a/b", "ab"), ("b", "b"), ("keep", "keep")] {
        c.put_object()
            .bucket(&b)
            .key(k)
            .body(ByteStream::from(v.as_bytes().to_vec()))
            .send()
            .await?;
    }
    Ok((c, b))
}

async fn keys(c: &Client, b: &str) -> Result<Vec<(String, i64)>> {
    let r = c.list_objects_v2().bucket(b).send().await?;
    Ok(r.contents()
        .iter()
        .map(|o| {
            (
                o.key().unwrap_or_default().to_string(),
                o.size().unwrap_or(-1),
            )
        })
        .collect())
}

/// Every file on every drive except the server's own `.cairn.sys`.
fn drive_files(drives: &[std::path::PathBuf]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for d in drives {
        for p in list_tree(d)? {
            if !p.starts_with(".cairn.sys") {
                out.push(format!("{}/{}", d.display(), p.display()));
            }
        }
    }
    // and anything next to the drives (an escape from a drive lands there)
    let parent = drives[0].parent().unwrap_or(Path::new("/"));
    for e in std::fs::read_dir(parent)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !drives
            .iter()
            .any(|d| d.file_name() == Some(e.file_name().as_os_str()))
        {
            out.push(format!("beside drives: {name}"));
        }
    }
    out.sort();
    Ok(out)
}

fn expect_raw(what: &str, r: &raw::Response, status: u16, code: &str) -> Result<()> {
    if r.status != status || r.code().as_deref() != Some(code) {
        bail!(
            "{what}: got {}, expected HTTP {status} {code}",
            r.describe()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_object_names_are_refused() -> Result<()> {
    let s = Server::start_default().await?;
    let (c, b) = setup(&s).await?;
    let before_keys = keys(&c, &b).await?;
    let before_files = drive_files(s.drives())?;
    let rc = s.raw();
    let bad = [
        "a/../b",
        "../escape",
        "../../../../../../tmp/cairn-escape",
        "a/..",
        "..",
        "a//b",
        "//lead",
        "x/y//",
        "nul\0byte",
        "a/\0",
    ];
    for key in bad {
        let target = format!("/{b}/{}", encode_path(key));
        for (method, body) in [("PUT", &b"evil"[..]), ("GET", &b""[..])] {
            let r = rc.send(method, &target, &[], body).await?;
            expect_raw(
                &format!("{method} of key {key:?} (request target {target})"),
                &r,
                400,
                "InvalidObjectName",
            )?;
        }
    }
    // multipart and copy with a bad name too
    let r = rc
        .send(
            "POST",
            &format!("/{b}/{}?uploads", encode_path("a/../b")),
            &[],
            b"",
        )
        .await?;
    expect_raw(
        "CreateMultipartUpload of a/../b",
        &r,
        400,
        "InvalidObjectName",
    )?;
    let r = rc
        .send(
            "PUT",
            &format!("/{b}/{}", encode_path("q/../../b")),
            &[("x-amz-copy-source", &format!("/{b}/keep"))],
            b"",
        )
        .await?;
    expect_raw("CopyObject to q/../../b", &r, 400, "InvalidObjectName")?;

    // The SDK sends `..` as is (S3 paths are not normalised): same answer.
    expect_err(
        "aws-sdk-s3 PUT of key a/../b",
        c.put_object()
            .bucket(&b)
            .key("a/../b")
            .body(ByteStream::from_static(b"evil"))
            .send()
            .await,
        400,
        Some("InvalidObjectName"),
    )?;
    expect_err(
        "aws-sdk-s3 PUT of key a//b",
        c.put_object()
            .bucket(&b)
            .key("a//b")
            .body(ByteStream::from_static(b"evil"))
            .send()
            .await,
        400,
        Some("InvalidObjectName"),
    )?;

    ensure!(keys(&c, &b).await? == before_keys, "listing changed");
    let after_files = drive_files(s.drives())?;
    ensure!(
        after_files == before_files,
        "files on the drives changed:\nbefore {before_files:#?}\nafter {after_files:#?}"
    );
    same_bytes("b", &get_bytes(&c, &b, "b").await?, b"b")?;
    same_bytes("a/b", &get_bytes(&c, &b, "a/b").await?, b"ab")?;
    // names that look odd but are fine
    for k in ["a/.../b", "a/..b", "..a", "a/.b", "a..", "x/y."] {
        c.put_object()
            .bucket(&b)
            .key(k)
            .body(ByteStream::from(k.as_bytes().to_vec()))
            .send()
            .await
            .with_context(|| format!("valid key {k:?} refused"))?;
        same_bytes(k, &get_bytes(&c, &b, k).await?, k.as_bytes())?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bucket_names_are_refused() -> Result<()> {
    let s = Server::start_default().await?;
    let (c, _b) = setup(&s).await?;
    let before = drive_files(s.drives())?;
    let rc = s.raw();
    let long = "a".repeat(64);
    for name in [
        "Ab",
        "a_b",
        "192.168.1.1",
        "ab",
        long.as_str(),
        "-abc",
        "abc-",
        "a..b",
        "ab.-c",
        "UPPER-case",
    ] {
        let r = rc
            .send("PUT", &format!("/{}", encode_path(name)), &[], b"")
            .await?;
        expect_raw(
            &format!("CreateBucket {name:?}"),
            &r,
            400,
            "InvalidBucketName",
        )?;
    }
    let names: Vec<String> = c
        .list_buckets()
        .send()
        .await?
        .buckets()
        .iter()
        .filter_map(|x| x.name().map(String::from))
        .collect();
    ensure!(names.len() == 1, "buckets after refused creates: {names:?}");
    ensure!(drive_files(s.drives())? == before, "drive contents changed");
    // limits that are valid
    for name in ["abc", "a".repeat(63).as_str(), "a.b-c.d", "0-9"] {
        c.create_bucket()
            .bucket(name)
            .send()
            .await
            .with_context(|| format!("valid bucket name {name:?} refused"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_xml_is_refused() -> Result<()> {
    let s = Server::start_default().await?;
    let (c, b) = setup(&s).await?;
    let rc = s.raw();
    let id = c
        .create_multipart_upload()
        .bucket(&b)
        .key("mp")
        .send()
        .await?
        .upload_id()
        .context("UploadId")?
        .to_string();
    let part = random_bytes(MIB, 1);
    let e1 = c
        .upload_part()
        .bucket(&b)
        .key("mp")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(part.clone()))
        .send()
        .await?
        .e_tag()
        .unwrap_or_default()
        .to_string();
    let target = format!("/{b}/mp?uploadId={}", encode_query(&id));
    for body in [
        &b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"[..],
        b"this is not xml",
        b"<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
        b"",
    ] {
        let r = rc.send("POST", &target, &[], body).await?;
        expect_raw(
            &format!("CompleteMultipartUpload with body {:?}", String::from_utf8_lossy(body)),
            &r,
            400,
            "MalformedXML",
        )?;
    }
    // the upload is untouched and no object appeared
    let lp = c
        .list_parts()
        .bucket(&b)
        .key("mp")
        .upload_id(&id)
        .send()
        .await?;
    ensure!(
        lp.parts().len() == 1,
        "parts after bad completes: {:?}",
        lp.parts()
    );
    expect_err(
        "GET mp after refused completes",
        c.get_object().bucket(&b).key("mp").send().await,
        404,
        Some("NoSuchKey"),
    )?;

    for body in [
        &b"<Delete><Object><Key>keep</Key></Object>"[..],
        b"garbage",
        b"<Delete><Object><Key>keep</Key></Object></Delete><trailing>",
    ] {
        let md5 = B64.encode(Md5::digest(body));
        let r = rc
            .send(
                "POST",
                &format!("/{b}?delete"),
                &[("content-md5", &md5)],
                body,
            )
            .await?;
        expect_raw(
            &format!(
                "DeleteObjects with body {:?}",
                String::from_utf8_lossy(body)
            ),
            &r,
            400,
            "MalformedXML",
        )?;
    }
    same_bytes(
        "keep after bad DeleteObjects",
        &get_bytes(&c, &b, "keep").await?,
        b"keep",
    )?;

    // a well-formed complete still works afterwards
    let xml = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{e1}</ETag></Part></CompleteMultipartUpload>"
    );
    let r = rc.send("POST", &target, &[], xml.as_bytes()).await?;
    ensure!(
        r.status == 200 && xml_tag(&r.text(), "ETag").is_some(),
        "good complete: {}",
        r.describe()
    );
    same_bytes("mp", &get_bytes(&c, &b, "mp").await?, &part)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_md5_is_bad_digest() -> Result<()> {
    let s = Server::start_default().await?;
    let (c, b) = setup(&s).await?;
    let rc = s.raw();
    let body = random_bytes(200 * 1024, 9);
    let wrong = B64.encode(Md5::digest(b"not the body"));
    for key in ["keep", "new-key"] {
        let r = rc
            .send(
                "PUT",
                &format!("/{b}/{key}"),
                &[("content-md5", &wrong)],
                &body,
            )
            .await?;
        expect_raw(
            &format!("PUT {key} with a wrong Content-MD5"),
            &r,
            400,
            "BadDigest",
        )?;
    }
    let r = rc
        .send(
            "PUT",
            &format!("/{b}/keep"),
            &[("content-md5", "not base64!")],
            &body,
        )
        .await?;
    expect_raw(
        "PUT with an undecodable Content-MD5",
        &r,
        400,
        "InvalidDigest",
    )?;
    // upload part with a wrong Content-MD5
    let id = c
        .create_multipart_upload()
        .bucket(&b)
        .key("keep")
        .send()
        .await?
        .upload_id()
        .context("UploadId")?
        .to_string();
    let r = rc
        .send(
            "PUT",
            &format!("/{b}/keep?partNumber=1&uploadId={}", encode_query(&id)),
            &[("content-md5", &wrong)],
            &body,
        )
        .await?;
    expect_raw("UploadPart with a wrong Content-MD5", &r, 400, "BadDigest")?;
    let lp = c
        .list_parts()
        .bucket(&b)
        .key("keep")
        .upload_id(&id)
        .send()
        .await?;
    ensure!(
        lp.parts().is_empty(),
        "a refused part was stored: {:?}",
        lp.parts()
    );
    same_bytes("keep", &get_bytes(&c, &b, "keep").await?, b"keep")?;
    expect_err(
        "GET new-key",
        c.get_object().bucket(&b).key("new-key").send().await,
        404,
        Some("NoSuchKey"),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_middle_part_changes_nothing() -> Result<()> {
    let s = Server::start_default().await?;
    let (c, b) = setup(&s).await?;
    let id = c
        .create_multipart_upload()
        .bucket(&b)
        .key("keep")
        .send()
        .await?
        .upload_id()
        .context("UploadId")?
        .to_string();
    let mut etags = Vec::new();
    for (n, len) in [(1, 5 * MIB), (2, 4 * MIB), (3, 10)] {
        let e = c
            .upload_part()
            .bucket(&b)
            .key("keep")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(random_bytes(len, n as u64)))
            .send()
            .await?
            .e_tag()
            .unwrap_or_default()
            .to_string();
        etags.push(e);
    }
    let xml: String = etags
        .iter()
        .enumerate()
        .map(|(i, e)| {
            format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{e}</ETag></Part>",
                i + 1
            )
        })
        .collect();
    let xml = format!("<CompleteMultipartUpload>{xml}</CompleteMultipartUpload>");
    let r = s
        .raw()
        .send(
            "POST",
            &format!("/{b}/keep?uploadId={}", encode_query(&id)),
            &[],
            xml.as_bytes(),
        )
        .await?;
    expect_raw(
        "complete with a 4 MiB part 2 of 3",
        &r,
        400,
        "EntityTooSmall",
    )?;
    same_bytes("keep", &get_bytes(&c, &b, "keep").await?, b"keep")?;
    let lp = c
        .list_parts()
        .bucket(&b)
        .key("keep")
        .upload_id(&id)
        .send()
        .await?;
    ensure!(
        lp.parts().len() == 3,
        "parts after refused complete: {:?}",
        lp.parts()
    );
    Ok(())
}
