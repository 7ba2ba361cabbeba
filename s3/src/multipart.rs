//! Multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
//! ListParts, CompleteMultipartUpload, AbortMultipartUpload,
//! ListMultipartUploads.

use std::collections::BTreeSet;

use cairn_api::mpchecksum::{CompleteChecksums, UploadChecksum};
use cairn_api::{
    ByteRange, ChecksumAlgorithm, ChecksumRequest, CompletePart, GetOptions, ListUploadsOptions,
    PartOptions, PutOptions,
};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::convert::{
    ChecksumOut, MetadataInput, bucket_name, check_put_size, checksum_algorithm, checksum_request,
    conditions, content_length, content_md5, dto_checksum_algorithm, etag, object_key,
    output_storage_class, refuse_if_some, timestamp,
};
use crate::errors::{IntoS3 as _, invalid_argument};
use crate::list::{enc, page_size, url_encoding};
use crate::objects::{copy_error, copy_source};
use crate::service::CairnS3;
use crate::set_sse;
use crate::sse::{COPY_SOURCE_PREFIX, CustomerHeaders, SSE_PREFIX, SseHeaders, SseOut};

/// `x-amz-checksum-type`: COMPOSITE or FULL_OBJECT.
fn checksum_type_param(t: &ChecksumType) -> S3Result<cairn_api::mpchecksum::ChecksumType> {
    use cairn_api::mpchecksum::ChecksumType as T;
    match t.as_str() {
        ChecksumType::COMPOSITE => Ok(T::Composite),
        ChecksumType::FULL_OBJECT => Ok(T::FullObject),
        other => Err(invalid_argument(format!(
            "x-amz-checksum-type {other:?} is neither COMPOSITE nor FULL_OBJECT"
        ))),
    }
}

/// A checksum given in one of the five `Checksum*` fields of a request
/// (a CompletedPart, or the complete's `x-amz-checksum-*` headers).
/// Several at once are refused, as for a PUT.
fn given_checksum(
    fields: [(ChecksumAlgorithm, Option<String>); 5],
) -> S3Result<Option<cairn_api::Checksum>> {
    let mut given = fields.into_iter().filter_map(|(a, v)| v.map(|v| (a, v)));
    let first = given.next();
    if given.next().is_some() {
        return Err(invalid_argument(
            "Expecting a single checksum. Multiple checksum types are not allowed.",
        ));
    }
    Ok(first.map(|(algorithm, value)| cairn_api::Checksum {
        algorithm,
        value: value.trim().to_owned(),
    }))
}

fn part_number(n: i32) -> S3Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=cairn_api::MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| invalid_argument(format!("part number {n} is not between 1 and 10000")))
}

/// `x-amz-copy-source-range: bytes=first-last` (both required, inclusive).
fn copy_source_range(v: &str) -> S3Result<ByteRange> {
    let bad = || {
        invalid_argument(format!(
            "x-amz-copy-source-range {v:?} must be of the form bytes=first-last"
        ))
    };
    let (first, last) = v
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(bad)?;
    let first: u64 = first.trim().parse().map_err(|_| bad())?;
    let last: u64 = last.trim().parse().map_err(|_| bad())?;
    if last < first {
        return Err(bad());
    }
    Ok(ByteRange::FromTo {
        first,
        last: Some(last),
    })
}

/// An SSE-C key as the request it came with.
fn customer_sse(k: Option<cairn_api::CustomerKey>) -> Option<cairn_api::SseRequest> {
    k.map(cairn_api::SseRequest::Customer)
}

impl CairnS3 {
    pub(crate) async fn do_create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let S3Request {
            input, extensions, ..
        } = req;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;

