//! Google Cloud Storage through its JSON API, by OpenDAL's GCS service.
//! object_store's GCS client writes through the XML API (which the GCS
//! emulators obtainable here do not take) and has no compose; OpenDAL
//! speaks the JSON API for every operation. `GcsStore` presents it as the
//! three object_store traits `CloudLayer` is written against, so the S3
//! mapping (ETags, checksums, part records, conditions, errors) stays one
//! for every remote and the fronts do not change.
//!
//! - PUT: one JSON upload (`uploadType=media`, or `multipart` with headers
//!   and metadata); a conditional one (`ifGenerationMatch=0`) goes as a
//!   resumable upload (OpenDAL's choice for conditions).
//! - Longer bodies and client multipart uploads: every part is an object
//!   of its own under `.cairn-gateway/parts/<id>/`, joined by compose
//!   (`pieces.rs`; past 32 parts OpenDAL composes in a tree), then removed.
//! - Copy: rewrite (OpenDAL follows the rewrite tokens). GET: a stat, then
//!   `alt=media` pinned to the generation the stat saw.
//! - Listing: the JSON list with prefix, startOffset and maxResults; see
//!   `list_paginated` for delimiters.

mod pieces;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::list::{PaginatedListOptions, PaginatedListResult, PaginatedListStore};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, CopyMode, CopyOptions, GetOptions, GetRange, GetResult,
    GetResultPayload, ListResult, MultipartId, MultipartUpload, ObjectMeta, ObjectStore, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use opendal::{Buffer, Metadata, Operator};
use parking_lot::Mutex;

use pieces::{Pieces, remove_pieces, write_piece};

/// Where parts wait for their compose, and where OpenDAL's compose tree
/// keeps its intermediates: neither is listed to clients.
const PARTS: &str = ".cairn-gateway/parts";
const HIDDEN: [&str; 2] = [".cairn-gateway/", "__opendal/"];

/// Whom an object_store `Generic` error names.
const STORE: &str = "GCS";

/// What this backend cannot do, named in the 501 (`cloud_error` finds it
/// as the source of an object_store `NotSupported`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Gap(pub(crate) &'static str);

fn gap(what: &'static str) -> object_store::Error {
    object_store::Error::NotSupported {
        source: Box::new(Gap(what)),
    }
}

/// An OpenDAL error as object_store's, the one `cloud_error` maps.
fn os_error(path: &str, e: opendal::Error) -> object_store::Error {
    use object_store::Error as E;
    use opendal::ErrorKind as K;
    let path = path.to_owned();
    match e.kind() {
        K::NotFound => E::NotFound {
            path,
            source: Box::new(e),
        },
        K::ConditionNotMatch => E::Precondition {
            path,
            source: Box::new(e),
        },
        K::AlreadyExists => E::AlreadyExists {
            path,
            source: Box::new(e),
        },
        _ => E::Generic {
            store: STORE,
            source: Box::new(e),
        },
    }
}

/// The object name of a path. OpenDAL trims blanks and folds `//`
/// (`normalize_path`): a key it would change could land on another
/// object, so such keys are refused (object_store's `Path` holds no `//`).
fn name(p: &Path) -> object_store::Result<&str> {
    let s: &str = p.as_ref();
    if s.is_empty() || s.trim() != s {
        return Err(gap("keys starting or ending with blanks"));
    }
    Ok(s)
}

fn hidden(name: &str) -> bool {
    HIDDEN.iter().any(|h| name.starts_with(h))
}

/// The headers and metadata of a write, as OpenDAL's options take them.
#[derive(Debug, Clone, Default)]
struct Meta {
    content_type: Option<String>,
    cache_control: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    user: HashMap<String, String>,
}

impl Meta {
    fn of(a: &Attributes) -> object_store::Result<Meta> {
        let mut m = Meta::default();
        for (attr, v) in a.iter() {
            let v = v.as_ref().to_owned();
            match attr {
                Attribute::ContentType => m.content_type = Some(v),
                Attribute::CacheControl => m.cache_control = Some(v),
                Attribute::ContentEncoding => m.content_encoding = Some(v),
                Attribute::ContentDisposition => m.content_disposition = Some(v),
                // OpenDAL's GCS service sends no contentLanguage
                Attribute::ContentLanguage => return Err(gap("Content-Language")),
                Attribute::Metadata(k) => {
                    m.user.insert(k.to_string(), v);
                }
                _ => return Err(gap("this header")),
            }
        }
        Ok(m)
    }

    fn write_options(&self, if_not_exists: bool) -> opendal::options::WriteOptions {
        opendal::options::WriteOptions {
            content_type: self.content_type.clone(),
            cache_control: self.cache_control.clone(),
            content_encoding: self.content_encoding.clone(),
            user_metadata: (!self.user.is_empty()).then(|| self.user.clone()),
            if_not_exists,
            ..Default::default()
        }
    }
}

