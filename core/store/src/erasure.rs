//! Reed-Solomon coding of one block into K data + M parity shards.
//!
//! Same Vandermonde-derived code as MinIO/klauspost (reed-solomon-erasure,
//! SIMD accelerated), so the shard bytes of a block are what those systems
//! would write.

use reed_solomon_erasure::galois_8::ReedSolomon;

use crate::bitrot::{self, HASH_LEN};

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("invalid erasure layout {data}+{parity}: {reason}")]
    Layout {
        data: usize,
        parity: usize,
        reason: String,
    },
    #[error("too few shards to decode: {have} of {need}")]
    TooFewShards { have: usize, need: usize },
}

pub struct Erasure {
    data: usize,
    parity: usize,
    rs: Option<ReedSolomon>,
}

impl Erasure {
    pub fn new(data: usize, parity: usize) -> Result<Self, ErasureError> {
        if data == 0 || data + parity > 256 {
            return Err(ErasureError::Layout {
                data,
                parity,
                reason: "need 1..=256 shards with at least one data shard".into(),
            });
        }
        let rs = if parity == 0 {
            None
        } else {
            Some(
                ReedSolomon::new(data, parity).map_err(|e| ErasureError::Layout {
                    data,
                    parity,
                    reason: format!("{e:?}"),
                })?,
            )
        };
        Ok(Self { data, parity, rs })
    }

    pub fn data_shards(&self) -> usize {
        self.data
    }

    pub fn parity_shards(&self) -> usize {
        self.parity
    }

    pub fn total_shards(&self) -> usize {
        self.data + self.parity
    }

    /// Bytes per shard for a block of `block_len` bytes (zero-padded).
    pub fn shard_size(&self, block_len: usize) -> usize {
        block_len.div_ceil(self.data)
    }

    /// Splits a block into data shards and computes the parity shards.
    // shards are made here: total_shards of ss (+ HASH_LEN) bytes, and the
    // block's chunks of ss bytes are at most data of them
    #[allow(clippy::indexing_slicing)]
    pub fn encode(&self, block: &[u8]) -> Vec<Vec<u8>> {
        let ss = self.shard_size(block.len());
        let mut shards: Vec<Vec<u8>> = (0..self.total_shards()).map(|_| vec![0u8; ss]).collect();
        for (i, chunk) in block.chunks(ss.max(1)).enumerate() {
            shards[i][..chunk.len()].copy_from_slice(chunk);
        }
        if let Some(rs) = self.rs.as_ref().filter(|_| ss > 0) {
            // Cannot fail: the shard count and equal lengths are ours.
            if let Err(e) = rs.encode(&mut shards) {
                unreachable_layout(e);
            }
        }
        shards
    }

    /// Like `encode`, but every shard comes framed behind its bitrot hash,
    /// ready to append to a part file (one allocation per shard, parity
    /// computed in place).
    #[allow(clippy::indexing_slicing)] // as in encode
    pub fn encode_framed(&self, block: &[u8]) -> Vec<Vec<u8>> {
        let ss = self.shard_size(block.len());
        let mut shards: Vec<Vec<u8>> = Vec::with_capacity(self.total_shards());
        // data shards: the block's bytes copied once, only the padding of
        // the last one zeroed (no zero-fill pass over what is then
        // overwritten); parity shards zeroed, as safe code must
        let mut chunks = block.chunks(ss.max(1));
        for _ in 0..self.data {
            let mut s = Vec::with_capacity(HASH_LEN + ss);
            s.resize(HASH_LEN, 0);
            s.extend_from_slice(chunks.next().unwrap_or_default());
            s.resize(HASH_LEN + ss, 0);
            shards.push(s);
        }
        shards.extend((0..self.parity).map(|_| vec![0u8; HASH_LEN + ss]));
        if let Some(rs) = self.rs.as_ref().filter(|_| ss > 0) {
            let mut refs: Vec<&mut [u8]> = shards.iter_mut().map(|s| &mut s[HASH_LEN..]).collect();
            if let Err(e) = rs.encode(&mut refs) {
                unreachable_layout(e);
            }
        }
        for s in &mut shards {
            let h = bitrot::hash(&s[HASH_LEN..]);
            s[..HASH_LEN].copy_from_slice(&h);
        }
        shards
    }

