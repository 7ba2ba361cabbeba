//! A target's bandwidth limit: a body stream that waits so that, from its
//! start, at most `rate` bytes per second pass (`None`: no limit).

use std::time::Duration;

use cairn_api::ByteStream;
use futures::StreamExt as _;
use tokio::time::Instant;

/// `body`, at most `rate` bytes/s.
pub(crate) fn limited(body: ByteStream, rate: Option<u64>) -> ByteStream {
    let Some(rate) = rate.filter(|r| *r > 0) else {
        return body;
    };
    let start = Instant::now();
    let mut sent: u64 = 0;
    Box::pin(body.then(move |chunk| {
        if let Ok(c) = &chunk {
            sent += c.len() as u64;
        }
        // the time these bytes may take at the rate, from the start
        let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
        async move {
            tokio::time::sleep_until(due).await;
            chunk
        }
    }))
}
