//! Connections: how many are open (at most `max_connections`), which have
//! a request in progress, and when one is closed for idling: after the
//! header timeout if it never started a request (it may never have sent a
//! byte; HTTP/1 and HTTP/2 alike), after the idle timeout between
//! requests, and at once (after a second of idling) when the server is at
//! its connection cap or out of file descriptors and needs room.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::limits::Limits;

/// At the cap, a connection idle this long may be closed to make room.
const SHED_GRACE: Duration = Duration::from_secs(1);
/// How often, at the cap, idle connections are asked to go again.
const SHED_EVERY: Duration = Duration::from_millis(250);
/// Reaching the cap is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The open connections of one `serve`.
pub(crate) struct Conns {
    open: AtomicUsize,
    max: usize,
    /// Signalled as each connection ends.
    closed: Notify,
    /// Bumped to ask idle connections to close.
    shed: watch::Sender<u64>,
    /// Set once: the server is stopping.
    stop: watch::Sender<bool>,
    /// When the cap was last reported.
    warned: std::sync::Mutex<Option<Instant>>,
}

impl Conns {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            max,
            closed: Notify::new(),
            shed: watch::Sender::new(0),
            stop: watch::Sender::new(false),
            warned: std::sync::Mutex::new(None),
        })
    }

    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Asks every connection idle for `SHED_GRACE` or more to close.
    pub(crate) fn shed(&self) {
        self.shed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Returns once one more connection may be held: at the cap, asks idle
    /// connections to close and waits for one to go.
    pub(crate) async fn room(&self) {
        let mut logged = false;
        while self.open() >= self.max {
            if !logged && self.time_to_warn() {
                tracing::warn!(
                    max = self.max,
                    "connection cap reached; closing idle connections"
                );
            }
            logged = true;
            self.shed();
            let closed = self.closed.notified();
            tokio::select! {
                () = closed => {}
                () = tokio::time::sleep(SHED_EVERY) => {}
            }
        }
    }

    fn time_to_warn(&self) -> bool {
        let mut last = self
            .warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Counts a new connection until the slot is dropped.
    pub(crate) fn slot(self: &Arc<Self>) -> Slot {
        self.open.fetch_add(1, Ordering::SeqCst);
        Slot(self.clone())
    }

    /// Tells every connection the server is stopping.
    pub(crate) fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Returns once every connection has ended.
    pub(crate) async fn drained(&self) {
        while self.open() > 0 {
            let closed = self.closed.notified();
            tokio::select! {
                () = closed => {}
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// Resolves when `state`'s connection should close: idle past its
    /// limit, shed at the cap, or the server stopping. The bool says
    /// whether the server is stopping.
    pub(crate) async fn until_close(&self, state: &ConnState, limits: &Limits) -> bool {
        let mut shed = self.shed.subscribe();
        let mut stop = self.stop.subscribe();
        loop {
            if *stop.borrow_and_update() {
                return true;
            }
            let limit = if state.seen.load(Ordering::SeqCst) {
                limits.idle_timeout
            } else {
                limits.header_timeout
            };
            let wait = match state.idle_for() {
                Some(idle) if idle >= limit => return false,
                Some(idle) => limit - idle,
                // A response the client stopped reading: closed after the
                // body timeout, like a request body it stopped sending.
                None => match state.unread_for() {
                    Some(u) if u >= limits.body_timeout => {
                        tracing::info!(
                            "client stopped reading its response; closing the connection"
                        );
                        return false;
                    }
                    Some(u) => (limits.body_timeout - u).min(limit),
                    None => limit.min(limits.body_timeout),
                },
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                changed = shed.changed() => {
                    if changed.is_err() {
                        // serve is gone; only the timeouts are left
                        tokio::time::sleep(wait).await;
                    } else if state.idle_for().is_some_and(|i| i >= SHED_GRACE) {
                        return false;
                    }
                }
                changed = stop.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    }
}

/// One open connection, counted in `Conns` while held.
pub(crate) struct Slot(Arc<Conns>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.closed.notify_waiters();
    }
}

/// What a connection is doing: requests in progress, whether it ever
/// started one, and since when it is idle.
pub(crate) struct ConnState {
    epoch: Instant,
    active: AtomicUsize,
    seen: AtomicBool,
    /// Milliseconds after `epoch` of the last request start or end.
    changed_ms: AtomicU64,
    /// Response bodies that handed out data the client has not taken yet
    /// (hyper polls again once it is written).
    owed: AtomicUsize,
    /// Milliseconds after `epoch` of the last poll of a response body.
    sent_ms: AtomicU64,
}

impl ConnState {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            active: AtomicUsize::new(0),
            seen: AtomicBool::new(false),
            changed_ms: AtomicU64::new(0),
            owed: AtomicUsize::new(0),
            sent_ms: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.changed_ms.store(self.now_ms(), Ordering::SeqCst);
    }

    /// How long a response has waited for the client to take its data;
    /// None when none waits on the client.
    fn unread_for(&self) -> Option<Duration> {
        if self.owed.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let since = Duration::from_millis(self.sent_ms.load(Ordering::SeqCst));
        Some(self.epoch.elapsed().saturating_sub(since))
    }

    /// A request starts; it is in progress until the guard is dropped
    /// (with the response body, once sent).
    pub(crate) fn begin(self: &Arc<Self>) -> Active {
        self.seen.store(true, Ordering::SeqCst);
        self.active.fetch_add(1, Ordering::SeqCst);
        self.touch();
        Active(self.clone())
    }

    /// How long no request has been in progress; None while one is.
    fn idle_for(&self) -> Option<Duration> {
        if self.active.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let since = Duration::from_millis(self.changed_ms.load(Ordering::SeqCst));
        Some(self.epoch.elapsed().saturating_sub(since))
    }
}

/// A request in progress on its connection.
pub(crate) struct Active(Arc<ConnState>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.touch();
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as in progress until
/// it is sent (or dropped), and tells its connection when it waits for
/// the client to take data.
pub(crate) struct ActiveBody {
    inner: s3s::Body,
    active: Active,
    /// Counted in the connection's `owed`.
    owes: bool,
}

impl ActiveBody {
    pub(crate) fn new(inner: s3s::Body, active: Active) -> Self {
        Self {
            inner,
            active,
            owes: false,
        }
    }

    fn set_owes(&mut self, owes: bool) {
        if owes != self.owes {
            self.owes = owes;
            let owed = &self.active.0.owed;
            if owes {
                owed.fetch_add(1, Ordering::SeqCst);
            } else {
                owed.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

impl Drop for ActiveBody {
    fn drop(&mut self) {
        self.set_owes(false);
    }
}

impl http_body::Body for ActiveBody {
    type Data = Bytes;
    type Error = s3s::StdError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let state = &self.active.0;
        state.sent_ms.store(state.now_ms(), Ordering::SeqCst);
        let polled = http_body::Body::poll_frame(std::pin::Pin::new(&mut self.inner), cx);
        // Data handed out is the client's to take; a body waiting on the
        // server (Pending) or ended owes nothing.
        let owes = matches!(polled, Poll::Ready(Some(Ok(_))));
        self.set_owes(owes);
        polled
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn limits() -> Limits {
        Limits {
            header_timeout: 300 * MS,
            idle_timeout: 600 * MS,
            ..Limits::default()
        }
    }

    #[tokio::test]
    async fn a_connection_without_a_request_closes_after_the_header_timeout() {
        let conns = Conns::new(10);
        let state = ConnState::new();
        let t = Instant::now();
        assert!(!conns.until_close(&state, &limits()).await);
        let took = t.elapsed();
        assert!(took >= 300 * MS && took < 3000 * MS, "{took:?}");
    }

    #[tokio::test]
    async fn a_request_in_progress_is_never_idle_and_then_the_idle_timeout_counts() {
        let conns = Conns::new(10);
        let state = ConnState::new();
        let active = state.begin();
        let waiter = {
            let state = state.clone();
            let conns = conns.clone();
            tokio::spawn(async move { conns.until_close(&state, &limits()).await })
        };
        tokio::time::sleep(1500 * MS).await;
        assert!(!waiter.is_finished());
        drop(active);
        let t = Instant::now();
        assert!(!waiter.await.unwrap());
        let took = t.elapsed();
        assert!(took >= 600 * MS && took < 3000 * MS, "{took:?}");
    }

    #[tokio::test]
    async fn shedding_closes_connections_idle_past_the_grace_only() {
        let conns = Conns::new(1);
        let idle = ConnState::new();
        let busy = ConnState::new();
        let _active = busy.begin();
        let slot = conns.slot();
        let long = Limits {
            header_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            ..Limits::default()
        };
        let spawn = |state: Arc<ConnState>| {
            let (c, l) = (conns.clone(), long.clone());
            tokio::spawn(async move { c.until_close(&state, &l).await })
        };
        let idle_task = spawn(idle.clone());
        let busy_task = spawn(busy.clone());
        tokio::time::sleep(SHED_GRACE + 100 * MS).await;
        let fresh = ConnState::new();
        let fresh_task = spawn(fresh.clone());
        tokio::time::sleep(50 * MS).await;
        let t = Instant::now();
        conns.shed();
        assert!(!idle_task.await.unwrap());
        assert!(t.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(100 * MS).await;
        assert!(!busy_task.is_finished());
        assert!(!fresh_task.is_finished());
        // room() waits for the slot to go
        let room = {
            let conns = conns.clone();
            tokio::spawn(async move { conns.room().await })
        };
        tokio::time::sleep(300 * MS).await;
        assert!(!room.is_finished());
        drop(slot);
        room.await.unwrap();
        conns.stop();
        assert!(busy_task.await.unwrap());
        assert!(fresh_task.await.unwrap());
    }
}
