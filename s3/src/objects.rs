//! Object operations: PutObject, GetObject, HeadObject, DeleteObject,
//! DeleteObjects, CopyObject.

use cairn_api::versioning::version_label;
use cairn_api::{
    ByteRange, CopyOptions, CustomerKey, DeleteOptions, GetOptions,
    MetadataDirective as LayerDirective, ObjectError, ObjectInfo, ObjectKey, PutOptions,
    SseRequest,
};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::convert::{
    ChecksumOut, MetadataInput, ObjectHeadersOut, ResponseBody, bucket_name, check_put_size,
    checksum_request, conditions, content_length, content_md5, etag, object_key, refuse_if_some,
    storage_class, timestamp, version_param,
};
use crate::errors::{IntoS3 as _, invalid_argument, not_implemented, s3_error};
use crate::service::CairnS3;
use crate::set_sse;
use crate::sse::{COPY_SOURCE_PREFIX, CustomerHeaders, SSE_PREFIX, SseHeaders, SseOut};

/// Most keys one DeleteObjects request may name.
const MAX_DELETE_KEYS: usize = 1000;

/// Fills the fields GetObject and HeadObject share from a stored object.
macro_rules! object_output {
    ($ty:ident, $info:expr, $headers:expr, $checksum:expr) => {{
        let info: &ObjectInfo = $info;
        let h: ObjectHeadersOut = $headers;
        let c: ChecksumOut = $checksum;
        $ty {
            accept_ranges: Some("bytes".to_owned()),
            cache_control: h.cache_control,
            checksum_crc32: c.crc32,
            checksum_crc32c: c.crc32c,
            checksum_crc64nvme: c.crc64nvme,
            checksum_sha1: c.sha1,
            checksum_sha256: c.sha256,
            checksum_type: c.checksum_type,
            content_disposition: h.content_disposition,
            content_encoding: h.content_encoding,
            content_language: h.content_language,
            content_type: Some(h.content_type),
            e_tag: Some(etag(&info.etag)),
            expires: h.expires,
            last_modified: Some(timestamp(info.last_modified)),
            metadata: h.metadata,
            parts_count: info.parts_count.and_then(|n| i32::try_from(n).ok()),
            storage_class: h.storage_class,
            version_id: info.version_id.clone(),
            object_lock_mode: info
                .attrs
                .retention
                .map(|r| ObjectLockMode::from(r.mode.as_str().to_owned())),
            object_lock_retain_until_date: info.attrs.retention.map(|r| timestamp(r.until)),
            object_lock_legal_hold_status: info
                .attrs
                .legal_hold
                .then(|| ObjectLockLegalHoldStatus::from(ObjectLockLegalHoldStatus::ON.to_owned())),
            replication_status: info
                .attrs
                .replication
                .map(|r| ReplicationStatus::from(r.as_str().to_owned())),
            ..Default::default()
        }
    }};
}

/// `Content-Range` of a part read: `bytes a-b/size`, `bytes */size` for
/// an empty part (no byte to name).
fn part_content_range(off: u64, len: u64, size: u64) -> String {
    match len {
        0 => format!("bytes */{size}"),
        _ => format!("bytes {off}-{}/{size}", off + len - 1),
    }
}

pub(crate) fn byte_range(r: Range) -> ByteRange {
    match r {
        Range::Int { first, last } => ByteRange::FromTo { first, last },
        Range::Suffix { length } => ByteRange::Suffix { len: length },
    }
}

fn checksum_mode_enabled(m: Option<&ChecksumMode>) -> bool {
    m.is_some_and(|m| m.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED))
}

/// `partNumber` on GET/HEAD: 1..=10000 and not with a Range (400
/// InvalidArgument, as S3).
fn part_number_param(part_number: Option<i32>, range: bool) -> S3Result<Option<u32>> {
    let Some(n) = part_number else {
        return Ok(None);
    };
    if range {
        return Err(invalid_argument(
            "Cannot specify both Range header and partNumber query parameter",
        ));
    }
    match u32::try_from(n) {
        Ok(n) if (1..=10_000).contains(&n) => Ok(Some(n)),
        _ => Err(invalid_argument(format!(
            "part number {n} is not between 1 and 10000"
        ))),
    }
}

