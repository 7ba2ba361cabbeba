//! What the front allows a client before it is cut off: the timeouts of a
//! connection and of a request body, the slowest body it waits for, how
//! many connections it holds and how many request bodies it reads at once.
//! A slow, stalled or flooding client costs its own requests, never the
//! other clients' (see `conn.rs`, `timed.rs`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The front's limits; one per `serve`. `Default` holds the defaults the
/// binary's flags document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A new connection must send a whole request head within this (a
    /// connection that never sends a byte is closed after it too; HTTP/2
    /// alike).
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in progress is closed after
    /// this long.
    pub idle_timeout: Duration,
    /// A request body that sends nothing for this long while the server
    /// waits for it fails (400 RequestTimeout) and its connection closes.
    /// Also the window of `body_min_rate`.
    pub body_timeout: Duration,
    /// Slowest body accepted, in bytes per second, averaged over
    /// `body_timeout` of the server waiting for it (0: no minimum). Time the
    /// server itself spends not reading (its drives are busy) never counts
    /// against the client.
    pub body_min_rate: u64,
    /// Most connections held open at once. At the cap the server closes
    /// connections that are idle (no request in progress) for a second or
    /// more, and accepts again as they go.
    pub max_connections: usize,
    /// Most requests whose body is being read at once (uploads, parts,
    /// any request with a body); beyond it a request with a body is
    /// answered 503 SlowDown at once. Requests without a body are not
    /// counted.
    pub max_inflight_requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            body_min_rate: 1024,
            max_connections: 10_000,
            max_inflight_requests: 1024,
        }
    }
}

/// A limit `serve` cannot work with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitError {
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

impl Limits {
    pub(crate) fn check(&self) -> Result<(), LimitError> {
        let zero = [
            (self.header_timeout.is_zero(), "the header timeout"),
            (self.idle_timeout.is_zero(), "the idle timeout"),
            (self.body_timeout.is_zero(), "the body timeout"),
            (self.max_connections == 0, "the connection cap"),
            (self.max_inflight_requests == 0, "the in-flight request cap"),
        ];
        match zero.into_iter().find(|(z, _)| *z) {
            Some((_, what)) => Err(LimitError::Zero(what)),
            None => Ok(()),
        }
    }
}

/// The request bodies being read now, at most `max_inflight_requests`.
#[derive(Clone)]
pub(crate) struct Inflight(Arc<Semaphore>);

impl Inflight {
    pub(crate) fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))))
    }

    /// A slot for one request body, or None when all are taken.
    pub(crate) fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_is_refused() {
        assert_eq!(Limits::default().check(), Ok(()));
        let l = Limits {
            max_inflight_requests: 0,
            ..Limits::default()
        };
        assert_eq!(
            l.check(),
            Err(LimitError::Zero("the in-flight request cap"))
        );
    }

    #[test]
    fn inflight_slots_run_out_and_come_back() {
        let f = Inflight::new(2);
        let a = f.try_take();
        let b = f.try_take();
        assert!(a.is_some() && b.is_some());
        assert!(f.try_take().is_none());
        drop(a);
        assert!(f.try_take().is_some());
    }
}
