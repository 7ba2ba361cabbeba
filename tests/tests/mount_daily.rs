//! The mount in daily use: a process keeps its working directory in the
//! mount while files around it are renamed and removed (git, build tools
//! and shells call getcwd all the time), and files made through the mount
//! (FUSE and NFS) get a Content-Type from their name, as s3fs gives them.

use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use aws_sdk_s3::primitives::ByteStream;
use cairn_tests::cmd::run_stdout;
use cairn_tests::mount::{Mounted, Unmount};
use cairn_tests::nfs_server::Nfs;
use cairn_tests::{require_tool, run};

/// Runs a Python script with its cwd set to `dir` at the start: it stays
/// there while it renames and removes entries, calling getcwd after each
/// step (and again a little later, once the change events have gone by).
const GETCWD_SCRIPT: &str = r#"
import os, sys, time
os.chdir(sys.argv[1])
want = os.getcwd()
out = []
def check(what):
    for delay in (0, 0.2, 0.6):
        time.sleep(delay)
        try:
            got = os.getcwd()
            if got != want:
                out.append(f"{what}: getcwd {got!r}, want {want!r}")
        except OSError as e:
            out.append(f"{what}: getcwd failed after {delay}s: {e}")
for i in range(3):
    for n in ("a", "c", "sub/x"):
        with open(n, "w") as f:
            f.write(n * 10)
    os.rename("a", "b" if i == 0 else "c")
    check(f"round {i}: rename over a sibling")
    os.unlink("c")
    check(f"round {i}: unlink")
    os.rename("sub/x", "sub/y")
    check(f"round {i}: rename in a subdirectory")
    os.unlink("sub/y")
    check(f"round {i}: unlink in a subdirectory")
    os.mkdir("tmpdir")
    os.rename("tmpdir", "tmpdir2")
    os.rmdir("tmpdir2")
    check(f"round {i}: mkdir, rename and rmdir of a child directory")
# then changes made over S3 by the test, under and next to this directory
print("ready", flush=True)
sys.stdin.readline()
check("after S3 writes and deletes")
print("\n".join(out) if out else "ok")
"#;

/// getcwd() of a process inside a mount directory keeps answering while
/// entries in that directory (and below it) are renamed and removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getcwd_survives_renames_and_unlinks_around_it() -> Result<()> {
    let m = Mounted::start(&[]).await?;
    let (b, root) = m.bucket("cwd")?;
    let dir = root.join("work").join("deep");
    fs::create_dir_all(dir.join("sub"))?;
    let mut py = Command::new(require_tool("python3")?)
        .arg("-c")
        .arg(GETCWD_SCRIPT)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(py.stdout.take().context("stdout")?).lines();
    let mut stdin = py.stdin.take().context("stdin")?;
    let first = lines.next().context("python ended early")??;
    if first != "ready" {
        let rest: Vec<String> = lines.collect::<Result<_, _>>()?;
        bail!("getcwd script: {first}\n{}", rest.join("\n"));
    }
    // another front changes things beside, below and at the directory
    let c = m.server.s3();
    for k in ["work/deep/s3new", "work/deep/sub/s3x", "work/deep/"] {
        c.put_object()
            .bucket(&b)
            .key(k)
            .body(ByteStream::from(Vec::new()))
            .send()
            .await?;
    }
    c.delete_object()
        .bucket(&b)
        .key("work/deep/s3new")
        .send()
        .await?;
    writeln!(stdin, "go")?;
    let out: Vec<String> = lines.collect::<Result<_, _>>()?;
    ensure!(py.wait()?.success(), "the getcwd script failed: {out:?}");
    ensure!(
        out == ["ok"],
        "getcwd in the mount failed:\n{}",
        out.join("\n")
    );
    // also what a shell does: cd, mv over a sibling, rm, pwd
    let sh = run_stdout(
        Command::new("sh")
            .arg("-c")
            .arg("cd \"$1\" && echo 1 > p && echo 2 > q && mv p q && rm q && sleep 0.5 && python3 -c 'import os; print(os.getcwd())'")
            .arg("sh")
            .arg(&dir),
    )?;
    ensure!(
        Path::new(sh.trim()) == dir.canonicalize()?,
        "pwd after mv and rm: {sh:?}"
    );
    Ok(())
}

/// git with everything it needs set by environment: no user config is read.
fn git(dir: &Path, home: &Path, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new(require_tool("git")?);
    cmd.current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Cairn Test")
        .env("GIT_AUTHOR_EMAIL", "test@cairn.invalid")
        .env("GIT_COMMITTER_NAME", "Cairn Test")
        .env("GIT_COMMITTER_EMAIL", "test@cairn.invalid")
        .args(["-c", "init.defaultBranch=main", "-c", "safe.directory=*"])
        .args(args);
    run_stdout(&mut cmd)
}

