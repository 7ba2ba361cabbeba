//! The one authorization rule, for every front: combines what a caller
//! was granted ([`Grants`]) with the bucket's policy, as AWS does for a
//! request within one account.
//!
//! - An explicit Deny in any policy involved refuses (the root user's
//!   rights are not subject to bucket policies, as in MinIO).
//! - Otherwise the identity policies or the bucket policy must allow,
//!   and every boundary (a service account's or a session's own policy)
//!   must allow too.
//! - An anonymous caller has only what the bucket policy allows.

use crate::context::{PrincipalType, Request};
use crate::grants::Grants;
use crate::policy::{Decision, Policy, evaluate_all};

/// The answer to one authorization question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// A policy involved denies explicitly: nothing else may allow.
    Denied,
    /// No policy allows (an ACL may still grant it).
    NotAllowed,
}

/// Whether `req` is allowed for a caller with `grants`, given the
/// bucket's policy (if the bucket has one).
pub fn is_allowed(grants: &Grants, bucket_policy: Option<&Policy>, req: &Request<'_>) -> bool {
    decide(grants, bucket_policy, req) == Verdict::Allowed
}

/// Whether every boundary of `grants` (a service account's or a session's
/// policy) allows `req`: what lets an identity use an allow it was given.
fn bounded(grants: &Grants, req: &Request<'_>) -> Verdict {
    if grants
        .boundaries
        .iter()
        .all(|b| b.evaluate(req) == Decision::Allow)
    {
        Verdict::Allowed
    } else {
        Verdict::NotAllowed
    }
}

/// The ACL step, asked when [`decide`] found no Allow and no Deny: an ACL
/// grant (`acl_grants`: the ACL allows the request's principal and
/// action) is an allow of the resource, still limited by the caller's
/// boundaries as a bucket policy's is.
pub fn decide_acl(grants: &Grants, acl_grants: bool, req: &Request<'_>) -> Verdict {
    if !acl_grants {
        return Verdict::NotAllowed;
    }
    if req.principal.kind == PrincipalType::Anonymous {
        return Verdict::Allowed;
    }
    bounded(grants, req)
}

/// [`is_allowed`], telling an explicit Deny from no Allow.
pub fn decide(grants: &Grants, bucket_policy: Option<&Policy>, req: &Request<'_>) -> Verdict {
    let bounded = || bounded(grants, req);
    if grants.root {
        return bounded();
    }
    let bucket = bucket_policy.map_or(Decision::NotApplicable, |p| p.evaluate(req));
    if req.principal.kind == PrincipalType::Anonymous {
        return match bucket {
            Decision::Allow => Verdict::Allowed,
            Decision::Deny => Verdict::Denied,
            Decision::NotApplicable => Verdict::NotAllowed,
        };
    }
    let identity = evaluate_all(grants.identity.iter().map(|p| &**p), req);
    match identity.and(bucket) {
        Decision::Allow => bounded(),
        Decision::Deny => Verdict::Denied,
        Decision::NotApplicable => Verdict::NotAllowed,
    }
}
