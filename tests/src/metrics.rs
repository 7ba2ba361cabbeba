//! Reading the server's Prometheus `/_cairn/metrics` page.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::{Server, raw};

impl Server {
    /// `GET /_cairn/metrics`, with `Authorization: Bearer TOKEN` when a
    /// token is given.
    pub async fn metrics_page(&self, token: Option<&str>) -> Result<raw::Response> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        raw::Client::new(self.addr(), None)
            .send("GET", crate::METRICS, &headers, b"")
            .await
    }

    /// The text of `GET /_cairn/metrics` (no credentials needed).
    pub async fn metrics_text(&self) -> Result<String> {
        let r = raw::get(&self.addr(), crate::METRICS).await?;
        ensure!(
            r.status == 200,
            "GET /_cairn/metrics (unauthenticated): {}",
            r.describe()
        );
        Ok(r.text())
    }

    /// Waits until the heal queue (queued plus being healed) is empty, so a
    /// test can touch shard files without racing the background healer.
    pub async fn wait_heal_idle(&self, timeout: Duration) -> Result<()> {
        let until = Instant::now() + timeout;
        loop {
            let text = self.metrics_text().await?;
            if metric_of(&text, "cairn_heal_queue_length")? == 0.0 {
                return Ok(());
            }
            if Instant::now() > until {
                bail!("heal queue not empty after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Value of an unlabelled metric (`name value` line).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok()).flatten()
    })
}

/// [`metric`], or an error quoting the page when the line is missing.
pub fn metric_of(text: &str, name: &str) -> Result<f64> {
    metric(text, name).with_context(|| format!("no `{name}` line in /_cairn/metrics:\n{text}"))
}

/// Value of a labelled sample: the line `name{...}` whose labels include
/// every `key="value"` of `labels`.
pub fn labelled(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix('{')?;
        let (set, value) = rest.rsplit_once("} ")?;
        let all = labels
            .iter()
            .all(|(k, v)| set.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
        all.then(|| value.trim().parse().ok()).flatten()
    })
}
