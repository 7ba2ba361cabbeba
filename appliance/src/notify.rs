//! Event notifications (issue 22): `--notify-config FILE` names the
//! targets (cairn-events' JSON format), `--notify-limit` and
//! `--notify-when-full` bound the store's outbox. The deliverer runs on
//! the server's runtime, draining every set's outbox.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use cairn_api::notify::{Outbox, OutboxLimit, WhenFull};
use cairn_events::{Deliverer, NotifyConfig};

#[derive(Debug, Clone, clap::Args)]
pub struct NotifyArgs {
    /// Event notification targets: a JSON file (see README "Event
    /// notifications"); each target's ARN is arn:cairn:sqs::ID:TYPE.
    #[arg(long, env = "CAIRN_NOTIFY_CONFIG")]
    pub notify_config: Option<PathBuf>,
    /// Most undelivered events kept on the drives (per erasure set).
    #[arg(long, default_value_t = 1_000_000, env = "CAIRN_NOTIFY_LIMIT")]
    pub notify_limit: u64,
    /// What a write that raises an event does when the outbox is full:
    /// refuse (503, nothing lost) or drop-oldest (the oldest event goes).
    #[arg(long, default_value = "refuse", env = "CAIRN_NOTIFY_WHEN_FULL", value_parser = parse_when_full)]
    pub notify_when_full: WhenFull,
}

fn parse_when_full(s: &str) -> Result<WhenFull, String> {
    match s {
        "refuse" => Ok(WhenFull::Refuse),
        "drop-oldest" => Ok(WhenFull::DropOldest),
        _ => Err(format!("{s:?}: refuse or drop-oldest")),
    }
}

impl NotifyArgs {
    pub fn limit(&self) -> OutboxLimit {
        OutboxLimit {
            max_records: self.notify_limit,
            when_full: self.notify_when_full,
        }
    }

    /// The configured targets (none without `--notify-config`).
    pub fn config(&self) -> anyhow::Result<NotifyConfig> {
        let Some(path) = &self.notify_config else {
            return Ok(NotifyConfig::default());
        };
        let text = std::fs::read(path)
            .with_context(|| format!("reading the notification targets {}", path.display()))?;
        serde_json::from_slice(&text)
            .with_context(|| format!("the notification targets in {}", path.display()))
    }
}

/// Starts the deliverer over `outbox` (also without targets: records a
/// bucket's rules still name are then dropped, counted, not kept forever).
pub fn start(config: &NotifyConfig, outbox: Arc<dyn Outbox>, region: &str) -> anyhow::Result<()> {
    let targets = config.open().context("notification targets")?;
    if !targets.is_empty() {
        tracing::info!(targets = ?config.names(), "event notifications on");
    }
    tokio::spawn(Deliverer::new(outbox, targets, region.to_owned()).run());
    Ok(())
}
