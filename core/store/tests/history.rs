#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! Keys with many versions: `cairn.meta` keeps the newest and the rest
//! move to the object's history file. Every version must stay readable,
//! listable, deletable and healable wherever it lives, and a torn append
//! must not lose anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cairn_api::admin::HealRequest;
use cairn_api::conformance::pattern;
use cairn_api::{
    BucketChange, BucketName, DeleteOptions, GetOptions, ListVersionsOptions, ObjectError,
    ObjectKey, ObjectLayer, PutOptions, Tags, VersionChange, Versioning, bytes_stream,
    collect_stream,
};
use cairn_core::ErasureSet;
use cairn_core::history::HISTORY_PREFIX;
use cairn_core::meta::{META_FILE, ObjectMeta};

fn drives(root: &Path) -> Vec<PathBuf> {
    (0..4).map(|i| root.join(format!("d{i}"))).collect()
}

fn key() -> ObjectKey {
    ObjectKey::new("docs/report.txt").unwrap()
}

/// Every 7th version is big enough for a data dir; the rest are inline.
fn body(i: usize) -> Vec<u8> {
    pattern(if i % 7 == 3 { 200_000 } else { 3_000 + i }, i as u64)
}

async fn versioned(set: &ErasureSet, name: &str, v: Versioning) -> BucketName {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let b = BucketName::new(name).unwrap();
    set.make_bucket(&b).await.unwrap();
    set.update_bucket_config(&b, BucketChange::Versioning(v))
        .await
        .unwrap();
    b
}

/// PUTs `n` versions (bodies `from..from+n`); returns (version id, body),
/// oldest first.
async fn put_versions(
    set: &ErasureSet,
    b: &BucketName,
    from: usize,
    n: usize,
) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for i in from..from + n {
        let data = body(i);
        let info = set
            .put_object(b, &key(), bytes_stream(data.clone()), PutOptions::default())
            .await
            .unwrap();
        out.push((info.version_id.unwrap(), data));
    }
    out
}

async fn get(set: &ErasureSet, b: &BucketName, id: Option<&str>) -> Result<Vec<u8>, ObjectError> {
    let g = set
        .get_object(
            b,
            &key(),
            GetOptions {
                version_id: id.map(|i| (i != "null").then(|| i.to_owned())),
                ..Default::default()
            },
        )
        .await?;
    Ok(collect_stream(g.body).await.unwrap())
}

/// Every version by id, the latest, and the listing (ids newest first).
async fn check_all(set: &ErasureSet, b: &BucketName, want: &[(String, Vec<u8>)]) {
    for (id, data) in want {
        assert!(
            get(set, b, Some(id)).await.unwrap() == *data,
            "version {id}"
        );
    }
    let latest = &want.last().unwrap().1;
    assert!(get(set, b, None).await.unwrap() == *latest, "latest");
    assert_eq!(
        listed(set, b).await,
        want.iter()
            .rev()
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>()
    );
}

async fn listed(set: &ErasureSet, b: &BucketName) -> Vec<String> {
    let mut ids = Vec::new();
    let mut opts = ListVersionsOptions {
        max_keys: 7,
        ..Default::default()
    };
    loop {
        let page = set.list_object_versions(b, opts.clone()).await.unwrap();
        ids.extend(
            page.versions
                .iter()
                .map(|v| v.info.version_id.clone().unwrap_or_else(|| "null".into())),
        );
        if !page.is_truncated {
            return ids;
        }
        opts.key_marker = page.next_key_marker;
        opts.version_id_marker = page.next_version_id_marker;
    }
}

fn object_dir(drive: &Path, b: &BucketName) -> PathBuf {
    drive.join(b.as_str()).join("docs/report.txt")
}

/// Versions in each drive's `cairn.meta`, and its history files.
fn on_disk(p: &[PathBuf], b: &BucketName) -> Vec<(usize, Vec<PathBuf>)> {
    p.iter()
        .map(|d| {
            let dir = object_dir(d, b);
            let meta =
                ObjectMeta::decode(&std::fs::read(dir.join(META_FILE)).unwrap(), true).unwrap();
            let hist = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(HISTORY_PREFIX))
                .map(|e| e.path())
                .collect();
            (meta.versions.len(), hist)
        })
        .collect()
}

