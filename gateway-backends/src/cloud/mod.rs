//! Cloud backends written against the `object_store` traits: any
//! S3-compatible service and Azure Blob through `object_store` itself,
//! GCS through OpenDAL's JSON-API service under the same traits (`gcs/`).
//! Cairn buckets are the remote buckets (or containers) named at start
//! (or, for S3 without names, listed then: `s3list.rs`); objects map 1:1
//! to remote objects with their headers and user metadata.
//!
//! `object_store` has no bucket API, no folder-marker keys (paths cannot
//! end in `/`) and no server-side encryption passthrough: those are the
//! declared gaps. Multipart uploads map onto the remote's own (its
//! `MultipartStore`), with part numbers 1..=N completed in order; the
//! parts' records live in this process (lost on restart: the client
//! starts over).

mod errors;
mod gcs;
mod s3list;

pub use s3list::{ListBucketsError, s3_bucket_names};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use cairn_api::checksum::{BodyDigest, multipart_etag};
use cairn_api::layer::copy_via_stream;
use cairn_api::mpchecksum::{UploadChecksum, complete_checksum, part_request};
use cairn_api::multipart::{check_part_number, page_parts, page_uploads, validate_complete};
use cairn_api::{
    BucketInfo, BucketName, ByteStream, Capabilities, CompleteOptions, CompletePart, Conditions,
    CopyOptions, GetObject, GetOptions, ListOptions, ListPage, ListPartsPage, ListUploadsOptions,
    ListUploadsPage, MetadataDirective, ObjectError, ObjectInfo, ObjectKey, ObjectLayer,
    ObjectMetadata, ObjectResult, PartInfo, PartOptions, PutOptions, StorageClass, UploadInfo,
    WritePrecondition,
};
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, GetRange, ObjectStore, ObjectStoreExt as _, PutMode,
    PutMultipartOptions, PutPayload,
};
use parking_lot::Mutex;
use time::OffsetDateTime;

use errors::cloud_error;

/// What a cloud backend needs of its store.
pub trait CloudStore: ObjectStore + MultipartStore + PaginatedListStore {}
impl<T: ObjectStore + MultipartStore + PaginatedListStore> CloudStore for T {}

/// How long object_store retries a failing remote request (its default is
/// 10 tries over 3 minutes: a client would give up first, and a backend
/// that went away must show as a 503 in seconds).
fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: Default::default(),
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(10),
    }
}

/// Bodies up to this size go up in one PUT; longer ones stream through a
/// multipart upload in parts of this size, so memory stays bounded.
const SINGLE_PUT_MAX: usize = 8 << 20;

/// What one remote API does differently, as object_store exposes it.
#[derive(Debug, Clone, Copy)]
pub struct Remote {
    /// "the S3 gateway", "the Azure gateway": named in NotImplemented.
    pub backend: &'static str,
    /// Its ETags are S3's (MD5, `MD5-N`). Else they are its own, and the
    /// gateway hands them out unchanged everywhere, so PUT, HEAD and
    /// listings agree.
    pub md5_etags: bool,
    /// Its multipart API takes headers and user metadata when an upload is
    /// created. object_store's Azure one takes none (it commits the block
    /// list bare): such uploads are joined under a staging name and copied
    /// into place with their metadata (see `complete_multipart_upload`).
    pub multipart_attributes: bool,
    /// It knows S3's storage classes (Azure's access tiers and GCS's
    /// classes have other names: the class is not sent there).
    pub s3_storage_classes: bool,
    /// It takes `If-Match: <etag>` on a PUT (S3, Azure); GCS matches
    /// generations, not ETags. `If-None-Match: *` every remote takes.
    pub etag_conditions: bool,
}

/// Where multipart uploads that need a copy are joined (a remote name
/// that never clashes with a client key's upload in progress).
const STAGING: &str = ".cairn-gateway/multipart";

pub struct CloudLayer {
    remote: Remote,
    backend: &'static str,
    buckets: BTreeMap<String, Arc<dyn CloudStore>>,
    uploads: Mutex<HashMap<String, Upload>>,
    started: OffsetDateTime,
    in_flight: cairn_api::conditional::InFlight,
    /// Lately completed uploads, for retried completes.
    completed: cairn_api::multipart::CompletedUploads,
}

