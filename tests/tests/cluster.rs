#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! The cluster (issue 21) as users run it: four real `cairn server`
//! processes on 127.0.0.1-4, two drives each, every node started with the
//! same drive URLs. One store through every node; a node killed costs no
//! acknowledged write and the cluster keeps serving; too many nodes lost
//! refuses writes at once; a node that returns is healed of what it
//! missed when the data is read; mismatched arguments and a node that
//! holds none of the drives get clear errors.

use std::path::Path;
use std::time::{Duration, Instant};

use cairn_tests::cluster::Cluster;
use cairn_tests::cmd::{run, run_status};
use cairn_tests::data::write_tree;

fn same_trees(a: &Path, b: &Path) {
    let out = std::process::Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trees differ: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_serve_one_store_through_every_node() {
    let c = Cluster::start(4, 2).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_tree(&src, 21).unwrap();
    run(&mut c.aws(0, &["s3", "mb", "s3://clustered"])).unwrap();
    // written through node 2, read back through every node
    run(&mut c.aws(
        1,
        &["s3", "sync", src.to_str().unwrap(), "s3://clustered/t/"],
    ))
    .unwrap();
    for i in 0..4 {
        let out = tmp.path().join(format!("out{i}"));
        run(&mut c.aws(
            i,
            &["s3", "sync", "s3://clustered/t/", out.to_str().unwrap()],
        ))
        .unwrap();
        same_trees(&src, &out);
    }
    // every node holds its share of every object: one set of 8 drives
    for i in 0..4 {
        for d in c.drives(i) {
            let keys = std::fs::read_dir(d.join("clustered/t")).unwrap().count();
            assert!(
                keys > 0,
                "node {} drive {} holds nothing",
                i + 1,
                d.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_costs_no_acknowledged_write() {
    let mut c = Cluster::start(4, 2).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_tree(&src, 7).unwrap();
    run(&mut c.aws(0, &["s3", "mb", "s3://faults"])).unwrap();
    run(&mut c.aws(
        0,
        &["s3", "sync", src.to_str().unwrap(), "s3://faults/before/"],
    ))
    .unwrap();

    // one node gone (2 of 8 drives): reads and writes go on everywhere
    c.kill(2).unwrap();
    for i in [0, 1, 3] {
        let out = tmp.path().join(format!("after-kill-{i}"));
        run(&mut c.aws(
            i,
            &["s3", "sync", "s3://faults/before/", out.to_str().unwrap()],
        ))
        .unwrap();
        same_trees(&src, &out);
    }
    run(&mut c.aws(
        3,
        &["s3", "sync", src.to_str().unwrap(), "s3://faults/during/"],
    ))
    .unwrap();

    // a second node gone (4 of 8 left, write quorum 5): writes refused
    // at once, with nothing of them visible; reads go on
    c.kill(1).unwrap();
    let t = Instant::now();
    let one = src.join("small.txt");
    let out = run_status(&mut c.aws(
        0,
        &["s3", "cp", one.to_str().unwrap(), "s3://faults/refused"],
    ))
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ServiceUnavailable") || err.contains("503"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let ls = run_status(&mut c.aws(3, &["s3", "ls", "s3://faults/refused"])).unwrap();
    assert!(String::from_utf8_lossy(&ls.stdout).trim().is_empty());
    let out = tmp.path().join("two-down");
    run(&mut c.aws(
        3,
        &["s3", "sync", "s3://faults/during/", out.to_str().unwrap()],
    ))
    .unwrap();
    same_trees(&src, &out);

    // both come back: writes work again, and node 3 is healed of the
    // writes it missed once they are read (no admin command)
    for i in [1, 2] {
        c.spawn(i, &[]).unwrap();
    }
    for i in [1, 2] {
        c.wait_ready(i).await.unwrap();
    }
    run(&mut c.aws(2, &["s3", "cp", one.to_str().unwrap(), "s3://faults/back"])).unwrap();
    let out = tmp.path().join("healed");
    run(&mut c.aws(
        0,
        &["s3", "sync", "s3://faults/during/", out.to_str().unwrap()],
    ))
    .unwrap();
    same_trees(&src, &out);
    let missed = c.drives(2)[0].join("faults/during/small.txt/cairn.meta");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !missed.is_file() {
        assert!(
            Instant::now() < deadline,
            "node 3 was not healed of {}:\n{}",
            missed.display(),
            c.log(0)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_wrong_get_clear_errors() {
    let mut c = Cluster::new(2, 2).unwrap();
    c.spawn(0, &[]).unwrap();
    // node 1 waits, and says for whom
    let deadline = Instant::now() + Duration::from_secs(10);
    let waiting = format!("waiting for node {}", c.addr(1));
    while !c.log(0).contains(&waiting) {
        assert!(Instant::now() < deadline, "{}", c.log(0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // node 2 started with another parity: both say so, neither opens
    c.spawn(1, &["--parity", "1"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mismatch = "was started with other drive arguments";
    while !(c.log(0).contains(mismatch) && c.log(1).contains(mismatch)) {
        assert!(Instant::now() < deadline, "{}\n{}", c.log(0), c.log(1));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!c.log(0).contains("erasure sets ready"));
    c.kill(1).unwrap();
    // a server whose address is none of the drives' nodes
    let out = c
        .command("127.0.0.9:1", &[])
        .unwrap()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("none of the drives is on this node"), "{err}");
    // started right, node 2 joins and both serve
    c.spawn(1, &[]).unwrap();
    c.wait_ready(0).await.unwrap();
    c.wait_ready(1).await.unwrap();
    run(&mut c.aws(1, &["s3", "mb", "s3://joined"])).unwrap();
    run(&mut c.aws(0, &["s3", "ls", "s3://joined"])).unwrap();
}
