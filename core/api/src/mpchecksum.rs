//! Checksums of multipart uploads, as every layer applies them: the
//! upload's algorithm and type (COMPOSITE or FULL_OBJECT), each part
//! checked and stored with its checksum, and the object's checksum made
//! at CompleteMultipartUpload from the parts' (COMPOSITE: the checksum of
//! the concatenated raw part checksums, `-N`; FULL_OBJECT: the parts' CRCs
//! combined into the CRC of the whole object).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::checksum::{Checksum, ChecksumAlgorithm, ChecksumRequest, composite_checksum};
use crate::error::ObjectError;
use crate::types::PartInfo;

/// How an upload's part checksums make the object's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumType {
    #[default]
    Composite,
    FullObject,
}

impl ChecksumType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Composite => "COMPOSITE",
            Self::FullObject => "FULL_OBJECT",
        }
    }

    /// The type of a stored object checksum: composites carry `-N`.
    pub fn of(c: &Checksum) -> Self {
        if c.value.contains('-') {
            Self::Composite
        } else {
            Self::FullObject
        }
    }
}

/// The checksum an upload was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadChecksum {
    pub algorithm: ChecksumAlgorithm,
    pub kind: ChecksumType,
}

impl UploadChecksum {
    /// From CreateMultipartUpload's `x-amz-checksum-algorithm` and
    /// `x-amz-checksum-type`, as AWS allows them: a type needs an
    /// algorithm, FULL_OBJECT is for the CRCs only, CRC64NVME is always
    /// FULL_OBJECT (and is so without a type).
    pub fn new(
        algorithm: Option<ChecksumAlgorithm>,
        kind: Option<ChecksumType>,
    ) -> Result<Option<Self>, ObjectError> {
        let invalid = |message: String| ObjectError::InvalidRequest { message };
        let Some(algorithm) = algorithm else {
            return match kind {
                None => Ok(None),
                Some(k) => Err(invalid(format!(
                    "The x-amz-checksum-type header ({}) can only be used with the x-amz-checksum-algorithm header.",
                    k.as_str()
                ))),
            };
        };
        let kind = kind.unwrap_or(if algorithm == ChecksumAlgorithm::Crc64Nvme {
            ChecksumType::FullObject
        } else {
            ChecksumType::Composite
        });
        match (algorithm, kind) {
            (ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256, ChecksumType::FullObject)
            | (ChecksumAlgorithm::Crc64Nvme, ChecksumType::Composite) => Err(invalid(format!(
                "The {} checksum algorithm does not support the {} checksum type.",
                algorithm.header_name().to_ascii_uppercase(),
                kind.as_str()
            ))),
            _ => Ok(Some(Self { algorithm, kind })),
        }
    }

    /// What the upload record keeps: the algorithm and whether the type
    /// is FULL_OBJECT (records from before FULL_OBJECT read as COMPOSITE).
    pub fn from_record(algorithm: Option<ChecksumAlgorithm>, full_object: bool) -> Option<Self> {
        algorithm.map(|algorithm| Self {
            algorithm,
            kind: if full_object {
                ChecksumType::FullObject
            } else {
                ChecksumType::Composite
            },
        })
    }

    /// The upload checksum a CreateMultipartUpload's options ask for.
    pub fn of_request(req: Option<&ChecksumRequest>) -> Option<Self> {
        req.map(|r| Self {
            algorithm: r.algorithm,
            kind: if r.full_object {
                ChecksumType::FullObject
            } else {
                ChecksumType::Composite
            },
        })
    }
}

/// The checksum an UploadPart computes: the one the client sent, which
/// must be of the upload's algorithm; the upload's when it sent none (so
/// every part of an upload with a checksum has one).
pub fn part_request(
    upload: Option<ChecksumAlgorithm>,
    given: Option<ChecksumRequest>,
) -> Result<Option<ChecksumRequest>, ObjectError> {
    match (upload, given) {
        (Some(want), Some(g)) if g.algorithm != want => Err(ObjectError::InvalidRequest {
            message: format!(
                "Checksum Type mismatch occurred, expected checksum Type: {want}, actual checksum Type: {}",
                g.algorithm
            ),
        }),
        (Some(algorithm), None) => Ok(Some(ChecksumRequest {
            algorithm,
            expected: None,
            trailer: None,
            full_object: false,
        })),
        (_, given) => Ok(given),
    }
}

