//! Console sessions: the STS temporary credentials of a login, sealed
//! into an HTTP-only, SameSite=Strict cookie (Secure on TLS).
//!
//! The cookie is `base64url(nonce || ChaCha20-Poly1305(JSON))` under a key
//! drawn at random when the process starts: nobody but this process can
//! read or forge one, and every session ends when the server restarts
//! (users log in again). The long-term secret a user typed is used once,
//! to sign the STS AssumeRole call, and never stored. Each session also
//! has an id the process remembers until the credentials expire: logout
//! forgets it, so a copy of the cookie is dead from then on.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::ConsoleError;

/// The cookie's name.
pub const COOKIE: &str = "cairn_console";
/// Bound into every sealed session cookie.
const AAD: &[u8] = b"cairn-console-session-v1";
/// Bound into every sealed pending-SSO-login cookie (crate::oidc): one
/// kind of cookie never opens as the other.
pub const AAD_SSO: &[u8] = b"cairn-console-sso-login-v1";
/// Browsers keep cookies up to 4096 bytes (name and attributes included).
const MAX_COOKIE: usize = 3800;
/// Live sessions the process remembers at most (a flood of logins beyond
/// it is refused until some expire or log out).
const MAX_SESSIONS: usize = 100_000;

/// What a session cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// Random id, known to the process while the session lives.
    pub id: String,
    /// The temporary credentials (STS AssumeRole).
    pub access_key: String,
    pub secret_key: String,
    pub session_token: String,
    /// When they expire, seconds since the epoch.
    pub expires: i64,
    /// Who logged in (the ARN STS named), for the page.
    pub user: String,
    /// The token every state-changing request must carry in
    /// `X-Cairn-Csrf`.
    pub csrf: String,
}

/// Seals and opens session cookies; remembers the live session ids.
pub struct Sessions {
    key: LessSafeKey,
    rng: SystemRandom,
    /// id -> expiry.
    live: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

/// The process could not draw random bytes.
#[derive(Debug, thiserror::Error)]
#[error("no random bytes for the console's session key")]
pub struct NoRandom;

impl Sessions {
    /// A new, random sealing key.
    pub fn new() -> Result<Self, NoRandom> {
        let rng = SystemRandom::new();
        let mut key = [0u8; 32];
        rng.fill(&mut key).map_err(|_| NoRandom)?;
        let key = UnboundKey::new(&CHACHA20_POLY1305, &key).map_err(|_| NoRandom)?;
        Ok(Self {
            key: LessSafeKey::new(key),
            rng,
            live: Mutex::default(),
        })
    }

    /// `n` random bytes, hex.
    pub fn random_hex(&self, n: usize) -> Result<String, ConsoleError> {
        let mut b = vec![0u8; n];
        self.rng
            .fill(&mut b)
            .map_err(|_| ConsoleError::Transport("no random bytes".into()))?;
        Ok(hex::encode(b))
    }

    /// Remembers `s` as live and seals it into a cookie value.
    pub fn open_session(&self, s: &Session, now: i64) -> Result<String, ConsoleError> {
        let value = self.seal(s)?;
        let mut live = self.live.lock().map_err(|_| ConsoleError::NoSession)?;
        live.retain(|_, exp| *exp > now);
        if live.len() >= MAX_SESSIONS {
            tracing::warn!(
                sessions = live.len(),
                "console: too many live sessions; login refused"
            );
            return Err(ConsoleError::Upstream {
                status: http::StatusCode::SERVICE_UNAVAILABLE,
                code: "TooManySessions".into(),
                message: "too many console sessions; try again later".into(),
            });
        }
        live.insert(s.id.clone(), s.expires);
        Ok(value)
    }

