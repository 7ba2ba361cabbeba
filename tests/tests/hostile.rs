//! Hostile clients (issue 15): uploads whose body never comes, connections
//! that never send a byte, bodies dripping in, more uploads at once than
//! the server takes. Other clients must stay served (answered, never 503),
//! no drive may be marked offline, and the hostile requests must be cut
//! off after their timeouts with nothing of them stored.
//!
//! `CAIRN_HOSTILE_LARGE=1` multiplies the load (2,000 stalled uploads,
//! 40,000 idle connections).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use cairn_tests::metrics::metric_of;
use cairn_tests::raw::{self, finish_upload};
use cairn_tests::{Server, StartOpts, bucket_name};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The server's header, idle and body timeouts in these tests, seconds.
const TIMEOUT: u64 = 4;
/// How long after its timeout a hostile connection must be closed.
const SLACK: Duration = Duration::from_secs(20);
/// Idle connections per holder process (each has its own descriptor
/// limit; this machine's hard limit is 20,000).
const PER_HOLDER: usize = 10_000;

fn large() -> bool {
    std::env::var_os("CAIRN_HOSTILE_LARGE").is_some()
}

/// Raises this process's soft open-file limit to its hard one.
fn raise_nofile() -> Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

fn start_opts(extra: &[&str]) -> StartOpts {
    let t = TIMEOUT.to_string();
    let mut args: Vec<String> = [
        "--header-timeout",
        &t,
        "--idle-timeout",
        &t,
        "--body-timeout",
        &t,
        "--no-scanner",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    StartOpts {
        extra_args: args,
        ..StartOpts::default()
    }
}

/// Not a test of its own: run as a child process by
/// `stalled_uploads_and_idle_connections_leave_others_served` (with
/// CAIRN_HOLD_ADDR set) it opens CAIRN_HOLD_COUNT connections that never
/// send a byte, prints `HELD <connected> <failed>` and keeps them until
/// its stdin closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_holder() -> Result<()> {
    let Ok(addr) = std::env::var("CAIRN_HOLD_ADDR") else {
        return Ok(());
    };
    let count: usize = std::env::var("CAIRN_HOLD_COUNT")?.parse()?;
    raise_nofile()?;
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(256));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..count {
        let permit = sem.clone().acquire_owned().await?;
        let addr = addr.clone();
        set.spawn(async move {
            let s = tokio::time::timeout(Duration::from_secs(30), TcpStream::connect(&addr)).await;
            drop(permit);
            s.ok().and_then(Result::ok)
        });
    }
    let mut held = Vec::with_capacity(count);
    let mut failed = 0usize;
    while let Some(r) = set.join_next().await {
        match r? {
            Some(s) => held.push(s),
            None => failed += 1,
        }
    }
    // On a line of its own: the harness has printed the test's name
    // without a newline before it.
    println!("\nHELD {} {failed}", held.len());
    let mut line = String::new();
    let _ = BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await;
    drop(held);
    Ok(())
}

