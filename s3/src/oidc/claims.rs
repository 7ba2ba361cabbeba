//! What a token's claims map to: Cairn policies (the policy claim),
//! Cairn groups (the groups claim), and `jwt:<claim>` condition keys.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::OidcConfig;

/// The most `jwt:` keys a session carries, and the most bytes of their
/// names and values together: they travel in the session token, which
/// comes with every request.
const MAX_JWT_KEYS: usize = 64;
const MAX_JWT_BYTES: usize = 4096;
/// The most policy or group names taken from a claim.
const MAX_NAMES: usize = 64;

/// What a token's claims map to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapped {
    /// Policy names (managed or built-in).
    pub policies: Vec<String>,
    /// Cairn group names.
    pub groups: Vec<String>,
    /// `jwt:<claim>` condition keys and their values.
    pub jwt: BTreeMap<String, Vec<String>>,
}

/// A claim's value as strings: a string is one, an array of strings is
/// each of them (anything else: none).
pub(crate) fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Claim values that are all strings (`None` for other kinds).
fn string_values(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

fn dedup(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names.dedup();
    names.truncate(MAX_NAMES);
    names
}

/// Maps `claims` as `cfg` says: the policy claim's names (each string
/// split at commas), the groups claim's names (taken whole: IAM group
/// names may hold commas), and every string or string-array claim as a
/// `jwt:` key (within the caps; `sub`, `iss` and `aud` first).
pub(crate) fn map(cfg: &OidcConfig, claims: &Map<String, Value>) -> Mapped {
    let policies = strings(claims.get(&cfg.claim_name))
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let groups = strings(claims.get(&cfg.groups_claim))
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let mut jwt = BTreeMap::new();
    let mut bytes = 0usize;
    let first = ["sub", "iss", "aud"];
    let ordered = first
        .iter()
        .filter_map(|k| claims.get_key_value(*k))
        .chain(claims.iter().filter(|(k, _)| !first.contains(&k.as_str())));
    for (k, v) in ordered {
        let Some(values) = string_values(v) else {
            continue;
        };
        let size = k.len() + values.iter().map(String::len).sum::<usize>();
        if jwt.len() >= MAX_JWT_KEYS || bytes + size > MAX_JWT_BYTES {
            tracing::debug!(claim = %k, "claim left out of the session's jwt: keys (too many or too large)");
            continue;
        }
        bytes += size;
        jwt.insert(k.clone(), values);
    }
    Mapped {
        policies: dedup(policies),
        groups: dedup(groups),
        jwt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> OidcConfig {
        OidcConfig {
            config_url: "http://127.0.0.1/.well-known/openid-configuration".into(),
            client_ids: vec!["cairn".into()],
            claim_name: "policy".into(),
            groups_claim: "groups".into(),
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn policy_and_group_claims_map_to_names() {
        let m = map(
            &cfg(),
            &obj(json!({
                "sub": "alice", "aud": ["cairn", "other"], "exp": 5,
                "policy": " readonly, diagnostics ,,readonly",
                "groups": ["eng", "a,b", ""],
                "email_verified": true, "nested": {"x": "y"}, "mixed": ["a", 1]
            })),
        );
        assert_eq!(m.policies, ["diagnostics", "readonly"]);
        assert_eq!(m.groups, ["a,b", "eng"]);
        assert_eq!(m.jwt["sub"], ["alice"]);
        assert_eq!(m.jwt["aud"], ["cairn", "other"]);
        assert_eq!(m.jwt["groups"], ["eng", "a,b", ""]);
        // numbers, booleans, objects and mixed arrays are not jwt: keys
        for k in ["exp", "email_verified", "nested", "mixed"] {
            assert!(!m.jwt.contains_key(k), "{k}");
        }
        // an array policy claim; claim names from the configuration
        let mut c = cfg();
        c.claim_name = "cairn_policies".into();
        c.groups_claim = "roles".into();
        let m = map(
            &c,
            &obj(
                json!({"cairn_policies": ["readwrite", "x,y"], "roles": "ops", "policy": "consoleAdmin"}),
            ),
        );
        assert_eq!(m.policies, ["readwrite", "x", "y"]);
        assert_eq!(m.groups, ["ops"]);
        // a claim of another kind maps to nothing
        let m = map(&cfg(), &obj(json!({"policy": 7, "groups": {"a": 1}})));
        assert!(m.policies.is_empty() && m.groups.is_empty());
    }

    #[test]
    fn jwt_keys_are_capped() {
        let mut claims = Map::new();
        claims.insert("sub".into(), json!("alice"));
        for i in 0..200 {
            claims.insert(format!("c{i:03}"), json!("v".repeat(100)));
        }
        let m = map(&cfg(), &claims);
        assert!(m.jwt.len() < 64);
        assert_eq!(m.jwt["sub"], ["alice"]);
        let bytes: usize = m
            .jwt
            .iter()
            .map(|(k, v)| k.len() + v.iter().map(String::len).sum::<usize>())
            .sum();
        assert!(bytes <= MAX_JWT_BYTES);
    }
}
