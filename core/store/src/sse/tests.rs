#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use cairn_api::{CustomerKey, ObjectError, SseRequest, bytes_stream, collect_stream};

use super::stream::{PlainPart, decrypt, stored_range};
use super::*;

const ALL: [Cipher; 3] = [
    Cipher::Aes256Gcm,
    Cipher::Chacha20Poly1305,
    Cipher::Aes256CbcHmacSha256,
];

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn customer_keys(cipher: Cipher) -> ObjectKeys {
    let cfg = SseConfig { kms: None, cipher };
    cfg.new_keys(&SseRequest::Customer(CustomerKey::new([9; 32])))
        .await
        .unwrap()
}

fn seal_part(c: &PartCipher, cipher: Cipher, plain: &[u8]) -> Vec<u8> {
    let out = super::seal_part(c, plain);
    assert_eq!(out.len() as u64, cipher.stored_len(plain.len() as u64));
    out
}

async fn read_range(
    keys: Arc<ObjectKeys>,
    parts: &[(PlainPart, Vec<u8>)],
    offset: u64,
    length: u64,
) -> std::io::Result<Vec<u8>> {
    let stored: Vec<u8> = parts.iter().flat_map(|(_, s)| s.clone()).collect();
    let plain: Vec<PlainPart> = parts.iter().map(|(p, _)| p.clone()).collect();
    let (so, sl) = stored_range(keys.meta.cipher, &plain, offset, length);
    // a damaged store may hold fewer bytes than the range wants
    let hi = ((so + sl) as usize).min(stored.len());
    let inner = bytes_stream(stored[so as usize..hi].to_vec());
    collect_stream(decrypt(inner, keys, plain, offset, length)).await
}

#[tokio::test]
async fn every_cipher_round_trips_every_range() {
    for cipher in ALL {
        let keys = Arc::new(customer_keys(cipher).await);
        // parts of awkward sizes around package boundaries, one empty
        let sizes = [PACKAGE * 3 + 1, PACKAGE - 1, 0, PACKAGE, 17];
        let mut parts = Vec::new();
        let mut whole = Vec::new();
        for (i, &s) in sizes.iter().enumerate() {
            let number = i as u32 + 1;
            let plain = data(s, number as u8);
            let sealed = seal_part(&keys.part(number), cipher, &plain);
            whole.extend_from_slice(&plain);
            parts.push((
                PlainPart {
                    number,
                    size: s as u64,
                    salt: None,
                    first_seq: 0,
                    tail: true,
                },
                sealed,
            ));
        }
        let total = whole.len() as u64;
        let p = PACKAGE as u64;
        let cases = [
            (0, total),
            (0, 1),
            (p - 1, 2),
            (p, p),
            (3 * p, 2),
            (3 * p + 1, p - 1),
            (3 * p - 5, p + 10),
            (total - 1, 1),
            (5, total - 10),
        ];
        for (off, len) in cases {
            let got = read_range(keys.clone(), &parts, off, len).await.unwrap();
            assert_eq!(
                got,
                whole[off as usize..(off + len) as usize],
                "{cipher:?} range {off}+{len}"
            );
        }
    }
}

#[tokio::test]
async fn tampering_fails_and_never_gives_wrong_bytes() {
    for cipher in ALL {
        let keys = Arc::new(customer_keys(cipher).await);
        let plain = data(PACKAGE * 2 + 100, 1);
        let sealed = seal_part(&keys.part(1), cipher, &plain);
        let full = cipher.sealed_len(PACKAGE);
        let part = |s: Vec<u8>| {
            vec![(
                PlainPart {
                    number: 1,
                    size: plain.len() as u64,
                    salt: None,
                    first_seq: 0,
                    tail: true,
                },
                s,
            )]
        };
        let all = plain.len() as u64;
        // one altered byte anywhere
        for pos in (0..sealed.len()).step_by(4099).chain([sealed.len() - 1]) {
            let mut s = sealed.clone();
            s[pos] ^= 0x01;
            assert!(
                read_range(keys.clone(), &part(s), 0, all).await.is_err(),
                "{cipher:?}: flipped byte {pos} went unnoticed"
            );
        }
        // two packages swapped
        let mut s = sealed.clone();
        let (a, b) = s.split_at_mut(full);
        a.swap_with_slice(&mut b[..full]);
        assert!(read_range(keys.clone(), &part(s), 0, all).await.is_err());
        // the last package dropped (and the size claimed to match)
        let short = sealed[..2 * full].to_vec();
        let trunc = vec![(
            PlainPart {
                number: 1,
                size: 2 * PACKAGE as u64,
                salt: None,
                first_seq: 0,
                tail: true,
            },
            short,
        )];
        assert!(
            read_range(keys.clone(), &trunc, 0, 2 * PACKAGE as u64)
                .await
                .is_err(),
            "{cipher:?}: truncation went unnoticed"
        );
        // the data cut short
        let cut = sealed[..sealed.len() - 1].to_vec();
        assert!(read_range(keys.clone(), &part(cut), 0, all).await.is_err());
        // a package from another part of the same object
        let other = seal_part(&keys.part(2), cipher, &plain);
        let mut s = sealed.clone();
        s[..full].copy_from_slice(&other[..full]);
        assert!(read_range(keys.clone(), &part(s), 0, all).await.is_err());
        // a package from another object
        let keys2 = customer_keys(cipher).await;
        let other = seal_part(&keys2.part(1), cipher, &plain);
        let mut s = sealed.clone();
        s[full..2 * full].copy_from_slice(&other[full..2 * full]);
        assert!(read_range(keys.clone(), &part(s), 0, all).await.is_err());
        // untouched, it reads
        assert_eq!(
            read_range(keys.clone(), &part(sealed.clone()), 0, all)
                .await
                .unwrap(),
            plain
        );
    }
}

