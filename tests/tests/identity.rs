//! Every front acts as an identity: one IAM user, made with `aws iam`,
//! through S3 (its own access key), the FUSE mount (`--mount-identity`)
//! and the NFS export (`--nfs-identity`) gets the same answers: reads of
//! its bucket succeed, writes are AccessDenied / EACCES / NFS3ERR_ACCES,
//! a bucket outside its policy is hidden and refused, and a policy change
//! counts on all three at once.

use std::fs;
use std::io::Write as _;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use aws_sdk_s3::primitives::ByteStream;
use cairn_tests::mount::{Unmount, is_mounted};
use cairn_tests::{Server, StartOpts, bucket_name, err_code, free_port, nfs3, require_tool};
use nfs3_client::nfs3_types::nfs3::{Nfs3Result, READ3args, nfsstat3};

const USER: &str = "reader";

/// `aws iam ARGS` against the server, as its root user; stdout as JSON.
fn iam(s: &Server, args: &[&str]) -> Result<serde_json::Value> {
    s.aws_iam(args)
}

/// The user's inline policy: read and list `bucket`, and write it too
/// when `write`.
fn policy(bucket: &str, write: bool) -> String {
    let mut actions = vec!["\"s3:GetObject\""];
    if write {
        actions.push("\"s3:PutObject\"");
    }
    format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Effect":"Allow","Action":["s3:ListBucket","s3:GetBucketLocation"],"Resource":"arn:aws:s3:::{bucket}"}},
        {{"Effect":"Allow","Action":[{}],"Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#,
        actions.join(",")
    )
}

fn put_policy(s: &Server, bucket: &str, write: bool) -> Result<()> {
    iam(
        s,
        &[
            "put-user-policy",
            "--user-name",
            USER,
            "--policy-name",
            "files",
            "--policy-document",
            &policy(bucket, write),
        ],
    )?;
    Ok(())
}

fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

/// Writes `path` through the mount, the error of any step (create,
/// write, close) included.
fn mount_write(path: &std::path::Path) -> std::io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.write_all(b"from the mount")?;
    f.sync_all()
}

