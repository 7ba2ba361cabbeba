//! cairn-core: the erasure-coded object store behind Cairn's fronts.
//!
//! One `ErasureSet` spreads every object over N drives (folders) as K
//! data and M parity shards, each shard block behind a HighwayHash-256, with a
//! `cairn.meta` per object per drive. See ARCHITECTURE.md for the map.
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

mod admin;
mod background;
pub mod bitrot;
mod bucketcfg;
mod config;
pub mod drive;
pub mod driveio;
pub mod drivelock;
pub mod erasure;
pub mod extents;
mod heal;
mod healq;
pub mod history;
pub mod kms;
pub mod lifecycle;
mod listing;
pub mod locks;
pub mod meta;
mod metacache;
mod multipart;
mod objects;
mod outbox;
mod patch;
pub mod reader;
mod replicate;
mod rotate;
pub mod scan;
mod set;
pub mod sets;
mod setup;
pub mod sse;
pub mod stats;
mod trash;
pub mod usage;
mod vcache;
mod version_list;
pub mod versions;
pub mod walk;
pub mod writeback;
pub mod writer;

pub use heal::HealOutcome;
pub use set::{ErasureSet, read_quorum, write_quorum};
pub use sets::{ErasureSets, SetsConfig};
pub use setup::SetupError;

use async_trait::async_trait;
use cairn_api::*;

