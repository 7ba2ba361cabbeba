//! The S3 front as a client sees it: real `aws-sdk-s3` calls (and raw
//! HTTP/1.1 for presigned URLs and health probes) against `serve` over a
//! `MemLayer`.

mod common;

use std::time::Duration;

use anyhow::Result;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketLocationConstraint, ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload,
    CompletedPart, CreateBucketConfiguration, Delete, EncodingType, MetadataDirective,
    ObjectIdentifier, StorageClass,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{ACCESS_KEY, Server, aws_chunked, client, failure, raw, raw_presigned, signed};

const MIB: usize = 1024 * 1024;

async fn body_of(out: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Result<Vec<u8>> {
    Ok(out.body.collect().await?.into_bytes().to_vec())
}

fn presign() -> Result<PresigningConfig> {
    Ok(PresigningConfig::expires_in(Duration::from_secs(300))?)
}

#[tokio::test]
async fn buckets() -> Result<()> {
    let srv = Server::start().await?;
    let s3 = srv.client();

    s3.create_bucket().bucket("alpha").send().await?;
    s3.create_bucket()
        .bucket("beta")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from("us-east-1"))
                .build(),
        )
        .send()
        .await?;
    let list = s3.list_buckets().send().await?;
    let names: Vec<&str> = list.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert!(list.buckets()[0].creation_date().is_some());
    assert!(list.owner().is_some());

    let head = s3.head_bucket().bucket("alpha").send().await?;
    assert_eq!(head.bucket_region(), Some("us-east-1"));
    let loc = s3.get_bucket_location().bucket("alpha").send().await?;
    assert!(
        loc.location_constraint()
            .is_none_or(|c| c.as_str().is_empty()),
        "{loc:?}"
    );

    // its owner creating it again in us-east-1: 200, AWS's legacy answer
    // there (BucketAlreadyOwnedByYou elsewhere: tests/tests/exact.rs)
    s3.create_bucket().bucket("alpha").send().await?;

    // A name s3s lets through but Cairn's naming rules refuse.
    let f = failure(s3.create_bucket().bucket("cairn-s3alias").send().await);
    assert_eq!((f.status, f.code.as_str()), (400, "InvalidBucketName"));
    assert!(f.message.contains("reserved"), "{f:?}");
    let f = failure(s3.create_bucket().bucket("Upper_Case").send().await);
    assert_eq!((f.status, f.code.as_str()), (400, "InvalidBucketName"));

    let f = failure(
        s3.create_bucket()
            .bucket("gamma")
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await,
    );
    assert_eq!(
        (f.status, f.code.as_str()),
        (400, "InvalidLocationConstraint")
    );

    let f = failure(s3.head_bucket().bucket("missing").send().await);
    assert_eq!(f.status, 404);
    let f = failure(s3.list_objects_v2().bucket("missing").send().await);
    assert_eq!((f.status, f.code.as_str()), (404, "NoSuchBucket"));

    s3.put_object()
        .bucket("alpha")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await?;
    let f = failure(s3.delete_bucket().bucket("alpha").send().await);
    assert_eq!((f.status, f.code.as_str()), (409, "BucketNotEmpty"));
    s3.delete_object().bucket("alpha").key("k").send().await?;
    s3.delete_bucket().bucket("alpha").send().await?;
    let f = failure(s3.delete_bucket().bucket("alpha").send().await);
    assert_eq!((f.status, f.code.as_str()), (404, "NoSuchBucket"));

    // Paged ListBuckets.
    let page = s3.list_buckets().max_buckets(1).send().await?;
    assert_eq!(page.buckets().len(), 1);
    assert!(page.continuation_token().is_none());
    srv.stop().await
}

