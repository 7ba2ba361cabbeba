//! The progress of a forwarded request: its body, passed on unchanged,
//! notes when each frame went out, so the router can tell an owner that
//! is still taking a long upload from one that stopped answering.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body::{Body, Frame, SizeHint};

/// When a forward last made progress (shared by the body and its
/// watcher).
#[derive(Clone, Debug)]
pub struct Activity {
    start: Instant,
    /// Milliseconds after `start` of the last progress.
    last: Arc<AtomicU64>,
}

impl Activity {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// How long since the last progress.
    pub fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// A body that notes its progress in an [`Activity`].
pub struct Tracked<B> {
    inner: B,
    activity: Activity,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, activity: Activity) -> Self {
        Self { inner, activity }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if polled.is_ready() {
            this.activity.touch();
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
    use http_body_util::{BodyExt as _, Full};

    #[tokio::test]
    async fn frames_are_progress() {
        let a = Activity::new();
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(a.idle() >= Duration::from_millis(50));
        let mut body = Tracked::new(Full::new(bytes::Bytes::from_static(b"x")), a.clone());
        assert_eq!(body.size_hint().exact(), Some(1));
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), &b"x"[..]);
        assert!(a.idle() < Duration::from_millis(50), "{:?}", a.idle());
    }
}
