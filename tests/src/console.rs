//! The web console's browser tests' kit (tests/tests/console*.rs): a
//! headless Debian chromium driven over WebDriver by chromedriver
//! (fantoccini), waits on the console's pages, screenshots, and the
//! console's JSON API called with a session's cookie.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};

use crate::{Server, require_tool};

/// How long a page or a download may take.
pub const WAIT: Duration = Duration::from_secs(60);

/// chromedriver and a headless chromium session; both stopped on drop.
pub struct Browser {
    pub client: Client,
    driver: tokio::process::Child,
    downloads: tempfile::TempDir,
    screens: PathBuf,
}

impl Browser {
    /// A browser whose screenshots go to the folder `screens`.
    pub async fn start(screens: PathBuf) -> Result<Self> {
        let driver_bin = require_tool("chromedriver")?;
        let chromium = require_tool("chromium")?;
        let port = crate::free_port()?;
        let driver = tokio::process::Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting chromedriver")?;
        let downloads = tempfile::tempdir()?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-proxy-server"],
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                },
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if started.elapsed() < WAIT => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => bail!("no WebDriver session from chromedriver: {e}"),
            }
        };
        std::fs::create_dir_all(&screens)?;
        Ok(Self {
            client,
            driver,
            downloads,
            screens,
        })
    }

    /// A PNG of the page as `<name>.png`.
    pub async fn screenshot(&self, name: &str) -> Result<()> {
        let png = self.client.screenshot().await?;
        let path = self.screens.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        eprintln!("screenshot {}", path.display());
        Ok(())
    }

    /// Waits for an element matching `css`.
    pub async fn find(&self, css: &str) -> Result<fantoccini::elements::Element> {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no element {css} within {WAIT:?}"))
    }

    /// Waits until the page shows `page` (body's data-page).
    pub async fn on_page(&self, page: &str) -> Result<()> {
        self.find(&format!("body[data-page=\"{page}\"]")).await?;
        Ok(())
    }

    /// Runs `op` on the element matching `css`, looked up again when the
    /// page re-rendered it in between (WebDriver's "stale element
    /// reference": the console redraws a page when its data arrives).
    pub async fn on_element<T, F, Fut>(&self, css: &str, op: F) -> Result<T>
    where
        F: Fn(Element) -> Fut,
        Fut: Future<Output = Result<T, CmdError>>,
    {
        let started = Instant::now();
        loop {
            let e = self.find(css).await?;
            match op(e).await {
                Err(err) if err.is_stale_element_reference() && started.elapsed() < WAIT => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                r => return r.with_context(|| format!("on element {css}")),
            }
        }
    }

    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        self.on_element(css, |e| async move {
            e.clear().await?;
            e.send_keys(text).await
        })
        .await
    }

    pub async fn click(&self, css: &str) -> Result<()> {
        self.on_element(css, |e| async move { e.click().await })
            .await
    }

    /// The text of the element `css` as it is now.
    pub async fn text(&self, css: &str) -> Result<String> {
        self.on_element(css, |e| async move { e.text().await })
            .await
    }

    /// The attribute `name` of the element `css` as it is now.
    pub async fn attr(&self, css: &str, name: &str) -> Result<Option<String>> {
        self.on_element(css, |e| async move { e.attr(name).await })
            .await
    }

    /// The `value` of the field `css` once it is not empty.
    pub async fn value_of(&self, css: &str) -> Result<String> {
        let started = Instant::now();
        loop {
            let v = self
                .on_element(css, |e| async move { e.prop("value").await })
                .await?
                .unwrap_or_default();
            if !v.is_empty() {
                return Ok(v);
            }
            if started.elapsed() > WAIT {
                bail!("{css} stayed empty");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of `css` once it is not blank, trimmed.
    pub async fn text_of(&self, css: &str) -> Result<String> {
        let started = Instant::now();
        loop {
            let t = self.text(css).await?;
            if !t.trim().is_empty() {
                return Ok(t.trim().to_owned());
            }
            if started.elapsed() > WAIT {
                bail!("{css} stayed empty");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fails if the page keeps anything in local or session storage or
    /// can read a cookie (the session's is HTTP-only).
    pub async fn ensure_nothing_stored(&self) -> Result<()> {
        let stored = self
            .client
            .execute(
                "return JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie",
                vec![],
            )
            .await?;
        ensure!(
            stored.as_str() == Some("{}{}"),
            "storage or script-visible cookies: {stored}"
        );
        Ok(())
    }

    /// Waits until the status line reads something containing `text`.
    pub async fn status(&self, text: &str) -> Result<()> {
        let started = Instant::now();
        loop {
            let s = self.text("#status").await?;
            if s.contains(text) {
                return Ok(());
            }
            if started.elapsed() > WAIT {
                bail!("status {s:?} never showed {text:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn login(&self, base: &str, access: &str, secret: &str) -> Result<()> {
        self.client.goto(base).await?;
        self.on_page("login").await?;
        self.fill("#login-access", access).await?;
        self.fill("#login-secret", secret).await?;
        self.click("#login-submit").await?;
        self.on_page("buckets").await
    }

    /// The session cookie's value (HTTP-only: not the page's to read,
    /// WebDriver's only).
    pub async fn session_cookie(&self) -> Result<String> {
        let all = self.client.get_all_cookies().await?;
        let c = all
            .iter()
            .find(|c| c.name() == "cairn_console")
            .ok_or_else(|| anyhow!("no session cookie"))?;
        ensure!(
            c.http_only() == Some(true),
            "the session cookie is not HttpOnly"
        );
        ensure!(
            format!("{:?}", c.same_site()) == "Some(Strict)",
            "the session cookie is not SameSite=Strict"
        );
        Ok(c.value().to_owned())
    }

    /// A downloaded file named `name`, once complete.
    pub async fn downloaded(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.downloads.path().join(name);
        let started = Instant::now();
        loop {
            let partial = std::fs::read_dir(self.downloads.path())?
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().ends_with(".crdownload"));
            if path.is_file() && !partial {
                return Ok(std::fs::read(&path)?);
            }
            if started.elapsed() > WAIT {
                bail!("{name} was not downloaded within {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn close(mut self) -> Result<()> {
        self.client.clone().close().await?;
        self.driver.kill().await?;
        Ok(())
    }
}

/// A new IAM user whose policy allows S3 only (`s3:*`), made with `aws
/// iam` as root: its access key and secret.
pub fn s3_only_user(server: &Server, name: &str) -> Result<(String, String)> {
    server.aws_iam(&["create-user", "--user-name", name])?;
    server.aws_iam(&[
        "put-user-policy", "--user-name", name, "--policy-name", "p", "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
    ])?;
    let key = server.aws_iam(&["create-access-key", "--user-name", name])?;
    let field = |f: &str| {
        key["AccessKey"][f]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no {f} in {key}"))
    };
    Ok((field("AccessKeyId")?, field("SecretAccessKey")?))
}

pub fn console_url(s: &Server) -> String {
    format!("{}/_cairn/console/", s.endpoint())
}

/// Random bytes from a fixed seed.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore as _, SeedableRng as _};
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// A console API call with a session cookie (and CSRF token / Origin).
pub struct Api {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Api {
    pub fn new(s: &Server, cookie: String) -> Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder().no_proxy().build()?,
            base: console_url(s),
            cookie,
        })
    }

    pub fn req(&self, method: reqwest::Method, call: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}api/{call}", self.base))
            .header("cookie", format!("cairn_console={}", self.cookie))
    }

    pub async fn session(&self) -> Result<(reqwest::StatusCode, serde_json::Value)> {
        let r = self.req(reqwest::Method::GET, "session").send().await?;
        let status = r.status();
        Ok((
            status,
            serde_json::from_slice(&r.bytes().await?).unwrap_or_default(),
        ))
    }
}
