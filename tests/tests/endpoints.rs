//! The server's own endpoints (health, metrics, the admin API) live under
//! `/_cairn/`, a name no bucket can have: buckets named `cairn`, `metrics`
//! and `health` are ordinary buckets; the admin API is the root user's;
//! a gateway says it has no admin API; the metrics can require a bearer
//! token and count operations, bytes and usage; risky exposure is warned
//! about at start.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_s3::primitives::ByteStream;
use cairn_tests::data::random_bytes;
use cairn_tests::metrics::{labelled, metric_of};
use cairn_tests::{
    ADMIN_API, HEALTH_LIVE, HEALTH_READY, METRICS, Server, StartOpts, admin, free_port, get_bytes,
    raw,
};

/// Buckets named like the old endpoint paths (`/cairn/admin/v1/`,
/// `/metrics`, `/health/...`) are fully usable through aws-sdk-s3, keys
/// and all; the endpoints answer at their `/_cairn/` paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_named_like_endpoints_are_ordinary_buckets() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let objects: [(&str, &[&str]); 3] = [
        ("cairn", &["admin/v1/info", "admin/v1/heal", "x"]),
        ("metrics", &["m", "admin/v1/info"]),
        ("health", &["live", "ready"]),
    ];
    for (b, keys) in objects {
        c.create_bucket()
            .bucket(b)
            .send()
            .await
            .with_context(|| format!("create bucket {b}"))?;
        for k in keys {
            let body = format!("{b}/{k} body").into_bytes();
            c.put_object()
                .bucket(b)
                .key(*k)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .with_context(|| format!("PUT {b}/{k}"))?;
            let got = get_bytes(&c, b, k).await?;
            ensure!(
                got == body,
                "GET {b}/{k} returned {:?}",
                String::from_utf8_lossy(&got)
            );
        }
        let listed = c.list_objects_v2().bucket(b).send().await?;
        let mut names: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
        names.sort_unstable();
        let mut want = keys.to_vec();
        want.sort_unstable();
        ensure!(names == want, "list of {b}: {names:?}, want {want:?}");
        c.head_bucket().bucket(b).send().await?;
    }
    // A bucket listing: `GET /metrics` and `GET /health` are S3 now.
    let r = s
        .raw()
        .send("GET", "/metrics?list-type=2", &[], b"")
        .await?;
    ensure!(
        r.status == 200 && r.text().contains("<Key>m</Key>"),
        "signed GET /metrics: {}",
        r.describe()
    );
    // Unsigned, the old paths are refused S3 requests, not the endpoints.
    for old in ["/metrics", "/health/live", "/health/ready"] {
        let r = raw::get(&s.addr(), old).await?;
        ensure!(
            r.status == 403 && r.code().as_deref() == Some("AccessDenied"),
            "unsigned GET {old}: {}",
            r.describe()
        );
    }
    // `_cairn` itself is no bucket.
    let r = s.raw().send("PUT", "/_cairn", &[], b"").await?;
    ensure!(
        r.status == 400 && r.code().as_deref() == Some("InvalidBucketName"),
        "PUT /_cairn: {}",
        r.describe()
    );
    let r = s.raw().send("GET", "/_cairn/other", &[], b"").await?;
    ensure!(
        r.status == 400 && r.code().as_deref() == Some("InvalidBucketName"),
        "GET /_cairn/other: {}",
        r.describe()
    );
    // The endpoints at their paths.
    for p in [HEALTH_LIVE, HEALTH_READY] {
        let r = raw::get(&s.addr(), p).await?;
        ensure!(r.status == 200, "GET {p}: {}", r.describe());
    }
    let m = s.metrics_text().await?;
    ensure!(
        metric_of(&m, "cairn_drives_online")? == 4.0,
        "metrics page:\n{m}"
    );
    let out = admin(&s, &["info", "--json"], None).await?;
    ensure!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("deployment_id"),
        "cairn admin info: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A virtual-host request for a key `_cairn/metrics` is S3 too.
    let vh = s.raw().with_host(format!("metrics.localhost:{}", s.port()));
    let r = vh.send("PUT", "/_cairn/metrics", &[], b"a key").await?;
    ensure!(
        r.status == 200,
        "virtual-host PUT _cairn/metrics: {}",
        r.describe()
    );
    ensure!(
        get_bytes(&c, "metrics", "_cairn/metrics").await? == b"a key",
        "virtual-host key _cairn/metrics"
    );
    Ok(())
}

