//! Bucket configuration kept in `buckets/<bucket>.json` on every drive:
//! written to all drives (write quorum), read from all and resolved by the
//! newest `updated`. Default encryption is cached per bucket, since every
//! PUT consults it.

use cairn_api::{BucketEncryption, BucketName, ObjectResult};

use crate::drive::{DriveError, write_atomic};
use crate::objects::{BucketMeta, read_bucket_meta};
use crate::set::{ErasureSet, now_nanos};

impl ErasureSet {
    pub(crate) async fn bucket_encryption(
        &self,
        bucket: &BucketName,
    ) -> ObjectResult<Option<BucketEncryption>> {
        if let Some(c) = self.bucket_sse.lock().get(bucket.as_str()) {
            return Ok(c.clone());
        }
        self.check_bucket(bucket).await?;
        let b = bucket.to_string();
        let newest = self
            .on_drives(move |d| read_bucket_meta(d, &b))
            .await
            .into_iter()
            .flatten()
            .max_by_key(|m| m.updated);
        let enc = newest.and_then(|m| m.encryption);
        self.bucket_sse
            .lock()
            .insert(bucket.to_string(), enc.clone());
        Ok(enc)
    }

    pub(crate) async fn set_bucket_encryption(
        &self,
        bucket: &BucketName,
        config: Option<BucketEncryption>,
    ) -> ObjectResult<()> {
        self.check_bucket(bucket).await?;
        let _g = self.locks.write(bucket.as_str(), "").await;
        let b = bucket.to_string();
        let updated = now_nanos();
        let cfg = config.clone();
        let res = self
            .on_drives(move |d| -> Result<(), DriveError> {
                d.check_online()?;
                let mut m = read_bucket_meta(d, &b).unwrap_or_else(|| BucketMeta {
                    created: updated,
                    ..Default::default()
                });
                m.updated = updated;
                m.encryption = cfg.clone();
                let body =
                    serde_json::to_vec(&m).map_err(|e| DriveError::Io(std::io::Error::other(e)))?;
                write_atomic(
                    &d.tmp_dir(),
                    &d.buckets_dir().join(format!("{b}.json")),
                    &body,
                )?;
                Ok(())
            })
            .await;
        let ok = res.iter().filter(|r| r.is_ok()).count();
        self.bucket_sse.lock().remove(bucket.as_str());
        let (_, wq) = self.default_quorums();
        if ok < wq {
            return Err(self.write_quorum_error(wq, ok));
        }
        Ok(())
    }
}
