//! End-to-end test harness for Cairn.
//!
//! [`Server::start`] runs the real `cairn` binary on a free loopback port, over
//! fresh drive folders in a temporary directory, with fresh root credentials,
//! and waits until `/_cairn/health/ready` answers 200. The tests then drive it with
//! real clients: `aws-sdk-s3` ([`Server::s3`]), raw signed HTTP requests
//! ([`raw`]) where the SDK would normalise what we want to send, and the
//! command line tools awscli, rclone and s3cmd ([`Server::tool`]), each
//! configured by files inside the server's temporary directory only.
//!
//! Nothing here skips: a missing tool or binary is a test failure.

pub mod boto;
pub mod brokers;
pub mod browser;
pub mod cluster;
pub mod cmd;
pub mod console;
pub mod data;
pub mod emulators;
pub mod federation;
pub mod front;
pub mod gateways;
pub mod history;
pub mod lock;
pub mod metrics;
pub mod mount;
pub mod multipart;
pub mod netfault;
pub mod nfs3;
pub mod nfs_server;
pub mod notify;
pub mod oidc;
pub mod openbao;
pub mod raw;
pub mod rw_model;
pub mod sse;
pub mod tls;
pub mod tmpfs;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_s3::config::{Credentials, Region};

pub use cmd::{require_tool, run, run_status};

/// The region the server serves.
pub const REGION: &str = "us-east-1";

/// The credentials `cairn server` serves on loopback when none are set.
pub const DEFAULT_USER: &str = "cairnadmin";
pub const DEFAULT_PASSWORD: &str = "cairnadmin";

/// How long a server may take to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The server's own endpoints: under `/_cairn/`, a name no bucket can have.
pub const HEALTH_LIVE: &str = "/_cairn/health/live";
pub const HEALTH_READY: &str = "/_cairn/health/ready";
pub const METRICS: &str = "/_cairn/metrics";
pub const ADMIN_API: &str = "/_cairn/admin/v1/";

/// Path of the `cairn` binary: `$CAIRN_BIN`, else `<target>/release/cairn`
/// found by walking up from this test executable (`<target>/release/deps/`).
pub fn cairn_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("CAIRN_BIN") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("CAIRN_BIN={} is not a file", p.display());
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("current_exe")?;
    for dir in exe.ancestors().skip(1) {
        let cand = dir.join("cairn");
        if cand.is_file() && dir.file_name().is_some_and(|n| n == "release") {
            return Ok(cand);
        }
        let cand = dir.join("release").join("cairn");
        if cand.is_file() {
            return Ok(cand);
        }
    }
    bail!(
        "cairn binary not found from {} (build it with `cargo build --release -p cairn`, or set CAIRN_BIN)",
        exe.display()
    )
}

/// Options for [`Server::start`].
#[derive(Debug, Clone)]
pub struct StartOpts {
    /// Number of drive folders (`<tmp>/d1 .. dN`).
    pub drives: usize,
    /// `--parity M`, or the server's default.
    pub parity: Option<usize>,
    /// Extra arguments after `server`.
    pub extra_args: Vec<String>,
    /// Extra environment for the server process.
    pub env: Vec<(String, String)>,
    /// Name the drives with one `<tmp>/d{1...N}` argument instead of N paths.
    pub ellipsis: bool,
    /// Start `cairn gateway ARGS...` (e.g. `["nas", "/srv/share"]`)
    /// instead of `cairn server` over drive folders; `drives`, `parity`
    /// and `ellipsis` are then unused.
    pub gateway: Option<Vec<String>>,
    /// The README's first command: `cairn server` with no drive arguments
    /// (the embedded default, `./cairn-data` in the server's working
    /// folder) and no credentials in the environment (the built-in
    /// default pair, served on loopback only); `drives` is then unused.
    pub embedded: bool,
    /// `--certs-dir DIR`: the server speaks HTTPS; readiness is probed,
    /// and [`Server::endpoint`] and the tool configs point, over HTTPS
    /// trusting `ca` (the default certificate must be valid for
    /// 127.0.0.1, and for the non-loopback address with `any_address`).
    pub certs: Option<Certs>,
    /// Listen on 0.0.0.0 (every address) instead of 127.0.0.1.
    pub any_address: bool,
    /// This root user (access key, secret) instead of a random one
    /// (servers that must accept each other's clients: federation).
    pub root: Option<(String, String)>,
    /// This port instead of a free one picked at start (when other
    /// arguments must name it).
    pub port: Option<u16>,
}

