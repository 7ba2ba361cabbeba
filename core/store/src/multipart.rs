//! Multipart uploads on the erasure set.
//!
//! An upload lives on every drive under
//! `.cairn.sys/multipart/<bucket>/<upload-id>/`: `upload.json`, and per
//! part its shard file `part.N.<id>` and `part.N.json` (which names the
//! file, so a re-upload of a part never mixes shards of two uploads).
//! Complete renames the chosen part files into the object's new data dir:
//! no data is copied.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use cairn_api::checksum::{BodyDigest, multipart_etag};
use cairn_api::mpchecksum::{UploadChecksum, complete_checksum, part_request};
use cairn_api::multipart::{
    COMPLETED_KEEP, check_part_number, page_parts, page_uploads, validate_complete,
};
use cairn_api::notify::EventName;
use cairn_api::{
    BucketName, ByteStream, ChecksumAlgorithm, CompleteOptions, CompletePart, ListPartsPage,
    ListUploadsOptions, ListUploadsPage, MAX_PUT_SIZE, ObjectError, ObjectHeaders, ObjectInfo,
    ObjectKey, ObjectResult, PartInfo, PartOptions, PutOptions, StorageClass, UploadInfo,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use cairn_api::path::{PathError, SafePath};
use cairn_api::seg;

use crate::drive::{Drive, DriveError};
use crate::erasure::Erasure;
use crate::meta::{PartMeta, VersionMeta};
use crate::outbox::{Outcome, Raised};
use crate::set::{
    ErasureSet, Lookup, Want, count, erasure_info, new_data_dir, now_nanos, write_quorum,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UploadMeta {
    key: String,
    initiated: i128,
    headers: ObjectHeaders,
    user: BTreeMap<String, String>,
    storage_class: StorageClass,
    checksum: Option<ChecksumAlgorithm>,
    /// The upload's checksum type is FULL_OBJECT (else COMPOSITE).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    checksum_full_object: bool,
    data: usize,
    parity: usize,
    distribution: Vec<usize>,
    /// The upload's sealed object key; each part is encrypted with a key
    /// derived from it for that part number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sse: Option<crate::sse::SseMeta>,
    /// Tags, retention and legal hold the completed version gets.
    #[serde(default, skip_serializing_if = "cairn_api::Tags::is_empty")]
    tags: cairn_api::Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retention: Option<cairn_api::Retention>,
    #[serde(default)]
    legal_hold: bool,
    /// The ACL the completed version gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acl: Option<cairn_api::acl::Acl>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PartRecord {
    number: u32,
    size: u64,
    etag: String,
    mod_time: i128,
    checksum: Option<cairn_api::Checksum>,
    file: String,
}

impl PartRecord {
    fn info(&self) -> PartInfo {
        PartInfo {
            part_number: self.number,
            etag: self.etag.clone(),
            size: self.size,
            last_modified: OffsetDateTime::from_unix_timestamp_nanos(self.mod_time)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            checksum: self.checksum.clone(),
        }
    }
}

/// Part files of an upload: `part.<number>.<uuid>`.
const PART_FILE_PREFIX: &str = "part.";

/// An upload's folder on a drive; the id must be an upload id (a UUID).
fn upload_dir(d: &Drive, bucket: &str, id: &str) -> Result<SafePath, DriveError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(DriveError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not an upload id",
        )));
    }
    Ok(d.multipart_dir(bucket)?.join_str(id)?)
}

fn upload_file(dir: &SafePath) -> SafePath {
    dir.join(seg!("upload.json"))
}

fn part_record_file(dir: &SafePath, number: u32) -> Result<SafePath, PathError> {
    dir.join_str(&format!("part.{number}.json"))
}

