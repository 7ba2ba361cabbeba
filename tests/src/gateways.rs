//! What the gateway tests share: the awscli + rclone round trip every
//! gateway passes, listing through the SDK, and the checks of declared
//! gaps (501 naming the backend) and of a backend gone (503 naming it).

use std::path::PathBuf;

use anyhow::{Result, ensure};

use crate::data::{assert_trees_equal, write_tree};
use crate::{Server, require_tool, run};

/// Every key of bucket `b`, listed `page` keys at a time.
pub async fn list_all(c: &aws_sdk_s3::Client, b: &str, page: i32) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let out = c
            .list_objects_v2()
            .bucket(b)
            .max_keys(page)
            .set_continuation_token(token)
            .send()
            .await?;
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        if out.is_truncated() != Some(true) {
            return Ok(keys);
        }
        token = out.next_continuation_token().map(str::to_owned);
    }
}

/// The top level of bucket `b` listed with the `/` delimiter: its common
/// prefixes and its keys.
pub async fn top_level(c: &aws_sdk_s3::Client, b: &str) -> Result<(Vec<String>, Vec<String>)> {
    let out = c.list_objects_v2().bucket(b).delimiter("/").send().await?;
    let cps = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix().map(str::to_owned))
        .collect();
    let keys = out
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    Ok((cps, keys))
}

/// How `rclone check` compares: by the MD5 ETags the listing carries, or
/// (for backends whose listings carry the remote's own opaque ETags,
/// which rclone cannot compare) by downloading every file.
#[derive(Clone, Copy)]
pub enum RcloneCheck {
    Hashes,
    Download,
}

/// The round trip every gateway passes: awscli `s3 sync` of a tree up to
/// `bucket/tree/` and back into another folder (byte for byte), then
/// `rclone check` of the source against the bucket. Returns the source.
pub fn sync_round_trip(gw: &Server, bucket: &str, seed: u64, how: RcloneCheck) -> Result<PathBuf> {
    require_tool("aws")?;
    require_tool("rclone")?;
    let ep = gw.endpoint();
    let src = gw.dir().join("src");
    write_tree(&src, seed)?;
    let remote = format!("s3://{bucket}/tree/");
    run(gw.tool("aws").args(["s3", "sync"]).arg(&src).args([
        &remote,
        "--endpoint-url",
        &ep,
        "--no-progress",
    ]))?;
    let back = gw.dir().join("back");
    run(gw
        .tool("aws")
        .args(["s3", "sync", &remote])
        .arg(&back)
        .args(["--endpoint-url", &ep, "--no-progress"]))?;
    assert_trees_equal(&src, &back)?;
    let mut check = gw.tool("rclone");
    check.args(["check", "--one-way"]);
    if let RcloneCheck::Download = how {
        check.arg("--download");
    }
    run(check.arg(&src).arg(format!("cairn:{bucket}/tree")))?;
    Ok(src)
}

/// A 501 NotImplemented whose message names the backend.
pub fn refused_naming<T, E: std::fmt::Debug>(
    r: std::result::Result<
        T,
        aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    >,
    name: &str,
) -> Result<()> {
    match r {
        Ok(_) => anyhow::bail!("a declared gap succeeded"),
        Err(e) => {
            ensure!(crate::err_status(&e) == Some(501), "{e:?}");
            let body = format!("{:?}", e.raw_response().map(|r| r.body()));
            ensure!(body.contains(name), "{body}");
            Ok(())
        }
    }
}

/// A GET while the gateway's store is gone: a 503 naming the gateway,
/// never bytes or a 404.
pub async fn get_is_unavailable(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    backend: &str,
) -> Result<()> {
    match c.get_object().bucket(bucket).key(key).send().await {
        Ok(_) => anyhow::bail!("GET {bucket}/{key} with {backend}'s store gone succeeded"),
        Err(e) => unavailable_naming(&e, backend),
    }
}

/// A 503 whose message names the gateway (`backend`), not drives.
pub fn unavailable_naming<E>(
    e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    backend: &str,
) -> Result<()>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
{
    use aws_sdk_s3::error::ProvideErrorMetadata as _;
    ensure!(crate::err_status(e) == Some(503), "{e:?}");
    let m = e.message().unwrap_or_default();
    ensure!(
        m.contains(&format!("{backend} is unavailable")) && !m.contains("drives"),
        "503 message: {m:?}"
    );
    Ok(())
}
