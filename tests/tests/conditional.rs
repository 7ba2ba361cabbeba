//! Conditional writes as S3 clients send them (AWS, 2024): PutObject and
//! CompleteMultipartUpload with `If-None-Match: *` / `If-Match`, 412 when
//! the condition fails, 409 ConditionalRequestConflict while another
//! conditional write of the key is in flight; CopyObject's destination
//! conditions (the same headers, on the key written) and its
//! `x-amz-copy-source-if-*` conditions.

use std::process::Command;

use anyhow::{Context as _, Result, ensure};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use cairn_tests::cmd::{require_tool, run_stdout};
use cairn_tests::data::random_bytes;
use cairn_tests::{Server, bucket_name, expect_err, get_bytes, multipart, new_versioned_bucket};
use tokio::io::AsyncWriteExt as _;

async fn put(c: &aws_sdk_s3::Client, b: &str, k: &str, body: &'static [u8]) -> Result<String> {
    Ok(c.put_object()
        .bucket(b)
        .key(k)
        .body(ByteStream::from_static(body))
        .send()
        .await?
        .e_tag
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_puts_and_completes() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("cond");
    c.create_bucket().bucket(&b).send().await?;

    // If-None-Match: * creates once; the second is 412 and changes nothing
    let first = c
        .put_object()
        .bucket(&b)
        .key("k")
        .if_none_match("*")
        .body(ByteStream::from_static(b"one"))
        .send()
        .await?
        .e_tag
        .unwrap_or_default();
    expect_err(
        "If-None-Match: * over an object",
        c.put_object()
            .bucket(&b)
            .key("k")
            .if_none_match("*")
            .body(ByteStream::from_static(b"two"))
            .send()
            .await,
        412,
        Some("PreconditionFailed"),
    )?;
    ensure!(get_bytes(&c, &b, "k").await? == b"one");

    // If-Match: the current ETag replaces, a stale one is 412, no object 404
    let second = c
        .put_object()
        .bucket(&b)
        .key("k")
        .if_match(&first)
        .body(ByteStream::from_static(b"two"))
        .send()
        .await?
        .e_tag
        .unwrap_or_default();
    expect_err(
        "If-Match with a stale ETag",
        c.put_object()
            .bucket(&b)
            .key("k")
            .if_match(&first)
            .body(ByteStream::from_static(b"three"))
            .send()
            .await,
        412,
        Some("PreconditionFailed"),
    )?;
    ensure!(get_bytes(&c, &b, "k").await? == b"two");
    expect_err(
        "If-Match on a missing key",
        c.put_object()
            .bucket(&b)
            .key("missing")
            .if_match(&first)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        404,
        Some("NoSuchKey"),
    )?;
    expect_err(
        "the missing key stays missing",
        c.head_object().bucket(&b).key("missing").send().await,
        404,
        None,
    )?;
    // S3 takes only '*' in If-None-Match on a write
    expect_err(
        "If-None-Match with an ETag",
        c.put_object()
            .bucket(&b)
            .key("k")
            .if_none_match(&second)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        501,
        Some("NotImplemented"),
    )?;

    // CompleteMultipartUpload: refused with 412 (the upload stays), then
    // completed with the current ETag
    let (id, done) = multipart::upload(&c, &b, "k", &[b"multipart"]).await?;
    expect_err(
        "complete with If-None-Match: * over an object",
        c.complete_multipart_upload()
            .bucket(&b)
            .key("k")
            .upload_id(&id)
            .multipart_upload(done.clone())
            .if_none_match("*")
            .send()
            .await,
        412,
        Some("PreconditionFailed"),
    )?;
    expect_err(
        "complete with a stale If-Match",
        c.complete_multipart_upload()
            .bucket(&b)
            .key("k")
            .upload_id(&id)
            .multipart_upload(done.clone())
            .if_match(&first)
            .send()
            .await,
        412,
        Some("PreconditionFailed"),
    )?;
    ensure!(get_bytes(&c, &b, "k").await? == b"two");
    c.complete_multipart_upload()
        .bucket(&b)
        .key("k")
        .upload_id(&id)
        .multipart_upload(done)
        .if_match(&second)
        .send()
        .await?;
    ensure!(get_bytes(&c, &b, "k").await? == b"multipart");
    let (id, done) = multipart::upload(&c, &b, "new", &[b"fresh"]).await?;
    c.complete_multipart_upload()
        .bucket(&b)
        .key("new")
        .upload_id(&id)
        .multipart_upload(done)
        .if_none_match("*")
        .send()
        .await?;
    ensure!(get_bytes(&c, &b, "new").await? == b"fresh");

    // versioned: a delete marker is no object for If-None-Match: *
    let v = new_versioned_bucket(&c, "condv").await?;
    put(&c, &v, "k", b"v1").await?;
    expect_err(
        "If-None-Match: * over a versioned object",
        c.put_object()
            .bucket(&v)
            .key("k")
            .if_none_match("*")
            .body(ByteStream::from_static(b"v2"))
            .send()
            .await,
        412,
        Some("PreconditionFailed"),
    )?;
    c.delete_object().bucket(&v).key("k").send().await?;
    c.put_object()
        .bucket(&v)
        .key("k")
        .if_none_match("*")
        .body(ByteStream::from_static(b"v3"))
        .send()
        .await?;
    ensure!(get_bytes(&c, &v, "k").await? == b"v3");
    Ok(())
}

/// A PUT of `b/k` with `If-None-Match: *` and `data` as its body, of which
/// only the first `sent` bytes are sent: the connection, to send the rest.
async fn create_only_put_begun(
    s: &Server,
    b: &str,
    data: &[u8],
    sent: usize,
) -> Result<tokio::net::TcpStream> {
    let mut slow = s
        .raw()
        .open_upload(
            "PUT",
            &format!("/{b}/k"),
            &[("if-none-match", "*")],
            data.len() as u64,
        )
        .await?;
    slow.write_all(data.get(..sent).context("sent past the body")?)
        .await?;
    slow.flush().await?;
    Ok(slow)
}

/// A conditional PUT whose body is still arriving holds the key: a second
/// conditional write of it is 409 ConditionalRequestConflict (an
/// unconditional one is not held up), and the first then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditional_write_in_flight_makes_a_second_one_conflict() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("race");
    c.create_bucket().bucket(&b).send().await?;
    let data = random_bytes(4 << 20, 7);
    let mut slow = create_only_put_begun(&s, &b, &data, 1 << 20).await?;
    // the server has taken the key once it reads the body
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let r = c
        .put_object()
        .bucket(&b)
        .key("k")
        .if_none_match("*")
        .body(ByteStream::from_static(b"fast"))
        .send()
        .await;
    expect_err(
        "a second conditional PUT while one is in flight",
        r,
        409,
        Some("ConditionalRequestConflict"),
    )?;
    // an unconditional write of another key is not held up
    put(&c, &b, "other", b"free").await?;
    slow.write_all(&data[1 << 20..]).await?;
    let r = cairn_tests::raw::finish_upload(slow).await?;
    ensure!(r.status == 200, "the write in flight: {}", r.describe());
    ensure!(
        get_bytes(&c, &b, "k").await? == data,
        "the first write's bytes"
    );
    Ok(())
}

