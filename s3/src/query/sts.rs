//! STS: GetCallerIdentity (every signed caller, sessions included),
//! AssumeRole and AssumeRoleWithWebIdentity (unsigned: the OpenID
//! provider's token is the credential; crate::oidc::web).
//!
//! AssumeRole is for an IAM user or the root user (a service account's
//! or a session's keys may not assume): into a Cairn role whose trust
//! policy allows the caller `sts:AssumeRole` (a trust naming only the
//! account needs the caller's own policies to allow it too, as in AWS),
//! or, MinIO's way, with any other RoleArn, a session with the caller's
//! own policies. `DurationSeconds` 900 up to the role's maximum
//! (default 3600); an inline session `Policy` narrows the session.

use cairn_iam::sts::{MAX_DURATION_SECS, MIN_DURATION_SECS, SessionClaims, SessionParent};
use cairn_iam::{Action, Caller, Decision, Identity, IdentityDoc, Request};

use super::call::{Call, Reply};
use super::error::QueryError;
use super::xml::Xml;

/// Answers who signed the request.
pub(crate) async fn get_caller_identity(cx: &Call<'_>) -> Reply {
    let caller = cx.caller()?;
    let principal = cx.iam.principal(Some(caller));
    let mut ctx = cairn_iam::Context::new();
    cx.iam.caller_context(Some(caller), &principal, &mut ctx);
    let user_id = ctx
        .get("aws:userid")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_else(|| caller.access_key.clone());
    let mut x = Xml::new();
    x.leaf("UserId", &user_id)
        .leaf("Account", cx.iam.account())
        .leaf("Arn", &principal.arn);
    Ok(Some(x))
}

/// `RoleSessionName`: 2 to 64 of letters, digits and `_+=,.@-`.
fn session_name(cx: &Call<'_>) -> Result<String, QueryError> {
    let name = cx.params.req("RoleSessionName")?;
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !ok {
        return Err(QueryError::validation(format!(
            "1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64"
        )));
    }
    Ok(name.to_owned())
}

/// `DurationSeconds` within 900..=`max` (default 3600, at most `max`).
fn duration(cx: &Call<'_>, max: i64, role: bool) -> Result<i64, QueryError> {
    let Some(d) = cx.params.int("DurationSeconds")? else {
        return Ok(3600.min(max));
    };
    if d < MIN_DURATION_SECS {
        return Err(QueryError::validation(format!(
            "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: \
             Member must have value greater than or equal to {MIN_DURATION_SECS}"
        )));
    }
    if d > MAX_DURATION_SECS {
        return Err(QueryError::validation(format!(
            "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: \
             Member must have value less than or equal to {MAX_DURATION_SECS}"
        )));
    }
    if d > max {
        return Err(QueryError::validation(if role {
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                .to_owned()
        } else {
            format!("The requested DurationSeconds exceeds the {max} seconds allowed.")
        }));
    }
    Ok(d)
}

/// The role a RoleArn names, if it is one of this deployment's.
fn role_name<'a>(cx: &Call<'_>, arn: &'a str) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let path = resource.strip_prefix("role/")?;
    (account == cx.iam.account()).then(|| path.rsplit('/').next().unwrap_or(path))
}

/// Whether `role`'s trust policy lets `caller` assume it.
fn trusted(cx: &Call<'_>, caller: &Caller, role: &cairn_iam::Role, role_arn: &str) -> bool {
    let Some(action) = Action::from_name("sts:AssumeRole") else {
        return false;
    };
    let mut principal = cx.iam.principal(Some(caller));
    let mut ctx = cx.context();
    cx.iam.caller_context(Some(caller), &principal, &mut ctx);
    let trust = role.trust.policy();
    let decide = |p: &cairn_iam::Principal| {
        trust.evaluate(&Request {
            action,
            resource: role_arn,
            principal: p,
            context: &ctx,
        })
    };
    if decide(&principal) != Decision::Allow {
        return false;
    }
    // a trust that names the caller itself suffices; one that names the
    // account needs the caller's own policies to allow it as well
    principal.account = String::new();
    decide(&principal) == Decision::Allow || cx.allowed("sts:AssumeRole", role_arn)
}

