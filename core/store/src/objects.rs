//! Bucket and object operations of the erasure set.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use cairn_api::checksum::BodyDigest;
use cairn_api::notify::EventName;
use cairn_api::{
    BucketInfo, BucketName, ByteStream, CopyOptions, GetObject, GetOptions, MAX_PUT_SIZE,
    MetadataDirective, ObjectError, ObjectInfo, ObjectKey, ObjectResult, PutOptions, QuorumOp,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::drive::DriveError;
use crate::erasure::Erasure;
use crate::meta::{INLINE_MAX, ObjectMeta, VersionMeta};
use crate::outbox::{Outcome, Raised};
use crate::reader::{ReadPlan, ShardSource, stream};
use crate::set::{
    Commit, ErasureSet, Held, Lookup, Want, count, erasure_info, new_data_dir, now_nanos,
    per_drive_metas, read_prefix, single_part, write_quorum,
};
use crate::sse::SseMeta;
use crate::sse::stream::{PlainPart, decrypt, stored_range};
use crate::versions::NewAttrs;

/// `buckets/<bucket>.json` on every drive: when the bucket was made and
/// its configuration.
#[derive(Serialize, Deserialize, Default, Clone)]
pub(crate) struct BucketMeta {
    pub(crate) created: i128,
    /// When the configuration below last changed (drives that disagree
    /// are resolved by the newest).
    #[serde(default)]
    pub(crate) updated: i128,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) encryption: Option<cairn_api::BucketEncryption>,
    #[serde(default)]
    pub(crate) config: cairn_api::BucketConfig,
}

/// A version to read: its record, the drives' records that agree on it
/// (by drive), and its keys when encrypted.
#[derive(Clone, Copy)]
pub(crate) struct VersionRead<'a> {
    pub(crate) version: &'a VersionMeta,
    pub(crate) metas: &'a [Option<Held>],
    pub(crate) keys: Option<&'a Arc<crate::sse::ObjectKeys>>,
}

impl ErasureSet {
    pub(crate) async fn make_bucket_impl(
        &self,
        bucket: &BucketName,
        opts: cairn_api::MakeBucketOptions,
    ) -> ObjectResult<()> {
        let b = bucket.to_string();
        let created = now_nanos();
        let config = cairn_api::BucketConfig {
            versioning: if opts.object_lock {
                cairn_api::Versioning::Enabled
            } else {
                cairn_api::Versioning::Unversioned
            },
            object_lock: opts.object_lock,
            ..Default::default()
        };
        let res = self
            .on_drives(move |d| -> Result<bool, DriveError> {
                d.check_online()?;
                let created_now = match d.io().create_dir(&d.bucket_dir(&b)?) {
                    Ok(()) => true,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                    Err(e) => return Err(e.into()),
                };
                if created_now {
                    let body = serde_json::to_vec(&BucketMeta {
                        created,
                        config: config.clone(),
                        ..Default::default()
                    })
                    .map_err(|e| DriveError::Io(std::io::Error::other(e)))?;
                    d.write_atomic(&d.bucket_config_file(&b)?, &body)?;
                }
                Ok(created_now)
            })
            .await;
        let (_, wq) = self.default_quorums();
        let existed = res.iter().filter(|r| matches!(r, Ok(false))).count();
        let ok = res.iter().filter(|r| r.is_ok()).count();
        let (rq, _) = self.default_quorums();
        self.bucket_changed(bucket.as_str());
        if existed >= rq {
            return Err(ObjectError::BucketAlreadyExists {
                bucket: bucket.to_string(),
            });
        }
        if ok < wq {
            return Err(self.write_quorum_error(wq, ok));
        }
        Ok(())
    }

    pub(crate) async fn head_bucket_impl(&self, bucket: &BucketName) -> ObjectResult<BucketInfo> {
        self.check_bucket(bucket).await?;
        let b = bucket.to_string();
        let created = self
            .on_drives(move |d| read_bucket_created(d, &b))
            .await
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Ok(BucketInfo {
            name: bucket.to_string(),
            created,
        })
    }

