#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! The set's cache of latest versions (`vcache.rs`): every change made
//! through the set is seen by the next read of the key, whatever was read
//! before, and a kept read never outlives the drives it came from.

use std::path::PathBuf;

use bytes::Bytes;
use cairn_api::{
    BucketName, Conditions, GetOptions, ObjectError, ObjectKey, ObjectLayer, PutOptions,
    bytes_stream, collect_stream,
};
use cairn_core::ErasureSet;

async fn get(set: &ErasureSet, b: &BucketName, k: &ObjectKey) -> Result<Vec<u8>, ObjectError> {
    let g = set.get_object(b, k, GetOptions::default()).await?;
    Ok(collect_stream(g.body).await.unwrap())
}

async fn put(set: &ErasureSet, b: &BucketName, k: &ObjectKey, body: &[u8]) {
    set.put_object(
        b,
        k,
        bytes_stream(Bytes::copy_from_slice(body)),
        PutOptions::default(),
    )
    .await
    .unwrap();
}

fn open(t: &tempfile::TempDir) -> (ErasureSet, Vec<PathBuf>) {
    let drives: Vec<PathBuf> = (0..4).map(|i| t.path().join(format!("d{i}"))).collect();
    (ErasureSet::open(drives.clone(), None).unwrap(), drives)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_through_the_set_is_read_after_a_kept_read() {
    let t = tempfile::tempdir().unwrap();
    let (set, _) = open(&t);
    let b = BucketName::new("vcache").unwrap();
    set.make_bucket(&b).await.unwrap();
    // inline (4 KiB) and streamed (300 KiB) objects alike
    for (name, len) in [("small", 4096usize), ("big", 300_000)] {
        let k = ObjectKey::new(name).unwrap();
        let other = ObjectKey::new(format!("{name}-moved")).unwrap();
        for round in 0..3u8 {
            let body = vec![round + 1; len];
            put(&set, &b, &k, &body).await;
            // read twice: the second read is the kept one
            assert_eq!(
                get(&set, &b, &k).await.unwrap(),
                body,
                "{name} round {round}"
            );
            assert_eq!(
                get(&set, &b, &k).await.unwrap(),
                body,
                "{name} round {round}"
            );
        }
        let head = set
            .head_object(&b, &k, &Conditions::default())
            .await
            .unwrap();
        assert_eq!(head.size, len as u64);
        set.rename_object(&b, &k, &other, false).await.unwrap();
        assert!(
            matches!(get(&set, &b, &k).await, Err(ObjectError::NoSuchKey { .. })),
            "{name}: renamed away"
        );
        assert_eq!(get(&set, &b, &other).await.unwrap(), vec![3u8; len]);
        set.delete_object(&b, &other).await.unwrap();
        assert!(
            matches!(
                get(&set, &b, &other).await,
                Err(ObjectError::NoSuchKey { .. })
            ),
            "{name}: deleted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_read_is_not_served_once_its_drives_are_gone() {
    let t = tempfile::tempdir().unwrap();
    let (set, drives) = open(&t);
    let b = BucketName::new("gone").unwrap();
    set.make_bucket(&b).await.unwrap();
    let k = ObjectKey::new("small").unwrap();
    put(&set, &b, &k, &[9u8; 1000]).await;
    assert_eq!(get(&set, &b, &k).await.unwrap(), vec![9u8; 1000]);
    assert_eq!(get(&set, &b, &k).await.unwrap(), vec![9u8; 1000]);
    // three of four drives moved away: below the read quorum
    for d in &drives[..3] {
        std::fs::rename(d, d.with_extension("moved")).unwrap();
    }
    match get(&set, &b, &k).await {
        Err(ObjectError::Unavailable { .. }) => {}
        other => panic!("GET with 3 of 4 drives gone: {other:?}, expected Unavailable"),
    }
}
