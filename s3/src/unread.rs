//! Request bodies an operation refused before reading them.
//!
//! When an error is answered before the body is read (no such bucket, no
//! write quorum, a bad header), a client that does not send `Expect:
//! 100-continue` (aws-sdk-rust, for one) is still writing the body; if the
//! server closes, the client sees a broken pipe instead of the S3 error.
//! So the front keeps a handle on the body and, after an error response,
//! reads and discards what is left, within a byte and time budget, as
//! HTTP servers do.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt as _;

use crate::timed::{BodyError, TimedBody};

/// Most bytes read and discarded after an error response.
const DRAIN_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Longest time spent discarding.
const DRAIN_MAX_TIME: Duration = Duration::from_secs(30);

/// The request body, shared between the S3 service and the front.
#[derive(Clone)]
pub(crate) struct SharedBody {
    body: Arc<Mutex<TimedBody>>,
    /// Whether the service ever asked for the body (hyper sends
    /// `100 Continue` then, for a body that is not empty).
    polled: Arc<AtomicBool>,
}

impl SharedBody {
    pub(crate) fn new(body: TimedBody) -> Self {
        Self {
            body: Arc::new(Mutex::new(body)),
            polled: Arc::new(AtomicBool::new(false)),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut TimedBody) -> R) -> R {
        let mut g = match self.body.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut g)
    }

    pub(crate) fn was_polled(&self) -> bool {
        self.polled.load(Ordering::Relaxed)
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.with(|b| b.is_end_stream())
    }

    /// Whether the body failed for being stalled or too slow.
    pub(crate) fn timed_out(&self) -> bool {
        self.with(|b| b.timed_out())
    }

    /// Reads and drops the rest of the body, within the budget.
    pub(crate) async fn discard_rest(mut self) {
        let mut seen = 0u64;
        let drain = async {
            while let Some(frame) = self.frame().await {
                let Ok(frame) = frame else { return };
                if let Some(data) = frame.data_ref() {
                    seen += data.len() as u64;
                    if seen > DRAIN_MAX_BYTES {
                        return;
                    }
                }
            }
        };
        if tokio::time::timeout(DRAIN_MAX_TIME, drain).await.is_err() {
            tracing::debug!("gave up discarding an unread request body");
        }
    }
}

impl http_body::Body for SharedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.polled.store(true, Ordering::Relaxed);
        self.with(|b| Pin::new(b).poll_frame(cx))
    }

    fn is_end_stream(&self) -> bool {
        self.with(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.with(|b| b.size_hint())
    }
}
