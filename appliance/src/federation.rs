//! `cairn server --federation-*`: this deployment as one site of a
//! federation (cairn-federation; cargo feature `federation`, which needs
//! `protoc` to build). Without the feature the flags do not exist and
//! every bucket is served here.

#[cfg(feature = "federation")]
use std::path::PathBuf;
use std::sync::Arc;

use cairn_api::{ConfigStore, ObjectLayer};

/// The layers the fronts serve, the S3 front's router, and where IAM
/// lives.
pub struct Joined {
    /// For the S3 front.
    pub s3: Arc<dyn ObjectLayer>,
    /// For the mount and the NFS export.
    pub files: Arc<dyn ObjectLayer>,
    pub router: Option<Arc<dyn cairn_s3::BucketRouter>>,
    /// A site's IAM records: etcd, shared by every site (`None`: the
    /// deployment's own drives).
    pub iam_store: Option<Arc<dyn ConfigStore>>,
    /// A site's identity id (account, STS sessions): the federation's,
    /// the same on every site (`None`: the deployment's id).
    pub identity_id: Option<String>,
}

#[cfg(feature = "federation")]
#[derive(clap::Args)]
pub struct FederationArgs {
    /// etcd endpoints of the federation (http://HOST:PORT or
    /// https://HOST:PORT, comma-separated): joins this deployment to the
    /// shared bucket namespace.
    #[arg(long = "federation-etcd", env = "CAIRN_FEDERATION_ETCD", value_delimiter = ',',
          requires_all = ["site", "public_url"])]
    pub etcd: Vec<String>,
    /// This site's name (a DNS label), unique in the federation.
    #[arg(long = "federation-site", env = "CAIRN_FEDERATION_SITE")]
    pub site: Option<String>,
    /// Where the other sites reach this one: http://HOST:PORT or
    /// https://HOST:PORT.
    #[arg(long = "federation-public-url", env = "CAIRN_FEDERATION_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Prefix of the federation's etcd keys.
    #[arg(
        long = "federation-prefix",
        env = "CAIRN_FEDERATION_PREFIX",
        default_value = "/cairn"
    )]
    pub prefix: String,
    /// Prefix of the CoreDNS etcd-plugin records (`path` of its etcd block).
    #[arg(
        long = "federation-dns-prefix",
        env = "CAIRN_FEDERATION_DNS_PREFIX",
        default_value = "/skydns"
    )]
    pub dns_prefix: String,
    /// Answer requests for other sites' buckets with 307 to the owner
    /// instead of forwarding them.
    #[arg(long = "federation-redirect", env = "CAIRN_FEDERATION_REDIRECT")]
    pub redirect: bool,
    /// etcd user, when etcd has authentication on (password in
    /// CAIRN_FEDERATION_ETCD_PASSWORD).
    #[arg(
        long = "federation-etcd-user",
        env = "CAIRN_FEDERATION_ETCD_USER",
        requires = "etcd_password"
    )]
    pub etcd_user: Option<String>,
    #[arg(
        long = "federation-etcd-password",
        env = "CAIRN_FEDERATION_ETCD_PASSWORD",
        hide_env_values = true,
        hide = true
    )]
    pub etcd_password: Option<String>,
    /// CA certificate (PEM) of etcd's HTTPS endpoints (https://HOST:PORT
    /// in --federation-etcd).
    #[arg(long = "federation-etcd-ca", env = "CAIRN_FEDERATION_ETCD_CA")]
    pub etcd_ca: Option<PathBuf>,
    /// This site's client certificate (PEM chain) for etcd's
    /// --client-cert-auth; with --federation-etcd-key.
    #[arg(long = "federation-etcd-cert", env = "CAIRN_FEDERATION_ETCD_CERT",
          requires_all = ["etcd_key", "etcd_ca"])]
    pub etcd_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long = "federation-etcd-key",
        env = "CAIRN_FEDERATION_ETCD_KEY",
        requires = "etcd_cert"
    )]
    pub etcd_key: Option<PathBuf>,
    /// CA certificate(s) (PEM) the other sites' HTTPS certificates are
    /// checked against (sites with an https:// public URL); default: the
    /// system's roots.
    #[arg(long = "federation-site-ca", env = "CAIRN_FEDERATION_SITE_CA")]
    pub site_ca: Option<PathBuf>,
}

