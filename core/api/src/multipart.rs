//! The S3 multipart rules every layer applies the same way.

use std::collections::BTreeMap;

use crate::error::{ObjectError, ObjectResult};
use crate::types::*;

pub fn check_part_number(n: u32) -> ObjectResult<()> {
    if n == 0 || n > MAX_PART_NUMBER {
        return Err(ObjectError::InvalidArgument {
            message: format!("part number {n} is not between 1 and 10000"),
        });
    }
    Ok(())
}

/// The S3 rules for CompleteMultipartUpload, shared by every layer:
/// ascending part numbers, each uploaded with a matching ETag, every part
/// but the last at least 5 MiB. Returns the chosen parts in order.
pub fn validate_complete(
    parts: &[CompletePart],
    uploaded: &BTreeMap<u32, PartInfo>,
) -> ObjectResult<Vec<PartInfo>> {
    if parts.is_empty() {
        return Err(ObjectError::InvalidArgument {
            message: "CompleteMultipartUpload needs at least one part".into(),
        });
    }
    let mut chosen = Vec::with_capacity(parts.len());
    let mut last = 0;
    for p in parts {
        if p.part_number <= last {
            return Err(ObjectError::InvalidPartOrder);
        }
        last = p.part_number;
        let up = uploaded
            .get(&p.part_number)
            .filter(|u| u.etag == p.etag.trim_matches('"'))
            .ok_or(ObjectError::InvalidPart {
                part_number: p.part_number,
            })?;
        chosen.push(up.clone());
    }
    for p in chosen.split_last().map_or(&[][..], |(_, init)| init) {
        if p.size < MIN_PART_SIZE {
            return Err(ObjectError::EntityTooSmall {
                part_number: p.part_number,
                size: p.size,
            });
        }
    }
    Ok(chosen)
}

/// ListParts paging over parts sorted by number.
pub fn page_parts(parts: Vec<PartInfo>, marker: Option<u32>, max: usize) -> ListPartsPage {
    let mut rest: Vec<PartInfo> = parts
        .into_iter()
        .filter(|p| marker.is_none_or(|m| p.part_number > m))
        .collect();
    rest.sort_by_key(|p| p.part_number);
    let is_truncated = rest.len() > max;
    rest.truncate(max);
    ListPartsPage {
        next_part_number_marker: rest.last().map(|p| p.part_number).filter(|_| is_truncated),
        parts: rest,
        is_truncated,
    }
}

/// ListMultipartUploads ordering (key, then initiation) and paging.
pub fn page_uploads(mut all: Vec<UploadInfo>, opts: &ListUploadsOptions) -> ListUploadsPage {
    all.retain(|u| u.key.starts_with(&opts.prefix));
    all.sort_by(|a, b| {
        (&a.key, a.initiated, &a.upload_id).cmp(&(&b.key, b.initiated, &b.upload_id))
    });
    if let Some(km) = &opts.key_marker {
        all.retain(|u| match &opts.upload_id_marker {
            Some(im) => u.key > *km || (u.key == *km && u.upload_id > *im),
            None => u.key > *km,
        });
    }
    let max = if opts.max_uploads == 0 {
        1000
    } else {
        opts.max_uploads
    };
    let is_truncated = all.len() > max;
    all.truncate(max);
    ListUploadsPage {
        uploads: all,
        is_truncated,
    }
}
