//! POSIX conformance of the mount and the export (issue 20): special files
//! (FIFOs, sockets, devices) stored as s3fs stores them, the permission
//! rules of a local filesystem, times and name limits. Rules are checked
//! by running the same operations, as several uids, on the mount and on a
//! local folder (ext4 on the test machines): the kernel's answers there
//! are the expected ones.

use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};
use cairn_tests::mount::{Mounted, S3fs, Unmount};
use cairn_tests::nfs_server::Nfs;
use cairn_tests::{nfs3, require_tool, run};

/// The type letter `ls -l` shows, or `-` for a regular file.
fn type_char(ft: fs::FileType) -> char {
    if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_fifo() {
        'p'
    } else if ft.is_socket() {
        's'
    } else if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else {
        '-'
    }
}

/// mknod(2): `mode` holds the type bits (S_IFIFO, S_IFCHR, S_IFBLK).
fn mknod(p: &Path, mode: u32, dev: u64) -> Result<()> {
    use nix::sys::stat::{Mode, SFlag};
    nix::sys::stat::mknod(
        p,
        SFlag::from_bits_truncate(mode & libc::S_IFMT),
        Mode::from_bits_truncate(mode & 0o7777),
        dev,
    )
    .with_context(|| format!("mknod {}", p.display()))
}

/// A server with the buckets mounted for every user (`allow_other`), its
/// mount reachable by them.
async fn mount_for_all(extra: &[&str]) -> Result<Mounted> {
    let mut args = vec!["--mount-allow-other"];
    args.extend_from_slice(extra);
    let m = Mounted::start(&args).await?;
    if let Some(parent) = m.mnt.parent() {
        fs::set_permissions(parent, fs::Permissions::from_mode(0o755))?;
    }
    Ok(m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifos_sockets_and_devices_on_the_mount() -> Result<()> {
    let mut m = mount_for_all(&[]).await?;
    let (b, root) = m.bucket("special")?;

    // a FIFO carries bytes from a writer to a reader
    let fifo = root.join("pipe");
    mknod(&fifo, libc::S_IFIFO | 0o640, 0)?;
    let md = fs::symlink_metadata(&fifo)?;
    ensure!(md.file_type().is_fifo(), "a FIFO: {:?}", md.file_type());
    ensure!(
        md.mode() & 0o7777 == 0o640 && md.len() == 0,
        "mode {:o} size {}",
        md.mode(),
        md.len()
    );
    let w = fifo.clone();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new().write(true).open(&w)?;
        for i in 0..100u32 {
            f.write_all(format!("line {i}\n").as_bytes())?;
        }
        Ok(())
    });
    let mut got = String::new();
    fs::File::open(&fifo)?.read_to_string(&mut got)?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    let want: String = (0..100).map(|i| format!("line {i}\n")).collect();
    ensure!(
        got == want,
        "FIFO carried {} bytes, want {}",
        got.len(),
        want.len()
    );

    // a unix socket bound on the mount accepts a connection
    let sock = root.join("s.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).context("bind on the mount")?;
    ensure!(
        fs::symlink_metadata(&sock)?.file_type().is_socket(),
        "a socket"
    );
    let client = std::thread::spawn({
        let sock = sock.clone();
        move || -> std::io::Result<String> {
            let mut s = std::os::unix::net::UnixStream::connect(&sock)?;
            s.write_all(b"ping")?;
            s.shutdown(std::net::Shutdown::Write)?;
            let mut back = String::new();
            s.read_to_string(&mut back)?;
            Ok(back)
        }
    });
    let (mut conn, _) = listener.accept()?;
    let mut asked = String::new();
    conn.read_to_string(&mut asked)?;
    conn.write_all(format!("pong {asked}").as_bytes())?;
    drop(conn);
    let back = client
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))??;
    ensure!(back == "pong ping", "socket reply {back:?}");
    drop(listener);

    // devices with their numbers
    mknod(
        &root.join("null"),
        libc::S_IFCHR | 0o666,
        libc::makedev(1, 3),
    )?;
    mknod(
        &root.join("disk"),
        libc::S_IFBLK | 0o660,
        libc::makedev(8, 17),
    )?;
    let check_dev = |name: &str, blk: bool, maj: u32, min: u32| -> Result<()> {
        let md = fs::symlink_metadata(root.join(name))?;
        let ft = md.file_type();
        ensure!(
            if blk {
                ft.is_block_device()
            } else {
                ft.is_char_device()
            },
            "{name}: {ft:?}"
        );
        ensure!(
            md.rdev() == libc::makedev(maj, min),
            "{name}: rdev {}:{}",
            libc::major(md.rdev()),
            libc::minor(md.rdev())
        );
        Ok(())
    };
    check_dev("null", false, 1, 3)?;
    check_dev("disk", true, 8, 17)?;

    // stored as s3fs stores them: empty objects, the type in the mode
    let head = m
        .server
        .s3()
        .head_object()
        .bucket(&b)
        .key("disk")
        .send()
        .await?;
    let meta = head.metadata().cloned().unwrap_or_default();
    ensure!(
        head.content_length() == Some(0),
        "empty body: {:?}",
        head.content_length()
    );
    ensure!(
        // s3fs's decimal st_mode, type bits included (the umask applied)
        meta.get("mode") == Some(&fs::symlink_metadata(root.join("disk"))?.mode().to_string()),
        "mode {meta:?}"
    );
    ensure!(
        meta.get("rdev") == Some(&libc::makedev(8, 17).to_string()),
        "rdev {meta:?}"
    );

    // chmod, chown, utimens, rename and unlink work on them
    fs::set_permissions(&fifo, fs::Permissions::from_mode(0o604))?;
    std::os::unix::fs::chown(&fifo, Some(1234), Some(2345))?;
    run(Command::new("touch")
        .arg("-h")
        .arg("-d")
        .arg("@1500000000")
        .arg(&fifo))?;
    fs::rename(&fifo, root.join("pipe2"))?;
    fs::rename(root.join("null"), root.join("null2"))?;
    fs::remove_file(root.join("disk"))?;
    ensure!(fs::symlink_metadata(root.join("disk")).is_err(), "unlinked");
    let md = fs::symlink_metadata(root.join("pipe2"))?;
    ensure!(
        md.file_type().is_fifo()
            && (md.mode() & 0o7777, md.uid(), md.gid(), md.mtime())
                == (0o604, 1234, 2345, 1_500_000_000),
        "renamed FIFO: {:?} {:o} {} {} {}",
        md.file_type(),
        md.mode(),
        md.uid(),
        md.gid(),
        md.mtime()
    );

    // listings show the types (readdir and readdirplus), and so after a
    // remount, from the store alone
    let list = |root: &Path| -> Result<Vec<(String, char)>> {
        let mut v: Vec<(String, char)> = fs::read_dir(root)?
            .map(|e| {
                let e = e?;
                Ok((
                    e.file_name().to_string_lossy().into_owned(),
                    type_char(e.file_type()?),
                ))
            })
            .collect::<Result<_>>()?;
        v.sort();
        Ok(v)
    };
    let want = vec![
        ("null2".to_string(), 'c'),
        ("pipe2".to_string(), 'p'),
        ("s.sock".to_string(), 's'),
    ];
    ensure!(list(&root)? == want, "listing {:?}", list(&root)?);
    m.remount().await?;
    ensure!(
        list(&root)? == want,
        "listing after remount {:?}",
        list(&root)?
    );
    check_dev("null2", false, 1, 3)?;
    let md = fs::symlink_metadata(root.join("pipe2"))?;
    ensure!(
        md.file_type().is_fifo() && md.mode() & 0o7777 == 0o604,
        "FIFO after remount"
    );

    // s3fs-fuse mounting the same bucket sees the same types
    let work = tempfile::tempdir()?;
    let s3fs = S3fs::mount(&m.server, &b, work.path())?;
    for (name, t) in &want {
        let md = fs::symlink_metadata(s3fs.mnt.join(name))
            .with_context(|| format!("s3fs stat {name}"))?;
        ensure!(
            type_char(md.file_type()) == *t,
            "s3fs sees {name} as {:?}",
            md.file_type()
        );
    }
    ensure!(
        list(&s3fs.mnt)? == want,
        "s3fs listing {:?}",
        list(&s3fs.mnt)?
    );
    // and what s3fs makes, the mount shows
    mknod(&s3fs.mnt.join("by-s3fs"), libc::S_IFIFO | 0o600, 0).context("through s3fs")?;
    drop(s3fs);
    let md = fs::symlink_metadata(root.join("by-s3fs"))?;
    ensure!(
        md.file_type().is_fifo(),
        "s3fs's FIFO on the mount: {:?}",
        md.file_type()
    );
    Ok(())
}

