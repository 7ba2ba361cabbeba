//! Reading an object that is not staged: one ranged GET stream per
//! sequential run, kept open across `read` calls, with a window of recent
//! bytes so the kernel's slightly out-of-order readahead requests are
//! served without restarting the stream.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use cairn_api::{BucketName, ByteRange, ByteStream, GetOptions, ObjectKey, ObjectLayer};
use futures::StreamExt as _;

use crate::error::VfsResult;

/// Bytes kept behind the read position.
const WINDOW: u64 = 8 << 20;
/// A read this far ahead of the stream skips forward instead of restarting.
const SKIP_AHEAD: u64 = 8 << 20;

#[derive(Default)]
pub struct ObjectReader {
    stream: Option<ByteStream>,
    /// Offset of the next byte the stream yields.
    pos: u64,
    /// Chunks covering `[win_start, pos)`.
    window: VecDeque<Bytes>,
    win_start: u64,
}

impl ObjectReader {
    fn restart(&mut self, at: u64) {
        self.stream = None;
        self.window.clear();
        self.pos = at;
        self.win_start = at;
    }

    pub async fn read(
        &mut self,
        layer: &Arc<dyn ObjectLayer>,
        bucket: &BucketName,
        key: &ObjectKey,
        offset: u64,
        size: usize,
        file_size: u64,
    ) -> VfsResult<Vec<u8>> {
        if offset >= file_size || size == 0 {
            return Ok(Vec::new());
        }
        let end = file_size.min(offset.saturating_add(size as u64));
        if offset < self.win_start || offset > self.pos.saturating_add(SKIP_AHEAD) {
            self.restart(offset);
        }
        while self.pos < end {
            if self.stream.is_none() {
                let got = layer
                    .get_object(
                        bucket,
                        key,
                        GetOptions {
                            range: Some(ByteRange::FromTo {
                                first: self.pos,
                                last: None,
                            }),
                            ..Default::default()
                        },
                    )
                    .await?;
                self.stream = Some(got.body);
            }
            let Some(stream) = self.stream.as_mut() else {
                break;
            };
            match stream.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    self.pos += chunk.len() as u64;
                    self.window.push_back(chunk);
                }
                // The object is shorter than we were told: serve what exists.
                None => {
                    self.stream = None;
                    break;
                }
            }
            // Drop chunks that ended before the read and fall out of the window.
            while let Some(front) = self.window.front() {
                let front_end = self.win_start + front.len() as u64;
                if front_end <= offset && self.pos - front_end >= WINDOW {
                    self.win_start = front_end;
                    self.window.pop_front();
                } else {
                    break;
                }
            }
        }
        let end = end.min(self.pos);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let mut at = self.win_start;
        for chunk in &self.window {
            let c_end = at + chunk.len() as u64;
            if c_end > offset && at < end {
                let from = offset.saturating_sub(at) as usize;
                let to = (end.min(c_end) - at) as usize;
                out.extend_from_slice(&chunk[from..to]);
            }
            at = c_end;
            if at >= end {
                break;
            }
        }
        Ok(out)
    }
}
