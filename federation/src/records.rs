//! What the federation stores in etcd (JSON values).

use serde::{Deserialize, Serialize};

use crate::error::EtcdError;

/// `<prefix>/buckets/<bucket>`: who holds the bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    /// The owning site's name.
    pub site: String,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// The CoreDNS keys written with the record (removed with it).
    #[serde(default)]
    pub dns: Vec<String>,
}

/// `<prefix>/sites/<site>`: a live site (the key lives on the site's
/// lease).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRecord {
    /// Where the other sites send its buckets' requests.
    pub url: String,
    /// When the site (this registration) started, Unix seconds.
    pub started: i64,
    /// Its free space in bytes, as last published (`x-cairn-placement:
    /// capacity` places a new bucket on the live site with the most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<u64>,
}

/// A CoreDNS etcd-plugin record (its `msg.Service`): an A/AAAA record
/// when `host` is an IP address, a CNAME otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    pub host: String,
    pub port: u16,
    pub ttl: u32,
}

/// The TTL of the DNS records, seconds (as MinIO's).
pub const DNS_TTL: u32 = 30;

/// A record read back from etcd.
pub fn parse<T: serde::de::DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, EtcdError> {
    serde_json::from_slice(value).map_err(|e| EtcdError::Record {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

/// A record as stored.
pub fn json<T: Serialize>(record: &T) -> Vec<u8> {
    // serializing these plain structs cannot fail
    serde_json::to_vec(record).unwrap_or_default()
}

/// Now, Unix seconds.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
