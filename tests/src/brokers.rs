//! Real message brokers and a database as notification targets, each a
//! Debian server started by the test on free ports in a temp folder
//! (never a system service): mosquitto, rabbitmq-server and PostgreSQL.
//! Each runs in its own process group, so stopping it (SIGKILL, a crash)
//! takes its helpers too; its data stays for the restart.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;

use crate::free_port;
use crate::notify::Received;

/// A server process in its own group, killed with its group.
struct Group(Option<Child>);

impl Group {
    fn spawn(cmd: &mut Command, log: &Path) -> Result<Self> {
        let out = std::fs::File::create(log)?;
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("{:?}", cmd.get_program()))?;
        Ok(Self(Some(child)))
    }

    fn stop(&mut self, signal: Signal) -> Result<()> {
        if let Some(mut c) = self.0.take() {
            let group = Pid::from_raw(i32::try_from(c.id())?);
            let _ = killpg(group, signal);
            c.wait()?;
            // the group's other processes (helpers) go too
            let _ = killpg(group, Signal::SIGKILL);
        }
        Ok(())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = self.stop(Signal::SIGKILL);
    }
}

/// Waits until `port` on 127.0.0.1 takes connections.
async fn listening(what: &str, port: u16, log: &Path, within: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    bail!("{what} did not listen on port {port} within {within:?}: {log}")
}

fn tool(path: &str) -> Result<PathBuf> {
    let p = PathBuf::from(path);
    if p.is_absolute() {
        anyhow::ensure!(p.exists(), "{path} is missing (scripts/test installs it)");
        return Ok(p);
    }
    crate::require_tool(path)
}

/// A message of a target's, parsed.
fn received(body: &[u8]) -> Result<Received> {
    Ok(Received {
        auth: None,
        body: serde_json::from_slice::<Value>(body).context("a message's JSON")?,
    })
}

/// A real `mosquitto` (MQTT 3.1.1/5), anonymous, with persistence (a
/// stop is a SIGTERM: it saves its sessions).
pub struct Mosquitto {
    pub port: u16,
    dir: tempfile::TempDir,
    proc: Group,
}

impl Mosquitto {
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut m = Self {
            port: free_port()?,
            dir,
            proc: Group(None),
        };
        let conf = format!(
            "listener {} 127.0.0.1\nallow_anonymous true\nuser root\npersistence true\npersistence_location {}/\n",
            m.port,
            m.dir.path().display()
        );
        std::fs::write(m.dir.path().join("mosquitto.conf"), conf)?;
        m.resume().await?;
        Ok(m)
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub async fn resume(&mut self) -> Result<()> {
        let log = self.dir.path().join("log");
        self.proc = Group::spawn(
            Command::new(tool("mosquitto")?)
                .arg("-c")
                .arg(self.dir.path().join("mosquitto.conf")),
            &log,
        )?;
        listening("mosquitto", self.port, &log, Duration::from_secs(20)).await
    }

    pub fn stop(&mut self) -> Result<()> {
        self.proc.stop(Signal::SIGTERM)
    }

    /// A subscriber to `topic` (QoS 1, a persistent session: what is
    /// published while it reconnects waits for it).
    pub async fn subscribe(&self, topic: &str) -> Result<MqttSubscriber> {
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
        let mut o = MqttOptions::new(format!("test-{}", self.port), "127.0.0.1", self.port);
        o.set_clean_session(false)
            .set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(o, 16);
        client.subscribe(topic, QoS::AtLeastOnce).await?;
        let got: crate::notify::Messages = Default::default();
        let messages = got.clone();
        let subscribed = std::sync::Arc::new(tokio::sync::Notify::new());
        let ready = subscribed.clone();
        let task = tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(r) = received(&p.payload) {
                            messages.lock().push(r);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => ready.notify_one(),
                    Ok(_) => {}
                    // the broker is away: connect again
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed.notified())
            .await
            .context("no SUBACK from mosquitto")?;
        Ok(MqttSubscriber { got, task })
    }
}

/// Messages an MQTT subscription received.
pub struct MqttSubscriber {
    got: crate::notify::Messages,
    task: tokio::task::JoinHandle<()>,
}

impl MqttSubscriber {
    pub fn messages(&self) -> Vec<Received> {
        self.got.lock().clone()
    }
}

