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

/// Runs `f` every 100 ms until it succeeds or `within` passes; how long
/// it took.
async fn within<F, Fut>(what: &str, within: Duration, mut f: F) -> Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let t = Instant::now();
    loop {
        match f().await {
            Ok(()) => return Ok(t.elapsed()),
            Err(e) if t.elapsed() > within => bail!("{what}: not within {within:?}: {e:#}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A PUT of `key` as `client`: Ok, or the S3 error code.
async fn put_as(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<(), String> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(b"v".to_vec().into())
        .send()
        .await
        .map(drop)
        .map_err(|e| err_code(&e))
}

fn key_of(v: &serde_json::Value) -> Result<(String, String)> {
    let field = |f: &str| {
        v["AccessKey"][f]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no {f} in {v}"))
    };
    Ok((field("AccessKeyId")?, field("SecretAccessKey")?))
}

/// Shared IAM: a user, its policy and a service account made on A sign
/// requests on C (served by C itself) within seconds; changes and
/// deletions made on A hold on C; with etcd gone the identities C loaded
/// keep working and IAM changes are refused with 503 naming etcd.
#[tokio::test(flavor = "multi_thread")]
async fn identities_made_on_one_site_sign_on_every_site() -> Result<()> {
    // one KMS key on every site: access keys are sealed in etcd
    let kms = "cairn-default:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let mut f = Sites::start(3, &["--kms-secret-key", kms]).await?;
    let (a, c) = (f.site(0)?, f.site(2)?);
    let bucket = bucket_name("iam");
    c.s3().create_bucket().bucket(&bucket).send().await?;
    let allow_all = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::{bucket}","arn:aws:s3:::{bucket}/*"]}}]}}"#
    );
    a.aws_iam(&["create-user", "--user-name", "carol"])?;
    a.aws_iam(&[
        "put-user-policy",
        "--user-name",
        "carol",
        "--policy-name",
        "p",
        "--policy-document",
        &allow_all,
    ])?;
    let (ak, sk) = key_of(&a.aws_iam(&["create-access-key", "--user-name", "carol"])?)?;
    let carol_c = aws_sdk_s3::Client::from_conf(c.s3_config_with(&ak, &sk).build());
    let took = within("carol's key on C", Duration::from_secs(5), || async {
        put_as(&carol_c, &bucket, "by-carol")
            .await
            .map_err(|e| anyhow::anyhow!(e))
    })
    .await?;
    eprintln!("a user made on A signed on C after {took:?}");
    // the key's record in etcd is sealed: no secret in it
    let keys = f.etcd.list("/cairn/config/iam/keys/").await?;
    ensure!(keys.len() == 1, "{keys:?}");
    let (_, record) = keys.first().context("key record")?;
    let record: serde_json::Value = serde_json::from_str(record)?;
    let sealed = record["sealed"]
        .as_str()
        .with_context(|| format!("{record}"))?;
    let sealed = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, sealed)?;
    ensure!(
        !String::from_utf8_lossy(&sealed).contains(&sk),
        "the secret is in etcd in the clear"
    );
    let users = f.etcd.list("/cairn/config/iam/users/").await?;
    ensure!(users.len() == 1, "{users:?}");

    // a service account of carol's, made with `cairn admin` on A
    let out = cairn_tests::admin(a, &["svcacct", "add", "--user", "carol", "--json"], None).await?;
    ensure!(out.status.success(), "svcacct add: {out:?}");
    let sa: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let sa_key = sa["access_key"].as_str().context("svc key")?;
    let sa_secret = sa["secret_key"].as_str().context("svc secret")?;
    let sa_c = aws_sdk_s3::Client::from_conf(c.s3_config_with(sa_key, sa_secret).build());
    within(
        "the service account on C",
        Duration::from_secs(5),
        || async { get_bytes(&sa_c, &bucket, "by-carol").await.map(drop) },
    )
    .await?;

    // a policy change on A: carol may only read, on C too
    let read_only = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    );
    a.aws_iam(&[
        "put-user-policy",
        "--user-name",
        "carol",
        "--policy-name",
        "p",
        "--policy-document",
        &read_only,
    ])?;
    within("the new policy on C", Duration::from_secs(5), || async {
        match put_as(&carol_c, &bucket, "denied").await {
            Err(code) if code == "AccessDenied" => Ok(()),
            other => bail!("PUT: {other:?}"),
        }
    })
    .await?;
    assert_eq!(get_bytes(&carol_c, &bucket, "by-carol").await?, b"v");

    // etcd gone: what C loaded keeps signing; changes are refused
    f.etcd.stop()?;
    let a = f.site(0)?;
    assert_eq!(get_bytes(&carol_c, &bucket, "by-carol").await?, b"v");
    assert_eq!(get_bytes(&sa_c, &bucket, "by-carol").await?, b"v");
    let out = a
        .tool("aws")
        .args([
            "iam",
            "create-user",
            "--user-name",
            "dave",
            "--endpoint-url",
        ])
        .arg(a.endpoint())
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("ServiceUnavailable") && err.contains("etcd"),
        "create-user without etcd: {err}"
    );
    // B started while etcd is gone knows the root user only; once etcd
    // is back it reads the shared state (ListBuckets is B's own answer)
    f.sites.get_mut(1).context("site b")?.restart().await?;
    let carol_b = aws_sdk_s3::Client::from_conf(f.site(1)?.s3_config_with(&ak, &sk).build());
    let r = carol_b.list_buckets().send().await;
    expect_err(
        "carol on B started without etcd",
        r,
        403,
        Some("InvalidAccessKeyId"),
    )?;
    f.etcd.resume().await?;
    within(
        "carol on B once etcd is back",
        Duration::from_secs(15),
        || async {
            carol_b
                .list_buckets()
                .send()
                .await
                .map(drop)
                .map_err(Into::into)
        },
    )
    .await?;
    let (a, c) = (f.site(0)?, f.site(2)?);

    // deleted on A (key, policy, user): refused on C
    let a_ok = |args: &[&str]| a.aws_iam(args).map(drop);
    within(
        "IAM changes once etcd is back",
        Duration::from_secs(15),
        || async {
            a_ok(&[
                "delete-access-key",
                "--user-name",
                "carol",
                "--access-key-id",
                &ak,
            ])
        },
    )
    .await?;
    within(
        "the deleted key refused on C",
        Duration::from_secs(5),
        || async {
            match put_as(&carol_c, &bucket, "gone").await {
                Err(code) if code == "InvalidAccessKeyId" => Ok(()),
                other => bail!("PUT with a deleted key: {other:?}"),
            }
        },
    )
    .await?;
    let out = cairn_tests::admin(a, &["svcacct", "remove", sa_key], None).await?;
    ensure!(out.status.success(), "svcacct remove: {out:?}");
    a_ok(&[
        "delete-user-policy",
        "--user-name",
        "carol",
        "--policy-name",
        "p",
    ])?;
    a_ok(&["delete-user", "--user-name", "carol"])?;
    within(
        "the deleted user's service account refused on C",
        Duration::from_secs(5),
        || async {
            match get_bytes(&sa_c, &bucket, "by-carol").await {
                Err(e) if format!("{e:?}").contains("InvalidAccessKeyId") => Ok(()),
                other => bail!("GET: {other:?}"),
            }
        },
    )
    .await?;
    let users = c.aws_iam(&["list-users"])?;
    ensure!(
        users["Users"].as_array().is_some_and(Vec::is_empty),
        "{users}"
    );
    Ok(())
}

/// The federation's status as `cairn admin federation status --json`
/// prints it.
async fn status(s: &cairn_tests::Server) -> Result<serde_json::Value> {
    let out = cairn_tests::admin(s, &["federation", "status", "--json"], None).await?;
    ensure!(out.status.success(), "federation status: {out:?}");
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// `cairn admin federation status`: sites live and down, their bucket
/// counts and free space, etcd's endpoint; `x-cairn-placement: capacity`
/// puts a bucket on the live site with the most free space.
#[tokio::test(flavor = "multi_thread")]
async fn status_and_placement_by_capacity() -> Result<()> {
    // dropped after the sites (a busy mount cannot go)
    let mut mounts = Vec::new();
    let mut f = Sites::start(3, &[]).await?;
    // A on a 64 MiB file system, B on 256 MiB, C on the test disk
    for (i, size) in [(0, "64m"), (1, "256m")] {
        let site = f.sites.get_mut(i).context("site")?;
        let dir = site.dir().join("small");
        std::fs::create_dir_all(&dir)?;
        mounts.push(cairn_tests::tmpfs::Tmpfs::mount(&dir, size)?);
        let drives: Vec<_> = (1..=4).map(|d| dir.join(format!("d{d}"))).collect();
        for d in &drives {
            std::fs::create_dir_all(d)?;
        }
        site.restart_with_drives(drives).await?;
    }
    f.wait_registered(3).await?;
    let (a, b) = (f.site(0)?, f.site(1)?);
    b.s3()
        .create_bucket()
        .bucket(bucket_name("onb"))
        .send()
        .await?;
    let site_of = |st: &serde_json::Value, site: &str| {
        st["sites"]
            .as_array()
            .and_then(|v| v.iter().find(|s| s["name"] == site))
            .cloned()
            .unwrap_or_default()
    };
    let free_of = |st: &serde_json::Value, site: &str| site_of(st, site)["free_bytes"].as_u64();
    within("free space published", Duration::from_secs(10), || async {
        let st = status(a).await?;
        let (fa, fb, fc) = (free_of(&st, "a"), free_of(&st, "b"), free_of(&st, "c"));
        // usable space: every drive's, less parity (so not the mounts'
        // sizes), in the mounts' order
        ensure!(
            fa.is_some() && fb > fa && fb < Some(1 << 30) && fc > fb,
            "{st}"
        );
        Ok(())
    })
    .await?;
    let st = status(a).await?;
    assert_eq!(st["site"], "a");
    assert_eq!(st["etcd"]["followed"], true, "{st}");
    let ep = &st["etcd"]["endpoints"];
    assert_eq!(ep.as_array().map(Vec::len), Some(1), "{st}");
    assert_eq!(ep[0]["endpoint"], f.etcd.url().as_str());
    ensure!(
        ep[0]["version"].is_string() && ep[0]["leader"] == true,
        "{st}"
    );
    let names: Vec<(String, bool, u64)> = st["sites"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let name = s["name"].as_str().unwrap_or_default().to_owned();
            (name, s["live"] == true, s["buckets"].as_u64().unwrap_or(99))
        })
        .collect();
    let want =
        [("a", true, 0), ("b", true, 1), ("c", true, 0)].map(|(n, l, b)| (n.to_owned(), l, b));
    assert_eq!(names, want);

    // placed by capacity through A: on C, the most free
    let placed = bucket_name("placed");
    let r = a
        .raw()
        .send(
            "PUT",
            &format!("/{placed}"),
            &[("x-cairn-placement", "capacity")],
            b"",
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(owner(&f, &placed).await?.as_deref(), Some("c"));
    let r = a
        .raw()
        .send(
            "PUT",
            &format!("/{}", bucket_name("x")),
            &[("x-cairn-placement", "fastest")],
            b"",
        )
        .await?;
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("InvalidArgument"))
    );

    // C down: placed on B (256 MiB) rather than A; status says C is down
    // and still holds its bucket
    f.sites.get_mut(2).context("site c")?.kill()?;
    f.wait_registered(2).await?;
    let (a, b) = (f.site(0)?, f.site(1)?);
    let second = bucket_name("second");
    let r = b
        .raw()
        .send(
            "PUT",
            &format!("/{second}"),
            &[("x-cairn-placement", "capacity")],
            b"",
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(owner(&f, &second).await?.as_deref(), Some("b"));
    within("C down in the status", Duration::from_secs(5), || async {
        let st = status(a).await?;
        let c = site_of(&st, "c");
        ensure!(
            c["live"] == false && c["buckets"] == 1 && c["url"].is_null(),
            "{st}"
        );
        Ok(())
    })
    .await?;
    let out = cairn_tests::admin(a, &["federation", "status"], None).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        text.lines()
            .any(|l| l.starts_with("c ") && l.contains("down")),
        "{text}"
    );
    Ok(())
}

/// A stopped owner (SIGSTOP: it accepts connections, answers nothing)
/// makes a forwarded request answer 503 within a bound, naming the site.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_owner_answers_503_within_a_bound() -> Result<()> {
    let f = Sites::start(2, &[]).await?;
    let (a, b) = (f.site(0)?, f.site(1)?);
    let bucket = bucket_name("stopped");
    b.s3().create_bucket().bucket(&bucket).send().await?;
    b.s3()
        .put_object()
        .bucket(&bucket)
        .key("k")
        .body(b"v".to_vec().into())
        .send()
        .await?;
    assert_eq!(get_bytes(&a.s3(), &bucket, "k").await?, b"v");
    let pid = b.pid().context("b's pid")?.to_string();
    run(std::process::Command::new("kill").args(["-STOP", &pid]))?;
    let t = Instant::now();
    let r = a.raw().send("GET", &format!("/{bucket}/k"), &[], b"").await;
    let elapsed = t.elapsed();
    run(std::process::Command::new("kill").args(["-CONT", &pid]))?;
    let r = r?;
    assert_eq!(
        (r.status, r.code().as_deref()),
        (503, Some("ServiceUnavailable"))
    );
    ensure!(r.text().contains("site b"), "{}", r.describe());
    ensure!(elapsed < Duration::from_secs(8), "503 after {elapsed:?}");
    eprintln!("a stopped owner answered 503 after {elapsed:?}");
    // B continued: served again
    within("B back", Duration::from_secs(10), || async {
        get_bytes(&a.s3(), &bucket, "k").await.map(drop)
    })
    .await?;

    // stopped in the middle of a download through A: the body is cut
    // short within a bound, not left hanging
    let big = vec![7u8; 48 << 20];
    b.s3()
        .put_object()
        .bucket(&bucket)
        .key("big")
        .body(big.into())
        .send()
        .await?;
    let mut resp = a
        .s3()
        .get_object()
        .bucket(&bucket)
        .key("big")
        .send()
        .await?;
    let first = resp.body.next().await.context("a first chunk")??;
    ensure!(!first.is_empty());
    run(std::process::Command::new("kill").args(["-STOP", &pid]))?;
    let t = Instant::now();
    let rest = tokio::time::timeout(Duration::from_secs(20), resp.body.collect()).await;
    let elapsed = t.elapsed();
    run(std::process::Command::new("kill").args(["-CONT", &pid]))?;
    let rest = rest.context("the download hung 20 s after its owner stopped")?;
    ensure!(rest.is_err(), "the whole object came from a stopped owner");
    ensure!(elapsed < Duration::from_secs(10), "cut after {elapsed:?}");
    eprintln!("a download from a stopped owner was cut after {elapsed:?}");
    Ok(())
}

/// TLS to etcd (its CA, a client certificate for `--client-cert-auth`)
/// and HTTPS between sites (public URLs `https://`, the sites' CA): a
/// bucket of A written and read through B with awscli over HTTPS, byte
/// for byte; a site without the client certificate cannot join.
#[tokio::test(flavor = "multi_thread")]
async fn tls_to_etcd_and_https_between_sites() -> Result<()> {
    use cairn_tests::Certs;
    use cairn_tests::federation::{Etcd, EtcdTlsFiles};
    use cairn_tests::tls::{KeyKind, TestCa};
    let work = tempfile::tempdir()?;
    let ca = TestCa::new(&work.path().join("ca"))?;
    let dir = |n: &str| work.path().join(n);
    ca.issue(
        &dir("etcd"),
        &["localhost"],
        &["127.0.0.1"],
        KeyKind::EcSec1,
    )?;
    ca.issue(&dir("client"), &["cairn-site"], &[], KeyKind::RsaPkcs8)?;
    ca.issue(
        &dir("site"),
        &["localhost"],
        &["127.0.0.1"],
        KeyKind::EcSec1,
    )?;
    let etcd = Etcd::start_with(Some(EtcdTlsFiles {
        cert: dir("etcd").join("public.crt"),
        key: dir("etcd").join("private.key"),
        ca: ca.cert_path(),
    }))
    .await?;
    let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    let extra = [
        "--federation-etcd-ca".to_owned(),
        path(ca.cert_path()),
        "--federation-etcd-cert".to_owned(),
        path(dir("client").join("public.crt")),
        "--federation-etcd-key".to_owned(),
        path(dir("client").join("private.key")),
        "--federation-site-ca".to_owned(),
        path(ca.cert_path()),
    ];
    let certs = Certs {
        dir: dir("site"),
        ca: ca.cert_path(),
    };
    let f = Sites::start_on(etcd, 2, &extra, Some(certs)).await?;
    let (a, b) = (f.site(0)?, f.site(1)?);
    ensure!(b.endpoint().starts_with("https://"), "{}", b.endpoint());
    let bucket = bucket_name("tls");
    let aws = |s: &cairn_tests::Server, args: &[&str]| {
        run(s
            .tool("aws")
            .args(args)
            .args(["--endpoint-url", &s.endpoint(), "--ca-bundle"])
            .arg(ca.cert_path()))
    };
    aws(a, &["s3", "mb", &format!("s3://{bucket}")])?;
    assert_eq!(owner(&f, &bucket).await?.as_deref(), Some("a"));
    let file = dir("up");
    let md5 = write_random_file(&file, 3 << 20, 7)?;
    aws(b, &["s3", "cp", &path(file), &format!("s3://{bucket}/k")])?;
    let back = dir("back");
    aws(
        b,
        &["s3", "cp", &format!("s3://{bucket}/k"), &path(back.clone())],
    )?;
    assert_eq!(md5_hex(&std::fs::read(&back)?), md5);

    // the status, asked over HTTPS, of etcd through its TLS endpoint
    let ca_path = path(ca.cert_path());
    let out = cairn_tests::admin(
        b,
        &["--ca-bundle", &ca_path, "federation", "status", "--json"],
        None,
    )
    .await?;
    ensure!(out.status.success(), "federation status: {out:?}");
    let st: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let tls_url = f.etcd.tls_url().context("tls url")?;
    assert_eq!(st["etcd"]["endpoints"][0]["endpoint"], tls_url.as_str());
    ensure!(st["etcd"]["endpoints"][0]["version"].is_string(), "{st}");

    // without a client certificate etcd does not let a site in
    let port = cairn_tests::free_port()?;
    let _c = cairn_tests::Server::start(cairn_tests::StartOpts {
        extra_args: [
            "--federation-etcd",
            &tls_url,
            "--federation-site",
            "c",
            "--federation-public-url",
            &format!("http://127.0.0.1:{port}"),
            "--federation-etcd-ca",
            &ca_path,
        ]
        .map(str::to_owned)
        .to_vec(),
        port: Some(port),
        ..cairn_tests::StartOpts::default()
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let live = f.etcd.list("/cairn/sites/").await?;
    ensure!(
        live.len() == 2,
        "a site without a client certificate joined: {live:?}"
    );
    Ok(())
}
