#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! Healing with real damage on the drive folders: a replaced (empty)
//! drive is refilled, flipped bytes are rewritten, reads queue heals.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_api::admin::HealRequest;
use cairn_api::conformance::{pattern, upload_parts};
use cairn_api::{
    BucketName, CompletePart, GetOptions, ObjectKey, ObjectLayer, PartOptions, PutOptions,
    bytes_stream, collect_stream,
};
use cairn_core::ErasureSet;
use proptest::prelude::*;

fn drives(root: &Path) -> Vec<PathBuf> {
    (0..4).map(|i| root.join(format!("d{i}"))).collect()
}

/// A fresh 4-drive set (2+2) with bucket `heal` holding `fill`'s objects;
/// the temp dir keeps the drives alive.
async fn filled_set() -> (
    tempfile::TempDir,
    Vec<PathBuf>,
    Arc<ErasureSet>,
    BucketName,
    Vec<(String, Vec<u8>)>,
) {
    let t = tempfile::tempdir().unwrap();
    let p = drives(t.path());
    let set = Arc::new(ErasureSet::open(p.clone(), None).unwrap());
    let b = BucketName::new("heal").unwrap();
    set.make_bucket(&b).await.unwrap();
    let objs = fill(&set, &b).await;
    (t, p, set, b, objs)
}

async fn fill(set: &ErasureSet, b: &BucketName) -> Vec<(String, Vec<u8>)> {
    let mut objs = Vec::new();
    for (i, size) in [0usize, 100, 100_000, 1_500_000, 3_000_000]
        .into_iter()
        .enumerate()
    {
        let key = format!("dir/o{i}");
        let data = pattern(size, i as u64);
        // metadata a heal must keep as it is
        let mut opts = PutOptions::default();
        opts.metadata.headers.content_type = Some(format!("application/x-test-{i}"));
        opts.metadata
            .user
            .insert("owner".into(), format!("user{i}"));
        set.put_object(
            b,
            &ObjectKey::new(key.clone()).unwrap(),
            bytes_stream(data.clone()),
            opts,
        )
        .await
        .unwrap();
        objs.push((key, data));
    }
    let key = ObjectKey::new("mp").unwrap();
    let id = set
        .create_multipart_upload(b, &key, PutOptions::default())
        .await
        .unwrap();
    let parts = [pattern(5 << 20, 7), pattern(12345, 8)];
    let done = upload_parts(set, b, &key, &id, &parts, &PartOptions::default())
        .await
        .unwrap();
    set.complete_multipart_upload(b, &key, &id, done)
        .await
        .unwrap();
    objs.push(("mp".into(), parts.concat()));
    objs
}

/// What HEAD says of each object (ETag, size, dates, metadata, version).
async fn heads(set: &ErasureSet, b: &BucketName, objs: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut out = Vec::new();
    for (k, _) in objs {
        let key = ObjectKey::new(k.clone()).unwrap();
        let info = set.head_object(b, &key, &Default::default()).await.unwrap();
        out.push(format!("{info:?}"));
    }
    out
}

