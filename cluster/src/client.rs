//! `RemoteIo`: a drive of another node, reached through the storage RPC.
//! The store calls `DriveIo` on blocking threads; each call here is one
//! signed HTTP request to the node, run on the runtime the io was made on
//! and waited for. Shard files stream both ways (a read from an offset,
//! a write that the node fdatasyncs before it answers); a walk's items
//! arrive as the listing reads them.

use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_api::SafePath;
use cairn_core::driveio::{
    DirEntry, DriveIo, FileRead, FileWrite, HeldLock, Space, Stat, Walk, WalkQuery,
};
use cairn_core::drivelock::LockError;
use cairn_core::walk::WalkItem;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::mpsc;

use crate::auth::{NodeKey, Signed, body_digest, now};
use crate::locker::{Answer, LockCall};
use crate::relay::WireChange;
use crate::server::{Body, full};
use crate::wire::{self, Op, WireEntry, WireError, WireItem, WireSpace, WireStat, WireWalk};

/// How long a node may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a call (or one frame of a stream) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The connections to one node, shared by its drives.
#[derive(Clone, Debug)]
pub struct Node {
    inner: Arc<NodeInner>,
}

#[derive(Debug)]
struct NodeInner {
    /// `http://host:port` of the node's internode service.
    base: String,
    client: Client<HttpConnector, Body>,
    key: NodeKey,
    rt: Handle,
}

impl Node {
    /// A node at `base` (`http://host:port`); calls run on `rt` and leave
    /// from `source` when given (this node's own address: peers and
    /// firewalls then see which node is calling, also over loopback).
    pub fn new(base: &str, key: NodeKey, rt: Handle, source: Option<IpAddr>) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(CONNECT_TIMEOUT));
        conn.set_nodelay(true);
        conn.set_local_address(source);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(conn);
        Self {
            inner: Arc::new(NodeInner {
                base: base.trim_end_matches('/').to_owned(),
                client,
                key,
                rt,
            }),
        }
    }

    /// Whether both are the same node's connections.
    pub fn same_node(&self, other: &Node) -> bool {
        self.inner.base == other.inner.base
    }

    /// Greets the node with this node's drive arguments' digest: an error
    /// of kind `InvalidInput` when the node's differ, `PermissionDenied`
    /// when it refuses the signature.
    pub async fn hello(&self, digest: &str) -> io::Result<()> {
        let body = Bytes::copy_from_slice(digest.as_bytes());
        self.signed_post(wire::HELLO_PATH, "hello", body)
            .await
            .map(|_| ())
    }

    /// Asks this node's lockers; the answers come in the asks' order.
    pub async fn locks(&self, call: &LockCall) -> io::Result<Vec<Answer>> {
        let body = serde_json::to_vec(call).map_err(io::Error::other)?;
        let got = self
            .signed_post(wire::LOCK_PATH, wire::LOCK_OP, body.into())
            .await?;
        serde_json::from_slice(&got).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// The node's version and uptime.
    pub async fn info(&self) -> io::Result<wire::PeerInfo> {
        let got = self
            .signed_post(wire::INFO_PATH, wire::INFO_OP, Bytes::new())
            .await?;
        parse(&got)
    }

    /// Tells the node what this node's store changed.
    pub async fn changes(&self, batch: &[WireChange]) -> io::Result<()> {
        let body = serde_json::to_vec(batch).map_err(io::Error::other)?;
        self.signed_post(wire::CHANGES_PATH, wire::CHANGES_OP, body.into())
            .await
            .map(|_| ())
    }

    /// A signed whole-body call (`op` at `path`); its answer's body.
    async fn signed_post(&self, path: &str, op: &str, body: Bytes) -> io::Result<Bytes> {
        let sha = body_digest(&body);
        let signed = Signed {
            op,
            body_sha256: &sha,
            ..Default::default()
        };
        let req = Request::post(format!("{}{}", self.inner.base, path))
            .header(wire::H_AUTH, self.inner.key.sign(&signed, now()))
            .header(wire::H_BODY_SHA256, &sha)
            .body(full(body))
            .map_err(io::Error::other)?;
        let resp = self.send(req).await?;
        collect(resp.into_body()).await
    }

    /// Sends a request; an error answer becomes the error it reports.
    async fn send(&self, req: Request<Body>) -> io::Result<Response<Incoming>> {
        let fut = self.inner.client.request(req);
        let resp = tokio::time::timeout(CALL_TIMEOUT, fut)
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| io::Error::new(io::ErrorKind::ConnectionRefused, e.to_string()))?;
        if resp.status() == StatusCode::OK {
            return Ok(resp);
        }
        let body = collect(resp.into_body()).await?;
        Err(match serde_json::from_slice::<WireError>(&body) {
            Ok(w) => w.into_io(),
            Err(_) => io::Error::other("node answered an error without a reason"),
        })
    }

    /// The drive `drive` (its path on that node), shown to the set as
    /// `shown` (a root unique in the cluster: the drive's URL).
    pub fn drive(&self, drive: &str, shown: PathBuf) -> RemoteIo {
        RemoteIo {
            node: self.clone(),
            drive: drive.to_owned(),
            shown,
        }
    }
}

