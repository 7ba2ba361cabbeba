//! A web front served on the S3 port below its own `/_cairn/` path (the
//! console, crate `cairn-console`, wired by the binary).
//!
//! The S3 front knows nothing of what the web front does: it hands it the
//! requests whose path-style path lies below [`WebFront::prefix`] (a
//! virtual-host request, `Host: bucket.<domain>`, is S3 whatever its path,
//! as for every endpoint: crate::endpoints), with the connection's peer and
//! whether it is TLS, and sends back its response. The web front has no
//! powers of its own: whatever it does to the store it asks of this same
//! port as a signed S3/STS/admin request.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use hyper::body::Incoming;

/// A web front's response body.
pub type WebBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// The connection a web request came on.
#[derive(Debug, Clone, Copy)]
pub struct WebConn {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the connection is TLS (served with a certificate).
    pub tls: bool,
}

/// A front answering the requests below one path of the S3 port.
pub trait WebFront: Send + Sync {
    /// The path it owns, starting with `/_cairn/` and without a trailing
    /// slash (e.g. `/_cairn/console`): that path and everything below.
    fn prefix(&self) -> &'static str;

    /// Answers one request.
    fn call(&self, req: Request<Incoming>, conn: WebConn) -> BoxFuture<'static, Response<WebBody>>;
}

/// Whether `path` is `front`'s.
pub(crate) fn owns(front: &Arc<dyn WebFront>, path: &str) -> bool {
    let prefix = front.prefix();
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    impl WebFront for Nothing {
        fn prefix(&self) -> &'static str {
            "/_cairn/console"
        }

        fn call(&self, _: Request<Incoming>, _: WebConn) -> BoxFuture<'static, Response<WebBody>> {
            use http_body_util::BodyExt as _;
            let empty = http_body_util::Empty::<Bytes>::new().map_err(|never| match never {});
            Box::pin(async move { Response::new(empty.boxed()) })
        }
    }

    #[test]
    fn owns_the_prefix_and_below_only() {
        let f: Arc<dyn WebFront> = Arc::new(Nothing);
        assert!(owns(&f, "/_cairn/console"));
        assert!(owns(&f, "/_cairn/console/"));
        assert!(owns(&f, "/_cairn/console/api/login"));
        assert!(!owns(&f, "/_cairn/consoles"));
        assert!(!owns(&f, "/console"));
        assert!(!owns(&f, "/_cairn/admin/v1/info"));
    }
}
