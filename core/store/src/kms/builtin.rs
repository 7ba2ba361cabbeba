//! The built-in KMS: named AES-256 master keys, each with numbered versions,
//! held in memory and taken either from `CAIRN_KMS_SECRET_KEY=NAME:BASE64`
//! (one key, one version, never changes) or from a key file that
//! `create_key` and `rotate_key` rewrite.
//!
//! A data key is 32 random bytes sealed with AES-256-GCM (ring) under the
//! latest version of the named master key with a random 96-bit nonce. The
//! associated data binds the key name and the caller's context:
//! `b"cairn-kms" || u32be(len(name)) || name || u32be(version) || context`
//! (the length prefix keeps `("ab", "c")` and `("a", "bc")` apart). The
//! sealed form is `cairn:v<N>:<base64(nonce || ciphertext || tag)>`, N the
//! master-key version, so [`super::sealed_version`] reads it.
//!
//! Key file (JSON, mode 0600, replaced atomically: tmp + fsync + rename +
//! folder fsync):
//!
//! ```json
//! {"format": 1, "default_key": "cairn-default",
//!  "keys": {"cairn-default": ["<base64 32 bytes, version 1>", "<version 2>"]}}
//! ```

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use parking_lot::Mutex;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};

use super::{DataKey, KeyStatus, Kms, KmsError, KmsStatus};

const PREFIX: &str = "cairn";
const AAD_TAG: &[u8] = b"cairn-kms";
const TAG_LEN: usize = 16;
const SEALED_LEN: usize = NONCE_LEN + 32 + TAG_LEN;
const FILE_FORMAT: u32 = 1;

/// Names of master keys: what S3 clients may send as a key id, so kept to
/// a safe alphabet.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

#[derive(Clone)]
struct Keyring {
    default_key: String,
    /// `keys[name][v - 1]` is version `v`.
    keys: BTreeMap<String, Vec<[u8; 32]>>,
}

enum Source {
    Secret,
    File(PathBuf),
}

/// The built-in KMS. See the module docs.
pub struct BuiltinKms {
    source: Source,
    default_key: String,
    ring: Mutex<Keyring>,
    rng: SystemRandom,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    format: u32,
    default_key: String,
    keys: BTreeMap<String, Vec<String>>,
}

fn backend(message: impl Into<String>) -> KmsError {
    KmsError::Backend {
        message: message.into(),
    }
}

fn invalid(message: impl Into<String>) -> KmsError {
    KmsError::Invalid {
        message: message.into(),
    }
}

fn decode_key(b64: &str, what: &str) -> Result<[u8; 32], KmsError> {
    let raw = B64
        .decode(b64.trim())
        .map_err(|e| backend(format!("{what}: not base64: {e}")))?;
    <[u8; 32]>::try_from(raw.as_slice())
        .map_err(|_| backend(format!("{what}: a key is 32 bytes, this one {}", raw.len())))
}

fn aad(name: &str, version: u32, context: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(AAD_TAG.len() + 8 + name.len() + context.len());
    a.extend_from_slice(AAD_TAG);
    a.extend_from_slice(&(name.len() as u32).to_be_bytes());
    a.extend_from_slice(name.as_bytes());
    a.extend_from_slice(&version.to_be_bytes());
    a.extend_from_slice(context);
    a
}

/// Splits `cairn:v<N>:<b64>` strictly (canonical version number, exact
/// length), so no two strings unseal to the same key.
fn parse_sealed(sealed: &str) -> Result<(u32, [u8; SEALED_LEN]), KmsError> {
    let mut it = sealed.splitn(3, ':');
    let (Some(p), Some(v), Some(body)) = (it.next(), it.next(), it.next()) else {
        return Err(invalid("not a cairn:v<N>:<...> sealed key"));
    };
    if p != PREFIX {
        return Err(invalid(format!("sealed by {p:?}, not the built-in KMS")));
    }
    let version: u32 = v
        .strip_prefix('v')
        .and_then(|n| n.parse().ok())
        .filter(|n: &u32| *n > 0 && format!("v{n}") == v)
        .ok_or_else(|| invalid("bad key version"))?;
    let raw = B64
        .decode(body)
        .map_err(|_| invalid("sealed key is not base64"))?;
    let raw = <[u8; SEALED_LEN]>::try_from(raw.as_slice()).map_err(|_| {
        invalid(format!(
            "sealed key has {} bytes, not {SEALED_LEN}",
            raw.len()
        ))
    })?;
    Ok((version, raw))
}

