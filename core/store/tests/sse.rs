#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! Encryption in the erasure set: every mode round-trips single and
//! multipart objects with ranges across packages and parts, shards on the
//! drives hold no plaintext, damage is healed and tampering is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use cairn_api::conformance::upload_parts;
use cairn_api::{
    BucketEncryption, BucketName, ByteRange, CopyOptions, CustomerKey, Encryption, GetOptions,
    MetadataDirective, ObjectError, ObjectKey, ObjectLayer, PartOptions, PutOptions, SseRequest,
    bytes_stream, collect_stream,
};
use cairn_core::ErasureSet;
use cairn_core::kms::builtin::BuiltinKms;
use cairn_core::sse::Cipher;

/// 32 bytes that must never appear on a drive in the clear.
const MARKER: &[u8; 32] = b"CAIRN-PLAINTEXT-MARKER-012345678";

fn marked(len: usize) -> Vec<u8> {
    MARKER.iter().copied().cycle().take(len).collect()
}

fn set(root: &Path, cipher: Cipher) -> (ErasureSet, Vec<PathBuf>) {
    let paths: Vec<PathBuf> = (0..4).map(|i| root.join(format!("d{i}"))).collect();
    let set = ErasureSet::open(paths.clone(), None).unwrap();
    let secret = format!(
        "cairn-default:{}",
        base64::engine::general_purpose::STANDARD.encode([5u8; 32])
    );
    set.set_kms(Some(Arc::new(BuiltinKms::from_secret(&secret).unwrap())));
    set.set_cipher(cipher);
    (set, paths)
}

fn key(s: &str) -> ObjectKey {
    ObjectKey::new(s).unwrap()
}

fn customer() -> CustomerKey {
    CustomerKey::new([0x42; 32])
}

fn get_opts(sse: &SseRequest, range: Option<ByteRange>) -> GetOptions {
    GetOptions {
        range,
        sse_customer: match sse {
            SseRequest::Customer(k) => Some(k.clone()),
            _ => None,
        },
        ..Default::default()
    }
}

async fn get(
    set: &ErasureSet,
    b: &BucketName,
    k: &str,
    o: GetOptions,
) -> Result<Vec<u8>, ObjectError> {
    let g = set.get_object(b, &key(k), o).await?;
    collect_stream(g.body)
        .await
        .map_err(|e| ObjectError::internal(e.to_string()))
}

fn grep_drives(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(d) = stack.pop() {
        // old data dirs are removed in the background: a file may vanish
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let Ok(bytes) = std::fs::read(&p) else {
                    continue;
                };
                if bytes.windows(MARKER.len()).any(|w| w == MARKER) {
                    hits.push(p);
                }
            }
        }
    }
    hits
}