/// The admin API answers the root user's signature only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_is_for_root_only() -> Result<()> {
    let s = Server::start_default().await?;
    let info = format!("{ADMIN_API}info");
    let r = s.raw().send("GET", &info, &[], b"").await?;
    ensure!(
        r.status == 200 && r.text().contains("deployment_id"),
        "root: {}",
        r.describe()
    );
    let r = raw::get(&s.addr(), &info).await?;
    ensure!(
        r.status == 403 && r.code().as_deref() == Some("AccessDenied"),
        "unsigned: {}",
        r.describe()
    );
    let stranger = raw::Client::new(
        s.addr(),
        Some(raw::Creds {
            access_key: "AKSOMEONEELSE".into(),
            secret_key: "another-secret-key".into(),
        }),
    );
    let r = stranger.send("GET", &info, &[], b"").await?;
    ensure!(
        r.status == 403 && r.code().as_deref() == Some("InvalidAccessKeyId"),
        "another identity: {}",
        r.describe()
    );
    let forger = raw::Client::new(
        s.addr(),
        Some(raw::Creds {
            access_key: s.access_key().into(),
            secret_key: "not-the-secret-key".into(),
        }),
    );
    let r = forger
        .send(
            "POST",
            &format!("{ADMIN_API}scanner?enabled=false"),
            &[],
            b"",
        )
        .await?;
    ensure!(
        r.status == 403 && r.code().as_deref() == Some("SignatureDoesNotMatch"),
        "root's key with a wrong secret: {}",
        r.describe()
    );
    let out = admin(&s, &["info"], Some("wrong-password")).await?;
    ensure!(
        !out.status.success(),
        "cairn admin with a wrong password succeeded"
    );
    Ok(())
}

/// `cairn admin` against a gateway says the gateway has no admin API and
/// exits non-zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_against_a_gateway_says_it_has_none() -> Result<()> {
    let share = tempfile::tempdir()?;
    std::fs::create_dir(share.path().join("bkt"))?;
    let gw = Server::start(StartOpts::gateway([
        "nas".to_string(),
        share.path().display().to_string(),
    ]))
    .await?;
    for args in [
        &["info"][..],
        &["heal"],
        &["scanner", "off"],
        &["kms", "status"],
    ] {
        let out = admin(&gw, args, None).await?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && err.contains("gateway") && err.contains("has no admin API"),
            "cairn admin {args:?} against a gateway: {}\nstdout: {}\nstderr: {err}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // The raw answer: 501 with its own code.
    let r = gw
        .raw()
        .send("GET", &format!("{ADMIN_API}info"), &[], b"")
        .await?;
    ensure!(
        r.status == 501 && r.code().as_deref() == Some("NoAdminApi"),
        "gateway admin info: {}",
        r.describe()
    );
    Ok(())
}

