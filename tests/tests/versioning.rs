//! Versioning, object lock, tagging through aws-sdk-s3 against the real
//! server, with the corner cases S3 documents.

use anyhow::{Context, Result, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketVersioningStatus, DefaultRetention, Delete, ObjectIdentifier, ObjectLockConfiguration,
    ObjectLockEnabled, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockRetentionMode,
    ObjectLockRule, Tag, Tagging, VersioningConfiguration,
};
use cairn_tests::lock::{retain, retention};
use cairn_tests::{Server, bucket_name, err_status, expect_err};

async fn put(c: &Client, b: &str, k: &str, data: &str) -> Result<Option<String>> {
    let o = c
        .put_object()
        .bucket(b)
        .key(k)
        .body(ByteStream::from(data.as_bytes().to_vec()))
        .send()
        .await
        .with_context(|| format!("PUT {b}/{k}"))?;
    Ok(o.version_id().map(str::to_owned))
}

async fn get(c: &Client, b: &str, k: &str, version: Option<&str>) -> Result<String> {
    let o = c
        .get_object()
        .bucket(b)
        .key(k)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .with_context(|| format!("GET {b}/{k} version {version:?}"))?;
    Ok(String::from_utf8(
        o.body.collect().await?.into_bytes().to_vec(),
    )?)
}

async fn set_versioning(c: &Client, b: &str, status: BucketVersioningStatus) -> Result<()> {
    c.put_bucket_versioning()
        .bucket(b)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .context("PutBucketVersioning")?;
    Ok(())
}

async fn new_bucket(c: &Client, prefix: &str, lock: bool) -> Result<String> {
    let b = bucket_name(prefix);
    c.create_bucket()
        .bucket(&b)
        .object_lock_enabled_for_bucket(lock)
        .send()
        .await
        .with_context(|| format!("create bucket {b}"))?;
    Ok(b)
}

