//! The streaming read pipeline: one reader thread per shard in use reads
//! consecutive shard blocks and checks their bitrot hash; an assembler
//! joins K shards per block (zero-copy when all data shards are good,
//! Reed-Solomon reconstruction otherwise) and streams the requested range.
//! A shard that fails (I/O error, bad hash) is dropped and a spare shard
//! reader starts at the failing block.

use std::fs::File;
use std::io::{self, Seek as _, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use cairn_api::{ByteStream, ObjectError, QuorumOp, SafePath};
use tokio::sync::mpsc;

use crate::bitrot::{self, HASH_LEN};
use crate::erasure::Erasure;
use crate::meta::PartMeta;

/// Where one shard of an object version can be read.
#[derive(Clone, Debug)]
pub enum ShardSource {
    /// A data dir on a drive; the part file is `<dir>/part.N`.
    Dir(SafePath),
    /// The framed shard of an inline object.
    Inline(Bytes),
}

/// Called with the shard index and the reason when a shard is bad.
pub type BadShardFn = Arc<dyn Fn(usize, &str) + Send + Sync>;
type ShardRx = mpsc::Receiver<Result<Vec<u8>, String>>;

pub struct ReadPlan {
    pub erasure: Arc<Erasure>,
    pub block_size: usize,
    /// Indexed by shard index.
    pub sources: Vec<Option<ShardSource>>,
    pub parts: Vec<PartMeta>,
    pub offset: u64,
    pub length: u64,
    /// Told about shards found bad, for healing.
    pub on_bad_shard: Option<BadShardFn>,
}

const OUT_QUEUE: usize = 4;
const SHARD_QUEUE: usize = 3;

/// Starts the pipeline and returns the body stream.
pub fn stream(plan: ReadPlan) -> ByteStream {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(OUT_QUEUE);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = assemble(&plan, &tx) {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Reads one whole part's block range from a shard source.
fn spawn_shard_reader(
    source: ShardSource,
    part_number: u32,
    first_block: u64,
    blocks: Vec<usize>,
    full_frame: u64,
) -> ShardRx {
    let (tx, rx) = mpsc::channel(SHARD_QUEUE);
    tokio::task::spawn_blocking(move || {
        let mut file = match &source {
            ShardSource::Dir(dir) => {
                let path = crate::drive::part_path(dir, part_number);
                match path
                    .map_err(io::Error::from)
                    .and_then(|p| File::open(&p))
                    .and_then(|mut f| {
                        f.seek(SeekFrom::Start(first_block * full_frame))?;
                        Ok(f)
                    }) {
                    Ok(f) => Some(f),
                    Err(e) => {
                        let _ = tx.blocking_send(Err(format!(
                            "{}/part.{part_number}: {e}",
                            dir.display()
                        )));
                        return;
                    }
                }
            }
            ShardSource::Inline(_) => None,
        };
        for shard_len in blocks {
            let (hash, data) = match (&mut file, &source) {
                (Some(f), _) => match bitrot::read_block(f, shard_len) {
                    Ok(block) => block,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(format!("read: {e}")));
                        return;
                    }
                },
                (None, ShardSource::Inline(b)) => match split_frame(b, shard_len) {
                    Some(block) => block,
                    None => {
                        let _ = tx.blocking_send(Err("inline shard: wrong length".into()));
                        return;
                    }
                },
                (None, ShardSource::Dir(_)) => return,
            };
            if !bitrot::verify_block(&hash, &data) {
                let _ = tx.blocking_send(Err("bitrot: shard hash mismatch".into()));
                return;
            }
            if tx.blocking_send(Ok(data)).is_err() {
                return;
            }
        }
    });
    rx
}

/// An inline framed shard as its hash and data.
fn split_frame(frame: &[u8], shard_len: usize) -> Option<([u8; HASH_LEN], Vec<u8>)> {
    if frame.len() != HASH_LEN + shard_len {
        return None;
    }
    let hash = <[u8; HASH_LEN]>::try_from(&frame[..HASH_LEN]).ok()?;
    Some((hash, frame[HASH_LEN..].to_vec()))
}

fn assemble(
    plan: &ReadPlan,
    out: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), ObjectError> {
    let k = plan.erasure.data_shards();
    let n = plan.erasure.total_shards();
    let bs = plan.block_size as u64;
    let full_shard = plan.erasure.shard_size(plan.block_size) as u64;
    let full_frame = HASH_LEN as u64 + full_shard;
    let mut failed = vec![false; n];
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
        let mut readers: Vec<Option<ShardRx>> = (0..n).map(|_| None).collect();
        let start_reader = |idx: usize, from: usize| {
            plan.sources[idx].clone().map(|src| {
                spawn_shard_reader(
                    src,
                    part.number,
                    first_block + from as u64,
                    shard_lens[from..].to_vec(),
                    full_frame,
                )
            })
        };
        let mut active = 0;
        for idx in 0..n {
            if active == k {
                break;
            }
            if failed[idx] {
                continue;
            }
            if let Some(r) = start_reader(idx, 0) {
                readers[idx] = Some(r);
                active += 1;
            }
        }

        for (i, &block_len) in block_lens.iter().enumerate() {
            let mut shards: Vec<Option<Vec<u8>>> = vec![None; n];
            let mut have = 0;
            loop {
                for idx in 0..n {
                    if shards[idx].is_some() {
                        continue;
                    }
                    let Some(rx) = readers[idx].as_mut() else {
                        continue;
                    };
                    match rx.blocking_recv() {
                        Some(Ok(frame)) => {
                            shards[idx] = Some(frame);
                            have += 1;
                        }
                        Some(Err(why)) => {
                            tracing::warn!(shard = idx, part = part.number, %why, "shard unreadable; reconstructing");
                            if let Some(cb) = &plan.on_bad_shard {
                                cb(idx, &why);
                            }
                            readers[idx] = None;
                            failed[idx] = true;
                        }
                        None => {
                            readers[idx] = None;
                            failed[idx] = true;
                        }
                    }
                }
                if have >= k {
                    break;
                }
                // Every running reader has answered for this block: start
                // spares for what is missing, at this block.
                let mut need = k - have;
                for idx in 0..n {
                    if need == 0 {
                        break;
                    }
                    if readers[idx].is_some() || failed[idx] || shards[idx].is_some() {
                        continue;
                    }
                    if let Some(r) = start_reader(idx, i) {
                        readers[idx] = Some(r);
                        need -= 1;
                    }
                }
                if need > 0 {
                    return Err(ObjectError::Unavailable {
                        op: QuorumOp::Read,
                        needed: k,
                        got: have + (k - have - need),
                    });
                }
            }
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