/// For copies a failed `if-none-match`/`if-modified-since` on the source is
/// a 412, whatever the layer reports.
pub(crate) fn copy_error(e: ObjectError) -> S3Error {
    match e {
        ObjectError::NotModified { .. } => s3_error(ObjectError::PreconditionFailed),
        e => s3_error(e),
    }
}

/// The source of CopyObject / UploadPartCopy (`s3s` has url-decoded it),
/// with the version it names, if any.
pub(crate) fn copy_source(
    src: &CopySource,
) -> S3Result<(cairn_api::BucketName, ObjectKey, Option<Option<String>>)> {
    match src {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((
            bucket_name(bucket)?,
            object_key(key)?,
            version_param(version_id.as_deref())?,
        )),
        CopySource::AccessPoint { .. } | CopySource::Outpost { .. } => {
            Err(not_implemented("access point and outpost copy sources"))
        }
    }
}

impl CairnS3 {
    pub(crate) async fn do_put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let S3Request {
            input,
            headers,
            trailing_headers,
            extensions,
            ..
        } = req;
        let bucket = bucket_name(&input.bucket)?;
        let headers = crate::postform::with_form_checksums(headers, &input);
        // A form upload's `${filename}` is the uploaded file's name
        // (crate::postform; only the front sets this extension).
        let form_file = extensions.get::<crate::postform::UploadFileName>();
        let form = form_file.is_some();
        let key = match form_file {
            Some(name) => object_key(&input.key.replace("${filename}", &name.0))?,
            None => object_key(&input.key)?,
        };

        let (tags, retention, legal_hold, acl) = crate::write_request_attrs!(input);
        let acl = self.request_acl(&bucket, &acl).await?;
        let precondition = crate::convert::write_precondition(
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
        )?;
        refuse_if_some(
            input.write_offset_bytes.as_ref(),
            "appends (x-amz-write-offset-bytes)",
        )?;
        let sse = SseHeaders {
            sse: input.server_side_encryption.as_ref(),
            kms_key_id: input.ssekms_key_id.as_deref(),
            kms_context: input.ssekms_encryption_context.as_deref(),
            customer: CustomerHeaders::new(
                input.sse_customer_algorithm.as_ref(),
                input.sse_customer_key.as_ref(),
                input.sse_customer_key_md5.as_ref(),
            ),
        }
        .parse(&extensions)?;
        let presented = customer_key_of(sse.as_ref());
        let kms_context = matches!(sse, Some(SseRequest::Kms { .. }))
            .then(|| input.ssekms_encryption_context.clone())
            .flatten();

        let metadata = MetadataInput {
            content_type: input.content_type,
            content_encoding: input.content_encoding,
            content_disposition: input.content_disposition,
            content_language: input.content_language,
            cache_control: input.cache_control,
            expires: input.expires,
            user: input.metadata,
            storage_class: input.storage_class,
        }
        .into_metadata()?;
        let content_length = content_length(input.content_length)?;
        check_put_size(content_length)?;
        let opts = PutOptions {
            metadata,
            content_length,
            content_md5: content_md5(input.content_md5.as_deref())?,
            checksum: checksum_request(
                &headers,
                input.checksum_algorithm.as_ref(),
                trailing_headers.as_ref(),
            )?,
            sse,
            tags,
            retention,
            legal_hold,
            acl,
            // an S3 answer means durable
            write_back: false,
            precondition,
            event: form.then_some(cairn_api::notify::EventName::Post),
            replica: crate::replication::replica_of(&headers)?,
        };
        // a form upload's file refused for its size mid-stream: AWS's code
        let sizes = crate::postform::SizeWatch::default();
        let body = sizes.watch(crate::convert::request_body(input.body).await);
        let info = self
            .layer
            .put_object(&bucket, &key, body, opts)
            .await
            .map_err(|e| sizes.error(e))?;
        tracing::debug!(bucket = %bucket, key = %key, size = info.size, "object stored");

