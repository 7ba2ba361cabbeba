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

use crate::server::{Credentials, shutdown_signal};

#[derive(clap::Subcommand, Debug)]
pub enum GatewayCommand {
    /// A NAS folder (local, NFS or SMB mount): buckets are its top-level
    /// folders, objects the files below them, byte for byte. S3 metadata
    /// goes to user.cairn.* xattrs (or sidecar files where there are
    /// none); the gateway's own files live in SHARE/.cairn.gateway.
    Nas(Box<NasArgs>),
    /// Any S3-compatible service (AWS, another Cairn, MinIO, Ceph RGW...)
    /// through the object_store library: the named remote buckets are
    /// served under the same names. Clients use Cairn's credentials; the
    /// backend's stay here (flags/env below, else AWS_* variables).
    S3(Box<S3Args>),
    /// Azure Blob Storage through the object_store library: the named
    /// containers are served as buckets of the same names.
    Azure(Box<AzureArgs>),
    /// Google Cloud Storage through its JSON API (the OpenDAL library):
    /// the named buckets are served under the same names.
    Gcs(Box<GcsArgs>),
}

#[derive(clap::Args, Debug)]
pub struct GcsArgs {
    /// A bucket to serve (repeatable; it must exist).
    #[arg(long = "bucket", required = true, value_name = "BUCKET")]
    pub buckets: Vec<String>,
    /// The service's URL (default https://storage.googleapis.com; an
    /// emulator's, e.g. fake-gcs-server's).
    #[arg(long, env = "CAIRN_GATEWAY_GCS_ENDPOINT")]
    pub endpoint: Option<String>,
    /// A service-account key file (else GOOGLE_SERVICE_ACCOUNT,
    /// GOOGLE_APPLICATION_CREDENTIALS or the gcloud default credentials).
    #[arg(long, env = "CAIRN_GATEWAY_GCS_SERVICE_ACCOUNT")]
    pub service_account: Option<String>,
    /// Send unsigned requests (public buckets, emulators).
    #[arg(long)]
    pub anonymous: bool,
    #[command(flatten)]
    pub front: FrontArgs,
}

#[derive(clap::Args, Debug)]
pub struct AzureArgs {
    /// A container to serve (repeatable; it must exist).
    #[arg(long = "container", required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
    /// Storage account (else AZURE_STORAGE_ACCOUNT_NAME).
    #[arg(long, env = "CAIRN_GATEWAY_AZURE_ACCOUNT")]
    pub account: Option<String>,
    /// Account key (else AZURE_STORAGE_ACCOUNT_KEY).
    #[arg(long, env = "CAIRN_GATEWAY_AZURE_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<String>,
    /// Blob endpoint (default: the account's public one).
    #[arg(long, env = "CAIRN_GATEWAY_AZURE_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Talk to the Azurite emulator (AZURITE_BLOB_STORAGE_URL, default
    /// http://127.0.0.1:10000, with its well-known account).
    #[arg(long)]
    pub emulator: bool,
    #[command(flatten)]
    pub front: FrontArgs,
}