/// A certificates folder and the CA that signed its certificates.
#[derive(Debug, Clone)]
pub struct Certs {
    pub dir: PathBuf,
    pub ca: PathBuf,
}

impl Default for StartOpts {
    fn default() -> Self {
        Self {
            drives: 4,
            parity: None,
            extra_args: Vec::new(),
            env: Vec::new(),
            ellipsis: false,
            gateway: None,
            embedded: false,
            certs: None,
            any_address: false,
            root: None,
            port: None,
        }
    }
}

impl StartOpts {
    pub fn drives(n: usize) -> Self {
        Self {
            drives: n,
            ..Self::default()
        }
    }

    /// `cairn gateway ARGS...` (see [`StartOpts::gateway`]).
    pub fn gateway<S: Into<String>>(args: impl IntoIterator<Item = S>) -> Self {
        Self {
            drives: 0,
            gateway: Some(args.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }
}

/// A running `cairn server` over its own drive folders.
pub struct Server {
    dir: tempfile::TempDir,
    drives: Vec<PathBuf>,
    port: u16,
    user: String,
    password: String,
    opts: StartOpts,
    child: Option<Child>,
    starts: usize,
    /// With `CAIRN_TEST_CLUSTER=NxD`: the cluster behind this "server".
    cluster: Option<ClusterFront>,
}

/// A cluster of N nodes x D drives behind a round-robin front: what
/// `Server::start` runs instead of one process when `CAIRN_TEST_CLUSTER`
/// is `NxD` (e.g. `4x2`), so the client tests run against a cluster with
/// their requests spread over every node.
pub struct ClusterFront {
    pub nodes: cluster::Cluster,
    pub front: front::Front,
}

/// The cluster shape `CAIRN_TEST_CLUSTER` asks for, for servers the
/// cluster can stand in for (not gateways, TLS or the embedded default).
fn cluster_shape(opts: &StartOpts) -> Result<Option<(usize, usize)>> {
    let Ok(v) = std::env::var("CAIRN_TEST_CLUSTER") else {
        return Ok(None);
    };
    let plain = opts.gateway.is_none()
        && !opts.embedded
        && opts.certs.is_none()
        && opts.env.is_empty()
        && opts.port.is_none()
        && !opts.any_address;
    if !plain {
        return Ok(None);
    }
    let (n, d) = v
        .split_once('x')
        .with_context(|| format!("CAIRN_TEST_CLUSTER={v}: NODESxDRIVES"))?;
    Ok(Some((n.parse()?, d.parse()?)))
}

/// Ports this test process handed out: tests running at once never get
/// the same one (a port is free when it is chosen, not when a server
/// started later binds it).
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// Claims `ports` for one test: false when this process handed any out.
pub fn claim_ports(ports: &[u16]) -> bool {
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    if ports.iter().any(|p| handed.contains(p)) {
        return false;
    }
    handed.extend_from_slice(ports);
    true
}

/// A TCP port free on 127.0.0.1 now, and handed to no other test of
/// this process.
pub fn free_port() -> Result<u16> {
    for _ in 0..100 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        if claim_ports(&[port]) {
            return Ok(port);
        }
    }
    bail!("no free port that this process has not handed out")
}

pub fn random_token(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

impl Server {
    /// Starts a server with default options (4 drives, default parity).
    pub async fn start_default() -> Result<Server> {
        Self::start(StartOpts::default()).await
    }

    /// Makes a temporary directory with `opts.drives` drive folders, starts
    /// the binary on a free port and waits for `/_cairn/health/ready`.
    pub async fn start(opts: StartOpts) -> Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("cairn-e2e-")
            .tempdir()
            .context("tempdir")?;
        let drives: Vec<PathBuf> = if opts.embedded {
            (1..=4)
                .map(|i| dir.path().join(format!("cairn-data/drive{i}")))
                .collect()
        } else {
            (1..=opts.drives)
                .map(|i| dir.path().join(format!("d{i}")))
                .collect()
        };
        let (user, password) = if let Some(root) = &opts.root {
            root.clone()
        } else if opts.embedded {
            (DEFAULT_USER.to_owned(), DEFAULT_PASSWORD.to_owned())
        } else {
            (format!("AK{}", random_token(14)), random_token(32))
        };
        let mut s = Server {
            dir,
            drives,
            port: match opts.port {
                Some(p) => p,
                None => free_port()?,
            },
            user,
            password,
            opts,
            child: None,
            starts: 0,
            cluster: None,
        };
        if let Some((nodes, drives)) = cluster_shape(&s.opts)? {
            s.start_cluster(nodes, drives).await?;
            s.write_tool_configs()?;
            return Ok(s);
        }
        s.write_tool_configs()?;
        s.spawn_and_wait().await?;
        Ok(s)
    }

    /// Starts the cluster and its front; the front's port is this server's.
    async fn start_cluster(&mut self, nodes: usize, drives: usize) -> Result<()> {
        let mut c = cluster::Cluster::new(nodes, drives)?;
        c.user = self.user.clone();
        c.password = self.password.clone();
        let mut extra: Vec<String> = self.opts.extra_args.clone();
        if let Some(m) = self.opts.parity {
            extra.extend(["--parity".to_owned(), m.to_string()]);
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        for i in 0..nodes {
            c.spawn(i, &extra)?;
        }
        for i in 0..nodes {
            c.wait_ready(i).await?;
        }
        let front = front::Front::start((0..nodes).map(|i| c.addr(i)).collect()).await?;
        self.port = front.addr.port();
        self.cluster = Some(ClusterFront { nodes: c, front });
        Ok(())
    }

    /// The cluster behind this server (`CAIRN_TEST_CLUSTER`), if any.
    pub fn cluster(&self) -> Option<&ClusterFront> {
        self.cluster.as_ref()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("server-{}.log", self.starts))
    }

    /// The server's whole output (stdout and stderr) of its current run
    /// (every node's, one after the other, for a cluster).
    pub fn full_log(&self) -> String {
        match &self.cluster {
            Some(c) => (0..c.nodes.nodes)
                .map(|i| format!("--- node {} ---\n{}", i + 1, c.nodes.log(i)))
                .collect(),
            None => std::fs::read_to_string(self.log_path()).unwrap_or_default(),
        }
    }

    /// The last 60 lines of the server's output of its current run.
    pub fn log(&self) -> String {
        let s = self.full_log();
        let lines: Vec<&str> = s.lines().collect();
        let from = lines.len().saturating_sub(60);
        lines[from..].join("\n")
    }

    async fn spawn_and_wait(&mut self) -> Result<()> {
        if self.cluster.is_some() {
            bail!("a server that is a cluster (CAIRN_TEST_CLUSTER) is not restarted");
        }
        self.starts += 1;
        let bin = cairn_bin()?;
        let log = File::create(self.log_path())?;
        let mut cmd = Command::new(&bin);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CAIRN_") {
                cmd.env_remove(&k);
            }
        }
        match &self.opts.gateway {
            Some(args) => cmd.arg("gateway").args(args),
            None => cmd.arg("server"),
        };
        let ip = if self.opts.any_address {
            "0.0.0.0"
        } else {
            "127.0.0.1"
        };
        cmd.arg("--address").arg(format!("{ip}:{}", self.port));
        if let Some(c) = &self.opts.certs {
            cmd.arg("--certs-dir").arg(&c.dir);
        }
        if let Some(m) = self.opts.parity {
            cmd.arg("--parity").arg(m.to_string());
        }
        cmd.args(&self.opts.extra_args);
        if self.opts.gateway.is_some() || self.opts.embedded {
            // the backend's arguments name its store; or the embedded default
        } else if self.opts.ellipsis {
            cmd.arg(format!(
                "{}/d{{1...{}}}",
                self.dir.path().display(),
                self.drives.len()
            ));
        } else {
            cmd.args(&self.drives);
        }
        if !self.opts.embedded {
            cmd.env("CAIRN_ROOT_USER", &self.user)
                .env("CAIRN_ROOT_PASSWORD", &self.password);
        }
        cmd.current_dir(self.dir.path())
            .env(
                "RUST_LOG",
                std::env::var("CAIRN_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(st) = self.try_exit_status()? {
                bail!(
                    "cairn server exited with {st} before it was ready; its output:\n{}",
                    self.log()
                );
            }
            let probe = match &self.opts.certs {
                Some(c) => tls::https_get(&self.addr(), "127.0.0.1", &c.ca, HEALTH_READY)
                    .await
                    .map(|e| e.response),
                None => raw::get(&self.addr(), HEALTH_READY).await,
            };
            let last = match probe {
                Ok(r) if r.status == 200 => return Ok(()),
                Ok(r) => format!("HTTP {}", r.status),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() > deadline {
                bail!(
                    "cairn server on {} not ready after {:?} (last /_cairn/health/ready: {last}); its output:\n{}",
                    self.addr(),
                    READY_TIMEOUT,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn try_exit_status(&mut self) -> Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(c) => Ok(c.try_wait()?),
            None => Ok(None),
        }
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` (`https://` with [`StartOpts::certs`])
    pub fn endpoint(&self) -> String {
        let scheme = if self.opts.certs.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The temporary directory holding drives, tool configs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn drives(&self) -> &[PathBuf] {
        &self.drives
    }

    pub fn access_key(&self) -> &str {
        &self.user
    }

    pub fn secret_key(&self) -> &str {
        &self.password
    }

    pub fn credentials(&self) -> raw::Creds {
        raw::Creds {
            access_key: self.user.clone(),
            secret_key: self.password.clone(),
        }
    }

    /// A raw-request client for this server, signing with the root credentials.
    pub fn raw(&self) -> raw::Client {
        raw::Client::new(self.addr(), Some(self.credentials()))
    }

    /// An `aws-sdk-s3` config builder: path style, us-east-1, the root
    /// credentials, no retries (so every error is seen as the server sent it).
    pub fn s3_config(&self) -> aws_sdk_s3::config::Builder {
        self.s3_config_with(&self.user, &self.password)
    }

    /// Like [`Server::s3_config`] with other credentials.
    pub fn s3_config_with(&self, access: &str, secret: &str) -> aws_sdk_s3::config::Builder {
        aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(access, secret, None, None, "cairn-tests"))
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(300))
                    .build(),
            )
    }

    /// An `aws-sdk-s3` client (see [`Server::s3_config`]).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(self.s3_config().build())
    }

