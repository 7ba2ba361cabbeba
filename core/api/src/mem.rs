//! `MemLayer`: an in-memory `ObjectLayer`, the reference model the
//! conformance suite and the property tests compare real stores against.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt as _;
use parking_lot::Mutex;
use time::OffsetDateTime;

use crate::checksum::{BodyDigest, ChecksumRequest, DigestOutcome, multipart_etag};
use crate::error::{ObjectError, ObjectResult};
use crate::layer::ObjectLayer;
use crate::list::{ListCollector, Push};
use crate::mpchecksum::{UploadChecksum, complete_checksum, part_request};
use crate::multipart::{check_part_number, page_parts, page_uploads, validate_complete};
use crate::names::{BucketName, ObjectKey};
use crate::types::*;

#[derive(Default)]
pub struct MemLayer {
    state: Mutex<State>,
    in_flight: crate::conditional::InFlight,
    completed: crate::multipart::CompletedUploads,
}

#[derive(Default)]
struct State {
    buckets: BTreeMap<String, Bucket>,
    uploads: HashMap<String, Upload>,
}

struct Bucket {
    created: OffsetDateTime,
    /// Only the bucket policy is kept (the rest is not modelled).
    policy: Option<String>,
    objects: BTreeMap<String, (ObjectInfo, Bytes)>,
    /// The parts of completed uploads by (key, ETag): an object's part
    /// list is the one of its key and ETag (a later PUT changes the ETag).
    parts: HashMap<(String, String), Vec<PartInfo>>,
}

struct Upload {
    bucket: String,
    key: String,
    initiated: OffsetDateTime,
    metadata: ObjectMetadata,
    checksum: Option<ChecksumRequest>,
    parts: BTreeMap<u32, (PartInfo, Bytes)>,
}

impl MemLayer {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Reads a body to memory while computing and verifying its digests.
async fn read_body(
    mut body: ByteStream,
    content_length: Option<u64>,
    content_md5: Option<&[u8; 16]>,
    checksum: Option<ChecksumRequest>,
) -> ObjectResult<(Bytes, DigestOutcome)> {
    let mut digest = BodyDigest::new(checksum);
    let mut buf = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ObjectError::BodyRead {
            message: e.to_string(),
        })?;
        digest.update(&chunk);
        buf.extend_from_slice(&chunk);
        if buf.len() as u64 > MAX_PUT_SIZE {
            return Err(ObjectError::EntityTooLarge {
                size: buf.len() as u64,
                max: MAX_PUT_SIZE,
            });
        }
    }
    let out = digest.verify(content_md5, content_length)?;
    Ok((Bytes::from(buf), out))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl State {
    fn bucket(&self, b: &BucketName) -> ObjectResult<&Bucket> {
        self.buckets
            .get(b.as_str())
            .ok_or_else(|| ObjectError::no_such_bucket(b))
    }
    fn bucket_mut(&mut self, b: &BucketName) -> ObjectResult<&mut Bucket> {
        self.buckets
            .get_mut(b.as_str())
            .ok_or_else(|| ObjectError::no_such_bucket(b))
    }
    fn upload(&self, b: &BucketName, k: &ObjectKey, id: &str) -> ObjectResult<&Upload> {
        self.bucket(b)?;
        self.uploads
            .get(id)
            .filter(|u| u.bucket == b.as_str() && u.key == k.as_str())
            .ok_or_else(|| ObjectError::NoSuchUpload {
                upload_id: id.to_owned(),
            })
    }
}

#[async_trait]
impl ObjectLayer for MemLayer {
    fn capabilities(&self) -> crate::caps::Capabilities {
        crate::caps::Capabilities::FULL
    }

