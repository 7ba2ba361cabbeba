//! The audit log (`--audit-log PATH|-`): one JSON object per request on
//! the S3 port, apart from the server log. Driven by aws-sdk-s3, awscli
//! (`aws iam`, `aws sts`), `cairn admin` and raw requests: the root
//! user's PUT and GET, a user refused by its policy, an IAM call, an STS
//! session, admin API calls, a bad signature, an anonymous request, a key
//! with a newline and a quote; none of the secrets (secret keys, the
//! session token) in the file; the file reopened on SIGHUP; `-` writing
//! to stdout with the server log off.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use aws_credential_types::Credentials;
use aws_sdk_s3::operation::RequestId as _;
use aws_sdk_s3::primitives::ByteStream;
use cairn_tests::cmd::{require_tool, run_status};
use cairn_tests::{Server, StartOpts, bucket_name, err_code, get_bytes};
use serde_json::Value;

/// The audit lines of `text`: every whole line must be one JSON object.
fn lines(text: &str) -> Result<Vec<Value>> {
    let whole = text.rfind('\n').map_or("", |i| &text[..i]);
    whole
        .lines()
        .map(|l| serde_json::from_str(l).with_context(|| format!("not a JSON line: {l:?}")))
        .collect()
}

/// Waits (up to 10 s: lines are flushed within a second) for the line
/// `pick` chooses in the file at `path`.
async fn line_in(path: &Path, what: &str, pick: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(v) = lines(&text)?.into_iter().find(|v| pick(v)) {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("no audit line for {what} in {}:\n{text}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `aws ARGS` against the server with these credentials; its JSON output.
fn aws(s: &Server, creds: Option<(&str, &str)>, args: &[&str]) -> Result<Value> {
    let ep = s.endpoint();
    let mut c = s.tool("aws");
    c.args(args)
        .args(["--endpoint-url", &ep, "--output", "json"]);
    if let Some((k, sk)) = creds {
        c.env("AWS_ACCESS_KEY_ID", k)
            .env("AWS_SECRET_ACCESS_KEY", sk);
    }
    let out = run_status(&mut c)?;
    ensure!(
        out.status.success(),
        "aws {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn client(s: &Server, ak: &str, sk: &str, token: Option<&str>) -> aws_sdk_s3::Client {
    let conf = s
        .s3_config()
        .credentials_provider(Credentials::new(
            ak,
            sk,
            token.map(str::to_owned),
            None,
            "audit-test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn is(v: &Value, id: &str) -> bool {
    v["request_id"] == id
}

/// Every kind of request gets its line with who, what, on what and how
/// it ended; no secret is in the file; SIGHUP reopens it after a rename.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_has_its_audit_line() -> Result<()> {
    require_tool("aws")?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.log");
    let s = Server::start(StartOpts {
        extra_args: vec!["--audit-log".into(), path.display().to_string()],
        ..StartOpts::default()
    })
    .await?;
    let root = s.s3();
    let b = bucket_name("audit");
    root.create_bucket().bucket(&b).send().await?;

    // the root user's PUT and GET
    let body = b"hello, audit".to_vec();
    let put = root
        .put_object()
        .bucket(&b)
        .key("k")
        .body(ByteStream::from(body.clone()))
        .send()
        .await?;
    let put_id = put.request_id().context("PUT request id")?.to_owned();
    let got = root.get_object().bucket(&b).key("k").send().await?;
    let get_id = got.request_id().context("GET request id")?.to_owned();
    got.body.collect().await?;
    let v = line_in(&path, "root PUT", |v| is(v, &put_id)).await?;
    assert_eq!(v["identity"]["type"], "root", "{v}");
    assert_eq!(v["identity"]["access_key"], s.access_key(), "{v}");
    assert_eq!(v["action"], "s3:PutObject", "{v}");
    assert_eq!(v["resource"], format!("arn:aws:s3:::{b}/k"), "{v}");
    assert_eq!(v["result"]["status"], 200, "{v}");
    assert_eq!(v["result"]["decision"], "allow", "{v}");
    assert!(v["result"]["error"].is_null(), "{v}");
    assert!(v["bytes_in"].as_u64() >= Some(body.len() as u64), "{v}");
    assert!(
        v["source"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{v}"
    );
    assert!(
        v["user_agent"].as_str().is_some_and(|u| !u.is_empty()),
        "{v}"
    );
    assert!(v["duration_ms"].as_f64().is_some(), "{v}");
    let t = v["time"].as_str().context("time")?;
    ensure!(
        t.len() == 24 && t.ends_with('Z') && t.as_bytes()[19] == b'.',
        "time {t}"
    );
    let v = line_in(&path, "root GET", |v| is(v, &get_id)).await?;
    assert_eq!(v["action"], "s3:GetObject", "{v}");
    assert_eq!(v["bytes_out"], body.len() as u64, "{v}");

    // an IAM call: a user whose policy allows reading the bucket only
    let user = aws(&s, None, &["iam", "create-user", "--user-name", "alice"])?;
    let user_arn = user["User"]["Arn"].as_str().context("user ARN")?.to_owned();
    let v = line_in(&path, "iam:CreateUser", |v| v["action"] == "iam:CreateUser").await?;
    assert_eq!(v["identity"]["type"], "root", "{v}");
    assert_eq!(v["resource"], user_arn, "{v}");
    assert_eq!(v["result"]["status"], 200, "{v}");
    assert_eq!(v["result"]["decision"], "allow", "{v}");
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::{b}/*"]}}]}}"#
    );
    aws(
        &s,
        None,
        &[
            "iam",
            "put-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "read",
            "--policy-document",
            &policy,
        ],
    )?;
    let key = aws(
        &s,
        None,
        &["iam", "create-access-key", "--user-name", "alice"],
    )?;
    let ak = key["AccessKey"]["AccessKeyId"]
        .as_str()
        .context("key id")?
        .to_owned();
    let sk = key["AccessKey"]["SecretAccessKey"]
        .as_str()
        .context("secret")?
        .to_owned();

    // the user refused by its policy
    let alice = client(&s, &ak, &sk, None);
    let e = alice
        .put_object()
        .bucket(&b)
        .key("nope")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("alice may not write");
    assert_eq!(err_code(&e), "AccessDenied");
    let v = line_in(&path, "alice's refused PUT", |v| {
        v["identity"]["access_key"] == ak.as_str() && v["action"] == "s3:PutObject"
    })
    .await?;
    assert_eq!(v["identity"]["type"], "user", "{v}");
    assert_eq!(v["identity"]["user"], "alice", "{v}");
    assert_eq!(v["identity"]["arn"], user_arn, "{v}");
    assert_eq!(v["resource"], format!("arn:aws:s3:::{b}/nope"), "{v}");
    assert_eq!(v["result"]["status"], 403, "{v}");
    assert_eq!(v["result"]["error"], "AccessDenied", "{v}");
    assert_eq!(v["result"]["decision"], "deny", "{v}");

    // an STS session of alice's, reading: its secret and token never written
    let sess = aws(
        &s,
        Some((&ak, &sk)),
        &[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::123456789012:role/any",
            "--role-session-name",
            "audit-1",
        ],
    )?;
    let c = &sess["Credentials"];
    let (sak, ssk, token) = (
        c["AccessKeyId"].as_str().context("session key")?.to_owned(),
        c["SecretAccessKey"]
            .as_str()
            .context("session secret")?
            .to_owned(),
        c["SessionToken"]
            .as_str()
            .context("session token")?
            .to_owned(),
    );
    let read = client(&s, &sak, &ssk, Some(&token));
    assert_eq!(get_bytes(&read, &b, "k").await?, body);
    let v = line_in(&path, "the session's GET", |v| {
        v["identity"]["access_key"] == sak.as_str()
    })
    .await?;
    assert_eq!(v["identity"]["type"], "sts-session", "{v}");
    assert_eq!(v["identity"]["parent"], "alice", "{v}");
    assert_eq!(v["action"], "s3:GetObject", "{v}");
    assert_eq!(v["result"]["decision"], "allow", "{v}");

    // a bad signature: the claimed key, unauthenticated
    let forger = client(&s, s.access_key(), "not-the-secret", None);
    let e = forger
        .get_object()
        .bucket(&b)
        .key("k")
        .send()
        .await
        .expect_err("bad signature");
    assert_eq!(err_code(&e), "SignatureDoesNotMatch");
    let v = line_in(&path, "the bad signature", |v| {
        v["result"]["error"] == "SignatureDoesNotMatch"
    })
    .await?;
    assert_eq!(v["identity"]["type"], "unauthenticated", "{v}");
    assert_eq!(v["identity"]["access_key"], s.access_key(), "{v}");
    assert_eq!(v["result"]["status"], 403, "{v}");
    assert_eq!(v["result"]["decision"], "n/a", "{v}");

    // an anonymous request, refused (no bucket policy grants it)
    let r = cairn_tests::raw::get(&s.addr(), &format!("/{b}/k")).await?;
    assert_eq!(r.status, 403, "{}", r.describe());
    let anon_id = r
        .header("x-amz-request-id")
        .context("request id")?
        .to_owned();
    let v = line_in(&path, "the anonymous GET", |v| is(v, &anon_id)).await?;
    assert_eq!(v["identity"]["type"], "anonymous", "{v}");
    assert!(v["identity"]["access_key"].is_null(), "{v}");
    assert_eq!(v["action"], "s3:GetObject", "{v}");
    assert_eq!(v["result"]["decision"], "deny", "{v}");
    assert_eq!(v["result"]["error"], "AccessDenied", "{v}");

    // the admin API: the root user's call, and alice's refused one
    let out = cairn_tests::admin(&s, &["info"], None).await?;
    ensure!(out.status.success(), "cairn admin info: {out:?}");
    let v = line_in(&path, "admin info", |v| v["action"] == "admin:info").await?;
    assert_eq!(v["identity"]["type"], "root", "{v}");
    assert_eq!(v["result"]["decision"], "allow", "{v}");
    assert_eq!(v["result"]["status"], 200, "{v}");
    let creds = cairn_tests::raw::Creds {
        access_key: ak.clone(),
        secret_key: sk.clone(),
    };
    let r = cairn_tests::raw::Client::new(s.addr(), Some(creds))
        .send("GET", "/_cairn/admin/v1/info", &[], b"")
        .await?;
    assert_eq!(r.status, 403, "{}", r.describe());
    let v = line_in(&path, "alice's admin call", |v| {
        v["action"] == "admin:info" && v["identity"]["access_key"] == ak.as_str()
    })
    .await?;
    assert_eq!(v["identity"]["user"], "alice", "{v}");
    assert_eq!(v["result"]["decision"], "deny", "{v}");
    assert_eq!(v["result"]["error"], "AccessDenied", "{v}");

    // a key with a newline and quotes stays one line, written as it is
    let odd = "line\nbreak \"quoted\" }";
    root.put_object()
        .bucket(&b)
        .key(odd)
        .body(ByteStream::from_static(b"odd"))
        .send()
        .await?;
    let v = line_in(&path, "the odd key", |v| {
        v["resource"] == format!("arn:aws:s3:::{b}/{odd}")
    })
    .await?;
    assert_eq!(v["result"]["status"], 200, "{v}");

    // SIGHUP after a rename (logrotate): new lines go to a new file
    let rotated = dir.path().join("audit.log.1");
    std::fs::rename(&path, &rotated)?;
    let pid = s.pid().context("server pid")?;
    let st = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()?;
    ensure!(st.success(), "kill -HUP failed");
    // requests until one shows in the new file (the signal is handled
    // at once; a line is flushed within a second)
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = Vec::new();
    let head_id = loop {
        let h = root.head_bucket().bucket(&b).send().await?;
        sent.push(h.request_id().context("HEAD request id")?.to_owned());
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(id) = sent.iter().find(|id| text.contains(id.as_str())) {
            break id.clone();
        }
        ensure!(
            Instant::now() < deadline,
            "no line in a new audit file after SIGHUP: {text:?}; server log:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let v = line_in(&path, "HeadBucket after SIGHUP", |v| is(v, &head_id)).await?;
    assert_eq!(v["action"], "s3:ListBucket", "{v}");

    // no secret anywhere: neither file, every line whole JSON
    let mut all = std::fs::read_to_string(&rotated)?;
    all.push_str(&std::fs::read_to_string(&path)?);
    lines(&all)?;
    for (what, secret) in [
        ("the root secret", s.secret_key()),
        ("alice's secret", sk.as_str()),
        ("the session secret", ssk.as_str()),
        ("the session token", token.as_str()),
    ] {
        ensure!(!all.contains(secret), "{what} is in the audit log");
    }
    ensure!(
        !all.contains("Signature="),
        "a signature is in the audit log"
    );
    Ok(())
}

/// `--audit-log -` writes the lines to stdout, and they are there with
/// the server log turned off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_audit_survives_the_log_being_off() -> Result<()> {
    let s = Server::start(StartOpts {
        extra_args: vec!["--audit-log".into(), "-".into()],
        env: vec![("CAIRN_LOG".into(), "off".into())],
        ..StartOpts::default()
    })
    .await?;
    let b = bucket_name("audit-out");
    let made = s.s3().create_bucket().bucket(&b).send().await?;
    let _ = made;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = s.full_log();
        let found = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["action"] == "s3:CreateBucket");
        if let Some(v) = found {
            assert_eq!(v["resource"], format!("arn:aws:s3:::{b}"), "{v}");
            assert_eq!(v["identity"]["type"], "root", "{v}");
            assert_eq!(v["result"]["status"], 200, "{v}");
            // the server log is off: only audit lines on the output
            ensure!(!log.contains("S3 front listening"), "server log on:\n{log}");
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no CreateBucket audit line on stdout:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
