//! A new connection's first byte decides what it speaks: 0x16 (a TLS
//! handshake record, the ClientHello) is TLS; anything else is plain HTTP,
//! served only with `allow_plain_http`, else answered `400 Bad Request`
//! ("use https") and closed. The caller bounds all of it by the header
//! timeout (crate::server), so a client that never sends a byte, or
//! stalls its handshake, is closed like one that never sends its request.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tracing::debug;

use super::Tls;

/// The first byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE: u8 = 0x16;
/// What a plain-HTTP request to an HTTPS-only port hears.
const PLAIN_REFUSED: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain\r\n\
Content-Length: 71\r\n\
Connection: close\r\n\
\r\n\
This port serves HTTPS only: use https:// (a plain HTTP request came).\n";
/// How long, and how much of, the refused request is read before the
/// close, so the answer is not lost to a reset.
const REFUSED_DRAIN: Duration = Duration::from_secs(1);
const REFUSED_DRAIN_BYTES: usize = 64 * 1024;

/// A connection, plain or TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

/// What `tcp` speaks, once known: the stream to serve HTTP on, or None
/// (closed: a failed handshake, plain HTTP refused, nothing sent).
pub(crate) async fn open(tls: Option<&Tls>, tcp: TcpStream, peer: SocketAddr) -> Option<Stream> {
    let Some(tls) = tls else {
        return Some(Stream::Plain(tcp));
    };
    let mut first = [0u8; 1];
    match tcp.peek(&mut first).await {
        Ok(0) => return None,
        Ok(_) => {}
        Err(e) => {
            debug!(%peer, error = %e, "connection failed before its first byte");
            return None;
        }
    }
    if first[0] == TLS_HANDSHAKE {
        return match tls.acceptor.accept(tcp).await {
            Ok(s) => Some(Stream::Tls(Box::new(s))),
            Err(e) => {
                debug!(%peer, error = %e, "TLS handshake failed");
                None
            }
        };
    }
    if tls.allow_plain_http {
        return Some(Stream::Plain(tcp));
    }
    debug!(%peer, "plain HTTP on the HTTPS-only port; answered 400");
    refuse_plain(tcp).await;
    None
}

/// Answers 400 and closes, reading (a bounded part of) the request first.
async fn refuse_plain(mut tcp: TcpStream) {
    if tcp.write_all(PLAIN_REFUSED).await.is_err() || tcp.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut read = 0;
        while read < REFUSED_DRAIN_BYTES {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    };
    let _ = tokio::time::timeout(REFUSED_DRAIN, drain).await;
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_says_its_length() {
        let text = std::str::from_utf8(PLAIN_REFUSED).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
