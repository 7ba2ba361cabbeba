//! `cairn server --nfs ADDR:PORT`: the NFSv3 export in the server's
//! process, on the same `ObjectLayer` as S3 and FUSE, with its own view
//! (its spool and id map are persistent: they hold acknowledged WRITEs and
//! file handles across restarts).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use cairn_api::ObjectLayer;
use cairn_nfs::{Network, NfsOptions, Squash};
use cairn_vfs::{AttrDefaults, Vfs, VfsConfig};

fn squash(s: &str) -> Result<Squash, String> {
    match s {
        "root" => Ok(Squash::Root),
        "all" => Ok(Squash::All),
        "none" => Ok(Squash::None),
        _ => Err(format!("{s:?}: root, all or none")),
    }
}

/// An octal permission mode such as 0644 or 755.
fn octal_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{s:?}: an octal mode such as 0644"))
}

#[derive(clap::Args, Debug, Clone)]
pub struct NfsArgs {
    /// Serve an NFSv3 export (NFS, MOUNT and portmap on this one TCP
    /// port, e.g. 127.0.0.1:2049, or :2049 for every interface); each
    /// bucket is a top directory. The address is required, so `--nfs`
    /// never takes the next argument (a drive) for its value.
    #[arg(long, value_name = "ADDR:PORT", env = "CAIRN_NFS",
          value_parser = crate::server::listen_address)]
    pub nfs: Option<SocketAddr>,
    /// The export's name: clients mount `/NAME`.
    #[arg(long, value_name = "NAME", default_value = "cairn", requires = "nfs")]
    pub nfs_export: String,
    /// Export only this bucket (repeatable); default: every bucket.
    #[arg(long = "nfs-bucket", value_name = "BUCKET", requires = "nfs")]
    pub nfs_buckets: Vec<String>,
    /// Export read-only (every change is NFS3ERR_ROFS).
    #[arg(long, requires = "nfs")]
    pub nfs_read_only: bool,
    /// Client network allowed to connect (repeatable, e.g. 10.0.0.0/8);
    /// default: any client that reaches the address.
    #[arg(long = "nfs-allow", value_name = "NET", requires = "nfs")]
    pub nfs_allow: Vec<Network>,
    /// AUTH_SYS squashing of the ids clients set: root (uid/gid 0 become
    /// the anonymous ids), all, or none.
    #[arg(long, default_value = "root", value_parser = squash)]
    pub nfs_squash: Squash,
    /// Anonymous uid of squashed ids.
    #[arg(long, default_value_t = 65534)]
    pub nfs_anon_uid: u32,
    /// Anonymous gid of squashed ids.
    #[arg(long, default_value_t = 65534)]
    pub nfs_anon_gid: u32,
    /// Mode of files without attributes (objects written over S3); their
    /// owner is the anonymous ids. Calls are checked against modes and
    /// owners as by a kernel NFS server.
    #[arg(long, value_name = "MODE", default_value = "0666", value_parser = octal_mode)]
    pub nfs_default_file_mode: u32,
    /// Mode of directories without attributes (buckets, prefixes made
    /// over S3).
    #[arg(long, value_name = "MODE", default_value = "0777", value_parser = octal_mode)]
    pub nfs_default_dir_mode: u32,
    /// Directory for the file id map and write staging (default: the
    /// first drive's .cairn.sys/nfs). Must persist across restarts.
    #[arg(long, value_name = "DIR", env = "CAIRN_NFS_STATE")]
    pub nfs_state: Option<PathBuf>,
    /// A file with no WRITE for this many milliseconds is committed to its
    /// object (at most 2000: other fronts see NFS writes within 2 s).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=2000))]
    pub nfs_commit_idle_ms: u64,
    /// Act as this IAM user: its policies (and the buckets' policies)
    /// decide every call of the export; a refusal is NFS3ERR_ACCES.
    /// Default: the root user.
    #[arg(
        long,
        value_name = "USER",
        requires = "nfs",
        env = "CAIRN_NFS_IDENTITY"
    )]
    pub nfs_identity: Option<String>,
}

/// Starts the export when `--nfs` was given.
pub async fn start(
    args: &NfsArgs,
    layer: Arc<dyn ObjectLayer>,
    first_drive: &Path,
    iam: &Arc<cairn_iam::Iam>,
) -> anyhow::Result<Option<cairn_nfs::NfsServer>> {
    let Some(address) = args.nfs else {
        return Ok(None);
    };
    let layer = crate::identity::act_as(layer, iam, args.nfs_identity.as_deref(), "nfs")?;
    crate::exposure::warn_open_nfs(&address, &args.nfs_export, args.nfs_allow.len());
    let state = args
        .nfs_state
        .clone()
        .unwrap_or_else(|| first_drive.join(".cairn.sys").join("nfs"));
    let mut cfg = VfsConfig::new(state.join("spool"));
    cfg.read_only = args.nfs_read_only;
    // COMMIT fsyncs the staging files: let the disk start on them early
    cfg.staging_writeback = true;
    // objects without attributes, as AWS File Gateway shows them: the
    // anonymous owner, open modes (each call is checked against them)
    cfg.defaults = AttrDefaults {
        uid: args.nfs_anon_uid,
        gid: args.nfs_anon_gid,
        file_perm: args.nfs_default_file_mode,
        dir_perm: args.nfs_default_dir_mode,
    };
    let vfs = Arc::new(Vfs::new(layer, cfg).context("preparing the NFS view")?);
    let server = cairn_nfs::serve(
        vfs,
        NfsOptions {
            address,
            export: args.nfs_export.clone(),
            buckets: args.nfs_buckets.clone(),
            squash: args.nfs_squash,
            anon_uid: args.nfs_anon_uid,
            anon_gid: args.nfs_anon_gid,
            allow: args.nfs_allow.clone(),
            state_dir: state,
            commit_idle: Duration::from_millis(args.nfs_commit_idle_ms),
            commit_high_water: 4 << 30,
        },
    )
    .await?;
    Ok(Some(server))
}

/// Stops the export and commits what it staged (after S3 stops).
pub async fn stop(server: Option<cairn_nfs::NfsServer>) {
    if let Some(s) = server {
        s.stop().await;
        tracing::info!("NFS export stopped; staged writes committed");
    }
}