/// What a CompleteMultipartUpload request says of checksums: each listed
/// part's (`<ChecksumCRC32>` etc.), the whole object's
/// (`x-amz-checksum-*`) and its type (`x-amz-checksum-type`).
#[derive(Debug, Clone, Default)]
pub struct CompleteChecksums {
    pub parts: BTreeMap<u32, Checksum>,
    pub object: Option<Checksum>,
    pub kind: Option<ChecksumType>,
}

/// Checks what the complete request says against the upload and its
/// chosen parts, and makes the object's checksum. Errors as AWS:
/// a part's checksum that differs from the stored one is `InvalidPart`; a
/// part of a COMPOSITE upload listed without one is `InvalidRequest`; an
/// object checksum or type that disagrees is `BadDigest`.
pub fn complete_checksum(
    upload: Option<UploadChecksum>,
    chosen: &[PartInfo],
    given: &CompleteChecksums,
) -> Result<Option<Checksum>, ObjectError> {
    for p in chosen {
        if let Some(g) = given.parts.get(&p.part_number)
            && p.checksum.as_ref().is_none_or(|s| !same_value(s, g))
        {
            return Err(ObjectError::InvalidPart {
                part_number: p.part_number,
            });
        }
    }
    let Some(up) = upload else {
        if given.object.is_some() || given.kind.is_some() {
            return Err(ObjectError::InvalidRequest {
                message: "The upload was created without a checksum algorithm; the complete request may not name an object checksum.".into(),
            });
        }
        return Ok(None);
    };
    if let Some(k) = given.kind
        && k != up.kind
    {
        return Err(ObjectError::BadDigest {
            expected: format!("checksum type {}", k.as_str()),
            computed: format!("checksum type {}", up.kind.as_str()),
        });
    }
    if up.kind == ChecksumType::Composite
        && let Some(p) = chosen
            .iter()
            .find(|p| !given.parts.contains_key(&p.part_number))
    {
        return Err(ObjectError::InvalidRequest {
            message: format!(
                "The upload was created using a {} checksum. The complete request must include the checksum for each part. It was missing for part {} in the request.",
                up.algorithm, p.part_number
            ),
        });
    }
    let sums: Vec<Option<&Checksum>> = chosen.iter().map(|p| p.checksum.as_ref()).collect();
    let computed = match up.kind {
        ChecksumType::Composite => composite_checksum(up.algorithm, &sums),
        ChecksumType::FullObject => {
            let parts: Vec<(Option<&Checksum>, u64)> = chosen
                .iter()
                .map(|p| (p.checksum.as_ref(), p.size))
                .collect();
            full_object_checksum(up.algorithm, &parts)
        }
    };
    let computed = computed.ok_or_else(|| ObjectError::InvalidPart {
        // a part stored without the upload's checksum (uploaded before
        // parts were made to carry it)
        part_number: chosen
            .iter()
            .find(|p| {
                p.checksum
                    .as_ref()
                    .is_none_or(|c| c.algorithm != up.algorithm)
            })
            .map_or(0, |p| p.part_number),
    })?;
    if let Some(g) = &given.object {
        let value_only = |v: &str| v.split('-').next().unwrap_or_default().trim().to_owned();
        if g.algorithm != up.algorithm || value_only(&g.value) != value_only(&computed.value) {
            return Err(ObjectError::ChecksumMismatch {
                algorithm: g.algorithm,
                expected: g.value.clone(),
                computed: computed.value,
            });
        }
    }
    Ok(Some(computed))
}

fn same_value(stored: &Checksum, given: &Checksum) -> bool {
    stored.algorithm == given.algorithm && stored.value == given.value.trim()
}

