//! `ObjectLayer`: the one boundary between the fronts and the stores.

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt as _;

use crate::bucketcfg::{BucketChange, BucketConfig, MakeBucketOptions, VersionChange};
use crate::error::{ObjectError, ObjectResult};
use crate::names::{BucketName, ObjectKey};
use crate::sse::BucketEncryption;
use crate::types::{
    BucketInfo, ByteStream, CompletePart, Conditions, CopyOptions, DeleteResult, GetObject,
    GetOptions, ListOptions, ListPage, ListPartsPage, ListUploadsOptions, ListUploadsPage,
    MetadataDirective, ObjectInfo, PartInfo, PartOptions, PutOptions,
};
use crate::versioning::{DeleteOptions, DeleteOutcome, ListVersionsOptions, ListVersionsPage};

/// Storage as every front sees it. Implementations: the erasure set in
/// `cairn-core`, gateway backends, and `MemLayer` (the reference model).
#[async_trait]
pub trait ObjectLayer: Send + Sync + 'static {
    /// What this layer cannot do (gateway backends have gaps).
    fn capabilities(&self) -> crate::caps::Capabilities {
        crate::caps::Capabilities::FULL
    }

    async fn make_bucket(&self, bucket: &BucketName) -> ObjectResult<()>;
    async fn head_bucket(&self, bucket: &BucketName) -> ObjectResult<BucketInfo>;
    async fn list_buckets(&self) -> ObjectResult<Vec<BucketInfo>>;
    /// Fails with `BucketNotEmpty` while the bucket holds objects.
    async fn delete_bucket(&self, bucket: &BucketName) -> ObjectResult<()>;

    /// Changes to objects from now on, made through any front; `None` when
    /// the store does not publish them (callers then rely on TTLs).
    fn subscribe_changes(&self) -> Option<crate::changes::ChangeReceiver> {
        None
    }

    /// Makes every write-back write (`PutOptions::write_back`) done so far
    /// durable: the file fronts' fsync, fsyncdir and unmount. Layers that
    /// make every write durable before answering have nothing to do.
    async fn sync(&self) -> ObjectResult<()> {
        Ok(())
    }

    /// Total and free capacity, if the store knows it.
    async fn capacity(&self) -> ObjectResult<Option<crate::types::Capacity>> {
        Ok(None)
    }

    /// The bucket's default encryption, if it has one.
    async fn get_bucket_encryption(
        &self,
        bucket: &BucketName,
    ) -> ObjectResult<Option<BucketEncryption>> {
        self.head_bucket(bucket).await?;
        Ok(None)
    }

    /// Sets (or with `None` removes) the bucket's default encryption.
    async fn put_bucket_encryption(
        &self,
        bucket: &BucketName,
        config: Option<BucketEncryption>,
    ) -> ObjectResult<()> {
        self.head_bucket(bucket).await?;
        match config {
            None => Ok(()),
            Some(_) => Err(ObjectError::NotImplemented {
                what: "server-side encryption on this backend",
            }),
        }
    }

    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: ByteStream,
        opts: PutOptions,
    ) -> ObjectResult<ObjectInfo>;

    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: GetOptions,
    ) -> ObjectResult<GetObject>;

    async fn head_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        conditions: &Conditions,
    ) -> ObjectResult<ObjectInfo>;

    /// `head_object` with the options of a GET (conditions and the SSE-C
    /// key an encrypted object needs); the range is ignored. Backends
    /// without encryption need not override it.
    async fn head_object_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.head_object(bucket, key, &opts.conditions).await
    }

    /// Deleting a key that does not exist succeeds, as in S3.
    /// Part `part_number` of an object (S3's `partNumber` on GET/HEAD): the
    /// object's info (conditions and SSE-C key checked as for a HEAD) and
    /// the part's `(offset, length)`, from `object_parts`. A single-PUT
    /// object has one part, the whole object; a number past the parts is
    /// `InvalidPartNumber`; a layer that cannot list a multipart object's
    /// parts answers NotImplemented.
    async fn part_range(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
        part_number: u32,
    ) -> ObjectResult<(ObjectInfo, (u64, u64))> {
        let (info, parts) = match self.object_parts(bucket, key, opts).await {
            Err(ObjectError::NotImplemented { .. }) => {
                return Err(ObjectError::NotImplemented {
                    what: "partNumber reads of multipart objects",
                });
            }
            found => found?,
        };
        let sizes: Vec<u64> = match parts {
            Some(p) => p.iter().map(|p| p.size).collect(),
            None => vec![info.size],
        };
        let range = crate::multipart::part_range_of(&sizes, part_number)?;
        Ok((info, range))
    }

    /// The parts of an object (S3's GetObjectAttributes `ObjectParts`):
    /// its info (conditions and SSE-C key checked as for a HEAD) and, for
    /// a multipart object, each part's number, size and checksum; `None`
    /// for an object stored in one piece. This default knows no part
    /// sizes: NotImplemented for multipart objects.
    async fn object_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
    ) -> ObjectResult<(ObjectInfo, Option<Vec<PartInfo>>)> {
        let info = self.head_object_with(bucket, key, opts).await?;
        match info.parts_count {
            None => Ok((info, None)),
            Some(_) => Err(ObjectError::NotImplemented {
                what: "the part list of multipart objects on this backend",
            }),
        }
    }

    async fn delete_object(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()>;

    /// A delete as S3 has it with versioning: of one version, or of the
    /// key's current view (a delete marker in a versioned bucket). Layers
    /// without versions need not override it.
    async fn delete_object_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: DeleteOptions,
    ) -> ObjectResult<DeleteOutcome> {
        match opts.version_id {
            None | Some(None) => {
                self.delete_object(bucket, key).await?;
                Ok(DeleteOutcome::default())
            }
            Some(Some(_)) => Err(ObjectError::NotImplemented {
                what: "object versions on this backend",
            }),
        }
    }

    async fn delete_objects(
        &self,
        bucket: &BucketName,
        items: Vec<(String, DeleteOptions)>,
    ) -> Vec<DeleteResult> {
        let mut out = Vec::with_capacity(items.len());
        for (key, opts) in items {
            let result = match ObjectKey::new(key.clone()) {
                Ok(k) => self.delete_object_with(bucket, &k, opts).await,
                Err(e) => Err(e),
            };
            out.push(DeleteResult { key, result });
        }
        out
    }

    /// Refuses (`ObjectLocked`, `Worm`) when the key's current version may
    /// not be changed or removed by a caller without a governance bypass:
    /// the file fronts ask before writing, truncating, renaming, deleting
    /// or changing attributes of a file.
    async fn check_mutable(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()> {
        let _ = (bucket, key);
        Ok(())
    }

    /// Creates a bucket with options (object lock).
    async fn make_bucket_with(
        &self,
        bucket: &BucketName,
        opts: MakeBucketOptions,
    ) -> ObjectResult<()> {
        if opts.object_lock {
            return Err(ObjectError::NotImplemented {
                what: "object lock on this backend",
            });
        }
        self.make_bucket(bucket).await
    }

    /// Versioning, object lock, WORM, tags and lifecycle of a bucket.
    async fn get_bucket_config(&self, bucket: &BucketName) -> ObjectResult<BucketConfig> {
        self.head_bucket(bucket).await?;
        Ok(BucketConfig::default())
    }

    async fn update_bucket_config(
        &self,
        bucket: &BucketName,
        change: BucketChange,
    ) -> ObjectResult<()> {
        self.head_bucket(bucket).await?;
        Err(ObjectError::NotImplemented {
            what: match change {
                BucketChange::Versioning(_) => "versioning on this backend",
                BucketChange::ObjectLock(_) | BucketChange::Worm => "object lock on this backend",
                BucketChange::Tags(_) => "bucket tagging on this backend",
                BucketChange::Lifecycle(_) => "lifecycle rules on this backend",
                BucketChange::Policy(_) => "bucket policies on this backend",
                BucketChange::Acl(_) => "bucket ACLs on this backend",
                BucketChange::PublicAccessBlock(_) => "public access blocks on this backend",
                BucketChange::Ownership(_) => "ownership controls on this backend",
                BucketChange::Cors(_) => "CORS rules on this backend",
                BucketChange::Notification(_) => "event notifications on this backend",
                BucketChange::Replication(_) => "replication on this backend",
            },
        })
    }

    /// Changes retention, legal hold or tags of a version (the current
    /// one when `version_id` is `None`); returns the version as it is now.
    async fn update_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: Option<Option<String>>,
        change: VersionChange,
    ) -> ObjectResult<ObjectInfo> {
        let _ = (bucket, key, version_id);
        Err(ObjectError::NotImplemented {
            what: match change {
                VersionChange::Tags(_) => "object tagging on this backend",
                VersionChange::Acl(_) => "object ACLs on this backend",
                _ => "object lock on this backend",
            },
        })
    }

    /// Records a version's replication status (the replication service,
    /// after a copy landed or failed): the version's record is rewritten,
    /// its mod time and everything else kept, and no event is raised.
    async fn set_replication_status(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: Option<String>,
        status: crate::replication::ReplicationStatus,
    ) -> ObjectResult<()> {
        let _ = (bucket, key, version_id, status);
        Err(ObjectError::NotImplemented {
            what: "replication on this backend",
        })
    }

    /// Every version and delete marker, newest first per key.
    async fn list_object_versions(
        &self,
        bucket: &BucketName,
        opts: ListVersionsOptions,
    ) -> ObjectResult<ListVersionsPage> {
        let _ = (bucket, opts);
        Err(ObjectError::NotImplemented {
            what: "object versions on this backend",
        })
    }

    /// Streams the source into the destination ([`copy_via_stream`]);
    /// implementations may do better (a metadata-only copy onto itself,
    /// say) and call `copy_via_stream` for the rest.
    async fn copy_object(
        &self,
        src_bucket: &BucketName,
        src_key: &ObjectKey,
        dst_bucket: &BucketName,
        dst_key: &ObjectKey,
        opts: CopyOptions,
    ) -> ObjectResult<ObjectInfo> {
        copy_via_stream(self, src_bucket, src_key, dst_bucket, dst_key, opts).await
    }

    async fn list_objects(&self, bucket: &BucketName, opts: ListOptions) -> ObjectResult<ListPage>;

    /// A new version of `key`: its base (`opts.base`, or the current
    /// version) with `changes` written over it and cut or extended (with
    /// zeros) to `opts.size`. The file fronts' commit of random writes.
    /// Stores that share unchanged data between versions write only the
    /// changed parts; this default rewrites the whole object
    /// ([`patch_via_stream`]).
    async fn patch_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        changes: crate::patch::PatchStream,
        opts: crate::patch::PatchOptions,
    ) -> ObjectResult<ObjectInfo> {
        patch_via_stream(self, bucket, key, changes, opts).await
    }

    /// Moves an object to another key of the same bucket, metadata and
    /// all; with `replace` false an existing `dst` is refused with
    /// `PreconditionFailed`. This default copies then deletes (the copy is
    /// whole before the source goes); stores override it with a move that
    /// copies no data.
    async fn rename_object(
        &self,
        bucket: &BucketName,
        src: &ObjectKey,
        dst: &ObjectKey,
        replace: bool,
    ) -> ObjectResult<ObjectInfo> {
        rename_via_copy(self, bucket, src, dst, replace).await
    }

    async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
    ) -> ObjectResult<String>;

    async fn upload_part(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number: u32,
        body: ByteStream,
        opts: PartOptions,
    ) -> ObjectResult<PartInfo>;

    /// Copies a range of an existing object into a part; `part` carries
    /// the upload's SSE-C key, if any.
    #[allow(clippy::too_many_arguments)]
    async fn upload_part_copy(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number: u32,
        src_bucket: &BucketName,
        src_key: &ObjectKey,
        src: GetOptions,
        part: PartOptions,
    ) -> ObjectResult<PartInfo> {
        let obj = self
            .get_object(src_bucket, src_key, src)
            .await
            .map_err(copy_condition_error)?;
        let len = obj.range.map_or(obj.info.size, |(_, l)| l);
        let opts = PartOptions {
            content_length: Some(len),
            content_md5: None,
            checksum: None,
            sse_customer: part.sse_customer,
        };
        self.upload_part(bucket, key, upload_id, part_number, obj.body, opts)
            .await
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number_marker: Option<u32>,
        max_parts: usize,
    ) -> ObjectResult<ListPartsPage>;

    /// Validates the list (ascending, uploaded, ETags match, every part but
    /// the last >= 5 MiB) and makes the object visible.
    async fn complete_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: Vec<CompletePart>,
    ) -> ObjectResult<ObjectInfo> {
        self.complete_multipart_upload_with(
            bucket,
            key,
            upload_id,
            parts,
            crate::conditional::CompleteOptions::default(),
        )
        .await
    }

    /// `complete_multipart_upload` with options: a precondition on the
    /// key's current object, checked in the same step as the commit.
    async fn complete_multipart_upload_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: Vec<CompletePart>,
        opts: crate::conditional::CompleteOptions,
    ) -> ObjectResult<ObjectInfo>;

    async fn abort_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> ObjectResult<()>;

    async fn list_multipart_uploads(
        &self,
        bucket: &BucketName,
        opts: ListUploadsOptions,
    ) -> ObjectResult<ListUploadsPage>;
}