struct Upload {
    bucket: String,
    key: String,
    remote_id: String,
    /// Where the parts go: the key, or a staging name when the remote's
    /// multipart API cannot carry `attributes`.
    path: Path,
    /// Headers and metadata to copy the joined object into place with.
    staged: Option<Attributes>,
    initiated: OffsetDateTime,
    storage_class: StorageClass,
    checksum: Option<UploadChecksum>,
    parts: BTreeMap<u32, (PartInfo, String)>,
}

fn etag(e: Option<&str>) -> String {
    e.unwrap_or_default().trim_matches('"').to_owned()
}

fn time_of(t: chrono::DateTime<chrono::Utc>) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos()),
    )
    .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn attributes(m: &ObjectMetadata, s3_classes: bool) -> Attributes {
    let mut a = Attributes::new();
    let h = &m.headers;
    for (attr, v) in [
        (Attribute::ContentType, &h.content_type),
        (Attribute::ContentEncoding, &h.content_encoding),
        (Attribute::ContentDisposition, &h.content_disposition),
        (Attribute::ContentLanguage, &h.content_language),
        (Attribute::CacheControl, &h.cache_control),
    ] {
        if let Some(v) = v {
            a.insert(attr, AttributeValue::from(v.clone()));
        }
    }
    if s3_classes && m.storage_class != StorageClass::Standard {
        a.insert(
            Attribute::StorageClass,
            AttributeValue::from(m.storage_class.as_str()),
        );
    }
    for (k, v) in &m.user {
        a.insert(
            Attribute::Metadata(k.clone().into()),
            AttributeValue::from(v.clone()),
        );
    }
    a
}

fn metadata_of(a: &Attributes) -> ObjectMetadata {
    let mut m = ObjectMetadata::default();
    for (attr, v) in a.iter() {
        let v = v.as_ref().to_owned();
        match attr {
            Attribute::ContentType => m.headers.content_type = Some(v),
            Attribute::ContentEncoding => m.headers.content_encoding = Some(v),
            Attribute::ContentDisposition => m.headers.content_disposition = Some(v),
            Attribute::ContentLanguage => m.headers.content_language = Some(v),
            Attribute::CacheControl => m.headers.cache_control = Some(v),
            Attribute::StorageClass => {
                m.storage_class = StorageClass::parse(&v).unwrap_or_default();
            }
            Attribute::Metadata(k) => {
                m.user.insert(k.to_lowercase(), v);
            }
            _ => {}
        }
    }
    m
}

fn info_of(
    bucket: &str,
    key: &str,
    meta: &object_store::ObjectMeta,
    m: ObjectMetadata,
) -> ObjectInfo {
    let e = etag(meta.e_tag.as_deref());
    let parts = e.rsplit_once('-').and_then(|(_, n)| n.parse::<u32>().ok());
    ObjectInfo {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        size: meta.size,
        etag: e,
        last_modified: time_of(meta.last_modified),
        headers: m.headers,
        user_metadata: m.user,
        storage_class: m.storage_class,
        checksum: None,
        version_id: None,
        parts_count: parts,
        encryption: None,
        attrs: Default::default(),
    }
}

impl CloudLayer {
    /// A layer over the named remote buckets, each with its store.
    pub fn new(remote: Remote, buckets: BTreeMap<String, Arc<dyn CloudStore>>) -> Self {
        Self {
            remote,
            backend: remote.backend,
            buckets,
            uploads: Mutex::new(HashMap::new()),
            started: OffsetDateTime::now_utc(),
            in_flight: Default::default(),
            completed: Default::default(),
        }
    }

    fn store(&self, b: &BucketName) -> ObjectResult<&Arc<dyn CloudStore>> {
        self.buckets
            .get(b.as_str())
            .ok_or_else(|| ObjectError::no_such_bucket(b))
    }

    fn path(&self, k: &ObjectKey) -> ObjectResult<Path> {
        if k.is_dir_marker() {
            return Err(self.gap("folder objects (keys ending in '/')"));
        }
        Path::parse(k.as_str()).map_err(|_| ObjectError::InvalidObjectName {
            key: k.to_string(),
            reason: "the cloud library cannot name this key",
        })
    }

    /// NotImplemented naming this backend and what it cannot do.
    fn gap(&self, what: &'static str) -> ObjectError {
        ObjectError::NotImplemented {
            what: named(self.backend, what),
        }
    }

