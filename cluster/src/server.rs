//! The storage RPC's server side: runs the `DriveIo` calls other nodes
//! send on this node's own drives (`LocalIo`). A request names one of the
//! drives this node serves, exactly as configured, and paths below its
//! root that pass `RelPath` (no `..`, no absolute path, one name per
//! segment): nothing outside the node's drives can be named. Unsigned or
//! expired requests are refused before their body is read.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use cairn_api::SafePath;
use cairn_api::path::RelPath;
use cairn_core::driveio::{DriveIo, LocalIo, WalkQuery};
use cairn_core::walk::WalkItem;
use futures::StreamExt as _;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::sync::mpsc;

use crate::auth::{NodeKey, Signed, body_digest, now};
use crate::locker::{LockCall, LockConfig, Lockers};
use crate::relay::WireChange;
use crate::wire::{self, Op, WireEntry, WireError, WireItem, WireSpace, WireStat, WireWalk};

pub type Body = http_body_util::combinators::BoxBody<Bytes, io::Error>;

/// The most a whole-body call (a record, a walk query) may send.
const MAX_WHOLE_BODY: usize = 256 << 20;
/// Bytes per frame of a streamed file read.
const READ_CHUNK: usize = 1 << 20;

/// Serves this node's drives to the cluster.
pub struct StorageServer {
    /// Each served drive's root, by its path as configured.
    drives: HashMap<String, SafePath>,
    key: NodeKey,
    /// The digest of this node's drive arguments, which a greeting node's
    /// must equal.
    hello: Option<String>,
    /// The lockers of the drives served.
    lockers: Arc<Lockers>,
    /// Where other nodes' changes go (the store, once it is open; until
    /// then there is nothing cached to drop).
    changes: OnceLock<ChangeSink>,
    /// The version this node runs, and since when.
    version: String,
    started: std::time::Instant,
}

/// Takes a change another node's store made.
pub type ChangeSink = Box<dyn Fn(cairn_api::changes::Change) + Send + Sync>;

impl std::fmt::Debug for StorageServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageServer")
            .field("drives", &self.drives)
            .finish_non_exhaustive()
    }
}

struct Call {
    op: Op,
    root: SafePath,
    path: SafePath,
    path2: Option<SafePath>,
    offset: u64,
    len: u64,
    durable: bool,
    body_sha256: String,
}

fn status_body(status: StatusCode, e: &io::Error) -> Response<Body> {
    let body = serde_json::to_vec(&WireError::of(e)).unwrap_or_default();
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r
}

pub(crate) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> &'a str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn number(req: &Request<Incoming>, name: &str) -> Result<u64, io::Error> {
    match header(req, name) {
        "" => Ok(0),
        s => s
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("bad {name}"))),
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned())
}

impl StorageServer {
    /// Serves `drives` (paths as configured on this node).
    pub fn new(drives: &[PathBuf], key: NodeKey) -> Self {
        let drives = drives
            .iter()
            .map(|p| (p.display().to_string(), SafePath::root(p.clone())))
            .collect();
        Self {
            drives,
            key,
            hello: None,
            lockers: Arc::new(Lockers::new(LockConfig::default().ttl)),
            changes: OnceLock::new(),
            version: String::new(),
            started: std::time::Instant::now(),
        }
    }

