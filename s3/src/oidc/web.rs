//! STS AssumeRoleWithWebIdentity: a token of the configured OpenID
//! provider exchanged for temporary credentials.
//!
//! - With a `RoleArn` naming one of this deployment's roles
//!   (`arn:aws:iam::<account>:role/NAME`), the role's trust policy must
//!   allow `sts:AssumeRoleWithWebIdentity` for `"Principal": {"Federated":
//!   "<issuer>"}`, its conditions seeing the token's `jwt:<claim>` keys;
//!   the session gets the role's policies.
//! - Otherwise (no RoleArn, or one that names no role here, as MinIO
//!   does) the session gets the policies its policy claim names and those
//!   of the Cairn groups its groups claim names; a token that maps to no
//!   policy at all is refused.
//!
//! Either way the session keeps the token's claims as `jwt:` condition
//! keys, and an inline session `Policy` narrows it.

use cairn_iam::sts::{
    MAX_DURATION_SECS, MIN_DURATION_SECS, SessionClaims, SessionCredentials, SessionParent,
};
use cairn_iam::{
    Action, Caller, Context, Decision, Iam, Identity, IdentityDoc, Principal, PrincipalType,
    Request,
};

use super::{MAX_TOKEN_BYTES, OidcError, OidcProvider, WebIdentity};

/// The session length without `DurationSeconds`.
pub const DEFAULT_DURATION_SECS: i64 = 3600;

/// The action's parameters, as the request gave them.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebIdentityParams<'a> {
    pub token: Option<&'a str>,
    pub duration_seconds: Option<&'a str>,
    pub policy: Option<&'a str>,
    pub role_arn: Option<&'a str>,
    pub role_session_name: Option<&'a str>,
}

/// What the caller gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIdentityGrant {
    pub credentials: SessionCredentials,
    /// The token's `sub`.
    pub subject: String,
    /// The token's issuer.
    pub provider: String,
    /// The client id the token was issued to.
    pub audience: String,
    /// The session's ARN and id (`AssumedRoleUser`).
    pub assumed_role_arn: String,
    pub assumed_role_id: String,
}

/// Why the exchange was refused, with STS's error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    #[error("The request must contain the parameter {0}")]
    Missing(&'static str),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidIdentityToken(String),
    #[error("Token expired: current date/time is past the token's exp")]
    ExpiredToken,
    #[error("{0}")]
    IdpCommunication(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
}

impl StsError {
    /// The STS error code.
    pub fn code(&self) -> &'static str {
        match self {
            StsError::Missing(_) => "MissingParameter",
            StsError::Validation(_) => "ValidationError",
            StsError::InvalidIdentityToken(_) => "InvalidIdentityToken",
            StsError::ExpiredToken => "ExpiredTokenException",
            StsError::IdpCommunication(_) => "IDPCommunicationError",
            StsError::AccessDenied(_) => "AccessDenied",
            StsError::MalformedPolicyDocument(_) => "MalformedPolicyDocument",
        }
    }

    /// The HTTP status STS answers it with.
    pub fn status(&self) -> http::StatusCode {
        match self {
            StsError::AccessDenied(_) => http::StatusCode::FORBIDDEN,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }
}

impl From<OidcError> for StsError {
    fn from(e: OidcError) -> Self {
        match e {
            OidcError::Expired => StsError::ExpiredToken,
            OidcError::InvalidToken(m) => StsError::InvalidIdentityToken(m),
            e @ (OidcError::Communication(_) | OidcError::Config(_)) => {
                StsError::IdpCommunication(e.to_string())
            }
        }
    }
}

/// `DurationSeconds`: 900..=43200 and at most `max`, default 3600.
fn duration(raw: Option<&str>, max: i64) -> Result<i64, StsError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(DEFAULT_DURATION_SECS.min(max));
    };
    let d: i64 = raw.parse().map_err(|_| {
        StsError::Validation(format!(
            "Value '{raw}' at 'durationSeconds' failed to satisfy constraint: Member must be an integer"
        ))
    })?;
    if !(MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(&d) {
        return Err(StsError::Validation(format!(
            "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: \
             Member must have value between {MIN_DURATION_SECS} and {MAX_DURATION_SECS}"
        )));
    }
    if d > max {
        return Err(StsError::Validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                .into(),
        ));
    }
    Ok(d)
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// `RoleSessionName` as given (checked), or one made of the subject.
fn session_name(raw: Option<&str>, subject: &str) -> Result<String, StsError> {
    match raw.filter(|s| !s.is_empty()) {
        Some(n) if (2..=64).contains(&n.len()) && n.chars().all(name_char) => Ok(n.to_owned()),
        Some(n) => Err(StsError::Validation(format!(
            "1 validation error detected: Value '{n}' at 'roleSessionName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64"
        ))),
        None => {
            let s: String = subject
                .chars()
                .map(|c| if name_char(c) { c } else { '_' })
                .take(64)
                .collect();
            Ok(if s.len() < 2 {
                "web-identity".into()
            } else {
                s
            })
        }
    }
}

/// The role a RoleArn names, if it is one of this deployment's.
fn role_name<'a>(account: &str, arn: &'a str) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (acct, resource) = rest.split_once(':')?;
    let path = resource.strip_prefix("role/")?;
    let name = path.rsplit('/').next()?;
    (acct == account && !name.is_empty()).then_some(name)
}

