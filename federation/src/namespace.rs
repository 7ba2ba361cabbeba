//! The shared namespace as this site sees it: the bucket records and the
//! live sites, read from etcd once and then kept by a watch (watch.rs; a
//! copy kept while etcd is gone), this site's registration, and bucket
//! claims.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cairn_api::{BucketName, ObjectError, ObjectLayer};
use parking_lot::RwLock;

use crate::etcd::{Claim, Etcd};
use crate::names::{DnsDomain, Keys, SiteName};
use crate::records::{BucketRecord, DNS_TTL, DnsRecord, SiteRecord, json, now, parse};

/// The TTL of a site's lease: a site gone for this long leaves the live
/// list (its buckets stay recorded).
pub const SITE_TTL: Duration = Duration::from_secs(3);
/// Pause before registering again after etcd failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// The free space in the registration is made again every this many
/// keep-alives (one a second).
const PUBLISH_FREE_EVERY: u32 = 5;

/// This site: its name, where the others reach it, its DNS records.
#[derive(Clone, Debug)]
pub struct ThisSite {
    pub name: SiteName,
    /// `scheme://host:port` (the public URL, checked).
    pub url: http::Uri,
    /// The CoreDNS names of its buckets: `<bucket>.<domain>`.
    pub domains: Vec<DnsDomain>,
}

/// A live site as last read.
#[derive(Clone, Debug)]
pub struct LiveSite {
    pub url: http::Uri,
    pub free: Option<u64>,
}

/// The namespace: etcd plus what was last read of it.
pub struct Namespace {
    pub(crate) etcd: Etcd,
    pub(crate) keys: Keys,
    site: ThisSite,
    pub(crate) buckets: RwLock<HashMap<BucketName, BucketRecord>>,
    pub(crate) sites: RwLock<HashMap<SiteName, LiveSite>>,
    /// Whether etcd is being followed (the last read succeeded and the
    /// watch runs).
    pub(crate) healthy: AtomicBool,
    /// Bumped when the shared configuration records may have changed.
    pub(crate) config_changed: tokio::sync::watch::Sender<u64>,
}

impl Namespace {
    pub fn new(etcd: Etcd, keys: Keys, site: ThisSite) -> Arc<Self> {
        Arc::new(Self {
            etcd,
            keys,
            site,
            buckets: RwLock::default(),
            sites: RwLock::default(),
            healthy: AtomicBool::new(false),
            config_changed: tokio::sync::watch::Sender::new(0),
        })
    }

    pub fn site(&self) -> &SiteName {
        &self.site.name
    }

    /// Whether etcd is followed now.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    /// Registers this site (lease-kept, with `local`'s free space) and
    /// follows etcd, until the process ends.
    pub fn start(self: &Arc<Self>, local: Arc<dyn ObjectLayer>) {
        let ns = self.clone();
        tokio::spawn(async move { ns.register(local).await });
        let ns = self.clone();
        tokio::spawn(async move { ns.follow().await });
    }

