//! The server confines itself with Landlock (a Linux security module any
//! process may use on itself) to the folders it must touch, before its
//! runtime starts: a path bug that builds a path outside the drives (a
//! listing prefix of `../`, a NAS symlink to `/etc/shadow`) then meets
//! EACCES from the kernel instead of the host's files.
//!
//! Landlock restricts the calling thread and the threads it creates after,
//! so `main` confines itself while it is the only thread: [`Plan`] lists
//! what the serving command touches (from its arguments), [`confine`]
//! makes the folders that must exist, restricts the thread, and only then
//! is the tokio runtime built. `--no-sandbox` turns it off; a kernel
//! without Landlock runs unconfined with a warning. Only the filesystem is
//! restricted, not the network.
//!
//! One thread stays outside, the mount helper, started before the
//! restriction when `--mount` is given: a confined thread may not call
//! mount(2) or umount(2), and fusermount3 (setuid) would run without its
//! privileges under `no_new_privs`. It runs the FUSE mount and unmount
//! only ([`unconfined`]); the request threads fuser starts from it read
//! /dev/fuse and hand every request to the (confined) runtime, opening no
//! path themselves.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use cairn_api::admin::{
    AdminLayer, HealRequest, HealStream, KmsInfo, LifecycleSummary, RotateSummary, ServerInfo,
};
use cairn_api::{BucketName, ObjectResult};
use landlock::{
    ABI, Access as _, AccessFs, BitFlags, LandlockStatus, PathBeneath, PathFd, Ruleset,
    RulesetAttr as _, RulesetCreatedAttr as _, RulesetStatus,
};

/// The Landlock ABI the rules are written for (Linux 6.15). A newer kernel
/// enforces them as written; an older one enforces what it knows.
const TARGET_ABI: ABI = ABI::V7;

/// System folders read, never written: /etc (DNS, TLS roots, users),
/// /proc and /sys (mountinfo, cgroup CPU limits, statvfs targets), the
/// library folders (NSS modules glibc loads for DNS) and their links.
const SYSTEM_READ: &[&str] = &[
    "/etc", "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/proc", "/sys",
];

/// System files outside /etc that /etc names through a symlink (a
/// resolv.conf kept by systemd-resolved or resolvconf under /run).
const SYSTEM_LINKS: &[&str] = &["/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf"];

/// Devices: read and write for /dev/null, read for the random sources.
const DEVICES_RW: &[&str] = &["/dev/null"];
const DEVICES_READ: &[&str] = &["/dev/zero", "/dev/urandom", "/dev/random"];

#[derive(clap::Args, Debug, Clone)]
pub struct SandboxArgs {
    /// Do not confine the server with Landlock to its drives, spool,
    /// state and key files (it is on by default where the kernel has
    /// Landlock, Linux 5.13 and later).
    #[arg(long, env = "CAIRN_NO_SANDBOX")]
    pub no_sandbox: bool,
}

/// What a rule lets the server do beneath a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    /// Drives, the spool, state folders, the NAS share: files and folders
    /// made, written, renamed and removed.
    ReadWrite,
    /// The folder of a KMS key file: the file is replaced through a temp
    /// file beside it (no folders made).
    KeyFolder,
    /// Read files, list folders.
    ReadOnly,
    /// The folder of the audit log: its file appended to, made anew
    /// after a rotation (nothing read, nothing removed).
    LogFolder,
}

impl Grant {
    fn access(self) -> BitFlags<AccessFs> {
        use AccessFs::*;
        match self {
            Grant::ReadWrite => {
                ReadFile
                    | WriteFile
                    | ReadDir
                    | MakeDir
                    | MakeReg
                    | RemoveDir
                    | RemoveFile
                    | Refer
                    | Truncate
            }
            Grant::KeyFolder => ReadFile | WriteFile | ReadDir | MakeReg | RemoveFile | Truncate,
            Grant::ReadOnly => ReadFile | ReadDir,
            Grant::LogFolder => WriteFile | MakeReg,
        }
    }
}

/// One path the server may use, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub path: PathBuf,
    pub grant: Grant,
}

/// Something a serving command touches, named by its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Need {
    /// A drive folder: made when missing; its parent is granted so that
    /// a replaced drive (a new folder, a new disk mounted there) is taken
    /// without a restart, unless the parent is `/` (then the drive alone).
    Drive(PathBuf),
    /// A folder the server writes; made when missing if `make`.
    Folder { path: PathBuf, make: bool },
    /// A KMS key file (its folder is granted, see [`Grant::KeyFolder`]).
    KeyFile(PathBuf),
    /// A file or folder only read (credentials, certificates).
    Read(PathBuf),
    /// The audit log file (its folder is granted, see [`Grant::LogFolder`]).
    LogFile(PathBuf),
}

