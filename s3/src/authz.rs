//! S3 request authorization: every S3 operation is asked of IAM as its
//! AWS action (cairn_iam::s3ops) on its resource ARN, with the request's
//! condition keys and the bucket's policy, before any handler runs.
//!
//! - The root user is not subject to policies (as in MinIO and AWS's
//!   account root): its requests skip all of this.
//! - An unsigned request is anonymous: it gets exactly what the bucket
//!   policy grants.
//! - ListBuckets shows only the buckets the caller may list or locate;
//!   DeleteObjects is decided per key by its handler; a copy needs read
//!   rights on its source too.
//! - Condition keys that cost a read (`s3:ExistingObjectTag/<k>`) are
//!   filled in only when a policy involved names them.

use std::net::IpAddr;
use std::sync::Arc;

use cairn_api::{BucketConfig, BucketName, Conditions, ObjectKey, ObjectLayer};
use cairn_iam::s3ops::{Scope, copy_source_action, s3_action};
use cairn_iam::{
    Action, BucketPolicies, Caller, Context, Grants, Iam, Policy, PolicyKind, Question, Verdict,
    s3_arn,
};
use http::{HeaderMap, Uri};
use s3s::{S3Error, S3ErrorCode, S3Result};

use crate::audit::Decision;
use crate::sse::ConnInfo;

/// A stored bucket policy that no longer parses (never stored by this
/// front, which checks before storing) refuses everything rather than
/// opening the bucket.
const DENY_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}]}"#;

/// The condition-key prefix whose values need the object's tags.
const EXISTING_TAG: &str = "s3:existingobjecttag/";

/// Asks IAM about S3 requests; one per front.
pub(crate) struct Authorizer {
    iam: Arc<Iam>,
    layer: Arc<dyn ObjectLayer>,
    policies: BucketPolicies,
}

/// What a handler needs to decide more (ListBuckets filtering,
/// DeleteObjects per key): put into each request's extensions.
#[derive(Clone)]
pub(crate) struct Authorized {
    pub(crate) caller: Option<Caller>,
    context: Arc<Context>,
    authz: Arc<Authorizer>,
}

fn denied() -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied.")
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// The client's address as policies see it (an IPv4 client on a dual
/// stack socket is its IPv4 address).
fn source_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        v4 @ IpAddr::V4(_) => v4.to_string(),
    }
}

