//! `cairn server`: opens the erasure sets and serves S3 until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use cairn_api::ObjectLayer;
use cairn_core::locks::LockKind;
use cairn_core::{ErasureSets, SetsConfig};
use cairn_s3::{S3Config, serve};

use crate::drives::expand_all;

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Drives (directories), e.g. /mnt/disk{1...4}. Without any, serves
    /// an embedded default: 4 drives under ./cairn-data.
    pub drives: Vec<String>,
    /// Address to listen on: IP:PORT, or :PORT for every interface.
    #[arg(long, default_value = "127.0.0.1:9000", env = "CAIRN_ADDRESS",
          value_parser = listen_address)]
    pub address: SocketAddr,
    /// Parity shards per object of the STANDARD class (0..=N/2). Default:
    /// 0 for 1 drive, 1 for 2-3, 2 for 4-5, 3 for 6-7, 4 for 8 and more;
    /// kept from the first start. REDUCED_REDUNDANCY uses 1.
    #[arg(long, env = "CAIRN_PARITY")]
    pub parity: Option<usize>,
    /// Drives per erasure set on the first start (2..=16, dividing the
    /// drive count). Default: every drive up to 16, else the largest
    /// such size dividing the count. Kept from the first start; each
    /// object lives on the set its name hashes to.
    #[arg(long, env = "CAIRN_SET_DRIVE_COUNT")]
    pub set_drive_count: Option<usize>,
    /// Base domain for virtual-host-style requests (bucket.DOMAIN);
    /// repeatable. Path-style requests always work.
    #[arg(long = "domain", default_value = "localhost", env = "CAIRN_DOMAIN")]
    pub domains: Vec<String>,
    /// Region reported to clients and used in signatures.
    #[arg(long, default_value = "us-east-1", env = "CAIRN_REGION")]
    pub region: String,
    /// Do not run the background scanner (healing on read still runs).
    #[arg(long, env = "CAIRN_NO_SCANNER")]
    pub no_scanner: bool,
    /// Scanner pause after each object, in milliseconds: bounds its share
    /// of the drives so client traffic is not starved.
    #[arg(long, default_value_t = 2, env = "CAIRN_SCANNER_PAUSE_MS")]
    pub scanner_pause_ms: u64,
    /// Seconds between scanner cycles.
    #[arg(long, default_value_t = 300, env = "CAIRN_SCANNER_INTERVAL")]
    pub scanner_interval_secs: u64,
    /// Every Nth scanner cycle re-reads every shard and checks its hash
    /// (0: never).
    #[arg(long, default_value_t = 12, env = "CAIRN_SCANNER_DEEP_EVERY")]
    pub scanner_deep_every: u64,
    /// Most MiB per second of shards a deep scan reads (0: no limit).
    #[arg(long, default_value_t = 64, env = "CAIRN_SCANNER_DEEP_MIB_PER_SEC")]
    pub scanner_deep_mib_per_sec: u64,
    /// Tmp files and multipart uploads older than this many seconds are
    /// removed by the scanner.
    #[arg(long, default_value_t = 86400, env = "CAIRN_STALE_AFTER")]
    pub stale_after_secs: u64,
    /// Seconds added to the clock that retention and lifecycle rules are
    /// judged by. For tests only (a lifecycle pass "days later"); whoever
    /// starts the process controls its clock anyway.
    #[arg(long, default_value_t = 0, hide = true)]
    pub clock_offset_secs: i64,
    /// Milliseconds every commit waits under the object's write lock. For
    /// tests only (a node paused while it holds a lock).
    #[arg(long, default_value_t = 0, hide = true)]
    pub fault_commit_delay_ms: u64,
    /// Seconds a cluster lock lives after its holder's last refresh
    /// (refreshed every third of it). A killed node's locks are gone
    /// after this long.
    #[arg(long, default_value_t = 30, env = "CAIRN_LOCK_TTL")]
    pub lock_ttl_secs: u64,
    #[command(flatten)]
    pub mount: crate::mount::MountArgs,
    #[command(flatten)]
    pub nfs: crate::nfs::NfsArgs,
    #[command(flatten)]
    pub kms: KmsArgs,
    #[command(flatten)]
    pub oidc: crate::oidc::OidcArgs,
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
    /// Cipher of new encrypted objects: aes-256-gcm (default where the CPU
    /// has AES-NI), chacha20-poly1305 (default elsewhere) or
    /// aes-256-cbc-hmac-sha256. Objects keep the cipher they were written
    /// with.
    #[arg(long, env = "CAIRN_SSE_CIPHER", value_parser = parse_cipher)]
    pub sse_cipher: Option<cairn_core::sse::Cipher>,
    #[command(flatten)]
    pub sandbox: crate::sandbox::SandboxArgs,
    #[command(flatten)]
    pub exposure: crate::exposure::ExposureArgs,
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
    #[command(flatten)]
    pub audit: crate::audit::AuditArgs,
    #[command(flatten)]
    pub console: crate::console::ConsoleArgs,
    #[command(flatten)]
    pub notify: crate::notify::NotifyArgs,
    #[cfg(feature = "federation")]
    #[command(flatten)]
    pub federation: crate::federation::FederationArgs,
}

