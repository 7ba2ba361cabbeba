//! The federation's errors.

/// A federation setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "site name {0:?}: 1-63 lowercase letters, digits and '-', not starting or ending with '-'"
    )]
    SiteName(String),
    #[error("etcd key prefix {0:?}: '/' then '/'-separated lowercase DNS labels, e.g. /cairn")]
    Prefix(String),
    #[error("domain {0:?} is not a DNS name")]
    Domain(String),
    #[error("public URL {url:?}: {reason}")]
    PublicUrl { url: String, reason: &'static str },
    #[error("the CA of the sites' certificates: {0}")]
    SiteCa(String),
    #[error("no etcd endpoint given")]
    NoEndpoints,
    #[error("connecting to etcd: {0}")]
    Connect(#[from] etcd_client::Error),
}

/// A call to etcd that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("the lease of {key} expired")]
    LeaseLost { key: String },
    #[error("the watch of etcd ended: {0}")]
    WatchEnded(String),
    #[error("the record at {key} is not valid: {reason}")]
    Record { key: String, reason: String },
}

impl EtcdError {
    /// What the fronts see: 503, naming etcd.
    pub fn unavailable(&self) -> cairn_api::ObjectError {
        cairn_api::ObjectError::BackendUnavailable {
            backend: "etcd (the federation's shared namespace)",
            reason: "creating and deleting buckets needs it; the buckets of this site keep serving",
        }
    }
}