async fn read_all(set: &ErasureSet, b: &BucketName, objs: &[(String, Vec<u8>)]) {
    for (k, data) in objs {
        let g = set
            .get_object(
                b,
                &ObjectKey::new(k.clone()).unwrap(),
                GetOptions::default(),
            )
            .await
            .unwrap();
        assert!(
            collect_stream(g.body).await.unwrap() == *data,
            "{k} differs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_drive_is_rebuilt() {
    let (_t, p, set, b, objs) = filled_set().await;
    let before = heads(&set, &b, &objs).await;

    std::fs::remove_dir_all(&p[0]).unwrap();
    std::fs::create_dir(&p[0]).unwrap();
    assert_eq!(set.monitor_drives().await, 1, "empty replacement joins");
    let sum = set
        .heal_all(&HealRequest::default(), std::time::Duration::ZERO, None)
        .await;
    assert_eq!(sum.failed, 0, "{sum:?}");
    assert_eq!(sum.objects_healed as usize, objs.len(), "{sum:?}");

    // Now lose two other drives: drive 0 must carry its share.
    std::fs::remove_dir_all(&p[1]).unwrap();
    std::fs::remove_dir_all(&p[2]).unwrap();
    read_all(&set, &b, &objs).await;
    // the rebuilt copies hold the same ETag, dates and metadata
    assert_eq!(heads(&set, &b, &objs).await, before);
    // A second heal finds nothing to do on the healthy drives.
    let again = set
        .heal_all(&HealRequest::default(), std::time::Duration::ZERO, None)
        .await;
    assert_eq!(again.objects_healed, 0, "{again:?}");
}

fn flip_in_shards(drive: &Path) -> usize {
    let mut flipped = 0;
    let mut stack = vec![drive.join("heal")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("part.") || name == "cairn.meta" {
                    let mut bytes = std::fs::read(&path).unwrap();
                    if bytes.len() > 40 {
                        let at = bytes.len() - 7;
                        bytes[at] ^= 0xff;
                        std::fs::write(&path, bytes).unwrap();
                        flipped += 1;
                    }
                }
            }
        }
    }
    flipped
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_heal_rewrites_flipped_bytes() {
    let (_t, p, set, b, objs) = filled_set().await;
    let before = heads(&set, &b, &objs).await;
    assert!(flip_in_shards(&p[3]) >= objs.len());

    let shallow = set
        .heal_all(&HealRequest::default(), std::time::Duration::ZERO, None)
        .await;
    let deep = set
        .heal_all(
            &HealRequest {
                deep: true,
                ..Default::default()
            },
            std::time::Duration::ZERO,
            None,
        )
        .await;
    assert_eq!(deep.failed, 0);
    assert!(
        shallow.objects_healed + deep.objects_healed >= objs.len() as u64 - 1,
        "{shallow:?} {deep:?}"
    );
    // Every shard on disk is whole again: a deep pass finds nothing.
    let check = set
        .heal_all(
            &HealRequest {
                deep: true,
                ..Default::default()
            },
            std::time::Duration::ZERO,
            None,
        )
        .await;
    assert_eq!(
        (check.objects_healed, check.bad_blocks),
        (0, 0),
        "{check:?}"
    );
    // And drive 3 alone with one other serves every object.
    std::fs::remove_dir_all(&p[0]).unwrap();
    std::fs::remove_dir_all(&p[1]).unwrap();
    read_all(&set, &b, &objs).await;
    assert_eq!(heads(&set, &b, &objs).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_meets_damage_queues_a_heal() {
    let (_t, p, set, b, objs) = filled_set().await;
    // only the heal queue runs: no scanner, no heal_all below
    set.start_healer();
    let before = heads(&set, &b, &objs).await;
    let parts_before = part_files(&p[0..2]);
    assert!(parts_before.len() >= 4, "{parts_before:?}");
    flip_in_shards(&p[0]);
    flip_in_shards(&p[1]);
    assert_ne!(part_files(&p[0..2]), parts_before);
    let info = |s: &Arc<ErasureSet>| {
        let s = s.clone();
        async move {
            cairn_api::admin::AdminLayer::server_info(&*s)
                .await
                .unwrap()
        }
    };
    assert_eq!(info(&set).await.objects_healed, 0);
    read_all(&set, &b, &objs).await;
    // the reads queued every damaged object; the healer rewrites them
    let mut healed = false;
    for _ in 0..200 {
        let i = info(&set).await;
        if i.heal_queue == 0
            && i.objects_healed >= objs.len() as u64
            && part_files(&p[0..2]) == parts_before
        {
            healed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        healed,
        "reads did not get the damage healed: {:?}",
        info(&set).await
    );
    // the two healed drives alone serve every object (metas included)
    std::fs::remove_dir_all(&p[2]).unwrap();
    std::fs::remove_dir_all(&p[3]).unwrap();
    read_all(&set, &b, &objs).await;
    assert_eq!(heads(&set, &b, &objs).await, before);
}

/// Every shard data file under the drives' `heal` bucket, by path.
fn part_files(drives: &[PathBuf]) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for d in drives {
        let mut stack = vec![d.join("heal")];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = e.path();
                if path.is_dir() {
                    stack.push(path);
                } else if e.file_name().to_string_lossy().starts_with("part.") {
                    out.insert(path.clone(), std::fs::read(&path).unwrap());
                }
            }
        }
    }
    out
}

/// A crash between the data dir rename and the meta rename leaves a data
/// dir no version names; healing (the scanner) removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heal_removes_orphaned_data_dirs() {
    let t = tempfile::tempdir().unwrap();
    let p = drives(t.path());
    let set = ErasureSet::open(p.clone(), None).unwrap();
    let b = BucketName::new("heal").unwrap();
    set.make_bucket(&b).await.unwrap();
    let key = ObjectKey::new("k").unwrap();
    set.put_object(
        &b,
        &key,
        bytes_stream(pattern(2_000_000, 1)),
        PutOptions::default(),
    )
    .await
    .unwrap();
    let orphan = p[1].join("heal/k/cairn.data.00000000-0000-0000-0000-000000000000");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("part.1"), b"leftover").unwrap();
    let sum = set.heal_object(&b, &key, false).await.unwrap();
    assert_eq!(sum.orphans_removed, 1);
    assert!(!orphan.exists());
    let g = set
        .get_object(&b, &key, GetOptions::default())
        .await
        .unwrap();
    assert_eq!(collect_stream(g.body).await.unwrap(), pattern(2_000_000, 1));
}

