//! Writing: a body streams into a temp file under the hidden folder (same
//! file system as the share) while one blocking thread computes its
//! digests; the file is fsynced as soon as the whole body is in, and only
//! after the digests check out does it get its metadata and is renamed
//! into place. A reader sees the old file or the new one, never half of
//! one.

use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use cairn_api::checksum::{BodyDigest, DigestOutcome};
use cairn_api::{ByteStream, ChecksumRequest, MAX_PUT_SIZE, ObjectError, ObjectResult};
use futures::StreamExt as _;

use super::errors::{io_error, is_path_clash};
use super::paths::sync_dir;

/// A temp file that is removed unless it was renamed into place.
pub(crate) struct TempFile {
    pub path: PathBuf,
    pub file: File,
    kept: bool,
}

impl TempFile {
    pub fn create(path: PathBuf) -> io::Result<Self> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Self {
            path,
            file,
            kept: false,
        })
    }

    /// The file was renamed away: nothing to clean up.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Streams `body` into a new temp file at `path`, checks the declared
/// length, Content-MD5 and checksum, and fsyncs. Memory stays at a few
/// chunks: the channels to the writer and hash threads are bounded.
pub(crate) async fn receive(
    path: PathBuf,
    mut body: ByteStream,
    content_length: Option<u64>,
    content_md5: Option<[u8; 16]>,
    checksum: Option<ChecksumRequest>,
) -> ObjectResult<(TempFile, DigestOutcome)> {
    // Two threads, so hashing and writing overlap: MD5 (0.77 GB/s with
    // AWS-LC's, cairn_api::fast_md5) is the slower of the two and would otherwise add
    // to every write.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let (dtx, mut drx) = tokio::sync::mpsc::channel::<Bytes>(4);
    // Set once the whole body has been handed over (before the channel
    // closes): then the writer fsyncs at once, while MD5 finishes its
    // last chunks, instead of after the digests are checked. A temp file
    // whose digests then fail is removed all the same.
    let whole = Arc::new(AtomicBool::new(false));
    let whole_w = whole.clone();
    let writer = tokio::task::spawn_blocking(move || -> ObjectResult<(TempFile, bool)> {
        let mut tmp = TempFile::create(path).map_err(|e| io_error(e, "creating a temp file"))?;
        let mut len = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            let offset = len;
            len += chunk.len() as u64;
            if len > MAX_PUT_SIZE {
                return Err(ObjectError::EntityTooLarge {
                    size: len,
                    max: MAX_PUT_SIZE,
                });
            }
            tmp.file
                .write_all(&chunk)
                .map_err(|e| io_error(e, "writing a temp file"))?;
            // the disk works while the body is still arriving (MD5 is
            // the slower stage)
            cairn_api::fsio::writeback_completed(&tmp.file, offset, len);
        }
        let synced = whole_w.load(Ordering::Acquire);
        if synced {
            tmp.file
                .sync_all()
                .map_err(|e| io_error(e, "syncing a temp file"))?;
        }
        Ok((tmp, synced))
    });
    let hasher = tokio::task::spawn_blocking(move || {
        let mut md5 = cairn_api::fast_md5::Md5::new();
        let mut digest = BodyDigest::without_md5(checksum);
        while let Some(chunk) = drx.blocking_recv() {
            md5.update(&chunk);
            digest.update(&chunk);
        }
        (md5.finish(), digest)
    });
    let mut read_err = None;
    loop {
        match body.next().await {
            None => {
                whole.store(true, Ordering::Release);
                break;
            }
            Some(Ok(c)) if c.is_empty() => {}
            Some(Ok(c)) => {
                if dtx.send(c.clone()).await.is_err() || tx.send(c).await.is_err() {
                    break; // a thread failed; its error is reported below
                }
            }
            Some(Err(e)) => {
                read_err = Some(ObjectError::BodyRead {
                    message: e.to_string(),
                });
                break;
            }
        }
    }
    drop(tx);
    drop(dtx);
    let (tmp, synced) = writer
        .await
        .map_err(|e| ObjectError::internal(format!("writer thread: {e}")))??;
    let (md5, digest) = hasher
        .await
        .map_err(|e| ObjectError::internal(format!("hash thread: {e}")))?;
    if let Some(e) = read_err {
        return Err(e);
    }
    let outcome = digest.verify_with_md5(md5, content_md5.as_ref(), content_length)?;
    if !synced {
        // Not reached (a whole body was synced by the writer); kept so a
        // change to the loop above can never commit an unsynced file.
        return Err(ObjectError::internal("a PUT's temp file was not synced"));
    }
    Ok((tmp, outcome))
}

/// Why a key cannot be placed, for the `KeyConflict` error.
pub(crate) const PARENT_IS_FILE: &str =
    "a folder on its path is a file on the share (a key and keys below it cannot both exist)";
pub(crate) const KEY_IS_FOLDER: &str =
    "it is a folder on the share holding other keys (a key and keys below it cannot both exist)";

/// Creates the folders above `path` up to (not including) the bucket.
pub(crate) fn make_parents(
    bucket_dir: &Path,
    path: &Path,
) -> Result<(), (io::Error, &'static str)> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    if parent == bucket_dir {
        return Ok(());
    }
    match std::fs::create_dir_all(parent) {
        Ok(()) => Ok(()),
        Err(e) if is_path_clash(&e) => Err((e, PARENT_IS_FILE)),
        Err(e) => Err((e, "")),
    }
}

/// Renames a finished temp file over `dst` and fsyncs the folder.
pub(crate) fn install(tmp: TempFile, dst: &Path) -> Result<(), (io::Error, &'static str)> {
    let replaced = match std::fs::symlink_metadata(dst) {
        Ok(m) if m.is_dir() => {
            return Err((io::Error::from_raw_os_error(libc::EISDIR), KEY_IS_FOLDER));
        }
        // Held open across the rename so that freeing the old file's blocks
        // (20-30 ms for 64 MiB on ext4 with discard) happens at the last
        // close, off the request's path, instead of inside the rename.
        Ok(m) if m.is_file() => File::open(dst).ok(),
        _ => None,
    };
    match std::fs::rename(&tmp.path, dst) {
        Ok(()) => tmp.keep(),
        Err(e) if is_path_clash(&e) => {
            let why = if e.raw_os_error() == Some(libc::ENOTDIR) {
                PARENT_IS_FILE
            } else {
                KEY_IS_FOLDER
            };
            return Err((e, why));
        }
        Err(e) => return Err((e, "")),
    }
    if let Some(parent) = dst.parent()
        && let Err(e) = sync_dir(parent)
    {
        tracing::warn!(dir = %parent.display(), error = %e, "folder fsync after rename failed");
    }
    if let Some(old) = replaced {
        release_later(old);
    }
    Ok(())
}

/// Closes the replaced file on another blocking thread: its last close
/// frees its blocks, which the caller need not wait for.
fn release_later(old: File) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn_blocking(move || drop(old))),
        Err(_) => drop(old),
    }
}
