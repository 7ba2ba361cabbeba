//! Memory stays bounded under load: 4 clients each PUT and then GET a 2 GiB
//! object, streamed from a generator on the client side (never buffered),
//! while the server's RSS is sampled from /proc. Slow: #[ignore]d, run by
//! `scripts/rss-check` (CAIRN_LOAD_CLIENTS, CAIRN_LOAD_MIB, CAIRN_RSS_LIMIT_MIB
//! override the defaults 4, 2048, 256).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use cairn_tests::data::{Generator, MIB};
use cairn_tests::raw::finish_upload;
use cairn_tests::{Server, bucket_name};
use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (VmRSS, VmHWM) in KiB.
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "slow load test: run with scripts/rss-check"]
async fn rss_bounded_4_clients_2gib() -> Result<()> {
    let clients = env_u64("CAIRN_LOAD_CLIENTS", 4);
    let size = env_u64("CAIRN_LOAD_MIB", 2048) * MIB as u64;
    let limit_mib = env_u64("CAIRN_RSS_LIMIT_MIB", 256);
    let s = Server::start_default().await?;
    let pid = s.pid().context("pid")?;
    let b = bucket_name("load");
    s.s3().create_bucket().bucket(&b).send().await?;
    let idle = rss_kib(pid).context("read /proc status")?;

    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some((rss, _)) = rss_kib(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..clients {
        let rc = s.raw();
        let b = b.clone();
        tasks.spawn(async move {
            let key = format!("big-{i}");
            let target = format!("/{b}/{key}");
            let mut st = rc.open_upload("PUT", &target, &[], size).await?;
            let mut g = Generator::new(size, 1000 + i);
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = g.fill(&mut buf);
                if n == 0 {
                    break;
                }
                st.write_all(&buf[..n]).await?;
            }
            let r = finish_upload(st).await?;
            ensure!(r.status == 200, "PUT {key}: {}", r.describe());
            let want = g.md5_hex();
            let etag = r
                .header("etag")
                .unwrap_or_default()
                .trim_matches('"')
                .to_string();
            ensure!(etag == want, "PUT {key}: ETag {etag}, want {want}");
            let mut h = Md5::new();
            let (status, _, n) = rc.get_streaming(&target, |d| h.update(d)).await?;
            ensure!(status == 200, "GET {key}: HTTP {status}");
            ensure!(n == size, "GET {key}: {n} bytes, want {size}");
            let got = hex::encode(h.finalize());
            ensure!(got == want, "GET {key}: md5 {got}, want {want}");
            anyhow::Ok(())
        });
    }
    let mut result = Ok(());
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r? {
            result = Err(e);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let hwm = rss_kib(pid).map(|x| x.1).unwrap_or(0);
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let peak_rss = peak.load(Ordering::Relaxed);
    let total_mib = (clients * 2 * size) as f64 / MIB as f64;
    println!(
        "rss-check: {clients} clients x {} MiB PUT+GET in {secs:.1}s ({:.0} MiB/s total); server RSS idle {} MiB, peak sampled VmRSS {} MiB, VmHWM {} MiB (limit {limit_mib} MiB)",
        size / MIB as u64,
        total_mib / secs,
        idle.0 / 1024,
        peak_rss / 1024,
        hwm / 1024
    );
    result?;
    ensure!(
        hwm / 1024 < limit_mib,
        "server peak RSS (VmHWM) {} MiB >= {limit_mib} MiB",
        hwm / 1024
    );
    Ok(())
}