/// The admin switch pauses the scanner between objects and resumes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanner_switch_pauses_and_resumes() {
    use cairn_api::admin::AdminLayer as _;
    let (_t, p, set, b, objs) = filled_set().await;
    assert!(set.set_scanner(false));
    set.start_scanner(cairn_core::scan::ScannerConfig {
        pause_per_object: std::time::Duration::from_millis(1),
        cycle_interval: std::time::Duration::from_millis(50),
        deep_every: 1,
        stale_after: std::time::Duration::from_secs(3600),
        deep_bytes_per_sec: 0,
    });
    flip_in_shards(&p[0]);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let healed = store_metric(&set, "cairn_objects_healed_total").await;
    let enabled = store_metric(&set, "cairn_scanner_enabled").await;
    assert!(
        healed == Some(0) && enabled == Some(0),
        "paused scanner ran: healed {healed:?}, enabled {enabled:?}"
    );
    set.set_scanner(true);
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        // One whole deep cycle after the resume has checked everything.
        if store_metric(&set, "cairn_scanner_cycles_total").await != Some(0) {
            assert_ne!(
                store_metric(&set, "cairn_objects_healed_total").await,
                Some(0)
            );
            std::fs::remove_dir_all(&p[1]).unwrap();
            std::fs::remove_dir_all(&p[2]).unwrap();
            read_all(&set, &b, &objs).await;
            return;
        }
    }
    panic!("resumed scanner did not heal");
}

/// The scanner's cleanup removes tmp leftovers and multipart uploads older
/// than its age, and leaves younger ones and stored objects alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_tmp_and_abandoned_uploads_are_removed_by_age() {
    use cairn_api::ListUploadsOptions;
    let (_t, p, set, b, objs) = filled_set().await;
    let key = ObjectKey::new("big").unwrap();
    let old = set
        .create_multipart_upload(&b, &key, PutOptions::default())
        .await
        .unwrap();
    let tmp = p[0].join(".cairn.sys/tmp");
    let junk = tmp.join("leftover-of-a-crash");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("part.1"), b"half a shard").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let young = set
        .create_multipart_upload(&b, &key, PutOptions::default())
        .await
        .unwrap();
    let fresh = tmp.join("being-written");
    std::fs::create_dir_all(&fresh).unwrap();

    set.clean_stale(std::time::Duration::from_millis(1000))
        .await;

    assert!(!junk.exists(), "an old tmp entry stays");
    assert!(fresh.exists(), "a young tmp entry was removed");
    let ids: Vec<String> = set
        .list_multipart_uploads(&b, ListUploadsOptions::default())
        .await
        .unwrap()
        .uploads
        .into_iter()
        .map(|u| u.upload_id)
        .collect();
    assert_eq!(ids, vec![young.clone()], "only the young upload is left");
    let gone = set
        .upload_part(
            &b,
            &key,
            &old,
            1,
            bytes_stream(vec![1u8; 10]),
            PartOptions::default(),
        )
        .await;
    assert!(
        matches!(gone, Err(cairn_api::ObjectError::NoSuchUpload { .. })),
        "{gone:?}"
    );
    let part = set
        .upload_part(
            &b,
            &key,
            &young,
            1,
            bytes_stream(vec![2u8; 10]),
            PartOptions::default(),
        )
        .await
        .unwrap();
    set.complete_multipart_upload(
        &b,
        &key,
        &young,
        vec![CompletePart {
            part_number: 1,
            etag: part.etag,
        }],
    )
    .await
    .unwrap();
    read_all(&set, &b, &objs).await;
}

