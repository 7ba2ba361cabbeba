#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! The streamed PUT path (writer.rs, `ErasureSet::stream_to_tmp`): the
//! ETag is the MD5 of the body at every size around the block boundaries,
//! whichever stage computed it; each drive's writer makes its own tmp
//! folder, and a drive that cannot, or a body that fails half way, leaves
//! nothing behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_api::conformance::pattern;
use cairn_api::{
    BucketName, GetOptions, ObjectError, ObjectKey, ObjectLayer, PartOptions, PutOptions,
    bytes_stream, collect_stream,
};
use cairn_core::ErasureSet;
use md5::Digest as _;

const BLOCK: usize = 1 << 20;

fn drives(root: &Path) -> Vec<PathBuf> {
    (0..4).map(|i| root.join(format!("d{i}"))).collect()
}

async fn fresh_set() -> (tempfile::TempDir, Vec<PathBuf>, Arc<ErasureSet>, BucketName) {
    let t = tempfile::tempdir().unwrap();
    let p = drives(t.path());
    let set = Arc::new(ErasureSet::open(p.clone(), None).unwrap());
    let b = BucketName::new("put").unwrap();
    set.make_bucket(&b).await.unwrap();
    (t, p, set, b)
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(md5::Md5::digest(data))
}

/// What each drive's tmp folder holds (a write's leftovers).
fn tmp_entries(drive: &Path) -> Vec<String> {
    match std::fs::read_dir(drive.join(".cairn.sys/tmp")) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Waits a little for the background removal of a dropped write.
async fn no_tmp_left(p: &[PathBuf]) {
    for _ in 0..50 {
        if p.iter().all(|d| tmp_entries(d).is_empty()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for d in p {
        assert_eq!(tmp_entries(d), Vec::<String>::new(), "{}", d.display());
    }
}

async fn get(set: &ErasureSet, b: &BucketName, key: &ObjectKey) -> Vec<u8> {
    let r = set.get_object(b, key, GetOptions::default()).await.unwrap();
    collect_stream(r.body).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etag_is_the_md5_of_the_body_around_block_boundaries() {
    let (_t, p, set, b) = fresh_set().await;
    for (i, len) in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 5]
        .into_iter()
        .enumerate()
    {
        let data = pattern(len, i as u64);
        let key = ObjectKey::new(format!("o{len}")).unwrap();
        // in chunks that straddle the blocks, as a socket delivers them
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = data
            .chunks(100_003)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        let body: cairn_api::ByteStream = Box::pin(futures::stream::iter(chunks));
        let info = set
            .put_object(&b, &key, body, PutOptions::default())
            .await
            .unwrap();
        assert_eq!(info.etag.trim_matches('"'), md5_hex(&data), "len {len}");
        assert_eq!(get(&set, &b, &key).await, data, "len {len}");
        // a multipart part is streamed whatever its size (no inline path)
        let up = set
            .create_multipart_upload(&b, &key, PutOptions::default())
            .await
            .unwrap();
        let part = set
            .upload_part(
                &b,
                &key,
                &up,
                1,
                bytes_stream(data.clone()),
                PartOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            part.etag.trim_matches('"'),
            md5_hex(&data),
            "part len {len}"
        );
    }
    no_tmp_left(&p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drive_that_cannot_make_its_tmp_folder_misses_the_write_and_leaves_nothing() {
    let (_t, p, set, b) = fresh_set().await;
    // drive 3's tmp folder is a file: its writer cannot make a folder in it
    let tmp3 = p[3].join(".cairn.sys/tmp");
    std::fs::remove_dir_all(&tmp3).unwrap();
    std::fs::write(&tmp3, b"not a folder").unwrap();
    let data = pattern(3 * BLOCK + 17, 7);
    let key = ObjectKey::new("three-of-four").unwrap();
    let info = set
        .put_object(&b, &key, bytes_stream(data.clone()), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(info.etag.trim_matches('"'), md5_hex(&data));
    assert_eq!(get(&set, &b, &key).await, data);
    no_tmp_left(&p[..3]).await;
    assert_eq!(std::fs::read(&tmp3).unwrap(), b"not a folder");

    // two drives short of a folder: below the write quorum (3 of 4)
    let tmp2 = p[2].join(".cairn.sys/tmp");
    std::fs::remove_dir_all(&tmp2).unwrap();
    std::fs::write(&tmp2, b"not a folder").unwrap();
    let key = ObjectKey::new("two-of-four").unwrap();
    let res = set
        .put_object(&b, &key, bytes_stream(data.clone()), PutOptions::default())
        .await;
    assert!(
        matches!(
            res,
            Err(ObjectError::Unavailable {
                needed: 3,
                got: 2,
                ..
            })
        ),
        "{res:?}"
    );
    no_tmp_left(&p[..2]).await;
    let gone = set.get_object(&b, &key, GetOptions::default()).await;
    assert!(
        matches!(gone, Err(ObjectError::NoSuchKey { .. })),
        "{:?}",
        gone.err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_fails_half_way_leaves_no_object_and_no_tmp() {
    let (_t, p, set, b) = fresh_set().await;
    let key = ObjectKey::new("cut").unwrap();
    let data = pattern(2 * BLOCK + 500_000, 3);
    let mut chunks: Vec<Result<bytes::Bytes, std::io::Error>> = data
        .chunks(65_536)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    chunks.push(Err(std::io::Error::other("client went away")));
    let body: cairn_api::ByteStream = Box::pin(futures::stream::iter(chunks));
    let res = set.put_object(&b, &key, body, PutOptions::default()).await;
    assert!(matches!(res, Err(ObjectError::BodyRead { .. })), "{res:?}");
    no_tmp_left(&p).await;
    let gone = set.get_object(&b, &key, GetOptions::default()).await;
    assert!(
        matches!(gone, Err(ObjectError::NoSuchKey { .. })),
        "{:?}",
        gone.err()
    );
}