    async fn make_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        let mut s = self.state.lock();
        if s.buckets.contains_key(bucket.as_str()) {
            return Err(ObjectError::BucketAlreadyExists {
                bucket: bucket.to_string(),
            });
        }
        s.buckets.insert(
            bucket.to_string(),
            Bucket {
                created: now(),
                policy: None,
                objects: BTreeMap::new(),
                parts: HashMap::new(),
            },
        );
        Ok(())
    }

    async fn head_bucket(&self, bucket: &BucketName) -> ObjectResult<BucketInfo> {
        let s = self.state.lock();
        let b = s.bucket(bucket)?;
        Ok(BucketInfo {
            name: bucket.to_string(),
            created: b.created,
        })
    }

    async fn list_buckets(&self) -> ObjectResult<Vec<BucketInfo>> {
        let s = self.state.lock();
        Ok(s.buckets
            .iter()
            .map(|(n, b)| BucketInfo {
                name: n.clone(),
                created: b.created,
            })
            .collect())
    }

    async fn get_bucket_config(
        &self,
        bucket: &BucketName,
    ) -> ObjectResult<crate::bucketcfg::BucketConfig> {
        let s = self.state.lock();
        Ok(crate::bucketcfg::BucketConfig {
            policy: s.bucket(bucket)?.policy.clone(),
            ..Default::default()
        })
    }

    /// Only the bucket policy (the rest: the trait's default answer).
    async fn update_bucket_config(
        &self,
        bucket: &BucketName,
        change: crate::bucketcfg::BucketChange,
    ) -> ObjectResult<()> {
        let mut s = self.state.lock();
        let b = s.bucket_mut(bucket)?;
        match change {
            crate::bucketcfg::BucketChange::Policy(p) => {
                b.policy = p;
                Ok(())
            }
            _ => Err(ObjectError::NotImplemented {
                what: "bucket configuration other than the policy in MemLayer",
            }),
        }
    }

    async fn delete_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        let mut s = self.state.lock();
        if !s.bucket(bucket)?.objects.is_empty() {
            return Err(ObjectError::BucketNotEmpty {
                bucket: bucket.to_string(),
            });
        }
        s.buckets.remove(bucket.as_str());
        s.uploads.retain(|_, u| u.bucket != bucket.as_str());
        Ok(())
    }

    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: ByteStream,
        opts: PutOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.state.lock().bucket(bucket)?;
        refuse_sse(opts.sse.as_ref())?;
        if let Some(what) = opts.version_attrs_asked() {
            return Err(ObjectError::NotImplemented { what });
        }
        let _claim = self
            .in_flight
            .claim(bucket, key, opts.precondition.as_ref())?;
        let (data, digest) = read_body(
            body,
            opts.content_length,
            opts.content_md5.as_ref(),
            opts.checksum.clone(),
        )
        .await?;
        let info = ObjectInfo {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size: digest.len,
            etag: digest.etag(),
            last_modified: now(),
            headers: opts.metadata.headers,
            user_metadata: opts.metadata.user,
            storage_class: opts.metadata.storage_class,
            checksum: digest.checksum,
            encryption: None,
            version_id: None,
            parts_count: None,
            attrs: Default::default(),
        };
        let mut s = self.state.lock();
        let objects = &mut s.bucket_mut(bucket)?.objects;
        if let Some(p) = &opts.precondition {
            let current = objects.get(key.as_str()).map(|(i, _)| i.etag.as_str());
            p.check(current, bucket, key)?;
        }
        objects.insert(key.to_string(), (info.clone(), data));
        Ok(info)
    }

    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: GetOptions,
    ) -> ObjectResult<GetObject> {
        let s = self.state.lock();
        let (info, data) = s
            .bucket(bucket)?
            .objects
            .get(key.as_str())
            .ok_or_else(|| ObjectError::no_such_key(bucket, key))?;
        opts.conditions.check(info)?;
        let range = opts.range.map(|r| r.resolve(info.size)).transpose()?;
        let body = match range {
            Some((off, len)) => data.slice(off as usize..(off + len) as usize),
            None => data.clone(),
        };
        Ok(GetObject {
            info: info.clone(),
            range,
            body: bytes_stream(body),
        })
    }

    async fn head_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        conditions: &Conditions,
    ) -> ObjectResult<ObjectInfo> {
        let s = self.state.lock();
        let (info, _) = s
            .bucket(bucket)?
            .objects
            .get(key.as_str())
            .ok_or_else(|| ObjectError::no_such_key(bucket, key))?;
        conditions.check(info)?;
        Ok(info.clone())
    }

    async fn object_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
    ) -> ObjectResult<(ObjectInfo, Option<Vec<PartInfo>>)> {
        let s = self.state.lock();
        let b = s.bucket(bucket)?;
        let (info, _) = b
            .objects
            .get(key.as_str())
            .ok_or_else(|| ObjectError::no_such_key(bucket, key))?;
        opts.conditions.check(info)?;
        let parts = info
            .parts_count
            .and_then(|_| b.parts.get(&(key.to_string(), info.etag.clone())).cloned());
        Ok((info.clone(), parts))
    }

    async fn delete_object(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()> {
        let mut s = self.state.lock();
        s.bucket_mut(bucket)?.objects.remove(key.as_str());
        Ok(())
    }

    async fn list_objects(&self, bucket: &BucketName, opts: ListOptions) -> ObjectResult<ListPage> {
        let s = self.state.lock();
        let b = s.bucket(bucket)?;
        let start = opts
            .start_after
            .clone()
            .filter(|a| a.as_str() > opts.prefix.as_str())
            .unwrap_or_else(|| opts.prefix.clone());
        let mut c = ListCollector::new(opts);
        for (k, (info, _)) in b.objects.range(start..) {
            if c.push(k, || Some(info.clone())) == Push::Full {
                break;
            }
        }
        Ok(c.finish())
    }

    async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
    ) -> ObjectResult<String> {
        refuse_sse(opts.sse.as_ref())?;
        if let Some(what) = opts.version_attrs_asked() {
            return Err(ObjectError::NotImplemented { what });
        }
        let mut s = self.state.lock();
        s.bucket(bucket)?;
        let id = uuid::Uuid::new_v4().to_string();
        s.uploads.insert(
            id.clone(),
            Upload {
                bucket: bucket.to_string(),
                key: key.to_string(),
                initiated: now(),
                metadata: opts.metadata,
                checksum: opts.checksum,
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
        body: ByteStream,
        opts: PartOptions,
    ) -> ObjectResult<PartInfo> {
        check_part_number(part_number)?;
        let algorithm = self
            .state
            .lock()
            .upload(bucket, key, upload_id)?
            .checksum
            .as_ref()
            .map(|c| c.algorithm);
        let (data, digest) = read_body(
            body,
            opts.content_length,
            opts.content_md5.as_ref(),
            part_request(algorithm, opts.checksum)?,
        )
        .await?;
        let info = PartInfo {
            part_number,
            etag: digest.etag(),
            size: digest.len,
            last_modified: now(),
            checksum: digest.checksum,
        };
        let mut s = self.state.lock();
        let up = s
            .uploads
            .get_mut(upload_id)
            .ok_or_else(|| ObjectError::NoSuchUpload {
                upload_id: upload_id.to_owned(),
            })?;
        up.parts.insert(part_number, (info.clone(), data));
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
        let s = self.state.lock();
        let up = s.upload(bucket, key, upload_id)?;
        let parts: Vec<PartInfo> = up.parts.values().map(|(p, _)| p.clone()).collect();
        Ok(page_parts(parts, part_number_marker, max_parts))
    }

    async fn complete_multipart_upload_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: Vec<CompletePart>,
        opts: crate::conditional::CompleteOptions,
    ) -> ObjectResult<ObjectInfo> {
        let mut s = self.state.lock();
        let up = match s.upload(bucket, key, upload_id) {
            Ok(up) => up,
            Err(ObjectError::NoSuchUpload { .. })
                if let Some(info) =
                    self.completed
                        .get(bucket.as_str(), key.as_str(), upload_id, &parts) =>
            {
                return Ok(info);
            }
            Err(e) => return Err(e),
        };
        if let Some(p) = &opts.precondition {
            let current = s
                .bucket(bucket)?
                .objects
                .get(key.as_str())
                .map(|(i, _)| i.etag.as_str());
            p.check(current, bucket, key)?;
        }
        let uploaded: BTreeMap<u32, PartInfo> =
            up.parts.iter().map(|(n, (p, _))| (*n, p.clone())).collect();
        let chosen = validate_complete(&parts, &uploaded)?;
        let mut data = Vec::new();
        for p in &chosen {
            let (_, bytes) = up
                .parts
                .get(&p.part_number)
                .ok_or(ObjectError::InvalidPart {
                    part_number: p.part_number,
                })?;
            data.extend_from_slice(bytes);
        }
        let etags: Vec<&str> = chosen.iter().map(|p| p.etag.as_str()).collect();
        let checksum = complete_checksum(
            UploadChecksum::of_request(up.checksum.as_ref()),
            &chosen,
            &opts.checksums,
        )?;
        let info = ObjectInfo {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size: data.len() as u64,
            etag: multipart_etag(&etags),
            last_modified: now(),
            headers: up.metadata.headers.clone(),
            user_metadata: up.metadata.user.clone(),
            storage_class: up.metadata.storage_class,
            checksum,
            version_id: None,
            encryption: None,
            parts_count: Some(chosen.len() as u32),
            attrs: Default::default(),
        };
        s.uploads.remove(upload_id);
        let b = s.bucket_mut(bucket)?;
        b.objects
            .insert(key.to_string(), (info.clone(), Bytes::from(data)));
        b.parts.insert((key.to_string(), info.etag.clone()), chosen);
        self.completed.record(upload_id, &parts, &info);
        Ok(info)
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> ObjectResult<()> {
        let mut s = self.state.lock();
        s.upload(bucket, key, upload_id)?;
        s.uploads.remove(upload_id);
        Ok(())
    }

    async fn list_multipart_uploads(
        &self,
        bucket: &BucketName,
        opts: ListUploadsOptions,
    ) -> ObjectResult<ListUploadsPage> {
        let s = self.state.lock();
        s.bucket(bucket)?;
        let all = s
            .uploads
            .iter()
            .filter(|(_, u)| u.bucket == bucket.as_str())
            .map(|(id, u)| UploadInfo {
                bucket: u.bucket.clone(),
                key: u.key.clone(),
                upload_id: id.clone(),
                initiated: u.initiated,
                storage_class: u.metadata.storage_class,
            })
            .collect();
        Ok(page_uploads(all, &opts))
    }
}

/// The reference model keeps plain bytes: asking it to encrypt is refused
/// rather than silently ignored.
fn refuse_sse(sse: Option<&crate::sse::SseRequest>) -> ObjectResult<()> {
    match sse {
        None => Ok(()),
        Some(_) => Err(ObjectError::NotImplemented {
            what: "server-side encryption on MemLayer",
        }),
    }
}
