//! Healing one object: find the drives whose copy of the latest version is
//! missing, stale or damaged, rebuild their shards from the good ones
//! (Reed-Solomon over every block) and install them atomically. Healing
//! never changes an object's bytes, ETag or metadata: the version record is
//! copied as is, only the shard index differs per drive.

use std::io::{Seek as _, SeekFrom, Write as _};
use std::sync::Arc;

use cairn_api::{BucketName, ObjectError, ObjectKey, ObjectResult, QuorumOp, SafePath};

use crate::bitrot::{self, HASH_LEN, framed_len};
use crate::drive::{Drive, DriveError, data_dir_path, part_path};
use crate::driveio::{FileRead, FileWrite};
use crate::erasure::Erasure;
use crate::meta::{ObjectMeta, VersionMeta};
use crate::set::{ErasureSet, Held};

/// What healing one object found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HealOutcome {
    /// Drives whose copy was rewritten.
    pub healed_drives: usize,
    /// Drives that were offline and could not be checked.
    pub offline_drives: usize,
    /// Shard blocks found bad by hash (deep scan or rebuild reads).
    pub bad_blocks: usize,
    /// Data dirs no version names (left by a crash between the data dir
    /// rename and the meta rename), removed.
    #[serde(default)]
    pub orphans_removed: usize,
    /// Bytes of shards read to check or rebuild (paces the scanner).
    #[serde(default)]
    pub bytes_read: u64,
}

impl ErasureSet {
    /// Checks an object on every drive and repairs what is missing or bad.
    /// `deep` re-reads every shard block and checks its hash; otherwise
    /// only presence and sizes of meta and part files are checked.
    pub async fn heal_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        deep: bool,
    ) -> ObjectResult<HealOutcome> {
        let _g = self.locks.write(bucket.as_str(), key.as_str()).await?;
        let versions = self.versions_to_heal(bucket, key).await?;
        let mut out = HealOutcome::default();
        for (version, held) in versions {
            let drives = self.drives.clone();
            let (b, k) = (bucket.to_string(), key.to_string());
            let one = tokio::task::spawn_blocking(move || {
                heal_blocking(&drives, &b, &k, &version, &held, deep)
            })
            .await
            .map_err(ObjectError::internal)??;
            out.add(&one);
        }
        // Under the object's write lock no commit is between its two
        // renames, so a data dir that no version names is a crash
        // leftover. Judged on each drive's meta as healing left it.
        let drives = self.drives.clone();
        let (b, k) = (bucket.to_string(), key.to_string());
        out.orphans_removed += tokio::task::spawn_blocking(move || {
            drives
                .iter()
                .filter(|d| d.is_online())
                .map(|d| match d.read_versions(&b, &k, false) {
                    Ok(Some(m)) => remove_orphans(d, &b, &k, &m),
                    _ => 0,
                })
                .sum::<usize>()
        })
        .await
        .map_err(ObjectError::internal)?;
        if out.healed_drives > 0 || out.bad_blocks > 0 {
            self.versions.invalidate(bucket.as_str(), key.as_str());
            tracing::info!(bucket = %bucket, key = %key, healed = out.healed_drives, bad_blocks = out.bad_blocks, "healed object");
        }
        self.stats.note_heal(&out);
        Ok(out)
    }

    /// Every version a read quorum of drives agrees on, each with the
    /// drives' copies of it; the latest first. With none agreed on, the
    /// error a read of the key gives.
    async fn versions_to_heal(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> ObjectResult<Vec<(VersionMeta, Vec<Option<Held>>)>> {
        let (b, k) = (bucket.to_string(), key.to_string());
        let metas: Vec<Option<Arc<ObjectMeta>>> = self
            .on_drives(move |d| d.read_versions(&b, &k, true).ok().flatten().map(Arc::new))
            .await;
        let mut seen: Vec<(VersionMeta, usize)> = Vec::new();
        for v in metas.iter().flatten().flat_map(|m| m.versions.iter()) {
            match seen.iter_mut().find(|(s, _)| s.identity() == v.identity()) {
                Some((_, c)) => *c += 1,
                None => seen.push((v.clone(), 1)),
            }
        }
        // one record per version id: copies of the same id that differ
        // (a write torn by a crash) are stale, as in `read_version`
        seen.sort_by(|(a, ca), (b, cb)| {
            (cb, b.mod_time, b.revision).cmp(&(ca, a.mod_time, a.revision))
        });
        let mut good: Vec<VersionMeta> = Vec::new();
        for (v, c) in seen {
            if c >= crate::set::read_quorum(v.erasure.data)
                && !good.iter().any(|g| g.version_id == v.version_id)
            {
                good.push(v);
            }
        }
        good.sort_by_key(|v| std::cmp::Reverse(v.mod_time));
        if good.is_empty() {
            // the same error a read gives (missing key, lost quorum)
            self.read_version(bucket, key, false, crate::set::Want::Latest)
                .await?;
            return Ok(Vec::new());
        }
        Ok(good
            .into_iter()
            .map(|v| {
                let held = metas
                    .iter()
                    .map(|m| {
                        let m = m.as_ref()?;
                        let at = m.position(v.version_id.as_deref())?;
                        (m.versions.get(at)?.identity() == v.identity()).then(|| Held {
                            meta: Arc::clone(m),
                            at,
                        })
                    })
                    .collect();
                (v, held)
            })
            .collect())
    }
}