/// A tree with every kind of file, archived with `tar cpf` locally and
/// extracted into the mount with `tar xpf`, compares equal (`tar -d`):
/// types, modes, owners, times, device numbers, symlink targets, bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tar_of_special_files_round_trips() -> Result<()> {
    require_tool("tar")?;
    let m = mount_for_all(&[]).await?;
    let (_, root) = m.bucket("tar")?;
    let work = tempfile::Builder::new()
        .prefix("cairn-tar-")
        .tempdir_in("/var/tmp")?;
    let src = work.path().join("src");
    fs::create_dir_all(src.join("dev/sub"))?;
    fs::write(src.join("file.txt"), b"bytes of a file\n")?;
    fs::write(src.join("dev/sub/exec.sh"), b"#!/bin/sh\necho hi\n")?;
    fs::set_permissions(
        src.join("dev/sub/exec.sh"),
        fs::Permissions::from_mode(0o4755),
    )?;
    std::os::unix::fs::symlink("../file.txt", src.join("dev/link"))?;
    mknod(&src.join("dev/fifo"), libc::S_IFIFO | 0o620, 0)?;
    mknod(
        &src.join("dev/tty0"),
        libc::S_IFCHR | 0o620,
        libc::makedev(4, 0),
    )?;
    mknod(
        &src.join("dev/sda1"),
        libc::S_IFBLK | 0o660,
        libc::makedev(8, 1),
    )?;
    mknod(
        &src.join("dev/big"),
        libc::S_IFCHR | 0o600,
        libc::makedev(511, 70000),
    )?;
    std::os::unix::fs::chown(src.join("dev/tty0"), Some(0), Some(5))?;
    std::os::unix::fs::chown(src.join("dev/fifo"), Some(1001), Some(1002))?;
    std::os::unix::fs::chown(src.join("file.txt"), Some(1003), Some(1004))?;
    run(Command::new("touch")
        .arg("-h")
        .arg("-d")
        .arg("@1400000000")
        .arg(src.join("dev/fifo")))?;
    run(Command::new("touch")
        .arg("-d")
        .arg("@1300000000")
        .arg(src.join("dev/sub")))?;
    let tar = work.path().join("t.tar");
    run(Command::new("tar")
        .arg("cpf")
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .arg("."))?;
    let dst = root.join("x");
    fs::create_dir(&dst)?;
    run(Command::new("tar").arg("xpf").arg(&tar).arg("-C").arg(&dst))?;
    let out = cairn_tests::cmd::run_status(
        Command::new("tar")
            .arg("--compare")
            .arg("-f")
            .arg(&tar)
            .arg("-C")
            .arg(&dst),
    )?;
    ensure!(
        out.status.success(),
        "tar --compare found differences:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

// ---------------------------------------------------------------------
// Permission rules: the same operations on the mount and on a local folder

/// The operations a step runs, in a Python the other uids can run
/// (/usr/bin/python3: the test's own may live under /root). Prints `ok`
/// or the errno's name.
const OPS: &str = r#"
import os, sys, errno
op, a = sys.argv[1], sys.argv[2:]
def o(path, flags, mode=0o644):
    os.close(os.open(path, flags, mode))
try:
    if op == "chmod": os.chmod(a[0], int(a[1], 8))
    elif op == "chown": os.chown(a[0], int(a[1]), int(a[2]))
    elif op == "unlink": os.unlink(a[0])
    elif op == "rmdir": os.rmdir(a[0])
    elif op == "rename": os.rename(a[0], a[1])
    elif op == "mkdir": os.mkdir(a[0], int(a[1], 8))
    elif op == "mkfifo": os.mkfifo(a[0], int(a[1], 8))
    elif op == "mknod": os.mknod(a[0], int(a[1], 8) | 0o020000, os.makedev(1, 3))
    elif op == "symlink": os.symlink(a[1], a[0])
    elif op == "create": o(a[0], os.O_CREAT | os.O_WRONLY, int(a[1], 8))
    elif op == "excl": o(a[0], os.O_CREAT | os.O_EXCL | os.O_WRONLY, int(a[1], 8))
    elif op == "trunc": o(a[0], os.O_WRONLY | os.O_TRUNC)
    elif op == "read": os.close(os.open(a[0], os.O_RDONLY))
    elif op == "write":
        fd = os.open(a[0], os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"x")
        os.close(fd)
    elif op == "touch_now": os.utime(a[0], None)
    elif op == "touch_at": os.utime(a[0], ns=(int(a[1]), int(a[1])))
    else: raise SystemExit("unknown op " + op)
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
"#;

#[derive(Clone, Copy)]
struct Who {
    uid: u32,
    gid: u32,
    groups: &'static [u32],
}

const ROOT: Who = Who {
    uid: 0,
    gid: 0,
    groups: &[0],
};
const ALICE: Who = Who {
    uid: 1001,
    gid: 1001,
    groups: &[1001, 3000],
};
const BOB: Who = Who {
    uid: 1002,
    gid: 1002,
    groups: &[1002],
};

/// One step: who runs which op; arguments starting with `/` are paths
/// below the folder under test.
struct Step {
    who: Who,
    op: &'static str,
    args: Vec<&'static str>,
}

fn step(who: Who, op: &'static str, args: &[&'static str]) -> Step {
    Step {
        who,
        op,
        args: args.to_vec(),
    }
}

