#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! The drives' cache of parsed big `cairn.meta` headers (`metacache.rs`)
//! never answers for bytes that are no longer on the drive: a record
//! changed behind the store's back (another writer, a drive rolled back
//! to an older copy, bitrot) is read as it is now.

use std::path::{Path, PathBuf};

use cairn_api::conformance::pattern;
use cairn_api::{BucketName, Conditions, ObjectKey, ObjectLayer, PutOptions, bytes_stream};
use cairn_core::ErasureSet;
use cairn_core::meta::ObjectMeta;

fn meta_path(drive: &Path, key: &str) -> PathBuf {
    drive.join("cache").join(key).join("cairn.meta")
}

async fn owner(set: &ErasureSet, b: &BucketName, key: &ObjectKey) -> String {
    let info = set
        .head_object(b, key, &Conditions::default())
        .await
        .unwrap();
    info.user_metadata.get("owner").cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_record_changed_on_the_drives_is_read_as_it_is_now() {
    let t = tempfile::tempdir().unwrap();
    let drives: Vec<PathBuf> = (0..4).map(|i| t.path().join(format!("d{i}"))).collect();
    let set = ErasureSet::open(drives.clone(), None).unwrap();
    let b = BucketName::new("cache").unwrap();
    set.make_bucket(&b).await.unwrap();
    let key = ObjectKey::new("big").unwrap();
    // 48 KiB of metadata: a header big enough to be cached
    let mut opts = PutOptions::default();
    for i in 0..48 {
        opts.metadata
            .user
            .insert(format!("m{i:02}"), "x".repeat(1024));
    }
    opts.metadata.user.insert("owner".into(), "first".into());
    set.put_object(&b, &key, bytes_stream(pattern(300_000, 1)), opts)
        .await
        .unwrap();
    assert!(
        std::fs::metadata(meta_path(&drives[0], "big"))
            .unwrap()
            .len()
            > 48 << 10
    );
    assert_eq!(owner(&set, &b, &key).await, "first");

    // every drive's record rewritten by someone else: the new bytes count
    let old: Vec<Vec<u8>> = drives
        .iter()
        .map(|d| std::fs::read(meta_path(d, "big")).unwrap())
        .collect();
    for (d, bytes) in drives.iter().zip(&old) {
        let mut m = ObjectMeta::decode(bytes, true).unwrap();
        m.versions[0].user.insert("owner".into(), "second".into());
        std::fs::write(meta_path(d, "big"), m.encode().unwrap()).unwrap();
    }
    assert_eq!(owner(&set, &b, &key).await, "second");

    // rolled back to the first bytes: read as they are again
    for (d, bytes) in drives.iter().zip(&old) {
        std::fs::write(meta_path(d, "big"), bytes).unwrap();
    }
    assert_eq!(owner(&set, &b, &key).await, "first");

    // a flipped byte in the header of three drives' records: those copies
    // are corrupt (the cached parse of the same path does not answer for
    // them), so the read quorum is missed
    for d in &drives[..3] {
        let mut bytes = std::fs::read(meta_path(d, "big")).unwrap();
        bytes[100] ^= 1;
        std::fs::write(meta_path(d, "big"), bytes).unwrap();
    }
    assert!(
        set.head_object(&b, &key, &Conditions::default())
            .await
            .is_err(),
        "three corrupt copies of four"
    );
}
