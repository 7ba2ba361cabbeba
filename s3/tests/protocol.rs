//! Smaller protocol answers, as AWS gives them (crate::precheck and the
//! operations): DeleteObjects' digest and body size, empty Content-MD5,
//! unknown checksum algorithms, aws-chunked trailers under another name,
//! UploadPartCopy ranges past the end, malformed Range headers, and the
//! message of an invalid bucket name.

mod common;

use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Server, aws_chunked, failure, raw, raw_presigned, sign, signed};
use s3s::crypto::Checksum as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const MIB: usize = 1024 * 1024;
const UNSIGNED: &str = "UNSIGNED-PAYLOAD";

fn md5_b64(b: &[u8]) -> String {
    B64.encode(s3s::crypto::Md5::checksum(b))
}

async fn put(srv: &Server, bucket: &str, key: &str, body: &[u8]) -> Result<()> {
    srv.client()
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await?;
    Ok(())
}

async fn exists(srv: &Server, bucket: &str, key: &str) -> bool {
    srv.client()
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .is_ok()
}

fn assert_error(r: &common::RawResponse, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert!(
        r.text().contains(&format!("<Code>{code}</Code>")),
        "{what}: {}",
        r.text()
    );
}

#[tokio::test]
async fn delete_objects_requires_and_checks_a_digest() -> Result<()> {
    let srv = Server::start().await?;
    srv.client().create_bucket().bucket("del").send().await?;
    put(&srv, "del", "keep", b"keep").await?;
    let body = b"<Delete><Object><Key>keep</Key></Object></Delete>";
    let crc = B64.encode(crc32fast::hash(body).to_be_bytes());
    let wrong_crc = B64.encode(crc32fast::hash(b"other").to_be_bytes());
    let other_md5 = md5_b64(b"other");
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);
    let refused: [Case<'_>; 4] = [
        (&[], 400, "InvalidRequest"),
        (&[("content-md5", &other_md5)], 400, "BadDigest"),
        (&[("content-md5", "bm90IGFuIG1kNQ==")], 400, "InvalidDigest"),
        (&[("x-amz-checksum-crc32", &wrong_crc)], 400, "BadDigest"),
    ];
    for (headers, status, code) in refused {
        let r = signed(srv.addr, "POST", "/del?delete", headers, UNSIGNED, body).await?;
        assert_error(&r, status, code, &format!("DeleteObjects with {headers:?}"));
        assert!(exists(&srv, "del", "keep").await, "deleted by {headers:?}");
    }
    let r = signed(srv.addr, "POST", "/del?delete", &[], UNSIGNED, body).await?;
    assert!(
        r.text()
            .contains("Missing required header for this request: Content-MD5"),
        "{}",
        r.text()
    );
    // With a right Content-MD5, or a right checksum in its place.
    let md5 = md5_b64(body);
    for headers in [
        [("content-md5", md5.as_str())],
        [("x-amz-checksum-crc32", &crc)],
    ] {
        put(&srv, "del", "keep", b"keep").await?;
        let r = signed(srv.addr, "POST", "/del?delete", &headers, UNSIGNED, body).await?;
        assert_eq!(r.status, 200, "{headers:?}: {}", r.text());
        assert!(r.text().contains("<Deleted>"), "{}", r.text());
        assert!(
            !exists(&srv, "del", "keep").await,
            "not deleted: {headers:?}"
        );
    }
    // The SDK sends its checksum header.
    put(&srv, "del", "keep", b"keep").await?;
    let ids = aws_sdk_s3::types::ObjectIdentifier::builder()
        .key("keep")
        .build()?;
    let del = aws_sdk_s3::types::Delete::builder().objects(ids).build()?;
    srv.client()
        .delete_objects()
        .bucket("del")
        .delete(del)
        .send()
        .await?;
    assert!(!exists(&srv, "del", "keep").await);
    srv.stop().await
}

