//! Internode requests are signed with a key derived from the cluster
//! secret (the root credentials, or `CAIRN_CLUSTER_SECRET`): an HMAC-SHA256
//! over the operation, the drive, the paths, the numbers, the digest of a
//! whole body and an expiry a short time ahead. A request without a valid
//! signature, or past its expiry, is refused before anything is read.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// How long a signature is good for; also how far ahead of the
/// receiver's clock an expiry may be (clocks of nodes differ a little).
pub const SIGNATURE_LIFE: u64 = 60;

/// What a signature covers: every field of a request but a streamed body
/// (shard data, whose blocks carry their own hashes).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Signed<'a> {
    pub op: &'a str,
    pub drive: &'a str,
    pub path: &'a str,
    pub path2: &'a str,
    pub offset: u64,
    pub len: u64,
    pub durable: bool,
    /// Hex SHA-256 of a whole body, empty for none or a streamed one.
    pub body_sha256: &'a str,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("internode request not signed")]
    Missing,
    #[error("internode signature malformed")]
    Malformed,
    #[error("internode signature expired")]
    Expired,
    #[error("internode signature expires too far ahead")]
    TooFarAhead,
    #[error("internode signature does not match")]
    BadSignature,
}

/// The cluster's signing key: a SHA-256 of the secret, zero-padded to
/// SHA-256's block (as HMAC pads any shorter key).
#[derive(Clone)]
pub struct NodeKey([u8; 64]);

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeKey(..)")
    }
}

impl NodeKey {
    /// The key every node derives from the same secret.
    pub fn from_secret(secret: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"cairn-internode-v1\0");
        h.update(secret.as_bytes());
        let mut key = [0u8; 64];
        if let Some(head) = key.get_mut(..32) {
            head.copy_from_slice(&h.finalize());
        }
        Self(key)
    }

    fn mac(&self, s: &Signed<'_>, expiry: u64) -> HmacSha256 {
        let mut m = <HmacSha256 as hmac::digest::KeyInit>::new((&self.0).into());
        for field in [s.op, s.drive, s.path, s.path2, s.body_sha256] {
            m.update(&(field.len() as u64).to_le_bytes());
            m.update(field.as_bytes());
        }
        m.update(&s.offset.to_le_bytes());
        m.update(&s.len.to_le_bytes());
        m.update(&[u8::from(s.durable)]);
        m.update(&expiry.to_le_bytes());
        m
    }

    /// The header value for a request signed now.
    pub fn sign(&self, s: &Signed<'_>, now: u64) -> String {
        let expiry = now + SIGNATURE_LIFE;
        let tag = self.mac(s, expiry).finalize().into_bytes();
        format!("{expiry}.{}", hex::encode(tag))
    }

    /// Checks a header value against the request's fields at time `now`.
    pub fn verify(&self, s: &Signed<'_>, header: Option<&str>, now: u64) -> Result<(), AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let (expiry, tag) = header.split_once('.').ok_or(AuthError::Malformed)?;
        let expiry: u64 = expiry.parse().map_err(|_| AuthError::Malformed)?;
        let tag = hex::decode(tag).map_err(|_| AuthError::Malformed)?;
        if expiry < now {
            return Err(AuthError::Expired);
        }
        if expiry > now + 2 * SIGNATURE_LIFE {
            return Err(AuthError::TooFarAhead);
        }
        self.mac(s, expiry)
            .verify_slice(&tag)
            .map_err(|_| AuthError::BadSignature)
    }
}

/// Hex SHA-256 of a body.
pub fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> Signed<'static> {
        Signed {
            op: "read",
            drive: "/srv/d1",
            path: "bucket/key/cairn.meta",
            ..Default::default()
        }
    }

    #[test]
    fn a_signature_holds_for_its_fields_and_life_only() {
        let k = NodeKey::from_secret("root:secret");
        let h = k.sign(&req(), 1000);
        assert_eq!(k.verify(&req(), Some(&h), 1000), Ok(()));
        assert_eq!(k.verify(&req(), Some(&h), 1000 + SIGNATURE_LIFE), Ok(()));
        assert_eq!(
            k.verify(&req(), Some(&h), 1001 + SIGNATURE_LIFE),
            Err(AuthError::Expired)
        );
        let other = Signed {
            path: "bucket/other/cairn.meta",
            ..req()
        };
        assert_eq!(
            k.verify(&other, Some(&h), 1000),
            Err(AuthError::BadSignature)
        );
        let wrong = NodeKey::from_secret("root:other");
        assert_eq!(
            wrong.verify(&req(), Some(&h), 1000),
            Err(AuthError::BadSignature)
        );
        assert_eq!(k.verify(&req(), None, 1000), Err(AuthError::Missing));
        assert_eq!(
            k.verify(&req(), Some("12.zz"), 1),
            Err(AuthError::Malformed)
        );
        // an expiry far ahead (a forged long-lived token) is refused
        let ahead = k.sign(&req(), 5000);
        assert_eq!(
            k.verify(&req(), Some(&ahead), 1000),
            Err(AuthError::TooFarAhead)
        );
    }

    #[test]
    fn fields_do_not_run_into_each_other() {
        let k = NodeKey::from_secret("s");
        let a = Signed {
            path: "ab",
            path2: "c",
            ..req()
        };
        let b = Signed {
            path: "a",
            path2: "bc",
            ..req()
        };
        let h = k.sign(&a, 10);
        assert_eq!(k.verify(&b, Some(&h), 10), Err(AuthError::BadSignature));
    }
}