    fn write_tool_configs(&self) -> Result<()> {
        let d = self.dir.path();
        std::fs::write(
            d.join("aws-config"),
            format!(
                "[default]\nregion = {REGION}\noutput = json\ns3 =\n    addressing_style = path\n"
            ),
        )?;
        std::fs::write(
            d.join("aws-credentials"),
            format!(
                "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                self.user, self.password
            ),
        )?;
        std::fs::write(
            d.join("rclone.conf"),
            format!(
                "[cairn]\ntype = s3\nprovider = Minio\naccess_key_id = {}\nsecret_access_key = {}\nendpoint = {}\nregion = {REGION}\n",
                self.user,
                self.password,
                self.endpoint()
            ),
        )?;
        std::fs::write(
            d.join("s3cmd.cfg"),
            format!(
                "[default]\naccess_key = {}\nsecret_key = {}\nhost_base = {}\nhost_bucket = {}\nuse_https = False\nsignature_v2 = False\nbucket_location = {REGION}\ncheck_ssl_certificate = False\nguess_mime_type = True\n",
                self.user,
                self.password,
                self.addr(),
                self.addr()
            ),
        )?;
        Ok(())
    }

    /// Path of the s3cmd config file (pass as `-c`).
    pub fn s3cmd_config(&self) -> PathBuf {
        self.dir.path().join("s3cmd.cfg")
    }