/// What a serving command touches, from its arguments.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    needs: Vec<Need>,
    /// `--mount`: start the mount helper before confining.
    mount: bool,
    /// `--no-sandbox`.
    off: bool,
}

impl Plan {
    /// `cairn server`: the drives, the KMS key file, the mount's spool,
    /// the NFS state when it is not on the first drive.
    pub fn server(args: &crate::server::ServerArgs) -> anyhow::Result<Plan> {
        let mut plan = Plan {
            off: args.sandbox.no_sandbox,
            ..Plan::default()
        };
        for d in crate::server::local_drives(args)? {
            plan.needs.push(Need::Drive(d));
        }
        if let Some(k) = &args.kms.kms_key_file {
            plan.needs.push(Need::KeyFile(k.clone()));
        }
        if let Some(n) = &args.notify.notify_config {
            plan.needs.push(Need::Read(n.clone()));
        }
        // the NFS state defaults to the first drive's .cairn.sys/nfs
        plan.front(&args.mount, &args.nfs, None);
        plan.certs(&args.tls);
        #[cfg(feature = "federation")]
        plan.needs
            .extend(args.federation.files().into_iter().map(Need::Read));
        plan.audit(&args.audit);
        plan.env_files();
        Ok(plan)
    }

    /// `cairn gateway ...`: the NAS share, the cloud SDKs' credential
    /// files, the fronts' spool and state.
    pub fn gateway(cmd: &crate::gateway::GatewayCommand) -> Plan {
        use crate::gateway::GatewayCommand;
        let mut plan = Plan::default();
        match cmd {
            GatewayCommand::Nas(a) => {
                plan.needs.push(Need::Folder {
                    path: a.share.clone(),
                    make: false,
                });
            }
            GatewayCommand::S3(_) => plan.env_file("AWS_WEB_IDENTITY_TOKEN_FILE"),
            GatewayCommand::Azure(_) => plan.env_file("AZURE_FEDERATED_TOKEN_FILE"),
            GatewayCommand::Gcs(a) => {
                if let Some(sa) = &a.service_account {
                    plan.needs.push(Need::Read(PathBuf::from(sa)));
                }
                for var in [
                    "GOOGLE_SERVICE_ACCOUNT",
                    "GOOGLE_SERVICE_ACCOUNT_PATH",
                    "GOOGLE_APPLICATION_CREDENTIALS",
                ] {
                    plan.env_file(var);
                }
                if let Some(home) = std::env::var_os("HOME") {
                    plan.needs.push(Need::Read(
                        Path::new(&home)
                            .join(".config/gcloud/application_default_credentials.json"),
                    ));
                }
            }
        }
        let front = cmd.front();
        plan.off = front.sandbox.no_sandbox;
        // IAM records (and the NFS state by default) in the state folder;
        // the NAS gateway's default one is in the share (no rule of its own,
        // and never made when the share is missing)
        let state = match cmd {
            GatewayCommand::Nas(_) if front.state_dir.is_none() => None,
            _ => Some(cmd.state_dir()),
        };
        if let Some(path) = &state {
            plan.needs.push(Need::Folder {
                path: path.clone(),
                make: true,
            });
        }
        plan.front(&front.mount, &front.nfs, state);
        plan.certs(&front.tls);
        plan.audit(&front.audit);
        plan.env_files();
        plan
    }

    /// The FUSE mount's spool and the NFS export's state folder.
    fn front(
        &mut self,
        mount: &crate::mount::MountArgs,
        nfs: &crate::nfs::NfsArgs,
        nfs_default: Option<PathBuf>,
    ) {
        if mount.mount.is_some() {
            self.mount = true;
            self.needs.push(Need::Folder {
                path: crate::mount::spool_dir(mount),
                make: true,
            });
        }
        if nfs.nfs.is_some()
            && let Some(state) = nfs.nfs_state.clone().or(nfs_default)
        {
            self.needs.push(Need::Folder {
                path: state,
                make: true,
            });
        }
    }

    /// The certificates folder (read; files in it are replaced while
    /// serving).
    fn certs(&mut self, tls: &crate::tls::TlsArgs) {
        if let Some(dir) = &tls.certs_dir {
            self.needs.push(Need::Read(dir.clone()));
        }
    }

    /// The audit log's file (stdout, `-`, needs nothing).
    fn audit(&mut self, audit: &crate::audit::AuditArgs) {
        if let Some(p) = audit
            .audit_log
            .as_deref()
            .filter(|p| !p.is_empty() && *p != "-")
        {
            self.needs.push(Need::LogFile(PathBuf::from(p)));
        }
    }