fn read_json<T: for<'de> Deserialize<'de>>(
    d: &Drive,
    p: &std::path::Path,
) -> Result<Option<T>, DriveError> {
    match d.io().read(p) {
        Ok(b) => Ok(serde_json::from_slice(&b).ok()),
        Err(e) if crate::drive::is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, DriveError> {
    serde_json::to_vec(v).map_err(|e| DriveError::Io(std::io::Error::other(e)))
}

/// Part records of one drive's copy of an upload.
fn read_parts(d: &Drive, bucket: &str, id: &str) -> Result<BTreeMap<u32, PartRecord>, DriveError> {
    let dir = upload_dir(d, bucket, id)?;
    let mut out = BTreeMap::new();
    for e in d.io().read_dir(&dir)? {
        let name = e.name.to_string_lossy().into_owned();
        if name.starts_with("part.")
            && name.ends_with(".json")
            && let Some(p) = e.path_in(&dir)
            && let Some(r) = read_json::<PartRecord>(d, &p)?
        {
            out.insert(r.number, r);
        }
    }
    Ok(out)
}

/// Moves the chosen parts (number, ETag) that `mine`, one drive's part
/// records of upload `id`, holds into a new tmp data dir on `d`: `Found`
/// with it; `Missing` when a part file a record names is not there (an
/// earlier commit of the upload moved it); `Failed` otherwise. A drive
/// without a record of a part simply lacks that shard.
fn move_parts(
    d: &Drive,
    (bucket, id): (&str, &str),
    tmp_name: &str,
    mine: Option<&BTreeMap<u32, PartRecord>>,
    chosen: &[(u32, String)],
) -> Lookup<SafePath> {
    let Some(mine) = mine else {
        return Lookup::Failed;
    };
    let (Ok(tmp), Ok(dir)) = (d.make_tmp(tmp_name), upload_dir(d, bucket, id)) else {
        return Lookup::Failed;
    };
    let moved = || {
        for (n, etag) in chosen {
            let Some(r) = mine.get(n).filter(|r| &r.etag == etag) else {
                continue;
            };
            let (Ok(from), Ok(to)) = (
                dir.join_named(PART_FILE_PREFIX, &r.file),
                crate::drive::part_path(&tmp, *n),
            ) else {
                return Lookup::Failed;
            };
            match d.io().rename(&from, &to) {
                Ok(()) => {}
                Err(e) if crate::drive::is_not_found(&e) => return Lookup::Missing,
                Err(_) => return Lookup::Failed,
            }
        }
        Lookup::Found(())
    };
    let r = moved();
    if !matches!(r, Lookup::Found(())) {
        let _ = d.io().remove_dir_all(&tmp);
    }
    match r {
        Lookup::Found(()) => Lookup::Found(tmp),
        Lookup::Missing => Lookup::Missing,
        Lookup::Failed => Lookup::Failed,
    }
}

/// Validates an upload id before it is used in a path.
fn check_upload_id(id: &str) -> ObjectResult<()> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ObjectError::NoSuchUpload {
            upload_id: id.to_owned(),
        });
    }
    Ok(())
}

