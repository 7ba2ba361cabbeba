//! The package format: object data is cut into 64 KiB packages, each
//! sealed on its own. A package's nonce and associated data carry the
//! object id, the part number, the package's sequence number and whether
//! it is the part's last package, under a key derived for that part: a
//! package moved to another place, another part or another object, a
//! dropped last package, or one altered byte fails to open.

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut as _, BlockEncryptMut as _, KeyIvInit as _};
use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use serde::{Deserialize, Serialize};

/// Plaintext bytes per package (the last package of a part may be
/// shorter; an empty part still has one, empty, final package).
pub const PACKAGE: usize = 64 * 1024;
const TAG: usize = 16;
const CBC_BLOCK: usize = 16;
const MAC: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cipher {
    /// AES-256-GCM (ring): the default where the CPU has AES-NI.
    Aes256Gcm,
    /// ChaCha20-Poly1305 (ring): the default elsewhere.
    Chacha20Poly1305,
    /// AES-256-CBC with HMAC-SHA256, encrypt-then-MAC: selectable only.
    Aes256CbcHmacSha256,
}

impl Cipher {
    /// AES-256-GCM when the CPU has AES and carry-less multiply
    /// instructions, ChaCha20-Poly1305 otherwise.
    pub fn default_for_cpu() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("aes")
                && std::arch::is_x86_feature_detected!("pclmulqdq")
            {
                return Cipher::Aes256Gcm;
            }
            Cipher::Chacha20Poly1305
        }
        #[cfg(target_arch = "aarch64")]
        {
            if std::arch::is_aarch64_feature_detected!("aes") {
                return Cipher::Aes256Gcm;
            }
            Cipher::Chacha20Poly1305
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        Cipher::Chacha20Poly1305
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "aes-256-gcm" | "aes-gcm" => Some(Self::Aes256Gcm),
            "chacha20-poly1305" | "chacha20" => Some(Self::Chacha20Poly1305),
            "aes-256-cbc-hmac-sha256" | "aes-cbc-hmac" | "aes-cbc" => {
                Some(Self::Aes256CbcHmacSha256)
            }
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes-256-gcm",
            Self::Chacha20Poly1305 => "chacha20-poly1305",
            Self::Aes256CbcHmacSha256 => "aes-256-cbc-hmac-sha256",
        }
    }

    /// Stored length of a package holding `plain` bytes.
    pub fn sealed_len(self, plain: usize) -> usize {
        match self {
            Self::Aes256Gcm | Self::Chacha20Poly1305 => plain + TAG,
            // PKCS#7 always pads, by a whole block when aligned
            Self::Aes256CbcHmacSha256 => (plain / CBC_BLOCK + 1) * CBC_BLOCK + MAC,
        }
    }

    /// Number of packages of a part of `plain` bytes (at least one).
    pub fn packages(plain: u64) -> u64 {
        plain.div_ceil(PACKAGE as u64).max(1)
    }

    /// Stored length of a part of `plain` bytes.
    pub fn stored_len(self, plain: u64) -> u64 {
        let n = Self::packages(plain);
        let last = plain - (n - 1) * PACKAGE as u64;
        (n - 1) * self.sealed_len(PACKAGE) as u64 + self.sealed_len(last as usize) as u64
    }

    /// Stored length of one erasure block of `plain_block` bytes (a
    /// multiple of [`PACKAGE`]).
    pub fn stored_block(self, plain_block: usize) -> usize {
        plain_block / PACKAGE * self.sealed_len(PACKAGE)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("package {seq} of part {part} failed authentication (altered, moved or truncated)")]
pub struct OpenError {
    pub part: u32,
    pub seq: u64,
}

enum Keys {
    Aead(Box<LessSafeKey>),
    Cbc { enc: [u8; 32], mac: hmac::Key },
}

/// Seals and opens the packages of one part of one object.
pub struct PartCipher {
    cipher: Cipher,
    keys: Keys,
    object_id: [u8; 16],
    part: u32,
}

