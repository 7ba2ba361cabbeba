//! Faults on a running server: lost drives, bitrot, SIGKILL mid-PUT.
//!
//! Default layout, 4 drives: 2 data + 2 parity (M = 2).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use cairn_tests::data::{Generator, KIB, MIB, random_bytes, same_bytes};
use cairn_tests::{Server, StartOpts, bucket_name, err_code, err_status, raw};
use tokio::io::AsyncWriteExt;

const M: usize = 2;

/// How long the heal queue may take to drain after a damaged read.
const HEAL_IDLE: Duration = Duration::from_secs(20);

struct Obj {
    key: String,
    data: Vec<u8>,
}

/// 0 bytes, 1 KiB (inline), 3 MiB, and a 12 MiB multipart object.
async fn seed(c: &Client, b: &str) -> Result<Vec<Obj>> {
    c.create_bucket().bucket(b).send().await?;
    let mut objs = Vec::new();
    for (key, len, seed) in [
        ("empty", 0, 1),
        ("dir/inline-1k", KIB, 2),
        ("dir/three-mib", 3 * MIB, 3),
    ] {
        let data = random_bytes(len, seed);
        c.put_object()
            .bucket(b)
            .key(key)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .with_context(|| format!("PUT {key}"))?;
        objs.push(Obj {
            key: key.into(),
            data,
        });
    }
    let key = "multi/part";
    let id = c
        .create_multipart_upload()
        .bucket(b)
        .key(key)
        .send()
        .await?
        .upload_id()
        .context("UploadId")?
        .to_string();
    let mut data = Vec::new();
    let mut parts = Vec::new();
    for (n, len) in [(1, 5 * MIB), (2, 5 * MIB), (3, 2 * MIB + 7)] {
        let p = random_bytes(len, 100 + n as u64);
        let e = c
            .upload_part()
            .bucket(b)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await?
            .e_tag()
            .unwrap_or_default()
            .to_string();
        parts.push(CompletedPart::builder().part_number(n).e_tag(e).build());
        data.extend_from_slice(&p);
    }
    c.complete_multipart_upload()
        .bucket(b)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await?;
    objs.push(Obj {
        key: key.into(),
        data,
    });
    Ok(objs)
}

