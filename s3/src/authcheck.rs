//! Signature rules `s3s` 0.14 does not enforce, checked by the hyper service
//! (`server.rs` `Front`) on every request before `s3s` sees it (the admin
//! API included). `s3s` still verifies the signature itself; this module
//! refuses signed requests that AWS refuses although their signature is
//! right:
//!
//! - SigV2 header auth: the request time (`x-amz-date` if present, else
//!   `Date`, the one the signature covers) must lie within 15 minutes of
//!   the server's clock (403 RequestTimeTooSkewed); s3s only wants a date.
//! - SigV2 presigned: `Expires` not past (403 AccessDenied "Request has
//!   expired") and at most 7 days ahead (400).
//! - SigV4 (header and presigned): the credential scope's service is `s3`
//!   and its region the server's (400 AuthorizationHeaderMalformed /
//!   AuthorizationQueryParametersError naming the expected region);
//!   presigned `X-Amz-Expires` at most 604800 s (400
//!   AuthorizationQueryParametersError).
//! - SigV4: `host` and every `x-amz-*` header present must be among the
//!   SignedHeaders, else 403 AccessDenied "There were headers present in the
//!   request which were not signed" with `<HeadersNotSigned>`. Exempt are
//!   the integrity headers (`x-amz-content-sha256`, `x-amz-checksum-<alg>`:
//!   they only state what the body must hash to, and a body that does not
//!   match is refused), `x-amz-checksum-mode` and `x-amz-user-agent` (see
//!   `MAY_BE_UNSIGNED`) and, for header auth, `x-amz-date` (the string to
//!   sign holds it whether listed or not). `Content-Type` and `Content-MD5` may be
//!   unsigned (as AWS allows for Content-Type; Content-MD5 only narrows):
//!   see ARCHITECTURE.md.
//! - SigV2 requests for a sub-resource s3s's V2 string to sign leaves out
//!   (`?retention`, `?legal-hold`, ...: `V2_UNSIGNED_SUBRESOURCES`): 400
//!   InvalidRequest "Please use AWS4-HMAC-SHA256", as AWS.
//! - One auth mechanism per request (AWS: 400 InvalidArgument), and at most
//!   one `Authorization` header.
//!
//! SigV2 needs no header rule: its string to sign holds every `x-amz-*`
//! header, Content-MD5 and Content-Type (s3s `sig_v2::create_string_to_sign`).
//!
//! The detection mirrors s3s's (`ops/signature.rs`): query `Signature` is a
//! V2 presigned URL, an `Authorization: AWS key:sig` header V2, query
//! `X-Amz-Signature` a V4 presigned URL, any other `Authorization` header
//! V4. What this module cannot parse is refused rather than passed on, so
//! no request reaches s3s's checks without passing these.

use std::borrow::Cow;

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use s3s::{Body, S3ErrorCode};
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

/// Largest distance between a SigV2 request's time and the server's (as
/// AWS and s3s's SigV4 check).
pub(crate) const MAX_SKEW_SECS: i64 = 15 * 60;

/// Longest lifetime of a presigned URL, V2 and V4 (AWS's SigV4 cap).
pub(crate) const MAX_PRESIGNED_SECS: i64 = 7 * 24 * 3600;

/// `x-amz-*` headers that may come unsigned, as none can make a request do
/// anything else: the integrity headers only state what the body must hash
/// to (a body that does not match is refused); `x-amz-checksum-mode` only
/// asks for the stored checksum in a GET's answer and `x-amz-user-agent`
/// only names the client (AWS's SDKs leave both out of presigned URLs'
/// signatures, aws-sigv4 `canonical_request.rs`).
const MAY_BE_UNSIGNED: &[&str] = &[
    "x-amz-content-sha256",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-checksum-mode",
    "x-amz-user-agent",
];

