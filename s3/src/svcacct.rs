//! Service accounts (MinIO's idea; AWS IAM has no call for them): keys
//! of their own that act as a user (or the root user), optionally
//! narrowed by a policy of their own, through the admin API:
//!
//! - `POST   /_cairn/admin/v1/service-accounts` with a JSON body
//!   [`CreateRequest`] -> [`Created`] (the secret is shown once)
//! - `GET    /_cairn/admin/v1/service-accounts[?user=U]` -> `[`[`Info`]`]`
//!   (without `user`: the caller's own; the root user's when root asks)
//! - `GET    /_cairn/admin/v1/service-accounts/info?access_key=K` -> [`Info`]
//! - `POST   /_cairn/admin/v1/service-accounts/status?access_key=K&status=enabled|disabled`
//! - `DELETE /_cairn/admin/v1/service-accounts?access_key=K`
//!
//! The root user may do all of it for anyone; an IAM user only for its
//! own service accounts (which can only narrow what the user may do: the
//! account's policy is a boundary on top of the user's). Everyone else
//! (sessions, service accounts) is refused.

use cairn_iam::{Caller, Iam, Identity, KeyKind, ServiceAccountSpec, Status};
use http::{Method, StatusCode};
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use serde::{Deserialize, Serialize};

/// The admin API path of the service accounts (below the admin prefix).
pub(crate) const PATH: &str = "service-accounts";

/// The largest create request read.
const MAX_BODY: usize = 64 * 1024;

/// A new service account.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// The parent user (the caller itself when absent; root's own
    /// accounts when root gives none).
    #[serde(default)]
    pub user: Option<String>,
    /// A policy (JSON text) narrowing the parent's rights.
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Expiry, in seconds since the epoch.
    #[serde(default)]
    pub expires: Option<i64>,
}

/// A service account just made.
#[derive(Debug, Serialize, Deserialize)]
pub struct Created {
    pub access_key: String,
    pub secret_key: String,
    /// The parent user (empty: the root user).
    pub parent: String,
    pub expires: Option<i64>,
}

/// What the API shows of a service account.
#[derive(Debug, Serialize, Deserialize)]
pub struct Info {
    pub access_key: String,
    pub parent: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// `enabled` or `disabled`.
    pub status: String,
    pub created: i64,
    pub expires: Option<i64>,
    /// Its own policy, if it has one.
    pub policy: Option<String>,
}

fn err(code: S3ErrorCode, status: StatusCode, msg: impl Into<String>) -> S3Error {
    let mut e = S3Error::with_message(code, msg.into());
    e.set_status_code(status);
    e
}

fn bad(msg: impl Into<String>) -> S3Error {
    err(S3ErrorCode::InvalidArgument, StatusCode::BAD_REQUEST, msg)
}

fn denied(msg: impl Into<String>) -> S3Error {
    err(S3ErrorCode::AccessDenied, StatusCode::FORBIDDEN, msg)
}

fn iam_error(e: cairn_iam::IamServiceError) -> S3Error {
    use cairn_iam::{IamError, IamServiceError};
    match e {
        IamServiceError::Refused(e) => {
            let msg = e.to_string();
            match e {
                IamError::NoSuchEntity { .. } => err(
                    S3ErrorCode::Custom("NoSuchEntity".into()),
                    StatusCode::NOT_FOUND,
                    msg,
                ),
                IamError::EntityAlreadyExists { .. }
                | IamError::LimitExceeded(_)
                | IamError::DeleteConflict(_) => err(
                    S3ErrorCode::Custom("Conflict".into()),
                    StatusCode::CONFLICT,
                    msg,
                ),
                IamError::MalformedPolicyDocument(_) => err(
                    S3ErrorCode::Custom("MalformedPolicyDocument".into()),
                    StatusCode::BAD_REQUEST,
                    msg,
                ),
                IamError::InvalidInput(_) => bad(msg),
            }
        }
        IamServiceError::Storage(e @ cairn_api::ObjectError::BackendUnavailable { .. }) => {
            crate::errors::s3_error(e)
        }
        e => {
            tracing::error!(error = %e, "service account change failed");
            S3Error::with_message(S3ErrorCode::InternalError, "the change could not be stored")
        }
    }
}

/// Who may use the service-account API: the root user and IAM users.
pub(crate) fn admitted(caller: &Caller) -> bool {
    matches!(caller.identity, Identity::Root | Identity::User { .. })
}

/// The parent a caller may act on: root any (`asked`, or its own ""),
/// a user only itself.
fn parent_for(caller: &Caller, asked: Option<&str>) -> S3Result<String> {
    match &caller.identity {
        Identity::Root => Ok(asked.unwrap_or_default().to_owned()),
        Identity::User { name } => match asked {
            None => Ok(name.clone()),
            Some(a) if a == name => Ok(name.clone()),
            Some(_) => Err(denied("a user manages its own service accounts only")),
        },
        _ => Err(denied(
            "service accounts are managed by the root user or their own user",
        )),
    }
}