    /// Path of the rclone config file (remote name `cairn`).
    pub fn rclone_config(&self) -> PathBuf {
        self.dir.path().join("rclone.conf")
    }

    /// Environment for awscli, rclone and s3cmd pointing only at files in
    /// this server's directory (no global config is read or written).
    pub fn tool_env(&self) -> Vec<(String, String)> {
        let d = self.dir.path();
        let p = |n: &str| d.join(n).to_string_lossy().into_owned();
        vec![
            ("AWS_CONFIG_FILE".into(), p("aws-config")),
            ("AWS_SHARED_CREDENTIALS_FILE".into(), p("aws-credentials")),
            ("AWS_ACCESS_KEY_ID".into(), self.user.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.password.clone()),
            ("AWS_DEFAULT_REGION".into(), REGION.into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("RCLONE_CONFIG".into(), p("rclone.conf")),
        ]
    }

    /// A command for an external tool with [`Server::tool_env`] set and any
    /// inherited AWS_/RCLONE_ variables removed.
    pub fn tool(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        for (k, _) in std::env::vars_os() {
            let ks = k.to_string_lossy();
            if ks.starts_with("AWS_") || ks.starts_with("RCLONE_") || ks.starts_with("S3CMD") {
                c.env_remove(&k);
            }
        }
        c.envs(self.tool_env()).stdin(Stdio::null());
        c
    }

    /// `aws iam ARGS` against this server as its root user; stdout as
    /// JSON (`Null` when the command prints nothing).
    pub fn aws_iam(&self, args: &[&str]) -> Result<serde_json::Value> {
        let out = run(self
            .tool("aws")
            .args([
                "iam",
                "--endpoint-url",
                &self.endpoint(),
                "--output",
                "json",
            ])
            .args(args))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("aws iam {args:?}: {text}"))
    }

