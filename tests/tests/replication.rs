//! Bucket replication (issue 22): two real Cairn servers (and moto as
//! another vendor), targets registered with `cairn admin replicate add`,
//! rules set with aws-sdk-s3's PutBucketReplication; new versions,
//! overwrites, delete markers and tag changes arrive with the source's
//! version ids, COMPLETED at the source and REPLICA at the target; nothing
//! is lost while the target is down or when the source is SIGKILLed after
//! answering; two-way replication converges; bad rules get AWS's codes.

use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination, ObjectLockLegalHold,
    ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
    ReplicationConfiguration, ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus, Tag,
    Tagging,
};
use cairn_tests::emulators::start_moto;
use cairn_tests::{
    Server, admin, bucket_name, err_code, get_bytes, new_bucket, new_versioned_bucket,
};

const WAIT: Duration = Duration::from_secs(60);

fn rule(id: &str, priority: i32, prefix: &str, dest: &str) -> Result<ReplicationRule> {
    Ok(ReplicationRule::builder()
        .id(id)
        .priority(priority)
        .status(ReplicationRuleStatus::Enabled)
        .filter(ReplicationRuleFilter::builder().prefix(prefix).build())
        .delete_marker_replication(
            DeleteMarkerReplication::builder()
                .status(DeleteMarkerReplicationStatus::Enabled)
                .build(),
        )
        .destination(Destination::builder().bucket(dest).build()?)
        .build()?)
}

async fn put_rules(c: &Client, bucket: &str, rules: Vec<ReplicationRule>) -> Result<(), String> {
    let cfg = ReplicationConfiguration::builder()
        .role("arn:aws:iam::000000000000:role/replication")
        .set_rules(Some(rules))
        .build()
        .map_err(|e| e.to_string())?;
    c.put_bucket_replication()
        .bucket(bucket)
        .replication_configuration(cfg)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| err_code(&e))
}