#[tokio::test]
async fn put_get_head_with_metadata() -> Result<()> {
    let srv = Server::start().await?;
    let s3 = srv.client();
    s3.create_bucket().bucket("data").send().await?;

    let body = b"hello, cairn".to_vec();
    let expires = DateTime::from_secs(2_000_000_000);
    let put = s3
        .put_object()
        .bucket("data")
        .key("dir/hello.txt")
        .body(ByteStream::from(body.clone()))
        .content_type("text/plain")
        .cache_control("max-age=60")
        .content_disposition("attachment; filename=\"hello.txt\"")
        .content_language("en")
        .expires(expires)
        .metadata("Color", "blue")
        .metadata("owner", "ops")
        .send()
        .await?;
    let md5 = format!("\"{}\"", hex_md5(&body));
    assert_eq!(put.e_tag(), Some(md5.as_str()));

    let got = s3
        .get_object()
        .bucket("data")
        .key("dir/hello.txt")
        .send()
        .await?;
    assert_eq!(got.e_tag(), Some(md5.as_str()));
    assert_eq!(got.content_length(), Some(body.len() as i64));
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(got.cache_control(), Some("max-age=60"));
    assert_eq!(
        got.content_disposition(),
        Some("attachment; filename=\"hello.txt\"")
    );
    assert_eq!(got.content_language(), Some("en"));
    assert_eq!(got.expires_string(), Some("Wed, 18 May 2033 03:33:20 GMT"));
    assert!(got.last_modified().is_some());
    assert_eq!(got.accept_ranges(), Some("bytes"));
    let meta = got.metadata().cloned().unwrap_or_default();
    assert_eq!(meta.get("color").map(String::as_str), Some("blue"));
    assert_eq!(meta.get("owner").map(String::as_str), Some("ops"));
    assert!(got.storage_class().is_none(), "STANDARD is not sent");
    assert_eq!(body_of(got).await?, body);

    let head = s3
        .head_object()
        .bucket("data")
        .key("dir/hello.txt")
        .send()
        .await?;
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(head.e_tag(), Some(md5.as_str()));
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str),
        Some("blue")
    );

    // No Content-Type given (the SDK always sends one, so raw): S3's default.
    let url = s3
        .put_object()
        .bucket("data")
        .key("untyped")
        .presigned(presign()?)
        .await?;
    let resp = raw_presigned(srv.addr, "PUT", url.uri(), &[], b"?").await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let head = s3
        .head_object()
        .bucket("data")
        .key("untyped")
        .send()
        .await?;
    assert_eq!(head.content_type(), Some("binary/octet-stream"));

    // Storage classes.
    s3.put_object()
        .bucket("data")
        .key("rr")
        .storage_class(StorageClass::ReducedRedundancy)
        .body(ByteStream::from_static(b"rr"))
        .send()
        .await?;
    let head = s3.head_object().bucket("data").key("rr").send().await?;
    assert_eq!(head.storage_class(), Some(&StorageClass::ReducedRedundancy));
    let f = failure(
        s3.put_object()
            .bucket("data")
            .key("glacier")
            .storage_class(StorageClass::Glacier)
            .body(ByteStream::from_static(b"g"))
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (400, "InvalidStorageClass"));

    // Missing objects and bad keys.
    let f = failure(s3.get_object().bucket("data").key("nope").send().await);
    assert_eq!((f.status, f.code.as_str()), (404, "NoSuchKey"));
    let f = failure(s3.head_object().bucket("data").key("nope").send().await);
    assert_eq!(f.status, 404);
    let f = failure(s3.get_object().bucket("nobucket").key("k").send().await);
    assert_eq!((f.status, f.code.as_str()), (404, "NoSuchBucket"));
    let f = failure(
        s3.put_object()
            .bucket("data")
            .key("a//b")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (400, "InvalidObjectName"));
    assert!(f.message.contains("empty segments"), "{f:?}");
    let f = failure(
        s3.put_object()
            .bucket("data")
            .key("k".repeat(1025))
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (400, "KeyTooLongError"));

    // Refused, not ignored.
    let f = failure(
        s3.put_object()
            .bucket("data")
            .key("tagged")
            .tagging("a=b")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (501, "NotImplemented"));
    assert!(f.message.contains("object tags"), "{f:?}");
    // a layer without versions is unversioned, and says it cannot change
    let v = s3.get_bucket_versioning().bucket("data").send().await?;
    assert!(v.status().is_none());
    let f = failure(
        s3.put_bucket_versioning()
            .bucket("data")
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (501, "NotImplemented"));

    s3.delete_object()
        .bucket("data")
        .key("dir/hello.txt")
        .send()
        .await?;
    let f = failure(
        s3.get_object()
            .bucket("data")
            .key("dir/hello.txt")
            .send()
            .await,
    );
    assert_eq!(f.code, "NoSuchKey");
    // Deleting what is not there succeeds.
    s3.delete_object()
        .bucket("data")
        .key("dir/hello.txt")
        .send()
        .await?;
    srv.stop().await
}

/// Hex MD5, through the layer's own digest (no extra dev-dependency).
fn hex_md5(b: &[u8]) -> String {
    let mut d = cairn_api::checksum::BodyDigest::new(None);
    d.update(b);
    d.verify(None, None).map(|o| o.etag()).unwrap_or_default()
}

#[tokio::test]
async fn ranges_and_conditions() -> Result<()> {
    let srv = Server::start().await?;
    let s3 = srv.client();
    s3.create_bucket().bucket("rng").send().await?;
    let data: Vec<u8> = (0..100u8).collect();
    let put = s3
        .put_object()
        .bucket("rng")
        .key("obj")
        .body(ByteStream::from(data.clone()))
        .send()
        .await?;
    let etag = put.e_tag().unwrap_or_default().to_owned();

    let got = s3
        .get_object()
        .bucket("rng")
        .key("obj")
        .range("bytes=10-19")
        .send()
        .await?;
    assert_eq!(got.content_range(), Some("bytes 10-19/100"));
    assert_eq!(got.content_length(), Some(10));
    assert_eq!(body_of(got).await?, &data[10..20]);

    let got = s3
        .get_object()
        .bucket("rng")
        .key("obj")
        .range("bytes=-5")
        .send()
        .await?;
    assert_eq!(got.content_range(), Some("bytes 95-99/100"));
    assert_eq!(body_of(got).await?, &data[95..]);

    let got = s3
        .get_object()
        .bucket("rng")
        .key("obj")
        .range("bytes=90-")
        .send()
        .await?;
    assert_eq!(body_of(got).await?, &data[90..]);

    let f = failure(
        s3.get_object()
            .bucket("rng")
            .key("obj")
            .range("bytes=100-200")
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (416, "InvalidRange"));

    // The status line of a range, seen raw.
    let url = s3
        .get_object()
        .bucket("rng")
        .key("obj")
        .range("bytes=0-0")
        .presigned(presign()?)
        .await?;
    let resp = raw_presigned(srv.addr, "GET", url.uri(), &[("Range", "bytes=0-0")], b"").await?;
    assert_eq!(resp.status, 206);
    assert_eq!(resp.header("content-range"), Some("bytes 0-0/100"));
    assert_eq!(resp.body, [0u8]);

    // If-None-Match / If-Modified-Since -> 304; If-Match / If-Unmodified-Since -> 412.
    let f = failure(
        s3.get_object()
            .bucket("rng")
            .key("obj")
            .if_none_match(&etag)
            .send()
            .await,
    );
    assert_eq!(f.status, 304);
    let f = failure(
        s3.get_object()
            .bucket("rng")
            .key("obj")
            .if_modified_since(DateTime::from_secs(4_000_000_000))
            .send()
            .await,
    );
    assert_eq!(f.status, 304);
    let f = failure(
        s3.get_object()
            .bucket("rng")
            .key("obj")
            .if_match("\"0123456789abcdef0123456789abcdef\"")
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (412, "PreconditionFailed"));
    let f = failure(
        s3.get_object()
            .bucket("rng")
            .key("obj")
            .if_unmodified_since(DateTime::from_secs(1_000_000_000))
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (412, "PreconditionFailed"));
    let f = failure(
        s3.head_object()
            .bucket("rng")
            .key("obj")
            .if_none_match(&etag)
            .send()
            .await,
    );
    assert_eq!(f.status, 304);

    // Conditions that hold.
    let got = s3
        .get_object()
        .bucket("rng")
        .key("obj")
        .if_match(&etag)
        .if_modified_since(DateTime::from_secs(1_000_000_000))
        .send()
        .await?;
    assert_eq!(body_of(got).await?, data);

    // A raw 304 carries the ETag.
    let url = s3
        .get_object()
        .bucket("rng")
        .key("obj")
        .presigned(presign()?)
        .await?;
    let resp = raw_presigned(srv.addr, "GET", url.uri(), &[("If-None-Match", &etag)], b"").await?;
    assert_eq!(resp.status, 304);
    assert_eq!(resp.header("etag"), Some(etag.as_str()));
    assert!(resp.body.is_empty());
    srv.stop().await
}