/// CopyObject and UploadPartCopy with `x-amz-copy-source-if-*`, as AWS
/// evaluates them (if-match true wins over if-unmodified-since false;
/// if-none-match false is 412 whatever if-modified-since says).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_source_conditions() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("copyif");
    c.create_bucket().bucket(&b).send().await?;
    let etag = put(&c, &b, "src", b"source").await?;
    let src = format!("{b}/src");
    let past = DateTime::from_secs(1_000_000_000);
    let future = DateTime::from_secs(4_000_000_000);
    let copy = || c.copy_object().bucket(&b).key("dst").copy_source(&src);
    for (what, r) in [
        (
            "if-match stale",
            copy().copy_source_if_match("\"00\"").send().await,
        ),
        (
            "if-none-match current",
            copy().copy_source_if_none_match(&etag).send().await,
        ),
        (
            "if-unmodified-since past",
            copy().copy_source_if_unmodified_since(past).send().await,
        ),
        (
            "if-modified-since future",
            copy().copy_source_if_modified_since(future).send().await,
        ),
        (
            "if-none-match current + if-modified-since past",
            copy()
                .copy_source_if_none_match(&etag)
                .copy_source_if_modified_since(past)
                .send()
                .await,
        ),
    ] {
        expect_err(what, r, 412, Some("PreconditionFailed"))?;
        expect_err(
            "nothing copied",
            c.head_object().bucket(&b).key("dst").send().await,
            404,
            None,
        )?;
    }
    copy()
        .copy_source_if_match(&etag)
        .copy_source_if_unmodified_since(past)
        .send()
        .await?;
    copy()
        .copy_source_if_none_match("\"00\"")
        .copy_source_if_modified_since(future)
        .send()
        .await?;
    copy().copy_source_if_modified_since(past).send().await?;
    ensure!(get_bytes(&c, &b, "dst").await? == b"source");

    let id = c
        .create_multipart_upload()
        .bucket(&b)
        .key("mp")
        .send()
        .await?
        .upload_id
        .unwrap_or_default();
    let part = || {
        c.upload_part_copy()
            .bucket(&b)
            .key("mp")
            .upload_id(&id)
            .part_number(1)
            .copy_source(&src)
    };
    expect_err(
        "part copy if-match stale",
        part().copy_source_if_match("\"00\"").send().await,
        412,
        Some("PreconditionFailed"),
    )?;
    expect_err(
        "part copy if-none-match current",
        part().copy_source_if_none_match(&etag).send().await,
        412,
        Some("PreconditionFailed"),
    )?;
    part().copy_source_if_match(&etag).send().await?;
    Ok(())
}