/// Bytes of one framed shard block of a full 1 MiB block in a 2+2 set:
/// the 32-byte hash and half a MiB of shard.
const FULL_FRAME: u64 = 32 + (1 << 19);

/// The file of part 1 of `key` on a drive.
fn part_file_of(drive: &Path, key: &str) -> PathBuf {
    part_n_file_of(drive, key, 1)
}

/// The file of part `n` of `key` on a drive.
fn part_n_file_of(drive: &Path, key: &str, n: u32) -> PathBuf {
    let dir = drive.join("heal").join(key);
    let name = format!("part.{n}");
    let files: Vec<PathBuf> = part_files(&[drive.to_path_buf()])
        .into_keys()
        .filter(|p| p.starts_with(&dir) && p.file_name().is_some_and(|f| *f == *name))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

/// Flips 8 bytes of shard block `block` in a part file: in its hash
/// (`in_hash`) or in its data, `at` picking where.
fn flip_block(file: &Path, block: u64, in_hash: bool, at: u64) {
    let mut bytes = std::fs::read(file).unwrap();
    let start = block * FULL_FRAME;
    let frame = (bytes.len() as u64 - start).min(FULL_FRAME);
    let (lo, span) = if in_hash {
        (start, 32)
    } else {
        (start + 32, frame - 32)
    };
    let from = (lo + at % (span - 7)) as usize;
    for b in &mut bytes[from..from + 8] {
        *b ^= 0xa5;
    }
    std::fs::write(file, bytes).unwrap();
}

async fn get_exact(set: &ErasureSet, b: &BucketName, key: &ObjectKey, data: &[u8]) {
    let g = set.get_object(b, key, GetOptions::default()).await.unwrap();
    let got = collect_stream(g.body).await.expect("the whole body");
    assert!(
        got == data,
        "GET differs: {} of {} bytes",
        got.len(),
        data.len()
    );
}

async fn get_range_exact(
    set: &ErasureSet,
    b: &BucketName,
    key: &ObjectKey,
    data: &[u8],
    (first, last): (u64, u64),
) {
    let opts = GetOptions {
        range: Some(cairn_api::ByteRange::FromTo {
            first,
            last: Some(last),
        }),
        ..GetOptions::default()
    };
    let g = set.get_object(b, key, opts).await.unwrap();
    let got = collect_stream(g.body).await.expect("the whole range");
    assert!(
        got == data[first as usize..=last as usize],
        "range {first}-{last} differs"
    );
}

/// Issue 16: every block keeps three good shards, but three shards are
/// each bad in a different block. A GET serves every byte (no body cut
/// short), a deep heal finds the three bad blocks and rebuilds each from
/// the shards good for that block, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrot_in_a_different_shard_per_block_is_served_and_healed() {
    let t = tempfile::tempdir().unwrap();
    let p = drives(t.path());
    let set = ErasureSet::open(p.clone(), None).unwrap();
    let b = BucketName::new("heal").unwrap();
    set.make_bucket(&b).await.unwrap();
    let key = ObjectKey::new("rot").unwrap();
    let data = pattern((3 << 20) + 300_000, 16);
    set.put_object(&b, &key, bytes_stream(data.clone()), PutOptions::default())
        .await
        .unwrap();
    let whole = part_files(&p);
    assert_eq!(whole.len(), 4);
    for (drive, block) in [(1, 0), (2, 1), (3, 2)] {
        flip_block(&part_file_of(&p[drive], "rot"), block, false, 1000);
    }
    assert_ne!(part_files(&p), whole);

    get_exact(&set, &b, &key, &data).await;
    get_range_exact(&set, &b, &key, &data, (500_000, 3_200_000)).await;

    let out = set.heal_object(&b, &key, true).await.unwrap();
    assert_eq!((out.bad_blocks, out.healed_drives), (3, 3), "{out:?}");
    assert!(
        part_files(&p) == whole,
        "healed shards differ from the written ones"
    );
    // the drive that was never damaged and one healed drive gone: the two
    // other healed drives alone serve the object
    std::fs::remove_dir_all(&p[0]).unwrap();
    std::fs::remove_dir_all(&p[1]).unwrap();
    get_exact(&set, &b, &key, &data).await;
}