/// Another node's drive.
#[derive(Clone, Debug)]
pub struct RemoteIo {
    node: Node,
    drive: String,
    shown: PathBuf,
}

/// One call's fields.
#[derive(Default)]
struct CallArgs {
    path: String,
    path2: String,
    offset: u64,
    len: u64,
    durable: bool,
}

fn outside(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is not on this drive", p.display()),
    )
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "node did not answer in time")
}

impl RemoteIo {
    /// `p` below the drive's root, `/`-separated.
    fn rel(&self, p: &Path) -> io::Result<String> {
        let rel = p.strip_prefix(&self.shown).map_err(|_| outside(p))?;
        let mut out = String::new();
        for c in rel.components() {
            let std::path::Component::Normal(s) = c else {
                return Err(outside(p));
            };
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(s.to_str().ok_or_else(|| outside(p))?);
        }
        Ok(out)
    }

    /// Runs `f` on the node's runtime and waits for it: on a blocking
    /// thread directly, on a runtime worker by leaving the worker first.
    fn block<T>(&self, f: impl Future<Output = T>) -> T {
        let rt = &self.node.inner.rt;
        match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| rt.block_on(f))
            }
            _ => rt.block_on(f),
        }
    }

    fn request(&self, op: Op, a: &CallArgs, body: Body, sha: &str) -> io::Result<Request<Body>> {
        let key = &self.node.inner.key;
        let auth = key.sign(
            &Signed {
                op: op.name(),
                drive: &self.drive,
                path: &a.path,
                path2: &a.path2,
                offset: a.offset,
                len: a.len,
                durable: a.durable,
                body_sha256: sha,
            },
            now(),
        );
        Request::post(format!(
            "{}{}{}",
            self.node.inner.base,
            wire::DRIVE_PATH,
            op.name()
        ))
        .header(wire::H_AUTH, auth)
        .header(wire::H_DRIVE, wire::encode_path(&self.drive))
        .header(wire::H_PATH, wire::encode_path(&a.path))
        .header(wire::H_PATH2, wire::encode_path(&a.path2))
        .header(wire::H_OFFSET, a.offset.to_string())
        .header(wire::H_LEN, a.len.to_string())
        .header(wire::H_DURABLE, if a.durable { "1" } else { "0" })
        .header(wire::H_BODY_SHA256, sha)
        .body(body)
        .map_err(io::Error::other)
    }

    async fn send(&self, req: Request<Body>) -> io::Result<Response<Incoming>> {
        self.node.send(req).await
    }

    /// One call with a whole body, answered with a whole body.
    fn call(&self, op: Op, a: CallArgs, body: Option<&[u8]>) -> io::Result<Bytes> {
        let (body, sha) = match body {
            Some(b) => (full(Bytes::copy_from_slice(b)), body_digest(b)),
            None => (full(Bytes::new()), String::new()),
        };
        let req = self.request(op, &a, body, &sha)?;
        self.block(async {
            let resp = self.send(req).await?;
            collect(resp.into_body()).await
        })
    }

    fn path_call(&self, op: Op, p: &Path) -> io::Result<Bytes> {
        let a = CallArgs {
            path: self.rel(p)?,
            ..Default::default()
        };
        self.call(op, a, None)
    }

    fn unit(&self, op: Op, p: &Path) -> io::Result<()> {
        self.path_call(op, p).map(|_| ())
    }
}

