//! ACLs as S3 has them: canned ACLs (`x-amz-acl`), grant headers
//! (`x-amz-grant-*`) and `AccessControlPolicy` bodies, turned into a
//! [`cairn_api::acl::Acl`] and checked against the bucket's ownership
//! controls and public access block before it is stored (a bucket's in
//! its configuration, an object's with its version); Get/Put Bucket/Object
//! Acl. Who an ACL lets in is decided in cairn-iam (`AclCheck`).

use cairn_api::BucketConfig;
use cairn_api::acl::{Acl, CannedAcl, Grant, Grantee, Group, ObjectOwnership, Permission};
use cairn_api::{BucketChange, VersionChange};
use s3s::dto;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::convert::{bucket_name, object_key, version_param};
use crate::errors::{IntoS3 as _, invalid_argument};
use crate::service::{CairnS3, OWNER_NAME};

/// The ACL headers of a request, as given.
#[derive(Debug, Clone, Default)]
pub(crate) struct AclHeaders {
    pub(crate) canned: Option<String>,
    pub(crate) read: Option<String>,
    pub(crate) write: Option<String>,
    pub(crate) read_acp: Option<String>,
    pub(crate) write_acp: Option<String>,
    pub(crate) full_control: Option<String>,
}

/// The ACL headers of an s3s input (all of them have the same names but
/// `grant_write`, which only bucket requests have).
#[macro_export]
#[doc(hidden)]
macro_rules! acl_headers {
    ($input:expr, $write:expr) => {{
        let input = &$input;
        $crate::acl::AclHeaders {
            canned: input.acl.as_ref().map(|a| a.as_str().to_owned()),
            read: input.grant_read.clone(),
            write: $write,
            read_acp: input.grant_read_acp.clone(),
            write_acp: input.grant_write_acp.clone(),
            full_control: input.grant_full_control.clone(),
        }
    }};
}

fn invalid_request(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, message.into())
}

fn unresolvable_email() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::UnresolvableGrantByEmailAddress,
        "The e-mail address you provided does not match any account on record.",
    )
}

/// A canonical user id as Cairn makes them: 64 hex digits (lowercased).
fn canonical_user(id: &str) -> S3Result<Grantee> {
    let id = id.trim();
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(Grantee::User(id.to_ascii_lowercase()))
    } else {
        Err(invalid_argument("Invalid id"))
    }
}

fn group(uri: &str) -> S3Result<Grantee> {
    Group::from_uri(uri.trim())
        .map(Grantee::Group)
        .ok_or_else(|| invalid_argument(format!("Invalid group uri {uri:?}")))
}

/// One `x-amz-grant-*` header: `id="..."`, `uri="..."` or
/// `emailAddress="..."`, comma separated.
fn parse_grant_header(value: &str, permission: Permission, out: &mut Vec<Grant>) -> S3Result<()> {
    for item in value.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (kind, v) = item
            .split_once('=')
            .ok_or_else(|| invalid_argument(format!("grant {item:?} is not key=value")))?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .unwrap_or(v);
        let grantee = match kind.trim().to_ascii_lowercase().as_str() {
            "id" => canonical_user(v)?,
            "uri" => group(v)?,
            "emailaddress" => return Err(unresolvable_email()),
            other => {
                return Err(invalid_argument(format!(
                    "grantee type {other:?} is not id, uri or emailAddress"
                )));
            }
        };
        out.push(Grant {
            grantee,
            permission,
        });
    }
    Ok(())
}

impl AclHeaders {
    fn has_grants(&self) -> bool {
        self.read.is_some()
            || self.write.is_some()
            || self.read_acp.is_some()
            || self.write_acp.is_some()
            || self.full_control.is_some()
    }

