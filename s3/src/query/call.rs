//! One query API call as the actions see it: its parameters, its caller
//! and the IAM service, with the helpers every action shares (ARNs, the
//! authorization question, the entity shapes of the responses).

use cairn_iam::{Action, Caller, Context, Iam, Identity, Question, Secs};

use super::error::QueryError;
use super::params::Params;
use super::xml::Xml;

/// What an action gets.
pub(crate) struct Call<'a> {
    pub(crate) iam: &'a Iam,
    /// The action's name, e.g. `CreateUser`.
    pub(crate) action: &'a str,
    pub(crate) params: &'a Params,
    /// `None` only for the actions served unsigned.
    pub(crate) caller: Option<&'a Caller>,
    pub(crate) now: Secs,
    pub(crate) conn: Option<crate::sse::ConnInfo>,
    /// The OpenID provider AssumeRoleWithWebIdentity trusts, if any.
    pub(crate) oidc: Option<&'a crate::oidc::OidcProvider>,
}

/// What an action answers: its result members, or nothing.
pub(crate) type Reply = Result<Option<Xml>, QueryError>;

/// The kinds of IAM entity an ARN names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    User,
    Group,
    Role,
    Policy,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
            Kind::Role => "role",
            Kind::Policy => "policy",
        }
    }
}

impl Call<'_> {
    /// The signed caller.
    pub(crate) fn caller(&self) -> Result<&Caller, QueryError> {
        self.caller
            .ok_or_else(|| QueryError::access_denied("Signature is required"))
    }

    /// `arn:aws:iam::<account>:<kind>/<name>`.
    pub(crate) fn arn(&self, kind: Kind, name: &str) -> String {
        format!(
            "arn:aws:iam::{}:{}/{name}",
            self.iam.account(),
            kind.as_str()
        )
    }

    /// The request's own condition keys.
    pub(crate) fn context(&self) -> Context {
        let mut ctx = Context::new();
        ctx.set("aws:CurrentTime", super::xml::iso8601(self.now));
        ctx.set("aws:EpochTime", self.now.to_string());
        if let Some(c) = self.conn {
            ctx.set("aws:SourceIp", c.peer.ip().to_string());
            ctx.set("aws:SecureTransport", if c.tls { "true" } else { "false" });
        }
        ctx
    }

    /// Whether the caller may do `action` (e.g. `sts:AssumeRole`) on
    /// `resource`: the root user always.
    pub(crate) fn allowed(&self, action: &str, resource: &str) -> bool {
        let allowed = self.decide(action, resource);
        crate::audit::call_decided(action, resource, allowed);
        allowed
    }

    fn decide(&self, action: &str, resource: &str) -> bool {
        let Some(caller) = self.caller else {
            return false;
        };
        if caller.identity == Identity::Root {
            return true;
        }
        let Some(action) = Action::from_name(action) else {
            return false;
        };
        let ctx = self.context();
        self.iam.authorize(&Question {
            caller: Some(caller),
            action,
            resource,
            context: &ctx,
            bucket_policy: None,
        })
    }

    /// Refuses unless the caller may do this call's action
    /// (`iam:<Action>`) on `resource`.
    pub(crate) fn authorize(&self, resource: &str) -> Result<(), QueryError> {
        let action = format!("iam:{}", self.action);
        if self.allowed(&action, resource) {
            return Ok(());
        }
        let who = self
            .caller
            .map(|c| self.iam.principal(Some(c)).arn)
            .unwrap_or_default();
        tracing::info!(%who, %action, %resource, "IAM call refused");
        Err(QueryError::access_denied(format!(
            "User: {who} is not authorized to perform: {action} on resource: {resource}"
        )))
    }

    /// The user a call without `UserName` is about: the caller's own
    /// (a service account's or session's parent).
    pub(crate) fn own_user(&self) -> Result<String, QueryError> {
        let c = self.caller()?;
        let name = match &c.identity {
            Identity::User { name } => Some(name.clone()),
            Identity::ServiceAccount { parent, .. } if !parent.is_empty() => Some(parent.clone()),
            Identity::Session(s) => match &s.parent {
                cairn_iam::sts::SessionParent::User { user } if !user.is_empty() => {
                    Some(user.clone())
                }
                _ => None,
            },
            _ => None,
        };
        name.ok_or_else(|| {
            QueryError::invalid_input(
                "the root user has no IAM access keys of its own: give UserName",
            )
        })
    }

    /// `UserName`, or the caller's own user without it.
    pub(crate) fn user_param(&self) -> Result<String, QueryError> {
        match self.params.opt("UserName") {
            Some(u) => Ok(u.to_owned()),
            None => self.own_user(),
        }
    }
}

/// Writes a `User` shape's members.
pub(crate) fn user_members(x: &mut Xml, cx: &Call<'_>, u: &cairn_iam::User) {
    x.leaf("Path", "/")
        .leaf("UserName", &u.name)
        .leaf("UserId", &u.id)
        .leaf("Arn", &cx.arn(Kind::User, &u.name))
        .time("CreateDate", u.created);
}

/// Writes a `Group` shape's members.
pub(crate) fn group_members(x: &mut Xml, cx: &Call<'_>, g: &cairn_iam::Group) {
    x.leaf("Path", "/")
        .leaf("GroupName", &g.name)
        .leaf("GroupId", &g.id)
        .leaf("Arn", &cx.arn(Kind::Group, &g.name))
        .time("CreateDate", g.created);
}

/// A policy document as IAM returns it: URL-encoded (botocore decodes
/// it back).
pub(crate) fn encoded_doc(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