        let c = ChecksumOut::new(info.checksum.as_ref());
        let mut out = PutObjectOutput {
            e_tag: Some(etag(&info.etag)),
            checksum_crc32: c.crc32,
            checksum_crc32c: c.crc32c,
            checksum_crc64nvme: c.crc64nvme,
            checksum_sha1: c.sha1,
            checksum_sha256: c.sha256,
            checksum_type: c.checksum_type,
            version_id: info.version_id,
            ..Default::default()
        };
        set_sse!(
            out,
            SseOut::new(info.encryption.as_ref(), presented.as_ref())
        );
        if matches!(info.encryption, Some(cairn_api::Encryption::Kms { .. })) {
            out.ssekms_encryption_context = kms_context;
        }
        Ok(S3Response::new(out))
    }

    pub(crate) async fn do_get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let sse_customer = CustomerHeaders::new(
            input.sse_customer_algorithm.as_ref(),
            input.sse_customer_key.as_ref(),
            input.sse_customer_key_md5.as_ref(),
        )
        .parse(&req.extensions, SSE_PREFIX)?;

        let opts = GetOptions {
            version_id: version_param(input.version_id.as_deref())?,
            range: input.range.map(byte_range),
            conditions: conditions(
                input.if_match.as_ref(),
                input.if_none_match.as_ref(),
                input.if_modified_since.as_ref(),
                input.if_unmodified_since.as_ref(),
            ),
            sse_customer: sse_customer.clone(),
            attributes_only: false,
        };
        let mut opts = opts;
        let mut empty_part = false;
        if let Some(n) = part_number_param(input.part_number, opts.range.is_some())? {
            // the part's range of this very version (a replaced object in
            // between fails If-Match: 412, not another object's bytes)
            let (info, (off, len)) = self.layer.part_range(&bucket, &key, &opts, n).await.s3()?;
            if info.parts_count.is_some() {
                if let Some(v) = &info.version_id {
                    opts.version_id = Some(Some(v.clone()));
                }
                opts.conditions.if_match.get_or_insert(info.etag.clone());
                empty_part = len == 0;
                opts.range = (len > 0).then_some(ByteRange::FromTo {
                    first: off,
                    last: Some(off + len - 1),
                });
            }
        }
        if empty_part {
            // an empty part: none of the object's bytes (a read without a
            // range would send them all)
            return self.empty_part(&bucket, &key, &opts).await;
        }
        let obj = self.layer.get_object(&bucket, &key, opts).await.s3()?;

        let size = obj.info.size;
        let (len, content_range) = match obj.range {
            Some((off, len)) => (
                len,
                Some(format!(
                    "bytes {off}-{}/{size}",
                    (off + len).saturating_sub(1)
                )),
            ),
            None => (size, None),
        };
        // A checksum covers the whole object: none for a range.
        let checksum = (checksum_mode_enabled(input.checksum_mode.as_ref()) && obj.range.is_none())
            .then_some(obj.info.checksum.as_ref())
            .flatten();
        let headers = ObjectHeadersOut::new(&obj.info);
        let extra = headers.extra_headers();
        let mut out = object_output!(
            GetObjectOutput,
            &obj.info,
            headers,
            ChecksumOut::new(checksum)
        );
        out.content_length =
            Some(i64::try_from(len).map_err(|_| invalid_argument("object too large"))?);
        out.content_range = content_range;
        out.tag_count = (!obj.info.attrs.tags.is_empty())
            .then(|| i32::try_from(obj.info.attrs.tags.len()).unwrap_or(i32::MAX));
        set_sse!(
            out,
            SseOut::new(obj.info.encryption.as_ref(), sse_customer.as_ref())
        );
        out.body = Some(ResponseBody::blob(obj.body, len));
        Ok(S3Response::with_headers(out, extra))
    }

    /// GET `?partNumber=N` of an empty part of a multipart object: 206,
    /// no bytes, the object's headers.
    async fn empty_part(
        &self,
        bucket: &cairn_api::BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let info = self.layer.head_object_with(bucket, key, opts).await.s3()?;
        let headers = ObjectHeadersOut::new(&info);
        let extra = headers.extra_headers();
        let mut out = object_output!(GetObjectOutput, &info, headers, ChecksumOut::new(None));
        out.content_length = Some(0);
        out.content_range = Some(part_content_range(0, 0, info.size));
        out.tag_count = (!info.attrs.tags.is_empty())
            .then(|| i32::try_from(info.attrs.tags.len()).unwrap_or(i32::MAX));
        set_sse!(
            out,
            SseOut::new(info.encryption.as_ref(), opts.sse_customer.as_ref())
        );
        out.body = Some(ResponseBody::blob(Box::pin(futures::stream::empty()), 0));
        Ok(S3Response::with_headers(out, extra))
    }

    pub(crate) async fn do_head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let sse_customer = CustomerHeaders::new(
            input.sse_customer_algorithm.as_ref(),
            input.sse_customer_key.as_ref(),
            input.sse_customer_key_md5.as_ref(),
        )
        .parse(&req.extensions, SSE_PREFIX)?;

        let opts = GetOptions {
            version_id: version_param(input.version_id.as_deref())?,
            range: None,
            conditions: conditions(
                input.if_match.as_ref(),
                input.if_none_match.as_ref(),
                input.if_modified_since.as_ref(),
                input.if_unmodified_since.as_ref(),
            ),
            sse_customer,
            attributes_only: false,
        };
        let (info, part) = match part_number_param(input.part_number, input.range.is_some())? {
            Some(n) => {
                let (info, range) = self.layer.part_range(&bucket, &key, &opts, n).await.s3()?;
                (info, Some(range))
            }
            None => (
                self.layer
                    .head_object_with(&bucket, &key, &opts)
                    .await
                    .s3()?,
                None,
            ),
        };

        let checksum = checksum_mode_enabled(input.checksum_mode.as_ref())
            .then_some(info.checksum.as_ref())
            .flatten();
        let headers = ObjectHeadersOut::new(&info);
        let mut extra = headers.extra_headers();
        // AWS sends the tag count on HEAD too (HeadObjectOutput has no field)
        if !info.attrs.tags.is_empty() {
            extra.insert(
                "x-amz-tagging-count",
                http::HeaderValue::from(info.attrs.tags.len()),
            );
        }
        let mut out = object_output!(HeadObjectOutput, &info, headers, ChecksumOut::new(checksum));
        // `s3s` answers HEAD with 200 always, so a Range is not applied:
        // the headers describe the whole object.
        out.content_length = Some(
            i64::try_from(part.map_or(info.size, |(_, len)| len))
                .map_err(|_| invalid_argument("object too large"))?,
        );
        // a part of a multipart object: 206 with its range, as GET answers
        if let Some((off, len)) = part.filter(|_| info.parts_count.is_some()) {
            out.content_range = Some(part_content_range(off, len, info.size));
        }
        set_sse!(
            out,
            SseOut::new(info.encryption.as_ref(), opts.sse_customer.as_ref())
        );
        // (s3s answers 206 when a Content-Range is set: vendor/s3s/CAIRN.md)
        Ok(S3Response::with_headers(out, extra))
    }

    pub(crate) async fn do_delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let version_id = version_param(input.version_id.as_deref())?;
        refuse_if_some(input.if_match.as_ref(), "conditional deletes")?;
        refuse_if_some(
            input.if_match_last_modified_time.as_ref(),
            "conditional deletes",
        )?;
        refuse_if_some(input.if_match_size.as_ref(), "conditional deletes")?;
        let opts = DeleteOptions {
            version_id,
            // one root account for now: it may bypass governance
            bypass_governance: input.bypass_governance_retention == Some(true),
            replica: crate::replication::replica_of(&req.headers)?,
            lifecycle: false,
        };
        let out = self
            .layer
            .delete_object_with(&bucket, &key, opts)
            .await
            .s3()?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: out.delete_marker.then_some(true),
            version_id: out.version_id,
            ..Default::default()
        }))
    }

    pub(crate) async fn do_delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let objects = input.delete.objects;
        if objects.is_empty() || objects.len() > MAX_DELETE_KEYS {
            return Err(S3Error::with_message(
                S3ErrorCode::MalformedXML,
                format!(
                    "DeleteObjects names {} keys; it must name 1 to {MAX_DELETE_KEYS}",
                    objects.len()
                ),
            ));
        }
        // The bucket must exist even when every key is refused below.
        self.layer.head_bucket(&bucket).await.s3()?;

        let mut errors: Vec<(usize, Error)> = Vec::new();
        let bypass_governance = input.bypass_governance_retention == Some(true);
        let mut keys: Vec<(usize, (String, DeleteOptions))> = Vec::new();
        // each key is authorized on its own (crate::authz)
        let authorized = req.extensions.get::<crate::authz::Authorized>();
        for (i, o) in objects.into_iter().enumerate() {
            let mut checked = version_param(o.version_id.as_deref()).and_then(|v| {
                ObjectKey::new(o.key.clone()).map_err(s3_error)?;
                Ok(v)
            });
            if let Ok(v) = &checked {
                let action = if v.is_some() {
                    "s3:DeleteObjectVersion"
                } else {
                    "s3:DeleteObject"
                };
                let allowed = match authorized {
                    Some(a) => {
                        a.may(action, bucket.as_str(), Some(&o.key)).await
                            && (!bypass_governance
                                || a.may(
                                    "s3:BypassGovernanceRetention",
                                    bucket.as_str(),
                                    Some(&o.key),
                                )
                                .await)
                    }
                    None => false,
                };
                if !allowed {
                    checked = Err(S3Error::with_message(
                        S3ErrorCode::AccessDenied,
                        "Access Denied.",
                    ));
                }
            }
            match checked {
                Ok(version_id) => keys.push((
                    i,
                    (
                        o.key,
                        DeleteOptions {
                            version_id,
                            bypass_governance,
                            replica: None,
                            lifecycle: false,
                        },
                    ),
                )),
                Err(e) => errors.push((i, key_error(o.key, &e))),
            }
        }
        let order: Vec<usize> = keys.iter().map(|(i, _)| *i).collect();
        let asked: Vec<Option<String>> = keys
            .iter()
            .map(|(_, (_, o))| {
                o.version_id
                    .clone()
                    .map(|v| version_label(v.as_deref()).to_owned())
            })
            .collect();
        let results = self
            .layer
            .delete_objects(&bucket, keys.into_iter().map(|(_, k)| k).collect())
            .await;
        let mut deleted = Vec::new();
        for ((i, r), asked) in order.into_iter().zip(results).zip(asked) {
            match r.result {
                Ok(out) => {
                    // a marker's id: the one this delete made, or the
                    // one it removed by id (as AWS names it)
                    let marker_id = out
                        .delete_marker
                        .then(|| asked.clone().or_else(|| out.version_id.clone()))
                        .flatten();
                    deleted.push((
                        i,
                        DeletedObject {
                            key: Some(r.key),
                            delete_marker: out.delete_marker.then_some(true),
                            delete_marker_version_id: marker_id,
                            version_id: asked,
                        },
                    ))
                }
                Err(e) => errors.push((i, key_error(r.key, &s3_error(e)))),
            }
        }
        deleted.sort_by_key(|(i, _)| *i);
        errors.sort_by_key(|(i, _)| *i);
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: (!quiet).then(|| deleted.into_iter().map(|(_, d)| d).collect()),
            errors: Some(errors.into_iter().map(|(_, e)| e).collect()),
            ..Default::default()
        }))
    }

    pub(crate) async fn do_copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        // the destination's conditions, judged by the layer with the commit
        let precondition = crate::convert::copy_destination_precondition(&req.headers)?;
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let (src_bucket, src_key, source_version_id) = copy_source(&input.copy_source)?;

        let (tags, retention, legal_hold, acl) = crate::write_request_attrs!(input);
        // a copy gets the ACL the request names, never its source's
        let acl = self.request_acl(&bucket, &acl).await?;
        if retention.is_some() || legal_hold {
            return Err(not_implemented("object lock headers on CopyObject"));
        }
        let tags = match input.tagging_directive.as_ref().map(|d| d.as_str()) {
            None | Some(TaggingDirective::COPY) => None,
            Some(TaggingDirective::REPLACE) => Some(tags),
            Some(other) => {
                return Err(invalid_argument(format!(
                    "x-amz-tagging-directive {other:?} is neither COPY nor REPLACE"
                )));
            }
        };
        let sse = SseHeaders {
            sse: input.server_side_encryption.as_ref(),
            kms_key_id: input.ssekms_key_id.as_deref(),
            kms_context: input.ssekms_encryption_context.as_deref(),
            customer: CustomerHeaders::new(
                input.sse_customer_algorithm.as_ref(),
                input.sse_customer_key.as_ref(),
                input.sse_customer_key_md5.as_ref(),
            ),
        }
        .parse(&req.extensions)?;
        let source_sse_customer = CustomerHeaders::new(
            input.copy_source_sse_customer_algorithm.as_ref(),
            input.copy_source_sse_customer_key.as_ref(),
            input.copy_source_sse_customer_key_md5.as_ref(),
        )
        .parse(&req.extensions, COPY_SOURCE_PREFIX)?;
        let presented = customer_key_of(sse.as_ref());

        let replace = match input.metadata_directive.as_ref().map(|d| d.as_str()) {
            None | Some(MetadataDirective::COPY) => false,
            Some(MetadataDirective::REPLACE) => true,
            Some(other) => {
                return Err(invalid_argument(format!(
                    "x-amz-metadata-directive {other:?} is neither COPY nor REPLACE"
                )));
            }
        };
        let class = input
            .storage_class
            .as_ref()
            .map(|c| storage_class(Some(c)))
            .transpose()?;
        // A copy onto itself must change something: metadata, storage
        // class or encryption.
        if !replace
            && class.is_none()
            && sse.is_none()
            && tags.is_none()
            && source_version_id.is_none()
            && src_bucket == bucket
            && src_key == key
        {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself \
                 without changing the object's metadata, storage class, website redirect \
                 location or encryption attributes.",
            ));
        }
        let metadata = if replace {
            LayerDirective::Replace(
                MetadataInput {
                    content_type: input.content_type,
                    content_encoding: input.content_encoding,
                    content_disposition: input.content_disposition,
                    content_language: input.content_language,
                    cache_control: input.cache_control,
                    expires: input.expires,
                    user: input.metadata,
                    storage_class: input.storage_class,
                }
                .into_metadata()?,
            )
        } else {
            LayerDirective::Copy
        };
        let opts = CopyOptions {
            metadata,
            source_conditions: conditions(
                input.copy_source_if_match.as_ref(),
                input.copy_source_if_none_match.as_ref(),
                input.copy_source_if_modified_since.as_ref(),
                input.copy_source_if_unmodified_since.as_ref(),
            ),
            storage_class: class,
            source_sse_customer,
            sse,
            // S3 copies take their encryption from the request (or the
            // bucket default), never from the source
            keep_encryption: false,
            source_version_id: source_version_id.clone(),
            tags,
            acl: Some(acl),
            checksum: input
                .checksum_algorithm
                .as_ref()
                .map(crate::convert::checksum_algorithm)
                .transpose()?,
            precondition,
        };
        let info = self
            .layer
            .copy_object(&src_bucket, &src_key, &bucket, &key, opts)
            .await
            .map_err(copy_error)?;
        let c = ChecksumOut::new(info.checksum.as_ref());
        let mut out = CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                checksum_crc32: c.crc32,
                checksum_crc32c: c.crc32c,
                checksum_crc64nvme: c.crc64nvme,
                checksum_sha1: c.sha1,
                checksum_sha256: c.sha256,
                checksum_type: c.checksum_type,
                e_tag: Some(etag(&info.etag)),
                last_modified: Some(timestamp(info.last_modified)),
            }),
            version_id: info.version_id,
            copy_source_version_id: source_version_id
                .map(|v| version_label(v.as_deref()).to_owned()),
            ..Default::default()
        };
        set_sse!(
            out,
            SseOut::new(info.encryption.as_ref(), presented.as_ref())
        );
        Ok(S3Response::new(out))
    }
}

/// The customer key of an SSE-C request.
pub(crate) fn customer_key_of(sse: Option<&SseRequest>) -> Option<CustomerKey> {
    match sse {
        Some(SseRequest::Customer(k)) => Some(k.clone()),
        _ => None,
    }
}

fn key_error(key: String, e: &S3Error) -> Error {
    Error {
        code: Some(e.code().as_str().to_owned()),
        key: Some(key),
        message: e.message().map(str::to_owned),
        version_id: None,
    }
}
