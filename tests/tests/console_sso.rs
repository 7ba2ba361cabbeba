//! The web console's "Log in with SSO" against a real OpenID provider (npm
//! oauth2-mock-server, tests/src/oidc.rs) and a real headless chromium:
//! the authorization-code flow with PKCE ends in a console session whose
//! rights are the token's policy claim's (a bucket made in the page is
//! seen by the SDK; no admin menu), with no token or credential in the
//! URL or the page's storage. Driven by hand (no redirects followed): the
//! start's parameters, a wrong state, a forged nonce, a callback without
//! a started login and a token mapping to no policy are all refused and
//! give no session.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use cairn_tests::console::{Api, Browser, console_url};
use cairn_tests::oidc::OidcProvider;
use cairn_tests::{Server, StartOpts};

const CLIENT: &str = "cairn-console";

fn screens(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("console-screens")
        .join(name)
}

async fn sso_server(idp: &OidcProvider) -> Result<Server> {
    Server::start(StartOpts {
        extra_args: vec![
            "--oidc-config-url".into(),
            idp.config_url(),
            "--oidc-client-id".into(),
            CLIENT.into(),
        ],
        ..StartOpts::drives(1)
    })
    .await
}

/// One answer of a hand-driven step: its status, `Location` and the
/// `Set-Cookie` values.
struct Step {
    status: u16,
    location: String,
    cookies: Vec<String>,
}

async fn step(http: &reqwest::Client, url: &str, cookie: Option<&str>) -> Result<Step> {
    let mut req = http.get(url);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.with_context(|| format!("GET {url}"))?;
    let h = r.headers();
    Ok(Step {
        status: r.status().as_u16(),
        location: h
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        cookies: h
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect(),
    })
}