impl BuiltinKms {
    /// One static key from `NAME:BASE64-32-BYTES` (the value of
    /// `CAIRN_KMS_SECRET_KEY`). It is version 1 and the default key.
    pub fn from_secret(secret: &str) -> Result<Self, KmsError> {
        let (name, b64) = secret.split_once(':').ok_or_else(|| {
            backend("CAIRN_KMS_SECRET_KEY must be NAME:BASE64 (32 bytes, e.g. `openssl rand -base64 32`)")
        })?;
        if !valid_key_name(name) {
            return Err(backend(format!(
                "CAIRN_KMS_SECRET_KEY: {name:?} is not a valid key name (letters, digits, - _ . /)"
            )));
        }
        let key = decode_key(b64, "CAIRN_KMS_SECRET_KEY")?;
        Ok(Self {
            source: Source::Secret,
            default_key: name.to_owned(),
            ring: Mutex::new(Keyring {
                default_key: name.to_owned(),
                keys: BTreeMap::from([(name.to_owned(), vec![key])]),
            }),
            rng: SystemRandom::new(),
        })
    }

    /// Opens a key file. When it does not exist and `create_default` names
    /// a key, the file is created (mode 0600) with one random version of
    /// that key as the default; an existing file that lacks that key gets
    /// it added. The file must not be readable by group or others.
    pub fn open_file(path: &Path, create_default: Option<&str>) -> Result<Self, KmsError> {
        let rng = SystemRandom::new();
        let ring = match std::fs::read(path) {
            Ok(bytes) => {
                let meta = std::fs::metadata(path)
                    .map_err(|e| backend(format!("{}: {e}", path.display())))?;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(backend(format!(
                        "key file {} has mode {mode:o}: it must be readable by its owner only (chmod 600)",
                        path.display()
                    )));
                }
                Self::parse_file(&bytes, path)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(name) = create_default else {
                    return Err(backend(format!(
                        "key file {} does not exist",
                        path.display()
                    )));
                };
                Keyring {
                    default_key: name.to_owned(),
                    keys: BTreeMap::new(),
                }
            }
            Err(e) => return Err(backend(format!("reading {}: {e}", path.display()))),
        };
        let mut ring = ring;
        if let Some(name) = create_default {
            if !valid_key_name(name) {
                return Err(backend(format!(
                    "{name:?} is not a valid key name (letters, digits, - _ . /)"
                )));
            }
            if !ring.keys.contains_key(name) {
                ring.keys.insert(name.to_owned(), vec![random_key(&rng)?]);
                write_file(path, &ring)?;
            }
        }
        if !ring.keys.contains_key(&ring.default_key) {
            return Err(backend(format!(
                "key file {}: the default key {:?} is not in it",
                path.display(),
                ring.default_key
            )));
        }
        Ok(Self {
            source: Source::File(path.to_owned()),
            default_key: ring.default_key.clone(),
            ring: Mutex::new(ring),
            rng,
        })
    }

    fn parse_file(bytes: &[u8], path: &Path) -> Result<Keyring, KmsError> {
        let f: KeyFile = serde_json::from_slice(bytes)
            .map_err(|e| backend(format!("key file {}: {e}", path.display())))?;
        if f.format != FILE_FORMAT {
            return Err(backend(format!(
                "key file {}: format {} is not known (this build reads {FILE_FORMAT})",
                path.display(),
                f.format
            )));
        }
        let mut keys = BTreeMap::new();
        for (name, versions) in f.keys {
            if !valid_key_name(&name) || versions.is_empty() {
                return Err(backend(format!(
                    "key file {}: bad key entry {name:?}",
                    path.display()
                )));
            }
            let vs = versions
                .iter()
                .enumerate()
                .map(|(i, b)| decode_key(b, &format!("key {name} version {}", i + 1)))
                .collect::<Result<Vec<_>, _>>()?;
            keys.insert(name, vs);
        }
        Ok(Keyring {
            default_key: f.default_key,
            keys,
        })
    }

    fn seal(
        &self,
        name: &str,
        version: u32,
        master: &[u8; 32],
        plaintext: &[u8; 32],
        context: &[u8],
    ) -> Result<String, KmsError> {
        let key = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, master).map_err(|_| backend("bad master key"))?,
        );
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| backend("the system random generator failed"))?;
        let mut buf = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(name, version, context)),
            &mut buf,
        )
        .map_err(|_| backend("sealing failed"))?;
        let mut out = Vec::with_capacity(SEALED_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}:v{version}:{}", B64.encode(out)))
    }

    fn unseal(&self, name: &str, sealed: &str, context: &[u8]) -> Result<[u8; 32], KmsError> {
        let (version, raw) = parse_sealed(sealed)?;
        let master = {
            let ring = self.ring.lock();
            let versions = ring.keys.get(name).ok_or_else(|| KmsError::NotFound {
                key_id: name.to_owned(),
            })?;
            *versions
                .get(version as usize - 1)
                .ok_or_else(|| invalid(format!("key {name:?} has no version {version}")))?
        };
        let key = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &master).map_err(|_| backend("bad master key"))?,
        );
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&raw[..NONCE_LEN]);
        let mut buf = raw[NONCE_LEN..].to_vec();
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(name, version, context)),
                &mut buf,
            )
            .map_err(|_| invalid("authentication failed (wrong key, context or altered bytes)"))?;
        <[u8; 32]>::try_from(&*plain).map_err(|_| invalid("unsealed key is not 32 bytes"))
    }

    fn latest(&self, name: &str) -> Result<(u32, [u8; 32]), KmsError> {
        let ring = self.ring.lock();
        let versions = ring.keys.get(name).ok_or_else(|| KmsError::NotFound {
            key_id: name.to_owned(),
        })?;
        let last = versions.last().ok_or_else(|| KmsError::NotFound {
            key_id: name.to_owned(),
        })?;
        Ok((versions.len() as u32, *last))
    }

    /// Applies `change` to a copy of the keyring, writes the file, then
    /// installs the copy: a failed write changes nothing.
    fn update<T>(
        &self,
        what: &'static str,
        change: impl FnOnce(&mut Keyring) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        let path = match &self.source {
            Source::File(p) => p,
            Source::Secret => {
                return Err(KmsError::Unsupported {
                    what,
                    why: "a static key from CAIRN_KMS_SECRET_KEY cannot be created or rotated; use a key file (--kms-key-file) or Vault to manage keys",
                });
            }
        };
        let mut ring = self.ring.lock();
        let mut next = ring.clone();
        let out = change(&mut next)?;
        write_file(path, &next)?;
        *ring = next;
        Ok(out)
    }
}

