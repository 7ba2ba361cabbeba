#![allow(clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! The erasure set passes the ObjectLayer conformance suite in several
//! layouts, including degraded ones.

use cairn_core::ErasureSet;

fn set(drives: usize, parity: Option<usize>) -> (tempfile::TempDir, ErasureSet) {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = (0..drives)
        .map(|i| dir.path().join(format!("d{i}")))
        .collect();
    let set = ErasureSet::open(paths, parity).expect("open set");
    (dir, set)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_drives_default_parity() {
    let (_d, s) = set(4, None);
    cairn_api::conformance::run_all(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_drive_no_parity() {
    let (_d, s) = set(1, None);
    cairn_api::conformance::run_all(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_drives_six_parity_with_five_gone() {
    let (d, s) = set(12, Some(6));
    for i in 0..5 {
        std::fs::remove_dir_all(d.path().join(format!("d{i}"))).expect("remove drive");
    }
    cairn_api::conformance::run_all(&s).await;
}
