//! Patching an object: a new version made of an existing one with some
//! byte ranges replaced and a new length (the file fronts' random writes,
//! truncates and extensions). A store that shares unchanged data between
//! versions (`cairn-core`) writes only what changed; any other layer gets
//! [`patch_via_stream`]: the merged bytes streamed into a PUT.

use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt as _};

use crate::error::{ObjectError, ObjectResult};
use crate::types::{ByteStream, ObjectMetadata};

/// Changed bytes as `(offset, bytes)`, in ascending order of offset, not
/// overlapping, every byte below the new size.
pub type PatchStream = Pin<Box<dyn Stream<Item = std::io::Result<(u64, Bytes)>> + Send>>;

/// The patch stream of a list of in-memory changes (tests, small patches).
pub fn patch_stream(changes: Vec<(u64, Bytes)>) -> PatchStream {
    Box::pin(futures::stream::iter(changes.into_iter().map(Ok)))
}

/// The version a patch applies to, as the writer read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchBase {
    /// `None`: the null version.
    pub version_id: Option<String>,
    pub etag: String,
}

#[derive(Debug, Clone, Default)]
pub struct PatchOptions {
    /// The changes apply to this version, which must still be the current
    /// one (else `PreconditionFailed`, and nothing changes); `None`: to
    /// whatever version is current.
    pub base: Option<PatchBase>,
    /// The object's length afterwards: bytes past it are cut, bytes
    /// between the old end and it that no change covers read as zeros.
    pub size: u64,
    /// The new version's metadata (tags and ACL stay the base's; its
    /// encryption too).
    pub metadata: ObjectMetadata,
    /// As `PutOptions::write_back`.
    pub write_back: bool,
}

/// Checks the order rules of a patch stream as it is consumed: ascending,
/// not overlapping, below `size`.
#[derive(Debug)]
pub struct PatchOrder {
    size: u64,
    next: u64,
}

impl PatchOrder {
    pub fn new(size: u64) -> Self {
        Self { size, next: 0 }
    }

    /// The end of a change at `offset` of `len` bytes, or why it breaks
    /// the rules.
    pub fn check(&mut self, offset: u64, len: usize) -> ObjectResult<u64> {
        let end = offset
            .checked_add(len as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| ObjectError::InvalidArgument {
                message: format!("a patch change at {offset} ends past the new size"),
            })?;
        if offset < self.next {
            return Err(ObjectError::InvalidArgument {
                message: format!("patch changes out of order or overlapping at {offset}"),
            });
        }
        self.next = end;
        Ok(end)
    }
}

/// A patch stream being consumed: each change checked against the
/// order rules ([`PatchOrder`]) as it arrives, empty ones dropped, the
/// next one looked at before it is taken (and split where a consumer's
/// unit ends). The one reader of patch streams: `merged_stream` and the
/// store's extent writer.
pub struct PatchChanges {
    stream: PatchStream,
    order: PatchOrder,
    next: Option<(u64, Bytes)>,
    done: bool,
}

impl PatchChanges {
    pub fn new(stream: PatchStream, size: u64) -> Self {
        Self {
            stream,
            order: PatchOrder::new(size),
            next: None,
            done: false,
        }
    }

    /// The offset of the next change (`u64::MAX` when none is left).
    pub async fn peek(&mut self) -> ObjectResult<u64> {
        while self.next.is_none() && !self.done {
            match self.stream.next().await {
                None => self.done = true,
                Some(Err(e)) => {
                    return Err(ObjectError::BodyRead {
                        message: e.to_string(),
                    });
                }
                Some(Ok((off, data))) => {
                    self.order.check(off, data.len())?;
                    if !data.is_empty() {
                        self.next = Some((off, data));
                    }
                }
            }
        }
        Ok(self.next.as_ref().map_or(u64::MAX, |(o, _)| *o))
    }

    /// The next change (after `peek`), taken.
    pub fn take(&mut self) -> Option<(u64, Bytes)> {
        self.next.take()
    }

    /// The changes (or their heads) below `end`, in order.
    pub async fn take_below(&mut self, end: u64) -> ObjectResult<Vec<(u64, Bytes)>> {
        let mut out = Vec::new();
        while self.peek().await? < end {
            let Some((off, data)) = self.next.take() else {
                break;
            };
            let fits = (end - off) as usize;
            if data.len() > fits {
                self.next = Some((end, data.slice(fits..)));
                out.push((off, data.slice(..fits)));
            } else {
                out.push((off, data));
            }
        }
        Ok(out)
    }
}

