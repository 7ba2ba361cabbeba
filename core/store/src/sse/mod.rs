//! Server-side encryption in the store. Data is encrypted before erasure
//! coding (shards hold ciphertext) in packages (`cipher`); each object (or
//! multipart upload) has a random object key, sealed by a key-encryption
//! key and kept sealed in `cairn.meta` (`SseMeta`):
//! - SSE-S3 / SSE-KMS: the KEK is a data key from the KMS, stored sealed
//!   by the KMS next to the sealed object key; key rotation re-wraps that
//!   small sealed data key and nothing else.
//! - SSE-C: the KEK is derived from the customer's key, which is never
//!   stored: only a salted MAC of it, to tell a wrong key apart.
//!
//! Nothing here binds an object's bucket or name, so a rename moves an
//! encrypted object without re-encrypting it.

pub mod cipher;
pub mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cairn_api::{CustomerKey, Encryption, ObjectError, ObjectResult, SseRequest};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};

pub use cipher::{Cipher, PACKAGE, PartCipher};

use crate::kms::Kms;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SseMode {
    S3,
    Kms,
    Customer,
}

/// What `cairn.meta` keeps about an encrypted version (or upload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SseMeta {
    pub mode: SseMode,
    pub cipher: Cipher,
    /// Random, hex: bound into every package and into the sealed key.
    pub object_id: String,
    /// The object key sealed with the KEK: base64(nonce || ct || tag).
    pub sealed_key: String,
    /// The KMS key (S3 and KMS modes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// The data key (the KEK) sealed by the KMS (`<backend>:v<N>:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_sealed: Option<String>,
    /// SSE-KMS encryption context, bound to `kms_sealed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_context: Option<BTreeMap<String, String>>,
    /// SSE-C: base64 salt and salted MAC of the customer key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_mac: Option<String>,
}

/// An unsealed object key and what it belongs to.
pub struct ObjectKeys {
    pub meta: SseMeta,
    key: [u8; 32],
    object_id: [u8; 16],
}

impl ObjectKeys {
    pub fn part(&self, part: u32) -> PartCipher {
        self.part_salted(part, None)
    }

    /// The cipher of a part whose key also binds `salt` (a part a patch
    /// wrote: see `PartLoc::salted`).
    pub fn part_salted(&self, part: u32, salt: Option<&str>) -> PartCipher {
        PartCipher::new(self.meta.cipher, &self.key, self.object_id, part, salt)
    }

    /// The ETag S3 gives an object (or part) encrypted this way: the MD5 of
    /// the plaintext for SSE-S3; for SSE-KMS and SSE-C, as on AWS, not the
    /// MD5 (which would leak it): a MAC of it under the object key.
    pub fn etag(&self, md5_hex: &str) -> String {
        match self.meta.mode {
            SseMode::S3 => md5_hex.to_owned(),
            SseMode::Kms | SseMode::Customer => {
                let t = cipher::derive(&self.key, b"cairn-sse etag", md5_hex.as_bytes());
                hex::encode(&t[..16])
            }
        }
    }
}

/// Seals a whole (small) part in memory, as the writer would stream it.
// lo < hi <= plain.len() for each of the packages plain.len() makes
#[allow(clippy::indexing_slicing)]
pub fn seal_part(c: &PartCipher, plain: &[u8]) -> Vec<u8> {
    let n = Cipher::packages(plain.len() as u64) as usize;
    let mut out = Vec::with_capacity(plain.len() + n * 48);
    for i in 0..n {
        let lo = i * PACKAGE;
        let hi = (lo + PACKAGE).min(plain.len());
        c.seal(i as u64, i + 1 == n, &plain[lo..hi], &mut out);
    }
    out
}

/// Opens a whole sealed part in place (what [`seal_part`] made of
/// `plain_len` bytes); the plaintext packages stay where they were
/// decrypted, each at the start of its sealed package.
// at <= end <= sealed.len(): end is clamped and at follows it
#[allow(clippy::indexing_slicing)]
pub fn open_part(
    c: &PartCipher,
    sealed: &mut [u8],
    plain_len: u64,
) -> Result<(), cipher::OpenError> {
    let n = Cipher::packages(plain_len);
    let mut at = 0usize;
    for i in 0..n {
        let len = (plain_len - i * PACKAGE as u64).min(PACKAGE as u64) as usize;
        let end = (at + c.cipher().sealed_len(len)).min(sealed.len());
        c.open(i, i + 1 == n, &mut sealed[at..end])?;
        at = end;
    }
    Ok(())
}

