//! The file handle nfs3_server carries for us: the file id, 8 bytes little
//! endian. nfs3_server puts its generation number in front, and Cairn sets
//! that to the id map's verifier (lib.rs), so a handle is 16 bytes,
//! `verifier | id` (both little endian): the layout handles had before the
//! move to nfs3_server, so handles clients hold keep working, and it
//! outlives the process.

use nfs3_server::vfs::FileHandle;

/// A file id as handle bytes (`as_bytes` must lend a slice, so the bytes
/// are what is stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fh([u8; 8]);

impl Fh {
    pub const fn new(id: u64) -> Self {
        Self(id.to_le_bytes())
    }

    pub const fn id(&self) -> u64 {
        u64::from_le_bytes(self.0)
    }
}

impl FileHandle for Fh {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let h = Fh::new(0x0102_0304_0506_0708);
        assert_eq!(h.as_bytes(), &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(Fh::from_bytes(h.as_bytes()), Some(h));
        assert_eq!(Fh::from_bytes(&[1, 2, 3]), None);
    }
}
