//! Event notification targets for the tests: a webhook receiver (an HTTP
//! server in the test, stoppable), real Redis and NATS servers started on
//! free ports in temp folders, the server's `--notify-config` file, and
//! the S3 calls that set a bucket's rules.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};

use crate::{Server, StartOpts, err_code, free_port, new_bucket, require_tool};

/// One message a target received, with the `Authorization` header the
/// webhook got (None elsewhere).
#[derive(Debug, Clone)]
pub struct Received {
    pub auth: Option<String>,
    pub body: Value,
}

impl Received {
    /// The message's one record.
    pub fn record(&self) -> &Value {
        &self.body["Records"][0]
    }
    pub fn event_name(&self) -> &str {
        self.record()["eventName"].as_str().unwrap_or_default()
    }
    pub fn key(&self) -> &str {
        self.record()["s3"]["object"]["key"]
            .as_str()
            .unwrap_or_default()
    }
}

pub(crate) type Messages = Arc<parking_lot::Mutex<Vec<Received>>>;

/// An HTTP endpoint that records every POST (200), on a fixed port so it
/// can stop (the port closed: connections refused) and start again.
pub struct WebhookReceiver {
    pub port: u16,
    messages: Messages,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl WebhookReceiver {
    pub async fn start() -> Result<Self> {
        let mut r = Self {
            port: free_port()?,
            messages: Default::default(),
            task: None,
        };
        r.resume().await?;
        Ok(r)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/events", self.port)
    }

    /// Stops listening: new connections are refused.
    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn resume(&mut self) -> Result<()> {
        self.stop();
        let l = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .context("webhook bind")?;
        let messages = self.messages.clone();
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((sock, _)) = l.accept().await {
                let messages = messages.clone();
                // the connections go with the accept loop when it stops
                conns.spawn(async move {
                    let _ = serve_conn(sock, messages).await;
                });
            }
        }));
        Ok(())
    }

    pub fn messages(&self) -> Vec<Received> {
        self.messages.lock().clone()
    }

    /// Waits until `n` messages came (or fails after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Result<Vec<Received>> {
        wait_for(async || Ok(self.messages()), n, within).await
    }

    /// Waits until `done` holds for the messages received.
    pub async fn wait_until(
        &self,
        done: impl Fn(&[Received]) -> bool,
        within: Duration,
    ) -> Result<Vec<Received>> {
        wait_until(async || Ok(self.messages()), done, within).await
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve_conn(sock: tokio::net::TcpStream, messages: Messages) -> Result<()> {
    let (rd, mut wr) = sock.into_split();
    let mut rd = BufReader::new(rd);
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let (mut len, mut auth) = (0usize, None);
        loop {
            let mut h = String::new();
            rd.read_line(&mut h).await?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => len = value.trim().parse()?,
                    "authorization" => auth = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; len];
        rd.read_exact(&mut body).await?;
        let body: Value = serde_json::from_slice(&body).context("webhook body")?;
        messages.lock().push(Received { auth, body });
        wr.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await?;
    }
}