/// Sends a DeleteObjects whose body is `len` bytes of zeros, with a
/// `Content-Length` or chunked, and returns the status and body.
async fn big_delete(srv: &Server, len: usize, chunked: bool) -> Result<(u16, String)> {
    let md5 = md5_b64(b"whatever");
    let mut headers = vec![("content-md5", md5.as_str())];
    let declared = len.to_string();
    if chunked {
        headers.push(("transfer-encoding", "chunked"));
    } else {
        headers.push(("content-length", declared.as_str()));
    }
    let all = sign(srv.addr, "POST", "/del?delete", &headers, UNSIGNED)?;
    let mut head = String::from("POST /del?delete HTTP/1.1\r\nconnection: close\r\n");
    for (k, v) in &all {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let stream = tokio::net::TcpStream::connect(srv.addr).await?;
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(head.as_bytes()).await?;
    // The body goes on in the background (the server may answer first);
    // write errors after the answer do not matter. The write half stays
    // open (a client's half-close would end the connection: hyper).
    let writer = tokio::spawn(async move {
        let block = vec![0u8; MIB];
        let mut left = len;
        while left > 0 {
            let n = left.min(MIB);
            let ok = if chunked {
                let mut c = format!("{n:x}\r\n").into_bytes();
                c.extend_from_slice(&block[..n]);
                c.extend_from_slice(b"\r\n");
                wr.write_all(&c).await
            } else {
                wr.write_all(&block[..n]).await
            };
            if ok.is_err() {
                return wr;
            }
            left -= n;
        }
        if chunked {
            let _ = wr.write_all(b"0\r\n\r\n").await;
        }
        wr
    });
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), rd.read_to_end(&mut buf))
        .await
        .context("no answer in 60 s")??;
    drop(writer.await);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .context("no status line")?
        .parse()?;
    Ok((status, text))
}

#[tokio::test]
async fn delete_objects_body_is_capped() -> Result<()> {
    let srv = Server::start().await?;
    srv.client().create_bucket().bucket("del").send().await?;
    for (len, chunked) in [(200 * MIB, false), (24 * MIB, true)] {
        let (status, text) = big_delete(&srv, len, chunked).await?;
        assert_eq!(status, 400, "{len} bytes, chunked {chunked}: {text}");
        assert!(
            text.contains("<Code>MaxMessageLengthExceeded</Code>"),
            "{text}"
        );
    }
    srv.stop().await
}

#[tokio::test]
async fn empty_content_md5_and_unknown_checksum_algorithm_are_refused() -> Result<()> {
    let srv = Server::start().await?;
    srv.client().create_bucket().bucket("hdr").send().await?;
    let r = signed(
        srv.addr,
        "PUT",
        "/hdr/k",
        &[("content-md5", "")],
        UNSIGNED,
        b"data",
    )
    .await?;
    assert_error(&r, 400, "InvalidDigest", "an empty Content-MD5");
    for name in ["x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"] {
        let r = signed(
            srv.addr,
            "PUT",
            "/hdr/k",
            &[(name, "BOGUS")],
            UNSIGNED,
            b"data",
        )
        .await?;
        assert_error(&r, 400, "InvalidRequest", &format!("{name}: BOGUS"));
        assert!(r.text().contains(name), "{}", r.text());
    }
    assert!(!exists(&srv, "hdr", "k").await, "a refused PUT stored");
    // A known algorithm in either case still works.
    let r = signed(
        srv.addr,
        "PUT",
        "/hdr/k",
        &[("x-amz-sdk-checksum-algorithm", "crc32")],
        UNSIGNED,
        b"data",
    )
    .await?;
    assert_eq!(r.status, 200, "{}", r.text());
    srv.stop().await
}

#[tokio::test]
async fn a_trailer_under_another_name_is_refused() -> Result<()> {
    let srv = Server::start().await?;
    srv.client().create_bucket().bucket("trail").send().await?;
    let data = b"trailing checksum body ".repeat(300);
    let len = data.len().to_string();
    let sha = B64.encode(s3s::crypto::Sha256::checksum(&data));
    let other_name = aws_chunked(&data, 4096, ("x-amz-checksum-sha256", &sha));
    let mut no_trailer = Vec::new();
    for c in data.chunks(4096) {
        no_trailer.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        no_trailer.extend_from_slice(c);
        no_trailer.extend_from_slice(b"\r\n");
    }
    no_trailer.extend_from_slice(b"0\r\n\r\n");
    for (what, body) in [("another name", &other_name), ("no trailer", &no_trailer)] {
        let r = signed(
            srv.addr,
            "PUT",
            "/trail/k",
            &[
                ("content-encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", &len),
                ("x-amz-trailer", "x-amz-checksum-crc32"),
            ],
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            body,
        )
        .await?;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert!(
            r.text().contains("x-amz-checksum-crc32 trailer"),
            "{what}: {}",
            r.text()
        );
        assert!(!exists(&srv, "trail", "k").await, "stored with {what}");
    }
    srv.stop().await
}

