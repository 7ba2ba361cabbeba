//! HTTPS on the S3 port (`--certs-dir`): real clients (awscli, rclone,
//! boto3, curl, s3fs) trusting a CA made in the test, certificates chosen
//! by SNI, reloaded while serving, plain HTTP refused unless allowed, SSE-C
//! accepted over TLS from another address, and the connection limits
//! holding for TLS connections.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use cairn_tests::tls::{KeyKind, TestCa, https_get, https_get_alpn, leaf_of};
use cairn_tests::{Certs, Server, StartOpts, bucket_name, raw, require_tool, run, run_status};

/// How long a changed certificate may take to be served (polled every 2 s,
/// loaded once stable).
const RELOAD_WITHIN: Duration = Duration::from_secs(20);

/// A CA and a certificates folder whose default certificate is valid for
/// 127.0.0.1 (and `extra_ips`), of key kind `kind`.
fn setup(dir: &Path, kind: KeyKind, extra_ips: &[&str]) -> Result<(TestCa, Certs)> {
    let ca = TestCa::new(&dir.join("ca"))?;
    let certs = dir.join("certs");
    let mut ips = vec!["127.0.0.1"];
    ips.extend_from_slice(extra_ips);
    ca.issue(&certs, &["localhost"], &ips, kind)?;
    let c = Certs {
        dir: certs,
        ca: ca.cert_path(),
    };
    Ok((ca, c))
}

