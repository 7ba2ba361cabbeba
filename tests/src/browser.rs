//! A real browser against the server: a tiny HTTP server serving a test's
//! page on its own origin ([`PageServer`]), headless Debian `chromium`
//! loading it ([`run_chromium`]), and browser POST form fields signed with
//! a policy ([`post_form_v4`], [`post_form_v2`]).
//!
//! The page reports back to the page server (`POST /result` with a JSON
//! body, or a navigation to `/done?...` after a form's redirect); the test
//! waits for those reports, bounded in time, then stops chromium.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::raw::Creds;

type Pages = Arc<Mutex<HashMap<String, String>>>;

/// What the page server heard from a page.
#[derive(Debug, Clone)]
pub enum Report {
    /// `POST /result`: the body.
    Result(String),
    /// `GET /done?<query>`: the query.
    Done(String),
}

/// Serves the pages a test gives (path -> HTML) on 127.0.0.1 (reachable as
/// `localhost` too: another origin for the same page), and passes the
/// page's reports on.
pub struct PageServer {
    pub port: u16,
    pages: Pages,
    reports: mpsc::UnboundedReceiver<Report>,
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    /// A server with no pages yet ([`PageServer::set_page`]).
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (tx, reports) = mpsc::unbounded_channel();
        let pages: Pages = Arc::default();
        let served = pages.clone();
        let task = tokio::spawn(async move {
            let pages = served;
            while let Ok((stream, _)) = listener.accept().await {
                let (pages, tx) = (pages.clone(), tx.clone());
                tokio::spawn(async move {
                    let _ = serve_one(stream, &pages, &tx).await;
                });
            }
        });
        Ok(Self {
            port,
            pages,
            reports,
            task,
        })
    }

    /// Serves `html` at `path` (e.g. `/page.html`).
    pub fn set_page(&self, path: &str, html: String) {
        if let Ok(mut p) = self.pages.lock() {
            p.insert(path.to_owned(), html);
        }
    }

    /// The next report, within `timeout`.
    pub async fn report(&mut self, timeout: Duration) -> Result<Report> {
        tokio::time::timeout(timeout, self.reports.recv())
            .await
            .map_err(|_| anyhow!("no report from the page within {timeout:?}"))?
            .ok_or_else(|| anyhow!("page server stopped"))
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one(
    stream: tokio::net::TcpStream,
    pages: &Pages,
    tx: &mpsc::UnboundedSender<Report>,
) -> Result<()> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("/").to_owned();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).await? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len.min(1 << 20)];
    r.read_exact(&mut body).await?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (status, ctype, text) = match (method.as_str(), path) {
        ("POST", "/result") => {
            let _ = tx.send(Report::Result(String::from_utf8_lossy(&body).into_owned()));
            ("200 OK", "text/plain", "ok".to_owned())
        }
        ("GET", "/done") => {
            let _ = tx.send(Report::Done(query.to_owned()));
            (
                "200 OK",
                "text/html",
                "<html><body>done</body></html>".to_owned(),
            )
        }
        ("GET", p) => match pages.lock().ok().and_then(|m| m.get(p).cloned()) {
            Some(html) => ("200 OK", "text/html; charset=utf-8", html),
            None => ("404 Not Found", "text/plain", "no such page".to_owned()),
        },
        _ => ("405 Method Not Allowed", "text/plain", String::new()),
    };
    let mut s = r.into_inner();
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n\r\n",
        text.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(text.as_bytes()).await?;
    s.flush().await?;
    Ok(())
}

/// Headless chromium showing one page; killed (its whole process group)
/// when dropped.
pub struct Chromium {
    child: tokio::process::Child,
    _profile: tempfile::TempDir,
}