/// The request's condition keys (those of the caller are added by IAM).
fn request_context(
    headers: &HeaderMap,
    uri: &Uri,
    conn: Option<&ConnInfo>,
    signed: bool,
) -> Context {
    let mut ctx = Context::new();
    let now = time::OffsetDateTime::now_utc();
    if let Ok(t) = now.format(&time::format_description::well_known::Rfc3339) {
        ctx.set("aws:CurrentTime", t);
    }
    ctx.set("aws:EpochTime", now.unix_timestamp().to_string());
    if let Some(c) = conn {
        ctx.set("aws:SourceIp", source_ip(c.peer.ip()));
        ctx.set("aws:SecureTransport", if c.tls { "true" } else { "false" });
    } else {
        ctx.set("aws:SecureTransport", "false");
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    for (h, key) in [
        ("user-agent", "aws:UserAgent"),
        ("referer", "aws:Referer"),
        (
            "x-amz-server-side-encryption",
            "s3:x-amz-server-side-encryption",
        ),
        (
            "x-amz-server-side-encryption-aws-kms-key-id",
            "s3:x-amz-server-side-encryption-aws-kms-key-id",
        ),
        (
            "x-amz-server-side-encryption-customer-algorithm",
            "s3:x-amz-server-side-encryption-customer-algorithm",
        ),
        ("x-amz-acl", "s3:x-amz-acl"),
        ("x-amz-grant-read", "s3:x-amz-grant-read"),
        ("x-amz-grant-write", "s3:x-amz-grant-write"),
        ("x-amz-grant-read-acp", "s3:x-amz-grant-read-acp"),
        ("x-amz-grant-write-acp", "s3:x-amz-grant-write-acp"),
        ("x-amz-grant-full-control", "s3:x-amz-grant-full-control"),
        ("x-amz-copy-source", "s3:x-amz-copy-source"),
        ("x-amz-metadata-directive", "s3:x-amz-metadata-directive"),
        ("x-amz-storage-class", "s3:x-amz-storage-class"),
        ("x-amz-content-sha256", "s3:x-amz-content-sha256"),
        ("x-amz-object-lock-mode", "s3:object-lock-mode"),
        ("x-amz-object-lock-legal-hold", "s3:object-lock-legal-hold"),
    ] {
        if let Some(v) = header(h) {
            ctx.set(key, v);
        }
    }
    if let Some(until) = header("x-amz-object-lock-retain-until-date") {
        ctx.set("s3:object-lock-retain-until-date", until);
        if let Ok(t) =
            time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339)
        {
            let days = (t - now).whole_days().max(0);
            ctx.set("s3:object-lock-remaining-retention-days", days.to_string());
        }
    }
    if let Some(tagging) = header("x-amz-tagging") {
        let mut keys = Vec::new();
        for (k, v) in form_urlencoded::parse(tagging.as_bytes()) {
            ctx.set(&format!("s3:RequestObjectTag/{k}"), v.into_owned());
            keys.push(k.into_owned());
        }
        ctx.set_all("s3:RequestObjectTagKeys", keys);
    }
    let query = query_pairs(uri);
    let presigned = query
        .iter()
        .any(|(k, _)| k == "X-Amz-Signature" || k == "Signature");
    for (k, v) in &query {
        match k.as_str() {
            "prefix" => ctx.set("s3:prefix", v.clone()),
            "delimiter" => ctx.set("s3:delimiter", v.clone()),
            "max-keys" => ctx.set("s3:max-keys", v.clone()),
            "versionId" => ctx.set("s3:VersionId", v.clone()),
            _ => &mut ctx,
        };
    }
    if signed {
        let v2 = header("authorization").is_some_and(|a| a.starts_with("AWS "))
            || query.iter().any(|(k, _)| k == "Signature");
        ctx.set(
            "s3:signatureversion",
            if v2 { "AWS" } else { "AWS4-HMAC-SHA256" },
        );
        ctx.set(
            "s3:authType",
            if presigned {
                "REST-QUERY-STRING"
            } else {
                "REST-HEADER"
            },
        );
    }
    ctx
}

/// `bucket/key[?versionId=v]` of an `x-amz-copy-source` header.
fn copy_source(headers: &HeaderMap) -> Option<(String, String, bool)> {
    let raw = headers.get("x-amz-copy-source")?.to_str().ok()?;
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    let path = percent_encoding::percent_decode_str(path.trim_start_matches('/'))
        .decode_utf8()
        .ok()?;
    let (bucket, key) = path.split_once('/')?;
    let versioned = form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "versionId");
    Some((bucket.to_owned(), key.to_owned(), versioned))
}

/// Whether the request asks to bypass governance-mode retention.
pub(crate) fn bypasses_governance(headers: &HeaderMap) -> bool {
    headers
        .get("x-amz-bypass-governance-retention")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn bypass_action() -> Action {
    Action::from_name("s3:BypassGovernanceRetention")
        .unwrap_or_else(|| unreachable!("s3:BypassGovernanceRetention is in the action table"))
}

/// Whether a policy involved names `s3:ExistingObjectTag/<k>` (the
/// object's tags are then read before deciding).
fn needs_tags(grants: &Grants, bucket_policy: Option<&Policy>) -> bool {
    bucket_policy.is_some_and(|p| p.mentions_key(EXISTING_TAG))
        || grants
            .identity
            .iter()
            .chain(grants.boundaries.iter())
            .any(|p| p.mentions_key(EXISTING_TAG))
}

/// What the access hook knows of a request.
pub(crate) struct Ask<'a> {
    pub op: &'a str,
    pub bucket: Option<&'a str>,
    pub key: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub uri: &'a Uri,
    pub conn: Option<&'a ConnInfo>,
}

