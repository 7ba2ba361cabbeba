//! The identity layer over the reference store: what a user with a
//! policy may do through it, and that changes count from the next call.

use std::sync::Arc;

use cairn_api::mem::MemLayer;
use cairn_api::{
    BucketChange, BucketName, Conditions, CopyOptions, DeleteOptions, GetOptions, ListOptions,
    MemConfig, ObjectError, ObjectKey, ObjectLayer, PutOptions, bytes_stream, collect_stream,
};

use super::IdentityLayer;
use crate::{DEFAULT_ACCOUNT, Iam, IamConfig, IamError, IamState, Status, Target};

fn b(name: &str) -> BucketName {
    BucketName::new(name).unwrap()
}

fn k(name: &str) -> ObjectKey {
    ObjectKey::new(name).unwrap()
}

/// A store with buckets `data` (keys `top`, `docs/a`, `docs/b`) and
/// `other` (key `x`), and an IAM service with no users.
async fn setup() -> (Arc<MemLayer>, Arc<Iam>) {
    let mem = Arc::new(MemLayer::new());
    for bucket in ["data", "other"] {
        mem.make_bucket(&b(bucket)).await.unwrap();
    }
    for (bucket, key) in [
        ("data", "top"),
        ("data", "docs/a"),
        ("data", "docs/b"),
        ("other", "x"),
    ] {
        mem.put_object(
            &b(bucket),
            &k(key),
            bytes_stream(format!("{bucket}/{key}")),
            PutOptions::default(),
        )
        .await
        .unwrap();
    }
    let iam = Iam::load(IamConfig {
        root_access_key: "rootkey".into(),
        root_secret_key: "rootsecret".into(),
        account: DEFAULT_ACCOUNT.into(),
        deployment_id: "test".into(),
        store: Arc::new(MemConfig::new()),
    })
    .await
    .unwrap();
    (mem, Arc::new(iam))
}

/// Creates user `name` with `attached` built-in policies and `inline`
/// documents.
async fn user(iam: &Iam, name: &str, attached: &[&str], inline: &[&str]) {
    iam.change(|st: &mut IamState| {
        st.create_user(name, 0)?;
        let t = Target::User(name.into());
        for p in attached {
            st.set_attached(&t, p, true)?;
        }
        for (i, doc) in inline.iter().enumerate() {
            st.set_inline(&t, &format!("p{i}"), Some(doc))?;
        }
        Ok(())
    })
    .await
    .unwrap();
}

fn layer(mem: &Arc<MemLayer>, iam: &Arc<Iam>, name: &str) -> IdentityLayer {
    IdentityLayer::new(mem.clone(), iam.clone(), name).unwrap()
}

fn denied<T: std::fmt::Debug>(r: Result<T, ObjectError>) -> bool {
    matches!(r, Err(ObjectError::AccessDenied { .. }))
}

async fn read(l: &dyn ObjectLayer, bucket: &str, key: &str) -> Result<Vec<u8>, ObjectError> {
    let o = l
        .get_object(&b(bucket), &k(key), GetOptions::default())
        .await?;
    Ok(collect_stream(o.body).await.unwrap())
}

async fn write(l: &dyn ObjectLayer, bucket: &str, key: &str) -> Result<(), ObjectError> {
    l.put_object(
        &b(bucket),
        &k(key),
        bytes_stream("new"),
        PutOptions::default(),
    )
    .await
    .map(|_| ())
}

async fn list(l: &dyn ObjectLayer, bucket: &str, prefix: &str) -> Result<Vec<String>, ObjectError> {
    let page = l
        .list_objects(
            &b(bucket),
            ListOptions {
                prefix: prefix.into(),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await?;
    Ok(page.objects.into_iter().map(|o| o.key).collect())
}

async fn bucket_names(l: &dyn ObjectLayer) -> Result<Vec<String>, ObjectError> {
    Ok(l.list_buckets()
        .await?
        .into_iter()
        .map(|x| x.name)
        .collect())
}

const READER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":["s3:GetObject","s3:ListBucket","s3:GetBucketLocation"],
    "Resource":["arn:aws:s3:::*"]}]}"#;

