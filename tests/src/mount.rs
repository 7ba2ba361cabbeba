//! A server with the buckets FUSE-mounted (`cairn server --mount DIR`),
//! shared by the mount tests.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};

use crate::{Server, StartOpts, bucket_name, require_tool, run};

/// A server with the buckets mounted; unmounts (lazily) on drop so a
/// failed test leaves no dead mount behind.
pub struct Mounted {
    pub server: Server,
    pub mnt: PathBuf,
    _dirs: tempfile::TempDir,
}

impl Mounted {
    pub async fn start(extra: &[&str]) -> Result<Mounted> {
        Self::start_with(extra, Vec::new()).await
    }

    pub async fn start_with(extra: &[&str], env: Vec<(String, String)>) -> Result<Mounted> {
        let dirs = tempfile::Builder::new().prefix("cairn-fuse-").tempdir()?;
        let mnt = dirs.path().join("mnt");
        let spool = dirs.path().join("spool");
        fs::create_dir_all(&mnt)?;
        let mut args = vec![
            "--mount".to_string(),
            mnt.display().to_string(),
            "--mount-spool".to_string(),
            spool.display().to_string(),
            "--no-scanner".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let server = Server::start(StartOpts {
            extra_args: args,
            env,
            ..StartOpts::default()
        })
        .await?;
        ensure!(is_mounted(&mnt)?, "{} is not mounted", mnt.display());
        Ok(Mounted {
            server,
            mnt,
            _dirs: dirs,
        })
    }

    /// A new bucket, made through the mount (mkdir at the top).
    pub fn bucket(&self, prefix: &str) -> Result<(String, PathBuf)> {
        let b = bucket_name(prefix);
        let p = self.mnt.join(&b);
        fs::create_dir(&p).with_context(|| format!("mkdir {}", p.display()))?;
        Ok((b, p))
    }

    /// SIGTERM (the mount goes away cleanly), then the same drives again.
    pub async fn remount(&mut self) -> Result<()> {
        let st = self.server.terminate(Duration::from_secs(30)).await?;
        ensure!(
            st.success(),
            "exit after SIGTERM: {st}\n{}",
            self.server.log()
        );
        ensure!(!is_mounted(&self.mnt)?, "still mounted after SIGTERM");
        self.server.restart().await?;
        ensure!(is_mounted(&self.mnt)?, "not mounted after restart");
        Ok(())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if is_mounted(&self.mnt).unwrap_or(false) {
            let _ = self.server.kill();
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}

/// True when `p` is a mount point (per /proc/self/mounts).
pub fn is_mounted(p: &Path) -> Result<bool> {
    let canon = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let mounts = fs::read_to_string("/proc/self/mounts")?;
    Ok(mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(canon.to_str().unwrap_or(""))))
}

/// Lazily unmounts a FUSE mount on drop if it is still there: for a server
/// started with `--mount` by another helper (`Nfs`), so a failed test leaves
/// no dead mount behind. Drop it after the server.
pub struct Unmount(pub PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        if is_mounted(&self.0).unwrap_or(false) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// s3fs-fuse mounting the same bucket through Cairn's S3 endpoint; lazily
/// unmounted on drop.
pub struct S3fs {
    pub mnt: PathBuf,
}

impl S3fs {
    pub fn mount(server: &Server, bucket: &str, dir: &Path) -> Result<S3fs> {
        require_tool("s3fs")?;
        let mnt = dir.join("s3fs");
        let passwd = dir.join("s3fs.passwd");
        fs::create_dir_all(&mnt)?;
        fs::write(
            &passwd,
            format!("{}:{}\n", server.access_key(), server.secret_key()),
        )?;
        fs::set_permissions(&passwd, fs::Permissions::from_mode(0o600))?;
        run(Command::new("s3fs")
            .arg(bucket)
            .arg(&mnt)
            .arg("-o")
            .arg(format!("url={}", server.endpoint()))
            .arg("-o")
            .arg("use_path_request_style")
            .arg("-o")
            .arg("endpoint=us-east-1")
            .arg("-o")
            .arg(format!("passwd_file={}", passwd.display()))
            // no stat cache: every stat asks Cairn
            .arg("-o")
            .arg("stat_cache_expire=0"))?;
        for _ in 0..100 {
            if is_mounted(&mnt)? {
                return Ok(S3fs { mnt });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        anyhow::bail!("s3fs did not mount {}", mnt.display())
    }
}

impl Drop for S3fs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}
