//! `ErasureSet`: N local drives, objects erasure coded across all of them,
//! served through the `ObjectLayer` trait.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cairn_api::SafePath;
use cairn_api::checksum::BodyDigest;
use cairn_api::{
    BucketName, ByteStream, ObjectError, ObjectKey, ObjectResult, QuorumOp, StorageClass,
};
use futures::StreamExt as _;
use time::OffsetDateTime;

use crate::drive::{Drive, DriveError, Format};
use crate::drivelock::LockError;
use crate::erasure::Erasure;
use crate::healq::HealQueue;
use crate::locks::LockTable;
use crate::meta::{BLOCK_SIZE, DATA_DIR_PREFIX, ErasureInfo, ObjectMeta, PartMeta, VersionMeta};
use crate::setup::SetupError;
use crate::stats::Stats;
use crate::writer::{PartTargets, encode_stream};

/// How a commit is made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Commit {
    /// Drives that must take it.
    pub quorum: usize,
    /// Without fsyncs, made durable by the next group sync (writeback.rs).
    pub write_back: bool,
    /// The write lock's generation (`WriteGuard::fence`; 0 on one node).
    pub fence: u64,
}

pub struct ErasureSet {
    pub(crate) drives: Vec<Arc<Drive>>,
    /// Parity of the STANDARD storage class.
    pub(crate) parity: usize,
    pub(crate) deployment_id: String,
    pub(crate) locks: LockTable,
    pub(crate) stats: Arc<Stats>,
    pub(crate) heal_queue: Arc<HealQueue>,
    /// Objects commits could not write on every drive.
    pub(crate) missed: crate::healq::MissedWrites,
    /// How long a drive may take to answer before it is marked offline.
    pub(crate) drive_timeout: std::time::Duration,
    /// Cleared by the admin API to pause the scanner.
    pub(crate) scanner_enabled: std::sync::atomic::AtomicBool,
    /// The scanner's deep-scan byte budget per second (0: unlimited).
    pub(crate) scan_rate: std::sync::atomic::AtomicU64,
    /// One drive monitor pass at a time (two must not format one drive).
    pub(crate) monitor: tokio::sync::Mutex<()>,
    /// The KMS and cipher of server-side encryption.
    pub(crate) sse: parking_lot::RwLock<crate::sse::SseConfig>,
    /// Change events for the fronts' caches.
    pub(crate) changes: tokio::sync::broadcast::Sender<cairn_api::changes::Change>,
    /// Bucket configuration (encryption, versioning, lock...), read once
    /// per bucket (every change goes through this process, which updates
    /// it).
    pub(crate) bucket_cfg:
        parking_lot::Mutex<std::collections::HashMap<String, crate::objects::BucketMeta>>,
    /// The clock retention and lifecycle are judged by (tests move it).
    pub(crate) clock: crate::versions::Clock,
    /// Write-back commits and their group sync (writeback.rs).
    pub(crate) write_back: Arc<crate::writeback::WriteBack>,
    /// Results of lately completed multipart uploads, for retried
    /// completes (multipart.rs).
    pub(crate) completed: cairn_api::multipart::CompletedUploads,
    /// This set's place among the deployment's sets (formats of
    /// replacement drives take their place's id from it).
    pub(crate) layout: crate::sets::SetLayout,
    /// A wait between taking an object's write lock and committing
    /// (`SetsConfig::fault_commit_delay`; tests only).
    pub(crate) commit_delay: std::time::Duration,
    /// Latest versions of keys read lately (vcache.rs; off with remote drives).
    pub(crate) versions: crate::vcache::VersionCache,
    /// Event records to deliver (outbox.rs).
    pub(crate) outbox: crate::outbox::OutboxState,
}

/// A drive with less free space than this counts as full.
const FULL_BELOW: u64 = 4 * 1024 * 1024;

/// Quorums of a K+M layout: reads need K shards; writes need K, or K+1
/// when K == M so two halves of a split set cannot both accept writes.
pub fn read_quorum(data: usize) -> usize {
    data
}

pub fn write_quorum(data: usize, parity: usize) -> usize {
    if data == parity { data + 1 } else { data }
}

/// Which version a read wants.
#[derive(Debug, Clone)]
pub(crate) enum Want {
    Latest,
    /// By id (`None`: the null version).
    Id(Option<String>),
    /// The one multipart upload `0` completed into, among the versions the
    /// meta holds (the history is not read).
    Upload(String),
}

impl Want {
    pub(crate) fn from_request(v: Option<Option<String>>) -> Self {
        match v {
            None => Want::Latest,
            Some(id) => Want::Id(id),
        }
    }
}

