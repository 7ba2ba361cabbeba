//! Which IAM action each S3 operation is authorized as, and on what
//! (AWS's own table: "Amazon S3 actions" in the S3 user guide). The names
//! are AWS's operation names, which the S3 front's protocol crate uses.

use crate::action::Action;

/// What an action is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// No resource (`*`): ListBuckets.
    Account,
    /// `arn:aws:s3:::bucket`.
    Bucket,
    /// `arn:aws:s3:::bucket/key`.
    Object,
}

/// `(operation, action, action when a versionId is given, scope)`.
const TABLE: &[(&str, &str, Option<&str>, Scope)] = {
    use Scope::{Account as A, Bucket as B, Object as O};
    &[
        ("AbortMultipartUpload", "s3:AbortMultipartUpload", None, O),
        ("CompleteMultipartUpload", "s3:PutObject", None, O),
        // plus s3:GetObject(Version) on the source: see copy_source_action
        ("CopyObject", "s3:PutObject", None, O),
        ("CreateBucket", "s3:CreateBucket", None, B),
        ("CreateMultipartUpload", "s3:PutObject", None, O),
        ("DeleteBucket", "s3:DeleteBucket", None, B),
        (
            "DeleteBucketAnalyticsConfiguration",
            "s3:PutAnalyticsConfiguration",
            None,
            B,
        ),
        ("DeleteBucketCors", "s3:PutBucketCORS", None, B),
        (
            "DeleteBucketEncryption",
            "s3:PutEncryptionConfiguration",
            None,
            B,
        ),
        (
            "DeleteBucketIntelligentTieringConfiguration",
            "s3:PutIntelligentTieringConfiguration",
            None,
            B,
        ),
        (
            "DeleteBucketInventoryConfiguration",
            "s3:PutInventoryConfiguration",
            None,
            B,
        ),
        (
            "DeleteBucketLifecycle",
            "s3:PutLifecycleConfiguration",
            None,
            B,
        ),
        (
            "DeleteBucketMetricsConfiguration",
            "s3:PutMetricsConfiguration",
            None,
            B,
        ),
        (
            "DeleteBucketOwnershipControls",
            "s3:PutBucketOwnershipControls",
            None,
            B,
        ),
        ("DeleteBucketPolicy", "s3:DeleteBucketPolicy", None, B),
        (
            "DeleteBucketReplication",
            "s3:PutReplicationConfiguration",
            None,
            B,
        ),
        ("DeleteBucketTagging", "s3:PutBucketTagging", None, B),
        ("DeleteBucketWebsite", "s3:DeleteBucketWebsite", None, B),
        (
            "DeleteObject",
            "s3:DeleteObject",
            Some("s3:DeleteObjectVersion"),
            O,
        ),
        (
            "DeleteObjectTagging",
            "s3:DeleteObjectTagging",
            Some("s3:DeleteObjectVersionTagging"),
            O,
        ),
        // checked per key (s3:DeleteObject / s3:DeleteObjectVersion)
        (
            "DeleteObjects",
            "s3:DeleteObject",
            Some("s3:DeleteObjectVersion"),
            O,
        ),
        (
            "DeletePublicAccessBlock",
            "s3:PutBucketPublicAccessBlock",
            None,
            B,
        ),
        (
            "GetBucketAccelerateConfiguration",
            "s3:GetAccelerateConfiguration",
            None,
            B,
        ),
        ("GetBucketAcl", "s3:GetBucketAcl", None, B),
        (
            "GetBucketAnalyticsConfiguration",
            "s3:GetAnalyticsConfiguration",
            None,
            B,
        ),
        ("GetBucketCors", "s3:GetBucketCORS", None, B),
        (
            "GetBucketEncryption",
            "s3:GetEncryptionConfiguration",
            None,
            B,
        ),
        (
            "GetBucketIntelligentTieringConfiguration",
            "s3:GetIntelligentTieringConfiguration",
            None,
            B,
        ),
        (
            "GetBucketInventoryConfiguration",
            "s3:GetInventoryConfiguration",
            None,
            B,
        ),
        (
            "GetBucketLifecycleConfiguration",
            "s3:GetLifecycleConfiguration",
            None,
            B,
        ),
        ("GetBucketLocation", "s3:GetBucketLocation", None, B),
        ("GetBucketLogging", "s3:GetBucketLogging", None, B),
        (
            "GetBucketMetricsConfiguration",
            "s3:GetMetricsConfiguration",
            None,
            B,
        ),
        (
            "GetBucketNotificationConfiguration",
            "s3:GetBucketNotification",
            None,
            B,
        ),
        (
            "GetBucketOwnershipControls",
            "s3:GetBucketOwnershipControls",
            None,
            B,
        ),
        ("GetBucketPolicy", "s3:GetBucketPolicy", None, B),
        ("GetBucketPolicyStatus", "s3:GetBucketPolicyStatus", None, B),
        (
            "GetBucketReplication",
            "s3:GetReplicationConfiguration",
            None,
            B,
        ),
        (
            "GetBucketRequestPayment",
            "s3:GetBucketRequestPayment",
            None,
            B,
        ),
        ("GetBucketTagging", "s3:GetBucketTagging", None, B),
        ("GetBucketVersioning", "s3:GetBucketVersioning", None, B),
        ("GetBucketWebsite", "s3:GetBucketWebsite", None, B),
        ("GetObject", "s3:GetObject", Some("s3:GetObjectVersion"), O),
        (
            "GetObjectAcl",
            "s3:GetObjectAcl",
            Some("s3:GetObjectVersionAcl"),
            O,
        ),
        (
            "GetObjectAttributes",
            "s3:GetObjectAttributes",
            Some("s3:GetObjectVersionAttributes"),
            O,
        ),
        ("GetObjectLegalHold", "s3:GetObjectLegalHold", None, O),
        (
            "GetObjectLockConfiguration",
            "s3:GetBucketObjectLockConfiguration",
            None,
            B,
        ),
        ("GetObjectRetention", "s3:GetObjectRetention", None, O),
        (
            "GetObjectTagging",
            "s3:GetObjectTagging",
            Some("s3:GetObjectVersionTagging"),
            O,
        ),
        (
            "GetObjectTorrent",
            "s3:GetObjectTorrent",
            Some("s3:GetObjectVersionTorrent"),
            O,
        ),
        (
            "GetPublicAccessBlock",
            "s3:GetBucketPublicAccessBlock",
            None,
            B,
        ),
        ("HeadBucket", "s3:ListBucket", None, B),
        ("HeadObject", "s3:GetObject", Some("s3:GetObjectVersion"), O),
        (
            "ListBucketAnalyticsConfigurations",
            "s3:GetAnalyticsConfiguration",
            None,
            B,
        ),
        (
            "ListBucketIntelligentTieringConfigurations",
            "s3:GetIntelligentTieringConfiguration",
            None,
            B,
        ),
        (
            "ListBucketInventoryConfigurations",
            "s3:GetInventoryConfiguration",
            None,
            B,
        ),
        (
            "ListBucketMetricsConfigurations",
            "s3:GetMetricsConfiguration",
            None,
            B,
        ),
        ("ListBuckets", "s3:ListAllMyBuckets", None, A),
        // MinIO's `GET /bucket?events=...` (the S3 front's listen route)
        (
            "ListenBucketNotification",
            "s3:ListenBucketNotification",
            None,
            B,
        ),
        (
            "ListMultipartUploads",
            "s3:ListBucketMultipartUploads",
            None,
            B,
        ),
        ("ListObjectVersions", "s3:ListBucketVersions", None, B),
        ("ListObjects", "s3:ListBucket", None, B),
        ("ListObjectsV2", "s3:ListBucket", None, B),
        ("ListParts", "s3:ListMultipartUploadParts", None, O),
        ("PostObject", "s3:PutObject", None, O),
        (
            "PutBucketAccelerateConfiguration",
            "s3:PutAccelerateConfiguration",
            None,
            B,
        ),
        ("PutBucketAcl", "s3:PutBucketAcl", None, B),
        (
            "PutBucketAnalyticsConfiguration",
            "s3:PutAnalyticsConfiguration",
            None,
            B,
        ),
        ("PutBucketCors", "s3:PutBucketCORS", None, B),
        (
            "PutBucketEncryption",
            "s3:PutEncryptionConfiguration",
            None,
            B,
        ),
        (
            "PutBucketIntelligentTieringConfiguration",
            "s3:PutIntelligentTieringConfiguration",
            None,
            B,
        ),
        (
            "PutBucketInventoryConfiguration",
            "s3:PutInventoryConfiguration",
            None,
            B,
        ),
        (
            "PutBucketLifecycleConfiguration",
            "s3:PutLifecycleConfiguration",
            None,
            B,
        ),
        ("PutBucketLogging", "s3:PutBucketLogging", None, B),
        (
            "PutBucketMetricsConfiguration",
            "s3:PutMetricsConfiguration",
            None,
            B,
        ),
        (
            "PutBucketNotificationConfiguration",
            "s3:PutBucketNotification",
            None,
            B,
        ),
        (
            "PutBucketOwnershipControls",
            "s3:PutBucketOwnershipControls",
            None,
            B,
        ),
        ("PutBucketPolicy", "s3:PutBucketPolicy", None, B),
        (
            "PutBucketReplication",
            "s3:PutReplicationConfiguration",
            None,
            B,
        ),
        (
            "PutBucketRequestPayment",
            "s3:PutBucketRequestPayment",
            None,
            B,
        ),
        ("PutBucketTagging", "s3:PutBucketTagging", None, B),
        ("PutBucketVersioning", "s3:PutBucketVersioning", None, B),
        ("PutBucketWebsite", "s3:PutBucketWebsite", None, B),
        ("PutObject", "s3:PutObject", None, O),
        (
            "PutObjectAcl",
            "s3:PutObjectAcl",
            Some("s3:PutObjectVersionAcl"),
            O,
        ),
        ("PutObjectLegalHold", "s3:PutObjectLegalHold", None, O),
        (
            "PutObjectLockConfiguration",
            "s3:PutBucketObjectLockConfiguration",
            None,
            B,
        ),
        ("PutObjectRetention", "s3:PutObjectRetention", None, O),
        (
            "PutObjectTagging",
            "s3:PutObjectTagging",
            Some("s3:PutObjectVersionTagging"),
            O,
        ),
        (
            "PutPublicAccessBlock",
            "s3:PutBucketPublicAccessBlock",
            None,
            B,
        ),
        ("RestoreObject", "s3:RestoreObject", None, O),
        ("SelectObjectContent", "s3:GetObject", None, O),
        ("UploadPart", "s3:PutObject", None, O),
        // plus s3:GetObject(Version) on the source: see copy_source_action
        ("UploadPartCopy", "s3:PutObject", None, O),
    ]
};