impl HealOutcome {
    fn add(&mut self, o: &HealOutcome) {
        self.healed_drives = self.healed_drives.max(o.healed_drives);
        self.offline_drives = self.offline_drives.max(o.offline_drives);
        self.bad_blocks += o.bad_blocks;
        self.orphans_removed += o.orphans_removed;
        self.bytes_read += o.bytes_read;
    }
}

/// One drive's state for the chosen version.
enum Copy {
    Good,
    /// Its record is missing or stale, or these parts (indices into the
    /// version's parts) are missing or damaged.
    Rewrite(Vec<usize>),
    Offline,
}

fn heal_blocking(
    drives: &[Arc<Drive>],
    bucket: &str,
    key: &str,
    version: &VersionMeta,
    metas: &[Option<Held>],
    deep: bool,
) -> ObjectResult<HealOutcome> {
    let erasure = Erasure::new(version.erasure.data, version.erasure.parity)
        .map_err(ObjectError::internal)?;
    let n = drives.len();
    let mut out = HealOutcome::default();
    let mut state: Vec<Copy> = Vec::with_capacity(n);
    for (d, meta) in drives.iter().zip(metas) {
        let s = if !d.is_online() {
            out.offline_drives += 1;
            Copy::Offline
        } else if version.attrs.delete_marker {
            match meta {
                Some(_) => Copy::Good,
                None => Copy::Rewrite(Vec::new()),
            }
        } else {
            // a drive without the record may still hold the part files
            // (a patched version shares its older versions' files): they
            // are kept when every block reads right
            let check = CopyCheck {
                d,
                bucket,
                key,
                version,
                erasure: &erasure,
                deep: deep || meta.is_none(),
            };
            let bad = check.bad_parts(meta.as_ref(), &mut out.bad_blocks);
            if bad.is_empty() && meta.is_some() {
                Copy::Good
            } else {
                Copy::Rewrite(bad)
            }
        };
        state.push(s);
    }
    if deep {
        // Every good copy was read through.
        out.bytes_read += version.size;
    }
    let is = |want: fn(&Copy) -> bool| -> Vec<usize> {
        state
            .iter()
            .enumerate()
            .filter(|(_, c)| want(c))
            .map(|(i, _)| i)
            .collect()
    };
    let targets = is(|c| matches!(c, Copy::Rewrite(_)));
    if targets.is_empty() {
        return Ok(out);
    }
    // Blocks are rebuilt one by one from whatever K shards are good for
    // that block: whole copies are read first, then the damaged ones
    // (a copy with one bad block still holds the others).
    let sources: Vec<usize> = is(|c| matches!(c, Copy::Good))
        .into_iter()
        .chain(
            targets
                .iter()
                .copied()
                .filter(|&i| matches!(metas.get(i), Some(Some(_)))),
        )
        .collect();
    if sources.len() < erasure.data_shards() {
        return Err(ObjectError::Unavailable {
            op: QuorumOp::Read,
            needed: erasure.data_shards(),
            got: sources.len(),
        });
    }
    let dist = &version.erasure.distribution;
    let shard_of = |drive: usize| dist.get(drive).copied().unwrap_or(drive);

    if version.attrs.delete_marker {
        // a marker has no data: its record is all there is to copy
        for &t in &targets {
            let mut v = version.clone();
            v.erasure.index = shard_of(t);
            let meta = ObjectMeta::single(v, Vec::new());
            if let Some(d) = drives.get(t)
                && install(d, bucket, key, meta, None).is_ok()
            {
                out.healed_drives += 1;
            }
        }
        return Ok(out);
    }
    match &version.data_dir {
        None => {
            // Inline: rebuild the single block from the good metas.
            let mut shards: Vec<Option<Vec<u8>>> = vec![None; erasure.total_shards()];
            for &s in &sources {
                if let Some(frame) = metas.get(s).and_then(Option::as_ref).and_then(Held::inline)
                    && bitrot::verify(frame)
                    && let Some(slot) = shards.get_mut(shard_of(s))
                {
                    *slot = frame.get(HASH_LEN..).map(<[u8]>::to_vec);
                }
            }
            erasure
                .reconstruct_all(&mut shards)
                .map_err(ObjectError::internal)?;
            for &t in &targets {
                let Some(shard) = shards.get(shard_of(t)).cloned().flatten() else {
                    continue;
                };
                let mut framed = bitrot::hash(&shard).to_vec();
                framed.extend_from_slice(&shard);
                let mut v = version.clone();
                v.erasure.index = shard_of(t);
                v.inline_len = Some(framed.len() as u64);
                let meta = ObjectMeta::single(v, framed);
                if let Some(d) = drives.get(t)
                    && install(d, bucket, key, meta, None).is_ok()
                {
                    out.healed_drives += 1;
                }
            }
        }
        Some(_) => {
            let tmp_name = uuid::Uuid::new_v4().to_string();
            let mut tmps: Vec<Option<SafePath>> = vec![None; n];
            for &t in &targets {
                if let (Some(slot), Some(d)) = (tmps.get_mut(t), drives.get(t)) {
                    *slot = d.make_tmp(&tmp_name).ok();
                }
            }
            let rebuild = Rebuild {
                drives,
                bucket,
                key,
                version,
                erasure: &erasure,
                sources: &sources,
                tmps: &tmps,
                // a deep check has counted the bad blocks already
                count_bad: !deep,
            };
            // each part only for the drives that lack it
            let mut rebuilt: Vec<Vec<PartFileName>> = vec![Vec::new(); n];
            for (pi, part) in version.parts.iter().enumerate() {
                let who: Vec<usize> = targets
                    .iter()
                    .copied()
                    .filter(
                        |&t| matches!(state.get(t), Some(Copy::Rewrite(bad)) if bad.contains(&pi)),
                    )
                    .collect();
                let Some(f) = version.part_file(part) else {
                    continue;
                };
                let name = PartFileName {
                    dir: f.dir.to_owned(),
                    number: f.number,
                };
                // slices of one file: the file is rebuilt once, whole
                let who: Vec<usize> = who
                    .into_iter()
                    .filter(|t| rebuilt.get(*t).is_some_and(|r| !r.contains(&name)))
                    .collect();
                if who.is_empty() || f.size == 0 {
                    continue;
                }
                let size = version.stored_file_size(&f);
                rebuild.part(&name, size, &who, &mut out.bad_blocks)?;
                for t in who {
                    if let Some(r) = rebuilt.get_mut(t) {
                        r.push(name.clone());
                    }
                }
            }
            for &t in &targets {
                let (Some(tmp), Some(d)) = (tmps.get_mut(t).and_then(Option::take), drives.get(t))
                else {
                    continue;
                };
                let mut v = version.clone();
                v.erasure.index = shard_of(t);
                let meta = ObjectMeta::single(v, Vec::new());
                let files = rebuilt.get(t).map(Vec::as_slice).unwrap_or_default();
                match install_files(d, bucket, key, &tmp, files)
                    .and_then(|()| install(d, bucket, key, meta, None))
                {
                    Ok(()) => out.healed_drives += 1,
                    Err(e) => {
                        tracing::warn!(drive = %d.root.display(), error = %e, "heal install failed");
                    }
                }
                let _ = d.io().remove_dir_all(&tmp);
            }
        }
    }
    Ok(out)
}

