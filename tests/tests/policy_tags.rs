//! Tag condition keys against the real store (s3/tests/policy.rs covers
//! the other keys over a MemLayer, which keeps no tags): an IAM user made
//! with `aws iam`, requests through aws-sdk-s3.
//! - `s3:ExistingObjectTag/<k>`: the object's stored tags, read when a
//!   policy names the key, and a re-tag counts at once;
//! - `s3:RequestObjectTag/<k>` and `s3:RequestObjectTagKeys`: the tags a
//!   PUT asks for (`x-amz-tagging`).

use anyhow::{Result, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Tag, Tagging};
use cairn_tests::{Server, allowed, bucket_name};

async fn put_tagged(c: &Client, b: &str, k: &str, tagging: Option<&str>) -> Result<bool> {
    let r = c
        .put_object()
        .bucket(b)
        .key(k)
        .set_tagging(tagging.map(str::to_owned))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    allowed("PUT", r)
}

async fn can_get(c: &Client, b: &str, k: &str) -> Result<bool> {
    allowed("GET", c.get_object().bucket(b).key(k).send().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_object_tags_decide_reads() -> Result<()> {
    let s = Server::start_default().await?;
    let root = s.s3();
    let b = bucket_name("tags");
    root.create_bucket().bucket(&b).send().await?;
    put_tagged(&root, &b, "pub", Some("class=public")).await?;
    put_tagged(&root, &b, "priv", Some("class=private")).await?;
    put_tagged(&root, &b, "none", None).await?;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject",
        "Resource":"arn:aws:s3:::{b}/*","Condition":{{"StringEquals":{{"s3:ExistingObjectTag/class":"public"}}}}}}]}}"#
    );
    let user = s.iam_user("tagreader", Some(&policy))?;
    ensure!(can_get(&user, &b, "pub").await?, "tagged public");
    ensure!(!can_get(&user, &b, "priv").await?, "tagged private");
    ensure!(!can_get(&user, &b, "none").await?, "untagged");
    // a missing object is not a way around the condition
    ensure!(!can_get(&user, &b, "missing").await?, "missing object");

    // re-tagging counts from the next request
    let public = Tagging::builder()
        .tag_set(Tag::builder().key("class").value("public").build()?)
        .build()?;
    root.put_object_tagging()
        .bucket(&b)
        .key("priv")
        .tagging(public)
        .send()
        .await?;
    ensure!(can_get(&user, &b, "priv").await?, "re-tagged public");
    root.delete_object_tagging()
        .bucket(&b)
        .key("pub")
        .send()
        .await?;
    ensure!(!can_get(&user, &b, "pub").await?, "tags removed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_tags_decide_writes() -> Result<()> {
    let s = Server::start_default().await?;
    let root = s.s3();
    let b = bucket_name("reqtags");
    root.create_bucket().bucket(&b).send().await?;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:PutObject",
        "Resource":"arn:aws:s3:::{b}/*","Condition":{{
          "StringEquals":{{"s3:RequestObjectTag/team":"blue"}},
          "ForAllValues:StringEquals":{{"s3:RequestObjectTagKeys":["team","env"]}}}}}}]}}"#
    );
    let user = s.iam_user("tagwriter", Some(&policy))?;
    ensure!(put_tagged(&user, &b, "a", Some("team=blue")).await?, "blue");
    ensure!(
        put_tagged(&user, &b, "b", Some("team=blue&env=prod")).await?,
        "blue with an allowed key"
    );
    ensure!(!put_tagged(&user, &b, "c", Some("team=red")).await?, "red");
    ensure!(
        !put_tagged(&user, &b, "d", Some("team=blue&owner=x")).await?,
        "a key outside the allowed set"
    );
    ensure!(!put_tagged(&user, &b, "e", None).await?, "untagged");
    // what was refused was not stored
    let listed = root.list_objects_v2().bucket(&b).send().await?;
    let mut keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    keys.sort_unstable();
    ensure!(keys == ["a", "b"], "stored: {keys:?}");
    Ok(())
}