    /// The ACL the headers ask for (`None`: they ask for none).
    pub(crate) fn acl(&self, owner: &str) -> S3Result<Option<Acl>> {
        if let Some(c) = &self.canned {
            if self.has_grants() {
                return Err(invalid_request(
                    "Specifying both Canned ACLs and Header Grants is not allowed",
                ));
            }
            let canned = CannedAcl::parse(c)
                .ok_or_else(|| invalid_argument(format!("canned ACL {c:?} is not known")))?;
            return Ok(Some(Acl::canned(canned, owner)));
        }
        if !self.has_grants() {
            return Ok(None);
        }
        let mut grants = Vec::new();
        for (value, permission) in [
            (&self.full_control, Permission::FullControl),
            (&self.read, Permission::Read),
            (&self.write, Permission::Write),
            (&self.read_acp, Permission::ReadAcp),
            (&self.write_acp, Permission::WriteAcp),
        ] {
            if let Some(v) = value {
                parse_grant_header(v, permission, &mut grants)?;
            }
        }
        Ok(Some(Acl {
            owner: owner.to_owned(),
            grants,
        }))
    }
}

/// An `AccessControlPolicy` body as an ACL of `owner`.
fn acl_from_body(body: AccessControlPolicy, owner: &str) -> S3Result<Acl> {
    if let Some(id) = body.owner.as_ref().and_then(|o| o.id.as_deref())
        && id != owner
    {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "The owner of an ACL cannot be changed.",
        ));
    }
    let malformed = |m: &str| S3Error::with_message(S3ErrorCode::MalformedACLError, m.to_owned());
    let mut grants = Vec::new();
    for g in body.grants.unwrap_or_default() {
        let grantee = g
            .grantee
            .ok_or_else(|| malformed("a grant has no Grantee"))?;
        let permission = g
            .permission
            .as_ref()
            .and_then(|p| Permission::parse(p.as_str()))
            .ok_or_else(|| malformed("a grant has no valid Permission"))?;
        let grantee = match grantee.type_.as_str() {
            dto::Type::CANONICAL_USER => canonical_user(
                grantee
                    .id
                    .as_deref()
                    .ok_or_else(|| malformed("a CanonicalUser grantee has no ID"))?,
            )?,
            dto::Type::GROUP => group(
                grantee
                    .uri
                    .as_deref()
                    .ok_or_else(|| malformed("a Group grantee has no URI"))?,
            )?,
            dto::Type::AMAZON_CUSTOMER_BY_EMAIL => return Err(unresolvable_email()),
            other => return Err(malformed(&format!("grantee type {other:?} is not known"))),
        };
        grants.push(Grant {
            grantee,
            permission,
        });
    }
    Ok(Acl {
        owner: owner.to_owned(),
        grants,
    })
}

/// Whether the bucket's ownership controls switch ACLs off.
pub(crate) fn acls_disabled(cfg: &BucketConfig) -> bool {
    cfg.ownership == Some(ObjectOwnership::BucketOwnerEnforced)
}

/// Whether ACL `acl` may be set in a bucket configured as `cfg`: not
/// with ACLs disabled (but the default, which is what
/// `bucket-owner-full-control` is here), not a public one under
/// BlockPublicAcls. Returns what is stored (`None`: the default).
pub(crate) fn check_acl_write(cfg: &BucketConfig, acl: Acl) -> S3Result<Option<Acl>> {
    if acls_disabled(cfg) && !acl.is_private() {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessControlListNotSupported,
            "The bucket does not allow ACLs",
        ));
    }
    if acl.is_public() && cfg.public_access_block.is_some_and(|b| b.block_public_acls) {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Access Denied: the bucket's public access block refuses public ACLs",
        ));
    }
    Ok(acl.stored())
}

