//! The NFSv3 front: `cairn server --nfs ADDR:PORT` exports the buckets
//! from the server's process. The kernel here has no NFS client, so real
//! userspace clients drive it: libnfs-utils (`nfs-ls`, `nfs-cat`, `nfs-cp`)
//! and the nfs-rs Python client (PyPI `nfs-rs`) for everything else.

use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use aws_sdk_s3::primitives::ByteStream;
use cairn_tests::data::{random_bytes, same_bytes, write_random_file};
use cairn_tests::mount::Unmount;
use cairn_tests::nfs_server::{Nfs, PRELUDE, python};
use cairn_tests::{Server, StartOpts, bucket_name, free_port, require_tool, run, run_status};

fn libnfs(tool: &str) -> Result<Command> {
    Ok(Command::new(require_tool(tool)?))
}

async fn s3_put(s: &Server, b: &str, k: &str, body: Vec<u8>) -> Result<()> {
    s.s3()
        .put_object()
        .bucket(b)
        .key(k)
        .body(ByteStream::from(body))
        .send()
        .await?;
    Ok(())
}

async fn s3_get(s: &Server, b: &str, k: &str) -> Result<Vec<u8>> {
    let o = s.s3().get_object().bucket(b).key(k).send().await?;
    Ok(o.body.collect().await?.into_bytes().to_vec())
}