/// HMAC-SHA256(key, label || data): the one key derivation used here.
pub(crate) fn derive(key: &[u8], label: &[u8], data: &[u8]) -> [u8; 32] {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&k);
    ctx.update(label);
    ctx.update(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

impl PartCipher {
    /// The cipher of part `part` of the object whose key is `object_key`.
    /// `salt` is bound into the part key too (unsalted: the key of
    /// objects written before salts existed, unchanged).
    pub fn new(
        cipher: Cipher,
        object_key: &[u8; 32],
        object_id: [u8; 16],
        part: u32,
        salt: Option<&str>,
    ) -> Self {
        let mut input = part.to_be_bytes().to_vec();
        if let Some(s) = salt {
            input.extend_from_slice(s.as_bytes());
        }
        let part_key = derive(object_key, b"cairn-sse part key", &input);
        let aead = |alg| {
            UnboundKey::new(alg, &part_key)
                .map(LessSafeKey::new)
                .unwrap_or_else(|_| unreachable!("32-byte keys fit both AEADs"))
        };
        let keys = match cipher {
            Cipher::Aes256Gcm => Keys::Aead(Box::new(aead(&AES_256_GCM))),
            Cipher::Chacha20Poly1305 => Keys::Aead(Box::new(aead(&CHACHA20_POLY1305))),
            Cipher::Aes256CbcHmacSha256 => Keys::Cbc {
                enc: derive(&part_key, b"cairn-sse cbc enc", &[]),
                mac: hmac::Key::new(
                    hmac::HMAC_SHA256,
                    &derive(&part_key, b"cairn-sse cbc mac", &[]),
                ),
            },
        };
        Self {
            cipher,
            keys,
            object_id,
            part,
        }
    }

    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    fn nonce(seq: u64, last: bool) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..8].copy_from_slice(&seq.to_be_bytes());
        n[8] = u8::from(last);
        n
    }

    fn aad(&self, seq: u64, last: bool) -> [u8; 29] {
        let mut a = [0u8; 29];
        a[..16].copy_from_slice(&self.object_id);
        a[16..20].copy_from_slice(&self.part.to_be_bytes());
        a[20..28].copy_from_slice(&seq.to_be_bytes());
        a[28] = u8::from(last);
        a
    }

    /// Appends the sealed form of one package to `out`.
    // `start` is out's length before this package: every slice is the
    // package just appended
    #[allow(clippy::indexing_slicing)]
    pub fn seal(&self, seq: u64, last: bool, plain: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        let aad = self.aad(seq, last);
        match &self.keys {
            Keys::Aead(key) => {
                out.extend_from_slice(plain);
                let nonce = Nonce::assume_unique_for_key(Self::nonce(seq, last));
                // ring fails only for inputs beyond 2^36 bytes
                if let Ok(tag) =
                    key.seal_in_place_separate_tag(nonce, Aad::from(aad), &mut out[start..])
                {
                    out.extend_from_slice(tag.as_ref());
                }
            }
            Keys::Cbc { enc, mac } => {
                let iv = self.cbc_iv(mac, &aad);
                let padded = (plain.len() / CBC_BLOCK + 1) * CBC_BLOCK;
                out.extend_from_slice(plain);
                out.resize(start + padded, 0);
                let enc_ok = cbc::Encryptor::<Aes256>::new(enc.into(), &iv.into())
                    .encrypt_padded_mut::<Pkcs7>(&mut out[start..], plain.len())
                    .is_ok();
                debug_assert!(enc_ok, "buffer sized for the padding");
                let tag = cbc_tag(mac, &aad, &out[start..]);
                out.extend_from_slice(tag.as_ref());
            }
        }
    }

    /// Opens one sealed package in place; returns the plaintext slice.
    pub fn open<'a>(
        &self,
        seq: u64,
        last: bool,
        sealed: &'a mut [u8],
    ) -> Result<&'a [u8], OpenError> {
        let err = OpenError {
            part: self.part,
            seq,
        };
        let aad = self.aad(seq, last);
        match &self.keys {
            Keys::Aead(key) => {
                let nonce = Nonce::assume_unique_for_key(Self::nonce(seq, last));
                key.open_in_place(nonce, Aad::from(aad), sealed)
                    .map(|p| &*p)
                    .map_err(|_| err)
            }
            Keys::Cbc { enc, mac } => {
                if sealed.len() < CBC_BLOCK + MAC || !(sealed.len() - MAC).is_multiple_of(CBC_BLOCK)
                {
                    return Err(err);
                }
                let (ct, tag) = sealed.split_at_mut(sealed.len() - MAC);
                // check the MAC (in constant time) before decrypting
                let want = cbc_tag(mac, &aad, ct);
                let diff = want
                    .as_ref()
                    .iter()
                    .zip(tag.iter())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b));
                if diff != 0 {
                    return Err(err);
                }
                let iv = self.cbc_iv(mac, &aad);
                cbc::Decryptor::<Aes256>::new(enc.into(), &iv.into())
                    .decrypt_padded_mut::<Pkcs7>(ct)
                    .map_err(|_| err)
            }
        }
    }

    /// A per-package IV no one can predict without the key.
    // an HMAC-SHA256 tag is 32 bytes
    #[allow(clippy::indexing_slicing)]
    fn cbc_iv(&self, mac: &hmac::Key, aad: &[u8]) -> [u8; 16] {
        let mut ctx = hmac::Context::with_key(mac);
        ctx.update(b"cairn-sse cbc iv");
        ctx.update(aad);
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&ctx.sign().as_ref()[..16]);
        iv
    }
}

fn cbc_tag(mac: &hmac::Key, aad: &[u8], ct: &[u8]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(mac);
    ctx.update(b"cairn-sse cbc package");
    ctx.update(aad);
    ctx.update(ct);
    ctx.sign()
}
