//! The FUSE front: `cairn server --mount DIR` mounts the buckets in the
//! server's process; ordinary tools and std::fs use it, and S3 sees the
//! same objects at once.

use std::fs;
use std::os::unix::fs::{FileExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use aws_sdk_s3::primitives::ByteStream;
use cairn_tests::data::{assert_trees_equal, random_bytes, write_tree};
use cairn_tests::mount::{Mounted, S3fs, is_mounted};
use cairn_tests::{Server, bucket_name, require_tool, run};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

async fn s3_get(
    s: &Server,
    b: &str,
    k: &str,
) -> Result<(Vec<u8>, std::collections::HashMap<String, String>)> {
    let r = s
        .s3()
        .get_object()
        .bucket(b)
        .key(k)
        .send()
        .await
        .with_context(|| format!("GET {b}/{k}"))?;
    let meta = r.metadata().cloned().unwrap_or_default();
    let body = r.body.collect().await?.into_bytes().to_vec();
    Ok((body, meta))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp_tar_rsync_and_diff() -> Result<()> {
    require_tool("rsync")?;
    let m = Mounted::start(&[]).await?;
    let (_, root) = m.bucket("tools")?;
    let src = tempfile::tempdir()?;
    let tree = src.path().join("tree");
    write_tree(&tree, 11)?;

    // cp -r, diff -r
    run(Command::new("cp").arg("-r").arg(&tree).arg(root.join("cp")))?;
    run(Command::new("diff")
        .arg("-r")
        .arg(&tree)
        .arg(root.join("cp")))?;
    assert_trees_equal(&tree, &root.join("cp"))?;

    // tar -x of an archive made locally
    let tar = src.path().join("tree.tar");
    run(Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(src.path())
        .arg("tree"))?;
    let tx = root.join("tarx");
    fs::create_dir(&tx)?;
    run(Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(&tx))?;
    run(Command::new("diff")
        .arg("-r")
        .arg(&tree)
        .arg(tx.join("tree")))?;

    // rsync -a keeps modes and mtimes; a second run has nothing to copy
    let rs = root.join("rsync");
    run(Command::new("rsync")
        .arg("-a")
        .arg(format!("{}/", tree.display()))
        .arg(&rs))?;
    run(Command::new("diff").arg("-r").arg(&tree).arg(&rs))?;
    for rel in ["small.txt", "a/b/c/deep.bin", "big/seven-mib.bin"] {
        let a = fs::metadata(tree.join(rel))?;
        let b = fs::metadata(rs.join(rel))?;
        ensure!(
            a.mtime() == b.mtime(),
            "{rel}: mtime {} vs {}",
            a.mtime(),
            b.mtime()
        );
        ensure!(a.mode() & 0o7777 == b.mode() & 0o7777, "{rel}: mode");
    }
    let out = run(Command::new("rsync")
        .arg("-a")
        .arg("--itemize-changes")
        .arg(format!("{}/", tree.display()))
        .arg(&rs))?;
    let changes = String::from_utf8_lossy(&out.stdout);
    ensure!(
        !changes.lines().any(|l| l.starts_with(">f")),
        "second rsync copied files again:\n{changes}"
    );
    Ok(())
}

/// At least 2,000 random writes, truncates and appends on a few files,
/// through the mount and on a local directory, then compared (and read
/// back over S3 with the same bytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_write_model() -> Result<()> {
    let m = Mounted::start(&[]).await?;
    let (b, root) = m.bucket("model")?;
    let local = tempfile::tempdir()?;
    let n = 4;
    let open = |dir: &Path, i: usize| {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(format!("f{i}")))
    };
    let mut rng = StdRng::seed_from_u64(5);
    let mut mf: Vec<fs::File> = (0..n).map(|i| open(&root, i)).collect::<Result<_, _>>()?;
    let mut lf: Vec<fs::File> = (0..n)
        .map(|i| open(local.path(), i))
        .collect::<Result<_, _>>()?;
    let mut ops = 0;
    for step in 0..2600 {
        let i = rng.random_range(0..n);
        let len = lf[i].metadata()?.len();
        match rng.random_range(0..20) {
            0..=11 => {
                let off = rng.random_range(0..=len + 4096);
                let data = random_bytes(rng.random_range(1..20_000), step);
                mf[i].write_all_at(&data, off)?;
                lf[i].write_all_at(&data, off)?;
            }
            12..=14 => {
                let size = rng.random_range(0..=len + 10_000);
                mf[i].set_len(size)?;
                lf[i].set_len(size)?;
            }
            15..=17 => {
                let data = random_bytes(rng.random_range(1..5000), step);
                let mut am = fs::OpenOptions::new()
                    .append(true)
                    .open(root.join(format!("f{i}")))?;
                let mut al = fs::OpenOptions::new()
                    .append(true)
                    .open(local.path().join(format!("f{i}")))?;
                std::io::Write::write_all(&mut am, &data)?;
                std::io::Write::write_all(&mut al, &data)?;
            }
            18 => mf[i].sync_all()?,
            _ => {
                // close and reopen
                mf[i] = open(&root, i)?;
                lf[i] = open(local.path(), i)?;
            }
        }
        ops += 1;
        if step % 400 == 0 {
            let len = lf[i].metadata()?.len();
            ensure!(mf[i].metadata()?.len() == len, "f{i} size at step {step}");
            let mut a = vec![0u8; len as usize];
            mf[i].read_exact_at(&mut a, 0)?;
            let mut b = vec![0u8; len as usize];
            lf[i].read_exact_at(&mut b, 0)?;
            ensure!(a == b, "f{i} differs at step {step}");
        }
    }
    ensure!(ops >= 2000);
    drop(mf);
    drop(lf);
    for i in 0..n {
        let want = fs::read(local.path().join(format!("f{i}")))?;
        let got = fs::read(root.join(format!("f{i}")))?;
        ensure!(
            got.len() == want.len(),
            "f{i}: {} vs {} bytes",
            got.len(),
            want.len()
        );
        ensure!(got == want, "f{i} differs");
        let (s3, _) = s3_get(&m.server, &b, &format!("f{i}")).await?;
        ensure!(s3 == want, "f{i} over S3 differs");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_symlink_and_attributes_across_remount() -> Result<()> {
    let mut m = Mounted::start(&[]).await?;
    let (b, root) = m.bucket("attrs")?;
    // rename of a file and of a non-empty directory
    fs::create_dir_all(root.join("d/sub"))?;
    for i in 0..30 {
        fs::write(root.join(format!("d/f{i}")), format!("file {i}"))?;
    }
    fs::write(root.join("d/sub/deep"), b"deep")?;
    fs::rename(root.join("d"), root.join("moved"))?;
    ensure!(errno(fs::metadata(root.join("d"))) == Some(libc::ENOENT));
    ensure!(fs::read(root.join("moved/f7"))? == b"file 7");
    ensure!(fs::read(root.join("moved/sub/deep"))? == b"deep");
    fs::rename(root.join("moved/f1"), root.join("top"))?;
    ensure!(fs::read(root.join("top"))? == b"file 1");
    let (body, _) = s3_get(&m.server, &b, "moved/sub/deep").await?;
    ensure!(body == b"deep");
    // rename over an existing file replaces it
    fs::rename(root.join("moved/f2"), root.join("top"))?;
    ensure!(fs::read(root.join("top"))? == b"file 2");
    // errors
    ensure!(errno(fs::remove_dir(root.join("moved"))) == Some(libc::ENOTEMPTY));
    ensure!(errno(fs::create_dir(root.join("moved"))) == Some(libc::EEXIST));
    ensure!(errno(fs::read(root.join("nope"))) == Some(libc::ENOENT));
    ensure!(errno(fs::remove_file(root.join("moved"))) == Some(libc::EISDIR));
    ensure!(errno(fs::read_dir(root.join("top"))) == Some(libc::ENOTDIR));
    ensure!(errno(fs::write(root.join("n".repeat(256)), b"")) == Some(libc::ENAMETOOLONG));
    ensure!(
        errno(fs::hard_link(root.join("top"), root.join("hl"))) == Some(libc::EPERM),
        "hard links are refused"
    );

    // symlinks
    std::os::unix::fs::symlink("moved/f3", root.join("link"))?;
    ensure!(fs::read_link(root.join("link"))? == Path::new("moved/f3"));
    ensure!(fs::read(root.join("link"))? == b"file 3");

    // chmod, chown, utimens
    let f = root.join("top");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o640))?;
    std::os::unix::fs::chown(&f, Some(1234), Some(4321))?;
    let when = std::time::UNIX_EPOCH + Duration::from_secs(1_234_567_890);
    fs::File::options()
        .write(true)
        .open(&f)?
        .set_modified(when)?;
    fs::set_permissions(root.join("moved"), fs::Permissions::from_mode(0o700))?;

    m.remount().await?;
    let md = fs::metadata(&f)?;
    ensure!(md.mode() & 0o7777 == 0o640, "mode {:o}", md.mode());
    ensure!(
        (md.uid(), md.gid()) == (1234, 4321),
        "owner {}:{}",
        md.uid(),
        md.gid()
    );
    ensure!(md.mtime() == 1_234_567_890, "mtime {}", md.mtime());
    ensure!(fs::read(&f)? == b"file 2");
    let dm = fs::metadata(root.join("moved"))?;
    ensure!(
        dm.is_dir() && dm.mode() & 0o7777 == 0o700,
        "dir mode {:o}",
        dm.mode()
    );
    ensure!(fs::read_link(root.join("link"))? == Path::new("moved/f3"));
    ensure!(
        fs::symlink_metadata(root.join("link"))?
            .file_type()
            .is_symlink()
    );
    ensure!(fs::read(root.join("moved/sub/deep"))? == b"deep");
    // what s3fs reads: decimal st_mode, uid, gid, unix-seconds mtime
    let (_, meta) = s3_get(&m.server, &b, "top").await?;
    ensure!(
        meta.get("mode").map(String::as_str) == Some("33184"),
        "{meta:?}"
    );
    ensure!(meta.get("uid").map(String::as_str) == Some("1234"));
    ensure!(meta.get("gid").map(String::as_str) == Some("4321"));
    ensure!(meta.get("mtime").map(String::as_str) == Some("1234567890"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_protocol_at_once() -> Result<()> {
    let m = Mounted::start(&[]).await?;
    let (b, root) = m.bucket("cross")?;
    let c = m.server.s3();
    // mount -> S3, no sleep
    let data = random_bytes(3 << 20, 9);
    fs::write(root.join("from-mount.bin"), &data)?;
    let (body, meta) = s3_get(&m.server, &b, "from-mount.bin").await?;
    ensure!(body == data, "bytes over S3 differ");
    ensure!(
        meta.contains_key("mode") && meta.contains_key("mtime"),
        "{meta:?}"
    );
    // S3 -> mount, no sleep: a new object and a new prefix
    for (k, v) in [
        ("from-s3.txt", &b"over s3"[..]),
        ("dir/from-s3", &b"nested"[..]),
    ] {
        c.put_object()
            .bucket(&b)
            .key(k)
            .body(ByteStream::from(v.to_vec()))
            .send()
            .await?;
        ensure!(fs::read(root.join(k))? == v, "{k}");
    }
    let names: Vec<String> = fs::read_dir(&root)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    for n in ["from-mount.bin", "from-s3.txt", "dir"] {
        ensure!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    // deleted over S3: gone at the next open
    c.delete_object()
        .bucket(&b)
        .key("from-s3.txt")
        .send()
        .await?;
    ensure!(errno(fs::read(root.join("from-s3.txt"))) == Some(libc::ENOENT));
    // A directory made through the mount answers a missing name without
    // asking the store (core/vfs/src/known.rs); a name added over S3, or
    // a directory on its path, is still found at once.
    fs::create_dir(root.join("made"))?;
    for k in ["made/later", "made/sub", "made/sub/deep"] {
        ensure!(
            errno(fs::metadata(root.join(k))) == Some(libc::ENOENT),
            "{k}"
        );
    }
    for k in ["made/later", "made/sub/deep"] {
        c.put_object()
            .bucket(&b)
            .key(k)
            .body(ByteStream::from(k.as_bytes().to_vec()))
            .send()
            .await?;
        ensure!(fs::read(root.join(k))? == k.as_bytes(), "{k}");
    }
    ensure!(fs::metadata(root.join("made/sub"))?.is_dir());
    Ok(())
}

/// A close commits with write-back: the file is the same bytes over S3 at
/// once, and durable within a second; fsync() of the file and of its
/// directory return only once it is durable. What that promises, shown
/// with a SIGKILL of the server (no clean unmount, no shutdown sync):
/// restarted on the same drives, every fsynced file is there, through the
/// mount and over S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsynced_files_survive_sigkill() -> Result<()> {
    use std::io::Write as _;
    let mut m = Mounted::start(&[]).await?;
    let (b, root) = m.bucket("crash")?;
    fs::create_dir(root.join("d"))?;
    let mut want = Vec::new();
    for i in 0..12u64 {
        let k = format!("d/f{i}");
        let data = random_bytes(100 + 997 * i as usize, i);
        let mut f = fs::File::create(root.join(&k))?;
        f.write_all(&data)?;
        if i % 2 == 0 {
            f.sync_all()?;
        }
        drop(f);
        let (body, _) = s3_get(&m.server, &b, &k).await?;
        ensure!(body == data, "{k}: not the same bytes over S3 at once");
        want.push((k, data));
    }
    // the odd ones were only closed: fsync of their directory
    fs::File::open(root.join("d"))?.sync_all()?;
    // an overwrite of a durable file, fsynced
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(root.join("d/f0"))?;
    f.write_all(b"replaced")?;
    f.sync_data()?;
    drop(f);
    want[0].1 = b"replaced".to_vec();

    m.server.kill()?;
    let _ = Command::new("umount").arg("-l").arg(&m.mnt).status();
    m.server.restart().await?;
    ensure!(is_mounted(&m.mnt)?, "not mounted after restart");
    for (k, data) in &want {
        let got = fs::read(root.join(k)).with_context(|| format!("{k} after SIGKILL"))?;
        ensure!(
            &got == data,
            "{k}: other bytes through the mount after SIGKILL"
        );
        let (body, _) = s3_get(&m.server, &b, k).await?;
        ensure!(&body == data, "{k}: other bytes over S3 after SIGKILL");
    }
    Ok(())
}

/// A SIGKILLed server leaves a dead mount behind (stat: ENOTCONN). The
/// next start with the same `--mount DIR` detaches it, says so in its log,
/// and mounts again: a file written over S3 reads through the new mount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replaces_the_mount_a_sigkill_left() -> Result<()> {
    let mut m = Mounted::start(&[]).await?;
    let (b, root) = m.bucket("stale")?;
    m.server.kill()?;
    ensure!(
        errno(fs::metadata(&m.mnt)) == Some(libc::ENOTCONN),
        "after SIGKILL the mount should be dead (ENOTCONN): {:?}",
        fs::metadata(&m.mnt).map(|md| md.is_dir())
    );
    m.server.restart().await?;
    ensure!(is_mounted(&m.mnt)?, "not mounted after restart");
    let log = m.server.full_log();
    ensure!(
        log.contains("dead FUSE mount"),
        "the restart must say it replaced a dead mount:\n{log}"
    );
    let data = random_bytes(64 * 1024 + 3, 16);
    m.server
        .s3()
        .put_object()
        .bucket(&b)
        .key("after-crash.bin")
        .body(ByteStream::from(data.clone()))
        .send()
        .await?;
    let got = fs::read(root.join("after-crash.bin")).context("read through the new mount")?;
    ensure!(got == data, "other bytes through the new mount");
    Ok(())
}

/// Files written through the mount into a bucket with default encryption
/// are encrypted like S3 PUTs (the store applies the default, whatever the
/// front); an SSE-C object, whose key a mount cannot present, is EACCES.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_default_encryption_covers_mount_writes() -> Result<()> {
    use aws_sdk_s3::types::{ServerSideEncryption, ServerSideEncryptionConfiguration};
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let env = vec![(
        "CAIRN_KMS_SECRET_KEY".to_string(),
        format!("cairn-default:{}", b64.encode([0x44u8; 32])),
    )];
    let m = Mounted::start_with(&[], env).await?;
    let (b, root) = m.bucket("fuse-sse")?;
    let c = m.server.s3();
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
    let marker = b"FUSE-WRITES-MUST-BE-ENCRYPTED-42";
    let mk = |n: usize| -> Vec<u8> { marker.iter().copied().cycle().take(n).collect() };
    // a small file (staged, one PUT) and a large one (streamed multipart)
    for (name, len) in [("small.txt", 10_000usize), ("large.bin", 12 << 20)] {
        let data = mk(len);
        fs::write(root.join(name), &data)?;
        let h = c.head_object().bucket(&b).key(name).send().await?;
        ensure!(
            h.server_side_encryption() == Some(&ServerSideEncryption::Aes256),
            "{name} written through the mount is not encrypted: {:?}",
            h.server_side_encryption()
        );
        let back = fs::read(root.join(name))?;
        ensure!(
            back == data,
            "{name} reads back: {} bytes of {}, first difference at {:?}",
            back.len(),
            data.len(),
            back.iter().zip(&data).position(|(a, b)| a != b)
        );
    }
    let hits = cairn_tests::data::files_holding(m.server.drives(), marker)?;
    ensure!(hits.is_empty(), "plaintext in {hits:?}");
    // chmod through the mount rewrites metadata only and keeps the
    // encryption, even once the bucket default is gone
    c.delete_bucket_encryption().bucket(&b).send().await?;
    fs::set_permissions(root.join("small.txt"), fs::Permissions::from_mode(0o600))?;
    let h = c.head_object().bucket(&b).key("small.txt").send().await?;
    ensure!(
        h.server_side_encryption() == Some(&ServerSideEncryption::Aes256),
        "chmod through the mount decrypted the object: {:?}",
        h.server_side_encryption()
    );
    ensure!(
        // s3fs's decimal st_mode: S_IFREG | 0600
        h.metadata().and_then(|m| m.get("mode")).map(String::as_str) == Some("33152"),
        "mode not stored: {:?}",
        h.metadata()
    );
    // SSE-C: no key through a mount
    let key = [0x55u8; 32];
    c.put_object()
        .bucket(&b)
        .key("customer.bin")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(b64.encode(key))
        .sse_customer_key_md5(b64.encode(<md5::Md5 as md5::Digest>::digest(key)))
        .body(ByteStream::from(mk(1000)))
        .send()
        .await?;
    ensure!(
        errno(fs::read(root.join("customer.bin"))) == Some(libc::EACCES),
        "reading an SSE-C object through the mount: {:?}",
        fs::read(root.join("customer.bin")).map(|v| v.len())
    );
    Ok(())
}

fn c_path(p: &Path) -> Result<std::ffi::CString> {
    Ok(std::ffi::CString::new(p.as_os_str().as_encoded_bytes())?)
}

fn set_xattr(p: &Path, name: &str, value: &[u8], flags: i32) -> std::io::Result<()> {
    let (p, n) = (
        c_path(p).map_err(std::io::Error::other)?,
        std::ffi::CString::new(name)?,
    );
    // SAFETY: valid NUL-terminated strings and a value buffer of its length
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn get_xattr(p: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    let (p, n) = (
        c_path(p).map_err(std::io::Error::other)?,
        std::ffi::CString::new(name)?,
    );
    let mut buf = vec![0u8; 4096];
    // SAFETY: as above, the buffer is writable for its length
    #[allow(unsafe_code)]
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(r as usize);
    Ok(buf)
}

fn list_xattr(p: &Path) -> std::io::Result<Vec<String>> {
    let p = c_path(p).map_err(std::io::Error::other)?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: as above
    #[allow(unsafe_code)]
    let r = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(r as usize);
    Ok(buf
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

fn remove_xattr(p: &Path, name: &str) -> std::io::Result<()> {
    let (p, n) = (
        c_path(p).map_err(std::io::Error::other)?,
        std::ffi::CString::new(name)?,
    );
    // SAFETY: as above
    #[allow(unsafe_code)]
    let r = unsafe { libc::removexattr(p.as_ptr(), n.as_ptr()) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// User xattrs persist (in s3fs's `x-amz-meta-xattr` format) across a
/// remount, with the errno each misuse gets; statfs reports the drives'
/// real capacity scaled to the data share, not a made-up size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xattrs_and_statfs() -> Result<()> {
    let mut m = Mounted::start(&[]).await?;
    let (b, root) = m.bucket("xattr")?;
    let f = root.join("file.txt");
    fs::write(&f, b"hello")?;
    set_xattr(&f, "user.color", b"blue", 0)?;
    set_xattr(&f, "user.bin", &[0, 1, 255], 0)?;
    ensure!(get_xattr(&f, "user.color")? == b"blue");
    ensure!(errno(get_xattr(&f, "user.none")) == Some(libc::ENODATA));
    // other namespaces do not exist (so `ls -l` stops asking for ACLs and
    // SELinux labels after the first file)
    for n in ["security.selinux", "system.posix_acl_access"] {
        ensure!(errno(get_xattr(&f, n)) == Some(libc::ENOTSUP), "{n}");
    }
    ensure!(errno(set_xattr(&f, "user.color", b"x", libc::XATTR_CREATE)) == Some(libc::EEXIST));
    ensure!(errno(set_xattr(&f, "user.new", b"x", libc::XATTR_REPLACE)) == Some(libc::ENODATA));
    ensure!(
        errno(set_xattr(&f, "trusted.x", b"x", 0))
            .is_some_and(|e| e == libc::ENOTSUP || e == libc::EPERM)
    );
    ensure!(errno(set_xattr(&f, "user.big", &[7u8; 3000], 0)) == Some(libc::E2BIG));
    // a file being written keeps its xattrs through the commit
    let g = root.join("open.bin");
    {
        use std::io::Write as _;
        let mut h = fs::File::create(&g)?;
        h.write_all(&random_bytes(100_000, 3))?;
        set_xattr(&g, "user.during", b"write", 0)?;
        h.write_all(b"more")?;
    }
    m.remount().await?;
    let root = m.mnt.join(&b);
    let (f, g) = (root.join("file.txt"), root.join("open.bin"));
    ensure!(
        get_xattr(&f, "user.color")? == b"blue",
        "lost across remount"
    );
    ensure!(get_xattr(&f, "user.bin")? == [0, 1, 255]);
    ensure!(
        get_xattr(&g, "user.during")? == b"write",
        "lost through the staged commit"
    );
    let mut names = list_xattr(&f)?;
    names.sort();
    ensure!(names == ["user.bin", "user.color"], "{names:?}");
    // stored where s3fs keeps them
    let h = m
        .server
        .s3()
        .head_object()
        .bucket(&b)
        .key("file.txt")
        .send()
        .await?;
    ensure!(
        h.metadata().is_some_and(|md| md.contains_key("xattr")),
        "{:?}",
        h.metadata()
    );
    remove_xattr(&f, "user.color")?;
    ensure!(errno(get_xattr(&f, "user.color")) == Some(libc::ENODATA));
    ensure!(errno(remove_xattr(&f, "user.color")) == Some(libc::ENODATA));
    ensure!(
        fs::read(&f)? == b"hello",
        "the data survived the metadata rewrites"
    );

    // statfs: the drives' filesystem, times K/N (2 of 4 here)
    let st = nix::sys::statvfs::statvfs(&m.mnt)?;
    let drive = nix::sys::statvfs::statvfs(m.server.drives()[0].as_path())?;
    let mount_total = st.blocks() * st.fragment_size();
    let disk_total = drive.blocks() * drive.fragment_size();
    // 4 drives on one filesystem: 4 x disk x 2/4 = 2 x disk
    let want = 2 * disk_total;
    ensure!(
        mount_total.abs_diff(want) <= want / 100,
        "statfs total {mount_total}, expected about {want} (drive fs {disk_total})"
    );
    ensure!(st.blocks_available() <= st.blocks() && st.blocks_available() > 0);
    Ok(())
}

/// With three of four drives gone the core has no quorum: reads and
/// committing writes through the mount fail with EIO (never wrong bytes),
/// and once the drives are back everything stored before reads intact and
/// the failed write left nothing behind.
/// The spool fills up (a 6 MiB tmpfs over the mount's spool folder): an
/// overwrite of 16 MiB fails with ENOSPC at a write or at close, the
/// stored object keeps its bytes, and the failed file's staging is not
/// kept, so the next small file fits again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_is_enospc_and_loses_nothing() -> Result<()> {
    use std::io::Write as _;
    let mut m = Mounted::start(&[]).await?;
    let spool = m.mnt.with_file_name("spool");
    fs::create_dir_all(&spool)?;
    let _tmpfs = cairn_tests::tmpfs::Tmpfs::mount(&spool, "6m")?;
    // the server's sandbox grants the spool folder it found at start: a
    // file system mounted over it later is not the folder it was granted
    m.remount().await?;
    let (b, root) = m.bucket("fullspool")?;
    let c = m.server.s3();
    c.put_object()
        .bucket(&b)
        .key("f")
        .body(ByteStream::from_static(b"before"))
        .send()
        .await?;
    let chunk = vec![7u8; 1 << 20];
    let wrote = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(root.join("f"))
        .and_then(|mut f| {
            for _ in 0..16 {
                f.write_all(&chunk)?;
            }
            f.sync_all()
        });
    ensure!(
        errno(wrote) == Some(libc::ENOSPC),
        "16 MiB into a 6 MiB spool must fail with ENOSPC"
    );
    ensure!(
        s3_get(&m.server, &b, "f").await?.0 == b"before",
        "the object changed"
    );
    ensure!(fs::read(root.join("f"))? == b"before");
    fs::write(root.join("small"), b"fits")?;
    ensure!(s3_get(&m.server, &b, "small").await?.0 == b"fits");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_quorum_is_eio_and_loses_nothing() -> Result<()> {
    use std::io::Write as _;
    let m = Mounted::start(&[]).await?;
    let (b, root) = m.bucket("quorum")?;
    let c = m.server.s3();
    // stored over S3, so no page of it is in the kernel's cache
    let keep = random_bytes(3 << 20, 5);
    c.put_object()
        .bucket(&b)
        .key("keep.bin")
        .body(ByteStream::from(keep.clone()))
        .send()
        .await?;
    let drives = m.server.drives().to_vec();
    for d in &drives[1..] {
        fs::rename(d, d.with_extension("away"))?;
    }
    ensure!(
        errno(fs::read(root.join("keep.bin"))) == Some(libc::EIO),
        "read with 1 of 4 drives: {:?}",
        fs::read(root.join("keep.bin")).map(|v| v.len())
    );
    // the failure may come at create (the lookup needs a quorum), at a
    // write, or at the commit on fsync
    let wrote = fs::File::create(root.join("new.bin")).and_then(|mut f| {
        f.write_all(&random_bytes(2 << 20, 6))?;
        f.sync_all()
    });
    ensure!(
        matches!(errno(wrote), Some(libc::EIO) | Some(libc::ENOSPC)),
        "committing a write with 1 of 4 drives must fail with EIO/ENOSPC"
    );
    // an overwrite of the stored file fails too and must not harm it
    let over = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(root.join("keep.bin"))
        .and_then(|mut f| {
            f.write_all(b"overwritten")?;
            f.sync_all()
        });
    ensure!(over.is_err(), "an overwrite with 1 of 4 drives succeeded");
    for d in &drives[1..] {
        fs::rename(d.with_extension("away"), d)?;
    }
    // the drive monitor takes the drives back within a few seconds
    let until = std::time::Instant::now() + Duration::from_secs(30);
    let got = loop {
        match fs::read(root.join("keep.bin")) {
            Ok(v) => break v,
            Err(e) if std::time::Instant::now() < until => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e).context("keep.bin after the drives came back"),
        }
    };
    ensure!(got == keep, "keep.bin changed");
    match c.head_object().bucket(&b).key("new.bin").send().await {
        Err(_) => {}
        Ok(h) => ensure!(
            h.content_length() == Some(2 << 20),
            "a failed write left a partial object of {:?} bytes",
            h.content_length()
        ),
    }
    Ok(())
}

/// The core's change events reach the kernel: with attributes cached for
/// a minute, a stat and a read right after an S3 overwrite still see the
/// new object (only the invalidation can explain it), and a rename over S3
/// shows at once too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_changes_invalidate_the_mounts_caches() -> Result<()> {
    let m = Mounted::start(&["--mount-attr-ttl-ms", "60000"]).await?;
    let (b, root) = m.bucket("inval")?;
    let c = m.server.s3();
    let p = root.join("f.bin");
    let old = random_bytes(3 << 20, 11);
    fs::write(&p, &old)?;
    ensure!(fs::metadata(&p)?.len() == old.len() as u64);
    ensure!(fs::read(&p)? == old);
    let newer = random_bytes(1 << 20, 12);
    c.put_object()
        .bucket(&b)
        .key("f.bin")
        .body(ByteStream::from(newer.clone()))
        .send()
        .await?;
    // the event travels store -> view -> kernel in well under a second;
    // the TTL is 60 s
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while fs::metadata(&p)?.len() != newer.len() as u64 {
        ensure!(
            std::time::Instant::now() < until,
            "stale size after an S3 overwrite: {}",
            fs::metadata(&p)?.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ensure!(fs::read(&p)? == newer, "stale bytes after an S3 overwrite");
    // deleted over S3: the cached entry goes too
    c.delete_object().bucket(&b).key("f.bin").send().await?;
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while p.exists() {
        ensure!(
            std::time::Instant::now() < until,
            "deleted over S3, still there"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_and_one_bucket_mounts() -> Result<()> {
    // one bucket as the root, read-only
    let b = bucket_name("ro");
    let m = Mounted::start(&["--mount-bucket", &b, "--mount-read-only"]).await?;
    m.server.s3().create_bucket().bucket(&b).send().await?;
    m.server
        .s3()
        .put_object()
        .bucket(&b)
        .key("k/x")
        .body(ByteStream::from_static(b"ro data"))
        .send()
        .await?;
    ensure!(fs::read(m.mnt.join("k/x"))? == b"ro data");
    ensure!(errno(fs::write(m.mnt.join("new"), b"x")) == Some(libc::EROFS));
    ensure!(errno(fs::create_dir(m.mnt.join("d"))) == Some(libc::EROFS));
    ensure!(errno(fs::remove_file(m.mnt.join("k/x"))) == Some(libc::EROFS));
    Ok(())
}

fn set_mtime(p: &Path, secs: i64) -> Result<()> {
    // atime and mtime together: with `touch -h -m` s3fs 1.90 stored the
    // current time instead
    run(Command::new("touch")
        .arg("-d")
        .arg(format!("@{secs}"))
        .arg(p))?;
    Ok(())
}

fn check_attrs(p: &Path, perm: u32, uid: u32, gid: u32, mtime: i64) -> Result<()> {
    let md = fs::symlink_metadata(p).with_context(|| format!("stat {}", p.display()))?;
    ensure!(
        (md.mode() & 0o7777, md.uid(), md.gid(), md.mtime()) == (perm, uid, gid, mtime),
        "{}: mode {:o} uid {} gid {} mtime {}, want {perm:o} {uid} {gid} {mtime}",
        p.display(),
        md.mode() & 0o7777,
        md.uid(),
        md.gid(),
        md.mtime()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3fs_sees_what_the_mount_set() -> Result<()> {
    let m = Mounted::start(&[]).await?;
    let (b, root) = m.bucket("s3fs")?;
    // through Cairn's mount: a file, a directory, a symlink, with owners,
    // modes and mtimes; and a file large enough to stream (seq.rs)
    fs::write(root.join("a.txt"), b"attributes")?;
    fs::set_permissions(root.join("a.txt"), fs::Permissions::from_mode(0o640))?;
    std::os::unix::fs::chown(root.join("a.txt"), Some(1234), Some(2345))?;
    set_mtime(&root.join("a.txt"), 1_600_000_000)?;
    fs::create_dir(root.join("d"))?;
    fs::set_permissions(root.join("d"), fs::Permissions::from_mode(0o750))?;
    std::os::unix::fs::chown(root.join("d"), Some(99), Some(98))?;
    fs::write(root.join("d/inner"), b"inner")?;
    // after its entry, as tar does: the batch of times that the entry's
    // creation started must not put "now" back over it
    set_mtime(&root.join("d"), 1_500_000_000)?;
    std::os::unix::fs::symlink("a.txt", root.join("ln"))?;
    let big = random_bytes(21 << 20, 5);
    fs::write(root.join("big.bin"), &big)?;
    // streamed: over S3 at once, same bytes, one multipart object
    let (body, _) = s3_get(&m.server, &b, "big.bin").await?;
    ensure!(body == big, "streamed file differs over S3");
    let head = m
        .server
        .s3()
        .head_object()
        .bucket(&b)
        .key("big.bin")
        .send()
        .await?;
    ensure!(
        head.e_tag().is_some_and(|e| e.contains('-')),
        "a streamed file is a multipart object: {:?}",
        head.e_tag()
    );

    let work = tempfile::tempdir()?;
    let s3fs = S3fs::mount(&m.server, &b, work.path())?;
    let s = &s3fs.mnt;
    check_attrs(&s.join("a.txt"), 0o640, 1234, 2345, 1_600_000_000)?;
    ensure!(fs::read(s.join("a.txt"))? == b"attributes");
    check_attrs(&s.join("d"), 0o750, 99, 98, 1_500_000_000)?;
    ensure!(fs::read(s.join("d/inner"))? == b"inner");
    ensure!(
        fs::read_link(s.join("ln"))? == Path::new("a.txt"),
        "symlink"
    );
    ensure!(fs::read(s.join("big.bin"))? == big, "big file through s3fs");

    // and the other way: what s3fs sets, Cairn's mount shows
    fs::write(s.join("from-s3fs"), b"written by s3fs")?;
    fs::set_permissions(s.join("from-s3fs"), fs::Permissions::from_mode(0o600))?;
    std::os::unix::fs::chown(s.join("from-s3fs"), Some(4321), Some(5432))?;
    set_mtime(&s.join("from-s3fs"), 1_400_000_000)?;
    let meta = m
        .server
        .s3()
        .head_object()
        .bucket(&b)
        .key("from-s3fs")
        .send()
        .await?
        .metadata()
        .cloned()
        .unwrap_or_default();
    check_attrs(&root.join("from-s3fs"), 0o600, 4321, 5432, 1_400_000_000)
        .with_context(|| format!("metadata s3fs wrote: {meta:?}"))?;
    ensure!(fs::read(root.join("from-s3fs"))? == b"written by s3fs");
    drop(s3fs);
    Ok(())
}

/// What the store holds for a key: (bytes, metadata, version count).
async fn stored(
    s: &Server,
    b: &str,
    k: &str,
) -> Result<(Vec<u8>, std::collections::HashMap<String, String>, usize)> {
    let (body, meta) = s3_get(s, b, k).await?;
    let v = s
        .s3()
        .list_object_versions()
        .bucket(b)
        .prefix(k)
        .send()
        .await?;
    Ok((body, meta, v.versions().len() + v.delete_markers().len()))
}

/// Every way the mount offers to change a file, each expected to fail
/// with `want` (errno); the file must be the same over S3 afterwards.
async fn try_every_change(m: &Mounted, b: &str, root: &Path, name: &str, want: i32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let p = root.join(name);
    let before = stored(&m.server, b, name).await?;
    let attempts: Vec<(&str, Option<i32>)> = vec![
        ("overwrite", errno(fs::write(&p, b"changed"))),
        (
            "append",
            errno(
                fs::OpenOptions::new()
                    .append(true)
                    .open(&p)
                    .and_then(|mut f| {
                        use std::io::Write as _;
                        f.write_all(b"more")
                    }),
            ),
        ),
        (
            "write at an offset",
            errno(
                fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .and_then(|f| f.write_at(b"x", 1)),
            ),
        ),
        (
            "truncate",
            errno(
                fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .and_then(|f| f.set_len(1)),
            ),
        ),
        (
            "open O_TRUNC",
            errno(
                fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_TRUNC)
                    .open(&p),
            ),
        ),
        (
            "chmod",
            errno(fs::set_permissions(&p, fs::Permissions::from_mode(0o600))),
        ),
        ("utimens", errno(set_mtime_io(&p, 1_000_000))),
        ("rename", errno(fs::rename(&p, root.join("moved")))),
        ("rename onto it", {
            fs::write(root.join("other"), b"other")?;
            errno(fs::rename(root.join("other"), &p))
        }),
        ("unlink", errno(fs::remove_file(&p))),
        ("setxattr", errno(set_xattr(&p, "user.k", b"v", 0))),
    ];
    for (what, got) in attempts {
        ensure!(
            got == Some(want),
            "{what} of {name}: errno {got:?}, expected {want}"
        );
    }
    let after = stored(&m.server, b, name).await?;
    ensure!(
        before == after,
        "{name} changed: {:?} -> {:?}",
        before.1,
        after.1
    );
    ensure!(
        fs::read(&p)? == before.0,
        "{name} reads the same through the mount"
    );
    Ok(())
}

fn set_mtime_io(p: &Path, secs: i64) -> std::io::Result<()> {
    let f = fs::File::options().write(true).open(p)?;
    f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs as u64))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_and_worm_objects_cannot_be_changed_through_the_mount() -> Result<()> {
    use aws_sdk_s3::types::{
        ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockRetentionMode,
    };
    let m = Mounted::start(&[]).await?;
    let c = m.server.s3();
    // a bucket with object lock: one version under retention, one held
    let b = bucket_name("fuse-lock");
    c.create_bucket()
        .bucket(&b)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await?;
    let root = m.mnt.join(&b);
    for k in ["retained", "held"] {
        c.put_object()
            .bucket(&b)
            .key(k)
            .body(ByteStream::from(k.as_bytes().to_vec()))
            .send()
            .await?;
    }
    cairn_tests::lock::retain(
        &c,
        &b,
        "retained",
        None,
        ObjectLockRetentionMode::Governance,
        3600,
    )
    .await?;
    c.put_object_legal_hold()
        .bucket(&b)
        .key("held")
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::On)
                .build(),
        )
        .send()
        .await?;
    try_every_change(&m, &b, &root, "retained", libc::EPERM).await?;
    try_every_change(&m, &b, &root, "held", libc::EPERM).await?;
    // an unlocked file in the same bucket is still writable
    fs::write(root.join("free"), b"free")?;
    fs::write(root.join("free"), b"free2")?;
    ensure!(fs::read(root.join("free"))? == b"free2");

    // a WORM bucket: existing files are read-only, new ones are written once
    let (w, wroot) = m.bucket("fuse-worm")?;
    fs::write(wroot.join("kept"), b"kept")?;
    let out = cairn_tests::admin(&m.server, &["bucket", "worm", &w, "on"], None).await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    try_every_change(&m, &w, &wroot, "kept", libc::EROFS).await?;
    fs::write(wroot.join("new"), b"new")?;
    ensure!(s3_get(&m.server, &w, "new").await?.0 == b"new");
    Ok(())
}