    /// A new IAM user `name` (inline policy `policy`, if any) with one
    /// access key, made with `aws iam`: its aws-sdk-s3 client.
    pub fn iam_user(&self, name: &str, policy: Option<&str>) -> Result<aws_sdk_s3::Client> {
        let (ak, sk) = self.iam_user_keys(name, policy)?;
        Ok(aws_sdk_s3::Client::from_conf(
            self.s3_config_with(&ak, &sk).build(),
        ))
    }

    /// A new IAM user `name` (inline policy `policy`, if any), made with
    /// `aws iam`: its access key and secret.
    pub fn iam_user_keys(&self, name: &str, policy: Option<&str>) -> Result<(String, String)> {
        self.aws_iam(&["create-user", "--user-name", name])?;
        if let Some(doc) = policy {
            self.aws_iam(&[
                "put-user-policy",
                "--user-name",
                name,
                "--policy-name",
                "p",
                "--policy-document",
                doc,
            ])?;
        }
        let key = self.aws_iam(&["create-access-key", "--user-name", name])?;
        let field = |f: &str| {
            key["AccessKey"][f]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("create-access-key printed no {f}: {key}"))
        };
        Ok((field("AccessKeyId")?, field("SecretAccessKey")?))
    }

    /// SIGKILLs the server (no clean shutdown) and reaps it.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            c.wait()?;
        }
        Ok(())
    }

    /// Sends SIGTERM and waits (up to `timeout`) for the exit status.
    pub async fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.signal("TERM", timeout).await
    }

    /// Sends a signal (`"TERM"`, `"INT"`) and waits (up to `timeout`) for
    /// the exit status.
    pub async fn signal(&mut self, sig: &str, timeout: Duration) -> Result<ExitStatus> {
        let mut c = self.child.take().ok_or_else(|| anyhow!("not running"))?;
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(c.id().to_string())
            .status()?;
        if !st.success() {
            bail!("kill -{sig} failed");
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = c.try_wait()? {
                return Ok(st);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                c.wait()?;
                bail!(
                    "server did not exit within {timeout:?} of SIG{sig}; output:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the binary again on the same drives, port and credentials
    /// (killing the current process first if it still runs).
    /// Restarts with these extra `cairn server` arguments from now on.
    pub async fn restart_with_args(&mut self, extra: Vec<String>) -> Result<()> {
        self.opts.extra_args = extra;
        self.restart().await
    }

    /// Restarts with the drive folders given in this order (the same
    /// folders: a deployment finds its drives by id).
    pub async fn restart_with_drives(&mut self, drives: Vec<PathBuf>) -> Result<()> {
        self.drives = drives;
        self.opts.ellipsis = false;
        self.restart().await
    }

    pub async fn restart(&mut self) -> Result<()> {
        self.kill()?;
        self.spawn_and_wait().await
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_exit_status(), Ok(None)) && self.child.is_some()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::env::var_os("CAIRN_TEST_KEEP").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("kept {}", self.dir.path().display());
        }
    }
}

/// A unique, valid bucket name with the given prefix.
/// Runs `cairn admin --endpoint <server> ARGS` as a real process with the
/// server's root user and `password` (the server's when `None`).
pub async fn admin(s: &Server, args: &[&str], password: Option<&str>) -> Result<Output> {
    let mut cmd = tokio::process::Command::new(cairn_bin()?);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CAIRN_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("CAIRN_ROOT_USER", s.access_key())
        .env("CAIRN_ROOT_PASSWORD", password.unwrap_or(s.secret_key()))
        .arg("admin")
        .arg("--endpoint")
        .arg(s.endpoint())
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .with_context(|| format!("`cairn admin {}` did not finish in 180 s", args.join(" ")))?
        .with_context(|| format!("running `cairn admin {}`", args.join(" ")))
}

/// The whole body of `b/k`, read through the SDK.
pub async fn get_bytes(c: &aws_sdk_s3::Client, b: &str, k: &str) -> Result<Vec<u8>> {
    Ok(c.get_object()
        .bucket(b)
        .key(k)
        .send()
        .await
        .with_context(|| format!("GET {b}/{k}"))?
        .body
        .collect()
        .await?
        .into_bytes()
        .to_vec())
}

/// A new bucket named from `prefix` (`bucket_name`), made through the SDK.
/// Uploads `parts` as one multipart upload of `bucket/key` (create, each
/// part, complete): the completed version's id, if any.
pub async fn upload_in_parts(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    parts: &[&'static [u8]],
) -> Result<Option<String>> {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await?;
    let id = up.upload_id().context("no upload id")?;
    let mut done = Vec::new();
    for (n, body) in (1..).zip(parts) {
        let part = c
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(body))
            .send()
            .await?;
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(part.e_tag().map(str::to_owned))
                .build(),
        );
    }
    let out = c
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await?;
    Ok(out.version_id().map(str::to_owned))
}

