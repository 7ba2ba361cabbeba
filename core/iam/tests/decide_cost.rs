//! Not a timed test: `cargo test -p cairn-iam --test decide_cost -- --ignored --nocapture`
//! prints what one decision costs (the policy of scripts/bench-iam).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use cairn_iam::{Action, Context, Iam, IamConfig, Question, Target};

#[tokio::test]
#[ignore]
async fn print_decide_cost() {
    let iam = Iam::load(IamConfig {
        root_access_key: "root".into(),
        root_secret_key: "rootsecret".into(),
        account: cairn_iam::DEFAULT_ACCOUNT.into(),
        deployment_id: "t".into(),
        store: Arc::new(cairn_api::MemConfig::new()),
    })
    .await
    .unwrap();
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/bench-iam-policy.json"
    ))
    .unwrap();
    let key = iam
        .change(move |st| {
            st.create_user("bench", 0)?;
            st.set_inline(&Target::User("bench".into()), "p", Some(&doc))?;
            Ok(st.create_access_key("bench", 0)?.id.clone())
        })
        .await
        .unwrap();
    let now = 1_800_000_000;
    let caller = iam.caller(&key, None, now).unwrap();
    let mut ctx = Context::new();
    ctx.set("aws:CurrentTime", "2026-12-06T23:00:00Z");
    ctx.set("aws:EpochTime", "1800000000");
    ctx.set("aws:SourceIp", "127.0.0.1");
    ctx.set("aws:SecureTransport", "false");
    ctx.set("aws:UserAgent", "aws-sdk-rust/1.3 os/linux lang/rust");
    let principal = iam.principal(Some(&caller));
    iam.caller_context(Some(&caller), &principal, &mut ctx);
    let action = Action::from_name("s3:GetObject").unwrap();
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(iam.caller(&key, None, now).unwrap());
    }
    println!("caller:    {:>6} ns", t.elapsed().as_nanos() / n);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(iam.grants(&caller));
    }
    println!("grants:    {:>6} ns", t.elapsed().as_nanos() / n);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(iam.principal(Some(&caller)));
    }
    println!("principal: {:>6} ns", t.elapsed().as_nanos() / n);
    let grants = iam.grants(&caller);
    let q = Question {
        caller: Some(&caller),
        action,
        resource: "arn:aws:s3:::cairn-bench/obj-1",
        context: &ctx,
        bucket_policy: None,
    };
    assert_eq!(iam.decide_with(&q, &grants), cairn_iam::Verdict::Allowed);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(iam.decide_with(&q, &grants));
    }
    println!("decide:    {:>6} ns", t.elapsed().as_nanos() / n);
}
