//! MD5 through AWS-LC's assembly (OpenSSL's `md5-x86_64`), already linked
//! for rustls and object_store. Every PUT computes the MD5 of its body (the
//! ETag) on one core, and it is the largest single cost of a write (29 %
//! of the server's CPU in an NFS copy): md-5's asm hashes 0.62 GB/s on this
//! machine's cores, AWS-LC's 0.81 GB/s (`cairn bench micro --filter md5`).

#![allow(unsafe_code)]

use std::mem::MaybeUninit;

/// A running MD5.
pub struct Md5(aws_lc_sys::MD5_CTX);

impl Md5 {
    pub fn new() -> Self {
        let mut ctx = MaybeUninit::<aws_lc_sys::MD5_CTX>::zeroed();
        // SAFETY: MD5_CTX is plain integers and bytes, so all-zero is a
        // valid value; MD5_Init only writes the context it is given (and
        // always returns 1).
        unsafe {
            aws_lc_sys::MD5_Init(ctx.as_mut_ptr());
            Self(ctx.assume_init())
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        // SAFETY: the pointer and length describe one live slice, only
        // read; the context is ours and initialised.
        unsafe {
            aws_lc_sys::MD5_Update(&mut self.0, data.as_ptr().cast(), data.len());
        }
    }

    /// `update`, with the whole 64-byte blocks of `data` hashed in the
    /// shared lanes (`md5_lanes`) beside other streams' blocks when the
    /// machine has them. Blocks the calling thread while it waits.
    pub fn update_in_lanes(&mut self, data: &bytes::Bytes) {
        if !crate::md5_lanes::available() || data.len() < LANES_MIN {
            return self.update(data);
        }
        // the partial block held from earlier, completed first
        let held = self.0.num as usize;
        let head = if held == 0 {
            0
        } else {
            (64 - held).min(data.len())
        };
        self.update(data.get(..head).unwrap_or_default());
        let rest = data.slice(head..);
        let whole = rest.len() / 64 * 64;
        if whole > 0 {
            crate::md5_lanes::compress(&mut self.0.h, rest.slice(..whole));
            // the bit count, as MD5_Update keeps it (Nh:Nl)
            let bits = ((u64::from(self.0.Nh) << 32) | u64::from(self.0.Nl))
                .wrapping_add((whole as u64).wrapping_mul(8));
            self.0.Nl = bits as u32;
            self.0.Nh = (bits >> 32) as u32;
        }
        self.update(rest.get(whole..).unwrap_or_default());
    }

    pub fn finish(mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        // SAFETY: MD5_Final writes exactly MD5_DIGEST_LENGTH (16) bytes.
        unsafe {
            aws_lc_sys::MD5_Final(out.as_mut_ptr(), &mut self.0);
        }
        out
    }
}

/// Below this, a body's blocks are hashed on the spot (handing them to
/// the lanes costs more than it saves).
const LANES_MIN: usize = 4096;

/// MD5's compression of `blocks` (whole 64-byte blocks) from state `h`,
/// with AWS-LC's assembly: the lanes' path for a stream hashed alone.
pub(crate) fn compress_scalar(h: &mut [u32; 4], blocks: &[u8]) {
    let mut m = Md5::new();
    m.0.h = *h;
    m.update(blocks);
    *h = m.0.h;
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Md5;
    use md5::Digest as _;

    #[test]
    fn matches_md5_crate_across_chunkings() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for len in [0, 1, 55, 56, 63, 64, 65, 1000, data.len()] {
            let want: [u8; 16] = md5::Md5::digest(&data[..len]).into();
            for chunk in [1, 7, 64, 4096, 1 << 20] {
                let mut h = Md5::new();
                for c in data[..len].chunks(chunk) {
                    h.update(c);
                }
                assert_eq!(h.finish(), want, "len {len} chunk {chunk}");
            }
        }
        assert_eq!(
            hex::encode(Md5::new().finish()),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
    }
}
