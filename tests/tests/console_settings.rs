//! The web console's bucket settings page and an object's WORM state, in a
//! real headless chromium (tests/src/console.rs) against the real binary:
//! object lock's default retention, default encryption, lifecycle rules,
//! tags and a bucket policy set in the page are what the AWS SDK reads
//! back (and what an anonymous client gets under the policy); a policy the
//! server refuses is shown as its error and nothing is stored; legal hold
//! and retention set on the details page are what HEAD shows; the text
//! preview shows the object's text. Screenshots of each page.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use cairn_tests::console::{Browser, WAIT, console_url};
use cairn_tests::{Server, StartOpts};

fn screens(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("console-screens")
        .join(name)
}

/// Polls `f` until it gives `Some`, at most [`WAIT`].
async fn until<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        ensure!(started.elapsed() < WAIT, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sets_bucket_settings_and_object_locks() -> Result<()> {
    let kms = format!(
        "console-key:{}",
        base64::engine::general_purpose::STANDARD.encode([0x5au8; 32])
    );
    let server = Server::start(StartOpts {
        env: vec![("CAIRN_KMS_SECRET_KEY".into(), kms)],
        ..StartOpts::drives(4)
    })
    .await?;
    let s3 = server.s3();
    let bucket = "locked";
    s3.create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await?;
    s3.put_object()
        .bucket(bucket)
        .key("doc.txt")
        .content_type("text/plain")
        .body(ByteStream::from_static(b"hello from the console test\n"))
        .send()
        .await?;
    let base = console_url(&server);
    let b = Browser::start(screens("settings")).await?;
    b.login(&base, server.access_key(), server.secret_key())
        .await?;
    b.client.goto(&format!("{base}#/b/{bucket}/")).await?;
    b.on_page("browse").await?;
    b.click("#browse-settings").await?;
    b.on_page("settings").await?;
    // object lock turned versioning on
    b.find("#lock-form:not([hidden])").await?;
    ensure!(
        b.find("#settings-versioning")
            .await?
            .prop("checked")
            .await?
            == Some("true".into()),
        "versioning of a locked bucket is not shown enabled"
    );

    // default retention
    b.find("#lock-mode")
        .await?
        .select_by_value("GOVERNANCE")
        .await?;
    b.fill("#lock-days", "3").await?;
    b.click("#lock-set").await?;
    b.status("default retention saved").await?;
    let lock = s3
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await?;
    let retention = lock
        .object_lock_configuration()
        .and_then(|c| c.rule())
        .and_then(|r| r.default_retention())
        .context("no default retention stored")?;
    ensure!(
        retention.mode().map(|m| m.as_str()) == Some("GOVERNANCE") && retention.days() == Some(3),
        "{retention:?}"
    );

    // default encryption: SSE-S3, then a new object is encrypted
    b.find("#encryption-algorithm")
        .await?
        .select_by_value("AES256")
        .await?;
    b.click("#encryption-set").await?;
    b.status("default encryption saved").await?;
    let enc = s3.get_bucket_encryption().bucket(bucket).send().await?;
    let algorithm = enc
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .map(|d| d.sse_algorithm().as_str().to_owned());
    ensure!(algorithm.as_deref() == Some("AES256"), "{algorithm:?}");
    s3.put_object()
        .bucket(bucket)
        .key("sealed.bin")
        .body(ByteStream::from_static(b"secret"))
        .send()
        .await?;
    let head = s3
        .head_object()
        .bucket(bucket)
        .key("sealed.bin")
        .send()
        .await?;
    ensure!(
        head.server_side_encryption().map(|e| e.as_str()) == Some("AES256"),
        "an object put after the default was set: {:?}",
        head.server_side_encryption()
    );

    // lifecycle: two rules added, one deleted
    for (id, prefix, days) in [("expire-logs", "logs/", "30"), ("tmp", "tmp/", "1")] {
        b.fill("#lifecycle-id", id).await?;
        b.fill("#lifecycle-prefix", prefix).await?;
        b.fill("#lifecycle-days", days).await?;
        b.click("#lifecycle-add").await?;
        b.find(&format!("tr.rule[data-rule=\"{id}\"]")).await?;
    }
    b.click("tr.rule[data-rule=\"tmp\"] button").await?;
    b.status("rule deleted").await?;
    let rules = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await?;
    let got: Vec<(Option<&str>, Option<&str>, Option<i32>)> = rules
        .rules()
        .iter()
        .map(|r| {
            (
                r.id(),
                r.filter().and_then(|f| f.prefix()),
                r.expiration().and_then(|e| e.days()),
            )
        })
        .collect();
    ensure!(
        got == vec![(Some("expire-logs"), Some("logs/"), Some(30))],
        "lifecycle rules: {got:?}"
    );

    // tags
    b.fill("#tag-key", "env").await?;
    b.fill("#tag-value", "prod").await?;
    b.click("#tag-add").await?;
    b.find("tr.tag[data-tag=\"env\"]").await?;
    let tags = s3.get_bucket_tagging().bucket(bucket).send().await?;
    ensure!(
        tags.tag_set()
            .iter()
            .any(|t| t.key() == "env" && t.value() == "prod"),
        "{:?}",
        tags.tag_set()
    );

    // a policy naming another bucket: the server's refusal is shown, nothing
    // stored; then a public-read policy, which anonymous clients then get
    let wrong = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other-bucket/*"}]}"#;
    b.fill("#policy-text", wrong).await?;
    b.click("#policy-save").await?;
    b.status("Policy").await?;
    b.screenshot("settings-policy-refused").await?;
    let none = s3.get_bucket_policy().bucket(bucket).send().await;
    ensure!(none.is_err(), "a refused policy was stored: {none:?}");
    let anonymous = reqwest::Client::builder().no_proxy().build()?;
    let url = format!("{}/{bucket}/doc.txt", server.endpoint());
    ensure!(anonymous.get(&url).send().await?.status() == 403);
    let public = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    );
    b.fill("#policy-text", &public).await?;
    b.click("#policy-save").await?;
    b.status("policy saved").await?;
    let stored = s3.get_bucket_policy().bucket(bucket).send().await?;
    ensure!(
        stored.policy().is_some_and(|p| p.contains("s3:GetObject")),
        "{stored:?}"
    );
    ensure!(
        anonymous.get(&url).send().await?.status() == 200,
        "the policy set in the console does not let anonymous reads through"
    );
    b.screenshot("settings").await?;

    // the object's page: SSE shown, a text preview, legal hold, retention
    b.client
        .goto(&format!("{base}#/o/{bucket}/sealed.bin"))
        .await?;
    b.on_page("object").await?;
    until("the SSE row", || async {
        let t = b.text("#object-props").await?;
        Ok(t.contains("AES256").then_some(()))
    })
    .await?;
    b.client
        .goto(&format!("{base}#/o/{bucket}/doc.txt"))
        .await?;
    b.on_page("object").await?;
    b.find("#object-lock td").await?;
    b.click("#preview-load").await?;
    let text = b.text("#preview-text").await?;
    ensure!(
        text.contains("hello from the console test"),
        "preview: {text:?}"
    );
    b.click("#legal-hold").await?;
    b.status("legal hold on").await?;
    let head = s3
        .head_object()
        .bucket(bucket)
        .key("doc.txt")
        .send()
        .await?;
    ensure!(
        head.object_lock_legal_hold_status().map(|s| s.as_str()) == Some("ON"),
        "legal hold after the console set it: {:?}",
        head.object_lock_legal_hold_status()
    );
    // retain until two days from now (the date picker filled by script:
    // WebDriver types into datetime-local fields unreliably)
    let until_secs = time::OffsetDateTime::now_utc().unix_timestamp() + 2 * 86_400;
    b.client
        .execute(
            "const d = new Date(arguments[0] * 1000); d.setSeconds(0, 0); \
             const p = (n) => String(n).padStart(2, '0'); \
             document.getElementById('retention-until').value = d.getFullYear() + '-' + \
             p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes());",
            vec![serde_json::json!(until_secs)],
        )
        .await?;
    b.find("#retention-mode")
        .await?
        .select_by_value("GOVERNANCE")
        .await?;
    b.click("#retention-set").await?;
    b.status("retention set").await?;
    let head = s3
        .head_object()
        .bucket(bucket)
        .key("doc.txt")
        .send()
        .await?;
    ensure!(
        head.object_lock_mode().map(|m| m.as_str()) == Some("GOVERNANCE"),
        "retention mode after the console set it: {:?}",
        head.object_lock_mode()
    );
    let kept = head
        .object_lock_retain_until_date()
        .map(|d| d.secs())
        .context("no retain-until date")?;
    ensure!(
        (kept - until_secs).abs() <= 60,
        "retain until {kept}, set {until_secs}"
    );
    b.screenshot("object-locked").await?;
    // what the object page shows is what S3 says
    let shown = b.text("#object-lock").await?;
    ensure!(
        shown.contains("GOVERNANCE") && shown.contains("ON"),
        "{shown}"
    );
    b.close().await
}

/// A 1x1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_previews_images_and_takes_dropped_files() -> Result<()> {
    let server = Server::start(StartOpts::drives(1)).await?;
    let s3 = server.s3();
    s3.create_bucket().bucket("pics").send().await?;
    let png = base64::engine::general_purpose::STANDARD.decode(PNG)?;
    s3.put_object()
        .bucket("pics")
        .key("dot.png")
        .content_type("image/png")
        .body(ByteStream::from(png))
        .send()
        .await?;
    s3.put_object()
        .bucket("pics")
        .key("x.svg")
        .content_type("image/svg+xml")
        .body(ByteStream::from_static(
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        ))
        .send()
        .await?;
    let base = console_url(&server);
    let b = Browser::start(screens("preview")).await?;
    b.login(&base, server.access_key(), server.secret_key())
        .await?;

    // the image preview loads under the CSP (img-src 'self')
    b.client.goto(&format!("{base}#/o/pics/dot.png")).await?;
    b.on_page("object").await?;
    b.click("#preview-load").await?;
    b.find("#preview img").await?;
    let width = until("the preview image", || async {
        let w = b
            .client
            .execute(
                "const i = document.querySelector('#preview img'); return i && i.complete ? i.naturalWidth : 0;",
                vec![],
            )
            .await?;
        Ok(w.as_u64().filter(|w| *w > 0))
    })
    .await?;
    ensure!(width == 1, "the preview is {width} pixels wide");
    b.screenshot("image-preview").await?;
    // an SVG (scriptable) is never served inline
    let api = cairn_tests::console::Api::new(&server, b.session_cookie().await?)?;
    let r = api
        .req(
            reqwest::Method::GET,
            "download?bucket=pics&key=x.svg&inline=image",
        )
        .send()
        .await?;
    ensure!(r.status() == 400, "an SVG served inline: {}", r.status());

    // a file dropped on the folder view is uploaded into it
    b.client.goto(&format!("{base}#/b/pics/")).await?;
    b.on_page("browse").await?;
    b.find("tr[data-key=\"dot.png\"]").await?;
    b.client
        .execute(
            "const dt = new DataTransfer(); \
             dt.items.add(new File(['dropped text'], 'dropped.txt', { type: 'text/plain' })); \
             document.getElementById('dropzone').dispatchEvent(\
               new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));",
            vec![],
        )
        .await?;
    b.find(".upload[data-state=\"done\"]").await?;
    b.find("tr[data-key=\"dropped.txt\"]").await?;
    b.screenshot("dropped").await?;
    let got = cairn_tests::get_bytes(&s3, "pics", "dropped.txt").await?;
    ensure!(
        got == b"dropped text",
        "the dropped file was stored as {got:?}"
    );
    b.close().await
}
