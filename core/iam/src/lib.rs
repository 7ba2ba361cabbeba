//! Identity and access for Cairn: AWS IAM policy documents, parsed and
//! checked once, evaluated per request as AWS evaluates them.
//!
//! One engine answers every front (S3, the mount, the export, the admin
//! API): a front builds a [`Request`] (action, resource ARN, principal,
//! condition keys) and asks [`evaluate_all`] over the caller's policies.
//! Nothing here does I/O.

#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

pub mod acl;
mod action;
mod authz;
mod bucketpolicy;
mod builtin;
mod condition;
mod context;
mod doc;
mod entities;
mod glob;
mod grants;
mod layer;
mod model;
mod policy;
pub mod s3ops;
mod service;
pub mod sts;
mod template;

pub use acl::{Acl, AclCheck, AclTarget, acl_target};
pub use action::Action;
pub use authz::{Verdict, decide, decide_acl, is_allowed};
pub use bucketpolicy::{BucketPolicies, s3_arn};
pub use builtin::{builtin, builtin_document, builtin_names};
pub use context::{Context, Principal, PrincipalType, Request};
pub use doc::{IdentityDoc, TrustDoc};
pub use entities::{AccessKey, Entity, Group, KeyKind, ManagedPolicy, Role, Secs, Status, User};
pub use grants::{Grants, Identity};
pub use layer::IdentityLayer;
pub use model::{IamError, IamState, ServiceAccountSpec, Target};
pub use policy::{Decision, Effect, Policy, PolicyKind, evaluate_all};
pub use service::{
    Caller, CallerError, DEFAULT_ACCOUNT, Iam, IamConfig, IamServiceError, Question, canonical_id,
    session_claims,
};

/// Why a policy document was refused (S3 and IAM answer these as
/// `MalformedPolicy` / `MalformedPolicyDocument`, with this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy is not valid: {0}")]
    Syntax(String),
    #[error("policy is too large: {size} characters, at most {max}")]
    TooLarge { size: usize, max: usize },
    #[error("policy Version {0} is not 2012-10-17 or 2008-10-17")]
    Version(String),
    #[error("policy has an unknown action {0:?}")]
    UnknownAction(String),
    #[error("policy has an unknown condition operator {0:?}")]
    UnknownOperator(String),
    #[error("policy condition is not valid: {0}")]
    Condition(String),
    #[error("policy has an invalid resource {0:?}: it must be \"*\" or an ARN")]
    Resource(String),
}

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
