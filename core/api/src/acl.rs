//! Access control lists as S3 keeps them: an owner and grants of a
//! permission to a canonical user or a group, on a bucket or an object
//! version; canned ACLs expanded; a bucket's public access block and
//! object ownership setting. Plain data: cairn-iam evaluates it
//! (`cairn_iam::AclCheck`), the S3 front reads and writes it.

use serde::{Deserialize, Serialize};

/// The URI of the group of everyone, signed or not.
pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// The URI of the group of every signed caller.
pub const AUTHENTICATED_USERS_URI: &str =
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
/// The URI of the log delivery group (server access logs).
pub const LOG_DELIVERY_URI: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// A predefined group a grant can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Group {
    AllUsers,
    AuthenticatedUsers,
    LogDelivery,
}

impl Group {
    pub fn uri(self) -> &'static str {
        match self {
            Group::AllUsers => ALL_USERS_URI,
            Group::AuthenticatedUsers => AUTHENTICATED_USERS_URI,
            Group::LogDelivery => LOG_DELIVERY_URI,
        }
    }

    /// The group a URI names (exactly as S3 spells it).
    pub fn from_uri(uri: &str) -> Option<Group> {
        [
            Group::AllUsers,
            Group::AuthenticatedUsers,
            Group::LogDelivery,
        ]
        .into_iter()
        .find(|g| g.uri() == uri)
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grantee {
    /// A canonical user id (64 hex digits).
    User(String),
    Group(Group),
}

/// What a grant gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    #[serde(rename = "READ")]
    Read,
    #[serde(rename = "WRITE")]
    Write,
    #[serde(rename = "READ_ACP")]
    ReadAcp,
    #[serde(rename = "WRITE_ACP")]
    WriteAcp,
    #[serde(rename = "FULL_CONTROL")]
    FullControl,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
            Permission::FullControl => "FULL_CONTROL",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        [
            Permission::Read,
            Permission::Write,
            Permission::ReadAcp,
            Permission::WriteAcp,
            Permission::FullControl,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// One grant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

/// An ACL: the owner's canonical id and the grants, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    pub owner: String,
    #[serde(default)]
    pub grants: Vec<Grant>,
}

/// The canned ACLs S3 knows (`x-amz-acl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedAcl {
    Private,
    PublicRead,
    PublicReadWrite,
    AuthenticatedRead,
    AwsExecRead,
    BucketOwnerRead,
    BucketOwnerFullControl,
    LogDeliveryWrite,
}

impl CannedAcl {
    pub fn parse(s: &str) -> Option<CannedAcl> {
        Some(match s {
            "private" => CannedAcl::Private,
            "public-read" => CannedAcl::PublicRead,
            "public-read-write" => CannedAcl::PublicReadWrite,
            "authenticated-read" => CannedAcl::AuthenticatedRead,
            "aws-exec-read" => CannedAcl::AwsExecRead,
            "bucket-owner-read" => CannedAcl::BucketOwnerRead,
            "bucket-owner-full-control" => CannedAcl::BucketOwnerFullControl,
            "log-delivery-write" => CannedAcl::LogDeliveryWrite,
            _ => return None,
        })
    }
}

impl Acl {
    /// The grants a canned ACL stands for. Every bucket and object of a
    /// deployment is owned by its account, so the object owner and the
    /// bucket owner of `bucket-owner-*` are one (one FULL_CONTROL grant),
    /// and `aws-exec-read`'s EC2 grant has no one to go to.
    pub fn canned(canned: CannedAcl, owner: &str) -> Acl {
        let group = |g, p| Grant {
            grantee: Grantee::Group(g),
            permission: p,
        };
        let mut grants = vec![Grant {
            grantee: Grantee::User(owner.to_owned()),
            permission: Permission::FullControl,
        }];
        match canned {
            CannedAcl::Private
            | CannedAcl::AwsExecRead
            | CannedAcl::BucketOwnerRead
            | CannedAcl::BucketOwnerFullControl => {}
            CannedAcl::PublicRead => grants.push(group(Group::AllUsers, Permission::Read)),
            CannedAcl::PublicReadWrite => {
                grants.push(group(Group::AllUsers, Permission::Read));
                grants.push(group(Group::AllUsers, Permission::Write));
            }
            CannedAcl::AuthenticatedRead => {
                grants.push(group(Group::AuthenticatedUsers, Permission::Read));
            }
            CannedAcl::LogDeliveryWrite => {
                grants.push(group(Group::LogDelivery, Permission::Write));
                grants.push(group(Group::LogDelivery, Permission::ReadAcp));
            }
        }
        Acl {
            owner: owner.to_owned(),
            grants,
        }
    }