    async fn head_info(&self, b: &BucketName, k: &ObjectKey) -> ObjectResult<ObjectInfo> {
        let store = self.store(b)?;
        let path = self.path(k)?;
        let r = store
            .get_opts(
                &path,
                object_store::GetOptions {
                    head: true,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| cloud_error(self.backend, e, b.as_str(), k.as_str()))?;
        Ok(info_of(
            b.as_str(),
            k.as_str(),
            &r.meta,
            metadata_of(&r.attributes),
        ))
    }
}

/// "`what` on `backend`" as a `&'static str` (what `NotImplemented`
/// holds). The set of pairs is small and fixed by the code, so each is
/// made once and kept.
fn named(backend: &'static str, what: &'static str) -> &'static str {
    static NAMES: Mutex<BTreeMap<(&'static str, &'static str), &'static str>> =
        Mutex::new(BTreeMap::new());
    NAMES
        .lock()
        .entry((backend, what))
        .or_insert_with(|| Box::leak(format!("{what} on {backend}").into_boxed_str()))
}

/// Reads up to `max` bytes of a body (fewer if it ends first).
async fn read_up_to(
    body: &mut ByteStream,
    max: usize,
    digest: &mut BodyDigest,
) -> ObjectResult<(Bytes, bool)> {
    let mut buf = BytesMut::new();
    while buf.len() < max {
        match body.next().await {
            None => return Ok((buf.freeze(), true)),
            Some(Err(e)) => {
                return Err(ObjectError::BodyRead {
                    message: e.to_string(),
                });
            }
            Some(Ok(c)) => {
                digest.update(&c);
                buf.extend_from_slice(&c);
            }
        }
    }
    Ok((buf.freeze(), false))
}

/// How `upload` wrote a body.
struct Uploaded {
    /// The remote's ETag of the new object, quotes trimmed.
    etag: Option<String>,
    /// Sent as a multipart upload (longer than one PUT).
    streamed: bool,
}

/// Writes a body of unknown length to `path`: one PUT when it ends within
/// `SINGLE_PUT_MAX`, else a multipart upload in parts of that size (memory
/// stays bounded). `check` judges the digests before anything becomes
/// visible: the PUT is not sent, or the upload is aborted.
async fn upload<T>(
    store: &Arc<dyn CloudStore>,
    path: &Path,
    body: &mut ByteStream,
    put: object_store::PutOptions,
    mut digest: BodyDigest,
    check: impl FnOnce(BodyDigest) -> ObjectResult<T>,
    err: impl Fn(object_store::Error) -> ObjectError,
) -> ObjectResult<(Uploaded, T)> {
    let (first, ended) = read_up_to(body, SINGLE_PUT_MAX, &mut digest).await?;
    if ended {
        let out = check(digest)?;
        let r = store
            .put_opts(path, PutPayload::from_bytes(first), put)
            .await
            .map_err(&err)?;
        let up = Uploaded {
            etag: r.e_tag.as_deref().map(|e| etag(Some(e))),
            streamed: false,
        };
        return Ok((up, out));
    }
    if !matches!(put.mode, PutMode::Overwrite) {
        // a remote multipart upload completes without a condition
        return Err(ObjectError::NotImplemented {
            what: "conditional writes of bodies over 8 MiB on a cloud gateway",
        });
    }
    let mut up = store
        .put_multipart_opts(
            path,
            PutMultipartOptions {
                attributes: put.attributes,
                ..Default::default()
            },
        )
        .await
        .map_err(&err)?;
    let mut chunk = first;
    let mut ended = false;
    let sent: ObjectResult<()> = async {
        loop {
            up.put_part(PutPayload::from_bytes(chunk))
                .await
                .map_err(&err)?;
            if ended {
                return Ok(());
            }
            let (next, done) = read_up_to(body, SINGLE_PUT_MAX, &mut digest).await?;
            ended = done;
            if next.is_empty() {
                return Ok(());
            }
            chunk = next;
        }
    }
    .await;
    match sent.and_then(|()| check(digest)) {
        Ok(out) => {
            let r = up.complete().await.map_err(&err)?;
            let up = Uploaded {
                etag: r.e_tag.as_deref().map(|e| etag(Some(e))),
                streamed: true,
            };
            Ok((up, out))
        }
        Err(e) => {
            if let Err(a) = up.abort().await {
                tracing::warn!(error = %a, "aborting a refused upload failed");
            }
            Err(e)
        }
    }
}

