//! ACL evaluation: what a grant's permission lets its grantee do, with
//! AWS's table ("Mapping of ACL permissions and access policy
//! permissions" in the S3 user guide). An ACL only ever allows; it is
//! asked after the policies, when none allowed and none denied.
//!
//! A bucket's ACL decides the bucket's actions and the writes into it
//! (WRITE: s3:PutObject, s3:DeleteObject...); an object's ACL decides
//! the reads of that object. [`acl_target`] says which one an action
//! asks.

pub use cairn_api::acl::{
    Acl, CannedAcl, Grant, Grantee, Group, ObjectOwnership, Permission, PublicAccessBlock,
};

use crate::action::Action;
use crate::context::{Principal, PrincipalType};

/// Which ACL decides an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclTarget {
    Bucket,
    Object,
}

/// `(action, permission short of FULL_CONTROL that allows it, ACL)`.
const TABLE: &[(&str, Permission, AclTarget)] = {
    use AclTarget::{Bucket as B, Object as O};
    use Permission::{Read, ReadAcp, Write, WriteAcp};
    &[
        ("s3:ListBucket", Read, B),
        ("s3:ListBucketVersions", Read, B),
        ("s3:ListBucketMultipartUploads", Read, B),
        ("s3:PutObject", Write, B),
        ("s3:DeleteObject", Write, B),
        ("s3:DeleteObjectVersion", Write, B),
        // a grantee who may start an upload may end it
        ("s3:AbortMultipartUpload", Write, B),
        ("s3:ListMultipartUploadParts", Write, B),
        ("s3:GetBucketAcl", ReadAcp, B),
        ("s3:PutBucketAcl", WriteAcp, B),
        ("s3:GetObject", Read, O),
        ("s3:GetObjectVersion", Read, O),
        ("s3:GetObjectTorrent", Read, O),
        ("s3:GetObjectVersionTorrent", Read, O),
        ("s3:GetObjectAcl", ReadAcp, O),
        ("s3:GetObjectVersionAcl", ReadAcp, O),
        ("s3:PutObjectAcl", WriteAcp, O),
        ("s3:PutObjectVersionAcl", WriteAcp, O),
    ]
};

fn entry(action: Action) -> Option<(Permission, AclTarget)> {
    TABLE
        .iter()
        .find(|(name, _, _)| *name == action.name())
        .map(|&(_, p, t)| (p, t))
}

/// Which ACL may allow `action` (`None`: no ACL can).
pub fn acl_target(action: Action) -> Option<AclTarget> {
    entry(action).map(|(_, t)| t)
}

/// ACL evaluation (a trait: the data lives in cairn-api).
pub trait AclCheck {
    /// Whether a grant of this ACL lets `principal` do `action`: a grant
    /// to its canonical id, to AllUsers (anyone, unsigned included) or
    /// to AuthenticatedUsers (any signed caller), of the permission the
    /// action needs or of FULL_CONTROL.
    fn allows(&self, principal: &Principal, action: Action) -> bool;
}

impl AclCheck for Acl {
    fn allows(&self, principal: &Principal, action: Action) -> bool {
        let Some((needed, _)) = entry(action) else {
            return false;
        };
        self.grants.iter().any(|g| {
            (g.permission == needed || g.permission == Permission::FullControl)
                && names(&g.grantee, principal)
        })
    }
}

