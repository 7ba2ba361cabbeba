//! Reading a file with staging, and applying a recorded staging (NFS
//! recovery). A staging holds only the dirty ranges: a read merges them
//! with the base object's bytes below `base_valid` (through the handle's
//! `ObjectReader`, streaming ranged GETs) and zeros elsewhere.

use std::path::Path;

use bytes::Bytes;

use crate::Vfs;
use crate::attr::FileKind;
use crate::data::ReadData;
use crate::error::{VfsError, VfsResult};
use crate::file::{FileState, Handle, OpenMode};
use crate::names::key;
use crate::sidecar::StagedState;

/// Recovery reads the recorded ranges in chunks of this size.
const CHUNK: u64 = 1 << 20;

/// Where a file a recorded staging applies to is, and how a new one is made.
pub struct StagedTarget<'a> {
    pub parent: u64,
    pub name: &'a str,
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Vfs {
    /// `[offset, offset+size)` of a file with staging (the state lock held).
    pub(crate) async fn read_staged(
        &self,
        h: &Handle,
        st: &FileState,
        offset: u64,
        size: u32,
    ) -> VfsResult<ReadData> {
        let s = st.staging.as_ref().ok_or(VfsError::BadHandle)?;
        let end = s.len().min(offset.saturating_add(u64::from(size)));
        if offset >= end {
            return Ok(ReadData::default());
        }
        let bv = s.base_valid();
        let mut parts: Vec<Bytes> = Vec::new();
        let mut pos = offset;
        // (from, to, dirty)
        let mut plan = Vec::new();
        for (a, b) in s.dirty().overlapping(offset, end) {
            if pos < a {
                plan.push((pos, a, false));
            }
            plan.push((a, b, true));
            pos = b;
        }
        if pos < end {
            plan.push((pos, end, false));
        }
        for (a, b, dirty) in plan {
            if dirty {
                parts.push(Bytes::from(s.read_at(a, (b - a) as usize)?));
                continue;
            }
            // the base's bytes below base_valid, zeros past it
            let split = b.min(bv).max(a);
            if a < split {
                let got = self.read_base(h, st, a, split, bv).await?;
                parts.extend(got.parts().iter().cloned());
                // the object may have become shorter: zeros for the rest
                let short = (split - a).saturating_sub(got.len() as u64);
                push_zeros(&mut parts, short);
            }
            push_zeros(&mut parts, b - split);
        }
        Ok(ReadData::new(parts))
    }

    async fn read_base(
        &self,
        h: &Handle,
        st: &FileState,
        from: u64,
        to: u64,
        base_valid: u64,
    ) -> VfsResult<ReadData> {
        let (b, path) = self.bucket_path(st.attr.ino)?;
        let k = key(&path)?;
        let mut r = h.reader.lock().await;
        r.at_commit(st.commits);
        r.read(
            &self.layer,
            &self.streams,
            &b,
            &k,
            from,
            (to - from) as usize,
            base_valid,
        )
        .await
    }

    /// Applies a staging recorded with its sidecar (a crash left it) to
    /// the file `t.name` in `t.parent`: its length and dirty ranges go onto
    /// the current version (or a new file when there is none), and the
    /// file is committed as any change. Returns the bytes applied.
    pub async fn apply_staged(
        &self,
        t: StagedTarget<'_>,
        staged: &Path,
        state: &StagedState,
    ) -> VfsResult<u64> {
        let ranges = state.ranges().ok_or(VfsError::Invalid(
            "a staging sidecar's ranges are inconsistent",
        ))?;
        let fh = match self.lookup(t.parent, t.name).await {
            Ok(a) if a.kind == FileKind::File => {
                self.open(
                    a.ino,
                    OpenMode {
                        write: true,
                        truncate: false,
                    },
                )
                .await?
            }
            Ok(_) => return Err(VfsError::Invalid("not a regular file")),
            Err(VfsError::NotFound) => {
                self.create(t.parent, t.name, t.perm, t.uid, t.gid, false)
                    .await?
                    .1
            }
            Err(e) => return Err(e),
        };
        let applied = async {
            {
                let h = self.handle(fh)?;
                let mut st = h.file.state.lock().await;
                let same = st.remote
                    && match (&state.base, &st.base) {
                        (Some(r), Some(c)) => r.etag == c.etag && r.version_id == c.version_id,
                        _ => false,
                    };
                if state.base.is_some() && !same {
                    tracing::info!(
                        name = t.name,
                        "the object changed since its writes were staged; they go onto its current version"
                    );
                }
                // bytes past base_valid read as zeros: cut, then extend
                let cut = st.attr.size.min(state.base_valid);
                self.truncate_state(&mut st, cut).await?;
                self.truncate_state(&mut st, state.len).await?;
            }
            let mut total = 0u64;
            for (start, end) in ranges.iter() {
                let mut off = start;
                while off < end {
                    let n = (end - off).min(CHUNK);
                    let path = staged.to_path_buf();
                    let chunk = tokio::task::spawn_blocking(move || {
                        use std::os::unix::fs::FileExt as _;
                        let f = std::fs::File::open(path)?;
                        let mut buf = vec![0u8; n as usize];
                        f.read_exact_at(&mut buf, off).map(|()| buf)
                    })
                    .await
                    .map_err(|e| VfsError::Io(std::io::Error::other(e)))??;
                    self.write_bytes(fh, off, Bytes::from(chunk)).await?;
                    off += n;
                }
                total += end - start;
            }
            Ok::<u64, VfsError>(total)
        }
        .await;
        let released = self.release(fh).await;
        let total = applied?;
        released?;
        Ok(total)
    }
}

fn push_zeros(parts: &mut Vec<Bytes>, n: u64) {
    if n > 0 {
        parts.push(Bytes::from(vec![0u8; n as usize]));
    }
}