/// One drive's copy of an object with the position of the version read.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    /// Shared: heal holds one drive's meta for each of its versions.
    pub(crate) meta: Arc<ObjectMeta>,
    pub(crate) at: usize,
}

impl Held {
    pub(crate) fn version(&self) -> &VersionMeta {
        // `at` is a position in this very meta (every Held is built so)
        #[allow(clippy::indexing_slicing)]
        &self.meta.versions[self.at]
    }

    pub(crate) fn inline(&self) -> Option<&[u8]> {
        self.meta.inline_of(self.at)
    }
}

/// How a per-drive lookup came out.
pub(crate) enum Lookup<T> {
    Found(T),
    Missing,
    Failed,
}

impl ErasureSet {
    /// Sets how long a drive may take to answer (default 3 s).
    pub fn set_drive_timeout(&mut self, t: std::time::Duration) {
        self.drive_timeout = t;
    }

    /// Opens (and on first start formats) the drives, holding each one's
    /// exclusive lock until the set is dropped. Drives without a format
    /// join the deployment (replacements); a drive list that differs from
    /// the recorded one (drive added, missing, foreign or moved) or a
    /// parity other than the recorded one is refused (`setup.rs`).
    pub fn open(paths: Vec<PathBuf>, parity: Option<usize>) -> Result<Self, SetupError> {
        Self::open_in(
            paths,
            parity,
            None,
            crate::sets::SetLayout::default(),
            &Default::default(),
        )
    }

    /// `open` as set `layout.set_index` of a deployment of several sets:
    /// new drives get the deployment's id (`deployment`, when the drives
    /// hold none yet) and their place's drive id from the layout.
    pub(crate) fn open_in(
        paths: Vec<PathBuf>,
        parity: Option<usize>,
        deployment: Option<String>,
        layout: crate::sets::SetLayout,
        io: &crate::driveio::IoFor,
    ) -> Result<Self, SetupError> {
        let n = paths.len();
        if n == 0 {
            return Err(SetupError::NoDrives);
        }
        if n > 256 {
            return Err(SetupError::TooManyDrives { count: n });
        }
        let drives: Vec<Arc<Drive>> = paths
            .into_iter()
            .enumerate()
            .map(|(i, p)| Arc::new(io.drive(i, p)))
            .collect();
        let mut made = crate::setup::Made::default();
        let (checked, formats) = match Self::lock_and_check(&drives, parity, &mut made) {
            Ok(c) => c,
            Err(e) => {
                // a refused start leaves no lock held and nothing it made
                for d in &drives {
                    d.release_lock();
                }
                made.undo();
                return Err(e);
            }
        };
        let parity = checked.parity;
        let deployment_id = checked
            .existing
            .or(deployment)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        for (d, f) in drives.iter().zip(&formats) {
            if f.is_some() {
                if let Err(e) = d.clean_tmp() {
                    tracing::warn!(drive = %d.root.display(), error = %e, "could not clean tmp");
                }
                continue;
            }
            let fmt = layout.format(&deployment_id, n, d.index, parity);
            d.write_format(&fmt).map_err(|source| SetupError::Drive {
                path: d.root.display().to_string(),
                source,
            })?;
            tracing::info!(drive = %d.root.display(), index = d.index, "formatted drive");
        }
        let all_local = drives.iter().all(|d| d.io().node().is_empty());
        Ok(Self {
            versions: crate::vcache::VersionCache::new(all_local),
            drives,
            parity,
            deployment_id,
            locks: LockTable::default(),
            stats: Arc::new(Stats::default()),
            heal_queue: Arc::new(HealQueue::default()),
            missed: Default::default(),
            monitor: tokio::sync::Mutex::new(()),
            scan_rate: std::sync::atomic::AtomicU64::new(0),
            scanner_enabled: std::sync::atomic::AtomicBool::new(true),
            drive_timeout: std::time::Duration::from_secs(3),
            sse: Default::default(),
            changes: tokio::sync::broadcast::channel(cairn_api::changes::CHANGE_QUEUE).0,
            bucket_cfg: Default::default(),
            clock: Default::default(),
            write_back: Default::default(),
            completed: Default::default(),
            layout,
            commit_delay: std::time::Duration::ZERO,
            outbox: Default::default(),
        })
    }

