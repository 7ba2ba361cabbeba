//! The streaming read pipeline: one reader thread per shard in use reads
//! consecutive shard blocks and checks their bitrot hash; an assembler
//! joins K shards per block (zero-copy when all data shards are good,
//! Reed-Solomon reconstruction otherwise) and streams the requested range.
//! A shard block that fails (bad hash, I/O error) is missing for that
//! block only: a spare shard reader starts at that block, the failing
//! reader goes on with the next one, and every block is rebuilt from
//! whatever K shards are good for it. Only a shard whose file is gone or
//! ends early is given up on (for the part).

use std::io::{self, Seek as _, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use cairn_api::{ByteStream, ObjectError, SafePath};
use tokio::sync::mpsc;

use crate::bitrot::{self, HASH_LEN};
use crate::erasure::Erasure;
use crate::meta::VersionMeta;

/// Where one shard of an object version can be read.
#[derive(Clone, Debug)]
pub enum ShardSource {
    /// An object's folder on a drive; a part's file is
    /// `<folder>/<its data dir>/part.<its number>` (`PlanPart`), read
    /// through the drive's file operations.
    Dir(SafePath, Arc<dyn crate::driveio::DriveIo>),
    /// The framed shard of an inline object.
    Inline(Bytes),
}

/// Called with the shard index and the reason when a shard is bad.
pub type BadShardFn = Arc<dyn Fn(usize, &str) + Send + Sync>;
/// Called once with the error when the read fails (a block no K shards
/// rebuild: `ObjectError::DataLost`), before the stream carries it.
pub type ReadFailedFn = Arc<dyn Fn(&ObjectError) + Send + Sync>;
type ShardRx = mpsc::Receiver<ShardBlock>;

pub struct ReadPlan {
    /// The object, for the errors.
    pub bucket: String,
    pub key: String,
    pub erasure: Arc<Erasure>,
    pub block_size: usize,
    /// Indexed by shard index.
    pub sources: Vec<Option<ShardSource>>,
    pub parts: Vec<PlanPart>,
    pub offset: u64,
    pub length: u64,
    /// Told about shards found bad, for healing.
    pub on_bad_shard: Option<BadShardFn>,
    /// Told when the read fails, for counting and logging.
    pub on_failed: Option<ReadFailedFn>,
    /// Held until the readers of the first part to read have read their
    /// first block (their files are open then): the object's read lock,
    /// so that an overwrite cannot take the version's files away before
    /// the read has them (a GET would fail with 500; the history test
    /// of a cluster found it). Inline data is read at once. Later parts
    /// are opened without it: holding it while a slow client reads would
    /// stall writers of the key (and a reader that writes, for good).
    pub hold: Option<Box<dyn Send>>,
}

/// One part to read: its stored size and where its file is.
#[derive(Debug, Clone)]
pub struct PlanPart {
    pub size: u64,
    pub dir: String,
    pub number: u32,
    /// The part's first block in the file (a slice starts past the
    /// file's first: `FileSlice`).
    pub block_skip: u64,
    /// A hole: zeros, read from no drive.
    pub zeros: bool,
}

impl PlanPart {
    /// The parts of `version` as stored (sizes of sealed packages when
    /// encrypted), each with its file.
    pub fn of(version: &VersionMeta) -> Vec<PlanPart> {
        version
            .parts
            .iter()
            .map(|p| {
                let f = version.part_file(p);
                PlanPart {
                    size: version.stored_size(p),
                    dir: f.map_or_else(String::new, |f| f.dir.to_owned()),
                    number: f.map_or(p.number, |f| f.number),
                    block_skip: f.map_or(0, |f| f.skip / version.plain_block().max(1)),
                    zeros: p.zeros,
                }
            })
            .collect()
    }
}

const OUT_QUEUE: usize = 4;
/// What a hole reads as, a chunk at a time.
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];
const SHARD_QUEUE: usize = 3;

