//! The AWS query protocol on the S3 endpoint: the IAM API
//! (`aws iam --endpoint-url URL ...`, boto3's IAM client) and STS
//! (AssumeRole, GetCallerIdentity; AssumeRoleWithWebIdentity is the one
//! action served unsigned).
//!
//! A query request is a path-style request to `/` (no bucket in the path
//! or the host) that is a POST with a form-encoded body, or a GET/POST
//! whose query names an `Action` ([`is_query`]). `s3s` verifies its
//! signature (vendor/s3s accepts the `iam` scope), then asks the one
//! route it has ([`Routes`]: the admin API or this) whether the request is
//! its own.
//!
//! [`QueryRoute::check_access`] reads the form (at most [`MAX_BODY`]
//! bytes), finds the action and who signed it; what it refuses is kept
//! and answered by [`QueryRoute::call`], so every answer, refusals
//! included, has the query protocol's shape (`<ErrorResponse>`, which
//! botocore reads; an S3 `<Error>` it would not). Each action is one arm
//! of [`dispatch::run`], calling a function in the file of its kind
//! (users.rs, keys.rs, ...); who may call it is asked there
//! ([`call::Call::authorize`]): the root user always, anyone else as
//! their policies allow `iam:<Action>` on the entity's ARN.

mod auth;
mod call;
mod dispatch;
mod error;
mod groups;
mod inline;
mod keys;
mod managed;
mod params;
mod roles;
mod sts;
mod users;
mod xml;

use std::sync::Arc;

use cairn_iam::{Caller, Iam};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result};

use crate::host::Domains;
use error::QueryError;
use params::Params;

/// The largest form body read (policy documents travel in it).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// Whether a request is for the query API (see the module doc).
pub(crate) fn is_query(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    domains: Option<&Domains>,
) -> bool {
    if uri.path() != "/" || !matches!(*method, Method::GET | Method::POST) {
        return false;
    }
    if Domains::request_names_bucket(domains, uri, headers) {
        return false;
    }
    let names_action = uri
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "Action"));
    names_action || (*method == Method::POST && is_form(headers))
}

/// Whether the body is form-encoded.
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The query API's route.
pub(crate) struct QueryRoute {
    pub(crate) iam: Arc<Iam>,
    pub(crate) domains: Option<Domains>,
    /// The OpenID provider of AssumeRoleWithWebIdentity, if any.
    pub(crate) oidc: Option<Arc<crate::oidc::OidcProvider>>,
}

/// What `check_access` found, for `call`.
#[derive(Clone)]
struct Prepared(Result<Ready, QueryError>);

#[derive(Clone)]
struct Ready {
    action: String,
    params: Params,
    caller: Option<Caller>,
}

impl QueryRoute {
    async fn prepare(&self, req: &mut S3Request<Body>) -> Result<Ready, QueryError> {
        let body = if is_form(&req.headers) {
            let b = req.input.store_all_limited(MAX_BODY).await.map_err(|e| {
                tracing::debug!(error = %e, "query request body refused");
                QueryError::validation(format!("the request body must be at most {MAX_BODY} bytes"))
            })?;
            Some(b)
        } else {
            None
        };
        let params = Params::parse(req.uri.query(), body.as_deref());
        let action = params
            .opt("Action")
            .ok_or_else(|| {
                QueryError::new(StatusCode::BAD_REQUEST, "MissingAction", "Missing Action")
            })?
            .to_owned();
        let caller = auth::caller(&self.iam, req)?;
        if caller.is_none() && !dispatch::UNSIGNED.contains(&action.as_str()) {
            return Err(QueryError::new(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
            ));
        }
        Ok(Ready {
            action,
            params,
            caller,
        })
    }
}

#[async_trait::async_trait]
impl S3Route for QueryRoute {
    fn is_match(&self, m: &Method, uri: &Uri, h: &HeaderMap, _e: &mut http::Extensions) -> bool {
        is_query(m, uri, h, self.domains.as_ref())
    }