/// A part file, named as in a data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartFileName {
    dir: String,
    number: u32,
}

impl PartFileName {
    /// Its name in a heal's tmp dir.
    fn tmp_name(&self) -> String {
        format!("{}.part.{}", self.dir, self.number)
    }
}

/// Moves rebuilt part files from `tmp` to their places in the object's
/// folder (their data dirs made when missing), each replacing a damaged
/// file of that name at once.
fn install_files(
    d: &Drive,
    bucket: &str,
    key: &str,
    tmp: &SafePath,
    files: &[PartFileName],
) -> Result<(), DriveError> {
    if files.is_empty() {
        return Ok(());
    }
    let obj_dir = d.object_dir(bucket, key)?;
    for f in files {
        let dir = data_dir_path(&obj_dir, &f.dir)?;
        d.io().create_dir_all(&dir)?;
        d.io()
            .rename(&tmp.join_str(&f.tmp_name())?, &part_path(&dir, f.number)?)?;
    }
    Ok(())
}

/// Removes the data dirs, part files and history files no version of
/// `meta` (read with its history) names: left by a crash between a
/// commit and the removal of what it freed.
fn remove_orphans(d: &Drive, bucket: &str, key: &str, meta: &ObjectMeta) -> usize {
    let Ok(dir) = d.object_dir(bucket, key) else {
        return 0;
    };
    let io = d.io();
    let mut removed = crate::history::remove_unnamed(io, &dir, meta.history.as_ref());
    let Ok(rd) = io.read_dir(&dir) else {
        return removed;
    };
    let named: std::collections::HashSet<&str> = meta
        .versions
        .iter()
        .flat_map(crate::extents::dirs_of)
        .collect();
    let files: std::collections::HashSet<(&str, u32)> = meta
        .versions
        .iter()
        .flat_map(|v| v.parts.iter().filter_map(|p| v.part_file(p)))
        .map(|f| (f.dir, f.number))
        .collect();
    for e in rd {
        let name = e.name.to_string_lossy().into_owned();
        if !name.starts_with(crate::meta::DATA_DIR_PREFIX) {
            continue;
        }
        let Some(path) = e.path_in(&dir) else {
            continue;
        };
        if !named.contains(name.as_str()) {
            if io.remove_dir_all(&path).is_ok() {
                tracing::info!(drive = %d.root.display(), bucket, key, dir = %name, "removed orphaned data dir");
                removed += 1;
            }
            continue;
        }
        // a named dir: its part files no version names
        let Ok(inner) = io.read_dir(&path) else {
            continue;
        };
        for f in inner {
            let fname = f.name.to_string_lossy().into_owned();
            let number = fname
                .strip_prefix("part.")
                .and_then(|n| n.parse::<u32>().ok());
            if let Some(number) = number
                && !files.contains(&(name.as_str(), number))
                && f.path_in(&path).is_some_and(|p| io.remove_file(&p).is_ok())
            {
                tracing::info!(drive = %d.root.display(), bucket, key, dir = %name, number, "removed orphaned part file");
                removed += 1;
            }
        }
    }
    removed
}