/// The ACL the ACL step of authorization asks for `action` (asked when
/// no policy allowed a request and none denied it): the bucket's (bucket
/// actions and writes into it) or the object version's (reads of it).
/// `None` when no ACL can allow the action, when the bucket's ownership
/// controls switch ACLs off or when the ACL is the default (the owner
/// alone, who is the root user); public grants left out under
/// IgnorePublicAcls. The object's ACL costs a metadata read, so only
/// this path reads it.
pub(crate) async fn effective_acl(
    layer: &dyn cairn_api::ObjectLayer,
    cfg: &BucketConfig,
    object: Option<(
        &cairn_api::BucketName,
        &cairn_api::ObjectKey,
        Option<Option<String>>,
    )>,
    action: cairn_iam::Action,
) -> Option<Acl> {
    use cairn_iam::AclTarget;
    if acls_disabled(cfg) {
        return None;
    }
    let stored = match cairn_iam::acl_target(action)? {
        AclTarget::Bucket => cfg.acl.clone(),
        AclTarget::Object => {
            let (bucket, key, version_id) = object?;
            let opts = cairn_api::GetOptions {
                version_id,
                attributes_only: true,
                ..Default::default()
            };
            layer
                .head_object_with(bucket, key, &opts)
                .await
                .ok()?
                .attrs
                .acl
        }
    }?;
    let ignore_public = cfg
        .public_access_block
        .is_some_and(|b| b.ignore_public_acls);
    Some(if ignore_public {
        stored.without_public()
    } else {
        stored
    })
}

impl CairnS3 {
    /// The ACL an object write asks for, checked against the bucket
    /// (`None`: the default; no bucket read when no ACL header is given).
    pub(crate) async fn request_acl(
        &self,
        bucket: &cairn_api::BucketName,
        headers: &AclHeaders,
    ) -> S3Result<Option<Acl>> {
        let Some(acl) = headers.acl(&self.owner_id)? else {
            return Ok(None);
        };
        let cfg = self.layer.get_bucket_config(bucket).await.s3()?;
        check_acl_write(&cfg, acl)
    }

    /// The ACL of a Put*Acl request: headers or body, one of them.
    fn put_acl_input(
        &self,
        headers: &AclHeaders,
        body: Option<AccessControlPolicy>,
    ) -> S3Result<Acl> {
        match (headers.acl(&self.owner_id)?, body) {
            (Some(_), Some(_)) => Err(invalid_request(
                "Specifying both an ACL in the body and ACL headers is not allowed",
            )),
            (Some(acl), None) => Ok(acl),
            (None, Some(body)) => acl_from_body(body, &self.owner_id),
            (None, None) => Err(S3Error::with_message(
                S3ErrorCode::MissingSecurityHeader,
                "Your request was missing a required header: an ACL",
            )),
        }
    }

    fn acl_out(&self, acl: Option<&Acl>) -> (Option<Owner>, Option<Grants>) {
        let private = Acl::private(&self.owner_id);
        let acl = acl.unwrap_or(&private);
        let grants = acl
            .grants
            .iter()
            .map(|g| {
                let (type_, id, uri, display_name) = match &g.grantee {
                    Grantee::User(id) => (
                        dto::Type::CANONICAL_USER,
                        Some(id.clone()),
                        None,
                        (*id == self.owner_id).then(|| OWNER_NAME.to_owned()),
                    ),
                    Grantee::Group(grp) => {
                        (dto::Type::GROUP, None, Some(grp.uri().to_owned()), None)
                    }
                };
                dto::Grant {
                    grantee: Some(dto::Grantee {
                        display_name,
                        email_address: None,
                        id,
                        type_: dto::Type::from_static(type_),
                        uri,
                    }),
                    permission: Some(dto::Permission::from(g.permission.as_str().to_owned())),
                }
            })
            .collect();
        (Some(self.owner()), Some(grants))
    }