    /// Never refuses here: a refusal is kept for `call`, which answers it
    /// in the query protocol's shape. Unsigned requests pass only for the
    /// actions in [`dispatch::UNSIGNED`].
    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        let prepared = Prepared(self.prepare(req).await);
        req.extensions.insert(prepared);
        Ok(())
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let request_id = req
            .extensions
            .get::<crate::access::RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let prepared = req
            .extensions
            .get::<Prepared>()
            .cloned()
            .unwrap_or_else(|| Prepared(Err(QueryError::service_failure())));
        let (ns, result) = match prepared.0 {
            Err(e) => (xml::IAM_NS, Err(e)),
            Ok(ready) => {
                if let Some(slot) = req.extensions.get::<crate::access::Resolved>() {
                    slot.note(
                        &ready.action,
                        ready.caller.as_ref().map(|c| c.access_key.as_str()),
                    );
                }
                let audit = crate::audit::notes(&req.extensions).cloned();
                if let Some(n) = &audit {
                    n.caller(&self.iam, ready.caller.as_ref());
                    let service = if dispatch::namespace(&ready.action) == xml::STS_NS {
                        "sts"
                    } else {
                        "iam"
                    };
                    n.action(&format!("{service}:{}", ready.action));
                }
                let peer = req.extensions.get::<crate::sse::ConnInfo>().copied();
                let cx = call::Call {
                    iam: &self.iam,
                    action: &ready.action,
                    params: &ready.params,
                    caller: ready.caller.as_ref(),
                    now: time::OffsetDateTime::now_utc().unix_timestamp(),
                    conn: peer,
                    oidc: self.oidc.as_deref(),
                };
                let ns = dispatch::namespace(&ready.action);
                let out = crate::audit::in_call(audit, dispatch::run(&cx)).await;
                if !matches!(&out, Err(e) if e.code == "InvalidAction")
                    && let Some(slot) = req.extensions.get::<crate::metrics::OperationSlot>()
                {
                    slot.set(&ready.action);
                }
                (ns, out.map(|r| (ready.action, r)))
            }
        };
        let (status, body) = match result {
            Ok((action, r)) => (StatusCode::OK, xml::response(&action, ns, r, &request_id)),
            Err(e) => {
                tracing::debug!(code = e.code, message = %e.message, "query API call refused");
                (e.status, xml::error(&e, ns, &request_id))
            }
        };
        let mut resp = S3Response::with_status(Body::from(body), status);
        resp.headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers.insert("x-amzn-requestid", v);
        }
        Ok(resp)
    }
}

/// Which of the routes a request matched (noted by `is_match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matched {
    Admin,
    Query,
    Listen,
}

/// The one route s3s takes: the admin API, the query API or a listener
/// of a bucket's events (crate::listen).
pub(crate) struct Routes {
    pub(crate) admin: crate::admin::AdminRoute,
    pub(crate) query: QueryRoute,
    pub(crate) listen: crate::listen::ListenRoute,
}

#[async_trait::async_trait]
impl S3Route for Routes {
    fn is_match(&self, m: &Method, uri: &Uri, h: &HeaderMap, e: &mut http::Extensions) -> bool {
        let matched = if self.admin.is_match(m, uri, h, e) {
            Matched::Admin
        } else if self.query.is_match(m, uri, h, e) {
            Matched::Query
        } else if self.listen.is_match(m, uri, h, e) {
            Matched::Listen
        } else {
            return false;
        };
        e.insert(matched);
        true
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        match req.extensions.get::<Matched>() {
            Some(Matched::Query) => self.query.check_access(req).await,
            Some(Matched::Listen) => self.listen.check_access(req).await,
            _ => self.admin.check_access(req).await,
        }
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        match req.extensions.get::<Matched>() {
            Some(Matched::Query) => self.query.call(req).await,
            Some(Matched::Listen) => self.listen.call(req).await,
            _ => self.admin.call(req).await,
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod route_tests {
    use super::*;

    #[test]
    fn which_requests_are_query_requests() {
        let d = Domains::new(&["localhost".into()]).unwrap();
        let form = |host: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, host.parse().unwrap());
            h.insert(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8"
                    .parse()
                    .unwrap(),
            );
            h
        };
        let at = |m: Method, u: &str, h: &HeaderMap| is_query(&m, &u.parse().unwrap(), h, Some(&d));
        assert!(at(Method::POST, "/", &form("127.0.0.1:9000")));
        assert!(at(Method::POST, "/", &form("localhost:9000")));
        assert!(at(Method::GET, "/?Action=ListUsers", &HeaderMap::new()));
        // a bucket in the host or the path, another method, no action
        assert!(!at(Method::POST, "/", &form("bucket.localhost:9000")));
        assert!(!at(Method::POST, "/bucket", &form("127.0.0.1")));
        assert!(!at(Method::PUT, "/?Action=ListUsers", &HeaderMap::new()));
        assert!(!at(Method::GET, "/", &HeaderMap::new()));
        assert!(!at(Method::POST, "/", &HeaderMap::new()));
    }
}
