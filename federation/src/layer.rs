//! `FederatedLayer`: the local store, with bucket creation and deletion
//! agreed on in etcd and the listing of the whole namespace. Every other
//! call is the local store's (requests for buckets of other sites never
//! reach it: the router forwards them, crate::route).

use std::sync::Arc;

use async_trait::async_trait;
use cairn_api::sse::BucketEncryption;
use cairn_api::versioning::{DeleteOptions, DeleteOutcome, ListVersionsOptions, ListVersionsPage};
use cairn_api::{
    BucketChange, BucketConfig, BucketInfo, BucketName, ByteStream, CompletePart, Conditions,
    CopyOptions, DeleteResult, GetObject, GetOptions, ListOptions, ListPage, ListPartsPage,
    ListUploadsOptions, ListUploadsPage, MakeBucketOptions, ObjectInfo, ObjectKey, ObjectLayer,
    ObjectResult, PartInfo, PartOptions, PutOptions, VersionChange,
};

use crate::namespace::Namespace;

/// The local store as one site of the federation.
pub struct FederatedLayer {
    local: Arc<dyn ObjectLayer>,
    ns: Arc<Namespace>,
    /// Whether `list_buckets` shows the other sites' buckets too (the S3
    /// front: yes; the file fronts, which cannot open them: no).
    whole_namespace: bool,
}

impl FederatedLayer {
    pub fn new(local: Arc<dyn ObjectLayer>, ns: Arc<Namespace>, whole_namespace: bool) -> Self {
        Self {
            local,
            ns,
            whole_namespace,
        }
    }
}