/// A multipart object: damage in a different shard per block of part 1
/// (two shards in its last block) and in part 2 is served around and
/// healed per block, part by part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrot_across_parts_is_served_and_healed_per_block() {
    let (_t, p, set, b, objs) = filled_set().await;
    let (_, data) = objs.iter().find(|(k, _)| k == "mp").unwrap();
    let key = ObjectKey::new("mp").unwrap();
    let whole = part_files(&p);
    let damage = [
        (0, 1, 0, false),
        (1, 1, 1, true),
        (2, 1, 2, false),
        (3, 1, 3, false),
        (0, 1, 4, true),
        (2, 1, 4, false),
        (3, 2, 0, false),
    ];
    for (drive, part, block, in_hash) in damage {
        flip_block(&part_n_file_of(&p[drive], "mp", part), block, in_hash, 77);
    }
    get_exact(&set, &b, &key, data).await;
    get_range_exact(&set, &b, &key, data, (1_000_000, 5_250_000)).await;
    let out = set.heal_object(&b, &key, true).await.unwrap();
    assert_eq!((out.bad_blocks, out.healed_drives), (7, 4), "{out:?}");
    assert!(
        part_files(&p) == whole,
        "healed shards differ from the written ones"
    );
    std::fs::remove_dir_all(&p[1]).unwrap();
    std::fs::remove_dir_all(&p[2]).unwrap();
    read_all(&set, &b, &objs).await;
}

/// Damage to one shard block: which drive, in the hash or the data, where.
#[derive(Debug, Clone)]
struct Rot {
    drive: usize,
    in_hash: bool,
    at: u64,
}

/// Per block, up to M = 2 distinct drives' shards damaged.
fn rot_pattern(blocks: usize) -> impl Strategy<Value = Vec<Vec<Rot>>> {
    proptest::collection::vec(
        (
            proptest::sample::subsequence(vec![0usize, 1, 2, 3], 0..=2),
            proptest::collection::vec((any::<bool>(), any::<u64>()), 2),
        )
            .prop_map(|(drives, how)| {
                drives
                    .into_iter()
                    .zip(how)
                    .map(|(drive, (in_hash, at))| Rot { drive, in_hash, at })
                    .collect()
            }),
        blocks,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 50, ..ProptestConfig::default() })]
    /// Any damage within parity per block: GET (whole and a range) is
    /// byte-exact, a deep heal counts every bad block and restores every
    /// shard file byte for byte.
    #[test]
    fn damage_within_parity_per_block_is_served_and_healed(
        (size, rot) in (2usize..5).prop_flat_map(|full| {
            let size = (full << 20) + 1..(full + 1) << 20;
            (size, rot_pattern(full + 1))
        }),
        range in (0.0f64..1.0, 0.0f64..1.0),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let t = tempfile::tempdir().unwrap();
            let p = drives(t.path());
            let set = ErasureSet::open(p.clone(), None).unwrap();
            let b = BucketName::new("heal").unwrap();
            set.make_bucket(&b).await.unwrap();
            let key = ObjectKey::new("rot").unwrap();
            let data = pattern(size, size as u64);
            set.put_object(&b, &key, bytes_stream(data.clone()), PutOptions::default())
                .await
                .unwrap();
            let whole = part_files(&p);
            let mut bad = 0;
            for (block, rots) in rot.iter().enumerate() {
                for r in rots {
                    flip_block(&part_file_of(&p[r.drive], "rot"), block as u64, r.in_hash, r.at);
                    bad += 1;
                }
            }
            get_exact(&set, &b, &key, &data).await;
            let a = (range.0 * size as f64) as u64;
            let z = (range.1 * size as f64) as u64;
            get_range_exact(&set, &b, &key, &data, (a.min(z), a.max(z))).await;

            let out = set.heal_object(&b, &key, true).await.unwrap();
            assert_eq!(out.bad_blocks, bad, "{out:?}");
            assert!(part_files(&p) == whole, "healed shards differ from the written ones");
            get_exact(&set, &b, &key, &data).await;
        });
    }
}

