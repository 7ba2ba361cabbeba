//! OpenID Connect: the identity provider STS AssumeRoleWithWebIdentity
//! trusts (`--oidc-config-url`), and the checks of the tokens it issues.
//!
//! The provider's discovery document and key set (JWKS) are fetched
//! lazily (a server starts while its provider is down), kept, and
//! fetched again when a token names a key id the set lacks (the
//! provider rotated its keys) and when the set is older than
//! [`MAX_AGE`]; never more often than once per [`MIN_REFETCH`], so a
//! flood of tokens with made-up key ids cannot hammer the provider. A
//! failed fetch keeps the keys already known.
//!
//! A token is accepted when: it is at most [`MAX_TOKEN_BYTES`] long; its
//! `alg` is an asymmetric one ([`keys::ALLOWED`]); its `iss` is the
//! discovery document's issuer; its signature verifies with the set's
//! key of its `kid`; its `aud` names one of the configured client ids;
//! `exp` is in the future and `nbf` (if any) in the past, with
//! [`LEEWAY_SECS`] of clock skew; it has a `sub`.
//!
//! web.rs turns an accepted token into an STS session.

mod claims;
mod keys;
pub(crate) mod web;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{Validation, errors::ErrorKind};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, RwLock};

pub use claims::Mapped;
use keys::KeySet;

/// The longest token accepted (AWS's limit on `WebIdentityToken`).
pub const MAX_TOKEN_BYTES: usize = 20_000;
/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;
/// The least time between two fetches of the provider's documents.
pub const MIN_REFETCH: Duration = Duration::from_secs(5);
/// A key set older than this is fetched again at the next token.
pub const MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// How the provider is set up (the `--oidc-*` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The provider's `.well-known/openid-configuration` URL.
    pub config_url: String,
    /// The client ids a token's `aud` must name one of.
    pub client_ids: Vec<String>,
    /// The claim naming Cairn policies (a string of comma-separated
    /// names, or an array of names).
    pub claim_name: String,
    /// The claim naming Cairn groups, whose policies the session gets.
    pub groups_claim: String,
}

/// Why a token was not accepted, or the provider could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The setup cannot work (a bad URL, no client id).
    #[error("OpenID Connect setup: {0}")]
    Config(String),
    /// The provider's documents could not be fetched or read.
    #[error("the OpenID provider cannot be reached: {0}")]
    Communication(String),
    /// The token is malformed, signed by an unknown key, for another
    /// issuer or audience, or otherwise not acceptable.
    #[error("{0}")]
    InvalidToken(String),
    /// The token's `exp` is past.
    #[error("the web identity token has expired")]
    Expired,
}

impl OidcError {
    fn invalid(msg: impl Into<String>) -> Self {
        OidcError::InvalidToken(msg.into())
    }
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct WebIdentity {
    /// The issuer (`iss`), as the discovery document names it.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// The configured client id the token's `aud` named.
    pub audience: String,
    /// Every claim of the token.
    pub claims: Map<String, Value>,
}

/// The identity provider and what is known of it.
pub struct OidcProvider {
    cfg: OidcConfig,
    http: reqwest::Client,
    /// The last key set fetched.
    keys: RwLock<Option<Arc<KeySet>>>,
    /// When the documents were last asked for (one fetch at a time).
    last_fetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl OidcProvider {
    /// A provider for `cfg`; nothing is fetched yet ([`OidcProvider::warm`]).
    pub fn new(cfg: OidcConfig) -> Result<Self, OidcError> {
        if !(cfg.config_url.starts_with("https://") || cfg.config_url.starts_with("http://")) {
            return Err(OidcError::Config(format!(
                "the configuration URL {:?} is not an http(s) URL",
                cfg.config_url
            )));
        }
        if cfg.client_ids.is_empty() || cfg.client_ids.iter().any(String::is_empty) {
            return Err(OidcError::Config(
                "at least one client id is needed (--oidc-client-id)".into(),
            ));
        }
        if cfg.claim_name.is_empty() || cfg.groups_claim.is_empty() {
            return Err(OidcError::Config("claim names must not be empty".into()));
        }
        Ok(OidcProvider {
            http: keys::client()?,
            cfg,
            keys: RwLock::new(None),
            last_fetch: Mutex::new(None),
        })
    }

    /// The setup.
    pub fn config(&self) -> &OidcConfig {
        &self.cfg
    }

    /// Fetches the provider's documents once, logging the outcome (run
    /// at start, in the background: a provider that is down is not fatal).
    pub async fn warm(&self) {
        match self.refetch().await {
            Ok(k) => tracing::info!(
                issuer = %k.issuer,
                keys = k.keys.len(),
                "OpenID provider's keys fetched"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "OpenID provider not reachable yet; asked again at the first web identity token"
            ),
        }
    }

    /// The key set, fetched if there is none yet or it is too old (a
    /// failed refresh of an old set keeps it).
    async fn current(&self) -> Result<Arc<KeySet>, OidcError> {
        let known = self.keys.read().await.clone();
        match known {
            Some(k) if k.fetched.elapsed() < MAX_AGE => Ok(k),
            Some(k) => Ok(self.refetch().await.unwrap_or(k)),
            None => self.refetch().await,
        }
    }

    /// Fetches the documents again, unless that was done less than
    /// [`MIN_REFETCH`] ago (then the set known is the answer, or the
    /// provider counts as unreachable when none is).
    async fn refetch(&self) -> Result<Arc<KeySet>, OidcError> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < MIN_REFETCH) {
            return self.keys.read().await.clone().ok_or_else(|| {
                OidcError::Communication("the provider's keys could not be fetched".into())
            });
        }
        *last = Some(Instant::now());
        match keys::fetch(&self.http, &self.cfg.config_url).await {
            Ok(set) => {
                let set = Arc::new(set);
                tracing::debug!(keys = ?set, "OpenID provider's keys fetched");
                *self.keys.write().await = Some(set.clone());
                Ok(set)
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetching the OpenID provider's keys failed");
                Err(e)
            }
        }
    }

