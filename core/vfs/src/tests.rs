//! The view over `MemLayer`.

mod ranges;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_api::mem::MemLayer;
use cairn_api::{
    BucketName, GetOptions, ListOptions, ObjectKey, ObjectLayer, PutOptions, bytes_stream,
    collect_stream,
};
use rand::{Rng as _, SeedableRng as _};

use crate::*;

struct T {
    layer: Arc<MemLayer>,
    vfs: Vfs,
    _spool: tempfile::TempDir,
}

async fn setup(f: impl FnOnce(&mut VfsConfig)) -> T {
    let layer = Arc::new(MemLayer::new());
    layer
        .make_bucket(&BucketName::new("bkt").unwrap())
        .await
        .unwrap();
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = VfsConfig::new(spool.path());
    f(&mut cfg);
    let vfs = Vfs::new(layer.clone(), cfg).unwrap();
    T {
        layer,
        vfs,
        _spool: spool,
    }
}

fn b() -> BucketName {
    BucketName::new("bkt").unwrap()
}

async fn object(l: &MemLayer, k: &str) -> Option<(Vec<u8>, cairn_api::ObjectInfo)> {
    let got = l
        .get_object(&b(), &ObjectKey::new(k).unwrap(), GetOptions::default())
        .await
        .ok()?;
    Some((collect_stream(got.body).await.unwrap(), got.info))
}

async fn put(l: &MemLayer, k: &str, data: &[u8]) {
    l.put_object(
        &b(),
        &ObjectKey::new(k).unwrap(),
        bytes_stream(data.to_vec()),
        PutOptions::default(),
    )
    .await
    .unwrap();
}

async fn bkt_ino(t: &T) -> u64 {
    t.vfs.lookup(ROOT_INO, "bkt").await.unwrap().ino
}

async fn write_file(t: &T, dir: u64, name: &str, data: &[u8]) -> u64 {
    let (a, fh) = t.vfs.create(dir, name, 0o640, 7, 8, false).await.unwrap();
    assert_eq!(t.vfs.write(fh, 0, data).await.unwrap() as usize, data.len());
    t.vfs.flush(fh).await.unwrap();
    t.vfs.release(fh).await.unwrap();
    a.ino
}

