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
use crate::{Certs, Server, StartOpts, free_port, random_token, raw};

/// A single-member etcd; killed on drop. `stop` and `start` keep its data
/// and ports.
pub struct Etcd {
    bin: PathBuf,
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    dir: tempfile::TempDir,
    starts: usize,
    /// A second client port speaking only TLS, with client certificates.
    tls: Option<(EtcdTlsFiles, u16)>,
}

/// etcd's certificate, key and the CA its clients' certificates must
/// chain to (PEM files).
#[derive(Clone, Debug)]
pub struct EtcdTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl Etcd {
    /// Starts etcd and waits (up to 30 s) until it answers.
    pub async fn start() -> Result<Etcd> {
        Self::start_with(None).await
    }

    /// [`Etcd::start`] with a TLS client port too ([`Etcd::tls_url`],
    /// `--client-cert-auth`); the plain port stays for the tests' reads.
    pub async fn start_with(tls: Option<EtcdTlsFiles>) -> Result<Etcd> {
        let bin = require_tool("etcd")?;
        let dir = tempfile::Builder::new().prefix("cairn-etcd-").tempdir()?;
        let tls = match tls {
            Some(t) => Some((t, free_port()?)),
            None => None,
        };
        let mut e = Etcd {
            bin,
            child: None,
            client_port: free_port()?,
            peer_port: free_port()?,
            dir,
            starts: 0,
            tls,
        };
        e.resume().await?;
        Ok(e)
    }

    /// `http://127.0.0.1:PORT`, the client URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// `https://127.0.0.1:PORT`, the TLS client URL, if there is one.
    pub fn tls_url(&self) -> Option<String> {
        self.tls
            .as_ref()
            .map(|(_, port)| format!("https://127.0.0.1:{port}"))
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
        let mut clients = self.url();
        let mut cmd = Command::new(&self.bin);
        if let (Some((t, _)), Some(u)) = (&self.tls, self.tls_url()) {
            clients = format!("{clients},{u}");
            cmd.arg(format!("--cert-file={}", t.cert.display()))
                .arg(format!("--key-file={}", t.key.display()))
                .arg(format!("--trusted-ca-file={}", t.ca.display()))
                .arg("--client-cert-auth");
        }
        let child = cmd
            .arg("--name=test")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={clients}"))
            .arg(format!("--advertise-client-urls={clients}"))
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
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        Self::start_on(Etcd::start().await?, n, &extra, None).await
    }

    /// Sites on `etcd` (its TLS URL when it has one), serving HTTPS with
    /// `certs` when given (public URLs `https://`).
    pub async fn start_on(
        etcd: Etcd,
        n: usize,
        extra: &[String],
        certs: Option<Certs>,
    ) -> Result<Sites> {
        let root = (format!("AK{}", random_token(14)), random_token(32));
        let etcd_url = etcd.tls_url().unwrap_or_else(|| etcd.url());
        let scheme = if certs.is_some() { "https" } else { "http" };
        let mut sites = Vec::new();
        for i in 0..n {
            let name = char::from(b'a' + u8::try_from(i)?).to_string();
            let port = free_port()?;
            let mut args = vec![
                "--federation-etcd".to_owned(),
                etcd_url.clone(),
                "--federation-site".to_owned(),
                name,
                "--federation-public-url".to_owned(),
                format!("{scheme}://127.0.0.1:{port}"),
            ];
            args.extend(extra.iter().cloned());
            sites.push(
                Server::start(StartOpts {
                    extra_args: args,
                    root: Some(root.clone()),
                    port: Some(port),
                    certs: certs.clone(),
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