    pub(crate) async fn list_buckets_impl(&self) -> ObjectResult<Vec<BucketInfo>> {
        let res = self
            .on_drives(|d| -> Option<Vec<(String, Option<OffsetDateTime>)>> {
                let rd = d.io().read_dir(&d.root).ok()?;
                d.check_online().ok()?;
                Some(
                    rd.into_iter()
                        .filter(|e| e.kind == crate::driveio::FileKind::Dir)
                        .filter_map(|e| e.name.into_string().ok())
                        .filter(|n| BucketName::new(n.clone()).is_ok())
                        .map(|n| {
                            let c = read_bucket_created(d, &n);
                            (n, c)
                        })
                        .collect(),
                )
            })
            .await;
        let online = res.iter().filter(|r| r.is_some()).count();
        let (rq, _) = self.default_quorums();
        if online < rq {
            return Err(ObjectError::Unavailable {
                op: QuorumOp::Read,
                needed: rq,
                got: online,
            });
        }
        let mut all: std::collections::BTreeMap<String, (usize, Option<OffsetDateTime>)> =
            Default::default();
        for (name, created) in res.into_iter().flatten().flatten() {
            let e = all.entry(name).or_insert((0, None));
            e.0 += 1;
            e.1 = match (e.1, created) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(all
            .into_iter()
            .filter(|(_, (c, _))| *c >= rq)
            .map(|(name, (_, created))| BucketInfo {
                name,
                created: created.unwrap_or(OffsetDateTime::UNIX_EPOCH),
            })
            .collect())
    }

    pub(crate) async fn delete_bucket_impl(&self, bucket: &BucketName) -> ObjectResult<()> {
        self.check_bucket(bucket).await?;
        let page = self
            .list_objects_impl(
                bucket,
                cairn_api::ListOptions {
                    max_keys: 1,
                    ..Default::default()
                },
            )
            .await?;
        if !page.objects.is_empty() || !page.common_prefixes.is_empty() {
            return Err(ObjectError::BucketNotEmpty {
                bucket: bucket.to_string(),
            });
        }
        self.bucket_cfg.lock().remove(bucket.as_str());
        self.versions.clear();
        let b = bucket.to_string();
        let res = self
            .on_drives(move |d| -> Result<(), DriveError> {
                d.check_online()?;
                let _ = d.io().remove_dir_all(&d.multipart_dir(&b)?);
                let _ = d.io().remove_file(&d.bucket_config_file(&b)?);
                match d.io().remove_dir_all(&d.bucket_dir(&b)?) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                    _ => Ok(()),
                }
            })
            .await;
        // other nodes' caches forget it once it is gone
        self.bucket_changed(bucket.as_str());
        let ok = res.iter().filter(|r| r.is_ok()).count();
        let (_, wq) = self.default_quorums();
        if ok < wq {
            return Err(self.write_quorum_error(wq, ok));
        }
        Ok(())
    }

    pub(crate) async fn put_object_impl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        mut body: ByteStream,
        opts: PutOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.check_bucket(bucket).await?;
        let _claim = self
            .locks
            .in_flight
            .claim(bucket, key, opts.precondition.as_ref())?;
        let online = self.online_drives();
        let (k, m) = self.write_layout(opts.metadata.storage_class, online);
        let quorum = write_quorum(k, m);
        if online < quorum {
            return Err(self.write_quorum_error(quorum, online));
        }
        let erasure = Arc::new(Erasure::new(k, m).map_err(ObjectError::internal)?);
        let distribution = self.distribution(bucket.as_str(), key.as_str());
        let keys = self.new_object_keys(bucket, opts.sse.as_ref()).await?;
        let customer = match &opts.sse {
            Some(cairn_api::SseRequest::Customer(k)) => Some(k.clone()),
            _ => None,
        };
        // the ETag of an encrypted object depends on its mode and key
        let etag_of = |md5: String| keys.as_ref().map_or(md5.clone(), |k| k.etag(&md5));
        let mut digest = BodyDigest::new(opts.checksum.clone());
        let (prefix, ended) = read_prefix(&mut body, INLINE_MAX + 1).await?;

