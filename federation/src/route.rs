//! The router in front of the S3 service: a request for a bucket another
//! site holds goes there, streamed both ways (or is redirected with
//! `--federation-redirect`); the owner down: 503 at once.
//!
//! The request is sent as the client signed it (same method, path, query,
//! `Host` and signed headers): the owner checks the client's own
//! signature and applies the client's policies. No credential of this
//! site is used and no identity is asserted, so nothing here can be
//! forged (ARCHITECTURE.md, "Federation").

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cairn_api::BucketName;
use cairn_s3::{BucketRouter, EtcdHealth, FORWARDED_HEADER, FederationStatus, Routed, SiteStatus};
use http::{HeaderMap, HeaderValue, Request, header};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::ConfigError;
use crate::idle::{Activity, Guarded, Tracked, Watchdog};
use crate::names::SiteName;
use crate::namespace::Namespace;
use http_body_util::BodyExt as _;

/// How long connecting to another site may take before its buckets
/// answer 503.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a forwarded request may go without progress (no body byte
/// sent, no response headers) before it answers 503: an owner that
/// accepts connections but does not answer (stopped, hung) costs no more.
pub const FORWARD_IDLE: Duration = Duration::from_secs(10);
/// How often an in-flight forward looks at its owner (live? idle?).
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Hop-by-hop headers (RFC 9110 7.6.1): never passed on.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Sends requests for other sites' buckets to them.
pub struct SiteRouter {
    ns: Arc<Namespace>,
    client: Client<HttpsConnector<HttpConnector>, Tracked<Incoming>>,
    redirect: bool,
}

/// The CA certificates (PEM) the sites' HTTPS certificates are checked
/// against: `None`, the system's roots.
pub type SiteRoots = Option<Vec<u8>>;

impl SiteRouter {
    pub fn new(ns: Arc<Namespace>, redirect: bool, roots: &SiteRoots) -> Result<Self, ConfigError> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        http.enforce_http(false);
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::SiteCa(e.to_string()))?
        .with_root_certificates(root_store(roots)?)
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Self {
            ns,
            client,
            redirect,
        })
    }

    async fn forward(
        &self,
        site: &SiteName,
        base: &http::Uri,
        mut req: Request<Incoming>,
    ) -> Routed {
        let Some(target) = target(base, req.uri()) else {
            return Routed::Unavailable(format!("site {site} has no usable address"));
        };
        if self.redirect {
            return Routed::Redirect(target);
        }
        let authority = req.uri().authority().cloned();
        let headers = req.headers_mut();
        let expect_signed = signed_headers(headers).iter().any(|h| h == "expect");
        strip_hop_by_hop(headers);
        if !expect_signed {
            // this site answers the client's 100-continue itself
            headers.remove(header::EXPECT);
        }
        // HTTP/2 carries the host in :authority; the owner needs it as
        // the client signed it
        if !headers.contains_key(header::HOST)
            && let Some(a) = authority
            && let Ok(v) = HeaderValue::from_str(a.as_str())
        {
            headers.insert(header::HOST, v);
        }
        if let Ok(v) = HeaderValue::from_str(self.ns.site().as_str()) {
            headers.insert(FORWARDED_HEADER, v);
        }
        *req.uri_mut() = target;
        *req.version_mut() = http::Version::HTTP_11;
        let method = req.method().clone();
        let dog = self.watchdog(site);
        let req = req.map(|b| Tracked::new(b, dog.activity.clone()));
        let answered = tokio::select! {
            r = self.client.request(req) => r,
            why = watch(&dog) => {
                tracing::warn!(%site, %method, why, "forwarded request given up");
                return Routed::Unavailable(format!("site {site} {why}"));
            }
        };
        match answered {
            Ok(mut resp) => {
                strip_hop_by_hop(resp.headers_mut());
                tracing::debug!(%site, %method, status = %resp.status(), "request forwarded");
                Routed::Answered(
                    resp.map(|b| {
                        Guarded::new(b, dog, WATCH_EVERY, site.to_string()).boxed_unsync()
                    }),
                )
            }
            Err(e) => {
                tracing::warn!(%site, %method, error = %e, "forwarding failed");
                Routed::Unavailable(format!("site {site} cannot be reached: {e}"))
            }
        }
    }

    /// What gives up on a forward to `site`: its owner left the live list
    /// (while etcd is followed), or no progress for [`FORWARD_IDLE`].
    fn watchdog(&self, site: &SiteName) -> Watchdog {
        let (ns, site) = (self.ns.clone(), site.clone());
        Watchdog {
            activity: Activity::new(),
            idle: FORWARD_IDLE,
            alive: Arc::new(move || ns.is_live(&site) || !ns.is_healthy()),
        }
    }
}

