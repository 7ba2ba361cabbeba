//! What a request brings to policy evaluation: who asks, what for, on
//! which resource, and the condition keys (`aws:SourceIp`, `s3:prefix`,
//! `jwt:sub`...) with their values.

use std::collections::HashMap;

use crate::action::Action;

/// What kind of caller a principal is (`aws:PrincipalType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalType {
    /// No signature: anonymous access, granted only by a bucket policy.
    Anonymous,
    /// The deployment's root user.
    Account,
    /// An IAM user (or one of its service accounts).
    User,
    /// Temporary credentials from AssumeRole.
    AssumedRole,
    /// Temporary credentials from a web identity (OIDC).
    FederatedUser,
}

impl PrincipalType {
    /// The value AWS gives `aws:PrincipalType`.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::Anonymous => "Anonymous",
            PrincipalType::Account => "Account",
            PrincipalType::User => "User",
            PrincipalType::AssumedRole => "AssumedRole",
            PrincipalType::FederatedUser => "FederatedUser",
        }
    }
}

/// Who makes a request, as a bucket policy's `Principal` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalType,
    /// The caller's ARN, e.g. `arn:aws:iam::<account>:user/alice`
    /// (empty for anonymous callers).
    pub arn: String,
    /// The deployment's account id.
    pub account: String,
    /// The canonical user id ACL grants name, if the caller has one.
    pub canonical_id: Option<String>,
    /// The identity provider of a federated caller.
    pub federated: Option<String>,
}

impl Principal {
    /// The unsigned caller.
    pub fn anonymous() -> Self {
        Principal {
            kind: PrincipalType::Anonymous,
            arn: String::new(),
            account: String::new(),
            canonical_id: None,
            federated: None,
        }
    }

    /// Whether an `"AWS": entry` of a `Principal` element names this
    /// caller: its ARN, its account id or the account's root ARN.
    pub(crate) fn is_aws(&self, entry: &str) -> bool {
        if entry == "*" {
            return true;
        }
        if self.kind == PrincipalType::Anonymous || entry.is_empty() {
            // an empty entry names nobody (a principal may lack an ARN
            // or account: a web identity in a trust evaluation)
            return false;
        }
        entry == self.arn
            || entry == self.account
            || entry
                .strip_prefix("arn:aws:iam::")
                .and_then(|rest| rest.strip_suffix(":root"))
                .is_some_and(|acct| acct == self.account)
    }
}

/// Condition keys and their values. Key names are case-insensitive (as
/// in AWS); values are kept as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    values: HashMap<String, Vec<String>>,
    /// The caller's own keys are in (`Iam::caller_context`): a decision
    /// takes this context as it is instead of copying it to add them.
    caller_keys: bool,
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to the single value `value`.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.values
            .insert(key.to_ascii_lowercase(), vec![value.into()]);
        self
    }

    /// Sets a multi-valued key (for `ForAnyValue:`/`ForAllValues:`).
    pub fn set_all(&mut self, key: &str, values: Vec<String>) -> &mut Self {
        self.values.insert(key.to_ascii_lowercase(), values);
        self
    }

    /// Whether `Iam::caller_context` added the caller's keys.
    pub fn has_caller_keys(&self) -> bool {
        self.caller_keys
    }

    pub(crate) fn mark_caller_keys(&mut self) {
        self.caller_keys = true;
    }

    /// The values of `key`, which must already be lowercase.
    pub(crate) fn get_lower(&self, key: &str) -> Option<&[String]> {
        self.values.get(key).map(Vec::as_slice)
    }

    /// The values of `key` (any case).
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.get_lower(&key.to_ascii_lowercase())
    }
}

/// One authorization question: may `principal` do `action` on
/// `resource`, given `context`?
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub action: Action,
    /// The resource ARN, e.g. `arn:aws:s3:::bucket/key` (`*` for actions
    /// on no resource, such as `s3:ListAllMyBuckets`).
    pub resource: &'a str,
    pub principal: &'a Principal,
    pub context: &'a Context,
}
