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
    for (o, w) in out.chunks_exact_mut(8).zip(words) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// A short HighwayHash-64 for checksumming metadata files.
pub fn hash64(data: &[u8]) -> u64 {
    HighwayHasher::new(KEY).hash64(data)
}

/// Checks a framed shard block (hash followed by the shard).
pub fn verify(framed: &[u8]) -> bool {
    framed
        .split_at_checked(HASH_LEN)
        .is_some_and(|(h, data)| hash(data) == h)
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

/// Reads the next framed shard block as its hash and its data, the data
/// in a buffer of its own (exactly `shard_len`, not zeroed first), so the
/// read pipeline can hand it on whole without moving it. A short file is
/// an error; the hash is the caller's to check (`verify_block`).
pub fn read_block(
    r: &mut impl std::io::Read,
    shard_len: usize,
) -> std::io::Result<([u8; HASH_LEN], Vec<u8>)> {
    let mut hash = [0u8; HASH_LEN];
    r.read_exact(&mut hash)?;
    let mut data = Vec::with_capacity(shard_len);
    let n = std::io::Read::read_to_end(&mut std::io::Read::take(r, shard_len as u64), &mut data)?;
    if n != shard_len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "short shard file: {} of {} bytes",
                HASH_LEN + n,
                HASH_LEN + shard_len
            ),
        ));
    }
    Ok((hash, data))
}

/// Checks a shard block read by `read_block`.
pub fn verify_block(expected: &[u8; HASH_LEN], data: &[u8]) -> bool {
    hash(data) == *expected
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

    #[test]
    fn read_block_splits_hash_and_data() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let mut file = hash(&data).to_vec();
        file.extend_from_slice(&data);
        file.extend_from_slice(b"next frame");
        let mut r = std::io::Cursor::new(file);
        let (h, got) = read_block(&mut r, data.len()).unwrap();
        assert_eq!(got, data);
        assert_eq!(got.capacity(), data.len(), "the buffer holds just the data");
        assert!(verify_block(&h, &got));
        let mut bad = got.clone();
        bad[4000] ^= 1;
        assert!(!verify_block(&h, &bad));
        assert_eq!(r.position() as usize, HASH_LEN + data.len());
        let mut short = std::io::Cursor::new(hash(&data)[..10].to_vec());
        assert!(read_block(&mut short, data.len()).is_err());
    }
}