    /// The default ACL (`private`): the owner has full control.
    pub fn private(owner: &str) -> Acl {
        Acl::canned(CannedAcl::Private, owner)
    }

    /// Whether this is the default ACL, which is kept as no ACL at all
    /// (so stores without ACLs take it).
    pub fn is_private(&self) -> bool {
        *self == Acl::private(&self.owner)
    }

    /// `None` for the default ACL, else the ACL: what a store keeps.
    pub fn stored(self) -> Option<Acl> {
        (!self.is_private()).then_some(self)
    }

    /// Whether a grant goes to everyone or to every signed caller (what
    /// BlockPublicAcls refuses and IgnorePublicAcls ignores).
    pub fn is_public(&self) -> bool {
        self.grants.iter().any(Grant::is_public)
    }

    /// This ACL without its public grants.
    pub fn without_public(&self) -> Acl {
        Acl {
            owner: self.owner.clone(),
            grants: self
                .grants
                .iter()
                .filter(|g| !g.is_public())
                .cloned()
                .collect(),
        }
    }
}

impl Grant {
    pub fn is_public(&self) -> bool {
        matches!(
            self.grantee,
            Grantee::Group(Group::AllUsers | Group::AuthenticatedUsers)
        )
    }
}

/// A bucket's public access block (all four settings default to off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    /// Put*Acl and writes with a public ACL are refused.
    #[serde(default)]
    pub block_public_acls: bool,
    /// Public grants of ACLs are ignored when access is decided.
    #[serde(default)]
    pub ignore_public_acls: bool,
    /// A public bucket policy is refused.
    #[serde(default)]
    pub block_public_policy: bool,
    /// A public bucket policy grants nothing to anonymous callers.
    #[serde(default)]
    pub restrict_public_buckets: bool,
}

/// A bucket's object ownership setting (ownership controls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectOwnership {
    /// ACLs are disabled: the bucket owner owns everything, ACLs other
    /// than `bucket-owner-full-control` are refused and none is consulted.
    BucketOwnerEnforced,
    BucketOwnerPreferred,
    ObjectWriter,
}

impl ObjectOwnership {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectOwnership::BucketOwnerEnforced => "BucketOwnerEnforced",
            ObjectOwnership::BucketOwnerPreferred => "BucketOwnerPreferred",
            ObjectOwnership::ObjectWriter => "ObjectWriter",
        }
    }

    pub fn parse(s: &str) -> Option<ObjectOwnership> {
        [
            ObjectOwnership::BucketOwnerEnforced,
            ObjectOwnership::BucketOwnerPreferred,
            ObjectOwnership::ObjectWriter,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_expansions() {
        let o = "ab".repeat(32);
        for c in [
            "private",
            "aws-exec-read",
            "bucket-owner-read",
            "bucket-owner-full-control",
        ] {
            let acl = Acl::canned(CannedAcl::parse(c).unwrap(), &o);
            assert!(acl.is_private() && acl.clone().stored().is_none(), "{c}");
        }
        let pr = Acl::canned(CannedAcl::PublicRead, &o);
        assert!(pr.is_public() && !pr.is_private());
        assert_eq!(pr.grants.len(), 2);
        assert!(Acl::canned(CannedAcl::AuthenticatedRead, &o).is_public());
        let log = Acl::canned(CannedAcl::LogDeliveryWrite, &o);
        assert!(!log.is_public() && log.grants.len() == 3);
        assert!(
            !Acl::canned(CannedAcl::PublicReadWrite, &o)
                .without_public()
                .is_public()
        );
        assert_eq!(CannedAcl::parse("Private"), None);
    }

    #[test]
    fn serde_round_trip() {
        let acl = Acl::canned(CannedAcl::PublicReadWrite, "x");
        let json = serde_json::to_string(&acl).unwrap();
        assert_eq!(serde_json::from_str::<Acl>(&json).unwrap(), acl);
        assert_eq!(Group::from_uri(ALL_USERS_URI), Some(Group::AllUsers));
        assert_eq!(Group::from_uri("http://example.com"), None);
    }
}
