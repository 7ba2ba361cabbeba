//! The `cat` baseline: sequential reads of a file with a reused buffer.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::stats::LoadResult;

#[derive(clap::Args, Debug)]
pub struct CatArgs {
    /// The file to read.
    #[arg(long)]
    pub file: PathBuf,
    /// Bytes per read() call.
    #[arg(long, default_value = "1MiB", value_parser = super::parse_size)]
    pub block: u64,
    /// Keep re-reading the whole file until this much time has passed (at
    /// least one pass); a 64 MiB read from the page cache is too short to
    /// time alone.
    #[arg(long, default_value = "3s", value_parser = super::parse_duration)]
    pub duration: Duration,
    /// Print one JSON object per result.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn run(args: &CatArgs) -> anyhow::Result<()> {
    let block = usize::try_from(args.block)
        .ok()
        .filter(|&b| b > 0)
        .context("--block must be a positive size")?;
    let mut buf = vec![0u8; block];
    let mut lat_us = Vec::new();
    let mut bytes = 0u64;
    let start = Instant::now();
    loop {
        let t0 = Instant::now();
        let mut f = std::fs::File::open(&args.file)
            .with_context(|| format!("open {}", args.file.display()))?;
        let mut pass = 0u64;
        loop {
            let n = f
                .read(&mut buf)
                .with_context(|| format!("read {}", args.file.display()))?;
            if n == 0 {
                break;
            }
            pass += n as u64;
        }
        std::hint::black_box(&buf);
        lat_us.push(t0.elapsed().as_micros() as u64);
        bytes += pass;
        if pass == 0 || start.elapsed() >= args.duration {
            break;
        }
    }
    let elapsed = start.elapsed();
    let size = bytes / lat_us.len().max(1) as u64;
    LoadResult::new("cat", "read", size, 1, lat_us, bytes, 0, elapsed, None).print(args.json)
}
