//! ETag (MD5) and the `x-amz-checksum-*` families, computed in one pass over
//! the body and checked against what the client declared. Every layer uses
//! this one piece, so a mismatch is reported the same way everywhere.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use md5::Digest as _;

use crate::error::ObjectError;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Sha1,
    Sha256,
    Crc64Nvme,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Sha1,
        Self::Sha256,
        Self::Crc64Nvme,
    ];

    /// The name as in `x-amz-checksum-<name>` (lowercase).
    pub fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "crc32",
            Self::Crc32c => "crc32c",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Crc64Nvme => "crc64nvme",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header_name())
    }
}

impl FromStr for ChecksumAlgorithm {
    type Err = ObjectError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.header_name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ObjectError::InvalidArgument {
                message: format!("unknown checksum algorithm {s:?}"),
            })
    }
}

/// A stored checksum: the algorithm and its base64 value as S3 shows it
/// (multipart composites carry a `-N` suffix).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub value: String,
}

/// Reads the expected checksum value once the body has been consumed
/// (trailing checksums of aws-chunked bodies arrive after the data).
pub type TrailerFn = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// What the client asked for: compute `algorithm`, and compare with a value
/// given up front or in the trailer.
#[derive(Clone)]
pub struct ChecksumRequest {
    pub algorithm: ChecksumAlgorithm,
    pub expected: Option<String>,
    pub trailer: Option<TrailerFn>,
    /// CreateMultipartUpload only: the upload's checksum type is
    /// FULL_OBJECT (else COMPOSITE). A single PUT's is always a whole
    /// object's.
    pub full_object: bool,
}

impl fmt::Debug for ChecksumRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChecksumRequest")
            .field("algorithm", &self.algorithm)
            .field("expected", &self.expected)
            .field("trailer", &self.trailer.is_some())
            .field("full_object", &self.full_object)
            .finish()
    }
}

/// Streaming checksum of one algorithm.
pub enum ChecksumHasher {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Crc64Nvme(crc64fast_nvme::Digest),
}

impl ChecksumHasher {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm {
            ChecksumAlgorithm::Crc32 => Self::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => Self::Crc32c(0),
            ChecksumAlgorithm::Sha1 => Self::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            ChecksumAlgorithm::Crc64Nvme => Self::Crc64Nvme(crc64fast_nvme::Digest::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Self::Crc32(h) => h.update(data),
            Self::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            Self::Sha1(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
            Self::Crc64Nvme(h) => h.write(data),
        }
    }

    pub fn finish_raw(self) -> Vec<u8> {
        match self {
            Self::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            Self::Crc32c(c) => c.to_be_bytes().to_vec(),
            Self::Sha1(h) => h.finalize().to_vec(),
            Self::Sha256(h) => h.finalize().to_vec(),
            Self::Crc64Nvme(h) => h.sum64().to_be_bytes().to_vec(),
        }
    }

    pub fn finish_base64(self) -> String {
        B64.encode(self.finish_raw())
    }
}

/// Parses a `Content-MD5` header value (base64 of 16 bytes).
pub fn parse_content_md5(given: &str) -> Result<[u8; 16], ObjectError> {
    B64.decode(given.trim())
        .ok()
        .and_then(|v| <[u8; 16]>::try_from(v).ok())
        .ok_or_else(|| ObjectError::InvalidDigest {
            given: given.to_owned(),
        })
}

/// Everything a PUT computes over the body in one pass: MD5 for the ETag,
/// the requested checksum, and the byte count.
pub struct BodyDigest {
    /// None when the caller computes the MD5 itself (`without_md5`).
    md5: Option<crate::fast_md5::Md5>,
    checksum: Option<(ChecksumHasher, ChecksumRequest)>,
    len: u64,
}

/// The result of a verified body.
#[derive(Debug, Clone)]
pub struct DigestOutcome {
    pub md5: [u8; 16],
    pub checksum: Option<Checksum>,
    pub len: u64,
}

impl DigestOutcome {
    pub fn etag(&self) -> String {
        hex::encode(self.md5)
    }
}

impl BodyDigest {
    pub fn new(checksum: Option<ChecksumRequest>) -> Self {
        Self {
            md5: Some(crate::fast_md5::Md5::new()),
            checksum: checksum.map(|r| (ChecksumHasher::new(r.algorithm), r)),
            len: 0,
        }
    }