impl Authorizer {
    pub(crate) fn new(iam: Arc<Iam>, layer: Arc<dyn ObjectLayer>) -> Arc<Self> {
        Arc::new(Authorizer {
            iam,
            layer,
            policies: BucketPolicies::new(),
        })
    }

    /// The bucket's policy, parsed once per text.
    fn bucket_policy(&self, bucket: &str, cfg: Option<&BucketConfig>) -> Option<Arc<Policy>> {
        let text = cfg?.policy.clone();
        match self.policies.parsed(bucket, text) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(bucket, error = %e, "stored bucket policy does not parse; refusing all access it governs");
                let deny = Policy::parse(DENY_ALL, PolicyKind::Bucket)
                    .unwrap_or_else(|_| Policy::deny_all());
                Some(Arc::new(deny))
            }
        }
    }

    /// The answer for `action` on `bucket` (and `key`) for `caller`: the
    /// policies, then (nothing allowed, nothing denied) the ACLs.
    async fn verdict(
        &self,
        caller: Option<&Caller>,
        ctx: &Context,
        action: Action,
        bucket: &str,
        key: Option<&str>,
    ) -> Verdict {
        let name = BucketName::new(bucket).ok();
        let cfg = match &name {
            Some(n) => self.layer.get_bucket_config(n).await.ok(),
            None => None,
        };
        let mut policy = self.bucket_policy(bucket, cfg.as_ref());
        // RestrictPublicBuckets: a public policy grants nothing to callers
        // from outside the account (here: anonymous ones)
        if caller.is_none()
            && cfg
                .as_ref()
                .and_then(|c| c.public_access_block)
                .is_some_and(|b| b.restrict_public_buckets)
            && policy.as_deref().is_some_and(Policy::is_public)
        {
            policy = None;
        }
        // the grants once: for the tag question and for the decision
        let grants = caller.map(|c| self.iam.grants(c)).unwrap_or_default();
        let mut extra;
        let mut context = ctx;
        if let Some(k) = key
            && needs_tags(&grants, policy.as_deref())
        {
            extra = ctx.clone();
            self.add_existing_tags(bucket, k, &mut extra).await;
            context = &extra;
        }
        let resource = s3_arn(bucket, key);
        let question = Question {
            caller,
            action,
            resource: &resource,
            context,
            bucket_policy: policy.as_deref(),
        };
        let verdict = self.iam.decide_with(&question, &grants);
        if verdict != Verdict::NotAllowed {
            return verdict;
        }
        let (Some(cfg), Some(name)) = (cfg, name) else {
            return verdict;
        };
        let object = key.and_then(|k| ObjectKey::new(k).ok());
        let version = context
            .get("s3:VersionId")
            .and_then(<[String]>::first)
            .map(String::as_str);
        let Ok(version_id) = crate::convert::version_param(version) else {
            return verdict;
        };
        let target = object.as_ref().map(|k| (&name, k, version_id));
        match crate::acl::effective_acl(self.layer.as_ref(), &cfg, target, action).await {
            Some(acl) => self.iam.decide_acl(&question, &grants, &acl),
            None => verdict,
        }
    }

    async fn add_existing_tags(&self, bucket: &str, key: &str, ctx: &mut Context) {
        let (Ok(b), Ok(k)) = (BucketName::new(bucket), ObjectKey::new(key)) else {
            return;
        };
        if let Ok(info) = self.layer.head_object(&b, &k, &Conditions::default()).await {
            for (tk, tv) in &info.attrs.tags.0 {
                ctx.set(&format!("s3:ExistingObjectTag/{tk}"), tv.clone());
            }
        }
    }

    /// Notes in `ext` that the root user signed the request (no policy
    /// applies to it).
    pub(crate) fn admit_root(self: &Arc<Self>, caller: Caller, ext: &mut http::Extensions) {
        ext.insert(Authorized {
            caller: Some(caller),
            context: Arc::new(Context::new()),
            authz: self.clone(),
        });
    }

    /// Decides one S3 request of a caller other than the root user
    /// (`None`: anonymous); notes [`Authorized`] in `ext` for its handler.
    pub(crate) async fn check(
        self: &Arc<Self>,
        ask: &Ask<'_>,
        caller: Option<Caller>,
        ext: &mut http::Extensions,
    ) -> S3Result<()> {
        let mut context = request_context(ask.headers, ask.uri, ask.conn, caller.is_some());
        // the caller's own keys once per request, not once per question
        let principal = self.iam.principal(caller.as_ref());
        self.iam
            .caller_context(caller.as_ref(), &principal, &mut context);
        let context = Arc::new(context);
        let authorized = Authorized {
            caller,
            context,
            authz: self.clone(),
        };
        ext.insert(authorized.clone());
        // what is decided goes to the audit log (crate::audit)
        let audit = crate::audit::notes(ext).cloned().unwrap_or_default();
        let caller = authorized.caller.as_ref();
        match ask.op {
            // filtered by its handler (nothing to list for anonymous)
            "ListBuckets" if caller.is_some() => {
                audit.action("s3:ListAllMyBuckets");
                return Ok(());
            }
            // decided per key by its handler
            "DeleteObjects" => {
                audit.action("s3:DeleteObject");
                return Ok(());
            }
            _ => {}
        }
        let versioned = query_pairs(ask.uri).iter().any(|(k, _)| k == "versionId");
        let Some((action, scope)) = s3_action(ask.op, versioned) else {
            tracing::debug!(op = ask.op, "operation without an IAM action refused");
            audit.decided(None, None, Decision::Deny);
            return Err(denied());
        };
        let resource = crate::audit::s3_resource(scope, ask.bucket, ask.key);
        let verdict = match (scope, ask.bucket) {
            (Scope::Account, _) => self.iam.decide(&Question {
                caller,
                action,
                resource: "*",
                context: &authorized.context,
                bucket_policy: None,
            }),
            (Scope::Bucket, Some(b)) => {
                self.verdict(caller, &authorized.context, action, b, None)
                    .await
            }
            (Scope::Object, Some(b)) => {
                self.verdict(caller, &authorized.context, action, b, ask.key)
                    .await
            }
            (_, None) => Verdict::NotAllowed,
        };
        audit.decided(
            Some(action.name()),
            Some(&resource),
            Decision::of(verdict == Verdict::Allowed),
        );
        if verdict != Verdict::Allowed {
            tracing::debug!(op = ask.op, action = action.name(), bucket = ?ask.bucket, key = ?ask.key, ?verdict, "request refused by policy");
            return Err(denied());
        }
        if bypasses_governance(ask.headers)
            && matches!(ask.op, "DeleteObject" | "PutObjectRetention")
            && self
                .verdict(
                    caller,
                    &authorized.context,
                    bypass_action(),
                    ask.bucket.unwrap_or_default(),
                    ask.key,
                )
                .await
                != Verdict::Allowed
        {
            tracing::debug!(
                op = ask.op,
                "governance bypass refused: no s3:BypassGovernanceRetention"
            );
            let bypass = bypass_action();
            audit.decided(Some(bypass.name()), Some(&resource), Decision::Deny);
            return Err(denied());
        }
        // a replica's version id and status only from a replicating caller
        if let Some(name) = crate::replication::replicate_action(ask.op, ask.headers) {
            let allowed = match Action::from_name(name) {
                Some(a) => {
                    self.verdict(
                        caller,
                        &authorized.context,
                        a,
                        ask.bucket.unwrap_or_default(),
                        ask.key,
                    )
                    .await
                        == Verdict::Allowed
                }
                None => false,
            };
            if !allowed {
                tracing::debug!(
                    op = ask.op,
                    "replica headers refused: no s3:Replicate* right"
                );
                audit.decided(Some(name), Some(&resource), Decision::Deny);
                return Err(denied());
            }
        }
        if matches!(ask.op, "CopyObject" | "UploadPartCopy")
            && let Some((sb, sk, sv)) = copy_source(ask.headers)
        {
            let v = self
                .verdict(
                    caller,
                    &authorized.context,
                    copy_source_action(sv),
                    &sb,
                    Some(&sk),
                )
                .await;
            if v != Verdict::Allowed {
                tracing::debug!(source_bucket = %sb, source_key = %sk, "copy refused: no read right on the source");
                let source = s3_arn(&sb, Some(&sk));
                let read = copy_source_action(sv);
                audit.decided(Some(read.name()), Some(&source), Decision::Deny);
                return Err(denied());
            }
        }
        Ok(())
    }
}