/// The status of an NFS LOOKUP of `path`, or the bytes of a READ of it.
async fn nfs_read(c: &mut nfs3::Conn, path: &str) -> Result<Result<Vec<u8>, String>> {
    let fh = match nfs3::lookup(c, path).await {
        Ok(fh) => fh,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let args = READ3args {
        file: fh,
        offset: 0,
        count: 1 << 16,
    };
    Ok(match c.read(&args).await? {
        Nfs3Result::Ok(ok) => Ok(ok.data.as_ref().to_vec()),
        Nfs3Result::Err((st, _)) => Err(format!("READ: {st:?}")),
    })
}

/// The status of an NFS CREATE (and one WRITE and COMMIT) of `name` in
/// directory `dir`.
async fn nfs_write(c: &mut nfs3::Conn, dir: &str, name: &str) -> Result<(), String> {
    use nfs3_client::nfs3_types::nfs3::stable_how::FILE_SYNC;
    let d = nfs3::lookup(c, dir).await.map_err(|e| e.to_string())?;
    let fh = nfs3::create(c, &d, name).await.map_err(|e| e.to_string())?;
    nfs3::write(c, &fh, 0, b"from nfs", FILE_SYNC)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn acces() -> String {
    format!("{:?}", nfsstat3::NFS3ERR_ACCES)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_identity_gets_the_same_answer_over_s3_the_mount_and_the_export() -> Result<()> {
    require_tool("aws")?;
    let dirs = tempfile::Builder::new().prefix("cairn-ident-").tempdir()?;
    let mnt = dirs.path().join("mnt");
    fs::create_dir_all(&mnt)?;
    let nfs_port = free_port()?;
    let base = vec![
        "--no-scanner".to_string(),
        "--mount".into(),
        mnt.display().to_string(),
        "--mount-spool".into(),
        dirs.path().join("spool").display().to_string(),
        "--mount-attr-ttl-ms".into(),
        "0".into(),
        "--nfs".into(),
        format!("127.0.0.1:{nfs_port}"),
    ];
    let mut s = Server::start(StartOpts {
        extra_args: base.clone(),
        ..StartOpts::default()
    })
    .await?;
    let _unmount = Unmount(mnt.clone());

    // as root: a bucket the user may read, one it may not
    let (mine, theirs) = (bucket_name("mine"), bucket_name("theirs"));
    let root = s.s3();
    for (b, k) in [(&mine, "a.txt"), (&theirs, "b.txt")] {
        root.create_bucket().bucket(b).send().await?;
        root.put_object()
            .bucket(b)
            .key(k)
            .body(ByteStream::from(format!("{b}/{k}").into_bytes()))
            .send()
            .await?;
    }

    // the user and its key, with the AWS IAM API
    iam(&s, &["create-user", "--user-name", USER])?;
    let key = iam(&s, &["create-access-key", "--user-name", USER])?;
    let ak = key["AccessKey"]["AccessKeyId"]
        .as_str()
        .context("AccessKeyId")?
        .to_owned();
    let sk = key["AccessKey"]["SecretAccessKey"]
        .as_str()
        .context("SecretAccessKey")?
        .to_owned();
    put_policy(&s, &mine, false)?;

    // an identity that does not exist stops the server at startup
    s.terminate(Duration::from_secs(30)).await?;
    let mut bad = base.clone();
    bad.extend(["--nfs-identity".into(), "ghost".into()]);
    ensure!(
        s.restart_with_args(bad).await.is_err(),
        "started with an unknown identity"
    );
    ensure!(
        s.full_log()
            .contains("--nfs-identity ghost: there is no IAM user"),
        "no clear message:\n{}",
        s.full_log()
    );

    // both fronts act as the user from now on
    let mut with = base.clone();
    with.extend([
        "--mount-identity".into(),
        USER.into(),
        "--nfs-identity".into(),
        USER.into(),
    ]);
    s.restart_with_args(with).await?;
    ensure!(is_mounted(&mnt)?, "not mounted");
    ensure!(
        s.full_log().contains(&format!("acts as IAM user {USER}")),
        "the fronts' identity is not logged:\n{}",
        s.full_log()
    );
    let user = aws_sdk_s3::Client::from_conf(s.s3_config_with(&ak, &sk).build());
    let mut nfs = nfs3::mount(nfs_port, "cairn").await?;

    // reads of its bucket: the same bytes on all three
    let want = format!("{mine}/a.txt").into_bytes();
    let got = user.get_object().bucket(&mine).key("a.txt").send().await?;
    ensure!(got.body.collect().await?.into_bytes().as_ref() == want.as_slice());
    ensure!(fs::read(mnt.join(&mine).join("a.txt"))? == want);
    ensure!(nfs_read(&mut nfs, &format!("{mine}/a.txt")).await? == Ok(want.clone()));
    let listed = user.list_objects_v2().bucket(&mine).send().await?;
    ensure!(
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .collect::<Vec<_>>()
            == ["a.txt"]
    );
    let names: Vec<String> = fs::read_dir(mnt.join(&mine))?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    ensure!(names == ["a.txt"], "mount lists {names:?}");
    let dir = nfs3::lookup(&mut nfs, &mine).await?;
    ensure!(nfs3::readdir_all(&mut nfs, &dir, 4096).await?.0 == ["a.txt"]);

    // the other bucket: hidden from the bucket list, refused on each
    let buckets = user.list_buckets().send().await?;
    let shown: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    ensure!(shown == [mine.as_str()], "S3 lists {shown:?}");
    let top: Vec<String> = fs::read_dir(&mnt)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    ensure!(top == [mine.clone()], "the mount lists {top:?}");
    let e = user
        .get_object()
        .bucket(&theirs)
        .key("b.txt")
        .send()
        .await
        .unwrap_err();
    ensure!(err_code(&e) == "AccessDenied", "S3: {}", err_code(&e));
    ensure!(errno(fs::read(mnt.join(&theirs).join("b.txt"))) == Some(libc::EACCES));
    let r = nfs_read(&mut nfs, &format!("{theirs}/b.txt")).await?;
    ensure!(
        r.as_ref().is_err_and(|e| e.contains(&acces())),
        "NFS: {r:?}"
    );

    // writes: refused alike, and nothing reaches the store
    let e = user
        .put_object()
        .bucket(&mine)
        .key("s3.txt")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    ensure!(err_code(&e) == "AccessDenied", "S3: {}", err_code(&e));
    ensure!(errno(mount_write(&mnt.join(&mine).join("fuse.txt"))) == Some(libc::EACCES));
    ensure!(errno(fs::remove_file(mnt.join(&mine).join("a.txt"))) == Some(libc::EACCES));
    let w = nfs_write(&mut nfs, &mine, "nfs.txt").await;
    ensure!(
        w.as_ref().is_err_and(|e| e.contains(&acces())),
        "NFS: {w:?}"
    );
    let keys = root.list_objects_v2().bucket(&mine).send().await?;
    ensure!(
        keys.contents()
            .iter()
            .filter_map(|o| o.key())
            .collect::<Vec<_>>()
            == ["a.txt"]
    );

    // the policy now allows writing: all three, at once, no restart
    put_policy(&s, &mine, true)?;
    user.put_object()
        .bucket(&mine)
        .key("s3.txt")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await?;
    mount_write(&mnt.join(&mine).join("fuse.txt"))?;
    nfs_write(&mut nfs, &mine, "nfs.txt")
        .await
        .map_err(anyhow::Error::msg)?;
    // and back: refused again on each
    put_policy(&s, &mine, false)?;
    let e = user
        .put_object()
        .bucket(&mine)
        .key("s3-2.txt")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    ensure!(err_code(&e) == "AccessDenied", "S3: {}", err_code(&e));
    ensure!(errno(mount_write(&mnt.join(&mine).join("fuse-2.txt"))) == Some(libc::EACCES));
    let w = nfs_write(&mut nfs, &mine, "nfs-2.txt").await;
    ensure!(
        w.as_ref().is_err_and(|e| e.contains(&acces())),
        "NFS: {w:?}"
    );

    // the objects written while allowed are there, over S3 as root
    for k in ["s3.txt", "fuse.txt"] {
        root.head_object().bucket(&mine).key(k).send().await?;
    }
    s.terminate(Duration::from_secs(30)).await?;
    Ok(())
}
