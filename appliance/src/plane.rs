//! This node's part of a running cluster: the internode server (storage
//! RPC, lockers, change events, node info), the connections to the other
//! nodes, and what the store is given from them: each drive's io, each
//! set's lockers, the relay of its change events. Also what `cairn admin
//! info` and `/metrics` show of the cluster.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cairn_api::ObjectLayer as _;
use cairn_api::admin::{Metric, MetricKind, MetricSample, NodeInfo};
use cairn_cluster::dlock::{LockStats, LockerAt, QuorumLocks};
use cairn_cluster::locker::{LockConfig, Lockers};
use cairn_cluster::relay::RelayStats;
use cairn_cluster::{Node, NodeKey, StorageServer};
use cairn_core::ErasureSets;
use cairn_core::driveio::{DriveIo, IoFor, LocalIo};
use cairn_core::locks::LocksFor;

use crate::cluster::{Topology, internode_addr};

/// How long a node may take to say how it is.
const INFO_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Plane {
    topology: Topology,
    server: Arc<StorageServer>,
    /// Every node's connections (this one's unused), in topology order.
    nodes: Vec<Node>,
    lockers: Arc<Lockers>,
    pub lock_cfg: LockConfig,
    lock_stats: Arc<LockStats>,
    relay: OnceLock<Arc<RelayStats>>,
    started: Instant,
}

