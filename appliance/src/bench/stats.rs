//! Latency percentiles and the result lines every benchmark prints.

use std::time::Duration;

const MIB: f64 = (1u64 << 20) as f64;

/// Percentile (nearest rank) of latencies in microseconds; sorts in place.
pub(crate) fn percentile_ms(lat_us: &mut [u64], p: f64) -> f64 {
    if lat_us.is_empty() {
        return 0.0;
    }
    lat_us.sort_unstable();
    let rank = ((p / 100.0) * lat_us.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, lat_us.len()) - 1;
    lat_us.get(idx).map_or(0.0, |&us| us as f64 / 1000.0)
}

/// The outcome of one S3 or file-read run.
#[derive(Debug, serde::Serialize)]
pub(crate) struct LoadResult {
    pub bench: &'static str,
    pub op: String,
    pub size: u64,
    pub concurrency: usize,
    pub ops: u64,
    pub bytes: u64,
    pub errors: u64,
    pub seconds: f64,
    pub mib_s: f64,
    pub ops_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl LoadResult {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        bench: &'static str,
        op: impl Into<String>,
        size: u64,
        concurrency: usize,
        mut lat_us: Vec<u64>,
        bytes: u64,
        errors: u64,
        elapsed: Duration,
        first_error: Option<String>,
    ) -> Self {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let ops = lat_us.len() as u64;
        let p50_ms = percentile_ms(&mut lat_us, 50.0);
        let p99_ms = percentile_ms(&mut lat_us, 99.0);
        Self {
            bench,
            op: op.into(),
            size,
            concurrency,
            ops,
            bytes,
            errors,
            seconds: secs,
            mib_s: bytes as f64 / MIB / secs,
            ops_s: ops as f64 / secs,
            p50_ms,
            p99_ms,
            first_error,
        }
    }

    pub(crate) fn print(&self, json: bool) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string(self)?);
            return Ok(());
        }
        println!(
            "{:<4} {:<4} size={:<7} c={:<3} {:>9.1} MiB/s {:>9.1} ops/s  p50 {:>8.2} ms  p99 {:>8.2} ms  ops {:>7}  errors {}  ({:.2} s)",
            self.bench,
            self.op,
            super::human_size(self.size),
            self.concurrency,
            self.mib_s,
            self.ops_s,
            self.p50_ms,
            self.p99_ms,
            self.ops,
            self.errors,
            self.seconds,
        );
        if let Some(e) = &self.first_error {
            println!("     first error: {e}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&mut v, 50.0), 50.0);
        assert_eq!(percentile_ms(&mut v, 99.0), 99.0);
        assert_eq!(percentile_ms(&mut v, 100.0), 100.0);
        assert_eq!(percentile_ms(&mut [], 50.0), 0.0);
        assert_eq!(percentile_ms(&mut [7000], 99.0), 7.0);
    }
}