impl SseMeta {
    /// Checks the SSE-C key a request shows (or does not) against this
    /// version, without unsealing anything.
    pub fn check_customer(
        this: Option<&Self>,
        customer: Option<&CustomerKey>,
        what: (&str, &str),
    ) -> ObjectResult<()> {
        let names = || (what.0.to_owned(), what.1.to_owned());
        match (this.map(|m| m.mode), customer) {
            (Some(SseMode::Customer), None) => {
                let (bucket, key) = names();
                Err(ObjectError::SseCustomerKeyMissing { bucket, key })
            }
            (Some(SseMode::Customer), Some(k)) => {
                if this.is_some_and(|m| m.customer_matches(k)) {
                    Ok(())
                } else {
                    let (bucket, key) = names();
                    Err(ObjectError::SseCustomerKeyMismatch { bucket, key })
                }
            }
            (_, Some(_)) => {
                let (bucket, key) = names();
                Err(ObjectError::SseCustomerKeyNotExpected { bucket, key })
            }
            (_, None) => Ok(()),
        }
    }

    /// What the fronts report; `customer` is the key the request showed.
    pub fn encryption(&self, customer: Option<&CustomerKey>) -> Encryption {
        match self.mode {
            SseMode::S3 => Encryption::S3,
            SseMode::Kms => Encryption::Kms {
                key_id: self.kms_key_id.clone().unwrap_or_default(),
            },
            SseMode::Customer => Encryption::Customer {
                key_md5: customer.map(CustomerKey::md5_base64).unwrap_or_default(),
            },
        }
    }

    /// Whether a copy asking for `req` may keep this version's data as is.
    pub fn same_as(&self, req: &SseRequest, default_key: Option<&str>) -> bool {
        match (self.mode, req) {
            (SseMode::S3, SseRequest::S3) => true,
            (SseMode::Kms, SseRequest::Kms { key_id, context }) => {
                key_id.as_deref().or(default_key) == self.kms_key_id.as_deref()
                    && (context.is_empty() && self.kms_context.is_none()
                        || self.kms_context.as_ref() == Some(context))
            }
            (SseMode::Customer, SseRequest::Customer(k)) => self.customer_matches(k),
            _ => false,
        }
    }

    fn customer_matches(&self, k: &CustomerKey) -> bool {
        let (Some(salt), Some(mac)) = (&self.customer_salt, &self.customer_mac) else {
            return false;
        };
        let Ok(salt) = B64.decode(salt) else {
            return false;
        };
        B64.encode(k.mac(&salt)) == *mac
    }
}

fn random<const N: usize>() -> ObjectResult<[u8; N]> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| ObjectError::internal("the system random generator failed"))?;
    Ok(b)
}

fn kms_context_bytes(ctx: Option<&BTreeMap<String, String>>) -> Vec<u8> {
    // a BTreeMap serialises in key order: one canonical form
    ctx.filter(|c| !c.is_empty())
        .and_then(|c| serde_json::to_vec(c).ok())
        .unwrap_or_default()
}

fn kek_aead(kek: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, kek).unwrap_or_else(|_| unreachable!("32-byte key")),
    )
}

fn seal_key_aad(object_id: &[u8; 16], mode: SseMode) -> Vec<u8> {
    let m: &[u8] = match mode {
        SseMode::S3 => b"s3",
        SseMode::Kms => b"kms",
        SseMode::Customer => b"customer",
    };
    [b"cairn-sse object key".as_slice(), object_id, m].concat()
}

fn customer_kek(k: &CustomerKey, object_id: &[u8; 16]) -> [u8; 32] {
    cipher::derive(k.bytes(), b"cairn-sse customer kek", object_id)
}

/// The KMS (if any) and the cipher new objects get.
#[derive(Clone)]
pub struct SseConfig {
    pub kms: Option<Arc<dyn Kms>>,
    pub cipher: Cipher,
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            kms: None,
            cipher: Cipher::default_for_cpu(),
        }
    }
}

impl SseConfig {
    fn kms(&self) -> ObjectResult<&Arc<dyn Kms>> {
        self.kms.as_ref().ok_or(ObjectError::KmsNotConfigured)
    }

    pub fn default_key(&self) -> Option<&str> {
        self.kms.as_ref().map(|k| k.default_key())
    }