/// The drive folders the arguments name (expanded), or the embedded
/// default.
pub fn drive_args(args: &ServerArgs) -> anyhow::Result<Vec<String>> {
    if args.drives.is_empty() {
        expand_all(&[EMBEDDED_DRIVES.to_owned()])
    } else {
        expand_all(&args.drives)
    }
}

/// The store's start-up checks of the drives (`ErasureSets::check_drives`),
/// run before anything is made on them.
pub fn check_drives(args: &ServerArgs) -> anyhow::Result<()> {
    let drives = drive_args(args)?;
    if crate::cluster::topology(&drives, args.address)?.is_some() {
        // a cluster's drives are checked once every node answers
        return Ok(());
    }
    let paths: Vec<PathBuf> = drives.iter().map(PathBuf::from).collect();
    ErasureSets::check_drives(&paths, &args.sets_config()).context("opening the drives")
}

/// The drive folders of this machine: every drive, or in a cluster this
/// node's.
pub fn local_drives(args: &ServerArgs) -> anyhow::Result<Vec<PathBuf>> {
    let drives = drive_args(args)?;
    Ok(match crate::cluster::topology(&drives, args.address)? {
        Some(t) => t.local,
        None => drives.iter().map(PathBuf::from).collect(),
    })
}

impl ServerArgs {
    fn sets_config(&self) -> SetsConfig {
        SetsConfig {
            parity: self.parity,
            set_drive_count: self.set_drive_count,
            fault_commit_delay: std::time::Duration::from_millis(self.fault_commit_delay_ms),
            ..Default::default()
        }
    }
}

const EMBEDDED_DRIVES: &str = "./cairn-data/drive{1...4}";

fn parse_cipher(s: &str) -> Result<cairn_core::sse::Cipher, String> {
    cairn_core::sse::Cipher::parse(s).ok_or_else(|| {
        format!("unknown cipher {s:?}: aes-256-gcm, chacha20-poly1305 or aes-256-cbc-hmac-sha256")
    })
}

/// The KMS behind SSE-S3 and SSE-KMS: at most one of a static secret key,
/// a key file, or Vault/OpenBao Transit. None: SSE-S3 and SSE-KMS requests
/// are refused (SSE-C still works). Pass secrets through the environment,
/// not flags (flags show in `ps`).
#[derive(clap::Args)]
pub struct KmsArgs {
    /// Built-in KMS with one static master key, `NAME:BASE64-32-BYTES`
    /// (e.g. `cairn-default:$(openssl rand -base64 32)`). It cannot be
    /// rotated; use a key file or Vault for that.
    #[arg(long, env = "CAIRN_KMS_SECRET_KEY", hide_env_values = true)]
    pub kms_secret_key: Option<String>,
    /// Built-in KMS with master keys in this file (JSON, mode 0600),
    /// created with a random default key if missing; `cairn admin kms
    /// create-key|rotate` add keys and versions to it.
    #[arg(long, env = "CAIRN_KMS_KEY_FILE")]
    pub kms_key_file: Option<PathBuf>,
    /// HashiCorp Vault or OpenBao address (http(s)://host:port): its
    /// Transit engine seals the data keys. Authenticate with
    /// CAIRN_KMS_VAULT_TOKEN, or AppRole (CAIRN_KMS_VAULT_APPROLE_ID and
    /// CAIRN_KMS_VAULT_APPROLE_SECRET).
    #[arg(long, env = "CAIRN_KMS_VAULT_ENDPOINT")]
    pub kms_vault_endpoint: Option<String>,
    /// Vault token.
    #[arg(long, env = "CAIRN_KMS_VAULT_TOKEN", hide_env_values = true)]
    pub kms_vault_token: Option<String>,
    /// Vault AppRole role id.
    #[arg(long, env = "CAIRN_KMS_VAULT_APPROLE_ID")]
    pub kms_vault_approle_id: Option<String>,
    /// Vault AppRole secret id.
    #[arg(long, env = "CAIRN_KMS_VAULT_APPROLE_SECRET", hide_env_values = true)]
    pub kms_vault_approle_secret: Option<String>,
    /// Where Vault's Transit engine is mounted.
    #[arg(long, default_value = "transit", env = "CAIRN_KMS_VAULT_MOUNT")]
    pub kms_vault_mount: String,
    /// Where Vault's AppRole auth method is mounted.
    #[arg(long, default_value = "approle", env = "CAIRN_KMS_VAULT_APPROLE_MOUNT")]
    pub kms_vault_approle_mount: String,
    /// The master key SSE-S3 (and SSE-KMS without a key id) uses. Default
    /// `cairn-default`, or the name in CAIRN_KMS_SECRET_KEY. Created in a
    /// key file or in Vault when missing.
    #[arg(long, env = "CAIRN_KMS_DEFAULT_KEY")]
    pub kms_default_key: Option<String>,
}

