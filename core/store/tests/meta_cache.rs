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

/// A printout, not a check (`--ignored --nocapture`): what a read of a
/// record naming `CAIRN_RECORD_PARTS` parts (default 4,096: a 16 GiB file
/// rewritten at random) costs parsed and taken from the cache.
#[test]
#[ignore]
fn record_parse_cost() {
    use cairn_core::meta::{FileSlice, PartLoc, PartMeta};
    let parts: u32 = std::env::var("CAIRN_RECORD_PARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4096);
    let t = tempfile::tempdir().unwrap();
    let drives: Vec<PathBuf> = (0..4).map(|i| t.path().join(format!("d{i}"))).collect();
    let set = ErasureSet::open(drives.clone(), None).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let b = BucketName::new("cache").unwrap();
    let key = ObjectKey::new("big").unwrap();
    rt.block_on(async {
        set.make_bucket(&b).await.unwrap();
        set.put_object(
            &b,
            &key,
            bytes_stream(pattern(300_000, 1)),
            PutOptions::default(),
        )
        .await
        .unwrap();
    });
    // every drive's record names `parts` parts, as a patched file's does
    for d in &drives {
        let path = meta_path(d, "big");
        let mut m = ObjectMeta::decode(&std::fs::read(&path).unwrap(), true).unwrap();
        let v = &mut m.versions[0];
        v.inline_len = None;
        v.data_dir = Some("cairn.data.00000000-0000-0000-0000-000000000000".into());
        v.parts = (1..=parts)
            .map(|n| PartMeta {
                at: Some(PartLoc {
                    dir: format!("cairn.data.{:08x}-0000-0000-0000-000000000000", n / 7),
                    number: n / 2 + 1,
                    salted: false,
                    slice: (n % 2 == 0).then_some(FileSlice {
                        skip: 4 << 20,
                        file: 8 << 20,
                    }),
                }),
                ..PartMeta::new(n, 4 << 20, format!("{:032x}", u128::from(n) * 7919))
            })
            .collect();
        m.inline = Vec::new();
        std::fs::write(&path, m.encode().unwrap()).unwrap();
    }
    let bytes = std::fs::read(meta_path(&drives[0], "big")).unwrap();
    let runs = 20;
    let timed = |f: &dyn Fn()| {
        let start = std::time::Instant::now();
        for _ in 0..runs {
            f();
        }
        start.elapsed().as_secs_f64() * 1000.0 / f64::from(runs)
    };
    let parse = timed(&|| {
        ObjectMeta::decode(&bytes, true).unwrap();
    });
    let encode = timed(&|| {
        ObjectMeta::decode(&bytes, true).unwrap().encode().unwrap();
    }) - parse;
    // HEADs over records rewritten before each: with the same bytes (the
    // reads hit the cache) and with bytes that differ each time (they
    // parse), so the difference is what the cache saves
    let records: Vec<Vec<Vec<u8>>> = ["a", "b"]
        .iter()
        .map(|tag| {
            drives
                .iter()
                .map(|d| {
                    let path = meta_path(d, "big");
                    let mut m = ObjectMeta::decode(&std::fs::read(path).unwrap(), true).unwrap();
                    m.versions[0].user.insert("tag".into(), (*tag).into());
                    m.encode().unwrap()
                })
                .collect()
        })
        .collect();
    let head_after = |i: usize| {
        for (d, r) in drives.iter().zip(&records[i % 2]) {
            std::fs::write(meta_path(d, "big"), r).unwrap();
        }
        rt.block_on(set.head_object(&b, &key, &Conditions::default()))
            .unwrap();
    };
    let n = std::cell::Cell::new(0usize);
    let missed = timed(&|| {
        n.set(n.get() + 1);
        head_after(n.get());
    });
    let hit = timed(&|| head_after(0));
    println!(
        "{parts} parts, record {} KB: parse {parse:.2} ms, encode {encode:.2} ms; a HEAD (4 drives' records, rewritten before it) {missed:.2} ms parsed, {hit:.2} ms from the cache",
        bytes.len() / 1000
    );
}
