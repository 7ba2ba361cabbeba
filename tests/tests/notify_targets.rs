//! Event notification targets beyond notify.rs's: MQTT (mosquitto),
//! AMQP (rabbitmq-server) and PostgreSQL (both of MinIO's table formats),
//! real servers started by the tests. Each gets the right records for a
//! PUT, a delete marker and a delete of a version, and every event that
//! happened while it was down once it is back; a target that is down
//! holds back no other (each target has its own queue).

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use aws_sdk_s3::Client;
use cairn_tests::brokers::{Mosquitto, Postgres, RabbitMq};
use cairn_tests::new_versioned_bucket;
use cairn_tests::notify::{
    ALL, Received, WebhookReceiver, put, queue, server_with, set_rules, wait_until,
};
use futures::StreamExt as _;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// A versioned bucket whose one rule sends everything to `arn`.
async fn watched_versioned(c: &Client, prefix: &str, arn: &str) -> Result<String> {
    let b = new_versioned_bucket(c, prefix).await?;
    set_rules(c, &b, vec![queue("all", arn, ALL, None)?]).await?;
    Ok(b)
}

/// PUT `a`, DELETE `a` (a marker), PUT `b`, DELETE `b`'s version: the
/// events each target must receive, in order.
async fn writes(c: &Client, b: &str) -> Result<Vec<(&'static str, &'static str)>> {
    put(c, b, "a", b"x".to_vec()).await?;
    c.delete_object().bucket(b).key("a").send().await?;
    let v = put(c, b, "b", b"yy".to_vec()).await?;
    c.delete_object()
        .bucket(b)
        .key("b")
        .set_version_id(v.version_id().map(str::to_owned))
        .send()
        .await?;
    Ok(vec![
        ("ObjectCreated:Put", "a"),
        ("ObjectRemoved:DeleteMarkerCreated", "a"),
        ("ObjectCreated:Put", "b"),
        ("ObjectRemoved:Delete", "b"),
    ])
}

/// PUTs `meanwhile-0..n` (while a target is down).
async fn meanwhile(c: &Client, b: &str, n: usize) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    for i in 0..n {
        let k = format!("meanwhile-{i}");
        put(c, b, &k, b"m".to_vec()).await?;
        keys.push(k);
    }
    // the target's retries back off meanwhile
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(keys)
}