impl std::fmt::Debug for KmsArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.config(), f)
    }
}

impl KmsArgs {
    pub fn config(&self) -> cairn_core::kms::KmsConfig {
        cairn_core::kms::KmsConfig {
            secret_key: self.kms_secret_key.clone(),
            key_file: self.kms_key_file.clone(),
            vault_endpoint: self.kms_vault_endpoint.clone(),
            vault_token: self.kms_vault_token.clone(),
            vault_approle_id: self.kms_vault_approle_id.clone(),
            vault_approle_secret: self.kms_vault_approle_secret.clone(),
            vault_mount: Some(self.kms_vault_mount.clone()),
            vault_approle_mount: Some(self.kms_vault_approle_mount.clone()),
            default_key: self.kms_default_key.clone(),
        }
    }
}

/// A listening address (`--address`, `--nfs`): IP:PORT, or MinIO's
/// `:PORT` for every (IPv4) interface.
pub(crate) fn listen_address(s: &str) -> Result<SocketAddr, String> {
    if let Some(port) = s.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{s:?}: a port number after ':'"))?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    s.parse()
        .map_err(|e| format!("{s:?}: IP:PORT or :PORT ({e})"))
}

const DEFAULT_USER: &str = "cairnadmin";
const DEFAULT_PASSWORD: &str = "cairnadmin";

/// The root user's access key and secret.
pub(crate) type Credentials = (String, String);

pub(crate) fn credentials(address: &SocketAddr) -> anyhow::Result<Credentials> {
    let user = std::env::var("CAIRN_ROOT_USER")
        .ok()
        .filter(|s| !s.is_empty());
    let pass = std::env::var("CAIRN_ROOT_PASSWORD")
        .ok()
        .filter(|s| !s.is_empty());
    match (user, pass) {
        (Some(u), Some(p)) => {
            if p.len() < 8 {
                bail!("CAIRN_ROOT_PASSWORD must be at least 8 characters");
            }
            crate::exposure::warn_well_known_credentials(address, &p);
            Ok((u, p))
        }
        (None, None) if address.ip().is_loopback() => {
            tracing::warn!(
                "serving with the built-in default credentials {DEFAULT_USER}/{DEFAULT_PASSWORD}; \
                 set CAIRN_ROOT_USER and CAIRN_ROOT_PASSWORD before listening beyond loopback"
            );
            Ok((DEFAULT_USER.into(), DEFAULT_PASSWORD.into()))
        }
        (None, None) => bail!(
            "{address} is not a loopback address: set CAIRN_ROOT_USER and CAIRN_ROOT_PASSWORD \
             (the built-in default credentials only serve on loopback)"
        ),
        _ => bail!("set both CAIRN_ROOT_USER and CAIRN_ROOT_PASSWORD, or neither"),
    }
}

