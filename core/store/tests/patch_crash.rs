#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! A process killed (SIGKILL) while it patches an object leaves the old
//! version or the new one, never a mix, and nothing a heal cannot tidy.
//! The test runs itself as the child that patches (`CAIRN_PATCH_CHILD`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use cairn_api::conformance::pattern;
use cairn_api::{
    BucketName, GetOptions, ObjectKey, ObjectLayer, PatchOptions, PutOptions, bytes_stream,
    collect_stream, patch_stream,
};
use cairn_core::ErasureSet;
use cairn_core::extents::EXTENT_SIZE;

const SIZE: u64 = 6 * EXTENT_SIZE;
const TEST: &str = "a_kill_during_patches_leaves_the_old_or_the_new_version";

fn drives(root: &Path) -> Vec<PathBuf> {
    (0..4).map(|i| root.join(format!("d{i}"))).collect()
}

/// Patch `i`'s changes: scattered writes, one across an extent boundary.
fn changes(i: u64) -> Vec<(u64, Vec<u8>)> {
    let mut offs: Vec<u64> = (0..3)
        .map(|j| (i * 7_919 + j * 1_000_003) * 4096 % (SIZE - 8192))
        .collect();
    offs.push((i % 5 + 1) * EXTENT_SIZE - 100);
    offs.sort_unstable();
    offs.dedup_by(|a, b| *a < *b + 8192);
    offs.into_iter()
        .map(|o| (o, pattern(5000, 1000 + i)))
        .collect()
}

fn model(upto: Option<u64>) -> Vec<u8> {
    let mut m = pattern(SIZE as usize, 1);
    for i in 0..upto.map_or(0, |u| u + 1) {
        for (o, d) in changes(i) {
            m[o as usize..o as usize + d.len()].copy_from_slice(&d);
        }
    }
    m
}

fn log(dir: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))
        .unwrap();
    writeln!(f, "{line}").unwrap();
    f.sync_all().unwrap();
}

/// The child: patches until it is killed.
async fn child(dir: PathBuf) {
    let set = ErasureSet::open(drives(&dir), None).unwrap();
    let b = BucketName::new("crash").unwrap();
    let k = ObjectKey::new("f").unwrap();
    for i in 0.. {
        log(&dir, &format!("begin {i}"));
        set.patch_object(
            &b,
            &k,
            patch_stream(
                changes(i)
                    .into_iter()
                    .map(|(o, d)| (o, Bytes::from(d)))
                    .collect(),
            ),
            PatchOptions {
                size: SIZE,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        log(&dir, &format!("done {i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_patches_leaves_the_old_or_the_new_version() {
    if let Ok(dir) = std::env::var("CAIRN_PATCH_CHILD") {
        child(PathBuf::from(dir)).await;
        return;
    }
    let b = BucketName::new("crash").unwrap();
    let k = ObjectKey::new("f").unwrap();
    let mut kills_mid_patch = 0;
    for round in 0..6u64 {
        let t = tempfile::tempdir().unwrap();
        {
            let set = ErasureSet::open(drives(t.path()), None).unwrap();
            set.make_bucket(&b).await.unwrap();
            set.put_object(&b, &k, bytes_stream(model(None)), PutOptions::default())
                .await
                .unwrap();
        }
        let mut c = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
            .env("CAIRN_PATCH_CHILD", t.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // kill at a different moment each round, once patching has begun
        let start = std::time::Instant::now();
        while !t.path().join("log").exists() && start.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(150 + round * 97)).await;
        c.kill().unwrap();
        c.wait().unwrap();

        let log = std::fs::read_to_string(t.path().join("log")).unwrap();
        let last = |what: &str| {
            log.lines()
                .filter_map(|l| l.strip_prefix(what)?.trim().parse::<u64>().ok())
                .max()
        };
        let (began, done) = (last("begin "), last("done "));
        if began != done {
            kills_mid_patch += 1;
        }
        let set = ErasureSet::open(drives(t.path()), None).unwrap();
        let g = set.get_object(&b, &k, GetOptions::default()).await.unwrap();
        let got = collect_stream(g.body).await.unwrap();
        let old = model(done);
        let new = model(began);
        assert!(
            got == old || got == new,
            "round {round}: the object is neither patch {done:?} nor {began:?}"
        );
        // a heal finds a whole object and removes what the kill left
        let out = set.heal_object(&b, &k, true).await.unwrap();
        assert_eq!(out.bad_blocks, 0, "round {round}: {out:?}");
        // every part file left is one the object's record names (parts
        // may share a file: slices)
        for d in drives(t.path()) {
            let files = count_part_files(&d.join("crash"));
            let named = named_files(&d.join("crash/f/cairn.meta"));
            assert_eq!(files, named, "round {round}: files left behind on {d:?}");
        }
    }
    eprintln!("{kills_mid_patch} of 6 kills landed inside a patch");
}

/// The distinct part files the versions of a drive's record name.
fn named_files(meta: &Path) -> usize {
    let m = cairn_core::meta::ObjectMeta::decode(&std::fs::read(meta).unwrap(), false).unwrap();
    m.versions
        .iter()
        .flat_map(|v| v.parts.iter().filter_map(|p| v.part_file(p)))
        .map(|f| (f.dir.to_owned(), f.number))
        .collect::<std::collections::HashSet<_>>()
        .len()
}

fn count_part_files(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().starts_with("part.") {
                n += 1;
            }
        }
    }
    n
}