/// Query parameters that choose what a request does but that s3s's V2
/// string to sign leaves out (its `INCLUDED_QUERY`, AWS's old sub-resource
/// list, predates them): a V2 signature does not cover them, so a captured
/// `PUT /b/k` could be replayed as `PUT /b/k?retention` (locking the object
/// for years) or `?legal-hold`. AWS takes these only with SigV4.
const V2_UNSIGNED_SUBRESOURCES: &[&str] = &[
    "attributes",
    "encryption",
    "events",
    "intelligent-tiering",
    "legal-hold",
    "metadataTable",
    "ownershipControls",
    "policyStatus",
    "publicAccessBlock",
    "retention",
    "session",
];

/// Why a request was refused: an S3 error, with the extra elements AWS puts
/// in it (`HeadersNotSigned`, `Region`, `ServerTime`, ...).
#[derive(Debug)]
pub(crate) struct Refusal {
    code: S3ErrorCode,
    message: Cow<'static, str>,
    extra: Vec<(&'static str, String)>,
}

impl Refusal {
    pub(crate) fn new(code: S3ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }

    /// The S3 error code (for tests and logs).
    pub(crate) fn code(&self) -> &S3ErrorCode {
        &self.code
    }

    /// The S3 XML error response.
    pub(crate) fn into_response(self) -> Response<Body> {
        let status = self.code.status_code().unwrap_or(StatusCode::FORBIDDEN);
        let mut buf = Vec::with_capacity(256);
        let written = {
            let mut s = s3s::xml::Serializer::new(&mut buf);
            s.decl().and_then(|()| {
                s.element("Error", |s| {
                    s.content("Code", self.code.as_str())?;
                    s.content("Message", self.message.as_ref())?;
                    for (name, value) in &self.extra {
                        s.content(name, value.as_str())?;
                    }
                    Ok(())
                })
            })
        };
        if let Err(e) = written {
            // Writing into a Vec cannot fail; answer the status alone if it did.
            tracing::error!(error = %e, "serializing an auth error failed");
            buf.clear();
        }
        let mut resp = Response::new(Body::from(buf));
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        resp
    }
}

/// Checks `req` against the rules above for a server answering for
/// `region` at time `now`. Unsigned requests pass (s3s refuses them, or
/// checks their POST form policy).
#[cfg(test)]
pub(crate) fn check<B>(req: &Request<B>, region: &str, now: OffsetDateTime) -> Result<(), Refusal> {
    check_for(req, region, now, false)
}

/// [`check`], for a request of the IAM/STS query API when `query` is
/// true (crate::query): its header signature may name the service `iam`
/// or `sts` too, in any region (IAM is global; clients sign it for
/// us-east-1).
pub(crate) fn check_for<B>(
    req: &Request<B>,
    region: &str,
    now: OffsetDateTime,
    query_api: bool,
) -> Result<(), Refusal> {
    let headers = req.headers();
    let query = Query::parse(req.uri());
    let auth_headers = headers.get_all(http::header::AUTHORIZATION).iter().count();
    let v2_presigned = query.has("Signature");
    let v4_presigned = query.has("X-Amz-Signature");
    let mechanisms =
        usize::from(v2_presigned) + usize::from(v4_presigned) + usize::from(auth_headers > 0);
    if mechanisms > 1 {
        return Err(Refusal::new(
            S3ErrorCode::InvalidArgument,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified",
        ));
    }
    if auth_headers > 1 {
        return Err(malformed_header("more than one Authorization header"));
    }
    if v2_presigned {
        check_v2_subresources(&query)?;
        return check_v2_presigned(&query, now);
    }
    if v4_presigned {
        return check_v4_presigned(&query, headers, region);
    }
    let Some(auth) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(());
    };
    let auth = auth
        .to_str()
        .map_err(|_| malformed_header("the Authorization header is not ASCII"))?;
    if let Some(v2) = auth.strip_prefix("AWS ")
        && v2.contains(':')
    {
        check_v2_subresources(&query)?;
        return check_v2_header(headers, now);
    }
    check_v4_header(auth, headers, region, query_api)
}