#[tokio::test]
async fn checksums() -> Result<()> {
    let srv = Server::start().await?;
    let s3 = srv.client();
    s3.create_bucket().bucket("sums").send().await?;
    let data = b"checksummed body".repeat(1000);
    let crc = B64.encode(crc32fast::hash(&data).to_be_bytes());

    // The SDK's default: CRC32 in the trailer of an aws-chunked body.
    let put = s3
        .put_object()
        .bucket("sums")
        .key("default")
        .body(ByteStream::from(data.clone()))
        .send()
        .await?;
    assert_eq!(put.checksum_crc32(), Some(crc.as_str()));
    let got = s3
        .get_object()
        .bucket("sums")
        .key("default")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await?;
    assert_eq!(got.checksum_crc32(), Some(crc.as_str()));
    assert_eq!(body_of(got).await?, data);
    let head = s3
        .head_object()
        .bucket("sums")
        .key("default")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await?;
    assert_eq!(head.checksum_crc32(), Some(crc.as_str()));
    // Not asked for: not sent.
    let head = s3
        .head_object()
        .bucket("sums")
        .key("default")
        .send()
        .await?;
    assert_eq!(head.checksum_crc32(), None);
    // The stored standard headers do not pick up the transfer encoding.
    assert_eq!(head.content_encoding(), None);

    // Other algorithms the SDK computes itself.
    for alg in [
        ChecksumAlgorithm::Crc32C,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Crc64Nvme,
    ] {
        let key = format!("alg-{}", alg.as_str());
        let put = s3
            .put_object()
            .bucket("sums")
            .key(&key)
            .checksum_algorithm(alg.clone())
            .body(ByteStream::from(data.clone()))
            .send()
            .await?;
        let got = s3
            .get_object()
            .bucket("sums")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await?;
        let (sent, back) = match alg {
            ChecksumAlgorithm::Crc32C => (put.checksum_crc32_c(), got.checksum_crc32_c()),
            ChecksumAlgorithm::Sha1 => (put.checksum_sha1(), got.checksum_sha1()),
            ChecksumAlgorithm::Sha256 => (put.checksum_sha256(), got.checksum_sha256()),
            _ => (put.checksum_crc64_nvme(), got.checksum_crc64_nvme()),
        };
        assert!(sent.is_some(), "{alg:?}");
        assert_eq!(sent.map(str::to_owned), back.map(str::to_owned), "{alg:?}");
        assert_eq!(body_of(got).await?, data);
    }

    // A checksum header that does not match the body.
    let f = failure(
        s3.put_object()
            .bucket("sums")
            .key("bad-sha")
            .checksum_sha256(B64.encode([7u8; 32]))
            .body(ByteStream::from(data.clone()))
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (400, "BadDigest"));
    assert!(f.message.contains("sha256"), "{f:?}");
    let f = failure(s3.head_object().bucket("sums").key("bad-sha").send().await);
    assert_eq!(f.status, 404, "nothing was stored");

    // Content-MD5 that does not match, and one that is not an MD5 at all.
    let f = failure(
        s3.put_object()
            .bucket("sums")
            .key("bad-md5")
            .content_md5(B64.encode([0u8; 16]))
            .body(ByteStream::from(data.clone()))
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (400, "BadDigest"));
    let f = failure(
        s3.put_object()
            .bucket("sums")
            .key("bad-md5")
            .content_md5("not-base64-md5")
            .body(ByteStream::from(data.clone()))
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (400, "InvalidDigest"));
    // A correct one.
    let md5_b64 = {
        let hex = hex_md5(&data);
        let raw: Vec<u8> = (0..16)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
            .collect();
        B64.encode(raw)
    };
    s3.put_object()
        .bucket("sums")
        .key("good-md5")
        .content_md5(md5_b64)
        .body(ByteStream::from(data.clone()))
        .send()
        .await?;

    // Raw PUTs (presigned, plain body): wrong checksum header, short body.
    let url = s3
        .put_object()
        .bucket("sums")
        .key("raw")
        .presigned(presign()?)
        .await?;
    let resp = raw_presigned(
        srv.addr,
        "PUT",
        url.uri(),
        &[("x-amz-checksum-crc32", "AAAAAA==")],
        b"raw body",
    )
    .await?;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(
        resp.text().contains("<Code>BadDigest</Code>"),
        "{}",
        resp.text()
    );
    let resp = raw_presigned(
        srv.addr,
        "PUT",
        url.uri(),
        &[(
            "x-amz-checksum-crc32",
            &B64.encode(crc32fast::hash(b"raw body").to_be_bytes()),
        )],
        b"raw body",
    )
    .await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    srv.stop().await
}

