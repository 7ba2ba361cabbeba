//! Virtual-host-style addressing: `bucket.<domain>` for each configured
//! base domain; every other host is path-style.
//!
//! `s3s`'s own `SingleDomain`/`MultiDomain` validate the domain list (we use
//! that), but their matching neither strips the `:port` from `Host` nor keeps
//! path-style for hosts outside the list (it takes any such host as a CNAME
//! bucket, so `Host: 127.0.0.1:9000`-style names other than IPs, e.g. a node's
//! host name, would stop working path-style). This matcher does both.

use s3s::S3Result;
use s3s::host::{MultiDomain, S3Host, VirtualHost};

#[derive(Debug, Clone)]
pub(crate) struct Domains {
    /// Lowercase base domains, without ports.
    domains: Vec<String>,
}

impl Domains {
    pub(crate) fn new(domains: &[String]) -> Result<Self, s3s::host::DomainError> {
        let domains: Vec<String> = domains
            .iter()
            .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
            .collect();
        MultiDomain::new(&domains)?;
        Ok(Self { domains })
    }

    /// Whether a `Host` value names a bucket (virtual-host style).
    pub(crate) fn names_bucket(&self, host: &str) -> bool {
        matches!(self.parse(host), Some((_, Some(_))))
    }

    /// Whether a request names a bucket in its `Host` (or, without one,
    /// its URI's authority): virtual-host style. Never with no domains.
    pub(crate) fn request_names_bucket(
        domains: Option<&Domains>,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> bool {
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()));
        matches!((domains, host), (Some(d), Some(host)) if d.names_bucket(host))
    }

    /// `(base domain, bucket)` for a `Host` value.
    pub(crate) fn parse<'a>(&'a self, host: &str) -> Option<(&'a str, Option<String>)> {
        let name = strip_port(host).trim_end_matches('.').to_ascii_lowercase();
        self.domains.iter().find_map(|d| {
            if name == *d {
                return Some((d.as_str(), None));
            }
            let bucket = name.strip_suffix(d.as_str())?.strip_suffix('.')?;
            (!bucket.is_empty()).then(|| (d.as_str(), Some(bucket.to_owned())))
        })
    }
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

impl S3Host for Domains {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        Ok(match self.parse(host) {
            Some((domain, Some(bucket))) => VirtualHost::new(domain).with_bucket(bucket),
            Some((domain, None)) => VirtualHost::new(domain),
            // Not one of ours: path-style.
            None => VirtualHost::new(host),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let d = Domains::new(&["localhost".into(), "s3.example.com".into()]).expect("valid");
        let bucket = |h: &str| {
            d.parse_host_header(h)
                .expect("parses")
                .bucket()
                .map(str::to_owned)
        };
        assert_eq!(bucket("localhost:9000"), None);
        assert_eq!(bucket("localhost"), None);
        assert_eq!(
            bucket("my-bucket.localhost:9000").as_deref(),
            Some("my-bucket")
        );
        assert_eq!(bucket("a.b.localhost").as_deref(), Some("a.b"));
        assert_eq!(bucket("Photos.S3.Example.com").as_deref(), Some("photos"));
        assert_eq!(bucket("node1:9000"), None);
        assert_eq!(bucket("otherlocalhost"), None);
        assert!(Domains::new(&["a.com".into(), "b.a.com".into()]).is_err());
    }
}