/// Waits (up to `within`) until S3 serves `want` at `b/k`.
async fn s3_eventually(
    s: &Server,
    b: &str,
    k: &str,
    want: &[u8],
    within: Duration,
) -> Result<Duration> {
    let t0 = Instant::now();
    loop {
        if let Ok(got) = s3_get(s, b, k).await
            && got == want
        {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > within {
            bail!("{b}/{k} not committed within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nfs_cp_100mib_up_and_down_and_s3_sees_it() -> Result<()> {
    let n = Nfs::start(&[]).await?;
    let b = n.bucket("nfscp").await?;
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    write_random_file(&src, 100 << 20, 61)?;
    run(libnfs("nfs-cp")?
        .arg(&src)
        .arg(n.url(&format!("{b}/big.bin"))))?;
    let done = Instant::now();
    let back = dir.path().join("back");
    run(libnfs("nfs-cp")?
        .arg(n.url(&format!("{b}/big.bin")))
        .arg(&back))?;
    let want = fs::read(&src)?;
    same_bytes("nfs-cp down", &fs::read(&back)?, &want)?;
    // committed within 2 s of the last WRITE, no other action
    let left = Duration::from_secs(2).saturating_sub(done.elapsed());
    s3_eventually(
        &n.server,
        &b,
        "big.bin",
        &want,
        left + Duration::from_millis(300),
    )
    .await?;
    // and an S3 PUT is visible over NFS at once
    let small = random_bytes(70_000, 3);
    s3_put(&n.server, &b, "dir/from-s3", small.clone()).await?;
    let got = run(libnfs("nfs-cat")?.arg(n.url(&format!("{b}/dir/from-s3"))))?.stdout;
    same_bytes("nfs-cat of an S3 PUT", &got, &small)?;
    let ls = String::from_utf8_lossy(&run(libnfs("nfs-ls")?.arg(n.url(&b)))?.stdout).into_owned();
    ensure!(ls.contains("big.bin") && ls.contains("dir"), "nfs-ls: {ls}");
    Ok(())
}

/// Replacing a file's bytes: `nfs-cp` (libnfs 4.0) creates its target
/// GUARDED, which RFC 1813 (3.3.8) fails with NFS3ERR_EXIST on an existing
/// name, as Linux knfsd does; the object stays as it was. A client that
/// opens for writing with truncation (nfs-rs "wb": SETATTR size 0, then
/// WRITEs, then COMMIT) replaces the bytes, like cp on a mounted export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwriting_a_file_truncates_it_and_guarded_create_is_exist() -> Result<()> {
    let n = Nfs::start(&[]).await?;
    let b = n.bucket("nfsover").await?;
    let old = random_bytes(300_000, 7);
    s3_put(&n.server, &b, "f", old.clone()).await?;
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("small");
    fs::write(&src, random_bytes(1000, 8))?;
    let out = run_status(libnfs("nfs-cp")?.arg(&src).arg(n.url(&format!("{b}/f"))))?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    ensure!(
        !out.status.success() && text.contains("NFS3ERR_EXIST"),
        "nfs-cp onto an existing name must get NFS3ERR_EXIST: {text}"
    );
    ensure!(
        s3_get(&n.server, &b, "f").await? == old,
        "a refused CREATE changed the object"
    );
    let out = n.py(
        r#"
p = "/" + sys.argv[1] + "/f"
with c.open(p, "wb") as f:
    f.write(b"z" * 1000)
print(c.stat(p).size)
"#,
        &[&b],
    )?;
    ensure!(out.trim() == "1000", "size after the overwrite: {out}");
    s3_eventually(&n.server, &b, "f", &[b'z'; 1000], Duration::from_secs(3)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_operations_through_nfs_rs() -> Result<()> {
    let n = Nfs::start(&[]).await?;
    let b = n.bucket("nfsops").await?;
    let out = n.py(
        r#"
b = "/" + sys.argv[1]
c.mkdir(b + "/d")
# out-of-order writes at offsets, a hole in between stays zeros
with c.open(b + "/d/f", "wb") as f:
    f.write_at(b"C" * 1000, 2_000_000)
    f.write_at(b"A" * 4096, 0)
    f.write_at(b"B" * 10, 1_000_000)
data = c.open(b + "/d/f", "rb").read()
assert len(data) == 2_001_000, len(data)
assert data[:4096] == b"A" * 4096 and data[1_000_000:1_000_010] == b"B" * 10
assert data[2_000_000:] == b"C" * 1000 and data[5000:6000] == bytes(1000)
# SETATTR: mode, times, size
c.chmod(b + "/d/f", 0o640)
c.utime(b + "/d/f", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
st = c.stat(b + "/d/f")
assert st.mode & 0o7777 == 0o640, oct(st.mode)
assert st.mtime // 1_000_000_000 == 1_600_000_000, st.mtime
c.truncate(b + "/d/f", 5000)
assert c.stat(b + "/d/f").size == 5000
assert c.open(b + "/d/f", "rb").read() == b"A" * 4096 + bytes(904)
# root squash: chown to 0 becomes the anonymous ids
c.chown(b + "/d/f", 0, 0)
st = c.stat(b + "/d/f")
assert (st.uid, st.gid) == (65534, 65534), (st.uid, st.gid)
# and the squashed root is no root: it cannot give the file away
assert "NfsPermissionError" in err(lambda: c.chown(b + "/d/f", 1234, 1235))
st = c.stat(b + "/d/f")
assert (st.uid, st.gid) == (65534, 65534), (st.uid, st.gid)
# RENAME a file and a directory
c.rename(b + "/d/f", b + "/d/g")
assert sorted(c.listdir(b + "/d")) == ["g"]
c.mkdir(b + "/e")
c.rename(b + "/d", b + "/e/moved")
assert c.open(b + "/e/moved/g", "rb").read(10) == b"A" * 10
# SYMLINK / READLINK
c.symlink("moved/g", b + "/e/link")
assert c.readlink(b + "/e/link") == "moved/g"
# MKDIR / RMDIR
c.mkdir(b + "/empty")
c.rmdir(b + "/empty")
assert not c.exists(b + "/empty")
print("done")
"#,
        &[&b],
    )?;
    ensure!(out.contains("done"), "{out}");
    // S3 sees the results once committed (within 2 s)
    let got = s3_get_eventually(&n.server, &b, "e/moved/g", 5000).await?;
    ensure!(got[..4096] == [b'A'; 4096][..]);
    let head = n
        .server
        .s3()
        .head_object()
        .bucket(&b)
        .key("e/moved/g")
        .send()
        .await?;
    let meta = head.metadata().cloned().unwrap_or_default();
    ensure!(
        meta.get("mode").map(String::as_str) == Some(&(0o100640u32).to_string()[..]),
        "mode metadata: {meta:?}"
    );
    ensure!(
        meta.get("uid").map(String::as_str) == Some("65534"),
        "{meta:?}"
    );
    let link = s3_get(&n.server, &b, "e/link").await?;
    ensure!(link == b"moved/g", "symlink body");
    ensure!(
        s3_get(&n.server, &b, "d/g").await.is_err(),
        "the old name is gone after the rename"
    );
    Ok(())
}

/// New files and directories belong to the caller's AUTH_SYS ids, root
/// squashed to the anonymous ids (the default `--nfs-squash root`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_objects_belong_to_the_caller_and_root_is_squashed() -> Result<()> {
    let n = Nfs::start(&[]).await?;
    let b = n.bucket("nfsown").await?;
    let out = n.py(
        r#"
b = "/" + sys.argv[1]
u = nfs_rs.Client.connect(sys.argv[2], uid=1234, gid=1235)
with u.open(b + "/mine", "wb") as f:
    f.write(b"m")
u.mkdir(b + "/mydir")
u.symlink("mine", b + "/mylink")
with c.open(b + "/roots", "wb") as f:
    f.write(b"r")
for name in ["mine", "mydir", "mylink", "roots"]:
    st = c.stat(b + "/" + name)
    print(name, st.uid, st.gid)
"#,
        &[&b, &n.py_url()],
    )?;
    for (name, ids) in [
        ("mine", "1234 1235"),
        ("mydir", "1234 1235"),
        ("mylink", "1234 1235"),
        ("roots", "65534 65534"),
    ] {
        let line = out.lines().find(|l| l.starts_with(&format!("{name} ")));
        ensure!(
            line == Some(&format!("{name} {ids}")[..]),
            "{name} must be owned by {ids}: {out}"
        );
    }
    Ok(())
}

/// Calls are checked against modes and owners as a kernel NFS server
/// checks them: objects written over S3 show the anonymous owner and open
/// modes, so any caller may use them; a caller's private file refuses
/// everyone else (READ, WRITE, CREATE in its directory, REMOVE, RENAME:
/// ACCES; chmod, chown, utimes: PERM), ACCESS says so, the group bits
/// count for the file's group, and refused writes leave the object as
/// it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modes_and_owners_are_checked_for_each_caller() -> Result<()> {
    let n = Nfs::start(&[]).await?;
    let b = n.bucket("nfsperm").await?;
    s3_put(&n.server, &b, "s3obj", b"from s3".to_vec()).await?;
    let out = n.py(
        r#"
b = "/" + sys.argv[1]
url = sys.argv[2]
alice = nfs_rs.Client.connect(url, uid=1001, gid=1001)
bob = nfs_rs.Client.connect(url, uid=1002, gid=1002)
carol = nfs_rs.Client.connect(url, uid=1003, gid=1001)
st = c.stat(b + "/s3obj")
print("s3obj", st.uid, st.gid, oct(st.mode & 0o7777))
print("bob s3 write", err(lambda: bob.open(b + "/s3obj", "r+b").write_at(b"FROM", 0)))
alice.mkdir(b + "/priv")
with alice.open(b + "/priv/secret", "wb") as f:
    f.write(b"alice only")
alice.chmod(b + "/priv/secret", 0o600)
st = c.stat(b + "/priv")
print("priv", st.uid, st.gid, oct(st.mode & 0o7777))
print("bob read", err(lambda: bob.open(b + "/priv/secret", "rb").read()))
print("bob write", err(lambda: bob.open(b + "/priv/secret", "r+b").write_at(b"bob!", 0)))
print("bob create", err(lambda: bob.open(b + "/priv/new", "wb").write(b"x")))
print("bob remove", err(lambda: bob.unlink(b + "/priv/secret")))
print("bob rename", err(lambda: bob.rename(b + "/priv/secret", b + "/stolen")))
print("bob chmod", err(lambda: bob.chmod(b + "/priv/secret", 0o666)))
print("bob chown", err(lambda: bob.chown(b + "/priv/secret", 1002, 1002)))
print("bob utime", err(lambda: bob.utime(b + "/priv/secret", ns=(1, 1))))
print("bob truncate", err(lambda: bob.truncate(b + "/priv/secret", 0)))
print("squashed root read", err(lambda: c.open(b + "/priv/secret", "rb").read()))
print("alice gives away", err(lambda: alice.chown(b + "/priv/secret", 1002, 1001)))
print("access alice", alice.access(b + "/priv/secret", 6), "bob", bob.access(b + "/priv/secret", 4))
print("alice read", alice.open(b + "/priv/secret", "rb").read().decode())
alice.chmod(b + "/priv/secret", 0o640)
print("carol read", carol.open(b + "/priv/secret", "rb").read().decode())
print("carol write", err(lambda: carol.open(b + "/priv/secret", "r+b").write_at(b"carol", 0)))
print("access carol", carol.access(b + "/priv/secret", 4), carol.access(b + "/priv/secret", 2))
"#,
        &[&b, &n.py_url()],
    )?;
    let line = |prefix: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_default()
            .to_string()
    };
    ensure!(line("s3obj ") == "s3obj 65534 65534 0o666", "{out}");
    ensure!(line("bob s3 write ") == "bob s3 write ok", "{out}");
    ensure!(line("priv ") == "priv 1001 1001 0o755", "{out}");
    for op in [
        "bob read",
        "bob write",
        "bob create",
        "bob remove",
        "bob rename",
        "bob chmod",
        "bob chown",
        "bob utime",
        "bob truncate",
        "squashed root read",
        "alice gives away",
        "carol write",
    ] {
        let l = line(&format!("{op} "));
        ensure!(
            l.contains("NfsPermissionError"),
            "{op} must be refused: {l}\n{out}"
        );
    }
    ensure!(
        line("access alice") == "access alice True bob False",
        "{out}"
    );
    ensure!(line("alice read ") == "alice read alice only", "{out}");
    ensure!(line("carol read ") == "carol read alice only", "{out}");
    ensure!(line("access carol") == "access carol True False", "{out}");
    // the refused writes changed nothing in the store; bob's allowed one did
    s3_eventually(
        &n.server,
        &b,
        "priv/secret",
        b"alice only",
        Duration::from_secs(5),
    )
    .await?;
    s3_eventually(&n.server, &b, "s3obj", b"FROM s3", Duration::from_secs(5)).await?;
    Ok(())
}

/// The spool fills up (the export's state folder on a 6 MiB tmpfs): the
/// UNSTABLE WRITEs are written behind the replies, so the ENOSPC of one
/// reaches the client as NFS3ERR_NOSPC at a later WRITE or at the COMMIT,
/// never an acknowledged COMMIT; the object being overwritten keeps its
/// bytes, and the export goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_is_nospc_and_changes_nothing() -> Result<()> {
    use cairn_tests::nfs3;
    use nfs3_client::nfs3_types::nfs3::stable_how::UNSTABLE;
    let state = tempfile::tempdir()?;
    let _tmpfs = cairn_tests::tmpfs::Tmpfs::mount(state.path(), "6m")?;
    let state_arg = state.path().to_string_lossy().into_owned();
    let n = Nfs::start(&["--nfs-state", &state_arg]).await?;
    let b = n.bucket("nfsfull").await?;
    s3_put(&n.server, &b, "f", b"before".to_vec()).await?;
    let mut c = nfs3::mount(n.port, &n.export).await?;
    let fh = nfs3::lookup(&mut c, &format!("{b}/f")).await?;
    let chunk = vec![7u8; 1 << 20];
    let mut refused = None;
    for i in 0..16u64 {
        if let Err(e) = nfs3::write(&mut c, &fh, i << 20, &chunk, UNSTABLE).await {
            refused = Some(e.to_string());
            break;
        }
    }
    let commit = nfs3::commit(&mut c, &fh).await;
    ensure!(
        commit.is_err(),
        "COMMIT must not acknowledge bytes that did not fit"
    );
    let why = refused.unwrap_or_else(|| format!("{:?}", commit.err()));
    ensure!(why.contains("NFS3ERR_NOSPC"), "want NOSPC: {why}");
    // the handle is released after its idle second, its commit fails:
    // the store still holds the object as it was
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ensure!(s3_get(&n.server, &b, "f").await? == b"before");
    // and the export still serves
    let out = n.py(
        r#"print(c.open("/" + sys.argv[1] + "/f", "rb").read().decode())"#,
        &[&b],
    )?;
    ensure!(out.trim() == "before", "{out}");
    Ok(())
}

/// Clients that reset their connection at once (RST before the server has
/// read the peer's address) do not take the export down: nfs3_server's
/// accept loop panics on each, and Cairn runs it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_connections_leave_the_export_serving() -> Result<()> {
    let n = Nfs::start(&[]).await?;
    let b = n.bucket("nfsrst").await?;
    s3_put(&n.server, &b, "still", b"here".to_vec()).await?;
    run(Command::new(python()?).arg("-c").arg(format!(
        r#"
import socket, struct
for _ in range(50):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.connect(("127.0.0.1", {}))
    s.close()
"#,
        n.port
    )))?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = run(libnfs("nfs-cat")?.arg(n.url(&format!("{b}/still"))))?.stdout;
    ensure!(got == b"here", "nfs-cat after reset connections: {got:?}");
    Ok(())
}

async fn s3_get_eventually(s: &Server, b: &str, k: &str, len: usize) -> Result<Vec<u8>> {
    let t0 = Instant::now();
    loop {
        if let Ok(got) = s3_get(s, b, k).await
            && got.len() == len
        {
            return Ok(got);
        }
        if t0.elapsed() > Duration::from_secs(3) {
            bail!("{b}/{k} of {len} bytes not in S3");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_of_5000_entries_lists_in_full() -> Result<()> {
    let n = Nfs::start(&[]).await?;
    let b = n.bucket("nfsdir").await?;
    // made through S3 (fast), listed through NFS with READDIRPLUS pages
    let s3 = n.server.s3();
    let keys: Vec<String> = (0..5000).map(|i| format!("big/f{i:05}")).collect();
    for chunk in keys.chunks(100) {
        let mut set = tokio::task::JoinSet::new();
        for k in chunk {
            let (s3, b, k) = (s3.clone(), b.clone(), k.clone());
            set.spawn(async move {
                s3.put_object()
                    .bucket(b)
                    .key(k)
                    .body(ByteStream::from_static(b"x"))
                    .send()
                    .await
            });
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
    }
    let out = n.py(
        r#"
names = c.listdir("/" + sys.argv[1] + "/big")
print(len(names), len(set(names)))
"#,
        &[&b],
    )?;
    ensure!(out.trim() == "5000 5000", "nfs-rs listed: {out}");
    let ls = run(libnfs("nfs-ls")?.arg(n.url(&format!("{b}/big"))))?.stdout;
    let ls = String::from_utf8_lossy(&ls);
    let count = ls.lines().filter(|l| l.contains(" f0")).count();
    ensure!(count == 5000, "nfs-ls listed {count} entries");
    // plain READDIR (neither client above sends it), in 4 KiB replies
    // that each resume at the last cookie
    let mut c = cairn_tests::nfs3::mount(n.port, &n.export).await?;
    let dir = cairn_tests::nfs3::lookup(&mut c, &format!("{b}/big")).await?;
    let (names, replies) = cairn_tests::nfs3::readdir_all(&mut c, &dir, 4096).await?;
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    ensure!(
        names.len() == 5000 && unique.len() == 5000,
        "READDIR listed {} names ({} distinct) in {replies} replies",
        names.len(),
        unique.len()
    );
    ensure!(replies > 10, "4 KiB replies must page: {replies}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_survives_a_restart_and_goes_stale_when_deleted() -> Result<()> {
    let mut n = Nfs::start(&[]).await?;
    let b = n.bucket("nfsfh").await?;
    s3_put(&n.server, &b, "keep/me", b"before restart".to_vec()).await?;
    // one client process holds an open file (its handle) across a restart
    let script = format!(
        "{PRELUDE}\nc = nfs_rs.Client.connect({:?})\n{}",
        n.py_url(),
        r#"
f = c.open("/" + sys.argv[1] + "/keep/me", "rb")
print(f.read_at(0, 100).decode(), flush=True)
sys.stdin.readline()
print(f.read_at(0, 100).decode(), flush=True)
sys.stdin.readline()
print(err(lambda: f.read_at(0, 100)), flush=True)
"#
    );
    let mut child = Command::new(python()?)
        .arg("-c")
        .arg(script)
        .arg(&b)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let first = lines.next().context("first read")??;
    ensure!(first == "before restart", "{first}");
    n.server.restart().await?;
    writeln!(stdin, "go")?;
    let second = lines.next().context("read after restart")??;
    ensure!(second == "before restart", "after restart: {second}");
    n.server
        .s3()
        .delete_object()
        .bucket(&b)
        .key("keep/me")
        .send()
        .await?;
    // past the export's 100 ms trust in an open read handle
    tokio::time::sleep(Duration::from_millis(300)).await;
    writeln!(stdin, "go")?;
    let third = lines.next().context("read after delete")??;
    ensure!(
        third.contains("invalid file handle") || third.to_lowercase().contains("stale"),
        "a deleted object's handle must be NFS3ERR_STALE: {third}"
    );
    let _ = child.wait();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() -> Result<()> {
    // the longest idle time, so the kill lands before the commit; COMMITs
    // are logged at debug
    let mut n = Nfs::start_full(
        &["--nfs-commit-idle-ms", "2000"],
        "cairn",
        vec![(
            "CAIRN_LOG".into(),
            "info,cairn_nfs=debug,nfs3_server=off".into(),
        )],
    )
    .await?;
    let b = n.bucket("nfskill").await?;
    s3_put(&n.server, &b, "old", vec![b'o'; 300_000]).await?;
    // a new file and an overwrite inside an existing object, each WRITE
    // acknowledged; the server is killed before the idle commit. nfs-rs
    // writes UNSTABLE and, since the replies echo that, its write_at
    // returns only after a COMMIT was answered.
    let out = n.py(
        r#"
b = "/" + sys.argv[1]
with c.open(b + "/new", "wb") as f:
    f.write_at(b"N" * 3_000_000, 0)
    f.write_at(b"tail", 3_000_000)
f = c.open(b + "/old", "r+b")
f.write_at(b"X" * 1000, 100_000)
print("acked", flush=True)
"#,
        &[&b],
    )?;
    ensure!(out.contains("acked"));
    let commits = n.server.log().matches("NFS COMMIT").count();
    ensure!(
        commits >= 3,
        "each nfs-rs write_at ends with a COMMIT; the server answered {commits}"
    );
    n.server.kill()?;
    n.server.restart().await?;
    let log = n.server.log();
    ensure!(
        log.matches("staged before a restart").count() == 2,
        "both files must come back through recovery at start:\n{log}"
    );
    let mut want_new = vec![b'N'; 3_000_000];
    want_new.extend_from_slice(b"tail");
    let mut want_old = vec![b'o'; 300_000];
    want_old[100_000..101_000].fill(b'X');
    same_bytes(
        "S3 after SIGKILL (new)",
        &s3_get(&n.server, &b, "new").await?,
        &want_new,
    )?;
    same_bytes(
        "S3 after SIGKILL (old)",
        &s3_get(&n.server, &b, "old").await?,
        &want_old,
    )?;
    let got = run(libnfs("nfs-cat")?.arg(n.url(&format!("{b}/old"))))?.stdout;
    same_bytes("NFS after SIGKILL", &got, &want_old)?;
    Ok(())
}

/// Stable WRITEs into a large stored file stage only the bytes written (a
/// sparse staging file and a sidecar naming its base and ranges); after a
/// SIGKILL, recovery applies those ranges to the object and the rest of
/// the file is as it was. A sidecar that does not parse keeps its staging
/// file in lost+found and is logged as an ERROR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_writes_into_a_large_file_survive_sigkill_as_ranges() -> Result<()> {
    use cairn_tests::nfs3;
    use nfs3_client::nfs3_types::nfs3::stable_how::{FILE_SYNC, UNSTABLE};
    use std::os::unix::fs::MetadataExt as _;

    // the longest idle time, so the kill lands before the idle commit
    let mut n = Nfs::start(&["--nfs-commit-idle-ms", "2000"]).await?;
    let b = n.bucket("nfsranges").await?;
    let mib = 1usize << 20;
    let mut disk = random_bytes(24 * mib, 81);
    s3_put(&n.server, &b, "disk", disk.clone()).await?;
    let other = random_bytes(3 * mib, 82);
    s3_put(&n.server, &b, "other", other.clone()).await?;

    let mut c = nfs3::mount(n.port, &n.export).await?;
    let fh = nfs3::lookup(&mut c, &format!("{b}/disk")).await?;
    let mut applied = 0usize;
    let writes: [(usize, usize, u64); 3] =
        [(5 * mib + 3, 4096, 83), (17 * mib, 4096, 84), (9, 700, 85)];
    for (off, len, seed) in writes {
        let data = random_bytes(len, seed);
        nfs3::write(&mut c, &fh, off as u64, &data, FILE_SYNC).await?;
        disk[off..off + len].copy_from_slice(&data);
        applied += len;
    }
    // UNSTABLE then COMMIT, and a write across the end (the file grows)
    let data = random_bytes(64 << 10, 86);
    nfs3::write(&mut c, &fh, mib as u64, &data, UNSTABLE).await?;
    nfs3::commit(&mut c, &fh).await?;
    disk[mib..mib + data.len()].copy_from_slice(&data);
    applied += data.len();
    let tail = random_bytes(10_000, 87);
    let at = 24 * mib - 5000;
    nfs3::write(&mut c, &fh, at as u64, &tail, FILE_SYNC).await?;
    disk.truncate(at);
    disk.extend_from_slice(&tail);
    applied += tail.len();
    // a second file whose sidecar will not parse
    let ofh = nfs3::lookup(&mut c, &format!("{b}/other")).await?;
    nfs3::write(&mut c, &ofh, 100, b"lost", FILE_SYNC).await?;

    // the spool holds the written bytes, not copies of the files
    let spool = n.server.drives()[0].join(".cairn.sys/nfs/spool");
    let mut staged = Vec::new();
    for e in fs::read_dir(&spool)? {
        let p = e?.path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        if name.starts_with("stage-") && !name.contains('.') {
            staged.push(p);
        }
    }
    ensure!(staged.len() == 2, "two staging files: {staged:?}");
    let mut corrupted = false;
    for p in &staged {
        let m = fs::metadata(p)?;
        ensure!(
            m.blocks() * 512 < 4 * mib as u64,
            "{} holds {} bytes on disk for a file of {}",
            p.display(),
            m.blocks() * 512,
            m.len()
        );
        let side = p.with_file_name(format!(
            "{}.state",
            p.file_name().and_then(|n| n.to_str()).context("name")?
        ));
        ensure!(side.exists(), "no sidecar beside {}", p.display());
        if m.len() == other.len() as u64 {
            fs::write(&side, b"{not json")?;
            corrupted = true;
        }
    }
    ensure!(corrupted, "the staging of `other` was not found");
    drop(c);
    n.server.kill()?;
    n.server.restart().await?;

    let log = n.server.log();
    let line = log
        .lines()
        .find(|l| l.contains("staged before a restart"))
        .with_context(|| format!("no recovery at start:\n{log}"))?;
    ensure!(
        line.contains(&format!("bytes={applied}"))
            || line.contains(&format!("\"bytes\":{applied}")),
        "recovery must apply the {applied} bytes written, not the whole file: {line}"
    );
    ensure!(
        log.contains("a staging sidecar cannot be read") && log.contains("ERROR"),
        "an unreadable sidecar is an ERROR:\n{log}"
    );
    same_bytes(
        "S3 after SIGKILL (ranges recovered)",
        &s3_get(&n.server, &b, "disk").await?,
        &disk,
    )?;
    same_bytes(
        "S3 after SIGKILL (unreadable sidecar: unchanged)",
        &s3_get(&n.server, &b, "other").await?,
        &other,
    )?;
    let kept: Vec<String> = fs::read_dir(spool.join("lost+found"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    ensure!(
        kept.iter()
            .any(|k| k.starts_with("nfs-id") && !k.ends_with(".state"))
            && kept.iter().any(|k| k.ends_with(".state")),
        "the staging file and its sidecar are kept: {kept:?}"
    );
    Ok(())
}

/// UNSTABLE WRITEs are answered before they are durable, COMMIT makes them
/// durable, and a restart changes the write verifier, so a client can tell
/// that its uncommitted writes may be lost and send them again (RFC 1813).
/// What was committed, or written FILE_SYNC, survives a SIGKILL; a file
/// with only uncommitted writes keeps its stored bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unstable_writes_commit_and_a_restart_changes_the_verifier() -> Result<()> {
    use cairn_tests::nfs3;
    use nfs3_client::nfs3_types::nfs3::stable_how::{FILE_SYNC, UNSTABLE};

    // the longest idle time, so the kill lands before the idle commit
    let mut n = Nfs::start(&["--nfs-commit-idle-ms", "2000"]).await?;
    let b = n.bucket("nfsunstable").await?;
    let old = random_bytes(300_000, 71);
    s3_put(&n.server, &b, "old", old.clone()).await?;
    let mib = 1usize << 20;
    let (a, bb, cc) = (
        random_bytes(mib, 72),
        random_bytes(mib, 73),
        random_bytes(mib, 74),
    );

    let mut c = nfs3::mount(n.port, &n.export).await?;
    let dir = nfs3::lookup(&mut c, &b).await?;
    let fh = nfs3::create(&mut c, &dir, "new").await?;
    let (how, v1) = nfs3::write(&mut c, &fh, 0, &a, UNSTABLE).await?;
    ensure!(how == UNSTABLE, "an UNSTABLE WRITE is answered {how:?}");
    ensure!(
        nfs3::commit(&mut c, &fh).await? == v1,
        "COMMIT in the same server life must carry the WRITE's verifier"
    );
    let (how, v) = nfs3::write(&mut c, &fh, mib as u64, &bb, FILE_SYNC).await?;
    ensure!(how == FILE_SYNC && v == v1, "a FILE_SYNC WRITE: {how:?}");
    // uncommitted: the third MiB, and a change inside the stored object
    nfs3::write(&mut c, &fh, 2 * mib as u64, &cc, UNSTABLE).await?;
    let old_fh = nfs3::lookup(&mut c, &format!("{b}/old")).await?;
    nfs3::write(&mut c, &old_fh, 1000, &[b'X'; 5000], UNSTABLE).await?;
    drop(c);
    n.server.kill()?;
    n.server.restart().await?;

    let mut c = nfs3::mount(n.port, &n.export).await?;
    let v2 = nfs3::commit(&mut c, &fh).await?;
    ensure!(
        v2 != v1,
        "after a restart COMMIT must carry a new verifier, so the client resends"
    );
    // what was durable came back through recovery at start
    let got = s3_get(&n.server, &b, "new").await?;
    ensure!(
        got.len() >= 2 * mib,
        "{} bytes after the restart",
        got.len()
    );
    same_bytes("committed MiB", &got[..mib], &a)?;
    same_bytes("FILE_SYNC MiB", &got[mib..2 * mib], &bb)?;
    // uncommitted staging is dropped, not committed over the object
    same_bytes(
        "object with only uncommitted writes",
        &s3_get(&n.server, &b, "old").await?,
        &old,
    )?;
    let log = n.server.log();
    ensure!(
        log.contains("removed staging files of UNSTABLE writes"),
        "the uncommitted staging file must be removed at start:\n{log}"
    );
    // the client writes again what it had not seen committed
    let (_, v) = nfs3::write(&mut c, &fh, 2 * mib as u64, &cc, UNSTABLE).await?;
    ensure!(v == v2 && nfs3::commit(&mut c, &fh).await? == v2);
    let mut want = a;
    want.extend_from_slice(&bb);
    want.extend_from_slice(&cc);
    same_bytes(
        "S3 after the resend",
        &s3_get_eventually(&n.server, &b, "new", want.len()).await?,
        &want,
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_get_their_nfs_status() -> Result<()> {
    let n = Nfs::start(&[]).await?;
    let b = n.bucket("nfserr").await?;
    s3_put(&n.server, &b, "d/file", b"x".to_vec()).await?;
    let long = "n".repeat(300);
    let out = n.py(
        r#"
b = "/" + sys.argv[1]
print("noent", err(lambda: c.stat(b + "/missing")))
print("exist", err(lambda: c.mkdir(b + "/d")))
print("notempty", err(lambda: c.rmdir(b + "/d")))
print("notdir", err(lambda: c.listdir(b + "/d/file")))
print("isdir", err(lambda: c.open(b + "/d", "rb").read()))
print("nametoolong", err(lambda: c.open(b + "/" + sys.argv[2], "wb").close()))
"#,
        &[&b, &long],
    )?;
    let line = |k: &str| {
        out.lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_default()
            .to_string()
    };
    ensure!(line("noent ").contains("NotFound"), "{out}");
    ensure!(line("exist ").contains("AlreadyExists"), "{out}");
    ensure!(line("notempty ").contains("not empty"), "{out}");
    ensure!(line("notdir ").contains("NotADirectory"), "{out}");
    ensure!(line("isdir ").contains("IsADirectory"), "{out}");
    ensure!(
        line("nametoolong ").to_lowercase().contains("too long"),
        "{out}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_export_refuses_changes_and_keeps_objects() -> Result<()> {
    let n = Nfs::start(&["--nfs-read-only"]).await?;
    let b = n.bucket("nfsro").await?;
    s3_put(&n.server, &b, "f", b"original".to_vec()).await?;
    let out = n.py(
        r#"
b = "/" + sys.argv[1]
print("read", c.open(b + "/f", "rb").read().decode())
print("write", err(lambda: c.open(b + "/f", "r+b").write_at(b"changed!", 0)))
print("mkdir", err(lambda: c.mkdir(b + "/x")))
print("remove", err(lambda: c.unlink(b + "/f")))
"#,
        &[&b],
    )?;
    ensure!(out.contains("read original"), "{out}");
    for op in ["write", "mkdir", "remove"] {
        let l = out.lines().find(|l| l.starts_with(op)).unwrap_or_default();
        ensure!(
            l.to_lowercase().contains("read-only") || l.contains("ROFS"),
            "{op} on a read-only export: {l}"
        );
    }
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("x");
    fs::write(&src, b"new")?;
    let cp = run_status(libnfs("nfs-cp")?.arg(&src).arg(n.url(&format!("{b}/f"))))?;
    ensure!(
        !cp.status.success(),
        "nfs-cp onto a read-only export succeeded"
    );
    ensure!(
        s3_get(&n.server, &b, "f").await? == b"original",
        "a refused write changed the object"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_options_buckets_networks_and_name() -> Result<()> {
    // only the named bucket, a custom export name, a network allow list
    let port = free_port()?;
    let server = Server::start(StartOpts {
        extra_args: vec![
            "--nfs".into(),
            format!("127.0.0.1:{port}"),
            "--nfs-export".into(),
            "vol".into(),
            "--nfs-bucket".into(),
            "shown".into(),
            "--nfs-allow".into(),
            "127.0.0.0/8".into(),
            "--no-scanner".into(),
        ],
        ..StartOpts::default()
    })
    .await?;
    for b in ["shown", "hidden"] {
        server.s3().create_bucket().bucket(b).send().await?;
    }
    let n = Nfs {
        server,
        port,
        export: "vol".into(),
    };
    let ls = String::from_utf8_lossy(&run(libnfs("nfs-ls")?.arg(n.url("")))?.stdout).into_owned();
    ensure!(ls.contains("shown") && !ls.contains("hidden"), "{ls}");
    let (ok, text) = n.py_status(r#"print(err(lambda: c.mkdir("/newbucket")))"#)?;
    ensure!(
        ok && text.contains("Permission"),
        "mkdir at the top of a bucket export: {text}"
    );
    let cat = run_status(libnfs("nfs-ls")?.arg(n.url("hidden")))?;
    ensure!(
        !cat.status.success(),
        "a bucket outside the export was listed"
    );
    drop(n);

    // a client outside the allowed networks is refused
    let refused = Nfs::start(&["--nfs-allow", "10.0.0.0/8"]).await?;
    let b = refused.bucket("nfsallow").await?;
    let ls = run_status(libnfs("nfs-ls")?.arg(refused.url(&b)))?;
    ensure!(
        !ls.status.success(),
        "a client outside --nfs-allow mounted the export"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nfs_writes_show_in_the_fuse_mount_and_back() -> Result<()> {
    let dirs = tempfile::tempdir()?;
    let mnt = dirs.path().join("mnt");
    fs::create_dir_all(&mnt)?;
    let n = Nfs::start(&[
        "--mount",
        mnt.to_str().context("path")?,
        "--mount-spool",
        dirs.path().join("spool").to_str().context("path")?,
        "--mount-attr-ttl-ms",
        "0",
    ])
    .await?;
    let guard = Unmount(mnt.clone());
    let b = n.bucket("nfsfuse").await?;
    let src = dirs.path().join("src");
    write_random_file(&src, 5 << 20, 9)?;
    run(libnfs("nfs-cp")?
        .arg(&src)
        .arg(n.url(&format!("{b}/via-nfs"))))?;
    let want = fs::read(&src)?;
    let t0 = Instant::now();
    let in_mount = mnt.join(&b).join("via-nfs");
    loop {
        if fs::read(&in_mount).map(|g| g == want).unwrap_or(false) {
            break;
        }
        ensure!(
            t0.elapsed() < Duration::from_secs(3),
            "not in the FUSE mount within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // written in the mount (committed at close), read over NFS
    let other = random_bytes(200_000, 10);
    fs::write(mnt.join(&b).join("via-fuse"), &other)?;
    let got = run(libnfs("nfs-cat")?.arg(n.url(&format!("{b}/via-fuse"))))?.stdout;
    same_bytes("FUSE write read over NFS", &got, &other)?;
    drop(n);
    drop(guard);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_quorum_is_io_and_changes_nothing_then_staged_writes_commit() -> Result<()> {
    let n = Nfs::start(&["--nfs-commit-idle-ms", "2000"]).await?;
    let b = n.bucket("nfsquorum").await?;
    s3_put(&n.server, &b, "keep", b"unchanged".to_vec()).await?;
    // a WRITE acknowledged (durable in staging) just before the drives go
    let want = b"written before the drives went away".to_vec();
    let out = n.py(
        r#"
with c.open("/" + sys.argv[1] + "/late", "wb") as f:
    f.write_at(sys.argv[2].encode(), 0)
print("written")
"#,
        &[&b, std::str::from_utf8(&want)?],
    )?;
    ensure!(out.contains("written"), "{out}");
    // three of the four drive folders go away: no read or write quorum
    let drives = n.server.drives().to_vec();
    let away: Vec<_> = drives[1..]
        .iter()
        .map(|d| (d.clone(), d.with_extension("away")))
        .collect();
    for (d, a) in &away {
        fs::rename(d, a)?;
    }
    let out = n.py(
        r#"
b = "/" + sys.argv[1]
print("mkdir", err(lambda: c.mkdir(b + "/newdir")))
print("remove", err(lambda: c.unlink(b + "/keep")))
"#,
        &[&b],
    )?;
    for op in ["mkdir", "remove"] {
        let l = out.lines().find(|l| l.starts_with(op)).unwrap_or_default();
        let low = l.to_lowercase();
        ensure!(
            low.contains("i/o") || low.contains("input/output") || low.contains("io error"),
            "{op} without quorum must be NFS3ERR_IO: {l}"
        );
    }
    // the idle commit fails and is kept for a retry
    let t0 = Instant::now();
    while !n.server.log().contains("will retry") {
        ensure!(
            t0.elapsed() < Duration::from_secs(10),
            "no failed commit logged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (d, a) in &away {
        fs::rename(a, d)?;
    }
    ensure!(
        s3_get(&n.server, &b, "keep").await? == b"unchanged",
        "a refused REMOVE changed the object"
    );
    s3_eventually(&n.server, &b, "late", &want, Duration::from_secs(15)).await?;
    Ok(())
}

/// The core's rules hold on this front: NFS writes into a bucket with
/// default encryption are encrypted (no plaintext on the drives), and an
/// SSE-C object, whose key NFS cannot present, is NFS3ERR_ACCES.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_default_encryption_covers_nfs_writes() -> Result<()> {
    use aws_sdk_s3::types::{ServerSideEncryption, ServerSideEncryptionConfiguration};
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let env = vec![(
        "CAIRN_KMS_SECRET_KEY".to_string(),
        format!("cairn-default:{}", b64.encode([0x46u8; 32])),
    )];
    let n = Nfs::start_full(&[], "cairn", env).await?;
    let b = n.bucket("nfssse").await?;
    let c = n.server.s3();
    c.put_bucket_encryption()
        .bucket(&b)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(cairn_tests::sse::encryption_rule(
                    ServerSideEncryption::Aes256,
                    None,
                )?)
                .build()?,
        )
        .send()
        .await?;
    let marker = b"NFS-WRITES-MUST-BE-ENCRYPTED-77";
    let mk = |len: usize| -> Vec<u8> { marker.iter().copied().cycle().take(len).collect() };
    let dir = tempfile::tempdir()?;
    // a small file (staged, one PUT) and a large one (streamed multipart)
    for (name, len) in [("small.txt", 10_000usize), ("large.bin", 12 << 20)] {
        let data = mk(len);
        let src = dir.path().join(name);
        fs::write(&src, &data)?;
        run(libnfs("nfs-cp")?
            .arg(&src)
            .arg(n.url(&format!("{b}/{name}"))))?;
        s3_eventually(&n.server, &b, name, &data, Duration::from_secs(3)).await?;
        let h = c.head_object().bucket(&b).key(name).send().await?;
        ensure!(
            h.server_side_encryption() == Some(&ServerSideEncryption::Aes256),
            "{name} written over NFS is not encrypted: {:?}",
            h.server_side_encryption()
        );
    }
    // the export's staging (spool, under a folder `nfs`) holds plaintext
    // until each commit, as the FUSE spool does; shards are what is checked
    let hits: Vec<_> = cairn_tests::data::files_holding(n.server.drives(), marker)?
        .into_iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "nfs"))
        .collect();
    ensure!(hits.is_empty(), "plaintext in {hits:?}");
    let key = [0x57u8; 32];
    c.put_object()
        .bucket(&b)
        .key("customer.bin")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(b64.encode(key))
        .sse_customer_key_md5(b64.encode(<md5::Md5 as md5::Digest>::digest(key)))
        .body(ByteStream::from(mk(1000)))
        .send()
        .await?;
    let out = n.py(
        r#"print(err(lambda: c.open("/" + sys.argv[1] + "/customer.bin", "rb").read()))"#,
        &[&b],
    )?;
    ensure!(
        out.contains("Permission"),
        "reading an SSE-C object over NFS must be NFS3ERR_ACCES: {out}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_and_worm_objects_cannot_be_changed_over_nfs() -> Result<()> {
    use aws_sdk_s3::types::ObjectLockRetentionMode;
    // root unsquashed: the permission checks pass, the core's rules refuse
    let n = Nfs::start(&["--nfs-squash", "none"]).await?;
    let c = n.server.s3();
    let lb = bucket_name("nfslock");
    c.create_bucket()
        .bucket(&lb)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await?;
    c.put_object()
        .bucket(&lb)
        .key("f")
        .body(ByteStream::from_static(b"original"))
        .send()
        .await?;
    cairn_tests::lock::retain(
        &c,
        &lb,
        "f",
        None,
        ObjectLockRetentionMode::Compliance,
        3600,
    )
    .await?;
    let wb = n.bucket("nfsworm").await?;
    c.put_object()
        .bucket(&wb)
        .key("f")
        .body(ByteStream::from_static(b"original"))
        .send()
        .await?;
    let out = cairn_tests::admin(&n.server, &["bucket", "worm", &wb, "on"], None).await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let script = r#"
b = "/" + sys.argv[1]
f = b + "/f"
c.open(b + "/other", "wb").write_at(b"other", 0)
print("write", err(lambda: c.open(f, "r+b").write_at(b"changed!", 0)))
print("truncate", err(lambda: c.truncate(f, 1)))
print("chmod", err(lambda: c.chmod(f, 0o600)))
print("chown", err(lambda: c.chown(f, 1234, 1234)))
print("utime", err(lambda: c.utime(f, ns=(1, 1))))
print("rename", err(lambda: c.rename(f, b + "/g")))
print("replace", err(lambda: c.rename(b + "/other", f)))
print("remove", err(lambda: c.unlink(f)))
print("read", c.open(f, "rb").read().decode())
"#;
    for (b, want) in [(&lb, ["acces", "permission"]), (&wb, ["rofs", "read-only"])] {
        let out = n.py(script, &[b])?;
        for op in [
            "write", "truncate", "chmod", "chown", "utime", "rename", "replace", "remove",
        ] {
            let l = out
                .lines()
                .find(|l| l.starts_with(op))
                .unwrap_or_default()
                .to_lowercase();
            ensure!(
                want.iter().any(|w| l.contains(w)),
                "{op} in {b}: {l}\n{out}"
            );
        }
        ensure!(out.contains("read original"), "{out}");
        // NFS writes are staged and committed after an idle second: wait
        // past it, then the store must still hold the original
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        ensure!(
            s3_get(&n.server, b, "f").await? == b"original",
            "{b}/f changed over NFS"
        );
    }
    Ok(())
}