        let mut template = VersionMeta {
            version_id: None,
            mod_time: 0,
            size: 0,
            etag: String::new(),
            headers: opts.metadata.headers.clone(),
            user: opts.metadata.user.clone(),
            storage_class: opts.metadata.storage_class,
            checksum: None,
            erasure: erasure_info(k, m, distribution.clone()),
            data_dir: None,
            inline_len: None,
            parts: Vec::new(),
            multipart: false,
            sse: None,
            attrs: Default::default(),
            revision: 0,
            upload: None,
        };
        if let Some(k) = &keys {
            template.set_sse(k.meta.clone());
        }
        let new_attrs = NewAttrs::from_put(&opts);
        let info_of = |v: &VersionMeta| {
            let mut info = v.to_info(bucket.as_str(), key.as_str());
            info.encryption = v.sse.as_ref().map(|s| s.encryption(customer.as_ref()));
            info
        };

        if ended && prefix.len() <= INLINE_MAX {
            // Small object: one block, its shards inline in cairn.meta.
            digest.update(&prefix);
            let out = digest.verify(opts.content_md5.as_ref(), opts.content_length)?;
            let shards = match &keys {
                None => erasure.encode_framed(&prefix),
                Some(k) => erasure.encode_framed(&crate::sse::seal_part(&k.part(1), &prefix)),
            };
            template.size = out.len;
            template.etag = etag_of(out.etag());
            template.checksum = out.checksum;
            template.parts = single_part(out.len, &template.etag);
            let g = self.locks.write(bucket.as_str(), key.as_str()).await?;
            self.check_precondition(bucket, key, opts.precondition.as_ref())
                .await?;
            self.stamp_version(bucket, key, &mut template, new_attrs)
                .await?;
            template.mod_time = crate::replicate::mod_time(&opts);
            let jobs = per_drive_metas(&template, &distribution, Some(&shards), &[]);
            let raised = Raised::of(opts.event.unwrap_or(EventName::Put), &template);
            let how = Commit {
                quorum,
                write_back: opts.write_back,
                fence: g.fence(),
            };
            let commit = self.commit_with(bucket, key, jobs, how);
            self.with_event(bucket, key, raised, !opts.write_back, commit)
                .await?;
            return Ok(info_of(&template));
        }

