//! The audit log: one JSON object per line for every request that
//! reached the S3 port (S3 operations, the IAM/STS query API, the admin
//! API, requests refused before authentication, anonymous ones), written
//! by its own writer ([`AuditLog`], crate::audit::writer) to a file or
//! stdout, apart from the tracing logs so that no log filter drops it.
//!
//! What a line says is noted while the request runs, in the request's
//! extensions ([`Notes`], put there by crate::access::Entry): who signed
//! it (crate::access's `Recorder`, the admin and query routes), and the
//! action and resource authorization decided on (crate::authz,
//! crate::query's `Call::allowed`, the admin route). The entry writes the
//! line when its response has been sent, with the status, the S3 error
//! code and the bytes. A request nobody noted a caller for claimed an
//! access key it did not prove (`unauthenticated`) or none (`anonymous`).
//!
//! No secret is written: an identity is its access key id, user and ARN;
//! neither the URI, the headers nor the session token go into a line.
//! Key names are user data and are written, as CloudTrail does; serde_json
//! escapes them, so a line stays one line.

mod writer;

use std::sync::{Arc, Mutex};

use cairn_iam::sts::SessionParent;
use cairn_iam::{Caller, Iam, Identity};
use serde::Serialize;

pub use writer::{AuditLog, AuditTarget};

/// Who made a request, as a line shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Who {
    /// root, user, service-account, sts-session, anonymous,
    /// unauthenticated.
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) access_key: Option<String>,
    /// The IAM user (for a user's key).
    pub(crate) user: Option<String>,
    /// The principal's ARN (a service account's is its parent's).
    pub(crate) arn: Option<String>,
    /// The user (or role, `role/NAME`; web identity, its subject) a
    /// service account or session acts for.
    pub(crate) parent: Option<String>,
}

impl Who {
    /// The caller IAM found for a verified signature.
    pub(crate) fn caller(iam: &Iam, c: &Caller) -> Self {
        let named = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let (kind, user, parent) = match &c.identity {
            Identity::Root => ("root", None, None),
            Identity::User { name } => ("user", Some(name.clone()), None),
            Identity::ServiceAccount { parent, .. } => ("service-account", None, named(parent)),
            Identity::Session(s) => {
                let parent = match &s.parent {
                    SessionParent::User { user } => named(user),
                    SessionParent::Role { role, .. } => Some(format!("role/{role}")),
                    SessionParent::WebIdentity { subject, .. } => named(subject),
                };
                ("sts-session", None, parent)
            }
        };
        Who {
            kind,
            access_key: Some(c.access_key.clone()),
            user,
            arn: Some(iam.principal(Some(c)).arn),
            parent,
        }
    }

    fn anonymous() -> Self {
        Who {
            kind: "anonymous",
            ..Who::default()
        }
    }

    /// A request whose claimed key (if any) was never proven.
    fn unproven(claimed: Option<&str>) -> Self {
        match claimed {
            Some(k) => Who {
                kind: "unauthenticated",
                access_key: Some(k.to_owned()),
                ..Who::default()
            },
            None => Who::anonymous(),
        }
    }
}

/// What authorization answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Decision {
    Allow,
    Deny,
    #[serde(rename = "n/a")]
    NotApplicable,
}

impl Decision {
    pub(crate) fn of(allowed: bool) -> Self {
        if allowed {
            Decision::Allow
        } else {
            Decision::Deny
        }
    }
}

#[derive(Default)]
struct Noted {
    who: Option<Who>,
    action: Option<String>,
    resource: Option<String>,
    decision: Option<Decision>,
}

/// What is known of a request for its audit line, filled in while it
/// runs; one per request, in its extensions.
#[derive(Clone, Default)]
pub(crate) struct Notes(Arc<Mutex<Noted>>);

impl Notes {
    fn with(&self, f: impl FnOnce(&mut Noted)) {
        let mut g = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g);
    }

    /// Notes who signed (`None`: nobody, an anonymous request).
    pub(crate) fn caller(&self, iam: &Iam, caller: Option<&Caller>) {
        let who = caller.map_or_else(Who::anonymous, |c| Who::caller(iam, c));
        self.with(|n| n.who = Some(who));
    }

    /// Notes a decision on `action` for `resource`. A refusal stays: a
    /// request refused on a second question (a copy's source) shows
    /// that one.
    pub(crate) fn decided(&self, action: Option<&str>, resource: Option<&str>, d: Decision) {
        self.with(|n| {
            if n.decision == Some(Decision::Deny) {
                return;
            }
            n.action = action.map(str::to_owned).or(n.action.take());
            n.resource = resource.map(str::to_owned).or(n.resource.take());
            n.decision = Some(d);
        });
    }

    /// Notes the action of a request that no policy question decides
    /// (yet): kept unless a decision comes.
    pub(crate) fn action(&self, action: &str) {
        self.with(|n| {
            if n.action.is_none() {
                n.action = Some(action.to_owned());
            }
        });
    }

    fn take(&self) -> Noted {
        let mut out = Noted::default();
        self.with(|n| out = std::mem::take(n));
        out
    }
}

