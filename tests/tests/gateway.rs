//! Gateway backends end to end: `cairn gateway nas SHARE` started by the
//! harness over a temp folder, driven by aws-sdk-s3, awscli and rclone,
//! while plain file tools (`cat`, `cp`, `echo`, `find`) use the same
//! folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, ensure};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use cairn_tests::cmd::run_stdout;
use cairn_tests::data::{assert_trees_equal, md5_hex, random_bytes};
use cairn_tests::emulators::{AZURITE_ACCOUNT, AZURITE_KEY, Azurite, start_moto};
use cairn_tests::gateways::{
    RcloneCheck, get_is_unavailable, list_all, refused_naming, sync_round_trip, top_level,
};
use cairn_tests::{Server, StartOpts, expect_err, get_bytes, require_tool, run};

/// A share folder and a gateway serving it.
struct Nas {
    server: Server,
    share: PathBuf,
    _dir: tempfile::TempDir,
}

impl Nas {
    /// Starts the gateway after `prepare` filled the share (files that
    /// exist before the gateway starts).
    async fn start(prepare: impl FnOnce(&Path) -> Result<()>, extra: &[&str]) -> Result<Nas> {
        let dir = tempfile::Builder::new().prefix("cairn-nas-").tempdir()?;
        let share = dir.path().join("share");
        std::fs::create_dir(&share)?;
        prepare(&share)?;
        let mut opts = StartOpts::gateway(["nas".to_string(), share.display().to_string()]);
        opts.extra_args = extra.iter().map(|s| s.to_string()).collect();
        let server = Server::start(opts).await?;
        Ok(Nas {
            server,
            share,
            _dir: dir,
        })
    }
}