    /// Forgets a session (logout).
    pub fn close(&self, s: &Session) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(&s.id);
        }
    }

    fn seal(&self, s: &Session) -> Result<String, ConsoleError> {
        self.seal_json(AAD, s)
    }

    /// `v` as JSON sealed under the process's key with `aad` bound in,
    /// base64url: a cookie value nobody else can read or forge.
    pub fn seal_json<T: Serialize>(
        &self,
        aad: &'static [u8],
        v: &T,
    ) -> Result<String, ConsoleError> {
        let mut data = serde_json::to_vec(v).map_err(|e| ConsoleError::Transport(e.to_string()))?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| ConsoleError::Transport("no random bytes".into()))?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut data,
            )
            .map_err(|_| ConsoleError::Transport("sealing the session failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out);
        if value.len() > MAX_COOKIE {
            return Err(ConsoleError::bad(
                "the session's credentials are too big for a cookie",
            ));
        }
        Ok(value)
    }

    /// The live, unexpired session a cookie value holds.
    pub fn open(&self, value: &str, now: i64) -> Result<Session, ConsoleError> {
        let s: Session = self.open_json(AAD, value)?;
        if s.expires <= now {
            return Err(ConsoleError::NoSession);
        }
        let live = self.live.lock().map_err(|_| ConsoleError::NoSession)?;
        if !live.contains_key(&s.id) {
            return Err(ConsoleError::NoSession);
        }
        Ok(s)
    }

    /// What [`Sessions::seal_json`] sealed with `aad` (`NoSession` for
    /// anything else).
    pub fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        aad: &'static [u8],
        value: &str,
    ) -> Result<T, ConsoleError> {
        if value.len() > MAX_COOKIE {
            return Err(ConsoleError::NoSession);
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| ConsoleError::NoSession)?;
        let (nonce, sealed) = raw
            .split_at_checked(NONCE_LEN)
            .ok_or(ConsoleError::NoSession)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| ConsoleError::NoSession)?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut sealed)
            .map_err(|_| ConsoleError::NoSession)?;
        serde_json::from_slice(plain).map_err(|_| ConsoleError::NoSession)
    }
}

/// The session cookie's value in a request's `Cookie` headers.
pub fn cookie_value(headers: &http::HeaderMap) -> Option<&str> {
    named_cookie(headers, COOKIE)
}

/// Cookie `name`'s value in a request's `Cookie` headers.
pub fn named_cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value for a session (`value`), or one that clears it
/// (`None`).
pub fn set_cookie(value: Option<&str>, path: &str, tls: bool, max_age: i64) -> String {
    let secure = if tls { "; Secure" } else { "" };
    match value {
        Some(v) => format!(
            "{COOKIE}={v}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
        ),
        None => format!("{COOKIE}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Strict{secure}"),
    }
}

/// Whether two tokens are equal, in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, expires: i64) -> Session {
        Session {
            id: id.into(),
            access_key: "ASIAEXAMPLE".into(),
            secret_key: "secret".into(),
            session_token: "token".into(),
            expires,
            user: "arn:aws:iam::1:root".into(),
            csrf: "c".into(),
        }
    }

    #[test]
    fn sealed_sessions_open_until_closed_or_expired() -> Result<(), ConsoleError> {
        let s = Sessions::new().map_err(|_| ConsoleError::NoSession)?;
        let one = session("a", 100);
        let v = s.open_session(&one, 10)?;
        assert!(!v.contains("secret"), "the cookie is sealed");
        assert_eq!(s.open(&v, 50)?.secret_key, "secret");
        assert!(matches!(s.open(&v, 100), Err(ConsoleError::NoSession)));
        // tampered: any changed byte fails
        let mut bad = v.clone().into_bytes();
        if let Some(b) = bad.get_mut(20) {
            *b = if *b == b'A' { b'B' } else { b'A' };
        }
        let bad = String::from_utf8(bad).unwrap_or_default();
        assert!(s.open(&bad, 50).is_err());
        // another process's key cannot open it
        let other = Sessions::new().map_err(|_| ConsoleError::NoSession)?;
        assert!(other.open(&v, 50).is_err());
        s.close(&one);
        assert!(matches!(s.open(&v, 50), Err(ConsoleError::NoSession)));
        Ok(())
    }

    #[test]
    fn cookies_are_found_and_tokens_compared() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            http::HeaderValue::from_static("x=1; cairn_console=abc; y=2"),
        );
        assert_eq!(cookie_value(&h), Some("abc"));
        assert!(same_token("abcd", "abcd"));
        assert!(!same_token("abcd", "abce"));
        assert!(!same_token("abc", "abcd"));
        let c = set_cookie(Some("v"), "/_cairn/console", true, 60);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
    }
}