    /// TLS roots named in the environment (rustls-native-certs reads them).
    fn env_files(&mut self) {
        self.env_file("SSL_CERT_FILE");
        self.env_file("SSL_CERT_DIR");
    }

    fn env_file(&mut self, var: &str) {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            self.needs.push(Need::Read(PathBuf::from(v)));
        }
    }

    /// The rules: the command's own paths (folders made first, symlinks
    /// resolved: Landlock judges the real path), then the system's. Paths
    /// that do not exist are left out (nothing can be opened there).
    pub fn resolve(&self) -> Vec<Rule> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut add = |path: PathBuf, grant: Grant| {
            let rule = Rule { path, grant };
            if rule.path.exists() && !rules.contains(&rule) {
                rules.push(rule);
            }
        };
        for need in &self.needs {
            match need {
                Need::Drive(d) => {
                    // a drive that cannot be made is offline; the server says so
                    let _ = std::fs::create_dir_all(d);
                    add(drive_grant(&real(d)), Grant::ReadWrite);
                }
                Need::Folder { path, make } => {
                    if *make && let Err(e) = std::fs::create_dir_all(path) {
                        tracing::warn!(path = %path.display(), error = %e, "cannot make a folder");
                    }
                    add(real(path), Grant::ReadWrite);
                }
                Need::KeyFile(k) => add(real(folder_of(k)), Grant::KeyFolder),
                Need::LogFile(f) => add(real(folder_of(f)), Grant::LogFolder),
                Need::Read(p) => add(real(p), Grant::ReadOnly),
            }
        }
        for r in system_rules() {
            add(r.path, r.grant);
        }
        rules
    }
}

/// The folder a file is in (`.` for a bare name).
fn folder_of(file: &Path) -> &Path {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The canonical path (Landlock judges the real one), else the path.
fn real(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned())
}

/// The folder granted for a drive (canonical): its parent, or the drive
/// itself when the parent is the filesystem root.
fn drive_grant(drive: &Path) -> PathBuf {
    match drive.parent() {
        Some(p) if p.parent().is_some() => p.to_owned(),
        _ => drive.to_owned(),
    }
}

/// What every serving process reads: system folders, the targets of /etc
/// links, devices, its own executable (backtraces read it).
pub fn system_rules() -> Vec<Rule> {
    let ro = |p: PathBuf| Rule {
        path: p,
        grant: Grant::ReadOnly,
    };
    let mut rules: Vec<Rule> = SYSTEM_READ.iter().map(|p| ro(PathBuf::from(p))).collect();
    for l in SYSTEM_LINKS {
        let r = real(Path::new(l));
        if !SYSTEM_READ.iter().any(|s| r.starts_with(s)) {
            rules.push(ro(r));
        }
    }
    rules.extend(DEVICES_RW.iter().map(|p| Rule {
        path: PathBuf::from(p),
        grant: Grant::ReadWrite,
    }));
    rules.extend(DEVICES_READ.iter().map(|p| ro(PathBuf::from(p))));
    if let Ok(exe) = std::env::current_exe() {
        rules.push(ro(exe));
    }
    rules.retain(|r| r.path.exists());
    rules
}

/// What `cairn admin info` and the start log say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Enforced { abi: String, full: bool },
    Off,
    Unavailable,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Enforced { abi, full: true } => write!(f, "landlock ABI v{abi}, enforced"),
            State::Enforced { abi, full: false } => {
                write!(f, "landlock ABI v{abi}, partially enforced")
            }
            State::Off => write!(f, "off (--no-sandbox)"),
            State::Unavailable => write!(f, "unavailable (no Landlock in this kernel)"),
        }
    }
}

static STATE: OnceLock<State> = OnceLock::new();

/// The sandbox state of this process (`None`: not a serving command).
pub fn state() -> Option<&'static State> {
    STATE.get()
}

/// The store's admin API with the process's sandbox state added to
/// `server_info` (what `cairn admin info` prints).
pub struct ReportingAdmin {
    inner: Arc<dyn AdminLayer>,
    /// The cluster's nodes, asked at each `server_info`.
    cluster: Option<Arc<crate::plane::Plane>>,
}

impl ReportingAdmin {
    pub fn new(inner: Arc<dyn AdminLayer>, cluster: Option<Arc<crate::plane::Plane>>) -> Self {
        Self { inner, cluster }
    }
}

