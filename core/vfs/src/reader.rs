//! Reading an object that is not staged, for both fronts: per handle, one
//! ranged GET stream per sequential run, kept open across `read` calls by
//! a read-ahead task that groups its chunks into segments the size of the
//! client's reads, one step ahead of them. A sequential client (an NFS
//! READ loop, the kernel's FUSE readahead) then finds the next reply
//! ready. Nothing is copied: a read returns the store's chunks (or slices
//! of them) as `ReadData`, which the FUSE front sends with one writev; a
//! read that matches a chunk takes that buffer as is. Received chunks stay
//! in a window for a while, so the kernel's slightly out-of-order readahead
//! requests are served without restarting the stream.
//!
//! Bounds: at most `AHEAD_SEGS` segments (of at most `MAX_SEG`) wait per
//! stream, `WINDOW` bytes stay behind the read position, and the view holds
//! at most `MAX_STREAMS` streams (`ReadStreams`): starting one more ends the
//! least recently read. A stream whose handle reads nothing for `IDLE`
//! ends by itself, and a change event for its object (a write by any
//! front) ends it and drops its window, so the next read asks the store.
//! An ended stream costs nothing until read again: the handle starts a new
//! one where it left off (and when more handles read at once than there
//! are streams, so that each start ends another's stream before it
//! delivers, a read falls back to one ranged GET of its own range).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_api::changes::ChangeReceiver;
use cairn_api::{BucketName, ByteRange, GetOptions, ObjectKey, ObjectLayer};
use futures::StreamExt as _;
use parking_lot::Mutex;
use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::mpsc;

use crate::data::ReadData;
use crate::error::VfsResult;

/// Bytes kept behind the read position.
const WINDOW: u64 = 8 << 20;
/// A read this far ahead of the stream skips forward instead of restarting.
const SKIP_AHEAD: u64 = 8 << 20;
/// Segment sizes: the client's read size, within these.
const MIN_SEG: usize = 64 << 10;
const MAX_SEG: usize = 1 << 20;
/// Segments assembled ahead of the reads, per stream.
const AHEAD_SEGS: usize = 2;
/// A stream nobody read for this long ends.
const IDLE: Duration = Duration::from_secs(10);
/// Streams one view keeps at most.
pub(crate) const MAX_STREAMS: usize = 32;
/// Restarts one read may make before it gives up (streams evicted by
/// others faster than they deliver: more concurrent readers than
/// `MAX_STREAMS`).
const MAX_RESTARTS: usize = 4;

const RUNNING: u8 = 0;
/// Ended for idleness or to make room: the window is still good.
const EVICTED: u8 = 1;
/// Its object changed: the window is stale too.
const CHANGED: u8 = 2;

/// The view's registry of read-ahead streams (cap, LRU, invalidation).
pub(crate) struct ReadStreams {
    inner: Mutex<Registry>,
    cap: usize,
}

struct Registry {
    /// The store's change events, drained before each read.
    rx: Option<ChangeReceiver>,
    live: HashMap<u64, Live>,
    next_id: u64,
}

struct Live {
    bucket: String,
    key: String,
    used: Instant,
    state: Arc<AtomicU8>,
    abort: tokio::task::AbortHandle,
}

impl Live {
    fn end(&self, why: u8) {
        let _ = self
            .state
            .compare_exchange(RUNNING, why, Ordering::AcqRel, Ordering::Acquire);
        self.abort.abort();
    }
}

