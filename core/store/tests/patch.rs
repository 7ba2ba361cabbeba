#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! `patch_object` on the erasure set: only the touched extents are
//! written, versions share the rest, deleting a version frees only what
//! no other version names, encryption, object lock and heal still hold.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use cairn_api::conformance::pattern;
use cairn_api::{
    BucketChange, BucketEncryption, BucketName, Conditions, DeleteOptions, GetOptions,
    MakeBucketOptions, ObjectError, ObjectKey, ObjectLayer, PatchBase, PatchOptions, PutOptions,
    Retention, RetentionMode, Versioning, bytes_stream, collect_stream, patch_stream,
};
use cairn_core::ErasureSet;
use cairn_core::extents::EXTENT_SIZE;
use cairn_core::kms::builtin::BuiltinKms;

const E: u64 = EXTENT_SIZE;

fn open(root: &Path) -> (Arc<ErasureSet>, Vec<PathBuf>) {
    let paths: Vec<PathBuf> = (0..4).map(|i| root.join(format!("d{i}"))).collect();
    let set = ErasureSet::open(paths.clone(), None).unwrap();
    let secret = format!(
        "cairn-default:{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    );
    set.set_kms(Some(Arc::new(BuiltinKms::from_secret(&secret).unwrap())));
    (Arc::new(set), paths)
}

fn k(s: &str) -> ObjectKey {
    ObjectKey::new(s).unwrap()
}

/// A file's identity: inode and change time (a freed inode is soon used
/// again for a new file).
type FileId = (u64, i64, i64);

/// Every part file under the bucket folders: path -> (identity, size).
fn part_files(drives: &[PathBuf], bucket: &str) -> BTreeMap<PathBuf, (FileId, u64)> {
    let mut out = BTreeMap::new();
    for d in drives {
        let mut stack = vec![d.join(bucket)];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let path = e.path();
                // a file the last commit freed may go while we walk
                let Ok(m) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if m.is_dir() {
                    stack.push(path);
                } else if e.file_name().to_string_lossy().starts_with("part.") {
                    out.insert(path, ((m.ino(), m.ctime(), m.ctime_nsec()), m.len()));
                }
            }
        }
    }
    out
}

