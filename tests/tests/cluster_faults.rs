#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! The cluster (issue 21) under contention and network faults: four real
//! `cairn server` processes on 127.0.0.1-4, two drives each. Clients PUT
//! the same keys through every node at once while others read them back,
//! and the recorded history is checked (whole versions only, never one
//! older than an acknowledged PUT); a network partition made with
//! nftables leaves the minority refusing writes and the majority serving,
//! and loses no acknowledged write once it heals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_tests::cluster::Cluster;
use cairn_tests::history::{Op, Outcome, Written, check};
use parking_lot::Mutex;
use rand::Rng as _;

const KEYS: usize = 4;
/// What a node logs when it heals the writes a drive missed.
const MISSED_HEALED: &str = "drives that missed writes answer again";
const WRITERS: u32 = 8;
const PUTS_EACH: u32 = 12;
const READERS: usize = 4;

/// Odd writes are small (inline in the metadata), even ones erasure coded.
fn size_of(w: Written) -> usize {
    let spread = (w.writer as usize * 7919 + w.seq as usize * 104_729) % 4096;
    if w.seq % 2 == 1 {
        1024 + spread
    } else {
        160 * 1024 + spread * 37
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_through_every_node_at_once_read_back_whole_and_never_stale() {
    let c = Cluster::start(4, 2).await.unwrap();
    let r = c.raw(0).send("PUT", "/history", &[], b"").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.describe());
    let ops = Arc::new(Mutex::new(Vec::<Op>::new()));
    let writing = Arc::new(std::sync::atomic::AtomicUsize::new(WRITERS as usize));
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (ops, writing) = (ops.clone(), writing.clone());
        let raw = c.raw(writer as usize % 4);
        tasks.push(tokio::spawn(async move {
            for seq in 0..PUTS_EACH {
                let key = format!("k{}", rand::rng().random_range(0..KEYS));
                let w = Written { writer, seq };
                let body = w.body(size_of(w));
                let start = Instant::now();
                let r = raw
                    .send("PUT", &format!("/history/{key}"), &[], &body)
                    .await;
                let outcome = match r {
                    Ok(r) if r.status == 200 => Outcome::Put(w),
                    _ => Outcome::PutFailed(w),
                };
                let end = Instant::now();
                ops.lock().push(Op {
                    key,
                    start,
                    end,
                    outcome,
                });
            }
            writing.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }));
    }
    for reader in 0..READERS {
        let (ops, writing) = (ops.clone(), writing.clone());
        let nodes: Vec<_> = (0..4).map(|i| c.raw(i)).collect();
        tasks.push(tokio::spawn(async move {
            let mut n = reader;
            while writing.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                n += 1;
                let key = format!("k{}", rand::rng().random_range(0..KEYS));
                let start = Instant::now();
                let r = nodes[n % 4]
                    .send("GET", &format!("/history/{key}"), &[], b"")
                    .await;
                let end = Instant::now();
                let outcome = match r {
                    Ok(r) if r.status == 200 => match Written::of(&r.body) {
                        Ok(w) => Outcome::Got(Some(w)),
                        Err(e) => Outcome::GetFailed(format!("through node {}: {e}", n % 4 + 1)),
                    },
                    Ok(r) if r.status == 404 => Outcome::Got(None),
                    Ok(r) => Outcome::GetFailed(r.describe()),
                    Err(e) => Outcome::GetFailed(e.to_string()),
                };
                ops.lock().push(Op {
                    key,
                    start,
                    end,
                    outcome,
                });
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ops = ops.lock().clone();
    let tally = check(&ops).unwrap();
    eprintln!("{tally:?}");
    // the cluster is whole: every PUT is acknowledged, and the readers
    // saw the writes go by
    assert_eq!(tally.puts, (WRITERS * PUTS_EACH) as usize, "{tally:?}");
    assert!(tally.gets >= 40, "{tally:?}");
    // and once all is acknowledged, every node reads each key's last PUT
    for key in 0..KEYS {
        let key = format!("k{key}");
        let last = ops
            .iter()
            .filter(|o| o.key == key && matches!(o.outcome, Outcome::Put(_)))
            .max_by_key(|o| o.end);
        let Some(Op {
            outcome: Outcome::Put(last),
            start: last_start,
            ..
        }) = last
        else {
            continue;
        };
        // a PUT that overlapped the last one may have committed after it
        let candidates: Vec<Written> = ops
            .iter()
            .filter(|o| o.key == key && o.end >= *last_start)
            .filter_map(|o| match o.outcome {
                Outcome::Put(w) => Some(w),
                _ => None,
            })
            .collect();
        let mut seen = Vec::new();
        for i in 0..4 {
            let got = Written::of(&get_ok(&c, i, &format!("/history/{key}")).await).unwrap();
            assert!(
                candidates.contains(&got),
                "node {} reads {got:?} for {key}, the last PUTs were {candidates:?} ({last:?} last acknowledged)",
                i + 1
            );
            seen.push(got);
        }
        assert!(seen.iter().all(|w| *w == seen[0]), "{key}: {seen:?}");
    }
}

/// A GET of `path` through node `i` that must answer 200: its body.
async fn get_ok(c: &Cluster, i: usize, path: &str) -> Vec<u8> {
    let r = c.raw(i).send("GET", path, &[], b"").await.unwrap();
    assert_eq!(
        r.status,
        200,
        "GET {path} via node {}: {}",
        i + 1,
        r.describe()
    );
    r.body
}

/// PUTs `n` objects `prefix/i` through node `i`, one after another;
/// returns the keys acknowledged with their bodies.
async fn put_some(c: &Cluster, node: usize, prefix: &str, n: u32) -> Vec<(String, Vec<u8>)> {
    let mut acked = Vec::new();
    for seq in 0..n {
        let w = Written {
            writer: node as u32 + 100,
            seq,
        };
        let key = format!("{prefix}/{seq}");
        let body = w.body(size_of(w));
        let r = c
            .raw(node)
            .send("PUT", &format!("/part/{key}"), &[], &body)
            .await
            .unwrap();
        assert_eq!(
            r.status,
            200,
            "PUT {key} via node {}: {}",
            node + 1,
            r.describe()
        );
        acked.push((key, body));
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_refuses_writes_and_nothing_acknowledged_is_lost() {
    let c = Cluster::start(4, 2).await.unwrap();
    let r = c.raw(0).send("PUT", "/part", &[], b"").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.describe());
    let mut acked = put_some(&c, 0, "before", 6).await;

    // node 4 cut off from the other three (their internode traffic only:
    // clients still reach every node)
    let minority = [c.ip(3)];
    let majority: Vec<String> = (0..3).map(|i| c.ip(i)).collect();
    let mut cut =
        cairn_tests::netfault::Partition::new(&minority, &majority, &[c.internode_port()]).unwrap();

    // the minority refuses writes, quickly and with a retryable error
    for n in 0..3 {
        let t = Instant::now();
        let r = c
            .raw(3)
            .send("PUT", &format!("/part/minority/{n}"), &[], b"refused")
            .await
            .unwrap();
        let took = t.elapsed();
        assert_eq!(r.status, 503, "{}", r.describe());
        assert!(
            took < Duration::from_secs(10),
            "refused after {took:?}:\n{}",
            c.log(3)
        );
    }
    // the majority goes on, through each of its nodes
    for i in 0..3 {
        acked.extend(put_some(&c, i, &format!("during{i}"), 4).await);
    }
    c.health_shows(0, 200, "\"online\":6").await.unwrap();
    c.health_shows(3, 503, "\"online\":2").await.unwrap();

    // healed: every acknowledged write reads back whole through every
    // node, the minority's refused ones are nowhere, and node 4 writes again
    cut.heal().unwrap();
    c.health_shows(3, 200, "\"online\":8").await.unwrap();
    // node 4's drives are healed of what they missed before anything is
    // read: the nodes that wrote remember it
    let missed: Vec<_> = acked
        .iter()
        .filter(|(k, _)| k.starts_with("during"))
        .map(|(k, _)| c.drives(3)[0].join("part").join(k).join("cairn.meta"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(m) = missed.iter().find(|m| !m.is_file()) {
        assert!(
            Instant::now() < deadline,
            "node 4 was not healed of {}:\n{}",
            m.display(),
            c.log(0)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // by the writers' lists of missed writes, not a scan or a read
    assert!(
        (0..3).any(|i| c.log(i).contains(MISSED_HEALED)),
        "{}",
        c.log(0)
    );
    acked.extend(put_some(&c, 3, "after", 3).await);
    for i in 0..4 {
        for (key, body) in &acked {
            let got = get_ok(&c, i, &format!("/part/{key}")).await;
            assert!(got == *body, "{key} via node {} differs", i + 1);
        }
        let r = c
            .raw(i)
            .send("GET", "/part?list-type=2&prefix=minority/", &[], b"")
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert!(!r.text().contains("<Key>"), "{}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_costs_no_acknowledged_put_and_is_healed_when_back() {
    let mut c = Cluster::start(4, 2).await.unwrap();
    let r = c.raw(0).send("PUT", "/stream", &[], b"").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.describe());
    // writers PUT new keys and read them back through every node, on
    // and on, while node 3 is killed under them
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<(String, Written, Instant)>::new()));
    let mut tasks = Vec::new();
    for writer in 0..4u32 {
        let (stop, acked) = (stop.clone(), acked.clone());
        let nodes: Vec<_> = (0..4).map(|i| c.raw(i)).collect();
        tasks.push(tokio::spawn(async move {
            let mut seq = 0;
            let mut bad_reads = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let w = Written { writer, seq };
                let key = format!("w{writer}/s{seq}");
                let node = &nodes[(writer + seq) as usize % 4];
                seq += 1;
                let r = node
                    .send("PUT", &format!("/stream/{key}"), &[], &w.body(size_of(w)))
                    .await;
                if matches!(&r, Ok(r) if r.status == 200) {
                    acked.lock().push((key.clone(), w, Instant::now()));
                    // and a GET through the next node, which may be the dead one
                    let reader = &nodes[(writer + seq) as usize % 4];
                    if let Ok(r) = reader
                        .send("GET", &format!("/stream/{key}"), &[], b"")
                        .await
                        && r.status == 200
                        && Written::of(&r.body).ok() != Some(w)
                    {
                        bad_reads.push(key);
                    }
                }
            }
            bad_reads
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.kill(2).unwrap();
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        let bad = t.await.unwrap();
        assert!(bad.is_empty(), "reads of other bytes: {bad:?}");
    }
    let acked = acked.lock().clone();
    let missed: Vec<_> = acked.iter().filter(|(_, _, at)| *at > killed_at).collect();
    assert!(
        acked.len() >= 20 && missed.len() >= 5,
        "{} acknowledged, {} after the kill",
        acked.len(),
        missed.len()
    );
    // every acknowledged PUT reads back whole through every surviving node
    for i in [0, 1, 3] {
        for (key, w, _) in &acked {
            let got = get_ok(&c, i, &format!("/stream/{key}")).await;
            assert_eq!(Written::of(&got).unwrap(), *w, "{key} via node {}", i + 1);
        }
    }
    // node 3 back: its drives get what they missed, with nothing read
    // and no admin command
    c.spawn(2, &[]).unwrap();
    c.wait_ready(2).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    for (key, _, _) in &missed {
        let meta = c.drives(2)[0].join("stream").join(key).join("cairn.meta");
        while !meta.is_file() {
            assert!(
                Instant::now() < deadline,
                "node 3 was not healed of {key}:\n{}",
                c.log(0)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    assert!(
        [0, 1, 3].iter().any(|&i| c.log(i).contains(MISSED_HEALED)),
        "{}",
        c.log(0)
    );
}
