#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! A deployment of several erasure sets: each key on the set its name
//! hashes to, buckets and listings over every set (compared with the
//! reference model), drives found by id in any order, foreign, missing
//! and replaced drives, and formats written before sets.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use cairn_api::mem::MemLayer;
use cairn_api::{
    BucketChange, BucketName, DeleteOptions, GetOptions, ListOptions, ListUploadsOptions,
    ListVersionsOptions, ObjectError, ObjectKey, ObjectLayer, PutOptions, Versioning, bytes_stream,
    collect_stream,
};
use cairn_core::drive::{Drive, Format};
use cairn_core::{ErasureSet, ErasureSets, SetsConfig, SetupError};

fn paths(root: &Path, n: usize) -> Vec<PathBuf> {
    (0..n).map(|i| root.join(format!("d{i:02}"))).collect()
}

fn sets_of(n: usize) -> SetsConfig {
    SetsConfig {
        parity: None,
        set_drive_count: Some(n),
        ..Default::default()
    }
}

fn b(s: &str) -> BucketName {
    BucketName::new(s).unwrap()
}

fn k(s: &str) -> ObjectKey {
    ObjectKey::new(s).unwrap()
}

fn format_of(p: &Path) -> Format {
    Drive::new(0, p.to_path_buf())
        .read_format()
        .unwrap()
        .unwrap()
}

async fn put(l: &dyn ObjectLayer, bucket: &str, key: &str, body: &[u8]) {
    l.put_object(
        &b(bucket),
        &k(key),
        bytes_stream(Bytes::copy_from_slice(body)),
        PutOptions::default(),
    )
    .await
    .unwrap();
}

