//! The binary itself: health, signals, restart, drive naming, on-disk layout.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use aws_sdk_s3::primitives::ByteStream;
use cairn_tests::data::{MIB, random_bytes, same_bytes};
use cairn_tests::{Server, StartOpts, bucket_name, raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_and_sigterm_exits_cleanly() -> Result<()> {
    let mut s = Server::start_default().await?;
    for p in ["/_cairn/health/live", "/_cairn/health/ready"] {
        let r = raw::get(&s.addr(), p).await?;
        ensure!(r.status == 200, "GET {p}: {}", r.describe());
    }
    let st = s.terminate(Duration::from_secs(15)).await?;
    ensure!(
        st.code() == Some(0),
        "exit status after SIGTERM: {st}\n{}",
        s.log()
    );
    s.restart().await?;
    let st = s.signal("INT", Duration::from_secs(15)).await?;
    ensure!(
        st.code() == Some(0),
        "exit status after SIGINT: {st}\n{}",
        s.log()
    );
    Ok(())
}

/// The README's first command: no drives and no credentials given. The
/// server makes 4 drives under ./cairn-data, serves S3 with the built-in
/// default credentials on loopback, and says so; a wrong secret is still
/// refused. The same defaults on a non-loopback address are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_default_serves_on_loopback_only() -> Result<()> {
    let s = Server::start(StartOpts {
        embedded: true,
        ..StartOpts::default()
    })
    .await?;
    let log = s.log();
    ensure!(
        log.contains("built-in default credentials") && log.contains("./cairn-data"),
        "the server must say it serves the embedded default with default credentials:\n{log}"
    );
    for d in s.drives() {
        ensure!(
            d.join(".cairn.sys/format.json").is_file(),
            "{} has no format.json",
            d.display()
        );
    }
    let c = s.s3();
    let b = bucket_name("embedded");
    c.create_bucket().bucket(&b).send().await?;
    let data = random_bytes(3 * MIB + 1, 3);
    c.put_object()
        .bucket(&b)
        .key("k")
        .body(ByteStream::from(data.clone()))
        .send()
        .await?;
    let got = c.get_object().bucket(&b).key("k").send().await?;
    same_bytes("GET", &got.body.collect().await?.into_bytes(), &data)?;
    let wrong = aws_sdk_s3::Client::from_conf(
        s.s3_config_with(cairn_tests::DEFAULT_USER, "not-the-password")
            .build(),
    );
    let e = wrong
        .list_buckets()
        .send()
        .await
        .err()
        .context("a wrong secret must be refused")?;
    ensure!(
        cairn_tests::err_code(&e) == "SignatureDoesNotMatch",
        "{}",
        cairn_tests::err_code(&e)
    );

    // beyond loopback the built-in pair is refused at start
    let dir = tempfile::tempdir()?;
    let mut cmd = std::process::Command::new(cairn_tests::cairn_bin()?);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CAIRN_") {
            cmd.env_remove(&k);
        }
    }
    let out = cmd
        .args(["server", "--address", "0.0.0.0:0"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .context("running cairn server on 0.0.0.0")?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("not a loopback address"),
        "default credentials on 0.0.0.0: {} {err}",
        out.status
    );
    ensure!(
        !dir.path().join("cairn-data").exists(),
        "a refused start must not make drives"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_restarts() -> Result<()> {
    let mut s = Server::start_default().await?;
    let b = bucket_name("persist");
    let c = s.s3();
    c.create_bucket().bucket(&b).send().await?;
    let big = random_bytes(3 * MIB, 1);
    for (k, d) in [("small", &b"small"[..]), ("big", &big[..])] {
        c.put_object()
            .bucket(&b)
            .key(k)
            .body(ByteStream::from(d.to_vec()))
            .metadata("k", k)
            .send()
            .await?;
    }
    s.terminate(Duration::from_secs(15)).await?;
    s.restart().await?;
    s.restart().await?; // and after a SIGKILL
    let c = s.s3();
    c.head_bucket()
        .bucket(&b)
        .send()
        .await
        .context("bucket after restart")?;
    for (k, d) in [("small", &b"small"[..]), ("big", &big[..])] {
        let r = c.get_object().bucket(&b).key(k).send().await?;
        ensure!(r.metadata().and_then(|m| m.get("k")).map(String::as_str) == Some(k));
        same_bytes(k, &r.body.collect().await?.into_bytes(), d)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ellipsis_drives_and_on_disk_layout() -> Result<()> {
    let s = Server::start(StartOpts {
        ellipsis: true,
        ..StartOpts::default()
    })
    .await?;
    for d in s.drives() {
        let f = d.join(".cairn.sys/format.json");
        ensure!(
            f.is_file(),
            "{} missing (drives from d{{1...4}})",
            f.display()
        );
    }
    let b = bucket_name("layout");
    let c = s.s3();
    c.create_bucket().bucket(&b).send().await?;
    c.put_object()
        .bucket(&b)
        .key("a/b.txt")
        .body(ByteStream::from(random_bytes(3 * MIB, 2)))
        .send()
        .await?;
    c.put_object()
        .bucket(&b)
        .key("tiny")
        .body(ByteStream::from_static(b"tiny"))
        .send()
        .await?;
    // 3 MiB, 2+2: each drive holds 3 blocks of (32-byte hash + 512 KiB shard)
    let want_len = 3 * (32 + 512 * 1024) as u64;
    for d in s.drives() {
        let obj = d.join(&b).join("a/b.txt");
        ensure!(
            obj.join("cairn.meta").is_file(),
            "{} has no cairn.meta",
            obj.display()
        );
        let data_dirs: Vec<_> = std::fs::read_dir(&obj)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("cairn.data."))
            .collect();
        ensure!(
            data_dirs.len() == 1,
            "{}: data dirs {:?}",
            obj.display(),
            data_dirs.len()
        );
        let part = data_dirs[0].path().join("part.1");
        let len = std::fs::metadata(&part)
            .with_context(|| format!("{}", part.display()))?
            .len();
        ensure!(
            len == want_len,
            "{}: {len} bytes, want {want_len}",
            part.display()
        );
        let tiny = d.join(&b).join("tiny");
        let entries: Vec<String> = std::fs::read_dir(&tiny)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        ensure!(
            entries == ["cairn.meta"],
            "inline object folder {}: {entries:?}",
            tiny.display()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parity_flag_6_drives_m3() -> Result<()> {
    let s = Server::start(StartOpts {
        drives: 6,
        parity: Some(3),
        ..StartOpts::default()
    })
    .await?;
    let b = bucket_name("par");
    let c = s.s3();
    c.create_bucket().bucket(&b).send().await?;
    let data = random_bytes(3 * MIB + 5, 3);
    c.put_object()
        .bucket(&b)
        .key("o")
        .body(ByteStream::from(data.clone()))
        .send()
        .await?;
    for d in &s.drives()[..3] {
        std::fs::remove_dir_all(d)?;
    }
    let r = c
        .get_object()
        .bucket(&b)
        .key("o")
        .send()
        .await
        .context("GET with 3 of 6 drives gone, --parity 3")?;
    same_bytes(
        "3+3 with 3 lost",
        &r.body.collect().await?.into_bytes(),
        &data,
    )?;
    Ok(())
}

/// `cairn server ARGS` in a fresh folder with the credentials set (no
/// inherited CAIRN_ variable), its output in `log`.
fn cairn_server(
    dir: &std::path::Path,
    args: &[&str],
    log: &std::path::Path,
) -> Result<std::process::Child> {
    let mut cmd = std::process::Command::new(cairn_tests::cairn_bin()?);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CAIRN_") {
            cmd.env_remove(&k);
        }
    }
    let out = std::fs::File::create(log)?;
    cmd.arg("server")
        .args(args)
        .env("CAIRN_ROOT_USER", "addrtest")
        .env("CAIRN_ROOT_PASSWORD", "addrtest-password")
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("spawning cairn server")
}

/// Waits up to 20 s for `child` to exit; kills it if it does not.
async fn exit_within(child: &mut std::process::Child) -> Result<Option<std::process::ExitStatus>> {
    for _ in 0..200 {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill()?;
    child.wait()?;
    Ok(None)
}

/// MinIO's `--address :PORT` listens on every interface at PORT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_port_only_means_every_interface() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let port = cairn_tests::free_port()?;
    let log = dir.path().join("server.log");
    let mut child = cairn_server(
        dir.path(),
        &["--address", &format!(":{port}"), "d1", "d2", "d3", "d4"],
        &log,
    )?;
    let mut ready = false;
    for _ in 0..200 {
        if child.try_wait()?.is_some() {
            break;
        }
        if raw::get(&format!("127.0.0.1:{port}"), "/_cairn/health/ready")
            .await
            .is_ok_and(|r| r.status == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    ensure!(
        ready,
        "--address :{port} did not serve on 127.0.0.1:{port}:\n{out}"
    );
    ensure!(
        out.contains(&format!("0.0.0.0:{port}")),
        "the server must say it listens on every interface:\n{out}"
    );
    Ok(())
}

/// `--nfs` needs its address: a bare `--nfs` is refused with a message
/// instead of starting an export nobody asked for at 2049 (its optional
/// value took the next argument, a drive, for an address).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nfs_flag_requires_its_address() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("server.log");
    let port = cairn_tests::free_port()?;
    let mut child = cairn_server(
        dir.path(),
        &[
            "--address",
            &format!("127.0.0.1:{port}"),
            "d1",
            "d2",
            "d3",
            "d4",
            "--nfs",
        ],
        &log,
    )?;
    let st = exit_within(&mut child).await?;
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    ensure!(
        st.is_some_and(|s| !s.success()) && out.contains("a value is required for '--nfs"),
        "a bare --nfs must be refused (exit {st:?}):\n{out}"
    );
    ensure!(
        !dir.path().join("d1").exists(),
        "a refused start must not make drives"
    );
    Ok(())
}