impl ReadStreams {
    pub(crate) fn new(rx: Option<ChangeReceiver>, cap: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Registry {
                rx,
                live: HashMap::new(),
                next_id: 1,
            }),
            cap: cap.max(1),
        })
    }

    /// Streams running now.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.inner.lock().live.len()
    }

    /// Ends the streams of objects that changed since the last call.
    fn drain_changes(&self) {
        let mut g = self.inner.lock();
        let g = &mut *g;
        let Some(rx) = g.rx.as_mut() else { return };
        loop {
            match rx.try_recv() {
                Ok(c) => {
                    for l in g.live.values() {
                        if l.key == c.key && l.bucket == c.bucket {
                            l.end(CHANGED);
                        }
                    }
                }
                Err(TryRecvError::Empty) => return,
                // missed some: any stream may be stale
                Err(TryRecvError::Lagged(_)) => {
                    for l in g.live.values() {
                        l.end(CHANGED);
                    }
                }
                Err(TryRecvError::Closed) => {
                    g.rx = None;
                    return;
                }
            }
        }
    }

    fn touch(&self, id: u64) {
        if let Some(l) = self.inner.lock().live.get_mut(&id) {
            l.used = Instant::now();
        }
    }

    fn remove(&self, id: u64) {
        self.inner.lock().live.remove(&id);
    }

    /// Starts a read-ahead stream of `bucket/key` from `at`.
    fn start(
        self: &Arc<Self>,
        layer: &Arc<dyn ObjectLayer>,
        bucket: &BucketName,
        key: &ObjectKey,
        at: u64,
        seg: usize,
    ) -> Ahead {
        let (tx, rx) = mpsc::channel(AHEAD_SEGS);
        let want = Arc::new(AtomicUsize::new(seg));
        let state = Arc::new(AtomicU8::new(RUNNING));
        let task = tokio::spawn(run(
            layer.clone(),
            bucket.clone(),
            key.clone(),
            at,
            want.clone(),
            tx,
            state.clone(),
        ));
        let mut g = self.inner.lock();
        while g.live.len() >= self.cap {
            let Some(oldest) = g.live.iter().min_by_key(|(_, l)| l.used).map(|(id, _)| *id) else {
                break;
            };
            if let Some(l) = g.live.remove(&oldest) {
                l.end(EVICTED);
            }
        }
        let id = g.next_id;
        g.next_id += 1;
        g.live.insert(
            id,
            Live {
                bucket: bucket.as_str().to_owned(),
                key: key.as_str().to_owned(),
                used: Instant::now(),
                state: state.clone(),
                abort: task.abort_handle(),
            },
        );
        drop(g);
        Ahead {
            id,
            rx,
            want,
            state,
            task,
            streams: self.clone(),
        }
    }
}

/// One running read-ahead, owned by a handle's reader.
struct Ahead {
    id: u64,
    rx: mpsc::Receiver<VfsResult<Vec<Bytes>>>,
    /// The size the task cuts its next segment to.
    want: Arc<AtomicUsize>,
    state: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
    streams: Arc<ReadStreams>,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
        self.streams.remove(self.id);
    }
}

/// The read-ahead task: GETs `bucket/key` from `at` and sends it in
/// segments of `want` bytes (a store chunk that holds a whole segment is
/// sliced, not copied).
async fn run(
    layer: Arc<dyn ObjectLayer>,
    bucket: BucketName,
    key: ObjectKey,
    at: u64,
    want: Arc<AtomicUsize>,
    tx: mpsc::Sender<VfsResult<Vec<Bytes>>>,
    state: Arc<AtomicU8>,
) {
    let opts = GetOptions {
        range: Some(ByteRange::FromTo {
            first: at,
            last: None,
        }),
        ..Default::default()
    };
    let mut body = match layer.get_object(&bucket, &key, opts).await {
        Ok(got) => got.body,
        Err(e) => {
            let _ = tx.send(Err(e.into())).await;
            return;
        }
    };
    let mut carry = Bytes::new();
    let mut done = false;
    while !done {
        // a segment: chunks (the last one cut, without a copy) that
        // together make the client's read size
        let seg_len = want.load(Ordering::Relaxed).clamp(MIN_SEG, MAX_SEG);
        let mut seg: Vec<Bytes> = Vec::new();
        let mut have = 0;
        while have < seg_len {
            if carry.is_empty() {
                match body.next().await {
                    Some(Ok(c)) => carry = c,
                    Some(Err(e)) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                    None => {
                        done = true;
                        break;
                    }
                }
                continue;
            }
            let part = carry.split_to((seg_len - have).min(carry.len()));
            have += part.len();
            seg.push(part);
        }
        if seg.is_empty() {
            break;
        }
        match tokio::time::timeout(IDLE, tx.send(Ok(seg))).await {
            Ok(Ok(())) => {}
            // the handle went away
            Ok(Err(_)) => return,
            Err(_) => {
                let _ =
                    state.compare_exchange(RUNNING, EVICTED, Ordering::AcqRel, Ordering::Acquire);
                return;
            }
        }
    }
}

#[derive(Default)]
pub struct ObjectReader {
    ahead: Option<Ahead>,
    /// Offset of the next byte the stream yields.
    pos: u64,
    /// Segments received, in order, with their offsets, ending at `pos`. A
    /// segment a read took whole leaves a gap.
    window: VecDeque<(u64, Bytes)>,
    /// The stream reached the end of the object.
    eof: bool,
    /// A stream was started (or the reader was reset at `pos`).
    started: bool,
    /// The file's commit count its bytes are of (`FileState::commits`).
    commits: u64,
}

