#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // a measurement: prints, asserts nothing timed
//! What a patch costs at the store (no front): 16 scattered 4 KiB writes
//! per patch into objects of growing size, so the per-patch time shows
//! whether it depends on the object's size (its record lists every
//! extent). A printout for BENCHMARKS.md, not a check:
//! `cargo test --release -p cairn-core --test patch_cost -- --ignored --nocapture`
//! (`CAIRN_PATCH_COST_SIZES=1024,4096` in MiB; drives in `CAIRN_PATCH_COST_DIR`).

use std::time::Instant;

use bytes::Bytes;
use cairn_api::{BucketName, ObjectKey, ObjectLayer, PatchOptions, patch_stream};
use cairn_core::ErasureSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for BENCHMARKS.md"]
async fn patch_cost_by_object_size() {
    let sizes: Vec<u64> = std::env::var("CAIRN_PATCH_COST_SIZES")
        .unwrap_or_else(|_| "256,1024,4096".into())
        .split(',')
        .map(|s| s.trim().parse::<u64>().unwrap() << 20)
        .collect();
    let base = std::env::var("CAIRN_PATCH_COST_DIR").unwrap_or_else(|_| "/var/tmp".into());
    for size in sizes {
        let t = tempfile::tempdir_in(&base).unwrap();
        let paths: Vec<_> = (0..4).map(|i| t.path().join(format!("d{i}"))).collect();
        let set = ErasureSet::open(paths, None).unwrap();
        let b = BucketName::new("cost").unwrap();
        let k = ObjectKey::new("f").unwrap();
        set.make_bucket(&b).await.unwrap();
        // a file written in full: every extent a part of its own
        let chunk = Bytes::from(vec![7u8; 4 << 20]);
        let fill: Vec<(u64, Bytes)> = (0..size / (4 << 20))
            .map(|i| (i * (4 << 20), chunk.clone()))
            .collect();
        let opts = |size| PatchOptions {
            size,
            ..Default::default()
        };
        set.patch_object(
            &b,
            &k,
            patch_stream(vec![(0, Bytes::from(vec![1u8; 200_000]))]),
            opts(200_000),
        )
        .await
        .unwrap();
        set.patch_object(&b, &k, patch_stream(fill), opts(size))
            .await
            .unwrap();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut times = Vec::new();
        for _ in 0..20 {
            let mut offs: Vec<u64> = (0..16)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % (size / 4096 - 1)) * 4096
                })
                .collect();
            offs.sort_unstable();
            offs.dedup();
            let changes = offs
                .into_iter()
                .map(|o| (o, Bytes::from(vec![9u8; 4096])))
                .collect();
            let t0 = Instant::now();
            set.patch_object(&b, &k, patch_stream(changes), opts(size))
                .await
                .unwrap();
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let parts = set
            .head_object(&b, &k, &Default::default())
            .await
            .unwrap()
            .parts_count
            .unwrap_or(1);
        println!(
            "object {} MiB ({parts} parts): patch of 16 x 4 KiB: median {:.0} ms, min {:.0} ms, max {:.0} ms",
            size >> 20,
            times[times.len() / 2],
            times[0],
            times[times.len() - 1]
        );
    }
}
