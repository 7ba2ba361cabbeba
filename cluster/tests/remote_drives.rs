#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! Erasure sets over drives of another node: half of each set's drives
//! are served by a storage RPC server on 127.0.0.2 (a real HTTP server,
//! as a peer node runs it) and reached only through `RemoteIo`. The
//! conformance suite passes; requests without the cluster's signature,
//! with another secret, or naming paths outside the node's drives are
//! refused; a peer that stops leaves reads working and writes refused
//! within the drive timeout.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_api::{
    BucketName, GetOptions, ObjectError, ObjectKey, ObjectLayer, PutOptions, bytes_stream,
    collect_stream,
};
use cairn_cluster::{Node, NodeKey, StorageServer};
use cairn_core::driveio::{DriveIo, IoFor, LocalIo};
use cairn_core::{ErasureSets, SetsConfig};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;

const SECRET: &str = "cairn-test:cluster-secret";

/// A peer node: its storage RPC server over `drives`, until dropped.
struct Peer {
    addr: SocketAddr,
    tasks: JoinSet<()>,
    /// While set, requests are taken and never answered (a paused node).
    paused: Arc<std::sync::atomic::AtomicBool>,
}

async fn serve(drives: Vec<PathBuf>, key: NodeKey, host: &str) -> Peer {
    let listener = tokio::net::TcpListener::bind((host, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Arc::new(StorageServer::new(&drives, key));
    let paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let p = paused.clone();
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        // dropped with this task: every connection ends with the peer
        let mut conns = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (server, paused) = (server.clone(), p.clone());
            let svc = hyper::service::service_fn(move |req| {
                let (server, paused) = (server.clone(), paused.clone());
                async move {
                    if paused.load(std::sync::atomic::Ordering::SeqCst) {
                        std::future::pending::<()>().await;
                    }
                    Ok::<_, std::convert::Infallible>(server.handle(req).await)
                }
            });
            conns.spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Peer {
        addr,
        tasks,
        paused,
    }
}

/// 8 drive folders; in 2 sets of 4, drives 1, 3, 5 and 7 are the peer's.
struct Layout {
    _tmp: tempfile::TempDir,
    real: Vec<PathBuf>,
}

fn layout() -> Layout {
    let tmp = tempfile::tempdir().unwrap();
    let real = (0..8).map(|i| tmp.path().join(format!("d{i}"))).collect();
    Layout { _tmp: tmp, real }
}

impl Layout {
    fn remote(&self) -> Vec<PathBuf> {
        self.real.iter().skip(1).step_by(2).cloned().collect()
    }

    /// The drive list a node is given (the peer's drives by their URL)
    /// and the sets' config reaching them through `RemoteIo`.
    fn config(&self, peer: SocketAddr, key: NodeKey) -> (Vec<PathBuf>, SetsConfig) {
        let base = format!("http://{peer}");
        let shown: Vec<PathBuf> = self
            .real
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if i % 2 == 1 {
                    PathBuf::from(format!("{base}{}", p.display()))
                } else {
                    p.clone()
                }
            })
            .collect();
        let node = Node::new(&base, key, tokio::runtime::Handle::current(), None);
        let (s, r) = (shown.clone(), self.real.clone());
        let io = IoFor::new(move |root| match s.iter().position(|p| p == root) {
            Some(i) if i % 2 == 1 => {
                let drive = r.get(i).unwrap().display().to_string();
                Arc::new(node.drive(&drive, root.to_path_buf())) as Arc<dyn DriveIo>
            }
            _ => LocalIo::shared(),
        });
        let cfg = SetsConfig {
            set_drive_count: Some(4),
            drive_io: io,
            ..Default::default()
        };
        (shown, cfg)
    }
}

