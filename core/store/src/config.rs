//! The server's own records (`cairn_api::ConfigStore`: IAM users, keys,
//! policies...) under `.cairn.sys/config/<dir>/` on every drive.
//!
//! - A record's file name is the hex of its name: no name, whatever it
//!   holds (`..`, `/`), becomes more than one path segment.
//! - Each file is an envelope with the write time; the newest envelope of
//!   a name on any drive wins, and a delete is an envelope too, so a drive
//!   that missed a delete cannot bring the record back.
//! - A write needs the write quorum of drives. A read repairs the drives
//!   that lack the newest envelope (the record heals like everything
//!   else).
//! - Records of a secret directory (`ConfigDir::is_secret`) are sealed
//!   with a data key from the KMS when the store has one (AES-256-GCM,
//!   bound to the record's directory and name), so a drive taken away
//!   does not carry usable secret keys.

use std::collections::BTreeMap;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cairn_api::config::{record_file_name, record_name};
use cairn_api::{ConfigDir, ConfigStore, ObjectError, ObjectResult, SafePath};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};

use crate::drive::{Drive, DriveError};
use crate::set::{ErasureSet, now_nanos};

/// One record as a drive holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Envelope {
    /// When it was written (nanoseconds since the epoch).
    updated: i128,
    content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Content {
    Deleted,
    /// The record, base64.
    Plain(String),
    /// The record sealed: the KMS-sealed data key, the nonce and the
    /// ciphertext with its tag (base64).
    Sealed {
        key: String,
        nonce: String,
        data: String,
    },
}

fn io_err(e: impl std::fmt::Display) -> ObjectError {
    ObjectError::Internal {
        message: format!("config record: {e}"),
    }
}

fn config_dir(d: &Drive, dir: ConfigDir) -> Result<SafePath, cairn_api::PathError> {
    let mut p = d.sys_dir().join(cairn_api::seg!("config"));
    for part in dir.as_str().split('/') {
        p = p.join_str(part)?;
    }
    Ok(p)
}

/// Every envelope of `dir` on drive `d`, by record name.
fn read_dir(d: &Drive, dir: ConfigDir) -> Option<BTreeMap<String, Envelope>> {
    let path = config_dir(d, dir).ok()?;
    let mut out = BTreeMap::new();
    let entries = match d.io().read_dir(&path) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(out),
        Err(_) => return None,
    };
    for entry in entries {
        let Some(name) = entry.name.to_str().and_then(record_name) else {
            continue;
        };
        let Some(file) = entry.path_in(&path) else {
            continue;
        };
        let Ok(body) = d.io().read(&file) else {
            continue;
        };
        match serde_json::from_slice::<Envelope>(&body) {
            Ok(env) => {
                out.insert(name, env);
            }
            Err(e) => {
                tracing::error!(drive = %d.root.display(), dir = dir.as_str(), %name, error = %e, "config record does not decode; ignored");
            }
        }
    }
    Some(out)
}

fn write_envelope(d: &Drive, dir: ConfigDir, name: &str, env: &Envelope) -> Result<(), DriveError> {
    d.check_online()?;
    let path = config_dir(d, dir)
        .and_then(|p| p.join_str(&record_file_name(name)))
        .map_err(|e| DriveError::Io(std::io::Error::other(e.to_string())))?;
    if let Some(parent) = path.parent() {
        d.io().create_dir_all(parent).map_err(DriveError::Io)?;
    }
    let body = serde_json::to_vec(env).map_err(|e| DriveError::Io(std::io::Error::other(e)))?;
    d.write_atomic(&path, &body)
}

/// What a sealed record is bound to.
fn aad(dir: ConfigDir, name: &str) -> Vec<u8> {
    format!("cairn-config\0{}\0{name}", dir.as_str()).into_bytes()
}

