//! `cairn server --mount DIR`: the FUSE front in the server's process, on
//! the same `ObjectLayer` as S3, mounted before the server reports ready
//! and unmounted after S3 stops.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use cairn_api::ObjectLayer;
use cairn_vfs::{AttrDefaults, Vfs, VfsConfig};

fn octal(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{s:?} is not an octal mode (e.g. 644)"))
}

#[derive(clap::Args, Debug, Clone)]
pub struct MountArgs {
    /// Mount the buckets as a filesystem (FUSE) at this directory: each
    /// bucket is a top directory.
    #[arg(long, value_name = "DIR", env = "CAIRN_MOUNT")]
    pub mount: Option<PathBuf>,
    /// Mount only this bucket, as the root of the mount.
    #[arg(
        long,
        value_name = "BUCKET",
        requires = "mount",
        env = "CAIRN_MOUNT_BUCKET"
    )]
    pub mount_bucket: Option<String>,
    /// Mount read-only (every change fails with EROFS).
    #[arg(long, requires = "mount")]
    pub mount_read_only: bool,
    /// Let other users than the server's use the mount (allow_other).
    #[arg(long, requires = "mount")]
    pub mount_allow_other: bool,
    /// Owner of objects that carry no owner (default: the server's user).
    #[arg(long, value_name = "UID")]
    pub mount_uid: Option<u32>,
    /// Group of objects that carry no group (default: the server's group).
    #[arg(long, value_name = "GID")]
    pub mount_gid: Option<u32>,
    /// Mode of files that carry no mode (octal).
    #[arg(long, default_value = "644", value_parser = octal)]
    pub mount_file_mode: u32,
    /// Mode of directories that carry no mode (octal).
    #[arg(long, default_value = "755", value_parser = octal)]
    pub mount_dir_mode: u32,
    /// Directory for write staging files (default: $TMPDIR/cairn-spool).
    #[arg(long, value_name = "DIR", env = "CAIRN_MOUNT_SPOOL")]
    pub mount_spool: Option<PathBuf>,
    /// Bytes all staged files may hold together, in MiB.
    #[arg(long, default_value_t = 64 * 1024)]
    pub mount_spool_limit_mib: u64,
    /// Kernel readahead of the mount in KiB (set through sysfs; root).
    #[arg(long, default_value_t = 2048)]
    pub mount_read_ahead_kib: u32,
    /// How long attributes are cached, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub mount_attr_ttl_ms: u64,
    /// Act as this IAM user: its policies (and the buckets' policies)
    /// decide every call of the mount; a refusal is EACCES. Default: the
    /// root user.
    #[arg(
        long,
        value_name = "USER",
        requires = "mount",
        env = "CAIRN_MOUNT_IDENTITY"
    )]
    pub mount_identity: Option<String>,
}

/// The write staging folder of the mount.
pub fn spool_dir(args: &MountArgs) -> PathBuf {
    args.mount_spool
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("cairn-spool"))
}

/// Mounts when `--mount` was given (on the mount helper thread: a thread
/// in the sandbox may not mount, see sandbox.rs).
pub async fn start(
    args: &MountArgs,
    layer: Arc<dyn ObjectLayer>,
    iam: &Arc<cairn_iam::Iam>,
) -> anyhow::Result<Option<Mounted>> {
    let Some(dir) = args.mount.clone() else {
        return Ok(None);
    };
    let layer = crate::identity::act_as(layer, iam, args.mount_identity.as_deref(), "mount")?;
    if std::fs::metadata(&dir).err().and_then(|e| e.raw_os_error()) == Some(ENOTCONN) {
        tracing::warn!(
            path = %dir.display(),
            "--mount: a dead FUSE mount is there (a server ended without unmounting, \
             e.g. kill -9): detaching it lazily and mounting again"
        );
        let stale = dir.clone();
        crate::sandbox::unconfined(move || detach_stale(&stale)).await??;
    }
    if !dir.is_dir() {
        bail!("--mount {}: not a directory", dir.display());
    }
    // the ids of this process, without unsafe libc calls
    let me = std::fs::metadata("/proc/self").context("reading /proc/self")?;
    let mut cfg = VfsConfig::new(spool_dir(args));
    cfg.bucket = args.mount_bucket.clone();
    cfg.read_only = args.mount_read_only;
    cfg.defaults = AttrDefaults {
        uid: args.mount_uid.unwrap_or(me.uid()),
        gid: args.mount_gid.unwrap_or(me.gid()),
        file_perm: args.mount_file_mode,
        dir_perm: args.mount_dir_mode,
    };
    cfg.attr_ttl = Duration::from_millis(args.mount_attr_ttl_ms);
    cfg.spool_limit = args.mount_spool_limit_mib.saturating_mul(1 << 20);
    // close commits visible at once, durable within a second and on fsync
    // (ARCHITECTURE.md, "File fronts: durability")
    cfg.write_back = true;
    let vfs = Arc::new(Vfs::new(layer, cfg).context("preparing the mount")?);
    let opts = cairn_fuse::MountOptions {
        mountpoint: dir,
        allow_other: args.mount_allow_other,
        read_only: args.mount_read_only,
        threads: 4,
        read_ahead_kb: Some(args.mount_read_ahead_kib),
    };
    let rt = tokio::runtime::Handle::current();
    let view = vfs.clone();
    let mount = crate::sandbox::unconfined(move || cairn_fuse::mount(view, rt, &opts)).await??;
    Ok(Some(Mounted { mount, vfs }))
}

/// What stat of a dead FUSE mount answers ("Transport endpoint is not
/// connected").
const ENOTCONN: i32 = nix::errno::Errno::ENOTCONN as i32;

/// Lazily detaches the dead FUSE mount at `dir` (on the mount helper
/// thread): umount2(MNT_DETACH) as root, else the setuid fusermount3 /
/// fusermount `-uz` as a user does.
fn detach_stale(dir: &Path) -> anyhow::Result<()> {
    let direct = match nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    for tool in ["fusermount3", "fusermount"] {
        let st = std::process::Command::new(tool)
            .arg("-uz")
            .arg(dir)
            .stdin(std::process::Stdio::null())
            .status();
        if st.is_ok_and(|s| s.success()) {
            return Ok(());
        }
    }
    bail!(
        "--mount {}: a dead FUSE mount is there and could not be detached \
         (umount2: {direct}; fusermount3 -uz failed too): unmount it (umount -l)",
        dir.display()
    )
}

/// A mount and its view (made durable at unmount).
pub struct Mounted {
    mount: cairn_fuse::Mount,
    vfs: Arc<Vfs>,
}

/// Unmounts (after S3 has stopped). A busy mount is reported, not fatal.
pub async fn stop(mounted: Option<Mounted>) {
    let Some(Mounted { mount: m, vfs }) = mounted else {
        return;
    };
    let path = m.path().to_path_buf();
    match crate::sandbox::unconfined(move || m.unmount()).await {
        Ok(Ok(())) => tracing::info!(path = %path.display(), "FUSE unmounted"),
        Ok(Err(e)) => tracing::error!(error = %e, "unmount failed"),
        Err(e) => tracing::error!(error = %e, "unmount task failed"),
    }
    // write-back commits of the mount are durable before the process ends
    if let Err(e) = vfs.sync().await {
        tracing::error!(error = %e, "making the mount's last writes durable");
    }
}
