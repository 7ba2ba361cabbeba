//! `cairn bench`: load an S3 endpoint, time sequential file reads for
//! comparison, and microbenchmark the per-byte work of the data path.
//!
//! Every subcommand prints one human-readable line per result, or one JSON
//! object per line with `--json` (what `scripts/bench` consumes).

mod cat;
mod lean;
mod micro;
mod s3load;
mod stats;

use std::time::Duration;

pub use cat::CatArgs;
pub use micro::MicroArgs;
pub use s3load::S3Args;

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Drive an S3 endpoint with C concurrent clients doing PUT, GET or a
    /// 50/50 mix of objects of one size; prints MiB/s, ops/s and latency
    /// p50/p99.
    S3(S3Args),
    /// Single-thread throughput (GB/s of input per core) of erasure coding,
    /// HighwayHash, MD5 and the S3 checksums.
    Micro(MicroArgs),
    /// Read a file sequentially with fixed-size reads and print MiB/s: the
    /// `cat` baseline for GET throughput from the same disk.
    Cat(CatArgs),
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::S3(args) => s3load::run(args).await,
        BenchCommand::Micro(args) => tokio::task::spawn_blocking(move || micro::run(&args)).await?,
        BenchCommand::Cat(args) => tokio::task::spawn_blocking(move || cat::run(&args)).await?,
    }
}

/// Parses a byte size: a plain number of bytes, or a number with a unit.
/// `K`/`KiB`/`k` are powers of 1024, `KB` powers of 1000 (likewise M, G, T).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected e.g. 4KiB, 1MiB, 64MiB"))?;
    let unit = unit.trim();
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => 1 << 10,
        "m" | "mi" | "mib" => 1 << 20,
        "g" | "gi" | "gib" => 1 << 30,
        "t" | "ti" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(format!("invalid size unit {unit:?} in {s:?}")),
    };
    let bytes = num * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("size {s:?} out of range"));
    }
    Ok(bytes.round() as u64)
}

/// Parses a duration: `10s`, `500ms`, `2m`, `1h`, or plain seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" => num,
        "ms" => num / 1000.0,
        "m" | "min" => num * 60.0,
        "h" => num * 3600.0,
        u => return Err(format!("invalid duration unit {u:?} in {s:?}")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("duration {s:?}: {e}"))
}

/// A byte size the way people write it (`4KiB`, `1MiB`, `64MiB`, `1000B`).
pub(crate) fn human_size(n: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (m, u) in UNITS {
        if n >= m && n.is_multiple_of(m) {
            return format!("{}{u}", n / m);
        }
    }
    for (m, u) in UNITS {
        if n >= m {
            return format!("{:.2}{u}", n as f64 / m as f64);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("10KB"), Ok(10_000));
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("3 parsecs").is_err());
        assert_eq!(human_size(4096), "4KiB");
        assert_eq!(human_size(64 << 20), "64MiB");
        assert_eq!(human_size(1000), "1000B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1y").is_err());
    }
}