/// `--metrics-auth`: 401 without a token, 403 with another; with it, the
/// page counts bytes in and out, requests per S3 operation, each drive's
/// space and each bucket's usage (as the scanner counted it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_and_count_what_happens() -> Result<()> {
    let token = "scrape-token-7f3a";
    let s = Server::start(StartOpts {
        extra_args: vec![
            "--metrics-auth".into(),
            token.into(),
            "--scanner-interval-secs".into(),
            "1".into(),
            "--scanner-pause-ms".into(),
            "0".into(),
        ],
        ..StartOpts::default()
    })
    .await?;
    let r = s.metrics_page(None).await?;
    ensure!(
        r.status == 401
            && r.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer"))
            && !r.text().contains("cairn_"),
        "no token: {}",
        r.describe()
    );
    let r = s.metrics_page(Some("scrape-token-7f3b")).await?;
    ensure!(
        r.status == 403 && !r.text().contains("cairn_"),
        "wrong token: {}",
        r.describe()
    );
    // A SigV4 signature (even the root's) is not the token.
    let r = s.raw().send("GET", METRICS, &[], b"").await?;
    ensure!(r.status == 401, "SigV4-signed scrape: {}", r.describe());
    let scrape = || async {
        let r = s.metrics_page(Some(token)).await?;
        ensure!(r.status == 200, "scrape with the token: {}", r.describe());
        Ok::<_, anyhow::Error>(r.text())
    };
    let op = |text: &str, name: &str| {
        labelled(
            text,
            "cairn_s3_operations_total",
            &[("operation", name), ("status", "2xx")],
        )
        .unwrap_or(0.0)
    };

    let c = s.s3();
    let b = cairn_tests::bucket_name("usage");
    c.create_bucket().bucket(&b).send().await?;
    let before = scrape().await?;
    let n = 1_234_567usize;
    let data = random_bytes(n, 5);
    c.put_object()
        .bucket(&b)
        .key("obj")
        .body(ByteStream::from(data.clone()))
        .send()
        .await?;
    let after_put = scrape().await?;
    let received = metric_of(&after_put, "cairn_s3_received_bytes_total")?
        - metric_of(&before, "cairn_s3_received_bytes_total")?;
    ensure!(
        received >= n as f64 && received < (n + 64 * 1024) as f64,
        "a PUT of {n} bytes moved cairn_s3_received_bytes_total by {received}"
    );
    ensure!(
        op(&after_put, "PutObject") == op(&before, "PutObject") + 1.0,
        "PutObject count: before {} after {}\n{after_put}",
        op(&before, "PutObject"),
        op(&after_put, "PutObject")
    );
    ensure!(
        op(&after_put, "CreateBucket") >= 1.0,
        "no CreateBucket counted:\n{after_put}"
    );
    ensure!(get_bytes(&c, &b, "obj").await? == data, "GET obj");
    let after_get = scrape().await?;
    let sent = metric_of(&after_get, "cairn_s3_sent_bytes_total")?
        - metric_of(&after_put, "cairn_s3_sent_bytes_total")?;
    ensure!(
        sent >= n as f64,
        "a GET of {n} bytes moved cairn_s3_sent_bytes_total by {sent}"
    );
    ensure!(
        op(&after_get, "GetObject") == op(&after_put, "GetObject") + 1.0,
        "GetObject count:\n{after_get}"
    );
    // Each drive's space.
    for d in 0..4 {
        let drive = d.to_string();
        let total = labelled(&after_get, "cairn_drive_total_bytes", &[("drive", &drive)]);
        let free = labelled(&after_get, "cairn_drive_free_bytes", &[("drive", &drive)]);
        let online = labelled(&after_get, "cairn_drive_online", &[("drive", &drive)]);
        ensure!(
            matches!((total, free, online), (Some(t), Some(f), Some(1.0)) if t > 0.0 && f <= t),
            "drive {d}: total {total:?} free {free:?} online {online:?}\n{after_get}"
        );
    }
    // The bucket's usage, once a scanner cycle has counted it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = scrape().await?;
        let bytes = labelled(&text, "cairn_bucket_usage_bytes", &[("bucket", &b)]);
        let objects = labelled(&text, "cairn_bucket_objects", &[("bucket", &b)]);
        if bytes == Some(n as f64) && objects == Some(1.0) {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "bucket {b} usage never showed {n} bytes in 1 object: bytes {bytes:?} objects {objects:?}\n{text}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A second object moves it again.
    c.put_object()
        .bucket(&b)
        .key("small")
        .body(ByteStream::from(vec![7u8; 1000]))
        .send()
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = scrape().await?;
        let bytes = labelled(&text, "cairn_bucket_usage_bytes", &[("bucket", &b)]);
        if bytes == Some((n + 1000) as f64)
            && labelled(&text, "cairn_bucket_objects", &[("bucket", &b)]) == Some(2.0)
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("bucket {b} usage after a second PUT: {bytes:?}\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Waits until the server's log has a line with every one of `parts`.
async fn log_line(s: &Server, parts: &[&str]) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = s.full_log();
        if let Some(l) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return Ok(l.to_owned());
        }
        if Instant::now() > deadline {
            bail!("no log line with {parts:?}:\n{}", s.log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Well-known root credentials set explicitly, and an NFS export open to
/// any host, are warned about at start; loopback and `--nfs-allow` are
/// not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn risky_exposure_is_warned_about_at_start() -> Result<()> {
    // The S3 API on every interface with cairnadmin/cairnadmin set.
    let log = start_and_stop(
        &["--address", &format!("0.0.0.0:{}", free_port()?)],
        ("cairnadmin", "cairnadmin"),
    )
    .await?;
    let line = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("well-known default"))
        .with_context(|| format!("no warning about the well-known password:\n{log}"))?;
    ensure!(
        line.contains("0.0.0.0") && line.contains("root"),
        "the warning names the address and the risk: {line}"
    );
    // The same pair on loopback: no warning (the built-in default is
    // meant for a first try on loopback).
    let log = start_and_stop(
        &["--address", &format!("127.0.0.1:{}", free_port()?)],
        ("cairnadmin", "cairnadmin"),
    )
    .await?;
    ensure!(
        !log.contains("well-known default"),
        "warned on loopback:\n{log}"
    );

    // NFS on every interface without --nfs-allow.
    let s = Server::start(StartOpts {
        extra_args: vec!["--nfs".into(), format!("0.0.0.0:{}", free_port()?)],
        ..StartOpts::default()
    })
    .await?;
    let line = log_line(&s, &["WARN", "AUTH_SYS", "--nfs-allow"]).await?;
    ensure!(line.contains("any host"), "NFS warning: {line}");
    drop(s);
    // With --nfs-allow, or on loopback: no warning.
    for extra in [
        vec![
            "--nfs".to_string(),
            format!("0.0.0.0:{}", free_port()?),
            "--nfs-allow".into(),
            "127.0.0.0/8".into(),
        ],
        vec!["--nfs".to_string(), format!("127.0.0.1:{}", free_port()?)],
    ] {
        let s = Server::start(StartOpts {
            extra_args: extra.clone(),
            ..StartOpts::default()
        })
        .await?;
        ensure!(
            !s.full_log().contains("AUTH_SYS is no authentication"),
            "warned with {extra:?}:\n{}",
            s.log()
        );
    }
    Ok(())
}

/// Starts `cairn server ARGS` over 4 fresh drives with the given root
/// credentials, waits until it is ready, stops it, and returns its output.
async fn start_and_stop(args: &[&str], (user, password): (&str, &str)) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path)?;
    let port = args
        .iter()
        .find_map(|a| a.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()))
        .context("an --address with a port")?;
    let mut cmd = tokio::process::Command::new(cairn_tests::cairn_bin()?);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CAIRN_") {
            cmd.env_remove(&k);
        }
    }
    cmd.arg("server")
        .args(args)
        .args((1..=4).map(|i| dir.path().join(format!("d{i}"))))
        .env("CAIRN_ROOT_USER", user)
        .env("CAIRN_ROOT_PASSWORD", password)
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + cairn_tests::READY_TIMEOUT;
    loop {
        if let Some(st) = child.try_wait()? {
            bail!(
                "cairn server {args:?} exited with {st}:\n{}",
                std::fs::read_to_string(&log_path)?
            );
        }
        if let Ok(r) = raw::get(&format!("127.0.0.1:{port}"), HEALTH_READY).await
            && r.status == 200
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "cairn server {args:?} not ready:\n{}",
                std::fs::read_to_string(&log_path)?
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().await?;
    Ok(std::fs::read_to_string(&log_path)?)
}