/// Starts the pipeline and returns the body stream. A failure ends the
/// stream with an `io::Error` holding the `ObjectError` (see
/// [`object_error`]); nothing follows it.
pub fn stream(mut plan: ReadPlan) -> ByteStream {
    let hold = plan.hold.take();
    if let Some(done) = read_inline(&plan) {
        let items = match done {
            Ok(chunks) => chunks.into_iter().map(Ok).collect(),
            Err(e) => {
                if let Some(cb) = &plan.on_failed {
                    cb(&e);
                }
                vec![Err(std::io::Error::other(e))]
            }
        };
        return Box::pin(futures::stream::iter(items));
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(OUT_QUEUE);
    tokio::task::spawn_blocking(move || {
        // a panic must not end the body as if it were whole
        let done =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| assemble(&plan, &tx, hold)))
                .unwrap_or_else(|_| Err(ObjectError::internal("the read pipeline panicked")));
        if let Err(e) = done {
            if let Some(cb) = &plan.on_failed {
                cb(&e);
            }
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// The `ObjectError` a read stream's error holds, if it came from the
/// pipeline (a decrypting stream passes it on unchanged).
pub fn object_error(e: std::io::Error) -> Result<ObjectError, std::io::Error> {
    if e.get_ref().is_some_and(|r| r.is::<ObjectError>()) {
        match e.into_inner().map(|b| b.downcast::<ObjectError>()) {
            Some(Ok(oe)) => return Ok(*oe),
            Some(Err(other)) => return Err(std::io::Error::other(other)),
            None => return Err(std::io::Error::other("read failed")),
        }
    }
    Err(e)
}

/// What a shard reader sends for each block: the shard data, or why the
/// block is missing from this shard.
type ShardBlock = Result<Vec<u8>, ShardFault>;

struct ShardFault {
    why: String,
    /// The reader stops here (the file is gone or ends early); otherwise
    /// it goes on with the next block.
    last: bool,
}

fn fault(why: String, last: bool) -> ShardFault {
    ShardFault { why, last }
}

/// Reads one part's block range from a shard source. A block with a bad
/// hash or a read error is reported and skipped: the shard is missing for
/// that block only. A file that cannot be opened or ends early ends the
/// reader.
fn spawn_shard_reader(
    source: ShardSource,
    part_dir: &str,
    part_number: u32,
    first_block: u64,
    blocks: Vec<usize>,
    full_frame: u64,
) -> ShardRx {
    let (tx, rx) = mpsc::channel(SHARD_QUEUE);
    let part_dir = part_dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut file = match &source {
            ShardSource::Dir(dir, io) => {
                let path = crate::extents::part_file_path(dir, &part_dir, part_number);
                match path
                    .map_err(io::Error::from)
                    .and_then(|p| io.open(&p, first_block * full_frame))
                {
                    Ok(f) => Some(f),
                    Err(e) => {
                        let _ = tx.blocking_send(Err(fault(
                            format!("{}/{part_dir}/part.{part_number}: {e}", dir.display()),
                            true,
                        )));
                        return;
                    }
                }
            }
            ShardSource::Inline(_) => None,
        };
        for (i, shard_len) in blocks.into_iter().enumerate() {
            let block = first_block + i as u64;
            let (hash, data) = match (&mut file, &source) {
                (Some(f), _) => match bitrot::read_block(f, shard_len) {
                    Ok(block) => block,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        let _ =
                            tx.blocking_send(Err(fault(format!("block {block}: read: {e}"), true)));
                        return;
                    }
                    Err(e) => {
                        // one unreadable block (a bad sector): skip it
                        let next = f.seek(SeekFrom::Start((block + 1) * full_frame));
                        if tx
                            .blocking_send(Err(fault(
                                format!("block {block}: read: {e}"),
                                next.is_err(),
                            )))
                            .is_err()
                            || next.is_err()
                        {
                            return;
                        }
                        continue;
                    }
                },
                (None, ShardSource::Inline(b)) => match split_frame(b, shard_len) {
                    Some(block) => block,
                    None => {
                        let _ =
                            tx.blocking_send(Err(fault("inline shard: wrong length".into(), true)));
                        return;
                    }
                },
                (None, ShardSource::Dir(..)) => return,
            };
            let sent: ShardBlock = if bitrot::verify_block(&hash, &data) {
                Ok(data)
            } else {
                Err(fault(
                    format!("block {block}: bitrot: shard hash mismatch"),
                    false,
                ))
            };
            if tx.blocking_send(sent).is_err() {
                return;
            }
        }
    });
    rx
}

