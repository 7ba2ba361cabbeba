//! A bucket's CORS rules (S3 PutBucketCors) and how a browser's request is
//! matched against them. The S3 front answers preflights and sets the
//! response headers from [`CorsConfig::preflight`] / [`CorsConfig::actual`].

use serde::{Deserialize, Serialize};

use crate::error::{ObjectError, ObjectResult};

/// S3 allows this many rules per bucket.
pub const MAX_RULES: usize = 100;
/// The methods a rule may allow.
pub const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];
/// The longest rule ID S3 takes.
pub const MAX_ID_LEN: usize = 255;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Origins, each with at most one `*`.
    pub allowed_origins: Vec<String>,
    /// Of [`METHODS`], as sent (case matters, as on S3).
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may name, each with at most one `*`
    /// (compared without case).
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// Response headers the browser may show the page.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsConfig {
    pub rules: Vec<CorsRule>,
}

/// What a matching rule lets the response say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsGrant {
    /// `Access-Control-Allow-Origin`: `*` when the rule allows any origin,
    /// else the request's origin.
    pub allow_origin: String,
    /// `Access-Control-Allow-Credentials: true` (not with `*`).
    pub credentials: bool,
    pub allow_methods: String,
    /// `Access-Control-Allow-Headers` (preflights: the headers asked for).
    pub allow_headers: Option<String>,
    pub expose_headers: Option<String>,
    pub max_age: Option<i32>,
}

fn invalid(message: String) -> ObjectError {
    ObjectError::InvalidRequest { message }
}

fn malformed(message: &str) -> ObjectError {
    ObjectError::MalformedXml {
        message: message.to_owned(),
    }
}

