//! The admin API, for the root credential only (SigV4 like any S3 call):
//!
//! - `GET  /_cairn/admin/v1/info`  -> JSON `ServerInfo`
//! - `POST /_cairn/admin/v1/scanner?enabled=true|false` pauses/resumes
//!   the background scanner
//! - `POST /_cairn/admin/v1/heal?bucket=B&prefix=P&deep=true` -> NDJSON
//!   `HealEvent`s (progress lines, then one `done` line), streamed.
//! - `GET  /_cairn/admin/v1/kms/status` -> JSON `KmsInfo`
//! - `POST /_cairn/admin/v1/kms/keys?name=N` creates master key N
//!   -> `{"created": N}`
//! - `POST /_cairn/admin/v1/kms/rotate[?name=N]` rotates key N (the default
//!   key without a name) and re-seals the object keys under it -> JSON
//!   `RotateSummary`
//!
//! - `GET  /_cairn/admin/v1/federation/status` -> JSON
//!   `FederationStatus` (sites, live or not, bucket counts, etcd's
//!   endpoints); 501 `NotFederated` on a server that is no site
//!
//! - `POST /_cairn/admin/v1/lifecycle/run` runs one lifecycle pass now
//!   -> JSON `LifecycleSummary`
//! - `POST /_cairn/admin/v1/bucket/worm?bucket=B` puts bucket B in WORM
//!   mode, irreversibly -> `{"bucket": B, "worm": true}`
//!
//! - `/_cairn/admin/v1/replication/...`: replication targets and status
//!   (crate::replication::admin_call)
//!
//! KMS errors go through the S3 error mapping (no KMS: 501
//! NotImplemented; unknown key: 400 KMS.NotFoundException).
//!
//! - `/_cairn/admin/v1/service-accounts...`: service accounts
//!   (crate::svcacct), for the root user and IAM users (their own).
//!
//! `s3s` checks the signature before it asks the route whether a request
//! is its own (`S3Route::is_match`), then calls `check_access`: only the
//! root user's signature passes, or that of a root STS session without a
//! session policy (the console's sessions), and IAM users' for service
//! accounts. A server without an admin side (a
//! gateway) answers every call 501 `NoAdminApi`, which `cairn admin`
//! explains. The paths are outside the bucket namespace
//! (crate::endpoints).

use std::sync::Arc;

use cairn_api::admin::{AdminLayer, HealRequest};
use futures::StreamExt as _;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::errors::s3_error;

use crate::endpoints::{ADMIN as PREFIX, Endpoint};

/// The error code of every admin call to a server without an admin side.
pub const NO_ADMIN_API: &str = "NoAdminApi";

pub(crate) struct AdminRoute {
    /// `None`: this server (a gateway) has no admin side.
    pub(crate) admin: Option<Arc<dyn AdminLayer>>,
    /// The root user's access key: the only one the admin API serves.
    pub(crate) root: String,
    /// For telling path-style requests from virtual-host ones.
    pub(crate) domains: Option<crate::host::Domains>,
    /// Who signed a service-account call.
    pub(crate) iam: Arc<cairn_iam::Iam>,
    /// The federation's router, when this server is a site of one.
    pub(crate) router: crate::forward::Router,
    /// The replication service (`replication/...` calls).
    pub(crate) replication: Option<Arc<dyn cairn_api::replication::ReplicationAdmin>>,
}

/// The service-account call of `uri`, if it is one: what follows
/// `service-accounts` in the path.
fn service_account_call(uri: &Uri) -> Option<&str> {
    let rest = uri
        .path()
        .strip_prefix(PREFIX)?
        .strip_prefix(crate::svcacct::PATH)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn bad(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, msg.into())
}

/// The value of query parameter `name`, if present and not empty.
fn query_value(uri: &Uri, name: &str) -> Option<String> {
    query_pairs(uri)
        .into_iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v)
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn json_response(v: &impl serde::Serialize) -> S3Result<S3Response<Body>> {
    let body = serde_json::to_vec(v)
        .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))?;
    let mut resp = S3Response::new(Body::from(body));
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

