//! What a read returns: the bytes in one or more buffers, in order. A read
//! that spans the store's chunks is not copied into one buffer; the FUSE
//! front sends the parts with one writev, the NFS front joins them.

use bytes::Bytes;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadData(Vec<Bytes>);

impl ReadData {
    pub fn new(parts: Vec<Bytes>) -> Self {
        Self(parts)
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Bytes::is_empty)
    }

    pub fn parts(&self) -> &[Bytes] {
        &self.0
    }

    /// One buffer: the part itself when there is one, else a copy.
    pub fn into_bytes(mut self) -> Bytes {
        match self.0.len() {
            0 => Bytes::new(),
            1 => self.0.pop().unwrap_or_default(),
            _ => Bytes::from(self.to_vec()),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        for p in &self.0 {
            out.extend_from_slice(p);
        }
        out
    }
}

impl From<Bytes> for ReadData {
    fn from(b: Bytes) -> Self {
        Self(vec![b])
    }
}

impl From<Vec<u8>> for ReadData {
    fn from(v: Vec<u8>) -> Self {
        Self(vec![Bytes::from(v)])
    }
}
