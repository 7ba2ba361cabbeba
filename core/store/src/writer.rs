//! The streaming write pipeline: body -> 1 MiB blocks -> (MD5 and checksum)
//! || (erasure coding + bitrot hashes) -> one writer per drive. Each stage
//! is a task working on a different block at the same time, taking a
//! blocking thread only for the block at hand (so a stalled upload holds
//! none), and memory is bounded by the channel depths (a few MiB per PUT),
//! whatever the object size.

use std::io::Write as _;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cairn_api::checksum::BodyDigest;
use cairn_api::{ByteStream, ObjectError};
use futures::StreamExt as _;
use tokio::sync::mpsc;

use crate::driveio::FileWrite;
use crate::erasure::Erasure;
use crate::sse::{PACKAGE, PartCipher};

/// Where one part file goes: per drive, the file to create (None when the
/// drive is already known to be unusable).
pub struct PartTargets {
    pub files: Vec<Option<crate::driveio::DrivePath>>,
    /// `distribution[drive]` = shard index that drive stores.
    pub distribution: Vec<usize>,
    /// Each drive's writer makes the folder of its file (the write's tmp
    /// folder) in its first job, before creating the file: no thread hop
    /// of its own per drive.
    pub make_dir: bool,
}

pub struct Encoded {
    pub digest: BodyDigest,
    pub size: u64,
    /// Per drive: did every shard block reach the disk (fsynced)?
    pub written: Vec<ShardWrite>,
}

/// How one drive's shard file fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardWrite {
    /// Every block reached the disk (fsynced).
    Written,
    /// The drive ran out of space (ENOSPC, EDQUOT).
    Full,
    /// Any other failure (no drive, an I/O error).
    Failed,
}

impl ShardWrite {
    pub fn ok(self) -> bool {
        self == Self::Written
    }
}

/// A drive writer's queue: shards, each flagged when it is the last.
type ShardTx = mpsc::Sender<(Vec<u8>, bool)>;

const HASH_QUEUE: usize = 4;
const ENCODE_QUEUE: usize = 2;
const DRIVE_QUEUE: usize = 2;

/// Streams `prefix` followed by the rest of `body` into part files.
/// With `seal`, each block is encrypted (package by package, on the
/// encoder thread) before erasure coding; the digest is always of the
/// plaintext. Fails only on a body error or when the size limit is
/// exceeded; drive failures are reported in `written` for the caller's
/// quorum check.
#[allow(clippy::too_many_arguments)]
pub async fn encode_stream(
    prefix: Bytes,
    mut body: ByteStream,
    digest: BodyDigest,
    erasure: Arc<Erasure>,
    block_size: usize,
    targets: PartTargets,
    max_size: u64,
    seal: Option<PartCipher>,
) -> Result<Encoded, ObjectError> {
    let drives = targets.files.len();
    let (hash_tx, mut hash_rx) = mpsc::channel::<Bytes>(HASH_QUEUE);
    let (enc_tx, mut enc_rx) = mpsc::channel::<(Bytes, bool)>(ENCODE_QUEUE);
    let sealing = seal.is_some();

    let hasher = tokio::spawn(async move {
        let mut digest = digest;
        while let Some(first) = hash_rx.recv().await {
            let mut blocks = vec![first];
            while let Ok(b) = hash_rx.try_recv() {
                blocks.push(b);
            }
            digest = on_thread(move || {
                for b in &blocks {
                    digest.update_in_lanes(b);
                }
                Ok(digest)
            })
            .await?;
        }
        Ok::<_, std::io::Error>(digest)
    });

    let mut drive_txs = Vec::with_capacity(drives);
    let mut drive_jobs = Vec::with_capacity(drives);
    for file in targets.files {
        let (tx, rx) = mpsc::channel::<(Vec<u8>, bool)>(DRIVE_QUEUE);
        drive_jobs.push(tokio::spawn(write_shards(file, targets.make_dir, rx)));
        drive_txs.push(tx);
    }
    let distribution = targets.distribution;
    let encoder = tokio::spawn(async move {
        let mut alive: Vec<Option<ShardTx>> = drive_txs.into_iter().map(Some).collect();
        let mut sealer = Sealer {
            erasure,
            seal,
            seq: 0,
            sealed: Vec::new(),
        };
        while let Some((block, last)) = enc_rx.recv().await {
            let (back, shards) = on_thread(move || {
                let shards = sealer.encode(&block, last);
                Ok((sealer, shards))
            })
            .await?;
            sealer = back;
            let mut shards: Vec<Option<Vec<u8>>> = shards.into_iter().map(Some).collect();
            for (drive, slot) in alive.iter_mut().enumerate() {
                let Some(tx) = slot else { continue };
                let Some(shard) = distribution
                    .get(drive)
                    .and_then(|&s| shards.get_mut(s))
                    .and_then(Option::take)
                else {
                    *slot = None;
                    continue;
                };
                if tx.send((shard, last)).await.is_err() {
                    // The drive's writer failed; it reports why.
                    *slot = None;
                }
            }
        }
        Ok::<_, std::io::Error>(())
    });

    let mut size = 0u64;
    let mut block = BytesMut::with_capacity(block_size);
    let mut pending = Some(prefix);
    // A full block is held back until the next byte arrives: the encoder
    // must know which block is the last (its last package is flagged).
    let mut held: Option<Bytes> = None;
    let result: Result<(), ObjectError> = async {
        loop {
            let chunk = match pending.take() {
                Some(c) => c,
                None => match body.next().await {
                    Some(Ok(c)) => c,
                    Some(Err(e)) => {
                        return Err(ObjectError::BodyRead {
                            message: e.to_string(),
                        });
                    }
                    None => break,
                },
            };
            size += chunk.len() as u64;
            if size > max_size {
                return Err(ObjectError::EntityTooLarge {
                    size,
                    max: max_size,
                });
            }
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                if let Some(h) = held.take() {
                    send_block(&hash_tx, &enc_tx, h, false).await?;
                }
                let take = (block_size - block.len()).min(rest.len());
                let (now, later) = rest.split_at(take);
                block.extend_from_slice(now);
                rest = later;
                if block.len() == block_size {
                    held = Some(
                        std::mem::replace(&mut block, BytesMut::with_capacity(block_size)).freeze(),
                    );
                }
            }
        }
        if let Some(h) = held.take() {
            send_block(&hash_tx, &enc_tx, h, block.is_empty()).await?;
        }
        if !block.is_empty() || (sealing && size == 0) {
            send_block(&hash_tx, &enc_tx, block.split().freeze(), true).await?;
        }
        Ok(())
    }
    .await;
    drop(hash_tx);
    drop(enc_tx);
    let joined = async {
        let digest = hasher
            .await
            .map_err(ObjectError::internal)?
            .map_err(ObjectError::internal)?;
        encoder
            .await
            .map_err(ObjectError::internal)?
            .map_err(ObjectError::internal)?;
        let mut written = Vec::with_capacity(drives);
        for j in drive_jobs {
            let outcome = match j.await {
                Ok(Ok(())) => ShardWrite::Written,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "shard write failed");
                    match e.kind() {
                        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                            ShardWrite::Full
                        }
                        _ => ShardWrite::Failed,
                    }
                }
                Err(e) => return Err(ObjectError::internal(e)),
            };
            written.push(outcome);
        }
        Ok((digest, written))
    }
    .await;
    result?;
    let (digest, written) = joined?;
    Ok(Encoded {
        digest,
        size,
        written,
    })
}