#[async_trait::async_trait]
impl AdminLayer for ReportingAdmin {
    async fn server_info(&self) -> ObjectResult<ServerInfo> {
        let mut info = self.inner.server_info().await?;
        info.sandbox = state().map(ToString::to_string);
        if let Some(c) = &self.cluster {
            info.nodes = c.report().await;
        }
        Ok(info)
    }
    fn heal(self: Arc<Self>, req: HealRequest) -> HealStream {
        self.inner.clone().heal(req)
    }
    async fn metrics(&self) -> Vec<cairn_api::admin::Metric> {
        let mut m = self.inner.metrics().await;
        if let Some(c) = &self.cluster {
            m.extend(c.metrics().await);
        }
        m
    }
    fn set_scanner(&self, enabled: bool) -> bool {
        self.inner.set_scanner(enabled)
    }
    async fn kms_status(&self) -> ObjectResult<KmsInfo> {
        self.inner.kms_status().await
    }
    async fn kms_create_key(&self, name: &str) -> ObjectResult<()> {
        self.inner.kms_create_key(name).await
    }
    async fn kms_rotate(&self, name: Option<&str>) -> ObjectResult<RotateSummary> {
        self.inner.kms_rotate(name).await
    }
    async fn lifecycle_run(&self) -> ObjectResult<LifecycleSummary> {
        self.inner.lifecycle_run().await
    }
    async fn bucket_worm(&self, bucket: &BucketName) -> ObjectResult<()> {
        self.inner.bucket_worm(bucket).await
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The mount helper's queue (see the module doc).
static HELPER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();

/// Runs `f` outside the sandbox, on the mount helper thread: for mount(2)
/// and umount(2), which Landlock refuses a confined thread. Without a
/// helper (no sandbox) it runs on the blocking pool.
pub async fn unconfined<T, F>(f: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    match HELPER.get() {
        Some(helper) => helper
            .send(job)
            .map_err(|_| anyhow::anyhow!("the mount helper thread is gone"))?,
        None => drop(tokio::task::spawn_blocking(job)),
    }
    rx.await.context("the mount helper dropped a job")
}

fn start_helper() -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("cairn-mounter".into())
        .spawn(move || {
            for job in rx {
                job();
            }
        })
        .context("starting the mount helper thread")?;
    let _ = HELPER.set(tx);
    Ok(())
}

/// Confines this thread (and every thread it starts after) to the plan.
/// Call it from `main` before any other thread exists.
pub fn confine(plan: &Plan) -> anyhow::Result<()> {
    if plan.off {
        tracing::warn!("sandbox off (--no-sandbox): the server may open any file its user can");
        let _ = STATE.set(State::Off);
        return Ok(());
    }
    let rules = plan.resolve();
    if plan.mount {
        start_helper()?;
    }
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count);
    let expected = if plan.mount { 2 } else { 1 };
    if threads > expected {
        tracing::error!(
            threads,
            "threads started before the sandbox stay unconfined (a bug)"
        );
    }
    let state = restrict(&rules).context(
        "confining the server with Landlock (start with --no-sandbox to run unconfined)",
    )?;
    match &state {
        State::Unavailable => tracing::warn!(
            "sandbox unavailable: this kernel has no Landlock; the server runs unconfined"
        ),
        s => tracing::info!(rules = rules.len(), "sandbox: {s}"),
    }
    for r in &rules {
        tracing::debug!(path = %r.path.display(), grant = ?r.grant, "sandbox rule");
    }
    let _ = STATE.set(state);
    Ok(())
}

fn restrict(rules: &[Rule]) -> anyhow::Result<State> {
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(TARGET_ABI))?
        .create()?;
    for r in rules {
        let fd = match PathFd::new(&r.path) {
            Ok(fd) => fd,
            // gone since resolve(): nothing to grant
            Err(e) => {
                tracing::debug!(path = %r.path.display(), error = %e, "sandbox rule skipped");
                continue;
            }
        };
        let mut access = r.grant.access();
        if !r.path.is_dir() {
            access &= AccessFs::from_file(TARGET_ABI);
        }
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, access))
            .with_context(|| format!("granting {}", r.path.display()))?;
    }
    let status = ruleset.restrict_self()?;
    let abi = match status.landlock {
        LandlockStatus::Available {
            kernel_abi: Some(k),
            ..
        } => k.to_string(),
        LandlockStatus::Available { effective_abi, .. } => effective_abi.to_string(),
        _ => "?".to_owned(),
    };
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => State::Enforced { abi, full: true },
        RulesetStatus::PartiallyEnforced => State::Enforced { abi, full: false },
        RulesetStatus::NotEnforced => State::Unavailable,
    })
}

#[cfg(test)]
mod tests;
