//! Bucket replication in the binary: the service started beside the
//! store (its targets in the store's config records, its tasks from the
//! store's outbox), and `cairn admin replicate add|list|remove|status`,
//! which call the admin API's `replication/...` (the target's secret in
//! the request body, never in the URL).

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use cairn_api::replication::{
    ReplicationAdmin, ReplicationReport, ResyncPhase, ResyncReport, TargetInfo, TargetSpec,
};
use cairn_replication::{ReplicationService, ServiceConfig};
use http_body_util::BodyExt as _;

use crate::admin::{HttpClient, Signed, Signer, call_error, enc};

/// Starts the replication service over the store (`set`: its objects,
/// outbox and config records).
pub async fn start<S>(set: Arc<S>) -> anyhow::Result<Arc<dyn ReplicationAdmin>>
where
    S: cairn_api::ObjectLayer + cairn_api::notify::Outbox + cairn_api::ConfigStore,
{
    let service = ReplicationService::load(ServiceConfig {
        layer: set.clone(),
        outbox: set.clone(),
        store: set,
    })
    .await
    .context("loading the replication targets")?;
    tokio::spawn(service.clone().run());
    Ok(service)
}

#[derive(clap::Subcommand, Debug)]
pub enum ReplicateCommand {
    /// Register where BUCKET's versions go (rules name it by its ARN).
    Add {
        bucket: String,
        /// The destination bucket: its ARN (arn:aws:s3:::NAME) or name.
        #[arg(long)]
        target_bucket: String,
        /// The destination's S3 endpoint (http(s)://host:port); `--endpoint`
        /// is the server this command talks to.
        #[arg(long)]
        target_endpoint: String,
        #[arg(long)]
        access_key: String,
        /// The destination's secret key (or CAIRN_REPLICATE_SECRET_KEY).
        #[arg(long, env = "CAIRN_REPLICATE_SECRET_KEY", hide_env_values = true)]
        secret_key: String,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// Bytes per second the copies to this target may use.
        #[arg(long)]
        bandwidth: Option<u64>,
        /// Writes answer only once the copy is at the target.
        #[arg(long)]
        sync: bool,
    },
    /// BUCKET's targets (without secrets).
    List {
        bucket: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a target (refused while a rule names it).
    Remove {
        bucket: String,
        /// The destination bucket's ARN or name.
        #[arg(long)]
        target_bucket: String,
    },
    /// Per target: backlog, lag, versions and bytes copied, failures, and
    /// the last resync's progress.
    Status {
        bucket: String,
        #[arg(long)]
        json: bool,
    },
    /// Send every version and delete marker of BUCKET that a rule sends to
    /// TARGET again (after the target lost them); `status` shows progress.
    Resync {
        bucket: String,
        /// The destination bucket's ARN or name.
        target: String,
        /// Print the progress every second until the resync ends.
        #[arg(long)]
        wait: bool,
    },
}

/// A byte count for people (binary units).
fn bytes(n: u64) -> String {
    let mut v = n as f64;
    let mut unit = "B";
    for next in ["KiB", "MiB", "GiB", "TiB"] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = next;
    }
    if unit == "B" {
        format!("{n} B")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// Seconds as `1h02m03s` / `2m03s` / `3s`.
fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// One line of a resync's progress.
fn resync_line(r: &ResyncReport) -> String {
    let mut line = format!("resync {}: {}", r.id, r.phase.as_str());
    if r.phase != ResyncPhase::Counting {
        line.push_str(&format!(
            "  {}/{} objects  {}/{}",
            r.done_objects,
            r.total_objects,
            bytes(r.done_bytes),
            bytes(r.total_bytes)
        ));
    }
    if r.phase == ResyncPhase::Sending {
        line.push_str(&format!("  {}/s", bytes(r.rate)));
        match r.eta_secs {
            Some(s) => line.push_str(&format!("  ETA {}", duration(s))),
            None => line.push_str("  ETA unknown"),
        }
    }
    if let Some(e) = &r.error {
        line.push_str(&format!("\n  stopped: {e} (run the resync again)"));
    }
    line
}

/// The ARN of a destination given as ARN or bucket name.
fn arn_of(target: &str) -> String {
    if target.starts_with("arn:") {
        target.to_owned()
    } else {
        format!("arn:aws:s3:::{target}")
    }
}

async fn call(
    client: &HttpClient,
    signer: &Signer,
    endpoint: &str,
    method: &str,
    what: &str,
    body: Option<Bytes>,
) -> anyhow::Result<Bytes> {
    let path = crate::admin::admin_path(&format!("replication/{what}"));
    let req = signer.signed(Signed {
        method,
        path_and_query: &path,
        service: "s3",
        content_type: body.as_ref().map(|_| "application/json"),
        body: body.unwrap_or_default(),
    })?;
    let resp = client
        .request(req)
        .await
        .with_context(|| format!("connecting to {endpoint}"))?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        return Err(call_error(endpoint, status, &bytes));
    }
    Ok(bytes)
}

pub(crate) async fn run(
    client: &HttpClient,
    signer: &Signer,
    endpoint: &str,
    cmd: &ReplicateCommand,
) -> anyhow::Result<()> {
    match cmd {
        ReplicateCommand::Add {
            bucket,
            target_bucket,
            target_endpoint: target,
            access_key,
            secret_key,
            region,
            bandwidth,
            sync,
        } => {
            let spec = TargetSpec {
                bucket: bucket.clone(),
                arn: arn_of(target_bucket),
                endpoint: target.clone(),
                access_key: access_key.clone(),
                secret_key: secret_key.clone(),
                region: region.clone(),
                bandwidth: *bandwidth,
                sync: *sync,
            };
            let body = Bytes::from(serde_json::to_vec(&spec)?);
            let out = call(client, signer, endpoint, "POST", "targets", Some(body)).await?;
            let info: TargetInfo = serde_json::from_slice(&out).context("the server's answer")?;
            println!(
                "replication target of {}: {} at {} (rules name it as Destination Bucket {})",
                info.bucket, info.arn, info.endpoint, info.arn
            );
        }
        ReplicateCommand::List { bucket, json } => {
            let out = call(
                client,
                signer,
                endpoint,
                "GET",
                &format!("targets?bucket={}", enc(bucket)),
                None,
            )
            .await?;
            if *json {
                println!("{}", String::from_utf8_lossy(&out));
                return Ok(());
            }
            let list: Vec<TargetInfo> =
                serde_json::from_slice(&out).context("the server's answer")?;
            if list.is_empty() {
                println!("{bucket} has no replication targets");
            }
            for t in list {
                let bw = t
                    .bandwidth
                    .map_or("unlimited".to_owned(), |b| format!("{b} B/s"));
                println!(
                    "{}  {}  key {}  region {}  bandwidth {bw}{}",
                    t.arn,
                    t.endpoint,
                    t.access_key,
                    t.region,
                    if t.sync { "  sync" } else { "" }
                );
            }
        }
        ReplicateCommand::Remove {
            bucket,
            target_bucket,
        } => {
            let what = format!(
                "targets?bucket={}&arn={}",
                enc(bucket),
                enc(&arn_of(target_bucket))
            );
            call(client, signer, endpoint, "DELETE", &what, None).await?;
            println!(
                "replication target {} of {bucket} removed",
                arn_of(target_bucket)
            );
        }
        ReplicateCommand::Status { bucket, json } => {
            let what = format!("status?bucket={}", enc(bucket));
            let out = call(client, signer, endpoint, "GET", &what, None).await?;
            if *json {
                println!("{}", String::from_utf8_lossy(&out));
                return Ok(());
            }
            let r: ReplicationReport =
                serde_json::from_slice(&out).context("the server's answer")?;
            if r.targets.is_empty() {
                println!("{bucket} has no replication targets");
            }
            for t in r.targets {
                println!(
                    "{}  {}\n  backlog {}  lag {} s  replicated {}  bytes {}  failures {}{}{}",
                    t.arn,
                    t.endpoint,
                    t.backlog,
                    t.lag_secs,
                    t.replicated,
                    t.bytes,
                    t.failures,
                    t.last_error
                        .map(|e| format!("\n  last error: {e}"))
                        .unwrap_or_default(),
                    t.resync
                        .map(|r| format!("\n  {}", resync_line(&r)))
                        .unwrap_or_default()
                );
            }
        }
        ReplicateCommand::Resync {
            bucket,
            target,
            wait,
        } => {
            let arn = arn_of(target);
            let what = format!("resync?bucket={}&arn={}", enc(bucket), enc(&arn));
            let out = call(client, signer, endpoint, "POST", &what, None).await?;
            let r: ResyncReport = serde_json::from_slice(&out).context("the server's answer")?;
            println!("resync {} of {bucket} to {arn} started", r.id);
            if !*wait {
                println!("progress: cairn admin replicate status {bucket}");
                return Ok(());
            }
            let what = format!("status?bucket={}", enc(bucket));
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let out = call(client, signer, endpoint, "GET", &what, None).await?;
                let st: ReplicationReport =
                    serde_json::from_slice(&out).context("the server's answer")?;
                let now = st
                    .targets
                    .into_iter()
                    .find(|t| t.arn == arn)
                    .and_then(|t| t.resync)
                    .filter(|x| x.id == r.id)
                    .context("the resync is no longer there (replaced, or its target removed)")?;
                println!("{}", resync_line(&now));
                match now.phase {
                    ResyncPhase::Done => return Ok(()),
                    ResyncPhase::Stopped => anyhow::bail!("the resync stopped"),
                    ResyncPhase::Counting | ResyncPhase::Sending => {}
                }
            }
        }
    }
    Ok(())
}