    /// A fresh object key for a new object or upload, sealed as `req` asks.
    pub async fn new_keys(&self, req: &SseRequest) -> ObjectResult<ObjectKeys> {
        let key: [u8; 32] = random()?;
        let object_id: [u8; 16] = random()?;
        let (mode, kek, mut meta) = match req {
            SseRequest::S3 | SseRequest::Kms { .. } => {
                let kms = self.kms()?;
                let (mode, key_id, context) = match req {
                    SseRequest::Kms { key_id, context } => (
                        SseMode::Kms,
                        key_id
                            .clone()
                            .unwrap_or_else(|| kms.default_key().to_owned()),
                        (!context.is_empty()).then(|| context.clone()),
                    ),
                    _ => (SseMode::S3, kms.default_key().to_owned(), None),
                };
                let dk = kms
                    .generate_data_key(&key_id, &kms_context_bytes(context.as_ref()))
                    .await?;
                let meta = SseMeta {
                    mode,
                    cipher: self.cipher,
                    object_id: hex::encode(object_id),
                    sealed_key: String::new(),
                    kms_key_id: Some(key_id),
                    kms_sealed: Some(dk.sealed.clone()),
                    kms_context: context,
                    customer_salt: None,
                    customer_mac: None,
                };
                (mode, dk.plaintext, meta)
            }
            SseRequest::Customer(ck) => {
                let salt: [u8; 16] = random()?;
                let meta = SseMeta {
                    mode: SseMode::Customer,
                    cipher: self.cipher,
                    object_id: hex::encode(object_id),
                    sealed_key: String::new(),
                    kms_key_id: None,
                    kms_sealed: None,
                    kms_context: None,
                    customer_salt: Some(B64.encode(salt)),
                    customer_mac: Some(B64.encode(ck.mac(&salt))),
                };
                (SseMode::Customer, customer_kek(ck, &object_id), meta)
            }
        };
        let nonce: [u8; 12] = random()?;
        let mut buf = key.to_vec();
        let tag = kek_aead(&kek)
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(seal_key_aad(&object_id, mode)),
                &mut buf,
            )
            .map_err(|_| ObjectError::internal("sealing the object key failed"))?;
        meta.sealed_key = B64.encode([nonce.as_slice(), &buf, tag.as_ref()].concat());
        Ok(ObjectKeys {
            meta,
            key,
            object_id,
        })
    }

    /// Unseals a stored object key. `customer` is the request's SSE-C key;
    /// `what` names the object for errors.
    pub async fn open_keys(
        &self,
        meta: &SseMeta,
        customer: Option<&CustomerKey>,
        what: (&str, &str),
    ) -> ObjectResult<ObjectKeys> {
        let (bucket, key) = (what.0.to_owned(), what.1.to_owned());
        let tampered = |reason: &str| ObjectError::DecryptFailed {
            bucket: bucket.clone(),
            key: key.clone(),
            reason: reason.to_owned(),
        };
        let object_id: [u8; 16] = hex::decode(&meta.object_id)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| tampered("bad object id"))?;
        SseMeta::check_customer(Some(meta), customer, what)?;
        let kek = match (meta.mode, customer) {
            (SseMode::Customer, Some(ck)) => customer_kek(ck, &object_id),
            (SseMode::Customer, None) => return Err(tampered("no customer key")),
            (SseMode::S3 | SseMode::Kms, _) => {
                let kms = self.kms()?;
                let (Some(key_id), Some(sealed)) = (&meta.kms_key_id, &meta.kms_sealed) else {
                    return Err(tampered("no sealed data key"));
                };
                kms.decrypt(
                    key_id,
                    sealed,
                    &kms_context_bytes(meta.kms_context.as_ref()),
                )
                .await
                .map_err(|e| match e {
                    crate::kms::KmsError::Invalid { message } => tampered(&message),
                    other => other.into(),
                })?
            }
        };
        let raw = B64
            .decode(&meta.sealed_key)
            .map_err(|_| tampered("sealed key is not base64"))?;
        if raw.len() != 12 + 32 + 16 {
            return Err(tampered("sealed key has the wrong length"));
        }
        let (nonce, rest) = raw.split_at(12);
        let mut rest = rest.to_vec();
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| tampered("sealed key nonce"))?;
        let plain = kek_aead(&kek)
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(seal_key_aad(&object_id, meta.mode)),
                &mut rest,
            )
            .map_err(|_| tampered("the sealed object key failed authentication"))?;
        let key: [u8; 32] = (&*plain)
            .try_into()
            .map_err(|_| tampered("sealed key length"))?;
        Ok(ObjectKeys {
            meta: meta.clone(),
            key,
            object_id,
        })
    }

    /// Re-seals the data key under the KMS key's latest version; `None`
    /// when the version has no KMS-sealed key (SSE-C) or names another key.
    pub async fn rewrap(&self, meta: &SseMeta, key_id: &str) -> ObjectResult<Option<SseMeta>> {
        let kms = self.kms()?;
        let (Some(k), Some(sealed)) = (&meta.kms_key_id, &meta.kms_sealed) else {
            return Ok(None);
        };
        if k != key_id {
            return Ok(None);
        }
        let new = kms
            .rewrap(k, sealed, &kms_context_bytes(meta.kms_context.as_ref()))
            .await?;
        if &new == sealed {
            return Ok(None);
        }
        let mut m = meta.clone();
        m.kms_sealed = Some(new);
        Ok(Some(m))
    }
}

#[cfg(test)]
mod tests;
