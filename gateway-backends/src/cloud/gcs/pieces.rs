//! Objects written in parts: each part is an object of its own under
//! `.cairn-gateway/parts/<id>/<index>`, joined by one compose (OpenDAL's
//! composer: up to 32 sources per compose call, a tree of composes past
//! that, its intermediates removed), after which the parts are removed.
//! Used for client multipart uploads (`GcsStore`'s `MultipartStore`),
//! bodies too long for one PUT, and PUTs with a Content-Disposition.

use futures::TryStreamExt as _;
use object_store::{MultipartUpload, PutPayload, PutResult, UploadPart};
use opendal::Operator;

use super::{Meta, PARTS, buffer, os_error, put_result};

fn piece(id: &str, idx: usize) -> String {
    format!("{PARTS}/{id}/{idx:05}")
}

/// Writes part `idx` of upload `id` (one JSON upload).
pub(super) async fn write_piece(
    op: &Operator,
    id: &str,
    idx: usize,
    data: PutPayload,
) -> object_store::Result<()> {
    let name = piece(id, idx);
    op.write(&name, buffer(data))
        .await
        .map(drop)
        .map_err(|e| os_error(&name, e))
}

/// Removes every part object of upload `id`, one DELETE each, 8 at a
/// time (not GCS's batch endpoint, which fake-gcs-server lacks: 400).
pub(super) async fn remove_pieces(op: &Operator, id: &str) -> object_store::Result<()> {
    let dir = format!("{PARTS}/{id}/");
    let listed = op
        .lister_options(
            &dir,
            opendal::options::ListOptions {
                recursive: true,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| os_error(&dir, e))?;
    listed
        .map_err(|e| os_error(&dir, e))
        .map_ok(|e| async move {
            let name = e.path();
            op.delete(name).await.map_err(|e| os_error(name, e))
        })
        .try_buffer_unordered(8)
        .try_collect::<()>()
        .await
}

/// An object written in parts: where its parts are and where they go.
/// As object_store's `MultipartUpload` (a body too long for one PUT),
/// parts go up as they come.
#[derive(Debug)]
pub(super) struct Pieces {
    op: Operator,
    id: String,
    dest: String,
    meta: Meta,
    if_not_exists: bool,
    count: usize,
}

impl Pieces {
    /// A new object in parts, under a new id.
    pub(super) fn new(op: Operator, dest: &str, meta: Meta, if_not_exists: bool) -> Pieces {
        Pieces::of_upload(op, uuid::Uuid::new_v4().to_string(), dest, meta, 0)
            .if_not_exists(if_not_exists)
    }

    /// The `count` parts of client upload `id`, written already.
    pub(super) fn of_upload(
        op: Operator,
        id: String,
        dest: &str,
        meta: Meta,
        count: usize,
    ) -> Pieces {
        Pieces {
            op,
            id,
            dest: dest.to_owned(),
            meta,
            if_not_exists: false,
            count,
        }
    }

    fn if_not_exists(mut self, yes: bool) -> Pieces {
        self.if_not_exists = yes;
        self
    }

    /// Composes parts 0..count into the destination with its headers and
    /// metadata, then removes the parts. Parts stay when the compose
    /// fails (a client may complete again, or abort).
    pub(super) async fn compose(&self) -> object_store::Result<PutResult> {
        let user = (!self.meta.user.is_empty()).then(|| self.meta.user.clone());
        let sources: Vec<String> = (0..self.count).map(|i| piece(&self.id, i)).collect();
        let m = self
            .op
            .compose_options(
                sources,
                &self.dest,
                opendal::options::ComposeOptions {
                    content_type: self.meta.content_type.clone(),
                    cache_control: self.meta.cache_control.clone(),
                    content_encoding: self.meta.content_encoding.clone(),
                    content_disposition: self.meta.content_disposition.clone(),
                    user_metadata: user,
                    if_not_exists: self.if_not_exists,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| os_error(&self.dest, e))?;
        if let Err(e) = remove_pieces(&self.op, &self.id).await {
            tracing::warn!(error = %e, dest = %self.dest, "removing composed parts failed");
        }
        Ok(put_result(&m))
    }
}

#[async_trait::async_trait]
impl MultipartUpload for Pieces {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let (op, id, idx) = (self.op.clone(), self.id.clone(), self.count);
        self.count += 1;
        Box::pin(async move { write_piece(&op, &id, idx, data).await })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let done = self.compose().await;
        if done.is_err() {
            // nobody completes these again
            if let Err(e) = remove_pieces(&self.op, &self.id).await {
                tracing::warn!(error = %e, dest = %self.dest, "removing parts failed");
            }
        }
        done
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        remove_pieces(&self.op, &self.id).await
    }
}
