//! `ObjectLayer::patch_object` on the erasure set: a new version made of
//! the current one with ranges replaced, writing only what changed.
//!
//! The base's parts that no change touches are named by the new version
//! as they are (`PartMeta::at`: no byte read or written, on no drive).
//! A touched part is cut into extents of `EXTENT_SIZE` aligned to
//! multiples of it: those a change falls in are read, changed and written
//! again, the others are named as slices of the part's file (`FileSlice`),
//! so a part a sequential writer made (64 MiB) costs one extent at its
//! first touch as at later ones.
//! An extension merges into the last part when that part ends inside an
//! extent (appends do not pile up tiny parts). The new version's parts
//! are encoded into one new data dir, committed as any write (its
//! `cairn.meta` names them; the old version, when replaced, frees only
//! files no version names: `extents::garbage`). Encrypted objects keep
//! their object key; a rewritten extent is sealed under a part key salted
//! with its new data dir, so no (key, nonce) pair repeats.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cairn_api::checksum::BodyDigest;
use cairn_api::patch::{PatchChanges, PatchStream};
use cairn_api::{
    BucketName, ObjectError, ObjectInfo, ObjectKey, ObjectResult, PatchOptions, SafePath,
};
use futures::StreamExt as _;
use tokio::task::JoinHandle;

use crate::erasure::Erasure;
use crate::extents::EXTENT_SIZE;
use crate::meta::{BLOCK_SIZE, FileSlice, INLINE_MAX, PartLoc, PartMeta, VersionMeta};
use crate::objects::VersionRead;
use crate::reader::stream;
use crate::set::{ErasureSet, Want, new_data_dir, now_nanos, per_drive_metas, write_quorum};
use crate::sse::ObjectKeys;
use crate::sse::stream::decrypt;
use crate::versions::NewAttrs;
use crate::writer::{Encoded, PartTargets, encode_stream};

/// The parts of a version being patched, numbered 1.. in order.
#[derive(Default)]
struct NewParts(Vec<PartMeta>);

impl NewParts {
    fn next(&self) -> u32 {
        self.0.len() as u32 + 1
    }

    /// A base part kept as it is: named where its file is (a hole stays
    /// a hole).
    fn keep(&mut self, base: &VersionMeta, p: &PartMeta) -> ObjectResult<()> {
        if p.zeros {
            self.zeros(p.size);
            return Ok(());
        }
        self.name(base, p, (0, p.size), p.etag.clone())
    }

    /// Bytes `[off, off + len)` of base part `p`, named where they are
    /// in its file (`slice_of`).
    fn slice(
        &mut self,
        base: &VersionMeta,
        p: &PartMeta,
        (off, len): (u64, u64),
    ) -> ObjectResult<()> {
        let etag = slice_etag(&p.etag, off, len);
        self.name(base, p, (off, len), etag)
    }

    fn name(
        &mut self,
        base: &VersionMeta,
        p: &PartMeta,
        (off, len): (u64, u64),
        etag: String,
    ) -> ObjectResult<()> {
        let f = base
            .part_file(p)
            .ok_or_else(|| ObjectError::internal("a stored part without a file"))?;
        let skip = f.skip + off;
        let whole = skip == 0 && len == f.size;
        let number = self.next();
        self.0.push(PartMeta {
            number,
            size: len,
            checksum: if whole { p.checksum.clone() } else { None },
            etag,
            at: Some(PartLoc {
                dir: f.dir.to_owned(),
                number: f.number,
                salted: f.salt.is_some(),
                slice: (!whole).then_some(FileSlice { skip, file: f.size }),
            }),
            zeros: false,
        });
        Ok(())
    }

    /// `len` zero bytes, joined to a hole just before.
    fn zeros(&mut self, len: u64) {
        if let Some(last) = self.0.last_mut()
            && last.zeros
        {
            last.size += len;
            last.etag = hole_etag(last.size);
            return;
        }
        let number = self.next();
        self.0.push(PartMeta {
            zeros: true,
            ..PartMeta::new(number, len, hole_etag(len))
        });
    }
}