#[tokio::test]
async fn a_reader_reads_and_lists_but_never_changes() {
    let (mem, iam) = setup().await;
    user(&iam, "ro", &[], &[READER]).await;
    let l = layer(&mem, &iam, "ro");
    assert_eq!(read(&l, "data", "top").await.unwrap(), b"data/top");
    assert!(
        l.head_object(&b("data"), &k("top"), &Conditions::default())
            .await
            .is_ok()
    );
    assert_eq!(
        list(&l, "data", "docs/").await.unwrap(),
        ["docs/a", "docs/b"]
    );
    assert_eq!(bucket_names(&l).await.unwrap(), ["data", "other"]);
    assert!(l.head_bucket(&b("data")).await.is_ok());

    assert!(denied(write(&l, "data", "top").await));
    assert!(denied(write(&l, "data", "fresh").await));
    assert!(denied(l.delete_object(&b("data"), &k("top")).await));
    assert!(denied(
        l.delete_object_with(&b("data"), &k("top"), DeleteOptions::default())
            .await
    ));
    let many = l
        .delete_objects(&b("data"), vec![("top".into(), DeleteOptions::default())])
        .await;
    assert!(denied(many.into_iter().next().unwrap().result));
    assert!(denied(
        l.copy_object(
            &b("data"),
            &k("top"),
            &b("data"),
            &k("copy"),
            CopyOptions::default()
        )
        .await
    ));
    assert!(denied(
        l.rename_object(&b("data"), &k("top"), &k("moved"), true)
            .await
    ));
    assert!(denied(
        l.create_multipart_upload(&b("data"), &k("mp"), PutOptions::default())
            .await
    ));
    assert!(denied(l.check_mutable(&b("data"), &k("top")).await));
    assert!(denied(l.make_bucket(&b("newbucket")).await));
    assert!(denied(l.delete_bucket(&b("other")).await));
    assert!(denied(
        l.update_bucket_config(&b("data"), BucketChange::Policy(None))
            .await
    ));
    // nothing changed underneath
    assert_eq!(read(&*mem, "data", "top").await.unwrap(), b"data/top");
    assert!(matches!(
        read(&*mem, "data", "copy").await,
        Err(ObjectError::NoSuchKey { .. })
    ));
    assert_eq!(bucket_names(&*mem).await.unwrap(), ["data", "other"]);
}

#[tokio::test]
async fn builtin_readonly_reads_and_sees_buckets_but_does_not_list_objects() {
    // MinIO's readonly: s3:GetObject and s3:GetBucketLocation, no
    // s3:ListBucket, as S3 answers it
    let (mem, iam) = setup().await;
    user(&iam, "ro", &["readonly"], &[]).await;
    let l = layer(&mem, &iam, "ro");
    assert_eq!(read(&l, "other", "x").await.unwrap(), b"other/x");
    assert_eq!(bucket_names(&l).await.unwrap(), ["data", "other"]);
    assert!(denied(list(&l, "data", "").await));
    assert!(denied(write(&l, "data", "top").await));
}

