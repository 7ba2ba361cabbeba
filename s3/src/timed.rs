//! Request bodies with a timeout and a minimum rate.
//!
//! Only the time the server spends waiting for the client counts: the
//! clock runs while a read of the body finds nothing there, from the
//! first such read after the last bytes. A body that leaves the server
//! waiting `timeout` with nothing arriving, or that delivers less than
//! `min_rate` bytes/s over `timeout` of waiting, fails; the front then
//! answers 400 RequestTimeout and closes the connection (`server.rs`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error("the client sent nothing of the request body for {0:?}")]
    Stalled(Duration),
    #[error("the client sent the request body slower than {0} bytes/s")]
    TooSlow(u64),
}

/// How long and how slow a body may be.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyLimits {
    pub(crate) timeout: Duration,
    pub(crate) min_rate: u64,
}

pub(crate) struct TimedBody {
    inner: Incoming,
    limits: BodyLimits,
    /// Set while reads find nothing: when the server began waiting.
    waiting_since: Option<Instant>,
    /// Fires `timeout` after `waiting_since`.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Waiting time and bytes in the current rate window.
    waited: Duration,
    bytes: u64,
    failed: Option<FailKind>,
    /// Every body byte received (the access log's `bytes_in`).
    received: Arc<AtomicU64>,
}

#[derive(Clone, Copy, Debug)]
enum FailKind {
    Stalled,
    TooSlow,
}

impl TimedBody {
    pub(crate) fn new(inner: Incoming, limits: BodyLimits) -> Self {
        Self {
            inner,
            limits,
            waiting_since: None,
            deadline: None,
            waited: Duration::ZERO,
            bytes: 0,
            failed: None,
            received: Arc::default(),
        }
    }

    /// The count of body bytes received so far, kept up to date.
    pub(crate) fn received(&self) -> Arc<AtomicU64> {
        self.received.clone()
    }

    /// Whether the body failed for being stalled or too slow.
    pub(crate) fn timed_out(&self) -> bool {
        self.failed.is_some()
    }

    fn fail(&mut self, kind: FailKind) -> BodyError {
        self.failed = Some(kind);
        self.deadline = None;
        match kind {
            FailKind::Stalled => BodyError::Stalled(self.limits.timeout),
            FailKind::TooSlow => BodyError::TooSlow(self.limits.min_rate),
        }
    }

    /// Counts `n` bytes that arrived; false if the window they close is
    /// below the minimum rate.
    fn arrived(&mut self, n: usize) -> bool {
        if let Some(since) = self.waiting_since.take() {
            self.waited += since.elapsed();
        }
        self.deadline = None;
        self.bytes += n as u64;
        if self.waited < self.limits.timeout {
            return true;
        }
        let needed = self.limits.min_rate as f64 * self.waited.as_secs_f64();
        let ok = self.bytes as f64 >= needed;
        self.waited = Duration::ZERO;
        self.bytes = 0;
        ok
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if let Some(kind) = this.failed {
            return Poll::Ready(Some(Err(this.fail(kind))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, Bytes::len);
                this.received.fetch_add(n as u64, Ordering::Relaxed);
                if !this.arrived(n) {
                    return Poll::Ready(Some(Err(this.fail(FailKind::TooSlow))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let timeout = this.limits.timeout;
                this.waiting_since.get_or_insert_with(Instant::now);
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(this.fail(FailKind::Stalled))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
