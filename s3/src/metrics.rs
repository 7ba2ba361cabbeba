//! Request metrics of the front, in Prometheus text format, plus the
//! store's own (drives, heal, scanner) when it offers an admin layer.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
const METHODS: [&str; 6] = ["GET", "PUT", "POST", "DELETE", "HEAD", "OTHER"];
const CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

#[derive(Default)]
pub(crate) struct RequestMetrics {
    /// [method][status class]
    counts: [[AtomicU64; 4]; 6],
    /// [method][bucket], cumulative counts are computed on output.
    latency: [[AtomicU64; BUCKETS.len() + 1]; 6],
    latency_sum_us: [AtomicU64; 6],
}

fn method_index(m: &http::Method) -> usize {
    METHODS.iter().position(|x| *x == m.as_str()).unwrap_or(5)
}

// Every index is in bounds: method_index() < 6, the class < 4 and the
// bucket <= BUCKETS.len(), the arrays' sizes; render() walks the same sizes.
#[allow(clippy::indexing_slicing)]
impl RequestMetrics {
    pub(crate) fn record(&self, method: &http::Method, status: http::StatusCode, took: Duration) {
        let m = method_index(method);
        let class = match status.as_u16() {
            0..=299 => 0,
            300..=399 => 1,
            400..=499 => 2,
            _ => 3,
        };
        self.counts[m][class].fetch_add(1, Relaxed);
        let secs = took.as_secs_f64();
        let b = BUCKETS
            .iter()
            .position(|&u| secs <= u)
            .unwrap_or(BUCKETS.len());
        self.latency[m][b].fetch_add(1, Relaxed);
        self.latency_sum_us[m].fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP cairn_s3_requests_total S3 requests by method and status class.\n# TYPE cairn_s3_requests_total counter\n");
        for (mi, m) in METHODS.iter().enumerate() {
            for (ci, c) in CLASSES.iter().enumerate() {
                let v = self.counts[mi][ci].load(Relaxed);
                if v > 0 {
                    let _ = writeln!(
                        out,
                        "cairn_s3_requests_total{{method=\"{m}\",status=\"{c}\"}} {v}"
                    );
                }
            }
        }
        out.push_str("# HELP cairn_s3_request_duration_seconds Time to the response headers.\n# TYPE cairn_s3_request_duration_seconds histogram\n");
        for (mi, m) in METHODS.iter().enumerate() {
            let total: u64 = self.latency[mi].iter().map(|c| c.load(Relaxed)).sum();
            if total == 0 {
                continue;
            }
            let mut cum = 0;
            for (bi, le) in BUCKETS.iter().enumerate() {
                cum += self.latency[mi][bi].load(Relaxed);
                let _ = writeln!(
                    out,
                    "cairn_s3_request_duration_seconds_bucket{{method=\"{m}\",le=\"{le}\"}} {cum}"
                );
            }
            let _ = writeln!(
                out,
                "cairn_s3_request_duration_seconds_bucket{{method=\"{m}\",le=\"+Inf\"}} {total}"
            );
            let sum = self.latency_sum_us[mi].load(Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "cairn_s3_request_duration_seconds_sum{{method=\"{m}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "cairn_s3_request_duration_seconds_count{{method=\"{m}\"}} {total}"
            );
        }
        out
    }
}
