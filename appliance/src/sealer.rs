//! Secret configuration records kept outside the drives (a federation's
//! etcd) are sealed as the drives' records are (cairn-core config.rs): a
//! fresh data key from the KMS's default key per record, AES-256-GCM over
//! the record, both bound to the record's directory and name
//! (`cairn_api::config::record_context`).

use std::sync::Arc;

use async_trait::async_trait;
use cairn_api::config::record_context;
use cairn_api::{ConfigDir, ConfigSealer, ObjectError, ObjectResult};
use cairn_core::kms::Kms;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};

/// A sealed record: the KMS-sealed data key, the nonce and the
/// ciphertext with its tag (hex).
#[derive(Serialize, Deserialize)]
struct Sealed {
    key: String,
    nonce: String,
    data: String,
}

/// Seals with the server's KMS.
pub struct KmsSealer {
    kms: Arc<dyn Kms>,
}

impl KmsSealer {
    pub fn new(kms: Arc<dyn Kms>) -> Self {
        Self { kms }
    }
}

fn err(e: impl std::fmt::Display) -> ObjectError {
    ObjectError::Internal {
        message: format!("sealed config record: {e}"),
    }
}

fn aead(key: &[u8]) -> ObjectResult<LessSafeKey> {
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key).map_err(err)?,
    ))
}

#[async_trait]
impl ConfigSealer for KmsSealer {
    async fn seal(&self, dir: ConfigDir, name: &str, plain: &[u8]) -> ObjectResult<Vec<u8>> {
        let context = record_context(dir, name);
        let dk = self
            .kms
            .generate_data_key(self.kms.default_key(), &context)
            .await?;
        let mut nonce = [0u8; 12];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
            .map_err(err)?;
        let mut data = plain.to_vec();
        aead(&dk.plaintext)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&context),
                &mut data,
            )
            .map_err(err)?;
        serde_json::to_vec(&Sealed {
            key: dk.sealed,
            nonce: hex::encode(nonce),
            data: hex::encode(data),
        })
        .map_err(err)
    }

    async fn open(&self, dir: ConfigDir, name: &str, sealed: &[u8]) -> ObjectResult<Vec<u8>> {
        let s: Sealed = serde_json::from_slice(sealed).map_err(err)?;
        let context = record_context(dir, name);
        let key = self
            .kms
            .decrypt(self.kms.default_key(), &s.key, &context)
            .await?;
        let nonce: [u8; 12] = hex::decode(&s.nonce)
            .map_err(err)?
            .try_into()
            .map_err(|_| err("the nonce is not 12 bytes"))?;
        let mut buf = hex::decode(&s.data).map_err(err)?;
        let plain = aead(&key)?
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&context),
                &mut buf,
            )
            .map_err(|_| err("does not open (tampered, moved, or another KMS key)"))?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_open_only_under_their_own_name() {
        let kms = cairn_core::kms::KmsConfig {
            secret_key: Some(format!(
                "k:{}",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
            )),
            ..Default::default()
        }
        .build()
        .await
        .unwrap()
        .unwrap();
        let s = KmsSealer::new(kms);
        let sealed = s.seal(ConfigDir::IamKeys, "AK1", b"secret").await.unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("secret"));
        let plain = s.open(ConfigDir::IamKeys, "AK1", &sealed).await.unwrap();
        assert_eq!(plain, b"secret");
        assert!(s.open(ConfigDir::IamKeys, "AK2", &sealed).await.is_err());
        assert!(s.open(ConfigDir::IamUsers, "AK1", &sealed).await.is_err());
    }
}