fn random_key(rng: &SystemRandom) -> Result<[u8; 32], KmsError> {
    let mut k = [0u8; 32];
    rng.fill(&mut k)
        .map_err(|_| backend("the system random generator failed"))?;
    Ok(k)
}

/// Writes the key file atomically: `<file>.tmp` (mode 0600) + fsync +
/// rename + fsync of the folder.
fn write_file(path: &Path, ring: &Keyring) -> Result<(), KmsError> {
    let f = KeyFile {
        format: FILE_FORMAT,
        default_key: ring.default_key.clone(),
        keys: ring
            .keys
            .iter()
            .map(|(n, vs)| (n.clone(), vs.iter().map(|k| B64.encode(k)).collect()))
            .collect(),
    };
    let mut bytes =
        serde_json::to_vec_pretty(&f).map_err(|e| backend(format!("encoding key file: {e}")))?;
    bytes.push(b'\n');
    let io = |e: std::io::Error| backend(format!("writing key file {}: {e}", path.display()));
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    // next to the key file, which comes from the configuration
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    let written = file.write_all(&bytes).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

#[async_trait]
impl Kms for BuiltinKms {
    fn default_key(&self) -> &str {
        &self.default_key
    }

    async fn generate_data_key(&self, key_id: &str, context: &[u8]) -> Result<DataKey, KmsError> {
        let (version, master) = self.latest(key_id)?;
        let plaintext = random_key(&self.rng)?;
        let sealed = self.seal(key_id, version, &master, &plaintext, context)?;
        Ok(DataKey { plaintext, sealed })
    }

    async fn decrypt(
        &self,
        key_id: &str,
        sealed: &str,
        context: &[u8],
    ) -> Result<[u8; 32], KmsError> {
        self.unseal(key_id, sealed, context)
    }

    async fn rewrap(&self, key_id: &str, sealed: &str, context: &[u8]) -> Result<String, KmsError> {
        let plain = self.unseal(key_id, sealed, context)?;
        let (version, master) = self.latest(key_id)?;
        self.seal(key_id, version, &master, &plain, context)
    }

    async fn create_key(&self, key_id: &str) -> Result<(), KmsError> {
        if !valid_key_name(key_id) {
            return Err(backend(format!(
                "{key_id:?} is not a valid key name (1-128 of letters, digits, - _ . /)"
            )));
        }
        let key = random_key(&self.rng)?;
        self.update("creating keys", |ring| {
            if ring.keys.contains_key(key_id) {
                return Err(KmsError::Exists {
                    key_id: key_id.to_owned(),
                });
            }
            ring.keys.insert(key_id.to_owned(), vec![key]);
            Ok(())
        })
    }

    async fn rotate_key(&self, key_id: &str) -> Result<u32, KmsError> {
        let key = random_key(&self.rng)?;
        self.update("rotating keys", |ring| {
            let versions = ring
                .keys
                .get_mut(key_id)
                .ok_or_else(|| KmsError::NotFound {
                    key_id: key_id.to_owned(),
                })?;
            versions.push(key);
            Ok(versions.len() as u32)
        })
    }

    async fn status(&self) -> Result<KmsStatus, KmsError> {
        let ring = self.ring.lock();
        Ok(KmsStatus {
            backend: "builtin".into(),
            location: match &self.source {
                Source::Secret => "CAIRN_KMS_SECRET_KEY".into(),
                Source::File(p) => p.display().to_string(),
            },
            default_key: self.default_key.clone(),
            keys: ring
                .keys
                .iter()
                .map(|(n, vs)| KeyStatus {
                    name: n.clone(),
                    latest_version: vs.len() as u32,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::disallowed_methods)] // fixtures below a temp folder
mod tests {
    use super::*;
    use crate::kms::sealed_version;

    fn secret() -> String {
        format!("k1:{}", B64.encode([7u8; 32]))
    }

    #[tokio::test]
    async fn seal_unseal() {
        let kms = BuiltinKms::from_secret(&secret()).unwrap();
        assert_eq!(kms.default_key(), "k1");
        let dk = kms.generate_data_key("k1", b"bucket/object").await.unwrap();
        assert!(dk.sealed.starts_with("cairn:v1:"), "{}", dk.sealed);
        assert_eq!(sealed_version(&dk.sealed), Some(1));
        let back = kms
            .decrypt("k1", &dk.sealed, b"bucket/object")
            .await
            .unwrap();
        assert_eq!(back, dk.plaintext);
        // fresh keys and nonces every time
        let dk2 = kms.generate_data_key("k1", b"bucket/object").await.unwrap();
        assert_ne!(dk.plaintext, dk2.plaintext);
        assert_ne!(dk.sealed, dk2.sealed);
        // unknown key
        assert!(matches!(
            kms.generate_data_key("nope", b"").await,
            Err(KmsError::NotFound { .. })
        ));
        assert!(matches!(
            kms.decrypt("nope", &dk.sealed, b"bucket/object").await,
            Err(KmsError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn wrong_context_or_name_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let kms = BuiltinKms::open_file(&dir.path().join("keys.json"), Some("a")).unwrap();
        kms.create_key("ab").await.unwrap();
        let dk = kms.generate_data_key("a", b"bc").await.unwrap();
        for (name, ctx) in [("a", &b"bd"[..]), ("a", b""), ("a", b"bc\0")] {
            assert!(
                matches!(
                    kms.decrypt(name, &dk.sealed, ctx).await,
                    Err(KmsError::Invalid { .. })
                ),
                "{name} {ctx:?}"
            );
        }
        // same bytes of name || context, other split: the key name differs
        // and so does the AAD
        assert!(kms.decrypt("ab", &dk.sealed, b"c").await.is_err());
        assert_eq!(
            kms.decrypt("a", &dk.sealed, b"bc").await.unwrap(),
            dk.plaintext
        );
    }

    #[tokio::test]
    async fn every_flipped_byte_rejected() {
        let kms = BuiltinKms::from_secret(&secret()).unwrap();
        let dk = kms.generate_data_key("k1", b"ctx").await.unwrap();
        let bytes = dk.sealed.as_bytes();
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x02, 0x20, 0x80] {
                let mut b = bytes.to_vec();
                b[i] ^= mask;
                let Ok(s) = String::from_utf8(b) else {
                    continue; // not a string the store could hold
                };
                match kms.decrypt("k1", &s, b"ctx").await {
                    Err(KmsError::Invalid { .. }) => {}
                    other => panic!("byte {i} ^ {mask:#x} ({s}): {other:?}"),
                }
            }
        }
        // truncated and extended
        for s in [
            &dk.sealed[..dk.sealed.len() - 4],
            &format!("{}AAAA", dk.sealed),
            "cairn:v1:",
            "cairn:v01:x",
            "",
        ] {
            assert!(
                matches!(
                    kms.decrypt("k1", s, b"ctx").await,
                    Err(KmsError::Invalid { .. })
                ),
                "{s}"
            );
        }
    }

    #[tokio::test]
    async fn static_secret_cannot_change() {
        let kms = BuiltinKms::from_secret(&secret()).unwrap();
        for r in [
            kms.create_key("k2").await.err(),
            kms.rotate_key("k1").await.err(),
        ] {
            match r {
                Some(KmsError::Unsupported { why, .. }) => {
                    assert!(why.contains("CAIRN_KMS_SECRET_KEY"))
                }
                other => panic!("{other:?}"),
            }
        }
        for bad in [
            "k1",
            "k1:notbase64!",
            &format!("k1:{}", B64.encode([1u8; 16])),
            &format!("bad name:{}", B64.encode([1u8; 32])),
        ] {
            assert!(BuiltinKms::from_secret(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn rotation_keeps_old_versions_and_rewrap_names_new() {
        let dir = tempfile::tempdir().unwrap();
        let kms = BuiltinKms::open_file(&dir.path().join("keys.json"), Some("main")).unwrap();
        let old = kms.generate_data_key("main", b"o").await.unwrap();
        assert_eq!(sealed_version(&old.sealed), Some(1));
        assert_eq!(kms.rotate_key("main").await.unwrap(), 2);
        assert_eq!(kms.rotate_key("main").await.unwrap(), 3);
        // the old sealed key still opens
        assert_eq!(
            kms.decrypt("main", &old.sealed, b"o").await.unwrap(),
            old.plaintext
        );
        // new keys use the newest version
        let new = kms.generate_data_key("main", b"o").await.unwrap();
        assert_eq!(sealed_version(&new.sealed), Some(3));
        // rewrap: same data key, sealed under version 3
        let re = kms.rewrap("main", &old.sealed, b"o").await.unwrap();
        assert_eq!(sealed_version(&re), Some(3));
        assert_eq!(kms.decrypt("main", &re, b"o").await.unwrap(), old.plaintext);
        // rewrap checks the context too
        assert!(matches!(
            kms.rewrap("main", &old.sealed, b"x").await,
            Err(KmsError::Invalid { .. })
        ));
        assert!(matches!(
            kms.rotate_key("other").await,
            Err(KmsError::NotFound { .. })
        ));
        let st = kms.status().await.unwrap();
        assert_eq!(st.backend, "builtin");
        assert_eq!(st.default_key, "main");
        assert_eq!(
            st.keys,
            vec![KeyStatus {
                name: "main".into(),
                latest_version: 3
            }]
        );
    }

    #[tokio::test]
    async fn file_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        assert!(BuiltinKms::open_file(&path, None).is_err(), "missing file");
        let kms = BuiltinKms::open_file(&path, Some("cairn-default")).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let a = kms.generate_data_key("cairn-default", b"c").await.unwrap();
        kms.create_key("tenant-1").await.unwrap();
        assert!(matches!(
            kms.create_key("tenant-1").await,
            Err(KmsError::Exists { .. })
        ));
        assert!(kms.create_key("bad name").await.is_err());
        let b = kms.generate_data_key("tenant-1", b"c").await.unwrap();
        kms.rotate_key("cairn-default").await.unwrap();
        drop(kms);
        assert!(!dir.path().join("keys.json.tmp").exists());

        let kms = BuiltinKms::open_file(&path, None).unwrap();
        assert_eq!(kms.default_key(), "cairn-default");
        assert_eq!(
            kms.decrypt("cairn-default", &a.sealed, b"c").await.unwrap(),
            a.plaintext
        );
        assert_eq!(
            kms.decrypt("tenant-1", &b.sealed, b"c").await.unwrap(),
            b.plaintext
        );
        let st = kms.status().await.unwrap();
        assert_eq!(st.location, path.display().to_string());
        assert_eq!(st.keys.len(), 2);
        assert_eq!(st.keys[0].latest_version, 2);
        // reopening with another default name adds that key, keeps the rest
        let kms = BuiltinKms::open_file(&path, Some("extra")).unwrap();
        assert_eq!(kms.default_key(), "cairn-default");
        assert_eq!(kms.status().await.unwrap().keys.len(), 3);

        // a file others can read is refused
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = BuiltinKms::open_file(&path, None).err().unwrap();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        // a damaged file is refused, not replaced
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"{not json").unwrap();
        assert!(BuiltinKms::open_file(&path, Some("cairn-default")).is_err());
    }
}
