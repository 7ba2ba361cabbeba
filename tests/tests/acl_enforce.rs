//! Bucket policies and ACLs decide who gets in, seen from the clients'
//! side: unsigned requests (anonymous), an IAM user without policies
//! (made with `aws iam`) and the root user, against the real server.
//! Each canned ACL and grant header is checked for what it lets each of
//! them do, and a removed grant stops working at once.

use anyhow::{Result, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketCannedAcl, ObjectCannedAcl, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration,
};
use cairn_tests::raw;
use cairn_tests::{Server, allowed, bucket_name, err_code};

/// An unsigned request; its status.
async fn anon(s: &Server, method: &str, target: &str, body: &[u8]) -> Result<u16> {
    Ok(raw::Client::new(s.addr(), None)
        .send(method, target, &[], body)
        .await?
        .status)
}

/// Whether `c` may GET `b/k` (200) or is refused (403, AccessDenied).
async fn can_get(c: &Client, b: &str, k: &str) -> Result<bool> {
    allowed("GET", c.get_object().bucket(b).key(k).send().await)
}

async fn can_put(c: &Client, b: &str, k: &str) -> Result<bool> {
    let body = ByteStream::from_static(b"w");
    allowed(
        "PUT",
        c.put_object().bucket(b).key(k).body(body).send().await,
    )
}

async fn can_list(c: &Client, b: &str) -> Result<bool> {
    allowed("LIST", c.list_objects_v2().bucket(b).send().await)
}

async fn put(c: &Client, b: &str, k: &str, acl: Option<ObjectCannedAcl>) -> Result<()> {
    c.put_object()
        .bucket(b)
        .key(k)
        .set_acl(acl)
        .body(ByteStream::from_static(b"data"))
        .send()
        .await?;
    Ok(())
}

fn public_read_policy(bucket: &str, prefix: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/{prefix}*"}}]}}"#
    )
}

