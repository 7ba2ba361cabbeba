//! Which certificate a handshake gets: the one whose subject alternative
//! DNS names match the client's SNI (an exact name before a wildcard,
//! subdirectories before the default), else the default one (no SNI, an
//! IP address, or a name no certificate has).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::Pair;

/// The certificates served now.
#[derive(Debug)]
pub(crate) struct Certs {
    default: Pair,
    /// Subdirectory pairs by name.
    named: Vec<Pair>,
}

impl Certs {
    /// `pairs` by name, `""` the default one (None without it).
    pub(crate) fn new(pairs: &BTreeMap<String, Pair>) -> Option<Self> {
        let default = pairs.get("")?.clone();
        let named = pairs
            .iter()
            .filter(|(n, _)| !n.is_empty())
            .map(|(_, p)| p.clone())
            .collect();
        Some(Self { default, named })
    }

    /// The certificate for a client that asked for `sni`.
    pub(crate) fn choose(&self, sni: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(sni) = sni else {
            return &self.default.key;
        };
        let sni = sni.trim_end_matches('.').to_ascii_lowercase();
        let all = || self.named.iter().chain(std::iter::once(&self.default));
        let by = |m: Match| all().find(|p| p.names.iter().any(|n| matches(n, &sni) == m));
        by(Match::Exact)
            .or_else(|| by(Match::Wildcard))
            .map_or(&self.default.key, |p| &p.key)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Match {
    Exact,
    Wildcard,
    No,
}

/// How a certificate name (`a.example.com`, `*.example.com`, lowercase)
/// matches a host name (lowercase): a wildcard stands for exactly one
/// whole leftmost label, as RFC 6125 and browsers have it.
fn matches(pattern: &str, host: &str) -> Match {
    if pattern == host {
        return Match::Exact;
    }
    match (pattern.strip_prefix("*."), host.split_once('.')) {
        (Some(rest), Some((label, host_rest)))
            if !label.is_empty() && !rest.is_empty() && rest == host_rest =>
        {
            Match::Wildcard
        }
        _ => Match::No,
    }
}

/// The rustls side: the current certificates, swapped whole on reload; a
/// handshake takes a snapshot.
#[derive(Debug)]
pub(crate) struct Resolver {
    current: RwLock<Arc<Certs>>,
}

impl Resolver {
    pub(crate) fn new(certs: Certs) -> Self {
        Self {
            current: RwLock::new(Arc::new(certs)),
        }
    }

    pub(crate) fn current(&self) -> Arc<Certs> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set(&self, certs: Certs) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(certs);
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().choose(hello.server_name()).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_exactly_or_by_one_wildcard_label() {
        assert_eq!(matches("a.example.com", "a.example.com"), Match::Exact);
        assert_eq!(matches("*.example.com", "a.example.com"), Match::Wildcard);
        assert_eq!(matches("*.example.com", "b.a.example.com"), Match::No);
        assert_eq!(matches("*.example.com", "example.com"), Match::No);
        assert_eq!(matches("*.example.com", ".example.com"), Match::No);
        assert_eq!(matches("a.example.com", "b.example.com"), Match::No);
        assert_eq!(matches("*.com", "example.com"), Match::Wildcard);
        assert_eq!(matches("*.", "a."), Match::No);
    }
}
