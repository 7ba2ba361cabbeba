//! The progress of a forwarded request: its body, passed on unchanged,
//! notes when each frame went out, and so does the owner's response body,
//! so the router can tell an owner that is still taking a long upload (or
//! sending a long download) from one that stopped answering: a
//! [`Watchdog`] gives up on a forward that made no progress for a while
//! or whose owner left the live list.

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

/// Whether a forward should be given up: no progress for `idle`, or the
/// owner no longer `alive`.
#[derive(Clone)]
pub struct Watchdog {
    pub activity: Activity,
    pub idle: Duration,
    pub alive: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl Watchdog {
    /// Why to give up now, if so, after `waited` without progress.
    pub fn verdict(&self, waited: Duration) -> Option<&'static str> {
        if !(self.alive)() {
            return Some("went down while answering");
        }
        (waited > self.idle).then_some("did not answer in time")
    }
}

/// A response body the [`Watchdog`] looks after every `every`: it fails
/// (the client's response is cut short) once the watchdog gives up.
pub struct Guarded<B> {
    inner: B,
    dog: Watchdog,
    tick: tokio::time::Interval,
    site: String,
    /// Since when the owner has been asked for a frame it has not sent
    /// (a client reading slowly is not the owner's silence).
    waiting: Option<Instant>,
}

impl<B> Guarded<B> {
    pub fn new(inner: B, dog: Watchdog, every: Duration, site: String) -> Self {
        Self {
            inner,
            dog,
            tick: tokio::time::interval(every),
            site,
            waiting: None,
        }
    }
}

/// The error a guarded body ends with.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B> Body for Guarded<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                this.waiting = None;
                Poll::Ready(r.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let since = *this.waiting.get_or_insert_with(Instant::now);
                while this.tick.poll_tick(cx).is_ready() {
                    if let Some(why) = this.dog.verdict(since.elapsed()) {
                        tracing::warn!(site = this.site, why, "forwarded response cut short");
                        return Poll::Ready(Some(Err(format!("site {} {why}", this.site).into())));
                    }
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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

    /// A body that never sends fails once its watchdog gives up.
    #[tokio::test]
    async fn a_silent_body_is_cut_short() {
        let silent = http_body_util::StreamBody::new(futures::stream::pending::<
            Result<Frame<bytes::Bytes>, std::io::Error>,
        >());
        let dog = Watchdog {
            activity: Activity::new(),
            idle: Duration::from_millis(200),
            alive: Arc::new(|| true),
        };
        let t = Instant::now();
        let mut body = Guarded::new(silent, dog, Duration::from_millis(50), "b".into());
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(err.to_string(), "site b did not answer in time");
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
