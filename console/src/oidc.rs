//! "Log in with SSO": the OpenID Connect authorization-code flow with
//! PKCE, whose ID token the console exchanges for temporary credentials
//! through the server's public STS API (AssumeRoleWithWebIdentity).
//!
//! 1. `GET api/oidc/start` draws a state, a nonce and a PKCE verifier,
//!    seals them (with the redirect URI and a 10-minute expiry) into the
//!    HTTP-only cookie `cairn_console_sso` (`SameSite=Lax`: the provider's
//!    redirect back is a cross-site navigation), and sends the browser to
//!    the provider's authorization endpoint with the state, the nonce and
//!    the verifier's S256 challenge.
//! 2. `GET api/oidc/callback?code&state`: the state must be the sealed
//!    one (compared in constant time); the code is exchanged at the
//!    token endpoint, server to server, with the verifier; the ID token's
//!    `nonce` must be the sealed one; the token goes, unsigned as the SDKs
//!    send it, to STS AssumeRoleWithWebIdentity on the server's own port,
//!    which checks its signature, issuer, audience and expiry and maps its
//!    claims to policies. Only the STS credentials are kept (the session
//!    cookie, as for a key login); the ID token is dropped. The browser
//!    then goes to the console's page (a failure: to the login page, with
//!    a short error code, never the provider's text).
//!
//! The nonce is read from the token before STS has checked its signature;
//! that is sound because the same token is then refused by STS unless the
//! provider signed it.

use std::time::{Duration, Instant};

use base64::Engine as _;
use http::header::{HeaderValue, SET_COOKIE};
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ConsoleError;
use crate::reply::{self, Body};
use crate::session::{self, AAD_SSO, Sessions};
use crate::upstream::Upstream;
use crate::{Ctx, PREFIX};

/// The pending login's cookie.
const COOKIE: &str = "cairn_console_sso";
/// Where the flow's two calls live (the pending cookie's path).
const PATH: &str = "/_cairn/console/api/oidc";
/// How long a started login may take at the provider.
const PENDING_SECS: i64 = 600;
/// How long the provider's discovery document is kept.
const DISCOVERY_TTL: Duration = Duration::from_secs(15 * 60);
/// A provider's answers at most (discovery document, token response).
const MAX_ANSWER: usize = 256 * 1024;

/// The provider the console logs users in with (`--oidc-config-url` and
/// a client registered there for the console's redirect URI).
#[derive(Debug, Clone)]
pub struct SsoConfig {
    /// The discovery document's URL.
    pub config_url: String,
    /// The console's client id at the provider (a token's `aud`, which
    /// STS must accept too).
    pub client_id: String,
    /// The client secret of a confidential client (`None`: a public
    /// client, PKCE alone).
    pub client_secret: Option<String>,
}

/// The provider's endpoints the flow uses.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    authorization_endpoint: String,
    token_endpoint: String,
}

/// The flow's client side.
#[derive(Debug)]
pub struct Sso {
    cfg: SsoConfig,
    http: reqwest::Client,
    discovery: tokio::sync::Mutex<Option<(Discovery, Instant)>>,
}

/// What the pending cookie holds between start and callback.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    redirect_uri: String,
    expires: i64,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The cookie value that sets (or, `None`, clears) the pending login.
fn pending_cookie(value: Option<&str>, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    let (v, age) = value.map_or(("", 0), |v| (v, PENDING_SECS));
    format!("{COOKIE}={v}; Path={PATH}; Max-Age={age}; HttpOnly; SameSite=Lax{secure}")
}

/// PKCE S256: base64url(SHA-256(verifier)).
fn challenge(verifier: &str) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// The `nonce` claim of a JWT's payload (not yet verified: see the
/// module doc).
fn token_nonce(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    v.get("nonce")?.as_str().map(str::to_owned)
}

/// A 303 to the console's page `fragment`.
fn to_page(fragment: &str) -> Response<Body> {
    reply::redirect(&format!("{PREFIX}/#/{fragment}"))
}