/// Whether `role`'s trust policy lets web identity `id` (its `jwt:`
/// keys in `ctx`) assume it. As in AWS the web identity is no principal
/// of the account: only `"Federated": "<issuer>"` (or `"*"`) names it, so
/// a trust naming the account (`"AWS": "<account>"`, meant for
/// AssumeRole) with a broad Action does not open the role to every
/// holder of a provider's token.
fn trusted(role: &cairn_iam::Role, role_arn: &str, id: &WebIdentity, ctx: &Context) -> bool {
    let Some(action) = Action::from_name("sts:AssumeRoleWithWebIdentity") else {
        return false;
    };
    let principal = Principal {
        kind: PrincipalType::FederatedUser,
        arn: String::new(),
        account: String::new(),
        canonical_id: None,
        federated: Some(id.issuer.clone()),
    };
    role.trust.policy().evaluate(&Request {
        action,
        resource: role_arn,
        principal: &principal,
        context: ctx,
    }) == Decision::Allow
}

/// Exchanges the token in `p` for a session at `now` (seconds since the
/// epoch).
pub async fn assume_role_with_web_identity(
    iam: &Iam,
    oidc: &OidcProvider,
    p: &WebIdentityParams<'_>,
    now: i64,
) -> Result<WebIdentityGrant, StsError> {
    let token = p
        .token
        .filter(|t| !t.is_empty())
        .ok_or(StsError::Missing("WebIdentityToken"))?;
    if !(4..=MAX_TOKEN_BYTES).contains(&token.len()) {
        return Err(StsError::Validation(format!(
            "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: \
             Member must have length between 4 and {MAX_TOKEN_BYTES}"
        )));
    }
    // the parameters are checked before the provider is asked
    duration(p.duration_seconds, MAX_DURATION_SECS)?;
    if let Some(n) = p.role_session_name {
        session_name(Some(n), "")?;
    }
    if let Some(arn) = p.role_arn
        && !(20..=2048).contains(&arn.len())
    {
        return Err(StsError::Validation(
            "1 validation error detected: Value at 'roleArn' failed to satisfy constraint: \
             Member must have length between 20 and 2048"
                .into(),
        ));
    }
    let policy = match p.policy.filter(|s| !s.is_empty()) {
        Some(text) => {
            IdentityDoc::parse(text)
                .map_err(|e| StsError::MalformedPolicyDocument(e.to_string()))?;
            Some(text.to_owned())
        }
        None => None,
    };
    let id = oidc.verify(token).await.inspect_err(|e| {
        tracing::info!(error = %e, "web identity token refused");
    })?;
    let mapped = oidc.map(&id);
    let st = iam.state();
    let role = p
        .role_arn
        .and_then(|arn| role_name(iam.account(), arn))
        .and_then(|n| st.role(n).ok());
    let session = session_name(p.role_session_name, &id.subject)?;
    let (parent, assumed_role_id, d) = match role {
        Some(r) => {
            let arn = format!("arn:aws:iam::{}:role/{}", iam.account(), r.name);
            let mut ctx = Context::new();
            for (k, v) in &mapped.jwt {
                ctx.set_all(&format!("jwt:{k}"), v.clone());
            }
            ctx.set("aws:PrincipalType", PrincipalType::FederatedUser.as_str());
            ctx.set("aws:CurrentTime", iso8601(now));
            if !trusted(r, &arn, &id, &ctx) {
                tracing::info!(issuer = %id.issuer, subject = %id.subject, role = %r.name, "role's trust policy refuses the web identity");
                return Err(StsError::AccessDenied(format!(
                    "Not authorized to perform sts:AssumeRoleWithWebIdentity on {arn}"
                )));
            }
            (
                SessionParent::Role {
                    role: r.name.clone(),
                    session_name: session.clone(),
                },
                format!("{}:{session}", r.id),
                duration(p.duration_seconds, r.max_session)?,
            )
        }
        None => {
            if st
                .mapped_policies(&mapped.policies, &mapped.groups)
                .is_empty()
            {
                tracing::info!(
                    issuer = %id.issuer, subject = %id.subject,
                    policies = ?mapped.policies, groups = ?mapped.groups,
                    "web identity maps to no policy"
                );
                return Err(StsError::AccessDenied(
                    "The web identity token maps to no policy of this server (claim policies and groups)"
                        .into(),
                ));
            }
            (
                SessionParent::WebIdentity {
                    issuer: id.issuer.clone(),
                    subject: id.subject.clone(),
                    policies: mapped.policies.clone(),
                    groups: mapped.groups.clone(),
                },
                format!("web-identity:{session}"),
                duration(p.duration_seconds, MAX_DURATION_SECS)?,
            )
        }
    };
    let mut claims = SessionClaims {
        access_key: String::new(),
        parent,
        expires: now.saturating_add(d),
        policy,
        jwt: mapped.jwt,
    };
    let credentials = iam.signer().issue(claims.clone());
    claims.access_key = credentials.access_key.clone();
    let caller = Caller {
        access_key: credentials.access_key.clone(),
        identity: Identity::Session(Box::new(claims)),
    };
    let assumed_role_arn = iam.principal(Some(&caller)).arn;
    tracing::info!(
        issuer = %id.issuer, subject = %id.subject, session = %assumed_role_arn,
        expires = credentials.expires, "STS web identity session issued"
    );
    Ok(WebIdentityGrant {
        credentials,
        subject: id.subject,
        provider: id.issuer,
        audience: id.audience,
        assumed_role_arn,
        assumed_role_id,
    })
}

/// `secs` as ISO 8601 UTC (`2026-01-02T03:04:05Z`).
pub(crate) fn iso8601(secs: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
