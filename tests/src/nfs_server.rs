//! A server exporting over NFS on its own port, and the nfs-rs Python
//! client that drives it (shared by the NFS tests).

use std::process::{Command, Stdio};

use anyhow::{Result, ensure};

use crate::{Server, StartOpts, bucket_name, free_port, require_tool, run, run_status};

/// A server exporting over NFS on its own port.
pub struct Nfs {
    pub server: Server,
    pub port: u16,
    pub export: String,
}

impl Nfs {
    pub async fn start(extra: &[&str]) -> Result<Nfs> {
        Self::start_export(extra, "cairn").await
    }

    pub async fn start_export(extra: &[&str], export: &str) -> Result<Nfs> {
        Self::start_full(extra, export, Vec::new()).await
    }

    pub async fn start_full(
        extra: &[&str],
        export: &str,
        env: Vec<(String, String)>,
    ) -> Result<Nfs> {
        let port = free_port()?;
        let mut args = vec![
            "--nfs".to_string(),
            format!("127.0.0.1:{port}"),
            "--nfs-export".to_string(),
            export.to_string(),
            "--no-scanner".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let server = Server::start(StartOpts {
            extra_args: args,
            env,
            ..StartOpts::default()
        })
        .await?;
        Ok(Nfs {
            server,
            port,
            export: export.to_string(),
        })
    }

    /// A libnfs URL for `path` (`bucket/key`) in the export.
    pub fn url(&self, path: &str) -> String {
        format!(
            "nfs://127.0.0.1/{}/{path}?version=3&nfsport={p}&mountport={p}",
            self.export,
            p = self.port
        )
    }

    /// The nfs-rs URL of the export root.
    pub fn py_url(&self) -> String {
        format!(
            "nfs://127.0.0.1/{}?version=3&nfsport={p}&mountport={p}&noresvport=true",
            self.export,
            p = self.port
        )
    }

    pub async fn bucket(&self, prefix: &str) -> Result<String> {
        let b = bucket_name(prefix);
        self.server.s3().create_bucket().bucket(&b).send().await?;
        Ok(b)
    }

    /// Runs a Python script with nfs-rs connected as `c` (the export root);
    /// extra arguments are `sys.argv[1:]`. Returns stdout.
    pub fn py(&self, script: &str, args: &[&str]) -> Result<String> {
        let full = format!(
            "{PRELUDE}\nc = nfs_rs.Client.connect({:?})\n{script}",
            self.py_url()
        );
        let mut cmd = Command::new(python()?);
        cmd.arg("-c").arg(full).args(args);
        Ok(String::from_utf8_lossy(&run(&mut cmd)?.stdout).into_owned())
    }

    /// Like `py`, but a failing script is reported, not an error.
    pub fn py_status(&self, script: &str) -> Result<(bool, String)> {
        let full = format!(
            "{PRELUDE}\nc = nfs_rs.Client.connect({:?})\n{script}",
            self.py_url()
        );
        let out = run_status(Command::new(python()?).arg("-c").arg(full))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), text))
    }
}

pub const PRELUDE: &str = r#"
import sys, nfs_rs
def err(f):
    try:
        f()
    except Exception as e:
        return type(e).__name__ + ": " + str(e)
    return "ok"
"#;

/// python3 with the nfs-rs module (scripts/test installs it); missing is a
/// failure, never a skip.
pub fn python() -> Result<std::path::PathBuf> {
    let py = require_tool("python3")?;
    let st = Command::new(&py)
        .args(["-c", "import nfs_rs"])
        .stderr(Stdio::null())
        .status()?;
    ensure!(
        st.success(),
        "the nfs-rs Python module is not installed (pip install nfs-rs); scripts/test installs it"
    );
    Ok(py)
}