async fn start(certs: &Certs, extra: &[&str]) -> Result<Server> {
    Server::start(StartOpts {
        certs: Some(certs.clone()),
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..StartOpts::default()
    })
    .await
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// boto3 (botocore's urllib3 over OpenSSL) running `body` with `s3`, a
/// client for `endpoint` verifying against `verify` (a CA file path).
fn boto3(s: &Server, endpoint: &str, verify: &Path, body: &str) -> Result<String> {
    let script = format!(
        "import boto3, botocore, sys\n\
         from botocore.config import Config\n\
         s3 = boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1',\n\
             aws_access_key_id='{}', aws_secret_access_key='{}', verify='{}',\n\
             config=Config(s3={{'addressing_style': 'path'}}, retries={{'max_attempts': 1}}))\n\
         {body}\n",
        s.access_key(),
        s.secret_key(),
        verify.display()
    );
    let out = run(s.tool("python3").arg("-c").arg(script))?;
    Ok(stdout(&out))
}

/// awscli, boto3, rclone and curl over HTTPS trusting the test CA;
/// without the CA the clients refuse the server; plain HTTP to the port is
/// answered 400 "use https"; HTTP/2 is negotiated by ALPN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_work_over_https_and_plain_http_is_refused() -> Result<()> {
    require_tool("aws")?;
    require_tool("rclone")?;
    require_tool("curl")?;
    let work = tempfile::tempdir()?;
    let (_ca, certs) = setup(work.path(), KeyKind::RsaPkcs1, &[])?;
    let s = start(&certs, &[]).await?;
    ensure!(
        s.full_log()
            .contains(&format!("S3 API on https://{}", s.addr())),
        "start-up line: {}",
        s.log()
    );
    let ep = s.endpoint();
    ensure!(ep.starts_with("https://"));
    let ca = certs.ca.to_str().context("ca path")?;
    let b = bucket_name("tls");
    let file = work.path().join("f.bin");
    let data = cairn_tests::data::random_bytes(300_000, 7);
    std::fs::write(&file, &data)?;

    // awscli: --ca-bundle
    let aws = |args: &[&str]| {
        let mut c = s.tool("aws");
        c.args(["--endpoint-url", &ep, "--ca-bundle", ca])
            .args(args);
        c
    };
    run(&mut aws(&["s3", "mb", &format!("s3://{b}")]))?;
    run(&mut aws(&[
        "s3",
        "cp",
        file.to_str().context("path")?,
        &format!("s3://{b}/aws.bin"),
    ]))?;
    let ls = stdout(&run(&mut aws(&["s3", "ls", &format!("s3://{b}/")]))?);
    ensure!(ls.contains("aws.bin") && ls.contains("300000"), "ls: {ls}");
    let back = work.path().join("back.bin");
    run(&mut aws(&[
        "s3",
        "cp",
        &format!("s3://{b}/aws.bin"),
        back.to_str().context("path")?,
    ]))?;
    ensure!(std::fs::read(&back)? == data, "awscli got other bytes");
    // without the CA: certificate verification fails
    let out = run_status(s.tool("aws").args(["--endpoint-url", &ep, "s3", "ls"]))?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("SSL"),
        "awscli without the CA: {err}"
    );

    // boto3: verify=CA
    let listed = boto3(
        &s,
        &ep,
        &certs.ca,
        &format!(
            "s3.put_object(Bucket='{b}', Key='boto.txt', Body=b'over tls')\n\
             print(s3.get_object(Bucket='{b}', Key='boto.txt')['Body'].read().decode())\n\
             print(sorted(o['Key'] for o in s3.list_objects_v2(Bucket='{b}')['Contents']))"
        ),
    )?;
    ensure!(
        listed.contains("over tls") && listed.contains("['aws.bin', 'boto.txt']"),
        "boto3: {listed}"
    );

    // rclone: --ca-cert
    let rclone = |args: &[&str]| {
        let mut c = s.tool("rclone");
        c.args(["--ca-cert", ca, "--retries", "1"]).args(args);
        c
    };
    run(&mut rclone(&[
        "copyto",
        file.to_str().context("path")?,
        &format!("cairn:{b}/rclone.bin"),
    ]))?;
    let lsf = stdout(&run(&mut rclone(&["lsf", &format!("cairn:{b}")]))?);
    ensure!(
        lsf.lines().collect::<Vec<_>>() == ["aws.bin", "boto.txt", "rclone.bin"],
        "rclone lsf: {lsf}"
    );
    let cat = run(&mut rclone(&["cat", &format!("cairn:{b}/rclone.bin")]))?;
    ensure!(cat.stdout == data, "rclone cat got other bytes");

    // curl: HTTP/2 by ALPN
    let out = run(Command::new("curl")
        .args(["-sS", "--http2", "--cacert", ca, "-o", "/dev/null"])
        .args(["-w", "%{http_version} %{http_code}"])
        .arg(format!("{ep}/_cairn/health/live")))?;
    ensure!(stdout(&out) == "2 200", "curl --http2: {}", stdout(&out));
    let ex = https_get_alpn(
        &s.addr(),
        "127.0.0.1",
        &certs.ca,
        "/_cairn/health/live",
        &[b"h2", b"http/1.1"],
    )
    .await?;
    ensure!(
        ex.alpn.as_deref() == Some(&b"h2"[..]),
        "ALPN: {:?}",
        ex.alpn
    );

    // cairn admin: --ca-bundle; without it the certificate is refused
    let out =
        cairn_tests::admin(&s, &["--ca-bundle", ca, "user", "add", "tls-admin"], None).await?;
    ensure!(
        out.status.success(),
        "cairn admin over https: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cairn_tests::admin(&s, &["--ca-bundle", ca, "user", "list", "--json"], None).await?;
    ensure!(
        out.status.success() && stdout(&out).contains("tls-admin"),
        "cairn admin user list: {} {}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cairn_tests::admin(&s, &["user", "list"], None).await?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.to_lowercase().contains("certificate"),
        "cairn admin without the CA: {err}"
    );

    // plain HTTP to the HTTPS-only port: 400, saying to use https
    let r = raw::get(&s.addr(), "/_cairn/health/live").await?;
    ensure!(
        r.status == 400 && r.text().contains("use https://"),
        "plain HTTP: {}",
        r.describe()
    );
    let r = s
        .raw()
        .send("GET", &format!("/{b}/aws.bin"), &[], b"")
        .await?;
    ensure!(r.status == 400, "signed plain GET: {}", r.describe());
    ensure!(
        !s.full_log().contains("ERROR"),
        "errors logged: {}",
        s.log()
    );
    Ok(())
}