/// The action S3 operation `operation` is authorized as (with a
/// `versionId` in the request when `versioned`), and its scope; `None`
/// for operations Cairn does not authorize (and so refuses).
pub fn s3_action(operation: &str, versioned: bool) -> Option<(Action, Scope)> {
    let (_, plain, version, scope) = TABLE.iter().find(|(op, ..)| *op == operation)?;
    let name = match (versioned, version) {
        (true, Some(v)) => v,
        _ => plain,
    };
    Action::from_name(name).map(|a| (a, *scope))
}

/// What a copy needs on its source object, besides the write of the
/// destination.
pub fn copy_source_action(versioned: bool) -> Action {
    let name = if versioned {
        "s3:GetObjectVersion"
    } else {
        "s3:GetObject"
    };
    Action::from_name(name).unwrap_or_else(|| unreachable!("s3:GetObject is in the action table"))
}

/// Every operation in the table (for the front's completeness test).
pub fn s3_operations() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(op, ..)| *op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_names_known_actions() {
        for (op, plain, version, _) in TABLE {
            assert!(Action::from_name(plain).is_some(), "{op}: {plain}");
            if let Some(v) = version {
                assert!(Action::from_name(v).is_some(), "{op}: {v}");
            }
            assert!(s3_action(op, false).is_some() && s3_action(op, true).is_some());
        }
        let ops: Vec<_> = s3_operations().collect();
        let mut sorted = ops.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ops.len(), sorted.len(), "no operation twice");
    }

    #[test]
    fn versions_and_scopes() {
        let name = |op, v| s3_action(op, v).map(|(a, s)| (a.name(), s));
        assert_eq!(
            name("GetObject", false),
            Some(("s3:GetObject", Scope::Object))
        );
        assert_eq!(
            name("GetObject", true),
            Some(("s3:GetObjectVersion", Scope::Object))
        );
        assert_eq!(
            name("HeadObject", true),
            Some(("s3:GetObjectVersion", Scope::Object))
        );
        assert_eq!(
            name("DeleteObject", true),
            Some(("s3:DeleteObjectVersion", Scope::Object))
        );
        assert_eq!(
            name("PutObjectRetention", true),
            Some(("s3:PutObjectRetention", Scope::Object))
        );
        assert_eq!(
            name("ListObjectsV2", false),
            Some(("s3:ListBucket", Scope::Bucket))
        );
        assert_eq!(
            name("HeadBucket", false),
            Some(("s3:ListBucket", Scope::Bucket))
        );
        assert_eq!(
            name("ListBuckets", false),
            Some(("s3:ListAllMyBuckets", Scope::Account))
        );
        assert_eq!(
            name("DeleteBucketLifecycle", false),
            Some(("s3:PutLifecycleConfiguration", Scope::Bucket))
        );
        assert_eq!(name("CreateSession", false), None);
        assert_eq!(name("WriteGetObjectResponse", false), None);
        assert_eq!(copy_source_action(true).name(), "s3:GetObjectVersion");
    }
}
