//! `cairn.meta`: one file per object per drive holding every version's
//! metadata and, for small objects, this drive's shard inline.
//!
//! Layout (little endian):
//! `CAIRNMET` | u16 format version | u32 header length | header (JSON) |
//! u64 HighwayHash-64 of everything before | u64 inline length | inline
//! bytes | u64 HighwayHash-64 of the inline bytes.
//! The header is checked separately so a listing reads only the head.

use std::collections::BTreeMap;
use std::path::Path;

use cairn_api::{Checksum, ObjectHeaders, ObjectInfo, StorageClass, VersionAttrs};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::bitrot::hash64;
use crate::metacache::MetaCache;

pub const MAGIC: &[u8; 8] = b"CAIRNMET";
pub const FORMAT_VERSION: u16 = 1;
pub const META_FILE: &str = "cairn.meta";
pub const DATA_DIR_PREFIX: &str = "cairn.data.";
/// Objects up to this size keep their shards inline in `cairn.meta`.
pub const INLINE_MAX: usize = 128 * 1024;
/// Bytes of data per erasure block.
pub const BLOCK_SIZE: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("not a cairn.meta file (bad magic)")]
    BadMagic,
    #[error("cairn.meta format version {0} is not supported")]
    Version(u16),
    #[error("cairn.meta is truncated")]
    Truncated,
    #[error("cairn.meta checksum mismatch (bitrot or torn write)")]
    Checksum,
    #[error("cairn.meta header is not valid: {0}")]
    Header(#[from] serde_json::Error),
    /// The header parses but describes no layout this store writes (a
    /// crafted or damaged file whose hash was recomputed).
    #[error("cairn.meta layout is not valid: {0}")]
    Layout(&'static str),
}

/// The largest erasure block a record may name (objects use 1 MiB, SSE
/// a little more); anything past it is damage.
const MAX_BLOCK_SIZE: usize = 64 << 20;

impl ErasureInfo {
    /// Checks what the read and heal paths divide by and index with.
    fn check(&self) -> Result<(), MetaError> {
        let total = self.data.saturating_add(self.parity);
        if self.data == 0 || total > 256 {
            return Err(MetaError::Layout("shard counts out of range"));
        }
        if self.block_size == 0 || self.block_size > MAX_BLOCK_SIZE {
            return Err(MetaError::Layout("block size out of range"));
        }
        if self.index >= total || self.distribution.iter().any(|&s| s >= total) {
            return Err(MetaError::Layout("shard index past the shard count"));
        }
        Ok(())
    }
}

/// Where a part's shards are on a drive, and how its packages are sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartFile<'a> {
    /// The data dir (`cairn.data.<id>`) in the object's folder.
    pub dir: &'a str,
    /// The file is `part.<number>`; also the part number its packages
    /// are sealed under.
    pub number: u32,
    /// Also bound into the part key (see `PartLoc::salted`).
    pub salt: Option<&'a str>,
    /// Where the part starts in the file (plaintext bytes), and the
    /// file's plaintext size: `0` and the part's size unless the part is
    /// a slice (`FileSlice`).
    pub skip: u64,
    pub size: u64,
}

impl PartFile<'_> {
    /// Whether the part ends where the file ends (an encrypted part's
    /// last package is sealed as the last).
    pub fn tail(&self, part: &PartMeta) -> bool {
        self.skip.saturating_add(part.size) == self.size
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureInfo {
    pub data: usize,
    pub parity: usize,
    pub block_size: usize,
    /// Which shard (0-based) this drive holds.
    pub index: usize,
    /// `distribution[drive]` = shard index held by that drive.
    pub distribution: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// Where the part's shards are when not `<version data dir>/part.<number>`:
    /// a version made by a patch names the parts it shares with older
    /// versions (and its own, written under a salted key) here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<PartLoc>,
    /// A hole: the part reads as `size` zero bytes and has no file on any
    /// drive (a patch's extension or truncate-up nothing wrote into). Its
    /// ETag is not the MD5 of its bytes (see `patch::hole_etag`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zeros: bool,
}

/// A part file: `<object folder>/<dir>/part.<number>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartLoc {
    pub dir: String,
    pub number: u32,
    /// Sealed (SSE) under a part key bound to `dir` as well as the number:
    /// a patch seals part N of an object again under the same object key,
    /// so the key must differ from the first one's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub salted: bool,
    /// The part is a slice of the file, not all of it: a patch that
    /// touched one extent of a bigger part names the part's other
    /// extents as slices of the part's file instead of writing them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<FileSlice>,
}