/// Each name gets its own certificate: exact names and wildcards from the
/// subdirectories, the default one without SNI or for a name no
/// certificate has; RSA (PKCS#1, PKCS#8), ECDSA (SEC1) and Ed25519 keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_chooses_the_certificate_by_name() -> Result<()> {
    require_tool("openssl")?;
    let work = tempfile::tempdir()?;
    let (ca, certs) = setup(work.path(), KeyKind::EcSec1, &[])?;
    ca.issue(
        &certs.dir.join("one"),
        &["one.test"],
        &[],
        KeyKind::RsaPkcs8,
    )?;
    ca.issue(
        &certs.dir.join("wild"),
        &["*.wild.test"],
        &[],
        KeyKind::Ed25519,
    )?;
    ca.issue(
        &certs.dir.join("two"),
        &["two.test", "alias.test"],
        &[],
        KeyKind::RsaPkcs1,
    )?;
    let s = start(&certs, &[]).await?;
    let leaf = |d: &str| leaf_of(&certs.dir.join(d).join("public.crt"));
    let default = leaf_of(&certs.dir.join("public.crt"))?;
    for (name, want) in [
        ("one.test", leaf("one")?),
        ("ONE.test", leaf("one")?),
        ("a.wild.test", leaf("wild")?),
        ("two.test", leaf("two")?),
        ("alias.test", leaf("two")?),
        ("127.0.0.1", default.clone()),
        ("localhost", default.clone()),
    ] {
        let ex = https_get(&s.addr(), name, &certs.ca, "/_cairn/health/live").await?;
        ensure!(ex.leaf == want, "{name}: another certificate was served");
        ensure!(
            ex.response.status == 200,
            "{name}: {}",
            ex.response.describe()
        );
    }
    // names no certificate has (a wildcard covers one label only): the
    // default certificate (openssl s_client shows it, verification aside)
    for name in ["other.test", "b.a.wild.test", "wild.test"] {
        let got = s_client_leaf(&s.addr(), name)?;
        ensure!(got == default, "{name}: not the default certificate");
    }
    Ok(())
}

/// The server certificate `openssl s_client` is shown for `name` (DER).
fn s_client_leaf(addr: &str, name: &str) -> Result<Vec<u8>> {
    let out = run_status(
        Command::new("openssl")
            .args(["s_client", "-connect", addr, "-servername", name])
            .stdin(std::process::Stdio::null()),
    )?;
    let text = stdout(&out);
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .with_context(|| format!("s_client {name}: no certificate: {text}"))?;
    let end = text[begin..]
        .find("-----END CERTIFICATE-----")
        .context("s_client: unterminated certificate")?;
    let pem = &text[begin..begin + end + "-----END CERTIFICATE-----".len()];
    let f = tempfile::NamedTempFile::new()?;
    std::fs::write(f.path(), pem)?;
    leaf_of(f.path())
}

/// The certificate the default name (no SNI) gets now.
async fn served(s: &Server, certs: &Certs, name: &str) -> Result<Vec<u8>> {
    Ok(https_get(&s.addr(), name, &certs.ca, "/_cairn/health/live")
        .await?
        .leaf)
}