async fn send_block(
    hash_tx: &mpsc::Sender<Bytes>,
    enc_tx: &mpsc::Sender<(Bytes, bool)>,
    block: Bytes,
    last: bool,
) -> Result<(), ObjectError> {
    let gone = || ObjectError::internal("write pipeline stopped");
    hash_tx.send(block.clone()).await.map_err(|_| gone())?;
    enc_tx.send((block, last)).await.map_err(|_| gone())
}

/// The encoder's state between blocks: a block is sealed (when
/// encrypting) and erasure coded on a blocking thread, then handed back.
struct Sealer {
    erasure: Arc<Erasure>,
    seal: Option<PartCipher>,
    seq: u64,
    sealed: Vec<u8>,
}

impl Sealer {
    fn encode(&mut self, block: &[u8], last: bool) -> Vec<Vec<u8>> {
        let data: &[u8] = match &self.seal {
            None => block,
            Some(c) => {
                self.sealed.clear();
                let n = block.len().div_ceil(PACKAGE).max(1);
                for (i, pkg) in block.chunks(PACKAGE).enumerate() {
                    c.seal(self.seq, last && i + 1 == n, pkg, &mut self.sealed);
                    self.seq += 1;
                }
                if block.is_empty() {
                    // an empty part still has its (final) package
                    c.seal(self.seq, true, &[], &mut self.sealed);
                }
                &self.sealed
            }
        };
        self.erasure.encode_framed(data)
    }
}

/// Runs one step of the pipeline on a blocking thread. The stages are
/// tasks that take a thread only while they have a block to work on: an
/// upload whose client stops sending holds no thread (each used to hold
/// one per stage and drive, and ~100 stalled uploads filled the pool).
async fn on_thread<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

/// Appends the shards it is sent to the part file (created with the first
/// one, so a stalled upload holds no descriptor), then syncs it: on the
/// thread that wrote the last shard (flagged by the encoder; a 1 MiB PUT
/// is then one thread hop per drive, not two).
async fn write_shards(
    file: Option<crate::driveio::DrivePath>,
    make_dir: bool,
    mut rx: mpsc::Receiver<(Vec<u8>, bool)>,
) -> std::io::Result<()> {
    let path = Arc::new(file.ok_or_else(|| std::io::Error::other("drive unavailable"))?);
    let mut f: Option<Box<dyn FileWrite>> = None;
    let mut at = 0u64;
    while let Some(first) = rx.recv().await {
        let mut bufs = vec![first];
        while let Ok(b) = rx.try_recv() {
            bufs.push(b);
        }
        let last = bufs.iter().any(|(_, last)| *last);
        let path = path.clone();
        let (file, end) = on_thread(move || {
            let mut f = match f {
                Some(f) => f,
                None => create(&path, make_dir)?,
            };
            let mut end = at;
            for (b, _) in &bufs {
                f.write_all(b)?;
                end += b.len() as u64;
            }
            if last {
                f.sync_data()?;
            } else {
                // the disk starts on what is written while more comes
                f.written(at, end);
            }
            Ok((f, end))
        })
        .await?;
        if last {
            return Ok(());
        }
        f = Some(file);
        at = end;
    }
    on_thread(move || {
        let mut f = match f {
            Some(f) => f,
            None => create(&path, make_dir)?,
        };
        f.sync_data()
    })
    .await
}

/// Creates a part file, and first its folder when `make_dir` (a folder
/// that exists already is an error: a tmp folder is new to its write).
fn create(path: &crate::driveio::DrivePath, make_dir: bool) -> std::io::Result<Box<dyn FileWrite>> {
    if make_dir {
        let dir = path
            .path
            .parent()
            .ok_or_else(|| std::io::Error::other("a part file has no folder"))?;
        path.io.create_dir(dir)?;
    }
    path.io.create(&path.path)
}
