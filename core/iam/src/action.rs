//! The actions a policy can name: every S3 operation's AWS action name,
//! the IAM and STS actions Cairn serves, and Cairn's admin and KMS
//! actions (named as MinIO names them, so MinIO policies read the same).

use std::sync::LazyLock;

use crate::PolicyError;
use crate::glob::Glob;

/// Every action Cairn knows, by its canonical name.
const ACTIONS: &[&str] = &[
    // S3
    "s3:AbortMultipartUpload",
    "s3:BypassGovernanceRetention",
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:DeleteBucketOwnershipControls",
    "s3:DeleteBucketPolicy",
    "s3:DeleteBucketWebsite",
    "s3:DeleteObject",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectVersionTagging",
    "s3:ForceDeleteBucket",
    "s3:GetAccelerateConfiguration",
    "s3:GetAnalyticsConfiguration",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketLocation",
    "s3:GetBucketLogging",
    "s3:GetBucketNotification",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPolicyStatus",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketRequestPayment",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetBucketWebsite",
    "s3:GetEncryptionConfiguration",
    "s3:GetIntelligentTieringConfiguration",
    "s3:GetInventoryConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetMetricsConfiguration",
    "s3:GetObject",
    "s3:GetObjectAcl",
    "s3:GetObjectAttributes",
    "s3:GetObjectLegalHold",
    "s3:GetObjectRetention",
    "s3:GetObjectTagging",
    "s3:GetObjectTorrent",
    "s3:GetObjectVersion",
    "s3:GetObjectVersionAcl",
    "s3:GetObjectVersionAttributes",
    "s3:GetObjectVersionForReplication",
    "s3:GetObjectVersionTagging",
    "s3:GetObjectVersionTorrent",
    "s3:GetReplicationConfiguration",
    "s3:ListAllMyBuckets",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:ListBucketVersions",
    "s3:ListMultipartUploadParts",
    "s3:ListenBucketNotification",
    "s3:ListenNotification",
    "s3:PutAccelerateConfiguration",
    "s3:PutAnalyticsConfiguration",
    "s3:PutBucketAcl",
    "s3:PutBucketCORS",
    "s3:PutBucketLogging",
    "s3:PutBucketNotification",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketRequestPayment",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutBucketWebsite",
    "s3:PutEncryptionConfiguration",
    "s3:PutIntelligentTieringConfiguration",
    "s3:PutInventoryConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutMetricsConfiguration",
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectLegalHold",
    "s3:PutObjectRetention",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionAcl",
    "s3:PutObjectVersionTagging",
    "s3:PutReplicationConfiguration",
    "s3:ReplicateDelete",
    "s3:ReplicateObject",
    "s3:ReplicateTags",
    "s3:RestoreObject",
    // IAM
    "iam:AddUserToGroup",
    "iam:AttachGroupPolicy",
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:CreateAccessKey",
    "iam:CreateGroup",
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:CreateRole",
    "iam:CreateServiceAccount",
    "iam:CreateUser",
    "iam:DeleteAccessKey",
    "iam:DeleteGroup",
    "iam:DeleteGroupPolicy",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:DeleteRole",
    "iam:DeleteRolePolicy",
    "iam:DeleteServiceAccount",
    "iam:DeleteUser",
    "iam:DeleteUserPolicy",
    "iam:DetachGroupPolicy",
    "iam:DetachRolePolicy",
    "iam:DetachUserPolicy",
    "iam:GetAccessKeyLastUsed",
    "iam:GetGroup",
    "iam:GetGroupPolicy",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:GetUser",
    "iam:GetUserPolicy",
    "iam:ListAccessKeys",
    "iam:ListAttachedGroupPolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListAttachedUserPolicies",
    "iam:ListGroupPolicies",
    "iam:ListGroups",
    "iam:ListGroupsForUser",
    "iam:ListPolicies",
    "iam:ListPolicyVersions",
    "iam:ListRolePolicies",
    "iam:ListRoles",
    "iam:ListServiceAccounts",
    "iam:ListUserPolicies",
    "iam:ListUsers",
    "iam:PassRole",
    "iam:PutGroupPolicy",
    "iam:PutRolePolicy",
    "iam:PutUserPolicy",
    "iam:RemoveUserFromGroup",
    "iam:SetDefaultPolicyVersion",
    "iam:UpdateAccessKey",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateGroup",
    "iam:UpdateServiceAccount",
    "iam:UpdateUser",
    // STS
    "sts:AssumeRole",
    "sts:AssumeRoleWithWebIdentity",
    "sts:GetCallerIdentity",
    "sts:GetSessionToken",
    "sts:TagSession",
    // Cairn's admin API (MinIO's names where MinIO has one)
    "admin:BandwidthMonitor",
    "admin:BucketWorm",
    "admin:ConsoleLog",
    "admin:Heal",
    "admin:LifecycleRun",
    "admin:OBDInfo",
    "admin:Profiling",
    "admin:Prometheus",
    "admin:ScannerControl",
    "admin:ServerInfo",
    "admin:ServerTrace",
    "admin:TopLocksInfo",
    // KMS
    "kms:CreateKey",
    "kms:KeyStatus",
    "kms:ListKeys",
    "kms:RotateKey",
    "kms:Status",
];