    /// Makes the drive folders (noting in `made` what did not exist),
    /// takes every drive's lock, reads the formats and checks them.
    fn lock_and_check(
        drives: &[Arc<Drive>],
        parity: Option<usize>,
        made: &mut crate::setup::Made,
    ) -> Result<(crate::setup::Checked, Vec<Option<Format>>), SetupError> {
        let mut formats = Vec::with_capacity(drives.len());
        for d in drives {
            let path = || d.root.display().to_string();
            made.make_root(&d.io_arc(), &d.root)
                .map_err(|source| SetupError::Drive {
                    path: path(),
                    source: source.into(),
                })?;
            let (sys, lock) = (d.sys_dir(), d.lock_file());
            let io = d.io_arc();
            let had = (io.exists(&sys), io.exists(&lock));
            let locked = d.take_lock();
            made.note(&io, &sys, had.0, true);
            made.note(&io, &lock, had.1, false);
            locked.map_err(|e| lock_error(path(), e))?;
            let f = d.read_format().map_err(|source| SetupError::Drive {
                path: path(),
                source,
            })?;
            formats.push(f);
        }
        let names: Vec<String> = drives
            .iter()
            .map(|d| d.root.display().to_string())
            .collect();
        crate::setup::check(&names, &formats, parity).map(|c| (c, formats))
    }

    /// The checks of [`ErasureSet::open`] (drive list against the formats,
    /// parity, locks held by another server) without making, locking or
    /// writing anything: a start refused here leaves no trace on disk.
    pub fn check_drives(paths: &[PathBuf], parity: Option<usize>) -> Result<(), SetupError> {
        Self::check_drives_with(paths, parity, &Default::default())
    }

    /// `check_drives` of drives whose file operations `io` gives.
    pub(crate) fn check_drives_with(
        paths: &[PathBuf],
        parity: Option<usize>,
        io: &crate::driveio::IoFor,
    ) -> Result<(), SetupError> {
        if paths.is_empty() {
            return Err(SetupError::NoDrives);
        }
        if paths.len() > 256 {
            return Err(SetupError::TooManyDrives { count: paths.len() });
        }
        let mut formats = Vec::with_capacity(paths.len());
        let mut names = Vec::with_capacity(paths.len());
        for (i, p) in paths.iter().enumerate() {
            let d = io.drive(i, p.clone());
            let path = || d.root.display().to_string();
            d.io()
                .probe_lock(&d.sys_dir())
                .map_err(|e| lock_error(path(), e))?;
            let f = match d.read_format() {
                Err(DriveError::Io(e)) if e.kind() == std::io::ErrorKind::NotADirectory => None,
                r => r.map_err(|source| SetupError::Drive {
                    path: path(),
                    source,
                })?,
            };
            formats.push(f);
            names.push(path());
        }
        crate::setup::check(&names, &formats, parity).map(|_| ())
    }

    /// Sets the KMS behind SSE-S3 and SSE-KMS (none: those are refused).
    pub fn set_kms(&self, kms: Option<Arc<dyn crate::kms::Kms>>) {
        self.sse.write().kms = kms;
    }

    /// Sets the cipher new encrypted objects get.
    pub fn set_cipher(&self, cipher: crate::sse::Cipher) {
        self.sse.write().cipher = cipher;
    }

    pub(crate) fn sse_config(&self) -> crate::sse::SseConfig {
        self.sse.read().clone()
    }

    /// The object key a new object (or upload) gets: as its request asks,
    /// else as its bucket's default encryption says, else none.
    pub(crate) async fn new_object_keys(
        &self,
        bucket: &BucketName,
        req: Option<&cairn_api::SseRequest>,
    ) -> ObjectResult<Option<crate::sse::ObjectKeys>> {
        let req = match req {
            Some(r) => r.clone(),
            None => match self.bucket_encryption(bucket).await? {
                Some(d) => d.request(),
                None => return Ok(None),
            },
        };
        Ok(Some(self.sse_config().new_keys(&req).await?))
    }

    pub fn drive_count(&self) -> usize {
        self.drives.len()
    }

    pub fn parity(&self) -> usize {
        self.parity
    }

    pub fn deployment_id(&self) -> &str {
        &self.deployment_id
    }

    /// Drives whose format file is in place.
    pub fn online_drives(&self) -> usize {
        self.drives.iter().filter(|d| d.is_online()).count()
    }

    /// Ready to serve writes of the STANDARD class.
    pub fn is_ready(&self) -> bool {
        let k = self.drives.len() - self.parity;
        self.online_drives() >= write_quorum(k, self.parity)
    }

    /// K and M for a storage class: STANDARD uses the configured parity,
    /// REDUCED_REDUNDANCY one parity shard (none on a single drive).
    pub(crate) fn layout(&self, class: StorageClass) -> (usize, usize) {
        let n = self.drives.len();
        let m = match class {
            StorageClass::Standard => self.parity,
            StorageClass::ReducedRedundancy => self.parity.min(1),
        };
        (n - m, m)
    }