/// Plaintext bytes `[skip, skip + part size)` of a file that holds
/// `file` bytes. `skip` is a multiple of the version's plaintext block
/// (so is the slice's end, unless it is the file's end): a slice is
/// whole erasure blocks and whole packages of the file
/// (`VersionMeta::check_parts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileSlice {
    pub skip: u64,
    pub file: u64,
}

impl FileSlice {
    /// Whether bytes `[start, end)` of a file of `file` bytes can be a
    /// slice with plaintext blocks of `block`: inside the file, starting
    /// on a block boundary, ending on one or at the file's end.
    pub fn fits(block: u64, (start, end): (u64, u64), file: u64) -> bool {
        let aligned = |x: u64| block > 0 && x.is_multiple_of(block);
        start <= end && end <= file && aligned(start) && (end == file || aligned(end))
    }
}

impl PartMeta {
    pub fn new(number: u32, size: u64, etag: String) -> Self {
        Self {
            number,
            size,
            etag,
            checksum: None,
            at: None,
            zeros: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMeta {
    /// `None` is the "null" version of an unversioned bucket.
    pub version_id: Option<String>,
    /// Unix time in nanoseconds.
    pub mod_time: i128,
    pub size: u64,
    pub etag: String,
    #[serde(default)]
    pub headers: ObjectHeaders,
    #[serde(default)]
    pub user: BTreeMap<String, String>,
    #[serde(default)]
    pub storage_class: StorageClass,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    pub erasure: ErasureInfo,
    /// Folder (`cairn.data.<id>`) holding `part.N`; `None` when inline.
    pub data_dir: Option<String>,
    /// Length of this version's inline bytes in the file's inline section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_len: Option<u64>,
    pub parts: Vec<PartMeta>,
    #[serde(default)]
    pub multipart: bool,
    /// Server-side encryption: the data is packages of ciphertext and
    /// sizes above are of the plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<crate::sse::SseMeta>,
    /// Delete marker, retention, legal hold, tags.
    #[serde(default)]
    pub attrs: VersionAttrs,
    /// Bumped by every change of `attrs` (a retention or tag update), so
    /// drives that missed one disagree with the others and get healed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revision: u64,
    /// The multipart upload this version completed (its id): a retried
    /// CompleteMultipartUpload finds its answer here after a restart (see
    /// `ErasureSet::completed_version`). Written in the commit itself, so
    /// no crash can leave a version without it; a version made from this
    /// one (a patch, a metadata rewrite) does not keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl VersionMeta {
    pub fn last_modified(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(self.mod_time)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    pub fn to_info(&self, bucket: &str, key: &str) -> ObjectInfo {
        ObjectInfo {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size: self.size,
            etag: self.etag.clone(),
            last_modified: self.last_modified(),
            headers: self.headers.clone(),
            user_metadata: self.user.clone(),
            storage_class: self.storage_class,
            checksum: self.checksum.clone(),
            version_id: self.version_id.clone(),
            parts_count: self.multipart.then_some(self.parts.len() as u32),
            encryption: self.sse.as_ref().map(|s| s.encryption(None)),
            attrs: self.attrs.clone(),
        }
    }

    /// Marks the version encrypted: sizes stay those of the plaintext,
    /// erasure blocks are blocks of sealed packages.
    pub fn set_sse(&mut self, sse: crate::sse::SseMeta) {
        self.erasure.block_size = sse.cipher.stored_block(BLOCK_SIZE);
        self.sse = Some(sse);
    }

    /// Bytes of a part as stored (erasure coded): its size, or for an
    /// encrypted version the size of its sealed packages.
    pub fn stored_size(&self, part: &PartMeta) -> u64 {
        self.stored_len(part.size)
    }

    /// Bytes of a part's whole file as stored (a slice's file holds
    /// more than the part).
    pub fn stored_file_size(&self, file: &PartFile<'_>) -> u64 {
        self.stored_len(file.size)
    }

    /// Bytes `plain` bytes of this version take as stored.
    fn stored_len(&self, plain: u64) -> u64 {
        match &self.sse {
            Some(s) => s.cipher.stored_len(plain),
            None => plain,
        }
    }

    /// Plaintext bytes per erasure block (an encrypted version's blocks
    /// hold whole packages).
    pub fn plain_block(&self) -> u64 {
        let bs = self.erasure.block_size as u64;
        match &self.sse {
            Some(s) => {
                let sealed = s.cipher.sealed_len(crate::sse::cipher::PACKAGE) as u64;
                bs / sealed.max(1) * crate::sse::cipher::PACKAGE as u64
            }
            None => bs,
        }
    }

    /// Checks what the read and heal paths compute slices with: each
    /// slice lies inside its file, starts on a block boundary and ends
    /// on one or at the file's end.
    fn check_parts(&self) -> Result<(), MetaError> {
        let block = self.plain_block();
        for p in &self.parts {
            let Some(s) = p.at.as_ref().and_then(|a| a.slice) else {
                continue;
            };
            let ok = s
                .skip
                .checked_add(p.size)
                .is_some_and(|end| FileSlice::fits(block, (s.skip, end), s.file));
            if !ok || p.zeros {
                return Err(MetaError::Layout("a part slice out of its file"));
            }
        }
        Ok(())
    }

    /// The file of `part` (one of this version's parts): its own
    /// location, or `part.<number>` of the version's data dir; `None` for
    /// an inline version and for a hole.
    pub fn part_file<'a>(&'a self, part: &'a PartMeta) -> Option<PartFile<'a>> {
        if part.zeros {
            return None;
        }
        match &part.at {
            Some(at) => Some(PartFile {
                dir: &at.dir,
                number: at.number,
                salt: at.salted.then_some(at.dir.as_str()),
                skip: at.slice.map_or(0, |s| s.skip),
                size: at.slice.map_or(part.size, |s| s.file),
            }),
            None => self.data_dir.as_deref().map(|dir| PartFile {
                dir,
                number: part.number,
                salt: None,
                skip: 0,
                size: part.size,
            }),
        }
    }

    /// The identity quorum is counted on: drives agree on a version when
    /// these match (the shard index legitimately differs per drive).
    pub fn identity(&self) -> (Option<&str>, i128, &str, Option<&str>, u64) {
        (
            self.version_id.as_deref(),
            self.mod_time,
            &self.etag,
            self.data_dir.as_deref(),
            self.revision,
        )
    }

    /// A delete marker (its layout only sets the quorum its record needs).
    pub fn delete_marker(erasure: ErasureInfo, version_id: Option<String>, mod_time: i128) -> Self {
        VersionMeta {
            version_id,
            mod_time,
            size: 0,
            etag: String::new(),
            headers: Default::default(),
            user: Default::default(),
            storage_class: StorageClass::Standard,
            checksum: None,
            erasure,
            data_dir: None,
            inline_len: None,
            parts: Vec::new(),
            multipart: false,
            sse: None,
            upload: None,
            attrs: VersionAttrs {
                delete_marker: true,
                ..Default::default()
            },
            revision: 0,
        }
    }
}

/// Where this drive keeps an object's older versions (`history.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRef {
    /// File name in the object's folder (`cairn.hist.<id>`).
    pub file: String,
    /// Bytes of it that are committed; a torn append past them is ignored.
    pub len: u64,
}

/// Everything in one `cairn.meta` (or one chunk of a history file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Newest first.
    pub versions: Vec<VersionMeta>,
    /// The older versions, when there are more than `cairn.meta` keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryRef>,
    /// Inline bytes of all versions, in version order (not in the header).
    #[serde(skip)]
    pub inline: Vec<u8>,
    /// The cluster lock generation of the last fenced commit of this
    /// object (0: none was fenced). A drive refuses a fenced write below
    /// it (`DriveIo::write_record`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fence: u64,
}

impl ObjectMeta {
    /// One version with its inline bytes (empty when it has none).
    pub fn single(version: VersionMeta, inline: Vec<u8>) -> Self {
        ObjectMeta {
            versions: vec![version],
            history: None,
            inline,
            fence: 0,
        }
    }

    /// Appends a version with its inline bytes (callers keep the order).
    pub fn push(&mut self, version: VersionMeta, inline: Option<&[u8]>) {
        if version.inline_len.is_some() {
            self.inline.extend_from_slice(inline.unwrap_or_default());
        }
        self.versions.push(version);
    }

    /// Splits off versions `at..` with their inline bytes.
    pub fn split_off(&mut self, at: usize) -> ObjectMeta {
        let at = at.min(self.versions.len());
        let start: usize = self
            .versions
            .iter()
            .take(at)
            .map(|v| v.inline_len.unwrap_or(0) as usize)
            .sum();
        let start = start.min(self.inline.len());
        ObjectMeta {
            versions: self.versions.split_off(at),
            history: None,
            inline: self.inline.split_off(start),
            fence: 0,
        }
    }

    pub fn latest(&self) -> Option<&VersionMeta> {
        self.versions.first()
    }

    /// Position of the version with this id (`None`: the null version).
    pub fn position(&self, version_id: Option<&str>) -> Option<usize> {
        self.versions
            .iter()
            .position(|v| v.version_id.as_deref() == version_id)
    }

    /// Removes version `i` with its inline bytes; returns it.
    pub fn remove(&mut self, i: usize) -> Option<VersionMeta> {
        if i >= self.versions.len() {
            return None;
        }
        let start: usize = self
            .versions
            .iter()
            .take(i)
            .map(|v| v.inline_len.unwrap_or(0) as usize)
            .sum();
        let len = self.versions.get(i).and_then(|v| v.inline_len).unwrap_or(0) as usize;
        if start + len <= self.inline.len() {
            self.inline.drain(start..start + len);
        }
        Some(self.versions.remove(i))
    }

    /// Orders versions newest first (by mod time), keeping each
    /// version's inline bytes with it.
    pub fn sort_newest_first(&mut self) {
        if self
            .versions
            .iter()
            .zip(self.versions.iter().skip(1))
            .all(|(a, b)| a.mod_time >= b.mod_time)
        {
            return;
        }
        let mut items: Vec<(VersionMeta, Vec<u8>)> = (self.versions.iter().enumerate())
            .map(|(i, v)| {
                let bytes = self.inline_of(i).map(<[u8]>::to_vec).unwrap_or_default();
                (v.clone(), bytes)
            })
            .collect();
        items.sort_by_key(|i| std::cmp::Reverse(i.0.mod_time));
        self.inline.clear();
        self.versions.clear();
        for (v, bytes) in items {
            self.inline.extend_from_slice(&bytes);
            self.versions.push(v);
        }
    }

    /// Inline bytes of version `i`.
    pub fn inline_of(&self, i: usize) -> Option<&[u8]> {
        let mut off = 0usize;
        for (j, v) in self.versions.iter().enumerate() {
            // versions without inline bytes (data dir, marker) take none
            let len = v.inline_len.unwrap_or(0) as usize;
            if j == i {
                return v.inline_len.and_then(|_| self.inline.get(off..off + len));
            }
            off += len;
        }
        None
    }

    pub fn encode(&self) -> Result<Vec<u8>, MetaError> {
        let header = serde_json::to_vec(self)?;
        let mut out = Vec::with_capacity(header.len() + self.inline.len() + 40);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        let h = hash64(&out);
        out.extend_from_slice(&h.to_le_bytes());
        out.extend_from_slice(&(self.inline.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.inline);
        out.extend_from_slice(&hash64(&self.inline).to_le_bytes());
        Ok(out)
    }

    /// The fence a record holds (0 for one without, or that does not
    /// decode: such a record is replaced anyway).
    pub fn fence_of(buf: &[u8]) -> u64 {
        #[derive(Deserialize)]
        struct Fence {
            #[serde(default)]
            fence: u64,
        }
        let Ok((_, end)) = Self::check_header(buf) else {
            return 0;
        };
        buf.get(14..end.saturating_sub(8))
            .and_then(|h| serde_json::from_slice::<Fence>(h).ok())
            .map_or(0, |f| f.fence)
    }

    /// Decodes the header; with `with_inline`, also the inline section.
    pub fn decode(buf: &[u8], with_inline: bool) -> Result<Self, MetaError> {
        let (mut meta, end) = Self::decode_header(buf)?;
        if with_inline {
            meta.inline = Self::inline_after(buf, end)?;
        }
        Ok(meta)
    }

    /// [`ObjectMeta::decode`] of the file at `path`, taking the parsed
    /// header from `cache` when it holds these bytes' parse
    /// (`metacache.rs`), and leaving it there when it did not.
    pub fn decode_cached(
        buf: &[u8],
        with_inline: bool,
        cache: &MetaCache,
        path: &Path,
    ) -> Result<Self, MetaError> {
        let (hash, end) = Self::check_header(buf)?;
        let mut meta = match cache.get(path, hash, end) {
            Some(m) => m,
            None => {
                let m = Self::parse_header(buf, end)?;
                cache.put(path, hash, end, &m);
                m
            }
        };
        if with_inline {
            meta.inline = Self::inline_after(buf, end)?;
        }
        Ok(meta)
    }

    /// The header hash and length of an encoding this process just made
    /// (read from it, not checked), to put its parse in a cache.
    pub fn encoded_header(body: &[u8]) -> Option<(u64, usize)> {
        let end = Self::header_len(body)?;
        Some((read_u64(body, end.checked_sub(8)?).ok()?, end))
    }

    /// The inline section after a header that ends at `end`, checked.
    fn inline_after(buf: &[u8], end: usize) -> Result<Vec<u8>, MetaError> {
        Ok(inline_section(buf.get(end..).ok_or(MetaError::Truncated)?)?
            .0
            .to_vec())
    }

    /// Decodes one whole encoding at the start of `buf` (a history file
    /// is a run of them); returns it with the bytes it took.
    pub fn decode_prefix(buf: &[u8], with_inline: bool) -> Result<(Self, usize), MetaError> {
        let (mut meta, end) = Self::decode_header(buf)?;
        let (data, used) = inline_section(buf.get(end..).ok_or(MetaError::Truncated)?)?;
        if with_inline {
            meta.inline = data.to_vec();
        }
        Ok((meta, end + used))
    }

    /// Bytes needed from the file start to decode the header, once the
    /// first 14 bytes are known.
    pub fn header_len(prefix: &[u8]) -> Option<usize> {
        let len = u32::from_le_bytes(prefix.get(10..14)?.try_into().ok()?) as usize;
        Some(14 + len + 8)
    }

    fn decode_header(buf: &[u8]) -> Result<(Self, usize), MetaError> {
        let (_, end) = Self::check_header(buf)?;
        Ok((Self::parse_header(buf, end)?, end))
    }

    /// Checks the header's framing and hash without parsing it; returns
    /// the hash and where the header ends.
    fn check_header(buf: &[u8]) -> Result<(u64, usize), MetaError> {
        if buf.len() < 14 {
            return Err(MetaError::Truncated);
        }
        if buf.get(..8) != Some(&MAGIC[..]) {
            return Err(MetaError::BadMagic);
        }
        let version = read_u16(buf, 8)?;
        if version != FORMAT_VERSION {
            return Err(MetaError::Version(version));
        }
        let end = Self::header_len(buf).ok_or(MetaError::Truncated)?;
        if buf.len() < end {
            return Err(MetaError::Truncated);
        }
        let h = read_u64(buf, end - 8)?;
        if hash64(buf.get(..end - 8).ok_or(MetaError::Truncated)?) != h {
            return Err(MetaError::Checksum);
        }
        Ok((h, end))
    }

    /// Parses a header [`ObjectMeta::check_header`] passed.
    fn parse_header(buf: &[u8], end: usize) -> Result<Self, MetaError> {
        let header = buf
            .get(14..end.saturating_sub(8))
            .ok_or(MetaError::Truncated)?;
        let meta: ObjectMeta = serde_json::from_slice(header)?;
        for v in &meta.versions {
            v.erasure.check()?;
            v.check_parts()?;
        }
        Ok(meta)
    }
}

/// The inline section at the start of `rest`, checked, with its length
/// on disk.
fn inline_section(rest: &[u8]) -> Result<(&[u8], usize), MetaError> {
    let len = read_u64(rest, 0)? as usize;
    let data = rest
        .get(8..8usize.saturating_add(len))
        .ok_or(MetaError::Truncated)?;
    let h = read_u64(rest, 8 + len)?;
    if hash64(data) != h {
        return Err(MetaError::Checksum);
    }
    Ok((data, 8 + len + 8))
}

fn read_u16(buf: &[u8], at: usize) -> Result<u16, MetaError> {
    let b: [u8; 2] = buf
        .get(at..at + 2)
        .and_then(|b| b.try_into().ok())
        .ok_or(MetaError::Truncated)?;
    Ok(u16::from_le_bytes(b))
}

fn read_u64(buf: &[u8], at: usize) -> Result<u64, MetaError> {
    let b = buf.get(at..at + 8).ok_or(MetaError::Truncated)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_le_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_keeps_its_fence_and_old_records_have_none() {
        let old = sample().encode().unwrap();
        assert_eq!(ObjectMeta::fence_of(&old), 0);
        let mut m = sample();
        m.fence = 1_765_000_000_000_123;
        let enc = m.encode().unwrap();
        assert_eq!(ObjectMeta::fence_of(&enc), m.fence);
        assert_eq!(ObjectMeta::decode(&enc, true).unwrap().fence, m.fence);
        // a damaged record holds none (it is replaced anyway)
        let mut bad = enc.clone();
        bad[20] ^= 1;
        assert_eq!(ObjectMeta::fence_of(&bad), 0);
    }

    fn sample() -> ObjectMeta {
        ObjectMeta {
            versions: vec![VersionMeta {
                version_id: None,
                mod_time: 1_700_000_000_000_000_000,
                size: 5,
                etag: "abc".into(),
                headers: Default::default(),
                user: BTreeMap::from([("k".into(), "v".into())]),
                storage_class: StorageClass::Standard,
                checksum: None,
                erasure: ErasureInfo {
                    data: 2,
                    parity: 2,
                    block_size: BLOCK_SIZE,
                    index: 1,
                    distribution: vec![0, 1, 2, 3],
                },
                data_dir: None,
                inline_len: Some(4),
                parts: vec![PartMeta::new(1, 5, "abc".into())],
                multipart: false,
                sse: None,
                attrs: Default::default(),
                revision: 0,
                upload: None,
            }],
            history: None,
            inline: vec![1, 2, 3, 4],
            fence: 0,
        }
    }

    #[test]
    fn slices_outside_their_file_or_off_a_block_are_refused() {
        let slice = |skip: u64, size: u64, file: u64| {
            let mut m = sample();
            let v = &mut m.versions[0];
            v.data_dir = Some("cairn.data.x".into());
            v.inline_len = None;
            v.parts = vec![PartMeta {
                at: Some(PartLoc {
                    dir: "cairn.data.y".into(),
                    number: 1,
                    salted: false,
                    slice: Some(FileSlice { skip, file }),
                }),
                ..PartMeta::new(1, size, "e".into())
            }];
            m.inline = Vec::new();
            ObjectMeta::decode(&m.encode().expect("encode"), true)
        };
        let b = BLOCK_SIZE as u64;
        assert!(slice(0, b, 3 * b).is_ok());
        assert!(slice(2 * b, 5, 2 * b + 5).is_ok(), "a tail");
        assert!(slice(b, 4 * b, 3 * b).is_err(), "past the file's end");
        assert!(slice(5, b, 3 * b).is_err(), "off a block");
        assert!(slice(0, b + 1, 3 * b).is_err(), "ends off a block");
        assert!(slice(u64::MAX - 1, 4, u64::MAX).is_err(), "wraps");
    }

    #[test]
    fn round_trip_and_corruption() {
        let m = sample();
        let buf = m.encode().expect("encode");
        assert_eq!(ObjectMeta::decode(&buf, true).expect("decode"), m);
        let head = ObjectMeta::decode(&buf, false).expect("head");
        assert!(head.inline.is_empty());
        assert_eq!(m.inline_of(0), Some(&[1u8, 2, 3, 4][..]));
        for pos in 0..buf.len() {
            let mut bad = buf.clone();
            bad[pos] ^= 1;
            assert!(ObjectMeta::decode(&bad, true).is_err(), "flip at {pos}");
        }
        assert!(matches!(
            ObjectMeta::decode(&buf[..buf.len() - 3], true),
            Err(MetaError::Truncated)
        ));
    }
}