/// Serves until a signal, with the credentials `credentials()` gave.
pub async fn run(args: ServerArgs, creds: Credentials) -> anyhow::Result<()> {
    if args.drives.is_empty() {
        tracing::info!("no drives given: serving the embedded default ./cairn-data (4 drives)");
    }
    let drives = drive_args(&args)?;
    let (access_key, secret_key) = creds;
    let open_files = crate::limits::raise_open_files();
    let mut paths: Vec<PathBuf> = drives.iter().map(PathBuf::from).collect();
    let mut sets_cfg = args.sets_config();
    let topology = crate::cluster::topology(&drives, args.address)?;
    // this node's part of the cluster (internode server, peers)
    let mut plane = None;
    if let Some(t) = &topology {
        let key = crate::cluster::key(&access_key, &secret_key);
        let digest = t.digest(&drives, args.parity, args.set_drive_count);
        let lock_cfg = cairn_cluster::locker::LockConfig::with_ttl(std::time::Duration::from_secs(
            args.lock_ttl_secs.max(1),
        ));
        let p = crate::plane::Plane::start(t, &key, digest, lock_cfg).await?;
        sets_cfg.drive_io = p.io_for();
        sets_cfg.set_locks = Some(p.locks_for(lock_cfg));
        plane = Some(Arc::new(p));
        t.wait_for_format(&sets_cfg.drive_io).await?;
        paths = t.roots.clone();
        tracing::info!(
            nodes = t.nodes.len(),
            node = t.me,
            "every node answers: opening the cluster's sets"
        );
    }
    let set = tokio::task::spawn_blocking(move || ErasureSets::open(paths, sets_cfg))
        .await?
        .context("opening the drives")?;
    let set = Arc::new(set);
    if let Some(p) = &plane {
        p.attach(&set);
    }
    let kms = args
        .kms
        .config()
        .build()
        .await
        .context("configuring the KMS")?;
    match &kms {
        Some(k) => tracing::info!(
            default_key = k.default_key(),
            "KMS ready: SSE-S3 and SSE-KMS available"
        ),
        None => tracing::info!("no KMS configured: SSE-S3 and SSE-KMS are refused, SSE-C works"),
    }
    #[cfg(feature = "federation")]
    let sealing = kms.clone();
    set.set_kms(kms);
    if args.clock_offset_secs != 0 {
        tracing::warn!(
            offset_secs = args.clock_offset_secs,
            "retention and lifecycle judged by a shifted clock (test flag)"
        );
        set.set_clock_offset(args.clock_offset_secs);
    }
    let cipher = args
        .sse_cipher
        .unwrap_or_else(cairn_core::sse::Cipher::default_for_cpu);
    set.set_cipher(cipher);
    tracing::info!(cipher = cipher.name(), "cipher of new encrypted objects");
    tracing::info!(
        drives = set.drive_count(),
        sets = set.sets().len(),
        drives_per_set = set.set_drive_count(),
        parity = set.parity(),
        online = set.online_drives(),
        deployment = set.deployment_id(),
        "erasure sets ready"
    );
    let listener =
        cairn_s3::bind(args.address).with_context(|| format!("listening on {}", args.address))?;
    let listener = args.tls.listener(listener).await?;
    tracing::info!("S3 API on {}", args.tls.describe(&listener)?);
    start_services(&set, &args, plane.as_deref());
    let notify = args.notify.config()?;
    set.set_outbox_limit(args.notify.limit());
    crate::notify::start(&notify, set.clone(), &args.region)?;
    let replication = crate::replicate::start(set.clone()).await?;
    let admin: Arc<dyn cairn_api::admin::AdminLayer> = Arc::new(
        crate::sandbox::ReportingAdmin::new(set.clone(), plane.clone()),
    );
    let ready_set = set.clone();
    let layer: Arc<dyn ObjectLayer> = set;
    #[cfg(feature = "federation")]
    let joined = crate::federation::join(&args.federation, &args.domains, layer, sealing).await?;
    #[cfg(not(feature = "federation"))]
    let joined = crate::federation::alone(layer);
    // users, keys and policies live on the drives (.cairn.sys/config/iam),
    // or in etcd for a site of a federation (shared by every site)
    let iam = crate::iam::load(crate::iam::IamSetup {
        access_key: &access_key,
        secret_key: &secret_key,
        deployment_id: joined
            .identity_id
            .as_deref()
            .unwrap_or(ready_set.deployment_id()),
        store: joined
            .iam_store
            .clone()
            .unwrap_or_else(|| ready_set.clone()),
    })
    .await?;
    let web = crate::console::start(
        &args.console,
        listener.local_addr().context("the S3 port's address")?,
        &args.tls,
        &args.region,
        &args.oidc,
    )?;
    let cfg = S3Config {
        access_key,
        secret_key,
        region: args.region,
        domains: args.domains,
        admin: Some(admin),
        metrics_token: args.exposure.metrics_token(),
        limits: args.limits.limits(open_files),
        iam: Some(iam.clone()),
        oidc: args.oidc.provider()?,
        audit: args.audit.open()?,
        web,
        router: joined.router,
        notify_targets: notify.names(),
        replication: Some(replication),
    };
    // mounted before S3 answers /_cairn/health/ready, unmounted after S3 stops
    let mounted = crate::mount::start(&args.mount, joined.files.clone(), &iam).await?;
    let first_drive = PathBuf::from(drives.first().map(String::as_str).unwrap_or("."));
    let exported = crate::nfs::start(&args.nfs, joined.files, &first_drive, &iam).await?;
    let served = serve(
        listener,
        joined.s3,
        cfg,
        Arc::new(move || ready_set.is_ready()),
        shutdown_signal(),
    )
    .await;
    crate::nfs::stop(exported).await;
    crate::mount::stop(mounted).await;
    served.context("serving S3")?;
    tracing::info!("shut down cleanly");
    Ok(())
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}