pub(crate) async fn assume_role(cx: &Call<'_>) -> Reply {
    let caller = cx.caller()?;
    let role_arn = cx.params.req("RoleArn")?;
    let session_name = session_name(cx)?;
    let (user, user_id) = match &caller.identity {
        Identity::Root => (String::new(), cx.iam.account().to_owned()),
        Identity::User { name } => {
            let st = cx.iam.state();
            (
                name.clone(),
                st.user(name).map(|u| u.id.clone()).unwrap_or_default(),
            )
        }
        _ => {
            return Err(QueryError::access_denied(
                "AssumeRole is for IAM users and the root user: a service account's or a session's keys may not assume a role",
            ));
        }
    };
    let policy = match cx.params.opt("Policy") {
        Some(p) => {
            IdentityDoc::parse(p)?;
            Some(p.to_owned())
        }
        None => None,
    };
    let st = cx.iam.state();
    let role = role_name(cx, role_arn).and_then(|n| st.role(n).ok());
    let (parent, assumed_id, expires) = match role {
        Some(r) => {
            let arn = cx.arn(super::call::Kind::Role, &r.name);
            if !trusted(cx, caller, r, &arn) {
                let who = cx.iam.principal(Some(caller)).arn;
                return Err(QueryError::access_denied(format!(
                    "User: {who} is not authorized to perform: sts:AssumeRole on resource: {arn}"
                )));
            }
            let d = duration(cx, r.max_session, true)?;
            (
                SessionParent::Role {
                    role: r.name.clone(),
                    session_name: session_name.clone(),
                },
                format!("{}:{session_name}", r.id),
                cx.now.saturating_add(d),
            )
        }
        None => {
            let d = duration(cx, MAX_DURATION_SECS, false)?;
            (
                SessionParent::User { user },
                format!("{user_id}:{session_name}"),
                cx.now.saturating_add(d),
            )
        }
    };
    let mut claims = SessionClaims {
        access_key: String::new(),
        parent,
        expires,
        policy,
        jwt: Default::default(),
    };
    let creds = cx.iam.signer().issue(claims.clone());
    claims.access_key = creds.access_key.clone();
    let session = Caller {
        access_key: creds.access_key.clone(),
        identity: Identity::Session(Box::new(claims)),
    };
    let arn = cx.iam.principal(Some(&session)).arn;
    tracing::info!(caller = %cx.iam.principal(Some(caller)).arn, session = %arn, expires, "STS session issued");
    let mut x = Xml::new();
    x.open("Credentials")
        .leaf("AccessKeyId", &creds.access_key)
        .leaf("SecretAccessKey", &creds.secret_key)
        .leaf("SessionToken", &creds.session_token)
        .time("Expiration", creds.expires)
        .close("Credentials");
    x.open("AssumedRoleUser")
        .leaf("AssumedRoleId", &assumed_id)
        .leaf("Arn", &arn)
        .close("AssumedRoleUser");
    Ok(Some(x))
}

/// Exchanges the configured OpenID provider's token for a session
/// (crate::oidc::web has the rules).
pub(crate) async fn assume_role_with_web_identity(cx: &Call<'_>) -> Reply {
    let Some(oidc) = cx.oidc else {
        return Err(QueryError::new(
            http::StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
            "this server trusts no OpenID provider (--oidc-config-url)",
        ));
    };
    let p = crate::oidc::web::WebIdentityParams {
        token: cx.params.opt("WebIdentityToken"),
        duration_seconds: cx.params.opt("DurationSeconds"),
        policy: cx.params.opt("Policy"),
        role_arn: cx.params.opt("RoleArn"),
        role_session_name: cx.params.opt("RoleSessionName"),
    };
    let g = crate::oidc::web::assume_role_with_web_identity(cx.iam, oidc, &p, cx.now)
        .await
        .map_err(|e| QueryError::new(e.status(), e.code(), e.to_string()))?;
    let mut x = Xml::new();
    x.open("Credentials")
        .leaf("AccessKeyId", &g.credentials.access_key)
        .leaf("SecretAccessKey", &g.credentials.secret_key)
        .leaf("SessionToken", &g.credentials.session_token)
        .time("Expiration", g.credentials.expires)
        .close("Credentials");
    x.leaf("SubjectFromWebIdentityToken", &g.subject);
    x.open("AssumedRoleUser")
        .leaf("AssumedRoleId", &g.assumed_role_id)
        .leaf("Arn", &g.assumed_role_arn)
        .close("AssumedRoleUser");
    x.leaf("Provider", &g.provider)
        .leaf("Audience", &g.audience);
    Ok(Some(x))
}
