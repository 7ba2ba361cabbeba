//! A cluster of real `cairn server` processes on 127.0.0.1, 127.0.0.2, ...
//! (one per loopback address, all on one port), each with its own drive
//! folders, started with the same drive URLs as users start theirs.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::{HEALTH_READY, READY_TIMEOUT, cairn_bin, random_token, raw};

pub struct Cluster {
    dir: tempfile::TempDir,
    pub port: u16,
    pub nodes: usize,
    pub drives_per_node: usize,
    pub user: String,
    pub password: String,
    children: Vec<Option<Child>>,
    starts: Vec<usize>,
    /// The drive arguments every node is given.
    pub args: Vec<String>,
}

/// A port free on each of the nodes' addresses, and the next one too
/// (where each node serves the storage RPC), outside the ephemeral range.
fn cluster_port(nodes: usize) -> Result<u16> {
    // below the kernel's ephemeral range: the nodes' own outgoing
    // connections (from 127.0.0.N, port 0) take ports from that range
    // and could hold a node's port on its address before it listens
    let below = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let range = 10_000u16..below.max(10_002).saturating_sub(1);
    'next: for _ in 0..200 {
        use rand::Rng as _;
        let port = rand::rng().random_range(range.clone());
        for i in 0..nodes {
            for p in [port, port.saturating_add(1)] {
                if std::net::TcpListener::bind((node_ip(i).as_str(), p)).is_err() {
                    continue 'next;
                }
            }
        }
        // no other test of this process gets either
        if crate::claim_ports(&[port, port.saturating_add(1)]) {
            return Ok(port);
        }
    }
    bail!("no port free on every node's address")
}

/// The cairn binary with none of this process's `CAIRN_*` variables.
fn bare_cairn() -> Result<Command> {
    let mut cmd = Command::new(cairn_bin()?);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CAIRN_") {
            cmd.env_remove(&k);
        }
    }
    Ok(cmd)
}

fn node_ip(i: usize) -> String {
    format!("127.0.0.{}", i + 1)
}

impl Cluster {
    /// `nodes` processes with `drives` drive folders each; returns once
    /// every node answers `/_cairn/health/ready`.
    pub async fn start(nodes: usize, drives: usize) -> Result<Cluster> {
        let mut c = Self::new(nodes, drives)?;
        for i in 0..nodes {
            c.spawn(i, &[])?;
        }
        for i in 0..nodes {
            c.wait_ready(i).await?;
        }
        Ok(c)
    }