        let (tmps, digest, size) = self
            .stream_to_tmp(
                prefix,
                body,
                digest,
                erasure,
                distribution.clone(),
                "part.1".into(),
                MAX_PUT_SIZE,
                keys.as_ref().map(|k| k.part(1)),
            )
            .await?;
        let out = match digest.verify(opts.content_md5.as_ref(), opts.content_length) {
            Ok(o) => o,
            Err(e) => {
                self.remove_tmp(tmps).await;
                return Err(e);
            }
        };
        let written = tmps.iter().filter(|t| t.is_some()).count();
        if written < quorum {
            self.remove_tmp(tmps).await;
            return Err(self.write_quorum_error(quorum, written));
        }
        template.size = size;
        template.etag = etag_of(out.etag());
        template.checksum = out.checksum;
        template.parts = single_part(size, &template.etag);
        template.data_dir = Some(new_data_dir());
        let g = self.locks.write(bucket.as_str(), key.as_str()).await?;
        let stamped = match self
            .check_precondition(bucket, key, opts.precondition.as_ref())
            .await
        {
            Ok(()) => {
                self.stamp_version(bucket, key, &mut template, new_attrs)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = stamped {
            self.remove_tmp(tmps).await;
            return Err(e);
        }
        template.mod_time = crate::replicate::mod_time(&opts);
        let raised = Raised::of(opts.event.unwrap_or(EventName::Put), &template);
        let noted = match self
            .outbox_note(bucket, key, raised, !opts.write_back)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                self.remove_tmp(tmps).await;
                return Err(e);
            }
        };
        let jobs = per_drive_metas(&template, &distribution, None, &tmps);
        let how = Commit {
            quorum,
            write_back: opts.write_back,
            fence: g.fence(),
        };
        let res = self.commit_with(bucket, key, jobs, how).await;
        self.outbox_settle(noted, Outcome::of(&res)).await;
        res?;
        Ok(info_of(&template))
    }

    pub(crate) async fn get_object_impl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: GetOptions,
    ) -> ObjectResult<GetObject> {
        let g = self.locks.read(bucket.as_str(), key.as_str()).await?;
        let (version, metas) = self
            .read_current(bucket, key, true, opts.version_id.clone())
            .await?;
        let mut info = version.to_info(bucket.as_str(), key.as_str());
        let keys = match &version.sse {
            None => {
                SseMeta::check_customer(
                    None,
                    opts.sse_customer.as_ref(),
                    (bucket.as_str(), key.as_str()),
                )?;
                None
            }
            Some(s) => {
                info.encryption = Some(s.encryption(opts.sse_customer.as_ref()));
                let k = self
                    .sse_config()
                    .open_keys(
                        s,
                        opts.sse_customer.as_ref(),
                        (bucket.as_str(), key.as_str()),
                    )
                    .await?;
                Some(Arc::new(k))
            }
        };
        opts.conditions.check(&info)?;
        let range = opts.range.map(|r| r.resolve(info.size)).transpose()?;
        let (offset, length) = range.unwrap_or((0, info.size));
        let src = VersionRead {
            version: &version,
            metas: &metas,
            keys: keys.as_ref(),
        };
        let (mut plan, plain) = self.read_plan((bucket, key), &src, offset, length)?;
        // the read lock is kept until the version's files are open
        plan.hold = Some(Box::new(g));
        let body = match keys {
            None => {
                verified_start(stream(plan), length, |e| {
                    ObjectError::internal(format!("read {bucket}/{key}: {e}"))
                })
                .await?
            }
            // the first package is opened before the answer: a damaged
            // object fails with an error status instead of a cut-off body
            Some(k) => {
                verified_start(
                    decrypt(stream(plan), k, plain, offset, length),
                    length,
                    |e| ObjectError::DecryptFailed {
                        bucket: bucket.to_string(),
                        key: key.to_string(),
                        reason: e.to_string(),
                    },
                )
                .await?
            }
        };
        Ok(GetObject { info, range, body })
    }

    /// The read of `[offset, offset + length)` (plaintext) of `version`,
    /// from the drives whose records `metas` agree on it; with `keys`,
    /// the stored range of whole packages and the parts as the decrypting
    /// stream opens them. Queues a heal when an online drive lacks it.
    pub(crate) fn read_plan(
        &self,
        (bucket, key): (&BucketName, &ObjectKey),
        src: &VersionRead<'_>,
        offset: u64,
        length: u64,
    ) -> ObjectResult<(ReadPlan, Vec<PlainPart>)> {
        let VersionRead {
            version,
            metas,
            keys,
        } = *src;
        let erasure = Arc::new(
            Erasure::new(version.erasure.data, version.erasure.parity)
                .map_err(ObjectError::internal)?,
        );
        let mut sources: Vec<Option<ShardSource>> = vec![None; erasure.total_shards()];
        for (drive, held) in self.drives.iter().zip(metas) {
            let Some(held) = held else { continue };
            let v = held.version();
            let idx = v.erasure.index;
            let Some(slot) = sources.get_mut(idx) else {
                continue;
            };
            *slot = match &v.data_dir {
                Some(_) => drive
                    .object_dir(bucket.as_str(), key.as_str())
                    .ok()
                    .map(|dir| ShardSource::Dir(dir, drive.io_arc())),
                None => held
                    .inline()
                    .map(|b| ShardSource::Inline(bytes::Bytes::copy_from_slice(b))),
            };
        }
        // A drive that is online but lacks this version gets healed.
        if self
            .drives
            .iter()
            .zip(metas)
            .any(|(d, m)| m.is_none() && d.is_online())
        {
            self.queue_heal(bucket.as_str(), key.as_str());
        }
        let (b, k) = (bucket.to_string(), key.to_string());
        let heal = self.heal_hook();
        // Encrypted: read the whole packages that hold the range, stored
        // part sizes, and open them on the way out.
        let plain = PlainPart::of(version);
        let (stored_offset, stored_length) = match &keys {
            Some(k) => stored_range(k.meta.cipher, &plain, offset, length),
            None => (offset, length),
        };
        let parts = crate::reader::PlanPart::of(version);
        let stats = self.stats.clone();
        let plan = ReadPlan {
            bucket: bucket.to_string(),
            key: key.to_string(),
            erasure,
            block_size: version.erasure.block_size,
            sources,
            parts,
            offset: stored_offset,
            length: stored_length,
            on_bad_shard: Some(Arc::new(move |shard, why| {
                tracing::warn!(bucket = %b, key = %k, shard, why, "bad shard served around; queued for healing");
                heal(&b, &k, why);
            })),
            hold: None,
            on_failed: Some(Arc::new(move |e| {
                stats.unrecoverable_reads.fetch_add(1, Relaxed);
                match e {
                    ObjectError::DataLost {
                        bucket,
                        key,
                        part,
                        block,
                        detail,
                    } => {
                        tracing::error!(%bucket, %key, part, block, %detail, "object data lost: a block cannot be rebuilt, the read fails")
                    }
                    e => tracing::error!(error = %e, "object read failed"),
                }
            })),
        };
        Ok((plan, plain))
    }

    /// The version a GET or HEAD wants (the latest, or one by id),
    /// telling a missing bucket from a missing key only when the key is
    /// missing (saves a round over the drives per read); a delete marker
    /// is an error, as S3 has it.
    async fn read_current(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        with_inline: bool,
        version_id: Option<Option<String>>,
    ) -> ObjectResult<(VersionMeta, Vec<Option<Held>>)> {
        let by_version = version_id.is_some();
        let read = match self.cached_latest(bucket, key, by_version) {
            Some(found) => Ok(found),
            None => {
                // only whole reads are kept: a GET needs the inline shards
                let ticket = (!by_version && with_inline)
                    .then(|| self.versions.ticket(bucket.as_str(), key.as_str()))
                    .flatten();
                let read = self
                    .read_version(bucket, key, with_inline, Want::from_request(version_id))
                    .await;
                if let (Some(t), Ok(found)) = (ticket, &read)
                    && crate::vcache::complete(&found.1)
                {
                    self.versions
                        .put(t, bucket.as_str(), key.as_str(), found.clone());
                }
                read
            }
        };
        match read {
            Err(ObjectError::NoSuchKey { .. }) => {
                self.check_bucket(bucket).await?;
                Err(ObjectError::no_such_key(bucket, key))
            }
            Ok((v, _)) if v.attrs.delete_marker => Err(ObjectError::DeleteMarker {
                bucket: bucket.to_string(),
                key: key.to_string(),
                version_id: v.version_id.clone(),
                by_version,
                last_modified: Some(v.last_modified()),
            }),
            r => r,
        }
    }

    /// The latest version of `bucket/key` as the last read of every
    /// drive found it (vcache.rs), while every drive it came from is
    /// online; None for a read by version id.
    fn cached_latest(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        by_version: bool,
    ) -> Option<crate::vcache::Found> {
        if by_version {
            return None;
        }
        let found = self.versions.get(bucket.as_str(), key.as_str())?;
        let online = (self.drives.iter().zip(&found.1)).all(|(d, h)| h.is_none() || d.is_online());
        online.then_some(found)
    }

    /// Forgets what this node keeps of `bucket/key`'s records (vcache.rs):
    /// for whatever changed them without going through this set (a peer's
    /// change event).
    pub fn forget_cached(&self, bucket: &str, key: &str) {
        self.versions.invalidate(bucket, key);
    }

    pub(crate) async fn head_object_impl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
    ) -> ObjectResult<ObjectInfo> {
        let g = self.locks.read(bucket.as_str(), key.as_str()).await?;
        let (version, _) = self
            .read_current(bucket, key, false, opts.version_id.clone())
            .await?;
        drop(g);
        self.head_object_impl_of(bucket, key, opts, &version)
    }

    /// What a HEAD of `version` answers: its info, after the SSE-C key and
    /// the conditions are checked.
    fn head_object_impl_of(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
        version: &VersionMeta,
    ) -> ObjectResult<ObjectInfo> {
        let mut info = version.to_info(bucket.as_str(), key.as_str());
        if !opts.attributes_only {
            SseMeta::check_customer(
                version.sse.as_ref(),
                opts.sse_customer.as_ref(),
                (bucket.as_str(), key.as_str()),
            )?;
        }
        if let Some(s) = &version.sse {
            info.encryption = Some(s.encryption(opts.sse_customer.as_ref()));
        }
        opts.conditions.check(&info)?;
        Ok(info)
    }

    /// GetObjectAttributes' part list: the version's parts with their
    /// sizes and checksums (`None` for a single-PUT object).
    pub(crate) async fn object_parts_impl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
    ) -> ObjectResult<(ObjectInfo, Option<Vec<cairn_api::PartInfo>>)> {
        let g = self.locks.read(bucket.as_str(), key.as_str()).await?;
        let (version, _) = self
            .read_current(bucket, key, false, opts.version_id.clone())
            .await?;
        drop(g);
        let info = self.head_object_impl_of(bucket, key, opts, &version)?;
        let parts = version.multipart.then(|| {
            version
                .parts
                .iter()
                .map(|p| cairn_api::PartInfo {
                    part_number: p.number,
                    etag: p.etag.clone(),
                    size: p.size,
                    last_modified: info.last_modified,
                    checksum: p.checksum.clone(),
                })
                .collect()
        });
        Ok((info, parts))
    }
}

