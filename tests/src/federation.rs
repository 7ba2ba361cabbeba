//! Federation fixtures: a real etcd (Debian's `etcd-server`, on free
//! loopback ports, a temporary data folder) and sites, real `cairn server`
//! processes joined to it, sharing one root user.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;

use crate::cmd::require_tool;
use crate::{Server, StartOpts, free_port, random_token, raw};

/// A single-member etcd; killed on drop. `stop` and `start` keep its data
/// and ports.
pub struct Etcd {
    bin: PathBuf,
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    dir: tempfile::TempDir,
    starts: usize,
}

impl Etcd {
    /// Starts etcd and waits (up to 30 s) until it answers.
    pub async fn start() -> Result<Etcd> {
        let bin = require_tool("etcd")?;
        let dir = tempfile::Builder::new().prefix("cairn-etcd-").tempdir()?;
        let mut e = Etcd {
            bin,
            child: None,
            client_port: free_port()?,
            peer_port: free_port()?,
            dir,
            starts: 0,
        };
        e.resume().await?;
        Ok(e)
    }

    /// `http://127.0.0.1:PORT`, the client URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn log(&self) -> String {
        let p = self.dir.path().join(format!("etcd-{}.log", self.starts));
        std::fs::read_to_string(p).unwrap_or_default()
    }

    /// Starts the process again (after [`Etcd::stop`]) and waits for it.
    pub async fn resume(&mut self) -> Result<()> {
        self.starts += 1;
        let log = File::create(self.dir.path().join(format!("etcd-{}.log", self.starts)))?;
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(&self.bin)
            .arg("--name=test")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={}", self.url()))
            .arg(format!("--advertise-client-urls={}", self.url()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(c) = self.child.as_mut()
                && let Some(st) = c.try_wait()?
            {
                bail!("etcd exited with {st}:\n{}", self.log());
            }
            if let Ok(r) = raw::send_url("GET", &format!("{}/health", self.url()), &[], b"").await
                && r.status == 200
                && r.text().contains("true")
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("etcd not healthy after 30 s:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILLs etcd.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            c.wait()?;
        }
        Ok(())
    }

    /// Every key and value under `prefix`, through etcd's JSON gateway.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut end = prefix.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let body = serde_json::json!({
            "key": b64.encode(prefix),
            "range_end": b64.encode(&end),
        })
        .to_string();
        let r = raw::send_url(
            "POST",
            &format!("{}/v3/kv/range", self.url()),
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await?;
        if r.status != 200 {
            bail!("etcd range: {}", r.describe());
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body)?;
        let mut out = Vec::new();
        for kv in v["kvs"].as_array().into_iter().flatten() {
            let field = |f: &str| -> Result<String> {
                let s = kv[f].as_str().ok_or_else(|| anyhow!("no {f} in {kv}"))?;
                Ok(String::from_utf8(b64.decode(s)?)?)
            };
            out.push((field("key")?, field("value")?));
        }
        Ok(out)
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Several sites joined through one etcd, sharing a root user.
pub struct Sites {
    pub etcd: Etcd,
    pub sites: Vec<Server>,
}

impl Sites {
    /// etcd, then sites `a`, `b`, `c`... (`n` of them), each with
    /// `extra` arguments.
    pub async fn start(n: usize, extra: &[&str]) -> Result<Sites> {
        let etcd = Etcd::start().await?;
        let root = (format!("AK{}", random_token(14)), random_token(32));
        let mut sites = Vec::new();
        for i in 0..n {
            let name = char::from(b'a' + u8::try_from(i)?).to_string();
            let port = free_port()?;
            let mut args = vec![
                "--federation-etcd".to_owned(),
                etcd.url(),
                "--federation-site".to_owned(),
                name,
                "--federation-public-url".to_owned(),
                format!("http://127.0.0.1:{port}"),
            ];
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            sites.push(
                Server::start(StartOpts {
                    extra_args: args,
                    root: Some(root.clone()),
                    port: Some(port),
                    ..StartOpts::default()
                })
                .await?,
            );
        }
        let s = Sites { etcd, sites };
        s.wait_registered(n).await?;
        Ok(s)
    }

    /// Waits (up to 10 s) until `n` sites are registered in etcd.
    pub async fn wait_registered(&self, n: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let live = self.etcd.list("/cairn/sites/").await?.len();
            if live == n {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{live} sites registered, {n} expected");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn site(&self, i: usize) -> Result<&Server> {
        self.sites.get(i).ok_or_else(|| anyhow!("no site {i}"))
    }
}