/// `value` matches `pattern` holding at most one `*` (any run of
/// characters, the empty one too).
fn wildcard_match(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let eq = |a: &str, b: &str| {
        if ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    match pattern.split_once('*') {
        None => eq(pattern, value),
        Some((head, tail)) => {
            value.len() >= head.len() + tail.len()
                && value.get(..head.len()).is_some_and(|v| eq(v, head))
                && value
                    .get(value.len() - tail.len()..)
                    .is_some_and(|v| eq(v, tail))
        }
    }
}

impl CorsRule {
    /// The origin the response names, when this rule admits `origin`.
    fn admits_origin(&self, origin: &str) -> Option<&str> {
        self.allowed_origins
            .iter()
            .find(|o| wildcard_match(o, origin, false))
            .map(|o| o.as_str())
    }

    fn admits_method(&self, method: &str) -> bool {
        self.allowed_methods.iter().any(|m| m == method)
    }

    fn admits_header(&self, header: &str) -> bool {
        self.allowed_headers
            .iter()
            .any(|h| wildcard_match(h, header, true))
    }

    fn grant(&self, matched: &str, origin: &str, allow_headers: Option<String>) -> CorsGrant {
        let any = matched == "*";
        CorsGrant {
            allow_origin: if any {
                "*".to_owned()
            } else {
                origin.to_owned()
            },
            credentials: !any,
            allow_methods: self.allowed_methods.join(", "),
            allow_headers,
            expose_headers: (!self.expose_headers.is_empty())
                .then(|| self.expose_headers.join(", ")),
            max_age: self.max_age_seconds,
        }
    }
}

impl CorsConfig {
    /// Checks the rules as S3 does (MalformedXML, InvalidRequest).
    pub fn validate(&self) -> ObjectResult<()> {
        if self.rules.is_empty() {
            return Err(malformed(
                "a CORS configuration needs at least one CORSRule",
            ));
        }
        if self.rules.len() > MAX_RULES {
            return Err(malformed("a CORS configuration holds at most 100 rules"));
        }
        for r in &self.rules {
            if r.id.as_ref().is_some_and(|i| i.len() > MAX_ID_LEN) {
                return Err(ObjectError::InvalidArgument {
                    message: "ID length should not exceed allowed limit of 255".into(),
                });
            }
            if r.allowed_methods.is_empty() || r.allowed_origins.is_empty() {
                return Err(malformed(
                    "a CORSRule needs at least one AllowedMethod and one AllowedOrigin",
                ));
            }
            if let Some(m) = r
                .allowed_methods
                .iter()
                .find(|m| !METHODS.contains(&m.as_str()))
            {
                return Err(invalid(format!(
                    "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
                )));
            }
            if let Some(o) = r
                .allowed_origins
                .iter()
                .find(|o| o.matches('*').count() > 1)
            {
                return Err(invalid(format!(
                    "AllowedOrigin \"{o}\" can not have more than one wildcard."
                )));
            }
            if let Some(h) = r
                .allowed_headers
                .iter()
                .find(|h| h.matches('*').count() > 1)
            {
                return Err(invalid(format!(
                    "AllowedHeader \"{h}\" can not have more than one wildcard."
                )));
            }
            if let Some(h) = r.expose_headers.iter().find(|h| h.contains('*')) {
                return Err(invalid(format!(
                    "ExposeHeader \"{h}\" contains wildcard. We currently do not support wildcard for ExposeHeader."
                )));
            }
        }
        Ok(())
    }

    /// A preflight (`OPTIONS` with `Access-Control-Request-Method` and
    /// `-Headers`): the first rule admitting the origin, the method and
    /// every header asked for.
    pub fn preflight(&self, origin: &str, method: &str, headers: &[String]) -> Option<CorsGrant> {
        self.rules.iter().find_map(|r| {
            let matched = r.admits_origin(origin)?;
            if !r.admits_method(method) || !headers.iter().all(|h| r.admits_header(h)) {
                return None;
            }
            let asked = (!headers.is_empty()).then(|| headers.join(", "));
            Some(r.grant(matched, origin, asked))
        })
    }

    /// An actual request from `origin` with `method` (HEAD, GET, ...): the
    /// first rule admitting both.
    pub fn actual(&self, origin: &str, method: &str) -> Option<CorsGrant> {
        self.rules.iter().find_map(|r| {
            let matched = r.admits_origin(origin)?;
            r.admits_method(method)
                .then(|| r.grant(matched, origin, None))
        })
    }
}

/// The header names of an `Access-Control-Request-Headers` value,
/// lower-cased, empty ones left out.
pub fn request_headers(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        CorsRule {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_methods: methods.iter().map(|s| s.to_string()).collect(),
            allowed_headers: headers.iter().map(|s| s.to_string()).collect(),
            expose_headers: vec!["ETag".into()],
            max_age_seconds: Some(600),
            ..Default::default()
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match(
            "http://*.example.com",
            "http://a.example.com",
            false
        ));
        assert!(!wildcard_match(
            "http://*.example.com",
            "http://example.com",
            false
        ));
        assert!(!wildcard_match(
            "http://*.example.com",
            "https://a.example.com",
            false
        ));
        assert!(wildcard_match("*", "null", false));
        assert!(wildcard_match("x-amz-*", "X-Amz-Date", true));
        assert!(!wildcard_match("ab*ba", "aba", false));
        assert!(wildcard_match("http://a.com", "http://a.com", false));
    }

    #[test]
    fn matching() {
        let c = CorsConfig {
            rules: vec![
                rule(
                    &["http://*.example.com"],
                    &["PUT", "POST"],
                    &["content-type", "x-amz-*"],
                ),
                rule(&["*"], &["GET"], &[]),
            ],
        };
        c.validate().unwrap();
        let g = c
            .preflight(
                "http://a.example.com",
                "PUT",
                &request_headers("Content-Type, X-Amz-Date"),
            )
            .unwrap();
        assert_eq!(g.allow_origin, "http://a.example.com");
        assert!(g.credentials);
        assert_eq!(g.allow_methods, "PUT, POST");
        assert_eq!(g.allow_headers.as_deref(), Some("content-type, x-amz-date"));
        assert_eq!(g.max_age, Some(600));
        assert!(
            c.preflight("http://a.example.com", "PUT", &["authorization".into()])
                .is_none()
        );
        assert!(c.preflight("http://evil.com", "PUT", &[]).is_none());
        let g = c.preflight("http://evil.com", "GET", &[]).unwrap();
        assert_eq!(g.allow_origin, "*");
        assert!(!g.credentials);
        assert!(c.actual("http://evil.com", "DELETE").is_none());
        assert_eq!(
            c.actual("http://b.example.com", "POST")
                .unwrap()
                .expose_headers
                .as_deref(),
            Some("ETag")
        );
    }

    #[test]
    fn validation() {
        let bad = |r: CorsRule| CorsConfig { rules: vec![r] }.validate().unwrap_err();
        assert!(matches!(
            bad(rule(&["*"], &["PATCH"], &[])),
            ObjectError::InvalidRequest { .. }
        ));
        assert!(matches!(
            bad(rule(&["*"], &["get"], &[])),
            ObjectError::InvalidRequest { .. }
        ));
        assert!(matches!(
            bad(rule(&["http://*.*.com"], &["GET"], &[])),
            ObjectError::InvalidRequest { .. }
        ));
        assert!(matches!(
            bad(rule(&["*"], &["GET"], &["*-*"])),
            ObjectError::InvalidRequest { .. }
        ));
        assert!(matches!(
            bad(rule(&[], &["GET"], &[])),
            ObjectError::MalformedXml { .. }
        ));
        let mut r = rule(&["*"], &["GET"], &[]);
        r.expose_headers = vec!["x-*".into()];
        assert!(matches!(bad(r), ObjectError::InvalidRequest { .. }));
        assert!(CorsConfig::default().validate().is_err());
    }
}
