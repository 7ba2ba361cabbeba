//! A real OpenID Connect provider for the OIDC tests: npm
//! `oauth2-mock-server` driven by tests/oidc/provider.js (node), on two
//! free loopback ports (the provider's and a control port to mint tokens
//! and rotate keys). Killed on drop. A missing node or module fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::raw::Client;

/// One provider process (one issuer).
pub struct OidcProvider {
    child: Child,
    port: u16,
    control: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc/provider.js")
}

impl OidcProvider {
    /// Starts a provider and waits until both its ports answer.
    pub async fn start() -> Result<OidcProvider> {
        crate::require_tool("node")?;
        crate::require_tool("npm")?;
        let port = crate::free_port()?;
        let control = crate::free_port()?;
        let dir = tempfile::Builder::new().prefix("cairn-oidc-").tempdir()?;
        let log = dir.path().join("provider.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new("node")
            .arg(script())
            .arg(port.to_string())
            .arg(control.to_string())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("spawning node tests/oidc/provider.js")?;
        let mut p = OidcProvider {
            child,
            port,
            control,
            log,
            _dir: dir,
        };
        for _ in 0..300 {
            if let Some(st) = p.child.try_wait()? {
                bail!("the OIDC provider exited ({st}):\n{}", p.log_text());
            }
            if std::fs::read_to_string(&p.log).is_ok_and(|s| s.contains("\"issuer\"")) {
                return Ok(p);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the OIDC provider did not start in 30 s:\n{}", p.log_text())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The issuer (`iss`) of its tokens.
    pub fn issuer(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    /// The control port's URL (`POST /mint`, `POST /rotate`, `GET /keys`:
    /// see tests/oidc/provider.js), for scripts.
    pub fn control_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.control)
    }

    /// The discovery document's URL (`--oidc-config-url`).
    pub fn config_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }

    async fn control(&self, method: &str, path: &str, body: &str) -> Result<String> {
        let r = Client::new(format!("127.0.0.1:{}", self.control), None)
            .send(
                method,
                path,
                &[("content-type", "application/json")],
                body.as_bytes(),
            )
            .await?;
        ensure!(r.status == 200, "provider {path}: {}", r.describe());
        Ok(String::from_utf8(r.body)?)
    }

    /// A token with `claims` (JSON object text, merged over iss/iat/exp/nbf)
    /// valid for `expires_in` seconds (negative: already expired).
    pub async fn mint(&self, claims: &str, expires_in: i64) -> Result<String> {
        self.control(
            "POST",
            "/mint",
            &format!(r#"{{"claims": {claims}, "expiresIn": {expires_in}}}"#),
        )
        .await
    }

    /// A token signed by key `kid` (a retired one included).
    pub async fn mint_with_key(&self, claims: &str, kid: &str) -> Result<String> {
        self.control(
            "POST",
            "/mint",
            &format!(r#"{{"claims": {claims}, "kid": "{kid}"}}"#),
        )
        .await
    }

    /// The key id of the key signing now.
    pub async fn current_kid(&self) -> Result<String> {
        let jwks = self.control("GET", "/keys", "").await?;
        let start = jwks.find("\"kid\":\"").context("no kid in the JWKS")? + 7;
        let rest = jwks.get(start..).unwrap_or_default();
        Ok(rest.split('"').next().unwrap_or_default().to_owned())
    }

    /// Claims (JSON object text) merged into every token the provider's
    /// own token endpoint issues from now on (authorization-code logins).
    pub async fn set_login_claims(&self, claims: &str) -> Result<()> {
        self.control("POST", "/login-claims", claims)
            .await
            .map(|_| ())
    }

    /// A new signing key; every older one leaves the JWKS.
    pub async fn rotate(&self) -> Result<()> {
        self.control("POST", "/rotate", "").await.map(|_| ())
    }
}