impl Drop for MqttSubscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A real `rabbitmq-server` node (its own name, ports, Mnesia folder and
/// cookie), the guest user on loopback.
pub struct RabbitMq {
    pub port: u16,
    dist_port: u16,
    dir: tempfile::TempDir,
    proc: Group,
}

impl RabbitMq {
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n")?;
        let mut r = Self {
            port: free_port()?,
            dist_port: free_port()?,
            dir,
            proc: Group(None),
        };
        r.resume().await?;
        Ok(r)
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    pub async fn resume(&mut self) -> Result<()> {
        let d = self.dir.path();
        let log = d.join("startup.log");
        self.proc = Group::spawn(
            Command::new(tool("/usr/lib/rabbitmq/bin/rabbitmq-server")?)
                .env("HOME", d)
                .env("RABBITMQ_NODENAME", format!("cairn{}@localhost", self.port))
                .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
                .env("RABBITMQ_NODE_PORT", self.port.to_string())
                .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
                .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
                .env("RABBITMQ_LOG_BASE", d.join("log"))
                .env("RABBITMQ_PID_FILE", d.join("pid"))
                .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
                .env("RABBITMQ_CONFIG_FILE", d.join("none")),
            &log,
        )?;
        listening("rabbitmq-server", self.port, &log, Duration::from_secs(90)).await
    }

    pub fn stop(&mut self) -> Result<()> {
        self.proc.stop(Signal::SIGKILL)
    }

    /// A channel on a new connection.
    pub async fn channel(&self) -> Result<(lapin::Connection, lapin::Channel)> {
        let c =
            lapin::Connection::connect(&self.url(), lapin::ConnectionProperties::default()).await?;
        let ch = c.create_channel().await?;
        Ok((c, ch))
    }

    /// Declares a durable queue bound to `exchange` (fanout, durable).
    pub async fn bind_queue(&self, exchange: &str, queue: &str) -> Result<()> {
        use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
        use lapin::types::FieldTable;
        let (_c, ch) = self.channel().await?;
        ch.exchange_declare(
            exchange.into(),
            lapin::ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
        ch.queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
        ch.queue_bind(
            queue.into(),
            exchange.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        Ok(())
    }

    /// Every message in `queue`, taken from it (acknowledged).
    pub async fn take(&self, queue: &str) -> Result<Vec<Received>> {
        use lapin::options::BasicGetOptions;
        let (_c, ch) = self.channel().await?;
        let mut out = Vec::new();
        while let Some(m) = ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await?
        {
            out.push(received(&m.delivery.data)?);
        }
        Ok(out)
    }
}

/// A real PostgreSQL server (initdb'd in a temp folder, run as the
/// `postgres` user, trust authentication on loopback).
pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    proc: Group,
}

fn pg_bin(name: &str) -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("/usr/lib/postgresql is missing (scripts/test installs postgresql)")?
        .filter_map(|e| Some(e.ok()?.path().join("bin").join(name)))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .with_context(|| format!("no PostgreSQL {name} under /usr/lib/postgresql"))
}

fn as_postgres(bin: &Path) -> Result<Command> {
    let mut c = Command::new(tool("setpriv")?);
    c.args([
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        "--",
    ])
    .arg(bin);
    Ok(c)
}

impl Postgres {
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        crate::run(
            Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()),
        )?;
        let data = dir.path().join("data");
        crate::run(
            as_postgres(&pg_bin("initdb")?)?
                .args(["-A", "trust", "-U", "postgres", "-D"])
                .arg(&data),
        )?;
        let mut p = Self {
            port: free_port()?,
            dir,
            proc: Group(None),
        };
        p.resume().await?;
        Ok(p)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub async fn resume(&mut self) -> Result<()> {
        let d = self.dir.path();
        let log = d.join("log");
        self.proc = Group::spawn(
            as_postgres(&pg_bin("postgres")?)?
                .arg("-D")
                .arg(d.join("data"))
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-c",
                    "listen_addresses=127.0.0.1",
                ])
                .arg("-k")
                .arg(d),
            &log,
        )?;
        listening("postgres", self.port, &log, Duration::from_secs(30)).await?;
        // it listens before it takes queries
        for _ in 0..100 {
            if self.query("SELECT 1").await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("postgres took no query on port {}", self.port)
    }

    pub fn stop(&mut self) -> Result<()> {
        self.proc.stop(Signal::SIGKILL)
    }

    /// The rows of `sql`, each column as text (NULL: "").
    pub async fn query(&self, sql: &str) -> Result<Vec<Vec<String>>> {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls).await?;
        let task = tokio::spawn(conn);
        let mut out = Vec::new();
        for m in client.simple_query(sql).await? {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                out.push(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or_default().to_owned())
                        .collect(),
                );
            }
        }
        drop(client);
        let _ = task.await;
        Ok(out)
    }

    /// The JSON messages in column 0 of `sql`'s rows.
    pub async fn messages(&self, sql: &str) -> Result<Vec<Received>> {
        self.query(sql)
            .await?
            .iter()
            .map(|r| received(r.first().map_or("", |s| s.as_str()).as_bytes()))
            .collect()
    }
}
