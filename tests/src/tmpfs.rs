//! A small tmpfs mounted over a folder (root only), for tests that fill
//! a file system: unmounted on drop (lazily when still busy).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};

pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "6m") over `dir`, which must exist.
    pub fn mount(dir: &Path, size: &str) -> Result<Tmpfs> {
        crate::run(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={size}"))
                .arg("tmpfs")
                .arg(dir),
        )
        .with_context(|| format!("mount tmpfs on {} (needs root)", dir.display()))?;
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}