/// Trailing checksums of aws-chunked bodies, sent by hand so the trailer
/// can be wrong.
#[tokio::test]
async fn trailing_checksums() -> Result<()> {
    let srv = Server::start().await?;
    srv.client().create_bucket().bucket("trail").send().await?;
    let data = b"trailing checksum body ".repeat(500);
    let good = B64.encode(crc32fast::hash(&data).to_be_bytes());
    let len = data.len().to_string();
    let put = |key: &'static str, trailer_value: String| {
        let body = aws_chunked(&data, 4096, ("x-amz-checksum-crc32", &trailer_value));
        let len = len.clone();
        async move {
            signed(
                srv.addr,
                "PUT",
                &format!("/trail/{key}"),
                &[
                    ("content-encoding", "aws-chunked"),
                    ("x-amz-decoded-content-length", &len),
                    ("x-amz-trailer", "x-amz-checksum-crc32"),
                    ("x-amz-sdk-checksum-algorithm", "CRC32"),
                ],
                "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                &body,
            )
            .await
        }
    };

    let resp = put("bad", B64.encode([1u8, 2, 3, 4])).await?;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(
        resp.text().contains("<Code>BadDigest</Code>"),
        "{}",
        resp.text()
    );
    assert!(resp.text().contains("crc32"), "{}", resp.text());
    let f = failure(
        srv.client()
            .head_object()
            .bucket("trail")
            .key("bad")
            .send()
            .await,
    );
    assert_eq!(f.status, 404, "nothing was stored");

    // The decoded length promised more than the chunks hold.
    let body = aws_chunked(&data, 4096, ("x-amz-checksum-crc32", &good));
    let longer = (data.len() + 10).to_string();
    let resp = signed(
        srv.addr,
        "PUT",
        "/trail/short",
        &[
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", &longer),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ],
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        &body,
    )
    .await?;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(
        resp.text().contains("<Code>IncompleteBody</Code>"),
        "{}",
        resp.text()
    );

    // A signed payload hash that does not match the body.
    let resp = signed(
        srv.addr,
        "PUT",
        "/trail/sha",
        &[],
        &"0".repeat(64),
        b"some body",
    )
    .await?;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(
        resp.text()
            .contains("<Code>XAmzContentSHA256Mismatch</Code>"),
        "{}",
        resp.text()
    );

    let resp = put("good", good.clone()).await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("x-amz-checksum-crc32"), Some(good.as_str()));
    let got = srv
        .client()
        .get_object()
        .bucket("trail")
        .key("good")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await?;
    assert_eq!(got.checksum_crc32(), Some(good.as_str()));
    assert_eq!(got.content_encoding(), None);
    assert_eq!(body_of(got).await?, data);
    srv.stop().await
}

#[tokio::test]
async fn copy_object() -> Result<()> {
    let srv = Server::start().await?;
    let s3 = srv.client();
    s3.create_bucket().bucket("src").send().await?;
    s3.create_bucket().bucket("dst").send().await?;
    let src_key = "dir/a file+ü.txt";
    let put = s3
        .put_object()
        .bucket("src")
        .key(src_key)
        .content_type("text/plain")
        .metadata("k", "v")
        .body(ByteStream::from_static(b"copy me"))
        .send()
        .await?;
    let etag = put.e_tag().unwrap_or_default().to_owned();

    // COPY (default): data and metadata travel; the SDK url-encodes the source.
    let out = s3
        .copy_object()
        .bucket("dst")
        .key("copy1")
        .copy_source(format!("src/{}", urlencode(src_key)))
        .send()
        .await?;
    let result = out
        .copy_object_result()
        .cloned()
        .unwrap_or_else(|| aws_sdk_s3::types::CopyObjectResult::builder().build());
    assert_eq!(result.e_tag(), Some(etag.as_str()));
    assert!(result.last_modified().is_some());
    let got = s3.get_object().bucket("dst").key("copy1").send().await?;
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(
        got.metadata().and_then(|m| m.get("k")).map(String::as_str),
        Some("v")
    );
    assert_eq!(body_of(got).await?, b"copy me");

    // REPLACE: the request's metadata; a versionId on the source is ignored.
    s3.copy_object()
        .bucket("dst")
        .key("copy2")
        .copy_source(format!("/src/{}?versionId=null", urlencode(src_key)))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/json")
        .metadata("new", "1")
        .send()
        .await?;
    let head = s3.head_object().bucket("dst").key("copy2").send().await?;
    assert_eq!(head.content_type(), Some("application/json"));
    let meta = head.metadata().cloned().unwrap_or_default();
    assert_eq!(meta.get("new").map(String::as_str), Some("1"));
    assert!(!meta.contains_key("k"));

    // Source conditions.
    let f = failure(
        s3.copy_object()
            .bucket("dst")
            .key("copy3")
            .copy_source(format!("src/{}", urlencode(src_key)))
            .copy_source_if_match("\"ffffffffffffffffffffffffffffffff\"")
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (412, "PreconditionFailed"));
    let f = failure(
        s3.copy_object()
            .bucket("dst")
            .key("copy3")
            .copy_source(format!("src/{}", urlencode(src_key)))
            .copy_source_if_none_match(&etag)
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (412, "PreconditionFailed"));
    s3.copy_object()
        .bucket("dst")
        .key("copy3")
        .copy_source(format!("src/{}", urlencode(src_key)))
        .copy_source_if_match(&etag)
        .send()
        .await?;

    // Onto itself without a change: refused; with a new storage class: fine.
    let f = failure(
        s3.copy_object()
            .bucket("dst")
            .key("copy1")
            .copy_source("dst/copy1")
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (400, "InvalidRequest"));
    s3.copy_object()
        .bucket("dst")
        .key("copy1")
        .copy_source("dst/copy1")
        .storage_class(StorageClass::ReducedRedundancy)
        .send()
        .await?;
    let head = s3.head_object().bucket("dst").key("copy1").send().await?;
    assert_eq!(head.storage_class(), Some(&StorageClass::ReducedRedundancy));

    let f = failure(
        s3.copy_object()
            .bucket("dst")
            .key("x")
            .copy_source("src/missing")
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (404, "NoSuchKey"));
    let f = failure(
        s3.copy_object()
            .bucket("dst")
            .key("x")
            .copy_source("src/k")
            .metadata_directive(MetadataDirective::from("MOVE"))
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (400, "InvalidArgument"));
    srv.stop().await
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn delete_objects() -> Result<()> {
    let srv = Server::start().await?;
    let s3 = srv.client();
    s3.create_bucket().bucket("del").send().await?;
    for k in ["a", "b", "c"] {
        s3.put_object()
            .bucket("del")
            .key(k)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await?;
    }
    let ids = |keys: &[&str], quiet: bool| -> Result<Delete> {
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(*k).build())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Delete::builder()
            .set_objects(Some(objects))
            .quiet(quiet)
            .build()?)
    };
    let out = s3
        .delete_objects()
        .bucket("del")
        .delete(ids(&["a", "missing", "bad//key"], false)?)
        .send()
        .await?;
    let deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    assert_eq!(deleted, ["a", "missing"]);
    assert_eq!(out.errors().len(), 1);
    assert_eq!(out.errors()[0].key(), Some("bad//key"));
    assert_eq!(out.errors()[0].code(), Some("InvalidObjectName"));

    let out = s3
        .delete_objects()
        .bucket("del")
        .delete(ids(&["b", "c", "x//y"], true)?)
        .send()
        .await?;
    assert!(out.deleted().is_empty(), "quiet mode lists no successes");
    assert_eq!(out.errors().len(), 1, "quiet mode still lists failures");
    let list = s3.list_objects_v2().bucket("del").send().await?;
    assert_eq!(list.key_count(), Some(0));

    let f = failure(
        s3.delete_objects()
            .bucket("nobucket")
            .delete(ids(&["a"], false)?)
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (404, "NoSuchBucket"));
    srv.stop().await
}