/// `PutMode::Create` as `if_not_exists`; GCS matches generations, not
/// ETags (`Remote::etag_conditions` keeps `Update` from coming here).
fn if_not_exists(mode: &PutMode) -> object_store::Result<bool> {
    match mode {
        PutMode::Overwrite => Ok(false),
        PutMode::Create => Ok(true),
        PutMode::Update(_) => Err(gap("conditional writes with If-Match")),
    }
}

/// The ETag of an object, the same on PUT, HEAD, GET and in listings
/// (all see the same two fields): its MD5 in hex where GCS keeps one,
/// else GCS's own ETag (GCS keeps no MD5 of a composed object). OpenDAL's
/// listing reads no custom metadata, so a multipart-style ETag stored
/// beside the object could not be listed: like Azure's, these ETags are
/// the remote's (`Remote::md5_etags` false).
fn etag_of(m: &Metadata) -> Option<String> {
    let md5 = m
        .content_md5()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .filter(|d| d.len() == 16);
    match md5 {
        Some(d) => Some(hex::encode(d)),
        None => m.etag().filter(|e| !e.is_empty()).map(str::to_owned),
    }
}

fn put_result(m: &Metadata) -> PutResult {
    PutResult {
        e_tag: etag_of(m),
        version: m.version().map(str::to_owned),
        extensions: Default::default(),
    }
}

fn object_meta(location: Path, m: &Metadata) -> ObjectMeta {
    let modified = m
        .last_modified()
        .and_then(|t| i64::try_from(t.into_inner().as_nanosecond()).ok())
        .map(chrono::DateTime::from_timestamp_nanos)
        .unwrap_or_default();
    ObjectMeta {
        location,
        last_modified: modified,
        size: m.content_length(),
        e_tag: etag_of(m),
        version: m.version().map(str::to_owned),
    }
}

fn attributes_of(m: &Metadata) -> Attributes {
    let mut a = Attributes::new();
    for (attr, v) in [
        (Attribute::ContentType, m.content_type()),
        (Attribute::CacheControl, m.cache_control()),
        (Attribute::ContentEncoding, m.content_encoding()),
        (Attribute::ContentDisposition, m.content_disposition()),
    ] {
        if let Some(v) = v {
            a.insert(attr, AttributeValue::from(v.to_owned()));
        }
    }
    if let Some(user) = m.user_metadata() {
        for (k, v) in user {
            a.insert(
                Attribute::Metadata(k.to_owned().into()),
                AttributeValue::from(v.to_owned()),
            );
        }
    }
    a
}

fn buffer(p: PutPayload) -> Buffer {
    Buffer::from(p.into_iter().collect::<Vec<Bytes>>())
}

/// One GCS bucket through OpenDAL, as a `CloudStore`.
#[derive(Debug)]
pub struct GcsStore {
    op: Operator,
    bucket: String,
    /// The headers and metadata of the client multipart uploads in
    /// progress (GCS learns them at the compose), by upload id.
    pending: Mutex<HashMap<String, Meta>>,
}

impl fmt::Display for GcsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GCS({})", self.bucket)
    }
}

/// How a GCS bucket is reached.
#[derive(Debug, Clone, Copy, Default)]
pub struct GcsAccess<'a> {
    /// Replaces https://storage.googleapis.com (an emulator's URL).
    pub endpoint: Option<&'a str>,
    /// A service-account key file; else application default credentials.
    pub service_account: Option<&'a str>,
    /// Sign nothing (public buckets, emulators).
    pub anonymous: bool,
}

impl GcsStore {
    /// A store for `bucket`. Failing requests are tried 3 times (within
    /// about 10 s, as the object_store remotes), each bounded in time, so
    /// a GCS that went away shows as a 503 in seconds.
    pub fn new(bucket: &str, access: GcsAccess<'_>) -> Result<GcsStore, opendal::Error> {
        opendal::install_default();
        let mut b = opendal::services::Gcs::default().bucket(bucket);
        if let Some(ep) = access.endpoint {
            b = b.endpoint(ep);
        }
        if let Some(sa) = access.service_account {
            b = b.credential_path(sa);
        }
        if access.anonymous {
            b = b
                .skip_signature()
                .disable_vm_metadata()
                .disable_config_load();
        }
        let op = Operator::new(b)?
            .layer(
                opendal::layers::TimeoutLayer::new()
                    .with_timeout(Duration::from_secs(60))
                    .with_io_timeout(Duration::from_secs(30)),
            )
            .layer(
                opendal::layers::RetryLayer::new()
                    .with_max_times(3)
                    .with_max_delay(Duration::from_secs(3)),
            );
        Ok(GcsStore {
            op,
            bucket: bucket.to_owned(),
            pending: Mutex::new(HashMap::new()),
        })
    }
}