        let (tags, retention, legal_hold, acl) = crate::write_request_attrs!(input);
        let acl = self.request_acl(&bucket, &acl).await?;
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
        let kms_context = matches!(sse, Some(cairn_api::SseRequest::Kms { .. }))
            .then(|| input.ssekms_encryption_context.clone())
            .flatten();
        let upload_checksum = UploadChecksum::new(
            input
                .checksum_algorithm
                .as_ref()
                .map(checksum_algorithm)
                .transpose()?,
            input
                .checksum_type
                .as_ref()
                .map(checksum_type_param)
                .transpose()?,
        )
        .s3()?;
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
        let opts = PutOptions {
            metadata,
            content_length: None,
            content_md5: None,
            checksum: upload_checksum.map(|c| ChecksumRequest {
                algorithm: c.algorithm,
                expected: None,
                trailer: None,
                full_object: c.kind == cairn_api::mpchecksum::ChecksumType::FullObject,
            }),
            sse: sse.clone(),
            tags,
            retention,
            legal_hold,
            acl,
            // an S3 answer means durable
            event: None,
            write_back: false,
            // conditions come with the complete
            precondition: None,
            replica: None,
        };
        let upload_id = self
            .layer
            .create_multipart_upload(&bucket, &key, opts)
            .await
            .s3()?;
        // The upload is encrypted as asked, else with the bucket's default
        // (looked up only to answer with it).
        let applied = match sse {
            Some(r) => Some(r),
            None => self
                .layer
                .get_bucket_encryption(&bucket)
                .await
                .ok()
                .flatten()
                .map(|e| e.request()),
        };
        let mut out = CreateMultipartUploadOutput {
            bucket: Some(bucket.to_string()),
            key: Some(key.to_string()),
            upload_id: Some(upload_id),
            checksum_algorithm: upload_checksum.map(|c| dto_checksum_algorithm(c.algorithm)),
            checksum_type: upload_checksum.map(|c| ChecksumType::from(c.kind.as_str().to_owned())),
            ..Default::default()
        };
        set_sse!(out, SseOut::requested(applied.as_ref()));
        out.ssekms_encryption_context = kms_context;
        Ok(S3Response::new(out))
    }

    pub(crate) async fn do_upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let S3Request {
            input,
            headers,
            trailing_headers,
            extensions,
            ..
        } = req;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let number = part_number(input.part_number)?;
        let sse_customer = CustomerHeaders::new(
            input.sse_customer_algorithm.as_ref(),
            input.sse_customer_key.as_ref(),
            input.sse_customer_key_md5.as_ref(),
        )
        .parse(&extensions, SSE_PREFIX)?;

        let content_length = content_length(input.content_length)?;
        check_put_size(content_length)?;
        let opts = PartOptions {
            content_length,
            content_md5: content_md5(input.content_md5.as_deref())?,
            checksum: checksum_request(
                &headers,
                input.checksum_algorithm.as_ref(),
                trailing_headers.as_ref(),
            )?,
            sse_customer: sse_customer.clone(),
        };
        let body = crate::convert::request_body(input.body).await;
        let part = self
            .layer
            .upload_part(&bucket, &key, &input.upload_id, number, body, opts)
            .await
            .s3()?;
        let c = ChecksumOut::new(part.checksum.as_ref());
        let mut out = UploadPartOutput {
            e_tag: Some(etag(&part.etag)),
            checksum_crc32: c.crc32,
            checksum_crc32c: c.crc32c,
            checksum_crc64nvme: c.crc64nvme,
            checksum_sha1: c.sha1,
            checksum_sha256: c.sha256,
            ..Default::default()
        };
        set_sse!(out, SseOut::requested(customer_sse(sse_customer).as_ref()));
        Ok(S3Response::new(out))
    }

    pub(crate) async fn do_upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let number = part_number(input.part_number)?;
        let (src_bucket, src_key, source_version_id) = copy_source(&input.copy_source)?;
        let sse_customer = CustomerHeaders::new(
            input.sse_customer_algorithm.as_ref(),
            input.sse_customer_key.as_ref(),
            input.sse_customer_key_md5.as_ref(),
        )
        .parse(&req.extensions, SSE_PREFIX)?;
        let source_sse_customer = CustomerHeaders::new(
            input.copy_source_sse_customer_algorithm.as_ref(),
            input.copy_source_sse_customer_key.as_ref(),
            input.copy_source_sse_customer_key_md5.as_ref(),
        )
        .parse(&req.extensions, COPY_SOURCE_PREFIX)?;

        let src = GetOptions {
            version_id: source_version_id,
            range: input
                .copy_source_range
                .as_deref()
                .map(copy_source_range)
                .transpose()?,
            conditions: conditions(
                input.copy_source_if_match.as_ref(),
                input.copy_source_if_none_match.as_ref(),
                input.copy_source_if_modified_since.as_ref(),
                input.copy_source_if_unmodified_since.as_ref(),
            ),
            sse_customer: source_sse_customer,
            attributes_only: false,
        };
        // A range past the source's end is refused, as AWS does (400
        // InvalidArgument), not clamped as a GET's range is.
        if let Some(ByteRange::FromTo {
            last: Some(last), ..
        }) = src.range
        {
            let info = self
                .layer
                .head_object_with(&src_bucket, &src_key, &src)
                .await
                .map_err(copy_error)?;
            if last >= info.size {
                return Err(invalid_argument(format!(
                    "Range specified is not valid for source object of size: {}",
                    info.size
                )));
            }
        }
        let part = self
            .layer
            .upload_part_copy(
                &bucket,
                &key,
                &input.upload_id,
                number,
                &src_bucket,
                &src_key,
                src,
                PartOptions {
                    sse_customer: sse_customer.clone(),
                    ..PartOptions::default()
                },
            )
            .await
            .map_err(copy_error)?;
        let c = ChecksumOut::new(part.checksum.as_ref());
        let mut out = UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                checksum_crc32: c.crc32,
                checksum_crc32c: c.crc32c,
                checksum_crc64nvme: c.crc64nvme,
                checksum_sha1: c.sha1,
                checksum_sha256: c.sha256,
                e_tag: Some(etag(&part.etag)),
                last_modified: Some(timestamp(part.last_modified)),
            }),
            ..Default::default()
        };
        set_sse!(out, SseOut::requested(customer_sse(sse_customer).as_ref()));
        Ok(S3Response::new(out))
    }

    pub(crate) async fn do_list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let max_parts = page_size(input.max_parts, "max-parts")?;
        let marker = input
            .part_number_marker
            .map(|m| {
                u32::try_from(m)
                    .map_err(|_| invalid_argument(format!("part-number-marker {m} is negative")))
            })
            .transpose()?;
        let page = self
            .layer
            .list_parts(&bucket, &key, &input.upload_id, marker, max_parts)
            .await
            .s3()?;
        let parts: Vec<Part> = page
            .parts
            .into_iter()
            .map(|p| {
                let c = ChecksumOut::new(p.checksum.as_ref());
                Part {
                    checksum_crc32: c.crc32,
                    checksum_crc32c: c.crc32c,
                    checksum_crc64nvme: c.crc64nvme,
                    checksum_sha1: c.sha1,
                    checksum_sha256: c.sha256,
                    e_tag: Some(etag(&p.etag)),
                    last_modified: Some(timestamp(p.last_modified)),
                    part_number: i32::try_from(p.part_number).ok(),
                    size: i64::try_from(p.size).ok(),
                }
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(bucket.to_string()),
            key: Some(key.to_string()),
            upload_id: Some(input.upload_id),
            initiator: Some(self.initiator()),
            owner: Some(self.owner()),
            is_truncated: Some(page.is_truncated),
            max_parts: i32::try_from(max_parts).ok(),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: page
                .next_part_number_marker
                .and_then(|n| i32::try_from(n).ok()),
            parts: Some(parts),
            ..Default::default()
        }))
    }

    pub(crate) async fn do_complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let precondition = crate::convert::write_precondition(
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
        )?;
        // The SSE-C headers are allowed (S3 wants them for checksums of
        // SSE-C uploads); the parts are already encrypted with the key, so
        // they are only checked.
        CustomerHeaders::new(
            input.sse_customer_algorithm.as_ref(),
            input.sse_customer_key.as_ref(),
            input.sse_customer_key_md5.as_ref(),
        )
        .parse(&req.extensions, SSE_PREFIX)?;

        let malformed = |why: &str| {
            S3Error::with_message(
                S3ErrorCode::MalformedXML,
                format!(
                    "The XML you provided was not well-formed or did not validate against our published schema: {why}"
                ),
            )
        };
        let listed = input
            .multipart_upload
            .and_then(|m| m.parts)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| malformed("no parts are listed"))?;
        let mut parts = Vec::with_capacity(listed.len());
        let mut checksums = CompleteChecksums {
            object: given_checksum([
                (ChecksumAlgorithm::Crc32, input.checksum_crc32),
                (ChecksumAlgorithm::Crc32c, input.checksum_crc32c),
                (ChecksumAlgorithm::Crc64Nvme, input.checksum_crc64nvme),
                (ChecksumAlgorithm::Sha1, input.checksum_sha1),
                (ChecksumAlgorithm::Sha256, input.checksum_sha256),
            ])?,
            kind: input
                .checksum_type
                .as_ref()
                .map(checksum_type_param)
                .transpose()?,
            ..Default::default()
        };
        for p in listed {
            let n = p
                .part_number
                .ok_or_else(|| malformed("a part has no PartNumber"))?;
            let etag = p.e_tag.ok_or_else(|| malformed("a part has no ETag"))?;
            let n = part_number(n)?;
            if let Some(c) = given_checksum([
                (ChecksumAlgorithm::Crc32, p.checksum_crc32),
                (ChecksumAlgorithm::Crc32c, p.checksum_crc32c),
                (ChecksumAlgorithm::Crc64Nvme, p.checksum_crc64nvme),
                (ChecksumAlgorithm::Sha1, p.checksum_sha1),
                (ChecksumAlgorithm::Sha256, p.checksum_sha256),
            ])? {
                checksums.parts.insert(n, c);
            }
            parts.push(CompletePart {
                part_number: n,
                etag: etag.value().to_owned(),
            });
        }
        // On its own task: a client that goes away (or times out) does not
        // cancel a complete half way, and its retry gets the result
        // (ObjectLayer keeps completed uploads' results a while).
        let layer = self.layer.clone();
        let (b, k, id) = (bucket.clone(), key.clone(), input.upload_id.clone());
        let info = tokio::spawn(async move {
            layer
                .complete_multipart_upload_with(
                    &b,
                    &k,
                    &id,
                    parts,
                    cairn_api::CompleteOptions {
                        precondition,
                        checksums,
                    },
                )
                .await
        })
        .await
        .map_err(cairn_api::ObjectError::internal)
        .and_then(|r| r)
        .s3()?;
        tracing::debug!(bucket = %bucket, key = %key, size = info.size, "multipart upload completed");
        let c = ChecksumOut::new(info.checksum.as_ref());
        let sse = SseOut::new(info.encryption.as_ref(), None);
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(bucket.to_string()),
            key: Some(key.to_string()),
            location: Some(format!("/{bucket}/{key}")),
            e_tag: Some(etag(&info.etag)),
            checksum_crc32: c.crc32,
            checksum_crc32c: c.crc32c,
            checksum_crc64nvme: c.crc64nvme,
            checksum_sha1: c.sha1,
            checksum_sha256: c.sha256,
            checksum_type: c.checksum_type,
            version_id: info.version_id,
            server_side_encryption: sse.server_side_encryption,
            ssekms_key_id: sse.ssekms_key_id,
            ..Default::default()
        }))
    }

    pub(crate) async fn do_abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        refuse_if_some(
            input.if_match_initiated_time.as_ref(),
            "conditional aborts (x-amz-if-match-initiated-time)",
        )?;
        self.layer
            .abort_multipart_upload(&bucket, &key, &input.upload_id)
            .await
            .s3()?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    pub(crate) async fn do_list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let url = url_encoding(input.encoding_type.as_ref())?;
        let max_uploads = page_size(input.max_uploads, "max-uploads")?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());

        let page = if max_uploads == 0 {
            self.layer.head_bucket(&bucket).await.s3()?;
            cairn_api::ListUploadsPage::default()
        } else {
            self.layer
                .list_multipart_uploads(
                    &bucket,
                    ListUploadsOptions {
                        prefix: prefix.clone(),
                        key_marker: input.key_marker.clone().filter(|m| !m.is_empty()),
                        upload_id_marker: input.upload_id_marker.clone().filter(|m| !m.is_empty()),
                        max_uploads,
                    },
                )
                .await
                .s3()?
        };
        let (next_key_marker, next_upload_id_marker) = match page.uploads.last() {
            Some(u) if page.is_truncated => (Some(u.key.clone()), Some(u.upload_id.clone())),
            _ => (None, None),
        };
        // With a delimiter, keys holding it after the prefix roll up into
        // common prefixes (within this page).
        let mut prefixes = BTreeSet::new();
        let mut uploads = Vec::new();
        for u in page.uploads {
            if let Some(d) = &delimiter
                && let Some(pos) = u
                    .key
                    .strip_prefix(prefix.as_str())
                    .and_then(|rest| rest.find(d.as_str()))
            {
                prefixes.insert(u.key[..prefix.len() + pos + d.len()].to_owned());
                continue;
            }
            uploads.push(MultipartUpload {
                initiated: Some(timestamp(u.initiated)),
                initiator: Some(self.initiator()),
                owner: Some(self.owner()),
                storage_class: Some(
                    output_storage_class(u.storage_class)
                        .unwrap_or_else(|| StorageClass::from_static(StorageClass::STANDARD)),
                ),
                upload_id: Some(u.upload_id),
                key: Some(enc(url, u.key)),
                ..Default::default()
            });
        }
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(bucket.to_string()),
            common_prefixes: Some(
                prefixes
                    .into_iter()
                    .map(|p| CommonPrefix {
                        prefix: Some(enc(url, p)),
                    })
                    .collect(),
            ),
            delimiter: delimiter.map(|d| enc(url, d)),
            encoding_type: input.encoding_type,
            is_truncated: Some(page.is_truncated),
            key_marker: Some(enc(url, input.key_marker.unwrap_or_default())),
            max_uploads: i32::try_from(max_uploads).ok(),
            next_key_marker: next_key_marker.map(|k| enc(url, k)),
            next_upload_id_marker,
            prefix: Some(enc(url, prefix)),
            upload_id_marker: Some(input.upload_id_marker.unwrap_or_default()),
            uploads: Some(uploads),
            request_charged: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_ranges() {
        assert_eq!(
            copy_source_range("bytes=0-9").ok(),
            Some(ByteRange::FromTo {
                first: 0,
                last: Some(9)
            })
        );
        for bad in ["bytes=5-1", "0-9", "bytes=-5", "bytes=1-", "bytes=a-b"] {
            assert!(copy_source_range(bad).is_err(), "{bad}");
        }
    }
}