    /// The layout for a new write: like `layout`, but with parity raised
    /// (up to N/2) to cover drives that are offline right now, as MinIO
    /// does, so a degraded set keeps the class's protection on the drives
    /// it has instead of refusing RRS writes.
    pub(crate) fn write_layout(&self, class: StorageClass, online: usize) -> (usize, usize) {
        let n = self.drives.len();
        let (_, m) = self.layout(class);
        let offline = n - online.min(n);
        let m = m.max(offline.min(n / 2));
        (n - m, m)
    }

    /// Default-class quorums, used where no object layout is known yet.
    pub(crate) fn default_quorums(&self) -> (usize, usize) {
        let (k, m) = self.layout(StorageClass::Standard);
        (read_quorum(k), write_quorum(k, m))
    }

    /// Shard placement: rotated by a hash of the key so parity load is
    /// spread over all drives.
    pub(crate) fn distribution(&self, bucket: &str, key: &str) -> Vec<usize> {
        let n = self.drives.len();
        let rot = (crate::bitrot::hash64(format!("{bucket}/{key}").as_bytes()) % n as u64) as usize;
        (0..n).map(|i| (i + rot) % n).collect()
    }

    /// Runs a blocking function on every drive in parallel.
    pub(crate) async fn on_drives<T, F>(&self, f: F) -> Vec<T>
    where
        T: DriveAnswer + Send + 'static,
        F: Fn(&Drive) -> T + Send + Sync + 'static,
    {
        self.run_on_drives(f, true).await
    }

    /// Like `on_drives`, but also asks drives marked unresponsive (the
    /// drive monitor uses it to notice they are back).
    pub(crate) async fn probe_drives<T, F>(&self, f: F) -> Vec<T>
    where
        T: DriveAnswer + Send + 'static,
        F: Fn(&Drive) -> T + Send + Sync + 'static,
    {
        self.run_on_drives(f, false).await
    }