/// Returns (why) once the watchdog gives up.
async fn watch(dog: &Watchdog) -> &'static str {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        if let Some(why) = dog.verdict(dog.activity.idle()) {
            return why;
        }
    }
}

#[async_trait]
impl BucketRouter for SiteRouter {
    async fn route(&self, bucket: &BucketName, req: Request<Incoming>) -> Routed {
        let Some(record) = self.ns.lookup(bucket).await else {
            return Routed::Here(req);
        };
        if record.site == self.ns.site().as_str() {
            return Routed::Here(req);
        }
        let Ok(site) = SiteName::new(&record.site) else {
            return Routed::Unavailable(format!("bucket {bucket} names an invalid site"));
        };
        match self.ns.live_site(&site).await {
            Some(base) => self.forward(&site, &base, req).await,
            None => {
                tracing::info!(%bucket, %site, "bucket of a site that is down");
                Routed::Unavailable(format!(
                    "bucket {bucket} is held by site {site}, which is down"
                ))
            }
        }
    }

    /// The live site with the most free space (ties: the first name);
    /// none published (or it is this one): made here.
    async fn place(&self, bucket: &BucketName, req: Request<Incoming>) -> Routed {
        let best = self
            .ns
            .live_sites()
            .into_iter()
            .filter_map(|(name, s)| Some((s.free?, name, s.url)))
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
        match best {
            Some((free, site, url)) if site != *self.ns.site() => {
                tracing::info!(%bucket, %site, free, "bucket placed by capacity");
                self.forward(&site, &url, req).await
            }
            _ => Routed::Here(req),
        }
    }

    async fn status(&self) -> FederationStatus {
        let mut sites: BTreeMap<String, SiteStatus> = BTreeMap::new();
        let blank = |name: &str| SiteStatus {
            name: name.to_owned(),
            live: false,
            url: None,
            buckets: 0,
            free_bytes: None,
        };
        for (name, live) in self.ns.live_sites() {
            let s = sites
                .entry(name.to_string())
                .or_insert_with(|| blank(name.as_str()));
            s.live = true;
            s.url = Some(live.url.to_string().trim_end_matches('/').to_owned());
            s.free_bytes = live.free;
        }
        for (_, record) in self.ns.all_buckets() {
            sites
                .entry(record.site.clone())
                .or_insert_with(|| blank(&record.site))
                .buckets += 1;
        }
        FederationStatus {
            site: self.ns.site().to_string(),
            etcd: EtcdHealth {
                followed: self.ns.is_healthy(),
                endpoints: self.ns.etcd.status().await,
            },
            sites: sites.into_values().collect(),
        }
    }
}

/// The roots HTTPS to other sites trusts: the given CA certificates, or
/// the system's.
fn root_store(roots: &SiteRoots) -> Result<rustls::RootCertStore, ConfigError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut store = rustls::RootCertStore::empty();
    match roots {
        Some(pem) => {
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ConfigError::SiteCa(e.to_string()))?;
            if certs.is_empty() {
                return Err(ConfigError::SiteCa("no certificate in it".into()));
            }
            for c in certs {
                store
                    .add(c)
                    .map_err(|e| ConfigError::SiteCa(e.to_string()))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                // a system certificate rustls cannot use is skipped
                let _ = store.add(c);
            }
        }
    }
    Ok(store)
}

/// The request's path and query at the owner's address.
fn target(base: &http::Uri, uri: &http::Uri) -> Option<http::Uri> {
    let mut parts = http::uri::Parts::default();
    parts.scheme = base.scheme().cloned();
    parts.authority = base.authority().cloned();
    parts.path_and_query = uri.path_and_query().cloned();
    http::Uri::from_parts(parts).ok()
}

/// The names in the SigV4 `SignedHeaders` of an `Authorization` header.
fn signed_headers(headers: &HeaderMap) -> Vec<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("SignedHeaders=").nth(1))
        .and_then(|s| s.split(',').next())
        .map(|s| {
            s.split(';')
                .map(|h| h.trim().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the hop-by-hop headers, and those the `Connection` header
/// names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    for h in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_keep_path_and_query() {
        let base: http::Uri = "http://10.0.0.2:9000".parse().unwrap();
        let uri: http::Uri = "/b/k%20x?partNumber=1&uploadId=u".parse().unwrap();
        assert_eq!(
            target(&base, &uri).unwrap().to_string(),
            "http://10.0.0.2:9000/b/k%20x?partNumber=1&uploadId=u"
        );
    }

    #[test]
    fn signed_header_names() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=a/20260101/us-east-1/s3/aws4_request, \
                 SignedHeaders=host;Expect;x-amz-date, Signature=00",
            ),
        );
        assert_eq!(signed_headers(&h), ["host", "expect", "x-amz-date"]);
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-drop"),
        );
        h.insert("x-drop", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
    }
}