async fn collect(body: Incoming) -> io::Result<Bytes> {
    tokio::time::timeout(CALL_TIMEOUT, body.collect())
        .await
        .map_err(|_| timed_out())?
        .map(|c| c.to_bytes())
        .map_err(|e| io::Error::other(e.to_string()))
}

fn parse<T: serde::de::DeserializeOwned>(b: &[u8]) -> io::Result<T> {
    serde_json::from_slice(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

impl DriveIo for RemoteIo {
    fn read(&self, p: &Path) -> io::Result<Vec<u8>> {
        self.path_call(Op::Read, p).map(|b| b.to_vec())
    }

    fn read_prefix(&self, p: &Path, len: u64) -> io::Result<Vec<u8>> {
        let a = CallArgs {
            path: self.rel(p)?,
            len,
            ..Default::default()
        };
        self.call(Op::ReadPrefix, a, None).map(|b| b.to_vec())
    }

    fn read_record(&self, p: &Path, whole: bool) -> io::Result<Vec<u8>> {
        let a = CallArgs {
            path: self.rel(p)?,
            durable: whole,
            ..Default::default()
        };
        self.call(Op::ReadRecord, a, None).map(|b| b.to_vec())
    }

    fn write_atomic(
        &self,
        tmp_dir: &Path,
        dest: &Path,
        body: &[u8],
        durable: bool,
    ) -> io::Result<()> {
        let a = CallArgs {
            path: self.rel(tmp_dir)?,
            path2: self.rel(dest)?,
            durable,
            ..Default::default()
        };
        self.call(Op::WriteAtomic, a, Some(body)).map(|_| ())
    }

    /// One call: the check of the fence and the write run together on
    /// the drive's node.
    fn write_record(
        &self,
        tmp_dir: &Path,
        dest: &Path,
        body: &[u8],
        durable: bool,
        fence: u64,
    ) -> io::Result<()> {
        let a = CallArgs {
            path: self.rel(tmp_dir)?,
            path2: self.rel(dest)?,
            offset: fence,
            durable,
            ..Default::default()
        };
        self.call(Op::WriteRecord, a, Some(body)).map(|_| ())
    }

    fn write_at(&self, p: &Path, at: u64, body: &[u8], durable: bool) -> io::Result<()> {
        let a = CallArgs {
            path: self.rel(p)?,
            offset: at,
            durable,
            ..Default::default()
        };
        self.call(Op::WriteAt, a, Some(body)).map(|_| ())
    }

    fn open(&self, p: &Path, offset: u64) -> io::Result<Box<dyn FileRead>> {
        let mut f = RemoteFile {
            io: self.clone(),
            path: self.rel(p)?,
            pos: offset,
            body: None,
            buf: Bytes::new(),
        };
        // a missing file is an error here, as a local open's
        f.start()?;
        Ok(Box::new(f))
    }

    fn create(&self, p: &Path) -> io::Result<Box<dyn FileWrite>> {
        let a = CallArgs {
            path: self.rel(p)?,
            ..Default::default()
        };
        let (tx, rx) = mpsc::channel::<io::Result<Frame<Bytes>>>(8);
        let body = StreamBody::new(futures::stream::poll_fn({
            let mut rx = rx;
            move |cx| rx.poll_recv(cx)
        }))
        .boxed();
        let req = self.request(Op::Create, &a, body, "")?;
        let io = self.clone();
        let answer = self.node.inner.rt.spawn(async move {
            let resp = io.send(req).await?;
            collect(resp.into_body()).await.map(|_| ())
        });
        Ok(Box::new(RemoteWriter {
            io: self.clone(),
            tx: Some(tx),
            answer: Some(answer),
        }))
    }

    fn make_root(&self, root: &Path) -> io::Result<Vec<PathBuf>> {
        let made: Vec<String> = parse(&self.path_call(Op::MakeRoot, root)?)?;
        // the node made the folder; this side names it by its root
        Ok(if made.is_empty() {
            Vec::new()
        } else {
            vec![self.shown.clone()]
        })
    }

    fn create_dir(&self, p: &Path) -> io::Result<()> {
        self.unit(Op::CreateDir, p)
    }

    fn create_dir_all(&self, p: &Path) -> io::Result<()> {
        self.unit(Op::CreateDirAll, p)
    }

    fn remove_file(&self, p: &Path) -> io::Result<()> {
        self.unit(Op::RemoveFile, p)
    }

    fn remove_dir(&self, p: &Path) -> io::Result<()> {
        self.unit(Op::RemoveDir, p)
    }

    fn remove_dir_all(&self, p: &Path) -> io::Result<()> {
        self.unit(Op::RemoveDirAll, p)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let a = CallArgs {
            path: self.rel(from)?,
            path2: self.rel(to)?,
            ..Default::default()
        };
        self.call(Op::Rename, a, None).map(|_| ())
    }

    fn read_dir(&self, p: &Path) -> io::Result<Vec<DirEntry>> {
        let entries: Vec<WireEntry> = parse(&self.path_call(Op::ReadDir, p)?)?;
        Ok(entries.into_iter().map(WireEntry::into_entry).collect())
    }

    fn stat(&self, p: &Path) -> io::Result<Stat> {
        parse::<WireStat>(&self.path_call(Op::Stat, p)?).map(Stat::from)
    }

    fn lstat(&self, p: &Path) -> io::Result<Stat> {
        parse::<WireStat>(&self.path_call(Op::Lstat, p)?).map(Stat::from)
    }

    fn sync_dir(&self, p: &Path) -> io::Result<()> {
        self.unit(Op::SyncDir, p)
    }

    fn sync_fs(&self, p: &Path) -> io::Result<()> {
        self.unit(Op::SyncFs, p)
    }

    fn space(&self, p: &Path) -> io::Result<Space> {
        let s: WireSpace = parse(&self.path_call(Op::Space, p)?)?;
        Ok(Space {
            total: s.total,
            free: s.free,
        })
    }

    /// The node that holds the drive holds its lock.
    fn lock(&self, _sys_dir: &SafePath) -> Result<HeldLock, LockError> {
        Ok(Box::new(()))
    }

    fn probe_lock(&self, _sys_dir: &SafePath) -> Result<(), LockError> {
        Ok(())
    }

    fn walk(&self, bucket_dir: &SafePath, q: &WalkQuery) -> Walk {
        match self.start_walk(bucket_dir, q) {
            Ok(w) => Box::new(w),
            Err(e) => {
                tracing::debug!(node = %self.node.inner.base, error = %e, "remote walk failed");
                Box::new(std::iter::empty())
            }
        }
    }

    fn node(&self) -> &str {
        &self.node.inner.base
    }
}

impl RemoteIo {
    fn start_walk(&self, bucket_dir: &SafePath, q: &WalkQuery) -> io::Result<RemoteWalk> {
        let query = serde_json::to_vec(&WireWalk {
            prefix: q.prefix.clone(),
            start_after: q.start_after.clone(),
            delimiter: q.delimiter.clone(),
            candidates: q.candidates,
        })
        .map_err(io::Error::other)?;
        let a = CallArgs {
            path: self.rel(bucket_dir)?,
            ..Default::default()
        };
        let sha = body_digest(&query);
        let req = self.request(Op::Walk, &a, full(query), &sha)?;
        let body = self.block(async { self.send(req).await.map(Response::into_body) })?;
        Ok(RemoteWalk {
            io: self.clone(),
            body: Some(body),
            buf: Vec::new(),
        })
    }

    /// The next data frame of a streamed body (None at its end).
    fn next_frame(&self, body: &mut Incoming) -> io::Result<Option<Bytes>> {
        self.block(async {
            loop {
                let frame = tokio::time::timeout(CALL_TIMEOUT, body.frame())
                    .await
                    .map_err(|_| timed_out())?;
                match frame {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(io::Error::other(e.to_string())),
                    Some(Ok(f)) => {
                        if let Ok(d) = f.into_data() {
                            return Ok(Some(d));
                        }
                    }
                }
            }
        })
    }
}

/// A walk's items, read from the node's stream as they are asked for.
struct RemoteWalk {
    io: RemoteIo,
    body: Option<Incoming>,
    buf: Vec<u8>,
}

impl Iterator for RemoteWalk {
    type Item = WalkItem;

    fn next(&mut self) -> Option<WalkItem> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                let item = match serde_json::from_slice::<WireItem>(line.get(..nl)?) {
                    Ok(WireItem::Object(k)) => WalkItem::Object(k),
                    Ok(WireItem::Prefix(p)) => WalkItem::Prefix(p),
                    Err(_) => return None,
                };
                return Some(item);
            }
            let body = self.body.as_mut()?;
            match self.io.next_frame(body) {
                Ok(Some(d)) => self.buf.extend_from_slice(&d),
                // the end, or a broken stream: what was read is all
                _ => {
                    self.body = None;
                    return None;
                }
            }
        }
    }
}