    pub(crate) async fn do_get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let acl = cfg.acl.as_ref().filter(|_| !acls_disabled(&cfg));
        let (owner, grants) = self.acl_out(acl);
        Ok(S3Response::new(GetBucketAclOutput { owner, grants }))
    }

    pub(crate) async fn do_put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let headers = crate::acl_headers!(input, input.grant_write.clone());
        let acl = self.put_acl_input(&headers, input.access_control_policy)?;
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let stored = check_acl_write(&cfg, acl)?;
        self.layer
            .update_bucket_config(&bucket, BucketChange::Acl(stored))
            .await
            .s3()?;
        Ok(S3Response::new(PutBucketAclOutput::default()))
    }

    pub(crate) async fn do_get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let info = self
            .version_info(
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
                false,
            )
            .await?;
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let acl = info.attrs.acl.as_ref().filter(|_| !acls_disabled(&cfg));
        let (owner, grants) = self.acl_out(acl);
        Ok(S3Response::new(GetObjectAclOutput {
            owner,
            grants,
            request_charged: None,
        }))
    }

    pub(crate) async fn do_put_object_acl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        if input.grant_write.is_some() {
            return Err(invalid_argument("WRITE is not a permission of objects"));
        }
        let canned = input.acl.is_some();
        let headers = crate::acl_headers!(input, None);
        let acl = self.put_acl_input(&headers, input.access_control_policy)?;
        // a canned public-read-write names WRITE, which S3 takes (and which
        // means nothing on an object); a grant of it is refused
        if !canned && acl.grants.iter().any(|g| g.permission == Permission::Write) {
            return Err(invalid_argument("WRITE is not a permission of objects"));
        }
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let stored = check_acl_write(&cfg, acl)?;
        self.layer
            .update_version(
                &bucket,
                &key,
                version_param(input.version_id.as_deref())?,
                VersionChange::Acl(stored),
            )
            .await
            .s3()?;
        Ok(S3Response::new(PutObjectAclOutput {
            request_charged: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> String {
        "0f".repeat(32)
    }

    #[test]
    fn grant_headers() {
        let id = "AB".repeat(32);
        let h = AclHeaders {
            read: Some(format!(
                "id=\"{id}\", uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""
            )),
            write_acp: Some("uri=http://acs.amazonaws.com/groups/global/AuthenticatedUsers".into()),
            ..Default::default()
        };
        let acl = h.acl(&owner()).unwrap().unwrap();
        assert_eq!(acl.grants.len(), 3);
        assert_eq!(
            acl.grants[0].grantee,
            Grantee::User(id.to_ascii_lowercase())
        );
        assert_eq!(acl.grants[1].grantee, Grantee::Group(Group::AllUsers));
        assert_eq!(acl.grants[2].permission, Permission::WriteAcp);
        assert!(acl.is_public());
    }

    #[test]
    fn bad_headers() {
        let code = |h: AclHeaders| h.acl(&owner()).unwrap_err().code().as_str().to_owned();
        let both = AclHeaders {
            canned: Some("private".into()),
            read: Some(format!("id=\"{}\"", owner())),
            ..Default::default()
        };
        assert_eq!(code(both), "InvalidRequest");
        let email = AclHeaders {
            read: Some("emailAddress=\"a@example.com\"".into()),
            ..Default::default()
        };
        assert_eq!(code(email), "UnresolvableGrantByEmailAddress");
        for bad in [
            "id=\"short\"",
            "uri=\"http://example.com/x\"",
            "nope",
            "foo=\"bar\"",
        ] {
            let h = AclHeaders {
                read: Some(bad.into()),
                ..Default::default()
            };
            assert_eq!(code(h), "InvalidArgument", "{bad}");
        }
        let unknown = AclHeaders {
            canned: Some("public".into()),
            ..Default::default()
        };
        assert_eq!(code(unknown), "InvalidArgument");
        assert!(AclHeaders::default().acl(&owner()).unwrap().is_none());
    }

    #[test]
    fn write_checks() {
        let public = Acl::canned(CannedAcl::PublicRead, &owner());
        let mut cfg = BucketConfig::default();
        assert!(check_acl_write(&cfg, public.clone()).unwrap().is_some());
        assert!(
            check_acl_write(&cfg, Acl::private(&owner()))
                .unwrap()
                .is_none()
        );
        cfg.public_access_block = Some(cairn_api::acl::PublicAccessBlock {
            block_public_acls: true,
            ..Default::default()
        });
        let e = check_acl_write(&cfg, public.clone()).unwrap_err();
        assert_eq!(e.code().as_str(), "AccessDenied");
        cfg.public_access_block = None;
        cfg.ownership = Some(ObjectOwnership::BucketOwnerEnforced);
        let e = check_acl_write(&cfg, public).unwrap_err();
        assert_eq!(e.code().as_str(), "AccessControlListNotSupported");
        let full = Acl::canned(CannedAcl::BucketOwnerFullControl, &owner());
        assert!(check_acl_write(&cfg, full).unwrap().is_none());
    }
}