#[tokio::test]
async fn listing() -> Result<()> {
    let srv = Server::start().await?;
    let s3 = srv.client();
    s3.create_bucket().bucket("list").send().await?;
    let keys = [
        "a/1", "a/2", "b", "c/x/1", "c/y", "d", "e f/g", "e f/h", "plus+key",
    ];
    for k in keys {
        s3.put_object()
            .bucket("list")
            .key(k)
            .body(ByteStream::from_static(b"."))
            .send()
            .await?;
    }

    // v2, delimiter.
    let out = s3
        .list_objects_v2()
        .bucket("list")
        .delimiter("/")
        .send()
        .await?;
    let objs: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    let cps: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(objs, ["b", "d", "plus+key"]);
    assert_eq!(cps, ["a/", "c/", "e f/"]);
    assert_eq!(out.key_count(), Some(6));
    assert_eq!(out.is_truncated(), Some(false));
    assert_eq!(out.max_keys(), Some(1000));
    assert!(out.contents()[0].owner().is_none(), "no fetch-owner");
    assert_eq!(out.contents()[0].size(), Some(1));
    assert!(
        out.contents()[0]
            .e_tag()
            .is_some_and(|e| e.starts_with('"'))
    );

    // v2, prefix + delimiter, fetch-owner.
    let out = s3
        .list_objects_v2()
        .bucket("list")
        .prefix("c/")
        .delimiter("/")
        .fetch_owner(true)
        .send()
        .await?;
    let objs: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(objs, ["c/y"]);
    assert_eq!(out.common_prefixes()[0].prefix(), Some("c/x/"));
    assert!(out.contents()[0].owner().is_some());

    // v2 paging: two at a time with continuation tokens.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket("list")
            .max_keys(2)
            .set_continuation_token(token.clone())
            .send()
            .await?;
        pages += 1;
        assert!(out.key_count().unwrap_or_default() <= 2);
        assert_eq!(out.continuation_token(), token.as_deref());
        seen.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_owned),
        );
        if out.is_truncated() == Some(true) {
            let next = out.next_continuation_token().map(str::to_owned);
            assert!(next.is_some());
            // Opaque: not the key itself.
            assert!(!keys.contains(&next.as_deref().unwrap_or_default()));
            token = next;
        } else {
            assert!(out.next_continuation_token().is_none());
            break;
        }
    }
    assert_eq!(seen, keys);
    assert_eq!(pages, 5);

    // The SDK paginator agrees.
    let mut paginated = Vec::new();
    let mut p = s3
        .list_objects_v2()
        .bucket("list")
        .max_keys(3)
        .into_paginator()
        .send();
    while let Some(page) = p.next().await {
        paginated.extend(
            page?
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_owned),
        );
    }
    assert_eq!(paginated, keys);

    // start-after.
    let out = s3
        .list_objects_v2()
        .bucket("list")
        .start_after("c/y")
        .send()
        .await?;
    let objs: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(objs, ["d", "e f/g", "e f/h", "plus+key"]);
    assert_eq!(out.start_after(), Some("c/y"));

    // max-keys 0 and over 1000.
    let out = s3
        .list_objects_v2()
        .bucket("list")
        .max_keys(0)
        .send()
        .await?;
    assert_eq!(out.key_count(), Some(0));
    assert_eq!(out.is_truncated(), Some(false));
    let out = s3
        .list_objects_v2()
        .bucket("list")
        .max_keys(5000)
        .send()
        .await?;
    assert_eq!(out.max_keys(), Some(1000));
    let f = failure(
        s3.list_objects_v2()
            .bucket("list")
            .continuation_token("%%%not-a-token")
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (400, "InvalidArgument"));

    // v1 with a delimiter: NextMarker.
    let out = s3
        .list_objects()
        .bucket("list")
        .delimiter("/")
        .max_keys(2)
        .send()
        .await?;
    assert_eq!(out.is_truncated(), Some(true));
    let cps: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(cps, ["a/"]);
    assert_eq!(out.contents().len(), 1);
    assert_eq!(out.next_marker(), Some("b"));
    assert!(out.contents()[0].owner().is_some(), "v1 always has owners");
    let out = s3
        .list_objects()
        .bucket("list")
        .delimiter("/")
        .marker("b")
        .send()
        .await?;
    let objs: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    let cps: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(objs, ["d", "plus+key"]);
    assert_eq!(cps, ["c/", "e f/"]);
    assert_eq!(out.marker(), Some("b"));
    assert_eq!(out.is_truncated(), Some(false));
    assert!(out.next_marker().is_none());

    // v1 without a delimiter: no NextMarker; continue from the last key.
    let out = s3.list_objects().bucket("list").max_keys(4).send().await?;
    assert_eq!(out.is_truncated(), Some(true));
    assert!(out.next_marker().is_none());
    let last = out
        .contents()
        .last()
        .and_then(|o| o.key())
        .unwrap_or_default();
    assert_eq!(last, "c/x/1");

    // encoding-type=url: keys, prefixes and the echoed parameters.
    let out = s3
        .list_objects_v2()
        .bucket("list")
        .delimiter("/")
        .prefix("e f/")
        .encoding_type(EncodingType::Url)
        .send()
        .await?;
    let objs: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(objs, ["e%20f/g", "e%20f/h"]);
    assert_eq!(out.prefix(), Some("e%20f/"));
    assert_eq!(out.encoding_type(), Some(&EncodingType::Url));
    let out = s3
        .list_objects_v2()
        .bucket("list")
        .delimiter("/")
        .encoding_type(EncodingType::Url)
        .send()
        .await?;
    let objs: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    let cps: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(objs, ["b", "d", "plus%2Bkey"]);
    assert_eq!(cps, ["a/", "c/", "e%20f/"]);
    let out = s3
        .list_objects()
        .bucket("list")
        .delimiter("/")
        .marker("e f/")
        .encoding_type(EncodingType::Url)
        .send()
        .await?;
    assert_eq!(out.marker(), Some("e%20f/"));
    let objs: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(objs, ["plus%2Bkey"]);
    srv.stop().await
}