/// The query as `s3s` reads it (`serde_urlencoded`: decoded pairs).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(uri: &Uri) -> Self {
        Self(
            form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// The value of `name` if it occurs exactly once (s3s's `get_unique`).
    fn unique(&self, name: &str) -> Option<&str> {
        let mut it = self.0.iter().filter(|(k, _)| k == name);
        let first = it.next()?;
        it.next().is_none().then_some(first.1.as_str())
    }
}

/// The value of header `name` if it occurs exactly once and is text.
fn unique_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ()> {
    let mut it = headers.get_all(name).iter();
    let Some(first) = it.next() else {
        return Ok(None);
    };
    if it.next().is_some() {
        return Err(());
    }
    first.to_str().map(Some).map_err(|_| ())
}

fn server_time(now: OffsetDateTime) -> String {
    now.format(&Rfc3339).unwrap_or_default()
}

// --- SigV2 ---

/// Refuses a V2 request for a sub-resource its signature does not cover.
fn check_v2_subresources(query: &Query) -> Result<(), Refusal> {
    if V2_UNSIGNED_SUBRESOURCES.iter().any(|&k| query.has(k)) {
        return Err(Refusal::new(
            S3ErrorCode::InvalidRequest,
            "The authorization mechanism you have provided is not supported. Please use \
             AWS4-HMAC-SHA256.",
        ));
    }
    Ok(())
}

fn no_valid_date() -> Refusal {
    Refusal::new(
        S3ErrorCode::AccessDenied,
        "AWS authentication requires a valid Date or x-amz-date header",
    )
}

fn check_v2_header(headers: &HeaderMap, now: OffsetDateTime) -> Result<(), Refusal> {
    // The signed time: x-amz-date if present (a signed x-amz-* header; the
    // Date line of the string to sign is then empty), else Date.
    let amz = unique_header(headers, "x-amz-date").map_err(|()| no_valid_date())?;
    let date = match amz {
        Some(v) => v,
        None => unique_header(headers, "date")
            .map_err(|()| no_valid_date())?
            .ok_or_else(no_valid_date)?,
    };
    let t = parse_http_time(date).ok_or_else(no_valid_date)?;
    if (now - t).whole_seconds().abs() > MAX_SKEW_SECS {
        return Err(Refusal::new(
            S3ErrorCode::RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large.",
        )
        .with("RequestTime", date)
        .with("ServerTime", server_time(now))
        .with(
            "MaxAllowedSkewMilliseconds",
            (MAX_SKEW_SECS * 1000).to_string(),
        ));
    }
    Ok(())
}

/// A SigV2 request time: RFC 1123/2822 (`Tue, 27 Mar 2007 19:36:42 GMT` or
/// `+0000`), or ISO 8601 (`20070327T193642Z`, `2007-03-27T19:36:42Z`).
fn parse_http_time(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc2822) {
        return Some(t);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let basic = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, basic)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

fn check_v2_presigned(query: &Query, now: OffsetDateTime) -> Result<(), Refusal> {
    let missing = || {
        Refusal::new(
            S3ErrorCode::AccessDenied,
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId \
             parameters",
        )
    };
    if query.unique("Signature").is_none() || query.unique("AWSAccessKeyId").is_none() {
        return Err(missing());
    }
    let expires_text = query.unique("Expires").ok_or_else(missing)?;
    let expires = expires_text
        .parse::<i64>()
        .ok()
        .filter(|&x| x >= 0)
        .ok_or_else(missing)?;
    let left = expires - now.unix_timestamp();
    if left < 0 {
        return Err(
            Refusal::new(S3ErrorCode::AccessDenied, "Request has expired")
                .with("Expires", expires_text)
                .with("ServerTime", server_time(now)),
        );
    }
    if left > MAX_PRESIGNED_SECS {
        return Err(Refusal::new(
            S3ErrorCode::AuthorizationQueryParametersError,
            format!(
                "Expires must be less than a week (in seconds) from now; that is, at most \
                 {MAX_PRESIGNED_SECS} seconds ahead"
            ),
        ));
    }
    Ok(())
}

