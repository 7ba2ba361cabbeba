//! The log as an operator reads it: `--log-format json` (one JSON object
//! per line), the access log (one line per S3 request on the target
//! `cairn::access`, written when the response body has been sent), and
//! what `cairn gateway nas` says at start about top-level entries of the
//! share that are not buckets.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use aws_sdk_s3::operation::RequestId as _;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cairn_tests::data::random_bytes;
use cairn_tests::{Server, StartOpts, bucket_name};
use md5::{Digest as _, Md5};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const TARGET: &str = "cairn::access";

/// Every whole line of the log parsed as JSON (a line that is not
/// fails; a last line still being written is left for the next read).
fn json_lines(log: &str) -> Result<Vec<Value>> {
    let whole = log.rfind('\n').map_or("", |i| &log[..i]);
    whole
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("not a JSON object: {l}")))
        .collect()
}

/// The access-log object of the request `id`, waiting (up to 10 s) for
/// it: it is written when the response body is done, which may be just
/// after the client has its last byte.
async fn access_line(s: &Server, id: &str) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = json_lines(&s.full_log())?;
        if let Some(v) = lines
            .into_iter()
            .find(|v| v["target"] == TARGET && v["request_id"] == id)
        {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("no access line for request {id}; log:\n{}", s.log());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    &v[name]
}

