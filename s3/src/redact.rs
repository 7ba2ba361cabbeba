//! Keeping secrets out of the log: what a request carries that must never
//! be written down (SSE-C customer keys, signatures, session tokens), at
//! any log level.
//!
//! Two halves: [`Uri`] and [`Headers`] print a request with its secrets
//! replaced (the front logs every request this way at debug), and
//! [`leaks_secrets`] names the log callsites of `s3s` that print a request,
//! a form or a signature as they are, for the binary's log filter to drop.
//! Key MD5s, access key IDs and content hashes are not secrets and stay.

use std::fmt;

/// What a secret is replaced with.
const REDACTED: &str = "<redacted>";

/// Headers whose whole value is a secret.
const SECRET_HEADERS: &[&str] = &[
    "x-amz-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-security-token",
    "cookie",
];

/// Query parameters (presigned URLs, SigV4 and V2) whose value is a secret.
const SECRET_PARAMS: &[&str] = &["x-amz-signature", "signature", "x-amz-security-token"];

/// Fields of `s3s` log events and spans that hold a secret: the whole
/// HTTP request (`req`, headers included), a parsed POST form (`multipart`:
/// its signature, policy and token), signatures given and expected, and
/// aws-chunked chunk metadata (`meta`: the chunk signatures).
const S3S_SECRET_FIELDS: &[&str] = &[
    "req",
    "multipart",
    "signature",
    "raw_signature",
    "expected",
    "expected_signature",
    "meta",
];

/// Whether a callsite (event or span) prints a secret: one of `s3s`'s
/// that carries a field of [`S3S_SECRET_FIELDS`]. The front logs the
/// request itself, redacted.
pub fn leaks_secrets(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    (target == "s3s" || target.starts_with("s3s::"))
        && S3S_SECRET_FIELDS
            .iter()
            .any(|f| meta.fields().field(f).is_some())
}

/// A request target (path and query) with the secret query values replaced.
pub struct Uri<'a>(pub &'a http::Uri);

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.path())?;
        let Some(q) = self.0.query() else {
            return Ok(());
        };
        f.write_str("?")?;
        for (i, pair) in q.split('&').enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some((name, _)) if is_secret_param(name) => write!(f, "{name}={REDACTED}")?,
                _ => f.write_str(pair)?,
            }
        }
        Ok(())
    }
}

fn is_secret_param(name: &str) -> bool {
    // Names may come percent-encoded only in theory; none of these has a
    // character that would be.
    SECRET_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// Request headers with the secrets replaced: customer keys, session
/// tokens and the signature part of `Authorization`.
pub struct Headers<'a>(pub &'a http::HeaderMap);

impl fmt::Display for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            let value = String::from_utf8_lossy(value.as_bytes());
            let shown = if SECRET_HEADERS.contains(&name.as_str()) {
                REDACTED.into()
            } else if name == http::header::AUTHORIZATION {
                authorization(&value)
            } else {
                value
            };
            write!(f, "{name}: {shown:?}")?;
        }
        f.write_str("}")
    }
}

/// `Authorization` up to its signature: SigV4 keeps the credential scope
/// and signed headers, V2 (`AWS AKID:SIG`) the access key ID.
fn authorization(v: &str) -> std::borrow::Cow<'_, str> {
    if let Some((head, _)) = v.split_once("Signature=") {
        format!("{head}Signature={REDACTED}").into()
    } else if let Some((id, _)) = v.strip_prefix("AWS ").and_then(|r| r.rsplit_once(':')) {
        format!("AWS {id}:{REDACTED}").into()
    } else {
        REDACTED.into()
    }
}

