//! GetObjectAttributes: ETag, Checksum, ObjectParts (paged), StorageClass
//! and ObjectSize of an object or version, without its body.

use cairn_api::GetOptions;
use cairn_api::multipart::page_parts;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use crate::convert::{
    ChecksumOut, bucket_name, etag, object_key, output_storage_class, timestamp, version_param,
};
use crate::errors::{IntoS3 as _, invalid_argument};
use crate::list::page_size;
use crate::service::CairnS3;
use crate::sse::{CustomerHeaders, SSE_PREFIX};

/// The attributes a request names (`x-amz-object-attributes`, a list that
/// clients send comma-separated in one header or as several headers).
#[derive(Debug, Default, PartialEq, Eq)]
struct Wanted {
    etag: bool,
    checksum: bool,
    parts: bool,
    storage_class: bool,
    size: bool,
}

impl Wanted {
    fn parse(list: &[ObjectAttributes]) -> S3Result<Self> {
        let mut w = Self::default();
        for name in list.iter().flat_map(|a| a.as_str().split(',')) {
            match name.trim() {
                ObjectAttributes::ETAG => w.etag = true,
                ObjectAttributes::CHECKSUM => w.checksum = true,
                ObjectAttributes::OBJECT_PARTS => w.parts = true,
                ObjectAttributes::STORAGE_CLASS => w.storage_class = true,
                ObjectAttributes::OBJECT_SIZE => w.size = true,
                "" => {}
                other => {
                    return Err(invalid_argument(format!(
                        "Invalid attribute name specified: {other:?}"
                    )));
                }
            }
        }
        if w == Self::default() {
            return Err(invalid_argument(
                "x-amz-object-attributes must name at least one attribute",
            ));
        }
        Ok(w)
    }
}

fn object_checksum(c: &cairn_api::Checksum) -> Checksum {
    let c = ChecksumOut::new(Some(c));
    Checksum {
        checksum_crc32: c.crc32,
        checksum_crc32c: c.crc32c,
        checksum_crc64nvme: c.crc64nvme,
        checksum_sha1: c.sha1,
        checksum_sha256: c.sha256,
        checksum_type: c.checksum_type,
    }
}

impl CairnS3 {
    pub(crate) async fn do_get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let wanted = Wanted::parse(&input.object_attributes)?;
        let max_parts = page_size(input.max_parts, "max-parts")?;
        let marker = input
            .part_number_marker
            .map(|m| {
                u32::try_from(m)
                    .map_err(|_| invalid_argument(format!("part-number-marker {m} is negative")))
            })
            .transpose()?;
        // An SSE-C object's attributes need its key, as its HEAD does.
        let sse_customer = CustomerHeaders::new(
            input.sse_customer_algorithm.as_ref(),
            input.sse_customer_key.as_ref(),
            input.sse_customer_key_md5.as_ref(),
        )
        .parse(&req.extensions, SSE_PREFIX)?;
        let opts = GetOptions {
            version_id: version_param(input.version_id.as_deref())?,
            sse_customer,
            ..Default::default()
        };
        let (info, parts) = if wanted.parts {
            self.layer.object_parts(&bucket, &key, &opts).await.s3()?
        } else {
            let info = self
                .layer
                .head_object_with(&bucket, &key, &opts)
                .await
                .s3()?;
            (info, None)
        };

        // ObjectParts only for a multipart object; its Part list only when
        // the object has a checksum (AWS: "if an additional checksum isn't
        // applied to the object, the response doesn't return Part").
        let object_parts = match (wanted.parts, info.parts_count, parts) {
            (true, Some(total), parts) => {
                let page = info
                    .checksum
                    .as_ref()
                    .and(parts)
                    .map(|all| page_parts(all, marker, max_parts));
                Some(GetObjectAttributesParts {
                    total_parts_count: i32::try_from(total).ok(),
                    part_number_marker: input.part_number_marker,
                    max_parts: i32::try_from(max_parts).ok(),
                    is_truncated: Some(page.as_ref().is_some_and(|p| p.is_truncated)),
                    next_part_number_marker: page
                        .as_ref()
                        .and_then(|p| p.next_part_number_marker)
                        .and_then(|n| i32::try_from(n).ok()),
                    parts: page.map(|p| {
                        p.parts
                            .into_iter()
                            .map(|p| {
                                let c = ChecksumOut::new(p.checksum.as_ref());
                                ObjectPart {
                                    checksum_crc32: c.crc32,
                                    checksum_crc32c: c.crc32c,
                                    checksum_crc64nvme: c.crc64nvme,
                                    checksum_sha1: c.sha1,
                                    checksum_sha256: c.sha256,
                                    part_number: i32::try_from(p.part_number).ok(),
                                    size: i64::try_from(p.size).ok(),
                                }
                            })
                            .collect()
                    }),
                })
            }
            _ => None,
        };
        Ok(S3Response::new(GetObjectAttributesOutput {
            e_tag: wanted.etag.then(|| etag(&info.etag)),
            checksum: info
                .checksum
                .as_ref()
                .filter(|_| wanted.checksum)
                .map(object_checksum),
            object_parts,
            storage_class: wanted.storage_class.then(|| {
                output_storage_class(info.storage_class)
                    .unwrap_or_else(|| StorageClass::from_static(StorageClass::STANDARD))
            }),
            object_size: wanted.size.then(|| i64::try_from(info.size).ok()).flatten(),
            last_modified: Some(timestamp(info.last_modified)),
            version_id: info.version_id.clone(),
            delete_marker: None,
            request_charged: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_lists() {
        let one = |s: &str| vec![ObjectAttributes::from(s.to_owned())];
        let w = Wanted::parse(&one("ETag, ObjectParts,ObjectSize")).unwrap();
        assert!(w.etag && w.parts && w.size && !w.checksum && !w.storage_class);
        assert!(Wanted::parse(&one("ETag,Body")).is_err());
        assert!(Wanted::parse(&one("")).is_err());
    }
}