/// A PUT (raw, exact body), a streamed 3 MiB GET (SDK), an SSE-C PUT and
/// GET, and a presigned GET, with `--log-format json`: every log line is
/// JSON, each request has its access line with the right fields and the
/// request id its response carried, and no secret is in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_access_log_has_each_request_and_no_secret() -> Result<()> {
    let s = Server::start(StartOpts {
        extra_args: vec!["--log-format".into(), "json".into()],
        ..StartOpts::default()
    })
    .await?;
    let c = s.s3();
    let b = bucket_name("access");
    c.create_bucket().bucket(&b).send().await?;

    // A PUT whose body is exactly 1000 bytes (no aws-chunked framing).
    let small = random_bytes(1000, 1);
    let put = s
        .raw()
        .send("PUT", &format!("/{b}/small"), &[], &small)
        .await?;
    ensure!(put.status == 200, "raw PUT: {}", put.describe());
    let put_id = put
        .header("x-amz-request-id")
        .context("the PUT answer has no x-amz-request-id")?
        .to_owned();
    let v = access_line(&s, &put_id).await?;
    ensure!(field(&v, "level") == "INFO", "{v}");
    ensure!(field(&v, "method") == "PUT", "{v}");
    ensure!(field(&v, "op") == "PutObject", "{v}");
    ensure!(field(&v, "bucket") == b.as_str(), "{v}");
    ensure!(field(&v, "key") == "small", "{v}");
    ensure!(field(&v, "status") == 200, "{v}");
    ensure!(field(&v, "bytes_in") == 1000, "{v}");
    ensure!(field(&v, "bytes_out") == 0, "{v}");
    ensure!(field(&v, "access_key") == s.access_key(), "{v}");
    ensure!(field(&v, "complete") == true, "{v}");
    ensure!(field(&v, "duration_ms").as_f64().is_some(), "{v}");
    ensure!(
        field(&v, "remote")
            .as_str()
            .is_some_and(|r| r.starts_with("127.0.0.1:")),
        "{v}"
    );

    // A streamed GET of 3 MiB: its line has every byte sent.
    let big = random_bytes(3 << 20, 2);
    c.put_object()
        .bucket(&b)
        .key("dir/big")
        .body(ByteStream::from(big.clone()))
        .send()
        .await?;
    let got = c.get_object().bucket(&b).key("dir/big").send().await?;
    let get_id = got
        .request_id()
        .context("the SDK saw no request id")?
        .to_owned();
    let body = got.body.collect().await?.into_bytes();
    ensure!(body.as_ref() == big.as_slice(), "GET returned other bytes");
    let v = access_line(&s, &get_id).await?;
    ensure!(field(&v, "method") == "GET", "{v}");
    ensure!(field(&v, "op") == "GetObject", "{v}");
    ensure!(field(&v, "key") == "dir/big", "{v}");
    ensure!(field(&v, "status") == 200, "{v}");
    ensure!(field(&v, "bytes_out") == big.len(), "{v}");
    ensure!(field(&v, "complete") == true, "{v}");
    // A HEAD: its (unsent) body is not counted, and it is complete.
    let head = c.head_object().bucket(&b).key("dir/big").send().await?;
    let v = access_line(&s, head.request_id().context("no request id")?).await?;
    ensure!(
        field(&v, "method") == "HEAD" && field(&v, "op") == "HeadObject",
        "{v}"
    );
    ensure!(
        field(&v, "status") == 200 && field(&v, "bytes_out") == 0,
        "{v}"
    );
    ensure!(field(&v, "complete") == true, "{v}");

    // SSE-C: the customer key travels in headers, never into the log.
    let key = [7u8; 32];
    let key_b64 = B64.encode(key);
    let key_md5 = B64.encode(Md5::digest(key));
    c.put_object()
        .bucket(&b)
        .key("secret")
        .body(ByteStream::from_static(b"sse-c body"))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await?;
    let got = c
        .get_object()
        .bucket(&b)
        .key("secret")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await?;
    let ssec_id = got.request_id().context("no request id")?.to_owned();
    let v = access_line(&s, &ssec_id).await?;
    ensure!(
        field(&v, "key") == "secret" && field(&v, "status") == 200,
        "{v}"
    );

    // A presigned GET: the signature is in the URL, the line keeps the
    // access key id and the redacted URI.
    let pre = c
        .get_object()
        .bucket(&b)
        .key("small")
        .presigned(aws_sdk_s3::presigning::PresigningConfig::expires_in(
            Duration::from_secs(300),
        )?)
        .await?;
    let url = pre.uri().to_string();
    let sig = url
        .split_once("X-Amz-Signature=")
        .map(|(_, v)| v.split('&').next().unwrap_or(v).to_owned())
        .context("no X-Amz-Signature in the presigned URL")?;
    let r = cairn_tests::raw::send_url("GET", &url, &[], b"").await?;
    ensure!(r.status == 200, "presigned GET: {}", r.describe());
    ensure!(r.body == small, "presigned GET returned other bytes");
    let pre_id = r.header("x-amz-request-id").context("no request id")?;
    let v = access_line(&s, pre_id).await?;
    ensure!(field(&v, "access_key") == s.access_key(), "{v}");
    ensure!(field(&v, "bytes_out") == small.len(), "{v}");
    let uri = field(&v, "uri").as_str().context("no uri")?;
    ensure!(uri.contains("X-Amz-Signature=<redacted>"), "{v}");

    let log = s.full_log();
    // One line per request: no request id twice.
    let mut ids: Vec<String> = json_lines(&log)?
        .iter()
        .filter(|v| v["target"] == TARGET)
        .filter_map(|v| v["request_id"].as_str().map(str::to_owned))
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    ensure!(ids.len() == n, "a request was logged twice");
    for (what, secret) in [
        ("SSE-C key", key_b64.as_str()),
        ("presigned signature", sig.as_str()),
        ("secret key", s.secret_key()),
    ] {
        if let Some(line) = log.lines().find(|l| l.contains(secret)) {
            bail!("the log holds the {what}: {line}");
        }
    }
    Ok(())
}

