//! `cairn gateway BACKEND ...`: serves a store that already holds data
//! (a NAS folder) through the same fronts as `cairn server`: S3 with
//! Cairn's own credentials, and optionally the FUSE mount and the NFS
//! export, since every front takes any `ObjectLayer`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use cairn_api::ObjectLayer;
use cairn_gateway::{NasLayer, NasOptions};
use cairn_s3::{S3Config, serve};

use crate::server::{credentials, shutdown_signal};

#[derive(clap::Subcommand, Debug)]
pub enum GatewayCommand {
    /// A NAS folder (local, NFS or SMB mount): buckets are its top-level
    /// folders, objects the files below them, byte for byte. S3 metadata
    /// goes to user.cairn.* xattrs (or sidecar files where there are
    /// none); the gateway's own files live in SHARE/.cairn.gateway.
    Nas(Box<NasArgs>),
}

#[derive(clap::Args, Debug)]
pub struct NasArgs {
    /// The folder to serve.
    pub share: PathBuf,
    /// Keep S3 metadata in sidecar files under .cairn.gateway even where
    /// xattrs work (for shares whose xattrs other tools strip).
    #[arg(long, env = "CAIRN_GATEWAY_SIDECAR")]
    pub sidecar: bool,
    #[command(flatten)]
    pub front: FrontArgs,
}

/// What every gateway serves with: the S3 front's flags, the FUSE mount's
/// and the NFS export's (the same flags as `cairn server`).
#[derive(clap::Args, Debug)]
pub struct FrontArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000", env = "CAIRN_ADDRESS")]
    pub address: SocketAddr,
    /// Base domain for virtual-host-style requests (bucket.DOMAIN);
    /// repeatable. Path-style requests always work.
    #[arg(long = "domain", default_value = "localhost", env = "CAIRN_DOMAIN")]
    pub domains: Vec<String>,
    /// Region reported to clients and used in signatures.
    #[arg(long, default_value = "us-east-1", env = "CAIRN_REGION")]
    pub region: String,
    #[command(flatten)]
    pub mount: crate::mount::MountArgs,
    #[command(flatten)]
    pub nfs: crate::nfs::NfsArgs,
}

pub async fn run(cmd: GatewayCommand) -> anyhow::Result<()> {
    match cmd {
        GatewayCommand::Nas(args) => {
            let args = *args;
            let share = args.share.clone();
            let opts = NasOptions {
                force_sidecar: args.sidecar,
            };
            let layer = tokio::task::spawn_blocking(move || NasLayer::open(share, opts))
                .await?
                .with_context(|| format!("opening the share {}", args.share.display()))?;
            // Ready while the share is there (an unmounted NAS is not).
            let hidden = layer.root().join(".cairn.gateway");
            let ready = Arc::new(move || hidden.is_dir());
            let state = layer.root().join(".cairn.gateway");
            serve_fronts(Arc::new(layer), args.front, ready, state).await
        }
    }
}

/// Serves S3 (and the mount / export when asked) over `layer` until a
/// signal. `state` holds the NFS export's id map and spool by default.
async fn serve_fronts(
    layer: Arc<dyn ObjectLayer>,
    args: FrontArgs,
    ready: Arc<dyn Fn() -> bool + Send + Sync>,
    state: PathBuf,
) -> anyhow::Result<()> {
    let (access_key, secret_key) = credentials(&args.address)?;
    let listener = tokio::net::TcpListener::bind(args.address)
        .await
        .with_context(|| format!("listening on {}", args.address))?;
    tracing::info!(
        "S3 API on http://{} ({})",
        listener.local_addr()?,
        layer.capabilities().backend
    );
    let cfg = S3Config {
        access_key,
        secret_key,
        region: args.region,
        domains: args.domains,
        admin: None,
    };
    let mounted = crate::mount::start(&args.mount, layer.clone())?;
    let exported = crate::nfs::start(&args.nfs, layer.clone(), &state).await?;
    let served = serve(listener, layer, cfg, ready, shutdown_signal()).await;
    crate::nfs::stop(exported).await;
    crate::mount::stop(mounted).await;
    served.context("serving S3")?;
    tracing::info!("shut down cleanly");
    Ok(())
}