/// The ETag of a hole of `size` bytes: not the MD5 of its zeros (that
/// would cost a pass over them; a multipart ETag does not promise it),
/// but fixed by the size, so equal objects get equal ETags.
pub(crate) fn hole_etag(size: u64) -> String {
    let mut h = cairn_api::fast_md5::Md5::new();
    h.update(format!("cairn hole {size}").as_bytes());
    hex::encode(h.finish())
}

/// The ETag of a slice of a part: not the MD5 of its bytes (that would
/// cost reading them), but fixed by the part's ETag and the slice.
fn slice_etag(part_etag: &str, off: u64, len: u64) -> String {
    let mut h = cairn_api::fast_md5::Md5::new();
    h.update(format!("cairn slice {part_etag} {off} {len}").as_bytes());
    hex::encode(h.finish())
}

/// Whether `[off, end)` of base part `p` can be named as a slice of its
/// file: whole erasure blocks (and packages), or the file's tail.
fn slice_of(base: &VersionMeta, p: &PartMeta, off: u64, end: u64) -> bool {
    let Some(f) = base.part_file(p) else {
        return false;
    };
    end <= p.size && FileSlice::fits(base.plain_block(), (f.skip + off, f.skip + end), f.size)
}

/// `[a, b)` cut at the multiples of the extent size.
fn extents(a: u64, b: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut s = a;
    while s < b {
        let e = ((s / EXTENT_SIZE + 1) * EXTENT_SIZE).min(b);
        out.push((s, e));
        s = e;
    }
    out
}

/// Writes the new version's extents into one tmp dir per drive.
struct ExtentWriter<'a> {
    set: &'a ErasureSet,
    erasure: Arc<Erasure>,
    distribution: Vec<usize>,
    tmps: Vec<Option<SafePath>>,
    /// The new version's data dir (the salt of its sealed extents).
    dir: String,
    keys: Option<&'a Arc<ObjectKeys>>,
    written: u64,
    /// Extents being encoded: their index in the new parts, and the job.
    pending: VecDeque<(usize, JoinHandle<ObjectResult<Encoded>>)>,
}

/// Extents made at once: each is read from the base (and the changes
/// merged), encoded and written in its own task, so the base reads of
/// several extents wait on the drives together (a big file's extents are
/// seldom in the page cache) and their files' fsyncs overlap.
const IN_FLIGHT: usize = 4;

/// An extent's bytes after the patch, being read (`Patching::extent`).
type ExtentData = futures::future::BoxFuture<'static, ObjectResult<Bytes>>;

impl ExtentWriter<'_> {
    /// Starts making `data` (the base's bytes read, the changes merged:
    /// `Patching::extent`) and encoding it as the next part of `out`, of
    /// `len` bytes (its ETag is filled in when the encoding ends:
    /// `finish`).
    async fn write(
        &mut self,
        out: &mut NewParts,
        (data, len): (ExtentData, u64),
    ) -> ObjectResult<()> {
        let number = out.next();
        let files = self
            .set
            .tmp_targets(&self.tmps, |t| crate::drive::part_path(t, number).ok());
        let seal = self
            .keys
            .map(|k| k.part_salted(number, Some(self.dir.as_str())));
        let erasure = self.erasure.clone();
        let targets = PartTargets {
            files,
            distribution: self.distribution.clone(),
            make_dir: false,
        };
        let job = tokio::spawn(async move {
            let data = data.await?;
            if data.len() as u64 != len {
                return Err(ObjectError::internal("a patch extent changed its length"));
            }
            encode_stream(
                data,
                cairn_api::bytes_stream(Bytes::new()),
                BodyDigest::new(None),
                erasure,
                BLOCK_SIZE,
                targets,
                len,
                seal,
            )
            .await
        });
        out.0.push(PartMeta {
            at: self.keys.map(|_| PartLoc {
                dir: self.dir.clone(),
                number,
                salted: true,
                slice: None,
            }),
            ..PartMeta::new(number, len, String::new())
        });
        self.pending.push_back((out.0.len() - 1, job));
        while self.pending.len() >= IN_FLIGHT {
            self.finish_one(out).await?;
        }
        Ok(())
    }

    /// Waits for the oldest extent being encoded and fills in its ETag.
    async fn finish_one(&mut self, out: &mut NewParts) -> ObjectResult<()> {
        let Some((idx, job)) = self.pending.pop_front() else {
            return Ok(());
        };
        let enc = job.await.map_err(ObjectError::internal)??;
        self.set.note_writes(&enc.written);
        // a drive that failed one extent holds no whole copy
        let failed = self
            .tmps
            .iter_mut()
            .zip(&enc.written)
            .map(|(t, w)| if w.ok() { None } else { t.take() })
            .collect();
        self.set.remove_tmp(failed).await;
        let part = out
            .0
            .get_mut(idx)
            .ok_or_else(|| ObjectError::internal("a patch extent lost its part"))?;
        let out = enc.digest.verify(None, Some(part.size))?;
        let md5 = out.etag();
        part.etag = self.keys.map_or(md5.clone(), |k| k.etag(&md5));
        self.written += part.size;
        Ok(())
    }

    /// Waits for every extent being encoded.
    async fn finish(&mut self, out: &mut NewParts) -> ObjectResult<()> {
        while !self.pending.is_empty() {
            self.finish_one(out).await?;
        }
        Ok(())
    }

    /// Stops the extents being encoded (the patch failed).
    fn abort(&mut self) {
        for (_, job) in self.pending.drain(..) {
            job.abort();
        }
    }
}

