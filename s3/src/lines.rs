//! A streamed response body of lines (newline-delimited JSON and the
//! like): the admin API's heal progress, the listen route's events.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt as _};
use s3s::stream::{ByteStream, DynByteStream};
use s3s::{Body, StdError};

/// The chunks of a stream as a body. The mutex only makes the stream
/// `Sync` for `s3s`; it is never contended.
pub(crate) struct Lines(Mutex<BoxStream<'static, Result<Bytes, StdError>>>);

impl Lines {
    pub(crate) fn body(
        chunks: impl Stream<Item = Result<Bytes, StdError>> + Send + 'static,
    ) -> Body {
        let stream: DynByteStream = Box::pin(Lines(Mutex::new(chunks.boxed())));
        Body::from(stream)
    }
}

/// `v` as one line of JSON.
pub(crate) fn json_line(v: &impl serde::Serialize) -> Result<Bytes, StdError> {
    let mut line = serde_json::to_vec(v).map_err(|e| Box::new(e) as StdError)?;
    line.push(b'\n');
    Ok(Bytes::from(line))
}

impl Stream for Lines {
    type Item = Result<Bytes, StdError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let inner = match self.get_mut().0.get_mut() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        inner.poll_next_unpin(cx)
    }
}

impl ByteStream for Lines {}