/// Polls `get` until `done` holds for what it returns.
pub async fn wait_until(
    mut get: impl AsyncFnMut() -> Result<Vec<Received>>,
    done: impl Fn(&[Received]) -> bool,
    within: Duration,
) -> Result<Vec<Received>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = get().await?;
        if done(&got) {
            return Ok(got);
        }
        if tokio::time::Instant::now() > deadline {
            let names: Vec<String> = got
                .iter()
                .map(|m| format!("{} {}", m.event_name(), m.key()))
                .collect();
            bail!("not there within {within:?}: {names:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `get` until it holds `n` messages.
pub async fn wait_for(
    get: impl AsyncFnMut() -> Result<Vec<Received>>,
    n: usize,
    within: Duration,
) -> Result<Vec<Received>> {
    wait_until(get, |m| m.len() >= n, within).await
}

/// Writes a `--notify-config` file of these targets (JSON values).
pub fn write_config(dir: &Path, targets: &[Value]) -> Result<PathBuf> {
    let p = dir.join("notify.json");
    std::fs::write(&p, serde_json::json!({ "targets": targets }).to_string())?;
    Ok(p)
}

/// Starts a target server process with its output dropped.
fn spawn_quiet(cmd: &mut Command) -> Result<Child> {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("{:?}", cmd.get_program()))
}

/// SIGKILLs a target server (a crash, not a shutdown) and reaps it.
fn kill(child: &mut Option<Child>) -> Result<()> {
    if let Some(mut c) = child.take() {
        c.kill()?;
        c.wait()?;
    }
    Ok(())
}

/// A real `redis-server` on a free port with its data in a temp folder
/// (append-only, so a restart keeps what it had).
pub struct Redis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    pub async fn start() -> Result<Self> {
        require_tool("redis-server")?;
        require_tool("redis-cli")?;
        let mut r = Self {
            port: free_port()?,
            dir: tempfile::tempdir()?,
            child: None,
        };
        r.resume().await?;
        Ok(r)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn resume(&mut self) -> Result<()> {
        let child = spawn_quiet(
            Command::new("redis-server")
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                ])
                .arg("--dir")
                .arg(self.dir.path()),
        )?;
        self.child = Some(child);
        for _ in 0..100 {
            if self.cli(&["PING"]).is_ok_and(|o| o.trim() == "PONG") {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("redis-server did not start on port {}", self.port)
    }

    pub fn stop(&mut self) -> Result<()> {
        kill(&mut self.child)
    }

    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!(
                "redis-cli {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// The messages in list `key`.
    pub fn list(&self, key: &str) -> Result<Vec<Received>> {
        let out = self.cli(&["LRANGE", key, "0", "-1"])?;
        out.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                Ok(Received {
                    auth: None,
                    body: serde_json::from_str(l).with_context(|| format!("redis item {l}"))?,
                })
            })
            .collect()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A real `nats-server` with JetStream, its store in a temp folder (kept
/// across a restart), on a free port.
pub struct NatsServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    pub async fn start() -> Result<Self> {
        require_tool("nats-server")?;
        let mut n = Self {
            port: free_port()?,
            dir: tempfile::tempdir()?,
            child: None,
        };
        n.resume().await?;
        Ok(n)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub async fn resume(&mut self) -> Result<()> {
        let child = spawn_quiet(
            Command::new("nats-server")
                .args([
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-js",
                    "-sd",
                ])
                .arg(self.dir.path()),
        )?;
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("nats-server did not start on port {}", self.port)
    }

    pub fn stop(&mut self) -> Result<()> {
        kill(&mut self.child)
    }

    /// Every message stored in JetStream stream `stream`, in order.
    pub async fn stream_messages(&self, stream: &str) -> Result<Vec<Received>> {
        let js = async_nats::jetstream::new(async_nats::connect(self.url()).await?);
        let mut s = js.get_stream(stream).await?;
        let n = s.info().await?.state.messages;
        let mut out = Vec::new();
        for seq in 1..=n {
            let m = s.get_raw_message(seq).await?;
            out.push(Received {
                auth: None,
                body: serde_json::from_slice(&m.payload)?,
            });
        }
        Ok(out)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

pub fn queue(
    id: &str,
    arn: &str,
    events: &[&str],
    prefix: Option<&str>,
) -> Result<QueueConfiguration> {
    let mut q = QueueConfiguration::builder().id(id).queue_arn(arn);
    for e in events {
        q = q.events(Event::from(*e));
    }
    if let Some(p) = prefix {
        q = q.filter(
            NotificationConfigurationFilter::builder()
                .key(
                    S3KeyFilter::builder()
                        .filter_rules(
                            FilterRule::builder()
                                .name(FilterRuleName::Prefix)
                                .value(p)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        );
    }
    Ok(q.build()?)
}

pub async fn set_rules(c: &Client, bucket: &str, rules: Vec<QueueConfiguration>) -> Result<()> {
    c.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .set_queue_configurations(Some(rules))
                .build(),
        )
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e:?}", err_code(&e)))?;
    Ok(())
}

pub const ALL: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectRemoved:*",
    "s3:ObjectTagging:*",
];

pub async fn server_with(
    targets: &[serde_json::Value],
    extra: &[&str],
) -> Result<(Server, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let cfg = write_config(dir.path(), targets)?;
    let mut args = vec!["--notify-config".to_string(), cfg.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let s = Server::start(StartOpts {
        extra_args: args,
        ..StartOpts::default()
    })
    .await?;
    Ok((s, dir))
}

/// A server with these targets and a bucket whose one rule ("all") sends
/// every created, removed and tagging event to `arn`.
pub async fn watched(
    targets: &[serde_json::Value],
    extra: &[&str],
    prefix: &str,
    arn: &str,
) -> Result<(Server, tempfile::TempDir, Client, String)> {
    let (s, dir) = server_with(targets, extra).await?;
    let c = s.s3();
    let b = new_bucket(&c, prefix).await?;
    set_rules(&c, &b, vec![queue("all", arn, ALL, None)?]).await?;
    Ok((s, dir, c, b))
}

pub async fn put(
    c: &Client,
    b: &str,
    k: &str,
    body: Vec<u8>,
) -> Result<aws_sdk_s3::operation::put_object::PutObjectOutput> {
    c.put_object()
        .bucket(b)
        .key(k)
        .body(ByteStream::from(body))
        .send()
        .await
        .with_context(|| format!("PUT {b}/{k}"))
}
