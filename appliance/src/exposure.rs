//! What a serving command exposes beyond loopback: the metrics token, and
//! the warnings at start about well-known credentials and an NFS export
//! open to any host.

use std::net::SocketAddr;

/// Flags of every serving command (`cairn server`, `cairn gateway ...`).
#[derive(clap::Args, Debug)]
pub struct ExposureArgs {
    /// Serve /_cairn/metrics only to scrapers sending `Authorization:
    /// Bearer TOKEN` (401 without one, 403 with another). Default: open
    /// to whoever reaches the port. Prefer the environment variable (a
    /// flag shows in `ps`).
    #[arg(
        long = "metrics-auth",
        value_name = "TOKEN",
        env = "CAIRN_METRICS_TOKEN",
        hide_env_values = true
    )]
    pub metrics_auth: Option<String>,
}

impl ExposureArgs {
    /// The token the metrics need (an empty one: none).
    pub fn metrics_token(&self) -> Option<String> {
        self.metrics_auth.clone().filter(|t| !t.is_empty())
    }
}

/// Root passwords everyone knows: Cairn's built-in default and MinIO's.
const WELL_KNOWN_PASSWORDS: [&str; 2] = ["cairnadmin", "minioadmin"];

/// Warns when root credentials set explicitly are a well-known default
/// pair and the S3 front listens beyond loopback.
pub fn warn_well_known_credentials(address: &SocketAddr, password: &str) {
    if !address.ip().is_loopback() && WELL_KNOWN_PASSWORDS.contains(&password) {
        tracing::warn!(
            %address,
            "CAIRN_ROOT_PASSWORD is a well-known default ({password:?}) and the S3 API listens beyond \
             loopback: anyone who reaches {address} can log in as root (every bucket, the admin API); \
             set a secret password"
        );
    }
}

/// Warns when the NFS export listens beyond loopback for any client.
pub fn warn_open_nfs(address: &SocketAddr, export: &str, allowed_networks: usize) {
    if !address.ip().is_loopback() && allowed_networks == 0 {
        tracing::warn!(
            %address,
            "the NFS export /{export} listens beyond loopback without --nfs-allow: NFS AUTH_SYS is no \
             authentication (clients claim any uid), so any host that reaches {address} can mount it \
             and read or change every exported bucket; name the client networks with --nfs-allow NET"
        );
    }
}