/// An inline object's range, decoded where the caller runs: one block of
/// at most 128 KiB per shard, already in memory, is microseconds of
/// hashing, less than the thread hops of the pipeline (an assembler and
/// K shard readers on blocking threads). None when the plan reads any
/// file or more than one block. The same rules as the pipeline: data
/// shards first, a shard with a bad hash or length reported and replaced
/// by the next one, fewer than K good shards `DataLost`.
fn read_inline(plan: &ReadPlan) -> Option<Result<Vec<Bytes>, ObjectError>> {
    fn inline(s: &Option<ShardSource>) -> Option<&Bytes> {
        match s {
            Some(ShardSource::Inline(b)) => Some(b),
            _ => None,
        }
    }
    if plan
        .sources
        .iter()
        .any(|s| s.is_some() && inline(s).is_none())
    {
        return None;
    }
    let [part] = plan.parts.as_slice() else {
        return None;
    };
    if part.zeros || part.block_skip != 0 || part.size > plan.block_size as u64 {
        return None;
    }
    let end = plan.offset.checked_add(plan.length)?;
    if end > part.size {
        return None; // the pipeline says what is wrong
    }
    if plan.length == 0 {
        return Some(Ok(Vec::new()));
    }
    let k = plan.erasure.data_shards();
    let ss = plan.erasure.shard_size(part.size as usize);
    let mut good: Vec<Option<Bytes>> = vec![None; plan.erasure.total_shards()];
    let mut have = 0;
    let mut why_bad = Vec::new();
    for (idx, slot) in good.iter_mut().enumerate() {
        if have == k {
            break;
        }
        let Some(frame) = plan.sources.get(idx).and_then(inline) else {
            continue;
        };
        let why = match split_frame_ref(frame, ss) {
            Some((hash, data)) if bitrot::verify_block(hash, data) => {
                *slot = Some(frame.slice(HASH_LEN..));
                have += 1;
                continue;
            }
            Some(_) => "block 0: bitrot: shard hash mismatch",
            None => "inline shard: wrong length",
        };
        tracing::warn!(
            shard = idx,
            part = part.number,
            why,
            "shard block unreadable; reconstructing"
        );
        if let Some(cb) = &plan.on_bad_shard {
            cb(idx, why);
        }
        why_bad.push(format!("shard {idx}: {why}"));
    }
    if have < k {
        let gone = plan.sources.iter().filter(|s| s.is_none()).count();
        if gone > 0 {
            why_bad.push(format!("{gone} shard(s) without a copy"));
        }
        return Some(Err(ObjectError::DataLost {
            bucket: plan.bucket.clone(),
            key: plan.key.clone(),
            part: part.number,
            block: 0,
            detail: format!(
                "{have} of {k} shards needed are good: {}",
                why_bad.join("; ")
            ),
        }));
    }
    if good.iter().take(k).any(Option::is_none) {
        let mut shards: Vec<Option<Vec<u8>>> = good
            .iter()
            .map(|s| s.as_ref().map(|b| b.to_vec()))
            .collect();
        if let Err(e) = plan.erasure.reconstruct_data(&mut shards) {
            return Some(Err(ObjectError::internal(format!("reconstruct: {e}"))));
        }
        good = shards.into_iter().map(|s| s.map(Bytes::from)).collect();
    }
    let mut out = Vec::with_capacity(k);
    for (j, shard) in good.into_iter().take(k).enumerate() {
        let (s_lo, s_hi) = ((j * ss) as u64, ((j + 1) * ss) as u64);
        let (lo, hi) = (plan.offset.max(s_lo), end.min(s_hi));
        if lo >= hi {
            continue;
        }
        let shard = shard?;
        out.push(shard.slice((lo - s_lo) as usize..(hi - s_lo) as usize));
    }
    Some(Ok(out))
}

/// An inline framed shard as its hash and data, borrowed.
fn split_frame_ref(frame: &[u8], shard_len: usize) -> Option<(&[u8; HASH_LEN], &[u8])> {
    if frame.len() != HASH_LEN + shard_len {
        return None;
    }
    let (hash, data) = frame.split_at_checked(HASH_LEN)?;
    Some((<&[u8; HASH_LEN]>::try_from(hash).ok()?, data))
}