/// The services a pattern may name.
const SERVICES: &[&str] = &["s3", "iam", "sts", "admin", "kms"];

static LOWER: LazyLock<Vec<String>> =
    LazyLock::new(|| ACTIONS.iter().map(|a| a.to_ascii_lowercase()).collect());

/// One known action (what a request asks to do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Action(u16);

impl Action {
    /// The action named `name` (case-insensitive, as in AWS), if Cairn
    /// knows it.
    pub fn from_name(name: &str) -> Option<Action> {
        let lower = name.to_ascii_lowercase();
        LOWER
            .iter()
            .position(|a| *a == lower)
            .and_then(|i| u16::try_from(i).ok())
            .map(Action)
    }

    /// The canonical name, e.g. `s3:GetObject`.
    pub fn name(self) -> &'static str {
        ACTIONS
            .get(usize::from(self.0))
            .copied()
            .unwrap_or_default()
    }

    fn lower(self) -> &'static str {
        LOWER
            .get(usize::from(self.0))
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Every action Cairn knows.
    pub fn all() -> impl Iterator<Item = Action> {
        (0..ACTIONS.len()).filter_map(|i| u16::try_from(i).ok().map(Action))
    }
}

/// An `Action`/`NotAction` entry: `*`, `s3:*`, `s3:Get*`, `s3:GetObject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActionPattern {
    glob: Glob,
}

impl ActionPattern {
    /// Parses one entry, refusing a service or action Cairn does not know
    /// (a pattern must name at least one known action).
    pub(crate) fn parse(s: &str) -> Result<Self, PolicyError> {
        let lower = s.to_ascii_lowercase();
        if lower != "*" {
            let service = lower.split_once(':').map(|(svc, _)| svc);
            if !service.is_some_and(|svc| SERVICES.contains(&svc)) {
                return Err(PolicyError::UnknownAction(s.to_owned()));
            }
        }
        let pattern = ActionPattern {
            glob: Glob::new(&lower),
        };
        if !Action::all().any(|a| pattern.matches(a)) {
            return Err(PolicyError::UnknownAction(s.to_owned()));
        }
        Ok(pattern)
    }

    pub(crate) fn matches(&self, action: Action) -> bool {
        self.glob.matches(action.lower())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for a in Action::all() {
            assert!(seen.insert(a.name().to_ascii_lowercase()), "{}", a.name());
            assert_eq!(Action::from_name(a.name()), Some(a));
        }
        assert_eq!(
            Action::from_name("S3:getobject").map(Action::name),
            Some("s3:GetObject")
        );
        assert_eq!(Action::from_name("s3:Nope"), None);
    }

    #[test]
    fn patterns() {
        let get = Action::from_name("s3:GetObject").unwrap();
        let put = Action::from_name("s3:PutObject").unwrap();
        let p = ActionPattern::parse("s3:Get*").unwrap();
        assert!(p.matches(get) && !p.matches(put));
        assert!(ActionPattern::parse("*").unwrap().matches(put));
        assert!(ActionPattern::parse("S3:*").unwrap().matches(put));
        assert!(ActionPattern::parse("s3:getobject").unwrap().matches(get));
        for bad in ["s3:Nope", "s3:Nope*", "ec2:*", "GetObject", "", "s3"] {
            assert!(
                matches!(
                    ActionPattern::parse(bad),
                    Err(PolicyError::UnknownAction(_))
                ),
                "{bad}"
            );
        }
    }
}
