//! `ObjectLayer` for a deployment of sets: a key's operations go to the
//! set its name hashes to; buckets are made, configured and deleted on
//! every set (set 0, the home, last when making, read for existence and
//! configuration); listings merge every set's.

use async_trait::async_trait;
use cairn_api::*;
use futures::future::join_all;

use super::{ErasureSets, merge};

impl ErasureSets {
    /// Runs `change` on every set, the home set last: a bucket's state on
    /// set 0 is what clients see, so it changes once the others have.
    pub(super) async fn on_every_set<F, Fut>(&self, change: F) -> ObjectResult<()>
    where
        F: Fn(std::sync::Arc<crate::ErasureSet>) -> Fut,
        Fut: std::future::Future<Output = ObjectResult<()>>,
    {
        for r in join_all(self.others().cloned().map(&change)).await {
            r?;
        }
        change(self.home().clone()).await
    }
}

#[async_trait]
impl ObjectLayer for ErasureSets {
    async fn make_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        self.make_bucket_with(bucket, MakeBucketOptions::default())
            .await
    }

    /// On the other sets first (a bucket they already hold is one an
    /// earlier, interrupted make left: kept), then on the home set, whose
    /// answer is the make's.
    async fn make_bucket_with(
        &self,
        bucket: &BucketName,
        opts: MakeBucketOptions,
    ) -> ObjectResult<()> {
        let made = join_all(
            self.others()
                .map(|s| s.make_bucket_with(bucket, opts.clone())),
        )
        .await;
        for r in made {
            match r {
                Ok(()) | Err(ObjectError::BucketAlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.home().make_bucket_with(bucket, opts).await
    }

    async fn head_bucket(&self, bucket: &BucketName) -> ObjectResult<BucketInfo> {
        self.home().head_bucket(bucket).await
    }

    async fn list_buckets(&self) -> ObjectResult<Vec<BucketInfo>> {
        self.home().list_buckets().await
    }

    /// Refused while any set holds an object of the bucket; then removed
    /// from the other sets and last from the home set.
    async fn delete_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        self.home().head_bucket(bucket).await?;
        let probe = ListOptions {
            max_keys: 1,
            ..Default::default()
        };
        let pages = join_all(
            self.sets
                .iter()
                .map(|s| s.list_objects(bucket, probe.clone())),
        )
        .await;
        for p in pages {
            match p {
                Ok(p) if p.objects.is_empty() && p.common_prefixes.is_empty() => {}
                Ok(_) => {
                    return Err(ObjectError::BucketNotEmpty {
                        bucket: bucket.to_string(),
                    });
                }
                Err(ObjectError::NoSuchBucket { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        for r in join_all(self.others().map(|s| s.delete_bucket(bucket))).await {
            match r {
                Ok(()) | Err(ObjectError::NoSuchBucket { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.home().delete_bucket(bucket).await
    }

    fn subscribe_changes(&self) -> Option<changes::ChangeReceiver> {
        // every set sends on the one channel `open` gave them
        self.home().subscribe_changes()
    }

    async fn sync(&self) -> ObjectResult<()> {
        for r in join_all(self.sets.iter().map(|s| s.sync())).await {
            r?;
        }
        Ok(())
    }

    async fn capacity(&self) -> ObjectResult<Option<Capacity>> {
        let mut sum: Option<Capacity> = None;
        for c in join_all(self.sets.iter().map(|s| s.capacity())).await {
            if let Some(c) = c? {
                let s = sum.get_or_insert(Capacity {
                    total_bytes: 0,
                    free_bytes: 0,
                });
                s.total_bytes += c.total_bytes;
                s.free_bytes += c.free_bytes;
            }
        }
        Ok(sum)
    }

    async fn get_bucket_encryption(
        &self,
        bucket: &BucketName,
    ) -> ObjectResult<Option<BucketEncryption>> {
        self.home().get_bucket_encryption(bucket).await
    }

    async fn put_bucket_encryption(
        &self,
        bucket: &BucketName,
        config: Option<BucketEncryption>,
    ) -> ObjectResult<()> {
        self.on_every_set(|s| {
            let config = config.clone();
            async move { s.put_bucket_encryption(bucket, config).await }
        })
        .await
    }

    async fn get_bucket_config(&self, bucket: &BucketName) -> ObjectResult<BucketConfig> {
        self.home().get_bucket_config(bucket).await
    }

    async fn update_bucket_config(
        &self,
        bucket: &BucketName,
        change: BucketChange,
    ) -> ObjectResult<()> {
        self.on_every_set(|s| {
            let change = change.clone();
            async move { s.update_bucket_config(bucket, change).await }
        })
        .await
    }

    async fn check_mutable(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()> {
        self.set_of(key.as_str()).check_mutable(bucket, key).await
    }

    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: ByteStream,
        opts: PutOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.set_of(key.as_str())
            .put_object(bucket, key, body, opts)
            .await
    }

    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: GetOptions,
    ) -> ObjectResult<GetObject> {
        self.set_of(key.as_str())
            .get_object(bucket, key, opts)
            .await
    }

    async fn head_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        conditions: &Conditions,
    ) -> ObjectResult<ObjectInfo> {
        self.set_of(key.as_str())
            .head_object(bucket, key, conditions)
            .await
    }

    async fn head_object_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.set_of(key.as_str())
            .head_object_with(bucket, key, opts)
            .await
    }

    async fn object_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
    ) -> ObjectResult<(ObjectInfo, Option<Vec<PartInfo>>)> {
        self.set_of(key.as_str())
            .object_parts(bucket, key, opts)
            .await
    }

    async fn delete_object(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()> {
        self.set_of(key.as_str()).delete_object(bucket, key).await
    }

    async fn delete_object_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: DeleteOptions,
    ) -> ObjectResult<DeleteOutcome> {
        self.set_of(key.as_str())
            .delete_object_with(bucket, key, opts)
            .await
    }

    async fn update_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: Option<Option<String>>,
        change: VersionChange,
    ) -> ObjectResult<ObjectInfo> {
        self.set_of(key.as_str())
            .update_version(bucket, key, version_id, change)
            .await
    }

    async fn set_replication_status(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: Option<String>,
        status: cairn_api::replication::ReplicationStatus,
    ) -> ObjectResult<()> {
        self.set_of(key.as_str())
            .set_replication_status(bucket, key, version_id, status)
            .await
    }

    async fn list_object_versions(
        &self,
        bucket: &BucketName,
        opts: ListVersionsOptions,
    ) -> ObjectResult<ListVersionsPage> {
        let max = opts.max_keys;
        let pages = join_all(
            self.sets
                .iter()
                .map(|s| s.list_object_versions(bucket, opts.clone())),
        )
        .await
        .into_iter()
        .collect::<ObjectResult<Vec<_>>>()?;
        Ok(merge::versions(pages, max))
    }

    /// Within a set as the set copies (a copy onto itself rewrites only
    /// the metadata); between sets streamed from one into the other.
    async fn copy_object(
        &self,
        src_bucket: &BucketName,
        src_key: &ObjectKey,
        dst_bucket: &BucketName,
        dst_key: &ObjectKey,
        opts: CopyOptions,
    ) -> ObjectResult<ObjectInfo> {
        if let Some(set) = self.common_set(src_key.as_str(), dst_key.as_str()) {
            return set
                .copy_object(src_bucket, src_key, dst_bucket, dst_key, opts)
                .await;
        }
        layer::copy_via_stream(self, src_bucket, src_key, dst_bucket, dst_key, opts).await
    }

    async fn list_objects(&self, bucket: &BucketName, opts: ListOptions) -> ObjectResult<ListPage> {
        let pages = join_all(
            self.sets
                .iter()
                .map(|s| s.list_objects(bucket, opts.clone())),
        )
        .await
        .into_iter()
        .collect::<ObjectResult<Vec<_>>>()?;
        Ok(merge::objects(pages, opts))
    }

    async fn patch_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        changes: PatchStream,
        opts: PatchOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.set_of(key.as_str())
            .patch_object(bucket, key, changes, opts)
            .await
    }

    /// Within a set one atomic move; between sets a copy and a delete
    /// (a crash between them leaves both names, never neither).
    async fn rename_object(
        &self,
        bucket: &BucketName,
        src: &ObjectKey,
        dst: &ObjectKey,
        replace: bool,
    ) -> ObjectResult<ObjectInfo> {
        if let Some(set) = self.common_set(src.as_str(), dst.as_str()) {
            return set.rename_object(bucket, src, dst, replace).await;
        }
        layer::rename_via_copy(self, bucket, src, dst, replace).await
    }

    async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
    ) -> ObjectResult<String> {
        self.set_of(key.as_str())
            .create_multipart_upload(bucket, key, opts)
            .await
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
        self.set_of(key.as_str())
            .upload_part(bucket, key, upload_id, part_number, body, opts)
            .await
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number_marker: Option<u32>,
        max_parts: usize,
    ) -> ObjectResult<ListPartsPage> {
        self.set_of(key.as_str())
            .list_parts(bucket, key, upload_id, part_number_marker, max_parts)
            .await
    }

    async fn complete_multipart_upload_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: Vec<CompletePart>,
        opts: CompleteOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.set_of(key.as_str())
            .complete_multipart_upload_with(bucket, key, upload_id, parts, opts)
            .await
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> ObjectResult<()> {
        self.set_of(key.as_str())
            .abort_multipart_upload(bucket, key, upload_id)
            .await
    }

    async fn list_multipart_uploads(
        &self,
        bucket: &BucketName,
        opts: ListUploadsOptions,
    ) -> ObjectResult<ListUploadsPage> {
        let pages = join_all(
            self.sets
                .iter()
                .map(|s| s.list_multipart_uploads(bucket, opts.clone())),
        )
        .await
        .into_iter()
        .collect::<ObjectResult<Vec<_>>>()?;
        Ok(merge::uploads(pages, &opts))
    }
}