async fn check_all(c: &Client, b: &str, objs: &[Obj], when: &str) -> Result<()> {
    for o in objs {
        let r = c
            .get_object()
            .bucket(b)
            .key(&o.key)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "{when}: GET {b}/{}: HTTP {:?} {}",
                    o.key,
                    err_status(&e),
                    err_code(&e)
                )
            })?;
        let got = r.body.collect().await?.into_bytes();
        same_bytes(&format!("{when}: GET {}", o.key), &got, &o.data)?;
        // and a range read in the middle
        if o.data.len() > 10 {
            let (from, to) = (o.data.len() / 3, o.data.len() / 3 + 9);
            let r = c
                .get_object()
                .bucket(b)
                .key(&o.key)
                .range(format!("bytes={from}-{to}"))
                .send()
                .await
                .with_context(|| format!("{when}: ranged GET {}", o.key))?;
            same_bytes(
                &format!("{when}: range of {}", o.key),
                &r.body.collect().await?.into_bytes(),
                &o.data[from..=to],
            )?;
        }
    }
    let listed = c.list_objects_v2().bucket(b).send().await?;
    let mut keys: Vec<&str> = listed.contents().iter().filter_map(|x| x.key()).collect();
    keys.sort();
    let mut want: Vec<&str> = objs.iter().map(|o| o.key.as_str()).collect();
    want.sort();
    ensure!(keys == want, "{when}: listing {keys:?}, want {want:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m_drives_deleted_every_object_reads_back() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("lost");
    let objs = seed(&c, &b).await?;
    check_all(&c, &b, &objs, "healthy").await?;
    for d in &s.drives()[..M] {
        std::fs::remove_dir_all(d).with_context(|| format!("rm -rf {}", d.display()))?;
    }
    check_all(&c, &b, &objs, "2 of 4 drive folders deleted").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_drive_deleted_reads_and_writes_go_on() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("one");
    let mut objs = seed(&c, &b).await?;
    std::fs::remove_dir_all(&s.drives()[3])?;
    check_all(&c, &b, &objs, "1 drive deleted").await?;
    let data = random_bytes(2 * MIB + 3, 77);
    c.put_object()
        .bucket(&b)
        .key("written/with-3-drives")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .context("PUT with 3 of 4 drives (write quorum is 3)")?;
    objs.push(Obj {
        key: "written/with-3-drives".into(),
        data,
    });
    check_all(&c, &b, &objs, "after a write with 1 drive gone").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_replaced_by_files_or_renamed_away() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("file");
    let objs = seed(&c, &b).await?;
    // drive 2: replaced by a plain file; drive 4: renamed away
    let d2 = &s.drives()[1];
    std::fs::rename(d2, d2.with_extension("moved"))?;
    std::fs::write(d2, b"not a directory")?;
    let d4 = &s.drives()[3];
    std::fs::rename(d4, d4.with_extension("moved"))?;
    check_all(&c, &b, &objs, "drive 2 replaced by a file, drive 4 renamed").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_parity_fails_with_503_never_wrong_bytes() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("gone");
    let objs = seed(&c, &b).await?;
    for d in &s.drives()[..M + 1] {
        std::fs::rename(d, d.with_extension("moved"))?;
    }
    for o in &objs {
        match c.get_object().bucket(&b).key(&o.key).send().await {
            Ok(r) => {
                let got = r.body.collect().await;
                bail!(
                    "GET {} with 3 of 4 drives gone succeeded (HTTP 200, body {:?} bytes, expected bytes {}); expected HTTP 503 ServiceUnavailable",
                    o.key,
                    got.map(|g| g.into_bytes().len()),
                    o.data.len()
                );
            }
            Err(e) => {
                let (st, code) = (err_status(&e), err_code(&e));
                ensure!(
                    st == Some(503) && code == "ServiceUnavailable",
                    "GET {} with 3 of 4 drives gone: HTTP {st:?} {code}, expected 503 ServiceUnavailable",
                    o.key
                );
            }
        }
    }
    // new-big is larger than socket buffers: the 503 must reach a client
    // that sends its body without `Expect: 100-continue` (aws-sdk-s3 does).
    for (key, len) in [
        ("new-small", 100),
        ("new-3mib", 3 * MIB),
        ("new-big", 20 * MIB),
        ("dir/three-mib", 10),
    ] {
        match c
            .put_object()
            .bucket(&b)
            .key(key)
            .body(ByteStream::from(random_bytes(len, 5)))
            .send()
            .await
        {
            Ok(_) => bail!("PUT {key} with 3 of 4 drives gone succeeded; expected HTTP 503"),
            Err(e) => {
                let (st, code) = (err_status(&e), err_code(&e));
                ensure!(
                    st == Some(503) && code == "ServiceUnavailable",
                    "PUT {key} with 3 of 4 drives gone: HTTP {st:?} {code}, expected 503 ServiceUnavailable"
                );
            }
        }
    }
    let r = raw::get(&s.addr(), "/_cairn/health/ready").await?;
    ensure!(
        r.status == 503,
        "/_cairn/health/ready with 1 of 4 drives: HTTP {}",
        r.status
    );
    let r = raw::get(&s.addr(), "/_cairn/health/live").await?;
    ensure!(r.status == 200, "/_cairn/health/live: HTTP {}", r.status);
    Ok(())
}

/// Files under `<drive>/<bucket>/<key>/`.
fn object_files(drive: &Path, bucket: &str, key: &str) -> Result<Vec<PathBuf>> {
    let dir = drive.join(bucket).join(key);
    let mut out = Vec::new();
    for rel in cairn_tests::data::list_tree(&dir)
        .with_context(|| format!("object folder {} (on-disk layout)", dir.display()))?
    {
        out.push(dir.join(rel));
    }
    Ok(out)
}

