//! Metrics of the front (requests by method, by S3 operation, latencies,
//! bytes in and out), plus the store's own (drives, capacity, bucket
//! usage, heal, scanner) when it offers an admin layer, encoded in the
//! Prometheus text format by `prometheus-client`.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cairn_api::admin::{Metric, MetricKind};
use http_body::{Frame, SizeHint};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `Content-Type` of the page.
pub(crate) use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

/// The operation label of requests that never reached one (refused
/// signature, throttled, unroutable).
const NO_OPERATION: &str = "none";
/// The operation label of admin API calls.
pub(crate) const ADMIN_OPERATION: &str = "CairnAdmin";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodStatus {
    method: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationStatus {
    operation: String,
    status: &'static str,
}

type HistogramFamily = Family<MethodLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

pub(crate) struct RequestMetrics {
    registry: Registry,
    requests: Family<MethodStatus, Counter>,
    operations: Family<OperationStatus, Counter>,
    duration: HistogramFamily,
    received: Counter,
    sent: Counter,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        let requests = Family::<MethodStatus, Counter>::default();
        let operations = Family::<OperationStatus, Counter>::default();
        let duration = HistogramFamily::new_with_constructor(latency_histogram);
        let received = Counter::default();
        let sent = Counter::default();
        let mut registry = Registry::default();
        registry.register(
            "cairn_s3_requests",
            "S3 requests by HTTP method and status class",
            requests.clone(),
        );
        registry.register(
            "cairn_s3_operations",
            "S3 requests by operation (PutObject, GetObject, ...) and status class",
            operations.clone(),
        );
        registry.register(
            "cairn_s3_request_duration_seconds",
            "Time to the response headers",
            duration.clone(),
        );
        registry.register(
            "cairn_s3_received_bytes",
            "Request body bytes read by S3 operations",
            received.clone(),
        );
        registry.register(
            "cairn_s3_sent_bytes",
            "Response body bytes sent",
            sent.clone(),
        );
        Self {
            registry,
            requests,
            operations,
            duration,
            received,
            sent,
        }
    }
}

fn method_label(m: &http::Method) -> &'static str {
    METHODS
        .iter()
        .find(|x| **x == m.as_str())
        .copied()
        .unwrap_or("OTHER")
}

fn status_class(status: http::StatusCode) -> &'static str {
    match status.as_u16() {
        0..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

// Every index is in bounds: method_index() < 6, the class < 4 and the
// bucket <= BUCKETS.len(), the arrays' sizes; render() walks the same sizes.
#[allow(clippy::indexing_slicing)]
impl RequestMetrics {
    /// Counts one answered request. `operation`: the S3 operation it
    /// resolved to, if it got that far.
    pub(crate) fn record(
        &self,
        method: &http::Method,
        operation: Option<&str>,
        status: http::StatusCode,
        took: Duration,
    ) {
        let method = method_label(method);
        let status = status_class(status);
        self.requests
            .get_or_create(&MethodStatus { method, status })
            .inc();
        self.operations
            .get_or_create(&OperationStatus {
                operation: operation.unwrap_or(NO_OPERATION).to_owned(),
                status,
            })
            .inc();
        self.duration
            .get_or_create(&MethodLabel { method })
            .observe(took.as_secs_f64());
    }

    /// Counts request body bytes as an operation reads them.
    pub(crate) fn received(&self) -> Counter {
        self.received.clone()
    }

    /// Counts response body bytes as they are sent.
    pub(crate) fn sent(&self) -> Counter {
        self.sent.clone()
    }

    /// The page: the front's metrics, then the store's.
    pub(crate) fn render(&self, store: Vec<Metric>) -> String {
        let mut out = String::new();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(StoreMetrics(store)));
        // Writing to a String cannot fail; an encoding error would only
        // cut the page short.
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).and_then(
                |()| prometheus_client::encoding::prometheus_text::encode(&mut out, &registry),
            )
        {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        out
    }
}

/// The store's metrics of one scrape.
#[derive(Debug)]
struct StoreMetrics(Vec<Metric>);

impl Collector for StoreMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for m in &self.0 {
            let (name, kind) = match m.kind {
                // the encoder adds `_total` to a counter's name
                MetricKind::Counter => (
                    m.name.strip_suffix("_total").unwrap_or(m.name),
                    MetricType::Counter,
                ),
                MetricKind::Gauge => (m.name, MetricType::Gauge),
            };
            let mut family = encoder.encode_descriptor(name, m.help, None, kind)?;
            for s in &m.samples {
                let sample = family.encode_family(&s.labels)?;
                match m.kind {
                    MetricKind::Counter => ConstCounter::new(s.value).encode(sample)?,
                    MetricKind::Gauge => ConstGauge::new(s.value).encode(sample)?,
                }
            }
        }
        Ok(())
    }
}

/// Where the S3 operation a request resolved to is written (a request
/// extension the front puts in and reads back).
#[derive(Clone, Default)]
pub(crate) struct OperationSlot(Arc<OnceLock<String>>);

impl OperationSlot {
    pub(crate) fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }

    pub(crate) fn set(&self, op: &str) {
        let _ = self.0.set(op.to_owned());
    }
}

/// A body whose data bytes are added to a counter as they pass.
pub(crate) struct Counted<B> {
    inner: B,
    counter: Counter,
}

impl<B> Counted<B> {
    pub(crate) fn new(inner: B, counter: Counter) -> Self {
        Self { inner, counter }
    }
}

impl<B> http_body::Body for Counted<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.counter.inc_by(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_api::admin::MetricSample;

    #[test]
    fn page_has_front_and_store_metrics() {
        let m = RequestMetrics::default();
        m.record(
            &http::Method::PUT,
            Some("PutObject"),
            http::StatusCode::OK,
            Duration::from_millis(3),
        );
        m.record(
            &http::Method::GET,
            None,
            http::StatusCode::FORBIDDEN,
            Duration::from_millis(1),
        );
        m.received().inc_by(10);
        let store = vec![
            Metric::single(
                "cairn_objects_healed_total",
                "Objects healed.",
                MetricKind::Counter,
                7,
            ),
            Metric {
                name: "cairn_bucket_usage_bytes",
                help: "Bytes.",
                kind: MetricKind::Gauge,
                samples: vec![MetricSample {
                    labels: vec![("bucket", "b1".into())],
                    value: 42,
                }],
            },
        ];
        let page = m.render(store);
        for line in [
            "cairn_s3_requests_total{method=\"PUT\",status=\"2xx\"} 1",
            "cairn_s3_requests_total{method=\"GET\",status=\"4xx\"} 1",
            "cairn_s3_operations_total{operation=\"PutObject\",status=\"2xx\"} 1",
            "cairn_s3_operations_total{operation=\"none\",status=\"4xx\"} 1",
            "cairn_s3_request_duration_seconds_bucket{method=\"PUT\",le=\"0.005\"} 1",
            "cairn_s3_received_bytes_total 10",
            "cairn_s3_sent_bytes_total 0",
            "# TYPE cairn_objects_healed_total counter",
            "cairn_objects_healed_total 7",
            "# TYPE cairn_bucket_usage_bytes gauge",
            "cairn_bucket_usage_bytes{bucket=\"b1\"} 42",
        ] {
            assert!(page.lines().any(|l| l == line), "no {line:?} in\n{page}");
        }
    }
}
