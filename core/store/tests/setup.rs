#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! Opening drives: formatting, adopting empty drives, refusing foreign or
//! misordered ones, and quorum answers when drives are missing.

use cairn_api::{
    BucketName, GetOptions, ObjectError, ObjectKey, ObjectLayer, PutOptions, bytes_stream,
    collect_stream,
};
use cairn_core::{ErasureSet, SetupError};

fn paths(root: &std::path::Path, prefix: &str, n: usize) -> Vec<std::path::PathBuf> {
    (0..n).map(|i| root.join(format!("{prefix}{i}"))).collect()
}

/// A set of 4 drives in a temp folder, with the bucket "bkt".
async fn set_with_bucket() -> (
    tempfile::TempDir,
    Vec<std::path::PathBuf>,
    ErasureSet,
    BucketName,
) {
    let t = tempfile::tempdir().unwrap();
    let p = paths(t.path(), "d", 4);
    let set = ErasureSet::open(p.clone(), None).unwrap();
    let b = BucketName::new("bkt").unwrap();
    set.make_bucket(&b).await.unwrap();
    (t, p, set, b)
}

#[test]
fn misordered_drives_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let p = paths(t.path(), "d", 4);
    ErasureSet::open(p.clone(), None).unwrap();
    let mut swapped = p.clone();
    swapped.swap(0, 1);
    let err = ErasureSet::open(swapped, None).err().expect("must refuse");
    assert!(matches!(err, SetupError::DriveOrder { .. }), "{err}");
}

#[test]
fn parity_is_checked_and_kept() {
    let t = tempfile::tempdir().unwrap();
    let p = paths(t.path(), "d", 4);
    assert!(matches!(
        ErasureSet::open(p.clone(), Some(3)),
        Err(SetupError::BadParity { .. })
    ));
    assert_eq!(ErasureSet::open(p.clone(), Some(1)).unwrap().parity(), 1);
    // Kept from the first start.
    assert_eq!(ErasureSet::open(p, None).unwrap().parity(), 1);
}

