#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Object locks across nodes: four nodes on 127.0.0.1-4, each serving
//! two drives' lockers over the internode RPC (real HTTP servers), and a
//! set of those eight drives locked from each node's side. A write lock
//! excludes every other lock from any node; read locks share; a fence
//! only grows from holder to holder; a holder that stops refreshing
//! loses its lock after the lockers' expiry, and a drive then refuses
//! its record under the old fence; with too few nodes up, asking fails
//! at once instead of waiting.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_cluster::dlock::{LockStats, LockerAt, QuorumLocks};
use cairn_cluster::locker::{LockConfig, Lockers};
use cairn_cluster::{Node, NodeKey, StorageServer};
use cairn_core::driveio::DriveIo;
use cairn_core::locks::{ClusterLocks, LockFailure, LockKind};
use cairn_core::meta::ObjectMeta;

const SECRET: &str = "cairn-test:lock-secret";
const NODES: usize = 4;

struct Cluster {
    /// Per node: its lockers, its address, its server task.
    lockers: Vec<Arc<Lockers>>,
    nodes: Vec<Node>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    /// Each node's drives (two each), as served.
    drives: Vec<Vec<PathBuf>>,
    /// What every node's askers did.
    stats: Arc<LockStats>,
    _tmp: tempfile::TempDir,
}