async fn open(shown: Vec<PathBuf>, cfg: SetsConfig) -> Result<ErasureSets, cairn_core::SetupError> {
    tokio::task::spawn_blocking(move || ErasureSets::open(shown, cfg))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_conformance_suite_runs_on_sets_half_on_another_node() {
    let key = NodeKey::from_secret(SECRET);
    let l = layout();
    let peer = serve(l.remote(), key.clone(), "127.0.0.2").await;
    let (shown, cfg) = l.config(peer.addr, key);
    let sets = open(shown, cfg).await.unwrap();
    cairn_api::conformance::run_all(&sets).await;
    // objects of both sets are on the peer's drives, written there by
    // the peer (this node reached them only through RemoteIo)
    let b = BucketName::new("after").unwrap();
    sets.make_bucket(&b).await.unwrap();
    for i in 0..20 {
        let k = ObjectKey::new(format!("k{i}")).unwrap();
        let body = bytes_stream(Bytes::from(vec![7u8; 300_000]));
        sets.put_object(&b, &k, body, PutOptions::default())
            .await
            .unwrap();
    }
    for d in l.remote() {
        assert!(
            d.join(".cairn.sys/format.json").is_file(),
            "{}",
            d.display()
        );
        let keys = std::fs::read_dir(d.join("after")).unwrap().count();
        assert!(keys > 0, "{} holds none of the keys", d.display());
    }
}

/// A raw request to the peer, signed with `key` (or not at all).
async fn raw(peer: SocketAddr, key: Option<&NodeKey>, drive: &str, path: &str) -> (u16, String) {
    use cairn_cluster::auth::{Signed, now};
    use cairn_cluster::wire;
    let signed = Signed {
        op: "read",
        drive,
        path,
        ..Default::default()
    };
    let mut req = http::Request::post(format!("http://{peer}{}read", wire::DRIVE_PATH))
        .header(wire::H_DRIVE, wire::encode_path(drive))
        .header(wire::H_PATH, wire::encode_path(path));
    if let Some(k) = key {
        req = req.header(wire::H_AUTH, k.sign(&signed, now()));
    }
    let req = req.body(http_body_util::Full::new(Bytes::new())).unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_peer_refuses_unsigned_foreign_and_escaping_requests() {
    let key = NodeKey::from_secret(SECRET);
    let l = layout();
    let remote = l.remote();
    let drive = remote.first().unwrap();
    std::fs::create_dir_all(drive).unwrap();
    std::fs::write(drive.join("x"), b"secret bytes").unwrap();
    // a file beside the drive, which no path may reach
    std::fs::write(drive.parent().unwrap().join("beside"), b"not yours").unwrap();
    let peer = serve(remote.clone(), key.clone(), "127.0.0.2").await;
    let d = drive.display().to_string();

    let (status, body) = raw(peer.addr, Some(&key), &d, "x").await;
    assert_eq!((status, body.as_str()), (200, "secret bytes"));

    let (status, body) = raw(peer.addr, None, &d, "x").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not signed"), "{body}");

    let other = NodeKey::from_secret("another-cluster:secret");
    let (status, body) = raw(peer.addr, Some(&other), &d, "x").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("does not match"), "{body}");

    for escape in ["../beside", "a/../../beside", "/etc/passwd", "./x"] {
        let (status, body) = raw(peer.addr, Some(&key), &d, escape).await;
        assert_eq!(status, 400, "{escape}: {body}");
        assert!(!body.contains("not yours"), "{escape}");
    }
    // a folder that is not one of the node's drives
    let parent = drive.parent().unwrap().display().to_string();
    let (status, body) = raw(peer.addr, Some(&key), &parent, "beside").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no such drive"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_gone_leaves_reads_working_and_writes_refused_quickly() {
    let key = NodeKey::from_secret(SECRET);
    let l = layout();
    let mut peer = serve(l.remote(), key.clone(), "127.0.0.2").await;
    let (shown, cfg) = l.config(peer.addr, key);
    let sets = open(shown, cfg).await.unwrap();
    let b = BucketName::new("gone").unwrap();
    sets.make_bucket(&b).await.unwrap();
    let mut objs = Vec::new();
    for i in 0..16usize {
        let k = ObjectKey::new(format!("k{i}")).unwrap();
        let body = Bytes::from(vec![i as u8; 1000 + i * 100_000]);
        sets.put_object(&b, &k, bytes_stream(body.clone()), PutOptions::default())
            .await
            .unwrap();
        objs.push((k, body));
    }
    // the peer stops: half of every set's drives are gone
    peer.tasks.abort_all();
    while peer.tasks.join_next().await.is_some() {}
    for (k, body) in &objs {
        let t = Instant::now();
        let g = sets.get_object(&b, k, GetOptions::default()).await.unwrap();
        assert_eq!(&collect_stream(g.body).await.unwrap(), body, "{k}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{k}: {:?}",
            t.elapsed()
        );
    }
    let t = Instant::now();
    let err = sets
        .put_object(
            &b,
            &ObjectKey::new("new").unwrap(),
            bytes_stream(Bytes::from_static(b"x")),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::Unavailable { .. }), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // nothing of the refused write is readable
    let missing = sets
        .get_object(&b, &ObjectKey::new("new").unwrap(), GetOptions::default())
        .await;
    assert!(missing.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_peer_delays_no_read_past_the_drive_timeout() {
    let key = NodeKey::from_secret(SECRET);
    let l = layout();
    let peer = serve(l.remote(), key.clone(), "127.0.0.2").await;
    let (shown, cfg) = l.config(peer.addr, key);
    let sets = open(shown, cfg).await.unwrap();
    let b = BucketName::new("paused").unwrap();
    sets.make_bucket(&b).await.unwrap();
    let k = ObjectKey::new("k").unwrap();
    let body = Bytes::from(vec![3u8; 2_000_000]);
    sets.put_object(&b, &k, bytes_stream(body.clone()), PutOptions::default())
        .await
        .unwrap();
    // the node answers nothing more (as one stopped with SIGSTOP)
    peer.paused.store(true, std::sync::atomic::Ordering::SeqCst);
    for round in 0..3 {
        let t = Instant::now();
        let g = sets
            .get_object(&b, &k, GetOptions::default())
            .await
            .unwrap();
        assert_eq!(collect_stream(g.body).await.unwrap(), body);
        // the drive timeout is 3 s; its drives are marked and skipped after
        assert!(
            t.elapsed() < Duration::from_secs(7),
            "round {round}: {:?}",
            t.elapsed()
        );
    }
}