impl ErasureSet {
    pub(crate) async fn patch_object_impl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        changes: PatchStream,
        opts: PatchOptions,
    ) -> ObjectResult<ObjectInfo> {
        // held to the commit: the base stays current while its parts are
        // named (a read of this key waits for one patch, ~16 extents)
        let lock = self.locks.write(bucket.as_str(), key.as_str()).await?;
        let current = self
            .read_version(bucket, key, false, Want::Latest)
            .await
            .and_then(|(v, held)| match v.attrs.delete_marker {
                true => Err(ObjectError::no_such_key(bucket, key)),
                false => Ok((v, held)),
            });
        let (base, metas) = match current {
            Ok(found) => found,
            Err(ObjectError::NoSuchKey { .. }) if opts.base.is_none() => {
                drop(lock);
                return cairn_api::layer::patch_via_stream(self, bucket, key, changes, opts).await;
            }
            Err(ObjectError::NoSuchKey { .. }) => {
                self.check_bucket(bucket).await?;
                return Err(ObjectError::PreconditionFailed);
            }
            Err(e) => return Err(e),
        };
        if let Some(b) = &opts.base
            && (b.etag != base.etag || b.version_id != base.version_id)
        {
            return Err(ObjectError::PreconditionFailed);
        }
        let customer = base
            .sse
            .as_ref()
            .is_some_and(|s| s.mode == crate::sse::SseMode::Customer);
        if base.data_dir.is_none() || opts.size <= INLINE_MAX as u64 || customer {
            // small (inline) objects are rewritten whole; an SSE-C
            // object cannot be read without its key (the default path
            // reports that)
            drop(lock);
            return cairn_api::layer::patch_via_stream(self, bucket, key, changes, opts).await;
        }
        let keys = match &base.sse {
            None => None,
            Some(s) => Some(Arc::new(
                self.sse_config()
                    .open_keys(s, None, (bucket.as_str(), key.as_str()))
                    .await?,
            )),
        };
        let erasure = Arc::new(
            Erasure::new(base.erasure.data, base.erasure.parity).map_err(ObjectError::internal)?,
        );
        let tmp_name = uuid::Uuid::new_v4().to_string();
        let name = tmp_name.clone();
        let tmps: Vec<Option<SafePath>> = self.on_drives(move |d| d.make_tmp(&name).ok()).await;
        let w = ExtentWriter {
            set: self,
            erasure,
            distribution: base.erasure.distribution.clone(),
            tmps,
            dir: new_data_dir(),
            keys: keys.as_ref(),
            written: 0,
            pending: VecDeque::new(),
        };
        let mut job = Patching {
            set: self,
            at: (bucket, key),
            src: VersionRead {
                version: &base,
                metas: &metas,
                keys: keys.as_ref(),
            },
            changes: PatchChanges::new(changes, opts.size),
            w,
            out: NewParts::default(),
        };
        let mut done = job.parts(opts.size).await;
        if done.is_ok() {
            done = job.w.finish(&mut job.out).await;
        }
        let Patching { mut w, out, .. } = job;
        let parts = match done {
            Ok(()) => out.0,
            Err(e) => {
                w.abort();
                self.remove_tmp(w.tmps).await;
                return Err(e);
            }
        };
        let quorum = write_quorum(base.erasure.data, base.erasure.parity);
        let ready = w.tmps.iter().filter(|t| t.is_some()).count();
        if ready < quorum {
            self.remove_tmp(w.tmps).await;
            return Err(self.write_quorum_error(quorum, ready));
        }
        let etags: Vec<&str> = parts.iter().map(|p| p.etag.as_str()).collect();
        let mut template = VersionMeta {
            version_id: None,
            mod_time: 0,
            size: opts.size,
            etag: cairn_api::checksum::multipart_etag(&etags),
            headers: opts.metadata.headers,
            user: opts.metadata.user,
            storage_class: base.storage_class,
            checksum: None,
            erasure: base.erasure.clone(),
            data_dir: Some(w.dir.clone()),
            inline_len: None,
            parts,
            multipart: true,
            sse: base.sse.clone(),
            attrs: Default::default(),
            revision: 0,
            upload: None,
        };
        let attrs = NewAttrs {
            tags: base.attrs.tags.clone(),
            retention: None,
            legal_hold: false,
            acl: base.attrs.acl.clone(),
            replica: None,
        };
        if let Err(e) = self.stamp_version(bucket, key, &mut template, attrs).await {
            self.remove_tmp(w.tmps).await;
            return Err(e);
        }
        template.mod_time = now_nanos();
        tracing::debug!(%bucket, %key, size = opts.size, written = w.written,
            parts = template.parts.len(), "patched");
        let jobs = per_drive_metas(&template, &base.erasure.distribution, None, &w.tmps);
        let raised = crate::outbox::Raised::of(cairn_api::notify::EventName::Put, &template);
        let how = crate::set::Commit {
            quorum,
            write_back: opts.write_back,
            fence: lock.fence(),
        };
        let commit = self.commit_with(bucket, key, jobs, how);
        self.with_event(bucket, key, raised, !opts.write_back, commit)
            .await?;
        let mut info = template.to_info(bucket.as_str(), key.as_str());
        info.encryption = template.sse.as_ref().map(|s| s.encryption(None));
        Ok(info)
    }
}