// --- SigV4 ---

fn malformed_header(why: &str) -> Refusal {
    Refusal::new(
        S3ErrorCode::AuthorizationHeaderMalformed,
        format!("The authorization header is malformed; {why}"),
    )
}

fn malformed_query() -> Refusal {
    Refusal::new(
        S3ErrorCode::AuthorizationQueryParametersError,
        "Query-string authentication version 4 requires the X-Amz-Algorithm, \
         X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and \
         X-Amz-Expires parameters.",
    )
}

/// The parts of a SigV4 credential scope
/// (`<key>/<yyyymmdd>/<region>/<service>/aws4_request`) checked here.
#[derive(Debug, PartialEq, Eq)]
struct Scope<'a> {
    region: &'a str,
    service: &'a str,
}

/// Splits a credential scope as s3s does (`/`-separated fields, the last
/// `aws4_request`); returns the scope and what follows `aws4_request`.
fn parse_scope(s: &str) -> Option<(Scope<'_>, &str)> {
    let mut parts = s.splitn(5, '/');
    let _key = parts.next()?;
    let date = parts.next()?;
    let region = parts.next()?;
    let service = parts.next()?;
    let rest = parts.next()?.strip_prefix("aws4_request")?;
    if date.is_empty() || service.is_empty() {
        return None;
    }
    Some((Scope { region, service }, rest))
}

/// Checks a V4 scope against the server's: the service is `s3` and the
/// region is `region`. `what` opens the error message.
fn check_scope(
    scope: &Scope<'_>,
    region: &str,
    code: &S3ErrorCode,
    what: &str,
) -> Result<(), Refusal> {
    if scope.service != "s3" {
        return Err(Refusal::new(
            code.clone(),
            format!(
                "{what}; incorrect service '{}'. This endpoint belongs to 's3'.",
                scope.service
            ),
        ));
    }
    if scope.region != region {
        return Err(Refusal::new(
            code.clone(),
            format!(
                "{what}; the region '{}' is wrong; expecting '{region}'",
                scope.region
            ),
        )
        .with("Region", region));
    }
    Ok(())
}

/// The SignedHeaders rule: `host` and every `x-amz-*` header present but
/// the exempt ones must be listed (exactly, lowercase: s3s signs a header
/// only when its name matches).
fn check_signed_headers(
    signed: &[&str],
    headers: &HeaderMap,
    exempt: &[&str],
) -> Result<(), Refusal> {
    let mut unsigned: Vec<&str> = Vec::new();
    if !signed.contains(&"host") {
        unsigned.push("host");
    }
    for name in headers.keys() {
        let name = name.as_str();
        if name.starts_with("x-amz-")
            && !MAY_BE_UNSIGNED.contains(&name)
            && !exempt.contains(&name)
            && !signed.contains(&name)
        {
            unsigned.push(name);
        }
    }
    if unsigned.is_empty() {
        return Ok(());
    }
    unsigned.sort_unstable();
    Err(Refusal::new(
        S3ErrorCode::AccessDenied,
        "There were headers present in the request which were not signed",
    )
    .with("HeadersNotSigned", unsigned.join(", ")))
}

/// What the rules need of an `Authorization: AWS4-HMAC-SHA256
/// Credential=..., SignedHeaders=..., Signature=...` header, parsed with
/// s3s's grammar (`sig_v4/authorization_v4.rs`).
fn parse_authorization_v4(auth: &str) -> Option<(Scope<'_>, Vec<&str>)> {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let (algorithm, rest) = auth.split_once(is_space)?;
    if algorithm.is_empty() {
        return None;
    }
    let rest = rest.trim_start_matches(is_space);
    let (scope, rest) = parse_scope(rest.strip_prefix("Credential=")?)?;
    let rest = rest.strip_prefix(',')?.trim_start_matches(is_space);
    let (list, _) = rest.strip_prefix("SignedHeaders=")?.split_once(',')?;
    Some((scope, list.split(';').collect()))
}

