use std::collections::BTreeMap;

use cairn_api::{
    BucketName, Conditions, GetOptions, ListOptions, ObjectError, ObjectKey, ObjectLayer,
    ObjectMetadata, PutOptions, bytes_stream, collect_stream,
};

use super::*;

fn b(s: &str) -> BucketName {
    BucketName::new(s).expect("bucket")
}
fn k(s: &str) -> ObjectKey {
    ObjectKey::new(s).expect("key")
}

async fn put(l: &NasLayer, bk: &str, key: &str, data: &[u8]) -> ObjectInfo {
    l.put_object(
        &b(bk),
        &k(key),
        bytes_stream(data.to_vec()),
        PutOptions::default(),
    )
    .await
    .expect("put")
}

async fn get(l: &NasLayer, bk: &str, key: &str) -> Vec<u8> {
    let g = l
        .get_object(&b(bk), &k(key), GetOptions::default())
        .await
        .expect("get");
    collect_stream(g.body).await.expect("body")
}

async fn keys(l: &NasLayer, bk: &str, opts: ListOptions) -> (Vec<String>, Vec<String>) {
    let mut objs = Vec::new();
    let mut cps = Vec::new();
    let mut opts = opts;
    loop {
        let p = l.list_objects(&b(bk), opts.clone()).await.expect("list");
        objs.extend(p.objects.into_iter().map(|o| o.key));
        cps.extend(p.common_prefixes);
        if !p.is_truncated {
            return (objs, cps);
        }
        opts.start_after = p.next_marker;
    }
}

fn layer(force_sidecar: bool) -> (tempfile::TempDir, NasLayer) {
    let d = tempfile::tempdir().expect("tempdir");
    let l = NasLayer::open(d.path(), NasOptions { force_sidecar }).expect("open");
    (d, l)
}

#[tokio::test]
async fn objects_are_plain_files_both_ways() {
    for sidecar in [false, true] {
        let (d, l) = layer(sidecar);
        l.make_bucket(&b("share")).await.expect("mb");
        put(&l, "share", "docs/a.txt", b"hello").await;
        assert_eq!(
            std::fs::read(d.path().join("share/docs/a.txt")).expect("read"),
            b"hello"
        );
        // Written by another program: served at once, ETag is its MD5.
        std::fs::write(d.path().join("share/docs/b.txt"), b"direct").expect("write");
        assert_eq!(get(&l, "share", "docs/b.txt").await, b"direct");
        let h = l
            .head_object(&b("share"), &k("docs/b.txt"), &Conditions::default())
            .await
            .expect("head");
        assert_eq!(
            h.etag,
            hex::encode(<md5::Md5 as md5::Digest>::digest(b"direct"))
        );
        // Changed behind our back (same inode, new size): the cached ETag
        // is not trusted.
        std::fs::write(d.path().join("share/docs/a.txt"), b"changed!").expect("write");
        let h = l
            .head_object(&b("share"), &k("docs/a.txt"), &Conditions::default())
            .await
            .expect("head");
        assert_eq!(
            h.etag,
            hex::encode(<md5::Md5 as md5::Digest>::digest(b"changed!"))
        );
        assert_eq!(h.size, 8);
        // Deleted behind our back: NoSuchKey.
        std::fs::remove_file(d.path().join("share/docs/b.txt")).expect("rm");
        assert!(matches!(
            l.get_object(&b("share"), &k("docs/b.txt"), GetOptions::default())
                .await,
            Err(ObjectError::NoSuchKey { .. })
        ));
        // A bucket made by mkdir is a bucket; the hidden folder is not.
        std::fs::create_dir(d.path().join("made-by-mkdir")).expect("mkdir");
        let names: Vec<String> = l
            .list_buckets()
            .await
            .expect("buckets")
            .into_iter()
            .map(|x| x.name)
            .collect();
        assert_eq!(names, ["made-by-mkdir", "share"]);
    }
}

