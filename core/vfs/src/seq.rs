//! Streaming of purely sequential writes: once a file written from empty
//! by appends only grows past `VfsConfig::stream_threshold`, its bytes go
//! into a multipart upload while it is being written (parts of
//! `VfsConfig::part_len`), so close only has to finish the last part and complete
//! the upload instead of re-reading the staging file and uploading it
//! then. The staging file keeps receiving every byte (reads, and the
//! fallback: the first non-sequential write or truncate cancels the
//! upload and the file goes on as an ordinary staged file). Nothing is
//! visible to S3 before the commit: an uncompleted upload is no object.

use std::sync::Arc;

use bytes::Bytes;
use cairn_api::{
    BucketName, ByteStream, CompletePart, ObjectKey, ObjectLayer, PartInfo, PartOptions,
    PutOptions, byte_stream,
};
use futures::StreamExt as _;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::{VfsError, VfsResult};

/// Chunks in flight from the writer to the upload task (1 MiB writes:
/// a few MiB of memory per streaming file).
const CHANNEL_DEPTH: usize = 4;

/// A completed stream: the upload to complete with these parts.
pub(crate) struct Streamed {
    pub upload_id: String,
    pub parts: Vec<CompletePart>,
}

/// One file's upload in progress. Dropping it cancels the upload.
pub(crate) struct SeqUpload {
    tx: Option<mpsc::Sender<Bytes>>,
    cancel: Option<oneshot::Sender<()>>,
    task: JoinHandle<VfsResult<Streamed>>,
}

impl SeqUpload {
    /// Starts uploading: `prefix` (bytes already staged) and then every
    /// chunk passed to `push`.
    pub fn start(
        layer: Arc<dyn ObjectLayer>,
        bucket: BucketName,
        key: ObjectKey,
        opts: PutOptions,
        part_size: crate::config::PartSizes,
        prefix: ByteStream,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let task = tokio::spawn(run(
            layer, bucket, key, opts, part_size, prefix, rx, cancel_rx,
        ));
        Self {
            tx: Some(tx),
            cancel: Some(cancel_tx),
            task,
        }
    }

    /// Hands the next bytes to the upload. False when the upload has
    /// stopped (failed): the caller falls back to the staging file.
    pub async fn push(&mut self, data: Bytes) -> bool {
        match &self.tx {
            Some(tx) => tx.send(data).await.is_ok(),
            None => false,
        }
    }

    /// Ends the body and waits for the last part.
    pub async fn finish(mut self) -> VfsResult<Streamed> {
        self.tx = None;
        let res = (&mut self.task).await;
        // the task is done; dropping the cancel sender now changes nothing
        match res {
            Ok(r) => r,
            Err(e) => Err(VfsError::Io(std::io::Error::other(format!(
                "upload task failed: {e}"
            )))),
        }
    }
}

impl Drop for SeqUpload {
    fn drop(&mut self) {
        // `finish` awaited the task; otherwise tell it to abort the upload
        if let Some(c) = self.cancel.take()
            && !self.task.is_finished()
        {
            let _ = c.send(());
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    layer: Arc<dyn ObjectLayer>,
    bucket: BucketName,
    key: ObjectKey,
    opts: PutOptions,
    part_size: crate::config::PartSizes,
    prefix: ByteStream,
    rx: mpsc::Receiver<Bytes>,
    cancel: oneshot::Receiver<()>,
) -> VfsResult<Streamed> {
    let upload_id = layer.create_multipart_upload(&bucket, &key, opts).await?;
    let body = byte_stream(
        prefix.chain(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok(b), rx))
        })),
    );
    let res = tokio::select! {
        biased;
        c = cancel => match c {
            // an explicit cancel, or the handle dropped without finishing
            Ok(()) | Err(_) => Err(VfsError::Invalid("streaming upload cancelled")),
        },
        r = feed_parts(&layer, &bucket, &key, &upload_id, part_size, body) => r,
    };
    match res {
        Ok(parts) => Ok(Streamed { upload_id, parts }),
        Err(e) => {
            if let Err(ae) = layer
                .abort_multipart_upload(&bucket, &key, &upload_id)
                .await
            {
                tracing::warn!(error = %ae, "aborting a streaming upload");
            }
            Err(e)
        }
    }
}

type PartTask = JoinHandle<Result<PartInfo, cairn_api::ObjectError>>;

/// Cuts `body` into parts (`PartSizes`), each uploaded while it is fed.
/// A full part finishes (its fsyncs and commit) while the next one is
/// fed: waiting for it would stall the writer at every part boundary.
/// At most two parts are in flight.
async fn feed_parts(
    layer: &Arc<dyn ObjectLayer>,
    bucket: &BucketName,
    key: &ObjectKey,
    upload_id: &str,
    part_size: crate::config::PartSizes,
    body: ByteStream,
) -> VfsResult<Vec<CompletePart>> {
    let mut finishing = None;
    let res = feed_parts_into(
        layer,
        bucket,
        key,
        upload_id,
        part_size,
        body,
        &mut finishing,
    )
    .await;
    if res.is_err()
        && let Some((_, t)) = finishing.take()
    {
        // let the finishing part end before the caller aborts the upload
        let _ = t.await;
    }
    res
}

async fn feed_parts_into(
    layer: &Arc<dyn ObjectLayer>,
    bucket: &BucketName,
    key: &ObjectKey,
    upload_id: &str,
    part_size: crate::config::PartSizes,
    mut body: ByteStream,
    finishing: &mut Option<(u32, PartTask)>,
) -> VfsResult<Vec<CompletePart>> {
    let mut parts = Vec::new();
    let mut cur: Option<(mpsc::Sender<Result<Bytes, std::io::Error>>, PartTask)> = None;
    let mut in_part = 0u64;
    let mut number = 1u32;
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk?;
        while !chunk.is_empty() {
            if cur.is_none() {
                let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
                let layer = layer.clone();
                let (b, k, id) = (bucket.clone(), key.clone(), upload_id.to_owned());
                let part_body = byte_stream(futures::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|b| (b, rx))
                }));
                let task = tokio::spawn(async move {
                    layer
                        .upload_part(&b, &k, &id, number, part_body, PartOptions::default())
                        .await
                });
                cur = Some((tx, task));
                in_part = 0;
            }
            let part_size = part_size.len(number);
            let take = (part_size - in_part).min(chunk.len() as u64) as usize;
            let piece = chunk.split_to(take);
            if let Some((tx, _)) = &cur
                && tx.send(Ok(piece)).await.is_err()
            {
                // the part upload ended early: its error says why
                if let Some((_, task)) = cur.take() {
                    finish_part(task, number).await?;
                }
                return Err(VfsError::Io(std::io::Error::other(
                    "part upload stopped reading",
                )));
            }
            in_part += take as u64;
            if in_part == part_size
                && let Some((tx, task)) = cur.take()
            {
                drop(tx);
                if let Some((n, t)) = finishing.take() {
                    parts.push(finish_part(t, n).await?);
                }
                *finishing = Some((number, task));
                number += 1;
            }
        }
    }
    if let Some((n, t)) = finishing.take() {
        parts.push(finish_part(t, n).await?);
    }
    if let Some((tx, task)) = cur.take() {
        drop(tx);
        parts.push(finish_part(task, number).await?);
    }
    Ok(parts)
}

async fn finish_part(task: PartTask, number: u32) -> VfsResult<CompletePart> {
    match task.await {
        Ok(Ok(p)) => Ok(CompletePart {
            part_number: number,
            etag: p.etag,
        }),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(VfsError::Io(std::io::Error::other(format!(
            "part upload task failed: {e}"
        )))),
    }
}