#[async_trait]
impl ObjectStore for GcsStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let path = name(location)?;
        let meta = Meta::of(&opts.attributes)?;
        let create = if_not_exists(&opts.mode)?;
        if meta.content_disposition.is_some() {
            // OpenDAL's uploads carry no Content-Disposition; its compose
            // does: the body goes up as one part composed into place.
            let mut up = Pieces::new(self.op.clone(), path, meta, create);
            up.put_part(payload).await?;
            return up.complete().await;
        }
        let m = self
            .op
            .write_options(path, buffer(payload), meta.write_options(create))
            .await
            .map_err(|e| os_error(path, e))?;
        Ok(put_result(&m))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let path = name(location)?;
        let meta = Meta::of(&opts.attributes)?;
        Ok(Box::new(Pieces::new(self.op.clone(), path, meta, false)))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let path = name(location)?;
        if options.if_match.is_some()
            || options.if_none_match.is_some()
            || options.if_modified_since.is_some()
            || options.if_unmodified_since.is_some()
            || options.version.is_some()
        {
            // CloudLayer judges conditions itself, on the stat
            return Err(gap("conditional reads in the store"));
        }
        let m = self.op.stat(path).await.map_err(|e| os_error(path, e))?;
        let size = m.content_length();
        let range = match options.range {
            None => 0..size,
            Some(GetRange::Bounded(r)) => r.start.min(size)..r.end.min(size),
            Some(GetRange::Offset(o)) => o.min(size)..size,
            Some(GetRange::Suffix(n)) => size.saturating_sub(n)..size,
        };
        let payload = if options.head || range.is_empty() {
            futures::stream::empty().boxed()
        } else {
            // Pinned to the generation the stat saw: an object replaced
            // in between fails the read rather than mixing two objects.
            let reader = self
                .op
                .reader_options(
                    path,
                    opendal::options::ReaderOptions {
                        if_version_match: m.version().map(str::to_owned),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| os_error(path, e))?;
            reader
                .into_bytes_stream(range.clone())
                .await
                .map_err(|e| os_error(path, e))?
                .map_err(|e| object_store::Error::Generic {
                    store: STORE,
                    source: Box::new(e),
                })
                .boxed()
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(payload),
            meta: object_meta(location.clone(), &m),
            range,
            attributes: attributes_of(&m),
            extensions: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let op = self.op.clone();
        locations
            .and_then(move |p| {
                let op = op.clone();
                async move {
                    let n = name(&p)?.to_owned();
                    // a missing object is no error (OpenDAL's delete)
                    op.delete(&n).await.map_err(|e| os_error(&n, e))?;
                    Ok(p)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let op = self.op.clone();
        let prefix = prefix.map(|p| format!("{p}/")).unwrap_or_default();
        futures::stream::once(async move {
            op.lister_options(
                &prefix,
                opendal::options::ListOptions {
                    recursive: true,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| os_error(&prefix, e))
        })
        .map_ok(|l| l.map_err(|e| os_error("", e)))
        .try_flatten()
        .try_filter_map(|e| async move { object_of(e) })
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let prefix = prefix.map(|p| format!("{p}/")).unwrap_or_default();
        let mut all = ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
            extensions: Default::default(),
        };
        let mut token = None;
        loop {
            let page = self
                .list_paginated(
                    Some(&prefix),
                    PaginatedListOptions {
                        delimiter: Some("/".into()),
                        page_token: token.take(),
                        ..Default::default()
                    },
                )
                .await?;
            all.common_prefixes.extend(page.result.common_prefixes);
            all.objects.extend(page.result.objects);
            match page.page_token {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        if matches!(options.mode, CopyMode::Create) {
            return Err(gap("conditional copies"));
        }
        let (f, t) = (name(from)?, name(to)?);
        self.op
            .copy(f, t)
            .await
            .map(drop)
            .map_err(|e| os_error(f, e))
    }
}

/// A listed object (folder markers, `name/`, are a declared gap of the
/// cloud gateways; hidden names are the gateway's own).
fn object_of(e: opendal::Entry) -> object_store::Result<Option<ObjectMeta>> {
    let (path, m) = e.into_parts();
    if hidden(&path) || path.ends_with('/') {
        tracing::debug!(name = %path, "not listed: a folder marker or the gateway's own");
        return Ok(None);
    }
    Ok(Some(object_meta(Path::parse(&path)?, &m)))
}

#[async_trait]
impl PaginatedListStore for GcsStore {
    /// One page, in name order. Without a delimiter: GCS's listing as it
    /// comes. With `/`: GCS answers a page's prefixes and its objects in
    /// two lists (OpenDAL hands out the prefixes first), so a page cut
    /// between them could skip names; instead the listing stays flat and
    /// each common prefix is rolled up here, the listing going on past it
    /// (startOffset `prefix/\u{10FFFF}`): one list request per common
    /// prefix on the page.
    async fn list_paginated(
        &self,
        prefix: Option<&str>,
        opts: PaginatedListOptions,
    ) -> object_store::Result<PaginatedListResult> {
        let delimited = match opts.delimiter.as_deref() {
            None => false,
            Some("/") => true,
            Some(_) => return Err(gap("listing with a delimiter other than '/'")),
        };
        let prefix = prefix.unwrap_or_default();
        if prefix.trim() != prefix {
            return Err(gap("keys starting or ending with blanks"));
        }
        let max = opts.max_keys.unwrap_or(1000).clamp(1, 1000);
        let mut cursor = opts.page_token.or(opts.offset);
        let mut result = ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
            extensions: Default::default(),
        };
        let full = |r: &ListResult| r.objects.len() + r.common_prefixes.len() >= max;
        'pages: loop {
            let mut lister = self
                .op
                .lister_options(
                    prefix,
                    opendal::options::ListOptions {
                        recursive: true,
                        start_after: cursor.clone(),
                        limit: Some(max + 1),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| os_error(prefix, e))?;
            while let Some(e) = lister.try_next().await.map_err(|e| os_error(prefix, e))? {
                let path = e.path();
                if cursor.as_deref().is_some_and(|c| path <= c) {
                    continue;
                }
                if let Some(h) = HIDDEN.iter().find(|h| path.starts_with(**h)) {
                    // the gateway's own names: skipped whole
                    cursor = Some(format!("{h}\u{10FFFF}"));
                    continue 'pages;
                }
                if full(&result) {
                    // one more name exists: the page is cut at the last one
                    return Ok(PaginatedListResult {
                        result,
                        page_token: cursor,
                    });
                }
                let below = path.get(prefix.len()..).unwrap_or_default();
                if let Some(i) = below.find('/').filter(|_| delimited) {
                    let cp = &path[..prefix.len() + i + 1];
                    result.common_prefixes.push(Path::parse(cp)?);
                    cursor = Some(format!("{cp}\u{10FFFF}"));
                    continue 'pages;
                }
                let name = path.to_owned();
                if let Some(o) = object_of(e)? {
                    result.objects.push(o);
                }
                cursor = Some(name);
            }
            return Ok(PaginatedListResult {
                result,
                page_token: None,
            });
        }
    }
}

#[async_trait]
impl MultipartStore for GcsStore {
    async fn create_multipart(&self, path: &Path) -> object_store::Result<MultipartId> {
        self.create_multipart_opts(path, PutMultipartOptions::default())
            .await
    }

    async fn create_multipart_opts(
        &self,
        path: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<MultipartId> {
        name(path)?;
        let meta = Meta::of(&opts.attributes)?;
        let id = uuid::Uuid::new_v4().to_string();
        self.pending.lock().insert(id.clone(), meta);
        Ok(id)
    }

    /// Part `part_idx` (0-based) becomes an object of its own.
    async fn put_part(
        &self,
        _path: &Path,
        id: &MultipartId,
        part_idx: usize,
        data: PutPayload,
    ) -> object_store::Result<PartId> {
        write_piece(&self.op, id, part_idx, data).await?;
        Ok(PartId {
            content_id: part_idx.to_string(),
        })
    }

    /// Composes parts 0..N (CloudLayer completes only 1..=N, in order)
    /// with the upload's headers and metadata, then removes every part
    /// object of the upload.
    async fn complete_multipart(
        &self,
        path: &Path,
        id: &MultipartId,
        parts: Vec<PartId>,
    ) -> object_store::Result<PutResult> {
        let dest = name(path)?;
        let meta =
            self.pending
                .lock()
                .get(id)
                .cloned()
                .ok_or_else(|| object_store::Error::NotFound {
                    path: dest.to_owned(),
                    source: format!("no multipart upload {id}").into(),
                })?;
        let done = Pieces::of_upload(self.op.clone(), id.clone(), dest, meta, parts.len())
            .compose()
            .await?;
        self.pending.lock().remove(id);
        Ok(done)
    }

    async fn abort_multipart(&self, _path: &Path, id: &MultipartId) -> object_store::Result<()> {
        self.pending.lock().remove(id);
        remove_pieces(&self.op, id).await
    }
}
