//! `--audit-log`: one JSON line per S3 request (cairn_s3::AuditLog), for
//! `cairn server` and every gateway.

use anyhow::Context as _;

#[derive(clap::Args, Debug, Clone)]
pub struct AuditArgs {
    /// Write an audit log: one JSON object per request on the S3 port
    /// (time, request id, source address, identity, action, resource,
    /// result and decision, bytes, duration, user agent) to this file
    /// (appended; reopened on SIGHUP, for logrotate), or `-` for stdout.
    /// Apart from the server log: CAIRN_LOG does not filter it.
    #[arg(long, value_name = "PATH", env = "CAIRN_AUDIT_LOG")]
    pub audit_log: Option<String>,
}

impl AuditArgs {
    /// The audit log, opened (a file that cannot be opened fails the
    /// start), or `None` without the flag.
    pub fn open(&self) -> anyhow::Result<Option<std::sync::Arc<cairn_s3::AuditLog>>> {
        let Some(path) = self.audit_log.as_deref().filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let log = cairn_s3::AuditLog::open(cairn_s3::AuditTarget::parse(path))
            .with_context(|| format!("opening the audit log {path}"))?;
        tracing::info!(to = %log.target(), "audit log on");
        Ok(Some(log))
    }
}
