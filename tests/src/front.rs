//! A load balancer in front of a cluster's nodes, as users put one: an
//! HTTP/1.1 reverse proxy on 127.0.0.1 that sends each request to the
//! next node in turn (round robin per request, not per connection, so a
//! client that keeps one connection still talks to every node). Requests
//! and answers stream through unchanged, `Host` included (SigV4 signs it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use anyhow::{Context as _, Result};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A running front; stops when dropped.
pub struct Front {
    pub addr: SocketAddr,
    /// Requests sent to each node.
    served: Arc<Vec<AtomicU64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Front {
    /// Listens on a free port of 127.0.0.1 and spreads requests over `nodes`
    /// (`host:port` each).
    pub async fn start(nodes: Vec<String>) -> Result<Front> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the front")?;
        let addr = listener.local_addr()?;
        let served: Arc<Vec<AtomicU64>> =
            Arc::new(nodes.iter().map(|_| AtomicU64::new(0)).collect());
        let next = Arc::new(AtomicUsize::new(0));
        let client: Client<HttpConnector, Incoming> =
            Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let nodes = Arc::new(nodes);
        let counts = served.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (client, nodes, next, counts) =
                    (client.clone(), nodes.clone(), next.clone(), counts.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let i = next.fetch_add(1, Ordering::Relaxed) % nodes.len().max(1);
                        if let Some(c) = counts.get(i) {
                            c.fetch_add(1, Ordering::Relaxed);
                        }
                        let node = nodes.get(i).cloned().unwrap_or_default();
                        forward(client.clone(), node, req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(conn), service)
                        .await;
                });
            }
        });
        Ok(Front { addr, served, task })
    }

    /// Requests sent to each node so far.
    pub fn served(&self) -> Vec<u64> {
        self.served
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
}

async fn forward(
    client: Client<HttpConnector, Incoming>,
    node: String,
    mut req: Request<Incoming>,
) -> Result<Response<Incoming>> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_owned();
    *req.uri_mut() = format!("http://{node}{path}")
        .parse::<Uri>()
        .context("node uri")?;
    Ok(client.request(req).await?)
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}