#[derive(clap::Args, Debug)]
pub struct S3Args {
    /// The service's endpoint (default: AWS).
    #[arg(long, env = "CAIRN_GATEWAY_S3_ENDPOINT")]
    pub endpoint: Option<String>,
    /// A remote bucket to serve (repeatable). Without any: every bucket
    /// the service lists to these credentials when the gateway starts
    /// (ListBuckets; buckets made later need a restart).
    #[arg(long = "bucket", value_name = "BUCKET")]
    pub buckets: Vec<String>,
    /// The service's region.
    #[arg(long, default_value = "us-east-1", env = "CAIRN_GATEWAY_S3_REGION")]
    pub s3_region: String,
    /// Access key for the service (else AWS_ACCESS_KEY_ID).
    #[arg(long, env = "CAIRN_GATEWAY_S3_ACCESS_KEY", hide_env_values = true)]
    pub s3_access_key: Option<String>,
    /// Secret key for the service (else AWS_SECRET_ACCESS_KEY).
    #[arg(long, env = "CAIRN_GATEWAY_S3_SECRET_KEY", hide_env_values = true)]
    pub s3_secret_key: Option<String>,
    #[command(flatten)]
    pub front: FrontArgs,
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
    /// Address to listen on: IP:PORT, or :PORT for every interface.
    #[arg(long, default_value = "127.0.0.1:9000", env = "CAIRN_ADDRESS",
          value_parser = crate::server::listen_address)]
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
    #[command(flatten)]
    pub oidc: crate::oidc::OidcArgs,
    #[command(flatten)]
    pub sandbox: crate::sandbox::SandboxArgs,
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
    #[command(flatten)]
    pub exposure: crate::exposure::ExposureArgs,
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
    #[command(flatten)]
    pub audit: crate::audit::AuditArgs,
    /// Folder where the gateway keeps its IAM users, keys and policies
    /// (and the NFS export's state, unless --nfs-state). Default:
    /// SHARE/.cairn.gateway for nas, $TMPDIR/cairn-gateway-BACKEND for the
    /// clouds (give a lasting folder there).
    #[arg(long, env = "CAIRN_GATEWAY_STATE")]
    pub state_dir: Option<PathBuf>,
}

/// Where a cloud gateway (`s3`, `azure`, `gcs`) keeps the NFS export's
/// id map and spool by default (the NAS gateway keeps them in
/// SHARE/.cairn.gateway).
pub fn cloud_state_dir(backend: &str) -> PathBuf {
    std::env::temp_dir().join(format!("cairn-gateway-{backend}"))
}

impl GatewayCommand {
    /// Where the gateway keeps its state (`--state-dir` or the default).
    pub fn state_dir(&self) -> PathBuf {
        if let Some(d) = &self.front().state_dir {
            return d.clone();
        }
        match self {
            GatewayCommand::Nas(a) => a.share.join(".cairn.gateway"),
            GatewayCommand::S3(_) => cloud_state_dir("s3"),
            GatewayCommand::Azure(_) => cloud_state_dir("azure"),
            GatewayCommand::Gcs(_) => cloud_state_dir("gcs"),
        }
    }

    /// The fronts' flags, common to every backend.
    pub fn front(&self) -> &FrontArgs {
        match self {
            GatewayCommand::Nas(a) => &a.front,
            GatewayCommand::S3(a) => &a.front,
            GatewayCommand::Azure(a) => &a.front,
            GatewayCommand::Gcs(a) => &a.front,
        }
    }
}

/// Serves until a signal, with the credentials `credentials()` gave.
pub async fn run(cmd: GatewayCommand, creds: Credentials) -> anyhow::Result<()> {
    let state = cmd.state_dir();
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
            serve_fronts(Arc::new(layer), args.front, ready, state, creds).await
        }
        GatewayCommand::S3(args) => {
            let args = *args;
            for b in &args.buckets {
                cairn_api::BucketName::new(b.as_str()).with_context(|| format!("--bucket {b}"))?;
            }
            let buckets = if args.buckets.is_empty() {
                remote_buckets(&args).await?
            } else {
                args.buckets.clone()
            };
            let layer = cairn_gateway::cloud::s3_layer(
                args.endpoint.as_deref(),
                &args.s3_region,
                args.s3_access_key.as_deref(),
                args.s3_secret_key.as_deref(),
                &buckets,
            )
            .context("configuring the S3 backend")?;
            let ready = Arc::new(|| true);
            serve_fronts(Arc::new(layer), args.front, ready, state, creds).await
        }
        GatewayCommand::Azure(args) => {
            let args = *args;
            for c in &args.containers {
                cairn_api::BucketName::new(c.as_str())
                    .with_context(|| format!("--container {c}"))?;
            }
            let layer = cairn_gateway::cloud::azure_layer(
                args.account.as_deref(),
                args.access_key.as_deref(),
                args.endpoint.as_deref(),
                args.emulator,
                &args.containers,
            )
            .context("configuring the Azure backend")?;
            let ready = Arc::new(|| true);
            serve_fronts(Arc::new(layer), args.front, ready, state, creds).await
        }
        GatewayCommand::Gcs(args) => {
            let args = *args;
            for b in &args.buckets {
                cairn_api::BucketName::new(b.as_str()).with_context(|| format!("--bucket {b}"))?;
            }
            let layer = cairn_gateway::cloud::gcs_layer(
                args.endpoint.as_deref(),
                args.service_account.as_deref(),
                args.anonymous,
                &args.buckets,
            )
            .context("configuring the GCS backend")?;
            let ready = Arc::new(|| true);
            serve_fronts(Arc::new(layer), args.front, ready, state, creds).await
        }
    }
}

