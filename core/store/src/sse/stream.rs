//! Range reads of encrypted objects: which stored bytes hold a plaintext
//! range (whole packages only), and the stream that opens those packages
//! and trims them to the range.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cairn_api::ByteStream;
use futures::StreamExt as _;

use super::ObjectKeys;
use super::cipher::{Cipher, PACKAGE, PartCipher};

/// One part: the number its packages are sealed under, its plaintext
/// size, and the salt its part key binds (parts written by a patch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainPart {
    pub number: u32,
    pub size: u64,
    pub salt: Option<Arc<str>>,
    /// The sequence number of the part's first package in its file (a
    /// slice of a file starts past its first: `FileSlice`).
    pub first_seq: u64,
    /// The part ends where its file ends: its last package was sealed
    /// as the last.
    pub tail: bool,
}

impl PlainPart {
    /// The parts of `version`, as the decrypting stream opens them.
    pub fn of(version: &crate::meta::VersionMeta) -> Vec<PlainPart> {
        version
            .parts
            .iter()
            .map(|p| {
                let f = version.part_file(p);
                PlainPart {
                    number: f.map_or(p.number, |f| f.number),
                    size: p.size,
                    salt: f.and_then(|f| f.salt).map(Arc::from),
                    first_seq: f.map_or(0, |f| f.skip / PACKAGE as u64),
                    tail: f.is_none_or(|f| f.tail(p)),
                }
            })
            .collect()
    }
}

/// Where the packages holding plaintext `[offset, offset + length)` sit in
/// the concatenated stored parts: `(stored offset, stored length)`.
pub fn stored_range(cipher: Cipher, parts: &[PlainPart], offset: u64, length: u64) -> (u64, u64) {
    if length == 0 {
        return (0, 0);
    }
    let end = offset + length;
    let full = cipher.sealed_len(PACKAGE) as u64;
    let (mut plain_start, mut stored_start) = (0u64, 0u64);
    let (mut lo, mut hi) = (None, 0u64);
    for p in parts {
        let plain_end = plain_start + p.size;
        let stored = cipher.stored_len(p.size);
        if lo.is_none() && offset < plain_end {
            lo = Some(stored_start + (offset - plain_start) / PACKAGE as u64 * full);
        }
        if end <= plain_end {
            let last_pkg = (end - 1 - plain_start) / PACKAGE as u64;
            hi = stored_start + ((last_pkg + 1) * full).min(stored);
            break;
        }
        plain_start = plain_end;
        stored_start += stored;
    }
    let lo = lo.unwrap_or(0);
    (lo, hi.saturating_sub(lo))
}

struct Decrypt {
    inner: ByteStream,
    keys: Arc<ObjectKeys>,
    parts: Vec<PlainPart>,
    /// Current part index, its cipher, the next package's number.
    part: usize,
    cipher: Option<PartCipher>,
    seq: u64,
    /// Plaintext bytes to drop from the next package, and still to emit.
    skip: usize,
    remaining: u64,
    buf: BytesMut,
    failed: bool,
}

impl Decrypt {
    async fn next_chunk(&mut self) -> Option<std::io::Result<Bytes>> {
        while self.remaining > 0 && !self.failed {
            let p = self.parts.get(self.part).cloned()?;
            let packages = Cipher::packages(p.size);
            if self.seq >= packages {
                self.part += 1;
                self.seq = 0;
                self.cipher = None;
                continue;
            }
            let plain_len = (p.size - self.seq * PACKAGE as u64).min(PACKAGE as u64) as usize;
            let sealed_len = self.keys.meta.cipher.sealed_len(plain_len);
            while self.buf.len() < sealed_len {
                match self.inner.next().await {
                    // A chunk nobody else holds is decrypted where it is:
                    // the reader hands out whole shard slices, which hold
                    // whole packages when the shard size allows it.
                    Some(Ok(c)) if self.buf.is_empty() => {
                        self.buf = c.try_into_mut().unwrap_or_else(|c| BytesMut::from(&c[..]));
                    }
                    Some(Ok(c)) => self.buf.extend_from_slice(&c),
                    Some(Err(e)) => {
                        self.failed = true;
                        return Some(Err(e));
                    }
                    None => {
                        self.failed = true;
                        return Some(Err(std::io::Error::other(format!(
                            "encrypted data ends inside package {} of part {}",
                            self.seq, p.number
                        ))));
                    }
                }
            }
            let mut sealed = self.buf.split_to(sealed_len);
            let cipher = self
                .cipher
                .get_or_insert_with(|| self.keys.part_salted(p.number, p.salt.as_deref()));
            let last = p.tail && self.seq + 1 == packages;
            // the opened plaintext is the head of the buffer (both ciphers
            // decrypt in place): hand it on without copying
            let opened = match cipher.open(p.first_seq + self.seq, last, &mut sealed) {
                Ok(pl) => pl.len(),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(std::io::Error::other(e.to_string())));
                }
            };
            if opened != plain_len {
                self.failed = true;
                return Some(Err(std::io::Error::other(format!(
                    "package {} of part {} has {opened} bytes, expected {plain_len}",
                    self.seq, p.number
                ))));
            }
            self.seq += 1;
            let from = self.skip.min(opened);
            self.skip = 0;
            let take = ((opened - from) as u64).min(self.remaining) as usize;
            self.remaining -= take as u64;
            if take > 0 {
                sealed.truncate(from + take);
                return Some(Ok(sealed.freeze().slice(from..)));
            }
        }
        None
    }
}

/// Opens the packages `inner` (the stored bytes of [`stored_range`])
/// holds and yields plaintext `[offset, offset + length)`.
pub fn decrypt(
    inner: ByteStream,
    keys: Arc<ObjectKeys>,
    parts: Vec<PlainPart>,
    offset: u64,
    length: u64,
) -> ByteStream {
    let mut part = 0;
    let mut start = 0u64;
    while let Some(p) = parts.get(part)
        && start + p.size <= offset
        && length > 0
    {
        start += p.size;
        part += 1;
    }
    let within = offset.saturating_sub(start);
    let state = Decrypt {
        inner,
        keys,
        parts,
        part,
        cipher: None,
        seq: within / PACKAGE as u64,
        skip: (within % PACKAGE as u64) as usize,
        remaining: length,
        buf: BytesMut::new(),
        failed: false,
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        st.next_chunk().await.map(|r| (r, st))
    }))
}
