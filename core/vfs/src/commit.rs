//! Committing a staged file: a new file (or one truncated to 0, whose
//! spool file is all of it) is written whole, one PUT or a multipart
//! upload; a stored file sends only what changed, as a patch of the
//! version it was opened at (`ObjectLayer::patch_object`).

use cairn_api::{
    BucketName, CompletePart, GetOptions, ObjectError, ObjectInfo, ObjectKey, ObjectMetadata,
    PartOptions, PatchBase, PatchOptions, PutOptions,
};

use crate::Vfs;
use crate::error::{VfsError, VfsResult};
use crate::file::FileState;
use crate::staging::Staging;

impl Vfs {
    /// Writes the staging file as the whole object (a multipart upload
    /// above the threshold), streamed from the spool.
    pub(crate) async fn commit_whole(
        &self,
        s: &Staging,
        b: &BucketName,
        k: &ObjectKey,
        metadata: ObjectMetadata,
    ) -> VfsResult<ObjectInfo> {
        let len = s.len();
        if len <= self.cfg.multipart_threshold {
            return self.put_own(b, k, s.stream(0, len)?, len, metadata).await;
        }
        let id = self
            .layer
            .create_multipart_upload(
                b,
                k,
                PutOptions {
                    metadata,
                    ..Default::default()
                },
            )
            .await?;
        let upload = async {
            let mut parts = Vec::new();
            let mut off = 0u64;
            let mut n = 1u32;
            while off < len {
                let plen = self.cfg.part_len(n).min(len - off);
                let p = self
                    .layer
                    .upload_part(
                        b,
                        k,
                        &id,
                        n,
                        s.stream(off, plen)?,
                        PartOptions {
                            content_length: Some(plen),
                            ..Default::default()
                        },
                    )
                    .await?;
                parts.push(CompletePart {
                    part_number: n,
                    etag: p.etag,
                });
                off += plen;
                n += 1;
            }
            let info = self
                .own_write(
                    b.as_str(),
                    &[k.as_str()],
                    self.layer.complete_multipart_upload(b, k, &id, parts),
                )
                .await?;
            Ok::<ObjectInfo, VfsError>(info)
        }
        .await;
        if upload.is_err()
            && let Err(ae) = self.layer.abort_multipart_upload(b, k, &id).await
        {
            tracing::warn!(error = %ae, "aborting a failed commit upload");
        }
        upload
    }

    /// Commits a stored file's staging as a patch of its base: the dirty
    /// ranges and the length. When another front changed the object since
    /// (`PreconditionFailed`), the ranges go onto the current version, as
    /// two writers of one local file; when it was deleted, the file is
    /// written whole from what is left of its base.
    pub(crate) async fn commit_patch(
        &self,
        st: &FileState,
        b: &BucketName,
        k: &ObjectKey,
        metadata: ObjectMetadata,
    ) -> VfsResult<ObjectInfo> {
        let s = st.staging.as_ref().ok_or(VfsError::BadHandle)?;
        let first = self
            .patch_once(s, b, k, st.base.clone(), s.base_size(), metadata.clone())
            .await;
        let base = match first {
            Err(VfsError::Object(ObjectError::PreconditionFailed)) if st.base.is_some() => {
                st.base.clone()
            }
            Err(VfsError::Object(ObjectError::NoSuchKey { .. })) => st.base.clone(),
            r => return r,
        };
        let gone = match self.layer.head_object(b, k, &Default::default()).await {
            Ok(_) => false,
            Err(ObjectError::NoSuchKey { .. }) => true,
            Err(e) => return Err(e.into()),
        };
        if gone {
            return self
                .commit_base_gone(s, b, k, base.as_ref(), metadata)
                .await;
        }
        tracing::info!(
            ino = st.attr.ino,
            key = k.as_str(),
            "the object changed since it was opened; the changed ranges go onto its current version"
        );
        // zeros for every byte past base_valid that no range covers: the
        // current version may be longer than the base was
        self.patch_once(s, b, k, None, u64::MAX, metadata).await
    }

    async fn patch_once(
        &self,
        s: &Staging,
        b: &BucketName,
        k: &ObjectKey,
        base: Option<PatchBase>,
        zero_until: u64,
        metadata: ObjectMetadata,
    ) -> VfsResult<ObjectInfo> {
        let changes = s.changes(zero_until)?;
        let own = self.own.expect(b.as_str(), k.as_str());
        let r = self
            .layer
            .patch_object(
                b,
                k,
                changes,
                PatchOptions {
                    base,
                    size: s.len(),
                    metadata,
                    write_back: self.cfg.write_back,
                },
            )
            .await;
        own.settle(&r);
        Ok(r?)
    }

    /// The object was deleted behind the view's back: written whole again,
    /// the base's bytes read from its version when the bucket keeps it,
    /// else (gone for good) zeros where nothing was written.
    async fn commit_base_gone(
        &self,
        s: &Staging,
        b: &BucketName,
        k: &ObjectKey,
        base: Option<&PatchBase>,
        metadata: ObjectMetadata,
    ) -> VfsResult<ObjectInfo> {
        let old = match base.and_then(|v| v.version_id.clone()) {
            Some(v) => self
                .layer
                .get_object(
                    b,
                    k,
                    GetOptions {
                        version_id: Some(Some(v)),
                        ..Default::default()
                    },
                )
                .await
                .ok(),
            None => None,
        };
        let (body, old_len) = match old {
            Some(g) => (g.body, g.info.size.min(s.base_valid())),
            None => {
                tracing::warn!(
                    key = k.as_str(),
                    "the object was deleted while open for writing; bytes not written here are zeros"
                );
                (cairn_api::bytes_stream(Vec::new()), 0)
            }
        };
        let len = s.len();
        let merged = cairn_api::patch::merged_stream(body, old_len, s.changes(0)?, len);
        self.put_own(b, k, merged, len, metadata).await
    }

    /// A PUT of the file's whole bytes, known as this view's own write
    /// (its change event does not invalidate what the view knows).
    async fn put_own(
        &self,
        b: &BucketName,
        k: &ObjectKey,
        body: cairn_api::ByteStream,
        len: u64,
        metadata: ObjectMetadata,
    ) -> VfsResult<ObjectInfo> {
        let own = self.own.expect(b.as_str(), k.as_str());
        let r = self
            .layer
            .put_object(
                b,
                k,
                body,
                PutOptions {
                    metadata,
                    content_length: Some(len),
                    write_back: self.cfg.write_back,
                    ..Default::default()
                },
            )
            .await;
        own.settle(&r);
        Ok(r?)
    }
}
