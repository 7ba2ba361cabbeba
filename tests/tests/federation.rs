//! Federation (issue 23): a real etcd and three real sites on loopback.
//! A bucket made on one site is written, read and listed through the
//! others with awscli, boto3 and aws-sdk-s3; a name is claimed once; the
//! CoreDNS records are in etcd; a site or etcd gone fails only what needs it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use cairn_tests::boto::boto3;
use cairn_tests::cmd::run;
use cairn_tests::data::{md5_hex, write_random_file};
use cairn_tests::federation::Sites;
use cairn_tests::{bucket_name, err_code, expect_err, get_bytes};

/// The owner of `bucket` as etcd records it.
async fn owner(f: &Sites, bucket: &str) -> Result<Option<String>> {
    let recs = f.etcd.list(&format!("/cairn/buckets/{bucket}")).await?;
    let Some((_, v)) = recs
        .into_iter()
        .find(|(k, _)| *k == format!("/cairn/buckets/{bucket}"))
    else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_str(&v)?;
    Ok(v["site"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_made_on_one_site_is_served_by_every_site() -> Result<()> {
    let f = Sites::start(3, &[]).await?;
    let (a, b, c) = (f.site(0)?, f.site(1)?, f.site(2)?);
    let bucket = bucket_name("fed");
    a.s3().create_bucket().bucket(&bucket).send().await?;
    assert_eq!(owner(&f, &bucket).await?.as_deref(), Some("a"));

    // CoreDNS's etcd plugin layout: the name reversed under /skydns
    // (`<bucket>.localhost` for the default --domain), host and port of A
    let dns = f.etcd.list("/skydns/").await?;
    let key = format!("/skydns/localhost/{bucket}");
    let (_, value) = dns
        .iter()
        .find(|(k, _)| *k == key)
        .with_context(|| format!("no {key} in {dns:?}"))?;
    let value: serde_json::Value = serde_json::from_str(value)?;
    assert_eq!(
        value,
        serde_json::json!({"host": "127.0.0.1", "port": a.port(), "ttl": 30})
    );

    // awscli through B: 20 MiB, a multipart upload (8 MiB parts)
    let file = b.dir().join("big");
    let md5 = write_random_file(&file, 20 << 20, 23)?;
    run(b.tool("aws").args([
        "s3",
        "cp",
        &file.to_string_lossy(),
        &format!("s3://{bucket}/dir/big"),
        "--endpoint-url",
        &b.endpoint(),
    ]))?;
    // read through C (aws-sdk-s3): byte-identical; stored on A
    let got = get_bytes(&c.s3(), &bucket, "dir/big").await?;
    assert_eq!(md5_hex(&got), md5);
    let on_a = get_bytes(&a.s3(), &bucket, "dir/big").await?;
    assert_eq!(on_a, got);

    // boto3 through C: a range, a small put, the listing, ListBuckets
    let out = boto3(
        c,
        r#"
import hashlib
b = sys.argv[1]
r = c.get_object(Bucket=b, Key="dir/big", Range="bytes=5000000-5999999")
body = r["Body"].read()
print(r["ResponseMetadata"]["HTTPStatusCode"], len(body), hashlib.md5(body).hexdigest())
c.put_object(Bucket=b, Key="small", Body=b"hello from c")
print(sorted(o["Key"] for o in c.list_objects_v2(Bucket=b)["Contents"]))
print(b in [x["Name"] for x in c.list_buckets()["Buckets"]])
"#,
        &[&bucket],
    )?;
    let lines: Vec<&str> = out.lines().collect();
    let range = got.get(5_000_000..6_000_000).context("range")?;
    assert_eq!(
        lines,
        [
            format!("206 1000000 {}", md5_hex(range)).as_str(),
            "['dir/big', 'small']",
            "True"
        ]
    );
    assert_eq!(get_bytes(&a.s3(), &bucket, "small").await?, b"hello from c");

    // emptied and deleted through B: the name and its DNS record are freed
    for key in ["dir/big", "small"] {
        b.s3()
            .delete_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await?;
    }
    b.s3().delete_bucket().bucket(&bucket).send().await?;
    assert_eq!(owner(&f, &bucket).await?, None);
    ensure!(
        !f.etcd
            .list("/skydns/")
            .await?
            .iter()
            .any(|(k, _)| *k == key),
        "DNS record left"
    );
    // and the name can be made again, on another site
    c.s3().create_bucket().bucket(&bucket).send().await?;
    assert_eq!(owner(&f, &bucket).await?.as_deref(), Some("c"));
    a.s3().head_bucket().bucket(&bucket).send().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_made_on_two_sites_at_once_has_one_winner() -> Result<()> {
    let f = Sites::start(2, &[]).await?;
    let (a, b) = (f.site(0)?.s3(), f.site(1)?.s3());
    for round in 0..8 {
        let bucket = bucket_name(&format!("race{round}"));
        let (ra, rb) = tokio::join!(
            a.create_bucket().bucket(&bucket).send(),
            b.create_bucket().bucket(&bucket).send()
        );
        let (winner, loser) = match (ra, rb) {
            (Ok(_), Err(e)) => ("a", e),
            (Err(e), Ok(_)) => ("b", e),
            (ra, rb) => bail!("round {round}: {ra:?} / {rb:?}: one winner expected"),
        };
        assert_eq!(err_code(&loser), "BucketAlreadyExists", "round {round}");
        assert_eq!(owner(&f, &bucket).await?.as_deref(), Some(winner));
        // the loser's site serves the winner's bucket
        b.head_bucket().bucket(&bucket).send().await?;
        a.head_bucket().bucket(&bucket).send().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_down_makes_only_its_buckets_unavailable() -> Result<()> {
    let mut f = Sites::start(2, &[]).await?;
    let (a, b) = (f.site(0)?.s3(), f.site(1)?.s3());
    let (mine, theirs) = (bucket_name("mine"), bucket_name("theirs"));
    a.create_bucket().bucket(&mine).send().await?;
    b.create_bucket().bucket(&theirs).send().await?;
    for bk in [&mine, &theirs] {
        a.put_object()
            .bucket(bk)
            .key("k")
            .body(b"v".to_vec().into())
            .send()
            .await?;
    }
    f.sites.get_mut(1).context("site b")?.kill()?;
    // at once (the lease still runs: the connection is refused) and once
    // the lease is gone (the site left the live list)
    for _ in 0..2 {
        let t = Instant::now();
        let r = a.get_object().bucket(&theirs).key("k").send().await;
        expect_err(
            "GET from a site that is down",
            r,
            503,
            Some("ServiceUnavailable"),
        )?;
        ensure!(
            t.elapsed() < Duration::from_secs(2),
            "503 after {:?}",
            t.elapsed()
        );
        assert_eq!(get_bytes(&a, &mine, "k").await?, b"v");
        f.wait_registered(1).await?;
    }
    // the dead site's bucket stays recorded, its name stays taken
    assert_eq!(owner(&f, &theirs).await?.as_deref(), Some("b"));
    let r = a.create_bucket().bucket(&theirs).send().await;
    expect_err(
        "create of a dead site's bucket",
        r,
        409,
        Some("BucketAlreadyExists"),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_down_keeps_local_buckets_serving() -> Result<()> {
    let mut f = Sites::start(1, &[]).await?;
    let a = f.site(0)?.s3();
    let bucket = bucket_name("local");
    a.create_bucket().bucket(&bucket).send().await?;
    f.etcd.stop()?;
    a.put_object()
        .bucket(&bucket)
        .key("k")
        .body(b"written without etcd".to_vec().into())
        .send()
        .await?;
    assert_eq!(get_bytes(&a, &bucket, "k").await?, b"written without etcd");
    a.list_objects_v2().bucket(&bucket).send().await?;
    let t = Instant::now();
    let r = a.create_bucket().bucket(bucket_name("new")).send().await;
    let Err(e) = r else {
        bail!("bucket made without etcd")
    };
    let raw = e.raw_response().context("a response")?;
    assert_eq!(raw.status().as_u16(), 503);
    let body = String::from_utf8_lossy(raw.body().bytes().unwrap_or_default()).into_owned();
    ensure!(body.contains("etcd"), "503 names etcd: {body}");
    ensure!(
        t.elapsed() < Duration::from_secs(5),
        "refused after {:?}",
        t.elapsed()
    );
    let r = a.delete_bucket().bucket(&bucket).send().await;
    expect_err("delete without etcd", r, 503, Some("ServiceUnavailable"))?;
    a.head_bucket().bucket(&bucket).send().await?;

    f.etcd.resume().await?;
    let again = bucket_name("again");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match a.create_bucket().bucket(&again).send().await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                tracing_note(&e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => bail!("no bucket made after etcd came back: {e:?}"),
        }
    }
    assert_eq!(owner(&f, &again).await?.as_deref(), Some("a"));
    Ok(())
}

fn tracing_note<E: std::fmt::Debug>(e: &E) {
    eprintln!("waiting for etcd: {e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_mode_answers_307_to_the_owner() -> Result<()> {
    let f = Sites::start(2, &["--federation-redirect"]).await?;
    let (a, b) = (f.site(0)?, f.site(1)?);
    let bucket = bucket_name("redir");
    a.s3().create_bucket().bucket(&bucket).send().await?;
    let target = format!("/{bucket}/some%20key?versionId=null");
    let r = b.raw().send("GET", &target, &[], b"").await?;
    assert_eq!(r.status, 307, "{}", r.describe());
    let location = format!("{}{target}", a.endpoint());
    assert_eq!(r.header("location"), Some(location.as_str()));
    // the header sites mark forwarded requests with only keeps a request
    // on the site it was sent to: B has no such bucket
    let plain = format!("/{bucket}/some%20key");
    let r = b
        .raw()
        .send("GET", &plain, &[("x-cairn-federation-forwarded", "a")], b"")
        .await?;
    assert_eq!((r.status, r.code().as_deref()), (404, Some("NoSuchBucket")));
    Ok(())
}
