//! The key management service behind SSE-S3 and SSE-KMS: it hands out data
//! keys sealed under a named master key and unseals them again. Object keys
//! are sealed with these data keys (see `sse`), so rotating a master key
//! re-wraps one small sealed data key per object and never touches data.
//!
//! Implementations: the built-in KMS (`builtin`, master keys from the
//! environment or a key file) and HashiCorp Vault's Transit engine
//! (`vault`).

use async_trait::async_trait;
use cairn_api::ObjectError;
use serde::{Deserialize, Serialize};

/// A fresh data key: the plaintext to seal object keys with, and the same
/// key sealed by the KMS, to store.
pub struct DataKey {
    pub plaintext: [u8; 32],
    /// Opaque to the store, but always `<backend>:v<version>:<...>` so the
    /// master-key version that sealed it can be read ([`sealed_version`]).
    pub sealed: String,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("sealed", &self.sealed)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStatus {
    pub name: String,
    pub latest_version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsStatus {
    /// "builtin" or "vault".
    pub backend: String,
    /// Where the keys live (a file, a Vault address), for the operator.
    pub location: String,
    pub default_key: String,
    pub keys: Vec<KeyStatus>,
}

#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    #[error("KMS key {key_id:?} does not exist")]
    NotFound { key_id: String },
    #[error("KMS key {key_id:?} already exists")]
    Exists { key_id: String },
    #[error("the KMS refused the request: {message}")]
    Denied { message: String },
    #[error("the sealed key is not valid or was tampered with: {message}")]
    Invalid { message: String },
    #[error("{what} is not supported by this KMS: {why}")]
    Unsupported {
        what: &'static str,
        why: &'static str,
    },
    #[error("KMS backend error: {message}")]
    Backend { message: String },
}

impl From<KmsError> for ObjectError {
    fn from(e: KmsError) -> Self {
        match e {
            KmsError::NotFound { key_id } => ObjectError::KmsKeyNotFound { key_id },
            other => ObjectError::Kms {
                message: other.to_string(),
            },
        }
    }
}

/// A KMS. `context` is bound to the sealed key (AEAD associated data, or
/// the backend's equivalent): unsealing with another context fails.
#[async_trait]
pub trait Kms: Send + Sync + 'static {
    /// The key SSE-S3 and SSE-KMS without a key id use.
    fn default_key(&self) -> &str;
    async fn generate_data_key(&self, key_id: &str, context: &[u8]) -> Result<DataKey, KmsError>;
    async fn decrypt(
        &self,
        key_id: &str,
        sealed: &str,
        context: &[u8],
    ) -> Result<[u8; 32], KmsError>;
    /// Re-seals under the key's latest version without revealing it.
    async fn rewrap(&self, key_id: &str, sealed: &str, context: &[u8]) -> Result<String, KmsError>;
    async fn create_key(&self, key_id: &str) -> Result<(), KmsError>;
    /// Adds a new version of the key; returns it. Old versions still
    /// decrypt until everything is re-wrapped.
    async fn rotate_key(&self, key_id: &str) -> Result<u32, KmsError>;
    async fn status(&self) -> Result<KmsStatus, KmsError>;
}

/// The master-key version named in a sealed key (`<backend>:v<N>:...`).
pub fn sealed_version(sealed: &str) -> Option<u32> {
    let mut it = sealed.splitn(3, ':');
    let _backend = it.next()?;
    it.next()?.strip_prefix('v')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(sealed_version("vault:v2:abcd"), Some(2));
        assert_eq!(sealed_version("cairn:v11:xyz"), Some(11));
        assert_eq!(sealed_version("cairn:x1:xyz"), None);
        assert_eq!(sealed_version("nonsense"), None);
    }
}