#[async_trait::async_trait]
impl S3Route for AdminRoute {
    fn is_match(&self, m: &Method, uri: &Uri, h: &HeaderMap, _e: &mut http::Extensions) -> bool {
        crate::endpoints::classify(m, uri, h, self.domains.as_ref()) == Some(Endpoint::Admin)
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        let checked = self.check(req).await;
        if let Some(n) = crate::audit::notes(&req.extensions) {
            let what = req.uri.path().strip_prefix(PREFIX).unwrap_or_default();
            let what = what.split('/').next().unwrap_or_default();
            n.decided(
                Some(&format!("admin:{what}")),
                Some("*"),
                crate::audit::Decision::of(checked.is_ok()),
            );
            let caller = req.extensions.get::<cairn_iam::Caller>();
            match (&req.credentials, caller) {
                (_, Some(c)) => n.caller(&self.iam, Some(c)),
                (Some(c), None) if c.access_key == self.root => n.caller(
                    &self.iam,
                    Some(&cairn_iam::Caller {
                        access_key: c.access_key.clone(),
                        identity: cairn_iam::Identity::Root,
                    }),
                ),
                // another user's key, proven but refused: the log names it
                (Some(c), None) => {
                    let token = crate::access::session_token(&req.headers, &req.uri);
                    let now = time::OffsetDateTime::now_utc().unix_timestamp();
                    if let Ok(who) = self.iam.caller(&c.access_key, token.as_deref(), now) {
                        n.caller(&self.iam, Some(&who));
                    }
                }
                (None, None) => n.caller(&self.iam, None),
            }
        }
        checked
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        self.serve(req).await
    }
}