fn pab(ignore_acls: bool, restrict: bool) -> PublicAccessBlockConfiguration {
    PublicAccessBlockConfiguration::builder()
        .ignore_public_acls(ignore_acls)
        .restrict_public_buckets(restrict)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_access_is_what_the_bucket_policy_grants() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("anon");
    c.create_bucket().bucket(&b).send().await?;
    put(&c, &b, "pub/a", None).await?;
    put(&c, &b, "priv/b", None).await?;
    let get_pub = format!("/{b}/pub/a");
    let get_priv = format!("/{b}/priv/b");

    ensure!(
        anon(&s, "GET", &get_pub, b"").await? == 403,
        "no policy: refused"
    );
    c.put_bucket_policy()
        .bucket(&b)
        .policy(public_read_policy(&b, "pub/"))
        .send()
        .await?;
    let r = raw::Client::new(s.addr(), None)
        .send("GET", &get_pub, &[], b"")
        .await?;
    ensure!(
        r.status == 200 && r.body == b"data",
        "granted GET: {}",
        r.describe()
    );
    ensure!(
        anon(&s, "GET", &get_priv, b"").await? == 403,
        "outside the grant"
    );
    ensure!(
        anon(&s, "PUT", &format!("/{b}/pub/new"), b"x").await? == 403,
        "PUT is not granted"
    );
    ensure!(
        anon(&s, "GET", &format!("/{b}"), b"").await? == 403,
        "nor LIST"
    );
    ensure!(anon(&s, "GET", "/", b"").await? == 403, "nor ListBuckets");

    // RestrictPublicBuckets: the public policy grants anonymous callers nothing
    c.put_public_access_block()
        .bucket(&b)
        .public_access_block_configuration(pab(false, true))
        .send()
        .await?;
    ensure!(anon(&s, "GET", &get_pub, b"").await? == 403, "restricted");
    c.delete_public_access_block().bucket(&b).send().await?;
    ensure!(anon(&s, "GET", &get_pub, b"").await? == 200, "unrestricted");

    // removing the policy takes the access away at once
    c.delete_bucket_policy().bucket(&b).send().await?;
    ensure!(
        anon(&s, "GET", &get_pub, b"").await? == 403,
        "policy removed"
    );
    // the root user is untouched by any of it
    ensure!(can_get(&c, &b, "priv/b").await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_canned_acl_lets_in_whom_it_names() -> Result<()> {
    let s = Server::start_default().await?;
    let root = s.s3();
    // a signed caller of the account with no policy of its own
    let user = s.iam_user("nobody", None)?;
    let b = bucket_name("canned");
    root.create_bucket().bucket(&b).send().await?;

    // object ACLs decide reads of the object: (acl, anonymous, user)
    let cases = [
        (ObjectCannedAcl::Private, false, false),
        (ObjectCannedAcl::PublicRead, true, true),
        (ObjectCannedAcl::PublicReadWrite, true, true),
        (ObjectCannedAcl::AuthenticatedRead, false, true),
        (ObjectCannedAcl::AwsExecRead, false, false),
        (ObjectCannedAcl::BucketOwnerRead, false, false),
        (ObjectCannedAcl::BucketOwnerFullControl, false, false),
    ];
    for (acl, anon_reads, user_reads) in cases {
        let k = format!("o-{}", acl.as_str());
        put(&root, &b, &k, Some(acl.clone())).await?;
        let a = anon(&s, "GET", &format!("/{b}/{k}"), b"").await?;
        ensure!(
            (a == 200) == anon_reads && (a == 200 || a == 403),
            "{}: anonymous GET {a}",
            acl.as_str()
        );
        ensure!(
            can_get(&user, &b, &k).await? == user_reads,
            "{}: user GET",
            acl.as_str()
        );
        // no object ACL grants a write: that is the bucket's
        ensure!(!can_put(&user, &b, &k).await?, "{}: user PUT", acl.as_str());
        ensure!(
            anon(&s, "GET", &format!("/{b}/{k}?acl"), b"").await? == 403,
            "{}: nobody else reads the ACL",
            acl.as_str()
        );
    }
    // PutObjectAcl changes who reads at once
    root.put_object_acl()
        .bucket(&b)
        .key("o-public-read")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await?;
    ensure!(!can_get(&user, &b, "o-public-read").await?, "made private");
    ensure!(anon(&s, "GET", &format!("/{b}/o-public-read"), b"").await? == 403);

    // IgnorePublicAcls: public grants count for nothing while it is set
    let k = "o-public-read-write";
    root.put_public_access_block()
        .bucket(&b)
        .public_access_block_configuration(pab(true, false))
        .send()
        .await?;
    ensure!(anon(&s, "GET", &format!("/{b}/{k}"), b"").await? == 403);
    ensure!(can_get(&user, &b, "o-authenticated-read").await? == false);
    root.delete_public_access_block().bucket(&b).send().await?;
    ensure!(anon(&s, "GET", &format!("/{b}/{k}"), b"").await? == 200);

    // bucket ACLs decide listing and writes into the bucket: (acl, anonymous
    // lists, anonymous writes, user lists, user writes)
    let cases = [
        (BucketCannedAcl::Private, false, false, false, false),
        (BucketCannedAcl::PublicRead, true, false, true, false),
        (BucketCannedAcl::PublicReadWrite, true, true, true, true),
        (
            BucketCannedAcl::AuthenticatedRead,
            false,
            false,
            true,
            false,
        ),
    ];
    for (acl, anon_lists, anon_writes, user_lists, user_writes) in cases {
        let bb = bucket_name("bacl");
        root.create_bucket()
            .bucket(&bb)
            .acl(acl.clone())
            .send()
            .await?;
        let what = acl.as_str();
        ensure!(
            (anon(&s, "GET", &format!("/{bb}"), b"").await? == 200) == anon_lists,
            "{what}: anonymous LIST"
        );
        ensure!(
            (anon(&s, "PUT", &format!("/{bb}/anon"), b"x").await? == 200) == anon_writes,
            "{what}: anonymous PUT"
        );
        ensure!(
            can_list(&user, &bb).await? == user_lists,
            "{what}: user LIST"
        );
        ensure!(
            can_put(&user, &bb, "u").await? == user_writes,
            "{what}: user PUT"
        );
        // the object written is the owner's: its default ACL lets no one
        // else read it back
        if user_writes {
            ensure!(!can_get(&user, &bb, "u").await?, "{what}: user GET back");
            ensure!(can_get(&root, &bb, "u").await?, "{what}: root GET");
        }
        // a bucket ACL never hands out the bucket's own settings
        ensure!(
            anon(&s, "DELETE", &format!("/{bb}"), b"").await? == 403,
            "{what}: anonymous DeleteBucket"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_headers_name_a_user_and_deny_still_wins() -> Result<()> {
    let s = Server::start_default().await?;
    let root = s.s3();
    let deny_delete = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}"#;
    let user = s.iam_user("grantee", Some(deny_delete))?;
    let other = s.iam_user("bystander", None)?;
    // the Owner of ListBuckets is the caller: the id grants name
    let id = user
        .list_buckets()
        .send()
        .await?
        .owner()
        .and_then(|o| o.id())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("ListBuckets without an Owner id"))?;
    let root_id = root
        .list_buckets()
        .send()
        .await?
        .owner()
        .and_then(|o| o.id())
        .map(str::to_owned);
    ensure!(
        id.len() == 64 && Some(&id) != root_id.as_ref(),
        "user id {id}"
    );
    let grantee = format!("id=\"{id}\"");

    let b = bucket_name("grants");
    root.create_bucket()
        .bucket(&b)
        .grant_read(&grantee)
        .grant_write(&grantee)
        .send()
        .await?;
    ensure!(can_list(&user, &b).await?, "grant-read on the bucket lists");
    ensure!(!can_list(&other, &b).await?, "not for another user");
    ensure!(
        can_put(&user, &b, "mine").await?,
        "grant-write on the bucket"
    );
    ensure!(!can_put(&other, &b, "theirs").await?);
    // the explicit Deny of the user's policy beats the ACL's WRITE
    let del = user.delete_object().bucket(&b).key("mine").send().await;
    ensure!(
        del.as_ref().is_err_and(|e| err_code(e) == "AccessDenied"),
        "delete under a Deny: {del:?}"
    );

    root.put_object()
        .bucket(&b)
        .key("read-me")
        .grant_read(&grantee)
        .body(ByteStream::from_static(b"r"))
        .send()
        .await?;
    put(&root, &b, "not-me", None).await?;
    ensure!(
        can_get(&user, &b, "read-me").await?,
        "grant-read on the object"
    );
    ensure!(!can_get(&user, &b, "not-me").await?, "no grant, no read");
    ensure!(!can_get(&other, &b, "read-me").await?);
    let acl = user.get_object_acl().bucket(&b).key("read-me").send().await;
    ensure!(
        acl.as_ref().is_err_and(|e| err_code(e) == "AccessDenied"),
        "READ is not READ_ACP"
    );

    root.put_object()
        .bucket(&b)
        .key("acp")
        .grant_read_acp(&grantee)
        .grant_write_acp(&grantee)
        .body(ByteStream::from_static(b"a"))
        .send()
        .await?;
    ensure!(!can_get(&user, &b, "acp").await?, "READ_ACP is not READ");
    user.get_object_acl().bucket(&b).key("acp").send().await?;
    // WRITE_ACP: the user may hand itself READ
    user.put_object_acl()
        .bucket(&b)
        .key("acp")
        .grant_read(&grantee)
        .send()
        .await?;
    ensure!(can_get(&user, &b, "acp").await?, "granted itself READ");

    root.put_object()
        .bucket(&b)
        .key("full")
        .grant_full_control(&grantee)
        .body(ByteStream::from_static(b"f"))
        .send()
        .await?;
    ensure!(can_get(&user, &b, "full").await?);
    user.get_object_acl().bucket(&b).key("full").send().await?;

    // ownership controls that switch ACLs off: every grant stops counting
    root.put_bucket_ownership_controls()
        .bucket(&b)
        .ownership_controls(
            OwnershipControls::builder()
                .rules(
                    OwnershipControlsRule::builder()
                        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                        .build()?,
                )
                .build()?,
        )
        .send()
        .await?;
    ensure!(!can_get(&user, &b, "read-me").await?, "ACLs off: no read");
    ensure!(!can_list(&user, &b).await?, "ACLs off: no list");
    root.delete_bucket_ownership_controls()
        .bucket(&b)
        .send()
        .await?;
    ensure!(can_get(&user, &b, "read-me").await?, "ACLs on again");
    Ok(())
}