fn flip(path: &Path, offset: usize) -> Result<Vec<u8>> {
    let orig = std::fs::read(path)?;
    ensure!(
        offset < orig.len(),
        "{} has only {} bytes",
        path.display(),
        orig.len()
    );
    let mut b = orig.clone();
    b[offset] ^= 0x5a;
    std::fs::write(path, &b)?;
    Ok(orig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_any_shard_is_detected() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("rot");
    let objs = seed(&c, &b).await?;
    let big = &objs[2];
    let small = &objs[1];
    assert_eq!(big.key, "dir/three-mib");
    for (i, d) in s.drives().iter().enumerate() {
        // part.1 of the 3 MiB object: a byte in the first block's shard and
        // one in the last block's shard
        let files = object_files(d, &b, &big.key)?;
        let part = files
            .iter()
            .find(|p| {
                p.file_name().is_some_and(|n| n == "part.1")
                    && p.parent()
                        .and_then(|x| x.file_name())
                        .is_some_and(|n| n.to_string_lossy().starts_with("cairn.data."))
            })
            .with_context(|| format!("no cairn.data.*/part.1 on drive {}: {files:?}", i + 1))?;
        let len = std::fs::metadata(part)?.len() as usize;
        for off in [40, len / 2, len - 3] {
            let orig = flip(part, off)?;
            let when = format!("byte {off} of {} flipped", part.display());
            let r = c
                .get_object()
                .bucket(&b)
                .key(&big.key)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!("{when}: GET HTTP {:?} {}", err_status(&e), err_code(&e))
                })?;
            same_bytes(&when, &r.body.collect().await?.into_bytes(), &big.data)?;
            // heal-on-read may be reinstalling this shard: restore it only
            // once the healer is done, or the write races its rename
            s.wait_heal_idle(HEAL_IDLE).await.context(when)?;
            std::fs::write(part, orig)?;
        }

        // cairn.meta of the inline object: flip a byte of the inline shard
        let meta = d.join(&b).join(&small.key).join("cairn.meta");
        let bytes = std::fs::read(&meta).with_context(|| format!("read {}", meta.display()))?;
        // data shards are slices of the object: find one, else (a parity
        // shard) flip a byte near the end, where the inline data sits
        let off = (0..small.data.len() - 32)
            .step_by(16)
            .find_map(|o| {
                let needle = &small.data[o..o + 32];
                bytes.windows(32).position(|w| w == needle).map(|p| p + 7)
            })
            .unwrap_or(bytes.len() - 40);
        let orig = flip(&meta, off)?;
        let when = format!("byte {off} of {} flipped", meta.display());
        let r = c
            .get_object()
            .bucket(&b)
            .key(&small.key)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!("{when}: GET HTTP {:?} {}", err_status(&e), err_code(&e))
            })?;
        same_bytes(&when, &r.body.collect().await?.into_bytes(), &small.data)?;
        s.wait_heal_idle(HEAL_IDLE).await.context(when)?;
        std::fs::write(&meta, orig)?;
    }
    // two shards rotten at once (= parity) still reads
    for d in &s.drives()[..M] {
        for p in object_files(d, &b, &objs[3].key)? {
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("part."))
            {
                flip(&p, 100)?;
            }
        }
    }
    check_all(&c, &b, &objs, "multipart shards rotten on 2 drives").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_put_keeps_old_version() -> Result<()> {
    let mut s = Server::start(StartOpts::default()).await?;
    let c = s.s3();
    let b = bucket_name("kill");
    c.create_bucket().bucket(&b).send().await?;
    let old = random_bytes(5 * MIB + 99, 11);
    let old_small = random_bytes(1000, 12);
    for (k, d) in [("victim", &old), ("victim-small", &old_small)] {
        c.put_object()
            .bucket(&b)
            .key(k)
            .body(ByteStream::from(d.clone()))
            .send()
            .await?;
    }

    let total: u64 = 200 * MIB as u64;
    let rc = s.raw();
    let mut streams = Vec::new();
    for key in ["victim", "victim-small", "brand-new"] {
        let st = rc
            .open_upload("PUT", &format!("/{b}/{key}"), &[], total)
            .await?;
        streams.push(st);
    }
    // stream slowly; kill after 24 MiB of each body is sent
    let mut g = Generator::new(total, 13);
    let mut buf = vec![0u8; 256 * KIB];
    let mut sent = 0usize;
    while sent < 24 * MIB {
        let n = g.fill(&mut buf);
        for st in &mut streams {
            st.write_all(&buf[..n])
                .await
                .context("server closed the upload early")?;
        }
        sent += n;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.kill()?;
    drop(streams);
    s.restart().await?;

    let c = s.s3();
    for (k, d) in [("victim", &old), ("victim-small", &old_small)] {
        let r = c.get_object().bucket(&b).key(k).send().await.map_err(|e| {
            anyhow::anyhow!(
                "GET {k} after SIGKILL mid-PUT and restart: HTTP {:?} {}",
                err_status(&e),
                err_code(&e)
            )
        })?;
        same_bytes(
            &format!("{k} after SIGKILL mid-PUT"),
            &r.body.collect().await?.into_bytes(),
            d,
        )?;
    }
    match c.get_object().bucket(&b).key("brand-new").send().await {
        Ok(r) => bail!(
            "brand-new exists after its PUT was killed ({:?} bytes)",
            r.content_length()
        ),
        Err(e) => ensure!(
            err_code(&e) == "NoSuchKey",
            "GET brand-new: {}",
            err_code(&e)
        ),
    }
    let l = c.list_objects_v2().bucket(&b).send().await?;
    let listed: Vec<(&str, i64)> = l
        .contents()
        .iter()
        .map(|o| (o.key().unwrap_or_default(), o.size().unwrap_or(-1)))
        .collect();
    ensure!(
        listed == [("victim", old.len() as i64), ("victim-small", 1000)],
        "listing after restart: {listed:?}"
    );
    // and the key can be written again
    c.put_object()
        .bucket(&b)
        .key("victim")
        .body(ByteStream::from_static(b"fresh"))
        .send()
        .await?;
    let r = c.get_object().bucket(&b).key("victim").send().await?;
    same_bytes(
        "rewrite after restart",
        &r.body.collect().await?.into_bytes(),
        b"fresh",
    )?;
    Ok(())
}

/// Bytes of one framed shard block of a full 1 MiB block (2+2): the
/// 32-byte hash and half a MiB of shard.
const FULL_FRAME: usize = 32 + 512 * KIB;

/// Flips a byte of shard block `block` of `key`'s part.1 on drives 0, 1
/// and 2: three of four shards bad, beyond parity.
fn lose_block(s: &Server, b: &str, key: &str, block: usize) -> Result<()> {
    for d in &s.drives()[..=M] {
        let part = object_files(d, b, key)?
            .into_iter()
            .find(|p| p.file_name().is_some_and(|n| n == "part.1"))
            .with_context(|| format!("no part.1 of {key} on {}", d.display()))?;
        flip(&part, block * FULL_FRAME + 40)?;
    }
    Ok(())
}

/// Issue 16: data damaged beyond parity is an error the client sees, never
/// a 200 whose body ends short. Damage the GET reads before its answer (any
/// block of an object up to 4 MiB, the first block of a longer one) is a
/// 500 InternalError; damage later in a long object cuts the connection
/// (the client reports an incomplete body). Each failed read is counted
/// and logged at ERROR naming the object and the block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_beyond_parity_is_an_error_never_a_short_body() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("lost");
    c.create_bucket().bucket(&b).send().await?;
    let cases = [
        ("small-last-block", 3 * MIB + 1234, 3),
        ("big-first-block", 10 * MIB, 0),
        ("big-block-7", 10 * MIB, 7),
    ];
    for (i, (key, len, _)) in cases.iter().enumerate() {
        c.put_object()
            .bucket(&b)
            .key(*key)
            .body(ByteStream::from(random_bytes(*len, 40 + i as u64)))
            .send()
            .await?;
    }
    for (key, _, block) in cases {
        lose_block(&s, &b, key, block)?;
    }

    for key in ["small-last-block", "big-first-block"] {
        match c.get_object().bucket(&b).key(key).send().await {
            Ok(r) => {
                let got = r.body.collect().await.map(|g| g.into_bytes().len());
                bail!("GET {key} beyond parity answered 200 (body: {got:?}); expected 500");
            }
            Err(e) => {
                let (st, code) = (err_status(&e), err_code(&e));
                ensure!(
                    st == Some(500) && code == "InternalError",
                    "GET {key} beyond parity: HTTP {st:?} {code}, expected 500 InternalError"
                );
            }
        }
    }

    // Past the start: the answer is 200 with the full length, and the body
    // ends with an error after the good blocks, never cleanly.
    let key = "big-block-7";
    let r = c.get_object().bucket(&b).key(key).send().await?;
    ensure!(r.content_length() == Some(10 * MIB as i64));
    // (an error is the SDK reporting the incomplete body)
    if let Ok(g) = r.body.collect().await {
        bail!(
            "GET {key}: the body ended cleanly after {} of {} bytes",
            g.into_bytes().len(),
            10 * MIB
        );
    }
    let mut seen = 0u64;
    match s
        .raw()
        .get_streaming(&format!("/{b}/{key}"), |chunk| seen += chunk.len() as u64)
        .await
    {
        Ok((status, _, n)) => bail!("raw GET {key}: HTTP {status} ended cleanly after {n} bytes"),
        // closed (or reset) before the Content-Length was reached
        Err(e) => ensure!(
            seen < 10 * MIB as u64,
            "raw GET {key}: {e:#} after all {seen} bytes"
        ),
    }

    let text = s.metrics_text().await?;
    let lost = cairn_tests::metrics::metric_of(&text, "cairn_unrecoverable_reads_total")?;
    ensure!(lost >= 4.0, "cairn_unrecoverable_reads_total is {lost}");
    let log = s.log();
    for (key, _, block) in cases {
        ensure!(
            log.lines().any(|l| l.contains("ERROR")
                && l.contains("object data lost")
                && l.contains(key)
                && l.contains(&format!("block={block}"))),
            "no ERROR line naming {key} block {block}:\n{log}"
        );
    }
    // the other objects and the server are unaffected
    c.put_object()
        .bucket(&b)
        .key("fine")
        .body(ByteStream::from(random_bytes(100, 1)))
        .send()
        .await?;
    ensure!(
        c.get_object()
            .bucket(&b)
            .key("fine")
            .send()
            .await?
            .body
            .collect()
            .await?
            .into_bytes()
            .len()
            == 100
    );
    Ok(())
}
