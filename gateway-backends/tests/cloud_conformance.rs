#![allow(clippy::disallowed_methods)] // test fixtures build paths in temp folders
//! The cloud backend (object_store's S3 client) passes the conformance
//! suite against a real S3 server: an in-process Cairn (erasure set + S3
//! front on a loopback port), with the suite's buckets made beforehand
//! (declared gaps: no bucket management, no `dir/` objects).

use std::sync::Arc;

use cairn_api::ObjectLayer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_against_an_in_process_cairn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let drives = (0..4).map(|i| dir.path().join(format!("d{i}"))).collect();
    let set = Arc::new(cairn_core::ErasureSet::open(drives, None).expect("open set"));
    for b in cairn_api::conformance::BUCKETS {
        set.make_bucket(&cairn_api::BucketName::new(*b).expect("name"))
            .await
            .expect("make bucket");
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let cfg = cairn_s3::S3Config {
        access_key: "conformance".into(),
        secret_key: "conformance-secret".into(),
        region: "us-east-1".into(),
        domains: vec!["localhost".into()],
        admin: None,
        metrics_token: None,
        limits: Default::default(),
        iam: None,
        oidc: None,
        audit: None,
        web: None,
        router: None,
        notify_targets: Vec::new(),
        replication: None,
    };
    let layer: Arc<dyn ObjectLayer> = set;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(cairn_s3::serve(
        listener,
        layer,
        cfg,
        Arc::new(|| true),
        async {
            let _ = stopped.await;
        },
    ));
    let buckets: Vec<String> = cairn_api::conformance::BUCKETS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let gw = cairn_gateway::cloud::s3_layer(
        Some(&format!("http://{addr}")),
        "us-east-1",
        Some("conformance"),
        Some("conformance-secret"),
        &buckets,
    )
    .expect("s3 layer");
    cairn_api::conformance::run_all(&gw).await;
    let _ = stop.send(());
    let _ = server.await;
}
