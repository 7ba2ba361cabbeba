//! The conformance suite: behaviour every `ObjectLayer` must show. A store
//! runs it with `cairn_api::conformance::run_all(&layer).await`; each check
//! uses its own bucket, so one layer instance serves the whole run.

use std::collections::BTreeMap;

use crate::checksum::{ChecksumAlgorithm, ChecksumRequest};
use crate::error::ObjectError;
use crate::layer::{ObjectLayer, collect_stream};
use crate::names::{BucketName, ObjectKey};
use crate::types::*;

mod copy_conditions;
pub use copy_conditions::copy_conditions;

fn b(name: &str) -> BucketName {
    BucketName::new(name).expect("valid bucket name in suite")
}
fn k(name: &str) -> ObjectKey {
    ObjectKey::new(name).expect("valid key in suite")
}

/// Deterministic pseudo-random bytes (no RNG dependency, reproducible).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Uploads `parts` as parts 1..=N of upload `id`, each with `opts`, and
/// returns the list CompleteMultipartUpload takes.
pub async fn upload_parts(
    l: &dyn ObjectLayer,
    bucket: &BucketName,
    key: &ObjectKey,
    id: &str,
    parts: &[Vec<u8>],
    opts: &PartOptions,
) -> crate::error::ObjectResult<Vec<CompletePart>> {
    let mut done = Vec::with_capacity(parts.len());
    for (i, data) in parts.iter().enumerate() {
        let info = l
            .upload_part(
                bucket,
                key,
                id,
                i as u32 + 1,
                bytes_stream(data.clone()),
                opts.clone(),
            )
            .await?;
        done.push(CompletePart {
            part_number: info.part_number,
            etag: info.etag,
        });
    }
    Ok(done)
}

async fn put(l: &dyn ObjectLayer, bucket: &str, key: &str, data: &[u8]) -> ObjectInfo {
    l.put_object(
        &b(bucket),
        &k(key),
        bytes_stream(data.to_vec()),
        PutOptions::default(),
    )
    .await
    .expect("put")
}

async fn get(l: &dyn ObjectLayer, bucket: &str, key: &str, range: Option<ByteRange>) -> Vec<u8> {
    let g = l
        .get_object(
            &b(bucket),
            &k(key),
            GetOptions {
                range,
                ..Default::default()
            },
        )
        .await
        .expect("get");
    collect_stream(g.body).await.expect("read body")
}

/// Makes a check's bucket. Declared gap: a backend that cannot create
/// buckets serves ones made beforehand (it answers BucketAlreadyExists).
async fn make(l: &dyn ObjectLayer, name: &str) {
    match l.make_bucket(&b(name)).await {
        Ok(()) => {}
        Err(ObjectError::BucketAlreadyExists { .. }) if !l.capabilities().manages_buckets => {}
        Err(e) => panic!("make bucket {name}: {e:?}"),
    }
}

/// The buckets the suite uses, for backends that cannot create them: the
/// caller makes these on the backend before `run_all`.
pub const BUCKETS: &[&str] = &[
    "conf-buckets",
    "conf-objects",
    "conf-ranges",
    "conf-meta",
    "conf-digests",
    "conf-list",
    "conf-multipart",
    "conf-rename",
    "conf-patch",
    "conf-cond",
    "conf-retry",
    "conf-parts",
    "conf-sums",
    "conf-copycond",
];

pub async fn run_all(l: &dyn ObjectLayer) {
    buckets(l).await;
    objects_round_trip(l).await;
    ranges_and_conditions(l).await;
    metadata_and_copy(l).await;
    digests(l).await;
    listing(l).await;
    multipart(l).await;
    rename(l).await;
    patch(l).await;
    conditional_writes(l).await;
    retried_complete(l).await;
    part_reads(l).await;
    multipart_checksums(l).await;
    copy_conditions(l).await;
}