async fn cluster(ttl: Duration) -> Cluster {
    let tmp = tempfile::tempdir().unwrap();
    let key = NodeKey::from_secret(SECRET);
    let mut c = Cluster {
        lockers: Vec::new(),
        nodes: Vec::new(),
        servers: Vec::new(),
        drives: Vec::new(),
        stats: Arc::default(),
        _tmp: tempfile::tempdir().unwrap(),
    };
    for i in 0..NODES {
        let drives: Vec<PathBuf> = (0..2)
            .map(|j| {
                let d = tmp.path().join(format!("n{i}d{j}"));
                std::fs::create_dir_all(&d).unwrap();
                d
            })
            .collect();
        let lockers = Arc::new(Lockers::new(ttl));
        let host = format!("127.0.0.{}", i + 1);
        let listener = tokio::net::TcpListener::bind((host.as_str(), 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let server = StorageServer::new(&drives, key.clone()).with_lockers(lockers.clone());
        c.servers.push(tokio::spawn(cairn_cluster::server::serve(
            listener,
            Arc::new(server),
        )));
        c.nodes.push(Node::new(
            &format!("http://{addr}"),
            key.clone(),
            tokio::runtime::Handle::current(),
            None,
        ));
        c.lockers.push(lockers);
        c.drives.push(drives);
    }
    c._tmp = tmp;
    c
}

impl Cluster {
    /// The set of all eight drives, locked from node `me`'s side.
    fn locks(&self, me: usize, cfg: LockConfig) -> QuorumLocks {
        let mut drives = Vec::new();
        for (i, ds) in self.drives.iter().enumerate() {
            for d in ds {
                let at = if i == me {
                    LockerAt::Local(self.lockers[i].clone())
                } else {
                    LockerAt::Remote(self.nodes[i].clone())
                };
                drives.push((at, d.display().to_string()));
            }
        }
        QuorumLocks::new(
            drives,
            cfg,
            tokio::runtime::Handle::current(),
            self.stats.clone(),
        )
    }

    /// Stops node `i` (its server and every connection to it).
    fn kill(&self, i: usize) {
        self.servers[i].abort();
    }
}

fn quick() -> LockConfig {
    LockConfig {
        wait: Duration::from_millis(300),
        ..LockConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_lock_excludes_every_node_and_fences_grow() {
    let c = cluster(Duration::from_secs(30)).await;
    let (n0, n1, n2, n3) = (
        c.locks(0, quick()),
        c.locks(1, quick()),
        c.locks(2, quick()),
        c.locks(3, quick()),
    );
    let w0 = n0.lock("b/k", LockKind::Write).await.unwrap();
    let f0 = w0.fence();
    assert!(f0 > 0);
    assert!(matches!(
        n1.lock("b/k", LockKind::Write).await.err(),
        Some(LockFailure::Busy { .. })
    ));
    assert!(matches!(
        n2.lock("b/k", LockKind::Read).await.err(),
        Some(LockFailure::Busy { .. })
    ));
    // another object is free meanwhile
    let other = n1.lock("b/other", LockKind::Write).await.unwrap();
    drop(other);
    drop(w0);
    // released in the background: the next writer gets it, fenced higher
    let w1 = n1.lock("b/k", LockKind::Write).await.unwrap();
    assert!(w1.fence() > f0, "{} after {f0}", w1.fence());
    drop(w1);
    // readers share, from any node, and keep writers out
    let started = Instant::now();
    let r2 = loop {
        match n2.lock("b/k", LockKind::Read).await {
            Ok(r) => break r,
            Err(_) if started.elapsed() < Duration::from_secs(5) => {}
            Err(e) => panic!("read lock: {e}"),
        }
    };
    let r3 = n3.lock("b/k", LockKind::Read).await.unwrap();
    assert!(n0.lock("b/k", LockKind::Write).await.is_err());
    drop((r2, r3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_holder_loses_its_lock_and_its_commit_is_refused() {
    let c = cluster(Duration::from_millis(600)).await;
    // node 0 takes the lock, then stops refreshing it (a paused node)
    let paused = LockConfig {
        refresh: Duration::from_secs(3600),
        ..quick()
    };
    let stale = c
        .locks(0, paused)
        .lock("b/k", LockKind::Write)
        .await
        .unwrap();
    let waiting = LockConfig {
        wait: Duration::from_secs(5),
        ..LockConfig::default()
    };
    let started = Instant::now();
    let newer = c
        .locks(1, waiting)
        .lock("b/k", LockKind::Write)
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(4),
        "granted after {waited:?}"
    );
    assert!(newer.fence() > stale.fence());

    // the newer holder commits a record on node 2's drive; the paused
    // one's record, written after, is refused by the drive
    let drive = &c.drives[2][0];
    let io = c.nodes[2].drive(&drive.display().to_string(), drive.clone());
    let dest = drive.join("cairn.meta");
    let tmp = drive.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let record = |fence| {
        ObjectMeta {
            fence,
            ..Default::default()
        }
        .encode()
        .unwrap()
    };
    io.write_record(&tmp, &dest, &record(newer.fence()), true, newer.fence())
        .unwrap();
    let refused = io
        .write_record(&tmp, &dest, &record(stale.fence()), true, stale.fence())
        .unwrap_err();
    assert!(refused.to_string().contains("newer holder"), "{refused}");
    let kept = std::fs::read(&dest).unwrap();
    assert_eq!(ObjectMeta::fence_of(&kept), newer.fence());
    // unfenced writes (one node, or heal) are not checked
    io.write_record(&tmp, &dest, &record(newer.fence()), true, 0)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_nodes_fail_at_once_and_reads_need_fewer() {
    let c = cluster(Duration::from_secs(30)).await;
    let n0 = c.locks(0, LockConfig::default());
    c.kill(2);
    // 6 of 8 lockers: both kinds still granted
    drop(n0.lock("b/k", LockKind::Write).await.unwrap());
    c.kill(3);
    // 4 of 8: a write needs 5, a read 4
    let started = Instant::now();
    let e = n0.lock("b/k2", LockKind::Write).await.err();
    assert!(
        matches!(e, Some(LockFailure::Unreachable { needed: 5, got: 4 })),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let r = n0.lock("b/k2", LockKind::Read).await.unwrap();
    assert_eq!(r.fence(), 0);
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(count(&c.stats.unreachable), 1);
    assert_eq!(count(&c.stats.granted_read), 1);
    assert_eq!(count(&c.stats.granted_write), 1);
    drop(r);
    c.kill(1);
    let started = Instant::now();
    assert!(matches!(
        n0.lock("b/k3", LockKind::Read).await.err(),
        Some(LockFailure::Unreachable { needed: 4, got: 2 })
    ));
    assert!(started.elapsed() < Duration::from_secs(3));
}