fn data_dirs(drive: &Path, b: &BucketName) -> usize {
    std::fs::read_dir(object_dir(drive, b))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("cairn.data."))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_history_stays_readable_and_the_meta_stays_small() {
    let t = tempfile::tempdir().unwrap();
    let p = drives(t.path());
    let set = ErasureSet::open(p.clone(), None).unwrap();
    let b = versioned(&set, "hist", Versioning::Enabled).await;
    let mut want = put_versions(&set, &b, 0, 60).await;

    for (in_meta, hist) in on_disk(&p, &b) {
        assert!(in_meta <= 16, "cairn.meta holds {in_meta} versions");
        assert_eq!(hist.len(), 1, "one history file: {hist:?}");
    }
    check_all(&set, &b, &want).await;

    // a torn append (a crash mid-spill) leaves bytes past the committed
    // length: they are ignored, and the next spill cuts them
    for (_, hist) in on_disk(&p, &b) {
        let mut bytes = std::fs::read(&hist[0]).unwrap();
        bytes.extend_from_slice(b"CAIRNMET torn tail");
        std::fs::write(&hist[0], bytes).unwrap();
    }
    check_all(&set, &b, &want).await;
    want.extend(put_versions(&set, &b, 60, 30).await);
    check_all(&set, &b, &want).await;

    // delete one old version (in the history), a big one, by id
    let (gone, _) = want.remove(3);
    let before = data_dirs(&p[0], &b);
    set.delete_object_with(
        &b,
        &key(),
        DeleteOptions {
            version_id: Some(Some(gone.clone())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        get(&set, &b, Some(&gone)).await,
        Err(ObjectError::NoSuchVersion { .. })
    ));
    assert_eq!(data_dirs(&p[0], &b), before - 1, "its data dir is removed");
    check_all(&set, &b, &want).await;

    // delete the newest 25 (more than the meta holds): older ones move up
    for _ in 0..25 {
        let (id, _) = want.pop().unwrap();
        set.delete_object_with(
            &b,
            &key(),
            DeleteOptions {
                version_id: Some(Some(id)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    check_all(&set, &b, &want).await;

    // a tag change on a version deep in the history reads back, and
    // survives more spills
    let (old_id, _) = want[5].clone();
    let tags = Tags(BTreeMap::from([(
        "stage".to_owned(),
        "archived".to_owned(),
    )]));
    set.update_version(
        &b,
        &key(),
        Some(Some(old_id.clone())),
        VersionChange::Tags(tags.clone()),
    )
    .await
    .unwrap();
    want.extend(put_versions(&set, &b, 90, 20).await);
    let head = set
        .head_object_with(
            &b,
            &key(),
            &GetOptions {
                version_id: Some(Some(old_id.clone())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(head.attrs.tags, tags);
    check_all(&set, &b, &want).await;
    // every old history file but the one named is gone
    for (_, hist) in on_disk(&p, &b) {
        assert_eq!(hist.len(), 1, "{hist:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heal_refills_the_history_of_a_replaced_drive() {
    let t = tempfile::tempdir().unwrap();
    let p = drives(t.path());
    let set = ErasureSet::open(p.clone(), None).unwrap();
    let b = versioned(&set, "heal", Versioning::Enabled).await;
    let want = put_versions(&set, &b, 0, 50).await;

    std::fs::remove_dir_all(&p[0]).unwrap();
    std::fs::create_dir(&p[0]).unwrap();
    assert_eq!(set.monitor_drives().await, 1, "empty replacement joins");
    let sum = set
        .heal_all(&HealRequest::default(), std::time::Duration::ZERO, None)
        .await;
    assert_eq!(sum.failed, 0, "{sum:?}");
    let (in_meta, hist) = &on_disk(&p, &b)[0];
    assert!(*in_meta <= 16, "healed meta holds {in_meta} versions");
    assert_eq!(hist.len(), 1, "{hist:?}");

    // drive 0 must now carry its share of every version
    std::fs::remove_dir_all(&p[1]).unwrap();
    std::fs::remove_dir_all(&p[2]).unwrap();
    check_all(&set, &b, &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_put_replaces_a_null_version_in_the_history() {
    let t = tempfile::tempdir().unwrap();
    let p = drives(t.path());
    let set = ErasureSet::open(p.clone(), None).unwrap();
    let b = BucketName::new("null").unwrap();
    set.make_bucket(&b).await.unwrap();
    // a big null version first, then a history on top of it
    set.put_object(
        &b,
        &key(),
        bytes_stream(pattern(300_000, 1)),
        PutOptions::default(),
    )
    .await
    .unwrap();
    set.update_bucket_config(&b, BucketChange::Versioning(Versioning::Enabled))
        .await
        .unwrap();
    let mut want = put_versions(&set, &b, 0, 40).await;
    let dirs_before = data_dirs(&p[0], &b);
    set.update_bucket_config(&b, BucketChange::Versioning(Versioning::Suspended))
        .await
        .unwrap();
    let fresh = pattern(5_000, 2);
    set.put_object(
        &b,
        &key(),
        bytes_stream(fresh.clone()),
        PutOptions::default(),
    )
    .await
    .unwrap();

    assert!(get(&set, &b, None).await.unwrap() == fresh);
    assert!(get(&set, &b, Some("null")).await.unwrap() == fresh);
    // the replaced data dir is removed after the commit, in the background
    for _ in 0..100 {
        if data_dirs(&p[0], &b) < dirs_before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        data_dirs(&p[0], &b),
        dirs_before - 1,
        "the old null's data is gone"
    );
    let ids = listed(&set, &b).await;
    assert_eq!(ids.iter().filter(|i| *i == "null").count(), 1, "{ids:?}");
    assert_eq!(ids[0], "null");
    want.reverse();
    assert_eq!(
        ids[1..],
        want.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>()[..]
    );
}