/// Checksums of multipart uploads (COMPOSITE and FULL_OBJECT), the
/// complete's checks of what the client lists, and the object's part list
/// (`object_parts`, GetObjectAttributes) where the layer keeps one.
pub async fn multipart_checksums(l: &dyn ObjectLayer) {
    use crate::checksum::{Checksum, ChecksumHasher};
    use crate::conditional::CompleteOptions;
    use crate::mpchecksum::CompleteChecksums;
    let bk = "conf-sums";
    make(l, bk).await;
    let sum = |a: ChecksumAlgorithm, d: &[u8]| {
        let mut h = ChecksumHasher::new(a);
        h.update(d);
        Checksum {
            algorithm: a,
            value: h.finish_base64(),
        }
    };
    let ask = |a: ChecksumAlgorithm, full_object: bool| ChecksumRequest {
        algorithm: a,
        expected: None,
        trailer: None,
        full_object,
    };
    let datas = vec![pattern(MIN_PART_SIZE as usize, 60), pattern(100, 61)];
    let whole = datas.concat();

    // a single PUT: one piece, no part list
    let plain = l
        .put_object(
            &b(bk),
            &k("plain"),
            bytes_stream(whole.clone()),
            PutOptions {
                checksum: Some(ask(ChecksumAlgorithm::Crc32, false)),
                ..Default::default()
            },
        )
        .await
        .expect("put with a checksum");
    let (info, parts) = l
        .object_parts(&b(bk), &k("plain"), &GetOptions::default())
        .await
        .expect("parts of a plain object");
    assert_eq!((info.etag, parts), (plain.etag, None));

    for (alg, full) in [
        (ChecksumAlgorithm::Sha256, false),
        (ChecksumAlgorithm::Crc32c, true),
    ] {
        let key = k(if full { "full" } else { "composite" });
        let id = l
            .create_multipart_upload(
                &b(bk),
                &key,
                PutOptions {
                    checksum: Some(ask(alg, full)),
                    ..Default::default()
                },
            )
            .await
            .expect("create with a checksum");
        // a part of another algorithm is refused; one without gets the
        // upload's
        let other = PartOptions {
            checksum: Some(ask(ChecksumAlgorithm::Sha1, false)),
            ..Default::default()
        };
        assert!(matches!(
            l.upload_part(&b(bk), &key, &id, 1, bytes_stream(datas[0].clone()), other)
                .await,
            Err(ObjectError::InvalidRequest { .. })
        ));
        let done = upload_parts(l, &b(bk), &key, &id, &datas, &PartOptions::default())
            .await
            .expect("parts");
        let listed = l
            .list_parts(&b(bk), &key, &id, None, 100)
            .await
            .expect("list parts");
        let part_sums: Vec<Checksum> = datas.iter().map(|d| sum(alg, d)).collect();
        let got: Vec<Option<Checksum>> = listed.parts.iter().map(|p| p.checksum.clone()).collect();
        assert_eq!(got, part_sums.iter().cloned().map(Some).collect::<Vec<_>>());
        let opts = |parts: &[Checksum]| CompleteOptions {
            checksums: CompleteChecksums {
                parts: parts
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (i as u32 + 1, c.clone()))
                    .collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        let wrong = [part_sums[0].clone(), sum(alg, b"not part 2")];
        assert!(matches!(
            l.complete_multipart_upload_with(&b(bk), &key, &id, done.clone(), opts(&wrong))
                .await,
            Err(ObjectError::InvalidPart { part_number: 2 })
        ));
        if !full {
            assert!(matches!(
                l.complete_multipart_upload_with(
                    &b(bk),
                    &key,
                    &id,
                    done.clone(),
                    opts(&part_sums[..1])
                )
                .await,
                Err(ObjectError::InvalidRequest { .. })
            ));
        }
        let info = l
            .complete_multipart_upload_with(&b(bk), &key, &id, done, opts(&part_sums))
            .await
            .expect("complete with the parts' checksums");
        let want = if full {
            sum(alg, &whole)
        } else {
            let mut h = ChecksumHasher::new(alg);
            for p in &datas {
                let mut x = ChecksumHasher::new(alg);
                x.update(p);
                h.update(&x.finish_raw());
            }
            Checksum {
                algorithm: alg,
                value: format!("{}-2", h.finish_base64()),
            }
        };
        assert_eq!(info.checksum.as_ref(), Some(&want), "{key}");
        let r = l.object_parts(&b(bk), &key, &GetOptions::default()).await;
        if !l.capabilities().part_reads {
            assert!(
                matches!(r, Err(ObjectError::NotImplemented { .. }) | Ok((_, None))),
                "{r:?}"
            );
            continue;
        }
        let (info, parts) = r.expect("object parts");
        assert_eq!(info.checksum.as_ref(), Some(&want));
        let parts = parts.expect("a multipart object's parts");
        let got: Vec<(u32, u64, Option<Checksum>)> = parts
            .into_iter()
            .map(|p| (p.part_number, p.size, p.checksum))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, datas[0].len() as u64, Some(part_sums[0].clone())),
                (2, 100, Some(part_sums[1].clone())),
            ]
        );
    }
}