/// Every version and marker of the bucket as (key, version id, is
/// latest, is marker), listed page by page with `page` entries per page.
async fn all_versions(c: &Client, b: &str, page: i32) -> Result<Vec<(String, String, bool, bool)>> {
    let mut out = Vec::new();
    let (mut km, mut vm) = (None::<String>, None::<String>);
    loop {
        let r = c
            .list_object_versions()
            .bucket(b)
            .max_keys(page)
            .set_key_marker(km.clone())
            .set_version_id_marker(vm.clone())
            .send()
            .await
            .context("ListObjectVersions")?;
        let mut items: Vec<(String, String, bool, bool, DateTime)> = Vec::new();
        for v in r.versions() {
            items.push((
                v.key().unwrap_or_default().into(),
                v.version_id().unwrap_or_default().into(),
                v.is_latest().unwrap_or(false),
                false,
                *v.last_modified().context("last modified")?,
            ));
        }
        for m in r.delete_markers() {
            items.push((
                m.key().unwrap_or_default().into(),
                m.version_id().unwrap_or_default().into(),
                m.is_latest().unwrap_or(false),
                true,
                *m.last_modified().context("last modified")?,
            ));
        }
        ensure!(
            items.len() <= page as usize,
            "page of {} > max-keys {page}",
            items.len()
        );
        // versions and markers come as two lists: restore the key order,
        // newest first within a key
        items.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(b.4.secs().cmp(&a.4.secs()))
                .then(b.4.subsec_nanos().cmp(&a.4.subsec_nanos()))
        });
        out.extend(items.into_iter().map(|(k, v, l, m, _)| (k, v, l, m)));
        if !r.is_truncated().unwrap_or(false) {
            return Ok(out);
        }
        km = r.next_key_marker().map(str::to_owned);
        vm = r.next_version_id_marker().map(str::to_owned);
        ensure!(km.is_some(), "truncated page without a next key marker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_markers_and_reads_by_id() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "ver", false).await?;
    let st = c.get_bucket_versioning().bucket(&b).send().await?;
    ensure!(st.status().is_none(), "a new bucket is unversioned");
    ensure!(
        put(&c, &b, "k", "v0").await?.is_none(),
        "unversioned PUT has no version id"
    );

    set_versioning(&c, &b, BucketVersioningStatus::Enabled).await?;
    let st = c.get_bucket_versioning().bucket(&b).send().await?;
    ensure!(st.status() == Some(&BucketVersioningStatus::Enabled));
    let v1 = put(&c, &b, "k", "v1").await?.context("v1 has an id")?;
    let v2 = put(&c, &b, "k", "v2").await?.context("v2 has an id")?;
    ensure!(v1 != v2 && v1 != "null");
    ensure!(get(&c, &b, "k", None).await? == "v2");
    ensure!(get(&c, &b, "k", Some(&v1)).await? == "v1");
    ensure!(
        get(&c, &b, "k", Some("null")).await? == "v0",
        "the pre-versioning object is the null version"
    );
    let h = c
        .head_object()
        .bucket(&b)
        .key("k")
        .version_id(&v1)
        .send()
        .await?;
    ensure!(h.version_id() == Some(v1.as_str()) && h.content_length() == Some(2));
    expect_err(
        "GET of an unknown version",
        c.get_object()
            .bucket(&b)
            .key("k")
            .version_id("nope")
            .send()
            .await,
        404,
        Some("NoSuchVersion"),
    )?;

    // delete without a version: a marker hides the key
    let d = c.delete_object().bucket(&b).key("k").send().await?;
    ensure!(d.delete_marker() == Some(true), "delete made a marker");
    let marker = d.version_id().context("marker id")?.to_owned();
    let e = c.get_object().bucket(&b).key("k").send().await;
    let e = e.err().context("GET after delete must fail")?;
    ensure!(err_status(&e) == Some(404), "GET of a deleted key is 404");
    let raw = e.raw_response().context("raw response")?;
    ensure!(
        raw.headers().get("x-amz-delete-marker") == Some("true"),
        "404 carries x-amz-delete-marker"
    );
    expect_err(
        "GET of a delete marker by id",
        c.get_object()
            .bucket(&b)
            .key("k")
            .version_id(&marker)
            .send()
            .await,
        405,
        Some("MethodNotAllowed"),
    )?;
    let l = c.list_objects_v2().bucket(&b).send().await?;
    ensure!(l.contents().is_empty(), "a deleted key is not listed");
    ensure!(
        get(&c, &b, "k", Some(&v2)).await? == "v2",
        "old versions stay readable"
    );

    let all = all_versions(&c, &b, 1000).await?;
    let ids: Vec<&str> = all.iter().map(|v| v.1.as_str()).collect();
    ensure!(
        ids == [marker.as_str(), &v2, &v1, "null"],
        "versions newest first: {ids:?}"
    );
    ensure!(all[0].2 && all[0].3 && !all[1].2, "the marker is latest");

    // removing the marker brings the key back
    let d = c
        .delete_object()
        .bucket(&b)
        .key("k")
        .version_id(&marker)
        .send()
        .await?;
    ensure!(d.delete_marker() == Some(true) && d.version_id() == Some(marker.as_str()));
    ensure!(get(&c, &b, "k", None).await? == "v2");
    // deleting one version leaves the others
    c.delete_object()
        .bucket(&b)
        .key("k")
        .version_id(&v2)
        .send()
        .await?;
    ensure!(get(&c, &b, "k", None).await? == "v1");
    c.delete_object()
        .bucket(&b)
        .key("k")
        .version_id("null")
        .send()
        .await?;
    let all = all_versions(&c, &b, 1000).await?;
    ensure!(all.len() == 1 && all[0].1 == v1, "only v1 is left: {all:?}");

    // DeleteObjects with versions
    let v3 = put(&c, &b, "k", "v3").await?.context("v3 id")?;
    let r = c
        .delete_objects()
        .bucket(&b)
        .delete(
            Delete::builder()
                .objects(
                    ObjectIdentifier::builder()
                        .key("k")
                        .version_id(&v1)
                        .build()?,
                )
                .objects(ObjectIdentifier::builder().key("other").build()?)
                .build()?,
        )
        .send()
        .await?;
    ensure!(r.errors().is_empty(), "{:?}", r.errors());
    let other = r
        .deleted()
        .iter()
        .find(|d| d.key() == Some("other"))
        .context("other")?;
    ensure!(other.delete_marker() == Some(true) && other.delete_marker_version_id().is_some());
    ensure!(get(&c, &b, "k", None).await? == "v3");
    expect_err(
        "GET of a removed version",
        c.get_object()
            .bucket(&b)
            .key("k")
            .version_id(&v1)
            .send()
            .await,
        404,
        Some("NoSuchVersion"),
    )?;
    // a copy names its source version and gets a new one
    let cp = c
        .copy_object()
        .bucket(&b)
        .key("copy")
        .copy_source(format!("{b}/k?versionId={v3}"))
        .send()
        .await?;
    ensure!(cp.copy_source_version_id() == Some(v3.as_str()) && cp.version_id().is_some());
    ensure!(get(&c, &b, "copy", None).await? == "v3");

    // a restart keeps every version
    let mut s = s;
    s.restart().await?;
    let c = s.s3();
    ensure!(get(&c, &b, "k", Some(&v3)).await? == "v3");
    ensure!(all_versions(&c, &b, 1000).await?.len() == 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_versioning_overwrites_the_null_version() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "susp", false).await?;
    set_versioning(&c, &b, BucketVersioningStatus::Enabled).await?;
    let v1 = put(&c, &b, "k", "v1").await?.context("v1 id")?;
    set_versioning(&c, &b, BucketVersioningStatus::Suspended).await?;
    ensure!(
        put(&c, &b, "k", "a")
            .await?
            .as_deref()
            .is_none_or(|v| v == "null")
    );
    put(&c, &b, "k", "b").await?;
    let all = all_versions(&c, &b, 1000).await?;
    let ids: Vec<&str> = all.iter().map(|v| v.1.as_str()).collect();
    ensure!(
        ids == ["null", v1.as_str()],
        "the second null write replaced the first: {ids:?}"
    );
    ensure!(get(&c, &b, "k", Some("null")).await? == "b");
    // a delete in a suspended bucket: a null marker replaces the null version
    let d = c.delete_object().bucket(&b).key("k").send().await?;
    ensure!(d.delete_marker() == Some(true));
    let all = all_versions(&c, &b, 1000).await?;
    ensure!(
        all.len() == 2 && all[0].1 == "null" && all[0].3,
        "null marker on top: {all:?}"
    );
    ensure!(get(&c, &b, "k", Some(&v1)).await? == "v1");
    Ok(())
}

