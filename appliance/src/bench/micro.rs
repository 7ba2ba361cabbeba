//! Single-thread microbenchmarks of the per-byte work on the data path.
//! Throughput is bytes of input (the object block) per second, in GB/s
//! (10^9 bytes), measured on one thread: that is the per-core figure.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cairn_api::checksum::{ChecksumAlgorithm, ChecksumHasher};
use cairn_core::bitrot;
use cairn_core::erasure::Erasure;
use cairn_core::sse::{self, Cipher, PartCipher};
use md5::Digest as _;
use rand::RngCore as _;

#[derive(clap::Args, Debug)]
pub struct MicroArgs {
    /// Input block size (the erasure pipeline codes 1 MiB blocks).
    #[arg(long, default_value = "1MiB", value_parser = super::parse_size)]
    pub size: u64,
    /// Time spent on each benchmark.
    #[arg(long, default_value = "2", value_parser = super::parse_duration)]
    pub seconds: Duration,
    /// Only run benchmarks whose name contains this string.
    #[arg(long)]
    pub filter: Option<String>,
    /// Skip warming the allocator (see `prime_allocator`): shows the cost
    /// of a cold glibc malloc, which serves every shard-sized buffer with a
    /// fresh mmap (page faults on every block).
    #[arg(long)]
    pub cold_malloc: bool,
    /// Print one JSON object per result.
    #[arg(long)]
    pub json: bool,
}

/// glibc malloc serves allocations above its mmap threshold (128 KiB at
/// start) with a fresh mmap, and only raises the threshold when such a
/// chunk larger than it is freed. A long-running server has long since freed
/// multi-MiB buffers; a fresh benchmark process has not, and would then pay
/// an mmap, page faults and munmap for every shard of every block (the 4+2
/// encode of a 1 MiB block drops from ~8 to ~1 GB/s). Freeing one large
/// buffer first measures the steady state.
fn prime_allocator() {
    drop(black_box(vec![1u8; 16 << 20]));
}

#[derive(Debug, serde::Serialize)]
struct MicroResult {
    bench: &'static str,
    name: String,
    size: u64,
    iterations: u64,
    seconds: f64,
    gb_s: f64,
}

/// Runs `f` (which processes `bytes` bytes of input) repeatedly for `dur`
/// after a short warm-up, and returns the GB/s.
fn measure(bytes: u64, dur: Duration, mut f: impl FnMut()) -> (u64, f64, f64) {
    let warm = Instant::now();
    while warm.elapsed() < dur / 10 {
        f();
    }
    let start = Instant::now();
    let mut iters = 0u64;
    loop {
        f();
        iters += 1;
        if start.elapsed() >= dur {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    (iters, secs, (iters * bytes) as f64 / secs / 1e9)
}

struct Runner<'a> {
    args: &'a MicroArgs,
    size: u64,
}

impl Runner<'_> {
    fn bench(&self, name: String, f: impl FnMut()) -> anyhow::Result<()> {
        if let Some(filter) = &self.args.filter
            && !name.contains(filter.as_str())
        {
            return Ok(());
        }
        let (iterations, seconds, gb_s) = measure(self.size, self.args.seconds, f);
        let r = MicroResult {
            bench: "micro",
            name,
            size: self.size,
            iterations,
            seconds,
            gb_s,
        };
        if self.args.json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!(
                "{:<36} {:>7.2} GB/s  ({} x {} in {:.2} s)",
                r.name,
                r.gb_s,
                r.iterations,
                super::human_size(r.size),
                r.seconds
            );
        }
        Ok(())
    }
}

pub(crate) fn run(args: &MicroArgs) -> anyhow::Result<()> {
    let len = usize::try_from(args.size)
        .ok()
        .filter(|&n| n > 0)
        .context("--size must be a positive size")?;
    let mut block = vec![0u8; len];
    rand::rng().fill_bytes(&mut block);
    let block = block;
    if !args.cold_malloc {
        prime_allocator();
    }
    let r = Runner {
        args,
        size: args.size,
    };
    if !args.json {
        println!(
            "single thread, {} input blocks, GB/s = 10^9 bytes of input per second",
            super::human_size(args.size)
        );
    }

    for (k, m) in [(4, 2), (8, 4), (2, 2)] {
        let e = Erasure::new(k, m)?;
        r.bench(format!("erasure encode {k}+{m}"), || {
            black_box(e.encode(black_box(&block)));
        })?;
        r.bench(format!("erasure encode+hash {k}+{m}"), || {
            black_box(e.encode_framed(black_box(&block)));
        })?;
    }

    for (k, m) in [(4, 2), (8, 4), (2, 2)] {
        let e = Erasure::new(k, m)?;
        let full: Vec<Option<Vec<u8>>> = e.encode(&block).into_iter().map(Some).collect();
        for missing in [1, m] {
            let name = format!("erasure reconstruct {k}+{m}, {missing} data missing");
            if missing == 1 && m == 1 {
                continue;
            }
            let mut shards = full.clone();
            let mut err = None;
            r.bench(name, || {
                // Drop the data shards (the decoder allocates them again,
                // as on a real degraded read), then rebuild them.
                for s in shards.iter_mut().take(missing) {
                    *s = None;
                }
                if let Err(e) = e.reconstruct_data(black_box(&mut shards)) {
                    err = Some(e);
                }
            })?;
            if let Some(e) = err {
                return Err(e).context("reconstruct");
            }
            let rebuilt: Vec<u8> = shards.iter().take(k).flatten().flatten().copied().collect();
            anyhow::ensure!(
                rebuilt.get(..len) == Some(&block[..]),
                "reconstruct {k}+{m} returned wrong bytes"
            );
        }
    }

    // SSE: seal and open a block as 64 KiB packages (a copy of the sealed
    // block per open is included: opening works in place)
    for cipher in [
        Cipher::Aes256Gcm,
        Cipher::Chacha20Poly1305,
        Cipher::Aes256CbcHmacSha256,
    ] {
        let c = PartCipher::new(cipher, &[7; 32], [1; 16], 1, None);
        r.bench(format!("sse seal {}", cipher.name()), || {
            black_box(sse::seal_part(&c, black_box(&block)));
        })?;
        let sealed = sse::seal_part(&c, &block);
        let mut buf = sealed.clone();
        let mut failed = false;
        r.bench(format!("sse open {}", cipher.name()), || {
            buf.copy_from_slice(&sealed);
            failed |= sse::open_part(&c, black_box(&mut buf), len as u64).is_err();
        })?;
        anyhow::ensure!(!failed, "sse open {} failed", cipher.name());
    }

    r.bench("highwayhash-256 (bitrot)".into(), || {
        black_box(bitrot::hash(black_box(&block)));
    })?;
    r.bench("md5 (etag)".into(), || {
        black_box(md5::Md5::digest(black_box(&block)));
    })?;
    // what every PUT uses (cairn_api::fast_md5: AWS-LC's asm)
    r.bench("md5 (etag, aws-lc)".into(), || {
        let mut h = cairn_api::fast_md5::Md5::new();
        h.update(black_box(&block));
        black_box(h.finish());
    })?;
    for alg in ChecksumAlgorithm::ALL {
        r.bench(format!("checksum {alg}"), || {
            let mut h = ChecksumHasher::new(alg);
            h.update(black_box(&block));
            black_box(h.finish_raw());
        })?;
    }
    Ok(())
}