/// A rename as a copy (metadata, encryption and data kept) and a delete
/// of the source: for layers that cannot move an object in one commit.
/// Not atomic: a crash between the two leaves both keys.
pub async fn rename_via_copy<L: ObjectLayer + ?Sized>(
    layer: &L,
    bucket: &BucketName,
    src: &ObjectKey,
    dst: &ObjectKey,
    replace: bool,
) -> ObjectResult<ObjectInfo> {
    if !replace {
        match layer.head_object(bucket, dst, &Conditions::default()).await {
            Ok(_) => return Err(ObjectError::PreconditionFailed),
            Err(ObjectError::NoSuchKey { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let info = layer
        .copy_object(
            bucket,
            src,
            bucket,
            dst,
            CopyOptions {
                metadata: MetadataDirective::Copy,
                keep_encryption: true,
                ..Default::default()
            },
        )
        .await?;
    layer.delete_object(bucket, src).await?;
    Ok(info)
}

/// The default `copy_object`: a GET of the source streamed into a PUT of
/// the destination (metadata copied or replaced, the storage class
/// overridden if asked). Public so that a layer overriding `copy_object`
/// for some cases can still copy the others this way.
pub async fn copy_via_stream<L: ObjectLayer + ?Sized>(
    layer: &L,
    src_bucket: &BucketName,
    src_key: &ObjectKey,
    dst_bucket: &BucketName,
    dst_key: &ObjectKey,
    opts: CopyOptions,
) -> ObjectResult<ObjectInfo> {
    let src = layer
        .get_object(
            src_bucket,
            src_key,
            GetOptions {
                version_id: opts.source_version_id.clone(),
                range: None,
                conditions: opts.source_conditions.clone(),
                sse_customer: opts.source_sse_customer.clone(),
                ..Default::default()
            },
        )
        .await
        .map_err(copy_condition_error)?;
    let mut metadata = match opts.metadata {
        MetadataDirective::Copy => src.info.metadata(),
        MetadataDirective::Replace(m) => m,
    };
    if let Some(class) = opts.storage_class {
        metadata.storage_class = class;
    }
    let put = PutOptions {
        metadata,
        content_length: Some(src.info.size),
        content_md5: None,
        checksum: copy_checksum(opts.checksum, src.info.checksum.as_ref()),
        tags: opts.tags.unwrap_or_else(|| src.info.attrs.tags.clone()),
        retention: None,
        legal_hold: false,
        acl: opts.acl.unwrap_or_else(|| src.info.attrs.acl.clone()),
        write_back: false,
        precondition: opts.precondition,
        event: Some(crate::notify::EventName::Copy),
        replica: None,
        sse: opts.sse.or_else(|| {
            if !opts.keep_encryption {
                return None;
            }
            same_encryption(&src.info, opts.source_sse_customer.clone())
        }),
    };
    layer.put_object(dst_bucket, dst_key, src.body, put).await
}

/// The checksum a copy computes: the algorithm asked for, else the
/// source's. A whole-object source checksum is also checked against the
/// bytes copied; a composite one (`-N`, of parts) cannot be, and the copy,
/// one piece, gets the whole-object checksum of the same algorithm.
fn copy_checksum(
    asked: Option<crate::checksum::ChecksumAlgorithm>,
    source: Option<&crate::checksum::Checksum>,
) -> Option<crate::checksum::ChecksumRequest> {
    let request = |algorithm, expected| crate::checksum::ChecksumRequest {
        algorithm,
        expected,
        trailer: None,
        full_object: false,
    };
    match (asked, source) {
        (Some(a), Some(s)) if a == s.algorithm && !s.value.contains('-') => {
            Some(request(a, Some(s.value.clone())))
        }
        (Some(a), _) => Some(request(a, None)),
        (None, Some(s)) if s.value.contains('-') => Some(request(s.algorithm, None)),
        (None, Some(s)) => Some(request(s.algorithm, Some(s.value.clone()))),
        (None, None) => None,
    }
}

/// The SSE request that encrypts a new object as `info` is encrypted
/// (`customer`: the SSE-C key it was read with).
fn same_encryption(
    info: &ObjectInfo,
    customer: Option<crate::sse::CustomerKey>,
) -> Option<crate::sse::SseRequest> {
    info.encryption.as_ref().and_then(|e| match e {
        crate::sse::Encryption::S3 => Some(crate::sse::SseRequest::S3),
        crate::sse::Encryption::Kms { key_id } => Some(crate::sse::SseRequest::Kms {
            key_id: Some(key_id.clone()),
            context: Default::default(),
        }),
        // an SSE-C source was read with its key: keep that key
        crate::sse::Encryption::Customer { .. } => customer.map(crate::sse::SseRequest::Customer),
    })
}

/// The default `patch_object`: the current object (which must be the
/// patch's base, when it names one) and the changes merged into a stream
/// and PUT as a new version, keeping the base's tags, ACL and encryption.
/// Costs a whole rewrite; not atomic against a concurrent writer between
/// its read and its write (stores that share data do better).
pub async fn patch_via_stream<L: ObjectLayer + ?Sized>(
    layer: &L,
    bucket: &BucketName,
    key: &ObjectKey,
    changes: crate::patch::PatchStream,
    opts: crate::patch::PatchOptions,
) -> ObjectResult<ObjectInfo> {
    let get = GetOptions {
        conditions: crate::types::Conditions {
            if_match: opts.base.as_ref().map(|b| format!("\"{}\"", b.etag)),
            ..Default::default()
        },
        ..Default::default()
    };
    let (base, base_len, keep) = match layer.get_object(bucket, key, get).await {
        Ok(g) => {
            let keep = PutOptions {
                tags: g.info.attrs.tags.clone(),
                acl: g.info.attrs.acl.clone(),
                sse: same_encryption(&g.info, None),
                ..Default::default()
            };
            (g.body, g.info.size, keep)
        }
        Err(ObjectError::NoSuchKey { .. }) if opts.base.is_none() => (
            crate::types::bytes_stream(Bytes::new()),
            0,
            PutOptions::default(),
        ),
        Err(ObjectError::NoSuchKey { .. }) => return Err(ObjectError::PreconditionFailed),
        Err(e) => return Err(e),
    };
    let body = crate::patch::merged_stream(base, base_len, changes, opts.size);
    let put = PutOptions {
        metadata: opts.metadata,
        content_length: Some(opts.size),
        write_back: opts.write_back,
        ..keep
    };
    layer.put_object(bucket, key, body, put).await
}

/// For copies, a failed `if-none-match`/`if-modified-since` is a 412, not a 304.
pub fn copy_condition_error(e: ObjectError) -> ObjectError {
    match e {
        ObjectError::NotModified { .. } => ObjectError::PreconditionFailed,
        e => e,
    }
}

/// Reads a whole stream into memory. For tests and small bodies only.
pub async fn collect_stream(mut s: ByteStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}