#[tokio::test]
async fn multipart() -> Result<()> {
    let srv = Server::start().await?;
    let s3 = srv.client();
    s3.create_bucket().bucket("mpu").send().await?;
    let part1 = vec![1u8; 5 * MIB];
    let part2 = vec![2u8; 5 * MIB];
    let part3 = b"tail".to_vec();

    let create = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("big")
        .content_type("application/x-big")
        .metadata("m", "1")
        .send()
        .await?;
    let id = create.upload_id().unwrap_or_default().to_owned();
    assert_eq!(create.key(), Some("big"));

    let mut completed = Vec::new();
    for (n, data) in [(1, &part1), (2, &part2), (3, &part3)] {
        let out = s3
            .upload_part()
            .bucket("mpu")
            .key("big")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(data.clone()))
            .send()
            .await?;
        completed.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap_or_default())
                .build(),
        );
    }

    let uploads = s3.list_multipart_uploads().bucket("mpu").send().await?;
    assert_eq!(uploads.uploads().len(), 1);
    assert_eq!(uploads.uploads()[0].upload_id(), Some(id.as_str()));
    assert_eq!(uploads.uploads()[0].key(), Some("big"));

    let parts = s3
        .list_parts()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .send()
        .await?;
    let sizes: Vec<i64> = parts.parts().iter().filter_map(|p| p.size()).collect();
    assert_eq!(sizes, [5 * MIB as i64, 5 * MIB as i64, 4]);
    let page = s3
        .list_parts()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .max_parts(2)
        .send()
        .await?;
    assert_eq!(page.parts().len(), 2);
    assert_eq!(page.is_truncated(), Some(true));
    assert_eq!(page.next_part_number_marker(), Some("2"));
    let page = s3
        .list_parts()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .part_number_marker("2")
        .send()
        .await?;
    assert_eq!(page.parts().len(), 1);
    assert_eq!(page.parts()[0].part_number(), Some(3));

    // Wrong ETag, wrong order.
    let mut wrong = completed.clone();
    wrong[1] = CompletedPart::builder()
        .part_number(2)
        .e_tag("\"00000000000000000000000000000000\"")
        .build();
    let f = failure(
        s3.complete_multipart_upload()
            .bucket("mpu")
            .key("big")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(wrong))
                    .build(),
            )
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (400, "InvalidPart"));
    let mut reversed = completed.clone();
    reversed.reverse();
    let f = failure(
        s3.complete_multipart_upload()
            .bucket("mpu")
            .key("big")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(reversed))
                    .build(),
            )
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (400, "InvalidPartOrder"));

    let done = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await?;
    let etag = done.e_tag().unwrap_or_default().to_owned();
    assert!(etag.ends_with("-3\""), "{etag}");
    let head = s3.head_object().bucket("mpu").key("big").send().await?;
    assert_eq!(head.content_length(), Some((10 * MIB + 4) as i64));
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(head.content_type(), Some("application/x-big"));
    assert_eq!(head.parts_count(), Some(3));
    let got = s3
        .get_object()
        .bucket("mpu")
        .key("big")
        .range(format!("bytes={}-{}", 5 * MIB - 2, 5 * MIB + 1))
        .send()
        .await?;
    assert_eq!(body_of(got).await?, [1, 1, 2, 2]);

    let f = failure(
        s3.list_parts()
            .bucket("mpu")
            .key("big")
            .upload_id(&id)
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (404, "NoSuchUpload"));

    // A small part in the middle.
    let id = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("small-middle")
        .send()
        .await?
        .upload_id()
        .unwrap_or_default()
        .to_owned();
    let mut completed = Vec::new();
    for (n, data) in [
        (1, vec![0u8; 5 * MIB]),
        (2, vec![0u8; MIB]),
        (3, vec![0u8; 10]),
    ] {
        let out = s3
            .upload_part()
            .bucket("mpu")
            .key("small-middle")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(data))
            .send()
            .await?;
        completed.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap_or_default())
                .build(),
        );
    }
    let f = failure(
        s3.complete_multipart_upload()
            .bucket("mpu")
            .key("small-middle")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (400, "EntityTooSmall"));

    // UploadPartCopy with a source range.
    s3.put_object()
        .bucket("mpu")
        .key("source")
        .body(ByteStream::from((0..=255u8).collect::<Vec<u8>>()))
        .send()
        .await?;
    let copy = s3
        .upload_part_copy()
        .bucket("mpu")
        .key("small-middle")
        .upload_id(&id)
        .part_number(4)
        .copy_source("mpu/source")
        .copy_source_range("bytes=16-31")
        .send()
        .await?;
    assert!(copy.copy_part_result().and_then(|r| r.e_tag()).is_some());
    let parts = s3
        .list_parts()
        .bucket("mpu")
        .key("small-middle")
        .upload_id(&id)
        .send()
        .await?;
    assert_eq!(parts.parts().last().and_then(|p| p.size()), Some(16));
    let f = failure(
        s3.upload_part_copy()
            .bucket("mpu")
            .key("small-middle")
            .upload_id(&id)
            .part_number(5)
            .copy_source("mpu/source")
            .copy_source_range("16-31")
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (400, "InvalidArgument"));

    // A malformed CompleteMultipartUpload body (swapped in before signing).
    const GARBAGE: &str = "<Complete><oops";
    let f = failure(
        s3.complete_multipart_upload()
            .bucket("mpu")
            .key("small-middle")
            .upload_id(&id)
            .customize()
            .mutate_request(|req| {
                *req.body_mut() = aws_smithy_types::body::SdkBody::from(GARBAGE);
                req.headers_mut()
                    .insert("content-length", GARBAGE.len().to_string());
            })
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (400, "MalformedXML"));

    s3.abort_multipart_upload()
        .bucket("mpu")
        .key("small-middle")
        .upload_id(&id)
        .send()
        .await?;
    let f = failure(
        s3.abort_multipart_upload()
            .bucket("mpu")
            .key("small-middle")
            .upload_id(&id)
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (404, "NoSuchUpload"));
    let f = failure(
        s3.upload_part()
            .bucket("mpu")
            .key("small-middle")
            .upload_id("no-such-upload")
            .part_number(1)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (404, "NoSuchUpload"));
    let uploads = s3.list_multipart_uploads().bucket("mpu").send().await?;
    assert!(uploads.uploads().is_empty());
    srv.stop().await
}