    /// The checksum and the length only, for a caller that computes the
    /// MD5 on another thread and hands it to
    /// [`BodyDigest::verify_with_md5`].
    pub fn without_md5(checksum: Option<ChecksumRequest>) -> Self {
        Self {
            md5: None,
            ..Self::new(checksum)
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        if let Some(md5) = &mut self.md5 {
            md5.update(data);
        }
        if let Some((h, _)) = &mut self.checksum {
            h.update(data);
        }
        self.len += data.len() as u64;
    }

    /// `update` of a block of a streamed body: its MD5 in the shared
    /// lanes beside other streams' (`md5_lanes`). Blocks the calling
    /// thread while it waits: call it off the async workers.
    pub fn update_in_lanes(&mut self, data: &bytes::Bytes) {
        if let Some(md5) = &mut self.md5 {
            md5.update_in_lanes(data);
        }
        if let Some((h, _)) = &mut self.checksum {
            h.update(data);
        }
        self.len += data.len() as u64;
    }

    /// Finishes the digests and checks them against Content-MD5, the
    /// declared checksum and the declared length. Nothing may be committed
    /// before this returns Ok.
    pub fn verify(
        mut self,
        content_md5: Option<&[u8; 16]>,
        content_length: Option<u64>,
    ) -> Result<DigestOutcome, ObjectError> {
        let Some(md5) = self.md5.take() else {
            return Err(ObjectError::internal(
                "a body digest made without MD5 was verified without one",
            ));
        };
        self.verify_with_md5(md5.finish(), content_md5, content_length)
    }

    /// [`BodyDigest::verify`] with the body's MD5 computed by the caller.
    pub fn verify_with_md5(
        self,
        md5: [u8; 16],
        content_md5: Option<&[u8; 16]>,
        content_length: Option<u64>,
    ) -> Result<DigestOutcome, ObjectError> {
        if let Some(expected) = content_length
            && expected != self.len
        {
            return Err(ObjectError::IncompleteBody {
                expected,
                got: self.len,
            });
        }
        if let Some(want) = content_md5
            && *want != md5
        {
            return Err(ObjectError::BadDigest {
                expected: B64.encode(want),
                computed: B64.encode(md5),
            });
        }
        let checksum = match self.checksum {
            None => None,
            Some((hasher, req)) => {
                let computed = hasher.finish_base64();
                let expected = req
                    .expected
                    .clone()
                    .or_else(|| req.trailer.as_ref().and_then(|t| t()));
                if let Some(expected) = expected
                    && expected.trim() != computed
                {
                    return Err(ObjectError::ChecksumMismatch {
                        algorithm: req.algorithm,
                        expected,
                        computed,
                    });
                }
                Some(Checksum {
                    algorithm: req.algorithm,
                    value: computed,
                })
            }
        };
        Ok(DigestOutcome {
            md5,
            checksum,
            len: self.len,
        })
    }
}

/// The ETag of a multipart object: MD5 of the concatenated part MD5s, `-N`.
pub fn multipart_etag(part_etags: &[&str]) -> String {
    let mut h = crate::fast_md5::Md5::new();
    for e in part_etags {
        if let Ok(raw) = hex::decode(e.trim_matches('"')) {
            h.update(&raw);
        }
    }
    format!("{}-{}", hex::encode(h.finish()), part_etags.len())
}

/// Composite checksum of a multipart object: the checksum of the
/// concatenated raw part checksums, with `-N`. `None` if a part lacks it.
pub fn composite_checksum(
    algorithm: ChecksumAlgorithm,
    parts: &[Option<&Checksum>],
) -> Option<Checksum> {
    let mut h = ChecksumHasher::new(algorithm);
    for p in parts {
        let p = (*p)?;
        if p.algorithm != algorithm {
            return None;
        }
        let raw = B64.decode(&p.value).ok()?;
        if raw.len() != algorithm.digest_len() {
            return None;
        }
        h.update(&raw);
    }
    Some(Checksum {
        algorithm,
        value: format!("{}-{}", h.finish_base64(), parts.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        let cases = [
            (ChecksumAlgorithm::Crc32, "DUoRhQ=="),
            (ChecksumAlgorithm::Crc32c, "yZRlqg=="),
            (ChecksumAlgorithm::Sha1, "Kq5sNclPz7QV2+lfQIuc6R7oRu0="),
            (
                ChecksumAlgorithm::Sha256,
                "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=",
            ),
        ];
        for (alg, want) in cases {
            let mut h = ChecksumHasher::new(alg);
            h.update(b"hello world");
            assert_eq!(h.finish_base64(), want, "{alg}");
        }
    }

    #[test]
    fn verify_reports_mismatch() {
        let mut d = BodyDigest::new(Some(ChecksumRequest {
            algorithm: ChecksumAlgorithm::Crc32,
            expected: Some("AAAAAA==".into()),
            trailer: None,
            full_object: false,
        }));
        d.update(b"hello world");
        assert!(matches!(
            d.verify(None, None),
            Err(ObjectError::ChecksumMismatch { .. })
        ));
        let mut d = BodyDigest::new(None);
        d.update(b"abc");
        assert!(matches!(
            d.verify(Some(&[0; 16]), None),
            Err(ObjectError::BadDigest { .. })
        ));
    }

    #[test]
    fn caller_computed_md5_is_checked_like_our_own() {
        let md5: [u8; 16] = md5::Md5::digest(b"abc").into();
        let mut d = BodyDigest::without_md5(None);
        d.update(b"abc");
        let out = d.verify_with_md5(md5, Some(&md5), Some(3)).unwrap();
        assert_eq!((out.md5, out.len), (md5, 3));
        let mut d = BodyDigest::without_md5(None);
        d.update(b"abc");
        assert!(matches!(
            d.verify_with_md5(md5, Some(&[0; 16]), None),
            Err(ObjectError::BadDigest { .. })
        ));
        // Made without MD5, verified without one: an error, never a zero ETag.
        let d = BodyDigest::without_md5(None);
        assert!(matches!(
            d.verify(None, None),
            Err(ObjectError::Internal { .. })
        ));
    }
}