/// An inline framed shard as its hash and data.
fn split_frame(frame: &[u8], shard_len: usize) -> Option<([u8; HASH_LEN], Vec<u8>)> {
    if frame.len() != HASH_LEN + shard_len {
        return None;
    }
    let (hash, data) = frame.split_at_checked(HASH_LEN)?;
    Some((<[u8; HASH_LEN]>::try_from(hash).ok()?, data.to_vec()))
}

/// The shard readers of one part. A reader that fails a block stays on
/// for the next one; only a reader that ended (file gone or cut short) is
/// given up on, for this part.
struct PartReaders<'a> {
    plan: &'a ReadPlan,
    part_dir: &'a str,
    part_number: u32,
    first_block: u64,
    shard_lens: Vec<usize>,
    full_frame: u64,
    readers: Vec<Option<ShardRx>>,
    dead: Vec<bool>,
    /// Per shard, how many blocks in a row its reader failed.
    strikes: Vec<u32>,
}

// Every per-shard Vec here (readers, dead, strikes, and a block's shards
// and bad_here) has total_shards entries, and every idx runs over 0..n.
#[allow(clippy::indexing_slicing)]
impl PartReaders<'_> {
    /// Starts shard `idx`'s reader at block `from` (of this range).
    fn start(&mut self, idx: usize, from: usize) -> bool {
        let Some(src) = self.plan.sources.get(idx).cloned().flatten() else {
            return false;
        };
        let Some(lens) = self.shard_lens.get(from..) else {
            return false;
        };
        self.readers[idx] = Some(spawn_shard_reader(
            src,
            self.part_dir,
            self.part_number,
            self.first_block + from as u64,
            lens.to_vec(),
            self.full_frame,
        ));
        true
    }

    /// At least K good shards of block `i` (indexed by shard), starting
    /// spare readers at this block for the shards missing from it.
    fn gather(&mut self, i: usize) -> Result<Vec<Option<Vec<u8>>>, ObjectError> {
        let k = self.plan.erasure.data_shards();
        let n = self.readers.len();
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; n];
        let mut bad_here = vec![false; n];
        let mut why_bad: Vec<String> = Vec::new();
        let mut have = 0;
        loop {
            for idx in 0..n {
                if shards[idx].is_some() || bad_here[idx] {
                    continue;
                }
                let Some(rx) = self.readers[idx].as_mut() else {
                    continue;
                };
                match rx.blocking_recv() {
                    Some(Ok(data)) => {
                        shards[idx] = Some(data);
                        self.strikes[idx] = 0;
                        have += 1;
                    }
                    Some(Err(f)) => {
                        tracing::warn!(shard = idx, part = self.part_number, why = %f.why, "shard block unreadable; reconstructing");
                        if let Some(cb) = &self.plan.on_bad_shard {
                            cb(idx, &f.why);
                        }
                        bad_here[idx] = true;
                        why_bad.push(format!("shard {idx}: {}", f.why));
                        self.strikes[idx] += 1;
                        if f.last {
                            self.readers[idx] = None;
                            self.dead[idx] = true;
                        }
                    }
                    None => {
                        self.readers[idx] = None;
                        self.dead[idx] = true;
                    }
                }
            }
            if have >= k {
                return Ok(shards);
            }
            // Every running reader has answered for this block: start
            // spares for what is missing, at this block.
            let mut need = k - have;
            for (idx, &bad) in bad_here.iter().enumerate() {
                if need == 0 {
                    break;
                }
                if bad || self.readers[idx].is_some() || self.dead[idx] {
                    continue;
                }
                if self.start(idx, i) {
                    need -= 1;
                }
            }
            if need > 0 {
                let gone = n - self.plan.sources.iter().flatten().count();
                if gone > 0 {
                    why_bad.push(format!("{gone} shard(s) without a copy"));
                }
                let ended = (0..n).filter(|&x| self.dead[x] && !bad_here[x]).count();
                if ended > 0 {
                    why_bad.push(format!("{ended} shard file(s) gone or cut short earlier"));
                }
                return Err(ObjectError::DataLost {
                    bucket: self.plan.bucket.clone(),
                    key: self.plan.key.clone(),
                    part: self.part_number,
                    block: self.first_block + i as u64,
                    detail: format!(
                        "{have} of {k} shards needed are good: {}",
                        why_bad.join("; ")
                    ),
                });
            }
        }
    }

    /// After a block: keep K running readers, data shards first, and stop
    /// the others, so the rest of the part is read from K shards again. A
    /// reader that failed this block stays preferred (one bad block, and
    /// the next ones need no decoding) unless it failed the one before
    /// too (a shard bad throughout is left to the spares).
    fn trim(&mut self) {
        let k = self.plan.erasure.data_shards();
        let mut running: Vec<usize> = (0..self.readers.len())
            .filter(|&i| self.readers[i].is_some())
            .collect();
        running.sort_by_key(|&i| (self.strikes[i] >= 2, i));
        for &i in running.iter().skip(k) {
            self.readers[i] = None;
        }
    }
}

