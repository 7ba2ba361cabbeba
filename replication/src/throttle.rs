//! A target's bandwidth limit, shared by its copies: each chunk of a body
//! takes its slot on the target's one timeline at `rate` bytes per second
//! and passes once its slot ended, so all copies together send at most
//! `rate` bytes/s (`None`: no limit).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_api::ByteStream;
use futures::StreamExt as _;
use tokio::time::Instant;

/// The timeline of one target.
#[derive(Debug)]
pub(crate) struct Pacer {
    rate: u64,
    /// When the last reserved slot ends.
    next: Mutex<Instant>,
}

impl Pacer {
    /// A pacer at `rate` bytes/s (`None` or 0: no limit).
    pub(crate) fn new(rate: Option<u64>) -> Option<Arc<Self>> {
        let rate = rate.filter(|r| *r > 0)?;
        Some(Arc::new(Self {
            rate,
            next: Mutex::new(Instant::now()),
        }))
    }

    /// Reserves the slot of `len` bytes: when it ends.
    fn reserve(&self, len: usize) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let start = (*next).max(Instant::now());
        *next = start + Duration::from_secs_f64(len as f64 / self.rate as f64);
        *next
    }
}

/// `body`, paced by `pacer` (`None`: as it comes).
pub(crate) fn limited(body: ByteStream, pacer: Option<Arc<Pacer>>) -> ByteStream {
    let Some(pacer) = pacer else {
        return body;
    };
    Box::pin(body.then(move |chunk| {
        let due = match &chunk {
            Ok(c) => Some(pacer.reserve(c.len())),
            Err(_) => None,
        };
        async move {
            if let Some(due) = due {
                tokio::time::sleep_until(due).await;
            }
            chunk
        }
    }))
}