/// `part_files` once `n` files are left: what a commit frees is removed
/// after it answers.
async fn part_files_left(
    drives: &[PathBuf],
    bucket: &str,
    n: usize,
) -> BTreeMap<PathBuf, (FileId, u64)> {
    for _ in 0..100 {
        let f = part_files(drives, bucket);
        if f.len() <= n {
            return f;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    part_files(drives, bucket)
}

/// Bytes of part files in `after` that were not in `before` (new files).
fn new_bytes(
    before: &BTreeMap<PathBuf, (FileId, u64)>,
    after: &BTreeMap<PathBuf, (FileId, u64)>,
) -> u64 {
    let old: std::collections::HashSet<FileId> = before.values().map(|(i, _)| *i).collect();
    after
        .values()
        .filter(|(i, _)| !old.contains(i))
        .map(|(_, s)| *s)
        .sum()
}

async fn read(set: &ErasureSet, b: &BucketName, key: &str, version: Option<&str>) -> Vec<u8> {
    let g = set
        .get_object(
            b,
            &k(key),
            GetOptions {
                version_id: version.map(|v| Some(v.to_owned())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    collect_stream(g.body).await.unwrap()
}

struct Model {
    data: Vec<u8>,
    etag: String,
    version: Option<String>,
}

impl Model {
    async fn put(set: &ErasureSet, b: &BucketName, key: &str, data: Vec<u8>) -> Self {
        let info = set
            .put_object(
                b,
                &k(key),
                bytes_stream(data.clone()),
                PutOptions::default(),
            )
            .await
            .unwrap();
        Model {
            data,
            etag: info.etag,
            version: info.version_id,
        }
    }

    /// Applies `changes` and `size` to the object and to the model.
    async fn patch(
        &mut self,
        set: &ErasureSet,
        b: &BucketName,
        key: &str,
        changes: Vec<(u64, Vec<u8>)>,
        size: u64,
    ) -> cairn_api::ObjectInfo {
        self.data.resize(size as usize, 0);
        for (off, d) in &changes {
            self.data[*off as usize..*off as usize + d.len()].copy_from_slice(d);
        }
        let info = set
            .patch_object(
                b,
                &k(key),
                patch_stream(
                    changes
                        .into_iter()
                        .map(|(o, d)| (o, Bytes::from(d)))
                        .collect(),
                ),
                PatchOptions {
                    base: Some(PatchBase {
                        version_id: self.version.clone(),
                        etag: self.etag.clone(),
                    }),
                    size,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        self.etag = info.etag.clone();
        self.version = info.version_id.clone();
        assert!(
            read(set, b, key, None).await == self.data,
            "bytes differ after a patch"
        );
        info
    }
}

/// Shard bytes on all four drives (2+2) of `plain` bytes of data: twice
/// the data plus a 32-byte hash per shard block.
fn stored(plain: u64) -> u64 {
    let block = 1u64 << 20;
    (0..plain.div_ceil(block))
        .map(|i| 4 * (32 + (plain - i * block).min(block).div_ceil(2)))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_writes_the_touched_extents_and_frees_what_it_replaced() {
    let t = tempfile::tempdir().unwrap();
    let (set, p) = open(t.path());
    let b = BucketName::new("plain").unwrap();
    set.make_bucket(&b).await.unwrap();
    let size = 5 * E;
    let mut m = Model::put(&set, &b, "f", pattern(size as usize, 1)).await;
    // the first patch writes the one extent it touches; the single
    // 20 MiB part's other extents become slices of its file
    let before = part_files(&p, "plain");
    m.patch(&set, &b, "f", vec![(E + 5, pattern(4096, 2))], size)
        .await;
    let after = part_files(&p, "plain");
    assert_eq!(new_bytes(&before, &after), stored(E));
    // later patches write one extent each (two when a write crosses an
    // extent boundary); a replaced extent file is freed, the first file
    // once no slice of it is left: usage grows by the rewritten extents
    // only, and is back to the object's size when all are rewritten
    let mut rewritten: std::collections::BTreeSet<u64> = [1].into();
    for (i, off) in [0, 3 * E + 100, 2 * E - 10, E * 4 + E / 2]
        .into_iter()
        .enumerate()
    {
        let before = part_files(&p, "plain");
        m.patch(
            &set,
            &b,
            "f",
            vec![(off, pattern(4096, 10 + i as u64))],
            size,
        )
        .await;
        let touched: Vec<u64> = (off / E..=(off + 4096 - 1) / E).collect();
        rewritten.extend(&touched);
        let first_named = rewritten.len() < 5;
        let files = 4 * (rewritten.len() + usize::from(first_named));
        let after = part_files_left(&p, "plain", files).await;
        assert_eq!(
            new_bytes(&before, &after),
            touched.len() as u64 * stored(E),
            "patch {i}"
        );
        assert_eq!(after.len(), files, "patch {i}: the files named, no more");
        let total: u64 = after.values().map(|(_, s)| s).sum();
        let expect =
            rewritten.len() as u64 * stored(E) + if first_named { stored(size) } else { 0 };
        assert_eq!(total, expect, "patch {i}: nothing left behind");
    }
    assert_eq!(rewritten.len(), 5);
    // several scattered writes in one patch
    let before = part_files(&p, "plain");
    m.patch(
        &set,
        &b,
        "f",
        vec![
            (10, pattern(1, 3)),
            (E + 1, pattern(2, 4)),
            (E + 100, pattern(3, 5)),
        ],
        size,
    )
    .await;
    assert_eq!(new_bytes(&before, &part_files(&p, "plain")), 2 * stored(E));
    // a truncate at an extent boundary writes nothing; an extension
    // writes only the new extents; a cut inside an extent rewrites it
    let before = part_files(&p, "plain");
    m.patch(&set, &b, "f", vec![], 3 * E).await;
    let after = part_files_left(&p, "plain", 3 * 4).await;
    assert_eq!(new_bytes(&before, &after), 0);
    assert_eq!(after.len(), 3 * 4);
    // (the extent between the old end and the write is a hole)
    let before = part_files(&p, "plain");
    m.patch(&set, &b, "f", vec![(4 * E, pattern(10, 6))], 4 * E + 10)
        .await;
    assert_eq!(new_bytes(&before, &part_files(&p, "plain")), stored(10));
    let before = part_files(&p, "plain");
    m.patch(&set, &b, "f", vec![], 2 * E + 7).await;
    assert_eq!(new_bytes(&before, &part_files(&p, "plain")), stored(7));
    // appends fold into the last extent: parts do not pile up
    for i in 0..20u64 {
        let at = m.data.len() as u64;
        m.patch(&set, &b, "f", vec![(at, pattern(1000, 100 + i))], at + 1000)
            .await;
    }
    let info = set
        .head_object(&b, &k("f"), &Conditions::default())
        .await
        .unwrap();
    assert_eq!(info.parts_count, Some(3), "{info:?}");
    assert!(
        info.etag.ends_with("-3"),
        "a multipart-style ETag: {}",
        info.etag
    );
    // the object survives a restart of the set (records on the drives)
    drop(set);
    let (set, _) = open(t.path());
    assert!(read(&set, &b, "f", None).await == m.data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_share_extents_and_deleting_one_frees_only_its_own() {
    let t = tempfile::tempdir().unwrap();
    let (set, p) = open(t.path());
    let b = BucketName::new("ver").unwrap();
    set.make_bucket(&b).await.unwrap();
    set.update_bucket_config(&b, BucketChange::Versioning(Versioning::Enabled))
        .await
        .unwrap();
    let size = 3 * E + 123;
    let mut m = Model::put(&set, &b, "f", pattern(size as usize, 1)).await;
    let mut versions = vec![(m.version.clone().unwrap(), m.data.clone())];
    for i in 0..4u64 {
        let off = (i * 1_234_567) % size;
        m.patch(&set, &b, "f", vec![(off, pattern(5000, 20 + i))], size)
            .await;
        versions.push((m.version.clone().unwrap(), m.data.clone()));
    }
    // every version reads as it was written
    for (v, data) in &versions {
        assert!(read(&set, &b, "f", Some(v)).await == *data, "version {v}");
    }
    // delete the oldest (whose files the others share), then a middle one
    for gone in [0usize, 2] {
        let (v, _) = &versions[gone];
        set.delete_object_with(
            &b,
            &k("f"),
            DeleteOptions {
                version_id: Some(Some(v.clone())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    for (i, (v, data)) in versions.iter().enumerate() {
        if i == 0 || i == 2 {
            continue;
        }
        assert!(
            read(&set, &b, "f", Some(v)).await == *data,
            "version {i} after deletes"
        );
    }
    // the drives hold what the three versions name, no more: every file
    // is named by some remaining version (removing them all frees all)
    for (i, (v, _)) in versions.iter().enumerate() {
        if i == 0 || i == 2 {
            continue;
        }
        set.delete_object_with(
            &b,
            &k("f"),
            DeleteOptions {
                version_id: Some(Some(v.clone())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    assert_eq!(part_files_left(&p, "ver", 0).await, BTreeMap::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_objects_reseal_only_the_changed_extents() {
    let t = tempfile::tempdir().unwrap();
    let (set, p) = open(t.path());
    let b = BucketName::new("enc").unwrap();
    set.make_bucket(&b).await.unwrap();
    set.update_bucket_config(&b, BucketChange::Versioning(Versioning::Enabled))
        .await
        .unwrap();
    set.put_bucket_encryption(&b, Some(BucketEncryption::S3))
        .await
        .unwrap();
    let marker = b"CAIRN-PATCH-PLAINTEXT-MARKER-0123".repeat(200);
    let size = 2 * E + 5000;
    let mut m = Model::put(&set, &b, "f", pattern(size as usize, 1)).await;
    let v1 = m.version.clone().unwrap();
    let d1 = m.data.clone();
    let before = part_files(&p, "enc");
    let info = m
        .patch(&set, &b, "f", vec![(E + 10, marker.clone())], size)
        .await;
    assert!(info.encryption.is_some(), "{info:?}");
    // the same extent changed again, other bytes: both versions open
    let v2 = m.version.clone().unwrap();
    let d2 = m.data.clone();
    let mid = part_files(&p, "enc");
    m.patch(&set, &b, "f", vec![(E + 20, marker.clone())], size)
        .await;
    let after = part_files(&p, "enc");
    assert!(
        new_bytes(&mid, &after) < 2 * stored(E),
        "one extent re-sealed"
    );
    // the first patch too: the extents around are slices of the sealed
    // part's file (the first from its start, the last its tail)
    assert!(new_bytes(&before, &mid) > 0);
    assert!(
        new_bytes(&before, &mid) < 2 * stored(E),
        "one extent sealed at the first patch"
    );
    assert!(read(&set, &b, "f", Some(&v1)).await == d1);
    assert!(read(&set, &b, "f", Some(&v2)).await == d2);
    let head = set
        .head_object(&b, &k("f"), &Conditions::default())
        .await
        .unwrap();
    assert!(head.encryption.is_some());
    // no drive holds the changed bytes in the clear
    for path in after.keys() {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            !bytes.windows(33).any(|w| w == &marker[..33]),
            "plaintext on a drive: {}",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_lock_and_worm_hold_for_patches() {
    let t = tempfile::tempdir().unwrap();
    let (set, _p) = open(t.path());
    let b = BucketName::new("locked").unwrap();
    set.make_bucket_with(&b, MakeBucketOptions { object_lock: true })
        .await
        .unwrap();
    let data = pattern((2 * E) as usize, 1);
    let info = set
        .put_object(
            &b,
            &k("f"),
            bytes_stream(data.clone()),
            PutOptions {
                retention: Some(Retention {
                    mode: RetentionMode::Compliance,
                    until: time::OffsetDateTime::now_utc() + time::Duration::days(1),
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut m = Model {
        data: data.clone(),
        etag: info.etag.clone(),
        version: info.version_id.clone(),
    };
    // a patch is a new version: allowed, the locked one stays as it was
    m.patch(&set, &b, "f", vec![(7, pattern(9, 2))], 2 * E)
        .await;
    let v1 = info.version_id.clone().unwrap();
    assert!(read(&set, &b, "f", Some(&v1)).await == data);
    let del = set
        .delete_object_with(
            &b,
            &k("f"),
            DeleteOptions {
                version_id: Some(Some(v1.clone())),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(del, Err(ObjectError::ObjectLocked { .. })),
        "{del:?}"
    );

    // WORM: an existing key is never replaced, patches included
    let w = BucketName::new("worm").unwrap();
    set.make_bucket(&w).await.unwrap();
    set.update_bucket_config(&w, BucketChange::Worm)
        .await
        .unwrap();
    let m = Model::put(&set, &w, "f", pattern((E + 9) as usize, 3)).await;
    let r = set
        .patch_object(
            &w,
            &k("f"),
            patch_stream(vec![(0, Bytes::from_static(b"x"))]),
            PatchOptions {
                size: E + 9,
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(r, Err(ObjectError::Worm { .. })), "{r:?}");
    assert!(read(&set, &w, "f", None).await == m.data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heal_rebuilds_lost_and_damaged_extents() {
    let t = tempfile::tempdir().unwrap();
    let (set, p) = open(t.path());
    let b = BucketName::new("heal").unwrap();
    set.make_bucket(&b).await.unwrap();
    let size = 4 * E;
    let mut m = Model::put(&set, &b, "f", pattern(size as usize, 1)).await;
    m.patch(&set, &b, "f", vec![(100, pattern(10, 2))], size)
        .await;
    m.patch(&set, &b, "f", vec![(2 * E, pattern(10, 3))], size)
        .await;
    // per drive: the first 16 MiB file (extents 1 and 3 are slices of
    // it) and the two rewritten extents
    let whole = part_files_left(&p, "heal", 3 * 4).await;
    let mut on_d0: Vec<(PathBuf, u64)> = whole
        .iter()
        .filter(|(f, _)| f.starts_with(&p[0]))
        .map(|(f, (_, len))| (f.clone(), *len))
        .collect();
    on_d0.sort_by_key(|(_, len)| std::cmp::Reverse(*len));
    assert_eq!(on_d0.len(), 3);
    // drive 0 loses the shared file and one extent file, drive 1 gets a
    // flipped byte in its shared file
    let (shared, extent) = (&on_d0[0], &on_d0[1]);
    std::fs::remove_file(&shared.0).unwrap();
    std::fs::remove_file(&extent.0).unwrap();
    let on_d1 = whole
        .iter()
        .filter(|(f, _)| f.starts_with(&p[1]))
        .max_by_key(|(_, (_, len))| *len)
        .map(|(f, (_, len))| (f.clone(), *len))
        .unwrap();
    let mut bytes = std::fs::read(&on_d1.0).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&on_d1.0, bytes).unwrap();
    // reads go on around the damage
    assert!(read(&set, &b, "f", None).await == m.data);
    let out = set.heal_object(&b, &k("f"), true).await.unwrap();
    assert_eq!(out.healed_drives, 2, "{out:?}");
    let healed = part_files(&p, "heal");
    assert_eq!(
        healed.keys().collect::<Vec<_>>(),
        whole.keys().collect::<Vec<_>>()
    );
    // only the lost and damaged files were written again (the shared file
    // whole, though two parts name it)
    assert_eq!(new_bytes(&whole, &healed), shared.1 + extent.1 + on_d1.1);
    assert_eq!(shared.1, stored(size) / 4);
    // the healed drives alone serve the object: take two others away
    for d in [&p[2], &p[3]] {
        std::fs::rename(d.join("heal"), d.join("heal-away")).unwrap();
    }
    assert!(read(&set, &b, "f", None).await == m.data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_of_a_multipart_object_keeps_its_parts() {
    let t = tempfile::tempdir().unwrap();
    let (set, p) = open(t.path());
    let b = BucketName::new("multi").unwrap();
    set.make_bucket(&b).await.unwrap();
    let id = set
        .create_multipart_upload(&b, &k("f"), PutOptions::default())
        .await
        .unwrap();
    let parts: Vec<Vec<u8>> = (0..3).map(|i| pattern(5 << 20, 40 + i)).collect();
    let done =
        cairn_api::conformance::upload_parts(&*set, &b, &k("f"), &id, &parts, &Default::default())
            .await
            .unwrap();
    let info = set
        .complete_multipart_upload(&b, &k("f"), &id, done)
        .await
        .unwrap();
    let mut m = Model {
        data: parts.concat(),
        etag: info.etag,
        version: None,
    };
    let before = part_files(&p, "multi");
    // a write in the second 5 MiB part: that part is cut into extents
    // at multiples of 4 MiB (3 MiB + 2 MiB: it starts at 5 MiB); the
    // touched one is written, the other is a slice of the part's file
    // (it ends where the file ends), the other parts are kept
    m.patch(
        &set,
        &b,
        "f",
        vec![((5 << 20) + 3, pattern(8, 9))],
        15 << 20,
    )
    .await;
    assert_eq!(
        new_bytes(&before, &part_files(&p, "multi")),
        stored(3 << 20)
    );
    // a write in the 2 MiB slice: the slice is written, the rest kept
    let before = part_files(&p, "multi");
    m.patch(
        &set,
        &b,
        "f",
        vec![((8 << 20) + 3, pattern(8, 10))],
        15 << 20,
    )
    .await;
    assert_eq!(
        new_bytes(&before, &part_files(&p, "multi")),
        stored(2 << 20)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_nothing_wrote_into_is_a_hole() {
    let t = tempfile::tempdir().unwrap();
    let (set, p) = open(t.path());
    let b = BucketName::new("holes").unwrap();
    set.make_bucket(&b).await.unwrap();
    // a VM disk: a small header, then grown to 1 GiB without writing
    let mut m = Model::put(&set, &b, "disk", pattern((2 * E) as usize, 1)).await;
    let gib = 1u64 << 30;
    let before = part_files(&p, "holes");
    let info = set
        .patch_object(
            &b,
            &k("disk"),
            patch_stream(vec![]),
            PatchOptions {
                base: Some(PatchBase {
                    version_id: None,
                    etag: m.etag.clone(),
                }),
                size: gib,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    m.data.resize(gib as usize, 0);
    m.etag = info.etag.clone();
    assert_eq!(info.size, gib);
    // the base's one part, kept, and one hole: nothing written
    assert_eq!(info.parts_count, Some(2), "{info:?}");
    assert_eq!(new_bytes(&before, &part_files(&p, "holes")), 0);
    // a write deep inside the hole costs its extent, the hole splits
    let before = part_files(&p, "holes");
    let off = 700 * (1 << 20) + 12345;
    let payload = pattern(8192, 2);
    let info = set
        .patch_object(
            &b,
            &k("disk"),
            patch_stream(vec![(off, Bytes::from(payload.clone()))]),
            PatchOptions {
                base: Some(PatchBase {
                    version_id: None,
                    etag: m.etag.clone(),
                }),
                size: gib,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(new_bytes(&before, &part_files(&p, "holes")), stored(E));
    // the base's part, a hole, the extent, a hole
    assert_eq!(info.parts_count, Some(4), "{info:?}");
    // range reads in the hole, across its edge and in the data
    for (first, len) in [
        (5 * E + 3, 100u64),
        (off - 10, 8192 + 20),
        (E - 5, 10),
        (gib - 7, 7),
    ] {
        let g = set
            .get_object(
                &b,
                &k("disk"),
                GetOptions {
                    range: Some(cairn_api::ByteRange::FromTo {
                        first,
                        last: Some(first + len - 1),
                    }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let got = collect_stream(g.body).await.unwrap();
        let mut want = vec![0u8; len as usize];
        for (i, w) in want.iter_mut().enumerate() {
            let at = first + i as u64;
            *w = if at < 2 * E {
                m.data[at as usize]
            } else if (off..off + 8192).contains(&at) {
                payload[(at - off) as usize]
            } else {
                0
            };
        }
        assert!(got == want, "range {first}+{len}");
    }
    // a deep heal finds nothing to do in a hole
    let out = set.heal_object(&b, &k("disk"), true).await.unwrap();
    assert_eq!((out.healed_drives, out.bad_blocks), (0, 0), "{out:?}");
}
