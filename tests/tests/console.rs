//! The web console (`/_cairn/console/`) in a real headless Chromium driven
//! over WebDriver (Debian `chromium` + `chromium-driver`, scripts/test
//! installs both): log in, buckets, a 20 MiB upload in parts with
//! progress, the listing, a byte-identical download, versioning and its
//! versions, a share link that works and then expires, the drives page
//! with a drive taken offline, logout; a non-admin user without the admin
//! page; CSRF, CSP and no credentials in URLs or storage. Screenshots of
//! every page go to `<target>/tmp/console-screens/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use cairn_tests::console::{Api, Browser, WAIT, console_url, data, s3_only_user};
use cairn_tests::{Server, StartOpts};
use fantoccini::Locator;

fn screens(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("console-screens")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_browses_uploads_shares_and_shows_drives() -> Result<()> {
    let server = Server::start(StartOpts::drives(4)).await?;
    let base = console_url(&server);
    let b = Browser::start(screens("admin")).await?;
    b.login(&base, server.access_key(), server.secret_key())
        .await?;
    b.screenshot("buckets-empty").await?;
    // the admin menu: root's session may call the admin API
    ensure!(
        b.attr("#nav-admin", "hidden").await?.is_none(),
        "root sees no admin menu"
    );
    // no credential in the URL or the page's storage
    let url = b.client.current_url().await?.to_string();
    ensure!(
        !url.contains(server.secret_key()) && !url.contains(server.access_key()),
        "{url}"
    );
    b.ensure_nothing_stored().await?;

    // a bucket
    b.fill("#bucket-name", "console-test").await?;
    b.click("#bucket-create").await?;
    b.click("tr[data-bucket=\"console-test\"] a").await?;
    b.on_page("browse").await?;

    // a 20 MiB upload (three parts through the console), with progress
    let dir = tempfile::tempdir()?;
    let first = data(20 << 20, 1);
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &first)?;
    b.find("#upload-input")
        .await?
        .send_keys(&file.to_string_lossy())
        .await?;
    b.find(".upload[data-state=\"done\"]").await?;
    b.find("tr[data-key=\"big.bin\"]").await?;
    b.screenshot("browse-uploaded").await?;
    let stored = cairn_tests::get_bytes(&server.s3(), "console-test", "big.bin").await?;
    ensure!(
        stored == first,
        "the stored object differs from the uploaded file"
    );

    // a folder
    b.fill("#folder-name", "docs").await?;
    b.click("#folder-create").await?;
    b.on_page("browse").await?;
    b.find("#crumbs a[href$=\"docs%2F\"]").await?;
    b.client.goto(&format!("{base}#/b/console-test/")).await?;
    b.find("tr[data-folder=\"docs/\"]").await?;

    // details and a byte-identical download
    b.click("tr[data-key=\"big.bin\"] a").await?;
    b.on_page("object").await?;
    b.find("#object-props td").await?;
    b.screenshot("object").await?;
    b.click("#object-download").await?;
    let got = b.downloaded("big.bin").await?;
    ensure!(
        got == first,
        "the downloaded file differs ({} bytes)",
        got.len()
    );

    // versioning on, a second upload: two versions
    b.client.goto(&format!("{base}#/b/console-test/")).await?;
    b.find("tr[data-key=\"big.bin\"]").await?;
    b.click("#versioning").await?;
    b.status("versioning enabled").await?;
    let second = data(1 << 20, 2);
    let dir2 = tempfile::tempdir()?;
    let file2 = dir2.path().join("big.bin");
    std::fs::write(&file2, &second)?;
    b.find("#upload-input")
        .await?
        .send_keys(&file2.to_string_lossy())
        .await?;
    let started = Instant::now();
    while b
        .client
        .find_all(Locator::Css(".upload[data-state=\"done\"]"))
        .await?
        .len()
        < 2
    {
        ensure!(started.elapsed() < WAIT, "the second upload did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.click("tr[data-key=\"big.bin\"] a").await?;
    b.on_page("object").await?;
    let started = Instant::now();
    loop {
        let n = b.client.find_all(Locator::Css("tr.version")).await?.len();
        if n == 2 {
            break;
        }
        ensure!(started.elapsed() < WAIT, "{n} versions listed, not 2");
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.client.refresh().await?;
        b.on_page("object").await?;
    }
    b.screenshot("object-versions").await?;

    // a share link that works with a plain HTTP client, then expires
    b.fill("#share-seconds", "4").await?;
    b.click("#share-create").await?;
    let link = b.value_of("#share-url").await?;
    b.screenshot("object-shared").await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let r = http.get(&link).send().await?;
    ensure!(r.status() == 200, "share link: {}", r.status());
    ensure!(
        r.bytes().await?.as_ref() == second.as_slice(),
        "share link served other bytes"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let r = http.get(&link).send().await?;
    ensure!(r.status() == 403, "expired share link: {}", r.status());

    // drives: all online, then one taken away shows offline
    b.click("#nav-admin").await?;
    b.on_page("admin").await?;
    let online = b
        .client
        .find_all(Locator::Css("tr.drive[data-state=\"online\"]"))
        .await?;
    ensure!(online.len() == 4, "{} drives online", online.len());
    b.screenshot("drives").await?;
    let victim = server.drives()[3].clone();
    let saved = victim.with_extension("away");
    std::fs::rename(&victim, &saved)?;
    b.client.refresh().await?;
    b.find("tr.drive[data-state=\"offline\"]").await?;
    b.screenshot("drives-offline").await?;
    // (the drive's folder may have been made again meanwhile: then the
    // saved one stays in the server's temp dir)
    let _ = std::fs::rename(&saved, &victim);

    // logout: the cookie is gone and a copy of it no longer works
    let cookie = b.session_cookie().await?;
    let api = Api::new(&server, cookie)?;
    ensure!(api.session().await?.0 == 200);
    b.click("#logout").await?;
    b.on_page("login").await?;
    b.screenshot("login").await?;
    ensure!(
        api.session().await?.0 == 401,
        "a logged-out session still works"
    );
    b.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_refuses_cross_site_requests_and_hides_admin() -> Result<()> {
    let server = Server::start(StartOpts::drives(4)).await?;
    let base = console_url(&server);
    // the security headers, on the page and on API answers
    let http = reqwest::Client::builder().no_proxy().build()?;
    for url in [
        base.clone(),
        format!("{base}app.js"),
        format!("{base}api/session"),
    ] {
        let r = http.get(&url).send().await?;
        let csp = r
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        ensure!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{url}: CSP {csp:?}"
        );
        ensure!(csp.contains("frame-ancestors 'none'"), "{url}: CSP {csp:?}");
        ensure!(
            r.headers().get("x-frame-options").is_some(),
            "{url}: no X-Frame-Options"
        );
    }
    // a user whose policy allows S3 only
    let (ak, sk) = s3_only_user(&server, "viewer")?;
    let b = Browser::start(screens("viewer")).await?;
    b.login(&base, &ak, &sk).await?;
    ensure!(
        b.attr("#nav-admin", "hidden").await?.is_some(),
        "a user without admin rights sees the admin menu"
    );
    b.screenshot("viewer-buckets").await?;
    b.client.goto(&format!("{base}#/admin")).await?;
    b.status("AccessDenied").await?;
    b.screenshot("viewer-admin-refused").await?;
    let api = Api::new(&server, b.session_cookie().await?)?;
    let (status, session) = api.session().await?;
    ensure!(
        status == 200 && session["admin"] == false,
        "{status} {session}"
    );
    let csrf = session["csrf"].as_str().unwrap_or_default().to_owned();
    let r = api.req(reqwest::Method::GET, "admin/info").send().await?;
    ensure!(
        r.status() == 403,
        "the admin endpoint answered a non-admin {}",
        r.status()
    );

    // CSRF: no token, a wrong one, another origin: refused; all right: done
    let origin = server.endpoint();
    let create = |token: Option<&str>, origin: &str| {
        let mut r = api
            .req(reqwest::Method::POST, "buckets?bucket=csrf-check")
            .header("origin", origin);
        if let Some(t) = token {
            r = r.header("x-cairn-csrf", t);
        }
        r
    };
    for (what, req) in [
        ("no token", create(None, &origin)),
        ("a wrong token", create(Some("00"), &origin)),
        ("another origin", create(Some(&csrf), "http://evil.example")),
    ] {
        let r = req.send().await?;
        ensure!(r.status() == 403, "{what}: {}", r.status());
        let body: serde_json::Value = serde_json::from_slice(&r.bytes().await?)?;
        ensure!(body["code"] == "CsrfRefused", "{what}: {body}");
    }
    let r = create(Some(&csrf), &origin).send().await?;
    ensure!(r.status() == 200, "a right request: {}", r.status());
    // a login from another origin is refused too
    let r = http
        .post(format!("{base}api/login"))
        .header("origin", "http://evil.example")
        .header("content-type", "application/json")
        .body(serde_json::json!({"access_key": ak, "secret_key": sk}).to_string())
        .send()
        .await?;
    ensure!(r.status() == 403, "cross-site login: {}", r.status());
    b.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_serves_on_its_own_address() -> Result<()> {
    let port = cairn_tests::free_port()?;
    let server = Server::start(StartOpts {
        extra_args: vec!["--console-address".into(), format!("127.0.0.1:{port}")],
        ..StartOpts::drives(1)
    })
    .await?;
    let own = format!("http://127.0.0.1:{port}/_cairn/console/");
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // the S3 port no longer serves it; its own address leads to it
    let r = http.get(console_url(&server)).send().await?;
    let status = r.status();
    let body = r.text().await?;
    ensure!(
        !body.contains("Cairn console"),
        "the S3 port still serves the console ({status})"
    );
    let r = http.get(format!("http://127.0.0.1:{port}/")).send().await?;
    ensure!(
        r.status() == 303
            && r.headers().get("location").and_then(|v| v.to_str().ok())
                == Some("/_cairn/console/"),
        "/ on the console's address: {}",
        r.status()
    );
    let s3 = server.s3();
    s3.create_bucket().bucket("own").send().await?;
    s3.put_object()
        .bucket("own")
        .key("k")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"shared"))
        .send()
        .await?;
    let b = Browser::start(screens("own-address")).await?;
    b.login(&own, server.access_key(), server.secret_key())
        .await?;
    b.client.goto(&format!("{own}#/o/own/k")).await?;
    b.on_page("object").await?;
    b.click("#share-create").await?;
    let link = b.value_of("#share-url").await?;
    b.screenshot("own-address-share").await?;
    ensure!(
        link.starts_with(&format!("{}/own/k?", server.endpoint())),
        "a share link from the console's own address: {link}"
    );
    let r = http.get(&link).send().await?;
    ensure!(r.status() == 200, "share link: {}", r.status());
    ensure!(r.bytes().await?.as_ref() == b"shared");
    b.close().await
}