/// `cairn admin replicate add` on `src` for `bucket` -> `dest_bucket` at
/// `endpoint` (with `extra` arguments).
async fn add_target_with(
    src: &Server,
    bucket: &str,
    dest_bucket: &str,
    endpoint: &str,
    creds: (&str, &str),
    extra: &[&str],
) -> Result<()> {
    let arn = format!("arn:aws:s3:::{dest_bucket}");
    let mut args = vec![
        "replicate",
        "add",
        bucket,
        "--target-bucket",
        &arn,
        "--target-endpoint",
        endpoint,
        "--access-key",
        creds.0,
        "--secret-key",
        creds.1,
    ];
    args.extend_from_slice(extra);
    let out = admin(src, &args, None).await?;
    ensure!(
        out.status.success(),
        "replicate add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

async fn add_target(
    src: &Server,
    bucket: &str,
    dest_bucket: &str,
    endpoint: &str,
    creds: (&str, &str),
) -> Result<()> {
    add_target_with(src, bucket, dest_bucket, endpoint, creds, &[]).await
}

/// A bucket with object lock (and so versioning).
async fn new_locked_bucket(c: &Client, prefix: &str) -> Result<String> {
    let b = bucket_name(prefix);
    c.create_bucket()
        .bucket(&b)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .with_context(|| format!("create bucket {b} with object lock"))?;
    Ok(b)
}

/// A versioned bucket on `a` replicating everything to a versioned
/// bucket on `b`.
async fn pair(a: &Server, b: &Server) -> Result<(String, String)> {
    let src = new_versioned_bucket(&a.s3(), "src").await?;
    let dst = new_versioned_bucket(&b.s3(), "dst").await?;
    rules_to(a, b, &src, &dst).await?;
    Ok((src, dst))
}

/// [`pair`] with object lock on both buckets.
async fn locked_pair(a: &Server, b: &Server) -> Result<(String, String)> {
    let src = new_locked_bucket(&a.s3(), "src").await?;
    let dst = new_locked_bucket(&b.s3(), "dst").await?;
    rules_to(a, b, &src, &dst).await?;
    Ok((src, dst))
}

/// `src` on `a` replicates everything to `dst` on `b`.
async fn rules_to(a: &Server, b: &Server, src: &str, dst: &str) -> Result<()> {
    add_target(a, src, dst, &b.endpoint(), (b.access_key(), b.secret_key())).await?;
    put_rules(
        &a.s3(),
        src,
        vec![rule("all", 1, "", &format!("arn:aws:s3:::{dst}"))?],
    )
    .await
    .map_err(|e| anyhow::anyhow!("PutBucketReplication: {e}"))
}

/// A version's `x-amz-replication-status` (None: no header).
async fn status(c: &Client, bucket: &str, key: &str, version: &str) -> Result<Option<String>> {
    let h = c
        .head_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .with_context(|| format!("HEAD {bucket}/{key}?versionId={version}"))?;
    Ok(h.replication_status().map(|s| s.as_str().to_owned()))
}

/// Waits until every version is COMPLETED at the source.
async fn wait_completed(c: &Client, bucket: &str, versions: &[(String, String)]) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    for (k, v) in versions {
        loop {
            let s = status(c, bucket, k, v).await?;
            if s.as_deref() == Some("COMPLETED") {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{k} {v} still {s:?} after {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Every (key, version id, delete marker) of a bucket, sorted.
async fn versions(c: &Client, bucket: &str) -> Result<Vec<(String, String, bool)>> {
    let out = c.list_object_versions().bucket(bucket).send().await?;
    let mut all: Vec<(String, String, bool)> = out
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap_or_default().to_owned(),
                v.version_id().unwrap_or_default().to_owned(),
                false,
            )
        })
        .chain(out.delete_markers().iter().map(|m| {
            (
                m.key().unwrap_or_default().to_owned(),
                m.version_id().unwrap_or_default().to_owned(),
                true,
            )
        }))
        .collect();
    all.sort();
    Ok(all)
}

async fn put(c: &Client, bucket: &str, key: &str, body: Vec<u8>) -> Result<String> {
    let out = c
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .with_context(|| format!("PUT {bucket}/{key}"))?;
    out.version_id()
        .map(str::to_owned)
        .context("PUT answered no version id")
}

async fn wait_versions(c: &Client, bucket: &str, want: &[(String, String, bool)]) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = versions(c, bucket).await?;
        if got == want {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("versions at the target: {got:?}\nwanted: {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versions_markers_and_tags_arrive_with_their_ids() -> Result<()> {
    let a = Server::start_default().await?;
    let b = Server::start_default().await?;
    let (src, dst) = pair(&a, &b).await?;
    let (ca, cb) = (a.s3(), b.s3());

    let small = ca
        .put_object()
        .bucket(&src)
        .key("docs/a.txt")
        .body(ByteStream::from_static(b"first"))
        .content_type("text/plain")
        .metadata("colour", "blue")
        .tagging("team=red")
        .send()
        .await?
        .version_id()
        .context("no version")?
        .to_owned();
    assert_eq!(
        status(&ca, &src, "docs/a.txt", &small)
            .await?
            .as_deref()
            .map(|s| s == "PENDING" || s == "COMPLETED"),
        Some(true)
    );
    let over = put(&ca, &src, "docs/a.txt", b"second".to_vec()).await?;
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    let bigv = put(&ca, &src, "big.bin", big.clone()).await?;
    let marker = ca
        .delete_object()
        .bucket(&src)
        .key("gone.txt")
        .send()
        .await?;
    ensure!(
        marker.version_id().is_some(),
        "no marker for a missing key?"
    );
    let gone_v = put(&ca, &src, "gone2.txt", b"x".to_vec()).await?;
    let m2 = ca
        .delete_object()
        .bucket(&src)
        .key("gone2.txt")
        .send()
        .await?;
    let m2v = m2.version_id().context("no marker id")?.to_owned();

    let created = [
        ("docs/a.txt".to_string(), small.clone()),
        ("docs/a.txt".to_string(), over.clone()),
        ("big.bin".to_string(), bigv.clone()),
        ("gone2.txt".to_string(), gone_v.clone()),
    ];
    wait_completed(&ca, &src, &created).await?;
    let want = versions(&ca, &src).await?;
    wait_versions(&cb, &dst, &want).await?;
    ensure!(
        want.iter()
            .any(|(k, v, m)| k == "gone2.txt" && *v == m2v && *m),
        "marker listed"
    );

    // the copies: REPLICA, same bytes, metadata, tags, mtime
    for (k, v) in &created {
        assert_eq!(
            status(&cb, &dst, k, v).await?.as_deref(),
            Some("REPLICA"),
            "{k} {v}"
        );
        let sa = ca
            .head_object()
            .bucket(&src)
            .key(k)
            .version_id(v)
            .send()
            .await?;
        let sb = cb
            .head_object()
            .bucket(&dst)
            .key(k)
            .version_id(v)
            .send()
            .await?;
        assert_eq!(sa.last_modified(), sb.last_modified(), "{k} mtime");
        assert_eq!(sa.e_tag(), sb.e_tag(), "{k} etag");
    }
    let h = cb
        .head_object()
        .bucket(&dst)
        .key("docs/a.txt")
        .version_id(&small)
        .send()
        .await?;
    assert_eq!(h.content_type(), Some("text/plain"));
    assert_eq!(
        h.metadata()
            .and_then(|m| m.get("colour"))
            .map(String::as_str),
        Some("blue")
    );
    let t = cb
        .get_object_tagging()
        .bucket(&dst)
        .key("docs/a.txt")
        .version_id(&small)
        .send()
        .await?;
    assert_eq!(
        t.tag_set().first().map(|t| (t.key(), t.value())),
        Some(("team", "red"))
    );
    assert_eq!(get_bytes(&cb, &dst, "big.bin").await?, big);

    // a tag change follows
    ca.put_object_tagging()
        .bucket(&src)
        .key("docs/a.txt")
        .version_id(&over)
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("stage").value("2").build()?)
                .build()?,
        )
        .send()
        .await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let t = cb
            .get_object_tagging()
            .bucket(&dst)
            .key("docs/a.txt")
            .version_id(&over)
            .send()
            .await?;
        if t.tag_set().first().map(|t| (t.key(), t.value())) == Some(("stage", "2")) {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "tag change did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // progress as the admin sees it
    let out = admin(&a, &["replicate", "status", &src, "--json"], None).await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let t = &st["targets"][0];
    assert_eq!(t["backlog"], 0, "{st}");
    ensure!(t["replicated"].as_u64().unwrap_or(0) >= 6, "{st}");
    ensure!(t["bytes"].as_u64().unwrap_or(0) >= big.len() as u64, "{st}");
    let out = admin(&a, &["replicate", "list", &src], None).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        text.contains(&dst) && !text.contains(b.secret_key()),
        "list: {text}"
    );

    // an ordinary writer at the target can neither pick version ids nor make REPLICAs
    let rw = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:DeleteObject"],"Resource":"arn:aws:s3:::*"}]}"#;
    let user = b.iam_user("writer", Some(rw))?;
    let e = user
        .put_object()
        .bucket(&dst)
        .key("forged")
        .body(ByteStream::from_static(b"x"))
        .customize()
        .mutate_request(|r| {
            r.headers_mut().insert(
                "x-cairn-source-version-id",
                "0123456789abcdef0123456789abcdef",
            );
        })
        .send()
        .await
        .expect_err("a forged replica must be refused");
    assert_eq!(err_code(&e), "AccessDenied");
    let v = put(&user, &dst, "plain", b"y".to_vec()).await?;
    assert_eq!(status(&cb, &dst, "plain", &v).await?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn target_down_then_back_gets_everything() -> Result<()> {
    let a = Server::start_default().await?;
    let mut b = Server::start_default().await?;
    let (src, dst) = pair(&a, &b).await?;
    let ca = a.s3();
    b.kill()?;
    let mut made = Vec::new();
    for i in 0..8 {
        let k = format!("k{i}");
        made.push((
            k.clone(),
            put(&ca, &src, &k, vec![i as u8; 1000 + i]).await?,
        ));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (k, v) in &made {
        let s = status(&ca, &src, k, v).await?;
        ensure!(
            matches!(s.as_deref(), Some("PENDING" | "FAILED")),
            "{k}: {s:?} while the target is down"
        );
    }
    b.restart().await?;
    wait_completed(&ca, &src, &made).await?;
    wait_versions(&b.s3(), &dst, &versions(&ca, &src).await?).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn source_killed_after_answering_replicates_after_restart() -> Result<()> {
    let mut a = Server::start_default().await?;
    let b = Server::start_default().await?;
    let (src, dst) = pair(&a, &b).await?;
    let ca = a.s3();
    let mut made = Vec::new();
    for i in 0..20 {
        let k = format!("n{i}");
        made.push((k.clone(), put(&ca, &src, &k, vec![7u8; 200 * 1024]).await?));
    }
    a.kill()?;
    a.restart().await?;
    let ca = a.s3();
    wait_completed(&ca, &src, &made).await?;
    wait_versions(&b.s3(), &dst, &versions(&ca, &src).await?).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_way_replication_converges_without_loops() -> Result<()> {
    let a = Server::start_default().await?;
    let b = Server::start_default().await?;
    let (ca, cb) = (a.s3(), b.s3());
    let ba = new_versioned_bucket(&ca, "two").await?;
    let bb = new_versioned_bucket(&cb, "two").await?;
    add_target(
        &a,
        &ba,
        &bb,
        &b.endpoint(),
        (b.access_key(), b.secret_key()),
    )
    .await?;
    add_target(
        &b,
        &bb,
        &ba,
        &a.endpoint(),
        (a.access_key(), a.secret_key()),
    )
    .await?;
    put_rules(
        &ca,
        &ba,
        vec![rule("ab", 1, "", &format!("arn:aws:s3:::{bb}"))?],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    put_rules(
        &cb,
        &bb,
        vec![rule("ba", 1, "", &format!("arn:aws:s3:::{ba}"))?],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let va = put(&ca, &ba, "from-a", b"a".to_vec()).await?;
    let vb = put(&cb, &bb, "from-b", b"b".to_vec()).await?;
    ca.delete_object().bucket(&ba).key("from-a").send().await?;
    wait_completed(&ca, &ba, &[("from-a".into(), va)]).await?;
    wait_completed(&cb, &bb, &[("from-b".into(), vb)]).await?;
    let want = versions(&ca, &ba).await?;
    wait_versions(&cb, &bb, &want).await?;
    ensure!(want.len() == 3, "two versions and a marker: {want:?}");
    // nothing comes back and forth
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(versions(&ca, &ba).await?, want);
    assert_eq!(versions(&cb, &bb).await?, want);
    Ok(())
}

/// Polls `check` until it holds (or fails after [`WAIT`], saying `what`).
async fn until<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if check().await? {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{what}: not after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A version's retention (mode, until in Unix seconds) and legal hold,
/// as HEAD shows them.
async fn lock_of(
    c: &Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<(Option<(String, i64)>, bool)> {
    let h = c
        .head_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .with_context(|| format!("HEAD {bucket}/{key}"))?;
    let retention = h
        .object_lock_mode()
        .zip(h.object_lock_retain_until_date())
        .map(|(m, u)| (m.as_str().to_owned(), u.secs()));
    let hold = h
        .object_lock_legal_hold_status()
        .is_some_and(|s| s.as_str() == "ON");
    Ok((retention, hold))
}

/// The first tag of a version (or of the current one).
async fn first_tag(
    c: &Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<Option<(String, String)>> {
    let t = c
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .with_context(|| format!("GetObjectTagging {bucket}/{key}"))?;
    Ok(t.tag_set()
        .first()
        .map(|t| (t.key().to_owned(), t.value().to_owned())))
}

fn tagging(k: &str, v: &str) -> Result<Tagging> {
    Ok(Tagging::builder()
        .tag_set(Tag::builder().key(k).value(v).build()?)
        .build()?)
}

/// Whole seconds `days` from now.
fn days_ahead(days: i64) -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() + days * 86_400
}

/// Sets (mode GOVERNANCE) a version's retention until `until` and its
/// legal hold at the source, after its creation.
async fn lock_later(
    c: &Client,
    bucket: &str,
    key: &str,
    version: &str,
    until: i64,
    hold: bool,
) -> Result<()> {
    c.put_object_retention()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .retention(
            ObjectLockRetention::builder()
                .mode(ObjectLockRetentionMode::Governance)
                .retain_until_date(DateTime::from_secs(until))
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("PutObjectRetention {key}"))?;
    c.put_object_legal_hold()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(if hold {
                    ObjectLockLegalHoldStatus::On
                } else {
                    ObjectLockLegalHoldStatus::Off
                })
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("PutObjectLegalHold {key}"))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_and_legal_hold_arrive_at_creation_and_after() -> Result<()> {
    let a = Server::start_default().await?;
    let b = Server::start_default().await?;
    let (src, dst) = locked_pair(&a, &b).await?;
    let (ca, cb) = (a.s3(), b.s3());
    let until = days_ahead(1);
    let v = ca
        .put_object()
        .bucket(&src)
        .key("locked")
        .body(ByteStream::from_static(b"kept"))
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(DateTime::from_secs(until))
        .send()
        .await?
        .version_id()
        .context("no version")?
        .to_owned();
    wait_completed(&ca, &src, &[("locked".into(), v.clone())]).await?;
    assert_eq!(
        lock_of(&cb, &dst, "locked", Some(&v)).await?,
        (Some(("GOVERNANCE".into(), until)), false),
        "retention at creation"
    );
    // changed after creation: both follow
    let later = days_ahead(2);
    lock_later(&ca, &src, "locked", &v, later, true).await?;
    until_lock(
        &cb,
        &dst,
        "locked",
        Some(&v),
        (Some(("GOVERNANCE".into(), later)), true),
    )
    .await?;
    // the hold lifted follows too
    ca.put_object_legal_hold()
        .bucket(&src)
        .key("locked")
        .version_id(&v)
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::Off)
                .build(),
        )
        .send()
        .await?;
    until_lock(
        &cb,
        &dst,
        "locked",
        Some(&v),
        (Some(("GOVERNANCE".into(), later)), false),
    )
    .await?;
    Ok(())
}

/// Waits until a version's lock at the target is `want`.
async fn until_lock(
    c: &Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
    want: (Option<(String, i64)>, bool),
) -> Result<()> {
    until(&format!("{key}'s lock {want:?}"), || async {
        Ok(lock_of(c, bucket, key, version).await? == want)
    })
    .await
}

/// moto is another vendor: its own version ids (the copies get new ones),
/// its own GetBucketVersioning document (root GetBucketVersioningResponse,
/// read by the target probe).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cairn_to_moto() -> Result<()> {
    let moto = start_moto().await?;
    let a = Server::start_default().await?;
    let m = moto.client();
    let dst = new_locked_bucket(&m, "moto").await?;
    let ca = a.s3();
    let src = new_locked_bucket(&ca, "src").await?;
    add_target(&a, &src, &dst, &moto.endpoint, ("motokey", "motosecret")).await?;
    put_rules(
        &ca,
        &src,
        vec![rule("m", 1, "", &format!("arn:aws:s3:::{dst}"))?],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let body: Vec<u8> = (0..2 * 1024 * 1024).map(|i| (i % 13) as u8).collect();
    let until1 = days_ahead(1);
    let v = ca
        .put_object()
        .bucket(&src)
        .key("obj")
        .metadata("k", "v")
        .content_type("application/x-test")
        .tagging("team=red")
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(DateTime::from_secs(until1))
        .body(ByteStream::from(body.clone()))
        .send()
        .await?
        .version_id()
        .context("no version")?
        .to_owned();
    wait_completed(&ca, &src, &[("obj".into(), v)]).await?;
    assert_eq!(get_bytes(&m, &dst, "obj").await?, body);
    let h = m.head_object().bucket(&dst).key("obj").send().await?;
    assert_eq!(h.content_type(), Some("application/x-test"));
    assert_eq!(
        h.metadata().and_then(|x| x.get("k")).map(String::as_str),
        Some("v")
    );
    assert_eq!(
        first_tag(&m, &dst, "obj", None).await?,
        Some(("team".into(), "red".into()))
    );
    assert_eq!(
        lock_of(&m, &dst, "obj", None).await?,
        (Some(("GOVERNANCE".into(), until1)), false)
    );

    // an overwrite: the newest at moto
    let v2 = put(&ca, &src, "obj", b"second".to_vec()).await?;
    wait_completed(&ca, &src, &[("obj".into(), v2.clone())]).await?;
    assert_eq!(get_bytes(&m, &dst, "obj").await?, b"second");
    let listed = m.list_object_versions().bucket(&dst).send().await?;
    assert_eq!(listed.versions().len(), 2, "{listed:?}");

    // tags, retention and legal hold changed after creation
    ca.put_object_tagging()
        .bucket(&src)
        .key("obj")
        .version_id(&v2)
        .tagging(tagging("stage", "2")?)
        .send()
        .await?;
    until("the tag change at moto", || async {
        Ok(first_tag(&m, &dst, "obj", None).await? == Some(("stage".into(), "2".into())))
    })
    .await?;
    let until2 = days_ahead(3);
    lock_later(&ca, &src, "obj", &v2, until2, true).await?;
    until_lock(
        &m,
        &dst,
        "obj",
        None,
        (Some(("GOVERNANCE".into(), until2)), true),
    )
    .await?;

    // a delete: a delete marker at moto
    let marker = ca.delete_object().bucket(&src).key("obj").send().await?;
    ensure!(marker.delete_marker() == Some(true), "no delete marker");
    until("the delete marker at moto", || async {
        let l = m.list_object_versions().bucket(&dst).send().await?;
        Ok(l.delete_markers()
            .iter()
            .any(|d| d.is_latest() == Some(true)))
    })
    .await?;
    let e = m
        .get_object()
        .bucket(&dst)
        .key("obj")
        .send()
        .await
        .expect_err("the key is deleted at moto");
    assert_eq!(err_code(&e), "NoSuchKey");
    Ok(())
}

/// The text `cairn admin replicate status` prints.
async fn status_text(a: &Server, bucket: &str) -> Result<String> {
    let out = admin(a, &["replicate", "status", bucket], None).await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last resync's report, as `status --json` gives it.
async fn resync_json(a: &Server, bucket: &str) -> Result<serde_json::Value> {
    let out = admin(a, &["replicate", "status", bucket, "--json"], None).await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(st["targets"][0]["resync"].clone())
}

/// Deletes every version and delete marker of a bucket.
async fn wipe(c: &Client, bucket: &str) -> Result<()> {
    for (k, v, _) in versions(c, bucket).await? {
        c.delete_object()
            .bucket(bucket)
            .key(&k)
            .version_id(&v)
            .send()
            .await
            .with_context(|| format!("delete {k} {v}"))?;
    }
    ensure!(versions(c, bucket).await?.is_empty(), "{bucket} not wiped");
    Ok(())
}

async fn resync(a: &Server, bucket: &str, dst: &str) -> Result<()> {
    let out = admin(a, &["replicate", "resync", bucket, dst], None).await?;
    ensure!(
        out.status.success(),
        "resync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resync_restores_a_wiped_target_with_progress() -> Result<()> {
    let mut a = Server::start_default().await?;
    let b = Server::start_default().await?;
    let (src, dst) = pair(&a, &b).await?;
    let (ca, cb) = (a.s3(), b.s3());
    let mut made = Vec::new();
    for i in 0..8 {
        let k = format!("r/{i}");
        made.push((
            k.clone(),
            put(&ca, &src, &k, vec![i as u8; 700 * 1024]).await?,
        ));
    }
    for i in 0..2 {
        let k = format!("r/{i}");
        made.push((k.clone(), put(&ca, &src, &k, vec![9u8; 300 * 1024]).await?));
    }
    ca.delete_object().bucket(&src).key("r/7").send().await?;
    wait_completed(&ca, &src, &made).await?;
    let want = versions(&ca, &src).await?;
    wait_versions(&cb, &dst, &want).await?;

    // the target loses everything; the copies are paced so that the
    // resync takes a few seconds (the same target again, with a limit)
    wipe(&cb, &dst).await?;
    add_target_with(
        &a,
        &src,
        &dst,
        &b.endpoint(),
        (b.access_key(), b.secret_key()),
        &["--bandwidth", "2000000"],
    )
    .await?;
    // a resync needs a target of the bucket
    let out = admin(&a, &["replicate", "resync", &src, "nowhere"], None).await?;
    ensure!(!out.status.success(), "a resync to no target started");
    resync(&a, &src, &dst).await?;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = status_text(&a, &src).await?;
        let done = text.contains(": done");
        seen.push(text);
        if done {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the resync did not end: {seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ensure!(
        seen.iter()
            .any(|t| t.contains(": sending") && t.contains("objects") && t.contains("ETA")),
        "no progress shown: {seen:#?}"
    );
    wait_versions(&cb, &dst, &want).await?;
    let r = resync_json(&a, &src).await?;
    assert_eq!(r["phase"], "done", "{r}");
    assert_eq!(r["total_objects"], want.len(), "{r}");
    assert_eq!(r["done_objects"], want.len(), "{r}");
    assert_eq!(r["total_bytes"], 8 * 700 * 1024 + 2 * 300 * 1024, "{r}");
    for (k, v, marker) in &want {
        if !marker {
            assert_eq!(status(&cb, &dst, k, v).await?.as_deref(), Some("REPLICA"));
        }
    }

    // a resync goes on after its server was killed
    wipe(&cb, &dst).await?;
    resync(&a, &src, &dst).await?;
    until("the second resync sends", || async {
        let r = resync_json(&a, &src).await?;
        Ok(r["phase"] == "sending" && r["done_objects"].as_u64().unwrap_or(0) > 0)
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    a.kill()?;
    a.restart().await?;
    let r = resync_json(&a, &src).await?;
    ensure!(
        matches!(r["phase"].as_str(), Some("sending" | "done")),
        "after the restart: {r}"
    );
    until("the resumed resync ends", || async {
        Ok(resync_json(&a, &src).await?["phase"] == "done")
    })
    .await?;
    wait_versions(&cb, &dst, &want).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_configurations_get_aws_codes_and_change_nothing() -> Result<()> {
    let a = Server::start_default().await?;
    let b = Server::start_default().await?;
    let ca = a.s3();
    let (src, dst) = pair(&a, &b).await?;
    let arn = format!("arn:aws:s3:::{dst}");
    let before = ca.get_bucket_replication().bucket(&src).send().await?;

    // versioning off at the source
    let plain = new_bucket(&ca, "plain").await?;
    assert_eq!(
        put_rules(&ca, &plain, vec![rule("r", 1, "", &arn)?]).await,
        Err("InvalidRequest".into())
    );
    let e = ca
        .get_bucket_replication()
        .bucket(&plain)
        .send()
        .await
        .expect_err("no config");
    assert_eq!(err_code(&e), "ReplicationConfigurationNotFoundError");
    // not an ARN
    assert_eq!(
        put_rules(&ca, &src, vec![rule("r", 1, "", &dst)?]).await,
        Err("InvalidArgument".into())
    );
    // no such target
    assert_eq!(
        put_rules(&ca, &src, vec![rule("r", 1, "", "arn:aws:s3:::nowhere")?]).await,
        Err("InvalidRequest".into())
    );
    // overlapping rules with one priority
    assert_eq!(
        put_rules(
            &ca,
            &src,
            vec![rule("r1", 1, "a/", &arn)?, rule("r2", 1, "a/b", &arn)?]
        )
        .await,
        Err("InvalidArgument".into())
    );
    // disjoint prefixes may share one
    put_rules(
        &ca,
        &src,
        vec![rule("r1", 1, "a/", &arn)?, rule("r2", 1, "b/", &arn)?],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    put_rules(
        &ca,
        &src,
        before
            .replication_configuration()
            .context("config")?
            .rules()
            .to_vec(),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let after = ca.get_bucket_replication().bucket(&src).send().await?;
    assert_eq!(
        before.replication_configuration().map(|c| c.rules().len()),
        after.replication_configuration().map(|c| c.rules().len())
    );
    // a target that does not keep versions is refused at registration
    let unversioned = new_bucket(&b.s3(), "nover").await?;
    let out = admin(
        &a,
        &[
            "replicate",
            "add",
            &src,
            "--target-bucket",
            &unversioned,
            "--target-endpoint",
            &b.endpoint(),
            "--access-key",
            b.access_key(),
            "--secret-key",
            b.secret_key(),
        ],
        None,
    )
    .await?;
    ensure!(!out.status.success(), "an unversioned target was accepted");
    // a target a rule names is not removed
    let out = admin(
        &a,
        &["replicate", "remove", &src, "--target-bucket", &dst],
        None,
    )
    .await?;
    ensure!(!out.status.success(), "a target in use was removed");
    Ok(())
}
