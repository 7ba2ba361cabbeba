//! The etcd key layout, and the validated names that are its only inputs:
//! a key is made from a [`KeyPrefix`] and a [`SiteName`] or a
//! `cairn_api::BucketName`, never from a request string.

use cairn_api::{BucketName, ConfigDir};

use crate::error::ConfigError;

/// A site's name: 1 to 63 lowercase letters, digits and `-`, starting
/// with a letter or digit (a DNS label, so also safe in etcd keys).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteName(String);

impl SiteName {
    pub fn new(name: &str) -> Result<Self, ConfigError> {
        if dns_label(name) {
            Ok(Self(name.to_owned()))
        } else {
            Err(ConfigError::SiteName(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SiteName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A DNS label as RFC 1123 has it, lowercase.
fn dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(|c| *c != b'-')
        && b.last().is_some_and(|c| *c != b'-')
}

/// An etcd key prefix: `/` then `/`-separated DNS labels, no trailing
/// `/` (`/cairn`, `/skydns`, `/org/cairn`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub fn new(prefix: &str) -> Result<Self, ConfigError> {
        let ok = prefix
            .strip_prefix('/')
            .is_some_and(|rest| rest.split('/').all(dns_label));
        if ok {
            Ok(Self(prefix.to_owned()))
        } else {
            Err(ConfigError::Prefix(prefix.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A base domain of virtual-host-style names (`--domain`), for the
/// CoreDNS records: dot-separated DNS labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsDomain(String);

impl DnsDomain {
    pub fn new(domain: &str) -> Result<Self, ConfigError> {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        if !d.is_empty() && d.split('.').all(dns_label) {
            Ok(Self(d))
        } else {
            Err(ConfigError::Domain(domain.to_owned()))
        }
    }
}

/// Where the federation keeps what it agrees on.
#[derive(Clone, Debug)]
pub struct Keys {
    /// The federation's own keys (`--federation-prefix`).
    pub prefix: KeyPrefix,
    /// CoreDNS's etcd plugin keys (`--federation-dns-prefix`).
    pub dns_prefix: KeyPrefix,
}

impl Keys {
    /// `<prefix>/buckets/`: every bucket record under it.
    pub fn buckets(&self) -> String {
        format!("{}/buckets/", self.prefix.as_str())
    }

    /// `<prefix>/buckets/<bucket>`: the bucket's record (its owner).
    pub fn bucket(&self, bucket: &BucketName) -> String {
        format!("{}{}", self.buckets(), bucket.as_str())
    }

    /// The bucket a key under [`Keys::buckets`] names, if valid.
    pub fn bucket_of(&self, key: &[u8]) -> Option<BucketName> {
        let key = std::str::from_utf8(key).ok()?;
        BucketName::new(key.strip_prefix(&self.buckets())?).ok()
    }

    /// `<prefix>/sites/`: every live site's record under it.
    pub fn sites(&self) -> String {
        format!("{}/sites/", self.prefix.as_str())
    }

    /// `<prefix>/sites/<site>`: the site's record, kept by its lease.
    pub fn site(&self, site: &SiteName) -> String {
        format!("{}{}", self.sites(), site.as_str())
    }

    /// The site a key under [`Keys::sites`] names, if valid.
    pub fn site_of(&self, key: &[u8]) -> Option<SiteName> {
        let key = std::str::from_utf8(key).ok()?;
        SiteName::new(key.strip_prefix(&self.sites())?).ok()
    }

    /// `<prefix>/config/`: every shared configuration record under it.
    pub fn config(&self) -> String {
        format!("{}/config/", self.prefix.as_str())
    }

    /// `<prefix>/config/<dir>/`: the records of one directory.
    pub fn config_dir(&self, dir: ConfigDir) -> String {
        format!("{}{}/", self.config(), dir.as_str())
    }

    /// `<prefix>/config/<dir>/<hex of name>`: one record (the name in
    /// hex, so no name becomes more than one key segment).
    pub fn config_record(&self, dir: ConfigDir, name: &str) -> String {
        format!("{}{}", self.config_dir(dir), hex::encode(name.as_bytes()))
    }

    /// The record name of a key under [`Keys::config_dir`].
    pub fn config_name_of(&self, dir: ConfigDir, key: &[u8]) -> Option<String> {
        let key = std::str::from_utf8(key).ok()?;
        let h = key.strip_prefix(&self.config_dir(dir))?;
        String::from_utf8(hex::decode(h).ok()?).ok()
    }

    /// CoreDNS's key of `<bucket>.<domain>`: the labels reversed under the
    /// prefix (`/skydns/com/example/mybucket` for mybucket.example.com).
    pub fn dns(&self, bucket: &BucketName, domain: &DnsDomain) -> String {
        let name = format!("{}.{}", bucket.as_str(), domain.0);
        let mut key = self.dns_prefix.as_str().to_owned();
        for label in name.rsplit('.') {
            key.push('/');
            key.push_str(label);
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys {
            prefix: KeyPrefix::new("/cairn").unwrap(),
            dns_prefix: KeyPrefix::new("/skydns").unwrap(),
        }
    }

    #[test]
    fn names_are_checked() {
        for good in ["a", "site-1", "0z"] {
            assert!(SiteName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a/b", "a.b", "..", &"x".repeat(64)] {
            assert!(SiteName::new(bad).is_err(), "{bad:?}");
        }
        for good in ["/cairn", "/a/b-c"] {
            assert!(KeyPrefix::new(good).is_ok(), "{good}");
        }
        for bad in ["", "/", "cairn", "/cairn/", "/a//b", "/a/../b", "/A"] {
            assert!(KeyPrefix::new(bad).is_err(), "{bad:?}");
        }
        assert!(DnsDomain::new("Example.COM.").is_ok());
        for bad in ["", "a..b", "a/b", "-a.b"] {
            assert!(DnsDomain::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn layout() {
        let k = keys();
        let b = BucketName::new("my.bucket").unwrap();
        assert_eq!(k.bucket(&b), "/cairn/buckets/my.bucket");
        assert_eq!(k.bucket_of(k.bucket(&b).as_bytes()), Some(b.clone()));
        assert_eq!(k.bucket_of(b"/cairn/buckets/../x"), None);
        assert_eq!(k.bucket_of(b"/other/buckets/abc"), None);
        let s = SiteName::new("west").unwrap();
        assert_eq!(k.site(&s), "/cairn/sites/west");
        assert_eq!(k.site_of(k.site(&s).as_bytes()), Some(s));
        let u = k.config_record(ConfigDir::IamUsers, "a/../b");
        assert_eq!(u, "/cairn/config/iam/users/612f2e2e2f62");
        assert_eq!(
            k.config_name_of(ConfigDir::IamUsers, u.as_bytes())
                .as_deref(),
            Some("a/../b")
        );
        assert_eq!(k.config_name_of(ConfigDir::IamKeys, u.as_bytes()), None);
        let d = DnsDomain::new("example.com").unwrap();
        assert_eq!(k.dns(&b, &d), "/skydns/com/example/bucket/my");
    }
}
