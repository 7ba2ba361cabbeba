//! Random writes inside big files (issue 18): a seeded sequence of
//! pwrites and truncates applied through a front (FUSE, NFS) and to a
//! local model file, the streamed comparisons of the results, and the
//! server's cost of them (bytes its process wrote, bytes its drives hold).

use std::collections::HashSet;
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};

use crate::data::{Generator, KIB, MIB, random_bytes};

/// The store's extent (the unit a patch re-encodes).
pub const EXTENT: u64 = 4 << 20;
/// Bytes of shards a 2+2 set writes per byte of data.
pub const EC_OVERHEAD: u64 = 2;

/// A size from the environment: bytes, or with a K/M/G suffix (binary).
pub fn env_size(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) => parse_size(&v).with_context(|| format!("{name}={v}")),
        Err(_) => Ok(default),
    }
}

/// A count from the environment.
pub fn env_count(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().with_context(|| format!("{name}={v}")),
        Err(_) => Ok(default),
    }
}

/// "1G", "64M", "512K", "1000" (binary units).
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&s[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = num.parse().context("not a size (e.g. 64M, 1G)")?;
    n.checked_mul(mult).context("size overflows")
}

/// One change to the file.
#[derive(Debug, Clone)]
pub enum Op {
    /// `len` pseudo-random bytes (from `seed`) at `off`.
    Write { off: u64, len: usize, seed: u64 },
    /// ftruncate / SETATTR size.
    Truncate { size: u64 },
}

impl Op {
    pub fn data(&self) -> Vec<u8> {
        match self {
            Op::Write { len, seed, .. } => random_bytes(*len, *seed),
            Op::Truncate { .. } => Vec::new(),
        }
    }

    /// The length of the file after this op, from `len` before it.
    pub fn len_after(&self, len: u64) -> u64 {
        match self {
            Op::Write { off, len: n, .. } => len.max(off + *n as u64),
            Op::Truncate { size } => *size,
        }
    }
}

/// What the sequence exercises: every kind appears (ops >= 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    OneByte,
    FourKib,
    HundredKib,
    FiveMib,
    /// Across a 4 MiB (extent) boundary.
    Cross4Mib,
    /// Across a 64 MiB boundary.
    Cross64Mib,
    /// Past the end, leaving a hole.
    Beyond,
    TruncateDown,
    TruncateUp,
}

pub const KINDS: [Kind; 9] = [
    Kind::OneByte,
    Kind::FourKib,
    Kind::HundredKib,
    Kind::FiveMib,
    Kind::Cross4Mib,
    Kind::Cross64Mib,
    Kind::Beyond,
    Kind::TruncateDown,
    Kind::TruncateUp,
];

/// A seeded sequence of `ops` operations on a file of about `base`
/// bytes: every kind in turn, shuffled; the file stays between about
/// base/2 and 5/4 base (truncates and writes past the end are turned
/// around at the bounds).
pub fn sequence(seed: u64, base: u64, ops: usize) -> Vec<(Kind, Op)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kinds: Vec<Kind> = (0..ops).map(|i| KINDS[i % KINDS.len()]).collect();
    kinds.shuffle(&mut rng);
    let mut len = base;
    let mut out = Vec::with_capacity(ops);
    for (i, mut kind) in kinds.into_iter().enumerate() {
        let grows = matches!(kind, Kind::Beyond | Kind::TruncateUp);
        if grows && len > base + base / 4 {
            kind = Kind::TruncateDown;
        } else if kind == Kind::TruncateDown && len < base / 2 {
            kind = Kind::TruncateUp;
        }
        let seed = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let at = |rng: &mut StdRng, n: usize| {
            rng.random_range(0..len.max(1).saturating_sub(n as u64).max(1))
        };
        let op = match kind {
            Kind::OneByte => Op::Write {
                off: at(&mut rng, 1),
                len: 1,
                seed,
            },
            Kind::FourKib => {
                // aligned half the time
                let mut off = at(&mut rng, 4 * KIB);
                if rng.random_bool(0.5) {
                    off &= !4095;
                }
                Op::Write {
                    off,
                    len: 4 * KIB,
                    seed,
                }
            }
            Kind::HundredKib => Op::Write {
                off: at(&mut rng, 100 * KIB),
                len: 100 * KIB,
                seed,
            },
            Kind::FiveMib => Op::Write {
                off: at(&mut rng, 5 * MIB),
                len: 5 * MIB,
                seed,
            },
            Kind::Cross4Mib | Kind::Cross64Mib => {
                let step = if kind == Kind::Cross4Mib {
                    EXTENT
                } else {
                    64 << 20
                };
                let n = rng.random_range(2..=300 * KIB);
                // a boundary inside the file when there is one
                let k = rng.random_range(1..=(len / step).max(1));
                let before = rng.random_range(1..n as u64);
                Op::Write {
                    off: k * step - before,
                    len: n,
                    seed,
                }
            }
            Kind::Beyond => {
                let gap = rng.random_range(1..=9 * MIB as u64);
                Op::Write {
                    off: len + gap,
                    len: rng.random_range(1..=200 * KIB),
                    seed,
                }
            }
            Kind::TruncateDown => Op::Truncate {
                size: rng.random_range(len / 2..len.max(1)),
            },
            Kind::TruncateUp => Op::Truncate {
                size: len + rng.random_range(1..=16 * MIB as u64),
            },
        };
        len = op.len_after(len);
        out.push((kind, op));
    }
    out
}

