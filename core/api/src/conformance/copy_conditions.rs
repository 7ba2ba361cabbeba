//! CopyObject's destination conditions (`If-Match`, `If-None-Match: *` on
//! the key written): judged as a conditional PUT's on every path a copy
//! takes (streamed, a metadata-only copy onto itself, a server-side copy
//! on the backend); a failed one changes nothing.

use std::collections::BTreeMap;

use super::{b, conditional, get, k, make, put};
use crate::conditional::WritePrecondition as P;
use crate::error::{ObjectError, ObjectResult};
use crate::layer::ObjectLayer;
use crate::types::*;

/// Runs `probe` while a conditional PUT of `key` (with `p`) is in flight,
/// its body not yet ended, until the probe meets a
/// `ConditionalRequestConflict`; then ends the body. Returns whether the
/// probe met one and the PUT's result (its body is `slow body`).
pub(super) async fn while_put_in_flight<F, Fut>(
    l: &dyn ObjectLayer,
    bucket: &str,
    key: &str,
    p: P,
    probe: F,
) -> (bool, ObjectResult<ObjectInfo>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ObjectResult<ObjectInfo>>,
{
    let (tx, rx) = futures::channel::mpsc::unbounded::<std::io::Result<bytes::Bytes>>();
    tx.unbounded_send(Ok(bytes::Bytes::from_static(b"slow ")))
        .expect("send");
    let (race_b, race_k) = (b(bucket), k(key));
    // the probe starts once the write in flight reads its body (it holds
    // the key by then)
    let reading = std::sync::Arc::new(tokio::sync::Notify::new());
    let r2 = reading.clone();
    let body = futures::StreamExt::inspect(rx, move |_| r2.notify_one());
    let slow = l.put_object(&race_b, &race_k, byte_stream(body), conditional(p));
    let probe = async move {
        reading.notified().await;
        let mut saw = false;
        for _ in 0..500 {
            match probe().await {
                Err(ObjectError::ConditionalRequestConflict { .. }) => {
                    saw = true;
                    break;
                }
                Err(ObjectError::NoSuchKey { .. } | ObjectError::PreconditionFailed) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                other => panic!("conflicting conditional write: {other:?}"),
            }
        }
        tx.unbounded_send(Ok(bytes::Bytes::from_static(b"body")))
            .expect("send");
        drop(tx);
        saw
    };
    let (slow, saw) = tokio::join!(slow, probe);
    (saw, slow)
}

/// Copies `src` onto `dst` in `bucket` with the destination condition `p`
/// (and `metadata`, if given, replacing the source's).
async fn copy(
    l: &dyn ObjectLayer,
    bucket: &str,
    (src, dst): (&str, &str),
    p: P,
    metadata: Option<&ObjectMetadata>,
) -> ObjectResult<ObjectInfo> {
    l.copy_object(
        &b(bucket),
        &k(src),
        &b(bucket),
        &k(dst),
        CopyOptions {
            precondition: Some(p),
            metadata: metadata.map_or(MetadataDirective::Copy, |m| {
                MetadataDirective::Replace(m.clone())
            }),
            ..Default::default()
        },
    )
    .await
}

/// The destination conditions of CopyObject: `If-None-Match: *` copies only
/// onto a free key, `If-Match` only onto the object with that ETag (a copy
/// onto itself that replaces the metadata too); a failed one is
/// `PreconditionFailed` (`NoSuchKey` for If-Match on a free key) and leaves
/// the destination as it was; a conditional copy while another conditional
/// write of the key is in flight is `ConditionalRequestConflict`.
/// Declared gaps as for conditional PUTs (`conditional_puts`).
pub async fn copy_conditions(l: &dyn ObjectLayer) {
    let bk = "conf-copycond";
    make(l, bk).await;
    let caps = l.capabilities();
    put(l, bk, "src", b"source").await;
    let dest = put(l, bk, "dst", b"dest").await;
    let quoted = |e: &str| format!("\"{e}\"");

    // If-None-Match: * onto an object: refused, the destination unchanged
    let r = copy(l, bk, ("src", "dst"), P::Absent, None).await;
    assert!(matches!(r, Err(ObjectError::PreconditionFailed)), "{r:?}");
    assert_eq!(get(l, bk, "dst", None).await, b"dest");
    // ... onto a free key: copied
    copy(l, bk, ("src", "new"), P::Absent, None)
        .await
        .expect("create-only copy onto a free key");
    assert_eq!(get(l, bk, "new", None).await, b"source");

    let stale = P::Matches(quoted("0123456789abcdef0123456789abcdef"));
    let r = copy(l, bk, ("src", "dst"), stale.clone(), None).await;
    if !caps.conditional_puts {
        // refused by name, or judged right
        assert!(
            matches!(
                r,
                Err(ObjectError::NotImplemented { .. } | ObjectError::PreconditionFailed)
            ),
            "{r:?}"
        );
        return;
    }
    assert!(matches!(r, Err(ObjectError::PreconditionFailed)), "{r:?}");
    assert_eq!(get(l, bk, "dst", None).await, b"dest");
    let copied = copy(l, bk, ("src", "dst"), P::Matches(quoted(&dest.etag)), None)
        .await
        .expect("copy onto the object with the ETag given");
    assert_eq!(get(l, bk, "dst", None).await, b"source");
    // no object to match: nothing is created (a cloud remote may answer
    // 412 rather than 404)
    let r = copy(l, bk, ("src", "none"), P::Matches(quoted(&dest.etag)), None).await;
    assert!(
        matches!(
            r,
            Err(ObjectError::NoSuchKey { .. } | ObjectError::PreconditionFailed)
        ),
        "{r:?}"
    );
    assert!(matches!(
        l.head_object(&b(bk), &k("none"), &Conditions::default())
            .await,
        Err(ObjectError::NoSuchKey { .. })
    ));

    // onto itself, replacing the metadata (a store does it without the data)
    let replaced = ObjectMetadata {
        user: BTreeMap::from([("shape".to_owned(), "round".to_owned())]),
        ..Default::default()
    };
    let onto_itself = ("dst", "dst");
    for p in [stale.clone(), P::Absent] {
        let r = copy(l, bk, onto_itself, p, Some(&replaced)).await;
        assert!(matches!(r, Err(ObjectError::PreconditionFailed)), "{r:?}");
    }
    let head = l
        .head_object(&b(bk), &k("dst"), &Conditions::default())
        .await
        .expect("head");
    assert!(head.user_metadata.is_empty(), "{:?}", head.user_metadata);
    let changed = copy(
        l,
        bk,
        onto_itself,
        P::Matches(quoted(&copied.etag)),
        Some(&replaced),
    )
    .await
    .expect("copy onto itself with its own ETag");
    assert_eq!(changed.user_metadata, replaced.user);
    assert_eq!(get(l, bk, "dst", None).await, b"source");

    // while a conditional PUT of the key is in flight: 409, onto another
    // key and onto itself alike; the PUT then commits
    let mut p = P::Absent;
    for src in ["src", "race"] {
        let probe = || copy(l, bk, (src, "race"), stale.clone(), Some(&replaced));
        let (saw, slow) = while_put_in_flight(l, bk, "race", p, probe).await;
        assert!(saw, "no ConditionalRequestConflict for a copy from {src}");
        let done = slow.expect("the write in flight commits");
        assert_eq!(get(l, bk, "race", None).await, b"slow body");
        p = P::Matches(quoted(&done.etag));
    }
}