/// One patch being built: the base, the changes, the extents written.
struct Patching<'a> {
    set: &'a ErasureSet,
    at: (&'a BucketName, &'a ObjectKey),
    src: VersionRead<'a>,
    changes: PatchChanges,
    w: ExtentWriter<'a>,
    out: NewParts,
}

impl Patching<'_> {
    /// The new version's parts: the base's untouched ones named where
    /// they are, the touched ones (and the extension) written, extents
    /// nothing wrote into past the old end (or in a hole) as holes.
    async fn parts(&mut self, size: u64) -> ObjectResult<()> {
        let base = self.src.version;
        // an encrypted object's parts are all sealed packages
        let holes = base.sse.is_none();
        let mut pos = 0u64;
        let last = base.parts.iter().rposition(|p| p.size > 0);
        for (i, p) in base.parts.iter().enumerate() {
            let (ps, pe) = (pos, pos + p.size);
            pos = pe;
            if p.size == 0 {
                continue;
            }
            if ps >= size {
                break;
            }
            // the extension joins a last part that ends inside an extent
            let grows = Some(i) == last && size > pe && pe % EXTENT_SIZE != 0;
            let touched = self.changes.peek().await? < pe.min(size) || pe > size || grows;
            if !touched {
                self.out.keep(base, p)?;
                continue;
            }
            let end = if grows { size } else { pe.min(size) };
            for (a, b) in extents(ps, end) {
                // an extent of the part no change falls in stays where it
                // is, a slice of the part's file (the first touch of a
                // 64 MiB part writes one extent, not 64 MiB)
                if !p.zeros && slice_of(base, p, a - ps, b - ps) && self.changes.peek().await? >= b
                {
                    self.out.slice(base, p, (a - ps, b - a))?;
                    continue;
                }
                let may_hole = holes && (p.zeros || a >= base.size);
                self.extent_or_hole((a, b), may_hole).await?;
            }
            pos = pos.max(end);
        }
        // past the base's end (when the last part did not take it)
        for (a, b) in extents(pos.min(size), size) {
            self.extent_or_hole((a, b), holes).await?;
        }
        // every change must have landed below the size
        if self.changes.peek().await? != u64::MAX {
            return Err(ObjectError::InvalidArgument {
                message: "a patch change lies past the new size".into(),
            });
        }
        Ok(())
    }

    /// Extent `[a, b)`: a hole when allowed and no change falls in it,
    /// else written.
    async fn extent_or_hole(&mut self, (a, b): (u64, u64), may_hole: bool) -> ObjectResult<()> {
        if may_hole && self.changes.peek().await? >= b {
            self.out.zeros(b - a);
            return Ok(());
        }
        let data = self.extent((a, b)).await?;
        self.w.write(&mut self.out, data).await
    }

    /// The bytes of `[a, b)` after the patch, with their length: the
    /// base's (read only when the changes do not cover the extent), zeros
    /// past its end, the changes over them. The read starts now and is
    /// awaited by the extent's encoding task.
    async fn extent(&mut self, (a, b): (u64, u64)) -> ObjectResult<(ExtentData, u64)> {
        let mine = self.changes.take_below(b).await?;
        let covered: u64 = mine.iter().map(|(_, d)| d.len() as u64).sum();
        let src = &self.src;
        let base_end = src.version.size.min(b);
        let body = if covered < b - a && a < base_end {
            let (plan, plain) = self.set.read_plan(self.at, src, a, base_end - a)?;
            Some(match src.keys {
                None => stream(plan),
                Some(k) => decrypt(stream(plan), k.clone(), plain, a, base_end - a),
            })
        } else {
            None
        };
        let data = merge_extent(MergeExtent {
            at: a,
            len: b - a,
            base: body.map(|body| (body, base_end - a)),
            changes: mine,
        });
        Ok((Box::pin(data), b - a))
    }
}