#[tokio::test]
async fn multipart_checksums() -> Result<()> {
    let srv = Server::start().await?;
    let s3 = srv.client();
    s3.create_bucket().bucket("mpsum").send().await?;
    let create = s3
        .create_multipart_upload()
        .bucket("mpsum")
        .key("obj")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await?;
    assert_eq!(
        create.checksum_algorithm(),
        Some(&ChecksumAlgorithm::Sha256)
    );
    let id = create.upload_id().unwrap_or_default().to_owned();
    let mut completed = Vec::new();
    for (n, data) in [(1, vec![7u8; 5 * MIB]), (2, vec![8u8; 100])] {
        let out = s3
            .upload_part()
            .bucket("mpsum")
            .key("obj")
            .upload_id(&id)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(data))
            .send()
            .await?;
        assert!(out.checksum_sha256().is_some());
        completed.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap_or_default())
                .set_checksum_sha256(out.checksum_sha256().map(str::to_owned))
                .build(),
        );
    }
    let parts = s3
        .list_parts()
        .bucket("mpsum")
        .key("obj")
        .upload_id(&id)
        .send()
        .await?;
    assert!(parts.parts().iter().all(|p| p.checksum_sha256().is_some()));
    let done = s3
        .complete_multipart_upload()
        .bucket("mpsum")
        .key("obj")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await?;
    let composite = done.checksum_sha256().unwrap_or_default().to_owned();
    assert!(composite.ends_with("-2"), "{composite}");
    // The SDK skips validating a composite checksum and still reads the body.
    let got = s3
        .get_object()
        .bucket("mpsum")
        .key("obj")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await?;
    assert_eq!(got.checksum_sha256(), Some(composite.as_str()));
    assert_eq!(
        got.checksum_type(),
        Some(&aws_sdk_s3::types::ChecksumType::Composite)
    );
    assert_eq!(body_of(got).await?.len(), 5 * MIB + 100);
    srv.stop().await
}