impl ErasureSet {
    /// Renames an object without copying its data: on every drive the
    /// data dir moves under the new key and the metas follow. Both keys
    /// are locked. The object keeps its ETag, mtime and metadata.
    pub(crate) async fn rename_object_impl(
        &self,
        bucket: &BucketName,
        src: &ObjectKey,
        dst: &ObjectKey,
        replace: bool,
    ) -> ObjectResult<ObjectInfo> {
        if src == dst {
            return self
                .head_object_impl(bucket, src, &GetOptions::default())
                .await;
        }
        self.check_current_mutable(bucket, src).await?;
        if replace {
            self.check_current_mutable(bucket, dst).await?;
        }
        if self.bucket_config(bucket).await?.versioning.marks_deletes() {
            // versions stay where they are: the current one is copied,
            // and the source gets a delete marker
            return self.rename_versioned(bucket, src, dst, replace).await;
        }
        let _g = self
            .locks
            .write_two(bucket.as_str(), src.as_str(), dst.as_str())
            .await?;
        let (version, _) = self.read_current(bucket, src, false, None).await?;
        if !replace && self.current_exists(bucket, dst).await? {
            return Err(ObjectError::PreconditionFailed);
        }
        let moved_from = self
            .outbox_note(bucket, src, Raised::removal(None), true)
            .await?;
        let moved_to = self
            .outbox_note(bucket, dst, Raised::of(EventName::Put, &version), true)
            .await?;
        let (b, s, d) = (bucket.to_string(), src.to_string(), dst.to_string());
        let res = self
            .on_drives(move |drive| match drive.rename_object(&b, &s, &d) {
                Ok(Some(old)) => {
                    // what the new key replaced leaves through the trash
                    drive.discard(old);
                    Lookup::Found(())
                }
                Ok(None) => Lookup::Missing,
                Err(e) => {
                    tracing::warn!(drive = %drive.root.display(), error = %e, "rename failed on drive");
                    Lookup::Failed
                }
            })
            .await;
        let wq = write_quorum(version.erasure.data, version.erasure.parity);
        let moved = res.iter().filter(|r| matches!(r, Lookup::Found(_))).count();
        self.changed(bucket.as_str(), src.as_str());
        self.changed(bucket.as_str(), dst.as_str());
        let outcome = match moved {
            0 => Outcome::NotDone,
            m if m < wq => Outcome::Unknown,
            _ => Outcome::Committed,
        };
        self.outbox_settle(moved_from, outcome).await;
        self.outbox_settle(moved_to, outcome).await;
        if moved < wq {
            // Drives that missed the move keep the old name; heal and the
            // read quorum sort it out, as for any write that missed quorum.
            return Err(self.write_quorum_error(wq, moved));
        }
        Ok(version.to_info(bucket.as_str(), dst.as_str()))
    }
}