// shards has total_shards >= k entries (gather) and shard_lens one per
// block of block_lens (both made from the same block range here).
#[allow(clippy::indexing_slicing)]
fn assemble(
    plan: &ReadPlan,
    out: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    mut hold: Option<Box<dyn Send>>,
) -> Result<(), ObjectError> {
    let k = plan.erasure.data_shards();
    let n = plan.erasure.total_shards();
    let bs = plan.block_size as u64;
    let full_shard = plan.erasure.shard_size(plan.block_size) as u64;
    let full_frame = HASH_LEN as u64 + full_shard;
    let end = plan.offset + plan.length;
    let mut part_start = 0u64;
    for part in &plan.parts {
        let part_end = part_start + part.size;
        if part_end <= plan.offset || part_start >= end || part.size == 0 {
            part_start = part_end;
            continue;
        }
        let lo = plan.offset.max(part_start) - part_start;
        let hi = end.min(part_end) - part_start;
        if part.zeros {
            let mut left = hi - lo;
            while left > 0 {
                let n = left.min(ZEROS.len() as u64) as usize;
                if out
                    .blocking_send(Ok(Bytes::from_static(&ZEROS[..n])))
                    .is_err()
                {
                    return Ok(()); // client went away
                }
                left -= n as u64;
            }
            part_start = part_end;
            continue;
        }
        let first_block = lo / bs;
        let last_block = (hi - 1) / bs;
        let block_lens: Vec<usize> = (first_block..=last_block)
            .map(|b| (part.size - b * bs).min(bs) as usize)
            .collect();
        let shard_lens: Vec<usize> = block_lens
            .iter()
            .map(|&l| plan.erasure.shard_size(l))
            .collect();

        // Readers: data shards first (no decoding needed), then parity.
        let mut readers = PartReaders {
            plan,
            part_dir: &part.dir,
            part_number: part.number,
            first_block: part.block_skip + first_block,
            shard_lens: shard_lens.clone(),
            full_frame,
            readers: (0..n).map(|_| None).collect(),
            dead: vec![false; n],
            strikes: vec![0; n],
        };
        let mut active = 0;
        for idx in 0..n {
            if active == k {
                break;
            }
            if readers.start(idx, 0) {
                active += 1;
            }
        }

        for (i, &block_len) in block_lens.iter().enumerate() {
            let mut shards = readers.gather(i)?;
            drop(hold.take());
            readers.trim();
            let data_ok = shards[..k].iter().all(Option::is_some);
            if !data_ok {
                plan.erasure
                    .reconstruct_data(&mut shards)
                    .map_err(|e| ObjectError::internal(format!("reconstruct: {e}")))?;
            }
            let b = first_block + i as u64;
            let block_start = part_start + b * bs;
            let want_lo = plan.offset.max(block_start) - block_start;
            let want_hi = end.min(block_start + block_len as u64) - block_start;
            let ss = shard_lens[i];
            for (j, shard) in shards.into_iter().take(k).enumerate() {
                let Some(shard) = shard else { continue };
                let s_lo = (j * ss) as u64;
                let s_hi = s_lo + ss as u64;
                let lo = want_lo.max(s_lo);
                let hi = want_hi.min(s_hi);
                if lo >= hi {
                    continue;
                }
                // a whole shard goes on as its own buffer (a reader can
                // take it back as a Vec without a copy)
                let bytes = if lo == s_lo && hi == s_hi && shard.len() == ss {
                    Bytes::from(shard)
                } else {
                    Bytes::from(shard).slice((lo - s_lo) as usize..(hi - s_lo) as usize)
                };
                if out.blocking_send(Ok(bytes)).is_err() {
                    return Ok(()); // client went away
                }
            }
        }
        part_start = part_end;
    }
    Ok(())
}