#[tokio::test]
async fn authentication() -> Result<()> {
    let srv = Server::start().await?;
    srv.client().create_bucket().bucket("auth").send().await?;

    let bad = client(&srv.endpoint(), ACCESS_KEY, "wrong-secret", true);
    let f = failure(bad.list_buckets().send().await);
    assert_eq!((f.status, f.code.as_str()), (403, "SignatureDoesNotMatch"));
    let f = failure(
        bad.put_object()
            .bucket("auth")
            .key("k")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    assert_eq!((f.status, f.code.as_str()), (403, "SignatureDoesNotMatch"));

    let unknown = client(&srv.endpoint(), "nobody", "whatever", true);
    let f = failure(unknown.list_buckets().send().await);
    assert_eq!((f.status, f.code.as_str()), (403, "InvalidAccessKeyId"));

    // Anonymous requests are refused.
    let resp = raw(srv.addr, "GET", &srv.addr.to_string(), "/auth", &[], b"").await?;
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(resp.text().contains("AccessDenied"), "{}", resp.text());
    srv.stop().await
}

#[tokio::test]
async fn presigned_urls() -> Result<()> {
    let srv = Server::start().await?;
    let s3 = srv.client();
    s3.create_bucket().bucket("pre").send().await?;

    let put = s3
        .put_object()
        .bucket("pre")
        .key("via presigned")
        .presigned(presign()?)
        .await?;
    assert_eq!(put.method(), "PUT");
    let resp = raw_presigned(srv.addr, "PUT", put.uri(), &[], b"presigned body").await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.header("etag").is_some());

    let get = s3
        .get_object()
        .bucket("pre")
        .key("via presigned")
        .presigned(presign()?)
        .await?;
    let resp = raw_presigned(srv.addr, "GET", get.uri(), &[], b"").await?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.body, b"presigned body");
    assert_eq!(resp.header("content-length"), Some("14"));

    // A tampered signature.
    let uri = get.uri();
    let last = uri.chars().last().unwrap_or('0');
    let flipped = if last == '0' { '1' } else { '0' };
    let tampered = format!("{}{flipped}", &uri[..uri.len() - 1]);
    assert!(tampered.contains("X-Amz-Signature=") && tampered.ends_with(flipped));
    let resp = raw_presigned(srv.addr, "GET", &tampered, &[], b"").await?;
    assert_eq!(resp.status, 403, "{}", resp.text());
    srv.stop().await
}

#[tokio::test]
async fn virtual_host_style() -> Result<()> {
    let srv = Server::start().await?;
    let vh = srv.vhost_client();
    vh.create_bucket().bucket("vhost").send().await?;
    vh.put_object()
        .bucket("vhost")
        .key("dir/obj")
        .body(ByteStream::from_static(b"virtual"))
        .send()
        .await?;
    let got = vh
        .get_object()
        .bucket("vhost")
        .key("dir/obj")
        .send()
        .await?;
    assert_eq!(body_of(got).await?, b"virtual");
    let list = vh.list_objects_v2().bucket("vhost").send().await?;
    assert_eq!(list.key_count(), Some(1));
    // Path-style sees the same bucket.
    let got = srv
        .client()
        .get_object()
        .bucket("vhost")
        .key("dir/obj")
        .send()
        .await?;
    assert_eq!(body_of(got).await?, b"virtual");
    srv.stop().await
}

#[tokio::test]
async fn health_and_shutdown() -> Result<()> {
    let srv = Server::start().await?;
    let host = srv.addr.to_string();
    let live = raw(srv.addr, "GET", &host, "/_cairn/health/live", &[], b"").await?;
    assert_eq!(live.status, 200);
    let ready = raw(srv.addr, "GET", &host, "/_cairn/health/ready", &[], b"").await?;
    assert_eq!(ready.status, 200);
    srv.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    let ready = raw(srv.addr, "GET", &host, "/_cairn/health/ready", &[], b"").await?;
    assert_eq!(ready.status, 503);
    srv.ready.store(true, std::sync::atomic::Ordering::SeqCst);
    let ready = raw(srv.addr, "GET", &host, "/_cairn/health/ready", &[], b"").await?;
    assert_eq!(ready.status, 200);

    // A client holding a keep-alive connection does not stop the drain.
    let s3 = srv.client();
    s3.create_bucket().bucket("drain").send().await?;
    let addr = srv.addr;
    srv.stop().await?;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed after shutdown"
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() -> Result<()> {
    let srv = Server::start().await?;
    let s3 = srv.client();
    s3.create_bucket().bucket("inflight").send().await?;
    let data = vec![9u8; 8 * MIB];
    s3.put_object()
        .bucket("inflight")
        .key("big")
        .body(ByteStream::from(data.clone()))
        .send()
        .await?;
    // Start a download, read its headers, then shut the server down and
    // read the rest of the body.
    let got = s3.get_object().bucket("inflight").key("big").send().await?;
    let stop = tokio::spawn(srv.stop());
    assert_eq!(body_of(got).await?, data);
    stop.await??;
    Ok(())
}

#[tokio::test]
async fn bad_config_is_refused() -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let layer: std::sync::Arc<dyn cairn_api::ObjectLayer> =
        std::sync::Arc::new(cairn_api::mem::MemLayer::new());
    let cfg = cairn_s3::S3Config {
        access_key: "a".into(),
        secret_key: "b".into(),
        region: "us-east-1".into(),
        domains: vec!["example.com".into(), "s3.example.com".into()],
        admin: None,
        metrics_token: None,
        limits: Default::default(),
        iam: None,
        oidc: None,
        audit: None,
        web: None,
        router: None,
        notify_targets: Vec::new(),
        replication: None,
    };
    let err = cairn_s3::serve(listener, layer, cfg, std::sync::Arc::new(|| true), async {})
        .await
        .err();
    assert_eq!(
        err.map(|e| e.kind()),
        Some(std::io::ErrorKind::InvalidInput)
    );
    Ok(())
}

/// An error answered before the body is read must still reach a client
/// that streams a large body without `Expect: 100-continue` (aws-sdk-rust):
/// the front discards the unread body instead of closing on the client.
#[tokio::test]
async fn error_before_body_reaches_a_streaming_client() -> Result<()> {
    let srv = Server::start().await?;
    let s3 = srv.client();
    let big = vec![5u8; 48 * MIB];
    for _ in 0..3 {
        let f = failure(
            s3.put_object()
                .bucket("no-such-bucket")
                .key("k")
                .body(ByteStream::from(big.clone()))
                .send()
                .await,
        );
        assert_eq!((f.status, f.code.as_str()), (404, "NoSuchBucket"), "{f:?}");
    }
    // Deterministic form: a client that writes the whole body before it
    // reads anything (an anonymous PUT is refused before the body).
    let addr = srv.endpoint().trim_start_matches("http://").parse()?;
    let resp = raw(addr, "PUT", "localhost", "/bucket/key", &[], &big).await?;
    assert_eq!(resp.status, 403, "{}", resp.text());
    Ok(())
}