impl Sso {
    pub fn new(cfg: SsoConfig) -> Result<Self, ConsoleError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConsoleError::Transport(e.to_string()))?;
        Ok(Self {
            cfg,
            http,
            discovery: tokio::sync::Mutex::new(None),
        })
    }

    /// The provider's endpoints, fetched at most every 15 minutes.
    async fn discovery(&self) -> Result<Discovery, ConsoleError> {
        let mut kept = self.discovery.lock().await;
        if let Some((d, at)) = kept.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(d.clone());
        }
        let body = self.fetch(self.http.get(&self.cfg.config_url)).await?;
        let d: Discovery = serde_json::from_slice(&body)
            .map_err(|e| provider_error(format!("the discovery document does not parse: {e}")))?;
        *kept = Some((d.clone(), Instant::now()));
        Ok(d)
    }

    /// A provider's answer: 200 and at most [`MAX_ANSWER`] bytes.
    async fn fetch(&self, req: reqwest::RequestBuilder) -> Result<bytes::Bytes, ConsoleError> {
        let resp = req.send().await.map_err(|e| {
            tracing::error!(error = %e, "console SSO: the OpenID provider could not be reached");
            provider_error(e.to_string())
        })?;
        let status = resp.status();
        if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
            return Err(provider_error("the provider's answer is too big"));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| provider_error(e.to_string()))?;
        if body.len() > MAX_ANSWER {
            return Err(provider_error("the provider's answer is too big"));
        }
        if !status.is_success() {
            tracing::info!(%status, "console SSO: the provider refused");
            return Err(provider_error(format!("the provider answered {status}")));
        }
        Ok(body)
    }

    /// `GET api/oidc/start`: the pending cookie and a 303 to the
    /// provider.
    pub async fn start(
        &self,
        sessions: &Sessions,
        cx: &Ctx,
    ) -> Result<Response<Body>, ConsoleError> {
        let d = self.discovery().await?;
        let host = cx.authority()?;
        let scheme = if cx.tls { "https" } else { "http" };
        let p = Pending {
            state: sessions.random_hex(32)?,
            nonce: sessions.random_hex(32)?,
            verifier: sessions.random_hex(32)?,
            redirect_uri: format!("{scheme}://{host}{PATH}/callback"),
            expires: now() + PENDING_SECS,
        };
        let mut url = reqwest::Url::parse(&d.authorization_endpoint)
            .map_err(|e| provider_error(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.cfg.client_id)
            .append_pair("redirect_uri", &p.redirect_uri)
            .append_pair("scope", "openid")
            .append_pair("state", &p.state)
            .append_pair("nonce", &p.nonce)
            .append_pair("code_challenge", &challenge(&p.verifier))
            .append_pair("code_challenge_method", "S256");
        let sealed = sessions.seal_json(AAD_SSO, &p)?;
        let mut r = reply::redirect(url.as_str());
        set(&mut r, &pending_cookie(Some(&sealed), cx.tls))?;
        Ok(r)
    }

    /// `GET api/oidc/callback?code&state`: the session, or the login page
    /// with the reason's code; the pending cookie is cleared either way.
    pub async fn callback(&self, sessions: &Sessions, up: &Upstream, cx: &Ctx) -> Response<Body> {
        let mut r = match self.finish(sessions, up, cx).await {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(code = %e.code(), error = %e, "console SSO login refused");
                let code: String = e
                    .code()
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(64)
                    .collect();
                to_page(&format!("login/error/{code}"))
            }
        };
        if let Ok(v) = HeaderValue::from_str(&pending_cookie(None, cx.tls)) {
            r.headers_mut().append(SET_COOKIE, v);
        }
        r
    }

    async fn finish(
        &self,
        sessions: &Sessions,
        up: &Upstream,
        cx: &Ctx,
    ) -> Result<Response<Body>, ConsoleError> {
        if let Some(e) = cx.param("error") {
            tracing::info!(error = %e, "console SSO: the provider answered an error");
            return Err(ConsoleError::Sso("ProviderRefused"));
        }
        let sealed = session::named_cookie(&cx.headers, COOKIE)
            .ok_or(ConsoleError::Sso("NoPendingLogin"))?;
        let p: Pending = sessions
            .open_json(AAD_SSO, sealed)
            .map_err(|_| ConsoleError::Sso("NoPendingLogin"))?;
        if p.expires <= now() {
            return Err(ConsoleError::Sso("LoginExpired"));
        }
        let state = cx.param("state").unwrap_or_default();
        if !session::same_token(state, &p.state) {
            return Err(ConsoleError::Sso("StateMismatch"));
        }
        let code = cx
            .param("code")
            .filter(|c| !c.is_empty() && c.len() <= 4096)
            .ok_or(ConsoleError::Sso("NoCode"))?;
        let d = self.discovery().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", p.redirect_uri.as_str()),
            ("client_id", self.cfg.client_id.as_str()),
            ("code_verifier", p.verifier.as_str()),
        ];
        if let Some(secret) = &self.cfg.client_secret {
            form.push(("client_secret", secret));
        }
        let form = crate::upstream::form(&form);
        let req = self
            .http
            .post(&d.token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        let body = self.fetch(req).await?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| provider_error(format!("the token response does not parse: {e}")))?;
        let id_token = v
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or(ConsoleError::Sso("NoIdToken"))?;
        let nonce = token_nonce(id_token).unwrap_or_default();
        if !session::same_token(&nonce, &p.nonce) {
            return Err(ConsoleError::Sso("NonceMismatch"));
        }
        let t = up.assume_role_with_web_identity(id_token).await?;
        let (s, cookie) = crate::api::start_session(sessions, t, cx.tls)?;
        tracing::info!(user = %s.user, "console SSO login");
        let mut r = to_page("buckets");
        r.headers_mut().append(SET_COOKIE, cookie);
        Ok(r)
    }
}

fn provider_error(msg: impl Into<String>) -> ConsoleError {
    ConsoleError::Upstream {
        status: StatusCode::BAD_GATEWAY,
        code: "IDPCommunicationError".into(),
        message: msg.into(),
    }
}

fn set(r: &mut Response<Body>, cookie: &str) -> Result<(), ConsoleError> {
    let v = HeaderValue::from_str(cookie).map_err(|e| ConsoleError::Transport(e.to_string()))?;
    r.headers_mut().append(SET_COOKIE, v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_is_rfc7636_s256() {
        // RFC 7636 appendix B
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn nonce_is_read_from_the_payload() {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = format!("{}.{}.sig", b("{}"), b(r#"{"nonce":"n1","sub":"x"}"#));
        assert_eq!(token_nonce(&jwt).as_deref(), Some("n1"));
        assert_eq!(token_nonce("nodots"), None);
        let c = pending_cookie(Some("v"), false);
        assert!(
            c.contains("HttpOnly")
                && c.contains("SameSite=Lax")
                && c.contains("Path=/_cairn/console/api/oidc")
        );
    }
}
