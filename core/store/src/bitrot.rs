//! Bitrot protection: every shard block is stored behind its
//! HighwayHash-256 and checked on every read.

use highway::{HighwayHash, HighwayHasher, Key};

/// Bytes of hash in front of every shard block.
pub const HASH_LEN: usize = 32;

/// A fixed key: hashes must be the same on every node and after restarts.
const KEY: Key = Key([
    0x4341_4952_4e2d_4249,
    0x5452_4f54_2d48_5748,
    0x2d32_3536_2d76_3100,
    0x9e37_79b9_7f4a_7c15,
]);

pub fn hash(data: &[u8]) -> [u8; HASH_LEN] {
    let words = HighwayHasher::new(KEY).hash256(data);
    let mut out = [0u8; HASH_LEN];
    for (i, w) in words.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// A short HighwayHash-64 for checksumming metadata files.
pub fn hash64(data: &[u8]) -> u64 {
    HighwayHasher::new(KEY).hash64(data)
}

/// Checks a framed shard block (hash followed by the shard).
pub fn verify(framed: &[u8]) -> bool {
    framed.len() >= HASH_LEN && hash(&framed[HASH_LEN..]) == framed[..HASH_LEN]
}

/// Reads the next framed shard block (hash + `shard_len` bytes) into
/// reserved capacity, with no zeroing pass. A short file is an error;
/// the hash is the caller's to check (`verify`).
pub fn read_frame(r: &mut impl std::io::Read, shard_len: usize) -> std::io::Result<Vec<u8>> {
    let want = HASH_LEN + shard_len;
    let mut buf = Vec::with_capacity(want);
    let n = std::io::Read::read_to_end(&mut std::io::Read::take(r, want as u64), &mut buf)?;
    if n != want {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("short shard file: {n} of {want} bytes"),
        ));
    }
    Ok(buf)
}

/// Size on a drive of `len` bytes of shard data cut into shard blocks of
/// `shard_size` bytes, each behind its hash.
pub fn framed_len(len: u64, shard_size: u64) -> u64 {
    if len == 0 {
        return 0;
    }
    len + len.div_ceil(shard_size) * HASH_LEN as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_any_flipped_bit() {
        let data: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        let mut framed = hash(&data).to_vec();
        framed.extend_from_slice(&data);
        assert!(verify(&framed));
        for pos in [0, 5, HASH_LEN, HASH_LEN + 100, framed.len() - 1] {
            let mut bad = framed.clone();
            bad[pos] ^= 0x10;
            assert!(!verify(&bad), "flip at {pos} undetected");
        }
    }
}
