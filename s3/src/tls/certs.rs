//! A certificates folder laid out as MinIO's: `DIR/public.crt` and
//! `DIR/private.key` are the default certificate; each subdirectory
//! `DIR/<name>/` holding the same two files is another one (chosen by SNI,
//! crate::tls::resolve). `DIR/CAs/` (MinIO's trusted CAs) is skipped.
//!
//! `public.crt` is a PEM chain (the server's certificate first);
//! `private.key` a PEM key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC), unencrypted,
//! RSA, ECDSA or Ed25519. Everything here is blocking file I/O: callers run
//! it on the blocking pool.

use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// The certificate chain of a pair.
pub(crate) const CERT_FILE: &str = "public.crt";
/// The private key of a pair.
pub(crate) const KEY_FILE: &str = "private.key";
/// Subdirectories that hold no server certificate (MinIO keeps the CAs it
/// trusts in `CAs/`).
const SKIPPED: &[&str] = &["CAs"];
/// A certificate chain or key is a few KiB; a bigger file is a mistake.
const MAX_FILE: u64 = 1 << 20;

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: larger than 1 MiB, not a PEM certificate or key")]
    TooLarge(PathBuf),
    #[error("{path}: not PEM: {detail}")]
    Pem { path: PathBuf, detail: String },
    #[error("{0}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it")]
    NoCertificate(PathBuf),
    #[error(
        "{0}: no PEM private key in it (PKCS#8, PKCS#1 RSA or SEC1 EC; encrypted keys are not supported)"
    )]
    NoKey(PathBuf),
    #[error("{path}: the private key cannot be used: {detail}")]
    Key { path: PathBuf, detail: String },
    #[error("{0}: the certificate cannot be parsed: {1}")]
    Certificate(PathBuf, String),
    #[error("{dir}: {KEY_FILE} does not belong to the certificate in {CERT_FILE}")]
    Mismatch { dir: PathBuf },
    #[error("{0}: listing the certificates folder: {1}")]
    List(PathBuf, std::io::Error),
}

/// One file's identity and state: a change of any of these is a new file
/// (replaced, rewritten, a symlink pointed elsewhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        // follows symlinks: a Kubernetes secret swaps a link
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The state of a pair's two files (None: missing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    cert: Option<FileStamp>,
    key: Option<FileStamp>,
}

/// A place in the folder that holds (or held) a pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    /// `""` for the default pair, else the subdirectory's name.
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) stamp: Stamp,
}

/// The pairs the folder holds now: the default one (listed even when its
/// files are missing), then each subdirectory with at least one of the two
/// files, by name.
pub(crate) fn scan(root: &Path) -> Result<Vec<Slot>, CertError> {
    let mut slots = vec![slot(String::new(), root.to_path_buf())];
    let entries = std::fs::read_dir(root).map_err(|e| CertError::List(root.to_path_buf(), e))?;
    let mut subs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CertError::List(root.to_path_buf(), e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if SKIPPED.contains(&name.as_str()) || name.starts_with('.') {
            continue;
        }
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let s = slot(name, dir);
        if s.stamp.cert.is_some() || s.stamp.key.is_some() {
            subs.push(s);
        }
    }
    subs.sort_by(|a, b| a.name.cmp(&b.name));
    slots.extend(subs);
    Ok(slots)
}

fn slot(name: String, dir: PathBuf) -> Slot {
    let stamp = Stamp {
        cert: FileStamp::of(&dir.join(CERT_FILE)),
        key: FileStamp::of(&dir.join(KEY_FILE)),
    };
    Slot { name, dir, stamp }
}

/// A certificate ready to serve, with the DNS names it is valid for.
#[derive(Clone, Debug)]
pub(crate) struct Pair {
    pub(crate) key: Arc<CertifiedKey>,
    /// Its subject alternative DNS names, lowercase (`*.example.com`
    /// included as written).
    pub(crate) names: Vec<String>,
}

/// Loads the pair in `dir`, checking that the key is the certificate's.
pub(crate) fn load(dir: &Path, provider: &CryptoProvider) -> Result<Pair, CertError> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let cert_pem = read_small(&cert_path)?;
    let key_pem = read_small(&key_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Pem {
            path: cert_path.clone(),
            detail: e.to_string(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(CertError::NoCertificate(cert_path));
    };
    let names = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| CertError::Certificate(cert_path.clone(), format!("{e:?}")))?
        .valid_dns_names()
        .map(str::to_ascii_lowercase)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => CertError::NoKey(key_path.clone()),
        e => CertError::Pem {
            path: key_path.clone(),
            detail: e.to_string(),
        },
    })?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| CertError::Key {
            path: key_path.clone(),
            detail: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(CertError::Mismatch {
                dir: dir.to_path_buf(),
            });
        }
        Err(e) => return Err(CertError::Certificate(cert_path, e.to_string())),
    }
    Ok(Pair {
        key: Arc::new(certified),
        names,
    })
}

/// The whole file, refused past `MAX_FILE`.
fn read_small(path: &Path) -> Result<Vec<u8>, CertError> {
    let read = |e| CertError::Read {
        path: path.to_path_buf(),
        source: e,
    };
    let f = std::fs::File::open(path).map_err(read)?;
    let mut buf = Vec::new();
    f.take(MAX_FILE + 1).read_to_end(&mut buf).map_err(read)?;
    if buf.len() as u64 > MAX_FILE {
        return Err(CertError::TooLarge(path.to_path_buf()));
    }
    Ok(buf)
}