#[async_trait]
impl ObjectLayer for CloudLayer {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            backend: self.backend,
            key_and_prefix_coexist: true,
            encryption: false,
            folder_objects_with_data: false,
            folder_objects: false,
            manages_buckets: false,
            reports_storage_class: false,
            md5_etags: self.remote.md5_etags,
            // the remote judges them (object_store's PutMode), on single
            // PUTs only: its multipart completes take no condition
            conditional_puts: self.remote.etag_conditions,
            conditional_completes: false,
            part_reads: false,
        }
    }

    async fn make_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        if self.buckets.contains_key(bucket.as_str()) {
            return Err(ObjectError::BucketAlreadyExists {
                bucket: bucket.to_string(),
            });
        }
        Err(self.gap("creating buckets"))
    }

    async fn head_bucket(&self, bucket: &BucketName) -> ObjectResult<BucketInfo> {
        self.store(bucket)?;
        Ok(BucketInfo {
            name: bucket.to_string(),
            created: self.started,
        })
    }

    async fn list_buckets(&self) -> ObjectResult<Vec<BucketInfo>> {
        Ok(self
            .buckets
            .keys()
            .map(|n| BucketInfo {
                name: n.clone(),
                created: self.started,
            })
            .collect())
    }

    async fn delete_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        self.store(bucket)?;
        Err(self.gap("deleting buckets"))
    }

    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        mut body: ByteStream,
        opts: PutOptions,
    ) -> ObjectResult<ObjectInfo> {
        let store = self.store(bucket)?.clone();
        if let Some(what) = opts.version_attrs_asked() {
            return Err(self.gap(what));
        }
        if opts.sse.is_some() {
            return Err(self.gap("server-side encryption"));
        }
        let path = self.path(key)?;
        let mode = match &opts.precondition {
            None => PutMode::Overwrite,
            Some(WritePrecondition::Absent) => PutMode::Create,
            Some(WritePrecondition::Matches(e))
                if self.remote.etag_conditions && e.trim() != "*" =>
            {
                PutMode::Update(object_store::UpdateVersion {
                    e_tag: Some(e.trim().trim_matches('"').to_owned()),
                    version: None,
                })
            }
            Some(WritePrecondition::Matches(_)) => {
                return Err(self.gap("conditional writes with If-Match"));
            }
        };
        let _claim = self
            .in_flight
            .claim(bucket, key, opts.precondition.as_ref())?;
        let err = |e| cloud_error(self.backend, e, bucket.as_str(), key.as_str());
        let digest = BodyDigest::new(opts.checksum.clone());
        let (up, out) = upload(
            &store,
            &path,
            &mut body,
            object_store::PutOptions {
                mode,
                attributes: attributes(&opts.metadata, self.remote.s3_storage_classes),
                ..Default::default()
            },
            digest,
            |d| d.verify(opts.content_md5.as_ref(), opts.content_length),
            err,
        )
        .await?;
        // S3 remotes: the MD5 of what the client sent (a single PUT's
        // remote ETag is that; a streamed one's is a multipart ETag).
        // Others: the remote's own, as HEAD and listings will show it.
        let etag = match up.etag {
            Some(e) if !self.remote.md5_etags || !up.streamed => e,
            _ => out.etag(),
        };
        Ok(ObjectInfo {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size: out.len,
            etag,
            last_modified: OffsetDateTime::now_utc(),
            headers: opts.metadata.headers,
            user_metadata: opts.metadata.user,
            storage_class: opts.metadata.storage_class,
            checksum: out.checksum,
            version_id: None,
            parts_count: None,
            encryption: None,
            attrs: Default::default(),
        })
    }

    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: GetOptions,
    ) -> ObjectResult<GetObject> {
        let store = self.store(bucket)?.clone();
        let path = self.path(key)?;
        let (b, k) = (bucket.as_str(), key.as_str());
        // A range needs the size first, to answer InvalidRange ourselves.
        let range = match opts.range {
            None => None,
            Some(r) => {
                let info = self.head_info(bucket, key).await?;
                opts.conditions.check(&info)?;
                Some(r.resolve(info.size)?)
            }
        };
        let r = store
            .get_opts(
                &path,
                object_store::GetOptions {
                    range: range.map(|(off, len)| GetRange::Bounded(off..off + len)),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| cloud_error(self.backend, e, b, k))?;
        let info = info_of(b, k, &r.meta, metadata_of(&r.attributes));
        opts.conditions.check(&info)?;
        let (bs, ks) = (b.to_owned(), k.to_owned());
        let body = r
            .into_stream()
            .map_err(move |e| std::io::Error::other(format!("{bs}/{ks}: {e}")));
        Ok(GetObject {
            info,
            range,
            body: Box::pin(body),
        })
    }

    async fn head_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        conditions: &Conditions,
    ) -> ObjectResult<ObjectInfo> {
        let info = self.head_info(bucket, key).await?;
        conditions.check(&info)?;
        Ok(info)
    }

    async fn delete_object(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()> {
        let store = self.store(bucket)?;
        if key.is_dir_marker() {
            return Ok(()); // cannot exist here
        }
        let path = self.path(key)?;
        match store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(cloud_error(self.backend, e, bucket.as_str(), key.as_str())),
        }
    }

    async fn copy_object(
        &self,
        src_bucket: &BucketName,
        src_key: &ObjectKey,
        dst_bucket: &BucketName,
        dst_key: &ObjectKey,
        opts: CopyOptions,
    ) -> ObjectResult<ObjectInfo> {
        if opts.sse.is_some() {
            return Err(self.gap("server-side encryption"));
        }
        // A plain copy within one remote bucket is done there, with the
        // metadata; anything else streams through here. The destination's
        // `If-None-Match: *` goes to the remote as a create-only copy where
        // it has one (Azure, GCS; an S3 remote's copy takes no condition:
        // object_store answers NotSupported), else the copy streams into a
        // conditional PUT, which judges it or refuses.
        let same_store = src_bucket == dst_bucket && src_key != dst_key;
        let mode = match &opts.precondition {
            None => Some(object_store::CopyMode::Overwrite),
            Some(WritePrecondition::Absent) => Some(object_store::CopyMode::Create),
            Some(WritePrecondition::Matches(_)) => None,
        };
        if same_store
            && matches!(opts.metadata, MetadataDirective::Copy)
            && opts.storage_class.is_none()
            && opts.source_conditions.is_empty()
            && let Some(mode) = mode
        {
            let _claim = self
                .in_flight
                .claim(dst_bucket, dst_key, opts.precondition.as_ref())?;
            let store = self.store(src_bucket)?.clone();
            let (from, to) = (self.path(src_key)?, self.path(dst_key)?);
            match store
                .copy_opts(&from, &to, object_store::CopyOptions::new().with_mode(mode))
                .await
            {
                Ok(()) => return self.head_info(dst_bucket, dst_key).await,
                Err(object_store::Error::NotSupported { .. }) if opts.precondition.is_some() => {}
                Err(e) => {
                    return Err(cloud_error(
                        self.backend,
                        e,
                        src_bucket.as_str(),
                        src_key.as_str(),
                    ));
                }
            }
        }
        copy_via_stream(self, src_bucket, src_key, dst_bucket, dst_key, opts).await
    }

    async fn list_objects(&self, bucket: &BucketName, opts: ListOptions) -> ObjectResult<ListPage> {
        let store = self.store(bucket)?.clone();
        let delim = opts.delimiter.clone().filter(|d| !d.is_empty());
        // After a rolled-up common prefix, skip everything under it.
        let offset = opts.start_after.clone().map(|a| match &delim {
            Some(d) if a.ends_with(d.as_str()) => format!("{a}\u{10FFFF}"),
            _ => a,
        });
        let max = opts.max_keys.clamp(1, 1000);
        let prefix = (!opts.prefix.is_empty()).then_some(opts.prefix.as_str());
        // Entries at or before the offset are dropped here too: a remote
        // that ignores the offset (Azurite ignores Azure's `startFrom`)
        // would otherwise hand the same page back forever. If that leaves
        // a page empty, its continuation is followed until one is not.
        let after = |s: &str| offset.as_deref().is_none_or(|o| s > o);
        let mut token: Option<String> = None;
        let (mut objects, mut common_prefixes, is_truncated) = loop {
            let r = store
                .list_paginated(
                    prefix,
                    PaginatedListOptions {
                        offset: if token.is_none() {
                            offset.clone()
                        } else {
                            None
                        },
                        delimiter: delim.clone().map(Into::into),
                        max_keys: Some(max),
                        page_token: token.take(),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| cloud_error(self.backend, e, bucket.as_str(), &opts.prefix))?;
            let objects: Vec<ObjectInfo> = r
                .result
                .objects
                .iter()
                .filter(|m| after(m.location.as_ref()))
                .map(|m| {
                    info_of(
                        bucket.as_str(),
                        m.location.as_ref(),
                        m,
                        ObjectMetadata::default(),
                    )
                })
                .collect();
            let common_prefixes: Vec<String> = r
                .result
                .common_prefixes
                .iter()
                .map(|p| {
                    let s: &str = p.as_ref();
                    match &delim {
                        Some(d) if !s.ends_with(d.as_str()) => format!("{s}{d}"),
                        _ => s.to_owned(),
                    }
                })
                .filter(|p| after(p))
                .collect();
            match r.page_token {
                Some(t) if objects.is_empty() && common_prefixes.is_empty() => token = Some(t),
                t => break (objects, common_prefixes, t.is_some()),
            }
        };
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        common_prefixes.sort();
        let last = objects
            .last()
            .map(|o| o.key.clone())
            .into_iter()
            .chain(common_prefixes.last().cloned())
            .max();
        Ok(ListPage {
            objects,
            common_prefixes,
            is_truncated,
            next_marker: if is_truncated { last } else { None },
        })
    }

    async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
    ) -> ObjectResult<String> {
        let store = self.store(bucket)?.clone();
        if let Some(what) = opts.version_attrs_asked() {
            return Err(self.gap(what));
        }
        if opts.sse.is_some() {
            return Err(self.gap("server-side encryption"));
        }
        let key_path = self.path(key)?;
        let id = uuid::Uuid::new_v4().to_string();
        let attrs = attributes(&opts.metadata, self.remote.s3_storage_classes);
        // Without attributes at create, an upload that has some is
        // joined under a staging name and copied into place on complete.
        let (path, create_attrs, staged) = if self.remote.multipart_attributes || attrs.is_empty() {
            (key_path, attrs, None)
        } else {
            let staging = Path::from(format!("{STAGING}/{id}"));
            (staging, Attributes::new(), Some(attrs))
        };
        let remote_id = store
            .create_multipart_opts(
                &path,
                PutMultipartOptions {
                    attributes: create_attrs,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| cloud_error(self.backend, e, bucket.as_str(), key.as_str()))?;
        self.uploads.lock().insert(
            id.clone(),
            Upload {
                bucket: bucket.to_string(),
                key: key.to_string(),
                remote_id,
                path,
                staged,
                initiated: OffsetDateTime::now_utc(),
                storage_class: opts.metadata.storage_class,
                checksum: UploadChecksum::of_request(opts.checksum.as_ref()),
                parts: BTreeMap::new(),
            },
        );
        Ok(id)
    }

    async fn upload_part(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number: u32,
        mut body: ByteStream,
        opts: PartOptions,
    ) -> ObjectResult<PartInfo> {
        check_part_number(part_number)?;
        let store = self.store(bucket)?.clone();
        let (remote_id, path) = self.remote_id(bucket, key, upload_id)?;
        let algorithm = self
            .uploads
            .lock()
            .get(upload_id)
            .and_then(|u| u.checksum)
            .map(|c| c.algorithm);
        // A part goes up in one request: it is held in memory (parts are
        // 5 MiB to 5 GiB; clients use tens of MiB).
        let mut digest = BodyDigest::new(part_request(algorithm, opts.checksum)?);
        let (data, _) = read_up_to(&mut body, usize::MAX, &mut digest).await?;
        let out = digest.verify(opts.content_md5.as_ref(), opts.content_length)?;
        let part = store
            .put_part(
                &path,
                &remote_id,
                (part_number - 1) as usize,
                PutPayload::from_bytes(data),
            )
            .await
            .map_err(|e| cloud_error(self.backend, e, bucket.as_str(), key.as_str()))?;
        let info = PartInfo {
            part_number,
            etag: out.etag(),
            size: out.len,
            last_modified: OffsetDateTime::now_utc(),
            checksum: out.checksum,
        };
        let mut ups = self.uploads.lock();
        let up = ups
            .get_mut(upload_id)
            .ok_or_else(|| ObjectError::NoSuchUpload {
                upload_id: upload_id.to_owned(),
            })?;
        up.parts
            .insert(part_number, (info.clone(), part.content_id));
        Ok(info)
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number_marker: Option<u32>,
        max_parts: usize,
    ) -> ObjectResult<ListPartsPage> {
        self.remote_id(bucket, key, upload_id)?;
        let parts = self
            .uploads
            .lock()
            .get(upload_id)
            .map(|u| u.parts.values().map(|(p, _)| p.clone()).collect())
            .unwrap_or_default();
        Ok(page_parts(parts, part_number_marker, max_parts))
    }

    async fn complete_multipart_upload_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: Vec<CompletePart>,
        opts: CompleteOptions,
    ) -> ObjectResult<ObjectInfo> {
        if opts.precondition.is_some() {
            return Err(self.gap("conditional multipart completes"));
        }
        let store = self.store(bucket)?.clone();
        // a retry of a complete that already happened
        if !self.uploads.lock().contains_key(upload_id)
            && let Some(info) = self
                .completed
                .get(bucket.as_str(), key.as_str(), upload_id, &parts)
        {
            return Ok(info);
        }
        let (remote_id, path) = self.remote_id(bucket, key, upload_id)?;
        let key_path = self.path(key)?;
        let (chosen, ids, checksum, staged) = {
            let ups = self.uploads.lock();
            let up = ups
                .get(upload_id)
                .ok_or_else(|| ObjectError::NoSuchUpload {
                    upload_id: upload_id.to_owned(),
                })?;
            let uploaded: BTreeMap<u32, PartInfo> =
                up.parts.iter().map(|(n, (p, _))| (*n, p.clone())).collect();
            let chosen = validate_complete(&parts, &uploaded)?;
            // object_store numbers the completed parts 1..=N by position.
            if chosen
                .iter()
                .enumerate()
                .any(|(i, p)| p.part_number as usize != i + 1)
            {
                return Err(self.gap("completing a multipart upload whose parts are not 1..=N"));
            }
            // chosen parts are uploaded ones (validate_complete)
            let ids: Vec<PartId> = chosen
                .iter()
                .map(|p| {
                    up.parts
                        .get(&p.part_number)
                        .map(|(_, id)| PartId {
                            content_id: id.clone(),
                        })
                        .ok_or(ObjectError::InvalidPart {
                            part_number: p.part_number,
                        })
                })
                .collect::<ObjectResult<_>>()?;
            let checksum = complete_checksum(up.checksum, &chosen, &opts.checksums)?;
            (chosen, ids, checksum, up.staged.clone())
        };
        let err = |e| cloud_error(self.backend, e, bucket.as_str(), key.as_str());
        store
            .complete_multipart(&path, &remote_id, ids)
            .await
            .map_err(err)?;
        self.uploads.lock().remove(upload_id);
        if let Some(attrs) = staged {
            // Joined bare under the staging name: copied into place with
            // its headers and metadata (streamed through here), then the
            // staged object goes.
            let copied = async {
                let mut joined: ByteStream = Box::pin(
                    store
                        .get(&path)
                        .await
                        .map_err(err)?
                        .into_stream()
                        .map_err(std::io::Error::other),
                );
                upload(
                    &store,
                    &key_path,
                    &mut joined,
                    object_store::PutOptions {
                        attributes: attrs,
                        ..Default::default()
                    },
                    BodyDigest::new(None),
                    |_| Ok(()),
                    err,
                )
                .await
            }
            .await;
            if let Err(e) = store.delete(&path).await {
                tracing::warn!(error = %e, path = %path, "removing a staged upload failed");
            }
            copied?;
        }
        let mut info = self.head_info(bucket, key).await?;
        let etags: Vec<&str> = chosen.iter().map(|p| p.etag.as_str()).collect();
        if info.etag.is_empty() {
            info.etag = multipart_etag(&etags);
        }
        info.checksum = checksum;
        info.parts_count = Some(chosen.len() as u32);
        self.completed.record(upload_id, &parts, &info);
        Ok(info)
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> ObjectResult<()> {
        let store = self.store(bucket)?.clone();
        let (remote_id, path) = self.remote_id(bucket, key, upload_id)?;
        self.uploads.lock().remove(upload_id);
        store
            .abort_multipart(&path, &remote_id)
            .await
            .map_err(|e| cloud_error(self.backend, e, bucket.as_str(), key.as_str()))
    }

    async fn list_multipart_uploads(
        &self,
        bucket: &BucketName,
        opts: ListUploadsOptions,
    ) -> ObjectResult<ListUploadsPage> {
        self.store(bucket)?;
        let all = self
            .uploads
            .lock()
            .iter()
            .filter(|(_, u)| u.bucket == bucket.as_str())
            .map(|(id, u)| UploadInfo {
                bucket: u.bucket.clone(),
                key: u.key.clone(),
                upload_id: id.clone(),
                initiated: u.initiated,
                storage_class: u.storage_class,
            })
            .collect();
        Ok(page_uploads(all, &opts))
    }
}