/// A repository in the mount: init, a source tree, commit, branch,
/// change, commit, checkout back and forth, fsck and log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_works_inside_the_mount() -> Result<()> {
    let m = Mounted::start(&[]).await?;
    let (_b, root) = m.bucket("git")?;
    let home = tempfile::tempdir()?;
    let repo = root.join("repo");
    fs::create_dir(&repo)?;
    git(&repo, home.path(), &["init", "-q"])?;
    let files = [
        ("README.md", "# a project\n"),
        ("src/main.rs", "fn main() {\n    println!(\"hi\");\n}\n"),
        ("src/lib/mod.rs", "pub mod util;\n"),
        ("src/lib/util.rs", "pub fn one() -> u32 {\n    1\n}\n"),
        ("docs/guide/intro.txt", "read me first\n"),
        ("scripts/build.sh", "#!/bin/sh\necho build\n"),
    ];
    for (p, body) in files {
        let f = repo.join(p);
        fs::create_dir_all(f.parent().context("parent")?)?;
        fs::write(&f, body)?;
    }
    git(&repo, home.path(), &["add", "-A"])?;
    git(&repo, home.path(), &["commit", "-q", "-m", "first"])?;
    git(&repo, home.path(), &["checkout", "-q", "-b", "feature"])?;
    fs::write(repo.join("src/main.rs"), "fn main() {}\n")?;
    fs::write(repo.join("src/lib/new.rs"), "// new\n")?;
    fs::remove_file(repo.join("docs/guide/intro.txt"))?;
    git(&repo, home.path(), &["add", "-A"])?;
    // from a subdirectory, as one often commits
    git(
        &repo.join("src"),
        home.path(),
        &["commit", "-q", "-m", "second"],
    )?;
    for _ in 0..2 {
        git(&repo, home.path(), &["checkout", "-q", "main"])?;
        ensure!(fs::read_to_string(repo.join("src/main.rs"))? == files[1].1);
        ensure!(!repo.join("src/lib/new.rs").exists());
        ensure!(fs::read_to_string(repo.join("docs/guide/intro.txt"))? == files[4].1);
        git(&repo, home.path(), &["checkout", "-q", "feature"])?;
        ensure!(fs::read_to_string(repo.join("src/main.rs"))? == "fn main() {}\n");
        ensure!(repo.join("src/lib/new.rs").exists());
        ensure!(!repo.join("docs/guide/intro.txt").exists());
    }
    git(&repo, home.path(), &["fsck", "--full", "--strict"])?;
    let status = git(&repo, home.path(), &["status", "--porcelain"])?;
    ensure!(
        status.is_empty(),
        "a clean checkout shows changes: {status}"
    );
    let log = git(&repo, home.path(), &["log", "--format=%s", "feature"])?;
    ensure!(
        log.lines().collect::<Vec<_>>() == ["second", "first"],
        "git log: {log}"
    );
    Ok(())
}

/// What S3 says a key's Content-Type is, once the key is there (an NFS
/// write is committed shortly after the client's last WRITE).
async fn content_type(s: &cairn_tests::Server, b: &str, k: &str) -> Result<String> {
    let t0 = Instant::now();
    loop {
        match s.s3().head_object().bucket(b).key(k).send().await {
            Ok(h) => return Ok(h.content_type().unwrap_or_default().to_owned()),
            Err(e) if t0.elapsed() > Duration::from_secs(10) => {
                return Err(e).with_context(|| format!("HEAD {b}/{k}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

const TYPED: [(&str, &str); 4] = [
    ("a.html", "text/html"),
    ("b.json", "application/json"),
    ("c.png", "image/png"),
    ("d", "application/octet-stream"),
];

/// Files made through the FUSE mount and over NFS get their Content-Type
/// from the extension (application/octet-stream without one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_made_through_the_mount_get_a_content_type() -> Result<()> {
    let dirs = tempfile::tempdir()?;
    let mnt = dirs.path().join("mnt");
    fs::create_dir_all(&mnt)?;
    let _unmount = Unmount(mnt.clone());
    let n = Nfs::start(&[
        "--mount",
        mnt.to_str().context("path")?,
        "--mount-spool",
        dirs.path().join("spool").to_str().context("path")?,
    ])
    .await?;
    let b = n.bucket("ctype").await?;
    let src = dirs.path().join("src");
    fs::write(&src, b"some bytes")?;
    for (name, _) in TYPED {
        fs::write(mnt.join(&b).join(format!("fuse-{name}")), b"some bytes")?;
        run(Command::new(require_tool("nfs-cp")?)
            .arg(&src)
            .arg(n.url(&format!("{b}/nfs-{name}"))))?;
    }
    for (name, want) in TYPED {
        for front in ["fuse", "nfs"] {
            let k = format!("{front}-{name}");
            let got = content_type(&n.server, &b, &k).await?;
            ensure!(got == want, "{k}: Content-Type {got:?}, want {want:?}");
        }
    }
    Ok(())
}