/// Every bucket the S3 remote lists (`cairn gateway s3` without
/// `--bucket`). Names Cairn cannot serve as buckets are refused by name
/// (the gateway does not start), not skipped.
async fn remote_buckets(args: &S3Args) -> anyhow::Result<Vec<String>> {
    let names = cairn_gateway::cloud::s3_bucket_names(
        args.endpoint.as_deref(),
        &args.s3_region,
        args.s3_access_key.as_deref(),
        args.s3_secret_key.as_deref(),
    )
    .await
    .context("listing the S3 backend's buckets (name them with --bucket instead)")?;
    for b in &names {
        cairn_api::BucketName::new(b.as_str()).with_context(|| {
            format!("the S3 backend lists bucket {b:?}; serve the others with --bucket")
        })?;
    }
    anyhow::ensure!(
        !names.is_empty(),
        "the S3 backend lists no buckets to these credentials: name them with --bucket"
    );
    tracing::info!(buckets = ?names, "serving every bucket the S3 backend lists");
    Ok(names)
}

/// Serves S3 (and the mount / export when asked) over `layer` until a
/// signal. `state` holds the NFS export's id map and spool by default.
async fn serve_fronts(
    layer: Arc<dyn ObjectLayer>,
    args: FrontArgs,
    ready: Arc<dyn Fn() -> bool + Send + Sync>,
    state: PathBuf,
    creds: Credentials,
) -> anyhow::Result<()> {
    let (access_key, secret_key) = creds;
    let open_files = crate::limits::raise_open_files();
    let listener =
        cairn_s3::bind(args.address).with_context(|| format!("listening on {}", args.address))?;
    let listener = args.tls.listener(listener).await?;
    tracing::info!(
        "S3 API on {} ({})",
        args.tls.describe(&listener)?,
        layer.capabilities().backend
    );
    let iam = crate::iam::load(crate::iam::IamSetup {
        access_key: &access_key,
        secret_key: &secret_key,
        deployment_id: "",
        store: Arc::new(
            crate::filecfg::FileConfig::open(state.clone())
                .with_context(|| format!("opening the state folder {}", state.display()))?,
        ),
    })
    .await?;
    let cfg = S3Config {
        access_key,
        secret_key,
        region: args.region,
        domains: args.domains,
        admin: None,
        metrics_token: args.exposure.metrics_token(),
        limits: args.limits.limits(open_files),
        iam: Some(iam.clone()),
        oidc: args.oidc.provider()?,
        audit: args.audit.open()?,
        web: None,
        router: None,
        notify_targets: Vec::new(),
        replication: None,
    };
    let mounted = crate::mount::start(&args.mount, layer.clone(), &iam).await?;
    let exported = crate::nfs::start(&args.nfs, layer.clone(), &state, &iam).await?;
    let served = serve(listener, layer, cfg, ready, shutdown_signal()).await;
    crate::nfs::stop(exported).await;
    crate::mount::stop(mounted).await;
    served.context("serving S3")?;
    tracing::info!("shut down cleanly");
    Ok(())
}
