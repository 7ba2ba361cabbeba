//! The web console's administration pages in a real headless chromium
//! (tests/src/console.rs) against the real binary: an IAM user created in
//! the Identity page with a policy, and its access key made there, signs
//! S3 requests with the SDK; a group and a managed policy made there are
//! what `aws iam` lists; KMS keys created and rotated there are what the
//! admin API reports; a heal started there streams to its end; the drives
//! page groups drives by set. A user whose policy allows S3 only sees
//! none of these pages in the menu and gets 403 from each of their calls.
//! Screenshots of each page.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, ensure};
use aws_sdk_s3::primitives::ByteStream;
use cairn_tests::console::{Api, Browser, console_url, s3_only_user};
use cairn_tests::{Server, StartOpts};
use fantoccini::Locator;

fn screens(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("console-screens")
        .join(name)
}

async fn menu_shown(b: &Browser, id: &str) -> Result<bool> {
    Ok(b.find(&format!("#{id}"))
        .await?
        .attr("hidden")
        .await?
        .is_none())
}

/// The admin API's KMS status, as root.
async fn kms_keys(server: &Server) -> Result<serde_json::Value> {
    let r = server
        .raw()
        .send("GET", "/_cairn/admin/v1/kms/status", &[], b"")
        .await?;
    ensure!(r.status == 200, "kms status: {}", r.status);
    let v: serde_json::Value = serde_json::from_slice(&r.body)?;
    Ok(v["keys"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_administers_identities_keys_heal_and_drives() -> Result<()> {
    // a key file KMS: keys can be created and rotated
    let keys = tempfile::tempdir()?;
    let file = keys.path().join("keys.json");
    let server = Server::start(StartOpts {
        env: vec![("CAIRN_KMS_KEY_FILE".into(), file.display().to_string())],
        ..StartOpts::drives(4)
    })
    .await?;
    let base = console_url(&server);
    let b = Browser::start(screens("admin-pages")).await?;
    b.login(&base, server.access_key(), server.secret_key())
        .await?;
    for id in ["nav-admin", "nav-heal", "nav-kms", "nav-iam"] {
        ensure!(menu_shown(&b, id).await?, "root has no {id}");
    }

    // a user with readwrite and an access key, made in the page
    b.click("#nav-iam").await?;
    b.on_page("iam").await?;
    b.find("tr.policy[data-policy=\"readwrite\"]").await?;
    b.fill("#iam-user-name", "alice").await?;
    b.find("#iam-user-policy")
        .await?
        .select_by_value("arn:aws:iam::aws:policy/readwrite")
        .await?;
    b.click("#iam-user-create").await?;
    b.status("user created").await?;
    let row = b.find("tr.user[data-user=\"alice\"]").await?;
    ensure!(row.text().await?.contains("readwrite"), "alice's row");
    b.click("tr.user[data-user=\"alice\"] button").await?;
    b.status("access key created for alice").await?;
    let ak = b.text_of("#iam-key-id").await?;
    let sk = b.text_of("#iam-key-secret").await?;
    b.screenshot("iam-user-key").await?;
    let alice = aws_sdk_s3::Client::from_conf(server.s3_config_with(&ak, &sk).build());
    alice.create_bucket().bucket("alices").send().await?;
    alice
        .put_object()
        .bucket("alices")
        .key("k")
        .body(ByteStream::from_static(b"by alice"))
        .send()
        .await
        .context("the key made in the console does not sign S3 requests")?;

    // a group with a policy and alice in it; a managed policy
    b.fill("#iam-group-name", "ops").await?;
    b.find("#iam-group-policy")
        .await?
        .select_by_value("arn:aws:iam::aws:policy/readonly")
        .await?;
    b.click("#iam-group-create").await?;
    b.status("group created").await?;
    b.fill("#iam-member-user", "alice").await?;
    b.fill("#iam-member-group", "ops").await?;
    b.click("#iam-member-add").await?;
    b.status("user added to group").await?;
    let group = b.text("tr.group[data-group=\"ops\"]").await?;
    ensure!(
        group.contains("alice") && group.contains("readonly"),
        "{group}"
    );
    let members = server.aws_iam(&["get-group", "--group-name", "ops"])?;
    ensure!(
        members["Users"][0]["UserName"] == "alice",
        "aws iam get-group: {members}"
    );
    b.fill("#iam-policy-name", "logs-only").await?;
    b.fill(
        "#iam-policy-doc",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::logs/*"}]}"#,
    )
    .await?;
    b.click("#iam-policy-create").await?;
    b.status("policy created").await?;
    let local = server.aws_iam(&["list-policies", "--scope", "Local"])?;
    ensure!(
        local["Policies"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["PolicyName"] == "logs-only")),
        "aws iam list-policies: {local}"
    );
    b.screenshot("iam").await?;

    // KMS: a new key, then rotated
    b.click("#nav-kms").await?;
    b.on_page("kms").await?;
    b.find("#kms-summary").await?;
    b.fill("#kms-name", "second-key").await?;
    b.click("#kms-create").await?;
    b.status("key created").await?;
    b.find("tr.kms-key[data-key=\"second-key\"]").await?;
    ensure!(
        kms_keys(&server)
            .await?
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k[0] == "second-key")),
        "the admin API does not list the key made in the console"
    );
    b.click("tr.kms-key[data-key=\"second-key\"] button")
        .await?;
    b.status("key rotated").await?;
    let rotated = kms_keys(&server).await?;
    let version = rotated
        .as_array()
        .and_then(|k| k.iter().find(|k| k[0] == "second-key"))
        .map(|k| k[1].clone())
        .ok_or_else(|| anyhow!("no second-key in {rotated}"))?;
    ensure!(
        b.find("tr.kms-key[data-key=\"second-key\"]")
            .await?
            .attr("data-version")
            .await?
            == Some(version.to_string()),
        "the page shows another version than {version}"
    );
    ensure!(
        version.as_u64() > Some(1),
        "rotation left version {version}"
    );
    b.screenshot("kms").await?;

    // heal, streamed to its end
    b.click("#nav-heal").await?;
    b.on_page("heal").await?;
    b.click("#heal-start").await?;
    b.find("#heal-progress[data-state=\"done\"]").await?;
    let summary = b.text("#heal-summary").await?;
    ensure!(summary.contains("objects_scanned"), "{summary}");
    b.screenshot("heal").await?;

    // drives by set
    b.click("#nav-admin").await?;
    b.on_page("admin").await?;
    b.find(".set[data-set=\"0\"]").await?;
    let drives = b
        .client
        .find_all(Locator::Css(".set tr.drive"))
        .await?
        .len();
    ensure!(drives == 4, "{drives} drives shown in sets");
    b.screenshot("topology").await?;
    b.close().await?;

    // a user allowed S3 only: no admin menu, every admin call refused
    let (ak, sk) = s3_only_user(&server, "viewer")?;
    let v = Browser::start(screens("admin-pages-viewer")).await?;
    v.login(&base, &ak, &sk).await?;
    for id in ["nav-admin", "nav-heal", "nav-kms", "nav-iam"] {
        ensure!(!menu_shown(&v, id).await?, "a non-admin sees {id}");
    }
    v.screenshot("viewer-menu").await?;
    let api = Api::new(&server, v.session_cookie().await?)?;
    let (_, s) = api.session().await?;
    ensure!(s["admin"] == false && s["iam"] == false, "{s}");
    let csrf = s["csrf"].as_str().unwrap_or_default().to_owned();
    let origin = server.endpoint();
    let calls = [
        (reqwest::Method::GET, "admin/kms", None),
        (reqwest::Method::POST, "admin/kms/keys?name=x", None),
        (reqwest::Method::POST, "admin/heal", None),
        (reqwest::Method::GET, "admin/info", None),
        (
            reqwest::Method::POST,
            "iam",
            Some(r#"{"Action":"ListUsers"}"#),
        ),
        (
            reqwest::Method::POST,
            "iam",
            Some(r#"{"Action":"CreateUser","UserName":"mallory"}"#),
        ),
    ];
    for (method, call, body) in calls {
        let mut r = api
            .req(method.clone(), call)
            .header("origin", &origin)
            .header("x-cairn-csrf", &csrf);
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b);
        }
        let r = r.send().await?;
        ensure!(
            r.status() == 403,
            "{method} {call} for a non-admin: {}",
            r.status()
        );
    }
    let users = server.aws_iam(&["list-users"])?;
    ensure!(
        !users.to_string().contains("mallory"),
        "a non-admin created a user"
    );
    v.client.goto(&format!("{base}#/iam")).await?;
    v.status("AccessDenied").await?;
    v.close().await
}