fn info(k: &cairn_iam::AccessKey) -> Option<Info> {
    let KeyKind::Service {
        name,
        description,
        policy,
        expires,
    } = &k.kind
    else {
        return None;
    };
    Some(Info {
        access_key: k.id.clone(),
        parent: k.owner.clone(),
        name: name.clone(),
        description: description.clone(),
        status: match k.status {
            Status::Active => "enabled".into(),
            Status::Inactive => "disabled".into(),
        },
        created: k.created,
        expires: *expires,
        policy: policy.as_ref().map(|p| p.text().to_owned()),
    })
}

/// The service account `access_key`, if the caller may manage it (else
/// it is as good as absent: 404 either way).
fn owned(iam: &Iam, caller: &Caller, access_key: &str) -> S3Result<Info> {
    let st = iam.state();
    let gone = || {
        err(
            S3ErrorCode::Custom("NoSuchEntity".into()),
            StatusCode::NOT_FOUND,
            format!("no service account {access_key}"),
        )
    };
    let k = st.key(access_key).ok_or_else(gone)?;
    let i = info(k).ok_or_else(gone)?;
    match &caller.identity {
        Identity::Root => Ok(i),
        Identity::User { name } if *name == i.parent => Ok(i),
        _ => Err(gone()),
    }
}

fn query_value(req: &S3Request<Body>, name: &str) -> Option<String> {
    form_urlencoded::parse(req.uri.query().unwrap_or_default().as_bytes())
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.into_owned())
}

fn json(v: &impl Serialize) -> S3Result<S3Response<Body>> {
    let body = serde_json::to_vec(v)
        .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))?;
    let mut resp = S3Response::new(Body::from(body));
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// Serves a call below `service-accounts` (`rest` is what follows it).
pub(crate) async fn call(
    iam: &Iam,
    mut req: S3Request<Body>,
    rest: &str,
) -> S3Result<S3Response<Body>> {
    let caller = req
        .extensions
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| denied("Signature is required"))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match (&req.method, rest) {
        (&Method::POST, "") => {
            let body = req.input.store_all_limited(MAX_BODY).await.map_err(|_| {
                bad(format!(
                    "the request body must be JSON of at most {MAX_BODY} bytes"
                ))
            })?;
            let cr: CreateRequest = if body.is_empty() {
                CreateRequest::default()
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| bad(format!("the request body is not a service account: {e}")))?
            };
            let parent = parent_for(&caller, cr.user.as_deref())?;
            let spec = ServiceAccountSpec {
                name: cr.name,
                description: cr.description,
                policy: cr.policy,
                expires: cr.expires,
            };
            let k = iam
                .change(|st| st.create_service_account(&parent, spec, now).cloned())
                .await
                .map_err(iam_error)?;
            tracing::info!(parent = %parent, access_key = %k.id, "service account created");
            let expires = match &k.kind {
                KeyKind::Service { expires, .. } => *expires,
                KeyKind::User => None,
            };
            json(&Created {
                access_key: k.id,
                secret_key: k.secret,
                parent,
                expires,
            })
        }
        (&Method::GET, "") => {
            let parent = parent_for(&caller, query_value(&req, "user").as_deref())?;
            let st = iam.state();
            let list: Vec<Info> = st.service_accounts(&parent).filter_map(info).collect();
            json(&list)
        }
        (&Method::GET, "/info") => {
            let key =
                query_value(&req, "access_key").ok_or_else(|| bad("info needs access_key=KEY"))?;
            json(&owned(iam, &caller, &key)?)
        }
        (&Method::POST, "/status") => {
            let key = query_value(&req, "access_key")
                .ok_or_else(|| bad("status needs access_key=KEY"))?;
            let status = match query_value(&req, "status").as_deref() {
                Some("enabled") => Status::Active,
                Some("disabled") => Status::Inactive,
                _ => return Err(bad("status needs status=enabled or status=disabled")),
            };
            let i = owned(iam, &caller, &key)?;
            iam.change(|st| st.set_key_status(&i.parent, &key, status))
                .await
                .map_err(iam_error)?;
            json(&owned(iam, &caller, &key)?)
        }
        (&Method::DELETE, "") => {
            let key = query_value(&req, "access_key")
                .ok_or_else(|| bad("delete needs access_key=KEY"))?;
            let i = owned(iam, &caller, &key)?;
            iam.change(|st| st.delete_access_key(&i.parent, &key))
                .await
                .map_err(iam_error)?;
            tracing::info!(access_key = %key, "service account deleted");
            json(&serde_json::json!({ "deleted": key }))
        }
        _ => Err(err(
            S3ErrorCode::NoSuchKey,
            StatusCode::NOT_FOUND,
            format!("no service account call {} {rest}", req.method),
        )),
    }
}
