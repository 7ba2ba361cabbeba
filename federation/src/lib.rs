//! cairn-federation: several Cairn deployments (sites), one bucket
//! namespace, agreed on through etcd (issue 23).
//!
//! - [`names`]: the etcd key layout and the validated names it is made of;
//! - [`etcd`]: the calls made to etcd, each with a deadline;
//! - [`namespace`]: this site's registration (lease-kept, with its free
//!   space), bucket claims (one transaction, CoreDNS records beside), the
//!   copy of the namespace, kept by an etcd watch ([`watch`]);
//! - [`config`]: `SharedConfig`, the IAM records in etcd (the IAM
//!   service's `ConfigStore` on every site), secrets sealed by the KMS;
//! - [`layer`]: `FederatedLayer`, the local store with claims on create and
//!   delete and the whole namespace listed;
//! - [`route`]: `SiteRouter`, the S3 front's router to the owning site
//!   (placement by capacity, the federation's status), with [`idle`]'s
//!   progress of a forward.

#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

pub mod config;
pub mod error;
pub mod etcd;
pub mod idle;
pub mod layer;
pub mod names;
pub mod namespace;
pub mod records;
pub mod route;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use cairn_api::{ConfigSealer, ConfigStore, ObjectLayer};

pub use config::SharedConfig;
pub use error::{ConfigError, EtcdError};
pub use etcd::{EtcdConfig, EtcdTls};
pub use layer::FederatedLayer;
pub use names::{DnsDomain, KeyPrefix, Keys, SiteName};
pub use namespace::Namespace;
pub use route::SiteRouter;

/// How this site joins the federation.
#[derive(Clone)]
pub struct FederationConfig {
    pub etcd: EtcdConfig,
    pub site: SiteName,
    /// Where the other sites (and DNS clients) reach this one:
    /// `http://host:port`.
    pub public_url: String,
    pub keys: Keys,
    /// The base domains of the CoreDNS records (the server's `--domain`s).
    pub domains: Vec<DnsDomain>,
    /// Answer requests for other sites' buckets with 307 instead of
    /// forwarding them.
    pub redirect: bool,
    /// The CA (PEM) of the other sites' HTTPS certificates (`None`: the
    /// system's roots).
    pub site_roots: route::SiteRoots,
    /// Seals the shared secret records (access keys) with the KMS, when
    /// the server has one.
    pub sealer: Option<Arc<dyn ConfigSealer>>,
}

/// A site joined: the layers for the fronts and the S3 router.
pub struct Federation {
    /// For the S3 front: lists the whole namespace.
    pub s3_layer: Arc<dyn ObjectLayer>,
    /// For the file fronts: claims names, lists this site's buckets.
    pub file_layer: Arc<dyn ObjectLayer>,
    pub router: Arc<SiteRouter>,
    pub namespace: Arc<Namespace>,
    /// Where the IAM service keeps its records: etcd, shared by every
    /// site.
    pub config: Arc<dyn ConfigStore>,
}

impl Federation {
    /// Connects (lazily: an etcd that is down only delays the
    /// registration), registers this site, keeps the namespace read, and
    /// claims the names of the buckets already here.
    pub async fn start(
        cfg: FederationConfig,
        local: Arc<dyn ObjectLayer>,
    ) -> Result<Self, ConfigError> {
        let url = namespace::site_url(&cfg.public_url).ok_or_else(|| ConfigError::PublicUrl {
            url: cfg.public_url.clone(),
            reason: "http://HOST:PORT or https://HOST:PORT",
        })?;
        let etcd = etcd::Etcd::connect(&cfg.etcd).await?;
        let ns = Namespace::new(
            etcd.clone(),
            cfg.keys.clone(),
            namespace::ThisSite {
                name: cfg.site,
                url,
                domains: cfg.domains,
            },
        );
        let router = Arc::new(SiteRouter::new(ns.clone(), cfg.redirect, &cfg.site_roots)?);
        ns.start(local.clone());
        tokio::spawn(adopt(ns.clone(), local.clone()));
        let config = SharedConfig::new(etcd, cfg.keys, cfg.sealer, ns.config_changed.subscribe());
        Ok(Self {
            s3_layer: Arc::new(FederatedLayer::new(local.clone(), ns.clone(), true)),
            file_layer: Arc::new(FederatedLayer::new(local, ns.clone(), false)),
            router,
            namespace: ns,
            config: Arc::new(config),
        })
    }
}

/// Claims the names of the buckets this site held before it joined (or
/// made while etcd was gone), once etcd answers. A name another site
/// holds is a conflict an operator must settle: logged, left alone.
async fn adopt(ns: Arc<Namespace>, local: Arc<dyn ObjectLayer>) {
    loop {
        let buckets = match local.list_buckets().await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot list this site's buckets to claim them");
                return;
            }
        };
        let mut unreachable = false;
        for b in buckets {
            let Ok(name) = cairn_api::BucketName::new(b.name) else {
                continue;
            };
            match ns.claim(&name).await {
                Ok(()) => {}
                Err(cairn_api::ObjectError::BucketNameTaken { site, .. }) => {
                    tracing::error!(bucket = %name, %site, "a bucket of this site has a name another site holds: rename one of them");
                }
                Err(_) => unreachable = true,
            }
        }
        if !unreachable {
            return;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
