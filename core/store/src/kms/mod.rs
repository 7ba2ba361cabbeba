//! The key management service behind SSE-S3 and SSE-KMS: it hands out data
//! keys sealed under a named master key and unseals them again. Object keys
//! are sealed with these data keys (see `sse`), so rotating a master key
//! re-wraps one small sealed data key per object and never touches data.
//!
//! Implementations: the built-in KMS (`builtin`, master keys from the
//! environment or a key file) and HashiCorp Vault's Transit engine
//! (`vault`).

pub mod builtin;
pub mod vault;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cairn_api::ObjectError;
use serde::{Deserialize, Serialize};

pub use builtin::BuiltinKms;
pub use vault::{VaultAuth, VaultConfig, VaultKms};

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
            // e.g. rotating a static key: the operator asked for something
            // this KMS cannot do (501), not a failure of the KMS
            KmsError::Unsupported { why, .. } => ObjectError::NotImplemented { what: why },
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

/// The default key's name when none is configured.
pub const DEFAULT_KEY: &str = "cairn-default";

/// Which KMS the server uses, as the operator configured it (`cairn server
/// --kms-*` / `CAIRN_KMS_*`). At most one of `secret_key`, `key_file` and
/// `vault_endpoint` may be set; none means no KMS (SSE-S3 and SSE-KMS are
/// refused, SSE-C still works).
#[derive(Default, Clone)]
pub struct KmsConfig {
    /// `NAME:BASE64-32-BYTES`: one static built-in key.
    pub secret_key: Option<String>,
    /// A built-in key file (created with a random default key if missing).
    pub key_file: Option<PathBuf>,
    /// Vault (or OpenBao) address: use its Transit engine.
    pub vault_endpoint: Option<String>,
    pub vault_token: Option<String>,
    pub vault_approle_id: Option<String>,
    pub vault_approle_secret: Option<String>,
    /// Transit mount (default `transit`).
    pub vault_mount: Option<String>,
    /// AppRole mount (default `approle`).
    pub vault_approle_mount: Option<String>,
    /// The key SSE-S3 uses (default `cairn-default`; with `secret_key`,
    /// the secret's name, which this must then match if given).
    pub default_key: Option<String>,
}

impl std::fmt::Debug for KmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |o: &Option<String>| o.as_ref().map(|_| "<hidden>");
        f.debug_struct("KmsConfig")
            .field("secret_key", &hidden(&self.secret_key))
            .field("key_file", &self.key_file)
            .field("vault_endpoint", &self.vault_endpoint)
            .field("vault_token", &hidden(&self.vault_token))
            .field("vault_approle_id", &self.vault_approle_id)
            .field("vault_approle_secret", &hidden(&self.vault_approle_secret))
            .field("vault_mount", &self.vault_mount)
            .field("default_key", &self.default_key)
            .finish()
    }
}

fn config_error(message: impl Into<String>) -> KmsError {
    KmsError::Backend {
        message: message.into(),
    }
}