async fn wait_served(s: &Server, certs: &Certs, name: &str, want: &[u8]) -> Result<()> {
    let t = Instant::now();
    loop {
        if served(s, certs, name).await.ok().as_deref() == Some(want) {
            return Ok(());
        }
        if t.elapsed() > RELOAD_WITHIN {
            bail!(
                "{name}: the new certificate is not served after {RELOAD_WITHIN:?}; log:\n{}",
                s.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Replaced certificate files are served to new connections without a
/// restart; a broken replacement keeps the previous certificate and is
/// logged once as an ERROR; a new subdirectory is picked up; SIGHUP
/// reloads (and does not stop the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_without_restart() -> Result<()> {
    let work = tempfile::tempdir()?;
    let (ca, certs) = setup(work.path(), KeyKind::EcSec1, &[])?;
    let mut s = start(&certs, &[]).await?;
    let first = leaf_of(&certs.dir.join("public.crt"))?;
    ensure!(served(&s, &certs, "127.0.0.1").await? == first);

    // replaced: a new connection gets the new one
    ca.issue(
        &certs.dir,
        &["localhost"],
        &["127.0.0.1"],
        KeyKind::RsaPkcs8,
    )?;
    let second = leaf_of(&certs.dir.join("public.crt"))?;
    ensure!(second != first);
    wait_served(&s, &certs, "127.0.0.1", &second).await?;
    ensure!(s.full_log().contains("certificate reloaded"), "{}", s.log());

    // a broken key: the previous pair stays, one ERROR for the change
    std::fs::write(
        certs.dir.join("private.key"),
        b"-----BEGIN PRIVATE KEY-----\ntruncat",
    )?;
    tokio::time::sleep(Duration::from_secs(7)).await;
    ensure!(served(&s, &certs, "127.0.0.1").await? == second);
    let errors = s
        .full_log()
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("cannot be loaded"))
        .count();
    ensure!(
        errors == 1,
        "{errors} errors for one broken change:\n{}",
        s.log()
    );

    // a new subdirectory, then SIGHUP for the fixed default pair
    ca.issue(
        &certs.dir.join("late"),
        &["late.test"],
        &[],
        KeyKind::EcSec1,
    )?;
    wait_served(
        &s,
        &certs,
        "late.test",
        &leaf_of(&certs.dir.join("late/public.crt"))?,
    )
    .await?;
    ca.issue(&certs.dir, &["localhost"], &["127.0.0.1"], KeyKind::Ed25519)?;
    let third = leaf_of(&certs.dir.join("public.crt"))?;
    let pid = s.pid().context("pid")?;
    run(Command::new("kill").args(["-HUP", &pid.to_string()]))?;
    wait_served(&s, &certs, "127.0.0.1", &third).await?;
    ensure!(s.is_running(), "SIGHUP stopped the server");
    ensure!(s.full_log().contains("SIGHUP"), "{}", s.log());
    Ok(())
}

/// With --allow-plain-http both speak on one port; SSE-C from another
/// address is served over HTTPS and refused over plain HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_when_allowed_and_sse_c_over_tls_only() -> Result<()> {
    let ip = non_loopback_ipv4()?;
    let work = tempfile::tempdir()?;
    let (_ca, certs) = setup(work.path(), KeyKind::RsaPkcs1, &[&ip])?;
    let s = Server::start(StartOpts {
        certs: Some(certs.clone()),
        any_address: true,
        extra_args: vec!["--allow-plain-http".into()],
        ..StartOpts::default()
    })
    .await?;
    ensure!(
        s.full_log().contains("plain http:// accepted too"),
        "{}",
        s.log()
    );
    let r = raw::get(&s.addr(), "/_cairn/health/live").await?;
    ensure!(r.status == 200, "plain HTTP allowed: {}", r.describe());
    let b = bucket_name("ssec");
    let https = format!("https://{ip}:{}", s.port());
    let http = format!("http://{ip}:{}", s.port());
    let key = "k".repeat(32);
    let out = boto3(
        &s,
        &https,
        &certs.ca,
        &format!(
            "s3.create_bucket(Bucket='{b}')\n\
             s3.put_object(Bucket='{b}', Key='c', Body=b'secret', SSECustomerAlgorithm='AES256', SSECustomerKey='{key}')\n\
             print(s3.get_object(Bucket='{b}', Key='c', SSECustomerAlgorithm='AES256', SSECustomerKey='{key}')['Body'].read().decode())"
        ),
    )?;
    ensure!(out.trim() == "secret", "SSE-C over HTTPS: {out}");
    let out = boto3(
        &s,
        &http,
        &certs.ca,
        &format!(
            "s3.put_object(Bucket='{b}', Key='p', Body=b'plain')\n\
             try:\n\
             \x20   s3.put_object(Bucket='{b}', Key='c2', Body=b'x', SSECustomerAlgorithm='AES256', SSECustomerKey='{key}')\n\
             \x20   print('accepted')\n\
             except botocore.exceptions.ClientError as e:\n\
             \x20   print(e.response['Error']['Code'], e.response['ResponseMetadata']['HTTPStatusCode'])"
        ),
    )?;
    ensure!(
        out.trim() == "InvalidRequest 400",
        "SSE-C over plain HTTP from {ip}: {out}"
    );
    Ok(())
}

/// This machine's first non-loopback IPv4 address (`hostname -I`).
fn non_loopback_ipv4() -> Result<String> {
    let out = run(Command::new("hostname").arg("-I"))?;
    stdout(&out)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .find(|a| !a.is_loopback() && !a.is_unspecified())
        .map(|a| a.to_string())
        .context("no non-loopback IPv4 address in `hostname -I`")
}

/// A client that opens TCP and never finishes its ClientHello is closed by
/// the header timeout, and counts against the connection cap until then; a
/// failed handshake is logged at debug, never ERROR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_broken_tls_clients_are_closed() -> Result<()> {
    let work = tempfile::tempdir()?;
    let (_ca, certs) = setup(work.path(), KeyKind::EcSec1, &[])?;
    let s = start(&certs, &["--header-timeout", "1", "--max-connections", "2"]).await?;
    let addr = s.addr();
    let closed_within = |mut c: std::net::TcpStream| -> Result<Duration> {
        let t = Instant::now();
        c.set_read_timeout(Some(Duration::from_secs(20)))?;
        // (a TLS alert may come before the close)
        let mut buf = [0u8; 64];
        loop {
            match c.read(&mut buf) {
                Ok(0) => return Ok(t.elapsed()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Ok(t.elapsed());
                }
                Err(e) => bail!("connection not closed: {e}"),
            }
        }
    };
    // nothing at all
    let c = std::net::TcpStream::connect(&addr)?;
    let took = closed_within(c)?;
    ensure!(
        took < Duration::from_secs(10),
        "silent client held {took:?}"
    );
    // half a ClientHello
    let mut c = std::net::TcpStream::connect(&addr)?;
    c.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])?;
    let took = closed_within(c)?;
    ensure!(
        took < Duration::from_secs(10),
        "stalled handshake held {took:?}"
    );
    // garbage after the handshake byte: a failed handshake
    let mut c = std::net::TcpStream::connect(&addr)?;
    c.write_all(&[0x16, 0xff, 0xff, 0x00, 0x05, 1, 2, 3, 4, 5])?;
    closed_within(c)?;
    // the server still serves
    let ex = https_get(&addr, "127.0.0.1", &certs.ca, "/_cairn/health/live").await?;
    ensure!(ex.response.status == 200);
    // connections that have not shaken hands count against the cap (2):
    // at the cap they are shed (idle past a second) to make room
    let silent: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(&addr))
        .collect::<Result<_, _>>()?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ex = https_get(&addr, "127.0.0.1", &certs.ca, "/_cairn/health/live").await?;
    ensure!(ex.response.status == 200);
    ensure!(
        s.full_log().contains("connection cap reached"),
        "the silent connections were not counted: {}",
        s.log()
    );
    drop(silent);
    ensure!(!s.full_log().contains("ERROR"), "{}", s.log());
    Ok(())
}

