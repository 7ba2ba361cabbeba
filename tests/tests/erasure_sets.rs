//! `cairn server` over 8 drives in two erasure sets of 4: awscli syncs a
//! tree up and back byte-identical, rclone checks it, the keys are spread
//! over both sets (each object's folder on the drives of one set only),
//! `cairn admin info` names every drive's set, and after a restart with
//! the drives given in another order everything reads back.

use anyhow::{Result, ensure};
use cairn_tests::data::{assert_trees_equal, list_tree, write_tree};
use cairn_tests::{Server, StartOpts, admin, bucket_name, require_tool, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sets_of_four_serve_awscli_and_rclone() -> Result<()> {
    require_tool("aws")?;
    require_tool("rclone")?;
    let mut s = Server::start(StartOpts {
        drives: 8,
        extra_args: vec!["--set-drive-count".into(), "4".into()],
        ..Default::default()
    })
    .await?;
    let b = bucket_name("sets");
    let ep = s.endpoint();
    let d = s.dir().to_path_buf();
    run(s
        .tool("aws")
        .args(["s3", "mb", &format!("s3://{b}"), "--endpoint-url", &ep]))?;
    let tree = d.join("tree");
    let files = write_tree(&tree, 21)?;
    run(s.tool("aws").args(["s3", "sync"]).arg(&tree).args([
        &format!("s3://{b}/"),
        "--endpoint-url",
        &ep,
        "--no-progress",
    ]))?;
    let back = d.join("back");
    run(s
        .tool("aws")
        .args(["s3", "sync", &format!("s3://{b}/")])
        .arg(&back)
        .args(["--endpoint-url", &ep, "--no-progress"]))?;
    assert_trees_equal(&tree, &back)?;
    let rclone = s.rclone_config();
    run(s
        .tool("rclone")
        .arg("--config")
        .arg(&rclone)
        .arg("check")
        .arg(&tree)
        .arg(format!("cairn:{b}")))?;

    // every object is on the four drives of exactly one set, both sets used
    let drives = s.drives().to_vec();
    let mut per_set = [0usize; 2];
    for f in &files {
        let key = f.to_string_lossy();
        let on: Vec<usize> = (0..8)
            .filter(|i| drives[*i].join(&b).join(key.as_ref()).is_dir())
            .collect();
        ensure!(
            on == [0, 1, 2, 3] || on == [4, 5, 6, 7],
            "{key} is on drives {on:?}"
        );
        per_set[on[0] / 4] += 1;
    }
    ensure!(
        per_set[0] > 0 && per_set[1] > 0,
        "keys per set: {per_set:?}"
    );

    let out = admin(&s, &["info", "--json"], None).await?;
    ensure!(out.status.success(), "cairn admin info: {out:?}");
    let info: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let sets: Vec<u64> = info["drives"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d["set"].as_u64()).collect())
        .unwrap_or_default();
    ensure!(
        sets == [0, 0, 0, 0, 1, 1, 1, 1],
        "sets in admin info: {info}"
    );
    let out = admin(&s, &["info"], None).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(text.contains("(2 sets of 4)"), "admin info: {text}");

    // drives given in another order are found by their ids
    let mut reordered = drives.clone();
    reordered.reverse();
    s.restart_with_drives(reordered).await?;
    let again = d.join("again");
    run(s
        .tool("aws")
        .args(["s3", "sync", &format!("s3://{b}/")])
        .arg(&again)
        .args(["--endpoint-url", &s.endpoint(), "--no-progress"]))?;
    assert_trees_equal(&tree, &again)?;
    ensure!(list_tree(&again)?.len() == files.len());
    Ok(())
}