/// The default text format has the access line too, with the same fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_access_log_line() -> Result<()> {
    let s = Server::start_default().await?;
    let b = bucket_name("textlog");
    s.s3().create_bucket().bucket(&b).send().await?;
    let r = s
        .raw()
        .send("PUT", &format!("/{b}/k.txt"), &[], b"12345")
        .await?;
    ensure!(r.status == 200, "{}", r.describe());
    let id = r.header("x-amz-request-id").context("no request id")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = s.full_log();
        if let Some(line) = log.lines().find(|l| l.contains(id)) {
            for want in [
                TARGET,
                " INFO ",
                "method=PUT",
                "op=\"PutObject\"",
                &format!("bucket=\"{b}\""),
                "key=\"k.txt\"",
                "status=200",
                "bytes_in=5",
                "bytes_out=0",
                &format!("access_key=\"{}\"", s.access_key()),
            ] {
                ensure!(
                    line.contains(want),
                    "no {want:?} in the access line: {line}"
                );
            }
            ensure!(
                serde_json::from_str::<Value>(line).is_err(),
                "text format wrote JSON"
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no access line with request id {id}:\n{}", s.log());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client that stops reading a 32 MiB GET after 1 MiB and closes: the
/// line is written when the server gives up on the body, with the bytes
/// really handed to the connection (not the Content-Length) and
/// `complete=false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_download_logs_what_was_sent() -> Result<()> {
    let s = Server::start(StartOpts {
        extra_args: vec!["--log-format".into(), "json".into()],
        ..StartOpts::default()
    })
    .await?;
    let c = s.s3();
    let b = bucket_name("abort");
    c.create_bucket().bucket(&b).send().await?;
    let size = 32usize << 20;
    c.put_object()
        .bucket(&b)
        .key("large")
        .body(ByteStream::from(random_bytes(size, 3)))
        .send()
        .await?;
    let pre = c
        .get_object()
        .bucket(&b)
        .key("large")
        .presigned(aws_sdk_s3::presigning::PresigningConfig::expires_in(
            Duration::from_secs(300),
        )?)
        .await?;
    let url = pre.uri().to_string();
    let target = url
        .strip_prefix(&s.endpoint())
        .context("presigned URL of another host")?;
    let mut conn = tokio::net::TcpStream::connect(s.addr()).await?;
    conn.write_all(format!("GET {target} HTTP/1.1\r\nhost: {}\r\n\r\n", s.addr()).as_bytes())
        .await?;
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while seen.len() < (1 << 20) {
        let n = conn.read(&mut buf).await?;
        ensure!(n > 0, "the server closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&seen[..seen.len().min(2048)]).into_owned();
    ensure!(head.starts_with("HTTP/1.1 200"), "{head}");
    let id = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-amz-request-id:")
                .then(|| l.split_once(':').map(|(_, v)| v.trim().to_owned()))
                .flatten()
        })
        .context("no x-amz-request-id")?;
    drop(conn);
    let v = access_line(&s, &id).await?;
    ensure!(field(&v, "status") == 200, "{v}");
    ensure!(field(&v, "complete") == false, "{v}");
    let out = field(&v, "bytes_out").as_u64().context("no bytes_out")?;
    ensure!(
        out >= (1 << 20) - 4096 && out < size as u64,
        "bytes_out {out} of {size}: {v}"
    );
    Ok(())
}

/// `cairn gateway nas` over a share with files and a link at its top:
/// they are not buckets, and the start log says how many were skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nas_gateway_counts_top_level_files() -> Result<()> {
    let dir = tempfile::Builder::new().prefix("cairn-nas-").tempdir()?;
    let share = dir.path().join("share");
    std::fs::create_dir_all(share.join("photos"))?;
    std::fs::write(share.join("photos/cat.jpg"), b"meow")?;
    for f in ["a.txt", "b.txt", "notes.md"] {
        std::fs::write(share.join(f), b"invisible over S3")?;
    }
    std::os::unix::fs::symlink(share.join("a.txt"), share.join("link"))?;
    let s = Server::start(StartOpts::gateway([
        "nas".to_string(),
        share.display().to_string(),
    ]))
    .await?;
    let want = format!(
        "skipping 4 top-level entries in {} (3 files, 1 symlink to no folder)",
        share.display()
    );
    let log = s.full_log();
    let line = log
        .lines()
        .find(|l| l.contains(&want))
        .with_context(|| format!("no {want:?} in the start log:\n{}", s.log()))?;
    ensure!(line.contains("WARN"), "{line}");
    ensure!(line.contains("a.txt, b.txt, link, notes.md"), "{line}");
    let buckets: Vec<String> = s
        .s3()
        .list_buckets()
        .send()
        .await?
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    ensure!(buckets == ["photos"], "buckets {buckets:?}");

    // A share of folders only: nothing to say.
    let clean = dir.path().join("clean");
    std::fs::create_dir_all(clean.join("docs"))?;
    let s2 = Server::start(StartOpts::gateway([
        "nas".to_string(),
        clean.display().to_string(),
    ]))
    .await?;
    ensure!(
        !s2.full_log().contains("skipping"),
        "a clean share reported skipped entries:\n{}",
        s2.log()
    );
    Ok(())
}
