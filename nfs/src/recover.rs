//! Recovery at start: files whose WRITEs were made durable (fsynced in a
//! staging file, recorded as pending in the id map) but not yet committed
//! when the process died are committed now, through the view like any
//! write, before the export serves anyone. A staging file is sparse (only
//! the dirty ranges); its sidecar (`<name>.state`, cairn-vfs sidecar.rs)
//! says the base, length and ranges, and recovery applies those ranges to
//! the current version (`Vfs::apply_staged`). A staging file without a
//! sidecar (written before sidecars existed) is the whole file. Other
//! staging files hold only UNSTABLE writes never COMMITted: they are
//! removed with their sidecars, and their clients, seeing the new write
//! verifier, send those writes again.

use std::io::Read as _;
use std::sync::Arc;

use cairn_vfs::{ROOT_INO, STAGE_PREFIX, StagedTarget, Vfs, VfsError, VfsResult, sidecar};

use crate::ids::IdMap;

const CHUNK: usize = 1 << 20;

pub async fn recover(vfs: &Arc<Vfs>, ids: &IdMap) {
    let pending = match ids.pending() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "reading pending NFS writes");
            return;
        }
    };
    let spool = vfs.config().spool();
    for (id, path) in pending {
        // a staging file of the spool, whatever the id map holds
        let path = std::path::Path::new(&path);
        let Some(path) = path
            .parent()
            .filter(|p| *p == spool.as_path())
            .and_then(|_| path.file_name()?.to_str())
            .and_then(|name| spool.join_named(STAGE_PREFIX, name).ok())
        else {
            tracing::error!(id, path = %path.display(), "a pending NFS write outside the spool is ignored");
            let _ = ids.clear_pending(id);
            continue;
        };
        if !path.exists() {
            // committed and removed before the record was cleared
            let _ = ids.clear_pending(id);
            continue;
        }
        let Some(names) = ids.path(id) else {
            keep(vfs, &path, id, "its file id is gone");
            let _ = ids.clear_pending(id);
            continue;
        };
        let side = sidecar::path_of(&path);
        let state = match side.as_deref().filter(|s| s.exists()) {
            None => None,
            Some(s) => match sidecar::read(s) {
                Ok(st) => Some(st),
                Err(e) => {
                    tracing::error!(id, error = %e, path = %s.display(), "a staging sidecar cannot be read");
                    keep(vfs, &path, id, "its sidecar cannot be read");
                    let _ = ids.clear_pending(id);
                    continue;
                }
            },
        };
        let done = match &state {
            Some(st) => apply(vfs, &names, &path, st).await,
            None => commit(vfs, &names, &path).await,
        };
        match done {
            Ok(len) => {
                tracing::info!(
                    id,
                    key = names.join("/"),
                    bytes = len,
                    "committed NFS writes staged before a restart"
                );
                // the staging file first: a sidecar alone means nothing
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(error = %e, path = %path.display(), "removing a recovered staging file");
                }
                if let Some(s) = side.as_deref()
                    && let Err(e) = std::fs::remove_file(s)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(error = %e, path = %s.display(), "removing a recovered staging sidecar");
                }
            }
            Err(e) => {
                tracing::error!(id, error = %e, "recovering NFS writes");
                keep(vfs, &path, id, "its commit failed");
            }
        }
        let _ = ids.clear_pending(id);
    }
    remove_unstable(&vfs.config().spool_dir);
}

/// Removes the staging files left in the spool, their sidecars
/// (`stage-….state`) and sidecars' temporary files with them (recovered
/// ones are gone already, kept ones are in `lost+found/`).
fn remove_unstable(spool: &std::path::Path) {
    let Ok(rd) = std::fs::read_dir(spool) else {
        return;
    };
    let mut removed = 0u64;
    for e in rd.flatten() {
        let stage = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(STAGE_PREFIX));
        if stage && e.file_type().is_ok_and(|t| t.is_file()) {
            match std::fs::remove_file(e.path()) {
                Ok(()) => removed += 1,
                Err(err) => {
                    tracing::warn!(error = %err, path = %e.path().display(), "removing an unstable staging file")
                }
            }
        }
    }
    if removed > 0 {
        tracing::info!(
            files = removed,
            "removed staging files of UNSTABLE writes never committed before a restart"
        );
    }
}

/// Moves a staging file that cannot be committed to `lost+found`, with
/// its sidecar when it has one (`nfs-id<N>` and `nfs-id<N>.state`).
fn keep(vfs: &Vfs, path: &std::path::Path, id: u64, why: &str) {
    let dir = vfs.config().lost_and_found();
    let dest = dir.join_str(&format!("nfs-id{id}"));
    let r = dest.map_err(std::io::Error::from).and_then(|dest| {
        std::fs::create_dir_all(&dir)?;
        std::fs::rename(path, &dest)?;
        if let (Some(side), Some(side_dest)) = (sidecar::path_of(path), sidecar::path_of(&dest))
            && side.exists()
        {
            std::fs::rename(side, side_dest)?;
        }
        Ok(dest)
    });
    match r {
        Ok(dest) => tracing::error!(id, kept = %dest.display(), why, "staged NFS writes kept"),
        Err(e) => tracing::error!(id, error = %e, why, "staged NFS writes could not be kept"),
    }
}

/// The directory holding the file at `names`, and its name.
async fn locate<'a>(vfs: &Vfs, names: &'a [String]) -> VfsResult<(u64, &'a str)> {
    let (last, dirs) = names
        .split_last()
        .ok_or(VfsError::Invalid("the export root"))?;
    let mut dir = ROOT_INO;
    for d in dirs {
        dir = vfs.lookup(dir, d).await?.ino;
    }
    Ok((dir, last))
}

/// Applies a sparse staging file's recorded ranges (its sidecar's) to the
/// file at `names`.
async fn apply(
    vfs: &Vfs,
    names: &[String],
    path: &std::path::Path,
    state: &cairn_vfs::StagedState,
) -> VfsResult<u64> {
    let (dir, last) = locate(vfs, names).await?;
    let defaults = vfs.config().defaults;
    vfs.apply_staged(
        StagedTarget {
            parent: dir,
            name: last,
            perm: defaults.file_perm,
            uid: defaults.uid,
            gid: defaults.gid,
        },
        path,
        state,
    )
    .await
}

/// Writes the staging file's bytes as the object at `names` (made if new,
/// replaced otherwise, keeping its attributes): a staging file without a
/// sidecar holds the whole file.
async fn commit(vfs: &Vfs, names: &[String], path: &std::path::Path) -> VfsResult<u64> {
    let (dir, last) = locate(vfs, names).await?;
    let defaults = vfs.config().defaults;
    let (_, fh) = vfs
        .create(
            dir,
            last,
            defaults.file_perm,
            defaults.uid,
            defaults.gid,
            false,
        )
        .await?;
    let copied = async {
        let mut f = std::fs::File::open(path)?;
        let mut buf = vec![0u8; CHUNK];
        let mut off = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            // read() returns at most the buffer's length
            #[allow(clippy::indexing_slicing)]
            let chunk = &buf[..n];
            vfs.write(fh, off, chunk).await?;
            off += n as u64;
        }
        Ok::<u64, VfsError>(off)
    }
    .await;
    let released = vfs.release(fh).await;
    let len = copied?;
    released?;
    Ok(len)
}