/// Runs `s` below `base`: the op's answer and, for each path it names,
/// type, mode, owner and group after it (or "missing").
fn run_step(base: &Path, s: &Step) -> Result<(String, Vec<String>)> {
    let py = Path::new("/usr/bin/python3");
    ensure!(
        py.is_file(),
        "/usr/bin/python3 is needed to run steps as other users"
    );
    let args: Vec<String> = s
        .args
        .iter()
        .map(|a| match a.strip_prefix('/') {
            Some(rel) => base.join(rel).display().to_string(),
            None => a.to_string(),
        })
        .collect();
    let mut cmd = if s.who.uid == 0 {
        Command::new(py)
    } else {
        let groups: Vec<String> = s.who.groups.iter().map(u32::to_string).collect();
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", s.who.uid))
            .arg(format!("--regid={}", s.who.gid))
            .arg(format!("--groups={}", groups.join(",")))
            .arg(py);
        c
    };
    let out = cmd.arg("-c").arg(OPS).arg(s.op).args(&args).output()?;
    ensure!(
        out.status.success(),
        "{} {:?}: {}",
        s.op,
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut after = Vec::new();
    for a in s.args.iter().filter_map(|a| a.strip_prefix('/')) {
        after.push(match fs::symlink_metadata(base.join(a)) {
            Ok(md) => format!(
                "{a}: {}{:04o} {}:{}",
                type_char(md.file_type()),
                md.mode() & 0o7777,
                md.uid(),
                md.gid()
            ),
            Err(_) => format!("{a}: missing"),
        });
    }
    Ok((answer, after))
}

/// Runs `steps` below `local` and below `mounted`; every answer and every
/// resulting attribute must be the same. Returns the local answers.
fn compare(local: &Path, mounted: &Path, steps: &[Step]) -> Result<Vec<String>> {
    let mut diffs = Vec::new();
    let mut answers = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let want = run_step(local, s)?;
        let got = run_step(mounted, s)?;
        if want != got {
            diffs.push(format!(
                "step {i} uid {} {} {:?}: local {want:?}, mount {got:?}",
                s.who.uid, s.op, s.args
            ));
        }
        answers.push(want.0);
    }
    if !diffs.is_empty() {
        bail!(
            "{} differences from the local filesystem:\n{}",
            diffs.len(),
            diffs.join("\n")
        );
    }
    Ok(answers)
}

