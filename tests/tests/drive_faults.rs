//! Drive faults on a running server (issue 3, tests d and e):
//! (d) two drives on small tmpfs filesystems fill up: writes fail cleanly
//! with 507 `StorageFull`, stored objects stay whole, writes work again once
//! space is freed; (e) a drive made unresponsive (an object's `cairn.meta`
//! replaced by a FIFO, so opening it blocks forever) is marked offline and
//! GETs keep their normal latency.
//!
//! Default layout, 4 drives: 2 data + 2 parity; a write needs 3 drives.
//! Both tests need root (mount, mkfifo on drive folders).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use cairn_tests::data::{KIB, MIB, random_bytes, same_bytes};
use cairn_tests::metrics::metric;
use cairn_tests::tmpfs::Tmpfs;
use cairn_tests::{Server, StartOpts, bucket_name, err_code, err_status};

// ---------------------------------------------------------------- helpers

struct Obj {
    key: String,
    data: Vec<u8>,
}

async fn get_bytes(c: &Client, b: &str, key: &str) -> Result<Vec<u8>> {
    let r = c
        .get_object()
        .bucket(b)
        .key(key)
        .send()
        .await
        .map_err(|e| anyhow!("GET {b}/{key}: HTTP {:?} {}", err_status(&e), err_code(&e)))?;
    Ok(r.body.collect().await?.into_bytes().to_vec())
}

async fn check_objects(c: &Client, b: &str, objs: &[Obj], when: &str) -> Result<()> {
    for o in objs {
        let got = get_bytes(c, b, &o.key)
            .await
            .with_context(|| when.to_string())?;
        same_bytes(&format!("{when}: GET {}", o.key), &got, &o.data)?;
    }
    Ok(())
}

/// Bytes available on the filesystem of `p` (`df`).
fn free_bytes(p: &Path) -> Result<u64> {
    let out =
        cairn_tests::cmd::run_stdout(Command::new("df").args(["-B1", "--output=avail"]).arg(p))?;
    out.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("df {}: {out}", p.display()))
}

fn sh(cmd: &mut Command) -> Result<()> {
    cairn_tests::run(cmd).map(|_| ())
}

/// A server whose drives may sit on tmpfs mounts: on drop (also on panic)
/// the server is killed first, then the mounts are unmounted, then the
/// server's temporary folder is removed.
struct MountedServer {
    server: Server,
    mounts: Vec<Tmpfs>,
}

impl Drop for MountedServer {
    fn drop(&mut self) {
        let _ = self.server.kill();
        // each unmounts as it drops (lazily when still busy)
        while self.mounts.pop().is_some() {}
    }
}

const TMPFS_SIZE: &str = "24m";

// ---------------------------------------------------------------- (d)