/// The access key id a request claims (not yet verified): from a SigV4
/// `Authorization` (`Credential=AKID/...`), a V2 one (`AWS AKID:SIG`), or
/// a presigned URL (`X-Amz-Credential=AKID%2F...`, `AWSAccessKeyId=AKID`).
/// Never any part of a signature.
pub fn access_key_id(headers: &http::HeaderMap, uri: &http::Uri) -> Option<String> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some((_, rest)) = v.split_once("Credential=") {
            return rest.split(['/', ',', ' ']).next().map(str::to_owned);
        }
        return v
            .strip_prefix("AWS ")
            .and_then(|r| r.rsplit_once(':'))
            .map(|(id, _)| id.trim().to_owned());
    }
    form_urlencoded::parse(uri.query()?.as_bytes()).find_map(|(name, value)| {
        if name.eq_ignore_ascii_case("x-amz-credential") {
            value.split('/').next().map(str::to_owned)
        } else if name.eq_ignore_ascii_case("awsaccesskeyid") {
            Some(value.into_owned())
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_secrets_are_replaced() {
        let u: http::Uri =
            "/b/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=abc123&X-Amz-Security-Token=tok&x=1"
                .parse()
                .unwrap();
        let s = Uri(&u).to_string();
        assert_eq!(
            s,
            "/b/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=<redacted>&X-Amz-Security-Token=<redacted>&x=1"
        );
        let v2: http::Uri = "/b/k?AWSAccessKeyId=AK&Signature=s3cr3t&Expires=1"
            .parse()
            .unwrap();
        assert!(!Uri(&v2).to_string().contains("s3cr3t"));
    }

    #[test]
    fn header_secrets_are_replaced_md5s_stay() {
        let mut h = http::HeaderMap::new();
        let put = |h: &mut http::HeaderMap, k: &'static str, v: &'static str| {
            h.insert(k, http::HeaderValue::from_static(v));
        };
        put(
            &mut h,
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AK/x, SignedHeaders=host, Signature=deadbeef",
        );
        put(
            &mut h,
            "x-amz-server-side-encryption-customer-key",
            "KEYKEY",
        );
        put(
            &mut h,
            "x-amz-server-side-encryption-customer-key-md5",
            "MD5MD5",
        );
        put(
            &mut h,
            "x-amz-copy-source-server-side-encryption-customer-key",
            "CKEYCKEY",
        );
        put(&mut h, "x-amz-security-token", "TOKTOK");
        let s = Headers(&h).to_string();
        for secret in ["deadbeef", "KEYKEY", "CKEYCKEY", "TOKTOK"] {
            assert!(!s.contains(secret), "{secret} in {s}");
        }
        assert!(s.contains("MD5MD5") && s.contains("Credential=AK/x"), "{s}");
        assert_eq!(authorization("AWS AK:sig"), "AWS AK:<redacted>");
        assert_eq!(authorization("Bearer x"), "<redacted>");
    }

    #[test]
    fn access_key_ids_without_signatures() {
        let none = http::HeaderMap::new();
        let mut v4 = http::HeaderMap::new();
        v4.insert(
            "authorization",
            http::HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKV4/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=deadbeef",
            ),
        );
        let plain: http::Uri = "/b/k".parse().unwrap();
        assert_eq!(access_key_id(&v4, &plain).as_deref(), Some("AKV4"));
        let mut v2 = http::HeaderMap::new();
        v2.insert(
            "authorization",
            http::HeaderValue::from_static("AWS AKV2:c2ln"),
        );
        assert_eq!(access_key_id(&v2, &plain).as_deref(), Some("AKV2"));
        let pre: http::Uri =
            "/b/k?X-Amz-Credential=AKPRE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=abc"
                .parse()
                .unwrap();
        assert_eq!(access_key_id(&none, &pre).as_deref(), Some("AKPRE"));
        let pre2: http::Uri = "/b/k?AWSAccessKeyId=AKOLD&Signature=s3cr3t"
            .parse()
            .unwrap();
        assert_eq!(access_key_id(&none, &pre2).as_deref(), Some("AKOLD"));
        assert_eq!(access_key_id(&none, &plain), None);
    }
}