/// What `merge_extent` puts together.
struct MergeExtent {
    /// Where the extent starts in the object, and its length.
    at: u64,
    len: u64,
    /// The base's bytes of the extent being read, and how many there are
    /// (fewer than `len` past the base's end: zeros follow).
    base: Option<(cairn_api::ByteStream, u64)>,
    /// The changes that fall in the extent, ascending.
    changes: Vec<(u64, Bytes)>,
}

async fn merge_extent(m: MergeExtent) -> ObjectResult<Bytes> {
    let mut buf = BytesMut::zeroed(m.len as usize);
    if let Some((mut body, want)) = m.base {
        let mut off = 0usize;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| match crate::reader::object_error(e) {
                Ok(oe) => oe,
                Err(e) => ObjectError::internal(format!("reading the patch base: {e}")),
            })?;
            let dst = buf
                .get_mut(off..off + chunk.len())
                .ok_or_else(|| ObjectError::internal("the patch base read past its range"))?;
            dst.copy_from_slice(&chunk);
            off += chunk.len();
        }
        if off as u64 != want {
            return Err(ObjectError::internal("the patch base read ended early"));
        }
    }
    for (off, data) in m.changes {
        let from = (off - m.at) as usize;
        if let Some(dst) = buf.get_mut(from..from + data.len()) {
            dst.copy_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_are_cut_at_multiples() {
        let e = EXTENT_SIZE;
        assert_eq!(extents(0, 0), vec![]);
        assert_eq!(extents(0, e), vec![(0, e)]);
        assert_eq!(
            extents(10, 2 * e + 5),
            vec![(10, e), (e, 2 * e), (2 * e, 2 * e + 5)]
        );
    }
}
