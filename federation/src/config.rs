//! The shared configuration records (IAM users, groups, policies, roles,
//! keys and service accounts) in etcd: `SharedConfig` is the
//! `cairn_api::ConfigStore` every site's IAM service reads and writes
//! when federation is on, so a key made on one site signs on all of them.
//!
//! - Keys: `<prefix>/config/<dir>/<hex of name>` (names.rs).
//! - Values: `{"plain": BASE64}`, or for secret directories with a KMS
//!   configured `{"sealed": BASE64}` (the server's `ConfigSealer`: a KMS
//!   data key, AES-256-GCM bound to the directory and name, as the
//!   drives' records are sealed). A sealed record this site cannot open
//!   (no KMS, another master key) is left out and logged by name only.
//! - Changes everywhere are seen through the namespace's etcd watch
//!   (watch.rs), which bumps [`ConfigStore::changes`]; the IAM service
//!   then reads the records again (`Iam::follow_store`).
//! - etcd unreachable: a write fails with 503 naming etcd (nothing
//!   changed); the IAM state already loaded goes on answering.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cairn_api::{ConfigDir, ConfigSealer, ConfigStore, ObjectError, ObjectResult};
use serde::{Deserialize, Serialize};

use crate::etcd::Etcd;
use crate::names::Keys;

/// A record as etcd holds it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Stored {
    Plain(String),
    Sealed(String),
}

/// The federation's configuration records in etcd.
pub struct SharedConfig {
    etcd: Etcd,
    keys: Keys,
    sealer: Option<Arc<dyn ConfigSealer>>,
    changes: tokio::sync::watch::Receiver<u64>,
}

impl SharedConfig {
    pub(crate) fn new(
        etcd: Etcd,
        keys: Keys,
        sealer: Option<Arc<dyn ConfigSealer>>,
        changes: tokio::sync::watch::Receiver<u64>,
    ) -> Self {
        Self {
            etcd,
            keys,
            sealer,
            changes,
        }
    }

    async fn decode(&self, dir: ConfigDir, name: &str, value: &[u8]) -> ObjectResult<Vec<u8>> {
        let stored: Stored = serde_json::from_slice(value).map_err(bad)?;
        match stored {
            Stored::Plain(b) => B64.decode(b).map_err(bad),
            Stored::Sealed(b) => {
                let sealed = B64.decode(b).map_err(bad)?;
                let Some(sealer) = &self.sealer else {
                    return Err(ObjectError::KmsNotConfigured);
                };
                sealer.open(dir, name, &sealed).await
            }
        }
    }
}

fn bad(e: impl std::fmt::Display) -> ObjectError {
    ObjectError::Internal {
        message: format!("shared config record: {e}"),
    }
}

/// What the IAM change's caller sees while etcd is gone.
fn unavailable(e: &crate::error::EtcdError) -> ObjectError {
    tracing::error!(error = %e, "etcd unreachable: shared IAM change refused");
    ObjectError::BackendUnavailable {
        backend: "etcd (the federation's shared IAM)",
        reason: "users, groups, policies and keys cannot change until it is back; the loaded ones keep working",
    }
}

#[async_trait]
impl ConfigStore for SharedConfig {
    async fn config_list(&self, dir: ConfigDir) -> ObjectResult<Vec<(String, Vec<u8>)>> {
        let kvs = self
            .etcd
            .list(&self.keys.config_dir(dir))
            .await
            .map_err(|e| unavailable(&e))?;
        let mut out = Vec::with_capacity(kvs.len());
        for (k, v) in kvs {
            let Some(name) = self.keys.config_name_of(dir, &k) else {
                continue;
            };
            match self.decode(dir, &name, &v).await {
                Ok(body) => out.push((name, body)),
                Err(e) => {
                    tracing::error!(dir = dir.as_str(), %name, error = %e, "shared config record cannot be read; left out");
                }
            }
        }
        Ok(out)
    }

    async fn config_put(
        &self,
        dir: ConfigDir,
        name: &str,
        body: Option<Vec<u8>>,
    ) -> ObjectResult<()> {
        let key = self.keys.config_record(dir, name);
        let value = match body {
            None => None,
            Some(b) => Some(match &self.sealer {
                Some(s) if dir.is_secret() => {
                    Stored::Sealed(B64.encode(s.seal(dir, name, &b).await?))
                }
                _ => Stored::Plain(B64.encode(b)),
            }),
        };
        let value = value
            .map(|v| serde_json::to_vec(&v).map_err(bad))
            .transpose()?;
        self.etcd
            .set(&key, value)
            .await
            .map_err(|e| unavailable(&e))
    }

    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.changes.clone())
    }
}