    /// Checks `token` (see the module doc) and returns who it names.
    pub async fn verify(&self, token: &str) -> Result<WebIdentity, OidcError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(OidcError::invalid(format!(
                "the token is over {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| OidcError::invalid("the token is not a signed JWT"))?;
        let alg = header.alg;
        if !keys::ALLOWED.contains(&alg) {
            return Err(OidcError::invalid(format!(
                "the token's algorithm {alg:?} is not accepted"
            )));
        }
        // the issuer before the keys: a token of another provider does not
        // make this one's key set be fetched again
        let unverified = unverified_claims(token)
            .ok_or_else(|| OidcError::invalid("the token's claims are not a JSON object"))?;
        let iss = unverified.get("iss").and_then(Value::as_str);
        let mut set = self.current().await?;
        if iss != Some(set.issuer.as_str()) {
            return Err(OidcError::invalid(format!(
                "the token's issuer {} is not the configured provider's",
                iss.unwrap_or("(none)")
            )));
        }
        let kid = header.kid.as_deref();
        if let Some(id) = kid
            && !set.has_kid(id)
        {
            tracing::debug!(
                kid = id,
                "token names a key the set lacks: fetching it again"
            );
            set = self.refetch().await.unwrap_or(set);
        }
        let mut v = Validation::new(alg);
        v.algorithms = vec![alg];
        v.leeway = LEEWAY_SECS;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.validate_aud = true;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.set_issuer(&[&set.issuer]);
        v.set_audience(&self.cfg.client_ids);
        let mut last = OidcError::invalid(match kid {
            Some(id) => format!("the token's key {id:?} is not one of the provider's"),
            None => "no key of the provider verifies the token".into(),
        });
        for k in set.candidates(kid, alg) {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &k.key, &v) {
                Ok(data) => return self.accepted(&set, data.claims),
                Err(e) => {
                    last = match e.kind() {
                        ErrorKind::ExpiredSignature => return Err(OidcError::Expired),
                        ErrorKind::InvalidSignature => {
                            OidcError::invalid("the token's signature does not verify")
                        }
                        ErrorKind::InvalidAudience => {
                            return Err(OidcError::invalid("Incorrect token audience"));
                        }
                        ErrorKind::InvalidIssuer => {
                            return Err(OidcError::invalid("the token's issuer is not accepted"));
                        }
                        ErrorKind::ImmatureSignature => {
                            return Err(OidcError::invalid("the token is not valid yet (nbf)"));
                        }
                        ErrorKind::MissingRequiredClaim(c) => {
                            return Err(OidcError::invalid(format!("the token has no {c} claim")));
                        }
                        other => OidcError::invalid(format!("the token is not valid: {other:?}")),
                    };
                }
            }
        }
        Err(last)
    }

    fn accepted(&self, set: &KeySet, claims: Map<String, Value>) -> Result<WebIdentity, OidcError> {
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| OidcError::invalid("the token's sub is not a string"))?
            .to_owned();
        let audience = self
            .cfg
            .client_ids
            .iter()
            .find(|id| claims::strings(claims.get("aud")).contains(id))
            .cloned()
            .unwrap_or_default();
        Ok(WebIdentity {
            issuer: set.issuer.clone(),
            subject,
            audience,
            claims,
        })
    }

    /// The policies, groups and `jwt:` keys `id`'s claims map to.
    pub fn map(&self, id: &WebIdentity) -> Mapped {
        claims::map(&self.cfg, &id.claims)
    }

    /// A provider whose key set is given, for tests.
    #[cfg(test)]
    pub(crate) async fn with_keys(cfg: OidcConfig, issuer: &str, jwks: &Value) -> Self {
        let p = OidcProvider::new(cfg).unwrap();
        *p.keys.write().await = Some(Arc::new(KeySet {
            issuer: issuer.to_owned(),
            keys: keys::parse_jwks(jwks),
            fetched: Instant::now(),
        }));
        *p.last_fetch.lock().await = Some(Instant::now());
        p
    }
}

/// A JWT's claims, read without any check (only to pick the issuer).
fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&json).ok()
}

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
