//! The Landlock sandbox end to end: a serving process cannot open a file
//! outside its folders even when a route leads it there, `--no-sandbox`
//! lifts that, and `cairn admin info` says which is in force.

use anyhow::{Context as _, Result, bail, ensure};
use cairn_tests::{Server, StartOpts, admin, err_code};

async fn get(c: &aws_sdk_s3::Client, b: &str, k: &str) -> Result<Vec<u8>> {
    let o = c.get_object().bucket(b).key(k).send().await?;
    Ok(o.body.collect().await?.into_bytes().to_vec())
}

/// The sandbox line of the server's start log.
fn sandbox_line(s: &Server) -> Result<String> {
    let log = s.log();
    log.lines()
        .find(|l| l.contains("sandbox"))
        .map(str::to_owned)
        .with_context(|| format!("no sandbox line in the server log:\n{log}"))
}

/// A symlink in the share to a file outside it (anyone who may write to
/// the NAS can plant one) is no route out: the gateway resolves every
/// object path and refuses one that leaves its bucket (403 AccessDenied),
/// with the sandbox on and off; the sandbox is the kernel's backstop
/// behind that check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nas_gateway_cannot_read_a_file_outside_its_share() -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("cairn-sandbox-")
        .tempdir()?;
    let share = dir.path().join("share");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(share.join("bkt"))?;
    std::fs::create_dir(&outside)?;
    let secret = format!("host secret {}", std::process::id());
    std::fs::write(outside.join("secret.txt"), &secret)?;
    std::fs::write(share.join("bkt/inside.txt"), "inside")?;
    std::os::unix::fs::symlink(outside.join("secret.txt"), share.join("bkt/escape"))?;
    let mut gw = Server::start(StartOpts::gateway([
        "nas".to_string(),
        share.display().to_string(),
    ]))
    .await?;
    let line = sandbox_line(&gw)?;
    ensure!(
        line.contains("landlock ABI v") && line.contains("enforced"),
        "the gateway is not confined (a kernel without Landlock cannot run this test): {line}"
    );
    let c = gw.s3();
    ensure!(get(&c, "bkt", "inside.txt").await? == b"inside");
    let err = match c.get_object().bucket("bkt").key("escape").send().await {
        Ok(o) => {
            let body = o.body.collect().await?.into_bytes();
            bail!(
                "GET of a link out of the share answered 200 with the sandbox on: {:?}",
                String::from_utf8_lossy(&body)
            );
        }
        Err(e) => e,
    };
    ensure!(
        err_code(&err) == "AccessDenied",
        "GET of a link out of the share: want AccessDenied, got {} ({err:?})",
        err_code(&err)
    );
    ensure!(
        !format!("{err:?}").contains(&secret),
        "the refusal carries the file's bytes"
    );
    // the share itself is still fully served: writes, renames, deletes
    c.put_object()
        .bucket("bkt")
        .key("d/new.txt")
        .body(b"new".to_vec().into())
        .send()
        .await?;
    c.delete_object()
        .bucket("bkt")
        .key("inside.txt")
        .send()
        .await?;
    ensure!(!share.join("bkt/inside.txt").exists());
    ensure!(std::fs::read(share.join("bkt/d/new.txt"))? == b"new");

    // without the sandbox the gateway's own check still refuses it (it
    // used to send the file's bytes)
    gw.restart_with_args(vec!["--no-sandbox".into()]).await?;
    let line = sandbox_line(&gw)?;
    ensure!(line.contains("sandbox off"), "{line}");
    match gw
        .s3()
        .get_object()
        .bucket("bkt")
        .key("escape")
        .send()
        .await
    {
        Ok(o) => {
            let body = o.body.collect().await?.into_bytes();
            bail!(
                "GET of a link out of the share answered 200 without the sandbox: {:?}",
                String::from_utf8_lossy(&body)
            );
        }
        Err(e) => ensure!(
            err_code(&e) == "AccessDenied",
            "without the sandbox: want AccessDenied, got {} ({e:?})",
            err_code(&e)
        ),
    }
    Ok(())
}

/// `cairn admin info` names the sandbox in force: Landlock's ABI and
/// "enforced" by default, "off" with --no-sandbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_info_says_whether_the_sandbox_is_on() -> Result<()> {
    let mut s = Server::start_default().await?;
    let info = |out: std::process::Output| -> Result<String> {
        ensure!(
            out.status.success(),
            "cairn admin info failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout)?;
        text.lines()
            .find_map(|l| l.strip_prefix("sandbox: "))
            .map(str::to_owned)
            .with_context(|| format!("no sandbox line in `cairn admin info`:\n{text}"))
    };
    let on = info(admin(&s, &["info"], None).await?)?;
    let abi = on
        .strip_prefix("landlock ABI v")
        .and_then(|r| r.strip_suffix(", enforced"))
        .with_context(|| format!("sandbox: {on}"))?;
    ensure!(
        abi.parse::<u32>().is_ok_and(|v| v >= 1),
        "not an ABI version: {on}"
    );
    // the JSON form carries it too
    let json = admin(&s, &["info", "--json"], None).await?;
    let v: serde_json::Value = serde_json::from_slice(&json.stdout)?;
    ensure!(v["sandbox"] == serde_json::Value::String(on.clone()), "{v}");

    s.restart_with_args(vec!["--no-sandbox".into()]).await?;
    let off = info(admin(&s, &["info"], None).await?)?;
    ensure!(off == "off (--no-sandbox)", "sandbox: {off}");
    Ok(())
}