#[tokio::test]
async fn metadata_survives_in_xattrs() {
    let (d, l) = layer(false);
    l.make_bucket(&b("meta")).await.expect("mb");
    let mut user = BTreeMap::new();
    user.insert("color".to_owned(), "blue".to_owned());
    l.put_object(
        &b("meta"),
        &k("f"),
        bytes_stream(b"x".to_vec()),
        PutOptions {
            metadata: ObjectMetadata {
                user: user.clone(),
                headers: cairn_api::ObjectHeaders {
                    content_type: Some("text/x-test".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .expect("put");
    let raw = xattr::get(d.path().join("meta/f"), meta::XA_META)
        .expect("getxattr")
        .expect("set");
    let rec: HeaderRecord = serde_json::from_slice(&raw).expect("json");
    assert_eq!(rec.user, user);
    assert_eq!(rec.headers.content_type.as_deref(), Some("text/x-test"));
    // Nothing but the bucket and the hidden folder at the top.
    let mut top: Vec<String> = std::fs::read_dir(d.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, [paths::HIDDEN, "meta"]);
}

#[tokio::test]
async fn bad_keys_get_key_conflict() {
    let (d, l) = layer(false);
    l.make_bucket(&b("bad")).await.expect("mb");
    put(&l, "bad", "a", b"file").await;
    for key in ["a/b", "a/b/c", "a/"] {
        let body = if key.ends_with('/') { vec![] } else { vec![1] };
        let r = l
            .put_object(
                &b("bad"),
                &k(key),
                bytes_stream(body),
                PutOptions::default(),
            )
            .await;
        assert!(
            matches!(r, Err(ObjectError::KeyConflict { .. })),
            "{key}: {r:?}"
        );
    }
    put(&l, "bad", "dir/x", b"1").await;
    let r = l
        .put_object(
            &b("bad"),
            &k("dir"),
            bytes_stream(vec![1]),
            PutOptions::default(),
        )
        .await;
    assert!(matches!(r, Err(ObjectError::KeyConflict { .. })), "{r:?}");
    // A refused write leaves no temp file behind.
    assert_eq!(
        std::fs::read_dir(d.path().join(paths::HIDDEN).join("tmp"))
            .expect("ls")
            .count(),
        0
    );
    // `..` and NUL never reach the layer: the boundary refuses them.
    assert!(ObjectKey::new("../etc/passwd").is_err());
    assert!(ObjectKey::new("a\0b").is_err());
}

#[tokio::test]
async fn deep_tree_lists_in_key_order() {
    let (d, l) = layer(false);
    l.make_bucket(&b("deep")).await.expect("mb");
    let root = d.path().join("deep");
    let mut want = Vec::new();
    for a in ["a", "a-", "a0", "b.d", "z"] {
        for c in ["x", "x-y", "x.y", "x0"] {
            let p = root.join(a).join("m").join(c);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, c).expect("write");
            want.push(format!("{a}/m/{c}"));
            let p = root.join(a).join(format!("{c}.txt"));
            std::fs::write(&p, c).expect("write");
            want.push(format!("{a}/{c}.txt"));
        }
    }
    std::fs::write(root.join("a.txt"), b"t").expect("write");
    want.push("a.txt".into());
    want.sort();
    for page in [1usize, 3, 1000] {
        let (got, _) = keys(
            &l,
            "deep",
            ListOptions {
                max_keys: page,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(got, want, "page size {page}");
    }
    let (objs, cps) = keys(
        &l,
        "deep",
        ListOptions {
            delimiter: Some("/".into()),
            max_keys: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(objs, ["a.txt"]);
    assert_eq!(cps, ["a-/", "a/", "a0/", "b.d/", "z/"]);
    let (objs, cps) = keys(
        &l,
        "deep",
        ListOptions {
            prefix: "a0/".into(),
            delimiter: Some("/".into()),
            max_keys: 1000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(objs, ["a0/x-y.txt", "a0/x.txt", "a0/x.y.txt", "a0/x0.txt"]);
    assert_eq!(cps, ["a0/m/"]);
    let (objs, _) = keys(
        &l,
        "deep",
        ListOptions {
            prefix: "a/m/x".into(),
            start_after: Some("a/m/x-y".into()),
            max_keys: 1000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(objs, ["a/m/x.y", "a/m/x0"]);
}

#[tokio::test]
async fn deleting_the_last_key_removes_empty_folders() {
    let (d, l) = layer(false);
    l.make_bucket(&b("prune")).await.expect("mb");
    put(&l, "prune", "p/q/r", b"1").await;
    put(&l, "prune", "keep/", b"").await;
    put(&l, "prune", "keep/s", b"1").await;
    l.delete_object(&b("prune"), &k("p/q/r")).await.expect("rm");
    l.delete_object(&b("prune"), &k("keep/s"))
        .await
        .expect("rm");
    assert!(!d.path().join("prune/p").exists());
    assert!(d.path().join("prune/keep").is_dir(), "marked folder stays");
    let (objs, _) = keys(
        &l,
        "prune",
        ListOptions {
            max_keys: 100,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(objs, ["keep/"]);
}

#[tokio::test]
async fn encryption_is_refused_naming_the_backend() {
    let (_d, l) = layer(false);
    l.make_bucket(&b("sse")).await.expect("mb");
    let r = l
        .put_object(
            &b("sse"),
            &k("x"),
            bytes_stream(vec![1]),
            PutOptions {
                sse: Some(cairn_api::SseRequest::S3),
                ..Default::default()
            },
        )
        .await;
    match r {
        Err(ObjectError::NotImplemented { what }) => assert!(what.contains("NAS gateway")),
        other => panic!("{other:?}"),
    }
    assert!(!l.capabilities().encryption);
}

#[tokio::test]
async fn top_level_files_are_counted_not_buckets() {
    let d = tempfile::tempdir().expect("tempdir");
    #[allow(clippy::disallowed_methods, reason = "test fixture paths")]
    let p = |n: &str| d.path().join(n);
    std::fs::create_dir(p("photos")).expect("bucket");
    std::fs::create_dir(p("Not_A_Bucket")).expect("folder");
    std::fs::create_dir(p("lost+found")).expect("lost+found");
    std::fs::write(p("a.txt"), b"a").expect("file");
    std::fs::write(p("b.txt"), b"b").expect("file");
    std::os::unix::fs::symlink(p("a.txt"), p("link-to-file")).expect("symlink");
    std::os::unix::fs::symlink(p("photos"), p("link-to-dir")).expect("symlink");
    let l = NasLayer::open(d.path(), NasOptions::default()).expect("open");
    let s = top::survey(d.path()).expect("survey");
    assert_eq!((s.files, s.symlinks, s.bad_names, s.other), (2, 1, 1, 0));
    assert_eq!(
        s.examples,
        ["Not_A_Bucket", "a.txt", "b.txt", "link-to-file"]
    );
    let line = s.describe(d.path());
    assert!(
        line.starts_with("skipping 4 top-level entries in ") && line.contains("2 files"),
        "{line}"
    );
    let names: Vec<String> = l
        .list_buckets()
        .await
        .expect("list")
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["link-to-dir", "photos"]);
}

/// A symbolic link on the share never takes a request out of its bucket:
/// not to a file or folder outside the share, not into another bucket.
/// One that stays in its bucket is served.
#[tokio::test]
async fn symlinks_never_lead_out_of_the_bucket() {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret.txt"), b"outside").expect("write");
    let (d, l) = layer(false);
    for bk in ["bkt", "other"] {
        l.make_bucket(&b(bk)).await.expect("bucket");
    }
    put(&l, "other", "theirs.txt", b"other bucket").await;
    put(&l, "bkt", "real.txt", b"mine").await;
    let p = |rel: &str| d.path().join(rel);
    let link = |target: &std::path::Path, at: &str| {
        std::os::unix::fs::symlink(target, p(at)).expect("symlink");
    };
    link(&outside.path().join("secret.txt"), "bkt/file-out");
    link(outside.path(), "bkt/dir-out");
    link(&p("other"), "bkt/to-other");
    link(&p("bkt/real.txt"), "bkt/inside");
    let denied = |r: Result<_, ObjectError>, what: &str| match r {
        Err(ObjectError::AccessDenied { .. }) => {}
        Err(e) => panic!("{what}: {e}"),
        Ok(_) => panic!("{what}: allowed"),
    };
    for key in ["file-out", "dir-out/secret.txt", "to-other/theirs.txt"] {
        denied(
            l.get_object(&b("bkt"), &k(key), GetOptions::default())
                .await
                .map(|_| ()),
            key,
        );
    }
    denied(
        l.put_object(
            &b("bkt"),
            &k("dir-out/new.txt"),
            bytes_stream(b"x".to_vec()),
            PutOptions::default(),
        )
        .await
        .map(|_| ()),
        "put through dir-out",
    );
    assert!(
        !outside.path().join("new.txt").exists(),
        "nothing written outside"
    );
    denied(
        l.put_object(
            &b("bkt"),
            &k("to-other/planted.txt"),
            bytes_stream(b"x".to_vec()),
            PutOptions::default(),
        )
        .await
        .map(|_| ()),
        "put through to-other",
    );
    assert!(
        !p("other/planted.txt").exists(),
        "nothing written into another bucket"
    );
    // a link inside its bucket is an ordinary object
    assert_eq!(get(&l, "bkt", "inside").await, b"mine");
    assert_eq!(get(&l, "other", "theirs.txt").await, b"other bucket");
}