fn query(url: &str, name: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `name=value` of cookie `name` among `Set-Cookie` values (with a
/// value: a clearing one does not count).
fn cookie(set: &[String], name: &str) -> Option<String> {
    set.iter()
        .filter_map(|c| c.split(';').next())
        .find(|kv| kv.starts_with(&format!("{name}=")) && kv.len() > name.len() + 1)
        .map(str::to_owned)
}

/// A login driven by hand: start, the provider's authorization (which
/// answers at once), then the console's callback, with the state
/// `tamper` makes of the provider's. The callback's answer.
async fn hand_login(
    http: &reqwest::Client,
    base: &str,
    tamper: impl Fn(&str) -> String,
) -> Result<Step> {
    let start = step(http, &format!("{base}api/oidc/start"), None).await?;
    ensure!(start.status == 303, "start: {}", start.status);
    let pending = cookie(&start.cookies, "cairn_console_sso")
        .with_context(|| format!("no pending-login cookie: {:?}", start.cookies))?;
    let authorize = step(http, &start.location, None).await?;
    ensure!(
        authorize.status == 302,
        "the provider's authorize: {}",
        authorize.status
    );
    let state = query(&authorize.location, "state").context("no state came back")?;
    let code = query(&authorize.location, "code").context("no code came back")?;
    let callback = format!(
        "{base}api/oidc/callback?{}",
        form_pairs(&[("code", &code), ("state", &tamper(&state))])
    );
    step(http, &callback, Some(&pending)).await
}

fn form_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_logs_in_with_the_openid_provider() -> Result<()> {
    let idp = OidcProvider::start().await?;
    // the provider's logins carry a policy claim naming a built-in policy
    idp.set_login_claims(r#"{"policy": "readwrite"}"#).await?;
    let server = sso_server(&idp).await?;
    let base = console_url(&server);

    let b = Browser::start(screens("sso")).await?;
    b.client.goto(&base).await?;
    b.on_page("login").await?;
    b.find("#sso:not([hidden]) #login-sso").await?;
    b.screenshot("login-with-sso").await?;
    b.click("#login-sso").await?;
    b.on_page("buckets").await?;
    let who = b.text("#who").await?;
    ensure!(
        who.contains("assumed-role/web-identity/johndoe"),
        "logged in as {who:?}"
    );
    ensure!(
        b.attr("#nav-admin", "hidden").await?.is_some(),
        "a web identity with readwrite sees the admin menu"
    );
    // nothing of the flow is left in the URL or the page's storage
    let url = b.client.current_url().await?.to_string();
    ensure!(
        !url.contains("code=") && !url.contains("state=") && !url.contains("token"),
        "{url}"
    );
    b.ensure_nothing_stored().await?;
    b.screenshot("buckets-after-sso").await?;
    // a bucket made in the page, as the web identity, is what S3 shows
    b.fill("#bucket-name", "sso-made").await?;
    b.click("#bucket-create").await?;
    b.find("tr[data-bucket=\"sso-made\"]").await?;
    server
        .s3()
        .head_bucket()
        .bucket("sso-made")
        .send()
        .await
        .context("the bucket made through SSO is not there")?;
    let api = Api::new(&server, b.session_cookie().await?)?;
    let (status, s) = api.session().await?;
    ensure!(status == 200 && s["admin"] == false, "{status} {s}");
    let r = api.req(reqwest::Method::GET, "admin/info").send().await?;
    ensure!(
        r.status() == 403,
        "admin API for a web identity: {}",
        r.status()
    );
    b.close().await?;

    // by hand: the start names PKCE S256, a state and a nonce
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let start = step(&http, &format!("{base}api/oidc/start"), None).await?;
    ensure!(
        start.location.starts_with(&idp.issuer()),
        "{}",
        start.location
    );
    for p in ["state", "nonce", "code_challenge"] {
        ensure!(
            query(&start.location, p).is_some_and(|v| v.len() >= 32),
            "{p} missing in {}",
            start.location
        );
    }
    ensure!(query(&start.location, "code_challenge_method").as_deref() == Some("S256"));
    ensure!(query(&start.location, "client_id").as_deref() == Some(CLIENT));
    let pending = start.cookies.join(" | ");
    ensure!(
        pending.contains("HttpOnly") && pending.contains("SameSite=Lax"),
        "{pending}"
    );

    // the right flow by hand gives a session
    let ok = hand_login(&http, &base, str::to_owned).await?;
    ensure!(
        ok.status == 303 && ok.location.ends_with("#/buckets"),
        "{} {}",
        ok.status,
        ok.location
    );
    let session = cookie(&ok.cookies, "cairn_console").context("no session cookie")?;
    let value = session.trim_start_matches("cairn_console=").to_owned();
    ensure!(Api::new(&server, value)?.session().await?.0 == 200);

    // refusals: a wrong state, a forged nonce, no started login, no policy
    let refused = |s: &Step, code: &str| -> Result<()> {
        ensure!(
            s.status == 303 && s.location.ends_with(&format!("#/login/error/{code}")),
            "expected {code}: {} {}",
            s.status,
            s.location
        );
        ensure!(
            cookie(&s.cookies, "cairn_console").is_none(),
            "{code}: a session was given"
        );
        Ok(())
    };
    let s = hand_login(&http, &base, |st| format!("{st}x")).await?;
    refused(&s, "StateMismatch")?;
    let s = step(
        &http,
        &format!("{base}api/oidc/callback?code=abc&state=def"),
        None,
    )
    .await?;
    refused(&s, "NoPendingLogin")?;
    idp.set_login_claims(r#"{"policy": "readwrite", "nonce": "forged"}"#)
        .await?;
    let s = hand_login(&http, &base, str::to_owned).await?;
    refused(&s, "NonceMismatch")?;
    idp.set_login_claims(r#"{"policy": "no-such-policy"}"#)
        .await?;
    let s = hand_login(&http, &base, str::to_owned).await?;
    ensure!(
        s.location.contains("#/login/error/") && cookie(&s.cookies, "cairn_console").is_none(),
        "a token mapping to no policy: {} {}",
        s.status,
        s.location
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_without_a_provider_offers_no_sso() -> Result<()> {
    let server = Server::start(StartOpts::drives(1)).await?;
    let base = console_url(&server);
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cfg: serde_json::Value = serde_json::from_slice(
        &http
            .get(format!("{base}api/config"))
            .send()
            .await?
            .bytes()
            .await?,
    )?;
    ensure!(cfg["sso"] == false, "{cfg}");
    let r = http.get(format!("{base}api/oidc/start")).send().await?;
    ensure!(
        r.status() == 404,
        "SSO start without a provider: {}",
        r.status()
    );
    Ok(())
}