#[cfg(feature = "federation")]
impl FederationArgs {
    /// The files the flags name (read at start; the sandbox grants them).
    pub fn files(&self) -> Vec<PathBuf> {
        [
            &self.etcd_ca,
            &self.etcd_cert,
            &self.etcd_key,
            &self.site_ca,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }

    fn tls(&self) -> anyhow::Result<Option<cairn_federation::EtcdTls>> {
        let Some(ca) = &self.etcd_ca else {
            return Ok(None);
        };
        let identity = match (&self.etcd_cert, &self.etcd_key) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            _ => None,
        };
        Ok(Some(cairn_federation::EtcdTls {
            ca: read(ca)?,
            identity,
        }))
    }
}

#[cfg(feature = "federation")]
fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(feature = "federation")]
impl std::fmt::Debug for FederationArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederationArgs")
            .field("etcd", &self.etcd)
            .field("site", &self.site)
            .field("public_url", &self.public_url)
            .field("prefix", &self.prefix)
            .field("dns_prefix", &self.dns_prefix)
            .field("redirect", &self.redirect)
            .field("etcd_user", &self.etcd_user)
            .field("etcd_ca", &self.etcd_ca)
            .field("etcd_cert", &self.etcd_cert)
            .field("site_ca", &self.site_ca)
            .finish_non_exhaustive()
    }
}

/// Joins the federation when asked, else serves `local` everywhere.
#[cfg(feature = "federation")]
pub async fn join(
    args: &FederationArgs,
    domains: &[String],
    local: Arc<dyn ObjectLayer>,
    kms: Option<Arc<dyn cairn_core::kms::Kms>>,
) -> anyhow::Result<Joined> {
    use anyhow::Context as _;
    use cairn_federation::{DnsDomain, KeyPrefix, Keys, SiteName};
    let (Some(site), Some(public_url)) = (&args.site, &args.public_url) else {
        return Ok(alone(local));
    };
    if args.etcd.is_empty() {
        return Ok(alone(local));
    }
    let cfg = cairn_federation::FederationConfig {
        etcd: cairn_federation::EtcdConfig {
            endpoints: args.etcd.clone(),
            user: args.etcd_user.clone().zip(args.etcd_password.clone()),
            tls: args.tls()?,
        },
        site_roots: args.site_ca.as_deref().map(read).transpose()?,
        site: SiteName::new(site)?,
        public_url: public_url.clone(),
        keys: Keys {
            prefix: KeyPrefix::new(&args.prefix)?,
            dns_prefix: KeyPrefix::new(&args.dns_prefix)?,
        },
        domains: domains
            .iter()
            .map(|d| DnsDomain::new(d))
            .collect::<Result<_, _>>()?,
        redirect: args.redirect,
        sealer: kms.map(|k| {
            Arc::new(crate::sealer::KmsSealer::new(k)) as Arc<dyn cairn_api::ConfigSealer>
        }),
    };
    tracing::info!(site, public_url, etcd = ?args.etcd, "joining the federation");
    let f = cairn_federation::Federation::start(cfg, local)
        .await
        .context("joining the federation")?;
    Ok(Joined {
        s3: f.s3_layer,
        files: f.file_layer,
        router: Some(f.router),
        iam_store: Some(f.config),
        identity_id: Some(format!("cairn-federation:{}", args.prefix)),
    })
}

/// Every bucket served here.
pub fn alone(local: Arc<dyn ObjectLayer>) -> Joined {
    Joined {
        s3: local.clone(),
        files: local,
        router: None,
        iam_store: None,
        identity_id: None,
    }
}
