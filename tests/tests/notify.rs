//! Bucket event notifications (issue 22): rules set with aws-sdk-s3's
//! PutBucketNotificationConfiguration, records received by real targets
//! (a webhook receiver in the test, redis-server) in AWS's event format,
//! for every kind of write (PUT, multipart, copy, tagging, delete, delete
//! marker, a file written through the FUSE mount), with nothing lost when
//! the target is down or the server is SIGKILLed after answering.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, Event, FilterRule, FilterRuleName,
    NotificationConfiguration, NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    Tag, Tagging,
};
use cairn_tests::metrics::metric_of;
use cairn_tests::mount::Mounted;
use cairn_tests::notify::{
    ALL, NatsServer, Received, Redis, WebhookReceiver, put, queue, server_with, set_rules,
    wait_for, wait_until, watched, write_config,
};
use cairn_tests::{err_code, new_bucket, new_versioned_bucket};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "hook-token-0123456789";

fn webhook(id: &str, hook: &WebhookReceiver) -> serde_json::Value {
    json!({ "type": "webhook", "id": id, "endpoint": hook.url(), "auth_token": TOKEN })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_gets_a_record_for_every_kind_of_write() -> Result<()> {
    let hook = WebhookReceiver::start().await?;
    let (s, _dir, c, b) = watched(
        &[webhook("1", &hook)],
        &[],
        "events",
        "arn:cairn:sqs::1:webhook",
    )
    .await?;
    let got = c
        .get_bucket_notification_configuration()
        .bucket(&b)
        .send()
        .await?;
    let q = &got.queue_configurations()[0];
    ensure!(q.queue_arn() == "arn:cairn:sqs::1:webhook" && q.id() == Some("all"));

    let small = put(&c, &b, "dir/a b+c.txt", b"hello".to_vec()).await?;
    put(&c, &b, "big.bin", vec![7u8; 300 * 1024]).await?;
    let up = c
        .create_multipart_upload()
        .bucket(&b)
        .key("mp.bin")
        .send()
        .await?;
    let id = up.upload_id().unwrap_or_default();
    let mut parts = Vec::new();
    for (n, body) in [(1, vec![1u8; 5 << 20]), (2, vec![2u8; 1000])] {
        let p = c
            .upload_part()
            .bucket(&b)
            .key("mp.bin")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(body))
            .send()
            .await?;
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(p.e_tag().unwrap_or_default())
                .build(),
        );
    }
    let mp = c
        .complete_multipart_upload()
        .bucket(&b)
        .key("mp.bin")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await?;
    c.copy_object()
        .bucket(&b)
        .key("copy.txt")
        .copy_source(format!("{b}/dir/a%20b%2Bc.txt"))
        .send()
        .await?;
    c.put_object_tagging()
        .bucket(&b)
        .key("copy.txt")
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("k").value("v").build()?)
                .build()?,
        )
        .send()
        .await?;
    c.delete_object().bucket(&b).key("big.bin").send().await?;

    let v = new_versioned_bucket(&c, "events-v").await?;
    set_rules(
        &c,
        &v,
        vec![queue("v", "arn:cairn:sqs::1:webhook", ALL, None)?],
    )
    .await?;
    let first = put(&c, &v, "k", b"one".to_vec()).await?;
    let del = c.delete_object().bucket(&v).key("k").send().await?;

    let m = hook.wait_for(8, WAIT).await?;
    let names: Vec<(&str, &str)> = m.iter().map(|m| (m.event_name(), m.key())).collect();
    ensure!(
        names
            == [
                ("ObjectCreated:Put", "dir/a+b%2Bc.txt"),
                ("ObjectCreated:Put", "big.bin"),
                ("ObjectCreated:CompleteMultipartUpload", "mp.bin"),
                ("ObjectCreated:Copy", "copy.txt"),
                ("ObjectTagging:Put", "copy.txt"),
                ("ObjectRemoved:Delete", "big.bin"),
                ("ObjectCreated:Put", "k"),
                ("ObjectRemoved:DeleteMarkerCreated", "k"),
            ],
        "{names:#?}"
    );
    for r in &m {
        ensure!(
            r.auth.as_deref() == Some(&*format!("Bearer {TOKEN}")),
            "{:?}",
            r.auth
        );
        let rec = r.record();
        ensure!(
            rec["eventVersion"] == "2.1" && rec["eventSource"] == "aws:s3",
            "{rec}"
        );
        ensure!(
            rec["s3"]["object"]["sequencer"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
    }
    let put0 = m[0].record();
    ensure!(put0["s3"]["bucket"]["name"] == b.as_str());
    ensure!(put0["s3"]["configurationId"] == "all");
    ensure!(put0["s3"]["object"]["size"] == 5);
    ensure!(
        Some(
            format!(
                "\"{}\"",
                put0["s3"]["object"]["eTag"].as_str().unwrap_or_default()
            )
            .as_str()
        ) == small.e_tag(),
        "{put0}"
    );
    let mp_rec = m[2].record();
    ensure!(mp_rec["s3"]["object"]["size"] == (5 << 20) + 1000);
    ensure!(
        Some(
            format!(
                "\"{}\"",
                mp_rec["s3"]["object"]["eTag"].as_str().unwrap_or_default()
            )
            .as_str()
        ) == mp.e_tag()
    );
    ensure!(m[6].record()["s3"]["object"]["versionId"].as_str() == first.version_id());
    ensure!(m[7].record()["s3"]["object"]["versionId"].as_str() == del.version_id());
    ensure!(m[7].record()["s3"]["configurationId"] == "v");

    // nothing more comes, and the outbox is empty on every drive
    tokio::time::sleep(Duration::from_secs(1)).await;
    ensure!(hook.messages().len() == 8);
    for d in s.drives() {
        let left = std::fs::read_dir(d.join(".cairn.sys/outbox"))?.count();
        ensure!(left == 0, "{left} records left on {}", d.display());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_choose_the_keys() -> Result<()> {
    let hook = WebhookReceiver::start().await?;
    let (s, _dir) = server_with(&[webhook("1", &hook)], &[]).await?;
    let c = s.s3();
    let b = new_bucket(&c, "filters").await?;
    set_rules(
        &c,
        &b,
        vec![
            queue(
                "img",
                "arn:cairn:sqs::1:webhook",
                &["s3:ObjectCreated:Put"],
                Some("img/"),
            )?,
            queue(
                "del",
                "arn:cairn:sqs::1:webhook",
                &["s3:ObjectRemoved:*"],
                Some("logs/"),
            )?,
        ],
    )
    .await?;
    put(&c, &b, "other/x", b"x".to_vec()).await?;
    put(&c, &b, "img/a.png", b"x".to_vec()).await?;
    c.delete_object().bucket(&b).key("img/a.png").send().await?;
    put(&c, &b, "logs/1", b"x".to_vec()).await?;
    c.delete_object().bucket(&b).key("logs/1").send().await?;
    let m = hook.wait_for(2, WAIT).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let names: Vec<(String, String)> = hook
        .messages()
        .iter()
        .map(|m| (m.event_name().to_owned(), m.key().to_owned()))
        .collect();
    ensure!(
        names
            == [
                ("ObjectCreated:Put".to_owned(), "img/a.png".to_owned()),
                ("ObjectRemoved:Delete".to_owned(), "logs/1".to_owned())
            ],
        "{names:?}"
    );
    ensure!(m[0].record()["s3"]["configurationId"] == "img");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configurations_get_aws_errors_and_change_nothing() -> Result<()> {
    let hook = WebhookReceiver::start().await?;
    let (s, _dir) = server_with(&[webhook("1", &hook)], &[]).await?;
    let c = s.s3();
    let b = new_bucket(&c, "badcfg").await?;
    let good = queue(
        "good",
        "arn:cairn:sqs::1:webhook",
        &["s3:ObjectCreated:*"],
        Some("a/"),
    )?;
    set_rules(&c, &b, vec![good.clone()]).await?;
    let overlapping = vec![
        queue(
            "x",
            "arn:cairn:sqs::1:webhook",
            &["s3:ObjectCreated:*"],
            Some("img/"),
        )?,
        queue(
            "y",
            "arn:cairn:sqs::1:webhook",
            &["s3:ObjectCreated:Put"],
            Some("img/png/"),
        )?,
    ];
    let two_prefixes = QueueConfiguration::builder()
        .queue_arn("arn:cairn:sqs::1:webhook")
        .events(Event::from("s3:ObjectCreated:*"))
        .filter(
            NotificationConfigurationFilter::builder()
                .key(
                    S3KeyFilter::builder()
                        .filter_rules(
                            FilterRule::builder()
                                .name(FilterRuleName::Prefix)
                                .value("a")
                                .build(),
                        )
                        .filter_rules(
                            FilterRule::builder()
                                .name(FilterRuleName::Prefix)
                                .value("b")
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()?;
    let cases: Vec<(&str, Vec<QueueConfiguration>)> = vec![
        (
            "unknown target",
            vec![queue(
                "u",
                "arn:cairn:sqs::9:webhook",
                &["s3:ObjectCreated:*"],
                None,
            )?],
        ),
        (
            "unknown type",
            vec![queue(
                "u",
                "arn:cairn:sqs::1:kafka",
                &["s3:ObjectCreated:*"],
                None,
            )?],
        ),
        (
            "not an ARN",
            vec![queue("u", "webhook-1", &["s3:ObjectCreated:*"], None)?],
        ),
        (
            "another region",
            vec![queue(
                "u",
                "arn:cairn:sqs:eu-west-9:1:webhook",
                &["s3:ObjectCreated:*"],
                None,
            )?],
        ),
        (
            "unknown event",
            vec![queue(
                "u",
                "arn:cairn:sqs::1:webhook",
                &["s3:ObjectCreated:Nope"],
                None,
            )?],
        ),
        ("overlap", overlapping),
        ("two prefixes", vec![two_prefixes]),
    ];
    for (what, rules) in cases {
        let e = c
            .put_bucket_notification_configuration()
            .bucket(&b)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .set_queue_configurations(Some(rules))
                    .build(),
            )
            .send()
            .await
            .err()
            .with_context(|| format!("{what}: accepted"))?;
        ensure!(
            err_code(&e) == "InvalidArgument",
            "{what}: {}",
            err_code(&e)
        );
        let now = c
            .get_bucket_notification_configuration()
            .bucket(&b)
            .send()
            .await?;
        ensure!(
            now.queue_configurations() == [good.clone()],
            "{what}: {now:?}"
        );
    }
    // the region this server answers for is accepted in the ARN
    set_rules(
        &c,
        &b,
        vec![queue(
            "r",
            "arn:cairn:sqs:us-east-1:1:webhook",
            &["s3:ObjectRemoved:*"],
            None,
        )?],
    )
    .await?;
    // an empty configuration removes the rules
    set_rules(&c, &b, vec![]).await?;
    let now = c
        .get_bucket_notification_configuration()
        .bucket(&b)
        .send()
        .await?;
    ensure!(now.queue_configurations().is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_writes_are_delivered_after_a_sigkill() -> Result<()> {
    let mut hook = WebhookReceiver::start().await?;
    let (mut s, _dir, c, b) = watched(
        &[webhook("1", &hook)],
        &[],
        "killed",
        "arn:cairn:sqs::1:webhook",
    )
    .await?;
    // the target is down: every answered write waits on the drives
    hook.stop();
    let mut keys = BTreeSet::new();
    for i in 0..20 {
        let k = format!("obj-{i:02}");
        put(&c, &b, &k, vec![i as u8; 1000 + i * 50_000]).await?;
        keys.insert(k);
    }
    s.kill()?;
    hook.resume().await?;
    s.restart().await?;
    let m = hook.wait_for(20, Duration::from_secs(60)).await?;
    let got: BTreeSet<String> = m.iter().map(|m| m.key().to_owned()).collect();
    ensure!(got == keys, "{got:?}");
    ensure!(m.iter().all(|m| m.event_name() == "ObjectCreated:Put"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_refuses_writes_or_drops_the_oldest() -> Result<()> {
    let mut hook = WebhookReceiver::start().await?;
    hook.stop();
    let (s, _dir, c, b) = watched(
        &[webhook("1", &hook)],
        &["--notify-limit", "3"],
        "full",
        "arn:cairn:sqs::1:webhook",
    )
    .await?;
    for i in 0..3 {
        put(&c, &b, &format!("k{i}"), b"x".to_vec()).await?;
    }
    let e = c
        .put_object()
        .bucket(&b)
        .key("k3")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .err()
        .context("a 4th write was accepted")?;
    ensure!(err_code(&e) == "ServiceUnavailable", "{}", err_code(&e));
    let text = s.metrics_text().await?;
    ensure!(
        metric_of(&text, "cairn_events_refused_writes_total")? >= 1.0,
        "{text}"
    );
    ensure!(metric_of(&text, "cairn_events_pending")? == 3.0, "{text}");
    hook.resume().await?;
    let m = hook.wait_for(3, WAIT).await?;
    ensure!(m.len() == 3);
    // once delivered, writes go on
    put(&c, &b, "k3", b"x".to_vec()).await?;
    hook.wait_for(4, WAIT).await?;
    drop(s);

    let mut hook2 = WebhookReceiver::start().await?;
    hook2.stop();
    let (s2, _dir, c, b) = watched(
        &[webhook("1", &hook2)],
        &["--notify-limit", "3", "--notify-when-full", "drop-oldest"],
        "drop",
        "arn:cairn:sqs::1:webhook",
    )
    .await?;
    for i in 0..5 {
        put(&c, &b, &format!("k{i}"), b"x".to_vec()).await?;
    }
    hook2.resume().await?;
    let m = hook2.wait_for(3, WAIT).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let keys: Vec<String> = hook2
        .messages()
        .iter()
        .map(|m| m.key().to_owned())
        .collect();
    ensure!(
        keys == ["k2", "k3", "k4"],
        "{keys:?} ({} at first)",
        m.len()
    );
    let text = s2.metrics_text().await?;
    ensure!(
        metric_of(&text, "cairn_events_dropped_total")? == 2.0,
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_written_through_the_mount_raise_events() -> Result<()> {
    let hook = WebhookReceiver::start().await?;
    let dir = tempfile::tempdir()?;
    let cfg = write_config(dir.path(), &[webhook("1", &hook)])?;
    let m = Mounted::start(&["--notify-config", &cfg.display().to_string()]).await?;
    let (b, root) = m.bucket("mountev")?;
    let c = m.server.s3();
    set_rules(
        &c,
        &b,
        vec![queue("all", "arn:cairn:sqs::1:webhook", ALL, None)?],
    )
    .await?;
    std::fs::write(root.join("file.txt"), b"written through the mount")?;
    std::fs::create_dir(root.join("sub"))?;
    std::fs::write(root.join("sub/deep.bin"), vec![3u8; 200_000])?;
    std::fs::remove_file(root.join("file.txt"))?;
    // the mount also writes folder markers (`sub/`): only files are asked
    let seen = |m: &[Received], event: &str, key: &str| {
        m.iter()
            .any(|m| m.event_name().starts_with(event) && m.key() == key)
    };
    let got = hook
        .wait_until(
            |m| {
                seen(m, "ObjectCreated:", "file.txt")
                    && seen(m, "ObjectCreated:", "sub/deep.bin")
                    && seen(m, "ObjectRemoved:Delete", "file.txt")
            },
            WAIT,
        )
        .await?;
    let deep = got
        .iter()
        .find(|m| m.key() == "sub/deep.bin")
        .context("deep")?;
    ensure!(deep.record()["s3"]["object"]["size"] == 200_000);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_gets_every_event_across_its_restart() -> Result<()> {
    let mut redis = Redis::start().await?;
    let (_s, _dir, c, b) = watched(
        &[json!({ "type": "redis", "id": "r1", "address": redis.url(), "key": "cairn-events" })],
        &[],
        "redis",
        "arn:cairn:sqs::r1:redis",
    )
    .await?;
    put(&c, &b, "before", b"x".to_vec()).await?;
    wait_for(async || redis.list("cairn-events"), 1, WAIT).await?;
    redis.stop()?;
    for i in 0..5 {
        put(&c, &b, &format!("meanwhile-{i}"), b"x".to_vec()).await?;
    }
    c.delete_object().bucket(&b).key("before").send().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.resume().await?;
    let m = wait_for(async || redis.list("cairn-events"), 7, WAIT).await?;
    let names: Vec<(&str, &str)> = m.iter().map(|m| (m.event_name(), m.key())).collect();
    let mut want = vec![("ObjectCreated:Put", "before")];
    let meanwhile: Vec<String> = (0..5).map(|i| format!("meanwhile-{i}")).collect();
    want.extend(meanwhile.iter().map(|k| ("ObjectCreated:Put", k.as_str())));
    want.push(("ObjectRemoved:Delete", "before"));
    ensure!(names == want, "{names:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_written_through_the_nfs_export_raise_events() -> Result<()> {
    let hook = WebhookReceiver::start().await?;
    let dir = tempfile::tempdir()?;
    let cfg = write_config(dir.path(), &[webhook("1", &hook)])?;
    let n = cairn_tests::nfs_server::Nfs::start(&["--notify-config", &cfg.display().to_string()])
        .await?;
    let b = n.bucket("nfsev").await?;
    let c = n.server.s3();
    set_rules(
        &c,
        &b,
        vec![queue("all", "arn:cairn:sqs::1:webhook", ALL, None)?],
    )
    .await?;
    let src = dir.path().join("src.bin");
    std::fs::write(&src, vec![9u8; 300_000])?;
    cairn_tests::run(
        std::process::Command::new(cairn_tests::require_tool("nfs-cp")?)
            .arg(&src)
            .arg(n.url(&format!("{b}/from-nfs.bin"))),
    )?;
    let m = hook
        .wait_until(
            |m| {
                m.iter().any(|m| {
                    m.event_name().starts_with("ObjectCreated:")
                        && m.key() == "from-nfs.bin"
                        && m.record()["s3"]["object"]["size"] == 300_000
                })
            },
            WAIT,
        )
        .await?;
    ensure!(
        m.iter()
            .all(|m| m.record()["s3"]["bucket"]["name"] == b.as_str())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_jetstream_gets_every_event_across_its_restart() -> Result<()> {
    let mut nats = NatsServer::start().await?;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "EVENTS".into(),
        subjects: vec!["cairn.events".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    let (_s, _dir, c, b) = watched(&[json!({ "type": "nats", "id": "n1", "address": nats.url(), "subject": "cairn.events", "jetstream": true })],
        &[], "nats", "arn:cairn:sqs::n1:nats").await?;
    put(&c, &b, "before", b"x".to_vec()).await?;
    wait_for(async || nats.stream_messages("EVENTS").await, 1, WAIT).await?;
    nats.stop()?;
    for i in 0..5 {
        put(&c, &b, &format!("meanwhile-{i}"), b"x".to_vec()).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.resume().await?;
    let distinct = |m: &[Received]| m.iter().map(|m| m.key()).collect::<BTreeSet<_>>().len();
    let m = wait_until(
        async || nats.stream_messages("EVENTS").await,
        |m| distinct(m) == 6,
        WAIT,
    )
    .await?;
    // at least once: every event there, in order of first arrival
    let mut firsts: Vec<&str> = Vec::new();
    for r in &m {
        ensure!(r.event_name() == "ObjectCreated:Put", "{}", r.event_name());
        if !firsts.contains(&r.key()) {
            firsts.push(r.key());
        }
    }
    ensure!(
        firsts
            == [
                "before",
                "meanwhile-0",
                "meanwhile-1",
                "meanwhile-2",
                "meanwhile-3",
                "meanwhile-4"
            ],
        "{firsts:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_expiry_raises_lifecycle_events_not_removals() -> Result<()> {
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
        LifecycleRuleFilter,
    };
    let hook = WebhookReceiver::start().await?;
    // lifecycle judged two days from now: a day-old rule expires today's objects
    let (s, _dir) = server_with(
        &[webhook("1", &hook)],
        &["--no-scanner", "--clock-offset-secs=172800"],
    )
    .await?;
    let c = s.s3();
    let arn = "arn:cairn:sqs::1:webhook";
    let plain = new_bucket(&c, "expire").await?;
    let versioned = new_versioned_bucket(&c, "expirev").await?;
    let rules = BucketLifecycleConfiguration::builder()
        .rules(
            LifecycleRule::builder()
                .id("old")
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix("old/").build())
                .expiration(LifecycleExpiration::builder().days(1).build())
                .build()?,
        )
        .build()?;
    for b in [&plain, &versioned] {
        let on = vec![
            queue("life", arn, &["s3:LifecycleExpiration:*"], None)?,
            queue("removed", arn, &["s3:ObjectRemoved:*"], None)?,
        ];
        set_rules(&c, b, on).await?;
        c.put_bucket_lifecycle_configuration()
            .bucket(b.as_str())
            .lifecycle_configuration(rules.clone())
            .send()
            .await?;
        put(&c, b, "old/a", b"expires".to_vec()).await?;
        put(&c, b, "keep/c", b"stays".to_vec()).await?;
    }
    let out = cairn_tests::admin(&s, &["lifecycle", "run"], None).await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // a client's delete is still a removal
    c.delete_object()
        .bucket(&plain)
        .key("keep/c")
        .send()
        .await?;
    hook.wait_for(3, WAIT).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got: BTreeSet<(String, String, String)> = hook
        .messages()
        .iter()
        .map(|m| {
            let bucket = m.record()["s3"]["bucket"]["name"]
                .as_str()
                .unwrap_or_default();
            (
                bucket.to_owned(),
                m.event_name().to_owned(),
                m.key().to_owned(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String, String)> = [
        (&plain, "LifecycleExpiration:Delete", "old/a"),
        (
            &versioned,
            "LifecycleExpiration:DeleteMarkerCreated",
            "old/a",
        ),
        (&plain, "ObjectRemoved:Delete", "keep/c"),
    ]
    .into_iter()
    .map(|(b, e, k)| (b.clone(), e.to_owned(), k.to_owned()))
    .collect();
    ensure!(got == want && hook.messages().len() == 3, "{got:?}");
    // the rule that named it: s3.configurationId
    let life = hook
        .messages()
        .into_iter()
        .filter(|m| m.event_name().starts_with("LifecycleExpiration:"))
        .all(|m| m.record()["s3"]["configurationId"] == "life");
    ensure!(life, "lifecycle events came through the lifecycle rule");
    Ok(())
}