fn names(grantee: &Grantee, p: &Principal) -> bool {
    match grantee {
        Grantee::Group(Group::AllUsers) => true,
        Grantee::Group(Group::AuthenticatedUsers) => p.kind != PrincipalType::Anonymous,
        Grantee::Group(Group::LogDelivery) => false,
        Grantee::User(id) => p.canonical_id.as_deref() == Some(id.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(n: &str) -> Action {
        Action::from_name(n).unwrap()
    }

    fn user(id: &str) -> Principal {
        Principal {
            kind: PrincipalType::User,
            arn: "arn:aws:iam::000000000000:user/u".into(),
            account: "000000000000".into(),
            canonical_id: Some(id.into()),
            federated: None,
        }
    }

    fn grant(grantee: Grantee, permission: Permission) -> Acl {
        Acl {
            owner: "owner".into(),
            grants: vec![Grant {
                grantee,
                permission,
            }],
        }
    }

    #[test]
    fn table_names_known_actions() {
        for (name, _, _) in TABLE {
            assert!(Action::from_name(name).is_some(), "{name}");
        }
        assert_eq!(acl_target(act("s3:GetObject")), Some(AclTarget::Object));
        assert_eq!(acl_target(act("s3:PutObject")), Some(AclTarget::Bucket));
        assert_eq!(acl_target(act("s3:DeleteBucket")), None);
        assert_eq!(acl_target(act("s3:PutBucketPolicy")), None);
    }

    #[test]
    fn public_read() {
        let acl = Acl::canned(CannedAcl::PublicRead, "owner");
        let anon = Principal::anonymous();
        assert!(acl.allows(&anon, act("s3:GetObject")));
        assert!(acl.allows(&anon, act("s3:ListBucket")));
        assert!(!acl.allows(&anon, act("s3:PutObject")));
        assert!(!acl.allows(&anon, act("s3:GetObjectAcl")));
        assert!(!acl.allows(&anon, act("s3:DeleteBucket")));
        let prw = Acl::canned(CannedAcl::PublicReadWrite, "owner");
        assert!(prw.allows(&anon, act("s3:PutObject")));
        assert!(prw.allows(&anon, act("s3:DeleteObject")));
        assert!(!prw.allows(&anon, act("s3:PutBucketAcl")));
        // without its public grants nothing is left for others
        assert!(!prw.without_public().allows(&anon, act("s3:GetObject")));
    }

    #[test]
    fn authenticated_read_needs_a_signature() {
        let acl = Acl::canned(CannedAcl::AuthenticatedRead, "owner");
        assert!(!acl.allows(&Principal::anonymous(), act("s3:GetObject")));
        assert!(acl.allows(&user("someone"), act("s3:GetObject")));
        assert!(!acl.allows(&user("someone"), act("s3:PutObject")));
    }

    #[test]
    fn user_grants_by_permission() {
        let id = "ab".repeat(32);
        let u = user(&id);
        let other = user(&"cd".repeat(32));
        let read = grant(Grantee::User(id.clone()), Permission::Read);
        assert!(read.allows(&u, act("s3:GetObject")));
        assert!(read.allows(&u, act("s3:GetObjectVersion")));
        assert!(!read.allows(&other, act("s3:GetObject")));
        assert!(!read.allows(&Principal::anonymous(), act("s3:GetObject")));
        assert!(!read.allows(&u, act("s3:GetObjectAcl")));
        let racp = grant(Grantee::User(id.clone()), Permission::ReadAcp);
        assert!(racp.allows(&u, act("s3:GetObjectAcl")) && racp.allows(&u, act("s3:GetBucketAcl")));
        assert!(!racp.allows(&u, act("s3:GetObject")));
        let wacp = grant(Grantee::User(id.clone()), Permission::WriteAcp);
        assert!(wacp.allows(&u, act("s3:PutObjectAcl")) && wacp.allows(&u, act("s3:PutBucketAcl")));
        assert!(!wacp.allows(&u, act("s3:PutObject")));
        let full = grant(Grantee::User(id), Permission::FullControl);
        for (name, _, _) in TABLE {
            assert!(full.allows(&u, act(name)), "{name}");
        }
        assert!(!full.allows(&u, act("s3:DeleteBucket")));
        assert!(!full.allows(&u, act("s3:PutBucketPolicy")));
    }

    #[test]
    fn log_delivery_and_principals_without_id() {
        let acl = Acl::canned(CannedAcl::LogDeliveryWrite, "owner");
        assert!(!acl.allows(&Principal::anonymous(), act("s3:PutObject")));
        let mut u = user("owner");
        assert!(acl.allows(&u, act("s3:PutObject")), "the owner's own grant");
        u.canonical_id = None;
        assert!(!acl.allows(&u, act("s3:PutObject")));
    }
}
