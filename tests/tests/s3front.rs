//! The S3 front as the binary serves it: browser form uploads (presigned
//! POST from boto3) and what the log says about client mistakes and
//! server failures.

use std::process::Command;

use anyhow::{Result, ensure};
use aws_sdk_s3::primitives::ByteStream;
use cairn_tests::cmd::{require_tool, run_stdout};
use cairn_tests::{Server, bucket_name, expect_err, get_bytes};

/// boto3's `generate_presigned_post` (SigV4 and SigV2 forms) for a key of
/// `uploads/${filename}`, posted with `requests` as a browser form: the
/// object is stored under the uploaded file's name, as S3 does, not under
/// the literal `${filename}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_post_stores_the_file_name() -> Result<()> {
    require_tool("python3")?;
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("form");
    c.create_bucket().bucket(&b).send().await?;
    let script = r#"
import sys, boto3, requests
from botocore.config import Config
ep, user, secret, b = sys.argv[1:5]
for sig, name in (("s3v4", "v4 report.txt"), ("s3", "v2-photo.jpg")):
    c = boto3.client("s3", endpoint_url=ep, aws_access_key_id=user,
                     aws_secret_access_key=secret, region_name="us-east-1",
                     config=Config(signature_version=sig, s3={"addressing_style": "path"}))
    p = c.generate_presigned_post(b, "uploads/${filename}", ExpiresIn=300)
    r = requests.post(p["url"], data=p["fields"],
                      files={"file": (name, b"form body " + name.encode())})
    print(sig, r.status_code)
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
    ensure!(out == "s3v4 204\ns3 204\n", "form uploads: {out}");
    for name in ["v4 report.txt", "v2-photo.jpg"] {
        let got = get_bytes(&c, &b, &format!("uploads/{name}")).await?;
        ensure!(
            got == format!("form body {name}").into_bytes(),
            "uploads/{name}: {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    expect_err(
        "the literal ${filename} key",
        c.head_object()
            .bucket(&b)
            .key("uploads/${filename}")
            .send()
            .await,
        404,
        None,
    )?;
    Ok(())
}

/// A batch of client mistakes leaves no ERROR line in the log (s3s used to
/// log each at ERROR with a debug dump); a failure of the server's own (its
/// drives gone) still does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mistakes_are_not_logged_as_errors() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("log");
    c.create_bucket().bucket(&b).send().await?;
    c.put_object()
        .bucket(&b)
        .key("k")
        .body(ByteStream::from_static(b"data"))
        .send()
        .await?;
    expect_err(
        "NoSuchKey",
        c.get_object().bucket(&b).key("missing").send().await,
        404,
        Some("NoSuchKey"),
    )?;
    expect_err(
        "NoSuchBucket",
        c.get_object()
            .bucket("no-such-bucket-here")
            .key("k")
            .send()
            .await,
        404,
        Some("NoSuchBucket"),
    )?;
    let wrong = s.s3_config_with(s.access_key(), "not-the-secret").build();
    expect_err(
        "bad signature",
        aws_sdk_s3::Client::from_conf(wrong)
            .get_object()
            .bucket(&b)
            .key("k")
            .send()
            .await,
        403,
        Some("SignatureDoesNotMatch"),
    )?;
    let rc = s.raw();
    for (target, body) in [
        ("/Bad_Bucket", &b""[..]),
        ("/ab/key", b""),
        (&format!("/{b}?delete") as &str, b"not xml"),
    ] {
        let method = if body.is_empty() { "PUT" } else { "POST" };
        let r = rc.send(method, target, &[], body).await?;
        ensure!(r.status == 400, "{method} {target}: {}", r.describe());
    }
    let r = rc
        .send("GET", &format!("/{b}/k"), &[("range", "bytes=9-")], b"")
        .await?;
    ensure!(r.status == 416, "range past the end: {}", r.describe());
    let log = s.full_log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    ensure!(
        errors.is_empty(),
        "client mistakes logged at ERROR:\n{}",
        errors.join("\n")
    );

    // The server's own failure: three of its four drives gone.
    for d in s.drives().iter().take(3) {
        std::fs::remove_dir_all(d)?;
    }
    let failed = c.get_object().bucket(&b).key("k").send().await;
    ensure!(failed.is_err(), "GET with three drives gone succeeded");
    let log = s.full_log();
    ensure!(
        log.lines()
            .any(|l| l.contains(" ERROR ") && l.contains("request failed") && l.contains("/k")),
        "no ERROR line for a server failure:\n{}",
        s.log()
    );
    Ok(())
}