/// A child process holding `count` idle connections to `addr`.
struct Holder {
    child: tokio::process::Child,
    out: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Holder {
    fn spawn(addr: &str, count: usize) -> Result<Self> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args([
                "--exact",
                "idle_connection_holder",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CAIRN_HOLD_ADDR", addr)
            .env("CAIRN_HOLD_COUNT", count.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("spawn the idle connection holder")?;
        let out = BufReader::new(child.stdout.take().context("holder stdout")?).lines();
        Ok(Self { child, out })
    }

    /// Waits for `HELD <connected> <failed>`.
    async fn held(&mut self) -> Result<(usize, usize)> {
        while let Some(line) = self.out.next_line().await? {
            if let Some((_, rest)) = line.split_once("HELD ") {
                let mut it = rest.split_whitespace().map(str::parse::<usize>);
                if let (Some(Ok(a)), Some(Ok(b))) = (it.next(), it.next()) {
                    return Ok((a, b));
                }
            }
        }
        bail!("the holder ended without reporting")
    }
}

/// Every drive's staging folder is empty (nothing partial stayed).
fn tmp_empty(drives: &[std::path::PathBuf]) -> Result<bool> {
    for d in drives {
        let tmp = d.join(".cairn.sys").join("tmp");
        if std::fs::read_dir(&tmp)
            .with_context(|| format!("read {}", tmp.display()))?
            .next()
            .is_some()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn wait_tmp_empty(drives: &[std::path::PathBuf]) -> Result<()> {
    let until = Instant::now() + Duration::from_secs(10);
    while !tmp_empty(drives)? {
        ensure!(
            Instant::now() < until,
            "staging folders not empty: {:?}",
            drives
                .iter()
                .map(|d| std::fs::read_dir(d.join(".cairn.sys/tmp"))
                    .map(|r| r.count())
                    .unwrap_or(0))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Reads the answer to a stalled request: 400 RequestTimeout, then the
/// connection closes.
async fn expect_request_timeout(s: TcpStream) -> Result<()> {
    let mut r = BufReader::new(s);
    let resp = raw::read_response(&mut r, false).await?;
    ensure!(
        resp.status == 400 && resp.code().as_deref() == Some("RequestTimeout"),
        "stalled upload answered {}",
        resp.describe()
    );
    let mut rest = [0u8; 64];
    match r.read(&mut rest).await {
        Ok(0) | Err(_) => Ok(()),
        Ok(n) => bail!("{n} more bytes after the RequestTimeout answer"),
    }
}

/// A normal client's PUT and GET, as a user would do them while the
/// server is under attack: connection failures are retried (the server
/// may be making room), but every answer must be a success.
async fn normal_client_round(s: &Server, bucket: &str, round: usize) -> Result<()> {
    let c = s.s3();
    let body: Vec<u8> = (0..3 * 1024 * 1024 + round)
        .map(|i| (i * 31 + round) as u8)
        .collect();
    let key = format!("normal-{round}");
    let mut attempt = 0;
    loop {
        attempt += 1;
        let put = c
            .put_object()
            .bucket(bucket)
            .key(&key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await;
        match put {
            Ok(_) => break,
            Err(SdkError::ServiceError(e)) => {
                bail!("PUT {key} answered {:?}", e.raw().status())
            }
            Err(e) if attempt < 10 => {
                eprintln!("PUT {key}: {e:?}; again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => bail!("PUT {key}: {e:?}"),
        }
    }
    let got = loop {
        match c.get_object().bucket(bucket).key(&key).send().await {
            Ok(o) => break o.body.collect().await?.into_bytes(),
            Err(SdkError::ServiceError(e)) => {
                bail!("GET {key} answered {:?}", e.raw().status())
            }
            Err(e) if attempt < 20 => {
                attempt += 1;
                eprintln!("GET {key}: {e:?}; again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => bail!("GET {key}: {e:?}"),
        }
    };
    ensure!(got.as_ref() == body.as_slice(), "GET {key}: other bytes");
    Ok(())
}

/// /_cairn/health/ready answers 200 and the store counts no drive offline.
async fn healthy(s: &Server) -> Result<()> {
    let ready = raw::get(&s.addr(), "/_cairn/health/ready").await?;
    ensure!(
        ready.status == 200,
        "/_cairn/health/ready: {}",
        ready.describe()
    );
    let m = s.metrics_text().await?;
    ensure!(
        metric_of(&m, "cairn_drives_offline")? == 0.0,
        "drives offline: {}",
        metric_of(&m, "cairn_drives_offline")?
    );
    Ok(())
}

fn no_drive_marked_offline(s: &Server, log_dir: &Path) -> Result<()> {
    let mut all = String::new();
    for e in std::fs::read_dir(log_dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "log") {
            all.push_str(&std::fs::read_to_string(&p)?);
        }
    }
    ensure!(
        !all.contains("marking it offline") && !all.contains("drive does not answer"),
        "a drive was marked offline; server log:\n{}",
        s.log()
    );
    ensure!(
        !all.contains("panicked"),
        "the server panicked:\n{}",
        s.log()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_uploads_and_idle_connections_leave_others_served() -> Result<()> {
    let scale = if large() { 4 } else { 1 };
    let stalled_n = 500 * scale;
    let holders_n = 2 * scale;
    raise_nofile()?;
    let started = Instant::now();
    // The connection cap is the default: half the open-file limit, at
    // most 10,000 (fewer than the idle connections opened).
    let s = Server::start(start_opts(&[])).await?;
    let c = s.s3();
    let bucket = bucket_name("hostile");
    c.create_bucket().bucket(&bucket).send().await?;
    normal_client_round(&s, &bucket, 0).await?;

    // Uploads that sign a large body and stall: half never send a byte of
    // it, half stop after 256 KiB (past the inline size: the write
    // pipeline and its part files are under way; this is what used to
    // hold ~6 blocking threads each and get every drive marked offline).
    let raw = s.raw();
    let mut stalled = Vec::with_capacity(stalled_n);
    let part = vec![b'x'; 256 * 1024];
    for i in 0..stalled_n {
        let target = format!("/{bucket}/stalled-{i}");
        let mut st = raw.open_upload("PUT", &target, &[], 64 << 20).await?;
        if i % 2 == 1 {
            st.write_all(&part).await?;
        }
        stalled.push(st);
    }
    let stalled_at = Instant::now();
    // And connections that never send a byte.
    let mut mine = Vec::new();
    for _ in 0..50 {
        mine.push(TcpStream::connect(s.addr()).await?);
    }
    let mut holders = (0..holders_n)
        .map(|_| Holder::spawn(&s.addr(), PER_HOLDER))
        .collect::<Result<Vec<_>>>()?;

    // Other clients, while all that is open and the holders connect.
    let mut round = 1;
    while round < 4 || stalled_at.elapsed() < Duration::from_secs(TIMEOUT) {
        tokio::time::timeout(
            Duration::from_secs(60),
            normal_client_round(&s, &bucket, round),
        )
        .await
        .with_context(|| format!("round {round} took over 60 s"))??;
        healthy(&s).await?;
        round += 1;
    }
    let mut connected = 0;
    for h in &mut holders {
        let (ok, failed) = tokio::time::timeout(Duration::from_secs(60), h.held())
            .await
            .context("holder connecting for over 60 s")??;
        eprintln!("holder: {ok} connected, {failed} failed");
        connected += ok;
    }
    ensure!(
        connected >= holders_n * PER_HOLDER * 9 / 10,
        "only {connected} idle connections opened"
    );
    normal_client_round(&s, &bucket, round).await?;
    healthy(&s).await?;

    // Every stalled upload is answered RequestTimeout and closed.
    let mut answers = tokio::task::JoinSet::new();
    for st in stalled {
        answers.spawn(tokio::time::timeout(
            Duration::from_secs(TIMEOUT) + SLACK,
            expect_request_timeout(st),
        ));
    }
    while let Some(a) = answers.join_next().await {
        a?.context("a stalled upload was not answered in time")??;
    }
    eprintln!(
        "stalled uploads all answered {:?} after they stalled",
        stalled_at.elapsed()
    );
    // The connections that never sent a byte are closed.
    for mut m in mine {
        let mut b = [0u8; 16];
        let n = tokio::time::timeout(SLACK, m.read(&mut b))
            .await
            .context("an idle connection stayed open")?
            .unwrap_or(0);
        ensure!(n == 0, "an idle connection got {n} bytes");
    }
    // Nothing of them is stored.
    wait_tmp_empty(s.drives()).await?;
    for i in [0, stalled_n / 2, stalled_n - 1] {
        let head = c
            .head_object()
            .bucket(&bucket)
            .key(format!("stalled-{i}"))
            .send()
            .await;
        ensure!(
            matches!(&head, Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(404)),
            "stalled-{i} exists: {head:?}"
        );
    }
    let listed = c
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("stalled-")
        .send()
        .await?;
    ensure!(listed.key_count() == Some(0), "stalled keys listed");
    for h in &mut holders {
        drop(h.child.stdin.take());
    }
    for mut h in holders {
        let _ = tokio::time::timeout(Duration::from_secs(10), h.child.wait()).await;
    }
    normal_client_round(&s, &bucket, round + 1).await?;
    healthy(&s).await?;
    no_drive_marked_offline(&s, s.dir())?;
    eprintln!("done in {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inflight_cap_answers_slow_down_and_slow_bodies_time_out() -> Result<()> {
    let s = Server::start(start_opts(&[
        "--max-inflight-requests",
        "4",
        "--body-min-rate",
        "4096",
    ]))
    .await?;
    let c = s.s3();
    let bucket = bucket_name("cap");
    c.create_bucket().bucket(&bucket).send().await?;
    let raw = s.raw();
    let mut stalled = Vec::new();
    for i in 0..4 {
        stalled.push(
            raw.open_upload("PUT", &format!("/{bucket}/held-{i}"), &[], 1 << 20)
                .await?,
        );
    }
    // The cap is full: an upload is refused at once, its body unread.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let refused = raw
        .open_upload("PUT", &format!("/{bucket}/refused"), &[], 1 << 20)
        .await?;
    let resp = tokio::time::timeout(Duration::from_secs(TIMEOUT), finish_upload(refused))
        .await
        .context("no answer at once beyond the in-flight cap")??;
    ensure!(
        resp.status == 503 && resp.code().as_deref() == Some("SlowDown"),
        "beyond the cap: {}",
        resp.describe()
    );
    eprintln!("SlowDown after {:?}", t.elapsed());
    // Requests without a body are not capped.
    c.head_bucket().bucket(&bucket).send().await?;
    c.list_objects_v2().bucket(&bucket).send().await?;
    healthy(&s).await?;
    for st in stalled {
        tokio::time::timeout(
            Duration::from_secs(TIMEOUT) + SLACK,
            expect_request_timeout(st),
        )
        .await
        .context("a stalled upload was not answered")??;
    }
    // The slots are free again.
    c.put_object()
        .bucket(&bucket)
        .key("after")
        .body(ByteStream::from(vec![7u8; 300 * 1024]))
        .send()
        .await?;

    // A body dripping in at ~200 bytes/s, under the 4096 minimum: cut off
    // once the server waited a body timeout's worth for it.
    let mut drip = raw
        .open_upload("PUT", &format!("/{bucket}/drip"), &[], 1 << 20)
        .await?;
    let t = Instant::now();
    let (rd, mut wr) = drip.split();
    let writer = async {
        loop {
            if wr.write_all(&[b'x'; 100]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let reader = async {
        let mut r = BufReader::new(rd);
        raw::read_response(&mut r, false).await
    };
    let resp = tokio::select! {
        r = reader => r?,
        () = writer => bail!("the drip's writes failed before any answer"),
        () = tokio::time::sleep(Duration::from_secs(TIMEOUT) + SLACK) => bail!("the drip was never cut off"),
    };
    ensure!(
        resp.status == 400 && resp.code().as_deref() == Some("RequestTimeout"),
        "drip: {}",
        resp.describe()
    );
    eprintln!("drip cut off after {:?}", t.elapsed());
    ensure!(
        t.elapsed() >= Duration::from_secs(TIMEOUT),
        "cut off before the window"
    );
    wait_tmp_empty(s.drives()).await?;
    for key in ["held-0", "drip", "refused"] {
        let head = c.head_object().bucket(&bucket).key(key).send().await;
        ensure!(head.is_err(), "{key} exists");
    }
    healthy(&s).await?;
    no_drive_marked_offline(&s, s.dir())?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_a_download_is_cut_off() -> Result<()> {
    let s = Server::start(start_opts(&[])).await?;
    let c = s.s3();
    let bucket = bucket_name("reader");
    c.create_bucket().bucket(&bucket).send().await?;
    let size = 32usize << 20;
    c.put_object()
        .bucket(&bucket)
        .key("big")
        .body(ByteStream::from(vec![5u8; size]))
        .send()
        .await?;
    // GETs that read the response head and then nothing: the server's
    // reader threads would wait on them for as long as they keep the
    // connection open.
    let raw = s.raw();
    let mut stuck = Vec::new();
    for _ in 0..16 {
        let mut st = raw
            .open_upload("GET", &format!("/{bucket}/big"), &[], 0)
            .await?;
        let mut head = [0u8; 12];
        st.read_exact(&mut head).await?;
        ensure!(head.starts_with(b"HTTP/1.1 200"), "GET: {head:?}");
        stuck.push(st);
    }
    let t = Instant::now();
    normal_client_round(&s, &bucket, 1).await?;
    healthy(&s).await?;
    // The body timeout (the clock starts when the server last handed out
    // data) and the second a closing connection gets, with room to spare.
    tokio::time::sleep(Duration::from_secs(2 * TIMEOUT + 2)).await;
    // Each is closed: what the socket buffers hold, then the end, well
    // before the whole object.
    for mut st in stuck {
        let mut total = 0usize;
        let mut buf = vec![0u8; 1 << 20];
        let read_all = async {
            loop {
                match st.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => total += n,
                }
            }
        };
        tokio::time::timeout(SLACK, read_all)
            .await
            .context("a download the client stopped reading stayed open")?;
        ensure!(total < size, "the whole object arrived ({total} bytes)");
    }
    eprintln!("stuck downloads cut off within {:?}", t.elapsed());
    healthy(&s).await?;
    no_drive_marked_offline(&s, s.dir())?;
    Ok(())
}

/// Reads until the server closes the connection; how long that took.
async fn closed_after(s: &mut TcpStream) -> Result<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(TIMEOUT) + SLACK, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .context("the connection stayed open")?;
    Ok(t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_connections_are_closed_over_http1_and_http2() -> Result<()> {
    let s = Server::start(start_opts(&[])).await?;
    let early = Duration::from_secs(TIMEOUT) - Duration::from_millis(500);
    // HTTP/1.1: a whole request, then nothing: closed after the idle timeout.
    let mut h1 = TcpStream::connect(s.addr()).await?;
    h1.write_all(b"GET /_cairn/health/live HTTP/1.1\r\nhost: x\r\n\r\n")
        .await?;
    let mut r = BufReader::new(h1);
    let resp = raw::read_response(&mut r, false).await?;
    ensure!(
        resp.status == 200,
        "/_cairn/health/live: {}",
        resp.describe()
    );
    let mut h1 = r.into_inner();
    // HTTP/2 (prior knowledge): the preface and SETTINGS, then no request.
    let mut h2 = TcpStream::connect(s.addr()).await?;
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await?;
    // Half a request head, then nothing.
    let mut partial = TcpStream::connect(s.addr()).await?;
    partial
        .write_all(b"GET /_cairn/health/live HTTP/1.1\r\nho")
        .await?;
    let (a, b, c) = tokio::join!(
        closed_after(&mut h1),
        closed_after(&mut h2),
        closed_after(&mut partial)
    );
    for (what, took) in [
        ("idle HTTP/1.1", a?),
        ("silent HTTP/2", b?),
        ("half a head", c?),
    ] {
        eprintln!("{what} closed after {took:?}");
        ensure!(
            took >= early,
            "{what} closed after {took:?}, before the timeout"
        );
    }
    healthy(&s).await?;
    Ok(())
}