impl ErasureSet {
    async fn seal_record(&self, dir: ConfigDir, name: &str, body: &[u8]) -> ObjectResult<Content> {
        let kms = match self.sse_config().kms {
            Some(k) if dir.is_secret() => k,
            _ => return Ok(Content::Plain(B64.encode(body))),
        };
        let context = aad(dir, name);
        let dk = kms
            .generate_data_key(kms.default_key(), &context)
            .await
            .map_err(|e| ObjectError::Kms {
                message: e.to_string(),
            })?;
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &dk.plaintext).map_err(io_err)?);
        let mut nonce = [0u8; 12];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
            .map_err(io_err)?;
        let mut data = body.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&context),
            &mut data,
        )
        .map_err(io_err)?;
        Ok(Content::Sealed {
            key: dk.sealed,
            nonce: B64.encode(nonce),
            data: B64.encode(data),
        })
    }

    async fn unseal(
        &self,
        dir: ConfigDir,
        name: &str,
        content: &Content,
    ) -> ObjectResult<Option<Vec<u8>>> {
        match content {
            Content::Deleted => Ok(None),
            Content::Plain(b) => B64.decode(b).map(Some).map_err(io_err),
            Content::Sealed { key, nonce, data } => {
                let Some(kms) = self.sse_config().kms else {
                    return Err(ObjectError::KmsNotConfigured);
                };
                let context = aad(dir, name);
                let plain = kms
                    .decrypt(kms.default_key(), key, &context)
                    .await
                    .map_err(|e| ObjectError::Kms {
                        message: e.to_string(),
                    })?;
                let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &plain).map_err(io_err)?);
                let nonce: [u8; 12] = B64
                    .decode(nonce)
                    .map_err(io_err)?
                    .try_into()
                    .map_err(|_| io_err("sealed record nonce is not 12 bytes"))?;
                let mut buf = B64.decode(data).map_err(io_err)?;
                let out = k
                    .open_in_place(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(&context),
                        &mut buf,
                    )
                    .map_err(|_| {
                        io_err("sealed record does not open (tampered, or another KMS key)")
                    })?;
                Ok(Some(out.to_vec()))
            }
        }
    }
}

#[async_trait]
impl ConfigStore for ErasureSet {
    async fn config_list(&self, dir: ConfigDir) -> ObjectResult<Vec<(String, Vec<u8>)>> {
        let per_drive = self
            .on_drives(move |d| read_dir(d, dir).map(|m| (d.index, m)))
            .await;
        let answered: Vec<&(usize, BTreeMap<String, Envelope>)> =
            per_drive.iter().flatten().collect();
        let (rq, _) = self.default_quorums();
        if answered.len() < rq {
            return Err(self.write_quorum_error(rq, answered.len()));
        }
        let mut newest: BTreeMap<String, Envelope> = BTreeMap::new();
        for (_, m) in &answered {
            for (name, env) in m {
                if newest.get(name).is_none_or(|n| env.updated > n.updated) {
                    newest.insert(name.clone(), env.clone());
                }
            }
        }
        // heal: drives that answered without the newest envelope get it
        let fixes: Vec<(usize, String, Envelope)> = answered
            .iter()
            .flat_map(|(i, m)| {
                newest
                    .iter()
                    .filter(|(n, e)| m.get(*n) != Some(*e))
                    .map(|(n, e)| (*i, n.clone(), e.clone()))
            })
            .collect();
        if !fixes.is_empty() {
            let count = fixes.len();
            let fixes = std::sync::Arc::new(fixes);
            self.on_drives(move |d| {
                for (_, n, e) in fixes.iter().filter(|(j, ..)| *j == d.index) {
                    if let Err(err) = write_envelope(d, dir, n, e) {
                        tracing::warn!(drive = %d.root.display(), dir = dir.as_str(), name = %n, error = %err, "config record not repaired");
                    }
                }
            })
            .await;
            tracing::info!(
                dir = dir.as_str(),
                records = count,
                "config records repaired on drives that missed them"
            );
        }
        let mut out = Vec::new();
        for (name, env) in newest {
            match self.unseal(dir, &name, &env.content).await {
                Ok(Some(body)) => out.push((name, body)),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(dir = dir.as_str(), %name, error = %e, "config record cannot be read; left out");
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
        let content = match body {
            Some(b) => self.seal_record(dir, name, &b).await?,
            None => Content::Deleted,
        };
        let env = std::sync::Arc::new(Envelope {
            updated: now_nanos(),
            content,
        });
        let name = name.to_owned();
        let res = self
            .on_drives(move |d| write_envelope(d, dir, &name, &env))
            .await;
        let ok = res.iter().filter(|r| r.is_ok()).count();
        let (_, wq) = self.default_quorums();
        if ok < wq {
            return Err(self.write_quorum_error(wq, ok));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_become_paths() {
        for n in ["..", "a/b", "/etc/passwd", "", "ok-name"] {
            let f = record_file_name(n);
            assert!(!f.contains('/') && f.ends_with(".json"), "{n}");
            assert_eq!(record_name(&f).as_deref(), Some(n));
        }
        assert_eq!(record_name("zz.json"), None);
        assert_eq!(record_name("616263"), None);
    }

    #[test]
    fn envelopes_round_trip() {
        let e = Envelope {
            updated: 5,
            content: Content::Plain("aGk=".into()),
        };
        let j = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Envelope>(&j).unwrap(), e);
        let d = Envelope {
            updated: 6,
            content: Content::Deleted,
        };
        let j = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Envelope>(&j).unwrap(), d);
    }
}
