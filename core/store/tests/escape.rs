#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! No listing leaves its bucket: arbitrary prefixes, markers and
//! delimiters (`..`, `/`, absolute paths, reserved names, NUL, and the
//! names of what lies next to the bucket) never list a key that is not
//! the bucket's own.
//!
//! Next to the bucket `probe` lie real objects a walk that escaped would
//! find and list (its drive walk counts a `cairn.meta` a read quorum of
//! drives holds): the bucket `secret`, copies of an object at each
//! drive's top (`<drive>/leak-root/...`), inside `.cairn.sys`, and in a
//! folder beside the drives (`<tmp>/outside<i>/...`, the host).

use std::collections::BTreeSet;
use std::path::Path;

use cairn_api::{
    BucketName, ListOptions, ListUploadsOptions, ListVersionsOptions, ObjectError, ObjectKey,
    ObjectLayer, PutOptions, bytes_stream,
};
use cairn_core::ErasureSet;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const PROBE: &[&str] = &["a/b", "a/c", "keep", "z/y/x"];

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

struct Fixture {
    _t: tempfile::TempDir,
    root: String,
    set: ErasureSet,
    probe: BucketName,
}

async fn fixture() -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let drives: Vec<_> = (0..4).map(|i| t.path().join(format!("d{i}"))).collect();
    let set = ErasureSet::open(drives.clone(), None).unwrap();
    let probe = BucketName::new("probe").unwrap();
    let secret = BucketName::new("secret").unwrap();
    set.make_bucket(&probe).await.unwrap();
    set.make_bucket(&secret).await.unwrap();
    let put = |b: BucketName, k: &str| {
        let set = &set;
        let k = ObjectKey::new(k).unwrap();
        async move {
            set.put_object(&b, &k, bytes_stream(&b"data"[..]), PutOptions::default())
                .await
                .unwrap();
        }
    };
    for k in PROBE {
        put(probe.clone(), k).await;
    }
    for k in ["hidden.txt", "s/deep"] {
        put(secret.clone(), k).await;
    }
    let k = ObjectKey::new("up").unwrap();
    set.create_multipart_upload(&probe, &k, PutOptions::default())
        .await
        .unwrap();
    set.create_multipart_upload(&secret, &k, PutOptions::default())
        .await
        .unwrap();
    // real objects outside the bucket: at each drive's top, in its system
    // folder, and beside the drives
    for (i, d) in drives.iter().enumerate() {
        let obj = d.join("secret").join("hidden.txt");
        copy_tree(&obj, &d.join("leak-root").join("hidden.txt"));
        copy_tree(&obj, &d.join(".cairn.sys").join("leak-sys"));
        copy_tree(
            &obj,
            &t.path().join(format!("outside{i}")).join("leak-host"),
        );
    }
    Fixture {
        root: t.path().to_string_lossy().into_owned(),
        _t: t,
        set,
        probe,
    }
}

/// Strings made of path pieces an attacker would try.
fn hostile(root: String) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("../".to_owned()),
        Just("..".to_owned()),
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just("./".to_owned()),
        Just(".".to_owned()),
        Just("secret/".to_owned()),
        Just("leak-root/".to_owned()),
        Just(".cairn.sys/".to_owned()),
        Just("cairn.meta/".to_owned()),
        Just("cairn.data.x/".to_owned()),
        Just("outside0/".to_owned()),
        Just("a/".to_owned()),
        Just("\0".to_owned()),
        Just(format!("{root}/")),
        Just("/etc/".to_owned()),
        "[a-z./]{0,4}",
    ];
    prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

fn check_keys(keys: &[String], prefixes: &[String], what: &str) -> Result<(), TestCaseError> {
    let own: BTreeSet<&str> = PROBE.iter().copied().collect();
    for k in keys {
        prop_assert!(own.contains(k.as_str()), "{what} listed {k:?}");
    }
    for p in prefixes {
        prop_assert!(
            PROBE.iter().any(|k| k.starts_with(p.as_str())),
            "{what} listed the common prefix {p:?}"
        );
    }
    Ok(())
}

#[test]
fn no_listing_leaves_its_bucket() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let f = rt.block_on(fixture());
    // the walk that escapes is not hypothetical: without the bucket's
    // rules, the drives hold these keys next to it
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let input = (
        hostile(f.root.clone()),
        prop::option::of(hostile(f.root.clone())),
        prop::option::of(prop_oneof![
            Just("/".to_owned()),
            Just("d".to_owned()),
            Just("e".to_owned())
        ]),
    );
    runner
        .run(&input, |(prefix, marker, delimiter)| {
            rt.block_on(async {
                let what = format!("prefix {prefix:?} marker {marker:?} delimiter {delimiter:?}");
                let page = f
                    .set
                    .list_objects(
                        &f.probe,
                        ListOptions {
                            prefix: prefix.clone(),
                            delimiter: delimiter.clone(),
                            start_after: marker.clone(),
                            max_keys: 1000,
                        },
                    )
                    .await;
                let page = page.map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
                let keys: Vec<String> = page.objects.iter().map(|o| o.key.clone()).collect();
                check_keys(&keys, &page.common_prefixes, &format!("ListObjects {what}"))?;
                let v = f
                    .set
                    .list_object_versions(
                        &f.probe,
                        ListVersionsOptions {
                            prefix: prefix.clone(),
                            delimiter: delimiter.clone(),
                            key_marker: marker.clone(),
                            version_id_marker: None,
                            max_keys: 1000,
                        },
                    )
                    .await
                    .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
                let keys: Vec<String> = v.versions.iter().map(|e| e.info.key.clone()).collect();
                check_keys(
                    &keys,
                    &v.common_prefixes,
                    &format!("ListObjectVersions {what}"),
                )?;
                let u = f
                    .set
                    .list_multipart_uploads(
                        &f.probe,
                        ListUploadsOptions {
                            prefix: prefix.clone(),
                            key_marker: marker.clone(),
                            upload_id_marker: marker.clone(),
                            max_uploads: 1000,
                        },
                    )
                    .await
                    .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
                for up in &u.uploads {
                    prop_assert_eq!(up.bucket.as_str(), "probe", "{}", what);
                    prop_assert_eq!(up.key.as_str(), "up", "{}", what);
                }
                // an upload id is never a path
                let parts = f
                    .set
                    .list_parts(
                        &f.probe,
                        &ObjectKey::new("up").unwrap(),
                        &prefix,
                        None,
                        1000,
                    )
                    .await;
                prop_assert!(
                    matches!(parts, Err(ObjectError::NoSuchUpload { .. })),
                    "ListParts upload id {prefix:?}: {parts:?}"
                );
                Ok(())
            })
        })
        .unwrap();
    // and the whole bucket lists as it should
    let all = rt
        .block_on(f.set.list_objects(
            &f.probe,
            ListOptions {
                max_keys: 1000,
                ..ListOptions::default()
            },
        ))
        .unwrap();
    let keys: Vec<&str> = all.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, PROBE);
}
