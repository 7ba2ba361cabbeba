//! Durability (issue 3) on a running server, each test with real damage:
//! a replaced drive rebuilt by `cairn admin heal`, flipped bytes repaired by
//! the deep scanner, SIGKILL at random moments under concurrent traffic, and
//! drive state in `/_cairn/metrics` and `cairn admin info`.
//!
//! Default layout, 4 drives: 2 data + 2 parity (M = 2).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail, ensure};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use cairn_tests::data::{KIB, MIB, md5_hex, random_bytes, same_bytes};
use cairn_tests::metrics::{metric, metric_of};
use cairn_tests::{Server, StartOpts, admin, bucket_name, err_code, err_status};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Largest object stored inline in `cairn.meta`.
const INLINE_MAX: usize = 128 * KIB;

// ---------------------------------------------------------------- helpers

struct Obj {
    key: String,
    data: Vec<u8>,
}

async fn put(c: &Client, b: &str, key: &str, data: &[u8]) -> Result<()> {
    c.put_object()
        .bucket(b)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "PUT {b}/{key} ({} B): HTTP {:?} {}",
                data.len(),
                err_status(&e),
                err_code(&e)
            )
        })?;
    Ok(())
}

/// Uploads `parts` as one multipart object; returns the whole object.
async fn put_multipart(c: &Client, b: &str, key: &str, parts: &[Vec<u8>]) -> Result<Vec<u8>> {
    let id = c
        .create_multipart_upload()
        .bucket(b)
        .key(key)
        .send()
        .await
        .map_err(|e| anyhow!("CreateMultipartUpload {key}: {}", err_code(&e)))?
        .upload_id()
        .context("UploadId")?
        .to_string();
    let mut done = Vec::new();
    let mut whole = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let etag = c
            .upload_part()
            .bucket(b)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .map_err(|e| anyhow!("UploadPart {key} #{n}: {}", err_code(&e)))?
            .e_tag()
            .unwrap_or_default()
            .to_string();
        done.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
        whole.extend_from_slice(p);
    }
    c.complete_multipart_upload()
        .bucket(b)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .map_err(|e| anyhow!("CompleteMultipartUpload {key}: {}", err_code(&e)))?;
    Ok(whole)
}

/// GETs every object (whole, and a range for the larger ones) and checks
/// the listing names exactly these keys.
async fn check_all(c: &Client, b: &str, objs: &[Obj], when: &str) -> Result<()> {
    for o in objs {
        let r = c
            .get_object()
            .bucket(b)
            .key(&o.key)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "{when}: GET {b}/{} ({} B): HTTP {:?} {}",
                    o.key,
                    o.data.len(),
                    err_status(&e),
                    err_code(&e)
                )
            })?;
        let got = r.body.collect().await?.into_bytes();
        same_bytes(&format!("{when}: GET {}", o.key), &got, &o.data)?;
        if o.data.len() > 2 * MIB {
            let (from, to) = (o.data.len() / 2 - 100, o.data.len() / 2 + MIB);
            let r = c
                .get_object()
                .bucket(b)
                .key(&o.key)
                .range(format!("bytes={from}-{to}"))
                .send()
                .await
                .map_err(|e| anyhow!("{when}: ranged GET {}: {}", o.key, err_code(&e)))?;
            same_bytes(
                &format!("{when}: range {from}-{to} of {}", o.key),
                &r.body.collect().await?.into_bytes(),
                &o.data[from..=to],
            )?;
        }
    }
    let listed = list_sizes(c, b).await?;
    let want: BTreeMap<String, i64> = objs
        .iter()
        .map(|o| (o.key.clone(), o.data.len() as i64))
        .collect();
    ensure!(
        listed == want,
        "{when}: listing (key -> size) {listed:?}, want {want:?}"
    );
    Ok(())
}

/// Every key of the bucket with its listed size.
async fn list_sizes(c: &Client, b: &str) -> Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let r = c
            .list_objects_v2()
            .bucket(b)
            .set_continuation_token(token.clone())
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "ListObjectsV2 {b}: HTTP {:?} {}",
                    err_status(&e),
                    err_code(&e)
                )
            })?;
        for o in r.contents() {
            out.insert(
                o.key().unwrap_or_default().to_string(),
                o.size().unwrap_or(-1),
            );
        }
        match r.next_continuation_token() {
            Some(t) if r.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
}

