#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! The cluster (issue 21) as users run it: four real `cairn server`
//! processes on 127.0.0.1-4, two drives each, every node started with the
//! same drive URLs. One store through every node; a node killed costs no
//! acknowledged write and the cluster keeps serving; too many nodes lost
//! refuses writes at once; a node that returns is healed of what it
//! missed when the data is read; mismatched arguments and a node that
//! holds none of the drives get clear errors.

use std::time::{Duration, Instant};

use cairn_tests::cluster::Cluster;
use cairn_tests::cmd::{run, run_status};
use cairn_tests::data::{assert_trees_equal, write_tree};
use cairn_tests::front::Front;

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
        assert_trees_equal(&src, &out).unwrap();
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
    c.health_shows(0, 200, "\"online\":6").await.unwrap();
    let m = cairn_tests::raw::get(&c.addr(0), "/_cairn/metrics")
        .await
        .unwrap()
        .text();
    assert!(m.contains("\ncairn_cluster_nodes_online 3\n"), "{m}");
    assert!(
        m.lines()
            .find(|l| l.starts_with("cairn_cluster_locks_granted_total{kind=\"write\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .is_some_and(|n| n != "0"),
        "{m}"
    );
    let info = run(&mut c.admin(0, &["info"]).unwrap()).unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    for i in 0..4 {
        let row = info
            .lines()
            .find(|l| l.starts_with(&c.addr(i)))
            .unwrap_or_else(|| panic!("no row for node {}:\n{info}", i + 1));
        let state = if i == 2 { "offline" } else { "online" };
        assert!(
            row.split_whitespace().nth(1) == Some(state),
            "node {}: {row}",
            i + 1
        );
        if i != 2 {
            assert!(row.contains(env!("CARGO_PKG_VERSION")), "{row}");
        }
    }
    for i in [0, 1, 3] {
        let out = tmp.path().join(format!("after-kill-{i}"));
        run(&mut c.aws(
            i,
            &["s3", "sync", "s3://faults/before/", out.to_str().unwrap()],
        ))
        .unwrap();
        assert_trees_equal(&src, &out).unwrap();
    }
    run(&mut c.aws(
        3,
        &["s3", "sync", src.to_str().unwrap(), "s3://faults/during/"],
    ))
    .unwrap();

    // a second node gone (4 of 8 left, write quorum 5): writes refused
    // at once, with nothing of them visible; reads go on
    c.kill(1).unwrap();
    c.health_shows(3, 503, "\"online\":4").await.unwrap();
    let t = Instant::now();
    let r = c
        .raw(0)
        .send("PUT", "/faults/refused-raw", &[], b"refused")
        .await
        .unwrap();
    assert_eq!(r.status, 503, "{}", r.describe());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
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
    assert_trees_equal(&src, &out).unwrap();

    // both come back: writes work again, and node 3 is healed of the
    // writes it missed once they are read (no admin command)
    for i in [1, 2] {
        c.spawn(i, &[]).unwrap();
    }
    for i in [1, 2] {
        c.wait_ready(i).await.unwrap();
    }
    c.health_shows(1, 200, "\"online\":8").await.unwrap();
    run(&mut c.aws(2, &["s3", "cp", one.to_str().unwrap(), "s3://faults/back"])).unwrap();
    let out = tmp.path().join("healed");
    run(&mut c.aws(
        0,
        &["s3", "sync", "s3://faults/during/", out.to_str().unwrap()],
    ))
    .unwrap();
    assert_trees_equal(&src, &out).unwrap();
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

/// Starts 4 nodes x 2 drives, each with `extra(i)` arguments.
async fn cluster_with(extra: impl Fn(usize) -> Vec<&'static str>) -> Cluster {
    let mut c = Cluster::new(4, 2).unwrap();
    for i in 0..4 {
        c.spawn(i, &extra(i)).unwrap();
    }
    for i in 0..4 {
        c.wait_ready(i).await.unwrap();
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_lock_holder_cannot_commit_over_a_newer_version() {
    // locks live 2 s; node 1 waits 1.5 s under each write lock before it
    // commits (a test switch), so it can be paused while holding one
    let c = cluster_with(|i| {
        let mut a = vec!["--lock-ttl-secs", "2"];
        if i == 0 {
            a.extend(["--fault-commit-delay-ms", "1500"]);
        }
        a
    })
    .await;
    let put = |i: usize, body: &'static [u8]| {
        let raw = c.raw(i);
        async move { raw.send("PUT", "/fence/k", &[], body).await.unwrap() }
    };
    let r = c.raw(1).send("PUT", "/fence", &[], b"").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.describe());

    let stale = tokio::spawn(put(0, b"older, from the paused node"));
    // node 1 has the lock and waits to commit: paused past the lock's life
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.signal(0, "STOP").unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    // another node takes the lock and commits (without node 1's drives)
    let r = put(1, b"newer, acknowledged").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    c.signal(0, "CONT").unwrap();
    // node 1 wakes and commits under its old lock: the drives that hold
    // the newer version refuse it, and it misses its quorum
    let r = stale.await.unwrap();
    assert_eq!(r.status, 503, "{}", r.describe());
    assert!(
        c.log(0).contains("newer holder of the object's lock"),
        "{}",
        c.log(0)
    );
    for i in 0..4 {
        let r = c.raw(i).send("GET", "/fence/k", &[], b"").await.unwrap();
        assert_eq!(r.status, 200, "node {}: {}", i + 1, r.describe());
        assert_eq!(r.body, b"newer, acknowledged", "through node {}", i + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_node_changes_every_node_sees_at_once() {
    // node 1 mounts the buckets and would trust its attributes for a
    // minute: only the change events of other nodes tell it sooner
    let mnt = tempfile::tempdir().unwrap();
    let mnt_s = mnt.path().to_str().unwrap().to_owned();
    // dropped after the nodes: no dead mount is left behind
    let _unmount = cairn_tests::mount::Unmount(mnt.path().to_owned());
    let mut c = Cluster::new(4, 2).unwrap();
    c.spawn(0, &["--mount", &mnt_s, "--mount-attr-ttl-ms", "60000"])
        .unwrap();
    for i in 1..4 {
        c.spawn(i, &[]).unwrap();
    }
    for i in 0..4 {
        c.wait_ready(i).await.unwrap();
    }
    let put = |i: usize, target: &'static str, body: &'static [u8]| {
        let raw = c.raw(i);
        async move {
            let r = raw.send("PUT", target, &[], body).await.unwrap();
            assert_eq!(r.status, 200, "{target}: {}", r.describe());
        }
    };
    put(1, "/shared", b"").await;
    put(1, "/shared/f", b"first").await;
    let f = mnt.path().join("shared/f");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read(&f).ok().as_deref() != Some(&b"first"[..]) {
        assert!(Instant::now() < deadline, "the mount never showed f");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // replaced through node 3: node 1's mount shows it within a second
    put(2, "/shared/f", b"second, and longer").await;
    let t = Instant::now();
    while std::fs::read(&f).unwrap() != b"second, and longer" {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "node 1's mount still shows {:?}",
            String::from_utf8_lossy(&std::fs::read(&f).unwrap())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // node 4 has the bucket's configuration cached (a PUT read it);
    // versioning turned on through node 2 holds on node 4 at once
    put(3, "/shared/v", b"one").await;
    run(&mut c.aws(
        1,
        &[
            "s3api",
            "put-bucket-versioning",
            "--bucket",
            "shared",
            "--versioning-configuration",
            "Status=Enabled",
        ],
    ))
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    put(3, "/shared/v", b"two").await;
    put(3, "/shared/v", b"three").await;
    let out = run(&mut c.aws(
        0,
        &[
            "s3api",
            "list-object-versions",
            "--bucket",
            "shared",
            "--prefix",
            "v",
            "--query",
            "length(Versions)",
        ],
    ))
    .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.trim(), "3", "versions of v: {out}");

    // a user and its key made through node 1 sign requests on node 4
    run(&mut c.aws(0, &["iam", "create-user", "--user-name", "carol"])).unwrap();
    let key = run(&mut c.aws(0, &["iam", "create-access-key", "--user-name", "carol"])).unwrap();
    let key: serde_json::Value = serde_json::from_slice(&key.stdout).unwrap();
    let field = |f: &str| key["AccessKey"][f].as_str().unwrap().to_owned();
    let (ak, sk) = (field("AccessKeyId"), field("SecretAccessKey"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = run_status(
        c.aws(3, &["s3api", "list-objects-v2", "--bucket", "shared"])
            .env("AWS_ACCESS_KEY_ID", &ak)
            .env("AWS_SECRET_ACCESS_KEY", &sk),
    )
    .unwrap();
    // known on node 4 (no policy yet: refused as carol, not as a stranger)
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("AccessDenied"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_move_to_another_node_when_theirs_dies() {
    // the scanner runs where the services lease is
    let mut c = cluster_with(|_| vec!["--lock-ttl-secs", "2"]).await;
    const LEASE: &str = "holds the cluster's services lease";
    let holders = |c: &Cluster, but: Option<usize>| -> Vec<usize> {
        (0..4)
            .filter(|&i| Some(i) != but && c.log(i).contains(LEASE))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        if let [h] = holders(&c, None)[..] {
            break h;
        }
        assert!(Instant::now() < deadline, "no node took the services lease");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // kept while its node lives (refreshed past the lock's life)
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(holders(&c, None), vec![first]);
    c.kill(first).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let h = holders(&c, Some(first));
        assert!(h.len() <= 1, "two nodes took the lease: {h:?}");
        if h.len() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no other node took the services lease"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_through_a_front_over_every_node() {
    let c = Cluster::start(4, 2).await.unwrap();
    let buckets: Vec<String> = cairn_api::conformance::BUCKETS
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (i, b) in buckets.iter().enumerate() {
        let r = c
            .raw(i % 4)
            .send("PUT", &format!("/{b}"), &[], b"")
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{b}: {}", r.describe());
    }
    // a load balancer's round robin: each request to the next node
    let front = Front::start((0..4).map(|i| c.addr(i)).collect())
        .await
        .unwrap();
    let gw = cairn_gateway::cloud::s3_layer(
        Some(&format!("http://{}", front.addr)),
        "us-east-1",
        Some(&c.user),
        Some(&c.password),
        &buckets,
    )
    .unwrap();
    cairn_api::conformance::run_all(&gw).await;
    let served = front.served();
    assert!(served.iter().all(|&n| n >= 50), "{served:?}");
}
