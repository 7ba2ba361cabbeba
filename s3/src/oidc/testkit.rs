//! A provider's signing side for unit tests: Ed25519 keys made here, the
//! key set that publishes them, and tokens signed with them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair as _;
use serde_json::{Value, json};

pub(crate) const ISSUER: &str = "https://idp.example";
pub(crate) const CLIENT: &str = "cairn";

/// One signing key.
pub(crate) struct TestKey {
    pub(crate) kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl TestKey {
    pub(crate) fn new(kid: &str) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        TestKey {
            kid: kid.to_owned(),
            pkcs8: doc.as_ref().to_vec(),
            public: pair.public_key().as_ref().to_vec(),
        }
    }

    pub(crate) fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": self.kid,
               "x": URL_SAFE_NO_PAD.encode(&self.public)})
    }

    /// A token with `claims` signed by this key.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &EncodingKey::from_ed_der(&self.pkcs8)).unwrap()
    }
}

/// The key set of `keys`.
pub(crate) fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Valid claims for subject `sub` with `extra` merged in.
pub(crate) fn claims(sub: &str, extra: Value) -> Value {
    let mut c = json!({"iss": ISSUER, "aud": CLIENT, "sub": sub,
                       "iat": now(), "exp": now() + 600});
    if let (Some(m), Value::Object(e)) = (c.as_object_mut(), extra) {
        m.extend(e);
    }
    c
}

pub(crate) fn config() -> super::OidcConfig {
    super::OidcConfig {
        config_url: format!("{ISSUER}/.well-known/openid-configuration"),
        client_ids: vec!["other-app".into(), CLIENT.into()],
        claim_name: "policy".into(),
        groups_claim: "groups".into(),
    }
}

impl TestKey {
    /// The base64url Ed25519 signature of `msg`.
    pub(crate) fn raw_sign(&self, msg: &[u8]) -> String {
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(&self.pkcs8).unwrap();
        URL_SAFE_NO_PAD.encode(pair.sign(msg).as_ref())
    }
}