/// (d) Two of four drives on 24 MiB tmpfs filesystems. 4 MiB objects put
/// 2 MiB (plus block hashes) on every drive, so after about ten of them the
/// two small drives are full and a write can reach only 2 drives, below the
/// write quorum of 3: the PUT must fail with HTTP 507 `StorageFull`, a
/// multipart part likewise, every acknowledged object must read back
/// byte-identical, and after deleting objects writes must succeed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_drives_fail_writes_cleanly() -> Result<()> {
    let mut s = Server::start(StartOpts::default()).await?;
    // Move drives 1 and 2 onto tmpfs: stop the server, mount a tmpfs over
    // each folder and put its (formatted) contents back, start again.
    s.kill()?;
    let mut fx = MountedServer {
        server: s,
        mounts: Vec::new(),
    };
    let small: Vec<PathBuf> = fx.server.drives()[..2].to_vec();
    for d in &small {
        let saved = d.with_extension("saved");
        std::fs::rename(d, &saved)?;
        std::fs::create_dir(d)?;
        fx.mounts.push(Tmpfs::mount(d, TMPFS_SIZE)?);
        sh(Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", saved.display()))
            .arg(d))?;
        std::fs::remove_dir_all(&saved)?;
    }
    fx.server.restart().await?;
    let s = &fx.server;
    let c = s.s3();
    let b = bucket_name("full");
    c.create_bucket().bucket(&b).send().await?;

    // An object bigger than the small drives: its shards run out of space
    // there, and the failed write frees what it wrote, so the drives look
    // empty again when the error is chosen: still 507, not 503.
    let r = c
        .put_object()
        .bucket(&b)
        .key("too-big")
        .body(ByteStream::from(random_bytes(64 * MIB, 7)))
        .send()
        .await;
    cairn_tests::expect_err(
        "PUT bigger than the small drives",
        r,
        507,
        Some("StorageFull"),
    )
    .with_context(|| format!("server log:\n{}", s.log()))?;

    // Seeds: an inline object, a streamed one, and a multipart upload with
    // its first part already stored.
    let mut acked = Vec::new();
    for (key, len, seed) in [("seed/inline", KIB, 1u64), ("seed/three-mib", 3 * MIB, 2)] {
        let data = random_bytes(len, seed);
        c.put_object()
            .bucket(&b)
            .key(key)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .with_context(|| format!("PUT {key}"))?;
        acked.push(Obj {
            key: key.into(),
            data,
        });
    }
    let mp_key = "seed/multipart";
    let upload_id = c
        .create_multipart_upload()
        .bucket(&b)
        .key(mp_key)
        .send()
        .await?
        .upload_id()
        .context("UploadId")?
        .to_string();
    let part1 = random_bytes(5 * MIB, 3);
    let e1 = c
        .upload_part()
        .bucket(&b)
        .key(mp_key)
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from(part1.clone()))
        .send()
        .await
        .context("UploadPart 1 (drives not full yet)")?
        .e_tag()
        .unwrap_or_default()
        .to_string();

    // Fill until a PUT fails.
    let mut failed = None;
    for i in 0..40u64 {
        let key = format!("fill/{i:02}");
        let data = random_bytes(4 * MIB, 100 + i);
        match c
            .put_object()
            .bucket(&b)
            .key(&key)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
        {
            Ok(_) => acked.push(Obj { key, data }),
            Err(e) => {
                failed = Some((key, err_status(&e), err_code(&e)));
                break;
            }
        }
    }
    let free: Vec<u64> = small.iter().map(|d| free_bytes(d)).collect::<Result<_>>()?;
    let Some((failed_key, status, code)) = failed else {
        bail!(
            "40 PUTs of 4 MiB all succeeded with two drives on {TMPFS_SIZE} tmpfs (free now {free:?})"
        );
    };
    eprintln!(
        "PUT {failed_key} failed after {} acknowledged fill objects: HTTP {status:?} {code}; tmpfs free {free:?}",
        acked.len() - 2
    );
    ensure!(
        status == Some(507) && code == "StorageFull",
        "PUT {failed_key} with 2 of 4 drives full (tmpfs free {free:?}): got HTTP {status:?} {code}, expected HTTP 507 StorageFull; server log:\n{}",
        s.log()
    );

    // Still full: another PUT and a multipart part fail the same way.
    let r = c
        .put_object()
        .bucket(&b)
        .key("fill/again")
        .body(ByteStream::from(random_bytes(4 * MIB, 99)))
        .send()
        .await;
    cairn_tests::expect_err("second PUT while full", r, 507, Some("StorageFull"))?;
    let part2 = random_bytes(8 * MIB, 4);
    let r = c
        .upload_part()
        .bucket(&b)
        .key(mp_key)
        .upload_id(&upload_id)
        .part_number(2)
        .body(ByteStream::from(part2.clone()))
        .send()
        .await;
    cairn_tests::expect_err("UploadPart 2 while full", r, 507, Some("StorageFull"))
        .with_context(|| format!("server log:\n{}", s.log()))?;

    // Nothing stored was harmed, and the failed keys do not exist.
    check_objects(&c, &b, &acked, "drives full").await?;
    for key in [failed_key.as_str(), "fill/again", "too-big"] {
        match c.get_object().bucket(&b).key(key).send().await {
            Ok(_) => bail!("{key} exists although its PUT failed"),
            Err(e) => ensure!(
                err_code(&e) == "NoSuchKey",
                "GET {key} (failed PUT): HTTP {:?} {}",
                err_status(&e),
                err_code(&e)
            ),
        }
    }
    let listed = c.list_objects_v2().bucket(&b).send().await?;
    let mut keys: Vec<&str> = listed.contents().iter().filter_map(|x| x.key()).collect();
    keys.sort();
    let mut want: Vec<&str> = acked.iter().map(|o| o.key.as_str()).collect();
    want.sort();
    ensure!(keys == want, "listing while full: {keys:?}, want {want:?}");

    // Free space: delete all fill objects but the first two.
    let (keep, gone): (Vec<Obj>, Vec<Obj>) = acked
        .into_iter()
        .partition(|o| !o.key.starts_with("fill/") || o.key.as_str() < "fill/02");
    for o in &gone {
        c.delete_object()
            .bucket(&b)
            .key(&o.key)
            .send()
            .await
            .with_context(|| format!("DELETE {} while full", o.key))?;
    }
    // Deleted data dirs may be removed asynchronously: wait until both
    // small drives have room for a few objects.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let free: Vec<u64> = small.iter().map(|d| free_bytes(d)).collect::<Result<_>>()?;
        if free.iter().all(|&f| f >= 12 * MIB as u64) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "20 s after deleting {} objects the tmpfs drives have only {free:?} bytes free",
            gone.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut objs = keep;
    let data = random_bytes(4 * MIB, 7);
    c.put_object()
        .bucket(&b)
        .key("after/freed")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "PUT after freeing space: HTTP {:?} {}; server log:\n{}",
                err_status(&e),
                err_code(&e),
                s.log()
            )
        })?;
    objs.push(Obj {
        key: "after/freed".into(),
        data,
    });
    // The multipart upload continues: part 2 again, then complete.
    let e2 = c
        .upload_part()
        .bucket(&b)
        .key(mp_key)
        .upload_id(&upload_id)
        .part_number(2)
        .body(ByteStream::from(part2.clone()))
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "UploadPart 2 after freeing space: HTTP {:?} {}",
                err_status(&e),
                err_code(&e)
            )
        })?
        .e_tag()
        .unwrap_or_default()
        .to_string();
    c.complete_multipart_upload()
        .bucket(&b)
        .key(mp_key)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(e1).build())
                .parts(CompletedPart::builder().part_number(2).e_tag(e2).build())
                .build(),
        )
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "CompleteMultipartUpload after freeing space: HTTP {:?} {}",
                err_status(&e),
                err_code(&e)
            )
        })?;
    let mut whole = part1;
    whole.extend_from_slice(&part2);
    objs.push(Obj {
        key: mp_key.into(),
        data: whole,
    });
    check_objects(&c, &b, &objs, "after freeing space").await?;
    // And across a restart (what is on the tmpfs drives is whole).
    fx.server.restart().await?;
    let c = fx.server.s3();
    check_objects(&c, &b, &objs, "after freeing space and a restart").await?;
    Ok(())
}