impl AdminRoute {
    /// Who may make the call (see the module doc).
    async fn check(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        if service_account_call(&req.uri).is_some()
            && let Some(c) = &req.credentials
        {
            let token = req
                .headers
                .get("x-amz-security-token")
                .and_then(|v| v.to_str().ok());
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let caller = self.iam.caller(&c.access_key, token, now).map_err(|e| {
                tracing::info!(access_key = %c.access_key, error = %e, "service account call refused");
                S3Error::with_message(S3ErrorCode::AccessDenied, "The credentials are not valid.")
            })?;
            if !crate::svcacct::admitted(&caller) {
                return Err(S3Error::with_message(
                    S3ErrorCode::AccessDenied,
                    "Service accounts are managed by the root user or their own user.",
                ));
            }
            req.extensions.insert(caller);
            return Ok(());
        }
        match &req.credentials {
            Some(c) if c.access_key == self.root => Ok(()),
            Some(c) if self.root_session(&c.access_key, &req.headers, &req.uri) => Ok(()),
            Some(c) => {
                tracing::info!(access_key = %c.access_key, "admin API call by a user other than root refused");
                Err(S3Error::with_message(
                    S3ErrorCode::AccessDenied,
                    "The admin API is for the root user only.",
                ))
            }
            None => Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "Signature is required",
            )),
        }
    }

    /// Whether `access_key` is an STS session of the root user without a
    /// session policy (AssumeRole signed by root): it stands for the root
    /// user, with every right, only for its hour (the console's sessions).
    /// A session narrowed by a policy, or another user's, is refused.
    fn root_session(&self, access_key: &str, headers: &HeaderMap, uri: &Uri) -> bool {
        let token = crate::access::session_token(headers, uri);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let Ok(caller) = self.iam.caller(access_key, token.as_deref(), now) else {
            return false;
        };
        matches!(&caller.identity, cairn_iam::Identity::Session(s)
            if s.policy.is_none()
                && matches!(&s.parent, cairn_iam::sts::SessionParent::User { user } if user.is_empty()))
    }

    async fn serve(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        if let Some(rest) = service_account_call(&req.uri) {
            let rest = rest.to_owned();
            return crate::svcacct::call(&self.iam, req, &rest).await;
        }
        if let Some(rest) = req
            .uri
            .path()
            .strip_prefix(PREFIX)
            .and_then(|w| w.strip_prefix("replication/"))
        {
            let rest = rest.to_owned();
            return crate::replication::admin_call(self.replication.as_ref(), req, &rest).await;
        }
        let Some(admin) = &self.admin else {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom(NO_ADMIN_API.into()),
                "This server has no admin API: it is a gateway, which serves S3 (and the mount / NFS) only.",
            );
            e.set_status_code(StatusCode::NOT_IMPLEMENTED);
            return Err(e);
        };
        let what = req.uri.path().trim_start_matches(PREFIX);
        match (&req.method, what) {
            (&Method::GET, "info") => {
                let info = admin.server_info().await.map_err(|e| bad(e.to_string()))?;
                json_response(&info)
            }
            (&Method::POST, "heal") => {
                let mut hr = HealRequest::default();
                for (k, v) in query_pairs(&req.uri) {
                    match k.as_str() {
                        "bucket" if !v.is_empty() => hr.bucket = Some(v),
                        "prefix" => hr.prefix = v,
                        "deep" => hr.deep = v == "true" || v == "1",
                        _ => {}
                    }
                }
                if !hr.prefix.is_empty() && hr.bucket.is_none() {
                    return Err(bad("a prefix needs a bucket"));
                }
                if let Some(b) = &hr.bucket {
                    cairn_api::BucketName::new(b.clone()).map_err(|e| bad(e.to_string()))?;
                }
                let events = admin
                    .clone()
                    .heal(hr)
                    .map(|ev| crate::lines::json_line(&ev));
                let mut resp = S3Response::new(crate::lines::Lines::body(events));
                resp.headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-ndjson"),
                );
                Ok(resp)
            }
            (&Method::GET, "kms/status") => {
                let info = admin.kms_status().await.map_err(s3_error)?;
                json_response(&info)
            }
            (&Method::POST, "kms/keys") => {
                let name = query_value(&req.uri, "name")
                    .ok_or_else(|| bad("creating a key needs name=KEY"))?;
                // Transit answers success for an existing key; say 409 for
                // every KMS
                let info = admin.kms_status().await.map_err(s3_error)?;
                if info.keys.iter().any(|(k, _)| *k == name) {
                    let mut e = S3Error::with_message(
                        S3ErrorCode::InvalidRequest,
                        format!("KMS key {name:?} already exists"),
                    );
                    e.set_status_code(StatusCode::CONFLICT);
                    return Err(e);
                }
                admin.kms_create_key(&name).await.map_err(s3_error)?;
                json_response(&serde_json::json!({ "created": name }))
            }
            (&Method::GET, "federation/status") => {
                let Some(router) = &self.router else {
                    let mut e = S3Error::with_message(
                        S3ErrorCode::Custom("NotFederated".into()),
                        "This server is not a site of a federation (--federation-etcd).",
                    );
                    e.set_status_code(StatusCode::NOT_IMPLEMENTED);
                    return Err(e);
                };
                json_response(&router.status().await)
            }
            (&Method::POST, "lifecycle/run") => {
                let summary = admin.lifecycle_run().await.map_err(s3_error)?;
                json_response(&summary)
            }
            (&Method::POST, "bucket/worm") => {
                let name = query_value(&req.uri, "bucket")
                    .ok_or_else(|| bad("bucket/worm needs bucket=NAME"))?;
                let bucket = cairn_api::BucketName::new(name).map_err(s3_error)?;
                admin.bucket_worm(&bucket).await.map_err(s3_error)?;
                tracing::warn!(bucket = %bucket, "bucket put in WORM mode (irreversible)");
                json_response(&serde_json::json!({ "bucket": bucket.as_str(), "worm": true }))
            }
            (&Method::POST, "kms/rotate") => {
                let name = query_value(&req.uri, "name");
                let summary = admin.kms_rotate(name.as_deref()).await.map_err(s3_error)?;
                json_response(&summary)
            }
            (&Method::POST, "scanner") => {
                let pairs = query_pairs(&req.uri);
                let enabled = match pairs
                    .iter()
                    .find(|(k, _)| k == "enabled")
                    .map(|(_, v)| v.as_str())
                {
                    Some("true") => true,
                    Some("false") => false,
                    _ => return Err(bad("scanner needs enabled=true or enabled=false")),
                };
                if !admin.set_scanner(enabled) {
                    return Err(S3Error::with_message(
                        S3ErrorCode::NotImplemented,
                        "this store has no scanner",
                    ));
                }
                json_response(&serde_json::json!({ "scanner_enabled": enabled }))
            }
            _ => {
                let mut e =
                    S3Error::with_message(S3ErrorCode::NoSuchKey, format!("no admin call {what}"));
                e.set_status_code(StatusCode::NOT_FOUND);
                Err(e)
            }
        }
    }
}