#[tokio::test]
async fn foreign_drive_is_refused_untouched_and_empty_drive_joins() {
    let t = tempfile::tempdir().unwrap();
    let ours = paths(t.path(), "d", 4);
    let theirs = paths(t.path(), "x", 4);
    let set = ErasureSet::open(ours.clone(), None).unwrap();
    let b = BucketName::new("bkt").unwrap();
    let k = ObjectKey::new("obj").unwrap();
    set.make_bucket(&b).await.unwrap();
    set.put_object(
        &b,
        &k,
        bytes_stream(vec![7u8; 300_000]),
        PutOptions::default(),
    )
    .await
    .unwrap();
    drop(set);
    ErasureSet::open(theirs.clone(), None).unwrap();
    let foreign_format = std::fs::read(theirs[0].join(".cairn.sys/format.json")).unwrap();

    // Drive 0 replaced by another deployment's drive: refused, naming it.
    let kept = t.path().join("d0-kept");
    std::fs::rename(&ours[0], &kept).unwrap();
    std::fs::rename(&theirs[0], &ours[0]).unwrap();
    let err = ErasureSet::open(ours.clone(), None)
        .err()
        .expect("a foreign drive must be refused");
    assert!(matches!(err, SetupError::ForeignDrive { .. }), "{err}");
    assert!(
        err.to_string().contains(&ours[0].display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read(ours[0].join(".cairn.sys/format.json")).unwrap(),
        foreign_format,
        "a foreign drive must never be reformatted"
    );

    // Drive 0 back, drive 1 replaced by an empty folder: it joins.
    std::fs::remove_dir_all(&ours[0]).unwrap();
    std::fs::rename(&kept, &ours[0]).unwrap();
    std::fs::remove_dir_all(&ours[1]).unwrap();
    let set = ErasureSet::open(ours.clone(), None).unwrap();
    assert!(
        ours[1].join(".cairn.sys/format.json").is_file(),
        "empty drive joins"
    );
    let g = set.get_object(&b, &k, GetOptions::default()).await.unwrap();
    assert_eq!(collect_stream(g.body).await.unwrap(), vec![7u8; 300_000]);
}

/// Formatted with 4 drives, started with a fifth: refused, naming the new
/// drive, which gets no format (before, it was formatted as drive 4 of 5
/// while the others said 4, and the healer indexed out of bounds).
#[test]
fn added_drive_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let p = paths(t.path(), "d", 5);
    ErasureSet::open(p[..4].to_vec(), None).unwrap();
    let err = ErasureSet::open(p.clone(), None)
        .err()
        .expect("an added drive must be refused");
    assert!(
        matches!(
            err,
            SetupError::AddedDrives {
                expected: 4,
                given: 5,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(&p[4].display().to_string()),
        "{err}"
    );
    assert!(!p[4].join(".cairn.sys/format.json").exists());
    // A new drive first is refused too, naming it (not as a moved drive).
    let mut first = vec![p[4].clone()];
    first.extend_from_slice(&p[..4]);
    let err = ErasureSet::open(first, None).err().expect("refused");
    assert!(matches!(err, SetupError::AddedDrives { .. }), "{err}");
    assert!(
        err.to_string().contains(&p[4].display().to_string()),
        "{err}"
    );
    // The set as formatted still opens.
    assert_eq!(
        ErasureSet::open(p[..4].to_vec(), None)
            .unwrap()
            .drive_count(),
        4
    );
}

#[test]
fn missing_drive_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let p = paths(t.path(), "d", 4);
    ErasureSet::open(p.clone(), None).unwrap();
    let err = ErasureSet::open(p[..3].to_vec(), None)
        .err()
        .expect("a missing drive must be refused");
    match &err {
        SetupError::MissingDrives {
            expected: 4,
            given: 3,
            missing,
        } => assert_eq!(missing, "3"),
        _ => panic!("{err}"),
    }
    assert!(err.to_string().contains("position 3"), "{err}");
}

#[test]
fn a_different_parity_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let p = paths(t.path(), "d", 6);
    assert_eq!(ErasureSet::open(p.clone(), Some(2)).unwrap().parity(), 2);
    let err = ErasureSet::open(p.clone(), Some(1))
        .err()
        .expect("a different parity must be refused");
    assert!(
        matches!(err, SetupError::ParityChanged { given: 1, kept: 2 }),
        "{err}"
    );
    assert!(err.to_string().contains("parity 2"), "{err}");
    for f in p {
        let f: serde_json::Value =
            serde_json::from_slice(&std::fs::read(f.join(".cairn.sys/format.json")).unwrap())
                .unwrap();
        assert_eq!(f["parity"], 2, "format unchanged");
    }
}