    async fn register(&self, local: Arc<dyn ObjectLayer>) {
        let key = self.keys.site(&self.site.name);
        let started = now();
        let record = || {
            let local = local.clone();
            async move {
                let free = match local.capacity().await {
                    Ok(c) => c.map(|c| c.free_bytes),
                    Err(e) => {
                        tracing::warn!(error = %e, "free space not known; not published");
                        None
                    }
                };
                json(&SiteRecord {
                    url: self.site.url.to_string(),
                    started,
                    free,
                })
            }
        };
        loop {
            let e = self
                .etcd
                .hold(&key, record, SITE_TTL, PUBLISH_FREE_EVERY)
                .await;
            tracing::error!(site = %self.site.name, error = %e, "site registration in etcd lost; registering again");
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }

    /// The bucket's record: from the copy, else (etcd reachable) from
    /// etcd, so a bucket made a moment ago elsewhere is found.
    pub async fn lookup(&self, bucket: &BucketName) -> Option<BucketRecord> {
        if let Some(r) = self.buckets.read().get(bucket) {
            return Some(r.clone());
        }
        if !self.is_healthy() {
            return None;
        }
        let key = self.keys.bucket(bucket);
        let value = match self.etcd.get(&key).await {
            Ok(v) => v?,
            Err(e) => {
                tracing::debug!(bucket = %bucket, error = %e, "bucket lookup in etcd failed");
                return None;
            }
        };
        let record: BucketRecord = parse(key.as_bytes(), &value).ok()?;
        self.buckets.write().insert(bucket.clone(), record.clone());
        Some(record)
    }

    /// Where a live site is reached; `None` when it is down (or unknown).
    pub async fn live_site(&self, site: &SiteName) -> Option<http::Uri> {
        if let Some(s) = self.sites.read().get(site) {
            return Some(s.url.clone());
        }
        // a site that just started (not asked while etcd is gone: the
        // answer would come no sooner than the call's deadline)
        if !self.is_healthy() {
            return None;
        }
        let key = self.keys.site(site);
        let value = self.etcd.get(&key).await.ok()??;
        let live = live_site(&parse::<SiteRecord>(key.as_bytes(), &value).ok()?)?;
        let url = live.url.clone();
        self.sites.write().insert(site.clone(), live);
        Some(url)
    }

    /// Whether `site` is in the live list now (no etcd call).
    pub fn is_live(&self, site: &SiteName) -> bool {
        self.sites.read().contains_key(site)
    }

    /// The live sites as last read.
    pub fn live_sites(&self) -> Vec<(SiteName, LiveSite)> {
        self.sites
            .read()
            .iter()
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect()
    }

    /// Every bucket record as last read.
    pub fn all_buckets(&self) -> Vec<(BucketName, BucketRecord)> {
        self.buckets
            .read()
            .iter()
            .map(|(b, r)| (b.clone(), r.clone()))
            .collect()
    }

    /// The buckets other sites hold, as last read.
    pub fn remote_buckets(&self) -> Vec<(BucketName, BucketRecord)> {
        self.buckets
            .read()
            .iter()
            .filter(|(_, r)| r.site != self.site.name.as_str())
            .map(|(b, r)| (b.clone(), r.clone()))
            .collect()
    }

    /// Claims `bucket` for this site (with its DNS records) in one
    /// transaction. Held by this site already: Ok (the local store then
    /// says whether the bucket exists). Held elsewhere: BucketNameTaken.
    pub async fn claim(&self, bucket: &BucketName) -> Result<(), ObjectError> {
        let key = self.keys.bucket(bucket);
        let dns = self.dns_records(bucket);
        let record = BucketRecord {
            site: self.site.name.to_string(),
            created: now(),
            dns: dns.iter().map(|(k, _)| k.clone()).collect(),
        };
        let held = match self.etcd.claim(&key, json(&record), &dns).await {
            Ok(Claim::Won) => {
                tracing::info!(bucket = %bucket, site = %self.site.name, "bucket name claimed");
                self.buckets.write().insert(bucket.clone(), record);
                return Ok(());
            }
            Ok(Claim::Held(v)) => v,
            Err(e) => {
                tracing::error!(bucket = %bucket, error = %e, "bucket name claim failed");
                return Err(e.unavailable());
            }
        };
        match parse::<BucketRecord>(key.as_bytes(), &held) {
            Ok(r) if r.site == self.site.name.as_str() => Ok(()),
            Ok(r) => {
                tracing::info!(bucket = %bucket, owner = %r.site, "bucket name taken by another site");
                Err(ObjectError::BucketNameTaken {
                    bucket: bucket.to_string(),
                    site: r.site,
                })
            }
            Err(e) => {
                tracing::error!(bucket = %bucket, error = %e, "bucket record unreadable; name kept taken");
                Err(ObjectError::BucketNameTaken {
                    bucket: bucket.to_string(),
                    site: "unknown".into(),
                })
            }
        }
    }

    /// Whether etcd answers now, and this site holds the name (a delete
    /// goes on only then; a name held elsewhere or not at all is not
    /// ours to free, the local delete goes on alone).
    pub async fn check_release(&self, bucket: &BucketName) -> Result<bool, ObjectError> {
        let key = self.keys.bucket(bucket);
        match self.etcd.get(&key).await {
            Ok(Some(v)) => Ok(parse::<BucketRecord>(key.as_bytes(), &v)
                .is_ok_and(|r| r.site == self.site.name.as_str())),
            Ok(None) => Ok(false),
            Err(e) => {
                tracing::error!(bucket = %bucket, error = %e, "etcd unreachable; bucket delete refused");
                Err(e.unavailable())
            }
        }
    }

    /// Frees the name of a bucket this site held (and its DNS records).
    pub async fn release(&self, bucket: &BucketName) -> Result<(), ObjectError> {
        let key = self.keys.bucket(bucket);
        let value = match self.etcd.get(&key).await {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.unavailable()),
        };
        let record = match parse::<BucketRecord>(key.as_bytes(), &value) {
            Ok(r) if r.site == self.site.name.as_str() => r,
            _ => return Ok(()),
        };
        match self.etcd.release(&key, value, &record.dns).await {
            Ok(_) => {
                self.buckets.write().remove(bucket);
                tracing::info!(bucket = %bucket, "bucket name freed");
                Ok(())
            }
            Err(e) => Err(e.unavailable()),
        }
    }

    /// The bucket's CoreDNS records: one per domain, pointing at this
    /// site's public host and port.
    fn dns_records(&self, bucket: &BucketName) -> Vec<(String, Vec<u8>)> {
        let Some(host) = self.site.url.host() else {
            return Vec::new();
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = self.site.url.port_u16().unwrap_or(
            if self.site.url.scheme() == Some(&http::uri::Scheme::HTTPS) {
                443
            } else {
                80
            },
        );
        let value = json(&DnsRecord {
            host: host.to_owned(),
            port,
            ttl: DNS_TTL,
        });
        self.site
            .domains
            .iter()
            .map(|d| (self.keys.dns(bucket, d), value.clone()))
            .collect()
    }
}

/// A live site from its record (`None`: no usable URL).
pub(crate) fn live_site(r: &SiteRecord) -> Option<LiveSite> {
    Some(LiveSite {
        url: site_url(&r.url)?,
        free: r.free,
    })
}

/// A site's URL as recorded: `http://host:port` or `https://host:port`,
/// no path.
pub fn site_url(url: &str) -> Option<http::Uri> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme();
    let ok = (scheme == Some(&http::uri::Scheme::HTTP)
        || scheme == Some(&http::uri::Scheme::HTTPS))
        && uri.authority().is_some()
        && uri.path_and_query().is_none_or(|p| p.as_str() == "/");
    ok.then_some(uri)
}
