//! Bucket replication in the binary: the service started beside the
//! store (its targets in the store's config records, its tasks from the
//! store's outbox), and `cairn admin replicate add|list|remove|status`,
//! which call the admin API's `replication/...` (the target's secret in
//! the request body, never in the URL).

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use cairn_api::replication::{ReplicationAdmin, ReplicationReport, TargetInfo, TargetSpec};
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
    /// Per target: backlog, lag, versions and bytes copied, failures.
    Status {
        bucket: String,
        #[arg(long)]
        json: bool,
    },
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
                    "{}  {}\n  backlog {}  lag {} s  replicated {}  bytes {}  failures {}{}",
                    t.arn,
                    t.endpoint,
                    t.backlog,
                    t.lag_secs,
                    t.replicated,
                    t.bytes,
                    t.failures,
                    t.last_error
                        .map(|e| format!("\n  last error: {e}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