async fn read_all(t: &T, ino: u64) -> Vec<u8> {
    let fh = t.vfs.open(ino, OpenMode::default()).await.unwrap();
    let mut out = Vec::new();
    loop {
        let chunk = t
            .vfs
            .read(fh, out.len() as u64, 7000)
            .await
            .unwrap()
            .to_vec();
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    t.vfs.release(fh).await.unwrap();
    out
}

async fn names(t: &T, dir: u64) -> Vec<String> {
    let fh = t.vfs.opendir(dir).await.unwrap();
    let mut out = Vec::new();
    let mut off = 0;
    loop {
        let es = t.vfs.readdir(fh, off).await.unwrap();
        let Some(first) = es.first() else { break };
        // take two at a time, like a small kernel buffer
        let _ = first;
        for e in es.iter().take(2) {
            out.push(e.name.clone());
            off = e.next_offset;
        }
    }
    t.vfs.releasedir(fh);
    out
}

#[tokio::test]
async fn create_write_commit_with_s3fs_metadata() {
    let t = setup(|_| {}).await;
    let bi = bkt_ino(&t).await;
    let d = t.vfs.mkdir(bi, "docs", 0o750, 7, 8).await.unwrap();
    let ino = write_file(&t, d.ino, "a.txt", b"hello world").await;
    let (body, info) = object(&t.layer, "docs/a.txt").await.unwrap();
    assert_eq!(body, b"hello world");
    assert_eq!(info.user_metadata["mode"], (0o100640).to_string());
    assert_eq!(info.user_metadata["uid"], "7");
    assert_eq!(info.user_metadata["gid"], "8");
    assert!(info.user_metadata.contains_key("mtime"));
    let (_, marker) = object(&t.layer, "docs/").await.unwrap();
    assert_eq!(marker.user_metadata["mode"], (0o040750).to_string());
    assert_eq!(
        marker.headers.content_type.as_deref(),
        Some("application/x-directory")
    );
    assert_eq!(read_all(&t, ino).await, b"hello world");
    let a = t.vfs.getattr(ino).await.unwrap();
    assert_eq!(
        (a.size, a.perm, a.uid, a.kind),
        (11, 0o640, 7, FileKind::File)
    );
}

#[tokio::test]
async fn s3_objects_appear_as_files_and_dirs() {
    let t = setup(|c| c.list_page = 3).await;
    for k in [
        "x/1",
        "x/2",
        "x/sub/deep",
        "x/3",
        "x/4",
        "x/5",
        "x/dup",
        "x/dup/in",
    ] {
        put(&t.layer, k, k.as_bytes()).await;
    }
    let bi = bkt_ino(&t).await;
    let x = t.vfs.lookup(bi, "x").await.unwrap();
    assert_eq!(x.kind, FileKind::Dir);
    let mut n = names(&t, x.ino).await;
    n.sort();
    assert_eq!(n, [".", "..", "1", "2", "3", "4", "5", "dup", "sub"]);
    let dup = t.vfs.lookup(x.ino, "dup").await.unwrap();
    assert_eq!(
        dup.kind,
        FileKind::Dir,
        "a directory shadows a same-named file"
    );
    let one = t.vfs.lookup(x.ino, "1").await.unwrap();
    assert_eq!(read_all(&t, one.ino).await, b"x/1");
    assert_eq!(
        t.vfs.lookup(x.ino, "nope").await.unwrap_err().errno(),
        libc::ENOENT
    );
    // paging with a page of 1000 too
    let t2 = setup(|_| {}).await;
    for i in 0..2500 {
        put(&t2.layer, &format!("big/f{i:05}"), b"").await;
    }
    let bi2 = bkt_ino(&t2).await;
    let big = t2.vfs.lookup(bi2, "big").await.unwrap();
    let fh = t2.vfs.opendir(big.ino).await.unwrap();
    let mut off = 0;
    let mut count = 0;
    loop {
        let es = t2.vfs.readdir(fh, off).await.unwrap();
        if es.is_empty() {
            break;
        }
        count += es.len();
        off = es.last().unwrap().next_offset;
    }
    assert_eq!(count, 2502);
}

#[tokio::test]
async fn errors_map_to_errno() {
    let t = setup(|_| {}).await;
    let bi = bkt_ino(&t).await;
    let d = t.vfs.mkdir(bi, "d", 0o755, 0, 0).await.unwrap();
    assert_eq!(
        t.vfs.mkdir(bi, "d", 0o755, 0, 0).await.unwrap_err().errno(),
        libc::EEXIST
    );
    write_file(&t, d.ino, "f", b"x").await;
    assert_eq!(
        t.vfs.rmdir(bi, "d").await.unwrap_err().errno(),
        libc::ENOTEMPTY
    );
    assert_eq!(
        t.vfs.unlink(bi, "d").await.unwrap_err().errno(),
        libc::EISDIR
    );
    assert_eq!(
        t.vfs.rmdir(d.ino, "f").await.unwrap_err().errno(),
        libc::ENOTDIR
    );
    assert_eq!(
        t.vfs
            .lookup(bi, &"n".repeat(256))
            .await
            .unwrap_err()
            .errno(),
        libc::ENAMETOOLONG
    );
    assert_eq!(
        t.vfs
            .create(d.ino, "f", 0o644, 0, 0, true)
            .await
            .unwrap_err()
            .errno(),
        libc::EEXIST
    );
    t.vfs.unlink(d.ino, "f").await.unwrap();
    assert!(object(&t.layer, "d/f").await.is_none());
    t.vfs.rmdir(bi, "d").await.unwrap();
    assert!(object(&t.layer, "d/").await.is_none());
    assert_eq!(
        t.vfs.lookup(bi, "d").await.unwrap_err().errno(),
        libc::ENOENT
    );
    // buckets as top directories
    t.vfs.mkdir(ROOT_INO, "newbkt", 0o755, 0, 0).await.unwrap();
    t.layer
        .head_bucket(&BucketName::new("newbkt").unwrap())
        .await
        .unwrap();
    t.vfs.rmdir(ROOT_INO, "newbkt").await.unwrap();
}

#[tokio::test]
async fn read_only_refuses_changes() {
    let t = setup(|c| c.read_only = true).await;
    put(&t.layer, "f", b"data").await;
    let bi = bkt_ino(&t).await;
    let f = t.vfs.lookup(bi, "f").await.unwrap();
    assert_eq!(read_all(&t, f.ino).await, b"data");
    let e = |r: VfsError| r.errno();
    assert_eq!(
        e(t.vfs.mkdir(bi, "d", 0o755, 0, 0).await.unwrap_err()),
        libc::EROFS
    );
    assert_eq!(
        e(t.vfs.create(bi, "n", 0o644, 0, 0, false).await.unwrap_err()),
        libc::EROFS
    );
    assert_eq!(e(t.vfs.unlink(bi, "f").await.unwrap_err()), libc::EROFS);
    let w = OpenMode {
        write: true,
        truncate: false,
    };
    assert_eq!(e(t.vfs.open(f.ino, w).await.unwrap_err()), libc::EROFS);
}

#[tokio::test]
async fn setattr_persists_and_truncates() {
    let t = setup(|_| {}).await;
    let bi = bkt_ino(&t).await;
    let ino = write_file(&t, bi, "f", b"0123456789").await;
    let when = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let a = t
        .vfs
        .setattr(
            ino,
            SetAttr {
                perm: Some(0o600),
                uid: Some(1234),
                gid: Some(99),
                mtime: Some(when),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((a.perm, a.uid, a.gid, a.mtime), (0o600, 1234, 99, when));
    let (body, info) = object(&t.layer, "f").await.unwrap();
    assert_eq!(body, b"0123456789");
    assert_eq!(info.user_metadata["mode"], (0o100600).to_string());
    assert_eq!(info.user_metadata["mtime"], "1000000000");
    let a = t
        .vfs
        .setattr(
            ino,
            SetAttr {
                size: Some(4),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(a.size, 4);
    assert_eq!(object(&t.layer, "f").await.unwrap().0, b"0123");
    // a fresh view reads the same attributes back
    let v2 = Vfs::new(t.layer.clone(), VfsConfig::new(t._spool.path())).unwrap();
    let b2 = v2.lookup(ROOT_INO, "bkt").await.unwrap();
    let f2 = v2.lookup(b2.ino, "f").await.unwrap();
    assert_eq!((f2.perm, f2.uid, f2.gid, f2.size), (0o600, 1234, 99, 4));
}

#[tokio::test]
async fn symlinks() {
    let t = setup(|_| {}).await;
    let bi = bkt_ino(&t).await;
    let l = t
        .vfs
        .symlink(bi, "link", "../some/target", 1, 2)
        .await
        .unwrap();
    assert_eq!(l.kind, FileKind::Symlink);
    assert_eq!(t.vfs.readlink(l.ino).await.unwrap(), b"../some/target");
    let (body, info) = object(&t.layer, "link").await.unwrap();
    assert_eq!(body, b"../some/target");
    assert_eq!(info.user_metadata["mode"], (0o120777).to_string());
    let v2 = Vfs::new(t.layer.clone(), VfsConfig::new(t._spool.path())).unwrap();
    let b2 = v2.lookup(ROOT_INO, "bkt").await.unwrap();
    assert_eq!(
        v2.lookup(b2.ino, "link").await.unwrap().kind,
        FileKind::Symlink
    );
}

#[tokio::test]
async fn rename_files_and_directories() {
    let t = setup(|c| c.list_page = 2).await;
    let bi = bkt_ino(&t).await;
    let d = t.vfs.mkdir(bi, "src", 0o755, 0, 0).await.unwrap();
    let sub = t.vfs.mkdir(d.ino, "sub", 0o700, 0, 0).await.unwrap();
    for i in 0..5 {
        write_file(&t, d.ino, &format!("f{i}"), format!("data{i}").as_bytes()).await;
    }
    let deep = write_file(&t, sub.ino, "deep", b"deep").await;
    t.vfs.rename(bi, "src", bi, "dst", false).await.unwrap();
    assert!(object(&t.layer, "src/f1").await.is_none());
    assert!(object(&t.layer, "src/").await.is_none());
    assert_eq!(object(&t.layer, "dst/f1").await.unwrap().0, b"data1");
    assert_eq!(object(&t.layer, "dst/sub/deep").await.unwrap().0, b"deep");
    assert!(object(&t.layer, "dst/").await.is_some());
    // inode numbers follow the rename
    assert_eq!(read_all(&t, deep).await, b"deep");
    let dst = t.vfs.lookup(bi, "dst").await.unwrap();
    assert_eq!(dst.ino, d.ino);
    // files, with and without replacing
    t.vfs.rename(dst.ino, "f0", bi, "top", false).await.unwrap();
    assert_eq!(object(&t.layer, "top").await.unwrap().0, b"data0");
    assert_eq!(
        t.vfs
            .rename(dst.ino, "f1", bi, "top", true)
            .await
            .unwrap_err()
            .errno(),
        libc::EEXIST
    );
    t.vfs.rename(dst.ino, "f1", bi, "top", false).await.unwrap();
    assert_eq!(object(&t.layer, "top").await.unwrap().0, b"data1");
    // a directory onto a file and into itself
    assert_eq!(
        t.vfs
            .rename(bi, "dst", bi, "top", false)
            .await
            .unwrap_err()
            .errno(),
        libc::ENOTDIR
    );
    assert_eq!(
        t.vfs
            .rename(bi, "dst", sub.ino, "x", false)
            .await
            .unwrap_err()
            .errno(),
        libc::EINVAL
    );
}

#[tokio::test]
async fn open_file_is_visible_before_commit_and_renames_with_its_data() {
    let t = setup(|_| {}).await;
    let bi = bkt_ino(&t).await;
    let (a, fh) = t.vfs.create(bi, "new", 0o644, 0, 0, false).await.unwrap();
    t.vfs.write(fh, 0, b"abc").await.unwrap();
    assert_eq!(t.vfs.lookup(bi, "new").await.unwrap().size, 3);
    assert!(names(&t, bi).await.contains(&"new".to_string()));
    assert!(object(&t.layer, "new").await.is_none());
    t.vfs.rename(bi, "new", bi, "renamed", false).await.unwrap();
    t.vfs.write(fh, 3, b"def").await.unwrap();
    t.vfs.release(fh).await.unwrap();
    assert_eq!(object(&t.layer, "renamed").await.unwrap().0, b"abcdef");
    assert!(object(&t.layer, "new").await.is_none());
    assert_eq!(read_all(&t, a.ino).await, b"abcdef");
}

#[tokio::test]
async fn multipart_commit_above_threshold() {
    let t = setup(|c| {
        c.multipart_threshold = 6 << 20;
        c.part_size = 5 << 20;
    })
    .await;
    let bi = bkt_ino(&t).await;
    let data: Vec<u8> = (0..13 << 20).map(|i: u32| (i % 251) as u8).collect();
    let ino = write_file(&t, bi, "big", &data).await;
    let (body, info) = object(&t.layer, "big").await.unwrap();
    assert_eq!(body.len(), data.len());
    assert!(body == data);
    assert_eq!(info.parts_count, Some(3));
    assert_eq!(info.user_metadata["mode"], (0o100640).to_string());
    let back = read_all(&t, ino).await;
    assert!(back == data);
}

#[tokio::test]
async fn spool_limit_is_enospc() {
    let t = setup(|c| c.spool_limit = 1000).await;
    let bi = bkt_ino(&t).await;
    let (_, fh) = t.vfs.create(bi, "f", 0o644, 0, 0, false).await.unwrap();
    t.vfs.write(fh, 0, &[1u8; 900]).await.unwrap();
    assert_eq!(
        t.vfs.write(fh, 900, &[1u8; 200]).await.unwrap_err().errno(),
        libc::ENOSPC
    );
    t.vfs.release(fh).await.unwrap();
    assert_eq!(object(&t.layer, "f").await.unwrap().0.len(), 900);
    assert_eq!(t.vfs.staged_bytes(), 0);
}

/// Random writes, truncates and appends on a few files, with flushes and
/// reopens in between, against a model of the bytes.
#[tokio::test]
async fn random_write_model() {
    let t = setup(|_| {}).await;
    let bi = bkt_ino(&t).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let n_files = 3;
    let mut model: Vec<Vec<u8>> = vec![Vec::new(); n_files];
    let mut inos = Vec::new();
    let mut fhs = Vec::new();
    for i in 0..n_files {
        let (a, fh) = t
            .vfs
            .create(bi, &format!("m{i}"), 0o644, 0, 0, false)
            .await
            .unwrap();
        inos.push(a.ino);
        fhs.push(fh);
    }
    for step in 0..3000 {
        let i = rng.random_range(0..n_files);
        let m = &mut model[i];
        match rng.random_range(0..10) {
            0..=5 => {
                let off = rng.random_range(0..=m.len() + 5000) as u64;
                let len = rng.random_range(1..9000);
                let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                t.vfs.write(fhs[i], off, &data).await.unwrap();
                let end = off as usize + len;
                if m.len() < end {
                    m.resize(end, 0);
                }
                m[off as usize..end].copy_from_slice(&data);
            }
            6 => {
                let size = rng.random_range(0..=m.len() + 3000);
                t.vfs
                    .setattr(
                        inos[i],
                        SetAttr {
                            size: Some(size as u64),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                m.resize(size, 0);
            }
            7 => {
                let data: Vec<u8> = (0..rng.random_range(1..3000))
                    .map(|_| rng.random())
                    .collect();
                let off = t.vfs.getattr(inos[i]).await.unwrap().size;
                t.vfs.write(fhs[i], off, &data).await.unwrap();
                m.extend_from_slice(&data);
            }
            8 => {
                t.vfs.flush(fhs[i]).await.unwrap();
            }
            _ => {
                // close and reopen: the next writes start from the store
                t.vfs.release(fhs[i]).await.unwrap();
                fhs[i] = t
                    .vfs
                    .open(
                        inos[i],
                        OpenMode {
                            write: true,
                            truncate: false,
                        },
                    )
                    .await
                    .unwrap();
            }
        }
        if step % 500 == 0 {
            let got = t.vfs.read(fhs[i], 0, u32::MAX).await.unwrap().to_vec();
            assert!(got == model[i], "file {i} at step {step}");
        }
    }
    for i in 0..n_files {
        t.vfs.release(fhs[i]).await.unwrap();
        let (body, _) = object(&t.layer, &format!("m{i}")).await.unwrap();
        assert_eq!(body.len(), model[i].len(), "file {i}");
        assert!(body == model[i], "file {i}");
        assert!(read_all(&t, inos[i]).await == model[i]);
    }
    assert_eq!(t.vfs.staged_bytes(), 0);
}

#[tokio::test]
async fn one_bucket_root() {
    let t = setup(|c| c.bucket = Some("bkt".into())).await;
    let ino = write_file(&t, ROOT_INO, "at-root", b"r").await;
    assert_eq!(object(&t.layer, "at-root").await.unwrap().0, b"r");
    assert_eq!(read_all(&t, ino).await, b"r");
    let list = t
        .layer
        .list_objects(
            &b(),
            ListOptions {
                max_keys: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(list.objects.len(), 1);
    let _ = SystemTime::now();
}

#[tokio::test]
async fn default_rename_object_moves_data_and_metadata() {
    let t = setup(|_| {}).await;
    let mut opts = PutOptions::default();
    opts.metadata.user.insert("mode".into(), "33188".into());
    let (src, dst) = (ObjectKey::new("a").unwrap(), ObjectKey::new("b").unwrap());
    t.layer
        .put_object(&b(), &src, bytes_stream(b"xyz".to_vec()), opts)
        .await
        .unwrap();
    put(&t.layer, "c", b"other").await;
    let c = ObjectKey::new("c").unwrap();
    assert_eq!(
        t.layer
            .rename_object(&b(), &src, &c, false)
            .await
            .unwrap_err(),
        cairn_api::ObjectError::PreconditionFailed
    );
    let info = t
        .layer
        .rename_object(&b(), &src, &dst, false)
        .await
        .unwrap();
    assert_eq!(info.user_metadata["mode"], "33188");
    assert!(object(&t.layer, "a").await.is_none());
    assert_eq!(object(&t.layer, "b").await.unwrap().0, b"xyz");
}

async fn uploads_in_progress(t: &T) -> usize {
    t.layer
        .list_multipart_uploads(
            &b(),
            cairn_api::ListUploadsOptions {
                max_uploads: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .uploads
        .len()
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn sequential_writes_stream_into_an_upload() {
    let t = setup(|c| {
        c.stream_threshold = 1 << 20;
        c.part_size = 5 << 20;
    })
    .await;
    let bi = bkt_ino(&t).await;
    let data = pattern((12 << 20) + 12345);
    let (a, fh) = t.vfs.create(bi, "seq", 0o600, 7, 8, false).await.unwrap();
    for (i, c) in data.chunks(256 << 10).enumerate() {
        t.vfs.write(fh, (i * (256 << 10)) as u64, c).await.unwrap();
        if i == 20 {
            // streaming: an upload is open, the object is not there yet
            assert_eq!(uploads_in_progress(&t).await, 1);
            assert!(object(&t.layer, "seq").await.is_none());
            // reads of the open file see the written bytes
            assert_eq!(
                t.vfs.read(fh, 1000, 10).await.unwrap().to_vec(),
                data[1000..1010]
            );
        }
    }
    t.vfs.flush(fh).await.unwrap();
    t.vfs.release(fh).await.unwrap();
    let (body, info) = object(&t.layer, "seq").await.unwrap();
    assert!(body == data);
    assert_eq!(info.parts_count, Some(3));
    assert_eq!(info.user_metadata["mode"], (0o100600).to_string());
    assert_eq!(info.user_metadata["uid"], "7");
    assert_eq!(uploads_in_progress(&t).await, 0);
    let a2 = t.vfs.getattr(a.ino).await.unwrap();
    assert_eq!(a2.size, data.len() as u64);
    assert!(read_all(&t, a.ino).await == data);
}

/// A FLUSH in the middle of a file's writes (a forked child closing the
/// inherited descriptor) commits what is there; the appends after it are
/// changes over that version and must not stream as a whole file (the
/// staging then holds only them: the streamed object had zeros where the
/// first commit's bytes were).
#[tokio::test]
async fn appends_after_a_flush_in_the_middle_keep_the_bytes_before_it() {
    let t = setup(|c| {
        c.stream_threshold = 1 << 20;
        c.part_size = 5 << 20;
    })
    .await;
    let bi = bkt_ino(&t).await;
    let data = pattern((6 << 20) + 777);
    let (a, fh) = t.vfs.create(bi, "mid", 0o600, 7, 8, false).await.unwrap();
    for (i, c) in data.chunks(256 << 10).enumerate() {
        t.vfs.write(fh, (i * (256 << 10)) as u64, c).await.unwrap();
        if i == 2 {
            // 768 KiB written, below the streaming threshold
            t.vfs.flush(fh).await.unwrap();
        }
    }
    t.vfs.flush(fh).await.unwrap();
    t.vfs.release(fh).await.unwrap();
    let (body, _) = object(&t.layer, "mid").await.unwrap();
    assert!(
        body == data,
        "the bytes before the mid-write flush were lost"
    );
    assert!(read_all(&t, a.ino).await == data);
}

#[tokio::test]
async fn non_sequential_write_falls_back_to_staging() {
    let t = setup(|c| {
        c.stream_threshold = 1 << 20;
        c.part_size = 5 << 20;
    })
    .await;
    let bi = bkt_ino(&t).await;
    let mut data = pattern(7 << 20);
    let (a, fh) = t.vfs.create(bi, "rnd", 0o644, 0, 0, false).await.unwrap();
    for (i, c) in data.chunks(1 << 20).enumerate() {
        t.vfs.write(fh, (i << 20) as u64, c).await.unwrap();
    }
    // a write in the middle: the upload is cancelled, the staged file wins
    t.vfs.write(fh, 100, b"hello").await.unwrap();
    data[100..105].copy_from_slice(b"hello");
    // and appends after it stay staged
    t.vfs.write(fh, data.len() as u64, b"tail").await.unwrap();
    data.extend_from_slice(b"tail");
    // an explicit mtime while writing is kept
    let when = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    t.vfs
        .setattr(
            a.ino,
            SetAttr {
                mtime: Some(when),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    t.vfs.release(fh).await.unwrap();
    let (body, info) = object(&t.layer, "rnd").await.unwrap();
    assert!(body == data);
    assert_eq!(info.user_metadata["mtime"], "1600000000");
    // the cancelled upload is aborted in the background
    for _ in 0..100 {
        if uploads_in_progress(&t).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(uploads_in_progress(&t).await, 0);
}

#[tokio::test]
async fn attributes_set_while_streaming_are_written() {
    let t = setup(|c| {
        c.stream_threshold = 1 << 20;
        c.part_size = 5 << 20;
    })
    .await;
    let bi = bkt_ino(&t).await;
    let data = pattern(3 << 20);
    let (a, fh) = t.vfs.create(bi, "cp-p", 0o644, 0, 0, false).await.unwrap();
    for (i, c) in data.chunks(1 << 20).enumerate() {
        t.vfs.write(fh, (i << 20) as u64, c).await.unwrap();
    }
    // what cp -p does before close
    let when = UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    t.vfs
        .setattr(
            a.ino,
            SetAttr {
                perm: Some(0o600),
                mtime: Some(when),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    t.vfs.release(fh).await.unwrap();
    let (body, info) = object(&t.layer, "cp-p").await.unwrap();
    assert!(body == data);
    assert_eq!(info.user_metadata["mtime"], "1500000000");
    assert_eq!(info.user_metadata["mode"], (0o100600).to_string());
    let got = t.vfs.getattr(a.ino).await.unwrap();
    assert_eq!(got.mtime, when);
}

#[tokio::test]
async fn a_directory_keeps_the_times_set_after_its_entries_changed() {
    // what tar does: the entries first, then the directory's own mtime
    let t = setup(|_| {}).await;
    let bi = bkt_ino(&t).await;
    let d = t.vfs.mkdir(bi, "d", 0o755, 0, 0).await.unwrap();
    write_file(&t, d.ino, "inner", b"inner").await;
    let when = UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    let set = SetAttr {
        mtime: Some(when),
        ..Default::default()
    };
    t.vfs.setattr(d.ino, set).await.unwrap();
    // the batch of directory times that the entry's creation started
    t.vfs.flush_dir_times(true).await;
    assert_eq!(t.vfs.getattr(d.ino).await.unwrap().mtime, when);
    let (_, info) = object(&t.layer, "d/").await.unwrap();
    assert_eq!(info.user_metadata["mtime"], "1500000000");
    // and a later change to its entries moves it again
    write_file(&t, d.ino, "later", b"later").await;
    t.vfs.flush_dir_times(true).await;
    let (_, info) = object(&t.layer, "d/").await.unwrap();
    assert_ne!(info.user_metadata["mtime"], "1500000000");
}