#[tokio::test]
async fn upload_part_copy_range_past_the_end_is_refused() -> Result<()> {
    let srv = Server::start().await?;
    let c = srv.client();
    c.create_bucket().bucket("upc").send().await?;
    put(&srv, "upc", "src", b"0123456789").await?;
    let id = c
        .create_multipart_upload()
        .bucket("upc")
        .key("dst")
        .send()
        .await?
        .upload_id()
        .context("upload id")?
        .to_owned();
    let copy = |range: &'static str| {
        c.upload_part_copy()
            .bucket("upc")
            .key("dst")
            .upload_id(&id)
            .part_number(1)
            .copy_source("upc/src")
            .copy_source_range(range)
            .send()
    };
    for range in ["bytes=0-10", "bytes=5-100", "bytes=10-12"] {
        let f = failure(copy(range).await);
        assert_eq!(
            (f.status, f.code.as_str()),
            (400, "InvalidArgument"),
            "{range}: {f:?}"
        );
        assert!(f.message.contains("size: 10"), "{range}: {f:?}");
    }
    copy("bytes=0-9").await?;
    let parts = c
        .list_parts()
        .bucket("upc")
        .key("dst")
        .upload_id(&id)
        .send()
        .await?;
    assert_eq!(parts.parts().len(), 1);
    assert_eq!(parts.parts()[0].size(), Some(10));
    srv.stop().await
}

#[tokio::test]
async fn a_malformed_range_is_ignored() -> Result<()> {
    let srv = Server::start().await?;
    let c = srv.client();
    c.create_bucket().bucket("rng").send().await?;
    put(&srv, "rng", "k", b"0123456789").await?;
    // A presigned URL (a browser, curl) adds the Range header unsigned.
    let url = c
        .get_object()
        .bucket("rng")
        .key("k")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300))?)
        .await?
        .uri()
        .to_owned();
    for range in [
        "bytes=abc",
        "bytes=5-2",
        "bytes=0-1,4-5",
        "items=0-1",
        "bytes=-",
    ] {
        let r = raw_presigned(srv.addr, "GET", &url, &[("range", range)], b"").await?;
        assert_eq!(r.status, 200, "{range}: {}", r.text());
        assert_eq!(r.body, b"0123456789", "{range}");
    }
    let r = raw_presigned(srv.addr, "GET", &url, &[("range", "bytes=2-4")], b"").await?;
    assert_eq!((r.status, r.body.as_slice()), (206, &b"234"[..]));
    // Well-formed but past the end: 416, signed or not.
    let r = raw_presigned(srv.addr, "GET", &url, &[("range", "bytes=10-")], b"").await?;
    assert_error(&r, 416, "InvalidRange", "bytes=10- presigned");
    let f = failure(
        c.get_object()
            .bucket("rng")
            .key("k")
            .range("bytes=10-")
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (416, "InvalidRange"));
    srv.stop().await
}

#[tokio::test]
async fn an_invalid_bucket_name_says_why() -> Result<()> {
    let srv = Server::start().await?;
    for (name, rule) in [
        ("Bad_Bucket", "lowercase letters"),
        ("ab", "between 3 and 63"),
        ("a..b", "adjacent periods"),
        ("-abc", "begin and end"),
    ] {
        for (method, target) in [("PUT", format!("/{name}")), ("GET", format!("/{name}/key"))] {
            let r = signed(srv.addr, method, &target, &[], UNSIGNED, b"").await?;
            assert_error(&r, 400, "InvalidBucketName", &format!("{method} {target}"));
            assert!(
                r.text().contains("The specified bucket is not valid") && r.text().contains(rule),
                "{method} {target}: {}",
                r.text()
            );
        }
    }
    // Unsigned as well (the name is checked before anything else).
    let r = raw(
        srv.addr,
        "GET",
        &srv.addr.to_string(),
        "/Bad_Bucket",
        &[],
        b"",
    )
    .await?;
    assert_error(&r, 400, "InvalidBucketName", "unsigned GET /Bad_Bucket");
    srv.stop().await
}
