//! Bucket policies, public access blocks, ownership controls and ACLs
//! through aws-sdk-s3 against the real server: what is stored is what
//! Get* returns, bad input is refused with S3's codes and changes nothing.

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AccessControlPolicy, BucketCannedAcl, CompletedMultipartUpload, CompletedPart, Grant, Grantee,
    ObjectCannedAcl, ObjectOwnership, Owner, OwnershipControls, OwnershipControlsRule, Permission,
    PublicAccessBlockConfiguration, Type,
};
use cairn_tests::{Server, bucket_name, expect_err};

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTH_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

fn public_read_policy(bucket: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"pub","Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::{bucket}/*"]}}]}}"#
    )
}

fn private_policy(bucket: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::000000000000:user/alice"]}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    )
}

async fn policy_text(c: &Client, b: &str) -> Result<String> {
    Ok(c.get_bucket_policy()
        .bucket(b)
        .send()
        .await
        .context("GetBucketPolicy")?
        .policy()
        .unwrap_or_default()
        .to_owned())
}

async fn is_public(c: &Client, b: &str) -> Result<bool> {
    Ok(c.get_bucket_policy_status()
        .bucket(b)
        .send()
        .await
        .context("GetBucketPolicyStatus")?
        .policy_status()
        .and_then(|s| s.is_public())
        .unwrap_or(false))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_policy_round_trip_errors_and_public_access_block() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("policy");
    c.create_bucket().bucket(&b).send().await?;

    let r = c.get_bucket_policy().bucket(&b).send().await;
    expect_err(
        "GetBucketPolicy of none",
        r,
        404,
        Some("NoSuchBucketPolicy"),
    )?;
    let r = c.get_bucket_policy_status().bucket(&b).send().await;
    expect_err("status of none", r, 404, Some("NoSuchBucketPolicy"))?;

    // stored as given (whitespace and all), public
    let public = public_read_policy(&b).replace(",\"Effect\"", ",\n  \"Effect\"");
    c.put_bucket_policy()
        .bucket(&b)
        .policy(&public)
        .send()
        .await?;
    ensure!(policy_text(&c, &b).await? == public, "policy text changed");
    ensure!(is_public(&c, &b).await?, "Principal * is public");

    // every bad document is MalformedPolicy and leaves the policy as it was
    let big_sids: Vec<String> = (0..400)
        .map(|i| {
            format!(
                r#"{{"Sid":"s{i:04}","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/k{i}"}}"#
            )
        })
        .collect();
    let oversized = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        big_sids.join(",")
    );
    ensure!(oversized.len() > 20 * 1024);
    let bad = [
        (
            "malformed JSON",
            "{\"Version\": \"2012-10-17\", \"Statement\": [".to_owned(),
        ),
        (
            "unknown action",
            public_read_policy(&b).replace("s3:GetObject", "s3:GetObjectz"),
        ),
        (
            "unknown condition operator",
            public_read_policy(&b).replace(
                "\"Resource\"",
                "\"Condition\":{\"StringEqualz\":{\"aws:username\":\"x\"}},\"Resource\"",
            ),
        ),
        (
            "another bucket's resource",
            public_read_policy("some-other-bucket"),
        ),
        (
            "no Principal",
            private_policy(&b).replace("\"Principal\"", "\"Principalx\""),
        ),
        ("oversized", oversized),
    ];
    for (what, doc) in bad {
        let r = c.put_bucket_policy().bucket(&b).policy(doc).send().await;
        expect_err(what, r, 400, Some("MalformedPolicy"))?;
        ensure!(
            policy_text(&c, &b).await? == public,
            "{what}: the stored policy changed"
        );
    }

    let private = private_policy(&b);
    c.put_bucket_policy()
        .bucket(&b)
        .policy(&private)
        .send()
        .await?;
    ensure!(policy_text(&c, &b).await? == private);
    ensure!(
        !is_public(&c, &b).await?,
        "a policy naming one user is not public"
    );

    // BlockPublicPolicy refuses a public policy, keeps the one there
    let r = c.get_public_access_block().bucket(&b).send().await;
    expect_err(
        "GetPublicAccessBlock of none",
        r,
        404,
        Some("NoSuchPublicAccessBlockConfiguration"),
    )?;
    c.put_public_access_block()
        .bucket(&b)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_policy(true)
                .build(),
        )
        .send()
        .await?;
    let got = c.get_public_access_block().bucket(&b).send().await?;
    let cfg = got
        .public_access_block_configuration()
        .context("no configuration")?;
    ensure!(cfg.block_public_policy() == Some(true));
    ensure!(cfg.block_public_acls() == Some(false));
    ensure!(cfg.ignore_public_acls() == Some(false));
    ensure!(cfg.restrict_public_buckets() == Some(false));
    let r = c
        .put_bucket_policy()
        .bucket(&b)
        .policy(public_read_policy(&b))
        .send()
        .await;
    expect_err(
        "public policy under BlockPublicPolicy",
        r,
        403,
        Some("AccessDenied"),
    )?;
    ensure!(policy_text(&c, &b).await? == private);
    c.delete_public_access_block().bucket(&b).send().await?;
    let r = c.get_public_access_block().bucket(&b).send().await;
    expect_err(
        "PAB deleted",
        r,
        404,
        Some("NoSuchPublicAccessBlockConfiguration"),
    )?;
    c.put_bucket_policy()
        .bucket(&b)
        .policy(public_read_policy(&b))
        .send()
        .await?;

    c.delete_bucket_policy().bucket(&b).send().await?;
    let r = c.get_bucket_policy().bucket(&b).send().await;
    expect_err("policy deleted", r, 404, Some("NoSuchBucketPolicy"))?;
    Ok(())
}