#[tokio::test]
async fn a_user_allowed_one_prefix_sees_only_it() {
    let (mem, iam) = setup().await;
    let doc = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::data",
         "Condition":{"StringLike":{"s3:prefix":"docs/*"}}},
        {"Effect":"Allow","Action":"s3:GetBucketLocation","Resource":"arn:aws:s3:::data"},
        {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],
         "Resource":"arn:aws:s3:::data/docs/*"}]}"#;
    user(&iam, "docs", &[], &[doc]).await;
    let l = layer(&mem, &iam, "docs");
    assert_eq!(
        list(&l, "data", "docs/").await.unwrap(),
        ["docs/a", "docs/b"]
    );
    assert!(denied(list(&l, "data", "").await));
    assert!(denied(list(&l, "data", "do").await));
    assert_eq!(read(&l, "data", "docs/a").await.unwrap(), b"data/docs/a");
    assert!(denied(read(&l, "data", "top").await));
    write(&l, "data", "docs/new").await.unwrap();
    assert!(denied(write(&l, "data", "elsewhere").await));
    // only its bucket is visible, and can be looked up
    assert_eq!(bucket_names(&l).await.unwrap(), ["data"]);
    assert!(l.head_bucket(&b("data")).await.is_ok());
    assert!(denied(l.head_bucket(&b("other")).await));
    assert!(denied(read(&l, "other", "x").await));
    // a copy needs the read of its source too
    assert!(denied(
        l.copy_object(
            &b("data"),
            &k("top"),
            &b("data"),
            &k("docs/c"),
            CopyOptions::default()
        )
        .await
    ));
    l.copy_object(
        &b("data"),
        &k("docs/a"),
        &b("data"),
        &k("docs/c"),
        CopyOptions::default(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn policy_changes_disabling_and_deleting_count_from_the_next_call() {
    let (mem, iam) = setup().await;
    user(&iam, "u", &[], &[READER]).await;
    let l = layer(&mem, &iam, "u");
    assert!(denied(write(&l, "data", "w").await));

    iam.change(|st| st.set_attached(&Target::User("u".into()), "readwrite", true))
        .await
        .unwrap();
    write(&l, "data", "w").await.unwrap();

    iam.change(|st| st.set_attached(&Target::User("u".into()), "readwrite", false))
        .await
        .unwrap();
    assert!(denied(write(&l, "data", "w2").await));
    assert_eq!(read(&l, "data", "w").await.unwrap(), b"new");

    iam.change(|st| st.set_user_status("u", Status::Inactive))
        .await
        .unwrap();
    assert!(denied(read(&l, "data", "w").await));
    assert!(denied(bucket_names(&l).await));
    assert!(denied(l.head_bucket(&b("data")).await));

    iam.change(|st| st.set_user_status("u", Status::Active))
        .await
        .unwrap();
    assert_eq!(read(&l, "data", "w").await.unwrap(), b"new");

    // a deleted user gets nothing, even where a bucket policy still
    // names it (its own policies must go before it can be deleted)
    let grant = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
        "Principal":{{"AWS":"arn:aws:iam::{DEFAULT_ACCOUNT}:user/u"}},
        "Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::data","arn:aws:s3:::data/*"]}}]}}"#
    );
    mem.update_bucket_config(&b("data"), BucketChange::Policy(Some(grant)))
        .await
        .unwrap();
    iam.change(|st| st.set_inline(&Target::User("u".into()), "p0", None))
        .await
        .unwrap();
    assert_eq!(read(&l, "data", "w").await.unwrap(), b"new");
    assert!(denied(read(&l, "other", "x").await));
    iam.change(|st| st.delete_user("u")).await.unwrap();
    assert!(denied(read(&l, "data", "w").await));
    assert!(denied(list(&l, "data", "").await));
}

#[tokio::test]
async fn list_buckets_is_filtered() {
    let (mem, iam) = setup().await;
    let one = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":"s3:ListBucket","Resource":"arn:aws:s3:::other"}]}"#;
    user(&iam, "one", &[], &[one]).await;
    assert_eq!(
        bucket_names(&layer(&mem, &iam, "one")).await.unwrap(),
        ["other"]
    );

    user(&iam, "none", &["writeonly"], &[]).await;
    // as the S3 front answers ListBuckets: an empty list, not a refusal
    assert_eq!(
        bucket_names(&layer(&mem, &iam, "none")).await.unwrap(),
        Vec::<String>::new()
    );

    let all = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#;
    user(&iam, "all", &[], &[all]).await;
    // allowed to list buckets, but none it may list or locate
    assert_eq!(
        bucket_names(&layer(&mem, &iam, "all")).await.unwrap(),
        Vec::<String>::new()
    );

    // readwrite (MinIO's, on arn:aws:s3:::*) sees every bucket
    user(&iam, "rw", &["readwrite"], &[]).await;
    assert_eq!(
        bucket_names(&layer(&mem, &iam, "rw")).await.unwrap(),
        ["data", "other"]
    );
}