impl Plane {
    /// Serves this node's drives and lockers to the others (before the
    /// store opens: the others need them to open theirs), then waits
    /// until every other node answers with the same arguments.
    pub async fn start(
        topology: &Topology,
        key: &NodeKey,
        digest: String,
        lock_cfg: LockConfig,
    ) -> anyhow::Result<Self> {
        let t = topology;
        let me = t.nodes.get(t.me).context("this node")?;
        let addr = internode_addr(me)?;
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("listening for the cluster on {addr}"))?;
        let local = listener.local_addr()?;
        let lockers = Arc::new(Lockers::new(lock_cfg.ttl));
        let server = StorageServer::new(&t.local, key.clone())
            .with_version(env!("CARGO_PKG_VERSION"))
            .with_hello(digest.clone())
            .with_lockers(lockers.clone());
        let server = Arc::new(server);
        tokio::spawn(cairn_cluster::server::serve(listener, server.clone()));
        tracing::info!(address = %local, drives = t.local.len(), "serving this node's drives to the cluster");
        t.wait_for_nodes(key, &digest).await?;
        Ok(Self {
            topology: t.clone(),
            server,
            nodes: t.connect(key)?,
            lockers,
            lock_cfg,
            lock_stats: Arc::default(),
            relay: OnceLock::new(),
            started: Instant::now(),
        })
    }

    /// Each drive's io: this node's own, or the storage RPC to its node.
    pub fn io_for(&self) -> IoFor {
        let t = &self.topology;
        let mut ios: Vec<(PathBuf, Arc<dyn DriveIo>)> = Vec::new();
        for (root, (node, path)) in t.roots.iter().zip(&t.drives) {
            let io: Arc<dyn DriveIo> = match self.nodes.get(*node) {
                Some(n) if *node != t.me => Arc::new(n.drive(path, root.clone())),
                _ => LocalIo::shared(),
            };
            ios.push((root.clone(), io));
        }
        IoFor::new(move |root| {
            ios.iter()
                .find(|(r, _)| r == root)
                .map(|(_, io)| io.clone())
                .unwrap_or_else(LocalIo::shared)
        })
    }

    /// Each set's lockers (timed as `cfg` says): its drives', this
    /// node's own or their nodes'.
    pub fn locks_for(&self, cfg: LockConfig) -> LocksFor {
        let t = &self.topology;
        let mut at: Vec<(PathBuf, LockerAt, String)> = Vec::new();
        for (root, (node, path)) in t.roots.iter().zip(&t.drives) {
            let (locker, served) = match self.nodes.get(*node) {
                Some(n) if *node != t.me => (LockerAt::Remote(n.clone()), path.clone()),
                // this node's drives are served by their paths as configured
                _ => (
                    LockerAt::Local(self.lockers.clone()),
                    root.display().to_string(),
                ),
            };
            at.push((root.clone(), locker, served));
        }
        let rt = tokio::runtime::Handle::current();
        let stats = self.lock_stats.clone();
        LocksFor::new(move |set_drives| {
            let drives = set_drives
                .iter()
                .filter_map(|d| at.iter().find(|(r, _, _)| r == d))
                .map(|(_, l, p)| (l.clone(), p.clone()))
                .collect();
            Arc::new(QuorumLocks::new(drives, cfg, rt.clone(), stats.clone()))
        })
    }

    /// Every drive of the cluster, as the store names them.
    pub fn roots(&self) -> &[PathBuf] {
        &self.topology.roots
    }

    /// Once the store is open: other nodes' changes drop its caches, and
    /// its own changes go to them.
    pub fn attach(&self, set: &Arc<ErasureSets>) {
        let s = set.clone();
        self.server.on_changes(Box::new(move |c| s.peer_change(c)));
        let Some(rx) = set.subscribe_changes() else {
            return;
        };
        let peers = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.topology.me)
            .map(|(_, n)| n.clone())
            .collect();
        let _ = self.relay.set(cairn_cluster::relay::start(rx, peers));
    }

    /// Each node: online (it answered within 2 s), its drives, version
    /// and uptime (this one answers for itself).
    pub async fn report(&self) -> Vec<NodeInfo> {
        let t = &self.topology;
        let asks =
            t.nodes
                .iter()
                .zip(&self.nodes)
                .enumerate()
                .map(|(i, (addr, node))| async move {
                    let mut row = NodeInfo {
                        address: addr.clone(),
                        state: "offline".into(),
                        drives: t.drives.iter().filter(|(n, _)| *n == i).count(),
                        version: None,
                        uptime_secs: None,
                    };
                    if i == t.me {
                        row.version = Some(env!("CARGO_PKG_VERSION").to_owned());
                        row.uptime_secs = Some(self.started.elapsed().as_secs());
                    } else if let Ok(Ok(p)) = tokio::time::timeout(INFO_TIMEOUT, node.info()).await
                    {
                        row.version = Some(p.version);
                        row.uptime_secs = Some(p.uptime_secs);
                    } else {
                        return row;
                    }
                    row.state = "online".into();
                    row
                });
        futures::future::join_all(asks).await
    }

    /// The cluster's families for `/metrics`: nodes online, locks, and
    /// change events sent to peers.
    pub async fn metrics(&self) -> Vec<Metric> {
        let online = self
            .report()
            .await
            .iter()
            .filter(|n| n.state == "online")
            .count() as u64;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let s = &self.lock_stats;
        let labelled = |label: &'static str, values: &[(&str, u64)]| -> Vec<MetricSample> {
            values
                .iter()
                .map(|(v, n)| MetricSample {
                    labels: vec![(label, (*v).to_owned())],
                    value: *n,
                })
                .collect()
        };
        let mut out = vec![
            Metric::single(
                "cairn_cluster_nodes",
                "Nodes of the cluster.",
                MetricKind::Gauge,
                self.nodes.len() as u64,
            ),
            Metric::single(
                "cairn_cluster_nodes_online",
                "Nodes that answered this node within 2 s.",
                MetricKind::Gauge,
                online,
            ),
            Metric {
                name: "cairn_cluster_locks_granted_total",
                help: "Cluster object locks this node was granted.",
                kind: MetricKind::Counter,
                samples: labelled(
                    "kind",
                    &[
                        ("read", get(&s.granted_read)),
                        ("write", get(&s.granted_write)),
                    ],
                ),
            },
            Metric {
                name: "cairn_cluster_locks_refused_total",
                help: "Cluster object locks this node was not granted.",
                kind: MetricKind::Counter,
                samples: labelled(
                    "reason",
                    &[("busy", get(&s.busy)), ("unreachable", get(&s.unreachable))],
                ),
            },
            Metric::single(
                "cairn_cluster_locks_lost_total",
                "Held locks whose quorum of lockers was lost.",
                MetricKind::Counter,
                get(&s.lost),
            ),
        ];
        if let Some(r) = self.relay.get() {
            out.push(Metric::single(
                "cairn_cluster_changes_sent_total",
                "Change events sent to other nodes.",
                MetricKind::Counter,
                get(&r.sent),
            ));
            out.push(Metric::single(
                "cairn_cluster_change_batches_dropped_total",
                "Batches of change events a node did not take.",
                MetricKind::Counter,
                get(&r.dropped),
            ));
        }
        out
    }
}