/// Starts headless Debian `chromium` on `url` (a missing chromium is a
/// failure: scripts/test installs it).
pub fn run_chromium(url: &str) -> Result<Chromium> {
    let bin: PathBuf = crate::require_tool("chromium")?;
    let profile = tempfile::tempdir()?;
    let child = tokio::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--no-proxy-server",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start chromium")?;
    Ok(Chromium {
        child,
        _profile: profile,
    })
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id()
            && let Ok(pid) = i32::try_from(pid)
        {
            // the group chromium leads (renderers, GPU and zygote
            // processes are in it): our own processes only
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

type HmacSha256 = Hmac<sha2::Sha256>;

fn hmac256(key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    let mut m = HmacSha256::new_from_slice(key).map_err(|e| anyhow!("hmac key: {e}"))?;
    m.update(data);
    Ok(m.finalize().into_bytes().to_vec())
}

/// The form fields of a SigV4 browser POST upload: `fields` (each must
/// appear in `conditions` unless exempt), then `x-amz-algorithm`,
/// `x-amz-credential`, `x-amz-date` (each added to the policy as an `eq`
/// condition), `policy` and `x-amz-signature`. The policy expires after
/// `expires_in` (a negative duration: already expired).
pub fn post_form_v4(
    creds: &Creds,
    region: &str,
    fields: &[(&str, &str)],
    conditions: &[serde_json::Value],
    expires_in: time::Duration,
) -> Result<Vec<(String, String)>> {
    let now = time::OffsetDateTime::now_utc();
    let day = format!(
        "{:04}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let amz_date = format!(
        "{day}T{:02}{:02}{:02}Z",
        now.hour(),
        now.minute(),
        now.second()
    );
    let credential = format!("{}/{day}/{region}/s3/aws4_request", creds.access_key);
    let mut conds: Vec<serde_json::Value> = conditions.to_vec();
    conds.push(serde_json::json!({"x-amz-algorithm": "AWS4-HMAC-SHA256"}));
    conds.push(serde_json::json!({ "x-amz-credential": credential }));
    conds.push(serde_json::json!({ "x-amz-date": amz_date }));
    let policy = policy_b64(expires_in, conds)?;
    let k_date = hmac256(
        format!("AWS4{}", creds.secret_key).as_bytes(),
        day.as_bytes(),
    )?;
    let k_region = hmac256(&k_date, region.as_bytes())?;
    let k_service = hmac256(&k_region, b"s3")?;
    let k_signing = hmac256(&k_service, b"aws4_request")?;
    let signature = hex::encode(hmac256(&k_signing, policy.as_bytes())?);
    let mut out: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    out.push(("x-amz-algorithm".into(), "AWS4-HMAC-SHA256".into()));
    out.push(("x-amz-credential".into(), credential));
    out.push(("x-amz-date".into(), amz_date));
    out.push(("policy".into(), policy));
    out.push(("x-amz-signature".into(), signature));
    Ok(out)
}

/// The form fields of a SigV2 browser POST upload: `fields`, then
/// `AWSAccessKeyId`, `policy` and `signature` (HMAC-SHA1 of the policy).
pub fn post_form_v2(
    creds: &Creds,
    fields: &[(&str, &str)],
    conditions: &[serde_json::Value],
    expires_in: time::Duration,
) -> Result<Vec<(String, String)>> {
    let policy = policy_b64(expires_in, conditions.to_vec())?;
    let mut m = Hmac::<sha1::Sha1>::new_from_slice(creds.secret_key.as_bytes())
        .map_err(|e| anyhow!("hmac key: {e}"))?;
    m.update(policy.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
    let mut out: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    out.push(("AWSAccessKeyId".into(), creds.access_key.clone()));
    out.push(("policy".into(), policy));
    out.push(("signature".into(), signature));
    Ok(out)
}

fn policy_b64(expires_in: time::Duration, conditions: Vec<serde_json::Value>) -> Result<String> {
    let exp = time::OffsetDateTime::now_utc() + expires_in;
    let expiration = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        exp.year(),
        u8::from(exp.month()),
        exp.day(),
        exp.hour(),
        exp.minute(),
        exp.second()
    );
    let doc = serde_json::json!({
        "expiration": expiration,
        "conditions": conditions,
    });
    Ok(base64::engine::general_purpose::STANDARD.encode(doc.to_string()))
}

/// A `multipart/form-data` body of `fields` then the `file` part (name
/// `filename`, `content`), and its boundary.
pub fn form_body(fields: &[(String, String)], filename: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----cairnFormBoundary7MA4YWxkTrZu0gW".to_owned();
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

/// Fails unless `v` is a JSON object (a page's report).
pub fn report_json(r: &Report) -> Result<serde_json::Value> {
    match r {
        Report::Result(body) => {
            serde_json::from_str(body).with_context(|| format!("page report {body:?}"))
        }
        Report::Done(q) => bail!("expected a result, got /done?{q}"),
    }
}