    /// The cluster's folders and arguments, no node started.
    pub fn new(nodes: usize, drives: usize) -> Result<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix("cairn-cluster-")
            .tempdir()?;
        let port = cluster_port(nodes)?;
        let args = (0..nodes)
            .map(|i| {
                format!(
                    "http://{}:{port}{}/n{}/d{{1...{drives}}}",
                    node_ip(i),
                    dir.path().display(),
                    i + 1
                )
            })
            .collect();
        Ok(Cluster {
            dir,
            port,
            nodes,
            drives_per_node: drives,
            user: format!("AK{}", random_token(14)),
            password: random_token(32),
            children: (0..nodes).map(|_| None).collect(),
            starts: vec![0; nodes],
            args,
        })
    }

    /// Node `i`'s IP address (127.0.0.i+1).
    pub fn ip(&self, i: usize) -> String {
        node_ip(i)
    }

    /// The port every node serves the storage RPC on (and calls its peers on).
    pub fn internode_port(&self) -> u16 {
        self.port.saturating_add(1)
    }

    pub fn addr(&self, i: usize) -> String {
        format!("{}:{}", node_ip(i), self.port)
    }

    pub fn endpoint(&self, i: usize) -> String {
        format!("http://{}", self.addr(i))
    }

    /// Node `i`'s drive folders.
    pub fn drives(&self, i: usize) -> Vec<PathBuf> {
        (1..=self.drives_per_node)
            .map(|d| self.dir.path().join(format!("n{}/d{d}", i + 1)))
            .collect()
    }

    fn log_path(&self, i: usize) -> PathBuf {
        let n = self.starts.get(i).copied().unwrap_or(0);
        self.dir.path().join(format!("node{}-{n}.log", i + 1))
    }

    /// Node `i`'s output of its current run.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// Starts node `i` (with `extra` arguments before the drives).
    pub fn spawn(&mut self, i: usize, extra: &[&str]) -> Result<()> {
        if let Some(s) = self.starts.get_mut(i) {
            *s += 1;
        }
        let log = std::fs::File::create(self.log_path(i))?;
        let mut cmd = self.command(&self.addr(i), extra)?;
        cmd.stdout(log.try_clone()?).stderr(log);
        let child = cmd.spawn().context("spawn cairn server")?;
        if let Some(slot) = self.children.get_mut(i) {
            *slot = Some(child);
        }
        Ok(())
    }

    /// `cairn server --address ADDR EXTRA DRIVES` as every node runs it.
    pub fn command(&self, addr: &str, extra: &[&str]) -> Result<Command> {
        let mut cmd = bare_cairn()?;
        cmd.arg("server")
            .arg("--address")
            .arg(addr)
            .arg("--console")
            .arg("off")
            .args(extra)
            .args(&self.args)
            .env("CAIRN_ROOT_USER", &self.user)
            .env("CAIRN_ROOT_PASSWORD", &self.password)
            .env("RUST_LOG", "info")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        Ok(cmd)
    }

    /// Waits until node `i` answers ready, or fails with its output.
    pub async fn wait_ready(&mut self, i: usize) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(st) = self.exited(i)? {
                bail!("node {} exited with {st}:\n{}", i + 1, self.log(i));
            }
            if let Ok(r) = raw::get(&self.addr(i), HEALTH_READY).await
                && r.status == 200
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("node {} not ready in time:\n{}", i + 1, self.log(i));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Node `i`'s exit status, once it has exited.
    pub fn exited(&mut self, i: usize) -> Result<Option<std::process::ExitStatus>> {
        match self.children.get_mut(i).and_then(Option::as_mut) {
            Some(c) => Ok(c.try_wait()?),
            None => bail!("node {} was not started", i + 1),
        }
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        if let Some(mut c) = self.children.get_mut(i).and_then(Option::take) {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Sends node `i` a signal (`STOP`, `CONT`) by `kill`.
    pub fn signal(&self, i: usize, sig: &str) -> Result<()> {
        let Some(c) = self.children.get(i).and_then(Option::as_ref) else {
            bail!("node {} is not running", i + 1);
        };
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(c.id().to_string())
            .status()?;
        if !st.success() {
            bail!("kill -{sig} node {} failed", i + 1);
        }
        Ok(())
    }

    /// Waits (up to 20 s) until `/_cairn/health/cluster` through node `i`
    /// answers `status` with a body that says `shows` (the set's drives
    /// against its write quorum).
    pub async fn health_shows(&self, i: usize, status: u16, shows: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = raw::get(&self.addr(i), "/_cairn/health/cluster").await;
            let last = match r {
                Ok(r) if r.status == status && r.text().contains(shows) => return Ok(()),
                Ok(r) => format!("{} {}", r.status, r.text()),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                bail!("node {} health is {last}, not {status} with {shows}", i + 1);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A raw signed client of node `i` (root credentials).
    pub fn raw(&self, i: usize) -> raw::Client {
        let creds = raw::Creds {
            access_key: self.user.clone(),
            secret_key: self.password.clone(),
        };
        raw::Client::new(self.addr(i), Some(creds))
    }

    /// `cairn admin ARGS` against node `i`, with the root credentials.
    pub fn admin(&self, i: usize, args: &[&str]) -> Result<Command> {
        let mut cmd = bare_cairn()?;
        cmd.env("CAIRN_ROOT_USER", &self.user)
            .env("CAIRN_ROOT_PASSWORD", &self.password)
            .arg("admin")
            .arg("--endpoint")
            .arg(self.endpoint(i))
            .args(args)
            .stdin(Stdio::null());
        Ok(cmd)
    }

    /// awscli against node `i`, with the cluster's root credentials.
    pub fn aws(&self, i: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new("aws");
        cmd.arg("--endpoint-url")
            .arg(self.endpoint(i))
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &self.user)
            .env("AWS_SECRET_ACCESS_KEY", &self.password)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_MAX_ATTEMPTS", "1");
        cmd
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().filter_map(Option::as_mut) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