impl ErasureSet {
    /// The upload's meta as a read quorum of drives holds it.
    async fn read_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        id: &str,
    ) -> ObjectResult<UploadMeta> {
        check_upload_id(id)?;
        self.check_bucket(bucket).await?;
        let (b, i) = (bucket.to_string(), id.to_owned());
        let res = self
            .on_drives(move |d| {
                match upload_dir(d, &b, &i)
                    .and_then(|u| read_json::<UploadMeta>(d, &upload_file(&u)))
                {
                    Ok(Some(m)) => Lookup::Found(m),
                    Ok(None) if d.is_online() => Lookup::Missing,
                    _ => Lookup::Failed,
                }
            })
            .await;
        let (_, missing) = count(&res);
        let mut best: Option<(usize, UploadMeta)> = None;
        for r in &res {
            if let Lookup::Found(m) = r {
                let c = res
                    .iter()
                    .filter(|o| matches!(o, Lookup::Found(x) if x == m))
                    .count();
                if best.as_ref().is_none_or(|(bc, _)| c > *bc) {
                    best = Some((c, m.clone()));
                }
            }
        }
        let no_upload = || ObjectError::NoSuchUpload {
            upload_id: id.to_owned(),
        };
        let found = best.as_ref().map_or(0, |(c, _)| *c);
        let read = best
            .as_ref()
            .map_or(self.default_quorums().0, |(_, m)| m.data);
        self.decide(found, missing, read, no_upload)?;
        let (_, m) = best.ok_or_else(no_upload)?;
        if m.key != key.as_str() {
            return Err(no_upload());
        }
        Ok(m)
    }

    pub(crate) async fn create_upload_impl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
    ) -> ObjectResult<String> {
        self.check_bucket(bucket).await?;
        let (k, m) = self.write_layout(opts.metadata.storage_class, self.online_drives());
        let keys = self.new_object_keys(bucket, opts.sse.as_ref()).await?;
        let attrs = crate::versions::NewAttrs::from_put(&opts);
        let meta = UploadMeta {
            key: key.to_string(),
            initiated: now_nanos(),
            headers: opts.metadata.headers,
            user: opts.metadata.user,
            storage_class: opts.metadata.storage_class,
            checksum_full_object: opts.checksum.as_ref().is_some_and(|c| c.full_object),
            checksum: opts.checksum.map(|c| c.algorithm),
            data: k,
            parity: m,
            distribution: self.distribution(bucket.as_str(), key.as_str()),
            sse: keys.map(|k| k.meta),
            tags: attrs.tags,
            retention: attrs.retention,
            legal_hold: attrs.legal_hold,
            acl: attrs.acl,
        };
        let id = uuid::Uuid::new_v4().to_string();
        let (b, i) = (bucket.to_string(), id.clone());
        let body = to_json(&meta).map_err(ObjectError::internal)?;
        let res = self
            .on_drives(move |d| -> Result<(), DriveError> {
                d.check_online()?;
                let dir = upload_dir(d, &b, &i)?;
                d.io().create_dir_all(&dir)?;
                d.write_atomic(&upload_file(&dir), &body)
            })
            .await;
        let ok = res.iter().filter(|r| r.is_ok()).count();
        let wq = write_quorum(k, m);
        if ok < wq {
            return Err(self.write_quorum_error(wq, ok));
        }
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn upload_part_impl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        id: &str,
        number: u32,
        body: ByteStream,
        opts: PartOptions,
    ) -> ObjectResult<PartInfo> {
        check_part_number(number)?;
        let up = self.read_upload(bucket, key, id).await?;
        let checksum = part_request(up.checksum, opts.checksum)?;
        let keys = match &up.sse {
            Some(s) => Some(
                self.sse_config()
                    .open_keys(
                        s,
                        opts.sse_customer.as_ref(),
                        (bucket.as_str(), key.as_str()),
                    )
                    .await?,
            ),
            None => {
                crate::sse::SseMeta::check_customer(
                    None,
                    opts.sse_customer.as_ref(),
                    (bucket.as_str(), key.as_str()),
                )?;
                None
            }
        };
        let erasure = Arc::new(Erasure::new(up.data, up.parity).map_err(ObjectError::internal)?);
        let wq = write_quorum(up.data, up.parity);
        let file = format!("{PART_FILE_PREFIX}{number}.{}", uuid::Uuid::new_v4());
        let (tmps, digest, size) = self
            .stream_to_tmp(
                Bytes::new(),
                body,
                BodyDigest::new(checksum),
                erasure,
                up.distribution.clone(),
                file.clone(),
                MAX_PUT_SIZE,
                keys.as_ref().map(|k| k.part(number)),
            )
            .await?;
        let out = match digest.verify(opts.content_md5.as_ref(), opts.content_length) {
            Ok(o) => o,
            Err(e) => {
                self.remove_tmp(tmps).await;
                return Err(e);
            }
        };
        let record = PartRecord {
            number,
            size,
            etag: keys.as_ref().map_or(out.etag(), |k| k.etag(&out.etag())),
            mod_time: now_nanos(),
            checksum: out.checksum,
            file: file.clone(),
        };
        let body = to_json(&record).map_err(ObjectError::internal)?;
        let (b, i) = (bucket.to_string(), id.to_owned());
        let tmps = Arc::new(tmps);
        let t2 = tmps.clone();
        let res = self
            .on_drives(move |d| -> Result<(), DriveError> {
                let tmp = t2
                    .get(d.index)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| DriveError::Offline(d.root.display().to_string()))?;
                let dir = upload_dir(d, &b, &i)?;
                if !d.io().is_file(&upload_file(&dir)) {
                    return Err(DriveError::Offline(d.root.display().to_string()));
                }
                // Replace any earlier upload of this part number.
                let record = part_record_file(&dir, number)?;
                let old = read_json::<PartRecord>(d, &record)?;
                d.io()
                    .rename(&tmp.join_str(&file)?, &dir.join_str(&file)?)?;
                d.write_atomic(&record, &body)?;
                if let Some(old) = old
                    && old.file != file
                    && let Ok(old) = dir.join_named(PART_FILE_PREFIX, &old.file)
                {
                    let _ = d.io().remove_file(&old);
                }
                Ok(())
            })
            .await;
        self.remove_tmp(Arc::try_unwrap(tmps).unwrap_or_default())
            .await;
        let ok = res.iter().filter(|r| r.is_ok()).count();
        if ok < wq {
            return Err(self.write_quorum_error(wq, ok));
        }
        Ok(record.info())
    }

    /// Part records as a read quorum of drives agrees on them.
    async fn quorum_parts(
        &self,
        bucket: &BucketName,
        id: &str,
        read: usize,
    ) -> ObjectResult<(
        BTreeMap<u32, PartRecord>,
        Vec<Option<BTreeMap<u32, PartRecord>>>,
    )> {
        let (b, i) = (bucket.to_string(), id.to_owned());
        let per_drive: Vec<Option<BTreeMap<u32, PartRecord>>> =
            self.on_drives(move |d| read_parts(d, &b, &i).ok()).await;
        let mut agreed = BTreeMap::new();
        for m in per_drive.iter().flatten() {
            for (n, r) in m {
                if agreed.contains_key(n) {
                    continue;
                }
                let c = per_drive
                    .iter()
                    .flatten()
                    .filter(|o| {
                        o.get(n)
                            .is_some_and(|x| x.etag == r.etag && x.size == r.size)
                    })
                    .count();
                if c >= read {
                    agreed.insert(*n, r.clone());
                }
            }
        }
        Ok((agreed, per_drive))
    }

    pub(crate) async fn list_parts_impl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        id: &str,
        marker: Option<u32>,
        max: usize,
    ) -> ObjectResult<ListPartsPage> {
        let up = self.read_upload(bucket, key, id).await?;
        let (parts, _) = self.quorum_parts(bucket, id, up.data).await?;
        Ok(page_parts(
            parts.values().map(PartRecord::info).collect(),
            marker,
            max,
        ))
    }

    pub(crate) async fn complete_impl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        id: &str,
        parts: Vec<CompletePart>,
        opts: CompleteOptions,
    ) -> ObjectResult<ObjectInfo> {
        // a retry of a complete that already happened gets its result
        let retried = || {
            self.completed
                .get(bucket.as_str(), key.as_str(), id, &parts)
        };
        let up = match self.read_upload(bucket, key, id).await {
            Ok(up) => up,
            Err(ObjectError::NoSuchUpload { .. }) if let Some(info) = retried() => {
                return Ok(info);
            }
            // forgotten by a restart: the version it made answers
            Err(e @ ObjectError::NoSuchUpload { .. }) => {
                return self
                    .completed_version(bucket, key, id, &parts)
                    .await?
                    .ok_or(e);
            }
            Err(e) => return Err(e),
        };
        let _claim = self
            .locks
            .in_flight
            .claim(bucket, key, opts.precondition.as_ref())?;
        let g = self.locks.write(bucket.as_str(), key.as_str()).await?;
        // a complete of the same upload that ran meanwhile, or one that
        // committed before a crash left its folder (whose part files the
        // commit moved: completing it again would commit missing shards)
        if let Some(info) = retried() {
            return Ok(info);
        }
        if let Some(info) = self.completed_version(bucket, key, id, &parts).await? {
            self.remove_upload(bucket, id).await;
            return Ok(info);
        }
        self.check_precondition(bucket, key, opts.precondition.as_ref())
            .await?;
        let (agreed, per_drive) = self.quorum_parts(bucket, id, up.data).await?;
        let uploaded: BTreeMap<u32, PartInfo> =
            agreed.iter().map(|(n, r)| (*n, r.info())).collect();
        let chosen = validate_complete(&parts, &uploaded)?;
        let etags: Vec<&str> = chosen.iter().map(|p| p.etag.as_str()).collect();
        let etag = multipart_etag(&etags);
        let checksum = complete_checksum(
            UploadChecksum::from_record(up.checksum, up.checksum_full_object),
            &chosen,
            &opts.checksums,
        )?;
        let size: u64 = chosen.iter().map(|p| p.size).sum();
        let data_dir = new_data_dir();
        let mut template = VersionMeta {
            version_id: None,
            mod_time: now_nanos(),
            size,
            etag,
            headers: up.headers.clone(),
            user: up.user.clone(),
            storage_class: up.storage_class,
            checksum,
            erasure: erasure_info(up.data, up.parity, up.distribution.clone()),
            data_dir: Some(data_dir),
            inline_len: None,
            parts: chosen
                .iter()
                .map(|p| PartMeta {
                    checksum: p.checksum.clone(),
                    ..PartMeta::new(p.part_number, p.size, p.etag.clone())
                })
                .collect(),
            multipart: true,
            sse: None,
            attrs: Default::default(),
            revision: 0,
            upload: Some(id.to_owned()),
        };
        if let Some(s) = &up.sse {
            template.set_sse(s.clone());
        }
        let attrs = crate::versions::NewAttrs {
            tags: up.tags.clone(),
            retention: up.retention,
            legal_hold: up.legal_hold,
            acl: up.acl.clone(),
            replica: None,
        };
        self.stamp_version(bucket, key, &mut template, attrs)
            .await?;
        let raised = Raised::of(EventName::CompleteMultipartUpload, &template);
        let noted = self.outbox_note(bucket, key, raised, true).await?;
        // Per drive: move the chosen parts this drive holds (with the
        // agreed ETag) into a tmp data dir; a drive missing a part simply
        // lacks that shard, which reads reconstruct. A drive whose record
        // names a file that is not there (an earlier commit moved it) gets
        // no version; below a write quorum nothing is committed.
        let (b, i) = (bucket.to_string(), id.to_owned());
        let chosen_numbers: Vec<(u32, String)> = chosen
            .iter()
            .map(|p| (p.part_number, p.etag.clone()))
            .collect();
        let per_drive = Arc::new(per_drive);
        let tmp_name = uuid::Uuid::new_v4().to_string();
        let moved: Vec<Lookup<SafePath>> = self
            .on_drives(move |d| {
                let mine = per_drive.get(d.index).and_then(Option::as_ref);
                move_parts(d, (&b, &i), &tmp_name, mine, &chosen_numbers)
            })
            .await;
        let wq = write_quorum(up.data, up.parity);
        let (ready, gone) = count(&moved);
        let tmps: Vec<Option<SafePath>> = moved
            .into_iter()
            .map(|m| match m {
                Lookup::Found(t) => Some(t),
                _ => None,
            })
            .collect();
        if ready < wq && gone > 0 {
            // the upload's part files are gone (an earlier commit of it,
            // whose version is no longer the key's): nothing to complete
            self.remove_tmp(tmps).await;
            self.outbox_settle(noted, Outcome::NotDone).await;
            return Err(ObjectError::NoSuchUpload {
                upload_id: id.to_owned(),
            });
        }
        let jobs = crate::set::per_drive_metas(&template, &up.distribution, None, &tmps);
        let res = self.commit(bucket, key, jobs, wq, g.fence()).await;
        self.outbox_settle(noted, Outcome::of(&res)).await;
        res?;
        let info = template.to_info(bucket.as_str(), key.as_str());
        self.completed.record(id, &parts, &info);
        self.remove_upload(bucket, id).await;
        Ok(info)
    }

    /// The answer of a complete of upload `id` into `key` with `parts` that
    /// already happened, from the version it made: the key still holds a
    /// version naming the upload (among those its meta keeps, as a read
    /// quorum agrees), made from exactly these parts, within
    /// `COMPLETED_KEEP` of its completion. The record is the version
    /// itself, written by the commit: a crash between the commit and the
    /// answer leaves it, a restart keeps it, and it goes with the version.
    /// `None` when there is no such version (the retry is NoSuchUpload).
    async fn completed_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        id: &str,
        parts: &[CompletePart],
    ) -> ObjectResult<Option<ObjectInfo>> {
        let found = match self
            .read_version(bucket, key, false, Want::Upload(id.to_owned()))
            .await
        {
            Ok((v, _)) => v,
            Err(ObjectError::NoSuchUpload { .. } | ObjectError::NoSuchKey { .. }) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let same_parts = found.parts.len() == parts.len()
            && found.parts.iter().zip(parts).all(|(have, asked)| {
                have.number == asked.part_number && have.etag == asked.etag.trim().trim_matches('"')
            });
        let keep = i128::try_from(COMPLETED_KEEP.as_nanos()).unwrap_or(i128::MAX);
        let recent = now_nanos().saturating_sub(found.mod_time) <= keep;
        Ok((same_parts && recent).then(|| found.to_info(bucket.as_str(), key.as_str())))
    }

    /// Removes an upload's folder from every drive.
    async fn remove_upload(&self, bucket: &BucketName, id: &str) {
        let (b, i) = (bucket.to_string(), id.to_owned());
        self.on_drives(move |d| {
            if let Ok(u) = upload_dir(d, &b, &i) {
                let _ = d.io().remove_dir_all(&u);
            }
        })
        .await;
    }

    pub(crate) async fn abort_impl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        id: &str,
    ) -> ObjectResult<()> {
        self.read_upload(bucket, key, id).await?;
        self.remove_upload(bucket, id).await;
        Ok(())
    }

    pub(crate) async fn list_uploads_impl(
        &self,
        bucket: &BucketName,
        opts: ListUploadsOptions,
    ) -> ObjectResult<ListUploadsPage> {
        self.check_bucket(bucket).await?;
        let b = bucket.to_string();
        let per_drive: Vec<Vec<(String, UploadMeta)>> = self
            .on_drives(move |d| {
                let Some(rd) = d
                    .multipart_dir(&b)
                    .ok()
                    .and_then(|m| d.io().read_dir(&m).ok())
                else {
                    return Vec::new();
                };
                rd.into_iter()
                    .filter_map(|e| {
                        let id = e.name.into_string().ok()?;
                        let dir = upload_dir(d, &b, &id).ok()?;
                        let m = read_json::<UploadMeta>(d, &upload_file(&dir)).ok()??;
                        Some((id, m))
                    })
                    .collect()
            })
            .await;
        let mut seen: BTreeMap<String, (usize, UploadMeta)> = BTreeMap::new();
        for (id, m) in per_drive.into_iter().flatten() {
            seen.entry(id).or_insert((0, m)).0 += 1;
        }
        let uploads = seen
            .into_iter()
            .filter(|(_, (c, m))| *c >= m.data)
            .map(|(id, (_, m))| UploadInfo {
                bucket: bucket.to_string(),
                key: m.key,
                upload_id: id,
                initiated: OffsetDateTime::from_unix_timestamp_nanos(m.initiated)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                storage_class: m.storage_class,
            })
            .collect();
        Ok(page_uploads(uploads, &opts))
    }
}
