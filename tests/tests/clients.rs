//! Real command line clients: awscli, rclone, s3cmd. A missing tool fails
//! the test (scripts/test installs them).

use std::process::Command;

use anyhow::{Context as _, Result, ensure};
use cairn_tests::cmd::run_stdout;
use cairn_tests::data::{
    MIB, assert_files_equal, assert_trees_equal, md5_hex, write_random_file, write_tree,
};
use cairn_tests::{Server, bucket_name, require_tool, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awscli_cp_100mib_and_sync_tree() -> Result<()> {
    require_tool("aws")?;
    let s = Server::start_default().await?;
    let b = bucket_name("awscli");
    let ep = s.endpoint();
    let d = s.dir();
    run(s
        .tool("aws")
        .args(["s3", "mb", &format!("s3://{b}"), "--endpoint-url", &ep]))?;

    let src = d.join("big.bin");
    write_random_file(&src, 100 * MIB as u64, 1)?;
    run(s.tool("aws").args(["s3", "cp"]).arg(&src).args([
        &format!("s3://{b}/dir/big.bin"),
        "--endpoint-url",
        &ep,
        "--no-progress",
    ]))?;
    let back = d.join("big.back");
    run(s
        .tool("aws")
        .args(["s3", "cp", &format!("s3://{b}/dir/big.bin")])
        .arg(&back)
        .args(["--endpoint-url", &ep, "--no-progress"]))?;
    assert_files_equal(&src, &back)?;
    let ls = run_stdout(s.tool("aws").args([
        "s3",
        "ls",
        &format!("s3://{b}/dir/"),
        "--endpoint-url",
        &ep,
    ]))?;
    ensure!(
        ls.contains(&format!("{} big.bin", 100 * MIB)),
        "aws s3 ls shows: {ls}"
    );
    // a single-request PUT (below the multipart threshold) with awscli too
    let small = d.join("small.bin");
    write_random_file(&small, 3 * MIB as u64 + 1, 2)?;
    run(s.tool("aws").args(["s3", "cp"]).arg(&small).args([
        &format!("s3://{b}/small.bin"),
        "--endpoint-url",
        &ep,
        "--no-progress",
    ]))?;
    let small_back = d.join("small.back");
    run(s
        .tool("aws")
        .args(["s3", "cp", &format!("s3://{b}/small.bin")])
        .arg(&small_back)
        .args(["--endpoint-url", &ep, "--no-progress"]))?;
    assert_files_equal(&small, &small_back)?;

    // sync a tree up and back
    let tree = d.join("tree");
    write_tree(&tree, 10)?;
    run(s.tool("aws").args(["s3", "sync"]).arg(&tree).args([
        &format!("s3://{b}/tree/"),
        "--endpoint-url",
        &ep,
        "--no-progress",
    ]))?;
    let tree_back = d.join("tree-back");
    run(s
        .tool("aws")
        .args(["s3", "sync", &format!("s3://{b}/tree/")])
        .arg(&tree_back)
        .args(["--endpoint-url", &ep, "--no-progress"]))?;
    assert_trees_equal(&tree, &tree_back)?;
    // a second sync has nothing to do
    let again = run_stdout(s.tool("aws").args(["s3", "sync"]).arg(&tree).args([
        &format!("s3://{b}/tree/"),
        "--endpoint-url",
        &ep,
        "--no-progress",
    ]))?;
    ensure!(
        again.trim().is_empty(),
        "second sync uploaded again: {again}"
    );
    // run against a cluster (CAIRN_TEST_CLUSTER), every node took requests
    if std::env::var_os("CAIRN_TEST_CLUSTER").is_some() {
        let c = s
            .cluster()
            .context("CAIRN_TEST_CLUSTER is set: a cluster")?;
        let served = c.front.served();
        ensure!(served.iter().all(|&n| n >= 10), "{served:?}");
    }
    Ok(())
}

/// botocore (awscli's and boto3's library) keeps the status line of a final
/// answer to an `Expect: 100-continue` request that got no `100 Continue`
/// (an empty body gets none) and reads the next Expect request's answer
/// on that connection with it: the real status line becomes a bad header
/// and every header is lost (awscli then fails with `'ETag'`). The server
/// closes such connections; here one connection does an empty PUT, then
/// PUTs and an UploadPart that must all come back with their ETags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_gets_etags_after_an_empty_put() -> Result<()> {
    require_tool("aws")?;
    let s = Server::start_default().await?;
    let b = bucket_name("expect");
    s.s3().create_bucket().bucket(&b).send().await?;
    let script = r#"
import io, sys, botocore.session
from botocore.config import Config
ep, user, secret, b = sys.argv[1:5]
c = botocore.session.get_session().create_client(
    "s3", endpoint_url=ep, aws_access_key_id=user, aws_secret_access_key=secret,
    region_name="us-east-1",
    config=Config(max_pool_connections=1, retries={"max_attempts": 1},
                  s3={"addressing_style": "path"}))
for i in range(3):
    c.put_object(Bucket=b, Key="empty%d" % i, Body=io.BytesIO(b""))
    r = c.put_object(Bucket=b, Key="k%d" % i, Body=io.BytesIO(b"x" * 100000))
    print("put", i, r.get("ETag"))
up = c.create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
c.put_object(Bucket=b, Key="empty-again", Body=io.BytesIO(b""))
r = c.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=1, Body=io.BytesIO(b"y" * 100000))
print("part", r.get("ETag"))
"#;
    let out = run_stdout(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(s.endpoint())
            .arg(s.access_key())
            .arg(s.secret_key())
            .arg(&b),
    )?;
    let x = md5_hex(&[b'x'; 100_000]);
    let y = md5_hex(&[b'y'; 100_000]);
    let want = format!("put 0 \"{x}\"\nput 1 \"{x}\"\nput 2 \"{x}\"\npart \"{y}\"\n");
    ensure!(out == want, "botocore saw:\n{out}\nwanted:\n{want}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_copy_and_check_tree() -> Result<()> {
    require_tool("rclone")?;
    let s = Server::start_default().await?;
    let b = bucket_name("rclone");
    let d = s.dir();
    let tree = d.join("tree");
    write_tree(&tree, 20)?;
    run(s.tool("rclone").args(["mkdir", &format!("cairn:{b}")]))?;
    run(s.tool("rclone").arg("copy").arg(&tree).args([
        &format!("cairn:{b}/t"),
        "--s3-upload-cutoff",
        "5M",
        "--s3-chunk-size",
        "5M",
    ]))?;
    run(s
        .tool("rclone")
        .arg("check")
        .arg(&tree)
        .arg(format!("cairn:{b}/t")))?;
    let back = d.join("back");
    run(s
        .tool("rclone")
        .args(["copy", &format!("cairn:{b}/t")])
        .arg(&back))?;
    assert_trees_equal(&tree, &back)?;
    let ls = run_stdout(
        s.tool("rclone")
            .args(["lsf", "-R", &format!("cairn:{b}/t")]),
    )?;
    ensure!(ls.contains("a/b/c/deep.bin"), "rclone lsf: {ls}");
    // check must be able to fail: change a remote file and see it noticed
    let other = d.join("other.txt");
    std::fs::write(&other, b"changed")?;
    run(s
        .tool("rclone")
        .arg("copyto")
        .arg(&other)
        .arg(format!("cairn:{b}/t/small.txt")))?;
    let out = cairn_tests::run_status(
        s.tool("rclone")
            .arg("check")
            .arg(&tree)
            .arg(format!("cairn:{b}/t")),
    )?;
    ensure!(
        !out.status.success(),
        "rclone check did not notice a changed file"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3cmd_put_get_ls() -> Result<()> {
    require_tool("s3cmd")?;
    let s = Server::start_default().await?;
    let b = bucket_name("s3cmd");
    let d = s.dir();
    let cfg = s.s3cmd_config();
    let s3cmd = || {
        let mut c = s.tool("s3cmd");
        c.arg("-c").arg(&cfg);
        c
    };
    run(s3cmd().args(["mb", &format!("s3://{b}")]))?;
    let small = d.join("small.txt");
    std::fs::write(&small, b"hello from s3cmd\n")?;
    let big = d.join("big.bin");
    write_random_file(&big, 20 * MIB as u64, 3)?; // > 15 MiB: multipart
    run(s3cmd()
        .arg("put")
        .arg(&small)
        .arg(format!("s3://{b}/docs/small.txt")))?;
    run(s3cmd()
        .arg("put")
        .arg(&big)
        .arg(format!("s3://{b}/big.bin")))?;
    let ls = run_stdout(s3cmd().args(["ls", &format!("s3://{b}/")]))?;
    ensure!(
        ls.contains(&format!("s3://{b}/big.bin")) && ls.contains(&format!("s3://{b}/docs/")),
        "s3cmd ls: {ls}"
    );
    let lsr = run_stdout(s3cmd().args(["ls", "-r", &format!("s3://{b}")]))?;
    ensure!(
        lsr.contains(&format!("s3://{b}/docs/small.txt")),
        "s3cmd ls -r: {lsr}"
    );
    let buckets = run_stdout(s3cmd().arg("ls"))?;
    ensure!(
        buckets.contains(&format!("s3://{b}")),
        "s3cmd ls (buckets): {buckets}"
    );
    for (key, local) in [("docs/small.txt", &small), ("big.bin", &big)] {
        let out = d.join(format!("got-{}", key.replace('/', "_")));
        run(s3cmd().args(["get", &format!("s3://{b}/{key}")]).arg(&out))?;
        assert_files_equal(local, &out)?;
    }
    run(s3cmd().args(["del", &format!("s3://{b}/docs/small.txt")]))?;
    let lsr = run_stdout(s3cmd().args(["ls", "-r", &format!("s3://{b}")]))?;
    ensure!(!lsr.contains("small.txt"), "after s3cmd del: {lsr}");
    Ok(())
}