impl ObjectReader {
    /// Forgets what was read when the file was committed since (the
    /// object's bytes changed; the change event may come later or, from
    /// a layer without events, never).
    pub(crate) fn at_commit(&mut self, commits: u64) {
        if self.commits != commits {
            *self = Self {
                commits,
                ..Self::default()
            };
        }
    }

    fn restart(&mut self, at: u64) {
        self.ahead = None;
        self.window.clear();
        self.pos = at;
        self.eof = false;
        self.started = true;
    }

    /// Whether the window holds `[from, to)` without a gap.
    fn covers(&self, from: u64, to: u64) -> bool {
        let mut at = from;
        for (o, s) in &self.window {
            let e = o + s.len() as u64;
            if e <= at {
                continue;
            }
            if *o > at {
                return false;
            }
            at = e;
            if at >= to {
                return true;
            }
        }
        at >= to
    }

    /// Fetches `[pos, end)` with one ranged GET into the window, no
    /// stream kept (for when streams are ended faster than they deliver).
    async fn read_direct(
        &mut self,
        layer: &Arc<dyn ObjectLayer>,
        bucket: &BucketName,
        key: &ObjectKey,
        end: u64,
    ) -> VfsResult<()> {
        let opts = GetOptions {
            range: Some(ByteRange::FromTo {
                first: self.pos,
                last: Some(end - 1),
            }),
            ..Default::default()
        };
        let mut body = match layer.get_object(bucket, key, opts).await {
            Ok(got) => got.body,
            // the object ends before `pos`
            Err(cairn_api::ObjectError::InvalidRange { .. }) => {
                self.eof = true;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let start = self.pos;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            let len = chunk.len() as u64;
            self.window.push_back((self.pos, chunk));
            self.pos += len;
        }
        if self.pos < end || self.pos == start {
            self.eof = true;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn read(
        &mut self,
        layer: &Arc<dyn ObjectLayer>,
        streams: &Arc<ReadStreams>,
        bucket: &BucketName,
        key: &ObjectKey,
        offset: u64,
        size: usize,
        file_size: u64,
    ) -> VfsResult<ReadData> {
        if offset >= file_size || size == 0 {
            return Ok(ReadData::default());
        }
        let end = file_size.min(offset.saturating_add(size as u64));
        streams.drain_changes();
        if let Some(a) = &self.ahead {
            match a.state.load(Ordering::Acquire) {
                RUNNING => streams.touch(a.id),
                CHANGED => self.restart(offset),
                _ => {}
            }
        }
        let usable = if offset < self.pos {
            self.covers(offset, end.min(self.pos))
        } else {
            offset <= self.pos.saturating_add(SKIP_AHEAD)
        };
        if !self.started || !usable {
            self.restart(offset);
        }
        let mut restarts = 0;
        while self.pos < end {
            if self.ahead.is_none() {
                if self.eof {
                    break;
                }
                if restarts == MAX_RESTARTS {
                    // more readers than streams: this range without one
                    self.read_direct(layer, bucket, key, end).await?;
                    continue;
                }
                restarts += 1;
                self.ahead = Some(streams.start(layer, bucket, key, self.pos, size));
            }
            let Some(a) = self.ahead.as_mut() else {
                break;
            };
            a.want.store(size, Ordering::Relaxed);
            match a.rx.recv().await {
                Some(Ok(seg)) => {
                    for part in seg {
                        let len = part.len() as u64;
                        self.window.push_back((self.pos, part));
                        self.pos += len;
                    }
                }
                Some(Err(e)) => {
                    self.ahead = None;
                    return Err(e);
                }
                None => {
                    match a.state.load(Ordering::Acquire) {
                        // sent everything before the size we were told:
                        // read the rest once more without a stream (a
                        // short answer makes the kernel cut the file); if
                        // that ends short too, the object is shorter
                        // (another front cut it): serve what exists
                        RUNNING if self.pos < end => {
                            tracing::debug!(%key, pos = self.pos, end, "read-ahead ended early; reading the rest directly");
                            self.ahead = None;
                            self.read_direct(layer, bucket, key, end).await?;
                            continue;
                        }
                        RUNNING => self.eof = true,
                        CHANGED => {
                            self.ahead = None;
                            self.restart(offset);
                            continue;
                        }
                        _ => {}
                    }
                    self.ahead = None;
                }
            }
            // Drop segments that ended before the read and fall out of the window.
            while let Some((o, s)) = self.window.front() {
                let e = o + s.len() as u64;
                if e <= offset && self.pos - e >= WINDOW {
                    self.window.pop_front();
                } else {
                    break;
                }
            }
        }
        let end = end.min(self.pos);
        if offset >= end {
            return Ok(ReadData::default());
        }
        // A read of exactly one chunk takes its buffer (the front may turn
        // it into a `Vec` without a copy while nothing else holds it).
        if let Some(i) = self
            .window
            .iter()
            .position(|(o, s)| *o == offset && s.len() as u64 == end - offset)
            && let Some((_, seg)) = self.window.remove(i)
        {
            return Ok(seg.into());
        }
        let mut parts = Vec::with_capacity(2);
        for (o, s) in &self.window {
            let e = o + s.len() as u64;
            if e > offset && *o < end {
                let from = offset.saturating_sub(*o) as usize;
                let to = (end.min(e) - o) as usize;
                parts.push(s.slice(from..to));
            }
            if e >= end {
                break;
            }
        }
        Ok(ReadData::new(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_api::changes::Change;
    use cairn_api::mem::MemLayer;
    use cairn_api::{PutOptions, bytes_stream};

    fn names() -> (BucketName, ObjectKey) {
        (
            BucketName::new("bkt").unwrap(),
            ObjectKey::new("f").unwrap(),
        )
    }

    async fn layer_with(data: &[u8]) -> Arc<dyn ObjectLayer> {
        let l = Arc::new(MemLayer::new());
        let (b, _) = names();
        l.make_bucket(&b).await.unwrap();
        put(&l, data).await;
        l
    }

    async fn put(l: &MemLayer, data: &[u8]) {
        let (b, k) = names();
        l.put_object(&b, &k, bytes_stream(data.to_vec()), PutOptions::default())
            .await
            .unwrap();
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    async fn read(
        r: &mut ObjectReader,
        l: &Arc<dyn ObjectLayer>,
        s: &Arc<ReadStreams>,
        off: u64,
        size: usize,
        file_size: u64,
    ) -> Vec<u8> {
        let (b, k) = names();
        r.read(l, s, &b, &k, off, size, file_size)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn a_read_across_chunks_returns_them_without_copying() {
        let data = pattern(4 << 20, 3);
        let size = data.len() as u64;
        let l = layer_with(&data).await;
        let s = ReadStreams::new(None, 4);
        let mut r = ObjectReader::default();
        let (b, k) = names();
        // 1 MiB reads make 1 MiB segments; a read across two of them gets
        // both as slices of the store's buffer (contiguous: one chunk)
        let first = r.read(&l, &s, &b, &k, 0, 1 << 20, size).await.unwrap();
        assert_eq!(first.to_vec(), data[..1 << 20]);
        let at = (1 << 20) + (256 << 10);
        let got = r.read(&l, &s, &b, &k, at, 1 << 20, size).await.unwrap();
        assert_eq!(got.to_vec(), data[at as usize..at as usize + (1 << 20)]);
        let parts = got.parts();
        assert_eq!(parts.len(), 2, "one part per segment, not joined");
        assert_eq!(
            parts[0].as_ptr().wrapping_add(parts[0].len()),
            parts[1].as_ptr(),
            "the parts are slices of the store's chunk, not copies"
        );
    }

    #[tokio::test]
    async fn reads_in_any_size_and_order_see_the_object() {
        let data = pattern((8 << 20) + 123, 1);
        let size = data.len() as u64;
        let l = layer_with(&data).await;
        let s = ReadStreams::new(None, 4);
        let mut r = ObjectReader::default();
        let mut at = 0usize;
        // sequential, in sizes that change as they go
        for step in [512 << 10, 512 << 10, 1 << 20, 100_000, 1 << 20] {
            let got = read(&mut r, &l, &s, at as u64, step, size).await;
            assert_eq!(got, data[at..at + step], "read at {at}");
            at += step;
        }
        // the kernel's out-of-order readahead: a later range, then the one before it
        let got = read(&mut r, &l, &s, (at + (1 << 20)) as u64, 1 << 20, size).await;
        assert_eq!(got, data[at + (1 << 20)..at + (2 << 20)]);
        let got = read(&mut r, &l, &s, at as u64, 1 << 20, size).await;
        assert_eq!(got, data[at..at + (1 << 20)]);
        // a range read before (taken whole earlier): the stream restarts there
        let got = read(&mut r, &l, &s, 0, 512 << 10, size).await;
        assert_eq!(got, data[..512 << 10]);
        // the tail, past the end, and beyond a short object
        let got = read(&mut r, &l, &s, size - 100, 1 << 20, size).await;
        assert_eq!(got, data[data.len() - 100..]);
        assert!(read(&mut r, &l, &s, size, 10, size).await.is_empty());
        let got = read(&mut r, &l, &s, size - 10, 100, size + 1000).await;
        assert_eq!(got, data[data.len() - 10..], "an object shorter than told");
        assert!(s.live() <= 1, "one stream per reader");
        let got = read(&mut r, &l, &s, 0, 1 << 20, size).await;
        assert_eq!(got, data[..1 << 20]);
        assert_eq!(s.live(), 1);
        drop(r);
        assert_eq!(s.live(), 0, "a dropped reader ends its stream");
    }

    #[tokio::test]
    async fn a_change_event_restarts_the_stream_on_the_new_bytes() {
        let old = pattern(3 << 20, 1);
        let new = pattern(3 << 20, 2);
        let l = layer_with(&old).await;
        let (tx, rx) = tokio::sync::broadcast::channel(16);
        let s = ReadStreams::new(Some(rx), 4);
        let mut r = ObjectReader::default();
        let size = old.len() as u64;
        assert_eq!(
            read(&mut r, &l, &s, 0, 512 << 10, size).await,
            old[..512 << 10]
        );
        // replaced without an event: the open stream still serves the
        // bytes it was reading
        let (b, k) = names();
        l.put_object(&b, &k, bytes_stream(new.clone()), PutOptions::default())
            .await
            .unwrap();
        let got = read(&mut r, &l, &s, 512 << 10, 512 << 10, size).await;
        assert_eq!(got, old[512 << 10..1 << 20]);
        // the store's event ends the stream and its window
        tx.send(Change::object("bkt", "f")).unwrap();
        let got = read(&mut r, &l, &s, 1 << 20, 512 << 10, size).await;
        assert_eq!(got, new[1 << 20..(1 << 20) + (512 << 10)]);
        let got = read(&mut r, &l, &s, 0, 4096, size).await;
        assert_eq!(got, new[..4096], "nothing of the old window is served");
        // an event for another key changes nothing
        tx.send(Change::object("bkt", "other")).unwrap();
        let got = read(&mut r, &l, &s, 4096, 4096, size).await;
        assert_eq!(got, new[4096..8192]);
    }

    #[tokio::test]
    async fn more_readers_than_streams_still_read_everything() {
        let data = pattern((3 << 20) + 5, 4);
        let size = data.len() as u64;
        let l = layer_with(&data).await;
        let s = ReadStreams::new(None, 1);
        let whole = |mut r: ObjectReader| {
            let (l, s) = (l.clone(), s.clone());
            async move {
                let mut out = Vec::new();
                loop {
                    let got = read(&mut r, &l, &s, out.len() as u64, 256 << 10, size).await;
                    if got.is_empty() {
                        return out;
                    }
                    out.extend_from_slice(&got);
                }
            }
        };
        // each start ends the other's stream before it delivers
        let (a, b, c) = tokio::join!(
            whole(ObjectReader::default()),
            whole(ObjectReader::default()),
            whole(ObjectReader::default())
        );
        assert!(a == data && b == data && c == data);

        // the fallback when streams end before delivering: one ranged GET
        // fills the window, and reads are served from it without a stream
        let mut r = ObjectReader::default();
        r.restart(1000);
        let (bk, k) = names();
        r.read_direct(&l, &bk, &k, 1000 + (1 << 20)).await.unwrap();
        let got = read(&mut r, &l, &s, 1000, 1 << 20, size).await;
        assert_eq!(got, data[1000..1000 + (1 << 20)]);
        assert_eq!(s.live(), 0);
        r.read_direct(&l, &bk, &k, size + 10).await.unwrap();
        assert!(r.eof, "the object ended before the range");
    }

    #[tokio::test]
    async fn streams_are_capped_and_an_evicted_one_resumes() {
        let data = pattern(4 << 20, 3);
        let size = data.len() as u64;
        let l = layer_with(&data).await;
        let s = ReadStreams::new(None, 2);
        let mut rs: Vec<ObjectReader> = (0..3).map(|_| ObjectReader::default()).collect();
        for (i, r) in rs.iter_mut().enumerate() {
            let got = read(r, &l, &s, 0, 256 << 10, size).await;
            assert_eq!(got, data[..256 << 10], "reader {i}");
            assert!(s.live() <= 2);
        }
        // the first reader's stream was ended to make room; it goes on
        // from where it was, by starting another
        for (i, r) in rs.iter_mut().enumerate() {
            let got = read(r, &l, &s, 256 << 10, 1 << 20, size).await;
            assert_eq!(got, data[256 << 10..(256 << 10) + (1 << 20)], "reader {i}");
            assert!(s.live() <= 2);
        }
    }
}
