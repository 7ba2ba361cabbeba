//! Which erasure set holds a key: SipHash-2-4 of the object name keyed
//! with the deployment id, modulo the number of sets (MinIO's `SIPMOD`,
//! so that one day MinIO drives can be read in place), and how many
//! drives a set gets when a deployment is first formatted.

use std::hash::Hasher as _;

/// The placement algorithm recorded in `format.json`.
pub const SIPMOD: &str = "SIPMOD";

/// Smallest and largest erasure set (MinIO's bounds).
pub const MIN_SET_DRIVES: usize = 2;
pub const MAX_SET_DRIVES: usize = 16;

/// The set of `key` among `sets`: SipHash-2-4 over the key's bytes with
/// the deployment id's 16 bytes as the two little-endian 64-bit keys.
pub fn set_index(key: &str, sets: usize, deployment: &[u8; 16]) -> usize {
    if sets <= 1 {
        return 0;
    }
    let (k0, k1) = deployment.split_at(8);
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    let mut h = siphasher::sip::SipHasher24::new_with_keys(word(k0), word(k1));
    h.write(key.as_bytes());
    (h.finish() % sets as u64) as usize
}

/// The deployment id as the 16 bytes the hash is keyed with (a UUID; an
/// id that is no UUID, which Cairn never writes, is hashed into 16 bytes
/// so that placement is still stable).
pub fn deployment_key(id: &str) -> [u8; 16] {
    match uuid::Uuid::parse_str(id) {
        Ok(u) => *u.as_bytes(),
        Err(_) => {
            let mut h = siphasher::sip128::SipHasher24::new();
            h.write(id.as_bytes());
            siphasher::sip128::Hasher128::finish128(&h).as_bytes()
        }
    }
}

/// Why drives cannot be grouped into sets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizingError {
    #[error(
        "{drives} drives cannot be split into equal erasure sets of {MIN_SET_DRIVES} to {MAX_SET_DRIVES} drives; give a drive count with such a divisor"
    )]
    NoSetSize { drives: usize },
    #[error(
        "--set-drive-count {asked} does not fit {drives} drives: a set holds {MIN_SET_DRIVES} to {MAX_SET_DRIVES} drives and the drive count must be a multiple of it"
    )]
    BadSetSize { asked: usize, drives: usize },
}

/// Drives per set for a new deployment of `drives` drives: `asked` when
/// given (it must divide the count and lie in 2..=16), else all of them
/// up to 16 (a single drive is a set of one), else the largest size in
/// 2..=16 that divides the count, as MinIO chooses.
pub fn set_size(drives: usize, asked: Option<usize>) -> Result<usize, SizingError> {
    if let Some(a) = asked {
        let fits = (MIN_SET_DRIVES..=MAX_SET_DRIVES).contains(&a) && drives.is_multiple_of(a);
        // a single drive is its own set
        if fits || (a == 1 && drives == 1) {
            return Ok(a);
        }
        return Err(SizingError::BadSetSize { asked: a, drives });
    }
    if drives <= MAX_SET_DRIVES {
        return Ok(drives);
    }
    (MIN_SET_DRIVES..=MAX_SET_DRIVES)
        .rev()
        .find(|s| drives.is_multiple_of(*s))
        .ok_or(SizingError::NoSetSize { drives })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vector of SipHash-2-4 (key 00..0f, empty message and
    /// 00..0e) from the SipHash paper: the hash is the standard one.
    #[test]
    fn siphash_is_the_reference_siphash_2_4() {
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let (k0, k1) = key.split_at(8);
        let w = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap());
        let mut h = siphasher::sip::SipHasher24::new_with_keys(w(k0), w(k1));
        h.write(&[]);
        assert_eq!(h.finish(), 0x726f_db47_dd0e_0e31);
        let mut h = siphasher::sip::SipHasher24::new_with_keys(w(k0), w(k1));
        let msg: Vec<u8> = (0..15).collect();
        h.write(&msg);
        assert_eq!(h.finish(), 0xa129_ca61_49be_45e5);
        // placement is that hash modulo the set count
        assert_eq!(
            set_index("", 7, &key),
            (0x726f_db47_dd0e_0e31u64 % 7) as usize
        );
    }

    #[test]
    fn keys_spread_over_every_set_and_stay_put() {
        let dep = deployment_key("6f1a2c44-9a53-4b8e-8f6e-0d7c8b9a1e22");
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            let s = set_index(&format!("photos/{i}.jpg"), 4, &dep);
            counts[s] += 1;
            assert_eq!(s, set_index(&format!("photos/{i}.jpg"), 4, &dep));
        }
        // each set gets about a quarter (binomial: 1000 +- 4 sigma)
        assert!(
            counts.iter().all(|&c| (880..1120).contains(&c)),
            "{counts:?}"
        );
        // another deployment places keys differently
        let other = deployment_key("0b7e9d58-1c2f-4a6b-9e3d-5f8a7c6b4d21");
        let moved = (0..400)
            .filter(|i| {
                let k = format!("photos/{i}.jpg");
                set_index(&k, 4, &dep) != set_index(&k, 4, &other)
            })
            .count();
        assert!(moved > 200, "{moved}");
        assert_eq!(set_index("anything", 1, &dep), 0);
    }

    #[test]
    fn set_sizes_as_minio_chooses() {
        assert_eq!(set_size(1, None), Ok(1));
        assert_eq!(set_size(4, None), Ok(4));
        assert_eq!(set_size(16, None), Ok(16));
        assert_eq!(set_size(32, None), Ok(16));
        assert_eq!(set_size(24, None), Ok(12));
        assert_eq!(set_size(18, None), Ok(9));
        assert_eq!(set_size(34, None), Ok(2));
        assert_eq!(
            set_size(17, None),
            Err(SizingError::NoSetSize { drives: 17 })
        );
        assert_eq!(set_size(8, Some(4)), Ok(4));
        assert_eq!(set_size(8, Some(2)), Ok(2));
        assert!(set_size(8, Some(3)).is_err());
        assert!(set_size(34, Some(17)).is_err());
        assert!(set_size(4, Some(1)).is_err());
    }
}