/// Reads that failed on a block no K shards rebuild, as the admin API
/// counts them.
async fn unrecoverable_reads(set: &ErasureSet) -> u64 {
    use cairn_api::admin::AdminLayer as _;
    set.server_info().await.unwrap().unrecoverable_reads
}

/// A 2+2 object with 3 of its 4 shards bad in block `block`.
async fn damaged_beyond_parity(
    size: usize,
    block: u64,
) -> (
    tempfile::TempDir,
    ErasureSet,
    BucketName,
    ObjectKey,
    Vec<u8>,
) {
    let t = tempfile::tempdir().unwrap();
    let p = drives(t.path());
    let set = ErasureSet::open(p.clone(), None).unwrap();
    let b = BucketName::new("heal").unwrap();
    set.make_bucket(&b).await.unwrap();
    let key = ObjectKey::new("lost").unwrap();
    let data = pattern(size, size as u64);
    set.put_object(&b, &key, bytes_stream(data.clone()), PutOptions::default())
        .await
        .unwrap();
    for (drive, in_hash) in [(0, false), (1, true), (3, false)] {
        flip_block(&part_file_of(&p[drive], "lost"), block, in_hash, 4242);
    }
    (t, set, b, key, data)
}

/// Issue 16: damage beyond parity in a block the GET reads before its
/// answer (any block of a range up to 4 MiB, the first block of a longer
/// one) fails the GET itself with `DataLost` naming the block, never a
/// body that ends short; the read is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_beyond_parity_fails_the_get_before_its_answer() {
    // (object size, damaged block, what a range GET of blocks before it gives)
    for (size, block) in [(3_300_000, 0), (3_300_000, 3), (9 << 20, 0)] {
        let (_t, set, b, key, data) = damaged_beyond_parity(size, block).await;
        assert_eq!(unrecoverable_reads(&set).await, 0);
        match set.get_object(&b, &key, GetOptions::default()).await {
            Err(cairn_api::ObjectError::DataLost {
                part, block: at, ..
            }) => assert_eq!((part, at), (1, block), "size {size}"),
            Err(e) => panic!("size {size}, block {block}: {e}"),
            Ok(_) => panic!("size {size}, block {block}: GET started a body"),
        }
        assert_eq!(unrecoverable_reads(&set).await, 1, "size {size}");
        // a range that avoids the damaged block still reads
        let (first, last) = if block == 0 {
            (1 << 20, size as u64 - 1)
        } else {
            (0, (block << 20) - 1)
        };
        get_range_exact(&set, &b, &key, &data, (first, last)).await;
        // heal cannot rebuild it either, and says so
        assert!(set.heal_object(&b, &key, true).await.is_err());
    }
}