    /// Runs a blocking function on every drive in parallel. A drive that
    /// does not answer within the drive timeout while at least half of the
    /// drives asked did is marked unresponsive and skipped by later
    /// requests until the monitor finds it answering again: requests never
    /// wait on a dead drive twice.
    ///
    /// When most drives are late together, one of them this machine's,
    /// the cause is the machine (one disk under all of them, a burst of
    /// fsyncs, CPU starvation), not a drive: marking them all offline
    /// would fail every request at once. They get `LATE_TOGETHER` times
    /// the timeout, and only a drive still silent then is marked. Late
    /// drives all of other nodes are marked at once (a partition).
    ///
    /// The timeout counts from the moment the function starts on its
    /// thread, not from the call: a job waiting for a free blocking
    /// thread (a pool busy with other requests) measures the queue, not
    /// the drive, and must never mark a healthy drive offline.
    async fn run_on_drives<T, F>(&self, f: F, skip_hung: bool) -> Vec<T>
    where
        T: DriveAnswer + Send + 'static,
        F: Fn(&Drive) -> T + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let timeout = self.drive_timeout;
        let waits = self.drives.iter().map(|d| {
            let asked = !(skip_hung && d.is_hung());
            let job = asked.then(|| {
                let d = d.clone();
                let f = f.clone();
                let (started_tx, started_rx) = tokio::sync::oneshot::channel();
                let job = tokio::task::spawn_blocking(move || {
                    let _ = started_tx.send(tokio::time::Instant::now());
                    d.track(|| f(&d))
                });
                (started_rx, job)
            });
            async move {
                let Some((started, job)) = job else {
                    return Waited::Skipped;
                };
                // Waiting for a thread is not the drive's fault; a job that
                // never starts (runtime shutting down) ends with the join error.
                let at = started
                    .await
                    .unwrap_or_else(|_| tokio::time::Instant::now());
                Waited::Late(job, at).until(at + timeout).await
            }
        });
        let waited = futures::future::join_all(waits).await;
        let asked = waited
            .iter()
            .filter(|w| !matches!(w, Waited::Skipped))
            .count();
        let on_time = waited
            .iter()
            .filter(|w| matches!(w, Waited::Done(_)))
            .count();
        // a drive late alone is marked now; drives late together wait
        // longer, unless none of them is on this machine: remote drives
        // late while this machine's answered are cut off from it (their
        // node is down, paused or partitioned away)
        let machine_late = self
            .drives
            .iter()
            .zip(&waited)
            .any(|(d, w)| matches!(w, Waited::Late(..)) && d.io().node().is_empty());
        let alone = on_time * 2 >= asked || !machine_late;
        let finals = waited.into_iter().map(|w| async move {
            match w {
                Waited::Late(_, at) if !alone => w.until(at + timeout * LATE_TOGETHER).await,
                w => w,
            }
        });
        let finals = futures::future::join_all(finals).await;
        let mut out = Vec::with_capacity(finals.len());
        for (d, w) in self.drives.iter().zip(finals) {
            match w {
                Waited::Skipped => out.push(T::offline()),
                Waited::Done(Ok(v)) => {
                    // The probe answered; the drive is back only if no
                    // earlier operation is still stuck on it.
                    if !skip_hung && d.is_hung() && d.inflight() == 0 {
                        tracing::info!(drive = %d.root.display(), "drive answers again");
                        d.set_hung(false);
                    }
                    out.push(v)
                }
                Waited::Done(Err(e)) => {
                    // A panicking drive task must not take the server down.
                    tracing::error!(drive = %d.root.display(), error = %e, "drive task failed");
                    out.push(T::offline());
                }
                Waited::Late(..) => {
                    if !d.is_hung() {
                        tracing::error!(drive = %d.root.display(), timeout = ?self.drive_timeout, "drive does not answer; marking it offline");
                    }
                    d.set_hung(true);
                    out.push(T::offline());
                }
            }
        }
        out
    }

    /// Turns per-drive lookups into found / not found / unavailable with
    /// the quorum rules: found on >= `read` drives is found; missing on
    /// more than N - `write` drives means it cannot exist at quorum.
    pub(crate) fn decide(
        &self,
        found: usize,
        missing: usize,
        read: usize,
        not_found: impl FnOnce() -> ObjectError,
    ) -> ObjectResult<()> {
        let (_, write) = self.default_quorums();
        if found >= read {
            Ok(())
        } else if missing > self.drives.len() - write {
            Err(not_found())
        } else {
            Err(ObjectError::Unavailable {
                op: QuorumOp::Read,
                needed: read,
                got: found,
            })
        }
    }

    /// Tells each drive how its shard file of a write fared (a drive
    /// that ran out of space answers the next quorum error as full).
    pub(crate) fn note_writes(&self, written: &[crate::writer::ShardWrite]) {
        for (d, w) in self.drives.iter().zip(written) {
            d.note_write(*w);
        }
    }

    /// The error for a write that missed its quorum: `StorageFull` when a
    /// drive ran out of space (the client should free space, not retry),
    /// else `Unavailable`.
    pub(crate) fn write_quorum_error(&self, needed: usize, got: usize) -> ObjectError {
        let full = self
            .drives
            .iter()
            .filter(|d| d.recently_full() || d.space().1.is_some_and(|f| f < FULL_BELOW))
            .count();
        if full > 0 {
            tracing::warn!(full, needed, got, "write refused: drives are full");
            ObjectError::StorageFull { needed, got }
        } else {
            ObjectError::Unavailable {
                op: QuorumOp::Write,
                needed,
                got,
            }
        }
    }

    /// Checks the bucket exists at quorum.
    pub(crate) async fn check_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        let b = bucket.to_string();
        let res = self
            .on_drives(move |d| {
                if d.bucket_dir(&b).is_ok_and(|dir| d.io().is_dir(&dir)) {
                    Lookup::Found(())
                } else if d.is_online() {
                    Lookup::Missing
                } else {
                    Lookup::Failed
                }
            })
            .await;
        let (found, missing) = count(&res);
        let (read, _) = self.default_quorums();
        self.decide(found, missing, read, || ObjectError::no_such_bucket(bucket))
    }

    /// Reads every drive's `cairn.meta` and picks the version wanted (the
    /// latest, or one by id) as a read quorum agrees on it. Returns it with
    /// each drive's copy (None for drives that do not hold that version).
    /// The latest may be a delete marker: callers decide what that means.
    pub(crate) async fn read_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        with_inline: bool,
        want: Want,
    ) -> ObjectResult<(VersionMeta, Vec<Option<Held>>)> {
        let (b, k) = (bucket.to_string(), key.to_string());
        let id = match &want {
            Want::Latest | Want::Upload(_) => None,
            Want::Id(id) => Some(id.clone()),
        };
        let res = self
            .on_drives(move |d| match d.read_meta_for(&b, &k, with_inline, id.as_ref().map(Option::as_deref)) {
                Ok(Some(m)) if !m.versions.is_empty() => Lookup::Found(Arc::new(m)),
                Ok(_) => Lookup::Missing,
                Err(DriveError::Corrupt(e)) => {
                    tracing::warn!(drive = %d.root.display(), bucket = %b, key = %k, error = %e, "corrupt metadata");
                    Lookup::Failed
                }
                Err(_) => Lookup::Failed,
            })
            .await;
        let pick = |m: &ObjectMeta| -> Option<usize> {
            match &want {
                Want::Latest => (!m.versions.is_empty()).then_some(0),
                Want::Id(id) => m.position(id.as_deref()),
                Want::Upload(id) => m
                    .versions
                    .iter()
                    .position(|v| v.upload.as_deref() == Some(id.as_str())),
            }
        };
        let mut held: Vec<Option<Held>> = Vec::with_capacity(res.len());
        let mut missing = 0;
        for r in res {
            match r {
                Lookup::Found(meta) => match pick(&meta) {
                    Some(at) => held.push(Some(Held { meta, at })),
                    None => {
                        missing += 1;
                        held.push(None);
                    }
                },
                Lookup::Missing => {
                    missing += 1;
                    held.push(None);
                }
                Lookup::Failed => held.push(None),
            }
        }
        let mut best: Option<(usize, &VersionMeta)> = None;
        for h in held.iter().flatten() {
            let v = h.version();
            let agree = held
                .iter()
                .flatten()
                .filter(|o| o.version().identity() == v.identity())
                .count();
            let better = match best {
                None => true,
                Some((c, b)) => {
                    agree > c || (agree == c && (v.mod_time, v.revision) > (b.mod_time, b.revision))
                }
            };
            if better {
                best = Some((agree, v));
            }
        }
        let found = best.map_or(0, |(c, _)| c);
        let read = best.map_or(self.default_quorums().0, |(_, v)| {
            read_quorum(v.erasure.data)
        });
        let not_found = || match &want {
            Want::Latest => ObjectError::no_such_key(bucket, key),
            Want::Id(id) => ObjectError::NoSuchVersion {
                bucket: bucket.to_string(),
                key: key.to_string(),
                version_id: cairn_api::versioning::version_label(id.as_deref()).to_owned(),
            },
            Want::Upload(id) => ObjectError::NoSuchUpload {
                upload_id: id.clone(),
            },
        };
        self.decide(found, missing, read, not_found)?;
        let Some((_, chosen)) = best else {
            return Err(not_found());
        };
        let chosen = chosen.clone();
        let held = held
            .into_iter()
            .map(|h| h.filter(|h| h.version().identity() == chosen.identity()))
            .collect();
        Ok((chosen, held))
    }

    /// Writes a new version on every drive (data dir renamed in, then
    /// `cairn.meta` replaced) and checks the write quorum. The caller holds
    /// the object's write lock. Old data dirs are removed afterwards.
    /// `fence`: the write lock's (`WriteGuard::fence`).
    pub(crate) async fn commit(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        per_drive: Vec<Option<(ObjectMeta, Option<SafePath>)>>,
        quorum: usize,
        fence: u64,
    ) -> ObjectResult<()> {
        let how = Commit {
            quorum,
            write_back: false,
            fence,
        };
        self.commit_with(bucket, key, per_drive, how).await
    }

    /// `commit`, as `how` says.
    pub(crate) async fn commit_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        per_drive: Vec<Option<(ObjectMeta, Option<SafePath>)>>,
        how: Commit,
    ) -> ObjectResult<()> {
        let Commit {
            quorum,
            write_back,
            fence,
        } = how;
        if !self.commit_delay.is_zero() {
            tokio::time::sleep(self.commit_delay).await;
        }
        let (b, k) = (bucket.to_string(), key.to_string());
        let per_drive = Arc::new(parking_lot::Mutex::new(per_drive));
        let res = self
            .on_drives(move |d| {
                let job = per_drive.lock().get_mut(d.index).and_then(Option::take);
                let Some((mut meta, tmp)) = job else {
                    return Err(DriveError::Offline(d.root.display().to_string()));
                };
                meta.fence = fence;
                let out = d.commit_version_with(&b, &k, meta, tmp.as_deref(), !write_back);
                match &out {
                    // the replaced data leaves through the drive's trash
                    Ok(freed) => d.discard(freed.iter().cloned()),
                    Err(_) => {
                        if let Some(t) = &tmp {
                            let _ = d.io().remove_dir_all(t);
                        }
                    }
                }
                if let Err(e) = &out {
                    tracing::warn!(drive = %d.root.display(), bucket = %b, key = %k, error = %e, "commit failed on drive");
                }
                out
            })
            .await;
        let ok = res.iter().filter(|r| r.is_ok()).count();
        if write_back {
            self.written_back();
        }
        // the drives that missed it are healed of it once they answer
        // (or, when the quorum failed, once the drives can settle it)
        let missed = res
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_err())
            .fold(0u64, |m, (i, _)| {
                m | 1u64.checked_shl(i as u32).unwrap_or(0)
            });
        if ok > 0 {
            self.missed.note(bucket.as_str(), key.as_str(), missed);
        }
        self.changed(bucket.as_str(), key.as_str());
        if ok < quorum {
            return Err(self.write_quorum_error(quorum, ok));
        }
        Ok(())
    }

    /// Tells subscribers (the file fronts' caches) that an object changed.
    /// Sent even when the write missed its quorum: some drives may hold
    /// the new version, so cached views are suspect either way.
    pub(crate) fn changed(&self, bucket: &str, key: &str) {
        self.versions.invalidate(bucket, key);
        // no subscriber is not an error
        let _ = self
            .changes
            .send(cairn_api::changes::Change::object(bucket, key));
    }

    /// A bucket was made, removed or configured: this node's cached
    /// configuration goes, and subscribers (other nodes, through the
    /// cluster's relay) hear it.
    pub(crate) fn bucket_changed(&self, bucket: &str) {
        self.bucket_cfg.lock().remove(bucket);
        let _ = self
            .changes
            .send(cairn_api::changes::Change::bucket(bucket));
    }

    #[allow(clippy::too_many_arguments)]
    /// Streams a body into tmp part files on every drive. Returns the tmp
    /// dirs (None where a drive failed), the unverified digest and size.
    pub(crate) async fn stream_to_tmp(
        &self,
        prefix: Bytes,
        body: ByteStream,
        digest: BodyDigest,
        erasure: Arc<Erasure>,
        distribution: Vec<usize>,
        part_file: String,
        max_size: u64,
        seal: Option<crate::sse::PartCipher>,
    ) -> ObjectResult<(Vec<Option<SafePath>>, BodyDigest, u64)> {
        // each drive's writer makes its tmp folder with its first block
        // (no fan-out of its own); a drive known to hang gets none
        let tmp_name = uuid::Uuid::new_v4().to_string();
        let tmps: Vec<Option<SafePath>> = self
            .drives
            .iter()
            .map(|d| {
                (!d.is_hung())
                    .then(|| d.tmp_dir().join_str(&tmp_name).ok())
                    .flatten()
            })
            .collect();
        let guard = TmpGuard(Some(Tmps {
            drives: self.drives.clone(),
            dirs: tmps.clone(),
        }));
        let files = self.tmp_targets(&tmps, |t| t.join_str(&part_file).ok());
        let res = encode_stream(
            prefix,
            body,
            digest,
            erasure,
            BLOCK_SIZE,
            PartTargets {
                files,
                distribution,
                make_dir: true,
            },
            max_size,
            seal,
        )
        .await;
        guard.disarm();
        match res {
            Ok(enc) => {
                self.note_writes(&enc.written);
                let failed = tmps
                    .iter()
                    .zip(&enc.written)
                    .map(|(t, w)| t.clone().filter(|_| !w.ok()))
                    .collect();
                self.remove_tmp(failed).await;
                let dirs = tmps
                    .into_iter()
                    .zip(&enc.written)
                    .map(|(t, w)| t.filter(|_| w.ok()))
                    .collect();
                Ok((dirs, enc.digest, enc.size))
            }
            Err(e) => {
                self.remove_tmp(tmps).await;
                Err(e)
            }
        }
    }

    /// Per drive, the file `file` names in that drive's tmp dir (None
    /// where the drive has no tmp dir), with the drive's file operations.
    pub(crate) fn tmp_targets(
        &self,
        tmps: &[Option<SafePath>],
        file: impl Fn(&SafePath) -> Option<SafePath>,
    ) -> Vec<Option<crate::driveio::DrivePath>> {
        tmps.iter()
            .zip(&self.drives)
            .map(|(t, d)| {
                t.as_ref()
                    .and_then(&file)
                    .map(|p| crate::driveio::DrivePath {
                        io: d.io_arc(),
                        path: p.into_path_buf(),
                    })
            })
            .collect()
    }

    /// Removes a write's tmp dirs (`tmps[i]` on drive `i`).
    pub(crate) async fn remove_tmp(&self, tmps: Vec<Option<SafePath>>) {
        if tmps.iter().all(Option::is_none) {
            return;
        }
        let drives = self.drives.clone();
        let _ = tokio::task::spawn_blocking(move || remove_tmps(&drives, tmps)).await;
    }
}