fn check_v4_header(
    auth: &str,
    headers: &HeaderMap,
    region: &str,
    query_api: bool,
) -> Result<(), Refusal> {
    let (scope, signed) = parse_authorization_v4(auth)
        .ok_or_else(|| malformed_header("it is not a SigV4 Authorization header"))?;
    if !(query_api && matches!(scope.service, "iam" | "sts")) {
        check_scope(
            &scope,
            region,
            &S3ErrorCode::AuthorizationHeaderMalformed,
            "The authorization header is malformed",
        )?;
    }
    // The string to sign holds x-amz-date whether SignedHeaders lists it or not.
    check_signed_headers(&signed, headers, &["x-amz-date"])
}

fn check_v4_presigned(query: &Query, headers: &HeaderMap, region: &str) -> Result<(), Refusal> {
    let credential = query
        .unique("X-Amz-Credential")
        .ok_or_else(malformed_query)?;
    let (scope, rest) = parse_scope(credential).ok_or_else(malformed_query)?;
    if !rest.is_empty() {
        return Err(malformed_query());
    }
    check_scope(
        &scope,
        region,
        &S3ErrorCode::AuthorizationQueryParametersError,
        "Error parsing the X-Amz-Credential parameter",
    )?;
    let expires = query.unique("X-Amz-Expires").ok_or_else(malformed_query)?;
    let expires: u32 = expires.parse().map_err(|_| {
        Refusal::new(
            S3ErrorCode::AuthorizationQueryParametersError,
            "X-Amz-Expires should be a number",
        )
    })?;
    if i64::from(expires) > MAX_PRESIGNED_SECS {
        return Err(Refusal::new(
            S3ErrorCode::AuthorizationQueryParametersError,
            format!(
                "X-Amz-Expires must be less than a week (in seconds) that is; {MAX_PRESIGNED_SECS}"
            ),
        ));
    }
    let signed = query
        .unique("X-Amz-SignedHeaders")
        .ok_or_else(malformed_query)?;
    let signed: Vec<&str> = signed.split(';').collect();
    check_signed_headers(&signed, headers, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGION: &str = "us-east-1";

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).expect("valid time")
    }

    fn req(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method("PUT").uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request")
    }

    fn code(r: Result<(), Refusal>) -> Option<String> {
        r.err().map(|e| e.code().as_str().to_owned())
    }

    const V4_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AK/20261206/us-east-1/s3/aws4_request, \
        SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-a, Signature=00";

    #[test]
    fn authorization_v4_parses_like_s3s() {
        let (scope, signed) = parse_authorization_v4(V4_AUTH).expect("parses");
        assert_eq!(
            scope,
            Scope {
                region: "us-east-1",
                service: "s3"
            }
        );
        assert_eq!(
            signed,
            ["host", "x-amz-content-sha256", "x-amz-date", "x-amz-meta-a"]
        );
        // A ',' inside the key does not shift the fields.
        let odd = "AWS4-HMAC-SHA256 Credential=A,K/20261206/eu-west-1/s3/aws4_request,SignedHeaders=host,Signature=0";
        let (scope, signed) = parse_authorization_v4(odd).expect("parses");
        assert_eq!(scope.region, "eu-west-1");
        assert_eq!(signed, ["host"]);
        assert!(parse_authorization_v4("AWS4-HMAC-SHA256 Credential=AK/20261206/us-east-1/s3/aws4_request SignedHeaders=host,Signature=0").is_none());
        assert!(parse_authorization_v4("Bearer x").is_none());
    }

    #[test]
    fn v4_header_rules() {
        let now = at(1_800_000_000);
        let base = [
            ("authorization", V4_AUTH),
            ("x-amz-date", "x"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-amz-meta-a", "1"),
        ];
        assert_eq!(code(check(&req("/b/k", &base), REGION, now)), None);
        // an added, unsigned header
        let mut more = base.to_vec();
        more.push(("x-amz-copy-source", "/other/obj"));
        let e = check(&req("/b/k", &more), REGION, now).expect_err("refused");
        assert_eq!(e.code().as_str(), "AccessDenied");
        assert!(
            e.extra
                .contains(&("HeadersNotSigned", "x-amz-copy-source".into()))
        );
        // integrity headers, Content-Type and Content-MD5 may be unsigned
        let mut integrity = base.to_vec();
        integrity.push(("x-amz-checksum-crc32", "AAAAAA=="));
        integrity.push(("content-type", "text/plain"));
        integrity.push(("content-md5", "x"));
        assert_eq!(code(check(&req("/b/k", &integrity), REGION, now)), None);
        // wrong region / service
        let e = check(&req("/b/k", &base), "eu-west-1", now).expect_err("refused");
        assert_eq!(e.code().as_str(), "AuthorizationHeaderMalformed");
        assert!(e.extra.contains(&("Region", "eu-west-1".into())));
        let sts = V4_AUTH.replace("/s3/", "/sts/");
        let hs = [("authorization", sts.as_str())];
        assert_eq!(
            code(check(&req("/b/k", &hs), REGION, now)).as_deref(),
            Some("AuthorizationHeaderMalformed")
        );
        // host not signed
        let nohost = V4_AUTH.replace("host;", "");
        let hs = [("authorization", nohost.as_str())];
        let e = check(&req("/b/k", &hs), REGION, now).expect_err("refused");
        assert!(e.extra.contains(&("HeadersNotSigned", "host".into())));
        // two mechanisms, two headers
        assert_eq!(
            code(check(&req("/b/k?X-Amz-Signature=00", &base), REGION, now)).as_deref(),
            Some("InvalidArgument")
        );
        let two = [("authorization", V4_AUTH), ("authorization", V4_AUTH)];
        assert_eq!(
            code(check(&req("/b/k", &two), REGION, now)).as_deref(),
            Some("AuthorizationHeaderMalformed")
        );
    }

    fn presigned(expires: &str, region: &str, signed: &str) -> String {
        format!(
            "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20261206%2F{region}%2Fs3%2Faws4_request\
             &X-Amz-Date=20261206T000000Z&X-Amz-Expires={expires}&X-Amz-SignedHeaders={signed}&X-Amz-Signature=00"
        )
    }

    #[test]
    fn v4_presigned_rules() {
        let now = at(1_800_000_000);
        let ok = presigned("604800", REGION, "host");
        assert_eq!(code(check(&req(&ok, &[]), REGION, now)), None);
        // x-amz-content-sha256 may come unsigned (s3s checks the body against it)
        let h = [("x-amz-content-sha256", "UNSIGNED-PAYLOAD")];
        assert_eq!(code(check(&req(&ok, &h), REGION, now)), None);
        for h in [
            ("x-amz-copy-source", "/o/k"),
            ("x-amz-tagging", "a=b"),
            ("x-amz-meta-x", "1"),
        ] {
            let e = check(&req(&ok, &[h]), REGION, now).expect_err("refused");
            assert_eq!(e.code().as_str(), "AccessDenied", "{h:?}");
        }
        let long = presigned("604801", REGION, "host");
        assert_eq!(
            code(check(&req(&long, &[]), REGION, now)).as_deref(),
            Some("AuthorizationQueryParametersError")
        );
        let other = presigned("60", "eu-west-1", "host");
        assert_eq!(
            code(check(&req(&other, &[]), REGION, now)).as_deref(),
            Some("AuthorizationQueryParametersError")
        );
        let nohost = presigned("60", REGION, "x-amz-date");
        assert_eq!(
            code(check(&req(&nohost, &[]), REGION, now)).as_deref(),
            Some("AccessDenied")
        );
        let dup = format!("{ok}&X-Amz-Expires=1");
        assert_eq!(
            code(check(&req(&dup, &[]), REGION, now)).as_deref(),
            Some("AuthorizationQueryParametersError")
        );
    }

    #[test]
    fn v2_header_dates() {
        // 2027-01-15T08:00:00Z
        let now = at(1_800_000_000);
        let auth = ("authorization", "AWS AK:sig");
        let ok = [
            "Fri, 15 Jan 2027 08:00:00 GMT",
            "Fri, 15 Jan 2027 08:14:00 +0000",
            "20270115T074600Z",
            "2027-01-15T08:00:00Z",
        ];
        for d in ok {
            assert_eq!(
                code(check(&req("/b/k", &[auth, ("date", d)]), REGION, now)),
                None,
                "{d}"
            );
        }
        let skewed = [("date", "Fri, 15 Jan 2027 09:00:00 GMT"), auth];
        assert_eq!(
            code(check(&req("/b/k", &skewed), REGION, now)).as_deref(),
            Some("RequestTimeTooSkewed")
        );
        // x-amz-date wins over Date (the signature covers it, not Date)
        let both = [
            auth,
            ("date", "Fri, 15 Jan 2027 08:00:00 GMT"),
            ("x-amz-date", "Thu, 15 Jan 2026 08:00:00 GMT"),
        ];
        assert_eq!(
            code(check(&req("/b/k", &both), REGION, now)).as_deref(),
            Some("RequestTimeTooSkewed")
        );
        // a sub-resource the V2 signature does not cover
        let date = ("date", "Fri, 15 Jan 2027 08:00:00 GMT");
        for q in ["/b/k?retention", "/b/k?legal-hold", "/b?publicAccessBlock"] {
            assert_eq!(
                code(check(&req(q, &[auth, date]), REGION, now)).as_deref(),
                Some("InvalidRequest"),
                "{q}"
            );
        }
        assert_eq!(
            code(check(&req("/b/k?tagging", &[auth, date]), REGION, now)),
            None
        );
        for bad in [vec![auth], vec![auth, ("date", "yesterday")]] {
            assert_eq!(
                code(check(&req("/b/k", &bad), REGION, now)).as_deref(),
                Some("AccessDenied")
            );
        }
    }

    #[test]
    fn v2_presigned_expiry() {
        let now = at(1_800_000_000);
        let url = |e: i64| format!("/b/k?AWSAccessKeyId=AK&Expires={e}&Signature=abc%3D");
        assert_eq!(
            code(check(&req(&url(1_800_000_060), &[]), REGION, now)),
            None
        );
        assert_eq!(
            code(check(
                &req(&url(1_800_000_000 + MAX_PRESIGNED_SECS), &[]),
                REGION,
                now
            )),
            None
        );
        assert_eq!(
            code(check(&req(&url(1_799_999_999), &[]), REGION, now)).as_deref(),
            Some("AccessDenied")
        );
        assert_eq!(
            code(check(&req(&url(2_778_000_000), &[]), REGION, now)).as_deref(),
            Some("AuthorizationQueryParametersError")
        );
        assert_eq!(
            code(check(
                &req("/b/k?AWSAccessKeyId=AK&Signature=x", &[]),
                REGION,
                now
            ))
            .as_deref(),
            Some("AccessDenied")
        );
    }

    #[test]
    fn refusal_is_s3_xml() {
        let r = Refusal::new(S3ErrorCode::AccessDenied, "no <way>")
            .with("HeadersNotSigned", "x-amz-a, x-amz-b")
            .into_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            r.headers().get("content-type").map(HeaderValue::as_bytes),
            Some(&b"application/xml"[..])
        );
    }
}