/// A file of the node read from an offset; a seek starts a new read.
struct RemoteFile {
    io: RemoteIo,
    path: String,
    pos: u64,
    body: Option<Incoming>,
    buf: Bytes,
}

impl RemoteFile {
    fn start(&mut self) -> io::Result<()> {
        let a = CallArgs {
            path: self.path.clone(),
            offset: self.pos,
            ..Default::default()
        };
        let req = self.io.request(Op::Open, &a, full(Bytes::new()), "")?;
        let io = self.io.clone();
        self.body = Some(
            self.io
                .block(async { io.send(req).await.map(Response::into_body) })?,
        );
        self.buf = Bytes::new();
        Ok(())
    }
}

impl Read for RemoteFile {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            if self.body.is_none() {
                self.start()?;
            }
            let Some(body) = self.body.as_mut() else {
                return Ok(0);
            };
            match self.io.next_frame(body)? {
                Some(d) => self.buf = d,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        let chunk = self.buf.split_to(n);
        if let Some(dst) = out.get_mut(..n) {
            dst.copy_from_slice(&chunk);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RemoteFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => n,
            SeekFrom::Current(d) => self
                .pos
                .checked_add_signed(d)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?,
            SeekFrom::End(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "seek from the end of a remote file",
                ));
            }
        };
        if target != self.pos {
            self.pos = target;
            self.body = None;
            self.buf = Bytes::new();
        }
        Ok(target)
    }
}