fn sh(script: &str) -> Result<()> {
    run(Command::new("sh").arg("-c").arg(script))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nas_files_and_s3_see_each_other_at_once() -> Result<()> {
    let nas = Nas::start(
        |share| {
            sh(&format!(
                "mkdir -p {0}/photos/2024 && echo hello > {0}/photos/2024/a.txt && \
                 cp /etc/hostname {0}/photos/host.txt",
                share.display()
            ))
        },
        &[],
    )
    .await?;
    let c = nas.server.s3();
    let share = &nas.share;
    // A folder made before the start is a bucket; the hidden folder is not.
    let buckets: Vec<String> = c
        .list_buckets()
        .send()
        .await?
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    ensure!(buckets == ["photos"], "buckets {buckets:?}");
    ensure!(get_bytes(&c, "photos", "2024/a.txt").await? == b"hello\n");
    let head = c
        .head_object()
        .bucket("photos")
        .key("2024/a.txt")
        .send()
        .await?;
    ensure!(head.e_tag() == Some(format!("\"{}\"", md5_hex(b"hello\n"))).as_deref());

    // S3 PUT -> a plain file at once, read back with cat.
    let data = random_bytes(300_000, 7);
    c.put_object()
        .bucket("photos")
        .key("new/dir/put.bin")
        .body(ByteStream::from(data.clone()))
        .send()
        .await?;
    let cat = run(Command::new("cat").arg(share.join("photos/new/dir/put.bin")))?;
    ensure!(cat.stdout == data, "cat shows the S3 PUT byte for byte");
    // Overwritten over S3 with a body long enough to be pushed to disk in
    // several 4 MiB writeback steps: cat shows the new bytes, a program
    // that had the old file open still reads the old ones (the new file
    // is renamed over it, never rewritten in place), and no temp file is
    // left in the hidden folder.
    let mut had_open = std::fs::File::open(share.join("photos/new/dir/put.bin"))?;
    let big = random_bytes(13 * 1024 * 1024 + 5, 8);
    c.put_object()
        .bucket("photos")
        .key("new/dir/put.bin")
        .body(ByteStream::from(big.clone()))
        .send()
        .await?;
    let cat = run(Command::new("cat").arg(share.join("photos/new/dir/put.bin")))?;
    ensure!(cat.stdout == big, "cat shows the overwrite byte for byte");
    let mut was = Vec::new();
    std::io::Read::read_to_end(&mut had_open, &mut was)?;
    ensure!(was == data, "an open reader of the old file saw it change");
    let left = std::fs::read_dir(share.join(".cairn.gateway/tmp"))?.count();
    ensure!(left == 0, "{left} temp files left after the PUTs");

    // Written, changed and removed directly during the run: served at once.
    sh(&format!(
        "echo direct > {}/photos/live.txt",
        share.display()
    ))?;
    ensure!(get_bytes(&c, "photos", "live.txt").await? == b"direct\n");
    sh(&format!(
        "echo changed-now >> {}/photos/live.txt",
        share.display()
    ))?;
    ensure!(get_bytes(&c, "photos", "live.txt").await? == b"direct\nchanged-now\n");
    let head = c
        .head_object()
        .bucket("photos")
        .key("live.txt")
        .send()
        .await?;
    ensure!(head.e_tag() == Some(format!("\"{}\"", md5_hex(b"direct\nchanged-now\n"))).as_deref());
    std::fs::remove_file(share.join("photos/live.txt"))?;
    expect_err(
        "GET of a file removed behind the gateway",
        c.get_object().bucket("photos").key("live.txt").send().await,
        404,
        Some("NoSuchKey"),
    )?;
    // A bucket made over S3 is a folder; one made by mkdir is a bucket.
    c.create_bucket().bucket("made-by-s3").send().await?;
    ensure!(share.join("made-by-s3").is_dir());
    std::fs::create_dir(share.join("made-by-mkdir"))?;
    c.head_bucket().bucket("made-by-mkdir").send().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nas_metadata_multipart_and_refusals() -> Result<()> {
    let nas = Nas::start(|share| Ok(std::fs::create_dir(share.join("meta"))?), &[]).await?;
    let c = nas.server.s3();
    c.put_object()
        .bucket("meta")
        .key("doc.html")
        .content_type("text/html")
        .cache_control("max-age=60")
        .metadata("color", "blue")
        .body(ByteStream::from_static(b"<p>hi</p>"))
        .send()
        .await?;
    let h = c
        .head_object()
        .bucket("meta")
        .key("doc.html")
        .send()
        .await?;
    ensure!(
        h.content_type() == Some("text/html"),
        "{:?}",
        h.content_type()
    );
    ensure!(h.cache_control() == Some("max-age=60"));
    ensure!(
        h.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str)
            == Some("blue"),
        "{:?}",
        h.metadata()
    );
    ensure!(std::fs::read(nas.share.join("meta/doc.html"))? == b"<p>hi</p>");

    // Multipart: the parts are joined into one plain file; the multipart
    // ETag is kept while the file is unchanged.
    let p1 = random_bytes(5 * 1024 * 1024, 1);
    let p2 = random_bytes(1_000_001, 2);
    let up = c
        .create_multipart_upload()
        .bucket("meta")
        .key("big/joined.bin")
        .content_type("application/x-test")
        .send()
        .await?;
    let id = up.upload_id().context("upload id")?;
    let mut parts = Vec::new();
    for (n, p) in [(1, &p1), (2, &p2)] {
        let r = c
            .upload_part()
            .bucket("meta")
            .key("big/joined.bin")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await?;
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap_or_default())
                .build(),
        );
    }
    // Staging lives in the hidden folder, which never lists.
    let keys = list_all(&c, "meta", 1000).await?;
    ensure!(keys == ["doc.html"], "{keys:?}");
    let done = c
        .complete_multipart_upload()
        .bucket("meta")
        .key("big/joined.bin")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await?;
    let etag = done.e_tag().context("etag")?.to_owned();
    ensure!(etag.ends_with("-2\""), "{etag}");
    let mut all = p1.clone();
    all.extend_from_slice(&p2);
    ensure!(std::fs::read(nas.share.join("meta/big/joined.bin"))? == all);
    let h = c
        .head_object()
        .bucket("meta")
        .key("big/joined.bin")
        .send()
        .await?;
    ensure!(h.e_tag() == Some(etag.as_str()));
    ensure!(h.content_type() == Some("application/x-test"));

    // Keys that cannot be paths on the share: a clear 409.
    expect_err(
        "a key below a file",
        c.put_object()
            .bucket("meta")
            .key("doc.html/child")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        409,
        Some("KeyConflict"),
    )?;
    expect_err(
        "a key naming a folder",
        c.put_object()
            .bucket("meta")
            .key("big")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        409,
        Some("KeyConflict"),
    )?;
    // `..` is refused before it reaches the share.
    let r = nas
        .server
        .raw()
        .send("PUT", "/meta/a/../../escape", &[], b"x")
        .await?;
    ensure!(r.status == 400, "{}", r.describe());
    ensure!(!nas.share.join("escape").exists());
    // No encryption on a NAS: 501 naming the backend.
    let r = c
        .put_object()
        .bucket("meta")
        .key("secret")
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    match r {
        Ok(_) => anyhow::bail!("SSE on the NAS gateway succeeded"),
        Err(e) => {
            let msg = format!("{:?}", e.raw_response().map(|r| r.body()));
            ensure!(cairn_tests::err_status(&e) == Some(501), "{e:?}");
            ensure!(msg.contains("NAS gateway"), "{msg}");
        }
    }
    let leftovers = std::fs::read_dir(nas.share.join(".cairn.gateway/tmp"))?.count();
    ensure!(leftovers == 0, "{leftovers} temp files left");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nas_deep_tree_lists_like_sorted_find() -> Result<()> {
    let nas = Nas::start(
        |share| {
            let root = share.join("tree");
            for i in 0..12 {
                for name in ["a", "a-", "a0", "a.b", "z z", "é"] {
                    let dir = root.join(format!("{name}/{i:02}/x"));
                    std::fs::create_dir_all(&dir)?;
                    std::fs::write(dir.join("f"), b"1")?;
                    std::fs::write(dir.with_file_name(format!("x-{i}")), b"2")?;
                    std::fs::write(root.join(format!("{name}/{i}.txt")), b"3")?;
                }
            }
            Ok(())
        },
        &[],
    )
    .await?;
    let c = nas.server.s3();
    // Something the gateway is staging while we list.
    c.create_multipart_upload()
        .bucket("tree")
        .key("pending")
        .send()
        .await?;
    let find = run_stdout(
        Command::new("sh")
            .arg("-c")
            .arg("cd \"$0\" && find . -type f | sed 's|^\\./||' | LC_ALL=C sort")
            .arg(nas.share.join("tree")),
    )?;
    let want: Vec<&str> = find.lines().collect();
    ensure!(want.len() == 12 * 6 * 3, "{} files", want.len());
    for page in [7, 1000] {
        let got = list_all(&c, "tree", page).await?;
        ensure!(got == want, "page {page}: listing differs from sorted find");
    }
    // Delimited pages of 2 roll subtrees up.
    let out = c
        .list_objects_v2()
        .bucket("tree")
        .delimiter("/")
        .send()
        .await?;
    let cps: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    ensure!(cps == ["a-/", "a.b/", "a/", "a0/", "z z/", "é/"], "{cps:?}");
    ensure!(out.contents().is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nas_awscli_sync_and_rclone_check() -> Result<()> {
    let nas = Nas::start(|share| Ok(std::fs::create_dir(share.join("sync"))?), &[]).await?;
    let src = sync_round_trip(&nas.server, "sync", 3, RcloneCheck::Hashes)?;
    // Byte for byte on the share, with the same tree shape.
    assert_trees_equal(&src, &nas.share.join("sync/tree"))?;
    Ok(())
}

/// A Cairn server as "the other cloud" and `cairn gateway s3` in front of
/// it, serving its bucket `remote` with the backend's credentials.
async fn s3_pair() -> Result<(Server, Server)> {
    let backend = Server::start_default().await?;
    backend.s3().create_bucket().bucket("remote").send().await?;
    let mut opts = StartOpts::gateway([
        "s3".to_string(),
        "--endpoint".into(),
        backend.endpoint(),
        "--bucket".into(),
        "remote".into(),
    ]);
    opts.env = vec![
        (
            "CAIRN_GATEWAY_S3_ACCESS_KEY".into(),
            backend.access_key().to_owned(),
        ),
        (
            "CAIRN_GATEWAY_S3_SECRET_KEY".into(),
            backend.secret_key().to_owned(),
        ),
    ];
    let gw = Server::start(opts).await?;
    Ok((backend, gw))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_gateway_round_trip_to_another_cairn() -> Result<()> {
    let (mut backend, gw) = s3_pair().await?;
    let c = gw.s3();
    let direct = backend.s3();
    // Small PUT with metadata: on the backend as is.
    c.put_object()
        .bucket("remote")
        .key("docs/a.txt")
        .content_type("text/plain")
        .metadata("color", "blue")
        .body(ByteStream::from_static(b"hello cloud"))
        .send()
        .await?;
    ensure!(get_bytes(&direct, "remote", "docs/a.txt").await? == b"hello cloud");
    let h = direct
        .head_object()
        .bucket("remote")
        .key("docs/a.txt")
        .send()
        .await?;
    ensure!(
        h.content_type() == Some("text/plain"),
        "{:?}",
        h.content_type()
    );
    let h = c
        .head_object()
        .bucket("remote")
        .key("docs/a.txt")
        .send()
        .await?;
    ensure!(
        h.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str)
            == Some("blue"),
        "{:?}",
        h.metadata()
    );
    // Written on the backend directly: served at once.
    direct
        .put_object()
        .bucket("remote")
        .key("docs/b.txt")
        .body(ByteStream::from_static(b"from the backend"))
        .send()
        .await?;
    ensure!(get_bytes(&c, "remote", "docs/b.txt").await? == b"from the backend");
    // A large PUT streams through as a multipart upload.
    let big = random_bytes(20 * 1024 * 1024 + 5, 9);
    let put = c
        .put_object()
        .bucket("remote")
        .key("big.bin")
        .body(ByteStream::from(big.clone()))
        .send()
        .await?;
    ensure!(put.e_tag() == Some(format!("\"{}\"", md5_hex(&big))).as_deref());
    ensure!(get_bytes(&direct, "remote", "big.bin").await? == big);
    let r = c
        .get_object()
        .bucket("remote")
        .key("big.bin")
        .range("bytes=100-199")
        .send()
        .await?;
    ensure!(r.body.collect().await?.into_bytes().as_ref() == &big[100..200]);
    // Client multipart maps onto the backend's.
    let up = c
        .create_multipart_upload()
        .bucket("remote")
        .key("mp.bin")
        .send()
        .await?;
    let id = up.upload_id().context("id")?;
    let p1 = random_bytes(5 * 1024 * 1024, 1);
    let p2 = random_bytes(777, 2);
    let mut parts = Vec::new();
    for (n, p) in [(1, &p1), (2, &p2)] {
        let r = c
            .upload_part()
            .bucket("remote")
            .key("mp.bin")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await?;
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap_or_default())
                .build(),
        );
    }
    let done = c
        .complete_multipart_upload()
        .bucket("remote")
        .key("mp.bin")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await?;
    ensure!(
        done.e_tag().is_some_and(|e| e.ends_with("-2\"")),
        "{:?}",
        done.e_tag()
    );
    let mut all = p1.clone();
    all.extend_from_slice(&p2);
    ensure!(get_bytes(&direct, "remote", "mp.bin").await? == all);
    // Listing: pages and delimiters as the backend holds them.
    let keys = list_all(&c, "remote", 2).await?;
    ensure!(
        keys == ["big.bin", "docs/a.txt", "docs/b.txt", "mp.bin"],
        "{keys:?}"
    );
    let (cps, _) = top_level(&c, "remote").await?;
    ensure!(cps == ["docs/"], "{cps:?}");
    // Declared gaps: 501 naming the backend.
    refused_naming(
        c.create_bucket().bucket("newbucket").send().await,
        "S3 gateway",
    )?;
    refused_naming(
        c.put_object().bucket("remote").key("folder/").send().await,
        "S3 gateway",
    )?;
    c.delete_object()
        .bucket("remote")
        .key("docs/b.txt")
        .send()
        .await?;
    expect_err(
        "deleted through the gateway",
        direct
            .head_object()
            .bucket("remote")
            .key("docs/b.txt")
            .send()
            .await,
        404,
        None,
    )?;
    // The backend goes away: a 503, not a 404 or a partial object.
    backend.kill()?;
    get_is_unavailable(&c, "remote", "docs/a.txt", "the S3 gateway").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_gateway_awscli_sync_and_rclone_check() -> Result<()> {
    let (_backend, gw) = s3_pair().await?;
    sync_round_trip(&gw, "remote", 5, RcloneCheck::Hashes)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nas_gateway_serves_the_fuse_mount_too() -> Result<()> {
    let dirs = tempfile::Builder::new()
        .prefix("cairn-nas-mnt-")
        .tempdir()?;
    let mnt = dirs.path().join("mnt");
    std::fs::create_dir(&mnt)?;
    let spool = dirs.path().join("spool");
    let mnt_s = mnt.display().to_string();
    let spool_s = spool.display().to_string();
    let mut nas = Nas::start(
        |share| Ok(std::fs::create_dir(share.join("media"))?),
        &["--mount", &mnt_s, "--mount-spool", &spool_s],
    )
    .await?;
    let result = async {
        // Through the mount: a plain file on the share and an S3 object.
        std::fs::write(mnt.join("media/from-mount.txt"), b"via fuse")?;
        ensure!(std::fs::read(nas.share.join("media/from-mount.txt"))? == b"via fuse");
        ensure!(get_bytes(&nas.server.s3(), "media", "from-mount.txt").await? == b"via fuse");
        // On the share: seen through the mount.
        std::fs::write(nas.share.join("media/on-share.txt"), b"direct")?;
        ensure!(std::fs::read(mnt.join("media/on-share.txt"))? == b"direct");
        Ok(())
    }
    .await;
    let st = nas
        .server
        .terminate(std::time::Duration::from_secs(30))
        .await?;
    ensure!(st.success(), "gateway exit after SIGTERM: {st}");
    let mounted = std::fs::read_to_string("/proc/self/mounts")?
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(mnt_s.as_str()));
    if mounted {
        let _ = Command::new("umount").arg("-l").arg(&mnt).status();
        anyhow::bail!("still mounted after SIGTERM");
    }
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_gateway_in_front_of_moto() -> Result<()> {
    require_tool("aws")?;
    require_tool("rclone")?;
    let moto = start_moto().await?;
    let moto_client = moto.client();
    moto_client.create_bucket().bucket("vendor").send().await?;
    let gw = moto.gateway(&["--bucket", "vendor"]).await?;
    let c = gw.s3();
    c.put_object()
        .bucket("vendor")
        .key("x/y.txt")
        .content_type("text/plain")
        .body(ByteStream::from_static(b"to moto"))
        .send()
        .await?;
    ensure!(get_bytes(&moto_client, "vendor", "x/y.txt").await? == b"to moto");
    ensure!(get_bytes(&c, "vendor", "x/y.txt").await? == b"to moto");
    let big = random_bytes(9 * 1024 * 1024, 4);
    c.put_object()
        .bucket("vendor")
        .key("big.bin")
        .body(ByteStream::from(big.clone()))
        .send()
        .await?;
    ensure!(get_bytes(&moto_client, "vendor", "big.bin").await? == big);
    sync_round_trip(&gw, "vendor", 8, RcloneCheck::Hashes)?;
    Ok(())
}

/// `cairn gateway s3 --endpoint URL` without `--bucket`: every bucket the
/// backend lists when the gateway starts is served, under its own name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_gateway_without_bucket_serves_what_the_backend_lists() -> Result<()> {
    let moto = start_moto().await?;
    let m = moto.client();
    for b in ["alpha", "beta"] {
        m.create_bucket().bucket(b).send().await?;
    }
    m.put_object()
        .bucket("beta")
        .key("in/beta.txt")
        .body(ByteStream::from_static(b"made in moto"))
        .send()
        .await?;
    let gw = moto.gateway(&[]).await?;
    let c = gw.s3();
    let listed = c.list_buckets().send().await?;
    let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    ensure!(names == ["alpha", "beta"], "{names:?}");
    ensure!(get_bytes(&c, "beta", "in/beta.txt").await? == b"made in moto");
    c.put_object()
        .bucket("alpha")
        .key("to/alpha.txt")
        .body(ByteStream::from_static(b"through cairn"))
        .send()
        .await?;
    ensure!(get_bytes(&m, "alpha", "to/alpha.txt").await? == b"through cairn");
    ensure!(list_all(&c, "alpha", 10).await? == ["to/alpha.txt"]);
    // A bucket made after the start is not served (listed at start only).
    m.create_bucket().bucket("gamma").send().await?;
    expect_err(
        "GET in a bucket made after the gateway started",
        c.get_object().bucket("gamma").key("x").send().await,
        404,
        Some("NoSuchBucket"),
    )?;
    Ok(())
}

/// Azurite with a container `blobs` and `cairn gateway azure` in front of
/// it (object_store's emulator mode: the well-known account and key).
async fn azure_pair() -> Result<(Azurite, Server)> {
    let az = Azurite::start().await?;
    az.create_container("blobs").await?;
    let mut opts = StartOpts::gateway(["azure", "--container", "blobs", "--emulator"]);
    opts.env = vec![("AZURITE_BLOB_STORAGE_URL".into(), az.endpoint())];
    let gw = Server::start(opts).await?;
    Ok((az, gw))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_gateway_round_trip_against_azurite() -> Result<()> {
    let (az, gw) = azure_pair().await?;
    let c = gw.s3();
    let put = c
        .put_object()
        .bucket("blobs")
        .key("docs/a.txt")
        .content_type("text/plain")
        .metadata("color", "blue")
        .body(ByteStream::from_static(b"hello azure"))
        .send()
        .await?;
    // A blob in the container, read from Azurite itself.
    let r = az.get_blob("blobs", "docs/a.txt").await?;
    ensure!(
        r.status == 200 && r.body == b"hello azure",
        "{}",
        r.describe()
    );
    ensure!(r.header("content-type") == Some("text/plain"), "{r:?}");
    ensure!(r.header("x-ms-meta-color") == Some("blue"), "{r:?}");
    let h = c
        .head_object()
        .bucket("blobs")
        .key("docs/a.txt")
        .send()
        .await?;
    // Azure's own ETag, the same on PUT, HEAD and in the listing.
    ensure!(
        h.e_tag().is_some() && h.e_tag() == put.e_tag(),
        "{h:?} {put:?}"
    );
    let listed = c.list_objects_v2().bucket("blobs").send().await?;
    ensure!(
        listed.contents().first().and_then(|o| o.e_tag()) == h.e_tag(),
        "{listed:?}"
    );
    ensure!(
        h.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str)
            == Some("blue"),
        "{:?}",
        h.metadata()
    );
    // Written by another Azure program: served at once.
    az.put_blob("blobs", "docs/b.txt", b"from azure").await?;
    ensure!(get_bytes(&c, "blobs", "docs/b.txt").await? == b"from azure");
    // A large PUT streams through as staged blocks.
    let big = random_bytes(20 * 1024 * 1024 + 5, 11);
    let put = c
        .put_object()
        .bucket("blobs")
        .key("big.bin")
        .body(ByteStream::from(big.clone()))
        .send()
        .await?;
    let h = c
        .head_object()
        .bucket("blobs")
        .key("big.bin")
        .send()
        .await?;
    ensure!(put.e_tag() == h.e_tag(), "{put:?} {h:?}");
    let r = az.get_blob("blobs", "big.bin").await?;
    ensure!(
        r.status == 200 && r.body == big,
        "blob differs: {}",
        r.status
    );
    let r = c
        .get_object()
        .bucket("blobs")
        .key("big.bin")
        .range("bytes=100-199")
        .send()
        .await?;
    ensure!(r.body.collect().await?.into_bytes().as_ref() == &big[100..200]);
    // Client multipart maps onto Azure's staged blocks.
    let up = c
        .create_multipart_upload()
        .bucket("blobs")
        .key("mp.bin")
        .content_type("application/x-test")
        .metadata("shade", "dark")
        .send()
        .await?;
    let id = up.upload_id().context("id")?;
    let p1 = random_bytes(5 * 1024 * 1024, 1);
    let p2 = random_bytes(777, 2);
    let mut parts = Vec::new();
    for (n, p) in [(1, &p1), (2, &p2)] {
        let r = c
            .upload_part()
            .bucket("blobs")
            .key("mp.bin")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await?;
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap_or_default())
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket("blobs")
        .key("mp.bin")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await?;
    let mut all = p1.clone();
    all.extend_from_slice(&p2);
    let r = az.get_blob("blobs", "mp.bin").await?;
    ensure!(r.body == all, "joined blob differs");
    // Azure's block list carries no metadata: the gateway copied it in.
    ensure!(
        r.header("content-type") == Some("application/x-test"),
        "{r:?}"
    );
    ensure!(r.header("x-ms-meta-shade") == Some("dark"), "{r:?}");
    let keys = list_all(&c, "blobs", 2).await?;
    ensure!(
        keys == ["big.bin", "docs/a.txt", "docs/b.txt", "mp.bin"],
        "{keys:?}"
    );
    // Gaps: 501 naming the backend.
    refused_naming(
        c.create_bucket().bucket("newbucket").send().await,
        "Azure gateway",
    )?;
    // Deleted behind the gateway's back: NoSuchKey.
    az.delete_blob("blobs", "docs/b.txt").await?;
    expect_err(
        "GET of a blob deleted in Azure",
        c.get_object()
            .bucket("blobs")
            .key("docs/b.txt")
            .send()
            .await,
        404,
        Some("NoSuchKey"),
    )?;
    // Azure goes away: 503, not a 404.
    drop(az);
    get_is_unavailable(&c, "blobs", "docs/a.txt", "the Azure gateway").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_gateway_awscli_sync_and_rclone_check() -> Result<()> {
    let (_az, gw) = azure_pair().await?;
    sync_round_trip(&gw, "blobs", 13, RcloneCheck::Download)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_backend_passes_conformance_on_azurite() -> Result<()> {
    let az = Azurite::start().await?;
    let names: Vec<String> = cairn_api::conformance::BUCKETS
        .iter()
        .map(|s| s.to_string())
        .collect();
    for n in &names {
        az.create_container(n).await?;
    }
    // The account, key and URL given as for a real account (the CLI test
    // above goes through --emulator instead).
    let layer = cairn_gateway::cloud::azure_layer(
        Some(AZURITE_ACCOUNT),
        Some(AZURITE_KEY),
        Some(&format!("{}/{AZURITE_ACCOUNT}", az.endpoint())),
        false,
        &names,
    )?;
    cairn_api::conformance::run_all(&layer).await;
    Ok(())
}

/// The NAS share unmounted while a PUT streams into it (a bind mount
/// lazily unmounted, as a dropped NFS/SMB mount leaves an empty mount
/// point): that PUT and every later request get a 503, never a 404 or an
/// empty bucket list, no partial object is left on the share, and the
/// gateway serves again once the share is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nas_share_gone_mid_put_is_503_without_partial_object() -> Result<()> {
    require_tool("mount")?;
    require_tool("umount")?;
    let dir = tempfile::Builder::new()
        .prefix("cairn-nas-gone-")
        .tempdir()?;
    let real = dir.path().join("real");
    let share = dir.path().join("share");
    std::fs::create_dir_all(real.join("bkt"))?;
    std::fs::create_dir(&share)?;
    run(Command::new("mount").arg("--bind").arg(&real).arg(&share))?;
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let mounted = Unmount(share.clone());
    let mut opts = StartOpts::gateway(["nas".to_string(), share.display().to_string()]);
    opts.extra_args = vec![];
    let gw = Server::start(opts).await?;
    let c = gw.s3();
    c.put_object()
        .bucket("bkt")
        .key("kept.txt")
        .body(ByteStream::from_static(b"kept"))
        .send()
        .await?;

    // A PUT of 8 MiB, half sent when the share goes away.
    use tokio::io::AsyncWriteExt as _;
    let data = random_bytes(8 << 20, 5);
    let mut up = gw
        .raw()
        .open_upload("PUT", "/bkt/big.bin", &[], data.len() as u64)
        .await?;
    up.write_all(&data[..4 << 20]).await?;
    up.flush().await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    run(Command::new("umount").arg("-l").arg(&share))?;
    up.write_all(&data[4 << 20..]).await?;
    let r = cairn_tests::raw::finish_upload(up).await?;
    ensure!(
        r.status == 503,
        "PUT while the share went away: {}",
        r.describe()
    );
    // The 503 names the gateway's share, not drives it does not have.
    let body = String::from_utf8_lossy(&r.body);
    ensure!(
        body.contains("the NAS gateway is unavailable") && !body.contains("drives"),
        "{body}"
    );
    ensure!(
        !real.join("bkt/big.bin").exists(),
        "a partial object is on the share"
    );
    ensure!(std::fs::read(real.join("bkt/kept.txt"))? == b"kept");

    // With the share gone: 503 for reads and listings, not 404 / empty.
    get_is_unavailable(&c, "bkt", "kept.txt", "the NAS gateway").await?;
    match c.list_buckets().send().await {
        Ok(o) => anyhow::bail!("ListBuckets with the share gone: {o:?}"),
        Err(e) => ensure!(cairn_tests::err_status(&e) == Some(503), "{e:?}"),
    }
    // Back: served again, and still no partial object.
    run(Command::new("mount").arg("--bind").arg(&real).arg(&share))?;
    ensure!(get_bytes(&c, "bkt", "kept.txt").await? == b"kept");
    expect_err(
        "the interrupted PUT's key",
        c.get_object().bucket("bkt").key("big.bin").send().await,
        404,
        Some("NoSuchKey"),
    )?;
    drop(mounted);
    Ok(())
}

/// A gateway's IAM users, keys and policies live in its state folder
/// (SHARE/.cairn.gateway for nas): made with `aws iam`, they govern S3
/// requests, survive a restart (SIGKILL included), stay private files and
/// are not reachable through S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nas_gateway_keeps_its_iam_records_across_restarts() -> Result<()> {
    let mut nas = Nas::start(
        |share| {
            std::fs::create_dir(share.join("docs"))?;
            std::fs::write(share.join("docs/a.txt"), b"nas data")?;
            Ok(())
        },
        &[],
    )
    .await?;
    let read_docs = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::docs/*"}]}"#;
    let reader = nas.server.iam_user("reader", Some(read_docs))?;
    ensure!(get_bytes(&reader, "docs", "a.txt").await? == b"nas data");
    let put = |c: &aws_sdk_s3::Client| {
        c.put_object()
            .bucket("docs")
            .key("b.txt")
            .body(ByteStream::from_static(b"x"))
            .send()
    };
    expect_err(
        "PUT by a reader",
        put(&reader).await,
        403,
        Some("AccessDenied"),
    )?;

    nas.server.kill()?;
    nas.server.restart().await?;
    // the same key, the same policy, after a restart
    ensure!(get_bytes(&reader, "docs", "a.txt").await? == b"nas data");
    expect_err(
        "PUT after restart",
        put(&reader).await,
        403,
        Some("AccessDenied"),
    )?;
    let users = nas.server.aws_iam(&["list-users"])?;
    ensure!(
        users["Users"][0]["UserName"] == "reader",
        "list-users after restart: {users}"
    );

    // the records are private files of the state folder
    let keys = nas.share.join(".cairn.gateway/iam/keys");
    let mut found = 0;
    for e in std::fs::read_dir(&keys).with_context(|| format!("{}", keys.display()))? {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = e?.metadata()?.permissions().mode() & 0o777;
        ensure!(mode == 0o600, "key record mode {mode:o}");
        found += 1;
    }
    ensure!(found == 1, "{found} key records");
    // and S3 has no way to them
    let root = nas.server.s3();
    let buckets = root.list_buckets().send().await?;
    ensure!(
        buckets.buckets().iter().all(|b| b.name() == Some("docs")),
        "buckets: {:?}",
        buckets.buckets()
    );
    let r = root
        .get_object()
        .bucket(".cairn.gateway")
        .key("iam/keys")
        .send()
        .await;
    ensure!(r.is_err(), "the state folder is not a bucket");

    // a deleted user is gone after a restart too
    nas.server.aws_iam(&[
        "delete-user-policy",
        "--user-name",
        "reader",
        "--policy-name",
        "p",
    ])?;
    let key_id = nas
        .server
        .aws_iam(&["list-access-keys", "--user-name", "reader"])?;
    let key_id = key_id["AccessKeyMetadata"][0]["AccessKeyId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    nas.server.aws_iam(&[
        "delete-access-key",
        "--user-name",
        "reader",
        "--access-key-id",
        &key_id,
    ])?;
    nas.server
        .aws_iam(&["delete-user", "--user-name", "reader"])?;
    nas.server.restart().await?;
    expect_err(
        "GET by a deleted user",
        reader.get_object().bucket("docs").key("a.txt").send().await,
        403,
        Some("InvalidAccessKeyId"),
    )?;
    Ok(())
}