fn remove_tmps(drives: &[Arc<Drive>], tmps: Vec<Option<SafePath>>) {
    for (t, d) in tmps.iter().zip(drives) {
        if let Some(t) = t {
            let _ = d.io().remove_dir_all(t);
        }
    }
}

/// A write's tmp dirs, removed if the write is dropped half way (its
/// client went away and the request was dropped) so nothing partial stays.
struct TmpGuard(Option<Tmps>);

/// Tmp dirs of a write, `dirs[i]` on `drives[i]`.
struct Tmps {
    drives: Vec<Arc<Drive>>,
    dirs: Vec<Option<SafePath>>,
}

impl TmpGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TmpGuard {
    fn drop(&mut self) {
        let Some(t) = self.0.take() else {
            return;
        };
        let remove = move || remove_tmps(&t.drives, t.dirs);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

pub(crate) fn count<T>(res: &[Lookup<T>]) -> (usize, usize) {
    let found = res.iter().filter(|r| matches!(r, Lookup::Found(_))).count();
    let missing = res.iter().filter(|r| matches!(r, Lookup::Missing)).count();
    (found, missing)
}

/// Reads up to `limit` bytes of a body; `true` if the body ended.
pub(crate) async fn read_prefix(
    body: &mut ByteStream,
    limit: usize,
) -> ObjectResult<(Bytes, bool)> {
    let mut buf = BytesMut::new();
    while buf.len() < limit {
        match body.next().await {
            Some(Ok(c)) => buf.extend_from_slice(&c),
            Some(Err(e)) => {
                return Err(ObjectError::BodyRead {
                    message: e.to_string(),
                });
            }
            None => return Ok((buf.freeze(), true)),
        }
    }
    Ok((buf.freeze(), false))
}

pub(crate) fn now_nanos() -> i128 {
    OffsetDateTime::now_utc().unix_timestamp_nanos()
}

pub(crate) fn new_data_dir() -> String {
    format!("{DATA_DIR_PREFIX}{}", uuid::Uuid::new_v4())
}

/// The per-drive copies of one version: the same except for the shard
/// index (and inline shard).
pub(crate) fn per_drive_metas(
    template: &VersionMeta,
    distribution: &[usize],
    inline: Option<&[Vec<u8>]>,
    tmps: &[Option<SafePath>],
) -> Vec<Option<(ObjectMeta, Option<SafePath>)>> {
    distribution
        .iter()
        .enumerate()
        .map(|(drive, &shard)| {
            let mut v = template.clone();
            v.erasure.index = shard;
            let (inline_bytes, tmp) = match inline {
                Some(shards) => {
                    let s = shards.get(shard)?.clone();
                    v.inline_len = Some(s.len() as u64);
                    (s, None)
                }
                None => (Vec::new(), Some(tmps.get(drive)?.clone()?)),
            };
            Some((ObjectMeta::single(v, inline_bytes), tmp))
        })
        .collect()
}

pub(crate) fn erasure_info(data: usize, parity: usize, distribution: Vec<usize>) -> ErasureInfo {
    ErasureInfo {
        data,
        parity,
        block_size: BLOCK_SIZE,
        index: 0,
        distribution,
    }
}

pub(crate) fn single_part(size: u64, etag: &str) -> Vec<PartMeta> {
    vec![PartMeta::new(1, size, etag.to_owned())]
}

/// How many drive timeouts drives that are late together (most of the
/// drives asked) get before the silent ones are marked offline.
const LATE_TOGETHER: u32 = 10;

/// One drive's part in `run_on_drives`.
enum Waited<T> {
    /// Not asked: marked unresponsive.
    Skipped,
    Done(Result<T, tokio::task::JoinError>),
    /// Past its deadline: the job, and when it started.
    Late(tokio::task::JoinHandle<T>, tokio::time::Instant),
}

impl<T> Waited<T> {
    /// A late job waited for until `deadline`: done, or still late.
    async fn until(self, deadline: tokio::time::Instant) -> Self {
        let Waited::Late(mut job, at) = self else {
            return self;
        };
        match tokio::time::timeout_at(deadline, &mut job).await {
            Ok(done) => Waited::Done(done),
            Err(_) => Waited::Late(job, at),
        }
    }
}

/// What a drive that did not answer (unresponsive, panicked) contributes
/// to a fan-out over the drives.
pub(crate) trait DriveAnswer {
    fn offline() -> Self;
}

impl<T> DriveAnswer for Lookup<T> {
    fn offline() -> Self {
        Lookup::Failed
    }
}

impl<T> DriveAnswer for Result<T, DriveError> {
    fn offline() -> Self {
        Err(DriveError::Offline("drive does not answer".into()))
    }
}

impl<T> DriveAnswer for Option<T> {
    fn offline() -> Self {
        None
    }
}

impl<T> DriveAnswer for Vec<T> {
    fn offline() -> Self {
        Vec::new()
    }
}

impl DriveAnswer for bool {
    fn offline() -> Self {
        false
    }
}

impl DriveAnswer for () {
    fn offline() -> Self {}
}

/// A drive lock that could not be taken, as a start-up error.
fn lock_error(path: String, e: LockError) -> SetupError {
    match e {
        LockError::Held { holder } => SetupError::DriveLocked {
            path,
            holder: crate::drivelock::holder_text(holder),
        },
        LockError::Io(source) => SetupError::Drive {
            path,
            source: source.into(),
        },
    }
}
