//! Server-side encryption as the boundary sees it: what a client asks for
//! (`SseRequest`), what an object is encrypted with (`Encryption`), and a
//! bucket's default. The ciphers, key sealing and the KMS live in the store.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::ObjectError;

/// An SSE-C key as the client sent it. Never stored; `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerKey {
    key: [u8; 32],
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomerKey(md5={})", self.md5_base64())
    }
}

impl CustomerKey {
    /// Checks the `...-customer-algorithm`, `-key` and `-key-MD5` headers'
    /// values (the MD5 may be absent, as some clients omit it).
    pub fn from_headers(
        algorithm: &str,
        key_b64: &str,
        key_md5_b64: Option<&str>,
    ) -> Result<Self, ObjectError> {
        if algorithm != "AES256" {
            return Err(ObjectError::InvalidEncryptionAlgorithm {
                algorithm: algorithm.to_owned(),
            });
        }
        let raw = B64
            .decode(key_b64.trim())
            .map_err(|_| ObjectError::InvalidSseCustomerKey {
                reason: "the key is not base64",
            })?;
        let key: [u8; 32] = raw
            .try_into()
            .map_err(|_| ObjectError::InvalidSseCustomerKey {
                reason: "the key must be 256 bits (32 bytes)",
            })?;
        let k = Self { key };
        if let Some(md5) = key_md5_b64
            && md5.trim() != k.md5_base64()
        {
            return Err(ObjectError::InvalidSseCustomerKey {
                reason: "the key's MD5 does not match the key",
            });
        }
        Ok(k)
    }

    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// The MD5 S3 echoes in `x-amz-server-side-encryption-customer-key-MD5`.
    pub fn md5_base64(&self) -> String {
        B64.encode(Md5::digest(self.key))
    }

    /// The salted MAC stored in place of the key, to tell a wrong key from
    /// the right one without storing it.
    pub fn mac(&self, salt: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(salt)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        m.update(&self.key);
        m.finalize().into_bytes().into()
    }
}

/// How a writer asks for an object to be encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseRequest {
    /// SSE-S3 (`AES256`): sealed with the KMS's default key.
    S3,
    /// SSE-KMS (`aws:kms`): a named key (the default when `None`) and an
    /// encryption context bound to the sealed key.
    Kms {
        key_id: Option<String>,
        context: BTreeMap<String, String>,
    },
    /// SSE-C: the client's key; only its salted MAC is stored.
    Customer(CustomerKey),
}

impl SseRequest {
    pub fn encryption(&self) -> Encryption {
        match self {
            SseRequest::S3 => Encryption::S3,
            SseRequest::Kms { key_id, .. } => Encryption::Kms {
                key_id: key_id.clone().unwrap_or_default(),
            },
            SseRequest::Customer(k) => Encryption::Customer {
                key_md5: k.md5_base64(),
            },
        }
    }
}

/// What an object is encrypted with, as the fronts report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Encryption {
    S3,
    Kms {
        key_id: String,
    },
    /// `key_md5` is the MD5 (base64) of the key the request presented;
    /// empty when the object was only listed or stat-ed without a key.
    Customer {
        key_md5: String,
    },
}

impl Encryption {
    /// The `x-amz-server-side-encryption` value (`None` for SSE-C, which
    /// answers with the customer-algorithm header instead).
    pub fn header_value(&self) -> Option<&'static str> {
        match self {
            Encryption::S3 => Some("AES256"),
            Encryption::Kms { .. } => Some("aws:kms"),
            Encryption::Customer { .. } => None,
        }
    }
}

/// A bucket's default encryption: applied to every new object written
/// without its own SSE request, through any front.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case")]
pub enum BucketEncryption {
    S3,
    Kms { key_id: Option<String> },
}

impl BucketEncryption {
    pub fn request(&self) -> SseRequest {
        match self {
            BucketEncryption::S3 => SseRequest::S3,
            BucketEncryption::Kms { key_id } => SseRequest::Kms {
                key_id: key_id.clone(),
                context: BTreeMap::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_key_headers() {
        let key = [7u8; 32];
        let b64 = B64.encode(key);
        let k = CustomerKey::from_headers("AES256", &b64, None).unwrap();
        let md5 = k.md5_base64();
        assert!(CustomerKey::from_headers("AES256", &b64, Some(&md5)).is_ok());
        assert!(matches!(
            CustomerKey::from_headers("AES256", &b64, Some("AAAA")),
            Err(ObjectError::InvalidSseCustomerKey { .. })
        ));
        assert!(matches!(
            CustomerKey::from_headers("AES128", &b64, None),
            Err(ObjectError::InvalidEncryptionAlgorithm { .. })
        ));
        assert!(matches!(
            CustomerKey::from_headers("AES256", &B64.encode([1u8; 16]), None),
            Err(ObjectError::InvalidSseCustomerKey { .. })
        ));
    }

    #[test]
    fn mac_depends_on_salt_and_key() {
        let a = CustomerKey::new([1; 32]);
        let b = CustomerKey::new([2; 32]);
        assert_eq!(a.mac(b"salt"), a.mac(b"salt"));
        assert_ne!(a.mac(b"salt"), a.mac(b"salu"));
        assert_ne!(a.mac(b"salt"), b.mac(b"salt"));
    }
}