#[tokio::test]
async fn bucket_policies_grant_and_deny_and_changes_apply_at_once() {
    let (mem, iam) = setup().await;
    user(&iam, "u", &[], &[READER]).await;
    let l = layer(&mem, &iam, "u");
    let arn = format!("arn:aws:iam::{DEFAULT_ACCOUNT}:user/u");
    let grant = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{arn}"}},
        "Action":"s3:PutObject","Resource":"arn:aws:s3:::data/*"}}]}}"#
    );
    mem.update_bucket_config(&b("data"), BucketChange::Policy(Some(grant)))
        .await
        .unwrap();
    write(&l, "data", "granted").await.unwrap();
    assert!(denied(write(&l, "other", "granted").await));

    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*",
        "Action":"s3:GetObject","Resource":"arn:aws:s3:::data/docs/*"}]}"#;
    mem.update_bucket_config(&b("data"), BucketChange::Policy(Some(deny.into())))
        .await
        .unwrap();
    assert!(denied(read(&l, "data", "docs/a").await));
    assert_eq!(read(&l, "data", "top").await.unwrap(), b"data/top");
    assert!(denied(write(&l, "data", "granted2").await));

    // a stored policy that does not parse refuses everything on its bucket
    mem.update_bucket_config(&b("data"), BucketChange::Policy(Some("{not json".into())))
        .await
        .unwrap();
    assert!(denied(read(&l, "data", "top").await));
    assert_eq!(bucket_names(&l).await.unwrap(), ["other"]);

    mem.update_bucket_config(&b("data"), BucketChange::Policy(None))
        .await
        .unwrap();
    assert_eq!(read(&l, "data", "docs/a").await.unwrap(), b"data/docs/a");
}

#[tokio::test]
async fn an_allowed_user_gets_what_the_store_gives() {
    let (_, iam) = setup().await;
    user(&iam, "rw", &["readwrite"], &[]).await;
    let l = IdentityLayer::new(Arc::new(MemLayer::new()), iam, "rw").unwrap();
    // the reference suite, through the layer, for a user allowed s3:*
    cairn_api::conformance::run_all(&l).await;
}

#[tokio::test]
async fn a_missing_user_is_refused_at_construction() {
    let (mem, iam) = setup().await;
    let e = IdentityLayer::new(mem, iam, "ghost").unwrap_err();
    assert!(matches!(e, IamError::NoSuchEntity { .. }), "{e:?}");
}

/// Every method of `ObjectLayer`, defaulted ones included, is decided by
/// the layer: none is left to a default that would reach the store
/// around the decision.
#[test]
fn every_trait_method_is_overridden() {
    let trait_src = include_str!("../../api/src/layer.rs");
    let start = trait_src.find("pub trait ObjectLayer").unwrap();
    let body = &trait_src[start..];
    let end = body.find("\n}\n").unwrap();
    let ours = include_str!("layer.rs");
    let impl_start = ours.find("impl ObjectLayer for IdentityLayer").unwrap();
    let ours = &ours[impl_start..];
    let mut n = 0;
    for line in body[..end].lines() {
        let t = line.trim_start();
        let Some(rest) = t
            .strip_prefix("async fn ")
            .or_else(|| t.strip_prefix("fn "))
        else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        n += 1;
        assert!(
            ours.contains(&format!("fn {name}(")),
            "IdentityLayer does not decide ObjectLayer::{name}"
        );
    }
    assert!(n > 30, "found only {n} trait methods");
}
