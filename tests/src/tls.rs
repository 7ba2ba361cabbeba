//! HTTPS in the tests: a test CA and server certificates made with the
//! openssl CLI (every key kind and PEM key format the server reads), and an
//! HTTPS client (rustls) that trusts that CA only and tells which
//! certificate the server presented and which protocol ALPN chose.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::raw::{self, Response};
use crate::run;

/// A server key: its algorithm and the PEM format it is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA 2048, PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    RsaPkcs1,
    /// RSA 2048, PKCS#8 (`BEGIN PRIVATE KEY`).
    RsaPkcs8,
    /// ECDSA P-256, SEC1 (`BEGIN EC PRIVATE KEY`).
    EcSec1,
    /// Ed25519, PKCS#8.
    Ed25519,
}

/// A certificate authority made for one test, in its own folder.
pub struct TestCa {
    dir: PathBuf,
    serial: std::sync::atomic::AtomicU32,
}

impl TestCa {
    /// A new CA (ECDSA P-256) under `dir`.
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
            .arg("-keyout")
            .arg(dir.join("ca.key"))
            .arg("-out")
            .arg(dir.join("ca.crt"))
            .args(["-days", "2", "-subj", "/CN=cairn test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            serial: 1000.into(),
        })
    }

    /// The CA certificate (PEM): what clients are told to trust.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// Writes `public.crt` (the server certificate then the CA: a chain)
    /// and `private.key` into `out` for these DNS names and IP addresses
    /// (good for a server and for a client's certificate authentication).
    pub fn issue(&self, out: &Path, dns: &[&str], ips: &[&str], kind: KeyKind) -> Result<()> {
        std::fs::create_dir_all(out)?;
        let n = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let work = self.dir.join(format!("issue-{n}"));
        std::fs::create_dir_all(&work)?;
        let key = work.join("key.pem");
        let mut keygen = Command::new("openssl");
        match kind {
            KeyKind::RsaPkcs1 => keygen
                .args(["genrsa", "-traditional", "-out"])
                .arg(&key)
                .arg("2048"),
            KeyKind::RsaPkcs8 => keygen
                .args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-out",
                ])
                .arg(&key),
            KeyKind::EcSec1 => keygen
                .args([
                    "ecparam",
                    "-name",
                    "prime256v1",
                    "-genkey",
                    "-noout",
                    "-out",
                ])
                .arg(&key),
            KeyKind::Ed25519 => keygen
                .args(["genpkey", "-algorithm", "ed25519", "-out"])
                .arg(&key),
        };
        run(&mut keygen)?;
        let csr = work.join("req.csr");
        let cn = dns.first().or(ips.first()).copied().unwrap_or("cairn");
        run(Command::new("openssl")
            .args(["req", "-new", "-key"])
            .arg(&key)
            .args(["-subj", &format!("/CN={cn}"), "-out"])
            .arg(&csr))?;
        let mut san: Vec<String> = dns.iter().map(|d| format!("DNS:{d}")).collect();
        san.extend(ips.iter().map(|i| format!("IP:{i}")));
        let ext = work.join("ext.cnf");
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n",
                san.join(",")
            ),
        )?;
        let leaf = work.join("leaf.crt");
        run(Command::new("openssl")
            .args(["x509", "-req", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(self.cert_path())
            .arg("-CAkey")
            .arg(self.dir.join("ca.key"))
            .args(["-set_serial", &n.to_string(), "-days", "2", "-extfile"])
            .arg(&ext)
            .arg("-out")
            .arg(&leaf))?;
        let mut chain = std::fs::read(&leaf)?;
        chain.extend(std::fs::read(self.cert_path())?);
        // written beside, then renamed: the server never reads half a file
        write_atomic(&out.join("public.crt"), &chain)?;
        write_atomic(&out.join("private.key"), &std::fs::read(&key)?)?;
        Ok(())
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The first certificate of a PEM file (a pair's server certificate), DER.
pub fn leaf_of(public_crt: &Path) -> Result<Vec<u8>> {
    let pem = std::fs::read(public_crt)?;
    let first = CertificateDer::pem_slice_iter(&pem)
        .next()
        .ok_or_else(|| anyhow!("no certificate in {}", public_crt.display()))??;
    Ok(first.as_ref().to_vec())
}

/// What an HTTPS exchange showed.
pub struct Exchange {
    pub response: Response,
    /// The server's certificate (DER).
    pub leaf: Vec<u8>,
    /// The protocol ALPN chose.
    pub alpn: Option<Vec<u8>>,
}

/// A GET of `target` over HTTPS to `addr`, trusting `ca` only, naming
/// `name` (a DNS name is sent as SNI; an IP address sends none).
pub async fn https_get(addr: &str, name: &str, ca: &Path, target: &str) -> Result<Exchange> {
    https_get_alpn(addr, name, ca, target, &[b"http/1.1"]).await
}

/// [`https_get`] offering these ALPN protocols (the request is HTTP/1.1:
/// offer `h2` only to see what the server picks).
pub async fn https_get_alpn(
    addr: &str,
    name: &str,
    ca: &Path,
    target: &str,
    alpn: &[&[u8]],
) -> Result<Exchange> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca)? {
        roots.add(c?)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let server_name = ServerName::try_from(name.to_owned())?;
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .with_context(|| format!("TLS handshake with {addr} as {name}"))?;
    let (_, conn) = tls.get_ref();
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or_else(|| anyhow!("no server certificate"))?;
    let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    let host = addr;
    tls.write_all(
        format!("GET {target} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    tls.flush().await?;
    let response = raw::read_response(&mut BufReader::new(tls), false).await?;
    Ok(Exchange {
        response,
        leaf,
        alpn,
    })
}