impl ErasureSet {
    /// A copy of an object onto itself with replaced metadata, without
    /// touching its data: under the object's write lock every drive
    /// rewrites its `cairn.meta` with the new headers, user metadata and
    /// mod time, keeping its data dir (or inline shard). `None` when a
    /// streamed copy must do it (metadata copied, or another storage class:
    /// another layout).
    pub(crate) async fn replace_metadata_impl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &CopyOptions,
    ) -> ObjectResult<Option<ObjectInfo>> {
        let MetadataDirective::Replace(metadata) = &opts.metadata else {
            return Ok(None);
        };
        let class = opts.storage_class.unwrap_or(metadata.storage_class);
        // the encryption the copy gets: as asked, else the bucket default
        let target = match &opts.sse {
            Some(r) => Some(r.clone()),
            None => self.bucket_encryption(bucket).await?.map(|d| d.request()),
        };
        let default_key = self.sse_config().default_key().map(str::to_owned);
        if self.bucket_config(bucket).await?.worm {
            return Err(ObjectError::Worm {
                bucket: bucket.to_string(),
            });
        }
        // a conditional copy holds the key as a conditional PUT does (the
        // claim goes if a streamed copy takes over: that one claims it)
        let _claim = self
            .locks
            .in_flight
            .claim(bucket, key, opts.precondition.as_ref())?;
        let _g = self.locks.write(bucket.as_str(), key.as_str()).await?;
        let (version, _) = self
            .read_current(bucket, key, false, opts.source_version_id.clone())
            .await?;
        // a versioned object gets a new version from a copy: stream it
        let versioned = self
            .bucket_config(bucket)
            .await?
            .versioning
            .keeps_versions();
        if class != version.storage_class || version.version_id.is_some() || versioned {
            return Ok(None);
        }
        SseMeta::check_customer(
            version.sse.as_ref(),
            opts.source_sse_customer.as_ref(),
            (bucket.as_str(), key.as_str()),
        )?;
        // another encryption than the current one rewrites the data
        let same_encryption = match (&version.sse, &target) {
            _ if opts.keep_encryption && opts.sse.is_none() => true,
            (None, None) => true,
            (Some(s), Some(r)) => s.same_as(r, default_key.as_deref()),
            _ => false,
        };
        if !same_encryption {
            return Ok(None);
        }
        opts.source_conditions
            .check(&version.to_info(bucket.as_str(), key.as_str()))
            .map_err(cairn_api::layer::copy_condition_error)?;
        // the destination's condition, judged under the write lock held to
        // the rewrite (the source read above may be another version)
        self.check_precondition(bucket, key, opts.precondition.as_ref())
            .await?;
        crate::versions::locked_error(bucket, key, version.attrs.check_delete(self.now(), false))?;
        let mut template = version.clone();
        // another record of the same data: not what the upload answered
        template.upload = None;
        template.headers = metadata.headers.clone();
        template.user = metadata.user.clone();
        if let Some(t) = &opts.tags {
            template.attrs.tags = t.clone();
        }
        if let Some(a) = &opts.acl {
            template.attrs.acl = a.clone();
        }
        // a new version record: drives that miss it disagree, and heal
        template.mod_time = now_nanos().max(version.mod_time + 1);
        let raised = Raised::of(EventName::Copy, &template);
        let rewrite = self.rewrite_version(bucket, key, &version, &template);
        self.with_event(bucket, key, raised, true, rewrite).await?;
        let mut info = template.to_info(bucket.as_str(), key.as_str());
        if let Some(s) = &template.sse {
            info.encryption = Some(s.encryption(opts.source_sse_customer.as_ref()));
        }
        Ok(Some(info))
    }

    /// Replaces the record of `version` with `template` on every drive
    /// that holds it (same data dir or inline shard), under the caller's
    /// write lock; needs a write quorum. Drives that miss it get healed.
    pub(crate) async fn rewrite_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version: &VersionMeta,
        template: &VersionMeta,
    ) -> ObjectResult<()> {
        let (b, k) = (bucket.to_string(), key.to_string());
        let (want, new) = (version.clone(), template.clone());
        let res = self
            .on_drives(move |d| {
                let old = match d.read_meta_for(&b, &k, true, Some(want.version_id.as_deref())) {
                    Ok(Some(m)) => m,
                    Ok(None) => return Lookup::Missing,
                    Err(_) => return Lookup::Failed,
                };
                let Some(at) = old.position(want.version_id.as_deref()) else {
                    return Lookup::Missing;
                };
                let Some(cur) = old.versions.get(at) else {
                    return Lookup::Missing;
                };
                // only a drive holding the version read above is updated
                if cur.identity() != want.identity() {
                    return Lookup::Failed;
                }
                let mut v = new.clone();
                v.erasure.index = cur.erasure.index;
                v.inline_len = cur.inline_len;
                let inline = old.inline_of(at).map(<[u8]>::to_vec).unwrap_or_default();
                let meta = ObjectMeta::single(v, inline);
                match d.commit_version(&b, &k, meta, None) {
                    Ok(freed) => {
                        // the replaced record names the same files: none is
                        // freed unless the new record dropped some
                        d.discard(freed);
                        Lookup::Found(())
                    }
                    Err(e) => {
                        tracing::warn!(drive = %d.root.display(), bucket = %b, key = %k, error = %e,
                            "metadata update failed on drive");
                        Lookup::Failed
                    }
                }
            })
            .await;
        let (updated, _) = count(&res);
        self.changed(bucket.as_str(), key.as_str());
        let wq = write_quorum(version.erasure.data, version.erasure.parity);
        if updated < wq {
            self.queue_heal(bucket.as_str(), key.as_str());
            return Err(self.write_quorum_error(wq, updated));
        }
        if updated < res.len() {
            // a drive that missed the new record is stale: heal it
            self.queue_heal(bucket.as_str(), key.as_str());
        }
        Ok(())
    }
}

