//! Starting `cairn server` on drives it must not take: drives another
//! server holds, a drive list other than the formatted one, a changed
//! `--parity`, and URLs (distributed mode does not exist yet). Each start
//! exits non-zero with a message naming what is wrong, leaves no folder
//! or lock file it made, and the drives keep serving afterwards.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use cairn_tests::{Server, bucket_name, cairn_bin, get_bytes};

/// How long a refused start may take before it counts as started.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `cairn server ARGS` in `cwd` with credentials set, expecting it to
/// exit non-zero on its own; returns its output (stdout and stderr).
async fn refused_start(args: &[String], cwd: &Path) -> Result<String> {
    let out = cwd.join(format!("refused-{}.log", std::process::id()));
    let log = std::fs::File::create(&out)?;
    let mut cmd = Command::new(cairn_bin()?);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CAIRN_") {
            cmd.env_remove(&k);
        }
    }
    let mut child = cmd
        .arg("server")
        .args(["--address", "127.0.0.1:0"])
        .args(args)
        .env("CAIRN_ROOT_USER", "refusaltestuser")
        .env("CAIRN_ROOT_PASSWORD", "refusal-test-password-0123456789")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("spawn cairn server")?;
    let deadline = Instant::now() + REFUSAL_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "cairn server {args:?} was not refused (still running after {REFUSAL_TIMEOUT:?}):\n{}",
                std::fs::read_to_string(&out).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let text = std::fs::read_to_string(&out)?;
    std::fs::remove_file(&out)?;
    ensure!(
        !status.success(),
        "cairn server {args:?} exited successfully:\n{text}"
    );
    Ok(text)
}

fn path_args(paths: &[std::path::PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_are_refused_when_taken_changed_or_remote() -> Result<()> {
    let mut s = Server::start_default().await?;
    let c = s.s3();
    let b = bucket_name("setup");
    c.create_bucket().bucket(&b).send().await?;
    let data = vec![42u8; 300_000];
    c.put_object()
        .bucket(&b)
        .key("k")
        .body(data.clone().into())
        .send()
        .await?;
    let drives = s.drives().to_vec();

    // A second server on the same drives: refused, naming a drive and the
    // first server's pid.
    let pid = s.pid().context("server pid")?;
    let out = refused_start(&path_args(&drives), s.dir()).await?;
    ensure!(
        out.contains("locked by another Cairn server")
            && out.contains(&format!("pid {pid}"))
            && out.contains(&drives[0].display().to_string()),
        "second server's message: {out}"
    );
    // A new drive first, then the held ones: refused, and the folders the
    // new drive needed are not left behind.
    let nested = s.dir().join("new").join("deeper").join("d0");
    let mut list = vec![nested.clone()];
    list.extend_from_slice(&drives[..3]);
    let out = refused_start(&path_args(&list), s.dir()).await?;
    ensure!(
        out.contains("locked by another Cairn server"),
        "second server's message: {out}"
    );
    ensure!(
        !s.dir().join("new").exists(),
        "a refused start left the folders it made for {}",
        nested.display()
    );
    ensure!(s.is_running(), "the first server must keep running");
    ensure!(get_bytes(&c, &b, "k").await? == data, "first server serves");

    s.kill()?;
    // A fifth drive added to the four formatted ones: refused, naming it.
    let extra = s.dir().join("d5");
    let mut five = drives.clone();
    five.push(extra.clone());
    let out = refused_start(&path_args(&five), s.dir()).await?;
    ensure!(
        out.contains("4 drives but 5 were given") && out.contains(&extra.display().to_string()),
        "added drive message: {out}"
    );
    ensure!(
        !extra.exists(),
        "a refused start must not leave the added drive's folder it made"
    );
    // An added drive that existed (empty, or with a file of its own)
    // stays exactly so.
    std::fs::create_dir(&extra)?;
    std::fs::write(extra.join("notes.txt"), b"mine")?;
    let out = refused_start(&path_args(&five), s.dir()).await?;
    ensure!(out.contains("4 drives but 5 were given"), "{out}");
    let left: Vec<_> = std::fs::read_dir(&extra)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    ensure!(
        left == ["notes.txt"] && std::fs::read(extra.join("notes.txt"))? == b"mine",
        "an existing added drive was changed: {left:?}"
    );
    // A drive left out: refused.
    let out = refused_start(&path_args(&drives[..3]), s.dir()).await?;
    ensure!(
        out.contains("4 drives but 3 were given"),
        "missing drive message: {out}"
    );
    // Another parity than the first start's (2 on 4 drives): refused.
    let mut args = vec!["--parity".to_owned(), "1".to_owned()];
    args.extend(path_args(&drives));
    let out = refused_start(&args, s.dir()).await?;
    ensure!(
        out.contains("formatted with parity 2"),
        "parity message: {out}"
    );

    // Nothing was damaged: the drives as formatted serve the object.
    s.restart().await?;
    let c = s.s3();
    ensure!(get_bytes(&c, &b, "k").await? == data, "after restart");

    // A drive URL of another node than this one (a cluster this server
    // has no drive of): refused naming the node, and no `http:` folder is
    // made.
    let cwd = tempfile::tempdir()?;
    let out = refused_start(&["http://127.0.0.1:9000/x".to_owned()], cwd.path()).await?;
    ensure!(
        out.contains("none of the drives is on this node")
            && out.contains("the drive URLs name 127.0.0.1:9000"),
        "URL drive message: {out}"
    );
    ensure!(
        !cwd.path().join("http:").exists(),
        "a URL drive argument made a folder"
    );
    Ok(())
}