/// The `cairn.data.*/part.N` files of an object on one drive, sorted.
fn part_files(drive: &Path, bucket: &str, key: &str) -> Result<Vec<PathBuf>> {
    let dir = drive.join(bucket).join(key);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("read_dir {}", dir.display()))? {
        let e = e?;
        if !e.file_name().to_string_lossy().starts_with("cairn.data.") {
            continue;
        }
        for p in std::fs::read_dir(e.path())? {
            let p = p?;
            if p.file_name().to_string_lossy().starts_with("part.") {
                out.push(p.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// XORs one byte of a file in place (no truncation, same inode).
fn flip_in_place(path: &Path, offset: u64) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset)?;
    b[0] ^= 0x5a;
    f.write_all_at(&b, offset)?;
    f.sync_all()?;
    Ok(())
}

fn describe_output(what: &str, out: &Output) -> String {
    format!(
        "`{what}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[derive(Debug, PartialEq, Eq)]
struct HealSummary {
    scanned: u64,
    healed: u64,
    rewritten: u64,
    bad_blocks: u64,
    failed: u64,
}

/// Parses `heal done in 0.0s: 3 objects scanned, 3 healed (3 drive copies
/// rewritten), 0 bad shard blocks found, 0 failed`.
fn parse_heal_summary(stdout: &str) -> Result<HealSummary> {
    let line = stdout
        .lines()
        .find(|l| l.contains("heal done in"))
        .with_context(|| format!("no `heal done in` summary line in:\n{stdout}"))?;
    let (_, rest) = line
        .split_once(": ")
        .with_context(|| format!("summary line: {line}"))?;
    let num_before = |word: &str| -> Result<u64> {
        let i = rest
            .find(word)
            .with_context(|| format!("`{word}` not in summary line: {line}"))?;
        let head = rest[..i].trim_end();
        let n = head
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or("");
        n.parse()
            .with_context(|| format!("no number before `{word}` in: {line}"))
    };
    Ok(HealSummary {
        scanned: num_before(" objects scanned")?,
        healed: num_before(" healed (")?,
        rewritten: num_before(" drive copies rewritten")?,
        bad_blocks: num_before(" bad shard blocks")?,
        failed: num_before(" failed")?,
    })
}

/// A string field of a flat JSON object (enough for `admin info --json`).
fn json_str_field(obj: &str, field: &str) -> Option<String> {
    let pat = format!("\"{field}\"");
    let i = obj.find(&pat)? + pat.len();
    let rest = obj[i..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// (path, state) of every drive object in `admin info --json` output.
fn drive_states(json: &str) -> Result<Vec<(String, String)>> {
    let start = json
        .find("\"drives\"")
        .with_context(|| format!("no \"drives\" in {json}"))?;
    let arr = &json[start..];
    let arr = &arr[arr.find('[').context("drives is not an array")?..];
    let arr = &arr[..arr.find(']').context("unterminated drives array")?];
    let mut out = Vec::new();
    for obj in arr.split('{').skip(1) {
        let obj = obj.split('}').next().unwrap_or("");
        let path =
            json_str_field(obj, "path").with_context(|| format!("drive without path: {obj}"))?;
        let state =
            json_str_field(obj, "state").with_context(|| format!("drive without state: {obj}"))?;
        out.push((path, state));
    }
    Ok(out)
}

/// The tail of the server's logs of its last two runs.
fn server_logs(s: &Server) -> String {
    let mut runs: Vec<(usize, PathBuf)> = std::fs::read_dir(s.dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let i = n
                .strip_prefix("server-")?
                .strip_suffix(".log")?
                .parse()
                .ok()?;
            Some((i, e.path()))
        })
        .collect();
    runs.sort();
    let mut out = String::new();
    for (i, p) in runs.iter().rev().take(2).rev() {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        out.push_str(&format!(
            "--- server run {i} (last {} lines) ---\n{}\n",
            lines.len() - from,
            lines[from..].join("\n")
        ));
    }
    out
}

/// ~42 objects: 0 B, 1 KiB, 128 KiB and 128 KiB + 1 (the inline edge),
/// 1 MiB, 3 MiB, and a 2-part multipart object.
async fn seed_mix(c: &Client, b: &str) -> Result<Vec<Obj>> {
    c.create_bucket()
        .bucket(b)
        .send()
        .await
        .map_err(|e| anyhow!("CreateBucket {b}: {}", err_code(&e)))?;
    let sizes = [0, KIB, MIB, 3 * MIB];
    let mut objs = Vec::new();
    for i in 0..40 {
        let len = sizes[i % sizes.len()];
        let key = format!("set/{}/obj-{i:02}-{len}", i % 3);
        let data = random_bytes(len, 1000 + i as u64);
        put(c, b, &key, &data).await?;
        objs.push(Obj { key, data });
    }
    for (key, len) in [
        ("edge/inline-max", INLINE_MAX),
        ("edge/inline-max+1", INLINE_MAX + 1),
    ] {
        let data = random_bytes(len, len as u64);
        put(c, b, key, &data).await?;
        objs.push(Obj {
            key: key.into(),
            data,
        });
    }
    let key = "multi/two-parts";
    let data = put_multipart(
        c,
        b,
        key,
        &[random_bytes(5 * MIB, 7001), random_bytes(MIB + 3, 7002)],
    )
    .await?;
    objs.push(Obj {
        key: key.into(),
        data,
    });
    Ok(objs)
}

/// Fails unless every object has a `cairn.meta` on `drive`, and objects
/// beyond the inline limit have their part files there.
fn assert_on_drive(drive: &Path, b: &str, objs: &[Obj], when: &str) -> Result<()> {
    let mut missing = Vec::new();
    for o in objs {
        let meta = drive.join(b).join(&o.key).join("cairn.meta");
        if !meta.is_file() {
            missing.push(format!("{} (no cairn.meta)", o.key));
            continue;
        }
        if o.data.len() > INLINE_MAX {
            let parts = part_files(drive, b, &o.key)?;
            let want = if o.key.starts_with("multi/") { 2 } else { 1 };
            if parts.len() != want {
                missing.push(format!("{} ({} part files: {parts:?})", o.key, parts.len()));
            }
        }
    }
    ensure!(
        missing.is_empty(),
        "{when}: {} of {} objects not whole on {}: {missing:?}",
        missing.len(),
        objs.len(),
        drive.display()
    );
    Ok(())
}

// ------------------------------------------------------------------ tests

/// (a) A drive folder is deleted and an empty one put in its place; `cairn
/// admin heal` (the CLI) rebuilds every object on it, proven by then
/// removing the two OTHER drives and reading everything back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_drive_is_rebuilt_by_admin_heal() -> Result<()> {
    // No scanner (and so no drive monitor): the admin heal alone must take
    // the empty drive and fill it.
    let s = Server::start(StartOpts {
        extra_args: vec!["--no-scanner".into()],
        ..StartOpts::default()
    })
    .await?;
    let c = s.s3();
    let b = bucket_name("replace");
    let objs = seed_mix(&c, &b).await?;
    check_all(&c, &b, &objs, "healthy").await?;

    let new = s.drives()[1].clone();
    std::fs::remove_dir_all(&new).with_context(|| format!("rm -rf {}", new.display()))?;
    std::fs::create_dir(&new)?;
    ensure!(
        std::fs::read_dir(&new)?.next().is_none(),
        "replacement drive not empty"
    );

    let t = Instant::now();
    let out = admin(&s, &["heal"], None).await?;
    let heal_time = t.elapsed();
    let what = "cairn admin heal";
    ensure!(
        out.status.success(),
        "{}\n{}",
        describe_output(what, &out),
        s.log()
    );
    let sum = parse_heal_summary(&String::from_utf8_lossy(&out.stdout))?;
    let n = objs.len() as u64;
    ensure!(
        sum == HealSummary {
            scanned: n,
            healed: n,
            rewritten: n,
            bad_blocks: 0,
            failed: 0
        },
        "{what} after replacing drive 2: summary {sum:?}, want {n} scanned, {n} healed, {n} rewritten, 0 bad, 0 failed\n{}\n{}",
        describe_output(what, &out),
        s.log()
    );
    eprintln!("admin heal of {n} objects onto the replacement drive: {heal_time:?}");
    ensure!(
        new.join(".cairn.sys").join("format.json").is_file(),
        "the replacement drive has no .cairn.sys/format.json after the heal"
    );
    assert_on_drive(&new, &b, &objs, "after cairn admin heal")?;

    // A second heal finds nothing to do.
    let out = admin(&s, &["heal", &b], None).await?;
    ensure!(
        out.status.success(),
        "{}",
        describe_output("cairn admin heal BUCKET", &out)
    );
    let again = parse_heal_summary(&String::from_utf8_lossy(&out.stdout))?;
    ensure!(
        again.scanned == n && again.healed == 0 && again.failed == 0,
        "second heal: {again:?}, want {n} scanned and nothing healed"
    );

    // Only the rebuilt drive and one original remain: every read needs the
    // rebuilt shards.
    for i in [0, 3] {
        std::fs::remove_dir_all(&s.drives()[i])?;
    }
    check_all(&c, &b, &objs, "drives 1 and 4 deleted, drive 2 rebuilt")
        .await
        .map_err(|e| anyhow!("{e:#}\n{}", s.log()))?;
    Ok(())
}

/// (b) One byte flipped in a part file of each of 100 objects (spread over
/// the 4 drives); the deep scanner puts every file back as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_scanner_repairs_flipped_bytes() -> Result<()> {
    let s = Server::start(StartOpts {
        extra_args: [
            "--scanner-interval-secs",
            "1",
            "--scanner-deep-every",
            "1",
            "--scanner-pause-ms",
            "0",
        ]
        .map(String::from)
        .to_vec(),
        ..StartOpts::default()
    })
    .await?;
    let c = s.s3();
    let b = bucket_name("scrub");
    c.create_bucket().bucket(&b).send().await?;
    let mut rng = StdRng::seed_from_u64(0xdee9);
    let mut objs = Vec::new();
    for i in 0..100 {
        let len = rng.random_range(200 * KIB..=3 * MIB / 2);
        let key = format!("rot/{}/o{i:03}", i % 7);
        let data = random_bytes(len, 5000 + i as u64);
        put(&c, &b, &key, &data).await?;
        objs.push(Obj { key, data });
    }

    // Save one part file per object, drive i % 4, then flip a byte in it.
    let mut saved: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        let drive = &s.drives()[i % 4];
        let parts = part_files(drive, &b, &o.key)?;
        let part = parts
            .first()
            .with_context(|| format!("no part file of {} on {}", o.key, drive.display()))?;
        let orig = std::fs::read(part)?;
        saved.push((part.clone(), orig));
    }
    // The scanner (every second, no pause) must not repair files before
    // all are flipped and checked: pause it, let an object in flight finish.
    let off = admin(&s, &["scanner", "off"], None).await?;
    ensure!(off.status.success(), "scanner off: {off:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = s.metrics_text().await?;
    let healed0 = metric_of(&before, "cairn_objects_healed_total")?;
    let bitrot0 = metric_of(&before, "cairn_bitrot_errors_total")?;
    for (path, orig) in &saved {
        let off = rng.random_range(0..orig.len() as u64);
        flip_in_place(path, off)?;
    }
    ensure!(
        saved
            .iter()
            .all(|(p, orig)| std::fs::read(p).is_ok_and(|now| now != *orig)),
        "a flipped file already equals its original"
    );
    let on = admin(&s, &["scanner", "on"], None).await?;
    ensure!(on.status.success(), "scanner on: {on:?}");

    let t = Instant::now();
    let deadline = t + Duration::from_secs(60);
    let mut bad: Vec<&Path>;
    loop {
        bad = saved
            .iter()
            .filter(|(p, orig)| std::fs::read(p).map_or(true, |now| now != *orig))
            .map(|(p, _)| p.as_path())
            .collect();
        if bad.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let after = s.metrics_text().await?;
    ensure!(
        bad.is_empty(),
        "after 60 s of deep scanning, {} of 100 damaged part files are still not byte-identical to their originals, e.g. {:?}\nmetrics: healed {:?} bitrot {:?} cycles {:?}\n{}",
        bad.len(),
        &bad[..bad.len().min(5)],
        metric(&after, "cairn_objects_healed_total"),
        metric(&after, "cairn_bitrot_errors_total"),
        metric(&after, "cairn_scanner_cycles_total"),
        s.log()
    );
    eprintln!(
        "deep scanner repaired 100 flipped part files in {:?}",
        t.elapsed()
    );
    let healed = metric_of(&after, "cairn_objects_healed_total")? - healed0;
    let bitrot = metric_of(&after, "cairn_bitrot_errors_total")? - bitrot0;
    ensure!(
        healed >= 100.0 && bitrot >= 100.0,
        "after repairing 100 objects with one bad block each: cairn_objects_healed_total went up by {healed}, cairn_bitrot_errors_total by {bitrot} (want >= 100 each)"
    );
    ensure!(
        metric_of(&after, "cairn_scanner_cycles_total")? >= 1.0,
        "cairn_scanner_cycles_total is 0 after the scanner healed"
    );
    check_all(&c, &b, &objs, "after the deep scanner healed").await?;
    Ok(())
}

// ------------------------------------------------- (c) the SIGKILL loop

/// What a key holds: nothing, or bytes known by length and MD5.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Content {
    #[default]
    Absent,
    Bytes {
        len: usize,
        md5: String,
    },
}

impl Content {
    fn of(data: &[u8]) -> Self {
        Content::Bytes {
            len: data.len(),
            md5: md5_hex(data),
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    /// State after the last acknowledged op.
    acked: Content,
    /// An op sent but not acknowledged (killed): it may or may not have
    /// taken effect.
    inflight: Option<Content>,
    /// Every acknowledged state, oldest first (for messages).
    history: Vec<Content>,
}

#[derive(Default)]
struct Counts {
    puts: AtomicU64,
    completes: AtomicU64,
    deletes: AtomicU64,
    gets: AtomicU64,
}

struct Traffic {
    bucket: String,
    model: Mutex<BTreeMap<String, Entry>>,
    stop: AtomicBool,
    /// Failures seen before the kill, and wrong answers at any time.
    errors: Mutex<Vec<String>>,
    counts: Counts,
}

enum OpErr {
    /// The request failed (expected once the server is being killed).
    Failed(String),
    /// A complete response with wrong content: always a failure.
    Wrong(String),
}

impl Traffic {
    fn begin(&self, key: &str, c: Content) {
        self.model
            .lock()
            .expect("model")
            .entry(key.to_string())
            .or_default()
            .inflight = Some(c);
    }

    fn ack(&self, key: &str) {
        let mut m = self.model.lock().expect("model");
        let e = m.entry(key.to_string()).or_default();
        if let Some(c) = e.inflight.take() {
            e.history.push(c.clone());
            e.acked = c;
        }
    }

    fn acked(&self, key: &str) -> Content {
        self.model
            .lock()
            .expect("model")
            .get(key)
            .map(|e| e.acked.clone())
            .unwrap_or_default()
    }
}

fn put_size(rng: &mut StdRng) -> usize {
    match rng.random_range(0..10) {
        0 => 0,
        1..=3 => rng.random_range(1..=INLINE_MAX + 1),
        _ => rng.random_range(INLINE_MAX..=3 * MIB),
    }
}

fn sdk_err<E, R>(what: &str, e: &aws_sdk_s3::error::SdkError<E, R>) -> OpErr
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    OpErr::Failed(format!("{what}: {}", err_code(e)))
}

async fn one_op(c: &Client, t: &Traffic, key: &str, rng: &mut StdRng) -> Result<(), OpErr> {
    let b = t.bucket.as_str();
    let p = rng.random_range(0..100);
    if p < 55 {
        let data = random_bytes(put_size(rng), rng.random());
        t.begin(key, Content::of(&data));
        let len = data.len();
        c.put_object()
            .bucket(b)
            .key(key)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| sdk_err(&format!("PUT {key} ({len} B)"), &e))?;
        t.ack(key);
        t.counts.puts.fetch_add(1, SeqCst);
    } else if p < 70 {
        let id = c
            .create_multipart_upload()
            .bucket(b)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_err(&format!("CreateMultipartUpload {key}"), &e))?
            .upload_id()
            .unwrap_or_default()
            .to_string();
        let parts = [
            random_bytes(5 * MIB + rng.random_range(0..64 * KIB), rng.random()),
            random_bytes(rng.random_range(1..=MIB), rng.random()),
        ];
        let mut done = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let n = i as i32 + 1;
            let etag = c
                .upload_part()
                .bucket(b)
                .key(key)
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(part.clone()))
                .send()
                .await
                .map_err(|e| sdk_err(&format!("UploadPart {key} #{n}"), &e))?
                .e_tag()
                .unwrap_or_default()
                .to_string();
            done.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
        }
        t.begin(key, Content::of(&parts.concat()));
        c.complete_multipart_upload()
            .bucket(b)
            .key(key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_err(&format!("CompleteMultipartUpload {key}"), &e))?;
        t.ack(key);
        t.counts.completes.fetch_add(1, SeqCst);
    } else if p < 88 {
        t.begin(key, Content::Absent);
        c.delete_object()
            .bucket(b)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_err(&format!("DELETE {key}"), &e))?;
        t.ack(key);
        t.counts.deletes.fetch_add(1, SeqCst);
    } else {
        // Read-your-writes while the server runs: this task is the only
        // writer of the key, so the acknowledged state is exact.
        let want = t.acked(key);
        let got = match c.get_object().bucket(b).key(key).send().await {
            Ok(r) => {
                let body = r
                    .body
                    .collect()
                    .await
                    .map_err(|e| OpErr::Failed(format!("GET {key} body: {e}")))?;
                Content::of(&body.into_bytes())
            }
            Err(e) if err_code(&e) == "NoSuchKey" => Content::Absent,
            Err(e) => return Err(sdk_err(&format!("GET {key}"), &e)),
        };
        if got != want {
            return Err(OpErr::Wrong(format!(
                "GET {key} while running: got {got:?}, last acknowledged {want:?}"
            )));
        }
        t.counts.gets.fetch_add(1, SeqCst);
    }
    Ok(())
}