#[async_trait]
impl ObjectLayer for FederatedLayer {
    async fn make_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        self.make_bucket_with(bucket, MakeBucketOptions::default())
            .await
    }

    /// The name claimed in etcd first, then the bucket made here; a local
    /// failure frees the name again.
    async fn make_bucket_with(
        &self,
        bucket: &BucketName,
        opts: MakeBucketOptions,
    ) -> ObjectResult<()> {
        self.ns.claim(bucket).await?;
        match self.local.make_bucket_with(bucket, opts).await {
            Err(e @ cairn_api::ObjectError::BucketAlreadyExists { .. }) => Err(e),
            Err(e) => {
                if let Err(r) = self.ns.release(bucket).await {
                    tracing::error!(bucket = %bucket, error = %r, "bucket not made, its name stays claimed");
                }
                Err(e)
            }
            Ok(()) => Ok(()),
        }
    }

    /// Refused while etcd cannot be reached; the name is freed once the
    /// bucket is gone here.
    async fn delete_bucket(&self, bucket: &BucketName) -> ObjectResult<()> {
        let ours = self.ns.check_release(bucket).await?;
        self.local.delete_bucket(bucket).await?;
        if ours && let Err(e) = self.ns.release(bucket).await {
            tracing::error!(bucket = %bucket, error = %e, "bucket deleted, its name stays claimed until this site starts again");
        }
        Ok(())
    }

    /// This site's buckets, then (S3 front) the other sites' as last read.
    async fn list_buckets(&self) -> ObjectResult<Vec<BucketInfo>> {
        let mut all = self.local.list_buckets().await?;
        if self.whole_namespace {
            let here: std::collections::HashSet<String> =
                all.iter().map(|b| b.name.clone()).collect();
            for (name, record) in self.ns.remote_buckets() {
                if here.contains(name.as_str()) {
                    continue;
                }
                all.push(BucketInfo {
                    name: name.to_string(),
                    created: time::OffsetDateTime::from_unix_timestamp(record.created)
                        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
                });
            }
            all.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(all)
    }

    fn capabilities(&self) -> cairn_api::caps::Capabilities {
        self.local.capabilities()
    }

    async fn head_bucket(&self, bucket: &BucketName) -> ObjectResult<BucketInfo> {
        self.local.head_bucket(bucket).await
    }

    fn subscribe_changes(&self) -> Option<cairn_api::changes::ChangeReceiver> {
        self.local.subscribe_changes()
    }

    async fn sync(&self) -> ObjectResult<()> {
        self.local.sync().await
    }

    async fn capacity(&self) -> ObjectResult<Option<cairn_api::types::Capacity>> {
        self.local.capacity().await
    }

    async fn get_bucket_encryption(
        &self,
        bucket: &BucketName,
    ) -> ObjectResult<Option<BucketEncryption>> {
        self.local.get_bucket_encryption(bucket).await
    }

    async fn put_bucket_encryption(
        &self,
        bucket: &BucketName,
        config: Option<BucketEncryption>,
    ) -> ObjectResult<()> {
        self.local.put_bucket_encryption(bucket, config).await
    }

    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: ByteStream,
        opts: PutOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.local.put_object(bucket, key, body, opts).await
    }

    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: GetOptions,
    ) -> ObjectResult<GetObject> {
        self.local.get_object(bucket, key, opts).await
    }

    async fn head_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        conditions: &Conditions,
    ) -> ObjectResult<ObjectInfo> {
        self.local.head_object(bucket, key, conditions).await
    }

    async fn head_object_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.local.head_object_with(bucket, key, opts).await
    }

    async fn part_range(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
        part_number: u32,
    ) -> ObjectResult<(ObjectInfo, (u64, u64))> {
        self.local.part_range(bucket, key, opts, part_number).await
    }

    async fn object_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: &GetOptions,
    ) -> ObjectResult<(ObjectInfo, Option<Vec<PartInfo>>)> {
        self.local.object_parts(bucket, key, opts).await
    }

    async fn delete_object(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()> {
        self.local.delete_object(bucket, key).await
    }

    async fn delete_object_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: DeleteOptions,
    ) -> ObjectResult<DeleteOutcome> {
        self.local.delete_object_with(bucket, key, opts).await
    }

    async fn delete_objects(
        &self,
        bucket: &BucketName,
        items: Vec<(String, DeleteOptions)>,
    ) -> Vec<DeleteResult> {
        self.local.delete_objects(bucket, items).await
    }

    async fn check_mutable(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectResult<()> {
        self.local.check_mutable(bucket, key).await
    }

    async fn get_bucket_config(&self, bucket: &BucketName) -> ObjectResult<BucketConfig> {
        self.local.get_bucket_config(bucket).await
    }

    async fn update_bucket_config(
        &self,
        bucket: &BucketName,
        change: BucketChange,
    ) -> ObjectResult<()> {
        self.local.update_bucket_config(bucket, change).await
    }

    async fn update_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: Option<Option<String>>,
        change: VersionChange,
    ) -> ObjectResult<ObjectInfo> {
        self.local
            .update_version(bucket, key, version_id, change)
            .await
    }

    async fn list_object_versions(
        &self,
        bucket: &BucketName,
        opts: ListVersionsOptions,
    ) -> ObjectResult<ListVersionsPage> {
        self.local.list_object_versions(bucket, opts).await
    }

    async fn copy_object(
        &self,
        src_bucket: &BucketName,
        src_key: &ObjectKey,
        dst_bucket: &BucketName,
        dst_key: &ObjectKey,
        opts: CopyOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.local
            .copy_object(src_bucket, src_key, dst_bucket, dst_key, opts)
            .await
    }

    async fn list_objects(&self, bucket: &BucketName, opts: ListOptions) -> ObjectResult<ListPage> {
        self.local.list_objects(bucket, opts).await
    }

    async fn patch_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        changes: cairn_api::patch::PatchStream,
        opts: cairn_api::patch::PatchOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.local.patch_object(bucket, key, changes, opts).await
    }

    async fn rename_object(
        &self,
        bucket: &BucketName,
        src: &ObjectKey,
        dst: &ObjectKey,
        replace: bool,
    ) -> ObjectResult<ObjectInfo> {
        self.local.rename_object(bucket, src, dst, replace).await
    }

    async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
    ) -> ObjectResult<String> {
        self.local.create_multipart_upload(bucket, key, opts).await
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
        self.local
            .upload_part(bucket, key, upload_id, part_number, body, opts)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_part_copy(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number: u32,
        src_bucket: &BucketName,
        src_key: &ObjectKey,
        src: GetOptions,
        part: PartOptions,
    ) -> ObjectResult<PartInfo> {
        self.local
            .upload_part_copy(
                bucket,
                key,
                upload_id,
                part_number,
                src_bucket,
                src_key,
                src,
                part,
            )
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
        self.local
            .list_parts(bucket, key, upload_id, part_number_marker, max_parts)
            .await
    }

    async fn complete_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: Vec<CompletePart>,
    ) -> ObjectResult<ObjectInfo> {
        self.local
            .complete_multipart_upload(bucket, key, upload_id, parts)
            .await
    }

    async fn complete_multipart_upload_with(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: Vec<CompletePart>,
        opts: cairn_api::conditional::CompleteOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.local
            .complete_multipart_upload_with(bucket, key, upload_id, parts, opts)
            .await
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> ObjectResult<()> {
        self.local
            .abort_multipart_upload(bucket, key, upload_id)
            .await
    }

    async fn list_multipart_uploads(
        &self,
        bucket: &BucketName,
        opts: ListUploadsOptions,
    ) -> ObjectResult<ListUploadsPage> {
        self.local.list_multipart_uploads(bucket, opts).await
    }
}