/// boto3 (IfNoneMatch / IfMatch, on put_object and copy_object) sees the
/// same codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_conditional_put_and_copy() -> Result<()> {
    require_tool("python3")?;
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("condpy");
    c.create_bucket().bucket(&b).send().await?;
    let script = r#"
import sys, boto3
from botocore.config import Config
from botocore.exceptions import ClientError
ep, user, secret, b = sys.argv[1:5]
c = boto3.client("s3", endpoint_url=ep, aws_access_key_id=user,
                 aws_secret_access_key=secret, region_name="us-east-1",
                 config=Config(s3={"addressing_style": "path"}))
e = c.put_object(Bucket=b, Key="k", Body=b"one", IfNoneMatch="*")["ETag"]
def code(**kw):
    try:
        c.put_object(Bucket=b, Key="k", Body=b"x", **kw)
        return "ok"
    except ClientError as err:
        return "%s %s" % (err.response["ResponseMetadata"]["HTTPStatusCode"], err.response["Error"]["Code"])
print(code(IfNoneMatch="*"))
print(code(IfMatch='"0123"'))
print(code(IfMatch=e))
c.put_object(Bucket=b, Key="src", Body=b"copied")
def copy(**kw):
    try:
        c.copy_object(Bucket=b, Key="k", CopySource={"Bucket": b, "Key": "src"}, **kw)
        return "ok"
    except ClientError as err:
        return "%s %s" % (err.response["ResponseMetadata"]["HTTPStatusCode"], err.response["Error"]["Code"])
cur = c.head_object(Bucket=b, Key="k")["ETag"]
print(copy(IfNoneMatch="*"))
print(copy(IfMatch='"0123"'))
print(copy(IfMatch=cur))
"#;
    let out = run_stdout(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(s.endpoint())
            .arg(s.access_key())
            .arg(s.secret_key())
            .arg(&b),
    )?;
    ensure!(
        out == "412 PreconditionFailed\n412 PreconditionFailed\nok\n\
                412 PreconditionFailed\n412 PreconditionFailed\nok\n",
        "boto3: {out}"
    );
    ensure!(get_bytes(&c, &b, "k").await? == b"copied");
    Ok(())
}

