//! Temporary credentials without shared state: everything a session is
//! travels in its session token, signed by a key every node of a
//! deployment derives the same way, so any node checks any session
//! without asking another (and nothing is stored per session).
//!
//! - The access key id is `ASIA` plus 16 random characters; its secret
//!   is HMAC(key, "secret" | access key id), so a signer that only knows
//!   the access key id (as s3s's does) can find it.
//! - The session token is `v1.` + base64url(claims JSON) + `.` +
//!   base64url(HMAC(key, "token" | claims JSON)). A request with an
//!   `ASIA` key must carry its token; the token must name that key and
//!   not be expired, to the second.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The prefix of every temporary access key id.
pub const SESSION_KEY_PREFIX: &str = "ASIA";
const TOKEN_VERSION: &str = "v1";
/// The shortest and longest session AWS allows (15 minutes to 12 hours).
pub const MIN_DURATION_SECS: i64 = 900;
pub const MAX_DURATION_SECS: i64 = 43_200;

/// Whose session it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionParent {
    /// AssumeRole by an IAM user (or the root user): the user's policies.
    User { user: String },
    /// AssumeRole into a role (trust policy checked at issue time).
    Role { role: String, session_name: String },
    /// AssumeRoleWithWebIdentity: policies from the token's claims.
    WebIdentity {
        issuer: String,
        subject: String,
        /// The policies the claims map to.
        policies: Vec<String>,
        /// Cairn groups from the token's groups claim.
        groups: Vec<String>,
    },
}

/// What a session token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The session's access key id.
    pub access_key: String,
    pub parent: SessionParent,
    /// Expiry, in seconds since the epoch.
    pub expires: i64,
    /// An inline session policy, narrowing the parent's rights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Claims offered as `jwt:<name>` condition keys and variables.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub jwt: std::collections::BTreeMap<String, Vec<String>>,
}

/// Credentials handed to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: String,
    /// Seconds since the epoch.
    pub expires: i64,
}

/// Why a session token was refused (all answered as
/// `InvalidToken`/`ExpiredToken` without more detail to the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the session token is malformed")]
    Malformed,
    #[error("the session token's signature does not match")]
    BadSignature,
    #[error("the session token belongs to another access key")]
    WrongKey,
    #[error("the session token expired")]
    Expired,
    #[error("a temporary access key needs its session token")]
    Missing,
}

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks sessions with a deployment's key.
#[derive(Clone)]
pub struct SessionSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for SessionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSigner(..)")
    }
}

impl SessionSigner {
    /// The signer of a deployment whose root secret is `root_secret`
    /// (every node has it, so every node derives the same key; changing
    /// the root secret ends every session, as in MinIO).
    pub fn from_root_secret(root_secret: &str, deployment_id: &str) -> Self {
        let mut mac = mac(root_secret.as_bytes());
        mac.update(b"cairn-sts-v1\0");
        mac.update(deployment_id.as_bytes());
        SessionSigner {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn tag(&self, label: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = mac(&self.key);
        m.update(label);
        m.update(b"\0");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }

    /// The secret of temporary access key `access_key`.
    pub fn secret_for(&self, access_key: &str) -> String {
        let t = self.tag(b"secret", access_key.as_bytes());
        URL_SAFE_NO_PAD.encode(t).chars().take(40).collect()
    }

    /// New credentials for a session described by `claims` (its
    /// `access_key` is filled in here).
    pub fn issue(&self, mut claims: SessionClaims) -> SessionCredentials {
        claims.access_key = new_session_key();
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        let token = format!(
            "{TOKEN_VERSION}.{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(self.tag(b"token", &json))
        );
        SessionCredentials {
            secret_key: self.secret_for(&claims.access_key),
            access_key: claims.access_key,
            session_token: token,
            expires: claims.expires,
        }
    }

    /// Checks `token` for a request signed with `access_key` at `now`
    /// (seconds since the epoch) and returns its claims.
    pub fn verify(
        &self,
        token: &str,
        access_key: &str,
        now: i64,
    ) -> Result<SessionClaims, TokenError> {
        let mut parts = token.split('.');
        let (Some(TOKEN_VERSION), Some(body), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Malformed)?;
        let mut m = mac(&self.key);
        m.update(b"token\0");
        m.update(&json);
        m.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
        let claims: SessionClaims =
            serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.access_key != access_key {
            return Err(TokenError::WrongKey);
        }
        if now >= claims.expires {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length: this cannot fail
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

const KEY_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// `prefix` followed by random upper-case letters and digits, 20 in all.
pub(crate) fn new_key_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut id = prefix.to_owned();
    while id.len() < 20 {
        let i = rng.random_range(0..KEY_CHARS.len());
        id.push(char::from(KEY_CHARS.get(i).copied().unwrap_or(b'A')));
    }
    id
}

fn new_session_key() -> String {
    new_key_id(SESSION_KEY_PREFIX)
}

/// Whether `access_key` is a temporary one (its requests need a token).
pub fn is_session_key(access_key: &str) -> bool {
    access_key.starts_with(SESSION_KEY_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(expires: i64) -> SessionClaims {
        SessionClaims {
            access_key: String::new(),
            parent: SessionParent::User {
                user: "alice".into(),
            },
            expires,
            policy: None,
            jwt: Default::default(),
        }
    }

    #[test]
    fn issued_sessions_verify_until_they_expire() {
        let s = SessionSigner::from_root_secret("root-secret", "dep-1");
        let c = s.issue(claims(1_000));
        assert!(is_session_key(&c.access_key) && c.access_key.len() == 20);
        assert_eq!(c.secret_key, s.secret_for(&c.access_key));
        assert_eq!(c.secret_key.len(), 40);
        let got = s.verify(&c.session_token, &c.access_key, 999).unwrap();
        assert_eq!(
            got.parent,
            SessionParent::User {
                user: "alice".into()
            }
        );
        assert_eq!(got.access_key, c.access_key);
        assert_eq!(
            s.verify(&c.session_token, &c.access_key, 1_000),
            Err(TokenError::Expired)
        );
        // another deployment or root secret does not accept it
        let other = SessionSigner::from_root_secret("root-secret", "dep-2");
        assert_eq!(
            other.verify(&c.session_token, &c.access_key, 1),
            Err(TokenError::BadSignature)
        );
        assert_ne!(other.secret_for(&c.access_key), c.secret_key);
        // nor another key's requests
        let d = s.issue(claims(1_000));
        assert_eq!(
            s.verify(&c.session_token, &d.access_key, 1),
            Err(TokenError::WrongKey)
        );
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let s = SessionSigner::from_root_secret("root-secret", "dep-1");
        let c = s.issue(claims(1_000));
        let mut parts: Vec<String> = c.session_token.split('.').map(str::to_owned).collect();
        // extend the expiry in the claims, keep the signature
        let json = URL_SAFE_NO_PAD.decode(&parts[1]).unwrap();
        let text = String::from_utf8(json)
            .unwrap()
            .replace("1000", "9999999999");
        parts[1] = URL_SAFE_NO_PAD.encode(text);
        let forged = parts.join(".");
        assert_eq!(
            s.verify(&forged, &c.access_key, 1),
            Err(TokenError::BadSignature)
        );
        for bad in ["", "v1", "v1.a", "v2.a.b", "v1.!!.b", "v1.a.b.c"] {
            assert!(s.verify(bad, &c.access_key, 1).is_err(), "{bad}");
        }
    }
}