pub async fn new_bucket(c: &aws_sdk_s3::Client, prefix: &str) -> Result<String> {
    let b = bucket_name(prefix);
    c.create_bucket()
        .bucket(&b)
        .send()
        .await
        .with_context(|| format!("create bucket {b}"))?;
    Ok(b)
}

/// [`new_bucket`] with versioning enabled.
pub async fn new_versioned_bucket(c: &aws_sdk_s3::Client, prefix: &str) -> Result<String> {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let b = new_bucket(c, prefix).await?;
    c.put_bucket_versioning()
        .bucket(&b)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("enable versioning on {b}"))?;
    Ok(b)
}

pub fn bucket_name(prefix: &str) -> String {
    format!("{prefix}-{}", random_token(8).to_lowercase())
}

/// Whether a request was allowed (`true`) or refused with AccessDenied
/// (`false`); any other error is an error.
pub fn allowed<T, E, R>(
    what: &str,
    r: std::result::Result<T, aws_sdk_s3::error::SdkError<E, R>>,
) -> Result<bool>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match r {
        Ok(_) => Ok(true),
        Err(e) if err_code(&e) == "AccessDenied" => Ok(false),
        Err(e) => bail!("{what}: neither allowed nor AccessDenied: {}", err_code(&e)),
    }
}

/// Extracts the S3 error code of an SDK error (e.g. `"NoSuchKey"`), or
/// a description of the error when it carries none.
pub fn err_code<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::ProvideErrorMetadata;
    match e.code() {
        Some(c) => c.to_string(),
        None => match e.as_service_error() {
            Some(se) => se.code().unwrap_or("<no code>").to_string(),
            None => format!("<{e:?}>"),
        },
    }
}

/// HTTP status of an SDK error's raw response, if there was one.
pub fn err_status<E>(
    e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// Fails unless `r` is an S3 error with this HTTP status and (when given)
/// this error code; the message names the request.
pub fn expect_err<T, E>(
    what: &str,
    r: std::result::Result<
        T,
        aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    >,
    status: u16,
    code: Option<&str>,
) -> Result<()>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
{
    match r {
        Ok(_) => bail!(
            "{what}: succeeded, expected HTTP {status} {}",
            code.unwrap_or("")
        ),
        Err(e) => {
            let c = err_code(&e);
            let s = err_status(&e);
            if s != Some(status) || code.is_some_and(|want| want != c) {
                bail!(
                    "{what}: got HTTP {s:?} {c}, expected HTTP {status} {}",
                    code.unwrap_or("")
                );
            }
            Ok(())
        }
    }
}