/// One client task: sequential ops on its own keys until stopped or failed.
async fn traffic_task(c: Client, t: Arc<Traffic>, keys: Vec<String>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    while !t.stop.load(SeqCst) {
        let key = keys[rng.random_range(0..keys.len())].clone();
        match one_op(&c, &t, &key, &mut rng).await {
            Ok(()) => {}
            Err(OpErr::Wrong(m)) => {
                t.errors.lock().expect("errors").push(m);
                return;
            }
            Err(OpErr::Failed(m)) => {
                if !t.stop.load(SeqCst) {
                    t.errors
                        .lock()
                        .expect("errors")
                        .push(format!("before the kill: {m}"));
                }
                return;
            }
        }
    }
}

/// After a restart: every key must read as its last acknowledged state, or
/// as its in-flight (unacknowledged) op's state; the model then takes what
/// was read. The listing must agree.
async fn verify_model(c: &Client, t: &Traffic, round: usize) -> Result<(usize, usize)> {
    let keys: Vec<String> = t.model.lock().expect("model").keys().cloned().collect();
    let (mut took_new, mut kept_old) = (0, 0);
    let mut wrong = Vec::new();
    for key in keys {
        let got = match c.get_object().bucket(&t.bucket).key(&key).send().await {
            Ok(r) => Content::of(&r.body.collect().await?.into_bytes()),
            Err(e) if err_code(&e) == "NoSuchKey" => Content::Absent,
            Err(e) => {
                wrong.push(format!(
                    "GET {key}: HTTP {:?} {}",
                    err_status(&e),
                    err_code(&e)
                ));
                continue;
            }
        };
        let mut m = t.model.lock().expect("model");
        let e = m.get_mut(&key).expect("key");
        let inflight = e.inflight.take();
        if got == e.acked {
            if inflight.is_some() {
                kept_old += 1;
            }
        } else if inflight.as_ref() == Some(&got) {
            took_new += 1;
            e.history.push(got.clone());
            e.acked = got;
        } else {
            let older = e.history.iter().rposition(|h| *h == got);
            wrong.push(format!(
                "GET {key}: got {got:?}; last acknowledged {:?}, in flight at the kill {inflight:?}{}",
                e.acked,
                match older {
                    Some(i) => format!(
                        " (an OLDER acknowledged state came back: #{i} of {})",
                        e.history.len()
                    ),
                    None => " (matches no write ever made to this key)".into(),
                }
            ));
            // keep the model usable for the message of later rounds
            e.acked = got;
        }
    }
    ensure!(
        wrong.is_empty(),
        "round {round}: {} keys wrong after SIGKILL + restart:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let want: BTreeMap<String, i64> = t
        .model
        .lock()
        .expect("model")
        .iter()
        .filter_map(|(k, e)| match &e.acked {
            Content::Bytes { len, .. } => Some((k.clone(), *len as i64)),
            Content::Absent => None,
        })
        .collect();
    let listed = list_sizes(c, &t.bucket).await?;
    ensure!(
        listed == want,
        "round {round}: listing after restart (key -> size) differs from what GET shows:\nlisted {listed:?}\nwant   {want:?}"
    );
    Ok((took_new, kept_old))
}

/// Fails if a drive's `.cairn.sys/tmp` still holds an entry made before
/// the restart (tmp is emptied at start).
fn leftover_tmp(s: &Server, restarted_at: SystemTime) -> Result<()> {
    let mut old = Vec::new();
    for d in s.drives() {
        let tmp = d.join(".cairn.sys").join("tmp");
        for e in std::fs::read_dir(&tmp).with_context(|| format!("read_dir {}", tmp.display()))? {
            let e = e?;
            // gone since (a heal finished): not a leftover
            let Ok(m) = e.metadata() else { continue };
            if m.modified()? < restarted_at {
                old.push(e.path());
            }
        }
    }
    ensure!(
        old.is_empty(),
        "tmp entries from before the restart survived it: {old:?}"
    );
    Ok(())
}

/// Data dirs in object folders that the folder's `cairn.meta` does not
/// name (left by a kill between the data dir rename and the meta rename).
fn orphan_data_dirs(s: &Server, bucket: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for d in s.drives() {
        for task in std::fs::read_dir(d.join(bucket))? {
            for obj in std::fs::read_dir(task?.path())? {
                let obj = obj?.path();
                let meta = std::fs::read(obj.join("cairn.meta")).unwrap_or_default();
                for e in std::fs::read_dir(&obj)? {
                    let e = e?;
                    let name = e.file_name().to_string_lossy().into_owned();
                    if let Some(uuid) = name.strip_prefix("cairn.data.")
                        && !meta.windows(uuid.len()).any(|w| w == uuid.as_bytes())
                    {
                        out.push(e.path());
                    }
                }
            }
        }
    }
    Ok(out)
}

/// (c) >= 30 rounds of concurrent PUT / multipart complete / DELETE traffic
/// killed with SIGKILL at a random moment; after each restart every
/// acknowledged write reads back exactly, nothing half-written shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loop_keeps_every_acknowledged_write() -> Result<()> {
    const ROUNDS: usize = 40;
    const TASKS: usize = 4;
    const KEYS_PER_TASK: usize = 8;
    let seed: u64 = match std::env::var("CAIRN_TEST_SEED") {
        Ok(v) => v.parse().context("CAIRN_TEST_SEED")?,
        Err(_) => rand::rng().random(),
    };
    eprintln!("sigkill loop seed {seed} (set CAIRN_TEST_SEED to repeat the schedule)");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    // The scanner runs too: its first cycle starts with every restart and
    // heals whatever a kill left behind, concurrently with the traffic.
    let mut s = Server::start(StartOpts {
        extra_args: vec!["--scanner-pause-ms".into(), "0".into()],
        ..StartOpts::default()
    })
    .await?;
    let bucket = bucket_name("crash");
    s.s3().create_bucket().bucket(&bucket).send().await?;
    let t = Arc::new(Traffic {
        bucket,
        model: Mutex::new(BTreeMap::new()),
        stop: AtomicBool::new(false),
        errors: Mutex::new(Vec::new()),
        counts: Counts::default(),
    });
    let (mut inflight_at_kill, mut took_new, mut kept_old) = (0, 0, 0);
    for round in 1..=ROUNDS {
        t.stop.store(false, SeqCst);
        let mut tasks = Vec::new();
        for i in 0..TASKS {
            let keys = (0..KEYS_PER_TASK).map(|k| format!("t{i}/k{k}")).collect();
            tasks.push(tokio::spawn(traffic_task(
                s.s3(),
                t.clone(),
                keys,
                rng.random(),
            )));
        }
        let run_for = Duration::from_millis(rng.random_range(100..=600));
        tokio::time::sleep(run_for).await;
        t.stop.store(true, SeqCst);
        s.kill()?;
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .with_context(|| format!("round {round}: a client task hung after SIGKILL"))??;
        }
        {
            let errs = t.errors.lock().expect("errors");
            ensure!(
                errs.is_empty(),
                "round {round}: {}\n{}",
                errs.join("\n"),
                server_logs(&s)
            );
        }
        inflight_at_kill += t
            .model
            .lock()
            .expect("model")
            .values()
            .filter(|e| e.inflight.is_some())
            .count();
        let restarted_at = SystemTime::now();
        s.restart().await?;
        leftover_tmp(&s, restarted_at).map_err(|e| anyhow!("round {round}: {e:#}"))?;
        let (n, o) = verify_model(&s.s3(), &t, round)
            .await
            .map_err(|e| anyhow!("{e:#}\n{}", server_logs(&s)))?;
        took_new += n;
        kept_old += o;
    }
    let cn = &t.counts;
    let (puts, completes, deletes, gets) = (
        cn.puts.load(SeqCst),
        cn.completes.load(SeqCst),
        cn.deletes.load(SeqCst),
        cn.gets.load(SeqCst),
    );
    eprintln!(
        "{ROUNDS} SIGKILL rounds in {:?}: acknowledged {puts} PUTs, {completes} multipart completes, {deletes} DELETEs, {gets} GET checks; {inflight_at_kill} ops in flight at a kill ({took_new} took effect, {kept_old} did not)",
        started.elapsed()
    );
    ensure!(
        puts > 0 && completes > 0 && deletes > 0,
        "the traffic did not exercise every op: {puts} PUTs, {completes} completes, {deletes} DELETEs acknowledged"
    );
    let orphans = orphan_data_dirs(&s, &t.bucket)?;
    eprintln!(
        "data dirs named by no cairn.meta after the loop: {} {:?}",
        orphans.len(),
        &orphans[..orphans.len().min(3)]
    );
    ensure!(
        inflight_at_kill > 0,
        "no op was ever in flight at a kill: the loop tested nothing"
    );
    Ok(())
}