/// The scanner, healer and drive monitor of every set.
fn scanner_config(args: &ServerArgs) -> Option<cairn_core::scan::ScannerConfig> {
    (!args.no_scanner).then(|| cairn_core::scan::ScannerConfig {
        pause_per_object: std::time::Duration::from_millis(args.scanner_pause_ms),
        cycle_interval: std::time::Duration::from_secs(args.scanner_interval_secs),
        deep_every: args.scanner_deep_every,
        stale_after: std::time::Duration::from_secs(args.stale_after_secs),
        deep_bytes_per_sec: args.scanner_deep_mib_per_sec * 1024 * 1024,
    })
}

/// The healer and drive monitor run on every node (each heals what its
/// reads found and watches its own view of the drives); the scanner runs
/// at once on one node, and in a cluster on the node that holds the
/// services lease (a cluster lock over every drive, kept while the node
/// lives): the others try again every half lock life, so when its node
/// dies another takes over once the lock expires.
fn start_services(set: &Arc<ErasureSets>, args: &ServerArgs, plane: Option<&crate::plane::Plane>) {
    set.start_node_services();
    let Some(scanner) = scanner_config(args) else {
        return;
    };
    let Some(plane) = plane else {
        set.start_scanners(&scanner);
        return;
    };
    // one try at a time: the lease is asked again every half lock life
    let once = cairn_cluster::locker::LockConfig {
        wait: std::time::Duration::ZERO,
        ..plane.lock_cfg
    };
    let lease = Lease {
        locks: plane.locks_for(once).for_set(plane.roots()),
        retry: plane.lock_cfg.ttl / 2,
    };
    let set = set.clone();
    tokio::spawn(async move {
        loop {
            match lease.locks.lock(SERVICES_LEASE, LockKind::Write).await {
                Ok(held) => {
                    tracing::info!(
                        "this node holds the cluster's services lease: it runs the scanner"
                    );
                    set.start_scanners(&scanner);
                    // held (and refreshed) for the node's life
                    let _held = held;
                    std::future::pending::<()>().await;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "services lease held elsewhere");
                    // at a random point of the next interval: nodes that
                    // started together and split the lockers between
                    // them must not keep asking in step (a livelock)
                    let jitter = rand::random_range(0..=lease.retry.as_millis() as u64);
                    let pause = lease.retry / 2 + std::time::Duration::from_millis(jitter);
                    tokio::time::sleep(pause).await;
                }
            }
        }
    });
}

/// The lock's name among the lockers (not an object: buckets have no
/// leading dot).
const SERVICES_LEASE: &str = ".cairn.sys/services";

/// The services lease of a cluster node.
struct Lease {
    locks: Arc<dyn cairn_core::locks::ClusterLocks>,
    retry: std::time::Duration,
}

#[cfg(test)]
mod tests {
    use super::listen_address;

    #[test]
    fn listen_addresses() {
        assert_eq!(listen_address(":9000"), Ok(([0, 0, 0, 0], 9000).into()));
        assert_eq!(
            listen_address("127.0.0.1:9001"),
            Ok(([127, 0, 0, 1], 9001).into())
        );
        assert_eq!(
            listen_address("[::1]:9002"),
            Ok("[::1]:9002".parse().unwrap())
        );
        for bad in [":", ":x", ":70000", "9000", "/srv/d1", ""] {
            assert!(listen_address(bad).is_err(), "{bad:?}");
        }
    }
}