/// Two opens of the same drives (two servers, or twice in one process)
/// cannot both hold them; dropping the first releases the drives.
#[test]
fn drives_are_locked_while_open() {
    let t = tempfile::tempdir().unwrap();
    let p = paths(t.path(), "d", 4);
    let first = ErasureSet::open(p.clone(), None).unwrap();
    let err = ErasureSet::open(p.clone(), None)
        .err()
        .expect("a second open must be refused");
    assert!(matches!(err, SetupError::DriveLocked { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&p[0].display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    // one drive shared with another set is refused too
    let mut other = paths(t.path(), "e", 3);
    other.push(p[2].clone());
    let err = ErasureSet::open(other, None).err().expect("refused");
    assert!(
        matches!(&err, SetupError::DriveLocked { path, .. } if *path == p[2].display().to_string()),
        "{err}"
    );
    drop(first);
    ErasureSet::open(p, None).unwrap();
}

#[tokio::test]
async fn missing_key_with_too_many_drives_gone_is_unavailable_not_404() {
    let (_t, p, set, b) = set_with_bucket().await;
    let k = ObjectKey::new("nope").unwrap();
    // M = 2 gone: a missing key is still a clean 404.
    std::fs::remove_dir_all(&p[0]).unwrap();
    std::fs::remove_dir_all(&p[1]).unwrap();
    assert!(matches!(
        set.get_object(&b, &k, GetOptions::default()).await,
        Err(ObjectError::NoSuchKey { .. })
    ));
    // Writes need K+1 = 3 drives with 2+2.
    assert!(matches!(
        set.put_object(&b, &k, bytes_stream(vec![1]), PutOptions::default())
            .await,
        Err(ObjectError::Unavailable { .. })
    ));
    // M + 1 gone: nobody can tell, so 503.
    std::fs::remove_dir_all(&p[2]).unwrap();
    assert!(matches!(
        set.get_object(&b, &k, GetOptions::default()).await,
        Err(ObjectError::Unavailable { .. })
    ));
}

/// A drive that stops answering (here: an object's meta replaced by a
/// FIFO, so opening it blocks forever) is marked offline after the drive
/// timeout; later requests skip it instead of waiting again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresponsive_drive_is_marked_offline_and_skipped() {
    let t = tempfile::tempdir().unwrap();
    let p = paths(t.path(), "d", 4);
    let mut set = ErasureSet::open(p.clone(), None).unwrap();
    set.set_drive_timeout(std::time::Duration::from_millis(300));
    let b = BucketName::new("bkt").unwrap();
    set.make_bucket(&b).await.unwrap();
    for k in ["a", "b"] {
        set.put_object(
            &b,
            &ObjectKey::new(k).unwrap(),
            bytes_stream(vec![3u8; 200_000]),
            PutOptions::default(),
        )
        .await
        .unwrap();
    }
    let meta = p[2].join("bkt/a/cairn.meta");
    std::fs::remove_file(&meta).unwrap();
    nix::unistd::mkfifo(&meta, nix::sys::stat::Mode::S_IRWXU).unwrap();

    let first = std::time::Instant::now();
    let g = set
        .get_object(&b, &ObjectKey::new("a").unwrap(), GetOptions::default())
        .await
        .unwrap();
    assert_eq!(collect_stream(g.body).await.unwrap(), vec![3u8; 200_000]);
    assert!(
        first.elapsed() >= std::time::Duration::from_millis(300),
        "waited for the timeout once"
    );
    // Now the drive is skipped: reads take their normal time.
    let again = std::time::Instant::now();
    for k in ["a", "b", "a"] {
        let g = set
            .get_object(&b, &ObjectKey::new(k).unwrap(), GetOptions::default())
            .await
            .unwrap();
        assert_eq!(collect_stream(g.body).await.unwrap().len(), 200_000);
    }
    // Had each read waited for the timeout again, three would take 900 ms.
    assert!(
        again.elapsed() < std::time::Duration::from_millis(900),
        "reads waited on the marked drive: {:?}",
        again.elapsed()
    );
    let info = cairn_api::admin::AdminLayer::server_info(&set)
        .await
        .unwrap();
    assert_eq!(info.drives[2].state, "offline", "{info:?}");
    assert_eq!(info.drives[2].index, 2);
    // Unblock the stuck reader thread so the test can end.
    let _ = std::fs::OpenOptions::new().write(true).open(&meta);
}

/// Drives that are all slow at once (one disk under all of them, under
/// load) are not marked offline together: the request waits for them and
/// succeeds, and every drive stays online. (Marking them all failed every
/// request with an I/O error until the monitor's next pass.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_late_together_are_waited_for_not_marked_offline() {
    let t = tempfile::tempdir().unwrap();
    let p = paths(t.path(), "d", 4);
    let mut set = ErasureSet::open(p.clone(), None).unwrap();
    set.set_drive_timeout(std::time::Duration::from_millis(300));
    let b = BucketName::new("bkt").unwrap();
    set.make_bucket(&b).await.unwrap();
    let k = ObjectKey::new("a").unwrap();
    set.put_object(
        &b,
        &k,
        bytes_stream(vec![5u8; 200_000]),
        PutOptions::default(),
    )
    .await
    .unwrap();
    // every drive's record becomes a FIFO that answers after 700 ms
    let records: Vec<_> = p
        .iter()
        .map(|d| {
            let meta = d.join("bkt/a/cairn.meta");
            let bytes = std::fs::read(&meta).unwrap();
            std::fs::remove_file(&meta).unwrap();
            nix::unistd::mkfifo(&meta, nix::sys::stat::Mode::S_IRWXU).unwrap();
            (meta, bytes)
        })
        .collect();
    let metas = records.clone();
    let slow = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(700));
        let writers: Vec<_> = metas
            .into_iter()
            .map(|(meta, bytes)| {
                std::thread::spawn(move || {
                    use std::io::Write as _;
                    let mut f = std::fs::OpenOptions::new().write(true).open(&meta).unwrap();
                    f.write_all(&bytes).unwrap();
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
    });
    let got = match set.get_object(&b, &k, GetOptions::default()).await {
        Ok(g) => collect_stream(g.body).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    slow.join().unwrap();
    release_fifos(&records);
    let got = got.map(|body| body == vec![5u8; 200_000]);
    assert_eq!(got, Ok(true), "the read of drives late together");
    let info = cairn_api::admin::AdminLayer::server_info(&set)
        .await
        .unwrap();
    assert!(
        info.drives.iter().all(|d| d.state == "online"),
        "drives late together were marked: {info:?}"
    );
}

/// Frees any reader still waiting to open one of these FIFOs (a fan-out
/// that gave up on a drive leaves its thread there: the runtime would wait
/// for it forever) and puts the records back as files.
fn release_fifos(records: &[(std::path::PathBuf, Vec<u8>)]) {
    use std::os::unix::fs::OpenOptionsExt as _;
    for _ in 0..10 {
        for (meta, _) in records {
            // a non-blocking writer opens only while a reader waits; it
            // closes at once, so the reader reads an empty record
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
                .open(meta);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for (meta, bytes) in records {
        let tmp = meta.with_extension("restore");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, meta).unwrap();
    }
}

/// Rename moves the data dir: the same shard files, now under the new key.
#[tokio::test]
async fn rename_moves_data_without_copying() {
    let (_t, p, set, b) = set_with_bucket().await;
    let data = vec![9u8; 3_000_000];
    set.put_object(
        &b,
        &ObjectKey::new("from").unwrap(),
        bytes_stream(data.clone()),
        PutOptions::default(),
    )
    .await
    .unwrap();
    let data_dir = |key: &str| {
        std::fs::read_dir(p[0].join("bkt").join(key))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("cairn.data."))
    };
    let before = data_dir("from").unwrap();
    let inode = std::os::unix::fs::MetadataExt::ino(
        &std::fs::metadata(p[0].join("bkt/from").join(&before).join("part.1")).unwrap(),
    );
    set.rename_object(
        &b,
        &ObjectKey::new("from").unwrap(),
        &ObjectKey::new("dir/to").unwrap(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(data_dir("dir/to").unwrap(), before);
    let moved = p[0].join("bkt/dir/to").join(&before).join("part.1");
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(moved).unwrap()),
        inode,
        "same file, not a copy"
    );
    assert!(!p[0].join("bkt/from").exists(), "old folder pruned");
    let g = set
        .get_object(
            &b,
            &ObjectKey::new("dir/to").unwrap(),
            GetOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(collect_stream(g.body).await.unwrap(), data);
}

#[tokio::test]
async fn copy_onto_itself_rewrites_only_metadata() {
    use cairn_api::{CopyOptions, MetadataDirective, ObjectMetadata};
    let (_t, p, set, b) = set_with_bucket().await;
    for (name, len) in [("big", 3_000_000usize), ("small", 1000)] {
        let k = ObjectKey::new(name).unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let put = set
            .put_object(&b, &k, bytes_stream(data.clone()), PutOptions::default())
            .await
            .unwrap();
        let part = |d: &std::path::Path| {
            std::fs::read_dir(d.join("bkt").join(name))
                .unwrap()
                .flatten()
                .find(|e| e.file_name().to_string_lossy().starts_with("cairn.data."))
                .map(|e| {
                    std::os::unix::fs::MetadataExt::ino(
                        &std::fs::metadata(e.path().join("part.1")).unwrap(),
                    )
                })
        };
        let before: Vec<_> = p.iter().map(|d| part(d)).collect();
        let mut meta = ObjectMetadata::default();
        meta.user.insert("mode".into(), "33188".into());
        meta.headers.content_type = Some("text/x-test".into());
        let info = set
            .copy_object(
                &b,
                &k,
                &b,
                &k,
                CopyOptions {
                    metadata: MetadataDirective::Replace(meta),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(info.etag, put.etag);
        assert!(info.last_modified >= put.last_modified);
        // the same part files (inodes): no data written
        let after: Vec<_> = p.iter().map(|d| part(d)).collect();
        assert_eq!(before, after, "{name}");
        if len > 128 << 10 {
            assert!(after.iter().all(Option::is_some), "{name}: data dirs kept");
        }
        let g = set.get_object(&b, &k, GetOptions::default()).await.unwrap();
        assert_eq!(g.info.user_metadata["mode"], "33188");
        assert_eq!(g.info.headers.content_type.as_deref(), Some("text/x-test"));
        assert_eq!(collect_stream(g.body).await.unwrap(), data, "{name}");
    }
}

fn inode(p: &std::path::Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap())
}

/// The files directly under `dir` whose names start with `prefix`.
fn named(dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Complete renames the parts' shard files into the object: no data copy.
#[tokio::test]
async fn multipart_complete_moves_parts_without_copying() {
    use cairn_api::PartOptions;
    use cairn_api::conformance::upload_parts;
    let (_t, p, set, b) = set_with_bucket().await;
    let key = ObjectKey::new("mp").unwrap();
    let id = set
        .create_multipart_upload(&b, &key, PutOptions::default())
        .await
        .unwrap();
    let parts = [vec![1u8; 5 << 20], vec![2u8; 777_777]];
    let done = upload_parts(&set, &b, &key, &id, &parts, &PartOptions::default())
        .await
        .unwrap();
    let upload = p[0].join(".cairn.sys/multipart/bkt").join(&id);
    let staged: Vec<u64> = (1..=2)
        .map(|n| {
            let f = named(&upload, &format!("part.{n}."))
                .into_iter()
                .find(|f| !f.to_string_lossy().ends_with(".json"))
                .unwrap();
            inode(&f)
        })
        .collect();
    set.complete_multipart_upload(&b, &key, &id, done)
        .await
        .unwrap();
    let data_dir = named(&p[0].join("bkt/mp"), "cairn.data.").pop().unwrap();
    let stored: Vec<u64> = (1..=2)
        .map(|n| inode(&data_dir.join(format!("part.{n}"))))
        .collect();
    assert_eq!(
        stored, staged,
        "the object's shard files are the parts' own"
    );
    assert!(!upload.exists(), "the upload folder is gone");
    let g = set
        .get_object(&b, &key, GetOptions::default())
        .await
        .unwrap();
    assert!(collect_stream(g.body).await.unwrap() == parts.concat());
}

/// REDUCED_REDUNDANCY writes one parity shard: 3+1 on 4 drives (shards a
/// third of the object, readable with one drive gone, not with two), while
/// STANDARD keeps the set's 2+2.
#[tokio::test]
async fn reduced_redundancy_writes_one_parity_shard() {
    use cairn_api::StorageClass;
    let (_t, p, set, b) = set_with_bucket().await;
    let data = vec![5u8; 6 << 20];
    for (key, class) in [
        ("rr", StorageClass::ReducedRedundancy),
        ("std", StorageClass::Standard),
    ] {
        let mut opts = PutOptions::default();
        opts.metadata.storage_class = class;
        set.put_object(
            &b,
            &ObjectKey::new(key).unwrap(),
            bytes_stream(data.clone()),
            opts,
        )
        .await
        .unwrap();
    }
    let shard_len = |key: &str| {
        let dir = named(&p[0].join("bkt").join(key), "cairn.data.")
            .pop()
            .unwrap();
        std::fs::metadata(dir.join("part.1")).unwrap().len()
    };
    let (rr, std) = (shard_len("rr"), shard_len("std"));
    // shard data plus a 32-byte hash per 1 MiB block (of the shard's slice)
    assert!(
        (2 << 20..(2 << 20) + 4096).contains(&rr),
        "3+1 shard of 6 MiB: {rr}"
    );
    assert!(
        (3 << 20..(3 << 20) + 4096).contains(&std),
        "2+2 shard of 6 MiB: {std}"
    );
    let info = set
        .head_object(&b, &ObjectKey::new("rr").unwrap(), &Default::default())
        .await
        .unwrap();
    assert_eq!(info.storage_class, StorageClass::ReducedRedundancy);
    std::fs::remove_dir_all(&p[3]).unwrap();
    assert!(
        reads_back(&set, &b, "rr", &data).await,
        "3+1 reads with one drive gone"
    );
    std::fs::remove_dir_all(&p[2]).unwrap();
    assert!(
        !reads_back(&set, &b, "rr", &data).await,
        "3+1 cannot read with two drives gone"
    );
    assert!(
        reads_back(&set, &b, "std", &data).await,
        "2+2 still reads with two drives gone"
    );
}

/// Whether `key` reads back as `data` (false on any error).
async fn reads_back(set: &ErasureSet, b: &BucketName, key: &str, data: &[u8]) -> bool {
    match set
        .get_object(b, &ObjectKey::new(key).unwrap(), GetOptions::default())
        .await
    {
        Ok(g) => collect_stream(g.body).await.is_ok_and(|v| v == data),
        Err(_) => false,
    }
}

/// A drive replaced while the set is open is locked again when the drive
/// monitor takes it in (its lock went with the old folder).
#[tokio::test]
async fn a_replacement_drive_is_locked_when_it_joins() {
    let t = tempfile::tempdir().unwrap();
    let p = paths(t.path(), "d", 4);
    let set = ErasureSet::open(p.clone(), None).unwrap();
    std::fs::remove_dir_all(&p[1]).unwrap();
    std::fs::create_dir(&p[1]).unwrap();
    assert_eq!(set.monitor_drives().await, 1, "empty replacement joins");
    let mut other = paths(t.path(), "e", 3);
    other.insert(1, p[1].clone());
    let err = ErasureSet::open(other, None).err().expect("refused");
    assert!(
        matches!(&err, SetupError::DriveLocked { path, .. } if *path == p[1].display().to_string()),
        "{err}"
    );
}

/// Every path under `root`, sorted (folders and files).
fn tree(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Issue 16: a refused start removes the folders and lock files it made
/// (a new drive, its missing parents, `.cairn.sys` in an existing empty
/// drive) and releases every lock it took; what existed stays as it was.
/// `check_drives` refuses the same starts without making anything.
#[test]
fn a_refused_start_leaves_nothing_it_made() {
    let t = tempfile::tempdir().unwrap();
    let p = paths(t.path(), "d", 4);
    drop(ErasureSet::open(p.clone(), None).unwrap());
    // an existing folder with a file of someone else's in it
    let pre = t.path().join("pre");
    std::fs::create_dir(&pre).unwrap();
    std::fs::write(pre.join("keep.txt"), b"mine").unwrap();
    let new = t.path().join("new").join("deeper").join("d5");
    let before = tree(t.path());

    // added drives (a new one, an existing empty one): refused
    let mut six = p.clone();
    six.push(pre.clone());
    six.push(new.clone());
    let err = ErasureSet::check_drives(&six, None).expect_err("refused");
    assert!(matches!(err, SetupError::AddedDrives { .. }), "{err}");
    assert_eq!(tree(t.path()), before, "check_drives made something");
    let err = ErasureSet::open(six.clone(), None).err().expect("refused");
    assert!(matches!(err, SetupError::AddedDrives { .. }), "{err}");
    assert_eq!(tree(t.path()), before, "a refused open left what it made");

    // a new drive first, then a drive another open holds: refused at the
    // held one, after the new drive was made and locked
    let held = ErasureSet::open(p.clone(), None).unwrap();
    let mut list = vec![new.clone()];
    list.extend_from_slice(&p[..3]);
    let err = ErasureSet::check_drives(&list, None).expect_err("refused");
    assert!(matches!(err, SetupError::DriveLocked { .. }), "{err}");
    let err = ErasureSet::open(list, None).err().expect("refused");
    assert!(matches!(err, SetupError::DriveLocked { .. }), "{err}");
    assert_eq!(tree(t.path()), before, "a refused open left what it made");
    drop(held);

    // a changed parity: refused, and every lock it took is released
    let err = ErasureSet::open(p.clone(), Some(1)).err().expect("refused");
    assert!(matches!(err, SetupError::ParityChanged { .. }), "{err}");
    assert!(ErasureSet::check_drives(&p, Some(1)).is_err());
    assert_eq!(tree(t.path()), before);
    ErasureSet::check_drives(&p, None).unwrap();
    assert_eq!(ErasureSet::open(p, None).unwrap().drive_count(), 4);
    assert_eq!(std::fs::read(pre.join("keep.txt")).unwrap(), b"mine");
}