/// CopyObject's destination conditions (`If-Match`, `If-None-Match: *`,
/// which AWS added to CopyObject as to PutObject): 412 and the destination
/// unchanged when one fails, the copy when it holds; the same for a copy
/// onto itself that replaces the metadata, and in a versioned bucket (a
/// refused copy makes no version).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_destination_conditions() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("condcp");
    c.create_bucket().bucket(&b).send().await?;
    let source = put(&c, &b, "src", b"source").await?;
    let dest = put(&c, &b, "dst", b"dest").await?;
    let src = format!("{b}/src");
    let copy = |key: &str| c.copy_object().bucket(&b).key(key).copy_source(&src);
    let stale = "\"0123456789abcdef0123456789abcdef\"";
    for (what, r) in [
        (
            "If-None-Match: *",
            copy("dst").if_none_match("*").send().await,
        ),
        ("a stale If-Match", copy("dst").if_match(stale).send().await),
    ] {
        expect_err(what, r, 412, Some("PreconditionFailed"))?;
        ensure!(get_bytes(&c, &b, "dst").await? == b"dest", "{what}: copied");
    }
    let copied = copy("dst").if_match(&dest).send().await?;
    ensure!(
        copied.copy_object_result().and_then(|r| r.e_tag()) == Some(source.as_str()),
        "copy with the current ETag: {copied:?}"
    );
    ensure!(get_bytes(&c, &b, "dst").await? == b"source");
    copy("new").if_none_match("*").send().await?;
    ensure!(get_bytes(&c, &b, "new").await? == b"source");
    expect_err(
        "If-Match on a free key",
        copy("missing").if_match("*").send().await,
        404,
        Some("NoSuchKey"),
    )?;
    expect_err(
        "nothing made",
        c.head_object().bucket(&b).key("missing").send().await,
        404,
        None,
    )?;
    // as on PutObject, If-None-Match takes only '*'
    expect_err(
        "If-None-Match with an ETag",
        copy("dst").if_none_match(&dest).send().await,
        501,
        Some("NotImplemented"),
    )?;

    // onto itself, replacing the metadata
    let dst = format!("{b}/dst");
    let onto_itself = || {
        c.copy_object()
            .bucket(&b)
            .key("dst")
            .copy_source(&dst)
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .metadata("shape", "round")
    };
    expect_err(
        "onto itself with a stale If-Match",
        onto_itself().if_match(stale).send().await,
        412,
        Some("PreconditionFailed"),
    )?;
    let head = c.head_object().bucket(&b).key("dst").send().await?;
    ensure!(head.metadata().is_none_or(|m| m.is_empty()), "{head:?}");
    onto_itself().if_match(&source).send().await?;
    let head = c.head_object().bucket(&b).key("dst").send().await?;
    ensure!(
        head.metadata()
            .and_then(|m| m.get("shape"))
            .map(String::as_str)
            == Some("round"),
        "{head:?}"
    );

    // versioned: a refused copy makes no version; a delete marker is no
    // object for If-None-Match: *
    let v = new_versioned_bucket(&c, "condcpv").await?;
    put(&c, &v, "k", b"v1").await?;
    let vcopy = || c.copy_object().bucket(&v).key("k").copy_source(&src);
    expect_err(
        "If-None-Match: * over a versioned object",
        vcopy().if_none_match("*").send().await,
        412,
        Some("PreconditionFailed"),
    )?;
    let count = |r: aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput| {
        r.versions().len() + r.delete_markers().len()
    };
    ensure!(count(c.list_object_versions().bucket(&v).send().await?) == 1);
    c.delete_object().bucket(&v).key("k").send().await?;
    vcopy().if_none_match("*").send().await?;
    ensure!(get_bytes(&c, &v, "k").await? == b"source");
    ensure!(count(c.list_object_versions().bucket(&v).send().await?) == 3);
    Ok(())
}

/// A conditional copy while a conditional PUT of its destination is in
/// flight is 409 ConditionalRequestConflict; the PUT then commits. No
/// timing: the PUT holds the key from before it reads its body, and once
/// more of it is written than the socket buffers can hold, the server has
/// read some.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_conflicts_with_a_conditional_write_in_flight() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("cprace");
    c.create_bucket().bucket(&b).send().await?;
    put(&c, &b, "src", b"source").await?;
    // the most the kernel buffers on the way (the largest receive and send
    // buffers), plus 8 MiB the server must have read
    let most = |f: &str| -> Result<usize> {
        let text = std::fs::read_to_string(f)?;
        let max = text.split_whitespace().last().unwrap_or_default();
        Ok(max.parse()?)
    };
    let sent =
        most("/proc/sys/net/ipv4/tcp_rmem")? + most("/proc/sys/net/ipv4/tcp_wmem")? + (8 << 20);
    let data = random_bytes(sent + (8 << 20), 9);
    let mut slow = create_only_put_begun(&s, &b, &data, sent).await?;
    let src = format!("{b}/src");
    expect_err(
        "a conditional copy while a conditional PUT is in flight",
        c.copy_object()
            .bucket(&b)
            .key("k")
            .copy_source(&src)
            .if_match("*")
            .send()
            .await,
        409,
        Some("ConditionalRequestConflict"),
    )?;
    slow.write_all(&data[sent..]).await?;
    let r = cairn_tests::raw::finish_upload(slow).await?;
    ensure!(r.status == 200, "the write in flight: {}", r.describe());
    ensure!(get_bytes(&c, &b, "k").await? == data, "the PUT's bytes");
    Ok(())
}