/// `patch_object` against a model: the bytes as pwrite/ftruncate would
/// leave them, a stale base refused with nothing changed.
pub async fn patch(l: &dyn ObjectLayer) {
    use crate::patch::{PatchBase, PatchOptions, patch_stream};
    let bk = "conf-patch";
    make(l, bk).await;
    let base = pattern((3 << 20) + 4321, 11);
    let first = put(l, bk, "f", &base).await;
    let mut model = base.clone();
    let mut etag = first.etag.clone();
    // (changes, new size): in place, across the old end, truncate, extend
    type Step = (Vec<(u64, Vec<u8>)>, u64);
    let steps: Vec<Step> = vec![
        (
            vec![(0, pattern(10, 1)), (1 << 20, pattern(4096, 2))],
            model.len() as u64,
        ),
        (vec![((3 << 20) + 4000, pattern(1000, 3))], (3 << 20) + 5000),
        (vec![], 100_000),
        (vec![(200_000, pattern(7, 4))], 300_000),
        (vec![(5, pattern(3, 5))], 0x50_0000),
    ];
    for (i, (changes, size)) in steps.into_iter().enumerate() {
        model.resize(size as usize, 0);
        for (off, data) in &changes {
            model[*off as usize..*off as usize + data.len()].copy_from_slice(data);
        }
        let changes = changes
            .into_iter()
            .map(|(o, d)| (o, bytes::Bytes::from(d)))
            .collect();
        let info = l
            .patch_object(
                &b(bk),
                &k("f"),
                patch_stream(changes),
                PatchOptions {
                    base: Some(PatchBase {
                        version_id: None,
                        etag: etag.clone(),
                    }),
                    size,
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("patch step {i}: {e:?}"));
        assert_eq!(info.size, size, "step {i}");
        assert_ne!(info.etag, etag, "step {i}: a new version has a new ETag");
        etag = info.etag.clone();
        assert!(
            get(l, bk, "f", None).await == model,
            "patch step {i}: bytes differ"
        );
        let head = l
            .head_object(&b(bk), &k("f"), &Conditions::default())
            .await
            .expect("head");
        assert_eq!((head.size, &head.etag), (size, &info.etag), "step {i}");
        let tail = get(
            l,
            bk,
            "f",
            Some(ByteRange::FromTo {
                first: size - 3,
                last: None,
            }),
        )
        .await;
        assert_eq!(tail, model[model.len() - 3..], "step {i}: a range read");
    }
    // a base that is no longer current: refused, nothing changes
    let stale = l
        .patch_object(
            &b(bk),
            &k("f"),
            patch_stream(vec![(0, bytes::Bytes::from_static(b"x"))]),
            PatchOptions {
                base: Some(PatchBase {
                    version_id: None,
                    etag: first.etag.clone(),
                }),
                size: 1,
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(stale, Err(ObjectError::PreconditionFailed)),
        "{stale:?}"
    );
    assert!(
        get(l, bk, "f", None).await == model,
        "a refused patch changed the object"
    );
    // changes out of order are refused
    let bad = l
        .patch_object(
            &b(bk),
            &k("f"),
            patch_stream(vec![
                (10, bytes::Bytes::from_static(b"ab")),
                (0, bytes::Bytes::from_static(b"c")),
            ]),
            PatchOptions {
                size: model.len() as u64,
                ..Default::default()
            },
        )
        .await;
    assert!(bad.is_err(), "{bad:?}");
    assert!(
        get(l, bk, "f", None).await == model,
        "a refused patch changed the object"
    );
    // no base: the key is made
    let made = l
        .patch_object(
            &b(bk),
            &k("new"),
            patch_stream(vec![(3, bytes::Bytes::from_static(b"abc"))]),
            PatchOptions {
                size: 8,
                ..Default::default()
            },
        )
        .await
        .expect("patch of a new key");
    assert_eq!(made.size, 8);
    assert_eq!(get(l, bk, "new", None).await, b"\0\0\0abc\0\0");
}

pub async fn rename(l: &dyn ObjectLayer) {
    let bk = "conf-rename";
    make(l, bk).await;
    let data = pattern(300_000, 11);
    let mut user = BTreeMap::new();
    user.insert("mode".to_owned(), "33188".to_owned());
    let src_info = l
        .put_object(
            &b(bk),
            &k("a/src"),
            bytes_stream(data.clone()),
            PutOptions {
                metadata: ObjectMetadata {
                    user: user.clone(),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("put");
    put(l, bk, "a/small", b"tiny").await;
    let moved = l
        .rename_object(&b(bk), &k("a/src"), &k("b/dst"), false)
        .await
        .expect("rename");
    assert_eq!(moved.key, "b/dst");
    if l.capabilities().md5_etags {
        assert_eq!(moved.etag, src_info.etag);
    }
    assert_eq!(get(l, bk, "b/dst", None).await, data);
    let head = l
        .head_object(&b(bk), &k("b/dst"), &Conditions::default())
        .await
        .expect("head");
    assert_eq!(head.user_metadata, user);
    assert!(matches!(
        l.head_object(&b(bk), &k("a/src"), &Conditions::default())
            .await,
        Err(ObjectError::NoSuchKey { .. })
    ));
    // No replace: an existing target is refused and both stay.
    assert!(matches!(
        l.rename_object(&b(bk), &k("a/small"), &k("b/dst"), false)
            .await,
        Err(ObjectError::PreconditionFailed)
    ));
    assert_eq!(get(l, bk, "b/dst", None).await, data);
    l.rename_object(&b(bk), &k("a/small"), &k("b/dst"), true)
        .await
        .expect("rename over");
    assert_eq!(get(l, bk, "b/dst", None).await, b"tiny");
    assert!(matches!(
        l.rename_object(&b(bk), &k("missing"), &k("x"), true).await,
        Err(ObjectError::NoSuchKey { .. })
    ));
    let keys: Vec<String> = l
        .list_objects(
            &b(bk),
            ListOptions {
                max_keys: 100,
                ..Default::default()
            },
        )
        .await
        .expect("list")
        .objects
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["b/dst"]);
}

pub async fn buckets(l: &dyn ObjectLayer) {
    let bk = b("conf-buckets");
    if !l.capabilities().manages_buckets {
        // Declared gap: only an existing bucket is served and used.
        make(l, "conf-buckets").await;
        assert!(l.head_bucket(&bk).await.is_ok());
        assert!(
            l.list_buckets()
                .await
                .expect("list")
                .iter()
                .any(|x| x.name == "conf-buckets")
        );
        put(l, "conf-buckets", "x", b"1").await;
        l.delete_object(&bk, &k("x")).await.expect("delete");
        return;
    }
    l.make_bucket(&bk).await.expect("make");
    assert!(matches!(
        l.make_bucket(&bk).await,
        Err(ObjectError::BucketAlreadyExists { .. })
    ));
    assert_eq!(l.head_bucket(&bk).await.expect("head").name, "conf-buckets");
    assert!(
        l.list_buckets()
            .await
            .expect("list")
            .iter()
            .any(|x| x.name == "conf-buckets")
    );
    put(l, "conf-buckets", "x", b"1").await;
    assert!(matches!(
        l.delete_bucket(&bk).await,
        Err(ObjectError::BucketNotEmpty { .. })
    ));
    l.delete_object(&bk, &k("x")).await.expect("delete");
    l.delete_bucket(&bk).await.expect("delete bucket");
    assert!(matches!(
        l.head_bucket(&bk).await,
        Err(ObjectError::NoSuchBucket { .. })
    ));
    assert!(matches!(
        l.put_object(&bk, &k("y"), bytes_stream(vec![1]), PutOptions::default())
            .await,
        Err(ObjectError::NoSuchBucket { .. })
    ));
}

pub async fn objects_round_trip(l: &dyn ObjectLayer) {
    let bk = "conf-objects";
    make(l, bk).await;
    for (i, size) in [
        0usize,
        1,
        1000,
        128 * 1024,
        128 * 1024 + 1,
        1 << 20,
        (3 << 20) + 7,
    ]
    .into_iter()
    .enumerate()
    {
        let data = pattern(size, i as u64);
        let key = format!("dir/obj-{size}");
        let info = put(l, bk, &key, &data).await;
        assert_eq!(info.size, size as u64);
        if l.capabilities().md5_etags {
            assert_eq!(
                info.etag,
                hex::encode(<md5::Md5 as md5::Digest>::digest(&data))
            );
        }
        assert_eq!(get(l, bk, &key, None).await, data, "size {size}");
        let head = l
            .head_object(&b(bk), &k(&key), &Conditions::default())
            .await
            .expect("head");
        assert_eq!(head.size, size as u64);
        assert_eq!(head.etag, info.etag);
    }
    // Overwrite replaces.
    put(l, bk, "over", &pattern(300_000, 1)).await;
    put(l, bk, "over", b"short").await;
    assert_eq!(get(l, bk, "over", None).await, b"short");
    // Delete, and delete of a missing key succeeds.
    l.delete_object(&b(bk), &k("over")).await.expect("delete");
    l.delete_object(&b(bk), &k("over"))
        .await
        .expect("delete again");
    assert!(matches!(
        l.get_object(&b(bk), &k("over"), GetOptions::default())
            .await,
        Err(ObjectError::NoSuchKey { .. })
    ));
    // A key and keys below it coexist; a directory marker is its own object.
    put(l, bk, "a", b"file a").await;
    let folders = l.capabilities().folder_objects;
    if l.capabilities().key_and_prefix_coexist {
        put(l, bk, "a/b", b"file a/b").await;
        if folders {
            put(l, bk, "a/", b"").await;
        } else {
            // Declared gap: no `dir/` objects, refused as such.
            let r = l
                .put_object(
                    &b(bk),
                    &k("a/"),
                    bytes_stream(vec![]),
                    PutOptions::default(),
                )
                .await;
            assert!(
                matches!(r, Err(ObjectError::NotImplemented { .. })),
                "a/: {r:?}"
            );
        }
        assert_eq!(get(l, bk, "a", None).await, b"file a");
    } else {
        // Declared gap: the backend refuses the second key clearly and
        // keeps the first.
        for bad in ["a/b", "a/"] {
            let r = l
                .put_object(&b(bk), &k(bad), bytes_stream(vec![]), PutOptions::default())
                .await;
            assert!(
                matches!(r, Err(ObjectError::KeyConflict { .. })),
                "{bad}: {r:?}"
            );
        }
        assert_eq!(get(l, bk, "a", None).await, b"file a");
        l.delete_object(&b(bk), &k("a")).await.expect("delete a");
        put(l, bk, "a/b", b"file a/b").await;
        put(l, bk, "a/", b"").await;
        let r = l
            .put_object(
                &b(bk),
                &k("a"),
                bytes_stream(vec![1]),
                PutOptions::default(),
            )
            .await;
        assert!(
            matches!(r, Err(ObjectError::KeyConflict { .. })),
            "a: {r:?}"
        );
    }
    assert_eq!(get(l, bk, "a/b", None).await, b"file a/b");
    if folders {
        assert_eq!(get(l, bk, "a/", None).await, b"");
    }
    l.delete_object(&b(bk), &k("a")).await.expect("delete a");
    assert_eq!(get(l, bk, "a/b", None).await, b"file a/b");
    let res = l
        .delete_objects(
            &b(bk),
            ["a/b", "a/", "missing"]
                .map(|k| (k.to_owned(), crate::DeleteOptions::default()))
                .to_vec(),
        )
        .await;
    assert!(res.iter().all(|r| r.result.is_ok()));
    assert!(matches!(
        l.head_object(&b(bk), &k("a/b"), &Conditions::default())
            .await,
        Err(ObjectError::NoSuchKey { .. })
    ));
}

pub async fn ranges_and_conditions(l: &dyn ObjectLayer) {
    let bk = "conf-ranges";
    make(l, bk).await;
    for (size, seed) in [(1000usize, 3u64), (2 * 1024 * 1024 + 333, 4)] {
        let data = pattern(size, seed);
        put(l, bk, "r", &data).await;
        let s = size as u64;
        for (r, want) in [
            (
                ByteRange::FromTo {
                    first: 0,
                    last: Some(0),
                },
                0..1,
            ),
            (
                ByteRange::FromTo {
                    first: 10,
                    last: Some(99),
                },
                10..100,
            ),
            (
                ByteRange::FromTo {
                    first: s - 5,
                    last: None,
                },
                size - 5..size,
            ),
            (
                ByteRange::FromTo {
                    first: 7,
                    last: Some(s * 2),
                },
                7..size,
            ),
            (ByteRange::Suffix { len: 17 }, size - 17..size),
            (
                ByteRange::FromTo {
                    first: 1_048_570,
                    last: Some(1_048_600),
                },
                1_048_570.min(size)..1_048_601.min(size),
            ),
        ] {
            if want.is_empty() {
                continue;
            }
            assert_eq!(get(l, bk, "r", Some(r)).await, &data[want], "{r:?}");
        }
        assert!(matches!(
            l.get_object(
                &b(bk),
                &k("r"),
                GetOptions {
                    range: Some(ByteRange::FromTo {
                        first: s,
                        last: None
                    }),
                    ..Default::default()
                }
            )
            .await,
            Err(ObjectError::InvalidRange { .. })
        ));
    }
    let info = put(l, bk, "c", b"conditional").await;
    let get_with = |c: Conditions| async move {
        l.get_object(
            &b(bk),
            &k("c"),
            GetOptions {
                conditions: c,
                ..Default::default()
            },
        )
        .await
        .map(|g| g.info.etag)
    };
    assert!(
        get_with(Conditions {
            if_match: Some(format!("\"{}\"", info.etag)),
            ..Default::default()
        })
        .await
        .is_ok()
    );
    assert!(matches!(
        get_with(Conditions {
            if_match: Some("\"nope\"".into()),
            ..Default::default()
        })
        .await,
        Err(ObjectError::PreconditionFailed)
    ));
    assert!(matches!(
        get_with(Conditions {
            if_none_match: Some(info.etag.clone()),
            ..Default::default()
        })
        .await,
        Err(ObjectError::NotModified { .. })
    ));
    let later = info.last_modified + time::Duration::hours(1);
    let earlier = info.last_modified - time::Duration::hours(1);
    assert!(matches!(
        get_with(Conditions {
            if_modified_since: Some(later),
            ..Default::default()
        })
        .await,
        Err(ObjectError::NotModified { .. })
    ));
    assert!(
        get_with(Conditions {
            if_modified_since: Some(earlier),
            ..Default::default()
        })
        .await
        .is_ok()
    );
    assert!(matches!(
        get_with(Conditions {
            if_unmodified_since: Some(earlier),
            ..Default::default()
        })
        .await,
        Err(ObjectError::PreconditionFailed)
    ));
}

pub async fn metadata_and_copy(l: &dyn ObjectLayer) {
    let bk = "conf-meta";
    make(l, bk).await;
    let mut user = BTreeMap::new();
    user.insert("color".to_owned(), "blue".to_owned());
    let meta = ObjectMetadata {
        headers: ObjectHeaders {
            content_type: Some("text/plain".into()),
            cache_control: Some("max-age=60".into()),
            content_disposition: Some("attachment".into()),
            ..Default::default()
        },
        user,
        storage_class: StorageClass::ReducedRedundancy,
    };
    let data = pattern(200_000, 9);
    l.put_object(
        &b(bk),
        &k("src"),
        bytes_stream(data.clone()),
        PutOptions {
            metadata: meta.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("put");
    let head = l
        .head_object(&b(bk), &k("src"), &Conditions::default())
        .await
        .expect("head");
    // Declared gap: a backend that cannot report the storage class shows
    // the default one.
    let meta_seen = |m: &ObjectMetadata| {
        let mut m = m.clone();
        if !l.capabilities().reports_storage_class {
            m.storage_class = StorageClass::Standard;
        }
        m
    };
    let meta = meta_seen(&meta);
    assert_eq!(meta_seen(&head.metadata()), meta);

    let copied = l
        .copy_object(
            &b(bk),
            &k("src"),
            &b(bk),
            &k("copy"),
            CopyOptions::default(),
        )
        .await
        .expect("copy");
    assert_eq!(meta_seen(&copied.metadata()), meta);
    assert_eq!(get(l, bk, "copy", None).await, data);

    let mut replaced = ObjectMetadata::default();
    replaced.user.insert("shape".into(), "round".into());
    let c2 = l
        .copy_object(
            &b(bk),
            &k("src"),
            &b(bk),
            &k("src"),
            CopyOptions {
                metadata: MetadataDirective::Replace(replaced.clone()),
                ..Default::default()
            },
        )
        .await
        .expect("copy onto itself");
    assert_eq!(c2.user_metadata, replaced.user);
    assert_eq!(get(l, bk, "src", None).await, data);
    assert!(matches!(
        l.copy_object(
            &b(bk),
            &k("src"),
            &b(bk),
            &k("x"),
            CopyOptions {
                source_conditions: Conditions {
                    if_none_match: Some("*".into()),
                    ..Default::default()
                },
                ..Default::default()
            }
        )
        .await,
        Err(ObjectError::PreconditionFailed)
    ));
    assert!(matches!(
        l.copy_object(
            &b(bk),
            &k("missing"),
            &b(bk),
            &k("x"),
            CopyOptions::default()
        )
        .await,
        Err(ObjectError::NoSuchKey { .. })
    ));
}

pub async fn digests(l: &dyn ObjectLayer) {
    let bk = "conf-digests";
    make(l, bk).await;
    put(l, bk, "keep", b"original").await;
    let md5 = <md5::Md5 as md5::Digest>::digest(b"payload");
    let ok = l
        .put_object(
            &b(bk),
            &k("keep"),
            bytes_stream(b"payload".to_vec()),
            PutOptions {
                content_md5: Some(md5.into()),
                checksum: Some(ChecksumRequest {
                    algorithm: ChecksumAlgorithm::Crc32c,
                    expected: None,
                    trailer: None,
                    full_object: false,
                }),
                ..Default::default()
            },
        )
        .await
        .expect("put with md5");
    assert_eq!(
        ok.checksum.expect("checksum stored").algorithm,
        ChecksumAlgorithm::Crc32c
    );
    for opts in [
        PutOptions {
            content_md5: Some([0; 16]),
            ..Default::default()
        },
        PutOptions {
            checksum: Some(ChecksumRequest {
                algorithm: ChecksumAlgorithm::Sha256,
                expected: Some("AAAA".into()),
                trailer: None,
                full_object: false,
            }),
            ..Default::default()
        },
        PutOptions {
            checksum: Some(ChecksumRequest {
                algorithm: ChecksumAlgorithm::Crc32,
                expected: None,
                trailer: Some(std::sync::Arc::new(|| Some("AAAAAA==".to_owned()))),
                full_object: false,
            }),
            ..Default::default()
        },
        PutOptions {
            content_length: Some(1000),
            ..Default::default()
        },
    ] {
        let r = l
            .put_object(&b(bk), &k("keep"), bytes_stream(pattern(300_000, 5)), opts)
            .await;
        assert!(
            matches!(
                r,
                Err(ObjectError::BadDigest { .. }
                    | ObjectError::ChecksumMismatch { .. }
                    | ObjectError::IncompleteBody { .. })
            ),
            "{r:?}"
        );
        assert_eq!(
            get(l, bk, "keep", None).await,
            b"payload",
            "unchanged after refusal"
        );
    }
}

pub async fn listing(l: &dyn ObjectLayer) {
    let bk = "conf-list";
    make(l, bk).await;
    let coexist = l.capabilities().key_and_prefix_coexist;
    let mut keys: Vec<String> = vec![
        "a".to_string(),
        "a/b".into(),
        "a/b.txt".into(),
        "a/b/c".into(),
        "a-".into(),
        "a0".into(),
        "dir/".into(),
        "dir/x".into(),
        "z é/ü".into(),
    ];
    for i in 0..120 {
        keys.push(format!("many/{i:04}"));
    }
    if !coexist {
        // Declared gap: `a` and `a/b` cannot both be files (nor `a/b` and
        // `a/b/c`).
        keys.retain(|k| k != "a" && k != "a/b");
    }
    let folders = l.capabilities().folder_objects;
    if !folders {
        // Declared gap: no `dir/` objects.
        keys.retain(|k| !k.ends_with('/'));
    }
    let folder_data = l.capabilities().folder_objects_with_data;
    for key in &keys {
        // Declared gap: a folder object that cannot hold bytes gets none.
        let body = if key.ends_with('/') && !folder_data {
            &b""[..]
        } else {
            key.as_bytes()
        };
        put(l, bk, key, body).await;
    }
    keys.sort();
    // Full listing in pages of 7, byte order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = l
            .list_objects(
                &b(bk),
                ListOptions {
                    start_after: after.clone(),
                    max_keys: 7,
                    ..Default::default()
                },
            )
            .await
            .expect("list");
        seen.extend(page.objects.iter().map(|o| o.key.clone()));
        if !page.is_truncated {
            break;
        }
        after = page.next_marker;
    }
    assert_eq!(seen, keys);
    let page = l
        .list_objects(
            &b(bk),
            ListOptions {
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    let objs: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
    let want: &[&str] = if coexist {
        &["a", "a-", "a0"]
    } else {
        &["a-", "a0"]
    };
    assert_eq!(objs, want);
    assert_eq!(page.common_prefixes, ["a/", "dir/", "many/", "z é/"]);
    let page = l
        .list_objects(
            &b(bk),
            ListOptions {
                prefix: "a/".into(),
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    let objs: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
    let want: &[&str] = if coexist {
        &["a/b", "a/b.txt"]
    } else {
        &["a/b.txt"]
    };
    assert_eq!(objs, want);
    assert_eq!(page.common_prefixes, ["a/b/"]);
    let page = l
        .list_objects(
            &b(bk),
            ListOptions {
                prefix: "dir/".into(),
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    let objs: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
    let want: &[&str] = if folders {
        &["dir/", "dir/x"]
    } else {
        &["dir/x"]
    };
    assert_eq!(objs, want);
    assert_eq!(page.objects[want.len() - 1].size, 5);
    assert!(matches!(
        l.list_objects(&b("conf-nobucket"), ListOptions::default())
            .await,
        Err(ObjectError::NoSuchBucket { .. })
    ));
}

pub async fn multipart(l: &dyn ObjectLayer) {
    let bk = "conf-multipart";
    make(l, bk).await;
    let key = k("big");
    let id = l
        .create_multipart_upload(&b(bk), &key, PutOptions::default())
        .await
        .expect("create");
    let p1 = pattern(MIN_PART_SIZE as usize, 1);
    let p2 = pattern(1234, 2);
    let mut infos = Vec::new();
    for (n, data) in [(1u32, &p1), (2, &p2)] {
        infos.push(
            l.upload_part(
                &b(bk),
                &key,
                &id,
                n,
                bytes_stream(data.clone()),
                PartOptions::default(),
            )
            .await
            .expect("upload part"),
        );
    }
    let listed = l
        .list_parts(&b(bk), &key, &id, None, 1000)
        .await
        .expect("list parts");
    assert_eq!(listed.parts.len(), 2);
    assert_eq!(listed.parts[1].size, 1234);
    let uploads = l
        .list_multipart_uploads(&b(bk), ListUploadsOptions::default())
        .await
        .expect("list uploads");
    assert!(uploads.uploads.iter().any(|u| u.upload_id == id));
    let complete: Vec<CompletePart> = infos
        .iter()
        .map(|p| CompletePart {
            part_number: p.part_number,
            etag: format!("\"{}\"", p.etag),
        })
        .collect();
    // Out of order and unknown ETags are refused.
    let mut rev = complete.clone();
    rev.reverse();
    assert!(matches!(
        l.complete_multipart_upload(&b(bk), &key, &id, rev).await,
        Err(ObjectError::InvalidPartOrder)
    ));
    let mut wrong = complete.clone();
    wrong[1].etag = "\"00\"".into();
    assert!(matches!(
        l.complete_multipart_upload(&b(bk), &key, &id, wrong).await,
        Err(ObjectError::InvalidPart { part_number: 2 })
    ));
    let info = l
        .complete_multipart_upload(&b(bk), &key, &id, complete)
        .await
        .expect("complete");
    if l.capabilities().md5_etags {
        assert!(info.etag.ends_with("-2"));
    }
    assert_eq!(info.size, (p1.len() + p2.len()) as u64);
    let mut all = p1.clone();
    all.extend_from_slice(&p2);
    assert_eq!(get(l, bk, "big", None).await, all);
    let off = p1.len() as u64 - 10;
    assert_eq!(
        get(
            l,
            bk,
            "big",
            Some(ByteRange::FromTo {
                first: off,
                last: Some(off + 19)
            })
        )
        .await,
        &all[off as usize..off as usize + 20]
    );
    assert!(matches!(
        l.list_parts(&b(bk), &key, &id, None, 1000).await,
        Err(ObjectError::NoSuchUpload { .. })
    ));

    // A small part in the middle is refused and the old object stays.
    let id2 = l
        .create_multipart_upload(&b(bk), &key, PutOptions::default())
        .await
        .expect("create");
    let mut parts = Vec::new();
    for n in 1..=2u32 {
        let p = l
            .upload_part(
                &b(bk),
                &key,
                &id2,
                n,
                bytes_stream(pattern(100, n.into())),
                PartOptions::default(),
            )
            .await
            .expect("part");
        parts.push(CompletePart {
            part_number: n,
            etag: p.etag,
        });
    }
    assert!(matches!(
        l.complete_multipart_upload(&b(bk), &key, &id2, parts).await,
        Err(ObjectError::EntityTooSmall { part_number: 1, .. })
    ));
    assert_eq!(get(l, bk, "big", None).await.len(), all.len());
    l.abort_multipart_upload(&b(bk), &key, &id2)
        .await
        .expect("abort");
    assert!(matches!(
        l.upload_part(
            &b(bk),
            &key,
            &id2,
            3,
            bytes_stream(vec![1]),
            PartOptions::default()
        )
        .await,
        Err(ObjectError::NoSuchUpload { .. })
    ));

    // Upload part copy from a range of another object.
    let id3 = l
        .create_multipart_upload(&b(bk), &k("copy"), PutOptions::default())
        .await
        .expect("create");
    let part = l
        .upload_part_copy(
            &b(bk),
            &k("copy"),
            &id3,
            1,
            &b(bk),
            &key,
            GetOptions {
                range: Some(ByteRange::FromTo {
                    first: 100,
                    last: Some(199),
                }),
                ..Default::default()
            },
            PartOptions::default(),
        )
        .await
        .expect("part copy");
    assert_eq!(part.size, 100);
    l.complete_multipart_upload(
        &b(bk),
        &k("copy"),
        &id3,
        vec![CompletePart {
            part_number: 1,
            etag: part.etag,
        }],
    )
    .await
    .expect("complete copy");
    assert_eq!(get(l, bk, "copy", None).await, &all[100..200]);
}

fn conditional(p: crate::conditional::WritePrecondition) -> PutOptions {
    PutOptions {
        precondition: Some(p),
        ..Default::default()
    }
}

/// Conditional writes (`If-None-Match: *`, `If-Match`) on PUT and on
/// CompleteMultipartUpload, judged with the commit; a second conditional
/// write of a key while one is in flight is a `ConditionalRequestConflict`.
/// Declared gaps: layers without `conditional_puts` may refuse `If-Match`
/// with NotImplemented, those without `conditional_completes` any
/// conditional complete.
pub async fn conditional_writes(l: &dyn ObjectLayer) {
    use crate::conditional::{CompleteOptions, WritePrecondition as P};
    let bk = "conf-cond";
    make(l, bk).await;
    let caps = l.capabilities();
    let cput = |key: &'static str, data: &'static [u8], p: P| async move {
        l.put_object(&b(bk), &k(key), bytes_stream(data.to_vec()), conditional(p))
            .await
    };
    let first = cput("c", b"one", P::Absent)
        .await
        .expect("create-only put of a new key");
    assert!(matches!(
        cput("c", b"two", P::Absent).await,
        Err(ObjectError::PreconditionFailed)
    ));
    assert_eq!(get(l, bk, "c", None).await, b"one");
    let mut current = first.etag.clone();
    if caps.conditional_puts {
        let second = cput("c", b"two", P::Matches(format!("\"{}\"", first.etag)))
            .await
            .expect("put with the current ETag");
        assert!(matches!(
            cput("c", b"three", P::Matches(format!("\"{}\"", first.etag))).await,
            Err(ObjectError::PreconditionFailed)
        ));
        assert_eq!(get(l, bk, "c", None).await, b"two");
        current = second.etag;
        // no object to match: nothing is created (a cloud remote may
        // answer 412 rather than 404)
        assert!(matches!(
            cput("none", b"x", P::Matches(format!("\"{}\"", first.etag))).await,
            Err(ObjectError::NoSuchKey { .. } | ObjectError::PreconditionFailed)
        ));
        assert!(matches!(
            l.head_object(&b(bk), &k("none"), &Conditions::default())
                .await,
            Err(ObjectError::NoSuchKey { .. })
        ));

        // A conditional write in flight (its body not yet ended): a second
        // one of the key is refused with 409, the first then commits.
        let probe = || cput("race", b"fast", P::Matches("\"0\"".into()));
        let (saw, slow) =
            copy_conditions::while_put_in_flight(l, bk, "race", P::Absent, probe).await;
        assert!(
            saw,
            "no ConditionalRequestConflict while a write was in flight"
        );
        slow.expect("the write in flight commits");
        assert_eq!(get(l, bk, "race", None).await, b"slow body");
    } else {
        // refused by name, or done right
        match cput("c", b"two", P::Matches(format!("\"{}\"", first.etag))).await {
            Err(ObjectError::NotImplemented { .. }) => {}
            Ok(i) => current = i.etag,
            Err(e) => panic!("If-Match put: {e:?}"),
        }
    }

    let complete = |key: &'static str, p: P| async move {
        let id = l
            .create_multipart_upload(&b(bk), &k(key), PutOptions::default())
            .await
            .expect("create");
        let parts = upload_parts(
            l,
            &b(bk),
            &k(key),
            &id,
            &[b"mp".to_vec()],
            &Default::default(),
        )
        .await
        .expect("upload parts");
        let opts = |p: P| CompleteOptions {
            precondition: Some(p),
            ..Default::default()
        };
        let r = l
            .complete_multipart_upload_with(&b(bk), &k(key), &id, parts.clone(), opts(p))
            .await;
        (id, parts, r)
    };
    let (id, parts, r) = complete("c", P::Absent).await;
    if !caps.conditional_completes {
        assert!(
            matches!(r, Err(ObjectError::NotImplemented { .. })),
            "{r:?}"
        );
        l.abort_multipart_upload(&b(bk), &k("c"), &id)
            .await
            .expect("abort");
        return;
    }
    assert!(matches!(r, Err(ObjectError::PreconditionFailed)), "{r:?}");
    // the upload is still there: completed with the current ETag
    let done = l
        .complete_multipart_upload_with(
            &b(bk),
            &k("c"),
            &id,
            parts,
            CompleteOptions {
                precondition: Some(P::Matches(current.clone())),
                ..Default::default()
            },
        )
        .await
        .expect("complete with the current ETag");
    assert_eq!(get(l, bk, "c", None).await, b"mp");
    let (_, _, r) = complete("c", P::Matches(current)).await;
    assert!(matches!(r, Err(ObjectError::PreconditionFailed)), "{r:?}");
    let (_, _, r) = complete("c", P::Matches(done.etag)).await;
    r.expect("complete matching the completed object");
    let (_, _, r) = complete("fresh", P::Absent).await;
    r.expect("create-only complete of a new key");
    let (_, _, r) = complete("nothing", P::Matches("*".into())).await;
    assert!(matches!(r, Err(ObjectError::NoSuchKey { .. })), "{r:?}");
}

/// Parts sent out of order and one sent twice (the second replaces it),
/// then CompleteMultipartUpload retried: the retry gets the same result
/// (ETag, version) rather than NoSuchUpload, and nothing is doubled; a
/// "retry" with another part list is NoSuchUpload.
pub async fn retried_complete(l: &dyn ObjectLayer) {
    let bk = "conf-retry";
    make(l, bk).await;
    let key = k("r");
    let id = l
        .create_multipart_upload(&b(bk), &key, PutOptions::default())
        .await
        .expect("create");
    let part = |n: u32, data: Vec<u8>| {
        let key = key.clone();
        let id = id.clone();
        async move {
            l.upload_part(
                &b(bk),
                &key,
                &id,
                n,
                bytes_stream(data),
                PartOptions::default(),
            )
            .await
            .expect("upload part")
        }
    };
    let p2 = pattern(777, 22);
    let two = part(2, p2.clone()).await;
    let stale = part(1, pattern(MIN_PART_SIZE as usize, 1)).await;
    let p1 = pattern(MIN_PART_SIZE as usize, 11);
    let one = part(1, p1.clone()).await;
    let list = |infos: &[&PartInfo]| -> Vec<CompletePart> {
        infos
            .iter()
            .map(|p| CompletePart {
                part_number: p.part_number,
                etag: format!("\"{}\"", p.etag),
            })
            .collect()
    };
    let listed = l
        .list_parts(&b(bk), &key, &id, None, 1000)
        .await
        .expect("list parts");
    assert_eq!(listed.parts.len(), 2, "a resent part replaces the first");
    assert!(matches!(
        l.complete_multipart_upload(&b(bk), &key, &id, list(&[&stale, &two]))
            .await,
        Err(ObjectError::InvalidPart { part_number: 1 })
    ));
    let done = list(&[&one, &two]);
    let first = l
        .complete_multipart_upload(&b(bk), &key, &id, done.clone())
        .await
        .expect("complete");
    let again = l
        .complete_multipart_upload(&b(bk), &key, &id, done.clone())
        .await
        .expect("a retried complete gets the result");
    assert_eq!(again.etag, first.etag);
    assert_eq!(again.version_id, first.version_id);
    assert_eq!(again.size, first.size);
    let mut all = p1;
    all.extend_from_slice(&p2);
    assert_eq!(get(l, bk, "r", None).await, all);
    assert!(matches!(
        l.complete_multipart_upload(&b(bk), &key, &id, list(&[&one]))
            .await,
        Err(ObjectError::NoSuchUpload { .. })
    ));
    assert!(matches!(
        l.complete_multipart_upload(&b(bk), &k("other"), &id, done)
            .await,
        Err(ObjectError::NoSuchUpload { .. })
    ));
    let uploads = l
        .list_multipart_uploads(&b(bk), ListUploadsOptions::default())
        .await
        .expect("list uploads");
    assert!(uploads.uploads.is_empty(), "{:?}", uploads.uploads);
    let page = l
        .list_objects(
            &b(bk),
            ListOptions {
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(page.objects.len(), 1);
}

/// `part_range` (S3's `partNumber` reads): a single-PUT object is one
/// part; a multipart object's parts are where they were uploaded; a number
/// past the parts is `InvalidPartNumber`.
pub async fn part_reads(l: &dyn ObjectLayer) {
    let bk = "conf-parts";
    make(l, bk).await;
    let plain = put(l, bk, "plain", b"whole object").await;
    let opts = GetOptions::default();
    let (info, range) = l
        .part_range(&b(bk), &k("plain"), &opts, 1)
        .await
        .expect("part 1 of a plain object");
    assert_eq!((info.etag, range), (plain.etag, (0, 12)));
    assert!(matches!(
        l.part_range(&b(bk), &k("plain"), &opts, 2).await,
        Err(ObjectError::InvalidPartNumber {
            part_number: 2,
            parts: 1
        })
    ));
    assert!(matches!(
        l.part_range(&b(bk), &k("missing"), &opts, 1).await,
        Err(ObjectError::NoSuchKey { .. })
    ));
    let key = k("mp");
    let id = l
        .create_multipart_upload(&b(bk), &key, PutOptions::default())
        .await
        .expect("create");
    let sizes = [MIN_PART_SIZE as usize, MIN_PART_SIZE as usize + 3, 1234];
    let datas: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| pattern(*n, 40 + i as u64))
        .collect();
    let parts = upload_parts(l, &b(bk), &key, &id, &datas, &Default::default())
        .await
        .expect("parts");
    l.complete_multipart_upload(&b(bk), &key, &id, parts)
        .await
        .expect("complete");
    let r = l.part_range(&b(bk), &key, &opts, 2).await;
    if !l.capabilities().part_reads {
        // refused by name; a backend that cannot tell a multipart object
        // (Azure reports no part count) sees one part
        assert!(
            matches!(
                r,
                Err(ObjectError::NotImplemented { .. } | ObjectError::InvalidPartNumber { .. })
            ),
            "{r:?}"
        );
        return;
    }
    let (info, range) = r.expect("part 2");
    assert_eq!(info.parts_count, Some(3));
    assert_eq!(range, (sizes[0] as u64, sizes[1] as u64));
    let (_, last) = l.part_range(&b(bk), &key, &opts, 3).await.expect("part 3");
    assert_eq!(last, ((sizes[0] + sizes[1]) as u64, 1234));
    assert_eq!(
        get(
            l,
            bk,
            "mp",
            Some(ByteRange::FromTo {
                first: last.0,
                last: Some(last.0 + last.1 - 1)
            })
        )
        .await,
        datas[2]
    );
    assert!(matches!(
        l.part_range(&b(bk), &key, &opts, 4).await,
        Err(ObjectError::InvalidPartNumber {
            part_number: 4,
            parts: 3
        })
    ));
}
