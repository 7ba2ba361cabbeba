//! `cairn server http://10.0.0.{1...4}:9000/srv/d{1...2}`: drives as URLs
//! make a cluster. Every node runs the same command; a node finds its own
//! drives by its `--address`, serves them to the others through the
//! storage RPC (`cairn-cluster`) on its address's port + 1, and reaches
//! theirs through `RemoteIo`. Before opening the sets a node waits for
//! every other node to answer (naming whom it waits for), refuses a node
//! started with other drive arguments, and, on a first start, leaves the
//! formatting to the node that holds the first drive.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use cairn_cluster::{Node, NodeKey};
use cairn_core::driveio::IoFor;
use sha2::{Digest as _, Sha256};

/// The drives of a cluster as this node sees them.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Every drive as the store names it: this node's by their paths,
    /// others' by their URLs (unique in the cluster).
    pub roots: Vec<PathBuf>,
    /// This node's drive folders.
    pub local: Vec<PathBuf>,
    /// Per drive: the node (index in `nodes`) and its path there.
    pub(crate) drives: Vec<(usize, String)>,
    /// Each node's S3 address (`host:port`), in the order drives name them.
    pub nodes: Vec<String>,
    /// This node's index in `nodes`.
    pub me: usize,
}

/// `host:port` and the path of a drive URL.
fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("drive {url}: only http:// drive URLs are supported"))?;
    let (host, path) = rest
        .split_once('/')
        .with_context(|| format!("drive {url}: no folder after the host"))?;
    if host.is_empty() || !host.contains(':') {
        bail!("drive {url}: give the node as host:port");
    }
    Ok((host.to_owned(), format!("/{path}")))
}

/// Whether the node `host:port` is this one (listening on `address`).
fn is_me(host: &str, address: SocketAddr) -> bool {
    match host.parse::<SocketAddr>() {
        Ok(a) => a == address || (address.ip().is_unspecified() && a.port() == address.port()),
        Err(_) => false,
    }
}

/// The cluster the drive arguments describe, or None for local drives.
pub fn topology(drives: &[String], address: SocketAddr) -> anyhow::Result<Option<Topology>> {
    let urls = drives.iter().filter(|d| d.contains("://")).count();
    if urls == 0 {
        return Ok(None);
    }
    if urls != drives.len() {
        bail!("give every drive as a URL (http://host:port/folder) or none: a cluster cannot mix");
    }
    let mut t = Topology {
        roots: Vec::new(),
        local: Vec::new(),
        drives: Vec::new(),
        nodes: Vec::new(),
        me: usize::MAX,
    };
    for d in drives {
        let (host, path) = split_url(d)?;
        let node = match t.nodes.iter().position(|n| *n == host) {
            Some(i) => i,
            None => {
                t.nodes.push(host.clone());
                t.nodes.len() - 1
            }
        };
        if is_me(&host, address) {
            t.me = node;
            t.local.push(PathBuf::from(&path));
            t.roots.push(PathBuf::from(&path));
        } else {
            t.roots.push(PathBuf::from(d));
        }
        t.drives.push((node, path));
    }
    if t.me == usize::MAX {
        bail!(
            "none of the drives is on this node ({address}): the drive URLs name {}; \
             start each node with --address set to its own host:port",
            t.nodes.join(", ")
        );
    }
    Ok(Some(t))
}

/// Where a node serves the storage RPC: its S3 port + 1.
pub(crate) fn internode_addr(host: &str) -> anyhow::Result<String> {
    let (h, port) = host.rsplit_once(':').context("host:port")?;
    let port: u16 = port.parse().context("port")?;
    let next = port.checked_add(1).context("the S3 port is the last one")?;
    Ok(format!("{h}:{next}"))
}

/// The cluster secret: `CAIRN_CLUSTER_SECRET`, else the root credentials.
pub fn key(access_key: &str, secret_key: &str) -> NodeKey {
    match std::env::var("CAIRN_CLUSTER_SECRET") {
        Ok(s) if !s.is_empty() => NodeKey::from_secret(&s),
        _ => NodeKey::from_secret(&format!("{access_key}\0{secret_key}")),
    }
}

impl Topology {
    /// This node's IP address when `--address` names one (not a name, not
    /// 0.0.0.0): calls to other nodes leave from it.
    fn source_ip(&self) -> Option<std::net::IpAddr> {
        let me = self.nodes.get(self.me)?;
        let (host, _) = me.rsplit_once(':')?;
        let ip: std::net::IpAddr = host.trim_matches(['[', ']']).parse().ok()?;
        (!ip.is_unspecified()).then_some(ip)
    }