    /// The version this node says it runs.
    pub fn with_version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }

    /// Other nodes' changes go to `sink` from now on (set once).
    pub fn on_changes(&self, sink: ChangeSink) {
        if self.changes.set(sink).is_err() {
            tracing::warn!("the cluster's change sink was set twice");
        }
    }

    /// The lockers this node answers with (shared with its own sets'
    /// `QuorumLocks`, which ask them without a request).
    pub fn with_lockers(mut self, lockers: Arc<Lockers>) -> Self {
        self.lockers = lockers;
        self
    }

    /// Greetings are answered only for the same drive arguments.
    pub fn with_hello(mut self, digest: String) -> Self {
        self.hello = Some(digest);
        self
    }

    /// The body of a signed whole-body call `op` (greeting, locks), or
    /// the answer refusing it.
    async fn signed_body(&self, req: Request<Incoming>, op: &str) -> Result<Bytes, Response<Body>> {
        let sha = header(&req, wire::H_BODY_SHA256).to_owned();
        let signed = Signed {
            op,
            body_sha256: &sha,
            ..Default::default()
        };
        let auth = req
            .headers()
            .get(wire::H_AUTH)
            .and_then(|v| v.to_str().ok());
        if let Err(e) = self.key.verify(&signed, auth, now()) {
            let e = io::Error::new(io::ErrorKind::PermissionDenied, e);
            return Err(status_body(StatusCode::FORBIDDEN, &e));
        }
        whole_body(req.into_body(), &sha)
            .await
            .map_err(|e| status_body(StatusCode::BAD_REQUEST, &e))
    }

    /// A node's greeting: signed, and started with the same arguments.
    async fn hello(&self, req: Request<Incoming>) -> Response<Body> {
        let theirs = match self.signed_body(req, "hello").await {
            Ok(b) => b,
            Err(refused) => return refused,
        };
        match &self.hello {
            Some(mine) if mine.as_bytes() != &theirs[..] => status_body(
                StatusCode::CONFLICT,
                &bad("this node was started with other drive arguments (or parity, or set size)"),
            ),
            _ => Response::new(full(Bytes::new())),
        }
    }

    /// Another node's asks of this node's lockers.
    async fn locks(&self, req: Request<Incoming>) -> Response<Body> {
        let body = match self.signed_body(req, wire::LOCK_OP).await {
            Ok(b) => b,
            Err(refused) => return refused,
        };
        let call: LockCall = match serde_json::from_slice(&body) {
            Ok(c) => c,
            Err(e) => return status_body(StatusCode::BAD_REQUEST, &bad(&e.to_string())),
        };
        if let Some(a) = call
            .asks
            .iter()
            .find(|a| !self.drives.contains_key(&a.drive))
        {
            tracing::info!(drive = %a.drive, "lock asked of a drive this node does not serve");
            return status_body(StatusCode::NOT_FOUND, &bad("no such drive on this node"));
        }
        match json(&self.lockers.answer(&call)) {
            Ok(b) => Response::new(full(b)),
            Err(e) => status_body(StatusCode::INTERNAL_SERVER_ERROR, &e),
        }
    }

    /// Another node's changes: to the store, if it is open.
    async fn changes(&self, req: Request<Incoming>) -> Response<Body> {
        let body = match self.signed_body(req, wire::CHANGES_OP).await {
            Ok(b) => b,
            Err(refused) => return refused,
        };
        let batch: Vec<WireChange> = match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return status_body(StatusCode::BAD_REQUEST, &bad(&e.to_string())),
        };
        if let Some(sink) = self.changes.get() {
            for c in batch {
                sink(c.into_change());
            }
        }
        Response::new(full(Bytes::new()))
    }

    /// This node's version and uptime.
    async fn info(&self, req: Request<Incoming>) -> Response<Body> {
        if let Err(refused) = self.signed_body(req, wire::INFO_OP).await {
            return refused;
        }
        let info = wire::PeerInfo {
            version: self.version.clone(),
            uptime_secs: self.started.elapsed().as_secs(),
        };
        match json(&info) {
            Ok(b) => Response::new(full(b)),
            Err(e) => status_body(StatusCode::INTERNAL_SERVER_ERROR, &e),
        }
    }

    /// Answers one request below [`wire::PREFIX`].
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        if req.method() == http::Method::POST {
            match req.uri().path() {
                wire::HELLO_PATH => return self.hello(req).await,
                wire::LOCK_PATH => return self.locks(req).await,
                wire::CHANGES_PATH => return self.changes(req).await,
                wire::INFO_PATH => return self.info(req).await,
                _ => {}
            }
        }
        match self.parse(&req) {
            Ok(call) => self.run(call, req).await,
            Err((status, e)) => {
                tracing::info!(path = %req.uri().path(), error = %e, "internode request refused");
                status_body(status, &e)
            }
        }
    }

    fn parse(&self, req: &Request<Incoming>) -> Result<Call, (StatusCode, io::Error)> {
        let not_found = |m: &str| (StatusCode::NOT_FOUND, bad(m));
        let refuse = |e: io::Error| (StatusCode::BAD_REQUEST, e);
        if req.method() != http::Method::POST {
            return Err((StatusCode::METHOD_NOT_ALLOWED, bad("POST only")));
        }
        let op = req
            .uri()
            .path()
            .strip_prefix(wire::DRIVE_PATH)
            .and_then(Op::parse)
            .ok_or_else(|| not_found("no such internode call"))?;
        let drive = header(req, wire::H_DRIVE);
        let path = wire::decode_path(header(req, wire::H_PATH))
            .ok_or_else(|| refuse(bad("path is not UTF-8")))?;
        let path2 = wire::decode_path(header(req, wire::H_PATH2))
            .ok_or_else(|| refuse(bad("path is not UTF-8")))?;
        let (offset, len) = (
            number(req, wire::H_OFFSET).map_err(refuse)?,
            number(req, wire::H_LEN).map_err(refuse)?,
        );
        let durable = header(req, wire::H_DURABLE) == "1";
        let body_sha256 = header(req, wire::H_BODY_SHA256).to_owned();
        let signed = Signed {
            op: op.name(),
            drive,
            path: &path,
            path2: &path2,
            offset,
            len,
            durable,
            body_sha256: &body_sha256,
        };
        self.key
            .verify(
                &signed,
                req.headers()
                    .get(wire::H_AUTH)
                    .and_then(|v| v.to_str().ok()),
                now(),
            )
            .map_err(|e| {
                (
                    StatusCode::FORBIDDEN,
                    io::Error::new(io::ErrorKind::PermissionDenied, e),
                )
            })?;
        let root = self
            .drives
            .get(drive)
            .cloned()
            .ok_or_else(|| not_found("no such drive on this node"))?;
        let below = |rel: &str| -> Result<SafePath, (StatusCode, io::Error)> {
            let rel = RelPath::parse(rel).map_err(|e| refuse(e.into()))?;
            Ok(root.join_rel(&rel))
        };
        let path = below(&path)?;
        let path2 = match path2.as_str() {
            "" => None,
            p => Some(below(p)?),
        };
        Ok(Call {
            op,
            root,
            path,
            path2,
            offset,
            len,
            durable,
            body_sha256,
        })
    }

    async fn run(&self, call: Call, req: Request<Incoming>) -> Response<Body> {
        let res = match call.op {
            Op::Open => return open(call),
            Op::Create => return create(call, req.into_body()).await,
            Op::Walk => match whole_body(req.into_body(), &call.body_sha256).await {
                Ok(b) => return walk(call, &b),
                Err(e) => Err(e),
            },
            Op::WriteAtomic | Op::WriteRecord | Op::WriteAt => {
                match whole_body(req.into_body(), &call.body_sha256).await {
                    Ok(b) => blocking(move || write_call(&call, &b)).await,
                    Err(e) => Err(e),
                }
            }
            _ => blocking(move || plain_call(&call)).await,
        };
        match res {
            Ok(body) => Response::new(full(body)),
            Err(e) => status_body(StatusCode::INTERNAL_SERVER_ERROR, &e),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

/// A whole request body, bounded, checked against its signed digest.
async fn whole_body(body: Incoming, sha256: &str) -> io::Result<Bytes> {
    let limited = http_body_util::Limited::new(body, MAX_WHOLE_BODY);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
        .to_bytes();
    if body_digest(&bytes) != sha256 {
        return Err(bad("body does not match its signed digest"));
    }
    Ok(bytes)
}

fn json(v: &impl serde::Serialize) -> io::Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(io::Error::other)
}

fn write_call(c: &Call, body: &[u8]) -> io::Result<Vec<u8>> {
    let io = LocalIo;
    match (c.op, &c.path2) {
        (Op::WriteAtomic, Some(dest)) => io.write_atomic(&c.path, dest, body, c.durable)?,
        (Op::WriteRecord, Some(dest)) => {
            io.write_record(&c.path, dest, body, c.durable, c.offset)?
        }
        (Op::WriteAt, _) => io.write_at(&c.path, c.offset, body, c.durable)?,
        _ => return Err(bad("missing second path")),
    }
    Ok(Vec::new())
}

fn plain_call(c: &Call) -> io::Result<Vec<u8>> {
    let io = LocalIo;
    let p = &c.path;
    let none = || Ok(Vec::new());
    match c.op {
        Op::Read => io.read(p),
        Op::ReadPrefix => io.read_prefix(p, c.len),
        Op::ReadRecord => io.read_record(p, c.durable),
        Op::MakeRoot => {
            // the drive's own root only, answered as paths of the drive
            let made = io.make_root(&c.root)?;
            json(
                &made
                    .iter()
                    .map(|m| m.display().to_string())
                    .collect::<Vec<_>>(),
            )
        }
        Op::CreateDir => io.create_dir(p).and_then(|()| none()),
        Op::CreateDirAll => io.create_dir_all(p).and_then(|()| none()),
        Op::RemoveFile => io.remove_file(p).and_then(|()| none()),
        Op::RemoveDir => io.remove_dir(p).and_then(|()| none()),
        Op::RemoveDirAll => io.remove_dir_all(p).and_then(|()| none()),
        Op::Rename => match &c.path2 {
            Some(to) => io.rename(p, to).and_then(|()| none()),
            None => Err(bad("missing second path")),
        },
        Op::ReadDir => json(
            &io.read_dir(p)?
                .iter()
                .filter_map(WireEntry::of)
                .collect::<Vec<_>>(),
        ),
        Op::Stat => json(&WireStat::from(&io.stat(p)?)),
        Op::Lstat => json(&WireStat::from(&io.lstat(p)?)),
        Op::SyncDir => io.sync_dir(p).and_then(|()| none()),
        Op::SyncFs => io.sync_fs(p).and_then(|()| none()),
        Op::Space => json(&WireSpace::from(io.space(p)?)),
        Op::WriteAtomic | Op::WriteRecord | Op::WriteAt | Op::Open | Op::Create | Op::Walk => {
            Err(bad("not a plain call"))
        }
    }
}

type Frames = mpsc::Receiver<io::Result<Frame<Bytes>>>;

fn streamed(rx: Frames) -> Response<Body> {
    let stream = tokio_stream(rx);
    Response::new(BodyExt::boxed(StreamBody::new(stream)))
}

fn tokio_stream(
    mut rx: Frames,
) -> impl futures::Stream<Item = io::Result<Frame<Bytes>>> + Send + Sync + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A file from `offset` to its end, in frames.
fn open(c: Call) -> Response<Body> {
    let file = match LocalIo.open(&c.path, c.offset) {
        Ok(f) => f,
        Err(e) => return status_body(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        loop {
            let mut buf = vec![0u8; READ_CHUNK];
            match io::Read::read(&mut file, &mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Frame::data(Bytes::from(buf)))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    streamed(rx)
}

/// A new file written from the streamed body, fdatasynced at its end:
/// the answer comes once it is durable (or with why it is not).
async fn create(c: Call, body: Incoming) -> Response<Body> {
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let path = c.path.clone();
    let writer = tokio::task::spawn_blocking(move || -> io::Result<()> {
        let mut f = LocalIo.create(&path)?;
        while let Some(chunk) = rx.blocking_recv() {
            io::Write::write_all(&mut f, &chunk?)?;
        }
        f.sync_data()
    });
    let mut frames = body.into_data_stream();
    while let Some(frame) = frames.next().await {
        let item = frame.map_err(|e| io::Error::other(e.to_string()));
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    match writer.await.map_err(io::Error::other).and_then(|r| r) {
        Ok(()) => Response::new(full(Bytes::new())),
        Err(e) => status_body(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// The walk's items as JSON lines, produced as the client reads them.
fn walk(c: Call, query: &[u8]) -> Response<Body> {
    let q: WireWalk = match serde_json::from_slice(query) {
        Ok(q) => q,
        Err(e) => return status_body(StatusCode::BAD_REQUEST, &bad(&e.to_string())),
    };
    let q = WalkQuery {
        prefix: q.prefix,
        start_after: q.start_after,
        delimiter: q.delimiter,
        candidates: q.candidates,
    };
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut batch = Vec::new();
        for item in LocalIo.walk(&c.path, &q) {
            let w = match item {
                WalkItem::Object(k) => WireItem::Object(k),
                WalkItem::Prefix(p) => WireItem::Prefix(p),
            };
            if serde_json::to_writer(&mut batch, &w).is_err() {
                return;
            }
            batch.push(b'\n');
            if batch.len() >= 64 << 10 {
                let chunk = Bytes::from(std::mem::take(&mut batch));
                if tx.blocking_send(Ok(Frame::data(chunk))).is_err() {
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(Ok(Frame::data(Bytes::from(batch))));
        }
    });
    streamed(rx)
}

/// Serves the storage RPC on `listener` until the task is dropped (each
/// connection ends with it).
pub async fn serve(listener: tokio::net::TcpListener, server: std::sync::Arc<StorageServer>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "internode accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        let svc = hyper::service::service_fn(move |req| {
            let server = server.clone();
            async move { Ok::<_, std::convert::Infallible>(server.handle(req).await) }
        });
        conns.spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
        // reap finished connections
        while conns.try_join_next().is_some() {}
    }
}