/// Common prefixes of a ListObjectsV2 page, and its keys.
async fn prefixes_and_keys(
    c: &Client,
    b: &str,
    delimiter: &str,
) -> Result<(Vec<String>, Vec<String>)> {
    let r = c
        .list_objects_v2()
        .bucket(b)
        .delimiter(delimiter)
        .send()
        .await
        .context("ListObjectsV2")?;
    let prefixes = r
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix().map(str::to_owned))
        .collect();
    let keys = r
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    Ok((prefixes, keys))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_of_deleted_keys_is_not_listed() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "deadpfx", false).await?;
    set_versioning(&c, &b, BucketVersioningStatus::Enabled).await?;
    for k in [
        "logs/a",
        "logs/deep/b",
        "keep/c",
        "mixed/x",
        "mixed/y",
        "run-1",
        "run-2",
        "top",
    ] {
        put(&c, &b, k, k).await?;
    }
    for k in ["logs/a", "logs/deep/b", "mixed/x", "run-1", "run-2"] {
        c.delete_object().bucket(&b).key(k).send().await?;
    }
    let (prefixes, keys) = prefixes_and_keys(&c, &b, "/").await?;
    ensure!(
        prefixes == ["keep/", "mixed/"],
        "prefixes with '/': {prefixes:?}"
    );
    ensure!(keys == ["top"], "keys with '/': {keys:?}");
    let (prefixes, keys) = prefixes_and_keys(&c, &b, "-").await?;
    ensure!(prefixes.is_empty(), "prefixes with '-': {prefixes:?}");
    ensure!(
        keys == ["keep/c", "mixed/y", "top"],
        "keys with '-': {keys:?}"
    );
    // the versions are all still there, and listed under the prefix
    let all = all_versions(&c, &b, 1000).await?;
    ensure!(all.len() == 13, "8 versions and 5 markers: {all:?}");
    // a version brought back by deleting its marker brings the prefix back
    let marker = all
        .iter()
        .find(|v| v.0 == "logs/deep/b" && v.3)
        .context("marker of logs/deep/b")?;
    c.delete_object()
        .bucket(&b)
        .key("logs/deep/b")
        .version_id(&marker.1)
        .send()
        .await?;
    let (prefixes, _) = prefixes_and_keys(&c, &b, "/").await?;
    ensure!(
        prefixes == ["keep/", "logs/", "mixed/"],
        "after undelete: {prefixes:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_1200_versions_in_pages() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "many", false).await?;
    set_versioning(&c, &b, BucketVersioningStatus::Enabled).await?;
    let keys = ["a", "b/x", "c"];
    let mut want: Vec<(String, String)> = Vec::new();
    for k in keys {
        let mut ids = Vec::new();
        for i in 0..400 {
            ids.push(put(&c, &b, k, &format!("{k}{i}")).await?.context("id")?);
        }
        ids.reverse();
        want.extend(ids.into_iter().map(|id| (k.to_owned(), id)));
    }
    for page in [1000, 7] {
        let got = all_versions(&c, &b, page).await?;
        let got: Vec<(String, String)> = got.into_iter().map(|v| (v.0, v.1)).collect();
        ensure!(
            got.len() == 1200,
            "page {page}: {} versions listed",
            got.len()
        );
        ensure!(got == want, "page {page}: versions out of order or missing");
    }
    // a prefix and a delimiter
    let r = c
        .list_object_versions()
        .bucket(&b)
        .delimiter("/")
        .send()
        .await?;
    let cps: Vec<&str> = r
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    ensure!(cps == ["b/"], "{cps:?}");
    ensure!(r.versions().len() == 800);
    let r = c
        .list_object_versions()
        .bucket(&b)
        .prefix("b/")
        .max_keys(5)
        .send()
        .await?;
    ensure!(r.versions().len() == 5 && r.is_truncated() == Some(true));
    ensure!(
        r.versions()[0].is_latest() == Some(true) && r.versions()[1].is_latest() == Some(false)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_lock_retention_and_legal_hold() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let plain = new_bucket(&c, "nolock", false).await?;
    put(&c, &plain, "k", "x").await?;
    expect_err(
        "retention on a bucket without object lock",
        c.put_object_retention()
            .bucket(&plain)
            .key("k")
            .retention(retention(ObjectLockRetentionMode::Governance, 3600))
            .send()
            .await,
        400,
        Some("InvalidRequest"),
    )?;
    expect_err(
        "lock configuration of a bucket without object lock",
        c.get_object_lock_configuration()
            .bucket(&plain)
            .send()
            .await,
        404,
        Some("ObjectLockConfigurationNotFoundError"),
    )?;

    let b = new_bucket(&c, "lock", true).await?;
    let st = c.get_bucket_versioning().bucket(&b).send().await?;
    ensure!(
        st.status() == Some(&BucketVersioningStatus::Enabled),
        "object lock enables versioning"
    );
    expect_err(
        "suspending versioning of a locked bucket",
        c.put_bucket_versioning()
            .bucket(&b)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Suspended)
                    .build(),
            )
            .send()
            .await,
        409,
        Some("InvalidBucketState"),
    )?;

    // GOVERNANCE: delete refused without bypass, allowed with it
    let g = put(&c, &b, "gov", "g").await?.context("id")?;
    retain(
        &c,
        &b,
        "gov",
        Some(&g),
        ObjectLockRetentionMode::Governance,
        3600,
    )
    .await?;
    let r = c
        .get_object_retention()
        .bucket(&b)
        .key("gov")
        .version_id(&g)
        .send()
        .await?;
    ensure!(r.retention().and_then(|r| r.mode()) == Some(&ObjectLockRetentionMode::Governance));
    let h = c.head_object().bucket(&b).key("gov").send().await?;
    ensure!(h.object_lock_mode().is_some() && h.object_lock_retain_until_date().is_some());
    expect_err(
        "delete of a GOVERNANCE version without bypass",
        c.delete_object()
            .bucket(&b)
            .key("gov")
            .version_id(&g)
            .send()
            .await,
        403,
        Some("AccessDenied"),
    )?;
    expect_err(
        "shortening GOVERNANCE without bypass",
        c.put_object_retention()
            .bucket(&b)
            .key("gov")
            .version_id(&g)
            .retention(retention(ObjectLockRetentionMode::Governance, 60))
            .send()
            .await,
        403,
        Some("AccessDenied"),
    )?;
    // a delete without a version id only adds a marker, allowed
    let d = c.delete_object().bucket(&b).key("gov").send().await?;
    ensure!(d.delete_marker() == Some(true));
    ensure!(
        get(&c, &b, "gov", Some(&g)).await? == "g",
        "the locked version is intact"
    );
    c.delete_object()
        .bucket(&b)
        .key("gov")
        .version_id(&g)
        .bypass_governance_retention(true)
        .send()
        .await
        .context("delete with bypass")?;

    // COMPLIANCE: extension allowed, shortening and removal refused even
    // with bypass, delete refused even with bypass
    let k = put(&c, &b, "comp", "c").await?.context("id")?;
    retain(
        &c,
        &b,
        "comp",
        Some(&k),
        ObjectLockRetentionMode::Compliance,
        3600,
    )
    .await?;
    retain(
        &c,
        &b,
        "comp",
        Some(&k),
        ObjectLockRetentionMode::Compliance,
        7200,
    )
    .await
    .context("extending COMPLIANCE")?;
    for (what, r) in [
        (
            "shorter",
            retention(ObjectLockRetentionMode::Compliance, 60),
        ),
        (
            "governance",
            retention(ObjectLockRetentionMode::Governance, 9000),
        ),
    ] {
        expect_err(
            &format!("changing COMPLIANCE ({what}) with bypass"),
            c.put_object_retention()
                .bucket(&b)
                .key("comp")
                .version_id(&k)
                .retention(r)
                .bypass_governance_retention(true)
                .send()
                .await,
            403,
            Some("AccessDenied"),
        )?;
    }
    expect_err(
        "delete of a COMPLIANCE version with bypass",
        c.delete_object()
            .bucket(&b)
            .key("comp")
            .version_id(&k)
            .bypass_governance_retention(true)
            .send()
            .await,
        403,
        Some("AccessDenied"),
    )?;
    ensure!(get(&c, &b, "comp", Some(&k)).await? == "c");

    // legal hold: on refuses the delete (even with bypass), off allows it
    let h = put(&c, &b, "held", "h").await?.context("id")?;
    let hold = |on: bool| {
        ObjectLockLegalHold::builder()
            .status(if on {
                ObjectLockLegalHoldStatus::On
            } else {
                ObjectLockLegalHoldStatus::Off
            })
            .build()
    };
    c.put_object_legal_hold()
        .bucket(&b)
        .key("held")
        .version_id(&h)
        .legal_hold(hold(true))
        .send()
        .await?;
    let lh = c
        .get_object_legal_hold()
        .bucket(&b)
        .key("held")
        .version_id(&h)
        .send()
        .await?;
    ensure!(lh.legal_hold().and_then(|l| l.status()) == Some(&ObjectLockLegalHoldStatus::On));
    expect_err(
        "delete under legal hold",
        c.delete_object()
            .bucket(&b)
            .key("held")
            .version_id(&h)
            .bypass_governance_retention(true)
            .send()
            .await,
        403,
        Some("AccessDenied"),
    )?;
    c.put_object_legal_hold()
        .bucket(&b)
        .key("held")
        .version_id(&h)
        .legal_hold(hold(false))
        .send()
        .await?;
    c.delete_object()
        .bucket(&b)
        .key("held")
        .version_id(&h)
        .send()
        .await
        .context("delete after hold off")?;

    // default retention applies to new versions; lock headers on PUT
    c.put_object_lock_configuration()
        .bucket(&b)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
    let cfg = c.get_object_lock_configuration().bucket(&b).send().await?;
    let d = cfg
        .object_lock_configuration()
        .and_then(|c| c.rule())
        .and_then(|r| r.default_retention())
        .context("default retention")?;
    ensure!(d.days() == Some(1) && d.mode() == Some(&ObjectLockRetentionMode::Governance));
    let n = put(&c, &b, "new", "n").await?.context("id")?;
    let r = c
        .get_object_retention()
        .bucket(&b)
        .key("new")
        .version_id(&n)
        .send()
        .await?;
    ensure!(r.retention().and_then(|r| r.mode()) == Some(&ObjectLockRetentionMode::Governance));
    let until = std::time::SystemTime::now() + std::time::Duration::from_secs(600);
    let p = c
        .put_object()
        .bucket(&b)
        .key("hdr")
        .object_lock_mode(aws_sdk_s3::types::ObjectLockMode::Compliance)
        .object_lock_retain_until_date(DateTime::from(until))
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .body(ByteStream::from_static(b"h"))
        .send()
        .await?;
    let h = c.head_object().bucket(&b).key("hdr").send().await?;
    ensure!(h.object_lock_mode() == Some(&aws_sdk_s3::types::ObjectLockMode::Compliance));
    ensure!(h.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On));
    expect_err(
        "delete of a version locked by PUT headers",
        c.delete_object()
            .bucket(&b)
            .key("hdr")
            .set_version_id(p.version_id().map(str::to_owned))
            .send()
            .await,
        403,
        Some("AccessDenied"),
    )?;
    Ok(())
}