/// A certificates folder the server cannot use fails the start, saying
/// why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mismatched_key_fails_the_start() -> Result<()> {
    let work = tempfile::tempdir()?;
    let (ca, certs) = setup(work.path(), KeyKind::EcSec1, &[])?;
    ca.issue(
        &work.path().join("other"),
        &["x.test"],
        &[],
        KeyKind::EcSec1,
    )?;
    std::fs::copy(
        work.path().join("other/private.key"),
        certs.dir.join("private.key"),
    )?;
    let err = match start(&certs, &[]).await {
        Ok(_) => bail!("started with a key that is not the certificate's"),
        Err(e) => format!("{e:#}"),
    };
    ensure!(err.contains("does not belong"), "{err}");
    Ok(())
}

/// s3fs (libcurl) mounts a bucket over HTTPS trusting the test CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3fs_mounts_over_https() -> Result<()> {
    require_tool("s3fs")?;
    let work = tempfile::tempdir()?;
    let (_ca, certs) = setup(work.path(), KeyKind::RsaPkcs1, &[])?;
    let s = start(&certs, &[]).await?;
    let b = bucket_name("s3fs-tls");
    boto3(
        &s,
        &s.endpoint(),
        &certs.ca,
        &format!(
            "s3.create_bucket(Bucket='{b}')\ns3.put_object(Bucket='{b}', Key='from-s3.txt', Body=b'hello over s3')"
        ),
    )?;
    let mnt = work.path().join("mnt");
    std::fs::create_dir_all(&mnt)?;
    let passwd = work.path().join("passwd");
    std::fs::write(&passwd, format!("{}:{}\n", s.access_key(), s.secret_key()))?;
    std::fs::set_permissions(&passwd, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    run(Command::new("s3fs")
        .arg(&b)
        .arg(&mnt)
        .args(["-o", &format!("url={}", s.endpoint())])
        .args(["-o", "use_path_request_style", "-o", "endpoint=us-east-1"])
        .args(["-o", &format!("passwd_file={}", passwd.display())])
        .env("CURL_CA_BUNDLE", &certs.ca))?;
    let _unmount = cairn_tests::mount::Unmount(mnt.clone());
    let t = Instant::now();
    while !cairn_tests::mount::is_mounted(&mnt)? {
        ensure!(t.elapsed() < Duration::from_secs(10), "s3fs did not mount");
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = std::fs::read_to_string(mnt.join("from-s3.txt"))
        .with_context(|| format!("s3fs read; server log:\n{}", s.log()))?;
    ensure!(got == "hello over s3", "s3fs read {got:?}");
    std::fs::write(mnt.join("from-s3fs.txt"), b"written by s3fs")?;
    let out = boto3(
        &s,
        &s.endpoint(),
        &certs.ca,
        &format!("print(s3.get_object(Bucket='{b}', Key='from-s3fs.txt')['Body'].read().decode())"),
    )?;
    ensure!(out.trim() == "written by s3fs", "over S3: {out}");
    Ok(())
}
