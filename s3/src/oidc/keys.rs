//! The provider's documents: the discovery document (its `issuer` and
//! `jwks_uri`) and the JSON Web Key Set, fetched over HTTP(S) with a
//! timeout and a size cap, and the signing keys read out of the set.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::OidcError;

/// The largest discovery document or key set read.
const MAX_DOC_BYTES: usize = 1024 * 1024;
/// The most keys kept from one key set.
const MAX_KEYS: usize = 64;
/// How long one fetch may take, connection included.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The signature algorithms a token may use: asymmetric ones only
/// (never `none`, never HS*, whose "key" would be public).
pub(crate) const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// One signing key of the provider.
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<String>,
    pub(crate) key: DecodingKey,
    /// The algorithms this key verifies (its `alg` if it names one, else
    /// those of its type and curve).
    pub(crate) algs: Vec<Algorithm>,
}

/// What one fetch of the provider gave: its issuer and its keys.
pub(crate) struct KeySet {
    pub(crate) issuer: String,
    pub(crate) keys: Vec<VerifyKey>,
    pub(crate) fetched: Instant,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("issuer", &self.issuer)
            .field(
                "kids",
                &self
                    .keys
                    .iter()
                    .map(|k| k.kid.as_deref())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeySet {
    /// The keys that may have signed a token with header `kid` and `alg`:
    /// the key of that id, or without an id in the token, every key that
    /// verifies `alg`.
    pub(crate) fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a VerifyKey> + 'a {
        self.keys.iter().filter(move |k| {
            k.algs.contains(&alg)
                && match kid {
                    Some(id) => k.kid.as_deref() == Some(id),
                    None => true,
                }
        })
    }

    /// Whether the set has a key with id `kid` (of any algorithm).
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// An HTTP client for the provider: bounded in time, no cookies.
pub(crate) fn client() -> Result<reqwest::Client, OidcError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .map_err(|e| OidcError::Config(format!("cannot build the HTTP client: {e}")))
}

/// GETs `url` and reads its JSON body (at most [`MAX_DOC_BYTES`]).
async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, OidcError> {
    let comm = |what: String| OidcError::Communication(format!("{url}: {what}"));
    let mut resp = http
        .get(url)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| comm(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(comm(format!("HTTP status {}", resp.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| comm(e.to_string()))? {
        if body.len() + chunk.len() > MAX_DOC_BYTES {
            return Err(comm(format!("the document is over {MAX_DOC_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| comm(format!("not JSON: {e}")))
}

fn http_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

/// Fetches the discovery document at `config_url`, then the key set it
/// names.
pub(crate) async fn fetch(http: &reqwest::Client, config_url: &str) -> Result<KeySet, OidcError> {
    let doc = get_json(http, config_url).await?;
    let bad = |what: &str| OidcError::Communication(format!("{config_url}: {what}"));
    let issuer = doc
        .get("issuer")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("the discovery document has no issuer"))?
        .to_owned();
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .filter(|s| http_url(s))
        .ok_or_else(|| bad("the discovery document has no http(s) jwks_uri"))?
        .to_owned();
    let jwks = get_json(http, &jwks_uri).await?;
    let keys = parse_jwks(&jwks);
    if keys.is_empty() {
        tracing::warn!(%jwks_uri, "the OpenID provider's key set has no usable signing key");
    }
    Ok(KeySet {
        issuer,
        keys,
        fetched: Instant::now(),
    })
}

/// The signing keys of a JWKS document; keys of other uses, unknown
/// types or curves, symmetric keys and malformed entries are left out.
pub(crate) fn parse_jwks(doc: &Value) -> Vec<VerifyKey> {
    let Some(list) = doc.get("keys").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|k| match parse_jwk(k) {
            Ok(v) => Some(v),
            Err(why) => {
                let kid = k.get("kid").cloned().unwrap_or(Value::Null);
                tracing::debug!(%kid, why, "JWKS entry left out");
                None
            }
        })
        .take(MAX_KEYS)
        .collect()
}

fn parse_jwk(k: &Value) -> Result<VerifyKey, &'static str> {
    let s = |name: &str| k.get(name).and_then(Value::as_str);
    if s("use").is_some_and(|u| u != "sig") {
        return Err("not a signing key");
    }
    let named: Option<Algorithm> = match s("alg") {
        None => None,
        Some(a) => Some(
            ALLOWED
                .iter()
                .copied()
                .find(|x| format!("{x:?}") == a)
                .ok_or("algorithm not accepted")?,
        ),
    };
    let missing = "a key parameter is missing";
    let (key, family): (DecodingKey, &[Algorithm]) = match s("kty") {
        Some("RSA") => (
            DecodingKey::from_rsa_components(s("n").ok_or(missing)?, s("e").ok_or(missing)?)
                .map_err(|_| "bad RSA key")?,
            &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
        ),
        Some("EC") => {
            let alg: &[Algorithm] = match s("crv") {
                Some("P-256") => &[Algorithm::ES256],
                Some("P-384") => &[Algorithm::ES384],
                _ => return Err("curve not accepted"),
            };
            (
                DecodingKey::from_ec_components(s("x").ok_or(missing)?, s("y").ok_or(missing)?)
                    .map_err(|_| "bad EC key")?,
                alg,
            )
        }
        Some("OKP") if s("crv") == Some("Ed25519") => (
            DecodingKey::from_ed_components(s("x").ok_or(missing)?)
                .map_err(|_| "bad Ed25519 key")?,
            &[Algorithm::EdDSA],
        ),
        _ => return Err("key type not accepted"),
    };
    let algs = match named {
        Some(a) if family.contains(&a) => vec![a],
        Some(_) => return Err("the key's alg does not fit its type"),
        None => family.to_vec(),
    };
    Ok(VerifyKey {
        kid: s("kid").map(str::to_owned),
        key,
        algs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_usable_signing_keys_are_kept() {
        let doc = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "r1", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "hs", "alg": "HS256", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            "not an object"
        ]});
        let keys = parse_jwks(&doc);
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["r1", "ed"]);
        assert!(keys[0].algs.contains(&Algorithm::PS256));
        assert_eq!(keys[1].algs, [Algorithm::EdDSA]);
        assert!(parse_jwks(&serde_json::json!({"keys": "x"})).is_empty());
        assert!(parse_jwks(&serde_json::json!([])).is_empty());
    }
}