impl Authorized {
    /// Whether the caller may do `action` on `bucket` (and `key`).
    pub(crate) async fn may(&self, action: &str, bucket: &str, key: Option<&str>) -> bool {
        if self
            .caller
            .as_ref()
            .is_some_and(|c| c.identity == cairn_iam::Identity::Root)
        {
            return true;
        }
        let Some(action) = Action::from_name(action) else {
            return false;
        };
        self.authz
            .verdict(self.caller.as_ref(), &self.context, action, bucket, key)
            .await
            == Verdict::Allowed
    }

    /// Whether ListBuckets shows `bucket`: the caller may list it or ask
    /// where it is.
    pub(crate) async fn may_see_bucket(&self, bucket: &str) -> bool {
        self.may("s3:ListBucket", bucket, None).await
            || self.may("s3:GetBucketLocation", bucket, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_are_parsed() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-copy-source",
            "/b/dir%20x/k?versionId=3".parse().unwrap(),
        );
        assert_eq!(copy_source(&h), Some(("b".into(), "dir x/k".into(), true)));
        h.insert("x-amz-copy-source", "b/k".parse().unwrap());
        assert_eq!(copy_source(&h), Some(("b".into(), "k".into(), false)));
        h.insert("x-amz-copy-source", "nokey".parse().unwrap());
        assert_eq!(copy_source(&h), None);
    }