#[tokio::test]
async fn customer_key_is_checked_and_the_sealed_key_is_tamper_evident() {
    let ck = CustomerKey::new([9; 32]);
    let cfg = SseConfig {
        kms: None,
        cipher: Cipher::Aes256Gcm,
    };
    let keys = cfg
        .new_keys(&SseRequest::Customer(ck.clone()))
        .await
        .unwrap();
    let what = ("b", "k");
    assert!(cfg.open_keys(&keys.meta, Some(&ck), what).await.is_ok());
    assert!(matches!(
        cfg.open_keys(&keys.meta, None, what).await,
        Err(ObjectError::SseCustomerKeyMissing { .. })
    ));
    assert!(matches!(
        cfg.open_keys(&keys.meta, Some(&CustomerKey::new([8; 32])), what)
            .await,
        Err(ObjectError::SseCustomerKeyMismatch { .. })
    ));
    // every byte of the sealed key matters
    let raw = B64.decode(&keys.meta.sealed_key).unwrap();
    for i in 0..raw.len() {
        let mut r = raw.clone();
        r[i] ^= 0x80;
        let mut m = keys.meta.clone();
        m.sealed_key = B64.encode(&r);
        assert!(
            matches!(
                cfg.open_keys(&m, Some(&ck), what).await,
                Err(ObjectError::DecryptFailed { .. })
            ),
            "sealed key byte {i}"
        );
    }
    // a sealed key moved onto another object does not open there
    let other = cfg
        .new_keys(&SseRequest::Customer(ck.clone()))
        .await
        .unwrap();
    let mut m = other.meta.clone();
    m.sealed_key = keys.meta.sealed_key.clone();
    assert!(cfg.open_keys(&m, Some(&ck), what).await.is_err());
    // SSE-S3 without a KMS is refused clearly
    assert!(matches!(
        cfg.new_keys(&SseRequest::S3).await,
        Err(ObjectError::KmsNotConfigured)
    ));
}

#[test]
fn sizes() {
    for c in ALL {
        assert_eq!(Cipher::packages(0), 1);
        assert_eq!(c.stored_len(0), c.sealed_len(0) as u64);
        assert_eq!(
            c.stored_len(PACKAGE as u64 * 16),
            c.stored_block(PACKAGE * 16) as u64
        );
    }
    assert_eq!(Cipher::Aes256Gcm.sealed_len(PACKAGE), PACKAGE + 16);
    assert_eq!(Cipher::Aes256CbcHmacSha256.sealed_len(15), 16 + 32);
    assert_eq!(Cipher::Aes256CbcHmacSha256.sealed_len(16), 32 + 32);
}

/// A slice of a part's file (`FileSlice`): read from its first package's
/// number, the last package sealed as the last only where the file ends;
/// a slice that claims another place in its file fails.
#[tokio::test]
async fn slices_of_a_part_read_where_their_packages_are_sealed() {
    for cipher in ALL {
        let keys = Arc::new(customer_keys(cipher).await);
        let plain = data(PACKAGE * 3 + 100, 7);
        let sealed = seal_part(&keys.part(1), cipher, &plain);
        let full = cipher.sealed_len(PACKAGE);
        let p = PACKAGE as u64;
        let slice = |first_seq: u64, size: u64, tail: bool| PlainPart {
            number: 1,
            size,
            salt: None,
            first_seq,
            tail,
        };
        // packages 1 and 2 (not the file's end), and the tail from 2
        let mid = vec![(slice(1, 2 * p, false), sealed[full..3 * full].to_vec())];
        let got = read_range(keys.clone(), &mid, 0, 2 * p).await.unwrap();
        assert_eq!(got, plain[PACKAGE..3 * PACKAGE], "{cipher:?}");
        let got = read_range(keys.clone(), &mid, p - 3, 10).await.unwrap();
        assert_eq!(got, plain[2 * PACKAGE - 3..2 * PACKAGE + 7], "{cipher:?}");
        let tail = vec![(slice(2, p + 100, true), sealed[2 * full..].to_vec())];
        let got = read_range(keys.clone(), &tail, 0, p + 100).await.unwrap();
        assert_eq!(got, plain[2 * PACKAGE..], "{cipher:?}");
        // the wrong first package, or a mid slice taken for the end
        let wrong = vec![(slice(2, 2 * p, false), sealed[full..3 * full].to_vec())];
        assert!(read_range(keys.clone(), &wrong, 0, 2 * p).await.is_err());
        let not_end = vec![(slice(1, 2 * p, true), sealed[full..3 * full].to_vec())];
        assert!(read_range(keys.clone(), &not_end, 0, 2 * p).await.is_err());
    }
}
