//! S3 request authorization through the real aws-sdk-s3 client: IAM
//! users, their policies (each element, the condition keys the front
//! fills in, deny-overrides, policy variables), service accounts, key
//! status and STS sessions, against `cairn_s3::serve` over a MemLayer
//! (tag conditions need a store with tags: tests/tests/policy_tags.rs).

#![allow(clippy::unwrap_used)] // a test: a failed setup step is the failure

mod common;

use anyhow::Result;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use cairn_iam::sts::{SessionClaims, SessionParent};
use cairn_iam::{Iam, ServiceAccountSpec, Status, Target};
use common::{Server, client, failure, session_client};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// User `name` with inline policy `policy` (if any) and one access key.
async fn user(iam: &Iam, name: &str, policy: Option<&str>) -> (String, String) {
    let n = name.to_owned();
    let p = policy.map(str::to_owned);
    iam.change(move |st| {
        st.create_user(&n, 0)?;
        if let Some(p) = &p {
            st.set_inline(&Target::User(n.clone()), "inline", Some(p))?;
        }
        let k = st.create_access_key(&n, 0)?;
        Ok((k.id.clone(), k.secret.clone()))
    })
    .await
    .unwrap()
}

fn as_user(s: &Server, keys: &(String, String)) -> Client {
    client(&s.endpoint(), &keys.0, &keys.1, true)
}

async fn put(c: &Client, bucket: &str, key: &str) -> Result<(), common::Failure> {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(b"data"))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| failure::<(), _>(Err(e)))
}

async fn get(c: &Client, bucket: &str, key: &str) -> Result<(), common::Failure> {
    c.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| failure::<(), _>(Err(e)))
}

fn denied(r: Result<(), common::Failure>) {
    let f = r.expect_err("expected AccessDenied");
    assert_eq!((f.status, f.code.as_str()), (403, "AccessDenied"), "{f:?}");
}

async fn setup(s: &Server, buckets: &[&str], keys: &[&str]) {
    let root = s.client();
    for b in buckets {
        root.create_bucket().bucket(*b).send().await.unwrap();
        for k in keys {
            put(&root, b, k).await.unwrap();
        }
    }
}

#[tokio::test]
async fn readonly_user_reads_and_cannot_write() -> Result<()> {
    let s = Server::start().await?;
    setup(&s, &["data"], &["a.txt"]).await;
    let keys = user(&s.iam, "reader", None).await;
    s.iam
        .change(|st| st.set_attached(&Target::User("reader".into()), "readonly", true))
        .await?;
    let c = as_user(&s, &keys);
    get(&c, "data", "a.txt").await.expect("readonly reads");
    denied(put(&c, "data", "b.txt").await);
    denied(
        c.delete_object()
            .bucket("data")
            .key("a.txt")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failure::<(), _>(Err(e))),
    );
    // MinIO's readonly has no s3:ListBucket
    let f = failure(c.list_objects_v2().bucket("data").send().await);
    assert_eq!(f.code, "AccessDenied");
    // a user without any policy gets nothing
    let none = as_user(&s, &user(&s.iam, "nobody", None).await);
    denied(get(&none, "data", "a.txt").await);
    s.stop().await
}

#[tokio::test]
async fn explicit_deny_wins_and_not_elements() -> Result<()> {
    let s = Server::start().await?;
    setup(&s, &["bbb"], &["open/x", "secret/x"]).await;
    let keys = user(
        &s.iam,
        "u",
        Some(
            r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:*","Resource":"*"},
            {"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::bbb/secret/*"},
            {"Effect":"Deny","NotAction":["s3:GetObject","s3:PutObject","s3:ListBucket"],"Resource":"*"},
            {"Effect":"Deny","Action":"s3:PutObject","NotResource":"arn:aws:s3:::bbb/open/*"}]}"#,
        ),
    )
    .await;
    let c = as_user(&s, &keys);
    get(&c, "bbb", "open/x").await.expect("allowed");
    denied(get(&c, "bbb", "secret/x").await);
    put(&c, "bbb", "open/y").await.expect("put under open/");
    denied(put(&c, "bbb", "elsewhere").await);
    // NotAction: everything but get/put/list is denied
    let f = failure(c.delete_object().bucket("bbb").key("open/x").send().await);
    assert_eq!(f.code, "AccessDenied");
    s.stop().await
}