fn tagging(n: usize) -> Result<Tagging> {
    let mut t = Tagging::builder();
    for i in 0..n {
        t = t.tag_set(
            Tag::builder()
                .key(format!("k{i}"))
                .value(format!("v{i}"))
                .build()?,
        );
    }
    Ok(t.build()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_and_bucket_tagging() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "tags", false).await?;
    c.put_object()
        .bucket(&b)
        .key("k")
        .tagging("team=storage&cost%20center=42")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await?;
    let t = c.get_object_tagging().bucket(&b).key("k").send().await?;
    let mut got: Vec<(String, String)> = t
        .tag_set()
        .iter()
        .map(|t| (t.key().into(), t.value().into()))
        .collect();
    got.sort();
    ensure!(
        got == [
            ("cost center".into(), "42".into()),
            ("team".into(), "storage".into())
        ],
        "{got:?}"
    );
    let o = c.get_object().bucket(&b).key("k").send().await?;
    ensure!(o.tag_count() == Some(2), "GET reports the tag count");

    c.put_object_tagging()
        .bucket(&b)
        .key("k")
        .tagging(tagging(10)?)
        .send()
        .await?;
    ensure!(
        c.get_object_tagging()
            .bucket(&b)
            .key("k")
            .send()
            .await?
            .tag_set()
            .len()
            == 10
    );
    expect_err(
        "11 object tags",
        c.put_object_tagging()
            .bucket(&b)
            .key("k")
            .tagging(tagging(11)?)
            .send()
            .await,
        400,
        Some("InvalidTag"),
    )?;
    let long = Tagging::builder()
        .tag_set(Tag::builder().key("x".repeat(129)).value("v").build()?)
        .build()?;
    expect_err(
        "a 129-character tag key",
        c.put_object_tagging()
            .bucket(&b)
            .key("k")
            .tagging(long)
            .send()
            .await,
        400,
        Some("InvalidTag"),
    )?;
    expect_err(
        "x-amz-tagging with 11 tags",
        c.put_object()
            .bucket(&b)
            .key("k2")
            .tagging(
                (0..11)
                    .map(|i| format!("k{i}=v"))
                    .collect::<Vec<_>>()
                    .join("&"),
            )
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        400,
        Some("InvalidTag"),
    )?;
    ensure!(
        c.get_object_tagging()
            .bucket(&b)
            .key("k")
            .send()
            .await?
            .tag_set()
            .len()
            == 10,
        "a refused change leaves the tags"
    );
    c.delete_object_tagging().bucket(&b).key("k").send().await?;
    ensure!(
        c.get_object_tagging()
            .bucket(&b)
            .key("k")
            .send()
            .await?
            .tag_set()
            .is_empty()
    );
    ensure!(
        get(&c, &b, "k", None).await? == "x",
        "tagging never touches the data"
    );

    // tags stay with their version
    set_versioning(&c, &b, BucketVersioningStatus::Enabled).await?;
    let v1 = put(&c, &b, "v", "1").await?.context("id")?;
    put(&c, &b, "v", "2").await?;
    c.put_object_tagging()
        .bucket(&b)
        .key("v")
        .version_id(&v1)
        .tagging(tagging(1)?)
        .send()
        .await?;
    ensure!(
        c.get_object_tagging()
            .bucket(&b)
            .key("v")
            .version_id(&v1)
            .send()
            .await?
            .tag_set()
            .len()
            == 1
    );
    ensure!(
        c.get_object_tagging()
            .bucket(&b)
            .key("v")
            .send()
            .await?
            .tag_set()
            .is_empty()
    );

    expect_err(
        "bucket tagging before any is set",
        c.get_bucket_tagging().bucket(&b).send().await,
        404,
        Some("NoSuchTagSet"),
    )?;
    c.put_bucket_tagging()
        .bucket(&b)
        .tagging(tagging(50)?)
        .send()
        .await?;
    ensure!(
        c.get_bucket_tagging()
            .bucket(&b)
            .send()
            .await?
            .tag_set()
            .len()
            == 50
    );
    expect_err(
        "51 bucket tags",
        c.put_bucket_tagging()
            .bucket(&b)
            .tagging(tagging(51)?)
            .send()
            .await,
        400,
        Some("InvalidTag"),
    )?;
    c.delete_bucket_tagging().bucket(&b).send().await?;
    expect_err(
        "bucket tagging after delete",
        c.get_bucket_tagging().bucket(&b).send().await,
        404,
        Some("NoSuchTagSet"),
    )?;
    Ok(())
}