/// The grants of an ACL as `(grantee, permission)`: a user's id or a
/// group's URI.
fn grant_set(grants: &[Grant]) -> BTreeSet<(String, String)> {
    grants
        .iter()
        .map(|g| {
            let who = g
                .grantee()
                .and_then(|e| e.id().or(e.uri()))
                .unwrap_or("?")
                .to_owned();
            let p = g.permission().map(|p| p.as_str()).unwrap_or("?").to_owned();
            (who, p)
        })
        .collect()
}

fn expected(owner: &str, extra: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    let mut set: BTreeSet<(String, String)> = extra
        .iter()
        .map(|(w, p)| ((*w).to_owned(), (*p).to_owned()))
        .collect();
    set.insert((owner.to_owned(), "FULL_CONTROL".to_owned()));
    set
}

async fn object_acl(c: &Client, b: &str, k: &str) -> Result<(String, BTreeSet<(String, String)>)> {
    let a = c
        .get_object_acl()
        .bucket(b)
        .key(k)
        .send()
        .await
        .with_context(|| format!("GetObjectAcl {k}"))?;
    let owner = a.owner().and_then(Owner::id).unwrap_or_default().to_owned();
    Ok((owner, grant_set(a.grants())))
}

async fn bucket_acl(c: &Client, b: &str) -> Result<(String, BTreeSet<(String, String)>)> {
    let a = c
        .get_bucket_acl()
        .bucket(b)
        .send()
        .await
        .context("GetBucketAcl")?;
    let owner = a.owner().and_then(Owner::id).unwrap_or_default().to_owned();
    Ok((owner, grant_set(a.grants())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canned_acls_are_stored_and_returned() -> Result<()> {
    let mut s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("canned");
    c.create_bucket()
        .bucket(&b)
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await?;
    // the owner is the account's canonical id, as ListBuckets shows it
    let listed = c.list_buckets().send().await?;
    let owner = listed
        .owner()
        .and_then(Owner::id)
        .context("no owner")?
        .to_owned();
    ensure!(
        owner.len() == 64 && owner.bytes().all(|x| x.is_ascii_hexdigit()),
        "owner id {owner}"
    );
    let (o, grants) = bucket_acl(&c, &b).await?;
    ensure!(o == owner, "bucket ACL owner {o} vs {owner}");
    ensure!(
        grants == expected(&owner, &[(ALL_USERS, "READ")]),
        "{grants:?}"
    );

    let cases: &[(&str, &[(&str, &str)])] = &[
        ("private", &[]),
        ("public-read", &[(ALL_USERS, "READ")]),
        (
            "public-read-write",
            &[(ALL_USERS, "READ"), (ALL_USERS, "WRITE")],
        ),
        ("authenticated-read", &[(AUTH_USERS, "READ")]),
        ("aws-exec-read", &[]),
        ("bucket-owner-read", &[]),
        ("bucket-owner-full-control", &[]),
    ];
    for (canned, extra) in cases {
        let k = format!("obj-{canned}");
        c.put_object()
            .bucket(&b)
            .key(&k)
            .acl(ObjectCannedAcl::from(*canned))
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .with_context(|| format!("PUT with {canned}"))?;
        let (o, got) = object_acl(&c, &b, &k).await?;
        ensure!(o == owner, "{canned}: owner {o}");
        ensure!(got == expected(&owner, extra), "{canned} on PUT: {got:?}");
        // the same through PutObjectAcl on a plain object
        let k2 = format!("later-{canned}");
        c.put_object()
            .bucket(&b)
            .key(&k2)
            .body(ByteStream::from_static(b"y"))
            .send()
            .await?;
        ensure!(
            object_acl(&c, &b, &k2).await?.1 == expected(&owner, &[]),
            "default"
        );
        c.put_object_acl()
            .bucket(&b)
            .key(&k2)
            .acl(ObjectCannedAcl::from(*canned))
            .send()
            .await
            .with_context(|| format!("PutObjectAcl {canned}"))?;
        ensure!(
            object_acl(&c, &b, &k2).await?.1 == expected(&owner, extra),
            "{canned} by PutObjectAcl"
        );
        // and on the bucket
        c.put_bucket_acl()
            .bucket(&b)
            .acl(BucketCannedAcl::from(*canned))
            .send()
            .await
            .with_context(|| format!("PutBucketAcl {canned}"))?;
        ensure!(
            bucket_acl(&c, &b).await?.1 == expected(&owner, extra),
            "{canned} on the bucket"
        );
    }
    c.put_bucket_acl()
        .bucket(&b)
        .acl(BucketCannedAcl::from("log-delivery-write"))
        .send()
        .await?;
    ensure!(
        bucket_acl(&c, &b).await?.1
            == expected(
                &owner,
                &[(LOG_DELIVERY, "WRITE"), (LOG_DELIVERY, "READ_ACP")]
            ),
        "log-delivery-write"
    );

    // a multipart upload keeps its ACL for Complete
    let up = c
        .create_multipart_upload()
        .bucket(&b)
        .key("mp")
        .acl(ObjectCannedAcl::AuthenticatedRead)
        .send()
        .await?;
    let id = up.upload_id().context("no upload id")?;
    let part = c
        .upload_part()
        .bucket(&b)
        .key("mp")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await?;
    c.complete_multipart_upload()
        .bucket(&b)
        .key("mp")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .set_e_tag(part.e_tag().map(str::to_owned))
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
    ensure!(
        object_acl(&c, &b, "mp").await?.1 == expected(&owner, &[(AUTH_USERS, "READ")]),
        "multipart ACL"
    );

    // a copy takes the ACL its request names, never its source's
    c.copy_object()
        .bucket(&b)
        .key("copy-plain")
        .copy_source(format!("{b}/obj-public-read"))
        .send()
        .await?;
    ensure!(
        object_acl(&c, &b, "copy-plain").await?.1 == expected(&owner, &[]),
        "copy"
    );
    c.copy_object()
        .bucket(&b)
        .key("copy-public")
        .copy_source(format!("{b}/obj-private"))
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await?;
    ensure!(
        object_acl(&c, &b, "copy-public").await?.1 == expected(&owner, &[(ALL_USERS, "READ")]),
        "copy with an ACL"
    );

    // kept across a restart
    s.restart().await?;
    let c = s.s3();
    ensure!(
        object_acl(&c, &b, "obj-public-read").await?.1 == expected(&owner, &[(ALL_USERS, "READ")]),
        "object ACL after restart"
    );
    ensure!(
        bucket_acl(&c, &b).await?.1
            == expected(
                &owner,
                &[(LOG_DELIVERY, "WRITE"), (LOG_DELIVERY, "READ_ACP")]
            ),
        "bucket ACL after restart"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_headers_and_access_control_policy_bodies() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("grants");
    c.create_bucket().bucket(&b).send().await?;
    let (owner, _) = bucket_acl(&c, &b).await?;
    let alice = "a1".repeat(32);
    let bob = "b0".repeat(32);

    // each x-amz-grant-* header on an object write
    c.put_object()
        .bucket(&b)
        .key("k")
        .grant_read(format!("id=\"{alice}\", uri=\"{ALL_USERS}\""))
        .grant_read_acp(format!("id=\"{bob}\""))
        .grant_write_acp(format!("uri=\"{AUTH_USERS}\""))
        .grant_full_control(format!("id=\"{owner}\""))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await?;
    let want: BTreeSet<(String, String)> = [
        (alice.as_str(), "READ"),
        (ALL_USERS, "READ"),
        (bob.as_str(), "READ_ACP"),
        (AUTH_USERS, "WRITE_ACP"),
        (owner.as_str(), "FULL_CONTROL"),
    ]
    .iter()
    .map(|(a, p)| ((*a).to_owned(), (*p).to_owned()))
    .collect();
    ensure!(object_acl(&c, &b, "k").await?.1 == want, "grant headers");

    // and on the bucket, WRITE included
    c.put_bucket_acl()
        .bucket(&b)
        .grant_write(format!("id=\"{alice}\""))
        .grant_read(format!("uri=\"{AUTH_USERS}\""))
        .send()
        .await?;
    let got = bucket_acl(&c, &b).await?.1;
    let want: BTreeSet<(String, String)> = [(alice.as_str(), "WRITE"), (AUTH_USERS, "READ")]
        .iter()
        .map(|(a, p)| ((*a).to_owned(), (*p).to_owned()))
        .collect();
    ensure!(got == want, "bucket grant headers: {got:?}");

    // an AccessControlPolicy body
    let grant = |g: Grantee, p: Permission| Grant::builder().grantee(g).permission(p).build();
    let body = AccessControlPolicy::builder()
        .owner(Owner::builder().id(&owner).build())
        .grants(grant(
            Grantee::builder()
                .r#type(Type::CanonicalUser)
                .id(&bob)
                .build()?,
            Permission::FullControl,
        ))
        .grants(grant(
            Grantee::builder()
                .r#type(Type::Group)
                .uri(ALL_USERS)
                .build()?,
            Permission::Read,
        ))
        .build();
    c.put_object_acl()
        .bucket(&b)
        .key("k")
        .access_control_policy(body.clone())
        .send()
        .await?;
    let want: BTreeSet<(String, String)> = [(bob.as_str(), "FULL_CONTROL"), (ALL_USERS, "READ")]
        .iter()
        .map(|(a, p)| ((*a).to_owned(), (*p).to_owned()))
        .collect();
    ensure!(object_acl(&c, &b, "k").await?.1 == want, "ACL body");
    c.put_bucket_acl()
        .bucket(&b)
        .access_control_policy(body)
        .send()
        .await?;
    ensure!(bucket_acl(&c, &b).await?.1 == want, "bucket ACL body");

    // refused, and nothing changes
    let r = c
        .put_object_acl()
        .bucket(&b)
        .key("k")
        .grant_read("emailAddress=\"someone@example.com\"")
        .send()
        .await;
    expect_err(
        "grant by e-mail",
        r,
        400,
        Some("UnresolvableGrantByEmailAddress"),
    )?;
    let r = c
        .put_object_acl()
        .bucket(&b)
        .key("k")
        .acl(ObjectCannedAcl::Private)
        .grant_read(format!("id=\"{alice}\""))
        .send()
        .await;
    expect_err("canned and grant headers", r, 400, Some("InvalidRequest"))?;
    let r = c
        .put_object_acl()
        .bucket(&b)
        .key("k")
        .grant_read("id=\"not-a-canonical-id\"")
        .send()
        .await;
    expect_err("bad id", r, 400, Some("InvalidArgument"))?;
    let r = c
        .put_object_acl()
        .bucket(&b)
        .key("k")
        .grant_read("uri=\"http://acs.amazonaws.com/groups/global/Nobody\"")
        .send()
        .await;
    expect_err("unknown group", r, 400, Some("InvalidArgument"))?;
    let r = c
        .put_object()
        .bucket(&b)
        .key("k2")
        .acl(ObjectCannedAcl::from("world-writable"))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    expect_err("unknown canned ACL", r, 400, Some("InvalidArgument"))?;
    ensure!(
        object_acl(&c, &b, "k").await?.1 == want,
        "refused changes left it"
    );
    let r = c.get_object_acl().bucket(&b).key("k2").send().await;
    expect_err("refused PUT stored nothing", r, 404, Some("NoSuchKey"))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ownership_controls_and_block_public_acls_refuse_acls() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("owner");
    c.create_bucket().bucket(&b).send().await?;
    let r = c.get_bucket_ownership_controls().bucket(&b).send().await;
    expect_err(
        "no controls",
        r,
        404,
        Some("OwnershipControlsNotFoundError"),
    )?;

    let controls = |o: ObjectOwnership| {
        OwnershipControls::builder()
            .rules(
                OwnershipControlsRule::builder()
                    .object_ownership(o)
                    .build()?,
            )
            .build()
    };
    c.put_bucket_ownership_controls()
        .bucket(&b)
        .ownership_controls(controls(ObjectOwnership::BucketOwnerEnforced)?)
        .send()
        .await?;
    let got = c.get_bucket_ownership_controls().bucket(&b).send().await?;
    let rule = got
        .ownership_controls()
        .and_then(|o| o.rules().first())
        .context("no rule")?;
    ensure!(rule.object_ownership() == &ObjectOwnership::BucketOwnerEnforced);

    let put = |k: &str, acl: ObjectCannedAcl| {
        c.put_object()
            .bucket(&b)
            .key(k)
            .acl(acl)
            .body(ByteStream::from_static(b"x"))
            .send()
    };
    let r = put("pub", ObjectCannedAcl::PublicRead).await;
    expect_err(
        "ACL with BucketOwnerEnforced",
        r,
        400,
        Some("AccessControlListNotSupported"),
    )?;
    put("full", ObjectCannedAcl::BucketOwnerFullControl).await?;
    put("plain", ObjectCannedAcl::Private).await?;
    let r = c
        .put_bucket_acl()
        .bucket(&b)
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await;
    expect_err(
        "bucket ACL enforced",
        r,
        400,
        Some("AccessControlListNotSupported"),
    )?;
    let r = c
        .put_object_acl()
        .bucket(&b)
        .key("full")
        .grant_read(format!("uri=\"{ALL_USERS}\""))
        .send()
        .await;
    expect_err(
        "object grants enforced",
        r,
        400,
        Some("AccessControlListNotSupported"),
    )?;
    let r = c.get_object_acl().bucket(&b).key("pub").send().await;
    expect_err("refused PUT stored nothing", r, 404, Some("NoSuchKey"))?;

    // ObjectWriter: ACLs again
    c.put_bucket_ownership_controls()
        .bucket(&b)
        .ownership_controls(controls(ObjectOwnership::ObjectWriter)?)
        .send()
        .await?;
    put("pub", ObjectCannedAcl::PublicRead).await?;
    c.delete_bucket_ownership_controls()
        .bucket(&b)
        .send()
        .await?;
    let r = c.get_bucket_ownership_controls().bucket(&b).send().await;
    expect_err(
        "controls deleted",
        r,
        404,
        Some("OwnershipControlsNotFoundError"),
    )?;

    // BlockPublicAcls refuses public ACLs, on writes and on Put*Acl
    c.put_public_access_block()
        .bucket(&b)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .build(),
        )
        .send()
        .await?;
    let r = put("pub2", ObjectCannedAcl::PublicRead).await;
    expect_err("public ACL on PUT", r, 403, Some("AccessDenied"))?;
    let r = put("auth", ObjectCannedAcl::AuthenticatedRead).await;
    expect_err("authenticated-read is public", r, 403, Some("AccessDenied"))?;
    let r = c
        .put_object_acl()
        .bucket(&b)
        .key("full")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await;
    expect_err("public PutObjectAcl", r, 403, Some("AccessDenied"))?;
    let r = c
        .put_bucket_acl()
        .bucket(&b)
        .grant_read(format!("uri=\"{ALL_USERS}\""))
        .send()
        .await;
    expect_err("public PutBucketAcl", r, 403, Some("AccessDenied"))?;
    put("private2", ObjectCannedAcl::Private).await?;

    // a bucket made with BucketOwnerEnforced and a public ACL is refused
    let b2 = bucket_name("owner2");
    let r = c
        .create_bucket()
        .bucket(&b2)
        .acl(BucketCannedAcl::PublicRead)
        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
        .send()
        .await;
    expect_err(
        "CreateBucket enforced + public",
        r,
        400,
        Some("InvalidBucketAclWithObjectOwnership"),
    )?;
    let r = c.head_bucket().bucket(&b2).send().await;
    ensure!(r.is_err(), "the refused bucket was made");
    c.create_bucket()
        .bucket(&b2)
        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
        .send()
        .await?;
    let got = c.get_bucket_ownership_controls().bucket(&b2).send().await?;
    ensure!(
        got.ownership_controls()
            .and_then(|o| o.rules().first())
            .map(|r| r.object_ownership().clone())
            == Some(ObjectOwnership::BucketOwnerEnforced)
    );
    Ok(())
}