/// Applies `op` to a local file (the model), or to a file in the mount.
pub fn apply_file(f: &File, op: &Op) -> Result<()> {
    match op {
        Op::Write { off, .. } => f.write_all_at(&op.data(), *off)?,
        Op::Truncate { size } => f.set_len(*size)?,
    }
    Ok(())
}

/// Writes `len` pseudo-random bytes (from `seed`) to `files` alike,
/// sequentially in 1 MiB writes.
pub fn fill_files(files: &[&File], len: u64, seed: u64) -> Result<()> {
    let mut g = Generator::new(len, seed);
    let mut buf = vec![0u8; MIB];
    let mut off = 0u64;
    loop {
        let n = g.fill(&mut buf);
        if n == 0 {
            return Ok(());
        }
        let chunk = buf.get(..n).context("chunk")?;
        for f in files {
            f.write_all_at(chunk, off)?;
        }
        off += n as u64;
    }
}

/// Fails unless the object `b/k` holds exactly the model file's bytes:
/// the GET body is compared chunk by chunk as it streams (never held
/// whole), and the message names the first differing byte.
pub async fn compare_s3(c: &aws_sdk_s3::Client, b: &str, k: &str, model: &Path) -> Result<()> {
    let want = std::fs::metadata(model)?.len();
    let o = c
        .get_object()
        .bucket(b)
        .key(k)
        .send()
        .await
        .with_context(|| format!("GET {b}/{k}"))?;
    let got = o.content_length().unwrap_or(-1);
    ensure!(
        u64::try_from(got).ok() == Some(want),
        "S3 {b}/{k}: Content-Length {got}, the model has {want} bytes"
    );
    let mut f = File::open(model)?;
    let mut body = o.body;
    let mut off = 0u64;
    let mut buf = Vec::new();
    while let Some(chunk) = body
        .next()
        .await
        .transpose()
        .context("reading the GET body")?
    {
        ensure!(
            off + chunk.len() as u64 <= want,
            "S3 {b}/{k}: the body is longer than {want} bytes"
        );
        buf.resize(chunk.len(), 0);
        f.read_exact(&mut buf)?;
        if chunk[..] != buf[..] {
            let i = chunk
                .iter()
                .zip(&buf)
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            bail!(
                "S3 {b}/{k} differs from the model at byte {} (of {want})",
                off + i as u64
            );
        }
        off += chunk.len() as u64;
    }
    ensure!(
        off == want,
        "S3 {b}/{k}: body ended at {off} of {want} bytes"
    );
    Ok(())
}

/// `/proc/<pid>/io` of a process: what it caused to be written.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcIo {
    /// Bytes the process dirtied (page cache) or wrote directly. A small
    /// write into a clean large folio (ext4 on Linux >= 6.x caches files
    /// written in big writes in folios of up to 2 MiB) counts the whole
    /// folio.
    pub write_bytes: u64,
    /// Bytes passed to write syscalls (files, sockets, /dev/fuse).
    pub wchar: u64,
    /// Dirtied bytes dropped again before writeback (deleted files).
    pub cancelled_write_bytes: u64,
}

pub fn proc_io(pid: u32) -> Result<ProcIo> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .with_context(|| format!("reading /proc/{pid}/io"))?;
    let field = |name: &str| -> Result<u64> {
        s.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .with_context(|| format!("/proc/{pid}/io has no {name}"))?
            .trim()
            .parse()
            .with_context(|| format!("/proc/{pid}/io {name}"))
    };
    Ok(ProcIo {
        write_bytes: field("write_bytes")?,
        wchar: field("wchar")?,
        cancelled_write_bytes: field("cancelled_write_bytes")?,
    })
}

/// Bytes allocated (st_blocks, like du) by the files under `dirs`, each
/// inode counted once (hard links share); folders named `.cairn.sys` are
/// skipped when `skip_sys`.
pub fn allocated_bytes(dirs: &[PathBuf], skip_sys: bool) -> Result<u64> {
    fn walk(
        dir: &Path,
        skip_sys: bool,
        seen: &mut HashSet<(u64, u64)>,
        sum: &mut u64,
    ) -> Result<()> {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            // a folder removed while we walk (an old version's data dir)
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("read_dir {}", dir.display())),
        };
        for e in rd {
            let e = e?;
            if skip_sys && e.file_name() == ".cairn.sys" {
                continue;
            }
            let md = match std::fs::symlink_metadata(e.path()) {
                Ok(md) => md,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err.into()),
            };
            if md.is_dir() {
                walk(&e.path(), skip_sys, seen, sum)?;
            } else if seen.insert((md.dev(), md.ino())) {
                *sum += md.blocks() * 512;
            }
        }
        Ok(())
    }
    let (mut seen, mut sum) = (HashSet::new(), 0);
    for d in dirs {
        walk(d, skip_sys, &mut seen, &mut sum)?;
    }
    Ok(sum)
}

/// The extents `[off, off + len)` touches.
pub fn extents_of(off: u64, len: u64) -> std::ops::RangeInclusive<u64> {
    off / EXTENT..=(off + len.max(1) - 1) / EXTENT
}