/// Each event's name and key, first arrivals only (delivery is at least
/// once).
fn firsts(m: &[Received]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in m {
        let e = (r.event_name().to_owned(), r.key().to_owned());
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

fn expected(first: &[(&str, &str)], keys: &[String]) -> Vec<(String, String)> {
    first
        .iter()
        .map(|(e, k)| (e.to_string(), k.to_string()))
        .chain(keys.iter().map(|k| ("ObjectCreated:Put".into(), k.clone())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_gets_every_event_across_its_restart() -> Result<()> {
    let mut broker = Mosquitto::start().await?;
    let sub = broker.subscribe("cairn/events").await?;
    let target =
        json!({ "type": "mqtt", "id": "m1", "address": broker.url(), "topic": "cairn/events" });
    let (s, _dir) = server_with(&[target], &[]).await?;
    let c = s.s3();
    let b = watched_versioned(&c, "mqtt", "arn:cairn:sqs::m1:mqtt").await?;
    let first = writes(&c, &b).await?;
    let got = wait_until(async || Ok(sub.messages()), |m| firsts(m).len() >= 4, WAIT).await?;
    ensure!(firsts(&got) == expected(&first, &[]), "{:?}", firsts(&got));
    ensure!(got[0].record()["s3"]["bucket"]["name"] == b.as_str());
    ensure!(got[0].record()["s3"]["object"]["size"] == 1);

    broker.stop()?;
    let keys = meanwhile(&c, &b, 5).await?;
    broker.resume().await?;
    let want = expected(&first, &keys);
    let got = wait_until(
        async || Ok(sub.messages()),
        |m| firsts(m).len() >= want.len(),
        WAIT,
    )
    .await?;
    ensure!(firsts(&got) == want, "{:?}", firsts(&got));
    Ok(())
}

/// What the queue held since the last call, added to `all`.
async fn take(broker: &RabbitMq, all: &mut Vec<Received>) -> Result<Vec<Received>> {
    all.extend(broker.take("events").await?);
    Ok(all.clone())
}

/// The namespace table: key and event of each row.
async fn rows(db: &Postgres) -> Result<Vec<Vec<String>>> {
    db.query("SELECT key, value->'Records'->0->>'eventName' FROM objects ORDER BY key")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_gets_every_event_across_its_restart() -> Result<()> {
    let mut broker = RabbitMq::start().await?;
    broker.bind_queue("cairn", "events").await?;
    let target = json!({ "type": "amqp", "id": "a1", "address": broker.url(),
        "exchange": "cairn", "exchange_type": "fanout", "routing_key": "s3" });
    let (s, _dir) = server_with(&[target], &[]).await?;
    let c = s.s3();
    let b = watched_versioned(&c, "amqp", "arn:cairn:sqs::a1:amqp").await?;
    let first = writes(&c, &b).await?;
    let mut all = Vec::new();
    let got = wait_until(
        async || take(&broker, &mut all).await,
        |m| firsts(m).len() >= 4,
        WAIT,
    )
    .await?;
    ensure!(firsts(&got) == expected(&first, &[]), "{:?}", firsts(&got));

    // killed: what it confirmed was on its disk (durable queue, persistent messages)
    broker.stop()?;
    let keys = meanwhile(&c, &b, 5).await?;
    broker.resume().await?;
    let want = expected(&first, &keys);
    let got = wait_until(
        async || take(&broker, &mut all).await,
        |m| firsts(m).len() >= want.len(),
        Duration::from_secs(60),
    )
    .await?;
    ensure!(firsts(&got) == want, "{:?}", firsts(&got));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_keeps_a_namespace_table_and_an_access_log() -> Result<()> {
    let mut db = Postgres::start().await?;
    let targets = [
        json!({ "type": "postgresql", "id": "ns", "address": db.url(), "table": "objects",
            "format": "namespace" }),
        json!({ "type": "postgresql", "id": "log", "address": db.url(), "table": "access_log",
            "format": "access" }),
    ];
    let (s, _dir) = server_with(&targets, &[]).await?;
    let c = s.s3();
    let ns = watched_versioned(&c, "pgns", "arn:cairn:sqs::ns:postgresql").await?;
    let log = watched_versioned(&c, "pglog", "arn:cairn:sqs::log:postgresql").await?;
    put(&c, &ns, "kept", b"k".to_vec()).await?;
    writes(&c, &ns).await?;
    let first = writes(&c, &log).await?;

    let access = "SELECT event_data::text FROM access_log ORDER BY event_time, ctid";
    let got = wait_until(async || db.messages(access).await, |m| m.len() >= 4, WAIT).await?;
    ensure!(firsts(&got) == expected(&first, &[]), "{:?}", firsts(&got));
    // one row per object still there: `a` has a marker, `b` lost its version
    let deadline = Instant::now() + WAIT;
    let want = vec![vec![format!("{ns}/kept"), "ObjectCreated:Put".to_owned()]];
    while rows(&db).await? != want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(rows(&db).await? == want, "{:?}", rows(&db).await?);

    db.stop()?;
    let keys = meanwhile(&c, &log, 5).await?;
    c.delete_object().bucket(&ns).key("kept").send().await?;
    db.resume().await?;
    let want_log = expected(&first, &keys);
    let got = wait_until(
        async || db.messages(access).await,
        |m| firsts(m).len() >= want_log.len(),
        WAIT,
    )
    .await?;
    ensure!(firsts(&got) == want_log, "{:?}", firsts(&got));
    let deadline = Instant::now() + WAIT;
    while !rows(&db).await?.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(rows(&db).await?.is_empty(), "{:?}", rows(&db).await?);
    Ok(())
}

/// More events wait for a dead target than its queue and a page of the
/// outbox hold; a healthy target's events still arrive at once, and the
/// dead one gets all of its own once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_target_holds_back_no_other() -> Result<()> {
    let mut dead = WebhookReceiver::start().await?;
    dead.stop();
    let alive = WebhookReceiver::start().await?;
    let targets = [
        json!({ "type": "webhook", "id": "dead", "endpoint": dead.url() }),
        json!({ "type": "webhook", "id": "alive", "endpoint": alive.url() }),
    ];
    let (s, _dir) = server_with(&targets, &[]).await?;
    let c = s.s3();
    let held = cairn_tests::new_bucket(&c, "held").await?;
    set_rules(
        &c,
        &held,
        vec![queue("all", "arn:cairn:sqs::dead:webhook", ALL, None)?],
    )
    .await?;
    let free = cairn_tests::new_bucket(&c, "free").await?;
    set_rules(
        &c,
        &free,
        vec![queue("all", "arn:cairn:sqs::alive:webhook", ALL, None)?],
    )
    .await?;

    const HELD: usize = 1300;
    let puts = (0..HELD).map(|i| {
        let (c, held) = (c.clone(), held.clone());
        async move { put(&c, &held, &format!("k{i:05}"), b"h".to_vec()).await }
    });
    let mut puts = futures::stream::iter(puts).buffer_unordered(16);
    while let Some(r) = puts.next().await {
        r?;
    }
    let t = Instant::now();
    put(&c, &free, "prompt", b"p".to_vec()).await?;
    alive.wait_for(1, Duration::from_secs(5)).await?;
    let took = t.elapsed();
    ensure!(alive.messages()[0].key() == "prompt");
    println!(
        "the healthy target had its event {took:?} after the PUT, {HELD} waiting for a dead one"
    );

    dead.resume().await?;
    let got = dead
        .wait_until(|m| firsts(m).len() >= HELD, Duration::from_secs(120))
        .await?;
    let keys: Vec<String> = firsts(&got).into_iter().map(|(_, k)| k).collect();
    let want: Vec<String> = (0..HELD).map(|i| format!("k{i:05}")).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    ensure!(sorted == want, "{} of {HELD} arrived", keys.len());
    Ok(())
}