/// The keys of the bucket's current objects (ListObjectsV2).
async fn current_keys(c: &Client, b: &str) -> Result<Vec<String>> {
    let r = c.list_objects_v2().bucket(b).send().await?;
    Ok(r.contents()
        .iter()
        .filter_map(|o| o.key())
        .map(str::to_owned)
        .collect())
}

fn rule(id: &str, prefix: &str) -> aws_sdk_s3::types::builders::LifecycleRuleBuilder {
    use aws_sdk_s3::types::{ExpirationStatus, LifecycleRule, LifecycleRuleFilter};
    LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
}

async fn lifecycle_pass(s: &Server) -> Result<serde_json::Value> {
    let out = cairn_tests::admin(s, &["lifecycle", "run"], None).await?;
    ensure!(
        out.status.success(),
        "cairn admin lifecycle run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_expires_exactly_the_selected_versions() -> Result<()> {
    use aws_sdk_s3::types::{
        AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, LifecycleExpiration,
        LifecycleRuleAndOperator, LifecycleRuleFilter, NoncurrentVersionExpiration,
    };
    let mut s = Server::start(cairn_tests::StartOpts {
        extra_args: vec!["--no-scanner".into()],
        ..Default::default()
    })
    .await?;
    let c = s.s3();
    let b = new_bucket(&c, "life", false).await?;
    set_versioning(&c, &b, BucketVersioningStatus::Enabled).await?;
    let tagged = Tag::builder().key("env").value("tmp").build()?;
    let cfg = BucketLifecycleConfiguration::builder()
        .rules(
            rule("logs", "logs/")
                .expiration(LifecycleExpiration::builder().days(30).build())
                .build()?,
        )
        .rules(
            rule("old", "old/")
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(10)
                        .newer_noncurrent_versions(1)
                        .build(),
                )
                .build()?,
        )
        .rules({
            use aws_sdk_s3::types::{ExpirationStatus, LifecycleRule};
            LifecycleRule::builder()
                .id("tagged")
                .status(ExpirationStatus::Enabled)
                .filter(
                    LifecycleRuleFilter::builder()
                        .and(
                            LifecycleRuleAndOperator::builder()
                                .prefix("t/")
                                .tags(tagged.clone())
                                .build(),
                        )
                        .build(),
                )
                .expiration(LifecycleExpiration::builder().days(5).build())
                .build()?
        })
        .rules(
            rule("markers", "gone/")
                .expiration(
                    LifecycleExpiration::builder()
                        .expired_object_delete_marker(true)
                        .build(),
                )
                .build()?,
        )
        .rules(
            rule("uploads", "up/")
                .abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(7)
                        .build(),
                )
                .build()?,
        )
        .build()?;
    c.put_bucket_lifecycle_configuration()
        .bucket(&b)
        .lifecycle_configuration(cfg)
        .send()
        .await?;
    let got = c
        .get_bucket_lifecycle_configuration()
        .bucket(&b)
        .send()
        .await?;
    ensure!(got.rules().len() == 5, "{:?}", got.rules());

    put(&c, &b, "logs/a", "a").await?;
    put(&c, &b, "keep/a", "k").await?;
    let mut old = Vec::new();
    for i in 0..4 {
        old.push(
            put(&c, &b, "old/k", &format!("o{i}"))
                .await?
                .context("id")?,
        );
    }
    c.put_object()
        .bucket(&b)
        .key("t/x")
        .tagging("env=tmp")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await?;
    put(&c, &b, "t/y", "y").await?;
    let g = put(&c, &b, "gone/z", "z").await?.context("id")?;
    c.delete_object().bucket(&b).key("gone/z").send().await?;
    c.delete_object()
        .bucket(&b)
        .key("gone/z")
        .version_id(&g)
        .send()
        .await?;
    let up = c
        .create_multipart_upload()
        .bucket(&b)
        .key("up/big")
        .send()
        .await?;

    // today: only the lone delete marker goes (that rule has no age)
    let sum = lifecycle_pass(&s).await?;
    ensure!(
        sum["removed_delete_markers"] == 1 && sum["expired_current"] == 0,
        "{sum}"
    );
    ensure!(
        sum["removed_noncurrent"] == 0 && sum["aborted_uploads"] == 0,
        "{sum}"
    );
    ensure!(
        all_versions(&c, &b, 1000)
            .await?
            .iter()
            .all(|v| v.0 != "gone/z")
    );

    // 40 days later
    s.restart_with_args(vec![
        "--no-scanner".into(),
        format!("--clock-offset-secs={}", 40 * 86400),
    ])
    .await?;
    let c = s.s3();
    let sum = lifecycle_pass(&s).await?;
    ensure!(sum["expired_current"] == 2, "logs/a and t/x expire: {sum}");
    ensure!(
        sum["removed_noncurrent"] == 2,
        "old/k keeps one noncurrent version: {sum}"
    );
    ensure!(sum["aborted_uploads"] == 1, "{sum}");
    let mut keys = current_keys(&c, &b).await?;
    keys.sort();
    ensure!(
        keys == ["keep/a", "old/k", "t/y"],
        "current objects: {keys:?}"
    );
    ensure!(get(&c, &b, "old/k", None).await? == "o3");
    let left: Vec<String> = all_versions(&c, &b, 1000)
        .await?
        .into_iter()
        .filter(|v| v.0 == "old/k")
        .map(|v| v.1)
        .collect();
    ensure!(
        left == [old[3].clone(), old[2].clone()],
        "old/k versions left: {left:?}"
    );
    // the expired current version of logs/a is noncurrent now, not gone
    let logs: Vec<_> = all_versions(&c, &b, 1000)
        .await?
        .into_iter()
        .filter(|v| v.0 == "logs/a")
        .collect();
    ensure!(logs.len() == 2 && logs[0].3 && !logs[1].3, "{logs:?}");
    expect_err(
        "the aborted upload",
        c.list_parts()
            .bucket(&b)
            .key("up/big")
            .upload_id(up.upload_id().unwrap_or_default())
            .send()
            .await,
        404,
        Some("NoSuchUpload"),
    )?;
    // a second pass finds nothing more to do
    let sum = lifecycle_pass(&s).await?;
    ensure!(
        sum["expired_current"] == 0 && sum["removed_noncurrent"] == 0,
        "{sum}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_never_removes_a_locked_version() -> Result<()> {
    let mut s = Server::start(cairn_tests::StartOpts {
        extra_args: vec!["--no-scanner".into()],
        ..Default::default()
    })
    .await?;
    let c = s.s3();
    let b = new_bucket(&c, "lifelock", true).await?;
    let locked = put(&c, &b, "k", "locked").await?.context("id")?;
    retain(
        &c,
        &b,
        "k",
        Some(&locked),
        ObjectLockRetentionMode::Compliance,
        100 * 86400,
    )
    .await?;
    let free = put(&c, &b, "k", "free").await?.context("id")?;
    put(&c, &b, "k", "current").await?;
    c.put_bucket_lifecycle_configuration()
        .bucket(&b)
        .lifecycle_configuration(
            aws_sdk_s3::types::BucketLifecycleConfiguration::builder()
                .rules(
                    rule("nc", "")
                        .noncurrent_version_expiration(
                            aws_sdk_s3::types::NoncurrentVersionExpiration::builder()
                                .noncurrent_days(1)
                                .build(),
                        )
                        .build()?,
                )
                .build()?,
        )
        .send()
        .await?;
    s.restart_with_args(vec![
        "--no-scanner".into(),
        format!("--clock-offset-secs={}", 30 * 86400),
    ])
    .await?;
    let c = s.s3();
    let sum = lifecycle_pass(&s).await?;
    ensure!(
        sum["removed_noncurrent"] == 1 && sum["skipped_locked"] == 1,
        "{sum}"
    );
    ensure!(get(&c, &b, "k", Some(&locked)).await? == "locked");
    expect_err(
        "the unlocked noncurrent version",
        c.get_object()
            .bucket(&b)
            .key("k")
            .version_id(&free)
            .send()
            .await,
        404,
        Some("NoSuchVersion"),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worm_bucket_refuses_every_change_to_existing_objects() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = new_bucket(&c, "worm", false).await?;
    put(&c, &b, "k", "original").await?;
    c.put_object_tagging()
        .bucket(&b)
        .key("k")
        .tagging(tagging(1)?)
        .send()
        .await?;
    let out = cairn_tests::admin(&s, &["bucket", "worm", &b, "on"], None).await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let denied = |what: &str, r: Result<(), (Option<u16>, String)>| -> Result<()> {
        match r {
            Ok(()) => anyhow::bail!("{what}: succeeded in a WORM bucket"),
            Err((st, code)) => {
                ensure!(
                    st == Some(403) && code == "AccessDenied",
                    "{what}: {st:?} {code}"
                );
                Ok(())
            }
        }
    };
    fn e<T, E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug>(
        r: Result<
            T,
            aws_sdk_s3::error::SdkError<
                E,
                aws_smithy_runtime_api::client::orchestrator::HttpResponse,
            >,
        >,
    ) -> Result<(), (Option<u16>, String)> {
        r.map(|_| ())
            .map_err(|e| (err_status(&e), cairn_tests::err_code(&e)))
    }
    denied(
        "overwrite",
        e(c.put_object()
            .bucket(&b)
            .key("k")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await),
    )?;
    denied(
        "delete",
        e(c.delete_object().bucket(&b).key("k").send().await),
    )?;
    denied(
        "delete by version",
        e(c.delete_object()
            .bucket(&b)
            .key("k")
            .version_id("null")
            .send()
            .await),
    )?;
    denied(
        "metadata replace",
        e(c.copy_object()
            .bucket(&b)
            .key("k")
            .copy_source(format!("{b}/k"))
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .content_type("text/plain")
            .send()
            .await),
    )?;
    denied(
        "copy onto it",
        e(c.copy_object()
            .bucket(&b)
            .key("k")
            .copy_source(format!("{b}/k"))
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .send()
            .await),
    )?;
    denied(
        "tagging",
        e(c.put_object_tagging()
            .bucket(&b)
            .key("k")
            .tagging(tagging(2)?)
            .send()
            .await),
    )?;
    denied(
        "tag delete",
        e(c.delete_object_tagging().bucket(&b).key("k").send().await),
    )?;
    let up = c
        .create_multipart_upload()
        .bucket(&b)
        .key("k")
        .send()
        .await?;
    let part = c
        .upload_part()
        .bucket(&b)
        .key("k")
        .upload_id(up.upload_id().unwrap_or_default())
        .part_number(1)
        .body(ByteStream::from_static(b"mp"))
        .send()
        .await?;
    denied(
        "multipart complete over it",
        e(c.complete_multipart_upload()
            .bucket(&b)
            .key("k")
            .upload_id(up.upload_id().unwrap_or_default())
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .parts(
                        aws_sdk_s3::types::CompletedPart::builder()
                            .part_number(1)
                            .e_tag(part.e_tag().unwrap_or_default())
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await),
    )?;
    let r = c
        .delete_objects()
        .bucket(&b)
        .delete(
            Delete::builder()
                .objects(ObjectIdentifier::builder().key("k").build()?)
                .build()?,
        )
        .send()
        .await?;
    ensure!(r.errors().len() == 1 && r.errors()[0].code() == Some("AccessDenied"));
    // nothing changed; new keys are still written once
    ensure!(get(&c, &b, "k", None).await? == "original");
    ensure!(
        c.get_object_tagging()
            .bucket(&b)
            .key("k")
            .send()
            .await?
            .tag_set()
            .len()
            == 1
    );
    put(&c, &b, "new", "n").await?;
    denied(
        "overwrite of the new key",
        e(c.put_object()
            .bucket(&b)
            .key("new")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await),
    )?;
    ensure!(get(&c, &b, "new", None).await? == "n");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heal_rebuilds_every_version_on_a_replaced_drive() -> Result<()> {
    let s = Server::start(cairn_tests::StartOpts {
        extra_args: vec!["--no-scanner".into()],
        ..Default::default()
    })
    .await?;
    let c = s.s3();
    let b = new_bucket(&c, "healver", false).await?;
    set_versioning(&c, &b, BucketVersioningStatus::Enabled).await?;
    let big = cairn_tests::data::random_bytes(3 << 20, 7);
    let small = put(&c, &b, "k", "small version").await?.context("id")?;
    let large = c
        .put_object()
        .bucket(&b)
        .key("k")
        .body(ByteStream::from(big.clone()))
        .send()
        .await?
        .version_id()
        .context("id")?
        .to_owned();
    let later = put(&c, &b, "k", "later").await?.context("id")?;
    let marker = c.delete_object().bucket(&b).key("k").send().await?;
    let marker = marker.version_id().context("marker id")?.to_owned();
    let before = all_versions(&c, &b, 1000).await?;

    // drive 2 replaced by an empty one, then `cairn admin heal`
    let new = s.drives()[1].clone();
    std::fs::remove_dir_all(&new)?;
    std::fs::create_dir(&new)?;
    let out = cairn_tests::admin(&s, &["heal"], None).await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // only the rebuilt drive and one original remain: every read needs
    // the rebuilt shards of every version
    for i in [0, 3] {
        std::fs::remove_dir_all(&s.drives()[i])?;
    }
    ensure!(
        all_versions(&c, &b, 1000).await? == before,
        "the version list survived"
    );
    ensure!(get(&c, &b, "k", Some(&small)).await? == "small version");
    ensure!(get(&c, &b, "k", Some(&later)).await? == "later");
    let o = c
        .get_object()
        .bucket(&b)
        .key("k")
        .version_id(&large)
        .send()
        .await?;
    ensure!(
        o.body.collect().await?.into_bytes().to_vec() == big,
        "the 3 MiB version"
    );
    expect_err(
        "the marker is still the current version",
        c.get_object().bucket(&b).key("k").send().await,
        404,
        Some("NoSuchKey"),
    )?;
    ensure!(before[0].1 == marker);
    Ok(())
}

/// `aws s3api ARGS --endpoint-url E` parsed as JSON (Null for no output).
fn s3api(s: &Server, args: &[&str]) -> Result<serde_json::Value> {
    let out = cairn_tests::cmd::run_stdout(s.tool("aws").arg("s3api").args(args).args([
        "--endpoint-url",
        &s.endpoint(),
        "--output",
        "json",
    ]))?;
    if out.trim().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    Ok(serde_json::from_str(&out)?)
}

/// `aws s3api` expected to fail with this error code.
fn s3api_fails(s: &Server, args: &[&str], code: &str) -> Result<()> {
    let out = cairn_tests::run_status(
        s.tool("aws")
            .arg("s3api")
            .args(args)
            .args(["--endpoint-url", &s.endpoint()]),
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains(code),
        "aws s3api {args:?}: want {code}, got: {err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awscli_versioning_lock_tagging_lifecycle() -> Result<()> {
    cairn_tests::require_tool("aws")?;
    let s = Server::start_default().await?;
    let b = bucket_name("cli");
    let file = s.dir().join("body.txt");
    s3api(
        &s,
        &[
            "create-bucket",
            "--bucket",
            &b,
            "--object-lock-enabled-for-bucket",
        ],
    )?;
    let v = s3api(&s, &["get-bucket-versioning", "--bucket", &b])?;
    ensure!(v["Status"] == "Enabled", "{v}");
    let mut ids = Vec::new();
    for body in ["one", "two"] {
        std::fs::write(&file, body)?;
        let p = s3api(
            &s,
            &[
                "put-object",
                "--bucket",
                &b,
                "--key",
                "k",
                "--body",
                file.to_str().context("path")?,
            ],
        )?;
        ids.push(p["VersionId"].as_str().context("VersionId")?.to_owned());
    }
    let l = s3api(&s, &["list-object-versions", "--bucket", &b])?;
    let listed: Vec<&str> = l["Versions"]
        .as_array()
        .context("Versions")?
        .iter()
        .filter_map(|v| v["VersionId"].as_str())
        .collect();
    ensure!(listed == [ids[1].as_str(), ids[0].as_str()], "{l}");
    let back = s.dir().join("back.txt");
    s3api(
        &s,
        &[
            "get-object",
            "--bucket",
            &b,
            "--key",
            "k",
            "--version-id",
            &ids[0],
            back.to_str().context("path")?,
        ],
    )?;
    ensure!(std::fs::read(&back)? == b"one");

    // tagging
    s3api(
        &s,
        &[
            "put-object-tagging",
            "--bucket",
            &b,
            "--key",
            "k",
            "--version-id",
            &ids[0],
            "--tagging",
            "TagSet=[{Key=a,Value=1}]",
        ],
    )?;
    let t = s3api(
        &s,
        &[
            "get-object-tagging",
            "--bucket",
            &b,
            "--key",
            "k",
            "--version-id",
            &ids[0],
        ],
    )?;
    ensure!(
        t["TagSet"][0]["Key"] == "a" && t["TagSet"][0]["Value"] == "1",
        "{t}"
    );
    s3api(
        &s,
        &[
            "put-bucket-tagging",
            "--bucket",
            &b,
            "--tagging",
            "TagSet=[{Key=team,Value=storage}]",
        ],
    )?;
    ensure!(s3api(&s, &["get-bucket-tagging", "--bucket", &b])?["TagSet"][0]["Value"] == "storage");

    // lock: configuration, retention, legal hold, bypass
    s3api(
        &s,
        &[
            "put-object-lock-configuration",
            "--bucket",
            &b,
            "--object-lock-configuration",
            r#"{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"GOVERNANCE","Days":2}}}"#,
        ],
    )?;
    let c = s3api(&s, &["get-object-lock-configuration", "--bucket", &b])?;
    ensure!(
        c["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Days"] == 2,
        "{c}"
    );
    let until = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)?;
    s3api(
        &s,
        &[
            "put-object-retention",
            "--bucket",
            &b,
            "--key",
            "k",
            "--version-id",
            &ids[0],
            "--retention",
            &format!(r#"{{"Mode":"GOVERNANCE","RetainUntilDate":"{until}"}}"#),
        ],
    )?;
    let r = s3api(
        &s,
        &[
            "get-object-retention",
            "--bucket",
            &b,
            "--key",
            "k",
            "--version-id",
            &ids[0],
        ],
    )?;
    ensure!(r["Retention"]["Mode"] == "GOVERNANCE", "{r}");
    s3api_fails(
        &s,
        &[
            "delete-object",
            "--bucket",
            &b,
            "--key",
            "k",
            "--version-id",
            &ids[0],
        ],
        "AccessDenied",
    )?;
    s3api(
        &s,
        &[
            "delete-object",
            "--bucket",
            &b,
            "--key",
            "k",
            "--version-id",
            &ids[0],
            "--bypass-governance-retention",
        ],
    )?;
    s3api(
        &s,
        &[
            "put-object-legal-hold",
            "--bucket",
            &b,
            "--key",
            "k",
            "--version-id",
            &ids[1],
            "--legal-hold",
            "Status=ON",
        ],
    )?;
    ensure!(
        s3api(
            &s,
            &[
                "get-object-legal-hold",
                "--bucket",
                &b,
                "--key",
                "k",
                "--version-id",
                &ids[1]
            ]
        )?["LegalHold"]["Status"]
            == "ON"
    );
    s3api_fails(
        &s,
        &[
            "delete-object",
            "--bucket",
            &b,
            "--key",
            "k",
            "--version-id",
            &ids[1],
            "--bypass-governance-retention",
        ],
        "AccessDenied",
    )?;

    // lifecycle
    s3api(
        &s,
        &[
            "put-bucket-lifecycle-configuration",
            "--bucket",
            &b,
            "--lifecycle-configuration",
            r#"{"Rules":[{"ID":"nc","Status":"Enabled","Filter":{"Prefix":"logs/"},"NoncurrentVersionExpiration":{"NoncurrentDays":7,"NewerNoncurrentVersions":2}}]}"#,
        ],
    )?;
    let lc = s3api(&s, &["get-bucket-lifecycle-configuration", "--bucket", &b])?;
    ensure!(
        lc["Rules"][0]["NoncurrentVersionExpiration"]["NewerNoncurrentVersions"] == 2,
        "{lc}"
    );
    s3api(&s, &["delete-bucket-lifecycle", "--bucket", &b])?;
    s3api_fails(
        &s,
        &["get-bucket-lifecycle-configuration", "--bucket", &b],
        "NoSuchLifecycleConfiguration",
    )?;
    Ok(())
}