/// Checks one drive's copy of a version.
struct CopyCheck<'a> {
    d: &'a Drive,
    bucket: &'a str,
    key: &'a str,
    version: &'a VersionMeta,
    erasure: &'a Erasure,
    deep: bool,
}

impl CopyCheck<'_> {
    /// The parts (indices) whose file is missing, of the wrong size or
    /// (deep) has a bad block; for an inline version, `[0]` when its
    /// inline shard is missing or bad. Every bad block is counted.
    fn bad_parts(&self, meta: Option<&Held>, bad_blocks: &mut usize) -> Vec<usize> {
        let version = self.version;
        if version.data_dir.is_none() {
            let ok = meta.and_then(Held::inline).is_some_and(bitrot::verify);
            if !ok && meta.is_some() {
                *bad_blocks += 1;
            }
            return if ok { Vec::new() } else { vec![0] };
        }
        let Ok(obj_dir) = self.d.object_dir(self.bucket, self.key) else {
            return (0..version.parts.len()).collect();
        };
        // slices of one file: the file is checked (and counted) once
        let mut judged: std::collections::HashMap<(&str, u32), bool> = Default::default();
        (0..version.parts.len())
            .filter(|&i| {
                let file = version
                    .parts
                    .get(i)
                    .and_then(|p| version.part_file(p))
                    .map(|f| (f.dir, f.number));
                if let Some(whole) = file.and_then(|f| judged.get(&f)) {
                    return !whole;
                }
                let whole = self.part_is_whole(&obj_dir, i, bad_blocks);
                if let Some(f) = file {
                    judged.insert(f, whole);
                }
                !whole
            })
            .collect()
    }

    fn part_is_whole(&self, obj_dir: &SafePath, i: usize, bad_blocks: &mut usize) -> bool {
        let version = self.version;
        let Some(part) = version.parts.get(i) else {
            return true;
        };
        if part.zeros {
            // a hole has no file to lose
            return true;
        }
        let Some(file) = version.part_file(part) else {
            return false;
        };
        let Ok(path) = crate::extents::part_file_path(obj_dir, file.dir, file.number) else {
            return false;
        };
        let bs = version.erasure.block_size as u64;
        // a slice's whole file is checked (a heal rebuilds it whole)
        let size = version.stored_file_size(&file);
        let expected = expected_file_len(size, bs, self.erasure);
        match self.d.io().stat(&path) {
            Ok(m) if m.len == expected => {}
            // an empty part has no file to miss
            Err(_) if expected == 0 => return true,
            _ => return false,
        }
        if !self.deep {
            return true;
        }
        let Ok(mut f) = self.d.io().open(&path, 0) else {
            return false;
        };
        // every block is checked: each bad one is counted (and rebuilt
        // from the shards good for that block)
        let mut whole = true;
        for b in 0..size.div_ceil(bs) {
            let block_len = (size - b * bs).min(bs) as usize;
            match bitrot::read_frame(&mut f, self.erasure.shard_size(block_len)) {
                Ok(frame) if bitrot::verify(&frame) => {}
                Ok(_) => {
                    *bad_blocks += 1;
                    whole = false;
                }
                Err(_) => {
                    *bad_blocks += 1;
                    return false;
                }
            }
        }
        whole
    }
}

