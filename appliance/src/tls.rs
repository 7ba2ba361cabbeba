//! HTTPS on the S3 port: `--certs-dir` and `--allow-plain-http`
//! (cairn_s3::Tls), for `cairn server` and every gateway.

use std::path::PathBuf;

use anyhow::Context as _;

#[derive(clap::Args, Debug, Clone)]
pub struct TlsArgs {
    /// Serve HTTPS with the certificates in this folder, laid out as
    /// MinIO's: public.crt (PEM chain) and private.key (PEM: PKCS#8,
    /// PKCS#1 or SEC1; RSA, ECDSA or Ed25519) are the default certificate;
    /// each subdirectory holding the same two files is another one, chosen
    /// by the name the client asks for (SNI). Changed files are picked up
    /// within seconds (or at once on SIGHUP), without a restart.
    #[arg(long, env = "CAIRN_CERTS_DIR")]
    pub certs_dir: Option<PathBuf>,
    /// With --certs-dir: serve plain HTTP on the same port too (else a
    /// plain request is answered 400 "use https" and closed).
    #[arg(long, env = "CAIRN_ALLOW_PLAIN_HTTP", requires = "certs_dir")]
    pub allow_plain_http: bool,
}

impl TlsArgs {
    /// The S3 listener: `tcp`, with TLS when --certs-dir is given (its
    /// certificates loaded now: a missing or broken one fails the start).
    pub async fn listener(
        &self,
        tcp: tokio::net::TcpListener,
    ) -> anyhow::Result<cairn_s3::Listener> {
        let tls = match &self.certs_dir {
            None => None,
            Some(dir) => Some(
                cairn_s3::Tls::load(cairn_s3::TlsOptions {
                    certs_dir: dir.clone(),
                    allow_plain_http: self.allow_plain_http,
                })
                .await
                .with_context(|| {
                    format!("loading the certificates of --certs-dir {}", dir.display())
                })?,
            ),
        };
        let listener = cairn_s3::Listener::new(tcp, tls);
        Ok(listener)
    }

    /// How the start-up line names the port (`https://ADDR`, with plain
    /// HTTP noted when allowed).
    pub fn describe(&self, listener: &cairn_s3::Listener) -> anyhow::Result<String> {
        let addr = listener.local_addr()?;
        let plain = if self.certs_dir.is_some() && self.allow_plain_http {
            ", plain http:// accepted too"
        } else {
            ""
        };
        Ok(format!("{}://{addr}{plain}", listener.scheme()))
    }
}