/// The notes of the request whose extensions are `ext`.
pub(crate) fn notes(ext: &http::Extensions) -> Option<&Notes> {
    ext.get::<Notes>()
}

tokio::task_local! {
    /// The notes of the query API call being served (crate::query):
    /// its actions ask IAM deep inside, where no extensions are at hand.
    static CALL_NOTES: Notes;
}

/// Runs a query API call with `notes` for [`call_decided`].
pub(crate) async fn in_call<F: std::future::Future>(notes: Option<Notes>, f: F) -> F::Output {
    match notes {
        Some(n) => CALL_NOTES.scope(n, f).await,
        None => f.await,
    }
}

/// Notes a query API call's decision on `action` for `resource`.
pub(crate) fn call_decided(action: &str, resource: &str, allowed: bool) {
    let _ = CALL_NOTES.try_with(|n| {
        n.decided(Some(action), Some(resource), Decision::of(allowed));
    });
}

/// The resource ARN of an S3 request of `scope`.
pub(crate) fn s3_resource(
    scope: cairn_iam::s3ops::Scope,
    bucket: Option<&str>,
    key: Option<&str>,
) -> String {
    use cairn_iam::s3ops::Scope;
    match (scope, bucket) {
        (Scope::Account, _) | (_, None) => "*".to_owned(),
        (Scope::Bucket, Some(b)) => cairn_iam::s3_arn(b, None),
        (Scope::Object, Some(b)) => cairn_iam::s3_arn(b, key),
    }
}

/// What the front knows of a request at its end.
pub(crate) struct Finished<'a> {
    /// When it arrived.
    pub(crate) time: time::OffsetDateTime,
    pub(crate) request_id: &'a str,
    pub(crate) source: Option<std::net::SocketAddr>,
    pub(crate) method: &'a str,
    /// The S3 operation (or query/admin action) the router resolved.
    pub(crate) operation: Option<&'a str>,
    /// The access key the request claims (not proven).
    pub(crate) claimed_key: Option<&'a str>,
    /// 0: no response was sent (the client went away first).
    pub(crate) status: u16,
    pub(crate) error: Option<&'a str>,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) duration: std::time::Duration,
    pub(crate) user_agent: Option<&'a str>,
}

#[derive(Serialize)]
struct Outcome<'a> {
    status: u16,
    error: Option<&'a str>,
    decision: Decision,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    request_id: &'a str,
    source: Option<String>,
    method: &'a str,
    operation: Option<&'a str>,
    identity: Who,
    action: Option<String>,
    resource: Option<String>,
    result: Outcome<'a>,
    bytes_in: u64,
    bytes_out: u64,
    duration_ms: f64,
    user_agent: Option<&'a str>,
}

/// RFC 3339 in UTC with milliseconds: `2026-12-06T21:40:00.123Z`.
fn rfc3339_ms(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The audit line of a finished request (no newline).
pub(crate) fn line(f: &Finished<'_>, notes: &Notes) -> String {
    let noted = notes.take();
    let line = Line {
        time: rfc3339_ms(f.time),
        request_id: f.request_id,
        source: f.source.map(|s| s.to_string()),
        method: f.method,
        operation: f.operation,
        identity: noted.who.unwrap_or_else(|| Who::unproven(f.claimed_key)),
        action: noted.action,
        resource: noted.resource,
        result: Outcome {
            status: f.status,
            error: f.error,
            decision: noted.decision.unwrap_or(Decision::NotApplicable),
        },
        bytes_in: f.bytes_in,
        bytes_out: f.bytes_out,
        duration_ms: (f.duration.as_micros() as f64 / 1000.0),
        user_agent: f.user_agent,
    };
    // Serializing these plain fields cannot fail; if it did, the line
    // still says that a request came.
    serde_json::to_string(&line).unwrap_or_else(|e| {
        serde_json::json!({ "request_id": f.request_id, "error": e.to_string() }).to_string()
    })
}

#[cfg(test)]
mod tests;