    #[test]
    fn request_keys() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-tagging", "a=1&b=two".parse().unwrap());
        h.insert("x-amz-server-side-encryption", "AES256".parse().unwrap());
        let uri: Uri = "/b?prefix=p%2F&delimiter=%2F&max-keys=5".parse().unwrap();
        let conn = ConnInfo {
            peer: "[::ffff:10.1.2.3]:5000".parse().unwrap(),
            tls: true,
        };
        let c = request_context(&h, &uri, Some(&conn), true);
        let one = |k: &str| c.get(k).and_then(|v| v.first()).cloned();
        assert_eq!(one("aws:SourceIp").as_deref(), Some("10.1.2.3"));
        assert_eq!(one("aws:SecureTransport").as_deref(), Some("true"));
        assert_eq!(one("s3:prefix").as_deref(), Some("p/"));
        assert_eq!(one("s3:delimiter").as_deref(), Some("/"));
        assert_eq!(one("s3:max-keys").as_deref(), Some("5"));
        assert_eq!(one("s3:RequestObjectTag/b").as_deref(), Some("two"));
        assert_eq!(
            c.get("s3:RequestObjectTagKeys").map(<[String]>::len),
            Some(2)
        );
        assert_eq!(
            one("s3:x-amz-server-side-encryption").as_deref(),
            Some("AES256")
        );
        assert_eq!(one("s3:authType").as_deref(), Some("REST-HEADER"));
        assert!(one("aws:CurrentTime").is_some());
    }
}
