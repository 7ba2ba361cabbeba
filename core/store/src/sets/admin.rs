//! Administration of a deployment of sets: drive info, heal, metrics and
//! lifecycle over every set; the KMS key rotated once and every set's
//! object keys re-wrapped; configuration records (IAM) placed on sets
//! by their names as object keys are.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cairn_api::admin::{
    AdminLayer, HealEvent, HealRequest, HealStream, HealSummary, KmsInfo, LifecycleSummary, Metric,
    RotateSummary, ServerInfo,
};
use cairn_api::{BucketName, ConfigDir, ConfigStore, ObjectResult};
use futures::StreamExt as _;
use futures::future::join_all;

use super::ErasureSets;

fn add_heal(sum: &mut HealSummary, s: &HealSummary) {
    sum.objects_scanned += s.objects_scanned;
    sum.objects_healed += s.objects_healed;
    sum.drives_rewritten += s.drives_rewritten;
    sum.bad_blocks += s.bad_blocks;
    sum.failed += s.failed;
    sum.elapsed_ms += s.elapsed_ms;
}

/// One metric per name; samples with the same labels (a counter every
/// set keeps) added up.
fn merge_metrics(per_set: Vec<Vec<Metric>>) -> Vec<Metric> {
    let mut out: Vec<Metric> = Vec::new();
    for m in per_set.into_iter().flatten() {
        let Some(have) = out.iter_mut().find(|o| o.name == m.name) else {
            out.push(m);
            continue;
        };
        for s in m.samples {
            match have.samples.iter_mut().find(|h| h.labels == s.labels) {
                Some(h) => h.value += s.value,
                None => have.samples.push(s),
            }
        }
    }
    out
}

#[async_trait]
impl AdminLayer for ErasureSets {
    async fn server_info(&self) -> ObjectResult<ServerInfo> {
        let mut info = self.home().server_info().await?;
        info.drives.clear();
        info.heal_queue = 0;
        info.objects_healed = 0;
        info.bitrot_errors = 0;
        info.scanner_cycles = 0;
        info.unrecoverable_reads = 0;
        for i in join_all(self.sets.iter().map(|s| s.server_info())).await {
            let i = i?;
            let base = info.drives.len();
            info.drives.extend(i.drives.into_iter().map(|mut d| {
                d.index += base;
                d
            }));
            info.heal_queue += i.heal_queue;
            info.objects_healed += i.objects_healed;
            info.bitrot_errors += i.bitrot_errors;
            info.scanner_cycles += i.scanner_cycles;
            info.unrecoverable_reads += i.unrecoverable_reads;
        }
        Ok(info)
    }

    /// Each set healed in turn; progress and errors as each set reports
    /// them, one `Done` with the sum at the end.
    fn heal(self: Arc<Self>, req: HealRequest) -> HealStream {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let mut sum = HealSummary::default();
            for set in self.sets.iter().cloned() {
                let mut events = set.heal(req.clone());
                while let Some(e) = events.next().await {
                    match e {
                        HealEvent::Done { summary } => add_heal(&mut sum, &summary),
                        e => {
                            if tx.send(e).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            let _ = tx.send(HealEvent::Done { summary: sum }).await;
        });
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|e| (e, rx))
        }))
    }

    async fn metrics(&self) -> Vec<Metric> {
        merge_metrics(join_all(self.sets.iter().map(|s| s.metrics())).await)
    }

    fn set_scanner(&self, enabled: bool) -> bool {
        // every set switched, whatever the first answers
        let switched: Vec<bool> = self.sets.iter().map(|s| s.set_scanner(enabled)).collect();
        switched.contains(&true)
    }

    async fn kms_status(&self) -> ObjectResult<KmsInfo> {
        self.home().kms_status().await
    }

    async fn kms_create_key(&self, name: &str) -> ObjectResult<()> {
        self.home().kms_create_key(name).await
    }

    /// The key rotated once (the KMS is the deployment's), then every
    /// set's object keys re-wrapped.
    async fn kms_rotate(&self, name: Option<&str>) -> ObjectResult<RotateSummary> {
        let kms = self.home().kms_or_err()?;
        let key = name.unwrap_or(kms.default_key()).to_owned();
        let new_version = kms.rotate_key(&key).await?;
        tracing::info!(
            key,
            new_version,
            sets = self.sets.len(),
            "KMS key rotated; re-wrapping object keys"
        );
        let mut sum = RotateSummary {
            key: key.clone(),
            new_version,
            ..Default::default()
        };
        for s in &self.sets {
            s.reseal_objects(&key, &mut sum).await?;
        }
        Ok(sum)
    }

    async fn lifecycle_run(&self) -> ObjectResult<LifecycleSummary> {
        let mut sum = LifecycleSummary::default();
        for s in &self.sets {
            let r = s.lifecycle_run().await?;
            sum.buckets = sum.buckets.max(r.buckets);
            sum.expired_current += r.expired_current;
            sum.removed_noncurrent += r.removed_noncurrent;
            sum.removed_delete_markers += r.removed_delete_markers;
            sum.aborted_uploads += r.aborted_uploads;
            sum.skipped_locked += r.skipped_locked;
        }
        Ok(sum)
    }

    async fn bucket_worm(&self, bucket: &BucketName) -> ObjectResult<()> {
        self.on_every_set(|s| async move { s.bucket_worm(bucket).await })
            .await
    }
}

#[async_trait]
impl ConfigStore for ErasureSets {
    async fn config_list(&self, dir: ConfigDir) -> ObjectResult<Vec<(String, Vec<u8>)>> {
        let mut all = BTreeMap::new();
        for l in join_all(self.sets.iter().map(|s| s.config_list(dir))).await {
            all.extend(l?);
        }
        Ok(all.into_iter().collect())
    }

    /// On the set the record's name hashes to, as an object's key.
    async fn config_put(
        &self,
        dir: ConfigDir,
        name: &str,
        body: Option<Vec<u8>>,
    ) -> ObjectResult<()> {
        let place = format!("{}/{name}", dir.as_str());
        let set = self.set_of(&place);
        set.config_put(dir, name, body).await?;
        // other nodes of a cluster read their copies again
        set.changed(super::CONFIG_CHANGES, &place);
        Ok(())
    }

    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.config_changes.as_ref().map(|w| w.subscribe())
    }
}