/// Damage beyond parity past the part of a long GET read before its
/// answer: the body ends with an error after the good bytes (which are
/// exact), never cleanly short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_beyond_parity_mid_object_ends_the_body_with_an_error() {
    let size = 9 << 20;
    let (_t, set, b, key, data) = damaged_beyond_parity(size, 6).await;
    let g = set
        .get_object(&b, &key, GetOptions::default())
        .await
        .expect("the first blocks are good: the GET starts");
    let mut body = g.body;
    let mut got = Vec::new();
    let err = loop {
        use futures::StreamExt as _;
        match body.next().await {
            Some(Ok(chunk)) => got.extend_from_slice(&chunk),
            Some(Err(e)) => break e,
            None => panic!("the body ended cleanly after {} of {size} bytes", got.len()),
        }
    };
    assert_eq!(got.len(), 6 << 20, "every byte before the lost block comes");
    assert!(
        got == data[..6 << 20],
        "the bytes before the lost block differ"
    );
    assert!(
        err.to_string().contains("block 6"),
        "the error names the block: {err}"
    );
    assert_eq!(unrecoverable_reads(&set).await, 1);
}

/// Rewrites `key`'s `cairn.meta` on every drive through `change`, with
/// valid hashes (a crafted or damaged file whose checksums were redone).
fn rewrite_metas(
    drives: &[PathBuf],
    key: &str,
    change: impl Fn(&mut cairn_core::meta::ObjectMeta),
) {
    for d in drives {
        let path = d.join("heal").join(key).join("cairn.meta");
        let mut m =
            cairn_core::meta::ObjectMeta::decode(&std::fs::read(&path).unwrap(), true).unwrap();
        change(&mut m);
        std::fs::write(&path, m.encode().unwrap()).unwrap();
    }
}

/// Issue 16: metadata read from the drives is input. A record whose
/// layout the read and heal paths would divide by or index with (block
/// size 0, a shard index past the shard count) used to panic the read
/// pipeline, which ended the body as if it were whole; now such a copy is
/// corrupt: the GET and the heal fail with an error, nothing panics, and a
/// header claiming a 4 GiB length is read as truncated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_metadata_is_an_error_not_a_panic() {
    let t = tempfile::tempdir().unwrap();
    let p = drives(t.path());
    let set = ErasureSet::open(p.clone(), None).unwrap();
    let b = BucketName::new("heal").unwrap();
    set.make_bucket(&b).await.unwrap();
    let data = pattern(3 << 20, 3);
    for k in ["zero-block", "bad-index", "bad-dist", "long-header"] {
        let key = ObjectKey::new(k).unwrap();
        set.put_object(&b, &key, bytes_stream(data.clone()), PutOptions::default())
            .await
            .unwrap();
    }
    rewrite_metas(&p, "zero-block", |m| m.versions[0].erasure.block_size = 0);
    rewrite_metas(&p, "bad-index", |m| m.versions[0].erasure.index = 9);
    rewrite_metas(&p, "bad-dist", |m| {
        m.versions[0].erasure.distribution = vec![7; 4]
    });
    for k in ["zero-block", "bad-index", "bad-dist"] {
        let key = ObjectKey::new(k).unwrap();
        match set.get_object(&b, &key, GetOptions::default()).await {
            Err(cairn_api::ObjectError::Unavailable { .. }) => {}
            Err(e) => panic!("{k}: {e}"),
            Ok(g) => panic!(
                "{k}: GET answered with {:?} bytes",
                collect_stream(g.body).await.map(|b| b.len())
            ),
        }
        assert!(set.heal_object(&b, &key, true).await.is_err(), "{k}");
    }
    // one drive's meta claims a header of ~4 GiB: that copy is corrupt,
    // the others serve
    let meta = p[0].join("heal/long-header/cairn.meta");
    let mut bytes = std::fs::read(&meta).unwrap();
    bytes[10..14].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    bytes.resize(8192, 0);
    std::fs::write(&meta, bytes).unwrap();
    get_exact(&set, &b, &ObjectKey::new("long-header").unwrap(), &data).await;
}

/// The value of one of the store's unlabelled metrics.
async fn store_metric(set: &ErasureSet, name: &str) -> Option<u64> {
    use cairn_api::admin::AdminLayer as _;
    set.metrics()
        .await
        .into_iter()
        .find(|m| m.name == name)
        .and_then(|m| m.samples.first().map(|s| s.value))
}