/// Size of one drive's part file for a part of `size` bytes.
pub(crate) fn expected_file_len(size: u64, block_size: u64, erasure: &Erasure) -> u64 {
    if size == 0 {
        return 0;
    }
    let full_blocks = size / block_size;
    let last = size % block_size;
    let full_shard = erasure.shard_size(block_size as usize) as u64;
    let mut len = full_blocks * framed_len(full_shard, full_shard);
    if last > 0 {
        let s = erasure.shard_size(last as usize) as u64;
        len += framed_len(s, s);
    }
    len
}

/// What rebuilding an object's parts for the target drives reads and
/// writes.
struct Rebuild<'a> {
    drives: &'a [Arc<Drive>],
    bucket: &'a str,
    key: &'a str,
    version: &'a VersionMeta,
    erasure: &'a Erasure,
    /// Drives to read, in order of preference.
    sources: &'a [usize],
    /// Per drive, the tmp dir its rebuilt copy goes to (the targets).
    tmps: &'a [Option<SafePath>],
    /// Count bad shard blocks met while reading.
    count_bad: bool,
}

impl Rebuild<'_> {
    /// Rebuilds one part's shards for every target drive into its tmp
    /// dir, block by block: each block from the first K sources whose
    /// shard of that block is good (a bad block makes a shard missing for
    /// that block only).
    fn part(
        &self,
        file: &PartFileName,
        size: u64,
        targets: &[usize],
        bad_blocks: &mut usize,
    ) -> ObjectResult<()> {
        let (erasure, version) = (self.erasure, self.version);
        let dist = &version.erasure.distribution;
        let shard_of = |drive: usize| dist.get(drive).copied().unwrap_or(drive);
        let mut readers: Vec<(usize, Option<Box<dyn FileRead>>)> = self
            .sources
            .iter()
            .map(|&s| {
                let file = self.drives.get(s).and_then(|d| {
                    let o = d.object_dir(self.bucket, self.key).ok()?;
                    let p = crate::extents::part_file_path(&o, &file.dir, file.number).ok()?;
                    d.io().open(&p, 0).ok()
                });
                (s, file)
            })
            .collect();
        let mut writers: Vec<(usize, Box<dyn FileWrite>)> = Vec::new();
        for &t in targets {
            if let (Some(Some(tmp)), Some(d)) = (self.tmps.get(t), self.drives.get(t)) {
                let path = tmp
                    .join_str(&file.tmp_name())
                    .map_err(ObjectError::internal)?;
                let f = d.io().create(&path).map_err(ObjectError::internal)?;
                writers.push((t, f));
            }
        }
        let bs = version.erasure.block_size as u64;
        let full_frame = (HASH_LEN + erasure.shard_size(bs as usize)) as u64;
        let blocks = size.div_ceil(bs);
        for b in 0..blocks {
            let block_len = (size - b * bs).min(bs) as usize;
            let shard_len = erasure.shard_size(block_len);
            let mut shards: Vec<Option<Vec<u8>>> = vec![None; erasure.total_shards()];
            let mut have = 0;
            for (s, file) in readers.iter_mut() {
                if have == erasure.data_shards() {
                    break;
                }
                let Some(f) = file else { continue };
                let frame = f
                    .seek(SeekFrom::Start(b * full_frame))
                    .and_then(|_| bitrot::read_frame(f, shard_len))
                    .ok()
                    .filter(|frame| bitrot::verify(frame));
                match (frame, shards.get_mut(shard_of(*s))) {
                    (Some(mut frame), Some(slot)) => {
                        *slot = Some(frame.split_off(HASH_LEN));
                        have += 1;
                    }
                    _ if self.count_bad => *bad_blocks += 1,
                    _ => {}
                }
            }
            if have < erasure.data_shards() {
                return Err(ObjectError::Unavailable {
                    op: QuorumOp::Read,
                    needed: erasure.data_shards(),
                    got: have,
                });
            }
            erasure
                .reconstruct_all(&mut shards)
                .map_err(|e| ObjectError::internal(format!("reconstruct: {e}")))?;
            for (t, f) in writers.iter_mut() {
                let Some(Some(shard)) = shards.get(shard_of(*t)) else {
                    continue;
                };
                let h = bitrot::hash(shard);
                f.write_all(&h)
                    .and_then(|()| f.write_all(shard))
                    .map_err(ObjectError::internal)?;
            }
        }
        // No fsync per object: see `Drive::commit_version_with`.
        drop(writers);
        Ok(())
    }
}

/// Installs a healed copy's `cairn.meta` (its part files are in place:
/// `install_files`), or an inline copy's. What the record replaces is
/// freed only where no version names it.
fn install(
    d: &Drive,
    bucket: &str,
    key: &str,
    meta: ObjectMeta,
    tmp: Option<&std::path::Path>,
) -> Result<(), DriveError> {
    let bucket_dir = d.bucket_dir(bucket)?;
    if !d.io().is_dir(&bucket_dir) {
        d.io().create_dir_all(&bucket_dir)?;
    }
    let freed = d.commit_version_with(bucket, key, meta, tmp, false)?;
    d.discard(freed);
    Ok(())
}