// ------------------------------------------------------- (d) drive state

/// (d) A removed drive shows in `/_cairn/metrics` and `cairn admin info`; a wrong
/// password is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_info_report_drive_state() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("state");
    c.create_bucket().bucket(&b).send().await?;
    put(&c, &b, "x", &random_bytes(300 * KIB, 1)).await?;

    let m = s.metrics_text().await?;
    for name in [
        "cairn_drives_online",
        "cairn_drives_offline",
        "cairn_objects_healed_total",
        "cairn_bitrot_errors_total",
        "cairn_heal_queue_length",
        "cairn_scanner_cycles_total",
        "cairn_scanner_objects_total",
        "cairn_s3_requests_total{",
        "cairn_s3_request_duration_seconds_bucket{",
    ] {
        ensure!(
            m.lines().any(|l| l.starts_with(name)),
            "/_cairn/metrics has no `{name}` sample:\n{m}"
        );
    }
    ensure!(
        metric_of(&m, "cairn_drives_online")? == 4.0
            && metric_of(&m, "cairn_drives_offline")? == 0.0,
        "healthy: online {:?} offline {:?}",
        metric(&m, "cairn_drives_online"),
        metric(&m, "cairn_drives_offline")
    );
    ensure!(
        m.lines().any(|l| l.starts_with("cairn_s3_requests_total{")
            && l.contains("method=\"PUT\"")
            && l.contains("status=\"2xx\"")),
        "/_cairn/metrics counts no successful PUT after one:\n{m}"
    );

    let gone = s.drives()[2].clone();
    std::fs::remove_dir_all(&gone)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = s.metrics_text().await?;
        let ok = metric(&m, "cairn_drives_offline") == Some(1.0)
            && metric(&m, "cairn_drives_online") == Some(3.0);
        if ok || Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    ensure!(
        metric(&m, "cairn_drives_offline") == Some(1.0)
            && metric(&m, "cairn_drives_online") == Some(3.0),
        "drive 3 deleted: /_cairn/metrics cairn_drives_offline {:?} cairn_drives_online {:?} (want 1 and 3)",
        metric(&m, "cairn_drives_offline"),
        metric(&m, "cairn_drives_online")
    );

    let out = admin(&s, &["info", "--json"], None).await?;
    ensure!(
        out.status.success(),
        "{}",
        describe_output("cairn admin info --json", &out)
    );
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    let states = drive_states(&json)?;
    let want: Vec<(String, String)> = s
        .drives()
        .iter()
        .map(|d| {
            let st = if *d == gone { "offline" } else { "online" };
            (d.display().to_string(), st.to_string())
        })
        .collect();
    ensure!(
        states == want,
        "cairn admin info --json with drive 3 deleted: drives {states:?}, want {want:?}\n{json}"
    );

    let out = admin(&s, &["info"], None).await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success() && text.contains("offline") && text.contains("3 online"),
        "{}",
        describe_output("cairn admin info", &out)
    );

    let out = admin(&s, &["info"], Some("definitely-not-the-password")).await?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("SignatureDoesNotMatch"),
        "wrong password: want a non-zero exit and SignatureDoesNotMatch on stderr\n{}",
        describe_output("cairn admin info (wrong password)", &out)
    );
    let out = admin(&s, &["heal"], Some("definitely-not-the-password")).await?;
    ensure!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("SignatureDoesNotMatch"),
        "{}",
        describe_output("cairn admin heal (wrong password)", &out)
    );
    Ok(())
}