    /// What every node must have been started with alike.
    pub fn digest(
        &self,
        drives: &[String],
        parity: Option<usize>,
        per_set: Option<usize>,
    ) -> String {
        let mut h = Sha256::new();
        for d in drives {
            h.update(d.as_bytes());
            h.update(b"\0");
        }
        h.update(format!("{parity:?}/{per_set:?}").as_bytes());
        hex::encode(h.finalize())
    }

    /// The connections to every node (this one's too, unused), in order.
    pub fn connect(&self, key: &NodeKey) -> anyhow::Result<Vec<Node>> {
        let rt = tokio::runtime::Handle::current();
        self.nodes
            .iter()
            .map(|n| {
                let base = format!("http://{}", internode_addr(n)?);
                Ok(Node::new(&base, key.clone(), rt.clone(), self.source_ip()))
            })
            .collect()
    }

    /// Waits until every other node answers and agrees on the arguments.
    pub async fn wait_for_nodes(&self, key: &NodeKey, digest: &str) -> anyhow::Result<()> {
        let rt = tokio::runtime::Handle::current();
        for (i, n) in self.nodes.iter().enumerate() {
            if i == self.me {
                continue;
            }
            let node = Node::new(
                &format!("http://{}", internode_addr(n)?),
                key.clone(),
                rt.clone(),
                self.source_ip(),
            );
            // which of two disagreeing nodes is wrong cannot be told
            // here: each says so (once per kind of answer) and waits for
            // the other to be started again
            let mut said = None;
            loop {
                let e = match node.hello(digest).await {
                    Ok(()) => break,
                    Err(e) => e,
                };
                let kind = e.kind();
                if said != Some(kind) {
                    match kind {
                        std::io::ErrorKind::InvalidInput => tracing::error!(
                            node = %n,
                            "node {n} was started with other drive arguments (or parity, or \
                             set size): start every node with the same ones; waiting"
                        ),
                        std::io::ErrorKind::PermissionDenied => tracing::error!(
                            node = %n, error = %e,
                            "node {n} refuses this node's signature: another cluster secret \
                             (CAIRN_CLUSTER_SECRET, or the root credentials)? waiting"
                        ),
                        _ => tracing::warn!(node = %n, error = %e, "waiting for node {n} to start"),
                    }
                    said = Some(kind);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            tracing::info!(node = %n, "node answers");
        }
        Ok(())
    }

    /// On a first start, waits until the node holding the first drive has
    /// formatted the drives (nodes formatting at once would each choose
    /// another deployment).
    pub async fn wait_for_format(&self, io: &IoFor) -> anyhow::Result<()> {
        let Some((first, _)) = self.drives.first() else {
            return Ok(());
        };
        if *first == self.me {
            return Ok(());
        }
        let who = self.nodes.get(*first).cloned().unwrap_or_default();
        let root = self.roots.first().cloned().context("a drive")?;
        let mut said = false;
        loop {
            let (io2, root2) = (io.clone(), root.clone());
            let f = tokio::task::spawn_blocking(move || io2.drive(0, root2).read_format()).await?;
            if let Ok(Some(_)) = f {
                return Ok(());
            }
            if !said {
                tracing::info!(node = %who, "waiting for node {who} to format the drives");
                said = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    #[test]
    fn a_node_finds_its_drives_by_its_address() {
        let drives: Vec<String> =
            crate::drives::expand_all(&["http://127.0.0.{1...2}:9000/srv/d{1...2}".to_owned()])
                .unwrap_or_default();
        let t = topology(&drives, addr("127.0.0.2:9000")).ok().flatten();
        let Some(t) = t else { panic!("a topology") };
        assert_eq!(t.nodes, ["127.0.0.1:9000", "127.0.0.2:9000"]);
        assert_eq!(t.me, 1);
        assert_eq!(
            t.local,
            [PathBuf::from("/srv/d1"), PathBuf::from("/srv/d2")]
        );
        assert_eq!(
            t.roots,
            [
                PathBuf::from("http://127.0.0.1:9000/srv/d1"),
                PathBuf::from("http://127.0.0.1:9000/srv/d2"),
                PathBuf::from("/srv/d1"),
                PathBuf::from("/srv/d2"),
            ]
        );
        let wrong = topology(&drives, addr("127.0.0.5:9000")).unwrap_err();
        assert!(
            wrong
                .to_string()
                .contains("none of the drives is on this node"),
            "{wrong}"
        );
        let mixed = topology(
            &["/srv/a".into(), "http://h:1/b".into()],
            addr("127.0.0.1:1"),
        );
        assert!(mixed.is_err());
        assert!(
            topology(&["/srv/a".into()], addr("127.0.0.1:1"))
                .unwrap()
                .is_none()
        );
        assert!(split_url("https://h:1/a").is_err());
        assert!(split_url("http://h/a").is_err());
        assert_eq!(internode_addr("127.0.0.1:9000").unwrap(), "127.0.0.1:9001");
    }
}