fn modes() -> Vec<SseRequest> {
    vec![
        SseRequest::S3,
        SseRequest::Kms {
            key_id: None,
            context: [("tenant".to_owned(), "a".to_owned())].into(),
        },
        SseRequest::Customer(customer()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_and_cipher_round_trips_without_plaintext_on_disk() {
    for cipher in [
        Cipher::Aes256Gcm,
        Cipher::Chacha20Poly1305,
        Cipher::Aes256CbcHmacSha256,
    ] {
        let t = tempfile::tempdir().unwrap();
        let (set, paths) = set(t.path(), cipher);
        let b = BucketName::new("enc").unwrap();
        set.make_bucket(&b).await.unwrap();
        let p = 64 * 1024;
        for sse in modes() {
            for size in [0, 1, p - 1, p, p + 1, 200_000, 3 * 1024 * 1024 + 7] {
                let k = format!("o-{size}");
                let data = marked(size);
                let info = set
                    .put_object(
                        &b,
                        &key(&k),
                        bytes_stream(data.clone()),
                        PutOptions {
                            sse: Some(sse.clone()),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(info.size, size as u64);
                assert_eq!(info.encryption, Some(sse.encryption_reported()));
                let got = get(&set, &b, &k, get_opts(&sse, None)).await.unwrap();
                assert!(got == data, "{cipher:?} {sse:?} size {size}");
                if size > 2 {
                    for (first, last) in [(0, 0), (p as u64 - 1, p as u64), (1, size as u64 - 2)] {
                        if last >= size as u64 {
                            continue;
                        }
                        let got = get(
                            &set,
                            &b,
                            &k,
                            get_opts(
                                &sse,
                                Some(ByteRange::FromTo {
                                    first,
                                    last: Some(last),
                                }),
                            ),
                        )
                        .await
                        .unwrap();
                        assert!(got == data[first as usize..=last as usize]);
                    }
                }
            }
        }
        let hits = grep_drives(&paths);
        assert!(hits.is_empty(), "{cipher:?}: plaintext on disk in {hits:?}");
    }
}

trait Reported {
    fn encryption_reported(&self) -> Encryption;
}

impl Reported for SseRequest {
    fn encryption_reported(&self) -> Encryption {
        match self {
            SseRequest::Kms { .. } => Encryption::Kms {
                key_id: "cairn-default".into(),
            },
            other => other.encryption(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_ranges_cross_parts_and_heal_keeps_it_readable() {
    let t = tempfile::tempdir().unwrap();
    let (set, paths) = set(t.path(), Cipher::Aes256Gcm);
    let b = BucketName::new("mpu-enc").unwrap();
    set.make_bucket(&b).await.unwrap();
    for sse in modes() {
        let k = key("big");
        let id = set
            .create_multipart_upload(
                &b,
                &k,
                PutOptions {
                    sse: Some(sse.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let parts = [marked(5 * 1024 * 1024 + 3), marked(70_000)];
        let part_opts = PartOptions {
            sse_customer: get_opts(&sse, None).sse_customer,
            ..Default::default()
        };
        let done = upload_parts(&set, &b, &k, &id, &parts, &part_opts)
            .await
            .unwrap();
        let info = set
            .complete_multipart_upload(&b, &k, &id, done)
            .await
            .unwrap();
        assert!(info.etag.ends_with("-2"), "{}", info.etag);
        let whole: Vec<u8> = parts.concat();
        let boundary = parts[0].len() as u64;
        for (first, last) in [
            (0, whole.len() as u64 - 1),
            (boundary - 10, boundary + 10),
            (boundary - 65536, boundary + 65536 + 5),
        ] {
            let got = get(
                &set,
                &b,
                "big",
                get_opts(
                    &sse,
                    Some(ByteRange::FromTo {
                        first,
                        last: Some(last),
                    }),
                ),
            )
            .await
            .unwrap();
            assert!(
                got == whole[first as usize..=last as usize],
                "{sse:?} {first}-{last}"
            );
        }
        // a drive lost and rebuilt: the object still opens
        std::fs::remove_dir_all(paths[1].join("mpu-enc")).unwrap();
        set.heal_object(&b, &k, true).await.unwrap();
        // only drives 0 and 1 left: drive 1's rebuilt shards are needed
        std::fs::remove_dir_all(paths[2].join("mpu-enc")).unwrap();
        std::fs::remove_dir_all(paths[3].join("mpu-enc")).unwrap();
        assert!(get(&set, &b, "big", get_opts(&sse, None)).await.unwrap() == whole);
        set.heal_object(&b, &k, true).await.unwrap();
    }
    assert!(grep_drives(&paths).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_checked_copies_change_modes_and_bucket_default_applies() {
    let t = tempfile::tempdir().unwrap();
    let (set, paths) = set(t.path(), Cipher::Aes256Gcm);
    let b = BucketName::new("keys").unwrap();
    set.make_bucket(&b).await.unwrap();
    let data = marked(100_000);
    let c = SseRequest::Customer(customer());
    set.put_object(
        &b,
        &key("c"),
        bytes_stream(data.clone()),
        PutOptions {
            sse: Some(c.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // no key, a wrong key, a key on a plain object
    assert!(matches!(
        get(&set, &b, "c", GetOptions::default()).await,
        Err(ObjectError::SseCustomerKeyMissing { .. })
    ));
    let wrong = SseRequest::Customer(CustomerKey::new([1; 32]));
    assert!(matches!(
        get(&set, &b, "c", get_opts(&wrong, None)).await,
        Err(ObjectError::SseCustomerKeyMismatch { .. })
    ));
    assert!(matches!(
        set.head_object_with(&b, &key("c"), &GetOptions::default())
            .await,
        Err(ObjectError::SseCustomerKeyMissing { .. })
    ));
    assert!(
        set.head_object_with(&b, &key("c"), &get_opts(&c, None))
            .await
            .is_ok()
    );
    // SSE-C -> SSE-KMS -> plain, by copies
    let kms = SseRequest::Kms {
        key_id: Some("cairn-default".into()),
        context: Default::default(),
    };
    let info = set
        .copy_object(
            &b,
            &key("c"),
            &b,
            &key("k"),
            CopyOptions {
                source_sse_customer: Some(customer()),
                sse: Some(kms.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(info.encryption, Some(Encryption::Kms { .. })));
    assert!(get(&set, &b, "k", GetOptions::default()).await.unwrap() == data);
    let info = set
        .copy_object(&b, &key("k"), &b, &key("p"), CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(info.encryption, None);
    assert!(get(&set, &b, "p", GetOptions::default()).await.unwrap() == data);
    // a self-copy that replaces metadata keeps the encryption
    let info = set
        .copy_object(
            &b,
            &key("k"),
            &b,
            &key("k"),
            CopyOptions {
                metadata: MetadataDirective::Replace(Default::default()),
                sse: Some(kms),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(info.encryption, Some(Encryption::Kms { .. })));
    // SSE-C on a plain object
    assert!(matches!(
        get(&set, &b, "p", get_opts(&c, None)).await,
        Err(ObjectError::SseCustomerKeyNotExpected { .. })
    ));
    // bucket default: a PUT without SSE comes out encrypted
    set.put_bucket_encryption(&b, Some(BucketEncryption::S3))
        .await
        .unwrap();
    assert_eq!(
        set.get_bucket_encryption(&b).await.unwrap(),
        Some(BucketEncryption::S3)
    );
    let info = set
        .put_object(
            &b,
            &key("d"),
            bytes_stream(data.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(info.encryption, Some(Encryption::S3));
    set.put_bucket_encryption(&b, None).await.unwrap();
    let info = set
        .put_object(
            &b,
            &key("e"),
            bytes_stream(data.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(info.encryption, None);
    // only the deliberately plain copies hold the marker
    let hits = grep_drives(&paths);
    assert!(
        hits.iter().all(|h| {
            let s = h.to_string_lossy();
            s.contains("/keys/p/") || s.contains("/keys/e/")
        }),
        "{hits:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_sealed_key_or_package_fails_the_read() {
    let t = tempfile::tempdir().unwrap();
    let (set, paths) = set(t.path(), Cipher::Aes256Gcm);
    let b = BucketName::new("tamper").unwrap();
    set.make_bucket(&b).await.unwrap();
    let data = marked(50_000);
    set.put_object(
        &b,
        &key("x"),
        bytes_stream(data.clone()),
        PutOptions {
            sse: Some(SseRequest::S3),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // rewrite the sealed key in every drive's cairn.meta (keeping the
    // meta's own checksum valid would need the format: go through it)
    for p in &paths {
        let f = p.join("tamper/x/cairn.meta");
        let bytes = std::fs::read(&f).unwrap();
        let mut m = cairn_core::meta::ObjectMeta::decode(&bytes, true).unwrap();
        let sse = m.versions[0].sse.as_mut().unwrap();
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(&sse.sealed_key)
            .unwrap();
        raw[20] ^= 1;
        sse.sealed_key = base64::engine::general_purpose::STANDARD.encode(raw);
        std::fs::write(&f, m.encode().unwrap()).unwrap();
    }
    assert!(matches!(
        get(&set, &b, "x", GetOptions::default()).await,
        Err(ObjectError::DecryptFailed { .. })
    ));
}
