//! The server's own endpoints, outside the bucket namespace.
//!
//! Every one lives under `/_cairn/`: S3 bucket names are lowercase
//! letters, digits, dots and hyphens, so no bucket is named `_cairn` and
//! a path-style request for these paths is never an S3 request (a bucket
//! named `cairn`, `metrics` or `health` is fully usable). A
//! virtual-host-style request (`Host: bucket.<domain>`) names its bucket
//! in the host and its key in the path, where `_cairn/...` is an ordinary
//! key: such a request is always S3.
//!
//! - `GET|HEAD /_cairn/health/live`: 200 while the process serves
//! - `GET|HEAD /_cairn/health/ready`: 200 when it may take traffic, else 503
//! - `GET|HEAD /_cairn/health/cluster`: 200 when every erasure set has its
//!   write quorum of drives answering (on whichever nodes), else 503; for
//!   load balancers in front of a cluster
//! - `GET /_cairn/metrics`: Prometheus text; with a metrics token, only
//!   for `Authorization: Bearer TOKEN`
//! - `/_cairn/admin/v1/...`: the admin API (crate::admin), SigV4-signed
//!   by the root user

use http::{HeaderMap, Method, Uri, header};

use crate::host::Domains;

/// The first path segment of every endpoint: no bucket's name.
const NAME: &str = "_cairn";
/// What every endpoint path starts with.
pub const PREFIX: &str = "/_cairn/";
/// Liveness probe.
pub const HEALTH_LIVE: &str = "/_cairn/health/live";
/// Readiness probe.
pub const HEALTH_READY: &str = "/_cairn/health/ready";
/// Whether the store (every node's drives) can take writes.
pub const HEALTH_CLUSTER: &str = "/_cairn/health/cluster";
/// Prometheus metrics.
pub const METRICS: &str = "/_cairn/metrics";
/// The admin API's calls are below this.
pub const ADMIN: &str = "/_cairn/admin/v1/";

/// A server endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Live,
    Ready,
    Cluster,
    Metrics,
    Admin,
}

/// The endpoint a request is for, if any (else it is S3).
pub(crate) fn classify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    domains: Option<&Domains>,
) -> Option<Endpoint> {
    let path = uri.path();
    if !path.starts_with(PREFIX) {
        return None;
    }
    if Domains::request_names_bucket(domains, uri, headers) {
        return None;
    }
    let probe = matches!(*method, Method::GET | Method::HEAD);
    match path {
        HEALTH_LIVE if probe => Some(Endpoint::Live),
        HEALTH_READY if probe => Some(Endpoint::Ready),
        HEALTH_CLUSTER if probe => Some(Endpoint::Cluster),
        METRICS if *method == Method::GET => Some(Endpoint::Metrics),
        p if p.starts_with(ADMIN) => Some(Endpoint::Admin),
        _ => None,
    }
}

/// s3s's bucket-name check, which also lets the `_cairn` of the
/// endpoints' paths through: s3s parses a request's path (and refuses an
/// invalid bucket name) before it asks the admin route whether the request
/// is its own. Any other S3 request naming `_cairn` is refused by the
/// front's own check (crate::convert::bucket_name: InvalidBucketName).
pub(crate) struct BucketNames;

impl s3s::validation::NameValidation for BucketNames {
    fn validate_bucket_name(&self, name: &str) -> bool {
        name == NAME || s3s::path::check_bucket_name(name)
    }
}

/// Why a metrics scrape is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricsRefusal {
    /// No bearer token given: 401.
    Missing,
    /// A token, not the right one: 403.
    Wrong,
}

/// Whether a scrape may read the metrics: always without a configured
/// token, else only with `Authorization: Bearer <token>`.
pub(crate) fn metrics_allowed(
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<(), MetricsRefusal> {
    let Some(token) = token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .ok_or(MetricsRefusal::Missing)?;
    if same_secret(given.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(MetricsRefusal::Wrong)
    }
}

/// Compares two secrets in time that depends on their lengths only.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn only_path_style_requests_reach_the_endpoints() {
        let d = Domains::new(&["localhost".into()]).expect("domains");
        let get = Method::GET;
        let at = |path: &str, host: &str| {
            classify(
                &get,
                &path.parse().expect("uri"),
                &headers(&[("host", host)]),
                Some(&d),
            )
        };
        assert_eq!(
            at("/_cairn/metrics", "127.0.0.1:9000"),
            Some(Endpoint::Metrics)
        );
        assert_eq!(
            at("/_cairn/metrics", "localhost:9000"),
            Some(Endpoint::Metrics)
        );
        assert_eq!(at("/_cairn/health/live", "node1"), Some(Endpoint::Live));
        assert_eq!(at("/_cairn/health/ready", "node1"), Some(Endpoint::Ready));
        assert_eq!(at("/_cairn/admin/v1/info", "node1"), Some(Endpoint::Admin));
        // a key `_cairn/metrics` of bucket `b`, virtual-host style
        assert_eq!(at("/_cairn/metrics", "b.localhost:9000"), None);
        assert_eq!(at("/_cairn/admin/v1/info", "b.localhost"), None);
        // the old paths are buckets again
        for p in [
            "/metrics",
            "/health/live",
            "/cairn/admin/v1/info",
            "/_cairn/other",
        ] {
            assert_eq!(at(p, "127.0.0.1"), None, "{p}");
        }
        let put = classify(
            &Method::PUT,
            &"/_cairn/metrics".parse().expect("uri"),
            &HeaderMap::new(),
            None,
        );
        assert_eq!(put, None);
    }

    #[test]
    fn only_the_endpoint_segment_is_let_through() {
        use s3s::validation::NameValidation as _;
        assert_eq!(format!("/{NAME}/"), PREFIX);
        assert!(BucketNames.validate_bucket_name("_cairn"));
        assert!(BucketNames.validate_bucket_name("cairn"));
        for bad in ["_cairn2", "_other", "Cairn", "a", ""] {
            assert!(!BucketNames.validate_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn metrics_token() {
        assert_eq!(metrics_allowed(&HeaderMap::new(), None), Ok(()));
        let t = Some("s3cret-token");
        assert_eq!(
            metrics_allowed(&HeaderMap::new(), t),
            Err(MetricsRefusal::Missing)
        );
        assert_eq!(
            metrics_allowed(&headers(&[("authorization", "Basic eDp5")]), t),
            Err(MetricsRefusal::Missing)
        );
        assert_eq!(
            metrics_allowed(&headers(&[("authorization", "Bearer s3cret-tokem")]), t),
            Err(MetricsRefusal::Wrong)
        );
        assert_eq!(
            metrics_allowed(&headers(&[("authorization", "Bearer s3cret")]), t),
            Err(MetricsRefusal::Wrong)
        );
        assert_eq!(
            metrics_allowed(&headers(&[("authorization", "bearer s3cret-token")]), t),
            Ok(())
        );
    }
}