impl KmsConfig {
    /// Builds the configured KMS, or `None` when none is configured. A
    /// built-in key file is created when missing; Vault is reached lazily
    /// (an unreachable Vault is logged, not fatal).
    pub async fn build(&self) -> Result<Option<Arc<dyn Kms>>, KmsError> {
        let set = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
        let chosen = [
            set(&self.secret_key),
            self.key_file.is_some(),
            set(&self.vault_endpoint),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if chosen > 1 {
            return Err(config_error(
                "configure one KMS: a secret key (CAIRN_KMS_SECRET_KEY), a key file \
                 (CAIRN_KMS_KEY_FILE) or Vault (CAIRN_KMS_VAULT_ENDPOINT), not several",
            ));
        }
        if !set(&self.vault_endpoint) && (set(&self.vault_token) || set(&self.vault_approle_id)) {
            return Err(config_error(
                "Vault credentials are set but no Vault endpoint (CAIRN_KMS_VAULT_ENDPOINT)",
            ));
        }
        let default_key = self.default_key.as_deref().filter(|s| !s.is_empty());
        if let Some(secret) = self.secret_key.as_deref().filter(|s| !s.is_empty()) {
            let kms = BuiltinKms::from_secret(secret)?;
            if let Some(d) = default_key
                && d != kms.default_key()
            {
                return Err(config_error(format!(
                    "the default key {d:?} is not the key CAIRN_KMS_SECRET_KEY names ({:?})",
                    kms.default_key()
                )));
            }
            return Ok(Some(Arc::new(kms)));
        }
        if let Some(path) = &self.key_file {
            let name = default_key.unwrap_or(DEFAULT_KEY).to_owned();
            let path = path.clone();
            let kms =
                tokio::task::spawn_blocking(move || BuiltinKms::open_file(&path, Some(&name)))
                    .await
                    .map_err(|e| config_error(format!("opening the key file: {e}")))??;
            return Ok(Some(Arc::new(kms)));
        }
        let Some(endpoint) = self.vault_endpoint.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let auth = match (
            self.vault_token.as_deref().filter(|s| !s.is_empty()),
            self.vault_approle_id.as_deref().filter(|s| !s.is_empty()),
            self.vault_approle_secret
                .as_deref()
                .filter(|s| !s.is_empty()),
        ) {
            (Some(t), None, None) => VaultAuth::Token(t.to_owned()),
            (None, Some(id), Some(secret)) => VaultAuth::AppRole {
                mount: self
                    .vault_approle_mount
                    .clone()
                    .unwrap_or_else(|| "approle".into()),
                role_id: id.to_owned(),
                secret_id: secret.to_owned(),
            },
            _ => {
                return Err(config_error(
                    "Vault needs either CAIRN_KMS_VAULT_TOKEN, or CAIRN_KMS_VAULT_APPROLE_ID and \
                     CAIRN_KMS_VAULT_APPROLE_SECRET",
                ));
            }
        };
        let kms = VaultKms::connect(VaultConfig {
            endpoint: endpoint.to_owned(),
            mount: self.vault_mount.clone().unwrap_or_else(|| "transit".into()),
            auth,
            default_key: default_key.unwrap_or(DEFAULT_KEY).to_owned(),
            timeout: Duration::from_secs(10),
        })
        .await?;
        Ok(Some(Arc::new(kms)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::disallowed_methods)] // fixtures below a temp folder
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(sealed_version("vault:v2:abcd"), Some(2));
        assert_eq!(sealed_version("cairn:v11:xyz"), Some(11));
        assert_eq!(sealed_version("cairn:x1:xyz"), None);
        assert_eq!(sealed_version("nonsense"), None);
    }

    #[tokio::test]
    async fn config_picks_one_kms() {
        use base64::Engine as _;
        let secret = format!(
            "main:{}",
            base64::engine::general_purpose::STANDARD.encode([3u8; 32])
        );
        assert!(KmsConfig::default().build().await.unwrap().is_none());
        let kms = KmsConfig {
            secret_key: Some(secret.clone()),
            ..Default::default()
        }
        .build()
        .await
        .unwrap()
        .unwrap();
        assert_eq!(kms.default_key(), "main");
        let dir = tempfile::tempdir().unwrap();
        let kms = KmsConfig {
            key_file: Some(dir.path().join("k.json")),
            ..Default::default()
        }
        .build()
        .await
        .unwrap()
        .unwrap();
        assert_eq!(kms.default_key(), DEFAULT_KEY);
        for bad in [
            KmsConfig {
                secret_key: Some(secret.clone()),
                key_file: Some(dir.path().join("k.json")),
                ..Default::default()
            },
            KmsConfig {
                secret_key: Some(secret.clone()),
                default_key: Some("other".into()),
                ..Default::default()
            },
            KmsConfig {
                vault_endpoint: Some("http://127.0.0.1:1".into()),
                ..Default::default()
            },
            KmsConfig {
                vault_token: Some("t".into()),
                ..Default::default()
            },
            KmsConfig {
                vault_endpoint: Some("not a url".into()),
                vault_token: Some("t".into()),
                ..Default::default()
            },
        ] {
            assert!(bad.build().await.is_err(), "{bad:?}");
        }
        // Vault is reached lazily: a closed port is not an error at start
        let kms = KmsConfig {
            vault_endpoint: Some("http://127.0.0.1:1".into()),
            vault_token: Some("t".into()),
            ..Default::default()
        }
        .build()
        .await
        .unwrap()
        .unwrap();
        assert!(matches!(
            kms.generate_data_key(DEFAULT_KEY, b"").await,
            Err(KmsError::Backend { .. })
        ));
    }
}
