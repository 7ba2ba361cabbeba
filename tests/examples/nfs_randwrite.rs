//! The NFS side of scripts/bench-randwrite: fio's job (4 KiB random
//! writes, an fsync every 16) as an NFSv3 client does it, because Debian's
//! fio has no libnfs engine and nfs-rs commits every write: UNSTABLE
//! WRITEs of 4 KiB at random 4 KiB-aligned offsets of an existing file,
//! a COMMIT after every `sync_every` of them, for `runtime` seconds.
//! Prints one JSON line: writes, IOPS, COMMIT latency percentiles, and
//! the number of distinct 4 MiB extents written.
//!
//! Usage: nfs_randwrite PORT EXPORT PATH RUNTIME_SECS [SYNC_EVERY]
//! (PATH is `bucket/key` inside the export, laid out beforehand; offsets
//! fall within its GETATTR size).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use cairn_tests::nfs3;
use nfs3_client::nfs3_types::nfs3::{GETATTR3args, Nfs3Result, stable_how};
use rand::rngs::StdRng;
use rand::{Rng as _, RngCore as _, SeedableRng as _};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, port, export, path, runtime, rest @ ..] = args.as_slice() else {
        bail!("usage: nfs_randwrite PORT EXPORT PATH RUNTIME_SECS [SYNC_EVERY]");
    };
    let port: u16 = port.parse().context("PORT")?;
    let runtime = Duration::from_secs_f64(runtime.parse().context("RUNTIME_SECS")?);
    let sync_every: u64 = match rest.first() {
        Some(s) => s.parse().context("SYNC_EVERY")?,
        None => 16,
    };
    let mut c = nfs3::mount(port, export).await?;
    let fh = nfs3::lookup(&mut c, path).await?;
    let size = match c.getattr(&GETATTR3args { object: fh.clone() }).await? {
        Nfs3Result::Ok(ok) => ok.obj_attributes.size,
        Nfs3Result::Err((s, _)) => bail!("GETATTR {path}: {s:?}"),
    };
    let blocks = size / 4096;
    if blocks == 0 {
        bail!("{path} is {size} bytes: lay it out first");
    }
    let mut rng = StdRng::seed_from_u64(u64::from(std::process::id()));
    let mut buf = vec![0u8; 4096];
    rng.fill_bytes(&mut buf);
    let (mut writes, mut lat) = (0u64, Vec::new());
    // 4 MiB extents written: the export commits them once, at its idle commit
    let mut extents = std::collections::HashSet::new();
    let t0 = Instant::now();
    while t0.elapsed() < runtime || writes % sync_every != 0 {
        // a new stamp in every block written, so no write repeats bytes
        buf[..8].copy_from_slice(&writes.to_le_bytes());
        let off = rng.random_range(0..blocks) * 4096;
        extents.insert(off >> 22);
        nfs3::write(&mut c, &fh, off, &buf, stable_how::UNSTABLE).await?;
        writes += 1;
        if writes % sync_every == 0 {
            let t = Instant::now();
            nfs3::commit(&mut c, &fh).await?;
            lat.push(t.elapsed().as_nanos() as u64);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| -> u64 {
        let i = ((lat.len() as f64 * p / 100.0).ceil() as usize).clamp(1, lat.len().max(1)) - 1;
        lat.get(i).copied().unwrap_or(0)
    };
    println!(
        "{}",
        serde_json::json!({
            "writes": writes,
            "iops": writes as f64 / secs,
            "commits": lat.len(),
            "extents": extents.len(),
            "sync_p50_ns": pct(50.0),
            "sync_p90_ns": pct(90.0),
            "sync_p99_ns": pct(99.0),
        })
    );
    Ok(())
}