async fn get(l: &dyn ObjectLayer, bucket: &str, key: &str) -> Vec<u8> {
    let g = l
        .get_object(&b(bucket), &k(key), GetOptions::default())
        .await
        .unwrap();
    collect_stream(g.body).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sets_of_four_pass_the_conformance_suite() {
    let d = tempfile::tempdir().unwrap();
    let s = ErasureSets::open(paths(d.path(), 8), sets_of(4)).unwrap();
    assert_eq!(s.sets().len(), 2);
    cairn_api::conformance::run_all(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sets_of_three_with_a_drive_gone_pass_the_conformance_suite() {
    let d = tempfile::tempdir().unwrap();
    let p = paths(d.path(), 9);
    let s = ErasureSets::open(p.clone(), sets_of(3)).unwrap();
    assert_eq!(s.sets().len(), 3);
    assert_eq!(s.parity(), 1);
    // one drive of the middle set is lost: its set reads and writes on
    std::fs::remove_dir_all(&p[3]).unwrap();
    cairn_api::conformance::run_all(&s).await;
}

#[test]
fn drives_are_grouped_into_sets_as_minio_sizes_them() {
    let d = tempfile::tempdir().unwrap();
    let s = ErasureSets::open(paths(d.path(), 32), SetsConfig::default()).unwrap();
    assert_eq!(
        (s.sets().len(), s.set_drive_count(), s.parity()),
        (2, 16, 4)
    );
    drop(s);
    let d = tempfile::tempdir().unwrap();
    let s = ErasureSets::open(paths(d.path(), 12), SetsConfig::default()).unwrap();
    assert_eq!((s.sets().len(), s.set_drive_count()), (1, 12));
    drop(s);
    let d = tempfile::tempdir().unwrap();
    let err = ErasureSets::open(paths(d.path(), 17), SetsConfig::default())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("17 drives cannot be split"),
        "{err}"
    );
    // nothing was formatted by the refused start
    assert!(paths(d.path(), 17).iter().all(|p| {
        Drive::new(0, p.clone())
            .read_format()
            .ok()
            .flatten()
            .is_none()
    }));
    let err = ErasureSets::open(paths(d.path(), 8), sets_of(3))
        .err()
        .unwrap();
    assert!(matches!(err, SetupError::Sizing(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_lives_on_the_set_its_name_hashes_to() {
    let d = tempfile::tempdir().unwrap();
    let p = paths(d.path(), 8);
    let s = ErasureSets::open(p.clone(), sets_of(4)).unwrap();
    s.make_bucket(&b("place")).await.unwrap();
    let mut per_set = [0usize; 2];
    for i in 0..60 {
        let key = format!("k{i}");
        put(&s, "place", &key, key.as_bytes()).await;
        let set = s.set_index_of(&key);
        per_set[set] += 1;
        // the object's folder is on the four drives of its set only
        for (j, drive) in p.iter().enumerate() {
            let there = drive.join("place").join(&key).exists();
            assert_eq!(there, j / 4 == set, "{key} on drive {j}");
        }
    }
    assert!(per_set.iter().all(|&n| n > 10), "{per_set:?}");
    // the bucket is on every set; formats name the sets and SIPMOD
    let f = format_of(&p[5]);
    assert_eq!((f.set_index, f.drive_index, f.sets.len()), (1, 1, 2));
    assert_eq!(f.distribution, "SIPMOD");
    assert_eq!(f.sets[1][1], f.drive_id);
    assert!(p.iter().all(|d| d.join("place").is_dir()));
}

/// Full listings in small pages, with and without a delimiter, against
/// the reference model fed the same keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_merge_every_set_as_the_model_lists() {
    let d = tempfile::tempdir().unwrap();
    let s = ErasureSets::open(paths(d.path(), 8), sets_of(2)).unwrap();
    let m = MemLayer::new();
    let layers: [&dyn ObjectLayer; 2] = [&s, &m];
    let mut keys = Vec::new();
    for top in ["a", "b", "c/d", "photos", "z"] {
        for i in 0..9 {
            keys.push(format!("{top}/{i}"));
            keys.push(format!("{top}/sub{}/{i}", i % 3));
        }
        keys.push(top.to_owned());
    }
    for l in layers {
        l.make_bucket(&b("lst")).await.unwrap();
        for key in &keys {
            put(l, "lst", key, b"x").await;
        }
    }
    for (prefix, delimiter) in [
        ("", None),
        ("", Some("/")),
        ("a/", Some("/")),
        ("c", Some("/")),
    ] {
        for max_keys in [1, 3, 7, 1000] {
            let mut runs = Vec::new();
            for l in layers {
                let mut pages = Vec::new();
                let mut after = None;
                loop {
                    let page = l
                        .list_objects(
                            &b("lst"),
                            ListOptions {
                                prefix: prefix.into(),
                                delimiter: delimiter.map(Into::into),
                                start_after: after.clone(),
                                max_keys,
                            },
                        )
                        .await
                        .unwrap();
                    let keys: Vec<String> = page.objects.iter().map(|o| o.key.clone()).collect();
                    pages.push((keys, page.common_prefixes.clone(), page.is_truncated));
                    if !page.is_truncated {
                        break;
                    }
                    after = page.next_marker;
                    assert!(after.is_some());
                }
                runs.push(pages);
            }
            assert_eq!(
                runs[0], runs[1],
                "prefix {prefix:?} delimiter {delimiter:?} max {max_keys}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_and_upload_listings_merge_every_set() {
    let d = tempfile::tempdir().unwrap();
    let s = ErasureSets::open(paths(d.path(), 6), sets_of(2)).unwrap();
    // the reference: one set (the model keeps no versions)
    let one = tempfile::tempdir().unwrap();
    let m = ErasureSet::open(paths(one.path(), 4), None).unwrap();
    let layers: [&dyn ObjectLayer; 2] = [&s, &m];
    for l in layers {
        l.make_bucket(&b("ver")).await.unwrap();
        l.update_bucket_config(&b("ver"), BucketChange::Versioning(Versioning::Enabled))
            .await
            .unwrap();
        for i in 0..12 {
            let key = format!("dir{}/f{i}", i % 2);
            for round in 0..(i % 3 + 1) {
                put(l, "ver", &key, format!("{key}-{round}").as_bytes()).await;
            }
            if i % 4 == 0 {
                l.delete_object_with(&b("ver"), &k(&key), DeleteOptions::default())
                    .await
                    .unwrap();
            }
        }
        for i in 0..5 {
            l.create_multipart_upload(&b("ver"), &k(&format!("up/{i}")), PutOptions::default())
                .await
                .unwrap();
        }
    }
    for (delimiter, max_keys) in [(None, 2), (None, 5), (Some("/"), 1), (None, 1000)] {
        let mut runs = Vec::new();
        for l in layers {
            let mut seen = Vec::new();
            let mut opts = ListVersionsOptions {
                delimiter: delimiter.map(Into::into),
                max_keys,
                ..Default::default()
            };
            for round in 0.. {
                // a page that does not move on would loop forever
                assert!(round < 200, "paging does not end: {opts:?}");
                let page = l
                    .list_object_versions(&b("ver"), opts.clone())
                    .await
                    .unwrap();
                assert!(page.versions.len() + page.common_prefixes.len() <= max_keys);
                for v in &page.versions {
                    seen.push(format!(
                        "{} latest={} dm={}",
                        v.info.key, v.is_latest, v.info.attrs.delete_marker
                    ));
                }
                seen.extend(page.common_prefixes.iter().map(|p| format!("prefix {p}")));
                if !page.is_truncated {
                    break;
                }
                opts.key_marker = page.next_key_marker;
                opts.version_id_marker = page.next_version_id_marker;
            }
            runs.push(seen);
        }
        assert_eq!(runs[0], runs[1], "delimiter {delimiter:?} max {max_keys}");
    }
    for l in layers {
        let mut seen = Vec::new();
        let mut opts = ListUploadsOptions {
            max_uploads: 2,
            ..Default::default()
        };
        loop {
            let page = l
                .list_multipart_uploads(&b("ver"), opts.clone())
                .await
                .unwrap();
            assert!(page.uploads.len() <= 2);
            let Some(last) = page.uploads.last().cloned() else {
                break;
            };
            seen.extend(page.uploads.iter().map(|u| u.key.clone()));
            if !page.is_truncated {
                break;
            }
            opts.key_marker = Some(last.key);
            opts.upload_id_marker = Some(last.upload_id);
        }
        let want: Vec<String> = (0..5).map(|i| format!("up/{i}")).collect();
        assert_eq!(seen, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_span_every_set_and_empty_means_empty_on_all() {
    let d = tempfile::tempdir().unwrap();
    let p = paths(d.path(), 8);
    let s = ErasureSets::open(p.clone(), sets_of(2)).unwrap();
    s.make_bucket(&b("bkt")).await.unwrap();
    assert!(matches!(
        s.make_bucket(&b("bkt")).await,
        Err(ObjectError::BucketAlreadyExists { .. })
    ));
    // one key, on one set: the bucket is not empty for any set
    put(&s, "bkt", "only", b"1").await;
    assert!(matches!(
        s.delete_bucket(&b("bkt")).await,
        Err(ObjectError::BucketNotEmpty { .. })
    ));
    assert!(p.iter().all(|d| d.join("bkt").is_dir()));
    // versioning set through the deployment holds on every set
    s.update_bucket_config(&b("bkt"), BucketChange::Versioning(Versioning::Enabled))
        .await
        .unwrap();
    for set in s.sets() {
        let c = set.get_bucket_config(&b("bkt")).await.unwrap();
        assert_eq!(c.versioning, Versioning::Enabled);
    }
    s.delete_object_with(
        &b("bkt"),
        &k("only"),
        DeleteOptions {
            version_id: Some(None),
            ..Default::default()
        },
    )
    .await
    .ok();
    let versions = s
        .list_object_versions(
            &b("bkt"),
            ListVersionsOptions {
                max_keys: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for v in versions.versions {
        s.delete_object_with(
            &b("bkt"),
            &k(&v.info.key),
            DeleteOptions {
                version_id: Some(v.info.version_id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    s.delete_bucket(&b("bkt")).await.unwrap();
    assert!(p.iter().all(|d| !d.join("bkt").exists()));
    assert!(s.list_buckets().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_are_found_by_id_in_any_order() {
    let d = tempfile::tempdir().unwrap();
    let p = paths(d.path(), 8);
    let s = ErasureSets::open(p.clone(), sets_of(4)).unwrap();
    s.make_bucket(&b("ord")).await.unwrap();
    for i in 0..20 {
        put(&s, "ord", &format!("o{i}"), format!("body {i}").as_bytes()).await;
    }
    drop(s);
    // reversed, and set sizes need not be given again
    let mut shuffled = p.clone();
    shuffled.reverse();
    shuffled.swap(0, 5);
    let s = ErasureSets::open(shuffled, SetsConfig::default()).unwrap();
    for i in 0..20 {
        assert_eq!(
            get(&s, "ord", &format!("o{i}")).await,
            format!("body {i}").as_bytes()
        );
    }
    drop(s);
    // another set size than the one formatted is refused
    let err = ErasureSets::open(p.clone(), sets_of(2)).err().unwrap();
    assert!(
        matches!(err, SetupError::SetSizeChanged { given: 2, kept: 4 }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_missing_and_replaced_drives() {
    let d = tempfile::tempdir().unwrap();
    let p = paths(d.path(), 8);
    let s = ErasureSets::open(p.clone(), sets_of(4)).unwrap();
    s.make_bucket(&b("rep")).await.unwrap();
    put(&s, "rep", "kept", b"kept data").await;
    drop(s);
    // a drive of another deployment is refused by name, untouched
    let other = tempfile::tempdir().unwrap();
    let op = paths(other.path(), 4);
    drop(ErasureSets::open(op.clone(), SetsConfig::default()).unwrap());
    let foreign = format_of(&op[0]);
    let mut given = p.clone();
    given[6] = op[0].clone();
    let err = ErasureSets::open(given, SetsConfig::default())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains(&op[0].display().to_string()),
        "{err}"
    );
    assert!(matches!(err, SetupError::ForeignDrive { .. }), "{err}");
    assert_eq!(format_of(&op[0]), foreign);
    // a drive left out is named by set, place and id
    let left_out = format_of(&p[7]);
    let err = ErasureSets::open(p[..7].to_vec(), SetsConfig::default())
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("set 1 drive 3") && msg.contains(&left_out.drive_id),
        "{msg}"
    );
    // the same drive given twice
    let mut twice = p.clone();
    twice[7] = p[0].clone();
    let err = ErasureSets::open(twice, SetsConfig::default())
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            SetupError::DuplicateDrive { .. } | SetupError::DriveLocked { .. }
        ),
        "{err}"
    );
    // an empty folder in its place takes the lost drive's id and place
    let lost = format_of(&p[6]);
    std::fs::remove_dir_all(&p[6]).unwrap();
    let s = ErasureSets::open(p.clone(), SetsConfig::default()).unwrap();
    let f = format_of(&p[6]);
    assert_eq!(
        (f.drive_id, f.set_index, f.drive_index),
        (lost.drive_id, 1, 2)
    );
    assert_eq!(get(&s, "rep", "kept").await, b"kept data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_formatted_before_sets_opens_as_one_set() {
    let d = tempfile::tempdir().unwrap();
    let p = paths(d.path(), 4);
    let old = ErasureSet::open(p.clone(), None).unwrap();
    old.make_bucket(&b("old")).await.unwrap();
    put(&old, "old", "data", b"from before sets").await;
    let id = old.deployment_id().to_owned();
    drop(old);
    assert!(format_of(&p[0]).sets.is_empty());
    let s = ErasureSets::open(p.clone(), SetsConfig::default()).unwrap();
    assert_eq!((s.sets().len(), s.deployment_id()), (1, id.as_str()));
    assert_eq!(get(&s, "old", "data").await, b"from before sets");
    drop(s);
    // its drives are still known by position
    let mut swapped = p.clone();
    swapped.swap(0, 1);
    let err = ErasureSets::open(swapped, SetsConfig::default())
        .err()
        .unwrap();
    assert!(matches!(err, SetupError::DriveOrder { .. }), "{err}");
}