/// The CRC of a whole object from its parts' CRCs and sizes (FULL_OBJECT
/// multipart checksums); `None` for a SHA or a part without the CRC.
pub fn full_object_checksum(
    algorithm: ChecksumAlgorithm,
    parts: &[(Option<&Checksum>, u64)],
) -> Option<Checksum> {
    let poly = CrcPoly::of(algorithm)?;
    let mut acc: Option<u64> = None;
    for (c, len) in parts {
        let c = (*c).filter(|c| c.algorithm == algorithm)?;
        let raw = B64.decode(&c.value).ok()?;
        let crc = match (raw.len(), poly.width) {
            (4, 32) => u64::from(u32::from_be_bytes(raw.try_into().ok()?)),
            (8, 64) => u64::from_be_bytes(raw.try_into().ok()?),
            _ => return None,
        };
        acc = Some(match acc {
            None => crc,
            Some(a) => crc_combine(poly, a, crc, *len),
        });
    }
    let v = acc?;
    let bytes = if poly.width == 32 {
        u32::try_from(v).ok()?.to_be_bytes().to_vec()
    } else {
        v.to_be_bytes().to_vec()
    };
    Some(Checksum {
        algorithm,
        value: B64.encode(bytes),
    })
}

/// A reflected CRC with all-ones init and final xor (CRC32, CRC32C,
/// CRC64NVME): its reversed polynomial and width in bits.
#[derive(Debug, Clone, Copy)]
struct CrcPoly {
    reversed: u64,
    width: usize,
}

impl CrcPoly {
    fn of(a: ChecksumAlgorithm) -> Option<Self> {
        match a {
            ChecksumAlgorithm::Crc32 => Some(Self {
                reversed: 0xEDB8_8320,
                width: 32,
            }),
            ChecksumAlgorithm::Crc32c => Some(Self {
                reversed: 0x82F6_3B78,
                width: 32,
            }),
            ChecksumAlgorithm::Crc64Nvme => Some(Self {
                reversed: 0x9A6C_9329_AC4B_C9B5,
                width: 64,
            }),
            ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => None,
        }
    }
}

/// GF(2) matrix (one column per bit) times a vector.
fn gf2_times(mat: &[u64], vec: u64) -> u64 {
    mat.iter()
        .enumerate()
        .filter(|(i, _)| (vec >> i) & 1 == 1)
        .fold(0, |sum, (_, col)| sum ^ col)
}

fn gf2_square(mat: &[u64]) -> Vec<u64> {
    mat.iter().map(|&col| gf2_times(mat, col)).collect()
}

