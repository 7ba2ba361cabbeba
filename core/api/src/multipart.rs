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

/// Part `n`'s `(offset, length)` in an object of parts of `sizes`;
/// `InvalidPartNumber` past them.
pub fn part_range_of(sizes: &[u64], n: u32) -> ObjectResult<(u64, u64)> {
    let idx = usize::try_from(n.saturating_sub(1)).unwrap_or(usize::MAX);
    match sizes.get(idx) {
        Some(len) if n >= 1 => Ok((sizes.iter().take(idx).sum(), *len)),
        _ => Err(ObjectError::InvalidPartNumber {
            part_number: n,
            parts: u32::try_from(sizes.len()).unwrap_or(u32::MAX),
        }),
    }
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

/// How long a completed upload's result is kept for retries.
pub const COMPLETED_KEEP: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// At most this many completed uploads are remembered (oldest go first).
pub const COMPLETED_MAX: usize = 10_000;

/// Results of completed multipart uploads, kept for a while so that a
/// retried CompleteMultipartUpload (a client that timed out, or was cut
/// off, while the first one committed) gets the same answer, as S3 gives
/// it, rather than NoSuchUpload. In memory, bounded by age
/// ([`COMPLETED_KEEP`]) and count ([`COMPLETED_MAX`]); a restart forgets
/// them. Only a retry with the same part list gets the result.
#[derive(Debug, Default)]
pub struct CompletedUploads {
    done: parking_lot::Mutex<std::collections::VecDeque<Completed>>,
}

#[derive(Debug)]
struct Completed {
    at: std::time::Instant,
    upload_id: String,
    bucket: String,
    key: String,
    /// MD5 of the part list (numbers and ETags): a few bytes whatever the
    /// part count.
    parts: [u8; 16],
    info: ObjectInfo,
}

fn parts_digest(parts: &[CompletePart]) -> [u8; 16] {
    use md5::Digest as _;
    let mut h = md5::Md5::new();
    for p in parts {
        h.update(p.part_number.to_be_bytes());
        h.update(p.etag.trim().trim_matches('"').as_bytes());
        h.update(b"\n");
    }
    h.finalize().into()
}

impl CompletedUploads {
    fn expire(done: &mut std::collections::VecDeque<Completed>) {
        while done
            .front()
            .is_some_and(|c| c.at.elapsed() > COMPLETED_KEEP || done.len() > COMPLETED_MAX)
        {
            done.pop_front();
        }
    }

    /// Remembers the result of a completed upload.
    pub fn record(&self, upload_id: &str, parts: &[CompletePart], info: &ObjectInfo) {
        let mut done = self.done.lock();
        done.push_back(Completed {
            at: std::time::Instant::now(),
            upload_id: upload_id.to_owned(),
            bucket: info.bucket.clone(),
            key: info.key.clone(),
            parts: parts_digest(parts),
            info: info.clone(),
        });
        Self::expire(&mut done);
    }

    /// The result of `upload_id` if it completed lately into this bucket
    /// and key with this part list.
    pub fn get(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletePart],
    ) -> Option<ObjectInfo> {
        let mut done = self.done.lock();
        Self::expire(&mut done);
        let digest = parts_digest(parts);
        done.iter()
            .rev()
            .find(|c| {
                c.upload_id == upload_id && c.bucket == bucket && c.key == key && c.parts == digest
            })
            .map(|c| c.info.clone())
    }
}