/// The drive monitor (scanner on) takes an empty folder put in place of a
/// deleted drive and fills it without any admin call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drive_monitor_rebuilds_empty_replacement() -> Result<()> {
    let s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("monitor");
    let objs = seed_mix(&c, &b).await?;
    let new = s.drives()[3].clone();
    std::fs::remove_dir_all(&new)?;
    std::fs::create_dir(&new)?;
    let t = Instant::now();
    let deadline = t + Duration::from_secs(40);
    loop {
        let m = s.metrics_text().await?;
        let whole = metric(&m, "cairn_drives_offline") == Some(0.0)
            && assert_on_drive(&new, &b, &objs, "").is_ok();
        if whole {
            break;
        }
        if Instant::now() > deadline {
            assert_on_drive(
                &new,
                &b,
                &objs,
                "40 s after an empty drive replaced drive 4",
            )
            .map_err(|e| {
                anyhow!(
                    "{e:#}\ncairn_drives_offline {:?}\n{}",
                    metric(&m, "cairn_drives_offline"),
                    s.log()
                )
            })?;
            bail!(
                "40 s after an empty drive replaced drive 4: cairn_drives_offline {:?}\n{}",
                metric(&m, "cairn_drives_offline"),
                s.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("drive monitor rebuilt the replacement in {:?}", t.elapsed());
    for i in [0, 1] {
        std::fs::remove_dir_all(&s.drives()[i])?;
    }
    check_all(
        &c,
        &b,
        &objs,
        "drives 1 and 2 deleted, drive 4 rebuilt by the monitor",
    )
    .await?;
    Ok(())
}