// ---------------------------------------------------------------- (e)

/// Opens the FIFO for writing without blocking (works once a reader is
/// blocked in open) and closes it: every stuck reader sees EOF.
fn release_fifo(p: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(p)
        .with_context(|| format!("open {} for writing", p.display()))?;
    drop(f);
    Ok(())
}

/// (e) One drive stops answering for an object (its `cairn.meta` is a FIFO
/// on drive 3): the first GET waits for the drive timeout (3 s) and returns
/// the right bytes; the drive is then offline in `/_cairn/metrics`, and GETs go on
/// at their normal latency instead of waiting for the timeout again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresponsive_drive_is_marked_offline() -> Result<()> {
    // The scanner's first cycle runs at start (no objects yet), the next
    // one in an hour: only the requests below touch the FIFO. The scanner
    // stays enabled because the drive monitor runs with it.
    let s = Server::start(StartOpts {
        extra_args: vec!["--scanner-interval-secs".into(), "3600".into()],
        ..StartOpts::default()
    })
    .await?;
    let c = s.s3();
    let b = bucket_name("hang");
    c.create_bucket().bucket(&b).send().await?;
    let mut others = Vec::new();
    for (i, len) in [
        10 * KIB,
        300 * KIB,
        MIB,
        2 * MIB + 5,
        200 * KIB,
        3 * MIB,
        1000,
    ]
    .into_iter()
    .enumerate()
    {
        let data = random_bytes(len, 10 + i as u64);
        let key = format!("other/{i}");
        c.put_object()
            .bucket(&b)
            .key(&key)
            .body(ByteStream::from(data.clone()))
            .send()
            .await?;
        others.push(Obj { key, data });
    }
    let victim = random_bytes(3 * MIB + 17, 1);
    c.put_object()
        .bucket(&b)
        .key("victim")
        .body(ByteStream::from(victim.clone()))
        .send()
        .await?;

    let m = s.metrics_text().await?;
    ensure!(
        metric(&m, "cairn_drives_offline") == Some(0.0),
        "before: cairn_drives_offline {:?}",
        metric(&m, "cairn_drives_offline")
    );

    let meta = s.drives()[2].join(&b).join("victim").join("cairn.meta");
    let orig_meta = std::fs::read(&meta).with_context(|| format!("read {}", meta.display()))?;
    std::fs::remove_file(&meta)?;
    sh(Command::new("mkfifo").arg("-m").arg("600").arg(&meta))?;

    // The first GET meets the hung drive: it may wait for the timeout once.
    // The drive monitor (every 5 s) clears the mark when the drive answers
    // its probe, which a FIFO in one object folder does; so if the mark is
    // already gone when /_cairn/metrics is read, the GET is repeated (at most 3
    // times) to catch it marked.
    let mut marked = None;
    for attempt in 1..=3 {
        let t = Instant::now();
        let got = get_bytes(&c, &b, "victim").await.with_context(|| {
            format!("GET victim with its meta hung on drive 3 (attempt {attempt})")
        })?;
        let took = t.elapsed();
        same_bytes("GET victim with drive 3 hung", &got, &victim)?;
        ensure!(
            took < Duration::from_secs(15),
            "GET victim with drive 3 hung took {took:?}"
        );
        let m = s.metrics_text().await?;
        let (on, off) = (
            metric(&m, "cairn_drives_online"),
            metric(&m, "cairn_drives_offline"),
        );
        eprintln!(
            "attempt {attempt}: GET victim took {took:?}; drives online {on:?} offline {off:?}"
        );
        if off == Some(1.0) && on == Some(3.0) {
            marked = Some(took);
            break;
        }
    }
    ensure!(
        marked.is_some(),
        "after GETs that met a hung drive, /_cairn/metrics never showed cairn_drives_offline 1 / online 3; server log:\n{}",
        s.log()
    );

    // Further GETs do not wait for the timeout: 20 GETs in well under
    // 20 x 3 s.
    let t = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let o = &others[i % others.len()];
        let t1 = Instant::now();
        let got = get_bytes(&c, &b, &o.key)
            .await
            .context("GET with drive 3 marked offline")?;
        slowest = slowest.max(t1.elapsed());
        same_bytes(
            &format!("GET {} with drive 3 offline", o.key),
            &got,
            &o.data,
        )?;
    }
    let total = t.elapsed();
    eprintln!("20 GETs of other objects with drive 3 offline: {total:?} (slowest {slowest:?})");
    ensure!(
        total < Duration::from_secs(10),
        "20 GETs with drive 3 marked offline took {total:?} (slowest {slowest:?}): they waited on the hung drive; server log:\n{}",
        s.log()
    );
    // GETs of the hung object itself skip the marked drive too: the mark
    // stays while the first read is still stuck in it (set.rs
    // `run_on_drives`: a probe that answers clears it only with nothing in
    // flight), so none of them waits for the drive timeout again.
    let t = Instant::now();
    let mut lats = Vec::new();
    while t.elapsed() < Duration::from_secs(8) {
        let t1 = Instant::now();
        let got = get_bytes(&c, &b, "victim")
            .await
            .context("GET victim again")?;
        lats.push(t1.elapsed().as_millis());
        same_bytes("GET victim again", &got, &victim)?;
    }
    let slow: Vec<u128> = lats.iter().copied().filter(|&l| l >= 1000).collect();
    eprintln!(
        "{} GETs of the hung object over 8 s: {} waited >= 1 s ({slow:?} ms); the others {} ms at most",
        lats.len(),
        slow.len(),
        lats.iter().filter(|&&l| l < 1000).max().unwrap_or(&0)
    );
    ensure!(
        slow.is_empty() && lats.len() >= 5,
        "GETs of the hung object after the mark waited on the drive: {lats:?} ms; server log:\n{}",
        s.log()
    );

    // Writes go on too (3 drives answer: the write quorum).
    let fresh = random_bytes(2 * MIB, 5);
    c.put_object()
        .bucket(&b)
        .key("written/while-hung")
        .body(ByteStream::from(fresh.clone()))
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "PUT with drive 3 hung: HTTP {:?} {}",
                err_status(&e),
                err_code(&e)
            )
        })?;
    same_bytes(
        "GET written/while-hung",
        &get_bytes(&c, &b, "written/while-hung").await?,
        &fresh,
    )?;

    // The drive comes back: release the stuck readers, put the real meta
    // back, and the monitor (every 5 s) brings the drive online again.
    release_fifo(&meta)?;
    std::fs::remove_file(&meta)?;
    std::fs::write(&meta, &orig_meta)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = s.metrics_text().await?;
        if metric(&m, "cairn_drives_offline") == Some(0.0)
            && metric(&m, "cairn_drives_online") == Some(4.0)
        {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "20 s after the drive answers again, /_cairn/metrics: online {:?} offline {:?}",
            metric(&m, "cairn_drives_online"),
            metric(&m, "cairn_drives_offline")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let t = Instant::now();
    same_bytes(
        "GET victim after the drive answers again",
        &get_bytes(&c, &b, "victim").await?,
        &victim,
    )?;
    ensure!(
        t.elapsed() < Duration::from_secs(2),
        "GET victim after recovery took {:?}",
        t.elapsed()
    );
    check_objects(&c, &b, &others, "after the drive answers again").await?;
    Ok(())
}