/// The bytes of `[0, size)` after the patch: the base's bytes (`base` is
/// the whole base object, `base_len` long) where no change covers them,
/// zeros past the base's end. Streamed: one base chunk and one change in
/// memory at a time.
pub fn merged_stream(
    base: ByteStream,
    base_len: u64,
    changes: PatchStream,
    size: u64,
) -> ByteStream {
    struct St {
        base: ByteStream,
        /// The base chunk being consumed and its offset.
        base_buf: Bytes,
        base_off: u64,
        base_len: u64,
        changes: PatchChanges,
        pos: u64,
        size: u64,
    }
    fn io_error(e: ObjectError) -> std::io::Error {
        match e {
            ObjectError::InvalidArgument { .. } => {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
            }
            e => std::io::Error::other(e.to_string()),
        }
    }
    impl St {
        /// `n` base bytes from `pos` (consumed from the base stream).
        async fn base_bytes(&mut self, n: u64) -> std::io::Result<Bytes> {
            // skip base bytes a change replaced
            while self.base_off + (self.base_buf.len() as u64) <= self.pos {
                self.base_off += self.base_buf.len() as u64;
                self.base_buf = match self.base.next().await {
                    Some(c) => c?,
                    None => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the base object ended early",
                        ));
                    }
                };
            }
            let skip = (self.pos - self.base_off) as usize;
            let avail = self.base_buf.len() - skip;
            let take = avail.min(n as usize);
            Ok(self.base_buf.slice(skip..skip + take))
        }

        async fn next_chunk(&mut self) -> std::io::Result<Option<Bytes>> {
            if self.pos >= self.size {
                return Ok(None);
            }
            let next = self.changes.peek().await.map_err(io_error)?;
            if next <= self.pos
                && let Some((off, data)) = self.changes.take()
            {
                self.pos = off + data.len() as u64;
                return Ok(Some(data));
            }
            let until = next.min(self.size);
            let n = until - self.pos;
            let out = if self.pos < self.base_len {
                self.base_bytes(n.min(self.base_len - self.pos)).await?
            } else {
                Bytes::from(vec![0u8; n.min(1 << 20) as usize])
            };
            self.pos += out.len() as u64;
            Ok(Some(out))
        }
    }
    let st = St {
        base,
        base_buf: Bytes::new(),
        base_off: 0,
        base_len,
        changes: PatchChanges::new(changes, size),
        pos: 0,
        size,
    };
    Box::pin(futures::stream::unfold(st, |mut st| async move {
        match st.next_chunk().await {
            Ok(Some(b)) => Some((Ok(b), st)),
            Ok(None) => None,
            Err(e) => {
                st.pos = st.size;
                Some((Err(e), st))
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(data: &[u8], n: usize) -> ByteStream {
        let v: Vec<std::io::Result<Bytes>> = data
            .chunks(n)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(futures::stream::iter(v))
    }

    async fn merge(base: &[u8], changes: Vec<(u64, &[u8])>, size: u64) -> std::io::Result<Vec<u8>> {
        let ch = changes
            .into_iter()
            .map(|(o, d)| (o, Bytes::copy_from_slice(d)))
            .collect();
        crate::collect_stream(merged_stream(
            chunks(base, 3),
            base.len() as u64,
            patch_stream(ch),
            size,
        ))
        .await
    }

    fn model(base: &[u8], changes: &[(u64, &[u8])], size: u64) -> Vec<u8> {
        let mut m = base.to_vec();
        m.resize(size as usize, 0);
        for (o, d) in changes {
            m[*o as usize..*o as usize + d.len()].copy_from_slice(d);
        }
        m
    }

    #[tokio::test]
    async fn merges_like_pwrite_and_truncate() {
        let base: Vec<u8> = (0..50u8).collect();
        type Case<'a> = (Vec<(u64, &'a [u8])>, u64);
        let cases: Vec<Case> = vec![
            (vec![], 50),
            (vec![], 20),
            (vec![], 70),
            (vec![(0, b"abc")], 50),
            (vec![(2, b"xy"), (4, b"zz"), (49, b"q")], 50),
            (vec![(10, b"hello")], 12 + 3),
            (vec![(60, b"past")], 64),
            (vec![(48, b"acrossend")], 57),
        ];
        for (ch, size) in cases {
            let want = model(&base, &ch, size);
            assert_eq!(
                merge(&base, ch.clone(), size).await.unwrap(),
                want,
                "{ch:?} {size}"
            );
        }
    }

    #[tokio::test]
    async fn refuses_disorder_and_changes_past_the_size() {
        let base = [7u8; 10];
        assert!(merge(&base, vec![(5, b"ab"), (4, b"c")], 10).await.is_err());
        assert!(merge(&base, vec![(5, b"ab"), (6, b"c")], 10).await.is_err());
        assert!(merge(&base, vec![(9, b"ab")], 10).await.is_err());
    }
}