/// A read range up to this long is read whole (and held) before the
/// answer starts, so that damage anywhere in it is the request's error (a
/// 500) and not a body cut short; a longer one has its first block read.
/// Damage found later ends the body with an error, which aborts the
/// connection (the client sees an incomplete body, never a short one).
pub(crate) const VERIFY_AHEAD: u64 = 4 << 20;

/// Reads the start of a body (see [`VERIFY_AHEAD`]) so that a failure
/// there becomes the request's error; what was read is put back in front.
/// An error from the read pipeline is its `ObjectError`, any other goes
/// through `other`.
async fn verified_start(
    mut body: ByteStream,
    length: u64,
    other: impl FnOnce(std::io::Error) -> ObjectError,
) -> ObjectResult<ByteStream> {
    use futures::StreamExt as _;
    // the first chunk comes once its whole block is rebuilt
    let want = if length <= VERIFY_AHEAD { length } else { 1 };
    let mut held = Vec::new();
    let mut got = 0u64;
    loop {
        match body.next().await {
            None if got < want => {
                return Err(ObjectError::internal(format!(
                    "the body ended after {got} of {want} bytes"
                )));
            }
            None => return Ok(Box::pin(futures::stream::iter(held))),
            Some(Ok(chunk)) => {
                got += chunk.len() as u64;
                held.push(Ok(chunk));
                if got >= want.max(1) {
                    break;
                }
            }
            Some(Err(e)) => return Err(crate::reader::object_error(e).unwrap_or_else(other)),
        }
    }
    Ok(Box::pin(futures::stream::iter(held).chain(body)))
}

fn read_bucket_created(d: &crate::drive::Drive, bucket: &str) -> Option<OffsetDateTime> {
    let m = read_bucket_meta(d, bucket)?;
    OffsetDateTime::from_unix_timestamp_nanos(m.created).ok()
}

pub(crate) fn read_bucket_meta(d: &crate::drive::Drive, bucket: &str) -> Option<BucketMeta> {
    let b = d.io().read(&d.bucket_config_file(bucket).ok()?).ok()?;
    serde_json::from_slice(&b).ok()
}