#[tokio::test]
async fn policy_variables_and_list_conditions() -> Result<()> {
    let s = Server::start().await?;
    setup(&s, &["home"], &["alice/1", "bob/1"]).await;
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::home/${aws:username}/*"},
        {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::home",
         "Condition":{"StringLike":{"s3:prefix":"${aws:username}/*"},"NumericLessThanEquals":{"s3:max-keys":"100"}}}]}"#;
    let alice = as_user(&s, &user(&s.iam, "alice", Some(policy)).await);
    let bob = as_user(&s, &user(&s.iam, "bob", Some(policy)).await);
    get(&alice, "home", "alice/1").await.expect("own folder");
    denied(get(&alice, "home", "bob/1").await);
    get(&bob, "home", "bob/1").await.expect("own folder");
    put(&alice, "home", "alice/2").await.expect("own folder");
    denied(put(&alice, "home", "bob/2").await);
    let listed = alice
        .list_objects_v2()
        .bucket("home")
        .prefix("alice/")
        .max_keys(10)
        .send()
        .await?;
    assert_eq!(listed.key_count(), Some(2));
    let f = failure(
        alice
            .list_objects_v2()
            .bucket("home")
            .prefix("bob/")
            .send()
            .await,
    );
    assert_eq!(f.code, "AccessDenied");
    // s3:max-keys over the limit
    let f = failure(
        alice
            .list_objects_v2()
            .bucket("home")
            .prefix("alice/")
            .max_keys(500)
            .send()
            .await,
    );
    assert_eq!(f.code, "AccessDenied");
    // no prefix: the StringLike has no value to match
    let f = failure(alice.list_objects_v2().bucket("home").send().await);
    assert_eq!(f.code, "AccessDenied");
    s.stop().await
}

#[tokio::test]
async fn request_condition_keys() -> Result<()> {
    let s = Server::start().await?;
    setup(&s, &["ccc"], &["x"]).await;
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
         "Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"},"Bool":{"aws:SecureTransport":"false"},
                      "DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"},
                      "StringEquals":{"aws:PrincipalType":"User","aws:username":"k"}}},
        {"Effect":"Allow","Action":"s3:DeleteObject","Resource":"*",
         "Condition":{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}},
        {"Effect":"Allow","Action":"s3:GetObjectTagging","Resource":"*",
         "Condition":{"DateLessThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}}]}"#;
    let c = as_user(&s, &user(&s.iam, "k", Some(policy)).await);
    get(&c, "ccc", "x").await.expect("all conditions hold");
    // NotIpAddress from loopback, a date in the past
    let f = failure(c.delete_object().bucket("ccc").key("x").send().await);
    assert_eq!(f.code, "AccessDenied");
    let f = failure(c.get_object_tagging().bucket("ccc").key("x").send().await);
    assert_eq!(f.code, "AccessDenied");
    s.stop().await
}

#[tokio::test]
async fn list_buckets_shows_only_what_the_caller_may_list() -> Result<()> {
    let s = Server::start().await?;
    setup(&s, &["mine", "theirs", "other"], &[]).await;
    let c = as_user(
        &s,
        &user(
            &s.iam,
            "lister",
            Some(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket",
                "Resource":"arn:aws:s3:::mine"},{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#,
            ),
        )
        .await,
    );
    let names: Vec<String> = c
        .list_buckets()
        .send()
        .await?
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    assert_eq!(names, ["mine"]);
    let all = s.client().list_buckets().send().await?;
    assert_eq!(all.buckets().len(), 3, "root sees all");
    s.stop().await
}

#[tokio::test]
async fn copies_need_read_on_the_source_and_batch_deletes_go_per_key() -> Result<()> {
    let s = Server::start().await?;
    setup(&s, &["src", "dst"], &["k", "keep/k"]).await;
    let c = as_user(
        &s,
        &user(
            &s.iam,
            "copier",
            Some(
                r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:DeleteObject"],"Resource":"arn:aws:s3:::dst/*"},
                {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::src/k"}]}"#,
            ),
        )
        .await,
    );
    c.copy_object()
        .bucket("dst")
        .key("copy")
        .copy_source("src/k")
        .send()
        .await
        .expect("may read the source");
    let f = failure(
        c.copy_object()
            .bucket("dst")
            .key("copy2")
            .copy_source("src/keep/k")
            .send()
            .await,
    );
    assert_eq!(f.code, "AccessDenied");
    // DeleteObjects in dst: allowed; in src: each key refused
    let batch = |bucket: &'static str, keys: &[&str]| {
        let objects: Vec<ObjectIdentifier> = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
            .collect();
        c.delete_objects()
            .bucket(bucket)
            .delete(
                Delete::builder()
                    .set_objects(Some(objects))
                    .build()
                    .unwrap(),
            )
            .send()
    };
    let out = batch("dst", &["copy"]).await?;
    assert_eq!(out.deleted().len(), 1);
    assert!(out.errors().is_empty());
    let out = batch("src", &["k", "keep/k"]).await?;
    assert!(out.deleted().is_empty());
    assert_eq!(out.errors().len(), 2);
    assert!(
        out.errors()
            .iter()
            .all(|e| e.code() == Some("AccessDenied"))
    );
    // nothing was deleted
    let root = s.client();
    assert_eq!(
        root.list_objects_v2()
            .bucket("src")
            .send()
            .await?
            .key_count(),
        Some(2)
    );
    s.stop().await
}

#[tokio::test]
async fn service_accounts_are_narrowed_by_their_policy() -> Result<()> {
    let s = Server::start().await?;
    setup(&s, &["svc"], &["x"]).await;
    let own = user(&s.iam, "parent", None).await;
    s.iam
        .change(|st| st.set_attached(&Target::User("parent".into()), "readwrite", true))
        .await?;
    let sa = s
        .iam
        .change(|st| {
            let k = st.create_service_account(
                "parent",
                ServiceAccountSpec {
                    policy: Some(
                        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#
                            .into(),
                    ),
                    ..Default::default()
                },
                0,
            )?;
            Ok((k.id.clone(), k.secret.clone()))
        })
        .await?;
    let svc = as_user(&s, &sa);
    get(&svc, "svc", "x")
        .await
        .expect("narrowed policy allows reads");
    denied(put(&svc, "svc", "y").await);
    put(&as_user(&s, &own), "svc", "y")
        .await
        .expect("the parent's own key writes");
    // a service account cannot exceed its parent: parent loses readwrite
    s.iam
        .change(|st| st.set_attached(&Target::User("parent".into()), "readwrite", false))
        .await?;
    denied(get(&svc, "svc", "x").await);
    s.stop().await
}

#[tokio::test]
async fn disabled_and_deleted_keys_are_refused_at_once() -> Result<()> {
    let s = Server::start().await?;
    setup(&s, &["kkk"], &["x"]).await;
    let keys = user(&s.iam, "kk", None).await;
    s.iam
        .change(|st| st.set_attached(&Target::User("kk".into()), "readonly", true))
        .await?;
    let c = as_user(&s, &keys);
    get(&c, "kkk", "x").await.expect("active key");
    let id = keys.0.clone();
    s.iam
        .change(move |st| st.set_key_status("kk", &id, Status::Inactive))
        .await?;
    let f = get(&c, "kkk", "x").await.expect_err("disabled key");
    assert_eq!((f.status, f.code.as_str()), (403, "InvalidAccessKeyId"));
    let id = keys.0.clone();
    s.iam
        .change(move |st| st.set_key_status("kk", &id, Status::Active))
        .await?;
    get(&c, "kkk", "x").await.expect("enabled again");
    s.iam
        .change(|st| st.set_user_status("kk", Status::Inactive))
        .await?;
    let f = get(&c, "kkk", "x").await.expect_err("disabled user");
    assert_eq!(f.code, "InvalidAccessKeyId");
    s.iam
        .change(|st| st.set_user_status("kk", Status::Active))
        .await?;
    let id = keys.0.clone();
    s.iam
        .change(move |st| st.delete_access_key("kk", &id))
        .await?;
    let f = get(&c, "kkk", "x").await.expect_err("deleted key");
    assert_eq!(f.code, "InvalidAccessKeyId");
    s.stop().await
}

#[tokio::test]
async fn sessions_expire_to_the_second_and_session_policies_narrow() -> Result<()> {
    let s = Server::start().await?;
    setup(&s, &["sts"], &["x"]).await;
    user(&s.iam, "su", None).await;
    s.iam
        .change(|st| st.set_attached(&Target::User("su".into()), "readwrite", true))
        .await?;
    let issue = |expires: i64, policy: Option<&str>| {
        s.iam.signer().issue(SessionClaims {
            access_key: String::new(),
            parent: SessionParent::User { user: "su".into() },
            expires,
            policy: policy.map(str::to_owned),
            jwt: Default::default(),
        })
    };
    let wide = issue(now() + 3600, None);
    let c = session_client(
        &s.endpoint(),
        &wide.access_key,
        &wide.secret_key,
        &wide.session_token,
    );
    put(&c, "sts", "y")
        .await
        .expect("session with the user's rights");
    // narrowed by a session policy
    let narrow = issue(
        now() + 3600,
        Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
        ),
    );
    let n = session_client(
        &s.endpoint(),
        &narrow.access_key,
        &narrow.secret_key,
        &narrow.session_token,
    );
    get(&n, "sts", "x")
        .await
        .expect("session policy allows reads");
    denied(put(&n, "sts", "z").await);
    // a token of another session, none at all, and a forged one
    let other = session_client(
        &s.endpoint(),
        &wide.access_key,
        &wide.secret_key,
        &narrow.session_token,
    );
    let f = get(&other, "sts", "x")
        .await
        .expect_err("token of another key");
    assert_eq!(f.code, "InvalidToken");
    let bare = client(&s.endpoint(), &wide.access_key, &wide.secret_key, true);
    let f = get(&bare, "sts", "x").await.expect_err("no token");
    assert_eq!(f.code, "InvalidToken");
    // expiry, to the second
    let short = issue(now() + 2, None);
    let sc = session_client(
        &s.endpoint(),
        &short.access_key,
        &short.secret_key,
        &short.session_token,
    );
    get(&sc, "sts", "x").await.expect("not yet expired");
    while now() < short.expires {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let f = get(&sc, "sts", "x").await.expect_err("expired");
    assert_eq!((f.status, f.code.as_str()), (400, "ExpiredToken"));
    s.stop().await
}

#[tokio::test]
async fn unsigned_requests_get_nothing_without_a_bucket_policy() -> Result<()> {
    let s = Server::start().await?;
    setup(&s, &["anon"], &["x"]).await;
    let host = format!("127.0.0.1:{}", s.addr.port());
    for (method, target) in [
        ("GET", "/anon/x"),
        ("GET", "/anon"),
        ("GET", "/"),
        ("PUT", "/anon/y"),
    ] {
        let r = common::raw(s.addr, method, &host, target, &[], b"").await?;
        assert_eq!(r.status, 403, "{method} {target}: {}", r.text());
        assert!(r.text().contains("AccessDenied"), "{}", r.text());
    }
    s.stop().await
}