/// The rules a local filesystem applies: chmod/chown by whom, set-id bits
/// cleared by chown and by writes, the sticky bit, rename's permissions
/// on both parents and on a moved directory, set-group-ID directories,
/// utimensat's rules, O_CREAT/O_EXCL/O_TRUNC, mknod.
fn permission_steps() -> Vec<Step> {
    vec![
        // a world-writable work folder and alice's own
        step(ROOT, "mkdir", &["/w", "0777"]),
        step(ROOT, "chmod", &["/w", "0777"]),
        step(ALICE, "mkdir", &["/w/a", "0755"]),
        step(ALICE, "create", &["/w/a/f", "0644"]),
        // chmod by a non-owner is EPERM, by the owner fine
        step(BOB, "chmod", &["/w/a/f", "0666"]),
        step(ALICE, "chmod", &["/w/a/f", "0666"]),
        // only root changes the owner; the owner may change the group to
        // one of theirs only
        step(ALICE, "chown", &["/w/a/f", "1002", "-1"]),
        step(ALICE, "chown", &["/w/a/f", "-1", "3000"]),
        step(ALICE, "chown", &["/w/a/f", "-1", "1002"]),
        step(BOB, "chown", &["/w/a/f", "-1", "1002"]),
        step(ROOT, "chown", &["/w/a/f", "1002", "1002"]),
        step(ROOT, "chown", &["/w/a/f", "1001", "1001"]),
        // set-id bits: cleared by chown, and by a non-root write
        step(ALICE, "create", &["/w/a/suid", "0644"]),
        step(ALICE, "chmod", &["/w/a/suid", "6777"]),
        step(BOB, "write", &["/w/a/suid"]),
        step(ALICE, "chmod", &["/w/a/suid", "6777"]),
        step(ROOT, "write", &["/w/a/suid"]),
        step(ALICE, "chown", &["/w/a/suid", "-1", "3000"]),
        step(ALICE, "chmod", &["/w/a/suid", "2755"]),
        step(ROOT, "chown", &["/w/a/suid", "1002", "-1"]),
        // a non-member setting S_ISGID keeps the rest of the mode
        step(ALICE, "create", &["/w/a/g", "0644"]),
        step(ROOT, "chown", &["/w/a/g", "-1", "1002"]),
        step(ALICE, "chmod", &["/w/a/g", "2755"]),
        // the sticky bit
        step(ROOT, "mkdir", &["/w/tmp", "0777"]),
        step(ROOT, "chmod", &["/w/tmp", "1777"]),
        step(ALICE, "create", &["/w/tmp/alice", "0666"]),
        step(ALICE, "mkdir", &["/w/tmp/alicedir", "0777"]),
        step(BOB, "unlink", &["/w/tmp/alice"]),
        step(BOB, "rename", &["/w/tmp/alice", "/w/tmp/bob"]),
        step(BOB, "rmdir", &["/w/tmp/alicedir"]),
        step(BOB, "create", &["/w/tmp/bobs", "0666"]),
        step(BOB, "rename", &["/w/tmp/bobs", "/w/tmp/alice"]),
        step(ALICE, "rename", &["/w/tmp/alice", "/w/tmp/alice2"]),
        step(ROOT, "unlink", &["/w/tmp/alice2"]),
        step(ALICE, "rmdir", &["/w/tmp/alicedir"]),
        // rename: write and search on both parents, write on a directory
        // moved to another parent (its `..` changes)
        step(BOB, "mkdir", &["/w/b", "0755"]),
        step(BOB, "create", &["/w/b/bf", "0644"]),
        step(ALICE, "rename", &["/w/a/f", "/w/b/f"]),
        step(BOB, "rename", &["/w/b/bf", "/w/a/bf"]),
        step(BOB, "mkdir", &["/w/bd", "0755"]),
        step(ALICE, "rename", &["/w/bd", "/w/a/bd"]),
        step(ALICE, "rename", &["/w/bd", "/w/bd2"]),
        step(ALICE, "chmod", &["/w/a", "0555"]),
        step(ALICE, "rename", &["/w/a/f", "/w/a/f2"]),
        step(ALICE, "create", &["/w/a/new", "0644"]),
        step(ALICE, "chmod", &["/w/a", "0644"]),
        step(ALICE, "read", &["/w/a/f"]),
        step(ALICE, "chmod", &["/w/a", "0755"]),
        // set-group-ID directories pass their group (and the bit to new
        // directories)
        step(ROOT, "mkdir", &["/w/sg", "0777"]),
        step(ROOT, "chown", &["/w/sg", "0", "3000"]),
        step(ROOT, "chmod", &["/w/sg", "2777"]),
        step(BOB, "create", &["/w/sg/file", "0644"]),
        step(BOB, "mkdir", &["/w/sg/dir", "0755"]),
        step(BOB, "symlink", &["/w/sg/ln", "file"]),
        step(BOB, "mkfifo", &["/w/sg/fifo", "0644"]),
        step(BOB, "create", &["/w/sg/dir/deeper", "2755"]),
        step(ALICE, "create", &["/w/sg/dir/member", "2755"]),
        // utimensat: "now" needs write access or ownership, explicit
        // times ownership
        step(ALICE, "create", &["/w/a/t", "0666"]),
        step(ALICE, "create", &["/w/a/ro", "0644"]),
        step(BOB, "touch_now", &["/w/a/t"]),
        step(BOB, "touch_now", &["/w/a/ro"]),
        step(BOB, "touch_at", &["/w/a/t", "1500000000123456789"]),
        step(ALICE, "touch_at", &["/w/a/ro", "1500000000123456789"]),
        step(ROOT, "touch_at", &["/w/a/ro", "1400000000000000001"]),
        // O_CREAT, O_EXCL, O_TRUNC
        step(BOB, "create", &["/w/a/bobnew", "0644"]),
        step(BOB, "excl", &["/w/a/t", "0644"]),
        step(ALICE, "excl", &["/w/a/t", "0644"]),
        step(BOB, "trunc", &["/w/a/ro"]),
        step(BOB, "trunc", &["/w/a/t"]),
        step(BOB, "create", &["/w/a/t", "0600"]),
        step(BOB, "read", &["/w/a/ro"]),
        step(ALICE, "chmod", &["/w/a/ro", "0600"]),
        step(BOB, "read", &["/w/a/ro"]),
        // mknod: FIFOs for anyone who may write the folder, devices for
        // root only
        step(BOB, "mkfifo", &["/w/bobfifo", "0600"]),
        step(BOB, "mknod", &["/w/bobdev", "0600"]),
        step(ROOT, "mknod", &["/w/rootdev", "0600"]),
        step(BOB, "chmod", &["/w/bobfifo", "0644"]),
        step(ALICE, "unlink", &["/w/bobfifo"]),
        step(BOB, "unlink", &["/w/bobfifo"]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_rules_match_a_local_filesystem() -> Result<()> {
    require_tool("setpriv")?;
    let m = mount_for_all(&[]).await?;
    let (_, root) = m.bucket("perm")?;
    let local = tempfile::Builder::new()
        .prefix("cairn-perm-")
        .tempdir_in("/var/tmp")?;
    fs::set_permissions(local.path(), fs::Permissions::from_mode(0o755))?;
    let answers = compare(local.path(), &root, &permission_steps())?;
    // the rules were exercised: refusals of both kinds happened
    ensure!(
        answers.iter().any(|a| a == "EPERM"),
        "no EPERM in {answers:?}"
    );
    ensure!(
        answers.iter().any(|a| a == "EACCES"),
        "no EACCES in {answers:?}"
    );
    Ok(())
}

/// Names: 255 bytes per component, 1,024 bytes for the whole key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_limits() -> Result<()> {
    let m = Mounted::start(&[]).await?;
    let (b, root) = m.bucket("names")?;
    let errno = |r: std::io::Result<()>| r.err().and_then(|e| e.raw_os_error());
    let n255 = "n".repeat(255);
    fs::write(root.join(&n255), b"x")?;
    ensure!(errno(fs::write(root.join("n".repeat(256)), b"x")) == Some(libc::ENAMETOOLONG));
    ensure!(errno(fs::create_dir(root.join("d".repeat(256)))) == Some(libc::ENAMETOOLONG));
    // directories of 200-byte names: a key of 1,024 bytes is the last
    // that fits (4 x 201 bytes of folders + a 220-byte name)
    let mut dir = root.clone();
    let mut key_len = 0;
    for i in 0..4 {
        let name = format!("{i}").repeat(200);
        dir = dir.join(&name);
        fs::create_dir(&dir)?;
        key_len += 201;
    }
    let fits = "f".repeat(1024 - key_len);
    fs::write(dir.join(&fits), b"x").context("a 1,024-byte key")?;
    let over = "g".repeat(1024 - key_len + 1);
    ensure!(
        errno(fs::write(dir.join(&over), b"x")) == Some(libc::ENAMETOOLONG),
        "a 1,025-byte key"
    );
    ensure!(
        errno(fs::create_dir(dir.join(&over))) == Some(libc::ENAMETOOLONG),
        "mkdir"
    );
    ensure!(
        errno(std::os::unix::fs::symlink("t", dir.join(&over))) == Some(libc::ENAMETOOLONG),
        "symlink"
    );
    ensure!(
        errno(fs::rename(dir.join(&fits), dir.join(&over))) == Some(libc::ENAMETOOLONG),
        "rename"
    );
    let key = format!("{}/{fits}", dir.strip_prefix(&root)?.display());
    ensure!(key.len() == 1024);
    let head = m
        .server
        .s3()
        .head_object()
        .bucket(&b)
        .key(&key)
        .send()
        .await?;
    ensure!(head.content_length() == Some(1));
    // hard links stay refused
    ensure!(
        errno(fs::hard_link(root.join(&n255), root.join("hl"))) == Some(libc::EPERM),
        "link"
    );
    Ok(())
}

/// MKNOD over NFS makes the same objects; GETATTR and READDIRPLUS show
/// the types and device numbers, and the FUSE mount of the same server
/// sees them. Devices need root (PERM for others).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mknod_over_nfs() -> Result<()> {
    use nfs3_client::nfs3_types::nfs3::{
        Nfs3Option, devicedata3, ftype3, mknoddata3, nfsstat3, sattr3, specdata3,
    };
    let dirs = tempfile::tempdir()?;
    let mnt = dirs.path().join("mnt");
    fs::create_dir_all(&mnt)?;
    let mnt_s = mnt.display().to_string();
    let spool = dirs.path().join("spool").display().to_string();
    let n = Nfs::start(&[
        "--nfs-squash",
        "none",
        "--mount",
        &mnt_s,
        "--mount-spool",
        &spool,
    ])
    .await?;
    let _unmount = Unmount(mnt.clone());
    let b = n.bucket("nfsmknod").await?;
    let mut root = nfs3::mount_as(n.port, &n.export, 0, 0).await?;
    let mut user = nfs3::mount_as(n.port, &n.export, 1001, 1001).await?;
    let dir = nfs3::lookup(&mut root, &b).await?;
    let mode = |m: u32| sattr3 {
        mode: Nfs3Option::Some(m),
        ..sattr3::default()
    };
    let dev = |maj, min, m| devicedata3 {
        dev_attributes: mode(m),
        spec: specdata3 {
            specdata1: maj,
            specdata2: min,
        },
    };
    let fifo = nfs3::mknod(&mut user, &dir, "fifo", mknoddata3::NF3FIFO(mode(0o640))).await?;
    let fifo = fifo.map_err(|s| anyhow::anyhow!("MKNOD fifo: {s:?}"))?;
    ensure!(
        fifo.type_ == ftype3::NF3FIFO && fifo.mode == 0o640 && fifo.uid == 1001,
        "{fifo:?}"
    );
    let sock = nfs3::mknod(&mut user, &dir, "sock", mknoddata3::NF3SOCK(mode(0o600))).await?;
    ensure!(sock.is_ok_and(|a| a.type_ == ftype3::NF3SOCK), "socket");
    let refused = nfs3::mknod(&mut user, &dir, "dev", mknoddata3::NF3CHR(dev(1, 3, 0o600))).await?;
    ensure!(
        matches!(refused, Err(nfsstat3::NFS3ERR_PERM)),
        "a user's device: {refused:?}"
    );
    let chr = nfs3::mknod(
        &mut root,
        &dir,
        "null",
        mknoddata3::NF3CHR(dev(1, 3, 0o666)),
    )
    .await?;
    let chr = chr.map_err(|s| anyhow::anyhow!("MKNOD chr: {s:?}"))?;
    ensure!(
        chr.type_ == ftype3::NF3CHR && (chr.rdev.specdata1, chr.rdev.specdata2) == (1, 3),
        "{chr:?}"
    );
    let blk = nfs3::mknod(
        &mut root,
        &dir,
        "sdb2",
        mknoddata3::NF3BLK(dev(8, 300, 0o660)),
    )
    .await?;
    ensure!(blk.is_ok_and(|a| a.type_ == ftype3::NF3BLK), "block device");
    let again = nfs3::mknod(&mut root, &dir, "null", mknoddata3::NF3FIFO(mode(0o600))).await?;
    ensure!(
        matches!(again, Err(nfsstat3::NFS3ERR_EXIST)),
        "existing name: {again:?}"
    );
    let long = "x".repeat(256);
    let too_long = nfs3::mknod(&mut root, &dir, &long, mknoddata3::NF3FIFO(mode(0o600))).await?;
    ensure!(
        matches!(too_long, Err(nfsstat3::NFS3ERR_NAMETOOLONG)),
        "{too_long:?}"
    );

    // GETATTR and READDIRPLUS
    let fh = nfs3::lookup(&mut root, &format!("{b}/sdb2")).await?;
    let a = nfs3::getattr(&mut root, &fh).await?;
    ensure!(
        a.type_ == ftype3::NF3BLK
            && (a.rdev.specdata1, a.rdev.specdata2) == (8, 300)
            && a.mode == 0o660,
        "{a:?}"
    );
    let listed = nfs3::readdirplus_all(&mut root, &dir).await?;
    let mut types: Vec<(String, Option<ftype3>)> = listed
        .into_iter()
        .filter(|(n, _)| n != "." && n != "..")
        .map(|(n, a)| (n, a.map(|a| a.type_)))
        .collect();
    types.sort_by(|x, y| x.0.cmp(&y.0));
    ensure!(
        types
            == vec![
                ("fifo".to_string(), Some(ftype3::NF3FIFO)),
                ("null".to_string(), Some(ftype3::NF3CHR)),
                ("sdb2".to_string(), Some(ftype3::NF3BLK)),
                ("sock".to_string(), Some(ftype3::NF3SOCK)),
            ],
        "READDIRPLUS: {types:?}"
    );

    // the FUSE mount of the same server shows them
    let md = fs::symlink_metadata(mnt.join(&b).join("sdb2"))?;
    ensure!(
        md.file_type().is_block_device() && md.rdev() == libc::makedev(8, 300),
        "FUSE: {:?} {}",
        md.file_type(),
        md.rdev()
    );
    ensure!(
        fs::symlink_metadata(mnt.join(&b).join("fifo"))?
            .file_type()
            .is_fifo()
    );

    // SETATTR on a special file: the owner's chmod, not another's
    let fifo_fh = nfs3::lookup(&mut user, &format!("{b}/fifo")).await?;
    let chmod = nfs3::setattr(&mut user, &fifo_fh, mode(0o604)).await?;
    ensure!(
        chmod.is_ok_and(|a| a.mode == 0o604 && a.type_ == ftype3::NF3FIFO),
        "owner's chmod"
    );
    let mut other = nfs3::mount_as(n.port, &n.export, 1002, 1002).await?;
    let fifo_other = nfs3::lookup(&mut other, &format!("{b}/fifo")).await?;
    let refused = nfs3::setattr(&mut other, &fifo_other, mode(0o777)).await?;
    ensure!(
        matches!(refused, Err(nfsstat3::NFS3ERR_PERM)),
        "another's chmod: {refused:?}"
    );

    // a set-group-ID directory passes its group to what NFS makes in it
    let sg = nfs3::mkdir(&mut root, &dir, "sg").await?;
    let set = sattr3 {
        mode: Nfs3Option::Some(0o2777),
        gid: Nfs3Option::Some(3000),
        ..sattr3::default()
    };
    let sg_attr = nfs3::setattr(&mut root, &sg, set).await?;
    ensure!(
        sg_attr.is_ok_and(|a| a.mode == 0o2777 && a.gid == 3000),
        "setgid dir"
    );
    let sg_user = nfs3::lookup(&mut user, &format!("{b}/sg")).await?;
    let f = nfs3::mknod(&mut user, &sg_user, "p", mknoddata3::NF3FIFO(mode(0o600))).await?;
    ensure!(
        f.is_ok_and(|a| (a.uid, a.gid) == (1001, 3000)),
        "FIFO in a setgid dir"
    );
    let sub = nfs3::mkdir(&mut user, &sg_user, "sub").await?;
    let sub_attr = nfs3::getattr(&mut user, &sub).await?;
    ensure!(
        sub_attr.gid == 3000 && sub_attr.mode & 0o2000 != 0,
        "a directory in a setgid dir: {sub_attr:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------
// Times

/// (mtime, ctime) in nanoseconds.
fn times_of(p: &Path) -> Result<(i128, i128)> {
    let md = fs::symlink_metadata(p).with_context(|| format!("stat {}", p.display()))?;
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    Ok((
        ns(md.mtime(), md.mtime_nsec()),
        ns(md.ctime(), md.ctime_nsec()),
    ))
}

fn utimens(
    p: &Path,
    atime: nix::sys::time::TimeSpec,
    mtime: nix::sys::time::TimeSpec,
) -> Result<()> {
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &atime,
        &mtime,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .with_context(|| format!("utimensat {}", p.display()))
}

/// Runs `op`, then notes whether each watched path's mtime and ctime moved.
fn watch(
    notes: &mut Vec<String>,
    base: &Path,
    what: &str,
    paths: &[&Path],
    op: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let before: Vec<(i128, i128)> = paths.iter().map(|p| times_of(p)).collect::<Result<_>>()?;
    std::thread::sleep(std::time::Duration::from_millis(20));
    op()?;
    for (p, b) in paths.iter().zip(before) {
        let a = times_of(p)?;
        let name = p.strip_prefix(base).unwrap_or(p).display().to_string();
        notes.push(format!(
            "{what}: {name} mtime {} ctime {}",
            a.0 != b.0,
            a.1 != b.1
        ));
    }
    Ok(())
}

/// Runs the time-changing operations below `base` and notes, for each,
/// which times moved: the answers a local filesystem gives are the ones
/// the mount must give. Explicit times are noted as values.
fn time_steps(base: &Path) -> Result<Vec<String>> {
    use nix::sys::time::TimeSpec;
    let d = base.join("d");
    fs::create_dir(&d)?;
    let mut notes = Vec::new();
    let f = d.join("f");
    watch(&mut notes, base, "create", &[&d], &mut || {
        Ok(fs::write(&f, b"x")?)
    })?;
    watch(&mut notes, base, "chmod", &[&f, &d], &mut || {
        Ok(fs::set_permissions(&f, fs::Permissions::from_mode(0o600))?)
    })?;
    watch(&mut notes, base, "chown", &[&f], &mut || {
        Ok(std::os::unix::fs::chown(&f, Some(1001), Some(1001))?)
    })?;
    let g = d.join("g");
    watch(&mut notes, base, "rename", &[&d], &mut || {
        Ok(fs::rename(&f, &g)?)
    })?;
    watch(&mut notes, base, "renamed", &[&g], &mut || Ok(()))?;
    let sub = d.join("sub");
    watch(&mut notes, base, "mkdir", &[&d], &mut || {
        Ok(fs::create_dir(&sub)?)
    })?;
    watch(&mut notes, base, "move", &[&d, &sub], &mut || {
        Ok(fs::rename(&g, sub.join("g"))?)
    })?;
    watch(&mut notes, base, "unlink", &[&sub], &mut || {
        Ok(fs::remove_file(sub.join("g"))?)
    })?;
    watch(&mut notes, base, "rmdir", &[&d], &mut || {
        Ok(fs::remove_dir(&sub)?)
    })?;
    let p = d.join("p");
    watch(&mut notes, base, "mkfifo", &[&d], &mut || {
        mknod(&p, libc::S_IFIFO | 0o644, 0)
    })?;
    watch(&mut notes, base, "symlink", &[&d], &mut || {
        Ok(std::os::unix::fs::symlink("p", d.join("l"))?)
    })?;
    let w = d.join("w");
    fs::write(&w, b"first")?;
    watch(&mut notes, base, "write", &[&w], &mut || {
        let mut h = fs::OpenOptions::new().append(true).open(&w)?;
        h.write_all(b" and more")?;
        Ok(())
    })?;
    // utimensat: nanoseconds, UTIME_OMIT, UTIME_NOW
    let t = TimeSpec::new(1_500_000_000, 123_456_789);
    watch(&mut notes, base, "utimens", &[&p], &mut || {
        utimens(&p, t, t)
    })?;
    notes.push(format!("utimens: p mtime {}", times_of(&p)?.0));
    watch(&mut notes, base, "omit", &[&p], &mut || {
        utimens(&p, TimeSpec::new(1, 0), TimeSpec::UTIME_OMIT)
    })?;
    notes.push(format!("omit: p mtime {}", times_of(&p)?.0));
    watch(&mut notes, base, "now", &[&p], &mut || {
        utimens(&p, TimeSpec::UTIME_OMIT, TimeSpec::UTIME_NOW)
    })?;
    Ok(notes)
}

/// ctime on chmod, chown and rename; the parent's mtime and ctime on
/// create, unlink, rename, mkdir, rmdir; utimensat with nanoseconds,
/// UTIME_OMIT and UTIME_NOW: as on a local filesystem. What is kept
/// survives a restart and shows the same over NFS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_match_a_local_filesystem() -> Result<()> {
    let dirs = tempfile::tempdir()?;
    let mnt = dirs.path().join("mnt");
    fs::create_dir_all(&mnt)?;
    let mnt_s = mnt.display().to_string();
    let spool = dirs.path().join("spool").display().to_string();
    let mut n = Nfs::start(&[
        "--nfs-squash",
        "none",
        "--mount",
        &mnt_s,
        "--mount-spool",
        &spool,
    ])
    .await?;
    let _unmount = Unmount(mnt.clone());
    let b = n.bucket("times").await?;
    let root = mnt.join(&b);
    let local = tempfile::Builder::new()
        .prefix("cairn-times-")
        .tempdir_in("/var/tmp")?;
    let want = time_steps(local.path())?;
    let got = time_steps(&root)?;
    let diffs: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("local {w:?}, mount {g:?}"))
        .collect();
    ensure!(
        want.len() == got.len() && diffs.is_empty(),
        "times differ:\n{}",
        diffs.join("\n")
    );
    ensure!(
        want.iter().any(|w| w.contains("mtime true ctime true")),
        "{want:?}"
    );

    // kept: the same after a restart (the attribute TTL passed first, so
    // these are the view's, not the kernel's own guesses)
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let names = ["d", "d/p", "d/w", "d/l"];
    let before: Vec<(i128, i128)> = names
        .iter()
        .map(|p| times_of(&root.join(p)))
        .collect::<Result<_>>()?;
    // and over NFS (the export's own view, from the store)
    let mut c = nfs3::mount_as(n.port, &n.export, 0, 0).await?;
    for (name, t) in names.iter().zip(&before) {
        let fh = nfs3::lookup(&mut c, &format!("{b}/{name}")).await?;
        let a = nfs3::getattr(&mut c, &fh).await?;
        let ns = |s: u32, n: u32| i128::from(s) * 1_000_000_000 + i128::from(n);
        let nfs = (
            ns(a.mtime.seconds, a.mtime.nseconds),
            ns(a.ctime.seconds, a.ctime.nseconds),
        );
        ensure!(nfs == *t, "{name}: NFS {nfs:?}, mount {t:?}");
    }
    drop(c);
    let st = n
        .server
        .terminate(std::time::Duration::from_secs(30))
        .await?;
    ensure!(st.success(), "exit after SIGTERM: {st}");
    n.server.restart().await?;
    let mut mounted = false;
    for _ in 0..100 {
        if cairn_tests::mount::is_mounted(&mnt)? {
            mounted = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    ensure!(mounted, "not mounted after the restart");
    let after: Vec<(i128, i128)> = names
        .iter()
        .map(|p| times_of(&root.join(p)))
        .collect::<Result<_>>()?;
    ensure!(
        after == before,
        "times after a restart {after:?}, before {before:?}"
    );
    Ok(())
}