impl CloudLayer {
    /// The remote upload id of a client upload and where its parts go.
    fn remote_id(&self, b: &BucketName, k: &ObjectKey, id: &str) -> ObjectResult<(String, Path)> {
        self.uploads
            .lock()
            .get(id)
            .filter(|u| u.bucket == b.as_str() && u.key == k.as_str())
            .map(|u| (u.remote_id.clone(), u.path.clone()))
            .ok_or_else(|| ObjectError::NoSuchUpload {
                upload_id: id.to_owned(),
            })
    }
}

/// Builds the S3-compatible backend: one store per remote bucket.
/// Credentials: `access` / `secret` when given, else the usual AWS
/// environment variables (`AWS_ACCESS_KEY_ID`, ...).
pub fn s3_layer(
    endpoint: Option<&str>,
    region: &str,
    access: Option<&str>,
    secret: Option<&str>,
    buckets: &[String],
) -> Result<CloudLayer, object_store::Error> {
    let mut stores: BTreeMap<String, Arc<dyn CloudStore>> = BTreeMap::new();
    for b in buckets {
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(b)
            .with_region(region)
            .with_retry(retry());
        if let Some(ep) = endpoint {
            builder = builder
                .with_endpoint(ep)
                .with_allow_http(ep.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let (Some(a), Some(s)) = (access, secret) {
            builder = builder.with_access_key_id(a).with_secret_access_key(s);
        }
        stores.insert(b.clone(), Arc::new(builder.build()?));
    }
    Ok(CloudLayer::new(
        Remote {
            backend: "the S3 gateway",
            md5_etags: true,
            multipart_attributes: true,
            s3_storage_classes: true,
            etag_conditions: true,
        },
        stores,
    ))
}

/// Builds the Azure Blob backend: one store per container. Credentials:
/// `account` + `access_key` when given, else the usual AZURE_* / azure_*
/// environment; `emulator` talks to Azurite (its URL from
/// AZURITE_BLOB_STORAGE_URL, default http://127.0.0.1:10000).
pub fn azure_layer(
    account: Option<&str>,
    access_key: Option<&str>,
    endpoint: Option<&str>,
    emulator: bool,
    containers: &[String],
) -> Result<CloudLayer, object_store::Error> {
    let mut stores: BTreeMap<String, Arc<dyn CloudStore>> = BTreeMap::new();
    for c in containers {
        let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env()
            .with_container_name(c)
            .with_use_emulator(emulator)
            .with_retry(retry());
        if let Some(a) = account {
            builder = builder.with_account(a);
        }
        if let Some(k) = access_key {
            builder = builder.with_access_key(k);
        }
        if let Some(ep) = endpoint {
            builder = builder
                .with_endpoint(ep.to_owned())
                .with_allow_http(ep.starts_with("http://"));
        }
        stores.insert(c.clone(), Arc::new(builder.build()?));
    }
    Ok(CloudLayer::new(
        Remote {
            backend: "the Azure gateway",
            md5_etags: false,
            multipart_attributes: false,
            s3_storage_classes: false,
            etag_conditions: true,
        },
        stores,
    ))
}

/// Builds the Google Cloud Storage backend: one store per bucket, each
/// speaking GCS's JSON API through OpenDAL (`gcs/`). Credentials: a
/// service-account file when given, else application default
/// credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's, the VM's);
/// `anonymous` signs nothing (public buckets, emulators). `endpoint`
/// replaces https://storage.googleapis.com (an emulator's URL).
pub fn gcs_layer(
    endpoint: Option<&str>,
    service_account: Option<&str>,
    anonymous: bool,
    buckets: &[String],
) -> Result<CloudLayer, object_store::Error> {
    let access = gcs::GcsAccess {
        endpoint,
        service_account,
        anonymous,
    };
    let mut stores: BTreeMap<String, Arc<dyn CloudStore>> = BTreeMap::new();
    for b in buckets {
        let store = gcs::GcsStore::new(b, access).map_err(|e| object_store::Error::Generic {
            store: "GCS",
            source: Box::new(e),
        })?;
        stores.insert(b.clone(), Arc::new(store));
    }
    Ok(CloudLayer::new(
        Remote {
            backend: "the GCS gateway",
            // its MD5 where GCS keeps one, else GCS's ETag (gcs/mod.rs)
            md5_etags: false,
            multipart_attributes: true,
            s3_storage_classes: false,
            etag_conditions: false,
        },
        stores,
    ))
}