    /// Rebuilds the missing data shards in place from any `data` present
    /// shards.
    pub fn reconstruct_data(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), ErasureError> {
        let have = shards.iter().filter(|s| s.is_some()).count();
        if have < self.data {
            return Err(ErasureError::TooFewShards {
                have,
                need: self.data,
            });
        }
        if shards
            .get(..self.data)
            .is_some_and(|d| d.iter().all(Option::is_some))
        {
            return Ok(());
        }
        if shards.iter().flatten().all(|s| s.is_empty()) {
            for s in shards.iter_mut() {
                s.get_or_insert_with(Vec::new);
            }
            return Ok(());
        }
        match &self.rs {
            Some(rs) => rs
                .reconstruct_data(shards)
                .map_err(|_| ErasureError::TooFewShards {
                    have,
                    need: self.data,
                }),
            None => Err(ErasureError::TooFewShards {
                have,
                need: self.data,
            }),
        }
    }

    /// Rebuilds every missing shard (data and parity), for healing.
    pub fn reconstruct_all(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), ErasureError> {
        let have = shards.iter().filter(|s| s.is_some()).count();
        if have >= self.data && shards.iter().flatten().all(|s| s.is_empty()) {
            // An empty block: every shard is empty (RS rejects empty shards).
            for s in shards.iter_mut() {
                s.get_or_insert_with(Vec::new);
            }
            return Ok(());
        }
        match &self.rs {
            Some(rs) if have >= self.data => {
                rs.reconstruct(shards)
                    .map_err(|_| ErasureError::TooFewShards {
                        have,
                        need: self.data,
                    })
            }
            _ if have == shards.len() => Ok(()),
            _ => Err(ErasureError::TooFewShards {
                have,
                need: self.data,
            }),
        }
    }
}

fn unreachable_layout(e: reed_solomon_erasure::Error) {
    tracing::error!(error = ?e, "reed-solomon rejected a layout it accepted at construction");
}

/// Parity for a set of `drives` drives when none is configured
/// (DESIGN.md: 0 for 1 drive, 1 for 2-3, 2 for 4-5, 3 for 6-7, 4 for 8+).
pub fn default_parity(drives: usize) -> usize {
    match drives {
        0 | 1 => 0,
        2 | 3 => 1,
        4 | 5 => 2,
        6 | 7 => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + i / 7) as u8).collect()
    }

    /// Every loss pattern up to the parity count rebuilds the block.
    #[test]
    fn every_loss_pattern_up_to_parity() {
        for (k, m) in [
            (1, 0),
            (1, 1),
            (2, 1),
            (2, 2),
            (3, 1),
            (4, 2),
            (6, 6),
            (8, 4),
        ] {
            let e = Erasure::new(k, m).expect("layout");
            for len in [1usize, 7, 1000, 65_537] {
                let block = pattern(len);
                let shards = e.encode(&block);
                let n = k + m;
                for mask in 0u32..(1 << n) {
                    if mask.count_ones() as usize > m {
                        continue;
                    }
                    let mut opt: Vec<Option<Vec<u8>>> = shards
                        .iter()
                        .enumerate()
                        .map(|(i, s)| (mask & (1 << i) == 0).then(|| s.clone()))
                        .collect();
                    e.reconstruct_data(&mut opt).expect("reconstruct");
                    let mut out: Vec<u8> = opt[..k].iter().flatten().flatten().copied().collect();
                    out.truncate(len);
                    assert_eq!(out, block, "{k}+{m} len {len} mask {mask:b}");
                }
            }
        }
    }

    #[test]
    fn framed_shards_are_the_hashed_shards_of_encode() {
        for (k, m) in [(2, 2), (3, 1), (4, 0), (5, 3)] {
            let e = Erasure::new(k, m).unwrap();
            for len in [0, 1, k - 1, k, k + 1, 1000, 4096 * k + 3] {
                let block = pattern(len);
                let plain = e.encode(&block);
                let framed = e.encode_framed(&block);
                assert_eq!(framed.len(), plain.len(), "{k}+{m} len {len}");
                for (f, p) in framed.iter().zip(&plain) {
                    assert_eq!(&f[HASH_LEN..], &p[..], "{k}+{m} len {len}");
                    assert!(bitrot::verify(f), "{k}+{m} len {len}");
                }
            }
        }
    }

    #[test]
    fn too_many_losses_fail() {
        let e = Erasure::new(2, 2).expect("layout");
        let shards = e.encode(&pattern(100));
        let mut opt: Vec<Option<Vec<u8>>> = shards.into_iter().map(Some).collect();
        opt[0] = None;
        opt[1] = None;
        opt[2] = None;
        assert!(e.reconstruct_data(&mut opt).is_err());
    }

    #[test]
    fn parity_table() {
        let got: Vec<usize> = [1, 2, 3, 4, 5, 6, 7, 8, 12, 16]
            .iter()
            .map(|&n| default_parity(n))
            .collect();
        assert_eq!(got, [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]);
    }
}