#[async_trait]
impl ObjectLayer for ErasureSet {
    async fn make_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        self.make_bucket_impl(bucket, MakeBucketOptions::default())
            .await
    }

    async fn make_bucket_with(
        &self,
        bucket: &BucketName,
        opts: MakeBucketOptions,
    ) -> ObjectResult<()> {
        self.make_bucket_impl(bucket, opts).await
    }

    async fn sync(&self) -> ObjectResult<()> {
        self.sync_impl().await
    }

    async fn check_mutable(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()> {
        self.check_current_mutable(bucket, key).await
    }

    async fn get_bucket_config(&self, bucket: &BucketName) -> ObjectResult<BucketConfig> {
        self.bucket_config(bucket).await
    }

    async fn update_bucket_config(
        &self,
        bucket: &BucketName,
        change: BucketChange,
    ) -> ObjectResult<()> {
        self.change_bucket_config(bucket, change).await
    }

    async fn update_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: Option<Option<String>>,
        change: VersionChange,
    ) -> ObjectResult<ObjectInfo> {
        self.update_version_impl(bucket, key, version_id, change)
            .await
    }

    async fn set_replication_status(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: Option<String>,
        status: cairn_api::replication::ReplicationStatus,
    ) -> ObjectResult<()> {
        self.set_replication_status_impl(bucket, key, version_id, status)
            .await
    }

    async fn list_object_versions(
        &self,
        bucket: &BucketName,
        opts: ListVersionsOptions,
    ) -> ObjectResult<ListVersionsPage> {
        self.list_object_versions_impl(bucket, opts).await
    }

    async fn head_bucket(&self, bucket: &BucketName) -> ObjectResult<BucketInfo> {
        self.head_bucket_impl(bucket).await
    }

    async fn list_buckets(&self) -> ObjectResult<Vec<BucketInfo>> {
        self.list_buckets_impl().await
    }

    async fn delete_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        self.delete_bucket_impl(bucket).await
    }

    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: ByteStream,
        opts: PutOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.put_object_impl(bucket, key, body, opts).await
    }

    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: GetOptions,
    ) -> ObjectResult<GetObject> {
        self.get_object_impl(bucket, key, opts).await
    }

    async fn head_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        conditions: &Conditions,
    ) -> ObjectResult<ObjectInfo> {
        let opts = GetOptions {
            conditions: conditions.clone(),
            ..Default::default()
        };
        self.head_object_impl(bucket, key, &opts).await
    }

    async fn head_object_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.head_object_impl(bucket, key, opts).await
    }

    fn subscribe_changes(&self) -> Option<cairn_api::changes::ChangeReceiver> {
        Some(self.changes.subscribe())
    }

    /// Usable capacity: the online drives' space times the data share of
    /// the default layout (K of N), as `df` on a mount should show it.
    async fn capacity(&self) -> ObjectResult<Option<Capacity>> {
        let per_drive = self
            .on_drives(|d| {
                if d.is_online()
                    && let (Some(t), Some(f)) = d.space()
                {
                    Some((t, f))
                } else {
                    None
                }
            })
            .await;
        let (total, free) = per_drive
            .into_iter()
            .flatten()
            .fold((0u64, 0u64), |(t, f), (dt, df)| (t + dt, f + df));
        if total == 0 {
            return Ok(None);
        }
        let (k, m) = self.layout(StorageClass::Standard);
        let share = |b: u64| (b as u128 * k as u128 / (k + m) as u128) as u64;
        Ok(Some(Capacity {
            total_bytes: share(total),
            free_bytes: share(free),
        }))
    }

    async fn get_bucket_encryption(
        &self,
        bucket: &BucketName,
    ) -> ObjectResult<Option<BucketEncryption>> {
        self.bucket_encryption(bucket).await
    }

    async fn put_bucket_encryption(
        &self,
        bucket: &BucketName,
        config: Option<BucketEncryption>,
    ) -> ObjectResult<()> {
        self.set_bucket_encryption(bucket, config).await
    }

    async fn delete_object(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()> {
        self.delete_object_with_impl(bucket, key, DeleteOptions::default())
            .await
            .map(|_| ())
    }

    async fn delete_object_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: DeleteOptions,
    ) -> ObjectResult<DeleteOutcome> {
        self.delete_object_with_impl(bucket, key, opts).await
    }

    async fn rename_object(
        &self,
        bucket: &BucketName,
        src: &ObjectKey,
        dst: &ObjectKey,
        replace: bool,
    ) -> ObjectResult<ObjectInfo> {
        self.rename_object_impl(bucket, src, dst, replace).await
    }

    /// A copy onto itself that replaces the metadata rewrites only the
    /// metadata (no data is read or written); other copies stream.
    async fn copy_object(
        &self,
        src_bucket: &BucketName,
        src_key: &ObjectKey,
        dst_bucket: &BucketName,
        dst_key: &ObjectKey,
        opts: CopyOptions,
    ) -> ObjectResult<ObjectInfo> {
        // a copy onto itself keeps the data and its checksum, unless
        // another checksum is asked for
        if src_bucket == dst_bucket
            && src_key == dst_key
            && opts.checksum.is_none()
            && let Some(info) = self
                .replace_metadata_impl(dst_bucket, dst_key, &opts)
                .await?
        {
            return Ok(info);
        }
        cairn_api::layer::copy_via_stream(self, src_bucket, src_key, dst_bucket, dst_key, opts)
            .await
    }

    async fn list_objects(&self, bucket: &BucketName, opts: ListOptions) -> ObjectResult<ListPage> {
        self.list_objects_impl(bucket, opts).await
    }

    async fn patch_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        changes: cairn_api::PatchStream,
        opts: cairn_api::PatchOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.patch_object_impl(bucket, key, changes, opts).await
    }

    async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
    ) -> ObjectResult<String> {
        self.create_upload_impl(bucket, key, opts).await
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
        self.upload_part_impl(bucket, key, upload_id, part_number, body, opts)
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
        self.list_parts_impl(bucket, key, upload_id, part_number_marker, max_parts)
            .await
    }

    async fn object_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
    ) -> ObjectResult<(ObjectInfo, Option<Vec<cairn_api::PartInfo>>)> {
        self.object_parts_impl(bucket, key, opts).await
    }

    async fn complete_multipart_upload_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: Vec<CompletePart>,
        opts: CompleteOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.complete_impl(bucket, key, upload_id, parts, opts)
            .await
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> ObjectResult<()> {
        self.abort_impl(bucket, key, upload_id).await
    }

    async fn list_multipart_uploads(
        &self,
        bucket: &BucketName,
        opts: ListUploadsOptions,
    ) -> ObjectResult<ListUploadsPage> {
        self.list_uploads_impl(bucket, opts).await
    }
}
