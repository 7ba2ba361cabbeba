//! The NAS backend passes the ObjectLayer conformance suite, with its
//! declared gaps (a key and keys below it cannot coexist), metadata in
//! xattrs and in the sidecar fallback.

use cairn_gateway::{NasLayer, NasOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nas_with_xattrs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = NasLayer::open(dir.path(), NasOptions::default()).expect("open");
    assert!(l.uses_xattrs(), "xattrs work on this machine's file system");
    cairn_api::conformance::run_all(&l).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nas_with_sidecar_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = NasLayer::open(
        dir.path(),
        NasOptions {
            force_sidecar: true,
        },
    )
    .expect("open");
    assert!(!l.uses_xattrs());
    cairn_api::conformance::run_all(&l).await;
}