/// zlib's `crc32_combine` for any reflected CRC: the CRC of A then B from
/// crc(A), crc(B) and B's length, by applying `len2` zero bytes to crc(A)
/// through repeated squaring of the one-zero-bit operator.
fn crc_combine(p: CrcPoly, crc1: u64, crc2: u64, len2: u64) -> u64 {
    if len2 == 0 {
        return crc1;
    }
    // the operator for one zero bit
    let mut odd: Vec<u64> = std::iter::once(p.reversed)
        .chain((0..p.width.saturating_sub(1)).map(|n| 1u64 << n))
        .collect();
    let mut even = gf2_square(&odd); // two zero bits
    odd = gf2_square(&even); // four zero bits
    let mut crc1 = crc1;
    let mut len = len2;
    loop {
        even = gf2_square(&odd);
        if len & 1 == 1 {
            crc1 = gf2_times(&even, crc1);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
        odd = gf2_square(&even);
        if len & 1 == 1 {
            crc1 = gf2_times(&odd, crc1);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
    }
    crc1 ^ crc2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::ChecksumHasher;

    fn sum(a: ChecksumAlgorithm, data: &[u8]) -> Checksum {
        let mut h = ChecksumHasher::new(a);
        h.update(data);
        Checksum {
            algorithm: a,
            value: h.finish_base64(),
        }
    }

    #[test]
    fn combined_crcs_are_the_whole_objects() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for a in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            for cuts in [vec![1, 99_999], vec![33_333, 33_333, 33_334], vec![100_000]] {
                let mut off = 0;
                let parts: Vec<(Checksum, u64)> = cuts
                    .iter()
                    .map(|&n| {
                        let c = sum(a, &data[off..off + n]);
                        off += n;
                        (c, n as u64)
                    })
                    .collect();
                let refs: Vec<_> = parts.iter().map(|(c, n)| (Some(c), *n)).collect();
                assert_eq!(
                    full_object_checksum(a, &refs),
                    Some(sum(a, &data)),
                    "{a} {cuts:?}"
                );
            }
        }
        let c = sum(ChecksumAlgorithm::Sha256, b"x");
        assert_eq!(
            full_object_checksum(ChecksumAlgorithm::Sha256, &[(Some(&c), 1)]),
            None
        );
    }

    #[test]
    fn upload_types_as_aws_allows() {
        use ChecksumAlgorithm as A;
        use ChecksumType as T;
        let ok = |a, t| UploadChecksum::new(Some(a), t).unwrap().unwrap().kind;
        assert_eq!(ok(A::Crc64Nvme, None), T::FullObject);
        assert_eq!(ok(A::Crc32, None), T::Composite);
        assert_eq!(ok(A::Crc32c, Some(T::FullObject)), T::FullObject);
        assert_eq!(ok(A::Sha1, Some(T::Composite)), T::Composite);
        for (a, t) in [
            (Some(A::Sha256), Some(T::FullObject)),
            (Some(A::Crc64Nvme), Some(T::Composite)),
            (None, Some(T::Composite)),
        ] {
            assert!(matches!(
                UploadChecksum::new(a, t),
                Err(ObjectError::InvalidRequest { .. })
            ));
        }
    }

    fn part(n: u32, data: &[u8], a: ChecksumAlgorithm) -> PartInfo {
        PartInfo {
            part_number: n,
            etag: String::new(),
            size: data.len() as u64,
            last_modified: time::OffsetDateTime::UNIX_EPOCH,
            checksum: Some(sum(a, data)),
        }
    }

    #[test]
    fn complete_rules() {
        let a = ChecksumAlgorithm::Sha256;
        let up = UploadChecksum::new(Some(a), None).unwrap();
        let parts = [part(1, b"one", a), part(2, b"two", a)];
        let listed: BTreeMap<u32, Checksum> = parts
            .iter()
            .map(|p| (p.part_number, p.checksum.clone().unwrap()))
            .collect();
        let given = CompleteChecksums {
            parts: listed.clone(),
            ..Default::default()
        };
        let c = complete_checksum(up, &parts, &given).unwrap().unwrap();
        assert!(c.value.ends_with("-2"));
        // the object's value, with or without -N, agrees
        let mut g = given.clone();
        g.object = Some(c.clone());
        complete_checksum(up, &parts, &g).unwrap();
        g.object = Some(sum(a, b"onetwo"));
        assert!(matches!(
            complete_checksum(up, &parts, &g),
            Err(ObjectError::ChecksumMismatch { .. })
        ));
        // a missing part checksum, a wrong one, the wrong type
        let mut g = given.clone();
        g.parts.remove(&2);
        assert!(matches!(
            complete_checksum(up, &parts, &g),
            Err(ObjectError::InvalidRequest { .. })
        ));
        let mut g = given.clone();
        g.parts.insert(2, sum(a, b"TWO"));
        assert!(matches!(
            complete_checksum(up, &parts, &g),
            Err(ObjectError::InvalidPart { part_number: 2 })
        ));
        let mut g = given;
        g.kind = Some(ChecksumType::FullObject);
        assert!(matches!(
            complete_checksum(up, &parts, &g),
            Err(ObjectError::BadDigest { .. })
        ));
        // FULL_OBJECT needs no part list and gives the whole CRC
        let a = ChecksumAlgorithm::Crc32c;
        let up = UploadChecksum::new(Some(a), Some(ChecksumType::FullObject)).unwrap();
        let parts = [part(1, b"one", a), part(2, b"two", a)];
        let c = complete_checksum(up, &parts, &CompleteChecksums::default()).unwrap();
        assert_eq!(c, Some(sum(a, b"onetwo")));
    }

    #[test]
    fn parts_carry_the_uploads_algorithm() {
        let r = part_request(Some(ChecksumAlgorithm::Crc32), None).unwrap();
        assert_eq!(r.map(|r| r.algorithm), Some(ChecksumAlgorithm::Crc32));
        let other = ChecksumRequest {
            algorithm: ChecksumAlgorithm::Sha1,
            expected: None,
            trailer: None,
            full_object: false,
        };
        assert!(part_request(Some(ChecksumAlgorithm::Crc32), Some(other.clone())).is_err());
        assert!(part_request(None, Some(other)).unwrap().is_some());
    }
}