/// A file of the node being written: frames go out as they are written;
/// the node fdatasyncs the file when the stream ends and then answers.
struct RemoteWriter {
    io: RemoteIo,
    tx: Option<mpsc::Sender<io::Result<Frame<Bytes>>>>,
    answer: Option<tokio::task::JoinHandle<io::Result<()>>>,
}

impl RemoteWriter {
    /// Ends the stream and waits for the node's answer.
    fn finish(&mut self) -> io::Result<()> {
        self.tx = None;
        let Some(answer) = self.answer.take() else {
            return Ok(());
        };
        self.io
            .block(answer)
            .map_err(io::Error::other)
            .and_then(|r| r)
    }
}

impl Write for RemoteWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tx) = self.tx.clone() else {
            return Err(io::Error::other("file already closed"));
        };
        let frame = Frame::data(Bytes::copy_from_slice(buf));
        if self.io.block(tx.send(Ok(frame))).is_err() {
            // the node stopped reading: its answer says why
            return Err(self
                .finish()
                .err()
                .unwrap_or_else(|| io::Error::other("node closed the file early")));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FileWrite for RemoteWriter {
    fn sync_data(&mut self) -> io::Result<()> {
        self.finish()
    }
}

impl Drop for RemoteWriter {
    /// A writer dropped without `sync_data` still waits for the node to
    /// have written the file (a caller renames it next).
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::debug!(error = %e, "remote file write failed");
        }
    }
}
